//! Money: exact amounts in integer micro-dollars (millionths of a US dollar), never
//! floating point. The API writes an amount as `{"amount": "500.00", "currency": "USD"}`:
//! a decimal string, so no JSON number can lose precision on the way.
//!
//! Only USD exists: the catalog's prices are on-demand USD prices of one AWS region.
//! Amounts a person enters (budgets, policy limits) are [`Money::parse_input`]: at
//! least zero, at most two decimals (cents), at most [`Money::MAX_INPUT`]. Amounts the
//! platform computes keep six decimals and are shown with at least two.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::ops::{Add, AddAssign};

/// The one currency.
pub const USD: &str = "USD";

/// Micro-units per unit.
const SCALE: i64 = 1_000_000;
const SCALE_DIGITS: usize = 6;

/// An amount of US dollars, exact to the micro-dollar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money {
    micros: i64,
}

/// Why an amount was refused; the message is meant for the person who entered it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("must be a decimal amount such as \"500.00\" (digits, an optional point and decimals)")]
    Malformed,
    #[error("must not be negative")]
    Negative,
    #[error("must have at most {0} decimals")]
    TooPrecise(usize),
    #[error("must be at most {0}")]
    TooLarge(String),
    #[error("must be USD (the only currency of the catalog's prices)")]
    Currency,
}

impl Money {
    pub const ZERO: Money = Money { micros: 0 };
    /// The largest amount a person may enter: one billion dollars.
    pub const MAX_INPUT: Money = Money {
        micros: 1_000_000_000 * SCALE,
    };

    pub const fn from_micros(micros: i64) -> Self {
        Self { micros }
    }

    pub const fn micros(self) -> i64 {
        self.micros
    }

    /// Parses a non-negative decimal string with at most `max_decimals` decimals
    /// (`"12"`, `"0.016"`, `"500.00"`); no sign, exponent, spaces or separators.
    pub fn parse_decimal(raw: &str, max_decimals: usize) -> Result<Self, MoneyError> {
        let (micros, _) = parse_scaled(raw, max_decimals.min(SCALE_DIGITS))?;
        Ok(Self { micros })
    }

    /// An amount a person entered: 0 to [`Money::MAX_INPUT`], cents at most.
    pub fn parse_input(amount: &str, currency: &str) -> Result<Self, MoneyError> {
        if currency != USD {
            return Err(MoneyError::Currency);
        }
        let money = Self::parse_decimal(amount, 2)?;
        if money > Self::MAX_INPUT {
            return Err(MoneyError::TooLarge(Self::MAX_INPUT.to_string()));
        }
        Ok(money)
    }

    /// `self × quantity / divisor`, rounded half up to the micro-dollar (computed in
    /// 128 bits, so no intermediate overflows).
    pub fn mul_div(self, quantity: i64, divisor: i64) -> Self {
        if divisor == 0 {
            return Self::ZERO;
        }
        let product = i128::from(self.micros) * i128::from(quantity);
        let d = i128::from(divisor);
        let rounded = (product + d / 2).div_euclid(d);
        Self {
            micros: i64::try_from(rounded).unwrap_or(i64::MAX),
        }
    }

    /// `self × factor`, where `factor` is in micro-units (as [`parse_quantity`] gives).
    pub fn times_micro_quantity(self, quantity_micros: i64) -> Self {
        self.mul_div(quantity_micros, SCALE)
    }

    pub fn saturating_add(self, other: Money) -> Money {
        Money {
            micros: self.micros.saturating_add(other.micros),
        }
    }

    /// The amount as a decimal string with at least two and at most six decimals.
    pub fn amount(&self) -> String {
        let sign = if self.micros < 0 { "-" } else { "" };
        let abs = self.micros.unsigned_abs();
        let units = abs / SCALE as u64;
        let mut fraction = format!("{:06}", abs % SCALE as u64);
        while fraction.len() > 2 && fraction.ends_with('0') {
            fraction.pop();
        }
        format!("{sign}{units}.{fraction}")
    }
}

