//! Workers and notifications (DESIGN.md section 9): reading blocks and grants from MTurk, and
//! carrying out a plan's blocks, unblocks, grants, revokes and notification settings.
//!
//! None of these calls takes a token, and a repeat is harmless on MTurk (a second block or grant
//! just sets it again). What needs care is telling turkform's own block from one made outside:
//! a block is recorded `adding` in state *before* CreateWorkerBlock (its write-ahead record), so
//! that a crash after the call leaves a record the next refresh confirms with ListWorkerBlocks,
//! instead of a block that looks like someone else's and would never be undone. An undo is
//! recorded `removing` first in the same way. A call that fails is confirmed with the List call
//! before it is reported: MTurk may have done it before the answer was lost.

use std::collections::{HashMap, HashSet};

use futures_util::StreamExt;
use serde::Serialize;
use turkform_model::{
    DesiredState, MadeBy, RecordedBlock, RecordedGrant, RecordedNotification, RecordedState,
    UnixTime, WorkerRecordStatus,
};
use turkform_mturk::{ApiError, MturkApi, RemoteBlock, RemoteGrant};
use turkform_plan::{Plan, PlannedNotification, WorkerAction};
use turkform_state::{StateStore, WorkersBatch};

use crate::engine::blocking;
use crate::{ActionFailure, ApplyError, ApplyOptions, Clock, read_retrying};

/// The reason DeleteWorkerBlock is sent with (the requester's note; workers do not see it).
const UNBLOCK_REASON: &str = "no longer blocked by turkform";
/// The reason DisassociateQualificationFromWorker is sent with (the worker may see it).
const REVOKE_REASON: &str = "no longer granted";

/// What reading workers from MTurk found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WorkersSeen {
    /// Blocks and grants MTurk shows that turkform did not make: left alone.
    pub outside_blocks: usize,
    pub outside_grants: usize,
    /// Blocks and grants of an earlier run whose outcome was unknown, now confirmed either way.
    pub confirmed: usize,
    pub api_calls: u64,
}

/// What the workers part of an apply did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WorkersReport {
    pub blocked: usize,
    pub unblocked: usize,
    pub granted: usize,
    pub revoked: usize,
    pub notifications: usize,
    /// Calls that failed and that the List call showed done anyway.
    pub confirmed: usize,
    pub failed: Vec<ActionFailure>,
}

impl WorkersReport {
    pub fn done(&self) -> usize {
        self.blocked + self.unblocked + self.granted + self.revoked + self.notifications
    }
}

/// Which lists to read: blocks when turkform records a block or the files may ask for one,
/// grants of the qualification types turkform records grants of or that have a grants file.
fn scope(
    recorded: &RecordedState,
    desired: Option<&DesiredState>,
) -> (bool, Vec<(String, String)>) {
    let blocks = !recorded.blocks.is_empty()
        || desired.is_some_and(|d| {
            d.workers.blocks_file.is_some()
                || d.campaigns.iter().any(|c| {
                    c.review
                        .known_answers
                        .as_ref()
                        .is_some_and(|k| k.block_below.is_some())
                })
        });
    let mut types: Vec<(String, String)> = recorded
        .grants
        .iter()
        .map(|g| (g.qualification.clone(), g.qualification_type_id.clone()))
        .collect();
    if let Some(d) = desired {
        for file in &d.workers.grants {
            if let Some(q) = recorded
                .qualification_types
                .iter()
                .find(|q| q.name == file.qualification)
            {
                types.push((q.name.clone(), q.qualification_type_id.clone()));
            }
        }
    }
    types.sort();
    types.dedup();
    (blocks, types)
}

async fn all_blocks(api: &dyn MturkApi, calls: &mut u64) -> Result<Vec<RemoteBlock>, ApiError> {
    let mut out = Vec::new();
    let mut next = None;
    loop {
        let page = read_retrying(|| api.list_worker_blocks(next.clone())).await?;
        *calls += 1;
        let empty = page.items.is_empty();
        out.extend(page.items);
        match page.next_token {
            Some(t) if !empty => next = Some(t),
            _ => return Ok(out),
        }
    }
}

