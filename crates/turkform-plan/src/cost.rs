//! MTurk's price list: reward x assignments plus the fee.
//!
//! The fee is a percentage of the reward, per assignment: 20 %, plus another 20 % when the HIT
//! has 10 or more assignments, plus 5 % for Masters; rounded half-up to the cent and never less
//! than $0.01 per assignment (`reference/mturk-api.md` §3 "Fees"). The percentages are added
//! before rounding, so there is one rounding per assignment, as MTurk's calculator does.

use turkform_model::Money;

/// The smallest fee MTurk charges per assignment.
pub const MINIMUM_FEE: Money = Money::from_cents(1);

/// HITs with at least this many assignments pay the higher fee tier (and MTurk refuses to add
/// assignments across this line: the 10-assignment rule).
pub const LARGE_HIT_ASSIGNMENTS: u32 = 10;

/// The fee percentage for one assignment of a HIT with `max_assignments` assignments.
pub fn fee_percent(max_assignments: u32, masters: bool) -> i64 {
    let mut percent = 20;
    if max_assignments >= LARGE_HIT_ASSIGNMENTS {
        percent += 20;
    }
    if masters {
        percent += 5;
    }
    percent
}

/// MTurk's fee for one assignment of a HIT with `max_assignments` assignments.
pub fn assignment_fee(reward: Money, max_assignments: u32, masters: bool) -> Money {
    reward
        .percent_half_up(fee_percent(max_assignments, masters))
        .max(MINIMUM_FEE)
}

/// What one assignment costs (reward + fee) on a HIT with `max_assignments` assignments: the
/// fee tier depends on the HIT's size, not on how many assignments are being paid for.
pub fn assignment_cost(reward: Money, max_assignments: u32, masters: bool) -> Money {
    reward + assignment_fee(reward, max_assignments, masters)
}

/// What a HIT with `assignments` assignments commits: `assignments x assignment_cost`.
pub fn hit_cost(reward: Money, assignments: u32, masters: bool) -> Money {
    times(assignment_cost(reward, assignments, masters), assignments)
}

/// `amount x n`, saturating (a plan never needs more than `i64::MAX` cents; saturating keeps a
/// nonsense input from wrapping into a negative cost that would pass a budget check).
pub(crate) fn times(amount: Money, n: u32) -> Money {
    amount
        .checked_mul(i64::from(n))
        .unwrap_or(Money::from_cents(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(cents: i64) -> Money {
        Money::from_cents(cents)
    }

    #[test]
    fn cost_twenty_percent_fee_rounds_to_the_cent() {
        // $0.12 x 3: fee 2.4 c -> $0.02 each, $0.14 per assignment, $0.42 in all.
        assert_eq!(assignment_fee(usd(12), 3, false), usd(2));
        assert_eq!(assignment_cost(usd(12), 3, false), usd(14));
        assert_eq!(hit_cost(usd(12), 3, false), usd(42));
    }

    #[test]
    fn cost_ten_or_more_assignments_pay_the_forty_percent_tier() {
        // 40 % of $0.12 = 4.8 c -> 5 c; $0.17 x 10.
        assert_eq!(fee_percent(9, false), 20);
        assert_eq!(fee_percent(10, false), 40);
        assert_eq!(hit_cost(usd(12), 10, false), usd(170));
        assert_eq!(hit_cost(usd(100), 9, false), usd(1080));
        assert_eq!(hit_cost(usd(100), 10, false), usd(1400));
    }

    #[test]
    fn cost_masters_add_five_percent() {
        assert_eq!(fee_percent(3, true), 25);
        assert_eq!(fee_percent(10, true), 45);
        // $1.00 x 3 with Masters: 25 c fee.
        assert_eq!(hit_cost(usd(100), 3, true), usd(375));
    }

    #[test]
    fn cost_minimum_fee_is_one_cent() {
        // 20 % of $0.01 is 0.2 c: MTurk still charges $0.01.
        assert_eq!(assignment_fee(usd(1), 1, false), MINIMUM_FEE);
        assert_eq!(hit_cost(usd(1), 3, false), usd(6));
        assert_eq!(assignment_fee(Money::ZERO, 1, false), MINIMUM_FEE);
    }

    #[test]
    fn cost_rounding_is_half_up() {
        // 25 % of $0.10 = 2.5 c -> 3 c (banker's rounding would give 2 c).
        assert_eq!(assignment_fee(usd(10), 3, true), usd(3));
        // 45 % of $0.10 = 4.5 c -> 5 c.
        assert_eq!(assignment_fee(usd(10), 10, true), usd(5));
        // 20 % of $0.13 = 2.6 c -> 3 c.
        assert_eq!(assignment_fee(usd(13), 1, false), usd(3));
    }
}
