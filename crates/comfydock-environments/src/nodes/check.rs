//! `node check`: a static scan of a node's Python imports (parsed, never executed) that reports
//! top-level modules that are neither stdlib, ComfyUI's own, the node's own files, nor installed in
//! the environment — likely missing requirements, with the file and line of the import. An import
//! inside `try:` that catches `ImportError` (or `ModuleNotFoundError`), or inside a function, is
//! optional: reported apart, never an error.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::NodeError;
use crate::comfyui_process::package_for_import;
use crate::environment::Environment;

/// A required import nothing provides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingImport {
    pub module: String,
    /// The PyPI package that usually provides it (`cv2` → `opencv-python`).
    pub package: String,
    /// Relative to the node folder.
    pub file: String,
    pub line: usize,
}

/// Why an import that nothing provides does not stop the node from loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Optionality {
    /// Inside `try:` whose handlers catch `ImportError` (or `ModuleNotFoundError`, or anything).
    GuardedByTry,
    /// Inside a function: imported only when it is called.
    InFunction,
}

impl std::fmt::Display for Optionality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::GuardedByTry => "inside try/except ImportError",
            Self::InFunction => "inside a function",
        })
    }
}

/// An optional import nothing provides: reported, not an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OptionalImport {
    pub module: String,
    pub package: String,
    pub file: String,
    pub line: usize,
    pub reason: Optionality,
}

/// The result for one node.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub key: String,
    pub files_scanned: usize,
    /// Required imports nothing provides (the node fails to load without them).
    pub missing: Vec<MissingImport>,
    /// Optional imports nothing provides.
    pub optional: Vec<OptionalImport>,
}

/// One import found in a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundImport {
    /// The top-level module (`PIL` for `from PIL.Image import open`).
    pub module: String,
    pub line: usize,
    /// `None` when the import runs as the module loads and an `ImportError` would escape.
    pub optional: Option<Optionality>,
}

/// One logical line of code: where it starts, its indentation, and its text (continuations
/// joined, comments dropped).
#[derive(Debug)]
struct Statement {
    line: usize,
    indent: usize,
    text: String,
}

/// Split a source into logical statements, skipping the insides of triple-quoted strings.
fn statements(source: &str) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut in_string: Option<&str> = None;
    let mut continued = String::new();
    let mut start_line = 0;
    let mut start_indent = 0;
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
            if code.trim().is_empty() {
                continue;
            }
            start_line = line_no;
            start_indent = indentation(line);
        }
        continued.push_str(code.trim_end_matches('\\'));
        continued.push(' ');
        let open = continued.matches('(').count() > continued.matches(')').count();
        if code.trim_end().ends_with('\\') || open {
            continue;
        }
        out.push(Statement {
            line: start_line,
            indent: start_indent,
            text: std::mem::take(&mut continued).trim().to_owned(),
        });
    }
    out
}

/// Columns of leading whitespace (a tab counts to the next multiple of 8, as Python does).
fn indentation(line: &str) -> usize {
    let mut col = 0;
    for c in line.chars() {
        match c {
            ' ' => col += 1,
            '\t' => col = (col / 8 + 1) * 8,
            _ => break,
        }
    }
    col
}

/// Whether an `except` clause catches a failed import: `ImportError`, `ModuleNotFoundError`, a
/// tuple holding one, `Exception`, `BaseException` or a bare `except:`.
fn catches_import_error(clause: &str) -> bool {
    let rest = clause.trim_start_matches("except").trim_start_matches('*');
    let caught = rest.split(':').next().unwrap_or_default();
    let caught = caught.split(" as ").next().unwrap_or_default();
    let names: Vec<&str> = caught
        .split(|c: char| c == ',' || c == '(' || c == ')' || c.is_whitespace())
        .filter(|n| !n.is_empty())
        .collect();
    names.is_empty()
        || names.iter().any(|n| {
            let n = n.rsplit('.').next().unwrap_or(n);
            matches!(
                n,
                "ImportError" | "ModuleNotFoundError" | "Exception" | "BaseException"
            )
        })
}

fn starts_block(text: &str, keyword: &str) -> bool {
    text.strip_prefix(keyword)
        .is_some_and(|rest| rest.starts_with([' ', ':', '(', '*']) || rest.is_empty())
}

