//! [`StateStore`]: opening a state file safely, reading the [`RecordedState`] of one target,
//! and every change as one SQLite transaction that bumps that target's serial.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::Type;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, Transaction, params};
use turkform_model::{
    Annotation, Drift, ExpiredBy, ForgottenHit, HitStatus, Money, OrphanHit, RecordedAssignment,
    RecordedBonus, RecordedHit, RecordedHitType, RecordedQualificationType, RecordedState, Rename,
    Target, UnixTime,
};

use crate::StateError;
use crate::assignments::{AssignmentCount, AssignmentFilter, ExportRow, WorkerDecisions};
use crate::journal::{
    AccountBalance, Batch, Intent, IntentId, IntentKind, NewIntent, RunId, RunRecord,
};
use crate::lock::{self, LockInfo, StateLock};
use crate::schema::{self, Identity, SCHEMA_VERSION};

/// How a command means to use the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Never writes: no creation, no migration, no journal-mode change. For `plan`, `status`,
    /// `state show`.
    ReadOnly,
    /// Creates the file if missing, migrates an older schema, and allows changes.
    ReadWrite,
}

/// How long a writer waits for another connection's transaction (SQLite's own lock) before
/// failing. The apply lock keeps writers apart; this only covers short overlaps such as a
/// `status` reading while `apply` commits.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The state file, open for one target. One SQLite connection: `Send` but not `Sync`.
pub struct StateStore {
    path: PathBuf,
    target: Target,
    mode: OpenMode,
    /// `None` only for a read-only open of a file that does not exist yet (an empty state).
    /// In a cell because a read-only store may have to reopen its connection mid-read (see
    /// [`ReadPath`]).
    conn: RefCell<Option<Connection>>,
    /// How a read-only store reads; always [`ReadPath::Shared`] for read-write.
    read_path: Cell<ReadPath>,
    lineage: String,
    /// The schema version of the file (lower than [`SCHEMA_VERSION`] only when an older file
    /// was opened read-only, which never migrates).
    version: u32,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("path", &self.path)
            .field("target", &self.target)
            .field("mode", &self.mode)
            .field("lineage", &self.lineage)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl StateStore {
    /// Opens the state at `path` for `target`.
    ///
    /// Before anything can be written, the file is checked: its SQLite header by hand, then
    /// `PRAGMA quick_check`, then its `meta` table and schema version. A corrupt, foreign or
    /// newer file is refused with its own [`StateError`] and left byte-for-byte as it was.
    ///
    /// `ReadWrite` creates the file (and its directory) if missing, atomically: the database is
    /// built under a temporary name and linked into place, so a file at `path` is always a
    /// complete state. An older schema is migrated in one transaction after a backup copy
    /// `<file>.bak-v<N>`. `ReadOnly` on a missing file returns an empty store (lineage `""`,
    /// serial 0) and creates nothing.
    pub fn open(path: &Path, target: Target, mode: OpenMode) -> Result<StateStore, StateError> {
        let exists = match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                return Err(StateError::io(
                    path,
                    std::io::Error::other("it is a directory, not a state file"),
                ));
            }
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(StateError::io(path, e)),
        };
        match mode {
            OpenMode::ReadOnly if !exists => Ok(StateStore {
                path: path.to_path_buf(),
                target,
                mode,
                conn: RefCell::new(None),
                read_path: Cell::new(ReadPath::Shared),
                lineage: String::new(),
                version: SCHEMA_VERSION,
            }),
            OpenMode::ReadOnly => open_existing(path, target, mode),
            OpenMode::ReadWrite => {
                if !exists {
                    create_new(path)?;
                }
                open_existing(path, target, mode)
            }
        }
    }

    pub fn target(&self) -> Target {
        self.target
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn mode(&self) -> OpenMode {
        self.mode
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> u32 {
        self.version
    }

    /// The random 32-hex id the file got at creation (`""` for a state that does not exist yet).
    pub fn lineage(&self) -> &str {
        &self.lineage
    }

    /// This target's serial: 0 until the first change, then bumped by every committing change.
    pub fn serial(&self) -> Result<u64, StateError> {
        let target = self.target;
        Ok(self
            .read(|conn| read_partition(conn, target))?
            .map_or(0, |(serial, _)| serial))
    }

    /// Everything recorded for this target: hits of all generations (ordered by campaign, item
    /// key, generation, hit id), types, orphans, from one consistent snapshot.
    pub fn load(&self) -> Result<RecordedState, StateError> {
        let loaded = self.read(|conn| load(conn, self.target, &self.lineage))?;
        let Some(mut state) = loaded else {
            return Ok(RecordedState {
                target: Some(self.target),
                lineage: String::new(),
                ..RecordedState::default()
            });
        };
        // The planner reviews from these; they are read through the results functions (and
        // stream one row at a time) rather than duplicated into `load`.
        if self.has_results() {
            let target = self.target;
            state.assignments = self
                .read(|conn| {
                    let mut out = Vec::new();
                    crate::assignments::visit(
                        conn,
                        target,
                        &crate::AssignmentFilter::default(),
                        &mut |row| {
                            out.push(row.assignment);
                            true
                        },
                    )?;
                    Ok(out)
                })?
                .unwrap_or_default();
        }
        if self.version >= 5 {
            let target = self.target;
            state.bonuses = self
                .read(|conn| crate::bonuses::all(conn, target))?
                .unwrap_or_default();
        }
        Ok(state)
    }

    /// Records a bonus as pending, before its SendBonus call (the bonus's own write-ahead
    /// record: it outlives the intent journal, since a paid bonus must never be paid again).
    /// `false` when the row was already recorded (what was first recorded stays). Bumps the
    /// serial.
    pub fn record_bonus_pending(&mut self, bonus: &RecordedBonus) -> Result<bool, StateError> {
        let target = self.target;
        let path = self.path.clone();
        let conn = self.writable()?;
        write_tx(conn, &path, |tx| {
            let new = crate::bonuses::record_pending(tx, target, bonus)?;
            if new {
                bump_serial(tx, target)?;
            }
            Ok(new)
        })
    }

    /// Marks a pending bonus paid (MTurk accepted it, or ListBonusPayments shows it). `false`
    /// when it was already marked paid or is not recorded. Bumps the serial when it changes.
    pub fn mark_bonus_paid(
        &mut self,
        campaign: &str,
        identity: &str,
        at: UnixTime,
    ) -> Result<bool, StateError> {
        let target = self.target;
        let path = self.path.clone();
        let conn = self.writable()?;
        write_tx(conn, &path, |tx| {
            let changed = crate::bonuses::mark_paid(tx, target, campaign, identity, at)?;
            if changed {
                bump_serial(tx, target)?;
            }
            Ok(changed)
        })
    }

    // --- locking ---

    /// Takes the apply lock, waiting up to `timeout` (zero: try once). See [`crate::lock`].
    pub fn lock(&self, command: &str, timeout: Duration) -> Result<StateLock, StateError> {
        lock::acquire(&self.path, command, timeout)
    }

    /// Removes the holder record (and the lock file if another host still holds it) left by a
    /// holder that vanished. Refuses with [`StateError::LockHeld`] when the holder is a live
    /// process on this host. Returns the record removed, if any.
    pub fn force_unlock(&self) -> Result<Option<LockInfo>, StateError> {
        lock::force_unlock(&self.path)
    }

    // --- the intent journal ---

    /// Records, durably, that `intent` is about to be attempted, and returns its id. Beginning a
    /// token that is still pending returns the existing id (and counts an attempt).
    pub fn begin_intent(&mut self, intent: &NewIntent) -> Result<IntentId, StateError> {
        let ids = self.begin_intents(std::slice::from_ref(intent))?;
        Ok(ids[0])
    }

    /// [`Self::begin_intent`] for many calls in one transaction (one fsync for a whole wave of
    /// requests). Ids are returned in the order of `intents`.
    pub fn begin_intents(&mut self, intents: &[NewIntent]) -> Result<Vec<IntentId>, StateError> {
        let target = self.target;
        let path = self.path.clone();
        let conn = self.writable()?;
        write_tx(conn, &path, |tx| {
            let mut ids = Vec::with_capacity(intents.len());
            let mut find = tx.prepare_cached(
                "SELECT id FROM intents WHERE target = ?1 AND token = ?2 AND outcome IS NULL
                 ORDER BY id LIMIT 1",
            )?;
            let mut again =
                tx.prepare_cached("UPDATE intents SET attempts = attempts + 1 WHERE id = ?1")?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO intents (target, kind, campaign, item_key, generation, hit_id, token,
                                      payload, created_at, attempts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1)",
            )?;
            for intent in intents {
                let existing: Option<i64> = find
                    .query_row(params![target.as_str(), intent.token], |r| r.get(0))
                    .optional()?;
                let id = match existing {
                    Some(id) => {
                        again.execute([id])?;
                        id
                    }
                    None => {
                        insert.execute(params![
                            target.as_str(),
                            intent.kind.as_str(),
                            intent.campaign,
                            intent.item_key,
                            intent.generation,
                            intent.hit_id,
                            intent.token,
                            intent.payload.to_string(),
                            intent.created_at.0,
                        ])?;
                        tx.last_insert_rowid()
                    }
                };
                ids.push(IntentId(id));
            }
            if !intents.is_empty() {
                bump_serial(tx, target)?;
            }
            Ok(ids)
        })
    }

    /// Every intent of this target with no outcome yet, oldest first.
    pub fn pending_intents(&self) -> Result<Vec<Intent>, StateError> {
        Ok(self
            .read(|conn| pending_intents(conn, self.target))?
            .unwrap_or_default())
    }

    /// In one transaction: records the outcomes in `batch` and applies its record changes, then
    /// bumps the serial once. An empty batch changes nothing, not even the serial. An unknown
    /// intent id fails the whole batch with [`StateError::NotFound`].
    pub fn commit(&mut self, batch: &Batch) -> Result<(), StateError> {
        if batch.is_empty() {
            return Ok(());
        }
        let target = self.target;
        let path = self.path.clone();
        let conn = self.writable()?;
        write_tx(conn, &path, |tx| commit_batch(tx, target, batch))
    }

    // --- run log ---

    /// Starts a run log entry for this process (host and pid are filled in here). The run log
    /// is history, not state: it does not bump the serial.
    pub fn begin_run(&mut self, command: &str, user: &str) -> Result<RunId, StateError> {
        let target = self.target;
        let path = self.path.clone();
        let conn = self.writable()?;
        write_tx(conn, &path, |tx| {
            tx.execute(
                "INSERT INTO runs (target, command, user, host, pid, started_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    target.as_str(),
                    command,
                    user,
                    lock::hostname(),
                    std::process::id(),
                    UnixTime::now().0
                ],
            )?;
            Ok(RunId(tx.last_insert_rowid()))
        })
    }

    /// Records how a run ended (`"ok"`, `"failed: 3 items"`, ...).
    pub fn finish_run(&mut self, run: RunId, result: &str) -> Result<(), StateError> {
        let target = self.target;
        let path = self.path.clone();
        let conn = self.writable()?;
        write_tx(conn, &path, |tx| {
            let changed = tx.execute(
                "UPDATE runs SET finished_at = ?1, result = ?2 WHERE id = ?3 AND target = ?4",
                params![UnixTime::now().0, result, run.0, target.as_str()],
            )?;
            if changed == 0 {
                return Err(TxError::NotFound(format!("run {}", run.0)));
            }
            Ok(())
        })
    }

    /// The newest `limit` runs of this target, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StateError> {
        if self.version < 2 {
            // An older file opened read-only: it has no run log yet.
            return Ok(Vec::new());
        }
        Ok(self
            .read(|conn| runs(conn, self.target, limit))?
            .unwrap_or_default())
    }

    // --- results ---

    /// Whether the file has the results tables (an older file opened read-only does not).
    fn has_results(&self) -> bool {
        self.version >= 3
    }

    /// The account balance the last refresh read, if any.
    pub fn account_balance(&self) -> Result<Option<AccountBalance>, StateError> {
        if !self.has_results() {
            return Ok(None);
        }
        let target = self.target;
        Ok(self
            .read(|conn| crate::assignments::account_balance(conn, target))?
            .flatten())
    }

    /// Every recorded assignment of one HIT.
    pub fn assignments_of_hit(&self, hit_id: &str) -> Result<Vec<RecordedAssignment>, StateError> {
        if !self.has_results() {
            return Ok(Vec::new());
        }
        let target = self.target;
        Ok(self
            .read(|conn| crate::assignments::of_hit(conn, target, hit_id))?
            .unwrap_or_default())
    }

    /// HITs holding a Submitted assignment whose auto-approval time is at or before `now`.
    pub fn hits_past_auto_approval(&self, now: UnixTime) -> Result<Vec<String>, StateError> {
        if !self.has_results() {
            return Ok(Vec::new());
        }
        let target = self.target;
        Ok(self
            .read(|conn| crate::assignments::hits_past_auto_approval(conn, target, now))?
            .unwrap_or_default())
    }

    /// Assignments per HIT and status.
    pub fn assignment_counts(&self) -> Result<Vec<AssignmentCount>, StateError> {
        if !self.has_results() {
            return Ok(Vec::new());
        }
        let target = self.target;
        Ok(self
            .read(|conn| crate::assignments::counts(conn, target))?
            .unwrap_or_default())
    }

    /// This requester's decisions per worker (for approval-rate columns), windows ending `now`.
    pub fn worker_decisions(
        &self,
        now: UnixTime,
    ) -> Result<BTreeMap<String, WorkerDecisions>, StateError> {
        if !self.has_results() {
            return Ok(BTreeMap::new());
        }
        let target = self.target;
        Ok(self
            .read(|conn| crate::assignments::worker_decisions(conn, target, now))?
            .unwrap_or_default())
    }

    /// The campaigns with at least one assignment, by name.
    pub fn campaigns_with_assignments(&self) -> Result<Vec<String>, StateError> {
        if !self.has_results() {
            return Ok(Vec::new());
        }
        let target = self.target;
        Ok(self
            .read(|conn| crate::assignments::campaigns(conn, target))?
            .unwrap_or_default())
    }

    /// `campaign`'s Input columns (first seen) and answer fields (sorted), for an export header.
    pub fn export_columns(&self, campaign: &str) -> Result<(Vec<String>, Vec<String>), StateError> {
        if !self.has_results() {
            return Ok((Vec::new(), Vec::new()));
        }
        let target = self.target;
        Ok(self
            .read(|conn| {
                Ok((
                    crate::assignments::input_columns(conn, target, campaign)?,
                    crate::assignments::answer_fields(conn, target, campaign)?,
                ))
            })?
            .unwrap_or_default())
    }

    /// Streams the assignments `filter` selects (see [`crate::assignments::ExportRow`]), one at
    /// a time, from one consistent snapshot; `each` returns `false` to stop.
    pub fn visit_assignments(
        &self,
        filter: &AssignmentFilter,
        mut each: impl FnMut(ExportRow) -> bool,
    ) -> Result<(), StateError> {
        if !self.has_results() {
            return Ok(());
        }
        let target = self.target;
        let conn = self.conn.borrow();
        let Some(c) = conn.as_ref() else {
            return Ok(());
        };
        // A direct read is redone when a writer touched the file meanwhile; a stream cannot be
        // redone (rows are already written out), so it always reads through SQLite's WAL
        // protocol, inside one read transaction.
        let shared;
        let c = match self.read_path.get() {
            ReadPath::Shared => c,
            ReadPath::Direct(_) => {
                shared = open_shared_read_only(&self.path)?;
                &shared
            }
        };
        crate::assignments::visit(c, target, filter, &mut each).map_err(|e| classify(&self.path, e))
    }

    // --- repair ---

    /// Forgets every HIT (all generations) of one item, for good: they are remembered as
    /// forgotten, so that refresh never adopts them again by their annotation and the item's
    /// next HIT gets a later generation. Fails with [`StateError::NotFound`] when the item has
    /// none.
    pub fn remove_item(&mut self, campaign: &str, item_key: &str) -> Result<usize, StateError> {
        let target = self.target;
        let path = self.path.clone();
        let conn = self.writable()?;
        write_tx(conn, &path, |tx| {
            forget(
                tx,
                "target = ?1 AND campaign = ?2 AND item_key = ?3",
                &[target.as_str(), campaign, item_key],
            )?;
            let removed = tx.execute(
                "DELETE FROM hits WHERE target = ?1 AND campaign = ?2 AND item_key = ?3",
                params![target.as_str(), campaign, item_key],
            )?;
            if removed == 0 {
                return Err(TxError::NotFound(format!(
                    "item `{item_key}` of campaign `{campaign}`"
                )));
            }
            bump_serial(tx, target)?;
            Ok(removed)
        })
    }

    /// Forgets one HIT, for good (as [`StateStore::remove_item`]). Fails with
    /// [`StateError::NotFound`] when state does not know it.
    pub fn remove_hit(&mut self, hit_id: &str) -> Result<(), StateError> {
        let target = self.target;
        let path = self.path.clone();
        let conn = self.writable()?;
        write_tx(conn, &path, |tx| {
            forget(
                tx,
                "target = ?1 AND hit_id = ?2",
                &[target.as_str(), hit_id],
            )?;
            let removed = tx.execute(
                "DELETE FROM hits WHERE target = ?1 AND hit_id = ?2",
                params![target.as_str(), hit_id],
            )?;
            if removed == 0 {
                return Err(TxError::NotFound(format!("HIT `{hit_id}`")));
            }
            bump_serial(tx, target)?;
            Ok(())
        })
    }

    /// Renames a campaign (`from_key`/`to_key` `None`) or one item in state, and remembers the
    /// rename so that HITs whose annotation carries the old name are adopted under the new one.
    /// Fails with [`StateError::NotFound`] when state has no HIT under the old name, and with
    /// [`StateError::Refused`] when the new name already has HITs.
    pub fn rename(&mut self, rename: &Rename) -> Result<usize, StateError> {
        let target = self.target;
        let path = self.path.clone();
        let conn = self.writable()?;
        write_tx(conn, &path, |tx| {
            let (from, to) = match (&rename.from_key, &rename.to_key) {
                (Some(f), Some(t)) => (
                    (
                        "campaign = ?2 AND item_key = ?3",
                        vec![rename.from_campaign.as_str(), f.as_str()],
                    ),
                    (
                        "campaign = ?2 AND item_key = ?3",
                        vec![rename.to_campaign.as_str(), t.as_str()],
                    ),
                ),
                _ => (
                    ("campaign = ?2", vec![rename.from_campaign.as_str()]),
                    ("campaign = ?2", vec![rename.to_campaign.as_str()]),
                ),
            };
            let count = |(condition, args): &(&str, Vec<&str>)| -> Result<i64, rusqlite::Error> {
                let mut all = vec![target.as_str()];
                all.extend(args.iter().copied());
                tx.query_row(
                    &format!("SELECT count(*) FROM hits WHERE target = ?1 AND {condition}"),
                    rusqlite::params_from_iter(all),
                    |r| r.get(0),
                )
            };
            if count(&from)? == 0 {
                return Err(TxError::NotFound(describe(
                    &rename.from_campaign,
                    &rename.from_key,
                )));
            }
            if count(&to)? > 0 {
                return Err(TxError::Refused(format!(
                    "state already has HITs for {}; `turkform state rm` them first if they are to be forgotten",
                    describe(&rename.to_campaign, &rename.to_key)
                )));
            }
            let moved = match (&rename.from_key, &rename.to_key) {
                (Some(f), Some(t)) => {
                    let mut moved = 0;
                    for table in ["forgotten_hits", "assignments", "hits"] {
                        moved = tx.execute(
                            &format!(
                                "UPDATE {table} SET campaign = ?4, item_key = ?5
                                 WHERE target = ?1 AND campaign = ?2 AND item_key = ?3"
                            ),
                            params![
                                target.as_str(),
                                rename.from_campaign,
                                f,
                                rename.to_campaign,
                                t
                            ],
                        )?;
                    }
                    moved
                }
                _ => {
                    let mut moved = 0;
                    for table in ["forgotten_hits", "assignments", "hits"] {
                        moved = tx.execute(
                            &format!(
                                "UPDATE {table} SET campaign = ?3 WHERE target = ?1 AND campaign = ?2"
                            ),
                            params![target.as_str(), rename.from_campaign, rename.to_campaign],
                        )?;
                    }
                    moved
                }
            };
            tx.execute(
                "INSERT INTO renames (target, from_campaign, from_key, to_campaign, to_key)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    target.as_str(),
                    rename.from_campaign,
                    rename.from_key,
                    rename.to_campaign,
                    rename.to_key
                ],
            )?;
            // Orphans carry the old name; the next refresh lists them again, renamed.
            tx.execute("DELETE FROM orphans WHERE target = ?1", [target.as_str()])?;
            bump_serial(tx, target)?;
            Ok(moved)
        })
    }

    /// Runs a read. `None` when there is no file yet. A read-only store reading the file
    /// directly checks afterwards that no writer touched it meanwhile, and otherwise reopens
    /// through SQLite's shared-memory protocol and reads again.
    fn read<T>(
        &self,
        f: impl Fn(&Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<Option<T>, StateError> {
        let ReadPath::Direct(stamp) = self.read_path.get() else {
            let conn = self.conn.borrow();
            return match conn.as_ref() {
                None => Ok(None),
                Some(c) => f(c).map(Some).map_err(|e| classify(&self.path, e)),
            };
        };
        {
            let conn = self.conn.borrow();
            let Some(c) = conn.as_ref() else {
                return Ok(None);
            };
            let result = f(c);
            if FileStamp::of(&self.path) == Some(stamp) {
                return result.map(Some).map_err(|e| classify(&self.path, e));
            }
        }
        tracing::debug!(path = %self.path.display(), "state changed during a direct read; reading through SQLite");
        let conn = open_shared_read_only(&self.path)?;
        let result = f(&conn).map(Some).map_err(|e| classify(&self.path, e));
        *self.conn.borrow_mut() = Some(conn);
        self.read_path.set(ReadPath::Shared);
        result
    }

    fn writable(&mut self) -> Result<&mut Connection, StateError> {
        match (self.conn.get_mut(), self.mode) {
            (Some(conn), OpenMode::ReadWrite) => Ok(conn),
            _ => Err(StateError::ReadOnly {
                path: self.path.clone(),
                detail: "the state was opened read-only".to_owned(),
            }),
        }
    }
}

/// Errors inside a write transaction: SQLite's, or a refusal decided by the store.
enum TxError {
    Sqlite(rusqlite::Error),
    NotFound(String),
    Refused(String),
}

/// `campaign `c`` or `item `k` of campaign `c``, as the errors name them.
fn describe(campaign: &str, key: &Option<String>) -> String {
    match key {
        Some(k) => format!("item `{k}` of campaign `{campaign}`"),
        None => format!("campaign `{campaign}`"),
    }
}

impl From<rusqlite::Error> for TxError {
    fn from(e: rusqlite::Error) -> Self {
        TxError::Sqlite(e)
    }
}

/// Runs `f` in an IMMEDIATE transaction (the write lock is taken up front, so two writers
/// queue instead of failing with SQLITE_BUSY on upgrade) and commits only if it succeeds.
fn write_tx<T>(
    conn: &mut Connection,
    path: &Path,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, TxError>,
) -> Result<T, StateError> {
    let run = || -> Result<T, TxError> {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    };
    run().map_err(|e| match e {
        TxError::Sqlite(e) => classify(path, e),
        TxError::NotFound(what) => StateError::NotFound { what },
        TxError::Refused(why) => StateError::Refused { why },
    })
}

/// Maps SQLite's complaints about the file to the variants the user can act on.
pub(crate) fn classify(path: &Path, e: rusqlite::Error) -> StateError {
    use rusqlite::ErrorCode;
    match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => StateError::Corrupt {
                path: path.to_path_buf(),
                detail: e.to_string(),
            },
            ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied => {
                StateError::ReadOnly {
                    path: path.to_path_buf(),
                    detail: e.to_string(),
                }
            }
            _ => StateError::Sqlite(e),
        },
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..) => StateError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("unreadable value: {e}"),
        },
        _ => StateError::Sqlite(e),
    }
}

