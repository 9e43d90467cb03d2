//! The durable job queue: one [`JobStore`] trait, two databases.
//!
//! [`sqlite::SqliteStore`] is the embedded default (WAL, `busy_timeout`, one writer connection);
//! [`postgres::PostgresStore`] lets several `serve` instances share one queue (`FOR UPDATE SKIP
//! LOCKED`). Both keep the same tables: `jobs`, `job_events` (the replayable per-job log) and
//! `api_keys` (hashed bearer keys). Every state change that a client can observe appends its event
//! in the same transaction, so the log and the row never disagree.

pub mod postgres;
pub mod sqlite;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::job::{
    Claimed, Enqueued, FailOutcome, Job, JobEvent, JobFailure, JobStatus, Lease, NewJob, RetryPolicy,
};

/// Errors of the queue database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("SQLite queue database `{path}` failed")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("PostgreSQL queue `{url}` failed")]
    Postgres {
        /// The connection URL without its password.
        url: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("queue database `{location}` holds a malformed row: {message}")]
    Corrupt { location: String, message: String },
    #[error("`{0}` is not a queue database URL (expected `sqlite:PATH` or `postgres://…`)")]
    UnknownUrl(String),
    /// Opening or migrating the SQLite queue file failed (names the file).
    #[error(transparent)]
    SqliteOpen(#[from] comfydock_foundation::sqlite::SqliteError),
    #[error("queue database task panicked or was cancelled")]
    Join(#[source] tokio::task::JoinError),
}

impl comfydock_foundation::Hinted for StoreError {
    fn hint(&self) -> Option<String> {
        match self {
            StoreError::UnknownUrl(_) => {
                Some("use `--db sqlite:PATH` or `--db postgres://USER@HOST/DB`".to_owned())
            }
            StoreError::SqliteOpen(e) => e.hint(),
            StoreError::Postgres { url, .. } => Some(format!(
                "check that PostgreSQL answers: `psql {url} -c 'select 1'`"
            )),
            _ => None,
        }
    }
}

/// Which jobs [`JobStore::list`] returns.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub workflow: Option<String>,
    /// At most this many (newest first); 0 = 100.
    pub limit: u32,
}

/// A stored API key (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    /// The first characters of the key, to recognise it in listings.
    pub prefix: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// Numbers for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Jobs per (workflow, status).
    pub jobs: Vec<(String, JobStatus, u64)>,
    /// Events per kind (`retrying`, `failed`, `dead`, ...), i.e. totals since the queue was created.
    pub events: Vec<(String, u64)>,
}

impl QueueStats {
    /// Jobs in `status`, over every workflow.
    pub fn count(&self, status: JobStatus) -> u64 {
        self.jobs
            .iter()
            .filter(|(_, s, _)| *s == status)
            .map(|(_, _, n)| n)
            .sum()
    }
}

/// A durable priority queue of jobs with leases.
///
/// Jobs are claimed by priority (higher first) then age. A claim holds a lease that the worker
/// extends with [`JobStore::heartbeat`]; a lease that runs out puts the job back
/// ([`JobStore::requeue_expired`]). Completion and failure are conditional on the lease, so each
/// job's outcome is recorded exactly once.
pub trait JobStore: Send + Sync {
    /// Adds a job (or returns the existing one with the same idempotency key) and logs `queued`.
    fn enqueue(&self, job: NewJob) -> BoxFuture<'_, Result<Enqueued, StoreError>>;

