//! `turkform plan` against a simulator: costs, drift made outside turkform, orphans.

use crate::common::*;

#[test]
fn plan_on_a_fresh_state_shows_creates_with_their_cost() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign(
        "fresh",
        5,
        &CampaignOptions {
            reward: "0.12",
            ..CampaignOptions::default()
        },
    );
    let out = project.run(&sim, &["plan"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    // 5 x 3 x ($0.12 + $0.02) = $2.10 (fee: 20 % of 12 cents = 2.4 -> 2 cents)
    assert!(
        text.contains("Plan: 1 HIT type(s) to create, 5 to create. Cost: $2.10"),
        "{text}"
    );
    assert!(text.contains("+ create item-00000"), "{text}");
    assert_eq!(sim.mutating_calls(), 0, "plan never changes MTurk");

    let detailed = project.run(&sim, &["plan", "--detailed-exitcode"]);
    assert_exit(&detailed, 2);
}

#[test]
fn a_hit_expired_outside_turkform_shows_as_drift() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("drift", 3, &CampaignOptions::default());
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    let victim = sim.list_hits()[0].hit_id.clone().unwrap();
    let client = sim.sdk();
    sim.block_on(async {
        client
            .update_expiration_for_hit()
            .hit_id(&victim)
            .expire_at(aws_sdk_mturk::primitives::DateTime::from_secs(0))
            .send()
            .await
            .expect("expire outside turkform")
    });
    let out = project.run(&sim, &["plan"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("changed outside turkform"), "{text}");
    assert!(text.contains(&victim), "{text}");
}

#[test]
fn an_orphan_hit_with_turkforms_annotation_is_found_and_adopted() {
    let sim = Sim::plain();
    let project = Project::new();
    project.campaign("orphans", 2, &CampaignOptions::default());
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    // A third item appears, and its HIT already exists on MTurk (as if a crashed apply made it
    // and never recorded it).
    project.campaign("orphans", 3, &CampaignOptions::default());
    let type_id = sim.list_hits()[0].hit_type_id.clone().unwrap();
    let question = sim.list_hits()[0].question.clone().unwrap();
    let client = sim.sdk();
    let orphan = sim.block_on(async {
        client
            .create_hit_with_hit_type()
            .hit_type_id(type_id)
            .max_assignments(3)
            .lifetime_in_seconds(86_400)
            .question(question)
            .requester_annotation("turkform:1:orphans:1:k:item-00002")
            .send()
            .await
            .expect("create the orphan")
            .hit
            .unwrap()
            .hit_id
            .unwrap()
    });
    let out = project.run(&sim, &["plan"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("adopt item-00002"), "{text}");
    assert!(text.contains(&orphan), "{text}");
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);
    assert_eq!(sim.list_hits().len(), 3, "adopted, not duplicated");
    let show = project.run(&sim, &["state", "show", "orphans/item-00002"]);
    assert_exit(&show, 0);
    assert!(stdout(&show).contains(&orphan));
}

/// Snapshots `text` with what changes from run to run redacted: HIT ids, hashes, lineage, times.
fn assert_redacted_snapshot(name: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\b[0-9a-f]{64}\b", "[sha256]");
    settings.add_filter(r"\b[0-9a-f]{32}\b", "[lineage]");
    settings.add_filter(r"\b[A-Z0-9]{30}\b", "[HIT-ID]");
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]");
    settings.add_filter(r"\b1[6-9]\d{8}\b", "[EPOCH]");
    settings.add_filter(r#""state_serial": \d+"#, r#""state_serial": [SERIAL]"#);
    settings.bind(|| insta::assert_snapshot!(name, text));
}

#[test]
fn plan_output_for_every_kind_of_action() {
    let sim = Sim::plain();
    let project = Project::new();
    let base = CampaignOptions::default();
    for name in ["alpha", "beta", "gamma", "delta", "epsilon"] {
        project.campaign(name, 3, &base);
    }
    assert_exit(&project.run(&sim, &["apply", "--auto-approve"]), 0);

    // alpha: one item removed, two added.
    project.write(
        "campaigns/data/alpha.csv",
        "id,text\nitem-00000,Text number 0\nitem-00001,Text number 1\nitem-00003,Text number 3\nitem-00004,Text number 4\n",
    );
    // beta: assignments raised 3 -> 5; gamma: reward changed; delta: template edited.
    let beta = CampaignOptions {
        assignments: 5,
        ..base.clone()
    };
    project.write("campaigns/beta.toml", &campaign_toml("beta", &beta));
    let gamma = CampaignOptions {
        reward: "0.25",
        ..base.clone()
    };
    project.write("campaigns/gamma.toml", &campaign_toml("gamma", &gamma));
    project.campaign(
        "delta",
        3,
        &CampaignOptions {
            template_prefix: "New: ",
            ..base.clone()
        },
    );
    // epsilon: paused. zeta: a new campaign large enough to be summarised, over its budget.
    let epsilon = CampaignOptions {
        status: "paused",
        ..base.clone()
    };
    project.write(
        "campaigns/epsilon.toml",
        &campaign_toml("epsilon", &epsilon),
    );
    project.campaign(
        "zeta",
        40,
        &CampaignOptions {
            max_spend: Some("1.00"),
            ..base.clone()
        },
    );

    let out = project.run(&sim, &["plan"]);
    assert_exit(&out, 0);
    assert_redacted_snapshot("plan_human", &stdout(&out));

    let out = project.run(&sim, &["plan", "--json", "--refresh=false"]);
    assert_exit(&out, 0);
    let mut json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    // The 40 questions of zeta say nothing new: keep two.
    if let Some(zeta) = json["campaigns"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["name"] == "zeta")
    {
        zeta["actions"].as_array_mut().unwrap().truncate(2);
    }
    assert_redacted_snapshot("plan_json", &serde_json::to_string_pretty(&json).unwrap());
}