/// Builds a new state under a temporary name and links it into place, so that `path` never
/// holds a half-made file, and a concurrent creator's file is never replaced.
fn create_new(path: &Path) -> Result<(), StateError> {
    let dir = parent_dir(path);
    std::fs::create_dir_all(&dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            StateError::ReadOnly {
                path: path.to_path_buf(),
                detail: format!("cannot create directory `{}`: {e}", dir.display()),
            }
        }
        _ => StateError::io(&dir, e),
    })?;
    let lineage = hex::encode(rand::random::<[u8; 16]>());
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(
        ".{name}.creating-{}-{}",
        std::process::id(),
        hex::encode(rand::random::<[u8; 4]>())
    ));
    let cleanup = |tmp: &Path| {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = tmp.as_os_str().to_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
    };
    let build = || -> Result<(), rusqlite::Error> {
        let mut conn = Connection::open_with_flags(
            &tmp,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        schema::create(&mut conn, &lineage, UnixTime::now().0)?;
        // Closing the last connection checkpoints the WAL into the file and removes it.
        conn.close().map_err(|(_, e)| e)
    };
    if let Err(e) = build() {
        cleanup(&tmp);
        return Err(classify(path, e));
    }
    let linked = std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .and_then(|()| std::fs::hard_link(&tmp, path))
        .or_else(|e| match e.kind() {
            // Some filesystems (FAT, some network mounts) have no hard links: fall back to a
            // rename, which could only replace a file created in the same instant.
            std::io::ErrorKind::Unsupported | std::io::ErrorKind::Other if !path.exists() => {
                std::fs::rename(&tmp, path)
            }
            _ => Err(e),
        });
    cleanup(&tmp);
    match linked {
        Ok(()) => {
            sync_dir(&dir);
            tracing::debug!(path = %path.display(), %lineage, "created a new state file");
            Ok(())
        }
        // Someone else created it first: theirs is as good as ours.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(match e.kind() {
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                StateError::ReadOnly {
                    path: path.to_path_buf(),
                    detail: e.to_string(),
                }
            }
            _ => StateError::io(path, e),
        }),
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Makes a new directory entry durable. Best effort: not every platform can open directories.
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Whether this process may write the state file and create files (WAL, lock) next to it,
/// found out without changing the state file.
fn check_writable(path: &Path) -> Result<(), StateError> {
    let read_only = |detail: String| StateError::ReadOnly {
        path: path.to_path_buf(),
        detail,
    };
    if let Err(e) = OpenOptions::new().write(true).open(path) {
        return Err(match e.kind() {
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                read_only(format!("the file is not writable: {e}"))
            }
            _ => StateError::io(path, e),
        });
    }
    let dir = parent_dir(path);
    let probe = dir.join(format!(
        ".{}.probe-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    match OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(match e.kind() {
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                read_only(format!(
                    "its directory `{}` is not writable (SQLite needs to create its journal \
                     there): {e}",
                    dir.display()
                ))
            }
            _ => StateError::io(&dir, e),
        }),
    }
}

