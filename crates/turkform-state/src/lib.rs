//! The state store: one SQLite file that records what turkform made on MTurk, per target.
//!
//! - [`store`]: [`StateStore`], opening (validation before any write, migrations), loading the
//!   [`turkform_model::RecordedState`], and every change as one transaction with a serial bump.
//! - [`schema`]: the versioned migrations and the checks that tell a turkform state file from a
//!   corrupt, foreign or newer one without writing to it.
//! - [`journal`]: the write-ahead intent journal the executor records before each MTurk call,
//!   and the [`Batch`] of outcomes it commits after.
//! - [`lock`]: the apply lock, an OS advisory lock the kernel drops when its holder dies.
//!
//! This crate owns persistence and locking only. It must not know TOML, AWS, the planner's rules
//! or how anything is rendered for humans: it stores and returns `turkform_model` values.

mod db;
pub mod journal;
pub mod lock;
pub mod migrate;
pub mod pg;
mod pg_store;
pub mod schema;
mod sqlite;
pub mod store;

use std::path::PathBuf;

pub use journal::{
    Batch, Intent, IntentId, IntentKind, IntentOutcome, NewIntent, RunId, RunRecord,
};
pub use lock::{LockInfo, StateLock};
pub use schema::SCHEMA_VERSION;
pub use store::{OpenMode, StateStore};

/// Everything that can go wrong with the state file. Each way the file can be unusable is its
/// own variant, so the binary can tell the user exactly what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Not a SQLite database, truncated, or failing SQLite's own consistency check. Never
    /// overwritten: the user's data may still be recoverable from it.
    #[error(
        "state file `{}` is corrupt ({detail}); it was left untouched: restore it from a backup \
         or move it away to start a new state",
        path.display()
    )]
    Corrupt { path: PathBuf, detail: String },
    /// A healthy SQLite database that some other program made.
    #[error(
        "`{}` is a SQLite database but not a turkform state file: point turkform at its own state \
         file or move this one away",
        path.display()
    )]
    Foreign { path: PathBuf },
    /// Written by a newer turkform whose schema this build cannot read safely.
    #[error(
        "state file `{}` was written by a newer turkform (schema {found}, this one knows up to \
         {supported}): upgrade turkform",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    /// The file or its directory cannot be written, or the store was opened read-only.
    #[error(
        "cannot write the state at `{}` ({detail}): make the file and its directory writable by \
         this user",
        path.display()
    )]
    ReadOnly { path: PathBuf, detail: String },
    /// Another live process holds the apply lock.
    #[error(
        "the state is locked by `{}` (pid {} on `{}`, since {})",
        holder.command, holder.pid, holder.host, holder.since
    )]
    LockHeld { holder: LockInfo },
    /// `state show`/`state rm` of something the state does not hold.
    #[error("{what} is not in the state")]
    NotFound { what: String },
    /// A `postgres://` state setting that cannot be used as it is. Never contains the URL
    /// (it may hold a password).
    #[error("the PostgreSQL state URL is not usable: {detail}")]
    BadLocation { detail: String },
    /// The PostgreSQL server cannot be reached, refused the login, or dropped the connection.
    #[error(
        "cannot use the PostgreSQL state at `{location}` ({detail}): check that the server is \
         up, the URL, and the password (PGPASSWORD or ~/.pgpass)"
    )]
    Unreachable { location: String, detail: String },
    /// The PostgreSQL server refused a statement on a reachable, identified state.
    #[error("the PostgreSQL state at `{location}` failed ({detail})")]
    Postgres { location: String, detail: String },
    /// `state migrate` into a destination that already holds a state.
    #[error(
        "the destination `{location}` already holds a state (lineage {lineage}): migrate into a \
         new file or an empty schema"
    )]
    DestinationNotEmpty { location: String, lineage: String },
    /// SQLite failed on a file that passed every check: an internal error.
    #[error("the state database failed")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot access `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StateError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> StateError {
        StateError::Io {
            path: path.into(),
            source,
        }
    }
}
