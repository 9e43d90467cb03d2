//! Job requests as `multipart/form-data` (besides the JSON body), media type sniffing and size
//! limits for uploaded files.
//!
//! A multipart request carries one part per parameter, named like the parameter: files for
//! uploads (`-F init_image=@fox.png`), text for the others (`-F k_sampler_steps=4`, converted to
//! the parameter's type), and `priority`, `webhook`, `max_attempts` as text. It becomes the same
//! JSON body the JSON API takes (a file as `{"filename", "data" (base64)}`), so validation, the
//! queue and idempotency treat both alike.
//!
//! A file's type is read from its first bytes, never from the declared `Content-Type` or file
//! name: an image parameter takes PNG, JPEG, GIF, WEBP, BMP, TIFF, AVIF or HEIC; audio takes FLAC,
//! WAV, MP3, AAC, Ogg or M4A; video takes MP4, QuickTime, WEBM/Matroska, AVI or GIF; a mesh takes
//! binary glTF, PLY or ASCII STL. Each file may be at most the upload limit (413).

use std::collections::HashSet;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest as _, Multipart};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use serde_json::{Map, Value, json};

use crate::params::{FieldError, ParamKind, WorkflowApi, encode_base64, is_safe_filename};

/// Request fields besides the parameters.
const REQUEST_FIELDS: [&str; 3] = ["priority", "webhook", "max_attempts"];

/// A media type recognised from a file's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    /// `image/png`, `audio/flac`, ...
    pub mime: &'static str,
    /// The media kinds a parameter may declare that accept it (`image`, `audio`, `video`, `mesh`).
    pub kinds: &'static [&'static str],
}

const IMAGE: &[&str] = &["image"];
const AUDIO: &[&str] = &["audio"];
const VIDEO: &[&str] = &["video"];
const MESH: &[&str] = &["mesh"];
/// A GIF is an image, and also the animation a video parameter takes.
const IMAGE_OR_VIDEO: &[&str] = &["image", "video"];
/// Ogg holds Vorbis or Opus audio, or Theora video.
const AUDIO_OR_VIDEO: &[&str] = &["audio", "video"];

/// The types each media kind accepts, for error messages and the OpenAPI document.
pub fn accepted_types(media: &str) -> &'static [&'static str] {
    match media {
        "image" => &[
            "image/png",
            "image/jpeg",
            "image/gif",
            "image/webp",
            "image/bmp",
            "image/tiff",
            "image/avif",
            "image/heic",
        ],
        "audio" => &[
            "audio/flac",
            "audio/wav",
            "audio/mpeg",
            "audio/aac",
            "audio/ogg",
            "audio/mp4",
        ],
        "video" => &[
            "video/mp4",
            "video/quicktime",
            "video/webm",
            "video/x-msvideo",
            "image/gif",
            "video/ogg",
        ],
        "mesh" => &["model/gltf-binary", "model/ply", "model/stl"],
        _ => &[],
    }
}

/// The media type of `bytes` by their magic numbers.
pub fn sniff(bytes: &[u8]) -> Option<Sniffed> {
    let at = |offset: usize, magic: &[u8]| bytes.get(offset..offset + magic.len()) == Some(magic);
    let found = |mime, kinds| Some(Sniffed { mime, kinds });
    if at(0, b"\x89PNG\r\n\x1a\n") {
        return found("image/png", IMAGE);
    }
    if at(0, b"\xff\xd8\xff") {
        return found("image/jpeg", IMAGE);
    }
    if at(0, b"GIF87a") || at(0, b"GIF89a") {
        return found("image/gif", IMAGE_OR_VIDEO);
    }
    if at(0, b"RIFF") {
        if at(8, b"WEBP") {
            return found("image/webp", IMAGE);
        }
        if at(8, b"WAVE") {
            return found("audio/wav", AUDIO);
        }
        if at(8, b"AVI ") {
            return found("video/x-msvideo", VIDEO);
        }
        return None;
    }
    if at(0, b"BM") && bytes.len() >= 26 {
        return found("image/bmp", IMAGE);
    }
    if at(0, b"II*\0") || at(0, b"MM\0*") {
        return found("image/tiff", IMAGE);
    }
    if at(4, b"ftyp") {
        let brand = bytes.get(8..12).unwrap_or_default();
        return match brand {
            b"avif" | b"avis" => found("image/avif", IMAGE),
            b"heic" | b"heix" | b"heim" | b"heis" | b"mif1" | b"msf1" => found("image/heic", IMAGE),
            b"M4A " | b"M4B " => found("audio/mp4", AUDIO),
            b"qt  " => found("video/quicktime", VIDEO),
            _ => found("video/mp4", VIDEO),
        };
    }
    if at(0, b"fLaC") {
        return found("audio/flac", AUDIO);
    }
    if at(0, b"OggS") {
        return found("audio/ogg", AUDIO_OR_VIDEO);
    }
    if at(0, b"ID3") {
        return found("audio/mpeg", AUDIO);
    }
    if let [0xff, second, ..] = bytes {
        // ADTS (AAC) has layer bits 00; MPEG audio frames (MP3) have a non-zero layer.
        if second & 0xf6 == 0xf0 {
            return found("audio/aac", AUDIO);
        }
        if second & 0xe0 == 0xe0 && second & 0x06 != 0 {
            return found("audio/mpeg", AUDIO);
        }
    }
    if at(0, b"\x1a\x45\xdf\xa3") {
        return found("video/webm", VIDEO);
    }
    if at(0, b"glTF") {
        return found("model/gltf-binary", MESH);
    }
    if at(0, b"ply\n") || at(0, b"ply\r\n") {
        return found("model/ply", MESH);
    }
    if at(0, b"solid ") {
        return found("model/stl", MESH);
    }
    None
}

