//! Environments: the workspace and its settings, each environment's manifest
//! (`.cec/pyproject.toml`), creating and syncing it with uv, its custom nodes, Python
//! dependencies and torch backends, its ComfyUI checkout and process, tracked workflows and
//! history. Nothing here prints; progress goes through
//! [`comfydock_foundation::reporter`].

pub mod backends;
pub mod cec_merge;
pub mod comfyui_builtins;
pub mod comfyui_process;
pub mod comfyui_source;
pub mod dependency_groups;
pub mod environment;
pub mod history;
pub mod lifecycle;
pub mod lock_coverage;
pub mod manifest;
pub mod nodes;
pub mod python_deps;
pub mod requirements_txt;
pub mod resolver_failure;
pub mod settings;
pub mod summary;
pub mod torch_backend;
pub mod workflow_tracking;
pub mod workspace;
pub mod workspace_models;
