//! Times the planner on a no-op plan: campaigns of 1k, 10k and 100k items, every item with a
//! recorded HIT that matches it. Run with
//! `cargo run --release -p turkform-plan --example bench_plan`.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use turkform_model::{
    CampaignStatus, DesiredCampaign, DesiredItem, DesiredState, HitStatus, HitTypeSpec, Lifetime,
    Money, Question, RecordedHit, RecordedHitType, RecordedState, Target, UnixTime,
};
use turkform_plan::{PlanOptions, plan};

const NOW: UnixTime = UnixTime(1_800_000_000);

fn states(items: usize) -> (DesiredState, RecordedState) {
    let hit_type = HitTypeSpec {
        title: "Label a photo".to_owned(),
        description: "Tick the objects".to_owned(),
        keywords: vec!["image".to_owned()],
        reward: Money::from_cents(12),
        assignment_duration_secs: 600,
        auto_approval_delay_secs: 259_200,
        qualifications: Vec::new(),
    };
    let hit_type_hash = hit_type.definition_hash();
    let mut desired_items = Vec::with_capacity(items);
    let mut hits = Vec::with_capacity(items);
    for i in 0..items {
        let key = format!("img-{i:07}");
        let question = Question::Xml {
            xml: format!(
                "<HTMLQuestion><HTMLContent><![CDATA[<img src=\"https://example.org/{key}.jpg\">]]></HTMLContent><FrameHeight>0</FrameHeight></HTMLQuestion>"
            ),
        };
        let content_hash = question.content_hash();
        hits.push(RecordedHit {
            campaign: "street".to_owned(),
            item_key: key.clone(),
            generation: 1,
            hit_id: format!("{i:030}"),
            hit_type_id: "TYPE1".to_owned(),
            hit_type_hash: hit_type_hash.clone(),
            content_hash: content_hash.clone(),
            max_assignments: 3,
            committed_cost: Money::from_cents(42),
            created_at: UnixTime(NOW.0 - 3600),
            expiration: UnixTime(NOW.0 - 3600 + 7 * 86_400),
            status: HitStatus::Assignable,
            assignments_available: 3,
            assignments_pending: 0,
            assignments_completed: 0,
            expired_by: None,
            paused_remaining_secs: None,
            drift: Vec::new(),
        });
        desired_items.push(DesiredItem {
            row: vec![("id".to_owned(), key.clone())],
            key,
            question,
            content_hash,
        });
    }
    let desired = DesiredState {
        target: Target::Sim,
        campaigns: vec![DesiredCampaign {
            name: "street".to_owned(),
            file: PathBuf::from("campaigns/street.toml"),
            status: CampaignStatus::Running,
            hit_type,
            hit_type_hash: hit_type_hash.clone(),
            assignments: 3,
            lifetime: Lifetime::Duration(7 * 86_400),
            max_spend: None,
            review: Default::default(),
            items: desired_items,
        }],
        qualification_types: Vec::new(),
        inputs_digest: String::new(),
        workers: Default::default(),
    };
    let recorded = RecordedState {
        target: Some(Target::Sim),
        lineage: "bench".to_owned(),
        serial: 1,
        hit_types: vec![RecordedHitType {
            definition_hash: hit_type_hash,
            hit_type_id: "TYPE1".to_owned(),
        }],
        hits,
        ..RecordedState::default()
    };
    (desired, recorded)
}

/// The best of a few runs: the planner's own time, not the machine's noise.
fn time_plan(desired: &DesiredState, recorded: &RecordedState) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let p = plan(desired, recorded, NOW, &PlanOptions::default());
        let elapsed = start.elapsed();
        assert!(!p.has_changes(), "the bench states must plan nothing");
        best = best.min(elapsed);
    }
    best
}

fn main() {
    let mut times = Vec::new();
    for items in [1_000, 10_000, 100_000] {
        let (desired, recorded) = states(items);
        let t = time_plan(&desired, &recorded);
        println!("{items:>7} items: {:>8.2} ms", t.as_secs_f64() * 1e3);
        times.push(t);
    }
    println!(
        "10k -> 100k ratio: {:.1}x",
        times[2].as_secs_f64() / times[1].as_secs_f64()
    );
}
