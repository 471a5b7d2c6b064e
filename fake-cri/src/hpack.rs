//! HPACK (RFC 7541) for the `:authority` relay: a decoder that keeps the peer's dynamic table,
//! and an encoder that writes every field as a plain literal (no dynamic table, no Huffman),
//! so a re-encoded block never depends on state the next decoder does not have.

use std::collections::VecDeque;

/// Why a header block could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    /// The block ends inside a representation.
    #[error("header block truncated")]
    Truncated,
    /// An integer does not fit the range a header block can use.
    #[error("integer overflow in header block")]
    Overflow,
    /// An index is zero or past the end of the static and dynamic tables.
    #[error("header table index {0} out of range")]
    Index(usize),
    /// A Huffman-coded string is malformed (EOS symbol, or padding that is too long or not 1s).
    #[error("invalid Huffman-coded string")]
    Huffman,
    /// A dynamic table size update above the limit the peer was given.
    #[error("dynamic table size {0} exceeds the limit {1}")]
    TableSize(usize, usize),
    /// A dynamic table size update after the first header field of a block.
    #[error("dynamic table size update after a header field")]
    LateSizeUpdate,
    /// The decoded header list is larger than the decoder allows.
    #[error("decoded header list larger than {0} bytes")]
    TooLarge(usize),
}

/// One header field of a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Name, lower case as HTTP/2 requires.
    pub name: Vec<u8>,
    /// Value.
    pub value: Vec<u8>,
    /// Sent as "never indexed": intermediaries must keep it that way.
    pub never_indexed: bool,
}

