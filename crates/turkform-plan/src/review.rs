//! Review and payments (DESIGN.md section 9): which assignments to approve or reject, which
//! bonuses to pay, from a campaign's review tables and the assignments and bonuses in state.
//!
//! Precedence: a decisions-file row beats the known-answers rule, which beats `approve_after`.
//! The rules decide only work still awaiting review, so a decision made by anyone else (or by
//! MTurk's auto-approval) is never fought; only an explicit decisions row reverses a rejection.

use std::collections::{BTreeMap, HashMap};

use turkform_model::review::{bonus_fee, bonus_identity};
use turkform_model::{
    AssignmentStatus, DecidedBy, DesiredCampaign, KnownAnswers, Money, RecordedAssignment,
    RecordedBonus, RecordedHit, RecordedState, Target, UnixTime, Verdict,
};

use crate::{CampaignPlan, PlanError, PlannedReview, ReviewAction, ReviewBasis, Warning};

/// MTurk lets a rejection be overridden for 30 days after submission.
const OVERRIDE_WINDOW_SECS: i64 = 30 * 86_400;

/// A worker's accuracy on the campaign's gold items.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Accuracy {
    pub right: u32,
    pub judged: u32,
}

impl Accuracy {
    fn share(self) -> f64 {
        f64::from(self.right) / f64::from(self.judged.max(1))
    }
}

/// Whether an answer to a gold item is right: every field the gold row gives matches, trimmed
/// and case-sensitive. Shared with the report, so its accuracy is the one the plan's reasons give.
pub fn is_right(gold: &BTreeMap<String, String>, answers: &BTreeMap<String, String>) -> bool {
    gold.iter()
        .all(|(field, want)| answers.get(field).is_some_and(|got| got.trim() == want))
}

/// Accuracy per worker over every recorded answer to a gold item of the campaign.
pub(crate) fn accuracies<'a>(
    known: &KnownAnswers,
    assignments: &[&'a RecordedAssignment],
) -> BTreeMap<&'a str, Accuracy> {
    let mut out: BTreeMap<&str, Accuracy> = BTreeMap::new();
    for a in assignments {
        if let Some(gold) = known.gold.get(&a.item_key) {
            let acc = out.entry(a.worker_id.as_str()).or_default();
            acc.judged += 1;
            if is_right(gold, &a.answers) {
                acc.right += 1;
            }
        }
    }
    out
}

