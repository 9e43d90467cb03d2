//! The models an environment references, read from its manifest for `manifest.json`.
//!
//! Two places hold them: the catalog `[tool.comfydock.models.<key>]` and the workflow resolutions
//! `[tool.comfydock.workflows.<name>] models = { <blake3> = { name, folder, sha256, size, sources,
//! criticality } }` written by `workflow resolve`. A model is identified by its hashes; entries for
//! the same content are merged (sources joined, the strictest criticality kept). Workflows with
//! `unresolved_models` and entries without a hash or a target are reported as issues.

use std::collections::BTreeMap;

use super::format::ModelRef;
use comfydock_environments::manifest::Manifest;
use comfydock_environments::manifest::schema::{Criticality, ModelEntry, ModelHash};

/// What [`collect`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectedModels {
    /// Sorted by target.
    pub models: Vec<ModelRef>,
    /// Each with the command that fixes it.
    pub issues: Vec<String>,
}

/// Read every model reference of `manifest` (environment `env` for the fix commands).
pub fn collect(manifest: &Manifest, env: &str) -> CollectedModels {
    let mut out = CollectedModels::default();
    let mut found: Vec<(ModelRef, Criticality)> = Vec::new();
    let tool = manifest.tool();
    for (key, entry) in &tool.models {
        read_entry(
            &format!("models.{key}"),
            None,
            entry,
            env,
            &mut found,
            &mut out.issues,
        );
    }
    for (name, workflow) in &tool.workflows {
        for model in workflow.models.entries() {
            read_entry(
                &format!("workflows.{name}.models.{}", model.label),
                model.key.as_ref(),
                &model.entry,
                env,
                &mut found,
                &mut out.issues,
            );
        }
        for model in &workflow.unresolved_models {
            out.issues.push(format!(
                "workflow `{name}` has an unresolved model `{model}`: run `comfydock -e {env} workflow resolve {name}`"
            ));
        }
        for node_type in &workflow.unresolved_nodes {
            out.issues.push(format!(
                "workflow `{name}` uses node type `{node_type}` that no known package provides: map it with `comfydock -e {env} workflow node map {node_type} PACKAGE` (or `--none`), then `comfydock -e {env} workflow resolve {name}`"
            ));
        }
    }
    let mut merged: BTreeMap<String, (ModelRef, Criticality)> = BTreeMap::new();
    for (model, criticality) in found {
        let same = merged.values_mut().find(|(m, _)| {
            (model.blake3.is_some() && m.blake3 == model.blake3)
                || (model.sha256.is_some() && m.sha256 == model.sha256)
        });
        match same {
            Some((existing, strictest)) => {
                existing.blake3 = existing.blake3.take().or(model.blake3);
                existing.sha256 = existing.sha256.take().or(model.sha256);
                existing.size = existing.size.or(model.size);
                for s in model.sources {
                    if !existing.sources.contains(&s) {
                        existing.sources.push(s);
                    }
                }
                // `Required` sorts first: the smaller is the stricter.
                if criticality < *strictest {
                    *strictest = criticality;
                    criticality.as_str().clone_into(&mut existing.criticality);
                }
            }
            None => {
                merged.insert(model.target.clone(), (model, criticality));
            }
        }
    }
    out.models = merged.into_values().map(|(m, _)| m).collect();
    out
}

