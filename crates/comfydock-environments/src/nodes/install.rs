//! Node folders on disk: installing an entry into `ComfyUI/custom_nodes`, comparing what is there
//! with the manifest, and making them match (used by `node add/remove/update`, `status`, `sync`).
//!
//! Every folder comfydock installs carries a marker file ([`MARKER`]) recording what was installed,
//! so `status` can tell a wrong version from a folder the user put there. Dev nodes carry no
//! marker and are never deleted: only the link comfydock made to them is.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::NodeContext;
use super::error::NodeError;
use crate::environment::Environment;
use crate::manifest::node_entry::{NodeEntry, NodeSource};

/// The file inside an installed node folder that says what comfydock installed there.
pub const MARKER: &str = ".comfydock-node.json";

/// Names of the links to dev folders comfydock made in `custom_nodes` (one per line).
pub const DEV_LINKS: &str = ".comfydock-dev-links";

fn dev_links(custom_nodes: &Path) -> Vec<String> {
    fs_err::read_to_string(custom_nodes.join(DEV_LINKS))
        .map(|t| t.lines().map(str::to_owned).filter(|l| !l.is_empty()).collect())
        .unwrap_or_default()
}

/// Forget a link to a dev folder (after its node was removed).
pub fn forget_dev_link(env: &Environment, name: &str) -> std::io::Result<()> {
    if dev_links(&custom_nodes(env)).iter().any(|l| l == name) {
        set_dev_link(&custom_nodes(env), name, false)?;
    }
    Ok(())
}

fn set_dev_link(custom_nodes: &Path, name: &str, present: bool) -> std::io::Result<()> {
    let mut links = dev_links(custom_nodes);
    links.retain(|l| l != name);
    if present {
        links.push(name.to_owned());
    }
    let mut text = links.join("\n");
    text.push('\n');
    comfydock_foundation::atomic_file::write_atomic(&custom_nodes.join(DEV_LINKS), text)
}

/// Disabled nodes live here (ComfyUI skips folders whose name ends in `.disabled`).
pub const DISABLED_DIR: &str = ".disabled";

/// What a marker records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledMarker {
    pub key: String,
    pub source: String,
    pub version: Option<String>,
    pub commit: Option<String>,
    pub sha256: Option<String>,
}

impl InstalledMarker {
    fn of(entry: &NodeEntry) -> Self {
        Self {
            key: entry.key.clone(),
            source: entry.source.as_str().to_owned(),
            version: entry.version.clone(),
            commit: entry.commit.clone(),
            sha256: entry.sha256.clone(),
        }
    }

    /// Read the marker of a folder, if it has one.
    pub fn read(dir: &Path) -> Option<Self> {
        serde_json::from_str(&fs_err::read_to_string(dir.join(MARKER)).ok()?).ok()
    }
}

/// `ComfyUI/custom_nodes`.
pub fn custom_nodes(env: &Environment) -> PathBuf {
    env.comfyui().join("custom_nodes")
}

/// Where an entry's folder belongs: `custom_nodes/<name>` or `custom_nodes/.disabled/<name>`.
pub fn node_dir(env: &Environment, entry: &NodeEntry) -> PathBuf {
    if entry.enabled {
        custom_nodes(env).join(&entry.name)
    } else {
        custom_nodes(env).join(DISABLED_DIR).join(&entry.name)
    }
}

/// The other place (enabled ↔ disabled) an entry's folder could be.
pub fn other_dir(env: &Environment, entry: &NodeEntry) -> PathBuf {
    let mut flipped = entry.clone();
    flipped.enabled = !entry.enabled;
    node_dir(env, &flipped)
}

/// A dev node's folder as an absolute path.
pub fn dev_path(env: &Environment, entry: &NodeEntry) -> Option<PathBuf> {
    let path = PathBuf::from(entry.path.as_deref()?);
    Some(if path.is_absolute() {
        path
    } else {
        env.comfyui().join(path)
    })
}

