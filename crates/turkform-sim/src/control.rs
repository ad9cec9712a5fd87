//! A client for the simulator's `/_sim/*` control endpoints (clock, stats, work), for the
//! binary, the tests and the benchmarks: one HTTP client (hyper's) instead of a raw-TCP copy in
//! each. The API itself is reached through the real SDKs, never through this.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::Value;

use crate::ops::mutating_operations;

/// The simulator's default key pair. Not a secret: it only guards a local simulator, and every
/// client (the binary, tests, benchmarks, the docs) uses these unless told otherwise.
pub const DEFAULT_ACCESS_KEY_ID: &str = "AKIASIMULATOR";
/// See [`DEFAULT_ACCESS_KEY_ID`].
pub const DEFAULT_SECRET_ACCESS_KEY: &str = "simulator-secret";

/// Why a control call failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("`{0}` is not an http:// endpoint URL of a simulator")]
    BadUrl(String),
    #[error("cannot reach the simulator at `{authority}`: {detail}")]
    Unreachable { authority: String, detail: String },
    #[error("the simulator at `{authority}` did not answer {path} within {secs} s")]
    Timeout {
        authority: String,
        path: String,
        secs: u64,
    },
    #[error("{method} {path} answered {status}: {body}")]
    Status {
        method: String,
        path: String,
        status: u16,
        body: Value,
    },
    #[error("{path} answered something that is not the expected JSON: {detail}")]
    Body { path: String, detail: String },
}

/// The virtual clock: `GET|POST /_sim/clock`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct ClockReading {
    /// Virtual now, epoch seconds.
    pub now: i64,
    /// How far the virtual clock is ahead of the real one.
    pub offset_seconds: i64,
}

/// `GET /_sim/stats`: what the simulator saw and holds.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SimStats {
    /// Requests processed per operation: past the throttle and the fault dice (those are
    /// counted in `throttled` and `faults` only), including dropped ones, whose change was made.
    #[serde(default)]
    pub requests: BTreeMap<String, u64>,
    /// Requests answered `ThrottlingException` by the token bucket.
    #[serde(default)]
    pub throttled: u64,
    /// Requests answered with an injected `ServiceFault`.
    #[serde(default)]
    pub faults: u64,
    /// Requests committed whose connection was then closed without a response.
    #[serde(default)]
    pub dropped: u64,
    /// HITs not yet disposed.
    #[serde(default)]
    pub hits: u64,
    #[serde(default)]
    pub hits_by_status: BTreeMap<String, u64>,
    /// Annotations carried by more than one HIT: duplicates a client created.
    #[serde(default)]
    pub duplicate_annotations: u64,
    /// The account balance as MTurk prints it (`"10000.00"`).
    #[serde(default)]
    pub balance: String,
    /// Virtual now, epoch seconds.
    #[serde(default)]
    pub now: i64,
}

impl SimStats {
    /// Requests received for one operation.
    pub fn calls(&self, operation: &str) -> u64 {
        self.requests.get(operation).copied().unwrap_or(0)
    }

    /// Requests received for every operation that changes the account ([`crate::Operation::mutating`]).
    pub fn mutating_calls(&self) -> u64 {
        mutating_operations().map(|op| self.calls(op)).sum()
    }

    /// Every request processed (throttled and faulted ones are not).
    pub fn processed_calls(&self) -> u64 {
        self.requests.values().sum()
    }

    /// Requests whose answer reached the client: processed minus dropped.
    pub fn answered_calls(&self) -> u64 {
        self.processed_calls().saturating_sub(self.dropped)
    }

    /// The balance in cents, from its printed form.
    pub fn balance_cents(&self) -> Option<i64> {
        crate::money::Cents::parse(&self.balance).map(|c| c.0)
    }
}

/// A client for one simulator's control endpoints. Each call opens its own connection, so a
/// client is cheap, `Clone`, and never sees a connection the simulator dropped.
#[derive(Clone, Debug)]
pub struct ControlClient {
    authority: String,
    timeout: Duration,
}