fn open_existing(path: &Path, target: Target, mode: OpenMode) -> Result<StateStore, StateError> {
    schema::check_header(path)?;
    match mode {
        OpenMode::ReadOnly => open_read_only(path, target),
        OpenMode::ReadWrite => open_read_write(path, target),
    }
}

fn open_read_write(path: &Path, target: Target) -> Result<StateStore, StateError> {
    check_writable(path)?;
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| classify(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| classify(path, e))?;
    let Identity::Turkform { version } = schema::identify(&conn, path)?;
    if version < SCHEMA_VERSION {
        backup(&conn, path, version)?;
    }
    // Only now, with the file known to be ours and current enough, may we write to it.
    let journal: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| classify(path, e))?;
    if !journal.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), %journal, "state file is not in WAL mode");
    }
    // NORMAL would let a power loss drop a committed intent: the journal's promise is FULL.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| classify(path, e))?;
    if version < SCHEMA_VERSION {
        let was = schema::migrate(&mut conn, version).map_err(|e| classify(path, e))?;
        tracing::info!(
            path = %path.display(),
            from = was,
            to = SCHEMA_VERSION,
            "migrated the state schema"
        );
    }
    let lineage = schema::read_lineage(&conn, path)?;
    Ok(StateStore {
        path: path.to_path_buf(),
        target,
        mode: OpenMode::ReadWrite,
        conn: RefCell::new(Some(conn)),
        read_path: Cell::new(ReadPath::Shared),
        lineage,
        version: SCHEMA_VERSION,
    })
}

