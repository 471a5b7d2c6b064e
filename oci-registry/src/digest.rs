//! Content digests: `<algorithm>:<encoded>`, as the OCI image spec defines them.
//!
//! Two algorithms are registered: `sha256` (64 lowercase hex digits) and `sha512` (128). Every
//! blob of the store is addressed by `sha256`; a well-formed `sha512` digest is valid but names
//! nothing the store can hold.

use sha2::{Digest as _, Sha256};

/// Why a string is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The string does not match `algorithm ":" encoded`.
    #[error("digest {0:?} is malformed (want <algorithm>:<hex>)")]
    Malformed(String),
    /// The algorithm is well-formed but neither `sha256` nor `sha512`.
    #[error("digest {0:?} uses an unsupported algorithm")]
    UnsupportedAlgorithm(String),
    /// The encoded part does not fit the registered algorithm.
    #[error("digest {0:?} has an invalid encoded part for its algorithm")]
    InvalidEncoded(String),
}

/// A registered digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// SHA-256: what the store addresses blobs by.
    Sha256,
    /// SHA-512: valid, never stored.
    Sha512,
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn algorithm_is_well_formed(algorithm: &str) -> bool {
    let separator = |c: char| matches!(c, '+' | '.' | '_' | '-');
    !algorithm.is_empty()
        && algorithm.split(separator).all(|c| !c.is_empty() && c.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
}

/// Checks `s` is a digest with a registered algorithm and returns the algorithm.
pub fn parse_digest(s: &str) -> Result<Algorithm, DigestError> {
    let Some((algorithm, encoded)) = s.split_once(':') else { return Err(DigestError::Malformed(s.into())) };
    let encoded_ok = !encoded.is_empty() && encoded.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '=' | '_' | '-'));
    if !algorithm_is_well_formed(algorithm) || !encoded_ok {
        return Err(DigestError::Malformed(s.into()));
    }
    let (found, len) = match algorithm {
        "sha256" => (Algorithm::Sha256, 64),
        "sha512" => (Algorithm::Sha512, 128),
        _ => return Err(DigestError::UnsupportedAlgorithm(s.into())),
    };
    if encoded.len() != len || !encoded.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)) {
        return Err(DigestError::InvalidEncoded(s.into()));
    }
    Ok(found)
}

/// Checks `s` is a `sha256` digest (what the store can hold).
pub fn parse_sha256(s: &str) -> Result<(), DigestError> {
    match parse_digest(s)? {
        Algorithm::Sha256 => Ok(()),
        Algorithm::Sha512 => Err(DigestError::UnsupportedAlgorithm(s.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn sha256_of_empty_input() {
        assert_eq!(sha256_digest(b""), EMPTY);
        assert_eq!(parse_digest(EMPTY), Ok(Algorithm::Sha256));
        assert_eq!(parse_sha256(EMPTY), Ok(()));
    }

    #[test]
    fn digests_are_checked() {
        let sha512 = format!("sha512:{}", "a".repeat(128));
        assert_eq!(parse_digest(&sha512), Ok(Algorithm::Sha512));
        assert!(matches!(parse_sha256(&sha512), Err(DigestError::UnsupportedAlgorithm(_))));
        for bad in ["", "sha256", "sha256:", ":abc", "SHA256:abc", "sha256:ab c", "sha256+:ab", "sha256:ab/c"] {
            assert!(matches!(parse_digest(bad), Err(DigestError::Malformed(_))), "{bad}");
        }
        assert!(matches!(parse_digest("md5:abcdef"), Err(DigestError::UnsupportedAlgorithm(_))));
        assert!(matches!(parse_digest("sha256:abc"), Err(DigestError::InvalidEncoded(_))));
        let upper = EMPTY.to_uppercase().replacen("SHA256", "sha256", 1);
        assert!(matches!(parse_digest(&upper), Err(DigestError::InvalidEncoded(_))));
    }
}
