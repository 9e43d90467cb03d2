//! The foundation every comfydock crate stands on: errors with hints, the reporter traits,
//! atomic files, subprocesses with the typed `git` and `uv` drivers, the workspace lock, safe
//! path parts, URL redaction, display helpers and the one way to open a SQLite file. It knows nothing about environments, models
//! or workflows; nothing here prints.

pub mod atomic_file;
pub mod display_text;
pub mod env_vars;
pub mod git;
pub mod git_mirror;
pub mod hint;
pub mod package_name;
pub mod path_part;
#[cfg(unix)]
pub mod pseudo_terminal;
pub mod redact;
pub mod reporter;
pub mod sqlite;
pub mod subprocess;
pub mod terminal_transcript;
pub mod uv;
pub mod workspace_lock;

pub use hint::Hinted;
