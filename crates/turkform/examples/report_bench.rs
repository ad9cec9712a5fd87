//! `turkform report` over a large state, measured: writes a state of one campaign with `--items`
//! HITs of 3 assignments each (approved, submitted, rejected; a categorical and a free-text
//! answer field; 5,000 workers) directly through the state store, then runs the release
//! binary's `report` on it under `/usr/bin/time` and prints one JSON object of figures.
//!
//! `cargo build --release -p turkform && cargo run --release -p turkform --example report_bench -- --items 100000`
//!
//! Targets (issue 14): under 2 s and a page under 5 MB for 100,000 items. `--keep DIR` also
//! leaves a copy of the project (settings and state) in DIR, to profile the command by hand.

use std::time::Instant;

use turkform_model::{AssignmentStatus, HitStatus, Money, RecordedHit, Target, UnixTime};
use turkform_state::{Batch, OpenMode, StateStore};

#[path = "support/mod.rs"]
mod support;
use support::arg;

const PER_HIT: usize = 3;
const HITS_PER_BATCH: usize = 10_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let items: usize = arg(&args, "--items", "100000").parse().expect("--items N");
    let binary = support::release_binary();
    let (dir, state_path) = support::project();
    let generated = Instant::now();
    let mut store = StateStore::open(&state_path, Target::Sim, OpenMode::ReadWrite).expect("state");
    let base = 1_700_000_000;
    for start in (0..items).step_by(HITS_PER_BATCH) {
        let mut batch = Batch::default();
        for h in start..(start + HITS_PER_BATCH).min(items) {
            let hit_id = format!("3BENCHHIT{h:021}");
            let key = format!("item-{h:07}");
            // HITs go up over a day, answers come in over the following days.
            let created = base + (h as i64 * 86_400) / items as i64;
            batch.upsert_hits.push(RecordedHit {
                campaign: "bench".into(),
                item_key: key.clone(),
                generation: 1,
                hit_id: hit_id.clone(),
                hit_type_id: "3BENCHTYPE0000000000000000000".into(),
                hit_type_hash: "0".repeat(64),
                content_hash: "1".repeat(64),
                max_assignments: PER_HIT as u32,
                committed_cost: Money::from_cents(36),
                created_at: UnixTime(created),
                expiration: UnixTime(base + 604_800),
                status: HitStatus::Reviewable,
                assignments_available: 0,
                assignments_pending: 0,
                assignments_completed: 2,
                expired_by: None,
                paused_remaining_secs: None,
                drift: Vec::new(),
            });
            for a in 0..PER_HIT {
                let submit = created + 600 + ((h * 7 + a) as i64 * 13) % 172_800;
                let status = [
                    AssignmentStatus::Approved,
                    AssignmentStatus::Submitted,
                    AssignmentStatus::Rejected,
                ][a];
                let label = ["positive", "negative", "neutral"][(h + a * (h % 2)) % 3];
                batch.upsert_assignments.push(support::bench_assignment(
h,
a,
&hit_id,
&key,
status,
submit,
format!(
                        "<?xml version=\"1.0\" encoding=\"ASCII\"?><QuestionFormAnswers xmlns=\"http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/QuestionFormAnswers.xsd\"><Answer><QuestionIdentifier>label</QuestionIdentifier><FreeText>{label}</FreeText></Answer></QuestionFormAnswers>"
                    ),
[
                        ("comment".to_owned(), format!("item {h} worker {a}")),
                        ("label".to_owned(), label.to_owned()),
                    ]
                    .into(),
));
            }
        }
        store.commit(&batch).expect("commit");
    }
    drop(store);
    let generate_s = generated.elapsed().as_secs_f64();
    let db_bytes = std::fs::metadata(&state_path).map_or(0, |m| m.len());

    let page = dir.path().join("report.html");
    let (wall, peak_kb) = support::timed(
        &binary,
        dir.path(),
        &["report", "--output", page.to_str().expect("utf-8")],
    );
    if let Some(keep) = args
        .iter()
        .position(|a| a == "--keep")
        .and_then(|i| args.get(i + 1))
    {
        // For profiling the command by hand on the same state (`turkform -C DIR report`).
        std::fs::create_dir_all(format!("{keep}/state")).expect("--keep DIR");
        std::fs::copy(
            dir.path().join("turkform.toml"),
            format!("{keep}/turkform.toml"),
        )
        .expect("copy the settings");
        std::fs::create_dir_all(format!("{keep}/campaigns")).expect("campaigns dir");
        std::fs::copy(&state_path, format!("{keep}/state/turkform.db")).expect("copy the state");
    }
    let html = std::fs::read_to_string(&page).expect("the report was written");
    // The page must hold the figures of every assignment, not a truncated pass.
    let answers = items * PER_HIT;
    assert!(
        html.contains(&format!("{answers} / {answers}")),
        "every answer is counted as submitted"
    );
    assert!(html.contains("mean agreement"), "agreement is shown");

    let figures = serde_json::json!({
        "bench": "report",
        "items": items,
        "assignments": answers,
        "state_bytes": db_bytes,
        "generate_s": (generate_s * 100.0).round() / 100.0,
        "report_wall_s": (wall * 1000.0).round() / 1000.0,
        "report_peak_rss_mb": (peak_kb as f64 / 1024.0 * 10.0).round() / 10.0,
        "page_bytes": html.len(),
        "target_wall_s": 2,
        "target_page_bytes": 5_000_000,
        "within_targets": wall < 2.0 && html.len() < 5_000_000,
    });
    println!("{figures}");
}
