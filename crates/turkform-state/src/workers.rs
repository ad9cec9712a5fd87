//! The SQL of workers and notifications (DESIGN.md section 9): worker blocks and qualification
//! grants, turkform's own (recorded `adding` before the call, `active` after, `removing` before
//! an undo) and the ones a refresh found made outside turkform; and the notification settings
//! turkform set per HIT type. On `Tx`, in the portable SQL of `crate::db`, like `bonuses`.

use turkform_model::{
    MadeBy, NotificationSettings, NotificationTransport, RecordedBlock, RecordedGrant,
    RecordedNotification, Target, UnixTime, WorkerRecordStatus,
};

use crate::db::{DbError, Row, Tx};

/// Changes to the workers' records, committed in one transaction (with one serial bump when
/// anything changed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkersBatch {
    /// Keyed by worker id: replaces what was recorded.
    pub upsert_blocks: Vec<RecordedBlock>,
    /// Worker ids whose block record goes.
    pub delete_blocks: Vec<String>,
    /// `Some` is a refresh's listing: every outside block is replaced by these.
    pub replace_outside_blocks: Option<Vec<RecordedBlock>>,
    /// Keyed by (qualification type id, worker id).
    pub upsert_grants: Vec<RecordedGrant>,
    /// (qualification type id, worker id) whose grant record goes.
    pub delete_grants: Vec<(String, String)>,
    /// A refresh's listing of these qualification type ids: their outside grants are replaced
    /// by the grants given.
    pub replace_outside_grants: Option<(Vec<String>, Vec<RecordedGrant>)>,
    /// Keyed by HIT type id.
    pub upsert_notifications: Vec<RecordedNotification>,
}

impl WorkersBatch {
    pub fn is_empty(&self) -> bool {
        self == &WorkersBatch::default()
    }
}

fn status(r: &Row<'_>, i: usize) -> Result<WorkerRecordStatus, DbError> {
    let s: String = r.get(i)?;
    WorkerRecordStatus::parse(&s).ok_or_else(|| DbError::Decode(format!("record status `{s}`")))
}

fn made_by(r: &Row<'_>, i: usize) -> Result<MadeBy, DbError> {
    let s: String = r.get(i)?;
    MadeBy::parse(&s).ok_or_else(|| DbError::Decode(format!("made_by `{s}`")))
}

/// Every block recorded for the target, by worker id.
pub(crate) fn blocks(tx: &mut Tx<'_>, target: Target) -> Result<Vec<RecordedBlock>, DbError> {
    tx.query_all(
        "SELECT worker_id, reason, made_by, status, recorded_at FROM worker_blocks
         WHERE target = ?1 ORDER BY worker_id",
        &[&target.as_str()],
        |r| {
            Ok(RecordedBlock {
                worker_id: r.get(0)?,
                reason: r.get(1)?,
                made_by: made_by(r, 2)?,
                status: status(r, 3)?,
                recorded_at: UnixTime(r.get(4)?),
            })
        },
    )
}

/// Every grant recorded for the target, by type name and worker id.
pub(crate) fn grants(tx: &mut Tx<'_>, target: Target) -> Result<Vec<RecordedGrant>, DbError> {
    tx.query_all(
        "SELECT qualification, qualification_type_id, worker_id, value, made_by, status,
                recorded_at
         FROM worker_grants WHERE target = ?1 ORDER BY qualification, worker_id",
        &[&target.as_str()],
        |r| {
            Ok(RecordedGrant {
                qualification: r.get(0)?,
                qualification_type_id: r.get(1)?,
                worker_id: r.get(2)?,
                value: i32::try_from(r.get::<i64>(3)?)
                    .map_err(|e| DbError::Decode(format!("grant value: {e}")))?,
                made_by: made_by(r, 4)?,
                status: status(r, 5)?,
                recorded_at: UnixTime(r.get(6)?),
            })
        },
    )
}

/// Every notification setting turkform recorded for the target, by HIT type id.
pub(crate) fn notifications(
    tx: &mut Tx<'_>,
    target: Target,
) -> Result<Vec<RecordedNotification>, DbError> {
    tx.query_all(
        "SELECT hit_type_id, campaign, destination, transport, events, active, updated_at
         FROM notification_settings WHERE target = ?1 ORDER BY hit_type_id",
        &[&target.as_str()],
        |r| {
            let transport: String = r.get(3)?;
            let events: String = r.get(4)?;
            Ok(RecordedNotification {
                hit_type_id: r.get(0)?,
                campaign: r.get(1)?,
                settings: NotificationSettings {
                    destination: r.get(2)?,
                    transport: match transport.as_str() {
                        "SQS" => NotificationTransport::Sqs,
                        "SNS" => NotificationTransport::Sns,
                        other => return Err(DbError::Decode(format!("transport `{other}`"))),
                    },
                    events: events
                        .split(',')
                        .filter(|e| !e.is_empty())
                        .map(str::to_owned)
                        .collect(),
                },
                active: r.get::<i64>(5)? != 0,
                updated_at: UnixTime(r.get(6)?),
            })
        },
    )
}

