//! A ComfyUI Registry stand-in (api.comfy.org shapes) that serves node-pack zips built at test time,
//! plus ComfyUI-Manager's data files (`extension-node-map.json`, `custom-node-list.json`,
//! `model-list.json`) under `{url}/manager/`.
//!
//! Endpoints: `GET /nodes` (`page`, `limit`), `/nodes/search?search=`, `/nodes/{id}`,
//! `/nodes/{id}/versions`, `/nodes/{id}/versions/{v}`, `/nodes/{id}/install[?version=]` (recorded),
//! `/nodes/{id}/versions/{v}/comfy-nodes`, `/comfy-nodes/{name}/node`, `POST /bulk/nodes/versions`;
//! zips at `{url}/cdn/{id}/{version}/node.zip` (the `downloadUrl`).
//!
//! Documents, status codes and error bodies follow the registry's OpenAPI document (checked by
//! `tests/registry_contract.rs`): only documented fields are sent, and error bodies are
//! `ErrorResponse` (`error`, `message`) or `Error` (`message`) as each path documents.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{Value, json};

use crate::archive::{ZipEntry, build_zip, sha256_hex};
use crate::file_server::serve_bytes;
use crate::http::{HttpServer, Request, RequestLog, Response};

pub use crate::node_source::PUBLISHER_ID;

/// A node pack version to publish: metadata, files, dependencies and node classes.
#[derive(Clone, Debug)]
pub struct NodePackage {
    id: String,
    version: String,
    display_name: String,
    description: String,
    repository: String,
    requirements: Vec<String>,
    node_classes: Vec<String>,
    files: Vec<(String, Vec<u8>)>,
    extra_entries: Vec<ZipEntry>,
    deprecated: bool,
    write_requirements_txt: bool,
    write_pyproject: bool,
    in_manager_map: bool,
}

impl NodePackage {
    /// A pack `id` (registry slug) at `version` (semver), with repository
    /// `https://github.com/comfydock-test/<id>`.
    pub fn new(id: &str, version: &str) -> Self {
        NodePackage {
            id: id.to_owned(),
            version: version.to_owned(),
            display_name: id.to_owned(),
            description: format!("Stand-in node pack {id}"),
            repository: format!("https://github.com/{PUBLISHER_ID}/{id}"),
            requirements: Vec::new(),
            node_classes: Vec::new(),
            files: Vec::new(),
            extra_entries: Vec::new(),
            deprecated: false,
            write_requirements_txt: true,
            write_pyproject: true,
            in_manager_map: true,
        }
    }

    /// Display name (`name` in the Node document).
    #[must_use]
    pub fn name(mut self, display_name: &str) -> Self {
        display_name.clone_into(&mut self.display_name);
        self
    }

    /// Description (searched by `/nodes/search`).
    #[must_use]
    pub fn description(mut self, description: &str) -> Self {
        description.clone_into(&mut self.description);
        self
    }

    /// Repository URL (key of the extension-node-map entry).
    #[must_use]
    pub fn repository(mut self, url: &str) -> Self {
        url.clone_into(&mut self.repository);
        self
    }

    /// Adds a dependency: listed in `dependencies`, `pyproject.toml` and `requirements.txt`, and
    /// imported by the generated `__init__.py` (so a missing dependency fails the node's import).
    #[must_use]
    pub fn requirements(mut self, requirement: &str) -> Self {
        self.requirements.push(requirement.to_owned());
        self
    }

    /// Adds a node class to the generated `__init__.py`'s `NODE_CLASS_MAPPINGS` and to the
    /// version's comfy-nodes list.
    #[must_use]
    pub fn node_class(mut self, class_name: &str) -> Self {
        self.node_classes.push(class_name.to_owned());
        self
    }

    /// Adds or replaces a file (a given `__init__.py` replaces the generated one).
    #[must_use]
    pub fn file(mut self, path: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.files.retain(|(p, _)| p != path);
        self.files.push((path.to_owned(), contents.into()));
        self
    }

    /// Adds a `../<name>` entry that escapes the extraction folder.
    #[must_use]
    pub fn traversal_entry(mut self) -> Self {
        self.extra_entries
            .push(ZipEntry::file("../comfydock-escaped.py", "print('escaped')\n"));
        self
    }

