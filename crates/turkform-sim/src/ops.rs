//! The 39 operations of the MTurk Requester API (2017-01-17), each a function of the world, a
//! request context and the request's members, returning the response object or an [`ApiError`].

use rand::rngs::StdRng;
use serde_json::{Map, Value, json};

use crate::ids;
use crate::money::{self, Cents};
use crate::validate::{self, QuestionKind};
use crate::wire::{self, ApiError, ApiResult, Input};
use crate::world::{
    Assignment, Block, Bonus, Hit, HitType, Key, NotificationSetting, OVERRIDE_WINDOW_MS, QualType,
    Qualification, Requirement, World,
};

/// Every operation of the API, by its wire name.
pub const OPERATIONS: &[&str] = &[
    "AcceptQualificationRequest",
    "ApproveAssignment",
    "AssociateQualificationWithWorker",
    "CreateAdditionalAssignmentsForHIT",
    "CreateHIT",
    "CreateHITType",
    "CreateHITWithHITType",
    "CreateQualificationType",
    "CreateWorkerBlock",
    "DeleteHIT",
    "DeleteQualificationType",
    "DeleteWorkerBlock",
    "DisassociateQualificationFromWorker",
    "GetAccountBalance",
    "GetAssignment",
    "GetFileUploadURL",
    "GetHIT",
    "GetQualificationScore",
    "GetQualificationType",
    "ListAssignmentsForHIT",
    "ListBonusPayments",
    "ListHITs",
    "ListHITsForQualificationType",
    "ListQualificationRequests",
    "ListQualificationTypes",
    "ListReviewPolicyResultsForHIT",
    "ListReviewableHITs",
    "ListWorkerBlocks",
    "ListWorkersWithQualificationType",
    "NotifyWorkers",
    "RejectAssignment",
    "RejectQualificationRequest",
    "SendBonus",
    "SendTestEventNotification",
    "UpdateExpirationForHIT",
    "UpdateHITReviewStatus",
    "UpdateHITTypeOfHIT",
    "UpdateNotificationSettings",
    "UpdateQualificationType",
];

/// The operations that change the account or reach workers: everything but the `Get*` and
/// `List*` reads. Tests and benchmarks count these to prove a run made no change (or how many),
/// so that no mutating operation can go unseen.
pub const MUTATING_OPERATIONS: &[&str] = &[
    "AcceptQualificationRequest",
    "ApproveAssignment",
    "AssociateQualificationWithWorker",
    "CreateAdditionalAssignmentsForHIT",
    "CreateHIT",
    "CreateHITType",
    "CreateHITWithHITType",
    "CreateQualificationType",
    "CreateWorkerBlock",
    "DeleteHIT",
    "DeleteQualificationType",
    "DeleteWorkerBlock",
    "DisassociateQualificationFromWorker",
    "NotifyWorkers",
    "RejectAssignment",
    "RejectQualificationRequest",
    "SendBonus",
    "SendTestEventNotification",
    "UpdateExpirationForHIT",
    "UpdateHITReviewStatus",
    "UpdateHITTypeOfHIT",
    "UpdateNotificationSettings",
    "UpdateQualificationType",
];

/// What an operation may read besides the world.
pub struct Ctx<'a> {
    /// Virtual now, epoch milliseconds.
    pub now: i64,
    pub min_reward: Cents,
    /// [`crate::SimConfig::local_external_urls`].
    pub local_external_urls: bool,
    /// Id generation.
    pub rng: &'a mut StdRng,
}

/// Runs one operation. `op` must be one of [`OPERATIONS`].
pub fn dispatch(w: &mut World, ctx: &mut Ctx<'_>, op: &str, input: &Input<'_>) -> ApiResult<Value> {
    match op {
        "AcceptQualificationRequest" => accept_qualification_request(w, ctx, input),
        "ApproveAssignment" => approve_assignment(w, ctx, input),
        "AssociateQualificationWithWorker" => associate_qualification(w, ctx, input),
        "CreateAdditionalAssignmentsForHIT" => create_additional_assignments(w, ctx, input),
        "CreateHIT" => create_hit(w, ctx, input),
        "CreateHITType" => create_hit_type(w, ctx, input),
        "CreateHITWithHITType" => create_hit_with_hit_type(w, ctx, input),
        "CreateQualificationType" => create_qualification_type(w, ctx, input),
        "CreateWorkerBlock" => create_worker_block(w, input),
        "DeleteHIT" => delete_hit(w, ctx, input),
        "DeleteQualificationType" => delete_qualification_type(w, input),
        "DeleteWorkerBlock" => delete_worker_block(w, input),
        "DisassociateQualificationFromWorker" => disassociate_qualification(w, input),
        "GetAccountBalance" => Ok(json!({
            "AvailableBalance": w.meta.balance.to_amount(),
            "OnHoldBalance": "0.00",
        })),
        "GetAssignment" => get_assignment(w, ctx, input),
        "GetFileUploadURL" => get_file_upload_url(w, ctx, input),
        "GetHIT" => {
            let id = input.entity_id_req("HITId")?;
            let hit = w
                .live_hit(id, ctx.now)
                .ok_or_else(|| ApiError::hit_does_not_exist(id))?;
            Ok(json!({ "HIT": hit_json(w, hit, ctx.now) }))
        }
        "GetQualificationScore" => get_qualification_score(w, input),
        "GetQualificationType" => {
            let id = input.entity_id_req("QualificationTypeId")?;
            Ok(json!({ "QualificationType": qual_type_json_by_id(w, id)? }))
        }
        "ListAssignmentsForHIT" => list_assignments(w, ctx, input),
        "ListBonusPayments" => list_bonus_payments(w, input),
        "ListHITs" => list_hits(w, ctx, input, "hits", |_, _| true),
        "ListHITsForQualificationType" => {
            let qid = input.entity_id_req("QualificationTypeId")?.to_owned();
            qual_type_json_by_id(w, &qid)?;
            list_hits(w, ctx, input, "hitsforqual", move |w, h| {
                w.hit_types
                    .get(&h.type_id)
                    .is_some_and(|t| t.requirements.iter().any(|r| r.type_id == qid))
            })
        }
        "ListQualificationRequests" => list_qualification_requests(w, input),
        "ListQualificationTypes" => list_qualification_types(w, input),
        "ListReviewPolicyResultsForHIT" => list_review_policy_results(w, ctx, input),
        "ListReviewableHITs" => {
            let type_id = input.entity_id_opt("HITTypeId")?.map(str::to_owned);
            let status = input
                .enum_opt("Status", &["Reviewable", "Reviewing"])?
                .unwrap_or("Reviewable");
            let now = ctx.now;
            list_hits(w, ctx, input, "reviewable", move |w, h| {
                type_id.as_deref().is_none_or(|t| t == h.type_id) && w.view(h, now).status == status
            })
        }
        "ListWorkerBlocks" => list_worker_blocks(w, input),
        "ListWorkersWithQualificationType" => list_workers_with_qualification(w, input),
        "NotifyWorkers" => notify_workers(w, input),
        "RejectAssignment" => reject_assignment(w, ctx, input),
        "RejectQualificationRequest" => {
            let id = input.str_req("QualificationRequestId")?;
            input.str_opt("Reason")?;
            if w.qual_requests.remove(id).is_none() {
                return Err(qual_request_missing(id));
            }
            w.touch(Key::QualRequest(id.to_owned()));
            Ok(json!({}))
        }
        "SendBonus" => send_bonus(w, ctx, input),
        "SendTestEventNotification" => {
            let spec = input.obj_opt("Notification")?.ok_or_else(|| {
                ApiError::constraint("Notification", "null", "Member must not be null")
            })?;
            check_notification(&spec)?;
            input.enum_req("TestEventType", EVENT_TYPES)?;
            Ok(json!({}))
        }
        "UpdateExpirationForHIT" => update_expiration(w, ctx, input),
        "UpdateHITReviewStatus" => update_hit_review_status(w, ctx, input),
        "UpdateHITTypeOfHIT" => update_hit_type_of_hit(w, ctx, input),
        "UpdateNotificationSettings" => update_notification_settings(w, input),
        "UpdateQualificationType" => update_qualification_type(w, input),
        other => Err(ApiError::Front {
            status: 400,
            kind: "UnknownOperationException",
            message: format!("Unknown operation {other}"),
        }),
    }
}

