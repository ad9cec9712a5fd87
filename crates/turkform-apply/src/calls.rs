//! One mutating MTurk call as the executor journals it (the intent payload), how it is sent,
//! and what its outcome changes in the record.
//!
//! A [`Call`] holds everything needed to resend it identically after a crash: ids already
//! resolved, the token, the lifetime and expiration instants computed when it was first begun.
//! That is what makes a resend after a lost response or a SIGKILL safe (the token, or MTurk's
//! hidden (HIT, ExpireAt) key, deduplicates it) and what lets recovery record the outcome
//! without the plan that produced it.

use serde::{Deserialize, Serialize};
use turkform_model::{
    ActionsGuarded, Comparator, ExpiredBy, HitStatus, Locale, Money, PostedHit,
    QualificationTypeSpec, Question, RecordedHit, RecordedHitType, RecordedQualificationType,
    Target, UnixTime,
};
use turkform_mturk::{
    ApiError, CreateHitRequest, HitTypeRequest, MturkApi, QuestionRequest, RemoteHit,
    ResolvedRequirement,
};
use turkform_state::{HitInput, IntentKind};

use crate::review::{self, BonusData, DecisionData, DecisionKind};

/// A journaled MTurk call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub(crate) enum Call {
    CreateQualificationType {
        definition_hash: String,
        spec: QualificationTypeSpec,
    },
    UpdateQualificationType {
        qualification_type_id: String,
        definition_hash: String,
        spec: QualificationTypeSpec,
    },
    CreateHitType {
        definition_hash: String,
        request: HitTypeData,
    },
    CreateHit(CreateHitData),
    AddAssignments {
        campaign: String,
        item_key: String,
        generation: u32,
        hit_id: String,
        from: u32,
        to: u32,
        token: String,
        cost: Money,
    },
    UpdateExpiration {
        campaign: String,
        item_key: String,
        hit_id: String,
        /// A past instant to expire now; the exact instant is part of MTurk's dedup key, so it
        /// is fixed when the call is first begun.
        expire_at: UnixTime,
        /// When the call was begun: the instant an expire takes effect, for the record.
        at: UnixTime,
        purpose: Purpose,
    },
    Retype {
        campaign: String,
        item_key: String,
        hit_id: String,
        hit_type_id: String,
        hit_type_hash: String,
        cost: Money,
    },
    /// Not journaled (no mutating call): read a HIT found by annotation and record it.
    Adopt {
        campaign: String,
        item_key: String,
        generation: u32,
        hit_id: String,
        /// The planner's assumption of the orphan's content (the desired item's).
        content_hash: Option<String>,
        /// The orphan's HIT type hash when state knows its type.
        hit_type_hash: Option<String>,
    },
    /// ApproveAssignment / RejectAssignment (no token; a repeat is confirmed by GetAssignment).
    Decide(DecisionData),
    /// SendBonus with its row's token.
    SendBonus(BonusData),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Purpose {
    Expire { why: ExpiredBy },
    Extend,
}

/// The serializable form of [`HitTypeRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HitTypeData {
    pub title: String,
    pub description: String,
    pub keywords: String,
    pub reward: Money,
    pub assignment_duration_secs: u64,
    pub auto_approval_delay_secs: u64,
    pub requirements: Vec<RequirementData>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RequirementData {
    pub qualification_type_id: String,
    pub comparator: Comparator,
    pub integer_values: Vec<i32>,
    pub locale_values: Vec<Locale>,
    pub actions_guarded: Option<ActionsGuarded>,
}

/// A `CreateHITWithHITType` call and what to record when it succeeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct CreateHitData {
    pub campaign: String,
    pub item_key: String,
    pub generation: u32,
    pub hit_type_id: String,
    pub hit_type_hash: String,
    pub content_hash: String,
    pub max_assignments: u32,
    pub lifetime_secs: u64,
    pub question: Question,
    pub annotation: String,
    pub token: String,
    pub cost: Money,
    /// The item's data row, recorded with the new HIT (absent from intents journaled before
    /// turkform recorded rows: those HITs simply have no `Input.*`).
    #[serde(default)]
    pub input: Vec<(String, String)>,
}