    /// Adds an entry with an absolute path (`/tmp/comfydock-absolute-<id>.py`).
    #[must_use]
    pub fn absolute_entry(mut self) -> Self {
        let name = format!("/tmp/comfydock-absolute-{}.py", self.id);
        self.extra_entries
            .push(ZipEntry::file(name, "print('absolute')\n"));
        self
    }

    /// Adds a symlink entry `name` → `target` (e.g. `../../../etc/passwd`).
    #[must_use]
    pub fn symlink_entry(mut self, name: &str, target: &str) -> Self {
        self.extra_entries.push(ZipEntry::Symlink {
            name: name.to_owned(),
            target: target.to_owned(),
        });
        self
    }

    /// Adds an arbitrary raw zip entry.
    #[must_use]
    pub fn raw_entry(mut self, entry: ZipEntry) -> Self {
        self.extra_entries.push(entry);
        self
    }

    /// Marks the version deprecated.
    #[must_use]
    pub fn deprecated(mut self) -> Self {
        self.deprecated = true;
        self
    }

    /// Leaves `requirements.txt` out of the zip (dependencies only in `pyproject.toml`).
    #[must_use]
    pub fn without_requirements_txt(mut self) -> Self {
        self.write_requirements_txt = false;
        self
    }

    /// Leaves the pack out of ComfyUI-Manager's `extension-node-map.json` (as for packs published
    /// after the map was last generated).
    #[must_use]
    pub fn not_in_manager_map(mut self) -> Self {
        self.in_manager_map = false;
        self
    }

    /// Leaves `pyproject.toml` out of the zip.
    #[must_use]
    pub fn without_pyproject(mut self) -> Self {
        self.write_pyproject = false;
        self
    }

    /// The registry id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The node classes this version provides.
    pub fn node_classes(&self) -> &[String] {
        &self.node_classes
    }

    /// The zip entries, files at the archive root as registry zips have them.
    pub fn entries(&self) -> Vec<ZipEntry> {
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        if !self.files.iter().any(|(p, _)| p == "__init__.py") {
            files.push(("__init__.py".to_owned(), self.generated_init().into_bytes()));
        }
        if self.write_pyproject && !self.files.iter().any(|(p, _)| p == "pyproject.toml") {
            files.push(("pyproject.toml".to_owned(), self.pyproject().into_bytes()));
        }
        if self.write_requirements_txt
            && !self.requirements.is_empty()
            && !self.files.iter().any(|(p, _)| p == "requirements.txt")
        {
            let mut text = self.requirements.join("\n");
            text.push('\n');
            files.push(("requirements.txt".to_owned(), text.into_bytes()));
        }
        files.extend(self.files.iter().cloned());
        let mut entries: Vec<ZipEntry> = files.into_iter().map(|(p, b)| ZipEntry::file(p, b)).collect();
        entries.extend(self.extra_entries.iter().cloned());
        entries
    }

    /// The zip bytes (deterministic for the same package).
    pub fn zip_bytes(&self) -> Vec<u8> {
        build_zip(&self.entries())
    }

    fn generated_init(&self) -> String {
        crate::node_source::init_py(&self.id, &self.requirements, &self.node_classes)
    }

    fn pyproject(&self) -> String {
        crate::node_source::pyproject_toml(&crate::node_source::PyprojectFields {
            name: &self.id,
            display_name: &self.display_name,
            version: &self.version,
            description: &self.description,
            repository: &self.repository,
            dependencies: &self.requirements,
        })
    }
}

struct Published {
    package: NodePackage,
    zip: Vec<u8>,
    created_at: String,
}

#[derive(Default)]
struct RegistryState {
    base_url: String,
    /// id → versions in publish order.
    nodes: BTreeMap<String, Vec<Published>>,
    installs: Vec<(String, Option<String>)>,
    extension_map_extra: serde_json::Map<String, Value>,
    model_list: Vec<Value>,
    publish_count: usize,
    /// Most nodes one page of `/nodes` or `/nodes/search` holds, whatever `limit` asks.
    max_page_size: Option<usize>,
}

