//! `turkform state migrate --to URL`: a whole state (every target, the journal and the run
//! log) copied to another backend, keeping its lineage and serials, so that plans saved before
//! the move still apply after it.
//!
//! [`TABLES`] lists every table and column that is copied: a table added by a migration gets
//! its line here in the same commit.

use std::path::Path;
use std::time::Duration;

use turkform_model::Target;

use crate::StateError;
use crate::db::{DbError, Param, Tx};
use crate::lock::StateLock;
use crate::schema::{IDENTITY_TABLES, SCHEMA_VERSION};
use crate::store::{OpenMode, StateStore, TxError};

/// Every table of the current schema with the columns copied, in insertion order. `meta` is
/// not here: the destination keeps its own identity rows except for the lineage (and
/// creation time), which are the source's.
pub const TABLES: &[(&str, &[&str])] = &[
    (
        "partitions",
        &[
            "target",
            "serial",
            "refreshed_at",
            "balance_cents",
            "balance_read_at",
        ],
    ),
    (
        "qualification_types",
        &["target", "name", "qualification_type_id", "definition_hash"],
    ),
    ("hit_types", &["target", "definition_hash", "hit_type_id"]),
    (
        "hits",
        &[
            "target",
            "campaign",
            "item_key",
            "generation",
            "hit_id",
            "hit_type_id",
            "hit_type_hash",
            "content_hash",
            "max_assignments",
            "committed_cost_cents",
            "created_at",
            "expiration",
            "status",
            "assignments_available",
            "assignments_pending",
            "assignments_completed",
            "expired_by",
            "paused_remaining_secs",
            "drift",
            "input_row",
            "posted",
        ],
    ),
    (
        "orphans",
        &[
            "target",
            "hit_id",
            "hit_type_id",
            "annotation",
            "max_assignments",
            "created_at",
            "expiration",
            "status",
        ],
    ),
    (
        "intents",
        &[
            "id",
            "target",
            "kind",
            "campaign",
            "item_key",
            "generation",
            "hit_id",
            "token",
            "payload",
            "created_at",
            "attempts",
            "outcome",
            "message",
            "finished_at",
        ],
    ),
    (
        "runs",
        &[
            "id",
            "target",
            "command",
            "\"user\"",
            "host",
            "pid",
            "started_at",
            "finished_at",
            "result",
        ],
    ),
    (
        "assignments",
        &[
            "target",
            "assignment_id",
            "hit_id",
            "campaign",
            "item_key",
            "generation",
            "worker_id",
            "status",
            "accept_time",
            "submit_time",
            "auto_approval_time",
            "approval_time",
            "rejection_time",
            "answer_xml",
            "answers",
            "requester_feedback",
            "decided_by",
        ],
    ),
    (
        "forgotten_hits",
        &["target", "hit_id", "campaign", "item_key", "generation"],
    ),
    (
        "renames",
        &[
            "id",
            "target",
            "from_campaign",
            "from_key",
            "to_campaign",
            "to_key",
        ],
    ),
    (
        "bonuses",
        &[
            "target",
            "campaign",
            "identity",
            "assignment_id",
            "worker_id",
            "amount_cents",
            "reason",
            "token",
            "requested_at",
            "paid_at",
        ],
    ),
    (
        "worker_blocks",
        &[
            "target",
            "worker_id",
            "reason",
            "made_by",
            "status",
            "recorded_at",
        ],
    ),
    (
        "worker_grants",
        &[
            "target",
            "qualification_type_id",
            "worker_id",
            "qualification",
            "value",
            "made_by",
            "status",
            "recorded_at",
        ],
    ),
    (
        "notification_settings",
        &[
            "target",
            "hit_type_id",
            "campaign",
            "destination",
            "transport",
            "events",
            "active",
            "updated_at",
        ],
    ),
    (
        "hit_groups",
        &["target", "hit_group_id", "similar_hits", "counted_at"],
    ),
];

/// What a migration copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrateReport {
    pub lineage: String,
    /// Rows copied per table, in [`TABLES`] order.
    pub rows: Vec<(String, u64)>,
    /// Each target's serial, as it was and now is.
    pub serials: Vec<(Target, u64)>,
}

