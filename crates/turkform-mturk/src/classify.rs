//! Turning aws-sdk-mturk failures into [`ApiError`]: what the executor should do about them.
//!
//! The SDK's own retries are off (see [`crate::sdk`]), so every throttle, fault and dropped
//! connection reaches this module exactly once per attempt and the executor sees all of them.

use std::error::Error as StdError;

use aws_sdk_mturk::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response as HttpResponse;

use crate::ApiError;

/// The `TurkErrorCode` of a modeled error, where the operation's error enum carries one.
pub(crate) trait TurkCode {
    fn turk_code(&self) -> Option<&str>;
    fn is_service_fault(&self) -> bool;
}

macro_rules! turk_code_for {
    ($($module:ident :: $error:ident),* $(,)?) => {$(
        impl TurkCode for aws_sdk_mturk::operation::$module::$error {
            fn turk_code(&self) -> Option<&str> {
                match self {
                    Self::RequestError(e) => e.turk_error_code(),
                    Self::ServiceFault(e) => e.turk_error_code(),
                    _ => None,
                }
            }
            fn is_service_fault(&self) -> bool {
                matches!(self, Self::ServiceFault(_))
            }
        }
    )*};
}

turk_code_for!(
    get_account_balance::GetAccountBalanceError,
    create_qualification_type::CreateQualificationTypeError,
    update_qualification_type::UpdateQualificationTypeError,
    list_qualification_types::ListQualificationTypesError,
    create_hit_type::CreateHITTypeError,
    create_hit_with_hit_type::CreateHITWithHITTypeError,
    create_additional_assignments_for_hit::CreateAdditionalAssignmentsForHITError,
    update_expiration_for_hit::UpdateExpirationForHITError,
    update_hit_type_of_hit::UpdateHITTypeOfHITError,
    get_hit::GetHITError,
    list_hits::ListHITsError,
    list_assignments_for_hit::ListAssignmentsForHITError,
    approve_assignment::ApproveAssignmentError,
    reject_assignment::RejectAssignmentError,
    get_assignment::GetAssignmentError,
    send_bonus::SendBonusError,
    list_bonus_payments::ListBonusPaymentsError,
    create_worker_block::CreateWorkerBlockError,
    delete_worker_block::DeleteWorkerBlockError,
    list_worker_blocks::ListWorkerBlocksError,
    associate_qualification_with_worker::AssociateQualificationWithWorkerError,
    disassociate_qualification_from_worker::DisassociateQualificationFromWorkerError,
    list_workers_with_qualification_type::ListWorkersWithQualificationTypeError,
    update_notification_settings::UpdateNotificationSettingsError,
);

/// Which call failed: a few error codes mean "already done" only for some operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    /// CreateHITWithHITType: `HitAlreadyExists` names the HIT the token created.
    CreateHit,
    /// UpdateExpirationForHIT and CreateAdditionalAssignmentsForHIT: a repeat of an identical
    /// call is refused as "already been processed", which means it took effect earlier.
    Deduplicated,
    Other,
}

const HIT_ALREADY_EXISTS: &str = "AWS.MechanicalTurk.HitAlreadyExists";

