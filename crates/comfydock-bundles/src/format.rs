//! `manifest.json`: what a bundle is, where it came from, and the sha256 of every other entry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The bundle format this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// Name of the manifest entry.
pub const MANIFEST_NAME: &str = "manifest.json";

/// The contents of `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleManifest {
    pub format_version: u32,
    pub comfydock_version: String,
    /// RFC 3339 UTC time of the `.cec` commit exported (not the clock: exports are reproducible).
    pub created_at: String,
    pub environment_name: String,
    /// `os-arch` of the exporting machine, e.g. `linux-x86_64`.
    pub platform: String,
    /// Python `major.minor`.
    pub python: String,
    pub comfyui: ComfyUiRecord,
    /// The backend the exporting machine synced with, and the backends the lock covers.
    pub torch_backend: String,
    pub torch_backends: Vec<String>,
    /// The `.cec` commit exported.
    pub cec_commit: String,
    pub counts: Counts,
    /// Models the environment needs, sorted by target.
    pub models: Vec<ModelRef>,
    /// Every other entry of the bundle: path → digest.
    pub files: BTreeMap<String, FileDigest>,
}

/// The ComfyUI an environment runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComfyUiRecord {
    /// What was asked for (a tag, branch or commit).
    pub reference: String,
    pub commit: String,
}

/// Summary counts for the import summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub workflows: usize,
    pub registry_nodes: usize,
    pub git_nodes: usize,
    pub dev_nodes: usize,
    pub models: usize,
}

impl Counts {
    pub fn nodes(&self) -> usize {
        self.registry_nodes + self.git_nodes + self.dev_nodes
    }
}

/// One model, by content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRef {
    pub blake3: Option<String>,
    pub sha256: Option<String>,
    pub size: Option<u64>,
    /// Path under the models folder, e.g. `checkpoints/sd15.safetensors`.
    pub target: String,
    pub sources: Vec<String>,
    /// `required` (default), `flexible` or `optional`.
    pub criticality: String,
}

impl ModelRef {
    pub fn is_required(&self) -> bool {
        self.criticality == "required"
    }

    /// The file name of the target (`sd15.safetensors`).
    pub fn file_name(&self) -> &str {
        self.target.rsplit('/').next().unwrap_or(&self.target)
    }
}

/// Size and sha256 of one bundle entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    pub sha256: String,
    pub size: u64,
}

/// `os-arch` of this machine.
pub fn current_platform() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

/// The version of this comfydock build.
pub fn current_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Whether `other` is a newer `x.y.z` than `mine` (unparsable parts count as 0).
pub fn is_newer_version(other: &str, mine: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> {
        v.split(['.', '-', '+'])
            .take(3)
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    parse(other) > parse(mine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_comparison() {
        assert!(is_newer_version("0.2.0", "0.1.9"));
        assert!(is_newer_version("1.0.0", "0.9.0"));
        assert!(!is_newer_version("0.1.0", "0.1.0"));
        assert!(!is_newer_version("0.0.9", "0.1.0"));
    }
}
