//! Money as integer cents, MTurk's `CurrencyAmount` strings and the fee schedule.

use serde::{Deserialize, Serialize};

/// An amount of US money in cents. Never a float: fees round half-up to the cent.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Cents(pub i64);

impl Cents {
    /// Parses a `CurrencyAmount` (`^[0-9]+(\.)?[0-9]{0,2}$`): "0.1" and "0.10" are both ten cents.
    pub fn parse(text: &str) -> Option<Cents> {
        let (whole, frac) = match text.split_once('.') {
            Some((w, f)) => (w, f),
            None => (text, ""),
        };
        if whole.is_empty()
            || whole.len() > 15
            || frac.len() > 2
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let dollars: i64 = whole.parse().ok()?;
        let cents: i64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<i64>().ok()? * 10,
            _ => frac.parse().ok()?,
        };
        dollars.checked_mul(100)?.checked_add(cents).map(Cents)
    }

    /// Two decimals, as MTurk prints amounts ("0.10", "10000.00").
    pub fn to_amount(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

/// MTurk's commission on one assignment: 20 % of the reward, another 20 % when the HIT has 10 or
/// more assignments, another 5 % with a Masters requirement; at least one cent; half-up rounding.
pub fn assignment_fee(reward: Cents, max_assignments: u64, masters: bool) -> Cents {
    let mut percent: i64 = 20;
    if max_assignments >= 10 {
        percent += 20;
    }
    if masters {
        percent += 5;
    }
    Cents(half_up_percent(reward.0, percent).max(1))
}

/// MTurk's commission on a bonus: 20 %, at least one cent.
pub fn bonus_fee(amount: Cents) -> Cents {
    Cents(half_up_percent(amount.0, 20).max(1))
}

fn half_up_percent(cents: i64, percent: i64) -> i64 {
    (cents * percent + 50) / 100
}

/// What a HIT commits from the balance: (reward + fee) x assignments.
pub fn hit_cost(reward: Cents, max_assignments: u64, masters: bool) -> Option<Cents> {
    let per = reward.0 + assignment_fee(reward, max_assignments, masters).0;
    let n = i64::try_from(max_assignments).ok()?;
    per.checked_mul(n).map(Cents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_currency_amounts() {
        assert_eq!(Cents::parse("0.10"), Some(Cents(10)));
        assert_eq!(Cents::parse("0.1"), Some(Cents(10)));
        assert_eq!(Cents::parse("1."), Some(Cents(100)));
        assert_eq!(Cents::parse("12"), Some(Cents(1200)));
        assert_eq!(Cents::parse(".5"), None);
        assert_eq!(Cents::parse("1.234"), None);
        assert_eq!(Cents::parse("-1"), None);
        assert_eq!(Cents(1000000).to_amount(), "10000.00");
        assert_eq!(Cents(5).to_amount(), "0.05");
    }

    #[test]
    fn fees_follow_the_schedule() {
        // 20 % of 0.12 = 2.4 cents -> 2; 40 % = 4.8 -> 5; 45 % = 5.4 -> 5; 25 % = 3.
        assert_eq!(assignment_fee(Cents(12), 3, false), Cents(2));
        assert_eq!(assignment_fee(Cents(12), 10, false), Cents(5));
        assert_eq!(assignment_fee(Cents(12), 10, true), Cents(5));
        assert_eq!(assignment_fee(Cents(12), 1, true), Cents(3));
        // Half-up: 20 % of 0.05 = 1.0; of 0.03 = 0.6 -> 1 (and the minimum is 1 anyway).
        assert_eq!(assignment_fee(Cents(0), 1, false), Cents(1));
        assert_eq!(assignment_fee(Cents(1250), 1, false), Cents(250));
        assert_eq!(assignment_fee(Cents(13), 1, false), Cents(3));
        assert_eq!(hit_cost(Cents(12), 3, false), Some(Cents(42)));
        assert_eq!(bonus_fee(Cents(100)), Cents(20));
    }
}
