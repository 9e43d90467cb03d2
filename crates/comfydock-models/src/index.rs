//! The model index: `.metadata/model_index.db`, one SQLite connection in WAL mode.
//!
//! ```text
//! models        id, blake3 (identity, unique), size, first_seen
//! model_hashes  model_id, hash_type ('sha256' | ...; blake3 only before schema 4), hash_value   PK (hash_type, hash_value)
//! locations     model_id, root, relative_path, folder, size, mtime_ns, inode, last_seen   UNIQUE (root, relative_path)
//! sources       model_id, url, kind, added_at                                 UNIQUE (model_id, url)
//! ```
//!
//! Migrations are additive steps keyed by version ([`comfydock_foundation::sqlite`] records it in
//! `PRAGMA user_version`); no step drops a table, so stored hashes and sources survive every
//! upgrade. A vanished file loses its location row only. Indexes written before that kept their
//! version in a `schema_version` table; opening one adopts that version and drops the table.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use comfydock_foundation::sqlite::{self, Migration, Schema, SqliteError};
use rusqlite::{Connection, OptionalExtension as _, Transaction, params};

use crate::hashing::FileDigest;

/// Schema steps, numbered from 1. Never edit or remove a step.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: "CREATE TABLE models (
        id INTEGER PRIMARY KEY,
        blake3 TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        first_seen INTEGER NOT NULL
    );
    CREATE TABLE model_hashes (
        model_id INTEGER NOT NULL REFERENCES models(id),
        hash_type TEXT NOT NULL,
        hash_value TEXT NOT NULL,
        PRIMARY KEY (hash_type, hash_value),
        UNIQUE (model_id, hash_type)
    );
    CREATE INDEX idx_model_hashes_value ON model_hashes(hash_value);
    CREATE TABLE locations (
        id INTEGER PRIMARY KEY,
        model_id INTEGER NOT NULL REFERENCES models(id),
        root TEXT NOT NULL,
        relative_path TEXT NOT NULL,
        folder TEXT,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        inode INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        UNIQUE (root, relative_path)
    );
    CREATE INDEX idx_locations_model ON locations(model_id);
    CREATE TABLE sources (
        id INTEGER PRIMARY KEY,
        model_id INTEGER NOT NULL REFERENCES models(id),
        url TEXT NOT NULL,
        kind TEXT NOT NULL,
        added_at INTEGER NOT NULL,
        UNIQUE (model_id, url)
    );
    CREATE INDEX idx_sources_model ON sources(model_id);",
    },
    // A rescan finds the few rows whose last_seen needs refreshing without reading them all.
    Migration {
        version: 2,
        sql: "CREATE INDEX idx_locations_root_seen ON locations(root, last_seen);",
    },
    // `model list` reads models in first-seen order with their locations in path order straight
    // from indexes (no sort, one pass), and `model find --folder` looks one folder up. The
    // (model_id, root, relative_path) index replaces the one on model_id alone.
    Migration {
        version: 3,
        sql: "CREATE INDEX idx_models_first_seen ON models(first_seen);
    CREATE INDEX idx_locations_model_path ON locations(model_id, root, relative_path);
    DROP INDEX idx_locations_model;
    CREATE INDEX idx_locations_folder ON locations(folder);",
    },
    // A model's blake3 lives in `models` (its identity, uniquely indexed); copies in
    // `model_hashes` doubled every scan's random-order index writes and a third of the file.
    // `model_hashes` keeps the other hashes (sha256); prefix look-ups search both.
    Migration {
        version: 4,
        sql: "DELETE FROM model_hashes WHERE hash_type = 'blake3';",
    },
];

/// The model index's schema, adopting the `schema_version` table of earlier indexes.
const SCHEMA: Schema<'static> = Schema::new(MIGRATIONS).with_legacy_version(legacy_schema_version);

/// The version an index written before `user_version` was used recorded in its own
/// `schema_version` table (one row per applied step); the table is dropped once read.
fn legacy_schema_version(tx: &Transaction<'_>) -> rusqlite::Result<u32> {
    let has_table: bool = tx.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
        [],
        |row| row.get(0),
    )?;
    if !has_table {
        return Ok(0);
    }
    let version: Option<u32> =
        tx.query_row("SELECT MAX(version) FROM schema_version", [], |row| row.get(0))?;
    tx.execute_batch("DROP TABLE schema_version")?;
    Ok(version.unwrap_or(0))
}

