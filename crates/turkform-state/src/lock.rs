//! The apply lock of a state file (PostgreSQL's is in [`crate::pg`]): `flock(2)` on `<state>.lock`, held through an open file for the lock's whole
//! lifetime. The kernel drops the lock the moment its holder dies (SIGKILL, OOM, power loss),
//! so a dead holder never blocks the next run. The holder's pid, host, start time and command
//! are written into the file only so that a waiting run can say who it is waiting for.
//!
//! The record also guards the one case flock cannot: a state directory shared between hosts
//! where the filesystem does not carry locks across them. A record left by *another* host is
//! respected until `force_unlock`, because from here we cannot tell whether that host is alive;
//! a record left by a dead process on *this* host is stale and simply taken over.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use turkform_model::UnixTime;

use crate::StateError;

/// Who holds the lock, as recorded in the lock file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub pid: u32,
    pub host: String,
    pub since: UnixTime,
    /// The command line, so that "locked by `turkform apply`" tells the user what to wait for.
    pub command: String,
}

impl LockInfo {
    /// A record for this process.
    pub fn current(command: &str) -> LockInfo {
        LockInfo {
            pid: std::process::id(),
            host: hostname(),
            since: UnixTime::now(),
            command: command.to_owned(),
        }
    }
}

/// The kind of lock a [`StateError::LockHeld`] is about. It decides what the user can do
/// about a holder that is gone, so the binary's hint depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// `flock(2)` on `<state>.lock`, with the holder also recorded in the file: a record left
    /// by another host (which may be alive) stays until `state force-unlock`.
    File,
    /// A session-level PostgreSQL advisory lock: the server releases it the moment the
    /// holder's session ends, so nothing ever needs force-unlocking. `session` is the holder's
    /// server process (`pg_backend_pid()`), when its record says.
    Postgres { session: Option<i64> },
}

/// The held apply lock; released (and its record cleared) on drop, or when the process dies
/// first (by the kernel for a file, by the server dropping the session for PostgreSQL).
#[derive(Debug)]
pub struct StateLock {
    held: Held,
    path: PathBuf,
    info: LockInfo,
    /// The state file's copy of the holder record, cleared on release (see [`acquire`]).
    db_record: Option<(rusqlite::Connection, String)>,
}

enum Held {
    File(File),
    /// Held only to be dropped: its own drop unlocks and ends the session.
    Pg(#[allow(dead_code)] crate::pg::PgLock),
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Held::File(file) => f.debug_tuple("File").field(file).finish(),
            Held::Pg(_) => f.write_str("PostgreSQL advisory lock"),
        }
    }
}

impl StateLock {
    pub(crate) fn postgres(lock: crate::pg::PgLock, info: LockInfo, location: String) -> StateLock {
        StateLock {
            held: Held::Pg(lock),
            path: PathBuf::from(location),
            info,
            db_record: None,
        }
    }

    /// The record written for this holder.
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// The lock file (`<state>.lock`), or for PostgreSQL the state's URL without a password.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        let Held::File(file) = &self.held else {
            // PgLock's own drop unlocks; closing its session would anyway.
            return;
        };
        if let Some((conn, record)) = &self.db_record
            && let Err(e) = conn.execute(
                "DELETE FROM meta WHERE key = ?1 AND value = ?2",
                [DB_HOLDER_KEY, record.as_str()],
            )
        {
            tracing::warn!(error = %e, "could not clear the lock record in the state file");
        }
        // Clear the record before letting go, so that nobody reads us as a stale holder. The
        // file stays: deleting a flock'ed file lets two processes lock two different inodes.
        if let Err(e) = file.set_len(0) {
            tracing::warn!(path = %self.path.display(), error = %e, "could not clear the lock record");
        }
        let _ = fs4::FileExt::unlock(file);
    }
}

/// `<state>.lock` next to the state file.
pub fn lock_path(state: &Path) -> PathBuf {
    let mut name = state.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    state.with_file_name(name)
}

/// How long to sleep between attempts while waiting for a holder.
const POLL: Duration = Duration::from_millis(50);

/// The `meta` key under which the state file itself names the lock's holder.
///
/// The lock file can be deleted while its lock is held (by hand, or by a cleanup job): the
/// next run would then lock a new file and run alongside the holder. The state file cannot be
/// deleted without losing the state, so the holder also records itself there, and a run that
/// got the file lock still refuses while that record names a live process (checked by pid and
/// process start time, so a reused pid does not count).
pub const DB_HOLDER_KEY: &str = "lock_holder";

#[derive(Serialize, Deserialize)]
struct DbHolder {
    #[serde(flatten)]
    info: LockInfo,
    /// `/proc/<pid>/stat` start time, to tell the holder from a later process with its pid.
    proc_start: Option<u64>,
}

