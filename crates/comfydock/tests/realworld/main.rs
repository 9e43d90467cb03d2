//! The real-world tier: real ComfyUI releases (from `../shared/realworld`), every Python package from
//! PyPI, real torch wheels, real custom node packs — driven through the `comfydock` binary the way a
//! user would. Run it with `cargo nextest run --profile realworld` (`.ci/run` runs it after the main
//! suite). One scenario, in order, because each step builds on the last (and the torch index listens
//! on one fixed port).

// The tier logs each command's duration to stderr: its time budget is part of what it checks.
#![allow(clippy::print_stderr)]

mod comfyui_contract;
mod support;

use comfydock_test::real_torch_index::RealTorchIndex;
use comfydock_test::realworld;
use serde_json::json;

use support::{ComfyUi, Serve, Tier, port_is_free};

/// Node classes of the two real packs that load on ComfyUI v0.3.77.
const KJNODES_CLASS: &str = "INTConstant";
const CUSTOM_SCRIPTS_CLASS: &str = "ShowText|pysssss";

#[test]
fn real_comfyui_from_create_to_import() {
    let cache = realworld::cache_dir();
    let torch = RealTorchIndex::start(&cache);
    let tier = Tier::new(&torch, "first");

    // 1. Create on v0.3.75, add the package ComfyUI imports without declaring, update to v0.3.77.
    tier.ok(&[
        "create",
        "main",
        "--comfyui",
        "v0.3.75",
        "--torch-backend",
        "cpu",
        "--use",
    ]);
    let torch_version = tier.python("main", "import torch; print(torch.__version__)");
    assert!(
        torch_version.starts_with("2.9.1"),
        "real torch in the venv: {torch_version}"
    );
    let torch_locked =
        support::locked_packages(&tier.env_dir("main"), &["torch", "torchvision", "torchaudio"]);
    tier.ok(&["py", "add", "requests"]);
    tier.python("main", "import requests");
    tier.ok(&["comfyui", "update", "v0.3.77"]);
    let manifest = fs_err::read_to_string(tier.env_dir("main").join(".cec/pyproject.toml")).unwrap();
    assert!(
        support::user_dependencies(&manifest)
            .iter()
            .any(|d| d.starts_with("requests")),
        "`comfyui update` keeps the user's package:\n{manifest}"
    );
    tier.python("main", "import requests");
    assert!(
        tier.env_dir("main").join("ComfyUI/user").is_dir(),
        "create makes ComfyUI's user directory"
    );

    // 2. Run on the CPU; stop waits for the process and the port; run again at once.
    let comfyui = ComfyUi::start(&tier, "main");
    let stats = comfyui.get_json("/system_stats");
    assert_eq!(stats["system"]["comfyui_version"], "0.3.77", "{stats}");
    let object_info = comfyui.get_json("/object_info");
    let classes = object_info.as_object().expect("object_info is an object").len();
    assert!(classes > 400, "real ComfyUI lists {classes} node classes");
    comfyui_contract::assert_builtin_widgets_match(&object_info);
    let port = comfyui.port;
    comfyui.stop();
    assert!(port_is_free(port), "`stop` returns only once the port is free");
    let comfyui = ComfyUi::start_on(&tier, "main", port);

    // 3. A workflow saved in ComfyUI is tracked, committed and valid against the live server;
    //    with SaveImage's input unconnected it is invalid, as real ComfyUI says.
    let workflows = tier.env_dir("main").join("ComfyUI/user/default/workflows");
    fs_err::create_dir_all(&workflows).unwrap();
    fs_err::write(
        workflows.join("invert.json"),
        support::invert_workflow(true).to_string(),
    )
    .unwrap();
    tier.ok(&["workflow", "track", "invert"]);
    tier.ok(&["commit", "-m", "Track the invert workflow"]);
    let object_info_file = tier.ctx.path().join("object_info.json");
    fs_err::write(&object_info_file, object_info.to_string()).unwrap();
    let object_info_arg = object_info_file.to_str().unwrap();
    tier.ok(&[
        "workflow",
        "validate",
        workflows.join("invert.json").to_str().unwrap(),
        "--object-info",
        object_info_arg,
    ]);
    let broken = tier.ctx.path().join("invert-unconnected.json");
    fs_err::write(&broken, support::invert_workflow(false).to_string()).unwrap();
    let out = tier.run(&[
        "workflow",
        "validate",
        broken.to_str().unwrap(),
        "--object-info",
        object_info_arg,
    ]);
    assert!(
        !out.status.success(),
        "a prompt missing a required input is invalid"
    );
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("images"),
        "the error names the missing input: {said}"
    );
    let rejected = comfyui.post_prompt(&comfydock_test::comfyui_contract::invert_prompt(false));
    assert_eq!(rejected.0, 400, "real ComfyUI rejects it too: {}", rejected.1);

    // The stand-in speaks the protocol as the real server does.
    comfyui_contract::assert_stand_in_matches(&comfyui.base_url());

    // 4. serve the tracked workflow against the running ComfyUI.
    let serve = Serve::start(&tier, "invert", &comfyui.base_url());
    let (job, events) =
        serve.run_job(&json!({"canvas_width": 200, "canvas_height": 150, "canvas_color": 0x00_FF_00}));
    assert_eq!(job["status"], "succeeded", "{job}");
    support::assert_event_order(&events);
    let png = serve.output(&job);
    let (width, height, pixel) = support::png_size_and_first_pixel(&png);
    assert_eq!((width, height), (200, 150));
    assert_eq!(pixel, [0xFF, 0x00, 0xFF], "the output is the inverted colour");
    drop(serve);

    // 5. Real node packs from git: requirements locked in their groups, torch untouched.
    let kjnodes = tier.node_repo("ComfyUI-KJNodes");
    let scripts = tier.node_repo("ComfyUI-Custom-Scripts");
    tier.ok(&["node", "add", &kjnodes]);
    tier.ok(&["node", "add", &scripts]);
    let manifest = fs_err::read_to_string(tier.env_dir("main").join(".cec/pyproject.toml")).unwrap();
    let groups = support::dependency_groups(&manifest);
    let kj_group = groups
        .iter()
        .find(|(name, _)| name.to_lowercase().contains("kjnodes"))
        .unwrap_or_else(|| panic!("a dependency group for KJNodes:\n{manifest}"));
    for requirement in ["color-matcher", "matplotlib", "mss", "opencv-python-headless"] {
        assert!(
            kj_group.1.iter().any(|r| r.starts_with(requirement)),
            "{requirement} in {kj_group:?}"
        );
    }
    assert!(support::locked_packages(&tier.env_dir("main"), &["color-matcher"]).contains("color-matcher"));
    assert_eq!(
        support::locked_packages(&tier.env_dir("main"), &["torch", "torchvision", "torchaudio"]),
        torch_locked,
        "adding nodes never moves torch in uv.lock"
    );
    assert_eq!(
        tier.python("main", "import torch; print(torch.__version__)"),
        torch_version,
        "nor in the venv"
    );
    comfyui.stop();
    let comfyui = ComfyUi::start(&tier, "main");
    let object_info = comfyui.get_json("/object_info");
    for class in [KJNODES_CLASS, CUSTOM_SCRIPTS_CLASS] {
        assert!(
            object_info.get(class).is_some(),
            "{class} is loaded after the restart"
        );
    }
    let first_classes = support::class_names(&object_info);
    comfyui.stop();

    // 6. Export, import into a fresh workspace: the same manifest and lock, the same classes.
    tier.ok(&["commit", "-m", "Add real node packs"]);
    let bundle = tier.ctx.path().join("main.tar.gz");
    tier.ok(&["export", "-o", bundle.to_str().unwrap()]);
    let second = Tier::new(&torch, "second");
    second.ok(&["--yes", "import", bundle.to_str().unwrap(), "--name", "main"]);
    for file in [".cec/pyproject.toml", ".cec/uv.lock"] {
        assert!(
            fs_err::read(tier.env_dir("main").join(file)).unwrap()
                == fs_err::read(second.env_dir("main").join(file)).unwrap(),
            "{file} is byte-identical after import"
        );
    }
    let imported = ComfyUi::start(&second, "main");
    let imported_classes = support::class_names(&imported.get_json("/object_info"));
    assert_eq!(
        imported_classes, first_classes,
        "the imported environment loads the same classes"
    );
    imported.stop();

    let downloads = torch.wheel_downloads();
    eprintln!("real-world tier: {downloads} torch wheel downloads from the local index (0 when warm)");
}