fn read_entry(
    label: &str,
    key: Option<&ModelHash>,
    entry: &ModelEntry,
    env: &str,
    found: &mut Vec<(ModelRef, Criticality)>,
    issues: &mut Vec<String>,
) {
    let Some(target) = entry.raw_target().and_then(|t| clean_target(&t)) else {
        issues.push(format!(
            "model `{label}` cannot be referenced: no target folder/path under models/ (fix it with `comfydock -e {env} workflow resolve`)"
        ));
        return;
    };
    let blake3 = entry.blake3(key).map(|h| h.to_string());
    let sha256 = entry.sha256(key).map(|h| h.to_string());
    if blake3.is_none() && sha256.is_none() {
        issues.push(format!(
            "model `{label}` cannot be referenced: no blake3 or sha256 hash (fix it with `comfydock -e {env} workflow resolve`)"
        ));
        return;
    }
    let mut sources = Vec::new();
    for url in entry
        .urls()
        .into_iter()
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
    {
        // A source with credentials never travels in a bundle.
        if comfydock_foundation::redact::credentials_in(&url).is_some() {
            issues.push(format!(
                "model `{label}` has a source with credentials, left out of the bundle: {} (record it without them; tokens belong in `comfydock config set tokens.…`)",
                comfydock_foundation::redact::redact_url(&url)
            ));
        } else {
            sources.push(url);
        }
    }
    let criticality = entry.criticality.unwrap_or(Criticality::Required);
    found.push((
        ModelRef {
            blake3,
            sha256,
            size: entry.size,
            target,
            sources,
            criticality: criticality.as_str().to_owned(),
        },
        criticality,
    ));
}

/// `models/checkpoints/x.safetensors` or `checkpoints\x.safetensors` → `checkpoints/x.safetensors`;
/// anything that escapes the models folder or names no folder is rejected.
pub(crate) fn clean_target(raw: &str) -> Option<String> {
    let normalized = raw.replace('\\', "/");
    if normalized.starts_with('/') {
        return None;
    }
    let trimmed = normalized.trim_start_matches("./");
    let trimmed = trimmed.strip_prefix("models/").unwrap_or(trimmed);
    let parts: Vec<&str> = trimmed.split('/').filter(|p| !p.is_empty()).collect();
    let safe = parts.len() >= 2 && parts.iter().all(|p| comfydock_foundation::path_part::is_plain(p));
    safe.then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_catalog_and_resolutions_and_merges_by_hash() {
        let b3 = "a".repeat(64);
        let sha = "b".repeat(64);
        let text = format!(
            r#"
[tool.comfydock.models.sd15]
sha256 = "{sha}"
target = "checkpoints/sd15.safetensors"
sources = ["https://example.com/sd15"]
criticality = "optional"

[tool.comfydock.workflows.txt2img]
tracked = true
unresolved_models = ["vae.safetensors"]
[tool.comfydock.workflows.txt2img.models.{b3}]
name = "sd15.safetensors"
folder = "checkpoints"
criticality = "required"
size = 42
sha256 = "{sha}"
sources = ["https://mirror.example.com/sd15"]

[tool.comfydock.workflows.other.models.{c}]
name = "nofolder.safetensors"
"#,
            c = "c".repeat(64)
        );
        let manifest = Manifest::parse(std::path::Path::new("p.toml"), &text).unwrap();
        let got = collect(&manifest, "e");
        assert_eq!(got.models.len(), 1, "{got:?}");
        let m = &got.models[0];
        assert_eq!(m.target, "checkpoints/sd15.safetensors");
        assert_eq!(m.blake3.as_deref(), Some(b3.as_str()));
        assert_eq!(m.sha256.as_deref(), Some(sha.as_str()));
        assert_eq!(m.size, Some(42));
        assert_eq!(m.criticality, "required", "the strictest wins");
        assert_eq!(
            m.sources,
            ["https://example.com/sd15", "https://mirror.example.com/sd15"]
        );
        assert_eq!(got.issues.len(), 2, "{:?}", got.issues);
        assert!(
            got.issues
                .iter()
                .any(|i| i.contains("unresolved model `vae.safetensors`")
                    && i.contains("comfydock -e e workflow resolve txt2img"))
        );
        assert!(
            got.issues
                .iter()
                .any(|i| i.contains("workflows.other.models.") && i.contains("no target"))
        );
    }

    #[test]
    fn targets_are_confined() {
        assert_eq!(clean_target("models/loras/a.pt").as_deref(), Some("loras/a.pt"));
        assert_eq!(clean_target("../x/y"), None);
        assert_eq!(clean_target("/abs/x"), None);
        assert_eq!(clean_target("x.pt"), None);
    }
}
