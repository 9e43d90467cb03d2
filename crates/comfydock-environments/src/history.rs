//! The history of `.cec`: log, rollback (as a new commit, never rewriting), and a semantic diff.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::environment::{EnvError, Environment, commit_all, uncommitted};
use crate::manifest::node_entry::NodeSource;
use crate::manifest::{Manifest, requirement_name, schema};
use comfydock_foundation::git::Git;

/// One commit of `.cec`.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    pub commit: String,
    pub short: String,
    pub author: String,
    pub date: String,
    pub message: String,
}

/// The newest `limit` commits.
pub fn log(git: &Git, env: &Environment, limit: Option<usize>) -> Result<Vec<LogEntry>, EnvError> {
    let mut args = vec![
        "log".to_owned(),
        "--format=%H%x1f%h%x1f%an%x1f%aI%x1f%s".to_owned(),
    ];
    if let Some(n) = limit {
        args.push(format!("-n{n}"));
    }
    let out = git.run(Some(&env.cec()), &args)?;
    Ok(out
        .lines()
        .filter_map(|line| {
            let mut f = line.split('\x1f');
            Some(LogEntry {
                commit: f.next()?.to_owned(),
                short: f.next()?.to_owned(),
                author: f.next()?.to_owned(),
                date: f.next()?.to_owned(),
                message: f.next().unwrap_or_default().to_owned(),
            })
        })
        .collect())
}

/// Resolve a revision of `.cec` to a full commit.
pub fn resolve_rev(git: &Git, env: &Environment, rev: &str) -> Result<String, EnvError> {
    comfydock_foundation::git::check_revision(rev).map_err(comfydock_foundation::git::GitError::from)?;
    Ok(git.run(
        Some(&env.cec()),
        ["rev-parse", "--verify", &format!("{rev}^{{commit}}")],
    )?)
}

/// Restore `.cec` to `rev` as a new commit. Returns the new commit (None if nothing changed).
pub fn rollback(git: &Git, env: &Environment, rev: &str, force: bool) -> Result<Option<String>, EnvError> {
    let dirty = uncommitted(git, env)?;
    if !dirty.is_empty() && !force {
        return Err(EnvError::Uncommitted {
            name: env.name.clone(),
            files: dirty,
        });
    }
    let target = resolve_rev(git, env, rev)?;
    let cec = env.cec();
    // Make the index and work tree exactly `target`'s tree (files it lacks are removed).
    git.run(Some(&cec), ["read-tree", "--reset", "-u", &target])?;
    git.run(Some(&cec), ["clean", "-fdq"])?;
    let short = comfydock_foundation::display_text::short_hash(&target);
    commit_all(git, env, &format!("Rollback to {short}"))
}

/// A semantic difference between two states of `.cec`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EnvDiff {
    pub from: String,
    pub to: String,
    pub comfyui: Option<Change<String>>,
    pub python: Option<Change<String>>,
    /// `[project] dependencies` by package name (the user's own packages; ComfyUI's too in
    /// legacy manifests).
    pub requirements: Vec<NamedChange>,
    /// Locked package versions from `uv.lock`.
    pub locked: Vec<NamedChange>,
    /// Dependency groups by name: `comfyui` (ComfyUI's requirements), one per custom node, and
    /// the user's own.
    pub node_groups: Vec<NamedChange>,
    /// `[tool.comfydock.nodes]`, `[tool.comfydock.models]`, `[tool.comfydock.workflows]` by key.
    pub nodes: Vec<NamedChange>,
    pub models: Vec<NamedChange>,
    pub workflows: Vec<NamedChange>,
    /// Files under `workflows/` added, removed or changed.
    pub workflow_files: Vec<NamedChange>,
}

