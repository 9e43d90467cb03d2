//! The ComfyUI Registry client (`registry.url`), with every JSON answer cached in
//! `.metadata/api_cache.db` so that lookups work offline.
//!
//! Only side-effect-free endpoints are used: `GET /nodes/{id}`, `/nodes/{id}/versions`,
//! `/nodes/search` and `/nodes/{id}/versions/{v}/comfy-nodes` (never `/install`, which records an
//! install). When the registry cannot be reached, cached answers of any age are used and
//! [`RegistryClient::offline`] turns true so callers can say so.
//!
//! The registry's OpenAPI document marks no field of `Node`, `NodeVersion` or the search page as
//! required, so every field is read as optional: a node without `id` is the id asked for, a
//! version without `version` is skipped, one without `downloadUrl` is listed but not installable,
//! and search follows `totalPages` when a page holds fewer nodes than asked for. Listing a
//! version's comfy-nodes is newer than the pinned OpenAPI document; it is best effort (callers
//! ignore its failures).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use comfydock_foundation::reporter::Reporter;
use comfydock_foundation::sqlite::{self, Migration, Schema};
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;
use serde_json::Value;

use super::error::NodeError;

/// How long a cached answer is used without asking the registry again (search, info).
pub const CACHE_TTL: Duration = Duration::from_mins(15);

/// The most pages one listing follows (a guard against a registry that never ends a listing).
const MAX_PAGES: u64 = 50;

/// How to use the cache for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Use a cached answer younger than [`CACHE_TTL`]; else ask, falling back to any cached answer.
    Cached,
    /// Always ask the registry first; fall back to the cache only when it is unreachable.
    Revalidate,
}

/// Schema steps of the cache, numbered from 1; never edit or remove one. Step 1 is the table
/// files written before versions were recorded already have (hence `IF NOT EXISTS`).
const CACHE_MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: "CREATE TABLE IF NOT EXISTS responses (
        url TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        fetched_at INTEGER NOT NULL
    );",
}];

/// SQLite cache of HTTP JSON answers, keyed by URL.
#[derive(Debug)]
pub struct ApiCache {
    path: PathBuf,
    conn: Connection,
}

impl ApiCache {
    /// Open (creating) the cache database.
    pub fn open(path: &Path) -> Result<Self, NodeError> {
        let conn = sqlite::open(path, &Schema::new(CACHE_MIGRATIONS))?;
        Ok(Self {
            path: path.to_path_buf(),
            conn,
        })
    }

    /// A cached answer and its age in seconds.
    pub fn get(&self, url: &str) -> Result<Option<(Value, i64)>, NodeError> {
        let row: Option<(String, i64)> = self
            .conn
            .query_row(
                "SELECT body, fetched_at FROM responses WHERE url = ?1",
                params![url],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|source| self.error(source))?;
        Ok(row.and_then(|(body, at)| {
            serde_json::from_str(&body)
                .ok()
                .map(|v| (v, now().saturating_sub(at)))
        }))
    }