/// The page cache of a scan, in KiB (allocated only as pages are used): room for every page of
/// an index of a few hundred thousand models.
const BULK_CACHE_KIB: i64 = 256 * 1024;

/// `locations.last_seen` is refreshed by a scan only when older than this.
pub const LAST_SEEN_RESOLUTION_SECS: i64 = 3600;

/// The schema version this build writes.
#[allow(clippy::cast_possible_wrap)] // a handful of steps
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

impl From<SqliteError> for IndexError {
    /// Keep the model index's own variants (and hints): a full disk, a newer schema.
    fn from(error: SqliteError) -> Self {
        match error {
            SqliteError::CreateDir { path, source } => Self::CreateDir { path, source },
            SqliteError::NewerSchema { path, found, .. } => Self::NewerSchema { path, found },
            SqliteError::Open { path, source } | SqliteError::Migrate { path, source, .. } => {
                Self::from_sqlite(&path, source, true)
            }
        }
    }
}

/// An index operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("Cannot open the model index `{path}`")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The disk is full (SQLite says so, or an I/O error while the disk has almost no space).
    #[error("No space left on the disk holding the model index `{path}`")]
    DiskFull {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("Cannot create the folder for the model index `{path}`")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "The model index `{path}` has schema version {found}; this comfydock reads up to {SCHEMA_VERSION}"
    )]
    NewerSchema { path: PathBuf, found: i64 },
    #[error("Model index query failed ({path})")]
    Query {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

/// Below this many free bytes, an I/O error of the index is taken for a full disk.
const NEARLY_FULL_BYTES: u64 = 1024 * 1024;

impl IndexError {
    /// Name a full disk as such: SQLite's `SQLITE_FULL`, or an I/O error (SQLite reports a
    /// failed write of its journal as `disk I/O error`) while the disk is nearly full.
    /// Otherwise an [`IndexError::Open`] (`opening`) or [`IndexError::Query`].
    pub fn from_sqlite(path: &Path, source: rusqlite::Error, opening: bool) -> Self {
        let code = source.sqlite_error_code();
        let full = code == Some(rusqlite::ErrorCode::DiskFull)
            || (code == Some(rusqlite::ErrorCode::SystemIoFailure) && {
                let dir = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                fs4::available_space(dir).is_ok_and(|free| free < NEARLY_FULL_BYTES)
            });
        let path = path.to_owned();
        if full {
            Self::DiskFull { path, source }
        } else if opening {
            Self::Open { path, source }
        } else {
            Self::Query { path, source }
        }
    }
}

impl comfydock_foundation::Hinted for IndexError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::NewerSchema { .. } => Some("upgrade comfydock to read this model index".to_owned()),
            Self::Open { path, .. } => Some(format!(
                "check that `{}` is a SQLite file you can write and that its disk has free space; keep the file: it holds recorded sources and sha256 values that `comfydock model scan` cannot rebuild",
                path.display()
            )),
            Self::DiskFull { path, .. } => Some(format!(
                "free some space on the disk holding `{}` (check with `df -h {}`), then run the command again; the index is unchanged, keep it",
                path.display(),
                path.parent().unwrap_or(path).display()
            )),
            _ => None,
        }
    }
}

/// How a model's source was found or given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Huggingface,
    Civitai,
    Url,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Huggingface => "huggingface",
            Self::Civitai => "civitai",
            Self::Url => "url",
        }
    }

    pub(crate) fn parse(text: &str) -> Self {
        match text {
            "huggingface" => Self::Huggingface,
            "civitai" => Self::Civitai,
            _ => Self::Url,
        }
    }
}

/// A model's recorded origin.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Source {
    pub url: String,
    pub kind: SourceKind,
    /// Unix seconds.
    pub added_at: i64,
}

/// One place a model's bytes live.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    pub root: PathBuf,
    /// Path below `root`, `/`-separated.
    pub relative_path: String,
    /// ComfyUI folder key (`checkpoints`, `diffusion_models`, ...), if the file is inside one.
    pub folder: Option<String>,
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
    /// Unix seconds of the last scan that saw the file (refreshed at most hourly).
    pub last_seen: i64,
}

