//! All stand-ins at once, with the environment that points comfydock at them.

use crate::comfyui_repo::ComfyUiRepo;
use crate::file_server::FileServer;
use crate::registry::RegistryServer;
use crate::wheel_index::WheelIndex;

/// A wheel index (default packages + torch backends), a registry (empty), a file server (empty,
/// used as Hugging Face and Civitai endpoint) and the ComfyUI stand-in repository.
pub struct Standins {
    /// PyPI and PyTorch indexes.
    pub index: WheelIndex,
    /// The ComfyUI Registry and Manager data files.
    pub registry: RegistryServer,
    /// Model downloads (`HF_ENDPOINT`, `COMFYDOCK_CIVITAI_URL`).
    pub files: FileServer,
    /// The ComfyUI git repository.
    pub comfyui: ComfyUiRepo,
}

impl Standins {
    /// Starts every stand-in.
    pub fn start() -> Self {
        Standins {
            index: WheelIndex::start(),
            registry: RegistryServer::start(),
            files: FileServer::start(),
            comfyui: ComfyUiRepo::create(),
        }
    }

    /// The variables that point comfydock (and the uv it runs) at the stand-ins.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("COMFYDOCK_COMFYUI_REPO", self.comfyui.url()),
            ("COMFYDOCK_REGISTRY_URL", self.registry.url()),
            ("COMFYDOCK_MANAGER_DATA_URL", self.registry.manager_data_url()),
            ("COMFYDOCK_TORCH_INDEX_URL", self.index.torch_index_url()),
            ("UV_INDEX_URL", self.index.simple_url()),
            ("HF_ENDPOINT", self.files.url()),
            ("COMFYDOCK_CIVITAI_URL", self.files.url()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::client::get;

    #[test]
    fn every_url_answers() {
        let standins = Standins::start();
        let env: std::collections::HashMap<String, String> = standins.env().into_iter().collect();
        assert_eq!(
            get(&format!("{}/tinynum/", env["UV_INDEX_URL"]), &[])
                .unwrap()
                .status,
            200
        );
        assert_eq!(
            get(&format!("{}/cpu/torch/", env["COMFYDOCK_TORCH_INDEX_URL"]), &[])
                .unwrap()
                .status,
            200
        );
        assert_eq!(
            get(&format!("{}/nodes", env["COMFYDOCK_REGISTRY_URL"]), &[])
                .unwrap()
                .json()["total"],
            0
        );
        assert_eq!(
            get(
                &format!("{}/extension-node-map.json", env["COMFYDOCK_MANAGER_DATA_URL"]),
                &[]
            )
            .unwrap()
            .status,
            200
        );
        assert!(env["COMFYDOCK_COMFYUI_REPO"].starts_with("file://"));
        assert!(standins.comfyui.path().join("main.py").is_file());
    }
}
