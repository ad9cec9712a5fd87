//! Carries out a plan's review actions (DESIGN.md section 9): approvals, rejections, overrides
//! and bonuses, after the HIT actions of the same apply.
//!
//! Decisions have no token, so a repeat is told by MTurk's InvalidAssignmentState and confirmed
//! with GetAssignment: in the wanted state it counts as done; approved by MTurk before a
//! rejection arrived it is a conflict, reported and never retried. A bonus is recorded pending
//! in state before its SendBonus (its write-ahead record, kept for good), sent with its row's
//! token, and marked paid after; a pending one whose token MTurk may have forgotten (23 h) is
//! looked up with ListBonusPayments before any resend.

use std::collections::HashMap;

use futures_util::StreamExt;
use turkform_model::{AssignmentStatus, DecidedBy, RecordedAssignment, RecordedBonus, UnixTime};
use turkform_mturk::{ApiError, MturkApi};
use turkform_plan::{Plan, ReviewAction};
use turkform_state::{Batch, StateStore};

use crate::engine::blocking;
use crate::{ActionFailure, ApplyError, ApplyOptions, Clock, read_retrying};

/// MTurk remembers a UniqueRequestToken for 24 h; past this age a pending bonus is looked up
/// before it is sent again, with an hour's margin for clock skew and slow runs.
const TOKEN_MEMORY_SECS: i64 = 23 * 3600;

/// Decisions are recorded in batches of this many, so a crash loses at most one batch of
/// records (and those are confirmed, not repeated, by the next apply).
const RECORD_EVERY: usize = 200;

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
    pub failed: Vec<ActionFailure>,
}

impl ReviewReport {
    pub fn done(&self) -> usize {
        self.approved + self.rejected + self.overridden + self.bonuses_paid
    }
}

enum Outcome {
    Decided(Box<RecordedAssignment>),
    Confirmed(Box<RecordedAssignment>),
    Conflict(String),
    /// A conflict, with the state MTurk shows recorded so the next plan does not try again.
    Observed(Box<RecordedAssignment>, String),
    Failed(ActionFailure),
}

fn failure(action: &ReviewAction, e: &ApiError) -> ActionFailure {
    let campaign = match action {
        ReviewAction::Approve { campaign, .. }
        | ReviewAction::OverrideRejection { campaign, .. }
        | ReviewAction::Reject { campaign, .. }
        | ReviewAction::SendBonus { campaign, .. } => campaign.clone(),
    };
    ActionFailure {
        campaign,
        item_key: action.assignment_id().to_owned(),
        kind: match action {
            ReviewAction::Approve { .. } => "approve",
            ReviewAction::OverrideRejection { .. } => "override rejection",
            ReviewAction::Reject { .. } => "reject",
            ReviewAction::SendBonus { .. } => "send bonus",
        },
        message: e.to_string(),
    }
}

