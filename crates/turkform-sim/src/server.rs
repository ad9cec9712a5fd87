//! The HTTP front: hyper http1 connections, SigV4, throttling, faults, latency, dropped
//! connections, the `/_sim/*` control endpoints and the hand-off between the world and the
//! store.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::ops::{self, Ctx};
use crate::store::Store;
use crate::wire::{ApiError, Input};
use crate::world::{Key, World};
use crate::{SimConfig, SimError, ids, sigv4, work, worker_site};

/// The `X-Amz-Target` prefix of every operation.
pub const TARGET_PREFIX: &str = "MTurkRequesterServiceV20170117.";

/// Bodies above this are refused without being read further.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// The world plus what must change atomically with it.
struct Core {
    world: World,
    /// Ids of HITs, assignments, qualification types.
    ids: StdRng,
    /// The last sequence number handed to the store.
    last_queued: u64,
}

#[derive(Default)]
struct Stats {
    requests: BTreeMap<String, u64>,
    throttled: u64,
    faults: u64,
    dropped: u64,
}

struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Fault decisions, from their own seeded streams so that a seed reproduces them.
struct Dice {
    fault: StdRng,
    drop: StdRng,
}

pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    core: Mutex<Core>,
    store: Option<Store>,
    stats: Mutex<Stats>,
    bucket: Option<Mutex<Bucket>>,
    dice: Mutex<Dice>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves data that is still consistent enough to serve: every
    // operation validates before it mutates.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn rng_from(seed: Option<u64>, stream: u64) -> StdRng {
    match seed {
        Some(s) => {
            StdRng::seed_from_u64(s.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(stream))
        }
        None => StdRng::from_os_rng(),
    }
}

fn real_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Shared {
    pub(crate) fn open(config: SimConfig) -> Result<Arc<Shared>, SimError> {
        if !(0.0..=1.0).contains(&config.fault_rate) || !(0.0..=1.0).contains(&config.drop_rate) {
            return Err(SimError::InvalidConfig(
                "fault_rate and drop_rate must be fractions from 0 to 1".into(),
            ));
        }
        let bucket = match config.throttle_rps {
            None => None,
            Some(rps) if rps > 0.0 && rps.is_finite() => {
                let burst = f64::from(config.burst.unwrap_or(rps.max(1.0) as u32).max(1));
                Some(Mutex::new(Bucket {
                    tokens: burst,
                    rate: rps,
                    burst,
                    last: Instant::now(),
                }))
            }
            Some(rps) => {
                return Err(SimError::InvalidConfig(format!(
                    "throttle_rps {rps} must be a positive number of requests per second"
                )));
            }
        };
        let (world, store) = match &config.db_path {
            Some(path) => {
                let (w, s) = crate::store::open(path)?;
                (w, Some(s))
            }
            None => (World::default(), None),
        };
        Ok(Arc::new(Shared {
            core: Mutex::new(Core {
                world,
                ids: rng_from(config.seed, 3),
                last_queued: 0,
            }),
            store,
            stats: Mutex::new(Stats::default()),
            bucket,
            dice: Mutex::new(Dice {
                fault: rng_from(config.seed, 1),
                drop: rng_from(config.seed, 2),
            }),
            config,
        }))
    }

    /// Runs `f` on the world at virtual now, queues what it changed for commit, and returns
    /// its result with the sequence number to wait for before answering.
    pub(crate) fn with_world<T>(
        &self,
        f: impl FnOnce(&mut World, &mut StdRng, i64) -> T,
    ) -> (T, u64) {
        let mut core = lock(&self.core);
        let core = &mut *core;
        let now = real_now_ms() + core.world.meta.clock_offset_ms;
        let out = f(&mut core.world, &mut core.ids, now);
        let records = core.world.take_records();
        if let Some(store) = &self.store
            && !records.is_empty()
        {
            core.last_queued += 1;
            store.queue(core.last_queued, records);
        }
        (out, core.last_queued)
    }

    pub(crate) async fn committed(&self, seq: u64) -> bool {
        match &self.store {
            Some(s) if seq > 0 => s.committed(seq).await,
            _ => true,
        }
    }

    fn virtual_now(&self) -> i64 {
        real_now_ms() + lock(&self.core).world.meta.clock_offset_ms
    }
}

