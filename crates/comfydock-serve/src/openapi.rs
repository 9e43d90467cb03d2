//! The OpenAPI 3.1 document, built from the served workflows' parameters, and a small static docs
//! page (no external scripts).

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::params::{Param, ParamKind, WorkflowApi};

fn param_schema(param: &Param) -> Value {
    let mut schema = match &param.kind {
        ParamKind::Int { min, max, step } => {
            let mut s = json!({"type": "integer"});
            if let Some(min) = min {
                s["minimum"] = json_int(*min);
            }
            if let Some(max) = max {
                s["maximum"] = json_int(*max);
            }
            // `multipleOf` counts from 0; the check counts from `min`: same when min is a multiple.
            if let Some(step) = step.filter(|step| *step > 1) {
                if min.unwrap_or(0) % step == 0 {
                    s["multipleOf"] = json_int(step);
                }
                // Counted from `minimum` (or 0), like an HTML number input's `step`.
                s["x-step"] = json_int(step);
            }
            s
        }
        ParamKind::Float { min, max, step } => {
            let mut s = json!({"type": "number"});
            if let Some(min) = min {
                s["minimum"] = json!(min);
            }
            if let Some(max) = max {
                s["maximum"] = json!(max);
            }
            if let Some(step) = step.filter(|step| *step > 0.0) {
                s["x-step"] = json!(step);
            }
            s
        }
        ParamKind::String { multiline } => {
            let mut s = json!({"type": "string"});
            if *multiline {
                s["x-multiline"] = json!(true);
            }
            s
        }
        ParamKind::Boolean => json!({"type": "boolean"}),
        ParamKind::Enum { options } => json!({"enum": options}),
        ParamKind::Upload { media } => json!({
            "type": "object",
            "description": format!("A {media} file, uploaded to ComfyUI before the run."),
            "required": ["filename", "data"],
            "properties": {
                "filename": {"type": "string", "pattern": "^[^/\\\\]+$"},
                "data": {"type": "string", "contentEncoding": "base64"},
            },
            "additionalProperties": false,
            "x-media": media,
        }),
    };
    if let ParamKind::Upload { media } = &param.kind {
        schema["examples"] = json!([example_upload(media)]);
    } else {
        schema["default"] = param.default.clone();
        schema["examples"] = json!([param.default]);
    }
    let mut description = format!(
        "`{}` of node {} ({})",
        param.input, param.node_id, param.class_type
    );
    if let Some(tooltip) = &param.description {
        description = format!("{tooltip} — {description}");
    }
    schema["description"] = json!(description);
    schema["x-comfyui-node"] = json!(param.node_id);
    schema["x-comfyui-input"] = json!(param.input);
    schema
}

/// A small file of each media kind, as an upload in a JSON body (the image is a real 1×1 PNG, the
/// audio an empty WAV; video and mesh carry only their magic bytes).
fn example_upload(media: &str) -> Value {
    let (filename, data) = match media {
        "image" => (
            "example.png",
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
        ),
        "audio" => (
            "example.wav",
            "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA=",
        ),
        "video" => ("example.webm", "GkXfow=="),
        _ => ("example.glb", "Z2xURg=="),
    };
    json!({"filename": filename, "data": data})
}

/// The same parameter as a part of a `multipart/form-data` body: a file for an upload, else the
/// value as text.
fn form_schema(param: &Param) -> Value {
    let ParamKind::Upload { media } = &param.kind else {
        let mut schema = param_schema(param);
        if let Some(object) = schema.as_object_mut() {
            object.remove("x-comfyui-node");
            object.remove("x-comfyui-input");
        }
        return schema;
    };
    json!({
        "type": "string",
        "format": "binary",
        "description": format!(
            "A {media} file ({}), its type read from its bytes — `{}` of node {} ({})",
            crate::media::accepted_types(media).join(", "),
            param.input, param.node_id, param.class_type
        ),
    })
}

fn json_int(v: i128) -> Value {
    u64::try_from(v).map_or_else(|_| json!(i64::try_from(v).unwrap_or(i64::MIN)), Value::from)
}

