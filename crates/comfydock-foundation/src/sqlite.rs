//! Opening comfydock's SQLite files the one way: WAL journal, a busy timeout, foreign keys, and
//! the schema brought up to date by numbered migrations.
//!
//! The schema version lives in the file header (`PRAGMA user_version`); version 0 is a new file
//! (or one written before versions were recorded, whose schema migration 1 must accept, e.g. with
//! `CREATE TABLE IF NOT EXISTS`). Migrations run in one `BEGIN IMMEDIATE` transaction, so
//! concurrent openers serialise: the second one sees the version the first one wrote and runs
//! nothing. A file newer than the code is refused without being touched.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::hint::Hinted;

/// How long a connection waits for another connection's write lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// One schema step: the SQL that takes a file from `version - 1` to `version`. Steps are
/// numbered from 1 without gaps; once released, a step is never edited or removed.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub sql: &'static str,
}

/// Reads the version an older scheme recorded in a file whose `user_version` is still 0, and
/// removes that record; `Ok(0)` when there is none. Runs inside the migration transaction.
pub type LegacyVersion = fn(&Transaction<'_>) -> rusqlite::Result<u32>;

/// The schema of one kind of database.
#[derive(Debug, Clone, Copy)]
pub struct Schema<'a> {
    migrations: &'a [Migration],
    legacy_version: Option<LegacyVersion>,
}

impl<'a> Schema<'a> {
    /// A schema made of `migrations` (versions 1, 2, … in order).
    pub const fn new(migrations: &'a [Migration]) -> Self {
        Self {
            migrations,
            legacy_version: None,
        }
    }

    /// Adopt the version an earlier scheme of this database recorded (see [`LegacyVersion`]).
    #[must_use]
    pub const fn with_legacy_version(mut self, legacy_version: LegacyVersion) -> Self {
        self.legacy_version = Some(legacy_version);
        self
    }

    /// The version a file has after [`open`]: the last migration's.
    pub fn newest(&self) -> u32 {
        self.migrations.last().map_or(0, |m| m.version)
    }
}

/// Opening or migrating a database failed.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    #[error("Cannot create the folder `{path}` for a database")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Cannot open the database `{path}`")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("Cannot bring the database `{path}` to schema version {version}")]
    Migrate {
        path: PathBuf,
        version: u32,
        #[source]
        source: rusqlite::Error,
    },
    #[error("The database `{path}` has schema version {found}; this comfydock reads up to {known}")]
    NewerSchema { path: PathBuf, found: i64, known: u32 },
}

impl SqliteError {
    /// The database file (or, for [`SqliteError::CreateDir`], its folder).
    pub fn path(&self) -> &Path {
        match self {
            Self::CreateDir { path, .. }
            | Self::Open { path, .. }
            | Self::Migrate { path, .. }
            | Self::NewerSchema { path, .. } => path,
        }
    }

    /// Whether another connection held the file (worth another try).
    fn is_busy(&self) -> bool {
        matches!(
            self.sqlite_source().and_then(rusqlite::Error::sqlite_error_code),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }

    /// The SQLite error underneath, if any.
    pub fn sqlite_source(&self) -> Option<&rusqlite::Error> {
        match self {
            Self::Open { source, .. } | Self::Migrate { source, .. } => Some(source),
            Self::CreateDir { .. } | Self::NewerSchema { .. } => None,
        }
    }
}

impl Hinted for SqliteError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::CreateDir { path, .. } => Some(format!(
                "check that you can create `{}` (`ls -ld {}`)",
                path.display(),
                path.parent().unwrap_or(path).display()
            )),
            Self::Open { path, .. } | Self::Migrate { path, .. } => Some(format!(
                "check that `{}` is a SQLite file you can write and that its disk has free space",
                path.display()
            )),
            Self::NewerSchema { path, .. } => Some(format!(
                "`{}` was written by a newer comfydock; upgrade comfydock to use it",
                path.display()
            )),
        }
    }
}