pub(crate) fn acquire(
    state: &Path,
    command: &str,
    timeout: Duration,
    write_db_record: bool,
) -> Result<StateLock, StateError> {
    let path = lock_path(state);
    let deadline = Instant::now() + timeout;
    let mut file = open_lock_file(&path)?;
    loop {
        match fs4::FileExt::try_lock(&file) {
            Ok(()) if !is_at_path(&file, &path) => {
                // Deleted or replaced between our open and our lock: lock what is there now.
                let _ = fs4::FileExt::unlock(&file);
                file = open_lock_file(&path)?;
                continue;
            }
            Ok(()) => {
                let previous = read_record(&file);
                match previous {
                    Some(holder) if holder.host != hostname() => {
                        // Another host's record and no way to know whether it is alive.
                        let _ = fs4::FileExt::unlock(&file);
                        if Instant::now() >= deadline {
                            return Err(StateError::LockHeld {
                                holder,
                                kind: LockKind::File,
                            });
                        }
                    }
                    previous => {
                        let db = open_db(state);
                        if let Some(holder) = db.as_ref().and_then(live_db_holder) {
                            let _ = fs4::FileExt::unlock(&file);
                            if Instant::now() >= deadline {
                                return Err(StateError::LockHeld {
                                    holder,
                                    kind: LockKind::File,
                                });
                            }
                        } else {
                            if let Some(stale) = previous {
                                tracing::info!(
                                    pid = stale.pid,
                                    since = %stale.since,
                                    "taking over the lock of a holder that died"
                                );
                            }
                            let db = if write_db_record { db } else { None };
                            return write_record(file, path, command, db);
                        }
                    }
                }
            }
            Err(fs4::TryLockError::WouldBlock) => {
                if Instant::now() >= deadline {
                    let holder = read_record(&file).unwrap_or_else(|| unknown_holder(&path));
                    return Err(StateError::LockHeld {
                        holder,
                        kind: LockKind::File,
                    });
                }
            }
            Err(fs4::TryLockError::Error(e)) => return Err(StateError::io(&path, e)),
        }
        std::thread::sleep(POLL.min(deadline.saturating_duration_since(Instant::now())));
    }
}

/// Whether `file` is still the file at `path` (same device and inode).
fn is_at_path(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

/// A connection to the state file for its holder record; `None` when there is no file yet
/// or it cannot be opened for writing (then the lock file alone guards it).
fn open_db(state: &Path) -> Option<rusqlite::Connection> {
    if !state.is_file() {
        return None;
    }
    let conn = rusqlite::Connection::open_with_flags(
        state,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ok()?;
    conn.busy_timeout(Duration::from_secs(10)).ok()?;
    Some(conn)
}

fn read_db_holder(conn: &rusqlite::Connection) -> Option<DbHolder> {
    let text: String = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [DB_HOLDER_KEY],
            |r| r.get(0),
        )
        .ok()?;
    serde_json::from_str(&text).ok()
}

/// The holder the state file names, if it may still be running: a live process on this host
/// (this very process included: another of its locks is still held), or any process on
/// another host (which cannot be checked from here; `force-unlock` removes it).
fn live_db_holder(conn: &rusqlite::Connection) -> Option<LockInfo> {
    let holder = read_db_holder(conn)?;
    if holder.info.host != hostname() {
        return Some(holder.info);
    }
    let alive = process_alive(holder.info.pid)
        && (holder.proc_start.is_none() || proc_start(holder.info.pid) == holder.proc_start);
    alive.then_some(holder.info)
}

/// The start time of a process (field 22 of `/proc/<pid>/stat`, in clock ticks since boot).
fn proc_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Removes a holder record. A lock held by a live process on this host is not broken (that
/// process is running; killing it is the user's decision); anything else is removed, including
/// the lock file itself when another host still holds it, so that the next run locks afresh.
pub(crate) fn force_unlock(state: &Path) -> Result<Option<LockInfo>, StateError> {
    let path = lock_path(state);
    let file = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(classify_open(&path, e)),
    };
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => {
            let mut previous = read_record(&file);
            if let Some(conn) = open_db(state) {
                if let Some(holder) = read_db_holder(&conn) {
                    let local_alive = holder.info.host == hostname()
                        && holder.info.pid != std::process::id()
                        && live_db_holder(&conn).is_some();
                    if local_alive {
                        let _ = fs4::FileExt::unlock(&file);
                        return Err(StateError::LockHeld {
                            holder: holder.info,
                            kind: LockKind::File,
                        });
                    }
                    let _ = conn.execute("DELETE FROM meta WHERE key = ?1", [DB_HOLDER_KEY]);
                    previous = previous.or(Some(holder.info));
                }
            }
            file.set_len(0).map_err(|e| StateError::io(&path, e))?;
            file.sync_all().map_err(|e| StateError::io(&path, e))?;
            let _ = fs4::FileExt::unlock(&file);
            Ok(previous)
        }
        Err(fs4::TryLockError::WouldBlock) => {
            let holder = read_record(&file).unwrap_or_else(|| unknown_holder(&path));
            if holder.host == hostname() && process_alive(holder.pid) {
                return Err(StateError::LockHeld {
                    holder,
                    kind: LockKind::File,
                });
            }
            std::fs::remove_file(&path).map_err(|e| StateError::io(&path, e))?;
            Ok(Some(holder))
        }
        Err(fs4::TryLockError::Error(e)) => Err(StateError::io(&path, e)),
    }
}

