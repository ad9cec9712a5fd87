//! The schema, its versioned migrations (SQLite and PostgreSQL, version for version), and the
//! checks that run before anything is written to a file: the SQLite header read by hand (so
//! garbage or a copy cut short is never handed to SQLite in write mode; skipped when a WAL
//! exists, since the WAL may hold pages the main file lacks), then `quick_check` through a
//! read-only connection, then the `meta` table that says the file is turkform's and which
//! schema version it has.

use std::io::Read;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use crate::StateError;

/// The schema version this build writes. Files with a lower version are migrated on a
/// read-write open; files with a higher one are refused.
pub const SCHEMA_VERSION: u32 = 7;

/// Marks the file as turkform's for tools like `file(1)` (`PRAGMA application_id`, "TKFM").
pub const APPLICATION_ID: i32 = 0x544B_464D;

/// The value of `meta.app` in every turkform state file.
pub const APP_NAME: &str = "turkform";

/// `MIGRATIONS[i]` takes a file from schema `i` to `i + 1`. Never edit a shipped entry: files
/// in the wild were made by it. Add a new one instead.
pub const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    V1,
    V2,
    V3,
    V4_FORGOTTEN_AND_RENAMES,
    V5_BONUSES,
    V6_WORKERS,
    V7_POSTED_HITS,
];

/// The first schema: the record (types, HITs, orphans), per-target serials and the intent
/// journal. Every table is keyed by `target` first so sim, sandbox and production never mix.
pub const V1: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- One row per target that has ever been written; serial starts at 0 (no row).
CREATE TABLE partitions (
    target       TEXT PRIMARY KEY NOT NULL,
    serial       INTEGER NOT NULL,
    refreshed_at INTEGER
) WITHOUT ROWID;

CREATE TABLE qualification_types (
    target                TEXT NOT NULL,
    name                  TEXT NOT NULL,
    qualification_type_id TEXT NOT NULL,
    definition_hash       TEXT NOT NULL,
    PRIMARY KEY (target, name)
) WITHOUT ROWID;

CREATE TABLE hit_types (
    target          TEXT NOT NULL,
    definition_hash TEXT NOT NULL,
    hit_type_id     TEXT NOT NULL,
    PRIMARY KEY (target, definition_hash)
) WITHOUT ROWID;

