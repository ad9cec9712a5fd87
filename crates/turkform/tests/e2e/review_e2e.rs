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
