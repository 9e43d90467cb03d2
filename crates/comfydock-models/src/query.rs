//! Read-side operations on the index: list, find, show, duplicates, verify, and sha256 on demand.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::folders::folder_key;
use crate::hashing::{HashKinds, hash_file};
use crate::index::{
    IndexError, Location, ModelIndex, ModelRecord, Source, SourceKind, from_sql_u64, root_key,
    sources_of_model,
};
use crate::scan::error_chain;

/// Shortest hash prefix accepted as a model id.
pub const MIN_PREFIX_LEN: usize = 8;

/// Models whose blake3 or another hash (sha256) starts with `?1`: a range of the blake3 index
/// and one of the hash-value index.
const PREFIX_SQL: &str = "SELECT id FROM models WHERE blake3 >= ?1 AND blake3 < ?1 || 'g'
    UNION SELECT model_id FROM model_hashes WHERE hash_value >= ?1 AND hash_value < ?1 || 'g'
    ORDER BY 1";

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
    /// Every model, in first-seen order (read in one pass; see [`ModelIndex::visit_models`]).
    pub fn list(&self) -> Result<Vec<ModelRecord>, IndexError> {
        self.collect_models(None)
    }

    fn records(&self, ids: Vec<i64>) -> Result<Vec<ModelRecord>, IndexError> {
        ids.into_iter()
            .filter_map(|id| self.model(id).transpose())
            .collect()
    }

    /// Models with a location matching `query`, in first-seen order; the filter runs in SQL.
    pub fn find(&self, query: &FindQuery) -> Result<Vec<ModelRecord>, IndexError> {
        self.collect_models(Some(query))
    }

    fn collect_models(&self, query: Option<&FindQuery>) -> Result<Vec<ModelRecord>, IndexError> {
        let mut models = Vec::new();
        self.visit_models(query, |model| {
            models.push(model);
            ControlFlow::Continue(())
        })?;
        Ok(models)
    }

    /// Hand every model (`None`), or those with a location matching `query`, to `visit` one at
    /// a time in first-seen order, each with all its locations and sources, until `visit`
    /// breaks. Two statements read the whole index (models joined with their sha256 and
    /// locations; sources in the same order), so the first model arrives before the last is
    /// read and memory does not grow with the index. Returns how many models were visited.
    pub fn visit_models(
        &self,
        query: Option<&FindQuery>,
        mut visit: impl FnMut(ModelRecord) -> ControlFlow<()>,
    ) -> Result<u64, IndexError> {
        let filter = query.map(LocationFilter::new);
        let sql = ModelSql::new(filter.as_ref());
        let params = filter.as_ref().map(LocationFilter::params).unwrap_or_default();
        let conn = self.connection();
        let mut read = || -> rusqlite::Result<u64> {
            let mut source_statement = sql
                .sources
                .as_deref()
                .map(|sql| conn.prepare_cached(sql))
                .transpose()?;
            let mut sources = match source_statement.as_mut() {
                Some(statement) => Some(
                    statement
                        .query_map(rusqlite::params_from_iter(&params), SourceRow::read)?
                        .peekable(),
                ),
                None => None,
            };
            let mut model_statement = conn.prepare_cached(&sql.models)?;
            let mut rows = model_statement.query(rusqlite::params_from_iter(&params))?;
            let mut visited = 0;
            let mut current: Option<ModelRecord> = None;
            let mut finish = |mut model: ModelRecord| -> rusqlite::Result<ControlFlow<()>> {
                if filter.as_ref().is_some_and(|filter| !filter.matches(&model)) {
                    return Ok(ControlFlow::Continue(()));
                }
                model.sources = match sources.as_mut() {
                    Some(cursor) => take_sources(cursor, (model.first_seen, model.id))?,
                    None => sources_of_model(conn, model.id)?,
                };
                visited += 1;
                Ok(visit(model))
            };
            while let Some(row) = rows.next()? {
                let id: i64 = row.get(0)?;
                if current.as_ref().is_none_or(|model| model.id != id) {
                    if let Some(done) = current.take()
                        && finish(done)?.is_break()
                    {
                        return Ok(visited);
                    }
                    current = Some(ModelRecord {
                        id,
                        first_seen: row.get(1)?,
                        blake3: row.get(2)?,
                        size: from_sql_u64(row.get(3)?),
                        sha256: row.get(4)?,
                        locations: Vec::new(),
                        sources: Vec::new(),
                    });
                }
                if let (Some(model), Some(root)) = (current.as_mut(), row.get::<_, Option<String>>(5)?) {
                    model.locations.push(Location {
                        root: PathBuf::from(root),
                        relative_path: row.get(6)?,
                        folder: row.get(7)?,
                        size: from_sql_u64(row.get(8)?),
                        mtime_ns: row.get(9)?,
                        inode: from_sql_u64(row.get(10)?),
                        last_seen: row.get(11)?,
                    });
                }
            }
            if let Some(done) = current.take() {
                let _ = finish(done)?;
            }
            Ok(visited)
        };
        read().map_err(self.query_error())
    }

    /// Look a model up by hash prefix or path.
    pub fn resolve(&self, id: &ModelId) -> Result<ModelRecord, LookupError> {
        let ids = match id {
            ModelId::HashPrefix(prefix) => {
                let mut ids = self.ids(PREFIX_SQL, [prefix])?;
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
            let mut names: Vec<&str> = model.locations.iter().map(Location::file_name).collect();
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
                        .map_or_else(|| PathBuf::from(&model.blake3), Location::path),
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

/// A `model find` filter as SQL sees it: the text lower-cased, the folder as its key.
struct LocationFilter {
    text: Option<String>,
    folder: Option<String>,
}

impl LocationFilter {
    fn new(query: &FindQuery) -> Self {
        Self {
            text: query.text.as_deref().map(str::to_lowercase),
            folder: query
                .folder
                .as_deref()
                .map(|folder| folder_key(folder).to_owned()),
        }
    }

    /// The SQL condition on `locations` and its parameters, in order. `LIKE` folds ASCII case
    /// only, so a path with any other character (more bytes than characters) is also selected
    /// and decided by [`LocationFilter::matches`] (Unicode lower case, as before the filter
    /// moved to SQL).
    fn condition(&self) -> String {
        let mut parts = Vec::new();
        if self.text.is_some() {
            parts.push(
                "(relative_path LIKE ? ESCAPE '\\' OR length(relative_path) < octet_length(relative_path))",
            );
        }
        if self.folder.is_some() {
            parts.push("folder = ?");
        }
        if parts.is_empty() {
            "1".to_owned()
        } else {
            parts.join(" AND ")
        }
    }

    fn params(&self) -> Vec<String> {
        let pattern = self.text.as_ref().map(|text| {
            let mut pattern = String::from("%");
            for c in text.chars() {
                if matches!(c, '%' | '_' | '\\') {
                    pattern.push('\\');
                }
                pattern.push(c);
            }
            pattern.push('%');
            pattern
        });
        pattern.into_iter().chain(self.folder.clone()).collect()
    }

    /// Whether one of the model's locations matches (the exact rule).
    fn matches(&self, model: &ModelRecord) -> bool {
        model.locations.iter().any(|location| {
            self.text
                .as_ref()
                .is_none_or(|text| location.relative_path.to_lowercase().contains(text.as_str()))
                && self
                    .folder
                    .as_ref()
                    .is_none_or(|folder| location.folder.as_deref() == Some(folder.as_str()))
        })
    }
}

/// The statements of [`ModelIndex::visit_models`], both ordered by (first_seen, id).
struct ModelSql {
    /// One row per (model, location): the model, its sha256 and the location (NULLs if none).
    models: String,
    /// `first_seen, model_id, url, kind, added_at` of every model's sources, read alongside
    /// `models`. `None` for a filtered query: its few models get theirs by id
    /// ([`crate::index::MODEL_SOURCES_SQL`]) rather than by a second pass over `locations`.
    sources: Option<String>,
}

impl ModelSql {
    fn new(filter: Option<&LocationFilter>) -> Self {
        const COLUMNS: &str = "m.id, m.first_seen, m.blake3, m.size, h.hash_value,
            l.root, l.relative_path, l.folder, l.size, l.mtime_ns, l.inode, l.last_seen";
        const JOINS: &str = "LEFT JOIN model_hashes h ON h.model_id = m.id AND h.hash_type = 'sha256'
            LEFT JOIN locations l ON l.model_id = m.id";
        const ORDER: &str = "ORDER BY m.first_seen, m.id, l.root, l.relative_path";
        const SOURCES: &str = "SELECT m.first_seen, s.model_id, s.url, s.kind, s.added_at
            FROM sources s JOIN models m ON m.id = s.model_id";
        const SOURCES_ORDER: &str = "ORDER BY m.first_seen, s.model_id, s.id";
        match filter {
            None => Self {
                models: format!("SELECT {COLUMNS} FROM models m {JOINS} {ORDER}"),
                sources: Some(format!("{SOURCES} {SOURCES_ORDER}")),
            },
            Some(filter) => {
                // The matching models first (an index or one pass over `locations`), then each
                // looked up by id; CROSS JOIN keeps that order.
                let hits = format!(
                    "WITH hits(id) AS (SELECT DISTINCT model_id FROM locations WHERE {})",
                    filter.condition()
                );
                Self {
                    models: format!(
                        "{hits} SELECT {COLUMNS} FROM hits CROSS JOIN models m ON m.id = hits.id {JOINS} {ORDER}"
                    ),
                    sources: None,
                }
            }
        }
    }
}

/// A row of [`ModelSql::sources`].
struct SourceRow {
    first_seen: i64,
    model_id: i64,
    source: Source,
}

impl SourceRow {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            first_seen: row.get(0)?,
            model_id: row.get(1)?,
            source: Source {
                url: row.get(2)?,
                kind: SourceKind::parse(&row.get::<_, String>(3)?),
                added_at: row.get(4)?,
            },
        })
    }
}

