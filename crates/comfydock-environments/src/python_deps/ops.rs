//! `py add / remove / list / constrain / unconstrain` as transactions.
//!
//! Order of every change: move a legacy manifest to the split layout, edit it, re-lock, check
//! torch did not move, then sync the venv. Any failure puts `pyproject.toml` and `uv.lock` back
//! byte for byte.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use super::PyContext;
use super::error::PyError;
use crate::comfyui_source::ComfyUiMirror;
use crate::dependency_groups::{self as layout, GroupOwner, LegacySplit};
use crate::environment::{self, EnvError, Environment, SyncMode};
use crate::manifest::node_entry::{self as entry, NodeEntry, normalize_group_name};
use crate::manifest::{COMFYUI_GROUP, FileTransaction, Layout, Manifest, requirement_name};
use crate::nodes::resolution;
use crate::resolver_failure::ResolverOutput;
use crate::torch_backend::TORCH_PACKAGES;

/// A PEP 508 requirement: name, extras, then version specifiers, `@ URL`, and/or `; markers`.
static REQUIREMENT: LazyLock<Regex> = LazyLock::new(|| {
    let name = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?";
    let clause = r"(?:~=|===|==|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+";
    Regex::new(&format!(
        r"^{name}\s*(?:\[\s*(?:{name}\s*(?:,\s*{name}\s*)*)?\])?\s*(?:@\s*\S+(?:\s+;.*)?|\(?\s*(?:{clause}(?:\s*,\s*{clause})*)?\s*\)?\s*(?:;.*)?)$"
    ))
    .expect("valid regex")
});
/// A PEP 735 group name.
static GROUP_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$").expect("valid regex"));
static NOT_FOUND: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"Because ([A-Za-z0-9][A-Za-z0-9._-]*) was not found in the package registry")
        .expect("valid regex")
});

/// Where a `py` change goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Place {
    /// `[project].dependencies`.
    Packages,
    /// A dependency group of the user's.
    Group { name: String },
    /// `[tool.uv] constraint-dependencies`.
    Constraints,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Packages => f.write_str("your packages"),
            Self::Group { name } => write!(f, "your dependency group `{name}`"),
            Self::Constraints => f.write_str("the constraints"),
        }
    }
}

/// A requirement whose spec was replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replaced {
    pub old: String,
    pub new: String,
}

/// What a `py` change did.
#[derive(Debug, Clone, Serialize)]
pub struct PyChange {
    pub place: Place,
    pub added: Vec<String>,
    pub replaced: Vec<Replaced>,
    pub removed: Vec<String>,
    /// The manifest was moved from the legacy layout first (what went where).
    pub migrated: Option<LegacySplit>,
}

impl PyChange {
    fn new(place: Place) -> Self {
        Self {
            place,
            added: Vec::new(),
            replaced: Vec::new(),
            removed: Vec::new(),
            migrated: None,
        }
    }
}

/// Add requirements to the user's packages, or to the user's dependency group `group`; a name
/// already there has its spec replaced. All or nothing.
pub fn add(ctx: &PyContext<'_>, requirements: &[String], group: Option<&str>) -> Result<PyChange, PyError> {
    let requirements = checked_requirements(ctx, requirements)?;
    if let Some(g) = group {
        check_group_name(g)?;
    }
    let place = group.map_or(Place::Packages, |g| Place::Group { name: g.to_owned() });
    apply(ctx, SyncMode::Inexact, &requirements, |manifest, nodes| {
        if let Place::Group { name } = &place {
            check_user_group(ctx, manifest, nodes, name)?;
        }
        let mut change = PyChange::new(place.clone());
        let mut list = read_place(manifest, &place);
        upsert(&mut list, &requirements, &mut change);
        write_place(manifest, &place, &list);
        Ok(change)
    })
}

/// Remove packages (by name) from the user's packages or the user's group `group`; an emptied
/// group is removed. The venv is synced exactly, so they are uninstalled.
pub fn remove(ctx: &PyContext<'_>, names: &[String], group: Option<&str>) -> Result<PyChange, PyError> {
    let place = group.map_or(Place::Packages, |g| Place::Group { name: g.to_owned() });
    apply(ctx, SyncMode::Exact, names, |manifest, nodes| {
        if let Place::Group { name } = &place {
            check_user_group(ctx, manifest, nodes, name)?;
        }
        let mut change = PyChange::new(place.clone());
        let mut list = read_place(manifest, &place);
        for name in names {
            let wanted = requirement_name(name);
            let Some(at) = list.iter().position(|r| requirement_name(r) == wanted) else {
                return Err(PyError::NotPresent {
                    name: name.clone(),
                    place: place.to_string(),
                    env: ctx.env.name.clone(),
                    owner: owner_of(manifest, nodes, &wanted),
                    known: list.iter().map(|r| requirement_name(r)).collect(),
                });
            };
            change.removed.push(list.remove(at));
        }
        match &place {
            Place::Group { name } if list.is_empty() => {
                manifest.remove_dependency_group(name);
            }
            _ => write_place(manifest, &place, &list),
        }
        Ok(change)
    })
}

