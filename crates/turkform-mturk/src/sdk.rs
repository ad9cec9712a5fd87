//! [`SdkMturk`]: [`MturkApi`] over the official aws-sdk-mturk client.
//!
//! Configuration choices that matter for correctness:
//! - retries are disabled: the executor retries itself, always with the same token, and sees
//!   every throttle (a hidden SDK retry would hide throttling from its rate limiter and, for a
//!   call without a token, could act twice);
//! - every operation has a timeout, so a connection that went silent surfaces as
//!   [`ApiError::Transient`] instead of hanging the run;
//! - region `us-east-1` (MTurk is not regionalized) and the target's endpoint unless overridden.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_sdk_mturk::config::{Region, retry::RetryConfig, timeout::TimeoutConfig};
use aws_sdk_mturk::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_mturk::types as sdk;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::DateTime;
use turkform_model::{
    AssignmentStatus, HitStatus, Money, NotificationSettings, QualificationTypeSpec, Target,
    UnixTime,
};

use crate::classify::{Call, TurkCode, chain_text, classify};
use crate::health::{ATTEMPT_TIMEOUT, CONNECT_TIMEOUT, Health};
use crate::{
    ApiError, BonusPayment, CreateHitRequest, HitTypeRequest, Page, QuestionRequest,
    RemoteAssignment, RemoteBlock, RemoteDecision, RemoteGrant, RemoteHit, RemoteQualificationType,
    ResolvedRequirement,
};

/// MTurk lives in one region whatever the endpoint.
const REGION: &str = "us-east-1";

/// Where credentials come from.
#[derive(Clone)]
pub enum CredentialsSource {
    /// The standard AWS chain (environment, shared profiles, SSO, ...), as aws-config resolves it.
    Chain,
    /// A fixed key pair: the embedded simulator's `AKIASIMULATOR` / `simulator-secret`.
    Static {
        access_key_id: String,
        secret_access_key: String,
    },
}

impl fmt::Debug for CredentialsSource {
    /// Never prints the secret (nor the key id, which identifies the account).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialsSource::Chain => f.write_str("Chain"),
            CredentialsSource::Static { .. } => f.write_str("Static { .. }"),
        }
    }
}

/// How to reach MTurk.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Which environment: picks the default endpoint.
    pub target: Target,
    /// Overrides the target's endpoint (`--endpoint-url`, or the embedded simulator's address).
    pub endpoint_url: Option<String>,
    pub credentials: CredentialsSource,
    /// Per-attempt timeout ([`crate::ATTEMPT_TIMEOUT`] unless a test needs otherwise): a
    /// silent connection then surfaces as transient, and counts against the outage budget.
    pub timeout: Duration,
}

impl ConnectOptions {
    /// Options for a simulator at `endpoint_url` with its default key pair.
    pub fn simulator(endpoint_url: impl Into<String>) -> ConnectOptions {
        ConnectOptions {
            target: Target::Sim,
            endpoint_url: Some(endpoint_url.into()),
            credentials: CredentialsSource::Static {
                access_key_id: "AKIASIMULATOR".to_owned(),
                secret_access_key: "simulator-secret".to_owned(),
            },
            timeout: ATTEMPT_TIMEOUT,
        }
    }
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("target `sim` has no fixed endpoint: start the simulator or pass `--endpoint-url URL`")]
    NoEndpoint,
    #[error(
        "`{url}` is not an endpoint URL: give one like `https://host` or `http://127.0.0.1:4566`"
    )]
    BadEndpoint { url: String },
    #[error(
        "no AWS credentials to sign requests to MTurk at {endpoint}: {cause}; set \
         AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (a profile in \
         ~/.aws/credentials or ~/.aws/config), or log in with `aws sso login`"
    )]
    NoCredentials { endpoint: String, cause: String },
}

/// Longest the credential chain may search (it may ask the EC2 instance metadata service,
/// which on a laptop only times out).
const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(5);

