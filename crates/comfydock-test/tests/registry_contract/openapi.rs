//! The registry's OpenAPI 3.0 document as test data: loading it (YAML → JSON), turning its schema
//! dialect into JSON Schema, validating documents and requests against it, and building sample
//! documents from its schemas.

use std::path::PathBuf;

use jsonschema::{Draft, Validator};
use serde_json::{Map, Value, json};
use yaml_rust2::{Yaml, YamlLoader};

/// `<repo>/../shared/realworld/comfy-registry-openapi.yml`.
pub fn spec_path() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let repo = manifest_dir
        .ancestors()
        .nth(2)
        .expect("the crate lies in <repo>/crates/<name>");
    repo.join("../shared/realworld/comfy-registry-openapi.yml")
}

/// Whether validation accepts fields a schema does not list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fields {
    /// As the spec says (OpenAPI objects are open): for what the real service may send.
    Open,
    /// Every object closed (`additionalProperties: false` where the spec leaves it open): our
    /// stand-in may send only documented fields, so our client cannot come to rely on others.
    DocumentedOnly,
}

/// Which fields a sample built from a schema carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Only the fields the schema lists as `required`; arrays empty.
    RequiredOnly,
    /// Every documented field, arrays with one item, plus unknown extra fields in every object.
    EverythingAndExtras,
}

/// Names of the extra fields [`Shape::EverythingAndExtras`] adds to every object.
pub const EXTRA_FIELDS: [&str; 2] = ["comfydock_unknown_object", "comfydock_unknown_null"];

/// A request matched to a documented operation.
#[derive(Debug)]
pub struct MatchedRequest {
    /// The path template (`/nodes/{nodeId}`).
    pub template: String,
}

/// The loaded OpenAPI document, translated to JSON Schema 2020-12.
pub struct Spec {
    doc: Value,
}

