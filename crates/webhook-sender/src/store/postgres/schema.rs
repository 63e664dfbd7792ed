//! The Postgres store's schema: embedded, versioned migrations, applied at connect under
//! an advisory lock, and the refusal of a schema newer than this build's.

use sqlx::PgConnection;

use super::{Names, backend};
use crate::store::StoreError;

/// The migrations, in order: migration `i` (from 0) brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[include_str!("001_initial.sql")];

/// The schema version this build writes and the newest it reads.
pub(super) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Creates the schema and its `meta` table when missing, applies the migrations this
/// build has and the database lacks, and refuses a newer schema. Runs in one transaction
/// on `connection`, under an advisory lock, so nodes starting together migrate once.
pub(super) async fn migrate(
    connection: &mut PgConnection,
    names: &Names,
) -> Result<(), StoreError> {
    let mut tx = sqlx::Connection::begin(connection).await.map_err(backend)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(names.lock_key(&[b"schema"]))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let bootstrap = names.sql(
        "CREATE SCHEMA IF NOT EXISTS {s}; \
         CREATE TABLE IF NOT EXISTS {s}.meta (key text PRIMARY KEY, value bigint NOT NULL);",
    );
    sqlx::raw_sql(&bootstrap)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let current: Option<i64> =
        sqlx::query_scalar(&names.sql("SELECT value FROM {s}.meta WHERE key = 'schema'"))
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
    let current = current.unwrap_or(0);
    if current > SCHEMA_VERSION {
        return Err(StoreError::incompatible(format!(
            "the Postgres schema {:?} has schema version {current}; this build reads up to \
             {SCHEMA_VERSION}: use a newer version of webhook-sender",
            names.schema()
        )));
    }
    let applied = usize::try_from(current).unwrap_or(0);
    for (version, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        sqlx::raw_sql(&names.sql(migration))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let version = i64::try_from(version + 1).unwrap_or(i64::MAX);
        sqlx::query(&names.sql(
            "INSERT INTO {s}.meta (key, value) VALUES ('schema', $1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        ))
        .bind(version)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    }
    tx.commit().await.map_err(backend)
}
