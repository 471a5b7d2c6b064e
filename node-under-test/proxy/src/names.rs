//! Chain and set names derived from service / endpoint identities (upstream hashing scheme:
//! base32 of sha256, truncated).

use sha2::{Digest, Sha256};

use crate::model::{Endpoint, ServicePortName};

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 (standard alphabet, no padding needed for the prefixes used here).
pub fn base32(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let mut buf: u64 = 0;
    let mut bits = 0u32;
    for &b in data {
        buf = (buf << 8) | u64::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn hash32(input: &str, len: usize) -> String {
    let digest = Sha256::digest(input.as_bytes());
    let mut s = base32(&digest);
    s.truncate(len);
    s
}

/// Upstream iptables `portProtoHash`: 16 chars of base32(sha256("ns/name:port" + protocol)).
pub fn port_proto_hash(spn: &ServicePortName) -> String {
    hash32(&format!("{}{}", spn, spn.protocol.lower()), 16)
}

/// `KUBE-SVC-…`
pub fn ipt_svc(spn: &ServicePortName) -> String {
    format!("KUBE-SVC-{}", port_proto_hash(spn))
}
/// `KUBE-SVL-…`
pub fn ipt_svl(spn: &ServicePortName) -> String {
    format!("KUBE-SVL-{}", port_proto_hash(spn))
}
/// `KUBE-EXT-…`
pub fn ipt_ext(spn: &ServicePortName) -> String {
    format!("KUBE-EXT-{}", port_proto_hash(spn))
}
/// `KUBE-SEP-…`: hash of "ns/name:port" + protocol + "ip:port".
pub fn ipt_sep(spn: &ServicePortName, ep: &Endpoint) -> String {
    format!("KUBE-SEP-{}", hash32(&format!("{}{}{}", spn, spn.protocol.lower(), ep), 16))
}

const NFT_NAME_LIMIT: usize = 200;

/// Upstream nft `hashAndTruncate`: 8 hash chars, '-', the readable name (truncated).
fn hash_and_truncate(name: &str) -> String {
    let mut s = format!("{}-{}", hash32(name, 8), name);
    if s.len() > NFT_NAME_LIMIT {
        let mut cut = NFT_NAME_LIMIT - 3;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// `HASH-ns/name/proto/port`, the readable base of per-service nft chain names.
pub fn nft_base(spn: &ServicePortName) -> String {
    hash_and_truncate(&format!(
        "{}/{}/{}/{}",
        spn.namespace,
        spn.name,
        spn.protocol.lower(),
        spn.port
    ))
}

/// nft names only allow a restricted character set when unquoted; namespaces, names and port
/// names are DNS labels, so they already fit. This checks the invariant for names from the API.
pub fn nft_safe(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

/// `affinity-HASH` set name for one endpoint of one service port; the timeout is part of the
/// hash so that a changed timeout yields a new set (sets cannot change their timeout in place).
pub fn nft_affinity(spn: &ServicePortName, ep: &Endpoint, timeout: u32) -> String {
    let id = format!("{}{}{}/{}", spn, spn.protocol.lower(), ep, timeout);
    format!("affinity-{}", hash32(&id, 16))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;

    #[test]
    fn base32_matches_rfc4648_vectors() {
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"fo"), "MZXQ");
        assert_eq!(base32(b"foo"), "MZXW6");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    }

    #[test]
    fn chain_names_have_upstream_shape() {
        let spn = ServicePortName {
            namespace: "ns1".into(),
            name: "svc1".into(),
            port: "p80".into(),
            protocol: Protocol::Tcp,
        };
        let svc = ipt_svc(&spn);
        assert!(svc.starts_with("KUBE-SVC-") && svc.len() == 9 + 16, "{svc}");
        // sha256("ns1/svc1:p80tcp") base32, first 16 characters (as upstream computes).
        let digest = Sha256::digest(b"ns1/svc1:p80tcp");
        assert_eq!(&svc[9..], &base32(&digest)[..16]);
        assert_eq!(&ipt_ext(&spn)[9..], &svc[9..]);
        let ep = Endpoint { ip: "10.180.0.1".parse().unwrap(), port: 80, local: false };
        assert_ne!(ipt_sep(&spn, &ep), ipt_svc(&spn));
        let base = nft_base(&spn);
        assert!(base.ends_with("-ns1/svc1/tcp/p80"), "{base}");
        assert!(nft_safe(&base));
        let long = ServicePortName { name: "x".repeat(300), ..spn };
        assert!(nft_base(&long).len() <= NFT_NAME_LIMIT);
    }
}
