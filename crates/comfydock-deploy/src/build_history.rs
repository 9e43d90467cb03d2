//! Build history in `.metadata/builds.db`: every generated context and every image build.

use std::path::{Path, PathBuf};

use comfydock_foundation::sqlite::{self, Migration, Schema};
use rusqlite::{Connection, params};
use serde::Serialize;

use super::DeployError;

/// How a recorded deployment step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildResult {
    /// The build context was written; nothing was built.
    Generated,
    Built,
    Pushed,
    Failed,
}

impl BuildResult {
    fn as_str(self) -> &'static str {
        match self {
            Self::Generated => "generated",
            Self::Built => "built",
            Self::Pushed => "pushed",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "built" => Self::Built,
            "pushed" => Self::Pushed,
            "failed" => Self::Failed,
            _ => Self::Generated,
        }
    }
}

/// One row of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildRecord {
    pub id: i64,
    pub environment: String,
    pub cec_commit: Option<String>,
    /// `docker` or `k8s`.
    pub kind: String,
    pub image_tag: String,
    pub digest: Option<String>,
    /// RFC 3339 UTC.
    pub time: String,
    pub result: BuildResult,
    pub context_dir: String,
    pub detail: Option<String>,
}

/// A new row (id and time are filled in).
#[derive(Debug, Clone)]
pub struct NewBuild<'a> {
    pub environment: &'a str,
    pub cec_commit: Option<&'a str>,
    pub kind: &'a str,
    pub image_tag: &'a str,
    pub digest: Option<&'a str>,
    pub result: BuildResult,
    pub context_dir: &'a Path,
    pub detail: Option<&'a str>,
}

/// Schema steps, numbered from 1; never edit or remove one. Step 1 is the table files written
/// before versions were recorded already have (hence `IF NOT EXISTS`).
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: "CREATE TABLE IF NOT EXISTS builds (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        environment TEXT NOT NULL,
        cec_commit TEXT,
        kind TEXT NOT NULL,
        image_tag TEXT NOT NULL,
        digest TEXT,
        time TEXT NOT NULL,
        result TEXT NOT NULL,
        context_dir TEXT NOT NULL,
        detail TEXT
    );",
}];

/// The build history database.
pub struct BuildHistory {
    conn: Connection,
    path: PathBuf,
}

impl BuildHistory {
    /// Open (creating) `.metadata/builds.db`.
    pub fn open(path: &Path) -> Result<Self, DeployError> {
        let conn = sqlite::open(path, &Schema::new(MIGRATIONS))?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Append a row; returns its id.
    pub fn record(&self, build: &NewBuild<'_>) -> Result<i64, DeployError> {
        let time = jiff::Timestamp::now().to_string();
        self.conn
            .execute(
                "INSERT INTO builds (environment, cec_commit, kind, image_tag, digest, time, result, context_dir, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    build.environment,
                    build.cec_commit,
                    build.kind,
                    build.image_tag,
                    build.digest,
                    time,
                    build.result.as_str(),
                    build.context_dir.to_string_lossy(),
                    build.detail,
                ],
            )
            .map_err(|source| self.error(source))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Every row, newest first; only `environment`'s when given.
    pub fn list(&self, environment: Option<&str>) -> Result<Vec<BuildRecord>, DeployError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, environment, cec_commit, kind, image_tag, digest, time, result, context_dir, detail
                 FROM builds WHERE (?1 IS NULL OR environment = ?1) ORDER BY id DESC",
            )
            .map_err(|source| self.error(source))?;
        let rows = stmt
            .query_map(params![environment], |r| {
                Ok(BuildRecord {
                    id: r.get(0)?,
                    environment: r.get(1)?,
                    cec_commit: r.get(2)?,
                    kind: r.get(3)?,
                    image_tag: r.get(4)?,
                    digest: r.get(5)?,
                    time: r.get(6)?,
                    result: BuildResult::parse(&r.get::<_, String>(7)?),
                    context_dir: r.get(8)?,
                    detail: r.get(9)?,
                })
            })
            .map_err(|source| self.error(source))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|source| self.error(source))
    }

    fn error(&self, source: rusqlite::Error) -> DeployError {
        DeployError::History {
            path: self.path.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".metadata/builds.db");
        let history = BuildHistory::open(&path).unwrap();
        let mut build = NewBuild {
            environment: "a",
            cec_commit: Some("abc"),
            kind: "docker",
            image_tag: "comfydock-a:abc",
            digest: None,
            result: BuildResult::Generated,
            context_dir: Path::new("/out"),
            detail: None,
        };
        history.record(&build).unwrap();
        build.result = BuildResult::Built;
        build.digest = Some("sha256:00");
        build.environment = "b";
        history.record(&build).unwrap();
        drop(history);
        let history = BuildHistory::open(&path).unwrap();
        let all = history.list(None).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].result, BuildResult::Built);
        assert_eq!(all[0].digest.as_deref(), Some("sha256:00"));
        assert!(all[1].time.ends_with('Z'), "{}", all[1].time);
        assert_eq!(history.list(Some("a")).unwrap().len(), 1);
    }

    #[test]
    fn opens_a_history_written_before_versions_keeping_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("builds.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(MIGRATIONS[0].sql).unwrap();
        old.execute(
            "INSERT INTO builds (environment, kind, image_tag, time, result, context_dir)
             VALUES ('old', 'docker', 'comfydock-old:1', '2025-01-01T00:00:00Z', 'built', '/out')",
            [],
        )
        .unwrap();
        drop(old);
        let history = BuildHistory::open(&path).unwrap();
        let rows = history.list(None).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].environment, "old");
        assert_eq!(rows[0].result, BuildResult::Built);
        let version = sqlite::user_version(&history.conn).unwrap();
        assert_eq!(version, 1);
    }

    #[test]
    fn refuses_a_history_of_a_newer_comfydock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("builds.db");
        drop(BuildHistory::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 2)
            .unwrap();
        let Err(err) = BuildHistory::open(&path) else {
            panic!("a newer history must be refused");
        };
        assert!(err.to_string().contains("builds.db"), "{err}");
        assert!(
            comfydock_foundation::Hinted::hint(&err).is_some_and(|hint| hint.contains("upgrade comfydock")),
            "{err:?}"
        );
    }
}
