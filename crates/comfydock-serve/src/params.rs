//! A typed API per workflow: parameters derived from the API-format workflow and `/object_info`,
//! request validation, and injection of validated values into the prompt.
//!
//! Every literal (not linked) input of a node whose `/object_info` type is INT, FLOAT, STRING,
//! BOOLEAN or a COMBO is a candidate; COMBOs of `Load*` nodes marked `image_upload`,
//! `video_upload`, `audio_upload` or `mesh_upload` become uploads. The default of each parameter
//! is the workflow's value.
//!
//! Naming (documented, stable): `snake_case(title) + "_" + snake_case(input)`, where the title is
//! the node's `_meta.title` or, without one, its class. Names that still collide get
//! `_<node id>` appended (all of them, so adding a node never renames another one's parameter
//! silently except the colliding pair). `[tool.comfydock.api.<workflow>]` ([`ExposeConfig`]) can
//! choose which inputs are exposed and rename them.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use comfydock_workflow::{ApiInput, WorkflowDocument, convert_to_api};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// `[tool.comfydock.api.<workflow>]` of the environment manifest.
///
/// ```toml
/// [tool.comfydock.api.txt2img]
/// expose = ["3.seed", "6.text", "KSampler.steps"]   # "<node id or title>.<input>"; absent = all
/// [tool.comfydock.api.txt2img.names]
/// "6.text" = "prompt"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ExposeConfig {
    /// Inputs to expose; `None` exposes every candidate.
    #[serde(default)]
    pub expose: Option<Vec<String>>,
    /// Parameter names by input reference.
    #[serde(default)]
    pub names: BTreeMap<String, String>,
}

/// Errors deriving a workflow's API.
#[derive(Debug, thiserror::Error)]
pub enum ApiDefinitionError {
    #[error("workflow `{workflow}` is not valid ComfyUI workflow JSON")]
    Parse {
        workflow: String,
        #[source]
        source: comfydock_workflow::WorkflowError,
    },
    #[error("workflow `{workflow}` cannot be converted to the API format")]
    Convert {
        workflow: String,
        #[source]
        source: comfydock_workflow::WorkflowError,
    },
    #[error(
        "`[tool.comfydock.api.{workflow}]` names `{reference}`, which is not a widget input of the workflow"
    )]
    UnknownReference { workflow: String, reference: String },
    #[error("`[tool.comfydock.api.{workflow}]` gives the name `{name}` to two inputs")]
    DuplicateName { workflow: String, name: String },
    #[error(
        "workflow `{workflow}` uses node type `{class_type}` (node {node_id}), which the ComfyUI backend does not have"
    )]
    UnknownNode {
        workflow: String,
        node_id: String,
        class_type: String,
    },
}

impl comfydock_foundation::Hinted for ApiDefinitionError {
    fn hint(&self) -> Option<String> {
        match self {
            ApiDefinitionError::UnknownNode { .. } => Some(
                "install the custom node into the environment (`comfydock node add ...`) and restart ComfyUI"
                    .to_owned(),
            ),
            ApiDefinitionError::UnknownReference { .. } | ApiDefinitionError::DuplicateName { .. } => {
                Some("fix `[tool.comfydock.api]` in the environment's .cec/pyproject.toml".to_owned())
            }
            _ => None,
        }
    }
}

/// The type and constraints of a parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamKind {
    Int {
        min: Option<i128>,
        max: Option<i128>,
        step: Option<i128>,
    },
    Float {
        min: Option<f64>,
        max: Option<f64>,
        step: Option<f64>,
    },
    String {
        multiline: bool,
    },
    Boolean,
    Enum {
        options: Vec<Value>,
    },
    /// A media file sent as `{"filename", "data" (base64)}` and uploaded to ComfyUI before the run.
    Upload {
        media: String,
    },
}

/// One parameter of a workflow's API.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub node_id: String,
    pub class_type: String,
    pub input: String,
    pub kind: ParamKind,
    /// The workflow's value.
    pub default: Value,
    pub description: Option<String>,
}

