//! `cargo run --release -p turkform-report --example bench_report -- 100000`
//!
//! Renders a report of one campaign with N items (3 answers each, one progress point per
//! answer, one spend point per HIT, 5,000 workers, an agreement per item) and prints one JSON
//! object: the input sizes, the page's bytes and the seconds `render` took.

use std::time::Instant;

use turkform_model::{Money, Target, UnixTime};
use turkform_report::{
    CampaignReport, ItemAgreement, ProgressPoint, ReportData, SpendPoint, StatusCounts,
    WorkerSummary, render,
};

fn main() {
    let items: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("the argument is a number of items"))
        .unwrap_or(100_000);
    let start = 1_796_083_200i64;
    let answers = items * 3;
    let progress: Vec<ProgressPoint> = (1..=answers)
        .map(|n| ProgressPoint {
            at: UnixTime(start + i64::try_from(n).unwrap() * 2),
            submitted: n,
            approved: Some(n * 9 / 10),
        })
        .collect();
    let spend: Vec<SpendPoint> = (1..=items)
        .map(|n| SpendPoint {
            at: UnixTime(start + i64::try_from(n).unwrap()),
            spent: Money::from_cents(i64::try_from(n).unwrap() * 36),
        })
        .collect();
    let workers: Vec<WorkerSummary> = (0..5_000u64)
        .map(|w| WorkerSummary {
            worker_id: format!("A{w:013}"),
            answers: answers / 5_000 + w % 7,
            approved: answers / 5_000,
            rejected: w % 3,
            known_answer_accuracy: Some((w % 100) as f64 / 100.0),
        })
        .collect();
    let agreement: Vec<ItemAgreement> = (0..items)
        .map(|i| ItemAgreement {
            item: format!("item-{i:07}"),
            agreement: ((i % 3) + 1) as f64 / 3.0,
        })
        .collect();
    let data = ReportData {
        generated_at: UnixTime(start + i64::try_from(answers).unwrap() * 2 + 60),
        target: Target::Sandbox,
        campaigns: vec![CampaignReport {
            name: "big".into(),
            title: "A campaign of many items".into(),
            items_total: items,
            items_complete: items,
            answers_wanted: answers + answers / 10,
            budget: Some(Money::from_cents(i64::try_from(items).unwrap() * 50)),
            progress,
            spend,
            statuses: StatusCounts {
                available: answers / 10,
                submitted: answers / 10,
                approved: answers * 8 / 10,
                rejected: answers / 10,
                ..StatusCounts::default()
            },
            workers,
            agreement,
            notes: vec![],
        }],
    };
    let started = Instant::now();
    let html = render(&data).expect("the report renders");
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"items\":{items},\"progress_points\":{answers},\"spend_points\":{items},\"workers\":5000,\"bytes\":{},\"seconds\":{seconds:.4}}}",
        html.len()
    );
}
