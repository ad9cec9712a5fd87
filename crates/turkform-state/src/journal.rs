//! The write-ahead intent journal and the run log, as data. The executor commits a
//! [`NewIntent`] before each mutating MTurk call and a [`Batch`] of outcomes after; a run that
//! dies in between leaves the intent pending, and the next run resends it with the same token.

use serde::{Deserialize, Serialize};
use turkform_model::{
    Money, OrphanHit, PostedHit, RecordedAssignment, RecordedHit, RecordedHitType,
    RecordedQualificationType, UnixTime,
};

/// The row id of an intent in the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IntentId(pub i64);

/// The MTurk call an intent is about to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IntentKind {
    CreateHit,
    AddAssignments,
    ExtendLifetime,
    Expire,
    Retype,
    CreateHitType,
    CreateQualificationType,
    UpdateQualificationType,
    /// ApproveAssignment (no token: a repeat is told by InvalidAssignmentState).
    ApproveAssignment,
    /// ApproveAssignment with OverrideRejection.
    OverrideRejection,
    RejectAssignment,
    /// SendBonus with the bonus row's token; its permanent record is the `bonuses` table.
    SendBonus,
}

impl IntentKind {
    pub const ALL: [IntentKind; 12] = [
        IntentKind::CreateHit,
        IntentKind::AddAssignments,
        IntentKind::ExtendLifetime,
        IntentKind::Expire,
        IntentKind::Retype,
        IntentKind::CreateHitType,
        IntentKind::CreateQualificationType,
        IntentKind::UpdateQualificationType,
        IntentKind::ApproveAssignment,
        IntentKind::OverrideRejection,
        IntentKind::RejectAssignment,
        IntentKind::SendBonus,
    ];

    /// The name stored in the journal; stable across versions (changing one is a migration).
    pub fn as_str(self) -> &'static str {
        match self {
            IntentKind::CreateHit => "create_hit",
            IntentKind::AddAssignments => "add_assignments",
            IntentKind::ExtendLifetime => "extend_lifetime",
            IntentKind::Expire => "expire",
            IntentKind::Retype => "retype",
            IntentKind::CreateHitType => "create_hit_type",
            IntentKind::CreateQualificationType => "create_qualification_type",
            IntentKind::UpdateQualificationType => "update_qualification_type",
            IntentKind::ApproveAssignment => "approve_assignment",
            IntentKind::OverrideRejection => "override_rejection",
            IntentKind::RejectAssignment => "reject_assignment",
            IntentKind::SendBonus => "send_bonus",
        }
    }

    pub fn parse(s: &str) -> Option<IntentKind> {
        IntentKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// An MTurk call about to be attempted, as [`crate::StateStore::begin_intent`] records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewIntent {
    pub kind: IntentKind,
    pub campaign: Option<String>,
    pub item_key: Option<String>,
    pub generation: Option<u32>,
    /// For calls on an existing HIT.
    pub hit_id: Option<String>,
    /// The call's `UniqueRequestToken` where it has one, otherwise a deterministic id of the
    /// call; beginning the same token twice while it is pending returns the same intent.
    pub token: String,
    /// Everything needed to resend the call identically, in the executor's own format. Dropped
    /// once the intent is done (it exists only to resend), so the journal stays small.
    pub payload: serde_json::Value,
    pub created_at: UnixTime,
}

/// A journal entry with no outcome yet, left by a run that stopped before recording one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub id: IntentId,
    pub kind: IntentKind,
    pub campaign: Option<String>,
    pub item_key: Option<String>,
    pub generation: Option<u32>,
    pub hit_id: Option<String>,
    pub token: String,
    pub payload: serde_json::Value,
    pub created_at: UnixTime,
    /// How many times the intent was begun (1 + resumed runs that re-sent it).
    pub attempts: u32,
}

/// How an intent ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IntentOutcome {
    Done,
    /// MTurk refused the call; the message is kept for `turkform status` and the run report.
    Failed {
        message: String,
    },
    /// The executor gave up on it without a definite answer from MTurk (for example the item
    /// was removed while the intent was pending); refresh reconciles what really happened.
    Abandoned {
        message: String,
    },
}

impl IntentOutcome {
    pub(crate) fn parts(&self) -> (&'static str, Option<&str>) {
        match self {
            IntentOutcome::Done => ("done", None),
            IntentOutcome::Failed { message } => ("failed", Some(message)),
            IntentOutcome::Abandoned { message } => ("abandoned", Some(message)),
        }
    }
}

