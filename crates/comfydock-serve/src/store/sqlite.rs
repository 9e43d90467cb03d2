//! The embedded queue: one SQLite file in WAL mode, one writer connection.
//!
//! Every write runs on the blocking pool while holding the writer connection's mutex, so writes
//! are serialised inside this process; `busy_timeout` covers another process holding the file.
//! Reads (job lookups, event streams, listings) use a small pool of read-only connections, so a
//! client following its job never waits behind the workers' writes. Claims use `BEGIN IMMEDIATE`
//! + `UPDATE … RETURNING`. Statements are prepared once per connection (statement cache).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use comfydock_foundation::sqlite::{self, Migration, Schema};
use futures::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use serde_json::Value;
use uuid::Uuid;

use super::{
    ApiKeyRecord, JobFilter, JobStore, QueueStats, StoreError, failure_target, lease_expired_error,
    retried_event_data, status_event_data,
};
use crate::job::{
    Claimed, Enqueued, FailOutcome, Job, JobEvent, JobFailure, JobStatus, Lease, NewJob, RetryPolicy, now_ms,
};

/// Schema steps, numbered from 1; never edit or remove one. Step 1 is the schema queues written
/// before versions were recorded already have (hence `IF NOT EXISTS`).
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: "
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    params TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('queued','running','succeeded','failed','cancelled','dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    idempotency_key TEXT UNIQUE,
    webhook TEXT,
    lease_owner TEXT,
    lease_token TEXT,
    lease_until INTEGER,
    run_after INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    last_error TEXT,
    outputs TEXT,
    last_seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (status, priority DESC, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (status, lease_until);
CREATE TABLE IF NOT EXISTS job_events (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
",
}];

const JOB_COLUMNS: &str = "id, workflow, params, priority, status, attempts, max_attempts, idempotency_key, \
     webhook, lease_owner, lease_until, run_after, created_at, started_at, finished_at, last_error, outputs";

/// The SQLite queue. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    /// Idle read-only connections; a read takes one (or opens one) and puts it back.
    readers: Arc<Mutex<Vec<Connection>>>,
}

/// Idle read-only connections kept open; more are opened under load and closed after use.
const IDLE_READERS: usize = 4;

/// How often the write-ahead log is copied back into the database, off the writers' path.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// WAL pages after which a commit checkpoints by itself: only a safety net, should the
/// background checkpoints fall behind (SQLite's default is 1,000 pages, which puts a checkpoint
/// with its fsyncs into every thousandth write, and into that job's latency).
const WAL_SAFETY_PAGES: i64 = 20_000;

impl SqliteStore {
    /// Opens (creating when missing) the queue database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = sqlite::open(path, &Schema::new(MIGRATIONS))?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_SAFETY_PAGES)
            .map_err(|source| StoreError::Sqlite {
                path: path.to_owned(),
                source,
            })?;
        let conn = Arc::new(Mutex::new(conn));
        spawn_checkpoints(path, Arc::downgrade(&conn));
        Ok(Self {
            path: path.to_owned(),
            conn,
            readers: Arc::default(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the connection on the blocking pool.
    fn with<T, F>(&self, f: F) -> BoxFuture<'_, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let path = self.path.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
                f(&mut guard).map_err(|source| StoreError::Sqlite { path, source })
            })
            .await
            .map_err(StoreError::Join)?
        })
    }

    /// Runs the read `f` on a read-only connection on the blocking pool.
    fn read<T, F>(&self, f: F) -> BoxFuture<'_, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        let path = self.path.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let pooled = readers.lock().unwrap_or_else(PoisonError::into_inner).pop();
                let conn = match pooled {
                    Some(conn) => conn,
                    None => sqlite::open_reader(&path)?,
                };
                let result = f(&conn).map_err(|source| StoreError::Sqlite { path, source });
                let mut idle = readers.lock().unwrap_or_else(PoisonError::into_inner);
                if idle.len() < IDLE_READERS {
                    idle.push(conn);
                }
                result
            })
            .await
            .map_err(StoreError::Join)?
        })
    }
}

