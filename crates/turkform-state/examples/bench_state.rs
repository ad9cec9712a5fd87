//! How fast the state store is at the sizes the planner benchmark uses.
//!
//! `cargo run --release -p turkform-state --example bench_state [-- HITS]` creates a state with
//! HITS (default 100,000) recorded HITs through `commit` batches of 100 intents + 100 upserts
//! (the executor's group commit), then times opening and `load()`, and prints memory figures
//! read from `/proc/self/status` (Linux).

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use turkform_model::{HitStatus, Money, RecordedHit, Target, UnixTime};
use turkform_state::{Batch, IntentKind, IntentOutcome, NewIntent, OpenMode, StateStore};

fn hit(i: usize) -> RecordedHit {
    RecordedHit {
        campaign: format!("campaign-{}", i % 20),
        item_key: format!("item-{i:07}"),
        generation: 1,
        hit_id: format!("3{i:029}"),
        hit_type_id: format!("3HT{:027}", i % 7),
        hit_type_hash: format!("{:064x}", i % 7),
        content_hash: format!("{i:064x}"),
        max_assignments: 3,
        committed_cost: Money::from_cents(36),
        created_at: UnixTime(1_700_000_000),
        expiration: UnixTime(1_700_604_800),
        status: HitStatus::Assignable,
        assignments_available: 3,
        assignments_pending: 0,
        assignments_completed: 0,
        expired_by: None,
        paused_remaining_secs: None,
        drift: Vec::new(),
    }
}

/// `VmRSS` and `VmHWM` (peak) in MiB, when the platform exposes them.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let total: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 100_000,
    };
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("turkform.db");
    let mut store = StateStore::open(&path, Target::Sim, OpenMode::ReadWrite)?;

    let started = Instant::now();
    let mut slowest_commit = Duration::ZERO;
    for chunk_start in (0..total).step_by(100) {
        let range = chunk_start..(chunk_start + 100).min(total);
        let intents: Vec<NewIntent> = range
            .clone()
            .map(|i| NewIntent {
                kind: IntentKind::CreateHit,
                campaign: Some(format!("campaign-{}", i % 20)),
                item_key: Some(format!("item-{i:07}")),
                generation: Some(1),
                hit_id: None,
                token: format!("{i:064x}"),
                payload: serde_json::json!({ "MaxAssignments": 3, "Question": "<HTMLQuestion/>" }),
                created_at: UnixTime(1_700_000_000),
            })
            .collect();
        let ids = store.begin_intents(&intents)?;
        let batch = Batch {
            completed: ids
                .into_iter()
                .map(|id| (id, IntentOutcome::Done))
                .collect(),
            upsert_hits: range.map(hit).collect(),
            ..Batch::default()
        };
        let t = Instant::now();
        store.commit(&batch)?;
        slowest_commit = slowest_commit.max(t.elapsed());
    }
    let inserted = started.elapsed();
    drop(store);
    let file_mb = std::fs::metadata(&path)?.len() as f64 / (1024.0 * 1024.0);
    println!(
        "inserted {total} HITs in {} group commits (begin 100 intents + commit 100 outcomes/upserts): {:.0} ms total, slowest commit {:.1} ms; file {file_mb:.1} MiB",
        total.div_ceil(100),
        ms(inserted),
        ms(slowest_commit)
    );

    for mode in [OpenMode::ReadWrite, OpenMode::ReadOnly] {
        let (rss_before, _) = memory();
        let t = Instant::now();
        let store = StateStore::open(&path, Target::Sim, mode)?;
        let opened = t.elapsed();
        let t = Instant::now();
        let state = store.load()?;
        let loaded = t.elapsed();
        let (rss_after, peak) = memory();
        assert_eq!(state.hits.len(), total);
        println!(
            "{mode:?}: open (header + quick_check) {:.1} ms, load() of {} HITs {:.1} ms, RSS +{:.1} MiB while held (peak RSS {:.1} MiB)",
            ms(opened),
            state.hits.len(),
            ms(loaded),
            rss_after - rss_before,
            peak
        );
        drop(state);
        drop(store);
    }
    Ok(())
}
