//! The keys of ServiceAccount tokens, with `ring`: the signing key (upstream's
//! `--service-account-signing-key-file`, here a P-256 key made at start when no file is given)
//! and the public keys that verify (`--service-account-key-file`). ECDSA P-256 keys sign and
//! verify `ES256`, RSA keys `RS256`, as upstream's `JWTTokenGenerator` does for those key types.
//!
//! A key's `kid` is upstream's `keyIDFromPublicKey`: the SHA-256 of the public key's PKIX
//! (SubjectPublicKeyInfo) DER, base64url without padding.

use std::path::Path;

use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey};
use rustls_pki_types::pem::{PemObject, SectionKind};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

/// Why a key cannot be used (the server refuses to start on these).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    /// Upstream's `keyutil` messages.
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("generating the service account signing key: {0}")]
    Generate(String),
    #[error("signing the token: {0}")]
    Sign(String),
}

/// A JWS signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256, the signature as fixed-width `r || s`.
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
}

impl Algorithm {
    /// The JOSE `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::Rs256 => "RS256",
        }
    }
}

/// DER of `id-ecPublicKey` with the `prime256v1` parameters (the AlgorithmIdentifier content).
const EC_P256_ALGORITHM: &[u8] = &[
    0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
];
/// DER of `rsaEncryption` with NULL parameters (the AlgorithmIdentifier content).
const RSA_ALGORITHM: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_RSA: &str = "1.2.840.113549.1.1.1";

/// One DER element: `tag`, definite length, `content`.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The SubjectPublicKeyInfo DER of a key: `algorithm` content and the raw key bits.
fn spki(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
    let bits = [&[0u8][..], key].concat();
    der(0x30, &[der(0x30, algorithm), der(0x03, &bits)].concat())
}

/// Upstream's key id: base64url(SHA-256(PKIX DER)).
fn key_id(spki_der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, spki_der);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// A public key that verifies token signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    kid: String,
    alg: Algorithm,
    /// The uncompressed EC point, or the PKCS#1 RSAPublicKey DER.
    key: Vec<u8>,
}

impl VerifyingKey {
    /// The key of a SubjectPublicKeyInfo (P-256 or RSA).
    pub fn from_spki(der_bytes: &[u8]) -> Result<VerifyingKey, String> {
        let (_, info) = SubjectPublicKeyInfo::from_der(der_bytes).map_err(|e| format!("invalid public key: {e}"))?;
        VerifyingKey::from_info(&info)
    }

    fn from_info(info: &SubjectPublicKeyInfo<'_>) -> Result<VerifyingKey, String> {
        let oid = info.algorithm.algorithm.to_id_string();
        let key = info.subject_public_key.data.to_vec();
        let alg = match oid.as_str() {
            OID_RSA => Algorithm::Rs256,
            OID_EC_PUBLIC_KEY => {
                let curve = info.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
                if curve.as_deref() != Some(OID_P256) {
                    return Err("unsupported ECDSA curve (only P-256 is served)".into());
                }
                Algorithm::Es256
            }
            other => return Err(format!("unsupported public key algorithm {other}")),
        };
        Ok(VerifyingKey { kid: key_id(info.raw), alg, key })
    }

    /// The key id (`kid`).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// Whether `sig` is this key's signature of `message` with the JOSE algorithm `alg`.
    pub fn verify(&self, alg: &str, message: &[u8], sig: &[u8]) -> bool {
        if alg != self.alg.name() {
            return false;
        }
        let params: &dyn signature::VerificationAlgorithm = match self.alg {
            Algorithm::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
            Algorithm::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        };
        UnparsedPublicKey::new(params, &self.key).verify(message, sig).is_ok()
    }
}

enum Pair {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// The key that signs tokens.
pub struct SigningKey {
    pair: Pair,
    public: VerifyingKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        f.debug_struct("SigningKey").field("alg", &self.public.alg).field("kid", &self.public.kid).finish()
    }
}

/// The PKCS#8 wrapping of a SEC1 `EC PRIVATE KEY` on P-256 (what `ring` reads).
fn sec1_to_pkcs8(sec1: &[u8]) -> Vec<u8> {
    let body = [der(0x02, &[0]), der(0x30, EC_P256_ALGORITHM), der(0x04, sec1)].concat();
    der(0x30, &body)
}