impl Call {
    /// The journal kind; `None` for calls that are not journaled.
    pub fn intent_kind(&self) -> Option<IntentKind> {
        Some(match self {
            Call::CreateQualificationType { .. } => IntentKind::CreateQualificationType,
            Call::UpdateQualificationType { .. } => IntentKind::UpdateQualificationType,
            Call::CreateHitType { .. } => IntentKind::CreateHitType,
            Call::CreateHit(_) => IntentKind::CreateHit,
            Call::AddAssignments { .. } => IntentKind::AddAssignments,
            Call::UpdateExpiration {
                purpose: Purpose::Extend,
                ..
            } => IntentKind::ExtendLifetime,
            Call::UpdateExpiration { .. } => IntentKind::Expire,
            Call::Retype { .. } => IntentKind::Retype,
            Call::Decide(d) => match d.kind {
                DecisionKind::Approve => IntentKind::ApproveAssignment,
                DecisionKind::OverrideRejection => IntentKind::OverrideRejection,
                DecisionKind::Reject => IntentKind::RejectAssignment,
            },
            Call::SendBonus(_) => IntentKind::SendBonus,
            Call::Adopt { .. } => return None,
        })
    }

    /// A short name for reports (`create`, `expire`, ...).
    pub fn label(&self) -> &'static str {
        match self {
            Call::CreateQualificationType { .. } => "create-qualification-type",
            Call::UpdateQualificationType { .. } => "update-qualification-type",
            Call::CreateHitType { .. } => "create-hit-type",
            Call::CreateHit(_) => "create",
            Call::AddAssignments { .. } => "add-assignments",
            Call::UpdateExpiration {
                purpose: Purpose::Extend,
                ..
            } => "extend",
            Call::UpdateExpiration { .. } => "expire",
            Call::Retype { .. } => "retype",
            Call::Adopt { .. } => "adopt",
            Call::Decide(d) => match d.kind {
                DecisionKind::Approve => "approve",
                DecisionKind::OverrideRejection => "override-rejection",
                DecisionKind::Reject => "reject",
            },
            Call::SendBonus(_) => "send-bonus",
        }
    }

    pub fn campaign(&self) -> Option<&str> {
        match self {
            Call::CreateHit(c) => Some(&c.campaign),
            Call::AddAssignments { campaign, .. }
            | Call::UpdateExpiration { campaign, .. }
            | Call::Retype { campaign, .. }
            | Call::Adopt { campaign, .. } => Some(campaign),
            Call::Decide(d) => Some(&d.campaign),
            Call::SendBonus(b) => Some(&b.campaign),
            _ => None,
        }
    }

    pub fn item_key(&self) -> Option<&str> {
        match self {
            Call::CreateHit(c) => Some(&c.item_key),
            Call::AddAssignments { item_key, .. }
            | Call::UpdateExpiration { item_key, .. }
            | Call::Retype { item_key, .. }
            | Call::Adopt { item_key, .. } => Some(item_key),
            Call::CreateQualificationType { spec, .. }
            | Call::UpdateQualificationType { spec, .. } => Some(&spec.name),
            Call::CreateHitType {
                definition_hash, ..
            } => Some(definition_hash),
            // Review calls are about an assignment (a bonus: its row's identity).
            Call::Decide(d) => Some(&d.assignment_id),
            Call::SendBonus(b) => Some(&b.identity),
        }
    }

    pub fn hit_id(&self) -> Option<&str> {
        match self {
            Call::AddAssignments { hit_id, .. }
            | Call::UpdateExpiration { hit_id, .. }
            | Call::Retype { hit_id, .. }
            | Call::Adopt { hit_id, .. } => Some(hit_id),
            Call::Decide(d) => Some(&d.hit_id),
            _ => None,
        }
    }

    /// Whether this is a review call (a decision or a bonus).
    pub fn is_review(&self) -> bool {
        matches!(self, Call::Decide(_) | Call::SendBonus(_))
    }

    pub fn generation(&self) -> Option<u32> {
        match self {
            Call::CreateHit(c) => Some(c.generation),
            Call::AddAssignments { generation, .. } | Call::Adopt { generation, .. } => {
                Some(*generation)
            }
            _ => None,
        }
    }

    /// The journal token: the call's `UniqueRequestToken` where it has one, otherwise a
    /// deterministic digest of the call (so that re-beginning it finds the pending intent).
    pub fn token(&self, target: Target) -> String {
        match self {
            Call::CreateHit(c) => c.token.clone(),
            Call::AddAssignments { token, .. } => token.clone(),
            Call::SendBonus(b) => b.token.clone(),
            other => {
                let json = serde_json::to_string(other).unwrap_or_default();
                turkform_model::request_token(target, "", "", &json, 0)
            }
        }
    }
}