/// Accepts connections until the future is dropped; dropping it closes every connection.
pub(crate) async fn run(listener: TcpListener, shared: Arc<Shared>) -> Result<(), SimError> {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| handle(shared.clone(), peer, req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Returned to hyper to make it close the connection without writing a response.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DropConnection {}

type Reply = Result<Response<Full<Bytes>>, DropConnection>;

fn json_response(status: u16, body: String, content_type: &str) -> Response<Full<Bytes>> {
    let mut rid = rand::rng();
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", content_type)
        .header("x-amzn-requestid", ids::request_id(&mut rid))
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn api_error(err: &ApiError, now_ms: i64) -> Response<Full<Bytes>> {
    let (status, body) = err.render(now_ms);
    json_response(status, body, "application/x-amz-json-1.1")
}

fn front(status: u16, kind: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Front {
        status,
        kind,
        message: message.into(),
    }
}

async fn handle(shared: Arc<Shared>, peer: std::net::SocketAddr, req: Request<Incoming>) -> Reply {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let err = front(
                413,
                "SerializationException",
                "The request body is too large or was cut short.",
            );
            return Ok(api_error(&err, real_now_ms()));
        }
    };
    let path = parts.uri.path();
    if let Some(site) = worker_site::route(path) {
        return Ok(worker_site::handle(&shared, peer, &parts, site, &body).await);
    }
    if let Some(control) = path.strip_prefix("/_sim/") {
        return Ok(control_endpoint(&shared, parts.method.as_str(), control, &body).await);
    }
    if !shared.config.latency.is_zero() {
        tokio::time::sleep(shared.config.latency).await;
    }
    let real_now = real_now_ms();
    if let Err(failure) = sigv4::verify(
        parts.method.as_str(),
        path,
        parts.uri.query().unwrap_or(""),
        &parts.headers,
        &body,
        &shared.config.access_key_id,
        &shared.config.secret_access_key,
        real_now.div_euclid(1000),
    ) {
        return Ok(api_error(&auth_error(failure), real_now));
    }
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let op = target.strip_prefix(TARGET_PREFIX).unwrap_or("");
    let Some(operation) = ops::operation(op) else {
        return Ok(api_error(
            &front(
                400,
                "UnknownOperationException",
                format!("The operation '{target}' is not known to this service."),
            ),
            real_now,
        ));
    };
    if parts.method != hyper::Method::POST {
        return Ok(api_error(
            &front(
                400,
                "UnknownOperationException",
                "Only POST / is supported.",
            ),
            real_now,
        ));
    }
    if let Some(bucket) = &shared.bucket
        && !lock(bucket).take()
    {
        lock(&shared.stats).throttled += 1;
        return Ok(api_error(
            &front(400, "ThrottlingException", "Rate exceeded"),
            real_now,
        ));
    }
    if shared.config.fault_rate > 0.0
        && lock(&shared.dice).fault.random::<f64>() < shared.config.fault_rate
    {
        lock(&shared.stats).faults += 1;
        return Ok(api_error(
            &ApiError::Fault {
                message: "We encountered an internal error. Please try the request again.".into(),
            },
            shared.virtual_now(),
        ));
    }
    *lock(&shared.stats)
        .requests
        .entry(operation.name.to_owned())
        .or_default() += 1;
    let parsed: Result<Value, _> = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(Value::Object(Default::default()))
    } else {
        serde_json::from_slice(&body)
    };
    let input = match parsed {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Ok(api_error(
                &ApiError::serialization("The request body must be a JSON object."),
                real_now,
            ));
        }
        Err(e) => {
            return Ok(api_error(
                &ApiError::serialization(format!("The request body is not valid JSON: {e}")),
                real_now,
            ));
        }
    };
    let min_reward = shared.config.min_reward;
    let local_external_urls = shared.config.local_external_urls;
    let ((result, now), seq) = shared.with_world(|world, rng, now| {
        let mut ctx = Ctx {
            now,
            min_reward,
            local_external_urls,
            rng,
        };
        (
            (operation.handler)(world, &mut ctx, &Input::new(&input)),
            now,
        )
    });
    if !shared.committed(seq).await {
        return Ok(api_error(
            &ApiError::Fault {
                message: "The simulator could not save the change.".into(),
            },
            now,
        ));
    }
    if shared.config.drop_rate > 0.0
        && lock(&shared.dice).drop.random::<f64>() < shared.config.drop_rate
    {
        lock(&shared.stats).dropped += 1;
        return Err(DropConnection);
    }
    Ok(match result {
        Ok(value) => json_response(200, value.to_string(), "application/x-amz-json-1.1"),
        Err(err) => api_error(&err, now),
    })
}

