//! Core of comfydock: the workspace and its settings, environments, manifests, and the small
//! typed drivers for `git` and `uv`. Nothing here prints; progress goes through [`reporter`].

pub mod atomic_file;
pub mod backends;
pub mod bundle;
pub mod comfyui_builtins;
pub mod comfyui_process;
pub mod comfyui_source;
pub mod deploy;
pub mod display_text;
pub mod env_vars;
pub mod environment;
pub mod git;
pub mod hint;
pub mod history;
pub mod manifest;
pub mod nodes;
pub mod path_part;
pub mod python_deps;
pub mod redact;
pub mod reporter;
pub mod settings;
pub mod subprocess;
pub mod torch_backend;
pub mod uv;
pub mod workflow_tracking;
pub mod workspace;
pub mod workspace_lock;

pub use hint::Hinted;
