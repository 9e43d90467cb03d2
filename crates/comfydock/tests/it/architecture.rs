//! The crate map of the README's Development section, held by the code: each crate depends only
//! on the crates below it, and inside every crate no two top-level modules import each other
//! (directly or around a circle).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Crate → the comfydock crates it may use (normal dependencies), bottom to top.
const MAP: &[(&str, &[&str])] = &[
    ("comfydock-foundation", &[]),
    ("comfydock-workflow", &[]),
    ("comfydock-models", &["comfydock-foundation"]),
    (
        "comfydock-environments",
        &["comfydock-foundation", "comfydock-models", "comfydock-workflow"],
    ),
    (
        "comfydock-resolution",
        &[
            "comfydock-foundation",
            "comfydock-models",
            "comfydock-workflow",
            "comfydock-environments",
        ],
    ),
    (
        "comfydock-bundles",
        &[
            "comfydock-foundation",
            "comfydock-models",
            "comfydock-environments",
        ],
    ),
    (
        "comfydock-deploy",
        &[
            "comfydock-foundation",
            "comfydock-environments",
            "comfydock-bundles",
        ],
    ),
    ("comfydock-serve", &["comfydock-foundation", "comfydock-workflow"]),
    (
        "comfydock-release",
        &["comfydock-foundation", "comfydock-workflow"],
    ),
    (
        "comfydock-cli",
        &[
            "comfydock-foundation",
            "comfydock-workflow",
            "comfydock-models",
            "comfydock-environments",
            "comfydock-resolution",
            "comfydock-bundles",
            "comfydock-deploy",
            "comfydock-serve",
            "comfydock-release",
        ],
    ),
    ("comfydock", &["comfydock-cli"]),
    ("comfydock-test", &["comfydock-foundation"]),
];

#[test]
fn every_crate_is_on_the_map_and_uses_only_crates_below_it() {
    let mut on_disk = BTreeSet::new();
    for entry in fs_err::read_dir(crates_dir()).unwrap() {
        let entry = entry.unwrap();
        let manifest = entry.path().join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        on_disk.insert(name.clone());
        let text = fs_err::read_to_string(&manifest).unwrap();
        let doc: toml::Table = text.parse().unwrap();
        let deps: BTreeSet<String> = doc
            .get("dependencies")
            .and_then(toml::Value::as_table)
            .map(|t| t.keys().filter(|k| k.starts_with("comfydock")).cloned().collect())
            .unwrap_or_default();
        let allowed: BTreeSet<String> = MAP
            .iter()
            .find(|(crate_name, _)| *crate_name == name)
            .unwrap_or_else(|| panic!("crate `{name}` is not on the map in architecture.rs and the README"))
            .1
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let outside: Vec<&String> = deps.difference(&allowed).collect();
        assert!(
            outside.is_empty(),
            "`{name}` depends on {outside:?}, which the map does not allow"
        );
    }
    let mapped: BTreeSet<String> = MAP.iter().map(|(n, _)| (*n).to_owned()).collect();
    assert_eq!(on_disk, mapped, "the map and the crates on disk differ");
}

/// Top-level modules of a crate (`src/x.rs` or `src/x/`), and which others each one names with
/// `crate::` (test modules left out).
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut modules = BTreeSet::new();
    for entry in fs_err::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() && stem != "bin"
            || path.extension().is_some_and(|e| e == "rs") && stem != "lib" && stem != "main"
        {
            modules.insert(stem);
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> =
        modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for file in walk(src) {
        let rel = file.strip_prefix(src).unwrap();
        let mut parts = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        let first = parts.next().unwrap();
        let module = first.trim_end_matches(".rs").to_owned();
        if !modules.contains(&module) {
            continue;
        }
        let text = fs_err::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let top_level_file = rel.components().count() == 1;
        for line in code.lines() {
            let line = line.split("//").next().unwrap_or_default();
            let mut named = Vec::new();
            for (prefix, applies) in [("crate::", true), ("super::", top_level_file)] {
                if !applies {
                    continue;
                }
                let mut rest = line;
                while let Some(at) = rest.find(prefix) {
                    rest = &rest[at + prefix.len()..];
                    if let Some(group) = rest.strip_prefix('{') {
                        let inner = group.split('}').next().unwrap_or_default();
                        named.extend(
                            inner
                                .split(',')
                                .map(|s| s.trim().split("::").next().unwrap_or_default().to_owned()),
                        );
                    } else {
                        named.push(
                            rest.chars()
                                .take_while(|c| c.is_alphanumeric() || *c == '_')
                                .collect(),
                        );
                    }
                }
            }
            for other in named {
                if other != module && modules.contains(&other) {
                    graph.get_mut(&module).unwrap().insert(other);
                }
            }
        }
    }
    graph
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs_err::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// A circle in `graph`, if any, as the modules along it.
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in &graph[node] {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_imports_another_that_imports_it_back() {
    let mut circles = Vec::new();
    for entry in fs_err::read_dir(crates_dir()).unwrap() {
        let src = entry.unwrap().path().join("src");
        if !src.is_dir() {
            continue;
        }
        if let Some(circle) = find_circle(&module_graph(&src)) {
            circles.push(format!("{}: {}", src.display(), circle.join(" → ")));
        }
    }
    assert!(circles.is_empty(), "module circles:\n{}", circles.join("\n"));
}

#[test]
fn the_circle_finder_finds_circles() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(find_circle(&graph).unwrap(), ["a", "b", "c", "a"]);
    let acyclic: BTreeMap<String, BTreeSet<String>> = [("a", vec!["b"]), ("b", vec![])]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
        .collect();
    assert_eq!(find_circle(&acyclic), None);
}
