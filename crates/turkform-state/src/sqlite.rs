//! The SQLite backend: opening a state file safely (validation before any write, atomic
//! creation, migration after a backup) and the read paths of a read-only store. Everything
//! after opening is the portable store logic in [`crate::store`].

use std::cell::{Cell, RefCell};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use turkform_model::{Target, UnixTime};

use crate::StateError;
use crate::db::Db;
use crate::schema::{self, Identity, SCHEMA_VERSION};
use crate::store::{Backend, OpenMode, StateStore};

/// How long a writer waits for another connection's transaction (SQLite's own lock) before
/// failing. The apply lock keeps writers apart; this only covers short overlaps such as a
/// `status` reading while `apply` commits.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn open(path: &Path, target: Target, mode: OpenMode) -> Result<StateStore, StateError> {
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
            backend: Backend::Sqlite,
            conn: RefCell::new(None),
            read_path: Cell::new(ReadPath::Shared),
            lineage: String::new(),
            version: SCHEMA_VERSION,
            lock_watch: Default::default(),
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
    // SQLite judges the file before it is opened for writing, through a read-only connection
    // that sees what a crashed writer left in the WAL (pages the main file may not have yet).
    {
        let judge = match FileStamp::of(path) {
            Some(_) => open_direct(path)?,
            None => open_shared_read_only(path)?,
        };
        schema::identify(&judge, path)?;
    }
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
        backend: Backend::Sqlite,
        conn: RefCell::new(Some(Db::Sqlite(conn))),
        read_path: Cell::new(ReadPath::Shared),
        lineage,
        version: SCHEMA_VERSION,
        lock_watch: Default::default(),
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
pub(crate) enum ReadPath {
    Shared,
    Direct(FileStamp),
}

/// What must not change while a direct read runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

impl FileStamp {
    /// `None` when a `-wal` or `-journal` exists (a writer is active, or one crashed and left
    /// changes that only SQLite's normal path will see).
    pub(crate) fn of(path: &Path) -> Option<FileStamp> {
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
            backend: Backend::Sqlite,
            conn: RefCell::new(Some(Db::Sqlite(conn))),
            read_path: Cell::new(read_path),
            lineage,
            version,
            lock_watch: Default::default(),
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
pub(crate) fn open_shared_read_only(path: &Path) -> Result<Connection, StateError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| classify(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| classify(path, e))?;
    read_cache(&conn, path)?;
    Ok(conn)
}

/// Page cache of a read-only connection, in KiB (SQLite's default is 2 MiB). An export walks
/// the assignments in item order and looks up each one's row and HIT: with the default cache
/// nearly every lookup is a `pread` of a page read moments before, and the system time of a
/// 1,000,000-row export exceeded its user time.
const READ_CACHE_KIB: i64 = 32 * 1024;

fn read_cache(conn: &Connection, path: &Path) -> Result<(), StateError> {
    conn.pragma_update(None, "cache_size", -READ_CACHE_KIB)
        .map_err(|e| classify(path, e))
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
    let conn = Connection::open_with_flags(
        &uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| classify(path, e))?;
    read_cache(&conn, path)?;
    Ok(conn)
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