// ---------------------------------------------------------------- HIT types and HITs

fn insufficient_funds() -> ApiError {
    ApiError::request(
        "InsufficientFunds",
        "This Requester has insufficient funds in their account to complete this transaction. Please visit https://requester.mturk.com/prepayments/new to purchase Prepaid HITs.",
    )
}

fn hit_type_missing(id: &str) -> ApiError {
    ApiError::request(
        "HITTypeDoesNotExist",
        format!("Hit type {id} does not exist."),
    )
}

fn is_masters(t: &HitType) -> bool {
    t.requirements
        .iter()
        .any(|r| validate::MASTERS_QUALS.contains(&r.type_id.as_str()))
}

/// Custom qualification types in requirements must exist, be ours and be Active.
fn check_requirement_types(w: &World, reqs: &[Requirement]) -> ApiResult<()> {
    for r in reqs {
        if validate::is_system_qual(&r.type_id) {
            continue;
        }
        match w.qual_types.get(&r.type_id) {
            Some(q) if q.status == "Active" => {}
            _ => {
                return Err(ApiError::request(
                    "QualificationDoesNotExist",
                    "You requested a Qualification that does not exist.",
                ));
            }
        }
    }
    Ok(())
}

/// Reads the seven HIT-type properties, validates them and returns the (possibly existing) type.
fn hit_type_from_input(w: &World, ctx: &Ctx<'_>, input: &Input<'_>) -> ApiResult<HitType> {
    let duration = input.i64_req("AssignmentDurationInSeconds")?;
    validate::check_range("AssignmentDurationInSeconds", duration, 30, 31_536_000)?;
    let delay = input
        .i64_opt("AutoApprovalDelayInSeconds")?
        .unwrap_or(2_592_000);
    validate::check_range("AutoApprovalDelayInSeconds", delay, 0, 2_592_000)?;
    let reward_text = input.str_req("Reward")?;
    let reward = Cents::parse(reward_text).ok_or_else(|| {
        ApiError::constraint(
            "Reward",
            reward_text,
            "Member must satisfy regular expression pattern: ^[0-9]+(\\.)?[0-9]{0,2}$",
        )
    })?;
    if reward < ctx.min_reward {
        return Err(ApiError::invalid(format!(
            "The value {reward_text} for Reward is invalid: the minimum reward is ${}.",
            ctx.min_reward.to_amount()
        )));
    }
    let title = input.str_req("Title")?;
    let description = input.str_req("Description")?;
    let keywords = input.str_opt("Keywords")?;
    validate::check_texts(title, description, keywords)?;
    let requirements = validate::parse_requirements(input.list_opt("QualificationRequirements")?)?;
    check_requirement_types(w, &requirements)?;
    let canonical = json!([
        title,
        description,
        keywords.unwrap_or(""),
        reward.0,
        duration,
        delay,
        requirements
            .iter()
            .map(validate::requirement_json)
            .collect::<Vec<_>>(),
    ])
    .to_string();
    Ok(HitType {
        id: ids::derived_id('3', &format!("hittype|{canonical}")),
        group_id: ids::derived_id('3', &format!("hitgroup|{canonical}")),
        title: title.to_owned(),
        description: description.to_owned(),
        keywords: keywords.map(str::to_owned),
        reward,
        assignment_duration_secs: duration,
        auto_approval_delay_secs: delay,
        requirements,
    })
}

/// Registers a HIT type unless one with the same properties exists; returns its id.
fn register_hit_type(w: &mut World, t: HitType) -> String {
    let id = t.id.clone();
    if !w.hit_types.contains_key(&id) {
        w.hit_types.insert(id.clone(), t);
        w.touch(Key::HitType(id.clone()));
    }
    id
}

fn create_hit_type(w: &mut World, ctx: &mut Ctx<'_>, input: &Input<'_>) -> ApiResult<Value> {
    let t = hit_type_from_input(w, ctx, input)?;
    let id = register_hit_type(w, t);
    Ok(json!({ "HITTypeId": id }))
}

fn create_hit(w: &mut World, ctx: &mut Ctx<'_>, input: &Input<'_>) -> ApiResult<Value> {
    let t = hit_type_from_input(w, ctx, input)?;
    let parts = hit_parts(input, ctx.local_external_urls)?;
    if let Some(existing) = token_hit(w, ctx, parts.token) {
        return Err(existing);
    }
    let id = register_hit_type(w, t);
    new_hit(w, ctx, &id, parts)
}

fn create_hit_with_hit_type(
    w: &mut World,
    ctx: &mut Ctx<'_>,
    input: &Input<'_>,
) -> ApiResult<Value> {
    let type_id = input.entity_id_req("HITTypeId")?;
    let parts = hit_parts(input, ctx.local_external_urls)?;
    if let Some(existing) = token_hit(w, ctx, parts.token) {
        return Err(existing);
    }
    if !w.hit_types.contains_key(type_id) {
        return Err(hit_type_missing(type_id));
    }
    new_hit(w, ctx, type_id, parts)
}

/// The HIT-specific members of CreateHIT / CreateHITWithHITType, validated.
struct HitParts<'a> {
    max_assignments: u64,
    lifetime_secs: i64,
    question: Option<&'a str>,
    layout_id: Option<&'a str>,
    layout_parameters: Option<Value>,
    annotation: Option<&'a str>,
    token: Option<&'a str>,
    assignment_review_policy: Option<Value>,
    hit_review_policy: Option<Value>,
}

fn hit_parts<'a>(input: &Input<'a>, local_external_urls: bool) -> ApiResult<HitParts<'a>> {
    let max = input.i32_opt("MaxAssignments")?.unwrap_or(1);
    validate::check_range("MaxAssignments", max, 1, 1_000_000_000)?;
    let lifetime = input.i64_req("LifetimeInSeconds")?;
    validate::check_range("LifetimeInSeconds", lifetime, 30, 31_536_000)?;
    let annotation = input.str_opt("RequesterAnnotation")?;
    validate::check_annotation(annotation)?;
    let token = input.token_opt("UniqueRequestToken")?;
    let question = input.str_opt("Question")?;
    let layout_id = input.entity_id_opt("HITLayoutId")?;
    match (question, layout_id) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(ApiError::invalid(
                "Exactly one of Question or HITLayoutId must be provided.",
            ));
        }
        (Some(q), None) => {
            validate::check_question_with(q, local_external_urls)?;
        }
        (None, Some(_)) => {}
    }
    let layout_parameters = match input.list_opt("HITLayoutParameters")? {
        None => None,
        Some(list) => {
            if layout_id.is_none() {
                return Err(ApiError::invalid(
                    "HITLayoutParameters can only be used with HITLayoutId.",
                ));
            }
            for p in list {
                let Value::Object(o) = p else {
                    return Err(ApiError::serialization(
                        "HITLayoutParameters must hold structures",
                    ));
                };
                let p = Input::new(o);
                p.str_req("Name")?;
                p.str_req("Value")?;
            }
            Some(Value::from(list.clone()))
        }
    };
    Ok(HitParts {
        max_assignments: max as u64,
        lifetime_secs: lifetime,
        question,
        layout_id,
        layout_parameters,
        annotation,
        token,
        assignment_review_policy: review_policy(input, "AssignmentReviewPolicy")?,
        hit_review_policy: review_policy(input, "HITReviewPolicy")?,
    })
}

fn review_policy(input: &Input<'_>, name: &str) -> ApiResult<Option<Value>> {
    let Some(p) = input.obj_opt(name)? else {
        return Ok(None);
    };
    p.enum_req(
        "PolicyName",
        &[
            "SimplePlurality/2011-09-01",
            "ScoreMyKnownAnswers/2011-09-01",
        ],
    )?;
    p.list_opt("Parameters")?;
    Ok(input.raw(name).cloned())
}