/// What a successful call returned.
#[derive(Clone, Debug)]
pub(crate) enum Output {
    Hit(RemoteHit),
    /// The HIT of an adopted orphan, with its question XML if MTurk returned one.
    Adopted(RemoteHit, Option<String>),
    Id(String),
    Done,
    /// A decision refused as no longer Submitted, with the assignment as GetAssignment shows
    /// it.
    Assignment(turkform_mturk::RemoteDecision),
    /// A pending bonus ListBonusPayments shows paid (not sent again), with its grant time.
    BonusFound {
        at: Option<UnixTime>,
    },
}

/// Sends `call` once (`now`: the injected clock's, for a bonus's token age). `HitAlreadyExists`
/// and "already processed" are success here: the HIT of a reused token is read back with GetHIT
/// so that the record holds MTurk's values.
pub(crate) async fn send(
    api: &dyn MturkApi,
    call: &Call,
    now: UnixTime,
) -> Result<Output, ApiError> {
    match call {
        Call::CreateQualificationType { spec, .. } => {
            match api.create_qualification_type(spec).await {
                Ok(id) => Ok(Output::Id(id)),
                // Created by an earlier attempt whose answer was lost: find it by name.
                Err(ApiError::Fatal {
                    turk_error_code: Some(code),
                    message,
                    ..
                }) if code == "AWS.MechanicalTurk.QualificationTypeAlreadyExists" => {
                    find_qualification_type(api, &spec.name)
                        .await?
                        .map(Output::Id)
                        .ok_or(ApiError::Fatal {
                            code: None,
                            turk_error_code: Some(code),
                            message,
                        })
                }
                Err(e) => Err(e),
            }
        }
        Call::UpdateQualificationType {
            qualification_type_id,
            spec,
            ..
        } => api
            .update_qualification_type(qualification_type_id, spec)
            .await
            .map(|()| Output::Done),
        Call::CreateHitType { request, .. } => api
            .create_hit_type(&request.to_request())
            .await
            .map(Output::Id),
        Call::CreateHit(c) => match api.create_hit(&c.to_request()).await {
            Ok(hit) => Ok(Output::Hit(hit)),
            Err(ApiError::AlreadyExists {
                hit_id: Some(id), ..
            }) => api.get_hit(&id).await.map(Output::Hit),
            Err(e) => Err(e),
        },
        Call::AddAssignments {
            hit_id,
            from,
            to,
            token,
            ..
        } => done(
            api.create_additional_assignments(hit_id, to.saturating_sub(*from), token)
                .await,
        ),
        // An extension's "already processed" is left to the caller: it means either that this
        // call took effect earlier, or that MTurk remembers an earlier extension of the HIT to
        // the same instant (a second resume to the same `ends_at` within a day), which did not
        // reopen it now.
        Call::UpdateExpiration {
            hit_id,
            expire_at,
            purpose: Purpose::Extend,
            ..
        } => api
            .update_expiration(hit_id, *expire_at)
            .await
            .map(|()| Output::Done),
        Call::UpdateExpiration {
            hit_id, expire_at, ..
        } => done(api.update_expiration(hit_id, *expire_at).await),
        Call::Retype {
            hit_id,
            hit_type_id,
            ..
        } => api
            .update_hit_type_of_hit(hit_id, hit_type_id)
            .await
            .map(|()| Output::Done),
        Call::Adopt { hit_id, .. } => api
            .get_hit_with_question(hit_id)
            .await
            .map(|(hit, q)| Output::Adopted(hit, q)),
        Call::Decide(d) => review::decide(api, d).await,
        Call::SendBonus(b) => review::pay(api, b, now).await,
    }
}

