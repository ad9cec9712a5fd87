//! Applies N creates against an in-process simulator with latency and throttling, and prints
//! the wall time, API calls per HIT and throttles.
//!
//! `cargo run --release -p turkform-apply --example apply_bench -- --items 2000 --latency 30 --throttle-rps 200 [--concurrency 16]`
//!
//! The physical floor is items / throttle-rps seconds (the simulator's bucket starts full, which
//! buys one second of burst).

use std::time::{Duration, Instant};

use turkform_apply::{ApplyOptions, NoReporter, SystemClock};
use turkform_model::{
    CampaignStatus, DesiredCampaign, DesiredItem, DesiredState, HitTypeSpec, Lifetime, Money,
    Question, Target,
};
use turkform_mturk::{ConnectOptions, SdkMturk};
use turkform_plan::PlanOptions;
use turkform_sim::SimConfig;
use turkform_state::{OpenMode, StateStore};

fn arg(args: &[String], name: &str, default: f64) -> f64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let items = arg(&args, "--items", 2000.0) as usize;
    let latency = arg(&args, "--latency", 30.0);
    let rps = arg(&args, "--throttle-rps", 200.0);
    let concurrency = arg(&args, "--concurrency", 16.0) as usize;

    let sim = turkform_sim::start(
        "127.0.0.1:0",
        SimConfig {
            latency: Duration::from_millis(latency as u64),
            throttle_rps: (rps > 0.0).then_some(rps),
            ..SimConfig::default()
        },
    )
    .await
    .expect("simulator starts");
    let api = SdkMturk::connect(&ConnectOptions::simulator(sim.endpoint_url()))
        .await
        .expect("client");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = StateStore::open(
        &dir.path().join("state.db"),
        Target::Sim,
        OpenMode::ReadWrite,
    )
    .expect("state");

    let hit_type = HitTypeSpec {
        title: "Bench".into(),
        description: "Bench HITs".into(),
        keywords: vec![],
        reward: Money::from_cents(1),
        assignment_duration_secs: 600,
        auto_approval_delay_secs: 0,
        qualifications: vec![],
    };
    let desired = DesiredState {
        target: Target::Sim,
        campaigns: vec![DesiredCampaign {
            name: "bench".into(),
            file: "campaigns/bench.toml".into(),
            status: CampaignStatus::Running,
            hit_type_hash: hit_type.definition_hash(),
            hit_type,
            assignments: 1,
            lifetime: Lifetime::Duration(86_400),
            max_spend: None,
            review: Default::default(),
            items: (0..items)
                .map(|i| {
                    let question = Question::Xml {
                        xml: format!(
                            "<HTMLQuestion xmlns=\"http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/HTMLQuestion.xsd\"><HTMLContent><![CDATA[<p>{i}</p>]]></HTMLContent><FrameHeight>0</FrameHeight></HTMLQuestion>"
                        ),
                    };
                    DesiredItem {
                        key: format!("item-{i:05}"),
                        content_hash: question.content_hash(),
                        question,
                        row: vec![("id".to_owned(), format!("item-{i:05}"))],
                    }
                })
                .collect(),
        }],
        qualification_types: vec![],
        inputs_digest: String::new(),
        workers: Default::default(),
    };
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
