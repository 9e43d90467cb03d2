//! Reading uv's resolver output: which requirements conflict and which node each came from, and
//! which torch versions a lock holds.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

use super::error::ConflictSide;
use crate::torch_backend::TORCH_PACKAGES;

static GROUP_DEPENDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"([A-Za-z0-9][A-Za-z0-9._-]*):([A-Za-z0-9][A-Za-z0-9._-]*) depends on (.+?)(?:, we | and |, and |\.\s|\.$|$)")
        .expect("valid regex")
});
static PROJECT_DEPENDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"your project depends on (.+?)(?:, we | and |, and |\.\s|\.$|$)").expect("valid regex")
});
static EXTRA_DEPENDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"([A-Za-z0-9][A-Za-z0-9._-]*)\[([A-Za-z0-9._-]+)\] depends on (.+?)(?:, we | and |, and |\.\s|\.$|$)")
        .expect("valid regex")
});

/// The sides of a resolver failure, in the order uv mentions them, one per origin.
/// `origin_of_group` names who a dependency group belongs to (`node `x``, `ComfyUI's
/// requirements`); `project_origin` names `[project].dependencies`.
pub fn conflict_sides(
    stderr: &str,
    origin_of_group: &dyn Fn(&str) -> String,
    project_origin: &str,
) -> Vec<ConflictSide> {
    let text = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut found: Vec<(usize, ConflictSide)> = Vec::new();
    for c in GROUP_DEPENDS.captures_iter(&text) {
        let origin = origin_of_group(&c[2]);
        found.push((
            c.get(0).map_or(0, |m| m.start()),
            ConflictSide {
                origin,
                requirement: c[3].trim().to_owned(),
            },
        ));
    }
    for c in PROJECT_DEPENDS.captures_iter(&text) {
        found.push((
            c.get(0).map_or(0, |m| m.start()),
            ConflictSide {
                origin: project_origin.to_owned(),
                requirement: c[1].trim().to_owned(),
            },
        ));
    }
    for c in EXTRA_DEPENDS.captures_iter(&text) {
        found.push((
            c.get(0).map_or(0, |m| m.start()),
            ConflictSide {
                origin: format!("the `{}` torch backend", &c[2]),
                requirement: c[3].trim().to_owned(),
            },
        ));
    }
    found.sort_by_key(|(at, _)| *at);
    let mut sides: Vec<ConflictSide> = Vec::new();
    for (_, side) in found {
        if !sides.iter().any(|s| s.origin == side.origin) {
            sides.push(side);
        }
    }
    sides
}

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

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_NODES: &str = "error: No solution found when resolving dependencies
  cause: Because all versions of conflict-b depend on shared-dep>=2 and all versions of conflict-a depend on shared-dep<2, we can conclude that all versions of conflict-a and all versions of conflict-b are incompatible.
         And because x:node-two depends on conflict-b and x:node-one depends on conflict-a, we can conclude that x:node-one and x:node-two are incompatible.
         And because your project requires x:node-one and x:node-two, we can conclude that your project's requirements are unsatisfiable.";

    const WITH_COMFYUI: &str = "  cause: Because your project depends on shared-dep<2 and x:node-two depends on shared-dep>=2, we can conclude that your project and x:node-two are incompatible.
         And because your project requires your project and x:node-two, we can conclude that your project's requirements are unsatisfiable.";

    fn node(group: &str) -> String {
        format!("node `{group}-pack`")
    }

    #[test]
    fn two_nodes() {
        let sides = conflict_sides(TWO_NODES, &node, "ComfyUI's requirements");
        assert_eq!(
            sides,
            [
                ConflictSide {
                    origin: "node `node-two-pack`".into(),
                    requirement: "conflict-b".into()
                },
                ConflictSide {
                    origin: "node `node-one-pack`".into(),
                    requirement: "conflict-a".into()
                },
            ]
        );
    }

    #[test]
    fn node_and_comfyui() {
        let sides = conflict_sides(WITH_COMFYUI, &node, "ComfyUI's requirements");
        assert_eq!(sides[0].origin, "ComfyUI's requirements");
        assert_eq!(sides[0].requirement, "shared-dep<2");
        assert_eq!(sides[1].requirement, "shared-dep>=2");
        assert_eq!(sides.len(), 2);
    }
}
