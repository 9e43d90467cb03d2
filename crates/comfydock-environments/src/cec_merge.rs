//! Merging another line of `.cec` history into this one by meaning, never by text:
//! `pyproject.toml` merged by table ([`three_way`]), `uv.lock` re-resolved from the merged
//! manifest (never merged), tracked workflows both sides changed kept as two files, other files
//! taken from the side that changed them. [`plan`] computes the whole result without changing
//! anything (what `merge --preview` shows); [`commit`] records it as a merge commit whose
//! parents are both lines, so no history is rewritten.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use toml_edit::DocumentMut;

use crate::environment::{EnvError, Environment, Tools};
use crate::history::{self, EnvDiff, Snapshot};
use crate::manifest::three_way::{self, Side};
use crate::manifest::{FileTransaction, Manifest, ManifestError};
use crate::resolver_failure::{ConflictSide, ResolverOutput};
use comfydock_foundation::Hinted;
use comfydock_foundation::atomic_file::write_atomic;
use comfydock_foundation::display_text::short_hash;
use comfydock_foundation::git::Git;
use comfydock_foundation::reporter::Reporter;

/// Why a merge cannot be made (nothing was changed).
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("`.cec` of `{env}` and `{theirs}` share no history")]
    NoCommonHistory { env: String, theirs: String },
    #[error(
        "Merging `{theirs}` into `{env}` conflicts on {}",
        conflicts.iter().map(|c| c.subject.as_str()).collect::<Vec<_>>().join(", ")
    )]
    Conflicts {
        env: String,
        theirs: String,
        /// The command that retries with a side chosen (`merge REF`, `pull`).
        command: String,
        conflicts: Vec<MergeConflict>,
    },
    #[error("The merge of `{theirs}` into `{env}` does not resolve: {problem}")]
    Unresolvable {
        env: String,
        theirs: String,
        problem: String,
        sides: Vec<ConflictSide>,
        #[source]
        resolver: ResolverOutput,
    },
    #[error("The merged manifest of `{env}` is not valid")]
    InvalidResult {
        env: String,
        #[source]
        source: Box<ManifestError>,
    },
    #[error(transparent)]
    Env(#[from] EnvError),
}

impl Hinted for MergeError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::NoCommonHistory { .. } => Some(
                "only lines of one environment's history merge; clone the other one as its own environment (`comfydock clone URL --name NAME`)".into(),
            ),
            Self::Conflicts { env, command, .. } => Some(format!(
                "nothing was changed; see both sides with `comfydock -e {env} {command} --preview`, then keep one side of every conflict with `comfydock -e {env} {command} --ours` or `--theirs`"
            )),
            Self::Unresolvable { env, .. } => Some(format!(
                "nothing was changed; remove or change one side first (`comfydock -e {env} node remove NAME`, or `comfydock -e {env} py constrain 'NAME<VERSION'`), commit, and merge again"
            )),
            Self::InvalidResult { source, .. } => source.hint(),
            Self::Env(e) => e.hint(),
        }
    }
}

/// Something both sides changed differently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MergeConflict {
    /// `node `x``, `workflow `w``, `file `.python-version``, `` `project.requires-python` ``.
    pub subject: String,
    /// The TOML key path (`tool.comfydock.nodes.x.version`) or the file's path.
    pub key: String,
    pub base: Option<String>,
    pub ours: Option<String>,
    pub theirs: Option<String>,
}

/// A tracked workflow both sides changed: ours stays under its name, theirs is kept beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeptBoth {
    pub workflow: String,
    pub theirs_as: String,
}

/// What re-resolving the merged manifest gave.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LockOutcome {
    /// The manifest did not change packages: ours' lock stands.
    Unchanged,
    /// uv locked the merged manifest.
    Resolved,
    /// uv found no solution: who asked for each conflicting requirement.
    Unresolvable {
        problem: String,
        sides: Vec<ConflictSide>,
    },
    /// Not tried while conflicts are open.
    NotTried,
}

