//! The text forms metrics-server's objects take on the wire: `resource.Quantity`'s canonical
//! strings (CPU as DecimalSI nanocores, memory as BinarySI bytes), Go's
//! `time.Duration.String()` (the `window`) and `metav1.Time` (RFC 3339, whole seconds, `null`
//! for the zero time).

use serde_json::Value;

use super::storage::Time;

/// `resource.Quantity` canonical DecimalSI form of `mantissa × 10^exponent`, as apimachinery's
/// `int64Amount.AsCanonicalBytes`: trailing zeros are folded into the exponent, which is then
/// lowered to a multiple of three and written as an SI suffix ("12345n", "1500m", "2").
pub fn decimal_si(mantissa: i128, exponent: i32) -> String {
    if mantissa == 0 {
        return "0".into();
    }
    let (mut m, mut e) = (mantissa, exponent);
    while m % 10 == 0 {
        m /= 10;
        e += 1;
    }
    match e.rem_euclid(3) {
        1 => {
            m *= 10;
            e -= 1;
        }
        2 => {
            m *= 100;
            e -= 2;
        }
        _ => {}
    }
    let suffix = match e {
        -9 => "n",
        -6 => "u",
        -3 => "m",
        0 => "",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        18 => "E",
        _ => return format!("{m}e{e}"),
    };
    format!("{m}{suffix}")
}

/// CPU usage in nanocores as metrics-server's `uint64Quantity(v, DecimalSI, -9)`: a value
/// beyond `i64::MAX` loses its last digit to fit.
pub fn cpu_quantity(nanocores: u64) -> String {
    if nanocores > i64::MAX as u64 {
        return decimal_si(i128::from(nanocores / 10), -8);
    }
    decimal_si(i128::from(nanocores), -9)
}

/// Memory in bytes as a BinarySI `resource.Quantity`: below 1024 it is written in DecimalSI
/// ("512", "1k"), otherwise with the largest power-of-1024 suffix that keeps it whole
/// ("102404Ki", "2Gi", "1000001").
pub fn memory_quantity(bytes: u64) -> String {
    if bytes < 1024 {
        return decimal_si(i128::from(bytes), 0);
    }
    // uint64Quantity's precision loss above i64::MAX (a scale of 1 on val/10).
    let mut v = if bytes > i64::MAX as u64 { u128::from(bytes / 10) * 10 } else { u128::from(bytes) };
    let mut k = 0;
    while v % 1024 == 0 && k < 6 {
        v /= 1024;
        k += 1;
    }
    const SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    format!("{v}{}", SUFFIXES[k])
}

/// The fraction of `v` below `10^prec` as ".ddd" without trailing zeros (empty when none),
/// and `v / 10^prec` (Go's `fmtFrac`).
fn frac(v: u64, prec: u32) -> (String, u64) {
    let pow = 10u64.pow(prec);
    let f = v % pow;
    if f == 0 {
        return (String::new(), v / pow);
    }
    let digits = format!("{f:0width$}", width = prec as usize);
    (format!(".{}", digits.trim_end_matches('0')), v / pow)
}

/// Go's `time.Duration.String()`: "0s", "850ms", "1.5µs", "15.012s", "1m0s", "2h3m4.5s".
pub fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let u = nanos.unsigned_abs();
    let body = if u < 1_000_000_000 {
        if u < 1_000 {
            format!("{u}ns")
        } else if u < 1_000_000 {
            let (f, i) = frac(u, 3);
            format!("{i}{f}µs")
        } else {
            let (f, i) = frac(u, 6);
            format!("{i}{f}ms")
        }
    } else {
        let (f, secs) = frac(u, 9);
        let (s, minutes) = (secs % 60, secs / 60);
        match (minutes % 60, minutes / 60) {
            _ if minutes == 0 => format!("{s}{f}s"),
            (m, 0) => format!("{m}m{s}{f}s"),
            (m, h) => format!("{h}h{m}m{s}{f}s"),
        }
    };
    if nanos < 0 { format!("-{body}") } else { body }
}

/// A `metav1.Time` as JSON: RFC 3339 in UTC truncated to the second, `null` for Go's zero time
/// (and for a time outside what RFC 3339 can write).
pub fn time_json(t: Time) -> Value {
    if t == Time::ZERO {
        return Value::Null;
    }
    let secs = i64::try_from(t.0.div_euclid(1_000_000_000)).ok();
    secs.and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|ts| Value::String(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quantities_are_canonical() {
        // (nanocores, apimachinery's String() of NewScaledQuantity(n, -9))
        for (n, want) in [
            (0, "0"),
            (12345, "12345n"),
            (329087452, "329087452n"),
            (329087450, "329087450n"),
            (1_000, "1u"),
            (1_000_000, "1m"),
            (1_500_000, "1500u"),
            (250_000_000, "250m"),
            (1_500_000_000, "1500m"),
            (2_000_000_000, "2"),
            (20_000_000_000, "20"),
            (2_000_000_000_000, "2k"),
        ] {
            assert_eq!(cpu_quantity(n), want, "{n}");
        }
        assert_eq!(cpu_quantity(u64::MAX), "18446744073709551610n");
    }

    #[test]
    fn memory_quantities_are_canonical() {
        for (b, want) in [
            (0, "0"),
            (512, "512"),
            (1000, "1k"),
            (1023, "1023"),
            (1024, "1Ki"),
            (1_000_001, "1000001"),
            (104_861_696, "102404Ki"),
            (2_814_136_320, "2748180Ki"),
            (5 * 1024 * 1024, "5Mi"),
            (2 * 1024 * 1024 * 1024, "2Gi"),
        ] {
            assert_eq!(memory_quantity(b), want, "{b}");
        }
    }

    #[test]
    fn durations_as_go_writes_them() {
        for (ns, want) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (850_000_000, "850ms"),
            (1_000_000_000, "1s"),
            (15_012_000_000, "15.012s"),
            (20_064_000_000, "20.064s"),
            (60_000_000_000, "1m0s"),
            (90_500_000_000, "1m30.5s"),
            (7_384_500_000_000, "2h3m4.5s"),
            (-2_000_000_000, "-2s"),
        ] {
            assert_eq!(go_duration(ns), want, "{ns}");
        }
    }

    #[test]
    fn times_are_whole_seconds_and_zero_is_null() {
        assert_eq!(time_json(Time(1_624_396_278_302_091_597)), Value::String("2021-06-22T21:11:18Z".into()));
        assert_eq!(time_json(Time(-1)), Value::String("1969-12-31T23:59:59Z".into()));
        assert_eq!(time_json(Time::ZERO), Value::Null);
    }
}