fn error_responses() -> Value {
    json!({
        "401": {"description": "Missing or unknown API key.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        "429": {"description": "Rate limit exceeded for this key.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
    })
}

/// The request fields besides the parameters.
fn request_fields() -> Map<String, Value> {
    let fields = json!({
        "priority": {"type": "integer", "default": 0, "minimum": i32::MIN, "maximum": i32::MAX, "description": "Higher runs first."},
        "webhook": {"type": "string", "format": "uri", "description": "Receives a POST with the job when it finishes."},
        "max_attempts": {"type": "integer", "minimum": 1, "maximum": 100, "description": "Attempts for transient failures (backend down, timeout)."},
    });
    match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The OpenAPI document for these workflows.
pub fn document(workflows: &[&WorkflowApi], version: &str) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for api in workflows {
        let params_name = format!("{}_params", api.name);
        let mut properties = Map::new();
        let mut form = Map::new();
        let mut encoding = Map::new();
        let mut example_params = Map::new();
        let mut example_form = Map::new();
        let mut curl = format!("curl -X POST $URL/v1/workflows/{}/jobs", api.name);
        for param in &api.params {
            properties.insert(param.name.clone(), param_schema(param));
            form.insert(param.name.clone(), form_schema(param));
            if let ParamKind::Upload { media } = &param.kind {
                let accepted = crate::media::accepted_types(media).join(", ");
                encoding.insert(param.name.clone(), json!({"contentType": accepted}));
                let example = example_upload(media);
                let _ = write!(
                    curl,
                    " -F {}=@{}",
                    param.name,
                    example["filename"].as_str().unwrap_or("file")
                );
                example_params.insert(param.name.clone(), example);
            } else {
                example_params.insert(param.name.clone(), param.default.clone());
                example_form.insert(param.name.clone(), param.default.clone());
            }
        }
        if let Some(param) = api
            .params
            .iter()
            .find(|p| !matches!(p.kind, ParamKind::Upload { .. }))
        {
            let text = param
                .default
                .as_str()
                .map_or_else(|| param.default.to_string(), str::to_owned);
            let _ = write!(curl, " -F '{}={}'", param.name, text.replace('\'', ""));
        }
        for (name, schema) in request_fields() {
            form.insert(name.clone(), schema);
        }
        schemas.insert(
            params_name.clone(),
            json!({"type": "object", "properties": properties, "additionalProperties": false}),
        );
        let mut responses = json!({
            "201": {"description": "Queued.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}},
            "200": {"description": "A job with this Idempotency-Key already exists; it is returned.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}},
            "422": {"description": "Invalid request: every bad field with its path and violated constraint (an upload whose bytes are not of its media kind: `content_type`).", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ValidationError"}}}},
            "413": {"description": "A file over the per-file limit (`path` names its field) or a body over the body limit.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TooLarge"}}}},
        });
        for (code, response) in error_responses().as_object().into_iter().flatten() {
            responses[code] = response.clone();
        }
        paths.insert(
            format!("/v1/workflows/{}/jobs", api.name),
            json!({"post": {
                "operationId": format!("submit_{}", api.name),
                "summary": format!("Run workflow `{}`", api.name),
                "parameters": [{"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string", "maxLength": 200},
                                "description": "Repeating a key returns the first job instead of queueing another."}],
                "description": format!(
                    "The parameters as JSON (files as base64), or as `multipart/form-data` with one part per \
                     parameter (files as files, other values as text): `{curl}`. A file's type is read from \
                     its bytes, whatever its declared type or name."
                ),
                "requestBody": {"required": true, "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "additionalProperties": false,
                            "properties": {
                                "params": {"$ref": format!("#/components/schemas/{params_name}")},
                                "priority": request_fields()["priority"],
                                "webhook": request_fields()["webhook"],
                                "max_attempts": request_fields()["max_attempts"],
                            },
                        },
                        "example": {"params": example_params, "priority": 0},
                    },
                    "multipart/form-data": {
                        "schema": {"type": "object", "additionalProperties": false, "properties": form},
                        "encoding": encoding,
                        "example": example_form,
                    },
                }},
                "responses": responses,
            }}),
        );
    }
    let job_ref = json!({"$ref": "#/components/schemas/Job"});
    let id_param =
        json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}});
    paths.insert("/v1/jobs".into(), json!({"get": {
        "operationId": "list_jobs", "summary": "List jobs (newest first)",
        "parameters": [
            {"name": "status", "in": "query", "schema": {"$ref": "#/components/schemas/Status"}},
            {"name": "workflow", "in": "query", "schema": {"type": "string"}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
        ],
        "responses": {"200": {"description": "Jobs.", "content": {"application/json": {"schema": {"type": "object", "properties": {"jobs": {"type": "array", "items": job_ref}}}}}}},
    }}));
    paths.insert("/v1/jobs/{id}".into(), json!({
        "get": {"operationId": "get_job", "summary": "A job", "parameters": [id_param],
                "responses": {"200": {"description": "The job.", "content": {"application/json": {"schema": job_ref}}}, "404": {"description": "No such job."}}},
        "delete": {"operationId": "cancel_job", "summary": "Cancel a job (interrupts ComfyUI when running)", "parameters": [id_param],
                   "responses": {"200": {"description": "The job after cancelling.", "content": {"application/json": {"schema": job_ref}}}, "404": {"description": "No such job."}}},
    }));
    paths.insert("/v1/jobs/{id}/retry".into(), json!({"post": {
        "operationId": "retry_job", "summary": "Put a dead-lettered or failed job back in the queue with a fresh budget of attempts (logs `retried` with the error it had)",
        "parameters": [id_param],
        "responses": {"200": {"description": "The job, queued again.", "content": {"application/json": {"schema": job_ref}}},
                      "404": {"description": "No such job."},
                      "409": {"description": "The job is not dead or failed.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
    }}));
    paths.insert("/v1/environment".into(), json!({"get": {
        "operationId": "environment", "summary": "The comfydock environment serve runs in: ComfyUI ref and commit, Python, torch backends, custom nodes, models, tracked workflows and the `.cec` history (read when serve started)",
        "responses": {"200": {"description": "The environment.", "content": {"application/json": {"schema": {"type": "object"}}}},
                      "404": {"description": "serve runs outside an environment.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
    }}));
    paths.insert("/v1/jobs/{id}/outputs/{file}".into(), json!({"get": {
        "operationId": "get_output", "summary": "Download an output file",
        "parameters": [id_param, {"name": "file", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "The file.", "content": {"*/*": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}}, "404": {"description": "No such output."}},
    }}));
    paths.insert("/v1/jobs/{id}/events".into(), json!({"get": {
        "operationId": "job_events", "summary": "WebSocket of job events (queued, started, progress, node, output, succeeded, failed, …), each with `seq`; `?after=SEQ` replays what came after SEQ (a finished job's stream closes once replayed). Browsers, which cannot set headers on a WebSocket, authenticate by offering the subprotocols `comfydock` and `comfydock.bearer.<key>`: `new WebSocket(url, [\"comfydock\", \"comfydock.bearer.\" + key])`",
        "parameters": [id_param, {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}}],
        "responses": {
            "101": {"description": "Switching to the WebSocket protocol; text frames are Event objects.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Event"}}}},
            "200": {"description": "Without a WebSocket upgrade: the events so far.", "content": {"application/json": {"schema": {"type": "object", "properties": {"events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}}}}}},
        },
    }}));
    paths.insert("/healthz".into(), json!({"get": {"operationId": "healthz", "security": [], "responses": {"200": {"description": "The process is alive."}}}}));
    paths.insert("/readyz".into(), json!({"get": {"operationId": "readyz", "security": [], "responses": {"200": {"description": "Every backend answers."}, "503": {"description": "A backend is down."}}}}));
    paths.insert("/metrics".into(), json!({"get": {"operationId": "metrics", "security": [], "responses": {"200": {"description": "Prometheus text.", "content": {"text/plain": {}}}}}}));

    schemas.insert(
        "Status".into(),
        json!({"enum": ["queued", "running", "succeeded", "failed", "cancelled", "dead"]}),
    );
    schemas.insert("Job".into(), json!({"type": "object", "properties": {
        "id": {"type": "string", "format": "uuid"}, "workflow": {"type": "string"}, "status": {"$ref": "#/components/schemas/Status"},
        "params": {"type": "object"}, "priority": {"type": "integer"}, "attempts": {"type": "integer"}, "max_attempts": {"type": "integer"},
        "created_at": {"type": "string", "format": "date-time"}, "started_at": {"type": ["string", "null"], "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"}, "error": {"type": ["object", "null"]},
        "outputs": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "url": {"type": "string"}, "kind": {"type": "string"}, "node": {"type": "string"}, "size": {"type": "integer"}, "content_type": {"type": "string"}}}},
        "events_url": {"type": "string"},
    }}));
    schemas.insert("Event".into(), json!({"type": "object", "required": ["seq", "kind"], "properties": {
        "job_id": {"type": "string", "format": "uuid"}, "seq": {"type": "integer"}, "at": {"type": "string", "format": "date-time"},
        "kind": {"enum": ["queued", "started", "submitting", "submitted", "adopted", "progress", "node", "output", "retrying", "released", "succeeded", "failed", "dead", "cancelled", "retried"]},
        "data": {"type": "object"},
    }}));
    schemas.insert("ValidationError".into(), json!({"type": "object", "properties": {
        "error": {"const": "validation_failed"},
        "errors": {"type": "array", "items": {"type": "object", "required": ["path", "constraint", "message"], "properties": {
            "path": {"type": "string"}, "constraint": {"enum": ["type", "minimum", "maximum", "step", "enum", "required", "unknown", "format", "content_type"]},
            "message": {"type": "string"}, "min": {}, "max": {}, "step": {}, "allowed": {"type": "array"},
        }}},
    }}));
    schemas.insert("TooLarge".into(), json!({"type": "object", "required": ["error", "message", "limit"], "properties": {
        "error": {"const": "payload_too_large"}, "message": {"type": "string"},
        "limit": {"type": "integer", "description": "The limit in bytes."},
        "path": {"type": "string", "description": "The file's field (`params.<name>`); absent for the whole body."},
    }}));
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}),
    );

    json!({
        "openapi": "3.1.0",
        "info": {"title": "comfydock workflow API", "version": version,
                 "description": "Typed endpoints for ComfyUI workflows, with a durable job queue."},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    })
}