/// The whole merged `.cec`, computed without changing anything.
#[derive(Debug, Clone, Serialize)]
pub struct MergePlan {
    pub base: String,
    pub ours: String,
    pub theirs: String,
    /// How `theirs` was named (`origin/main`, a branch, a commit).
    pub theirs_label: String,
    pub conflicts: Vec<MergeConflict>,
    /// The side chosen for the conflicts, when one was.
    pub chosen: Option<Side>,
    pub kept_both: Vec<KeptBoth>,
    pub lock: LockOutcome,
    /// From ours to the merged state: ComfyUI, packages, nodes, models, workflows.
    pub diff: EnvDiff,
    /// Every `.cec` file whose merged content differs from ours (`None`: removed).
    #[serde(skip)]
    pub files: BTreeMap<String, Option<Vec<u8>>>,
    /// uv's explanation when the lock did not resolve.
    #[serde(skip)]
    pub resolver: Option<ResolverOutput>,
}

impl MergePlan {
    /// Whether [`commit`] may record this plan.
    pub fn check(&self, env: &Environment, command: &str) -> Result<(), MergeError> {
        if !self.conflicts.is_empty() && self.chosen.is_none() {
            return Err(MergeError::Conflicts {
                env: env.name.clone(),
                theirs: self.theirs_label.clone(),
                command: command.to_owned(),
                conflicts: self.conflicts.clone(),
            });
        }
        if let LockOutcome::Unresolvable { problem, sides } = &self.lock {
            return Err(MergeError::Unresolvable {
                env: env.name.clone(),
                theirs: self.theirs_label.clone(),
                problem: problem.clone(),
                sides: sides.clone(),
                resolver: self.resolver.clone().unwrap_or(ResolverOutput(String::new())),
            });
        }
        Ok(())
    }

    /// The merged text of `file` (ours' when the merge leaves it).
    pub fn merged_text(&self, git: &Git, env: &Environment, file: &str) -> Option<String> {
        match self.files.get(file) {
            Some(content) => content.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()),
            None => git
                .read_blob(&env.cec(), &self.ours, file)
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
        }
    }
}

const MANIFEST: &str = "pyproject.toml";
const LOCK: &str = "uv.lock";
const PYTHON_VERSION: &str = ".python-version";

/// The three states of one file: at the merge base, ours, theirs.
struct Three {
    base: Option<Vec<u8>>,
    ours: Option<Vec<u8>>,
    theirs: Option<Vec<u8>>,
}

