//! Contract tests: our Registry stand-in and our Registry client against the ComfyUI Registry's
//! OpenAPI document (`<repo>/../shared/realworld/comfy-registry-openapi.yml`, read at test time;
//! a missing file fails every test here).
//!
//! - The stand-in's answers on every documented endpoint validate against the documented response
//!   schema for their path, method and status, with undocumented fields refused.
//! - Every request the client sends names a documented path, method and query parameters.
//! - The client reads documents built from the spec's schemas: only required fields, every field
//!   plus unknown extras, and search results spread over several pages.
//!
//! One endpoint the client uses, `GET /nodes/{nodeId}/versions/{version}/comfy-nodes`, is newer
//! than the pinned spec (which documents only `POST` there): its items are checked against the
//! spec's `ComfyNode`, its envelope against [`comfy_nodes_page_schema`], and the client is shown to
//! cope with a registry that does not serve it.

#[path = "registry_contract/openapi.rs"]
mod openapi;

use std::sync::Arc;

use comfydock_environments::nodes::NodeError;
use comfydock_environments::nodes::registry::{Freshness, RegistryClient};
use comfydock_test::http::client::get;
use comfydock_test::http::{HttpServer, Response, percent_decode};
use comfydock_test::registry::{NodePackage, RegistryServer};
use openapi::{EXTRA_FIELDS, Fields, Shape, Spec};
use serde_json::{Value, json};

/// The listing of a version's comfy-nodes, absent from the pinned spec.
const COMFY_NODES_TEMPLATE: &str = "/nodes/{nodeId}/versions/{version}/comfy-nodes";

/// The envelope of `GET /nodes/{nodeId}/versions/{version}/comfy-nodes` as the registry serves it
/// (a page of the spec's `ComfyNode`s and the page count).
fn comfy_nodes_page_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "comfy_nodes": {"type": "array", "items": {"$ref": "#/components/schemas/ComfyNode"}},
            "totalNumberOfPages": {"type": "integer"},
        },
    })
}

