//! Matching a workflow's model reference to a file in the model index, and the pin recorded for
//! a match.

use comfydock_environments::manifest::schema::{ModelEntry, ModelHash, ModelSource};
use comfydock_models::index::{Location, ModelRecord};
use comfydock_workflow::ModelReference;

use crate::error::ResolveError;

/// The matching chain, strongest first: declared hash, exact path, folder-aware path, file name,
/// file name ignoring case. Returns every indexed model matching at the strongest level that
/// matches anything (one per model, in index order) and how they matched; several means the
/// caller must choose.
pub fn find_models<'a>(
    records: &'a [ModelRecord],
    reference: &ModelReference,
) -> (Vec<&'a ModelRecord>, &'static str) {
    if let Some(hash) = &reference.hash {
        let hash = hash.to_ascii_lowercase();
        let found: Vec<&ModelRecord> = records
            .iter()
            .filter(|r| r.sha256.as_deref() == Some(hash.as_str()) || r.blake3 == hash)
            .collect();
        if !found.is_empty() {
            return (found, "matched by declared hash");
        }
    }
    let wanted = reference.relative_path.replace('\\', "/");
    let full = reference.folder.as_ref().map(|f| format!("{f}/{wanted}"));
    let file_name = wanted.rsplit('/').next().unwrap_or(&wanted).to_owned();
    let level = |how: &'static str, matches: &dyn Fn(&Location) -> bool| {
        let found: Vec<&ModelRecord> = records
            .iter()
            .filter(|r| r.locations.iter().any(matches))
            .collect();
        (!found.is_empty()).then_some((found, how))
    };
    let nested = format!("/{wanted}");
    full.as_ref()
        .and_then(|full| level("exact path", &|l| &l.relative_path == full))
        .or_else(|| {
            level("same folder and path", &|l| {
                l.folder.as_deref() == reference.folder.as_deref() && l.relative_path.ends_with(&nested)
            })
        })
        .or_else(|| level("same file name", &|l| l.file_name() == file_name))
        .or_else(|| {
            level("same file name (ignoring case)", &|l| {
                l.file_name().eq_ignore_ascii_case(&file_name)
            })
        })
        .unwrap_or((Vec::new(), "no match"))
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
