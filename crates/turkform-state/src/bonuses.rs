//! The SQL of bonuses: every SendBonus turkform made or is making, kept for good, so that a row
//! once paid is never paid again (DESIGN.md section 9). On `Tx`, in the portable SQL of
//! `crate::db`, like `assignments`: it runs on both backends.

use turkform_model::{Money, RecordedBonus, Target, UnixTime};

use crate::db::{DbError, Tx};

/// Every bonus of the target, by campaign and identity.
pub(crate) fn all(tx: &mut Tx<'_>, target: Target) -> Result<Vec<RecordedBonus>, DbError> {
    tx.query_all(
        "SELECT campaign, identity, assignment_id, worker_id, amount_cents, reason, token,
                requested_at, paid_at
         FROM bonuses WHERE target = ?1 ORDER BY campaign, identity",
        &[&target.as_str()],
        |r| {
            Ok(RecordedBonus {
                campaign: r.get(0)?,
                identity: r.get(1)?,
                assignment_id: r.get(2)?,
                worker_id: r.get(3)?,
                amount: Money::from_cents(r.get(4)?),
                reason: r.get(5)?,
                token: r.get(6)?,
                requested_at: UnixTime(r.get(7)?),
                paid_at: r.get::<Option<i64>>(8)?.map(UnixTime),
            })
        },
    )
}

/// Records a bonus as pending before its call. A row already recorded keeps what it has: the
/// first request's amount, reason, token and time are what MTurk may have been sent.
pub(crate) fn record_pending(
    tx: &mut Tx<'_>,
    target: Target,
    b: &RecordedBonus,
) -> Result<bool, DbError> {
    let n = tx.execute(
        "INSERT INTO bonuses (target, campaign, identity, assignment_id, worker_id, amount_cents,
                              reason, token, requested_at, paid_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL)
         ON CONFLICT (target, campaign, identity) DO NOTHING",
        &[
            &target.as_str(),
            &b.campaign,
            &b.identity,
            &b.assignment_id,
            &b.worker_id,
            &b.amount.cents(),
            &b.reason,
            &b.token,
            &b.requested_at.0,
        ],
    )?;
    Ok(n == 1)
}

/// Marks a recorded bonus paid (once: the first time stays).
pub(crate) fn mark_paid(
    tx: &mut Tx<'_>,
    target: Target,
    campaign: &str,
    identity: &str,
    at: UnixTime,
) -> Result<bool, DbError> {
    let n = tx.execute(
        "UPDATE bonuses SET paid_at = ?4
         WHERE target = ?1 AND campaign = ?2 AND identity = ?3 AND paid_at IS NULL",
        &[&target.as_str(), &campaign, &identity, &at.0],
    )?;
    Ok(n == 1)
}
