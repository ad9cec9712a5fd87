//! The recorded state: what turkform knows it has made on MTurk, as the state store keeps it
//! (and as the last refresh saw it). Built by `turkform-state`, read by the planner.

use serde::{Deserialize, Serialize};

use crate::{Target, UnixTime};

/// Everything the state store holds for one target.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordedState {
    pub target: Option<Target>,
    /// Random id given to the state database at creation; a saved plan is bound to it.
    pub lineage: String,
    /// Bumped on every change to the state; a saved plan made at another serial is stale.
    pub serial: u64,
    pub qualification_types: Vec<RecordedQualificationType>,
    pub hit_types: Vec<RecordedHitType>,
    /// Every HIT turkform created or adopted, all generations, including expired and replaced
    /// ones (history is kept; the planner looks at the newest generation of each item).
    pub hits: Vec<RecordedHit>,
    /// HITs the last refresh found on MTurk carrying turkform's annotation that state does not
    /// know (a crash after the call, before the outcome was recorded). Apply adopts them.
    pub orphans: Vec<OrphanHit>,
    /// When the recorded statuses were last refreshed from MTurk.
    pub refreshed_at: Option<UnixTime>,
    /// Every assignment refresh has seen, for good (the planner's review input).
    #[serde(default)]
    pub assignments: Vec<crate::RecordedAssignment>,
    /// Every bonus turkform sent or is sending, for good: a row once paid is never paid again.
    #[serde(default)]
    pub bonuses: Vec<RecordedBonus>,
    /// HITs `state rm` forgot: never adopted again by their annotation.
    #[serde(default)]
    pub forgotten: Vec<ForgottenHit>,
    /// `state mv` renames, oldest first: annotations carrying an old name belong to the new one.
    #[serde(default)]
    pub renames: Vec<Rename>,
    /// Worker blocks: turkform's (with their progress) and, as the last refresh saw them, the
    /// ones made outside it.
    #[serde(default)]
    pub blocks: Vec<crate::RecordedBlock>,
    /// Qualification grants of turkform's custom types, turkform's and outside ones alike.
    #[serde(default)]
    pub grants: Vec<crate::RecordedGrant>,
    /// Notification settings turkform set, by HIT type.
    #[serde(default)]
    pub notifications: Vec<crate::RecordedNotification>,
}

impl RecordedState {
    /// The generation an item's next first HIT gets: past every generation `state rm` forgot,
    /// so that it never shares a token or an annotation with a forgotten HIT.
    pub fn next_fresh_generation(&self, campaign: &str, item_key: &str) -> u32 {
        self.forgotten
            .iter()
            .filter(|f| f.campaign == campaign && f.item_key == item_key)
            .map(|f| f.generation + 1)
            .max()
            .unwrap_or(1)
    }

    /// The annotation as state names things now (after `state mv`).
    pub fn renamed(&self, mut annotation: crate::Annotation) -> crate::Annotation {
        for r in &self.renames {
            r.apply(&mut annotation);
        }
        annotation
    }
}

/// A HIT `state rm` forgot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgottenHit {
    pub campaign: String,
    pub item_key: String,
    pub generation: u32,
    pub hit_id: String,
}

/// One `state mv`: a campaign (`from_key`/`to_key` `None`) or an item renamed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rename {
    pub from_campaign: String,
    pub from_key: Option<String>,
    pub to_campaign: String,
    pub to_key: Option<String>,
}

impl Rename {
    /// Renames `annotation` if it names what this renamed.
    pub fn apply(&self, annotation: &mut crate::Annotation) {
        if annotation.campaign != self.from_campaign {
            return;
        }
        match (&self.from_key, &self.to_key) {
            (Some(from), Some(to)) => {
                // Only ever read back by the planner (never sent), so the plain key is fine
                // even where MTurk's 255 characters would have needed the hashed form.
                if annotation.matches_key(from) {
                    annotation.campaign = self.to_campaign.clone();
                    annotation.key = crate::AnnotatedKey::Plain(to.clone());
                }
            }
            _ => annotation.campaign = self.to_campaign.clone(),
        }
    }
}

