//! PostgreSQL as a state backend: where the state is (a `postgres://` URL and its `?schema=`),
//! how to connect (password from the URL, `PGPASSWORD` or `~/.pgpass`; TLS per `sslmode`),
//! and the apply lock as a session-level advisory lock.
//!
//! The password is kept only inside the driver's configuration: every message, log line and
//! `Debug` shows [`PgLocation::redacted`], which has no password in it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use turkform_model::Target;

use crate::StateError;
use crate::db::{DbError, PgConn};
use crate::lock::{LockInfo, LockKind};

/// The schema used when the URL has no `?schema=`.
pub const DEFAULT_SCHEMA: &str = "turkform";

/// Whether a `state` setting names a PostgreSQL state rather than a file.
pub fn is_url(state: &str) -> bool {
    let lower = state.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// A parsed `postgres://` state location.
#[derive(Clone)]
pub struct PgLocation {
    config: tokio_postgres::Config,
    schema: String,
    tls: TlsMode,
    /// The PEM certificates of `sslrootcert`, read when the URL is parsed: the only roots
    /// trusted when given (as in libpq), instead of the system's.
    roots: Option<Vec<u8>>,
    redacted: String,
}

impl std::fmt::Debug for PgLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TlsMode {
    Disable,
    /// TLS when the server offers it, no check of its certificate (`allow` too).
    Prefer,
    /// TLS or nothing; the certificate is checked only against an `sslrootcert` given (as
    /// libpq does when a root certificate file exists), never its host name.
    Require,
    /// TLS, the certificate chain checked against the trusted roots, not its host name.
    VerifyCa,
    /// TLS, the chain and the host name (the URL's host must be one the certificate names).
    VerifyFull,
}

impl PgLocation {
    /// Parses `postgres://user[:password]@host[:port]/db[?schema=..&sslmode=..]`. The error
    /// never contains the URL (it may hold a password).
    pub fn parse(text: &str) -> Result<PgLocation, StateError> {
        let bad = |detail: &str| StateError::BadLocation {
            detail: detail.to_owned(),
        };
        let url = url::Url::parse(text.trim())
            .map_err(|e| bad(&format!("it is not a valid URL ({e})")))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(bad("the scheme must be postgres:// or postgresql://"));
        }
        let mut schema = DEFAULT_SCHEMA.to_owned();
        let mut tls = TlsMode::Prefer;
        let mut roots = None;
        let mut system_roots = false;
        let mut kept = Vec::new();
        for (key, value) in url.query_pairs() {
            match &*key {
                "schema" => schema = value.into_owned(),
                "sslmode" => {
                    tls = match &*value {
                        "disable" => TlsMode::Disable,
                        "allow" | "prefer" => TlsMode::Prefer,
                        "require" => TlsMode::Require,
                        "verify-ca" => TlsMode::VerifyCa,
                        "verify-full" => TlsMode::VerifyFull,
                        other => {
                            return Err(bad(&format!(
                                "sslmode `{other}` is not one of disable, allow, prefer, \
                                 require, verify-ca, verify-full"
                            )));
                        }
                    }
                }
                "password" => return Err(bad("put the password in PGPASSWORD or ~/.pgpass")),
                // libpq 16's `system`: the system's roots, for verify-full only.
                "sslrootcert" if value == "system" => system_roots = true,
                "sslrootcert" => roots = Some(read_roots(&value).map_err(|e| bad(&e))?),
                "sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir" => {
                    return Err(bad(&format!(
                        "`{key}` is not supported: turkform checks the server's certificate \
                         (sslmode=verify-ca or verify-full, sslrootcert) but presents no client \
                         certificate and reads no revocation list"
                    )));
                }
                _ => kept.push((key.into_owned(), value.into_owned())),
            }
        }
        if system_roots && tls != TlsMode::VerifyFull {
            return Err(bad(
                "sslrootcert=system needs sslmode=verify-full (as in libpq)",
            ));
        }
        if schema.is_empty() || schema.len() > 63 || schema.contains('\0') {
            return Err(bad("the schema name must be 1 to 63 characters"));
        }
        // What the driver gets: the URL without our own parameters (it refuses unknown ones).
        let mut driver_url = url.clone();
        driver_url.set_query(None);
        if !kept.is_empty() {
            driver_url.query_pairs_mut().extend_pairs(kept.iter());
        }
        let mut config: tokio_postgres::Config = driver_url
            .as_str()
            .parse()
            .map_err(|e: tokio_postgres::Error| bad(&format!("the driver refused it ({e})")))?;
        if config.get_user().is_none() {
            let user = std::env::var("PGUSER")
                .ok()
                .filter(|u| !u.is_empty())
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "postgres".to_owned());
            config.user(&user);
        }
        if config.get_dbname().is_none() {
            let db = config.get_user().unwrap_or("postgres").to_owned();
            config.dbname(&db);
        }
        if config.get_hosts().is_empty() {
            config.host("localhost");
        }
        config.ssl_mode(match tls {
            TlsMode::Disable => tokio_postgres::config::SslMode::Disable,
            TlsMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        });
        config.connect_timeout(Duration::from_secs(10));
        if config.get_application_name().is_none() {
            config.application_name("turkform");
        }
        if config.get_password().is_none()
            && let Some(password) = find_password(&config)
        {
            config.password(password);
        }
        let mut shown = url;
        let _ = shown.set_password(None);
        Ok(PgLocation {
            config,
            schema,
            tls,
            roots,
            redacted: shown.to_string(),
        })
    }

    /// The URL with any password removed: the only form that is ever shown.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The schema as a quoted SQL identifier.
    pub(crate) fn schema_ident(&self) -> String {
        format!("\"{}\"", self.schema.replace('"', "\"\""))
    }

    /// A new session, with `search_path` set to the state's schema.
    pub(crate) fn connect(&self) -> Result<PgConn, StateError> {
        let config = self.config.clone();
        let tls = self.tls;
        let roots = self.roots.clone();
        let (sender, receiver) = std::sync::mpsc::channel();
        let ended = Arc::new(AtomicBool::new(false));
        let ended_by_thread = ended.clone();
        // The connection task lives on its own thread with its own small runtime, so that the
        // store works the same from plain code and from inside the executor's runtime.
        std::thread::Builder::new()
            .name("turkform-pg".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = sender.send(Err(e.to_string()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    macro_rules! drive {
                        ($connect:expr) => {
                            match $connect.await {
                                Ok((client, connection)) => {
                                    let _ = sender.send(Ok(client));
                                    if let Err(e) = connection.await {
                                        tracing::debug!(error = %e, "PostgreSQL connection ended");
                                    }
                                    ended_by_thread.store(true, Ordering::SeqCst);
                                }
                                Err(e) => {
                                    let _ = sender.send(Err(with_causes(&e)));
                                }
                            }
                        };
                    }
                    match tls {
                        TlsMode::Disable => drive!(config.connect(tokio_postgres::NoTls)),
                        mode => match tls_connector(mode, roots.as_deref()) {
                            Ok(c) => drive!(config.connect(c)),
                            Err(e) => {
                                let _ = sender.send(Err(e));
                            }
                        },
                    }
                });
            })
            .map_err(|e| self.unreachable(e.to_string()))?;
        let client = receiver
            .recv()
            .map_err(|_| self.unreachable("the connection thread stopped".to_owned()))?
            .map_err(|e| self.unreachable(e))?;
        let mut conn = PgConn::new(client, ended);
        conn.batch(&format!(
            "SET search_path TO {}; SET client_min_messages TO warning",
            self.schema_ident()
        ))
        .map_err(|e| self.error(e))?;
        Ok(conn)
    }

    fn unreachable(&self, detail: String) -> StateError {
        StateError::Unreachable {
            location: self.redacted.clone(),
            detail,
        }
    }

    /// A server error as a [`StateError`] naming the redacted location.
    pub(crate) fn error(&self, e: DbError) -> StateError {
        match e {
            DbError::Decode(detail) => StateError::Corrupt {
                path: self.redacted.clone().into(),
                detail: format!("unreadable value: {detail}"),
            },
            DbError::Pg(e) if e.is_closed() || e.as_db_error().is_some_and(session_ended) => {
                StateError::ConnectionLost {
                    location: self.redacted.clone(),
                    detail: with_causes(&e),
                }
            }
            DbError::Pg(e) if e.as_db_error().is_none() => self.unreachable(with_causes(&e)),
            DbError::Pg(e) => {
                let detail = match e.as_db_error() {
                    Some(db) => format!("{}: {}", db.code().code(), db.message()),
                    None => e.to_string(),
                };
                StateError::Postgres {
                    location: self.redacted.clone(),
                    detail,
                }
            }
            DbError::Sqlite(e) => StateError::Sqlite(e),
        }
    }

    /// The advisory-lock key of one state: its schema, lineage and target. Never a fixed
    /// number, so two projects (two schemas, two lineages) never wait for each other.
    pub(crate) fn lock_key(&self, lineage: &str, target: Target) -> i64 {
        let digest = Sha256::digest(
            format!(
                "turkform-lock\0{}\0{lineage}\0{}",
                self.schema,
                target.as_str()
            )
            .as_bytes(),
        );
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(bytes)
    }
}

