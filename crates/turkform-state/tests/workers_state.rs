//! Worker blocks, qualification grants and notification settings in state (schema 6), on both
//! backends: recorded, replaced by a refresh's listing, kept apart by who made them, bumping
//! the serial only when something changed, and copied by `state migrate`.

use std::time::Duration;

use turkform_model::{
    MadeBy, NotificationSettings, NotificationTransport, RecordedBlock, RecordedGrant,
    RecordedNotification, Target, UnixTime, WorkerRecordStatus,
};
use turkform_state::{OpenMode, StateStore, WorkersBatch};

#[macro_use]
mod common;
use common::Loc;

on_both_backends!(
    blocks_grants_and_notifications_round_trip_and_a_listing_replaces_only_outside_ones,
    state_migrate_copies_blocks_grants_and_notifications,
);

fn block(worker: &str, by: MadeBy, status: WorkerRecordStatus) -> RecordedBlock {
    RecordedBlock {
        worker_id: worker.to_owned(),
        reason: format!("reason of {worker}"),
        made_by: by,
        status,
        recorded_at: UnixTime(1_700_000_000),
    }
}

fn grant(worker: &str, value: i32, by: MadeBy) -> RecordedGrant {
    RecordedGrant {
        qualification: "trained".into(),
        qualification_type_id: "QTYPE1".into(),
        worker_id: worker.to_owned(),
        value,
        made_by: by,
        status: WorkerRecordStatus::Active,
        recorded_at: UnixTime(1_700_000_000),
    }
}

fn notification() -> RecordedNotification {
    RecordedNotification {
        hit_type_id: "HTYPE1".into(),
        campaign: "street".into(),
        settings: NotificationSettings {
            destination: "arn:aws:sns:us-east-1:123456789012:t".into(),
            transport: NotificationTransport::Sns,
            events: vec!["AssignmentReturned".into(), "AssignmentSubmitted".into()],
        },
        active: true,
        updated_at: UnixTime(1_700_000_000),
    }
}

fn fill(store: &mut StateStore) {
    let changed = store
        .commit_workers(&WorkersBatch {
            upsert_blocks: vec![
                block("AOURS", MadeBy::Turkform, WorkerRecordStatus::Adding),
                block("AOUT1", MadeBy::Outside, WorkerRecordStatus::Active),
            ],
            upsert_grants: vec![
                grant("AG1", 5, MadeBy::Turkform),
                grant("AGOUT", 7, MadeBy::Outside),
            ],
            upsert_notifications: vec![notification()],
            ..WorkersBatch::default()
        })
        .unwrap();
    assert!(changed);
}

fn blocks_grants_and_notifications_round_trip_and_a_listing_replaces_only_outside_ones(loc: Loc) {
    let path = loc.path();
    let mut store = StateStore::open(&path, Target::Sim, OpenMode::ReadWrite).unwrap();
    fill(&mut store);
    let serial = store.serial().unwrap();
    let state = store.load().unwrap();
    assert_eq!(state.blocks.len(), 2);
    assert_eq!(
        state.blocks[0],
        block("AOURS", MadeBy::Turkform, WorkerRecordStatus::Adding)
    );
    assert_eq!(state.grants.len(), 2);
    assert_eq!(state.notifications, vec![notification()]);

    // The same listing again changes nothing, not even the serial.
    let same = WorkersBatch {
        replace_outside_blocks: Some(vec![block(
            "AOUT1",
            MadeBy::Outside,
            WorkerRecordStatus::Active,
        )]),
        replace_outside_grants: Some((
            vec!["QTYPE1".into()],
            vec![grant("AGOUT", 7, MadeBy::Outside)],
        )),
        ..WorkersBatch::default()
    };
    assert!(!store.commit_workers(&same).unwrap());
    assert_eq!(store.serial().unwrap(), serial);

    // A new listing replaces the outside ones and never touches turkform's.
    let listing = WorkersBatch {
        replace_outside_blocks: Some(vec![block(
            "AOUT2",
            MadeBy::Outside,
            WorkerRecordStatus::Active,
        )]),
        replace_outside_grants: Some((vec!["QTYPE1".into()], vec![])),
        upsert_blocks: vec![block("AOURS", MadeBy::Turkform, WorkerRecordStatus::Active)],
        delete_grants: vec![("QTYPE1".into(), "AG1".into())],
        ..WorkersBatch::default()
    };
    assert!(store.commit_workers(&listing).unwrap());
    assert_eq!(store.serial().unwrap(), serial + 1);
    drop(store);
    let state = StateStore::open(&path, Target::Sim, OpenMode::ReadWrite)
        .unwrap()
        .load()
        .unwrap();
    let blocks: Vec<(&str, MadeBy, WorkerRecordStatus)> = state
        .blocks
        .iter()
        .map(|b| (b.worker_id.as_str(), b.made_by, b.status))
        .collect();
    assert_eq!(
        blocks,
        vec![
            ("AOURS", MadeBy::Turkform, WorkerRecordStatus::Active),
            ("AOUT2", MadeBy::Outside, WorkerRecordStatus::Active),
        ]
    );
    assert!(state.grants.is_empty(), "{:?}", state.grants);
    // Another target sees none of it.
    let other = StateStore::open(&path, Target::Sandbox, OpenMode::ReadWrite)
        .unwrap()
        .load()
        .unwrap();
    assert!(other.blocks.is_empty() && other.notifications.is_empty());
}

fn state_migrate_copies_blocks_grants_and_notifications(loc: Loc) {
    let path = loc.path();
    let mut store = StateStore::open(&path, Target::Sim, OpenMode::ReadWrite).unwrap();
    fill(&mut store);
    let before = store.load().unwrap();
    drop(store);
    // Into the other backend.
    let to = if loc.is_pg() {
        Loc::sqlite()
    } else {
        Loc::postgres()
    };
    turkform_state::migrate::migrate_state(&path, &to.path(), Duration::from_secs(5)).unwrap();
    let after = StateStore::open(&to.path(), Target::Sim, OpenMode::ReadWrite)
        .unwrap()
        .load()
        .unwrap();
    assert_eq!(after.blocks, before.blocks);
    assert_eq!(after.grants, before.grants);
    assert_eq!(after.notifications, before.notifications);
}
