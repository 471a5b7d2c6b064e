//! Durations as Go writes them (`time.ParseDuration` / `Duration.String`), which is what
//! Chainsaw's `metav1.Duration` fields accept: a sequence of decimal numbers, each with an
//! optional fraction and a unit (`300ms`, `1.5h`, `2h45m`). Units: `ns`, `us` (or `µs`, `μs`),
//! `ms`, `s`, `m`, `h`. A lone `0` needs no unit. `std::time::Duration` cannot be negative, so a
//! negative duration is refused (`-0s` is zero); like Go, more than 2^63−1 nanoseconds
//! (about 292 years) is refused as an overflow.

use std::time::Duration;

/// What a duration looks like, for messages.
pub const SYNTAX: &str = "a duration is a sequence of decimal numbers, each with an optional fraction and a unit, like \"300ms\", \"1.5h\" or \"2h45m\" (units: ns, us, µs, ms, s, m, h)";

const NANOS_PER_SEC: u128 = 1_000_000_000;

fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// Parses a Go duration (`time.ParseDuration`).
///
/// ```
/// use std::time::Duration;
/// assert_eq!(scenario::duration::parse("1m30s"), Ok(Duration::from_secs(90)));
/// assert_eq!(scenario::duration::parse("1.5ms"), Ok(Duration::from_micros(1500)));
/// assert!(scenario::duration::parse("30").is_err());
/// ```
pub fn parse(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {text:?}: {SYNTAX}");
    let mut s = text;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let too_long = || format!("invalid duration {text:?}: too long (at most 2562047h47m16.854775807s)");
    // Go's algorithm, step by step (integers as uint64, the fraction through float64), so the
    // same text gives the same nanoseconds.
    const LIMIT: u64 = 1 << 63;
    let mut total: u64 = 0;
    while !s.is_empty() {
        // The integer part.
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, rest) = s.split_at(int_len);
        s = rest;
        let mut int_part: u64 = 0;
        for d in int_digits.bytes() {
            if int_part > LIMIT / 10 {
                return Err(too_long());
            }
            int_part = int_part * 10 + u64::from(d - b'0');
            if int_part > LIMIT {
                return Err(too_long());
            }
        }
        // The fraction: digits past what a uint64 holds are ignored.
        let mut frac: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut frac_len = 0;
        if let Some(rest) = s.strip_prefix('.') {
            s = rest;
            frac_len = s.bytes().take_while(u8::is_ascii_digit).count();
            let (frac_digits, rest) = s.split_at(frac_len);
            s = rest;
            let mut overflow = false;
            for d in frac_digits.bytes() {
                if overflow {
                    continue;
                }
                if frac > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let y = frac * 10 + u64::from(d - b'0');
                if y > LIMIT {
                    overflow = true;
                    continue;
                }
                frac = y;
                scale *= 10.0;
            }
        }
        if int_len == 0 && frac_len == 0 {
            // No digits at all ("." or "s" or "1h.").
            return Err(invalid());
        }
        // The unit.
        let unit_len = s.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(s.len());
        let (unit, rest) = s.split_at(unit_len);
        s = rest;
        if unit.is_empty() {
            return Err(format!("invalid duration {text:?}: missing unit; {SYNTAX}"));
        }
        let Some(per) = unit_nanos(unit) else {
            return Err(format!("invalid duration {text:?}: unknown unit {unit:?}; {SYNTAX}"));
        };
        if int_part > LIMIT / per {
            return Err(too_long());
        }
        let mut value = int_part * per;
        if frac > 0 {
            // As Go: float64 keeps fractions of hours accurate to the nanosecond.
            value += (frac as f64 * (per as f64 / scale)) as u64;
            if value > LIMIT {
                return Err(too_long());
            }
        }
        total = total.saturating_add(value);
        if total > LIMIT {
            return Err(too_long());
        }
    }
    if total > LIMIT - 1 && !negative {
        return Err(too_long());
    }
    if negative && total > 0 {
        return Err(format!("invalid duration {text:?}: negative durations are not allowed"));
    }
    Ok(Duration::from_nanos(total))
}

/// Formats a duration as Go's `Duration.String` does: `0s`, `100ns`, `1.5µs`, `200ms`,
/// `1m30s`, `2h0m0s`, `1h2m3.5s`.
pub fn format(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < NANOS_PER_SEC {
        // Below a second: the largest unit that keeps the integer part non-zero.
        let (unit, per, digits) = if nanos < 1_000 {
            ("ns", 1, 0)
        } else if nanos < 1_000_000 {
            ("\u{b5}s", 1_000, 3)
        } else {
            ("ms", 1_000_000, 6)
        };
        let mut out = (nanos / per).to_string();
        push_fraction(&mut out, nanos % per, digits);
        out.push_str(unit);
        return out;
    }
    let secs_total = nanos / NANOS_PER_SEC;
    let frac = nanos % NANOS_PER_SEC;
    let hours = secs_total / 3_600;
    let minutes = (secs_total / 60) % 60;
    let secs = secs_total % 60;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&secs.to_string());
    push_fraction(&mut out, frac, 9);
    out.push('s');
    out
}