/// The HitAlreadyExists error when the token was used in the last 24 h of virtual time.
fn token_hit(w: &World, ctx: &Ctx<'_>, token: Option<&str>) -> Option<ApiError> {
    let record = w.token("hit", token?, ctx.now)?;
    Some(ApiError::request(
        "HitAlreadyExists",
        format!(
            "There is already a HIT which exists with the same UniqueRequestToken: {}",
            record.target
        ),
    ))
}

fn unique_id(ctx: &mut Ctx<'_>, taken: impl Fn(&str) -> bool) -> String {
    loop {
        let id = ids::random_id(ctx.rng);
        if !taken(&id) {
            return id;
        }
    }
}

fn new_hit(
    w: &mut World,
    ctx: &mut Ctx<'_>,
    type_id: &str,
    parts: HitParts<'_>,
) -> ApiResult<Value> {
    let t = w
        .hit_types
        .get(type_id)
        .ok_or_else(|| hit_type_missing(type_id))?;
    check_requirement_types(w, &t.requirements)?;
    let cost = money::hit_cost(t.reward, parts.max_assignments, is_masters(t))
        .ok_or_else(insufficient_funds)?;
    if cost > w.meta.balance {
        return Err(insufficient_funds());
    }
    let id = unique_id(ctx, |id| w.hits.contains_key(id));
    let seq = w.next_seq();
    let hit = Hit {
        id: id.clone(),
        seq,
        type_id: type_id.to_owned(),
        creation_ms: ctx.now,
        expiration_ms: ctx.now + parts.lifetime_secs * 1000,
        max_assignments: parts.max_assignments,
        question: parts.question.map(str::to_owned),
        layout_id: parts.layout_id.map(str::to_owned),
        layout_parameters: parts.layout_parameters,
        annotation: parts.annotation.map(str::to_owned),
        assignment_review_policy: parts.assignment_review_policy,
        hit_review_policy: parts.hit_review_policy,
        reviewing: false,
        deleted: false,
        committed: cost,
        accepts: Vec::new(),
        assignments: Vec::new(),
    };
    w.meta.balance = Cents(w.meta.balance.0 - cost.0);
    w.hit_order.insert(seq, id.clone());
    w.hits.insert(id.clone(), hit);
    w.touch(Key::Hit(id.clone()));
    if let Some(token) = parts.token {
        w.remember_token("hit", token, &id, ctx.now);
    }
    let hit = &w.hits[&id];
    Ok(json!({ "HIT": hit_json(w, hit, ctx.now) }))
}

/// The HIT structure as the API returns it.
pub fn hit_json(w: &World, hit: &Hit, now: i64) -> Value {
    let view = w.view(hit, now);
    let mut o = Map::new();
    o.insert("HITId".into(), Value::from(hit.id.clone()));
    o.insert("HITTypeId".into(), Value::from(hit.type_id.clone()));
    if let Some(t) = w.hit_types.get(&hit.type_id) {
        o.insert("HITGroupId".into(), Value::from(t.group_id.clone()));
    }
    if let Some(l) = &hit.layout_id {
        o.insert("HITLayoutId".into(), Value::from(l.clone()));
    }
    o.insert("CreationTime".into(), wire::timestamp(hit.creation_ms));
    if let Some(t) = w.hit_types.get(&hit.type_id) {
        o.insert("Title".into(), Value::from(t.title.clone()));
        o.insert("Description".into(), Value::from(t.description.clone()));
        if let Some(q) = &hit.question {
            o.insert("Question".into(), Value::from(q.clone()));
        }
        if let Some(k) = &t.keywords {
            o.insert("Keywords".into(), Value::from(k.clone()));
        }
        o.insert("HITStatus".into(), Value::from(view.status));
        o.insert("MaxAssignments".into(), Value::from(hit.max_assignments));
        o.insert("Reward".into(), Value::from(t.reward.to_amount()));
        o.insert(
            "AutoApprovalDelayInSeconds".into(),
            Value::from(t.auto_approval_delay_secs),
        );
        o.insert("Expiration".into(), wire::timestamp(hit.expiration_ms));
        o.insert(
            "AssignmentDurationInSeconds".into(),
            Value::from(t.assignment_duration_secs),
        );
        if let Some(a) = &hit.annotation {
            o.insert("RequesterAnnotation".into(), Value::from(a.clone()));
        }
        o.insert(
            "QualificationRequirements".into(),
            Value::from(
                t.requirements
                    .iter()
                    .map(validate::requirement_json)
                    .collect::<Vec<_>>(),
            ),
        );
    }
    o.insert("HITReviewStatus".into(), Value::from("NotReviewed"));
    o.insert(
        "NumberOfAssignmentsPending".into(),
        Value::from(view.pending),
    );
    o.insert(
        "NumberOfAssignmentsAvailable".into(),
        Value::from(view.available),
    );
    o.insert(
        "NumberOfAssignmentsCompleted".into(),
        Value::from(view.completed),
    );
    Value::Object(o)
}

fn create_additional_assignments(
    w: &mut World,
    ctx: &mut Ctx<'_>,
    input: &Input<'_>,
) -> ApiResult<Value> {
    let hit_id = input.entity_id_req("HITId")?;
    let n = input
        .i32_opt("NumberOfAdditionalAssignments")?
        .ok_or_else(|| {
            ApiError::constraint(
                "NumberOfAdditionalAssignments",
                "null",
                "Member must not be null",
            )
        })?;
    validate::check_range("NumberOfAdditionalAssignments", n, 1, 1_000_000_000)?;
    let token = input.token_opt("UniqueRequestToken")?;
    if let Some(token) = token
        && w.token("assignments", token, ctx.now).is_some()
    {
        return Err(already_processed(token));
    }
    let hit = w
        .live_hit(hit_id, ctx.now)
        .ok_or_else(|| ApiError::hit_does_not_exist(hit_id))?;
    let new_max = hit.max_assignments + n as u64;
    if new_max > 1_000_000_000 {
        return Err(ApiError::invalid(
            "MaxAssignments cannot exceed 1000000000.",
        ));
    }
    if hit.max_assignments < 10 && new_max >= 10 {
        return Err(ApiError::request(
            "InvalidMaximumAssignmentsIncrease",
            format!(
                "This HIT was created with fewer than 10 assignments ({}): it cannot be extended to 10 or more ({new_max}).",
                hit.max_assignments
            ),
        ));
    }
    let t = w
        .hit_types
        .get(&hit.type_id)
        .ok_or_else(|| hit_type_missing(&hit.type_id))?;
    let total = money::hit_cost(t.reward, new_max, is_masters(t)).ok_or_else(insufficient_funds)?;
    let delta = total.0 - hit.committed.0;
    if delta > w.meta.balance.0 {
        return Err(insufficient_funds());
    }
    w.meta.balance = Cents(w.meta.balance.0 - delta);
    w.touch(Key::Meta);
    if let Some(hit) = w.hits.get_mut(hit_id) {
        hit.max_assignments = new_max;
        hit.committed = total;
    }
    w.touch(Key::Hit(hit_id.to_owned()));
    if let Some(token) = token {
        w.remember_token("assignments", token, hit_id, ctx.now);
    }
    Ok(json!({}))
}

/// The wording MTurk uses when an idempotency key is reused (seen on UpdateExpirationForHIT).
fn already_processed(key: &str) -> ApiError {
    ApiError::request(
        "DuplicateRequest",
        format!("The idempotency token \"{key}\" has already been processed."),
    )
}