/// A bonus in state. Recorded `pending` before its SendBonus call (the intent), `paid` once MTurk
/// accepted it or ListBonusPayments showed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedBonus {
    pub campaign: String,
    /// [`crate::bonus_identity`]: AssignmentId, or AssignmentId/Id.
    pub identity: String,
    pub assignment_id: String,
    pub worker_id: String,
    pub amount: crate::Money,
    pub reason: String,
    /// The UniqueRequestToken every send of this row carries.
    pub token: String,
    /// When the first SendBonus was attempted (MTurk forgets tokens 24 h later).
    pub requested_at: UnixTime,
    /// `None` while pending.
    pub paid_at: Option<UnixTime>,
}

/// A custom qualification type turkform created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedQualificationType {
    pub name: String,
    pub qualification_type_id: String,
    /// [`crate::QualificationTypeSpec::definition_hash`] of what was last applied.
    pub definition_hash: String,
}

/// A HIT type turkform registered (CreateHITType), keyed by its definition hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedHitType {
    /// [`crate::HitTypeSpec::definition_hash`].
    pub definition_hash: String,
    pub hit_type_id: String,
}

/// What MTurk showed workers for one HIT, as MTurk itself reported it (the CreateHIT response,
/// then each refresh's listing): the HIT type's properties, the HIT's group and its lifetime.
/// Recorded apart from the campaign files, so that results still show what was posted after a
/// campaign is edited or deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostedHit {
    pub hit_id: String,
    /// `HITGroupId` (the `HITTypeId` when MTurk gives no group).
    pub hit_group_id: String,
    pub title: String,
    pub description: String,
    /// As MTurk returns it: one comma-separated string.
    pub keywords: String,
    pub reward: Option<crate::Money>,
    pub assignment_duration_secs: Option<i64>,
    pub auto_approval_delay_secs: Option<i64>,
    /// `RequesterAnnotation` as MTurk returns it.
    pub requester_annotation: Option<String>,
    /// The `LifetimeInSeconds` the HIT was created with (`Expiration - CreationTime` of a HIT
    /// turkform adopted rather than created); later extensions do not change it.
    pub lifetime_secs: Option<i64>,
}

/// MTurk's `HITStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HitStatus {
    Assignable,
    Unassignable,
    Reviewable,
    Reviewing,
    /// Deleted (DeleteHIT or 120 days); MTurk no longer returns it.
    Disposed,
}

impl HitStatus {
    pub fn api_name(self) -> &'static str {
        match self {
            HitStatus::Assignable => "Assignable",
            HitStatus::Unassignable => "Unassignable",
            HitStatus::Reviewable => "Reviewable",
            HitStatus::Reviewing => "Reviewing",
            HitStatus::Disposed => "Disposed",
        }
    }

    pub fn parse(s: &str) -> Option<HitStatus> {
        Some(match s {
            "Assignable" => HitStatus::Assignable,
            "Unassignable" => HitStatus::Unassignable,
            "Reviewable" => HitStatus::Reviewable,
            "Reviewing" => HitStatus::Reviewing,
            "Disposed" => HitStatus::Disposed,
            _ => return None,
        })
    }
}

/// Why turkform itself expired a HIT early. Lets `running` after `paused` extend exactly the
/// HITs the pause closed, and nothing a requester closed on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiredBy {
    /// The campaign was paused.
    Pause,
    /// The campaign was set to `finished`.
    Finish,
    /// The item or the whole campaign was removed.
    Removal,
    /// A newer generation replaced it.
    Replace,
}

/// A change to a HIT made outside turkform, seen by refresh.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Drift {
    /// Expired early by someone else (expiration moved before what turkform set).
    Expired { was: UnixTime, now: UnixTime },
    /// Extended by someone else.
    Extended { was: UnixTime, now: UnixTime },
    /// Moved to another HIT type by someone else.
    Retyped { was: String, now: String },
    /// MaxAssignments changed by someone else.
    AssignmentsChanged { was: u32, now: u32 },
    /// Gone from MTurk (DeleteHIT, or disposed after 120 days).
    Deleted,
}

