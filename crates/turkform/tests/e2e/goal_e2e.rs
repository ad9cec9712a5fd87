//! `goal = "approved"` end to end (DESIGN.md section 9): rejected answers are replaced by one more
//! assignment each on their item's HIT, a HIT of 9 that would need a 10th gets a follow-up HIT
//! instead, and a worker's second answer to an item does not count. Ground truth is the
//! simulator's, through the SDK: GetHIT's MaxAssignments, ListHITs, ListAssignmentsForHIT and the
//! mutating-call counters.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::common::{CampaignOptions, Project, Sim, assert_exit, stdout};

/// Per item key (the end of the annotation): (HITId, MaxAssignments, generation), every HIT.
fn hits_by_item(sim: &Sim, campaign: &str) -> BTreeMap<String, Vec<(String, i32, u32)>> {
    let mut out: BTreeMap<String, Vec<(String, i32, u32)>> = BTreeMap::new();
    for hit in sim.list_hits() {
        let annotation = hit.requester_annotation().unwrap_or_default();
        // turkform:1:<project>?:<campaign>:<generation>:k:<key>: find the campaign's part.
        let parts: Vec<&str> = annotation.split(':').collect();
        let Some(at) = parts.iter().position(|p| *p == campaign) else {
            continue;
        };
        let generation: u32 = parts[at + 1].parse().expect("generation");
        let key = parts[at + 3..].join(":");
        out.entry(key).or_default().push((
            hit.hit_id().unwrap().to_owned(),
            hit.max_assignments().unwrap(),
            generation,
        ));
    }
    for hits in out.values_mut() {
        hits.sort_by_key(|h| h.2);
    }
    out
}

/// GetHIT's MaxAssignments.
fn max_assignments(sim: &Sim, hit_id: &str) -> i32 {
    let client = sim.sdk();
    let id = hit_id.to_owned();
    sim.block_on(async move {
        client
            .get_hit()
            .hit_id(id)
            .send()
            .await
            .expect("GetHIT")
            .hit
            .unwrap()
            .max_assignments
            .unwrap()
    })
}

/// ListAssignmentsForHIT: (AssignmentId, WorkerId, status) in submit order.
fn assignments_of(sim: &Sim, hit_id: &str) -> Vec<(String, String, String)> {
    let client = sim.sdk();
    let id = hit_id.to_owned();
    sim.block_on(async move {
        let page = client
            .list_assignments_for_hit()
            .hit_id(id)
            .max_results(100)
            .send()
            .await
            .expect("ListAssignmentsForHIT");
        let mut all: Vec<_> = page.assignments.unwrap_or_default();
        all.sort_by_key(|a| {
            (
                a.submit_time().map(|t| t.as_nanos()),
                a.assignment_id().map(str::to_owned),
            )
        });
        all.into_iter()
            .map(|a| {
                (
                    a.assignment_id().unwrap().to_owned(),
                    a.worker_id().unwrap().to_owned(),
                    a.assignment_status().unwrap().as_str().to_owned(),
                )
            })
            .collect()
    })
}

fn with_review(project: &Project, name: &str) {
    let campaign =
        std::fs::read_to_string(project.path().join(format!("campaigns/{name}.toml"))).unwrap();
    project.write(
        &format!("campaigns/{name}.toml"),
        &format!(
            "{campaign}\n[review]\ndecisions = \"../reviews/{name}.csv\"\ngoal = \"approved\"\n"
        ),
    );
}