/// Checks an upload's bytes against the media kind of its parameter.
pub fn check_media(path: &str, media: &str, bytes: &[u8]) -> Result<(), Box<FieldError>> {
    let sniffed = sniff(bytes);
    if sniffed.is_some_and(|s| s.kinds.contains(&media)) {
        return Ok(());
    }
    let accepted = accepted_types(media);
    let seen = sniffed.map_or_else(
        || "not a recognised media format".to_owned(),
        |s| format!("`{}`", s.mime),
    );
    let mut error = FieldError::new(
        path,
        "content_type",
        format!(
            "must be {} {media} file ({}); its bytes are {seen}",
            if media == "image" || media == "audio" {
                "an"
            } else {
                "a"
            },
            accepted.join(", ")
        ),
    );
    error.allowed = Some(accepted.iter().map(|t| json!(t)).collect());
    Err(Box::new(error))
}

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
    if !errors.is_empty() {
        return Err(invalid(&errors));
    }
    object.insert("params".to_owned(), Value::Object(params));
    Ok(Value::Object(object))
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
    fn types_come_from_the_bytes() {
        let cases: [(&[u8], Option<&str>); 14] = [
            (b"\x89PNG\r\n\x1a\nrest", Some("image/png")),
            (b"\xff\xd8\xff\xe0JFIF", Some("image/jpeg")),
            (b"GIF89a...", Some("image/gif")),
            (b"RIFF\0\0\0\0WEBPVP8 ", Some("image/webp")),
            (b"RIFF\0\0\0\0WAVEfmt ", Some("audio/wav")),
            (b"\0\0\0\x18ftypmp42", Some("video/mp4")),
            (b"\0\0\0\x18ftypM4A ", Some("audio/mp4")),
            (b"\0\0\0\x1cftypavif", Some("image/avif")),
            (b"fLaC\0\0\0\x22", Some("audio/flac")),
            (b"ID3\x04\0", Some("audio/mpeg")),
            (b"\xff\xfb\x90\x64", Some("audio/mpeg")),
            (b"\xff\xf1\x50\x80", Some("audio/aac")),
            (b"\x1a\x45\xdf\xa3", Some("video/webm")),
            (b"<html>not media", None),
        ];
        for (bytes, want) in cases {
            assert_eq!(sniff(bytes).map(|s| s.mime), want, "{bytes:?}");
        }
    }

    #[test]
    fn a_parameter_takes_only_its_media_kind() {
        assert!(check_media("params.a", "image", b"\x89PNG\r\n\x1a\n").is_ok());
        assert!(
            check_media("params.a", "video", b"GIF89a").is_ok(),
            "GIF animations are video"
        );
        let error = check_media("params.a", "image", b"fLaC\0\0").unwrap_err();
        assert_eq!(error.path, "params.a");
        assert_eq!(error.constraint, "content_type");
        assert!(error.message.contains("`audio/flac`"), "{}", error.message);
        let error = check_media("params.v", "audio", b"%PDF-1.7").unwrap_err();
        assert!(error.message.contains("not a recognised"), "{}", error.message);
    }

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
