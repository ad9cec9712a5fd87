//! The real aws-sdk-mturk client, through [`SdkMturk`], against the simulator on port 0: every
//! trait method round-trips, and every failure class is recognised as what it is.

use std::time::Duration;

use serde_json::Value;
use turkform_model::{
    Comparator, HitStatus, Locale, Money, QualificationTypeSpec, Target, UnixTime, system,
};
use turkform_mturk::{
    ApiError, ConnectOptions, CreateHitRequest, CredentialsSource, HitTypeRequest, MturkApi,
    QuestionRequest, ResolvedRequirement, SdkMturk,
};
use turkform_sim::{SimConfig, SimHandle};

const QUESTION: &str = r#"<HTMLQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/HTMLQuestion.xsd"><HTMLContent><![CDATA[<!DOCTYPE html><html><body><crowd-form><p>hi</p></crowd-form><script src="https://assets.crowd.aws/crowd-html-elements.js"></script></body></html>]]></HTMLContent><FrameHeight>0</FrameHeight></HTMLQuestion>"#;

async fn sim(config: SimConfig) -> (SimHandle, SdkMturk) {
    let handle = turkform_sim::start("127.0.0.1:0", config).await.unwrap();
    let mut options = ConnectOptions::simulator(handle.endpoint_url());
    options.timeout = Duration::from_secs(5);
    let api = SdkMturk::connect(&options).await.unwrap();
    (handle, api)
}

/// `GET /_sim/<path>` through the simulator's control client.
async fn sim_get(handle: &SimHandle, path: &str) -> Value {
    turkform_sim::ControlClient::new(&handle.endpoint_url())
        .unwrap()
        .ok("GET", &format!("/_sim/{path}"), None)
        .await
        .unwrap()
}

/// The binary and the tests reach the simulator with `ConnectOptions::simulator`: its key pair
/// must be the one the simulator accepts by default (turkform-mturk cannot depend on the sim).
#[test]
fn the_simulator_options_carry_the_simulators_default_key_pair() {
    match ConnectOptions::simulator("http://127.0.0.1:1").credentials {
        CredentialsSource::Static {
            access_key_id,
            secret_access_key,
        } => {
            assert_eq!(access_key_id, turkform_sim::DEFAULT_ACCESS_KEY_ID);
            assert_eq!(secret_access_key, turkform_sim::DEFAULT_SECRET_ACCESS_KEY);
        }
        CredentialsSource::Chain => panic!("the simulator options use the credential chain"),
    }
}

fn hit_type() -> HitTypeRequest {
    HitTypeRequest {
        title: "Tick objects".into(),
        description: "Tick every object you see".into(),
        keywords: "image, labeling".into(),
        reward: Money::from_cents(12),
        assignment_duration_secs: 600,
        auto_approval_delay_secs: 3600,
        qualification_requirements: vec![
            ResolvedRequirement {
                qualification_type_id: system::LOCALE.into(),
                comparator: Comparator::In,
                integer_values: vec![],
                locale_values: vec![
                    Locale {
                        country: "US".into(),
                        subdivision: None,
                    },
                    Locale {
                        country: "US".into(),
                        subdivision: Some("WA".into()),
                    },
                ],
                actions_guarded: Some(turkform_model::ActionsGuarded::PreviewAndAccept),
            },
            ResolvedRequirement {
                qualification_type_id: system::PERCENT_ASSIGNMENTS_APPROVED.into(),
                comparator: Comparator::GreaterThanOrEqualTo,
                integer_values: vec![95],
                locale_values: vec![],
                actions_guarded: None,
            },
        ],
    }
}

fn create(hit_type_id: &str, token: &str, annotation: &str) -> CreateHitRequest {
    CreateHitRequest {
        hit_type_id: hit_type_id.into(),
        max_assignments: 3,
        lifetime_secs: 3600,
        question: QuestionRequest::Xml(QUESTION.into()),
        requester_annotation: annotation.into(),
        unique_request_token: token.into(),
    }
}

fn token(n: u32) -> String {
    turkform_model::request_token(Target::Sim, "c", &format!("k{n}"), "create", 1)
}

