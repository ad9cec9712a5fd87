//! Applies N creates against an in-process simulator with latency and throttling, and prints
//! the wall time, API calls per HIT and throttles.
//!
//! `cargo run --release -p turkform-apply --example apply_bench -- --items 2000 --latency 30 --throttle-rps 200 [--concurrency 16]`
//!
//! The physical floor is items / throttle-rps seconds (the simulator's bucket starts full, which
//! buys one second of burst).

use std::time::Instant;

use turkform_apply::{ApplyOptions, NoReporter, SystemClock};
use turkform_model::Target;
use turkform_plan::PlanOptions;
use turkform_state::{OpenMode, StateStore};

mod support;
use support::arg;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let items = arg(&args, "--items", 2000.0) as usize;
    let latency = arg(&args, "--latency", 30.0);
    let rps = arg(&args, "--throttle-rps", 200.0);
    let concurrency = arg(&args, "--concurrency", 16.0) as usize;

    let (_sim, api) = support::simulator(latency as u64, support::throttle(rps)).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = StateStore::open(
        &dir.path().join("state.db"),
        Target::Sim,
        OpenMode::ReadWrite,
    )
    .expect("state");

    let desired = support::desired(vec![support::campaign(items, &support::Bench::default())]);
    let recorded = store.load().expect("load");
    let plan = turkform_plan::plan(
        &desired,
        &recorded,
        turkform_model::UnixTime::now(),
        &PlanOptions::default(),
    );
    let mut options = ApplyOptions::new(Target::Sim);
    options.concurrency = concurrency;
    let started = Instant::now();
    let report =
        turkform_apply::apply(&plan, &api, &mut store, &SystemClock, &NoReporter, &options)
            .await
            .expect("apply");
    let wall = started.elapsed();
    let created = report
        .api_calls
        .get("CreateHITWithHITType")
        .copied()
        .unwrap_or(0);
    let total = report.total_api_calls();
    println!("items {items}, latency {latency} ms, throttle {rps} rps, concurrency {concurrency}");
    println!(
        "wall {:.2} s (floor {:.2} s without burst), done {}, failed {}",
        wall.as_secs_f64(),
        items as f64 / rps.max(1.0),
        report.done,
        report.failed.len()
    );
    println!(
        "api calls {total} ({:.3} per HIT), creates sent {created}, throttled {}, retries {}",
        total as f64 / items.max(1) as f64,
        report.throttled,
        report.retries
    );
    println!(
        "state: {} HITs recorded, {} intents pending",
        store.load().expect("load").hits.len(),
        store.pending_intents().expect("pending").len()
    );
}