/// Copies the whole state at `from` into `to` (a file path or a `postgres://` URL, either
/// way). The source is locked (every target) for the copy and never changed; the destination
/// must hold no state yet and receives everything in one transaction, so a failed copy leaves
/// it empty. Refuses a source at an older schema (open it read-write once, e.g. with
/// `turkform refresh`, to migrate it first).
pub fn migrate_state(
    from: &Path,
    to: &Path,
    lock_timeout: Duration,
) -> Result<MigrateReport, StateError> {
    let source = StateStore::open(from, Target::Sim, OpenMode::ReadOnly)?;
    if source.lineage().is_empty() {
        return Err(StateError::NotFound {
            what: format!("a state at `{}`", source.location()),
        });
    }
    if source.schema_version() < SCHEMA_VERSION {
        return Err(StateError::ReadOnly {
            path: source.path().to_path_buf(),
            detail: format!(
                "schema {} is older than {SCHEMA_VERSION}; run `turkform refresh` on it once to \
                 upgrade it, then migrate",
                source.schema_version()
            ),
        });
    }
    // Nothing may change the source while it is copied. One lock per target on PostgreSQL;
    // a file has one lock for all.
    let mut locks: Vec<StateLock> = Vec::new();
    for target in Target::ALL {
        let store = StateStore::open(from, target, OpenMode::ReadOnly)?;
        if !source.is_postgres() && !locks.is_empty() {
            break;
        }
        locks.push(store.lock("turkform state migrate", lock_timeout)?);
    }

    let lineage = source.lineage().to_owned();
    let mut dest = StateStore::open(to, Target::Sim, OpenMode::ReadWrite)?;
    let dest_location = dest.location();
    let dest_lineage = dest.lineage().to_owned();
    let is_pg = dest.is_postgres();
    // One snapshot of the source, streamed row by row into one write transaction of the
    // destination: memory holds a fetch of rows, not the state (assignments carry their whole
    // answer XML).
    let rows = source
        .read_once(|stx| {
            let created_at = meta_value(stx, "created_at")?;
            Ok::<_, DbError>(
                dest.write(|dtx| copy(stx, dtx, &source, &lineage, created_at.as_deref(), is_pg)),
            )
        })?
        .unwrap_or_else(|| {
            Err(DbError::Decode(
                "the source state vanished during the copy".to_owned(),
            ))
        })
        .map_err(|e| source.db_error(e))?;
    let rows = match rows {
        Err(StateError::NotFound { what }) if what.is_empty() => {
            return Err(StateError::DestinationNotEmpty {
                location: dest_location,
                lineage: dest_lineage,
            });
        }
        other => other?,
    };
    drop(dest);
    drop(locks);

    let mut serials = Vec::new();
    for target in Target::ALL {
        let store = StateStore::open(to, target, OpenMode::ReadOnly)?;
        let serial = store.serial()?;
        if serial > 0 {
            serials.push((target, serial));
        }
    }
    Ok(MigrateReport {
        lineage,
        rows,
        serials,
    })
}

/// A state location fit to show: a file path as it is, a URL without its password.
pub fn shown(location: &Path) -> String {
    match location.to_str() {
        Some(text) if crate::pg::is_url(text) => crate::pg::PgLocation::parse(text)
            .map(|l| l.redacted().to_owned())
            .unwrap_or_else(|_| "an unusable postgres:// URL".to_owned()),
        _ => location.display().to_string(),
    }
}

/// Rows a PostgreSQL source sends per fetch of the copy.
const COPY_CHUNK: i32 = 512;

/// The copy itself, inside the destination's write transaction `dtx`, reading the source's
/// snapshot `stx`. The destination must hold no rows yet.
fn copy(
    stx: &mut Tx<'_>,
    dtx: &mut Tx<'_>,
    source: &StateStore,
    lineage: &str,
    created_at: Option<&str>,
    is_pg: bool,
) -> Result<Vec<(String, u64)>, TxError> {
    for (table, _) in TABLES {
        let any = dtx.query_opt(&format!("SELECT 1 FROM {table} LIMIT 1"), &[], |_| Ok(()))?;
        if any.is_some() {
            return Err(TxError::NotFound(String::new()));
        }
    }
    dtx.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'lineage'",
        &[&lineage],
    )?;
    if let Some(at) = created_at {
        dtx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'created_at'",
            &[&at],
        )?;
    }
    let mut counts = Vec::with_capacity(TABLES.len());
    for (table, columns) in TABLES {
        let select = format!(
            "SELECT {} FROM {table} ORDER BY {}",
            columns.join(", "),
            (1..=columns.len().min(5))
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let insert = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            columns.join(", "),
            (1..=columns.len())
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut copied = 0u64;
        // A failed insert stops the source's stream and is told as the destination's.
        let mut failed = None;
        stx.stream(&select, &[], COPY_CHUNK, |row| {
            let values = (0..columns.len())
                .map(|i| row.owned(i))
                .collect::<Result<Vec<_>, _>>()?;
            let params: Vec<&dyn Param> = values.iter().map(|v| v as &dyn Param).collect();
            match dtx.execute(&insert, &params) {
                Ok(_) => {
                    copied += 1;
                    Ok(true)
                }
                Err(e) => {
                    failed = Some(e);
                    Ok(false)
                }
            }
        })
        .map_err(|e| TxError::State(source.db_error(e)))?;
        if let Some(e) = failed {
            return Err(TxError::Db(e));
        }
        counts.push(((*table).to_owned(), copied));
    }
    if is_pg {
        for table in IDENTITY_TABLES {
            // The next id must follow the copied ones.
            dtx.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                                   (SELECT COALESCE(max(id), 0) + 1 FROM {table}), false)"
                ),
                &[],
            )?;
        }
    }
    Ok(counts)
}

fn meta_value(tx: &mut Tx<'_>, key: &str) -> Result<Option<String>, DbError> {
    tx.query_opt("SELECT value FROM meta WHERE key = ?1", &[&key], |r| {
        r.get::<String>(0)
    })
}