/// What the known-answers rule says of a worker, when it judges them at all.
fn rule_verdict(known: &KnownAnswers, acc: Accuracy) -> Option<Verdict> {
    if acc.judged < known.min_answers {
        return None;
    }
    let share = acc.share();
    if known.reject_below.is_some_and(|t| share < t) || known.block_below.is_some_and(|t| share < t)
    {
        return Some(Verdict::Reject {
            feedback: known.reason.clone(),
        });
    }
    if known.approve_at_least.is_some_and(|t| share >= t) {
        return Some(Verdict::Approve { feedback: None });
    }
    None
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// Plans the review of one campaign into `plan` (its `review`, cost and budget), adding the
/// warnings and plan errors it finds.
pub(crate) fn plan_campaign(
    campaign: &DesiredCampaign,
    recorded: &RecordedState,
    target: Target,
    now: UnixTime,
    plan: &mut CampaignPlan,
    warnings: &mut Vec<Warning>,
    errors: &mut Vec<PlanError>,
) {
    let review = &campaign.review;
    let name = campaign.name.as_str();
    let paid: Vec<&RecordedBonus> = recorded
        .bonuses
        .iter()
        .filter(|b| b.campaign == name)
        .collect();
    // Bonuses already sent are spent money: the budget counts them.
    let bonuses_spent: Money = paid.iter().map(|b| b.amount + bonus_fee(b.amount)).sum();
    plan.committed += bonuses_spent;
    if review.is_empty() {
        plan.over_budget = plan
            .max_spend
            .is_some_and(|max| plan.committed + plan.cost_delta > max);
        return;
    }

    let all: HashMap<&str, &RecordedAssignment> = recorded
        .assignments
        .iter()
        .map(|a| (a.assignment_id.as_str(), a))
        .collect();
    let mut mine: Vec<&RecordedAssignment> = recorded
        .assignments
        .iter()
        .filter(|a| a.campaign == name)
        .collect();
    mine.sort_by(|a, b| (a.submit_time, &a.assignment_id).cmp(&(b.submit_time, &b.assignment_id)));
    let per_assignment: HashMap<&str, Money> = recorded
        .hits
        .iter()
        .filter(|h| h.campaign == name)
        .map(|h: &RecordedHit| {
            let per =
                Money::from_cents(h.committed_cost.cents() / i64::from(h.max_assignments.max(1)));
            (h.hit_id.as_str(), per)
        })
        .collect();

    let lookup = |id: &str, file: &std::path::Path, line: usize, errors: &mut Vec<PlanError>| {
        match all.get(id) {
            Some(a) if a.campaign == name => Some(*a),
            Some(a) => {
                errors.push(PlanError {
                    campaign: name.to_owned(),
                    file: file.to_owned(),
                    line,
                    message: format!(
                        "assignment `{id}` belongs to campaign `{}`, not `{name}`",
                        a.campaign
                    ),
                    hint: Some("decide and pay it from its own campaign's files".into()),
                });
                None
            }
            None => {
                errors.push(PlanError {
                    campaign: name.to_owned(),
                    file: file.to_owned(),
                    line,
                    message: format!("assignment `{id}` is not known to state"),
                    hint: Some("check the AssignmentId; work submitted since the last refresh is known after `turkform refresh`".into()),
                });
                None
            }
        }
    };

    // 1. The decisions file.
    let mut from_file: HashMap<&str, (&Verdict, &std::path::Path, usize)> = HashMap::new();
    for d in &review.decisions {
        if lookup(&d.assignment_id, &d.file, d.line, errors).is_some() {
            from_file.insert(
                d.assignment_id.as_str(),
                (&d.verdict, d.file.as_path(), d.line),
            );
        }
    }

    // 2. Known answers.
    let acc = review
        .known_answers
        .as_ref()
        .map(|k| accuracies(k, &mine))
        .unwrap_or_default();

    let mut out: Vec<PlannedReview> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    for a in &mine {
        let id = a.assignment_id.as_str();
        let (verdict, basis) = if let Some((v, file, line)) = from_file.get(id) {
            (
                (*v).clone(),
                ReviewBasis::File {
                    file: file.to_path_buf(),
                    line: *line,
                },
            )
        } else if a.status != AssignmentStatus::Submitted {
            continue;
        } else if let Some((k, v)) = review.known_answers.as_ref().and_then(|k| {
            let w = acc.get(a.worker_id.as_str()).copied()?;
            rule_verdict(k, w).map(|v| (w, v))
        }) {
            (
                v,
                ReviewBasis::KnownAnswers {
                    worker_id: a.worker_id.clone(),
                    right: k.right,
                    judged: k.judged,
                },
            )
        } else if let Some(secs) = review.approve_after_secs
            && a.submit_time
                .is_some_and(|t| now.secs_since(t) >= secs as i64)
        {
            (
                Verdict::Approve { feedback: None },
                ReviewBasis::ApproveAfter { secs },
            )
        } else {
            continue;
        };
        let moves = per_assignment
            .get(a.hit_id.as_str())
            .copied()
            .unwrap_or(Money::ZERO);
        let reason = reason_of(&basis);
        let common = (
            name.to_owned(),
            a.assignment_id.clone(),
            a.hit_id.clone(),
            a.worker_id.clone(),
        );
        let action = match (&verdict, a.status) {
            (Verdict::Approve { feedback }, AssignmentStatus::Submitted) => ReviewAction::Approve {
                campaign: common.0,
                assignment_id: common.1,
                hit_id: common.2,
                worker_id: common.3,
                feedback: feedback.clone(),
            },
            (Verdict::Approve { feedback }, AssignmentStatus::Rejected) => {
                if a.submit_time
                    .is_some_and(|t| now.secs_since(t) > OVERRIDE_WINDOW_SECS)
                {
                    notes.push(format!("assignment {id} stays rejected: MTurk reverses a rejection only within 30 days of submission ({reason})"));
                    continue;
                }
                ReviewAction::OverrideRejection {
                    campaign: common.0,
                    assignment_id: common.1,
                    hit_id: common.2,
                    worker_id: common.3,
                    feedback: feedback.clone(),
                }
            }
            (Verdict::Reject { feedback }, AssignmentStatus::Submitted) => ReviewAction::Reject {
                campaign: common.0,
                assignment_id: common.1,
                hit_id: common.2,
                worker_id: common.3,
                feedback: feedback.clone(),
            },
            (Verdict::Reject { .. }, AssignmentStatus::Approved) => {
                let why = if a.decided_by == Some(DecidedBy::Auto) {
                    "MTurk auto-approved it before the rejection arrived"
                } else {
                    "it is already approved, and an approval cannot be reversed"
                };
                notes.push(format!(
                    "assignment {id} cannot be rejected: {why} ({reason})"
                ));
                continue;
            }
            // Already in the wanted state.
            (Verdict::Approve { .. }, AssignmentStatus::Approved)
            | (Verdict::Reject { .. }, AssignmentStatus::Rejected) => continue,
        };
        out.push(PlannedReview {
            action,
            basis,
            reason,
            moves,
            cost_delta: Money::ZERO,
        });
    }

    // 3. Bonuses.
    let by_identity: HashMap<&str, &RecordedBonus> =
        paid.iter().map(|b| (b.identity.as_str(), *b)).collect();
    for row in &review.bonuses {
        let Some(a) = lookup(&row.assignment_id, &row.file, row.line, errors) else {
            continue;
        };
        if a.worker_id != row.worker_id {
            errors.push(PlanError {
                campaign: name.to_owned(),
                file: row.file.clone(),
                line: row.line,
                message: format!(
                    "WorkerId `{}` did not do assignment `{}`: `{}` did",
                    row.worker_id, row.assignment_id, a.worker_id
                ),
                hint: Some("a bonus goes to the worker of its assignment: fix the WorkerId or the AssignmentId".into()),
            });
            continue;
        }
        let identity = bonus_identity(&row.assignment_id, row.id.as_deref());
        let at = format!("{}:{}", row.file.display(), row.line);
        match by_identity.get(identity.as_str()) {
            Some(b) if b.amount != row.amount || b.reason != row.reason => {
                let state = if b.paid_at.is_some() {
                    "was paid"
                } else {
                    "is being sent"
                };
                notes.push(format!(
                    "bonus {identity} at {at} {state} as {} ({:?}); the edited row ({}, {:?}) is not paid again: give a further payment its own Id",
                    b.amount, b.reason, row.amount, row.reason
                ));
                if b.paid_at.is_none() {
                    out.push(bonus(name, b, row));
                }
            }
            Some(b) if b.paid_at.is_some() => {}
            Some(b) => out.push(bonus(name, b, row)),
            None => {
                let fee = bonus_fee(row.amount);
                out.push(PlannedReview {
                    action: ReviewAction::SendBonus {
                        campaign: name.to_owned(),
                        assignment_id: row.assignment_id.clone(),
                        worker_id: row.worker_id.clone(),
                        amount: row.amount,
                        reason: row.reason.clone(),
                        identity,
                        token: row.token(target, name),
                        resend: false,
                    },
                    basis: ReviewBasis::File {
                        file: row.file.clone(),
                        line: row.line,
                    },
                    reason: format!("bonus row {at}"),
                    moves: row.amount + fee,
                    cost_delta: row.amount + fee,
                });
            }
        }
    }

    for message in notes {
        warnings.push(Warning {
            campaign: Some(name.to_owned()),
            item_key: None,
            message,
        });
    }
    plan.cost_delta += out.iter().map(|r| r.cost_delta).sum();
    plan.over_budget = plan
        .max_spend
        .is_some_and(|max| plan.committed + plan.cost_delta > max);
    plan.review = out;
}

/// A resend of a bonus state records as pending: exactly what was first sent, with its token.
fn bonus(campaign: &str, b: &RecordedBonus, row: &turkform_model::BonusRow) -> PlannedReview {
    let at = format!("{}:{}", row.file.display(), row.line);
    // The fee was charged (or will be) once; a pending bonus has not been counted as spent yet.
    let cost = b.amount + bonus_fee(b.amount);
    PlannedReview {
        action: ReviewAction::SendBonus {
            campaign: campaign.to_owned(),
            assignment_id: b.assignment_id.clone(),
            worker_id: b.worker_id.clone(),
            amount: b.amount,
            reason: b.reason.clone(),
            identity: b.identity.clone(),
            token: b.token.clone(),
            resend: true,
        },
        basis: ReviewBasis::File {
            file: row.file.clone(),
            line: row.line,
        },
        reason: format!(
            "bonus row {at}, pending since an earlier apply: confirmed or resent with its token"
        ),
        moves: cost,
        cost_delta: Money::ZERO,
    }
}

/// The display reason of a basis; decisions of one worker by one rule share it, so the human
/// plan can group them.
pub(crate) fn reason_of(basis: &ReviewBasis) -> String {
    match basis {
        ReviewBasis::File { file, line } => format!("decisions row {}:{line}", file.display()),
        ReviewBasis::KnownAnswers {
            worker_id,
            right,
            judged,
        } => format!(
            "of {worker_id}: accuracy {:.2} on {}",
            f64::from(*right) / f64::from((*judged).max(1)),
            plural(*judged as usize, "known answer")
        ),
        ReviewBasis::ApproveAfter { secs } => format!(
            "submitted more than {} ago (approve_after)",
            turkform_model::time::format_duration(*secs)
        ),
    }
}
