//! HIT types, HIT creation, token dedup, additional assignments, expiry, retyping, pagination.

use aws_sdk_mturk::primitives::DateTime;
use aws_sdk_mturk::types::{Comparator, QualificationRequirement};

use crate::support::{self, code, crowd_question, request_error};

#[tokio::test]
async fn identical_hit_type_properties_give_the_same_id() {
    let sim = support::plain().await;
    let a = sim.hit_type().await;
    let b = sim.hit_type().await;
    assert_eq!(a, b);
    assert_eq!(a.len(), 30);
    let other = sim
        .client
        .create_hit_type()
        .title("Label a photo")
        .description("Say what is in one photo")
        .keywords("image,label")
        .reward("0.13")
        .assignment_duration_in_seconds(600)
        .auto_approval_delay_in_seconds(86_400)
        .send()
        .await
        .unwrap()
        .hit_type_id
        .unwrap();
    assert_ne!(a, other);
    // "0.1" and "0.10" are the same reward; an omitted auto-approval delay is the 30-day default.
    let x = sim
        .client
        .create_hit_type()
        .title("t")
        .description("d")
        .reward("0.1")
        .assignment_duration_in_seconds(60)
        .send()
        .await
        .unwrap()
        .hit_type_id
        .unwrap();
    let y = sim
        .client
        .create_hit_type()
        .title("t")
        .description("d")
        .reward("0.10")
        .assignment_duration_in_seconds(60)
        .auto_approval_delay_in_seconds(2_592_000)
        .send()
        .await
        .unwrap()
        .hit_type_id
        .unwrap();
    assert_eq!(x, y);
}

#[tokio::test]
async fn create_hit_returns_the_full_hit_with_numeric_timestamps() {
    let sim = support::plain().await;
    let type_id = sim.hit_type().await;
    let before = sim.now().await;
    let hit = sim.hit(&type_id, 3, Some("tok-1")).await;
    let id = hit.hit_id().unwrap();
    assert_eq!(id.len(), 30);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    );
    assert_eq!(hit.hit_type_id(), Some(type_id.as_str()));
    assert_eq!(hit.title(), Some("Label a photo"));
    assert_eq!(hit.reward(), Some("0.12"));
    assert_eq!(hit.max_assignments(), Some(3));
    assert_eq!(hit.hit_status().unwrap().as_str(), "Assignable");
    assert_eq!(hit.number_of_assignments_available(), Some(3));
    assert_eq!(hit.number_of_assignments_pending(), Some(0));
    assert_eq!(hit.number_of_assignments_completed(), Some(0));
    assert_eq!(hit.requester_annotation(), Some("test/tok-1"));
    assert_eq!(hit.question(), Some(crowd_question().as_str()));
    let created = hit.creation_time().unwrap().secs();
    assert!((created - before).abs() <= 2);
    assert_eq!(hit.expiration().unwrap().secs() - created, 3600);
    let got = sim
        .client
        .get_hit()
        .hit_id(id)
        .send()
        .await
        .unwrap()
        .hit
        .unwrap();
    assert_eq!(got, hit);
}

#[tokio::test]
async fn create_hit_registers_its_hit_type() {
    let sim = support::plain().await;
    let type_id = sim.hit_type().await;
    let hit = sim
        .client
        .create_hit()
        .title("Label a photo")
        .description("Say what is in one photo")
        .keywords("image,label")
        .reward("0.12")
        .assignment_duration_in_seconds(600)
        .auto_approval_delay_in_seconds(86_400)
        .lifetime_in_seconds(600)
        .question(crowd_question())
        .send()
        .await
        .unwrap()
        .hit
        .unwrap();
    assert_eq!(hit.hit_type_id(), Some(type_id.as_str()));
    assert_eq!(
        hit.max_assignments(),
        Some(1),
        "MaxAssignments defaults to 1"
    );
}

