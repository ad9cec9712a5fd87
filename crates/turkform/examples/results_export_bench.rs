//! `turkform results` over a large state, measured: writes a state with `--assignments`
//! assignments (3 per HIT) directly through the state store, then runs the release binary's
//! `results` on it to a file under `/usr/bin/time`, and prints one JSON object of figures.
//!
//! `cargo build --release -p turkform && cargo run --release -p turkform --example results_export_bench -- --assignments 1000000 [--format csv|jsonl]`
//!
//! Targets: under 10 s and under 300 MB peak RSS for 1,000,000 assignments.
//!
//! With `--aggregate`, times `results --aggregate majority` and `--aggregate dawid-skene` on the
//! same state instead (every third assignment is rejected and not counted, so
//! `--assignments 150000` aggregates 100,000 answers), and prints their figures in the object.

use std::process::Command;
use std::time::Instant;

use turkform_model::{
    Annotation, AssignmentStatus, HitStatus, Money, PostedHit, RecordedHit, Target, UnixTime,
};
use turkform_state::{Batch, HitGroupSize, HitInput, OpenMode, StateStore};

#[path = "support/mod.rs"]
mod support;
use support::arg;

const PER_HIT: usize = 3;
const HITS_PER_BATCH: usize = 10_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let total: usize = arg(&args, "--assignments", "1000000")
        .parse()
        .expect("--assignments N");
    let format = arg(&args, "--format", "csv").to_owned();
    let binary = support::release_binary();
    let (dir, state_path) = support::project();
    let generated = Instant::now();
    let mut store = StateStore::open(&state_path, Target::Sim, OpenMode::ReadWrite).expect("state");
    let hits = total.div_ceil(PER_HIT);
    let base = 1_700_000_000;
    let mut made = 0usize;
    let mut rejected = 0usize;
    for start in (0..hits).step_by(HITS_PER_BATCH) {
        let mut batch = Batch::default();
        for h in start..(start + HITS_PER_BATCH).min(hits) {
            let hit_id = format!("3BENCHHIT{h:021}");
            let key = format!("item-{h:07}");
            let hit = RecordedHit {
                campaign: "bench".into(),
                item_key: key.clone(),
                generation: 1,
                hit_id: hit_id.clone(),
                hit_type_id: "3BENCHTYPE0000000000000000000".into(),
                hit_type_hash: "0".repeat(64),
                content_hash: "1".repeat(64),
                max_assignments: PER_HIT as u32,
                committed_cost: Money::from_cents(36),
                created_at: UnixTime(base),
                expiration: UnixTime(base + 604_800),
                status: HitStatus::Reviewable,
                assignments_available: 0,
                assignments_pending: 0,
                assignments_completed: 2,
                expired_by: None,
                paused_remaining_secs: None,
                drift: Vec::new(),
            };
            // What MTurk reported the HIT shows workers, as apply records it.
            batch.upsert_posted.push(PostedHit {
                hit_id: hit_id.clone(),
                hit_group_id: "3BENCHGROUP000000000000000000".into(),
                title: "Is this sentence positive, negative or neutral?".into(),
                description: "Read one sentence and pick its sentiment.".into(),
                keywords: "sentiment, text, labelling".into(),
                reward: Some(Money::from_cents(10)),
                assignment_duration_secs: Some(600),
                auto_approval_delay_secs: Some(259_200),
                requester_annotation: Some(Annotation::new("bench", &key, 1).render()),
                lifetime_secs: Some(604_800),
            });
            batch.hit_inputs.push(HitInput {
                hit_id: hit_id.clone(),
                row: vec![
                    ("id".into(), key.clone()),
                    (
                        "text".into(),
                        format!("Sentence number {h}, with a comma and \"quotes\""),
                    ),
                ],
            });
            for a in 0..PER_HIT {
                if made == total {
                    break;
                }
                made += 1;
                let submit = base + 600 + (h * 7 + a) as i64 % 86_400;
                let status = [
                    AssignmentStatus::Approved,
                    AssignmentStatus::Submitted,
                    AssignmentStatus::Rejected,
                ][a];
                rejected += usize::from(status == AssignmentStatus::Rejected);
                let label = ["positive", "negative", "neutral"][(h + a) % 3];
                let answer = format!(
                    "[{{\"sentiment\":{{\"label\":\"{label}\"}},\"comment\":\"item {h} worker {a}\"}}]"
                );
                batch.upsert_assignments.push(support::bench_assignment(
h,
a,
&hit_id,
&key,
status,
submit,
format!(
                        "<?xml version=\"1.0\" encoding=\"ASCII\"?><QuestionFormAnswers xmlns=\"http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/QuestionFormAnswers.xsd\"><Answer><QuestionIdentifier>taskAnswers</QuestionIdentifier><FreeText>{}</FreeText></Answer></QuestionFormAnswers>",
                        answer.replace('"', "&quot;")
                    ),
[
                        ("comment".to_owned(), format!("item {h} worker {a}")),
                        ("sentiment.label".to_owned(), label.to_owned()),
                    ]
                    .into(),
));
            }
            batch.upsert_hits.push(hit);
        }
        batch.hit_group_sizes.push(HitGroupSize {
            hit_group_id: "3BENCHGROUP000000000000000000".into(),
            similar_hits: u32::try_from(hits).unwrap_or(u32::MAX),
            counted_at: UnixTime(base + 86_400),
        });
        store.commit(&batch).expect("commit");
    }
    drop(store);
    let generate_s = generated.elapsed().as_secs_f64();
    let db_bytes = std::fs::metadata(&state_path).map_or(0, |m| m.len());

    if args.iter().any(|a| a == "--aggregate") {
        let mut figures = serde_json::json!({
            "bench": "results_aggregate",
            "assignments": total,
            "answers_counted": total - rejected,
            "items": hits,
            "state_bytes": db_bytes,
            "generate_s": (generate_s * 100.0).round() / 100.0,
        });
        for method in ["majority", "dawid-skene"] {
            let file = dir.path().join(format!("{method}.csv"));
            let (wall, peak_kb) = support::timed(
                &binary,
                dir.path(),
                &[
                    "results",
                    "--aggregate",
                    method,
                    "--output",
                    file.to_str().expect("utf-8"),
                ],
            );
            let rows = std::fs::read(&file)
                .expect("results file")
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                - 1;
            assert_eq!(rows, hits, "one row per item");
            let key = method.replace('-', "_");
            figures[format!("{key}_wall_s")] = serde_json::json!((wall * 1000.0).round() / 1000.0);
            figures[format!("{key}_peak_rss_mb")] =
                serde_json::json!((peak_kb as f64 / 1024.0 * 10.0).round() / 10.0);
            figures[format!("{key}_rows")] = serde_json::json!(rows);
        }
        println!("{figures}");
        return;
    }

    // A real file: `--output /dev/null` once renamed the temporary file over the device.
    let export = dir.path().join("export.out");
    let (wall, peak_kb, cpu) = support::timed_cpu(
        &binary,
        dir.path(),
        &[
            "results",
            "--format",
            &format,
            "--output",
            export.to_str().expect("utf-8"),
        ],
    );

    // Count what was written, once more, to a file (a row count proves the export is whole).
    let file = dir.path().join("out");
    let counted = Command::new(&binary)
        .arg("-C")
        .arg(dir.path())
        .args(["results", "--format", "jsonl", "--output"])
        .arg(&file)
        .status()
        .expect("run turkform results");
    assert!(counted.success());
    let rows = std::fs::read(&file)
        .expect("results file")
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    assert_eq!(rows, total, "one row per assignment");

    let figures = serde_json::json!({
        "bench": "results_export",
        "format": format,
        "assignments": total,
        "hits": hits,
        "state_bytes": db_bytes,
        "generate_s": (generate_s * 100.0).round() / 100.0,
        "results_wall_s": (wall * 1000.0).round() / 1000.0,
        "results_cpu_s": (cpu * 1000.0).round() / 1000.0,
        "results_peak_rss_mb": (peak_kb as f64 / 1024.0 * 10.0).round() / 10.0,
        "target_wall_s": 10,
        "target_peak_rss_mb": 300,
        "rows": rows,
    });
    println!("{figures}");
}