/// Appends `.ddd` for a fraction of `digits` decimal places, trailing zeros dropped.
fn push_fraction(out: &mut String, frac: u128, digits: usize) {
    if frac == 0 || digits == 0 {
        return;
    }
    let text = format!("{frac:0digits$}");
    out.push('.');
    out.push_str(text.trim_end_matches('0'));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn parses_what_go_parses() {
        let cases: &[(&str, Duration)] = &[
            ("0", Duration::ZERO),
            ("-0", Duration::ZERO),
            ("+0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("-0s", Duration::ZERO),
            ("300ms", ms(300)),
            ("5s", Duration::from_secs(5)),
            ("+5s", Duration::from_secs(5)),
            ("30s", Duration::from_secs(30)),
            ("1478s", Duration::from_secs(1478)),
            ("1.5h", Duration::from_secs(5400)),
            ("2h45m", Duration::from_secs(2 * 3600 + 45 * 60)),
            ("1h2m3s4ms5us6ns", Duration::new(3723, 4_005_006)),
            ("10ns", Duration::from_nanos(10)),
            ("11us", Duration::from_micros(11)),
            ("12µs", Duration::from_micros(12)),
            ("12μs", Duration::from_micros(12)),
            ("13ms", ms(13)),
            ("14s", Duration::from_secs(14)),
            ("15m", Duration::from_secs(900)),
            ("16h", Duration::from_secs(16 * 3600)),
            ("1.0s", Duration::from_secs(1)),
            ("1.s", Duration::from_secs(1)),
            (".5s", ms(500)),
            ("1.004s", ms(1004)),
            ("100.00100s", ms(100_001)),
            ("3h30m", Duration::from_secs(12600)),
            ("39h9m14.425s", Duration::new(140_954, 425_000_000)),
            ("52763797000ns", Duration::new(52, 763_797_000)),
            ("0.3333333333333333333h", Duration::from_secs(1200)),
            // Go's maximum.
            ("9223372036854775807ns", Duration::new(9_223_372_036, 854_775_807)),
            ("9223372036.854775807s", Duration::new(9_223_372_036, 854_775_807)),
            ("2562047h47m16.854775807s", Duration::new(9_223_372_036, 854_775_807)),
            // Go's own test cases for fractions.
            ("0.100000000000000000000h", Duration::from_secs(360)),
            ("0.830103483285477580700h", Duration::new(49 * 60 + 48, 372_539_827)),
            ("9007199254740993ns", Duration::from_nanos((1 << 53) + 1)),
            ("9223372036854775.807us", Duration::new(9_223_372_036, 854_775_807)),
            ("9223372036s854ms775us807ns", Duration::new(9_223_372_036, 854_775_807)),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Ok(*want), "{text}");
        }
    }

    #[test]
    fn refuses_garbage() {
        for text in [
            "", "-", "+", ".", "-.", ".s", "s", "3", "30", "1.5", "-1s", "-1.5h", "1d", "1sec", "1 s", " 1s", "1s ",
            "1S", "1H", "1h-1m", "1..5s", "1e3s", "0x10s", "1_000ms", "ms5", "1ms.", "∞s", "1ß", "\u{0}", "1h1",
            "1.5.5s",
        ] {
            assert!(parse(text).is_err(), "{text:?} should be refused");
        }
    }

    #[test]
    fn messages_say_what_is_allowed() {
        let err = parse("30").unwrap_err();
        assert!(err.contains("missing unit"), "{err}");
        assert!(err.contains("\"300ms\""), "{err}");
        let err = parse("1d").unwrap_err();
        assert!(err.contains("unknown unit \"d\""), "{err}");
        let err = parse("-1s").unwrap_err();
        assert!(err.contains("negative"), "{err}");
        let err = parse("abc").unwrap_err();
        assert_eq!(err, format!("invalid duration \"abc\": {SYNTAX}"));
    }

    #[test]
    fn refuses_overflow() {
        for text in [
            "9223372036854775808ns",
            "9223372036.854775808s",
            "2562048h",
            "9223372036854775807ns1ns",
            "9223372036854775808ns9223372036854775808ns",
            "-9223372036854775808ns9223372036854775808ns",
            "99999999999999999999999999999999999999999999h",
            "18446744073709551616ns",
            "106751991167300d",
            "1000000000000000000000000000000000000000000000000000000000000000000000000000000s",
        ] {
            assert!(parse(text).is_err(), "{text:?} should be refused");
        }
        assert!(parse("9223372036854775808ns").unwrap_err().contains("too long"));
    }

    #[test]
    fn formats_like_go() {
        let cases: &[(Duration, &str)] = &[
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(1), "1ns"),
            (Duration::from_nanos(1100), "1.1µs"),
            (Duration::from_micros(2), "2µs"),
            (Duration::from_nanos(2_200_000), "2.2ms"),
            (ms(200), "200ms"),
            (ms(1), "1ms"),
            (Duration::from_nanos(999_999_999), "999.999999ms"),
            (Duration::from_secs(1), "1s"),
            (ms(1500), "1.5s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_secs(7200), "2h0m0s"),
            (Duration::new(3723, 500_000_000), "1h2m3.5s"),
            (Duration::new(4000, 1), "1h6m40.000000001s"),
            (Duration::new(9_223_372_036, 854_775_807), "2562047h47m16.854775807s"),
        ];
        for (d, want) in cases {
            assert_eq!(format(*d), *want, "{d:?}");
        }
    }

    #[test]
    fn format_then_parse_round_trips() {
        for nanos in [
            1u64,
            999,
            1_000,
            1_500,
            999_999,
            1_000_000,
            123_456_789,
            1_000_000_000,
            61_000_000_001,
            86_400_000_000_000,
        ] {
            let d = Duration::from_nanos(nanos);
            assert_eq!(parse(&format(d)), Ok(d), "{nanos}");
        }
    }
}