fn update_expiration(w: &mut World, ctx: &mut Ctx<'_>, input: &Input<'_>) -> ApiResult<Value> {
    let hit_id = input.entity_id_req("HITId")?;
    let expire_at = input.timestamp_req("ExpireAt")?;
    let key = format!("{hit_id}{}", ids::java_date(expire_at.div_euclid(1000)));
    if w.token("expiration", &key, ctx.now).is_some() {
        return Err(already_processed(&key));
    }
    let now = ctx.now;
    let hit = w
        .live_hit(hit_id, now)
        .ok_or_else(|| ApiError::hit_does_not_exist(hit_id))?;
    let current = hit.expiration_ms;
    let (new_expiration, extended) = if expire_at <= now {
        // Expire now; an already expired HIT keeps the instant it expired at.
        (current.min(now), false)
    } else {
        if expire_at > now + 31_536_000 * 1000 {
            return Err(ApiError::invalid(
                "The expiration time cannot be more than 365 days from now.",
            ));
        }
        if current > now && expire_at < current {
            return Err(ApiError::invalid(format!(
                "The expiration time {} is earlier than the HIT's current expiration {}: it can only be extended, or expired immediately.",
                expire_at / 1000,
                current / 1000
            )));
        }
        (expire_at, true)
    };
    if let Some(hit) = w.hits.get_mut(hit_id) {
        hit.expiration_ms = new_expiration;
        if extended {
            // Extending makes a Reviewable or Reviewing HIT available again.
            hit.reviewing = false;
        }
    }
    w.touch(Key::Hit(hit_id.to_owned()));
    w.remember_token("expiration", &key, hit_id, now);
    Ok(json!({}))
}

fn update_hit_type_of_hit(w: &mut World, ctx: &mut Ctx<'_>, input: &Input<'_>) -> ApiResult<Value> {
    let hit_id = input.entity_id_req("HITId")?;
    let type_id = input.entity_id_req("HITTypeId")?;
    let hit = w
        .live_hit(hit_id, ctx.now)
        .ok_or_else(|| ApiError::hit_does_not_exist(hit_id))?;
    let t = w
        .hit_types
        .get(type_id)
        .ok_or_else(|| hit_type_missing(type_id))?;
    check_requirement_types(w, &t.requirements)?;
    let total = money::hit_cost(t.reward, hit.max_assignments, is_masters(t))
        .ok_or_else(insufficient_funds)?;
    let delta = total.0 - hit.committed.0;
    if delta > w.meta.balance.0 {
        return Err(insufficient_funds());
    }
    w.meta.balance = Cents(w.meta.balance.0 - delta);
    w.touch(Key::Meta);
    if let Some(hit) = w.hits.get_mut(hit_id) {
        hit.type_id = type_id.to_owned();
        hit.committed = total;
    }
    w.touch(Key::Hit(hit_id.to_owned()));
    Ok(json!({}))
}

fn invalid_hit_state(status: &str, allowed: &str) -> ApiError {
    ApiError::request(
        "InvalidHITState",
        format!(
            "This HIT is currently in the state '{status}'. This operation can be called with a status of: {allowed}"
        ),
    )
}

fn delete_hit(w: &mut World, ctx: &mut Ctx<'_>, input: &Input<'_>) -> ApiResult<Value> {
    let hit_id = input.entity_id_req("HITId")?;
    let hit = w
        .live_hit(hit_id, ctx.now)
        .ok_or_else(|| ApiError::hit_does_not_exist(hit_id))?;
    let view = w.view(hit, ctx.now);
    let unreviewed = hit
        .assignments
        .iter()
        .filter_map(|a| w.assignments.get(a))
        .any(|a| a.status_at(ctx.now) == "Submitted");
    if !matches!(view.status, "Reviewable" | "Reviewing") || unreviewed {
        return Err(invalid_hit_state(view.status, "Reviewing, Reviewable"));
    }
    if let Some(hit) = w.hits.get_mut(hit_id) {
        hit.deleted = true;
    }
    w.touch(Key::Hit(hit_id.to_owned()));
    Ok(json!({}))
}

fn update_hit_review_status(
    w: &mut World,
    ctx: &mut Ctx<'_>,
    input: &Input<'_>,
) -> ApiResult<Value> {
    let hit_id = input.entity_id_req("HITId")?;
    let revert = input.bool_opt("Revert")?.unwrap_or(false);
    let hit = w
        .live_hit(hit_id, ctx.now)
        .ok_or_else(|| ApiError::hit_does_not_exist(hit_id))?;
    let status = w.view(hit, ctx.now).status;
    let (from, to) = if revert {
        ("Reviewing", false)
    } else {
        ("Reviewable", true)
    };
    if status != from {
        return Err(invalid_hit_state(status, from));
    }
    if let Some(hit) = w.hits.get_mut(hit_id) {
        hit.reviewing = to;
    }
    w.touch(Key::Hit(hit_id.to_owned()));
    Ok(json!({}))
}

/// Keyset pagination over HITs in creation order.
fn list_hits(
    w: &World,
    ctx: &Ctx<'_>,
    input: &Input<'_>,
    kind: &str,
    keep: impl Fn(&World, &Hit) -> bool,
) -> ApiResult<Value> {
    let max = input.max_results()?;
    let after = match input.next_token()? {
        Some(t) => wire::decode_token(kind, t)?,
        None => 0,
    };
    let now = ctx.now;
    let mut items = Vec::new();
    let mut last = None;
    let mut more = false;
    for (seq, id) in w.hit_order.range(after + 1..) {
        let Some(hit) = w.hits.get(id) else { continue };
        if w.view(hit, now).status == "Disposed" || !keep(w, hit) {
            continue;
        }
        if items.len() == max {
            more = true;
            break;
        }
        items.push(hit_json(w, hit, now));
        last = Some(*seq);
    }
    Ok(page_json(
        "HITs",
        items,
        more.then(|| wire::encode_token(kind, last.unwrap_or(after))),
    ))
}

fn page_json(member: &str, items: Vec<Value>, next: Option<String>) -> Value {
    let mut o = Map::new();
    o.insert("NumResults".into(), Value::from(items.len()));
    o.insert(member.into(), Value::from(items));
    if let Some(n) = next {
        o.insert("NextToken".into(), Value::from(n));
    }
    Value::Object(o)
}

/// Generic keyset pagination over `(seq, item)` pairs already in order.
fn paginate(
    input: &Input<'_>,
    kind: &str,
    member: &str,
    items: impl Iterator<Item = (u64, Value)>,
) -> ApiResult<Value> {
    let max = input.max_results()?;
    let after = match input.next_token()? {
        Some(t) => wire::decode_token(kind, t)?,
        None => 0,
    };
    let mut page = Vec::new();
    let mut last = after;
    let mut more = false;
    for (seq, item) in items.filter(|(s, _)| *s > after) {
        if page.len() == max {
            more = true;
            break;
        }
        page.push(item);
        last = seq;
    }
    Ok(page_json(
        member,
        page,
        more.then(|| wire::encode_token(kind, last)),
    ))
}

// ---------------------------------------------------------------- assignments

pub fn assignment_json(a: &Assignment, now: i64) -> Value {
    let mut o = Map::new();
    o.insert("AssignmentId".into(), Value::from(a.id.clone()));
    o.insert("WorkerId".into(), Value::from(a.worker_id.clone()));
    o.insert("HITId".into(), Value::from(a.hit_id.clone()));
    o.insert("AssignmentStatus".into(), Value::from(a.status_at(now)));
    o.insert(
        "AutoApprovalTime".into(),
        wire::timestamp(a.auto_approval_ms),
    );
    o.insert("AcceptTime".into(), wire::timestamp(a.accept_ms));
    o.insert("SubmitTime".into(), wire::timestamp(a.submit_ms));
    if let Some(t) = a.approval_at(now) {
        o.insert("ApprovalTime".into(), wire::timestamp(t));
    }
    if let Some(t) = a.rejection_ms
        && a.status_at(now) == "Rejected"
    {
        o.insert("RejectionTime".into(), wire::timestamp(t));
    }
    o.insert("Deadline".into(), wire::timestamp(a.deadline_ms));
    o.insert("Answer".into(), Value::from(a.answer.clone()));
    if let Some(f) = &a.feedback {
        o.insert("RequesterFeedback".into(), Value::from(f.clone()));
    }
    Value::Object(o)
}

