//! The state store's contract, exercised through its public API on real files.
//!
//! Some tests re-run this very test binary as a child process (selected by an environment
//! variable and `--exact`): to hold a lock in another process that is then SIGKILLed, and to
//! open the state as an unprivileged user when the tests run as root.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use sha2::{Digest, Sha256};
use turkform_model::{
    Annotation, Drift, ExpiredBy, HitStatus, Money, OrphanHit, RecordedHit, RecordedHitType,
    RecordedQualificationType, Target, UnixTime,
};
use turkform_state::{
    Batch, IntentKind, IntentOutcome, LockKind, NewIntent, OpenMode, SCHEMA_VERSION, StateError,
    StateStore, schema,
};

#[macro_use]
mod common;
use common::Loc;

on_both_backends!(
    every_recorded_type_round_trips_with_all_fields,
    upserts_replace_by_key_and_a_known_hit_is_no_longer_an_orphan,
    targets_are_partitions_that_never_mix,
    serial_bumps_once_per_committing_change_and_lineage_survives_reopen,
    journal_begin_pending_then_commit_completes,
    beginning_the_same_token_twice_returns_the_same_intent,
    pending_intents_survive_a_crash_before_commit,
    a_second_lock_fails_fast_naming_the_holder,
    a_lock_with_a_timeout_waits_then_fails_or_gets_it_when_released,
    a_sigkilled_holder_never_blocks_the_next_run,
    concurrent_first_opens_all_succeed_on_one_lineage,
    the_run_log_records_who_ran_what_and_how_it_ended,
    remove_item_and_remove_hit_forget_records_or_say_not_found,
    removed_hits_are_remembered_as_forgotten_and_renames_move_everything,
    a_hit_forgotten_twice_is_remembered_once_with_its_latest_item,
    a_bonus_is_recorded_pending_once_then_paid_once_and_kept,
    load_carries_every_recorded_assignment_for_the_planner,
    state_mv_of_a_campaign_moves_its_paid_bonuses_so_none_is_paid_again,
    a_send_bonus_intent_and_its_pending_bonus_are_begun_and_resolved_together,
);

const LOCK_CHILD_ENV: &str = "TURKFORM_STATE_TEST_LOCK_CHILD";
const LOCK_CHILD_MARKER_ENV: &str = "TURKFORM_STATE_TEST_LOCK_CHILD_MARKER";
const READONLY_CHILD_ENV: &str = "TURKFORM_STATE_TEST_READONLY_CHILD";

fn hit(campaign: &str, key: &str, generation: u32, id: &str) -> RecordedHit {
    RecordedHit {
        campaign: campaign.to_owned(),
        item_key: key.to_owned(),
        generation,
        hit_id: id.to_owned(),
        hit_type_id: format!("HT-{id}"),
        hit_type_hash: "a".repeat(64),
        content_hash: "b".repeat(64),
        max_assignments: 3,
        committed_cost: Money::from_cents(36),
        created_at: UnixTime(1_700_000_000),
        expiration: UnixTime(1_700_086_400),
        status: HitStatus::Assignable,
        assignments_available: 3,
        assignments_pending: 0,
        assignments_completed: 0,
        expired_by: None,
        paused_remaining_secs: None,
        drift: Vec::new(),
    }
}

fn intent(token: &str) -> NewIntent {
    NewIntent {
        kind: IntentKind::CreateHit,
        campaign: Some("c".to_owned()),
        item_key: Some("k1".to_owned()),
        generation: Some(1),
        hit_id: None,
        token: token.to_owned(),
        payload: serde_json::json!({"MaxAssignments": 3, "Question": "<html/>"}),
        created_at: UnixTime(1_700_000_000),
    }
}

fn open_rw(path: &Path, target: Target) -> StateStore {
    StateStore::open(path, target, OpenMode::ReadWrite).unwrap()
}

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

fn dir_listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn every_recorded_type_round_trips_with_all_fields(loc: Loc) {
    let path = loc.path();
    let mut store = open_rw(&path, Target::Sim);
    assert_eq!(store.lineage().len(), 32);
    assert!(store.lineage().bytes().all(|b| b.is_ascii_hexdigit()));

    let mut paused = hit("c", "k1", 2, "H2");
    paused.status = HitStatus::Reviewable;
    paused.expired_by = Some(ExpiredBy::Pause);
    paused.paused_remaining_secs = Some(3_600);
    paused.committed_cost = Money::from_cents(1_234_567);
    paused.assignments_available = 1;
    paused.assignments_pending = 2;
    paused.assignments_completed = 7;
    paused.drift = vec![
        Drift::Expired {
            was: UnixTime(10),
            now: UnixTime(5),
        },
        Drift::Extended {
            was: UnixTime(10),
            now: UnixTime(50),
        },
        Drift::Retyped {
            was: "A".to_owned(),
            now: "B".to_owned(),
        },
        Drift::AssignmentsChanged { was: 3, now: 9 },
        Drift::Deleted,
    ];
    let mut replaced = hit("c", "k1", 1, "H1");
    replaced.expired_by = Some(ExpiredBy::Replace);
    let mut finished = hit("c", "k:2", 1, "H3");
    finished.expired_by = Some(ExpiredBy::Finish);
    finished.status = HitStatus::Disposed;
    let mut removed = hit("b", "k", 1, "H4");
    removed.expired_by = Some(ExpiredBy::Removal);
    removed.status = HitStatus::Reviewing;
    let unassignable = RecordedHit {
        status: HitStatus::Unassignable,
        ..hit("c", "k3", 1, "H5")
    };
    let orphans = vec![
        OrphanHit {
            hit_id: "O1".to_owned(),
            hit_type_id: "HTO".to_owned(),
            annotation: Annotation::new("camp:with:colons", "key", 3),
            max_assignments: 5,
            created_at: UnixTime(1),
            expiration: UnixTime(2),
            status: HitStatus::Assignable,
        },
        OrphanHit {
            hit_id: "O2".to_owned(),
            hit_type_id: "HTO".to_owned(),
            annotation: Annotation::new("c", &"long key ".repeat(40), 1),
            max_assignments: 1,
            created_at: UnixTime(3),
            expiration: UnixTime(4),
            status: HitStatus::Unassignable,
        },
    ];
    let batch = Batch {
        upsert_hits: vec![
            paused.clone(),
            replaced.clone(),
            finished.clone(),
            removed.clone(),
            unassignable.clone(),
        ],
        upsert_hit_types: vec![RecordedHitType {
            definition_hash: "d".repeat(64),
            hit_type_id: "HT1".to_owned(),
        }],
        upsert_qualification_types: vec![RecordedQualificationType {
            name: "skilled".to_owned(),
            qualification_type_id: "Q1".to_owned(),
            definition_hash: "e".repeat(64),
        }],
        replace_orphans: Some(orphans.clone()),
        refreshed_at: Some(UnixTime(1_700_000_123)),
        ..Batch::default()
    };
    store.commit(&batch).unwrap();
    let lineage = store.lineage().to_owned();
    drop(store);

    for mode in [OpenMode::ReadOnly, OpenMode::ReadWrite] {
        let store = StateStore::open(&path, Target::Sim, mode).unwrap();
        let state = store.load().unwrap();
        assert_eq!(state.target, Some(Target::Sim));
        assert_eq!(state.lineage, lineage);
        assert_eq!(state.serial, 1);
        assert_eq!(state.refreshed_at, Some(UnixTime(1_700_000_123)));
        assert_eq!(state.hit_types, batch.upsert_hit_types);
        assert_eq!(state.qualification_types, batch.upsert_qualification_types);
        assert_eq!(state.orphans, orphans);
        // Ordered by campaign, item key (bytewise: `k3` < `k:2`), generation.
        assert_eq!(
            state.hits,
            vec![
                removed.clone(),
                replaced.clone(),
                paused.clone(),
                unassignable.clone(),
                finished.clone()
            ]
        );
    }
}

