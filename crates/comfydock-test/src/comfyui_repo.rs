//! A git repository standing in for ComfyUI, built at test time with the real git.
//!
//! History (on `master`, one commit per step, fixed dates so ids are stable):
//!
//! | tag | `comfyui_version` | requirements (from the default [`crate::wheel_index`] set) | nodes added |
//! |---|---|---|---|
//! | `v0.3.39` | 0.3.39 | `comfy-tiny-a==1.0.0`, `tinynum<2`, `torch` | core nodes, `comfy_extras/nodes_upscale_model.py` |
//! | `v0.3.40` | 0.3.40 | `comfy-tiny-a>=1.0,<1.1`, `tinynum<2`, `tinyyaml`, `torch`, `torchvision`, `torchaudio`, `tinysde` | `comfy_extras/nodes_images.py` |
//! | `v0.3.41` | 0.3.41 | `comfy-tiny-a>=1.1`, `comfy-tiny-b>=2`, `tinynum>=2`, `tinyyaml`, torch family, `tinysde` | `comfy_extras/nodes_stitch.py` (`ImageStitch`) |
//! | (`master`) | 0.3.41 | as v0.3.41 plus `tinyimg` | — |
//!
//! `main.py` is a pure-stdlib server answering `/system_stats`, `/object_info` and more (see the
//! docstring of `fixtures/comfyui/main.py`); it imports every package its `requirements.txt` names,
//! so it only starts in a correctly provisioned environment (or with `COMFYUI_STANDIN_SKIP_IMPORTS=1`).
//! Like the real one it rejects a `--user-directory` that does not exist (argparse, exit code 2).
//!
//! Clone it from [`ComfyUiRepo::url`] (`file://`), or over HTTP to count fetches:
//! `GitHttpServer::start().serve("comfyanonymous/ComfyUI", repo.path())` (see [`crate::git_server`]).

use std::path::{Path, PathBuf};

use crate::git::{commit_all, git};

/// Release tags in history order.
pub const RELEASE_TAGS: [&str; 3] = ["v0.3.39", "v0.3.40", "v0.3.41"];
/// The newest release tag.
pub const LATEST_TAG: &str = "v0.3.41";

/// Environment variable making the stand-in `main.py` exit at once with the given code.
pub const EXIT_CODE_ENV: &str = "COMFYUI_STANDIN_EXIT_CODE";
/// Environment variable making the stand-in sleep this many seconds before listening.
pub const STARTUP_DELAY_ENV: &str = "COMFYUI_STANDIN_STARTUP_DELAY";
/// Environment variable (`1`) making the stand-in skip importing its requirements.
pub const SKIP_IMPORTS_ENV: &str = "COMFYUI_STANDIN_SKIP_IMPORTS";
/// Environment variable naming modules (comma-separated) the stand-in imports at startup without
/// declaring them, as real ComfyUI v0.3.77 imports `requests`: a missing one ends it with
/// Python's own `ModuleNotFoundError` traceback and exit code 1.
pub const IMPORT_ENV: &str = "COMFYUI_STANDIN_IMPORT";
/// Environment variable: on SIGTERM/SIGINT the stand-in's main thread exits at once (a zombie
/// thread-group leader) while another thread keeps the port bound this many seconds longer.
pub const SHUTDOWN_DELAY_ENV: &str = "COMFYUI_STANDIN_SHUTDOWN_DELAY";

const MAIN_PY: &str = include_str!("../fixtures/comfyui/main.py");
const NODES_PY: &str = include_str!("../fixtures/comfyui/nodes.py");
const FOLDER_PATHS_PY: &str = include_str!("../fixtures/comfyui/folder_paths.py");
const NODES_UPSCALE_PY: &str = include_str!("../fixtures/comfyui/comfy_extras/nodes_upscale_model.py");
const NODES_IMAGES_PY: &str = include_str!("../fixtures/comfyui/comfy_extras/nodes_images.py");
const NODES_STITCH_PY: &str = include_str!("../fixtures/comfyui/comfy_extras/nodes_stitch.py");

/// ComfyUI's `.gitignore` essentials (user data and the venv stay out of the repo).
const GITIGNORE: &str = "__pycache__/\n*.py[cod]\n/output/\n/input/\n!/input/example.png\n/models/\n/temp/\n\
/custom_nodes/\n!custom_nodes/example_node.py.example\nextra_model_paths.yaml\n/.vs\n.idea/\nvenv/\n.venv/\n/user/\n";

const EXTRA_MODEL_PATHS_EXAMPLE: &str = "#Rename this to extra_model_paths.yaml and ComfyUI will load it\n\n\
#config for a1111 ui\n#all you have to do is change the base_path to where yours is installed\na111:\n    \
base_path: path/to/stable-diffusion-webui/\n\n    checkpoints: models/Stable-diffusion\n    configs: models/Stable-diffusion\n    \
vae: models/VAE\n    loras: |\n         models/Lora\n         models/LyCORIS\n    upscale_models: |\n                  \
models/ESRGAN\n                  models/RealESRGAN\n                  models/SwinIR\n    embeddings: embeddings\n    \
hypernetworks: models/hypernetworks\n    controlnet: models/ControlNet\n";

const EXAMPLE_NODE: &str = "class Example:\n    @classmethod\n    def INPUT_TYPES(s):\n        \
return {\"required\": {\"image\": (\"IMAGE\",)}}\n\n    RETURN_TYPES = (\"IMAGE\",)\n    FUNCTION = \"test\"\n    \
CATEGORY = \"Example\"\n\n\nNODE_CLASS_MAPPINGS = {\"Example\": Example}\n";

