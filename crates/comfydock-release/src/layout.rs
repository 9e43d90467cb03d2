//! Where things are in a release repository: the fixed paths every module (and error message)
//! refers to (the `repo` module reads the repository they describe).

/// The root pyproject of the meta package.
pub const META_PYPROJECT: &str = "pyproject.toml";
/// The folder holding one sub-package per sub-folder.
pub const PACKAGES_DIR: &str = "packages";
/// The folder holding the template workflows, their thumbnails and the index.
pub const TEMPLATES_DIR: &str = "templates";
/// The template index, relative to the repository root.
pub const INDEX_FILE: &str = "templates/index.json";
/// The bundle → template names map, relative to the repository root.
pub const BUNDLES_FILE: &str = "bundles.json";
/// The folder of sample inputs referenced by templates.
pub const INPUT_DIR: &str = "input";