/// A running Registry stand-in on `127.0.0.1:PORT`; stops when dropped.
pub struct RegistryServer {
    server: HttpServer,
    state: Arc<Mutex<RegistryState>>,
}

impl Default for RegistryServer {
    fn default() -> Self {
        Self::start()
    }
}

impl RegistryServer {
    /// Starts an empty registry.
    pub fn start() -> Self {
        let state = Arc::new(Mutex::new(RegistryState::default()));
        let handler_state = state.clone();
        let server = HttpServer::start(move |request| handle(&handler_state, request));
        state.lock().unwrap_or_else(PoisonError::into_inner).base_url = server.url();
        RegistryServer { server, state }
    }

    /// Publishes a pack version (its zip is built now); returns the zip's sha256 (hex).
    pub fn publish(&self, package: NodePackage) -> String {
        let zip = package.zip_bytes();
        let sha = sha256_hex(&zip);
        let mut state = self.state();
        state.publish_count += 1;
        let n = state.publish_count;
        let created_at = format!("2025-01-{:02}T{:02}:00:00Z", 1 + (n / 24) % 28, n % 24);
        let versions = state.nodes.entry(package.id.clone()).or_default();
        versions.retain(|p| p.package.version != package.version);
        versions.push(Published {
            package,
            zip,
            created_at,
        });
        sha
    }

    /// Serves different bytes for an already published version (a changed or corrupted upload).
    pub fn replace_zip(&self, id: &str, version: &str, bytes: Vec<u8>) {
        let mut state = self.state();
        let published = state
            .nodes
            .get_mut(id)
            .and_then(|v| v.iter_mut().find(|p| p.package.version == version))
            .unwrap_or_else(|| panic!("{id}@{version} is not published"));
        published.zip = bytes;
    }

    /// Serves at most `size` nodes per page of `/nodes` and `/nodes/search`, whatever `limit` the
    /// client asks for (the answer's `limit` says so), as a registry capping its page size does.
    pub fn cap_page_size(&self, size: usize) {
        assert!(size >= 1, "a page holds at least one node");
        self.state().max_page_size = Some(size);
    }

    /// Adds an extra `extension-node-map.json` entry (e.g. for a git-only pack or ComfyUI itself).
    pub fn add_extension_map_entry(&self, repository: &str, class_names: &[&str], title: &str) {
        self.state()
            .extension_map_extra
            .insert(repository.to_owned(), json!([class_names, {"title_aux": title}]));
    }

    /// Adds an entry to `model-list.json` (`{name, type, base, save_path, filename, url, size, ...}`).
    pub fn add_model_list_entry(&self, entry: Value) {
        self.state().model_list.push(entry);
    }

    /// `http://127.0.0.1:PORT` (for `registry.url` / `COMFYDOCK_REGISTRY_URL`).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// `http://127.0.0.1:PORT/manager` (for `manager_data.url`; serves `extension-node-map.json`).
    pub fn manager_data_url(&self) -> String {
        format!("{}/manager", self.url())
    }

    /// The `downloadUrl` of a version.
    pub fn download_url(&self, id: &str, version: &str) -> String {
        format!("{}/cdn/{id}/{version}/node.zip", self.url())
    }

    /// `(id, requested version)` of every `/install` call, in order.
    pub fn installs(&self) -> Vec<(String, Option<String>)> {
        self.state().installs.clone()
    }

    /// How many times a zip of `id` was downloaded.
    pub fn zip_downloads(&self, id: &str) -> usize {
        let prefix = format!("/cdn/{id}/");
        self.log()
            .all()
            .iter()
            .filter(|r| r.path().starts_with(&prefix))
            .count()
    }

    /// Requests received so far.
    pub fn log(&self) -> &RequestLog {
        self.server.log()
    }

    /// Stops the server: the registry becomes unreachable (connections refused).
    pub fn stop(&mut self) {
        self.server.stop();
    }

    fn state(&self) -> MutexGuard<'_, RegistryState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn version_key(version: &str) -> Vec<u64> {
    version
        .split(['.', '-', '+'])
        .map(|part| part.parse().unwrap_or(0))
        .collect()
}