fn assignment_missing(id: &str) -> ApiError {
    ApiError::request(
        "AssignmentDoesNotExist",
        format!("Assignment {id} does not exist."),
    )
}

/// The assignment, provided its HIT still exists.
fn live_assignment<'w>(w: &'w World, id: &str, now: i64) -> ApiResult<&'w Assignment> {
    let a = w
        .assignments
        .get(id)
        .ok_or_else(|| assignment_missing(id))?;
    if w.live_hit(&a.hit_id, now).is_none() {
        return Err(assignment_missing(id));
    }
    Ok(a)
}

fn get_assignment(w: &mut World, ctx: &mut Ctx<'_>, input: &Input<'_>) -> ApiResult<Value> {
    let id = input.entity_id_req("AssignmentId")?;
    let a = live_assignment(w, id, ctx.now)?;
    let hit = &w.hits[&a.hit_id];
    Ok(json!({
        "Assignment": assignment_json(a, ctx.now),
        "HIT": hit_json(w, hit, ctx.now),
    }))
}

fn list_assignments(w: &mut World, ctx: &mut Ctx<'_>, input: &Input<'_>) -> ApiResult<Value> {
    let hit_id = input.entity_id_req("HITId")?;
    let statuses = match input.list_opt("AssignmentStatuses")? {
        Some(list) => Some(validate::enum_list(
            "AssignmentStatuses",
            list,
            &["Submitted", "Approved", "Rejected"],
        )?),
        None => None,
    };
    let hit = w
        .live_hit(hit_id, ctx.now)
        .ok_or_else(|| ApiError::hit_does_not_exist(hit_id))?;
    let now = ctx.now;
    let items = hit
        .assignments
        .iter()
        .enumerate()
        .filter_map(|(i, id)| w.assignments.get(id).map(|a| (i as u64 + 1, a)))
        .filter(|(_, a)| {
            statuses
                .as_ref()
                .is_none_or(|s| s.iter().any(|s| s == a.status_at(now)))
        })
        .map(|(i, a)| (i, assignment_json(a, now)));
    paginate(input, "assignments", "Assignments", items)
}

/// RequesterFeedback: at most 1024 characters, no ASCII control characters but tab, LF and CR.
fn check_feedback(feedback: Option<&str>) -> ApiResult<()> {
    if let Some(f) = feedback {
        if f.chars().count() > 1024 {
            return Err(ApiError::invalid(
                "RequesterFeedback can be at most 1024 characters long.",
            ));
        }
        if f.chars()
            .any(|c| matches!(c as u32, 0..=8 | 11 | 12 | 14..=31))
        {
            return Err(ApiError::invalid(
                "RequesterFeedback contains characters that are not allowed.",
            ));
        }
    }
    Ok(())
}

fn invalid_assignment_state() -> ApiError {
    ApiError::request(
        "InvalidAssignmentState",
        "This operation can be called with a status of: Submitted",
    )
}

fn approve_assignment(w: &mut World, ctx: &mut Ctx<'_>, input: &Input<'_>) -> ApiResult<Value> {
    let id = input.entity_id_req("AssignmentId")?;
    let feedback = input.str_opt("RequesterFeedback")?;
    check_feedback(feedback)?;
    let override_rejection = input.bool_opt("OverrideRejection")?.unwrap_or(false);
    let now = ctx.now;
    let a = live_assignment(w, id, now)?;
    match a.status_at(now) {
        "Submitted" => {}
        "Rejected" if override_rejection && now - a.submit_ms <= OVERRIDE_WINDOW_MS => {}
        _ => return Err(invalid_assignment_state()),
    }
    if let Some(a) = w.assignments.get_mut(id) {
        a.status = "Approved".into();
        a.approval_ms = Some(now);
        if feedback.is_some() {
            a.feedback = feedback.map(str::to_owned);
        }
    }
    w.touch(Key::Assignment(id.to_owned()));
    Ok(json!({}))
}

fn reject_assignment(w: &mut World, ctx: &mut Ctx<'_>, input: &Input<'_>) -> ApiResult<Value> {
    let id = input.entity_id_req("AssignmentId")?;
    let feedback = input.str_req("RequesterFeedback")?;
    check_feedback(Some(feedback))?;
    let now = ctx.now;
    let a = live_assignment(w, id, now)?;
    if a.status_at(now) != "Submitted" {
        return Err(invalid_assignment_state());
    }
    if let Some(a) = w.assignments.get_mut(id) {
        a.status = "Rejected".into();
        a.rejection_ms = Some(now);
        a.feedback = Some(feedback.to_owned());
    }
    w.touch(Key::Assignment(id.to_owned()));
    Ok(json!({}))
}

fn send_bonus(w: &mut World, ctx: &mut Ctx<'_>, input: &Input<'_>) -> ApiResult<Value> {
    let worker = input.worker_id_req("WorkerId")?;
    let amount_text = input.str_req("BonusAmount")?;
    let amount = Cents::parse(amount_text).ok_or_else(|| {
        ApiError::constraint(
            "BonusAmount",
            amount_text,
            "Member must satisfy regular expression pattern: ^[0-9]+(\\.)?[0-9]{0,2}$",
        )
    })?;
    if amount.0 <= 0 {
        return Err(ApiError::invalid(
            "The bonus amount must be greater than 0.00.",
        ));
    }
    let assignment_id = input.entity_id_req("AssignmentId")?;
    let reason = input.str_req("Reason")?;
    if reason.trim().is_empty() {
        return Err(ApiError::invalid("Reason must not be empty."));
    }
    let token = input.token_opt("UniqueRequestToken")?;
    if let Some(token) = token
        && w.token("bonus", token, ctx.now).is_some()
    {
        return Err(already_processed(token));
    }
    let a = w
        .assignments
        .get(assignment_id)
        .ok_or_else(|| assignment_missing(assignment_id))?;
    if a.worker_id != worker {
        return Err(ApiError::invalid(format!(
            "Worker {worker} did not work on assignment {assignment_id}."
        )));
    }
    let hit_id = a.hit_id.clone();
    let cost = amount.0 + money::bonus_fee(amount).0;
    if cost > w.meta.balance.0 {
        return Err(insufficient_funds());
    }
    w.meta.balance = Cents(w.meta.balance.0 - cost);
    let seq = w.next_seq();
    w.bonuses.insert(
        seq,
        Bonus {
            seq,
            worker_id: worker.to_owned(),
            amount,
            assignment_id: assignment_id.to_owned(),
            hit_id,
            reason: reason.to_owned(),
            grant_ms: ctx.now,
        },
    );
    w.touch(Key::Bonus(seq));
    if let Some(token) = token {
        w.remember_token("bonus", token, assignment_id, ctx.now);
    }
    Ok(json!({}))
}

fn list_bonus_payments(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
    let hit_id = input.entity_id_opt("HITId")?;
    let assignment_id = input.entity_id_opt("AssignmentId")?;
    if hit_id.is_none() && assignment_id.is_none() {
        return Err(ApiError::invalid(
            "Either HITId or AssignmentId must be provided.",
        ));
    }
    let items = w
        .bonuses
        .values()
        .filter(|b| hit_id.is_none_or(|h| h == b.hit_id))
        .filter(|b| assignment_id.is_none_or(|a| a == b.assignment_id))
        .map(|b| {
            (
                b.seq,
                json!({
                    "WorkerId": b.worker_id,
                    "BonusAmount": b.amount.to_amount(),
                    "AssignmentId": b.assignment_id,
                    "Reason": b.reason,
                    "GrantTime": wire::timestamp(b.grant_ms),
                }),
            )
        });
    paginate(input, "bonuses", "BonusPayments", items)
}

fn get_file_upload_url(w: &mut World, ctx: &mut Ctx<'_>, input: &Input<'_>) -> ApiResult<Value> {
    let id = input.entity_id_req("AssignmentId")?;
    let question = input.str_req("QuestionIdentifier")?;
    live_assignment(w, id, ctx.now)?;
    let encoded: String = question
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    Ok(json!({
        "FileUploadURL": format!(
            "https://mturk-simulator-uploads.s3.amazonaws.com/{id}/{encoded}?X-Amz-Expires=60"
        )
    }))
}

