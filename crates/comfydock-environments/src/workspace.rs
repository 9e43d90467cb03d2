//! The workspace: a folder holding environments, the shared model root, caches and logs.
//!
//! ```text
//! <root>/.metadata/workspace.json    schema version, active environment, settings (written last)
//! <root>/.metadata/credentials.json  tokens, mode 0600
//! <root>/environments/ models/ cache/ logs/ tools/
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::settings::{self, Settings, SettingsError};
use comfydock_foundation::Hinted;
use comfydock_foundation::atomic_file::{write_atomic, write_atomic_with_mode};
use comfydock_foundation::env_vars;

/// The `workspace.json` schema this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;
/// Folder names at the workspace root; environments may not take these names.
pub const RESERVED_NAMES: &[&str] = &[
    ".metadata",
    "environments",
    "models",
    "cache",
    "logs",
    "tools",
    "trash",
];

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("No workspace at `{path}` (from {origin})")]
    NotFound { path: PathBuf, origin: &'static str },
    #[error("`{0}` is a file, not a folder")]
    IsAFile(PathBuf),
    #[error("`{0}` is not empty and is not a comfydock workspace")]
    NotEmpty(PathBuf),
    #[error("Failed to parse `{path}` at line {line}, column {column}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        column: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("`{path}` has schema version {found}; this comfydock reads up to {SCHEMA_VERSION}")]
    NewerSchema { path: PathBuf, found: u32 },
    #[error("Cannot find a home folder to place the default workspace in")]
    NoHome,
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Hinted for WorkspaceError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::NotFound { path, .. } => Some(format!(
                "create one with `comfydock init {}`, or point to an existing one with `--workspace PATH` or `{}`",
                path.display(),
                env_vars::COMFYDOCK_HOME
            )),
            Self::NotEmpty(path) => Some(format!(
                "choose an empty folder, or run `comfydock init --force {}` to make a workspace here anyway",
                path.display()
            )),
            Self::Corrupt { path, .. } => Some(format!(
                "fix the JSON in `{}` by hand; comfydock will not overwrite it",
                path.display()
            )),
            Self::NoHome => Some(format!(
                "set `{}` or pass `--workspace PATH`",
                env_vars::COMFYDOCK_HOME
            )),
            Self::Settings(e) => e.hint(),
            _ => None,
        }
    }
}

/// The contents of `.metadata/workspace.json`. Unknown fields survive a load/save.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkspaceFile {
    pub schema_version: u32,
    #[serde(default)]
    pub active_environment: Option<String>,
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Default for WorkspaceFile {
    fn default() -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            active_environment: None,
            settings: BTreeMap::new(),
            extra: serde_json::Map::new(),
        }
    }
}

/// What `init` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitOutcome {
    Created,
    AlreadyExists,
}

/// How the workspace root was chosen, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootOrigin {
    Flag,
    Env,
    Default,
}

impl RootOrigin {
    fn describe(self) -> &'static str {
        match self {
            Self::Flag => "--workspace",
            Self::Env => "COMFYDOCK_HOME",
            Self::Default => "the default location",
        }
    }
}

/// An opened workspace.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
    file: WorkspaceFile,
    credentials: BTreeMap<String, String>,
}

impl Workspace {
    /// Pick the workspace root: `--workspace` > `COMFYDOCK_HOME` > `~/comfydock`.
    pub fn locate(flag: Option<&Path>) -> Result<(PathBuf, RootOrigin), WorkspaceError> {
        if let Some(path) = flag {
            return Ok((absolute(path)?, RootOrigin::Flag));
        }
        if let Some(home) = std::env::var_os(env_vars::COMFYDOCK_HOME).filter(|v| !v.is_empty()) {
            return Ok((absolute(Path::new(&home))?, RootOrigin::Env));
        }
        let home = std::env::home_dir().ok_or(WorkspaceError::NoHome)?;
        Ok((home.join("comfydock"), RootOrigin::Default))
    }

