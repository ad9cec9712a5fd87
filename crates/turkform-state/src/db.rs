//! The connection boundary between the store logic and a database engine.
//!
//! Every query of [`crate::StateStore`] is written once, in portable SQL with `?1`, `?2`, ...
//! placeholders and typed parameters ([`Param`]), and runs on either backend through [`Db`]
//! (a connection) and [`Tx`] (a transaction on it). For PostgreSQL the placeholders become
//! `$1`, `$2`, ... and every statement is prepared once per connection.
//!
//! Portable SQL here means: integers are `i64` on the way in and out (`BIGINT` columns on
//! PostgreSQL), text is `&str`/`String`, `INSERT ... RETURNING id` instead of a rowid call,
//! `ON CONFLICT (...) DO UPDATE SET col = excluded.col` upserts, and no engine-specific
//! functions. DDL is not portable and lives per backend in [`crate::schema`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::task::{Context, Poll, Wake, Waker};

use futures_util::StreamExt;
use tokio_postgres::types::{IsNull, ToSql, Type};

/// A failure of the engine, or a stored value that does not decode.
#[derive(Debug)]
pub(crate) enum DbError {
    Sqlite(rusqlite::Error),
    Pg(tokio_postgres::Error),
    /// A stored value that cannot be what the schema says: the state is corrupt.
    Decode(String),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sqlite(e)
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        DbError::Pg(e)
    }
}

/// One parameter value, as both engines bind it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Value<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
}

/// Something that binds as a parameter. Implemented for the integer and text types the store
/// uses, and their `Option`s (`None` binds NULL).
pub(crate) trait Param {
    fn value(&self) -> Value<'_>;
}

macro_rules! int_param {
    ($($t:ty),*) => {$(
        impl Param for $t {
            fn value(&self) -> Value<'_> {
                Value::Int(Some(i64::from(*self)))
            }
        }
        impl Param for Option<$t> {
            fn value(&self) -> Value<'_> {
                Value::Int(self.map(i64::from))
            }
        }
    )*};
}
int_param!(i64, i32, u32);

impl Param for u64 {
    fn value(&self) -> Value<'_> {
        Value::Int(Some(i64::try_from(*self).unwrap_or(i64::MAX)))
    }
}

impl Param for Option<u64> {
    fn value(&self) -> Value<'_> {
        Value::Int(self.map(|v| i64::try_from(v).unwrap_or(i64::MAX)))
    }
}

impl Param for &str {
    fn value(&self) -> Value<'_> {
        Value::Text(Some(self))
    }
}

impl Param for String {
    fn value(&self) -> Value<'_> {
        Value::Text(Some(self))
    }
}

impl Param for Option<String> {
    fn value(&self) -> Value<'_> {
        Value::Text(self.as_deref())
    }
}

impl Param for Option<&str> {
    fn value(&self) -> Value<'_> {
        Value::Text(*self)
    }
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match *self {
            Value::Int(None) | Value::Text(None) => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Integer(v)),
            Value::Text(Some(t)) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
        })
    }
}

impl ToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match *self {
            // NULL fits any column (a copied row does not say which type its NULLs had).
            Value::Int(None) | Value::Text(None) => Ok(IsNull::Yes),
            Value::Int(v) => {
                if !<i64 as ToSql>::accepts(ty) {
                    return Err(format!("an integer parameter bound to a {ty} column").into());
                }
                v.to_sql(ty, out)
            }
            Value::Text(v) => {
                if !<&str as ToSql>::accepts(ty) {
                    return Err(format!("a text parameter bound to a {ty} column").into());
                }
                v.to_sql(ty, out)
            }
        }
    }

    fn accepts(ty: &Type) -> bool {
        <i64 as ToSql>::accepts(ty) || <&str as ToSql>::accepts(ty)
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A value read from one backend to be written to the other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Owned {
    Int(Option<i64>),
    Text(Option<String>),
}

impl Param for Owned {
    fn value(&self) -> Value<'_> {
        match self {
            Owned::Int(v) => Value::Int(*v),
            Owned::Text(v) => Value::Text(v.as_deref()),
        }
    }
}

/// A row being read, on either engine. Columns are read by index, as in the SQL.
pub(crate) enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Pg(&'a tokio_postgres::Row),
}