fn done(r: Result<(), ApiError>) -> Result<Output, ApiError> {
    match r {
        Ok(()) | Err(ApiError::AlreadyExists { .. }) => Ok(Output::Done),
        Err(e) => Err(e),
    }
}

async fn find_qualification_type(
    api: &dyn MturkApi,
    name: &str,
) -> Result<Option<String>, ApiError> {
    let mut next = None;
    loop {
        let page = api.list_qualification_types(next).await?;
        if let Some(q) = page.items.iter().find(|q| q.name == name) {
            return Ok(Some(q.qualification_type_id.clone()));
        }
        match page.next_token {
            Some(t) if !page.items.is_empty() => next = Some(t),
            _ => return Ok(None),
        }
    }
}

impl HitTypeData {
    pub fn to_request(&self) -> HitTypeRequest {
        HitTypeRequest {
            title: self.title.clone(),
            description: self.description.clone(),
            keywords: self.keywords.clone(),
            reward: self.reward,
            assignment_duration_secs: self.assignment_duration_secs,
            auto_approval_delay_secs: self.auto_approval_delay_secs,
            qualification_requirements: self
                .requirements
                .iter()
                .map(|r| ResolvedRequirement {
                    qualification_type_id: r.qualification_type_id.clone(),
                    comparator: r.comparator,
                    integer_values: r.integer_values.clone(),
                    locale_values: r.locale_values.clone(),
                    actions_guarded: r.actions_guarded,
                })
                .collect(),
        }
    }
}

impl CreateHitData {
    pub fn to_request(&self) -> CreateHitRequest {
        CreateHitRequest {
            hit_type_id: self.hit_type_id.clone(),
            max_assignments: self.max_assignments,
            lifetime_secs: self.lifetime_secs,
            question: match &self.question {
                Question::Xml { xml } => QuestionRequest::Xml(xml.clone()),
                Question::Layout {
                    layout_id,
                    parameters,
                } => QuestionRequest::Layout {
                    layout_id: layout_id.clone(),
                    parameters: parameters.clone(),
                },
            },
            requester_annotation: self.annotation.clone(),
            unique_request_token: self.token.clone(),
        }
    }

    /// The data row to record with the HIT this call created.
    pub fn hit_input(&self, hit: &RemoteHit) -> Option<HitInput> {
        (!self.input.is_empty()).then(|| HitInput {
            hit_id: hit.hit_id.clone(),
            row: self.input.clone(),
        })
    }

    /// What the HIT this call created shows workers, as MTurk returned it, with the lifetime
    /// it was created with.
    pub fn posted(&self, hit: &RemoteHit) -> PostedHit {
        posted_hit(
            hit,
            Some(i64::try_from(self.lifetime_secs).unwrap_or(i64::MAX)),
        )
    }

    /// The record of the HIT this call created.
    pub fn record(&self, hit: &RemoteHit) -> RecordedHit {
        fresh_record(
            &self.campaign,
            &self.item_key,
            self.generation,
            hit,
            self.hit_type_hash.clone(),
            self.content_hash.clone(),
            self.cost,
        )
    }
}