#[tokio::test]
async fn a_reused_token_names_the_existing_hit_and_expires_after_24_hours() {
    let sim = support::plain().await;
    let type_id = sim.hit_type().await;
    let first = sim.hit(&type_id, 1, Some("item-42")).await;
    let id = first.hit_id().unwrap().to_owned();
    let err = sim
        .client
        .create_hit_with_hit_type()
        .hit_type_id(&type_id)
        .lifetime_in_seconds(3600)
        .question(crowd_question())
        .unique_request_token("item-42")
        .send()
        .await
        .unwrap_err();
    let (code, message) = request_error(&err);
    assert_eq!(code, "AWS.MechanicalTurk.HitAlreadyExists");
    assert!(
        message.starts_with(&format!(
            "There is already a HIT which exists with the same UniqueRequestToken: {id} ("
        )),
        "{message}"
    );
    assert!(message.ends_with(')'));
    let runs: Vec<&str> = message
        .split(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit()))
        .filter(|r| r.len() == 30)
        .collect();
    assert_eq!(
        runs,
        vec![id.as_str()],
        "the HIT id is the only 30-character id in {message}"
    );
    assert!(matches!(
        err.into_service_error(),
        aws_sdk_mturk::operation::create_hit_with_hit_type::CreateHITWithHITTypeError::RequestError(
            _
        )
    ));
    // CreateHIT shares the token space.
    let err = sim
        .client
        .create_hit()
        .title("t")
        .description("d")
        .reward("0.01")
        .assignment_duration_in_seconds(60)
        .lifetime_in_seconds(60)
        .question(crowd_question())
        .unique_request_token("item-42")
        .send()
        .await
        .unwrap_err();
    assert_eq!(request_error(&err).0, "AWS.MechanicalTurk.HitAlreadyExists");

    sim.advance(24 * 3600 - 60).await;
    assert!(
        sim.client
            .create_hit_with_hit_type()
            .hit_type_id(&type_id)
            .lifetime_in_seconds(3600)
            .question(crowd_question())
            .unique_request_token("item-42")
            .send()
            .await
            .is_err()
    );
    sim.advance(120).await;
    let second = sim.hit(&type_id, 1, Some("item-42")).await;
    assert_ne!(
        second.hit_id().unwrap(),
        id,
        "after 24 h the token creates a new HIT"
    );
}

#[tokio::test]
async fn additional_assignments_dedup_and_the_ten_assignment_rule() {
    let sim = support::plain().await;
    let type_id = sim.hit_type().await;
    let hit = sim.hit(&type_id, 3, None).await;
    let id = hit.hit_id().unwrap();
    sim.client
        .create_additional_assignments_for_hit()
        .hit_id(id)
        .number_of_additional_assignments(2)
        .unique_request_token("more-1")
        .send()
        .await
        .unwrap();
    let err = sim
        .client
        .create_additional_assignments_for_hit()
        .hit_id(id)
        .number_of_additional_assignments(2)
        .unique_request_token("more-1")
        .send()
        .await
        .unwrap_err();
    let (_, message) = request_error(&err);
    assert!(message.contains("has already been processed"), "{message}");
    let got = sim
        .client
        .get_hit()
        .hit_id(id)
        .send()
        .await
        .unwrap()
        .hit
        .unwrap();
    assert_eq!(got.max_assignments(), Some(5));
    assert_eq!(got.number_of_assignments_available(), Some(5));
    // 5 -> 10 crosses the line.
    let err = sim
        .client
        .create_additional_assignments_for_hit()
        .hit_id(id)
        .number_of_additional_assignments(5)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.InvalidMaximumAssignmentsIncrease"
    );
    sim.client
        .create_additional_assignments_for_hit()
        .hit_id(id)
        .number_of_additional_assignments(4)
        .send()
        .await
        .unwrap();
    // A HIT created with 10 can grow.
    let big = sim.hit(&type_id, 10, None).await;
    sim.client
        .create_additional_assignments_for_hit()
        .hit_id(big.hit_id().unwrap())
        .number_of_additional_assignments(5)
        .send()
        .await
        .unwrap();
    let err = sim
        .client
        .create_additional_assignments_for_hit()
        .hit_id("3NOSUCHHIT0000000000000000000X")
        .number_of_additional_assignments(1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(request_error(&err).0, "AWS.MechanicalTurk.HITDoesNotExist");
}

