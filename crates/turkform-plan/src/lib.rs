//! The planner: `(desired, recorded, now) -> Plan`. It decides which MTurk calls would bring the
//! recorded state to the desired one, why, and what each costs, and never plans a call MTurk
//! would refuse. The plan is plain data ([`Plan`]): the binary renders it for humans or as JSON,
//! the executor carries it out, and a saved plan file is its serialization.
//!
//! It must not do any I/O, async or terminal formatting: it is a pure function of its inputs, so
//! that every rule can be unit-tested with literal states and a literal `now`.

pub mod cost;
mod planner;

pub use planner::{PlanOptions, plan};

use serde::{Deserialize, Serialize};
use turkform_model::{
    CampaignStatus, ExpiredBy, HitTypeSpec, Lifetime, Money, QualificationTypeSpec, Question,
    Target, UnixTime,
};

/// The version of the plan's serialized form (`plan --json`, `plan --out`).
pub const PLAN_FORMAT_VERSION: u32 = 1;

/// Everything apply would do, grouped for display, with what it costs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub target: Target,
    /// `now` as given to the planner.
    pub planned_at: UnixTime,
    /// The state this plan was computed against: a saved plan applies only to exactly this
    /// state (same lineage, same serial).
    pub state_lineage: String,
    pub state_serial: u64,
    /// [`turkform_model::DesiredState::inputs_digest`] of the campaigns it was made from.
    pub inputs_digest: String,
    /// The campaign filter it was made with (empty: all), so that applying it plans the same.
    #[serde(default)]
    pub only_campaigns: Vec<String>,
    /// Custom qualification types to create or update (run first).
    pub qualification_types: Vec<PlannedAction>,
    /// One entry per campaign that is desired or still has HITs in state, sorted by name.
    pub campaigns: Vec<CampaignPlan>,
    /// Things the planner will not do, and why (lowering assignments, shortening a lifetime, ...).
    pub warnings: Vec<Warning>,
    pub summary: Summary,
}

/// The part of a plan about one campaign.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignPlan {
    pub name: String,
    /// `None` when the campaign file was removed (its HITs are expired).
    pub status: Option<CampaignStatus>,
    /// HIT type registrations this campaign needs (run before its HITs).
    pub hit_types: Vec<PlannedAction>,
    /// HIT-level actions, in item order.
    pub actions: Vec<PlannedAction>,
    /// Changes made outside turkform, seen by the last refresh, reported for this campaign.
    pub drift: Vec<DriftNote>,
    /// Items whose HIT is in place and needs nothing.
    pub unchanged: usize,
    /// Reward + fees already committed by this campaign's HITs in state.
    pub committed: Money,
    /// Sum of the actions' cost deltas.
    pub cost_delta: Money,
    pub max_spend: Option<Money>,
    /// `committed + cost_delta > max_spend`: apply refuses the plan.
    pub over_budget: bool,
}

/// One action, with its reason (for display only: the executor never branches on it) and the
/// money it commits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedAction {
    pub action: Action,
    pub reason: String,
    pub cost_delta: Money,
}

/// A change to the world, named after what it does. Each maps to MTurk calls as in DESIGN.md §5.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// `CreateQualificationType`.
    CreateQualificationType { spec: QualificationTypeSpec },
    /// `UpdateQualificationType` of a type turkform created earlier.
    UpdateQualificationType {
        qualification_type_id: String,
        spec: QualificationTypeSpec,
    },
    /// `CreateHITType` (custom qualification names resolved at apply time).
    CreateHitType {
        campaign: String,
        definition_hash: String,
        spec: HitTypeSpec,
    },
    /// `CreateHITWithHITType`.
    CreateHit(CreateHit),
    /// A HIT found on MTurk by annotation that state does not know: record it, no call. The
    /// executor records `cost_delta` as its committed cost.
    AdoptHit {
        campaign: String,
        item_key: String,
        generation: u32,
        hit_id: String,
        /// The desired item's content hash, recorded only when MTurk returns no question to hash
        /// (a HIT layout): the executor hashes the question GetHIT returns, so an edit made
        /// while the state was lost is replaced by the next plan. `None` when the item is no
        /// longer desired.
        content_hash: Option<String>,
        /// The definition hash of the orphan's HIT type when state knows that type id; `None`
        /// otherwise: the plan then also registers the campaign's HIT type, and MTurk returning
        /// the orphan's type id for it records the type (else the next plan retypes).
        hit_type_hash: Option<String>,
    },
    /// `CreateAdditionalAssignmentsForHIT`.
    AddAssignments {
        campaign: String,
        item_key: String,
        generation: u32,
        hit_id: String,
        from: u32,
        to: u32,
    },
    /// `UpdateExpirationForHIT` with a future instant.
    ExtendLifetime {
        campaign: String,
        item_key: String,
        hit_id: String,
        from: UnixTime,
        to: UnixTime,
    },
    /// `CreateHITType` if needed, then `UpdateHITTypeOfHIT`.
    Retype {
        campaign: String,
        item_key: String,
        hit_id: String,
        from_hit_type_hash: String,
        to_hit_type_hash: String,
    },
    /// `UpdateExpirationForHIT` with `now`.
    Expire {
        campaign: String,
        item_key: String,
        hit_id: String,
        why: ExpiredBy,
    },
    /// Expire the current HIT, then create the next generation.
    Replace {
        old_hit_id: String,
        /// Whether the old HIT is still open and must be expired first.
        expire_old: bool,
        create: CreateHit,
    },
}

/// The data of one HIT creation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateHit {
    pub campaign: String,
    pub item_key: String,
    pub generation: u32,
    pub hit_type_hash: String,
    pub max_assignments: u32,
    pub lifetime: Lifetime,
    pub question: Question,
    pub content_hash: String,
    /// The item's data row, recorded with the HIT for `Input.*` in results (so a saved plan
    /// carries it too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input: Vec<(String, String)>,
}

/// Something the planner noticed and will not act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub campaign: Option<String>,
    pub item_key: Option<String>,
    pub message: String,
}

/// A change made outside turkform, for display.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftNote {
    pub item_key: String,
    pub hit_id: String,
    pub drift: turkform_model::Drift,
}

/// Counts per action kind and totals: the one-line summary.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub adopt: usize,
    pub add_assignments: usize,
    pub extend: usize,
    pub retype: usize,
    pub expire: usize,
    pub replace: usize,
    pub create_hit_types: usize,
    pub create_qualification_types: usize,
    pub update_qualification_types: usize,
    /// Expire + replace: HITs that stop being available to workers.
    pub destructive: usize,
    pub cost_delta: Money,
    pub warnings: usize,
    pub drift: usize,
}

impl Plan {
    /// Whether applying would change anything.
    pub fn has_changes(&self) -> bool {
        !self.qualification_types.is_empty()
            || self
                .campaigns
                .iter()
                .any(|c| !c.actions.is_empty() || !c.hit_types.is_empty())
    }
}
