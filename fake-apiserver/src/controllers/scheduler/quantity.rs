//! Resource quantities (`resource.Quantity`) read the way the scheduler reads them:
//! `MilliValue()` for cpu and `Value()` for everything else, both rounded up to the next
//! integer as apimachinery rounds (`ScaledValue` rounds away from zero for positive values).

use serde_json::Value;

/// apimachinery's `ErrFormatWrong` text.
const FORMAT: &str = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// A quantity that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Not of the quantity syntax.
    #[error("{value:?}: {FORMAT}")]
    Format { value: String },
    /// Too many significant digits or too large an exponent to represent.
    #[error("{value:?}: quantity too large")]
    Range { value: String },
}

/// An exact quantity: `(-1)^negative × mantissa × 10^exp10 × 2^exp2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    negative: bool,
    mantissa: u128,
    exp10: i32,
    exp2: u32,
}

/// The multiplier a suffix stands for: (power of ten, power of two).
fn suffix(s: &str) -> Option<(i32, u32)> {
    Some(match s {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        _ => {
            let exp = s.strip_prefix('e').or_else(|| s.strip_prefix('E'))?;
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (exp.parse::<i32>().ok()?, 0)
        }
    })
}

impl Quantity {
    /// Parse the string form, e.g. "100m", "1.5Gi", "2e3".
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        let format = || QuantityError::Format { value: s.to_string() };
        let (negative, rest) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let split = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, suf) = rest.split_at(split);
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(format());
        }
        let (exp10, exp2) = suffix(suf).ok_or_else(format)?;
        let digits = format!("{int}{frac}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > 38 {
            return Err(QuantityError::Range { value: s.to_string() });
        }
        let mantissa = if digits.is_empty() { 0 } else { digits.parse::<u128>().map_err(|_| format())? };
        let frac_len = i32::try_from(frac.len()).map_err(|_| QuantityError::Range { value: s.to_string() })?;
        Ok(Quantity { negative, mantissa, exp10: exp10 - frac_len, exp2 })
    }

    /// Read a quantity from JSON: a string, or a bare number as some clients send.
    pub fn from_json(v: &Value) -> Result<Quantity, QuantityError> {
        match v {
            Value::String(s) => Quantity::parse(s),
            Value::Number(n) => Quantity::parse(&n.to_string()),
            other => Err(QuantityError::Format { value: other.to_string() }),
        }
    }

    /// The value in units of `10^scale`, rounded up (`ScaledValue`), saturating at the i64 range.
    pub fn scaled(&self, scale: i32) -> i64 {
        let mut num = self.mantissa;
        for _ in 0..self.exp2 {
            num = num.saturating_mul(2);
        }
        let e = self.exp10 - scale;
        let magnitude = if e > 38 {
            if num == 0 { 0 } else { u128::MAX }
        } else if e >= 0 {
            (0..e).fold(num, |acc, _| acc.saturating_mul(10))
        } else {
            let div = (0..-e).try_fold(1u128, |acc, _| acc.checked_mul(10));
            match div {
                Some(d) => num.div_ceil(d),
                None => u128::from(num > 0),
            }
        };
        let magnitude = i64::try_from(magnitude).unwrap_or(i64::MAX);
        if self.negative { -magnitude } else { magnitude }
    }

    /// `MilliValue()`: thousandths, rounded up.
    pub fn milli_value(&self) -> i64 {
        self.scaled(-3)
    }

    /// `Value()`: whole units, rounded up.
    pub fn value(&self) -> i64 {
        self.scaled(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    #[test]
    fn decimal_and_binary_suffixes() {
        assert_eq!(q("100m").milli_value(), 100);
        assert_eq!(q("1").milli_value(), 1000);
        assert_eq!(q("1.5").milli_value(), 1500);
        assert_eq!(q("0.1").milli_value(), 100);
        assert_eq!(q("1Gi").value(), 1 << 30);
        assert_eq!(q("1.5Mi").value(), 1_572_864);
        assert_eq!(q("2k").value(), 2000);
        assert_eq!(q("128974848").value(), 128_974_848);
        assert_eq!(q("129e6").value(), 129_000_000);
        assert_eq!(q("1E3").value(), 1000);
        assert_eq!(q("+5").value(), 5);
        assert_eq!(q("-5").value(), -5);
        assert_eq!(q("0").milli_value(), 0);
        assert_eq!(q(".5").milli_value(), 500);
        assert_eq!(q("5.").value(), 5);
    }

    #[test]
    fn rounding_is_up() {
        assert_eq!(q("1n").milli_value(), 1, "a nano-cpu is one milli-cpu");
        assert_eq!(q("1500u").milli_value(), 2);
        assert_eq!(q("0.5").value(), 1);
        assert_eq!(q("100m").value(), 1);
        assert_eq!(q("1e-40").value(), 1);
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        assert_eq!(q("9e30").value(), i64::MAX);
        assert_eq!(q("16Ei").value(), i64::MAX);
        assert_eq!(q("8Ei").milli_value(), i64::MAX);
        assert_eq!(q("1e2000000000").value(), i64::MAX);
        assert_eq!(q("0e2000000000").value(), 0);
    }

    #[test]
    fn bad_input_is_an_error() {
        for s in ["", "abc", "1.2.3", "1Xi", "e3", "1e", "1e+", "--1", "1 Gi", ".", "1mm"] {
            assert!(matches!(Quantity::parse(s), Err(QuantityError::Format { .. })), "{s:?}");
        }
        assert!(matches!(Quantity::parse(&"9".repeat(60)), Err(QuantityError::Range { .. })));
        let err = Quantity::parse("x").unwrap_err().to_string();
        assert!(err.contains("quantities must match the regular expression"), "{err}");
    }

    #[test]
    fn json_numbers_and_strings() {
        assert_eq!(Quantity::from_json(&serde_json::json!(2)).unwrap().milli_value(), 2000);
        assert_eq!(Quantity::from_json(&serde_json::json!("250m")).unwrap().milli_value(), 250);
        assert!(Quantity::from_json(&serde_json::json!(null)).is_err());
    }
}