#[tokio::test]
async fn update_expiration_expires_extends_and_refuses_shortening() {
    let sim = support::plain().await;
    let type_id = sim.hit_type().await;
    let hit = sim.hit(&type_id, 2, None).await;
    let id = hit.hit_id().unwrap();
    let expiration = hit.expiration().unwrap().secs();
    // Shortening to an earlier future time is refused.
    let err = sim
        .client
        .update_expiration_for_hit()
        .hit_id(id)
        .expire_at(DateTime::from_secs(expiration - 600))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    // Expire now (0): Expiration becomes the call time, the HIT is Reviewable (nothing pending).
    let now = sim.now().await;
    sim.client
        .update_expiration_for_hit()
        .hit_id(id)
        .expire_at(DateTime::from_secs(0))
        .send()
        .await
        .unwrap();
    let got = sim
        .client
        .get_hit()
        .hit_id(id)
        .send()
        .await
        .unwrap()
        .hit
        .unwrap();
    assert!((got.expiration().unwrap().secs() - now).abs() <= 2);
    assert_eq!(got.hit_status().unwrap().as_str(), "Reviewable");
    // The same (HIT, ExpireAt) again is "already processed", like the real service.
    let err = sim
        .client
        .update_expiration_for_hit()
        .hit_id(id)
        .expire_at(DateTime::from_secs(0))
        .send()
        .await
        .unwrap_err();
    let (_, message) = request_error(&err);
    assert!(message.starts_with(&format!("The idempotency token \"{id}Thu Jan 01 00:00:00 UTC 1970\" has already been processed. (")), "{message}");
    // Re-extending makes it Assignable again.
    let later = now + 7200;
    sim.client
        .update_expiration_for_hit()
        .hit_id(id)
        .expire_at(DateTime::from_secs(later))
        .send()
        .await
        .unwrap();
    let got = sim
        .client
        .get_hit()
        .hit_id(id)
        .send()
        .await
        .unwrap()
        .hit
        .unwrap();
    assert_eq!(got.hit_status().unwrap().as_str(), "Assignable");
    assert_eq!(got.expiration().unwrap().secs(), later);
    // Extending further works; the virtual clock expires it.
    sim.client
        .update_expiration_for_hit()
        .hit_id(id)
        .expire_at(DateTime::from_secs(later + 60))
        .send()
        .await
        .unwrap();
    sim.advance(7200 + 61).await;
    let got = sim
        .client
        .get_hit()
        .hit_id(id)
        .send()
        .await
        .unwrap()
        .hit
        .unwrap();
    assert_eq!(got.hit_status().unwrap().as_str(), "Reviewable");
}

#[tokio::test]
async fn update_hit_type_of_hit_changes_the_properties() {
    let sim = support::plain().await;
    let type_id = sim.hit_type().await;
    let hit = sim.hit(&type_id, 2, None).await;
    let id = hit.hit_id().unwrap();
    let other = sim
        .client
        .create_hit_type()
        .title("New title")
        .description("d")
        .reward("0.50")
        .assignment_duration_in_seconds(300)
        .send()
        .await
        .unwrap()
        .hit_type_id
        .unwrap();
    sim.client
        .update_hit_type_of_hit()
        .hit_id(id)
        .hit_type_id(&other)
        .send()
        .await
        .unwrap();
    let got = sim
        .client
        .get_hit()
        .hit_id(id)
        .send()
        .await
        .unwrap()
        .hit
        .unwrap();
    assert_eq!(got.hit_type_id(), Some(other.as_str()));
    assert_eq!(got.title(), Some("New title"));
    assert_eq!(got.reward(), Some("0.50"));
    assert_eq!(got.assignment_duration_in_seconds(), Some(300));
    let err = sim
        .client
        .update_hit_type_of_hit()
        .hit_id(id)
        .hit_type_id("3NOSUCHTYPE")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.HITTypeDoesNotExist"
    );
}

