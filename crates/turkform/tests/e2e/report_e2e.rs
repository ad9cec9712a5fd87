//! `turkform report` writes one self-contained page whose figures match what the simulator
//! says through the SDK (ListHITs counters and ListAssignmentsForHIT), after real submissions,
//! approvals, a rejection and an accept.

use std::collections::BTreeMap;

use aws_sdk_mturk::types::AssignmentStatus;

use crate::common::*;

/// Every assignment of every HIT, from ListAssignmentsForHIT.
fn assignments_from_sdk(sim: &Sim) -> Vec<aws_sdk_mturk::types::Assignment> {
    let client = sim.sdk();
    let hits: Vec<String> = sim
        .list_hits()
        .into_iter()
        .filter_map(|h| h.hit_id)
        .collect();
    sim.block_on(async {
        let mut all = Vec::new();
        for hit_id in hits {
            let listed = client
                .list_assignments_for_hit()
                .hit_id(&hit_id)
                .max_results(100)
                .send()
                .await
                .unwrap();
            all.extend(listed.assignments.unwrap_or_default());
        }
        all
    })
}

/// (answers submitted or decided, decided, pending) summed over every HIT, from ListHITs.
fn counters_from_sdk(sim: &Sim) -> (i64, i64, i64) {
    let mut submitted = 0;
    let mut decided = 0;
    let mut pending = 0;
    for hit in sim.list_hits() {
        let max = i64::from(hit.max_assignments.unwrap());
        let available = i64::from(hit.number_of_assignments_available.unwrap());
        let accepted = i64::from(hit.number_of_assignments_pending.unwrap());
        submitted += max - available - accepted;
        decided += i64::from(hit.number_of_assignments_completed.unwrap());
        pending += accepted;
    }
    (submitted, decided, pending)
}

#[test]
fn report_shows_the_progress_spend_and_statuses_the_simulator_holds() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign(
        "labels",
        6,
        &CampaignOptions {
            max_spend: Some("10.00"),
            ..CampaignOptions::default()
        },
    );
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);

    // Two HITs fully answered, one more slot accepted but not submitted.
    sim.work(&serde_json::json!({"action": "submit", "max_hits": 2, "answers": {"answer": "yes"}}));
    sim.work(&serde_json::json!({"action": "accept", "max_hits": 1, "assignments_per_hit": 1}));
    // Two approvals and a rejection made outside turkform, with the SDK, on one HIT each way.
    let hit_id = sim
        .list_hits()
        .into_iter()
        .find(|h| h.number_of_assignments_available == Some(0))
        .and_then(|h| h.hit_id)
        .expect("a fully answered HIT");
    let client = sim.sdk();
    sim.block_on(async {
        let listed = client
            .list_assignments_for_hit()
            .hit_id(&hit_id)
            .send()
            .await
            .unwrap();
        let ids: Vec<String> = listed
            .assignments
            .unwrap()
            .into_iter()
            .filter_map(|a| a.assignment_id)
            .collect();
        for id in &ids[..2] {
            client
                .approve_assignment()
                .assignment_id(id)
                .send()
                .await
                .unwrap();
        }
        client
            .reject_assignment()
            .assignment_id(&ids[2])
            .requester_feedback("did not follow the instructions")
            .send()
            .await
            .unwrap();
    });
    assert_exit(&project.run(&sim, &["refresh"]), 0);

    let (submitted, decided, pending) = counters_from_sdk(&sim);
    assert_eq!(
        (submitted, decided, pending),
        (6, 3, 1),
        "the simulator's own view"
    );
    let listed = assignments_from_sdk(&sim);
    let count = |s: AssignmentStatus| {
        listed
            .iter()
            .filter(|a| a.assignment_status == Some(s.clone()))
            .count()
    };
    let (awaiting, approved, rejected) = (
        count(AssignmentStatus::Submitted),
        count(AssignmentStatus::Approved),
        count(AssignmentStatus::Rejected),
    );
    assert_eq!((awaiting, approved, rejected), (3, 2, 1));
    // worker -> (answers, approved, rejected)
    let mut workers: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    for a in &listed {
        let w = workers.entry(a.worker_id.clone().unwrap()).or_default();
        w.0 += 1;
        match a.assignment_status {
            Some(AssignmentStatus::Approved) => w.1 += 1,
            Some(AssignmentStatus::Rejected) => w.2 += 1,
            _ => {}
        }
    }

    std::fs::create_dir_all(project.path().join("public")).unwrap();
    let out = project.run(&sim, &["report", "--output", "public/report.html"]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("Wrote the report of 1 campaign to public/report.html"));
    let html = std::fs::read_to_string(project.path().join("public/report.html")).unwrap();

    assert!(html.contains("<h2>labels</h2>"));
    assert!(html.contains("Label a sentence (labels)"));
    // Items complete: the two fully answered HITs of six.
    assert!(html.contains("2 / 6 (33%)"), "items complete");
    assert!(
        html.contains(&format!("{submitted} / 18")),
        "answers submitted / wanted"
    );
    // Committed: 6 HITs x 3 assignments x ($0.10 + $0.02 fee).
    assert!(html.contains("$2.16"));
    assert!(html.contains("$10.00 (21% used)"));
    assert!(
        html.contains("budget $10.00"),
        "the budget line is labelled on the chart"
    );
    // Statuses table: from the assignments (submitted, approved, rejected) and the counters.
    assert!(html.contains(&format!("<td>submitted</td><td>{awaiting}</td>")));
    assert!(html.contains(&format!("<td>approved</td><td>{approved}</td>")));
    assert!(html.contains(&format!("<td>rejected</td><td>{rejected}</td>")));
    assert!(html.contains(&format!("<td>pending</td><td>{pending}</td>")));
    assert!(
        !html.contains("approved or rejected</td>"),
        "every decided assignment is told apart"
    );
    // Progress: the latest row holds every submission and every approval.
    assert!(
        html.contains(&format!(
            "<td>{}</td><td>{approved}</td></tr>",
            listed.len()
        )),
        "the last progress row counts {} submitted, {approved} approved",
        listed.len()
    );
    // Paid: reward and fee of each approved assignment.
    assert!(html.contains(&format!(
        "<div class=\"label\">paid</div><div class=\"value\">${}.{:02}</div>",
        approved * 12 / 100,
        approved * 12 % 100
    )));
    // Busiest workers: answers and approval rate (approved / decided) per worker.
    for (worker, (answers, ok, bad)) in &workers {
        let decided = ok + bad;
        // The page escapes `/` as every other text.
        let rate = (ok * 100).checked_div(decided).map_or_else(
            || "none decided".to_owned(),
            |p| format!("{p}% ({ok}&#x2f;{decided})"),
        );
        let row = format!("<tr><td>{worker}</td><td>{answers}</td><td>{rate}</td>");
        assert!(html.contains(&row), "worker row `{row}` in the page");
    }
    // Every answer is "yes": each fully answered item agrees completely.
    assert!(html.contains("mean agreement 100%"));
    assert!(!html.to_ascii_lowercase().contains("<script"));
    // No temporary file is left beside the page.
    let leftovers: Vec<_> = std::fs::read_dir(project.path().join("public"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["report.html"]);
}

