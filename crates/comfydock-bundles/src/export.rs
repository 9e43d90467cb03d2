//! `comfydock export`: check the environment is committed, then write a deterministic bundle.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::BundleError;
use super::archive::{self, BundleEntry};
use super::format::{
    BundleManifest, ComfyUiRecord, Counts, FORMAT_VERSION, ModelRef, current_platform, current_version,
};
use comfydock_environments::environment::{self, Environment};
use comfydock_environments::manifest::node_entry as entry;
use comfydock_environments::nodes::{NodeSource, install};
use comfydock_environments::workflow_tracking::{self, WorkflowState};
use comfydock_foundation::git::Git;
use comfydock_foundation::reporter::Reporter;

/// A dev node above this size is worth a warning.
pub const DEV_NODE_WARN_BYTES: u64 = 50 * 1024 * 1024;
/// A dev node above this size is refused unless `allow_large_dev_nodes`.
pub const DEV_NODE_MAX_BYTES: u64 = 200 * 1024 * 1024;

/// Options of `comfydock export`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportOptions {
    /// Export even when models cannot be referenced (no hash or no target).
    pub allow_issues: bool,
    pub allow_large_dev_nodes: bool,
}

/// What `export` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    pub path: PathBuf,
    pub size: u64,
    pub manifest: BundleManifest,
    /// Warnings shown at the end (large dev nodes, likely secrets, models without sources).
    pub warnings: Vec<String>,
}

/// Refuse an environment with changes not committed to `.cec` (files, or tracked workflows
/// changed in ComfyUI): what is shared is always a commit.
pub fn check_committed(git: &Git, env: &Environment) -> Result<(), BundleError> {
    let mut dirty: Vec<String> = environment::uncommitted(git, env)?;
    if let Ok(workflows) = workflow_tracking::list(env) {
        for wf in workflows.iter().filter(|w| w.tracked) {
            let why = match wf.state {
                WorkflowState::Modified => "changed in ComfyUI",
                WorkflowState::New => "tracked, never committed",
                WorkflowState::Deleted | WorkflowState::Synced => continue,
            };
            dirty.push(format!("workflow `{}` ({why})", wf.name));
        }
    }
    if !dirty.is_empty() {
        return Err(BundleError::Uncommitted {
            env: env.name.clone(),
            files: dirty,
        });
    }
    Ok(())
}

/// What a shareable environment carries, and what was let through with `allow_issues`.
#[derive(Debug, Clone, Default)]
pub struct Shareable {
    /// Model references for `manifest.json`.
    pub models: Vec<ModelRef>,
    /// Issues allowed with `allow_issues`, and models without a download source.
    pub warnings: Vec<String>,
}

/// Refuse (unless `allow_issues`) what a teammate could not reproduce: workflows never resolved,
/// unresolved models and node types, packages a workflow needs that the environment lacks.
pub fn check_shareable(
    env: &Environment,
    manifest: &comfydock_environments::manifest::Manifest,
    allow_issues: bool,
) -> Result<Shareable, BundleError> {
    let mut collected = super::models::collect(manifest, &env.name);
    for name in workflow_tracking::never_resolved(env, manifest) {
        collected.issues.push(format!(
            "workflow `{name}` was never resolved, so the bundle cannot say which nodes and models it needs: run `comfydock -e {} workflow resolve {name}`",
            env.name
        ));
    }
    let nodes = entry::read_all(manifest);
    for (name, workflow) in &manifest.tool().workflows {
        for package in workflow
            .nodes
            .iter()
            .filter(|p| !nodes.iter().any(|n| n.provides_package(p)))
        {
            collected.issues.push(format!(
                "workflow `{name}` needs node package `{package}`, which this environment does not have: add it with `comfydock -e {env} workflow resolve {name} --install` (or `comfydock -e {env} node add {package}`)",
                env = env.name
            ));
        }
    }
    let mut warnings = Vec::new();
    if !collected.issues.is_empty() {
        if allow_issues {
            warnings.extend(collected.issues);
        } else {
            return Err(BundleError::Issues {
                env: env.name.clone(),
                issues: collected.issues,
            });
        }
    }
    let models: Vec<ModelRef> = collected.models;
    for m in models.iter().filter(|m| m.sources.is_empty()) {
        warnings.push(format!(
            "model `{}` has no download source; importers must already have it",
            m.target
        ));
    }
    Ok(Shareable { models, warnings })
}

