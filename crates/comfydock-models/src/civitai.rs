//! The few Civitai API calls we need: resolve a model or model-version to a downloadable file,
//! and find a model version by the sha256 of a file.
//!
//! `GET <civitai>/api/v1/model-versions/{id}`, `GET <civitai>/api/v1/models/{id}` (its first
//! version is the latest), `GET <civitai>/api/v1/model-versions/by-hash/{sha256}`.

use serde_json::Value;
use url::Url;

use crate::fetch::{HttpContext, JsonFetchError};

/// One downloadable file of a Civitai model version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CivitaiFile {
    pub model_id: Option<u64>,
    pub version_id: u64,
    /// Model name (for display).
    pub model_name: Option<String>,
    pub file_name: Option<String>,
    pub download_url: String,
    /// Lower-case hex, when Civitai publishes it.
    pub sha256: Option<String>,
    pub blake3: Option<String>,
    /// ComfyUI folder for the model type (`LORA` → `loras`), if known.
    pub folder: Option<&'static str>,
}

/// Civitai model types → ComfyUI folder keys.
fn folder_for_type(model_type: &str) -> Option<&'static str> {
    Some(match model_type.to_ascii_lowercase().as_str() {
        "checkpoint" => "checkpoints",
        "lora" | "locon" | "dora" | "lycoris" => "loras",
        "textualinversion" => "embeddings",
        "vae" => "vae",
        "controlnet" => "controlnet",
        "upscaler" => "upscale_models",
        "hypernetwork" => "hypernetworks",
        _ => return None,
    })
}

/// Pick the file of a version document (the primary one, else the first) and, if it names
/// `sha256`, the file with that hash.
fn file_of_version(version: &Value, model_type: Option<&str>, sha256: Option<&str>) -> Option<CivitaiFile> {
    let version_id = version.get("id")?.as_u64()?;
    let files = version.get("files").and_then(Value::as_array);
    let hash_of = |file: &Value, key: &str| {
        file.pointer(&format!("/hashes/{key}"))
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
    };
    let file = files.and_then(|files| {
        sha256
            .and_then(|wanted| {
                files
                    .iter()
                    .find(|f| hash_of(f, "SHA256").as_deref() == Some(wanted))
            })
            .or_else(|| {
                files
                    .iter()
                    .find(|f| f.get("primary").and_then(Value::as_bool) == Some(true))
            })
            .or_else(|| files.first())
    });
    let download_url = file
        .and_then(|f| f.get("downloadUrl"))
        .or_else(|| version.get("downloadUrl"))
        .and_then(Value::as_str)?
        .to_owned();
    let model_type = model_type.or_else(|| version.pointer("/model/type").and_then(Value::as_str));
    Some(CivitaiFile {
        model_id: version.get("modelId").and_then(Value::as_u64),
        version_id,
        model_name: version
            .pointer("/model/name")
            .and_then(Value::as_str)
            .map(str::to_owned),
        file_name: file
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        download_url,
        sha256: file.and_then(|f| hash_of(f, "SHA256")),
        blake3: file.and_then(|f| hash_of(f, "BLAKE3")),
        folder: model_type.and_then(folder_for_type),
    })
}

/// Civitai answered, but not with something usable.
#[derive(Debug, thiserror::Error)]
pub enum CivitaiError {
    #[error(transparent)]
    Fetch(#[from] JsonFetchError),
    #[error("Civitai has no {what} {id}")]
    NotFound { what: &'static str, id: u64 },
    #[error("Civitai's answer for {what} {id} has no downloadable file")]
    NoFile { what: &'static str, id: u64 },
}

impl HttpContext {
    /// The file to download for a model version.
    pub async fn civitai_version(&self, version_id: u64) -> Result<CivitaiFile, CivitaiError> {
        let url = self
            .endpoints
            .civitai_api(&format!("/api/v1/model-versions/{version_id}"));
        let version = self.get_json(&url).await?.ok_or(CivitaiError::NotFound {
            what: "model version",
            id: version_id,
        })?;
        file_of_version(&version, None, None).ok_or(CivitaiError::NoFile {
            what: "model version",
            id: version_id,
        })
    }

    /// The file to download for a model's latest version.
    pub async fn civitai_model(&self, model_id: u64) -> Result<CivitaiFile, CivitaiError> {
        let url = self.endpoints.civitai_api(&format!("/api/v1/models/{model_id}"));
        let model = self.get_json(&url).await?.ok_or(CivitaiError::NotFound {
            what: "model",
            id: model_id,
        })?;
        let model_type = model.get("type").and_then(Value::as_str);
        let latest = model
            .get("modelVersions")
            .and_then(Value::as_array)
            .and_then(|versions| versions.first())
            .ok_or(CivitaiError::NoFile {
                what: "model",
                id: model_id,
            })?;
        let mut file = file_of_version(latest, model_type, None).ok_or(CivitaiError::NoFile {
            what: "model",
            id: model_id,
        })?;
        file.model_id.get_or_insert(model_id);
        if file.model_name.is_none() {
            file.model_name = model.get("name").and_then(Value::as_str).map(str::to_owned);
        }
        Ok(file)
    }

    /// The Civitai file with this sha256, if Civitai knows it.
    pub async fn civitai_by_hash(&self, sha256: &str) -> Result<Option<CivitaiFile>, JsonFetchError> {
        let sha256 = sha256.to_ascii_lowercase();
        let url: Url = self
            .endpoints
            .civitai_api(&format!("/api/v1/model-versions/by-hash/{sha256}"));
        Ok(self
            .get_json(&url)
            .await?
            .and_then(|version| file_of_version(&version, None, Some(&sha256))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_primary_file_and_type_folder() {
        let version = serde_json::json!({
            "id": 11, "modelId": 3, "downloadUrl": "https://c/api/download/models/11",
            "model": {"name": "Detail", "type": "LORA"},
            "files": [
                {"name": "a.pt", "downloadUrl": "https://c/a", "hashes": {"SHA256": "AA"}},
                {"name": "b.safetensors", "primary": true, "downloadUrl": "https://c/b",
                 "hashes": {"SHA256": "BB", "BLAKE3": "CC"}}
            ]
        });
        let file = file_of_version(&version, None, None).unwrap();
        assert_eq!(file.file_name.as_deref(), Some("b.safetensors"));
        assert_eq!(file.download_url, "https://c/b");
        assert_eq!(file.sha256.as_deref(), Some("bb"));
        assert_eq!(file.blake3.as_deref(), Some("cc"));
        assert_eq!(file.folder, Some("loras"));
        assert_eq!(file.model_id, Some(3));
        let by_hash = file_of_version(&version, None, Some("aa")).unwrap();
        assert_eq!(by_hash.file_name.as_deref(), Some("a.pt"));
        assert_eq!(folder_for_type("Checkpoint"), Some("checkpoints"));
        assert_eq!(folder_for_type("Workflows"), None);
    }
}
