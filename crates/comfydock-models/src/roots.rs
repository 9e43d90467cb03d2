//! Model roots: the folders models live in, and the small JSON file that lists them.
//!
//! A root is either a ComfyUI-style `models/` folder (`checkpoints/`, `loras/`, ... below it) or,
//! when imported from another UI's `extra_model_paths.yaml`, a base folder with an explicit
//! folder-key → directories mapping (`checkpoints: models/Stable-diffusion`). The first root is
//! the default: downloads go there and ComfyUI lists it first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::folders::COMFYUI_FOLDERS;

/// One folder of models.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRoot {
    /// Absolute base folder.
    pub path: PathBuf,
    /// Folder key → directories (relative to `path`, or absolute). Empty means the standard
    /// ComfyUI layout: every key is the directory of the same name (plus legacy names).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub folders: BTreeMap<String, Vec<PathBuf>>,
}

impl ModelRoot {
    /// A root with the standard ComfyUI `models/` layout.
    pub fn standard(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            folders: BTreeMap::new(),
        }
    }

    /// Whether this root uses the standard layout.
    pub fn is_standard(&self) -> bool {
        self.folders.is_empty()
    }

    /// The directories to walk, each with the folder key its files belong to (`None`: derive
    /// the key from the first path component below the root).
    pub fn scan_dirs(&self) -> Vec<(PathBuf, Option<String>)> {
        if self.is_standard() {
            return vec![(self.path.clone(), None)];
        }
        self.folders
            .iter()
            .flat_map(|(key, dirs)| {
                dirs.iter()
                    .map(move |dir| (self.path.join(dir), Some(key.clone())))
            })
            .collect()
    }

    /// Every folder key with its directories as ComfyUI should see them.
    pub fn folder_dirs(&self) -> Vec<(String, Vec<PathBuf>)> {
        if self.is_standard() {
            COMFYUI_FOLDERS
                .iter()
                .map(|(key, dirs)| ((*key).to_owned(), dirs.iter().map(PathBuf::from).collect()))
                .collect()
        } else {
            self.folders
                .iter()
                .map(|(key, dirs)| (key.clone(), dirs.clone()))
                .collect()
        }
    }
}

/// Reading or writing the roots file failed, or a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum RootsError {
    #[error("Cannot read the model roots file `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("The model roots file `{path}` is not valid JSON")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("Cannot write the model roots file `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{0}` is already a model root")]
    AlreadyPresent(PathBuf),
    #[error("`{0}` is not a model root")]
    NotPresent(PathBuf),
    #[error("A model root must be an absolute path, got `{0}`")]
    NotAbsolute(PathBuf),
    #[error("Cannot remove `{0}`: it is the last model root")]
    LastRoot(PathBuf),
}

impl comfydock_foundation::Hinted for RootsError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::NotPresent(_) => Some("run `comfydock model root list` to see the roots".to_owned()),
            Self::Parse { path, .. } => Some(format!(
                "fix the JSON in `{}`, or remove it to fall back to the workspace `models/` folder",
                path.display()
            )),
            Self::LastRoot(_) => {
                Some("add another root first with `comfydock model root add PATH`".to_owned())
            }
            _ => None,
        }
    }
}

/// The ordered list of model roots; the first one is the default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRoots {
    pub roots: Vec<ModelRoot>,
}

impl ModelRoots {
    /// Load `file`; if it does not exist, the only root is `default_root` (the workspace `models/`).
    pub fn load_or_default(file: &Path, default_root: &Path) -> Result<Self, RootsError> {
        match fs_err::read_to_string(file) {
            Ok(text) => serde_json::from_str(&text).map_err(|source| RootsError::Parse {
                path: file.to_owned(),
                source,
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Self {
                roots: vec![ModelRoot::standard(default_root)],
            }),
            Err(source) => Err(RootsError::Read {
                path: file.to_owned(),
                source,
            }),
        }
    }

    /// Write the list atomically.
    pub fn save(&self, file: &Path) -> Result<(), RootsError> {
        let write_error = |source| RootsError::Write {
            path: file.to_owned(),
            source,
        };
        if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs_err::create_dir_all(parent).map_err(write_error)?;
        }
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        comfydock_foundation::atomic_file::write_atomic(file, text).map_err(write_error)
    }

    /// Append a root (or make it the default with `as_default`).
    pub fn add(&mut self, root: ModelRoot, as_default: bool) -> Result<(), RootsError> {
        if !root.path.is_absolute() {
            return Err(RootsError::NotAbsolute(root.path));
        }
        if self.find(&root.path).is_some() {
            return Err(RootsError::AlreadyPresent(root.path));
        }
        if as_default {
            self.roots.insert(0, root);
        } else {
            self.roots.push(root);
        }
        Ok(())
    }

    /// Remove a root by path. Call [`crate::index::ModelIndex::forget_root`] to drop its
    /// locations from the index (models, hashes and sources stay).
    pub fn remove(&mut self, path: &Path) -> Result<ModelRoot, RootsError> {
        let position = self
            .find(path)
            .ok_or_else(|| RootsError::NotPresent(path.to_owned()))?;
        if self.roots.len() == 1 {
            return Err(RootsError::LastRoot(path.to_owned()));
        }
        Ok(self.roots.remove(position))
    }

    fn find(&self, path: &Path) -> Option<usize> {
        self.roots.iter().position(|root| root.path == path)
    }

    /// The root downloads go to.
    pub fn default_root(&self) -> Option<&ModelRoot> {
        self.roots.first()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_add_remove_save_load() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".metadata/model_roots.json");
        let models = dir.path().join("models");
        let mut roots = ModelRoots::load_or_default(&file, &models).unwrap();
        assert_eq!(roots.roots, vec![ModelRoot::standard(&models)]);

        let extra = dir.path().join("library");
        roots.add(ModelRoot::standard(&extra), false).unwrap();
        assert!(matches!(
            roots.add(ModelRoot::standard(&extra), false),
            Err(RootsError::AlreadyPresent(_))
        ));
        assert!(matches!(
            roots.add(ModelRoot::standard("relative"), false),
            Err(RootsError::NotAbsolute(_))
        ));
        roots.save(&file).unwrap();
        let loaded = ModelRoots::load_or_default(&file, &models).unwrap();
        assert_eq!(loaded, roots);

        roots.remove(&models).unwrap();
        assert_eq!(roots.default_root().unwrap().path, extra);
        assert!(matches!(roots.remove(&extra), Err(RootsError::LastRoot(_))));
        assert!(matches!(roots.remove(&models), Err(RootsError::NotPresent(_))));
    }

    #[test]
    fn scan_dirs_of_mapped_root() {
        let mut root = ModelRoot::standard("/a1111");
        assert_eq!(root.scan_dirs(), vec![(PathBuf::from("/a1111"), None)]);
        root.folders.insert(
            "loras".to_owned(),
            vec!["models/Lora".into(), "models/LyCORIS".into()],
        );
        assert_eq!(
            root.scan_dirs(),
            vec![
                (PathBuf::from("/a1111/models/Lora"), Some("loras".to_owned())),
                (PathBuf::from("/a1111/models/LyCORIS"), Some("loras".to_owned())),
            ]
        );
    }
}
