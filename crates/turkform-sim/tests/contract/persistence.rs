//! The world survives a restart on the same database file.

use aws_sdk_mturk::primitives::DateTime;
use serde_json::json;
use turkform_sim::SimConfig;

use crate::support;

#[tokio::test]
async fn hits_tokens_balance_and_clock_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("world.db");
    let config = || SimConfig {
        db_path: Some(db.clone()),
        ..SimConfig::default()
    };
    let sim = support::start(config()).await;
    let type_id = sim.hit_type().await;
    let hit = sim.hit(&type_id, 2, Some("persist-me")).await;
    let id = hit.hit_id().unwrap().to_owned();
    sim.work(json!({"hit_id": id, "assignments_per_hit": 1}))
        .await;
    let qual = sim
        .client
        .create_qualification_type()
        .name("trained")
        .description("d")
        .qualification_type_status(aws_sdk_mturk::types::QualificationTypeStatus::Active)
        .send()
        .await
        .unwrap()
        .qualification_type
        .unwrap()
        .qualification_type_id
        .unwrap();
    sim.client
        .associate_qualification_with_worker()
        .qualification_type_id(&qual)
        .worker_id("AWORKER1")
        .integer_value(7)
        .send()
        .await
        .unwrap();
    let now = sim.advance(3 * 3600).await;
    let balance = sim
        .client
        .get_account_balance()
        .send()
        .await
        .unwrap()
        .available_balance
        .unwrap();
    sim.handle.shutdown().await;

    let sim = support::start(config()).await;
    assert!(
        (sim.now().await - now).abs() <= 2,
        "the clock offset is kept"
    );
    let got = sim
        .client
        .get_hit()
        .hit_id(&id)
        .send()
        .await
        .unwrap()
        .hit
        .unwrap();
    assert_eq!(got.hit_type_id(), Some(type_id.as_str()));
    assert_eq!(got.number_of_assignments_available(), Some(1));
    assert_eq!(
        got.hit_status().unwrap().as_str(),
        "Reviewable",
        "expired by the persisted clock"
    );
    assert_eq!(
        sim.client
            .get_account_balance()
            .send()
            .await
            .unwrap()
            .available_balance
            .unwrap(),
        balance
    );
    let err = sim
        .client
        .create_hit_with_hit_type()
        .hit_type_id(&type_id)
        .lifetime_in_seconds(60)
        .question(support::crowd_question())
        .unique_request_token("persist-me")
        .send()
        .await
        .unwrap_err();
    assert!(support::request_error(&err).1.contains(&id));
    assert_eq!(
        sim.client
            .list_assignments_for_hit()
            .hit_id(&id)
            .send()
            .await
            .unwrap()
            .num_results(),
        Some(1)
    );
    let score = sim
        .client
        .get_qualification_score()
        .qualification_type_id(&qual)
        .worker_id("AWORKER1")
        .send()
        .await
        .unwrap();
    assert_eq!(score.qualification.unwrap().integer_value(), Some(7));
    // The same HIT type id for the same properties after a restart.
    assert_eq!(sim.hit_type().await, type_id);
    // Changes after the restart persist as well.
    sim.client
        .update_expiration_for_hit()
        .hit_id(&id)
        .expire_at(DateTime::from_secs(now + 7200))
        .send()
        .await
        .unwrap();
    sim.handle.shutdown().await;
    let sim = support::start(config()).await;
    let got = sim
        .client
        .get_hit()
        .hit_id(&id)
        .send()
        .await
        .unwrap()
        .hit
        .unwrap();
    assert_eq!(got.expiration().unwrap().secs(), now + 7200);
    assert_eq!(got.hit_status().unwrap().as_str(), "Assignable");
}

/// What `turkform status` reads for target `sim` without starting the simulator: the clock
/// offset the world file holds, beside a running simulator and after it stopped.
#[tokio::test]
async fn the_recorded_clock_offset_is_readable_without_loading_the_world() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("world.db");
    assert_eq!(
        turkform_sim::recorded_clock_offset_ms(&db).unwrap(),
        0,
        "no file yet"
    );
    let sim = support::start(SimConfig {
        db_path: Some(db.clone()),
        ..SimConfig::default()
    })
    .await;
    sim.advance(5 * 3600).await;
    let offset = turkform_sim::ControlClient::new(&sim.url)
        .unwrap()
        .clock()
        .await
        .unwrap()
        .offset_seconds;
    assert!(offset >= 5 * 3600, "{offset}");
    let running = turkform_sim::recorded_clock_offset_ms(&db).unwrap();
    assert_eq!(
        running.div_euclid(1000),
        offset,
        "read beside the running simulator"
    );
    sim.handle.shutdown().await;
    let stopped = turkform_sim::recorded_clock_offset_ms(&db).unwrap();
    assert_eq!(stopped, running);
}
