//! [`StateStore`]: opening a state (a SQLite file or a PostgreSQL schema), reading the
//! [`RecordedState`] of one target, and every change as one transaction that bumps that
//! target's serial.
//!
//! Every query below is written once in portable SQL and runs on both backends through
//! `crate::db`; only opening, creating and migrating differ (in `crate::sqlite` and
//! [`crate::pg`]).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Weak;
use std::time::Duration;

use turkform_model::{
    Annotation, AssignmentStatus, Drift, ExpiredBy, ForgottenHit, HitStatus, Money, OrphanHit,
    PostedHit, RecordedAssignment, RecordedBonus, RecordedHit, RecordedHitType,
    RecordedQualificationType, RecordedState, Rename, Target, UnixTime,
};

use crate::StateError;
use crate::assignments::{
    AssignmentCount, AssignmentFilter, AssignmentSummary, ExportRow, WorkerDecisions,
};
use crate::db::{Db, DbError, Param, Row, Tx};
use crate::journal::{
    AccountBalance, Batch, Intent, IntentId, IntentKind, NewIntent, RunId, RunRecord,
};
use crate::lock::{self, LockInfo, StateLock};
use crate::pg::PgLocation;
use crate::sqlite::{self, ReadPath};

/// How a command means to use the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Never writes: no creation, no migration, no journal-mode change. For `plan`, `status`,
    /// `state show`.
    ReadOnly,
    /// Creates the state if missing, migrates an older schema, and allows changes.
    ReadWrite,
}

/// Which engine holds the state.
#[derive(Clone, Debug)]
pub(crate) enum Backend {
    Sqlite,
    Pg(PgLocation),
}

/// The state, open for one target. One connection: `Send` but not `Sync`.
pub struct StateStore {
    /// The file, or for PostgreSQL the URL without its password (so it can be shown).
    pub(crate) path: PathBuf,
    pub(crate) target: Target,
    pub(crate) mode: OpenMode,
    pub(crate) backend: Backend,
    /// `None` only for a read-only open of a state that does not exist yet (an empty state).
    /// In a cell because reads take `&self` and a read-only SQLite store may have to reopen its
    /// connection mid-read (see [`ReadPath`]).
    pub(crate) conn: RefCell<Option<Db>>,
    /// How a read-only SQLite store reads; always [`ReadPath::Shared`] otherwise.
    pub(crate) read_path: Cell<ReadPath>,
    pub(crate) lineage: String,
    /// The schema version of the state (lower than [`crate::SCHEMA_VERSION`] only when an
    /// older state was opened read-only, which never migrates).
    pub(crate) version: u32,
    /// The PostgreSQL apply lock taken through [`Self::lock`], while it is held: its session
    /// can end under a live run (a restart, `pg_terminate_backend`), and from then on another
    /// run may take the lock, so no write goes through once it has. Files need none: the
    /// kernel never takes a held flock away.
    pub(crate) lock_watch: RefCell<Weak<crate::pg::LockWatch>>,
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
    /// Opens the state at `path` for `target`: a SQLite file, or PostgreSQL when `path` is a
    /// `postgres://` or `postgresql://` URL (see [`crate::pg`]).
    ///
    /// Before anything can be written, the state is checked: for a file, SQLite's own
    /// `quick_check` through a read-only connection (which sees the WAL), then its `meta` table
    /// and schema version; for PostgreSQL, the schema's `meta` table. A corrupt, foreign or
    /// newer state is refused with its own [`StateError`] and left as it was.
    ///
    /// `ReadWrite` creates the state if missing, atomically (a file is built under a temporary
    /// name and linked into place; a PostgreSQL schema is created in one transaction). An
    /// older schema is migrated in one transaction (a file after a backup copy
    /// `<file>.bak-v<N>`). `ReadOnly` on a missing state returns an empty store (lineage `""`,
    /// serial 0) and creates nothing.
    pub fn open(path: &Path, target: Target, mode: OpenMode) -> Result<StateStore, StateError> {
        match path.to_str() {
            Some(text) if crate::pg::is_url(text) => {
                let location = PgLocation::parse(text)?;
                crate::pg_store::open(location, target, mode)
            }
            _ => sqlite::open(path, target, mode),
        }
    }

    pub fn target(&self) -> Target {
        self.target
    }

    /// The state file, or for PostgreSQL its URL without a password.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the state is, fit to show: a file path, or a URL without a password.
    pub fn location(&self) -> String {
        self.path.display().to_string()
    }

