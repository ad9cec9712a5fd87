//! Qualification types: create, update, delete, list, and the system types.

use super::*;

pub(super) fn qual_type_missing(id: &str) -> ApiError {
    ApiError::request(
        "QualificationTypeDoesNotExist",
        format!("QualificationType {id} does not exist."),
    )
}

pub(super) fn qual_missing() -> ApiError {
    ApiError::request(
        "QualificationDoesNotExist",
        "You requested a Qualification that does not exist.",
    )
}

pub(super) fn qual_request_missing(id: &str) -> ApiError {
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
pub(super) const SYSTEM_TYPES: &[(&str, &str)] = &[
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

pub(super) fn system_type_json(id: &str, name: &str) -> Value {
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

pub(super) fn qual_type_json_by_id(w: &World, id: &str) -> ApiResult<Value> {
    if let Some(q) = w.qual_types.get(id) {
        return Ok(qual_type_json(q));
    }
    if let Some(name) = validate::system_qual_name(id) {
        return Ok(system_type_json(id, name));
    }
    Err(qual_type_missing(id))
}

/// Test and AutoGranted rules shared by create and update.
pub(super) fn check_test(
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

pub(super) fn create_qualification_type(
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

pub(super) fn update_qualification_type(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
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

pub(super) fn delete_qualification_type(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
    let id = input.entity_id_req("QualificationTypeId")?;
    let Some(q) = w.qual_types.remove(id) else {
        return Err(qual_type_missing(id));
    };
    w.qual_type_order.remove(&q.seq);
    w.touch(Key::QualType(id.to_owned()));
    Ok(json!({}))
}

pub(super) fn list_qualification_types(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
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

pub(super) fn get_qualification_type(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
    let id = input.entity_id_req("QualificationTypeId")?;
    Ok(json!({ "QualificationType": qual_type_json_by_id(w, id)? }))
}
