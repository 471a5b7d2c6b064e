//! Protobuf wire encoding for hand-built request bodies.

fn varint_raw(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field: tag, length and bytes.
pub fn bytes(field: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint_raw(field << 3 | 2, &mut out);
    varint_raw(body.len() as u64, &mut out);
    out.extend_from_slice(body);
    out
}

/// A varint field: tag and value.
pub fn varint(field: u64, v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint_raw(field << 3, &mut out);
    varint_raw(v, &mut out);
    out
}
