//! The review calls of a plan (DESIGN.md section 9): approvals, rejections, overrides and
//! bonuses, as journaled [`Call`](crate::calls::Call)s run by the same engine as creates (the
//! same intents, concurrency, adaptive limiter, retries and outage budget), after the HIT
//! actions of the same apply.
//!
//! Decisions have no token, so a repeat (a resend after a lost answer or a crash) is told by
//! MTurk's InvalidAssignmentState and confirmed with GetAssignment: in the wanted state it
//! counts as done; approved by MTurk before a rejection arrived it is a conflict, reported and
//! never retried. A bonus is recorded pending in the `bonuses` table in the same transaction as
//! its intent, before its SendBonus (the record is kept for good), sent with its row's token,
//! and marked paid with the intent's outcome; one whose token MTurk may have forgotten (23 h
//! after it was first requested) is looked up with ListBonusPayments before any resend.

use serde::{Deserialize, Serialize};
use turkform_model::{
    AssignmentStatus, DecidedBy, Money, RecordedAssignment, RecordedBonus, UnixTime,
};
use turkform_mturk::{ApiError, MturkApi};
use turkform_plan::ReviewAction;
use turkform_state::BonusPaid;

use crate::ActionFailure;
use crate::calls::Output;

/// MTurk remembers a UniqueRequestToken for 24 h; past this age a pending bonus is looked up
/// before it is sent again, with an hour's margin for clock skew and slow runs.
pub(crate) const TOKEN_MEMORY_SECS: i64 = 23 * 3600;

/// What the review part of an apply did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReviewReport {
    pub approved: usize,
    pub rejected: usize,
    pub overridden: usize,
    pub bonuses_paid: usize,
    /// Refused as a repeat and confirmed in the wanted state by GetAssignment.
    pub confirmed: usize,
    /// Pending bonuses found already paid by ListBonusPayments (not sent again).
    pub bonuses_found_paid: usize,
    /// Decisions MTurk or someone else made first (auto-approved before a rejection, ...).
    pub conflicts: Vec<String>,
    /// The review calls among the run's failures (also in [`crate::ApplyReport::failed`]).
    pub failed: Vec<ActionFailure>,
}

impl ReviewReport {
    pub fn done(&self) -> usize {
        self.approved + self.rejected + self.overridden + self.bonuses_paid
    }
}

/// Which decision a [`DecisionData`] sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum DecisionKind {
    Approve,
    /// ApproveAssignment with `OverrideRejection = true`.
    OverrideRejection,
    Reject,
}

impl DecisionKind {
    fn wanted(self) -> AssignmentStatus {
        match self {
            DecisionKind::Approve | DecisionKind::OverrideRejection => AssignmentStatus::Approved,
            DecisionKind::Reject => AssignmentStatus::Rejected,
        }
    }
}

/// An ApproveAssignment / RejectAssignment call as journaled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DecisionData {
    pub campaign: String,
    pub assignment_id: String,
    pub hit_id: String,
    pub worker_id: String,
    pub kind: DecisionKind,
    /// RequesterFeedback (always given for a rejection: the planner requires a reason).
    pub feedback: Option<String>,
}

/// A SendBonus call as journaled: exactly what the bonus row was first recorded with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BonusData {
    pub campaign: String,
    pub assignment_id: String,
    pub worker_id: String,
    pub amount: Money,
    pub reason: String,
    /// [`turkform_model::bonus_identity`].
    pub identity: String,
    pub token: String,
    /// When the bonus was first recorded pending: from 23 h on, MTurk may have forgotten the
    /// token, so the payment is looked up before it is sent again.
    pub requested_at: UnixTime,
    /// Bonuses of the same assignment, worker, amount and reason under other identities that
    /// are settled before this one is looked up: recorded paid in state, or earlier in this
    /// assignment's chain (see [`chain_bonuses`]). ListBonusPayments cannot tell them from this
    /// one (it shows no token), so that many matching payments are theirs, not this one's.
    #[serde(default)]
    pub alike_before: usize,
}

