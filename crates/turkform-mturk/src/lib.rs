//! The MTurk client turkform drives: the [`MturkApi`] trait (what the executor and refresh need
//! from MTurk, in turkform's own types), its implementation over the official `aws-sdk-mturk`
//! client ([`SdkMturk`]), endpoint and credential resolution per target, and the classification
//! of every failure into [`ApiError`]: throttled, transient, already-exists, or fatal.
//!
//! It must not know about plans, the state store or campaign files: it translates calls, nothing
//! more. Retrying, pacing and recovery are the executor's job, which is why the SDK's own retries
//! are switched off here (a hidden retry of a create is exactly how duplicates happen).

// A library reports through return values and its Reporter/tracing, never by printing: the
// binary owns the terminal.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod classify;
mod health;
mod sdk;

pub use classify::find_hit_id;
pub use health::{ATTEMPT_TIMEOUT, CONNECT_TIMEOUT, UNANSWERED_BUDGET};
pub use sdk::{ConnectError, ConnectOptions, CredentialsSource, SdkMturk};

use async_trait::async_trait;
use turkform_model::{
    ActionsGuarded, AssignmentStatus, Comparator, HitStatus, Locale, Money, NotificationSettings,
    QualificationTypeSpec, UnixTime,
};

/// A `QualificationRequirement` with its type id known (custom types already created).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedRequirement {
    pub qualification_type_id: String,
    pub comparator: Comparator,
    pub integer_values: Vec<i32>,
    pub locale_values: Vec<Locale>,
    pub actions_guarded: Option<ActionsGuarded>,
}

/// The properties of a `CreateHITType` call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HitTypeRequest {
    pub title: String,
    pub description: String,
    /// Comma-separated, as MTurk takes them.
    pub keywords: String,
    pub reward: Money,
    pub assignment_duration_secs: u64,
    pub auto_approval_delay_secs: u64,
    pub qualification_requirements: Vec<ResolvedRequirement>,
}

/// The question of a new HIT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuestionRequest {
    Xml(String),
    Layout {
        layout_id: String,
        parameters: Vec<(String, String)>,
    },
}

/// A `CreateHITWithHITType` call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateHitRequest {
    pub hit_type_id: String,
    pub max_assignments: u32,
    pub lifetime_secs: u64,
    pub question: QuestionRequest,
    pub requester_annotation: String,
    /// 64 hex chars; MTurk refuses a second create with the same token for 24 h.
    pub unique_request_token: String,
}

/// A HIT as MTurk reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteHit {
    pub hit_id: String,
    pub hit_type_id: String,
    pub status: HitStatus,
    pub max_assignments: u32,
    pub creation_time: UnixTime,
    pub expiration: UnixTime,
    pub requester_annotation: Option<String>,
    pub assignments_available: u32,
    pub assignments_pending: u32,
    pub assignments_completed: u32,
    pub title: String,
    pub reward: Option<Money>,
    /// `HITGroupId`; `None` when MTurk's response has none.
    pub hit_group_id: Option<String>,
    pub description: String,
    /// As MTurk returns it (one comma-separated string; empty when none).
    pub keywords: String,
    pub assignment_duration_secs: Option<i64>,
    pub auto_approval_delay_secs: Option<i64>,
}

/// An assignment as `ListAssignmentsForHIT` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteAssignment {
    pub assignment_id: String,
    pub hit_id: String,
    pub worker_id: String,
    pub status: AssignmentStatus,
    pub accept_time: Option<UnixTime>,
    pub submit_time: Option<UnixTime>,
    pub auto_approval_time: Option<UnixTime>,
    pub approval_time: Option<UnixTime>,
    pub rejection_time: Option<UnixTime>,
    /// The QuestionFormAnswers XML.
    pub answer: String,
    pub requester_feedback: Option<String>,
}

/// A qualification type as MTurk reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteQualificationType {
    pub qualification_type_id: String,
    pub name: String,
    pub description: String,
    pub active: bool,
    pub auto_granted: bool,
}