fn auth_error(failure: sigv4::AuthFailure) -> ApiError {
    use sigv4::AuthFailure::*;
    match failure {
        Missing => front(
            400,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ),
        Incomplete(m) => front(400, "IncompleteSignatureException", m),
        UnknownKey => front(
            400,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        Expired(m) => front(400, "InvalidSignatureException", m),
        WrongService(m) => front(400, "InvalidSignatureException", m),
        Mismatch => front(
            400,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ),
    }
}

fn control_json(status: u16, value: Value) -> Response<Full<Bytes>> {
    json_response(status, value.to_string(), "application/json")
}

fn control_error(status: u16, message: impl Into<String>) -> Response<Full<Bytes>> {
    control_json(status, json!({ "error": message.into() }))
}

async fn control_endpoint(
    shared: &Shared,
    method: &str,
    path: &str,
    body: &[u8],
) -> Response<Full<Bytes>> {
    let parse = || -> Result<Value, String> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(json!({}));
        }
        serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON: {e}"))
    };
    match (method, path) {
        ("GET", "clock") => {
            let (offset, now) = {
                let core = lock(&shared.core);
                let offset = core.world.meta.clock_offset_ms;
                (offset, real_now_ms() + offset)
            };
            control_json(
                200,
                json!({ "now": now / 1000, "offset_seconds": offset / 1000 }),
            )
        }
        ("POST", "clock") => {
            let value = match parse() {
                Ok(v) => v,
                Err(e) => return control_error(400, e),
            };
            let Some(secs) = value.get("advance_seconds").and_then(Value::as_i64) else {
                return control_error(
                    400,
                    "give {\"advance_seconds\": N} with a whole number N >= 0",
                );
            };
            if secs < 0 {
                return control_error(
                    400,
                    "advance_seconds must be >= 0: the virtual clock only moves forward",
                );
            }
            let ((now, offset), seq) = shared.with_world(|world, _, _| {
                world.meta.clock_offset_ms += secs.saturating_mul(1000);
                world.touch(Key::Meta);
                let offset = world.meta.clock_offset_ms;
                (real_now_ms() + offset, offset)
            });
            if !shared.committed(seq).await {
                return control_error(500, "the simulator could not save the clock");
            }
            control_json(
                200,
                json!({ "now": now / 1000, "offset_seconds": offset / 1000 }),
            )
        }
        ("GET", "stats") => control_json(200, stats(shared)),
        // MTurk has no read of a HIT type's notification settings; tests need one.
        ("GET", "notifications") => {
            let core = lock(&shared.core);
            let mut settings: Vec<&crate::world::NotificationSetting> =
                core.world.notifications.values().collect();
            settings.sort_by(|a, b| a.hit_type_id.cmp(&b.hit_type_id));
            let items: Vec<Value> = settings
                .into_iter()
                .map(|n| {
                    json!({
                        "HITTypeId": n.hit_type_id,
                        "Notification": n.specification,
                        "Active": n.active,
                    })
                })
                .collect();
            control_json(200, json!({ "NotificationSettings": items }))
        }
        ("POST", "work") => {
            let request: work::WorkRequest = match parse().and_then(|v| {
                serde_json::from_value(v).map_err(|e| format!("the work request is not valid: {e}"))
            }) {
                Ok(r) => r,
                Err(e) => return control_error(400, e),
            };
            let (result, seq) =
                shared.with_world(|world, rng, now| work::run(world, rng, now, &request));
            if !shared.committed(seq).await {
                return control_error(500, "the simulator could not save the work");
            }
            match result {
                Ok(v) => control_json(200, v),
                Err(e) => control_error(400, e),
            }
        }
        _ => control_error(
            404,
            format!(
                "no control endpoint {method} /_sim/{path}: use GET|POST /_sim/clock, GET /_sim/stats, GET /_sim/notifications, POST /_sim/work"
            ),
        ),
    }
}

fn stats(shared: &Shared) -> Value {
    let (hits, by_status, duplicates, balance, now) = {
        let core = lock(&shared.core);
        let w = &core.world;
        let now = real_now_ms() + w.meta.clock_offset_ms;
        let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
        let mut annotations: std::collections::HashMap<&str, u32> =
            std::collections::HashMap::new();
        let mut live = 0u64;
        for hit in w.hits.values() {
            let status = w.view(hit, now).status;
            *by_status.entry(status).or_default() += 1;
            if status != "Disposed" {
                live += 1;
            }
            if let Some(a) = hit.annotation.as_deref() {
                *annotations.entry(a).or_default() += 1;
            }
        }
        let duplicates = annotations.values().filter(|n| **n > 1).count();
        let by_status: BTreeMap<String, u64> = by_status
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        (live, by_status, duplicates, w.meta.balance, now)
    };
    let stats = lock(&shared.stats);
    json!({
        "requests": stats.requests,
        "throttled": stats.throttled,
        "faults": stats.faults,
        "dropped": stats.dropped,
        "hits": hits,
        "hits_by_status": by_status,
        "duplicate_annotations": duplicates,
        "balance": balance.to_amount(),
        "now": now / 1000,
    })
}