    /// Whether the state lives in PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Pg(_))
    }

    pub fn mode(&self) -> OpenMode {
        self.mode
    }

    /// The schema version of the open state.
    pub fn schema_version(&self) -> u32 {
        self.version
    }

    /// The random 32-hex id the state got at creation (`""` for a state that does not exist
    /// yet).
    pub fn lineage(&self) -> &str {
        &self.lineage
    }

    /// This target's serial: 0 until the first change, then bumped by every committing change.
    pub fn serial(&self) -> Result<u64, StateError> {
        let target = self.target;
        Ok(self
            .read(|tx| read_partition(tx, target))?
            .map_or(0, |(serial, _)| serial))
    }

    /// Everything recorded for this target: hits of all generations (ordered by campaign, item
    /// key, generation, hit id), types, orphans, from one consistent snapshot.
    pub fn load(&self) -> Result<RecordedState, StateError> {
        let loaded = self.read(|tx| load(tx, self.target, &self.lineage, self.version))?;
        Ok(loaded.unwrap_or_else(|| RecordedState {
            target: Some(self.target),
            lineage: String::new(),
            ..RecordedState::default()
        }))
    }

    /// The HITs of [`StateStore::load`] (all generations, in the same order) and when they
    /// were last refreshed, without the rest of the record: for readers that need the HITs'
    /// counters and costs but not the assignments `load` also decodes (`turkform report`
    /// streams those through [`StateStore::visit_assignment_summaries`]).
    pub fn load_hits(&self) -> Result<(Vec<RecordedHit>, Option<UnixTime>), StateError> {
        let target = self.target;
        Ok(self
            .read(|tx| {
                let (_, refreshed_at) = read_partition(tx, target)?;
                Ok((load_hits(tx, target)?, refreshed_at))
            })?
            .unwrap_or_default())
    }

    /// Records a bonus as pending, before its SendBonus call (the bonus's own write-ahead
    /// record: it outlives the intent journal, since a paid bonus must never be paid again).
    /// `false` when the row was already recorded (what was first recorded stays). Bumps the
    /// serial.
    pub fn record_bonus_pending(&mut self, bonus: &RecordedBonus) -> Result<bool, StateError> {
        let target = self.target;
        self.write(|tx| {
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
        self.write(|tx| {
            let changed = crate::bonuses::mark_paid(tx, target, campaign, identity, at)?;
            if changed {
                bump_serial(tx, target)?;
            }
            Ok(changed)
        })
    }

    /// Commits the changes to worker blocks, grants and notification settings in one
    /// transaction; bumps the serial once when any row changed. Returns whether one did.
    pub fn commit_workers(&mut self, batch: &crate::WorkersBatch) -> Result<bool, StateError> {
        if batch.is_empty() {
            return Ok(false);
        }
        let target = self.target;
        self.write(|tx| {
            let changed = crate::workers::commit(tx, target, batch)?;
            if changed {
                bump_serial(tx, target)?;
            }
            Ok(changed)
        })
    }

    // --- locking ---

    /// Takes the apply lock, waiting up to `timeout` (zero: try once). See [`crate::lock`]; on
    /// PostgreSQL a session-level advisory lock keyed by schema, lineage and target.
    pub fn lock(&self, command: &str, timeout: Duration) -> Result<StateLock, StateError> {
        match &self.backend {
            Backend::Sqlite => lock::acquire(
                &self.path,
                command,
                timeout,
                self.mode == OpenMode::ReadWrite,
            ),
            Backend::Pg(location) => {
                let has_schema = self.conn.borrow().is_some();
                let (held, info) = crate::pg::acquire(
                    location,
                    &self.lineage,
                    self.target,
                    command,
                    timeout,
                    has_schema,
                )?;
                *self.lock_watch.borrow_mut() = held.watch();
                Ok(StateLock::postgres(held, info, self.location()))
            }
        }
    }

    /// Removes the holder record (and the lock file if another host still holds it) left by a
    /// holder that vanished. Refuses with [`StateError::LockHeld`] when the holder is a live
    /// process on this host (or, on PostgreSQL, any live session). Returns the record removed.
    pub fn force_unlock(&self) -> Result<Option<LockInfo>, StateError> {
        match &self.backend {
            Backend::Sqlite => lock::force_unlock(&self.path),
            Backend::Pg(location) => {
                if self.conn.borrow().is_none() {
                    return Ok(None);
                }
                crate::pg::force_unlock(location, &self.lineage, self.target)
            }
        }
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
        self.begin_intents_and_bonuses(intents, &[])
    }

    /// [`Self::begin_intents`], recording `bonuses` as pending in the same transaction (what
    /// [`Self::record_bonus_pending`] does for one): a SendBonus intent and its bonus record
    /// are committed together before the call, so no crash leaves one without the other. A
    /// bonus already recorded keeps what it has.
    pub fn begin_intents_and_bonuses(
        &mut self,
        intents: &[NewIntent],
        bonuses: &[RecordedBonus],
    ) -> Result<Vec<IntentId>, StateError> {
        let target = self.target;
        self.write(|tx| {
            let t = target.as_str();
            for b in bonuses {
                crate::bonuses::record_pending(tx, target, b)?;
            }
            let mut ids = Vec::with_capacity(intents.len());
            for intent in intents {
                let existing = tx.query_opt(
                    "SELECT id FROM intents WHERE target = ?1 AND token = ?2 AND outcome IS NULL
                     ORDER BY id LIMIT 1",
                    &[&t, &intent.token],
                    |r| r.get::<i64>(0),
                )?;
                let id = match existing {
                    Some(id) => {
                        tx.execute(
                            "UPDATE intents SET attempts = attempts + 1 WHERE id = ?1",
                            &[&id],
                        )?;
                        id
                    }
                    None => {
                        let payload = intent.payload.to_string();
                        tx.query_opt(
                            "INSERT INTO intents (target, kind, campaign, item_key, generation,
                                                  hit_id, token, payload, created_at, attempts)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1)
                             RETURNING id",
                            &[
                                &t,
                                &intent.kind.as_str(),
                                &intent.campaign,
                                &intent.item_key,
                                &intent.generation,
                                &intent.hit_id,
                                &intent.token,
                                &payload,
                                &intent.created_at.0,
                            ],
                            |r| r.get::<i64>(0),
                        )?
                        .ok_or_else(|| DbError::Decode("INSERT returned no id".to_owned()))?
                    }
                };
                ids.push(IntentId(id));
            }
            if !intents.is_empty() || !bonuses.is_empty() {
                bump_serial(tx, target)?;
            }
            Ok(ids)
        })
    }

    /// Every intent of this target with no outcome yet, oldest first.
    pub fn pending_intents(&self) -> Result<Vec<Intent>, StateError> {
        Ok(self
            .read(|tx| pending_intents(tx, self.target))?
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
        self.write(|tx| commit_batch(tx, target, batch))
    }

    // --- run log ---

    /// Starts a run log entry for this process (host and pid are filled in here) at `now`,
    /// the caller's clock. The run log is history, not state: it does not bump the serial.
    pub fn begin_run(
        &mut self,
        command: &str,
        user: &str,
        now: UnixTime,
    ) -> Result<RunId, StateError> {
        let target = self.target;
        self.write(|tx| {
            let id = tx
                .query_opt(
                    r#"INSERT INTO runs (target, command, "user", host, pid, started_at)
                       VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id"#,
                    &[
                        &target.as_str(),
                        &command,
                        &user,
                        &lock::hostname(),
                        &std::process::id(),
                        &now.0,
                    ],
                    |r| r.get::<i64>(0),
                )?
                .ok_or_else(|| DbError::Decode("INSERT returned no id".to_owned()))?;
            Ok(RunId(id))
        })
    }

    /// Records how a run ended (`"ok"`, `"failed: 3 items"`, ...) at `now`.
    pub fn finish_run(
        &mut self,
        run: RunId,
        result: &str,
        now: UnixTime,
    ) -> Result<(), StateError> {
        let target = self.target;
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE runs SET finished_at = ?1, result = ?2 WHERE id = ?3 AND target = ?4",
                &[&now.0, &result, &run.0, &target.as_str()],
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
            .read(|tx| runs(tx, self.target, limit))?
            .unwrap_or_default())
    }

    // --- results ---

    /// Whether the state has the results tables (an older file opened read-only does not).
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
            .read(|tx| crate::assignments::account_balance(tx, target))?
            .flatten())
    }

    /// Every recorded assignment of one HIT.
    pub fn assignments_of_hit(&self, hit_id: &str) -> Result<Vec<RecordedAssignment>, StateError> {
        if !self.has_results() {
            return Ok(Vec::new());
        }
        let target = self.target;
        Ok(self
            .read(|tx| crate::assignments::of_hit(tx, target, hit_id))?
            .unwrap_or_default())
    }

    /// HITs holding a Submitted assignment whose auto-approval time is at or before `now`.
    pub fn hits_past_auto_approval(&self, now: UnixTime) -> Result<Vec<String>, StateError> {
        if !self.has_results() {
            return Ok(Vec::new());
        }
        let target = self.target;
        Ok(self
            .read(|tx| crate::assignments::hits_past_auto_approval(tx, target, now))?
            .unwrap_or_default())
    }

    /// Assignments per HIT and status.
    pub fn assignment_counts(&self) -> Result<Vec<AssignmentCount>, StateError> {
        if !self.has_results() {
            return Ok(Vec::new());
        }
        let target = self.target;
        Ok(self
            .read(|tx| crate::assignments::counts(tx, target))?
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
            .read(|tx| crate::assignments::worker_decisions(tx, target, now))?
            .unwrap_or_default())
    }

    /// The campaigns with at least one assignment, by name.
    pub fn campaigns_with_assignments(&self) -> Result<Vec<String>, StateError> {
        if !self.has_results() {
            return Ok(Vec::new());
        }
        let target = self.target;
        Ok(self
            .read(|tx| crate::assignments::campaigns(tx, target))?
            .unwrap_or_default())
    }

    /// `campaign`'s Input columns (first seen) and answer fields (sorted), for an export header.
    pub fn export_columns(&self, campaign: &str) -> Result<(Vec<String>, Vec<String>), StateError> {
        if !self.has_results() {
            return Ok((Vec::new(), Vec::new()));
        }
        let target = self.target;
        Ok(self
            .read(|tx| {
                Ok((
                    crate::assignments::input_columns(tx, target, campaign)?,
                    crate::assignments::answer_fields(tx, target, campaign)?,
                ))
            })?
            .unwrap_or_default())
    }

    /// Streams the assignments `filter` selects (see [`crate::assignments::ExportRow`]), one at
    /// a time, from one consistent snapshot; `each` returns `false` to stop.
    pub fn visit_assignments(
        &self,
        filter: &AssignmentFilter,
        each: impl FnMut(ExportRow) -> bool,
    ) -> Result<(), StateError> {
        self.visit(filter, true, each)
    }

    /// [`Self::visit_assignments`] without the raw answer XML (`answer_xml` is left empty):
    /// what exports, aggregation and reports read, which need only the parsed answers.
    pub fn visit_answers(
        &self,
        filter: &AssignmentFilter,
        each: impl FnMut(ExportRow) -> bool,
    ) -> Result<(), StateError> {
        self.visit(filter, false, each)
    }

    fn visit(
        &self,
        filter: &AssignmentFilter,
        answer_xml: bool,
        mut each: impl FnMut(ExportRow) -> bool,
    ) -> Result<(), StateError> {
        if !self.has_results() {
            return Ok(());
        }
        let target = self.target;
        let options = crate::assignments::VisitOptions {
            answer_xml,
            posted: self.has_posted(),
        };
        self.read_once(|tx| crate::assignments::visit(tx, target, filter, options, &mut each))?
            .unwrap_or(Ok(()))
            .map_err(|e| self.db_error(e))
    }

    /// Streams a light view of every recorded assignment of `campaigns` (all when empty; see
    /// [`AssignmentSummary`]), in the order of [`StateStore::visit_assignments`], from one
    /// consistent snapshot: only the columns a summary needs are read, with no join (so
    /// assignments of HITs `state rm` forgot come too, unlike the export), and an assignment's
    /// answers are decoded only when `wants_answers(campaign, item_key, status)` says so.
    /// `each` returns `false` to stop.
    pub fn visit_assignment_summaries(
        &self,
        campaigns: &[String],
        wants_answers: impl Fn(&str, &str, AssignmentStatus) -> bool,
        mut each: impl FnMut(AssignmentSummary) -> bool,
    ) -> Result<(), StateError> {
        if !self.has_results() {
            return Ok(());
        }
        let target = self.target;
        self.read_once(|tx| {
            crate::assignments::visit_summaries(tx, target, campaigns, &wants_answers, &mut each)
        })?
        .unwrap_or(Ok(()))
        .map_err(|e| self.db_error(e))
    }

    /// Whether the state records what each HIT showed workers (schema 7 on).
    fn has_posted(&self) -> bool {
        self.version >= 7
    }

    /// What MTurk reported each HIT shows workers, by hit id (empty for an older state read as
    /// it is).
    pub fn posted_hits(&self) -> Result<HashMap<String, PostedHit>, StateError> {
        if !self.has_posted() {
            return Ok(HashMap::new());
        }
        let target = self.target;
        Ok(self
            .read(|tx| crate::posted::all(tx, target))?
            .unwrap_or_default())
    }

    /// Each HIT group's size at the last refresh that listed it, by group id.
    pub fn hit_group_sizes(&self) -> Result<HashMap<String, u32>, StateError> {
        if !self.has_posted() {
            return Ok(HashMap::new());
        }
        let target = self.target;
        Ok(self
            .read(|tx| crate::posted::group_sizes(tx, target))?
            .unwrap_or_default())
    }

    // --- repair ---

    /// Forgets every HIT (all generations) of one item, for good: they are remembered as
    /// forgotten, so that refresh never adopts them again by their annotation and the item's
    /// next HIT gets a later generation. Fails with [`StateError::NotFound`] when the item has
    /// none.
    pub fn remove_item(&mut self, campaign: &str, item_key: &str) -> Result<usize, StateError> {
        let target = self.target;
        self.write(|tx| {
            forget(
                tx,
                "target = ?1 AND campaign = ?2 AND item_key = ?3",
                &[&target.as_str(), &campaign, &item_key],
            )?;
            let removed = tx.execute(
                "DELETE FROM hits WHERE target = ?1 AND campaign = ?2 AND item_key = ?3",
                &[&target.as_str(), &campaign, &item_key],
            )?;
            if removed == 0 {
                return Err(TxError::NotFound(format!(
                    "item `{item_key}` of campaign `{campaign}`"
                )));
            }
            bump_serial(tx, target)?;
            Ok(usize::try_from(removed).unwrap_or(usize::MAX))
        })
    }

    /// Forgets one HIT, for good (as [`StateStore::remove_item`]). Fails with
    /// [`StateError::NotFound`] when state does not know it.
    pub fn remove_hit(&mut self, hit_id: &str) -> Result<(), StateError> {
        let target = self.target;
        self.write(|tx| {
            forget(
                tx,
                "target = ?1 AND hit_id = ?2",
                &[&target.as_str(), &hit_id],
            )?;
            let removed = tx.execute(
                "DELETE FROM hits WHERE target = ?1 AND hit_id = ?2",
                &[&target.as_str(), &hit_id],
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
        self.write(|tx| {
            let t = target.as_str();
            let count = |tx: &mut Tx<'_>, campaign: &str, key: &Option<String>| {
                let n = match key {
                    Some(k) => tx.query_opt(
                        "SELECT count(*) FROM hits
                         WHERE target = ?1 AND campaign = ?2 AND item_key = ?3",
                        &[&t, &campaign, k],
                        |r| r.get::<i64>(0),
                    )?,
                    None => tx.query_opt(
                        "SELECT count(*) FROM hits WHERE target = ?1 AND campaign = ?2",
                        &[&t, &campaign],
                        |r| r.get::<i64>(0),
                    )?,
                };
                Ok::<i64, DbError>(n.unwrap_or(0))
            };
            if count(tx, &rename.from_campaign, &rename.from_key)? == 0 {
                return Err(TxError::NotFound(describe(
                    &rename.from_campaign,
                    &rename.from_key,
                )));
            }
            if count(tx, &rename.to_campaign, &rename.to_key)? > 0 {
                return Err(TxError::Refused(format!(
                    "state already has HITs for {}; `turkform state rm` them first if they are to be forgotten",
                    describe(&rename.to_campaign, &rename.to_key)
                )));
            }
            let mut moved = 0;
            match (&rename.from_key, &rename.to_key) {
                (Some(f), Some(to)) => {
                    // Bonuses are keyed by campaign and assignment, not by item: they stay.
                    for table in ["forgotten_hits", "assignments", "hits"] {
                        moved = tx.execute(
                            &format!(
                                "UPDATE {table} SET campaign = ?4, item_key = ?5
                                 WHERE target = ?1 AND campaign = ?2 AND item_key = ?3"
                            ),
                            &[&t, &rename.from_campaign, f, &rename.to_campaign, to],
                        )?;
                    }
                }
                _ => {
                    // The campaign's bonuses move with it: the planner finds a paid bonus by
                    // campaign and identity, and one left under the old name would be paid
                    // again under the new one.
                    for table in ["forgotten_hits", "assignments", "bonuses", "hits"] {
                        moved = tx.execute(
                            &format!(
                                "UPDATE {table} SET campaign = ?3 WHERE target = ?1 AND campaign = ?2"
                            ),
                            &[&t, &rename.from_campaign, &rename.to_campaign],
                        )?;
                    }
                }
            }
            tx.execute(
                "INSERT INTO renames (target, from_campaign, from_key, to_campaign, to_key)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                &[
                    &t,
                    &rename.from_campaign,
                    &rename.from_key,
                    &rename.to_campaign,
                    &rename.to_key,
                ],
            )?;
            // Orphans carry the old name; the next refresh lists them again, renamed.
            tx.execute("DELETE FROM orphans WHERE target = ?1", &[&t])?;
            bump_serial(tx, target)?;
            Ok(usize::try_from(moved).unwrap_or(usize::MAX))
        })
    }

    /// Runs a read in one snapshot. `None` when there is no state yet. A read-only SQLite
    /// store reading the file directly checks afterwards that no writer touched it meanwhile,
    /// and otherwise reopens through SQLite's shared-memory protocol and reads again.
    pub(crate) fn read<T>(
        &self,
        f: impl Fn(&mut Tx<'_>) -> Result<T, DbError>,
    ) -> Result<Option<T>, StateError> {
        let ReadPath::Direct(stamp) = self.read_path.get() else {
            let mut conn = self.conn.borrow_mut();
            return match conn.as_mut() {
                None => Ok(None),
                Some(db) => db.read(f).map(Some).map_err(|e| self.db_error(e)),
            };
        };
        {
            let mut conn = self.conn.borrow_mut();
            let Some(db) = conn.as_mut() else {
                return Ok(None);
            };
            let result = db.read(&f);
            if sqlite::FileStamp::of(&self.path) == Some(stamp) {
                return result.map(Some).map_err(|e| self.db_error(e));
            }
        }
        tracing::debug!(path = %self.path.display(), "state changed during a direct read; reading through SQLite");
        let conn = sqlite::open_shared_read_only(&self.path)?;
        let mut db = Db::Sqlite(conn);
        let result = db.read(&f).map(Some).map_err(|e| self.db_error(e));
        *self.conn.borrow_mut() = Some(db);
        self.read_path.set(ReadPath::Shared);
        result
    }

    /// Runs `f` once in one read snapshot, never redone: for streams, whose rows have left by
    /// the time a redo could be decided. `None` when there is no state yet. A read-only SQLite
    /// store that reads its file directly (and so might have to redo) streams through SQLite's
    /// WAL protocol instead, on a connection of its own. `f`'s own errors come back inside.
    pub(crate) fn read_once<T, E>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<Option<Result<T, E>>, StateError> {
        // Errors of the engine (opening the snapshot, committing it) are the store's; those of
        // `f` are passed through untouched.
        enum Failed<E> {
            Db(DbError),
            Inner(E),
        }
        impl<E> From<DbError> for Failed<E> {
            fn from(e: DbError) -> Self {
                Failed::Db(e)
            }
        }
        let run = |db: &mut Db| -> Result<Result<T, E>, StateError> {
            match db.read(|tx| f(tx).map_err(Failed::Inner)) {
                Ok(value) => Ok(Ok(value)),
                Err(Failed::Inner(e)) => Ok(Err(e)),
                Err(Failed::Db(e)) => Err(self.db_error(e)),
            }
        };
        if let ReadPath::Direct(_) = self.read_path.get() {
            if self.conn.borrow().is_none() {
                return Ok(None);
            }
            let mut shared = Db::Sqlite(sqlite::open_shared_read_only(&self.path)?);
            return run(&mut shared).map(Some);
        }
        let mut conn = self.conn.borrow_mut();
        match conn.as_mut() {
            None => Ok(None),
            Some(db) => run(db).map(Some),
        }
    }

    /// Runs `f` in one write transaction and commits only if it succeeds.
    pub(crate) fn write<T>(
        &mut self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, TxError>,
    ) -> Result<T, StateError> {
        if self
            .lock_watch
            .get_mut()
            .upgrade()
            .is_some_and(|watch| watch.lost())
        {
            return Err(StateError::LockLost {
                location: self.location(),
            });
        }
        let result = match (self.conn.get_mut(), self.mode) {
            (Some(db), OpenMode::ReadWrite) => db.write(f),
            _ => {
                return Err(StateError::ReadOnly {
                    path: self.path.clone(),
                    detail: "the state was opened read-only".to_owned(),
                });
            }
        };
        result.map_err(|e| match e {
            TxError::Db(e) => self.db_error(e),
            TxError::NotFound(what) => StateError::NotFound { what },
            TxError::Refused(why) => StateError::Refused { why },
            TxError::State(e) => e,
        })
    }

    pub(crate) fn db_error(&self, e: DbError) -> StateError {
        match (&self.backend, e) {
            (Backend::Pg(location), e) => location.error(e),
            (Backend::Sqlite, DbError::Sqlite(e)) => sqlite::classify(&self.path, e),
            (Backend::Sqlite, DbError::Decode(detail)) => StateError::Corrupt {
                path: self.path.clone(),
                detail: format!("unreadable value: {detail}"),
            },
            (Backend::Sqlite, DbError::Pg(e)) => StateError::Postgres {
                location: self.location(),
                detail: e.to_string(),
            },
        }
    }
}

/// Errors inside a write transaction: the engine's, or a refusal decided by the store.
pub(crate) enum TxError {
    Db(DbError),
    NotFound(String),
    Refused(String),
    /// A failure already told in the user's terms (by another store, e.g. the source of a
    /// `state migrate` read while this one writes).
    State(StateError),
}

/// `campaign `c`` or `item `k` of campaign `c``, as the errors name them.
fn describe(campaign: &str, key: &Option<String>) -> String {
    match key {
        Some(k) => format!("item `{k}` of campaign `{campaign}`"),
        None => format!("campaign `{campaign}`"),
    }
}

/// Remembers the HITs about to be removed from `hits` (see [`StateStore::remove_item`]).
fn forget(tx: &mut Tx<'_>, condition: &str, args: &[&dyn Param]) -> Result<(), DbError> {
    tx.execute(
        &format!(
            "INSERT INTO forgotten_hits (target, hit_id, campaign, item_key, generation)
             SELECT target, hit_id, campaign, item_key, generation FROM hits WHERE {condition}
             ON CONFLICT (target, hit_id) DO UPDATE SET
                campaign = excluded.campaign, item_key = excluded.item_key,
                generation = excluded.generation"
        ),
        args,
    )?;
    Ok(())
}

impl From<DbError> for TxError {
    fn from(e: DbError) -> Self {
        TxError::Db(e)
    }
}

pub(crate) fn read_partition(
    tx: &mut Tx<'_>,
    target: Target,
) -> Result<(u64, Option<UnixTime>), DbError> {
    let row = tx.query_opt(
        "SELECT serial, refreshed_at FROM partitions WHERE target = ?1",
        &[&target.as_str()],
        |r| Ok((r.get::<u64>(0)?, r.get::<Option<i64>>(1)?)),
    )?;
    Ok(row
        .map(|(s, at)| (s, at.map(UnixTime)))
        .unwrap_or((0, None)))
}

fn bump_serial(tx: &mut Tx<'_>, target: Target) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO partitions (target, serial) VALUES (?1, 1)
         ON CONFLICT (target) DO UPDATE SET serial = partitions.serial + 1",
        &[&target.as_str()],
    )?;
    Ok(())
}