impl Location {
    /// The absolute path of this location.
    pub fn path(&self) -> PathBuf {
        join_relative(&self.root, &self.relative_path)
    }

    /// The file name (last path component).
    pub fn file_name(&self) -> &str {
        self.relative_path
            .rsplit('/')
            .next()
            .unwrap_or(&self.relative_path)
    }
}

/// Join a stored `/`-separated relative path onto a root.
pub(crate) fn join_relative(root: &Path, relative: &str) -> PathBuf {
    let mut path = root.to_owned();
    for part in relative.split('/') {
        path.push(part);
    }
    path
}

/// A model with everything known about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModelRecord {
    #[serde(skip)]
    pub id: i64,
    pub blake3: String,
    pub sha256: Option<String>,
    pub size: u64,
    /// Unix seconds.
    pub first_seen: i64,
    pub locations: Vec<Location>,
    pub sources: Vec<Source>,
}

/// The (size, mtime, inode) of a file as last indexed; equal stamps mean "not changed".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileStamp {
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
}

/// A row of `locations` as the scanner needs it.
#[derive(Debug, Clone)]
pub(crate) struct KnownLocation {
    pub id: i64,
    pub model_id: i64,
    pub stamp: FileStamp,
}

/// A location to record after hashing.
#[derive(Debug, Clone)]
pub struct NewLocation<'a> {
    pub root: &'a Path,
    pub relative_path: &'a str,
    pub folder: Option<&'a str>,
    pub stamp: FileStamp,
}

/// The open model index.
#[derive(Debug)]
pub struct ModelIndex {
    path: PathBuf,
    conn: Connection,
}

/// Current time in Unix seconds.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Stored text of a root path.
pub(crate) fn root_key(root: &Path) -> String {
    root.to_string_lossy().into_owned()
}

// SQLite integers are i64; sizes and inodes above i64::MAX do not occur in practice, and the
// bit pattern round-trips anyway.
#[allow(clippy::cast_possible_wrap)]
fn to_sql_u64(value: u64) -> i64 {
    value as i64
}

#[allow(clippy::cast_sign_loss)]
pub(crate) fn from_sql_u64(value: i64) -> u64 {
    value as u64
}

impl ModelIndex {
    /// Open (creating if needed) the index at `path` and bring its schema up to date.
    pub fn open(path: &Path) -> Result<Self, IndexError> {
        let conn = sqlite::open(path, &SCHEMA)?;
        Ok(Self {
            path: path.to_owned(),
            conn,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn query_error(&self) -> impl Fn(rusqlite::Error) -> IndexError + '_ {
        |source| IndexError::from_sqlite(&self.path, source, false)
    }

    /// The schema version stored in the file.
    pub fn schema_version(&self) -> Result<i64, IndexError> {
        sqlite::user_version(&self.conn).map_err(self.query_error())
    }

    /// Run `work` in one transaction (batched writes).
    pub(crate) fn batch<T>(
        &mut self,
        work: impl FnOnce(&IndexTransaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, IndexError> {
        let path = self.path.clone();
        let err = |source| IndexError::Query {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let result = work(&IndexTransaction { tx: &tx }).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(result)
    }

    /// Run `work` (a scan) with the connection tuned for many writes: a page cache large
    /// enough to keep every page a batch dirties (so none is written to the WAL twice in one
    /// transaction), statement journals in memory, and no automatic checkpoint (SQLite's
    /// default copies the WAL into the database every 1,000 pages, rewriting the same
    /// hash-index pages again and again). The WAL is copied into the database once at the end
    /// and truncated.
    pub(crate) fn bulk_writes<T>(
        &mut self,
        work: impl FnOnce(&mut Self) -> Result<T, IndexError>,
    ) -> Result<T, IndexError> {
        let cache_size: i64 = self
            .conn
            .query_row("PRAGMA cache_size", [], |row| row.get(0))
            .map_err(self.query_error())?;
        let autocheckpoint: i64 = self
            .conn
            .query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0))
            .map_err(self.query_error())?;
        let temp_store: i64 = self
            .conn
            .query_row("PRAGMA temp_store", [], |row| row.get(0))
            .map_err(self.query_error())?;
        self.conn
            .pragma_update(None, "cache_size", -BULK_CACHE_KIB)
            .and_then(|()| self.conn.pragma_update(None, "wal_autocheckpoint", 0))
            // Each insert keeps copies of the pages it changes in a statement journal (to undo
            // itself on a constraint failure); past 64 KiB that journal is a temporary file,
            // which made a first scan of 100,000 files write 1.4 GB to /var/tmp.
            .and_then(|()| self.conn.pragma_update(None, "temp_store", "MEMORY"))
            .map_err(self.query_error())?;
        let result = work(self);
        let restored = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .and_then(|()| {
                self.conn
                    .pragma_update(None, "wal_autocheckpoint", autocheckpoint)
            })
            .and_then(|()| self.conn.pragma_update(None, "cache_size", cache_size))
            .and_then(|()| self.conn.pragma_update(None, "temp_store", temp_store));
        let value = result?;
        restored.map_err(self.query_error())?;
        Ok(value)
    }

    /// Known locations under `root`, by relative path.
    pub(crate) fn known_locations(
        &self,
        root: &Path,
    ) -> Result<std::collections::HashMap<String, KnownLocation>, IndexError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT id, relative_path, size, mtime_ns, inode, model_id FROM locations WHERE root = ?1",
            )
            .map_err(self.query_error())?;
        let rows = statement
            .query_map([root_key(root)], |row| {
                Ok((
                    row.get::<_, String>(1)?,
                    KnownLocation {
                        id: row.get(0)?,
                        model_id: row.get(5)?,
                        stamp: FileStamp {
                            size: from_sql_u64(row.get(2)?),
                            mtime_ns: row.get(3)?,
                            inode: from_sql_u64(row.get(4)?),
                        },
                    },
                ))
            })
            .map_err(self.query_error())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.query_error())
    }