async fn all_grants(
    api: &dyn MturkApi,
    type_id: &str,
    calls: &mut u64,
) -> Result<Vec<RemoteGrant>, ApiError> {
    let mut out = Vec::new();
    let mut next = None;
    loop {
        let page =
            read_retrying(|| api.list_workers_with_qualification(type_id, next.clone())).await?;
        *calls += 1;
        let empty = page.items.is_empty();
        out.extend(page.items);
        match page.next_token {
            Some(t) if !empty => next = Some(t),
            _ => return Ok(out),
        }
    }
}

/// Reads blocks and grants and works out the record changes: turkform's records confirmed
/// (an `adding` one MTurk shows becomes `active`, one it does not show was never made; a
/// `removing` one is gone or `active` again; an `active` one MTurk no longer shows was undone
/// outside turkform and is forgotten), and the outside ones replaced by what MTurk shows.
async fn read(
    api: &dyn MturkApi,
    recorded: &RecordedState,
    desired: Option<&DesiredState>,
    now: UnixTime,
) -> Result<(WorkersSeen, WorkersBatch), ApplyError> {
    let mut seen = WorkersSeen::default();
    let mut batch = WorkersBatch::default();
    let (list_blocks, types) = scope(recorded, desired);
    if list_blocks {
        let remote = all_blocks(api, &mut seen.api_calls)
            .await
            .map_err(ApplyError::Api)?;
        let listed: HashMap<&str, &RemoteBlock> =
            remote.iter().map(|b| (b.worker_id.as_str(), b)).collect();
        let mut ours: HashSet<&str> = HashSet::new();
        for b in recorded
            .blocks
            .iter()
            .filter(|b| b.made_by == MadeBy::Turkform)
        {
            let on_mturk = listed.contains_key(b.worker_id.as_str());
            match (b.status, on_mturk) {
                (WorkerRecordStatus::Active, true) => {
                    ours.insert(&b.worker_id);
                }
                (WorkerRecordStatus::Adding | WorkerRecordStatus::Removing, true) => {
                    ours.insert(&b.worker_id);
                    seen.confirmed += 1;
                    batch.upsert_blocks.push(RecordedBlock {
                        status: WorkerRecordStatus::Active,
                        ..b.clone()
                    });
                }
                (status, false) => {
                    if status != WorkerRecordStatus::Active {
                        seen.confirmed += 1;
                    }
                    batch.delete_blocks.push(b.worker_id.clone());
                }
            }
        }
        let outside: Vec<RecordedBlock> = remote
            .iter()
            .filter(|b| !ours.contains(b.worker_id.as_str()))
            .map(|b| RecordedBlock {
                worker_id: b.worker_id.clone(),
                reason: b.reason.clone(),
                made_by: MadeBy::Outside,
                status: WorkerRecordStatus::Active,
                recorded_at: now,
            })
            .collect();
        seen.outside_blocks = outside.len();
        batch.replace_outside_blocks = Some(outside);
    }
    let mut outside_grants = Vec::new();
    for (name, type_id) in &types {
        let remote = all_grants(api, type_id, &mut seen.api_calls)
            .await
            .map_err(ApplyError::Api)?;
        let listed: HashMap<&str, &RemoteGrant> =
            remote.iter().map(|g| (g.worker_id.as_str(), g)).collect();
        let mut ours: HashSet<&str> = HashSet::new();
        for g in recorded
            .grants
            .iter()
            .filter(|g| g.made_by == MadeBy::Turkform && &g.qualification_type_id == type_id)
        {
            match (g.status, listed.get(g.worker_id.as_str())) {
                (WorkerRecordStatus::Active, Some(r)) if r.value == g.value => {
                    ours.insert(&g.worker_id);
                }
                (WorkerRecordStatus::Removing, Some(r)) | (WorkerRecordStatus::Adding, Some(r))
                    if r.value == g.value =>
                {
                    ours.insert(&g.worker_id);
                    seen.confirmed += 1;
                    batch.upsert_grants.push(RecordedGrant {
                        status: WorkerRecordStatus::Active,
                        ..g.clone()
                    });
                }
                // Held with another value: still ours (the plan sets the file's value again).
                (_, Some(r)) => {
                    ours.insert(&g.worker_id);
                    batch.upsert_grants.push(RecordedGrant {
                        status: WorkerRecordStatus::Active,
                        value: r.value,
                        ..g.clone()
                    });
                }
                (status, None) => {
                    if status != WorkerRecordStatus::Active {
                        seen.confirmed += 1;
                    }
                    batch
                        .delete_grants
                        .push((type_id.clone(), g.worker_id.clone()));
                }
            }
        }
        for r in remote
            .iter()
            .filter(|r| !ours.contains(r.worker_id.as_str()))
        {
            outside_grants.push(RecordedGrant {
                qualification: name.clone(),
                qualification_type_id: type_id.clone(),
                worker_id: r.worker_id.clone(),
                value: r.value,
                made_by: MadeBy::Outside,
                status: WorkerRecordStatus::Active,
                recorded_at: now,
            });
        }
    }
    if !types.is_empty() {
        seen.outside_grants = outside_grants.len();
        batch.replace_outside_grants = Some((
            types.into_iter().map(|(_, id)| id).collect(),
            outside_grants,
        ));
    }
    Ok((seen, batch))
}

