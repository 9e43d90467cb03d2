//! What the user typed after `node add`: a registry id, a git URL, or a dev folder.

use std::path::{Path, PathBuf};

use super::error::NodeError;

/// A parsed `node add` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeSpec {
    /// `ID[@VERSION]`; the id is lowercased (registry ids are case-insensitive).
    Registry { id: String, version: Option<String> },
    /// `GIT_URL[@REF]`.
    Git { url: String, reference: Option<String> },
    /// `--dev PATH`.
    Dev { path: PathBuf },
}

impl NodeSpec {
    /// Parse a registry id or git URL (dev folders come from `--dev`).
    pub fn parse(spec: &str) -> Result<Self, NodeError> {
        let invalid = |reason: &str| NodeError::InvalidSpec {
            spec: spec.to_owned(),
            reason: reason.to_owned(),
        };
        let spec_trimmed = spec.trim();
        if spec_trimmed.is_empty() {
            return Err(invalid("it is empty"));
        }
        if is_git_url(spec_trimmed) {
            let (url, reference) = split_git_ref(spec_trimmed);
            return Ok(Self::Git {
                url: url.trim_end_matches('/').to_owned(),
                reference,
            });
        }
        let (id, version) = match spec_trimmed.split_once('@') {
            Some((id, version)) if !version.is_empty() => (id, Some(version.to_owned())),
            Some(_) => return Err(invalid("the version after `@` is empty")),
            None => (spec_trimmed, None),
        };
        let valid_id = !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid_id {
            return Err(invalid(
                "registry ids contain only letters, digits, `-`, `_` and `.`",
            ));
        }
        Ok(Self::Registry {
            id: id.to_ascii_lowercase(),
            version: version.map(|v| v.trim_start_matches('v').to_owned()),
        })
    }

    /// A dev node folder.
    pub fn dev(path: &Path) -> Self {
        Self::Dev {
            path: path.to_path_buf(),
        }
    }
}

fn is_git_url(s: &str) -> bool {
    s.starts_with("https://")
        || s.starts_with("http://")
        || s.starts_with("ssh://")
        || s.starts_with("git://")
        || s.starts_with("file://")
        || s.starts_with("git@")
}

/// `https://host/x/y.git@v1` → (`https://host/x/y.git`, `v1`); `git@host:x/y` keeps its user part.
fn split_git_ref(s: &str) -> (String, Option<String>) {
    let path_start = s.find("://").map_or_else(|| s.find(':').unwrap_or(0), |i| i + 3);
    let rest = &s[path_start..];
    // The last `@` after the first `/` of the path separates the ref.
    let first_slash = rest.find('/').unwrap_or(0);
    match rest[first_slash..].rfind('@') {
        Some(at) => {
            let at = path_start + first_slash + at;
            let reference = &s[at + 1..];
            if reference.is_empty() {
                (s[..at].to_owned(), None)
            } else {
                (s[..at].to_owned(), Some(reference.to_owned()))
            }
        }
        None => (s.to_owned(), None),
    }
}

/// The folder name a git repository installs as: its last path segment without `.git`.
pub fn repo_name(url: &str) -> String {
    url.trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or(url)
        .trim_end_matches(".git")
        .to_owned()
}

/// A manifest key for a folder name: lowercase, only `[a-z0-9._-]` (also a valid dependency group name).
pub fn key_for(name: &str) -> String {
    let key: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    key.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_ids_are_lowercased() {
        assert_eq!(
            NodeSpec::parse("My-Node@1.0.0").unwrap(),
            NodeSpec::Registry {
                id: "my-node".into(),
                version: Some("1.0.0".into())
            }
        );
        assert_eq!(
            NodeSpec::parse("comfyui-impact-pack").unwrap(),
            NodeSpec::Registry {
                id: "comfyui-impact-pack".into(),
                version: None
            }
        );
        assert!(NodeSpec::parse("a b").is_err());
        assert!(NodeSpec::parse("x@").is_err());
    }

    #[test]
    fn git_urls_and_refs() {
        assert_eq!(
            NodeSpec::parse("https://github.com/a/ComfyUI-Foo.git@v1.0.0").unwrap(),
            NodeSpec::Git {
                url: "https://github.com/a/ComfyUI-Foo.git".into(),
                reference: Some("v1.0.0".into())
            }
        );
        assert_eq!(
            NodeSpec::parse("git@github.com:a/Foo").unwrap(),
            NodeSpec::Git {
                url: "git@github.com:a/Foo".into(),
                reference: None
            }
        );
        assert_eq!(
            NodeSpec::parse("file:///tmp/x/Foo@main").unwrap(),
            NodeSpec::Git {
                url: "file:///tmp/x/Foo".into(),
                reference: Some("main".into())
            }
        );
        assert_eq!(repo_name("https://github.com/a/ComfyUI-Foo.git"), "ComfyUI-Foo");
        assert_eq!(key_for("ComfyUI Foo!"), "comfyui-foo");
    }
}
