//! Jobs and their events as the queue stores them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Where a job is in its life.
///
/// `queued → running → succeeded | failed | dead | cancelled`, and `running → queued` when a
/// transient failure is retried or a lease expires, and `dead | failed → queued` when a client
/// retries the job (`POST /v1/jobs/{id}/retry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for a worker (possibly not before `run_after`).
    Queued,
    /// Claimed by a worker holding a lease.
    Running,
    /// Finished; outputs recorded.
    Succeeded,
    /// Finished with a permanent error (validation or execution); never retried automatically.
    Failed,
    /// Cancelled by a client.
    Cancelled,
    /// Dead-lettered: transient failures used up every attempt. `last_error` says the last one.
    Dead,
}

impl JobStatus {
    /// Every status, in life order.
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Cancelled,
        JobStatus::Dead,
    ];

    /// The name stored in the database and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Dead => "dead",
        }
    }

    /// Whether a client may put the job back in the queue (`POST /v1/jobs/{id}/retry`): dead-lettered
    /// jobs (attempts used up) and failed ones (a permanent error that a change elsewhere, such as a
    /// model installed since, may have fixed).
    pub fn is_retryable(self) -> bool {
        matches!(self, JobStatus::Dead | JobStatus::Failed)
    }

    /// Whether the job will never change again (unless retried by hand).
    pub fn is_terminal(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is not one of [`JobStatus::ALL`].
#[derive(Debug, thiserror::Error)]
#[error("unknown job status `{0}` (expected queued, running, succeeded, failed, cancelled or dead)")]
pub struct UnknownStatus(pub String);

impl FromStr for JobStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// What a client asks to run.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// The workflow name (the API route `POST /v1/workflows/{name}/jobs`).
    pub workflow: String,
    /// Validated parameters (JSON object).
    pub params: Value,
    /// Higher runs first; equal priorities run oldest first.
    pub priority: i32,
    /// Attempts allowed for transient failures before the job is dead-lettered.
    pub max_attempts: u32,
    /// A client-chosen key: a second submission with the same key returns the first job.
    pub idempotency_key: Option<String>,
    /// A URL that gets a POST when the job finishes.
    pub webhook: Option<String>,
}

impl NewJob {
    /// A job with default priority (0), three attempts, no key and no webhook.
    pub fn new(workflow: impl Into<String>, params: Value) -> Self {
        Self {
            workflow: workflow.into(),
            params,
            priority: 0,
            max_attempts: 3,
            idempotency_key: None,
            webhook: None,
        }
    }
}

/// A job row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub id: Uuid,
    pub workflow: String,
    pub params: Value,
    pub priority: i32,
    pub status: JobStatus,
    /// Claims so far (a retry increments it when claimed again).
    pub attempts: u32,
    pub max_attempts: u32,
    pub idempotency_key: Option<String>,
    pub webhook: Option<String>,
    /// The worker holding the lease while running.
    pub lease_owner: Option<String>,
    /// Lease expiry (ms since the Unix epoch).
    pub lease_until: Option<i64>,
    /// Not claimable before this instant (ms); set by retry backoff.
    pub run_after: i64,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// The last failure, kept when the job is retried, failed or dead-lettered.
    pub last_error: Option<Value>,
    /// What the job produced (set once, on success).
    pub outputs: Option<Value>,
}

/// Proof of a claim: every later state change of the job must present it.
///
/// The token is fresh per claim, so a worker whose lease expired (and whose job another worker
/// claimed) can no longer heartbeat, complete or fail it: completion is recorded exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub job_id: Uuid,
    pub owner: String,
    pub token: Uuid,
}

/// A claimed job with its lease.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub job: Job,
    pub lease: Lease,
    /// Nothing happened to the job before this claim (its log held only `queued`), so no earlier
    /// attempt can have left a prompt on a backend.
    pub fresh: bool,
}

/// The result of enqueueing a job (`JobStore::enqueue` of the store).
#[derive(Debug, Clone)]
pub struct Enqueued {
    pub job: Job,
    /// False when the idempotency key matched an existing job (returned unchanged).
    pub created: bool,
}