    /// Claims the best queued job of one of `workflows` for `lease` time, logging `started`.
    fn claim(
        &self,
        owner: String,
        workflows: Vec<String>,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Option<Claimed>, StoreError>>;

    /// Extends a lease. False when it is no longer ours (expired and reclaimed, or cancelled).
    fn heartbeat(&self, lease: Lease, lease_for: Duration) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// Records success with the outputs, logging `succeeded`. False when the lease was lost.
    fn complete(&self, lease: Lease, outputs: Value) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// Records a failed attempt: transient ones are retried with backoff until `max_attempts`,
    /// then dead-lettered; permanent ones fail the job.
    fn fail(
        &self,
        lease: Lease,
        failure: JobFailure,
        policy: RetryPolicy,
    ) -> BoxFuture<'_, Result<FailOutcome, StoreError>>;

    /// Cancels a queued or running job (the lease, if any, is dropped). Returns the job as it was
    /// before, or `None` when it does not exist. Terminal jobs are left unchanged.
    fn cancel(&self, id: Uuid) -> BoxFuture<'_, Result<Option<Job>, StoreError>>;

    /// Puts a dead-lettered or failed job back in the queue with a fresh budget of attempts,
    /// logging `retried` (with the error it had). Returns the job as it was before, or `None`
    /// when it does not exist. Jobs in any other state are left unchanged ([`JobStatus::is_retryable`]).
    fn retry(&self, id: Uuid) -> BoxFuture<'_, Result<Option<Job>, StoreError>>;

    /// Gives a claimed job back without counting the attempt (the instance is shutting down).
    /// False when the lease was no longer ours.
    fn release(&self, lease: Lease) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// Puts running jobs whose lease ran out back in the queue (or dead-letters them when their
    /// attempts are used up). Returns how many were touched.
    fn requeue_expired(&self) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// One job.
    fn get(&self, id: Uuid) -> BoxFuture<'_, Result<Option<Job>, StoreError>>;

    /// Jobs, newest first.
    fn list(&self, filter: JobFilter) -> BoxFuture<'_, Result<Vec<Job>, StoreError>>;

    /// Appends events (`(kind, data)`: progress, node, output) to a job's log in one transaction,
    /// in order; nothing once the job has finished (a run's last events may still be on their way
    /// when a client cancels it, and the log must end with its outcome).
    fn append_events(
        &self,
        job_id: Uuid,
        events: Vec<(String, Value)>,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// The events of a job with `seq > after`, in order.
    fn events_after(&self, job_id: Uuid, after: i64) -> BoxFuture<'_, Result<Vec<JobEvent>, StoreError>>;

    /// Counts for metrics.
    fn stats(&self) -> BoxFuture<'_, Result<QueueStats, StoreError>>;

    /// Stores a new API key by its hash.
    fn create_key(
        &self,
        name: String,
        prefix: String,
        hash: String,
    ) -> BoxFuture<'_, Result<ApiKeyRecord, StoreError>>;

    /// Every key, revoked ones included.
    fn list_keys(&self) -> BoxFuture<'_, Result<Vec<ApiKeyRecord>, StoreError>>;

    /// Revokes keys whose id, name or prefix equals `which`. Returns how many.
    fn revoke_key(&self, which: String) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// The active key with this hash.
    fn find_key(&self, hash: String) -> BoxFuture<'_, Result<Option<ApiKeyRecord>, StoreError>>;
}

/// Opens the store named by `url`: `sqlite:PATH` (created when missing) or `postgres://…`.
pub async fn open(url: &str) -> Result<Arc<dyn JobStore>, StoreError> {
    if let Some(path) = url.strip_prefix("sqlite:") {
        let path = PathBuf::from(path.strip_prefix("//").unwrap_or(path));
        let store = tokio::task::spawn_blocking(move || sqlite::SqliteStore::open(&path))
            .await
            .map_err(StoreError::Join)??;
        Ok(Arc::new(store))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PostgresStore::connect(url).await?))
    } else {
        Err(StoreError::UnknownUrl(url.to_owned()))
    }
}

/// The `last_error` JSON for a lease that ran out.
pub(crate) fn lease_expired_error(owner: Option<&str>) -> Value {
    JobFailure::transient(
        "lease_expired",
        format!("the worker `{}` stopped renewing its lease", owner.unwrap_or("?")),
    )
    .to_json()
}

/// The event data logged for a job state change.
pub(crate) fn status_event_data(job: &Job) -> Value {
    serde_json::json!({
        "status": job.status.as_str(),
        "attempt": job.attempts,
        "worker": job.lease_owner,
    })
}

/// The event data logged when a job is retried by hand.
pub(crate) fn retried_event_data(before: &Job) -> Value {
    serde_json::json!({
        "status": "queued",
        "was": before.status.as_str(),
        "attempts": before.attempts,
        "error": before.last_error,
    })
}

