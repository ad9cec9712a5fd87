//! HIT types and HITs: create, extend, retype, add assignments, delete, review status, and
//! the paginated listings.

use super::*;

pub(super) fn insufficient_funds() -> ApiError {
    ApiError::request(
        "InsufficientFunds",
        "This Requester has insufficient funds in their account to complete this transaction. Please visit https://requester.mturk.com/prepayments/new to purchase Prepaid HITs.",
    )
}

pub(super) fn hit_type_missing(id: &str) -> ApiError {
    ApiError::request(
        "HITTypeDoesNotExist",
        format!("Hit type {id} does not exist."),
    )
}

pub(super) fn is_masters(t: &HitType) -> bool {
    t.requirements
        .iter()
        .any(|r| validate::MASTERS_QUALS.contains(&r.type_id.as_str()))
}

/// Custom qualification types in requirements must exist, be ours and be Active.
pub(super) fn check_requirement_types(w: &World, reqs: &[Requirement]) -> ApiResult<()> {
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
pub(super) fn hit_type_from_input(
    w: &World,
    ctx: &Ctx<'_>,
    input: &Input<'_>,
) -> ApiResult<HitType> {
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
pub(super) fn register_hit_type(w: &mut World, t: HitType) -> String {
    let id = t.id.clone();
    if !w.hit_types.contains_key(&id) {
        w.hit_types.insert(id.clone(), t);
        w.touch(Key::HitType(id.clone()));
    }
    id
}

pub(super) fn create_hit_type(
    w: &mut World,
    ctx: &mut Ctx<'_>,
    input: &Input<'_>,
) -> ApiResult<Value> {
    let t = hit_type_from_input(w, ctx, input)?;
    let id = register_hit_type(w, t);
    Ok(json!({ "HITTypeId": id }))
}

pub(super) fn create_hit(w: &mut World, ctx: &mut Ctx<'_>, input: &Input<'_>) -> ApiResult<Value> {
    let t = hit_type_from_input(w, ctx, input)?;
    let parts = hit_parts(input, ctx.local_external_urls)?;
    if let Some(existing) = token_hit(w, ctx, parts.token) {
        return Err(existing);
    }
    let id = register_hit_type(w, t);
    new_hit(w, ctx, &id, parts)
}

pub(super) fn create_hit_with_hit_type(
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
pub(super) struct HitParts<'a> {
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

pub(super) fn hit_parts<'a>(
    input: &Input<'a>,
    local_external_urls: bool,
) -> ApiResult<HitParts<'a>> {
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

pub(super) fn review_policy(input: &Input<'_>, name: &str) -> ApiResult<Option<Value>> {
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
pub(super) fn token_hit(w: &World, ctx: &Ctx<'_>, token: Option<&str>) -> Option<ApiError> {
    let record = w.token("hit", token?, ctx.now)?;
    Some(ApiError::request(
        "HitAlreadyExists",
        format!(
            "There is already a HIT which exists with the same UniqueRequestToken: {}",
            record.target
        ),
    ))
}

pub(super) fn unique_id(ctx: &mut Ctx<'_>, taken: impl Fn(&str) -> bool) -> String {
    loop {
        let id = ids::random_id(ctx.rng);
        if !taken(&id) {
            return id;
        }
    }
}

pub(super) fn new_hit(
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

pub(super) fn create_additional_assignments(
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
pub(super) fn already_processed(key: &str) -> ApiError {
    ApiError::request(
        "DuplicateRequest",
        format!("The idempotency token \"{key}\" has already been processed."),
    )
}

pub(super) fn update_expiration(
    w: &mut World,
    ctx: &mut Ctx<'_>,
    input: &Input<'_>,
) -> ApiResult<Value> {
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

pub(super) fn update_hit_type_of_hit(
    w: &mut World,
    ctx: &mut Ctx<'_>,
    input: &Input<'_>,
) -> ApiResult<Value> {
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

pub(super) fn invalid_hit_state(status: &str, allowed: &str) -> ApiError {
    ApiError::request(
        "InvalidHITState",
        format!(
            "This HIT is currently in the state '{status}'. This operation can be called with a status of: {allowed}"
        ),
    )
}

pub(super) fn delete_hit(w: &mut World, ctx: &mut Ctx<'_>, input: &Input<'_>) -> ApiResult<Value> {
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

pub(super) fn update_hit_review_status(
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
pub(super) fn list_hits(
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

pub(super) fn page_json(member: &str, items: Vec<Value>, next: Option<String>) -> Value {
    let mut o = Map::new();
    o.insert("NumResults".into(), Value::from(items.len()));
    o.insert(member.into(), Value::from(items));
    if let Some(n) = next {
        o.insert("NextToken".into(), Value::from(n));
    }
    Value::Object(o)
}

/// Generic keyset pagination over `(seq, item)` pairs already in order.
pub(super) fn paginate(
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

pub(super) fn get_hit(w: &mut World, ctx: &mut Ctx<'_>, input: &Input<'_>) -> ApiResult<Value> {
    let id = input.entity_id_req("HITId")?;
    let hit = w
        .live_hit(id, ctx.now)
        .ok_or_else(|| ApiError::hit_does_not_exist(id))?;
    Ok(json!({ "HIT": hit_json(w, hit, ctx.now) }))
}

pub(super) fn list_all_hits(
    w: &mut World,
    ctx: &mut Ctx<'_>,
    input: &Input<'_>,
) -> ApiResult<Value> {
    list_hits(w, ctx, input, "hits", |_, _| true)
}

pub(super) fn list_hits_for_qualification_type(
    w: &mut World,
    ctx: &mut Ctx<'_>,
    input: &Input<'_>,
) -> ApiResult<Value> {
    let qid = input.entity_id_req("QualificationTypeId")?.to_owned();
    qual_type_json_by_id(w, &qid)?;
    list_hits(w, ctx, input, "hitsforqual", move |w, h| {
        w.hit_types
            .get(&h.type_id)
            .is_some_and(|t| t.requirements.iter().any(|r| r.type_id == qid))
    })
}

pub(super) fn list_reviewable_hits(
    w: &mut World,
    ctx: &mut Ctx<'_>,
    input: &Input<'_>,
) -> ApiResult<Value> {
    let type_id = input.entity_id_opt("HITTypeId")?.map(str::to_owned);
    let status = input
        .enum_opt("Status", &["Reviewable", "Reviewing"])?
        .unwrap_or("Reviewable");
    let now = ctx.now;
    list_hits(w, ctx, input, "reviewable", move |w, h| {
        type_id.as_deref().is_none_or(|t| t == h.type_id) && w.view(h, now).status == status
    })
}

/// The kinds of question a HIT's content is, for simulated answers.
pub fn question_kind(hit: &Hit) -> Option<QuestionKind> {
    hit.question
        .as_deref()
        .and_then(|q| validate::check_question(q).ok())
}