fn load(
    tx: &mut Tx<'_>,
    target: Target,
    lineage: &str,
    version: u32,
) -> Result<RecordedState, DbError> {
    let t = target.as_str();
    let (serial, refreshed_at) = read_partition(tx, target)?;

    let qualification_types = tx.query_all(
        "SELECT name, qualification_type_id, definition_hash FROM qualification_types
         WHERE target = ?1 ORDER BY name",
        &[&t],
        |r| {
            Ok(RecordedQualificationType {
                name: r.get(0)?,
                qualification_type_id: r.get(1)?,
                definition_hash: r.get(2)?,
            })
        },
    )?;

    let hit_types = tx.query_all(
        "SELECT definition_hash, hit_type_id FROM hit_types
         WHERE target = ?1 ORDER BY definition_hash",
        &[&t],
        |r| {
            Ok(RecordedHitType {
                definition_hash: r.get(0)?,
                hit_type_id: r.get(1)?,
            })
        },
    )?;

    let hits = load_hits(tx, target)?;

    let orphans = tx.query_all(
        "SELECT hit_id, hit_type_id, annotation, max_assignments, created_at, expiration, status
         FROM orphans WHERE target = ?1 ORDER BY hit_id",
        &[&t],
        |r| {
            let annotation: String = r.get(2)?;
            Ok(OrphanHit {
                hit_id: r.get(0)?,
                hit_type_id: r.get(1)?,
                annotation: serde_json::from_str::<Annotation>(&annotation)
                    .map_err(|e| DbError::Decode(format!("orphan annotation: {e}")))?,
                max_assignments: r.get(3)?,
                created_at: UnixTime(r.get(4)?),
                expiration: UnixTime(r.get(5)?),
                status: status_from(r, 6)?,
            })
        },
    )?;

    // The planner reviews from these; they stream through the results query (in export
    // order), in the same snapshot as the rest.
    let mut assignments = Vec::new();
    if version >= 3 {
        let options = crate::assignments::VisitOptions {
            answer_xml: true,
            posted: false,
        };
        crate::assignments::visit(
            tx,
            target,
            &AssignmentFilter::default(),
            options,
            &mut |row| {
                assignments.push(row.assignment);
                true
            },
        )?;
    }
    let bonuses = if version >= 5 {
        crate::bonuses::all(tx, target)?
    } else {
        Vec::new()
    };
    let (blocks, grants, notifications) = if version >= 6 {
        (
            crate::workers::blocks(tx, target)?,
            crate::workers::grants(tx, target)?,
            crate::workers::notifications(tx, target)?,
        )
    } else {
        (Vec::new(), Vec::new(), Vec::new())
    };
    // A state older than schema 4 opened read-only is read as it is, never migrated.
    let (forgotten, renames) = if version >= 4 {
        load_forgotten_and_renames(tx, t)?
    } else {
        (Vec::new(), Vec::new())
    };

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
        assignments,
        bonuses,
        blocks,
        grants,
        notifications,
    })
}