/// A workflow served as an API: its prompt template and parameters.
#[derive(Debug, Clone)]
pub struct WorkflowApi {
    pub name: String,
    /// The API-format prompt with the workflow's values.
    pub prompt: Map<String, Value>,
    pub params: Vec<Param>,
}

/// One validation failure, addressed by a JSON path of the request body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    /// `params.steps`, `priority`, ...
    pub path: String,
    /// The violated constraint: `type`, `minimum`, `maximum`, `step`, `enum`, `required`, `unknown`,
    /// `format`, `content_type` (an upload whose bytes are not of its media kind).
    pub constraint: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<Value>,
    /// For `step`: valid values are `min + k * step`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<Value>>,
}

impl FieldError {
    pub(crate) fn new(path: &str, constraint: &str, message: impl Into<String>) -> Self {
        Self {
            path: path.to_owned(),
            constraint: constraint.to_owned(),
            message: message.into(),
            min: None,
            max: None,
            step: None,
            allowed: None,
        }
    }
}

/// A validated job request.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRequest {
    /// Parameter values by name (only those the client sent).
    pub params: Map<String, Value>,
    pub priority: i32,
    pub webhook: Option<String>,
    pub max_attempts: Option<u32>,
}

/// `Foo Bar (Baz)` → `foo_bar_baz`; `KSamplerAdvanced` → `k_sampler_advanced`.
pub fn snake_case(text: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_alphanumeric() {
            let boundary = c.is_ascii_uppercase()
                && i > 0
                && (chars[i - 1].is_ascii_lowercase()
                    || (chars[i - 1].is_ascii_uppercase()
                        && chars.get(i + 1).is_some_and(char::is_ascii_lowercase)));
            if boundary && !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    let trimmed = out.trim_end_matches('_');
    if trimmed.is_empty() {
        "node".to_owned()
    } else {
        trimmed.to_owned()
    }
}

fn as_i128(value: &Value) -> Option<i128> {
    value
        .as_i64()
        .map(i128::from)
        .or_else(|| value.as_u64().map(i128::from))
}

fn int_value(v: i128) -> Value {
    if let Ok(u) = u64::try_from(v) {
        Value::from(u)
    } else {
        Value::from(i64::try_from(v).unwrap_or(i64::MIN))
    }
}

/// The kind of an input from its `/object_info` spec (`None` for links and unknown types).
fn kind_of(spec: &Value) -> Option<ParamKind> {
    let kind = spec.get(0)?;
    let options = spec.get(1).cloned().unwrap_or(Value::Null);
    let combo = kind.as_array().cloned().or_else(|| {
        (kind == "COMBO").then(|| {
            options
                .get("options")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
    });
    if let Some(choices) = combo {
        for media in ["image", "video", "audio", "mesh"] {
            if options.get(format!("{media}_upload")).and_then(Value::as_bool) == Some(true) {
                return Some(ParamKind::Upload {
                    media: media.to_owned(),
                });
            }
        }
        return Some(ParamKind::Enum { options: choices });
    }
    match kind.as_str()? {
        "INT" => Some(ParamKind::Int {
            min: options.get("min").and_then(as_i128),
            max: options.get("max").and_then(as_i128),
            step: options.get("step").and_then(as_i128),
        }),
        "FLOAT" => Some(ParamKind::Float {
            min: options.get("min").and_then(Value::as_f64),
            max: options.get("max").and_then(Value::as_f64),
            step: options.get("step").and_then(Value::as_f64),
        }),
        "STRING" => Some(ParamKind::String {
            multiline: options.get("multiline").and_then(Value::as_bool).unwrap_or(false),
        }),
        "BOOLEAN" => Some(ParamKind::Boolean),
        _ => None,
    }
}

impl WorkflowApi {
    /// Derives the API of a workflow (UI or API format) from its JSON and `/object_info`.
    pub fn derive(
        name: &str,
        workflow: &Value,
        object_info: &Value,
        config: Option<&ExposeConfig>,
    ) -> Result<Self, ApiDefinitionError> {
        let document =
            WorkflowDocument::from_value(workflow.clone()).map_err(|source| ApiDefinitionError::Parse {
                workflow: name.to_owned(),
                source,
            })?;
        let prompt = if let Some(ui) = document.as_ui() {
            convert_to_api(ui, object_info)
                .map_err(|source| ApiDefinitionError::Convert {
                    workflow: name.to_owned(),
                    source,
                })?
                .prompt
        } else {
            document.as_map().clone()
        };
        let api_doc = WorkflowDocument::from_value(Value::Object(prompt.clone())).map_err(|source| {
            ApiDefinitionError::Parse {
                workflow: name.to_owned(),
                source,
            }
        })?;
        let mut candidates = Vec::new();
        if let Some(api) = api_doc.as_api() {
            let mut nodes: Vec<_> = api.nodes().collect();
            nodes.sort_by_key(|n| (n.id().parse::<u64>().unwrap_or(u64::MAX), n.id().to_owned()));
            for node in nodes {
                if object_info.get(node.class_type()).is_none() {
                    return Err(ApiDefinitionError::UnknownNode {
                        workflow: name.to_owned(),
                        node_id: node.id().to_owned(),
                        class_type: node.class_type().to_owned(),
                    });
                }
                let def = &object_info[node.class_type()];
                for (input, value) in node.inputs() {
                    let ApiInput::Value(value) = value else { continue };
                    let spec = def["input"]["required"]
                        .get(input)
                        .or_else(|| def["input"]["optional"].get(input));
                    let Some(kind) = spec.and_then(kind_of) else {
                        continue;
                    };
                    let title = node.title().unwrap_or_else(|| node.class_type());
                    let description = spec.and_then(|s| s[1]["tooltip"].as_str()).map(str::to_owned);
                    candidates.push((
                        title.to_owned(),
                        Param {
                            name: format!("{}_{}", snake_case(title), snake_case(input)),
                            node_id: node.id().to_owned(),
                            class_type: node.class_type().to_owned(),
                            input: input.to_owned(),
                            kind,
                            default: value.clone(),
                            description,
                        },
                    ));
                }
            }
        }
        let params = select_and_name(name, candidates, config)?;
        Ok(Self {
            name: name.to_owned(),
            prompt,
            params,
        })
    }

    /// The parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Validates a request body `{"params": {...}, "priority", "webhook", "max_attempts"}`,
    /// collecting every error.
    pub fn validate(&self, body: &Value) -> Result<JobRequest, Vec<FieldError>> {
        let mut errors = Vec::new();
        let Some(object) = body.as_object() else {
            return Err(vec![FieldError::new(
                "",
                "type",
                "the request body must be a JSON object",
            )]);
        };
        for key in object.keys() {
            if !matches!(key.as_str(), "params" | "priority" | "webhook" | "max_attempts") {
                errors.push(FieldError::new(key, "unknown", format!("unknown field `{key}`")));
            }
        }
        let priority = match object.get("priority") {
            None | Some(Value::Null) => 0,
            Some(v) => v.as_i64().and_then(|p| i32::try_from(p).ok()).unwrap_or_else(|| {
                errors.push(FieldError::new("priority", "type", "must be an integer (32-bit)"));
                0
            }),
        };
        let max_attempts = match object.get("max_attempts") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let valid = v
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| (1..=100).contains(n));
                if valid.is_none() {
                    let mut e =
                        FieldError::new("max_attempts", "maximum", "must be an integer from 1 to 100");
                    e.min = Some(json!(1));
                    e.max = Some(json!(100));
                    errors.push(e);
                }
                valid
            }
        };
        let webhook = match object.get("webhook") {
            None | Some(Value::Null) => None,
            Some(Value::String(url)) if url.starts_with("http://") || url.starts_with("https://") => {
                Some(url.clone())
            }
            Some(_) => {
                errors.push(FieldError::new(
                    "webhook",
                    "format",
                    "must be an http:// or https:// URL",
                ));
                None
            }
        };
        let mut params = Map::new();
        match object.get("params") {
            None | Some(Value::Null) => {}
            Some(Value::Object(values)) => {
                for (name, value) in values {
                    let path = format!("params.{name}");
                    match self.param(name) {
                        None => errors.push(FieldError::new(
                            &path,
                            "unknown",
                            format!("`{name}` is not a parameter of workflow `{}`", self.name),
                        )),
                        Some(param) => match check_value(&path, &param.kind, value) {
                            Ok(()) => {
                                params.insert(name.clone(), value.clone());
                            }
                            Err(error) => errors.push(*error),
                        },
                    }
                }
            }
            Some(_) => errors.push(FieldError::new("params", "type", "must be an object")),
        }
        if errors.is_empty() {
            Ok(JobRequest {
                params,
                priority,
                webhook,
                max_attempts,
            })
        } else {
            Err(errors)
        }
    }

    /// The prompt with the given values (uploads already replaced by their ComfyUI file names).
    pub fn inject(&self, values: &Map<String, Value>) -> Map<String, Value> {
        let mut prompt = self.prompt.clone();
        for (name, value) in values {
            let Some(param) = self.param(name) else { continue };
            if let Some(inputs) = prompt
                .get_mut(&param.node_id)
                .and_then(|n| n.get_mut("inputs"))
                .and_then(Value::as_object_mut)
            {
                inputs.insert(param.input.clone(), value.clone());
            }
        }
        prompt
    }
}