/// Whether the folder at `dir` is exactly what `entry` records.
pub fn matches(env: &Environment, entry: &NodeEntry, dir: &Path) -> bool {
    match entry.source {
        NodeSource::Dev => {
            let Some(path) = dev_path(env, entry) else {
                return false;
            };
            match (fs_err::canonicalize(dir), fs_err::canonicalize(&path)) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            }
        }
        NodeSource::Registry | NodeSource::Git => {
            let Some(marker) = InstalledMarker::read(dir) else {
                return false;
            };
            if marker != InstalledMarker::of(entry) {
                return false;
            }
            // A git checkout moved by hand is not what the manifest says.
            entry.source != NodeSource::Git
                || super::git_source::checkout_head(dir).as_deref() == entry.commit.as_deref()
        }
    }
}

/// Install `entry` at its place (replacing nothing: the place must be free). Returns the folder.
pub fn install(ctx: &NodeContext<'_>, entry: &NodeEntry) -> Result<PathBuf, NodeError> {
    let dest = node_dir(ctx.env, entry);
    let parent = dest.parent().expect("node dir has a parent");
    fs_err::create_dir_all(parent)?;
    if entry.source == NodeSource::Dev {
        let path = dev_path(ctx.env, entry).ok_or_else(|| NodeError::DevPathMissing(PathBuf::new()))?;
        if !path.is_dir() {
            return Err(NodeError::DevPathMissing(path));
        }
        if fs_err::canonicalize(&path)? != fs_err::canonicalize(parent)?.join(&entry.name) {
            link_dir(&path, &dest)?;
            set_dev_link(&custom_nodes(ctx.env), &entry.name, true)?;
        }
        return Ok(dest);
    }
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{}.installing-", entry.name))
        .tempdir_in(parent)?;
    let tree = staging.path().join("node");
    match entry.source {
        NodeSource::Registry => {
            let client = ctx.registry()?;
            let version = entry.version.as_deref().unwrap_or_default();
            let url = entry.url.as_deref().unwrap_or_default();
            let expected = entry.sha256.as_deref().map(|s| (s, entry.size));
            let archive = ctx
                .archives()
                .fetch(&client, &entry.key, version, url, expected, ctx.reporter)?;
            let store = ctx.archives().extract(&archive)?;
            super::archive::install_tree(&store, &tree)?;
        }
        NodeSource::Git => {
            let url = entry.url.as_deref().unwrap_or_default();
            let commit = entry.commit.as_deref().unwrap_or_default();
            let mirror = ctx.mirror(url);
            mirror.ensure(ctx.reporter)?;
            if !mirror.has_commit(commit) {
                mirror.fetch(ctx.reporter)?;
            }
            mirror.checkout(commit, &tree)?;
        }
        NodeSource::Dev => unreachable!("handled above"),
    }
    let marker = serde_json::to_string_pretty(&InstalledMarker::of(entry)).expect("marker serialises");
    fs_err::write(tree.join(MARKER), marker + "\n")?;
    fs_err::rename(&tree, &dest)?;
    Ok(dest)
}

#[cfg(unix)]
fn link_dir(target: &Path, link: &Path) -> std::io::Result<()> {
    fs_err::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn link_dir(target: &Path, link: &Path) -> std::io::Result<()> {
    fs_err::os::windows::fs::symlink_dir(target, link)
}

/// Remove what comfydock put at `dir`: a folder it installed, or the link to a dev folder.
/// A dev node's own folder is never deleted.
pub fn uninstall(dir: &Path) -> std::io::Result<()> {
    let Ok(meta) = fs_err::symlink_metadata(dir) else {
        return Ok(());
    };
    if meta.file_type().is_symlink() {
        fs_err::remove_file(dir)?;
        if let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) {
            let custom_nodes = if parent.ends_with(DISABLED_DIR) {
                parent.parent().unwrap_or(parent)
            } else {
                parent
            };
            set_dev_link(custom_nodes, &name.to_string_lossy(), false)?;
        }
        return Ok(());
    }
    if InstalledMarker::read(dir).is_some() {
        return fs_err::remove_dir_all(dir);
    }
    Ok(())
}

