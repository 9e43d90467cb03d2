//! What installing a bundle's lock would build from source, running code from the bundle or
//! from the internet: local folders and files, git repositories, source-only packages and the
//! project itself when it declares a `[build-system]`.
//!
//! `import` lists these and refuses to build them unless the user passes
//! `--run-install-scripts`; without it, uv also runs with `--no-build` so nothing missed here
//! can be built either.

use serde::Serialize;

/// One package whose install would run a build backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildSource {
    /// The package name (`the project` for the root project).
    pub package: String,
    /// Where it is built from: `folder ../ComfyUI/custom_nodes/x`, `git https://…`, `sdist https://…`.
    pub from: String,
}

impl std::fmt::Display for BuildSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` from {}", self.package, self.from)
    }
}

/// Packages of `lock` (and sources of `pyproject`) that uv would build from source. An
/// unreadable document lists nothing; uv's `--no-build` still refuses the build.
pub fn build_sources(pyproject: &str, lock: &str) -> Vec<BuildSource> {
    let mut out = Vec::new();
    if let Ok(project) = toml::from_str::<toml::Table>(pyproject) {
        if project.contains_key("build-system") {
            out.push(BuildSource {
                package: "the project".into(),
                from: "pyproject.toml (`[build-system]`)".into(),
            });
        }
        let sources = project
            .get("tool")
            .and_then(|t| t.get("uv"))
            .and_then(|u| u.get("sources"))
            .and_then(toml::Value::as_table);
        for (name, source) in sources.into_iter().flatten() {
            let entries = match source {
                toml::Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            for entry in entries {
                if let Some(from) = source_from(entry, false) {
                    push_unique(&mut out, name, from);
                }
            }
        }
    }
    if let Ok(lock) = toml::from_str::<toml::Table>(lock) {
        let packages = lock.get("package").and_then(toml::Value::as_array);
        for package in packages.into_iter().flatten() {
            let name = package.get("name").and_then(toml::Value::as_str).unwrap_or("?");
            let has_wheels = package
                .get("wheels")
                .and_then(toml::Value::as_array)
                .is_some_and(|w| !w.is_empty());
            let Some(source) = package.get("source") else {
                continue;
            };
            if let Some(from) = source_from(source, has_wheels) {
                push_unique(&mut out, name, from);
            } else if !has_wheels && let Some(sdist) = package.get("sdist") {
                let url = sdist
                    .get("url")
                    .and_then(toml::Value::as_str)
                    .unwrap_or("the registry");
                push_unique(
                    &mut out,
                    name,
                    format!(
                        "sdist {}",
                        comfydock_foundation::display_text::ellipsize(url, 200)
                    ),
                );
            }
        }
    }
    out
}

/// Where a `[tool.uv.sources]` entry or a lock `source` builds from, if it needs a build.
fn source_from(source: &toml::Value, has_wheels: bool) -> Option<String> {
    let get = |k: &str| source.get(k).and_then(toml::Value::as_str);
    if let Some(path) = get("editable").or_else(|| get("directory")) {
        return Some(format!("folder {path}"));
    }
    if let Some(url) = get("git") {
        return Some(format!(
            "git {}",
            comfydock_foundation::display_text::ellipsize(url, 200)
        ));
    }
    if let Some(path) = get("path") {
        return (!has_wheels && !is_wheel(path)).then(|| format!("path {path}"));
    }
    if let Some(url) = get("url") {
        return (!has_wheels && !is_wheel(url))
            .then(|| format!("url {}", comfydock_foundation::display_text::ellipsize(url, 200)));
    }
    None
}

fn is_wheel(location: &str) -> bool {
    std::path::Path::new(location)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("whl"))
}

fn push_unique(out: &mut Vec<BuildSource>, package: &str, from: String) {
    if !out.iter().any(|b| b.package == package && b.from == from) {
        out.push(BuildSource {
            package: package.to_owned(),
            from,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_what_would_be_built() {
        let pyproject = r#"
[project]
name = "x"
[tool.uv.sources]
evil = { path = "../ComfyUI/custom_nodes/evil" }
gitdep = { git = "https://example.invalid/g.git" }
wheel = { path = "wheels/w-1.0-py3-none-any.whl" }
torch = [{ index = "pytorch-cpu", extra = "cpu" }]
"#;
        let lock = r#"
version = 1
[[package]]
name = "x"
version = "0.0.0"
source = { virtual = "." }

[[package]]
name = "evil"
version = "1.0"
source = { directory = "../ComfyUI/custom_nodes/evil" }

[[package]]
name = "sdist-only"
version = "1.0"
source = { registry = "https://pypi.org/simple" }
sdist = { url = "https://files/sdist-only-1.0.tar.gz" }

[[package]]
name = "has-wheel"
version = "1.0"
source = { registry = "https://pypi.org/simple" }
sdist = { url = "https://files/has-wheel-1.0.tar.gz" }
wheels = [{ url = "https://files/has_wheel-1.0-py3-none-any.whl" }]
"#;
        let found: Vec<String> = build_sources(pyproject, lock)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            [
                "`evil` from path ../ComfyUI/custom_nodes/evil",
                "`gitdep` from git https://example.invalid/g.git",
                "`evil` from folder ../ComfyUI/custom_nodes/evil",
                "`sdist-only` from sdist https://files/sdist-only-1.0.tar.gz",
            ]
        );
        let root = build_sources("[build-system]\nrequires = []\n", "version = 1\n");
        assert_eq!(root.len(), 1, "{root:?}");
        assert!(build_sources("[project]\nname = 'x'\n", "not toml [").is_empty());
    }
}
