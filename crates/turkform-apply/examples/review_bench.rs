//! Review and payments, measured: on an in-process simulator with latency and throttling,
//! creates HITs, has simulated workers submit `--approve` assignments, records them with a
//! refresh, then times one apply that approves them all and one that pays `--bonuses` bonuses.
//! Prints one JSON object of figures (the last stdout line).
//!
//! `cargo run --release -p turkform-apply --example review_bench -- --approve 6000 --bonuses 2000 --latency 30 --throttle-rps 200`
//!
//! The floor of each timed apply is (calls - burst) / rate: the simulator's bucket starts full
//! (`burst` = the rate, refilled before each timed run), and every call past it waits for a
//! token. "Calls" are the requests the simulator accepted (throttled ones are not processed);
//! calls per decision counts ApproveAssignment + GetAssignment, calls per bonus SendBonus +
//! ListBonusPayments.

use std::time::{Duration, Instant};

use turkform_apply::{ApplyOptions, ApplyReport, NoReporter, SystemClock};
use turkform_model::{BonusRow, DesiredCampaign, DesiredState, Money, Target, UnixTime};
use turkform_mturk::SdkMturk;
use turkform_plan::{Plan, PlanOptions};
use turkform_sim::{ControlClient, SimStats};
use turkform_state::{OpenMode, StateStore};

mod support;
use support::arg;

/// Assignments per HIT: under 10, so the 20 % fee tier, and few HITs to set up.
const PER_HIT: usize = 6;

fn campaign(hits: usize) -> DesiredCampaign {
    support::campaign(
        hits,
        &support::Bench {
            title: "Bench review",
            description: "Bench HITs to review",
            assignments: PER_HIT as u32,
            auto_approval_delay_secs: 3 * 86_400,
            crowd_form: true,
        },
    )
}

fn desired(c: &DesiredCampaign) -> DesiredState {
    support::desired(vec![c.clone()])
}

fn plan(store: &StateStore, d: &DesiredState) -> Plan {
    let recorded = store.load().expect("load");
    turkform_plan::plan(d, &recorded, UnixTime::now(), &PlanOptions::default())
}

/// One timed apply of `plan`, with the simulator's counters around it.
async fn timed(
    plan: &Plan,
    api: &SdkMturk,
    store: &mut StateStore,
    control: &ControlClient,
    options: &ApplyOptions,
) -> (ApplyReport, f64, SimStats, SimStats) {
    // Let the bucket refill, so the timed run starts as a fresh run would.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = control.stats().await.expect("stats");
    let started = Instant::now();
    let report = turkform_apply::apply(plan, api, store, &SystemClock, &NoReporter, options)
        .await
        .expect("apply");
    let wall = started.elapsed().as_secs_f64();
    let after = control.stats().await.expect("stats");
    (report, wall, before, after)
}

fn delta(before: &SimStats, after: &SimStats, ops: &[&str]) -> u64 {
    ops.iter()
        .map(|op| after.calls(op) - before.calls(op))
        .sum()
}

