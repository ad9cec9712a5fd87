//! Opening a state in a PostgreSQL schema: identifying it (turkform's, foreign, newer), and
//! creating or migrating it in one transaction that concurrent openers queue behind.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;

use turkform_model::{Target, UnixTime};

use crate::StateError;
use crate::db::{Db, DbError, Tx};
use crate::pg::PgLocation;
use crate::schema::{APP_NAME, PG_MIGRATIONS, SCHEMA_VERSION};
use crate::sqlite::ReadPath;
use crate::store::{Backend, OpenMode, StateStore};

/// What a schema turned out to hold.
enum Found {
    /// No `meta` table and no other table: a state can be created there.
    Nothing,
    Turkform {
        version: u32,
        lineage: String,
    },
}

pub(crate) fn open(
    location: PgLocation,
    target: Target,
    mode: OpenMode,
) -> Result<StateStore, StateError> {
    let conn = location.connect()?;
    let mut db = Db::Pg(conn);
    let path = PathBuf::from(location.redacted());
    let store = |db: Option<Db>, version: u32, lineage: String, location: PgLocation| StateStore {
        path: path.clone(),
        target,
        mode,
        backend: Backend::Pg(location),
        conn: RefCell::new(db),
        read_path: Cell::new(ReadPath::Shared),
        lineage,
        version,
        lock_watch: Default::default(),
    };
    match mode {
        OpenMode::ReadOnly => {
            let found = db
                .read(|tx| identify(tx, &location))
                .map_err(|e| into_state(&location, e))?;
            Ok(match found {
                Found::Nothing => store(None, SCHEMA_VERSION, String::new(), location),
                Found::Turkform { version, lineage } => store(Some(db), version, lineage, location),
            })
        }
        OpenMode::ReadWrite => {
            // Not a lineage (those are hex): a key of its own for creating this schema.
            let schema_key = location.lock_key("creating the schema", Target::Sim);
            let lineage = db
                .write(|tx| -> Result<String, PgOpenError> {
                    // Two first runs at once: the second waits here, then finds the state.
                    tx.execute("SELECT pg_advisory_xact_lock(?1)", &[&schema_key])?;
                    // Inside the lock: CREATE SCHEMA IF NOT EXISTS is not safe against a
                    // concurrent creator, and a user without CREATE on the database may still
                    // use a schema that exists.
                    let exists = tx
                        .query_opt(
                            "SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname::TEXT = ?1",
                            &[&location.schema()],
                            |r| r.get::<i64>(0),
                        )?
                        .unwrap_or(0);
                    if exists == 0 {
                        tx.batch(&format!("CREATE SCHEMA {}", location.schema_ident()))?;
                    }
                    match identify(tx, &location)? {
                        Found::Nothing => {
                            let lineage = hex::encode(rand::random::<[u8; 16]>());
                            create(tx, &lineage, UnixTime::now().0)?;
                            tracing::debug!(schema = location.schema(), %lineage, "created a new state schema");
                            Ok(lineage)
                        }
                        Found::Turkform { version, lineage } => {
                            if version < SCHEMA_VERSION {
                                migrate(tx, version)?;
                                tracing::info!(
                                    schema = location.schema(),
                                    from = version,
                                    to = SCHEMA_VERSION,
                                    "migrated the state schema"
                                );
                            }
                            Ok(lineage)
                        }
                    }
                })
                .map_err(|e| match e {
                    PgOpenError::State(e) => e,
                    PgOpenError::Db(e) => location.error(e),
                })?;
            Ok(store(Some(db), SCHEMA_VERSION, lineage, location))
        }
    }
}

/// A refusal (foreign, too new) or a database error, inside the opening transaction.
enum PgOpenError {
    State(StateError),
    Db(DbError),
}

impl From<DbError> for PgOpenError {
    fn from(e: DbError) -> Self {
        PgOpenError::Db(e)
    }
}

impl From<StateError> for PgOpenError {
    fn from(e: StateError) -> Self {
        PgOpenError::State(e)
    }
}

fn into_state(location: &PgLocation, e: PgOpenError) -> StateError {
    match e {
        PgOpenError::State(e) => e,
        PgOpenError::Db(e) => location.error(e),
    }
}

/// Decides, reading only, what the schema holds.
fn identify(tx: &mut Tx<'_>, location: &PgLocation) -> Result<Found, PgOpenError> {
    let shown = || PathBuf::from(location.redacted());
    let tables = tx
        .query_opt(
            "SELECT count(*), count(*) FILTER (WHERE tablename::TEXT = 'meta')
             FROM pg_catalog.pg_tables WHERE schemaname::TEXT = ?1",
            &[&location.schema()],
            |r| Ok((r.get::<i64>(0)?, r.get::<i64>(1)?)),
        )?
        .unwrap_or((0, 0));
    match tables {
        (0, _) => return Ok(Found::Nothing),
        (_, 0) => return Err(StateError::Foreign { path: shown() }.into()),
        _ => {}
    }
    let value = |tx: &mut Tx<'_>, key: &str| -> Result<Option<String>, PgOpenError> {
        tx.query_opt("SELECT value FROM meta WHERE key = ?1", &[&key], |r| {
            r.get::<String>(0)
        })
        // Another application's `meta` table may have other columns: not ours, not broken.
        .map_err(|_| StateError::Foreign { path: shown() }.into())
    };
    if value(tx, "app")?.as_deref() != Some(APP_NAME) {
        return Err(StateError::Foreign { path: shown() }.into());
    }
    let raw = value(tx, "schema_version")?.unwrap_or_default();
    let version: u32 = raw.parse().map_err(|_| StateError::Corrupt {
        path: shown(),
        detail: format!("impossible schema version `{raw}`"),
    })?;
    if version == 0 {
        return Err(StateError::Corrupt {
            path: shown(),
            detail: "it names turkform but has no schema version".to_owned(),
        }
        .into());
    }
    if version > SCHEMA_VERSION {
        return Err(StateError::TooNew {
            path: shown(),
            found: version,
            supported: SCHEMA_VERSION,
        }
        .into());
    }
    let lineage = value(tx, "lineage")?.unwrap_or_default();
    if lineage.is_empty() {
        return Err(StateError::Corrupt {
            path: shown(),
            detail: "it has no lineage".to_owned(),
        }
        .into());
    }
    Ok(Found::Turkform { version, lineage })
}

fn create(tx: &mut Tx<'_>, lineage: &str, now: i64) -> Result<(), DbError> {
    for sql in PG_MIGRATIONS {
        tx.batch(sql)?;
    }
    for (key, value) in [
        ("app", APP_NAME.to_owned()),
        ("lineage", lineage.to_owned()),
        ("schema_version", SCHEMA_VERSION.to_string()),
        ("created_at", now.to_string()),
    ] {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            &[&key, &value],
        )?;
    }
    Ok(())
}

fn migrate(tx: &mut Tx<'_>, from: u32) -> Result<(), DbError> {
    for (index, sql) in PG_MIGRATIONS.iter().enumerate().skip(from as usize) {
        tx.batch(sql)?;
        tracing::debug!(to = index + 1, "applied state schema migration");
    }
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
        &[&SCHEMA_VERSION.to_string()],
    )?;
    Ok(())
}