/// What `hit` shows workers, as MTurk reports it. `lifetime_secs`: what it was created with,
/// when known; otherwise `Expiration - CreationTime` as reported.
pub(crate) fn posted_hit(hit: &RemoteHit, lifetime_secs: Option<i64>) -> PostedHit {
    PostedHit {
        hit_id: hit.hit_id.clone(),
        hit_group_id: hit
            .hit_group_id
            .clone()
            .unwrap_or_else(|| hit.hit_type_id.clone()),
        title: hit.title.clone(),
        description: hit.description.clone(),
        keywords: hit.keywords.clone(),
        reward: hit.reward,
        assignment_duration_secs: hit.assignment_duration_secs,
        auto_approval_delay_secs: hit.auto_approval_delay_secs,
        requester_annotation: hit.requester_annotation.clone(),
        lifetime_secs: lifetime_secs
            .or_else(|| Some(hit.expiration.secs_since(hit.creation_time)).filter(|s| *s > 0)),
    }
}

/// What the state should learn from one finished call.
#[derive(Debug, Default)]
pub(crate) struct Change {
    pub hit: Option<RecordedHit>,
    pub hit_type: Option<RecordedHitType>,
    pub qualification_type: Option<RecordedQualificationType>,
    pub adopted_orphan: Option<String>,
    /// The data row of a HIT just created.
    pub hit_input: Option<HitInput>,
    /// What a HIT just created or adopted shows workers.
    pub posted: Option<PostedHit>,
    /// The HIT id to report.
    pub hit_id: Option<String>,
}

/// The record change implied by `call` having succeeded with `output`. `current` is what state
/// holds for the HIT the call acted on (if any); `hit_type_hash_of` maps a HIT type id to its
/// recorded definition hash.
pub(crate) fn settle(
    call: &Call,
    output: &Output,
    current: Option<&RecordedHit>,
    hit_type_hash_of: &dyn Fn(&str) -> Option<String>,
    now: UnixTime,
) -> Change {
    let mut change = Change::default();
    match (call, output) {
        (
            Call::CreateQualificationType {
                definition_hash,
                spec,
            },
            Output::Id(id),
        ) => {
            change.qualification_type = Some(RecordedQualificationType {
                name: spec.name.clone(),
                qualification_type_id: id.clone(),
                definition_hash: definition_hash.clone(),
            });
        }
        (
            Call::UpdateQualificationType {
                qualification_type_id,
                definition_hash,
                spec,
            },
            _,
        ) => {
            change.qualification_type = Some(RecordedQualificationType {
                name: spec.name.clone(),
                qualification_type_id: qualification_type_id.clone(),
                definition_hash: definition_hash.clone(),
            });
        }
        (
            Call::CreateHitType {
                definition_hash, ..
            },
            Output::Id(id),
        ) => {
            change.hit_type = Some(RecordedHitType {
                definition_hash: definition_hash.clone(),
                hit_type_id: id.clone(),
            });
        }
        (Call::CreateHit(c), Output::Hit(hit)) => {
            change.hit_id = Some(hit.hit_id.clone());
            change.hit = Some(c.record(hit));
            change.hit_input = c.hit_input(hit);
            change.posted = Some(c.posted(hit));
            // A HIT recovered by token may have been seen by a refresh as an orphan meanwhile.
            change.adopted_orphan = Some(hit.hit_id.clone());
        }
        (
            Call::Adopt {
                campaign,
                item_key,
                generation,
                hit_id,
                content_hash,
                hit_type_hash,
            },
            Output::Adopted(hit, question),
        ) => {
            change.hit_id = Some(hit_id.clone());
            change.adopted_orphan = Some(hit_id.clone());
            change.posted = Some(posted_hit(hit, None));
            let mut record = adopted_record(
                campaign,
                item_key,
                *generation,
                hit,
                question.as_deref(),
                hit_type_hash_of,
            );
            // What MTurk returned is the truth: a question edited while the state was lost
            // must be replaced. Only when MTurk gives no question (a HIT layout) is the
            // planner's assumption taken.
            if let Some(h) = content_hash
                && record.content_hash.is_empty()
            {
                record.content_hash = h.clone();
            }
            if let Some(h) = hit_type_hash {
                record.hit_type_hash = h.clone();
            }
            change.hit = Some(record);
        }
        (call, _) => {
            change.hit_id = call.hit_id().map(str::to_owned);
            if let Some(current) = current {
                let mut hit = current.clone();
                // turkform acted on the HIT: whatever drift was seen has been dealt with.
                hit.drift.clear();
                match call {
                    Call::AddAssignments { from, to, cost, .. } => {
                        hit.max_assignments = *to;
                        hit.assignments_available += to.saturating_sub(*from);
                        hit.committed_cost += *cost;
                    }
                    Call::UpdateExpiration {
                        at,
                        purpose: Purpose::Expire { why },
                        ..
                    } => {
                        let remaining = current.expiration.secs_since(*at);
                        hit.expiration = current.expiration.min(*at);
                        hit.expired_by = Some(*why);
                        hit.paused_remaining_secs = (*why == ExpiredBy::Pause && remaining > 0)
                            .then(|| u64::try_from(remaining).unwrap_or(0));
                        if matches!(hit.status, HitStatus::Assignable) {
                            hit.status = if hit.assignments_pending > 0 {
                                HitStatus::Unassignable
                            } else {
                                HitStatus::Reviewable
                            };
                        }
                    }
                    Call::UpdateExpiration {
                        expire_at,
                        purpose: Purpose::Extend,
                        ..
                    } => {
                        hit.expiration = *expire_at;
                        hit.expired_by = None;
                        hit.paused_remaining_secs = None;
                        if hit.assignments_available > 0 && *expire_at > now {
                            hit.status = HitStatus::Assignable;
                        }
                    }
                    Call::Retype {
                        hit_type_id,
                        hit_type_hash,
                        cost,
                        ..
                    } => {
                        hit.hit_type_id = hit_type_id.clone();
                        hit.hit_type_hash = hit_type_hash.clone();
                        hit.committed_cost += *cost;
                    }
                    _ => {}
                }
                change.hit = Some(hit);
            }
        }
    }
    change
}