impl Field {
    /// A field from name and value.
    pub fn new(name: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Field {
        Field { name: name.into(), value: value.into(), never_indexed: false }
    }
}

/// RFC 7541 Appendix A: the static table (index 1 is first).
const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// RFC 7541 Appendix B as code lengths: `BY_LENGTH[n]` lists the symbols whose code is `n` bits
/// long (256 is EOS). The code is canonical (codes of one length are consecutive, in symbol
/// order, and follow the last shorter code), so the lengths define it.
const BY_LENGTH: [&[u16]; 31] = [
    &[],
    &[],
    &[],
    &[],
    &[],
    &[48, 49, 50, 97, 99, 101, 105, 111, 115, 116],
    &[32, 37, 45, 46, 47, 51, 52, 53, 54, 55, 56, 57, 61, 65, 95, 98, 100, 102, 103, 104, 108, 109, 110, 112, 114, 117],
    &[58, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 89, 106, 107, 113, 118, 119, 120, 121, 122],
    &[38, 42, 44, 59, 88, 90],
    &[],
    &[33, 34, 40, 41, 63],
    &[39, 43, 124],
    &[35, 62],
    &[0, 36, 64, 91, 93, 126],
    &[94, 125],
    &[60, 96, 123],
    &[],
    &[],
    &[],
    &[92, 195, 208],
    &[128, 130, 131, 162, 184, 194, 224, 226],
    &[153, 161, 167, 172, 176, 177, 179, 209, 216, 217, 227, 229, 230],
    &[129, 132, 133, 134, 136, 146, 154, 156, 160, 163, 164, 169, 170, 173, 178, 181, 185, 186, 187, 189, 190, 196, 198, 228, 232, 233],
    &[1, 135, 137, 138, 139, 140, 141, 143, 147, 149, 150, 151, 152, 155, 157, 158, 165, 166, 168, 174, 175, 180, 182, 183, 188, 191, 197, 231, 239],
    &[9, 142, 144, 145, 148, 159, 171, 206, 215, 225, 236, 237],
    &[199, 207, 234, 235],
    &[192, 193, 200, 201, 202, 205, 210, 213, 218, 219, 238, 240, 242, 243, 255],
    &[203, 204, 211, 212, 214, 221, 222, 223, 241, 244, 245, 246, 247, 248, 250, 251, 252, 253, 254],
    &[2, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25, 26, 27, 28, 29, 30, 31, 127, 220, 249],
    &[],
    &[10, 13, 22, 256],
];

const EOS: u16 = 256;

/// Decodes a Huffman-coded string bit by bit over the canonical code: at each length, codes
/// below `first + count` are symbols of that length, in `BY_LENGTH` order.
fn huffman_decode(src: &[u8]) -> Result<Vec<u8>, HpackError> {
    let mut out = Vec::with_capacity(src.len() * 8 / 5);
    let (mut code, mut first, mut len) = (0u32, 0u32, 0usize);
    let mut pending = 0u32; // the raw bits read since the last symbol
    for byte in src {
        for shift in (0..8).rev() {
            let bit = u32::from(byte >> shift & 1);
            code |= bit;
            pending = pending << 1 | bit;
            len += 1;
            let symbols = BY_LENGTH.get(len).ok_or(HpackError::Huffman)?;
            let count = symbols.len() as u32;
            if code < first + count {
                let sym = symbols[(code - first) as usize];
                if sym == EOS {
                    return Err(HpackError::Huffman);
                }
                out.push(sym as u8);
                (code, first, len, pending) = (0, 0, 0, 0);
            } else {
                first = (first + count) << 1;
                code <<= 1;
            }
        }
    }
    // What is left is padding: fewer than 8 bits, all 1s (a prefix of EOS).
    if len > 7 || pending != (1u32 << len) - 1 {
        return Err(HpackError::Huffman);
    }
    Ok(out)
}

/// A reader over one header block.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, HpackError> {
        let b = *self.buf.get(self.pos).ok_or(HpackError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    /// An integer with an `n`-bit prefix (RFC 7541 §5.1); the prefix byte is consumed.
    fn int(&mut self, n: u32) -> Result<usize, HpackError> {
        let mask = (1u8 << n) - 1;
        let mut value = usize::from(self.byte()? & mask);
        if value < usize::from(mask) {
            return Ok(value);
        }
        for shift in (0..).step_by(7) {
            // 2^28 is far above any size a header block can carry.
            if shift > 21 {
                return Err(HpackError::Overflow);
            }
            let b = self.byte()?;
            value += usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
        }
        Ok(value)
    }

    /// A string literal (RFC 7541 §5.2).
    fn string(&mut self) -> Result<Vec<u8>, HpackError> {
        let huffman = self.buf.get(self.pos).ok_or(HpackError::Truncated)? & 0x80 != 0;
        let len = self.int(7)?;
        let end = self.pos.checked_add(len).filter(|&e| e <= self.buf.len()).ok_or(HpackError::Truncated)?;
        let raw = &self.buf[self.pos..end];
        self.pos = end;
        if huffman { huffman_decode(raw) } else { Ok(raw.to_vec()) }
    }
}

/// Size of an entry in the dynamic table (RFC 7541 §4.1).
fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len() + value.len() + 32
}

/// The decoding side of one HPACK context (one direction of one connection).
#[derive(Debug)]
pub struct Decoder {
    /// Newest first: index 62 is `table[0]`.
    table: VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
    max_size: usize,
    limit: usize,
    max_list: usize,
}

impl Decoder {
    /// A decoder whose peer may use a dynamic table of up to `limit` bytes (the
    /// SETTINGS_HEADER_TABLE_SIZE it was given; 4096 unless changed) and whose decoded header
    /// lists stay below `max_list` bytes (counted as in SETTINGS_MAX_HEADER_LIST_SIZE).
    pub fn new(limit: usize, max_list: usize) -> Decoder {
        Decoder { table: VecDeque::new(), size: 0, max_size: limit, limit, max_list }
    }

