//! HTTP API for workflows with a durable job queue.