-- Clustered by item so that load() is one sequential scan that comes out already ordered;
-- hit_id is in the key because a crash can leave two HITs for one item generation, and state
-- must be able to record both.
CREATE TABLE hits (
    target                TEXT NOT NULL,
    campaign              TEXT NOT NULL,
    item_key              TEXT NOT NULL,
    generation            INTEGER NOT NULL,
    hit_id                TEXT NOT NULL,
    hit_type_id           TEXT NOT NULL,
    hit_type_hash         TEXT NOT NULL,
    content_hash          TEXT NOT NULL,
    max_assignments       INTEGER NOT NULL,
    committed_cost_cents  INTEGER NOT NULL,
    created_at            INTEGER NOT NULL,
    expiration            INTEGER NOT NULL,
    status                TEXT NOT NULL,
    assignments_available INTEGER NOT NULL,
    assignments_pending   INTEGER NOT NULL,
    assignments_completed INTEGER NOT NULL,
    expired_by            TEXT,
    paused_remaining_secs INTEGER,
    -- JSON array of Drift; NULL when empty (the common case costs no parsing).
    drift                 TEXT,
    PRIMARY KEY (target, campaign, item_key, generation, hit_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX hits_by_id ON hits (target, hit_id);

CREATE TABLE orphans (
    target          TEXT NOT NULL,
    hit_id          TEXT NOT NULL,
    hit_type_id     TEXT NOT NULL,
    -- JSON of the parsed Annotation (not the rendered string: campaigns may contain ':').
    annotation      TEXT NOT NULL,
    max_assignments INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    expiration      INTEGER NOT NULL,
    status          TEXT NOT NULL,
    PRIMARY KEY (target, hit_id)
) WITHOUT ROWID;

CREATE TABLE intents (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    target      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    campaign    TEXT,
    item_key    TEXT,
    generation  INTEGER,
    hit_id      TEXT,
    token       TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 1,
    -- NULL while pending; 'done', 'failed' or 'abandoned' after.
    outcome     TEXT,
    message     TEXT,
    finished_at INTEGER
);
CREATE INDEX intents_by_token ON intents (target, token);
"#;

/// Schema 2 adds the run log (who ran what, when, with which result), and a partial index so
/// that finding pending intents stays instant once the journal holds a long history.
pub const V2: &str = r#"
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    target      TEXT NOT NULL,
    command     TEXT NOT NULL,
    user        TEXT NOT NULL,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    result      TEXT
);
CREATE INDEX runs_by_target ON runs (target, id);
CREATE INDEX intents_pending ON intents (target, id) WHERE outcome IS NULL;
"#;

/// Schema 3 adds results: every assignment refresh has seen (kept for good), the data row each
/// HIT was posted with (for `Input.*` columns), and the last account balance refresh read.
/// Plain TEXT / INTEGER columns and no SQLite-only functions, so other backends can share it.
pub const V3: &str = r#"
CREATE TABLE assignments (
    target             TEXT NOT NULL,
    assignment_id      TEXT NOT NULL,
    hit_id             TEXT NOT NULL,
    campaign           TEXT NOT NULL,
    item_key           TEXT NOT NULL,
    generation         INTEGER NOT NULL,
    worker_id          TEXT NOT NULL,
    status             TEXT NOT NULL,
    accept_time        INTEGER,
    submit_time        INTEGER,
    auto_approval_time INTEGER,
    approval_time      INTEGER,
    rejection_time     INTEGER,
    answer_xml         TEXT NOT NULL,
    -- JSON object of the flattened answers (field -> string).
    answers            TEXT NOT NULL,
    requester_feedback TEXT,
    -- 'turkform', 'auto', 'outside'; NULL while undecided.
    decided_by         TEXT,
    PRIMARY KEY (target, assignment_id)
);
CREATE INDEX assignments_by_hit ON assignments (target, hit_id);
-- In export order, so that streaming results needs no sort of the whole table.
CREATE INDEX assignments_by_item ON assignments (target, campaign, item_key, generation, submit_time,
                                                 assignment_id);
CREATE INDEX assignments_by_worker ON assignments (target, worker_id);
-- JSON array of [column, value] pairs, in the data file's column order; NULL when unknown
-- (HITs created before schema 3, or adopted ones).
ALTER TABLE hits ADD COLUMN input_row TEXT;
ALTER TABLE partitions ADD COLUMN balance_cents INTEGER;
ALTER TABLE partitions ADD COLUMN balance_read_at INTEGER;
"#;

/// Schema 4 adds what `state rm` forgot (never adopted again by annotation; the item's next HIT
/// gets a later generation) and what `state mv` renamed (annotations keep the old name).
pub const V4_FORGOTTEN_AND_RENAMES: &str = r#"
CREATE TABLE forgotten_hits (
    target     TEXT NOT NULL,
    hit_id     TEXT NOT NULL,
    campaign   TEXT NOT NULL,
    item_key   TEXT NOT NULL,
    generation INTEGER NOT NULL,
    PRIMARY KEY (target, hit_id)
);
CREATE TABLE renames (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    target        TEXT NOT NULL,
    from_campaign TEXT NOT NULL,
    from_key      TEXT,
    to_campaign   TEXT NOT NULL,
    to_key        TEXT
);
"#;

/// Schema 5 adds bonuses: every SendBonus turkform made, recorded `pending` (paid_at NULL)
/// before the call and kept for good, so that no row is ever paid twice.
pub const V5_BONUSES: &str = r#"
CREATE TABLE bonuses (
    target        TEXT NOT NULL,
    campaign      TEXT NOT NULL,
    -- AssignmentId, or AssignmentId/Id for a further bonus on the same assignment.
    identity      TEXT NOT NULL,
    assignment_id TEXT NOT NULL,
    worker_id     TEXT NOT NULL,
    amount_cents  INTEGER NOT NULL,
    reason        TEXT NOT NULL,
    token         TEXT NOT NULL,
    requested_at  INTEGER NOT NULL,
    paid_at       INTEGER,
    PRIMARY KEY (target, campaign, identity)
);
CREATE INDEX bonuses_by_assignment ON bonuses (target, assignment_id);
"#;

/// Schema 6 adds workers and notifications as code: worker blocks and qualification grants
/// (turkform's own, recorded `adding` before the call so that a crash never makes them look like
/// someone else's, and the ones a refresh found made outside turkform), and the notification
/// settings turkform set per HIT type. Self-contained: it only creates tables.
pub const V6_WORKERS: &str = r#"
CREATE TABLE worker_blocks (
    target      TEXT NOT NULL,
    worker_id   TEXT NOT NULL,
    reason      TEXT NOT NULL,
    -- turkform | outside
    made_by     TEXT NOT NULL,
    -- adding | active | removing
    status      TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (target, worker_id)
);
CREATE TABLE worker_grants (
    target                TEXT NOT NULL,
    qualification_type_id TEXT NOT NULL,
    worker_id             TEXT NOT NULL,
    qualification         TEXT NOT NULL,
    value                 INTEGER NOT NULL,
    made_by               TEXT NOT NULL,
    status                TEXT NOT NULL,
    recorded_at           INTEGER NOT NULL,
    PRIMARY KEY (target, qualification_type_id, worker_id)
);
CREATE TABLE notification_settings (
    target      TEXT NOT NULL,
    hit_type_id TEXT NOT NULL,
    campaign    TEXT NOT NULL,
    destination TEXT NOT NULL,
    transport   TEXT NOT NULL,
    -- Event type names, sorted, comma-separated.
    events      TEXT NOT NULL,
    active      INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (target, hit_type_id)
);
"#;

/// Schema 7 records what each HIT showed workers, as MTurk reported it (`hits.posted`: the HIT
/// type's title, description, keywords, reward and durations, the HIT's group and lifetime), and
/// the size of each HIT group at the last refresh that listed it (`hit_groups`): the type-level
/// columns of an export come from here, not from campaign files that may have changed since.
/// HITs recorded before schema 7 get theirs at the next refresh that lists them. The index of
/// assignments by worker gains the columns the approval-rate query reads.
pub const V7_POSTED_HITS: &str = r#"
-- JSON of the PostedHit; NULL when unknown (not listed by a refresh since schema 7).
ALTER TABLE hits ADD COLUMN posted TEXT;
CREATE TABLE hit_groups (
    target       TEXT NOT NULL,
    hit_group_id TEXT NOT NULL,
    similar_hits INTEGER NOT NULL,
    counted_at   INTEGER NOT NULL,
    PRIMARY KEY (target, hit_group_id)
);
-- Covers the approval-rate query of an export (one pass over a worker's decisions, no row
-- lookups); it starts with the columns of the index it replaces.
CREATE INDEX assignments_by_worker_decision ON assignments (target, worker_id, status,
                                                            approval_time, rejection_time);
DROP INDEX assignments_by_worker;
"#;

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";
const HEADER_LEN: usize = 100;

/// Reads the 100-byte SQLite header by hand and refuses anything that is not a complete SQLite
/// database: garbage, an empty file, a copy cut short. Runs before SQLite sees the file, so
/// nothing can be written to a file that is not ours to write.
pub fn check_header(path: &Path) -> Result<(), StateError> {
    let corrupt = |detail: String| StateError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let mut file = std::fs::File::open(path).map_err(|e| StateError::io(path, e))?;
    let len = file.metadata().map_err(|e| StateError::io(path, e))?.len();
    if len == 0 {
        return Err(corrupt("the file is empty".to_owned()));
    }
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match file.read(&mut header[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(StateError::io(path, e)),
        }
    }
    if got < SQLITE_MAGIC.len() || &header[..SQLITE_MAGIC.len()] != SQLITE_MAGIC {
        return Err(corrupt("it is not a SQLite database".to_owned()));
    }
    if got < HEADER_LEN {
        return Err(corrupt(format!(
            "truncated: {len} bytes, shorter than a SQLite header"
        )));
    }
    let be16 = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    // A crashed writer (a full disk, a SIGKILL mid-checkpoint) may leave pages in the WAL that
    // the main file does not have yet, and a header already promising them: only SQLite, which
    // reads the WAL, can judge such a file (`identify` runs its quick_check).
    let mut wal = path.as_os_str().to_os_string();
    wal.push("-wal");
    if std::fs::symlink_metadata(std::path::PathBuf::from(wal)).is_ok() {
        return Ok(());
    }
    let page_size: u64 = match be16(16) {
        1 => 65_536,
        n if n >= 512 && n.is_power_of_two() => u64::from(n),
        n => return Err(corrupt(format!("invalid page size {n} in the header"))),
    };
    if len % page_size != 0 {
        return Err(corrupt(format!(
            "truncated: {len} bytes is not a whole number of {page_size}-byte pages"
        )));
    }
    // The in-header page count is only trustworthy when the "version valid for" field matches
    // the change counter (writers older than SQLite 3.7.0 do not maintain it).
    let pages = u64::from(be32(28));
    if pages != 0 && be32(92) == be32(24) && len < pages * page_size {
        return Err(corrupt(format!(
            "truncated: the header promises {pages} pages of {page_size} bytes, the file has {len} \
             bytes"
        )));
    }
    Ok(())
}

/// What a structurally sound SQLite file turned out to be.
pub enum Identity {
    /// A turkform state at this schema version.
    Turkform { version: u32 },
}

/// Decides, reading only, whether `conn` is a healthy turkform state and at which version.
pub fn identify(conn: &Connection, path: &Path) -> Result<Identity, StateError> {
    let corrupt_from = |e: rusqlite::Error| crate::sqlite::classify(path, e);
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(corrupt_from)?;
    if check != "ok" {
        return Err(StateError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("SQLite's quick_check failed: {check}"),
        });
    }
    let has_meta: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')",
            [],
            |r| r.get(0),
        )
        .map_err(corrupt_from)?;
    let foreign = || StateError::Foreign {
        path: path.to_path_buf(),
    };
    if !has_meta {
        return Err(foreign());
    }
    // Another application's `meta` table may have other columns: any failure here means the
    // file is not ours, not that it is broken.
    let app: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'app'", [], |r| r.get(0))
        .optional()
        .map_err(|_| foreign())?;
    if app.as_deref() != Some(APP_NAME) {
        return Err(foreign());
    }
    let user_version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(corrupt_from)?;
    let version = u32::try_from(user_version).map_err(|_| StateError::Corrupt {
        path: path.to_path_buf(),
        detail: format!("impossible schema version {user_version}"),
    })?;
    if version == 0 {
        return Err(StateError::Corrupt {
            path: path.to_path_buf(),
            detail: "it names turkform but has no schema version".to_owned(),
        });
    }
    if version > SCHEMA_VERSION {
        return Err(StateError::TooNew {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(Identity::Turkform { version })
}

/// Runs the migrations from `from` up to [`SCHEMA_VERSION`] in one immediate transaction. The
/// version is re-read inside it: another process may have migrated while we waited.
pub fn migrate(conn: &mut Connection, from: u32) -> Result<u32, rusqlite::Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current != from {
        tracing::debug!(
            from,
            current,
            "state schema was migrated by another process"
        );
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql)?;
        tracing::debug!(to = index + 1, "applied state schema migration");
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [SCHEMA_VERSION.to_string()],
    )?;
    tx.commit()?;
    Ok(current)
}