/// How a read-only store reads the file.
///
/// Reading a WAL-mode database the ordinary way needs its `-wal` and `-shm` files: SQLite
/// creates them if missing (and, read-only, cannot remove them after), and fails outright in a
/// read-only directory. When no `-wal` exists no writer is active and everything is in the main
/// file, so a read-only store reads that file directly (`immutable=1`: no locks, no side files),
/// and after every read checks that the file is still exactly as it was. A writer can only
/// change the main file after creating a `-wal` (and a checkpoint rewrites the file), so an
/// unchanged stamp means the read saw one consistent state; a changed one means the read is
/// redone through SQLite's normal shared-memory protocol, which is used from then on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadPath {
    Shared,
    Direct(FileStamp),
}

/// What must not change while a direct read runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

impl FileStamp {
    /// `None` when a `-wal` or `-journal` exists (a writer is active, or one crashed and left
    /// changes that only SQLite's normal path will see).
    fn of(path: &Path) -> Option<FileStamp> {
        for suffix in ["-wal", "-journal"] {
            let mut side = path.as_os_str().to_os_string();
            side.push(suffix);
            if std::fs::symlink_metadata(PathBuf::from(side)).is_ok() {
                return None;
            }
        }
        let meta = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Some(FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        })
    }
}

fn open_read_only(path: &Path, target: Target) -> Result<StateStore, StateError> {
    let identify = |conn: &Connection| -> Result<(u32, String), StateError> {
        let Identity::Turkform { version } = schema::identify(conn, path)?;
        Ok((version, schema::read_lineage(conn, path)?))
    };
    let store =
        |conn: Connection, read_path: ReadPath, (version, lineage): (u32, String)| StateStore {
            path: path.to_path_buf(),
            target,
            mode: OpenMode::ReadOnly,
            conn: RefCell::new(Some(conn)),
            read_path: Cell::new(read_path),
            lineage,
            version,
        };
    if let Some(stamp) = FileStamp::of(path) {
        let conn = open_direct(path)?;
        let identified = identify(&conn);
        if FileStamp::of(path) == Some(stamp) {
            return Ok(store(conn, ReadPath::Direct(stamp), identified?));
        }
    }
    let conn = open_shared_read_only(path)?;
    let identified = identify(&conn)?;
    Ok(store(conn, ReadPath::Shared, identified))
}

