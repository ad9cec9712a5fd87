//! The planner's workers rules (DESIGN.md section 9), on literal states: what turkform made is
//! undone when no file or rule asks for it any more, what was made outside is never touched,
//! an unknown outcome is sent again, and a plan of some campaigns unblocks nobody.

use turkform_model::{
    BlockRow, DesiredState, DesiredWorkers, GrantFile, GrantRow, MadeBy, RecordedBlock,
    RecordedGrant, RecordedQualificationType, RecordedState, Target, UnixTime, WorkerRecordStatus,
};
use turkform_plan::{PlanOptions, WorkerAction};

fn block(worker: &str, by: MadeBy, status: WorkerRecordStatus) -> RecordedBlock {
    RecordedBlock {
        worker_id: worker.to_owned(),
        reason: "spam".into(),
        made_by: by,
        status,
        recorded_at: UnixTime(1_700_000_000),
    }
}

fn row(worker: &str, line: usize) -> BlockRow {
    BlockRow {
        worker_id: worker.to_owned(),
        reason: "spam".into(),
        file: "workers/blocked.csv".into(),
        line,
    }
}

fn desired(workers: DesiredWorkers) -> DesiredState {
    DesiredState {
        target: Target::Sim,
        campaigns: vec![],
        qualification_types: vec![],
        inputs_digest: "d".into(),
        workers,
    }
}

#[test]
fn blocks_are_made_undone_resent_or_left_alone_by_who_made_them() {
    let recorded = RecordedState {
        blocks: vec![
            block("AOUTSIDE", MadeBy::Outside, WorkerRecordStatus::Active),
            block("AGONE", MadeBy::Turkform, WorkerRecordStatus::Active),
            block("AUNSURE", MadeBy::Turkform, WorkerRecordStatus::Adding),
            block("AKEPT", MadeBy::Turkform, WorkerRecordStatus::Active),
        ],
        ..RecordedState::default()
    };
    let d = desired(DesiredWorkers {
        blocks_file: Some("workers/blocked.csv".into()),
        blocks: vec![
            row("AOUTSIDE", 2),
            row("ANEW", 3),
            row("AUNSURE", 4),
            row("AKEPT", 5),
        ],
        grants: vec![],
    });
    let plan = turkform_plan::plan(
        &d,
        &recorded,
        UnixTime(1_700_000_100),
        &PlanOptions::default(),
    );
    let got: Vec<(&str, &str)> = plan
        .workers
        .iter()
        .map(|w| (w.action.verb(), w.action.worker_id()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("block", "ANEW"),
            ("block", "AUNSURE"),
            ("unblock", "AGONE")
        ]
    );
    assert_eq!((plan.summary.block, plan.summary.unblock), (2, 1));
    assert_eq!(plan.summary.outside_blocks, 1);
    assert!(plan.warnings.iter().any(|w| {
        w.message
            .contains("AOUTSIDE is already blocked outside turkform")
    }));
    assert!(plan.has_changes());

    // A plan of some campaigns cannot see the others' known-answers rules: it unblocks nobody.
    let some = turkform_plan::plan(
        &d,
        &recorded,
        UnixTime(1_700_000_100),
        &PlanOptions {
            only_campaigns: vec!["street".into()],
        },
    );
    assert_eq!((some.summary.block, some.summary.unblock), (2, 0));
    assert!(
        some.warnings
            .iter()
            .any(|w| w.message.contains("plan all campaigns to unblock"))
    );
}

#[test]
fn grants_name_their_type_by_id_once_known_and_only_turkforms_are_revoked() {
    let grant = |worker: &str, value: i32, by: MadeBy| RecordedGrant {
        qualification: "trained".into(),
        qualification_type_id: "QT1".into(),
        worker_id: worker.to_owned(),
        value,
        made_by: by,
        status: WorkerRecordStatus::Active,
        recorded_at: UnixTime(1_700_000_000),
    };
    let file = |rows: &[(&str, i32)]| GrantFile {
        qualification: "trained".into(),
        file: "workers/trained.csv".into(),
        rows: rows
            .iter()
            .enumerate()
            .map(|(i, (w, v))| GrantRow {
                worker_id: (*w).to_owned(),
                value: *v,
                line: i + 2,
            })
            .collect(),
    };
    // The type is created by the same apply: the grant names it, the executor resolves it.
    let fresh = turkform_plan::plan(
        &desired(DesiredWorkers {
            grants: vec![file(&[("AW1", 1)])],
            ..DesiredWorkers::default()
        }),
        &RecordedState::default(),
        UnixTime(1_700_000_100),
        &PlanOptions::default(),
    );
    assert_eq!(
        fresh.workers[0].action,
        WorkerAction::Grant {
            qualification: "trained".into(),
            qualification_type_id: None,
            worker_id: "AW1".into(),
            value: 1,
        }
    );

    let recorded = RecordedState {
        qualification_types: vec![RecordedQualificationType {
            name: "trained".into(),
            qualification_type_id: "QT1".into(),
            definition_hash: "h".into(),
        }],
        grants: vec![
            grant("AW1", 1, MadeBy::Turkform),
            grant("AW2", 3, MadeBy::Turkform),
            grant("AHAND", 9, MadeBy::Outside),
        ],
        ..RecordedState::default()
    };
    let plan = turkform_plan::plan(
        &desired(DesiredWorkers {
            grants: vec![file(&[("AW1", 2), ("AHAND", 4)])],
            ..DesiredWorkers::default()
        }),
        &recorded,
        UnixTime(1_700_000_100),
        &PlanOptions::default(),
    );
    let got: Vec<&WorkerAction> = plan.workers.iter().map(|w| &w.action).collect();
    assert_eq!(
        got,
        vec![
            &WorkerAction::Grant {
                qualification: "trained".into(),
                qualification_type_id: Some("QT1".into()),
                worker_id: "AW1".into(),
                value: 2,
            },
            &WorkerAction::Revoke {
                qualification: "trained".into(),
                qualification_type_id: "QT1".into(),
                worker_id: "AW2".into(),
            },
        ]
    );
    assert!(plan.workers[0].reason.contains("the value changed from 1"));
    assert!(plan.warnings.iter().any(|w| {
        w.message
            .contains("AHAND holds trained = 9 granted outside turkform")
    }));
}
