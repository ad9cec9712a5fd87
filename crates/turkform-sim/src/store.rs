//! Persistence: the world's entities as JSON rows in one SQLite table, written by a dedicated
//! thread with group commit. Requests hand their changed rows to the writer in the order the
//! world changed (the world lock is held while sending), the writer commits everything queued
//! in one transaction, and a request answers only once its sequence number is committed.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use rusqlite::{Connection, params};
use tokio::sync::watch;

use crate::SimError;
use crate::world::{Record, World};

struct Batch {
    seq: u64,
    records: Vec<Record>,
}

/// The writer's handle. Dropping it lets the writer thread finish what is queued and exit.
pub struct Store {
    /// The exclusive lock on `<db>.lock`, held as long as the store (see [`lock_database`]).
    _lock: std::fs::File,
    /// `None` once closing, which ends the writer's loop.
    sender: Option<mpsc::Sender<Batch>>,
    committed: watch::Receiver<u64>,
    failed: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    id   TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
";

fn connect(path: &Path) -> Result<Connection, SimError> {
    let db = |source| SimError::Database {
        path: path.to_owned(),
        source,
    };
    let conn = Connection::open(path).map_err(db)?;
    // WAL + NORMAL: a commit is durable against a process crash (what the drop-rate fault
    // models) and costs no fsync per transaction.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(db)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(db)?;
    conn.execute_batch(SCHEMA).map_err(db)?;
    Ok(conn)
}

/// `<db>.lock` beside the database.
fn lock_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

/// Locks the database for this simulator alone. The world lives in memory and the database
/// only receives its changes, so a second simulator on the same file (the embedded one of a
/// `turkform apply` and a `turkform sim serve --db`) would keep its own world and the two would
/// diverge. The OS releases the lock when the process ends, however it ends.
fn lock_database(path: &Path) -> Result<std::fs::File, SimError> {
    use std::io::{Read, Seek, Write};
    let lock_path = lock_path(path);
    let io = |what: &str, source| SimError::Io {
        what: format!("{what} `{}`", lock_path.display()),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| io("open the lock file", e))?;
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => {
            let command: Vec<String> = std::env::args().collect();
            let holder = format!("pid {}: `{}`", std::process::id(), command.join(" "));
            file.set_len(0).map_err(|e| io("write", e))?;
            file.write_all(holder.as_bytes())
                .map_err(|e| io("write", e))?;
            file.flush().map_err(|e| io("write", e))?;
            Ok(file)
        }
        Err(fs4::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.rewind();
            let _ = file.read_to_string(&mut holder);
            if holder.trim().is_empty() {
                holder = "a process that is still starting".to_owned();
            }
            Err(SimError::InUse {
                path: path.to_owned(),
                holder: holder.trim().to_owned(),
            })
        }
        Err(fs4::TryLockError::Error(e)) => Err(io("lock", e)),
    }
}

/// The virtual clock's offset from the real one (milliseconds) that the world in `path` holds,
/// read without loading the world or taking its lock (SQLite's WAL lets a reader in beside a
/// running simulator): what a command that does not talk to MTurk (`status`, `results`,
/// `report`) needs to agree on "now" with the simulator. 0 when there is no world there yet.
pub fn recorded_clock_offset_ms(path: &Path) -> Result<i64, SimError> {
    if !path.exists() {
        return Ok(0);
    }
    let db = |source| SimError::Database {
        path: path.to_owned(),
        source,
    };
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(db)?;
    let data: Option<String> =
        match conn.query_row("SELECT data FROM records WHERE kind = 'meta'", [], |r| {
            r.get(0)
        }) {
            Ok(d) => Some(d),
            Err(rusqlite::Error::QueryReturnedNoRows) => None,
            // A file created but not yet given its table.
            Err(rusqlite::Error::SqliteFailure(_, Some(m))) if m.contains("no such table") => None,
            Err(e) => return Err(db(e)),
        };
    let Some(data) = data else { return Ok(0) };
    let meta: crate::world::Meta =
        serde_json::from_str(&data).map_err(|source| SimError::Corrupt {
            path: path.to_owned(),
            kind: "meta".to_owned(),
            id: String::new(),
            source,
        })?;
    Ok(meta.clock_offset_ms)
}