    /// Record a hashed file: the model (created if new), its hashes and this location.
    pub fn record_file(
        &mut self,
        digest: &FileDigest,
        location: &NewLocation<'_>,
    ) -> Result<i64, IndexError> {
        self.batch(|tx| tx.record_file(digest, location))
    }

    /// Add a source URL to a model (no-op if already recorded).
    pub fn add_source(&mut self, model_id: i64, url: &str, kind: SourceKind) -> Result<bool, IndexError> {
        self.batch(|tx| tx.add_source(model_id, url, kind))
    }

    /// Store a sha256 for a model.
    pub fn set_sha256(&mut self, model_id: i64, sha256: &str) -> Result<(), IndexError> {
        self.batch(|tx| tx.set_hash(model_id, "sha256", sha256))
    }

    /// The id of the model with this blake3, if indexed.
    pub fn model_id_by_blake3(&self, blake3: &str) -> Result<Option<i64>, IndexError> {
        self.conn
            .query_row("SELECT id FROM models WHERE blake3 = ?1", [blake3], |row| {
                row.get(0)
            })
            .optional()
            .map_err(self.query_error())
    }

    /// Load one model with hashes, locations and sources.
    pub fn model(&self, id: i64) -> Result<Option<ModelRecord>, IndexError> {
        let Some((blake3, size, first_seen)) = self
            .conn
            .query_row(
                "SELECT blake3, size, first_seen FROM models WHERE id = ?1",
                [id],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?, row.get(2)?)),
            )
            .optional()
            .map_err(self.query_error())?
        else {
            return Ok(None);
        };
        let sha256 = self
            .conn
            .query_row(
                "SELECT hash_value FROM model_hashes WHERE model_id = ?1 AND hash_type = 'sha256'",
                [id],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.query_error())?;
        Ok(Some(ModelRecord {
            id,
            blake3,
            sha256,
            size: from_sql_u64(size),
            first_seen,
            locations: self.locations_of(id)?,
            sources: self.sources_of(id)?,
        }))
    }

    fn locations_of(&self, id: i64) -> Result<Vec<Location>, IndexError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT root, relative_path, folder, size, mtime_ns, inode, last_seen
                 FROM locations WHERE model_id = ?1 ORDER BY root, relative_path",
            )
            .map_err(self.query_error())?;
        statement
            .query_map([id], |row| {
                Ok(Location {
                    root: PathBuf::from(row.get::<_, String>(0)?),
                    relative_path: row.get(1)?,
                    folder: row.get(2)?,
                    size: from_sql_u64(row.get(3)?),
                    mtime_ns: row.get(4)?,
                    inode: from_sql_u64(row.get(5)?),
                    last_seen: row.get(6)?,
                })
            })
            .map_err(self.query_error())?
            .collect::<rusqlite::Result<_>>()
            .map_err(self.query_error())
    }

    fn sources_of(&self, id: i64) -> Result<Vec<Source>, IndexError> {
        sources_of_model(&self.conn, id).map_err(self.query_error())
    }

    /// Ids of every model, in first-seen order.
    pub fn model_ids(&self) -> Result<Vec<i64>, IndexError> {
        self.ids("SELECT id FROM models ORDER BY first_seen, id", [])
    }

    pub(crate) fn ids<P: rusqlite::Params>(&self, sql: &str, params: P) -> Result<Vec<i64>, IndexError> {
        let mut statement = self.conn.prepare_cached(sql).map_err(self.query_error())?;
        statement
            .query_map(params, |row| row.get(0))
            .map_err(self.query_error())?
            .collect::<rusqlite::Result<_>>()
            .map_err(self.query_error())
    }

    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// The sources of one model, oldest first.
