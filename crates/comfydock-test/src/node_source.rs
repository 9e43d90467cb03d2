//! Python sources of stand-in custom node packs, shared by registry zips and git node repos: an
//! `__init__.py` that imports the pack's dependencies and registers `NODE_CLASS_MAPPINGS`, and a
//! registry-style `pyproject.toml`.

use std::fmt::Write as _;

/// The publisher every stand-in node belongs to.
pub const PUBLISHER_ID: &str = "comfydock-test";

/// The importable module of a requirement (`node-dep-a>=1` → `node_dep_a`).
pub fn requirement_module(requirement: &str) -> String {
    let name: String = requirement
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    name.replace(['-', '.'], "_").to_lowercase()
}

/// An `__init__.py` importing every requirement's module (a missing dependency fails the import,
/// as with real packs) and registering one trivial INT node per class, category `pack`.
pub fn init_py(pack: &str, requirements: &[String], classes: &[String]) -> String {
    let mut init = String::new();
    for requirement in requirements {
        let _ = writeln!(init, "import {}", requirement_module(requirement));
    }
    init.push_str("\nNODE_CLASS_MAPPINGS = {}\nNODE_DISPLAY_NAME_MAPPINGS = {}\n");
    for class in classes {
        let _ = write!(
            init,
            "\n\nclass {class}:\n    @classmethod\n    def INPUT_TYPES(s):\n        \
             return {{\"required\": {{\"value\": (\"INT\", {{\"default\": 0}})}}}}\n\n    \
             RETURN_TYPES = (\"INT\",)\n    FUNCTION = \"run\"\n    CATEGORY = \"{pack}\"\n\n    \
             def run(self, value):\n        return (value,)\n\n\n\
             NODE_CLASS_MAPPINGS[\"{class}\"] = {class}\n\
             NODE_DISPLAY_NAME_MAPPINGS[\"{class}\"] = \"{class} ({pack})\"\n"
        );
    }
    init
}

/// The fields of a generated `pyproject.toml`.
pub struct PyprojectFields<'a> {
    /// `[project] name` (the registry id).
    pub name: &'a str,
    /// `[tool.comfy] DisplayName`.
    pub display_name: &'a str,
    /// `[project] version`.
    pub version: &'a str,
    /// `[project] description`.
    pub description: &'a str,
    /// `[project.urls] Repository`.
    pub repository: &'a str,
    /// `[project] dependencies`.
    pub dependencies: &'a [String],
}

/// A registry-style `pyproject.toml` (`[project]` + `[tool.comfy]`).
pub fn pyproject_toml(fields: &PyprojectFields<'_>) -> String {
    let deps: Vec<String> = fields
        .dependencies
        .iter()
        .map(|r| format!("\"{}\"", r.replace('"', "'")))
        .collect();
    format!(
        "[project]\nname = \"{name}\"\ndescription = \"{desc}\"\nversion = \"{version}\"\n\
         license = {{ file = \"LICENSE\" }}\ndependencies = [{deps}]\n\n[project.urls]\nRepository = \"{repository}\"\n\n\
         [tool.comfy]\nPublisherId = \"{publisher}\"\nDisplayName = \"{display}\"\nIcon = \"\"\n",
        name = fields.name,
        version = fields.version,
        repository = fields.repository,
        desc = fields.description.replace('"', "'"),
        display = fields.display_name.replace('"', "'"),
        deps = deps.join(", "),
        publisher = PUBLISHER_ID,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_imports_requirements_and_registers_classes() {
        let init = init_py(
            "p",
            &["node-dep-a>=1".into(), "Tiny.Img==1; python_version>'3'".into()],
            &["A".into()],
        );
        assert!(init.starts_with("import node_dep_a\nimport tiny_img\n"), "{init}");
        assert!(init.contains("NODE_CLASS_MAPPINGS[\"A\"] = A"));
    }
}