fn open_lock_file(path: &Path) -> Result<File, StateError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| classify_open(path, e))
}

fn classify_open(path: &Path, e: std::io::Error) -> StateError {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            StateError::ReadOnly {
                path: path.to_path_buf(),
                detail: format!("cannot create the lock file: {e}"),
            }
        }
        _ => StateError::io(path, e),
    }
}

fn write_record(
    mut file: File,
    path: PathBuf,
    command: &str,
    db: Option<rusqlite::Connection>,
) -> Result<StateLock, StateError> {
    let info = LockInfo::current(command);
    let text = serde_json::to_string(&info).unwrap_or_default();
    let result = file
        .set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(text.as_bytes()))
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_data());
    if let Err(e) = result {
        let _ = fs4::FileExt::unlock(&file);
        return Err(StateError::io(&path, e));
    }
    let db_record = db.and_then(|conn| {
        let record = serde_json::to_string(&DbHolder {
            info: info.clone(),
            proc_start: proc_start(std::process::id()),
        })
        .ok()?;
        match conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [DB_HOLDER_KEY, record.as_str()],
        ) {
            Ok(_) => Some((conn, record)),
            Err(e) => {
                // Not a turkform file yet, or not writable: the lock file alone guards it.
                tracing::debug!(error = %e, "could not record the lock holder in the state file");
                None
            }
        }
    });
    Ok(StateLock {
        held: Held::File(file),
        path,
        info,
        db_record,
    })
}

/// The holder record, if the file has a readable one. A holder may be between truncating and
/// writing it; that brief window reads as "unknown holder", which is only used in a message.
fn read_record(file: &File) -> Option<LockInfo> {
    let mut text = String::new();
    let mut reader = file;
    reader.seek(SeekFrom::Start(0)).ok()?;
    reader.take(64 * 1024).read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

fn unknown_holder(path: &Path) -> LockInfo {
    LockInfo {
        pid: 0,
        host: "unknown".to_owned(),
        since: UnixTime(0),
        command: format!("an unknown process (no record in `{}`)", path.display()),
    }
}

fn process_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    if !proc.is_dir() {
        // Without /proc we cannot tell; assume alive rather than break a live lock.
        return true;
    }
    proc.join(pid.to_string()).exists()
}

/// This machine's name, for lock records and the run log. Read from the kernel where it is
/// exposed as a file, so that no `unsafe` FFI is needed.
pub fn hostname() -> String {
    for file in ["/proc/sys/kernel/hostname", "/etc/hostname"] {
        if let Ok(text) = std::fs::read_to_string(file) {
            let name = text.trim();
            if !name.is_empty() {
                return name.to_owned();
            }
        }
    }
    for var in ["HOSTNAME", "COMPUTERNAME"] {
        if let Ok(name) = std::env::var(var) {
            if !name.is_empty() {
                return name;
            }
        }
    }
    "localhost".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_file_sits_next_to_the_state_file() {
        assert_eq!(
            lock_path(Path::new("state/turkform.db")),
            PathBuf::from("state/turkform.db.lock")
        );
    }

    #[test]
    fn a_record_left_by_another_host_blocks_until_forced() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.db");
        let other = LockInfo {
            pid: 42,
            host: "gone-host".to_owned(),
            since: UnixTime(1_700_000_000),
            command: "turkform apply".to_owned(),
        };
        std::fs::write(lock_path(&state), serde_json::to_string(&other).unwrap()).unwrap();
        match acquire(&state, "turkform apply", Duration::ZERO, true) {
            Err(StateError::LockHeld {
                holder,
                kind: LockKind::File,
            }) => assert_eq!(holder, other),
            other => panic!("expected LockHeld, got {other:?}"),
        }
        assert_eq!(force_unlock(&state).unwrap(), Some(other));
        let lock = acquire(&state, "turkform apply", Duration::ZERO, true).unwrap();
        assert_eq!(lock.info().pid, std::process::id());
    }

    #[test]
    fn a_record_left_by_a_dead_process_on_this_host_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.db");
        let dead = LockInfo {
            pid: u32::MAX,
            host: hostname(),
            since: UnixTime(1),
            command: "turkform apply".to_owned(),
        };
        std::fs::write(lock_path(&state), serde_json::to_string(&dead).unwrap()).unwrap();
        let lock = acquire(&state, "turkform refresh", Duration::ZERO, true).unwrap();
        assert_eq!(lock.info().command, "turkform refresh");
        drop(lock);
        assert_eq!(std::fs::read(lock_path(&state)).unwrap(), b"");
    }
}
