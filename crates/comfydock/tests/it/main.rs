//! Integration tests: the real `comfydock` binary in a sandbox (one test binary, one module per area).

mod architecture;
mod backends;
mod bundles;
mod cli;
mod common;
mod config;
mod deploy;
mod doctor;
mod env_support;
mod environments;
mod hostile_inputs;
mod init;
mod lock;
mod manifest_schema;
mod models;
mod nodes;
mod progress;
mod python_deps;
mod release;
mod resolve;
mod self_update;
mod serve;
mod snapshot;
mod workflows;