/// Bound versions the lock may pick (`[tool.uv] constraint-dependencies`); a name already
/// constrained has its bound replaced.
pub fn constrain(ctx: &PyContext<'_>, requirements: &[String]) -> Result<PyChange, PyError> {
    let requirements = checked_requirements(ctx, requirements)?;
    apply(ctx, SyncMode::Inexact, &requirements, |manifest, _| {
        let mut change = PyChange::new(Place::Constraints);
        let mut list = manifest.constraints();
        upsert(&mut list, &requirements, &mut change);
        manifest.set_constraints(&list);
        Ok(change)
    })
}

/// Drop constraints by package name.
pub fn unconstrain(ctx: &PyContext<'_>, names: &[String]) -> Result<PyChange, PyError> {
    apply(ctx, SyncMode::Inexact, names, |manifest, _| {
        let mut change = PyChange::new(Place::Constraints);
        let mut list = manifest.constraints();
        for name in names {
            let wanted = requirement_name(name);
            let Some(at) = list.iter().position(|r| requirement_name(r) == wanted) else {
                return Err(PyError::NotConstrained {
                    name: name.clone(),
                    env: ctx.env.name.clone(),
                    known: list.clone(),
                });
            };
            change.removed.push(list.remove(at));
        }
        manifest.set_constraints(&list);
        Ok(change)
    })
}

/// One dependency group and its requirements.
#[derive(Debug, Clone, Serialize)]
pub struct DependencyGroup {
    pub name: String,
    pub requirements: Vec<String>,
}

/// A custom node's dependency group.
#[derive(Debug, Clone, Serialize)]
pub struct NodeGroup {
    pub node: String,
    pub group: String,
    pub requirements: Vec<String>,
}

/// ComfyUI's own requirements (its `requirements.txt` without torch).
#[derive(Debug, Clone, Serialize)]
pub struct ComfyUiRequirements {
    #[serde(rename = "ref")]
    pub reference: String,
    pub commit: String,
    pub requirements: Vec<String>,
}

/// Every Python requirement of an environment, by owner (`py list`).
#[derive(Debug, Clone, Serialize)]
pub struct PythonDeps {
    pub environment: String,
    pub schema_version: i64,
    pub layout: Layout,
    /// The user's own packages (`[project].dependencies`).
    pub packages: Vec<String>,
    /// The user's own dependency groups.
    pub groups: Vec<DependencyGroup>,
    pub comfyui: ComfyUiRequirements,
    pub nodes: Vec<NodeGroup>,
    /// `[tool.uv] constraint-dependencies`.
    pub constraints: Vec<String>,
    /// Legacy layout only: ComfyUI's requirements at the pinned commit could not be read, so
    /// every entry of `[project].dependencies` is listed as the user's.
    pub guessed: bool,
}

/// Read the environment's requirements by owner. A legacy manifest is split on the fly (nothing
/// is written); `mirror` provides ComfyUI's `requirements.txt` at the pinned commit for that.
pub fn list(env: &Environment, mirror: &ComfyUiMirror) -> Result<PythonDeps, PyError> {
    let manifest = env.manifest()?;
    let pin = manifest.comfyui()?;
    let nodes = entry::read_all(&manifest);
    let (packages, comfyui, guessed) = match manifest.layout() {
        Layout::Split => (
            manifest.dependencies(),
            manifest.dependency_group(COMFYUI_GROUP).unwrap_or_default(),
            false,
        ),
        Layout::Legacy => {
            let old = layout::comfyui_requirements_at(mirror, env, &pin.commit);
            let split = layout::split_legacy(&manifest.dependencies(), old.as_ref());
            (split.user, split.comfyui, split.guessed)
        }
    };
    let mut groups = Vec::new();
    let mut node_groups = Vec::new();
    for (name, requirements) in manifest.dependency_groups() {
        match layout::group_owner(&manifest, &nodes, &name) {
            GroupOwner::ComfyUi => {}
            GroupOwner::Node(node) => node_groups.push(NodeGroup {
                node,
                group: name,
                requirements,
            }),
            GroupOwner::User => groups.push(DependencyGroup { name, requirements }),
        }
    }
    Ok(PythonDeps {
        environment: env.name.clone(),
        schema_version: manifest.schema_version(),
        layout: manifest.layout(),
        packages,
        groups,
        comfyui: ComfyUiRequirements {
            reference: pin.reference,
            commit: pin.commit,
            requirements: comfyui,
        },
        nodes: node_groups,
        constraints: manifest.constraints(),
        guessed,
    })
}