fn upserts_replace_by_key_and_a_known_hit_is_no_longer_an_orphan(loc: Loc) {
    let path = loc.path();
    let mut store = open_rw(&path, Target::Sim);
    let orphan = OrphanHit {
        hit_id: "H1".to_owned(),
        hit_type_id: "HT".to_owned(),
        annotation: Annotation::new("c", "k1", 1),
        max_assignments: 3,
        created_at: UnixTime(1),
        expiration: UnixTime(2),
        status: HitStatus::Assignable,
    };
    let other_orphan = OrphanHit {
        hit_id: "H9".to_owned(),
        ..orphan.clone()
    };
    store
        .commit(&Batch {
            replace_orphans: Some(vec![orphan, other_orphan.clone()]),
            upsert_hit_types: vec![RecordedHitType {
                definition_hash: "h".to_owned(),
                hit_type_id: "old".to_owned(),
            }],
            ..Batch::default()
        })
        .unwrap();
    let mut adopted = hit("c", "k1", 1, "H1");
    store
        .commit(&Batch {
            upsert_hits: vec![adopted.clone()],
            upsert_hit_types: vec![RecordedHitType {
                definition_hash: "h".to_owned(),
                hit_type_id: "new".to_owned(),
            }],
            ..Batch::default()
        })
        .unwrap();
    adopted.status = HitStatus::Reviewable;
    adopted.max_assignments = 9;
    adopted.drift = vec![Drift::Deleted];
    store
        .commit(&Batch {
            upsert_hits: vec![adopted.clone()],
            remove_orphans: vec!["H9".to_owned()],
            ..Batch::default()
        })
        .unwrap();
    let state = store.load().unwrap();
    assert_eq!(state.hits, vec![adopted]);
    assert!(state.orphans.is_empty());
    assert_eq!(state.hit_types.len(), 1);
    assert_eq!(state.hit_types[0].hit_type_id, "new");
    assert_eq!(state.serial, 3);
}

fn targets_are_partitions_that_never_mix(loc: Loc) {
    let path = loc.path();
    let mut sim = open_rw(&path, Target::Sim);
    let mut sandbox = open_rw(&path, Target::Sandbox);
    assert_eq!(sim.lineage(), sandbox.lineage());
    sim.commit(&Batch {
        upsert_hits: vec![hit("c", "k1", 1, "SAME-ID")],
        upsert_hit_types: vec![RecordedHitType {
            definition_hash: "h".to_owned(),
            hit_type_id: "sim-type".to_owned(),
        }],
        ..Batch::default()
    })
    .unwrap();
    sim.commit(&Batch {
        refreshed_at: Some(UnixTime(5)),
        ..Batch::default()
    })
    .unwrap();
    let mut sandbox_hit = hit("c", "k1", 1, "SAME-ID");
    sandbox_hit.max_assignments = 11;
    sandbox
        .commit(&Batch {
            upsert_hits: vec![sandbox_hit.clone()],
            ..Batch::default()
        })
        .unwrap();
    let sim_id = sim.begin_intent(&intent("t")).unwrap();
    assert_eq!(sandbox.pending_intents().unwrap(), vec![]);

    let s = sim.load().unwrap();
    let b = sandbox.load().unwrap();
    assert_eq!(s.hits, vec![hit("c", "k1", 1, "SAME-ID")]);
    assert_eq!(b.hits, vec![sandbox_hit]);
    assert_eq!(s.hit_types.len(), 1);
    assert!(b.hit_types.is_empty());
    assert_eq!(s.refreshed_at, Some(UnixTime(5)));
    assert_eq!(b.refreshed_at, None);
    assert_eq!((s.serial, b.serial), (3, 1));
    assert_eq!(sim.serial().unwrap(), 3);
    let production = StateStore::open(&path, Target::Production, OpenMode::ReadOnly).unwrap();
    assert_eq!(production.serial().unwrap(), 0);
    assert!(production.load().unwrap().hits.is_empty());

    // Removing from one target leaves the other alone; an intent id of another target is
    // unknown here.
    sandbox.remove_hit("SAME-ID").unwrap();
    assert_eq!(sim.load().unwrap().hits.len(), 1);
    let err = sandbox
        .commit(&Batch {
            completed: vec![(sim_id, IntentOutcome::Done)],
            ..Batch::default()
        })
        .unwrap_err();
    assert!(matches!(err, StateError::NotFound { .. }), "{err:?}");
}

fn serial_bumps_once_per_committing_change_and_lineage_survives_reopen(loc: Loc) {
    let path = loc.path();
    let mut store = open_rw(&path, Target::Sandbox);
    let lineage = store.lineage().to_owned();
    assert_eq!(store.serial().unwrap(), 0);
    store.commit(&Batch::default()).unwrap();
    assert_eq!(store.serial().unwrap(), 0, "an empty batch changes nothing");
    let many = Batch {
        upsert_hits: (0..100)
            .map(|i| hit("c", &format!("k{i}"), 1, &format!("H{i}")))
            .collect(),
        ..Batch::default()
    };
    store.commit(&many).unwrap();
    assert_eq!(store.serial().unwrap(), 1, "one batch, one bump");
    store.commit(&many).unwrap();
    assert_eq!(store.serial().unwrap(), 2);
    // The run log is history, not state.
    let run = store
        .begin_run("turkform apply", "alice", UnixTime(1_700_000_000))
        .unwrap();
    store
        .finish_run(run, "ok", UnixTime(1_700_000_100))
        .unwrap();
    assert_eq!(store.serial().unwrap(), 2);
    drop(store);

    let again = open_rw(&path, Target::Sandbox);
    assert_eq!(again.lineage(), lineage);
    assert_eq!(again.serial().unwrap(), 2);
    let read_only = StateStore::open(&path, Target::Sandbox, OpenMode::ReadOnly).unwrap();
    assert_eq!(read_only.lineage(), lineage);

    let other = loc.another();
    assert_ne!(open_rw(&other.path(), Target::Sandbox).lineage(), lineage);
}