/// One transaction's worth of outcomes and the record changes they imply.
/// [`crate::StateStore::commit`] applies all of it or none of it, and bumps the serial once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    pub completed: Vec<(IntentId, IntentOutcome)>,
    /// Keyed by `hit_id`: an existing HIT is replaced whole. A HIT written here stops being an
    /// orphan (it is known to state now).
    pub upsert_hits: Vec<RecordedHit>,
    /// Keyed by `definition_hash`.
    pub upsert_hit_types: Vec<RecordedHitType>,
    /// Keyed by `name`.
    pub upsert_qualification_types: Vec<RecordedQualificationType>,
    /// `Some` is a refresh result: it replaces the whole orphan set.
    pub replace_orphans: Option<Vec<OrphanHit>>,
    /// Hit ids adopted (or otherwise dealt with).
    pub remove_orphans: Vec<String>,
    pub refreshed_at: Option<UnixTime>,
    /// Keyed by `assignment_id`: an existing assignment is replaced whole. Committed with the
    /// HIT counters that prompted the sync, so a failed sync is retried by the next refresh.
    pub upsert_assignments: Vec<RecordedAssignment>,
    /// The data row a HIT was posted with, by hit id (applied after `upsert_hits`).
    pub hit_inputs: Vec<HitInput>,
    /// `GetAccountBalance` as refresh read it.
    pub account_balance: Option<AccountBalance>,
    /// Bonuses MTurk accepted (or ListBonusPayments shows), marked paid with their intents'
    /// outcomes so the two never disagree after a crash.
    pub bonuses_paid: Vec<BonusPaid>,
    /// What MTurk reported a HIT shows workers, keyed by hit id: replaced whole.
    pub upsert_posted: Vec<PostedHit>,
    /// The size of each HIT group a refresh listed, keyed by group id (groups not listed keep
    /// their last size).
    pub hit_group_sizes: Vec<HitGroupSize>,
}

/// A recorded bonus now known to be paid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BonusPaid {
    pub campaign: String,
    /// [`turkform_model::bonus_identity`].
    pub identity: String,
    pub at: UnixTime,
}

/// How many HITs MTurk listed in one HIT group (`NumberOfSimilarHITs`), and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HitGroupSize {
    pub hit_group_id: String,
    pub similar_hits: u32,
    pub counted_at: UnixTime,
}

/// The data row of the item a HIT was created for, as it was when the HIT was posted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HitInput {
    pub hit_id: String,
    /// (column, value) in the data file's column order.
    pub row: Vec<(String, String)>,
}

/// The account's available balance and when it was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountBalance {
    pub available: Money,
    pub read_at: UnixTime,
}

impl Batch {
    /// Whether committing this batch would change nothing (it then leaves the serial alone).
    pub fn is_empty(&self) -> bool {
        self.completed.is_empty()
            && self.upsert_hits.is_empty()
            && self.upsert_hit_types.is_empty()
            && self.upsert_qualification_types.is_empty()
            && self.replace_orphans.is_none()
            && self.remove_orphans.is_empty()
            && self.refreshed_at.is_none()
            && self.upsert_assignments.is_empty()
            && self.hit_inputs.is_empty()
            && self.account_balance.is_none()
            && self.bonuses_paid.is_empty()
            && self.upsert_posted.is_empty()
            && self.hit_group_sizes.is_empty()
    }
}

/// The row id of a run in the run log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RunId(pub i64);

/// One entry of the run log: who ran what, where, when, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: i64,
    pub command: String,
    pub user: String,
    pub host: String,
    pub pid: u32,
    pub started_at: UnixTime,
    /// `None` while running, or when the run died before finishing.
    pub finished_at: Option<UnixTime>,
    /// `"ok"`, `"failed: 3 items"`, ...
    pub result: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intent_kinds_round_trip_through_their_stored_names() {
        for kind in IntentKind::ALL {
            assert_eq!(IntentKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(IntentKind::parse("CreateHit"), None);
    }

    #[test]
    fn an_empty_batch_is_empty_and_any_content_is_not() {
        assert!(Batch::default().is_empty());
        let b = Batch {
            refreshed_at: Some(UnixTime(1)),
            ..Batch::default()
        };
        assert!(!b.is_empty());
    }
}
