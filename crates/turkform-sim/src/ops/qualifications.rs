//! Worker qualifications: grants, scores, the workers holding a type, and requests.

use super::*;

pub(super) fn qualification_json(q: &Qualification) -> Value {
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

pub(super) fn associate_qualification(
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

pub(super) fn disassociate_qualification(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
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

pub(super) fn get_qualification_score(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
    let type_id = input.entity_id_req("QualificationTypeId")?;
    let worker = input.worker_id_req("WorkerId")?;
    let q = w
        .qualifications
        .get(&(type_id.to_owned(), worker.to_owned()))
        .ok_or_else(qual_missing)?;
    Ok(json!({ "Qualification": qualification_json(q) }))
}

pub(super) fn list_workers_with_qualification(
    w: &mut World,
    input: &Input<'_>,
) -> ApiResult<Value> {
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

pub(super) fn list_qualification_requests(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
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

pub(super) fn accept_qualification_request(
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

pub(super) fn reject_qualification_request(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
    let id = input.str_req("QualificationRequestId")?;
    input.str_opt("Reason")?;
    if w.qual_requests.remove(id).is_none() {
        return Err(qual_request_missing(id));
    }
    w.touch(Key::QualRequest(id.to_owned()));
    Ok(json!({}))
}