fn list_review_policy_results(
    w: &mut World,
    ctx: &mut Ctx<'_>,
    input: &Input<'_>,
) -> ApiResult<Value> {
    let hit_id = input.entity_id_req("HITId")?;
    let levels = match input.list_opt("PolicyLevels")? {
        Some(l) => validate::enum_list("PolicyLevels", l, &["Assignment", "HIT"])?,
        None => vec!["Assignment".into(), "HIT".into()],
    };
    let retrieve_actions = input.bool_opt("RetrieveActions")?.unwrap_or(false);
    let retrieve_results = input.bool_opt("RetrieveResults")?.unwrap_or(false);
    input.max_results()?;
    input.next_token()?;
    let hit = w
        .live_hit(hit_id, ctx.now)
        .ok_or_else(|| ApiError::hit_does_not_exist(hit_id))?;
    let mut o = Map::new();
    o.insert("HITId".into(), Value::from(hit.id.clone()));
    let report = || {
        let mut r = Map::new();
        if retrieve_results {
            r.insert("ReviewResults".into(), json!([]));
        }
        if retrieve_actions {
            r.insert("ReviewActions".into(), json!([]));
        }
        Value::Object(r)
    };
    if levels.iter().any(|l| l == "Assignment") {
        if let Some(p) = &hit.assignment_review_policy {
            o.insert("AssignmentReviewPolicy".into(), p.clone());
        }
        o.insert("AssignmentReviewReport".into(), report());
    }
    if levels.iter().any(|l| l == "HIT") {
        if let Some(p) = &hit.hit_review_policy {
            o.insert("HITReviewPolicy".into(), p.clone());
        }
        o.insert("HITReviewReport".into(), report());
    }
    Ok(Value::Object(o))
}

// ---------------------------------------------------------------- qualification types

fn qual_type_missing(id: &str) -> ApiError {
    ApiError::request(
        "QualificationTypeDoesNotExist",
        format!("QualificationType {id} does not exist."),
    )
}

fn qual_missing() -> ApiError {
    ApiError::request(
        "QualificationDoesNotExist",
        "You requested a Qualification that does not exist.",
    )
}

fn qual_request_missing(id: &str) -> ApiError {
    ApiError::request(
        "QualificationRequestDoesNotExist",
        format!("QualificationRequest {id} does not exist."),
    )
}

pub fn qual_type_json(q: &QualType) -> Value {
    let mut o = Map::new();
    o.insert("QualificationTypeId".into(), Value::from(q.id.clone()));
    o.insert("CreationTime".into(), wire::timestamp(q.creation_ms));
    o.insert("Name".into(), Value::from(q.name.clone()));
    o.insert("Description".into(), Value::from(q.description.clone()));
    if let Some(k) = &q.keywords {
        o.insert("Keywords".into(), Value::from(k.clone()));
    }
    o.insert(
        "QualificationTypeStatus".into(),
        Value::from(q.status.clone()),
    );
    if let Some(t) = &q.test {
        o.insert("Test".into(), Value::from(t.clone()));
    }
    if let Some(t) = q.test_duration_secs {
        o.insert("TestDurationInSeconds".into(), Value::from(t));
    }
    if let Some(k) = &q.answer_key {
        o.insert("AnswerKey".into(), Value::from(k.clone()));
    }
    if let Some(r) = q.retry_delay_secs {
        o.insert("RetryDelayInSeconds".into(), Value::from(r));
    }
    o.insert("IsRequestable".into(), Value::from(true));
    o.insert("AutoGranted".into(), Value::from(q.auto_granted));
    if q.auto_granted {
        o.insert("AutoGrantedValue".into(), Value::from(q.auto_granted_value));
    }
    Value::Object(o)
}

/// System types as ListQualificationTypes and GetQualificationType show them.
const SYSTEM_TYPES: &[(&str, &str)] = &[
    (validate::MASTERS_QUALS[1], "Masters"),
    (validate::MASTERS_QUALS[0], "Masters (Sandbox)"),
    (validate::APPROVED_HITS_QUAL, "Worker_NumberHITsApproved"),
    (validate::LOCALE_QUAL, "Worker_Locale"),
    (validate::ADULT_QUAL, "Worker_Adult"),
    (
        validate::APPROVAL_RATE_QUAL,
        "Worker_PercentAssignmentsApproved",
    ),
];

fn system_type_json(id: &str, name: &str) -> Value {
    json!({
        "QualificationTypeId": id,
        "CreationTime": 1_104_537_600,
        "Name": name,
        "Description": format!("System qualification {name}, maintained by Amazon Mechanical Turk"),
        "QualificationTypeStatus": "Active",
        "IsRequestable": false,
        "AutoGranted": false,
    })
}

fn qual_type_json_by_id(w: &World, id: &str) -> ApiResult<Value> {
    if let Some(q) = w.qual_types.get(id) {
        return Ok(qual_type_json(q));
    }
    if let Some(name) = validate::system_qual_name(id) {
        return Ok(system_type_json(id, name));
    }
    Err(qual_type_missing(id))
}

/// Test and AutoGranted rules shared by create and update.
fn check_test(
    test: Option<&str>,
    duration: Option<i64>,
    auto_granted: bool,
    answer_key: Option<&str>,
) -> ApiResult<()> {
    if let Some(t) = test {
        if t.len() > 65_535 {
            return Err(ApiError::invalid("The Test is longer than 65535 bytes."));
        }
        if duration.is_none() {
            return Err(ApiError::invalid(
                "TestDurationInSeconds is required when a Test is given.",
            ));
        }
        if auto_granted {
            return Err(ApiError::invalid(
                "A QualificationType with a Test cannot be AutoGranted.",
            ));
        }
        if roxmltree::Document::parse(t).is_err() {
            return Err(ApiError::request(
                "XMLParseError",
                "There was an error parsing the XML question or answer data in your request. Please make sure the data is well-formed and validates against the appropriate schema.",
            ));
        }
    }
    if let Some(k) = answer_key {
        if test.is_none() {
            return Err(ApiError::invalid("An AnswerKey requires a Test."));
        }
        if roxmltree::Document::parse(k).is_err() {
            return Err(ApiError::request(
                "XMLParseError",
                "There was an error parsing the XML question or answer data in your request. Please make sure the data is well-formed and validates against the appropriate schema.",
            ));
        }
    }
    Ok(())
}

fn create_qualification_type(
    w: &mut World,
    ctx: &mut Ctx<'_>,
    input: &Input<'_>,
) -> ApiResult<Value> {
    let name = input.str_req("Name")?;
    let description = input.str_req("Description")?;
    let status = input.enum_req("QualificationTypeStatus", &["Active", "Inactive"])?;
    let keywords = input.str_opt("Keywords")?;
    let retry = input.i64_opt("RetryDelayInSeconds")?;
    let test = input.str_opt("Test")?;
    let answer_key = input.str_opt("AnswerKey")?;
    let duration = input.i64_opt("TestDurationInSeconds")?;
    let auto_granted = input.bool_opt("AutoGranted")?.unwrap_or(false);
    let auto_value = input.i32_opt("AutoGrantedValue")?.unwrap_or(1);
    if name.trim().is_empty() {
        return Err(ApiError::invalid(
            "The Name of a QualificationType must not be empty.",
        ));
    }
    if description.chars().count() > 2000 {
        return Err(ApiError::invalid(
            "Description can be at most 2000 characters long.",
        ));
    }
    if let Some(k) = keywords
        && k.chars().count() > 1000
    {
        return Err(ApiError::invalid(
            "Keywords can be at most 1000 characters long.",
        ));
    }
    check_test(test, duration, auto_granted, answer_key)?;
    if w.qual_types.values().any(|q| q.name == name) {
        return Err(ApiError::request(
            "QualificationTypeAlreadyExists",
            "You have already created a QualificationType with this name. A QualificationType's name must be unique among all of the QualificationTypes created by the same user.",
        ));
    }
    let id = unique_id(ctx, |id| w.qual_types.contains_key(id));
    let seq = w.next_seq();
    let q = QualType {
        id: id.clone(),
        seq,
        name: name.to_owned(),
        description: description.to_owned(),
        keywords: keywords.map(str::to_owned),
        status: status.to_owned(),
        test: test.map(str::to_owned),
        answer_key: answer_key.map(str::to_owned),
        test_duration_secs: duration,
        retry_delay_secs: retry,
        auto_granted,
        auto_granted_value: auto_value,
        creation_ms: ctx.now,
    };
    let out = qual_type_json(&q);
    w.qual_type_order.insert(seq, id.clone());
    w.qual_types.insert(id.clone(), q);
    w.touch(Key::QualType(id));
    Ok(json!({ "QualificationType": out }))
}