    /// Open the workspace chosen by [`Workspace::locate`].
    pub fn discover(flag: Option<&Path>) -> Result<Self, WorkspaceError> {
        let (root, origin) = Self::locate(flag)?;
        if !Self::file_path(&root).is_file() {
            return Err(WorkspaceError::NotFound {
                path: root,
                origin: origin.describe(),
            });
        }
        Self::open(&root)
    }

    /// Open the workspace at `root`.
    pub fn open(root: &Path) -> Result<Self, WorkspaceError> {
        let path = Self::file_path(root);
        let file: WorkspaceFile = read_json(&path)?;
        if file.schema_version > SCHEMA_VERSION {
            return Err(WorkspaceError::NewerSchema {
                path,
                found: file.schema_version,
            });
        }
        let credentials_path = root.join(".metadata").join("credentials.json");
        let credentials = if credentials_path.is_file() {
            read_json(&credentials_path)?
        } else {
            BTreeMap::new()
        };
        Ok(Self {
            root: root.to_path_buf(),
            file,
            credentials,
        })
    }

    /// Create a workspace at `root`. `workspace.json` is written last: it marks a complete workspace.
    pub fn init(root: &Path, force: bool) -> Result<(Self, InitOutcome), WorkspaceError> {
        let root = absolute(root)?;
        if root.exists() && !root.is_dir() {
            return Err(WorkspaceError::IsAFile(root));
        }
        if Self::file_path(&root).is_file() {
            return Ok((Self::open(&root)?, InitOutcome::AlreadyExists));
        }
        if root.is_dir() && !force && fs_err::read_dir(&root)?.next().is_some() {
            return Err(WorkspaceError::NotEmpty(root));
        }
        for dir in [".metadata", "environments", "models", "cache", "logs"] {
            fs_err::create_dir_all(root.join(dir))?;
        }
        let workspace = Self {
            root,
            file: WorkspaceFile::default(),
            credentials: BTreeMap::new(),
        };
        workspace.save()?;
        Ok((workspace, InitOutcome::Created))
    }

    fn file_path(root: &Path) -> PathBuf {
        root.join(".metadata").join("workspace.json")
    }

    /// Write `workspace.json` atomically.
    pub fn save(&self) -> Result<(), WorkspaceError> {
        let mut text = serde_json::to_string_pretty(&self.file).expect("workspace.json serialises");
        text.push('\n');
        write_atomic(&Self::file_path(&self.root), text)?;
        Ok(())
    }

