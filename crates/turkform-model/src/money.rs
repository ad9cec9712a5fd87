//! Money as whole cents. MTurk amounts are US dollars with at most two decimals, so an integer
//! number of cents is exact; floats never touch money anywhere in turkform.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An amount of US dollars, held as a whole number of cents.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money {
    cents: i64,
}

/// Why a string is not an amount of money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error(
        "`{0}` is not an amount of money: write dollars with at most two decimals, like \"0.12\""
    )]
    Malformed(String),
    #[error("`{0}` is too large an amount")]
    TooLarge(String),
}

impl Money {
    pub const ZERO: Money = Money { cents: 0 };

    pub const fn from_cents(cents: i64) -> Self {
        Money { cents }
    }

    pub const fn cents(self) -> i64 {
        self.cents
    }

    /// The MTurk wire form (`CurrencyAmount`): `"12.30"`, no currency sign.
    pub fn to_api_string(self) -> String {
        let sign = if self.cents < 0 { "-" } else { "" };
        let abs = self.cents.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.cents.checked_add(other.cents).map(Money::from_cents)
    }

    pub fn checked_mul(self, n: i64) -> Option<Money> {
        self.cents.checked_mul(n).map(Money::from_cents)
    }

    /// `self * percent / 100`, rounded half-up to the cent (MTurk's fee rounding).
    pub fn percent_half_up(self, percent: i64) -> Money {
        let num = i128::from(self.cents) * i128::from(percent);
        let rounded = if num >= 0 {
            (num + 50) / 100
        } else {
            (num - 50) / 100
        };
        Money::from_cents(i64::try_from(rounded).unwrap_or(i64::MAX))
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money::from_cents(self.cents.saturating_add(rhs.cents))
    }
}

impl std::ops::Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money::from_cents(self.cents.saturating_sub(rhs.cents))
    }
}

impl std::ops::AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        *self = *self + rhs;
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, |a, b| a + b)
    }
}

impl fmt::Display for Money {
    /// Human form: `$12.30`, `-$0.05`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.to_api_string();
        match s.strip_prefix('-') {
            Some(rest) => write!(f, "-${rest}"),
            None => write!(f, "${s}"),
        }
    }
}

impl FromStr for Money {
    type Err = MoneyError;

    /// Accepts `12`, `12.3`, `12.30`, `.5`-free decimal dollars; MTurk's own pattern
    /// `^[0-9]+(\.)?[0-9]{0,2}$` plus nothing else (no sign, no `$`, no exponent).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || MoneyError::Malformed(s.to_owned());
        let (whole, frac) = match s.split_once('.') {
            Some((w, f)) => (w, f),
            None => (s, ""),
        };
        if whole.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || frac.len() > 2
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let whole: i64 = whole
            .parse()
            .map_err(|_| MoneyError::TooLarge(s.to_owned()))?;
        let frac_cents: i64 = match frac.len() {
            0 => 0,
            1 => i64::from(frac.as_bytes()[0] - b'0') * 10,
            _ => frac.parse().map_err(|_| bad())?,
        };
        whole
            .checked_mul(100)
            .and_then(|c| c.checked_add(frac_cents))
            .map(Money::from_cents)
            .ok_or_else(|| MoneyError::TooLarge(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dollar_strings_exactly() {
        assert_eq!("0.12".parse::<Money>().unwrap().cents(), 12);
        assert_eq!("3".parse::<Money>().unwrap().cents(), 300);
        assert_eq!("3.5".parse::<Money>().unwrap().cents(), 350);
        assert_eq!("3.".parse::<Money>().unwrap().cents(), 300);
        for bad in ["", ".5", "0.123", "-1", "1e3", "$1", "1,00", " 1"] {
            assert!(bad.parse::<Money>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn formats_for_humans_and_for_the_api() {
        let m = Money::from_cents(1230);
        assert_eq!(m.to_string(), "$12.30");
        assert_eq!(m.to_api_string(), "12.30");
        assert_eq!(Money::from_cents(-5).to_string(), "-$0.05");
    }

    #[test]
    fn fee_rounding_is_half_up() {
        // 20 % of $0.12 = 2.4 cents -> 2; of $0.13 = 2.6 -> 3; of $0.125 n/a; of $0.025 -> 0.5 -> 1
        assert_eq!(Money::from_cents(12).percent_half_up(20).cents(), 2);
        assert_eq!(Money::from_cents(13).percent_half_up(20).cents(), 3);
        assert_eq!(Money::from_cents(5).percent_half_up(10).cents(), 1);
    }
}