fn select_and_name(
    workflow: &str,
    candidates: Vec<(String, Param)>,
    config: Option<&ExposeConfig>,
) -> Result<Vec<Param>, ApiDefinitionError> {
    let matches = |reference: &str, title: &str, param: &Param| {
        reference.rsplit_once('.').is_some_and(|(node, input)| {
            input == param.input && (node == param.node_id || node == title || node == param.class_type)
        })
    };
    let mut params: Vec<Param> = Vec::new();
    if let Some(config) = config {
        for reference in config.expose.iter().flatten().chain(config.names.keys()) {
            if !candidates.iter().any(|(title, p)| matches(reference, title, p)) {
                return Err(ApiDefinitionError::UnknownReference {
                    workflow: workflow.to_owned(),
                    reference: reference.clone(),
                });
            }
        }
    }
    let mut renamed = Vec::new();
    for (title, mut param) in candidates {
        if let Some(expose) = config.and_then(|c| c.expose.as_ref())
            && !expose.iter().any(|r| matches(r, &title, &param))
        {
            continue;
        }
        let explicit = config.and_then(|c| {
            c.names
                .iter()
                .find(|(r, _)| matches(r, &title, &param))
                .map(|(_, n)| n.clone())
        });
        renamed.push(explicit.is_some());
        if let Some(name) = explicit {
            param.name = name;
        }
        params.push(param);
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for param in &params {
        *counts.entry(param.name.clone()).or_default() += 1;
    }
    for (param, explicit) in params.iter_mut().zip(&renamed) {
        if counts[&param.name] > 1 {
            if *explicit {
                return Err(ApiDefinitionError::DuplicateName {
                    workflow: workflow.to_owned(),
                    name: param.name.clone(),
                });
            }
            param.name = format!("{}_{}", param.name, snake_case(&param.node_id));
        }
    }
    Ok(params)
}

fn check_value(path: &str, kind: &ParamKind, value: &Value) -> Result<(), Box<FieldError>> {
    match kind {
        ParamKind::Int { min, max, step } => {
            let Some(v) = as_i128(value) else {
                return Err(Box::new(FieldError::new(path, "type", "must be an integer")));
            };
            let out_of_range = min.is_some_and(|m| v < m) || max.is_some_and(|m| v > m);
            if out_of_range {
                let constraint = if min.is_some_and(|m| v < m) {
                    "minimum"
                } else {
                    "maximum"
                };
                let mut error = FieldError::new(
                    path,
                    constraint,
                    format!(
                        "{v} is out of range: min {}, max {}",
                        fmt_bound(min.map(int_value)),
                        fmt_bound(max.map(int_value))
                    ),
                );
                error.min = min.map(int_value);
                error.max = max.map(int_value);
                return Err(Box::new(error));
            }
            // ComfyUI's widgets only produce `min + k * step` (width 512, 520, ... for step 8).
            let base = min.unwrap_or(0);
            if let Some(step) = step.filter(|step| *step > 1)
                && (v - base) % step != 0
            {
                let below = v - (v - base).rem_euclid(step);
                let mut error = FieldError::new(
                    path,
                    "step",
                    format!(
                        "{v} is not a multiple of {step} from {base}: use {below} or {}",
                        below + step
                    ),
                );
                error.min = min.map(int_value);
                error.step = Some(int_value(step));
                return Err(Box::new(error));
            }
        }
        ParamKind::Float { min, max, .. } => {
            let Some(v) = value.as_f64() else {
                return Err(Box::new(FieldError::new(path, "type", "must be a number")));
            };
            if min.is_some_and(|m| v < m) || max.is_some_and(|m| v > m) {
                let constraint = if min.is_some_and(|m| v < m) {
                    "minimum"
                } else {
                    "maximum"
                };
                let mut error = FieldError::new(
                    path,
                    constraint,
                    format!(
                        "{v} is out of range: min {}, max {}",
                        fmt_bound(min.map(Value::from)),
                        fmt_bound(max.map(Value::from))
                    ),
                );
                error.min = min.map(Value::from);
                error.max = max.map(Value::from);
                return Err(Box::new(error));
            }
        }
        ParamKind::String { .. } => {
            if !value.is_string() {
                return Err(Box::new(FieldError::new(path, "type", "must be a string")));
            }
        }
        ParamKind::Boolean => {
            if !value.is_boolean() {
                return Err(Box::new(FieldError::new(path, "type", "must be a boolean")));
            }
        }
        ParamKind::Enum { options } => {
            if !options.contains(value) {
                let mut error =
                    FieldError::new(path, "enum", format!("{value} is not one of the allowed values"));
                error.allowed = Some(options.clone());
                return Err(Box::new(error));
            }
        }
        ParamKind::Upload { media } => {
            let filename = value
                .get("filename")
                .and_then(Value::as_str)
                .filter(|f| is_safe_filename(f));
            let data = value.get("data").and_then(Value::as_str);
            match (filename, data.and_then(decode_base64)) {
                // The type comes from the bytes, never from the file name.
                (Some(_), Some(bytes)) => {
                    if let Some(message) = crate::media::mismatch(media, &bytes) {
                        let mut error = FieldError::new(path, "content_type", message);
                        error.allowed = Some(
                            crate::media::accepted_types(media)
                                .iter()
                                .map(|t| json!(t))
                                .collect(),
                        );
                        return Err(Box::new(error));
                    }
                }
                (None, _) => {
                    return Err(Box::new(FieldError::new(
                        path,
                        "required",
                        "an upload needs `filename` (a plain file name)",
                    )));
                }
                _ => {
                    return Err(Box::new(FieldError::new(
                        path,
                        "format",
                        "`data` must be the file as base64",
                    )));
                }
            }
        }
    }
    Ok(())
}

fn fmt_bound(bound: Option<Value>) -> String {
    bound.map_or_else(|| "none".to_owned(), |b| b.to_string())
}

/// A file name without directories or `..`.
pub fn is_safe_filename(name: &str) -> bool {
    !name.is_empty() && !name.contains(['/', '\\', '\0']) && name != "." && name != ".."
}

/// Standard base64 (padding optional) to bytes.
pub fn decode_base64(data: &str) -> Option<Vec<u8>> {
    let data = data.trim();
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(data))
        .ok()
}

