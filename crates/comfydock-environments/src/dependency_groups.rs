//! Who owns each Python requirement of a manifest: ComfyUI (the `comfyui` group), a custom node
//! (its group), or the user (`[project].dependencies` and every other group); and the move from
//! the legacy layout (schema 1, ComfyUI's requirements in `[project].dependencies`) to the split
//! one (schema 2).

use serde::Serialize;

use crate::comfyui_source::ComfyUiMirror;
use crate::environment::Environment;
use crate::manifest::node_entry::{self as entry, NodeEntry, normalize_group_name};
use crate::manifest::{
    self, COMFYUI_GROUP, Layout, MANIFEST_SCHEMA_VERSION, Manifest, Requirements, requirement_name,
};

/// The comment above `[project].dependencies` in the split layout.
pub const USER_DEPENDENCIES_COMMENT: &str =
    "# Your own Python packages (`comfydock py add`); ComfyUI's are the `comfyui` group below\n";

/// Who a `[dependency-groups]` entry belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupOwner {
    /// ComfyUI's `requirements.txt` (split layout only).
    ComfyUi,
    /// The custom node with this manifest key.
    Node(String),
    /// A group the user made with `comfydock py add --group`.
    User,
}

/// Classify `group` of `manifest`, whose nodes are `nodes`.
pub fn group_owner(manifest: &Manifest, nodes: &[NodeEntry], group: &str) -> GroupOwner {
    let wanted = normalize_group_name(group);
    // Legacy manifests wrote a node keyed `comfyui` into the `comfyui` group.
    let legacy = manifest.layout() == Layout::Legacy;
    if let Some(node) = nodes.iter().find(|n| {
        normalize_group_name(&n.group()) == wanted || (legacy && normalize_group_name(&n.key) == wanted)
    }) {
        return GroupOwner::Node(node.key.clone());
    }
    if !legacy && wanted == COMFYUI_GROUP {
        GroupOwner::ComfyUi
    } else {
        GroupOwner::User
    }
}

/// How uv's resolver output names the origin of a group's requirement, for conflict messages.
pub fn group_origin(manifest: &Manifest, nodes: &[NodeEntry], group: &str) -> String {
    match group_owner(manifest, nodes, group) {
        GroupOwner::ComfyUi => "ComfyUI's requirements".into(),
        GroupOwner::Node(key) => format!("node `{key}`"),
        GroupOwner::User => format!("your dependency group `{group}`"),
    }
}

/// What `[project].dependencies` is, for conflict messages ("your project depends on ...").
pub fn project_origin(manifest: &Manifest) -> &'static str {
    match manifest.layout() {
        Layout::Legacy => "ComfyUI's requirements",
        Layout::Split => "your packages",
    }
}

/// `[project].dependencies` of a legacy manifest, split by ComfyUI's `requirements.txt` at the
/// pinned commit: a package ComfyUI names is ComfyUI's, anything else is the user's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LegacySplit {
    pub comfyui: Vec<String>,
    pub user: Vec<String>,
    /// ComfyUI's requirements at the pinned commit could not be read: everything was kept as
    /// the user's, so nothing is lost.
    pub guessed: bool,
}

/// Split legacy `dependencies` with `comfyui` (the pinned commit's `requirements.txt`, if known).
pub fn split_legacy(dependencies: &[String], comfyui: Option<&Requirements>) -> LegacySplit {
    let Some(comfyui) = comfyui else {
        return LegacySplit {
            comfyui: Vec::new(),
            user: dependencies.to_vec(),
            guessed: true,
        };
    };
    let theirs: Vec<String> = comfyui.dependencies.iter().map(|r| requirement_name(r)).collect();
    let (comfyui, user) = dependencies
        .iter()
        .cloned()
        .partition(|d| theirs.contains(&requirement_name(d)));
    LegacySplit {
        comfyui,
        user,
        guessed: false,
    }
}