fn update_qualification_type(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
    let id = input.entity_id_req("QualificationTypeId")?;
    let description = input.str_opt("Description")?;
    let status = input.enum_opt("QualificationTypeStatus", &["Active", "Inactive"])?;
    let test = input.str_opt("Test")?;
    let answer_key = input.str_opt("AnswerKey")?;
    let duration = input.i64_opt("TestDurationInSeconds")?;
    let retry = input.i64_opt("RetryDelayInSeconds")?;
    let auto_granted = input.bool_opt("AutoGranted")?;
    let auto_value = input.i32_opt("AutoGrantedValue")?;
    let Some(q) = w.qual_types.get(id) else {
        return Err(qual_type_missing(id));
    };
    let new_test = test.or(q.test.as_deref());
    check_test(
        new_test,
        duration.or(q.test_duration_secs),
        auto_granted.unwrap_or(q.auto_granted),
        answer_key.or(q.answer_key.as_deref()),
    )?;
    if let Some(d) = description
        && d.chars().count() > 2000
    {
        return Err(ApiError::invalid(
            "Description can be at most 2000 characters long.",
        ));
    }
    let Some(q) = w.qual_types.get_mut(id) else {
        return Err(qual_type_missing(id));
    };
    if let Some(d) = description {
        q.description = d.to_owned();
    }
    if let Some(s) = status {
        q.status = s.to_owned();
    }
    if let Some(t) = test {
        q.test = Some(t.to_owned());
    }
    if let Some(k) = answer_key {
        q.answer_key = Some(k.to_owned());
    }
    if duration.is_some() {
        q.test_duration_secs = duration;
    }
    if retry.is_some() {
        q.retry_delay_secs = retry;
    }
    if let Some(a) = auto_granted {
        q.auto_granted = a;
    }
    if let Some(v) = auto_value {
        q.auto_granted_value = v;
    }
    let out = qual_type_json(q);
    w.touch(Key::QualType(id.to_owned()));
    Ok(json!({ "QualificationType": out }))
}

fn delete_qualification_type(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
    let id = input.entity_id_req("QualificationTypeId")?;
    let Some(q) = w.qual_types.remove(id) else {
        return Err(qual_type_missing(id));
    };
    w.qual_type_order.remove(&q.seq);
    w.touch(Key::QualType(id.to_owned()));
    Ok(json!({}))
}

fn list_qualification_types(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
    let query = input.str_opt("Query")?.map(str::to_lowercase);
    let requestable = input.bool_opt("MustBeRequestable")?.ok_or_else(|| {
        ApiError::constraint("MustBeRequestable", "null", "Member must not be null")
    })?;
    let owned = input.bool_opt("MustBeOwnedByCaller")?.unwrap_or(false);
    let matches = |texts: &[&str]| {
        query
            .as_deref()
            .is_none_or(|q| texts.iter().any(|t| t.to_lowercase().contains(q)))
    };
    let mut items: Vec<(u64, Value)> = Vec::new();
    if !owned && !requestable {
        for (i, (id, name)) in SYSTEM_TYPES.iter().enumerate() {
            if matches(&[name]) {
                items.push((i as u64 + 1, system_type_json(id, name)));
            }
        }
    }
    for (seq, id) in &w.qual_type_order {
        let Some(q) = w.qual_types.get(id) else {
            continue;
        };
        if matches(&[&q.name, &q.description, q.keywords.as_deref().unwrap_or("")]) {
            items.push(((1 << 40) + seq, qual_type_json(q)));
        }
    }
    paginate(input, "qualtypes", "QualificationTypes", items.into_iter())
}

// ---------------------------------------------------------------- worker qualifications

fn qualification_json(q: &Qualification) -> Value {
    json!({
        "QualificationTypeId": q.type_id,
        "WorkerId": q.worker_id,
        "GrantTime": wire::timestamp(q.grant_ms),
        "IntegerValue": q.value,
        "Status": q.status,
    })
}

/// Grants (or re-grants) a qualification.
pub fn grant(w: &mut World, type_id: &str, worker: &str, value: i64, now: i64) {
    let seq = w.next_seq();
    let key = (type_id.to_owned(), worker.to_owned());
    let q = w
        .qualifications
        .entry(key)
        .or_insert_with(|| Qualification {
            type_id: type_id.to_owned(),
            worker_id: worker.to_owned(),
            value,
            grant_ms: now,
            status: "Granted".into(),
            seq,
        });
    q.value = value;
    q.grant_ms = now;
    q.status = "Granted".into();
    w.touch(Key::Qualification(type_id.to_owned(), worker.to_owned()));
}

fn associate_qualification(
    w: &mut World,
    ctx: &mut Ctx<'_>,
    input: &Input<'_>,
) -> ApiResult<Value> {
    let type_id = input.entity_id_req("QualificationTypeId")?;
    let worker = input.worker_id_req("WorkerId")?;
    let value = input.i32_opt("IntegerValue")?.unwrap_or(1);
    input.bool_opt("SendNotification")?;
    if validate::is_system_qual(type_id) {
        return Err(ApiError::request(
            "PermissionDenied",
            format!("You cannot assign the system QualificationType {type_id}."),
        ));
    }
    if !w.qual_types.contains_key(type_id) {
        return Err(qual_type_missing(type_id));
    }
    grant(w, type_id, worker, value, ctx.now);
    Ok(json!({}))
}

fn disassociate_qualification(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
    let worker = input.worker_id_req("WorkerId")?;
    let type_id = input.entity_id_req("QualificationTypeId")?;
    input.str_opt("Reason")?;
    match w
        .qualifications
        .get_mut(&(type_id.to_owned(), worker.to_owned()))
    {
        Some(q) if q.status == "Granted" => q.status = "Revoked".into(),
        _ => return Err(qual_missing()),
    }
    w.touch(Key::Qualification(type_id.to_owned(), worker.to_owned()));
    Ok(json!({}))
}

fn get_qualification_score(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
    let type_id = input.entity_id_req("QualificationTypeId")?;
    let worker = input.worker_id_req("WorkerId")?;
    let q = w
        .qualifications
        .get(&(type_id.to_owned(), worker.to_owned()))
        .ok_or_else(qual_missing)?;
    Ok(json!({ "Qualification": qualification_json(q) }))
}

fn list_workers_with_qualification(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
    let type_id = input.entity_id_req("QualificationTypeId")?;
    let status = input.enum_opt("Status", &["Granted", "Revoked"])?;
    if !w.qual_types.contains_key(type_id) {
        return Err(qual_type_missing(type_id));
    }
    let mut quals: Vec<&Qualification> = w
        .qualifications
        .values()
        .filter(|q| q.type_id == type_id && status.is_none_or(|s| s == q.status))
        .collect();
    quals.sort_by_key(|q| q.seq);
    let items: Vec<(u64, Value)> = quals
        .into_iter()
        .map(|q| (q.seq, qualification_json(q)))
        .collect();
    paginate(input, "workerquals", "Qualifications", items.into_iter())
}