/// One page of a paginated list call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// `None` when this was the last page.
    pub next_token: Option<String>,
}

/// Every failure of an MTurk call, classified by what the caller should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// `ThrottlingException`: slow down and retry.
    #[error("MTurk throttled the request: {message}")]
    Throttled { message: String },
    /// ServiceFault, HTTP 5xx, a timeout or a connection error: retry with backoff. The call may
    /// or may not have taken effect.
    #[error("transient MTurk failure: {message}")]
    Transient { message: String },
    /// `HitAlreadyExists` (the token was used: `hit_id` is the HIT it created) or the
    /// UpdateExpirationForHIT "already processed" error. The call had taken effect before.
    #[error("already done on MTurk: {message}")]
    AlreadyExists {
        hit_id: Option<String>,
        message: String,
    },
    /// The endpoint gave no answer at all (connection refused, name not found, no response
    /// within the attempt timeout) for longer than the run's budget
    /// ([`UNANSWERED_BUDGET`]). Not retryable: the run stops and says why.
    #[error(
        "MTurk at {endpoint} is not answering: {cause} ({attempts} attempt{} over {:.1}s)",
        if *attempts == 1 { "" } else { "s" },
        *waited_ms as f64 / 1000.0
    )]
    Unreachable {
        endpoint: String,
        cause: String,
        attempts: u32,
        waited_ms: u64,
    },
    /// No credentials could be found (or loaded) to sign the request; nothing was sent.
    #[error("no AWS credentials to sign requests to MTurk: {message}")]
    Credentials { message: String },
    /// Anything else: the request is wrong and retrying will not help. MTurk's words are kept.
    #[error("{}", fatal_text(code.as_deref(), turk_error_code.as_deref(), message))]
    Fatal {
        /// `__type` (`RequestError`, `UnrecognizedClientException`, ...).
        code: Option<String>,
        /// `TurkErrorCode` (`AWS.MechanicalTurk.InsufficientFunds`, ...).
        turk_error_code: Option<String>,
        message: String,
    },
}

fn fatal_text(code: Option<&str>, turk: Option<&str>, message: &str) -> String {
    match (turk, code) {
        (Some(t), _) => format!("MTurk refused the request ({t}): {message}"),
        (None, Some(c)) => format!("MTurk refused the request ({c}): {message}"),
        (None, None) => format!("MTurk refused the request: {message}"),
    }
}

impl ApiError {
    /// Whether retrying the same call (with the same token) is the right response.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ApiError::Throttled { .. } | ApiError::Transient { .. }
        )
    }
}

/// What turkform needs from MTurk. Implemented over aws-sdk-mturk by [`SdkMturk`]; the executor
/// and refresh take a `&dyn MturkApi` so that unit tests can use an in-memory fake.
#[async_trait]
pub trait MturkApi: Send + Sync {
    async fn get_account_balance(&self) -> Result<Money, ApiError>;

    /// `CreateQualificationType`; returns the new id.
    async fn create_qualification_type(
        &self,
        spec: &QualificationTypeSpec,
    ) -> Result<String, ApiError>;

    /// `UpdateQualificationType` (description, status, auto-grant; MTurk cannot rename).
    async fn update_qualification_type(
        &self,
        qualification_type_id: &str,
        spec: &QualificationTypeSpec,
    ) -> Result<(), ApiError>;

    /// `ListQualificationTypes` owned by the caller (`MustBeOwnedByCaller`), one page.
    async fn list_qualification_types(
        &self,
        next_token: Option<String>,
    ) -> Result<Page<RemoteQualificationType>, ApiError>;

    /// `CreateHITType`; MTurk returns the existing id for identical properties.
    async fn create_hit_type(&self, request: &HitTypeRequest) -> Result<String, ApiError>;

