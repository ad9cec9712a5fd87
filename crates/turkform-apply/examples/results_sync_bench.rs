//! Assignment sync in refresh, measured: creates `--hits` HITs on an in-process simulator, has
//! simulated workers submit `--assignments` to each, then times the refresh that records them
//! and a second refresh with no new work. Prints one JSON object of figures.
//!
//! `cargo run --release -p turkform-apply --example results_sync_bench -- --hits 2000 --assignments 3 --latency 30 --throttle-rps 200`
//! `cargo run --release -p turkform-apply --example results_sync_bench -- --hits 10000 --assignments 1 --latency 0 --throttle-rps 0`
//!
//! The floor of the first refresh is (calls - burst) / rate, counting the calls the simulator
//! answered (`/_sim/stats`; throttled requests take no token and are resent): its bucket starts
//! full (`burst` = the rate), and every call past it waits for a token. Targets: within 1.15x of
//! the floor; ListAssignmentsForHIT answered once per HIT with new work (plus extra pages); the
//! refresh with no new work makes none.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use turkform_apply::{ApplyOptions, NoReporter, SystemClock};
use turkform_model::Target;
use turkform_plan::PlanOptions;
use turkform_state::{OpenMode, StateStore};

mod support;
use support::arg;

/// `POST /_sim/work` over a plain connection (control endpoints take no signature).
fn sim_work(base: &str, body: &str) -> serde_json::Value {
    let authority = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(authority).expect("connect to simulator");
    write!(
        stream,
        "POST /_sim/work HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (_, rest) = response.split_once("\r\n\r\n").expect("HTTP response");
    // The body may be chunked: take the JSON object between the first `{` and the last `}`.
    let start = rest.find('{').unwrap_or(0);
    let end = rest.rfind('}').map_or(rest.len(), |e| e + 1);
    serde_json::from_str(&rest[start..end]).expect("work report")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let hits = arg(&args, "--hits", 2000.0) as usize;
    let per_hit = arg(&args, "--assignments", 3.0) as u32;
    let latency = arg(&args, "--latency", 30.0);
    let rps = arg(&args, "--throttle-rps", 200.0);

    let (sim, api) = support::simulator(latency as u64, support::throttle(rps)).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = StateStore::open(
        &dir.path().join("state.db"),
        Target::Sim,
        OpenMode::ReadWrite,
    )
    .expect("state");

    let desired = support::desired(vec![support::campaign(
        hits,
        &support::Bench {
            assignments: per_hit,
            auto_approval_delay_secs: 86_400,
            crowd_form: true,
            ..support::Bench::default()
        },
    )]);
    let recorded = store.load().expect("load");
    let plan = turkform_plan::plan(
        &desired,
        &recorded,
        turkform_model::UnixTime::now(),
        &PlanOptions::default(),
    );
    let options = ApplyOptions::new(Target::Sim);
    let created =
        turkform_apply::apply(&plan, &api, &mut store, &SystemClock, &NoReporter, &options)
            .await
            .expect("apply");
    assert_eq!(created.failed.len(), 0, "every HIT is created");
    // A first refresh records the HITs' counters with no work yet (and makes no assignment read).
    let quiet = turkform_apply::refresh(&api, &mut store, &SystemClock, &NoReporter)
        .await
        .expect("refresh");

    let work = sim_work(
        &sim.endpoint_url(),
        &format!(r#"{{"assignments_per_hit": {per_hit}, "answers": {{"answer": "yes"}}}}"#),
    );
    let submitted = work["assignments"].as_array().map_or(0, Vec::len);
    let hits_with_work = work["hits"].as_array().map_or(0, Vec::len);

    // Let the bucket refill, so the timed refresh starts as a fresh run would (it holds at most
    // `burst` tokens: waiting longer changes nothing).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let control = turkform_sim::ControlClient::new(&sim.endpoint_url()).expect("control");
    let before = control.stats().await.expect("stats");
    let started = Instant::now();
    let synced = turkform_apply::refresh(&api, &mut store, &SystemClock, &NoReporter)
        .await
        .expect("refresh");
    let wall = started.elapsed().as_secs_f64();
    let after = control.stats().await.expect("stats");
    let again = turkform_apply::refresh(&api, &mut store, &SystemClock, &NoReporter)
        .await
        .expect("refresh");
    let last = control.stats().await.expect("stats");

    // The floor counts the calls the simulator answered (a throttled request takes no token
    // and is resent: counting it would lower the bar by what throttling cost).
    let answered = after.processed_calls() - before.processed_calls();
    let list_assignments = |s: &turkform_sim::SimStats| s.calls("ListAssignmentsForHIT");
    let burst = if rps > 0.0 { rps.max(1.0) } else { 0.0 };
    let floor = if rps > 0.0 {
        ((answered as f64 - burst) / rps).max(0.0)
    } else {
        0.0
    };
    let figures = serde_json::json!({
        "bench": "results_sync",
        "hits": hits,
        "assignments_per_hit": per_hit,
        "latency_ms": latency,
        "throttle_rps": rps,
        "assignments_submitted": submitted,
        "hits_with_new_work": hits_with_work,
        "quiet_refresh_list_assignments_calls": quiet.assignment_calls,
        "sync_list_assignments_calls": synced.assignment_calls,
        "sync_list_assignments_answered": list_assignments(&after) - list_assignments(&before),
        "sync_assignments_recorded": synced.assignments_recorded,
        "sync_total_calls": synced.api_calls,
        "sync_answered_calls": answered,
        "sync_throttled": after.throttled - before.throttled,
        "sync_wall_s": (wall * 1000.0).round() / 1000.0,
        "floor_s": (floor * 1000.0).round() / 1000.0,
        "wall_over_floor": if floor > 0.0 { ((wall / floor) * 1000.0).round() / 1000.0 } else { 0.0 },
        "no_new_work_list_assignments_calls": again.assignment_calls,
        "no_new_work_list_assignments_answered": list_assignments(&last) - list_assignments(&after),
        "no_new_work_total_calls": again.api_calls,
    });
    println!("{figures}");
    sim.shutdown().await;
}