/// A self-contained docs page that renders `/openapi.json` with a few lines of inline script.
pub const DOCS_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>comfydock API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
code,pre{background:#f4f4f4;padding:.1rem .3rem;border-radius:3px}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left;vertical-align:top}h2{margin-top:2rem}</style></head>
<body><h1>comfydock API</h1><p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).
Send <code>Authorization: Bearer &lt;key&gt;</code> when keys are configured (event WebSockets from a browser: subprotocols <code>comfydock</code> and <code>comfydock.bearer.&lt;key&gt;</code>).</p><div id="api">Loading…</div>
<script>
const esc = s => String(s).replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));
fetch("/openapi.json").then(r => r.json()).then(doc => {
  let html = "";
  for (const [path, ops] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(ops)) {
    html += `<h2><code>${method.toUpperCase()} ${esc(path)}</code></h2><p>${esc(op.summary || "")}</p>`;
    const ref = op.requestBody?.content?.["application/json"]?.schema?.properties?.params?.$ref;
    if (ref) {
      const schema = doc.components.schemas[ref.split("/").pop()];
      html += "<table><tr><th>parameter</th><th>type</th><th>default</th><th>constraints</th><th>description</th></tr>";
      for (const [name, p] of Object.entries(schema.properties)) {
        const limits = [p.minimum !== undefined ? `min ${p.minimum}` : "", p.maximum !== undefined ? `max ${p.maximum}` : "",
                        p.enum ? `one of ${p.enum.map(esc).join(", ")}` : ""].filter(Boolean).join("; ");
        html += `<tr><td><code>${esc(name)}</code></td><td>${esc(p.type || "enum")}</td><td>${esc(JSON.stringify(p.default ?? ""))}</td><td>${limits}</td><td>${esc(p.description || "")}</td></tr>`;
      }
      html += "</table>";
    }
  }
  document.getElementById("api").innerHTML = html;
});
</script></body></html>
"#;
