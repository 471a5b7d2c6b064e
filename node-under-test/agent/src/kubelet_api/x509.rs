//! The subject of a client certificate, read from its DER: the common name and the
//! organizations, as upstream's `x509.CommonNameUserConversion` maps them to a user (name =
//! CN, groups = O). Only what that needs of DER is read; the certificate was verified by the
//! TLS layer before it gets here, and anything unexpected gives `None`.

/// `id-at-commonName` (2.5.4.3), DER-encoded.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// `id-at-organizationName` (2.5.4.10), DER-encoded.
const ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const VERSION: u8 = 0xa0;

/// The subject attributes that name a user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject {
    /// The last CN, as Go's `pkix.Name` keeps it ("" when there is none).
    pub common_name: String,
    /// Every O, in order.
    pub organizations: Vec<String>,
}

/// One DER element: (tag, contents, what follows).
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The contents of the element tagged `tag` at the start of `input`, and what follows.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, contents, rest) = element(input)?;
    (t == tag).then_some((contents, rest))
}

/// A directory string: UTF8String, PrintableString, IA5String, T61String or BMPString.
fn directory_string(tag: u8, bytes: &[u8]) -> Option<String> {
    match tag {
        0x0c | 0x13 | 0x16 | 0x14 => Some(String::from_utf8_lossy(bytes).into_owned()),
        0x1e if bytes.len().is_multiple_of(2) => {
            let units: Vec<u16> = bytes.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            Some(String::from_utf16_lossy(&units))
        }
        _ => None,
    }
}

/// The subject of the certificate `der`.
pub fn subject(der: &[u8]) -> Option<Subject> {
    let (cert, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(cert, SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&VERSION) {
        rest = element(rest)?.2;
    }
    // serialNumber, signature, issuer, validity, then the subject.
    for _ in 0..4 {
        rest = element(rest)?.2;
    }
    let (mut names, _) = expect(rest, SEQUENCE)?;
    let mut subject = Subject::default();
    while !names.is_empty() {
        let (mut rdn, next) = expect(names, SET)?;
        names = next;
        while !rdn.is_empty() {
            let (atv, next) = expect(rdn, SEQUENCE)?;
            rdn = next;
            let (oid, value) = expect(atv, OID)?;
            let (tag, bytes, _) = element(value)?;
            let Some(text) = directory_string(tag, bytes) else { continue };
            if oid == COMMON_NAME {
                subject.common_name = text;
            } else if oid == ORGANIZATION {
                subject.organizations.push(text);
            }
        }
    }
    Some(subject)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(dn: &[(rcgen::DnType, &str)]) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (ty, v) in dn {
            params.distinguished_name.push(ty.clone(), *v);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn common_name_and_organization() {
        let der = cert(&[
            (rcgen::DnType::CountryName, "DE"),
            (rcgen::DnType::OrganizationName, "system:masters"),
            (rcgen::DnType::CommonName, "kube-apiserver-kubelet-client"),
        ]);
        let s = subject(&der).unwrap();
        assert_eq!(s.common_name, "kube-apiserver-kubelet-client");
        assert_eq!(s.organizations, ["system:masters"]);
    }

    #[test]
    fn no_subject_attributes() {
        assert_eq!(subject(&cert(&[])).unwrap(), Subject::default());
        let s = subject(&cert(&[(rcgen::DnType::OrganizationName, "g")])).unwrap();
        assert_eq!((s.common_name.as_str(), s.organizations.len()), ("", 1));
    }

    #[test]
    fn long_names_use_long_form_lengths() {
        let long = "u".repeat(300);
        let s = subject(&cert(&[(rcgen::DnType::CommonName, long.as_str())])).unwrap();
        assert_eq!(s.common_name, long);
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(subject(b""), None);
        assert_eq!(subject(b"\x30\x05abc"), None);
        assert_eq!(subject(b"\x30\x84\xff\xff\xff\xff"), None);
        let der = cert(&[(rcgen::DnType::CommonName, "x")]);
        for cut in [1, 10, der.len() / 2, der.len() - 1] {
            assert!(subject(&der[..cut]).is_none(), "cut at {cut}");
        }
    }

    #[test]
    fn string_kinds() {
        assert_eq!(directory_string(0x1e, &[0, b'h', 0, b'i']).as_deref(), Some("hi"));
        assert_eq!(directory_string(0x13, b"abc").as_deref(), Some("abc"));
        assert_eq!(directory_string(0x04, b"abc"), None);
    }
}