/// Refuse a bundle that `import` would refuse by its [`archive::Limits`]: too many entries, a
/// file over its own cap, or too many bytes in all.
fn check_importable(env: &str, entries: &BTreeMap<String, BundleEntry>) -> Result<(), BundleError> {
    let limits = archive::Limits::default();
    let refuse = |reason: String| {
        Err(BundleError::WouldNotImport {
            env: env.to_owned(),
            reason,
        })
    };
    // manifest.json is one more entry.
    if entries.len() + 1 > limits.max_entries {
        return refuse(format!(
            "{} files, more than the {} an import accepts",
            entries.len() + 1,
            limits.max_entries
        ));
    }
    let human = comfydock_foundation::display_text::human_bytes;
    let mut total: u64 = 0;
    for (name, entry) in entries {
        let size = entry.size();
        total += size;
        if let Some(cap) = limits.per_entry(name)
            && size > cap
        {
            return refuse(format!(
                "`{name}` is {}, more than the {} an import accepts for it",
                human(size),
                human(cap)
            ));
        }
    }
    if total > limits.max_total_bytes {
        return refuse(format!(
            "{} in all, more than the {} an import accepts",
            human(total),
            human(limits.max_total_bytes)
        ));
    }
    Ok(())
}

/// Export `env` to `out`. Refuses uncommitted changes; the bytes depend only on the `.cec`
/// commit and the dev node sources.
pub fn export(
    git: &Git,
    env: &Environment,
    out: &Path,
    options: ExportOptions,
    reporter: &dyn Reporter,
) -> Result<ExportReport, BundleError> {
    reporter.phase("Checking the environment");
    check_committed(git, env)?;
    let cec = env.cec();
    let cec_commit = git.run(Some(&cec), ["rev-parse", "HEAD"])?;
    let commit_time: i64 = git
        .run(Some(&cec), ["log", "-1", "--format=%ct", "HEAD"])?
        .trim()
        .parse()
        .unwrap_or(0);
    let created_at = jiff::Timestamp::from_second(commit_time)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_string();

    let manifest = env.manifest()?;
    // Names `import` refuses are refused here, so an export always imports.
    let mut non_portable: Vec<(String, String)> = entry::unsafe_entries(&manifest)
        .into_iter()
        .map(|(key, err)| (format!("node {key}"), err.reason().to_owned()))
        .collect();
    non_portable.extend(
        workflow_tracking::unsafe_tracked(&manifest)
            .into_iter()
            .map(|name| (format!("workflow {name}"), "not a plain relative name".to_owned())),
    );
    let pyproject = fs_err::read(env.manifest_path())?;
    let lock = fs_err::read(env.lock_path())?;
    let python_version = fs_err::read(cec.join(".python-version"))
        .unwrap_or_else(|_| format!("{}\n", manifest.python().unwrap_or_default()).into_bytes());
    let pin = manifest.comfyui()?;
    let shareable = check_shareable(env, &manifest, options.allow_issues)?;
    let mut warnings = shareable.warnings;
    let models: Vec<ModelRef> = shareable.models;

    let mut entries: BTreeMap<String, BundleEntry> = BTreeMap::new();
    entries.insert("pyproject.toml".into(), BundleEntry::file(pyproject));
    entries.insert("uv.lock".into(), BundleEntry::file(lock));
    entries.insert(".python-version".into(), BundleEntry::file(python_version));
    let workflows_dir = workflow_tracking::cec_workflows_dir(env);
    let mut workflow_count = 0;
    for file in walk_files(&workflows_dir, false)? {
        if Path::new(&file.rel)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            workflow_count += 1;
            entries.insert(
                format!("workflows/{}", file.rel),
                BundleEntry::on_disk(file.path, file.size, false),
            );
        }
    }

    let mut counts = Counts {
        workflows: workflow_count,
        models: models.len(),
        ..Counts::default()
    };
    for node in entry::read_all(&manifest) {
        match node.source {
            NodeSource::Registry => counts.registry_nodes += 1,
            NodeSource::Git => counts.git_nodes += 1,
            NodeSource::Dev => {
                counts.dev_nodes += 1;
                reporter.phase(&format!("Packing dev node `{}`", node.name));
                let dir = install::dev_path(env, &node).unwrap_or_default();
                if !dir.is_dir() {
                    return Err(BundleError::DevNodeMissing {
                        name: node.name.clone(),
                        path: dir,
                    });
                }
                let files = walk_files(&dir, true)?;
                let size: u64 = files.iter().map(|f| f.size).sum();
                if size > DEV_NODE_MAX_BYTES && !options.allow_large_dev_nodes {
                    return Err(BundleError::DevNodeTooLarge {
                        name: node.name.clone(),
                        path: dir,
                        size_mb: size / (1024 * 1024),
                        limit_mb: DEV_NODE_MAX_BYTES / (1024 * 1024),
                    });
                }
                if size > DEV_NODE_WARN_BYTES {
                    warnings.push(format!(
                        "dev node `{}` is {} MB; review its .gitignore",
                        node.name,
                        size / (1024 * 1024)
                    ));
                }
                for file in files {
                    if let Some(why) = likely_secret(&file.rel) {
                        warnings.push(format!(
                            "dev node `{}` includes `{}`, which looks like {why}; check before sharing",
                            node.name, file.rel
                        ));
                    }
                    entries.insert(
                        format!("dev_nodes/{}/{}", node.name, file.rel),
                        BundleEntry::on_disk(file.path, file.size, file.executable),
                    );
                }
            }
        }
    }

    // Every path passes the reader's rule; workflow names are also plain portable names, as
    // `import` tracks them.
    for name in entries.keys() {
        let problem = archive::check_path(name).err().or_else(|| {
            name.strip_prefix("workflows/").and_then(|rel| {
                comfydock_foundation::path_part::check_relative(rel.trim_end_matches(".json"))
                    .err()
                    .map(|e| e.reason.to_owned())
            })
        });
        if let Some(why) = problem {
            non_portable.push((name.clone(), why));
        }
    }
    if !non_portable.is_empty() {
        return Err(BundleError::NonPortableNames {
            env: env.name.clone(),
            names: non_portable,
        });
    }
    check_importable(&env.name, &entries)?;
    // Files are hashed as streams (never read whole), then streamed again into the archive.
    reporter.phase("Writing bundle");
    let mut files = BTreeMap::new();
    for (name, entry) in &entries {
        files.insert(name.clone(), entry.digest()?);
    }
    let bundle = BundleManifest {
        format_version: FORMAT_VERSION,
        comfydock_version: current_version().to_owned(),
        created_at,
        environment_name: env.name.clone(),
        platform: current_platform(),
        python: manifest.python().unwrap_or_default(),
        comfyui: ComfyUiRecord {
            reference: pin.reference.clone(),
            commit: pin.commit.clone(),
        },
        torch_backend: env.backend().to_string(),
        // What the exported lock covers (what an import can sync with).
        torch_backends: comfydock_environments::lock_coverage::read(&env.lock_path())?
            .iter()
            .map(|l| l.backend.to_string())
            .collect(),
        cec_commit: cec_commit.trim().to_owned(),
        counts,
        models,
        files,
    };
    let manifest_json = serde_json::to_vec_pretty(&bundle).expect("bundle manifest serialises");

    let write_err = |source| BundleError::Write {
        path: out.to_path_buf(),
        source,
    };
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs_err::create_dir_all(&parent).map_err(write_err)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".comfydock-export-")
        .tempfile_in(&parent)
        .map_err(write_err)?;
    let mtime = u64::try_from(commit_time).unwrap_or(0);
    archive::write(
        std::io::BufWriter::new(tmp.as_file_mut()),
        &manifest_json,
        &entries,
        Some(&bundle.files),
        mtime,
    )
    .map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    tmp.persist(out).map_err(|e| write_err(e.error))?;
    let size = fs_err::metadata(out).map_err(write_err)?.len();
    Ok(ExportReport {
        path: out.to_path_buf(),
        size,
        manifest: bundle,
        warnings,
    })
}

