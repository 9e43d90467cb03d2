//! Custom nodes: from the ComfyUI Registry, git repositories and local dev folders.
//!
//! The manifest records each node (`[tool.comfydock.nodes.<key>]`, see [`entry`]) and its Python
//! requirements as a PEP 735 dependency group of the same name. Every change re-resolves the lock
//! before anything in the environment changes; a conflict restores `pyproject.toml` and
//! `uv.lock` byte for byte and leaves `custom_nodes` untouched.
//!
//! Entry points for the CLI: [`ops::add`], [`ops::remove`], [`ops::update`], [`ops::list`],
//! [`ops::info`], [`ops::search`], [`ops::set_enabled`], [`check::check`]; for `status`/`sync`:
//! [`install::drift`] and [`install::apply`]; for workflows: [`index::NodeIndex::lookup`].

pub mod archive;
pub mod check;
pub mod error;
pub mod git_source;
pub mod index;
pub mod install;
pub mod ops;
pub mod registry;
pub mod resolution;
pub mod spec;

use crate::environment::{Environment, Tools};
use crate::settings::Key;
use crate::settings::Settings;
use crate::workspace::Workspace;
use comfydock_foundation::reporter::Reporter;

pub use crate::manifest::node_entry::{NodeEntry, NodeSource};
pub use error::{ArchiveLimit, NodeError};
pub use spec::NodeSpec;

/// Everything a node operation needs.
pub struct NodeContext<'a> {
    pub workspace: &'a Workspace,
    pub settings: &'a Settings,
    pub tools: &'a Tools,
    pub env: &'a Environment,
    pub reporter: &'a dyn Reporter,
}

impl NodeContext<'_> {
    /// The registry client for `registry.url`, caching into `.metadata/api_cache.db`.
    pub fn registry(&self) -> Result<registry::RegistryClient, NodeError> {
        let url = self.settings.value(Key::RegistryUrl).unwrap_or_default();
        registry::RegistryClient::new(&url, &self.workspace.metadata_dir().join("api_cache.db"))
    }

    /// The workspace's archive cache and content store.
    pub fn archives(&self) -> archive::ArchiveStore {
        archive::ArchiveStore::new(&self.workspace.cache_dir())
    }

    /// The cached mirror of a node repository.
    pub fn mirror(&self, url: &str) -> git_source::NodeMirror {
        git_source::NodeMirror::new(self.tools.git.clone(), &self.workspace.cache_dir(), url)
    }

    /// The node index `.metadata/node_index.db`.
    pub fn index(&self) -> Result<index::NodeIndex, NodeError> {
        index::NodeIndex::open(&self.workspace.metadata_dir().join("node_index.db"))
    }
}