#[tokio::test]
async fn every_method_round_trips() {
    let (handle, api) = sim(SimConfig::default()).await;
    let balance = api.get_account_balance().await.unwrap();
    assert_eq!(balance, Money::from_cents(1_000_000));

    let spec = QualificationTypeSpec {
        name: "street-trained".into(),
        description: "Passed training".into(),
        keywords: vec!["street".into()],
        auto_granted: false,
        auto_granted_value: None,
        active: true,
        declared_in: "campaigns/x.toml".into(),
    };
    let qid = api.create_qualification_type(&spec).await.unwrap();
    let updated = QualificationTypeSpec {
        description: "Passed the training round".into(),
        ..spec.clone()
    };
    api.update_qualification_type(&qid, &updated).await.unwrap();
    let page = api.list_qualification_types(None).await.unwrap();
    let q = page
        .items
        .iter()
        .find(|q| q.qualification_type_id == qid)
        .expect("own type listed");
    assert_eq!(q.name, "street-trained");
    assert_eq!(q.description, "Passed the training round");
    assert!(q.active);

    let type_id = api.create_hit_type(&hit_type()).await.unwrap();
    assert_eq!(api.create_hit_type(&hit_type()).await.unwrap(), type_id);

    let hit = api
        .create_hit(&create(&type_id, &token(1), "turkform:1:c:1:k:k1"))
        .await
        .unwrap();
    assert_eq!(hit.hit_id.len(), 30);
    assert_eq!(hit.hit_type_id, type_id);
    assert_eq!(hit.status, HitStatus::Assignable);
    assert_eq!(hit.max_assignments, 3);
    assert_eq!(hit.assignments_available, 3);
    assert_eq!(hit.reward, Some(Money::from_cents(12)));
    assert_eq!(
        hit.requester_annotation.as_deref(),
        Some("turkform:1:c:1:k:k1")
    );
    assert_eq!(hit.expiration.secs_since(hit.creation_time), 3600);

    let got = api.get_hit(&hit.hit_id).await.unwrap();
    assert_eq!(got, hit);

    api.create_additional_assignments(&hit.hit_id, 2, &token(99))
        .await
        .unwrap();
    assert_eq!(api.get_hit(&hit.hit_id).await.unwrap().max_assignments, 5);
    // The same token again: MTurk says it was already processed.
    let again = api
        .create_additional_assignments(&hit.hit_id, 2, &token(99))
        .await
        .unwrap_err();
    assert!(
        matches!(again, ApiError::AlreadyExists { hit_id: None, .. }),
        "{again:?}"
    );

    let later = hit.expiration.plus_secs(7200);
    api.update_expiration(&hit.hit_id, later).await.unwrap();
    assert_eq!(api.get_hit(&hit.hit_id).await.unwrap().expiration, later);

    let other_type = api
        .create_hit_type(&HitTypeRequest {
            reward: Money::from_cents(15),
            ..hit_type()
        })
        .await
        .unwrap();
    api.update_hit_type_of_hit(&hit.hit_id, &other_type)
        .await
        .unwrap();
    assert_eq!(
        api.get_hit(&hit.hit_id).await.unwrap().hit_type_id,
        other_type
    );

    // Expire now, twice: the repeat is "already processed", which means done.
    api.update_expiration(&hit.hit_id, UnixTime(0))
        .await
        .unwrap();
    let repeat = api
        .update_expiration(&hit.hit_id, UnixTime(0))
        .await
        .unwrap_err();
    assert!(
        matches!(repeat, ApiError::AlreadyExists { .. }),
        "{repeat:?}"
    );
    let expired = api.get_hit(&hit.hit_id).await.unwrap();
    assert_eq!(expired.status, HitStatus::Reviewable);

    // ListHITs pages.
    for n in 2..=5 {
        api.create_hit(&create(&type_id, &token(n), "other"))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut next = None;
    loop {
        let page = api.list_hits(next, 2).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|h| h.hit_id));
        next = page.next_token;
        if next.is_none() {
            break;
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5);
    assert!(seen.contains(&hit.hit_id));

    let stats = sim_get(&handle, "stats").await;
    assert_eq!(stats["hits"], 5);
}