impl Row<'_> {
    fn int(&self, i: usize) -> Result<Option<i64>, DbError> {
        Ok(match self {
            Row::Sqlite(r) => r.get::<_, Option<i64>>(i)?,
            Row::Pg(r) => r.try_get::<_, Option<i64>>(i)?,
        })
    }

    fn text(&self, i: usize) -> Result<Option<String>, DbError> {
        Ok(match self {
            Row::Sqlite(r) => r.get::<_, Option<String>>(i)?,
            Row::Pg(r) => r.try_get::<_, Option<String>>(i)?,
        })
    }

    /// The column as whatever it holds (for copying rows between backends).
    pub fn owned(&self, i: usize) -> Result<Owned, DbError> {
        match self {
            Row::Sqlite(r) => Ok(match r.get_ref(i)? {
                rusqlite::types::ValueRef::Null => Owned::Int(None),
                rusqlite::types::ValueRef::Integer(v) => Owned::Int(Some(v)),
                rusqlite::types::ValueRef::Text(t) => Owned::Text(Some(
                    std::str::from_utf8(t)
                        .map_err(|e| DbError::Decode(format!("column {i}: {e}")))?
                        .to_owned(),
                )),
                other => {
                    return Err(DbError::Decode(format!(
                        "column {i} holds a {:?}, not an integer or text",
                        other.data_type()
                    )));
                }
            }),
            Row::Pg(r) => {
                let ty = r.columns()[i].type_();
                if <i64 as tokio_postgres::types::FromSql>::accepts(ty) {
                    Ok(Owned::Int(r.try_get(i)?))
                } else {
                    Ok(Owned::Text(r.try_get(i)?))
                }
            }
        }
    }

    /// The column as `T`; a NULL or out-of-range value where `T` allows none is a
    /// [`DbError::Decode`].
    pub fn get<T: FromDb>(&self, i: usize) -> Result<T, DbError> {
        T::from_db(self, i)
    }
}

/// A type a column can be read as.
pub(crate) trait FromDb: Sized {
    fn from_db(row: &Row<'_>, i: usize) -> Result<Self, DbError>;
}

fn required<T>(v: Option<T>, i: usize) -> Result<T, DbError> {
    v.ok_or_else(|| DbError::Decode(format!("column {i} is NULL")))
}

fn narrow<T: TryFrom<i64>>(v: i64, i: usize) -> Result<T, DbError> {
    T::try_from(v).map_err(|_| DbError::Decode(format!("column {i}: {v} is out of range")))
}

impl FromDb for i64 {
    fn from_db(row: &Row<'_>, i: usize) -> Result<Self, DbError> {
        required(row.int(i)?, i)
    }
}

impl FromDb for Option<i64> {
    fn from_db(row: &Row<'_>, i: usize) -> Result<Self, DbError> {
        row.int(i)
    }
}

impl FromDb for u32 {
    fn from_db(row: &Row<'_>, i: usize) -> Result<Self, DbError> {
        narrow(required(row.int(i)?, i)?, i)
    }
}

impl FromDb for Option<u32> {
    fn from_db(row: &Row<'_>, i: usize) -> Result<Self, DbError> {
        row.int(i)?.map(|v| narrow(v, i)).transpose()
    }
}

impl FromDb for u64 {
    fn from_db(row: &Row<'_>, i: usize) -> Result<Self, DbError> {
        narrow(required(row.int(i)?, i)?, i)
    }
}

impl FromDb for Option<u64> {
    fn from_db(row: &Row<'_>, i: usize) -> Result<Self, DbError> {
        row.int(i)?.map(|v| narrow(v, i)).transpose()
    }
}

impl FromDb for String {
    fn from_db(row: &Row<'_>, i: usize) -> Result<Self, DbError> {
        required(row.text(i)?, i)
    }
}

impl FromDb for Option<String> {
    fn from_db(row: &Row<'_>, i: usize) -> Result<Self, DbError> {
        row.text(i)
    }
}

/// A PostgreSQL connection: the client, its prepared statements, and the thread that drives
/// its socket.
pub(crate) struct PgConn {
    pub client: tokio_postgres::Client,
    statements: HashMap<String, tokio_postgres::Statement>,
    /// Set by the connection's thread once the session is over, for whatever reason.
    ended: Arc<AtomicBool>,
}

impl PgConn {
    pub fn new(client: tokio_postgres::Client, ended: Arc<AtomicBool>) -> PgConn {
        PgConn {
            client,
            statements: HashMap::new(),
            ended,
        }
    }

