//! What a deployment pins, read from an environment: [`DeploySpec`].
//!
//! Everything the generators need is collected here once, sorted, so that rendering is a pure
//! function of this value. Models and workflow resolutions (`[tool.comfydock.models.<key>]`,
//! `[tool.comfydock.workflows.<name>]`) come from the typed manifest schema: a manifest without
//! them still deploys, and an entry that lacks a hash or a target folder is reported, never
//! guessed.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sha2::Digest as _;

use super::DeployError;
use comfydock_environments::dependency_groups::{self as layout, GroupOwner};
use comfydock_environments::environment::Environment;
use comfydock_environments::manifest::node_entry as entry;
use comfydock_environments::manifest::schema::{Criticality, ModelEntry, ModelHash};
use comfydock_environments::manifest::{ComfyUiPin, Manifest};
use comfydock_environments::nodes::{NodeEntry, NodeSource};
use comfydock_environments::torch_backend::TorchBackend;
use comfydock_foundation::git::Git;

/// One model a deployment needs: its identity, where ComfyUI expects it, where to get it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelPin {
    /// blake3 of the whole file (lower-case hex), comfydock's model identity.
    pub blake3: Option<String>,
    /// sha256 (lower-case hex), when known.
    pub sha256: Option<String>,
    pub size: Option<u64>,
    /// Path under ComfyUI's `models/` folder, e.g. `checkpoints/sd15.safetensors`.
    pub target: String,
    /// Download URLs, best first.
    pub sources: Vec<String>,
    /// `required`, `flexible` or `optional`; absent means required.
    pub criticality: Option<Criticality>,
}

impl ModelPin {
    /// Whether a missing file must stop the container from starting.
    pub fn is_required(&self) -> bool {
        !matches!(
            self.criticality,
            Some(Criticality::Optional | Criticality::Flexible)
        )
    }
}

/// A manifest entry that could not become a [`ModelPin`], and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedModel {
    pub entry: String,
    pub reason: String,
}

/// Everything a deployment of one environment pins.
#[derive(Debug, Clone)]
pub struct DeploySpec {
    pub environment: String,
    /// Python minor version (`3.12`) from `[tool.comfydock] python`.
    pub python: String,
    pub comfyui: ComfyUiPin,
    /// Where ComfyUI is cloned from (`comfyui.repo`).
    pub comfyui_repo: String,
    /// Backends the lock covers.
    pub backends: Vec<TorchBackend>,
    /// `.cec/pyproject.toml`, byte for byte.
    pub pyproject: String,
    /// `.cec/uv.lock`, byte for byte.
    pub lock: String,
    /// sha256 of `uv.lock`, checked again inside the build.
    pub lock_sha256: String,
    /// Enabled nodes to install, sorted by key.
    pub nodes: Vec<NodeEntry>,
    /// Dependency groups to sync; `None` means all of them.
    pub groups: Option<Vec<String>>,
    /// Models to provide, sorted by target.
    pub models: Vec<ModelPin>,
    pub skipped_models: Vec<SkippedModel>,
    /// The workflows the deployment was narrowed to (empty: the whole environment).
    pub workflows: Vec<String>,
    /// The workflows an API service serves (`--with-api`): the narrowed ones, else every tracked
    /// one, as (name, committed JSON).
    pub api_workflows: Vec<(String, String)>,
    /// `.cec` HEAD, when it has one.
    pub cec_commit: Option<String>,
    /// `.cec` files that differ from HEAD (deploying them is allowed, but worth a warning).
    pub uncommitted: Vec<String>,
}

