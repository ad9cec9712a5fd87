//! The simulated MTurk account: HIT types, HITs, assignments, qualification types and the rest,
//! held in memory. Everything that depends on time (expiry, abandonment, auto-approval,
//! disposal) is derived from the virtual clock when read, so nothing has to run in the
//! background and a restart cannot miss a transition.
//!
//! Each change records a [`Key`] in `dirty`; the server turns those into [`Record`]s that the
//! store persists before the response leaves.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::money::Cents;

/// The sandbox balance every account starts with.
pub const START_BALANCE: Cents = Cents(1_000_000);
/// UniqueRequestTokens (and UpdateExpirationForHIT's hidden key) are remembered this long.
pub const TOKEN_TTL_MS: i64 = 24 * 3600 * 1000;
/// HITs are disposed automatically this long after they expire.
pub const DISPOSE_AFTER_MS: i64 = 120 * 86_400 * 1000;
/// OverrideRejection works on assignments submitted within this window.
pub const OVERRIDE_WINDOW_MS: i64 = 30 * 86_400 * 1000;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Locale {
    pub country: String,
    pub subdivision: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Requirement {
    pub type_id: String,
    pub comparator: String,
    pub integers: Option<Vec<i64>>,
    pub locales: Option<Vec<Locale>>,
    pub required_to_preview: Option<bool>,
    pub actions_guarded: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HitType {
    pub id: String,
    pub group_id: String,
    pub title: String,
    pub description: String,
    pub keywords: Option<String>,
    pub reward: Cents,
    pub assignment_duration_secs: i64,
    pub auto_approval_delay_secs: i64,
    pub requirements: Vec<Requirement>,
}

/// A worker holding a slot: accepted, not yet submitted. Past its deadline it is abandoned.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Accept {
    pub assignment_id: String,
    pub worker_id: String,
    pub accept_ms: i64,
    pub deadline_ms: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hit {
    pub id: String,
    /// Creation order; ListHITs pages by it.
    pub seq: u64,
    pub type_id: String,
    pub creation_ms: i64,
    pub expiration_ms: i64,
    pub max_assignments: u64,
    pub question: Option<String>,
    pub layout_id: Option<String>,
    pub layout_parameters: Option<Value>,
    pub annotation: Option<String>,
    pub assignment_review_policy: Option<Value>,
    pub hit_review_policy: Option<Value>,
    /// Set by UpdateHITReviewStatus (Reviewable -> Reviewing); cleared by reverting or extending.
    pub reviewing: bool,
    /// DeleteHIT was called.
    pub deleted: bool,
    /// Money taken from the balance for this HIT so far: (reward + fee) x MaxAssignments.
    pub committed: Cents,
    pub accepts: Vec<Accept>,
    /// Submitted assignments, in submission order.
    pub assignments: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Assignment {
    pub id: String,
    pub hit_id: String,
    pub worker_id: String,
    /// `Submitted`, `Approved` or `Rejected` as last set by a call; auto-approval is derived.
    pub status: String,
    pub accept_ms: i64,
    pub submit_ms: i64,
    pub deadline_ms: i64,
    pub auto_approval_ms: i64,
    pub approval_ms: Option<i64>,
    pub rejection_ms: Option<i64>,
    pub answer: String,
    pub feedback: Option<String>,
}

impl Assignment {
    /// The status at `now`: a Submitted assignment past its AutoApprovalTime is Approved.
    pub fn status_at(&self, now: i64) -> &str {
        if self.status == "Submitted" && now >= self.auto_approval_ms {
            "Approved"
        } else {
            &self.status
        }
    }

    pub fn approval_at(&self, now: i64) -> Option<i64> {
        match self.approval_ms {
            Some(t) => Some(t),
            None if self.status == "Submitted" && now >= self.auto_approval_ms => {
                Some(self.auto_approval_ms)
            }
            None => None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct QualType {
    pub id: String,
    pub seq: u64,
    pub name: String,
    pub description: String,
    pub keywords: Option<String>,
    pub status: String,
    pub test: Option<String>,
    pub answer_key: Option<String>,
    pub test_duration_secs: Option<i64>,
    pub retry_delay_secs: Option<i64>,
    pub auto_granted: bool,
    pub auto_granted_value: i64,
    pub creation_ms: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Qualification {
    pub type_id: String,
    pub worker_id: String,
    pub value: i64,
    pub grant_ms: i64,
    /// `Granted` or `Revoked`.
    pub status: String,
    pub seq: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenRecord {
    /// What the token produced (a HIT id, or the HIT/assignment the call was about).
    pub target: String,
    pub at_ms: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Block {
    pub worker_id: String,
    pub reason: String,
    pub seq: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NotificationSetting {
    pub hit_type_id: String,
    pub specification: Option<Value>,
    pub active: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bonus {
    pub seq: u64,
    pub worker_id: String,
    pub amount: Cents,
    pub assignment_id: String,
    pub hit_id: String,
    pub reason: String,
    pub grant_ms: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct QualRequest {
    pub id: String,
    pub seq: u64,
    pub type_id: String,
    pub worker_id: String,
    pub answer: Option<String>,
    pub submit_ms: i64,
}

/// Account-wide scalars.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Meta {
    pub balance: Cents,
    /// Virtual now = real now + this.
    pub clock_offset_ms: i64,
    pub next_seq: u64,
}

/// What changed, so that it can be persisted.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Meta,
    HitType(String),
    Hit(String),
    Assignment(String),
    QualType(String),
    Qualification(String, String),
    Token(String),
    Block(String),
    Notification(String),
    Bonus(u64),
    QualRequest(String),
}

/// One persisted row: `data` is `None` when the entity was removed.
#[derive(Clone, Debug)]
pub struct Record {
    pub kind: &'static str,
    pub id: String,
    pub data: Option<String>,
}

/// A HIT's derived counters and status at some instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HitView {
    pub available: u64,
    pub pending: u64,
    pub completed: u64,
    pub status: &'static str,
}

#[derive(Debug)]
pub struct World {
    pub meta: Meta,
    pub hit_types: HashMap<String, HitType>,
    pub hits: HashMap<String, Hit>,
    /// seq -> HIT id, for stable ordering and keyset pagination.
    pub hit_order: BTreeMap<u64, String>,
    pub assignments: HashMap<String, Assignment>,
    pub qual_types: HashMap<String, QualType>,
    pub qual_type_order: BTreeMap<u64, String>,
    /// (type id, worker id) -> qualification.
    pub qualifications: HashMap<(String, String), Qualification>,
    /// `<namespace>|<token>` -> record.
    pub tokens: HashMap<String, TokenRecord>,
    pub blocks: HashMap<String, Block>,
    pub notifications: HashMap<String, NotificationSetting>,
    pub bonuses: BTreeMap<u64, Bonus>,
    pub qual_requests: HashMap<String, QualRequest>,
    pub dirty: Vec<Key>,
}

impl Default for World {
    fn default() -> Self {
        World {
            meta: Meta {
                balance: START_BALANCE,
                clock_offset_ms: 0,
                next_seq: 1,
            },
            hit_types: HashMap::new(),
            hits: HashMap::new(),
            hit_order: BTreeMap::new(),
            assignments: HashMap::new(),
            qual_types: HashMap::new(),
            qual_type_order: BTreeMap::new(),
            qualifications: HashMap::new(),
            tokens: HashMap::new(),
            blocks: HashMap::new(),
            notifications: HashMap::new(),
            bonuses: BTreeMap::new(),
            qual_requests: HashMap::new(),
            dirty: Vec::new(),
        }
    }
}

impl World {
    pub fn next_seq(&mut self) -> u64 {
        let s = self.meta.next_seq;
        self.meta.next_seq += 1;
        self.touch(Key::Meta);
        s
    }

    pub fn touch(&mut self, key: Key) {
        self.dirty.push(key);
    }

    /// Derived counters and status of a HIT at `now`.
    pub fn view(&self, hit: &Hit, now: i64) -> HitView {
        let pending = hit.accepts.iter().filter(|a| a.deadline_ms > now).count() as u64;
        let submitted = hit.assignments.len() as u64;
        let completed = hit
            .assignments
            .iter()
            .filter_map(|id| self.assignments.get(id))
            .filter(|a| a.status_at(now) != "Submitted")
            .count() as u64;
        let available = hit.max_assignments.saturating_sub(pending + submitted);
        let expired = now >= hit.expiration_ms;
        let status = if hit.deleted
            || (expired && pending == 0 && now >= hit.expiration_ms + DISPOSE_AFTER_MS)
        {
            "Disposed"
        } else if hit.reviewing {
            "Reviewing"
        } else if !expired && available > 0 {
            "Assignable"
        } else if pending > 0 {
            "Unassignable"
        } else {
            "Reviewable"
        };
        HitView {
            available,
            pending,
            completed,
            status,
        }
    }

    /// The HIT unless it is disposed (deleted, or 120 days past expiry): then it "does not exist".
    pub fn live_hit(&self, id: &str, now: i64) -> Option<&Hit> {
        self.hits
            .get(id)
            .filter(|h| self.view(h, now).status != "Disposed")
    }

    /// A token still within its 24 hours of virtual time.
    pub fn token(&self, namespace: &str, token: &str, now: i64) -> Option<&TokenRecord> {
        self.tokens
            .get(&format!("{namespace}|{token}"))
            .filter(|t| now - t.at_ms < TOKEN_TTL_MS)
    }

    pub fn remember_token(&mut self, namespace: &str, token: &str, target: &str, now: i64) {
        let key = format!("{namespace}|{token}");
        self.tokens.insert(
            key.clone(),
            TokenRecord {
                target: target.to_owned(),
                at_ms: now,
            },
        );
        self.touch(Key::Token(key));
    }

    /// Drops accepts that are past their deadline (abandoned); they no longer hold a slot.
    pub fn prune_abandoned(&mut self, hit_id: &str, now: i64) {
        if let Some(hit) = self.hits.get_mut(hit_id) {
            let before = hit.accepts.len();
            hit.accepts.retain(|a| a.deadline_ms > now);
            if hit.accepts.len() != before {
                self.dirty.push(Key::Hit(hit_id.to_owned()));
            }
        }
    }

    /// Serialises the dirty entities into rows (deduplicated, last state wins).
    pub fn take_records(&mut self) -> Vec<Record> {
        let mut keys = std::mem::take(&mut self.dirty);
        if keys.is_empty() {
            return Vec::new();
        }
        let mut seen = std::collections::HashSet::new();
        keys.retain(|k| seen.insert(k.clone()));
        keys.into_iter().map(|k| self.record(k)).collect()
    }

    fn record(&self, key: Key) -> Record {
        fn json<T: Serialize>(v: Option<&T>) -> Option<String> {
            v.and_then(|v| serde_json::to_string(v).ok())
        }
        match key {
            Key::Meta => Record {
                kind: "meta",
                id: "account".into(),
                data: json(Some(&self.meta)),
            },
            Key::HitType(id) => Record {
                kind: "hit_type",
                data: json(self.hit_types.get(&id)),
                id,
            },
            Key::Hit(id) => Record {
                kind: "hit",
                data: json(self.hits.get(&id)),
                id,
            },
            Key::Assignment(id) => Record {
                kind: "assignment",
                data: json(self.assignments.get(&id)),
                id,
            },
            Key::QualType(id) => Record {
                kind: "qual_type",
                data: json(self.qual_types.get(&id)),
                id,
            },
            Key::Qualification(t, w) => Record {
                kind: "qualification",
                data: json(self.qualifications.get(&(t.clone(), w.clone()))),
                id: format!("{t}|{w}"),
            },
            Key::Token(id) => Record {
                kind: "token",
                data: json(self.tokens.get(&id)),
                id,
            },
            Key::Block(id) => Record {
                kind: "block",
                data: json(self.blocks.get(&id)),
                id,
            },
            Key::Notification(id) => Record {
                kind: "notification",
                data: json(self.notifications.get(&id)),
                id,
            },
            Key::Bonus(seq) => Record {
                kind: "bonus",
                data: json(self.bonuses.get(&seq)),
                id: seq.to_string(),
            },
            Key::QualRequest(id) => Record {
                kind: "qual_request",
                data: json(self.qual_requests.get(&id)),
                id,
            },
        }
    }

    /// Rebuilds one entity from a stored row; unknown kinds are ignored (newer files).
    pub fn load_record(
        &mut self,
        kind: &str,
        id: &str,
        data: &str,
    ) -> Result<(), serde_json::Error> {
        match kind {
            "meta" => self.meta = serde_json::from_str(data)?,
            "hit_type" => {
                let t: HitType = serde_json::from_str(data)?;
                self.hit_types.insert(t.id.clone(), t);
            }
            "hit" => {
                let h: Hit = serde_json::from_str(data)?;
                self.hit_order.insert(h.seq, h.id.clone());
                self.hits.insert(h.id.clone(), h);
            }
            "assignment" => {
                let a: Assignment = serde_json::from_str(data)?;
                self.assignments.insert(a.id.clone(), a);
            }
            "qual_type" => {
                let q: QualType = serde_json::from_str(data)?;
                self.qual_type_order.insert(q.seq, q.id.clone());
                self.qual_types.insert(q.id.clone(), q);
            }
            "qualification" => {
                let q: Qualification = serde_json::from_str(data)?;
                self.qualifications
                    .insert((q.type_id.clone(), q.worker_id.clone()), q);
            }
            "token" => {
                self.tokens
                    .insert(id.to_owned(), serde_json::from_str(data)?);
            }
            "block" => {
                self.blocks
                    .insert(id.to_owned(), serde_json::from_str(data)?);
            }
            "notification" => {
                self.notifications
                    .insert(id.to_owned(), serde_json::from_str(data)?);
            }
            "bonus" => {
                let b: Bonus = serde_json::from_str(data)?;
                self.bonuses.insert(b.seq, b);
            }
            "qual_request" => {
                let q: QualRequest = serde_json::from_str(data)?;
                self.qual_requests.insert(q.id.clone(), q);
            }
            _ => {}
        }
        Ok(())
    }
}