impl DecisionData {
    /// The call for a planned decision; `None` for a bonus.
    pub fn of(action: &ReviewAction) -> Option<DecisionData> {
        let (campaign, assignment_id, hit_id, worker_id, kind, feedback) = match action {
            ReviewAction::Approve {
                campaign,
                assignment_id,
                hit_id,
                worker_id,
                feedback,
            } => (
                campaign,
                assignment_id,
                hit_id,
                worker_id,
                DecisionKind::Approve,
                feedback.clone(),
            ),
            ReviewAction::OverrideRejection {
                campaign,
                assignment_id,
                hit_id,
                worker_id,
                feedback,
            } => (
                campaign,
                assignment_id,
                hit_id,
                worker_id,
                DecisionKind::OverrideRejection,
                feedback.clone(),
            ),
            ReviewAction::Reject {
                campaign,
                assignment_id,
                hit_id,
                worker_id,
                feedback,
            } => (
                campaign,
                assignment_id,
                hit_id,
                worker_id,
                DecisionKind::Reject,
                Some(feedback.clone()),
            ),
            ReviewAction::SendBonus { .. } => return None,
        };
        Some(DecisionData {
            campaign: campaign.clone(),
            assignment_id: assignment_id.clone(),
            hit_id: hit_id.clone(),
            worker_id: worker_id.clone(),
            kind,
            feedback,
        })
    }
}

impl BonusData {
    /// The call for a planned bonus, `None` for a decision. `recorded` is the bonus as state
    /// holds it (a resend): its first request time is what the token's age runs from.
    pub fn of(
        action: &ReviewAction,
        recorded: Option<&RecordedBonus>,
        now: UnixTime,
    ) -> Option<BonusData> {
        let ReviewAction::SendBonus {
            campaign,
            assignment_id,
            worker_id,
            amount,
            reason,
            identity,
            token,
            ..
        } = action
        else {
            return None;
        };
        Some(BonusData {
            campaign: campaign.clone(),
            assignment_id: assignment_id.clone(),
            worker_id: worker_id.clone(),
            amount: *amount,
            reason: reason.clone(),
            identity: identity.clone(),
            token: token.clone(),
            requested_at: recorded.map_or(now, |b| b.requested_at),
            alike_before: 0,
        })
    }

    /// Its pending record in the `bonuses` table, written with its intent.
    pub fn record(&self) -> RecordedBonus {
        RecordedBonus {
            campaign: self.campaign.clone(),
            identity: self.identity.clone(),
            assignment_id: self.assignment_id.clone(),
            worker_id: self.worker_id.clone(),
            amount: self.amount,
            reason: self.reason.clone(),
            token: self.token.clone(),
            requested_at: self.requested_at,
            paid_at: None,
        }
    }

    /// Whether ListBonusPayments would show `other`'s payment exactly as this one's.
    fn is_alike(&self, other: &BonusData) -> bool {
        other.assignment_id == self.assignment_id
            && other.identity != self.identity
            && other.worker_id == self.worker_id
            && other.amount == self.amount
            && other.reason == self.reason
    }
}

/// The jobs for `bonuses` (with the pending intent each resumes, if any): one chain per
/// assignment, in identity order, so the bonuses of one assignment are looked up and sent one
/// after the other. That is what lets a lookup count the payments alike that the bonuses
/// before it account for ([`BonusData::alike_before`]): run concurrently, two pending bonuses
/// alike whose tokens MTurk forgot could each take the other's payment for its own.
pub(crate) fn chain_bonuses(
    bonuses: Vec<(BonusData, Option<turkform_state::IntentId>)>,
    recorded: &[RecordedBonus],
) -> Vec<crate::engine::Job> {
    let mut by_assignment: std::collections::BTreeMap<String, Vec<_>> = Default::default();
    for (b, intent) in bonuses {
        by_assignment
            .entry(b.assignment_id.clone())
            .or_default()
            .push((b, intent));
    }
    let mut jobs = Vec::new();
    for (_, mut group) in by_assignment {
        group.sort_by(|a, b| a.0.identity.cmp(&b.0.identity));
        let settled: Vec<BonusData> = recorded
            .iter()
            .filter(|r| r.paid_at.is_some())
            .map(|r| BonusData {
                campaign: r.campaign.clone(),
                assignment_id: r.assignment_id.clone(),
                worker_id: r.worker_id.clone(),
                amount: r.amount,
                reason: r.reason.clone(),
                identity: r.identity.clone(),
                token: r.token.clone(),
                requested_at: r.requested_at,
                alike_before: 0,
            })
            .filter(|r| r.assignment_id == group[0].0.assignment_id)
            .collect();
        let mut before: Vec<BonusData> = Vec::new();
        let mut calls = std::collections::VecDeque::new();
        let mut head_intent = None;
        for (i, (mut b, intent)) in group.into_iter().enumerate() {
            b.alike_before = settled
                .iter()
                .chain(&before)
                .filter(|o| b.is_alike(o))
                .count();
            before.push(b.clone());
            if i == 0 {
                head_intent = intent;
            }
            // A later call of the chain finds its pending intent again by its token.
            calls.push_back(crate::calls::Call::SendBonus(b));
        }
        let Some(first) = calls.pop_front() else {
            continue;
        };
        let mut job = match head_intent {
            Some(id) => crate::engine::Job::resumed(first, id),
            None => crate::engine::Job::new(first),
        };
        job.then = calls;
        jobs.push(job);
    }
    jobs
}

