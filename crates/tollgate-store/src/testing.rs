//! Test support shared by every crate's tests: fresh SQLite and PostgreSQL databases.
//!
//! PostgreSQL is expected at `TOLLGATE_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). If it does not answer, the harness
//! tries to start the local cluster (`pg_ctlcluster … main start`). If it still does not
//! answer, tests skip PostgreSQL — except under `CI=true`, where that is a failure.

use crate::Store;
use std::sync::OnceLock;
use tokio::sync::Mutex;

/// The admin URL of the test PostgreSQL server.
pub fn pg_admin_url() -> String {
    std::env::var("TOLLGATE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

async fn pg_answers(url: &str) -> bool {
    use sqlx::Connection;
    matches!(
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            sqlx::PgConnection::connect(url)
        )
        .await,
        Ok(Ok(_))
    )
}

fn try_start_cluster() {
    let Ok(versions) = std::fs::read_dir("/etc/postgresql") else {
        return;
    };
    for v in versions.flatten() {
        let version = v.file_name().to_string_lossy().into_owned();
        let _ = std::process::Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &version, "main", "start"])
            .status();
    }
}

/// Whether PostgreSQL is reachable, starting it if needed. Under `CI=true` an
/// unreachable server panics instead of returning `false`.
pub async fn pg_available() -> bool {
    static STATE: OnceLock<Mutex<Option<bool>>> = OnceLock::new();
    let mut state = STATE.get_or_init(|| Mutex::new(None)).lock().await;
    if let Some(ok) = *state {
        return ok;
    }
    let url = pg_admin_url();
    let mut ok = pg_answers(&url).await;
    if !ok {
        try_start_cluster();
        for _ in 0..20 {
            if pg_answers(&url).await {
                ok = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
    if !ok {
        assert!(
            !in_ci(),
            "PostgreSQL at {url} is not reachable and CI=true: refusing to skip"
        );
        eprintln!("warning: PostgreSQL at {url} is not reachable; skipping PostgreSQL tests");
    }
    *state = Some(ok);
    ok
}

/// A fresh, empty PostgreSQL database for one test: its URL. The database is named
/// `tollgate_test_<random>`; [`drop_pg_database`] removes it.
pub async fn fresh_pg_database() -> Option<String> {
    use sqlx::{Connection, Executor};
    if !pg_available().await {
        return None;
    }
    let admin = pg_admin_url();
    let name = format!("tollgate_test_{}", uuid::Uuid::new_v4().simple());
    let mut c = sqlx::PgConnection::connect(&admin)
        .await
        .expect("connect to test PostgreSQL");
    c.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("create test database");
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    Some(format!("{base}/{name}"))
}

/// Drops a database made by [`fresh_pg_database`] (best effort).
pub async fn drop_pg_database(url: &str) {
    use sqlx::{Connection, Executor};
    let Some((_, name)) = url.rsplit_once('/') else {
        return;
    };
    if !name.starts_with("tollgate_test_") {
        return;
    }
    if let Ok(mut c) = sqlx::PgConnection::connect(&pg_admin_url()).await {
        let _ = c
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .await;
    }
}

/// A migrated store of each available backend: SQLite (in a temp file) always, and
/// PostgreSQL when reachable. Keep the returned guard alive for the test's duration.
pub async fn each_backend() -> Vec<(Store, TestDb)> {
    let mut out = Vec::new();
    let dir = tempfile_dir();
    let url = format!("sqlite:{}/tollgate.db", dir.display());
    let s = Store::connect(&url).await.expect("sqlite store");
    s.migrate().await.expect("sqlite migrations");
    out.push((s, TestDb::Sqlite(dir)));
    if let Some(url) = fresh_pg_database().await {
        let s = Store::connect(&url).await.expect("postgres store");
        s.migrate().await.expect("postgres migrations");
        out.push((s, TestDb::Postgres(url)));
    }
    out
}

/// A migrated SQLite store in a temp file, for tests whose subject is not the store.
pub async fn sqlite() -> (Store, TestDb) {
    let dir = tempfile_dir();
    let url = format!("sqlite:{}/tollgate.db", dir.display());
    let s = Store::connect(&url).await.expect("sqlite store");
    s.migrate().await.expect("sqlite migrations");
    (s, TestDb::Sqlite(dir))
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tollgate-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Where a test database lives; removed by [`TestDb::cleanup`].
#[derive(Debug)]
pub enum TestDb {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl TestDb {
    /// Removes the database.
    pub async fn cleanup(self) {
        match self {
            TestDb::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            TestDb::Postgres(url) => drop_pg_database(&url).await,
        }
    }
}