/// Classifies one failed SDK call.
pub(crate) fn classify<E>(call: Call, err: SdkError<E, HttpResponse>) -> ApiError
where
    E: ProvideErrorMetadata + TurkCode + StdError + Send + Sync + 'static,
{
    if let SdkError::ServiceError(ctx) = &err {
        let status = ctx.raw().status().as_u16();
        let e = ctx.err();
        return service_error(
            call,
            status,
            e.code(),
            e.turk_code(),
            e.message(),
            e.is_service_fault(),
        );
    }
    let text = chain_text(&err);
    match &err {
        SdkError::TimeoutError(_) => ApiError::Transient {
            message: network_cause(&text, true),
        },
        // A user error here is a configuration problem (bad endpoint URL, no credentials):
        // retrying cannot fix it.
        SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_)
            if looks_like_credentials(&text) =>
        {
            ApiError::Credentials {
                message: with_credentials_hint(text),
            }
        }
        SdkError::DispatchFailure(d) if d.is_user() => ApiError::Fatal {
            code: None,
            turk_error_code: None,
            message: text,
        },
        SdkError::DispatchFailure(_) => ApiError::Transient {
            message: network_cause(&text, false),
        },
        SdkError::ResponseError(_) => ApiError::Transient {
            message: format!("unreadable response from MTurk: {text}"),
        },
        SdkError::ConstructionFailure(_) => ApiError::Fatal {
            code: None,
            turk_error_code: None,
            message: with_credentials_hint(text),
        },
        _ => ApiError::Transient { message: text },
    }
}

/// The classification of an error MTurk (or the AWS front end) answered.
pub(crate) fn service_error(
    call: Call,
    status: u16,
    code: Option<&str>,
    turk_code: Option<&str>,
    message: Option<&str>,
    service_fault: bool,
) -> ApiError {
    let message = message.unwrap_or("(no message)").to_owned();
    if matches!(
        code,
        Some(
            "ThrottlingException"
                | "Throttling"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
        )
    ) || status == 429
    {
        return ApiError::Throttled { message };
    }
    if service_fault || code == Some("ServiceFault") || status >= 500 {
        return ApiError::Transient { message };
    }
    if call == Call::CreateHit && turk_code == Some(HIT_ALREADY_EXISTS) {
        return ApiError::AlreadyExists {
            hit_id: find_hit_id(&message),
            message,
        };
    }
    if call == Call::Deduplicated && message.contains("has already been processed") {
        return ApiError::AlreadyExists {
            hit_id: None,
            message,
        };
    }
    ApiError::Fatal {
        code: code.map(str::to_owned),
        turk_error_code: turk_code.map(str::to_owned),
        message,
    }
}

/// The first run of exactly 30 characters from `[A-Z0-9]` in `message`: MTurk's HIT ids are 30
/// upper-case alphanumerics, and `HitAlreadyExists` names the HIT only inside its message. A
/// longer run is some other token and is skipped, as are the 13-digit millisecond stamps MTurk
/// appends (too short).
pub fn find_hit_id(message: &str) -> Option<String> {
    let bytes = message.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        if !is_id_byte(bytes[start]) {
            start += 1;
            continue;
        }
        let mut end = start;
        while end < bytes.len() && is_id_byte(bytes[end]) {
            end += 1;
        }
        let run = &message[start..end];
        // A run of digits only is a number (a timestamp), never a HIT id.
        if run.len() == 30 && run.bytes().any(|b| b.is_ascii_uppercase()) {
            return Some(run.to_owned());
        }
        start = end;
    }
    None
}

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}

/// An error and its causes on one line. The SDK's errors name what failed (connection refused,
/// timed out, ...) only in their sources. None of them carries credentials: signing happens
/// before dispatch and its inputs are never part of an error.
pub(crate) fn chain_text(err: &dyn StdError) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// What went wrong on the way to MTurk, in a user's words first, the SDK's after: "connection
/// refused" rather than "dispatch failure: io error: client error (Connect): ...".
pub(crate) fn network_cause(text: &str, timed_out: bool) -> String {
    let lower = text.to_ascii_lowercase();
    let plain = if lower.contains("connection refused") {
        "connection refused (nothing listens there)"
    } else if lower.contains("dns error") || lower.contains("failed to lookup address") {
        "the host name does not resolve (DNS)"
    } else if lower.contains("connect") && (timed_out || lower.contains("timed out")) {
        "no connection within the connect timeout"
    } else if timed_out || lower.contains("timed out") || lower.contains("timeout") {
        "connected, but no complete answer within the attempt timeout"
    } else if lower.contains("connection reset")
        || lower.contains("connection closed")
        || lower.contains("incomplete message")
        || lower.contains("broken pipe")
    {
        "the connection closed before an answer"
    } else {
        return text.to_owned();
    };
    format!("{plain}; {text}")
}

