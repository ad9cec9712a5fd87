//! `turkform status` shows the decisions a plan would make now (approvals, rejections, bonuses,
//! counted, with their money) beside the bonuses already paid; after apply, none are pending.
//! Ground truth for what apply then did comes from the simulator through the SDK.

use serde_json::{Value, json};

use crate::common::{CampaignOptions, Project, Sim, assert_exit, stdout};

fn status_row(project: &Project, sim: &Sim) -> Value {
    let out = project.run(sim, &["status", "--json"]);
    assert_exit(&out, 0);
    let status: Value = serde_json::from_str(&stdout(&out)).expect("status JSON");
    status["campaigns"][0].clone()
}

/// Every assignment on the simulator: (AssignmentId, WorkerId, status), sorted by id.
fn sdk_assignments(sim: &Sim) -> Vec<(String, String, String)> {
    let client = sim.sdk();
    let hits = sim.list_hits();
    let mut all = sim.block_on(async move {
        let mut all = Vec::new();
        for hit in hits {
            let page = client
                .list_assignments_for_hit()
                .hit_id(hit.hit_id().unwrap())
                .max_results(100)
                .send()
                .await
                .expect("ListAssignmentsForHIT");
            for a in page.assignments.unwrap_or_default() {
                all.push((
                    a.assignment_id().unwrap().to_owned(),
                    a.worker_id().unwrap().to_owned(),
                    a.assignment_status().unwrap().as_str().to_owned(),
                ));
            }
        }
        all
    });
    all.sort();
    all
}

#[test]
fn status_counts_the_decisions_and_bonuses_a_plan_would_make_now() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign(
        "pay",
        2,
        &CampaignOptions {
            assignments: 2,
            ..CampaignOptions::default()
        },
    );
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    sim.work(&json!({"answers": {"answer": "cat"}}));
    assert_exit(&project.run(&sim, &["refresh"]), 0);
    let work = sdk_assignments(&sim);
    assert_eq!(work.len(), 4);
    let (bonused, rejected) = (&work[0], &work[1]);
    project.write(
        "reviews/pay.csv",
        &format!("AssignmentId,Approve,Reject\n{},,Too short\n", rejected.0),
    );
    project.write(
        "bonuses/pay.csv",
        &format!(
            "AssignmentId,WorkerId,Amount,Reason\n{},{},0.25,Careful work\n",
            bonused.0, bonused.1
        ),
    );
    let campaign = std::fs::read_to_string(project.path().join("campaigns/pay.toml")).unwrap();
    project.write(
        "campaigns/pay.toml",
        &format!(
            "{campaign}\n[review]\ndecisions = \"../reviews/pay.csv\"\napprove_after = \"1h\"\n\n[bonuses]\nsource = \"../bonuses/pay.csv\"\n"
        ),
    );

    // Before approve_after has passed: the rejection and the bonus are pending, no approval.
    let row = status_row(&project, &sim);
    let pending = &row["pending_decisions"];
    assert_eq!(pending["approve"], 0, "{row}");
    assert_eq!(pending["reject"], 1, "{row}");
    assert_eq!(pending["bonuses"], 1, "{row}");
    assert_eq!(pending["bonuses_cost"], 30, "$0.25 + 20 % fee: {row}");

    // Two hours later (virtual clock, seen by a refresh) the other three are due for approval:
    // each pays its $0.10 reward and $0.02 fee committed with the HIT.
    sim.advance_clock(2 * 3600);
    assert_exit(&project.run(&sim, &["refresh"]), 0);
    let row = status_row(&project, &sim);
    let pending = &row["pending_decisions"];
    assert_eq!(pending["approve"], 3, "{row}");
    assert_eq!(pending["approvals_pay"], 36, "{row}");
    assert_eq!(pending["reject"], 1, "{row}");
    assert_eq!(pending["rejections_withhold"], 12, "{row}");
    assert_eq!(pending["bonuses"], 1, "{row}");
    assert_eq!(row["bonuses_paid"], 0, "{row}");
    let human = project.run(&sim, &["status"]);
    assert_exit(&human, 0);
    assert!(
        stdout(&human).contains(
            "pay: approve 3 (pays $0.36 committed), reject 1 ($0.12 committed, not paid), pay 1 bonus ($0.30 with fees)"
        ),
        "{}",
        stdout(&human)
    );

    // Apply does exactly that; then nothing is pending and the bonus shows as paid.
    let balance = sim.balance_cents();
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    let after = sdk_assignments(&sim);
    let statuses: Vec<&str> = after.iter().map(|a| a.2.as_str()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "Approved").count(), 3);
    assert_eq!(after[1].2, "Rejected");
    assert_eq!(balance - sim.balance_cents(), 30);
    let row = status_row(&project, &sim);
    let pending = &row["pending_decisions"];
    for field in [
        "approve",
        "reject",
        "bonuses",
        "override_rejection",
        "errors",
    ] {
        assert_eq!(pending[field], 0, "{field}: {row}");
    }
    assert_eq!(row["bonuses_paid"], 30, "{row}");
    let human = project.run(&sim, &["status"]);
    assert!(
        !stdout(&human).contains("pending in the plan"),
        "{}",
        stdout(&human)
    );
}
