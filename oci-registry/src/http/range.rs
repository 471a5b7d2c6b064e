//! Single byte ranges of blobs (`Range: bytes=a-b`, `bytes=a-`, `bytes=-n`).
//!
//! A `Range` header that is not one well-formed byte range (another unit, several ranges, a
//! syntax error) is ignored and the whole blob served, as RFC 9110 allows; a well-formed range
//! starting at or past the end is unsatisfiable (416).

/// What a `Range` header asks of a blob of known length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeRequest {
    /// The whole blob (no header, or one that is ignored).
    Full,
    /// The bytes `start..=end`, both within the blob.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// No byte of the blob is in the range.
    Unsatisfiable,
}

/// Interprets `header` (the `Range` value, if any) for a blob of `len` bytes.
pub(crate) fn parse_range(header: Option<&str>, len: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return RangeRequest::Full };
    let Some((first, last)) = spec.trim().split_once('-') else { return RangeRequest::Full };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let number = |s: &str| -> Option<u64> { (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten() };
    match (first.trim(), last.trim()) {
        ("", suffix) => match number(suffix) {
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if len == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Partial { start: len - n.min(len), end: len - 1 },
            None => RangeRequest::Full,
        },
        (first, last) => {
            let Some(start) = number(first) else { return RangeRequest::Full };
            let end = match last {
                "" => None,
                l => match number(l) {
                    Some(e) if e >= start => Some(e),
                    _ => return RangeRequest::Full,
                },
            };
            if start >= len {
                return RangeRequest::Unsatisfiable;
            }
            RangeRequest::Partial { start, end: end.map_or(len - 1, |e| e.min(len - 1)) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RangeRequest::{Full, Partial, Unsatisfiable};
    use super::*;

    #[test]
    fn ranges_are_interpreted() {
        let cases = [
            (None, Full),
            (Some("bytes=0-9"), Partial { start: 0, end: 9 }),
            (Some("bytes=10-"), Partial { start: 10, end: 99 }),
            (Some("bytes=90-200"), Partial { start: 90, end: 99 }),
            (Some("bytes=-10"), Partial { start: 90, end: 99 }),
            (Some("bytes=-1000"), Partial { start: 0, end: 99 }),
            (Some("bytes=99-99"), Partial { start: 99, end: 99 }),
            (Some("bytes=100-"), Unsatisfiable),
            (Some("bytes=100-200"), Unsatisfiable),
            (Some("bytes=-0"), Unsatisfiable),
            (Some("bytes=5-4"), Full),
            (Some("bytes=0-1,5-6"), Full),
            (Some("items=0-1"), Full),
            (Some("bytes=a-b"), Full),
            (Some("bytes=-"), Full),
            (Some("bytes=+1-2"), Full),
        ];
        for (header, want) in cases {
            assert_eq!(parse_range(header, 100), want, "{header:?}");
        }
        assert_eq!(parse_range(Some("bytes=-5"), 0), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-"), 0), Unsatisfiable);
    }
}