/// Trim and check each requirement: PEP 508 shaped, and not one of the torch family.
fn checked_requirements(ctx: &PyContext<'_>, requirements: &[String]) -> Result<Vec<String>, PyError> {
    requirements
        .iter()
        .map(|r| {
            let r = r.trim();
            if !REQUIREMENT.is_match(r) {
                return Err(PyError::InvalidRequirement {
                    requirement: r.to_owned(),
                    reason: "expected a package name, optional `[extras]`, then version specifiers, `@ URL` or `; markers`".into(),
                });
            }
            let name = requirement_name(r);
            if TORCH_PACKAGES.contains(&name.as_str()) {
                return Err(PyError::TorchRequirement {
                    requirement: r.to_owned(),
                    package: name,
                    env: ctx.env.name.clone(),
                });
            }
            Ok(r.to_owned())
        })
        .collect()
}

fn check_group_name(group: &str) -> Result<(), PyError> {
    if GROUP_NAME.is_match(group) {
        Ok(())
    } else {
        Err(PyError::InvalidGroup {
            group: group.to_owned(),
        })
    }
}

/// `group` must be the user's: not ComfyUI's, not a node's.
fn check_user_group(
    ctx: &PyContext<'_>,
    manifest: &Manifest,
    nodes: &[NodeEntry],
    group: &str,
) -> Result<(), PyError> {
    let owner = match layout::group_owner(manifest, nodes, group) {
        GroupOwner::User => return Ok(()),
        GroupOwner::ComfyUi => "ComfyUI's requirements".to_owned(),
        GroupOwner::Node(key) => format!("node `{key}`"),
    };
    Err(PyError::NotUserGroup {
        group: group.to_owned(),
        owner,
        env: ctx.env.name.clone(),
    })
}

/// Who, other than the user, asks for package `name` (normalised), for a helpful error.
fn owner_of(manifest: &Manifest, nodes: &[NodeEntry], name: &str) -> Option<String> {
    manifest
        .dependency_groups()
        .into_iter()
        .filter(|(_, reqs)| reqs.iter().any(|r| requirement_name(r) == name))
        .map(|(group, _)| match layout::group_owner(manifest, nodes, &group) {
            GroupOwner::ComfyUi => "ComfyUI's requirements".to_owned(),
            GroupOwner::Node(key) => format!("node `{key}`"),
            GroupOwner::User => format!("your dependency group `{group}` (pass `--group {group}`)"),
        })
        .next()
}

fn read_place(manifest: &Manifest, place: &Place) -> Vec<String> {
    match place {
        Place::Packages => manifest.dependencies(),
        Place::Group { name } => manifest
            .dependency_groups()
            .into_iter()
            .find(|(g, _)| normalize_group_name(g) == normalize_group_name(name))
            .map(|(_, r)| r)
            .unwrap_or_default(),
        Place::Constraints => manifest.constraints(),
    }
}

fn write_place(manifest: &mut Manifest, place: &Place, list: &[String]) {
    match place {
        Place::Packages => manifest.set_dependencies(list),
        Place::Group { name } => {
            // Keep the spelling the group already has.
            let existing = manifest
                .dependency_groups()
                .into_iter()
                .map(|(g, _)| g)
                .find(|g| normalize_group_name(g) == normalize_group_name(name));
            manifest.set_dependency_group(existing.as_deref().unwrap_or(name), list);
        }
        Place::Constraints => manifest.set_constraints(list),
    }
}

/// Put each requirement into `list`, replacing an entry of the same name.
fn upsert(list: &mut Vec<String>, requirements: &[String], change: &mut PyChange) {
    for r in requirements {
        let name = requirement_name(r);
        match list.iter().position(|e| requirement_name(e) == name) {
            Some(at) if list[at] == *r => {}
            Some(at) => {
                change.replaced.push(Replaced {
                    old: std::mem::replace(&mut list[at], r.clone()),
                    new: r.clone(),
                });
            }
            None => {
                list.push(r.clone());
                change.added.push(r.clone());
            }
        }
    }
}

