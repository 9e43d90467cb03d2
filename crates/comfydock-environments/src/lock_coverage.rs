//! Which torch backends a `uv.lock` really covers, read from the lock itself.
//!
//! The manifest's `torch_backends` says what the user asked for; only the lock says what a frozen
//! `uv sync --extra <backend>` can install. A backend is covered when the lock's root project
//! has the backend's extra and that extra pins `torch`.

use serde::Serialize;

use crate::torch_backend::TorchBackend;

/// One backend the lock covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockedBackend {
    /// `cpu`, `cu128`, `rocm6.3`, ...
    #[serde(serialize_with = "as_str")]
    pub backend: TorchBackend,
    /// The uv extra (`rocm6-3`).
    pub extra: String,
    /// The index torch comes from for this extra (`.../whl/rocm6.3`).
    pub index: Option<String>,
    /// The locked torch version (`2.5.1+rocm6.3`).
    pub torch: Option<String>,
}

fn as_str<S: serde::Serializer>(b: &TorchBackend, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(b.as_str())
}

/// The backends covered by the lock text `lock`, in the lock's order. A lock that does not parse
/// covers nothing.
pub fn parse(lock: &str) -> Vec<LockedBackend> {
    let Ok(doc) = lock.parse::<toml::Table>() else {
        return Vec::new();
    };
    let packages = doc
        .get("package")
        .and_then(toml::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let Some(root) = packages.iter().find(|p| is_root(p)) else {
        return Vec::new();
    };
    let Some(extras) = root.get("optional-dependencies").and_then(toml::Value::as_table) else {
        return Vec::new();
    };
    extras
        .iter()
        .filter_map(|(extra, deps)| {
            let backend = TorchBackend::from_extra(extra)?;
            let torch = deps
                .as_array()?
                .iter()
                .find(|d| d.get("name").and_then(toml::Value::as_str) == Some("torch"))?;
            Some(LockedBackend {
                backend,
                extra: extra.clone(),
                index: torch
                    .get("source")
                    .and_then(|s| s.get("registry"))
                    .and_then(toml::Value::as_str)
                    .map(str::to_owned),
                torch: torch
                    .get("version")
                    .and_then(toml::Value::as_str)
                    .map(str::to_owned),
            })
        })
        .collect()
}

/// Read and parse `uv.lock`; a missing lock covers nothing.
pub fn read(lock_path: &std::path::Path) -> std::io::Result<Vec<LockedBackend>> {
    match fs_err::read_to_string(lock_path) {
        Ok(text) => Ok(parse(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The project the lock was made for: `source = { virtual = "." }` (or editable `.`).
fn is_root(package: &toml::Value) -> bool {
    package.get("source").is_some_and(|s| {
        ["virtual", "editable"]
            .iter()
            .any(|k| s.get(*k).and_then(toml::Value::as_str) == Some("."))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"version = 1
requires-python = ">=3.11"
conflicts = [[
    { package = "comfydock-env-x", extra = "cpu" },
    { package = "comfydock-env-x", extra = "rocm6-3" },
]]

[[package]]
name = "comfydock-env-x"
version = "0.0.0"
source = { virtual = "." }

[package.optional-dependencies]
cpu = [
    { name = "torch", version = "2.5.1+cpu", source = { registry = "http://i/whl/cpu" } },
    { name = "torchvision", version = "0.20.1+cpu", source = { registry = "http://i/whl/cpu" } },
]
rocm6-3 = [
    { name = "torch", version = "2.5.1+rocm6.3", source = { registry = "http://i/whl/rocm6.3" } },
]
other = [{ name = "tinynum" }]
cu128 = [{ name = "torchvision" }]

[[package]]
name = "torch"
version = "2.5.1+cpu"
source = { registry = "http://i/whl/cpu" }
"#;

    #[test]
    fn reads_backends_with_their_index() {
        let locked = parse(LOCK);
        let names: Vec<&str> = locked.iter().map(|b| b.backend.as_str()).collect();
        assert_eq!(names, ["cpu", "rocm6.3"], "an extra without torch covers nothing");
        assert_eq!(locked[1].extra, "rocm6-3");
        assert_eq!(locked[1].index.as_deref(), Some("http://i/whl/rocm6.3"));
        assert_eq!(locked[1].torch.as_deref(), Some("2.5.1+rocm6.3"));
    }

    #[test]
    fn an_unparsable_or_rootless_lock_covers_nothing() {
        assert!(parse("not = [toml").is_empty());
        assert!(parse("version = 1\n").is_empty());
    }
}
