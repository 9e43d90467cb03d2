//! Property tests for the manifest reader (issue 18): `pyproject.toml` text from a bundle or a
//! pulled `.cec` — random, or a full manifest with random edits and hostile values spliced in —
//! parses to a value or a typed error, and every reader of a parsed manifest answers without
//! panicking.
//!
//! `PROPTEST_CASES=20000 cargo nextest run -p comfydock-environments -E 'binary(manifest_properties)'`
//! for a longer run; the default keeps CI short.

use std::path::Path;

use comfydock_environments::manifest::{Manifest, node_entry};
use comfydock_environments::workflow_tracking;
use proptest::prelude::*;

/// A manifest using every section comfydock reads.
const FULL: &str = r#"[project]
name = "comfydock-env-e"
version = "0.1.0"
requires-python = ">=3.12"
dependencies = ["numpy>=1.26", "pillow"]

[dependency-groups]
comfyui = ["torchsde", "einops"]
"node/my-node" = ["node-dep-a<1.1"]

[tool.uv]
constraint-dependencies = ["protobuf<5"]

[tool.uv.sources]
torch = [{ index = "pytorch-cpu", extra = "cpu" }]
evil = { path = "../ComfyUI/custom_nodes/evil" }

[[tool.uv.index]]
name = "pytorch-cpu"
url = "http://127.0.0.1:9/whl/cpu"
explicit = true

[project.optional-dependencies]
cpu = ["torch==2.5.1"]

[tool.comfydock]
schema_version = 2
python = "3.12"
torch_backends = ["cpu", "cu128"]

[tool.comfydock.comfyui]
ref = "v0.3.40"
commit = "0123456789abcdef0123456789abcdef01234567"

[tool.comfydock.nodes.my-node]
source = "registry"
name = "My Node"
version = "1.0.0"
url = "http://127.0.0.1:9/my-node.zip"
sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

[tool.comfydock.nodes.foo]
source = "git"
name = "ComfyUI-Foo"
url = "https://example.invalid/foo.git"
ref = "v1.0.0"
commit = "0123456789abcdef0123456789abcdef01234567"

[tool.comfydock.nodes.dev]
source = "dev"
name = "MyDevNode"
path = "custom_nodes/MyDevNode"

[tool.comfydock.workflows.txt2img]
tracked = true

[tool.comfydock.workflows."portraits/flux"]
tracked = true
nodes = ["my-node"]

[tool.comfydock.models.sd15]
sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
size = 1000
target = "checkpoints/sd15.safetensors"
sources = ["http://127.0.0.1:9/sd15.safetensors"]
criticality = "required"

[tool.comfydock.node_mappings]
FooNode = "foo"
Unused = false
"#;

/// Fragments a hostile or careless writer might leave in the text.
const FRAGMENTS: &[&str] = &[
    "\n[tool.comfydock.nodes.\"../../../../x\"]\nsource = \"registry\"\nversion = \"../x\"\n",
    "\n[tool.comfydock.nodes.\"\"]\n",
    "\n[tool.comfydock]\nschema_version = 99\n",
    "\n[tool.comfydock]\nschema_version = -9223372036854775808\n",
    "\n[tool.comfydock.comfyui]\ncommit = \"ééééééééééééééééééé\"\n",
    "\n[tool.comfydock.workflows.\"C:\\\\x\"]\ntracked = \"yes\"\n",
    "\n[tool.comfydock.models.m]\nsize = -1\nsources = [1, 2]\n",
    "\ntorch_backends = [\"\", \"cu\", \"rocm9999999999999999999\"]\n",
    "\ndependencies = [\"\", \"x[\", \"; python_version\", \"@ file:///etc\"]\n",
    "\n[tool]\ncomfydock = 1\n",
    "\n[[tool.comfydock.nodes]]\n",
    "\nname = 'x'\nname = 'y'\n",
    "\u{0}\u{feff}é\r\n",
    "[[",
    "\"\"\"",
    "= ",
];

/// One edit of the text: delete, insert or replace a char range, or splice in a fragment.
#[derive(Debug, Clone)]
enum Edit {
    Delete(prop::sample::Index, usize),
    Insert(prop::sample::Index, String),
    Fragment(prop::sample::Index, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1..40usize).prop_map(|(at, n)| Edit::Delete(at, n)),
        (
            any::<prop::sample::Index>(),
            "[\\[\\]=\"'.{},\n a-z0-9é\u{0}-\u{1f}]{1,12}"
        )
            .prop_map(|(at, s)| Edit::Insert(at, s)),
        (any::<prop::sample::Index>(), 0..FRAGMENTS.len()).prop_map(|(at, i)| Edit::Fragment(at, i)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for edit in edits {
        // A position in 0..=len (an insertion may go at the end).
        let at = |f: &prop::sample::Index, len: usize| f.index(len + 1);
        match edit {
            Edit::Delete(f, n) => {
                let start = at(f, chars.len());
                let end = (start + n).min(chars.len());
                chars.drain(start..end);
            }
            Edit::Insert(f, s) => {
                let start = at(f, chars.len());
                chars.splice(start..start, s.chars());
            }
            Edit::Fragment(f, i) => {
                let start = at(f, chars.len());
                chars.splice(start..start, FRAGMENTS[*i].chars());
            }
        }
    }
    chars.into_iter().collect()
}

/// Parses `text` and, when it parses, asks every reader a bundle import or a command uses.
fn read_everything(text: &str) {
    let Ok(manifest) = Manifest::parse(Path::new("pyproject.toml"), text) else {
        return;
    };
    let _ = manifest.tool();
    let _ = manifest.schema_version();
    let _ = manifest.layout();
    let _ = manifest.comfyui();
    let _ = manifest.python();
    let _ = manifest.torch_backends();
    let _ = manifest.dependencies();
    let _ = manifest.backend_extras();
    for backend in manifest.torch_backends() {
        let _ = manifest.covers_backend(&backend);
        let _ = manifest.backend_index_url(&backend);
    }
    let _ = manifest.dependency_groups();
    let _ = manifest.constraints();
    let _ = manifest.project_name();
    let _ = manifest.nodes();
    let _ = node_entry::read_all(&manifest);
    let _ = node_entry::unsafe_entries(&manifest);
    let _ = workflow_tracking::unsafe_tracked(&manifest);
    let _ = manifest.render();
}

#[test]
fn the_full_manifest_parses() {
    let manifest = Manifest::parse(Path::new("pyproject.toml"), FULL).unwrap();
    assert_eq!(node_entry::read_all(&manifest).len(), 3);
    read_everything(FULL);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: ProptestConfig::default().cases.max(1000), ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,400}") {
        read_everything(&text);
    }

    #[test]
    fn edited_manifests_never_panic(edits in proptest::collection::vec(edit(), 1..6)) {
        read_everything(&apply(FULL, &edits));
    }
}