fn list_qualification_requests(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
    let type_id = input.entity_id_opt("QualificationTypeId")?;
    let mut reqs: Vec<_> = w
        .qual_requests
        .values()
        .filter(|r| type_id.is_none_or(|t| t == r.type_id))
        .collect();
    reqs.sort_by_key(|r| r.seq);
    let items: Vec<(u64, Value)> = reqs
        .into_iter()
        .map(|r| {
            let test = w.qual_types.get(&r.type_id).and_then(|q| q.test.clone());
            let mut o = Map::new();
            o.insert("QualificationRequestId".into(), Value::from(r.id.clone()));
            o.insert("QualificationTypeId".into(), Value::from(r.type_id.clone()));
            o.insert("WorkerId".into(), Value::from(r.worker_id.clone()));
            if let Some(t) = test {
                o.insert("Test".into(), Value::from(t));
            }
            if let Some(a) = &r.answer {
                o.insert("Answer".into(), Value::from(a.clone()));
            }
            o.insert("SubmitTime".into(), wire::timestamp(r.submit_ms));
            (r.seq, Value::Object(o))
        })
        .collect();
    paginate(
        input,
        "qualrequests",
        "QualificationRequests",
        items.into_iter(),
    )
}

fn accept_qualification_request(
    w: &mut World,
    ctx: &mut Ctx<'_>,
    input: &Input<'_>,
) -> ApiResult<Value> {
    let id = input.str_req("QualificationRequestId")?;
    let value = input.i32_opt("IntegerValue")?.unwrap_or(1);
    let Some(r) = w.qual_requests.remove(id) else {
        return Err(qual_request_missing(id));
    };
    w.touch(Key::QualRequest(id.to_owned()));
    grant(w, &r.type_id, &r.worker_id, value, ctx.now);
    Ok(json!({}))
}

// ---------------------------------------------------------------- workers

fn create_worker_block(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
    let worker = input.worker_id_req("WorkerId")?;
    let reason = input.str_req("Reason")?;
    if reason.trim().is_empty() {
        return Err(ApiError::invalid("Reason must not be empty."));
    }
    let seq = w.next_seq();
    w.blocks.insert(
        worker.to_owned(),
        Block {
            worker_id: worker.to_owned(),
            reason: reason.to_owned(),
            seq,
        },
    );
    w.touch(Key::Block(worker.to_owned()));
    Ok(json!({}))
}

fn delete_worker_block(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
    let worker = input.worker_id_req("WorkerId")?;
    input.str_opt("Reason")?;
    if w.blocks.remove(worker).is_some() {
        w.touch(Key::Block(worker.to_owned()));
    }
    Ok(json!({}))
}

fn list_worker_blocks(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
    let mut blocks: Vec<&Block> = w.blocks.values().collect();
    blocks.sort_by_key(|b| b.seq);
    let items: Vec<(u64, Value)> = blocks
        .into_iter()
        .map(|b| {
            (
                b.seq,
                json!({ "WorkerId": b.worker_id, "Reason": b.reason }),
            )
        })
        .collect();
    paginate(input, "blocks", "WorkerBlocks", items.into_iter())
}

fn notify_workers(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
    let subject = input.str_req("Subject")?;
    let message = input.str_req("MessageText")?;
    let workers = input
        .list_opt("WorkerIds")?
        .ok_or_else(|| ApiError::constraint("WorkerIds", "null", "Member must not be null"))?;
    let n = subject.chars().count();
    if n == 0 || n > 200 {
        return Err(ApiError::invalid(
            "Subject must be between 1 and 200 characters long.",
        ));
    }
    let n = message.chars().count();
    if n == 0 || n > 4096 {
        return Err(ApiError::invalid(
            "MessageText must be between 1 and 4096 characters long.",
        ));
    }
    if workers.is_empty() || workers.len() > 100 {
        return Err(ApiError::invalid(format!(
            "WorkerIds must name between 1 and 100 workers; {} were given.",
            workers.len()
        )));
    }
    let mut failures = Vec::new();
    for v in workers {
        let Some(id) = v.as_str() else {
            return Err(ApiError::serialization("WorkerIds must hold strings"));
        };
        wire::check_worker_id("WorkerIds", id)?;
        // MTurk only lets you message workers who have worked for you.
        if !w.assignments.values().any(|a| a.worker_id == id) {
            failures.push(json!({
                "NotifyWorkersFailureCode": "HardFailure",
                "NotifyWorkersFailureMessage": format!("Cannot send notification because worker {id} has not submitted work for you."),
                "WorkerId": id,
            }));
        }
    }
    Ok(json!({ "NotifyWorkersFailureStatuses": failures }))
}

// ---------------------------------------------------------------- notifications

pub const EVENT_TYPES: &[&str] = &[
    "AssignmentAccepted",
    "AssignmentAbandoned",
    "AssignmentReturned",
    "AssignmentSubmitted",
    "AssignmentRejected",
    "AssignmentApproved",
    "HITCreated",
    "HITExpired",
    "HITReviewable",
    "HITExtended",
    "HITDisposed",
    "Ping",
];

fn check_notification(spec: &Input<'_>) -> ApiResult<()> {
    let destination = spec.str_req("Destination")?;
    let transport = spec.enum_req("Transport", &["Email", "SQS", "SNS"])?;
    let version = spec.str_req("Version")?;
    let events = spec
        .list_opt("EventTypes")?
        .ok_or_else(|| ApiError::constraint("EventTypes", "null", "Member must not be null"))?;
    if version != "2006-05-05" {
        return Err(ApiError::invalid(format!(
            "The Version '{version}' is not supported: use 2006-05-05."
        )));
    }
    if events.is_empty() {
        return Err(ApiError::invalid(
            "EventTypes must name at least one event.",
        ));
    }
    validate::enum_list("EventTypes", events, EVENT_TYPES)?;
    let account_and_name = |rest: &str, sep: char| -> bool {
        let mut parts = rest.splitn(2, sep);
        let account = parts.next().unwrap_or("");
        let name = parts.next().unwrap_or("");
        account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    };
    let ok = match transport {
        "Email" => {
            let mut parts = destination.splitn(2, '@');
            let local = parts.next().unwrap_or("");
            let domain = parts.next().unwrap_or("");
            !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !destination.contains(' ')
        }
        "SQS" => destination
            .strip_prefix("https://sqs.")
            .and_then(|r| r.split_once(".amazonaws.com/"))
            .is_some_and(|(region, rest)| !region.is_empty() && account_and_name(rest, '/')),
        _ => destination
            .strip_prefix("arn:aws:sns:")
            .and_then(|r| r.split_once(':'))
            .is_some_and(|(region, rest)| !region.is_empty() && account_and_name(rest, ':')),
    };
    if !ok {
        return Err(ApiError::invalid(format!(
            "The Destination '{destination}' is not a valid {transport} destination."
        )));
    }
    Ok(())
}

fn update_notification_settings(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
    let type_id = input.entity_id_req("HITTypeId")?;
    let spec = input.obj_opt("Notification")?;
    let active = input.bool_opt("Active")?;
    if let Some(s) = &spec {
        check_notification(s)?;
    }
    if !w.hit_types.contains_key(type_id) {
        return Err(hit_type_missing(type_id));
    }
    let existing = w.notifications.get(type_id);
    let specification = match spec {
        Some(_) => input.raw("Notification").cloned(),
        None => existing.and_then(|e| e.specification.clone()),
    };
    if specification.is_none() {
        return Err(ApiError::invalid(
            "No notification specification exists for this HIT type: give a Notification.",
        ));
    }
    let active = active.or(existing.map(|e| e.active)).unwrap_or(true);
    w.notifications.insert(
        type_id.to_owned(),
        NotificationSetting {
            hit_type_id: type_id.to_owned(),
            specification,
            active,
        },
    );
    w.touch(Key::Notification(type_id.to_owned()));
    Ok(json!({}))
}

/// The kinds of question a HIT's content is, for simulated answers.
pub fn question_kind(hit: &Hit) -> Option<QuestionKind> {
    hit.question
        .as_deref()
        .and_then(|q| validate::check_question(q).ok())
}
