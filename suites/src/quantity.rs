//! Kubernetes resource quantities as numbers, so cases compare values, not spellings
//! (`8Gi`, `8388608Ki` and `8589934592` are the same memory).

/// The value of a quantity in its base unit (bytes, cores, pods), as a float: binary suffixes
/// (`Ki`…`Ei`), decimal suffixes (`k`, `M`, `G`, `T`, `P`, `E`), milli (`m`) and exponents
/// (`1e3`). `None` for anything else.
pub fn value(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q.find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E').unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let (num, exp) = match num.find(['e', 'E']) {
        Some(i) => (&num[..i], num[i + 1..].parse::<i32>().ok()?),
        None => (num, 0),
    };
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    };
    Some(n * 10f64.powi(exp) * mult)
}

#[cfg(test)]
mod tests {
    use super::value;

    #[test]
    fn spellings_of_one_value_agree() {
        assert_eq!(value("8Gi"), Some(8.0 * 1024.0 * 1024.0 * 1024.0));
        assert_eq!(value("8388608Ki"), value("8Gi"));
        assert_eq!(value("8589934592"), value("8Gi"));
        assert_eq!(value("4"), Some(4.0));
        assert_eq!(value("4000m"), Some(4.0));
        assert_eq!(value("1e3"), Some(1000.0));
        assert_eq!(value("1k"), Some(1000.0));
        assert_eq!(value("110"), Some(110.0));
    }

    #[test]
    fn rejects_what_is_not_a_quantity() {
        assert_eq!(value(""), None);
        assert_eq!(value("Gi"), None);
        assert_eq!(value("8 apples"), None);
        assert_eq!(value("8Xi"), None);
    }
}