/// The default bundle name: `<env>_export_<YYYY-MM-DD of the .cec commit>.tar.gz`.
pub fn default_file_name(git: &Git, env: &Environment) -> String {
    let day = git
        .run(Some(&env.cec()), ["log", "-1", "--format=%cs", "HEAD"])
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    if day.is_empty() {
        format!("{}_export.tar.gz", env.name)
    } else {
        format!("{}_export_{day}.tar.gz", env.name)
    }
}

/// One regular file found by [`walk_files`].
pub struct WalkedFile {
    pub path: PathBuf,
    /// Relative path with `/` separators.
    pub rel: String,
    pub size: u64,
    pub executable: bool,
}

/// Regular files under `dir`, sorted; with `gitignore`, `.gitignore` rules apply and `.git`,
/// `__pycache__` and `*.pyc` are left out. Symbolic links are never followed or packed.
pub fn walk_files(dir: &Path, gitignore: bool) -> Result<Vec<WalkedFile>, BundleError> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let walker = ignore::WalkBuilder::new(dir)
        .standard_filters(false)
        .hidden(false)
        .git_ignore(gitignore)
        .git_exclude(false)
        .git_global(false)
        .ignore(false)
        .parents(false)
        .require_git(false)
        .follow_links(false)
        .filter_entry(move |e| {
            let name = e.file_name().to_string_lossy();
            !(gitignore && (name == ".git" || name == "__pycache__" || name.ends_with(".pyc")))
        })
        .build();
    for item in walker {
        let item = item.map_err(|e| BundleError::Io(std::io::Error::other(e.to_string())))?;
        let Some(kind) = item.file_type() else { continue };
        if !kind.is_file() {
            continue;
        }
        let path = item.path().to_path_buf();
        let rel = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let meta = fs_err::metadata(&path)?;
        #[cfg(unix)]
        let executable = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0;
        #[cfg(not(unix))]
        let executable = false;
        out.push(WalkedFile {
            path,
            rel,
            size: meta.len(),
            executable,
        });
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

/// Why a file name looks like a secret, if it does.
fn likely_secret(rel: &str) -> Option<&'static str> {
    let name = rel.rsplit('/').next().unwrap_or(rel).to_ascii_lowercase();
    if name == ".env" || name.starts_with(".env.") {
        return Some("an environment file with secrets");
    }
    if name.starts_with("id_rsa") || name.starts_with("id_ed25519") || name.starts_with("id_ecdsa") {
        return Some("an SSH private key");
    }
    if [".pem", ".key", ".p12", ".pfx"]
        .iter()
        .any(|ext| name.ends_with(ext))
    {
        return Some("a private key or certificate");
    }
    if name == ".netrc" || name == "credentials.json" || name == ".pypirc" {
        return Some("a credentials file");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_recognised() {
        assert!(likely_secret("sub/.env").is_some());
        assert!(likely_secret(".env.local").is_some());
        assert!(likely_secret("keys/id_rsa").is_some());
        assert!(likely_secret("server.pem").is_some());
        assert!(likely_secret("nodes.py").is_none());
        assert!(likely_secret("environment.py").is_none());
    }

    #[test]
    fn walk_respects_gitignore_and_skips_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs_err::write(root.join(".gitignore"), "build/\n*.log\n").unwrap();
        fs_err::write(root.join("__init__.py"), "x").unwrap();
        fs_err::write(root.join("debug.log"), "x").unwrap();
        fs_err::create_dir_all(root.join("build")).unwrap();
        fs_err::write(root.join("build/out.bin"), "x").unwrap();
        fs_err::create_dir_all(root.join("__pycache__")).unwrap();
        fs_err::write(root.join("__pycache__/a.pyc"), "x").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        let names: Vec<String> = walk_files(root, true)
            .unwrap()
            .into_iter()
            .map(|f| f.rel)
            .collect();
        assert_eq!(names, [".gitignore", "__init__.py"]);
    }
}
