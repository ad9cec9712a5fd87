//! Bonuses, worker blocks, notifications, NotifyWorkers, file upload URLs, review policies,
//! the control endpoints themselves, and a census of the 39 operations.

use aws_sdk_mturk::types::{
    EventType, NotificationSpecification, NotificationTransport, ReviewPolicy,
};
use serde_json::json;

use crate::support::{self, request_error};

#[tokio::test]
async fn bonuses_are_deduplicated_and_charged_with_fees() {
    let sim = support::plain().await;
    let type_id = sim.hit_type().await;
    let id = sim.hit(&type_id, 1, None).await.hit_id.unwrap();
    let done = sim.work(json!({"hit_id": id})).await;
    let assignment = done["assignments"][0].as_str().unwrap().to_owned();
    let worker = sim
        .client
        .get_assignment()
        .assignment_id(&assignment)
        .send()
        .await
        .unwrap()
        .assignment
        .unwrap()
        .worker_id
        .unwrap();
    let before = sim
        .client
        .get_account_balance()
        .send()
        .await
        .unwrap()
        .available_balance
        .unwrap();
    assert_eq!(before, "9999.86"); // 0.12 + 0.02
    sim.client
        .send_bonus()
        .worker_id(&worker)
        .assignment_id(&assignment)
        .bonus_amount("1.00")
        .reason("great work")
        .unique_request_token("bonus-1")
        .send()
        .await
        .unwrap();
    let err = sim
        .client
        .send_bonus()
        .worker_id(&worker)
        .assignment_id(&assignment)
        .bonus_amount("1.00")
        .reason("great work")
        .unique_request_token("bonus-1")
        .send()
        .await
        .unwrap_err();
    assert!(request_error(&err).1.contains("has already been processed"));
    assert_eq!(
        sim.client
            .get_account_balance()
            .send()
            .await
            .unwrap()
            .available_balance
            .unwrap(),
        "9998.66"
    );
    let err = sim
        .client
        .send_bonus()
        .worker_id("AOTHERWORKER")
        .assignment_id(&assignment)
        .bonus_amount("1.00")
        .reason("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    let payments = sim
        .client
        .list_bonus_payments()
        .hit_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(payments.num_results(), Some(1));
    assert_eq!(payments.bonus_payments()[0].bonus_amount(), Some("1.00"));
    let by_assignment = sim
        .client
        .list_bonus_payments()
        .assignment_id(&assignment)
        .send()
        .await
        .unwrap();
    assert_eq!(by_assignment.num_results(), Some(1));
    assert!(sim.client.list_bonus_payments().send().await.is_err());
}

#[tokio::test]
async fn blocked_workers_do_not_work_and_blocks_are_listed() {
    let sim = support::plain().await;
    sim.client
        .create_worker_block()
        .worker_id("ASIMWORKER00001")
        .reason("spam")
        .send()
        .await
        .unwrap();
    sim.client
        .create_worker_block()
        .worker_id("ABAD2")
        .reason("spam")
        .send()
        .await
        .unwrap();
    let blocks = sim
        .client
        .list_worker_blocks()
        .max_results(1)
        .send()
        .await
        .unwrap();
    assert_eq!(blocks.num_results(), Some(1));
    let rest = sim
        .client
        .list_worker_blocks()
        .next_token(blocks.next_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.worker_blocks()[0].worker_id(), Some("ABAD2"));
    assert!(rest.next_token().is_none());
    let type_id = sim.hit_type().await;
    let id = sim.hit(&type_id, 1, None).await.hit_id.unwrap();
    sim.work(json!({"hit_id": id})).await;
    let a = sim
        .client
        .list_assignments_for_hit()
        .hit_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(a.assignments()[0].worker_id(), Some("ASIMWORKER00002"));
    sim.client
        .delete_worker_block()
        .worker_id("ABAD2")
        .reason("ok")
        .send()
        .await
        .unwrap();
    assert_eq!(
        sim.client
            .list_worker_blocks()
            .send()
            .await
            .unwrap()
            .num_results(),
        Some(1)
    );
    let err = sim
        .client
        .create_worker_block()
        .worker_id("ABAD3")
        .reason("")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
}

#[tokio::test]
async fn notification_settings_are_validated() {
    let sim = support::plain().await;
    let type_id = sim.hit_type().await;
    let spec = |transport: NotificationTransport, destination: &str, version: &str| {
        NotificationSpecification::builder()
            .destination(destination)
            .transport(transport)
            .version(version)
            .event_types(EventType::AssignmentSubmitted)
            .build()
            .unwrap()
    };
    let ok = [
        (NotificationTransport::Email, "ops@example.org"),
        (
            NotificationTransport::Sqs,
            "https://sqs.us-east-1.amazonaws.com/123456789012/turk-events",
        ),
        (
            NotificationTransport::Sns,
            "arn:aws:sns:us-east-1:123456789012:turk-events",
        ),
    ];
    for (t, d) in ok {
        sim.client
            .update_notification_settings()
            .hit_type_id(&type_id)
            .notification(spec(t.clone(), d, "2006-05-05"))
            .active(true)
            .send()
            .await
            .unwrap();
        sim.client
            .send_test_event_notification()
            .notification(spec(t, d, "2006-05-05"))
            .test_event_type(EventType::Ping)
            .send()
            .await
            .unwrap();
    }
    sim.client
        .update_notification_settings()
        .hit_type_id(&type_id)
        .active(false)
        .send()
        .await
        .unwrap();
    let bad = [
        (NotificationTransport::Email, "not-an-email", "2006-05-05"),
        (
            NotificationTransport::Sqs,
            "arn:aws:sns:us-east-1:123456789012:x",
            "2006-05-05",
        ),
        (
            NotificationTransport::Sns,
            "https://sqs.us-east-1.amazonaws.com/123456789012/q",
            "2006-05-05",
        ),
        (
            NotificationTransport::Email,
            "ops@example.org",
            "2014-08-15",
        ),
    ];
    for (t, d, v) in bad {
        let err = sim
            .client
            .update_notification_settings()
            .hit_type_id(&type_id)
            .notification(spec(t, d, v))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            request_error(&err).0,
            "AWS.MechanicalTurk.InvalidParameterValue",
            "{d} {v}"
        );
    }
    let err = sim
        .client
        .update_notification_settings()
        .hit_type_id("3NOTYPE")
        .active(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.HITTypeDoesNotExist"
    );
    let err = sim
        .client
        .send_test_event_notification()
        .notification(spec(NotificationTransport::Email, "x", "2006-05-05"))
        .test_event_type(EventType::Ping)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
}