/// Parses a non-negative decimal quantity (a parameter value such as `0.5` or `100`)
/// into micro-units; digits past the sixth decimal are dropped.
pub fn parse_quantity(raw: &str) -> Result<i64, MoneyError> {
    let (whole, rest) = raw.split_once('.').unwrap_or((raw, ""));
    let kept = &rest[..rest.len().min(SCALE_DIGITS)];
    let trimmed = if rest.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{kept}")
    };
    parse_scaled(&trimmed, SCALE_DIGITS).map(|(m, _)| m)
}

fn parse_scaled(raw: &str, max_decimals: usize) -> Result<(i64, usize), MoneyError> {
    if raw.starts_with('-') {
        return Err(MoneyError::Negative);
    }
    let (whole, fraction) = match raw.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (raw, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
        return Err(MoneyError::Malformed);
    }
    let fraction = fraction.unwrap_or("");
    if fraction.len() > max_decimals {
        return Err(MoneyError::TooPrecise(max_decimals));
    }
    // Twelve whole digits at most: far beyond any price, well within i64 micros.
    let whole_trimmed = whole.trim_start_matches('0');
    if whole_trimmed.len() > 12 {
        return Err(MoneyError::TooLarge("999999999999".into()));
    }
    let units: i64 = if whole_trimmed.is_empty() {
        0
    } else {
        whole_trimmed.parse().map_err(|_| MoneyError::Malformed)?
    };
    let padded = format!("{fraction:0<6}");
    let micros_part: i64 = padded.parse().map_err(|_| MoneyError::Malformed)?;
    Ok((units * SCALE + micros_part, fraction.len()))
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {USD}", self.amount())
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, other: Money) -> Money {
        self.saturating_add(other)
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, other: Money) {
        *self = self.saturating_add(other);
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

/// The wire and storage form.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    amount: String,
    currency: String,
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Wire {
            amount: self.amount(),
            currency: USD.into(),
        }
        .serialize(serializer)
    }
}

/// Reads a stored or computed amount (six decimals allowed). Amounts people enter go
/// through [`Money::parse_input`] instead, with its stricter rules and field errors.
impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        if wire.currency != USD {
            return Err(serde::de::Error::custom(MoneyError::Currency));
        }
        Money::parse_decimal(&wire.amount, SCALE_DIGITS).map_err(serde::de::Error::custom)
    }
}

/// An amount as a person enters it (`{"amount": "500.00", "currency": "USD"}`),
/// checked by [`AmountInput::parse`] with [`Money::parse_input`]'s rules.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmountInput {
    /// A decimal string: at least 0, at most two decimals, at most 1000000000.00.
    #[schema(example = "500.00", pattern = r"^[0-9]{1,10}(\.[0-9]{1,2})?$")]
    pub amount: String,
    /// Always `USD`.
    #[schema(example = "USD")]
    pub currency: String,
}

impl AmountInput {
    pub fn parse(&self) -> Result<Money, MoneyError> {
        Money::parse_input(&self.amount, &self.currency)
    }
}

impl utoipa::PartialSchema for Money {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::{schema::Type, ObjectBuilder};
        ObjectBuilder::new()
            .description(Some(
                "An exact amount of money: a decimal string and its currency (always USD).",
            ))
            .property(
                "amount",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^[0-9]{1,12}(\.[0-9]{1,6})?$"))
                    .examples([serde_json::json!("500.00")]),
            )
            .property(
                "currency",
                ObjectBuilder::new().schema_type(Type::String).enum_values(Some([USD])),
            )
            .required("amount")
            .required("currency")
            .into()
    }
}

