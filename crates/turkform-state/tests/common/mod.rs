//! What the store's test binaries share: where a test's state lives (a file, or a throwaway
//! PostgreSQL schema) and `on_both_backends!`, which runs one test body on each.
#![allow(dead_code)]

use std::path::PathBuf;

/// Where a test's state lives: a file in a fresh directory, or a fresh schema on the
/// PostgreSQL server of `TURKFORM_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/test`),
/// dropped after the test.
pub struct Loc {
    pub dir: tempfile::TempDir,
    pub pg: Option<PgSchema>,
}

pub struct PgSchema {
    pub base: String,
    pub schema: String,
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let _ = client.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ));
        }
    }
}

pub fn test_pg_base() -> String {
    std::env::var("TURKFORM_TEST_PG")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

impl Loc {
    pub fn sqlite() -> Loc {
        Loc {
            dir: tempfile::tempdir().unwrap(),
            pg: None,
        }
    }

    pub fn postgres() -> Loc {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let schema = format!(
            "tf_state_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        Loc {
            dir: tempfile::tempdir().unwrap(),
            pg: Some(PgSchema {
                base: test_pg_base(),
                schema,
            }),
        }
    }

    pub fn is_pg(&self) -> bool {
        self.pg.is_some()
    }

    /// What `StateStore::open` is given: the file, or the URL with `?schema=`.
    pub fn path(&self) -> PathBuf {
        match &self.pg {
            None => self.dir.path().join("state/s.db"),
            Some(pg) => {
                let sep = if pg.base.contains('?') { '&' } else { '?' };
                PathBuf::from(format!("{}{sep}schema={}", pg.base, pg.schema))
            }
        }
    }

    /// A second, unrelated state on the same backend.
    pub fn another(&self) -> Loc {
        if self.is_pg() {
            Loc::postgres()
        } else {
            Loc::sqlite()
        }
    }
}

/// Each named test, once on SQLite and once on PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            pub fn sqlite() {
                super::$name(super::Loc::sqlite());
            }
            #[test]
            pub fn postgres() {
                super::$name(super::Loc::postgres());
            }
        }
    )*};
}