/// Edit the manifest (after moving a legacy one to the split layout), re-lock, check torch,
/// sync with `mode`; restore `pyproject.toml` and `uv.lock` on any failure.
fn apply(
    ctx: &PyContext<'_>,
    mode: SyncMode,
    what: &[String],
    edit: impl FnOnce(&mut Manifest, &[NodeEntry]) -> Result<PyChange, PyError>,
) -> Result<PyChange, PyError> {
    let env = ctx.env;
    let mut manifest = env.manifest()?;
    let torch_before = resolution::torch_versions(&env.lock_path());
    let mut tx = FileTransaction::new();
    tx.track(&env.manifest_path())?;
    tx.track(&env.lock_path())?;
    let migrated = if manifest.layout() == Layout::Legacy {
        let pin = manifest.comfyui()?;
        let old = layout::comfyui_requirements_at(&ctx.mirror(), env, &pin.commit);
        layout::migrate(&mut manifest, old.as_ref())
    } else {
        None
    };
    let nodes = entry::read_all(&manifest);
    let mut change = edit(&mut manifest, &nodes)?;
    if let Some(split) = &migrated {
        ctx.reporter.status(
            "Migrated",
            "pyproject.toml: ComfyUI's requirements moved to the `comfyui` dependency group",
        );
        if split.guessed {
            ctx.reporter.warning(&format!(
                "ComfyUI's requirements at the pinned commit could not be read; kept {} as your packages",
                split.user.join(", ")
            ));
        }
    }
    change.migrated = migrated;
    manifest.save()?;

    ctx.reporter.phase("Resolving Python dependencies");
    if let Err(err) = environment::uv_lock(ctx.tools, env, ctx.reporter) {
        let stderr = err.uv_stderr().map(str::to_owned);
        tx.rollback()?;
        return Err(lock_error(ctx, &manifest, &nodes, what, err, stderr));
    }
    let torch_after = resolution::torch_versions(&env.lock_path());
    if torch_after != torch_before {
        let (package, from, to) =
            resolution::first_torch_change(&torch_before, &torch_after).unwrap_or_default();
        tx.rollback()?;
        return Err(PyError::TorchChanged {
            requirements: comfydock_foundation::display_text::backticked(what),
            package,
            from,
            to,
        });
    }
    ctx.reporter.phase("Installing Python packages");
    environment::sync_or_restore(ctx.tools, env, mode, tx, ctx.reporter)?;
    Ok(change)
}

/// Turn a failed `uv lock` into an unknown package or a conflict naming both sides.
fn lock_error(
    ctx: &PyContext<'_>,
    manifest: &Manifest,
    nodes: &[NodeEntry],
    what: &[String],
    err: EnvError,
    stderr: Option<String>,
) -> PyError {
    let Some(stderr) = stderr else {
        return err.into();
    };
    let resolver = ResolverOutput::from_uv_stderr(&stderr);
    let text = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(c) = NOT_FOUND.captures(&text) {
        return PyError::UnknownPackage {
            name: c[1].to_owned(),
            env: ctx.env.name.clone(),
            resolver,
        };
    }
    let origin_of_group = |group: &str| layout::group_origin(manifest, nodes, group);
    let sides = if stderr.contains("No solution found") {
        let mut sides = crate::resolver_failure::conflict_sides(
            &stderr,
            &origin_of_group,
            layout::project_origin(manifest),
        );
        crate::resolver_failure::add_constraint_sides(&mut sides, &stderr, &manifest.constraints());
        sides
    } else {
        Vec::new()
    };
    if sides.is_empty() {
        PyError::Unresolvable {
            requirements: comfydock_foundation::display_text::backticked(what),
            env: ctx.env.name.clone(),
            resolver,
        }
    } else {
        PyError::Conflict {
            sides,
            env: ctx.env.name.clone(),
            resolver,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_are_checked_for_shape() {
        for ok in [
            "requests",
            "requests>=2.31",
            "Foo_Bar.baz[socks, extra2] >=1,<3",
            "tinynum==1.26.4; python_version >= '3.10'",
            "pkg @ https://example.invalid/pkg-1.0-py3-none-any.whl",
            "name (>=1.0)",
            "x~=1.4.2",
        ] {
            assert!(REQUIREMENT.is_match(ok), "{ok}");
        }
        for bad in ["", ">=1", "foo bar", "foo>=", "foo[bar", "-e .", "foo >= 1 2"] {
            assert!(!REQUIREMENT.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn upsert_replaces_specs_by_name() {
        let mut list = vec!["requests>=2".to_owned(), "tinyyaml".to_owned()];
        let mut change = PyChange::new(Place::Packages);
        upsert(
            &mut list,
            &["Requests==2.31".into(), "new-pkg".into(), "tinyyaml".into()],
            &mut change,
        );
        assert_eq!(list, ["Requests==2.31", "tinyyaml", "new-pkg"]);
        assert_eq!(
            change.replaced,
            [Replaced {
                old: "requests>=2".into(),
                new: "Requests==2.31".into()
            }]
        );
        assert_eq!(change.added, ["new-pkg"]);
    }
}