/// Reads blocks and grants from MTurk and records what they show. `desired` widens what is
/// read to what the files may ask for (a plan or an apply); `None` reads only what state
/// already records (`turkform refresh`).
pub(crate) async fn refresh(
    api: &dyn MturkApi,
    store: &mut StateStore,
    clock: &dyn Clock,
    desired: Option<&DesiredState>,
) -> Result<WorkersSeen, ApplyError> {
    let recorded = blocking(|| store.load()).map_err(ApplyError::State)?;
    let (seen, batch) = read(api, &recorded, desired, clock.now()).await?;
    blocking(|| store.commit_workers(&batch)).map_err(ApplyError::State)?;
    Ok(seen)
}

/// [`refresh`] into `recorded` only, writing nothing (what `plan` sees).
pub(crate) async fn refresh_in_memory(
    api: &dyn MturkApi,
    recorded: &mut RecordedState,
    desired: Option<&DesiredState>,
    now: UnixTime,
) -> Result<WorkersSeen, ApplyError> {
    let (seen, batch) = read(api, recorded, desired, now).await?;
    merge(recorded, &batch);
    Ok(seen)
}

/// What committing `batch` does to the store, done to an in-memory record.
fn merge(recorded: &mut RecordedState, batch: &WorkersBatch) {
    if let Some(outside) = &batch.replace_outside_blocks {
        recorded.blocks.retain(|b| b.made_by != MadeBy::Outside);
        recorded.blocks.extend(outside.iter().cloned());
    }
    for b in &batch.upsert_blocks {
        recorded.blocks.retain(|x| x.worker_id != b.worker_id);
        recorded.blocks.push(b.clone());
    }
    recorded
        .blocks
        .retain(|b| !batch.delete_blocks.contains(&b.worker_id));
    if let Some((types, outside)) = &batch.replace_outside_grants {
        recorded
            .grants
            .retain(|g| g.made_by != MadeBy::Outside || !types.contains(&g.qualification_type_id));
        recorded.grants.extend(outside.iter().cloned());
    }
    for g in &batch.upsert_grants {
        recorded.grants.retain(|x| {
            !(x.qualification_type_id == g.qualification_type_id && x.worker_id == g.worker_id)
        });
        recorded.grants.push(g.clone());
    }
    recorded.grants.retain(|g| {
        !batch
            .delete_grants
            .iter()
            .any(|(t, w)| *t == g.qualification_type_id && *w == g.worker_id)
    });
    recorded
        .blocks
        .sort_by(|a, b| a.worker_id.cmp(&b.worker_id));
    recorded
        .grants
        .sort_by(|a, b| (&a.qualification, &a.worker_id).cmp(&(&b.qualification, &b.worker_id)));
}