/// Move a folder (or link) aside to `trash` so it can be restored if a later step fails.
pub fn move_aside(dir: &Path, trash: &Path) -> std::io::Result<Option<PathBuf>> {
    if fs_err::symlink_metadata(dir).is_err() {
        return Ok(None);
    }
    fs_err::create_dir_all(trash)?;
    let name = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let aside = tempfile::Builder::new()
        .prefix(&format!("{name}-"))
        .tempdir_in(trash)?
        .keep();
    let target = aside.join(&name);
    fs_err::rename(dir, &target)?;
    Ok(Some(target))
}

/// One difference between the manifest's nodes and `custom_nodes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum NodeDrift {
    /// In the manifest, not on disk.
    Missing { key: String },
    /// On disk with another version, commit or hash.
    Wrong {
        key: String,
        found: String,
        wanted: String,
    },
    /// Enabled in the manifest but disabled on disk, or the reverse.
    DisabledState { key: String, enabled: bool },
    /// Installed by comfydock but no longer in the manifest (removed by `sync`).
    Extra { name: String, key: String },
    /// A folder comfydock did not install and the manifest does not list (never touched).
    Unmanaged { name: String },
}

impl NodeDrift {
    /// A one-line description for `status`.
    pub fn describe(&self) -> String {
        match self {
            Self::Missing { key } => format!("node `{key}` is not installed"),
            Self::Wrong { key, found, wanted } => {
                format!("node `{key}` is at {found} but .cec pins {wanted}")
            }
            Self::DisabledState { key, enabled: true } => {
                format!("node `{key}` is disabled on disk but enabled in .cec")
            }
            Self::DisabledState { key, enabled: false } => {
                format!("node `{key}` is disabled in .cec but enabled on disk")
            }
            Self::Extra { name, key } => {
                format!("node folder `{name}` (`{key}`) is installed but not in .cec")
            }
            Self::Unmanaged { name } => {
                format!("custom_nodes/{name} is not tracked by comfydock")
            }
        }
    }
}

fn describe_installed(dir: &Path) -> String {
    match InstalledMarker::read(dir) {
        Some(m) => m
            .version
            .or_else(|| {
                m.commit
                    .map(|c| comfydock_foundation::display_text::short_hash(&c).to_owned())
            })
            .unwrap_or_else(|| "an unknown state".into()),
        None => "a folder comfydock did not install".into(),
    }
}

/// Compare the manifest's node entries with the folders in `custom_nodes`.
pub fn drift(env: &Environment, entries: &[NodeEntry]) -> Vec<NodeDrift> {
    let mut out = Vec::new();
    for entry in entries {
        let here = node_dir(env, entry);
        let there = other_dir(env, entry);
        if fs_err::symlink_metadata(&here).is_ok() {
            if !matches(env, entry, &here) {
                out.push(NodeDrift::Wrong {
                    key: entry.key.clone(),
                    found: describe_installed(&here),
                    wanted: entry.pinned(),
                });
            }
        } else if fs_err::symlink_metadata(&there).is_ok() {
            out.push(NodeDrift::DisabledState {
                key: entry.key.clone(),
                enabled: entry.enabled,
            });
        } else {
            out.push(NodeDrift::Missing {
                key: entry.key.clone(),
            });
        }
    }
    let known: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let links = dev_links(&custom_nodes(env));
    for (dir, _disabled) in folders(env) {
        let name = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
        if known.contains(&name.as_str()) {
            continue;
        }
        match InstalledMarker::read(&dir) {
            Some(marker) => out.push(NodeDrift::Extra {
                name,
                key: marker.key,
            }),
            None if links.contains(&name) && is_link(&dir) => out.push(NodeDrift::Extra {
                key: super::spec::key_for(&name),
                name,
            }),
            None if fs_err::symlink_metadata(&dir)
                .is_ok_and(|m| m.is_dir() || m.file_type().is_symlink()) =>
            {
                out.push(NodeDrift::Unmanaged { name });
            }
            None => {}
        }
    }
    out
}