/// Opens (or creates) the database, loads the world from it and starts the writer.
pub fn open(path: &Path) -> Result<(World, Store), SimError> {
    let lock = lock_database(path)?;
    let conn = connect(path)?;
    let mut world = World::default();
    {
        let db = |source| SimError::Database {
            path: path.to_owned(),
            source,
        };
        let mut stmt = conn
            .prepare("SELECT kind, id, data FROM records")
            .map_err(db)?;
        let mut rows = stmt.query([]).map_err(db)?;
        while let Some(row) = rows.next().map_err(db)? {
            let kind: String = row.get(0).map_err(db)?;
            let id: String = row.get(1).map_err(db)?;
            let data: String = row.get(2).map_err(db)?;
            world
                .load_record(&kind, &id, &data)
                .map_err(|source| SimError::Corrupt {
                    path: path.to_owned(),
                    kind: kind.clone(),
                    id: id.clone(),
                    source,
                })?;
        }
    }
    let (sender, receiver) = mpsc::channel::<Batch>();
    let (committed_tx, committed) = watch::channel(0u64);
    let failed = Arc::new(AtomicBool::new(false));
    let failed_writer = failed.clone();
    let thread = std::thread::Builder::new()
        .name("turkform-sim-writer".into())
        .spawn(move || writer(conn, receiver, committed_tx, failed_writer))
        .map_err(|source| SimError::Io {
            what: "start the database writer thread".into(),
            source,
        })?;
    Ok((
        world,
        Store {
            _lock: lock,
            sender: Some(sender),
            committed,
            failed,
            thread: Some(thread),
        },
    ))
}

fn writer(
    mut conn: Connection,
    receiver: mpsc::Receiver<Batch>,
    committed: watch::Sender<u64>,
    failed: Arc<AtomicBool>,
) {
    while let Ok(first) = receiver.recv() {
        let mut max_seq = first.seq;
        // Last write wins per row; the map keeps the batch small when one row changes often
        // (the account balance changes with every HIT).
        let mut rows: HashMap<(&'static str, String), Option<String>> = HashMap::new();
        let absorb = |batch: Batch, rows: &mut HashMap<_, _>| {
            for r in batch.records {
                rows.insert((r.kind, r.id), r.data);
            }
        };
        absorb(first, &mut rows);
        while let Ok(next) = receiver.try_recv() {
            max_seq = max_seq.max(next.seq);
            absorb(next, &mut rows);
        }
        let result = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            {
                let mut upsert = tx.prepare_cached(
                    "INSERT OR REPLACE INTO records (kind, id, data) VALUES (?1, ?2, ?3)",
                )?;
                let mut delete =
                    tx.prepare_cached("DELETE FROM records WHERE kind = ?1 AND id = ?2")?;
                for ((kind, id), data) in &rows {
                    match data {
                        Some(d) => upsert.execute(params![kind, id, d])?,
                        None => delete.execute(params![kind, id])?,
                    };
                }
            }
            tx.commit()
        })();
        if let Err(e) = result {
            tracing::error!(error = %e, "the simulator could not commit its world");
            failed.store(true, Ordering::SeqCst);
        }
        let _ = committed.send(max_seq);
    }
}

impl Store {
    /// Queues rows for commit under sequence number `seq` (increasing). Call with the world
    /// lock held so that the queue order is the order of changes.
    pub fn queue(&self, seq: u64, records: Vec<Record>) {
        if records.is_empty() {
            return;
        }
        let sent = self
            .sender
            .as_ref()
            .is_some_and(|s| s.send(Batch { seq, records }).is_ok());
        if !sent {
            self.failed.store(true, Ordering::SeqCst);
        }
    }

    /// Waits until everything up to `seq` is committed; false if the database failed.
    pub async fn committed(&self, seq: u64) -> bool {
        let mut rx = self.committed.clone();
        if rx.wait_for(|c| *c >= seq).await.is_err() {
            return false;
        }
        !self.failed.load(Ordering::SeqCst)
    }
}

impl Drop for Store {
    /// Lets the writer commit everything queued, then joins it, so that the file is closed
    /// when the world is gone (a restart on the same file then sees every change).
    fn drop(&mut self) {
        self.sender.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