/// The decoded `(name, value)` pairs of a request target's query string.
fn query_pairs(target: &str) -> Vec<(String, String)> {
    let Some((_, query)) = target.split_once('?') else {
        return Vec::new();
    };
    let decode = |s: &str| percent_decode(&s.replace('+', " "));
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// Problems with the query of a comfy-nodes listing: only `page` and `limit`, integers (as the
/// registry documents the listing since the pinned spec).
fn comfy_nodes_query_problems(spec: &Spec, target: &str) -> Vec<String> {
    query_pairs(target)
        .into_iter()
        .flat_map(|(name, value)| {
            if name != "page" && name != "limit" {
                return vec![format!("{target}: query parameter `{name}` is not page or limit")];
            }
            let number = value.parse::<i64>().map_or_else(|_| json!(value), |n| json!(n));
            spec.problems(&json!({"type": "integer", "minimum": 1}), &number, Fields::Open)
                .into_iter()
                .map(|p| format!("{target}: `{name}` {p}"))
                .collect()
        })
        .collect()
}

fn publish_sample_packs(registry: &RegistryServer) {
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
    registry.publish(NodePackage::new("my-node", "1.2.0").deprecated());
    registry.publish(
        NodePackage::new("other-pack", "0.2.0")
            .description("Upscaling helpers")
            .node_class("OtherNode"),
    );
}

#[test]
fn spec_is_read_from_the_shared_realworld_folder() {
    let path = openapi::spec_path();
    assert!(
        path.ends_with("../shared/realworld/comfy-registry-openapi.yml"),
        "{}",
        path.display()
    );
    let spec = Spec::load();
    for template in [
        "/nodes",
        "/nodes/search",
        "/nodes/{nodeId}",
        "/nodes/{nodeId}/versions",
        "/nodes/{nodeId}/versions/{versionId}",
        "/nodes/{nodeId}/install",
    ] {
        assert!(
            spec.operation(template, "GET").is_some(),
            "GET {template} missing"
        );
    }
}

#[test]
fn nullable_becomes_a_type_union() {
    let translated = openapi::openapi_schema_to_json_schema(json!({
        "components": {"schemas": {
            "A": {"type": "string", "nullable": true},
            "B": {"type": "string", "enum": ["x"], "nullable": true},
            "C": {"$ref": "#/components/schemas/A", "nullable": true},
            "D": {"type": "string"},
        }}
    }));
    let schemas = &translated["components"]["schemas"];
    assert_eq!(schemas["A"], json!({"type": ["string", "null"]}));
    assert_eq!(
        schemas["B"],
        json!({"type": ["string", "null"], "enum": ["x", null]})
    );
    assert_eq!(
        schemas["C"],
        json!({"anyOf": [{"$ref": "#/components/schemas/A"}, {"type": "null"}]})
    );
    assert_eq!(schemas["D"], json!({"type": "string"}));
}

/// The validator is really applied: documents that break the spec are caught, with where.
#[test]
fn validation_catches_documents_that_break_the_spec() {
    let spec = Spec::load();
    let node = spec.component("Node");
    let version = spec.component("NodeVersion");
    let error_response = spec.component("ErrorResponse");
    let cases = [
        (
            &node,
            json!({"id": "x", "downloads": "many"}),
            Fields::Open,
            "/downloads",
        ),
        (
            &node,
            json!({"id": "x", "status": "Active"}),
            Fields::Open,
            "/status",
        ),
        (
            &node,
            json!({"id": "x", "latest_version": {"createdAt": "yesterday"}}),
            Fields::Open,
            "/latest_version/createdAt",
        ),
        (
            &version,
            json!({"version": "1.0.0", "tags": []}),
            Fields::DocumentedOnly,
            "",
        ),
        (&error_response, json!({"message": "gone"}), Fields::Open, ""),
    ];
    for (schema, document, fields, at) in cases {
        let problems = spec.problems(schema, &document, fields);
        assert!(
            problems.iter().any(|p| p.starts_with(&format!("at `{at}`"))),
            "{document} should break the spec at `{at}`: {problems:?}"
        );
    }
    assert!(
        spec.problems(&version, &json!({"version": "1.0.0", "tags": []}), Fields::Open)
            .is_empty(),
        "the spec's objects are open: extra fields are allowed"
    );
}

/// Every answer of the stand-in on a documented endpoint — successes, missing nodes and versions,
/// a malformed version — has a documented status and validates against its schema, with no
/// undocumented field; the requests themselves use documented query parameters.
#[test]
fn stand_in_answers_validate_against_the_spec() {
    let spec = Spec::load();
    let registry = RegistryServer::start();
    publish_sample_packs(&registry);
    let exchanges: [(&str, &str, u16); 18] = [
        ("/nodes", "/nodes", 200),
        ("/nodes?page=2&limit=1", "/nodes", 200),
        ("/nodes?page=9&limit=5", "/nodes", 200),
        ("/nodes/search?search=upscal&page=1&limit=5", "/nodes/search", 200),
        ("/nodes/search?search=nothing-matches", "/nodes/search", 200),
        ("/nodes/my-node", "/nodes/{nodeId}", 200),
        ("/nodes/nope", "/nodes/{nodeId}", 404),
        ("/nodes/my-node/versions", "/nodes/{nodeId}/versions", 200),
        ("/nodes/nope/versions", "/nodes/{nodeId}/versions", 404),
        (
            "/nodes/my-node/versions/1.0.0",
            "/nodes/{nodeId}/versions/{versionId}",
            200,
        ),
        (
            "/nodes/my-node/versions/9.9.9",
            "/nodes/{nodeId}/versions/{versionId}",
            404,
        ),
        (
            "/nodes/nope/versions/1.0.0",
            "/nodes/{nodeId}/versions/{versionId}",
            404,
        ),
        ("/nodes/my-node/install", "/nodes/{nodeId}/install", 200),
        (
            "/nodes/my-node/install?version=1.0.0",
            "/nodes/{nodeId}/install",
            200,
        ),
        (
            "/nodes/my-node/install?version=9.9.9",
            "/nodes/{nodeId}/install",
            404,
        ),
        (
            "/nodes/my-node/install?version=latest",
            "/nodes/{nodeId}/install",
            400,
        ),
        ("/nodes/nope/install", "/nodes/{nodeId}/install", 404),
        (
            "/nodes/my-node/versions/1.1.0/comfy-nodes?page=1&limit=1",
            COMFY_NODES_TEMPLATE,
            200,
        ),
    ];
    let mut problems = Vec::new();
    for (target, expected_template, expected_status) in exchanges {
        let response = get(&format!("{}{target}", registry.url()), &[]).unwrap();
        assert_eq!(
            response.status,
            expected_status,
            "GET {target}: {}",
            response.text()
        );
        let body = response.json();
        let path = target.split_once('?').map_or(target, |(p, _)| p);
        let schema = if expected_template == COMFY_NODES_TEMPLATE {
            problems.extend(comfy_nodes_query_problems(&spec, target));
            comfy_nodes_page_schema()
        } else {
            let matched = spec
                .match_path("GET", path)
                .unwrap_or_else(|| panic!("GET {path} matches no documented path"));
            assert_eq!(matched.template, expected_template, "GET {path}");
            let query_problems = spec.query_problems(expected_template, "GET", &query_pairs(target));
            if expected_status == 400 {
                // A deliberately malformed request: the spec must reject it too.
                assert!(!query_problems.is_empty(), "GET {target} should break the spec");
            } else {
                problems.extend(query_problems);
            }
            match spec.response_schema(expected_template, "GET", expected_status) {
                Ok(Some(schema)) => schema,
                Ok(None) => continue,
                Err(undocumented) => {
                    problems.push(format!("GET {target}: {undocumented}"));
                    continue;
                }
            }
        };
        problems.extend(
            spec.problems(&schema, &body, Fields::DocumentedOnly)
                .into_iter()
                .map(|p| format!("GET {target} ({expected_status}) {p}\n  body: {body}")),
        );
    }
    assert!(
        problems.is_empty(),
        "the stand-in breaks the spec:\n{}",
        problems.join("\n")
    );
}

/// The stand-in's comfy-nodes pages (beyond the pinned spec) hold the spec's `ComfyNode`s, and
/// page like the other listings.
#[test]
fn stand_in_comfy_nodes_pages_hold_spec_comfy_nodes() {
    let spec = Spec::load();
    let registry = RegistryServer::start();
    publish_sample_packs(&registry);
    let mut names = Vec::new();
    for page in 1..=2 {
        let body = get(
            &format!(
                "{}/nodes/my-node/versions/1.1.0/comfy-nodes?page={page}&limit=1",
                registry.url()
            ),
            &[],
        )
        .unwrap()
        .json();
        let problems = spec.problems(&comfy_nodes_page_schema(), &body, Fields::DocumentedOnly);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(body["totalNumberOfPages"], 2);
        names.extend(
            body["comfy_nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["comfy_node_id"].as_str().unwrap().to_owned()),
        );
    }
    assert_eq!(names, ["MyNodeA", "MyNodeB"]);
}

/// Every request the client sends for each of its operations is a documented `GET` with
/// documented query parameters (values valid for their schemas).
#[test]
fn client_requests_are_documented_in_the_spec() {
    let spec = Spec::load();
    let registry = RegistryServer::start();
    publish_sample_packs(&registry);
    let tmp = tempfile::tempdir().unwrap();
    let client = RegistryClient::new(&registry.url(), &tmp.path().join("api_cache.db")).unwrap();

    assert_eq!(
        client.node("my-node", Freshness::Revalidate).unwrap().id,
        "my-node"
    );
    assert!(matches!(
        client.node("nope", Freshness::Revalidate),
        Err(NodeError::UnknownNode { .. })
    ));
    let versions = client.versions("my-node", Freshness::Revalidate).unwrap();
    assert_eq!(versions.len(), 3);
    assert_eq!(client.pick_version("my-node", None).unwrap().version, "1.1.0");
    assert_eq!(
        client.pick_version("my-node", Some("1.0.0")).unwrap().version,
        "1.0.0"
    );
    assert_eq!(client.search("upscal", 5).unwrap()[0].id, "other-pack");
    assert_eq!(
        client.comfy_nodes("my-node", "1.1.0").unwrap(),
        ["MyNodeA", "MyNodeB"]
    );

    let mut problems = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    for request in registry.log().all() {
        let path = request.path();
        if request.method != "GET" {
            problems.push(format!("{} {path}: the client only reads", request.method));
            continue;
        }
        let template = if openapi::template_matches(COMFY_NODES_TEMPLATE, &path) {
            // Beyond the pinned spec; see the module docs.
            problems.extend(comfy_nodes_query_problems(&spec, &request.target));
            COMFY_NODES_TEMPLATE.to_owned()
        } else if let Some(matched) = spec.match_path("GET", &path) {
            problems.extend(spec.query_problems(&matched.template, "GET", &query_pairs(&request.target)));
            matched.template
        } else {
            problems.push(format!("GET {path} matches no documented path"));
            continue;
        };
        used.insert(template);
    }
    assert!(
        problems.is_empty(),
        "the client strays from the spec:\n{}",
        problems.join("\n")
    );
    assert_eq!(
        used.into_iter().collect::<Vec<_>>(),
        [
            "/nodes/search",
            "/nodes/{nodeId}",
            "/nodes/{nodeId}/versions",
            COMFY_NODES_TEMPLATE
        ]
    );
    assert!(
        registry.installs().is_empty(),
        "the client never records installs"
    );
}

/// Keeps the beyond-the-spec allowance honest: when the pinned spec starts documenting the
/// comfy-nodes listing, this fails so the listing is validated against the spec instead.
#[test]
fn comfy_nodes_listing_is_not_in_the_pinned_spec() {
    let spec = Spec::load();
    assert!(spec.has_path(COMFY_NODES_TEMPLATE));
    assert!(spec.operation(COMFY_NODES_TEMPLATE, "POST").is_some());
    assert!(
        spec.operation(COMFY_NODES_TEMPLATE, "GET").is_none(),
        "the spec now documents GET {COMFY_NODES_TEMPLATE}: check it with spec.response_schema \
         instead of comfy_nodes_page_schema()"
    );
}

/// Documents a registry serves for one node `pack`, built from the spec by the tests.
#[derive(Default)]
struct ScriptedDocuments {
    node: Value,
    versions: Value,
    search_pages: Vec<Value>,
    /// `None`: the listing is answered 405, as a registry following the pinned spec (POST only).
    comfy_nodes: Option<Value>,
}

/// An HTTP server answering the client's endpoints with [`ScriptedDocuments`].
fn scripted_registry(documents: ScriptedDocuments) -> HttpServer {
    let documents = Arc::new(documents);
    HttpServer::start(move |request| {
        let path = request.path();
        let not_found =
            || Response::status(404).with_json(&json!({"error": "not found", "message": "not found"}));
        match path.as_str() {
            "/nodes/search" => {
                let page: usize = request.query("page").and_then(|p| p.parse().ok()).unwrap_or(1);
                documents
                    .search_pages
                    .get(page.saturating_sub(1))
                    .map_or_else(not_found, Response::json)
            }
            "/nodes/pack" => Response::json(&documents.node),
            "/nodes/pack/versions" => Response::json(&documents.versions),
            p if p.starts_with("/nodes/pack/versions/") && p.ends_with("/comfy-nodes") => {
                match &documents.comfy_nodes {
                    Some(doc) => Response::json(doc),
                    None => Response::status(405)
                        .with_json(&json!({"error": "method not allowed", "message": "method not allowed"})),
                }
            }
            _ => not_found(),
        }
    })
}

fn client_for(server: &HttpServer, tmp: &tempfile::TempDir) -> RegistryClient {
    RegistryClient::new(&server.url(), &tmp.path().join("api_cache.db")).unwrap()
}

fn search_page_schema(spec: &Spec) -> Value {
    spec.response_schema("/nodes/search", "GET", 200)
        .unwrap()
        .expect("search documents a JSON body")
}

fn versions_schema(spec: &Spec) -> Value {
    spec.response_schema("/nodes/{nodeId}/versions", "GET", 200)
        .unwrap()
        .expect("versions documents a JSON body")
}

fn assert_valid(spec: &Spec, schema: &Value, document: &Value, fields: Fields) {
    let problems = spec.problems(schema, document, fields);
    assert!(
        problems.is_empty(),
        "built document breaks the spec: {problems:?}\n{document}"
    );
}

/// (a) The spec requires no field of a node, a version or a search page: the client still reads
/// such documents — the node is the one asked for, versions without `version` are skipped (so
/// none can be installed), an empty search is empty.
#[test]
fn client_reads_documents_with_only_required_fields() {
    let spec = Spec::load();
    let node = spec.sample(&spec.component("Node"), Shape::RequiredOnly);
    let version = spec.sample(&spec.component("NodeVersion"), Shape::RequiredOnly);
    let versions = json!([version]);
    let search_page = spec.sample(&search_page_schema(&spec), Shape::RequiredOnly);
    assert_valid(&spec, &spec.component("Node"), &node, Fields::DocumentedOnly);
    assert_valid(&spec, &versions_schema(&spec), &versions, Fields::DocumentedOnly);
    assert_valid(
        &spec,
        &search_page_schema(&spec),
        &search_page,
        Fields::DocumentedOnly,
    );

    let server = scripted_registry(ScriptedDocuments {
        node,
        versions,
        search_pages: vec![search_page],
        comfy_nodes: None,
    });
    let tmp = tempfile::tempdir().unwrap();
    let client = client_for(&server, &tmp);

    let read = client.node("pack", Freshness::Revalidate).unwrap();
    assert_eq!(read.id, "pack");
    assert_eq!(read.name, "");
    assert_eq!(read.repository, None);
    assert_eq!(read.latest_version, None);
    assert!(client.versions("pack", Freshness::Revalidate).unwrap().is_empty());
    let err = client.pick_version("pack", None).unwrap_err();
    assert!(matches!(err, NodeError::NoInstallableVersion { .. }), "{err}");
    assert!(client.search("pack", 10).unwrap().is_empty());
    // A registry without the comfy-nodes listing: an error the callers ignore, not a panic.
    let err = client.comfy_nodes("pack", "1.0.0").unwrap_err();
    assert!(
        matches!(err, NodeError::RegistryStatus { status: 405, .. }),
        "{err}"
    );
}

/// (a') Beyond what the spec requires, the client needs only a node's `id` (in search results)
/// and a version's `version` and `downloadUrl`: no name, status, `deprecated` or page counts.
#[test]
fn client_installs_from_the_sparsest_usable_documents() {
    let spec = Spec::load();
    let versions = json!([{"version": "1.0.0", "downloadUrl": "https://cdn.invalid/pack/1.0.0.zip"}]);
    let search_page = json!({"nodes": [{"id": "pack"}]});
    assert_valid(&spec, &versions_schema(&spec), &versions, Fields::DocumentedOnly);
    assert_valid(
        &spec,
        &search_page_schema(&spec),
        &search_page,
        Fields::DocumentedOnly,
    );
    let server = scripted_registry(ScriptedDocuments {
        node: json!({}),
        versions,
        search_pages: vec![search_page],
        comfy_nodes: Some(json!({"comfy_nodes": [{"comfy_node_id": "PackNode"}]})),
    });
    let tmp = tempfile::tempdir().unwrap();
    let client = client_for(&server, &tmp);
    let picked = client.pick_version("pack", None).unwrap();
    assert_eq!(picked.version, "1.0.0");
    assert_eq!(picked.download_url, "https://cdn.invalid/pack/1.0.0.zip");
    let found = client.search("pack", 10).unwrap();
    assert_eq!(found.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), ["pack"]);
    assert_eq!(client.comfy_nodes("pack", "1.0.0").unwrap(), ["PackNode"]);
}

/// A version listed without `downloadUrl` is known but cannot be installed: the client says so
/// instead of pretending the version does not exist.
#[test]
fn client_refuses_a_version_without_download_url() {
    let spec = Spec::load();
    let versions = json!([{"version": "2.0.0"}]);
    assert_valid(&spec, &versions_schema(&spec), &versions, Fields::DocumentedOnly);
    let server = scripted_registry(ScriptedDocuments {
        node: json!({"id": "pack"}),
        versions,
        ..ScriptedDocuments::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let client = client_for(&server, &tmp);
    let listed = client.versions("pack", Freshness::Revalidate).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].download_url, None);
    let err = client.pick_version("pack", Some("2.0.0")).unwrap_err();
    assert!(
        matches!(&err, NodeError::RegistryDocument { reason, .. } if reason.contains("downloadUrl")),
        "{err}"
    );
}

/// (b) Documents with every documented field and unknown extra fields in every object: the
/// client reads the documented values and ignores the rest.
#[test]
fn client_reads_documents_with_every_field_and_unknown_extras() {
    let spec = Spec::load();
    let node = spec.sample(&spec.component("Node"), Shape::EverythingAndExtras);
    for field in EXTRA_FIELDS {
        assert!(node.get(field).is_some() && node["latest_version"].get(field).is_some());
    }
    assert!(
        !spec
            .problems(&spec.component("Node"), &node, Fields::DocumentedOnly)
            .is_empty(),
        "the built node carries undocumented fields"
    );
    assert_valid(&spec, &spec.component("Node"), &node, Fields::Open);

    // Versions: every field, listed out of order, one newer but banned, one deprecated.
    let full_version = spec.sample(&spec.component("NodeVersion"), Shape::EverythingAndExtras);
    let with = |version: &str, status: &str, deprecated: bool| {
        let mut v = full_version.clone();
        v["version"] = json!(version);
        v["downloadUrl"] = json!(format!("https://cdn.invalid/pack/{version}.zip"));
        v["status"] = json!(status);
        v["deprecated"] = json!(deprecated);
        v
    };
    let versions = json!([
        with("1.0.0", "NodeVersionStatusActive", false),
        with("1.2.0", "NodeVersionStatusBanned", false),
        with("1.1.0", "NodeVersionStatusActive", true),
    ]);
    assert_valid(&spec, &versions_schema(&spec), &versions, Fields::Open);

    let mut search_page = spec.sample(&search_page_schema(&spec), Shape::EverythingAndExtras);
    search_page["total"] = json!(1);
    search_page["totalPages"] = json!(1);
    search_page["page"] = json!(1);
    search_page["limit"] = json!(10);
    assert_valid(&spec, &search_page_schema(&spec), &search_page, Fields::Open);

    // comfy-nodes: the pinned spec's `comfy_node_id`, and the `comfy_node_name` the live
    // registry sends (an extra field for the pinned spec), which wins when both are there.
    let comfy_node = spec.sample(&spec.component("ComfyNode"), Shape::EverythingAndExtras);
    let mut live_comfy_node = comfy_node.clone();
    live_comfy_node["comfy_node_name"] = json!("LiveName");
    let mut comfy_nodes = spec.sample(&comfy_nodes_page_schema(), Shape::EverythingAndExtras);
    comfy_nodes["comfy_nodes"] = json!([comfy_node, live_comfy_node]);
    comfy_nodes["totalNumberOfPages"] = json!(1);
    assert_valid(&spec, &comfy_nodes_page_schema(), &comfy_nodes, Fields::Open);

    let server = scripted_registry(ScriptedDocuments {
        node: node.clone(),
        versions,
        search_pages: vec![search_page.clone()],
        comfy_nodes: Some(comfy_nodes),
    });
    let tmp = tempfile::tempdir().unwrap();
    let client = client_for(&server, &tmp);

    let read = client.node("pack", Freshness::Revalidate).unwrap();
    assert_eq!(read.id, node["id"].as_str().unwrap());
    assert_eq!(read.name, node["name"].as_str().unwrap());
    assert_eq!(read.description, node["description"].as_str().unwrap());
    assert_eq!(read.repository.as_deref(), node["repository"].as_str());
    assert_eq!(
        read.latest_version.as_deref(),
        node["latest_version"]["version"].as_str()
    );

    let listed = client.versions("pack", Freshness::Revalidate).unwrap();
    let order: Vec<&str> = listed.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(order, ["1.2.0", "1.1.0", "1.0.0"], "newest first");
    let newest = &listed[0];
    assert_eq!(newest.status.as_deref(), Some("NodeVersionStatusBanned"));
    assert_eq!(
        newest.download_url.as_deref(),
        Some("https://cdn.invalid/pack/1.2.0.zip")
    );
    let dependencies: Vec<String> = full_version["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    assert!(!dependencies.is_empty());
    assert_eq!(newest.dependencies, dependencies);
    // Not the banned 1.2.0, not the deprecated 1.1.0.
    assert_eq!(client.pick_version("pack", None).unwrap().version, "1.0.0");

    let found = client.search("pack", 10).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, search_page["nodes"][0]["id"].as_str().unwrap());
    assert_eq!(
        client.comfy_nodes("pack", "1.0.0").unwrap(),
        [comfy_node["comfy_node_id"].as_str().unwrap(), "LiveName"]
    );
}

fn spec_search_pages(spec: &Spec, ids: &[String], per_page: usize, counts: (bool, bool)) -> Vec<Value> {
    let (with_total, with_total_pages) = counts;
    let node = spec.sample(&spec.component("Node"), Shape::EverythingAndExtras);
    let pages = ids.len().div_ceil(per_page);
    (1..=pages)
        .map(|page| {
            let mut doc = spec.sample(&search_page_schema(spec), Shape::EverythingAndExtras);
            let nodes: Vec<Value> = ids
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|id| {
                    let mut n = node.clone();
                    n["id"] = json!(id);
                    n
                })
                .collect();
            doc["nodes"] = json!(nodes);
            doc["page"] = json!(page);
            doc["limit"] = json!(per_page);
            let object = doc.as_object_mut().unwrap();
            if with_total {
                object.insert("total".into(), json!(ids.len()));
            } else {
                object.remove("total");
            }
            if with_total_pages {
                object.insert("totalPages".into(), json!(pages));
            } else {
                object.remove("totalPages");
            }
            assert_valid(spec, &search_page_schema(spec), &doc, Fields::Open);
            doc
        })
        .collect()
}