fn journal_begin_pending_then_commit_completes(loc: Loc) {
    let path = loc.path();
    let mut store = open_rw(&path, Target::Sim);
    let a = store.begin_intent(&intent("token-a")).unwrap();
    let mut b_new = intent("token-b");
    b_new.kind = IntentKind::AddAssignments;
    b_new.hit_id = Some("H1".to_owned());
    b_new.generation = None;
    let b = store.begin_intent(&b_new).unwrap();
    let c = store.begin_intent(&intent("token-c")).unwrap();
    assert!(a < b && b < c);

    let pending = store.pending_intents().unwrap();
    assert_eq!(
        pending.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![a, b, c],
        "oldest first"
    );
    assert_eq!(pending[1].kind, IntentKind::AddAssignments);
    assert_eq!(pending[1].hit_id.as_deref(), Some("H1"));
    assert_eq!(pending[1].generation, None);
    assert_eq!(pending[1].payload, b_new.payload);
    assert_eq!(pending[1].attempts, 1);

    store
        .commit(&Batch {
            completed: vec![
                (a, IntentOutcome::Done),
                (
                    c,
                    IntentOutcome::Failed {
                        message: "refused".to_owned(),
                    },
                ),
            ],
            upsert_hits: vec![hit("c", "k1", 1, "H1")],
            ..Batch::default()
        })
        .unwrap();
    let pending = store.pending_intents().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, b);
    assert_eq!(store.load().unwrap().hits.len(), 1);

    // A finished token begun again is a new call, with a new id.
    let a2 = store.begin_intent(&intent("token-a")).unwrap();
    assert_ne!(a2, a);

    // A batch naming an unknown intent applies nothing at all.
    let serial = store.serial().unwrap();
    let err = store
        .commit(&Batch {
            completed: vec![
                (b, IntentOutcome::Done),
                (turkform_state::IntentId(9_999), IntentOutcome::Done),
            ],
            upsert_hits: vec![hit("c", "k2", 1, "H2")],
            ..Batch::default()
        })
        .unwrap_err();
    assert!(matches!(err, StateError::NotFound { .. }), "{err:?}");
    assert_eq!(store.serial().unwrap(), serial);
    assert_eq!(store.load().unwrap().hits.len(), 1);
    assert_eq!(store.pending_intents().unwrap().len(), 2);

    store
        .commit(&Batch {
            completed: vec![
                (
                    b,
                    IntentOutcome::Abandoned {
                        message: "item removed".to_owned(),
                    },
                ),
                (a2, IntentOutcome::Done),
            ],
            ..Batch::default()
        })
        .unwrap();
    assert!(store.pending_intents().unwrap().is_empty());
}

fn beginning_the_same_token_twice_returns_the_same_intent(loc: Loc) {
    let path = loc.path();
    let mut store = open_rw(&path, Target::Sim);
    let first = store.begin_intent(&intent("tok")).unwrap();
    let second = store.begin_intent(&intent("tok")).unwrap();
    assert_eq!(first, second);
    let ids = store
        .begin_intents(&[intent("tok"), intent("other"), intent("other")])
        .unwrap();
    assert_eq!(ids[0], first);
    assert_eq!(ids[1], ids[2]);
    let pending = store.pending_intents().unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].attempts, 3);
    assert_eq!(pending[1].attempts, 2);
}

fn pending_intents_survive_a_crash_before_commit(loc: Loc) {
    let path = loc.path();
    let mut store = open_rw(&path, Target::Sim);
    let id = store.begin_intent(&intent("crash")).unwrap();
    // A crash: the store goes away without a commit (and without a clean close of the
    // connection, which would checkpoint the WAL).
    std::mem::forget(store);
    if !loc.is_pg() {
        assert!(
            std::fs::metadata(format!("{}-wal", path.display())).is_ok(),
            "the intent lives in the WAL of a connection that was never closed"
        );
    }
    for mode in [OpenMode::ReadOnly, OpenMode::ReadWrite] {
        let reopened = StateStore::open(&path, Target::Sim, mode).unwrap();
        let pending = reopened.pending_intents().unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].id, id);
        assert_eq!(pending[0].token, "crash");
        assert_eq!(pending[0].payload, intent("crash").payload);
    }
    let mut resumed = open_rw(&path, Target::Sim);
    assert_eq!(resumed.begin_intent(&intent("crash")).unwrap(), id);
    assert_eq!(resumed.pending_intents().unwrap()[0].attempts, 2);
}

fn a_second_lock_fails_fast_naming_the_holder(loc: Loc) {
    let path = loc.path();
    let first = open_rw(&path, Target::Sim);
    let second = open_rw(&path, Target::Sim);
    let lock = first.lock("turkform apply", Duration::ZERO).unwrap();
    let started = Instant::now();
    let err = second.lock("turkform refresh", Duration::ZERO).unwrap_err();
    // No waiting; on PostgreSQL the lock's own session is connected first, which a loaded
    // machine can make slower than a file lock.
    let fast = Duration::from_millis(if loc.is_pg() { 3_000 } else { 500 });
    assert!(started.elapsed() < fast, "{:?}", started.elapsed());
    match &err {
        StateError::LockHeld { holder, kind } => {
            // The kind decides the binary's hint: only a file lock can need force-unlock.
            match (loc.is_pg(), kind) {
                (false, LockKind::File) => {}
                (true, LockKind::Postgres { session: Some(pid) }) => assert!(*pid > 0),
                other => panic!("wrong lock kind {other:?}"),
            }
            assert_eq!(holder.pid, std::process::id());
            assert_eq!(holder.host, turkform_state::lock::hostname());
            assert_eq!(holder.command, "turkform apply");
            assert!(holder.since.0 > 1_600_000_000);
        }
        other => panic!("expected LockHeld, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    assert!(message.contains("`turkform apply`"), "{message}");
    let sandbox = open_rw(&path, Target::Sandbox);
    if loc.is_pg() {
        // Keyed by lineage and target: another target of the same state is another lock.
        drop(sandbox.lock("x", Duration::ZERO).unwrap());
    } else {
        // Partitions share one file, so they share the lock.
        assert!(sandbox.lock("x", Duration::ZERO).is_err());
    }
    drop(lock);
    let again = second.lock("turkform refresh", Duration::ZERO).unwrap();
    assert_eq!(again.info().command, "turkform refresh");
}

fn a_lock_with_a_timeout_waits_then_fails_or_gets_it_when_released(loc: Loc) {
    let path = loc.path();
    let store = open_rw(&path, Target::Sim);
    let lock = store.lock("holder", Duration::ZERO).unwrap();
    let started = Instant::now();
    let err = store
        .lock("waiter", Duration::from_millis(400))
        .unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, StateError::LockHeld { .. }), "{err:?}");
    assert!(waited >= Duration::from_millis(400), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");

    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(lock);
    });
    let started = Instant::now();
    let got = store.lock("waiter", Duration::from_secs(10)).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(got.info().command, "waiter");
    releaser.join().unwrap();
}

/// Not a test on its own: the child process of `a_sigkilled_holder_never_blocks_the_next_run`.
#[test]
fn lock_child_helper() {
    let Ok(path) = std::env::var(LOCK_CHILD_ENV) else {
        return;
    };
    let path = PathBuf::from(path);
    let store = open_rw(&path, Target::Sim);
    let _lock = store
        .lock("turkform apply (child)", Duration::ZERO)
        .unwrap();
    std::fs::write(std::env::var(LOCK_CHILD_MARKER_ENV).unwrap(), b"").unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

/// Several first runs at once on a new state (a new file, a new PostgreSQL schema): one
/// creates it, the others find it; none fails.
fn concurrent_first_opens_all_succeed_on_one_lineage(loc: Loc) {
    let path = loc.path();
    let lineages: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let path = path.clone();
                scope.spawn(move || open_rw(&path, Target::Sim).lineage().to_owned())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        lineages.iter().all(|l| l == &lineages[0] && l.len() == 32),
        "{lineages:?}"
    );
}