impl Spec {
    /// Loads the spec; panics (failing the test) with the path when the file is missing.
    pub fn load() -> Spec {
        let path = spec_path();
        let text = fs_err::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "the registry's OpenAPI document is required by the contract tests and could not be read \
                 at {} ({e}); it belongs in <repo>/../shared/realworld/",
                path.display()
            )
        });
        let docs = YamlLoader::load_from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
        let doc = yaml_to_json(docs.first().expect("the spec file holds one YAML document"));
        let version = doc["openapi"].as_str().unwrap_or_default();
        assert!(
            version.starts_with("3.0."),
            "{} is OpenAPI {version:?}; the schema translation here is for OpenAPI 3.0",
            path.display()
        );
        Spec {
            doc: openapi_schema_to_json_schema(doc),
        }
    }

    /// The operation object of `method` on `template`, if documented.
    pub fn operation(&self, template: &str, method: &str) -> Option<&Value> {
        self.doc["paths"].get(template)?.get(method.to_ascii_lowercase())
    }

    /// Whether `template` is a documented path (with any method).
    pub fn has_path(&self, template: &str) -> bool {
        self.doc["paths"].get(template).is_some()
    }

    /// The documented JSON schema of a response: `Err` when the status is not documented for the
    /// operation, `Ok(None)` when it is documented without a JSON body.
    pub fn response_schema(
        &self,
        template: &str,
        method: &str,
        status: u16,
    ) -> Result<Option<Value>, String> {
        let operation = self
            .operation(template, method)
            .ok_or_else(|| format!("{method} {template} is not in the spec"))?;
        let response = operation["responses"]
            .get(status.to_string())
            .or_else(|| operation["responses"].get("default"))
            .ok_or_else(|| format!("{method} {template} does not document status {status}"))?;
        Ok(response["content"]["application/json"].get("schema").cloned())
    }

    /// `#/components/schemas/{name}`.
    pub fn component(&self, name: &str) -> Value {
        self.doc["components"]["schemas"]
            .get(name)
            .unwrap_or_else(|| panic!("the spec has no schema {name}"))
            .clone()
    }

    /// The documented template matching a concrete path (literal segments preferred over
    /// `{param}` ones, so `/nodes/search` is not `/nodes/{nodeId}`), for `method`.
    pub fn match_path(&self, method: &str, path: &str) -> Option<MatchedRequest> {
        let paths = self.doc["paths"].as_object()?;
        paths
            .iter()
            .filter(|(template, item)| {
                item.get(method.to_ascii_lowercase()).is_some() && template_matches(template, path)
            })
            .max_by_key(|(template, _)| template.split('/').filter(|p| !p.starts_with('{')).count())
            .map(|(template, _)| MatchedRequest {
                template: template.clone(),
            })
    }

    /// Problems with a request's query string against the operation's documented query
    /// parameters: unknown names, values not valid for the parameter's schema.
    pub fn query_problems(&self, template: &str, method: &str, query: &[(String, String)]) -> Vec<String> {
        let Some(operation) = self.operation(template, method) else {
            return vec![format!("{method} {template} is not in the spec")];
        };
        let parameters: Vec<&Value> = operation["parameters"]
            .as_array()
            .map(|a| a.iter().filter(|p| p["in"] == "query").collect())
            .unwrap_or_default();
        let mut problems = Vec::new();
        for (name, raw) in query {
            let Some(parameter) = parameters.iter().find(|p| p["name"] == name.as_str()) else {
                problems.push(format!(
                    "{method} {template}: query parameter `{name}` is not documented"
                ));
                continue;
            };
            let schema = &parameter["schema"];
            let value = match schema["type"].as_str() {
                Some("integer") => raw.parse::<i64>().map_or_else(|_| json!(raw), |n| json!(n)),
                Some("number") => raw.parse::<f64>().map_or_else(|_| json!(raw), |n| json!(n)),
                Some("boolean") => raw.parse::<bool>().map_or_else(|_| json!(raw), |b| json!(b)),
                _ => json!(raw),
            };
            problems.extend(
                self.problems(schema, &value, Fields::Open)
                    .into_iter()
                    .map(|p| format!("{method} {template}: query `{name}={raw}`: {p}")),
            );
        }
        problems
    }

    /// Every way `instance` breaks `schema` (a schema taken from this spec, whose `$ref`s resolve
    /// against the whole spec document).
    pub fn problems(&self, schema: &Value, instance: &Value, fields: Fields) -> Vec<String> {
        let validator = self.validator(schema, fields);
        validator
            .iter_errors(instance)
            .map(|e| format!("at `{}`: {e}", e.instance_path()))
            .collect()
    }

    fn validator(&self, schema: &Value, fields: Fields) -> Validator {
        // The whole spec is the root document (so `#/components/...` resolves); the schema to
        // apply sits under a key of its own and the root refers to it.
        let mut root = self.doc.clone();
        root["x-contract-target"] = schema.clone();
        if fields == Fields::DocumentedOnly {
            close_objects(&mut root);
        }
        let root_object = root.as_object_mut().expect("the spec is an object");
        root_object.insert("$ref".into(), json!("#/x-contract-target"));
        jsonschema::options()
            .with_draft(Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("the spec's schema does not compile: {e}"))
    }

    /// A document built from `schema` in `shape` (see [`sample`]).
    pub fn sample(&self, schema: &Value, shape: Shape) -> Value {
        sample(&self.doc, schema, shape, "value", 0)
    }
}

/// Whether a concrete path fits a path template (`{param}` matches one non-empty segment).
pub fn template_matches(template: &str, path: &str) -> bool {
    let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    parts.len() == segments.len()
        && parts.iter().zip(&segments).all(|(part, segment)| {
            (part.starts_with('{') && part.ends_with('}') && !segment.is_empty()) || part == segment
        })
}

/// YAML → JSON (mapping keys become strings: `'200'` and `200` alike).
pub fn yaml_to_json(yaml: &Yaml) -> Value {
    match yaml {
        Yaml::Real(text) => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::String(text.clone()), Value::Number),
        Yaml::Integer(n) => json!(n),
        Yaml::String(s) => json!(s),
        Yaml::Boolean(b) => json!(b),
        Yaml::Array(items) => Value::Array(items.iter().map(yaml_to_json).collect()),
        Yaml::Hash(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) | Yaml::Real(s) => s.clone(),
                        Yaml::Integer(n) => n.to_string(),
                        Yaml::Boolean(b) => b.to_string(),
                        other => panic!("unsupported YAML mapping key {other:?}"),
                    };
                    (key, yaml_to_json(v))
                })
                .collect(),
        ),
        Yaml::Null => Value::Null,
        Yaml::Alias(_) | Yaml::BadValue => panic!("unsupported YAML node {yaml:?}"),
    }
}