/// One HIT in state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedHit {
    pub campaign: String,
    pub item_key: String,
    /// 1 for the first HIT of an item; each replace adds one.
    pub generation: u32,
    pub hit_id: String,
    pub hit_type_id: String,
    /// Definition hash of the HIT type the HIT has now.
    pub hit_type_hash: String,
    /// [`crate::Question::content_hash`] the HIT was created with.
    pub content_hash: String,
    pub max_assignments: u32,
    /// Reward plus fees committed for this HIT so far (creation and added assignments), for
    /// `budget.max_spend` checks and `turkform status`.
    pub committed_cost: crate::Money,
    pub created_at: UnixTime,
    /// Last known expiration (set by apply, corrected by refresh).
    pub expiration: UnixTime,
    /// Last known status.
    pub status: HitStatus,
    pub assignments_available: u32,
    pub assignments_pending: u32,
    pub assignments_completed: u32,
    /// Set when turkform expired the HIT before its lifetime ended.
    pub expired_by: Option<ExpiredBy>,
    /// With `expired_by == Some(Pause)`: how much lifetime was left when it was paused, so that
    /// resuming gives the HIT back exactly that.
    pub paused_remaining_secs: Option<u64>,
    /// Changes made outside turkform, seen by the last refresh (cleared once acted on).
    pub drift: Vec<Drift>,
}

impl RecordedHit {
    /// Whether the HIT can still take workers, by [`hit_is_live`].
    pub fn is_live(&self, now: UnixTime) -> bool {
        hit_is_live(self.expiration, self.status, &self.drift, now)
    }
}

/// The one rule for "this HIT is live": not past its expiration and not deleted (by DeleteHIT,
/// by MTurk after 120 days, or outside turkform as the last refresh saw). A HIT whose every
/// assignment is submitted (Reviewable) is still live: a rejection or an added assignment can
/// give it work again until it expires. The planner (what to extend, replace, expire) and
/// `turkform status` (open and expired items, available slots) both ask this, so they never
/// disagree on which HIT of an item is open.
pub fn hit_is_live(
    expiration: UnixTime,
    status: HitStatus,
    drift: &[Drift],
    now: UnixTime,
) -> bool {
    expiration > now && !hit_is_deleted(status, drift)
}

/// Gone from MTurk: disposed, or seen deleted by the last refresh.
pub fn hit_is_deleted(status: HitStatus, drift: &[Drift]) -> bool {
    status == HitStatus::Disposed || drift.iter().any(|d| matches!(d, Drift::Deleted))
}

/// The newest generation of each item of `hits`, by (campaign, item key): the HIT that stands
/// for the item (older generations are history).
pub fn newest_generations<'a>(
    hits: impl IntoIterator<Item = &'a RecordedHit>,
) -> std::collections::BTreeMap<(&'a str, &'a str), &'a RecordedHit> {
    let mut newest: std::collections::BTreeMap<(&str, &str), &RecordedHit> =
        std::collections::BTreeMap::new();
    for hit in hits {
        let key = (hit.campaign.as_str(), hit.item_key.as_str());
        match newest.get(&key) {
            Some(h) if h.generation >= hit.generation => {}
            _ => {
                newest.insert(key, hit);
            }
        }
    }
    newest
}

/// A HIT on MTurk with turkform's annotation that state does not know.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanHit {
    pub hit_id: String,
    pub hit_type_id: String,
    pub annotation: crate::Annotation,
    pub max_assignments: u32,
    pub created_at: UnixTime,
    pub expiration: UnixTime,
    pub status: HitStatus,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_is_live_until_it_expires_or_is_deleted_whatever_its_review_status() {
        let now = UnixTime(1_000);
        let later = UnixTime(2_000);
        for status in [
            HitStatus::Assignable,
            HitStatus::Unassignable,
            HitStatus::Reviewable,
            HitStatus::Reviewing,
        ] {
            assert!(hit_is_live(later, status, &[], now), "{status:?}");
            assert!(
                !hit_is_live(now, status, &[], now),
                "{status:?} at expiration"
            );
            assert!(!hit_is_live(later, status, &[Drift::Deleted], now));
        }
        assert!(!hit_is_live(later, HitStatus::Disposed, &[], now));
    }
}
