//! The human plan of `goal = "approved"`: additions grouped by reason and counted when a
//! campaign has many, follow-up HITs named with their size and the HIT they follow.

use turkform_model::{
    CampaignStatus, DesiredState, Lifetime, Question, RecordedState, Target, UnixTime,
};
use turkform_plan::{CampaignPlan, CreateHit, PlanOptions};

use super::*;

fn add(i: usize, rejected: u32) -> PlannedAction {
    PlannedAction {
        action: Action::AddAssignments {
            campaign: "street".into(),
            item_key: format!("img-{i:04}"),
            generation: 1,
            hit_id: format!("HIT{i:04}"),
            from: 3,
            to: 3 + rejected,
        },
        reason: if rejected == 1 {
            "goal = \"approved\": 1 answer rejected".into()
        } else {
            format!("goal = \"approved\": {rejected} answers rejected")
        },
        cost_delta: Money::from_cents(14 * i64::from(rejected)),
    }
}

fn follow_up() -> PlannedAction {
    PlannedAction {
        action: Action::FollowUpHit {
            old_hit_id: "HIT9999".into(),
            expire_old: true,
            create: CreateHit {
                campaign: "street".into(),
                item_key: "img-9999".into(),
                generation: 2,
                hit_type_hash: "h".into(),
                max_assignments: 1,
                lifetime: Lifetime::Duration(7 * 86_400),
                question: Question::Xml { xml: "<q/>".into() },
                content_hash: "c".into(),
                input: Vec::new(),
            },
        },
        reason: "goal = \"approved\": 1 answer rejected; a HIT created with fewer than 10 assignments cannot reach 10 (the 10-assignment rule), so a follow-up HIT takes the missing ones".into(),
        cost_delta: Money::from_cents(12),
    }
}

fn goal_plan(additions: usize) -> Plan {
    let desired = DesiredState {
        target: Target::Sim,
        campaigns: Vec::new(),
        qualification_types: Vec::new(),
        inputs_digest: String::new(),
        workers: Default::default(),
    };
    let mut plan = turkform_plan::plan(
        &desired,
        &RecordedState::default(),
        UnixTime(1_800_000_000),
        &PlanOptions::default(),
    );
    let mut actions: Vec<PlannedAction> = (0..additions)
        .map(|i| add(i, 1 + u32::from(i % 10 == 0)))
        .collect();
    actions.push(follow_up());
    let cost: Money = actions.iter().map(|a| a.cost_delta).sum();
    plan.summary.add_assignments = additions;
    plan.summary.follow_up = 1;
    plan.summary.cost_delta = cost;
    plan.campaigns.push(CampaignPlan {
        name: "street".into(),
        status: Some(CampaignStatus::Running),
        hit_types: Vec::new(),
        actions,
        drift: Vec::new(),
        unchanged: 40,
        committed: Money::from_cents(100_000),
        cost_delta: cost,
        max_spend: None,
        over_budget: false,
        review: Vec::new(),
    });
    plan
}

#[test]
fn goal_additions_are_grouped_by_reason_and_a_follow_up_names_its_hit() {
    insta::assert_snapshot!("goal_few", plan_human(&goal_plan(2), &Style::default()));
    insta::assert_snapshot!("goal_many", plan_human(&goal_plan(40), &Style::default()));
}
