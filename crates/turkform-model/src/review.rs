//! Review and payments as the campaign files ask for them (DESIGN.md section 9): decisions from a
//! file, `approve_after`, known answers (gold) and bonuses. Built by `turkform-spec` with the file
//! and line of every row, so that the planner can name them in its errors and warnings.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{Money, Target, request_token};

/// MTurk's limit on `RequesterFeedback` (and on a bonus `Reason`).
pub const MAX_FEEDBACK_CHARS: usize = 1024;

/// A campaign's `[review]`, `[review.known_answers]` and `[bonuses]`; empty when absent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DesiredReview {
    /// The decisions file, when there is one.
    pub decisions_file: Option<PathBuf>,
    /// In file order; AssignmentIds are unique.
    pub decisions: Vec<Decision>,
    /// Approve submitted work this many seconds after its submission when nothing else decides.
    pub approve_after_secs: Option<u64>,
    pub goal: ReviewGoal,
    pub known_answers: Option<KnownAnswers>,
    /// The bonuses file, when there is one.
    pub bonuses_file: Option<PathBuf>,
    /// In file order; (AssignmentId, Id) identities are unique.
    pub bonuses: Vec<BonusRow>,
    /// `[notifications]`: set on the campaign's HIT type; `None` deactivates what was set.
    #[serde(default)]
    pub notifications: Option<crate::NotificationSettings>,
}

impl DesiredReview {
    /// Whether the campaign asks for any review or payment at all.
    pub fn is_empty(&self) -> bool {
        self.decisions.is_empty()
            && self.approve_after_secs.is_none()
            && self.known_answers.is_none()
            && self.bonuses.is_empty()
    }
}

/// What `goal` counts toward `assignments`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReviewGoal {
    /// `assignments` slots per item (MTurk's own meaning).
    #[default]
    Submitted,
    /// Keep each item open until it has `assignments` answers that count: every rejected answer
    /// (or a worker's second answer to the item, see [`crate::counted_answers`]) is replaced by
    /// one more assignment. Work awaiting review counts until it is rejected.
    Approved,
}

/// One marked row of a decisions file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub assignment_id: String,
    pub verdict: Verdict,
    pub file: PathBuf,
    /// 1-based physical line of the row.
    pub line: usize,
}

/// Approve or reject, with the feedback the worker sees.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verdict {
    Approve { feedback: Option<String> },
    Reject { feedback: String },
}

/// `[review.known_answers]`: the gold items and the rule applied to each worker's accuracy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KnownAnswers {
    pub file: PathBuf,
    /// Item key -> (answer field -> right value), trimmed.
    pub gold: BTreeMap<String, BTreeMap<String, String>>,
    /// A worker is judged once they answered this many gold items.
    pub min_answers: u32,
    /// Shares in 0..=1 (accuracy is a ratio, not money).
    pub reject_below: Option<f64>,
    pub approve_at_least: Option<f64>,
    pub block_below: Option<f64>,
    pub reason: String,
}

/// One row of a bonuses file: one payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BonusRow {
    pub assignment_id: String,
    pub worker_id: String,
    pub amount: Money,
    pub reason: String,
    /// The optional `Id` column: lets one assignment get a second bonus.
    pub id: Option<String>,
    pub file: PathBuf,
    pub line: usize,
}

impl BonusRow {
    /// The row's identity, as state records it: `AssignmentId` or `AssignmentId/Id`.
    pub fn identity(&self) -> String {
        bonus_identity(&self.assignment_id, self.id.as_deref())
    }

    /// The SendBonus `UniqueRequestToken`: the same row always gets the same token.
    pub fn token(&self, target: Target, campaign: &str) -> String {
        request_token(
            target,
            campaign,
            &self.assignment_id,
            &format!("bonus:{}", self.id.as_deref().unwrap_or("")),
            0,
        )
    }
}

/// See [`BonusRow::identity`].
pub fn bonus_identity(assignment_id: &str, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("{assignment_id}/{id}"),
        None => assignment_id.to_owned(),
    }
}

/// MTurk's fee on a bonus: 20 %, at least one cent.
pub fn bonus_fee(amount: Money) -> Money {
    let fee = amount.percent_half_up(20);
    if fee.cents() < 1 {
        Money::from_cents(1)
    } else {
        fee
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bonus_fee_is_a_fifth_and_at_least_a_cent() {
        assert_eq!(bonus_fee(Money::from_cents(100)).cents(), 20);
        assert_eq!(bonus_fee(Money::from_cents(1)).cents(), 1);
        assert_eq!(bonus_fee(Money::from_cents(3)).cents(), 1);
        assert_eq!(bonus_fee(Money::from_cents(25)).cents(), 5);
    }

    #[test]
    fn bonus_tokens_differ_by_id_and_campaign_and_fit_mturk() {
        let row = |id: Option<&str>| BonusRow {
            assignment_id: "A1".into(),
            worker_id: "W".into(),
            amount: Money::from_cents(5),
            reason: "r".into(),
            id: id.map(str::to_owned),
            file: "b.csv".into(),
            line: 2,
        };
        let a = row(None).token(Target::Sim, "c");
        assert_eq!(a, row(None).token(Target::Sim, "c"));
        assert_ne!(a, row(Some("2")).token(Target::Sim, "c"));
        assert_ne!(a, row(None).token(Target::Sim, "d"));
        assert_ne!(a, row(None).token(Target::Sandbox, "c"));
        assert!(a.len() <= 64);
        assert_eq!(row(Some("2")).identity(), "A1/2");
    }
}