fn looks_like_credentials(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("credential") && (m.contains("load") || m.contains("no ") || m.contains("provider"))
}

fn with_credentials_hint(message: String) -> String {
    if looks_like_credentials(&message) {
        format!(
            "{message}: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or log in with \
             `aws sso login`"
        )
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_hit_id_in_a_hit_already_exists_message() {
        let m = "There is already a HIT which exists with the same UniqueRequestToken: \
                 3X7837UUADRXYCA1K7JAJLKC66DJ60 (1624047673969)";
        assert_eq!(
            find_hit_id(m).as_deref(),
            Some("3X7837UUADRXYCA1K7JAJLKC66DJ60")
        );
        // Too long, too short, lower case, digits only: not an id.
        assert_eq!(find_hit_id("A3X7837UUADRXYCA1K7JAJLKC66DJ60 x"), None);
        assert_eq!(find_hit_id("3X7837UUADRXYCA1K7JAJLKC66DJ6"), None);
        assert_eq!(find_hit_id("3x7837uuadrxyca1k7jajlkc66dj60"), None);
        assert_eq!(find_hit_id("123456789012345678901234567890"), None);
        assert_eq!(
            find_hit_id("(3X7837UUADRXYCA1K7JAJLKC66DJ60)").as_deref(),
            Some("3X7837UUADRXYCA1K7JAJLKC66DJ60")
        );
    }

    #[test]
    fn network_causes_say_what_happened_first() {
        let refused = "dispatch failure: io error: client error (Connect): tcp connect error: Connection refused (os error 111)";
        assert!(network_cause(refused, false).starts_with("connection refused"));
        let dns = "dispatch failure: io error: client error (Connect): dns error: failed to lookup address information: Name or service not known";
        assert!(network_cause(dns, false).starts_with("the host name does not resolve"));
        assert!(network_cause("timeout: HTTP read timeout", true).starts_with("connected, but"));
        assert_eq!(network_cause("something new", false), "something new");
    }

    #[test]
    fn classifies_by_code_status_and_call() {
        let t = service_error(
            Call::CreateHit,
            400,
            Some("ThrottlingException"),
            None,
            Some("Rate exceeded"),
            false,
        );
        assert!(matches!(t, ApiError::Throttled { .. }));
        let f = service_error(
            Call::Other,
            500,
            Some("ServiceFault"),
            Some("AWS.MechanicalTurk.ServiceFault"),
            Some("x"),
            true,
        );
        assert!(matches!(f, ApiError::Transient { .. }));
        let dup = service_error(
            Call::Deduplicated,
            400,
            Some("RequestError"),
            Some("AWS.MechanicalTurk.DuplicateRequest"),
            Some("The idempotency token \"X\" has already been processed. (1)"),
            false,
        );
        assert_eq!(
            dup,
            ApiError::AlreadyExists {
                hit_id: None,
                message: "The idempotency token \"X\" has already been processed. (1)".into()
            }
        );
        // The same words from another call are not "done".
        let other = service_error(
            Call::Other,
            400,
            Some("RequestError"),
            Some("AWS.MechanicalTurk.DuplicateRequest"),
            Some("has already been processed"),
            false,
        );
        assert!(matches!(other, ApiError::Fatal { .. }));
        let missing = service_error(
            Call::Other,
            400,
            Some("RequestError"),
            Some("AWS.MechanicalTurk.HITDoesNotExist"),
            Some("Hit X does not exist. (1)"),
            false,
        );
        assert!(missing.is_hit_does_not_exist());
        assert_eq!(
            missing.to_string(),
            "MTurk refused the request (AWS.MechanicalTurk.HITDoesNotExist): Hit X does not exist. (1)"
        );
    }
}