fn total(s: &SimStats) -> u64 {
    s.processed_calls()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let approve = arg(&args, "--approve", 6000.0) as usize;
    let bonuses = arg(&args, "--bonuses", 2000.0) as usize;
    let latency = arg(&args, "--latency", 30.0);
    let rps = arg(&args, "--throttle-rps", 200.0);
    let concurrency = arg(&args, "--concurrency", 16.0) as usize;
    assert!(
        bonuses <= approve,
        "bonuses are paid on approved assignments"
    );

    let (sim, api) = support::simulator(latency as u64, support::throttle(rps)).await;
    let control = ControlClient::new(&sim.endpoint_url()).expect("control client");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = StateStore::open(
        &dir.path().join("state.db"),
        Target::Sim,
        OpenMode::ReadWrite,
    )
    .expect("state");
    let mut options = ApplyOptions::new(Target::Sim);
    options.concurrency = concurrency;

    // Setup (not timed): the HITs, the work, and a refresh that records it.
    let mut c = campaign(approve.div_ceil(PER_HIT));
    let created = turkform_apply::apply(
        &plan(&store, &desired(&c)),
        &api,
        &mut store,
        &SystemClock,
        &NoReporter,
        &options,
    )
    .await
    .expect("apply");
    assert!(created.failed.is_empty(), "{:?}", created.failed);
    control
        .work(&serde_json::json!({"assignments_per_hit": PER_HIT, "answers": {"answer": "yes"}}))
        .await
        .expect("work");
    turkform_apply::refresh(&api, &mut store, &SystemClock, &NoReporter)
        .await
        .expect("refresh");
    let mut assignments = store.load().expect("load").assignments;
    assignments.sort_by(|a, b| a.assignment_id.cmp(&b.assignment_id));
    assignments.truncate(approve);
    assert_eq!(assignments.len(), approve, "every assignment is recorded");

    // 1. Approve them all (approve_after 0 s: everything submitted is due).
    c.review.decisions = assignments
        .iter()
        .enumerate()
        .map(|(i, a)| turkform_model::Decision {
            assignment_id: a.assignment_id.clone(),
            verdict: turkform_model::Verdict::Approve { feedback: None },
            file: "reviews/bench.csv".into(),
            line: i + 2,
        })
        .collect();
    let approvals = plan(&store, &desired(&c));
    assert_eq!(approvals.summary.approve, approve);
    turkform_apply::preflight(&approvals, &api)
        .await
        .expect("preflight");
    let (approved, approve_wall, before, after) =
        timed(&approvals, &api, &mut store, &control, &options).await;
    assert_eq!(approved.review.approved, approve, "{:?}", approved.failed);

    // 2. Pay bonuses on the first `bonuses` of them.
    c.review.bonuses = assignments
        .iter()
        .take(bonuses)
        .enumerate()
        .map(|(i, a)| BonusRow {
            assignment_id: a.assignment_id.clone(),
            worker_id: a.worker_id.clone(),
            amount: Money::from_cents(5),
            reason: "Careful work".into(),
            id: None,
            file: "bonuses/bench.csv".into(),
            line: i + 2,
        })
        .collect();
    let payments = plan(&store, &desired(&c));
    assert_eq!(payments.summary.bonus, bonuses);
    assert_eq!(payments.summary.approve, 0);
    turkform_apply::preflight(&payments, &api)
        .await
        .expect("preflight");
    let (paid, bonus_wall, b_before, b_after) =
        timed(&payments, &api, &mut store, &control, &options).await;
    assert_eq!(paid.review.bonuses_paid, bonuses, "{:?}", paid.failed);

    let burst = if rps > 0.0 { rps.max(1.0) } else { 0.0 };
    let floor = |calls: u64| {
        if rps > 0.0 {
            ((calls as f64 - burst) / rps).max(0.0)
        } else {
            0.0
        }
    };
    let approve_calls = total(&after) - total(&before);
    let decision_calls = delta(&before, &after, &["ApproveAssignment", "GetAssignment"]);
    let bonus_calls = total(&b_after) - total(&b_before);
    let payment_calls = delta(&b_before, &b_after, &["SendBonus", "ListBonusPayments"]);
    let (approve_floor, bonus_floor) = (floor(approve_calls), floor(bonus_calls));
    let figures = serde_json::json!({
        "bench": "review",
        "latency_ms": latency,
        "throttle_rps": rps,
        "burst": burst,
        "concurrency": concurrency,
        "approve": {
            "decisions": approve,
            "wall_s": round3(approve_wall),
            "accepted_calls": approve_calls,
            "floor_s": round3(approve_floor),
            "wall_over_floor": if approve_floor > 0.0 { round3(approve_wall / approve_floor) } else { 0.0 },
            "decision_calls": decision_calls,
            "calls_per_decision": round3(decision_calls as f64 / approve.max(1) as f64),
            "throttled": approved.throttled,
            "pending_intents_after": store.pending_intents().expect("pending").len(),
        },
        "bonuses": {
            "bonuses": bonuses,
            "wall_s": round3(bonus_wall),
            "accepted_calls": bonus_calls,
            "floor_s": round3(bonus_floor),
            "wall_over_floor": if bonus_floor > 0.0 { round3(bonus_wall / bonus_floor) } else { 0.0 },
            "payment_calls": payment_calls,
            "calls_per_bonus": round3(payment_calls as f64 / bonuses.max(1) as f64),
            "throttled": paid.throttled,
        },
    });
    println!("{figures}");
    sim.shutdown().await;
}
