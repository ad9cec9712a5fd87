//! The HIT lifecycle driven by simulated workers and the virtual clock; review; deletion; money.

use aws_sdk_mturk::types::{AssignmentStatus, HitStatus};
use serde_json::json;

use crate::support::{self, request_error};

async fn state(sim: &support::Sim, id: &str) -> (String, i32, i32, i32) {
    let h = sim
        .client
        .get_hit()
        .hit_id(id)
        .send()
        .await
        .unwrap()
        .hit
        .unwrap();
    (
        h.hit_status().unwrap().as_str().to_owned(),
        h.number_of_assignments_available().unwrap(),
        h.number_of_assignments_pending().unwrap(),
        h.number_of_assignments_completed().unwrap(),
    )
}

#[tokio::test]
async fn the_documented_counter_example() {
    let sim = support::plain().await;
    let type_id = sim.hit_type().await;
    let id = sim.hit(&type_id, 5, None).await.hit_id.unwrap();
    assert_eq!(state(&sim, &id).await, ("Assignable".into(), 5, 0, 0));
    let accepted = sim
        .work(json!({"hit_id": id, "action": "accept", "assignments_per_hit": 3}))
        .await;
    assert_eq!(accepted["assignments"].as_array().unwrap().len(), 3);
    assert_eq!(state(&sim, &id).await, ("Assignable".into(), 2, 3, 0));
    sim.work(json!({"hit_id": id, "action": "accept"})).await;
    sim.work(json!({"hit_id": id, "action": "submit", "assignments_per_hit": 2}))
        .await;
    assert_eq!(state(&sim, &id).await, ("Unassignable".into(), 0, 3, 0));
    let returned = sim
        .work(json!({"hit_id": id, "action": "return", "assignments_per_hit": 1}))
        .await;
    assert_eq!(returned["assignments"].as_array().unwrap().len(), 1);
    assert_eq!(state(&sim, &id).await, ("Assignable".into(), 1, 2, 0));
    sim.work(json!({"hit_id": id, "action": "submit"})).await;
    assert_eq!(state(&sim, &id).await, ("Reviewable".into(), 0, 0, 0));
    // Only submitted work has assignment records; nothing accepted-but-unsubmitted.
    let list = sim
        .client
        .list_assignments_for_hit()
        .hit_id(&id)
        .max_results(100)
        .send()
        .await
        .unwrap();
    assert_eq!(list.num_results(), Some(5));
}