#[test]
fn goal_approved_replaces_rejected_answers_with_assignments_or_a_follow_up_hit() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("trio", 3, &CampaignOptions::default());
    project.campaign(
        "nine",
        1,
        &CampaignOptions {
            assignments: 9,
            ..CampaignOptions::default()
        },
    );
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    sim.work(&json!({"answers": {"answer": "cat"}}));
    assert_exit(&project.run(&sim, &["refresh"]), 0);

    // Reject 1 of 3 answers on item-00000 and item-00002, and 1 of the 9 of nine's only item.
    let trio = hits_by_item(&sim, "trio");
    let nine = hits_by_item(&sim, "nine");
    let nine_hit = nine["item-00000"][0].0.clone();
    let rejected = [
        assignments_of(&sim, &trio["item-00000"][0].0)[1].0.clone(),
        assignments_of(&sim, &trio["item-00002"][0].0)[0].0.clone(),
    ];
    let nine_answers = assignments_of(&sim, &nine_hit);
    assert_eq!(nine_answers.len(), 9);
    let rows = |ids: &[&str]| {
        let mut csv = String::from("AssignmentId,Approve,Reject\n");
        for id in ids {
            csv.push_str(&format!("{id},,Wrong label\n"));
        }
        csv
    };
    project.write(
        "reviews/trio.csv",
        &rows(&[rejected[0].as_str(), rejected[1].as_str()]),
    );
    project.write("reviews/nine.csv", &rows(&[nine_answers[4].0.as_str()]));
    with_review(&project, "trio");
    with_review(&project, "nine");

    // The plan that rejects adds nothing yet: the rejections are not recorded answers yet.
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    let statuses: BTreeMap<String, String> = trio
        .values()
        .chain(nine.values())
        .flat_map(|h| assignments_of(&sim, &h[0].0))
        .map(|(id, _, status)| (id, status))
        .collect();
    for id in rejected.iter().chain([&nine_answers[4].0]) {
        assert_eq!(statuses[id], "Rejected", "{id}");
    }
    assert_eq!(
        statuses.values().filter(|s| *s == "Rejected").count(),
        3,
        "{statuses:?}"
    );
    for (key, hits) in &trio {
        assert_eq!(max_assignments(&sim, &hits[0].0), 3, "{key}");
    }

    // The next plan: one more assignment on exactly the items with a rejected answer, and a
    // follow-up HIT for the item whose HIT has 9.
    let plan = project.run(&sim, &["plan", "--json"]);
    assert_exit(&plan, 0);
    let plan: Value = serde_json::from_str(&stdout(&plan)).unwrap();
    assert_eq!(plan["summary"]["add_assignments"], 2, "{plan}");
    assert_eq!(plan["summary"]["follow_up"], 1, "{plan}");
    let human = project.run(&sim, &["plan"]);
    assert_exit(&human, 0);
    assert!(
        stdout(&human).contains("post follow-up item-00000 (HIT of 1 assignment after"),
        "{}",
        stdout(&human)
    );
    let balance = sim.balance_cents();
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    let trio_after = hits_by_item(&sim, "trio");
    let max: BTreeMap<&str, i32> = trio_after
        .iter()
        .map(|(k, hits)| {
            assert_eq!(
                hits.len(),
                1,
                "{k}: no new HIT for an item that can take more"
            );
            (k.as_str(), max_assignments(&sim, &hits[0].0))
        })
        .collect();
    assert_eq!(
        max,
        BTreeMap::from([("item-00000", 4), ("item-00001", 3), ("item-00002", 4)])
    );
    let nine_after = hits_by_item(&sim, "nine");
    let nine_hits = &nine_after["item-00000"];
    assert_eq!(nine_hits.len(), 2, "{nine_hits:?}");
    assert_eq!(
        max_assignments(&sim, &nine_hit),
        9,
        "never 10 on a HIT made with 9"
    );
    let follow_up = nine_hits[1].0.clone();
    assert_eq!(
        (nine_hits[1].1, nine_hits[1].2),
        (1, 2),
        "1 assignment, generation 2"
    );
    // $0.10 + 20 % per added assignment, three of them.
    assert_eq!(balance - sim.balance_cents(), 3 * 12);

    // A cron re-run plans nothing and calls nothing that changes MTurk.
    let mutating = sim.mutating_calls();
    let again = project.run(&sim, &["plan", "--detailed-exitcode"]);
    assert_exit(&again, 0);
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    assert_eq!(sim.mutating_calls(), mutating);

    // The follow-up is taken by a worker who already answered the item in generation 1: a
    // repeat, which does not count, so the follow-up HIT gets one more assignment.
    let repeat_worker = nine_answers[0].1.clone();
    sim.work(
        &json!({"hit_id": follow_up, "worker_id": repeat_worker, "answers": {"answer": "dog"}}),
    );
    assert_eq!(assignments_of(&sim, &follow_up).len(), 1);
    assert_exit(&project.run(&sim, &["refresh"]), 0);
    let plan = project.run(&sim, &["plan", "--json"]);
    let plan: Value = serde_json::from_str(&stdout(&plan)).unwrap();
    let reason = plan["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "nine")
        .map(|c| c["actions"][0]["reason"].as_str().unwrap().to_owned())
        .unwrap();
    assert!(reason.contains("1 repeat answer"), "{reason}");
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    assert_eq!(max_assignments(&sim, &follow_up), 2);
    assert_eq!(hits_by_item(&sim, "nine")["item-00000"].len(), 2);

    // Aggregation counts by the same rule: 9 answers minus the rejected one; the repeat's "dog"
    // is not counted.
    let agg = project.run(
        &sim,
        &[
            "results",
            "nine",
            "--aggregate",
            "majority",
            "--format",
            "jsonl",
        ],
    );
    assert_exit(&agg, 0);
    let row: Value = serde_json::from_str(stdout(&agg).lines().next().unwrap()).unwrap();
    assert_eq!(row["answers"]["answer"]["count"], 8, "{row}");
    assert_eq!(row["answers"]["answer"]["value"], "cat", "{row}");

    let mutating = sim.mutating_calls();
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    assert_eq!(sim.mutating_calls(), mutating);
}

