//! A fixture template monorepo in a temporary git repository, modelled on
//! Comfy-Org/workflow_templates: a meta package pinning `core`, `media_api` and `media_image`,
//! templates with thumbnails, an index, bundles and sample inputs. Every package builds with
//! uv's own build backend (`uv_build`), which `uv build` runs in-process without downloading
//! anything, so the fixture builds offline.
#![allow(dead_code)]

pub mod index_server;
pub mod workflow_templates;

use std::path::PathBuf;
use std::process::Command;

/// Bytes standing in for a thumbnail.
pub const THUMB: &[u8] = b"RIFF\x10\x00\x00\x00WEBPVP8 fake thumbnail";

/// A minimal UI-format workflow with a LoadImage node reading `input`.
pub fn workflow(input: &str) -> String {
    format!(
        r#"{{"last_node_id": 2, "last_link_id": 1,
  "nodes": [
    {{"id": 1, "type": "LoadImage", "pos": [0, 0], "size": [300, 300], "flags": {{}}, "order": 0, "mode": 0,
      "inputs": [], "outputs": [{{"name": "IMAGE", "type": "IMAGE", "links": [1]}}],
      "properties": {{"Node name for S&R": "LoadImage"}}, "widgets_values": ["{input}", "image"]}},
    {{"id": 2, "type": "PreviewImage", "pos": [400, 0], "size": [300, 300], "flags": {{}}, "order": 1, "mode": 0,
      "inputs": [{{"name": "images", "type": "IMAGE", "link": 1}}], "outputs": [],
      "properties": {{"Node name for S&R": "PreviewImage"}}, "widgets_values": []}}
  ],
  "links": [[1, 1, 0, 2, 0, "IMAGE"]],
  "groups": [], "config": {{}}, "extra": {{}}, "version": 0.4}}"#
    )
}

/// A minimal UI-format workflow without file inputs (an API-node template).
pub fn workflow_without_inputs() -> String {
    r#"{"last_node_id": 1, "last_link_id": 0,
  "nodes": [
    {"id": 1, "type": "EmptyLatentImage", "pos": [0, 0], "size": [300, 100], "flags": {}, "order": 0, "mode": 0,
     "inputs": [], "outputs": [{"name": "LATENT", "type": "LATENT", "links": null}],
     "properties": {"Node name for S&R": "EmptyLatentImage"}, "widgets_values": [512, 512, 1]}
  ],
  "links": [], "groups": [], "config": {}, "extra": {}, "version": 0.4}"#
        .to_owned()
}

pub fn package_pyproject(name: &str, version: &str) -> String {
    format!(
        r#"[project]
name = "{name}"
version = "{version}"
description = "Assets of the {name} bundle"
requires-python = ">=3.8"

[build-system]
requires = ["uv_build>=0.9,<1"]
build-backend = "uv_build"
"#
    )
}

pub const META_PYPROJECT: &str = r#"# The package users install: it pins every asset package exactly.
[project]
name = "tmpl-meta"
version = "1.0.0"
description = "Workflow templates"
requires-python = ">=3.8"
dependencies = [
    "tmpl-core==0.1.0",
    "tmpl-media-api==0.1.0",   # API templates
    "tmpl-media-image==0.1.0",
]

[project.optional-dependencies]
image = ["tmpl-media-image==0.1.0"]

[build-system]
requires = ["uv_build>=0.9,<1"]
build-backend = "uv_build"
"#;

pub const INDEX_JSON: &str = r#"[
  {
    "moduleName": "default",
    "category": "Foundation",
    "title": "Basics",
    "type": "image",
    "templates": [
      {"name": "flux_schnell", "title": "Flux Schnell", "mediaType": "image", "mediaSubtype": "webp",
       "description": "Fast images.",
       "io": {"inputs": [{"nodeId": 1, "nodeType": "LoadImage", "file": "cat.png", "mediaType": "image"}]}},
      {"name": "api_flux", "title": "Flux via API", "mediaType": "image", "mediaSubtype": "webp",
       "description": "Images through an API node."}
    ]
  }
]
"#;

pub const BUNDLES_JSON: &str = r#"{
  "media-api": ["api_flux"],
  "media-image": ["flux_schnell"]
}
"#;

/// A fixture monorepo with one commit.
pub struct Fixture {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
}