impl EnvDiff {
    pub fn is_empty(&self) -> bool {
        self.comfyui.is_none()
            && self.python.is_none()
            && self.requirements.is_empty()
            && self.locked.is_empty()
            && self.node_groups.is_empty()
            && self.nodes.is_empty()
            && self.models.is_empty()
            && self.workflows.is_empty()
            && self.workflow_files.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change<T> {
    pub old: T,
    pub new: T,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedChange {
    pub name: String,
    pub kind: ChangeKind,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

/// One side of a diff: the files of `.cec` at a revision, on disk, or about to be written.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub manifest: Option<Manifest>,
    pub lock: Option<String>,
    /// Path relative to `.cec` → the file's exact bytes.
    pub workflows: BTreeMap<String, Vec<u8>>,
}

impl Snapshot {
    pub fn at_rev(git: &Git, cec: &Path, rev: &str) -> Result<Self, EnvError> {
        comfydock_foundation::git::check_revision(rev).map_err(comfydock_foundation::git::GitError::from)?;
        let text = |path: &str| {
            git.read_blob(cec, rev, path)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
        };
        let manifest =
            text("pyproject.toml").and_then(|t| Manifest::parse(Path::new("pyproject.toml"), &t).ok());
        // NUL-separated so no name is quoted or trimmed.
        let files = git.run_bytes(
            Some(cec),
            ["ls-tree", "-r", "-z", "--name-only", rev, "--", "workflows"],
        )?;
        let mut workflows = BTreeMap::new();
        for name in files.split(|b| *b == 0).filter(|n| !n.is_empty()) {
            let name = String::from_utf8_lossy(name).into_owned();
            if name.ends_with(".gitkeep") {
                continue;
            }
            let content = git.read_blob(cec, rev, &name)?;
            workflows.insert(name, content);
        }
        Ok(Self {
            manifest,
            lock: text("uv.lock"),
            workflows,
        })
    }

    fn on_disk(cec: &Path) -> Result<Self, EnvError> {
        let manifest = Manifest::load(&cec.join("pyproject.toml")).ok();
        let lock = fs_err::read_to_string(cec.join("uv.lock")).ok();
        let mut workflows = BTreeMap::new();
        let dir = cec.join("workflows");
        if dir.is_dir() {
            collect_files(&dir, cec, &mut workflows)?;
        }
        Ok(Self {
            manifest,
            lock,
            workflows,
        })
    }
}

fn collect_files(dir: &Path, base: &Path, out: &mut BTreeMap<String, Vec<u8>>) -> std::io::Result<()> {
    for entry in fs_err::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect_files(&path, base, out)?;
        } else if !path.ends_with(".gitkeep") {
            let rel = path
                .strip_prefix(base)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            out.insert(rel, fs_err::read(&path)?);
        }
    }
    Ok(())
}

/// Diff `from` (default HEAD) against `to` (default: the files on disk).
pub fn diff(git: &Git, env: &Environment, from: Option<&str>, to: Option<&str>) -> Result<EnvDiff, EnvError> {
    let cec = env.cec();
    let from_rev = resolve_rev(git, env, from.unwrap_or("HEAD"))?;
    let old = Snapshot::at_rev(git, &cec, &from_rev)?;
    let (new, to_label) = match to {
        Some(rev) => {
            let rev = resolve_rev(git, env, rev)?;
            (Snapshot::at_rev(git, &cec, &rev)?, rev)
        }
        None => (Snapshot::on_disk(&cec)?, "working tree".to_owned()),
    };
    Ok(diff_states(from_rev, &old, to_label, &new))
}

/// The semantic difference between two states of `.cec`, labelled `from` and `to`.
pub fn diff_states(from: String, old: &Snapshot, to: String, new: &Snapshot) -> EnvDiff {
    let mut out = EnvDiff {
        from,
        to,
        ..EnvDiff::default()
    };
    if let (Some(a), Some(b)) = (&old.manifest, &new.manifest) {
        if let (Ok(pa), Ok(pb)) = (a.comfyui(), b.comfyui())
            && pa != pb
        {
            out.comfyui = Some(Change {
                old: format!("{} ({})", pa.reference, short(&pa.commit)),
                new: format!("{} ({})", pb.reference, short(&pb.commit)),
            });
        }
        if a.python() != b.python() {
            out.python = Some(Change {
                old: a.python().unwrap_or_default(),
                new: b.python().unwrap_or_default(),
            });
        }
        out.requirements = diff_maps(&by_name(&a.dependencies()), &by_name(&b.dependencies()));
        let groups = |m: &Manifest| -> BTreeMap<String, String> {
            m.dependency_groups()
                .into_iter()
                .map(|(k, v)| (k, v.join(", ")))
                .collect()
        };
        out.node_groups = diff_maps(&groups(a), &groups(b));
        let (ta, tb) = (a.tool(), b.tool());
        out.nodes = diff_maps(
            &summaries(&ta.nodes, node_summary),
            &summaries(&tb.nodes, node_summary),
        );
        out.models = diff_maps(
            &summaries(&ta.models, model_summary),
            &summaries(&tb.models, model_summary),
        );
        out.workflows = diff_maps(
            &summaries(&ta.workflows, workflow_summary),
            &summaries(&tb.workflows, workflow_summary),
        );
    }
    out.locked = diff_maps(
        &locked_versions(old.lock.as_deref().unwrap_or_default()),
        &locked_versions(new.lock.as_deref().unwrap_or_default()),
    );
    // File contents are too long to show; say what happened.
    out.workflow_files = diff_maps_shown(&old.workflows, &new.workflows, |_| "present".into());
    out
}

fn short(commit: &str) -> &str {
    comfydock_foundation::display_text::short_hash(commit)
}

fn by_name(requirements: &[String]) -> BTreeMap<String, String> {
    requirements
        .iter()
        .map(|r| (requirement_name(r), r.clone()))
        .collect()
}

/// Each entry of a `[tool.comfydock]` table as one readable line, for the diff.
fn summaries<T>(
    entries: &indexmap::IndexMap<String, T>,
    summary: fn(&T) -> String,
) -> BTreeMap<String, String> {
    entries.iter().map(|(k, v)| (k.clone(), summary(v))).collect()
}

/// `registry 1.0.0`, `git v1.0.0 (0123456789ab) URL`, `dev PATH`, with `disabled` when it is.
fn node_summary(node: &schema::NodeTable) -> String {
    let pinned = match node.source {
        NodeSource::Registry => node.version.clone().unwrap_or_default(),
        NodeSource::Git => {
            let commit = node.commit.as_deref().map(short).unwrap_or_default();
            let url = node.url.as_deref().unwrap_or_default();
            match node.reference.as_deref() {
                Some(r) if r != commit => format!("{r} ({commit}) {url}"),
                _ => format!("{commit} {url}"),
            }
        }
        NodeSource::Dev => node.path.clone().unwrap_or_default(),
    };
    let disabled = if node.enabled { "" } else { ", disabled" };
    format!("{} {}{disabled}", node.source.as_str(), pinned.trim())
}

/// `checkpoints/x.safetensors (required, 2.0 GiB, sha256 0123456789ab, 2 sources)`.
fn model_summary(model: &schema::ModelEntry) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(c) = model.criticality {
        parts.push(c.as_str().to_owned());
    }
    if let Some(size) = model.size {
        parts.push(comfydock_foundation::display_text::human_bytes(size));
    }
    if let Some(h) = model.blake3(None) {
        parts.push(format!("blake3 {}", short(h.as_str())));
    } else if let Some(h) = model.sha256(None) {
        parts.push(format!("sha256 {}", short(h.as_str())));
    }
    match model.urls().len() {
        0 => {}
        1 => parts.push("1 source".into()),
        n => parts.push(format!("{n} sources")),
    }
    format!(
        "{} ({})",
        model.raw_target().unwrap_or_else(|| "?".into()),
        parts.join(", ")
    )
}

