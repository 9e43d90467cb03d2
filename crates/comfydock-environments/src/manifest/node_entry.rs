//! `[tool.comfydock.nodes.<key>]`: what the manifest records about one custom node.
//!
//! ```toml
//! [tool.comfydock.nodes.my-node]          # registry id (lowercase), or the folder name for git/dev
//! source = "registry"                      # registry | git | dev
//! name = "my-node"                         # folder under ComfyUI/custom_nodes
//! version = "1.0.0"                        # registry version
//! url = "https://cdn.comfy.org/.../node.zip"   # archive (registry) or repository (git)
//! sha256 = "…"                             # archive hash, verified on every install
//! size = 1234
//! ref = "v1.0.0"                           # git: what was asked for; commit is what is installed
//! commit = "<40 hex>"
//! path = "/home/me/dev/MyNode"             # dev: the folder (never deleted by comfydock)
//! enabled = false                          # only when disabled
//! ```
//!
//! Each node's Python requirements live in `[dependency-groups]` under the same key; a key that
//! would take a reserved group name (`comfyui`, ComfyUI's own requirements) gets the group
//! `node-<key>` instead (see [`node_group_name`]).

use serde::{Deserialize, Serialize};

use crate::manifest::Manifest;
use crate::manifest::schema::NodeTable;

/// Where a node comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeSource {
    Registry,
    Git,
    /// `development` is read as `dev`.
    #[serde(alias = "development")]
    Dev,
}

impl NodeSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registry => "registry",
            Self::Git => "git",
            Self::Dev => "dev",
        }
    }
}

impl std::fmt::Display for NodeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One node as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeEntry {
    /// Manifest key and dependency group name.
    pub key: String,
    /// Folder name under `custom_nodes`.
    pub name: String,
    pub source: NodeSource,
    pub version: Option<String>,
    pub url: Option<String>,
    pub sha256: Option<String>,
    pub size: Option<u64>,
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    pub commit: Option<String>,
    pub path: Option<String>,
    pub repository: Option<String>,
    pub enabled: bool,
}

impl NodeEntry {
    /// A new entry with only the identity set.
    pub fn new(key: &str, name: &str, source: NodeSource) -> Self {
        Self {
            key: key.to_owned(),
            name: name.to_owned(),
            source,
            version: None,
            url: None,
            sha256: None,
            size: None,
            reference: None,
            commit: None,
            path: None,
            repository: None,
            enabled: true,
        }
    }

    /// The dependency group holding this node's requirements.
    pub fn group(&self) -> String {
        node_group_name(&self.key)
    }

    /// A short human description of what is pinned: `1.0.0`, `v1.0.0 (abc123def456)`, `dev /path`.
    pub fn pinned(&self) -> String {
        match self.source {
            NodeSource::Registry => self.version.clone().unwrap_or_default(),
            NodeSource::Git => {
                let commit = self
                    .commit
                    .as_deref()
                    .map_or("", comfydock_foundation::display_text::short_hash);
                match &self.reference {
                    Some(r) if r != commit => format!("{r} ({commit})"),
                    _ => commit.to_owned(),
                }
            }
            NodeSource::Dev => format!("dev {}", self.path.as_deref().unwrap_or_default()),
        }
    }

    /// Whether this node is `package` as a workflow resolution names it: its key, its name, or
    /// its repository URL (ignoring case, a trailing `/` and `.git`).
    pub fn provides_package(&self, package: &str) -> bool {
        let normalized = |u: &str| {
            u.trim_end_matches(".git")
                .trim_end_matches('/')
                .to_ascii_lowercase()
        };
        self.key.eq_ignore_ascii_case(package)
            || self.name.eq_ignore_ascii_case(package)
            || self
                .url
                .as_deref()
                .or(self.repository.as_deref())
                .is_some_and(|u| normalized(u) == normalized(package))
    }

