//! Matching a workflow's model reference to a file in the model index, and the pin recorded for
//! a match.

use comfydock_models::index::ModelRecord;
use comfydock_workflow::ModelReference;
use serde::Serialize;

/// Pinned model entry stored in the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct ModelPin {
    /// The file name as the workflow writes it.
    pub name: String,
    /// Where it goes under a models root (`folder/name`), as deploy and import expect.
    pub relative_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
    pub criticality: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub sources: Vec<String>,
}

/// The matching chain, strongest first: declared hash, exact path, folder-aware path, file name,
/// file name ignoring case. Returns the record and how it matched.
pub fn find_model<'a>(
    records: &'a [ModelRecord],
    reference: &ModelReference,
) -> Option<(&'a ModelRecord, &'static str)> {
    if let Some(hash) = &reference.hash {
        let hash = hash.to_ascii_lowercase();
        if let Some(r) = records
            .iter()
            .find(|r| r.sha256.as_deref() == Some(hash.as_str()) || r.blake3 == hash)
        {
            return Some((r, "matched by declared hash"));
        }
    }
    let wanted = reference.relative_path.replace('\\', "/");
    let full = reference.folder.as_ref().map(|f| format!("{f}/{wanted}"));
    let file_name = wanted.rsplit('/').next().unwrap_or(&wanted).to_owned();
    let locations = || {
        records
            .iter()
            .flat_map(|r| r.locations.iter().map(move |l| (r, l)))
    };
    if let Some(full) = &full
        && let Some((r, _)) = locations().find(|(_, l)| &l.relative_path == full)
    {
        return Some((r, "exact path"));
    }
    if let Some((r, _)) = locations().find(|(_, l)| {
        l.folder.as_deref() == reference.folder.as_deref() && l.relative_path.ends_with(&format!("/{wanted}"))
    }) {
        return Some((r, "same folder and path"));
    }
    if let Some((r, _)) = locations().find(|(_, l)| l.file_name() == file_name) {
        return Some((r, "same file name"));
    }
    locations()
        .find(|(_, l)| l.file_name().eq_ignore_ascii_case(&file_name))
        .map(|(r, _)| (r, "same file name (ignoring case)"))
}

/// The pin for `record` matched by `reference`: its size, hashes and every known source.
pub fn pin(record: &ModelRecord, reference: &ModelReference) -> ModelPin {
    let mut sources: Vec<String> = record.sources.iter().map(|s| s.url.clone()).collect();
    if let Some(url) = &reference.url
        && !sources.contains(url)
    {
        sources.push(url.clone());
    }
    ModelPin {
        name: reference.relative_path.clone(),
        relative_path: match &reference.folder {
            Some(folder) => format!("{folder}/{}", reference.relative_path),
            None => reference.relative_path.clone(),
        },
        folder: reference.folder.clone(),
        criticality: format!("{:?}", reference.criticality).to_ascii_lowercase(),
        size: record.size,
        sha256: record.sha256.clone(),
        sources,
    }
}