/// Starts a child process that takes the lock on `path` and holds it; returns once it does.
fn spawn_lock_holder(path: &Path, marker: &Path) -> std::process::Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lock_child_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(LOCK_CHILD_ENV, path)
        .env(LOCK_CHILD_MARKER_ENV, marker)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the child never took the lock");
        assert!(child.try_wait().unwrap().is_none(), "the child died early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn a_sigkilled_holder_never_blocks_the_next_run(loc: Loc) {
    let path = loc.path();
    open_rw(&path, Target::Sim);
    let marker = loc.dir.path().join("locked");
    let mut child = spawn_lock_holder(&path, &marker);
    let store = open_rw(&path, Target::Sim);
    match store.lock("turkform apply", Duration::ZERO) {
        Err(StateError::LockHeld { holder, .. }) => {
            assert_eq!(holder.pid, child.id());
            assert_eq!(holder.command, "turkform apply (child)");
        }
        other => panic!("expected the child to hold the lock, got {other:?}"),
    }
    // SIGKILL: no destructor runs, the holder record stays behind.
    child.kill().unwrap();
    child.wait().unwrap();
    if !loc.is_pg() {
        assert!(
            !std::fs::read(turkform_state::lock::lock_path(&path))
                .unwrap()
                .is_empty()
        );
    }
    let lock = store
        .lock("turkform apply", Duration::from_secs(5))
        .unwrap();
    assert_eq!(lock.info().pid, std::process::id());
}

/// Regression (issue 10, item 17): deleting the lock file while an apply held it let a
/// second apply take a new lock file and run alongside the first.
#[test]
fn deleting_the_lock_file_does_not_let_a_second_apply_in() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    open_rw(&path, Target::Sim);
    let marker = dir.path().join("locked");
    let mut child = spawn_lock_holder(&path, &marker);
    std::fs::remove_file(turkform_state::lock::lock_path(&path)).unwrap();
    let store = open_rw(&path, Target::Sim);
    match store.lock("turkform apply", Duration::ZERO) {
        Err(StateError::LockHeld { holder, .. }) => {
            assert_eq!(holder.pid, child.id());
            assert_eq!(holder.command, "turkform apply (child)");
        }
        other => panic!("a second holder got in beside the first: {other:?}"),
    }
    // force-unlock does not break a live local holder either.
    assert!(matches!(
        store.force_unlock(),
        Err(StateError::LockHeld { .. })
    ));
    child.kill().unwrap();
    child.wait().unwrap();
    // Once the holder is dead its record in the state file is stale and taken over.
    let lock = store.lock("turkform apply", Duration::ZERO).unwrap();
    assert_eq!(lock.info().pid, std::process::id());
    drop(lock);
    let again = store.lock("turkform refresh", Duration::ZERO).unwrap();
    assert_eq!(again.info().command, "turkform refresh");
}

/// Regression (issue 10, item 12): after a disk-full a crashed writer's WAL holds pages that
/// the main file does not have yet, and the main file's header may already promise them; the
/// hand-written header check refused that healthy state as "truncated". SQLite, reading the
/// WAL, judges it now, and its pending intents survive.
#[test]
fn a_state_whose_wal_holds_pages_the_main_file_lacks_is_not_refused_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(open_rw(&path, Target::Sim));
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    let mut store = open_rw(&path, Target::Sim);
    let intents: Vec<NewIntent> = (0..3_000).map(|i| intent(&format!("t{i}"))).collect();
    store.begin_intents(&intents).unwrap();
    let pages: u32 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    // A crash: copy the file and its WAL as they are, never checkpointed.
    let crashed = dir.path().join("crashed");
    std::fs::create_dir(&crashed).unwrap();
    let copy = crashed.join("s.db");
    std::fs::copy(&path, &copy).unwrap();
    std::fs::copy(
        format!("{}-wal", path.display()),
        format!("{}-wal", copy.display()),
    )
    .unwrap();
    std::mem::forget(store);
    drop(conn);
    // The checkpoint that filled the disk had written page 1 (the header now promises every
    // page) but not the pages after it.
    let mut bytes = std::fs::read(&copy).unwrap();
    let page_size = u64::from(u16::from_be_bytes([bytes[16], bytes[17]]));
    assert!(
        (bytes.len() as u64) < u64::from(pages) * page_size,
        "the WAL holds the growth"
    );
    bytes[28..32].copy_from_slice(&pages.to_be_bytes());
    let change_counter = [bytes[24], bytes[25], bytes[26], bytes[27]];
    bytes[92..96].copy_from_slice(&change_counter);
    std::fs::write(&copy, &bytes).unwrap();

    for mode in [OpenMode::ReadOnly, OpenMode::ReadWrite] {
        let store = StateStore::open(&copy, Target::Sim, mode)
            .unwrap_or_else(|e| panic!("{mode:?}: a healthy state refused: {e}"));
        assert_eq!(store.pending_intents().unwrap().len(), 3_000, "{mode:?}");
    }
}

#[test]
fn force_unlock_clears_stale_records_but_not_a_live_local_holder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = open_rw(&path, Target::Sim);
    assert_eq!(store.force_unlock().unwrap(), None, "never locked");

    let lock = store.lock("turkform apply", Duration::ZERO).unwrap();
    let err = store.force_unlock().unwrap_err();
    assert!(matches!(err, StateError::LockHeld { .. }), "{err:?}");
    drop(lock);
    assert_eq!(store.force_unlock().unwrap(), None, "released cleanly");

    let vanished = turkform_state::LockInfo {
        pid: 4242,
        host: "a-host-that-vanished".to_owned(),
        since: UnixTime(1_700_000_000),
        command: "turkform apply".to_owned(),
    };
    std::fs::write(
        turkform_state::lock::lock_path(&path),
        serde_json::to_vec(&vanished).unwrap(),
    )
    .unwrap();
    match store.lock("turkform apply", Duration::from_millis(200)) {
        Err(StateError::LockHeld { holder, .. }) => assert_eq!(holder, vanished),
        other => panic!("expected LockHeld, got {other:?}"),
    }
    assert_eq!(store.force_unlock().unwrap(), Some(vanished));
    store.lock("turkform apply", Duration::ZERO).unwrap();
}

/// A damaged file, each way it can be damaged, in each open mode: the right error, and not a
/// byte changed nor a file added next to it.
fn assert_refused(path: &Path, expect: fn(&StateError) -> bool) {
    let before = sha256(path);
    let listing = dir_listing(path.parent().unwrap());
    for mode in [OpenMode::ReadOnly, OpenMode::ReadWrite] {
        let err = StateStore::open(path, Target::Sim, mode).unwrap_err();
        assert!(expect(&err), "{mode:?}: unexpected {err:?}");
        let message = err.to_string();
        assert!(
            message.contains(&format!("`{}`", path.display())),
            "{message}"
        );
        assert!(!message.ends_with('.'), "{message}");
        assert_eq!(sha256(path), before, "{mode:?} changed the file");
        assert_eq!(
            dir_listing(path.parent().unwrap()),
            listing,
            "{mode:?} added files"
        );
    }
}