    /// Decodes one complete header block, updating the dynamic table.
    pub fn decode(&mut self, block: &[u8]) -> Result<Vec<Field>, HpackError> {
        let mut r = Reader { buf: block, pos: 0 };
        let mut fields = Vec::new();
        let mut list_size = 0usize;
        while r.pos < block.len() {
            let first = block[r.pos];
            let field = if first & 0x80 != 0 {
                let (name, value) = self.get(r.int(7)?)?;
                Field::new(name, value)
            } else if first & 0xc0 == 0x40 {
                let field = self.literal(&mut r, 6)?;
                self.insert(field.name.clone(), field.value.clone());
                field
            } else if first & 0xe0 == 0x20 {
                if !fields.is_empty() {
                    return Err(HpackError::LateSizeUpdate);
                }
                self.resize(r.int(5)?)?;
                continue;
            } else {
                let mut field = self.literal(&mut r, 4)?;
                field.never_indexed = first & 0x10 != 0;
                field
            };
            list_size += entry_size(&field.name, &field.value);
            if list_size > self.max_list {
                return Err(HpackError::TooLarge(self.max_list));
            }
            fields.push(field);
        }
        Ok(fields)
    }

    /// A literal field whose name index has an `n`-bit prefix (0: the name follows).
    fn literal(&self, r: &mut Reader<'_>, n: u32) -> Result<Field, HpackError> {
        let index = r.int(n)?;
        let name = if index == 0 { r.string()? } else { self.get(index)?.0 };
        Ok(Field::new(name, r.string()?))
    }

    fn get(&self, index: usize) -> Result<(Vec<u8>, Vec<u8>), HpackError> {
        if let Some((n, v)) = index.checked_sub(1).and_then(|i| STATIC.get(i)) {
            return Ok((n.as_bytes().to_vec(), v.as_bytes().to_vec()));
        }
        index.checked_sub(STATIC.len() + 1).and_then(|i| self.table.get(i)).cloned().ok_or(HpackError::Index(index))
    }

    fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) {
        let size = entry_size(&name, &value);
        self.evict(self.max_size.saturating_sub(size));
        // An entry larger than the table empties it and is not added (RFC 7541 §4.4).
        if size <= self.max_size {
            self.size += size;
            self.table.push_front((name, value));
        }
    }

    fn resize(&mut self, max_size: usize) -> Result<(), HpackError> {
        if max_size > self.limit {
            return Err(HpackError::TableSize(max_size, self.limit));
        }
        self.max_size = max_size;
        self.evict(max_size);
        Ok(())
    }

    fn evict(&mut self, to: usize) {
        while self.size > to {
            match self.table.pop_back() {
                Some((n, v)) => self.size -= entry_size(&n, &v),
                None => break,
            }
        }
    }
}

/// Appends `field` as a literal without indexing (or never indexed), new name, no Huffman.
pub fn encode_literal(field: &Field, out: &mut Vec<u8>) {
    out.push(if field.never_indexed { 0x10 } else { 0x00 });
    encode_string(&field.name, out);
    encode_string(&field.value, out);
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    encode_int(s.len(), 7, 0x00, out);
    out.extend_from_slice(s);
}

