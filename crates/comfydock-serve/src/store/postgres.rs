//! The shared queue: PostgreSQL, so several `serve` instances (on several machines) take jobs
//! from one table. Claims lock the chosen row with `FOR UPDATE SKIP LOCKED`, so concurrent
//! claimers never wait on, or take, the same job.

use std::collections::HashMap;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::Mutex;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient, NoTls, Row, Statement};
use uuid::Uuid;

use super::{
    ApiKeyRecord, JobFilter, JobStore, QueueStats, StoreError, failure_target, lease_expired_error,
    retried_event_data, status_event_data,
};
use crate::job::{
    Claimed, Enqueued, FailOutcome, Job, JobEvent, JobFailure, JobStatus, Lease, NewJob, RetryPolicy, now_ms,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    params JSONB NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('queued','running','succeeded','failed','cancelled','dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    idempotency_key TEXT UNIQUE,
    webhook TEXT,
    lease_owner TEXT,
    lease_token TEXT,
    lease_until BIGINT,
    run_after BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    last_error JSONB,
    outputs JSONB,
    last_seq BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (status, priority DESC, created_at, id);
CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (status, lease_until);
CREATE TABLE IF NOT EXISTS job_events (
    job_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    data JSONB NOT NULL,
    PRIMARY KEY (job_id, seq)
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
";

const JOB_COLUMNS: &str = "id, workflow, params, priority, status, attempts, max_attempts, idempotency_key, \
     webhook, lease_owner, lease_until, run_after, created_at, started_at, finished_at, last_error, outputs";

/// Connections per store: enough for a few workers plus the HTTP handlers.
const POOL_SIZE: usize = 4;

/// The PostgreSQL queue.
pub struct PostgresStore {
    /// Redacted, for messages.
    url: String,
    /// With credentials, for reconnecting.
    connect_url: String,
    pool: Vec<Mutex<Slot>>,
    next: AtomicUsize,
}

/// One connection of the pool with the statements prepared on it (PostgreSQL keeps them per
/// session): a query is sent once prepared, then as Bind/Execute alone, one round trip instead of
/// two (Parse/Describe first) every time.
struct Slot {
    client: Client,
    statements: std::sync::Mutex<HashMap<String, Statement>>,
}

impl Slot {
    fn new(client: Client) -> Self {
        Self {
            client,
            statements: std::sync::Mutex::default(),
        }
    }

    /// The connection and its statements, borrowed apart (a transaction holds the connection).
    fn parts(&mut self) -> (&mut Client, &std::sync::Mutex<HashMap<String, Statement>>) {
        (&mut self.client, &self.statements)
    }
}

/// A connection or transaction that prepares each SQL text once per connection.
struct Cached<'a, C> {
    inner: &'a C,
    statements: &'a std::sync::Mutex<HashMap<String, Statement>>,
}

impl<'a, C: GenericClient + Sync> Cached<'a, C> {
    fn new(inner: &'a C, statements: &'a std::sync::Mutex<HashMap<String, Statement>>) -> Self {
        Self { inner, statements }
    }

    async fn statement(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        let known = self
            .statements
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(sql)
            .cloned();
        if let Some(statement) = known {
            return Ok(statement);
        }
        let statement = self.inner.prepare(sql).await?;
        self.statements
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let statement = self.statement(sql).await?;
        self.inner.query(&statement, params).await
    }

    async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        let statement = self.statement(sql).await?;
        self.inner.query_opt(&statement, params).await
    }

    async fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, tokio_postgres::Error> {
        let statement = self.statement(sql).await?;
        self.inner.query_one(&statement, params).await
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, tokio_postgres::Error> {
        let statement = self.statement(sql).await?;
        self.inner.execute(&statement, params).await
    }
}

/// `url` without its credentials, for error messages.
fn redact(url: &str) -> String {
    comfydock_foundation::redact::redact_url(url)
}

impl PostgresStore {
    /// Connects (a small pool) and creates the tables when missing.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let redacted = redact(url);
        let err = |source| StoreError::Postgres {
            url: redacted.clone(),
            source,
        };
        let mut pool = Vec::with_capacity(POOL_SIZE);
        for _ in 0..POOL_SIZE {
            pool.push(Mutex::new(Slot::new(open_connection(url).await.map_err(err)?)));
        }
        let store = Self {
            url: redacted.clone(),
            connect_url: url.to_owned(),
            pool,
            next: AtomicUsize::new(0),
        };
        {
            let mut slot = store.pool[0].lock().await;
            let tx = slot.client.transaction().await.map_err(err)?;
            // Two instances starting at once must not race on CREATE TABLE.
            tx.execute("SELECT pg_advisory_xact_lock(4242424242)", &[])
                .await
                .map_err(err)?;
            tx.batch_execute(SCHEMA).await.map_err(err)?;
            tx.commit().await.map_err(err)?;
        }
        Ok(store)
    }

    fn error(&self, source: tokio_postgres::Error) -> StoreError {
        StoreError::Postgres {
            url: self.url.clone(),
            source,
        }
    }

    /// A free connection, or the next one in turn; a connection the server closed (restart,
    /// failover, idle kill) is replaced by a new one first.
    async fn client(&self) -> Result<tokio::sync::MutexGuard<'_, Slot>, StoreError> {
        let mut guard = None;
        for slot in &self.pool {
            if let Ok(free) = slot.try_lock() {
                guard = Some(free);
                break;
            }
        }
        let mut guard = match guard {
            Some(guard) => guard,
            None => {
                self.pool[self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len()]
                    .lock()
                    .await
            }
        };
        if guard.client.is_closed() {
            *guard = Slot::new(
                open_connection(&self.connect_url)
                    .await
                    .map_err(|e| self.error(e))?,
            );
        }
        Ok(guard)
    }
}

