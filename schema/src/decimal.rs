//! Exact decimal numbers: an arbitrary-size unscaled integer and a scale.
//!
//! DECIMAL(65,30) needs 65 digits, beyond any machine integer, so the unscaled value is a
//! `num_bigint::BigInt`. The wire forms are the ones Kafka Connect and Avro share: the big-endian
//! two's-complement bytes of the unscaled value, with the scale in the schema.

use std::fmt;
use std::str::FromStr;

use num_bigint::{BigInt, Sign};

use crate::error::ValueError;

/// An exact decimal: `unscaled × 10^-scale`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decimal {
    unscaled: BigInt,
    scale: u32,
}

impl Decimal {
    /// The decimal `unscaled × 10^-scale`.
    pub fn new(unscaled: BigInt, scale: u32) -> Decimal {
        Decimal { unscaled, scale }
    }

    /// A whole number (scale 0), e.g. a BIGINT UNSIGNED value.
    pub fn from_u64(v: u64) -> Decimal {
        Decimal::new(BigInt::from(v), 0)
    }

    /// Decimal from the big-endian two's-complement bytes of the unscaled value.
    pub fn from_be_bytes(bytes: &[u8], scale: u32) -> Decimal {
        Decimal::new(BigInt::from_signed_bytes_be(bytes), scale)
    }

    /// The big-endian two's-complement bytes of the unscaled value (shortest form).
    pub fn to_be_bytes(&self) -> Vec<u8> {
        self.unscaled.to_signed_bytes_be()
    }

    /// Parses `-123.4500` style text (as MariaDB prints DECIMAL), keeping the scale as written.
    pub fn parse(text: &str) -> Result<Decimal, ValueError> {
        let bad = || ValueError::BadDecimal {
            text: text.to_string(),
        };
        let t = text.trim();
        let (sign, digits) = match t.strip_prefix('-') {
            Some(rest) => (Sign::Minus, rest),
            None => (Sign::Plus, t.strip_prefix('+').unwrap_or(t)),
        };
        let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
        let all: String = format!("{int_part}{frac_part}");
        if all.is_empty() || !all.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let magnitude = BigInt::from_str(&all).map_err(|_| bad())?;
        let unscaled = if sign == Sign::Minus {
            -magnitude
        } else {
            magnitude
        };
        let scale = u32::try_from(frac_part.len()).map_err(|_| bad())?;
        Ok(Decimal::new(unscaled, scale))
    }

    /// The same number with exactly `scale` fractional digits; `None` if digits would be lost.
    pub fn rescale(&self, scale: u32) -> Option<Decimal> {
        let ten = BigInt::from(10);
        if scale >= self.scale {
            let factor = num_bigint::BigInt::pow(&ten, scale - self.scale);
            return Some(Decimal::new(&self.unscaled * factor, scale));
        }
        let factor = num_bigint::BigInt::pow(&ten, self.scale - scale);
        let remainder = &self.unscaled % &factor;
        (remainder == BigInt::from(0)).then(|| Decimal::new(&self.unscaled / factor, scale))
    }

    /// The unscaled integer.
    pub fn unscaled(&self) -> &BigInt {
        &self.unscaled
    }

    /// Number of digits after the decimal point.
    pub fn scale(&self) -> u32 {
        self.scale
    }

    /// Number of significant decimal digits of the unscaled value (at least 1).
    pub fn digits(&self) -> u32 {
        let s = self.unscaled.magnitude().to_str_radix(10);
        u32::try_from(s.len()).unwrap_or(u32::MAX)
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.unscaled.magnitude().to_str_radix(10);
        let sign = if self.unscaled.sign() == Sign::Minus {
            "-"
        } else {
            ""
        };
        let scale = self.scale as usize;
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int_part, frac_part) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{int_part}.{frac_part}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_65_digits() {
        let text = format!("-{}.{}", "9".repeat(35), "9".repeat(30));
        let d = Decimal::parse(&text).expect("valid decimal");
        assert_eq!(d.scale(), 30);
        assert_eq!(d.digits(), 65);
        assert_eq!(d.to_string(), text);
        assert_eq!(Decimal::from_be_bytes(&d.to_be_bytes(), 30), d);
    }

    #[test]
    fn small_values_keep_leading_zeros() {
        assert_eq!(
            Decimal::parse("0.05").map(|d| d.to_string()).ok(),
            Some("0.05".into())
        );
        assert_eq!(
            Decimal::parse("-0.5").map(|d| d.to_string()).ok(),
            Some("-0.5".into())
        );
        assert_eq!(
            Decimal::from_u64(u64::MAX).to_string(),
            "18446744073709551615"
        );
        assert!(Decimal::parse("1e5").is_err());
    }

    #[test]
    fn rescale_refuses_to_lose_digits() {
        let d = Decimal::parse("1.50").expect("valid");
        assert_eq!(d.rescale(3).map(|d| d.to_string()), Some("1.500".into()));
        assert_eq!(d.rescale(1).map(|d| d.to_string()), Some("1.5".into()));
        assert_eq!(d.rescale(0), None);
    }
}