    /// Check the strings that become paths (key, folder name, registry version) against the
    /// plain-name rule of [`comfydock_foundation::path_part`], and the strings that reach git (URL, ref,
    /// commit) like command-line input ([`comfydock_foundation::git::check_url`], [`comfydock_foundation::git::check_revision`]).
    pub fn check_names(&self) -> Result<(), UnsafeEntry> {
        comfydock_foundation::path_part::check(&self.key)?;
        comfydock_foundation::path_part::check(&self.name)?;
        match self.source {
            NodeSource::Registry => {
                if let Some(version) = &self.version {
                    comfydock_foundation::path_part::check(version)?;
                }
            }
            NodeSource::Git => {
                if let Some(url) = &self.url {
                    comfydock_foundation::git::check_url(url)?;
                }
                for rev in [&self.reference, &self.commit].into_iter().flatten() {
                    comfydock_foundation::git::check_revision(rev)?;
                }
            }
            NodeSource::Dev => {}
        }
        Ok(())
    }

    /// The entry stored under `key`.
    pub fn from_table(key: &str, table: &NodeTable) -> Self {
        Self {
            key: key.to_owned(),
            name: table.name.clone().unwrap_or_else(|| key.to_owned()),
            source: table.source,
            version: table.version.clone(),
            url: table.url.clone(),
            sha256: table.sha256.clone(),
            size: table.size,
            reference: table.reference.clone(),
            commit: table.commit.clone(),
            path: table.path.clone(),
            repository: table.repository.clone(),
            enabled: table.enabled,
        }
    }

    /// What the manifest stores for this entry (the folder name always written).
    pub fn to_table(&self) -> NodeTable {
        NodeTable {
            source: self.source,
            name: Some(self.name.clone()),
            version: self.version.clone(),
            url: self.url.clone(),
            sha256: self.sha256.clone(),
            reference: self.reference.clone(),
            commit: self.commit.clone(),
            path: self.path.clone(),
            repository: self.repository.clone(),
            size: self.size,
            enabled: self.enabled,
        }
    }
}

/// The dependency group of the node with manifest key `key`: the key itself, unless it would
/// collide with ComfyUI's own group; then `node-<key>`.
pub fn node_group_name(key: &str) -> String {
    if normalize_group_name(key) == crate::manifest::COMFYUI_GROUP {
        format!("node-{key}")
    } else {
        key.to_owned()
    }
}

/// PEP 735 group name normalisation (as uv compares them): lowercase, runs of `-_.` become `-`.
pub fn normalize_group_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            separator = true;
            continue;
        }
        if separator && !out.is_empty() {
            out.push('-');
        }
        separator = false;
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Why a node entry from a manifest is never used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeEntry {
    /// A name that would become a path outside its folder.
    #[error(transparent)]
    Name(#[from] comfydock_foundation::path_part::UnsafePathPart),
    /// A URL or revision that git would read as an option or a command transport.
    #[error(transparent)]
    Git(#[from] comfydock_foundation::git::UnsafeGitArgument),
}

impl UnsafeEntry {
    /// The offending value as written.
    pub fn value(&self) -> &str {
        match self {
            Self::Name(e) => &e.value,
            Self::Git(e) => &e.value,
        }
    }

    /// Why it is refused.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Name(e) => e.reason,
            Self::Git(e) => e.reason,
        }
    }

    /// What kind of value it is, for messages (`folder name`, `git URL`, `git revision`).
    pub fn what(&self) -> String {
        match self {
            Self::Name(_) => "folder name".to_owned(),
            Self::Git(e) => format!("git {}", e.what),
        }
    }
}

/// Every node entry of a manifest that is safe to use. An entry that does not fit the schema
/// never gets here ([`Manifest::parse`] refuses the manifest, naming the key); an entry whose
/// key, folder name or version is not a plain name (it would become a path outside the
/// environment) is left out, and [`unsafe_entries`] lists it for `status` to report and
/// `import`/`export` to refuse.
pub fn read_all(manifest: &Manifest) -> Vec<NodeEntry> {
    manifest
        .nodes()
        .iter()
        .map(|(k, t)| NodeEntry::from_table(k, t))
        .filter(|e| match e.check_names() {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(
                    "ignoring node `{}` of `{}`: {err}",
                    e.key,
                    manifest.path().display()
                );
                false
            }
        })
        .collect()
}