/// One connection, driven by a background task.
async fn open_connection(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "PostgreSQL connection closed");
        }
    });
    Ok(client)
}

fn corrupt(message: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        location: "postgres jobs".to_owned(),
        message: message.into(),
    }
}

fn to_u32(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

fn job_from_row(row: &Row) -> Result<Job, StoreError> {
    let id: String = row.get(0);
    let status: String = row.get(4);
    Ok(Job {
        id: Uuid::parse_str(&id).map_err(|e| corrupt(format!("job id `{id}`: {e}")))?,
        workflow: row.get(1),
        params: row.get(2),
        priority: row.get(3),
        status: status
            .parse()
            .map_err(|e: crate::job::UnknownStatus| corrupt(e.to_string()))?,
        attempts: to_u32(row.get(5)),
        max_attempts: to_u32(row.get(6)),
        idempotency_key: row.get(7),
        webhook: row.get(8),
        lease_owner: row.get(9),
        lease_until: row.get(10),
        run_after: row.get(11),
        created_at: row.get(12),
        started_at: row.get(13),
        finished_at: row.get(14),
        last_error: row.get(15),
        outputs: row.get(16),
    })
}

fn key_from_row(row: &Row) -> ApiKeyRecord {
    ApiKeyRecord {
        id: row.get(0),
        name: row.get(1),
        prefix: row.get(2),
        created_at: row.get(3),
        revoked_at: row.get(4),
    }
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Appends an event numbered from the job's `last_seq` counter (the row lock serialises writers).
impl PostgresStore {
    /// The job `id`, its row locked until the transaction ends.
    async fn lock_job<C: GenericClient + Sync>(
        &self,
        tx: &Cached<'_, C>,
        id: &str,
    ) -> Result<Option<Job>, StoreError> {
        let row = tx
            .query_opt(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 FOR UPDATE"),
                &[&id],
            )
            .await
            .map_err(|e| self.error(e))?;
        row.as_ref().map(job_from_row).transpose()
    }
}

async fn push_event<C: GenericClient + Sync>(
    client: &Cached<'_, C>,
    job_id: &str,
    kind: &str,
    data: &Value,
) -> Result<JobEvent, tokio_postgres::Error> {
    let row = client
        .query_one(
            "UPDATE jobs SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq",
            &[&job_id],
        )
        .await?;
    let seq: i64 = row.get(0);
    let at = now_ms();
    client
        .execute(
            "INSERT INTO job_events (job_id, seq, at, kind, data) VALUES ($1, $2, $3, $4, $5)",
            &[&job_id, &seq, &at, &kind, data],
        )
        .await?;
    Ok(JobEvent {
        job_id: Uuid::parse_str(job_id).unwrap_or_default(),
        seq,
        at,
        kind: kind.to_owned(),
        data: data.clone(),
    })
}

impl JobStore for PostgresStore {
    fn enqueue(&self, job: NewJob) -> BoxFuture<'_, Result<Enqueued, StoreError>> {
        Box::pin(async move {
            let mut slot = self.client().await?;
            let (client, statements) = slot.parts();
            let transaction = client.transaction().await.map_err(|e| self.error(e))?;
            let tx = Cached::new(&transaction, statements);
            let id = Uuid::now_v7().to_string();
            let now = now_ms();
            let max_attempts = i32::try_from(job.max_attempts.max(1)).unwrap_or(i32::MAX);
            let inserted = tx
                .query_opt(
                    &format!(
                        "INSERT INTO jobs (id, workflow, params, priority, status, max_attempts, idempotency_key, \
                         webhook, run_after, created_at) VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $8) \
                         ON CONFLICT (idempotency_key) DO NOTHING RETURNING {JOB_COLUMNS}"
                    ),
                    &[&id, &job.workflow, &job.params, &job.priority, &max_attempts, &job.idempotency_key, &job.webhook, &now],
                )
                .await
                .map_err(|e| self.error(e))?;
            let result = if let Some(row) = inserted {
                push_event(
                    &tx,
                    &id,
                    "queued",
                    &serde_json::json!({"status": "queued", "priority": job.priority}),
                )
                .await
                .map_err(|e| self.error(e))?;
                Enqueued {
                    job: job_from_row(&row)?,
                    created: true,
                }
            } else {
                let row = tx
                    .query_one(
                        &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE idempotency_key = $1"),
                        &[&job.idempotency_key],
                    )
                    .await
                    .map_err(|e| self.error(e))?;
                Enqueued {
                    job: job_from_row(&row)?,
                    created: false,
                }
            };
            transaction.commit().await.map_err(|e| self.error(e))?;
            Ok(result)
        })
    }

    fn claim(
        &self,
        owner: String,
        workflows: Vec<String>,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Option<Claimed>, StoreError>> {
        Box::pin(async move {
            let mut slot = self.client().await?;
            let (client, statements) = slot.parts();
            let transaction = client.transaction().await.map_err(|e| self.error(e))?;
            let tx = Cached::new(&transaction, statements);
            let now = now_ms();
            let token = Uuid::new_v4();
            let until = now + duration_ms(lease);
            let row = tx
                .query_opt(
                    &format!(
                        "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = $1, \
                         lease_token = $2, lease_until = $3, started_at = COALESCE(started_at, $4) \
                         WHERE id = (SELECT id FROM jobs WHERE status = 'queued' AND run_after <= $4 \
                           AND workflow = ANY($5) ORDER BY priority DESC, created_at, id \
                           LIMIT 1 FOR UPDATE SKIP LOCKED) \
                         RETURNING {JOB_COLUMNS}"
                    ),
                    &[&owner, &token.to_string(), &until, &now, &workflows],
                )
                .await
                .map_err(|e| self.error(e))?;
            let Some(row) = row else {
                transaction.commit().await.map_err(|e| self.error(e))?;
                return Ok(None);
            };
            let job = job_from_row(&row)?;
            let started = push_event(&tx, &job.id.to_string(), "started", &status_event_data(&job))
                .await
                .map_err(|e| self.error(e))?;
            transaction.commit().await.map_err(|e| self.error(e))?;
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
        Box::pin(async move {
            let mut slot = self.client().await?;
            let (client, statements) = slot.parts();
            let client = Cached::new(&*client, statements);
            let changed = client
                .execute(
                    "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND status = 'running' AND lease_token = $3",
                    &[&(now_ms() + duration_ms(lease_for)), &lease.job_id.to_string(), &lease.token.to_string()],
                )
                .await
                .map_err(|e| self.error(e))?;
            Ok(changed == 1)
        })
    }

    fn complete(&self, lease: Lease, outputs: Value) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut slot = self.client().await?;
            let (client, statements) = slot.parts();
            let transaction = client.transaction().await.map_err(|e| self.error(e))?;
            let tx = Cached::new(&transaction, statements);
            let id = lease.job_id.to_string();
            let changed = tx
                .execute(
                    "UPDATE jobs SET status = 'succeeded', outputs = $1, finished_at = $2, lease_owner = NULL, \
                     lease_token = NULL, lease_until = NULL WHERE id = $3 AND status = 'running' AND lease_token = $4",
                    &[&outputs, &now_ms(), &id, &lease.token.to_string()],
                )
                .await
                .map_err(|e| self.error(e))?;
            if changed == 1 {
                push_event(
                    &tx,
                    &id,
                    "succeeded",
                    &serde_json::json!({"status": "succeeded", "outputs": outputs}),
                )
                .await
                .map_err(|e| self.error(e))?;
            }
            transaction.commit().await.map_err(|e| self.error(e))?;
            Ok(changed == 1)
        })
    }

    fn fail(
        &self,
        lease: Lease,
        failure: JobFailure,
        policy: RetryPolicy,
    ) -> BoxFuture<'_, Result<FailOutcome, StoreError>> {
        Box::pin(async move {
            let mut slot = self.client().await?;
            let (client, statements) = slot.parts();
            let transaction = client.transaction().await.map_err(|e| self.error(e))?;
            let tx = Cached::new(&transaction, statements);
            let id = lease.job_id.to_string();
            let row = tx
                .query_opt(
                    "SELECT attempts, max_attempts FROM jobs WHERE id = $1 AND status = 'running' AND lease_token = $2 \
                     FOR UPDATE",
                    &[&id, &lease.token.to_string()],
                )
                .await
                .map_err(|e| self.error(e))?;
            let Some(row) = row else {
                return Ok(FailOutcome::LeaseLost);
            };
            let (attempts, max_attempts) = (to_u32(row.get(0)), to_u32(row.get(1)));
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
                "UPDATE jobs SET status = $1, last_error = $2, run_after = $3, finished_at = $4, lease_owner = NULL, \
                 lease_token = NULL, lease_until = NULL WHERE id = $5",
                &[&status.as_str(), &error, &run_after, &finished, &id],
            )
            .await
            .map_err(|e| self.error(e))?;
            let data = serde_json::json!({"status": status.as_str(), "attempt": attempts, "error": error, "run_after": run_after});
            push_event(&tx, &id, kind, &data)
                .await
                .map_err(|e| self.error(e))?;
            transaction.commit().await.map_err(|e| self.error(e))?;
            Ok(outcome)
        })
    }

    fn cancel(&self, id: Uuid) -> BoxFuture<'_, Result<Option<Job>, StoreError>> {
        Box::pin(async move {
            let mut slot = self.client().await?;
            let (client, statements) = slot.parts();
            let transaction = client.transaction().await.map_err(|e| self.error(e))?;
            let tx = Cached::new(&transaction, statements);
            let id = id.to_string();
            let Some(before) = self.lock_job(&tx, &id).await? else {
                return Ok(None);
            };
            if !before.status.is_terminal() {
                tx.execute(
                    "UPDATE jobs SET status = 'cancelled', finished_at = $1, lease_owner = NULL, lease_token = NULL, \
                     lease_until = NULL WHERE id = $2",
                    &[&now_ms(), &id],
                )
                .await
                .map_err(|e| self.error(e))?;
                push_event(
                    &tx,
                    &id,
                    "cancelled",
                    &serde_json::json!({"status": "cancelled", "was": before.status}),
                )
                .await
                .map_err(|e| self.error(e))?;
            }
            transaction.commit().await.map_err(|e| self.error(e))?;
            Ok(Some(before))
        })
    }

    fn retry(&self, id: Uuid) -> BoxFuture<'_, Result<Option<Job>, StoreError>> {
        Box::pin(async move {
            let mut slot = self.client().await?;
            let (client, statements) = slot.parts();
            let transaction = client.transaction().await.map_err(|e| self.error(e))?;
            let tx = Cached::new(&transaction, statements);
            let id = id.to_string();
            let Some(before) = self.lock_job(&tx, &id).await? else {
                return Ok(None);
            };
            if before.status.is_retryable() {
                tx.execute(
                    "UPDATE jobs SET status = 'queued', attempts = 0, run_after = $1, started_at = NULL, \
                     finished_at = NULL, lease_owner = NULL, lease_token = NULL, lease_until = NULL WHERE id = $2",
                    &[&now_ms(), &id],
                )
                .await
                .map_err(|e| self.error(e))?;
                push_event(&tx, &id, "retried", &retried_event_data(&before))
                    .await
                    .map_err(|e| self.error(e))?;
            }
            transaction.commit().await.map_err(|e| self.error(e))?;
            Ok(Some(before))
        })
    }

    fn release(&self, lease: Lease) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut slot = self.client().await?;
            let (client, statements) = slot.parts();
            let transaction = client.transaction().await.map_err(|e| self.error(e))?;
            let tx = Cached::new(&transaction, statements);
            let id = lease.job_id.to_string();
            let changed = tx
                .execute(
                    "UPDATE jobs SET status = 'queued', attempts = GREATEST(attempts - 1, 0), run_after = $1, \
                     lease_owner = NULL, lease_token = NULL, lease_until = NULL \
                     WHERE id = $2 AND status = 'running' AND lease_token = $3",
                    &[&now_ms(), &id, &lease.token.to_string()],
                )
                .await
                .map_err(|e| self.error(e))?;
            if changed == 1 {
                push_event(
                    &tx,
                    &id,
                    "released",
                    &serde_json::json!({"status": "queued", "worker": lease.owner}),
                )
                .await
                .map_err(|e| self.error(e))?;
            }
            transaction.commit().await.map_err(|e| self.error(e))?;
            Ok(changed == 1)
        })
    }

    fn requeue_expired(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let mut slot = self.client().await?;
            let (client, statements) = slot.parts();
            let transaction = client.transaction().await.map_err(|e| self.error(e))?;
            let tx = Cached::new(&transaction, statements);
            let now = now_ms();
            let rows = tx
                .query(
                    "SELECT id, attempts, max_attempts, lease_owner FROM jobs WHERE status = 'running' \
                     AND lease_until < $1 FOR UPDATE SKIP LOCKED",
                    &[&now],
                )
                .await
                .map_err(|e| self.error(e))?;
            for row in &rows {
                let id: String = row.get(0);
                let (attempts, max_attempts) = (to_u32(row.get(1)), to_u32(row.get(2)));
                let owner: Option<String> = row.get(3);
                let error = lease_expired_error(owner.as_deref());
                let (status, kind) = if attempts >= max_attempts {
                    ("dead", "dead")
                } else {
                    ("queued", "retrying")
                };
                let finished = (status == "dead").then_some(now);
                tx.execute(
                    "UPDATE jobs SET status = $1, last_error = $2, run_after = $3, finished_at = $4, lease_owner = NULL, \
                     lease_token = NULL, lease_until = NULL WHERE id = $5",
                    &[&status, &error, &now, &finished, &id],
                )
                .await
                .map_err(|e| self.error(e))?;
                push_event(
                    &tx,
                    &id,
                    kind,
                    &serde_json::json!({"status": status, "attempt": attempts, "error": error}),
                )
                .await
                .map_err(|e| self.error(e))?;
            }
            transaction.commit().await.map_err(|e| self.error(e))?;
            Ok(rows.len() as u64)
        })
    }

    fn get(&self, id: Uuid) -> BoxFuture<'_, Result<Option<Job>, StoreError>> {
        Box::pin(async move {
            let mut slot = self.client().await?;
            let (client, statements) = slot.parts();
            let client = Cached::new(&*client, statements);
            let row = client
                .query_opt(
                    &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"),
                    &[&id.to_string()],
                )
                .await
                .map_err(|e| self.error(e))?;
            row.as_ref().map(job_from_row).transpose()
        })
    }

    fn list(&self, filter: JobFilter) -> BoxFuture<'_, Result<Vec<Job>, StoreError>> {
        Box::pin(async move {
            let mut slot = self.client().await?;
            let (client, statements) = slot.parts();
            let client = Cached::new(&*client, statements);
            let limit = i64::from(if filter.limit == 0 { 100 } else { filter.limit });
            let status = filter.status.map(JobStatus::as_str);
            let rows = client
                .query(
                    &format!(
                        "SELECT {JOB_COLUMNS} FROM jobs WHERE ($1::TEXT IS NULL OR status = $1) \
                         AND ($2::TEXT IS NULL OR workflow = $2) ORDER BY created_at DESC, id DESC LIMIT $3"
                    ),
                    &[&status, &filter.workflow, &limit],
                )
                .await
                .map_err(|e| self.error(e))?;
            rows.iter().map(job_from_row).collect()
        })
    }

    fn append_events(
        &self,
        job_id: Uuid,
        events: Vec<(String, Value)>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut slot = self.client().await?;
            let (client, statements) = slot.parts();
            let transaction = client.transaction().await.map_err(|e| self.error(e))?;
            let tx = Cached::new(&transaction, statements);
            let id = job_id.to_string();
            // Locked, so a cancel commits before or after these events, never between.
            let open = tx
                .query_opt(
                    "SELECT status FROM jobs WHERE id = $1 AND status IN ('queued', 'running') FOR UPDATE",
                    &[&id],
                )
                .await
                .map_err(|e| self.error(e))?;
            if open.is_some() {
                for (kind, data) in &events {
                    push_event(&tx, &id, kind, data)
                        .await
                        .map_err(|e| self.error(e))?;
                }
            }
            transaction.commit().await.map_err(|e| self.error(e))
        })
    }

    fn events_after(&self, job_id: Uuid, after: i64) -> BoxFuture<'_, Result<Vec<JobEvent>, StoreError>> {
        Box::pin(async move {
            let mut slot = self.client().await?;
            let (client, statements) = slot.parts();
            let client = Cached::new(&*client, statements);
            let rows = client
                .query(
                    "SELECT seq, at, kind, data FROM job_events WHERE job_id = $1 AND seq > $2 ORDER BY seq",
                    &[&job_id.to_string(), &after],
                )
                .await
                .map_err(|e| self.error(e))?;
            Ok(rows
                .iter()
                .map(|row| JobEvent {
                    job_id,
                    seq: row.get(0),
                    at: row.get(1),
                    kind: row.get(2),
                    data: row.get(3),
                })
                .collect())
        })
    }

    fn stats(&self) -> BoxFuture<'_, Result<QueueStats, StoreError>> {
        Box::pin(async move {
            let mut slot = self.client().await?;
            let (client, statements) = slot.parts();
            let client = Cached::new(&*client, statements);
            let rows = client
                .query(
                    "SELECT workflow, status, COUNT(*) FROM jobs GROUP BY workflow, status ORDER BY 1, 2",
                    &[],
                )
                .await
                .map_err(|e| self.error(e))?;
            let mut jobs = Vec::new();
            for row in rows {
                let status: String = row.get(1);
                let status = status
                    .parse()
                    .map_err(|e: crate::job::UnknownStatus| corrupt(e.to_string()))?;
                jobs.push((
                    row.get(0),
                    status,
                    u64::try_from(row.get::<_, i64>(2)).unwrap_or(0),
                ));
            }
            let rows = client
                .query(
                    "SELECT kind, COUNT(*) FROM job_events GROUP BY kind ORDER BY 1",
                    &[],
                )
                .await
                .map_err(|e| self.error(e))?;
            let events = rows
                .iter()
                .map(|r| (r.get(0), u64::try_from(r.get::<_, i64>(1)).unwrap_or(0)))
                .collect();
            Ok(QueueStats { jobs, events })
        })
    }

    fn create_key(
        &self,
        name: String,
        prefix: String,
        hash: String,
    ) -> BoxFuture<'_, Result<ApiKeyRecord, StoreError>> {
        Box::pin(async move {
            let mut slot = self.client().await?;
            let (client, statements) = slot.parts();
            let client = Cached::new(&*client, statements);
            let record = ApiKeyRecord {
                id: Uuid::now_v7().to_string(),
                name,
                prefix,
                created_at: now_ms(),
                revoked_at: None,
            };
            client
                .execute(
                    "INSERT INTO api_keys (id, name, prefix, hash, created_at) VALUES ($1, $2, $3, $4, $5)",
                    &[
                        &record.id,
                        &record.name,
                        &record.prefix,
                        &hash,
                        &record.created_at,
                    ],
                )
                .await
                .map_err(|e| self.error(e))?;
            Ok(record)
        })
    }

    fn list_keys(&self) -> BoxFuture<'_, Result<Vec<ApiKeyRecord>, StoreError>> {
        Box::pin(async move {
            let mut slot = self.client().await?;
            let (client, statements) = slot.parts();
            let client = Cached::new(&*client, statements);
            let rows = client
                .query(
                    "SELECT id, name, prefix, created_at, revoked_at FROM api_keys ORDER BY created_at, id",
                    &[],
                )
                .await
                .map_err(|e| self.error(e))?;
            Ok(rows.iter().map(key_from_row).collect())
        })
    }

    fn revoke_key(&self, which: String) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let mut slot = self.client().await?;
            let (client, statements) = slot.parts();
            let client = Cached::new(&*client, statements);
            client
                .execute(
                    "UPDATE api_keys SET revoked_at = $1 WHERE revoked_at IS NULL AND (id = $2 OR name = $2 OR prefix = $2)",
                    &[&now_ms(), &which],
                )
                .await
                .map_err(|e| self.error(e))
        })
    }

    fn find_key(&self, hash: String) -> BoxFuture<'_, Result<Option<ApiKeyRecord>, StoreError>> {
        Box::pin(async move {
            let mut slot = self.client().await?;
            let (client, statements) = slot.parts();
            let client = Cached::new(&*client, statements);
            let row = client
                .query_opt(
                    "SELECT id, name, prefix, created_at, revoked_at FROM api_keys WHERE hash = $1 AND revoked_at IS NULL",
                    &[&hash],
                )
                .await
                .map_err(|e| self.error(e))?;
            Ok(row.as_ref().map(key_from_row))
        })
    }
}

