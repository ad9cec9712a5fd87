//! Review and payments through the CLI, end to end: answers come back by `refresh`, are exported
//! by `turkform results`, marked with Python's `csv` module as a requester marks the web UI's
//! batch CSV, and used as the campaign's decisions file beside a bonuses file. Ground truth is
//! the simulator's: assignment statuses and feedback, ListBonusPayments, the account balance and
//! the mutating-call counters.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::common::{CampaignOptions, Project, Sim, assert_exit, stdout};

/// Every assignment on the simulator by id: (status, worker, feedback).
fn sdk_assignments(sim: &Sim) -> BTreeMap<String, (String, String, Option<String>)> {
    let client = sim.sdk();
    let hits = sim.list_hits();
    sim.block_on(async move {
        let mut all = BTreeMap::new();
        for hit in hits {
            let page = client
                .list_assignments_for_hit()
                .hit_id(hit.hit_id().unwrap())
                .max_results(100)
                .send()
                .await
                .expect("ListAssignmentsForHIT");
            for a in page.assignments.unwrap_or_default() {
                all.insert(
                    a.assignment_id().unwrap().to_owned(),
                    (
                        a.assignment_status().unwrap().as_str().to_owned(),
                        a.worker_id().unwrap().to_owned(),
                        a.requester_feedback().map(str::to_owned),
                    ),
                );
            }
        }
        all
    })
}

fn bonus_payments(sim: &Sim, assignment_id: &str) -> Vec<(String, String)> {
    let client = sim.sdk();
    let id = assignment_id.to_owned();
    sim.block_on(async move {
        client
            .list_bonus_payments()
            .assignment_id(id)
            .send()
            .await
            .expect("ListBonusPayments")
            .bonus_payments
            .unwrap_or_default()
            .into_iter()
            .map(|b| {
                (
                    b.worker_id.unwrap_or_default(),
                    b.bonus_amount.unwrap_or_default(),
                )
            })
            .collect()
    })
}

/// Marks an exported results CSV the way the web UI's is marked, with Python's `csv` module:
/// `x` in Approve for `approve`, the reason in Reject for `reject`; every other row untouched.
fn mark_with_python(
    export: &std::path::Path,
    out: &std::path::Path,
    approve: &[&str],
    reject: &[&str],
) {
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import csv, sys\n\
             approve = set(sys.argv[3].split(',')); reject = set(sys.argv[4].split(','))\n\
             with open(sys.argv[1], newline='', encoding='utf-8') as f:\n\
             \x20   rows = list(csv.DictReader(f))\n\
             with open(sys.argv[2], 'w', newline='', encoding='utf-8') as f:\n\
             \x20   w = csv.DictWriter(f, fieldnames=list(rows[0].keys()), quoting=csv.QUOTE_ALL)\n\
             \x20   w.writeheader()\n\
             \x20   for r in rows:\n\
             \x20       if r['AssignmentId'] in approve: r['Approve'] = 'x'\n\
             \x20       if r['AssignmentId'] in reject: r['Reject'] = 'Wrong label, see the instructions'\n\
             \x20       w.writerow(r)",
        )
        .arg(export)
        .arg(out)
        .arg(approve.join(","))
        .arg(reject.join(","))
        .status()
        .expect("python3");
    assert!(status.success());
}