/// Creates the whole current schema on an empty database, with the identity rows.
pub fn create(conn: &mut Connection, lineage: &str, now: i64) -> Result<(), rusqlite::Error> {
    conn.pragma_update(None, "application_id", APPLICATION_ID)?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for sql in MIGRATIONS {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    {
        let mut insert = tx.prepare("INSERT INTO meta (key, value) VALUES (?1, ?2)")?;
        insert.execute(["app", APP_NAME])?;
        insert.execute(["lineage", lineage])?;
        insert.execute(["schema_version", &SCHEMA_VERSION.to_string()])?;
        insert.execute(["created_at", &now.to_string()])?;
    }
    tx.commit()
}

/// The lineage of an identified turkform file.
pub fn read_lineage(conn: &Connection, path: &Path) -> Result<String, StateError> {
    let lineage: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'lineage'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| crate::sqlite::classify(path, e))?;
    match lineage {
        Some(l) if !l.is_empty() => Ok(l),
        _ => Err(StateError::Corrupt {
            path: path.to_path_buf(),
            detail: "it has no lineage".to_owned(),
        }),
    }
}

/// The PostgreSQL schema, version for version the same tables and columns as [`MIGRATIONS`]
/// (`BIGINT` for every integer, identity columns for ids, no `WITHOUT ROWID`, and bytewise
/// `COLLATE "C"` text so that keys sort and compare exactly as in SQLite), so that the
/// store's portable SQL runs unchanged on both. `PG_MIGRATIONS[i]` takes a schema from `i` to
/// `i + 1`; a new SQLite migration gets its PostgreSQL twin here in the same commit.
pub const PG_MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    PG_V1,
    PG_V2,
    PG_V3,
    PG_V4_FORGOTTEN_AND_RENAMES,
    PG_V5_BONUSES,
    PG_V6_WORKERS,
    PG_V7_POSTED_HITS,
];

