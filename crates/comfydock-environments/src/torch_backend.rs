//! PyTorch backends: which wheel index torch comes from.
//!
//! One lock covers several backends: each backend is a uv extra (`cpu`, `cu128`, ...) whose torch,
//! torchvision and torchaudio come from that backend's index, and `[tool.uv] conflicts` tells uv
//! the extras are mutually exclusive. A machine picks its backend when it syncs
//! (`uv sync --extra cu128`); the choice is stored per machine, outside git.

use std::fmt;
use std::str::FromStr;

use comfydock_foundation::Hinted;

/// The torch packages whose source is the backend index. Node requirements never change them.
pub const TORCH_PACKAGES: &[&str] = &["torch", "torchvision", "torchaudio"];

/// Backends every new environment's lock covers, besides the one chosen at create time.
pub const DEFAULT_LOCKED_BACKENDS: &[&str] = &["cpu", "cu128"];

/// A concrete PyTorch wheel backend: `cpu`, `cuXXX`, `rocmX.Y` or `xpu`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TorchBackend(String);

#[derive(Debug, thiserror::Error)]
#[error("Invalid torch backend `{0}`: expected auto, cpu, cuXXX (e.g. cu128), rocmX.Y (e.g. rocm6.3) or xpu")]
pub struct InvalidBackend(pub String);

impl Hinted for InvalidBackend {}

impl FromStr for TorchBackend {
    type Err = InvalidBackend;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = s == "cpu"
            || s == "xpu"
            || s.strip_prefix("cu")
                .is_some_and(|d| (2..=4).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()))
            || s.strip_prefix("rocm").is_some_and(|v| {
                let mut parts = v.split('.');
                parts.clone().count() == 2
                    && parts.all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
            });
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidBackend(s.to_owned()))
        }
    }
}

impl fmt::Display for TorchBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for TorchBackend {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for TorchBackend {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl TorchBackend {
    pub fn cpu() -> Self {
        Self("cpu".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The uv extra name for this backend (`rocm6.3` → `rocm6-3`; extras cannot hold dots).
    pub fn extra(&self) -> String {
        self.0.replace('.', "-")
    }

    /// The backend a uv extra stands for (`rocm6-3` → `rocm6.3`), if the extra is a backend's.
    pub fn from_extra(extra: &str) -> Option<Self> {
        let name = match extra.strip_prefix("rocm") {
            Some(version) => format!("rocm{}", version.replacen('-', ".", 1)),
            None => extra.to_owned(),
        };
        name.parse().ok()
    }

    /// The name of this backend's `[[tool.uv.index]]` entry.
    pub fn index_name(&self) -> String {
        format!("pytorch-{}", self.extra())
    }

    /// This backend's wheel index under `torch.index_url`.
    pub fn index_url(&self, base: &str) -> String {
        format!("{}/{}", base.trim_end_matches('/'), self.0)
    }
}

/// The backend to suggest adding for a GPU family the lock does not cover: a wheel index PyTorch
/// really publishes (`cuda` → `cu128`, `rocm` → `rocm6.4`, `xpu`).
pub fn suggested_for_family(family: &str) -> TorchBackend {
    let name = match family {
        "rocm" => "rocm6.4",
        "xpu" => "xpu",
        "cpu" => "cpu",
        _ => "cu128",
    };
    TorchBackend(name.into())
}

/// What `--torch-backend auto` saw and picked.
#[derive(Debug, Clone)]
pub struct Detection {
    pub backend: TorchBackend,
    pub reason: String,
}

/// Pick a backend for this machine: CUDA from the NVIDIA driver, ROCm from a ROCm install, else CPU.
pub fn detect() -> Detection {
    if let Some((major, minor)) = nvidia_driver_cuda_version() {
        // The newest wheel tag the driver supports, from the tags PyTorch publishes.
        let supported = [
            (13, 0, "cu130"),
            (12, 8, "cu128"),
            (12, 6, "cu126"),
            (12, 4, "cu124"),
            (11, 8, "cu118"),
        ];
        if let Some((_, _, tag)) = supported.iter().find(|(ma, mi, _)| (major, minor) >= (*ma, *mi)) {
            return Detection {
                backend: TorchBackend((*tag).into()),
                reason: format!("NVIDIA driver supports CUDA {major}.{minor}"),
            };
        }
    }
    if let Some(version) = rocm_version() {
        let short: Vec<&str> = version.split('.').take(2).collect();
        if short.len() == 2 {
            let backend = TorchBackend(format!("rocm{}", short.join(".")));
            return Detection {
                backend,
                reason: format!("ROCm {version} is installed"),
            };
        }
    }
    Detection {
        backend: TorchBackend::cpu(),
        reason: "no NVIDIA driver or ROCm found".into(),
    }
}

/// `CUDA Version: 12.8` from `nvidia-smi`, if a driver is present.
fn nvidia_driver_cuda_version() -> Option<(u32, u32)> {
    let out = std::process::Command::new("nvidia-smi").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rest = text.split("CUDA Version:").nth(1)?;
    let version = rest.split_whitespace().next()?;
    let (major, minor) = version.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn rocm_version() -> Option<String> {
    let text = fs_err::read_to_string("/opt/rocm/.info/version").ok()?;
    let version = text.trim().split('-').next()?.to_owned();
    (!version.is_empty()).then_some(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_backends() {
        for ok in ["cpu", "cu128", "cu118", "rocm6.3", "xpu"] {
            assert_eq!(ok.parse::<TorchBackend>().unwrap().as_str(), ok);
        }
        for bad in ["cuda", "cu", "rocm6", "rocm6.x", "gpu", ""] {
            assert!(bad.parse::<TorchBackend>().is_err(), "{bad}");
        }
        assert_eq!("rocm6.3".parse::<TorchBackend>().unwrap().extra(), "rocm6-3");
        for name in ["cpu", "cu128", "rocm6.3", "rocm6.10", "xpu"] {
            let backend: TorchBackend = name.parse().unwrap();
            assert_eq!(TorchBackend::from_extra(&backend.extra()), Some(backend));
        }
        assert_eq!(TorchBackend::from_extra("gpu"), None);
        assert_eq!(TorchBackend::from_extra("rocm6"), None);
    }
}