/// Whether the server ended the session: shut down (`57P01`, `pg_ctl stop`/`restart`, or
/// `pg_terminate_backend`), crashed (`57P02`), or is still starting up (`57P03`).
fn session_ended(e: &tokio_postgres::error::DbError) -> bool {
    use tokio_postgres::error::SqlState;
    [
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
    ]
    .contains(e.code())
}

/// An error with its causes ("error connecting to server: Connection refused"). The driver's
/// messages never contain the password.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // OpenSSL's causes repeat what the error already quotes.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The TLS client for `mode`, with libpq's rules: `prefer` and `require` encrypt without
/// checking who answers (`require` checks the chain when the URL names an `sslrootcert`);
/// `verify-ca` checks the chain; `verify-full` the chain and the host name. The roots are
/// `sslrootcert`'s certificates alone when given, else OpenSSL's defaults (the system's, or
/// `SSL_CERT_FILE` / `SSL_CERT_DIR`).
fn tls_connector(
    mode: TlsMode,
    roots: Option<&[u8]>,
) -> Result<postgres_native_tls::MakeTlsConnector, String> {
    let mut builder = native_tls::TlsConnector::builder();
    let check_chain = match mode {
        TlsMode::Require => roots.is_some(),
        TlsMode::VerifyCa | TlsMode::VerifyFull => true,
        TlsMode::Disable | TlsMode::Prefer => false,
    };
    builder.danger_accept_invalid_certs(!check_chain);
    builder.danger_accept_invalid_hostnames(mode != TlsMode::VerifyFull);
    if let Some(pem) = roots {
        builder.disable_built_in_roots(true);
        let certificates = native_tls::Certificate::stack_from_pem(pem)
            .map_err(|e| format!("cannot read the sslrootcert certificates: {e}"))?;
        for certificate in certificates {
            builder.add_root_certificate(certificate);
        }
    }
    builder
        .build()
        .map(postgres_native_tls::MakeTlsConnector::new)
        .map_err(|e| format!("cannot set up TLS: {e}"))
}