    /// `CreateHITWithHITType` with `UniqueRequestToken` and `RequesterAnnotation`.
    async fn create_hit(&self, request: &CreateHitRequest) -> Result<RemoteHit, ApiError>;

    /// `CreateAdditionalAssignmentsForHIT` with a `UniqueRequestToken`.
    async fn create_additional_assignments(
        &self,
        hit_id: &str,
        additional: u32,
        unique_request_token: &str,
    ) -> Result<(), ApiError>;

    /// `UpdateExpirationForHIT`: a past instant expires now, a future one extends.
    async fn update_expiration(&self, hit_id: &str, expire_at: UnixTime) -> Result<(), ApiError>;

    /// `UpdateHITTypeOfHIT`.
    async fn update_hit_type_of_hit(&self, hit_id: &str, hit_type_id: &str)
    -> Result<(), ApiError>;

    /// `GetHIT`. A HIT that does not exist is `Fatal` with turk code
    /// `AWS.MechanicalTurk.HITDoesNotExist` (see [`ApiError::is_hit_does_not_exist`]).
    async fn get_hit(&self, hit_id: &str) -> Result<RemoteHit, ApiError>;

    /// `GetHIT`, with the HIT's `Question` XML (absent for HIT-layout HITs). Used to adopt a HIT
    /// state does not know: its question tells which content it was created with. Fakes may
    /// keep the default, which knows no question.
    async fn get_hit_with_question(
        &self,
        hit_id: &str,
    ) -> Result<(RemoteHit, Option<String>), ApiError> {
        Ok((self.get_hit(hit_id).await?, None))
    }

    /// `ApproveAssignment` (no token: a repeat is refused with InvalidAssignmentState);
    /// `override_rejection` reverses a rejection.
    async fn approve_assignment(
        &self,
        assignment_id: &str,
        feedback: Option<&str>,
        override_rejection: bool,
    ) -> Result<(), ApiError>;

    /// `RejectAssignment` (no token, like approval).
    async fn reject_assignment(&self, assignment_id: &str, feedback: &str) -> Result<(), ApiError>;

    /// `GetAssignment`: confirms a refused decision.
    async fn get_assignment(&self, assignment_id: &str) -> Result<RemoteDecision, ApiError>;

    /// `SendBonus` with its `UniqueRequestToken`; a repeat within 24 h is `AlreadyExists`.
    async fn send_bonus(
        &self,
        worker_id: &str,
        assignment_id: &str,
        amount: Money,
        reason: &str,
        unique_request_token: &str,
    ) -> Result<(), ApiError>;

    /// `ListBonusPayments` for one assignment, every page.
    async fn list_bonus_payments(&self, assignment_id: &str)
    -> Result<Vec<BonusPayment>, ApiError>;

    /// `ListHITs`, one page of at most `max_results` (1..=100).
    async fn list_hits(
        &self,
        next_token: Option<String>,
        max_results: i32,
    ) -> Result<Page<RemoteHit>, ApiError>;

    /// `ListAssignmentsForHIT` with every status (Submitted, Approved, Rejected), one page of
    /// 100.
    async fn list_assignments_for_hit(
        &self,
        hit_id: &str,
        next_token: Option<String>,
    ) -> Result<Page<RemoteAssignment>, ApiError>;

    // Workers and notifications (DESIGN.md section 9). The defaults let in-memory fakes that
    // do not model workers ignore them: they know no block, grant or setting, and refuse to
    // make one.

    /// `CreateWorkerBlock` (no token: a repeat just blocks again).
    async fn create_worker_block(&self, worker_id: &str, reason: &str) -> Result<(), ApiError> {
        let _ = (worker_id, reason);
        Err(unsupported("CreateWorkerBlock"))
    }

    /// `DeleteWorkerBlock` (a repeat, or a worker not blocked, is harmless).
    async fn delete_worker_block(&self, worker_id: &str, reason: &str) -> Result<(), ApiError> {
        let _ = (worker_id, reason);
        Err(unsupported("DeleteWorkerBlock"))
    }

