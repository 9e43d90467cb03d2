//! The hardware a deployment targets and how models reach the container.
//!
//! The torch backend comes from the environment's lock (a uv extra per backend); the runtime
//! base image is pinned per backend. Torch wheels carry their own CUDA/ROCm user-space
//! libraries, so the CUDA base is NVIDIA's small `base` flavour (driver hooks only).

use serde::Serialize;

use super::DeployError;
use super::spec::DeploySpec;
use comfydock_environments::torch_backend::{TorchBackend, suggested_for_family};

/// The uv image the builder copies its `uv` binary from (same version comfydock installs).
pub const UV_IMAGE: &str = "ghcr.io/astral-sh/uv:0.13.9";
/// Builder and CPU runtime base.
pub const UBUNTU_IMAGE: &str = "ubuntu:24.04";

/// GPU family to build for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuKind {
    Cuda,
    Rocm,
    Cpu,
}

impl std::str::FromStr for GpuKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cuda" => Ok(Self::Cuda),
            "rocm" => Ok(Self::Rocm),
            "cpu" => Ok(Self::Cpu),
            other => Err(format!("unknown GPU kind `{other}` (expected cuda, rocm or cpu)")),
        }
    }
}

impl std::fmt::Display for GpuKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Cuda => "cuda",
            Self::Rocm => "rocm",
            Self::Cpu => "cpu",
        })
    }
}

/// How model files reach the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelMode {
    /// Verified files are copied into the image.
    Bake,
    /// A volume holds them; the entrypoint only checks they are there.
    Mount,
    /// The entrypoint downloads and verifies them into a volume at start.
    Fetch,
}

impl std::str::FromStr for ModelMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bake" => Ok(Self::Bake),
            "mount" => Ok(Self::Mount),
            "fetch" => Ok(Self::Fetch),
            other => Err(format!(
                "unknown model mode `{other}` (expected bake, mount or fetch)"
            )),
        }
    }
}

impl std::fmt::Display for ModelMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Bake => "bake",
            Self::Mount => "mount",
            Self::Fetch => "fetch",
        })
    }
}

/// A resolved target: the locked backend to sync and the images the build starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub gpu: GpuKind,
    pub backend: TorchBackend,
    pub runtime_image: String,
    /// Builder (and model-check) stage base; also the CPU runtime's.
    pub builder_image: String,
    /// The image the builder copies `/uv` from.
    pub uv_image: String,
    /// Python from the base image's packages (apt) instead of a uv-managed download: for
    /// builders that cannot download Python builds.
    pub system_python: bool,
}

impl Target {
    /// Build from `base` (a registry the user controls, or a local image) instead of the public
    /// Ubuntu image: the builder, and the runtime of CPU images.
    #[must_use]
    pub fn with_base_image(mut self, base: &str) -> Self {
        if self.runtime_image == self.builder_image {
            base.clone_into(&mut self.runtime_image);
        }
        base.clone_into(&mut self.builder_image);
        self
    }
}

impl Target {
    /// Pick the backend for `gpu` among those the lock covers ([`DeploySpec::backends`], read
    /// from `uv.lock`). `cuda` is `12.8` or `cu128`.
    pub fn resolve(spec: &DeploySpec, gpu: GpuKind, cuda: Option<&str>) -> Result<Self, DeployError> {
        let locked = &spec.backends;
        let not_locked = |wanted: String| DeployError::BackendNotLocked {
            env: spec.environment.clone(),
            backend: wanted,
            locked: locked.iter().map(ToString::to_string).collect(),
        };
        let backend = match gpu {
            GpuKind::Cpu => {
                let cpu = TorchBackend::cpu();
                if !locked.contains(&cpu) {
                    return Err(not_locked("cpu".into()));
                }
                cpu
            }
            GpuKind::Cuda => {
                if let Some(version) = cuda {
                    let tag =
                        cuda_tag(version).ok_or_else(|| DeployError::BadCudaVersion(version.to_owned()))?;
                    let backend: TorchBackend = tag
                        .parse()
                        .map_err(|_| DeployError::BadCudaVersion(version.to_owned()))?;
                    if !locked.contains(&backend) {
                        return Err(not_locked(tag));
                    }
                    backend
                } else {
                    newest(locked, "cu")
                        .ok_or_else(|| not_locked(suggested_for_family("cuda").to_string()))?
                }
            }
            GpuKind::Rocm => {
                newest(locked, "rocm").ok_or_else(|| not_locked(suggested_for_family("rocm").to_string()))?
            }
        };
        let runtime_image = runtime_image(&backend)?;
        Ok(Self {
            gpu,
            backend,
            runtime_image,
            builder_image: UBUNTU_IMAGE.to_owned(),
            uv_image: UV_IMAGE.to_owned(),
            system_python: false,
        })
    }
}

