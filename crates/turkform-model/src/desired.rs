//! The desired state: everything the campaign files ask for, validated and rendered. Built by
//! `turkform-spec`, read by the planner.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Money, QualificationRequirement, Target, UnixTime};

/// Every campaign and custom qualification type of a project, for one target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DesiredState {
    pub target: Target,
    /// Sorted by name; names are unique.
    pub campaigns: Vec<DesiredCampaign>,
    /// Sorted by name; names are unique across the project.
    pub qualification_types: Vec<QualificationTypeSpec>,
    /// sha256 (hex) over every input file's bytes and path, in a stable order. A saved plan
    /// carries it so that `apply PLANFILE` can tell that the campaigns changed since.
    pub inputs_digest: String,
    /// `[workers] blocks` and the qualification types' `grants` (DESIGN.md section 9).
    #[serde(default)]
    pub workers: crate::DesiredWorkers,
}

/// Whether a campaign's HITs should be open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CampaignStatus {
    /// HITs are created and kept open.
    Running,
    /// Live HITs are expired and remembered; `running` again extends them back.
    Paused,
    /// Live HITs are expired for good; nothing new is created.
    Finished,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Running => "running",
            CampaignStatus::Paused => "paused",
            CampaignStatus::Finished => "finished",
        }
    }
}

/// How long each HIT of a campaign stays open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Lifetime {
    /// This many seconds after the HIT's creation (`lifetime = "7d"`).
    Duration(u64),
    /// Until this instant (`ends_at = "2026-12-31T00:00:00Z"`).
    EndsAt(UnixTime),
}

impl Lifetime {
    /// The expiration a HIT created at `created` should have.
    pub fn expiration_for(self, created: UnixTime) -> UnixTime {
        match self {
            Lifetime::Duration(secs) => created.plus_secs(secs),
            Lifetime::EndsAt(at) => at,
        }
    }

    /// `LifetimeInSeconds` for a HIT created at `now` (`None` when `ends_at` is less than 30 s
    /// away, which MTurk would refuse).
    pub fn lifetime_secs_at(self, now: UnixTime) -> Option<u64> {
        match self {
            Lifetime::Duration(secs) => Some(secs),
            Lifetime::EndsAt(at) => {
                let left = at.secs_since(now);
                (left >= 30).then(|| u64::try_from(left).unwrap_or(0))
            }
        }
    }
}

/// One campaign file, validated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DesiredCampaign {
    /// `[a-z0-9][a-z0-9-]{0,39}`, unique in the project.
    pub name: String,
    /// The campaign file, relative to the project root as written on the command line.
    pub file: PathBuf,
    pub status: CampaignStatus,
    pub hit_type: HitTypeSpec,
    /// [`HitTypeSpec::definition_hash`], computed once.
    pub hit_type_hash: String,
    /// `MaxAssignments` of every HIT.
    pub assignments: u32,
    pub lifetime: Lifetime,
    pub max_spend: Option<Money>,
    /// In data-file order; keys are unique and non-empty.
    pub items: Vec<DesiredItem>,
    /// `[review]` and `[bonuses]` (DESIGN.md section 9); empty when the file has neither.
    #[serde(default)]
    pub review: crate::DesiredReview,
}

/// One row of a campaign's data file: one HIT.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DesiredItem {
    /// The value of the campaign's key column.
    pub key: String,
    pub question: Question,
    /// [`Question::content_hash`], computed once.
    pub content_hash: String,
    /// The data row as (column, value) in the data file's column order: recorded with the HIT
    /// so that results show the `Input.*` the worker saw, even after the file changed.
    #[serde(default)]
    pub row: Vec<(String, String)>,
}

/// What a worker sees: rendered question XML, or a HIT layout with parameters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Question {
    /// A complete HTMLQuestion / ExternalQuestion / QuestionForm document.
    Xml { xml: String },
    /// `HITLayoutId` + `HITLayoutParameters`, rendered.
    Layout {
        layout_id: String,
        parameters: Vec<(String, String)>,
    },
}

impl Question {
    /// sha256 (hex) of the question's canonical form. Stable across runs and machines.
    pub fn content_hash(&self) -> String {
        let mut h = Sha256::new();
        match self {
            Question::Xml { xml } => {
                h.update(b"xml\0");
                h.update(xml.as_bytes());
            }
            Question::Layout {
                layout_id,
                parameters,
            } => {
                h.update(b"layout\0");
                h.update(layout_id.as_bytes());
                for (k, v) in parameters {
                    h.update(b"\0");
                    h.update((k.len() as u64).to_le_bytes());
                    h.update(k.as_bytes());
                    h.update((v.len() as u64).to_le_bytes());
                    h.update(v.as_bytes());
                }
            }
        }
        hex::encode(h.finalize())
    }
}

/// A campaign's `[hit_type]`, with aliases resolved for the target.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HitTypeSpec {
    pub title: String,
    pub description: String,
    pub keywords: Vec<String>,
    pub reward: Money,
    pub assignment_duration_secs: u64,
    pub auto_approval_delay_secs: u64,
    pub qualifications: Vec<QualificationRequirement>,
}

impl HitTypeSpec {
    /// The `Keywords` string MTurk takes: comma-separated.
    pub fn keywords_string(&self) -> String {
        self.keywords.join(", ")
    }

    /// Whether a Masters requirement is present (it adds 5 % to the fee).
    pub fn uses_masters(&self) -> bool {
        self.qualifications.iter().any(|q| {
            matches!(&q.qualification_type, crate::QualificationTypeRef::Id(id) if crate::system::is_masters(id))
        })
    }

    /// sha256 (hex) of the canonical JSON of the definition: the planner retypes HITs whose
    /// recorded hash differs. Field order is fixed by the struct, so it is stable.
    pub fn definition_hash(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let mut h = Sha256::new();
        h.update(b"hit-type/v1\0");
        h.update(&json);
        hex::encode(h.finalize())
    }
}

/// A custom qualification type declared in `[qualification_types.NAME]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QualificationTypeSpec {
    /// The name in the TOML table, which is also the MTurk `Name`.
    pub name: String,
    pub description: String,
    pub keywords: Vec<String>,
    pub auto_granted: bool,
    pub auto_granted_value: Option<i32>,
    /// `QualificationTypeStatus` Active (true) or Inactive.
    pub active: bool,
    /// The campaign file that declares it (for diagnostics and plan display).
    pub declared_in: PathBuf,
}

impl QualificationTypeSpec {
    /// sha256 (hex) of the definition, excluding where it is declared.
    pub fn definition_hash(&self) -> String {
        let json = serde_json::to_vec(&(
            &self.name,
            &self.description,
            &self.keywords,
            self.auto_granted,
            self.auto_granted_value,
            self.active,
        ))
        .unwrap_or_default();
        let mut h = Sha256::new();
        h.update(b"qualification-type/v1\0");
        h.update(&json);
        hex::encode(h.finalize())
    }
}