#[test]
fn report_of_an_unknown_campaign_or_to_a_missing_directory_exits_1_and_writes_nothing() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("labels", 2, &CampaignOptions::default());
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);

    let out = project.run(&sim, &["report", "nope", "--output", "report.html"]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("no campaign `nope` in the campaign files or in state"),
        "{}",
        stderr(&out)
    );
    assert!(!project.path().join("report.html").exists());

    let out = project.run(&sim, &["report", "--output", "missing/report.html"]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("cannot write the report to `missing/report.html`"));
    assert!(!project.path().join("missing").exists());
}

#[test]
fn report_before_any_apply_says_there_is_nothing_yet() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("labels", 2, &CampaignOptions::default());
    assert_exit(&project.run(&sim, &["validate"]), 0);
    // No state file yet: the report still lists the campaign from its file, with no work.
    let out = project.run(&sim, &["report", "--output", "report.html"]);
    assert_exit(&out, 0);
    let html = std::fs::read_to_string(project.path().join("report.html")).unwrap();
    assert!(html.contains("<h2>labels</h2>"));
    assert!(html.contains("0 / 2 (0%)"));
    assert!(html.contains("not enough data"));
    assert!(html.contains("no answers submitted yet"));
    assert!(
        !project.state_path().exists(),
        "a report never creates state"
    );
}

#[test]
fn a_broken_campaign_file_still_gets_a_report_from_state_with_a_warning() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("labels", 3, &CampaignOptions::default());
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    project.write("campaigns/labels.toml", "status = \"running\"\n[hit_type\n");

    let out = project.run(&sim, &["report", "--output", "report.html"]);
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("labels.toml:"),
        "the diagnostic names the file: {err}"
    );
    assert!(err.contains("warning:") && err.contains("the report shows what state holds"));
    let html = std::fs::read_to_string(project.path().join("report.html")).unwrap();
    assert!(html.contains("<h2>labels</h2>"));
    assert!(html.contains("did not validate"));
    // The three HITs are still counted: 0 of 3 items, 9 answers wanted.
    assert!(html.contains("0 / 3 (0%)"));
    assert!(html.contains("0 / 9"));
}