impl utoipa::ToSchema for Money {}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(raw: &str) -> Money {
        Money::parse_decimal(raw, 6).unwrap()
    }

    #[test]
    fn amounts_parse_exactly() {
        assert_eq!(usd("500.00").micros(), 500_000_000);
        assert_eq!(usd("0.016").micros(), 16_000);
        assert_eq!(usd("12").micros(), 12_000_000);
        assert_eq!(usd("0.000001").micros(), 1);
        assert_eq!(usd("007.5").micros(), 7_500_000);
    }

    #[test]
    fn malformed_negative_and_too_precise_amounts_are_refused() {
        for bad in [
            "", ".5", "5.", "1e3", "+5", " 5", "5 ", "1,000", "0x10", "NaN", "five", "1.2.3",
        ] {
            assert_eq!(Money::parse_decimal(bad, 6), Err(MoneyError::Malformed), "{bad:?}");
        }
        assert_eq!(Money::parse_decimal("-1.00", 6), Err(MoneyError::Negative));
        assert_eq!(Money::parse_input("10.001", "USD"), Err(MoneyError::TooPrecise(2)));
        assert_eq!(Money::parse_decimal("0.0000001", 6), Err(MoneyError::TooPrecise(6)));
        assert!(matches!(
            Money::parse_decimal("9999999999999", 6),
            Err(MoneyError::TooLarge(_))
        ));
    }

    #[test]
    fn entered_amounts_are_usd_cents_within_bounds() {
        assert_eq!(Money::parse_input("500.00", "USD").unwrap(), usd("500"));
        assert_eq!(Money::parse_input("0", "USD").unwrap(), Money::ZERO);
        assert_eq!(Money::parse_input("500.00", "EUR"), Err(MoneyError::Currency));
        assert_eq!(Money::parse_input("500.00", "usd"), Err(MoneyError::Currency));
        assert!(Money::parse_input("1000000000.00", "USD").is_ok());
        assert!(matches!(
            Money::parse_input("1000000000.01", "USD"),
            Err(MoneyError::TooLarge(_))
        ));
    }

    #[test]
    fn amounts_format_with_two_to_six_decimals() {
        assert_eq!(usd("500").amount(), "500.00");
        assert_eq!(usd("11.68").amount(), "11.68");
        assert_eq!(usd("0.016").amount(), "0.016");
        assert_eq!(usd("3.504123").amount(), "3.504123");
        assert_eq!(Money::ZERO.amount(), "0.00");
        assert_eq!(usd("500").to_string(), "500.00 USD");
    }

    #[test]
    fn arithmetic_is_exact_and_rounds_half_up_only_at_the_micro_dollar() {
        // 0.016 per hour for 730 hours.
        assert_eq!(usd("0.016").mul_div(730, 1), usd("11.68"));
        // One third of a dollar: 0.333333, then 0.333334 for two thirds (half up).
        assert_eq!(usd("1").mul_div(1, 3).micros(), 333_333);
        assert_eq!(usd("1").mul_div(2, 3).micros(), 666_667);
        assert_eq!(usd("2.5").times_micro_quantity(500_000), usd("1.25"));
        let sum: Money = [usd("0.1"), usd("0.2")].into_iter().sum();
        assert_eq!(sum, usd("0.3"));
        assert_eq!(Money::from_micros(i64::MAX).mul_div(i64::MAX, 1).micros(), i64::MAX);
    }

    #[test]
    fn quantities_keep_six_decimals() {
        assert_eq!(parse_quantity("0.5").unwrap(), 500_000);
        assert_eq!(parse_quantity("100").unwrap(), 100_000_000);
        assert_eq!(parse_quantity("0.12345678").unwrap(), 123_456);
        assert!(parse_quantity("-1").is_err());
    }

    #[test]
    fn money_round_trips_as_amount_and_currency() {
        let json = serde_json::to_value(usd("500")).unwrap();
        assert_eq!(json, serde_json::json!({"amount": "500.00", "currency": "USD"}));
        let back: Money = serde_json::from_value(json).unwrap();
        assert_eq!(back, usd("500"));
        assert!(serde_json::from_value::<Money>(serde_json::json!({"amount": "1", "currency": "EUR"})).is_err());
        assert!(serde_json::from_value::<Money>(serde_json::json!({"amount": 1, "currency": "USD"})).is_err());
    }
}