fn deterministic_uuid(seed: &str) -> String {
    let h = sha256_hex(seed.as_bytes());
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

fn node_version_json(base: &str, published: &Published) -> Value {
    let p = &published.package;
    json!({
        "id": deterministic_uuid(&format!("{}@{}", p.id, p.version)),
        "node_id": p.id,
        "version": p.version,
        "createdAt": published.created_at,
        "changelog": format!("Release {}", p.version),
        "dependencies": p.requirements,
        "downloadUrl": format!("{base}/cdn/{}/{}/node.zip", p.id, p.version),
        "deprecated": p.deprecated,
        "status": "NodeVersionStatusActive",
        "status_reason": "",
    })
}

fn latest(versions: &[Published]) -> Option<&Published> {
    versions.iter().max_by_key(|p| version_key(&p.package.version))
}

fn node_json(base: &str, versions: &[Published]) -> Value {
    let latest = latest(versions).expect("a node has at least one version");
    let p = &latest.package;
    json!({
        "id": p.id,
        "name": p.display_name,
        "description": p.description,
        "author": "Comfydock Test",
        "license": "LICENSE",
        "icon": "",
        "category": "",
        "repository": p.repository,
        "tags": [],
        "latest_version": node_version_json(base, latest),
        "rating": 0,
        "downloads": 0,
        "publisher": {"id": PUBLISHER_ID, "name": "Comfydock Test", "status": "PublisherStatusActive"},
        "status": "NodeStatusActive",
        "status_detail": "",
    })
}

fn comfy_node_json(class: &str, id: &str) -> Value {
    json!({
        "comfy_node_id": class,
        "category": id,
        "description": "",
        "input_types": "{\"required\": {\"value\": [\"INT\", {\"default\": 0}]}}",
        "return_types": "[\"INT\"]",
        "return_names": "",
        "output_is_list": [false],
        "function": "run",
        "deprecated": false,
        "experimental": false,
    })
}

/// An `ErrorResponse` body (`error` and `message`, both required).
fn error(status: u16, message: &str) -> Response {
    Response::status(status).with_json(&json!({"error": message, "message": message}))
}

/// An `Error` body (`message`), which some paths document instead of `ErrorResponse`.
fn error_message(status: u16, message: &str) -> Response {
    Response::status(status).with_json(&json!({"message": message}))
}

/// `x.y.z`, the pattern `/install` documents for `version`.
fn is_plain_semver(version: &str) -> bool {
    let parts: Vec<&str> = version.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn page_params(request: &Request) -> (usize, usize) {
    let page = request
        .query("page")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let limit = request
        .query("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l >= 1)
        .unwrap_or(10);
    (page, limit)
}

fn node_page(base: &str, matching: &[&Vec<Published>], page: usize, limit: usize) -> Value {
    let total = matching.len();
    // The OpenAPI `limit` is "maximum number of nodes per page": the one served.
    let nodes: Vec<Value> = matching
        .iter()
        .skip((page - 1) * limit)
        .take(limit)
        .map(|v| node_json(base, v))
        .collect();
    json!({"total": total, "nodes": nodes, "page": page, "limit": limit, "totalPages": total.div_ceil(limit)})
}

fn handle(state: &Mutex<RegistryState>, request: &Request) -> Response {
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    let base = state.base_url.clone();
    let path = request.path();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if request.method == "POST" {
        return if path == "/bulk/nodes/versions" {
            bulk_versions(&state, &base, request)
        } else {
            error(405, "method not allowed")
        };
    }
    match segments.as_slice() {
        ["nodes"] => {
            let (page, limit) = page_params(request);
            let limit = state.max_page_size.map_or(limit, |max| limit.min(max));
            let all: Vec<&Vec<Published>> = state.nodes.values().collect();
            Response::json(&node_page(&base, &all, page, limit))
        }
        ["nodes", "search"] => {
            let (page, limit) = page_params(request);
            let limit = state.max_page_size.map_or(limit, |max| limit.min(max));
            let needle = request.query("search").unwrap_or_default().to_lowercase();
            let matching: Vec<&Vec<Published>> = state
                .nodes
                .values()
                .filter(|versions| {
                    let p = &latest(versions).expect("published").package;
                    [&p.id, &p.display_name, &p.description]
                        .iter()
                        .any(|f| f.to_lowercase().contains(&needle))
                })
                .collect();
            Response::json(&node_page(&base, &matching, page, limit))
        }
        ["nodes", id] => match state.nodes.get(*id) {
            Some(versions) => Response::json(&node_json(&base, versions)),
            None => error(404, "Node not found"),
        },
        ["nodes", id, "versions"] => match state.nodes.get(*id) {
            Some(versions) => {
                let mut sorted: Vec<&Published> = versions.iter().collect();
                sorted.sort_by_key(|p| std::cmp::Reverse(version_key(&p.package.version)));
                Response::json(&Value::Array(
                    sorted.iter().map(|p| node_version_json(&base, p)).collect(),
                ))
            }
            None => error_message(404, "Node not found"),
        },
        ["nodes", id, "versions", version] => match find(&state, id, Some(version)) {
            Some(p) => Response::json(&node_version_json(&base, p)),
            None => error_message(404, "Node version not found"),
        },
        ["nodes", id, "install"] => {
            let version = request.query("version");
            if let Some(v) = version.as_deref().filter(|v| !is_plain_semver(v)) {
                return error(400, &format!("Invalid version format: {v}"));
            }
            let found = find(&state, id, version.as_deref()).map(|p| node_version_json(&base, p));
            match found {
                Some(doc) => {
                    state.installs.push(((*id).to_owned(), version));
                    Response::json(&doc)
                }
                None => error(404, "Node version not found"),
            }
        }
        ["nodes", id, "versions", version, "comfy-nodes"] => match find(&state, id, Some(version)) {
            Some(p) => {
                let (page, limit) = page_params(request);
                let classes = &p.package.node_classes;
                let nodes: Vec<Value> = classes
                    .iter()
                    .skip((page - 1) * limit)
                    .take(limit)
                    .map(|c| comfy_node_json(c, id))
                    .collect();
                Response::json(
                    &json!({"comfy_nodes": nodes, "totalNumberOfPages": classes.len().div_ceil(limit)}),
                )
            }
            None => error(404, "Node version not found"),
        },
        ["comfy-nodes", class, "node"] => {
            let owner = state.nodes.values().find(|versions| {
                latest(versions).is_some_and(|p| p.package.node_classes.iter().any(|c| c == class))
            });
            match owner {
                Some(versions) => Response::json(&node_json(&base, versions)),
                None => error(404, "Comfy node not found"),
            }
        }
        ["cdn", id, version, "node.zip"] => match find(&state, id, Some(version)) {
            Some(p) => serve_bytes(request, p.zip.clone(), Some("application/zip")),
            None => Response::not_found(),
        },
        ["manager", "extension-node-map.json"] => Response::json(&extension_node_map(&state)),
        ["manager", "custom-node-list.json"] => Response::json(&custom_node_list(&state)),
        ["manager", "model-list.json"] => Response::json(&json!({"models": state.model_list})),
        _ => error(404, "Not found"),
    }
}

fn find<'a>(state: &'a RegistryState, id: &str, version: Option<&str>) -> Option<&'a Published> {
    let versions = state.nodes.get(id)?;
    match version {
        Some(v) => versions.iter().find(|p| p.package.version == v),
        None => latest(versions),
    }
}

fn bulk_versions(state: &RegistryState, base: &str, request: &Request) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        return error(400, "invalid JSON body");
    };
    let items = body["node_versions"].as_array().cloned().unwrap_or_default();
    let results: Vec<Value> = items
        .iter()
        .map(|item| {
            let id = item["node_id"].as_str().unwrap_or_default();
            let version = item["version"].as_str().unwrap_or_default();
            let identifier = json!({"node_id": id, "version": version});
            match find(state, id, Some(version)) {
                Some(p) => json!({"identifier": identifier, "status": "success", "node_version": node_version_json(base, p)}),
                None => json!({"identifier": identifier, "status": "not_found"}),
            }
        })
        .collect();
    Response::json(&json!({"node_versions": results}))
}