/// Compute the merge of `theirs_rev` (named `theirs_label`) into `.cec`'s HEAD. With `prefer`,
/// conflicts take that side. Runs `uv lock` on a copy beside `.cec`; changes nothing.
pub fn plan(
    git: &Git,
    tools: &Tools,
    env: &Environment,
    theirs_rev: &str,
    theirs_label: &str,
    prefer: Option<Side>,
    reporter: &dyn Reporter,
) -> Result<MergePlan, MergeError> {
    let cec = env.cec();
    let rev = |r: &str| -> Result<String, EnvError> {
        Ok(git
            .run(Some(&cec), ["rev-parse", "--verify", "--quiet", r])
            .map_err(EnvError::from)?
            .trim()
            .to_owned())
    };
    let ours = rev("HEAD")?;
    let theirs = rev(&format!("{theirs_rev}^{{commit}}"))?;
    let base = git
        .run(Some(&cec), ["merge-base", ours.as_str(), theirs.as_str()])
        .map(|b| b.trim().to_owned())
        .map_err(|_| MergeError::NoCommonHistory {
            env: env.name.clone(),
            theirs: theirs_label.to_owned(),
        })?;
    let files_at = |rev: &str| -> Result<BTreeSet<String>, EnvError> {
        let out = git.run_bytes(Some(&cec), ["ls-tree", "-r", "-z", "--name-only", rev])?;
        Ok(out
            .split(|b| *b == 0)
            .filter(|n| !n.is_empty())
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect())
    };
    let (in_base, in_ours, in_theirs) = (files_at(&base)?, files_at(&ours)?, files_at(&theirs)?);
    let read = |rev: &str, set: &BTreeSet<String>, path: &str| -> Result<Option<Vec<u8>>, EnvError> {
        if set.contains(path) {
            Ok(Some(git.read_blob(&cec, rev, path)?))
        } else {
            Ok(None)
        }
    };
    let three = |path: &str| -> Result<Three, EnvError> {
        Ok(Three {
            base: read(&base, &in_base, path)?,
            ours: read(&ours, &in_ours, path)?,
            theirs: read(&theirs, &in_theirs, path)?,
        })
    };
    let parse = |bytes: &Option<Vec<u8>>, at: &str| -> Result<DocumentMut, MergeError> {
        String::from_utf8_lossy(bytes.as_deref().unwrap_or_default())
            .parse::<DocumentMut>()
            .map_err(|e| MergeError::InvalidResult {
                env: env.name.clone(),
                source: Box::new(ManifestError::Parse {
                    path: cec.join(MANIFEST).join(format!("@{}", short_hash(at))),
                    source: e,
                }),
            })
    };
    let manifests = three(MANIFEST)?;
    let base_doc = parse(&manifests.base, &base)?;
    let mut ours_doc = parse(&manifests.ours, &ours)?;
    let mut theirs_doc = parse(&manifests.theirs, &theirs)?;

    let mut files: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
    let mut conflicts = Vec::new();
    let mut kept_both = Vec::new();
    let all: BTreeSet<&String> = in_base.iter().chain(&in_ours).chain(&in_theirs).collect();
    let short = short_hash(&theirs).to_owned();
    for path in all {
        if matches!(path.as_str(), MANIFEST | LOCK) {
            continue;
        }
        let Three {
            base: b,
            ours: o,
            theirs: t,
        } = three(path)?;
        if o == t || t == b {
            continue;
        }
        if o == b {
            files.insert(path.clone(), t);
            continue;
        }
        let workflow = path
            .strip_prefix("workflows/")
            .and_then(|p| p.strip_suffix(".json"))
            .map(str::to_owned);
        match (workflow, &o, &t) {
            (Some(name), Some(_), Some(_)) => {
                // Both changed one workflow: ours keeps the name, theirs is kept beside it.
                let copy = free_name(&name, &short, &in_ours, &in_theirs);
                files.insert(format!("workflows/{copy}.json"), t.clone());
                move_workflow_entry(&mut theirs_doc, &base_doc, &name, &copy);
                kept_both.push(KeptBoth {
                    workflow: name,
                    theirs_as: copy,
                });
            }
            (Some(name), None, Some(_)) => {
                // Removed here, changed there: the changed one is kept, with its entry.
                files.insert(path.clone(), t.clone());
                copy_workflow_entry(&theirs_doc, &mut ours_doc, &name);
            }
            (Some(name), Some(_), None) => {
                copy_workflow_entry(&ours_doc, &mut theirs_doc, &name);
            }
            _ => {
                let text =
                    |b: &Option<Vec<u8>>| b.as_ref().map(|b| String::from_utf8_lossy(b).trim().to_owned());
                conflicts.push(MergeConflict {
                    subject: format!("file `{path}`"),
                    key: path.clone(),
                    base: text(&b),
                    ours: text(&o),
                    theirs: text(&t),
                });
                if prefer == Some(Side::Theirs) {
                    files.insert(path.clone(), t);
                }
            }
        }
    }

    let merged = three_way::merge(&base_doc, &ours_doc, &theirs_doc, prefer);
    conflicts.extend(merged.conflicts.iter().map(|c| MergeConflict {
        subject: c.subject(),
        key: c.path.join("."),
        base: c.base.clone(),
        ours: c.ours.clone(),
        theirs: c.theirs.clone(),
    }));
    let manifest_path = cec.join(MANIFEST);
    let merged_manifest =
        Manifest::parse(&manifest_path, &merged.text).map_err(|source| MergeError::InvalidResult {
            env: env.name.clone(),
            source: Box::new(source),
        })?;
    if manifests.ours.as_deref() != Some(merged.text.as_bytes()) {
        files.insert(MANIFEST.to_owned(), Some(merged.text.clone().into_bytes()));
    }

    let ours_lock = read(&ours, &in_ours, LOCK)?;
    let mut resolver = None;
    let lock = if !conflicts.is_empty() && prefer.is_none() {
        LockOutcome::NotTried
    } else if !files.contains_key(MANIFEST) && !files.contains_key(PYTHON_VERSION) {
        LockOutcome::Unchanged
    } else {
        reporter.phase("Resolving Python dependencies of the merged manifest");
        let python = match files.get(PYTHON_VERSION) {
            Some(content) => content.clone(),
            None => read(&ours, &in_ours, PYTHON_VERSION)?,
        };
        match relock(
            tools,
            env,
            &merged.text,
            ours_lock.as_deref(),
            python.as_deref(),
            reporter,
        )? {
            Ok(lock) => {
                if ours_lock.as_deref() != Some(lock.as_slice()) {
                    files.insert(LOCK.to_owned(), Some(lock));
                }
                LockOutcome::Resolved
            }
            Err(stderr) => {
                let sides = conflict_sides(
                    &stderr,
                    &merged_manifest,
                    &base_doc,
                    &ours_doc,
                    &theirs_doc,
                    theirs_label,
                );
                let problem = if sides.is_empty() {
                    "uv finds no set of packages that satisfies the merged manifest".to_owned()
                } else {
                    crate::resolver_failure::conflict_message(&sides)
                };
                resolver = Some(ResolverOutput::from_uv_stderr(&stderr));
                LockOutcome::Unresolvable { problem, sides }
            }
        }
    };

    let ours_state = Snapshot::at_rev(git, &cec, &ours)?;
    let mut merged_state = ours_state.clone();
    merged_state.manifest = Some(merged_manifest);
    if let Some(lock) = files.get(LOCK) {
        merged_state.lock = lock.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
    }
    for (path, content) in &files {
        if path.starts_with("workflows/") && !path.ends_with(".gitkeep") {
            match content {
                Some(bytes) => merged_state.workflows.insert(path.clone(), bytes.clone()),
                None => merged_state.workflows.remove(path),
            };
        }
    }
    let diff = history::diff_states(ours.clone(), &ours_state, "merged".into(), &merged_state);
    Ok(MergePlan {
        base,
        ours,
        theirs,
        theirs_label: theirs_label.to_owned(),
        conflicts,
        chosen: prefer,
        kept_both,
        lock,
        diff,
        files,
        resolver,
    })
}