#[test]
fn garbage_empty_and_truncated_files_are_corrupt_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let is_corrupt = |e: &StateError| matches!(e, StateError::Corrupt { .. });

    let garbage = dir.path().join("garbage/s.db");
    std::fs::create_dir_all(garbage.parent().unwrap()).unwrap();
    let bytes: Vec<u8> = (0..10_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&garbage, &bytes).unwrap();
    assert_refused(&garbage, is_corrupt);

    let empty = dir.path().join("empty/s.db");
    std::fs::create_dir_all(empty.parent().unwrap()).unwrap();
    std::fs::write(&empty, b"").unwrap();
    assert_refused(&empty, is_corrupt);

    // A real state with enough rows to span many pages, cut short as a failed copy would be.
    let source = dir.path().join("source.db");
    let mut store = open_rw(&source, Target::Sim);
    store
        .commit(&Batch {
            upsert_hits: (0..2_000)
                .map(|i| hit("c", &format!("k{i}"), 1, &format!("H{i}")))
                .collect(),
            ..Batch::default()
        })
        .unwrap();
    drop(store);
    let full = std::fs::read(&source).unwrap();
    assert!(full.len() > 64 * 1024);
    for (name, cut) in [
        ("half", full.len() / 2),
        ("odd", full.len() - 100),
        ("header", 50),
    ] {
        let truncated = dir.path().join(format!("{name}/s.db"));
        std::fs::create_dir_all(truncated.parent().unwrap()).unwrap();
        std::fs::write(&truncated, &full[..cut]).unwrap();
        assert_refused(&truncated, is_corrupt);
    }

    // Intact header, damaged pages: only SQLite's own check can tell.
    let scribbled = dir.path().join("scribbled/s.db");
    std::fs::create_dir_all(scribbled.parent().unwrap()).unwrap();
    let mut damaged = full.clone();
    for byte in &mut damaged[4096 * 3..4096 * 6] {
        *byte = 0x5A;
    }
    std::fs::write(&scribbled, &damaged).unwrap();
    assert_refused(&scribbled, is_corrupt);
}

#[test]
fn another_applications_sqlite_file_is_foreign_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
             INSERT INTO notes (body) VALUES ('hello');",
        )
        .unwrap();
    }
    assert_refused(&path, |e| matches!(e, StateError::Foreign { .. }));

    // Even one with a `meta` table of its own.
    let meta = dir.path().join("meta/s.db");
    std::fs::create_dir_all(meta.parent().unwrap()).unwrap();
    {
        let conn = Connection::open(&meta).unwrap();
        conn.execute_batch(
            "CREATE TABLE meta (k TEXT, v TEXT); INSERT INTO meta VALUES ('app', 'other');",
        )
        .unwrap();
    }
    assert_refused(&meta, |e| matches!(e, StateError::Foreign { .. }));
}

#[test]
fn a_state_from_a_newer_turkform_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    open_rw(&path, Target::Sim);
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    assert_refused(
        &path,
        |e| matches!(e, StateError::TooNew { found, supported, .. } if *found == SCHEMA_VERSION + 1 && *supported == SCHEMA_VERSION),
    );
    let err = StateStore::open(&path, Target::Sim, OpenMode::ReadWrite).unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "was written by a newer turkform (schema {}, this one knows up to {SCHEMA_VERSION}): upgrade turkform",
            SCHEMA_VERSION + 1
        )),
        "{err}"
    );
}

fn running_as_root() -> bool {
    let probe = tempfile::NamedTempFile::new().unwrap();
    probe.as_file().metadata().unwrap().uid() == 0
}

/// What an unprivileged user sees of a state it may read but not write: `ReadWrite` is refused
/// with `ReadOnly`, `ReadOnly` works. Run in-process, or as a child under another uid.
fn check_read_only_access(path: &Path) {
    let before = sha256(path);
    let listing = dir_listing(path.parent().unwrap());
    let err = StateStore::open(path, Target::Sim, OpenMode::ReadWrite).unwrap_err();
    assert!(matches!(err, StateError::ReadOnly { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("`{}`", path.display())),
        "{err}"
    );
    assert_eq!(sha256(path), before);
    assert_eq!(dir_listing(path.parent().unwrap()), listing);
    let store = StateStore::open(path, Target::Sim, OpenMode::ReadOnly).unwrap();
    assert_eq!(store.load().unwrap().hits.len(), 1);
    drop(store);
    assert_eq!(sha256(path), before);
}

/// Not a test on its own: the unprivileged child of the read-only tests when they run as root.
#[test]
fn readonly_child_helper() {
    let Ok(path) = std::env::var(READONLY_CHILD_ENV) else {
        return;
    };
    check_read_only_access(Path::new(&path));
}

fn make_state_with_one_hit(path: &Path) {
    let mut store = open_rw(path, Target::Sim);
    store
        .commit(&Batch {
            upsert_hits: vec![hit("c", "k", 1, "H1")],
            ..Batch::default()
        })
        .unwrap();
}

fn run_read_only_check(path: &Path) {
    if running_as_root() {
        // Root ignores permission bits; ask an unprivileged user instead.
        let status = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "readonly_child_helper", "--test-threads=1"])
            .env(READONLY_CHILD_ENV, path)
            .stdout(Stdio::null())
            .uid(65_534)
            .gid(65_534)
            .status()
            .unwrap();
        assert!(status.success(), "the unprivileged check failed");
    } else {
        check_read_only_access(path);
    }
}

use std::os::unix::process::CommandExt as _;

