//! Git repositories standing in for custom node packs installed from git (GitHub), built with the
//! real git: commits of generated content, lightweight or annotated tags, branches, submodules,
//! and dependencies in `requirements.txt` and/or `pyproject.toml`.
//!
//! ```no_run
//! use comfydock_test::node_repo::{NodeContent, NodeRepo};
//! let repo = NodeRepo::create("ComfyUI-Foo");
//! let v1 = repo.release(&NodeContent::new().node_class("FooNode").requirements("node-dep-a>=1"), "v1.0.0");
//! let v2 = repo.release(&NodeContent::new().node_class("FooNode").requirements("node-dep-a>=2"), "v1.1.0");
//! // clone from repo.url(); v1/v2 are full commit ids
//! ```

use std::path::{Path, PathBuf};

use crate::git::{commit_all, git};
use crate::node_source::{PyprojectFields, init_py, pyproject_toml};

/// What one commit of a node pack contains. Files not mentioned are left as they are, except the
/// generated ones (`__init__.py`, `requirements.txt`, `pyproject.toml`), which are rewritten or
/// removed to match.
#[derive(Clone, Debug, Default)]
pub struct NodeContent {
    classes: Vec<String>,
    requirements_txt: Vec<String>,
    pyproject_dependencies: Option<Vec<String>>,
    version: Option<String>,
    files: Vec<(String, String)>,
}

impl NodeContent {
    /// Empty content: an `__init__.py` with an empty `NODE_CLASS_MAPPINGS`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a node class to the generated `__init__.py`.
    #[must_use]
    pub fn node_class(mut self, class_name: &str) -> Self {
        self.classes.push(class_name.to_owned());
        self
    }

    /// Adds a line to `requirements.txt` (and an import of its module to `__init__.py`).
    #[must_use]
    pub fn requirements(mut self, requirement: &str) -> Self {
        self.requirements_txt.push(requirement.to_owned());
        self
    }

    /// Writes a `pyproject.toml` whose `[project] dependencies` are these (imported by `__init__.py`).
    #[must_use]
    pub fn pyproject_dependencies(mut self, dependencies: &[&str]) -> Self {
        self.pyproject_dependencies = Some(dependencies.iter().map(|d| (*d).to_owned()).collect());
        self
    }

    /// Sets the `[project] version` of the generated `pyproject.toml` (default `1.0.0`).
    #[must_use]
    pub fn version(mut self, version: &str) -> Self {
        self.version = Some(version.to_owned());
        self
    }

    /// Adds or replaces a file (a given `__init__.py` replaces the generated one).
    #[must_use]
    pub fn file(mut self, path: &str, contents: &str) -> Self {
        self.files.retain(|(p, _)| p != path);
        self.files.push((path.to_owned(), contents.to_owned()));
        self
    }

    /// Writes the content into `dir` (also usable for a non-git "dev" node folder); `name` is the
    /// pack name used in generated files.
    pub fn write_to(&self, dir: &Path, name: &str) {
        let write = |relative: &str, contents: &str| {
            let path = dir.join(relative);
            if let Some(parent) = path.parent() {
                fs_err::create_dir_all(parent).expect("create a node pack directory");
            }
            fs_err::write(&path, contents).expect("write a node pack file");
        };
        let remove = |relative: &str| {
            let path = dir.join(relative);
            if path.exists() {
                fs_err::remove_file(&path).expect("remove a node pack file");
            }
        };
        let mut imports = self.requirements_txt.clone();
        imports.extend(self.pyproject_dependencies.iter().flatten().cloned());
        write("__init__.py", &init_py(name, &imports, &self.classes));
        if self.requirements_txt.is_empty() {
            remove("requirements.txt");
        } else {
            write(
                "requirements.txt",
                &format!("{}\n", self.requirements_txt.join("\n")),
            );
        }
        match &self.pyproject_dependencies {
            Some(dependencies) => write(
                "pyproject.toml",
                &pyproject_toml(&PyprojectFields {
                    name: &name.to_lowercase(),
                    display_name: name,
                    version: self.version.as_deref().unwrap_or("1.0.0"),
                    description: &format!("Stand-in git node pack {name}"),
                    repository: &format!("https://github.com/{}/{name}", crate::node_source::PUBLISHER_ID),
                    dependencies,
                }),
            ),
            None => remove("pyproject.toml"),
        }
        for (relative, contents) in &self.files {
            write(relative, contents);
        }
    }
}

