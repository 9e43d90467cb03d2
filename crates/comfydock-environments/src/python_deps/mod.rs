//! The environment's own Python packages (`comfydock py`), kept apart from ComfyUI's and the
//! nodes'.
//!
//! `[project].dependencies` and user dependency groups are the user's; the `comfyui` group is
//! ComfyUI's `requirements.txt` (replaced by `comfyui update`); every node has its own group;
//! `[tool.uv] constraint-dependencies` bound what the lock may pick. Torch always comes from the
//! backend extras. Every change re-locks before the venv changes and restores `pyproject.toml`
//! and `uv.lock` byte for byte on failure.
//!
//! Entry points for the CLI: [`ops::add`], [`ops::remove`], [`ops::list`], [`ops::constrain`],
//! [`ops::unconstrain`]; for `comfyui update` and conflict messages: [`layout`].

pub mod error;
pub mod ops;

use crate::comfyui_source::ComfyUiMirror;
use crate::environment::{Environment, Tools};
use crate::settings::Key;
use crate::settings::Settings;
use crate::workspace::Workspace;
use comfydock_foundation::reporter::Reporter;

pub use error::PyError;

/// Everything a `py` operation needs.
pub struct PyContext<'a> {
    pub workspace: &'a Workspace,
    pub settings: &'a Settings,
    pub tools: &'a Tools,
    pub env: &'a Environment,
    pub reporter: &'a dyn Reporter,
}

impl PyContext<'_> {
    /// The workspace's ComfyUI mirror (for ComfyUI's requirements at a commit).
    pub fn mirror(&self) -> ComfyUiMirror {
        comfyui_mirror(self.workspace, self.settings, &self.tools.git)
    }
}

/// The workspace's ComfyUI mirror for `comfyui.repo`.
pub fn comfyui_mirror(
    workspace: &Workspace,
    settings: &Settings,
    git: &comfydock_foundation::git::Git,
) -> ComfyUiMirror {
    let repo = settings.value(Key::ComfyuiRepo).unwrap_or_default();
    ComfyUiMirror::new(git.clone(), &workspace.cache_dir(), &repo)
}