#[test]
fn a_read_only_file_or_directory_is_refused_for_writing_and_still_readable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    // The file is read-only; its directory is open to all.
    let file_dir = dir.path().join("file");
    std::fs::create_dir(&file_dir).unwrap();
    let path = file_dir.join("s.db");
    make_state_with_one_hit(&path);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(&file_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    run_read_only_check(&path);

    // The file is writable but its directory is not (SQLite could not create its WAL).
    let dir_dir = dir.path().join("dir");
    std::fs::create_dir(&dir_dir).unwrap();
    let path = dir_dir.join("s.db");
    make_state_with_one_hit(&path);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(&dir_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    run_read_only_check(&path);
    std::fs::set_permissions(&dir_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn read_only_opens_never_create_or_change_anything() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("sub/s.db");
    let store = StateStore::open(&missing, Target::Sim, OpenMode::ReadOnly).unwrap();
    assert_eq!(store.lineage(), "");
    assert_eq!(store.serial().unwrap(), 0);
    let state = store.load().unwrap();
    assert!(state.hits.is_empty());
    assert_eq!(state.target, Some(Target::Sim));
    assert!(store.pending_intents().unwrap().is_empty());
    assert!(store.runs(10).unwrap().is_empty());
    assert!(!dir.path().join("sub").exists());

    let path = dir.path().join("s.db");
    make_state_with_one_hit(&path);
    let before = sha256(&path);
    let listing = dir_listing(dir.path());
    let mut store = StateStore::open(&path, Target::Sim, OpenMode::ReadOnly).unwrap();
    assert_eq!(store.load().unwrap().hits.len(), 1);
    let err = store.commit(&Batch {
        refreshed_at: Some(UnixTime(1)),
        ..Batch::default()
    });
    assert!(matches!(err, Err(StateError::ReadOnly { .. })), "{err:?}");
    assert!(matches!(
        store.begin_intent(&intent("t")),
        Err(StateError::ReadOnly { .. })
    ));
    assert!(matches!(
        store.remove_hit("H1"),
        Err(StateError::ReadOnly { .. })
    ));
    drop(store);
    assert_eq!(sha256(&path), before);
    assert_eq!(
        dir_listing(dir.path()),
        listing,
        "no -wal or -shm left behind"
    );
}

/// The v1 schema as shipped, with a row in every table a v1 turkform wrote.
fn make_v1_state(path: &Path) {
    let conn = Connection::open(path).unwrap();
    let _: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    conn.execute_batch(schema::V1).unwrap();
    conn.execute_batch(
        "PRAGMA user_version = 1;
         INSERT INTO meta VALUES ('app', 'turkform'), ('lineage', '0123456789abcdef0123456789abcdef'),
                                 ('schema_version', '1'), ('created_at', '1700000000');
         INSERT INTO partitions VALUES ('sim', 4, 1700000500);
         INSERT INTO hit_types VALUES ('sim', 'hash', 'HT1');
         INSERT INTO qualification_types VALUES ('sim', 'q', 'Q1', 'qhash');
         INSERT INTO hits VALUES ('sim', 'c', 'k1', 1, 'H1', 'HT1', 'hash', 'content', 3, 36,
                                  1700000000, 1700086400, 'Assignable', 3, 0, 0, NULL, NULL, NULL);
         INSERT INTO intents (target, kind, campaign, item_key, generation, token, payload, created_at)
                VALUES ('sim', 'create_hit', 'c', 'k2', 1, 'tok', '{\"a\":1}', 1700000000);",
    )
    .unwrap();
}

#[test]
fn a_v1_state_upgrades_to_the_current_schema_after_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    make_v1_state(&path);

    // Read-only: readable as it is, never migrated.
    let before = sha256(&path);
    let old = StateStore::open(&path, Target::Sim, OpenMode::ReadOnly).unwrap();
    assert_eq!(old.schema_version(), 1);
    assert_eq!(old.load().unwrap().hits.len(), 1);
    assert!(old.runs(5).unwrap().is_empty());
    drop(old);
    assert_eq!(sha256(&path), before);

    let mut store = open_rw(&path, Target::Sim);
    assert_eq!(store.schema_version(), SCHEMA_VERSION);
    assert_eq!(store.lineage(), "0123456789abcdef0123456789abcdef");
    let state = store.load().unwrap();
    assert_eq!(state.serial, 4);
    assert_eq!(state.refreshed_at, Some(UnixTime(1_700_000_500)));
    assert_eq!(state.hits.len(), 1);
    assert_eq!(state.hits[0].hit_id, "H1");
    assert_eq!(state.hits[0].committed_cost, Money::from_cents(36));
    assert_eq!(state.hit_types[0].hit_type_id, "HT1");
    assert_eq!(state.qualification_types[0].qualification_type_id, "Q1");
    let pending = store.pending_intents().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].token, "tok");
    // What v2 added works.
    let run = store
        .begin_run("turkform apply", "bob", UnixTime(1_700_000_000))
        .unwrap();
    store
        .finish_run(run, "ok", UnixTime(1_700_000_100))
        .unwrap();
    assert_eq!(store.runs(5).unwrap().len(), 1);
    drop(store);

    let conn = Connection::open(&path).unwrap();
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let meta: String = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(meta, SCHEMA_VERSION.to_string());

    let backup = dir.path().join("s.db.bak-v1");
    let backup_conn = Connection::open(&backup).unwrap();
    let version: u32 = backup_conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 1);
    let hits: i64 = backup_conn
        .query_row("SELECT count(*) FROM hits", [], |r| r.get(0))
        .unwrap();
    assert_eq!(hits, 1);

    // Opening again migrates nothing and backs up nothing.
    drop(backup_conn);
    let listing = dir_listing(dir.path());
    drop(open_rw(&path, Target::Sim));
    assert_eq!(dir_listing(dir.path()), listing);
}

fn the_run_log_records_who_ran_what_and_how_it_ended(loc: Loc) {
    let path = loc.path();
    let mut store = open_rw(&path, Target::Sandbox);
    let first = store
        .begin_run("turkform apply", "alice", UnixTime(1_700_000_000))
        .unwrap();
    store
        .finish_run(first, "failed: 3 items", UnixTime(1_700_000_100))
        .unwrap();
    let second = store
        .begin_run("turkform refresh", "bob", UnixTime(1_700_000_000))
        .unwrap();
    let mut sim = open_rw(&path, Target::Sim);
    sim.begin_run("turkform apply", "carol", UnixTime(1_700_000_000))
        .unwrap();

    let runs = store.runs(10).unwrap();
    assert_eq!(runs.len(), 2, "per target");
    assert_eq!(runs[0].id, second.0, "newest first");
    assert_eq!(runs[0].command, "turkform refresh");
    assert_eq!(runs[0].user, "bob");
    assert_eq!(runs[0].finished_at, None);
    assert_eq!(runs[0].result, None);
    assert_eq!(runs[1].result.as_deref(), Some("failed: 3 items"));
    // The caller's clock, not the wall clock (a simulator run may be days ahead of it).
    assert_eq!(runs[1].started_at, UnixTime(1_700_000_000));
    assert_eq!(runs[1].finished_at, Some(UnixTime(1_700_000_100)));
    assert_eq!(runs[1].pid, std::process::id());
    assert_eq!(runs[1].host, turkform_state::lock::hostname());
    assert_eq!(store.runs(1).unwrap().len(), 1);
    assert!(matches!(
        store.finish_run(turkform_state::RunId(999), "ok", UnixTime(1_700_000_100)),
        Err(StateError::NotFound { .. })
    ));
}

fn remove_item_and_remove_hit_forget_records_or_say_not_found(loc: Loc) {
    let path = loc.path();
    let mut store = open_rw(&path, Target::Sim);
    store
        .commit(&Batch {
            upsert_hits: vec![
                hit("c", "k1", 1, "H1"),
                hit("c", "k1", 2, "H2"),
                hit("c", "k2", 1, "H3"),
                hit("d", "k1", 1, "H4"),
            ],
            ..Batch::default()
        })
        .unwrap();
    assert_eq!(store.remove_item("c", "k1").unwrap(), 2);
    assert_eq!(store.serial().unwrap(), 2);
    let err = store.remove_item("c", "k1").unwrap_err();
    assert!(matches!(err, StateError::NotFound { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "item `k1` of campaign `c` is not in the state"
    );
    store.remove_hit("H3").unwrap();
    let err = store.remove_hit("H3").unwrap_err();
    assert_eq!(err.to_string(), "HIT `H3` is not in the state");
    assert_eq!(store.serial().unwrap(), 3, "refusals change nothing");
    let ids: Vec<String> = store
        .load()
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.hit_id)
        .collect();
    assert_eq!(ids, vec!["H4"]);
}

#[test]
fn a_cleanly_closed_state_is_one_self_contained_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut store = open_rw(&path, Target::Sim);
    store.begin_intent(&intent("t")).unwrap();
    drop(store);
    let listing = dir_listing(dir.path());
    assert!(
        listing
            .iter()
            .all(|n| !n.ends_with("-wal") && !n.ends_with("-shm")),
        "{listing:?}"
    );
    let copy = dir.path().join("copy.db");
    std::fs::copy(&path, &copy).unwrap();
    let copied = StateStore::open(&copy, Target::Sim, OpenMode::ReadOnly).unwrap();
    assert_eq!(copied.pending_intents().unwrap().len(), 1);
}

