//! Job requests as `multipart/form-data` (besides the JSON body) and size limits for uploaded
//! files.
//!
//! A multipart request carries one part per parameter, named like the parameter: files for
//! uploads (`-F init_image=@fox.png`), text for the others (`-F k_sampler_steps=4`, converted to
//! the parameter's type), and `priority`, `webhook`, `max_attempts` as text. It becomes the same
//! JSON body the JSON API takes (a file as `{"filename", "data" (base64)}`), so validation, the
//! queue and idempotency treat both alike.
//!
//! A file's type is read from its bytes ([`crate::media`]), never from the declared `Content-Type`
//! or file name. Each file may be at most the upload limit (413).

use std::collections::HashSet;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest as _, Multipart};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use serde_json::{Map, Value, json};

use crate::media::sniff;
use crate::params::{FieldError, ParamKind, WorkflowApi, encode_base64, is_safe_filename};

/// Request fields besides the parameters.
const REQUEST_FIELDS: [&str; 3] = ["priority", "webhook", "max_attempts"];

/// Size limits of uploads.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    /// Largest file, in bytes (decoded, for base64 uploads in a JSON body).
    pub per_file: usize,
    /// Largest request body, in bytes.
    pub per_request: usize,
}

/// A 413 with a JSON body naming the limit (and the field, for a file).
pub fn too_large(path: Option<&str>, limit: usize, what: &str) -> Response {
    let mut body = json!({
        "error": "payload_too_large",
        "message": format!("{what} is over the limit of {limit} bytes ({})", mib(limit)),
        "limit": limit,
    });
    if let Some(path) = path {
        body["path"] = json!(path);
    }
    (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response()
}

fn mib(bytes: usize) -> String {
    let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
    if bytes % (1024 * 1024) == 0 {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{bytes} bytes")
    }
}

/// A 422 listing field errors.
pub fn invalid(errors: &[FieldError]) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        axum::Json(json!({"error": "validation_failed", "errors": errors})),
    )
        .into_response()
}

/// Whether a request body is `multipart/form-data`.
pub fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("multipart/form-data"))
}

/// The JSON request body of a submission: parsed JSON, or built from `multipart/form-data`.
/// Files over the per-file limit are refused (413); a JSON body's base64 files too.
pub async fn request_body(
    api: &WorkflowApi,
    headers: &HeaderMap,
    body: Bytes,
    limits: UploadLimits,
) -> Result<Value, Response> {
    if is_multipart(headers) {
        return multipart_body(api, headers, body, limits).await;
    }
    let value: Value = serde_json::from_slice(&body).map_err(|err| {
        invalid(&[FieldError::new(
            "",
            "format",
            format!("the body is not JSON: {err}"),
        )])
    })?;
    // The decoded size of base64 is 3/4 of its length (less padding): no need to decode here.
    for param in &api.params {
        let ParamKind::Upload { .. } = param.kind else {
            continue;
        };
        let data = value["params"][&param.name]["data"].as_str().unwrap_or("");
        let decoded = data.trim().trim_end_matches('=').len() / 4 * 3;
        if decoded > limits.per_file {
            let path = format!("params.{}", param.name);
            return Err(too_large(Some(&path), limits.per_file, &format!("`{path}`")));
        }
    }
    Ok(value)
}

async fn multipart_body(
    api: &WorkflowApi,
    headers: &HeaderMap,
    body: Bytes,
    limits: UploadLimits,
) -> Result<Value, Response> {
    let mut request = Request::new(Body::from(body));
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        request
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type.clone());
    }
    let malformed = |message: String| invalid(&[FieldError::new("", "format", message)]);
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|err| malformed(format!("the body is not multipart/form-data: {err}")))?;
    let mut object = Map::new();
    let mut params = Map::new();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(err) => return Err(malformed(format!("the multipart body is malformed: {err}"))),
        };
        let name = field.name().unwrap_or_default().to_owned();
        let name = name.strip_prefix("params.").unwrap_or(&name).to_owned();
        let is_request_field = REQUEST_FIELDS.contains(&name.as_str());
        let path = if is_request_field {
            name.clone()
        } else {
            format!("params.{name}")
        };
        if !seen.insert(name.clone()) {
            errors.push(FieldError::new(&path, "format", "given more than once"));
            continue;
        }
        let client_name = field.file_name().map(str::to_owned);
        let kind = api.param(&name).map(|p| p.kind.clone());
        let mut field = field;
        let mut bytes = Vec::new();
        // A text part is small (the body limit bounds it); a file part is held to the file limit.
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > limits.per_file {
                        return Err(too_large(Some(&path), limits.per_file, &format!("`{path}`")));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(err) => return Err(malformed(format!("reading part `{name}` failed: {err}"))),
            }
        }
        if is_request_field {
            let text = String::from_utf8_lossy(&bytes).trim().to_owned();
            let value = match name.as_str() {
                "webhook" => Value::String(text),
                _ => text.parse::<i64>().map_or(Value::String(text), Value::from),
            };
            object.insert(name, value);
            continue;
        }
        match kind {
            Some(ParamKind::Upload { .. }) => {
                let filename = client_name
                    .as_deref()
                    .and_then(plain_file_name)
                    .unwrap_or_else(|| default_file_name(&bytes));
                params.insert(name, json!({"filename": filename, "data": encode_base64(&bytes)}));
            }
            Some(kind) if client_name.is_some() => {
                errors.push(FieldError::new(
                    &path,
                    "type",
                    format!("must be {}, not a file", type_name(&kind)),
                ));
            }
            Some(kind) => {
                let text = String::from_utf8_lossy(&bytes);
                params.insert(name, text_value(&kind, &text));
            }
            // Unknown: validation names it.
            None => {
                params.insert(name, Value::String(String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
    }
    object.insert("params".to_owned(), Value::Object(params));
    let body = Value::Object(object);
    if !errors.is_empty() {
        // With the other fields' errors, so one answer lists every bad field.
        if let Err(more) = api.validate(&body) {
            errors.extend(more);
        }
        return Err(invalid(&errors));
    }
    Ok(body)
}

/// The last component of a client's file name, when it is a plain, visible name.
fn plain_file_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name).trim();
    (is_safe_filename(base) && !base.starts_with('.')).then(|| base.to_owned())
}