/// The `requirements.txt` of a release tag (or `master`).
pub fn requirements_for(rev: &str) -> &'static str {
    match rev {
        "v0.3.39" => "comfy-tiny-a==1.0.0\ntinynum<2\ntorch\n",
        "v0.3.40" => "comfy-tiny-a>=1.0,<1.1\ntinynum<2\ntinyyaml\ntorch\ntorchvision\ntorchaudio\ntinysde\n",
        "v0.3.41" => {
            "comfy-tiny-a>=1.1\ncomfy-tiny-b>=2\ntinynum>=2\ntinyyaml\ntorch\ntorchvision\ntorchaudio\ntinysde\n"
        }
        "master" => {
            "comfy-tiny-a>=1.1\ncomfy-tiny-b>=2\ntinynum>=2\ntinyyaml\ntinyimg\ntorch\ntorchvision\ntorchaudio\ntinysde\n"
        }
        other => panic!("the ComfyUI stand-in has no release {other}"),
    }
}

/// The stand-in ComfyUI repository; owns its temporary directory unless built with
/// [`ComfyUiRepo::create_in`].
pub struct ComfyUiRepo {
    path: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl ComfyUiRepo {
    /// Builds the repository in a fresh temporary directory (removed on drop).
    pub fn create() -> Self {
        let temp = tempfile::Builder::new()
            .prefix("comfyui-standin")
            .tempdir()
            .expect("create a temp dir");
        let path = temp.path().join("ComfyUI");
        ComfyUiRepo {
            _temp: Some(temp),
            ..Self::create_in(&path)
        }
    }

    /// Builds the repository at `path` (created; must not exist or be empty).
    pub fn create_in(path: &Path) -> Self {
        fs_err::create_dir_all(path).expect("create the ComfyUI stand-in directory");
        git(path, &["init", "-q", "-b", "master"]);
        let repo = ComfyUiRepo {
            path: path.to_owned(),
            _temp: None,
        };
        repo.write("main.py", MAIN_PY);
        repo.write("nodes.py", NODES_PY);
        repo.write("folder_paths.py", FOLDER_PATHS_PY);
        repo.write("comfy_extras/nodes_upscale_model.py", NODES_UPSCALE_PY);
        repo.write(".gitignore", GITIGNORE);
        repo.write("extra_model_paths.yaml.example", EXTRA_MODEL_PATHS_EXAMPLE);
        repo.write("custom_nodes/example_node.py.example", EXAMPLE_NODE);
        repo.write("models/checkpoints/put_checkpoints_here", "");
        repo.write("models/loras/put_loras_here", "");
        repo.write("README.md", "# ComfyUI (comfydock test stand-in)\n");
        // Tracked although .gitignore excludes their folders, as in the real repository.
        git(path, &["add", "-f", "models", "custom_nodes"]);
        for tag in RELEASE_TAGS {
            match tag {
                "v0.3.40" => repo.write("comfy_extras/nodes_images.py", NODES_IMAGES_PY),
                "v0.3.41" => repo.write("comfy_extras/nodes_stitch.py", NODES_STITCH_PY),
                _ => {}
            }
            repo.release_commit(tag, requirements_for(tag));
        }
        repo.write("requirements.txt", requirements_for("master"));
        commit_all(path, "Add tinyimg requirement (unreleased work on master)");
        repo
    }

    /// Adds a new release on `master`: writes `comfyui_version.py` and `requirements.txt`, commits
    /// and tags `tag` (e.g. `v0.3.42`). Returns the commit id.
    pub fn add_release(&self, tag: &str, requirements: &str) -> String {
        self.release_commit(tag, requirements)
    }

    /// Writes (or overwrites) a file on `master` and commits it; returns the commit id.
    pub fn commit_file(&self, relative: &str, contents: &str, message: &str) -> String {
        self.write(relative, contents);
        commit_all(&self.path, message)
    }

    /// The working tree / repository path (a valid `git clone` source).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `file://` URL of the repository (for `comfyui.repo` / `COMFYDOCK_COMFYUI_REPO`).
    pub fn url(&self) -> String {
        format!("file://{}", self.path.display())
    }

    /// The full commit id a revision (tag, branch, sha) points at.
    pub fn commit(&self, rev: &str) -> String {
        git(&self.path, &["rev-parse", &format!("{rev}^{{commit}}")])
    }

    /// All tags, sorted by version.
    pub fn tags(&self) -> Vec<String> {
        git(&self.path, &["tag", "--list", "--sort=version:refname"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn release_commit(&self, tag: &str, requirements: &str) -> String {
        let version = tag.trim_start_matches('v');
        self.write(
            "comfyui_version.py",
            &format!(
                "# This file is automatically generated by the build process when version is\n\
                 # updated in pyproject.toml.\n__version__ = \"{version}\"\n"
            ),
        );
        self.write("requirements.txt", requirements);
        self.write(
            "pyproject.toml",
            &format!(
                "[project]\nname = \"ComfyUI\"\nversion = \"{version}\"\nreadme = \"README.md\"\nrequires-python = \">=3.9\"\n"
            ),
        );
        let sha = commit_all(&self.path, &format!("ComfyUI version {version}"));
        git(&self.path, &["tag", tag]);
        sha
    }

    fn write(&self, relative: &str, contents: &str) {
        let path = self.path.join(relative);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent).expect("create a directory in the ComfyUI stand-in");
        }
        fs_err::write(&path, contents).expect("write a file in the ComfyUI stand-in");
    }
}
