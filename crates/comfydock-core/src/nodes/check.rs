//! `node check`: a static scan of a node's Python imports (parsed, never executed) that reports
//! top-level modules that are neither stdlib, ComfyUI's own, the node's own files, nor installed in
//! the environment — likely missing requirements, with the file and line of the import.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::NodeError;
use crate::environment::Environment;

/// An import nothing provides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingImport {
    pub module: String,
    /// Relative to the node folder.
    pub file: String,
    pub line: usize,
}

/// The result for one node.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub key: String,
    pub files_scanned: usize,
    pub missing: Vec<MissingImport>,
}

/// Top-level modules imported by one Python source, with line numbers (relative imports skipped).
pub fn imports(source: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut in_string: Option<&str> = None;
    let mut continued = String::new();
    let mut start_line = 0;
    for (i, raw) in source.lines().enumerate() {
        let line_no = i + 1;
        let mut line = raw;
        if let Some(quote) = in_string {
            match line.find(quote) {
                Some(end) => {
                    in_string = None;
                    line = &line[end + 3..];
                }
                None => continue,
            }
        }
        let code = line.split('#').next().unwrap_or_default();
        for quote in ["\"\"\"", "'''"] {
            if code.matches(quote).count() % 2 == 1 && !code.trim_start().starts_with("import") {
                in_string = Some(quote);
            }
        }
        if in_string.is_some()
            && !code.trim_start().starts_with("from ")
            && !code.trim_start().starts_with("import ")
        {
            continue;
        }
        if continued.is_empty() {
            start_line = line_no;
        }
        continued.push_str(code.trim_end_matches('\\'));
        continued.push(' ');
        let open = continued.matches('(').count() > continued.matches(')').count();
        if code.trim_end().ends_with('\\') || open {
            continue;
        }
        let statement = std::mem::take(&mut continued);
        for part in statement.split(';') {
            let part = part.trim();
            if let Some(rest) = part.strip_prefix("import ") {
                for name in rest.split(',') {
                    let module = name.split_whitespace().next().unwrap_or_default();
                    push(&mut out, module, start_line);
                }
            } else if let Some(rest) = part.strip_prefix("from ") {
                let module = rest.split_whitespace().next().unwrap_or_default();
                if rest.contains(" import") && !module.starts_with('.') {
                    push(&mut out, module, start_line);
                }
            }
        }
    }
    out
}

fn push(out: &mut Vec<(String, usize)>, module: &str, line: usize) {
    let top = module
        .split('.')
        .next()
        .unwrap_or_default()
        .trim_matches(['(', ')']);
    if !top.is_empty()
        && top.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !top.starts_with(|c: char| c.is_ascii_digit())
    {
        out.push((top.to_owned(), line));
    }
}

/// Module names Python ships (`sys.stdlib_module_names` of the environment's interpreter).
fn stdlib_modules(env: &Environment) -> BTreeSet<String> {
    let mut cmd = std::process::Command::new(env.python());
    cmd.args([
        "-I",
        "-c",
        "import sys; print('\\n'.join(sorted(sys.stdlib_module_names)))",
    ]);
    crate::subprocess::run_checked(&mut cmd)
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Importable top-level names in a folder: packages, modules and extension modules.
fn top_level_names(dir: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let Ok(read) = fs_err::read_dir(dir) else {
        return names;
    };
    for entry in read.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if path.is_dir() {
            if name.ends_with(".dist-info") || name.ends_with(".egg-info") {
                if let Ok(text) = fs_err::read_to_string(path.join("top_level.txt")) {
                    names.extend(
                        text.lines()
                            .map(|l| l.trim().to_owned())
                            .filter(|l| !l.is_empty()),
                    );
                }
            } else {
                names.insert(name);
            }
        } else if let Some(stem) = name.strip_suffix(".py") {
            names.insert(stem.to_owned());
        } else if Path::new(&name)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("so") || e.eq_ignore_ascii_case("pyd"))
        {
            names.insert(name.split('.').next().unwrap_or_default().to_owned());
        } else if let Some(stem) = name.strip_suffix(".pth") {
            names.insert(stem.trim_start_matches("__editable__.").to_owned());
        }
    }
    names
}

fn site_packages(env: &Environment) -> Vec<PathBuf> {
    let lib = env.venv().join("lib");
    let mut out: Vec<PathBuf> = fs_err::read_dir(&lib)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("site-packages"))
        .filter(|p| p.is_dir())
        .collect();
    let windows = env.venv().join("Lib").join("site-packages");
    if windows.is_dir() {
        out.push(windows);
    }
    out
}

/// Scan one node folder.
pub fn check(env: &Environment, key: &str, dir: &Path) -> Result<CheckReport, NodeError> {
    let mut known = stdlib_modules(env);
    known.extend(top_level_names(&env.comfyui()));
    known.extend(
        [
            "comfy",
            "comfy_extras",
            "comfy_execution",
            "comfy_api",
            "folder_paths",
            "nodes",
            "server",
            "execution",
        ]
        .map(str::to_owned),
    );
    for sp in site_packages(env) {
        known.extend(top_level_names(&sp));
    }
    let mut own: BTreeSet<String> = BTreeSet::new();
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(true)
        .max_depth(8)
        .into_iter()
        .filter_entry(|e| {
            let n = e.file_name().to_string_lossy();
            !(e.depth() > 0 && (n.starts_with('.') || n == "__pycache__" || n == "node_modules"))
        })
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().is_dir() {
            own.insert(name);
        } else if let Some(stem) = name.strip_suffix(".py") {
            own.insert(stem.to_owned());
            files.push(entry.path().to_path_buf());
        }
    }
    let mut missing = Vec::new();
    for file in &files {
        let Ok(source) = fs_err::read_to_string(file) else {
            continue;
        };
        for (module, line) in imports(&source) {
            if known.contains(&module) || own.contains(&module) || module == "__future__" {
                continue;
            }
            let relative = file
                .strip_prefix(dir)
                .unwrap_or(file)
                .to_string_lossy()
                .into_owned();
            missing.push(MissingImport {
                module,
                file: relative,
                line,
            });
        }
    }
    missing.sort_by(|a, b| (&a.module, &a.file, a.line).cmp(&(&b.module, &b.file, b.line)));
    Ok(CheckReport {
        key: key.to_owned(),
        files_scanned: files.len(),
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_imports_with_lines() {
        let src = "import os, sys as s\nfrom PIL.Image import open\nfrom . import local\n\"\"\"\nimport not_code\n\"\"\"\nfrom x import (\n  a,\n  b)\nimport numpy.linalg  # c\n";
        let found = imports(src);
        assert_eq!(
            found,
            [
                ("os".to_owned(), 1),
                ("sys".to_owned(), 1),
                ("PIL".to_owned(), 2),
                ("x".to_owned(), 7),
                ("numpy".to_owned(), 10)
            ]
        );
    }
}
