//! Which torch versions a lock holds, and the first torch change between two locks.

use std::collections::BTreeMap;
use std::path::Path;

use crate::torch_backend::TORCH_PACKAGES;

/// The first torch package whose locked versions differ between two [`torch_versions`] maps:
/// `(package, versions before or "nothing", versions after)`.
pub fn first_torch_change(
    before: &BTreeMap<String, Vec<String>>,
    after: &BTreeMap<String, Vec<String>>,
) -> Option<(String, String, String)> {
    after
        .iter()
        .find(|(k, v)| before.get(*k) != Some(v))
        .map(|(k, v)| {
            (
                k.clone(),
                before.get(k).map_or_else(|| "nothing".into(), |b| b.join(", ")),
                v.join(", "),
            )
        })
}

/// Versions of torch, torchvision and torchaudio in a `uv.lock` (package → sorted versions).
pub fn torch_versions(lock: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Ok(text) = fs_err::read_to_string(lock) else {
        return out;
    };
    let Ok(doc) = text.parse::<toml::Table>() else {
        return out;
    };
    for package in doc
        .get("package")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(name), Some(version)) = (
            package.get("name").and_then(toml::Value::as_str),
            package.get("version").and_then(toml::Value::as_str),
        ) else {
            continue;
        };
        if TORCH_PACKAGES.contains(&name) {
            let versions = out.entry(name.to_owned()).or_default();
            versions.push(version.to_owned());
            versions.sort();
        }
    }
    out
}