/// Every HIT of `target`, all generations, ordered by campaign, item key, generation, hit id.
fn load_hits(tx: &mut Tx<'_>, target: Target) -> Result<Vec<RecordedHit>, DbError> {
    let t = target.as_str();
    // Counting first lets the vector be allocated once, instead of growing (and briefly
    // holding two copies) through 100k rows.
    let count = tx
        .query_opt("SELECT count(*) FROM hits WHERE target = ?1", &[&t], |r| {
            r.get::<i64>(0)
        })?
        .unwrap_or(0);
    let mut hits = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    tx.query(
        "SELECT campaign, item_key, generation, hit_id, hit_type_id, hit_type_hash, content_hash,
                max_assignments, committed_cost_cents, created_at, expiration, status,
                assignments_available, assignments_pending, assignments_completed, expired_by,
                paused_remaining_secs, drift
         FROM hits WHERE target = ?1 ORDER BY campaign, item_key, generation, hit_id",
        &[&t],
        |r| {
            hits.push(hit_from_row(r)?);
            Ok(())
        },
    )?;
    Ok(hits)
}

fn load_forgotten_and_renames(
    tx: &mut Tx<'_>,
    t: &str,
) -> Result<(Vec<ForgottenHit>, Vec<Rename>), DbError> {
    let forgotten = tx.query_all(
        "SELECT campaign, item_key, generation, hit_id FROM forgotten_hits
         WHERE target = ?1 ORDER BY campaign, item_key, generation, hit_id",
        &[&t],
        |r| {
            Ok(ForgottenHit {
                campaign: r.get(0)?,
                item_key: r.get(1)?,
                generation: r.get(2)?,
                hit_id: r.get(3)?,
            })
        },
    )?;
    let renames = tx.query_all(
        "SELECT from_campaign, from_key, to_campaign, to_key FROM renames
         WHERE target = ?1 ORDER BY id",
        &[&t],
        |r| {
            Ok(Rename {
                from_campaign: r.get(0)?,
                from_key: r.get(1)?,
                to_campaign: r.get(2)?,
                to_key: r.get(3)?,
            })
        },
    )?;
    Ok((forgotten, renames))
}