/// The sources of the model keyed `(first_seen, id)` from a cursor in that order, skipping any
/// of earlier models (models the filter dropped).
fn take_sources(
    sources: &mut std::iter::Peekable<impl Iterator<Item = rusqlite::Result<SourceRow>>>,
    key: (i64, i64),
) -> rusqlite::Result<Vec<Source>> {
    let mut taken = Vec::new();
    while let Some(next) = sources.next_if(|row| {
        row.as_ref()
            .is_ok_and(|row| (row.first_seen, row.model_id) <= key)
    }) {
        let row = next?;
        if (row.first_seen, row.model_id) == key {
            taken.push(row.source);
        }
    }
    if let Some(Err(_)) = sources.peek()
        && let Some(Err(error)) = sources.next()
    {
        return Err(error);
    }
    Ok(taken)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::MODEL_SOURCES_SQL;

    /// The `detail` column of `EXPLAIN QUERY PLAN sql`, one line per step.
    fn plan(index: &ModelIndex, sql: &str, params: &[String]) -> Vec<String> {
        let mut statement = index
            .connection()
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        statement
            .query_map(rusqlite::params_from_iter(params), |row| row.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    fn index() -> (tempfile::TempDir, ModelIndex) {
        let dir = tempfile::tempdir().unwrap();
        let index = ModelIndex::open(&dir.path().join("index.db")).unwrap();
        (dir, index)
    }

    /// No step reads a whole table except where `allowed` says so, and nothing is sorted.
    fn assert_indexed(what: &str, steps: &[String], allowed_scans: &[&str]) {
        for step in steps {
            if step.starts_with("SCAN") {
                assert!(
                    allowed_scans.contains(&step.as_str()),
                    "{what}: unexpected `{step}` in {steps:#?}"
                );
            }
        }
    }

    #[test]
    fn list_reads_models_in_order_from_indexes_without_sorting() {
        let (_dir, index) = index();
        let list = ModelSql::new(None);
        let steps = plan(&index, &list.models, &[]);
        assert_eq!(
            steps,
            [
                "SCAN m USING INDEX idx_models_first_seen",
                "SEARCH h USING INDEX sqlite_autoindex_model_hashes_2 (model_id=? AND hash_type=?) LEFT-JOIN",
                "SEARCH l USING INDEX idx_locations_model_path (model_id=?) LEFT-JOIN",
            ],
            "one pass over the first-seen index; every other row is looked up by model id"
        );
        // Sources are few; they are read once, each model looked up by id.
        let steps = plan(&index, list.sources.as_deref().unwrap(), &[]);
        assert_indexed("list sources", &steps, &["SCAN s USING INDEX idx_sources_model"]);
        assert!(
            steps
                .iter()
                .any(|s| s == "SEARCH m USING INTEGER PRIMARY KEY (rowid=?)"),
            "{steps:#?}"
        );
    }

    #[test]
    fn find_looks_models_up_by_id_and_folders_by_index() {
        let (_dir, index) = index();
        let by_folder = LocationFilter::new(&FindQuery {
            text: None,
            folder: Some("unet".into()),
        });
        let by_text = LocationFilter::new(&FindQuery {
            text: Some("SDXL".into()),
            folder: None,
        });
        let both = LocationFilter::new(&FindQuery {
            text: Some("sdxl".into()),
            folder: Some("checkpoints".into()),
        });
        assert_eq!(by_folder.params(), ["diffusion_models"]);
        assert_eq!(by_text.params(), ["%sdxl%"]);
        for (what, filter) in [("folder", &by_folder), ("text", &by_text), ("both", &both)] {
            let sql = ModelSql::new(Some(filter));
            let steps = plan(&index, &sql.models, &filter.params());
            // A substring can only be found by reading every path; it reads the narrow
            // (model_id, root, relative_path) index, never the tables.
            let allowed: &[&str] = if filter.folder.is_some() {
                &["SCAN hits"]
            } else {
                &[
                    "SCAN hits",
                    "SCAN locations USING COVERING INDEX idx_locations_model_path",
                ]
            };
            assert_indexed(what, &steps, allowed);
            for expected in [
                "SEARCH m USING INTEGER PRIMARY KEY (rowid=?)",
                "SEARCH h USING INDEX sqlite_autoindex_model_hashes_2 (model_id=? AND hash_type=?) LEFT-JOIN",
                "SEARCH l USING INDEX idx_locations_model_path (model_id=?) LEFT-JOIN",
            ] {
                assert!(
                    steps.iter().any(|s| s == expected),
                    "{what}: no `{expected}` in {steps:#?}"
                );
            }
            if filter.folder.is_some() {
                assert!(
                    steps
                        .iter()
                        .any(|s| s == "SEARCH locations USING INDEX idx_locations_folder (folder=?)"),
                    "{what}: {steps:#?}"
                );
            }
            assert!(sql.sources.is_none(), "{what}: sources are read by model id");
        }
        let steps = plan(&index, MODEL_SOURCES_SQL, &["1".to_owned()]);
        assert_indexed("sources of a model", &steps, &[]);
        assert!(
            steps
                .iter()
                .any(|s| s == "SEARCH sources USING INDEX idx_sources_model (model_id=?)"),
            "{steps:#?}"
        );
    }

    #[test]
    fn a_hash_prefix_is_a_range_search() {
        let (_dir, index) = index();
        let steps = plan(&index, PREFIX_SQL, &["abcdef12".to_owned()]);
        assert_indexed("prefix", &steps, &[]);
        for index in [
            "SEARCH models USING COVERING INDEX sqlite_autoindex_models_1",
            "SEARCH model_hashes USING INDEX idx_model_hashes_value",
        ] {
            assert!(
                steps.iter().any(|s| s.starts_with(index)),
                "no `{index}` in {steps:#?}"
            );
        }
    }

    #[test]
    fn a_non_ascii_path_matches_by_unicode_lower_case() {
        let filter = LocationFilter::new(&FindQuery {
            text: Some("ÄRGER".into()),
            folder: None,
        });
        let model = |relative_path: &str| ModelRecord {
            id: 1,
            blake3: "b3".into(),
            sha256: None,
            size: 1,
            first_seen: 0,
            locations: vec![Location {
                root: PathBuf::from("/m"),
                relative_path: relative_path.into(),
                folder: None,
                size: 1,
                mtime_ns: 0,
                inode: 0,
                last_seen: 0,
            }],
            sources: Vec::new(),
        };
        assert!(filter.matches(&model("loras/Ärger.safetensors")));
        assert!(!filter.matches(&model("loras/arger.safetensors")));
    }
}