pub(crate) fn sources_of_model(conn: &Connection, id: i64) -> rusqlite::Result<Vec<Source>> {
    conn.prepare_cached(MODEL_SOURCES_SQL)?
        .query_map([id], |row| {
            Ok(Source {
                url: row.get(0)?,
                kind: SourceKind::parse(&row.get::<_, String>(1)?),
                added_at: row.get(2)?,
            })
        })?
        .collect()
}

/// The sources of model `?1` in the order they were recorded (a search of `idx_sources_model`).
pub(crate) const MODEL_SOURCES_SQL: &str =
    "SELECT url, kind, added_at FROM sources WHERE model_id = ?1 ORDER BY id";

/// The insert of a location row, bound by [`IndexTransaction::write_location`].
macro_rules! insert_location_sql {
    () => {
        "INSERT INTO locations (model_id, root, relative_path, folder, size, mtime_ns, inode, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    };
}

/// A new location row.
const INSERT_LOCATION_SQL: &str = insert_location_sql!();

/// A location row, replacing the one for the same path.
const UPSERT_LOCATION_SQL: &str = concat!(
    insert_location_sql!(),
    " ON CONFLICT (root, relative_path) DO UPDATE SET
       model_id = excluded.model_id, folder = excluded.folder, size = excluded.size,
       mtime_ns = excluded.mtime_ns, inode = excluded.inode, last_seen = excluded.last_seen"
);

/// Writes inside one batched transaction.
pub(crate) struct IndexTransaction<'a> {
    tx: &'a Transaction<'a>,
}