/// `tracked; nodes: a, b; 2 models pinned; unresolved: x` (what a resolution records).
fn workflow_summary(workflow: &schema::WorkflowEntry) -> String {
    let mut parts = vec![if workflow.tracked { "tracked" } else { "untracked" }.to_owned()];
    if !workflow.nodes.is_empty() {
        parts.push(format!("nodes: {}", workflow.nodes.join(", ")));
    }
    let models = workflow.models.entries();
    if !models.is_empty() {
        let names: Vec<String> = models
            .iter()
            .map(|m| {
                let name = m.entry.raw_target().unwrap_or_else(|| m.label.clone());
                let hash = m
                    .entry
                    .blake3(m.key.as_ref())
                    .map(|h| short(h.as_str()).to_owned())
                    .or_else(|| {
                        m.entry
                            .sha256(m.key.as_ref())
                            .map(|h| short(h.as_str()).to_owned())
                    })
                    .unwrap_or_default();
                format!("{name} {hash}").trim().to_owned()
            })
            .collect();
        parts.push(format!("models: {}", names.join(", ")));
    }
    let unresolved: Vec<&str> = workflow
        .unresolved_models
        .iter()
        .chain(&workflow.unresolved_nodes)
        .map(String::as_str)
        .collect();
    if !unresolved.is_empty() {
        parts.push(format!("unresolved: {}", unresolved.join(", ")));
    }
    parts.join("; ")
}