#[test]
fn a_read_only_store_sees_changes_a_writer_makes_while_it_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    make_state_with_one_hit(&path);
    // No writer: the reader reads the file directly, leaving nothing behind.
    let reader = StateStore::open(&path, Target::Sim, OpenMode::ReadOnly).unwrap();
    assert_eq!(reader.load().unwrap().hits.len(), 1);
    assert_eq!(dir_listing(dir.path()), vec!["s.db"]);

    let mut writer = open_rw(&path, Target::Sim);
    writer
        .commit(&Batch {
            upsert_hits: vec![hit("c", "k2", 1, "H2")],
            ..Batch::default()
        })
        .unwrap();
    let state = reader.load().unwrap();
    assert_eq!(state.hits.len(), 2);
    assert_eq!(state.serial, 2);
    writer.begin_intent(&intent("t")).unwrap();
    assert_eq!(reader.pending_intents().unwrap().len(), 1);
    assert_eq!(reader.serial().unwrap(), 3);
    drop(writer);
    assert_eq!(reader.load().unwrap().hits.len(), 2);
}

fn removed_hits_are_remembered_as_forgotten_and_renames_move_everything(loc: Loc) {
    let path = loc.path();
    let mut store = open_rw(&path, Target::Sim);
    store
        .commit(&Batch {
            upsert_hits: vec![
                hit("old", "k1", 1, "H1"),
                hit("old", "k1", 2, "H2"),
                hit("old", "k2", 1, "H3"),
                hit("other", "k1", 1, "H4"),
            ],
            ..Batch::default()
        })
        .unwrap();

    assert_eq!(store.remove_item("old", "k1").unwrap(), 2);
    let state = store.load().unwrap();
    let mut forgotten: Vec<(&str, u32)> = state
        .forgotten
        .iter()
        .map(|f| (f.hit_id.as_str(), f.generation))
        .collect();
    forgotten.sort();
    assert_eq!(forgotten, [("H1", 1), ("H2", 2)]);
    assert_eq!(state.next_fresh_generation("old", "k1"), 3);
    assert_eq!(state.next_fresh_generation("old", "k2"), 1);

    let serial = store.serial().unwrap();
    let mv = |from: &str, to: &str| turkform_model::Rename {
        from_campaign: from.to_owned(),
        from_key: None,
        to_campaign: to.to_owned(),
        to_key: None,
    };
    // Into a name state already uses: refused, nothing changed.
    assert!(matches!(
        store.rename(&mv("old", "other")),
        Err(StateError::Refused { .. })
    ));
    assert!(matches!(
        store.rename(&mv("nosuch", "x")),
        Err(StateError::NotFound { .. })
    ));
    assert_eq!(store.serial().unwrap(), serial);

    assert_eq!(store.rename(&mv("old", "new")).unwrap(), 1);
    let state = store.load().unwrap();
    assert!(state.hits.iter().all(|h| h.campaign != "old"));
    assert_eq!(state.hits.iter().filter(|h| h.campaign == "new").count(), 1);
    // What was forgotten under the old name stays forgotten under the new one.
    assert_eq!(state.next_fresh_generation("new", "k1"), 3);
    assert_eq!(state.renames, [mv("old", "new")]);
    let renamed = state.renamed(turkform_model::Annotation::new("old", "k9", 1));
    assert_eq!(renamed.campaign, "new");
    assert!(renamed.matches_key("k9"));
    assert!(store.serial().unwrap() > serial);
    drop(store);

    // Reopened, it is all still there.
    let again = StateStore::open(&path, Target::Sim, OpenMode::ReadOnly).unwrap();
    assert_eq!(again.load().unwrap(), state);
}

/// `state rm` of a HIT state already forgot once (refresh restored it meanwhile): the upsert
/// into forgotten_hits replaces the record instead of failing on its key (SQLite's
/// `INSERT OR REPLACE` became a portable `ON CONFLICT DO UPDATE`).
fn a_hit_forgotten_twice_is_remembered_once_with_its_latest_item(loc: Loc) {
    let path = loc.path();
    let mut store = open_rw(&path, Target::Sim);
    store
        .commit(&Batch {
            upsert_hits: vec![hit("c", "k1", 1, "H1")],
            ..Batch::default()
        })
        .unwrap();
    store.remove_hit("H1").unwrap();
    store
        .commit(&Batch {
            upsert_hits: vec![hit("c", "k2", 4, "H1")],
            ..Batch::default()
        })
        .unwrap();
    assert_eq!(store.remove_item("c", "k2").unwrap(), 1);
    let state = store.load().unwrap();
    assert!(state.hits.is_empty());
    let forgotten: Vec<(&str, &str, u32)> = state
        .forgotten
        .iter()
        .map(|f| (f.hit_id.as_str(), f.item_key.as_str(), f.generation))
        .collect();
    assert_eq!(forgotten, [("H1", "k2", 4)]);
}

fn bonus(identity: &str, cents: i64) -> turkform_model::RecordedBonus {
    turkform_model::RecordedBonus {
        campaign: "c".to_owned(),
        identity: identity.to_owned(),
        assignment_id: identity.split('/').next().unwrap().to_owned(),
        worker_id: "W1".to_owned(),
        amount: Money::from_cents(cents),
        reason: "Great work".to_owned(),
        token: format!("tok-{identity}"),
        requested_at: UnixTime(1_700_000_000),
        paid_at: None,
    }
}

fn a_bonus_is_recorded_pending_once_then_paid_once_and_kept(loc: Loc) {
    let path = loc.path();
    let mut store = open_rw(&path, Target::Sim);
    let serial = store.serial().unwrap();
    assert!(store.record_bonus_pending(&bonus("A1", 25)).unwrap());
    assert!(store.record_bonus_pending(&bonus("A1/2", 100)).unwrap());
    // A second record of the same row keeps the first amount: it is what MTurk may have seen.
    assert!(!store.record_bonus_pending(&bonus("A1", 99)).unwrap());
    assert_eq!(store.serial().unwrap(), serial + 2);
    assert!(
        store
            .mark_bonus_paid("c", "A1", UnixTime(1_700_000_100))
            .unwrap()
    );
    assert!(
        !store
            .mark_bonus_paid("c", "A1", UnixTime(1_700_000_200))
            .unwrap(),
        "paid once"
    );
    drop(store);
    let state = open_rw(&path, Target::Sim).load().unwrap();
    let got: Vec<(&str, i64, Option<UnixTime>)> = state
        .bonuses
        .iter()
        .map(|b| (b.identity.as_str(), b.amount.cents(), b.paid_at))
        .collect();
    assert_eq!(
        got,
        vec![
            ("A1", 25, Some(UnixTime(1_700_000_100))),
            ("A1/2", 100, None)
        ]
    );
    let other = open_rw(&path, Target::Sandbox).load().unwrap();
    assert!(other.bonuses.is_empty(), "targets never mix");
}

