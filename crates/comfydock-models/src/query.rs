//! Read-side operations on the index: list, find, show, duplicates, verify, and sha256 on demand.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::folders::folder_key;
use crate::hashing::{HashKinds, hash_file};
use crate::index::{IndexError, ModelIndex, ModelRecord, root_key};
use crate::scan::error_chain;

/// Shortest hash prefix accepted as a model id.
pub const MIN_PREFIX_LEN: usize = 8;

/// How a user names a model on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelId {
    /// A blake3 or sha256 prefix (8+ hex digits, lower-cased).
    HashPrefix(String),
    /// A file path (absolute, or relative to the current folder).
    Path(PathBuf),
}

impl ModelId {
    /// 8+ hex digits with no path separator is a hash prefix (a `blake3:`/`sha256:` tag is
    /// allowed); anything else is a path.
    pub fn parse(text: &str) -> Self {
        let bare = text
            .strip_prefix("blake3:")
            .or_else(|| text.strip_prefix("sha256:"))
            .unwrap_or(text);
        if bare.len() >= MIN_PREFIX_LEN && bare.chars().all(|c| c.is_ascii_hexdigit()) {
            Self::HashPrefix(bare.to_ascii_lowercase())
        } else {
            Self::Path(PathBuf::from(text))
        }
    }
}

/// A model could not be looked up.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("No indexed model matches `{0}`")]
    NotFound(String),
    #[error("`{prefix}` matches {} models: {}", candidates.len(), candidates.join(", "))]
    Ambiguous { prefix: String, candidates: Vec<String> },
    #[error(transparent)]
    Index(#[from] IndexError),
}

impl comfydock_foundation::Hinted for LookupError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::NotFound(_) => Some(
                "run `comfydock model scan` to index new files, or `comfydock model list` to see ids"
                    .to_owned(),
            ),
            Self::Ambiguous { prefix, .. } => Some(format!("use a longer prefix than `{prefix}`")),
            Self::Index(err) => comfydock_foundation::Hinted::hint(err),
        }
    }
}

/// Filters for `model find`; all given filters must match.
#[derive(Debug, Clone, Default)]
pub struct FindQuery {
    /// Case-insensitive substring of a location's relative path.
    pub text: Option<String>,
    /// Folder key; legacy names (`unet`, `clip`) are accepted.
    pub folder: Option<String>,
}

/// Models that share content or a file name.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DuplicateReport {
    /// One model stored at several locations (copies, not links, waste space).
    pub same_content: Vec<ModelRecord>,
    /// One file name used by models with different content.
    pub same_name: Vec<NameClash>,
}

/// Different models with the same file name.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NameClash {
    pub file_name: String,
    pub models: Vec<ModelRecord>,
}

/// The result of re-hashing one location.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum VerifyStatus {
    Ok,
    /// The content no longer hashes to the indexed blake3.
    Changed {
        actual_blake3: String,
        actual_size: u64,
    },
    Missing,
    Unreadable {
        message: String,
    },
}

/// One verified location.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifyEntry {
    pub blake3: String,
    pub path: PathBuf,
    #[serde(flatten)]
    pub status: VerifyStatus,
}

/// What `model verify` found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    pub entries: Vec<VerifyEntry>,
    pub bytes_read: u64,
}

impl VerifyReport {
    /// Whether every location still matches.
    pub fn is_clean(&self) -> bool {
        self.entries.iter().all(|entry| entry.status == VerifyStatus::Ok)
    }
}

/// What `model hash --sha256` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Sha256Report {
    /// `(blake3, sha256)` of every model that now has a sha256 (already known ones included).
    pub hashes: Vec<(String, String)>,
    pub bytes_read: u64,
    /// Models that could not be hashed (no readable location, or drifted content).
    pub errors: Vec<crate::scan::ScanIssue>,
}

impl ModelIndex {
    /// Every model, in first-seen order.
    pub fn list(&self) -> Result<Vec<ModelRecord>, IndexError> {
        self.records(self.model_ids()?)
    }

    fn records(&self, ids: Vec<i64>) -> Result<Vec<ModelRecord>, IndexError> {
        ids.into_iter()
            .filter_map(|id| self.model(id).transpose())
            .collect()
    }

