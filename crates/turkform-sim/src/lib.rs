//! A local Amazon Mechanical Turk Requester API (2017-01-17) that the real aws-sdk-mturk client,
//! boto3 and the AWS CLI talk to over HTTP with only the endpoint URL changed.
//!
//! The crate owns MTurk's behaviour as seen from a requester: the AWS JSON 1.1 wire format and
//! error bodies, SigV4 verification, the 39 operations with the service's validation, token
//! deduplication, HIT lifecycle, fees and balance, a virtual clock, simulated workers, fault
//! injection (latency, throttling, ServiceFaults, dropped connections) and persistence in SQLite.
//! It must not know anything about turkform itself (campaigns, plans, state): it models MTurk,
//! and turkform is only one of its clients.
//!
//! Modules:
//! - [`control`]: a client for `/_sim/*`, the default key pair
//! - `server`: hyper connections, auth, faults, `/_sim/*`, commit hand-off
//! - [`sigv4`]: signature verification (and signing, for raw clients and benchmarks)
//! - `wire`: request member access with the service's validation errors; error rendering
//! - `ops`: the 39 operations
//! - `validate`: limits, qualification requirements, question XML
//! - `world`: the in-memory account; time-driven state derived from the virtual clock
//! - `work`: simulated workers (`POST /_sim/work`)
//! - `answers`: QuestionForm questions and the QuestionFormAnswers a submission becomes
//! - `worker_site`: the loopback-only worker site under `/_sim/worker/`
//! - `store`: SQLite persistence with a group-commit writer thread
//! - [`money`]: cents, currency strings, the fee schedule

// A library reports through return values and its Reporter/tracing, never by printing: the
// binary owns the terminal.
#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

mod answers;
pub mod control;
mod ids;
pub mod money;
mod ops;
mod server;
pub mod sigv4;
mod store;
mod validate;
mod wire;
mod work;
mod worker_site;
mod world;

pub use control::{
    ClockReading, ControlClient, ControlError, DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY,
    SimStats,
};
pub use money::Cents;
pub use ops::{OPERATIONS, Operation, mutating_operations, operation};
pub use store::recorded_clock_offset_ms;

/// How a simulator behaves: where it keeps its world, whom it trusts and which faults it injects.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// SQLite file holding the world across restarts; `None` keeps it in memory.
    pub db_path: Option<PathBuf>,
    /// The only access key accepted (others get `UnrecognizedClientException`).
    pub access_key_id: String,
    /// The secret that signatures are checked against.
    pub secret_access_key: String,
    /// Added before every API request is processed (not to `/_sim/*`).
    pub latency: Duration,
    /// Token-bucket rate limit in requests per second; excess gets `ThrottlingException`.
    pub throttle_rps: Option<f64>,
    /// Bucket size; defaults to `max(1, throttle_rps)`.
    pub burst: Option<u32>,
    /// Fraction of requests answered with a 500 `ServiceFault` before any change is made.
    pub fault_rate: f64,
    /// Fraction of requests whose change is committed and whose connection is then closed
    /// without any response bytes: the lost response that UniqueRequestToken exists for.
    pub drop_rate: f64,
    /// Seeds fault decisions and generated ids, so runs with one client are reproducible.
    pub seed: Option<u64>,
    /// The smallest Reward accepted (MTurk documents none for this API; default 0.00).
    pub min_reward: Cents,
    /// Also accept `http://` ExternalURLs on 127.0.0.1, localhost and [::1], so a task page
    /// served locally can be tried on the worker site (MTurk itself requires HTTPS; default off).
    pub local_external_urls: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            db_path: None,
            access_key_id: DEFAULT_ACCESS_KEY_ID.into(),
            secret_access_key: DEFAULT_SECRET_ACCESS_KEY.into(),
            latency: Duration::ZERO,
            throttle_rps: None,
            burst: None,
            fault_rate: 0.0,
            drop_rate: 0.0,
            seed: None,
            min_reward: Cents(0),
            local_external_urls: false,
        }
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on `{addr}`")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot {what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot use the simulator database `{}`", path.display())]
    Database {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the simulator database `{}` holds an unreadable {kind} `{id}`: delete the file to start afresh", path.display())]
    Corrupt {
        path: PathBuf,
        kind: String,
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid simulator configuration: {0}")]
    InvalidConfig(String),
    /// Another simulator serves from the same database: two in-memory worlds would diverge and
    /// overwrite each other's records.
    #[error("the simulator database `{}` is in use by another simulator ({holder})", path.display())]
    InUse { path: PathBuf, holder: String },
}

/// Serves the API on `listener` until this future is dropped (or its task aborted).
pub async fn serve(listener: TcpListener, config: SimConfig) -> Result<(), SimError> {
    let shared = open_when_released(config).await?;
    server::run(listener, shared).await
}

/// A simulator running on the current tokio runtime; stopped by [`SimHandle::shutdown`] or drop.
#[derive(Debug)]
pub struct SimHandle {
    /// The bound address (the real port when started on port 0).
    pub addr: SocketAddr,
    task: Option<JoinHandle<Result<(), SimError>>>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`, for `endpoint_url`.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and closes every connection.
    pub async fn shutdown(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        // Connection tasks are aborted with the server task; give them a moment to release the
        // world (and with it the database) so that a restart on the same file starts clean.
        tokio::task::yield_now().await;
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Opens the world. A database still locked by a simulator of this very process is one being
/// shut down (its connection tasks release the world a moment after `shutdown` returns): wait
/// for it briefly, so that a restart on the same file works. Another process's lock is final.
async fn open_when_released(config: SimConfig) -> Result<Arc<server::Shared>, SimError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let ours = format!("pid {}:", std::process::id());
    loop {
        match server::Shared::open(config.clone()) {
            Err(SimError::InUse { holder, .. })
                if holder.starts_with(&ours) && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            other => return other,
        }
    }
}

/// Binds `addr` (e.g. `127.0.0.1:0`), opens the world and serves it on the current runtime.
pub async fn start(addr: &str, config: SimConfig) -> Result<SimHandle, SimError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| SimError::Bind {
            addr: addr.to_owned(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| SimError::Bind {
        addr: addr.to_owned(),
        source,
    })?;
    let shared: Arc<server::Shared> = open_when_released(config).await?;
    let task = tokio::spawn(server::run(listener, shared));
    Ok(SimHandle {
        addr: local,
        task: Some(task),
    })
}
