//! Reading a failed `uv lock`: uv's explanation without its noise, and which requirements
//! conflict with who asked for each (a node, ComfyUI, the user, a torch backend).

use std::sync::LazyLock;

use regex::Regex;

/// uv's explanation of a failed resolution, shown as the cause of a conflict.
#[derive(Debug, Clone)]
pub struct ResolverOutput(pub String);

impl std::fmt::Display for ResolverOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.trim())
    }
}

impl std::error::Error for ResolverOutput {}

impl ResolverOutput {
    /// uv's stderr without its interpreter line and blank lines: the resolver's explanation.
    pub fn from_uv_stderr(stderr: &str) -> Self {
        Self(
            stderr
                .lines()
                .filter(|l| !l.starts_with("Using ") && !l.trim().is_empty())
                .collect::<Vec<_>>()
                .join("\n"),
        )
    }
}

/// One side of a dependency conflict: a requirement and who asked for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConflictSide {
    /// `node `x`` or `ComfyUI (requirements.txt)` or `the torch backend extra`.
    pub origin: String,
    /// The requirement as uv printed it (`conflict-a`, `shared-dep>=2`).
    pub requirement: String,
}

/// "Dependency conflict: `a` (from X) and `b` (from Y) cannot both be installed".
pub fn conflict_message(sides: &[ConflictSide]) -> String {
    match sides {
        [a, b, ..] => format!(
            "Dependency conflict: `{}` (from {}) and `{}` (from {}) cannot both be installed",
            a.requirement, a.origin, b.requirement, b.origin
        ),
        [a] => format!(
            "Dependency conflict: `{}` (from {}) cannot be installed",
            a.requirement, a.origin
        ),
        [] => "Dependency conflict".to_owned(),
    }
}

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

/// Who asked for a `[tool.uv] constraint-dependencies` entry, in conflict messages.
pub const CONSTRAINT_ORIGIN: &str = "your constraints";

/// Add the user's constraints that take part in a resolver failure to `sides`.
///
/// uv folds a constraint into the requirement it bounds and never names it as a side ("x:comfyui
/// depends on tinynum<2 and tinynum>=2"), so a conflict a constraint causes would name only the
/// other side. A constraint takes part when uv's explanation names its package with a version
/// bound; its side follows those uv names, so a one-sided message becomes two-sided.
pub fn add_constraint_sides(sides: &mut Vec<ConflictSide>, stderr: &str, constraints: &[String]) {
    let text = stderr
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase();
    for constraint in constraints {
        let name = comfydock_foundation::package_name::of_requirement(constraint);
        if name.is_empty() || sides.iter().any(|s| s.requirement == *constraint) {
            continue;
        }
        let bounded = Regex::new(&format!(
            r"(^|[^a-z0-9._-]){}\s*(<|>|=|!|~)",
            regex::escape(&name)
        ))
        .is_ok_and(|re| re.is_match(&text));
        if bounded {
            let side = ConflictSide {
                origin: CONSTRAINT_ORIGIN.to_owned(),
                requirement: constraint.clone(),
            };
            sides.push(side);
        }
    }
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
    fn a_constraint_uv_folded_into_a_requirement_is_named() {
        let folded = "  cause: Because x:comfyui depends on tinynum<2 and tinynum>=2, we can conclude that x:comfyui's requirements are unsatisfiable.";
        let mut sides = conflict_sides(folded, &|_| "ComfyUI's requirements".to_owned(), "your packages");
        assert_eq!(sides.len(), 1);
        add_constraint_sides(
            &mut sides,
            folded,
            &[
                "tinynum>=2".to_owned(),
                "tiny<3".to_owned(),
                "other==1".to_owned(),
            ],
        );
        assert_eq!(
            conflict_message(&sides),
            "Dependency conflict: `tinynum<2` (from ComfyUI's requirements) and `tinynum>=2` (from your constraints) cannot both be installed"
        );
        assert_eq!(
            sides.len(),
            2,
            "constraints on packages uv does not name are left out"
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
