//! Assignments: reads, approve / reject, bonuses, the account balance, file upload URLs and
//! review policy results.

use super::*;

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

pub(super) fn assignment_missing(id: &str) -> ApiError {
    ApiError::request(
        "AssignmentDoesNotExist",
        format!("Assignment {id} does not exist."),
    )
}

/// The assignment, provided its HIT still exists.
pub(super) fn live_assignment<'w>(w: &'w World, id: &str, now: i64) -> ApiResult<&'w Assignment> {
    let a = w
        .assignments
        .get(id)
        .ok_or_else(|| assignment_missing(id))?;
    if w.live_hit(&a.hit_id, now).is_none() {
        return Err(assignment_missing(id));
    }
    Ok(a)
}

pub(super) fn get_assignment(
    w: &mut World,
    ctx: &mut Ctx<'_>,
    input: &Input<'_>,
) -> ApiResult<Value> {
    let id = input.entity_id_req("AssignmentId")?;
    let a = live_assignment(w, id, ctx.now)?;
    let hit = &w.hits[&a.hit_id];
    Ok(json!({
        "Assignment": assignment_json(a, ctx.now),
        "HIT": hit_json(w, hit, ctx.now),
    }))
}

pub(super) fn list_assignments(
    w: &mut World,
    ctx: &mut Ctx<'_>,
    input: &Input<'_>,
) -> ApiResult<Value> {
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
pub(super) fn check_feedback(feedback: Option<&str>) -> ApiResult<()> {
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

pub(super) fn invalid_assignment_state() -> ApiError {
    ApiError::request(
        "InvalidAssignmentState",
        "This operation can be called with a status of: Submitted",
    )
}

pub(super) fn approve_assignment(
    w: &mut World,
    ctx: &mut Ctx<'_>,
    input: &Input<'_>,
) -> ApiResult<Value> {
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

pub(super) fn reject_assignment(
    w: &mut World,
    ctx: &mut Ctx<'_>,
    input: &Input<'_>,
) -> ApiResult<Value> {
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

pub(super) fn send_bonus(w: &mut World, ctx: &mut Ctx<'_>, input: &Input<'_>) -> ApiResult<Value> {
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

pub(super) fn list_bonus_payments(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
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

pub(super) fn get_file_upload_url(
    w: &mut World,
    ctx: &mut Ctx<'_>,
    input: &Input<'_>,
) -> ApiResult<Value> {
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

pub(super) fn list_review_policy_results(
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

pub(super) fn get_account_balance(w: &mut World) -> ApiResult<Value> {
    Ok(json!({
        "AvailableBalance": w.meta.balance.to_amount(),
        "OnHoldBalance": "0.00",
    }))
}
