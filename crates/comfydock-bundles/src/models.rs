//! The models an environment references, read from its manifest for `manifest.json`.
//!
//! Two places hold them: the catalog `[tool.comfydock.models.<key>]` and the workflow resolutions
//! `[tool.comfydock.workflows.<name>] models = { <blake3> = { name, folder, sha256, size, sources,
//! criticality } }` written by `workflow resolve`. A model is identified by its hashes; entries for
//! the same content are merged (sources joined, the strictest criticality kept). Workflows with
//! `unresolved_models` and entries without a hash or a target are reported as issues.

use std::collections::BTreeMap;

use serde_json::Value;

use super::format::ModelRef;
use comfydock_environments::manifest::Manifest;

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
    let mut found: Vec<ModelRef> = Vec::new();
    if let Value::Object(catalog) = manifest.tool_section("models") {
        for (key, value) in &catalog {
            read_entry(
                &format!("models.{key}"),
                None,
                value,
                env,
                &mut found,
                &mut out.issues,
            );
        }
    }
    if let Value::Object(workflows) = manifest.tool_section("workflows") {
        for (name, value) in &workflows {
            let label = |k: &str| format!("workflows.{name}.models.{k}");
            match value.get("models") {
                Some(Value::Object(table)) => {
                    for (hash, entry) in table {
                        read_entry(&label(hash), Some(hash), entry, env, &mut found, &mut out.issues);
                    }
                }
                Some(Value::Array(items)) => {
                    for (i, entry) in items.iter().enumerate() {
                        read_entry(
                            &label(&i.to_string()),
                            None,
                            entry,
                            env,
                            &mut found,
                            &mut out.issues,
                        );
                    }
                }
                _ => {}
            }
            if let Some(Value::Array(unresolved)) = value.get("unresolved_models") {
                for model in unresolved.iter().filter_map(Value::as_str) {
                    out.issues.push(format!(
                        "workflow `{name}` has an unresolved model `{model}`: run `comfydock -e {env} workflow resolve {name}`"
                    ));
                }
            }
        }
    }
    let mut merged: BTreeMap<String, ModelRef> = BTreeMap::new();
    for model in found {
        let same = merged.values_mut().find(|m| {
            (model.blake3.is_some() && m.blake3 == model.blake3)
                || (model.sha256.is_some() && m.sha256 == model.sha256)
        });
        match same {
            Some(existing) => {
                existing.blake3 = existing.blake3.take().or(model.blake3);
                existing.sha256 = existing.sha256.take().or(model.sha256);
                existing.size = existing.size.or(model.size);
                for s in model.sources {
                    if !existing.sources.contains(&s) {
                        existing.sources.push(s);
                    }
                }
                if rank(&model.criticality) > rank(&existing.criticality) {
                    existing.criticality = model.criticality;
                }
            }
            None => {
                merged.insert(model.target.clone(), model);
            }
        }
    }
    out.models = merged.into_values().collect();
    out
}

fn rank(criticality: &str) -> u8 {
    match criticality {
        "optional" => 0,
        "flexible" => 1,
        _ => 2,
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn read_entry(
    label: &str,
    key_hash: Option<&str>,
    value: &Value,
    env: &str,
    found: &mut Vec<ModelRef>,
    issues: &mut Vec<String>,
) {
    let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
    let mut blake3 = None;
    let mut sha256 = text("sha256")
        .map(|s| s.to_ascii_lowercase())
        .filter(|s| is_hex64(s));
    for hash in [key_hash.map(str::to_owned), text("blake3"), text("hash")]
        .into_iter()
        .flatten()
    {
        let hash = hash.to_ascii_lowercase();
        if let Some(h) = hash.strip_prefix("sha256:") {
            if is_hex64(h) && sha256.is_none() {
                sha256 = Some(h.to_owned());
            }
        } else {
            let h = hash.strip_prefix("blake3:").unwrap_or(&hash);
            if is_hex64(h) && blake3.is_none() {
                blake3 = Some(h.to_owned());
            }
        }
    }
    let target = ["target", "path", "relative_path"]
        .into_iter()
        .find_map(text)
        .or_else(|| {
            let file = text("name").or_else(|| text("filename"))?;
            Some(match text("folder") {
                Some(folder) if !file.starts_with(&format!("{folder}/")) => format!("{folder}/{file}"),
                _ => file,
            })
        })
        .and_then(|t| clean_target(&t));
    let Some(target) = target else {
        issues.push(format!(
            "model `{label}` cannot be referenced: no target folder/path under models/ (fix it with `comfydock -e {env} workflow resolve`)"
        ));
        return;
    };
    if blake3.is_none() && sha256.is_none() {
        issues.push(format!(
            "model `{label}` cannot be referenced: no blake3 or sha256 hash (fix it with `comfydock -e {env} workflow resolve`)"
        ));
        return;
    }
    let mut sources = Vec::new();
    let mut with_credentials = Vec::new();
    let mut add = |s: &Value| {
        let url = s
            .as_str()
            .map(str::to_owned)
            .or_else(|| s.get("url").and_then(Value::as_str).map(str::to_owned));
        if let Some(url) = url.filter(|u| u.starts_with("http://") || u.starts_with("https://"))
            && !sources.contains(&url)
        {
            // A source with credentials never travels in a bundle.
            if comfydock_foundation::redact::credentials_in(&url).is_some() {
                with_credentials.push(comfydock_foundation::redact::redact_url(&url));
            } else {
                sources.push(url);
            }
        }
    };
    match value.get("sources") {
        Some(Value::Array(items)) => items.iter().for_each(&mut add),
        Some(other) => add(other),
        None => {}
    }
    if let Some(url) = value.get("url") {
        add(url);
    }
    for url in with_credentials {
        issues.push(format!(
            "model `{label}` has a source with credentials, left out of the bundle: {url} (record it without them; tokens belong in `comfydock config set tokens.…`)"
        ));
    }
    found.push(ModelRef {
        blake3,
        sha256,
        size: value.get("size").and_then(Value::as_u64),
        target,
        sources,
        criticality: text("criticality").unwrap_or_else(|| "required".into()),
    });
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