/// One worker action, resolved: the grant's type id known.
struct Resolved<'a> {
    action: &'a WorkerAction,
    qualification_type_id: Option<String>,
}

fn failure(action: &WorkerAction, message: String) -> ActionFailure {
    let (kind, item) = match action {
        WorkerAction::Block { worker_id, .. } => ("block", worker_id.clone()),
        WorkerAction::Unblock { worker_id } => ("unblock", worker_id.clone()),
        WorkerAction::Grant {
            qualification,
            worker_id,
            ..
        } => ("grant", format!("{qualification}/{worker_id}")),
        WorkerAction::Revoke {
            qualification,
            worker_id,
            ..
        } => ("revoke", format!("{qualification}/{worker_id}")),
    };
    ActionFailure {
        campaign: String::new(),
        item_key: item,
        kind,
        message,
    }
}

/// Whether MTurk shows `action` done (the List call after a failed one).
async fn shows_done(api: &dyn MturkApi, r: &Resolved<'_>) -> Result<bool, ApiError> {
    let mut calls = 0;
    match r.action {
        WorkerAction::Block { worker_id, .. } => Ok(all_blocks(api, &mut calls)
            .await?
            .iter()
            .any(|b| &b.worker_id == worker_id)),
        WorkerAction::Unblock { worker_id } => Ok(!all_blocks(api, &mut calls)
            .await?
            .iter()
            .any(|b| &b.worker_id == worker_id)),
        WorkerAction::Grant {
            worker_id, value, ..
        } => {
            let id = r.qualification_type_id.as_deref().unwrap_or_default();
            Ok(all_grants(api, id, &mut calls)
                .await?
                .iter()
                .any(|g| &g.worker_id == worker_id && g.value == *value))
        }
        WorkerAction::Revoke { worker_id, .. } => {
            let id = r.qualification_type_id.as_deref().unwrap_or_default();
            Ok(!all_grants(api, id, &mut calls)
                .await?
                .iter()
                .any(|g| &g.worker_id == worker_id))
        }
    }
}

/// One call, confirmed with the List call when it fails. `Ok(confirmed)`: done (`true` when
/// only the List call showed it).
async fn send(api: &dyn MturkApi, r: &Resolved<'_>) -> Result<bool, String> {
    let type_id = r.qualification_type_id.as_deref().unwrap_or_default();
    let result = match r.action {
        WorkerAction::Block { worker_id, reason } => {
            read_retrying(|| api.create_worker_block(worker_id, reason)).await
        }
        WorkerAction::Unblock { worker_id } => {
            read_retrying(|| api.delete_worker_block(worker_id, UNBLOCK_REASON)).await
        }
        WorkerAction::Grant {
            worker_id, value, ..
        } => read_retrying(|| api.associate_qualification(type_id, worker_id, *value)).await,
        WorkerAction::Revoke { worker_id, .. } => {
            read_retrying(|| api.disassociate_qualification(type_id, worker_id, REVOKE_REASON))
                .await
        }
    };
    match result {
        Ok(()) => Ok(false),
        Err(e) => match shows_done(api, r).await {
            Ok(true) => Ok(true),
            Ok(false) => Err(e.to_string()),
            Err(list) => Err(format!("{e}; and it could not be confirmed: {list}")),
        },
    }
}

