//! The planner: `(desired, recorded, now) -> Plan`. It decides which MTurk calls would bring the
//! recorded state to the desired one, why, and what each costs, and never plans a call MTurk
//! would refuse. The plan is plain data ([`Plan`]): the binary renders it for humans or as JSON,
//! the executor carries it out, and a saved plan file is its serialization.
//!
//! It must not do any I/O, async or terminal formatting: it is a pure function of its inputs, so
//! that every rule can be unit-tested with literal states and a literal `now`.

// A library reports through return values and its Reporter/tracing, never by printing: the
// binary owns the terminal.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod cost;
mod goal;
mod planner;
mod review;
mod workers;

pub use planner::{PlanOptions, plan};
pub use review::is_right as answer_matches_gold;

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
    /// Problems that make the plan unappliable (a decisions or bonus row naming an assignment
    /// state does not know, a WorkerId that does not match): apply refuses a plan with any.
    #[serde(default)]
    pub errors: Vec<PlanError>,
    /// Worker blocks and qualification grants to make or undo (account-wide; run after the
    /// campaigns' review).
    #[serde(default)]
    pub workers: Vec<PlannedWorker>,
    /// Notification settings to set on (or deactivate from) campaigns' HIT types.
    #[serde(default)]
    pub notifications: Vec<PlannedNotification>,
    pub summary: Summary,
}

/// A block, unblock, grant or revoke, with why (for display only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedWorker {
    pub action: WorkerAction,
    /// Why this one, for display only.
    pub reason: String,
    /// What the human plan groups it under (the file or rule it comes from), display only.
    pub group: String,
}

/// One worker call. None has a token: a repeat is harmless on MTurk, and the executor confirms
/// a failed one with ListWorkerBlocks / ListWorkersWithQualificationType.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerAction {
    /// `CreateWorkerBlock` with `reason`.
    Block { worker_id: String, reason: String },
    /// `DeleteWorkerBlock` of a block turkform made.
    Unblock { worker_id: String },
    /// `AssociateQualificationWithWorker`. `qualification_type_id` is `None` when the type is
    /// created by the same apply (resolved by name then).
    Grant {
        qualification: String,
        qualification_type_id: Option<String>,
        worker_id: String,
        value: i32,
    },
    /// `DisassociateQualificationFromWorker` of a grant turkform made.
    Revoke {
        qualification: String,
        qualification_type_id: String,
        worker_id: String,
    },
}

impl WorkerAction {
    /// The verb the human plan groups by.
    pub fn verb(&self) -> &'static str {
        match self {
            WorkerAction::Block { .. } => "block",
            WorkerAction::Unblock { .. } => "unblock",
            WorkerAction::Grant { .. } => "grant",
            WorkerAction::Revoke { .. } => "revoke",
        }
    }

    pub fn worker_id(&self) -> &str {
        match self {
            WorkerAction::Block { worker_id, .. }
            | WorkerAction::Unblock { worker_id }
            | WorkerAction::Grant { worker_id, .. }
            | WorkerAction::Revoke { worker_id, .. } => worker_id,
        }
    }
}

/// `UpdateNotificationSettings` on a campaign's HIT type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedNotification {
    pub campaign: String,
    /// The HIT type's definition hash, to find its id when the same apply registers it.
    pub hit_type_hash: Option<String>,
    /// Known when state records the HIT type.
    pub hit_type_id: Option<String>,
    /// `Some`: set these and activate; `None`: deactivate what was set.
    pub settings: Option<turkform_model::NotificationSettings>,
    /// For display only.
    pub reason: String,
}

/// A reason the plan cannot be applied, at the file and line that causes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanError {
    pub campaign: String,
    pub file: std::path::PathBuf,
    pub line: usize,
    pub message: String,
    pub hint: Option<String>,
}

/// A decision or payment, with why it is planned and the money it moves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedReview {
    pub action: ReviewAction,
    pub basis: ReviewBasis,
    /// For display only, like [`PlannedAction::reason`].
    pub reason: String,
    /// What the call pays out: an approval pays the reward and fee already committed with the
    /// HIT; a bonus pays its amount and fee.
    pub moves: Money,
    /// What it adds to the campaign's spending: zero for decisions (their money was committed
    /// with the HIT), amount + fee for a bonus.
    pub cost_delta: Money,
}

/// Where a decision comes from (DESIGN.md section 9's precedence, highest first).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReviewBasis {
    /// A row of the decisions file (or of the bonuses file, for a bonus).
    File {
        file: std::path::PathBuf,
        line: usize,
    },
    /// The known-answers rule on this worker's accuracy.
    KnownAnswers {
        worker_id: String,
        right: u32,
        judged: u32,
    },
    /// `approve_after` elapsed since submission.
    ApproveAfter { secs: u64 },
}

