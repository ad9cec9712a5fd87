//! `goal = "approved"`: every answer that does not count (rejected, or a worker's second answer
//! to the item) is one more assignment, on the item's HIT or, across the 10-assignment rule, on a
//! follow-up HIT; a plan after those are made plans nothing more.

use turkform_model::{AssignmentStatus, RecordedAssignment, ReviewGoal};
use turkform_plan::cost::{assignment_cost, hit_cost};

use super::*;

fn goal_campaign(keys: &[&str], assignments: u32) -> DesiredCampaign {
    let mut c = campaign("gold", keys);
    c.assignments = assignments;
    c.review.goal = ReviewGoal::Approved;
    c
}

/// A HIT of `c`'s item whose every slot was answered.
fn answered_hit(c: &DesiredCampaign, key: &str, generation: u32, slots: u32) -> RecordedHit {
    let mut h = hit_for(c, key);
    h.generation = generation;
    h.hit_id = format!("HIT{key}G{generation}");
    h.max_assignments = slots;
    h.committed_cost = hit_cost(c.hit_type.reward, slots, false);
    h.assignments_available = 0;
    h.status = HitStatus::Reviewable;
    h
}

fn answer(hit: &RecordedHit, n: u32, worker: &str, status: AssignmentStatus) -> RecordedAssignment {
    RecordedAssignment {
        assignment_id: format!("AS{}{n}", hit.hit_id),
        hit_id: hit.hit_id.clone(),
        campaign: hit.campaign.clone(),
        item_key: hit.item_key.clone(),
        generation: hit.generation,
        worker_id: worker.to_owned(),
        status,
        accept_time: Some(UnixTime(
            NOW.0 - 5000 + i64::from(hit.generation) * 1000 + i64::from(n),
        )),
        submit_time: Some(UnixTime(
            NOW.0 - 4000 + i64::from(hit.generation) * 1000 + i64::from(n),
        )),
        auto_approval_time: None,
        approval_time: None,
        rejection_time: None,
        answer_xml: String::new(),
        answers: Default::default(),
        requester_feedback: None,
        decided_by: None,
    }
}

/// `slots` answers on `hit` by workers W0.., the ones in `rejected` rejected.
fn answers(hit: &RecordedHit, slots: u32, rejected: &[u32]) -> Vec<RecordedAssignment> {
    (0..slots)
        .map(|n| {
            let status = if rejected.contains(&n) {
                AssignmentStatus::Rejected
            } else {
                AssignmentStatus::Approved
            };
            answer(hit, n, &format!("AW{n}"), status)
        })
        .collect()
}

fn with_answers(hits: Vec<RecordedHit>, assignments: Vec<RecordedAssignment>) -> RecordedState {
    RecordedState {
        assignments,
        ..recorded(hits)
    }
}