/// Checkpoints the queue's WAL every [`CHECKPOINT_EVERY`] on a thread of its own (passive: it
/// never blocks a writer or a reader) until the store is dropped.
fn spawn_checkpoints(path: &Path, store: std::sync::Weak<Mutex<Connection>>) {
    let path = path.to_owned();
    let spawned = std::thread::Builder::new()
        .name("queue-checkpoint".to_owned())
        .spawn(move || {
            let Ok(conn) = Connection::open(&path) else { return };
            while store.strong_count() > 0 {
                std::thread::sleep(CHECKPOINT_EVERY);
                if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::debug!(%error, path = %path.display(), "checkpointing the queue failed");
                }
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "no background checkpoints; commits checkpoint by themselves");
    }
}

fn json_text(value: &Value) -> String {
    value.to_string()
}

fn parse_json(text: Option<String>) -> rusqlite::Result<Option<Value>> {
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
    })
    .transpose()
}

fn conversion(index: usize, error: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(error))
}

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<Job> {
    let id: String = row.get(0)?;
    let status: String = row.get(4)?;
    Ok(Job {
        id: Uuid::parse_str(&id).map_err(|e| conversion(0, e))?,
        workflow: row.get(1)?,
        params: parse_json(Some(row.get(2)?))?.unwrap_or(Value::Null),
        priority: row.get(3)?,
        status: status.parse::<JobStatus>().map_err(|e| conversion(4, e))?,
        attempts: row.get(5)?,
        max_attempts: row.get(6)?,
        idempotency_key: row.get(7)?,
        webhook: row.get(8)?,
        lease_owner: row.get(9)?,
        lease_until: row.get(10)?,
        run_after: row.get(11)?,
        created_at: row.get(12)?,
        started_at: row.get(13)?,
        finished_at: row.get(14)?,
        last_error: parse_json(row.get(15)?)?,
        outputs: parse_json(row.get(16)?)?,
    })
}

fn event_from_row(row: &Row<'_>) -> rusqlite::Result<JobEvent> {
    let id: String = row.get(0)?;
    Ok(JobEvent {
        job_id: Uuid::parse_str(&id).map_err(|e| conversion(0, e))?,
        seq: row.get(1)?,
        at: row.get(2)?,
        kind: row.get(3)?,
        data: parse_json(Some(row.get(4)?))?.unwrap_or(Value::Null),
    })
}

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        prefix: row.get(2)?,
        created_at: row.get(3)?,
        revoked_at: row.get(4)?,
    })
}

fn get_job(conn: &Connection, id: &str) -> rusqlite::Result<Option<Job>> {
    conn.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))?
        .query_row([id], job_from_row)
        .optional()
}