    /// The flag the connection's thread sets when the session ends.
    pub fn ended(&self) -> Arc<AtomicBool> {
        self.ended.clone()
    }

    /// Runs `sql` (one or more statements, no parameters) outside any explicit transaction.
    pub fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        block_on(self.client.batch_execute(sql))?;
        Ok(())
    }

    /// One query outside any explicit transaction (its own implicit one).
    pub fn query_opt<T>(
        &mut self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnOnce(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        let stmt = prepare(&self.client, &mut self.statements, sql)?;
        let values = values(params);
        let row = block_on(self.client.query_opt(&stmt, &pg_params(&values)))?;
        row.map(|r| f(&Row::Pg(&r))).transpose()
    }
}

/// A connection to one state database.
pub(crate) enum Db {
    Sqlite(rusqlite::Connection),
    Pg(PgConn),
}

impl Db {
    /// Runs `f` in a write transaction and commits only if it succeeds. On SQLite the
    /// transaction is IMMEDIATE (the write lock is taken up front, so two writers queue
    /// instead of failing with SQLITE_BUSY on upgrade).
    pub fn write<T, E: From<DbError>>(
        &mut self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        match self {
            Db::Sqlite(conn) => {
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(DbError::from)?;
                let mut tx = Tx::Sqlite(tx);
                let value = f(&mut tx)?;
                tx.commit()?;
                Ok(value)
            }
            Db::Pg(pg) => {
                let tx = block_on(pg.client.transaction()).map_err(DbError::from)?;
                let mut tx = Tx::Pg {
                    tx,
                    statements: &mut pg.statements,
                };
                let value = f(&mut tx)?;
                tx.commit()?;
                Ok(value)
            }
        }
    }

