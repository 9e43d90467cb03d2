//! The node index (`.metadata/node_index.db`): node class name → the packages that provide it.
//!
//! Claims come from three sources, each with a rank (lower is more trusted): a static scan of
//! installed nodes (1), the registry's comfy-nodes lists (2), and ComfyUI-Manager's
//! `extension-node-map.json` (3). When several packages claim one class, every claim is kept
//! with its source and rank: nothing is shadowed silently.

use std::path::{Path, PathBuf};

use comfydock_foundation::sqlite::{self, Migration, Schema};
use rusqlite::{Connection, params};
use serde::Serialize;

use super::error::NodeError;

/// Where a claim comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimSource {
    Installed,
    Registry,
    Manager,
}

impl ClaimSource {
    fn as_str(self) -> &'static str {
        match self {
            Self::Installed => "installed",
            Self::Registry => "registry",
            Self::Manager => "manager",
        }
    }

    fn rank(self) -> i64 {
        match self {
            Self::Installed => 1,
            Self::Registry => 2,
            Self::Manager => 3,
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "installed" => Self::Installed,
            "registry" => Self::Registry,
            _ => Self::Manager,
        }
    }
}

/// One package's claim on a class name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claim {
    pub class_name: String,
    /// Registry id, node key, or (for Manager data) the repository URL.
    pub package: String,
    pub source: ClaimSource,
    pub rank: i64,
    pub version: Option<String>,
}

/// Schema steps, numbered from 1; never edit or remove one. Step 1 is the schema files written
/// before versions were recorded already have (hence `IF NOT EXISTS`).
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: "CREATE TABLE IF NOT EXISTS node_classes (
        class_name TEXT NOT NULL,
        package TEXT NOT NULL,
        source TEXT NOT NULL,
        rank INTEGER NOT NULL,
        version TEXT,
        PRIMARY KEY (class_name, package, source)
    );
    CREATE INDEX IF NOT EXISTS node_classes_by_class ON node_classes(class_name);
    CREATE INDEX IF NOT EXISTS node_classes_by_package ON node_classes(package);",
}];

/// The SQLite node index.
#[derive(Debug)]
pub struct NodeIndex {
    path: PathBuf,
    conn: Connection,
}

impl NodeIndex {
    /// Open (creating) the index.
    pub fn open(path: &Path) -> Result<Self, NodeError> {
        let conn = sqlite::open(path, &Schema::new(MIGRATIONS))?;
        Ok(Self {
            path: path.to_path_buf(),
            conn,
        })
    }

    fn error(&self, source: rusqlite::Error) -> NodeError {
        NodeError::Database {
            path: self.path.clone(),
            source: Box::new(source),
        }
    }

    /// Replace the claims of `package` from `source` with `classes`.
    pub fn record(
        &mut self,
        package: &str,
        source: ClaimSource,
        version: Option<&str>,
        classes: &[String],
    ) -> Result<(), NodeError> {
        let tx = self.conn.transaction().map_err(|e| NodeError::Database {
            path: self.path.clone(),
            source: Box::new(e),
        })?;
        let result = (|| {
            tx.execute(
                "DELETE FROM node_classes WHERE package = ?1 AND source = ?2",
                params![package, source.as_str()],
            )?;
            let mut insert = tx.prepare(
                "INSERT OR REPLACE INTO node_classes (class_name, package, source, rank, version)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for class in classes {
                insert.execute(params![class, package, source.as_str(), source.rank(), version])?;
            }
            Ok::<(), rusqlite::Error>(())
        })();
        result.and_then(|()| tx.commit()).map_err(|e| self.error(e))
    }

    /// Replace every Manager claim with the contents of an `extension-node-map.json`. Repositories
    /// that `package_of_repo` knows (registry or git nodes) are recorded under that package; the
    /// rest under their repository URL.
    pub fn import_extension_map(
        &mut self,
        map: &serde_json::Value,
        package_of_repo: &dyn Fn(&str) -> Option<String>,
    ) -> Result<usize, NodeError> {
        let Some(object) = map.as_object() else {
            return Ok(0);
        };
        let tx = self.conn.transaction().map_err(|e| NodeError::Database {
            path: self.path.clone(),
            source: Box::new(e),
        })?;
        let mut count = 0;
        let result = (|| {
            tx.execute("DELETE FROM node_classes WHERE source = 'manager'", [])?;
            let mut insert = tx.prepare(
                "INSERT OR REPLACE INTO node_classes (class_name, package, source, rank, version)
                 VALUES (?1, ?2, 'manager', 3, NULL)",
            )?;
            for (repo, entry) in object {
                // ComfyUI's own classes are listed too; they are built-ins, not a package.
                if repo.trim_end_matches('/').ends_with("comfyanonymous/ComfyUI") {
                    continue;
                }
                let package = package_of_repo(repo).unwrap_or_else(|| repo.clone());
                for class in entry[0]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.as_str())
                {
                    insert.execute(params![class, package])?;
                    count += 1;
                }
            }
            Ok::<(), rusqlite::Error>(())
        })();
        result.and_then(|()| tx.commit()).map_err(|e| self.error(e))?;
        Ok(count)
    }

    /// Every claim on `class_name`, most trusted first.
    pub fn lookup(&self, class_name: &str) -> Result<Vec<Claim>, NodeError> {
        self.query(
            "SELECT class_name, package, source, rank, version FROM node_classes
             WHERE class_name = ?1 ORDER BY rank, package",
            class_name,
        )
    }

    /// Claims whose class name contains `query` (case-insensitive), most trusted first.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<Claim>, NodeError> {
        let pattern = format!("%{}%", query.replace(['%', '_'], ""));
        let mut claims = self.query(
            "SELECT class_name, package, source, rank, version FROM node_classes
             WHERE class_name LIKE ?1 ORDER BY rank, class_name, package",
            &pattern,
        )?;
        claims.truncate(limit);
        Ok(claims)
    }

    /// Class names a package provides (any source).
    pub fn classes_of(&self, package: &str) -> Result<Vec<Claim>, NodeError> {
        self.query(
            "SELECT class_name, package, source, rank, version FROM node_classes
             WHERE package = ?1 ORDER BY rank, class_name",
            package,
        )
    }

    fn query(&self, sql: &str, arg: &str) -> Result<Vec<Claim>, NodeError> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.error(e))?;
        let rows = stmt
            .query_map(params![arg], |r| {
                Ok(Claim {
                    class_name: r.get(0)?,
                    package: r.get(1)?,
                    source: ClaimSource::parse(&r.get::<_, String>(2)?),
                    rank: r.get(3)?,
                    version: r.get(4)?,
                })
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.error(e))
    }
}