/// Resolves the chain's credentials once, before anything is sent: missing ones are then a
/// clear error at once instead of a "dispatch failure" from the first call.
async fn check_credentials(
    shared: &aws_config::SdkConfig,
    endpoint: &str,
) -> Result<(), ConnectError> {
    use aws_credential_types::provider::ProvideCredentials;
    let missing = |cause: String| ConnectError::NoCredentials {
        endpoint: endpoint.to_owned(),
        cause,
    };
    let Some(provider) = shared.credentials_provider() else {
        return Err(missing("no credential provider is configured".to_owned()));
    };
    match tokio::time::timeout(CREDENTIALS_TIMEOUT, provider.provide_credentials()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(missing(format!(
            "none found in the environment, the shared AWS files, SSO or instance metadata \
             (the last said: {})",
            chain_text(&e)
        ))),
        Err(_) => Err(missing(format!(
            "none found within {}s",
            CREDENTIALS_TIMEOUT.as_secs()
        ))),
    }
}

/// The real MTurk client (or one pointed at the simulator).
#[derive(Clone)]
pub struct SdkMturk {
    client: aws_sdk_mturk::Client,
    target: Target,
    endpoint: String,
    health: Arc<Health>,
}

impl fmt::Debug for SdkMturk {
    // The SDK client's configuration holds the credentials provider: keep it out of Debug.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdkMturk")
            .field("target", &self.target)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl SdkMturk {
    /// Builds the client. With [`CredentialsSource::Chain`] this loads the shared AWS
    /// configuration (profiles, SSO); credentials themselves are resolved lazily, on the first
    /// call, so a missing one is reported by that call as [`ApiError::Fatal`].
    pub async fn connect(options: &ConnectOptions) -> Result<SdkMturk, ConnectError> {
        let endpoint = match (&options.endpoint_url, options.target.default_endpoint()) {
            (Some(url), _) => url.clone(),
            (None, Some(url)) => url.to_owned(),
            (None, None) => return Err(ConnectError::NoEndpoint),
        };
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(ConnectError::BadEndpoint { url: endpoint });
        }
        // Short timeouts bound what one attempt can wait (a socket that accepts and never
        // answers, an endpoint that trickles a byte a second); the outage budget in
        // [`crate::health`] bounds the retries.
        let timeouts = TimeoutConfig::builder()
            .operation_timeout(options.timeout)
            .operation_attempt_timeout(options.timeout)
            .connect_timeout(options.timeout.min(CONNECT_TIMEOUT))
            .build();
        let builder = match &options.credentials {
            CredentialsSource::Static {
                access_key_id,
                secret_access_key,
            } => aws_sdk_mturk::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .credentials_provider(Credentials::new(
                    access_key_id.clone(),
                    secret_access_key.clone(),
                    None,
                    None,
                    "turkform-static",
                )),
            CredentialsSource::Chain => {
                let shared = aws_config::defaults(BehaviorVersion::latest())
                    .region(Region::new(REGION))
                    .load()
                    .await;
                check_credentials(&shared, &endpoint).await?;
                aws_sdk_mturk::config::Builder::from(&shared)
            }
        };
        let config = builder
            .region(Region::new(REGION))
            .endpoint_url(endpoint.clone())
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts)
            .build();
        Ok(SdkMturk {
            client: aws_sdk_mturk::Client::from_conf(config),
            target: options.target,
            endpoint,
            health: Arc::default(),
        })
    }

    /// Classifies a failed attempt sent at `sent`, and keeps the outage account: an error MTurk
    /// answered ends an outage, a failure to get any answer extends it.
    fn failed<E>(&self, call: Call, sent: Instant, err: SdkError<E, HttpResponse>) -> ApiError
    where
        E: ProvideErrorMetadata + TurkCode + std::error::Error + Send + Sync + 'static,
    {
        let answered = matches!(err, SdkError::ServiceError(_));
        let error = classify(call, err);
        if answered {
            self.health.answered(&self.endpoint);
            return error;
        }
        match error {
            ApiError::Transient { message } => {
                self.health.unanswered(&self.endpoint, sent, message)
            }
            other => other,
        }
    }

    /// The endpoint requests go to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn target(&self) -> Target {
        self.target
    }
}

fn unix(t: Option<&DateTime>) -> UnixTime {
    UnixTime(t.map(DateTime::secs).unwrap_or(0))
}

fn count(n: Option<i32>) -> u32 {
    n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
}

fn malformed(what: &str) -> ApiError {
    // A 200 whose body lacks what the API promises: treat like an unreadable response, which
    // the executor resends with the same token.
    ApiError::Transient {
        message: format!("MTurk's response lacks {what}"),
    }
}