/// Sends one decision. InvalidAssignmentState (the assignment is no longer Submitted: our own
/// earlier attempt, or someone else) is answered with the assignment as GetAssignment shows it,
/// for [`settle_decision`] to tell a repeat from a conflict.
pub(crate) async fn decide(api: &dyn MturkApi, d: &DecisionData) -> Result<Output, ApiError> {
    let id = d.assignment_id.as_str();
    let result = match d.kind {
        DecisionKind::Approve => {
            api.approve_assignment(id, d.feedback.as_deref(), false)
                .await
        }
        DecisionKind::OverrideRejection => {
            api.approve_assignment(id, d.feedback.as_deref(), true)
                .await
        }
        DecisionKind::Reject => {
            api.reject_assignment(id, d.feedback.as_deref().unwrap_or_default())
                .await
        }
    };
    match result {
        Ok(()) => Ok(Output::Done),
        Err(e) if e.is_invalid_assignment_state() => {
            api.get_assignment(id).await.map(Output::Assignment)
        }
        Err(e) => Err(e),
    }
}

/// Sends one bonus, `now` being the injected clock's. A bonus first requested 23 h ago or more
/// is looked up first: MTurk may have forgotten its token, and a resend would pay it twice.
/// A repeat MTurk refuses by its token was paid by the first send.
pub(crate) async fn pay(
    api: &dyn MturkApi,
    b: &BonusData,
    now: UnixTime,
) -> Result<Output, ApiError> {
    if now.secs_since(b.requested_at) >= TOKEN_MEMORY_SECS {
        let payments = api.list_bonus_payments(&b.assignment_id).await?;
        let matching: Vec<_> = payments
            .iter()
            .filter(|p| p.worker_id == b.worker_id && p.amount == b.amount && p.reason == b.reason)
            .collect();
        if matching.len() > b.alike_before {
            return Ok(Output::BonusFound {
                at: matching.iter().filter_map(|p| p.grant_time).max(),
            });
        }
    }
    match api
        .send_bonus(
            &b.worker_id,
            &b.assignment_id,
            b.amount,
            &b.reason,
            &b.token,
        )
        .await
    {
        Ok(()) | Err(ApiError::AlreadyExists { .. }) => Ok(Output::Done),
        Err(e) => Err(e),
    }
}

/// How a review call ended, for the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Settled {
    Approved,
    Overridden,
    Rejected,
    /// Refused as a repeat, and MTurk shows the wanted state.
    Confirmed,
    /// Someone (or MTurk's auto-approval) decided first; not retried.
    Conflict(String),
    BonusPaid,
    BonusFoundPaid,
}

/// What state learns from one finished review call.
#[derive(Debug)]
pub(crate) struct ReviewChange {
    pub assignment: Option<RecordedAssignment>,
    pub bonus_paid: Option<BonusPaid>,
    pub settled: Settled,
}

