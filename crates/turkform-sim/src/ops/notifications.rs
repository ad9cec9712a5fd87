//! Notification settings of a HIT type, and test events.

use super::*;

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

pub(super) fn check_notification(spec: &Input<'_>) -> ApiResult<()> {
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

pub(super) fn update_notification_settings(w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
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

pub(super) fn send_test_event_notification(_w: &mut World, input: &Input<'_>) -> ApiResult<Value> {
    let spec = input
        .obj_opt("Notification")?
        .ok_or_else(|| ApiError::constraint("Notification", "null", "Member must not be null"))?;
    check_notification(&spec)?;
    input.enum_req("TestEventType", EVENT_TYPES)?;
    Ok(json!({}))
}
