//! The only crate that speaks SQL. One [`Store`] over SQLite (the embedded default) or
//! PostgreSQL, with per-backend migrations kept in step by a schema-comparison test.
//!
//! Every access goes through a transaction ([`Tx`]): [`Store::read`] for reads and
//! [`Store::write`] for mutations. A write transaction takes the database's write lock
//! first (`BEGIN IMMEDIATE` on SQLite, `SELECT … FOR UPDATE` of the audit head row on
//! PostgreSQL), so mutations are serialised, uniqueness checks made inside them cannot
//! race, and the audit hash chain stays linear. Nothing is visible to others until
//! [`Tx::commit`]; dropping a `Tx` rolls it back.
//!
//! SQL is written once with `$n` placeholders (both SQLite and PostgreSQL accept them)
//! and run on either backend by the [`on_tx!`] macro, which expands the same code for
//! each connection type. Queries whose dialects differ say so where they branch.

mod billing;
mod repo;
pub mod testing;
mod usage;
pub mod webhooks;

pub use billing::{
    BillingAccount, BillingAnchor, CreditNoteRecord, InvoiceFilter, InvoiceRecord, PayoutRecord,
    TestClock, WalletEntry,
};
pub use repo::*;
pub use usage::{Aggregate, AggregateKey, UsageIndexRow};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use std::str::FromStr;
use std::time::Duration;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is neither `sqlite:` nor `postgres://`.
    #[error("unsupported database url {0:?}: use sqlite:PATH or postgres://…")]
    UnsupportedUrl(String),
    /// A uniqueness constraint refused the change.
    #[error("{0} already exists")]
    Duplicate(String),
    /// An update lost a race with another writer (revision mismatch).
    #[error("the object changed since it was read")]
    Stale,
    /// A stored value could not be decoded into the domain type.
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database is not reachable (pool timeout, closed pool, connection failure).
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
    /// Any other database error.
    #[error("database error: {0}")]
    Db(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            return StoreError::Duplicate(db.constraint().unwrap_or("object").to_owned());
        }
        if matches!(
            e,
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
        ) {
            return StoreError::Unavailable(e);
        }
        StoreError::Db(e)
    }
}

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database engine a store uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool to the control-plane database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A transaction on either backend. Dropped without [`Tx::commit`] it rolls back.
#[derive(Debug)]
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Runs the same code on whichever connection a [`Tx`] holds. `$c` is bound to a
/// `&mut` connection that implements `sqlx::Executor`.
#[macro_export]
#[doc(hidden)]
macro_rules! on_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx {
            $crate::Tx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::Tx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}

impl Store {
    /// Connects to `url` (`sqlite:PATH`, `sqlite://PATH`, `sqlite::memory:` or
    /// `postgres://…`/`postgresql://…`). A SQLite file is created if missing.
    pub async fn connect(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(StoreError::Db)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // Admin data is small and precious: FULL keeps the last commits through
                // a power cut, at a cost only mutations pay.
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            let pool = SqlitePoolOptions::new()
                // An in-memory database exists per connection: keep exactly one.
                .max_connections(if in_memory { 1 } else { 8 })
                .min_connections(if in_memory { 1 } else { 0 })
                .idle_timeout(if in_memory {
                    None
                } else {
                    Some(Duration::from_secs(600))
                })
                .max_lifetime(if in_memory {
                    None
                } else {
                    Some(Duration::from_secs(3600))
                })
                .connect_with(opts)
                .await
                .map_err(StoreError::Db)?;
            Ok(Self {
                pool: Pool::Sqlite(pool),
            })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url).map_err(StoreError::Db)?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await
                .map_err(StoreError::Db)?;
            Ok(Self {
                pool: Pool::Postgres(pool),
            })
        } else {
            Err(StoreError::UnsupportedUrl(url.to_owned()))
        }
    }

    /// Applies pending migrations of this backend.
    pub async fn migrate(&self) -> Result<()> {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::migrate!("./migrations/sqlite").run(p).await?,
            Pool::Postgres(p) => sqlx::migrate!("./migrations/postgres").run(p).await?,
        }
        Ok(())
    }

    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<()> {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await?.rows_affected(),
            Pool::Postgres(p) => sqlx::query("SELECT 1").execute(p).await?.rows_affected(),
        };
        Ok(())
    }

    /// Starts a read transaction: a consistent view, no locks held against writers.
    pub async fn read(&self) -> Result<Tx> {
        Ok(match &self.pool {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin().await?),
            Pool::Postgres(p) => Tx::Postgres(
                p.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            ),
        })
    }

    /// Starts a write transaction holding the database's write lock (see crate docs).
    pub async fn write(&self) -> Result<Tx> {
        Ok(match &self.pool {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE")
                    .execute(&mut *tx)
                    .await?;
                Tx::Postgres(tx)
            }
        })
    }

    /// Closes every connection (flushes SQLite's WAL on the last one).
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }

    /// Describes the schema as `(table, column, type, not_null)` rows with types in
    /// PostgreSQL spelling, sorted; the migration-parity test compares two of these.
    pub async fn describe_schema(&self) -> Result<Vec<(String, String, String, bool)>> {
        let mut rows: Vec<(String, String, String, bool)> = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as::<_, (String, String, String, bool)>(
                    "SELECT m.name, c.name, upper(c.type), (c.\"notnull\" OR c.pk > 0)
                     FROM sqlite_master m JOIN pragma_table_info(m.name) c
                     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx_%'",
                )
                .fetch_all(p)
                .await?
            }
            Pool::Postgres(p) => {
                sqlx::query_as::<_, (String, String, String, bool)>(
                    "SELECT table_name::text, column_name::text,
                        CASE data_type
                          WHEN 'timestamp with time zone' THEN 'TIMESTAMPTZ'
                          ELSE upper(data_type) END,
                        is_nullable = 'NO'
                     FROM information_schema.columns
                     WHERE table_schema = current_schema() AND table_name NOT LIKE '_sqlx_%'",
                )
                .fetch_all(p)
                .await?
            }
        };
        rows.sort();
        Ok(rows)
    }
}

impl Tx {
    /// Makes the transaction's changes durable and visible.
    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    /// Discards the transaction's changes.
    pub async fn rollback(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.rollback().await?,
            Tx::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }
}