fn remote_hit(h: &sdk::Hit) -> Result<RemoteHit, ApiError> {
    let hit_id = h.hit_id().ok_or_else(|| malformed("HITId"))?.to_owned();
    let status = match h.hit_status() {
        Some(s) => HitStatus::parse(s.as_str()).ok_or_else(|| ApiError::Fatal {
            code: None,
            turk_error_code: None,
            message: format!("HIT `{hit_id}` has an unknown status `{}`", s.as_str()),
        })?,
        None => return Err(malformed("HITStatus")),
    };
    Ok(RemoteHit {
        hit_type_id: h.hit_type_id().unwrap_or_default().to_owned(),
        status,
        max_assignments: count(h.max_assignments()),
        creation_time: unix(h.creation_time()),
        expiration: unix(h.expiration()),
        requester_annotation: h.requester_annotation().map(str::to_owned),
        assignments_available: count(h.number_of_assignments_available()),
        assignments_pending: count(h.number_of_assignments_pending()),
        assignments_completed: count(h.number_of_assignments_completed()),
        title: h.title().unwrap_or_default().to_owned(),
        reward: h.reward().and_then(|r| r.parse::<Money>().ok()),
        hit_group_id: h.hit_group_id().map(str::to_owned),
        description: h.description().unwrap_or_default().to_owned(),
        keywords: h.keywords().unwrap_or_default().to_owned(),
        assignment_duration_secs: h.assignment_duration_in_seconds(),
        auto_approval_delay_secs: h.auto_approval_delay_in_seconds(),
        hit_id,
    })
}

fn requirement(r: &ResolvedRequirement) -> Result<sdk::QualificationRequirement, ApiError> {
    let mut b = sdk::QualificationRequirement::builder()
        .qualification_type_id(&r.qualification_type_id)
        .comparator(sdk::Comparator::from(r.comparator.api_name()));
    for v in &r.integer_values {
        b = b.integer_values(*v);
    }
    for l in &r.locale_values {
        let mut lb = sdk::Locale::builder().country(&l.country);
        if let Some(s) = &l.subdivision {
            lb = lb.subdivision(s);
        }
        b = b.locale_values(lb.build().map_err(build_error)?);
    }
    if let Some(a) = r.actions_guarded {
        b = b.actions_guarded(sdk::HitAccessActions::from(a.api_name()));
    }
    b.build().map_err(build_error)
}

fn build_error(e: aws_smithy_types::error::operation::BuildError) -> ApiError {
    ApiError::Fatal {
        code: None,
        turk_error_code: None,
        message: format!("cannot build the request: {e}"),
    }
}

fn status_of(active: bool) -> sdk::QualificationTypeStatus {
    if active {
        sdk::QualificationTypeStatus::Active
    } else {
        sdk::QualificationTypeStatus::Inactive
    }
}

#[async_trait]
impl crate::MturkApi for SdkMturk {
    async fn get_account_balance(&self) -> Result<Money, ApiError> {
        let sent = self.health.check(&self.endpoint)?;
        let out = self
            .client
            .get_account_balance()
            .send()
            .await
            .map_err(|e| self.failed(Call::Other, sent, e))
            .inspect(|_| self.health.answered(&self.endpoint))?;
        let raw = out
            .available_balance()
            .ok_or_else(|| malformed("AvailableBalance"))?;
        raw.parse::<Money>().map_err(|_| ApiError::Fatal {
            code: None,
            turk_error_code: None,
            message: format!("MTurk reported an unreadable balance `{raw}`"),
        })
    }

    async fn create_qualification_type(
        &self,
        spec: &QualificationTypeSpec,
    ) -> Result<String, ApiError> {
        let sent = self.health.check(&self.endpoint)?;
        let mut req = self
            .client
            .create_qualification_type()
            .name(&spec.name)
            .description(&spec.description)
            .qualification_type_status(status_of(spec.active))
            .auto_granted(spec.auto_granted);
        if !spec.keywords.is_empty() {
            req = req.keywords(spec.keywords.join(", "));
        }
        if let Some(v) = spec.auto_granted_value {
            req = req.auto_granted_value(v);
        }
        let out = req
            .send()
            .await
            .map_err(|e| self.failed(Call::Other, sent, e))
            .inspect(|_| self.health.answered(&self.endpoint))?;
        out.qualification_type()
            .and_then(|q| q.qualification_type_id())
            .map(str::to_owned)
            .ok_or_else(|| malformed("QualificationTypeId"))
    }