/// A read-only connection through SQLite's normal locking and WAL protocol.
fn open_shared_read_only(path: &Path) -> Result<Connection, StateError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| classify(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| classify(path, e))?;
    Ok(conn)
}

/// A read-only connection that reads the main file only (see [`ReadPath`]).
fn open_direct(path: &Path) -> Result<Connection, StateError> {
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    Connection::open_with_flags(
        &uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| classify(path, e))
}

/// Copies the file as it is before migrating it (`<file>.bak-v<N>`), through SQLite so that
/// the copy includes anything still in the WAL. An existing backup is never overwritten.
fn backup(conn: &Connection, path: &Path, version: u32) -> Result<PathBuf, StateError> {
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".bak-v{version}"));
    let mut dest = PathBuf::from(name);
    if dest.exists() {
        let mut name = dest.into_os_string();
        name.push(format!("-{}", UnixTime::now().0));
        dest = PathBuf::from(name);
    }
    let Some(dest_str) = dest.to_str() else {
        return Err(StateError::io(
            &dest,
            std::io::Error::other("backup path is not valid UTF-8"),
        ));
    };
    conn.execute("VACUUM INTO ?1", [dest_str])
        .map_err(|e| classify(path, e))?;
    tracing::info!(backup = %dest.display(), "backed up the state before migrating it");
    Ok(dest)
}

