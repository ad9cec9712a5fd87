//! Qualification types, worker qualifications, qualification requests.

use aws_sdk_mturk::types::{
    Comparator, QualificationRequirement, QualificationStatus, QualificationTypeStatus,
};
use serde_json::json;

use crate::support::{self, request_error};

#[tokio::test]
async fn qualification_types_are_created_updated_listed_and_deleted() {
    let sim = support::plain().await;
    let created = sim
        .client
        .create_qualification_type()
        .name("street-trained")
        .description("Passed training")
        .keywords("street,photo")
        .qualification_type_status(QualificationTypeStatus::Active)
        .auto_granted(true)
        .auto_granted_value(3)
        .send()
        .await
        .unwrap()
        .qualification_type
        .unwrap();
    let id = created.qualification_type_id().unwrap().to_owned();
    assert_eq!(id.len(), 30);
    assert_eq!(created.name(), Some("street-trained"));
    assert_eq!(created.auto_granted(), Some(true));
    assert_eq!(created.auto_granted_value(), Some(3));
    assert_eq!(created.is_requestable(), Some(true));
    assert!(created.creation_time().is_some());
    let err = sim
        .client
        .create_qualification_type()
        .name("street-trained")
        .description("again")
        .qualification_type_status(QualificationTypeStatus::Active)
        .send()
        .await
        .unwrap_err();
    let (code, message) = request_error(&err);
    assert_eq!(code, "AWS.MechanicalTurk.QualificationTypeAlreadyExists");
    assert!(message.starts_with("You have already created a QualificationType with this name. A QualificationType's name must be unique among all of the QualificationTypes created by the same user. ("));

    let updated = sim
        .client
        .update_qualification_type()
        .qualification_type_id(&id)
        .description("New words")
        .qualification_type_status(QualificationTypeStatus::Inactive)
        .auto_granted(false)
        .send()
        .await
        .unwrap()
        .qualification_type
        .unwrap();
    assert_eq!(updated.description(), Some("New words"));
    assert_eq!(
        updated.qualification_type_status(),
        Some(&QualificationTypeStatus::Inactive)
    );
    assert_eq!(updated.name(), Some("street-trained"));
    let got = sim
        .client
        .get_qualification_type()
        .qualification_type_id(&id)
        .send()
        .await
        .unwrap()
        .qualification_type
        .unwrap();
    assert_eq!(got, updated);
    // A test needs a duration and excludes auto-granting.
    let err = sim
        .client
        .create_qualification_type()
        .name("tested")
        .description("d")
        .qualification_type_status(QualificationTypeStatus::Active)
        .test(support::form_question(&["q"]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    let err = sim
        .client
        .create_qualification_type()
        .name("tested")
        .description("d")
        .qualification_type_status(QualificationTypeStatus::Active)
        .test(support::form_question(&["q"]))
        .test_duration_in_seconds(60)
        .auto_granted(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.InvalidParameterValue"
    );

    for i in 0..12 {
        sim.client
            .create_qualification_type()
            .name(format!("bulk-{i}"))
            .description("bulk")
            .qualification_type_status(QualificationTypeStatus::Active)
            .send()
            .await
            .unwrap();
    }
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = sim
            .client
            .list_qualification_types()
            .must_be_requestable(false)
            .must_be_owned_by_caller(true)
            .max_results(5)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        names.extend(
            page.qualification_types()
                .iter()
                .map(|q| q.name().unwrap().to_owned()),
        );
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(names.len(), 13);
    assert_eq!(names[0], "street-trained");
    let found = sim
        .client
        .list_qualification_types()
        .must_be_requestable(false)
        .must_be_owned_by_caller(true)
        .query("STREET")
        .send()
        .await
        .unwrap();
    assert_eq!(found.num_results(), Some(1));
    let system = sim
        .client
        .list_qualification_types()
        .must_be_requestable(false)
        .query("Worker_Locale")
        .send()
        .await
        .unwrap();
    assert_eq!(
        system.qualification_types()[0].qualification_type_id(),
        Some("00000000000000000071")
    );

    sim.client
        .delete_qualification_type()
        .qualification_type_id(&id)
        .send()
        .await
        .unwrap();
    let err = sim
        .client
        .get_qualification_type()
        .qualification_type_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.QualificationTypeDoesNotExist"
    );
}

#[tokio::test]
async fn worker_qualifications_gate_simulated_workers() {
    let sim = support::plain().await;
    let qual = sim
        .client
        .create_qualification_type()
        .name("trained")
        .description("d")
        .qualification_type_status(QualificationTypeStatus::Active)
        .send()
        .await
        .unwrap()
        .qualification_type
        .unwrap()
        .qualification_type_id
        .unwrap();
    let type_id = sim
        .client
        .create_hit_type()
        .title("gated")
        .description("d")
        .reward("0.10")
        .assignment_duration_in_seconds(600)
        .qualification_requirements(
            QualificationRequirement::builder()
                .qualification_type_id(&qual)
                .comparator(Comparator::GreaterThanOrEqualTo)
                .integer_values(5)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .hit_type_id
        .unwrap();
    let id = sim.hit(&type_id, 3, None).await.hit_id.unwrap();
    let done = sim.work(json!({"hit_id": id})).await;
    assert_eq!(
        done["assignments"].as_array().unwrap().len(),
        0,
        "nobody qualifies yet"
    );
    sim.client
        .associate_qualification_with_worker()
        .qualification_type_id(&qual)
        .worker_id("ASIMWORKER00002")
        .integer_value(9)
        .send_notification(false)
        .send()
        .await
        .unwrap();
    sim.client
        .associate_qualification_with_worker()
        .qualification_type_id(&qual)
        .worker_id("ASIMWORKER00003")
        .integer_value(4)
        .send()
        .await
        .unwrap();
    let done = sim.work(json!({"hit_id": id})).await;
    assert_eq!(done["assignments"].as_array().unwrap().len(), 1, "{done}");
    let list = sim
        .client
        .list_assignments_for_hit()
        .hit_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(list.assignments()[0].worker_id(), Some("ASIMWORKER00002"));

    let score = sim
        .client
        .get_qualification_score()
        .qualification_type_id(&qual)
        .worker_id("ASIMWORKER00002")
        .send()
        .await
        .unwrap()
        .qualification
        .unwrap();
    assert_eq!(score.integer_value(), Some(9));
    assert_eq!(score.status(), Some(&QualificationStatus::Granted));
    let workers = sim
        .client
        .list_workers_with_qualification_type()
        .qualification_type_id(&qual)
        .send()
        .await
        .unwrap();
    assert_eq!(workers.num_results(), Some(2));
    sim.client
        .disassociate_qualification_from_worker()
        .qualification_type_id(&qual)
        .worker_id("ASIMWORKER00002")
        .reason("retrained")
        .send()
        .await
        .unwrap();
    let revoked = sim
        .client
        .list_workers_with_qualification_type()
        .qualification_type_id(&qual)
        .status(QualificationStatus::Revoked)
        .send()
        .await
        .unwrap();
    assert_eq!(
        revoked.qualifications()[0].worker_id(),
        Some("ASIMWORKER00002")
    );
    let err = sim
        .client
        .get_qualification_score()
        .qualification_type_id(&qual)
        .worker_id("ANOBODY")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.QualificationDoesNotExist"
    );
    let err = sim
        .client
        .associate_qualification_with_worker()
        .qualification_type_id(&qual)
        .worker_id("bad-worker")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.InvalidParameterValue"
    );

    let for_qual = sim
        .client
        .list_hits_for_qualification_type()
        .qualification_type_id(&qual)
        .send()
        .await
        .unwrap();
    assert_eq!(for_qual.hits()[0].hit_id(), Some(id.as_str()));
}