/// OpenAPI 3.0 schema objects → JSON Schema: `nullable: true` becomes a type union with `null`
/// (or an `anyOf` with `{"type": "null"}` around a `$ref`; `null` joins an `enum`). Applied to
/// the whole document: only schema objects carry `nullable`.
pub fn openapi_schema_to_json_schema(mut value: Value) -> Value {
    translate_nullable(&mut value);
    value
}

fn translate_nullable(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for child in map.values_mut() {
                translate_nullable(child);
            }
            if map.remove("nullable") != Some(Value::Bool(true)) {
                return;
            }
            if let Some(reference) = map.remove("$ref") {
                map.insert("anyOf".into(), json!([{"$ref": reference}, {"type": "null"}]));
                return;
            }
            match map.get_mut("type") {
                Some(Value::String(t)) => {
                    let t = t.clone();
                    map.insert("type".into(), json!([t, "null"]));
                }
                Some(Value::Array(types)) if !types.contains(&json!("null")) => types.push(json!("null")),
                _ => {}
            }
            if let Some(Value::Array(values)) = map.get_mut("enum")
                && !values.contains(&Value::Null)
            {
                values.push(Value::Null);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(translate_nullable),
        _ => {}
    }
}

/// `additionalProperties: false` on every object schema that lists `properties` and says
/// nothing about other fields.
fn close_objects(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for child in map.values_mut() {
                close_objects(child);
            }
            let is_object_schema = map.get("type") == Some(&json!("object"))
                && map.get("properties").is_some_and(Value::is_object);
            if is_object_schema && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), json!(false));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

fn resolve<'a>(doc: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("only local refs are supported, not {reference}"));
    doc.pointer(pointer)
        .unwrap_or_else(|| panic!("{reference} does not resolve in the spec"))
}

/// A value for `schema`: enums take their first value, strings their `format`'s shape or
/// `<field>-sample`, integers 7, numbers 4.5, booleans `false`.
fn sample(doc: &Value, schema: &Value, shape: Shape, field: &str, depth: usize) -> Value {
    assert!(
        depth < 16,
        "schema nesting too deep at `{field}` (a recursive schema?)"
    );
    if let Some(reference) = schema["$ref"].as_str() {
        return sample(doc, resolve(doc, reference), shape, field, depth + 1);
    }
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    let kind = schema["type"]
        .as_str()
        .or_else(|| schema.get("properties").map(|_| "object"));
    match kind {
        Some("object") => {
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut object = Map::new();
            if let Some(properties) = schema["properties"].as_object() {
                for (name, property) in properties {
                    if shape == Shape::EverythingAndExtras || required.contains(&name.as_str()) {
                        object.insert(name.clone(), sample(doc, property, shape, name, depth + 1));
                    }
                }
            }
            if shape == Shape::EverythingAndExtras {
                object.insert(
                    EXTRA_FIELDS[0].into(),
                    json!({"nested": [1, "two", null], "flag": true}),
                );
                object.insert(EXTRA_FIELDS[1].into(), Value::Null);
            }
            Value::Object(object)
        }
        Some("array") => match shape {
            Shape::RequiredOnly => json!([]),
            Shape::EverythingAndExtras => json!([sample(doc, &schema["items"], shape, field, depth + 1)]),
        },
        Some("string") => match schema["format"].as_str() {
            Some("date-time") => json!("2025-02-03T04:05:06Z"),
            Some("uuid") => json!("123e4567-e89b-42d3-a456-426614174000"),
            _ => json!(format!("{field}-sample")),
        },
        Some("integer") => json!(7),
        Some("number") => json!(4.5),
        Some("boolean") => json!(false),
        other => panic!("no sample for schema type {other:?} at `{field}`"),
    }
}