/// `name → version` of every `[[package]]` in a uv.lock (the project itself excluded).
fn locked_versions(lock: &str) -> BTreeMap<String, String> {
    let Ok(doc) = lock.parse::<toml::Table>() else {
        return BTreeMap::new();
    };
    doc.get("package")
        .and_then(|p| p.as_array())
        .map(|packages| {
            packages
                .iter()
                .filter_map(|p| {
                    let name = p.get("name")?.as_str()?;
                    let version = p.get("version")?.as_str()?;
                    let source = p.get("source").map(ToString::to_string).unwrap_or_default();
                    (!source.contains("virtual") && !source.contains("editable"))
                        .then(|| (name.to_owned(), version.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn diff_maps(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<NamedChange> {
    diff_maps_shown(old, new, Clone::clone)
}

/// Entries added, removed or changed between `old` and `new`, each side shown with `show`.
fn diff_maps_shown<V: PartialEq>(
    old: &BTreeMap<String, V>,
    new: &BTreeMap<String, V>,
    show: impl Fn(&V) -> String,
) -> Vec<NamedChange> {
    let mut out = Vec::new();
    for (name, value) in old {
        match new.get(name) {
            None => out.push(NamedChange {
                name: name.clone(),
                kind: ChangeKind::Removed,
                old: Some(show(value)),
                new: None,
            }),
            Some(v) if v != value => out.push(NamedChange {
                name: name.clone(),
                kind: ChangeKind::Changed,
                old: Some(show(value)),
                new: Some(show(v)),
            }),
            Some(_) => {}
        }
    }
    for (name, value) in new {
        if !old.contains_key(name) {
            out.push(NamedChange {
                name: name.clone(),
                kind: ChangeKind::Added,
                old: None,
                new: Some(show(value)),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locked_versions_skip_the_project() {
        let lock = r#"
version = 1
[[package]]
name = "comfydock-env-a"
version = "0.0.0"
source = { virtual = "." }
[[package]]
name = "tinynum"
version = "1.26.4"
source = { registry = "http://x/simple" }
"#;
        let v = locked_versions(lock);
        assert_eq!(v.len(), 1);
        assert_eq!(v["tinynum"], "1.26.4");
    }

    /// An environment whose `.cec` holds `workflows/flux.json` (ending in a newline), committed.
    fn env_with_committed_workflow(root: &Path) -> (Git, Environment) {
        let git = Git::find().unwrap();
        let env = Environment {
            name: "a".into(),
            root: root.to_owned(),
        };
        let cec = env.cec();
        fs_err::create_dir_all(cec.join("workflows")).unwrap();
        fs_err::write(cec.join("workflows/flux.json"), "{\n  \"nodes\": []\n}\n").unwrap();
        git.run(Some(&cec), ["init", "--quiet", "--initial-branch=main"])
            .unwrap();
        git.run(Some(&cec), ["config", "user.email", "t@localhost"])
            .unwrap();
        git.run(Some(&cec), ["config", "user.name", "t"]).unwrap();
        commit_all(&git, &env, "Track flux").unwrap().unwrap();
        (git, env)
    }

    #[test]
    fn unchanged_workflow_ending_in_newline_is_not_in_the_diff() {
        let dir = tempfile::tempdir().unwrap();
        let (git, env) = env_with_committed_workflow(dir.path());
        let d = diff(&git, &env, None, None).unwrap();
        assert_eq!(d.workflow_files, [], "{d:?}");
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn workflow_differing_only_in_its_final_newline_is_changed() {
        let dir = tempfile::tempdir().unwrap();
        let (git, env) = env_with_committed_workflow(dir.path());
        fs_err::write(env.cec().join("workflows/flux.json"), "{\n  \"nodes\": []\n}").unwrap();
        let d = diff(&git, &env, None, None).unwrap();
        assert_eq!(
            d.workflow_files,
            [NamedChange {
                name: "workflows/flux.json".into(),
                kind: ChangeKind::Changed,
                old: Some("present".into()),
                new: Some("present".into()),
            }]
        );
    }

    #[test]
    fn revision_against_itself_has_no_workflow_changes() {
        let dir = tempfile::tempdir().unwrap();
        let (git, env) = env_with_committed_workflow(dir.path());
        let d = diff(&git, &env, Some("HEAD"), Some("HEAD")).unwrap();
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn maps_diff() {
        let a: BTreeMap<String, String> = [("x".into(), "1".into()), ("y".into(), "1".into())].into();
        let b: BTreeMap<String, String> = [("x".into(), "2".into()), ("z".into(), "1".into())].into();
        let kinds: Vec<(String, ChangeKind)> =
            diff_maps(&a, &b).into_iter().map(|c| (c.name, c.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("x".into(), ChangeKind::Changed),
                ("y".into(), ChangeKind::Removed),
                ("z".into(), ChangeKind::Added)
            ]
        );
    }
}