fn upsert_block(tx: &mut Tx<'_>, t: &str, b: &RecordedBlock) -> Result<u64, DbError> {
    tx.execute(
        "INSERT INTO worker_blocks (target, worker_id, reason, made_by, status, recorded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (target, worker_id) DO UPDATE SET reason = excluded.reason,
             made_by = excluded.made_by, status = excluded.status,
             recorded_at = excluded.recorded_at",
        &[
            &t,
            &b.worker_id,
            &b.reason,
            &b.made_by.as_str(),
            &b.status.as_str(),
            &b.recorded_at.0,
        ],
    )
}

fn upsert_grant(tx: &mut Tx<'_>, t: &str, g: &RecordedGrant) -> Result<u64, DbError> {
    tx.execute(
        "INSERT INTO worker_grants (target, qualification_type_id, worker_id, qualification,
                                    value, made_by, status, recorded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (target, qualification_type_id, worker_id) DO UPDATE SET
             qualification = excluded.qualification, value = excluded.value,
             made_by = excluded.made_by, status = excluded.status,
             recorded_at = excluded.recorded_at",
        &[
            &t,
            &g.qualification_type_id,
            &g.worker_id,
            &g.qualification,
            &i64::from(g.value),
            &g.made_by.as_str(),
            &g.status.as_str(),
            &g.recorded_at.0,
        ],
    )
}

/// Applies `batch`; returns whether any row changed.
pub(crate) fn commit(
    tx: &mut Tx<'_>,
    target: Target,
    batch: &WorkersBatch,
) -> Result<bool, DbError> {
    let t = target.as_str();
    let mut changed = 0u64;
    if let Some(outside) = &batch.replace_outside_blocks {
        let before = blocks(tx, target)?;
        let old: Vec<&RecordedBlock> = before
            .iter()
            .filter(|b| b.made_by == MadeBy::Outside)
            .collect();
        let same = old.len() == outside.len()
            && old.iter().all(|o| {
                outside
                    .iter()
                    .any(|n| n.worker_id == o.worker_id && n.reason == o.reason)
            });
        if !same {
            changed += tx.execute(
                "DELETE FROM worker_blocks WHERE target = ?1 AND made_by = 'outside'",
                &[&t],
            )?;
            for b in outside {
                changed += upsert_block(tx, t, b)?;
            }
        }
    }
    for b in &batch.upsert_blocks {
        changed += upsert_block(tx, t, b)?;
    }
    for w in &batch.delete_blocks {
        changed += tx.execute(
            "DELETE FROM worker_blocks WHERE target = ?1 AND worker_id = ?2",
            &[&t, w],
        )?;
    }
    if let Some((types, outside)) = &batch.replace_outside_grants {
        let before = grants(tx, target)?;
        for type_id in types {
            let old: Vec<&RecordedGrant> = before
                .iter()
                .filter(|g| g.made_by == MadeBy::Outside && &g.qualification_type_id == type_id)
                .collect();
            let new: Vec<&RecordedGrant> = outside
                .iter()
                .filter(|g| &g.qualification_type_id == type_id)
                .collect();
            let same = old.len() == new.len()
                && old.iter().all(|o| {
                    new.iter()
                        .any(|n| n.worker_id == o.worker_id && n.value == o.value)
                });
            if same {
                continue;
            }
            changed += tx.execute(
                "DELETE FROM worker_grants
                 WHERE target = ?1 AND qualification_type_id = ?2 AND made_by = 'outside'",
                &[&t, type_id],
            )?;
            for g in new {
                changed += upsert_grant(tx, t, g)?;
            }
        }
    }
    for g in &batch.upsert_grants {
        changed += upsert_grant(tx, t, g)?;
    }
    for (type_id, worker) in &batch.delete_grants {
        changed += tx.execute(
            "DELETE FROM worker_grants
             WHERE target = ?1 AND qualification_type_id = ?2 AND worker_id = ?3",
            &[&t, type_id, worker],
        )?;
    }
    for n in &batch.upsert_notifications {
        changed += tx.execute(
            "INSERT INTO notification_settings (target, hit_type_id, campaign, destination,
                                                transport, events, active, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (target, hit_type_id) DO UPDATE SET campaign = excluded.campaign,
                 destination = excluded.destination, transport = excluded.transport,
                 events = excluded.events, active = excluded.active,
                 updated_at = excluded.updated_at",
            &[
                &t,
                &n.hit_type_id,
                &n.campaign,
                &n.settings.destination,
                &n.settings.transport.api_name(),
                &n.settings.events.join(","),
                &i64::from(n.active),
                &n.updated_at.0,
            ],
        )?;
    }
    Ok(changed > 0)
}