    async fn update_qualification_type(
        &self,
        qualification_type_id: &str,
        spec: &QualificationTypeSpec,
    ) -> Result<(), ApiError> {
        let sent = self.health.check(&self.endpoint)?;
        let mut req = self
            .client
            .update_qualification_type()
            .qualification_type_id(qualification_type_id)
            .description(&spec.description)
            .qualification_type_status(status_of(spec.active))
            .auto_granted(spec.auto_granted);
        if let Some(v) = spec.auto_granted_value {
            req = req.auto_granted_value(v);
        }
        req.send()
            .await
            .map_err(|e| self.failed(Call::Other, sent, e))
            .inspect(|_| self.health.answered(&self.endpoint))?;
        Ok(())
    }

    async fn list_qualification_types(
        &self,
        next_token: Option<String>,
    ) -> Result<Page<RemoteQualificationType>, ApiError> {
        let sent = self.health.check(&self.endpoint)?;
        let out = self
            .client
            .list_qualification_types()
            .must_be_requestable(false)
            .must_be_owned_by_caller(true)
            .max_results(100)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| self.failed(Call::Other, sent, e))
            .inspect(|_| self.health.answered(&self.endpoint))?;
        let items = out
            .qualification_types()
            .iter()
            .filter_map(|q| {
                Some(RemoteQualificationType {
                    qualification_type_id: q.qualification_type_id()?.to_owned(),
                    name: q.name().unwrap_or_default().to_owned(),
                    description: q.description().unwrap_or_default().to_owned(),
                    active: q.qualification_type_status()
                        == Some(&sdk::QualificationTypeStatus::Active),
                    auto_granted: q.auto_granted().unwrap_or(false),
                })
            })
            .collect();
        Ok(Page {
            items,
            next_token: out.next_token().map(str::to_owned),
        })
    }

    async fn create_hit_type(&self, request: &HitTypeRequest) -> Result<String, ApiError> {
        let sent = self.health.check(&self.endpoint)?;
        let mut req = self
            .client
            .create_hit_type()
            .title(&request.title)
            .description(&request.description)
            .reward(request.reward.to_api_string())
            .assignment_duration_in_seconds(secs(request.assignment_duration_secs))
            .auto_approval_delay_in_seconds(secs(request.auto_approval_delay_secs));
        if !request.keywords.is_empty() {
            req = req.keywords(&request.keywords);
        }
        for r in &request.qualification_requirements {
            req = req.qualification_requirements(requirement(r)?);
        }
        let out = req
            .send()
            .await
            .map_err(|e| self.failed(Call::Other, sent, e))
            .inspect(|_| self.health.answered(&self.endpoint))?;
        out.hit_type_id()
            .map(str::to_owned)
            .ok_or_else(|| malformed("HITTypeId"))
    }

    async fn create_hit(&self, request: &CreateHitRequest) -> Result<RemoteHit, ApiError> {
        let sent = self.health.check(&self.endpoint)?;
        let mut req = self
            .client
            .create_hit_with_hit_type()
            .hit_type_id(&request.hit_type_id)
            .max_assignments(i32::try_from(request.max_assignments).unwrap_or(i32::MAX))
            .lifetime_in_seconds(secs(request.lifetime_secs))
            .requester_annotation(&request.requester_annotation)
            .unique_request_token(&request.unique_request_token);
        match &request.question {
            QuestionRequest::Xml(xml) => req = req.question(xml),
            QuestionRequest::Layout {
                layout_id,
                parameters,
            } => {
                req = req.hit_layout_id(layout_id);
                for (name, value) in parameters {
                    req = req.hit_layout_parameters(
                        sdk::HitLayoutParameter::builder()
                            .name(name)
                            .value(value)
                            .build()
                            .map_err(build_error)?,
                    );
                }
            }
        }
        let out = req
            .send()
            .await
            .map_err(|e| self.failed(Call::CreateHit, sent, e))
            .inspect(|_| self.health.answered(&self.endpoint))?;
        remote_hit(out.hit().ok_or_else(|| malformed("HIT"))?)
    }

    async fn create_additional_assignments(
        &self,
        hit_id: &str,
        additional: u32,
        unique_request_token: &str,
    ) -> Result<(), ApiError> {
        let sent = self.health.check(&self.endpoint)?;
        self.client
            .create_additional_assignments_for_hit()
            .hit_id(hit_id)
            .number_of_additional_assignments(i32::try_from(additional).unwrap_or(i32::MAX))
            .unique_request_token(unique_request_token)
            .send()
            .await
            .map_err(|e| self.failed(Call::Deduplicated, sent, e))
            .inspect(|_| self.health.answered(&self.endpoint))?;
        Ok(())
    }

    async fn update_expiration(&self, hit_id: &str, expire_at: UnixTime) -> Result<(), ApiError> {
        let sent = self.health.check(&self.endpoint)?;
        self.client
            .update_expiration_for_hit()
            .hit_id(hit_id)
            .expire_at(DateTime::from_secs(expire_at.0))
            .send()
            .await
            .map_err(|e| self.failed(Call::Deduplicated, sent, e))
            .inspect(|_| self.health.answered(&self.endpoint))?;
        Ok(())
    }

    async fn update_hit_type_of_hit(
        &self,
        hit_id: &str,
        hit_type_id: &str,
    ) -> Result<(), ApiError> {
        let sent = self.health.check(&self.endpoint)?;
        self.client
            .update_hit_type_of_hit()
            .hit_id(hit_id)
            .hit_type_id(hit_type_id)
            .send()
            .await
            .map_err(|e| self.failed(Call::Other, sent, e))
            .inspect(|_| self.health.answered(&self.endpoint))?;
        Ok(())
    }

    async fn approve_assignment(
        &self,
        assignment_id: &str,
        feedback: Option<&str>,
        override_rejection: bool,
    ) -> Result<(), ApiError> {
        let mut req = self
            .client
            .approve_assignment()
            .assignment_id(assignment_id);
        if let Some(f) = feedback {
            req = req.requester_feedback(f);
        }
        if override_rejection {
            req = req.override_rejection(true);
        }
        req.send().await.map_err(|e| classify(Call::Other, e))?;
        Ok(())
    }

    async fn reject_assignment(&self, assignment_id: &str, feedback: &str) -> Result<(), ApiError> {
        self.client
            .reject_assignment()
            .assignment_id(assignment_id)
            .requester_feedback(feedback)
            .send()
            .await
            .map_err(|e| classify(Call::Other, e))?;
        Ok(())
    }

    async fn get_assignment(&self, assignment_id: &str) -> Result<RemoteDecision, ApiError> {
        let out = self
            .client
            .get_assignment()
            .assignment_id(assignment_id)
            .send()
            .await
            .map_err(|e| classify(Call::Other, e))?;
        let a = out.assignment().ok_or_else(|| malformed("Assignment"))?;
        let status = a
            .assignment_status()
            .and_then(|s| turkform_model::AssignmentStatus::parse(s.as_str()))
            .ok_or_else(|| malformed("AssignmentStatus"))?;
        let t = |d: Option<&DateTime>| d.map(|d| UnixTime(d.secs()));
        Ok(RemoteDecision {
            assignment_id: a.assignment_id().unwrap_or(assignment_id).to_owned(),
            hit_id: a.hit_id().unwrap_or_default().to_owned(),
            worker_id: a.worker_id().unwrap_or_default().to_owned(),
            status,
            approval_time: t(a.approval_time()),
            rejection_time: t(a.rejection_time()),
            auto_approval_time: t(a.auto_approval_time()),
            requester_feedback: a.requester_feedback().map(str::to_owned),
        })
    }

    async fn send_bonus(
        &self,
        worker_id: &str,
        assignment_id: &str,
        amount: Money,
        reason: &str,
        unique_request_token: &str,
    ) -> Result<(), ApiError> {
        self.client
            .send_bonus()
            .worker_id(worker_id)
            .assignment_id(assignment_id)
            .bonus_amount(amount.to_api_string())
            .reason(reason)
            .unique_request_token(unique_request_token)
            .send()
            .await
            .map_err(|e| classify(Call::Deduplicated, e))?;
        Ok(())
    }

    async fn list_bonus_payments(
        &self,
        assignment_id: &str,
    ) -> Result<Vec<BonusPayment>, ApiError> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = self
                .client
                .list_bonus_payments()
                .assignment_id(assignment_id)
                .max_results(100)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| classify(Call::Other, e))?;
            for b in page.bonus_payments() {
                let amount = b
                    .bonus_amount()
                    .and_then(|a| a.parse::<Money>().ok())
                    .ok_or_else(|| malformed("BonusAmount"))?;
                out.push(BonusPayment {
                    worker_id: b.worker_id().unwrap_or_default().to_owned(),
                    assignment_id: b.assignment_id().unwrap_or(assignment_id).to_owned(),
                    amount,
                    reason: b.reason().unwrap_or_default().to_owned(),
                    grant_time: b.grant_time().map(|d| UnixTime(d.secs())),
                });
            }
            match page.next_token() {
                Some(t) if !t.is_empty() && !page.bonus_payments().is_empty() => {
                    next = Some(t.to_owned());
                }
                _ => return Ok(out),
            }
        }
    }

    async fn get_hit(&self, hit_id: &str) -> Result<RemoteHit, ApiError> {
        let sent = self.health.check(&self.endpoint)?;
        let out = self
            .client
            .get_hit()
            .hit_id(hit_id)
            .send()
            .await
            .map_err(|e| self.failed(Call::Other, sent, e))
            .inspect(|_| self.health.answered(&self.endpoint))?;
        remote_hit(out.hit().ok_or_else(|| malformed("HIT"))?)
    }

    async fn get_hit_with_question(
        &self,
        hit_id: &str,
    ) -> Result<(RemoteHit, Option<String>), ApiError> {
        let sent = self.health.check(&self.endpoint)?;
        let out = self
            .client
            .get_hit()
            .hit_id(hit_id)
            .send()
            .await
            .map_err(|e| self.failed(Call::Other, sent, e))
            .inspect(|_| self.health.answered(&self.endpoint))?;
        let hit = out.hit().ok_or_else(|| malformed("HIT"))?;
        Ok((remote_hit(hit)?, hit.question().map(str::to_owned)))
    }

    async fn list_hits(
        &self,
        next_token: Option<String>,
        max_results: i32,
    ) -> Result<Page<RemoteHit>, ApiError> {
        let sent = self.health.check(&self.endpoint)?;
        let out = self
            .client
            .list_hits()
            .max_results(max_results.clamp(1, 100))
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| self.failed(Call::Other, sent, e))
            .inspect(|_| self.health.answered(&self.endpoint))?;
        let items = out
            .hits()
            .iter()
            .map(remote_hit)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            items,
            next_token: out.next_token().map(str::to_owned),
        })
    }

    async fn list_assignments_for_hit(
        &self,
        hit_id: &str,
        next_token: Option<String>,
    ) -> Result<Page<RemoteAssignment>, ApiError> {
        let out = self
            .client
            .list_assignments_for_hit()
            .hit_id(hit_id)
            .max_results(100)
            .set_assignment_statuses(Some(vec![
                sdk::AssignmentStatus::Submitted,
                sdk::AssignmentStatus::Approved,
                sdk::AssignmentStatus::Rejected,
            ]))
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| classify(Call::Other, e))?;
        let items = out
            .assignments()
            .iter()
            .map(remote_assignment)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            items,
            next_token: out.next_token().map(str::to_owned),
        })
    }

    async fn create_worker_block(&self, worker_id: &str, reason: &str) -> Result<(), ApiError> {
        self.client
            .create_worker_block()
            .worker_id(worker_id)
            .reason(reason)
            .send()
            .await
            .map_err(|e| classify(Call::Other, e))?;
        Ok(())
    }

    async fn delete_worker_block(&self, worker_id: &str, reason: &str) -> Result<(), ApiError> {
        self.client
            .delete_worker_block()
            .worker_id(worker_id)
            .reason(reason)
            .send()
            .await
            .map_err(|e| classify(Call::Other, e))?;
        Ok(())
    }

    async fn list_worker_blocks(
        &self,
        next_token: Option<String>,
    ) -> Result<Page<RemoteBlock>, ApiError> {
        let out = self
            .client
            .list_worker_blocks()
            .max_results(100)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| classify(Call::Other, e))?;
        let items = out
            .worker_blocks()
            .iter()
            .map(|b| RemoteBlock {
                worker_id: b.worker_id().unwrap_or_default().to_owned(),
                reason: b.reason().unwrap_or_default().to_owned(),
            })
            .collect();
        Ok(Page {
            items,
            next_token: out.next_token().map(str::to_owned),
        })
    }

    async fn associate_qualification(
        &self,
        qualification_type_id: &str,
        worker_id: &str,
        value: i32,
    ) -> Result<(), ApiError> {
        self.client
            .associate_qualification_with_worker()
            .qualification_type_id(qualification_type_id)
            .worker_id(worker_id)
            .integer_value(value)
            .send_notification(false)
            .send()
            .await
            .map_err(|e| classify(Call::Other, e))?;
        Ok(())
    }

    async fn disassociate_qualification(
        &self,
        qualification_type_id: &str,
        worker_id: &str,
        reason: &str,
    ) -> Result<(), ApiError> {
        self.client
            .disassociate_qualification_from_worker()
            .qualification_type_id(qualification_type_id)
            .worker_id(worker_id)
            .reason(reason)
            .send()
            .await
            .map_err(|e| classify(Call::Other, e))?;
        Ok(())
    }

    async fn list_workers_with_qualification(
        &self,
        qualification_type_id: &str,
        next_token: Option<String>,
    ) -> Result<Page<RemoteGrant>, ApiError> {
        let out = self
            .client
            .list_workers_with_qualification_type()
            .qualification_type_id(qualification_type_id)
            .status(sdk::QualificationStatus::Granted)
            .max_results(100)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| classify(Call::Other, e))?;
        let items = out
            .qualifications()
            .iter()
            .filter(|q| q.status() != Some(&sdk::QualificationStatus::Revoked))
            .map(|q| RemoteGrant {
                worker_id: q.worker_id().unwrap_or_default().to_owned(),
                value: q.integer_value().unwrap_or(1),
            })
            .collect();
        Ok(Page {
            items,
            next_token: out.next_token().map(str::to_owned),
        })
    }

    async fn update_notification_settings(
        &self,
        hit_type_id: &str,
        settings: Option<&NotificationSettings>,
        active: bool,
    ) -> Result<(), ApiError> {
        let mut req = self
            .client
            .update_notification_settings()
            .hit_type_id(hit_type_id)
            .active(active);
        if let Some(s) = settings {
            let spec = sdk::NotificationSpecification::builder()
                .destination(&s.destination)
                .transport(sdk::NotificationTransport::from(s.transport.api_name()))
                .version(turkform_model::workers::NOTIFICATION_VERSION)
                .set_event_types(Some(
                    s.events
                        .iter()
                        .map(|e| sdk::EventType::from(e.as_str()))
                        .collect(),
                ))
                .build()
                .map_err(build_error)?;
            req = req.notification(spec);
        }
        req.send().await.map_err(|e| classify(Call::Other, e))?;
        Ok(())
    }
}