pub const PG_V1: &str = r#"
CREATE TABLE meta (
    key   TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    value TEXT COLLATE "C" NOT NULL
);
CREATE TABLE partitions (
    target       TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    serial       BIGINT NOT NULL,
    refreshed_at BIGINT
);
CREATE TABLE qualification_types (
    target                TEXT COLLATE "C" NOT NULL,
    name                  TEXT COLLATE "C" NOT NULL,
    qualification_type_id TEXT COLLATE "C" NOT NULL,
    definition_hash       TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (target, name)
);
CREATE TABLE hit_types (
    target          TEXT COLLATE "C" NOT NULL,
    definition_hash TEXT COLLATE "C" NOT NULL,
    hit_type_id     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (target, definition_hash)
);
CREATE TABLE hits (
    target                TEXT COLLATE "C" NOT NULL,
    campaign              TEXT COLLATE "C" NOT NULL,
    item_key              TEXT COLLATE "C" NOT NULL,
    generation            BIGINT NOT NULL,
    hit_id                TEXT COLLATE "C" NOT NULL,
    hit_type_id           TEXT COLLATE "C" NOT NULL,
    hit_type_hash         TEXT COLLATE "C" NOT NULL,
    content_hash          TEXT COLLATE "C" NOT NULL,
    max_assignments       BIGINT NOT NULL,
    committed_cost_cents  BIGINT NOT NULL,
    created_at            BIGINT NOT NULL,
    expiration            BIGINT NOT NULL,
    status                TEXT COLLATE "C" NOT NULL,
    assignments_available BIGINT NOT NULL,
    assignments_pending   BIGINT NOT NULL,
    assignments_completed BIGINT NOT NULL,
    expired_by            TEXT COLLATE "C",
    paused_remaining_secs BIGINT,
    drift                 TEXT COLLATE "C",
    PRIMARY KEY (target, campaign, item_key, generation, hit_id)
);
CREATE UNIQUE INDEX hits_by_id ON hits (target, hit_id);
CREATE TABLE orphans (
    target          TEXT COLLATE "C" NOT NULL,
    hit_id          TEXT COLLATE "C" NOT NULL,
    hit_type_id     TEXT COLLATE "C" NOT NULL,
    annotation      TEXT COLLATE "C" NOT NULL,
    max_assignments BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    expiration      BIGINT NOT NULL,
    status          TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (target, hit_id)
);
CREATE TABLE intents (
    id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    target      TEXT COLLATE "C" NOT NULL,
    kind        TEXT COLLATE "C" NOT NULL,
    campaign    TEXT COLLATE "C",
    item_key    TEXT COLLATE "C",
    generation  BIGINT,
    hit_id      TEXT COLLATE "C",
    token       TEXT COLLATE "C" NOT NULL,
    payload     TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 1,
    outcome     TEXT COLLATE "C",
    message     TEXT COLLATE "C",
    finished_at BIGINT
);
CREATE INDEX intents_by_token ON intents (target, token);
"#;