/// The executor's bonus path: the intent and the pending row in one begin, the outcome and the
/// paid mark in one commit, so no crash leaves one without the other.
fn a_send_bonus_intent_and_its_pending_bonus_are_begun_and_resolved_together(loc: Loc) {
    let path = loc.path();
    let mut store = open_rw(&path, Target::Sim);
    let mut send = intent("tok-A1");
    send.kind = IntentKind::SendBonus;
    send.item_key = Some("A1".to_owned());
    let serial = store.serial().unwrap();
    let ids = store
        .begin_intents_and_bonuses(&[send.clone()], &[bonus("A1", 25)])
        .unwrap();
    assert_eq!(
        store.serial().unwrap(),
        serial + 1,
        "one change, one serial"
    );
    // A crash here: both are there, the bonus pending.
    drop(store);
    let mut store = open_rw(&path, Target::Sim);
    let pending = store.pending_intents().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].kind, IntentKind::SendBonus);
    assert_eq!(pending[0].id, ids[0]);
    assert_eq!(store.load().unwrap().bonuses[0].paid_at, None);
    // Resumed: beginning again finds the same intent and keeps the first record.
    let again = store
        .begin_intents_and_bonuses(&[send], &[bonus("A1", 99)])
        .unwrap();
    assert_eq!(again, ids);
    store
        .commit(&Batch {
            completed: vec![(ids[0], IntentOutcome::Done)],
            bonuses_paid: vec![turkform_state::BonusPaid {
                campaign: "c".to_owned(),
                identity: "A1".to_owned(),
                at: UnixTime(1_700_000_100),
            }],
            ..Batch::default()
        })
        .unwrap();
    assert!(store.pending_intents().unwrap().is_empty());
    let state = store.load().unwrap();
    assert_eq!(
        state
            .bonuses
            .iter()
            .map(|b| (b.amount.cents(), b.paid_at))
            .collect::<Vec<_>>(),
        [(25, Some(UnixTime(1_700_000_100)))]
    );
    for kind in [
        IntentKind::ApproveAssignment,
        IntentKind::OverrideRejection,
        IntentKind::RejectAssignment,
        IntentKind::SendBonus,
    ] {
        assert_eq!(IntentKind::parse(kind.as_str()), Some(kind));
    }
}

fn load_carries_every_recorded_assignment_for_the_planner(loc: Loc) {
    let path = loc.path();
    let mut store = open_rw(&path, Target::Sim);
    let a = turkform_model::RecordedAssignment {
        assignment_id: "AS1".to_owned(),
        hit_id: "H1".to_owned(),
        campaign: "c".to_owned(),
        item_key: "k1".to_owned(),
        generation: 1,
        worker_id: "W1".to_owned(),
        status: turkform_model::AssignmentStatus::Submitted,
        accept_time: Some(UnixTime(1_700_000_000)),
        submit_time: Some(UnixTime(1_700_000_060)),
        auto_approval_time: Some(UnixTime(1_700_259_260)),
        approval_time: None,
        rejection_time: None,
        answer_xml: "<QuestionFormAnswers/>".to_owned(),
        answers: [("label".to_owned(), "car".to_owned())].into(),
        requester_feedback: None,
        decided_by: None,
    };
    store
        .commit(&Batch {
            upsert_hits: vec![hit("c", "k1", 1, "H1")],
            upsert_assignments: vec![a.clone()],
            ..Batch::default()
        })
        .unwrap();
    assert_eq!(store.load().unwrap().assignments, vec![a]);
}

/// `state mv` of a campaign left its bonuses under the old name; the planner finds a paid
/// bonus by campaign and identity, so the next apply paid it again under the new name.
fn state_mv_of_a_campaign_moves_its_paid_bonuses_so_none_is_paid_again(loc: Loc) {
    let path = loc.path();
    let mut store = open_rw(&path, Target::Sim);
    store
        .commit(&Batch {
            upsert_hits: vec![hit("c", "k1", 1, "H1")],
            ..Batch::default()
        })
        .unwrap();
    assert!(store.record_bonus_pending(&bonus("A1", 25)).unwrap());
    assert!(
        store
            .mark_bonus_paid("c", "A1", UnixTime(1_700_000_100))
            .unwrap()
    );
    let campaign = |from: &str, to: &str| turkform_model::Rename {
        from_campaign: from.to_owned(),
        from_key: None,
        to_campaign: to.to_owned(),
        to_key: None,
    };
    store.rename(&campaign("c", "d")).unwrap();
    let state = store.load().unwrap();
    let got: Vec<(&str, &str, Option<UnixTime>)> = state
        .bonuses
        .iter()
        .map(|b| (b.campaign.as_str(), b.identity.as_str(), b.paid_at))
        .collect();
    assert_eq!(got, [("d", "A1", Some(UnixTime(1_700_000_100)))]);
    // Recording it again under the new name finds it: nothing new to pay.
    let mut again = bonus("A1", 25);
    again.campaign = "d".to_owned();
    assert!(!store.record_bonus_pending(&again).unwrap());

    // An item rename leaves the campaign's bonuses where they are.
    let item = turkform_model::Rename {
        from_campaign: "d".to_owned(),
        from_key: Some("k1".to_owned()),
        to_campaign: "d".to_owned(),
        to_key: Some("k2".to_owned()),
    };
    store.rename(&item).unwrap();
    assert_eq!(store.load().unwrap().bonuses[0].campaign, "d");
}

/// Ends one of a PostgreSQL store's sessions from the server, waiting until it is gone.
fn terminate_session(pid: i32) {
    let mut admin = postgres::Client::connect(&common::test_pg_base(), postgres::NoTls).unwrap();
    let ended: bool = admin
        .query_one("SELECT pg_terminate_backend($1, 10000)", &[&pid])
        .unwrap()
        .get(0);
    assert!(ended, "session {pid} ended");
}

/// A lock whose session the server ended no longer protects anything: the store refuses to
/// write while that `StateLock` is held (another run may hold the lock by now), and a store
/// whose own session ended says so instead of blaming the URL or the password.
#[test]
fn a_postgres_store_refuses_writes_once_its_lock_session_ends_and_names_a_lost_session() {
    let loc = Loc::postgres();
    let app = format!("tf_lost_{}", std::process::id());
    let url = PathBuf::from(format!("{}&application_name={app}", loc.path().display()));
    let mut store = open_rw(&url, Target::Sim);
    let lock = store.lock("turkform apply", Duration::ZERO).unwrap();
    store.begin_intent(&intent("before")).unwrap();
    let record = {
        let mut admin =
            postgres::Client::connect(&common::test_pg_base(), postgres::NoTls).unwrap();
        admin
            .batch_execute(&format!(
                "SET search_path TO \"{}\"",
                loc.pg.as_ref().unwrap().schema
            ))
            .unwrap();
        let text: String = admin
            .query_one("SELECT value FROM meta WHERE key LIKE 'lock:%'", &[])
            .unwrap()
            .get(0);
        serde_json::from_str::<serde_json::Value>(&text).unwrap()
    };
    let lock_session = i32::try_from(record["backend"].as_i64().unwrap()).unwrap();
    terminate_session(lock_session);
    // The client hears of the closed socket on its own thread, a moment after the server.
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        match store.begin_intent(&intent(&format!("t{}", next_number()))) {
            Err(e) => break e,
            Ok(_) => assert!(Instant::now() < deadline, "writes went on without the lock"),
        }
    };
    assert!(
        matches!(refused, StateError::LockLost { .. }),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("was lost"), "{refused}");
    // Released on purpose, the lock no longer guards the store's writes.
    drop(lock);
    store.begin_intent(&intent("unlocked")).unwrap();

    let store_session = {
        let mut admin =
            postgres::Client::connect(&common::test_pg_base(), postgres::NoTls).unwrap();
        admin
            .query_one(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .unwrap()
            .get::<_, i32>(0)
    };
    terminate_session(store_session);
    let lost = store.begin_intent(&intent("after")).unwrap_err();
    assert!(
        matches!(lost, StateError::ConnectionLost { .. }),
        "{lost:?}"
    );
    assert!(
        lost.to_string()
            .starts_with("lost the connection to the PostgreSQL state at `"),
        "{lost}"
    );
}

fn next_number() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
