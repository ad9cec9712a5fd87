//! Fault injection as a client sees it: throttling, ServiceFaults and dropped connections.

use std::time::{Duration, Instant};

use aws_sdk_mturk::error::ProvideErrorMetadata;
use turkform_sim::{DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, SimConfig};

use crate::support;

#[tokio::test]
async fn excess_requests_are_throttled_with_the_aws_error() {
    let sim = support::start(SimConfig {
        throttle_rps: Some(2.0),
        burst: Some(3),
        ..SimConfig::default()
    })
    .await;
    let client = support::client(
        &sim.url,
        DEFAULT_ACCESS_KEY_ID,
        DEFAULT_SECRET_ACCESS_KEY,
        false,
    );
    let mut ok = 0;
    let mut throttled = 0;
    for _ in 0..6 {
        match client.get_account_balance().send().await {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(e.raw_response().unwrap().status().as_u16(), 400);
                let service = e.as_service_error().unwrap();
                assert_eq!(service.code(), Some("ThrottlingException"));
                assert_eq!(service.message(), Some("Rate exceeded"));
                throttled += 1;
            }
        }
    }
    assert!(ok >= 3 && throttled >= 2, "ok {ok}, throttled {throttled}");
    let stats = sim.stats().await;
    assert_eq!(stats["throttled"], throttled);
    assert_eq!(stats["requests"]["GetAccountBalance"], ok);
    // The bucket refills at 2/s, so a call succeeds again within about half a second: poll for
    // it (each refused poll is one more throttle) instead of sleeping a guessed time.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut refused = 0u64;
    while client.get_account_balance().send().await.is_err() {
        refused += 1;
        assert!(Instant::now() < deadline, "the bucket never refilled");
        tokio::task::yield_now().await;
    }
    let stats = sim.stats().await;
    assert_eq!(stats["throttled"], throttled + refused);
    assert_eq!(stats["requests"]["GetAccountBalance"], ok + 1);
}

#[tokio::test]
async fn service_faults_change_nothing_and_the_sdk_retries_them() {
    let sim = support::start(SimConfig {
        fault_rate: 0.5,
        seed: Some(11),
        ..SimConfig::default()
    })
    .await;
    let bare = support::client(
        &sim.url,
        DEFAULT_ACCESS_KEY_ID,
        DEFAULT_SECRET_ACCESS_KEY,
        false,
    );
    let mut faults = 0;
    for _ in 0..20 {
        if let Err(e) = bare.get_account_balance().send().await {
            assert_eq!(e.raw_response().unwrap().status().as_u16(), 500);
            assert_eq!(e.as_service_error().unwrap().code(), Some("ServiceFault"));
            faults += 1;
        }
    }
    assert!(faults > 0 && faults < 20);
    // With retries, CreateHITType succeeds; faulted attempts made no change.
    let type_id = sim.hit_type().await;
    for i in 0..10 {
        sim.hit(&type_id, 1, Some(&format!("f{i}"))).await;
    }
    let stats = sim.stats().await;
    assert_eq!(stats["hits"], 10);
    assert_eq!(stats["duplicate_annotations"], 0);
    assert!(stats["faults"].as_u64().unwrap() >= faults);
}

