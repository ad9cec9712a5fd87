//! A fixed two-campaign report used by the snapshot and browser tests.

#![allow(dead_code)]

use turkform_model::{Money, Target, UnixTime};
use turkform_report::{
    CampaignReport, ItemAgreement, ProgressPoint, ReportData, SpendPoint, StatusCounts,
    WorkerSummary,
};

/// 2026-12-01T00:00:00Z: fixed, so nothing depends on today's date.
pub const START: i64 = 1_796_083_200;

pub fn fixture() -> ReportData {
    let mut progress = Vec::new();
    let mut spend = Vec::new();
    // 36 hours of work, an answer every 3 minutes at first, then faster.
    let mut submitted = 0u64;
    for step in 0..=720 {
        let at = START + step * 180;
        submitted += if step < 360 { 1 } else { 2 };
        progress.push(ProgressPoint {
            at: UnixTime(at),
            submitted,
            approved: Some(submitted.saturating_sub(40) * 9 / 10),
        });
        if step % 24 == 0 {
            spend.push(SpendPoint {
                at: UnixTime(at),
                spent: Money::from_cents(i64::try_from(submitted).unwrap() * 15),
            });
        }
    }
    let workers = (0..30)
        .map(|w| WorkerSummary {
            worker_id: format!("A{:013}", 1_000 + w * 37),
            answers: 200 - w * 6,
            approved: 190 - w * 6,
            rejected: if w % 4 == 0 { 5 } else { 1 },
            known_answer_accuracy: (w % 3 != 0).then_some(0.5 + f64::from(w as u32 % 10) / 20.0),
        })
        .collect();
    let agreement = (0..400)
        .map(|i| ItemAgreement {
            item: format!("img-{i:04}"),
            agreement: f64::from((i * 7) % 6 + 1) / 6.0,
        })
        .collect();
    ReportData {
        generated_at: UnixTime(START + 721 * 180),
        target: Target::Sandbox,
        campaigns: vec![
            CampaignReport {
                name: "birds-2026".into(),
                title: "Which bird is in the picture?".into(),
                items_total: 600,
                items_complete: 310,
                answers_wanted: 1_800,
                budget: Some(Money::from_cents(30_000)),
                progress,
                spend,
                statuses: StatusCounts {
                    available: 620,
                    pending: 99,
                    submitted: 120,
                    approved: 921,
                    rejected: 40,
                    decided_unsplit: 0,
                },
                workers,
                agreement,
                notes: vec![],
            },
            CampaignReport {
                name: "sentiment-pilot".into(),
                title: "Is this review <positive> or \"negative\"?".into(),
                items_total: 50,
                items_complete: 0,
                answers_wanted: 150,
                budget: None,
                progress: vec![],
                spend: vec![SpendPoint {
                    at: UnixTime(START + 3600),
                    spent: Money::from_cents(1_800),
                }],
                statuses: StatusCounts {
                    available: 150,
                    ..StatusCounts::default()
                },
                workers: vec![],
                agreement: vec![],
                notes: vec!["approved and rejected are not told apart yet".into()],
            },
        ],
    }
}
