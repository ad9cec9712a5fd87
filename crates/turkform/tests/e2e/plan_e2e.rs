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