#[test]
fn a_marked_results_export_and_a_bonuses_file_reach_mturk_exactly_once() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign(
        "rev",
        3,
        &CampaignOptions {
            assignments: 2,
            ..CampaignOptions::default()
        },
    );
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    sim.work(&json!({"assignments_per_hit": 2, "answers": {"answer": "cat"}}));
    assert_exit(&project.run(&sim, &["refresh"]), 0);

    let export = project.path().join("results.csv");
    assert_exit(
        &project.run(&sim, &["results", "--output", export.to_str().unwrap()]),
        0,
    );
    let before = sdk_assignments(&sim);
    assert_eq!(before.len(), 6);
    let ids: Vec<&String> = before.keys().collect();
    let (approve, reject) = ([ids[0].as_str(), ids[1].as_str()], [ids[2].as_str()]);
    std::fs::create_dir_all(project.path().join("reviews")).unwrap();
    mark_with_python(
        &export,
        &project.path().join("reviews/rev.csv"),
        &approve,
        &reject,
    );
    let bonused = ids[0].as_str();
    let worker = &before[bonused].1;
    project.write(
        "bonuses/rev.csv",
        &format!("AssignmentId,WorkerId,Amount,Reason\n{bonused},{worker},0.25,Careful work\n"),
    );
    let campaign = std::fs::read_to_string(project.path().join("campaigns/rev.toml")).unwrap();
    project.write(
        "campaigns/rev.toml",
        &format!(
            "{campaign}\n[review]\ndecisions = \"../reviews/rev.csv\"\n\n[bonuses]\nsource = \"../bonuses/rev.csv\"\n"
        ),
    );

    let plan = project.run(&sim, &["plan", "--json"]);
    assert_exit(&plan, 0);
    let plan: Value = serde_json::from_str(&stdout(&plan)).expect("plan JSON");
    let review = plan["campaigns"][0]["review"].to_string();
    for id in approve.iter().chain(reject.iter()) {
        assert!(
            review.contains(id),
            "{id} is in the plan's review: {review}"
        );
    }

    let balance = sim.balance_cents();
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    let after = sdk_assignments(&sim);
    for id in approve {
        assert_eq!(after[id].0, "Approved", "{id}");
    }
    assert_eq!(after[reject[0]].0, "Rejected");
    assert_eq!(
        after[reject[0]].2.as_deref(),
        Some("Wrong label, see the instructions")
    );
    for id in &ids[3..] {
        assert_eq!(after[id.as_str()].0, "Submitted", "{id} was left alone");
    }
    assert_eq!(
        bonus_payments(&sim, bonused),
        [(worker.clone(), "0.25".to_owned())]
    );
    // Approvals move money committed at creation; only the bonus and its fee leave the balance.
    assert_eq!(balance - sim.balance_cents(), 25 + 5);

    // A re-run (a cron job) changes nothing on MTurk, and the bonus is never paid again.
    let mutating = sim.mutating_calls();
    assert_exit(&project.run(&sim, &["refresh"]), 0);
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    assert_eq!(sim.mutating_calls(), mutating);
    assert_eq!(bonus_payments(&sim, bonused).len(), 1);

    let status = project.run(&sim, &["status", "--json"]);
    assert_exit(&status, 0);
    let status: Value = serde_json::from_str(&stdout(&status)).unwrap();
    let row = &status["campaigns"][0];
    assert_eq!(row["approved"], 2, "{row}");
    assert_eq!(row["rejected"], 1, "{row}");
    assert_eq!(row["awaiting_review"], 3, "{row}");
    assert_eq!(row["bonuses_paid"], json!(30), "{row}");
}

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

/// SendBonus intents journaled but never resolved in the project's state.
fn pending_bonus_intents(project: &Project) -> usize {
    let location = match &project.state_url {
        Some(url) => std::path::PathBuf::from(url),
        None => project.state_path(),
    };
    turkform_state::StateStore::open(
        &location,
        turkform_model::Target::Sim,
        turkform_state::OpenMode::ReadOnly,
    )
    .and_then(|store| store.pending_intents())
    .map(|intents| {
        intents
            .iter()
            .filter(|i| i.kind == turkform_state::IntentKind::SendBonus)
            .count()
    })
    .unwrap_or_else(|e| panic!("the state after a kill is unreadable: {e}"))
}

/// Every bonus the simulator paid on `assignment_id`, as (worker, amount in cents), sorted.
fn paid_cents(sim: &Sim, assignment_id: &str) -> Vec<(String, i64)> {
    let mut paid: Vec<(String, i64)> = bonus_payments(sim, assignment_id)
        .into_iter()
        .map(|(worker, amount)| {
            let (whole, frac) = amount.split_once('.').unwrap_or((&amount, "0"));
            let cents = whole.parse::<i64>().unwrap() * 100
                + format!("{frac:0<2}")[..2].parse::<i64>().unwrap();
            (worker, cents)
        })
        .collect();
    paid.sort();
    paid
}

/// MTurk's fee on a bonus, computed here and not by turkform: 20 % half up, at least a cent.
fn bonus_fee_cents(cents: i64) -> i64 {
    ((cents * 20 + 50) / 100).max(1)
}