impl IndexTransaction<'_> {
    pub fn record_file(&self, digest: &FileDigest, location: &NewLocation<'_>) -> rusqlite::Result<i64> {
        let (model_id, _) = self.ensure_model(digest)?;
        self.upsert_location(model_id, location)?;
        Ok(model_id)
    }

    /// Insert the model (its blake3 is its identity) and its sha256 if new; returns its id and
    /// whether it was created.
    pub fn ensure_model(&self, digest: &FileDigest) -> rusqlite::Result<(i64, bool)> {
        // A look-up, then a plain insert: an insert that may do nothing or update (`ON CONFLICT`,
        // `RETURNING`) keeps an undo copy of every page it touches, which took half of a first
        // scan's database time.
        let existing: Option<i64> = self
            .tx
            .prepare_cached("SELECT id FROM models WHERE blake3 = ?1")?
            .query_row([&digest.blake3], |row| row.get(0))
            .optional()?;
        let (model_id, created) = if let Some(id) = existing {
            (id, false)
        } else {
            self.tx
                .prepare_cached("INSERT INTO models (blake3, size, first_seen) VALUES (?1, ?2, ?3)")?
                .execute(params![digest.blake3, to_sql_u64(digest.size), unix_now()])?;
            (self.tx.last_insert_rowid(), true)
        };
        if let Some(sha256) = &digest.sha256 {
            self.set_hash(model_id, "sha256", sha256)?;
        }
        Ok((model_id, created))
    }

    /// [`IndexTransaction::upsert_location`] for a path with no row yet (a scan knows which
    /// paths it has), with a plain insert; a row that exists after all is replaced as there.
    pub fn insert_location(&self, model_id: i64, location: &NewLocation<'_>) -> rusqlite::Result<()> {
        match self.write_location(INSERT_LOCATION_SQL, model_id, location) {
            Err(rusqlite::Error::SqliteFailure(error, _))
                if error.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                self.upsert_location(model_id, location)
            }
            other => other,
        }
    }

    /// Point a location at a model, creating or replacing the row for that path.
    pub fn upsert_location(&self, model_id: i64, location: &NewLocation<'_>) -> rusqlite::Result<()> {
        self.write_location(UPSERT_LOCATION_SQL, model_id, location)
    }

    /// Run `sql` (an insert of a location row) for `location`.
    fn write_location(&self, sql: &str, model_id: i64, location: &NewLocation<'_>) -> rusqlite::Result<()> {
        self.tx.prepare_cached(sql)?.execute(params![
            model_id,
            root_key(location.root),
            location.relative_path,
            location.folder,
            to_sql_u64(location.stamp.size),
            location.stamp.mtime_ns,
            to_sql_u64(location.stamp.inode),
            unix_now()
        ])?;
        Ok(())
    }

    pub fn set_hash(&self, model_id: i64, hash_type: &str, value: &str) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO model_hashes (model_id, hash_type, hash_value) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![model_id, hash_type, value])?;
        Ok(())
    }

    pub fn add_source(&self, model_id: i64, url: &str, kind: SourceKind) -> rusqlite::Result<bool> {
        let inserted = self
            .tx
            .prepare_cached(
                "INSERT INTO sources (model_id, url, kind, added_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (model_id, url) DO NOTHING",
            )?
            .execute(params![model_id, url, kind.as_str(), unix_now()])?;
        Ok(inserted > 0)
    }

    pub fn remove_location(&self, id: i64) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached("DELETE FROM locations WHERE id = ?1")?
            .execute([id])?;
        Ok(())
    }

    pub fn remove_root(&self, root: &Path) -> rusqlite::Result<u64> {
        let removed = self
            .tx
            .prepare_cached("DELETE FROM locations WHERE root = ?1")?
            .execute([root_key(root)])?;
        Ok(removed as u64)
    }

    /// Mark a root's locations as seen now. Rows seen within the last
    /// [`LAST_SEEN_RESOLUTION_SECS`] are left alone, so a rescan of an unchanged tree writes
    /// (almost) nothing.
    pub fn touch_root(&self, root: &Path) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached("UPDATE locations SET last_seen = ?1 WHERE root = ?2 AND last_seen < ?1 - ?3")?
            .execute(params![unix_now(), root_key(root), LAST_SEEN_RESOLUTION_SECS])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use comfydock_foundation::Hinted as _;

    #[test]
    fn a_full_disk_is_named_with_a_safe_hint() {
        let path = Path::new("/w/.metadata/models.db");
        let full =
            || rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL), None);
        for opening in [true, false] {
            let err = IndexError::from_sqlite(path, full(), opening);
            assert!(matches!(err, IndexError::DiskFull { .. }), "{err:?}");
            assert!(err.to_string().contains("No space left"), "{err}");
            let hint = err.hint().unwrap();
            assert!(hint.contains("free some space"), "{hint}");
            assert!(!hint.contains("remove") && !hint.contains("delete"), "{hint}");
        }
        // Other failures keep their kind, and the open hint never says to delete the index.
        let busy =
            rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN), None);
        let err = IndexError::from_sqlite(path, busy, true);
        assert!(matches!(err, IndexError::Open { .. }), "{err:?}");
        let hint = err.hint().unwrap();
        assert!(!hint.contains("remove") && !hint.contains("delete"), "{hint}");
        assert!(hint.contains("free space"), "{hint}");
    }

    fn digest(blake3: &str, sha256: Option<&str>, size: u64) -> FileDigest {
        FileDigest {
            blake3: blake3.to_owned(),
            sha256: sha256.map(str::to_owned),
            size,
        }
    }

    fn stamp() -> FileStamp {
        FileStamp {
            size: 10,
            mtime_ns: 1,
            inode: 2,
        }
    }

    /// A plain insert of a location that exists after all (another process indexed the path
    /// meanwhile) replaces the row, as the upsert does; a new model is created once.
    #[test]
    fn inserting_a_location_that_exists_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = ModelIndex::open(&dir.path().join("index.db")).unwrap();
        let root = dir.path().join("models");
        let location = NewLocation {
            root: &root,
            relative_path: "loras/a.safetensors",
            folder: Some("loras"),
            stamp: stamp(),
        };
        let first = index.record_file(&digest("aa", None, 10), &location).unwrap();
        let (second, created) = index
            .batch(|tx| {
                let (id, created) = tx.ensure_model(&digest("bb", None, 10))?;
                tx.insert_location(id, &location)?;
                Ok((id, created))
            })
            .unwrap();
        assert!(created);
        assert_ne!(first, second);
        let (again, created) = index
            .batch(|tx| tx.ensure_model(&digest("bb", None, 10)))
            .unwrap();
        assert_eq!((again, created), (second, false));
        let moved = index.model(second).unwrap().unwrap();
        assert_eq!(moved.locations.len(), 1);
        assert_eq!(moved.locations[0].relative_path, "loras/a.safetensors");
        assert!(index.model(first).unwrap().unwrap().locations.is_empty());
    }

    #[test]
    fn creates_schema_in_wal_mode_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".metadata/model_index.db");
        let index = ModelIndex::open(&path).unwrap();
        assert_eq!(index.schema_version().unwrap(), SCHEMA_VERSION);
        let mode: String = index
            .connection()
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(index);
        // Step 1 creates tables without `IF NOT EXISTS`: re-running it would fail.
        let again = ModelIndex::open(&path).unwrap();
        assert_eq!(again.schema_version().unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn refuses_a_newer_schema_without_touching_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model_index.db");
        let mut index = ModelIndex::open(&path).unwrap();
        let root = dir.path().join("models");
        let id = index
            .record_file(
                &digest("aa", None, 10),
                &NewLocation {
                    root: &root,
                    relative_path: "checkpoints/a.safetensors",
                    folder: Some("checkpoints"),
                    stamp: stamp(),
                },
            )
            .unwrap();
        index
            .add_source(id, "https://example.test/a", SourceKind::Url)
            .unwrap();
        index
            .connection()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        drop(index);
        let err = ModelIndex::open(&path).unwrap_err();
        assert!(
            matches!(err, IndexError::NewerSchema { found: 99, .. }),
            "{err:?}"
        );
        let conn = Connection::open(&path).unwrap();
        let sources: i64 = conn
            .query_row("SELECT COUNT(*) FROM sources", [], |row| row.get(0))
            .unwrap();
        assert_eq!(sources, 1);
    }

    /// An index as builds before the shared SQLite opener wrote it: its version in a
    /// `schema_version` table (one row per applied step), `user_version` 0, one model with a
    /// recorded source.
    fn write_index_of_previous_builds(path: &Path, steps: usize) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            .unwrap();
        for migration in &MIGRATIONS[..steps] {
            conn.execute_batch(migration.sql).unwrap();
            conn.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [migration.version],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO models (blake3, size, first_seen) VALUES ('b3', 1, 0)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO sources (model_id, url, kind, added_at) VALUES (1, 'https://x.test/m', 'url', 0)",
            [],
        )
        .unwrap();
    }

    fn has_table(index: &ModelIndex, name: &str) -> bool {
        index
            .connection()
            .query_row(
                "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [name],
                |row| row.get(0),
            )
            .unwrap()
    }

    #[test]
    fn opens_an_up_to_date_index_of_previous_builds_keeping_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("previous.db");
        write_index_of_previous_builds(&path, MIGRATIONS.len());
        // Re-running any step would fail (its tables and indexes exist): the version is adopted.
        let index = ModelIndex::open(&path).unwrap();
        assert_eq!(index.schema_version().unwrap(), SCHEMA_VERSION);
        assert!(!has_table(&index, "schema_version"));
        let model = index.model(1).unwrap().unwrap();
        assert_eq!(model.sources[0].url, "https://x.test/m");
        drop(index);
        let again = ModelIndex::open(&path).unwrap();
        assert_eq!(again.model(1).unwrap().unwrap().blake3, "b3");
    }

    #[test]
    fn refuses_an_index_of_previous_builds_with_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("newer.db");
        write_index_of_previous_builds(&path, MIGRATIONS.len());
        Connection::open(&path)
            .unwrap()
            .execute("INSERT INTO schema_version (version) VALUES (99)", [])
            .unwrap();
        let err = ModelIndex::open(&path).unwrap_err();
        assert!(
            matches!(err, IndexError::NewerSchema { found: 99, .. }),
            "{err:?}"
        );
        let conn = Connection::open(&path).unwrap();
        let recorded: i64 = conn
            .query_row("SELECT MAX(version) FROM schema_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(recorded, 99, "a refused index keeps its version table");
    }

    #[test]
    fn upgrades_an_older_schema_keeping_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        // A file written by a build that knew only the first step.
        write_index_of_previous_builds(&path, 1);
        let index = ModelIndex::open(&path).unwrap();
        assert_eq!(index.schema_version().unwrap(), SCHEMA_VERSION);
        assert!(!has_table(&index, "schema_version"));
        let has_new_index: bool = index
            .connection()
            .query_row(
                "SELECT COUNT(*) > 0 FROM sqlite_master WHERE name = 'idx_locations_root_seen'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert!(has_new_index);
        let model = index.model(1).unwrap().unwrap();
        assert_eq!(model.sources[0].url, "https://x.test/m");
    }

    #[test]
    fn schema_4_keeps_blake3_only_in_models() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.db");
        write_index_of_previous_builds(&path, 3);
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "INSERT INTO model_hashes (model_id, hash_type, hash_value) VALUES (1, 'blake3', 'b3');
                 INSERT INTO model_hashes (model_id, hash_type, hash_value) VALUES (1, 'sha256', 's256');",
            )
            .unwrap();
        let mut index = ModelIndex::open(&path).unwrap();
        let types: Vec<String> = index
            .connection()
            .prepare("SELECT hash_type FROM model_hashes")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(types, ["sha256"]);
        let model = index.model(1).unwrap().unwrap();
        assert_eq!(
            (model.blake3.as_str(), model.sha256.as_deref()),
            ("b3", Some("s256"))
        );
        // New models get no blake3 row either.
        let root = dir.path().join("models");
        let id = index
            .record_file(
                &digest("cc", Some("s-cc"), 10),
                &NewLocation {
                    root: &root,
                    relative_path: "loras/c.safetensors",
                    folder: Some("loras"),
                    stamp: stamp(),
                },
            )
            .unwrap();
        let rows: i64 = index
            .connection()
            .query_row(
                "SELECT COUNT(*) FROM model_hashes WHERE model_id = ?1",
                [id],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(rows, 1, "only the sha256");
        assert_eq!(index.model_id_by_blake3("cc").unwrap(), Some(id));
    }

    #[test]
    fn one_model_many_locations_and_sources() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = ModelIndex::open(&dir.path().join("i.db")).unwrap();
        let root = dir.path().join("models");
        let first = index
            .record_file(
                &digest("b3", None, 10),
                &NewLocation {
                    root: &root,
                    relative_path: "checkpoints/a.safetensors",
                    folder: Some("checkpoints"),
                    stamp: stamp(),
                },
            )
            .unwrap();
        let second = index
            .record_file(
                &digest("b3", Some("s256"), 10),
                &NewLocation {
                    root: &root,
                    relative_path: "loras/b.safetensors",
                    folder: Some("loras"),
                    stamp: stamp(),
                },
            )
            .unwrap();
        assert_eq!(first, second);
        assert!(
            index
                .add_source(first, "https://x.test/a", SourceKind::Url)
                .unwrap()
        );
        assert!(
            !index
                .add_source(first, "https://x.test/a", SourceKind::Url)
                .unwrap()
        );
        let model = index.model(first).unwrap().unwrap();
        assert_eq!(model.blake3, "b3");
        assert_eq!(model.sha256.as_deref(), Some("s256"));
        assert_eq!(model.locations.len(), 2);
        assert_eq!(model.locations[0].file_name(), "a.safetensors");
        assert_eq!(
            model.locations[0].path(),
            root.join("checkpoints").join("a.safetensors")
        );
        assert_eq!(model.sources.len(), 1);
        assert_eq!(index.model_id_by_blake3("b3").unwrap(), Some(first));
        assert_eq!(index.model_ids().unwrap(), vec![first]);
    }
}