    /// Store an answer.
    pub fn put(&self, url: &str, body: &Value) -> Result<(), NodeError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO responses (url, body, fetched_at) VALUES (?1, ?2, ?3)",
                params![url, body.to_string(), now()],
            )
            .map_err(|source| self.error(source))?;
        Ok(())
    }

    fn error(&self, source: rusqlite::Error) -> NodeError {
        NodeError::Database {
            path: self.path.clone(),
            source: Box::new(source),
        }
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A registry node (the fields comfydock uses).
#[derive(Debug, Clone, Serialize)]
pub struct RegistryNode {
    pub id: String,
    pub name: String,
    pub description: String,
    pub repository: Option<String>,
    pub latest_version: Option<String>,
}

impl RegistryNode {
    /// A node document; `None` without an `id` (search results), unless `asked_id` says which
    /// node it is (`/nodes/{id}`).
    fn from_json(v: &Value, asked_id: Option<&str>) -> Option<Self> {
        if !v.is_object() {
            return None;
        }
        Some(Self {
            id: v["id"].as_str().or(asked_id)?.to_owned(),
            name: v["name"].as_str().unwrap_or_default().to_owned(),
            description: v["description"].as_str().unwrap_or_default().to_owned(),
            repository: v["repository"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            latest_version: v["latest_version"]["version"].as_str().map(str::to_owned),
        })
    }
}

/// The `status` of a version that may be installed (an absent status counts as active).
pub const ACTIVE_VERSION_STATUS: &str = "NodeVersionStatusActive";

/// One published version of a node.
#[derive(Debug, Clone, Serialize)]
pub struct RegistryVersion {
    pub version: String,
    /// Where the zip is; `None` when the registry does not say (the version cannot be installed).
    pub download_url: Option<String>,
    pub deprecated: bool,
    /// `NodeVersionStatus…` as the registry gives it (`None` when absent).
    pub status: Option<String>,
    pub dependencies: Vec<String>,
}

impl RegistryVersion {
    fn from_json(v: &Value) -> Option<Self> {
        Some(Self {
            version: v["version"].as_str().filter(|s| !s.is_empty())?.to_owned(),
            download_url: v["downloadUrl"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            deprecated: v["deprecated"].as_bool().unwrap_or(false),
            status: v["status"].as_str().map(str::to_owned),
            dependencies: v["dependencies"]
                .as_array()
                .map(|a| a.iter().filter_map(|d| d.as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
        })
    }
}

/// The version [`RegistryClient::pick_version`] chose, with where to download it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickedVersion {
    pub version: String,
    pub download_url: String,
}

/// The registry API with its cache.
pub struct RegistryClient {
    base: String,
    http: reqwest::blocking::Client,
    cache: ApiCache,
    offline: AtomicBool,
}

impl RegistryClient {
    /// A client for `base_url` caching into `cache_db`.
    pub fn new(base_url: &str, cache_db: &Path) -> Result<Self, NodeError> {
        Ok(Self {
            base: base_url.trim_end_matches('/').to_owned(),
            http: http_client(),
            cache: ApiCache::open(cache_db)?,
            offline: AtomicBool::new(false),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Whether some answer came from the cache because the registry was unreachable.
    pub fn offline(&self) -> bool {
        self.offline.load(Ordering::Relaxed)
    }

    /// GET a JSON document (absolute URL or a path under the registry); `Ok(None)` on 404.
    pub fn get_json(&self, url_or_path: &str, freshness: Freshness) -> Result<Option<Value>, NodeError> {
        let url = if url_or_path.starts_with("http://") || url_or_path.starts_with("https://") {
            url_or_path.to_owned()
        } else {
            format!("{}{url_or_path}", self.base)
        };
        let cached = self.cache.get(&url)?;
        if freshness == Freshness::Cached
            && let Some((body, age)) = &cached
            && u64::try_from(*age).unwrap_or(u64::MAX) < CACHE_TTL.as_secs()
        {
            return Ok(Some(body.clone()));
        }
        match self.http.get(&url).send() {
            Ok(response) if response.status().as_u16() == 404 => Ok(None),
            Ok(response) if response.status().is_success() => {
                let body: Value = response.json().map_err(|e| NodeError::RegistryDocument {
                    url: url.clone(),
                    reason: e.to_string(),
                })?;
                self.cache.put(&url, &body)?;
                Ok(Some(body))
            }
            Ok(response) => match cached {
                Some((body, _)) if response.status().is_server_error() => {
                    self.offline.store(true, Ordering::Relaxed);
                    Ok(Some(body))
                }
                _ => Err(NodeError::RegistryStatus {
                    url,
                    status: response.status().as_u16(),
                }),
            },
            Err(source) => match cached {
                Some((body, _)) => {
                    tracing::debug!("registry unreachable ({source}); using the cached answer for {url}");
                    self.offline.store(true, Ordering::Relaxed);
                    Ok(Some(body))
                }
                None => Err(NodeError::RegistryUnreachable {
                    url,
                    source: Box::new(source),
                }),
            },
        }
    }

    /// `GET /nodes/{id}`.
    pub fn node(&self, id: &str, freshness: Freshness) -> Result<RegistryNode, NodeError> {
        let path = format!("/nodes/{id}");
        let doc = self
            .get_json(&path, freshness)?
            .ok_or_else(|| NodeError::UnknownNode {
                id: id.to_owned(),
                registry: self.base.clone(),
            })?;
        let node = RegistryNode::from_json(&doc, Some(id)).ok_or_else(|| NodeError::RegistryDocument {
            url: format!("{}{path}", self.base),
            reason: "expected a node object".into(),
        })?;
        // The id becomes a folder name: refuse anything but a plain name.
        comfydock_foundation::path_part::check(&node.id).map_err(|e| NodeError::RegistryDocument {
            url: format!("{}{path}", self.base),
            reason: e.to_string(),
        })?;
        Ok(node)
    }

    /// `GET /nodes/{id}/versions`, newest first as the registry returns them.
    pub fn versions(&self, id: &str, freshness: Freshness) -> Result<Vec<RegistryVersion>, NodeError> {
        let path = format!("/nodes/{id}/versions");
        let doc = self
            .get_json(&path, freshness)?
            .ok_or_else(|| NodeError::UnknownNode {
                id: id.to_owned(),
                registry: self.base.clone(),
            })?;
        let list = doc.as_array().ok_or_else(|| NodeError::RegistryDocument {
            url: format!("{}{path}", self.base),
            reason: "expected a list of versions".into(),
        })?;
        // Versions become file names: ones that are not plain names are never offered.
        let mut versions: Vec<RegistryVersion> = list
            .iter()
            .filter_map(RegistryVersion::from_json)
            .filter(|v| comfydock_foundation::path_part::is_plain(&v.version))
            .collect();
        versions.sort_by_key(|v| std::cmp::Reverse(version_key(&v.version)));
        Ok(versions)
    }

    /// The version to install: `wanted`, or the newest active non-deprecated one (the newest
    /// active one if all are deprecated). The version must have a `downloadUrl`.
    pub fn pick_version(&self, id: &str, wanted: Option<&str>) -> Result<PickedVersion, NodeError> {
        let versions = self.versions(id, Freshness::Revalidate)?;
        let active = || {
            versions
                .iter()
                .filter(|v| v.status.as_deref().is_none_or(|s| s == ACTIVE_VERSION_STATUS))
        };
        let found = if let Some(w) = wanted {
            versions.iter().find(|v| v.version == w)
        } else {
            active().find(|v| !v.deprecated).or_else(|| active().next())
        };
        let Some(found) = found else {
            return Err(match wanted {
                Some(w) => NodeError::UnknownVersion {
                    id: id.to_owned(),
                    version: w.to_owned(),
                    available: versions.iter().take(5).map(|v| v.version.clone()).collect(),
                },
                None => NodeError::NoInstallableVersion {
                    id: id.to_owned(),
                    registry: self.base.clone(),
                },
            });
        };
        let Some(download_url) = found.download_url.clone() else {
            return Err(NodeError::RegistryDocument {
                url: format!("{}/nodes/{id}/versions", self.base),
                reason: format!("version {} has no `downloadUrl`", found.version),
            });
        };
        Ok(PickedVersion {
            version: found.version.clone(),
            download_url,
        })
    }

    /// `GET /nodes/search?search=QUERY`: up to `limit` nodes, following further pages while the
    /// registry serves fewer nodes per page than asked for and says more pages exist.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<RegistryNode>, NodeError> {
        let encoded: String = url::form_urlencoded::byte_serialize(query.as_bytes()).collect();
        let mut nodes = Vec::new();
        let mut listed = 0_u64;
        for page in 1..=MAX_PAGES {
            let path = format!("/nodes/search?search={encoded}&page={page}&limit={limit}");
            let doc = self.get_json(&path, Freshness::Cached)?.unwrap_or(Value::Null);
            let page_nodes = doc["nodes"].as_array().map(Vec::as_slice).unwrap_or_default();
            listed += page_nodes.len() as u64;
            nodes.extend(page_nodes.iter().filter_map(|n| RegistryNode::from_json(n, None)));
            let more = match (doc["totalPages"].as_u64(), doc["total"].as_u64()) {
                (Some(pages), _) => page < pages,
                (None, Some(total)) => listed < total,
                (None, None) => false,
            };
            if nodes.len() >= limit || page_nodes.is_empty() || !more {
                break;
            }
        }
        nodes.truncate(limit);
        Ok(nodes)
    }

    /// Node class names of one version (`/nodes/{id}/versions/{v}/comfy-nodes`, all pages).
    pub fn comfy_nodes(&self, id: &str, version: &str) -> Result<Vec<String>, NodeError> {
        let mut names = Vec::new();
        for page in 1..=MAX_PAGES {
            let path = format!("/nodes/{id}/versions/{version}/comfy-nodes?page={page}&limit=100");
            let Some(doc) = self.get_json(&path, Freshness::Cached)? else {
                break;
            };
            let list = doc["comfy_nodes"].as_array().cloned().unwrap_or_default();
            names.extend(list.iter().filter_map(|n| {
                n["comfy_node_name"]
                    .as_str()
                    .or_else(|| n["comfy_node_id"].as_str())
                    .map(str::to_owned)
            }));
            let pages = doc["totalNumberOfPages"].as_u64().unwrap_or(1);
            if list.is_empty() || page >= pages {
                break;
            }
        }
        Ok(names)
    }

    /// Download `url` into `dest` (a temp path), returning the bytes written. The transfer
    /// shows on `reporter` as work named `label`, in bytes.
    pub fn download(
        &self,
        url: &str,
        dest: &Path,
        label: &str,
        reporter: &dyn Reporter,
    ) -> Result<u64, NodeError> {
        let to_err = |source| NodeError::Download {
            url: url.to_owned(),
            source: Box::new(source),
        };
        let mut response = self
            .http
            .get(url)
            .timeout(Duration::from_mins(10))
            .send()
            .and_then(reqwest::blocking::Response::error_for_status)
            .map_err(to_err)?;
        let mut file = fs_err::File::create(dest)?;
        let work = reporter.start(label, response.content_length());
        let copied = copy_reported(&mut response, &mut file, |done| reporter.progress(work, done));
        reporter.finish(work);
        let written = copied.map_err(|e| match e {
            CopyError::Read(source) => to_err(source),
            CopyError::Io(source) => NodeError::from(source),
        })?;
        file.sync_all()?;
        Ok(written)
    }
}

enum CopyError {
    Read(reqwest::Error),
    Io(std::io::Error),
}

/// Copy the response body into `file`, telling `progress` the bytes written so far.
fn copy_reported(
    response: &mut reqwest::blocking::Response,
    file: &mut fs_err::File,
    progress: impl Fn(u64),
) -> Result<u64, CopyError> {
    use std::io::{Read as _, Write as _};
    let mut buf = vec![0_u8; 64 * 1024];
    let mut done = 0_u64;
    loop {
        let n = match response.read(&mut buf) {
            Ok(0) => return Ok(done),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if e.get_ref()
                    .is_some_and(<dyn std::error::Error + Send + Sync>::is::<reqwest::Error>) =>
            {
                let source = e
                    .into_inner()
                    .and_then(|inner| inner.downcast::<reqwest::Error>().ok())
                    .expect("checked to be a reqwest error");
                return Err(CopyError::Read(*source));
            }
            Err(e) => return Err(CopyError::Io(e)),
        };
        file.write_all(&buf[..n]).map_err(CopyError::Io)?;
        done += n as u64;
        progress(done);
    }
}

fn http_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_mins(1))
        .user_agent(concat!("comfydock/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client builds")
}

/// Numeric ordering of semver-like versions (`1.10.0` > `1.9.0`).
pub fn version_key(version: &str) -> Vec<u64> {
    version
        .trim_start_matches('v')
        .split(['.', '-', '+'])
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_a_cache_written_before_versions_keeping_its_answers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api_cache.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(CACHE_MIGRATIONS[0].sql).unwrap();
        old.execute(
            "INSERT INTO responses (url, body, fetched_at) VALUES ('http://r.test/nodes/a', '{\"id\":\"a\"}', 0)",
            [],
        )
        .unwrap();
        drop(old);
        let cache = ApiCache::open(&path).unwrap();
        let (body, _age) = cache.get("http://r.test/nodes/a").unwrap().unwrap();
        assert_eq!(body["id"], "a");
        assert_eq!(sqlite::user_version(&cache.conn).unwrap(), 1);
    }

    #[test]
    fn cache_round_trip_and_versions_sort() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ApiCache::open(&dir.path().join("api_cache.db")).unwrap();
        assert!(cache.get("u").unwrap().is_none());
        cache.put("u", &serde_json::json!({"a": 1})).unwrap();
        let (body, age) = cache.get("u").unwrap().unwrap();
        assert_eq!(body["a"], 1);
        assert!(age < 5);
        assert!(version_key("1.10.0") > version_key("1.9.0"));
    }

    #[test]
    fn unreachable_without_cache_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let client = RegistryClient::new("http://127.0.0.1:9", &dir.path().join("c.db")).unwrap();
        let err = client.node("x", Freshness::Revalidate).unwrap_err();
        assert!(matches!(err, NodeError::RegistryUnreachable { .. }), "{err}");
        assert!(!client.offline());
    }
}
