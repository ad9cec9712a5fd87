//! The guarantees of DESIGN.md §6 under abuse: SIGKILL at random moments, expired tokens,
//! concurrent runs, refused plans, and secrets that must never leak.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::common::*;

/// A tiny seeded generator: reproducible kill moments without a dependency.
struct Lcg(u64);
impl Lcg {
    fn next_below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn assert_exactly_one_hit_per_item(sim: &Sim, items: usize) {
    let hits = sim.list_hits();
    let annotations: Vec<_> = hits
        .iter()
        .filter_map(|h| h.requester_annotation.clone())
        .collect();
    let unique: HashSet<_> = annotations.iter().collect();
    assert_eq!(unique.len(), annotations.len(), "a HIT was created twice");
    assert_eq!(hits.len(), items, "exactly one HIT per item");
}

/// Intents journaled but not finished in the project's state (0 when there is no state yet),
/// on whichever backend the project uses.
fn pending_creates(project: &Project) -> usize {
    let location = match &project.state_url {
        Some(url) => std::path::PathBuf::from(url),
        None if project.state_path().exists() => project.state_path(),
        None => return 0,
    };
    turkform_state::StateStore::open(
        &location,
        turkform_model::Target::Sim,
        turkform_state::OpenMode::ReadOnly,
    )
    .and_then(|store| store.pending_intents())
    .map(|intents| intents.len())
    .unwrap_or_else(|e| panic!("the state after a kill is unreadable: {e}"))
}

fn state_lines(project: &Project, sim: &Sim) -> usize {
    let out = project.run(sim, &["state", "list"]);
    assert_exit(&out, 0);
    stdout(&out).lines().count()
}

fn sigkill_at_twenty_random_moments_never_duplicates_or_loses_a_hit(backend: StateBackend) {
    let sim = Sim::start(turkform_sim::SimConfig {
        latency: Duration::from_millis(5),
        ..turkform_sim::SimConfig::default()
    });
    let project = Project::on(backend);
    // Each kill lets up to 10 more creates start plus the 16 in flight finish on MTurk: 20
    // kills stay part-way through 600 items (300 ran out on the faster PostgreSQL state).
    const ITEMS: usize = 600;
    project.campaign("crash", ITEMS, &CampaignOptions::default());
    let mut rng = Lcg(20_261_122);
    // What each kill left behind: creates journaled but never answered (in flight at the kill),
    // and HITs on MTurk part-way through the campaign.
    let mut kills_in_flight = 0;
    let mut kills_part_way = 0;
    for _ in 0..20 {
        let mut child = project
            .command(&sim, &["apply", "--auto-approve"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn apply");
        // A random moment in the stream of creates (1 to 10 more HITs than before), so that
        // every kill lands while creates are under way, not before they start or after the end
        // (a random wall-clock delay did, every time).
        let created_before = sim.calls("CreateHITWithHITType");
        let target = created_before + 1 + rng.next_below(10);
        let deadline = Instant::now() + Duration::from_secs(60);
        while sim.calls("CreateHITWithHITType") < target {
            assert!(Instant::now() < deadline, "the apply made no progress");
            assert!(
                child.try_wait().unwrap().is_none(),
                "the apply ended before it could be killed"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // SIGKILL: no destructor, no signal handler, no flush.
        let _ = child.kill();
        let _ = child.wait();
        if pending_creates(&project) > 0 {
            kills_in_flight += 1;
        }
        let on_mturk = sim.sim_stats().hits;
        if on_mturk > 0 && on_mturk < ITEMS as u64 {
            kills_part_way += 1;
        }
    }
    assert!(
        kills_in_flight > 0,
        "no kill landed while creates were in flight ({kills_part_way} part-way)"
    );
    assert!(kills_part_way > 0, "no kill landed part-way through");
    let out = project.run(&sim, &["apply", "--auto-approve"]);
    assert_exit(&out, 0);
    assert_exactly_one_hit_per_item(&sim, ITEMS);
    assert_eq!(state_lines(&project, &sim), ITEMS, "every HIT is in state");
    let again = project.run(&sim, &["plan", "--detailed-exitcode"]);
    assert_exit(&again, 0);
}

fn hits_whose_tokens_expired_are_adopted_by_annotation_not_duplicated(backend: StateBackend) {
    let sim = Sim::start(turkform_sim::SimConfig {
        latency: Duration::from_millis(20),
        ..turkform_sim::SimConfig::default()
    });
    let project = Project::on(backend);
    project.campaign("tokens", 40, &CampaignOptions::default());
    // Kill during the creates until some, but not all, HITs exist.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut child = project
            .command(&sim, &["apply", "--auto-approve"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn apply");
        let created_before = sim.calls("CreateHITWithHITType");
        while sim.calls("CreateHITWithHITType") < created_before + 5 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill();
        let _ = child.wait();
        let on_mturk = sim.list_hits().len();
        // Part-way, with creates in flight at the kill: the case the adoption must handle.
        if on_mturk > 0 && on_mturk < 40 && pending_creates(&project) > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "could not interrupt the apply mid-way"
        );
    }
    // 25 hours later MTurk has forgotten every token.
    sim.advance_clock(25 * 3600);
    let out = project.run(&sim, &["apply", "--auto-approve"]);
    assert_exit(&out, 0);
    assert_exactly_one_hit_per_item(&sim, 40);
    assert_eq!(state_lines(&project, &sim), 40);
}

fn two_concurrent_applies_never_duplicate_and_the_loser_names_the_holder(backend: StateBackend) {
    let sim = Sim::start(turkform_sim::SimConfig {
        latency: Duration::from_millis(10),
        ..turkform_sim::SimConfig::default()
    });
    let project = Project::on(backend);
    project.campaign("race", 80, &CampaignOptions::default());
    let first = project
        .command(&sim, &["apply", "--auto-approve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let second = project
        .command(&sim, &["apply", "--auto-approve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let a = first.wait_with_output().unwrap();
    let b = second.wait_with_output().unwrap();
    let codes = [a.status.code(), b.status.code()];
    assert!(
        codes.contains(&Some(0)),
        "one apply proceeds: {codes:?}\n{}\n{}",
        stderr(&a),
        stderr(&b)
    );
    for out in [&a, &b] {
        if out.status.code() != Some(0) {
            assert_exit(out, 1);
            let err = stderr(out);
            assert!(
                err.contains("lock") && err.contains("pid"),
                "names the holder: {err}"
            );
            // A file lock's record can outlive a holder on another host; the server drops a
            // PostgreSQL lock with its holder's session, so there is nothing to force.
            match backend {
                StateBackend::Sqlite => {
                    assert!(err.contains("`turkform state force-unlock`"), "{err}")
                }
                StateBackend::Postgres => {
                    assert!(!err.contains("force-unlock"), "{err}");
                    assert!(err.contains("pg_terminate_backend"), "{err}");
                }
            }
        }
    }
    // Whoever lost, a re-run finishes the job; never a duplicate.
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    assert_exactly_one_hit_per_item(&sim, 80);

    // With --lock-timeout the second waits for the first instead of failing.
    project.campaign("race", 120, &CampaignOptions::default());
    let first = project.command(&sim, &["apply", "--auto-approve"]).output();
    let second = project
        .command(&sim, &["apply", "--auto-approve", "--lock-timeout=60s"])
        .output();
    assert_exit(&first.unwrap(), 0);
    assert_exit(&second.unwrap(), 0);
    assert_exactly_one_hit_per_item(&sim, 120);
}

#[test]
fn refused_plans_make_no_mutating_call() {
    let sim = Sim::plain();
    let project = Project::new();

    // Over budget: 10 HITs x 3 x $0.12 = $3.60 > $1.00.
    project.campaign(
        "budget",
        10,
        &CampaignOptions {
            max_spend: Some("1.00"),
            ..CampaignOptions::default()
        },
    );
    let out = project.run(&sim, &["apply", "--auto-approve"]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("budget"), "{}", stderr(&out));
    assert_eq!(sim.mutating_calls(), 0);
    project.remove("campaigns/budget.toml");

    // More than the account holds: 4 HITs x 3 x ($900 + $180 fee) = $12,960 > $10,000.
    project.campaign(
        "rich",
        4,
        &CampaignOptions {
            reward: "900.00",
            ..CampaignOptions::default()
        },
    );
    let out = project.run(&sim, &["apply", "--auto-approve"]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("balance"), "{}", stderr(&out));
    assert_eq!(sim.mutating_calls(), 0);
    project.remove("campaigns/rich.toml");

    // A saved plan goes stale once state changes.
    project.campaign("saved", 2, &CampaignOptions::default());
    let plan_file = project.path().join("saved.plan.json");
    let plan_file = plan_file.to_str().unwrap();
    assert_exit(&project.run(&sim, &["plan", "--out", plan_file]), 0);
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    let before = sim.mutating_calls();
    let out = project.run(&sim, &["apply", "--auto-approve", plan_file]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("stale"), "{}", stderr(&out));
    assert_eq!(sim.mutating_calls(), before);

    // A plan made for one target cannot be applied to another.
    project.campaign("saved", 3, &CampaignOptions::default());
    assert_exit(&project.run(&sim, &["plan", "--out", plan_file]), 0);
    let out = project.run(
        &sim,
        &["--target", "sandbox", "apply", "--auto-approve", plan_file],
    );
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("target"), "{}", stderr(&out));
    assert_eq!(sim.mutating_calls(), before);
}

#[test]
fn production_needs_an_explicit_target_and_confirmation() {
    let sim = Sim::plain();
    let project = Project::new();
    project.write("turkform.toml", "target = \"production\"\n");
    project.campaign("prod", 1, &CampaignOptions::default());
    let out = project.run(&sim, &["apply", "--auto-approve"]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("--target production"),
        "{}",
        stderr(&out)
    );
    // Said explicitly but without --auto-approve and no terminal to type into: refused.
    let out = project.run(&sim, &["apply", "--target", "production"]);
    assert_exit(&out, 1);
    assert_eq!(sim.mutating_calls(), 0);
}

#[test]
fn credentials_never_appear_in_output_logs_state_or_plans() {
    const SECRET: &str = "leaky-secret-DO-NOT-PRINT-7f3a";
    let sim = Sim::start(turkform_sim::SimConfig {
        access_key_id: "AKIALEAKTEST".to_owned(),
        secret_access_key: SECRET.to_owned(),
        ..turkform_sim::SimConfig::default()
    });
    let project = Project::new();
    project.campaign("secret", 3, &CampaignOptions::default());
    let plan_file = project.path().join("p.json");
    let mut outputs = Vec::new();
    for args in [
        vec!["-vvv", "plan", "--out", plan_file.to_str().unwrap()],
        vec![
            "-vvv",
            "apply",
            "--auto-approve",
            plan_file.to_str().unwrap(),
        ],
        vec!["-vvv", "refresh"],
        vec!["-vvv", "status"],
    ] {
        let out = project
            .command(&sim, &args)
            .env("AWS_ACCESS_KEY_ID", "AKIALEAKTEST")
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("RUST_LOG", "trace")
            .output()
            .unwrap();
        assert_exit(&out, 0);
        outputs.push(out);
    }
    assert_eq!(sim.stats()["hits"], 3, "the secret did work");
    for out in &outputs {
        assert!(!stdout(out).contains(SECRET));
        assert!(!stderr(out).contains(SECRET));
    }
    for entry in walk(project.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        let hay = String::from_utf8_lossy(&bytes);
        assert!(
            !hay.contains(SECRET),
            "secret written to {}",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn ctrl_c_finishes_and_records_the_calls_in_flight_then_exits_1() {
    signal_mid_apply_finishes_and_records_the_calls_in_flight("-INT", "Ctrl-C");
}

/// `kill SIGNAL` an apply of 200 items once 20 creates were sent: it exits 1 saying it was
/// interrupted by `shown`, part-way; every HIT that reached MTurk is in state, nothing is left
/// pending or unknown, and the next apply creates exactly the rest. Shared by the Ctrl-C test
/// here and the SIGTERM test of `cli_trust_e2e`.
pub fn signal_mid_apply_finishes_and_records_the_calls_in_flight(signal: &str, shown: &str) {
    let sim = Sim::start(turkform_sim::SimConfig {
        latency: Duration::from_millis(20),
        ..turkform_sim::SimConfig::default()
    });
    let project = Project::new();
    project.campaign("interrupt", 200, &CampaignOptions::default());
    let child = project
        .command(&sim, &["apply", "--auto-approve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.calls("CreateHITWithHITType") < 20 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains(&format!("interrupted ({shown})")),
        "{}",
        stderr(&out)
    );
    let on_mturk = sim.list_hits().len();
    assert!(
        on_mturk > 0 && on_mturk < 200,
        "stopped part-way: {on_mturk}"
    );
    // Everything that reached MTurk is in state: nothing pending, nothing unknown.
    assert_eq!(state_lines(&project, &sim), on_mturk);
    let plan = project.run(&sim, &["plan", "--refresh=false"]);
    assert_exit(&plan, 0);
    assert!(!stderr(&plan).contains("pending"), "{}", stderr(&plan));
    let plan = project.run(&sim, &["plan", "--json", "--refresh=false"]);
    assert_exit(&plan, 0);
    let plan: serde_json::Value = serde_json::from_str(&stdout(&plan)).unwrap();
    assert_eq!(plan["summary"]["adopt"], 0);
    assert_eq!(
        plan["summary"]["create"].as_u64().unwrap() as usize,
        200 - on_mturk
    );
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    assert_exactly_one_hit_per_item(&sim, 200);
    assert_eq!(sim.calls("CreateHITWithHITType") as usize, 200);
}

crate::on_both_backends!(
    sigkill_at_twenty_random_moments_never_duplicates_or_loses_a_hit,
    hits_whose_tokens_expired_are_adopted_by_annotation_not_duplicated,
    two_concurrent_applies_never_duplicate_and_the_loser_names_the_holder,
);