fn sigkill_at_ten_moments_during_300_bonuses_pays_every_row_exactly_once(
    backend: crate::common::StateBackend,
) {
    let sim = Sim::start(turkform_sim::SimConfig {
        latency: std::time::Duration::from_millis(5),
        ..turkform_sim::SimConfig::default()
    });
    let project = Project::on(backend);
    project.campaign(
        "pay",
        100,
        &CampaignOptions {
            assignments: 2,
            ..CampaignOptions::default()
        },
    );
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    sim.work(&json!({"assignments_per_hit": 2, "answers": {"answer": "cat"}}));
    assert_exit(&project.run(&sim, &["refresh"]), 0);
    let assignments = sdk_assignments(&sim);
    assert_eq!(assignments.len(), 200);

    // 300 rows: one bonus on each of 100 assignments, two (Ids `a` and `b`) on each of the
    // other 100, half of those pairs alike (same amount and reason: ListBonusPayments cannot
    // tell them apart). Amounts from 1 cent (the minimum fee) to 60 cents.
    let mut csv = String::from("AssignmentId,WorkerId,Amount,Reason,Id\n");
    let mut owed: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
    let mut total_cents = 0;
    let mut rows = 0;
    for (i, (id, (_, worker, _))) in assignments.iter().enumerate() {
        let cents = 1 + (i as i64 * 7) % 60;
        let mut pay = |bonus_id: &str, cents: i64| {
            csv.push_str(&format!(
                "{id},{worker},0.{cents:02},Careful work,{bonus_id}\n"
            ));
            owed.entry(id.clone())
                .or_default()
                .push((worker.clone(), cents));
            total_cents += cents + bonus_fee_cents(cents);
            rows += 1;
        };
        match i % 4 {
            0 | 1 => pay("", cents),
            2 => {
                pay("a", cents);
                pay("b", cents);
            }
            _ => {
                pay("a", cents);
                pay("b", 1 + (cents + 13) % 60);
            }
        }
    }
    assert_eq!(rows, 300);
    for paid in owed.values_mut() {
        paid.sort();
    }
    project.write("bonuses/pay.csv", &csv);
    let campaign = std::fs::read_to_string(project.path().join("campaigns/pay.toml")).unwrap();
    project.write(
        "campaigns/pay.toml",
        &format!("{campaign}\n[bonuses]\nsource = \"../bonuses/pay.csv\"\n"),
    );

    let balance = sim.balance_cents();
    let mut rng = Lcg(20_261_201);
    let mut kills_in_flight = 0;
    let mut kills_part_way = 0;
    for _ in 0..10 {
        let mut child = project
            .command(&sim, &["apply", "--auto-approve"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn apply");
        // A seeded moment in the stream of payments (1 to 12 more SendBonus requests than
        // before): every kill lands while bonuses are being sent.
        let target = sim.calls("SendBonus") + 1 + rng.next_below(12);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while sim.calls("SendBonus") < target {
            assert!(
                std::time::Instant::now() < deadline,
                "the apply made no progress"
            );
            assert!(
                child.try_wait().unwrap().is_none(),
                "the apply ended before it could be killed"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // SIGKILL: no destructor, no signal handler, no flush.
        let _ = child.kill();
        let _ = child.wait();
        if pending_bonus_intents(&project) > 0 {
            kills_in_flight += 1;
        }
        let spent = balance - sim.balance_cents();
        if spent > 0 && spent < total_cents {
            kills_part_way += 1;
        }
    }
    assert!(
        kills_in_flight > 0,
        "no kill landed while bonuses were in flight ({kills_part_way} part-way)"
    );
    assert!(kills_part_way > 0, "no kill landed part-way through");
    assert!(
        pending_bonus_intents(&project) > 0,
        "the last kill left bonuses journaled and unresolved"
    );

    // A day later MTurk has forgotten every token: what is pending must be looked up.
    sim.advance_clock(25 * 3600);
    let out = project.run(&sim, &["apply", "--auto-approve"]);
    assert_exit(&out, 0);
    // The last kill left calls journaled and unresolved; past the token window each was
    // looked up before anything was resent.
    assert!(
        sim.calls("ListBonusPayments") > 0,
        "the pending bonuses were looked up"
    );
    for (id, want) in &owed {
        assert_eq!(&paid_cents(&sim, id), want, "bonuses on {id}");
    }
    assert_eq!(
        balance - sim.balance_cents(),
        total_cents,
        "the balance fell by exactly the bonuses and their fees"
    );
    assert_eq!(pending_bonus_intents(&project), 0);

    // A paid row edited afterwards is warned about and never paid again.
    let edited = csv.replacen(",Careful work,", ",Even more careful work,", 1);
    project.write("bonuses/pay.csv", &edited);
    let sent = sim.calls("SendBonus");
    let plan = project.run(&sim, &["plan"]);
    assert_exit(&plan, 0);
    assert!(
        crate::common::stderr(&plan).contains("is not paid again")
            || stdout(&plan).contains("is not paid again"),
        "the edit is warned about:\n{}{}",
        stdout(&plan),
        crate::common::stderr(&plan)
    );
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    assert_eq!(sim.calls("SendBonus"), sent, "the edited row is not paid");
    assert_eq!(balance - sim.balance_cents(), total_cents);
}

crate::on_both_backends!(sigkill_at_ten_moments_during_300_bonuses_pays_every_row_exactly_once);