/// Open (creating it and its folder when missing) the database at `path`, set WAL journal,
/// [`BUSY_TIMEOUT`] and foreign keys, and apply the migrations of `schema` it lacks.
pub fn open(path: &Path, schema: &Schema<'_>) -> Result<Connection, SqliteError> {
    debug_assert!(
        schema
            .migrations
            .iter()
            .zip(1..)
            .all(|(m, expected)| m.version == expected),
        "migrations must be numbered 1, 2, … in order"
    );
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs_err::create_dir_all(parent).map_err(|source| SqliteError::CreateDir {
            path: parent.to_owned(),
            source,
        })?;
    }
    // Switching a new file to WAL needs it to itself for a moment, and SQLite answers "busy" to
    // another opener then without waiting: two processes opening a new file at once (two
    // commands, two serve instances) try again until the busy timeout.
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(2);
    loop {
        match open_once(path, schema) {
            Err(error) if error.is_busy() && std::time::Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            opened => return opened,
        }
    }
}

fn open_once(path: &Path, schema: &Schema<'_>) -> Result<Connection, SqliteError> {
    let open_error = |source| SqliteError::Open {
        path: path.to_owned(),
        source,
    };
    let mut conn = Connection::open(path).map_err(open_error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(open_error)?;
    // Safe with WAL: a power cut may lose the last commits, never corrupt the file.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(open_error)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(open_error)?;
    migrate(&mut conn, path, schema)?;
    Ok(conn)
}

/// Open a read-only connection to a database [`open`] already created and migrated: for readers
/// that should not wait behind the writer (WAL lets them read the last commit meanwhile).
pub fn open_reader(path: &Path) -> Result<Connection, SqliteError> {
    let open_error = |source| SqliteError::Open {
        path: path.to_owned(),
        source,
    };
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
    Ok(conn)
}

/// The schema version recorded in the file header.
pub fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

fn migrate(conn: &mut Connection, path: &Path, schema: &Schema<'_>) -> Result<(), SqliteError> {
    let newest = schema.newest();
    let open_error = |source| SqliteError::Open {
        path: path.to_owned(),
        source,
    };
    let newer = |found: i64| SqliteError::NewerSchema {
        path: path.to_owned(),
        found,
        known: newest,
    };
    // Up to date: no write lock needed (the common case).
    let seen = user_version(conn).map_err(open_error)?;
    if seen == i64::from(newest) && newest > 0 {
        return Ok(());
    }
    if seen > i64::from(newest) || seen < 0 {
        return Err(newer(seen));
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open_error)?;
    // Another opener may have migrated while this one waited for the lock.
    let mut current = user_version(&tx).map_err(open_error)?;
    if current == 0
        && let Some(legacy_version) = schema.legacy_version
    {
        current = i64::from(legacy_version(&tx).map_err(open_error)?);
    }
    if current > i64::from(newest) || current < 0 {
        return Err(newer(current));
    }
    for migration in schema
        .migrations
        .iter()
        .filter(|m| i64::from(m.version) > current)
    {
        tx.execute_batch(migration.sql)
            .map_err(|source| SqliteError::Migrate {
                path: path.to_owned(),
                version: migration.version,
                source,
            })?;
    }
    tx.pragma_update(None, "user_version", newest)
        .map_err(|source| SqliteError::Migrate {
            path: path.to_owned(),
            version: newest,
            source,
        })?;
    tx.commit().map_err(open_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: Migration = Migration {
        version: 1,
        sql: "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
    };
    const V2: Migration = Migration {
        version: 2,
        sql: "ALTER TABLE items ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
              CREATE INDEX items_by_name ON items(name);",
    };
    const V3: Migration = Migration {
        version: 3,
        sql: "CREATE TABLE tags (item_id INTEGER NOT NULL REFERENCES items(id), tag TEXT NOT NULL);",
    };
    const ALL: &[Migration] = &[V1, V2, V3];

    fn names(conn: &Connection) -> Vec<String> {
        let mut statement = conn
            .prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name")
            .unwrap();
        statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn a_new_file_gets_every_migration_in_wal_mode_with_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/folder/new.db");
        let conn = open(&path, &Schema::new(ALL)).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 3);
        assert_eq!(names(&conn), ["items", "items_by_name", "tags"]);
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let foreign_keys: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |row| row.get(0))
            .unwrap();
        assert_eq!(foreign_keys, 1);
        let violation = conn.execute("INSERT INTO tags (item_id, tag) VALUES (42, 'x')", []);
        assert!(violation.is_err(), "foreign keys must be enforced");
    }

    #[test]
    fn reopening_an_up_to_date_file_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let conn = open(&path, &Schema::new(ALL)).unwrap();
        conn.execute("INSERT INTO items (name, size) VALUES ('kept', 7)", [])
            .unwrap();
        drop(conn);
        // Re-running step 2 would fail (the column exists); reopening must not try.
        let conn = open(&path, &Schema::new(ALL)).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 3);
        let size: i64 = conn
            .query_row("SELECT size FROM items WHERE name = 'kept'", [], |row| row.get(0))
            .unwrap();
        assert_eq!(size, 7);
    }

    #[test]
    fn an_older_file_is_migrated_keeping_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let conn = open(&path, &Schema::new(&ALL[..1])).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 1);
        conn.execute("INSERT INTO items (name) VALUES ('old row')", [])
            .unwrap();
        drop(conn);
        let conn = open(&path, &Schema::new(ALL)).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 3);
        assert_eq!(names(&conn), ["items", "items_by_name", "tags"]);
        let (name, size): (String, i64) = conn
            .query_row("SELECT name, size FROM items", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap();
        assert_eq!((name.as_str(), size), ("old row", 0));
    }

    #[test]
    fn a_file_from_before_versions_keeps_its_rows_when_step_one_accepts_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("unversioned.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(V1.sql).unwrap();
        conn.execute("INSERT INTO items (name) VALUES ('before')", [])
            .unwrap();
        drop(conn);
        let conn = open(&path, &Schema::new(ALL)).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 3);
        let count: i64 = conn
            .query_row("SELECT COUNT(*) FROM items", [], |row| row.get(0))
            .unwrap();
        assert_eq!(count, 1);
    }

    #[test]
    fn a_newer_file_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("newer.db");
        drop(open(&path, &Schema::new(ALL)).unwrap());
        let err = open(&path, &Schema::new(&ALL[..2])).unwrap_err();
        assert!(
            matches!(
                &err,
                SqliteError::NewerSchema {
                    found: 3,
                    known: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.path(), path);
        assert!(err.to_string().contains("newer.db"), "{err}");
        assert!(err.hint().unwrap().contains("upgrade comfydock"));
        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 3);
        assert_eq!(names(&conn), ["items", "items_by_name", "tags"]);
    }

    #[test]
    fn a_failing_step_rolls_back_every_step_of_the_open() {
        const BROKEN: &[Migration] = &[
            V1,
            Migration {
                version: 2,
                sql: "CREATE TABLE extra (x); THIS IS NOT SQL;",
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.db");
        let err = open(&path, &Schema::new(BROKEN)).unwrap_err();
        assert!(matches!(&err, SqliteError::Migrate { version: 2, .. }), "{err:?}");
        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 0);
        assert!(names(&conn).is_empty(), "{:?}", names(&conn));
    }

    #[test]
    fn a_legacy_version_is_adopted_and_its_record_removed() {
        fn legacy(tx: &Transaction<'_>) -> rusqlite::Result<u32> {
            let version: u32 = tx.query_row("SELECT v FROM old_version", [], |row| row.get(0))?;
            tx.execute_batch("DROP TABLE old_version")?;
            Ok(version)
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("legacy.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(V1.sql).unwrap();
        conn.execute_batch(V2.sql).unwrap();
        conn.execute_batch("CREATE TABLE old_version (v INTEGER); INSERT INTO old_version VALUES (2);")
            .unwrap();
        drop(conn);
        // Running step 1 or 2 again would fail (the index and column exist).
        let conn = open(&path, &Schema::new(ALL).with_legacy_version(legacy)).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 3);
        assert_eq!(names(&conn), ["items", "items_by_name", "tags"]);
    }

    #[test]
    fn concurrent_openers_of_a_new_file_both_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.db");
        let barrier = std::sync::Barrier::new(4);
        std::thread::scope(|scope| {
            let openers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        open(&path, &Schema::new(ALL)).map(|conn| user_version(&conn).unwrap())
                    })
                })
                .collect();
            for opener in openers {
                assert_eq!(opener.join().unwrap().unwrap(), 3);
            }
        });
        let conn = open(&path, &Schema::new(ALL)).unwrap();
        assert_eq!(names(&conn), ["items", "items_by_name", "tags"]);
    }
}