/// The certificates of an `sslrootcert` file, checked to hold at least one.
fn read_roots(path: &str) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read sslrootcert `{path}`: {e}"))?;
    match native_tls::Certificate::stack_from_pem(&pem) {
        Ok(certificates) if !certificates.is_empty() => Ok(pem),
        Ok(_) => Err(format!("sslrootcert `{path}` holds no PEM certificate")),
        Err(e) => Err(format!("sslrootcert `{path}` is not PEM certificates: {e}")),
    }
}

/// The password libpq would use when the URL has none: `PGPASSWORD`, then the first matching
/// line of `PGPASSFILE` or `~/.pgpass` (`host:port:database:user:password`, `*` matching
/// anything, `\` escaping `:` and `\`). The driver does neither itself.
fn find_password(config: &tokio_postgres::Config) -> Option<Vec<u8>> {
    if let Ok(p) = std::env::var("PGPASSWORD")
        && !p.is_empty()
    {
        return Some(p.into_bytes());
    }
    let file = std::env::var_os("PGPASSFILE")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pgpass")))?;
    let text = std::fs::read_to_string(file).ok()?;
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(_)) => "localhost".to_owned(),
        None => "localhost".to_owned(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let db = config.get_dbname().unwrap_or_default();
    let user = config.get_user().unwrap_or_default();
    pgpass_lookup(&text, &host, &port, db, user).map(String::into_bytes)
}

pub(crate) fn pgpass_lookup(
    text: &str,
    host: &str,
    port: &str,
    db: &str,
    user: &str,
) -> Option<String> {
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(next) = chars.next() {
                        field.push(next);
                    }
                }
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
                c => field.push(c),
            }
        }
        fields.push(field);
        if fields.len() != 5 {
            continue;
        }
        let matches = |pattern: &str, value: &str| pattern == "*" || pattern == value;
        if matches(&fields[0], host)
            && matches(&fields[1], port)
            && matches(&fields[2], db)
            && matches(&fields[3], user)
        {
            return fields.pop();
        }
    }
    None
}

/// How long to sleep between attempts while waiting for a holder.
const POLL: Duration = Duration::from_millis(50);

/// The held advisory lock: its own session, so that the lock lives exactly as long as this
/// value or the process (a killed holder's connection drops and the server releases it).
pub(crate) struct PgLock {
    conn: PgConn,
    key: i64,
    watch: Arc<LockWatch>,
}