/// A custom-node git repository; owns its temporary directory unless built with
/// [`NodeRepo::create_in`].
pub struct NodeRepo {
    name: String,
    path: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl NodeRepo {
    /// An empty repository (branch `main`, no commits) named `name` in a fresh temp dir.
    pub fn create(name: &str) -> Self {
        let temp = tempfile::Builder::new()
            .prefix("node-repo")
            .tempdir()
            .expect("create a temp dir");
        let path = temp.path().join(name);
        NodeRepo {
            _temp: Some(temp),
            ..Self::create_in(&path)
        }
    }

    /// An empty repository at `path` (its last component is the pack name).
    pub fn create_in(path: &Path) -> Self {
        fs_err::create_dir_all(path).expect("create the node repo directory");
        git(path, &["init", "-q", "-b", "main"]);
        let name = path
            .file_name()
            .map_or_else(|| "node".to_owned(), |n| n.to_string_lossy().into_owned());
        NodeRepo {
            name,
            path: path.to_owned(),
            _temp: None,
        }
    }

    /// Writes `content` and commits it; returns the commit id.
    pub fn commit(&self, content: &NodeContent, message: &str) -> String {
        content.write_to(&self.path, &self.name);
        commit_all(&self.path, message)
    }

    /// Commits `content` and puts the lightweight tag `tag` on it; returns the commit id.
    pub fn release(&self, content: &NodeContent, tag: &str) -> String {
        let sha = self.commit(content, &format!("Release {tag}"));
        self.tag(tag);
        sha
    }

    /// A lightweight tag on `HEAD`.
    pub fn tag(&self, tag: &str) {
        git(&self.path, &["tag", tag]);
    }

    /// An annotated tag on `HEAD` (its object id differs from the commit id).
    pub fn annotated_tag(&self, tag: &str, message: &str) {
        git(&self.path, &["tag", "-a", tag, "-m", message]);
    }

    /// Creates branch `name` at `HEAD` and checks it out.
    pub fn branch(&self, name: &str) {
        git(&self.path, &["checkout", "-q", "-b", name]);
    }

    /// Checks out an existing branch or revision.
    pub fn checkout(&self, rev: &str) {
        git(&self.path, &["checkout", "-q", rev]);
    }

    /// Adds `other` as a submodule at `relative` and commits; returns the commit id.
    pub fn add_submodule(&self, relative: &str, other: &NodeRepo) -> String {
        git(&self.path, &["submodule", "add", "-q", &other.url(), relative]);
        commit_all(&self.path, &format!("Add submodule {relative}"))
    }

    /// Writes one file and commits; returns the commit id.
    pub fn commit_file(&self, relative: &str, contents: &str, message: &str) -> String {
        let path = self.path.join(relative);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent).expect("create a directory in the node repo");
        }
        fs_err::write(&path, contents).expect("write a file in the node repo");
        commit_all(&self.path, message)
    }

    /// The pack name (the directory name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The repository path (a valid `git clone` source).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `file://` URL of the repository.
    pub fn url(&self) -> String {
        format!("file://{}", self.path.display())
    }

    /// The full commit id a revision points at.
    pub fn commit_of(&self, rev: &str) -> String {
        git(&self.path, &["rev-parse", &format!("{rev}^{{commit}}")])
    }

    /// The current `HEAD` commit id.
    pub fn head(&self) -> String {
        self.commit_of("HEAD")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_tags_and_generated_files() {
        let repo = NodeRepo::create("ComfyUI-Foo");
        let v1 = repo.release(
            &NodeContent::new()
                .node_class("FooNode")
                .requirements("node-dep-a>=1"),
            "v1.0.0",
        );
        let v2 = repo.release(
            &NodeContent::new()
                .node_class("FooNode")
                .pyproject_dependencies(&["node-dep-b"])
                .version("1.1.0"),
            "v1.1.0",
        );
        repo.annotated_tag("v1.1.0-annotated", "annotated");
        assert_ne!(v1, v2);
        assert_eq!(repo.commit_of("v1.0.0"), v1);
        assert_eq!(repo.commit_of("v1.1.0-annotated"), v2);
        assert_ne!(
            git(repo.path(), &["rev-parse", "v1.1.0-annotated"]),
            v2,
            "annotated tag object differs"
        );
        assert!(
            !repo.path().join("requirements.txt").exists(),
            "v1.1.0 moved deps to pyproject"
        );
        let pyproject = fs_err::read_to_string(repo.path().join("pyproject.toml")).unwrap();
        assert!(
            pyproject.contains("dependencies = [\"node-dep-b\"]")
                && pyproject.contains("version = \"1.1.0\"")
        );
        assert_eq!(
            git(repo.path(), &["show", "v1.0.0:requirements.txt"]),
            "node-dep-a>=1"
        );
        let init = git(repo.path(), &["show", "v1.0.0:__init__.py"]);
        assert!(init.starts_with("import node_dep_a"), "{init}");
    }

    #[test]
    fn clone_recurses_into_submodules() {
        let inner = NodeRepo::create("inner-lib");
        inner.commit(&NodeContent::new().file("lib.py", "VALUE = 42\n"), "lib");
        let outer = NodeRepo::create("ComfyUI-Outer");
        outer.commit(&NodeContent::new().node_class("OuterNode"), "initial");
        let with_sub = outer.add_submodule("vendor/inner", &inner);
        outer.tag("v2.0.0");
        assert_eq!(outer.commit_of("v2.0.0"), with_sub);

        let dest = tempfile::tempdir().unwrap();
        let clone = dest.path().join("clone");
        git(
            dest.path(),
            &[
                "clone",
                "-q",
                "--recurse-submodules",
                &outer.url(),
                clone.to_str().unwrap(),
            ],
        );
        assert_eq!(
            fs_err::read_to_string(clone.join("vendor/inner/lib.py")).unwrap(),
            "VALUE = 42\n"
        );
        assert!(
            fs_err::read_to_string(clone.join(".gitmodules"))
                .unwrap()
                .contains("path = vendor/inner")
        );
    }

    #[test]
    fn branches_and_dev_folders() {
        let repo = NodeRepo::create("ComfyUI-Branchy");
        let main = repo.commit(&NodeContent::new().node_class("A"), "main work");
        repo.branch("feature");
        let feature = repo.commit(
            &NodeContent::new().node_class("A").node_class("B"),
            "feature work",
        );
        repo.checkout("main");
        assert_eq!(repo.head(), main);
        assert_eq!(repo.commit_of("feature"), feature);

        let dev = tempfile::tempdir().unwrap();
        NodeContent::new()
            .node_class("DevNode")
            .requirements("tinynum")
            .write_to(dev.path(), "my-dev-node");
        assert!(
            fs_err::read_to_string(dev.path().join("__init__.py"))
                .unwrap()
                .contains("\"DevNode (my-dev-node)\"")
        );
        assert_eq!(
            fs_err::read_to_string(dev.path().join("requirements.txt")).unwrap(),
            "tinynum\n"
        );
    }
}