#[tokio::test]
async fn notify_workers_limits_and_failures() {
    let sim = support::plain().await;
    let type_id = sim.hit_type().await;
    let id = sim.hit(&type_id, 1, None).await.hit_id.unwrap();
    sim.work(json!({"hit_id": id, "worker_id": "AKNOWN"})).await;
    let out = sim
        .client
        .notify_workers()
        .subject("Thanks")
        .message_text("More work soon")
        .worker_ids("AKNOWN")
        .worker_ids("ASTRANGER")
        .send()
        .await
        .unwrap();
    let failures = out.notify_workers_failure_statuses();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].worker_id(), Some("ASTRANGER"));
    let many: Vec<String> = (0..101).map(|i| format!("AW{i}")).collect();
    let err = sim
        .client
        .notify_workers()
        .subject("s")
        .message_text("m")
        .set_worker_ids(Some(many))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    let err = sim
        .client
        .notify_workers()
        .subject("s".repeat(201))
        .message_text("m")
        .worker_ids("AKNOWN")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    let err = sim
        .client
        .notify_workers()
        .subject("s")
        .message_text("m".repeat(4097))
        .worker_ids("AKNOWN")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
}

#[tokio::test]
async fn file_upload_urls_and_review_policies() {
    let sim = support::plain().await;
    let type_id = sim.hit_type().await;
    let policy = ReviewPolicy::builder()
        .policy_name("SimplePlurality/2011-09-01")
        .build()
        .unwrap();
    let id = sim
        .client
        .create_hit_with_hit_type()
        .hit_type_id(&type_id)
        .lifetime_in_seconds(600)
        .question(support::crowd_question())
        .assignment_review_policy(policy.clone())
        .send()
        .await
        .unwrap()
        .hit
        .unwrap()
        .hit_id
        .unwrap();
    let results = sim
        .client
        .list_review_policy_results_for_hit()
        .hit_id(&id)
        .retrieve_results(true)
        .send()
        .await
        .unwrap();
    assert_eq!(results.hit_id(), Some(id.as_str()));
    assert_eq!(results.assignment_review_policy(), Some(&policy));
    let bad = ReviewPolicy::builder()
        .policy_name("Nope/1")
        .build()
        .unwrap();
    let err = sim
        .client
        .create_hit_with_hit_type()
        .hit_type_id(&type_id)
        .lifetime_in_seconds(600)
        .question(support::crowd_question())
        .hit_review_policy(bad)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    let done = sim
        .work(json!({"hit_id": id, "answers": {"label": "cat"}}))
        .await;
    let assignment = done["assignments"][0].as_str().unwrap();
    let a = sim
        .client
        .get_assignment()
        .assignment_id(assignment)
        .send()
        .await
        .unwrap()
        .assignment
        .unwrap();
    assert!(a.answer().unwrap().contains("<QuestionIdentifier>taskAnswers</QuestionIdentifier><FreeText>[{&quot;label&quot;:&quot;cat&quot;}]</FreeText>"), "{:?}", a.answer());
    let url = sim
        .client
        .get_file_upload_url()
        .assignment_id(assignment)
        .question_identifier("upload")
        .send()
        .await
        .unwrap();
    assert!(url.file_upload_url().unwrap().starts_with("https://"));
    let err = sim
        .client
        .get_file_upload_url()
        .assignment_id("3NOSUCHASSIGNMENT")
        .question_identifier("q")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.AssignmentDoesNotExist"
    );
}