fn pages_requested(server: &HttpServer) -> Vec<String> {
    server
        .log()
        .all()
        .iter()
        .filter(|r| r.path() == "/nodes/search")
        .map(|r| r.query("page").unwrap_or_default())
        .collect()
}

/// (c) Search results over several pages of a registry serving fewer nodes per page than asked:
/// the client follows `totalPages` (or, without it, `total`) until it has `limit` nodes, and stops
/// at the last page; with neither count it reads one page.
#[test]
fn client_search_follows_spec_shaped_pages() {
    let spec = Spec::load();
    let ids: Vec<String> = (1..=7).map(|n| format!("pack-{n}")).collect();
    let cases = [
        ((true, true), 10, 7, vec!["1", "2", "3"]),
        ((true, true), 5, 5, vec!["1", "2"]),
        ((true, false), 10, 7, vec!["1", "2", "3"]),
        ((false, true), 10, 7, vec!["1", "2", "3"]),
        ((false, false), 10, 3, vec!["1"]),
    ];
    for (counts, limit, expected, expected_pages) in cases {
        let server = scripted_registry(ScriptedDocuments {
            search_pages: spec_search_pages(&spec, &ids, 3, counts),
            ..ScriptedDocuments::default()
        });
        let tmp = tempfile::tempdir().unwrap();
        let found = client_for(&server, &tmp).search("pack", limit).unwrap();
        let found: Vec<&str> = found.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(found, ids[..expected], "counts {counts:?}, limit {limit}");
        assert_eq!(
            pages_requested(&server),
            expected_pages,
            "counts {counts:?}, limit {limit}"
        );
    }
}