/// Carries out the plan's worker actions and notification settings, after its HIT and review
/// actions (a grant may need the qualification type the same apply created; a notification the
/// HIT type it registered).
pub async fn apply_workers(
    plan: &Plan,
    api: &dyn MturkApi,
    store: &mut StateStore,
    clock: &dyn Clock,
    options: &ApplyOptions,
) -> Result<WorkersReport, ApplyError> {
    let mut report = WorkersReport::default();
    if plan.workers.is_empty() && plan.notifications.is_empty() {
        return Ok(report);
    }
    let recorded = blocking(|| store.load()).map_err(ApplyError::State)?;
    let type_ids: HashMap<&str, &str> = recorded
        .qualification_types
        .iter()
        .map(|q| (q.name.as_str(), q.qualification_type_id.as_str()))
        .collect();
    let now = clock.now();

    // The write-ahead records, in one commit before any call.
    let mut ahead = WorkersBatch::default();
    let mut resolved = Vec::new();
    for planned in &plan.workers {
        let action = &planned.action;
        let qualification_type_id = match action {
            WorkerAction::Grant {
                qualification,
                qualification_type_id,
                ..
            } => qualification_type_id.clone().or_else(|| {
                type_ids
                    .get(qualification.as_str())
                    .map(|s| (*s).to_owned())
            }),
            WorkerAction::Revoke {
                qualification_type_id,
                ..
            } => Some(qualification_type_id.clone()),
            _ => None,
        };
        match action {
            WorkerAction::Block { worker_id, reason } => ahead.upsert_blocks.push(RecordedBlock {
                worker_id: worker_id.clone(),
                reason: reason.clone(),
                made_by: MadeBy::Turkform,
                status: WorkerRecordStatus::Adding,
                recorded_at: now,
            }),
            WorkerAction::Unblock { worker_id } => {
                if let Some(b) = recorded.blocks.iter().find(|b| &b.worker_id == worker_id) {
                    ahead.upsert_blocks.push(RecordedBlock {
                        status: WorkerRecordStatus::Removing,
                        ..b.clone()
                    });
                }
            }
            WorkerAction::Grant {
                qualification,
                worker_id,
                value,
                ..
            } => {
                let Some(id) = &qualification_type_id else {
                    report.failed.push(failure(
                        action,
                        format!("qualification type `{qualification}` is not in state: it was not created; apply again once it is"),
                    ));
                    continue;
                };
                ahead.upsert_grants.push(RecordedGrant {
                    qualification: qualification.clone(),
                    qualification_type_id: id.clone(),
                    worker_id: worker_id.clone(),
                    value: *value,
                    made_by: MadeBy::Turkform,
                    status: WorkerRecordStatus::Adding,
                    recorded_at: now,
                });
            }
            WorkerAction::Revoke {
                qualification_type_id: id,
                worker_id,
                ..
            } => {
                if let Some(g) = recorded
                    .grants
                    .iter()
                    .find(|g| &g.qualification_type_id == id && &g.worker_id == worker_id)
                {
                    ahead.upsert_grants.push(RecordedGrant {
                        status: WorkerRecordStatus::Removing,
                        ..g.clone()
                    });
                }
            }
        }
        resolved.push(Resolved {
            action,
            qualification_type_id,
        });
    }
    blocking(|| store.commit_workers(&ahead)).map_err(ApplyError::State)?;

    let mut outcomes = futures_util::stream::iter(
        resolved
            .iter()
            .map(|r| async move { (r, send(api, r).await) }),
    )
    .buffer_unordered(options.concurrency.max(1));
    let mut after = WorkersBatch::default();
    while let Some((r, outcome)) = outcomes.next().await {
        match outcome {
            Ok(confirmed) => {
                if confirmed {
                    report.confirmed += 1;
                }
                match r.action {
                    WorkerAction::Block { .. } => report.blocked += 1,
                    WorkerAction::Unblock { .. } => report.unblocked += 1,
                    WorkerAction::Grant { .. } => report.granted += 1,
                    WorkerAction::Revoke { .. } => report.revoked += 1,
                }
                record_done(r, &ahead, &mut after);
            }
            // Left `adding` / `removing`: the next refresh confirms it either way.
            Err(message) => report.failed.push(failure(r.action, message)),
        }
        if options.cancel.is_cancelled() {
            break;
        }
    }
    drop(outcomes);
    blocking(|| store.commit_workers(&after)).map_err(ApplyError::State)?;

    if !options.cancel.is_cancelled() {
        notifications(plan, api, store, now, &mut report).await?;
    }
    Ok(report)
}