#[tokio::test]
async fn a_dropped_connection_has_committed_the_change() {
    let sim = support::start(SimConfig {
        drop_rate: 1.0,
        ..SimConfig::default()
    })
    .await;
    let client = support::client(
        &sim.url,
        DEFAULT_ACCESS_KEY_ID,
        DEFAULT_SECRET_ACCESS_KEY,
        false,
    );
    let type_err = client
        .create_hit_type()
        .title("t")
        .description("d")
        .reward("0.10")
        .assignment_duration_in_seconds(60)
        .send()
        .await
        .unwrap_err();
    assert!(
        type_err.as_service_error().is_none(),
        "no response at all: {type_err:?}"
    );
    let stats = sim.stats().await;
    assert_eq!(stats["dropped"], 1);
    assert_eq!(stats["requests"]["CreateHITType"], 1);
    drop(sim);

    // Persisted, with a token: the retry learns the id of the HIT the lost response created.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sim.db");
    let dropping = support::start(SimConfig {
        drop_rate: 1.0,
        db_path: Some(db.clone()),
        ..SimConfig::default()
    })
    .await;
    let client = support::client(
        &dropping.url,
        DEFAULT_ACCESS_KEY_ID,
        DEFAULT_SECRET_ACCESS_KEY,
        false,
    );
    let create = |client: &aws_sdk_mturk::Client| {
        client
            .create_hit()
            .title("t")
            .description("d")
            .reward("0.10")
            .assignment_duration_in_seconds(60)
            .lifetime_in_seconds(600)
            .question(support::crowd_question())
            .unique_request_token("lost-response")
            .send()
    };
    let err = create(&client).await.unwrap_err();
    assert!(err.as_service_error().is_none(), "{err:?}");
    assert_eq!(dropping.stats().await["hits"], 1);
    dropping.handle.shutdown().await;

    let sim = support::start(SimConfig {
        db_path: Some(db),
        ..SimConfig::default()
    })
    .await;
    let hits = sim.client.list_hits().send().await.unwrap();
    assert_eq!(
        hits.num_results(),
        Some(1),
        "the HIT exists although the client saw an error"
    );
    let retry = create(&sim.client).await.unwrap_err();
    let (code, message) = support::request_error(&retry);
    assert_eq!(code, "AWS.MechanicalTurk.HitAlreadyExists");
    assert!(message.contains(hits.hits()[0].hit_id().unwrap()));
    assert_eq!(sim.stats().await["hits"], 1);
}

#[tokio::test]
async fn latency_is_added_to_api_calls_only() {
    let sim = support::start(SimConfig {
        latency: Duration::from_millis(150),
        ..SimConfig::default()
    })
    .await;
    let start = Instant::now();
    sim.stats().await;
    assert!(start.elapsed() < Duration::from_millis(150));
    let start = Instant::now();
    sim.client.get_account_balance().send().await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn faults_are_reproducible_with_a_seed() {
    /// The outcome of 16 calls under a 50 % fault rate, and the simulator's fault count.
    async fn pattern(seed: u64) -> (Vec<bool>, u64) {
        let sim = support::start(SimConfig {
            fault_rate: 0.5,
            seed: Some(seed),
            ..SimConfig::default()
        })
        .await;
        let client = support::client(
            &sim.url,
            DEFAULT_ACCESS_KEY_ID,
            DEFAULT_SECRET_ACCESS_KEY,
            false,
        );
        let mut out = Vec::new();
        for _ in 0..16 {
            match client.get_account_balance().send().await {
                Ok(_) => out.push(true),
                Err(e) => {
                    assert_eq!(e.as_service_error().unwrap().code(), Some("ServiceFault"));
                    out.push(false);
                }
            }
        }
        let stats = sim.stats().await;
        let served = out.iter().filter(|ok| **ok).count() as u64;
        // Faulted requests are counted as faults, not as processed requests.
        assert_eq!(stats["requests"]["GetAccountBalance"], served);
        (out, stats["faults"].as_u64().unwrap())
    }
    let (first, faults) = pattern(5).await;
    let failed = first.iter().filter(|ok| !**ok).count() as u64;
    // Faults really were injected (and counted), and not on every call.
    assert!(failed > 0 && failed < 16, "pattern {first:?}");
    assert_eq!(
        faults, failed,
        "the simulator counts each fault the client saw"
    );
    assert_eq!(
        pattern(5).await,
        (first.clone(), faults),
        "same seed, same faults"
    );
    // The seed decides: another seed gives another pattern (fixed seeds, so this is stable).
    assert_ne!(pattern(6).await.0, first, "the seed is ignored");
}
