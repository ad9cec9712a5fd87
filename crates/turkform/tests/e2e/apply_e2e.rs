//! Apply creates exactly what is desired, re-runs do nothing, and every kind of edit produces
//! exactly the expected MTurk calls.

use std::collections::HashSet;

use crate::common::*;

fn plan_json(project: &Project, sim: &Sim) -> serde_json::Value {
    let out = project.run(sim, &["plan", "--json"]);
    assert_exit(&out, 0);
    serde_json::from_str(&stdout(&out)).expect("plan --json is JSON")
}

fn apply(project: &Project, sim: &Sim) -> std::process::Output {
    let out = project.run(sim, &["apply", "--auto-approve"]);
    assert_exit(&out, 0);
    out
}

fn apply_creates_exactly_the_desired_hits_and_a_rerun_changes_nothing(backend: StateBackend) {
    let sim = Sim::plain();
    let project = Project::on(backend);
    project.campaign("labels", 12, &CampaignOptions::default());

    let plan = plan_json(&project, &sim);
    assert_eq!(plan["summary"]["create"], 12);
    // 12 HITs x 3 assignments x ($0.10 reward + $0.02 fee) = $4.32
    assert_eq!(plan["summary"]["cost_delta"], 432);

    apply(&project, &sim);
    let hits = sim.list_hits();
    assert_eq!(hits.len(), 12);
    let annotations: HashSet<_> = hits
        .iter()
        .map(|h| h.requester_annotation.clone())
        .collect();
    assert_eq!(annotations.len(), 12, "every HIT names a different item");
    assert_eq!(sim.calls("CreateHITWithHITType"), 12);
    assert!(hits.iter().all(|h| h.max_assignments == Some(3)));

    let before = sim.mutating_calls();
    let again = apply(&project, &sim);
    assert!(stderr(&again).contains("No changes") || stdout(&again).contains("No changes"));
    assert_eq!(
        sim.mutating_calls(),
        before,
        "a re-run makes no mutating call"
    );

    let detailed = project.run(&sim, &["plan", "--detailed-exitcode"]);
    assert_exit(&detailed, 0);
    assert_eq!(sim.list_hits().len(), 12);
}

fn every_kind_of_edit_makes_exactly_the_expected_calls(backend: StateBackend) {
    let sim = Sim::plain();
    let project = Project::on(backend);
    let mut options = CampaignOptions::default();
    project.campaign("edits", 4, &options);
    apply(&project, &sim);
    assert_eq!(sim.list_hits().len(), 4);

    // Raising assignments 3 -> 5 adds assignments to each HIT.
    options.assignments = 5;
    project.write("campaigns/edits.toml", &campaign_toml("edits", &options));
    let adds = sim.calls("CreateAdditionalAssignmentsForHIT");
    apply(&project, &sim);
    assert_eq!(sim.calls("CreateAdditionalAssignmentsForHIT") - adds, 4);
    assert!(sim.list_hits().iter().all(|h| h.max_assignments == Some(5)));

    // A reward change registers one new HIT type and retypes every HIT.
    options.reward = "0.15";
    project.write("campaigns/edits.toml", &campaign_toml("edits", &options));
    let retypes = sim.calls("UpdateHITTypeOfHIT");
    apply(&project, &sim);
    assert_eq!(sim.calls("UpdateHITTypeOfHIT") - retypes, 4);
    let types: HashSet<_> = sim
        .list_hits()
        .iter()
        .map(|h| h.hit_type_id.clone())
        .collect();
    assert_eq!(types.len(), 1, "all HITs share the new type");
    assert!(
        sim.list_hits()
            .iter()
            .all(|h| h.reward.as_deref() == Some("0.15"))
    );

    // A template edit replaces every HIT: expire the old one, create generation 2.
    options.template_prefix = "Please: ";
    project.campaign("edits", 4, &options);
    let creates = sim.calls("CreateHITWithHITType");
    let expirations = sim.calls("UpdateExpirationForHIT");
    apply(&project, &sim);
    assert_eq!(sim.calls("CreateHITWithHITType") - creates, 4);
    assert_eq!(sim.calls("UpdateExpirationForHIT") - expirations, 4);
    assert_eq!(
        sim.list_hits().len(),
        8,
        "old generations stay on MTurk, expired"
    );

    // Removing an item expires its HIT.
    project.campaign("edits", 3, &options);
    let expirations = sim.calls("UpdateExpirationForHIT");
    let creates = sim.calls("CreateHITWithHITType");
    apply(&project, &sim);
    assert_eq!(sim.calls("UpdateExpirationForHIT") - expirations, 1);
    assert_eq!(sim.calls("CreateHITWithHITType"), creates);

    // Pausing expires the 3 live HITs; resuming extends exactly those back.
    options.status = "paused";
    project.write("campaigns/edits.toml", &campaign_toml("edits", &options));
    let expirations = sim.calls("UpdateExpirationForHIT");
    apply(&project, &sim);
    assert_eq!(sim.calls("UpdateExpirationForHIT") - expirations, 3);
    options.status = "running";
    project.write("campaigns/edits.toml", &campaign_toml("edits", &options));
    let expirations = sim.calls("UpdateExpirationForHIT");
    apply(&project, &sim);
    assert_eq!(sim.calls("UpdateExpirationForHIT") - expirations, 3);
    let open = sim
        .list_hits()
        .into_iter()
        .filter(|h| h.hit_status.as_ref().map(|s| s.as_str()) == Some("Assignable"))
        .count();
    assert_eq!(open, 3);

    // Moving to an `ends_at` later than the current expirations extends them.
    let later = turkform_model::UnixTime::now()
        .plus_secs(30 * 86_400)
        .to_rfc3339();
    options.lifetime = format!("ends_at = \"{later}\"");
    project.write("campaigns/edits.toml", &campaign_toml("edits", &options));
    let expirations = sim.calls("UpdateExpirationForHIT");
    apply(&project, &sim);
    assert_eq!(sim.calls("UpdateExpirationForHIT") - expirations, 3);

    // And after all that, nothing left to do.
    let before = sim.mutating_calls();
    apply(&project, &sim);
    assert_eq!(sim.mutating_calls(), before);
}