    /// `ListWorkerBlocks`, one page of 100.
    async fn list_worker_blocks(
        &self,
        next_token: Option<String>,
    ) -> Result<Page<RemoteBlock>, ApiError> {
        let _ = next_token;
        Ok(Page {
            items: Vec::new(),
            next_token: None,
        })
    }

    /// `AssociateQualificationWithWorker` with `IntegerValue` and `SendNotification` false.
    async fn associate_qualification(
        &self,
        qualification_type_id: &str,
        worker_id: &str,
        value: i32,
    ) -> Result<(), ApiError> {
        let _ = (qualification_type_id, worker_id, value);
        Err(unsupported("AssociateQualificationWithWorker"))
    }

    /// `DisassociateQualificationFromWorker`.
    async fn disassociate_qualification(
        &self,
        qualification_type_id: &str,
        worker_id: &str,
        reason: &str,
    ) -> Result<(), ApiError> {
        let _ = (qualification_type_id, worker_id, reason);
        Err(unsupported("DisassociateQualificationFromWorker"))
    }

    /// `ListWorkersWithQualificationType` with `Status` Granted, one page of 100.
    async fn list_workers_with_qualification(
        &self,
        qualification_type_id: &str,
        next_token: Option<String>,
    ) -> Result<Page<RemoteGrant>, ApiError> {
        let _ = (qualification_type_id, next_token);
        Ok(Page {
            items: Vec::new(),
            next_token: None,
        })
    }

    /// `UpdateNotificationSettings`: `settings` (with version [`turkform_model::workers::NOTIFICATION_VERSION`])
    /// when given, and `Active`.
    async fn update_notification_settings(
        &self,
        hit_type_id: &str,
        settings: Option<&NotificationSettings>,
        active: bool,
    ) -> Result<(), ApiError> {
        let _ = (hit_type_id, settings, active);
        Err(unsupported("UpdateNotificationSettings"))
    }
}

fn unsupported(operation: &str) -> ApiError {
    ApiError::Fatal {
        code: None,
        turk_error_code: None,
        message: format!("{operation} is not supported by this MTurk client"),
    }
}

/// One entry of `ListWorkerBlocks`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteBlock {
    pub worker_id: String,
    pub reason: String,
}

/// One entry of `ListWorkersWithQualificationType`: a worker holding the qualification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteGrant {
    pub worker_id: String,
    pub value: i32,
}

/// What `GetAssignment` says of an assignment's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteDecision {
    pub assignment_id: String,
    pub hit_id: String,
    pub worker_id: String,
    pub status: turkform_model::AssignmentStatus,
    pub approval_time: Option<UnixTime>,
    pub rejection_time: Option<UnixTime>,
    pub auto_approval_time: Option<UnixTime>,
    pub requester_feedback: Option<String>,
}

/// One entry of `ListBonusPayments`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BonusPayment {
    pub worker_id: String,
    pub assignment_id: String,
    pub amount: Money,
    pub reason: String,
    pub grant_time: Option<UnixTime>,
}

impl ApiError {
    /// Whether MTurk refused a decision because the assignment is no longer `Submitted`
    /// (`AWS.MechanicalTurk.InvalidAssignmentState`): a repeat, or someone else decided first.
    pub fn is_invalid_assignment_state(&self) -> bool {
        matches!(self, ApiError::Fatal { turk_error_code, code, message }
            if turk_error_code.as_deref().is_some_and(|c| c.ends_with("InvalidAssignmentState"))
                || code.as_deref() == Some("InvalidAssignmentState")
                || message.contains("can be called with a status of"))
    }

    /// Whether this is MTurk saying the HIT does not exist (deleted or disposed).
    pub fn is_hit_does_not_exist(&self) -> bool {
        matches!(self, ApiError::Fatal { turk_error_code: Some(c), .. } if c == "AWS.MechanicalTurk.HITDoesNotExist")
    }
}
