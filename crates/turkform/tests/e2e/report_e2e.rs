//! `turkform report` writes one self-contained page whose figures match what the simulator
//! says through the SDK (ListHITs counters), after real submissions, an approval and an accept.

use crate::common::*;

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
    // One approval made outside turkform, with the SDK.
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
        let first = &listed.assignments.unwrap()[0];
        client
            .approve_assignment()
            .assignment_id(first.assignment_id.clone().unwrap())
            .send()
            .await
            .unwrap();
    });
    assert_exit(&project.run(&sim, &["refresh"]), 0);

    let (submitted, decided, pending) = counters_from_sdk(&sim);
    assert_eq!(
        (submitted, decided, pending),
        (6, 1, 1),
        "the simulator's own view"
    );

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
    // Statuses table: submitted awaiting review, decided, pending.
    assert!(html.contains(&format!(
        "<td>submitted</td><td>{}</td>",
        submitted - decided
    )));
    assert!(html.contains(&format!("<td>approved or rejected</td><td>{decided}</td>")));
    assert!(html.contains(&format!("<td>pending</td><td>{pending}</td>")));
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