fn status_from(r: &Row<'_>, column: usize) -> Result<HitStatus, DbError> {
    let raw: String = r.get(column)?;
    HitStatus::parse(&raw).ok_or_else(|| DbError::Decode(format!("unknown HIT status `{raw}`")))
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

fn hit_from_row(r: &Row<'_>) -> Result<RecordedHit, DbError> {
    let expired_by = match r.get::<Option<String>>(15)? {
        None => None,
        Some(raw) => Some(
            expired_by_from(&raw)
                .ok_or_else(|| DbError::Decode(format!("unknown expired_by `{raw}`")))?,
        ),
    };
    let drift: Vec<Drift> = match r.get::<Option<String>>(17)? {
        None => Vec::new(),
        Some(json) => {
            serde_json::from_str(&json).map_err(|e| DbError::Decode(format!("drift: {e}")))?
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

fn json<T: serde::Serialize>(value: &T) -> Result<String, TxError> {
    serde_json::to_string(value).map_err(|e| TxError::Db(DbError::Decode(e.to_string())))
}

fn commit_batch(tx: &mut Tx<'_>, target: Target, batch: &Batch) -> Result<(), TxError> {
    let t = target.as_str();
    let now = UnixTime::now().0;
    // A done intent's payload existed only to resend the call: drop it so the journal does not
    // grow with every question's HTML. Failures keep theirs for diagnosis.
    for (id, outcome) in &batch.completed {
        let (name, message) = outcome.parts();
        let changed = tx.execute(
            "UPDATE intents SET outcome = ?1, message = ?2, finished_at = ?3,
                    payload = CASE WHEN ?1 = 'done' THEN 'null' ELSE payload END
             WHERE id = ?4 AND target = ?5",
            &[&name, &message, &now, &id.0, &t],
        )?;
        if changed == 0 {
            return Err(TxError::NotFound(format!("intent {}", id.0)));
        }
    }
    if let Some(orphans) = &batch.replace_orphans {
        tx.execute("DELETE FROM orphans WHERE target = ?1", &[&t])?;
        for o in orphans {
            let annotation = json(&o.annotation)?;
            tx.execute(
                "INSERT INTO orphans (target, hit_id, hit_type_id, annotation, max_assignments,
                                      created_at, expiration, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (target, hit_id) DO UPDATE SET
                    hit_type_id = excluded.hit_type_id, annotation = excluded.annotation,
                    max_assignments = excluded.max_assignments, created_at = excluded.created_at,
                    expiration = excluded.expiration, status = excluded.status",
                &[
                    &t,
                    &o.hit_id,
                    &o.hit_type_id,
                    &annotation,
                    &o.max_assignments,
                    &o.created_at.0,
                    &o.expiration.0,
                    &o.status.api_name(),
                ],
            )?;
        }
    }
    const REMOVE_ORPHAN: &str = "DELETE FROM orphans WHERE target = ?1 AND hit_id = ?2";
    for hit_id in &batch.remove_orphans {
        tx.execute(REMOVE_ORPHAN, &[&t, hit_id])?;
    }
    for q in &batch.upsert_qualification_types {
        tx.execute(
            "INSERT INTO qualification_types (target, name, qualification_type_id, definition_hash)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (target, name) DO UPDATE SET
                qualification_type_id = excluded.qualification_type_id,
                definition_hash = excluded.definition_hash",
            &[&t, &q.name, &q.qualification_type_id, &q.definition_hash],
        )?;
    }
    for h in &batch.upsert_hit_types {
        tx.execute(
            "INSERT INTO hit_types (target, definition_hash, hit_type_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (target, definition_hash) DO UPDATE SET
                hit_type_id = excluded.hit_type_id",
            &[&t, &h.definition_hash, &h.hit_type_id],
        )?;
    }
    // Keyed by hit id; the row is replaced whole, including the item columns of the clustered
    // key (which a HIT never changes in practice, but state must not assume).
    for h in &batch.upsert_hits {
        let drift = if h.drift.is_empty() {
            None
        } else {
            Some(json(&h.drift)?)
        };
        // The data row and the posted properties are not part of the record the planner
        // sees: carry them over.
        let (input_row, posted) = tx
            .query_opt(
                "SELECT input_row, posted FROM hits WHERE target = ?1 AND hit_id = ?2",
                &[&t, &h.hit_id],
                |r| Ok((r.get::<Option<String>>(0)?, r.get::<Option<String>>(1)?)),
            )?
            .unwrap_or_default();
        tx.execute(
            "DELETE FROM hits WHERE target = ?1 AND hit_id = ?2",
            &[&t, &h.hit_id],
        )?;
        tx.execute(
            "INSERT INTO hits (target, campaign, item_key, generation, hit_id, hit_type_id,
                               hit_type_hash, content_hash, max_assignments, committed_cost_cents,
                               created_at, expiration, status, assignments_available,
                               assignments_pending, assignments_completed, expired_by,
                               paused_remaining_secs, drift, input_row, posted)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                     ?18, ?19, ?20, ?21)",
            &[
                &t,
                &h.campaign,
                &h.item_key,
                &h.generation,
                &h.hit_id,
                &h.hit_type_id,
                &h.hit_type_hash,
                &h.content_hash,
                &h.max_assignments,
                &h.committed_cost.cents(),
                &h.created_at.0,
                &h.expiration.0,
                &h.status.api_name(),
                &h.assignments_available,
                &h.assignments_pending,
                &h.assignments_completed,
                &h.expired_by.map(expired_by_str),
                &h.paused_remaining_secs,
                &drift,
                &input_row,
                &posted,
            ],
        )?;
        // A HIT state knows is no longer an orphan.
        tx.execute(REMOVE_ORPHAN, &[&t, &h.hit_id])?;
    }
    crate::assignments::write(tx, target, batch)?;
    for paid in &batch.bonuses_paid {
        crate::bonuses::mark_paid(tx, target, &paid.campaign, &paid.identity, paid.at)?;
    }
    crate::posted::write(tx, target, batch)?;
    if let Some(at) = batch.refreshed_at {
        tx.execute(
            "INSERT INTO partitions (target, serial, refreshed_at) VALUES (?1, 0, ?2)
             ON CONFLICT (target) DO UPDATE SET refreshed_at = excluded.refreshed_at",
            &[&t, &at.0],
        )?;
    }
    bump_serial(tx, target)?;
    Ok(())
}

fn pending_intents(tx: &mut Tx<'_>, target: Target) -> Result<Vec<Intent>, DbError> {
    tx.query_all(
        "SELECT id, kind, campaign, item_key, generation, hit_id, token, payload, created_at,
                attempts
         FROM intents WHERE target = ?1 AND outcome IS NULL ORDER BY id",
        &[&target.as_str()],
        |r| {
            let kind_raw: String = r.get(1)?;
            let kind = IntentKind::parse(&kind_raw)
                .ok_or_else(|| DbError::Decode(format!("unknown intent kind `{kind_raw}`")))?;
            let payload_raw: String = r.get(7)?;
            let payload = serde_json::from_str(&payload_raw)
                .map_err(|e| DbError::Decode(format!("intent payload: {e}")))?;
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
        },
    )
}

fn runs(tx: &mut Tx<'_>, target: Target, limit: usize) -> Result<Vec<RunRecord>, DbError> {
    tx.query_all(
        r#"SELECT id, command, "user", host, pid, started_at, finished_at, result
           FROM runs WHERE target = ?1 ORDER BY id DESC LIMIT ?2"#,
        &[&target.as_str(), &i64::try_from(limit).unwrap_or(i64::MAX)],
        |r| {
            Ok(RunRecord {
                id: r.get(0)?,
                command: r.get(1)?,
                user: r.get(2)?,
                host: r.get(3)?,
                pid: r.get(4)?,
                started_at: UnixTime(r.get(5)?),
                finished_at: r.get::<Option<i64>>(6)?.map(UnixTime),
                result: r.get(7)?,
            })
        },
    )
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
