//! `comfydock model`: roots, scanning, queries, verified and resumable downloads (issue 5).

use comfydock_test::file_server::FileServer;

use crate::common::{context, stderr, stdout};
use crate::snapshot::comfydock_snapshot;

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    comfydock_test::archive::sha256_hex(bytes)
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}{}", stdout(out), stderr(out));
    serde_json::from_str(&stdout(out)).unwrap()
}

#[test]
fn scan_is_incremental_and_queries_find_models() {
    let ctx = context();
    ctx.init_workspace();
    let models = ctx.workspace.join("models");
    fs_err::create_dir_all(models.join("checkpoints")).unwrap();
    fs_err::create_dir_all(models.join("loras")).unwrap();
    fs_err::write(
        models.join("checkpoints/dream.safetensors"),
        pseudo_random(300_000, 1),
    )
    .unwrap();
    fs_err::write(models.join("loras/style.safetensors"), pseudo_random(50_000, 2)).unwrap();
    fs_err::write(models.join("loras/readme.txt"), "not a model").unwrap();
    fs_err::write(models.join("loras/empty.safetensors"), "").unwrap();

    let first = json(&comfydock_snapshot!(
        ctx,
        ctx.command().args(["--json", "model", "scan"])
    ));
    assert_eq!(first["files_hashed"], 2, "{first}");
    assert_eq!(first["bytes_read"], 350_000);
    let again = json(&ctx.command().args(["--json", "model", "scan"]).output().unwrap());
    assert_eq!(
        (again["files_hashed"].as_u64(), again["bytes_read"].as_u64()),
        (Some(0), Some(0)),
        "{again}"
    );

    comfydock_snapshot!(ctx, ctx.command().args(["model", "scan"]));
    comfydock_snapshot!(ctx, ctx.command().args(["model", "list"]));
    comfydock_snapshot!(ctx, ctx.command().args(["model", "find", "dream"]));
    let listed = json(&comfydock_snapshot!(
        ctx,
        ctx.command().args(["--json", "model", "list"])
    ));
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let found = json(
        &ctx.command()
            .args(["--json", "model", "find", "dream"])
            .output()
            .unwrap(),
    );
    let blake3 = found[0]["blake3"].as_str().unwrap().to_owned();
    assert_eq!(found[0]["locations"][0]["folder"], "checkpoints");
    let shown = json(
        &ctx.command()
            .args(["--json", "model", "show", &blake3[..10]])
            .output()
            .unwrap(),
    );
    assert_eq!(shown["size"], 300_000);

    let hashed = ctx
        .command()
        .args(["model", "hash", &blake3[..10]])
        .output()
        .unwrap();
    assert!(hashed.status.success(), "{}", stderr(&hashed));
    let shown = json(
        &ctx.command()
            .args(["--json", "model", "show", &blake3[..10]])
            .output()
            .unwrap(),
    );
    assert_eq!(shown["sha256"], sha256_hex(&pseudo_random(300_000, 1)));

    // Changed content on disk: verify reports it and fails.
    fs_err::write(models.join("loras/style.safetensors"), pseudo_random(50_000, 3)).unwrap();
    let out = comfydock_snapshot!(ctx, ctx.command().args(["model", "verify", "--all"]));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let rescan = json(&ctx.command().args(["--json", "model", "scan"]).output().unwrap());
    assert_eq!(
        rescan["files_hashed"], 1,
        "only the touched file is read: {rescan}"
    );

    fs_err::remove_file(models.join("checkpoints/dream.safetensors")).unwrap();
    let rescan = json(&ctx.command().args(["--json", "model", "scan"]).output().unwrap());
    assert_eq!(
        rescan["locations_removed"].as_array().unwrap().len(),
        1,
        "{rescan}"
    );
    let shown = json(
        &ctx.command()
            .args(["--json", "model", "show", &blake3[..10]])
            .output()
            .unwrap(),
    );
    assert_eq!(
        shown["sha256"],
        sha256_hex(&pseudo_random(300_000, 1)),
        "hashes survive a vanished file"
    );
    assert!(shown["locations"].as_array().unwrap().is_empty());
}

