//! URLs and paths only this machine reaches (`127.0.0.1` package indexes, `file://` mirrors,
//! a ComfyUI clone on disk) that an environment's pins may name. A build context carrying them
//! builds nowhere else, so deploy refuses them unless each is rewritten to a public URL
//! (`--public-url LOCAL=PUBLIC`) or the user says the building machine reaches them.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;
use sha2::Digest as _;

use super::spec::DeploySpec;

static LOCAL_URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?:(?:https?|git|ssh)://(?:[^/@\s"']*@)?(?:localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]|0\.0\.0\.0)(?::\d+)?|file://)[^\s"',}\]]*"#,
    )
    .expect("valid regex")
});

/// Every machine-local URL or path the spec would put into the build context, sorted. A URL is
/// shown up to its host and port (`http://127.0.0.1:3141`), the unit `--public-url` rewrites.
pub fn find(spec: &DeploySpec) -> Vec<String> {
    let mut found = BTreeSet::new();
    let mut scan = |text: &str| {
        for m in LOCAL_URL.find_iter(text) {
            found.insert(origin(m.as_str()));
        }
    };
    scan(&spec.comfyui_repo);
    scan(&spec.pyproject);
    scan(&spec.lock);
    for node in &spec.nodes {
        scan(node.url.as_deref().unwrap_or_default());
    }
    if is_local_path(&spec.comfyui_repo) {
        found.insert(spec.comfyui_repo.clone());
    }
    found.into_iter().collect()
}

/// `http://127.0.0.1:3141/simple/x` → `http://127.0.0.1:3141`; `file:///srv/mirror/x` stays whole.
fn origin(url: &str) -> String {
    if url.starts_with("file://") {
        return url.to_owned();
    }
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(slash) => url[..after_scheme + slash].to_owned(),
        None => url.to_owned(),
    }
}

/// A repository given as a path on this machine (not a URL, not `user@host:path`).
fn is_local_path(repo: &str) -> bool {
    let scp_like = repo.contains('@') && repo.contains(':') && !repo.starts_with('/');
    !(repo.is_empty() || repo.contains("://") || scp_like)
}

/// Replace each `from` prefix with its `to` wherever the build context would carry it (the
/// ComfyUI repository, node URLs, `pyproject.toml`, `uv.lock`, whose checked hash follows).
pub fn rewrite(spec: &mut DeploySpec, rules: &[(String, String)]) {
    let apply = |text: &str| {
        let mut out = text.to_owned();
        for (from, to) in rules {
            out = out.replace(from.as_str(), to);
        }
        out
    };
    spec.comfyui_repo = apply(&spec.comfyui_repo);
    spec.pyproject = apply(&spec.pyproject);
    spec.lock = apply(&spec.lock);
    spec.lock_sha256 = hex::encode(sha2::Sha256::digest(spec.lock.as_bytes()));
    for node in &mut spec.nodes {
        if let Some(url) = &node.url {
            node.url = Some(apply(url));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_urls_are_found_by_origin_and_public_ones_are_not() {
        let text = r#"source = { registry = "http://127.0.0.1:3141/simple" }
url = "https://files.example.org/x.whl"
sdist = { url = "http://localhost:8080/packages/a.tar.gz" }
index = "file:///srv/mirror/simple"
git = "https://user@[::1]:9418/repo.git""#;
        let found: BTreeSet<String> = LOCAL_URL.find_iter(text).map(|m| origin(m.as_str())).collect();
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            [
                "file:///srv/mirror/simple",
                "http://127.0.0.1:3141",
                "http://localhost:8080",
                "https://user@[::1]:9418",
            ]
        );
        assert!(is_local_path("/home/me/ComfyUI"));
        assert!(is_local_path("../ComfyUI"));
        assert!(!is_local_path("git@github.com:comfyanonymous/ComfyUI.git"));
        assert!(!is_local_path("https://example.org/ComfyUI.git"));
    }
}