/// (Expiration, HITStatus) from GetHIT.
fn expiration_and_status(sim: &Sim, hit_id: &str) -> (i64, String) {
    let client = sim.sdk();
    let id = hit_id.to_owned();
    sim.block_on(async move {
        let hit = client
            .get_hit()
            .hit_id(id)
            .send()
            .await
            .expect("GetHIT")
            .hit
            .unwrap();
        (
            hit.expiration().unwrap().secs(),
            hit.hit_status().unwrap().as_str().to_owned(),
        )
    })
}

fn sim_now(sim: &Sim) -> i64 {
    sim.stats()["now"].as_i64().expect("stats now")
}

#[test]
fn goal_approved_reopens_a_hit_whose_lifetime_ended_for_the_rejected_answer() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign(
        "late",
        2,
        &CampaignOptions {
            lifetime: "lifetime = \"1h\"".to_owned(),
            ..CampaignOptions::default()
        },
    );
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    sim.work(&json!({"answers": {"answer": "cat"}}));
    let hits = hits_by_item(&sim, "late");
    let (first, second) = (
        hits["item-00000"][0].0.clone(),
        hits["item-00001"][0].0.clone(),
    );
    let rejected = assignments_of(&sim, &first)[0].0.clone();
    project.write(
        "reviews/late.csv",
        &format!("AssignmentId,Approve,Reject\n{rejected},,Wrong label\n"),
    );
    with_review(&project, "late");
    // Rejected within the lifetime; the lifetime then ends before the next plan.
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    assert_eq!(assignments_of(&sim, &first)[0].2, "Rejected");
    sim.advance_clock(2 * 3600);
    assert!(expiration_and_status(&sim, &first).0 < sim_now(&sim));

    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    let (expiration, status) = expiration_and_status(&sim, &first);
    assert!(
        expiration > sim_now(&sim) + 3000,
        "extended by the campaign's lifetime: {expiration} vs now {}",
        sim_now(&sim)
    );
    assert_eq!(status, "Assignable");
    assert_eq!(max_assignments(&sim, &first), 4);
    // The item with no rejection stays expired, at 3.
    assert!(expiration_and_status(&sim, &second).0 < sim_now(&sim));
    assert_eq!(max_assignments(&sim, &second), 3);

    // The reopened slot is taken and approved-pending: nothing more, no warning, no call.
    sim.work(&json!({"hit_id": first, "answers": {"answer": "dog"}}));
    let mutating = sim.mutating_calls();
    let out = project.run(&sim, &["apply", "--auto-approve"]);
    assert_exit(&out, 0);
    assert_eq!(sim.mutating_calls(), mutating);
    assert!(
        !crate::common::stderr(&out).contains("warning"),
        "{}",
        crate::common::stderr(&out)
    );
    assert_eq!(assignments_of(&sim, &first).len(), 4);

    // Both items have 3 answers that count: status calls them done, though the first HIT asks
    // for 4 (one of its answers was rejected).
    let status = project.run(&sim, &["status", "--json"]);
    assert_exit(&status, 0);
    let status: Value = serde_json::from_str(&stdout(&status)).unwrap();
    assert_eq!(status["campaigns"][0]["items_complete"], 2, "{status}");
}