#[test]
fn goal_approved_adds_one_assignment_per_rejected_answer_and_only_there() {
    let c = goal_campaign(&["a", "b", "c"], 3);
    let hits: Vec<RecordedHit> = ["a", "b", "c"]
        .iter()
        .map(|k| answered_hit(&c, k, 1, 3))
        .collect();
    let mut all = answers(&hits[0], 3, &[1]);
    all.extend(answers(&hits[1], 3, &[]));
    all.extend(answers(&hits[2], 3, &[0, 2]));
    let p = run(
        &desired(vec![c.clone()]),
        &with_answers(hits.clone(), all.clone()),
    );
    assert_eq!(
        actions(&p, "gold"),
        [
            Action::AddAssignments {
                campaign: "gold".into(),
                item_key: "a".into(),
                generation: 1,
                hit_id: "HITaG1".into(),
                from: 3,
                to: 4,
            },
            Action::AddAssignments {
                campaign: "gold".into(),
                item_key: "c".into(),
                generation: 1,
                hit_id: "HITcG1".into(),
                from: 3,
                to: 5,
            },
        ]
    );
    let planned = &campaign_plan(&p, "gold").actions;
    assert_eq!(planned[0].reason, "goal = \"approved\": 1 answer rejected");
    assert_eq!(planned[1].reason, "goal = \"approved\": 2 answers rejected");
    let per = assignment_cost(c.hit_type.reward, 4, false);
    assert_eq!(planned[0].cost_delta, per);
    assert_eq!(
        p.summary.cost_delta,
        per + assignment_cost(c.hit_type.reward, 5, false)
            .checked_mul(2)
            .unwrap()
    );
    assert_eq!(campaign_plan(&p, "gold").unchanged, 1);

    // After apply the HITs have the slots: a cron re-run plans nothing.
    let mut after = hits;
    after[0].max_assignments = 4;
    after[2].max_assignments = 5;
    let p = run(&desired(vec![c]), &with_answers(after, all));
    assert!(!p.has_changes(), "{:?}", actions(&p, "gold"));
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

#[test]
fn goal_submitted_leaves_rejected_answers_unreplaced() {
    let mut c = goal_campaign(&["a"], 3);
    c.review.goal = ReviewGoal::Submitted;
    let hit = answered_hit(&c, "a", 1, 3);
    let all = answers(&hit, 3, &[0]);
    let p = run(&desired(vec![c]), &with_answers(vec![hit], all));
    assert!(!p.has_changes());
}

#[test]
fn goal_approved_posts_a_follow_up_hit_where_a_tenth_assignment_is_forbidden() {
    let c = goal_campaign(&["a"], 9);
    let hit = answered_hit(&c, "a", 1, 9);
    let all = answers(&hit, 9, &[4]);
    let p = run(
        &desired(vec![c.clone()]),
        &with_answers(vec![hit.clone()], all.clone()),
    );
    let mut create = expected_create(&c, "a", 2);
    create.max_assignments = 1;
    assert_eq!(
        actions(&p, "gold"),
        [Action::FollowUpHit {
            old_hit_id: "HITaG1".into(),
            expire_old: true,
            create,
        }]
    );
    let planned = &campaign_plan(&p, "gold").actions[0];
    assert!(
        planned.reason.contains("10-assignment rule"),
        "{}",
        planned.reason
    );
    assert_eq!(planned.cost_delta, hit_cost(c.hit_type.reward, 1, false));
    assert_eq!(p.summary.follow_up, 1);
    assert_eq!(p.summary.destructive, 0);

    // Applied: the old HIT expired for the follow-up, which has its one slot. Nothing more,
    // and the follow-up's single slot is not "raised" to 9.
    let mut old = hit;
    old.expiration = UnixTime(NOW.0 - 10);
    old.expired_by = Some(ExpiredBy::Replace);
    let mut follow = answered_hit(&c, "a", 2, 1);
    follow.assignments_available = 1;
    follow.status = HitStatus::Assignable;
    let state = with_answers(vec![old.clone(), follow.clone()], all.clone());
    let p = run(&desired(vec![c.clone()]), &state);
    assert!(!p.has_changes(), "{:?}", actions(&p, "gold"));
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);

    // The follow-up's answer comes from AW0, who answered generation 1: a repeat, not counted,
    // so the follow-up HIT gets one more slot (1 -> 2, no rule in the way).
    let mut all = all;
    all.push(answer(&follow, 0, "AW0", AssignmentStatus::Submitted));
    follow.assignments_available = 0;
    let p = run(&desired(vec![c]), &with_answers(vec![old, follow], all));
    assert_eq!(
        actions(&p, "gold"),
        [Action::AddAssignments {
            campaign: "gold".into(),
            item_key: "a".into(),
            generation: 2,
            hit_id: "HITaG2".into(),
            from: 1,
            to: 2,
        }]
    );
    assert_eq!(
        campaign_plan(&p, "gold").actions[0].reason,
        "goal = \"approved\": 1 answer rejected, 1 repeat answer by a worker who had answered the item"
    );
}

#[test]
fn goal_approved_follow_up_waits_while_the_hit_still_has_open_slots() {
    let c = goal_campaign(&["a"], 9);
    let mut hit = answered_hit(&c, "a", 1, 9);
    hit.assignments_available = 4;
    hit.status = HitStatus::Assignable;
    let all = answers(&hit, 5, &[0]);
    let p = run(&desired(vec![c]), &with_answers(vec![hit], all));
    assert!(!p.has_changes(), "{:?}", actions(&p, "gold"));
    assert!(
        warned(&p, "follow-up HIT is posted once"),
        "{:?}",
        p.warnings
    );
}

