//! The outside world a command talks to: the MTurk endpoint (the embedded simulator for target
//! `sim`), credentials, and the clock. Built once per command and passed down, so that the
//! library crates never decide where to connect or what time it is.

use std::path::Path;
use std::time::Duration;

use turkform_model::{Target, UnixTime};
use turkform_mturk::{ConnectOptions, CredentialsSource, MturkApi, SdkMturk};
use turkform_sim::{
    DEFAULT_ACCESS_KEY_ID as SIM_ACCESS_KEY, DEFAULT_SECRET_ACCESS_KEY as SIM_SECRET_KEY,
};

use crate::failure::Failure;
use crate::settings::Resolved;

/// A clock that is the system clock shifted by a fixed offset: the simulator's virtual clock
/// (so that its 24 h token expiry and HIT expirations agree with our planning), or no shift.
#[derive(Debug, Clone, Copy)]
pub struct OffsetClock {
    offset_secs: i64,
}

impl turkform_apply::Clock for OffsetClock {
    fn now(&self) -> UnixTime {
        UnixTime(UnixTime::now().0 + self.offset_secs)
    }
}

/// A connected MTurk plus the clock that goes with it.
pub struct World {
    pub api: Box<dyn MturkApi>,
    pub clock: OffsetClock,
    /// Keeps the embedded simulator alive as long as the world.
    _sim: Option<turkform_sim::SimHandle>,
}

pub async fn connect(resolved: &Resolved) -> Result<World, Failure> {
    let mut sim = None;
    let (endpoint, credentials) = match (&resolved.endpoint_url, resolved.target) {
        (Some(url), Target::Sim) => (url.clone(), sim_credentials()),
        (Some(url), _) => (url.clone(), CredentialsSource::Chain),
        (None, Target::Sim) => {
            let db = embedded_sim_db(resolved);
            if let Some(dir) = db.parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Failure::user(anyhow::anyhow!(
                        "cannot create `{}` for the simulator: {e}",
                        dir.display()
                    ))
                })?;
            }
            let config = turkform_sim::SimConfig {
                db_path: Some(db),
                ..turkform_sim::SimConfig::default()
            };
            let handle = turkform_sim::start("127.0.0.1:0", config)
                .await
                .map_err(|e| match e {
                    e @ turkform_sim::SimError::InUse { .. } => Failure::user(e).hint(
                        "stop that simulator, or talk to it with `--endpoint-url URL` instead of starting another",
                    ),
                    e => Failure::internal(
                        anyhow::Error::new(e).context("cannot start the simulator"),
                    ),
                })?;
            let url = handle.endpoint_url();
            sim = Some(handle);
            (
                url,
                CredentialsSource::Static {
                    access_key_id: SIM_ACCESS_KEY.to_owned(),
                    secret_access_key: SIM_SECRET_KEY.to_owned(),
                },
            )
        }
        (None, target) => (
            target.default_endpoint().unwrap_or_default().to_owned(),
            CredentialsSource::Chain,
        ),
    };
    let options = ConnectOptions {
        target: resolved.target,
        endpoint_url: Some(endpoint.clone()),
        credentials,
        timeout: turkform_mturk::ATTEMPT_TIMEOUT,
    };
    let api = SdkMturk::connect(&options).await.map_err(|e| match e {
        // Already names the endpoint and says how to provide credentials.
        e @ turkform_mturk::ConnectError::NoCredentials { .. } => Failure::user(e),
        e => Failure::user(anyhow::Error::new(e).context("cannot set up the MTurk client")),
    })?;
    // Nothing has been sent yet: "connected to MTurk" is logged on the first answer.
    tracing::info!(endpoint = %endpoint, target = %resolved.target, "MTurk client ready");
    let offset_secs = if resolved.target == Target::Sim {
        // A short bound: an endpoint that does not answer is reported by the first real call,
        // within the outage budget, and this probe must not add to that wait.
        tokio::time::timeout(Duration::from_secs(1), sim_clock_offset(&endpoint))
            .await
            .ok()
            .flatten()
            .unwrap_or(0)
    } else {
        0
    };
    Ok(World {
        api: Box::new(api),
        clock: OffsetClock { offset_secs },
        _sim: sim,
    })
}

/// The embedded simulator keeps its world beside the state database (in `state/` when the
/// state is in PostgreSQL).
fn embedded_sim_db(resolved: &Resolved) -> std::path::PathBuf {
    if turkform_state::pg::is_url(&resolved.state_path.to_string_lossy()) {
        Path::new("state").join("sim.db")
    } else {
        resolved
            .state_path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join("sim.db")
    }
}

/// The clock of the target without connecting to MTurk, for the commands that read only the
/// state and the campaign files (`validate`, `status`, `results`, `report`, and `plan`/`apply`
/// before they connect): the system clock, or for target `sim` the simulator's virtual clock,
/// so that "expired", "due for auto-approval" and `ends_at` mean the same to every command as
/// to the simulator. A simulator that cannot be read gives the system clock (logged).
pub async fn clock(resolved: &Resolved) -> OffsetClock {
    if resolved.target != Target::Sim {
        return OffsetClock { offset_secs: 0 };
    }
    let offset_secs = match &resolved.endpoint_url {
        Some(url) => tokio::time::timeout(Duration::from_secs(1), sim_clock_offset(url))
            .await
            .ok()
            .flatten()
            .unwrap_or(0),
        None => {
            let db = embedded_sim_db(resolved);
            match turkform_sim::recorded_clock_offset_ms(&db) {
                Ok(ms) => ms.div_euclid(1000),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the simulator's clock; using the system clock");
                    0
                }
            }
        }
    };
    OffsetClock { offset_secs }
}

/// For an external simulator, the standard chain when AWS keys are set, else the default pair.
fn sim_credentials() -> CredentialsSource {
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() || std::env::var_os("AWS_PROFILE").is_some()
    {
        CredentialsSource::Chain
    } else {
        CredentialsSource::Static {
            access_key_id: SIM_ACCESS_KEY.to_owned(),
            secret_access_key: SIM_SECRET_KEY.to_owned(),
        }
    }
}

/// Reads the simulator's virtual clock (`GET /_sim/clock`) and returns its offset from the
/// system clock. `None` when the endpoint is not our simulator (or does not answer in 5 s).
async fn sim_clock_offset(endpoint: &str) -> Option<i64> {
    let client = turkform_sim::ControlClient::new(endpoint)
        .ok()?
        .with_timeout(Duration::from_secs(5));
    match client.clock().await {
        Ok(reading) => Some(reading.now - UnixTime::now().0),
        Err(e) => {
            tracing::debug!(error = %e, "no simulator clock at the endpoint; using the system clock");
            None
        }
    }
}