impl ControlClient {
    /// A client for the simulator at `endpoint_url` (`http://127.0.0.1:PORT`).
    pub fn new(endpoint_url: &str) -> Result<ControlClient, ControlError> {
        let authority = endpoint_url
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|a| !a.is_empty() && !a.contains('/'))
            .ok_or_else(|| ControlError::BadUrl(endpoint_url.to_owned()))?;
        Ok(ControlClient {
            authority: authority.to_owned(),
            timeout: Duration::from_secs(30),
        })
    }

    /// Gives up on a call after `timeout` (default 30 s).
    pub fn with_timeout(mut self, timeout: Duration) -> ControlClient {
        self.timeout = timeout;
        self
    }

    /// `GET /_sim/clock`.
    pub async fn clock(&self) -> Result<ClockReading, ControlError> {
        self.typed("GET", "/_sim/clock", None).await
    }

    /// `POST /_sim/clock {"advance_seconds": N}`: moves the virtual clock forward.
    pub async fn advance_clock(&self, seconds: u64) -> Result<ClockReading, ControlError> {
        let body = serde_json::json!({ "advance_seconds": seconds });
        self.typed("POST", "/_sim/clock", Some(&body)).await
    }

    /// `GET /_sim/stats`, typed.
    pub async fn stats(&self) -> Result<SimStats, ControlError> {
        self.typed("GET", "/_sim/stats", None).await
    }

    /// `GET /_sim/stats` as the simulator wrote it, for fields [`SimStats`] does not name.
    pub async fn stats_json(&self) -> Result<Value, ControlError> {
        self.ok("GET", "/_sim/stats", None).await
    }

    /// `GET /_sim/notifications`: every HIT type's notification settings, as
    /// `{"NotificationSettings": [{"HITTypeId", "Notification", "Active"}]}` (MTurk itself has
    /// no read of them).
    pub async fn notifications(&self) -> Result<Value, ControlError> {
        self.ok("GET", "/_sim/notifications", None).await
    }

    /// `POST /_sim/work` with `body` (see the simulator's README for its members); returns what
    /// the workers did.
    pub async fn work(&self, body: &Value) -> Result<Value, ControlError> {
        self.ok("POST", "/_sim/work", Some(body)).await
    }

    /// One call; a non-2xx answer is an error carrying the simulator's JSON.
    pub async fn ok(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ControlError> {
        let (status, value) = self.request(method, path, body).await?;
        if !(200..300).contains(&status) {
            return Err(ControlError::Status {
                method: method.to_owned(),
                path: path.to_owned(),
                status,
                body: value,
            });
        }
        Ok(value)
    }

    async fn typed<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, ControlError> {
        let value = self.ok(method, path, body).await?;
        serde_json::from_value(value).map_err(|e| ControlError::Body {
            path: path.to_owned(),
            detail: e.to_string(),
        })
    }

    /// One HTTP/1.1 exchange: the status and the JSON body (`null` when the body is empty or
    /// not JSON), whatever the status. For tests of the control endpoints themselves.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), ControlError> {
        let secs = self.timeout.as_secs();
        match tokio::time::timeout(self.timeout, self.exchange(method, path, body)).await {
            Ok(result) => result,
            Err(_) => Err(ControlError::Timeout {
                authority: self.authority.clone(),
                path: path.to_owned(),
                secs,
            }),
        }
    }

    async fn exchange(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), ControlError> {
        let unreachable = |detail: String| ControlError::Unreachable {
            authority: self.authority.clone(),
            detail,
        };
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        // The connection future drives the socket; it ends when the exchange is over.
        let driver = tokio::spawn(connection);
        let payload = body.map(Value::to_string).unwrap_or_default();
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(payload)))
            .map_err(|e| unreachable(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        drop(sender);
        driver.abort();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, value))
    }
}