/// `12.8` / `12.8.1` / `cu128` → `cu128`.
fn cuda_tag(version: &str) -> Option<String> {
    if version.starts_with("cu") {
        return Some(version.to_owned());
    }
    let mut parts = version.split('.');
    let major = parts.next()?;
    let minor = parts.next()?;
    (major.chars().all(|c| c.is_ascii_digit())
        && minor.chars().all(|c| c.is_ascii_digit())
        && !major.is_empty()
        && !minor.is_empty())
    .then(|| format!("cu{major}{minor}"))
}

/// The newest locked backend with this prefix (`cu130` > `cu128`; `rocm6.4` > `rocm6.3`).
fn newest(locked: &[TorchBackend], prefix: &str) -> Option<TorchBackend> {
    let key = |b: &TorchBackend| -> Vec<u32> {
        b.as_str()
            .trim_start_matches(prefix)
            .split('.')
            .filter_map(|p| p.parse().ok())
            .collect()
    };
    locked
        .iter()
        .filter(|b| {
            b.as_str().starts_with(prefix)
                && b.as_str()[prefix.len()..].starts_with(|c: char| c.is_ascii_digit())
        })
        .max_by(|a, b| {
            key(a)
                .cmp(&key(b))
                .then_with(|| a.as_str().len().cmp(&b.as_str().len()))
        })
        .cloned()
}

/// The pinned runtime base for a backend.
fn runtime_image(backend: &TorchBackend) -> Result<String, DeployError> {
    let b = backend.as_str();
    if b == "cpu" {
        return Ok(UBUNTU_IMAGE.into());
    }
    if let Some(rocm) = b.strip_prefix("rocm") {
        return Ok(format!("rocm/dev-ubuntu-24.04:{rocm}"));
    }
    let cuda = match b {
        "cu118" => "11.8.0-base-ubuntu22.04",
        "cu121" => "12.1.1-base-ubuntu22.04",
        "cu124" => "12.4.1-base-ubuntu22.04",
        "cu126" => "12.6.3-base-ubuntu24.04",
        "cu128" => "12.8.1-base-ubuntu24.04",
        "cu129" => "12.9.1-base-ubuntu24.04",
        "cu130" => "13.0.0-base-ubuntu24.04",
        _ => {
            return Err(DeployError::NoBaseImage {
                backend: backend.to_string(),
            });
        }
    };
    Ok(format!("nvidia/cuda:{cuda}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends(list: &[&str]) -> Vec<TorchBackend> {
        list.iter().map(|b| b.parse().unwrap()).collect()
    }

    #[test]
    fn picks_the_newest_locked_backend() {
        let locked = backends(&["cpu", "cu126", "cu128", "rocm6.3", "rocm6.10"]);
        assert_eq!(newest(&locked, "cu").unwrap().as_str(), "cu128");
        assert_eq!(newest(&locked, "rocm").unwrap().as_str(), "rocm6.10");
        assert_eq!(cuda_tag("12.8").as_deref(), Some("cu128"));
        assert_eq!(cuda_tag("12.8.1").as_deref(), Some("cu128"));
        assert_eq!(cuda_tag("twelve"), None);
        assert_eq!(
            runtime_image(&"cu128".parse().unwrap()).unwrap(),
            "nvidia/cuda:12.8.1-base-ubuntu24.04"
        );
        assert!(runtime_image(&"xpu".parse().unwrap()).is_err());
    }
}