#[tokio::test]
async fn submissions_approval_rejection_and_auto_approval() {
    let sim = support::plain().await;
    let type_id = sim.hit_type().await; // auto-approval after one day
    let id = sim
        .client
        .create_hit_with_hit_type()
        .hit_type_id(&type_id)
        .max_assignments(3)
        .lifetime_in_seconds(3600)
        .question(support::form_question(&["colour", "size"]))
        .send()
        .await
        .unwrap()
        .hit
        .unwrap()
        .hit_id
        .unwrap();
    let done = sim
        .work(json!({"hit_id": id, "answers": {"colour": "red & blue"}}))
        .await;
    let ids: Vec<String> = done["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3);
    let got = sim
        .client
        .get_assignment()
        .assignment_id(&ids[0])
        .send()
        .await
        .unwrap();
    let a = got.assignment.unwrap();
    assert_eq!(a.assignment_status(), Some(&AssignmentStatus::Submitted));
    assert!(a.worker_id().unwrap().starts_with('A'));
    let answer = a.answer().unwrap();
    assert!(
        answer.contains(
            "<QuestionIdentifier>colour</QuestionIdentifier><FreeText>red &amp; blue</FreeText>"
        ),
        "{answer}"
    );
    assert!(
        answer.contains("<QuestionIdentifier>size</QuestionIdentifier>"),
        "{answer}"
    );
    assert_eq!(
        a.auto_approval_time().unwrap().secs() - a.submit_time().unwrap().secs(),
        86_400
    );
    assert_eq!(
        a.deadline().unwrap().secs() - a.accept_time().unwrap().secs(),
        600
    );
    assert_eq!(got.hit.unwrap().hit_id(), Some(id.as_str()));

    sim.client
        .approve_assignment()
        .assignment_id(&ids[0])
        .requester_feedback("thanks")
        .send()
        .await
        .unwrap();
    sim.client
        .reject_assignment()
        .assignment_id(&ids[1])
        .requester_feedback("wrong")
        .send()
        .await
        .unwrap();
    let err = sim
        .client
        .approve_assignment()
        .assignment_id(&ids[0])
        .send()
        .await
        .unwrap_err();
    let (code, message) = request_error(&err);
    assert_eq!(code, "AWS.MechanicalTurk.InvalidAssignmentState");
    assert!(
        message.starts_with("This operation can be called with a status of: Submitted ("),
        "{message}"
    );
    let err = sim
        .client
        .approve_assignment()
        .assignment_id(&ids[1])
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.InvalidAssignmentState"
    );
    // Feedback rules.
    let err = sim
        .client
        .reject_assignment()
        .assignment_id(&ids[2])
        .requester_feedback("x".repeat(1025))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    let err = sim
        .client
        .reject_assignment()
        .assignment_id(&ids[2])
        .requester_feedback("bad\u{1}char")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    // OverrideRejection reverses a rejection.
    sim.client
        .approve_assignment()
        .assignment_id(&ids[1])
        .override_rejection(true)
        .send()
        .await
        .unwrap();
    let (status, _, _, completed) = state(&sim, &id).await;
    assert_eq!((status.as_str(), completed), ("Reviewable", 2));

    // The third is approved automatically a day after submission.
    sim.advance(86_400 + 1).await;
    let a = sim
        .client
        .get_assignment()
        .assignment_id(&ids[2])
        .send()
        .await
        .unwrap()
        .assignment
        .unwrap();
    assert_eq!(a.assignment_status(), Some(&AssignmentStatus::Approved));
    assert_eq!(a.approval_time(), a.auto_approval_time());
    assert_eq!(state(&sim, &id).await.3, 3);
    let approved = sim
        .client
        .list_assignments_for_hit()
        .hit_id(&id)
        .assignment_statuses(AssignmentStatus::Approved)
        .send()
        .await
        .unwrap();
    assert_eq!(approved.num_results(), Some(3));
}