/// `NAME (theirs 1a2b3c4)`, or with a number when that is taken too.
fn free_name(name: &str, short: &str, ours: &BTreeSet<String>, theirs: &BTreeSet<String>) -> String {
    let taken = |n: &str| {
        let path = format!("workflows/{n}.json");
        ours.contains(&path) || theirs.contains(&path)
    };
    let mut candidate = format!("{name} (theirs {short})");
    let mut n = 2;
    while taken(&candidate) {
        candidate = format!("{name} (theirs {short} {n})");
        n += 1;
    }
    candidate
}

fn workflows_table(doc: &mut DocumentMut) -> Option<&mut toml_edit::Table> {
    doc.get_mut("tool")?
        .get_mut("comfydock")?
        .get_mut("workflows")?
        .as_table_mut()
}

/// Theirs' entry of `name` moves to `copy`; `name` gets the base's entry back, so ours' entry
/// stands for ours' file.
fn move_workflow_entry(theirs: &mut DocumentMut, base: &DocumentMut, name: &str, copy: &str) {
    let base_entry = base
        .get("tool")
        .and_then(|t| t.get("comfydock"))
        .and_then(|t| t.get("workflows"))
        .and_then(|t| t.get(name))
        .cloned();
    if let Some(table) = workflows_table(theirs) {
        if let Some(entry) = table.remove(name) {
            table.insert(copy, entry);
        }
        if let Some(entry) = base_entry {
            table.insert(name, entry);
        }
    }
}

/// Make `to`'s entry of workflow `name` the same as `from`'s.
fn copy_workflow_entry(from: &DocumentMut, to: &mut DocumentMut, name: &str) {
    let entry = from
        .get("tool")
        .and_then(|t| t.get("comfydock"))
        .and_then(|t| t.get("workflows"))
        .and_then(|t| t.get(name))
        .cloned();
    let workflows = to["tool"]["comfydock"]["workflows"].or_insert(toml_edit::table());
    if let Some(table) = workflows.as_table_mut() {
        table.set_implicit(true);
        match entry {
            Some(entry) => {
                table.insert(name, entry);
            }
            None => {
                table.remove(name);
            }
        }
    }
}

