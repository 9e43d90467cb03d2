//! Exports of comfygit (`[tool.comfygit]` in `pyproject.toml`, no `manifest.json`).
//!
//! They carry no lock, no checksums and no dev-node sources, so the mapping is best effort: the
//! environment is created at the recorded ComfyUI commit and Python version, registry nodes are
//! added at their versions, git nodes at their commits, workflows are tracked; everything else
//! is listed as not mapped, with the reason.

use toml::Value;

/// What can be taken over from a comfygit manifest, and what cannot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComfygitPlan {
    pub environment_name: String,
    /// `major.minor`.
    pub python: Option<String>,
    /// The commit when recorded, else the version (tag, branch).
    pub comfyui: Option<String>,
    /// `id@version` and `url@commit` specs for `node add`.
    pub node_specs: Vec<String>,
    pub registry_nodes: usize,
    pub git_nodes: usize,
    /// One line per thing that could not be mapped, saying why.
    pub unmapped: Vec<String>,
}

/// Whether `pyproject` is a comfygit manifest.
pub fn is_comfygit(pyproject: &str) -> bool {
    pyproject
        .parse::<toml::Table>()
        .ok()
        .and_then(|t| t.get("tool")?.get("comfygit").cloned())
        .is_some()
}

/// Map a comfygit `pyproject.toml`.
pub fn plan(pyproject: &str) -> ComfygitPlan {
    let mut plan = ComfygitPlan::default();
    let Ok(doc) = pyproject.parse::<toml::Table>() else {
        return plan;
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let project_name = text(doc.get("project").and_then(|p| p.get("name"))).unwrap_or_default();
    project_name
        .strip_prefix("comfygit-env-")
        .unwrap_or(&project_name)
        .clone_into(&mut plan.environment_name);
    if plan.environment_name.is_empty() {
        plan.environment_name = "imported".into();
    }
    let Some(tool) = doc.get("tool").and_then(|t| t.get("comfygit")) else {
        return plan;
    };
    plan.python = text(tool.get("python_version"));
    plan.comfyui = text(tool.get("comfyui_commit_sha")).or_else(|| text(tool.get("comfyui_version")));
    if let Some(Value::Table(nodes)) = tool.get("nodes") {
        for (key, node) in nodes {
            let get = |k: &str| text(node.get(k));
            let name = get("name").unwrap_or_else(|| key.clone());
            let repository = get("repository");
            let version = get("version");
            match get("source").as_deref() {
                Some("registry") => {
                    let id = get("registry_id").unwrap_or_else(|| key.clone());
                    plan.node_specs.push(match &version {
                        Some(v) => format!("{id}@{v}"),
                        None => id,
                    });
                    plan.registry_nodes += 1;
                }
                Some("git") => match (&repository, &version) {
                    (Some(repo), Some(commit)) => {
                        plan.node_specs.push(format!("{repo}@{commit}"));
                        plan.git_nodes += 1;
                    }
                    _ => plan
                        .unmapped
                        .push(format!("git node `{name}`: no repository or commit recorded")),
                },
                Some("development") => match (&repository, get("pinned_commit")) {
                    (Some(repo), Some(commit)) => {
                        plan.node_specs.push(format!("{repo}@{commit}"));
                        plan.git_nodes += 1;
                        plan.unmapped.push(format!(
                            "dev node `{name}`: its source is not in the export; installed from {repo} at {commit} as a git node"
                        ));
                    }
                    _ => plan.unmapped.push(format!(
                        "dev node `{name}`: its source is not in the export and no repository is recorded"
                    )),
                },
                other => plan.unmapped.push(format!(
                    "node `{name}`: unknown source `{}`",
                    other.unwrap_or_default()
                )),
            }
        }
    }
    if let Some(Value::Table(models)) = tool.get("models") {
        for (hash, model) in models {
            let file = text(model.get("relative_path"))
                .or_else(|| text(model.get("filename")))
                .unwrap_or_else(|| hash.clone());
            let sources: Vec<String> = model
                .get("sources")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            let fetch = sources.first().map_or_else(
                || "no source recorded".to_owned(),
                |url| format!("fetch it with `comfydock model download {url}`"),
            );
            plan.unmapped.push(format!(
                "model `{file}`: comfygit's short hash `{hash}` cannot be verified; {fetch}"
            ));
        }
    }
    let uv = doc.get("tool").and_then(|t| t.get("uv"));
    if let Some(Value::Array(constraints)) = uv.and_then(|u| u.get("constraint-dependencies"))
        && !constraints.is_empty()
    {
        let list: Vec<&str> = constraints.iter().filter_map(Value::as_str).collect();
        plan.unmapped.push(format!(
            "uv constraints {}: add them to `[tool.uv] constraint-dependencies` by hand",
            list.join(", ")
        ));
    }
    if let Some(Value::Table(sources)) = uv.and_then(|u| u.get("sources")) {
        for name in sources.keys() {
            plan.unmapped.push(format!(
                "uv source `{name}`: node-specific sources are re-created by `node add`"
            ));
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_comfygit() {
        assert!(is_comfygit("[tool.comfygit]\nschema_version = 2\n"));
        assert!(!is_comfygit("[tool.comfydock]\nschema_version = 1\n"));
    }

    #[test]
    fn maps_what_is_clear_and_lists_the_rest() {
        let plan = plan(
            r#"
[project]
name = "comfygit-env-my-project"
[tool.uv]
constraint-dependencies = ["numpy<2"]
[tool.comfygit]
schema_version = 2
comfyui_version = "v0.3.68"
comfyui_commit_sha = "abc"
python_version = "3.11"
[tool.comfygit.nodes.comfyui-impact-pack]
name = "ComfyUI-Impact-Pack"
registry_id = "comfyui-impact-pack"
version = "5.5.0"
source = "registry"
[tool.comfygit.nodes.foo]
name = "Foo"
repository = "https://example.com/foo"
version = "0123"
source = "git"
[tool.comfygit.nodes.mine]
name = "Mine"
version = "dev"
source = "development"
[tool.comfygit.models]
0b222b1d568748dc = { filename = "clip.safetensors", relative_path = "clip_vision/clip.safetensors", sources = ["https://example.com/clip"] }
"#,
        );
        assert_eq!(plan.environment_name, "my-project");
        assert_eq!(plan.python.as_deref(), Some("3.11"));
        assert_eq!(plan.comfyui.as_deref(), Some("abc"));
        assert_eq!(
            plan.node_specs,
            ["comfyui-impact-pack@5.5.0", "https://example.com/foo@0123"]
        );
        assert_eq!(plan.unmapped.len(), 3, "{:?}", plan.unmapped);
        assert!(plan.unmapped[0].contains("dev node `Mine`"));
        assert!(plan.unmapped[1].contains("comfydock model download https://example.com/clip"));
        assert!(plan.unmapped[2].contains("numpy<2"));
    }
}
