//! HTTP API for workflows with a durable job queue.
//!
//! - [`job`]: jobs, events, failures and the retry policy.
//! - [`store`]: the [`store::JobStore`] queue on SQLite (embedded) or PostgreSQL (shared).

pub mod job;
pub mod store;