/// One decision: the call, and on InvalidAssignmentState the GetAssignment that tells a repeat
/// (done) from a conflict.
async fn decide(
    api: &dyn MturkApi,
    action: &ReviewAction,
    known: Option<RecordedAssignment>,
    now: UnixTime,
) -> Outcome {
    let (want, result) = match action {
        ReviewAction::Approve {
            assignment_id,
            feedback,
            ..
        } => (
            AssignmentStatus::Approved,
            read_retrying(|| api.approve_assignment(assignment_id, feedback.as_deref(), false))
                .await,
        ),
        ReviewAction::OverrideRejection {
            assignment_id,
            feedback,
            ..
        } => (
            AssignmentStatus::Approved,
            read_retrying(|| api.approve_assignment(assignment_id, feedback.as_deref(), true))
                .await,
        ),
        ReviewAction::Reject {
            assignment_id,
            feedback,
            ..
        } => (
            AssignmentStatus::Rejected,
            read_retrying(|| api.reject_assignment(assignment_id, feedback)).await,
        ),
        ReviewAction::SendBonus { .. } => unreachable!("bonuses are paid by `pay`"),
    };
    let id = action.assignment_id();
    let feedback = match action {
        ReviewAction::Approve { feedback, .. }
        | ReviewAction::OverrideRejection { feedback, .. } => feedback.clone(),
        ReviewAction::Reject { feedback, .. } => Some(feedback.clone()),
        ReviewAction::SendBonus { .. } => None,
    };
    let record = |status: AssignmentStatus,
                  at: Option<UnixTime>,
                  feedback: Option<String>,
                  by: DecidedBy|
     -> Option<RecordedAssignment> {
        let mut a = known.clone()?;
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
    match result {
        Ok(()) => match record(want, None, feedback, DecidedBy::Turkform) {
            Some(a) => Outcome::Decided(Box::new(a)),
            None => Outcome::Conflict(format!("{id}: decided, but state does not know it")),
        },
        Err(e) if e.is_invalid_assignment_state() => {
            let got = match read_retrying(|| api.get_assignment(id)).await {
                Ok(got) => got,
                Err(e) => return Outcome::Failed(failure(action, &e)),
            };
            let at = match got.status {
                AssignmentStatus::Approved => got.approval_time,
                _ => got.rejection_time,
            };
            // A repeat of our own decision (a crash after the call, before the record) looks
            // exactly like this: the wanted state, with our feedback.
            if got.status == want {
                let by = if want == AssignmentStatus::Approved
                    && at.is_some()
                    && at == got.auto_approval_time
                {
                    DecidedBy::Auto
                } else {
                    DecidedBy::Turkform
                };
                return match record(want, at, got.requester_feedback, by) {
                    Some(a) => Outcome::Confirmed(Box::new(a)),
                    None => Outcome::Conflict(format!("{id}: already decided")),
                };
            }
            let who =
                match DecidedBy::observed(got.status, got.approval_time, got.auto_approval_time) {
                    Some(DecidedBy::Auto) => "MTurk auto-approved it first",
                    _ => "it was decided outside turkform first",
                };
            let by = DecidedBy::observed(got.status, got.approval_time, got.auto_approval_time);
            if let (Some(mut a), Some(by)) = (known, by) {
                a.status = got.status;
                a.approval_time = got.approval_time;
                a.rejection_time = got.rejection_time;
                a.requester_feedback = got.requester_feedback;
                a.decided_by = Some(by);
                return Outcome::Observed(
                    Box::new(a),
                    format!(
                        "assignment {id} is {} on MTurk, not {}: {who}; not retried",
                        got.status.api_name(),
                        want.api_name()
                    ),
                );
            }
            Outcome::Conflict(format!(
                "assignment {id} is {} on MTurk, not {}: {who}; not retried",
                got.status.api_name(),
                want.api_name()
            ))
        }
        Err(e) => Outcome::Failed(failure(action, &e)),
    }
}

/// One bonus: recorded pending first, looked up when its token may be forgotten, sent with its
/// token, marked paid.
async fn pay(
    api: &dyn MturkApi,
    store: &mut StateStore,
    action: &ReviewAction,
    pending_since: Option<UnixTime>,
    now: UnixTime,
    report: &mut ReviewReport,
) -> Result<(), ApplyError> {
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
        return Ok(());
    };
    match pending_since {
        None => {
            let bonus = RecordedBonus {
                campaign: campaign.clone(),
                identity: identity.clone(),
                assignment_id: assignment_id.clone(),
                worker_id: worker_id.clone(),
                amount: *amount,
                reason: reason.clone(),
                token: token.clone(),
                requested_at: now,
                paid_at: None,
            };
            blocking(|| store.record_bonus_pending(&bonus)).map_err(ApplyError::State)?;
        }
        Some(since) if now.secs_since(since) >= TOKEN_MEMORY_SECS => {
            let payments = match read_retrying(|| api.list_bonus_payments(assignment_id)).await {
                Ok(p) => p,
                Err(e) => {
                    report.failed.push(failure(action, &e));
                    return Ok(());
                }
            };
            if let Some(p) = payments
                .iter()
                .find(|p| p.worker_id == *worker_id && p.amount == *amount && p.reason == *reason)
            {
                let at = p.grant_time.unwrap_or(now);
                blocking(|| store.mark_bonus_paid(campaign, identity, at))
                    .map_err(ApplyError::State)?;
                report.bonuses_found_paid += 1;
                return Ok(());
            }
        }
        Some(_) => {}
    }
    match read_retrying(|| api.send_bonus(worker_id, assignment_id, *amount, reason, token)).await {
        // A repeat refused by its token: the first send was paid.
        Ok(()) | Err(ApiError::AlreadyExists { .. }) => {
            blocking(|| store.mark_bonus_paid(campaign, identity, now))
                .map_err(ApplyError::State)?;
            report.bonuses_paid += 1;
        }
        // Left pending: whether it was paid is looked up, never guessed, by the next apply.
        Err(e) => report.failed.push(failure(action, &e)),
    }
    Ok(())
}