/// Appends an event, numbering it from the job's `last_seq` counter.
fn push_event(conn: &Connection, job_id: &str, kind: &str, data: &Value) -> rusqlite::Result<JobEvent> {
    let seq: i64 = conn
        .prepare_cached("UPDATE jobs SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq")?
        .query_row([job_id], |r| r.get(0))?;
    let at = now_ms();
    conn.prepare_cached("INSERT INTO job_events (job_id, seq, at, kind, data) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![job_id, seq, at, kind, json_text(data)])?;
    Ok(JobEvent {
        job_id: Uuid::parse_str(job_id).map_err(|e| conversion(0, e))?,
        seq,
        at,
        kind: kind.to_owned(),
        data: data.clone(),
    })
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl JobStore for SqliteStore {
    fn enqueue(&self, job: NewJob) -> BoxFuture<'_, Result<Enqueued, StoreError>> {
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(key) = &job.idempotency_key {
                let existing = tx
                    .query_row(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE idempotency_key = ?1"), [key], job_from_row)
                    .optional()?;
                if let Some(existing) = existing {
                    return Ok(Enqueued { job: existing, created: false });
                }
            }
            let id = Uuid::now_v7().to_string();
            let now = now_ms();
            tx.execute(
                "INSERT INTO jobs (id, workflow, params, priority, status, max_attempts, idempotency_key, webhook, \
                 run_after, created_at) VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?7, ?8, ?8)",
                params![
                    id,
                    job.workflow,
                    json_text(&job.params),
                    job.priority,
                    job.max_attempts.max(1),
                    job.idempotency_key,
                    job.webhook,
                    now
                ],
            )?;
            push_event(&tx, &id, "queued", &serde_json::json!({"status": "queued", "priority": job.priority}))?;
            let created = get_job(&tx, &id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
            tx.commit()?;
            Ok(Enqueued { job: created, created: true })
        })
    }

    fn claim(
        &self,
        owner: String,
        workflows: Vec<String>,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Option<Claimed>, StoreError>> {
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = now_ms();
            let token = Uuid::new_v4();
            let filter = serde_json::to_string(&workflows).unwrap_or_default();
            let claimed = tx
                .prepare_cached(&format!(
                    "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = ?1, \
                     lease_token = ?2, lease_until = ?3, started_at = COALESCE(started_at, ?4) \
                     WHERE id = (SELECT id FROM jobs WHERE status = 'queued' AND run_after <= ?4 \
                       AND workflow IN (SELECT value FROM json_each(?5)) \
                       ORDER BY priority DESC, created_at, id LIMIT 1) \
                     RETURNING {JOB_COLUMNS}"
                ))?
                .query_row(
                    params![owner, token.to_string(), now + duration_ms(lease), now, filter],
                    job_from_row,
                )
                .optional()?;
            let Some(job) = claimed else { return Ok(None) };
            let started = push_event(&tx, &job.id.to_string(), "started", &status_event_data(&job))?;
            tx.commit()?;
            let lease = Lease {
                job_id: job.id,
                owner,
                token,
            };
            Ok(Some(Claimed {
                job,
                lease,
                fresh: started.seq == 2,
            }))
        })
    }

    fn heartbeat(&self, lease: Lease, lease_for: Duration) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.with(move |conn| {
            let changed = conn.execute(
                "UPDATE jobs SET lease_until = ?1 WHERE id = ?2 AND status = 'running' AND lease_token = ?3",
                params![
                    now_ms() + duration_ms(lease_for),
                    lease.job_id.to_string(),
                    lease.token.to_string()
                ],
            )?;
            Ok(changed == 1)
        })
    }

    fn complete(&self, lease: Lease, outputs: Value) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let id = lease.job_id.to_string();
            let changed = tx
                .prepare_cached(
                    "UPDATE jobs SET status = 'succeeded', outputs = ?1, finished_at = ?2, lease_owner = NULL, \
                     lease_token = NULL, lease_until = NULL WHERE id = ?3 AND status = 'running' AND lease_token = ?4",
                )?
                .execute(params![json_text(&outputs), now_ms(), id, lease.token.to_string()])?;
            if changed == 1 {
                push_event(&tx, &id, "succeeded", &serde_json::json!({"status": "succeeded", "outputs": outputs}))?;
            }
            tx.commit()?;
            Ok(changed == 1)
        })
    }

    fn fail(
        &self,
        lease: Lease,
        failure: JobFailure,
        policy: RetryPolicy,
    ) -> BoxFuture<'_, Result<FailOutcome, StoreError>> {
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let id = lease.job_id.to_string();
            let row: Option<(u32, u32)> = tx
                .query_row(
                    "SELECT attempts, max_attempts FROM jobs WHERE id = ?1 AND status = 'running' AND lease_token = ?2",
                    params![id, lease.token.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((attempts, max_attempts)) = row else { return Ok(FailOutcome::LeaseLost) };
            let (status, kind) = failure_target(attempts, max_attempts, &failure);
            let now = now_ms();
            let (outcome, run_after, finished) = match status {
                JobStatus::Queued => {
                    let at = now + duration_ms(policy.delay(attempts));
                    (FailOutcome::Retrying { run_after: at }, at, None)
                }
                JobStatus::Dead => (FailOutcome::Dead, now, Some(now)),
                _ => (FailOutcome::Failed, now, Some(now)),
            };
            let error = failure.to_json();
            tx.execute(
                "UPDATE jobs SET status = ?1, last_error = ?2, run_after = ?3, finished_at = ?4, lease_owner = NULL, \
                 lease_token = NULL, lease_until = NULL WHERE id = ?5",
                params![status.as_str(), json_text(&error), run_after, finished, id],
            )?;
            push_event(
                &tx,
                &id,
                kind,
                &serde_json::json!({"status": status.as_str(), "attempt": attempts, "error": error, "run_after": run_after}),
            )?;
            tx.commit()?;
            Ok(outcome)
        })
    }

    fn cancel(&self, id: Uuid) -> BoxFuture<'_, Result<Option<Job>, StoreError>> {
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let id = id.to_string();
            let Some(before) = get_job(&tx, &id)? else { return Ok(None) };
            if !before.status.is_terminal() {
                tx.execute(
                    "UPDATE jobs SET status = 'cancelled', finished_at = ?1, lease_owner = NULL, lease_token = NULL, \
                     lease_until = NULL WHERE id = ?2",
                    params![now_ms(), id],
                )?;
                push_event(&tx, &id, "cancelled", &serde_json::json!({"status": "cancelled", "was": before.status}))?;
            }
            tx.commit()?;
            Ok(Some(before))
        })
    }

    fn retry(&self, id: Uuid) -> BoxFuture<'_, Result<Option<Job>, StoreError>> {
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let id = id.to_string();
            let Some(before) = get_job(&tx, &id)? else { return Ok(None) };
            if before.status.is_retryable() {
                tx.execute(
                    "UPDATE jobs SET status = 'queued', attempts = 0, run_after = ?1, started_at = NULL, \
                     finished_at = NULL, lease_owner = NULL, lease_token = NULL, lease_until = NULL WHERE id = ?2",
                    params![now_ms(), id],
                )?;
                push_event(&tx, &id, "retried", &retried_event_data(&before))?;
            }
            tx.commit()?;
            Ok(Some(before))
        })
    }

    fn release(&self, lease: Lease) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let id = lease.job_id.to_string();
            let changed = tx.execute(
                "UPDATE jobs SET status = 'queued', attempts = MAX(attempts - 1, 0), run_after = ?1, lease_owner = NULL, \
                 lease_token = NULL, lease_until = NULL WHERE id = ?2 AND status = 'running' AND lease_token = ?3",
                params![now_ms(), id, lease.token.to_string()],
            )?;
            if changed == 1 {
                push_event(&tx, &id, "released", &serde_json::json!({"status": "queued", "worker": lease.owner}))?;
            }
            tx.commit()?;
            Ok(changed == 1)
        })
    }

    fn requeue_expired(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = now_ms();
            let expired: Vec<(String, u32, u32, Option<String>)> = {
                let mut stmt = tx.prepare(
                    "SELECT id, attempts, max_attempts, lease_owner FROM jobs WHERE status = 'running' AND lease_until < ?1",
                )?;
                stmt.query_map([now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect::<rusqlite::Result<_>>()?
            };
            for (id, attempts, max_attempts, owner) in &expired {
                let error = lease_expired_error(owner.as_deref());
                let (status, kind) = if attempts >= max_attempts { ("dead", "dead") } else { ("queued", "retrying") };
                let finished = (status == "dead").then_some(now);
                tx.execute(
                    "UPDATE jobs SET status = ?1, last_error = ?2, run_after = ?3, finished_at = ?4, lease_owner = NULL, \
                     lease_token = NULL, lease_until = NULL WHERE id = ?5",
                    params![status, json_text(&error), now, finished, id],
                )?;
                push_event(&tx, id, kind, &serde_json::json!({"status": status, "attempt": attempts, "error": error}))?;
            }
            tx.commit()?;
            Ok(expired.len() as u64)
        })
    }

    fn get(&self, id: Uuid) -> BoxFuture<'_, Result<Option<Job>, StoreError>> {
        self.read(move |conn| get_job(conn, &id.to_string()))
    }

    fn list(&self, filter: JobFilter) -> BoxFuture<'_, Result<Vec<Job>, StoreError>> {
        self.read(move |conn| {
            let limit = if filter.limit == 0 { 100 } else { filter.limit };
            let mut stmt = conn.prepare(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR workflow = ?2) \
                 ORDER BY created_at DESC, id DESC LIMIT ?3"
            ))?;
            stmt.query_map(params![filter.status.map(JobStatus::as_str), filter.workflow, limit], job_from_row)?
                .collect()
        })
    }

    fn append_events(
        &self,
        job_id: Uuid,
        events: Vec<(String, Value)>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let id = job_id.to_string();
            let open: Option<String> = tx
                .prepare_cached("SELECT status FROM jobs WHERE id = ?1 AND status IN ('queued', 'running')")?
                .query_row([&id], |r| r.get(0))
                .optional()?;
            if open.is_some() {
                for (kind, data) in &events {
                    push_event(&tx, &id, kind, data)?;
                }
            }
            tx.commit()
        })
    }

    fn events_after(&self, job_id: Uuid, after: i64) -> BoxFuture<'_, Result<Vec<JobEvent>, StoreError>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT job_id, seq, at, kind, data FROM job_events WHERE job_id = ?1 AND seq > ?2 ORDER BY seq",
            )?;
            stmt.query_map(params![job_id.to_string(), after], event_from_row)?.collect()
        })
    }

    fn stats(&self) -> BoxFuture<'_, Result<QueueStats, StoreError>> {
        self.read(move |conn| {
            let mut jobs = Vec::new();
            let mut stmt = conn.prepare(
                "SELECT workflow, status, COUNT(*) FROM jobs GROUP BY workflow, status ORDER BY 1, 2",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            for row in rows {
                let (workflow, status, count) = row?;
                let status = status.parse::<JobStatus>().map_err(|e| conversion(1, e))?;
                jobs.push((workflow, status, u64::try_from(count).unwrap_or(0)));
            }
            let mut stmt = conn.prepare("SELECT kind, COUNT(*) FROM job_events GROUP BY kind ORDER BY 1")?;
            let events = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    ))
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(QueueStats { jobs, events })
        })
    }

    fn create_key(
        &self,
        name: String,
        prefix: String,
        hash: String,
    ) -> BoxFuture<'_, Result<ApiKeyRecord, StoreError>> {
        self.with(move |conn| {
            let record = ApiKeyRecord {
                id: Uuid::now_v7().to_string(),
                name,
                prefix,
                created_at: now_ms(),
                revoked_at: None,
            };
            conn.execute(
                "INSERT INTO api_keys (id, name, prefix, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![record.id, record.name, record.prefix, hash, record.created_at],
            )?;
            Ok(record)
        })
    }

    fn list_keys(&self) -> BoxFuture<'_, Result<Vec<ApiKeyRecord>, StoreError>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT id, name, prefix, created_at, revoked_at FROM api_keys ORDER BY created_at, id",
            )?;
            stmt.query_map([], key_from_row)?.collect()
        })
    }

    fn revoke_key(&self, which: String) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.with(move |conn| {
            let changed = conn.execute(
                "UPDATE api_keys SET revoked_at = ?1 WHERE revoked_at IS NULL AND (id = ?2 OR name = ?2 OR prefix = ?2)",
                params![now_ms(), which],
            )?;
            Ok(changed as u64)
        })
    }

    fn find_key(&self, hash: String) -> BoxFuture<'_, Result<Option<ApiKeyRecord>, StoreError>> {
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT id, name, prefix, created_at, revoked_at FROM api_keys WHERE hash = ?1 AND revoked_at IS NULL",
            )?
            .query_row([hash], key_from_row)
            .optional()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::SqliteStore;
    use crate::store::contract;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("queue.db")).unwrap();
        (dir, store)
    }

    macro_rules! contract_tests {
        ($($name:ident),* $(,)?) => {$(
            #[tokio::test]
            async fn $name() {
                let (_dir, store) = store();
                contract::$name(&store).await;
            }
        )*};
    }

    contract_tests!(
        claims_by_priority_then_age,
        idempotency_key_returns_the_first_job,
        completion_is_recorded_once,
        transient_failures_retry_then_dead_letter,
        permanent_failures_are_not_retried,
        expired_leases_are_requeued,
        cancel_queued_and_running,
        release_returns_the_job_without_counting_the_attempt,
        retry_requeues_dead_and_failed_jobs_only,
        events_and_listing,
        api_keys,
    );

    #[tokio::test]
    async fn reopening_keeps_jobs_and_uses_wal() {
        let (dir, store) = store();
        let job = crate::store::JobStore::enqueue(
            &store,
            crate::job::NewJob::new("w", serde_json::json!({"x": 1})),
        )
        .await
        .unwrap()
        .job;
        drop(store);
        let again = SqliteStore::open(&dir.path().join("queue.db")).unwrap();
        let found = crate::store::JobStore::get(&again, job.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.params["x"], 1);
        let mode: String = again
            .conn
            .lock()
            .unwrap()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[tokio::test]
    async fn opens_a_queue_written_before_versions_keeping_its_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queue.db");
        let old = rusqlite::Connection::open(&path).unwrap();
        old.execute_batch(super::MIGRATIONS[0].sql).unwrap();
        let id = uuid::Uuid::now_v7();
        old.execute(
            "INSERT INTO jobs (id, workflow, params, status, max_attempts, run_after, created_at)
             VALUES (?1, 'w', '{\"x\":2}', 'queued', 3, 0, 0)",
            [id.to_string()],
        )
        .unwrap();
        drop(old);
        let store = SqliteStore::open(&path).unwrap();
        let found = crate::store::JobStore::get(&store, id).await.unwrap().unwrap();
        assert_eq!(found.params["x"], 2);
        let version = super::sqlite::user_version(&store.conn.lock().unwrap()).unwrap();
        assert_eq!(version, 1);
    }
}