/// Whether a held lock's session is still there. The store keeps it weakly: once the
/// [`PgLock`] is dropped (released on purpose) the store stops asking.
pub(crate) struct LockWatch {
    ended: Arc<AtomicBool>,
}

impl LockWatch {
    /// The lock's session ended while the lock was meant to be held: the server has released
    /// it and anyone may hold it now.
    pub fn lost(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }
}

impl PgLock {
    pub fn watch(&self) -> std::sync::Weak<LockWatch> {
        Arc::downgrade(&self.watch)
    }

    fn release(&mut self) -> Result<(), DbError> {
        // The record first: once unlocked, the next holder's record must not be deleted.
        self.conn.query_opt(
            "DELETE FROM meta WHERE key = ?1",
            &[&holder_key(self.key)],
            |_| Ok(()),
        )?;
        self.conn
            .query_opt("SELECT pg_advisory_unlock(?1)", &[&self.key], |_| Ok(()))?;
        Ok(())
    }

    fn backend(&mut self) -> Result<i64, DbError> {
        Ok(self
            .conn
            .query_opt("SELECT pg_backend_pid()::BIGINT", &[], |r| r.get::<i64>(0))?
            .unwrap_or(0))
    }
}

impl Drop for PgLock {
    fn drop(&mut self) {
        if let Err(e) = self.release() {
            // Closing the session releases the lock anyway.
            tracing::debug!(error = ?e, "could not release the advisory lock explicitly");
        }
    }
}

/// The `meta` row that names the holder of one lock (so that a waiter can say who it waits
/// for); lock rows are history, not state, and never bump a serial.
fn holder_key(key: i64) -> String {
    format!("lock:{key}")
}

#[derive(serde::Serialize, serde::Deserialize)]
struct HolderRecord {
    #[serde(flatten)]
    info: LockInfo,
    backend: i64,
}

pub(crate) fn acquire(
    location: &PgLocation,
    lineage: &str,
    target: Target,
    command: &str,
    timeout: Duration,
    has_schema: bool,
) -> Result<(PgLock, LockInfo), StateError> {
    let key = location.lock_key(lineage, target);
    let deadline = Instant::now() + timeout;
    let mut conn = location.connect()?;
    let err = |e| location.error(e);
    loop {
        let got = conn
            .query_opt(
                "SELECT CASE WHEN pg_try_advisory_lock(?1) THEN 1 ELSE 0 END::BIGINT",
                &[&key],
                |r| Ok(r.get::<i64>(0)? == 1),
            )
            .map_err(err)?
            .unwrap_or(false);
        if got {
            let info = LockInfo::current(command);
            let watch = Arc::new(LockWatch {
                ended: conn.ended(),
            });
            // The lock's session is idle for the whole run: a server that ends idle sessions
            // (`idle_session_timeout`, PostgreSQL 14+) must not end this one. Older servers do
            // not know the setting, and need nothing.
            if let Err(e) = conn.batch("SET idle_session_timeout = 0") {
                tracing::debug!(error = ?e, "could not turn idle_session_timeout off");
            }
            let mut lock = PgLock { conn, key, watch };
            if has_schema {
                let backend = lock.backend().map_err(err)?;
                let record = serde_json::to_string(&HolderRecord {
                    info: info.clone(),
                    backend,
                })
                .unwrap_or_default();
                lock.conn
                    .query_opt(
                        "INSERT INTO meta (key, value) VALUES (?1, ?2)
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        &[&holder_key(key), &record],
                        |_| Ok(()),
                    )
                    .map_err(err)?;
            }
            return Ok((lock, info));
        }
        if Instant::now() >= deadline {
            let record = if has_schema {
                read_holder(&mut conn, key).map_err(err)?
            } else {
                None
            };
            let session = record.as_ref().map(|r| r.backend).filter(|pid| *pid > 0);
            return Err(StateError::LockHeld {
                holder: record.map(|r| r.info).unwrap_or_else(|| LockInfo {
                    pid: 0,
                    host: "unknown".to_owned(),
                    since: turkform_model::UnixTime(0),
                    command: "another session of the PostgreSQL server".to_owned(),
                }),
                kind: LockKind::Postgres { session },
            });
        }
        std::thread::sleep(POLL.min(deadline.saturating_duration_since(Instant::now())));
    }
}

fn read_holder(conn: &mut PgConn, key: i64) -> Result<Option<HolderRecord>, DbError> {
    let raw = conn.query_opt(
        "SELECT value FROM meta WHERE key = ?1",
        &[&holder_key(key)],
        |r| r.get::<String>(0),
    )?;
    Ok(raw.and_then(|text| serde_json::from_str::<HolderRecord>(&text).ok()))
}

