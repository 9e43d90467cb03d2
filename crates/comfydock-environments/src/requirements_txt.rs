//! Requirements files as pip reads them, and a node's Python requirements:
//! `requirements.txt` (following `-r` includes) and `pyproject.toml [project].dependencies`.
//! Torch packages are filtered out of a node's: the environment's backend decides torch, never
//! a node. [`parse_requirements_file`] is comfydock's one requirements.txt parser (ComfyUI's
//! own requirements go through it too).

use comfydock_foundation::package_name;

use crate::torch_backend::TORCH_PACKAGES;

/// One logical line of a requirements file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequirementsLine {
    /// A requirement as written (PEP 508, or a URL), without comments or per-line options.
    Requirement(String),
    /// `-r FILE` / `--requirement FILE`: another requirements file, relative to this one.
    Include(String),
    /// `-c FILE` / `--constraint FILE`: a constraints file, relative to this one.
    Constraint(String),
    /// Any other pip option as written (`--index-url URL`, `--extra-index-url URL`, `-e PATH`).
    Option(String),
}

/// The logical lines of a requirements file, by pip's rules: a line ending in `\` continues on
/// the next one (unless it is a comment line); `#` starts a comment at the start of a line or
/// after whitespace, so `pkg @ https://host/pkg.zip#sha256=…` keeps its fragment; blank lines
/// are dropped; options after a requirement (`pkg==1 --hash=sha256:…`) are dropped, the
/// requirement kept.
/// Environment variables (`${VAR}`) are left as written.
pub fn parse_requirements_file(text: &str) -> Vec<RequirementsLine> {
    join_continued_lines(text)
        .iter()
        .filter_map(|line| {
            let line = strip_comment(line).trim();
            (!line.is_empty()).then(|| classify(line))
        })
        .collect()
}

/// The requirements of a requirements file (options and includes ignored), split into
/// (everything else, torch packages) — how ComfyUI's own `requirements.txt` is read.
pub fn requirements_and_torch(text: &str) -> (Vec<String>, Vec<String>) {
    parse_requirements_file(text)
        .into_iter()
        .filter_map(|line| match line {
            RequirementsLine::Requirement(requirement) => Some(requirement),
            _ => None,
        })
        .partition(|requirement| !is_torch(requirement))
}

fn is_torch(requirement: &str) -> bool {
    TORCH_PACKAGES.contains(&package_name::of_requirement(requirement).as_str())
}

/// Physical lines joined where a line ends in `\` (pip's `join_lines`).
fn join_continued_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending: Option<String> = None;
    for line in text.lines() {
        let comment_only = line.trim_start().starts_with('#');
        if line.ends_with('\\') && !comment_only {
            pending
                .get_or_insert_with(String::new)
                .push_str(line.trim_matches('\\'));
        } else if let Some(mut joined) = pending.take() {
            // A comment line ending the run must still read as a comment after joining.
            if comment_only {
                joined.push(' ');
            }
            joined.push_str(line);
            out.push(joined);
        } else {
            out.push(line.to_owned());
        }
    }
    out.extend(pending);
    out
}

/// Where a comment starts: a `#` at the start of the line or after whitespace.
fn comment_start(line: &str) -> Option<usize> {
    line.char_indices()
        .find(|&(at, c)| c == '#' && line[..at].chars().next_back().is_none_or(char::is_whitespace))
        .map(|(at, _)| at)
}

fn strip_comment(line: &str) -> &str {
    comment_start(line).map_or(line, |at| &line[..at])
}

/// The value of `-X VALUE`, `-XVALUE`, `--long VALUE` or `--long=VALUE`.
fn option_value<'a>(line: &'a str, short: &str, long: &str) -> Option<&'a str> {
    if let Some(rest) = line.strip_prefix(long) {
        if let Some(value) = rest.strip_prefix('=') {
            return Some(value.trim());
        }
        return rest.starts_with(char::is_whitespace).then(|| rest.trim());
    }
    line.strip_prefix(short)
        .filter(|rest| !rest.starts_with('-'))
        .map(str::trim)
}

