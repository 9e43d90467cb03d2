//! Matching a workflow's model reference to a file in the model index, and the pin recorded for
//! a match.

use comfydock_environments::manifest::schema::{ModelEntry, ModelHash, ModelSource};
use comfydock_models::index::ModelRecord;
use comfydock_workflow::ModelReference;

use crate::error::ResolveError;

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

/// The manifest pin for `record` matched by `reference`, keyed by its blake3: its size, hashes
/// and every known source.
pub fn pin(
    record: &ModelRecord,
    reference: &ModelReference,
) -> Result<(ModelHash, ModelEntry), ResolveError> {
    let mut sources: Vec<String> = record.sources.iter().map(|s| s.url.clone()).collect();
    if let Some(url) = &reference.url
        && !sources.contains(url)
    {
        sources.push(url.clone());
    }
    let invalid = |hash: &str, reason: String| ResolveError::InvalidIndexHash {
        hash: hash.to_owned(),
        reason,
    };
    let hash = ModelHash::Blake3(
        record
            .blake3
            .parse()
            .map_err(|e| invalid(&record.blake3, format!("{e}")))?,
    );
    let sha256 = match record.sha256.as_deref() {
        Some(text) => Some(text.parse().map_err(|e| invalid(text, format!("{e}")))?),
        None => None,
    };
    let entry = ModelEntry {
        name: Some(reference.relative_path.clone()),
        relative_path: Some(match &reference.folder {
            Some(folder) => format!("{folder}/{}", reference.relative_path),
            None => reference.relative_path.clone(),
        }),
        folder: reference.folder.clone(),
        criticality: Some(reference.criticality),
        size: Some(record.size),
        sha256,
        sources: sources.into_iter().map(|url| ModelSource { url }).collect(),
        ..ModelEntry::default()
    };
    Ok((hash, entry))
}