/// `state force-unlock` on PostgreSQL: the server releases a dead session's lock by itself, so
/// only a stale record can be cleared; a live session still holding the lock is refused.
pub(crate) fn force_unlock(
    location: &PgLocation,
    lineage: &str,
    target: Target,
) -> Result<Option<LockInfo>, StateError> {
    let key = location.lock_key(lineage, target);
    let mut conn = location.connect()?;
    let err = |e| location.error(e);
    let previous = read_holder(&mut conn, key).map_err(err)?.map(|r| r.info);
    drop(conn);
    let mut lock = match acquire(
        location,
        lineage,
        target,
        "turkform state force-unlock",
        Duration::ZERO,
        false,
    ) {
        Ok((lock, _)) => lock,
        Err(StateError::LockHeld { holder, kind }) => {
            return Err(StateError::LockHeld {
                holder: previous.unwrap_or(holder),
                kind,
            });
        }
        Err(e) => return Err(e),
    };
    lock.conn
        .query_opt(
            "DELETE FROM meta WHERE key = ?1",
            &[&holder_key(key)],
            |_| Ok(()),
        )
        .map_err(err)?;
    drop(lock);
    Ok(previous)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_postgres_urls_are_urls() {
        assert!(is_url("postgres://u@h/db"));
        assert!(is_url("postgresql://u@h/db?schema=x"));
        assert!(!is_url("state/turkform.db"));
        assert!(!is_url("postgres.db"));
    }

    #[test]
    fn the_password_is_never_in_the_shown_location() {
        let loc = PgLocation::parse(
            "postgres://alice:s3cr%21t@db.example:6543/lab?schema=proj&sslmode=require",
        )
        .unwrap();
        assert_eq!(
            loc.redacted(),
            "postgres://alice@db.example:6543/lab?schema=proj&sslmode=require"
        );
        assert!(!format!("{loc:?}").contains("s3cr"));
        assert_eq!(loc.schema(), "proj");
        assert_eq!(loc.config.get_password(), Some(&b"s3cr!t"[..]));
        assert_eq!(loc.tls, TlsMode::Require);
    }

    #[test]
    fn sslmodes_and_tls_files_follow_libpq_or_are_refused_by_name() {
        let mode = |q: &str| PgLocation::parse(&format!("postgres://u@h/db?{q}")).map(|l| l.tls);
        assert_eq!(mode("sslmode=verify-ca").unwrap(), TlsMode::VerifyCa);
        assert_eq!(mode("sslmode=verify-full").unwrap(), TlsMode::VerifyFull);
        assert_eq!(mode("sslmode=allow").unwrap(), TlsMode::Prefer);
        assert_eq!(mode("").unwrap(), TlsMode::Prefer);
        for key in ["sslcert", "sslkey", "sslcrl"] {
            let err = mode(&format!("{key}=/x.pem")).unwrap_err().to_string();
            assert!(err.contains(&format!("`{key}` is not supported")), "{err}");
        }
        let err = mode("sslmode=require&sslrootcert=system")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sslrootcert=system needs sslmode=verify-full"),
            "{err}"
        );
        assert_eq!(
            mode("sslmode=verify-full&sslrootcert=system").unwrap(),
            TlsMode::VerifyFull
        );
        let err = mode("sslrootcert=/nonexistent.pem")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot read sslrootcert `/nonexistent.pem`"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_url_error_does_not_echo_it() {
        let err = PgLocation::parse("postgres://alice:hunter2@h/db?sslmode=sometimes").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn pgpass_matches_like_libpq() {
        let text = "# comment\nother:5432:*:*:no\nh:*:db:u:pa\\:ss\n*:*:*:*:fallback\n";
        assert_eq!(
            pgpass_lookup(text, "h", "5432", "db", "u").as_deref(),
            Some("pa:ss")
        );
        assert_eq!(
            pgpass_lookup(text, "x", "1", "y", "z").as_deref(),
            Some("fallback")
        );
        assert_eq!(pgpass_lookup("h:1:d:u:p\n", "h", "2", "d", "u"), None);
    }

    #[test]
    fn lock_keys_differ_by_schema_lineage_and_target() {
        let a = PgLocation::parse("postgres://u@h/db?schema=a").unwrap();
        let b = PgLocation::parse("postgres://u@h/db?schema=b").unwrap();
        let k = a.lock_key("l1", Target::Sim);
        assert_ne!(k, b.lock_key("l1", Target::Sim));
        assert_ne!(k, a.lock_key("l2", Target::Sim));
        assert_ne!(k, a.lock_key("l1", Target::Sandbox));
        assert_eq!(k, a.lock_key("l1", Target::Sim));
    }
}