/// Appends an integer with an `n`-bit prefix; `flags` holds the bits above the prefix.
fn encode_int(mut value: usize, n: u32, flags: u8, out: &mut Vec<u8>) {
    let mask = (1usize << n) - 1;
    if value < mask {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | mask as u8);
    value -= mask;
    while value >= 0x80 {
        out.push(0x80 | (value & 0x7f) as u8);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn pairs(fields: &[Field]) -> Vec<(String, String)> {
        fields.iter().map(|f| (String::from_utf8_lossy(&f.name).into(), String::from_utf8_lossy(&f.value).into())).collect()
    }

    fn p(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_code_is_complete() {
        let kraft: u64 = (0..31).map(|len| BY_LENGTH[len].len() as u64 * (1u64 << (30 - len))).sum();
        assert_eq!(kraft, 1 << 30);
        let mut all: Vec<u16> = BY_LENGTH.iter().flat_map(|s| s.iter().copied()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..=256).collect::<Vec<u16>>());
    }

    #[test]
    fn huffman_strings_of_rfc7541_appendix_c() {
        for (coded, plain) in [
            ("f1e3 c2e5 f23a 6ba0 ab90 f4ff", "www.example.com"),
            ("a8eb 1064 9cbf", "no-cache"),
            ("25a8 49e9 5ba9 7d7f", "custom-key"),
            ("25a8 49e9 5bb8 e8b4 bf", "custom-value"),
            ("6402", "302"),
            ("aec3 771a 4b", "private"),
            ("d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff", "Mon, 21 Oct 2013 20:13:21 GMT"),
            ("9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3", "https://www.example.com"),
        ] {
            assert_eq!(huffman_decode(&hex(coded)).unwrap(), plain.as_bytes(), "{plain}");
        }
    }

    #[test]
    fn bad_huffman_padding_and_eos_are_refused() {
        // "0" is 00000; padded with 0s instead of 1s.
        assert_eq!(huffman_decode(&[0b0000_0000]), Err(HpackError::Huffman));
        // A whole byte of padding.
        assert_eq!(huffman_decode(&[0b0000_0111, 0xff]), Err(HpackError::Huffman));
        // EOS (30 ones) inside the string.
        assert_eq!(huffman_decode(&[0xff, 0xff, 0xff, 0xff]), Err(HpackError::Huffman));
        assert_eq!(huffman_decode(&[0b0000_0111]).unwrap(), b"0");
    }

    #[test]
    fn requests_of_rfc7541_c3_share_a_dynamic_table() {
        let mut d = Decoder::new(4096, 1 << 16);
        let first = d.decode(&hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d")).unwrap();
        assert_eq!(pairs(&first), p(&[(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")]));
        let second = d.decode(&hex("8286 84be 5808 6e6f 2d63 6163 6865")).unwrap();
        assert_eq!(pairs(&second)[3..], p(&[(":authority", "www.example.com"), ("cache-control", "no-cache")]));
        let third = d.decode(&hex("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65")).unwrap();
        assert_eq!(
            pairs(&third),
            p(&[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value")
            ])
        );
        assert_eq!(d.size, 164);
    }

    #[test]
    fn size_updates_evict_and_are_bounded() {
        let mut d = Decoder::new(4096, 1 << 16);
        d.decode(&hex("4003 6162 6301 78")).unwrap(); // abc: x, indexed
        assert_eq!(d.get(62).unwrap(), (b"abc".to_vec(), b"x".to_vec()));
        d.decode(&[0x20]).unwrap(); // size 0: the table is emptied
        assert_eq!(d.get(62), Err(HpackError::Index(62)));
        assert_eq!(d.decode(&hex("3fe1 1f")), Ok(vec![])); // 31 + 97 + (31 << 7) = 4096: allowed
        assert_eq!(d.decode(&hex("3fe2 1f")), Err(HpackError::TableSize(4097, 4096)));
        assert_eq!(d.decode(&hex("82 20")), Err(HpackError::LateSizeUpdate));
    }

    #[test]
    fn bad_blocks_are_errors_not_panics() {
        let mut d = Decoder::new(4096, 64);
        assert_eq!(d.decode(&[0x80]), Err(HpackError::Index(0)));
        assert_eq!(d.decode(&[0xff, 0x80]), Err(HpackError::Truncated));
        assert_eq!(d.decode(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), Err(HpackError::Overflow));
        assert_eq!(d.decode(&[0x00, 0x05, b'a']), Err(HpackError::Truncated));
        let big = Field::new("x", vec![b'v'; 64]);
        let mut block = Vec::new();
        encode_literal(&big, &mut block);
        assert_eq!(d.decode(&block), Err(HpackError::TooLarge(64)));
    }

    #[test]
    fn literals_round_trip_including_long_lengths() {
        let fields = vec![
            Field::new(":authority", "run%2Fx%2Fcri.sock"),
            Field { name: b"authorization".to_vec(), value: vec![b'k'; 300], never_indexed: true },
        ];
        let mut block = Vec::new();
        for f in &fields {
            encode_literal(f, &mut block);
        }
        assert_eq!(Decoder::new(4096, 1 << 16).decode(&block).unwrap(), fields);
    }
}