#[tokio::test]
async fn system_qualifications_of_simulated_workers() {
    let sim = support::plain().await;
    let make = |reqs: Vec<QualificationRequirement>, title: &'static str| {
        let client = sim.client.clone();
        async move {
            client
                .create_hit_type()
                .title(title)
                .description("d")
                .reward("0.10")
                .assignment_duration_in_seconds(600)
                .set_qualification_requirements(Some(reqs))
                .send()
                .await
                .unwrap()
                .hit_type_id
                .unwrap()
        }
    };
    let us = make(
        vec![
            QualificationRequirement::builder()
                .qualification_type_id("00000000000000000071")
                .comparator(Comparator::In)
                .locale_values(
                    aws_sdk_mturk::types::Locale::builder()
                        .country("US")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        ],
        "us",
    )
    .await;
    let de = make(
        vec![
            QualificationRequirement::builder()
                .qualification_type_id("00000000000000000071")
                .comparator(Comparator::EqualTo)
                .locale_values(
                    aws_sdk_mturk::types::Locale::builder()
                        .country("DE")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        ],
        "de",
    )
    .await;
    let masters = make(
        vec![
            QualificationRequirement::builder()
                .qualification_type_id("2F1QJWKUDD8XADTFD2Q0G6UTO95ALH")
                .comparator(Comparator::Exists)
                .build()
                .unwrap(),
        ],
        "masters",
    )
    .await;
    let rate = make(
        vec![
            QualificationRequirement::builder()
                .qualification_type_id("000000000000000000L0")
                .comparator(Comparator::GreaterThanOrEqualTo)
                .integer_values(99)
                .build()
                .unwrap(),
        ],
        "rate",
    )
    .await;
    let mut counts = Vec::new();
    for t in [&us, &de, &masters, &rate] {
        let id = sim.hit(t, 1, None).await.hit_id.unwrap();
        let done = sim.work(json!({"hit_id": id})).await;
        counts.push(done["assignments"].as_array().unwrap().len());
    }
    assert_eq!(counts, vec![1, 0, 0, 1]);
    let id = sim.hit(&masters, 1, None).await.hit_id.unwrap();
    let done = sim
        .work(json!({"hit_id": id, "worker": {"masters": true}}))
        .await;
    assert_eq!(done["assignments"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn qualification_requests_are_accepted_and_rejected() {
    let sim = support::plain().await;
    let qual = sim
        .client
        .create_qualification_type()
        .name("ask")
        .description("d")
        .qualification_type_status(QualificationTypeStatus::Active)
        .send()
        .await
        .unwrap()
        .qualification_type
        .unwrap()
        .qualification_type_id
        .unwrap();
    for worker in ["AWORKERA", "AWORKERB"] {
        sim.work(json!({"action": "request_qualification", "qualification_type_id": qual, "worker_id": worker, "answer": "hello"})).await;
    }
    let requests = sim
        .client
        .list_qualification_requests()
        .qualification_type_id(&qual)
        .send()
        .await
        .unwrap();
    assert_eq!(requests.num_results(), Some(2));
    let a = requests.qualification_requests()[0].clone();
    let b = requests.qualification_requests()[1].clone();
    assert_eq!(a.worker_id(), Some("AWORKERA"));
    assert_eq!(a.answer(), Some("hello"));
    sim.client
        .accept_qualification_request()
        .qualification_request_id(a.qualification_request_id().unwrap())
        .integer_value(42)
        .send()
        .await
        .unwrap();
    sim.client
        .reject_qualification_request()
        .qualification_request_id(b.qualification_request_id().unwrap())
        .reason("no")
        .send()
        .await
        .unwrap();
    let score = sim
        .client
        .get_qualification_score()
        .qualification_type_id(&qual)
        .worker_id("AWORKERA")
        .send()
        .await
        .unwrap();
    assert_eq!(score.qualification.unwrap().integer_value(), Some(42));
    assert!(
        sim.client
            .get_qualification_score()
            .qualification_type_id(&qual)
            .worker_id("AWORKERB")
            .send()
            .await
            .is_err()
    );
    let err = sim
        .client
        .accept_qualification_request()
        .qualification_request_id(b.qualification_request_id().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.QualificationRequestDoesNotExist"
    );
    assert_eq!(
        sim.client
            .list_qualification_requests()
            .send()
            .await
            .unwrap()
            .num_results(),
        Some(0)
    );
}