#[cfg(test)]
mod tests {
    use comfydock_test::postgres::PostgresServer;

    use super::PostgresStore;
    use crate::store::contract;

    /// One server for every contract check (starting one costs seconds); a fresh database each.
    #[tokio::test]
    async fn postgres_store_meets_the_queue_contract() {
        let server = PostgresServer::start();
        macro_rules! check {
            ($($name:ident),* $(,)?) => {$(
                let url = server.create_database(stringify!($name));
                let store = PostgresStore::connect(&url).await.unwrap();
                contract::$name(&store).await;
            )*};
        }
        check!(
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
    }

    #[tokio::test]
    async fn connections_are_replaced_after_a_server_restart() {
        let server = PostgresServer::start();
        let url = server.create_database("restart");
        let store = PostgresStore::connect(&url).await.unwrap();
        let job =
            crate::store::JobStore::enqueue(&store, crate::job::NewJob::new("w", serde_json::json!({})))
                .await
                .unwrap()
                .job;
        // Blocking the test's runtime for the restart is fine: nothing else runs meanwhile.
        server.restart();
        // The first call may still see the old connection die; a closed connection is then replaced.
        let mut found = None;
        for _ in 0..20 {
            if let Ok(job) = crate::store::JobStore::get(&store, job.id).await {
                found = job;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(found.expect("the job survives the restart").id, job.id);
    }

    #[tokio::test]
    async fn concurrent_claimers_never_share_a_job() {
        let server = PostgresServer::start();
        let url = server.create_database("race");
        let a = std::sync::Arc::new(PostgresStore::connect(&url).await.unwrap());
        let b = std::sync::Arc::new(PostgresStore::connect(&url).await.unwrap());
        for i in 0..200 {
            crate::store::JobStore::enqueue(&*a, crate::job::NewJob::new("w", serde_json::json!({"i": i})))
                .await
                .unwrap();
        }
        let mut tasks = Vec::new();
        for (n, store) in [a.clone(), b.clone(), a.clone(), b.clone()]
            .into_iter()
            .enumerate()
        {
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(claimed) = crate::store::JobStore::claim(
                    &*store,
                    format!("w{n}"),
                    vec!["w".into()],
                    std::time::Duration::from_mins(1),
                )
                .await
                .unwrap()
                {
                    assert!(
                        crate::store::JobStore::complete(&*store, claimed.lease, serde_json::json!({}))
                            .await
                            .unwrap()
                    );
                    mine.push(claimed.job.id);
                }
                mine
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        let total = all.len();
        all.sort();
        all.dedup();
        assert_eq!((total, all.len()), (200, 200), "every job claimed exactly once");
    }
}