fn read_partition(
    conn: &Connection,
    target: Target,
) -> Result<(u64, Option<UnixTime>), rusqlite::Error> {
    let row = conn
        .query_row(
            "SELECT serial, refreshed_at FROM partitions WHERE target = ?1",
            [target.as_str()],
            |r| Ok((r.get::<_, u64>(0)?, r.get::<_, Option<i64>>(1)?)),
        )
        .optional()?;
    Ok(row
        .map(|(s, at)| (s, at.map(UnixTime)))
        .unwrap_or((0, None)))
}

fn bump_serial(tx: &Transaction<'_>, target: Target) -> Result<(), rusqlite::Error> {
    tx.prepare_cached(
        "INSERT INTO partitions (target, serial) VALUES (?1, 1)
         ON CONFLICT (target) DO UPDATE SET serial = serial + 1",
    )?
    .execute([target.as_str()])?;
    Ok(())
}

fn load(
    conn: &Connection,
    target: Target,
    lineage: &str,
) -> Result<RecordedState, rusqlite::Error> {
    // One read transaction: every table from the same snapshot even while a writer commits.
    let tx = conn.unchecked_transaction()?;
    let t = target.as_str();
    let (serial, refreshed_at) = read_partition(&tx, target)?;

    let qualification_types = tx
        .prepare(
            "SELECT name, qualification_type_id, definition_hash FROM qualification_types
             WHERE target = ?1 ORDER BY name",
        )?
        .query_map([t], |r| {
            Ok(RecordedQualificationType {
                name: r.get(0)?,
                qualification_type_id: r.get(1)?,
                definition_hash: r.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;

    let hit_types = tx
        .prepare(
            "SELECT definition_hash, hit_type_id FROM hit_types
             WHERE target = ?1 ORDER BY definition_hash",
        )?
        .query_map([t], |r| {
            Ok(RecordedHitType {
                definition_hash: r.get(0)?,
                hit_type_id: r.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;

    // Counting first lets the vector be allocated once, instead of growing (and briefly
    // holding two copies) through 100k rows.
    let count: i64 = tx.query_row("SELECT count(*) FROM hits WHERE target = ?1", [t], |r| {
        r.get(0)
    })?;
    let mut hits = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut stmt = tx.prepare(
        "SELECT campaign, item_key, generation, hit_id, hit_type_id, hit_type_hash, content_hash,
                max_assignments, committed_cost_cents, created_at, expiration, status,
                assignments_available, assignments_pending, assignments_completed, expired_by,
                paused_remaining_secs, drift
         FROM hits WHERE target = ?1 ORDER BY campaign, item_key, generation, hit_id",
    )?;
    let mut rows = stmt.query([t])?;
    while let Some(r) = rows.next()? {
        hits.push(hit_from_row(r)?);
    }
    drop(rows);
    drop(stmt);

    let orphans = tx
        .prepare(
            "SELECT hit_id, hit_type_id, annotation, max_assignments, created_at, expiration,
                    status
             FROM orphans WHERE target = ?1 ORDER BY hit_id",
        )?
        .query_map([t], |r| {
            let annotation: String = r.get(2)?;
            Ok(OrphanHit {
                hit_id: r.get(0)?,
                hit_type_id: r.get(1)?,
                annotation: serde_json::from_str::<Annotation>(&annotation)
                    .map_err(|e| bad_text(2, format!("orphan annotation: {e}")))?,
                max_assignments: r.get(3)?,
                created_at: UnixTime(r.get(4)?),
                expiration: UnixTime(r.get(5)?),
                status: status_from(r, 6)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let (forgotten, renames) = load_forgotten_and_renames(&tx, t)?;
    tx.finish()?;

    Ok(RecordedState {
        target: Some(target),
        lineage: lineage.to_owned(),
        serial,
        qualification_types,
        hit_types,
        hits,
        orphans,
        refreshed_at,
        forgotten,
        renames,
        assignments: Vec::new(),
        bonuses: Vec::new(),
    })
}

fn load_forgotten_and_renames(
    tx: &Connection,
    t: &str,
) -> Result<(Vec<ForgottenHit>, Vec<Rename>), rusqlite::Error> {
    // A state older than schema 3 opened read-only is read as it is, never migrated.
    let has_tables: i64 = tx.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'forgotten_hits'",
        [],
        |r| r.get(0),
    )?;
    if has_tables == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    let forgotten = tx
        .prepare(
            "SELECT campaign, item_key, generation, hit_id FROM forgotten_hits
             WHERE target = ?1 ORDER BY campaign, item_key, generation, hit_id",
        )?
        .query_map([t], |r| {
            Ok(ForgottenHit {
                campaign: r.get(0)?,
                item_key: r.get(1)?,
                generation: r.get(2)?,
                hit_id: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let renames = tx
        .prepare(
            "SELECT from_campaign, from_key, to_campaign, to_key FROM renames
             WHERE target = ?1 ORDER BY id",
        )?
        .query_map([t], |r| {
            Ok(Rename {
                from_campaign: r.get(0)?,
                from_key: r.get(1)?,
                to_campaign: r.get(2)?,
                to_key: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((forgotten, renames))
}

/// Remembers the HITs about to be removed from `hits` (see [`StateStore::remove_item`]).
fn forget(tx: &Transaction<'_>, condition: &str, args: &[&str]) -> Result<(), rusqlite::Error> {
    let sql = format!(
        "INSERT OR REPLACE INTO forgotten_hits (target, hit_id, campaign, item_key, generation)
         SELECT target, hit_id, campaign, item_key, generation FROM hits WHERE {condition}"
    );
    tx.execute(&sql, rusqlite::params_from_iter(args))?;
    Ok(())
}

fn bad_text(column: usize, detail: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, Type::Text, detail.into())
}

fn status_from(r: &Row<'_>, column: usize) -> Result<HitStatus, rusqlite::Error> {
    let raw = r.get_ref(column)?.as_str()?;
    HitStatus::parse(raw).ok_or_else(|| bad_text(column, format!("unknown HIT status `{raw}`")))
}

fn expired_by_str(e: ExpiredBy) -> &'static str {
    match e {
        ExpiredBy::Pause => "pause",
        ExpiredBy::Finish => "finish",
        ExpiredBy::Removal => "removal",
        ExpiredBy::Replace => "replace",
    }
}

fn expired_by_from(raw: &str) -> Option<ExpiredBy> {
    Some(match raw {
        "pause" => ExpiredBy::Pause,
        "finish" => ExpiredBy::Finish,
        "removal" => ExpiredBy::Removal,
        "replace" => ExpiredBy::Replace,
        _ => return None,
    })
}

fn hit_from_row(r: &Row<'_>) -> Result<RecordedHit, rusqlite::Error> {
    let expired_by = match r.get_ref(15)?.as_str_or_null()? {
        None => None,
        Some(raw) => Some(
            expired_by_from(raw)
                .ok_or_else(|| bad_text(15, format!("unknown expired_by `{raw}`")))?,
        ),
    };
    let drift: Vec<Drift> = match r.get_ref(17)?.as_str_or_null()? {
        None => Vec::new(),
        Some(json) => {
            serde_json::from_str(json).map_err(|e| bad_text(17, format!("drift: {e}")))?
        }
    };
    Ok(RecordedHit {
        campaign: r.get(0)?,
        item_key: r.get(1)?,
        generation: r.get(2)?,
        hit_id: r.get(3)?,
        hit_type_id: r.get(4)?,
        hit_type_hash: r.get(5)?,
        content_hash: r.get(6)?,
        max_assignments: r.get(7)?,
        committed_cost: Money::from_cents(r.get(8)?),
        created_at: UnixTime(r.get(9)?),
        expiration: UnixTime(r.get(10)?),
        status: status_from(r, 11)?,
        assignments_available: r.get(12)?,
        assignments_pending: r.get(13)?,
        assignments_completed: r.get(14)?,
        expired_by,
        paused_remaining_secs: r.get(16)?,
        drift,
    })
}

fn commit_batch(tx: &Transaction<'_>, target: Target, batch: &Batch) -> Result<(), TxError> {
    let t = target.as_str();
    let now = UnixTime::now().0;
    {
        // A done intent's payload existed only to resend the call: drop it so the journal
        // does not grow with every question's HTML. Failures keep theirs for diagnosis.
        let mut finish = tx.prepare_cached(
            "UPDATE intents SET outcome = ?1, message = ?2, finished_at = ?3,
                    payload = CASE WHEN ?1 = 'done' THEN 'null' ELSE payload END
             WHERE id = ?4 AND target = ?5",
        )?;
        for (id, outcome) in &batch.completed {
            let (name, message) = outcome.parts();
            if finish.execute(params![name, message, now, id.0, t])? == 0 {
                return Err(TxError::NotFound(format!("intent {}", id.0)));
            }
        }
    }
    if let Some(orphans) = &batch.replace_orphans {
        tx.execute("DELETE FROM orphans WHERE target = ?1", [t])?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO orphans (target, hit_id, hit_type_id, annotation, max_assignments,
                                  created_at, expiration, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (target, hit_id) DO UPDATE SET
                hit_type_id = excluded.hit_type_id, annotation = excluded.annotation,
                max_assignments = excluded.max_assignments, created_at = excluded.created_at,
                expiration = excluded.expiration, status = excluded.status",
        )?;
        for o in orphans {
            let annotation = serde_json::to_string(&o.annotation)
                .map_err(|e| TxError::Sqlite(rusqlite::Error::ToSqlConversionFailure(e.into())))?;
            insert.execute(params![
                t,
                o.hit_id,
                o.hit_type_id,
                annotation,
                o.max_assignments,
                o.created_at.0,
                o.expiration.0,
                o.status.api_name(),
            ])?;
        }
    }
    let mut remove_orphan =
        tx.prepare_cached("DELETE FROM orphans WHERE target = ?1 AND hit_id = ?2")?;
    for hit_id in &batch.remove_orphans {
        remove_orphan.execute(params![t, hit_id])?;
    }
    {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO qualification_types (target, name, qualification_type_id, definition_hash)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (target, name) DO UPDATE SET
                qualification_type_id = excluded.qualification_type_id,
                definition_hash = excluded.definition_hash",
        )?;
        for q in &batch.upsert_qualification_types {
            upsert.execute(params![
                t,
                q.name,
                q.qualification_type_id,
                q.definition_hash
            ])?;
        }
    }
    {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO hit_types (target, definition_hash, hit_type_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (target, definition_hash) DO UPDATE SET
                hit_type_id = excluded.hit_type_id",
        )?;
        for h in &batch.upsert_hit_types {
            upsert.execute(params![t, h.definition_hash, h.hit_type_id])?;
        }
    }
    {
        // Keyed by hit id; the row is replaced whole, including the item columns of the
        // clustered key (which a HIT never changes in practice, but state must not assume).
        let mut delete = tx.prepare_cached("DELETE FROM hits WHERE target = ?1 AND hit_id = ?2")?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO hits (target, campaign, item_key, generation, hit_id, hit_type_id,
                               hit_type_hash, content_hash, max_assignments, committed_cost_cents,
                               created_at, expiration, status, assignments_available,
                               assignments_pending, assignments_completed, expired_by,
                               paused_remaining_secs, drift, input_row)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                     ?18, ?19, ?20)",
        )?;
        for h in &batch.upsert_hits {
            let drift = if h.drift.is_empty() {
                None
            } else {
                Some(serde_json::to_string(&h.drift).map_err(|e| {
                    TxError::Sqlite(rusqlite::Error::ToSqlConversionFailure(e.into()))
                })?)
            };
            // The posted row is not part of the record the planner sees: carry it over.
            let input_row = crate::assignments::input_row_of(tx, target, &h.hit_id)?;
            delete.execute(params![t, h.hit_id])?;
            insert.execute(params![
                t,
                h.campaign,
                h.item_key,
                h.generation,
                h.hit_id,
                h.hit_type_id,
                h.hit_type_hash,
                h.content_hash,
                h.max_assignments,
                h.committed_cost.cents(),
                h.created_at.0,
                h.expiration.0,
                h.status.api_name(),
                h.assignments_available,
                h.assignments_pending,
                h.assignments_completed,
                h.expired_by.map(expired_by_str),
                h.paused_remaining_secs,
                drift,
                input_row,
            ])?;
            // A HIT state knows is no longer an orphan.
            remove_orphan.execute(params![t, h.hit_id])?;
        }
    }
    crate::assignments::write(tx, target, batch)?;
    if let Some(at) = batch.refreshed_at {
        tx.execute(
            "INSERT INTO partitions (target, serial, refreshed_at) VALUES (?1, 0, ?2)
             ON CONFLICT (target) DO UPDATE SET refreshed_at = excluded.refreshed_at",
            params![t, at.0],
        )?;
    }
    bump_serial(tx, target)?;
    Ok(())
}

fn pending_intents(conn: &Connection, target: Target) -> Result<Vec<Intent>, rusqlite::Error> {
    let mut stmt = conn.prepare(
        "SELECT id, kind, campaign, item_key, generation, hit_id, token, payload, created_at,
                attempts
         FROM intents WHERE target = ?1 AND outcome IS NULL ORDER BY id",
    )?;
    stmt.query_map([target.as_str()], |r| {
        let kind_raw = r.get_ref(1)?.as_str()?;
        let kind = IntentKind::parse(kind_raw)
            .ok_or_else(|| bad_text(1, format!("unknown intent kind `{kind_raw}`")))?;
        let payload_raw = r.get_ref(7)?.as_str()?;
        let payload = serde_json::from_str(payload_raw)
            .map_err(|e| bad_text(7, format!("intent payload: {e}")))?;
        Ok(Intent {
            id: IntentId(r.get(0)?),
            kind,
            campaign: r.get(2)?,
            item_key: r.get(3)?,
            generation: r.get(4)?,
            hit_id: r.get(5)?,
            token: r.get(6)?,
            payload,
            created_at: UnixTime(r.get(8)?),
            attempts: r.get(9)?,
        })
    })?
    .collect()
}

fn runs(
    conn: &Connection,
    target: Target,
    limit: usize,
) -> Result<Vec<RunRecord>, rusqlite::Error> {
    let mut stmt = conn.prepare(
        "SELECT id, command, user, host, pid, started_at, finished_at, result
         FROM runs WHERE target = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    stmt.query_map(
        params![target.as_str(), i64::try_from(limit).unwrap_or(i64::MAX)],
        |r| {
            Ok(RunRecord {
                id: r.get(0)?,
                command: r.get(1)?,
                user: r.get(2)?,
                host: r.get(3)?,
                pid: r.get(4)?,
                started_at: UnixTime(r.get(5)?),
                finished_at: r.get::<_, Option<i64>>(6)?.map(UnixTime),
                result: r.get(7)?,
            })
        },
    )?
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_can_move_to_another_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<StateStore>();
        assert_send::<StateLock>();
    }

    #[test]
    fn direct_reads_use_a_percent_encoded_uri() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odd name?#%.db");
        drop(StateStore::open(&path, Target::Sim, OpenMode::ReadWrite).unwrap());
        let store = StateStore::open(&path, Target::Sim, OpenMode::ReadOnly).unwrap();
        assert!(matches!(store.read_path.get(), ReadPath::Direct(_)));
        assert_eq!(store.load().unwrap().serial, 0);
    }
}
