//! The PostgreSQL the tests run against: `RUNGATE_TEST_PG_URL`, by default the local server
//! this machine starts (trust auth, database `test`). Each test gets a schema of its own, so
//! tests run in parallel and leave nothing behind. Without a reachable server the PostgreSQL
//! tests say why they were skipped and pass — except under `CI=true`, where they fail: CI must
//! not skip them.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::harness::TestResult;

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A fresh schema on the test server.
pub struct Schema {
    pub url: String,
    pub name: String,
    pub admin: PgPool,
}

impl Schema {
    /// The `storage:` block of a gateway config on this schema.
    pub fn storage_yaml(&self, extra: &str) -> String {
        format!(
            "storage:\n  type: postgres\n  url: {}\n  schema: {}\n{extra}",
            self.url, self.name
        )
    }

    pub fn target(&self) -> rungate::store::postgres::PgTarget {
        rungate::store::postgres::PgTarget {
            url: self.url.clone(),
            schema: Some(self.name.clone()),
            max_connections: 8,
            synchronous_commit: true,
        }
    }

    /// Drops the schema and everything in it.
    pub async fn drop(self) -> TestResult {
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
            .execute(&self.admin)
            .await?;
        self.admin.close().await;
        Ok(())
    }
}

/// A new schema named `<prefix>_<random>`; `None` (after saying why) when PostgreSQL is not
/// reachable outside CI.
pub async fn schema(prefix: &str) -> TestResult<Option<Schema>> {
    let url = std::env::var("RUNGATE_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let admin = match PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url)
        .await
    {
        Ok(pool) => pool,
        Err(err) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!(
                "skipped: PostgreSQL not reachable at {url} ({err}); set RUNGATE_TEST_PG_URL to run the PostgreSQL tests"
            );
            return Ok(None);
        }
        Err(err) => {
            return Err(format!("PostgreSQL not reachable at {url} and CI=true: {err}").into());
        }
    };
    let name = format!("{prefix}_{:016x}", rand::random::<u64>());
    Ok(Some(Schema { url, name, admin }))
}