pub const PG_V2: &str = r#"
CREATE TABLE runs (
    id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    target      TEXT COLLATE "C" NOT NULL,
    command     TEXT COLLATE "C" NOT NULL,
    "user"      TEXT COLLATE "C" NOT NULL,
    host        TEXT COLLATE "C" NOT NULL,
    pid         BIGINT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    result      TEXT COLLATE "C"
);
CREATE INDEX runs_by_target ON runs (target, id);
CREATE INDEX intents_pending ON intents (target, id) WHERE outcome IS NULL;
"#;

/// [`V3`] on PostgreSQL: results (assignments, the posted row of each HIT, the last balance).
pub const PG_V3: &str = r#"
CREATE TABLE assignments (
    target             TEXT COLLATE "C" NOT NULL,
    assignment_id      TEXT COLLATE "C" NOT NULL,
    hit_id             TEXT COLLATE "C" NOT NULL,
    campaign           TEXT COLLATE "C" NOT NULL,
    item_key           TEXT COLLATE "C" NOT NULL,
    generation         BIGINT NOT NULL,
    worker_id          TEXT COLLATE "C" NOT NULL,
    status             TEXT COLLATE "C" NOT NULL,
    accept_time        BIGINT,
    submit_time        BIGINT,
    auto_approval_time BIGINT,
    approval_time      BIGINT,
    rejection_time     BIGINT,
    answer_xml         TEXT COLLATE "C" NOT NULL,
    answers            TEXT COLLATE "C" NOT NULL,
    requester_feedback TEXT COLLATE "C",
    decided_by         TEXT COLLATE "C",
    PRIMARY KEY (target, assignment_id)
);
CREATE INDEX assignments_by_hit ON assignments (target, hit_id);
-- In export order, so that streaming results needs no sort of the whole table.
CREATE INDEX assignments_by_item ON assignments (target, campaign, item_key, generation, submit_time,
                                                 assignment_id);