    /// Models with a location matching `query`.
    pub fn find(&self, query: &FindQuery) -> Result<Vec<ModelRecord>, IndexError> {
        let text = query.text.as_deref().map(str::to_lowercase);
        let folder = query.folder.as_deref().map(folder_key);
        let mut found = self.list()?;
        found.retain(|model| {
            model.locations.iter().any(|location| {
                text.as_ref()
                    .is_none_or(|text| location.relative_path.to_lowercase().contains(text.as_str()))
                    && folder.is_none_or(|folder| location.folder.as_deref() == Some(folder))
            })
        });
        Ok(found)
    }

    /// Look a model up by hash prefix or path.
    pub fn resolve(&self, id: &ModelId) -> Result<ModelRecord, LookupError> {
        let ids = match id {
            ModelId::HashPrefix(prefix) => {
                let mut ids = self.ids(
                    "SELECT DISTINCT model_id FROM model_hashes
                     WHERE hash_value >= ?1 AND hash_value < ?1 || 'g' ORDER BY model_id",
                    [prefix],
                )?;
                ids.dedup();
                if ids.len() > 1 {
                    let candidates = self
                        .records(ids)?
                        .into_iter()
                        .map(|model| {
                            comfydock_foundation::display_text::truncate(&model.blake3, 16).to_owned()
                        })
                        .collect();
                    return Err(LookupError::Ambiguous {
                        prefix: prefix.clone(),
                        candidates,
                    });
                }
                ids
            }
            ModelId::Path(path) => self.ids_at_path(path)?,
        };
        let display = match id {
            ModelId::HashPrefix(prefix) => prefix.clone(),
            ModelId::Path(path) => path.display().to_string(),
        };
        match ids.first() {
            Some(&model) => self.model(model)?.ok_or(LookupError::NotFound(display)),
            None => Err(LookupError::NotFound(display)),
        }
    }

    fn ids_at_path(&self, path: &Path) -> Result<Vec<i64>, IndexError> {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let mut candidates = vec![absolute];
        if let Ok(canonical) = fs_err::canonicalize(path) {
            candidates.push(canonical);
        }
        let roots = self.roots()?;
        for candidate in &candidates {
            for root in &roots {
                let Ok(relative) = candidate.strip_prefix(root) else {
                    continue;
                };
                let relative: Vec<String> = relative
                    .components()
                    .map(|part| part.as_os_str().to_string_lossy().into_owned())
                    .collect();
                let ids = self.ids(
                    "SELECT model_id FROM locations WHERE root = ?1 AND relative_path = ?2",
                    [root_key(root), relative.join("/")],
                )?;
                if !ids.is_empty() {
                    return Ok(ids);
                }
            }
        }
        Ok(Vec::new())
    }

    fn roots(&self) -> Result<Vec<PathBuf>, IndexError> {
        let mut statement = self
            .connection()
            .prepare_cached("SELECT DISTINCT root FROM locations")
            .map_err(self.query_error())?;
        statement
            .query_map([], |row| Ok(PathBuf::from(row.get::<_, String>(0)?)))
            .map_err(self.query_error())?
            .collect::<rusqlite::Result<_>>()
            .map_err(self.query_error())
    }

    /// Models at several locations, and file names shared by different models.
    pub fn duplicates(&self) -> Result<DuplicateReport, IndexError> {
        let models = self.list()?;
        let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (position, model) in models.iter().enumerate() {
            let mut names: Vec<&str> = model
                .locations
                .iter()
                .map(crate::index::Location::file_name)
                .collect();
            names.sort_unstable();
            names.dedup();
            for name in names {
                by_name.entry(name.to_owned()).or_default().push(position);
            }
        }
        let same_name = by_name
            .into_iter()
            .filter(|(_, positions)| positions.len() > 1)
            .map(|(file_name, positions)| NameClash {
                file_name,
                models: positions.into_iter().map(|p| models[p].clone()).collect(),
            })
            .collect();
        let same_content = models
            .into_iter()
            .filter(|model| model.locations.len() > 1)
            .collect();
        Ok(DuplicateReport {
            same_content,
            same_name,
        })
    }