#[tokio::test]
async fn control_endpoints() {
    let sim = support::plain().await;
    let (status, clock) = support::http(&sim.url, "GET", "/_sim/clock", None).await;
    assert_eq!(status, 200);
    let now = clock["now"].as_i64().unwrap();
    let advanced = sim.advance(3600).await;
    assert!((advanced - now - 3600).abs() <= 2);
    let (status, _) = support::http(
        &sim.url,
        "POST",
        "/_sim/clock",
        Some(json!({"advance_seconds": -5})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, body) = support::http(
        &sim.url,
        "POST",
        "/_sim/work",
        Some(json!({"action": "dance"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) =
        support::http(&sim.url, "POST", "/_sim/work", Some(json!({"hitid": "x"}))).await;
    assert_eq!(status, 400, "unknown fields are refused");
    let (status, _) = support::http(&sim.url, "GET", "/_sim/nothing", None).await;
    assert_eq!(status, 404);

    let type_id = sim.hit_type().await;
    for i in 0..4 {
        sim.hit(&type_id, 2, Some(&format!("s{i}"))).await;
    }
    // Two HITs carrying one annotation count as one duplicated annotation.
    sim.client
        .create_hit_with_hit_type()
        .hit_type_id(&type_id)
        .lifetime_in_seconds(60)
        .question(support::crowd_question())
        .requester_annotation("test/s0")
        .send()
        .await
        .unwrap();
    let done = sim
        .work(json!({"max_hits": 2, "assignments_per_hit": 1}))
        .await;
    assert_eq!(done["hits"].as_array().unwrap().len(), 2);
    let stats = sim.stats().await;
    assert_eq!(stats["hits"], 5);
    assert_eq!(stats["duplicate_annotations"], 1);
    assert_eq!(stats["hits_by_status"]["Assignable"], 5);
    assert_eq!(stats["requests"]["CreateHITWithHITType"], 5);
    assert_eq!(stats["requests"]["CreateHITType"], 1);
    assert_eq!(stats["throttled"], 0);
    assert_eq!(stats["faults"], 0);
    assert_eq!(stats["dropped"], 0);
}

#[test]
fn every_operation_of_the_api_is_served() {
    assert_eq!(turkform_sim::OPERATIONS.len(), 39);
}

#[test]
fn every_operation_is_either_a_read_or_mutating() {
    use turkform_sim::{OPERATIONS, mutating_operations, operation};
    for op in OPERATIONS {
        let read = op.name.starts_with("Get") || op.name.starts_with("List");
        assert_eq!(
            read, !op.mutating,
            "{}: every operation but the Get/List reads counts as mutating",
            op.name
        );
        assert!(std::ptr::eq(operation(op.name).unwrap(), op));
    }
    let mutating: Vec<&str> = mutating_operations().collect();
    assert_eq!(mutating.len(), 23);
    assert!(mutating.contains(&"UpdateQualificationType"));
    assert!(mutating.contains(&"DeleteHIT"));
    assert!(operation("NoSuchOperation").is_none());
    let mut names: Vec<&str> = OPERATIONS.iter().map(|o| o.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), OPERATIONS.len(), "each name once");
}