/// `upload.<ext>` by the sniffed type, for a part without a usable file name.
fn default_file_name(bytes: &[u8]) -> String {
    let ext = sniff(bytes).map_or("bin", |s| {
        s.mime.rsplit('/').next().map_or("bin", |sub| match sub {
            "jpeg" => "jpg",
            "mpeg" => "mp3",
            "quicktime" => "mov",
            "x-msvideo" => "avi",
            "gltf-binary" => "glb",
            "mp4" if s.kinds.contains(&"audio") => "m4a",
            other => other,
        })
    });
    format!("upload.{ext}")
}

fn type_name(kind: &ParamKind) -> &'static str {
    match kind {
        ParamKind::Int { .. } => "an integer",
        ParamKind::Float { .. } => "a number",
        ParamKind::String { .. } => "a string",
        ParamKind::Boolean => "a boolean",
        ParamKind::Enum { .. } => "one of the allowed values",
        ParamKind::Upload { .. } => "a file",
    }
}

/// A text part as the parameter's JSON type; text that does not convert stays a string, so
/// validation reports the type error with the field's path.
fn text_value(kind: &ParamKind, text: &str) -> Value {
    let trimmed = text.trim();
    match kind {
        ParamKind::Int { .. } => trimmed
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| trimmed.parse::<u64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(text.to_owned())),
        ParamKind::Float { .. } => trimmed
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map_or_else(|| Value::String(text.to_owned()), Value::from),
        ParamKind::Boolean => match trimmed.to_ascii_lowercase().as_str() {
            "true" | "1" | "on" | "yes" => Value::Bool(true),
            "false" | "0" | "off" | "no" => Value::Bool(false),
            _ => Value::String(text.to_owned()),
        },
        ParamKind::Enum { options } => options
            .iter()
            .find(|option| option.as_str().map_or_else(|| option.to_string(), str::to_owned) == text)
            .cloned()
            .unwrap_or_else(|| Value::String(text.to_owned())),
        ParamKind::String { .. } | ParamKind::Upload { .. } => Value::String(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_parts_take_the_parameter_type() {
        let int = ParamKind::Int {
            min: None,
            max: None,
            step: None,
        };
        assert_eq!(text_value(&int, " 12 "), json!(12));
        assert_eq!(text_value(&int, "18446744073709551615"), json!(u64::MAX));
        assert_eq!(text_value(&int, "twelve"), json!("twelve"));
        let float = ParamKind::Float {
            min: None,
            max: None,
            step: None,
        };
        assert_eq!(text_value(&float, "7.5"), json!(7.5));
        assert_eq!(text_value(&ParamKind::Boolean, "true"), json!(true));
        let options = ParamKind::Enum {
            options: vec![json!("euler"), json!(4)],
        };
        assert_eq!(text_value(&options, "euler"), json!("euler"));
        assert_eq!(text_value(&options, "4"), json!(4));
        assert_eq!(
            text_value(&ParamKind::String { multiline: false }, " 7 "),
            json!(" 7 ")
        );
    }

    #[test]
    fn client_file_names_lose_their_folders() {
        assert_eq!(plain_file_name("C:\\photos\\fox.png").as_deref(), Some("fox.png"));
        assert_eq!(plain_file_name("../../fox.png").as_deref(), Some("fox.png"));
        assert_eq!(plain_file_name(".hidden"), None);
        assert_eq!(default_file_name(b"\xff\xd8\xff"), "upload.jpg");
        assert_eq!(default_file_name(b"???"), "upload.bin");
    }
}