/// Node folders in `custom_nodes` and `custom_nodes/.disabled` (not files, not our temp folders).
fn folders(env: &Environment) -> Vec<(PathBuf, bool)> {
    let mut out = Vec::new();
    for (dir, disabled) in [
        (custom_nodes(env), false),
        (custom_nodes(env).join(DISABLED_DIR), true),
    ] {
        let Ok(read) = fs_err::read_dir(&dir) else {
            continue;
        };
        for entry in read.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "__pycache__" {
                continue;
            }
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir() || t.is_symlink());
            if is_dir {
                out.push((entry.path(), disabled));
            }
        }
    }
    out
}

/// Make `custom_nodes` match the manifest's entries; returns one line per change made (or, with
/// `dry_run`, that would be made). Unmanaged folders are reported, never touched.
pub fn apply(ctx: &NodeContext<'_>, entries: &[NodeEntry], dry_run: bool) -> Result<Vec<String>, NodeError> {
    let mut changes = Vec::new();
    for item in drift(ctx.env, entries) {
        let entry = |key: &str| entries.iter().find(|e| e.key == key).cloned();
        match &item {
            NodeDrift::Missing { key } => {
                let e = entry(key).expect("drift names a known entry");
                changes.push(format!("install node `{key}` {}", e.pinned()));
                if !dry_run {
                    ctx.reporter
                        .status("Installing", &format!("node `{key}` {}", e.pinned()));
                    install(ctx, &e)?;
                }
            }
            NodeDrift::Wrong { key, found, wanted } => {
                let e = entry(key).expect("drift names a known entry");
                changes.push(format!("replace node `{key}` {found} -> {wanted}"));
                if !dry_run {
                    let dir = node_dir(ctx.env, &e);
                    if e.source != NodeSource::Dev && InstalledMarker::read(&dir).is_none() && !is_link(&dir)
                    {
                        return Err(NodeError::FolderExists {
                            path: dir,
                            key: key.clone(),
                        });
                    }
                    uninstall(&dir)?;
                    install(ctx, &e)?;
                }
            }
            NodeDrift::DisabledState { key, enabled } => {
                let e = entry(key).expect("drift names a known entry");
                let verb = if *enabled { "enable" } else { "disable" };
                changes.push(format!("{verb} node `{key}`"));
                if !dry_run {
                    let to = node_dir(ctx.env, &e);
                    fs_err::create_dir_all(to.parent().expect("has parent"))?;
                    fs_err::rename(other_dir(ctx.env, &e), &to)?;
                }
            }
            NodeDrift::Extra { name, key } => {
                changes.push(format!("remove node `{key}` (folder `{name}`)"));
                if !dry_run {
                    for dir in [
                        custom_nodes(ctx.env).join(name),
                        custom_nodes(ctx.env).join(DISABLED_DIR).join(name),
                    ] {
                        uninstall(&dir)?;
                    }
                }
            }
            NodeDrift::Unmanaged { .. } => {}
        }
    }
    Ok(changes)
}

fn is_link(dir: &Path) -> bool {
    fs_err::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink())
}

/// Move folders in `custom_nodes` that comfydock did not install (and the manifest does not list)
/// into the workspace trash, `<workspace>/trash/<env>/<unix time>/<name>`: `sync --prune`
/// removes them from ComfyUI without deleting anything the user made. Returns (name, new path).
pub fn trash_unmanaged(
    workspace: &crate::workspace::Workspace,
    env: &Environment,
    entries: &[NodeEntry],
) -> Result<Vec<(String, PathBuf)>, NodeError> {
    let trash = workspace.trash_dir(&env.name);
    let mut moved = Vec::new();
    for item in drift(env, entries) {
        let NodeDrift::Unmanaged { name } = item else {
            continue;
        };
        let source = [
            custom_nodes(env).join(&name),
            custom_nodes(env).join(DISABLED_DIR).join(&name),
        ]
        .into_iter()
        .find(|p| fs_err::symlink_metadata(p).is_ok());
        let Some(source) = source else { continue };
        fs_err::create_dir_all(&trash)?;
        let target = trash.join(&name);
        fs_err::rename(&source, &target)?;
        moved.push((name, target));
    }
    Ok(moved)
}