    /// Runs `f` in a read-only transaction: every query sees one consistent snapshot even
    /// while a writer commits.
    pub fn read<T, E: From<DbError>>(
        &mut self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        match self {
            Db::Sqlite(conn) => {
                let mut tx = Tx::Sqlite(conn.unchecked_transaction().map_err(DbError::from)?);
                let value = f(&mut tx)?;
                tx.commit()?;
                Ok(value)
            }
            Db::Pg(pg) => {
                let tx = block_on(
                    pg.client
                        .build_transaction()
                        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                        .read_only(true)
                        .start(),
                )
                .map_err(DbError::from)?;
                let mut tx = Tx::Pg {
                    tx,
                    statements: &mut pg.statements,
                };
                let value = f(&mut tx)?;
                tx.commit()?;
                Ok(value)
            }
        }
    }
}

/// A transaction on either engine. Dropped without [`Tx::commit`], it rolls back.
pub(crate) enum Tx<'a> {
    Sqlite(rusqlite::Transaction<'a>),
    Pg {
        tx: tokio_postgres::Transaction<'a>,
        statements: &'a mut HashMap<String, tokio_postgres::Statement>,
    },
}

impl Tx<'_> {
    /// Runs one statement; returns the number of rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[&dyn Param]) -> Result<u64, DbError> {
        let values = values(params);
        match self {
            Tx::Sqlite(tx) => {
                let n = tx
                    .prepare_cached(sql)?
                    .execute(rusqlite::params_from_iter(values.iter()))?;
                Ok(n as u64)
            }
            Tx::Pg { tx, statements } => {
                let stmt = prepare(tx.client(), statements, sql)?;
                Ok(block_on(tx.execute(&stmt, &pg_params(&values)))?)
            }
        }
    }

    /// Runs statements without parameters (DDL).
    pub fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        match self {
            Tx::Sqlite(tx) => Ok(tx.execute_batch(sql)?),
            Tx::Pg { tx, .. } => Ok(block_on(tx.batch_execute(sql))?),
        }
    }

    /// Runs a query and hands each row to `f`, in order, without collecting them first.
    pub fn query(
        &mut self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_>) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        let values = values(params);
        match self {
            Tx::Sqlite(tx) => {
                let mut stmt = tx.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(values.iter()))?;
                while let Some(r) = rows.next()? {
                    f(&Row::Sqlite(r))?;
                }
                Ok(())
            }
            Tx::Pg { tx, statements } => {
                let stmt = prepare(tx.client(), statements, sql)?;
                let stream = block_on(tx.query_raw(&stmt, values.iter()))?;
                let mut stream = std::pin::pin!(stream);
                while let Some(row) = block_on(stream.next()) {
                    f(&Row::Pg(&row?))?;
                }
                Ok(())
            }
        }
    }

    /// Runs a query whose result may be larger than memory, handing each row to `f` until it
    /// returns `false`. SQLite steps its cursor; PostgreSQL binds a server-side portal and
    /// fetches `chunk` rows at a time from it, so at most one chunk is held whatever the
    /// server has to send. Must run inside a transaction (a portal lives until its end).
    pub fn stream(
        &mut self,
        sql: &str,
        params: &[&dyn Param],
        chunk: i32,
        mut f: impl FnMut(&Row<'_>) -> Result<bool, DbError>,
    ) -> Result<(), DbError> {
        let values = values(params);
        match self {
            Tx::Sqlite(tx) => {
                let mut stmt = tx.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(values.iter()))?;
                while let Some(r) = rows.next()? {
                    if !f(&Row::Sqlite(r))? {
                        break;
                    }
                }
                Ok(())
            }
            Tx::Pg { tx, statements } => {
                let stmt = prepare(tx.client(), statements, sql)?;
                let portal = block_on(tx.bind(&stmt, &pg_params(&values)))?;
                let chunk = chunk.max(1);
                loop {
                    let rows = block_on(tx.query_portal(&portal, chunk))?;
                    for row in &rows {
                        if !f(&Row::Pg(row))? {
                            return Ok(());
                        }
                    }
                    if rows.len() < usize::try_from(chunk).unwrap_or(usize::MAX) {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// The first row of a query, if any, through `f`.
    pub fn query_opt<T>(
        &mut self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnOnce(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        let mut f = Some(f);
        let mut out = None;
        self.query(sql, params, |row| {
            if let Some(f) = f.take() {
                out = Some(f(row)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Every row of a query through `f`, collected.
    pub fn query_all<T>(
        &mut self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        let mut out = Vec::new();
        self.query(sql, params, |row| {
            out.push(f(row)?);
            Ok(())
        })?;
        Ok(out)
    }

    fn commit(self) -> Result<(), DbError> {
        match self {
            Tx::Sqlite(tx) => Ok(tx.commit()?),
            Tx::Pg { tx, .. } => Ok(block_on(tx.commit())?),
        }
    }
}

fn values<'a>(params: &'a [&'a dyn Param]) -> Vec<Value<'a>> {
    params.iter().map(|p| p.value()).collect()
}

fn pg_params<'a>(values: &'a [Value<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

/// The statement for `sql`, prepared once per connection.
fn prepare(
    client: &tokio_postgres::Client,
    statements: &mut HashMap<String, tokio_postgres::Statement>,
    sql: &str,
) -> Result<tokio_postgres::Statement, DbError> {
    if let Some(stmt) = statements.get(sql) {
        return Ok(stmt.clone());
    }
    let stmt = block_on(client.prepare(&pg_sql(sql)))?;
    statements.insert(sql.to_owned(), stmt.clone());
    Ok(stmt)
}

/// `?1` placeholders to PostgreSQL's `$1`. The store's SQL has no `?` in string literals.
pub(crate) fn pg_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Waits for a PostgreSQL client future on the calling thread.
///
/// The client's futures only exchange messages with the connection task, which runs on its
/// own thread (see [`crate::pg`]); so they need no runtime here, and this works the same
/// whether the caller is plain code or a worker of the executor's tokio runtime (where
/// entering another runtime would panic).
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollar_numbers_for_postgres() {
        assert_eq!(
            pg_sql("SELECT a FROM t WHERE x = ?1 AND y = ?12 AND z IS NULL"),
            "SELECT a FROM t WHERE x = $1 AND y = $12 AND z IS NULL"
        );
    }
}