/// Lock the merged manifest in a copy of `.cec` beside it (so relative paths mean the same),
/// starting from ours' lock. `Ok(Err(stderr))` when uv finds no solution.
fn relock(
    tools: &Tools,
    env: &Environment,
    manifest: &str,
    ours_lock: Option<&[u8]>,
    python: Option<&[u8]>,
    reporter: &dyn Reporter,
) -> Result<Result<Vec<u8>, String>, EnvError> {
    let dir = tempfile::Builder::new().prefix(".merge-").tempdir_in(&env.root)?;
    write_atomic(&dir.path().join(MANIFEST), manifest)?;
    if let Some(lock) = ours_lock {
        write_atomic(&dir.path().join(LOCK), lock)?;
    }
    if let Some(python) = python {
        write_atomic(&dir.path().join(PYTHON_VERSION), python)?;
    }
    match crate::environment::uv_lock_project(tools, dir.path(), reporter) {
        Ok(()) => Ok(Ok(fs_err::read(dir.path().join(LOCK))?)),
        Err(err) => match err.uv_stderr() {
            Some(stderr) if stderr.contains("No solution found") => Ok(Err(stderr.to_owned())),
            _ => Err(err),
        },
    }
}

/// The conflicting requirements uv names, each with who asked for it and which side of the
/// merge brought it.
fn conflict_sides(
    stderr: &str,
    merged: &Manifest,
    base: &DocumentMut,
    ours: &DocumentMut,
    theirs: &DocumentMut,
    theirs_label: &str,
) -> Vec<ConflictSide> {
    let nodes = crate::manifest::node_entry::read_all(merged);
    let brought = |path: &[&str]| -> String {
        let at = |doc: &DocumentMut| {
            let mut item = doc.as_item();
            for key in path {
                match item.get(key) {
                    Some(next) => item = next,
                    None => return None,
                }
            }
            Some(item.to_string())
        };
        let (b, o, t) = (at(base), at(ours), at(theirs));
        match (o != b, t != b) {
            (true, false) => ", brought by this environment".to_owned(),
            (false, true) => format!(", brought by `{theirs_label}`"),
            (true, true) => ", changed on both sides".to_owned(),
            (false, false) => String::new(),
        }
    };
    let origin_of_group = |group: &str| {
        format!(
            "{}{}",
            crate::dependency_groups::group_origin(merged, &nodes, group),
            brought(&["dependency-groups", group])
        )
    };
    let project = format!(
        "{}{}",
        crate::dependency_groups::project_origin(merged),
        brought(&["project", "dependencies"])
    );
    let mut sides = crate::resolver_failure::conflict_sides(stderr, &origin_of_group, &project);
    crate::resolver_failure::add_constraint_sides(&mut sides, stderr, &merged.constraints());
    sides
}

/// Record `plan` as a merge commit of ours and theirs in `.cec` (the files written, then
/// committed with both parents). On any failure `.cec` is put back exactly as it was.
pub fn commit(git: &Git, env: &Environment, plan: &MergePlan, message: &str) -> Result<String, MergeError> {
    let cec = env.cec();
    let mut tx = FileTransaction::new();
    let result = (|| -> Result<String, EnvError> {
        git.run(
            Some(&cec),
            [
                "merge",
                "--quiet",
                "--no-ff",
                "--no-commit",
                "-s",
                "ours",
                plan.theirs.as_str(),
            ],
        )?;
        for (rel, content) in &plan.files {
            let path = comfydock_foundation::path_part::join(&cec, rel).map_err(|e| {
                EnvError::Io(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    e.to_string(),
                ))
            })?;
            tx.track(&path)?;
            match content {
                Some(bytes) => {
                    if let Some(parent) = path.parent() {
                        fs_err::create_dir_all(parent)?;
                    }
                    write_atomic(&path, bytes)?;
                }
                None => fs_err::remove_file(&path)?,
            }
        }
        git.run(Some(&cec), ["add", "--all"])?;
        git.run(Some(&cec), ["commit", "--quiet", "--no-verify", "-m", message])?;
        Ok(git.run(Some(&cec), ["rev-parse", "HEAD"])?.trim().to_owned())
    })();
    match result {
        Ok(commit) => {
            tx.commit();
            Ok(commit)
        }
        Err(err) => {
            let _ = git.run(Some(&cec), ["merge", "--abort"]);
            let _ = git.run(Some(&cec), ["reset", "--hard", "--quiet", plan.ours.as_str()]);
            tx.rollback().map_err(EnvError::Io)?;
            Err(err.into())
        }
    }
}