fn remote_assignment(a: &sdk::Assignment) -> Result<RemoteAssignment, ApiError> {
    let assignment_id = a
        .assignment_id()
        .ok_or_else(|| malformed("AssignmentId"))?
        .to_owned();
    let status = match a.assignment_status() {
        Some(s) => AssignmentStatus::parse(s.as_str()).ok_or_else(|| ApiError::Fatal {
            code: None,
            turk_error_code: None,
            message: format!(
                "assignment `{assignment_id}` has an unknown status `{}`",
                s.as_str()
            ),
        })?,
        None => return Err(malformed("AssignmentStatus")),
    };
    let time = |t: Option<&DateTime>| t.map(|t| UnixTime(t.secs()));
    Ok(RemoteAssignment {
        hit_id: a.hit_id().ok_or_else(|| malformed("HITId"))?.to_owned(),
        worker_id: a.worker_id().unwrap_or_default().to_owned(),
        status,
        accept_time: time(a.accept_time()),
        submit_time: time(a.submit_time()),
        auto_approval_time: time(a.auto_approval_time()),
        approval_time: time(a.approval_time()),
        rejection_time: time(a.rejection_time()),
        answer: a.answer().unwrap_or_default().to_owned(),
        requester_feedback: a.requester_feedback().map(str::to_owned),
        assignment_id,
    })
}

fn secs(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}