fn classify(line: &str) -> RequirementsLine {
    if !line.starts_with('-') {
        // pip reads the words up to the first one starting with `-` as the requirement.
        let end = line
            .char_indices()
            .find(|&(at, c)| c == '-' && line[..at].ends_with(char::is_whitespace))
            .map_or(line.len(), |(at, _)| at);
        return RequirementsLine::Requirement(line[..end].trim_end().to_owned());
    }
    if let Some(path) = option_value(line, "-r", "--requirement") {
        RequirementsLine::Include(path.to_owned())
    } else if let Some(path) = option_value(line, "-c", "--constraint") {
        RequirementsLine::Constraint(path.to_owned())
    } else {
        RequirementsLine::Option(line.to_owned())
    }
}

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
        let name = package_name::of_requirement(&line);
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
    for line in parse_requirements_file(&text) {
        match line {
            RequirementsLine::Include(include) => match join_relative(base, &include) {
                Some(p) => read_requirements_file(read, &p, out, visited, skipped),
                None => skipped.push(format!("-r {include}: include outside the node")),
            },
            RequirementsLine::Constraint(constraints) => {
                skipped.push(format!("-c {constraints}: constraints files are not applied"));
            }
            RequirementsLine::Option(option) => skipped.push(format!("{option}: pip option")),
            RequirementsLine::Requirement(requirement)
                if requirement.contains("://") && !requirement.contains('@') =>
            {
                skipped.push(format!("{requirement}: bare URL (write `name @ URL`)"));
            }
            RequirementsLine::Requirement(requirement) => out.push(requirement),
        }
    }
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
    use RequirementsLine::{Constraint, Include, Option as PipOption, Requirement};

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

    fn requirement(text: &str) -> RequirementsLine {
        Requirement(text.to_owned())
    }

    #[test]
    fn a_hash_starts_a_comment_only_at_line_start_or_after_whitespace() {
        let text = "# header\n  # indented comment\nplain # trailing\ntabbed\t# after a tab\n\
                    pkg @ https://host.test/pkg.zip#sha256=abc\nnospace#kept\n";
        assert_eq!(
            parse_requirements_file(text),
            [
                requirement("plain"),
                requirement("tabbed"),
                requirement("pkg @ https://host.test/pkg.zip#sha256=abc"),
                requirement("nospace#kept"),
            ]
        );
    }

    #[test]
    fn includes_constraints_and_options_in_every_spelling() {
        let text = "-r a.txt\n-rb.txt\n--requirement c.txt\n--requirement=d.txt\n\
                    -c cons.txt\n--constraint=cons2.txt\n\
                    --index-url https://i.test/simple\n-i https://j.test/simple\n\
                    --extra-index-url https://k.test/simple\n-e ./local\n--requirements-typo x\n";
        assert_eq!(
            parse_requirements_file(text),
            [
                Include("a.txt".into()),
                Include("b.txt".into()),
                Include("c.txt".into()),
                Include("d.txt".into()),
                Constraint("cons.txt".into()),
                Constraint("cons2.txt".into()),
                PipOption("--index-url https://i.test/simple".into()),
                PipOption("-i https://j.test/simple".into()),
                PipOption("--extra-index-url https://k.test/simple".into()),
                PipOption("-e ./local".into()),
                PipOption("--requirements-typo x".into()),
            ]
        );
    }

    #[test]
    fn continued_lines_join_and_per_line_options_are_dropped() {
        let text = "numpy>=1 \\\n    ; python_version >= '3.9'\n\
                    pinned==1.0 \\\n    --hash=sha256:00 \\\n    --hash=sha256:11\n\
                    before \\\n# a comment ends the run\n\
                    last \\";
        assert_eq!(
            parse_requirements_file(text),
            [
                requirement("numpy>=1     ; python_version >= '3.9'"),
                requirement("pinned==1.0"),
                requirement("before"),
                requirement("last"),
            ]
        );
    }

    #[test]
    fn comfyui_requirements_split_torch_from_the_rest() {
        let (dependencies, torch) = requirements_and_torch(
            "torch>=2.0\nTinyNum<2 # pinned\n-r other.txt\n--extra-index-url https://x.test\n\
             comfy_tiny_a\ntorchvision\n",
        );
        assert_eq!(dependencies, ["TinyNum<2", "comfy_tiny_a"]);
        assert_eq!(torch, ["torch>=2.0", "torchvision"]);
    }
}