/// The record change of a decision that got `output`; `known` is the assignment as state has
/// it.
pub(crate) fn settle_decision(
    d: &DecisionData,
    output: &Output,
    known: Option<&RecordedAssignment>,
    now: UnixTime,
) -> ReviewChange {
    let want = d.kind.wanted();
    let id = d.assignment_id.as_str();
    let record = |status: AssignmentStatus,
                  at: Option<UnixTime>,
                  feedback: Option<String>,
                  by: DecidedBy|
     -> Option<RecordedAssignment> {
        let mut a = known?.clone();
        a.status = status;
        match status {
            AssignmentStatus::Approved => a.approval_time = at.or(Some(now)),
            AssignmentStatus::Rejected => a.rejection_time = at.or(Some(now)),
            AssignmentStatus::Submitted => {}
        }
        if feedback.is_some() {
            a.requester_feedback = feedback;
        }
        a.decided_by = Some(by);
        Some(a)
    };
    let Output::Assignment(got) = output else {
        return ReviewChange {
            assignment: record(want, None, d.feedback.clone(), DecidedBy::Turkform),
            bonus_paid: None,
            settled: match d.kind {
                DecisionKind::Approve => Settled::Approved,
                DecisionKind::OverrideRejection => Settled::Overridden,
                DecisionKind::Reject => Settled::Rejected,
            },
        };
    };
    let at = match got.status {
        AssignmentStatus::Approved => got.approval_time,
        _ => got.rejection_time,
    };
    // A repeat of our own decision (a crash or a lost answer after the call, before the
    // record) looks exactly like this: the wanted state, with our feedback.
    if got.status == want {
        let by =
            if want == AssignmentStatus::Approved && at.is_some() && at == got.auto_approval_time {
                DecidedBy::Auto
            } else {
                DecidedBy::Turkform
            };
        return ReviewChange {
            assignment: record(want, at, got.requester_feedback.clone(), by),
            bonus_paid: None,
            settled: Settled::Confirmed,
        };
    }
    let by = DecidedBy::observed(got.status, got.approval_time, got.auto_approval_time);
    let who = match by {
        Some(DecidedBy::Auto) => "MTurk auto-approved it first",
        _ => "it was decided outside turkform first",
    };
    let message = format!(
        "assignment {id} is {} on MTurk, not {}: {who}; not retried",
        got.status.api_name(),
        want.api_name()
    );
    // Recorded as MTurk shows it, so the next plan reports it instead of trying again.
    let assignment = match (known, by) {
        (Some(a), Some(by)) => {
            let mut a = a.clone();
            a.status = got.status;
            a.approval_time = got.approval_time;
            a.rejection_time = got.rejection_time;
            a.requester_feedback = got.requester_feedback.clone();
            a.decided_by = Some(by);
            Some(a)
        }
        _ => None,
    };
    ReviewChange {
        assignment,
        bonus_paid: None,
        settled: Settled::Conflict(message),
    }
}

/// The record change of a bonus that got `output`.
pub(crate) fn settle_bonus(b: &BonusData, output: &Output, now: UnixTime) -> ReviewChange {
    let (at, settled) = match output {
        Output::BonusFound { at } => (at.unwrap_or(now), Settled::BonusFoundPaid),
        _ => (now, Settled::BonusPaid),
    };
    ReviewChange {
        assignment: None,
        bonus_paid: Some(BonusPaid {
            campaign: b.campaign.clone(),
            identity: b.identity.clone(),
            at,
        }),
        settled,
    }
}

impl ReviewReport {
    /// Counts one settled call.
    pub(crate) fn count(&mut self, settled: Settled) {
        match settled {
            Settled::Approved => self.approved += 1,
            Settled::Overridden => self.overridden += 1,
            Settled::Rejected => self.rejected += 1,
            Settled::Confirmed => self.confirmed += 1,
            Settled::Conflict(m) => self.conflicts.push(m),
            Settled::BonusPaid => self.bonuses_paid += 1,
            Settled::BonusFoundPaid => self.bonuses_found_paid += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::Call;

    fn bonus(assignment: &str, identity: &str, cents: i64) -> BonusData {
        BonusData {
            campaign: "c".into(),
            assignment_id: assignment.into(),
            worker_id: "W".into(),
            amount: Money::from_cents(cents),
            reason: "Thanks".into(),
            identity: identity.into(),
            token: format!("tok-{identity}"),
            requested_at: UnixTime(0),
            alike_before: 0,
        }
    }

    fn chain(job: &crate::engine::Job) -> Vec<(String, usize)> {
        std::iter::once(&job.call)
            .chain(&job.then)
            .map(|c| match c {
                Call::SendBonus(b) => (b.identity.clone(), b.alike_before),
                other => panic!("not a bonus: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn bonuses_of_one_assignment_are_chained_and_count_the_payments_alike_before_them() {
        let mut paid = bonus("A1", "A1/0", 25).record();
        paid.paid_at = Some(UnixTime(1));
        let jobs = chain_bonuses(
            vec![
                (bonus("A1", "A1/b", 25), None),
                (bonus("A2", "A2", 25), None),
                (bonus("A1", "A1/a", 25), Some(turkform_state::IntentId(7))),
                // Another amount: its payment is told apart, whatever comes before it.
                (bonus("A1", "A1/c", 30), None),
            ],
            &[paid],
        );
        assert_eq!(jobs.len(), 2, "one chain per assignment");
        assert_eq!(
            chain(&jobs[0]),
            [
                ("A1/a".to_owned(), 1),
                ("A1/b".to_owned(), 2),
                ("A1/c".to_owned(), 0)
            ]
        );
        assert_eq!(
            jobs[0].intent,
            Some(turkform_state::IntentId(7)),
            "the head resumes its intent"
        );
        assert_eq!(chain(&jobs[1]), [("A2".to_owned(), 0)]);
    }
}