    /// Re-hash every location of `models` (pass [`ModelIndex::list`] for all) and report drift.
    pub fn verify(&self, models: &[ModelRecord]) -> VerifyReport {
        let jobs: Vec<(&str, PathBuf)> = models
            .iter()
            .flat_map(|model| {
                model
                    .locations
                    .iter()
                    .map(move |location| (model.blake3.as_str(), location.path()))
            })
            .collect();
        let results: Vec<(VerifyEntry, u64)> = jobs
            .par_iter()
            .map(|(blake3, path)| {
                let (status, read) = if path.exists() {
                    match hash_file(path, HashKinds::Blake3) {
                        Ok(digest) if digest.blake3 == *blake3 => (VerifyStatus::Ok, digest.size),
                        Ok(digest) => (
                            VerifyStatus::Changed {
                                actual_blake3: digest.blake3,
                                actual_size: digest.size,
                            },
                            digest.size,
                        ),
                        Err(err) => (
                            VerifyStatus::Unreadable {
                                message: error_chain(&err),
                            },
                            0,
                        ),
                    }
                } else {
                    (VerifyStatus::Missing, 0)
                };
                (
                    VerifyEntry {
                        blake3: (*blake3).to_owned(),
                        path: path.clone(),
                        status,
                    },
                    read,
                )
            })
            .collect();
        let mut report = VerifyReport::default();
        for (entry, read) in results {
            report.bytes_read += read;
            report.entries.push(entry);
        }
        report
    }

    /// Make sure `models` (pass [`ModelIndex::list`] for all) have a stored sha256, reading each
    /// file at most once. The blake3 is checked in the same read, so a drifted file never gets a
    /// wrong sha256.
    pub fn ensure_sha256(&mut self, models: &[ModelRecord]) -> Result<Sha256Report, IndexError> {
        let mut report = Sha256Report::default();
        let missing: Vec<&ModelRecord> = models.iter().filter(|m| m.sha256.is_none()).collect();
        for model in models {
            if let Some(sha256) = &model.sha256 {
                report.hashes.push((model.blake3.clone(), sha256.clone()));
            }
        }
        let results: Vec<(&ModelRecord, Sha256Outcome)> = missing
            .par_iter()
            .map(|model| (*model, sha256_of(model)))
            .collect();
        let mut found = Vec::new();
        for (model, result) in results {
            match result {
                Ok((sha256, read)) => {
                    report.bytes_read += read;
                    found.push((model.id, model.blake3.clone(), sha256));
                }
                Err(message) => report.errors.push(crate::scan::ScanIssue {
                    path: model
                        .locations
                        .first()
                        .map_or_else(|| PathBuf::from(&model.blake3), crate::index::Location::path),
                    message,
                }),
            }
        }
        self.batch(|tx| {
            for (id, _, sha256) in &found {
                tx.set_hash(*id, "sha256", sha256)?;
            }
            Ok(())
        })?;
        report
            .hashes
            .extend(found.into_iter().map(|(_, blake3, sha256)| (blake3, sha256)));
        Ok(report)
    }
}

/// The sha256 and bytes read, or why none could be computed.
type Sha256Outcome = Result<(String, u64), String>;

/// Hash the first readable location whose content still matches the model.
fn sha256_of(model: &ModelRecord) -> Sha256Outcome {
    let mut last_error = format!(
        "model {} has no location on disk",
        comfydock_foundation::display_text::truncate(&model.blake3, 16)
    );
    let mut read = 0;
    for location in &model.locations {
        match hash_file(&location.path(), HashKinds::Blake3AndSha256) {
            Ok(digest) if digest.blake3 == model.blake3 => {
                return Ok((digest.sha256.unwrap_or_default(), read + digest.size));
            }
            Ok(digest) => {
                read += digest.size;
                last_error = format!(
                    "`{}` changed since it was indexed; run `comfydock model scan`",
                    location.path().display()
                );
            }
            Err(err) => last_error = error_chain(&err),
        }
    }
    Err(last_error)
}