#[tokio::test]
async fn an_assignment_not_submitted_by_its_deadline_is_abandoned() {
    let sim = support::plain().await;
    let type_id = sim.hit_type().await; // 600 s assignments
    let id = sim.hit(&type_id, 2, None).await.hit_id.unwrap();
    sim.work(json!({"hit_id": id, "action": "accept", "assignments_per_hit": 2}))
        .await;
    assert_eq!(state(&sim, &id).await, ("Unassignable".into(), 0, 2, 0));
    sim.advance(601).await;
    assert_eq!(state(&sim, &id).await, ("Assignable".into(), 2, 0, 0));
    // Nothing left to submit: the late workers lost their slots, new ones take them.
    let done = sim.work(json!({"hit_id": id})).await;
    assert_eq!(done["assignments"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn expired_with_pending_work_is_unassignable_until_the_work_ends() {
    let sim = support::plain().await;
    let type_id = sim.hit_type().await;
    let id = sim.hit(&type_id, 3, None).await.hit_id.unwrap();
    sim.work(json!({"hit_id": id, "action": "accept", "assignments_per_hit": 1}))
        .await;
    sim.client
        .update_expiration_for_hit()
        .hit_id(&id)
        .expire_at(aws_sdk_mturk::primitives::DateTime::from_secs(0))
        .send()
        .await
        .unwrap();
    assert_eq!(state(&sim, &id).await, ("Unassignable".into(), 2, 1, 0));
    // The worker can still submit after expiry; nobody new can accept.
    let done = sim.work(json!({"hit_id": id})).await;
    assert_eq!(done["assignments"].as_array().unwrap().len(), 1);
    assert_eq!(state(&sim, &id).await.0, "Reviewable");
}

#[tokio::test]
async fn delete_hit_preconditions_and_disposal() {
    let sim = support::plain().await;
    let type_id = sim.hit_type().await;
    let id = sim.hit(&type_id, 2, None).await.hit_id.unwrap();
    let err = sim
        .client
        .delete_hit()
        .hit_id(&id)
        .send()
        .await
        .unwrap_err();
    let (code, message) = request_error(&err);
    assert_eq!(code, "AWS.MechanicalTurk.InvalidHITState");
    assert!(message.starts_with("This HIT is currently in the state 'Assignable'. This operation can be called with a status of: Reviewing, Reviewable ("), "{message}");
    let done = sim.work(json!({"hit_id": id})).await;
    let ids: Vec<&str> = done["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    // Reviewable, but with unreviewed work.
    let err = sim
        .client
        .delete_hit()
        .hit_id(&id)
        .send()
        .await
        .unwrap_err();
    let (_, message) = request_error(&err);
    assert!(
        message.starts_with("This HIT is currently in the state 'Reviewable'."),
        "{message}"
    );
    for a in &ids {
        sim.client
            .approve_assignment()
            .assignment_id(*a)
            .send()
            .await
            .unwrap();
    }
    // Reviewing works too.
    sim.client
        .update_hit_review_status()
        .hit_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(state(&sim, &id).await.0, "Reviewing");
    let reviewing = sim
        .client
        .list_reviewable_hits()
        .status(aws_sdk_mturk::types::ReviewableHitStatus::Reviewing)
        .send()
        .await
        .unwrap();
    assert_eq!(reviewing.num_results(), Some(1));
    sim.client.delete_hit().hit_id(&id).send().await.unwrap();
    let err = sim.client.get_hit().hit_id(&id).send().await.unwrap_err();
    let (code, message) = request_error(&err);
    assert_eq!(code, "AWS.MechanicalTurk.HITDoesNotExist");
    assert!(
        message.starts_with(&format!("Hit {id} does not exist. (")),
        "{message}"
    );
    assert_eq!(
        sim.client.list_hits().send().await.unwrap().num_results(),
        Some(0)
    );
    let err = sim
        .client
        .get_assignment()
        .assignment_id(ids[0])
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.AssignmentDoesNotExist"
    );
    assert_eq!(sim.stats().await["hits"], 0);

    // HITs are disposed of automatically 120 days after they expire.
    let old = sim.hit(&type_id, 1, None).await.hit_id.unwrap();
    sim.advance(3600 + 119 * 86_400).await;
    assert_eq!(state(&sim, &old).await.0, "Reviewable");
    sim.advance(86_400).await;
    let err = sim.client.get_hit().hit_id(&old).send().await.unwrap_err();
    assert_eq!(request_error(&err).0, "AWS.MechanicalTurk.HITDoesNotExist");
}

#[tokio::test]
async fn update_hit_review_status_moves_between_reviewable_and_reviewing() {
    let sim = support::plain().await;
    let type_id = sim.hit_type().await;
    let id = sim.hit(&type_id, 1, None).await.hit_id.unwrap();
    let err = sim
        .client
        .update_hit_review_status()
        .hit_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(request_error(&err).0, "AWS.MechanicalTurk.InvalidHITState");
    sim.work(json!({"hit_id": id})).await;
    let reviewable = sim
        .client
        .list_reviewable_hits()
        .hit_type_id(&type_id)
        .send()
        .await
        .unwrap();
    assert_eq!(reviewable.hits()[0].hit_id(), Some(id.as_str()));
    sim.client
        .update_hit_review_status()
        .hit_id(&id)
        .revert(false)
        .send()
        .await
        .unwrap();
    assert_eq!(state(&sim, &id).await.0, "Reviewing");
    sim.client
        .update_hit_review_status()
        .hit_id(&id)
        .revert(true)
        .send()
        .await
        .unwrap();
    assert_eq!(state(&sim, &id).await.0, "Reviewable");
    let hit = sim
        .client
        .get_hit()
        .hit_id(&id)
        .send()
        .await
        .unwrap()
        .hit
        .unwrap();
    assert_eq!(hit.hit_status(), Some(&HitStatus::Reviewable));
}

async fn balance(sim: &support::Sim) -> String {
    sim.client
        .get_account_balance()
        .send()
        .await
        .unwrap()
        .available_balance
        .unwrap()
}

#[tokio::test]
async fn the_balance_is_debited_with_mturk_fees() {
    let sim = support::plain().await;
    let resp = sim.client.get_account_balance().send().await.unwrap();
    assert_eq!(resp.available_balance(), Some("10000.00"));
    assert_eq!(resp.on_hold_balance(), Some("0.00"));
    let type_id = sim.hit_type().await; // 0.12
    // 3 x (0.12 + 20 % = 0.024 -> 0.02) = 0.42
    sim.hit(&type_id, 3, None).await;
    assert_eq!(balance(&sim).await, "9999.58");
    // 10 x (0.12 + 40 % = 0.048 -> 0.05) = 1.70
    let big = sim.hit(&type_id, 10, None).await.hit_id.unwrap();
    assert_eq!(balance(&sim).await, "9997.88");
    // Adding 2 assignments at the 40 % rate: 2 x 0.17.
    sim.client
        .create_additional_assignments_for_hit()
        .hit_id(&big)
        .number_of_additional_assignments(2)
        .send()
        .await
        .unwrap();
    assert_eq!(balance(&sim).await, "9997.54");
    // Minimum fee: 0.01 reward -> 0.002 fee -> at least 0.01.
    let cheap = sim
        .client
        .create_hit_type()
        .title("cheap")
        .description("d")
        .reward("0.01")
        .assignment_duration_in_seconds(60)
        .send()
        .await
        .unwrap()
        .hit_type_id
        .unwrap();
    sim.hit(&cheap, 1, None).await;
    assert_eq!(balance(&sim).await, "9997.52");
    // Masters: +5 %: 1.00 x 25 % = 0.25 per assignment.
    let masters = sim
        .client
        .create_hit_type()
        .title("masters")
        .description("d")
        .reward("1.00")
        .assignment_duration_in_seconds(60)
        .qualification_requirements(
            aws_sdk_mturk::types::QualificationRequirement::builder()
                .qualification_type_id("2F1QJWKUDD8XADTFD2Q0G6UTO95ALH")
                .comparator(aws_sdk_mturk::types::Comparator::Exists)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .hit_type_id
        .unwrap();
    sim.hit(&masters, 2, None).await;
    assert_eq!(balance(&sim).await, "9995.02");
    // Half-up: 0.13 x 20 % = 0.026 -> 0.03; 0.025 would round up too.
    let odd = sim
        .client
        .create_hit_type()
        .title("odd")
        .description("d")
        .reward("0.13")
        .assignment_duration_in_seconds(60)
        .send()
        .await
        .unwrap()
        .hit_type_id
        .unwrap();
    sim.hit(&odd, 1, None).await;
    assert_eq!(balance(&sim).await, "9994.86");
    // Too expensive for what is left.
    let pricey = sim
        .client
        .create_hit_type()
        .title("pricey")
        .description("d")
        .reward("5000.00")
        .assignment_duration_in_seconds(60)
        .send()
        .await
        .unwrap()
        .hit_type_id
        .unwrap();
    let err = sim
        .client
        .create_hit_with_hit_type()
        .hit_type_id(&pricey)
        .max_assignments(2)
        .lifetime_in_seconds(60)
        .question(support::crowd_question())
        .send()
        .await
        .unwrap_err();
    let (code, message) = request_error(&err);
    assert_eq!(code, "AWS.MechanicalTurk.InsufficientFunds");
    assert!(message.starts_with("This Requester has insufficient funds in their account to complete this transaction. Please visit https://requester.mturk.com/prepayments/new to purchase Prepaid HITs. ("));
    assert_eq!(balance(&sim).await, "9994.86");
}