impl DeploySpec {
    /// Read an environment. `workflows` narrows nodes and models to what those workflows need.
    pub fn from_environment(
        env: &Environment,
        git: &Git,
        comfyui_repo: &str,
        workflows: &[String],
    ) -> Result<Self, DeployError> {
        let manifest = env.manifest()?;
        let pyproject = fs_err::read_to_string(env.manifest_path())?;
        let lock = match fs_err::read_to_string(env.lock_path()) {
            Ok(lock) => lock,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(DeployError::NoLock {
                    path: env.lock_path(),
                    env: env.name.clone(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let cec = env.cec();
        let cec_commit = git
            .run(Some(&cec), ["rev-parse", "--verify", "--quiet", "HEAD"])
            .ok()
            .filter(|s| !s.is_empty());
        let uncommitted = git
            .run(Some(&cec), ["status", "--porcelain", "--untracked-files=all"])
            .map(|out| out.lines().map(|l| l.get(3..).unwrap_or(l).to_owned()).collect())
            .unwrap_or_default();
        let mut spec = Self::from_manifest(&env.name, &manifest, pyproject, lock, comfyui_repo, workflows)?;
        let served: Vec<String> = if workflows.is_empty() {
            comfydock_environments::workflow_tracking::tracked(&manifest)
                .into_iter()
                .collect()
        } else {
            workflows.to_vec()
        };
        for name in served {
            let name = comfydock_environments::workflow_tracking::normalize_name(&name);
            let Ok(path) =
                comfydock_foundation::path_part::join(&cec.join("workflows"), &format!("{name}.json"))
            else {
                continue;
            };
            if let Ok(json) = fs_err::read_to_string(path) {
                spec.api_workflows.push((name, json));
            }
        }
        spec.cec_commit = cec_commit;
        spec.uncommitted = uncommitted;
        Ok(spec)
    }

    /// Build a spec from manifest text and lock text (no git, no file system).
    pub fn from_manifest(
        environment: &str,
        manifest: &Manifest,
        pyproject: String,
        lock: String,
        comfyui_repo: &str,
        workflows: &[String],
    ) -> Result<Self, DeployError> {
        let comfyui = manifest.comfyui()?;
        let python = manifest.python().ok_or_else(|| DeployError::Incomplete {
            path: manifest.path().to_path_buf(),
            field: "tool.comfydock.python".into(),
        })?;
        let every_node = entry::read_all(manifest);
        let all_nodes: Vec<NodeEntry> = every_node.iter().filter(|n| n.enabled).cloned().collect();
        let (catalog, mut skipped_models) = read_models(manifest);
        let resolutions = read_workflows(manifest);
        let groups_present: BTreeSet<String> =
            manifest.dependency_groups().into_iter().map(|(g, _)| g).collect();

        let mut workflows: Vec<String> = workflows.to_vec();
        workflows.sort();
        workflows.dedup();
        let (mut nodes, mut models, groups) = if workflows.is_empty() {
            let mut models: BTreeMap<String, ModelPin> =
                catalog.into_iter().map(|m| (m.target.clone(), m)).collect();
            for resolution in resolutions.values() {
                for model in &resolution.models {
                    if let Some(pin) = model.to_pin(&models, &mut skipped_models) {
                        models.entry(pin.target.clone()).or_insert(pin);
                    }
                }
            }
            (all_nodes, models.into_values().collect::<Vec<_>>(), None)
        } else {
            let mut nodes = BTreeMap::new();
            let mut models: BTreeMap<String, ModelPin> = BTreeMap::new();
            let by_target: BTreeMap<String, ModelPin> =
                catalog.into_iter().map(|m| (m.target.clone(), m)).collect();
            for name in &workflows {
                let Some(resolution) = resolutions.get(name) else {
                    return Err(DeployError::UnknownWorkflow {
                        name: name.clone(),
                        env: environment.to_owned(),
                        known: resolutions.keys().cloned().collect(),
                    });
                };
                for wanted in &resolution.nodes {
                    let found = all_nodes
                        .iter()
                        .find(|n| n.key.eq_ignore_ascii_case(wanted) || n.name.eq_ignore_ascii_case(wanted));
                    let Some(node) = found else {
                        return Err(DeployError::MissingNode {
                            workflow: name.clone(),
                            node: wanted.clone(),
                            env: environment.to_owned(),
                        });
                    };
                    nodes.insert(node.key.clone(), node.clone());
                }
                for model in &resolution.models {
                    if let Some(pin) = model.to_pin(&by_target, &mut skipped_models) {
                        models.entry(pin.target.clone()).or_insert(pin);
                    }
                }
            }
            // ComfyUI's group and the user's own groups always; node groups only for the
            // nodes the workflows need.
            let needed: BTreeSet<String> = nodes.values().map(NodeEntry::group).collect();
            let groups = groups_present
                .iter()
                .filter(|g| match layout::group_owner(manifest, &every_node, g) {
                    GroupOwner::Node(_) => needed.contains(*g),
                    GroupOwner::ComfyUi | GroupOwner::User => true,
                })
                .cloned()
                .collect();
            (
                nodes.into_values().collect(),
                models.into_values().collect(),
                Some(groups),
            )
        };
        nodes.sort_by(|a, b| a.key.cmp(&b.key));
        models.sort_by(|a, b| a.target.cmp(&b.target));
        skipped_models.sort_by(|a, b| a.entry.cmp(&b.entry));
        skipped_models.dedup();
        Ok(Self {
            environment: environment.to_owned(),
            python,
            comfyui,
            comfyui_repo: comfyui_repo.to_owned(),
            // What the lock covers, never `torch_backends` (which may list one not locked yet).
            backends: comfydock_environments::lock_coverage::parse(&lock)
                .into_iter()
                .map(|l| l.backend)
                .collect(),
            lock_sha256: hex::encode(sha2::Sha256::digest(lock.as_bytes())),
            pyproject,
            lock,
            nodes,
            groups,
            models,
            skipped_models,
            workflows,
            cec_commit: None,
            uncommitted: Vec::new(),
            api_workflows: Vec::new(),
        })
    }

    /// Nodes that cannot be installed from a pin (dev folders, missing hashes or commits).
    pub fn check_nodes_pinned(&self) -> Result<(), DeployError> {
        for node in &self.nodes {
            let bad_name = node.name.is_empty()
                || node.name == "."
                || node.name == ".."
                || node.name.contains(['/', '\\', '\'', '"'])
                || node.name.chars().any(char::is_control);
            let problem = match node.source {
                _ if bad_name => Some("its folder name is not a plain folder name"),
                NodeSource::Registry if node.url.is_none() => Some("it has no archive URL"),
                NodeSource::Registry if node.sha256.as_deref().is_none_or(|s| !is_hex(s, 64)) => {
                    Some("it has no sha256 of its archive")
                }
                NodeSource::Git if node.url.is_none() => Some("it has no repository URL"),
                NodeSource::Git if node.commit.as_deref().is_none_or(|c| !is_hex(c, 40)) => {
                    Some("it has no 40-hex commit")
                }
                _ => None,
            };
            if let Some(reason) = problem {
                return Err(DeployError::UnpinnedNode {
                    node: node.key.clone(),
                    env: self.environment.clone(),
                    reason: reason.to_owned(),
                });
            }
        }
        if !is_hex(&self.comfyui.commit, 40) {
            return Err(DeployError::Incomplete {
                path: "pyproject.toml".into(),
                field: "tool.comfydock.comfyui.commit (40 hex)".into(),
            });
        }
        Ok(())
    }

    /// The default image tag: `comfydock-<env>:<short .cec commit>` (`:dev` before the first commit).
    pub fn default_tag(&self) -> String {
        let name: String = self
            .environment
            .to_ascii_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let version = self
            .cec_commit
            .as_deref()
            .map_or("dev", comfydock_foundation::display_text::short_hash);
        format!("comfydock-{name}:{version}")
    }
}

pub(crate) fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A model reference inside a workflow resolution.
#[derive(Debug, Clone, Default)]
struct WorkflowModel {
    label: String,
    blake3: Option<String>,
    sha256: Option<String>,
    size: Option<u64>,
    target: Option<String>,
    sources: Vec<String>,
    criticality: Option<Criticality>,
}

impl WorkflowModel {
    /// Complete this reference from the models catalog (matched by hash) and make it a pin.
    fn to_pin(
        &self,
        catalog: &BTreeMap<String, ModelPin>,
        skipped: &mut Vec<SkippedModel>,
    ) -> Option<ModelPin> {
        let known = catalog.values().find(|m| {
            (self.blake3.is_some() && m.blake3 == self.blake3)
                || (self.sha256.is_some() && m.sha256 == self.sha256)
        });
        let target = self.target.clone().or_else(|| known.map(|k| k.target.clone()));
        let Some(target) = target else {
            skipped.push(SkippedModel {
                entry: self.label.clone(),
                reason: "no target folder/path under models/".into(),
            });
            return None;
        };
        let mut sources = self.sources.clone();
        if let Some(k) = known {
            for s in &k.sources {
                if !sources.contains(s) {
                    sources.push(s.clone());
                }
            }
        }
        let pin = ModelPin {
            blake3: self
                .blake3
                .clone()
                .or_else(|| known.and_then(|k| k.blake3.clone())),
            sha256: self
                .sha256
                .clone()
                .or_else(|| known.and_then(|k| k.sha256.clone())),
            size: self.size.or_else(|| known.and_then(|k| k.size)),
            target,
            sources,
            criticality: self.criticality.or_else(|| known.and_then(|k| k.criticality)),
        };
        if pin.blake3.is_none() && pin.sha256.is_none() {
            skipped.push(SkippedModel {
                entry: self.label.clone(),
                reason: "no blake3 or sha256 hash".into(),
            });
            return None;
        }
        Some(pin)
    }
}

#[derive(Debug, Clone, Default)]
struct WorkflowResolution {
    nodes: Vec<String>,
    models: Vec<WorkflowModel>,
}

/// `[tool.comfydock.models.<key>]` entries that carry a hash and a target.
fn read_models(manifest: &Manifest) -> (Vec<ModelPin>, Vec<SkippedModel>) {
    let mut pins = Vec::new();
    let mut skipped = Vec::new();
    for (key, entry) in &manifest.tool().models {
        let model = read_model(&format!("models.{key}"), None, entry);
        match (
            model.target.clone(),
            model.blake3.is_some() || model.sha256.is_some(),
        ) {
            (Some(target), true) => pins.push(ModelPin {
                blake3: model.blake3,
                sha256: model.sha256,
                size: model.size,
                target,
                sources: model.sources,
                criticality: model.criticality,
            }),
            (None, _) => skipped.push(SkippedModel {
                entry: model.label,
                reason: "no target folder/path under models/".into(),
            }),
            (_, false) => skipped.push(SkippedModel {
                entry: model.label,
                reason: "no blake3 or sha256 hash".into(),
            }),
        }
    }
    (pins, skipped)
}

/// One model entry of the manifest, its target confined and only web URLs kept.
fn read_model(label: &str, key: Option<&ModelHash>, entry: &ModelEntry) -> WorkflowModel {
    WorkflowModel {
        label: label.to_owned(),
        blake3: entry.blake3(key).map(|h| h.to_string()),
        sha256: entry.sha256(key).map(|h| h.to_string()),
        size: entry.size,
        target: entry.raw_target().and_then(|t| clean_target(&t)),
        sources: entry
            .urls()
            .into_iter()
            .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
            .collect(),
        criticality: entry.criticality,
    }
}

/// `models/checkpoints/x.safetensors` or `checkpoints\x.safetensors` → `checkpoints/x.safetensors`;
/// anything that escapes the folder or names no file is rejected.
fn clean_target(raw: &str) -> Option<String> {
    let normalized = raw.replace('\\', "/");
    let trimmed = normalized.trim_start_matches("./");
    let trimmed = trimmed.strip_prefix("models/").unwrap_or(trimmed);
    let parts: Vec<&str> = trimmed.split('/').filter(|p| !p.is_empty()).collect();
    let safe = parts.len() >= 2
        && !trimmed.starts_with('/')
        && parts
            .iter()
            .all(|p| comfydock_foundation::path_part::is_plain(p) && !p.contains('\''));
    safe.then(|| parts.join("/"))
}

/// `[tool.comfydock.workflows.<name>]`: the node packages and models each workflow needs.
fn read_workflows(manifest: &Manifest) -> BTreeMap<String, WorkflowResolution> {
    manifest
        .tool()
        .workflows
        .iter()
        .map(|(name, entry)| {
            let models = entry
                .models
                .entries()
                .into_iter()
                .map(|m| {
                    read_model(
                        &format!("workflows.{name}.models.{}", m.label),
                        m.key.as_ref(),
                        &m.entry,
                    )
                })
                .collect();
            (
                name.clone(),
                WorkflowResolution {
                    nodes: entry.nodes.clone(),
                    models,
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_normalised_and_confined() {
        assert_eq!(
            clean_target("models/checkpoints/a.safetensors").as_deref(),
            Some("checkpoints/a.safetensors")
        );
        assert_eq!(
            clean_target("loras\\sub\\b.pt").as_deref(),
            Some("loras/sub/b.pt")
        );
        assert_eq!(clean_target("../etc/passwd"), None);
        assert_eq!(clean_target("checkpoints"), None);
        assert_eq!(clean_target("/abs/x.pt"), None);
    }
}