#[tokio::test]
async fn list_hits_paginates_with_opaque_tokens() {
    let sim = support::plain().await;
    let type_id = sim.hit_type().await;
    let mut created = Vec::new();
    for i in 0..25 {
        created.push(
            sim.hit(&type_id, 1, Some(&format!("p{i}")))
                .await
                .hit_id
                .unwrap(),
        );
    }
    // Default page size is 10.
    let first = sim.client.list_hits().send().await.unwrap();
    assert_eq!(first.num_results(), Some(10));
    assert_eq!(first.hits().len(), 10);
    let mut seen = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = sim
            .client
            .list_hits()
            .max_results(7)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        pages += 1;
        assert_eq!(page.num_results(), Some(page.hits().len() as i32));
        seen.extend(page.hits().iter().map(|h| h.hit_id().unwrap().to_owned()));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(seen, created, "stable creation order, each HIT once");
    let err = sim
        .client
        .list_hits()
        .max_results(101)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    let err = sim
        .client
        .list_hits()
        .max_results(0)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    let err = sim
        .client
        .list_hits()
        .next_token("garbage")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
}

#[tokio::test]
async fn request_validation_follows_the_limits_table() {
    let sim = support::plain().await;
    let base = || {
        sim.client
            .create_hit_type()
            .title("t")
            .description("d")
            .reward("0.05")
            .assignment_duration_in_seconds(60)
    };
    assert_eq!(
        code(base().title("x".repeat(129)).send().await),
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    assert!(base().title("x".repeat(128)).send().await.is_ok());
    assert_eq!(
        code(base().description("x".repeat(2000)).send().await),
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    assert_eq!(
        code(base().keywords("x".repeat(1000)).send().await),
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    assert_eq!(
        code(base().reward("1.234").send().await),
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    assert_eq!(
        code(base().reward("$1").send().await),
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    assert_eq!(
        code(base().assignment_duration_in_seconds(29).send().await),
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    assert_eq!(
        code(
            base()
                .assignment_duration_in_seconds(31_536_001)
                .send()
                .await
        ),
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    assert_eq!(
        code(
            base()
                .auto_approval_delay_in_seconds(2_592_001)
                .send()
                .await
        ),
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    // Required members.
    let err = sim
        .client
        .create_hit_type()
        .description("d")
        .reward("0.05")
        .assignment_duration_in_seconds(60)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        request_error(&err).0,
        "AWS.MechanicalTurk.InvalidParameterValue"
    );

    let type_id = sim.hit_type().await;
    let hit = || {
        sim.client
            .create_hit_with_hit_type()
            .hit_type_id(&type_id)
            .lifetime_in_seconds(60)
    };
    assert_eq!(
        code(
            hit()
                .question(crowd_question())
                .lifetime_in_seconds(29)
                .send()
                .await
        ),
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    assert_eq!(
        code(
            hit()
                .question(crowd_question())
                .max_assignments(0)
                .send()
                .await
        ),
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    assert_eq!(
        code(
            hit()
                .question(crowd_question())
                .requester_annotation("a".repeat(256))
                .send()
                .await
        ),
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    assert!(
        hit()
            .question(crowd_question())
            .requester_annotation("a".repeat(255))
            .send()
            .await
            .is_ok()
    );
    assert_eq!(
        code(hit().send().await),
        "AWS.MechanicalTurk.InvalidParameterValue",
        "neither Question nor HITLayoutId"
    );
    assert_eq!(
        code(
            hit()
                .question(crowd_question())
                .hit_layout_id("3LAYOUT")
                .send()
                .await
        ),
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    assert!(hit().hit_layout_id("3LAYOUT").send().await.is_ok());
    assert_eq!(
        code(hit().question("<HTMLQuestion").send().await),
        "AWS.MechanicalTurk.XMLParseError"
    );
    assert_eq!(
        code(hit().question("<Foo xmlns=\"urn:x\"/>").send().await),
        "AWS.MechanicalTurk.XMLParseError"
    );
    let no_height = format!(
        "<HTMLQuestion xmlns=\"{}\"><HTMLContent>x</HTMLContent></HTMLQuestion>",
        support::HTML_NS
    );
    assert_eq!(
        code(hit().question(no_height).send().await),
        "AWS.MechanicalTurk.XMLParseError"
    );
    let http = "<ExternalQuestion xmlns=\"http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd\"><ExternalURL>http://example.org/task</ExternalURL><FrameHeight>400</FrameHeight></ExternalQuestion>";
    assert_eq!(
        code(hit().question(http).send().await),
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    assert!(
        hit()
            .question(http.replace("http://example", "https://example"))
            .send()
            .await
            .is_ok()
    );
    let huge = support::html_question(&"x".repeat(65_536));
    assert_eq!(
        code(hit().question(huge).send().await),
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    assert!(
        hit()
            .question(support::form_question(&["q1"]))
            .send()
            .await
            .is_ok()
    );
    assert_eq!(
        code(
            hit()
                .hit_type_id("3UNKNOWNTYPE")
                .question(crowd_question())
                .send()
                .await
        ),
        "AWS.MechanicalTurk.HITTypeDoesNotExist"
    );
    assert_eq!(
        code(
            hit()
                .hit_type_id("lower-case")
                .question(crowd_question())
                .send()
                .await
        ),
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
}

#[tokio::test]
async fn qualification_requirements_are_validated() {
    let sim = support::plain().await;
    let req = |id: &str, cmp: Comparator| {
        QualificationRequirement::builder()
            .qualification_type_id(id)
            .comparator(cmp)
    };
    let locale = |c: &str| {
        aws_sdk_mturk::types::Locale::builder()
            .country(c)
            .build()
            .unwrap()
    };
    let create = |reqs: Vec<QualificationRequirement>| {
        sim.client
            .create_hit_type()
            .title("t")
            .description("d")
            .reward("0.05")
            .assignment_duration_in_seconds(60)
            .set_qualification_requirements(Some(reqs))
            .send()
    };
    assert!(
        create(vec![
            req("00000000000000000071", Comparator::In)
                .locale_values(locale("US"))
                .locale_values(locale("CA"))
                .build()
                .unwrap(),
            req("000000000000000000L0", Comparator::GreaterThanOrEqualTo)
                .integer_values(95)
                .build()
                .unwrap(),
            req("00000000000000000060", Comparator::EqualTo)
                .integer_values(1)
                .build()
                .unwrap(),
        ])
        .await
        .is_ok()
    );
    assert_eq!(
        code(
            create(vec![
                req("00000000000000000040", Comparator::Exists)
                    .integer_values(1)
                    .build()
                    .unwrap()
            ])
            .await
        ),
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    assert_eq!(
        code(
            create(vec![
                req("00000000000000000040", Comparator::GreaterThan)
                    .integer_values(1)
                    .integer_values(2)
                    .build()
                    .unwrap()
            ])
            .await
        ),
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    assert_eq!(
        code(
            create(vec![
                req("00000000000000000071", Comparator::LessThan)
                    .locale_values(locale("US"))
                    .build()
                    .unwrap()
            ])
            .await
        ),
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    assert_eq!(
        code(
            create(vec![
                req("00000000000000000040", Comparator::EqualTo)
                    .locale_values(locale("US"))
                    .build()
                    .unwrap()
            ])
            .await
        ),
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    let mut sixteen = req("00000000000000000040", Comparator::In);
    for i in 0..16 {
        sixteen = sixteen.integer_values(i);
    }
    assert_eq!(
        code(create(vec![sixteen.build().unwrap()]).await),
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    let eleven: Vec<_> = (0..11)
        .map(|_| {
            req("00000000000000000060", Comparator::Exists)
                .build()
                .unwrap()
        })
        .collect();
    assert_eq!(
        code(create(eleven).await),
        "AWS.MechanicalTurk.InvalidParameterValue"
    );
    let err = create(vec![
        req("3NOSUCHQUALIFICATION", Comparator::Exists)
            .build()
            .unwrap(),
    ])
    .await
    .unwrap_err();
    let (turk, message) = request_error(&err);
    assert_eq!(turk, "AWS.MechanicalTurk.QualificationDoesNotExist");
    assert!(
        message.starts_with("You requested a Qualification that does not exist. ("),
        "{message}"
    );
    // An Inactive custom type cannot be required either.
    let q = sim
        .client
        .create_qualification_type()
        .name("inactive")
        .description("d")
        .qualification_type_status(aws_sdk_mturk::types::QualificationTypeStatus::Inactive)
        .send()
        .await
        .unwrap()
        .qualification_type
        .unwrap()
        .qualification_type_id
        .unwrap();
    assert_eq!(
        code(create(vec![req(&q, Comparator::Exists).build().unwrap()]).await),
        "AWS.MechanicalTurk.QualificationDoesNotExist"
    );
}