/// Event kind and status for a failed attempt.
pub(crate) fn failure_target(
    attempts: u32,
    max_attempts: u32,
    failure: &JobFailure,
) -> (JobStatus, &'static str) {
    if !failure.transient {
        (JobStatus::Failed, "failed")
    } else if attempts >= max_attempts {
        (JobStatus::Dead, "dead")
    } else {
        (JobStatus::Queued, "retrying")
    }
}

#[cfg(test)]
pub(crate) mod contract {
    //! The behaviour both stores must show, run against each of them.

    use std::time::Duration;

    use serde_json::json;

    use super::JobStore;
    use crate::job::{FailOutcome, JobFailure, JobStatus, NewJob, RetryPolicy};

    const LEASE: Duration = Duration::from_secs(30);

    fn no_backoff() -> RetryPolicy {
        RetryPolicy {
            base: Duration::ZERO,
            max: Duration::ZERO,
            jitter: 0.0,
        }
    }

    fn wf() -> Vec<String> {
        vec!["txt2img".to_owned()]
    }

    pub async fn claims_by_priority_then_age(store: &dyn JobStore) {
        let low = store
            .enqueue(NewJob::new("txt2img", json!({"n": 1})))
            .await
            .unwrap()
            .job;
        let mut high = NewJob::new("txt2img", json!({"n": 2}));
        high.priority = 5;
        let high = store.enqueue(high).await.unwrap().job;
        let low2 = store
            .enqueue(NewJob::new("txt2img", json!({"n": 3})))
            .await
            .unwrap()
            .job;
        let other = store.enqueue(NewJob::new("other", json!({}))).await.unwrap().job;

        let mut order = Vec::new();
        for _ in 0..3 {
            order.push(
                store
                    .claim("w".into(), wf(), LEASE)
                    .await
                    .unwrap()
                    .unwrap()
                    .job
                    .id,
            );
        }
        assert_eq!(order, vec![high.id, low.id, low2.id]);
        assert!(
            store.claim("w".into(), wf(), LEASE).await.unwrap().is_none(),
            "only txt2img jobs"
        );
        let claimed = store
            .claim("w".into(), vec!["other".into()], LEASE)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.job.id, other.id);
        assert_eq!(claimed.job.status, JobStatus::Running);
        assert_eq!(claimed.job.attempts, 1);
        assert_eq!(claimed.job.lease_owner.as_deref(), Some("w"));
    }

    pub async fn idempotency_key_returns_the_first_job(store: &dyn JobStore) {
        let mut job = NewJob::new("txt2img", json!({"seed": 1}));
        job.idempotency_key = Some("abc".into());
        let first = store.enqueue(job.clone()).await.unwrap();
        let second = store.enqueue(job).await.unwrap();
        assert!(first.created);
        assert!(!second.created);
        assert_eq!(first.job.id, second.job.id);
        assert_eq!(store.list(super::JobFilter::default()).await.unwrap().len(), 1);
    }

    pub async fn completion_is_recorded_once(store: &dyn JobStore) {
        let job = store
            .enqueue(NewJob::new("txt2img", json!({})))
            .await
            .unwrap()
            .job;
        let claimed = store.claim("a".into(), wf(), LEASE).await.unwrap().unwrap();
        assert!(store.heartbeat(claimed.lease.clone(), LEASE).await.unwrap());
        assert!(
            store
                .complete(claimed.lease.clone(), json!({"files": ["x.png"]}))
                .await
                .unwrap()
        );
        assert!(
            !store
                .complete(claimed.lease.clone(), json!({"files": ["y.png"]}))
                .await
                .unwrap()
        );
        assert!(!store.heartbeat(claimed.lease.clone(), LEASE).await.unwrap());
        let done = store.get(job.id).await.unwrap().unwrap();
        assert_eq!(done.status, JobStatus::Succeeded);
        assert_eq!(done.outputs, Some(json!({"files": ["x.png"]})));
        assert!(done.finished_at.is_some());
        assert_eq!(done.lease_owner, None);
        let kinds: Vec<_> = store
            .events_after(job.id, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.seq, e.kind))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (1, "queued".to_owned()),
                (2, "started".to_owned()),
                (3, "succeeded".to_owned())
            ]
        );
        assert_eq!(store.events_after(job.id, 2).await.unwrap().len(), 1);
    }

    pub async fn transient_failures_retry_then_dead_letter(store: &dyn JobStore) {
        let mut new = NewJob::new("txt2img", json!({}));
        new.max_attempts = 2;
        let job = store.enqueue(new).await.unwrap().job;
        let policy = RetryPolicy {
            base: Duration::from_millis(300),
            max: Duration::from_secs(1),
            jitter: 0.0,
        };

        let first = store.claim("a".into(), wf(), LEASE).await.unwrap().unwrap();
        let outcome = store
            .fail(
                first.lease.clone(),
                JobFailure::transient("backend_unreachable", "down"),
                policy,
            )
            .await
            .unwrap();
        let FailOutcome::Retrying { run_after } = outcome else {
            panic!("expected a retry, got {outcome:?}")
        };
        assert!(run_after >= crate::job::now_ms() + 200, "backoff applies");
        assert!(
            store.claim("b".into(), wf(), LEASE).await.unwrap().is_none(),
            "not before backoff"
        );
        tokio::time::sleep(Duration::from_millis(350)).await;
        let second = store.claim("b".into(), wf(), LEASE).await.unwrap().unwrap();
        assert_eq!(second.job.attempts, 2);
        assert_eq!(
            second.job.last_error.as_ref().unwrap()["kind"],
            "backend_unreachable"
        );
        // The first worker's lease is gone: its late report changes nothing.
        assert_eq!(
            store
                .fail(first.lease, JobFailure::transient("timeout", "late"), policy)
                .await
                .unwrap(),
            FailOutcome::LeaseLost
        );
        let outcome = store
            .fail(
                second.lease,
                JobFailure::transient("timeout", "no answer in 10 s"),
                policy,
            )
            .await
            .unwrap();
        assert_eq!(outcome, FailOutcome::Dead);
        let dead = store.get(job.id).await.unwrap().unwrap();
        assert_eq!(dead.status, JobStatus::Dead);
        assert_eq!(dead.last_error.unwrap()["message"], "no answer in 10 s");
        let kinds: Vec<_> = store
            .events_after(job.id, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["queued", "started", "retrying", "started", "dead"]);
        let stats = store.stats().await.unwrap();
        assert!(stats.events.contains(&("retrying".to_owned(), 1)));
        assert!(stats.jobs.contains(&("txt2img".to_owned(), JobStatus::Dead, 1)));
    }

    pub async fn permanent_failures_are_not_retried(store: &dyn JobStore) {
        let job = store
            .enqueue(NewJob::new("txt2img", json!({})))
            .await
            .unwrap()
            .job;
        let claimed = store.claim("a".into(), wf(), LEASE).await.unwrap().unwrap();
        let failure = JobFailure::permanent("execution_error", "CUDA out of memory")
            .with_detail(json!({"node_id": "3"}));
        assert_eq!(
            store.fail(claimed.lease, failure, no_backoff()).await.unwrap(),
            FailOutcome::Failed
        );
        let failed = store.get(job.id).await.unwrap().unwrap();
        assert_eq!(failed.status, JobStatus::Failed);
        assert_eq!(failed.attempts, 1);
        assert_eq!(failed.last_error.unwrap()["detail"]["node_id"], "3");
        assert!(store.claim("a".into(), wf(), LEASE).await.unwrap().is_none());
    }

    pub async fn expired_leases_are_requeued(store: &dyn JobStore) {
        let mut new = NewJob::new("txt2img", json!({}));
        new.max_attempts = 2;
        let job = store.enqueue(new).await.unwrap().job;
        let lost = store
            .claim("crashed".into(), wf(), Duration::from_millis(100))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(store.requeue_expired().await.unwrap(), 0, "lease still valid");
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(store.requeue_expired().await.unwrap(), 1);
        let requeued = store.get(job.id).await.unwrap().unwrap();
        assert_eq!(requeued.status, JobStatus::Queued);
        assert_eq!(requeued.last_error.unwrap()["kind"], "lease_expired");
        assert!(
            !store.complete(lost.lease.clone(), json!({})).await.unwrap(),
            "an expired lease cannot complete"
        );

        let second = store
            .claim("b".into(), wf(), Duration::from_millis(100))
            .await
            .unwrap()
            .unwrap();
        assert_ne!(second.lease.token, lost.lease.token);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(store.requeue_expired().await.unwrap(), 1);
        assert_eq!(
            store.get(job.id).await.unwrap().unwrap().status,
            JobStatus::Dead,
            "attempts used up"
        );
    }

    pub async fn cancel_queued_and_running(store: &dyn JobStore) {
        let queued = store
            .enqueue(NewJob::new("txt2img", json!({"a": 1})))
            .await
            .unwrap()
            .job;
        let before = store.cancel(queued.id).await.unwrap().unwrap();
        assert_eq!(before.status, JobStatus::Queued);
        assert_eq!(
            store.get(queued.id).await.unwrap().unwrap().status,
            JobStatus::Cancelled
        );

        store
            .enqueue(NewJob::new("txt2img", json!({"a": 2})))
            .await
            .unwrap();
        let claimed = store.claim("w".into(), wf(), LEASE).await.unwrap().unwrap();
        let before = store.cancel(claimed.job.id).await.unwrap().unwrap();
        assert_eq!(before.status, JobStatus::Running);
        assert!(
            !store.heartbeat(claimed.lease.clone(), LEASE).await.unwrap(),
            "worker learns of the cancel"
        );
        assert!(!store.complete(claimed.lease, json!({})).await.unwrap());
        // Events of the run that were on their way when it was cancelled are dropped: the log
        // ends with `cancelled`.
        store
            .append_events(claimed.job.id, vec![("progress".into(), json!({"value": 9}))])
            .await
            .unwrap();
        let cancelled = store.get(claimed.job.id).await.unwrap().unwrap();
        assert_eq!(cancelled.status, JobStatus::Cancelled);
        // Cancelling again leaves a terminal job alone.
        assert_eq!(
            store.cancel(claimed.job.id).await.unwrap().unwrap().status,
            JobStatus::Cancelled
        );
        assert!(store.cancel(uuid::Uuid::now_v7()).await.unwrap().is_none());
        let kinds: Vec<_> = store
            .events_after(claimed.job.id, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["queued", "started", "cancelled"]);
    }

    pub async fn retry_requeues_dead_and_failed_jobs_only(store: &dyn JobStore) {
        let mut new = NewJob::new("txt2img", json!({"x": 1}));
        new.max_attempts = 1;
        let job = store.enqueue(new).await.unwrap().job;
        let claimed = store.claim("w".into(), wf(), LEASE).await.unwrap().unwrap();
        assert_eq!(
            store
                .fail(
                    claimed.lease,
                    JobFailure::transient("timeout", "no answer"),
                    no_backoff()
                )
                .await
                .unwrap(),
            FailOutcome::Dead
        );
        let before = store.retry(job.id).await.unwrap().unwrap();
        assert_eq!((before.status, before.attempts), (JobStatus::Dead, 1));
        let again = store.get(job.id).await.unwrap().unwrap();
        assert_eq!(
            (again.status, again.attempts, again.finished_at, again.started_at),
            (JobStatus::Queued, 0, None, None),
            "a fresh budget of attempts"
        );
        assert_eq!(
            again.last_error.as_ref().unwrap()["kind"],
            "timeout",
            "the error stays visible"
        );
        let log = store.events_after(job.id, 0).await.unwrap();
        let retried = log.last().unwrap();
        assert_eq!(retried.kind, "retried");
        assert_eq!(retried.data["was"], "dead");
        assert_eq!(retried.data["error"]["message"], "no answer");
        let claimed = store.claim("w".into(), wf(), LEASE).await.unwrap().unwrap();
        assert_eq!((claimed.job.id, claimed.job.attempts), (job.id, 1));

        // Running, queued, succeeded and cancelled jobs are left alone.
        let before = store.retry(job.id).await.unwrap().unwrap();
        assert_eq!(before.status, JobStatus::Running);
        assert_eq!(
            store.get(job.id).await.unwrap().unwrap().status,
            JobStatus::Running
        );
        assert!(store.complete(claimed.lease, json!({"files": []})).await.unwrap());
        assert_eq!(
            store.retry(job.id).await.unwrap().unwrap().status,
            JobStatus::Succeeded
        );
        assert_eq!(
            store.get(job.id).await.unwrap().unwrap().status,
            JobStatus::Succeeded
        );
        let queued = store
            .enqueue(NewJob::new("txt2img", json!({"x": 2})))
            .await
            .unwrap()
            .job;
        store.cancel(queued.id).await.unwrap();
        assert_eq!(
            store.retry(queued.id).await.unwrap().unwrap().status,
            JobStatus::Cancelled
        );
        assert_eq!(
            store.get(queued.id).await.unwrap().unwrap().status,
            JobStatus::Cancelled
        );

        // A permanent failure can be retried too (e.g. after installing a missing model).
        let failed = store
            .enqueue(NewJob::new("txt2img", json!({"x": 3})))
            .await
            .unwrap()
            .job;
        let claimed = store.claim("w".into(), wf(), LEASE).await.unwrap().unwrap();
        assert_eq!(claimed.job.id, failed.id);
        store
            .fail(
                claimed.lease,
                JobFailure::permanent("execution_error", "missing model"),
                no_backoff(),
            )
            .await
            .unwrap();
        assert_eq!(
            store.retry(failed.id).await.unwrap().unwrap().status,
            JobStatus::Failed
        );
        assert_eq!(
            store.get(failed.id).await.unwrap().unwrap().status,
            JobStatus::Queued
        );
        assert!(store.retry(uuid::Uuid::now_v7()).await.unwrap().is_none());
    }

    pub async fn release_returns_the_job_without_counting_the_attempt(store: &dyn JobStore) {
        let job = store
            .enqueue(NewJob::new("txt2img", json!({})))
            .await
            .unwrap()
            .job;
        let claimed = store.claim("w".into(), wf(), LEASE).await.unwrap().unwrap();
        assert!(claimed.fresh, "a first claim finds nothing to take over");
        assert!(store.release(claimed.lease.clone()).await.unwrap());
        assert!(!store.release(claimed.lease.clone()).await.unwrap(), "only once");
        let released = store.get(job.id).await.unwrap().unwrap();
        assert_eq!((released.status, released.attempts), (JobStatus::Queued, 0));
        assert!(!store.complete(claimed.lease, json!({})).await.unwrap());
        let again = store.claim("w2".into(), wf(), LEASE).await.unwrap().unwrap();
        assert_eq!((again.job.id, again.job.attempts), (job.id, 1));
        assert!(
            !again.fresh,
            "the first run may have left a prompt, though its attempt was not counted"
        );
        let kinds: Vec<_> = store
            .events_after(job.id, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["queued", "started", "released", "started"]);
    }

    pub async fn events_and_listing(store: &dyn JobStore) {
        let a = store
            .enqueue(NewJob::new("txt2img", json!({})))
            .await
            .unwrap()
            .job;
        store.enqueue(NewJob::new("other", json!({}))).await.unwrap();
        store
            .append_events(
                a.id,
                vec![
                    ("progress".into(), json!({"value": 3, "max": 20})),
                    ("node".into(), json!({"node": "3"})),
                ],
            )
            .await
            .unwrap();
        let listed = store
            .list(super::JobFilter {
                workflow: Some("txt2img".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        let queued = store
            .list(super::JobFilter {
                status: Some(JobStatus::Queued),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(queued.len(), 2);
        let after_queued = store.events_after(a.id, 1).await.unwrap();
        let logged: Vec<_> = after_queued.iter().map(|e| (e.seq, e.kind.as_str())).collect();
        assert_eq!(logged, [(2, "progress"), (3, "node")]);
        assert_eq!(after_queued[0].data["value"], 3);
    }

    pub async fn api_keys(store: &dyn JobStore) {
        let key = store
            .create_key("ci".into(), "cdk_abcd".into(), "hash1".into())
            .await
            .unwrap();
        assert_eq!(store.find_key("hash1".into()).await.unwrap().unwrap().id, key.id);
        assert!(store.find_key("nope".into()).await.unwrap().is_none());
        assert_eq!(store.revoke_key("ci".into()).await.unwrap(), 1);
        assert!(store.find_key("hash1".into()).await.unwrap().is_none());
        assert!(store.list_keys().await.unwrap()[0].revoked_at.is_some());
    }
}
