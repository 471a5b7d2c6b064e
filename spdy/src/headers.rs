//! Header blocks: the name/value block of SPDY/3 (32-bit counts and lengths, lower-case names,
//! several values of one name joined with NUL) through one zlib stream per direction, seeded
//! with [`crate::dictionary::DICTIONARY`] and flushed (Z_SYNC_FLUSH) after every block.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::dictionary::DICTIONARY;
use crate::{Error, Headers};

/// Most pairs one block may hold (a peer cannot make us allocate without bound).
const MAX_PAIRS: usize = 1024;
/// Largest decompressed block accepted.
const MAX_BLOCK: usize = 1 << 20;

/// The name/value block, uncompressed: one entry per name, repeated names joined with NUL.
pub fn serialize(headers: &Headers) -> Vec<u8> {
    let mut names: Vec<String> = Vec::new();
    let mut values: Vec<String> = Vec::new();
    for (n, v) in headers {
        let n = n.to_ascii_lowercase();
        match names.iter().position(|x| *x == n) {
            Some(i) => {
                values[i].push('\0');
                values[i].push_str(v);
            }
            None => {
                names.push(n);
                values.push(v.clone());
            }
        }
    }
    let mut out = Vec::new();
    out.extend_from_slice(&(names.len() as u32).to_be_bytes());
    for (n, v) in names.iter().zip(&values) {
        out.extend_from_slice(&(n.len() as u32).to_be_bytes());
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], Error> {
    if b.len() < n {
        return Err(Error::Protocol("truncated header block".into()));
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Ok(head)
}

fn take_u32(b: &mut &[u8]) -> Result<usize, Error> {
    let s = take(b, 4)?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

/// Parses an uncompressed block; values joined with NUL become separate entries.
pub fn parse(mut b: &[u8]) -> Result<Headers, Error> {
    let count = take_u32(&mut b)?;
    if count > MAX_PAIRS {
        return Err(Error::Protocol(format!("a header block of {count} pairs")));
    }
    let mut out = Headers::new();
    for _ in 0..count {
        let n = take_u32(&mut b)?;
        let name = String::from_utf8_lossy(take(&mut b, n)?).to_ascii_lowercase();
        let n = take_u32(&mut b)?;
        let value = String::from_utf8_lossy(take(&mut b, n)?).into_owned();
        if name.is_empty() {
            return Err(Error::Protocol("a header with an empty name".into()));
        }
        out.extend(value.split('\0').map(|v| (name.clone(), v.to_string())));
    }
    if !b.is_empty() {
        return Err(Error::Protocol(format!("{} bytes after the header block", b.len())));
    }
    Ok(out)
}

/// The compressing side of a connection.
pub struct Compressor(Compress);

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Compressor")
    }
}

impl Compressor {
    pub fn new() -> Result<Compressor, Error> {
        let mut c = Compress::new(Compression::best(), true);
        c.set_dictionary(&DICTIONARY).map_err(|e| Error::Protocol(format!("zlib dictionary: {e}")))?;
        Ok(Compressor(c))
    }

    /// The compressed bytes of `headers`, ending at a sync flush.
    pub fn compress(&mut self, headers: &Headers) -> Result<Vec<u8>, Error> {
        let input = serialize(headers);
        let mut out = Vec::with_capacity(input.len() + 64);
        let mut consumed = 0;
        loop {
            out.reserve(256);
            let before = self.0.total_in();
            self.0
                .compress_vec(&input[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|e| Error::Protocol(format!("compressing headers: {e}")))?;
            consumed += (self.0.total_in() - before) as usize;
            // A sync flush is complete once the output buffer was not filled.
            if consumed == input.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

/// The decompressing side of a connection.
pub struct Decompressor(Decompress);

impl std::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decompressor")
    }
}

impl Decompressor {
    pub fn new() -> Decompressor {
        Decompressor(Decompress::new(true))
    }

    /// The headers of one compressed block (all of it must be consumed, as spdystream checks).
    pub fn decompress(&mut self, block: &[u8]) -> Result<Headers, Error> {
        let mut out = Vec::with_capacity(block.len() * 4 + 64);
        let mut consumed = 0;
        loop {
            out.reserve(1024);
            let before = self.0.total_in();
            let r = self.0.decompress_vec(&block[consumed..], &mut out, FlushDecompress::Sync);
            consumed += (self.0.total_in() - before) as usize;
            match r {
                Ok(Status::StreamEnd) => return Err(Error::Protocol("the header zlib stream ended".into())),
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.0.set_dictionary(&DICTIONARY).map_err(|e| Error::Protocol(format!("zlib dictionary: {e}")))?;
                    continue;
                }
                Err(e) => return Err(Error::Protocol(format!("decompressing headers: {e}"))),
            }
            if out.len() > MAX_BLOCK {
                return Err(Error::Protocol("a header block larger than 1 MiB".into()));
            }
            if consumed == block.len() && out.len() < out.capacity() {
                return parse(&out);
            }
        }
    }
}

impl Default for Decompressor {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn blocks_share_one_zlib_stream_each_way() {
        let (mut c, mut d) = (Compressor::new().unwrap(), Decompressor::new());
        let blocks = [
            h(&[("streamtype", "error"), ("port", "8080"), ("requestid", "0")]),
            h(&[("streamtype", "data"), ("port", "8080"), ("requestid", "0")]),
            h(&[]),
            h(&[("x-multi", "a"), ("x-multi", "b")]),
        ];
        for b in &blocks {
            let z = c.compress(b).unwrap();
            assert_eq!(&d.decompress(&z).unwrap(), b);
        }
    }

    #[test]
    fn names_are_lower_case_and_values_split_at_nul() {
        let wire = serialize(&h(&[("StreamType", "stdin")]));
        assert_eq!(parse(&wire).unwrap(), h(&[("streamtype", "stdin")]));
        let joined = serialize(&h(&[("a", "1"), ("a", "2")]));
        assert_eq!(&joined[..4], &[0, 0, 0, 1], "one pair on the wire");
        assert_eq!(parse(&joined).unwrap(), h(&[("a", "1"), ("a", "2")]));
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse(&[0, 0, 0, 2, 0, 0]).is_err());
        assert!(Decompressor::new().decompress(b"not zlib at all").is_err());
    }

    #[test]
    fn the_stream_starts_with_the_dictionary_id() {
        let z = Compressor::new().unwrap().compress(&h(&[("a", "b")])).unwrap();
        assert_eq!(z[0] & 0x0f, 8, "deflate");
        assert_ne!(z[1] & 0x20, 0, "FDICT set");
    }
}