#[test]
fn goal_approved_reopens_a_hit_whose_lifetime_ended() {
    let c = goal_campaign(&["a"], 3);
    let mut hit = answered_hit(&c, "a", 1, 3);
    hit.created_at = UnixTime(NOW.0 - 8 * DAY as i64);
    hit.expiration = hit.created_at.plus_secs(7 * DAY);
    let all = answers(&hit, 3, &[2]);
    let p = run(
        &desired(vec![c.clone()]),
        &with_answers(vec![hit.clone()], all.clone()),
    );
    assert_eq!(
        actions(&p, "gold"),
        [
            Action::ExtendLifetime {
                campaign: "gold".into(),
                item_key: "a".into(),
                hit_id: "HITaG1".into(),
                from: hit.expiration,
                to: NOW.plus_secs(7 * DAY),
            },
            Action::AddAssignments {
                campaign: "gold".into(),
                item_key: "a".into(),
                generation: 1,
                hit_id: "HITaG1".into(),
                from: 3,
                to: 4,
            },
        ]
    );

    // Applied: the reopened HIT lives past creation + lifetime, which is not warned about as a
    // shortened lifetime, and nothing more is planned.
    hit.expiration = NOW.plus_secs(7 * DAY);
    hit.max_assignments = 4;
    let p = run(
        &desired(vec![c.clone()]),
        &with_answers(vec![hit.clone()], all.clone()),
    );
    assert!(!p.has_changes(), "{:?}", actions(&p, "gold"));
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);

    // A HIT someone expired on purpose is not reopened.
    let mut closed = answered_hit(&c, "a", 1, 3);
    closed.expiration = UnixTime(NOW.0 - 60);
    closed.expired_by = Some(ExpiredBy::Finish);
    let p = run(&desired(vec![c]), &with_answers(vec![closed], all));
    assert!(!p.has_changes(), "{:?}", actions(&p, "gold"));
}

#[test]
fn goal_approved_raising_across_ten_posts_only_the_difference() {
    let c = goal_campaign(&["a"], 12);
    let hit = answered_hit(&c, "a", 1, 9);
    let all = answers(&hit, 9, &[]);
    let p = run(&desired(vec![c.clone()]), &with_answers(vec![hit], all));
    let mut create = expected_create(&c, "a", 2);
    create.max_assignments = 3;
    assert_eq!(
        actions(&p, "gold"),
        [Action::FollowUpHit {
            old_hit_id: "HITaG1".into(),
            expire_old: true,
            create,
        }]
    );
}

#[test]
fn goal_approved_counts_only_answers_to_the_current_question() {
    // The question was edited: generation 2 asks the new one with all 3 slots; generation 1's
    // rejected answer was to the old question and asks for nothing.
    let mut c = goal_campaign(&["a"], 3);
    let mut old = answered_hit(&c, "a", 1, 3);
    old.expiration = UnixTime(NOW.0 - 10);
    old.expired_by = Some(ExpiredBy::Replace);
    c.items[0] = item("a", 2);
    let all = answers(&old, 3, &[0]);
    let new = answered_hit(&c, "a", 2, 3);
    let p = run(&desired(vec![c]), &with_answers(vec![old, new], all));
    assert!(!p.has_changes(), "{:?}", actions(&p, "gold"));
}

#[test]
fn goal_approved_does_not_resize_an_orphan_before_it_is_adopted() {
    // State was lost: the item's follow-up HIT (1 slot) is found on MTurk by its annotation.
    // Adopting it is all this plan does; raising it to `assignments` would pay for 8 slots the
    // item does not lack.
    let c = goal_campaign(&["a"], 9);
    let mut o = orphan("gold", "a", 2, "HITFOLLOW");
    o.max_assignments = 1;
    let state = RecordedState {
        orphans: vec![o],
        ..recorded(Vec::new())
    };
    let p = run(&desired(vec![c]), &state);
    let a = actions(&p, "gold");
    assert!(
        matches!(&a[..], [Action::AdoptHit { hit_id, .. }] if hit_id == "HITFOLLOW"),
        "{a:?}"
    );
}

#[test]
fn goal_approved_additions_count_against_the_budget() {
    let mut c = goal_campaign(&["a"], 3);
    let hit = answered_hit(&c, "a", 1, 3);
    // Exactly what the HIT committed: the replacement assignment would go over.
    c.max_spend = Some(hit.committed_cost);
    let all = answers(&hit, 3, &[0]);
    let p = run(&desired(vec![c]), &with_answers(vec![hit], all));
    let plan = campaign_plan(&p, "gold");
    assert_eq!(plan.cost_delta, assignment_cost(usd(12), 4, false));
    assert!(plan.over_budget, "{plan:?}");
}
