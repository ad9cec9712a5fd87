//! State backends compared: a 2,000-HIT apply at `--latency 30 --throttle-rps 200` on SQLite
//! and on PostgreSQL in one run (target: PostgreSQL within 1.10x of SQLite), then a no-op plan
//! (open the state, load it, plan) over 100,000 items on PostgreSQL (target: under 3 s). Prints
//! one JSON object.
//!
//! `cargo run --release -p turkform-apply --example state_backends_bench -- [--items 2000]
//! [--latency 30] [--throttle-rps 200] [--concurrency 16] [--noop-items 100000]`
//!
//! PostgreSQL comes from `TURKFORM_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/test`);
//! each phase uses a fresh schema, dropped at the end.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use turkform_apply::{ApplyOptions, NoReporter, SystemClock};
use turkform_model::{DesiredState, Target};
use turkform_plan::PlanOptions;
use turkform_state::{OpenMode, StateStore};

mod support;
use support::arg;

fn desired(items: usize) -> DesiredState {
    support::desired(vec![support::campaign(items, &support::Bench::default())])
}

fn pg_base() -> String {
    std::env::var("TURKFORM_TEST_PG")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn pg_url(schema: &str) -> PathBuf {
    let base = pg_base();
    let sep = if base.contains('?') { '&' } else { '?' };
    PathBuf::from(format!("{base}{sep}schema={schema}"))
}

/// Applies `items` creates into the state at `location` against a fresh simulator; returns
/// the wall time of the apply alone.
async fn timed_apply(
    location: &Path,
    items: usize,
    latency_ms: u64,
    rps: Option<f64>,
    concurrency: usize,
) -> (Duration, usize) {
    let (sim, api) = support::simulator(latency_ms, rps).await;
    let mut store = StateStore::open(location, Target::Sim, OpenMode::ReadWrite).expect("state");
    let desired = desired(items);
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
    assert!(report.failed.is_empty(), "the apply failed for some items");
    let recorded = store.load().expect("load").hits.len();
    drop(store);
    sim.shutdown().await;
    (wall, recorded)
}

fn drop_schema(schema: &str) {
    // The sync client runs its own runtime: not on a thread of this one.
    let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    let _ = std::thread::spawn(move || {
        if let Ok(mut client) = postgres::Client::connect(&pg_base(), postgres::NoTls) {
            let _ = client.batch_execute(&sql);
        }
    })
    .join();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let items = arg(&args, "--items", 2000.0) as usize;
    let latency = arg(&args, "--latency", 30.0) as u64;
    let rps = arg(&args, "--throttle-rps", 200.0);
    let concurrency = arg(&args, "--concurrency", 16.0) as usize;
    let noop_items = arg(&args, "--noop-items", 100_000.0) as usize;
    let rps = (rps > 0.0).then_some(rps);
    let tag = format!("{}_{}", std::process::id(), rand::random::<u32>());

    let dir = tempfile::tempdir().expect("temp dir");
    let (sqlite_wall, sqlite_hits) = timed_apply(
        &dir.path().join("state.db"),
        items,
        latency,
        rps,
        concurrency,
    )
    .await;
    let apply_schema = format!("tf_bench_apply_{tag}");
    let (pg_wall, pg_hits) =
        timed_apply(&pg_url(&apply_schema), items, latency, rps, concurrency).await;
    drop_schema(&apply_schema);
    assert_eq!((sqlite_hits, pg_hits), (items, items));

    // The no-op plan: a PostgreSQL state that already records every item (applied at full
    // speed into SQLite, then moved with `state migrate`), then what `plan --refresh=false`
    // does with it.
    let noop_schema = format!("tf_bench_noop_{tag}");
    let noop_location = pg_url(&noop_schema);
    let setup_started = Instant::now();
    let noop_file = dir.path().join("noop.db");
    timed_apply(&noop_file, noop_items, 0, None, 64).await;
    let migrate_started = Instant::now();
    turkform_state::migrate::migrate_state(&noop_file, &noop_location, Duration::ZERO)
        .expect("migrate the no-op state to PostgreSQL");
    let migrate_wall = migrate_started.elapsed();
    let setup_wall = setup_started.elapsed();
    let desired = desired(noop_items);
    let started = Instant::now();
    let store = StateStore::open(&noop_location, Target::Sim, OpenMode::ReadOnly).expect("state");
    let recorded = store.load().expect("load");
    let load_wall = started.elapsed();
    let plan = turkform_plan::plan(
        &desired,
        &recorded,
        turkform_model::UnixTime::now(),
        &PlanOptions::default(),
    );
    let noop_wall = started.elapsed();
    let changes = serde_json::to_value(&plan.summary).unwrap_or_default();
    drop(store);
    drop_schema(&noop_schema);

    let ratio = pg_wall.as_secs_f64() / sqlite_wall.as_secs_f64();
    let report = serde_json::json!({
        "apply": {
            "items": items,
            "latency_ms": latency,
            "throttle_rps": rps,
            "concurrency": concurrency,
            "sqlite_s": sqlite_wall.as_secs_f64(),
            "postgres_s": pg_wall.as_secs_f64(),
            "postgres_over_sqlite": ratio,
            "target_ratio": 1.10,
            "ok": ratio <= 1.10,
        },
        "noop_plan_postgres": {
            "items": noop_items,
            "setup_s": setup_wall.as_secs_f64(),
            "state_migrate_sqlite_to_postgres_s": migrate_wall.as_secs_f64(),
            "open_and_load_s": load_wall.as_secs_f64(),
            "plan_total_s": noop_wall.as_secs_f64(),
            "summary": changes,
            "target_s": 3.0,
            "ok": noop_wall.as_secs_f64() < 3.0,
        },
    });
    println!("{report}");
}
