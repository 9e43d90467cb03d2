//! A node's Python requirements: `requirements.txt` (following `-r` includes) and
//! `pyproject.toml [project].dependencies`. Torch packages are filtered out: the environment's
//! backend decides torch, never a node.

use crate::manifest::requirement_name;
use crate::torch_backend::TORCH_PACKAGES;

/// What a node asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeRequirements {
    /// PEP 508 requirements for the node's dependency group, deduplicated, in file order.
    pub requirements: Vec<String>,
    /// Torch requirements that were dropped (`torch==2.0.1`).
    pub torch_dropped: Vec<String>,
    /// Lines that were not used, with the reason (`--extra-index-url …: pip option`).
    pub skipped: Vec<String>,
    /// The node ships an `install.py` (arbitrary code; run only on request).
    pub has_install_script: bool,
}

/// Read a node's requirements through `read` (relative path → file contents).
pub fn collect(read: &dyn Fn(&str) -> Option<String>) -> NodeRequirements {
    let mut out = NodeRequirements::default();
    let mut lines = Vec::new();
    let mut visited = Vec::new();
    read_requirements_file(
        read,
        "requirements.txt",
        &mut lines,
        &mut visited,
        &mut out.skipped,
    );
    if let Some(text) = read("pyproject.toml") {
        lines.extend(pyproject_dependencies(&text));
    }
    for line in lines {
        let name = requirement_name(&line);
        if name.is_empty() {
            out.skipped.push(format!("{line}: not a requirement"));
        } else if TORCH_PACKAGES.contains(&name.as_str()) {
            if !out.torch_dropped.contains(&line) {
                out.torch_dropped.push(line);
            }
        } else if !out.requirements.contains(&line) {
            out.requirements.push(line);
        }
    }
    out.has_install_script = read("install.py").is_some();
    out
}

fn read_requirements_file(
    read: &dyn Fn(&str) -> Option<String>,
    path: &str,
    out: &mut Vec<String>,
    visited: &mut Vec<String>,
    skipped: &mut Vec<String>,
) {
    if visited.iter().any(|v| v == path) || visited.len() > 16 {
        return;
    }
    visited.push(path.to_owned());
    let Some(text) = read(path) else {
        if path != "requirements.txt" {
            skipped.push(format!("-r {path}: file not found in the node"));
        }
        return;
    };
    let base = path.rsplit_once('/').map_or("", |(dir, _)| dir);
    for raw in text.lines() {
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        let include = line
            .strip_prefix("-r ")
            .or_else(|| line.strip_prefix("--requirement "))
            .or_else(|| line.strip_prefix("--requirement="))
            .or_else(|| line.strip_prefix("-r"));
        if let Some(include) = include {
            match join_relative(base, include.trim()) {
                Some(p) => read_requirements_file(read, &p, out, visited, skipped),
                None => skipped.push(format!("{line}: include outside the node")),
            }
            continue;
        }
        if line.starts_with('-') {
            skipped.push(format!("{line}: pip option"));
            continue;
        }
        if line.contains("://") && !line.contains('@') {
            skipped.push(format!("{line}: bare URL (write `name @ URL`)"));
            continue;
        }
        out.push(line.to_owned());
    }
}

fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    line.split(" #").next().unwrap_or_default()
}

/// `base/include` with `..` resolved; `None` when it leaves the node folder.
fn join_relative(base: &str, include: &str) -> Option<String> {
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    if include.starts_with('/') {
        return None;
    }
    for part in include.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// `[project].dependencies` of a pyproject (empty when unreadable).
fn pyproject_dependencies(text: &str) -> Vec<String> {
    let Ok(doc) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    doc.get("project")
        .and_then(|p| p.get("dependencies"))
        .and_then(toml::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(|s| s.trim().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn includes_pyproject_torch_and_options() {
        let files: HashMap<&str, &str> = HashMap::from([
            (
                "requirements.txt",
                "# deps\nnode-dep-a>=1 # pinned\n-r extra/more.txt\n--extra-index-url https://x\ntorch==2.0.1\ngit+https://github.com/a/b\n",
            ),
            (
                "extra/more.txt",
                "node-dep-b\n-r ../requirements.txt\n-r ../../escape.txt\n",
            ),
            (
                "pyproject.toml",
                "[project]\nname = \"x\"\ndependencies = [\"node-dep-a>=1\", \"shared-dep<2\", \"torchvision\"]\n",
            ),
            ("install.py", "print(1)"),
        ]);
        let read = |p: &str| files.get(p).map(|s| (*s).to_owned());
        let reqs = collect(&read);
        assert_eq!(reqs.requirements, ["node-dep-a>=1", "node-dep-b", "shared-dep<2"]);
        assert_eq!(reqs.torch_dropped, ["torch==2.0.1", "torchvision"]);
        assert!(reqs.has_install_script);
        assert_eq!(reqs.skipped.len(), 3, "{:?}", reqs.skipped);
    }
}