impl Fixture {
    /// Write the monorepo and commit it ("Initial templates").
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("create temp dir");
        let root = dir.path().join("workflow_templates");
        let fixture = Self { _dir: dir, root };
        fixture.write("pyproject.toml", META_PYPROJECT);
        fixture.write("src/tmpl_meta/__init__.py", "");
        for (dir, name) in [
            ("core", "tmpl-core"),
            ("media_api", "tmpl-media-api"),
            ("media_image", "tmpl-media-image"),
        ] {
            let module = name.replace('-', "_");
            fixture.write(
                &format!("packages/{dir}/pyproject.toml"),
                package_pyproject(name, "0.1.0"),
            );
            fixture.write(&format!("packages/{dir}/src/{module}/__init__.py"), "");
        }
        fixture.write(
            "packages/media_api/src/tmpl_media_api/templates/api_flux-1.webp",
            THUMB,
        );
        fixture.write(
            "packages/media_image/src/tmpl_media_image/templates/flux_schnell-1.webp",
            THUMB,
        );
        fixture.write(
            "packages/media_image/src/tmpl_media_image/input/cat.png",
            b"\x89PNG cat",
        );
        fixture.write("templates/index.json", INDEX_JSON);
        fixture.write("templates/flux_schnell.json", workflow("cat.png"));
        fixture.write("templates/flux_schnell-1.webp", THUMB);
        fixture.write("templates/api_flux.json", workflow_without_inputs());
        fixture.write("templates/api_flux-1.webp", THUMB);
        fixture.write("input/cat.png", b"\x89PNG cat");
        fixture.write("bundles.json", BUNDLES_JSON);
        fixture.write(".gitignore", "dist/\n");
        fixture.init_git();
        fixture.commit("Initial templates");
        fixture
    }

    /// A fixture at `root` (inside `dir`, which it keeps alive) with nothing written yet.
    pub fn empty(dir: tempfile::TempDir, root: PathBuf) -> Self {
        Self { _dir: dir, root }
    }

    /// `git init` with a committer identity and no signing.
    pub fn init_git(&self) {
        self.git(&["init", "--quiet", "--initial-branch=main"]);
        for (key, value) in [
            ("user.name", "Fixture"),
            ("user.email", "fixture@example.invalid"),
            ("commit.gpgsign", "false"),
            ("tag.gpgsign", "false"),
        ] {
            self.git(&["config", key, value]);
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let path = self.path(rel);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, contents).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        fs_err::read_to_string(self.path(rel)).unwrap()
    }

    /// Replace `from` by `to` in a file; panics when `from` is absent.
    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let text = self.read(rel);
        assert!(text.contains(from), "{rel} does not contain {from:?}");
        self.write(rel, text.replacen(from, to, 1));
    }

    pub fn git(&self, args: &[&str]) -> String {
        run(Command::new("git").args(args).current_dir(&self.root))
    }

    pub fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "--quiet", "-m", message]);
    }

    pub fn tag(&self, tag: &str) {
        self.git(&["tag", "-a", tag, "-m", tag]);
    }

    /// Add the nano banana template to templates/, the index and the media-api bundle —
    /// without touching the media_api package.
    pub fn add_nano_banana_template(&self) {
        self.write("templates/nano_banana.json", workflow("banana.png"));
        self.write("templates/nano_banana-1.webp", THUMB);
        self.write("input/banana.png", b"\x89PNG banana");
        self.edit(
            "templates/index.json",
            r#"      {"name": "api_flux","#,
            r#"      {"name": "nano_banana", "title": "Nano Banana", "mediaType": "image", "mediaSubtype": "webp",
       "description": "Edit images with Nano Banana.",
       "io": {"inputs": [{"nodeId": 1, "nodeType": "LoadImage", "file": "banana.png", "mediaType": "image"}]}},
      {"name": "api_flux","#,
        );
        self.edit(
            "bundles.json",
            r#"["api_flux"]"#,
            r#"["api_flux", "nano_banana"]"#,
        );
    }

    /// Add nano banana's assets to the media_api package.
    pub fn add_nano_banana_assets(&self) {
        self.write(
            "packages/media_api/src/tmpl_media_api/templates/nano_banana-1.webp",
            THUMB,
        );
        self.write(
            "packages/media_api/src/tmpl_media_api/input/banana.png",
            b"\x89PNG banana",
        );
    }
}

/// Run a command, panic with its output when it fails, return stdout.
pub fn run(cmd: &mut Command) -> String {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("failed to start {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