CREATE INDEX assignments_by_worker ON assignments (target, worker_id);
ALTER TABLE hits ADD COLUMN input_row TEXT COLLATE "C";
ALTER TABLE partitions ADD COLUMN balance_cents BIGINT;
ALTER TABLE partitions ADD COLUMN balance_read_at BIGINT;
"#;

/// [`V4_FORGOTTEN_AND_RENAMES`] on PostgreSQL.
pub const PG_V4_FORGOTTEN_AND_RENAMES: &str = r#"
CREATE TABLE forgotten_hits (
    target     TEXT COLLATE "C" NOT NULL,
    hit_id     TEXT COLLATE "C" NOT NULL,
    campaign   TEXT COLLATE "C" NOT NULL,
    item_key   TEXT COLLATE "C" NOT NULL,
    generation BIGINT NOT NULL,
    PRIMARY KEY (target, hit_id)
);
CREATE TABLE renames (
    id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    target        TEXT COLLATE "C" NOT NULL,
    from_campaign TEXT COLLATE "C" NOT NULL,
    from_key      TEXT COLLATE "C",
    to_campaign   TEXT COLLATE "C" NOT NULL,
    to_key        TEXT COLLATE "C"
);
"#;

/// [`V5_BONUSES`] on PostgreSQL.
pub const PG_V5_BONUSES: &str = r#"
CREATE TABLE bonuses (
    target        TEXT COLLATE "C" NOT NULL,
    campaign      TEXT COLLATE "C" NOT NULL,
    identity      TEXT COLLATE "C" NOT NULL,
    assignment_id TEXT COLLATE "C" NOT NULL,
    worker_id     TEXT COLLATE "C" NOT NULL,
    amount_cents  BIGINT NOT NULL,
    reason        TEXT COLLATE "C" NOT NULL,
    token         TEXT COLLATE "C" NOT NULL,
    requested_at  BIGINT NOT NULL,
    paid_at       BIGINT,
    PRIMARY KEY (target, campaign, identity)
);
CREATE INDEX bonuses_by_assignment ON bonuses (target, assignment_id);
"#;