/// (c) The same against the stand-in capping its page size: its pages validate against the spec
/// and the client gathers every match across them.
#[test]
fn client_search_gathers_pages_of_the_capped_stand_in() {
    let spec = Spec::load();
    let registry = RegistryServer::start();
    let ids: Vec<String> = (1..=23).map(|n| format!("upscaler-{n:02}")).collect();
    for id in &ids {
        registry.publish(NodePackage::new(id, "1.0.0").description("An upscaler"));
    }
    registry.publish(NodePackage::new("unrelated", "1.0.0"));
    registry.cap_page_size(10);

    let page = get(
        &format!("{}/nodes/search?search=upscaler&page=3&limit=25", registry.url()),
        &[],
    )
    .unwrap()
    .json();
    assert_eq!(
        (&page["total"], &page["totalPages"], &page["limit"], &page["page"]),
        (&json!(23), &json!(3), &json!(10), &json!(3))
    );
    assert_eq!(page["nodes"].as_array().unwrap().len(), 3);
    let problems = spec.problems(&search_page_schema(&spec), &page, Fields::DocumentedOnly);
    assert!(problems.is_empty(), "{problems:?}");
    registry.log().clear();

    let tmp = tempfile::tempdir().unwrap();
    let client = RegistryClient::new(&registry.url(), &tmp.path().join("api_cache.db")).unwrap();
    let found = client.search("upscaler", 25).unwrap();
    let found: Vec<&str> = found.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(found, ids);
    let requested: Vec<String> = registry
        .log()
        .all()
        .iter()
        .map(|r| r.query("page").unwrap_or_default())
        .collect();
    assert_eq!(requested, ["1", "2", "3"]);

    let twelve = client.search("upscaler", 12).unwrap();
    assert_eq!(
        twelve.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
        ids[..12]
    );
}