/// One review call. `Approve` / `Reject` / `OverrideRejection` have no token (MTurk's
/// InvalidAssignmentState tells a repeat); `SendBonus` carries its row's deterministic token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReviewAction {
    Approve {
        campaign: String,
        assignment_id: String,
        hit_id: String,
        worker_id: String,
        feedback: Option<String>,
    },
    /// `ApproveAssignment` with `OverrideRejection = true`.
    OverrideRejection {
        campaign: String,
        assignment_id: String,
        hit_id: String,
        worker_id: String,
        feedback: Option<String>,
    },
    Reject {
        campaign: String,
        assignment_id: String,
        hit_id: String,
        worker_id: String,
        feedback: String,
    },
    SendBonus {
        campaign: String,
        assignment_id: String,
        worker_id: String,
        amount: Money,
        reason: String,
        /// [`turkform_model::bonus_identity`].
        identity: String,
        token: String,
        /// A resend of a bonus state records as pending (a crash or lost answer): the executor
        /// looks it up with ListBonusPayments first when the token may be forgotten.
        resend: bool,
    },
}

impl ReviewAction {
    pub fn assignment_id(&self) -> &str {
        match self {
            ReviewAction::Approve { assignment_id, .. }
            | ReviewAction::OverrideRejection { assignment_id, .. }
            | ReviewAction::Reject { assignment_id, .. }
            | ReviewAction::SendBonus { assignment_id, .. } => assignment_id,
        }
    }

    /// The verb the human plan groups by.
    pub fn verb(&self) -> &'static str {
        match self {
            ReviewAction::Approve { .. } => "approve",
            ReviewAction::OverrideRejection { .. } => "override rejection of",
            ReviewAction::Reject { .. } => "reject",
            ReviewAction::SendBonus { .. } => "pay bonus on",
        }
    }
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
    /// Approvals, rejections and bonuses, in assignment order (bonuses last, in file order).
    #[serde(default)]
    pub review: Vec<PlannedReview>,
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
    /// action's `cost_delta` prices it at its HIT type (Masters fee included) for the budget;
    /// the executor records a cost recomputed from what MTurk reports (reward and assignments,
    /// no Masters fee), so the two can differ.
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
    /// `goal = "approved"` (DESIGN.md section 9): the item's HIT cannot take the assignments its
    /// rejected (or repeated) answers need without crossing 10 (the 10-assignment rule), so a
    /// HIT of the next generation is created for just the missing answers. The HIT before it is
    /// expired first when it is still open (it has no slot left to offer: the planner waits
    /// until then), so that one item never has two open HITs.
    FollowUpHit {
        old_hit_id: String,
        expire_old: bool,
        create: CreateHit,
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
    /// Follow-up HITs for `goal = "approved"` ([`Action::FollowUpHit`]).
    #[serde(default)]
    pub follow_up: usize,
    pub create_hit_types: usize,
    pub create_qualification_types: usize,
    pub update_qualification_types: usize,
    /// Expire + replace: HITs that stop being available to workers.
    pub destructive: usize,
    pub cost_delta: Money,
    pub warnings: usize,
    pub drift: usize,
    #[serde(default)]
    pub approve: usize,
    #[serde(default)]
    pub reject: usize,
    #[serde(default)]
    pub override_rejection: usize,
    #[serde(default)]
    pub bonus: usize,
    /// What the review actions pay out (approvals' committed reward and fee, bonuses and fees).
    #[serde(default)]
    pub review_moves: Money,
    #[serde(default)]
    pub errors: usize,
    #[serde(default)]
    pub block: usize,
    #[serde(default)]
    pub unblock: usize,
    #[serde(default)]
    pub grant: usize,
    #[serde(default)]
    pub revoke: usize,
    /// Notification settings set or deactivated.
    #[serde(default)]
    pub notifications: usize,
    /// Blocks and grants made outside turkform that state knows of: left alone.
    #[serde(default)]
    pub outside_blocks: usize,
    #[serde(default)]
    pub outside_grants: usize,
}

impl Plan {
    /// Whether applying would change anything.
    pub fn has_changes(&self) -> bool {
        !self.qualification_types.is_empty()
            || self
                .campaigns
                .iter()
                .any(|c| !c.actions.is_empty() || !c.hit_types.is_empty() || !c.review.is_empty())
            || !self.workers.is_empty()
            || !self.notifications.is_empty()
    }
}