impl SigningKey {
    /// A fresh P-256 key.
    pub fn generate() -> Result<SigningKey, KeyError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        SigningKey::ec(pkcs8.as_ref(), rng).map_err(KeyError::Generate)
    }

    fn ec(pkcs8: &[u8], rng: SystemRandom) -> Result<SigningKey, String> {
        let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng).map_err(|e| e.to_string())?;
        let spki_der = spki(EC_P256_ALGORITHM, pair.public_key().as_ref());
        let public = VerifyingKey { kid: key_id(&spki_der), alg: Algorithm::Es256, key: pair.public_key().as_ref().to_vec() };
        Ok(SigningKey { pair: Pair::Ec(pair), public, rng })
    }

    fn rsa(pair: RsaKeyPair) -> SigningKey {
        let pkcs1 = pair.public().as_ref().to_vec();
        let public = VerifyingKey { kid: key_id(&spki(RSA_ALGORITHM, &pkcs1)), alg: Algorithm::Rs256, key: pkcs1 };
        SigningKey { pair: Pair::Rsa(pair), public, rng: SystemRandom::new() }
    }

    /// The first private key of a PEM text (PKCS#8, SEC1 `EC PRIVATE KEY` or PKCS#1 `RSA PRIVATE
    /// KEY`); `path` names the file in errors.
    pub fn from_pem(path: &str, pem: &[u8]) -> Result<SigningKey, KeyError> {
        let invalid = || KeyError::Parse { path: path.into(), message: "data does not contain a valid RSA or ECDSA private key".into() };
        for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
            let (kind, body) = section.map_err(|_| invalid())?;
            let key = match kind {
                SectionKind::PrivateKey => SigningKey::ec(&body, SystemRandom::new()).ok().or_else(|| RsaKeyPair::from_pkcs8(&body).ok().map(SigningKey::rsa)),
                SectionKind::EcPrivateKey => SigningKey::ec(&sec1_to_pkcs8(&body), SystemRandom::new()).ok(),
                SectionKind::RsaPrivateKey => RsaKeyPair::from_der(&body).ok().map(SigningKey::rsa),
                _ => continue,
            };
            return key.ok_or_else(invalid);
        }
        Err(invalid())
    }

    /// [`SigningKey::from_pem`] of a file.
    pub fn load(path: &Path) -> Result<SigningKey, KeyError> {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|source| KeyError::Read { path: shown.clone(), source })?;
        SigningKey::from_pem(&shown, &pem)
    }

    /// The public half, which verifies what this key signs.
    pub fn public(&self) -> &VerifyingKey {
        &self.public
    }

    /// The signature of `message` (JWS form).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let failed = |e: ring::error::Unspecified| KeyError::Sign(e.to_string());
        match &self.pair {
            Pair::Ec(p) => p.sign(&self.rng, message).map(|s| s.as_ref().to_vec()).map_err(failed),
            Pair::Rsa(p) => {
                let mut sig = vec![0; p.public().modulus_len()];
                p.sign(&signature::RSA_PKCS1_SHA256, &self.rng, message, &mut sig).map_err(failed)?;
                Ok(sig)
            }
        }
    }
}

/// The public keys of a PEM text, as upstream's `keyutil.PublicKeysFromFile`: `PUBLIC KEY`
/// and `CERTIFICATE` blocks, or else the public half of its private key.
pub fn public_keys_from_pem(path: &str, pem: &[u8]) -> Result<Vec<VerifyingKey>, KeyError> {
    let parse = |message: String| KeyError::Parse { path: path.into(), message };
    let mut keys = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
        let (kind, body) = section.map_err(|e| parse(e.to_string()))?;
        let key = match kind {
            SectionKind::PublicKey => VerifyingKey::from_spki(&body),
            SectionKind::Certificate => match x509_parser::parse_x509_certificate(&body) {
                Ok((_, cert)) => VerifyingKey::from_info(cert.public_key()),
                Err(e) => Err(format!("invalid certificate: {e}")),
            },
            _ => continue,
        };
        keys.push(key.map_err(parse)?);
    }
    if keys.is_empty() {
        return match SigningKey::from_pem(path, pem) {
            Ok(private) => Ok(vec![private.public]),
            Err(_) => Err(parse("data does not contain any valid RSA or ECDSA public keys".into())),
        };
    }
    Ok(keys)
}

/// [`public_keys_from_pem`] of a file.
pub fn load_public_keys(path: &Path) -> Result<Vec<VerifyingKey>, KeyError> {
    let shown = path.display().to_string();
    let pem = std::fs::read(path).map_err(|source| KeyError::Read { path: shown.clone(), source })?;
    public_keys_from_pem(&shown, &pem)
}