/// Rewrite a legacy manifest in the split layout (ComfyUI's requirements into the `comfyui`
/// group, the user's kept in `[project].dependencies`, schema version bumped). Returns `None`
/// when the manifest already is in the split layout.
pub fn migrate(manifest: &mut Manifest, comfyui: Option<&Requirements>) -> Option<LegacySplit> {
    if manifest.layout() == Layout::Split {
        return None;
    }
    let nodes = entry::read_all(manifest);
    // A node keyed `comfyui` used the group name ComfyUI now takes.
    for node in &nodes {
        let group = node.group();
        if group != node.key
            && let Some(requirements) = manifest.dependency_group(&node.key)
        {
            manifest.remove_dependency_group(&node.key);
            manifest.set_dependency_group(&group, &requirements);
        }
    }
    let split = split_legacy(&manifest.dependencies(), comfyui);
    manifest.set_dependencies(&split.user);
    manifest.set_dependencies_comment(USER_DEPENDENCIES_COMMENT);
    manifest.set_dependency_group(COMFYUI_GROUP, &split.comfyui);
    manifest.set_schema_version(MANIFEST_SCHEMA_VERSION);
    Some(split)
}

/// ComfyUI's `requirements.txt` at `commit`: from the workspace mirror, else from the
/// environment's checkout when it is at that commit. `None` when neither has it.
pub fn comfyui_requirements_at(
    mirror: &ComfyUiMirror,
    env: &Environment,
    commit: &str,
) -> Option<Requirements> {
    if let Some(text) = mirror.read_file(commit, "requirements.txt") {
        return Some(manifest::parse_requirements(&text));
    }
    if env.comfyui_head().as_deref() == Some(commit) {
        return Some(
            fs_err::read_to_string(env.comfyui().join("requirements.txt"))
                .map(|t| manifest::parse_requirements(&t))
                .unwrap_or_default(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const LEGACY: &str = r#"[project]
name = "comfydock-env-a"
version = "0.0.0"
# ComfyUI's requirements.txt (torch comes from the backend extras below)
dependencies = [
    "tinynum<2",
    "requests>=2",
    "comfy_tiny_a",
]

[dependency-groups]
comfyui = [
    "node-dep-a>=1",
]
other = []

[tool.comfydock]
schema_version = 1

[tool.comfydock.nodes.comfyui]
source = "git"
name = "ComfyUI"
"#;

    #[test]
    fn legacy_manifests_split_by_the_old_requirements() {
        let mut m = Manifest::parse(Path::new("p"), LEGACY).unwrap();
        assert_eq!(m.layout(), Layout::Legacy);
        let nodes = entry::read_all(&m);
        assert_eq!(
            group_owner(&m, &nodes, "comfyui"),
            GroupOwner::Node("comfyui".into())
        );
        let old = manifest::parse_requirements("comfy-tiny-a>=1\ntinynum<2\ntorch\n");
        let split = migrate(&mut m, Some(&old)).unwrap();
        assert_eq!(split.user, ["requests>=2"]);
        assert_eq!(split.comfyui, ["tinynum<2", "comfy_tiny_a"]);
        assert_eq!(m.layout(), Layout::Split);
        assert_eq!(m.dependencies(), ["requests>=2"]);
        assert_eq!(
            m.dependency_group(COMFYUI_GROUP).unwrap(),
            ["tinynum<2", "comfy_tiny_a"]
        );
        assert_eq!(m.dependency_group("node-comfyui").unwrap(), ["node-dep-a>=1"]);
        let nodes = entry::read_all(&m);
        assert_eq!(group_owner(&m, &nodes, "comfyui"), GroupOwner::ComfyUi);
        assert_eq!(
            group_owner(&m, &nodes, "node-comfyui"),
            GroupOwner::Node("comfyui".into())
        );
        assert_eq!(group_owner(&m, &nodes, "other"), GroupOwner::User);
        let text = m.render();
        assert!(text.contains(USER_DEPENDENCIES_COMMENT), "{text}");
        assert!(!text.contains("# ComfyUI's requirements.txt (torch"), "{text}");
        // Reparses as the current schema; a second migration is a no-op.
        let mut again = Manifest::parse(Path::new("p"), &text).unwrap();
        assert!(migrate(&mut again, Some(&old)).is_none());
    }

    #[test]
    fn unknown_old_requirements_keep_everything_as_the_users() {
        let split = split_legacy(&["a".into(), "b<2".into()], None);
        assert!(split.guessed);
        assert_eq!(split.user, ["a", "b<2"]);
        assert!(split.comfyui.is_empty());
    }
}