#[test]
fn roots_drive_every_environments_extra_model_paths() {
    let ctx = context();
    ctx.init_workspace();
    let yaml = ctx.workspace.join(".metadata/extra_model_paths.yaml");
    let text = fs_err::read_to_string(&yaml).unwrap();
    assert!(
        text.contains(ctx.workspace.join("models").to_str().unwrap()),
        "{text}"
    );

    let library = ctx.path().join("library");
    fs_err::create_dir_all(library.join("checkpoints")).unwrap();
    let out = comfydock_snapshot!(ctx, ctx.command().args(["model", "root", "add"]).arg(&library));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = comfydock_snapshot!(ctx, ctx.command().args(["model", "root", "list"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let roots = json(
        &ctx.command()
            .args(["--json", "model", "root", "list"])
            .output()
            .unwrap(),
    );
    assert_eq!(roots.as_array().unwrap().len(), 2);
    let text = fs_err::read_to_string(&yaml).unwrap();
    assert!(text.contains(library.to_str().unwrap()), "{text}");

    // Adopt an existing ComfyUI's extra_model_paths.yaml.
    let a1111 = ctx.path().join("a1111");
    fs_err::create_dir_all(a1111.join("models/Stable-diffusion")).unwrap();
    let existing = ctx.path().join("extra_model_paths.yaml");
    fs_err::write(
        &existing,
        format!(
            "a111:\n    base_path: {}\n    checkpoints: models/Stable-diffusion\n",
            a1111.display()
        ),
    )
    .unwrap();
    let out = ctx
        .command()
        .args(["model", "root", "import"])
        .arg(&existing)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = fs_err::read_to_string(&yaml).unwrap();
    assert!(text.contains("Stable-diffusion"), "{text}");

    let out = comfydock_snapshot!(ctx, ctx.command().args(["model", "root", "remove"]).arg(&library));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !fs_err::read_to_string(&yaml)
            .unwrap()
            .contains(library.to_str().unwrap())
    );
    assert!(
        library.join("checkpoints").is_dir(),
        "removing a root never touches files"
    );
}

#[test]
fn download_verifies_resumes_and_indexes_with_its_source() {
    let ctx = context();
    ctx.init_workspace();
    let server = FileServer::start();
    let body = pseudo_random(400_000, 7);
    // Slow enough to be interrupted: 20 kB every 50 ms.
    server.add("/files/dream.safetensors", body.clone()).throttle(
        "/files/dream.safetensors",
        20_000,
        std::time::Duration::from_millis(50),
    );
    let url = server.url_for("/files/dream.safetensors");
    let sha = sha256_hex(&body);

    let mut first = ctx
        .std_command(env!("CARGO_BIN_EXE_comfydock"))
        .env("COMFYDOCK_HOME", &ctx.workspace)
        .args([
            "model",
            "download",
            &url,
            "--to",
            "checkpoints/",
            "--sha256",
            &sha,
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let part = ctx.workspace.join("models/checkpoints/dream.safetensors.part");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while fs_err::metadata(&part).map_or(0, |m| m.len()) < 60_000 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(part.is_file(), "a .part stays for resume");
    assert!(
        !ctx.workspace
            .join("models/checkpoints/dream.safetensors")
            .exists()
    );
    server.clear_faults("/files/dream.safetensors");

    let out = ctx
        .command()
        .args([
            "--json",
            "model",
            "download",
            &url,
            "--to",
            "checkpoints/",
            "--sha256",
            &sha,
        ])
        .output()
        .unwrap();
    let report = json(&out);
    assert_eq!(report["downloaded"][0]["size"], 400_000);
    assert!(
        report["downloaded"][0]["resumed_from"].as_u64().unwrap() > 0,
        "{report}"
    );
    assert!(
        server
            .ranges_for("/files/dream.safetensors")
            .iter()
            .any(|r| r.starts_with("bytes=")),
        "server saw a Range request"
    );
    assert_eq!(
        fs_err::read(ctx.workspace.join("models/checkpoints/dream.safetensors")).unwrap(),
        body
    );
    let found = json(
        &ctx.command()
            .args(["--json", "model", "find", "dream"])
            .output()
            .unwrap(),
    );
    assert_eq!(found[0]["sources"][0]["url"], url);

    // Wrong bytes: nothing at the final path, nothing indexed.
    server.add("/files/bad.safetensors", pseudo_random(10_000, 8));
    let bad = server.url_for("/files/bad.safetensors");
    let out = comfydock_snapshot!(
        ctx,
        ctx.command()
            .args(["model", "download", &bad, "--to", "loras/", "--sha256", &sha])
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(!ctx.workspace.join("models/loras/bad.safetensors").exists());
    let found = json(
        &ctx.command()
            .args(["--json", "model", "find", "bad"])
            .output()
            .unwrap(),
    );
    assert!(found.as_array().unwrap().is_empty());

    // `..` in --to is refused before any request.
    let out = comfydock_snapshot!(
        ctx,
        ctx.command()
            .args(["model", "download", &url, "--to", "../outside/"])
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn the_hugging_face_token_never_follows_a_redirect_to_another_host() {
    let mut ctx = context();
    let hf = FileServer::start();
    let cdn = FileServer::start();
    let body = pseudo_random(20_000, 9);
    cdn.add("/blob/vae.safetensors", body.clone());
    hf.redirect(
        "/org/repo/resolve/main/vae.safetensors",
        302,
        &cdn.localhost_url_for("/blob/vae.safetensors"),
    );
    ctx.env("HF_ENDPOINT", hf.url())
        .env("HF_TOKEN", "hf_secret_token_value_1234");
    ctx.init_workspace();
    let url = hf.url_for("/org/repo/blob/main/vae.safetensors");
    let out = comfydock_snapshot!(
        ctx,
        ctx.command().args(["model", "download", &url, "--to", "vae/"])
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("hf_secret_token_value_1234"));
    assert!(
        hf.authorized_requests()
            .iter()
            .any(|(_, path)| path.contains("/resolve/")),
        "the HF host gets the token"
    );
    assert!(
        !cdn.authorization_seen_on_host("localhost"),
        "the redirect target must not see the token"
    );
    assert_eq!(
        fs_err::read(ctx.workspace.join("models/vae/vae.safetensors")).unwrap(),
        body
    );
}

/// `model show`, `hash`, `duplicates`, `sources find` and `add-source` as a user reads them:
/// human and `--json` output, with a credentialed URL never printed or stored in the clear.
#[test]
fn show_hash_duplicates_sources_and_add_source_print_what_they_did() {
    let ctx = context();
    ctx.init_workspace();
    let models = ctx.workspace.join("models");
    for folder in ["checkpoints", "loras", "loras/old"] {
        fs_err::create_dir_all(models.join(folder)).unwrap();
    }
    let dream = pseudo_random(120_000, 7);
    let style = pseudo_random(40_000, 8);
    fs_err::write(models.join("checkpoints/dream.safetensors"), &dream).unwrap();
    // The same bytes twice, and another model under the same file name.
    fs_err::write(models.join("loras/style.safetensors"), &style).unwrap();
    fs_err::write(models.join("loras/old/style-copy.safetensors"), &style).unwrap();
    fs_err::write(
        models.join("checkpoints/style.safetensors"),
        pseudo_random(1_000, 9),
    )
    .unwrap();
    assert!(
        ctx.command()
            .args(["model", "scan"])
            .output()
            .unwrap()
            .status
            .success()
    );

    comfydock_snapshot!(ctx, ctx.command().args(["model", "duplicates"]));
    let duplicates = json(&comfydock_snapshot!(
        ctx,
        ctx.command().args(["--json", "model", "duplicates"])
    ));
    assert_eq!(
        duplicates["same_content"].as_array().map(Vec::len),
        Some(1),
        "{duplicates}"
    );

    let dream_file = models.join("checkpoints/dream.safetensors");
    let dream_path = dream_file.to_str().unwrap();
    comfydock_snapshot!(ctx, ctx.command().args(["model", "hash", dream_path]));

    // A Civitai answer for `dream` (the by-hash endpoint), nothing for the others.
    let civitai = FileServer::start();
    civitai.add(
        &format!("/api/v1/model-versions/by-hash/{}", sha256_hex(&dream)),
        serde_json::json!({
            "id": 4242, "modelId": 42, "model": {"name": "Dream", "type": "Checkpoint"},
            "files": [{"name": "dream.safetensors",
                       "downloadUrl": "https://civitai.example/api/download/models/4242",
                       "hashes": {"SHA256": sha256_hex(&dream).to_uppercase()}}]
        })
        .to_string(),
    );
    let civitai_url = format!("civitai.url={}", civitai.url());
    comfydock_snapshot!(
        ctx,
        ctx.command()
            .args(["-c", &civitai_url, "model", "sources", "find", dream_path])
    );
    let again = json(&comfydock_snapshot!(
        ctx,
        ctx.command().args([
            "-c",
            &civitai_url,
            "--json",
            "model",
            "sources",
            "find",
            dream_path
        ])
    ));
    assert!(again.to_string().contains("4242"), "{again}");

    // Every model: one found, one unknown, and one look-up that keeps failing (exit 1, the
    // found source is still recorded).
    civitai.fault_always(
        &format!(
            "/api/v1/model-versions/by-hash/{}",
            sha256_hex(&pseudo_random(1_000, 9))
        ),
        comfydock_test::file_server::Fault::Status(500),
    );
    let all = comfydock_snapshot!(
        ctx,
        ctx.command()
            .args(["-c", &civitai_url, "model", "sources", "find", "--all"])
    );
    assert_eq!(all.status.code(), Some(1), "{}", stderr(&all));

    let secret_url = "http://user:hunter2@127.0.0.1:9/dream.safetensors?access_token=hunter2";
    let refused = comfydock_snapshot!(
        ctx,
        ctx.command()
            .args(["model", "add-source", dream_path, secret_url])
    );
    assert_eq!(refused.status.code(), Some(1));
    comfydock_snapshot!(
        ctx,
        ctx.command().args([
            "model",
            "add-source",
            dream_path,
            "http://127.0.0.1:7/mirror/dream.safetensors"
        ])
    );
    let shown = comfydock_snapshot!(ctx, ctx.command().args(["model", "show", dream_path]));
    assert!(!stdout(&shown).contains("hunter2"));
    let shown = json(&comfydock_snapshot!(
        ctx,
        ctx.command().args(["--json", "model", "show", dream_path]),
        filters = vec![(r#""added_at": \d+"#, r#""added_at": "[TIMESTAMP]""#)]
    ));
    assert_eq!(shown["sources"].as_array().map(Vec::len), Some(2), "{shown}");
    assert!(!shown.to_string().contains("hunter2"), "{shown}");
    let db = fs_err::read(ctx.workspace.join(".metadata/model_index.db")).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&db).contains("hunter2"),
        "credentials never reach the index"
    );
}