/// Carries out every review action of `plan`: decisions `options.concurrency` at a time, then
/// bonuses one at a time (each is two state writes around one call).
pub async fn apply_review(
    plan: &Plan,
    api: &dyn MturkApi,
    store: &mut StateStore,
    clock: &dyn Clock,
    options: &ApplyOptions,
) -> Result<ReviewReport, ApplyError> {
    let mut report = ReviewReport::default();
    let actions: Vec<&ReviewAction> = plan
        .campaigns
        .iter()
        .flat_map(|c| c.review.iter().map(|r| &r.action))
        .collect();
    if actions.is_empty() {
        return Ok(report);
    }
    let recorded = blocking(|| store.load()).map_err(ApplyError::State)?;
    let known: HashMap<&str, &RecordedAssignment> = recorded
        .assignments
        .iter()
        .map(|a| (a.assignment_id.as_str(), a))
        .collect();
    let pending: HashMap<(&str, &str), UnixTime> = recorded
        .bonuses
        .iter()
        .filter(|b| b.paid_at.is_none())
        .map(|b| ((b.campaign.as_str(), b.identity.as_str()), b.requested_at))
        .collect();

    let decisions: Vec<&ReviewAction> = actions
        .iter()
        .copied()
        .filter(|a| !matches!(a, ReviewAction::SendBonus { .. }))
        .collect();
    let now = clock.now();
    let mut outcomes = futures_util::stream::iter(decisions.iter().map(|a| {
        let known = known.get(a.assignment_id()).map(|k| (*k).clone());
        async move { (*a, decide(api, a, known, now).await) }
    }))
    .buffer_unordered(options.concurrency.max(1));
    let mut batch = Batch::default();
    while let Some((action, outcome)) = outcomes.next().await {
        match outcome {
            Outcome::Decided(a) => {
                match action {
                    ReviewAction::Approve { .. } => report.approved += 1,
                    ReviewAction::OverrideRejection { .. } => report.overridden += 1,
                    ReviewAction::Reject { .. } => report.rejected += 1,
                    ReviewAction::SendBonus { .. } => {}
                }
                batch.upsert_assignments.push(*a);
            }
            Outcome::Confirmed(a) => {
                report.confirmed += 1;
                batch.upsert_assignments.push(*a);
            }
            Outcome::Conflict(m) => report.conflicts.push(m),
            Outcome::Observed(a, m) => {
                report.conflicts.push(m);
                batch.upsert_assignments.push(*a);
            }
            Outcome::Failed(f) => report.failed.push(f),
        }
        if batch.upsert_assignments.len() >= RECORD_EVERY {
            let full = std::mem::take(&mut batch);
            blocking(|| store.commit(&full)).map_err(ApplyError::State)?;
        }
        if options.cancel.is_cancelled() {
            break;
        }
    }
    drop(outcomes);
    blocking(|| store.commit(&batch)).map_err(ApplyError::State)?;

    for action in actions
        .iter()
        .filter(|a| matches!(a, ReviewAction::SendBonus { .. }))
    {
        if options.cancel.is_cancelled() {
            break;
        }
        let ReviewAction::SendBonus {
            campaign, identity, ..
        } = action
        else {
            continue;
        };
        let since = pending
            .get(&(campaign.as_str(), identity.as_str()))
            .copied();
        pay(api, store, action, since, clock.now(), &mut report).await?;
    }
    Ok(report)
}