/// Entries of a manifest that [`read_all`] ignores because a name in them is unsafe.
pub fn unsafe_entries(manifest: &Manifest) -> Vec<(String, UnsafeEntry)> {
    manifest
        .nodes()
        .iter()
        .map(|(k, t)| NodeEntry::from_table(k, t))
        .filter_map(|e| e.check_names().err().map(|err| (e.key, err)))
        .collect()
}

/// Write (insert or replace) an entry and its dependency group.
pub fn write(manifest: &mut Manifest, entry: &NodeEntry, requirements: &[String]) {
    manifest.set_node(&entry.key, &entry.to_table());
    manifest.set_dependency_group(&entry.group(), requirements);
}

/// Write only the entry (its group is unchanged).
pub fn write_entry(manifest: &mut Manifest, entry: &NodeEntry) {
    manifest.set_node(&entry.key, &entry.to_table());
}

/// Remove an entry and its dependency group.
pub fn remove(manifest: &mut Manifest, entry: &NodeEntry) {
    manifest.remove_node(&entry.key);
    manifest.remove_dependency_group(&entry.group());
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn entries_round_trip_through_the_manifest() {
        let mut manifest = Manifest::parse(
            Path::new("p"),
            "[project]\nname = \"x\"\n\n[dependency-groups]\n\n[tool.comfydock]\nschema_version = 1\n",
        )
        .unwrap();
        let mut entry = NodeEntry::new("my-node", "my-node", NodeSource::Registry);
        entry.version = Some("1.0.0".into());
        entry.sha256 = Some("ab".repeat(32));
        entry.size = Some(123);
        write(&mut manifest, &entry, &["node-dep-a>=1".into()]);
        let mut git = NodeEntry::new("comfyui-foo", "ComfyUI-Foo", NodeSource::Git);
        git.reference = Some("v1".into());
        git.commit = Some("c".repeat(40));
        git.enabled = false;
        write(&mut manifest, &git, &[]);
        let text = manifest.render();
        assert!(text.contains("[tool.comfydock.nodes.my-node]"), "{text}");
        assert!(!text.contains("[tool.comfydock.nodes]\n"), "{text}");
        assert!(text.contains("my-node = [\n    \"node-dep-a>=1\",\n]"), "{text}");
        let reparsed = Manifest::parse(Path::new("p"), &text).unwrap();
        assert_eq!(read_all(&reparsed), vec![entry.clone(), git.clone()]);
        let mut reparsed = reparsed;
        remove(&mut reparsed, &entry);
        assert_eq!(read_all(&reparsed), vec![git]);
        assert!(reparsed.dependency_groups().iter().all(|(g, _)| g != "my-node"));
    }

    #[test]
    fn a_node_never_takes_comfyuis_group() {
        assert_eq!(node_group_name("my-node"), "my-node");
        for key in ["comfyui", "ComfyUI", "comfy_ui", "comfy.ui"] {
            let expected = if key.eq_ignore_ascii_case("comfyui") {
                format!("node-{key}")
            } else {
                key.to_owned()
            };
            assert_eq!(node_group_name(key), expected);
        }
        assert_eq!(normalize_group_name("My__Group.x"), "my-group-x");
    }

    #[test]
    fn entries_with_unsafe_names_are_never_read() {
        let text = r#"
[tool.comfydock.nodes."../../../../x"]
source = "registry"
version = "1.0.0"

[tool.comfydock.nodes.evil-version]
source = "registry"
version = "../../x"

[tool.comfydock.nodes.evil-name]
source = "git"
name = "a/../../b"
commit = "ééééééééééééééé"

[tool.comfydock.nodes.fine]
source = "git"
commit = "ééééééééééééééé"
"#;
        let manifest = Manifest::parse(Path::new("p"), text).unwrap();
        let read = read_all(&manifest);
        assert_eq!(read.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["fine"]);
        assert_eq!(read[0].pinned(), "éééééééééééé");
        let refused: Vec<String> = unsafe_entries(&manifest).into_iter().map(|(k, _)| k).collect();
        assert_eq!(refused, ["../../../../x", "evil-version", "evil-name"]);
    }
}