/// Bytes as standard base64.
pub fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn txt2img() -> Value {
        json!({
            "3": {"class_type": "KSampler", "_meta": {"title": "KSampler"}, "inputs": {
                "seed": 42, "steps": 20, "cfg": 7.5, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
                "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
            "4": {"class_type": "CheckpointLoaderSimple", "_meta": {"title": "Load Checkpoint"}, "inputs": {"ckpt_name": "sd15.safetensors"}},
            "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
            "6": {"class_type": "CLIPTextEncode", "_meta": {"title": "Positive"}, "inputs": {"text": "a cat", "clip": ["4", 1]}},
            "7": {"class_type": "CLIPTextEncode", "_meta": {"title": "Positive"}, "inputs": {"text": "blurry", "clip": ["4", 1]}},
            "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
            "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "ComfyUI"}},
            "10": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        })
    }

    fn api(config: Option<&ExposeConfig>) -> WorkflowApi {
        WorkflowApi::derive(
            "txt2img",
            &txt2img(),
            &comfydock_test::comfyui_server::object_info(),
            config,
        )
        .unwrap()
    }

    #[test]
    fn snake_case_names() {
        assert_eq!(snake_case("CLIP Text Encode (Prompt)"), "clip_text_encode_prompt");
        assert_eq!(snake_case("KSamplerAdvanced"), "k_sampler_advanced");
        assert_eq!(snake_case("EmptyLatentImage"), "empty_latent_image");
        assert_eq!(snake_case("  ✨ "), "node");
    }

    #[test]
    fn derives_typed_parameters_with_workflow_defaults() {
        let api = api(None);
        let names: Vec<_> = api.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "k_sampler_seed",
                "k_sampler_steps",
                "k_sampler_cfg",
                "k_sampler_sampler_name",
                "k_sampler_scheduler",
                "k_sampler_denoise",
                "load_checkpoint_ckpt_name",
                "empty_latent_image_width",
                "empty_latent_image_height",
                "empty_latent_image_batch_size",
                "positive_text_6",
                "positive_text_7",
                "save_image_filename_prefix",
                "load_image_image",
            ]
        );
        let steps = api.param("k_sampler_steps").unwrap();
        assert_eq!(
            steps.kind,
            ParamKind::Int {
                min: Some(1),
                max: Some(10000),
                step: None
            }
        );
        assert_eq!(steps.default, json!(20));
        let seed = api.param("k_sampler_seed").unwrap();
        assert_eq!(
            seed.kind,
            ParamKind::Int {
                min: Some(0),
                max: Some(i128::from(u64::MAX)),
                step: None
            }
        );
        assert!(
            matches!(api.param("k_sampler_sampler_name").unwrap().kind, ParamKind::Enum { ref options } if options.len() == 4)
        );
        assert_eq!(
            api.param("load_image_image").unwrap().kind,
            ParamKind::Upload {
                media: "image".into()
            }
        );
        assert_eq!(api.param("positive_text_6").unwrap().default, json!("a cat"));
    }

    #[test]
    fn manifest_config_selects_and_renames() {
        let config = ExposeConfig {
            expose: Some(vec!["3.seed".into(), "6.text".into(), "KSampler.steps".into()]),
            names: BTreeMap::from([("6.text".to_owned(), "prompt".to_owned())]),
        };
        let api = api(Some(&config));
        let names: Vec<_> = api.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["k_sampler_seed", "k_sampler_steps", "prompt"]);
        let bad = ExposeConfig {
            expose: Some(vec!["99.seed".into()]),
            ..Default::default()
        };
        let error = WorkflowApi::derive(
            "txt2img",
            &txt2img(),
            &comfydock_test::comfyui_server::object_info(),
            Some(&bad),
        )
        .unwrap_err();
        assert!(error.to_string().contains("99.seed"), "{error}");
    }

    #[test]
    fn validation_lists_every_bad_field_with_its_constraint() {
        let api = api(None);
        let errors = api
            .validate(&json!({"params": {
                "k_sampler_steps": 0, "k_sampler_cfg": "high", "k_sampler_sampler_name": "heun",
                "nope": 1, "empty_latent_image_width": 99999, "load_image_image": {"filename": "../x.png", "data": "AA=="}
            }, "priority": "urgent"}))
            .unwrap_err();
        let by_path: HashMap<_, _> = errors.iter().map(|e| (e.path.as_str(), e)).collect();
        assert_eq!(by_path.len(), 7, "{errors:#?}");
        let steps = by_path["params.k_sampler_steps"];
        assert_eq!(steps.constraint, "minimum");
        assert_eq!(
            (steps.min.clone(), steps.max.clone()),
            (Some(json!(1)), Some(json!(10000)))
        );
        assert!(
            steps.message.contains("min 1") && steps.message.contains("max 10000"),
            "{}",
            steps.message
        );
        assert_eq!(by_path["params.empty_latent_image_width"].constraint, "maximum");
        assert_eq!(by_path["params.k_sampler_cfg"].constraint, "type");
        assert_eq!(by_path["params.k_sampler_sampler_name"].constraint, "enum");
        assert_eq!(by_path["params.nope"].constraint, "unknown");
        assert_eq!(by_path["params.load_image_image"].constraint, "required");
        assert_eq!(by_path["priority"].constraint, "type");
    }

    #[test]
    fn integers_off_their_step_are_refused_naming_the_neighbours() {
        let api = api(None);
        let errors = api
            .validate(&json!({"params": {"empty_latent_image_width": 513, "empty_latent_image_height": 520}}))
            .unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:#?}");
        let width = &errors[0];
        assert_eq!(width.path, "params.empty_latent_image_width");
        assert_eq!(width.constraint, "step");
        assert_eq!(width.step, Some(json!(8)));
        assert!(width.message.contains("use 512 or 520"), "{}", width.message);
        assert!(
            api.validate(&json!({"params": {"empty_latent_image_width": 1024}}))
                .is_ok()
        );
    }

    #[test]
    fn valid_values_are_injected_into_the_prompt() {
        let api = api(None);
        let request = api
            .validate(&json!({"params": {"k_sampler_steps": 4, "positive_text_6": "a dog", "k_sampler_seed": u64::MAX}, "priority": 3}))
            .unwrap();
        assert_eq!(request.priority, 3);
        let prompt = api.inject(&request.params);
        assert_eq!(prompt["3"]["inputs"]["steps"], 4);
        assert_eq!(prompt["3"]["inputs"]["seed"], json!(u64::MAX));
        assert_eq!(prompt["6"]["inputs"]["text"], "a dog");
        assert_eq!(prompt["7"]["inputs"]["text"], "blurry");
        assert_eq!(prompt["3"]["inputs"]["model"], json!(["4", 0]), "links untouched");
    }

    #[test]
    fn ui_format_workflows_are_converted_first() {
        let ui = json!({
            "last_node_id": 2, "last_link_id": 1, "version": 0.4,
            "nodes": [
                {"id": 1, "type": "EmptyLatentImage", "mode": 0, "inputs": [],
                 "outputs": [{"name": "LATENT", "type": "LATENT", "links": [1]}], "widgets_values": [768, 512, 2]},
                {"id": 2, "type": "PreviewImage", "title": "Preview", "mode": 0,
                 "inputs": [{"name": "images", "type": "IMAGE", "link": 1}], "outputs": [], "widgets_values": []},
            ],
            "links": [[1, 1, 0, 2, 0, "LATENT"]],
            "groups": [], "config": {}, "extra": {},
        });
        let api =
            WorkflowApi::derive("ui", &ui, &comfydock_test::comfyui_server::object_info(), None).unwrap();
        let width = api
            .params
            .iter()
            .find(|p| p.input == "width")
            .expect("width parameter");
        assert_eq!(width.default, json!(768));
        assert_eq!(width.node_id, "1");
        assert_eq!(api.prompt["2"]["inputs"]["images"], json!(["1", 0]));
    }

    #[test]
    fn unknown_node_types_are_refused_at_startup() {
        let mut workflow = txt2img();
        workflow["20"] = json!({"class_type": "IPAdapterApply", "inputs": {"weight": 1.0}});
        let error = WorkflowApi::derive(
            "txt2img",
            &workflow,
            &comfydock_test::comfyui_server::object_info(),
            None,
        )
        .unwrap_err();
        assert!(
            matches!(error, ApiDefinitionError::UnknownNode { ref class_type, .. } if class_type == "IPAdapterApply"),
            "{error}"
        );
        assert!(
            comfydock_foundation::Hinted::hint(&error)
                .unwrap()
                .contains("comfydock node add")
        );
    }

    #[test]
    fn base64_round_trip() {
        assert_eq!(
            decode_base64(&encode_base64(b"\x89PNG data")).unwrap(),
            b"\x89PNG data"
        );
        assert!(decode_base64("not base64!").is_none());
    }
}