fn extension_node_map(state: &RegistryState) -> Value {
    let mut map = serde_json::Map::new();
    for versions in state.nodes.values() {
        let p = &latest(versions).expect("published").package;
        if !p.in_manager_map {
            continue;
        }
        map.insert(
            p.repository.clone(),
            json!([p.node_classes, {"title_aux": p.display_name}]),
        );
    }
    for (repo, entry) in &state.extension_map_extra {
        map.insert(repo.clone(), entry.clone());
    }
    Value::Object(map)
}

fn custom_node_list(state: &RegistryState) -> Value {
    let nodes: Vec<Value> = state
        .nodes
        .values()
        .map(|versions| {
            let p = &latest(versions).expect("published").package;
            json!({
                "author": "Comfydock Test",
                "title": p.display_name,
                "id": p.id,
                "reference": p.repository,
                "files": [p.repository],
                "install_type": "git-clone",
                "description": p.description,
            })
        })
        .collect();
    json!({"custom_nodes": nodes})
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read};

    use super::*;
    use crate::http::client::{get, request};

    fn registry() -> RegistryServer {
        let registry = RegistryServer::start();
        registry.publish(
            NodePackage::new("my-node", "1.0.0")
                .node_class("MyNodeA")
                .requirements("node-dep-a>=1"),
        );
        registry.publish(
            NodePackage::new("my-node", "1.1.0")
                .name("My Node")
                .node_class("MyNodeA")
                .node_class("MyNodeB")
                .requirements("node-dep-a>=1.1"),
        );
        registry.publish(
            NodePackage::new("other-pack", "0.2.0")
                .description("Upscaling helpers")
                .node_class("OtherNode"),
        );
        registry
    }

    #[test]
    fn node_and_versions_have_registry_shapes() {
        let registry = registry();
        let node = get(&format!("{}/nodes/my-node", registry.url()), &[])
            .unwrap()
            .json();
        assert_eq!(node["id"], "my-node");
        assert_eq!(node["name"], "My Node");
        assert_eq!(node["latest_version"]["version"], "1.1.0");
        assert_eq!(
            node["latest_version"]["downloadUrl"],
            registry.download_url("my-node", "1.1.0")
        );
        assert_eq!(node["latest_version"]["dependencies"], json!(["node-dep-a>=1.1"]));
        assert_eq!(node["publisher"]["id"], PUBLISHER_ID);
        assert_eq!(node["status"], "NodeStatusActive");

        let versions = get(&format!("{}/nodes/my-node/versions", registry.url()), &[])
            .unwrap()
            .json();
        let listed: Vec<&str> = versions
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_str().unwrap())
            .collect();
        assert_eq!(listed, ["1.1.0", "1.0.0"]);
        let one = get(&format!("{}/nodes/my-node/versions/1.0.0", registry.url()), &[])
            .unwrap()
            .json();
        assert_eq!(one["node_id"], "my-node");
        assert_eq!(one["status"], "NodeVersionStatusActive");
        assert_eq!(
            get(&format!("{}/nodes/nope", registry.url()), &[])
                .unwrap()
                .status,
            404
        );
        assert_eq!(
            get(&format!("{}/nodes/my-node/versions/9.9.9", registry.url()), &[])
                .unwrap()
                .status,
            404
        );
        // GET /nodes/{id} is side-effect free; /install records.
        assert!(registry.installs().is_empty());
        let install = get(
            &format!("{}/nodes/my-node/install?version=1.0.0", registry.url()),
            &[],
        )
        .unwrap()
        .json();
        assert_eq!(install["version"], "1.0.0");
        get(&format!("{}/nodes/my-node/install", registry.url()), &[]).unwrap();
        assert_eq!(
            registry.installs(),
            [
                ("my-node".to_owned(), Some("1.0.0".to_owned())),
                ("my-node".to_owned(), None)
            ]
        );
    }

    #[test]
    fn zip_is_served_and_holds_the_pack() {
        let registry = registry();
        let zip = get(&registry.download_url("my-node", "1.1.0"), &[]).unwrap();
        assert_eq!(zip.status, 200);
        let mut archive = zip::ZipArchive::new(Cursor::new(zip.body)).unwrap();
        let mut init = String::new();
        archive
            .by_name("__init__.py")
            .unwrap()
            .read_to_string(&mut init)
            .unwrap();
        assert!(init.starts_with("import node_dep_a\n"), "{init}");
        assert!(init.contains("NODE_CLASS_MAPPINGS[\"MyNodeB\"] = MyNodeB"));
        let mut pyproject = String::new();
        archive
            .by_name("pyproject.toml")
            .unwrap()
            .read_to_string(&mut pyproject)
            .unwrap();
        assert!(
            pyproject.contains("name = \"my-node\"")
                && pyproject.contains("dependencies = [\"node-dep-a>=1.1\"]")
        );
        let mut reqs = String::new();
        archive
            .by_name("requirements.txt")
            .unwrap()
            .read_to_string(&mut reqs)
            .unwrap();
        assert_eq!(reqs, "node-dep-a>=1.1\n");
        assert_eq!(registry.zip_downloads("my-node"), 1);
    }

    #[test]
    fn search_paging_reverse_lookup_and_comfy_nodes() {
        let registry = registry();
        let page = get(&format!("{}/nodes?page=1&limit=1", registry.url()), &[])
            .unwrap()
            .json();
        assert_eq!(page["total"], 2);
        assert_eq!(page["totalPages"], 2);
        assert_eq!(page["nodes"].as_array().unwrap().len(), 1);
        let found = get(&format!("{}/nodes/search?search=upscal", registry.url()), &[])
            .unwrap()
            .json();
        assert_eq!(found["nodes"][0]["id"], "other-pack");
        let owner = get(&format!("{}/comfy-nodes/MyNodeB/node", registry.url()), &[])
            .unwrap()
            .json();
        assert_eq!(owner["id"], "my-node");
        assert_eq!(
            get(&format!("{}/comfy-nodes/Unknown/node", registry.url()), &[])
                .unwrap()
                .status,
            404
        );
        let classes = get(
            &format!("{}/nodes/my-node/versions/1.1.0/comfy-nodes", registry.url()),
            &[],
        )
        .unwrap()
        .json();
        let names: Vec<&str> = classes["comfy_nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["comfy_node_id"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["MyNodeA", "MyNodeB"]);
        let bulk = request(
            "POST",
            &format!("{}/bulk/nodes/versions", registry.url()),
            &[],
            br#"{"node_versions":[{"node_id":"my-node","version":"1.0.0"},{"node_id":"x","version":"1.0.0"}]}"#,
        )
        .unwrap()
        .json();
        assert_eq!(bulk["node_versions"][0]["status"], "success");
        assert_eq!(bulk["node_versions"][1]["status"], "not_found");
    }

    #[test]
    fn manager_data_files() {
        let registry = registry();
        registry.add_extension_map_entry(
            "https://github.com/comfyanonymous/ComfyUI",
            &["KSampler"],
            "ComfyUI",
        );
        let map = get(
            &format!("{}/extension-node-map.json", registry.manager_data_url()),
            &[],
        )
        .unwrap()
        .json();
        assert_eq!(
            map["https://github.com/comfydock-test/my-node"],
            json!([["MyNodeA", "MyNodeB"], {"title_aux": "My Node"}])
        );
        assert_eq!(
            map["https://github.com/comfyanonymous/ComfyUI"][0],
            json!(["KSampler"])
        );
        let list = get(
            &format!("{}/custom-node-list.json", registry.manager_data_url()),
            &[],
        )
        .unwrap()
        .json();
        assert_eq!(list["custom_nodes"][0]["install_type"], "git-clone");
    }

    #[test]
    fn malicious_entries_and_stop() {
        let package = NodePackage::new("evil", "1.0.0")
            .traversal_entry()
            .absolute_entry()
            .symlink_entry("link", "../../../etc/passwd");
        let mut registry = RegistryServer::start();
        registry.publish(package);
        let zip = get(&registry.download_url("evil", "1.0.0"), &[]).unwrap().body;
        let archive = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
        let names: Vec<String> = archive.file_names().map(|n| n.unwrap().into_owned()).collect();
        assert!(names.iter().any(|n| n == "../comfydock-escaped.py"), "{names:?}");
        assert!(
            names.iter().any(|n| n == "/tmp/comfydock-absolute-evil.py"),
            "{names:?}"
        );
        assert!(names.iter().any(|n| n == "link"), "{names:?}");
        let url = registry.url();
        registry.stop();
        assert!(get(&format!("{url}/nodes/evil"), &[]).is_err());
    }
}