/// A record of `hit` as MTurk reports it, with what only turkform knows (its item, hashes and
/// cost), and nothing yet expired or drifted.
fn fresh_record(
    campaign: &str,
    item_key: &str,
    generation: u32,
    hit: &RemoteHit,
    hit_type_hash: String,
    content_hash: String,
    committed_cost: Money,
) -> RecordedHit {
    RecordedHit {
        campaign: campaign.to_owned(),
        item_key: item_key.to_owned(),
        generation,
        hit_id: hit.hit_id.clone(),
        hit_type_id: hit.hit_type_id.clone(),
        hit_type_hash,
        content_hash,
        max_assignments: hit.max_assignments,
        committed_cost,
        created_at: hit.creation_time,
        expiration: hit.expiration,
        status: hit.status,
        assignments_available: hit.assignments_available,
        assignments_pending: hit.assignments_pending,
        assignments_completed: hit.assignments_completed,
        expired_by: None,
        paused_remaining_secs: None,
        drift: Vec::new(),
    }
}

/// The record of a HIT turkform made but state did not know, from what MTurk says of it. Its
/// cost is recomputed from the reward and assignments MTurk reports, without a Masters fee (MTurk
/// does not say which qualifications priced it), so it may be lower than the plan's `cost_delta`.
pub(crate) fn adopted_record(
    campaign: &str,
    item_key: &str,
    generation: u32,
    hit: &RemoteHit,
    question: Option<&str>,
    hit_type_hash_of: &dyn Fn(&str) -> Option<String>,
) -> RecordedHit {
    // The content it was created with is known only from its question XML (a HIT-layout HIT
    // does not return its parameters): an empty hash means "unknown".
    let content_hash = question
        .map(|xml| {
            Question::Xml {
                xml: xml.to_owned(),
            }
            .content_hash()
        })
        .unwrap_or_default();
    let committed_cost = hit.reward.map_or(Money::ZERO, |reward| {
        turkform_plan::cost::hit_cost(reward, hit.max_assignments, false)
    });
    fresh_record(
        campaign,
        item_key,
        generation,
        hit,
        hit_type_hash_of(&hit.hit_type_id).unwrap_or_default(),
        content_hash,
        committed_cost,
    )
}