/// A repository URL reduced for comparison: no scheme, `.git` or trailing slash; lowercase.
pub fn normalize_repo_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/').trim_end_matches(".git");
    let url = url.split_once("://").map_or(url, |(_, rest)| rest);
    let url = url
        .strip_prefix("git@")
        .map_or_else(|| url.to_owned(), |r| r.replacen(':', "/", 1));
    url.to_ascii_lowercase()
}

/// Node class names of an installed node folder, from a static scan of its Python files
/// (`NODE_CLASS_MAPPINGS` keys and V3 schema `node_id`s); Python is never run.
pub fn scan_node_folder(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .max_depth(6)
        .into_iter()
        .filter_entry(|e| {
            let name = e.file_name().to_string_lossy();
            !(e.depth() > 0 && (name.starts_with('.') || name == "__pycache__" || name == "node_modules"))
        });
    for entry in walker.flatten().take(5000) {
        if entry.file_type().is_file() && entry.path().extension().is_some_and(|e| e == "py") {
            let Ok(source) = fs_err::read_to_string(entry.path()) else {
                continue;
            };
            if !source.contains("NODE_CLASS_MAPPINGS") && !source.contains("node_id") {
                continue;
            }
            for name in comfydock_workflow::builtins::scan_python_source(&source) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collisions_keep_every_claim_ranked() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = NodeIndex::open(&dir.path().join("node_index.db")).unwrap();
        index
            .record(
                "pack-a",
                ClaimSource::Installed,
                Some("1.0.0"),
                &["Shared".into(), "OnlyA".into()],
            )
            .unwrap();
        index
            .record("pack-b", ClaimSource::Registry, Some("2.0.0"), &["Shared".into()])
            .unwrap();
        index
            .import_extension_map(
                &serde_json::json!({
                    "https://github.com/x/pack-c": [["Shared"], {"title_aux": "C"}],
                    "https://github.com/comfyanonymous/ComfyUI": [["KSampler"], {}],
                    "https://github.com/x/pack-a.git": [["OnlyA"], {}],
                }),
                &|repo| (normalize_repo_url(repo) == "github.com/x/pack-a").then(|| "pack-a".to_owned()),
            )
            .unwrap();
        let claims = index.lookup("Shared").unwrap();
        let packages: Vec<(&str, i64)> = claims.iter().map(|c| (c.package.as_str(), c.rank)).collect();
        assert_eq!(
            packages,
            [("pack-a", 1), ("pack-b", 2), ("https://github.com/x/pack-c", 3)]
        );
        assert!(index.lookup("KSampler").unwrap().is_empty());
        // Re-recording replaces, never duplicates.
        index
            .record("pack-a", ClaimSource::Installed, Some("1.1.0"), &["OnlyA".into()])
            .unwrap();
        assert_eq!(index.lookup("Shared").unwrap().len(), 2);
        assert_eq!(index.search("only", 10).unwrap()[0].class_name, "OnlyA");
    }

    #[test]
    fn scans_mappings_and_v3_ids() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(
            dir.path().join("__init__.py"),
            "NODE_CLASS_MAPPINGS = {\"A\": A}\nNODE_CLASS_MAPPINGS[\"B\"] = B\n",
        )
        .unwrap();
        fs_err::create_dir_all(dir.path().join("sub")).unwrap();
        fs_err::write(
            dir.path().join("sub/v3.py"),
            "io.Schema(node_id=\"C\", display_name=\"c\")\n",
        )
        .unwrap();
        let mut names = scan_node_folder(dir.path());
        names.sort();
        assert_eq!(names, ["A", "B", "C"]);
    }

    #[test]
    fn opens_an_index_written_before_versions_keeping_its_claims() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node_index.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(MIGRATIONS[0].sql).unwrap();
        old.execute(
            "INSERT INTO node_classes (class_name, package, source, rank, version)
             VALUES ('OldNode', 'old-pack', 'installed', 1, '1.0')",
            [],
        )
        .unwrap();
        drop(old);
        let index = NodeIndex::open(&path).unwrap();
        let claims = index.lookup("OldNode").unwrap();
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].package, "old-pack");
        assert_eq!(sqlite::user_version(&index.conn).unwrap(), 1);
    }

    #[test]
    fn a_newer_index_is_refused_with_the_cache_hint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node_index.db");
        drop(NodeIndex::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 7)
            .unwrap();
        let err = NodeIndex::open(&path).unwrap_err();
        assert!(
            matches!(
                &err,
                NodeError::OpenDatabase(e)
                    if matches!(**e, sqlite::SqliteError::NewerSchema { found: 7, .. })
            ),
            "{err:?}"
        );
        let hint = comfydock_foundation::Hinted::hint(&err).unwrap();
        assert!(hint.contains("node_index.db"), "{hint}");
    }
}