    fn save_credentials(&self) -> Result<(), WorkspaceError> {
        let mut text = serde_json::to_string_pretty(&self.credentials).expect("credentials serialise");
        text.push('\n');
        write_atomic_with_mode(&self.metadata_dir().join("credentials.json"), text, Some(0o600))?;
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    /// A new folder of the workspace trash for `env`, `trash/<env>/<unix time>`: where files
    /// comfydock would otherwise overwrite or delete are moved (not created yet).
    pub fn trash_dir(&self, env: &str) -> PathBuf {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.root.join("trash").join(env).join(stamp.to_string())
    }

    pub fn metadata_dir(&self) -> PathBuf {
        self.root.join(".metadata")
    }
    pub fn environments_dir(&self) -> PathBuf {
        self.root.join("environments")
    }
    pub fn models_dir(&self) -> PathBuf {
        self.root.join("models")
    }
    /// The content-addressed model index (SQLite).
    pub fn model_index_path(&self) -> PathBuf {
        self.metadata_dir().join("model_index.db")
    }
    /// The model roots (`comfydock model root`).
    pub fn model_roots_path(&self) -> PathBuf {
        self.metadata_dir().join("model_roots.json")
    }
    /// The deploy build history (SQLite).
    pub fn builds_db_path(&self) -> PathBuf {
        self.metadata_dir().join("builds.db")
    }
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn tools_dir(&self) -> PathBuf {
        self.root.join("tools")
    }
    pub fn lock_path(&self) -> PathBuf {
        self.metadata_dir().join("workspace.lock")
    }

    pub fn active_environment(&self) -> Option<&str> {
        self.file.active_environment.as_deref()
    }

    pub fn set_active_environment(&mut self, name: Option<String>) -> Result<(), WorkspaceError> {
        self.file.active_environment = name;
        self.save()
    }

    /// The settings layers of this workspace, with the process environment and `flags`.
    pub fn settings(&self, flags: BTreeMap<String, String>) -> Settings {
        Settings {
            flags,
            env: Settings::env_snapshot(),
            config: self.file.settings.clone(),
            credentials: self.credentials.clone(),
        }
    }

    /// Validate and store a setting; secrets go to `credentials.json`.
    pub fn set_setting(&mut self, key: &str, value: &str) -> Result<String, WorkspaceError> {
        let spec = settings::key_spec(key)?;
        let value = settings::validate(spec, value)?;
        if spec.is_secret() {
            self.credentials.insert(spec.name.to_owned(), value.clone());
            self.save_credentials()?;
        } else {
            self.file.settings.insert(spec.name.to_owned(), value.clone());
            self.save()?;
        }
        Ok(value)
    }

    /// Remove a stored setting; returns whether it was set.
    pub fn unset_setting(&mut self, key: &str) -> Result<bool, WorkspaceError> {
        let spec = settings::key_spec(key)?;
        let removed = if spec.is_secret() {
            let removed = self.credentials.remove(spec.name).is_some();
            if removed {
                self.save_credentials()?;
            }
            removed
        } else {
            let removed = self.file.settings.remove(spec.name).is_some();
            if removed {
                self.save()?;
            }
            removed
        };
        Ok(removed)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, WorkspaceError> {
    let text = fs_err::read_to_string(path)?;
    serde_json::from_str(&text).map_err(|source| WorkspaceError::Corrupt {
        path: path.to_path_buf(),
        line: source.line(),
        column: source.column(),
        source,
    })
}

fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    std::path::absolute(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_twice_and_refuse_non_empty() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        assert_eq!(Workspace::init(&ws, false).unwrap().1, InitOutcome::Created);
        let before = fs_err::read(ws.join(".metadata/workspace.json")).unwrap();
        assert_eq!(Workspace::init(&ws, false).unwrap().1, InitOutcome::AlreadyExists);
        assert_eq!(before, fs_err::read(ws.join(".metadata/workspace.json")).unwrap());

        let other = dir.path().join("other");
        fs_err::create_dir(&other).unwrap();
        fs_err::write(other.join("x"), "").unwrap();
        assert!(matches!(
            Workspace::init(&other, false),
            Err(WorkspaceError::NotEmpty(_))
        ));
        assert_eq!(Workspace::init(&other, true).unwrap().1, InitOutcome::Created);
    }

    #[test]
    fn corrupt_file_names_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        Workspace::init(dir.path(), false).unwrap();
        let path = dir.path().join(".metadata/workspace.json");
        fs_err::write(&path, "{\n  \"schema_version\": 1,\n  oops\n}").unwrap();
        match Workspace::open(dir.path()).unwrap_err() {
            WorkspaceError::Corrupt { line, column, .. } => assert_eq!((line, column), (3, 3)),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn unknown_fields_survive() {
        let dir = tempfile::tempdir().unwrap();
        Workspace::init(dir.path(), false).unwrap();
        let path = dir.path().join(".metadata/workspace.json");
        fs_err::write(&path, r#"{"schema_version":1,"future":{"a":1}}"#).unwrap();
        let mut ws = Workspace::open(dir.path()).unwrap();
        ws.set_setting("registry.url", "http://localhost:1").unwrap();
        let text = fs_err::read_to_string(&path).unwrap();
        assert!(text.contains("\"future\""), "{text}");
    }
}
