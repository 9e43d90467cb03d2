//! HTTP API for workflows with a durable job queue.
//!
//! - [`job`]: jobs, events, failures and the retry policy; [`job_view`]: their JSON in the API.
//! - [`store`]: the [`store::JobStore`] queue on SQLite (embedded) or PostgreSQL (shared).
//! - [`params`]: a typed API per workflow (parameters from the workflow + `/object_info`,
//!   validation, injection); [`openapi`]: the OpenAPI 3.1 document and docs page.
//! - [`comfyui`]: the ComfyUI client; [`worker`]: one worker per backend; [`output_store`]: job
//!   outputs in a local folder or an S3-compatible bucket shared by instances.
//! - [`http`]: the axum routes; [`uploads`]: multipart job requests and size limits; [`media`]:
//!   media types sniffed from bytes; [`keys`]: hashed bearer keys; [`metrics`]: Prometheus text.
//! - [`console`]: the web console under `/console` (embedded HTML, CSS and ES modules).
//! - [`server`]: [`server::start`] ties it together (the CLI's entry point).

pub mod comfyui;
pub mod console;
pub mod event_log;
pub mod http;
pub mod hub;
pub mod job;
pub mod job_view;
pub mod keys;
pub mod media;
pub mod metrics;
pub mod openapi;
pub mod output_store;
pub mod params;
pub mod server;
pub mod store;
pub mod uploads;
pub mod webhook;
pub mod worker;

pub use server::{RunningServer, ServeError, ServeOptions, WorkflowSource, start};