#[tokio::test]
async fn a_reused_token_is_already_exists_with_the_hit_id() {
    let (_handle, api) = sim(SimConfig::default()).await;
    let type_id = api.create_hit_type(&hit_type()).await.unwrap();
    let first = api
        .create_hit(&create(&type_id, &token(1), "a"))
        .await
        .unwrap();
    let err = api
        .create_hit(&create(&type_id, &token(1), "a"))
        .await
        .unwrap_err();
    match err {
        ApiError::AlreadyExists { hit_id, .. } => assert_eq!(hit_id, Some(first.hit_id)),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_hit_is_hit_does_not_exist() {
    let (_handle, api) = sim(SimConfig::default()).await;
    let err = api
        .get_hit("3X7837UUADRXYCA1K7JAJLKC66DJ60")
        .await
        .unwrap_err();
    assert!(err.is_hit_does_not_exist(), "{err:?}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[tokio::test]
async fn throttling_is_throttled() {
    let (handle, api) = sim(SimConfig {
        throttle_rps: Some(1.0),
        burst: Some(1),
        ..SimConfig::default()
    })
    .await;
    let mut throttled = 0;
    for _ in 0..5 {
        match api.get_account_balance().await {
            Ok(_) => {}
            Err(ApiError::Throttled { message }) => {
                assert!(message.contains("Rate exceeded"), "{message}");
                throttled += 1;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert!(throttled >= 3, "only {throttled} throttled");
    // Retries are off: the simulator saw each throttled call exactly once.
    assert_eq!(sim_get(&handle, "stats").await["throttled"], throttled);
}

#[tokio::test]
async fn a_service_fault_is_transient() {
    let (handle, api) = sim(SimConfig {
        fault_rate: 1.0,
        ..SimConfig::default()
    })
    .await;
    let err = api.get_account_balance().await.unwrap_err();
    assert!(matches!(err, ApiError::Transient { .. }), "{err:?}");
    assert_eq!(sim_get(&handle, "stats").await["faults"], 1);
}

#[tokio::test]
async fn a_dropped_connection_is_transient_and_the_hit_exists() {
    // One world on disk, served first without faults (to register a HIT type), then dropping
    // every response, then without faults again to look at what happened.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sim.db");
    let config = |drop_rate| SimConfig {
        db_path: Some(db.clone()),
        drop_rate,
        ..SimConfig::default()
    };
    let (handle, api) = sim(config(0.0)).await;
    let type_id = api.create_hit_type(&hit_type()).await.unwrap();
    handle.shutdown().await;

    let (handle, api) = sim(config(1.0)).await;
    let err = api
        .create_hit(&create(&type_id, &token(1), "lost-answer"))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Transient { .. }), "{err:?}");
    assert_eq!(sim_get(&handle, "stats").await["dropped"], 1);
    handle.shutdown().await;

    let (_handle, api) = sim(config(0.0)).await;
    let page = api.list_hits(None, 100).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(
        page.items[0].requester_annotation.as_deref(),
        Some("lost-answer")
    );
    // Resending with the same token is how the executor learns the id.
    let again = api
        .create_hit(&create(&type_id, &token(1), "lost-answer"))
        .await
        .unwrap_err();
    assert_eq!(
        again,
        ApiError::AlreadyExists {
            hit_id: Some(page.items[0].hit_id.clone()),
            message: match &again {
                ApiError::AlreadyExists { message, .. } => message.clone(),
                _ => String::new(),
            },
        }
    );
}

#[tokio::test]
async fn a_wrong_secret_is_fatal_and_never_shows_the_secret() {
    let handle = turkform_sim::start("127.0.0.1:0", SimConfig::default())
        .await
        .unwrap();
    let api = SdkMturk::connect(&ConnectOptions {
        target: Target::Sim,
        endpoint_url: Some(handle.endpoint_url()),
        credentials: CredentialsSource::Static {
            access_key_id: turkform_sim::DEFAULT_ACCESS_KEY_ID.into(),
            secret_access_key: "hunter2-very-secret".into(),
        },
        timeout: Duration::from_secs(5),
    })
    .await
    .unwrap();
    let err = api.get_account_balance().await.unwrap_err();
    assert!(matches!(err, ApiError::Fatal { .. }), "{err:?}");
    for text in [
        format!("{err}"),
        format!("{err:?}"),
        format!("{api:?}"),
        format!(
            "{:?}",
            CredentialsSource::Static {
                access_key_id: turkform_sim::DEFAULT_ACCESS_KEY_ID.into(),
                secret_access_key: "hunter2-very-secret".into()
            }
        ),
    ] {
        assert!(!text.contains("hunter2"), "{text}");
    }
}