/// Top-level modules imported by one Python source, with line numbers and whether each is
/// optional (relative imports skipped).
pub fn scan_imports(source: &str) -> Vec<FoundImport> {
    let statements = statements(source);
    // The enclosing blocks of the current statement: (header indent, what the block makes optional).
    let mut blocks: Vec<(usize, Option<Optionality>)> = Vec::new();
    let mut out = Vec::new();
    for (at, statement) in statements.iter().enumerate() {
        while blocks
            .last()
            .is_some_and(|(indent, _)| *indent >= statement.indent)
        {
            blocks.pop();
        }
        let text = statement.text.as_str();
        let optional = blocks.iter().rev().find_map(|(_, o)| *o);
        for part in text.split(';') {
            let part = part.trim();
            if let Some(rest) = part.strip_prefix("import ") {
                for name in rest.split(',') {
                    let module = name.split_whitespace().next().unwrap_or_default();
                    push(&mut out, module, statement.line, optional);
                }
            } else if let Some(rest) = part.strip_prefix("from ") {
                let module = rest.split_whitespace().next().unwrap_or_default();
                if rest.contains(" import") && !module.starts_with('.') {
                    push(&mut out, module, statement.line, optional);
                }
            }
        }
        if !text.ends_with(':') {
            continue;
        }
        let kind = if starts_block(text, "def") || starts_block(text, "async def") {
            Some(Optionality::InFunction)
        } else if starts_block(text, "try") {
            // The handlers follow the body at the same indentation as `try:`.
            let guarded = statements[at + 1..]
                .iter()
                .filter(|s| s.indent <= statement.indent)
                .take_while(|s| {
                    s.indent == statement.indent
                        && ["except", "else", "finally"]
                            .iter()
                            .any(|k| starts_block(&s.text, k))
                })
                .any(|s| starts_block(&s.text, "except") && catches_import_error(&s.text));
            guarded.then_some(Optionality::GuardedByTry)
        } else {
            None
        };
        blocks.push((statement.indent, kind));
    }
    out
}

/// Top-level modules imported by one Python source, with line numbers (relative imports skipped).
pub fn imports(source: &str) -> Vec<(String, usize)> {
    scan_imports(source)
        .into_iter()
        .map(|i| (i.module, i.line))
        .collect()
}

fn push(out: &mut Vec<FoundImport>, module: &str, line: usize, optional: Option<Optionality>) {
    let top = module
        .split('.')
        .next()
        .unwrap_or_default()
        .trim_matches(['(', ')']);
    if !top.is_empty()
        && top.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !top.starts_with(|c: char| c.is_ascii_digit())
    {
        out.push(FoundImport {
            module: top.to_owned(),
            line,
            optional,
        });
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
    comfydock_foundation::subprocess::run_checked(&mut cmd)
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
    let mut optional = Vec::new();
    for file in &files {
        let Ok(source) = fs_err::read_to_string(file) else {
            continue;
        };
        for found in scan_imports(&source) {
            let module = found.module;
            if known.contains(&module) || own.contains(&module) || module == "__future__" {
                continue;
            }
            let relative = file
                .strip_prefix(dir)
                .unwrap_or(file)
                .to_string_lossy()
                .into_owned();
            let package = package_for_import(&module);
            match found.optional {
                None => missing.push(MissingImport {
                    module,
                    package,
                    file: relative,
                    line: found.line,
                }),
                Some(reason) => optional.push(OptionalImport {
                    module,
                    package,
                    file: relative,
                    line: found.line,
                    reason,
                }),
            }
        }
    }
    missing.sort_by(|a, b| (&a.module, &a.file, a.line).cmp(&(&b.module, &b.file, b.line)));
    optional.sort_by(|a, b| (&a.module, &a.file, a.line).cmp(&(&b.module, &b.file, b.line)));
    Ok(CheckReport {
        key: key.to_owned(),
        files_scanned: files.len(),
        missing,
        optional,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_under_try_import_error_or_in_functions_are_optional() {
        use Optionality::{GuardedByTry, InFunction};
        let src = "\
import required_a
try:
    import guarded_a
    from guarded_b.sub import x
except ImportError:
    import fallback_a
try:
    import guarded_c
except (OSError, ModuleNotFoundError) as e:
    pass
try:
    import unguarded
except ValueError:
    pass
finally:
    pass
def load():
    import lazy_a
    if True:
        from lazy_b import y
async def aload():
    import lazy_c
class Node:
    import class_level
    def run(self):
        try:
            import guarded_d
        except:
            pass
import required_b
";
        let found: Vec<(String, Option<Optionality>)> = scan_imports(src)
            .into_iter()
            .map(|i| (i.module, i.optional))
            .collect();
        let want = |m: &str, o: Option<Optionality>| (m.to_owned(), o);
        assert_eq!(
            found,
            [
                want("required_a", None),
                want("guarded_a", Some(GuardedByTry)),
                want("guarded_b", Some(GuardedByTry)),
                want("fallback_a", None),
                want("guarded_c", Some(GuardedByTry)),
                want("unguarded", None),
                want("lazy_a", Some(InFunction)),
                want("lazy_b", Some(InFunction)),
                want("lazy_c", Some(InFunction)),
                want("class_level", None),
                want("guarded_d", Some(GuardedByTry)),
                want("required_b", None),
            ]
        );
    }

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