fn apply_converges_under_faults_drops_and_throttling(backend: StateBackend) {
    let sim = Sim::start(turkform_sim::SimConfig {
        fault_rate: 0.05,
        drop_rate: 0.05,
        throttle_rps: Some(50.0),
        seed: Some(7),
        ..turkform_sim::SimConfig::default()
    });
    let project = Project::on(backend);
    project.campaign("flaky", 60, &CampaignOptions::default());
    let mut converged = false;
    for _ in 0..5 {
        let out = project.run(&sim, &["apply", "--auto-approve"]);
        if out.status.code() == Some(0) {
            converged = true;
            break;
        }
        assert_exit(&out, 1);
    }
    assert!(converged, "apply never exited 0");
    let hits = sim.list_hits();
    assert_eq!(hits.len(), 60, "exactly one HIT per item");
    let annotations: HashSet<_> = hits
        .iter()
        .map(|h| h.requester_annotation.clone())
        .collect();
    assert_eq!(annotations.len(), 60, "no duplicates");
    assert_eq!(sim.stats()["duplicate_annotations"], 0);
    // The runs were really noisy: every kind of trouble happened at least once.
    let stats = sim.sim_stats();
    assert!(stats.faults > 0, "no ServiceFault was injected: {stats:?}");
    assert!(stats.dropped > 0, "no response was dropped: {stats:?}");
    assert!(stats.throttled > 0, "no request was throttled: {stats:?}");
    let detailed = project.run(&sim, &["plan", "--detailed-exitcode"]);
    assert_exit(&detailed, 0);
}

#[test]
fn an_invalid_campaign_stops_apply_before_mturk_or_state_is_touched() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("bad", 2, &CampaignOptions::default());
    let toml = std::fs::read_to_string(project.path().join("campaigns/bad.toml")).unwrap();
    project.write(
        "campaigns/bad.toml",
        &toml.replace("reward = \"0.10\"", "reward = 0.10"),
    );
    for args in [["apply", "--auto-approve"].as_slice(), ["plan"].as_slice()] {
        let out = project.run(&sim, args);
        assert_exit(&out, 1);
        assert!(
            stderr(&out).contains("campaigns/bad.toml:"),
            "{}",
            stderr(&out)
        );
    }
    let requests = sim.stats()["requests"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|v| v.as_u64())
        .sum::<u64>();
    assert_eq!(requests, 0, "no request reached MTurk: {}", sim.stats());
    assert!(!project.state_path().exists(), "no state file was created");
}

crate::on_both_backends!(
    apply_creates_exactly_the_desired_hits_and_a_rerun_changes_nothing,
    every_kind_of_edit_makes_exactly_the_expected_calls,
    apply_converges_under_faults_drops_and_throttling,
);