/// The record of a done action: `active`, or gone for an undo.
fn record_done(r: &Resolved<'_>, ahead: &WorkersBatch, after: &mut WorkersBatch) {
    match r.action {
        WorkerAction::Block { worker_id, .. } => {
            if let Some(b) = ahead
                .upsert_blocks
                .iter()
                .find(|b| &b.worker_id == worker_id)
            {
                after.upsert_blocks.push(RecordedBlock {
                    status: WorkerRecordStatus::Active,
                    ..b.clone()
                });
            }
        }
        WorkerAction::Unblock { worker_id } => after.delete_blocks.push(worker_id.clone()),
        WorkerAction::Grant { worker_id, .. } => {
            if let Some(g) = ahead.upsert_grants.iter().find(|g| {
                &g.worker_id == worker_id
                    && Some(&g.qualification_type_id) == r.qualification_type_id.as_ref()
            }) {
                after.upsert_grants.push(RecordedGrant {
                    status: WorkerRecordStatus::Active,
                    ..g.clone()
                });
            }
        }
        WorkerAction::Revoke {
            qualification_type_id,
            worker_id,
            ..
        } => after
            .delete_grants
            .push((qualification_type_id.clone(), worker_id.clone())),
    }
}

/// UpdateNotificationSettings for each planned setting; the HIT type id is looked up by hash
/// when the same apply registered the type.
async fn notifications(
    plan: &Plan,
    api: &dyn MturkApi,
    store: &mut StateStore,
    now: UnixTime,
    report: &mut WorkersReport,
) -> Result<(), ApplyError> {
    if plan.notifications.is_empty() {
        return Ok(());
    }
    let recorded = blocking(|| store.load()).map_err(ApplyError::State)?;
    let mut batch = WorkersBatch::default();
    for n in &plan.notifications {
        let PlannedNotification {
            campaign,
            hit_type_hash,
            hit_type_id,
            settings,
            ..
        } = n;
        let fail = |message: String| ActionFailure {
            campaign: campaign.clone(),
            item_key: "[notifications]".to_owned(),
            kind: "notification settings",
            message,
        };
        let id = hit_type_id.clone().or_else(|| {
            let hash = hit_type_hash.as_deref()?;
            recorded
                .hit_types
                .iter()
                .find(|t| t.definition_hash == hash)
                .map(|t| t.hit_type_id.clone())
        });
        let Some(id) = id else {
            report.failed.push(fail(
                "the campaign's HIT type is not registered yet; apply again once its HITs are posted".to_owned(),
            ));
            continue;
        };
        let active = settings.is_some();
        match read_retrying(|| api.update_notification_settings(&id, settings.as_ref(), active))
            .await
        {
            Ok(()) => {
                let kept = settings.clone().or_else(|| {
                    recorded
                        .notifications
                        .iter()
                        .find(|r| r.hit_type_id == id)
                        .map(|r| r.settings.clone())
                });
                if let Some(settings) = kept {
                    batch.upsert_notifications.push(RecordedNotification {
                        hit_type_id: id.clone(),
                        campaign: campaign.clone(),
                        settings,
                        active,
                        updated_at: now,
                    });
                }
                report.notifications += 1;
            }
            Err(e) => report.failed.push(fail(e.to_string())),
        }
    }
    blocking(|| store.commit_workers(&batch)).map_err(ApplyError::State)?;
    Ok(())
}