/// [`V6_WORKERS`] on PostgreSQL.
pub const PG_V6_WORKERS: &str = r#"
CREATE TABLE worker_blocks (
    target      TEXT COLLATE "C" NOT NULL,
    worker_id   TEXT COLLATE "C" NOT NULL,
    reason      TEXT COLLATE "C" NOT NULL,
    made_by     TEXT COLLATE "C" NOT NULL,
    status      TEXT COLLATE "C" NOT NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (target, worker_id)
);
CREATE TABLE worker_grants (
    target                TEXT COLLATE "C" NOT NULL,
    qualification_type_id TEXT COLLATE "C" NOT NULL,
    worker_id             TEXT COLLATE "C" NOT NULL,
    qualification         TEXT COLLATE "C" NOT NULL,
    value                 BIGINT NOT NULL,
    made_by               TEXT COLLATE "C" NOT NULL,
    status                TEXT COLLATE "C" NOT NULL,
    recorded_at           BIGINT NOT NULL,
    PRIMARY KEY (target, qualification_type_id, worker_id)
);
CREATE TABLE notification_settings (
    target      TEXT COLLATE "C" NOT NULL,
    hit_type_id TEXT COLLATE "C" NOT NULL,
    campaign    TEXT COLLATE "C" NOT NULL,
    destination TEXT COLLATE "C" NOT NULL,
    transport   TEXT COLLATE "C" NOT NULL,
    events      TEXT COLLATE "C" NOT NULL,
    active      BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (target, hit_type_id)
);
"#;

/// [`V7_POSTED_HITS`] on PostgreSQL.
pub const PG_V7_POSTED_HITS: &str = r#"
ALTER TABLE hits ADD COLUMN posted TEXT COLLATE "C";
CREATE TABLE hit_groups (
    target       TEXT COLLATE "C" NOT NULL,
    hit_group_id TEXT COLLATE "C" NOT NULL,
    similar_hits BIGINT NOT NULL,
    counted_at   BIGINT NOT NULL,
    PRIMARY KEY (target, hit_group_id)
);
CREATE INDEX assignments_by_worker_decision ON assignments (target, worker_id, status,
                                                            approval_time, rejection_time);
DROP INDEX assignments_by_worker;
"#;

/// Tables whose ids come from an identity column on PostgreSQL: after rows are copied in with
/// their ids ([`crate::migrate`]), the sequence is moved past them.
pub const IDENTITY_TABLES: [&str; 3] = ["intents", "runs", "renames"];

#[cfg(test)]
mod tests {
    use super::*;

    fn header_check(bytes: &[u8]) -> Result<(), StateError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        std::fs::write(&path, bytes).unwrap();
        check_header(&path)
    }

    fn header(page_size: u16, pages: u32) -> Vec<u8> {
        let mut h = vec![0u8; 100];
        h[..16].copy_from_slice(SQLITE_MAGIC);
        h[16..18].copy_from_slice(&page_size.to_be_bytes());
        h[24..28].copy_from_slice(&7u32.to_be_bytes());
        h[28..32].copy_from_slice(&pages.to_be_bytes());
        h[92..96].copy_from_slice(&7u32.to_be_bytes());
        h
    }

    #[test]
    fn the_header_check_refuses_what_is_not_a_whole_sqlite_file() {
        let detail = |r: Result<(), StateError>| match r {
            Err(StateError::Corrupt { detail, .. }) => detail,
            other => panic!("expected Corrupt, got {other:?}"),
        };
        assert_eq!(detail(header_check(b"")), "the file is empty");
        assert_eq!(
            detail(header_check(b"hello world")),
            "it is not a SQLite database"
        );
        assert!(detail(header_check(&header(4096, 1)[..60])).starts_with("truncated"));
        assert!(detail(header_check(&header(1000, 1))).contains("invalid page size"));
        let mut two_pages = header(4096, 2);
        two_pages.resize(4096, 0);
        assert!(detail(header_check(&two_pages)).contains("promises 2 pages"));
        two_pages.resize(8192, 0);
        assert!(header_check(&two_pages).is_ok());
        two_pages.resize(8000, 0);
        assert!(detail(header_check(&two_pages)).contains("whole number"));
    }
}