/// Why a run failed, and whether running it again could help.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobFailure {
    /// True for backend down, connection lost, timeout: retried with backoff.
    /// False for validation or execution errors: the job fails at once.
    pub transient: bool,
    /// Machine-readable kind (`backend_unreachable`, `timeout`, `execution_error`, ...).
    pub kind: String,
    /// Human-readable explanation.
    pub message: String,
    /// Extra data (ComfyUI's error body, the backend URL, ...).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub detail: Value,
}

impl JobFailure {
    /// A failure that a retry may fix.
    pub fn transient(kind: &str, message: impl Into<String>) -> Self {
        Self {
            transient: true,
            kind: kind.to_owned(),
            message: message.into(),
            detail: Value::Null,
        }
    }

    /// A failure that a retry cannot fix.
    pub fn permanent(kind: &str, message: impl Into<String>) -> Self {
        Self {
            transient: false,
            kind: kind.to_owned(),
            message: message.into(),
            detail: Value::Null,
        }
    }

    /// The same failure with extra data.
    #[must_use]
    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }

    /// The JSON kept in `last_error`.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// What happened to a job after a failure was recorded (`JobStore::fail` of the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Queued again, claimable from this instant (ms).
    Retrying { run_after: i64 },
    /// A permanent failure: status `failed`.
    Failed,
    /// Attempts used up: status `dead`.
    Dead,
    /// The lease was no longer ours (expired and reclaimed, or the job was cancelled): nothing changed.
    LeaseLost,
}

/// One entry of a job's replayable event log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobEvent {
    pub job_id: Uuid,
    /// 1, 2, 3, ... per job, without gaps.
    pub seq: i64,
    /// ms since the Unix epoch.
    pub at: i64,
    /// `queued`, `started`, `submitting` (backend, prompt and client id, stored before the
    /// prompt is sent), `submitted`, `adopted` (a later attempt took over that prompt), `progress`,
    /// `node`, `output`, `retrying`, `released`, `succeeded`, `failed`, `dead`, `cancelled`, `retried`
    /// (a client put a dead or failed job back in the queue).
    pub kind: String,
    pub data: Value,
}

/// Exponential backoff with jitter for transient failures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Delay before the second attempt.
    pub base: Duration,
    /// Upper bound of any delay.
    pub max: Duration,
    /// Fraction of the delay that is randomised (0.0 = none, 0.5 = ±50%).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            max: Duration::from_mins(2),
            jitter: 0.3,
        }
    }
}

impl RetryPolicy {
    /// The delay after the `attempt`-th failed attempt (1-based): `base · 2^(attempt-1)`,
    /// capped at `max`, then jittered by ±`jitter`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let raw = self.base.saturating_mul(1u32 << exponent).min(self.max);
        if self.jitter <= 0.0 {
            return raw;
        }
        let spread = self.jitter.min(1.0);
        let factor = 1.0 + rand::random_range(-spread..=spread);
        raw.mul_f64(factor).min(self.max)
    }
}

/// Current time in ms since the Unix epoch.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// `ms` since the epoch as RFC 3339 text.
pub fn format_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_round_trip() {
        for status in JobStatus::ALL {
            assert_eq!(status.as_str().parse::<JobStatus>().unwrap(), status);
        }
        assert!("done".parse::<JobStatus>().is_err());
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let policy = RetryPolicy {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter: 0.0,
        };
        assert_eq!(policy.delay(1), Duration::from_millis(100));
        assert_eq!(policy.delay(2), Duration::from_millis(200));
        assert_eq!(policy.delay(4), Duration::from_millis(800));
        assert_eq!(policy.delay(5), Duration::from_secs(1));
        assert_eq!(policy.delay(40), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_its_spread() {
        let policy = RetryPolicy {
            base: Duration::from_secs(1),
            max: Duration::from_mins(1),
            jitter: 0.25,
        };
        let delays: Vec<_> = (0..200).map(|_| policy.delay(1)).collect();
        assert!(
            delays
                .iter()
                .all(|d| *d >= Duration::from_millis(750) && *d <= Duration::from_millis(1250))
        );
        assert!(
            delays.iter().any(|d| *d != delays[0]),
            "jitter should vary the delay"
        );
    }
}
