//! Whether the endpoint answers at all, and the run's budget for waiting on one that does not.
//!
//! Every attempt is bounded by the connect and attempt timeouts, and the executor retries
//! transient failures; but retrying a closed port, a hung socket or a one-byte-a-second endpoint
//! only turns "it is not there" into minutes of silence. So an outage (consecutive attempts that
//! got no answer, counted from the start of the first) has a budget: once it is spent, every call
//! fails at once with [`ApiError::Unreachable`], which names the endpoint and the cause and is
//! not retryable. Any answer, even an error MTurk returns, ends the outage.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ApiError;

/// How long to wait for a TCP (and TLS) connection, name resolution included.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one attempt may take from sending to the last byte of the answer.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long an outage may last before the run gives up on the endpoint. With
/// [`ATTEMPT_TIMEOUT`] it bounds the wait for an endpoint that never answers to about 7 s,
/// inside the 10 s DESIGN.md section 4 promises.
pub const UNANSWERED_BUDGET: Duration = Duration::from_secs(4);

#[derive(Debug, Default)]
struct Outage {
    /// When the first unanswered attempt of the current outage was sent.
    since: Option<Instant>,
    attempts: u32,
    /// The last attempt's cause, for the final error.
    cause: String,
}

/// Shared by every clone of a client, so that concurrent calls see one outage.
#[derive(Debug, Default)]
pub(crate) struct Health {
    outage: Mutex<Outage>,
    /// Whether any answer came yet (for the one "connected" log line).
    answered_once: std::sync::atomic::AtomicBool,
}

impl Health {
    /// Refuses to send while the budget of the current outage is spent; otherwise returns the
    /// attempt's start, for [`Health::unanswered`].
    pub fn check(&self, endpoint: &str) -> Result<Instant, ApiError> {
        let outage = self.outage.lock().unwrap_or_else(|p| p.into_inner());
        match outage.since {
            Some(since) if since.elapsed() >= UNANSWERED_BUDGET => Err(unreachable(
                endpoint,
                &outage.cause,
                outage.attempts,
                since.elapsed(),
            )),
            _ => Ok(Instant::now()),
        }
    }

    /// An answer came (success, or an error MTurk returned): the outage, if any, is over.
    pub fn answered(&self, endpoint: &str) {
        use std::sync::atomic::Ordering;
        if !self.answered_once.swap(true, Ordering::Relaxed) {
            tracing::info!(endpoint, "connected to MTurk");
        }
        let mut outage = self.outage.lock().unwrap_or_else(|p| p.into_inner());
        if outage.since.is_some() {
            tracing::info!(endpoint, attempts = outage.attempts, "MTurk answers again");
        }
        *outage = Outage::default();
    }

    /// An attempt sent at `sent` got no answer because of `cause`. Returns the error the caller
    /// sees: still [`ApiError::Transient`] within the budget, [`ApiError::Unreachable`] once it
    /// is spent.
    pub fn unanswered(&self, endpoint: &str, sent: Instant, cause: String) -> ApiError {
        let mut outage = self.outage.lock().unwrap_or_else(|p| p.into_inner());
        let since = *outage.since.get_or_insert(sent);
        outage.attempts += 1;
        outage.cause = cause.clone();
        let waited = since.elapsed();
        if waited >= UNANSWERED_BUDGET {
            return unreachable(endpoint, &cause, outage.attempts, waited);
        }
        tracing::warn!(
            "MTurk not answering at {endpoint} ({cause}), retrying ({})",
            outage.attempts
        );
        ApiError::Transient {
            message: format!("no answer from {endpoint}: {cause}"),
        }
    }
}

fn unreachable(endpoint: &str, cause: &str, attempts: u32, waited: Duration) -> ApiError {
    ApiError::Unreachable {
        endpoint: endpoint.to_owned(),
        cause: cause.to_owned(),
        attempts,
        waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_ends_the_outage_and_a_spent_budget_refuses_to_send() {
        let h = Health::default();
        let e = "http://127.0.0.1:9";
        assert!(h.check(e).is_ok());
        let err = h.unanswered(e, Instant::now(), "connection refused".into());
        assert!(err.is_retryable(), "{err}");
        h.answered(e);
        assert!(h.check(e).is_ok());
        // An outage that began longer ago than the budget: the next failure is final, and so
        // is every later call, before anything is sent.
        let long_ago = Instant::now()
            .checked_sub(UNANSWERED_BUDGET + Duration::from_millis(1))
            .unwrap();
        let err = h.unanswered(e, long_ago, "connection refused".into());
        assert!(
            matches!(&err, ApiError::Unreachable { attempts: 1, .. }),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        let refused = h.check(e).unwrap_err();
        assert!(
            refused.to_string().contains("http://127.0.0.1:9"),
            "{refused}"
        );
        assert!(
            refused.to_string().contains("connection refused"),
            "{refused}"
        );
    }
}
