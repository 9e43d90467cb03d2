//! `release validate` and `release publish` end to end: a fixture monorepo with real git,
//! real `uv build` / `uv publish` (offline: the fixture packages use uv's in-process
//! `uv_build` backend), and a real local index (pypiserver) receiving the uploads.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use comfydock_foundation::Hinted as _;
use comfydock_foundation::reporter::NoReporter;
use comfydock_foundation::uv::Uv;
use comfydock_release::bump::BumpAction;
use comfydock_release::publish::{PublishOutcome, TagOutcome};
use comfydock_release::status::Cause;
use comfydock_release::validate::ProblemKind;
use comfydock_release::{
    BumpOptions, PublishCredentials, PublishOptions, ReleaseError, StatusOptions, ValidateOptions, bump,
    publish, status, validate,
};
use support::index_server::IndexServer;
use support::workflow_templates::{self, add_template};
use support::{Fixture, run};

struct Env {
    server: IndexServer,
    fixture: Fixture,
    uv: Uv,
    cache: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self::with_fixture(Fixture::new())
    }

    fn with_fixture(fixture: Fixture) -> Self {
        let server = IndexServer::start();
        let cache = tempfile::tempdir().unwrap();
        let uv = Uv::locate(None, cache.path())
            .expect("locate uv")
            .expect("uv must be on PATH for these tests (e.g. python3 -m pip install --target /tmp/uvbin uv==0.13.9)")
            .with_cache_dir(cache.path().join("uv-cache"));
        Self {
            server,
            fixture,
            uv,
            cache,
        }
    }

    fn options(&self) -> PublishOptions {
        PublishOptions {
            index_url: Some(self.server.simple_url()),
            publish_url: None,
            // pypiserver runs with `-a . -P .`; uv still wants some credentials.
            credentials: Some(PublishCredentials {
                username: "release".into(),
                password: "unused".into(),
            }),
            dry_run: false,
        }
    }

    fn validate_options(&self) -> ValidateOptions {
        ValidateOptions {
            index_url: Some(self.server.simple_url()),
            offline: false,
            skip_sync: false,
            content_check: Some(self.uv.clone()),
        }
    }

    fn publish(&self) -> comfydock_release::PublishReport {
        publish(&self.fixture.root, &self.options(), &self.uv, &NoReporter).unwrap()
    }

    fn tags(&self) -> Vec<String> {
        self.fixture
            .git(&["tag", "--list"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// A fresh venv with `requirement` installed from the local index only.
    fn install(&self, requirement: &str) -> PathBuf {
        let venv = self
            .cache
            .path()
            .join(format!("venv-{}", requirement.replace(['=', '.'], "_")));
        let uv_command = |args: &[&str]| {
            let mut cmd = Command::new(self.uv.program());
            cmd.args(args)
                .env("UV_PYTHON_DOWNLOADS", "never")
                .env("UV_NO_CONFIG", "1")
                .env("UV_CACHE_DIR", self.cache.path().join("uv-cache"))
                .env_remove("UV_INDEX_URL")
                .env_remove("UV_EXTRA_INDEX_URL")
                .env_remove("UV_INDEX")
                .env_remove("UV_DEFAULT_INDEX")
                .env_remove("UV_FIND_LINKS")
                .env_remove("PIP_INDEX_URL");
            cmd
        };
        let python = std::env::var("COMFYDOCK_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        run(uv_command(&["venv", "--quiet", "--python", &python]).arg(&venv));
        run(uv_command(&[
            "pip",
            "install",
            "--quiet",
            "--index-url",
            &self.server.simple_url(),
            requirement,
        ])
        .arg("--python")
        .arg(venv.join("bin").join("python")));
        venv
    }
}

fn find_file(root: &Path, name: &str) -> Option<PathBuf> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.file_name() == name)
        .map(walkdir::DirEntry::into_path)
}

fn outcome(report: &comfydock_release::PublishReport, package: &str) -> PublishOutcome {
    report
        .packages
        .iter()
        .find(|p| p.package == package)
        .unwrap_or_else(|| panic!("{package} not in {report:#?}"))
        .outcome
}

#[test]
fn nano_banana_regression_end_to_end() {
    let env = Env::new();
    let fixture = &env.fixture;

    // First release: everything goes out, sub-packages before meta, then the tag.
    let first = env.publish();
    assert!(first.complete, "{first:#?}");
    let order: Vec<_> = first.packages.iter().map(|p| p.package.as_str()).collect();
    assert_eq!(order.last(), Some(&"tmpl-meta"));
    assert!(
        first
            .packages
            .iter()
            .all(|p| p.outcome == PublishOutcome::Published),
        "{first:#?}"
    );
    assert_eq!(first.tag, "v1.0.0");
    assert_eq!(first.tag_outcome, TagOutcome::Created);
    assert_eq!(env.tags(), ["v1.0.0"]);
    assert!(
        env.server
            .files()
            .contains(&"tmpl_meta-1.0.0-py3-none-any.whl".to_owned())
    );

    // The incident: the template lands in templates/, index.json and bundles.json, but the
    // media package that ships its assets is not touched.
    fixture.add_nano_banana_template();
    fixture.commit("Add nano banana template");

    let report = status(&fixture.root, &StatusOptions::default()).unwrap();
    let media_api = report
        .packages
        .iter()
        .find(|p| p.package == "tmpl-media-api")
        .unwrap();
    assert!(
        media_api.reasons.iter().any(|r| matches!(&r.cause,
            Cause::BundleMembership { bundle, added, .. } if bundle == "media-api" && added == &["nano_banana"])),
        "{media_api:#?}"
    );
    assert!(
        media_api
            .reasons
            .iter()
            .any(|r| r.message.contains("nano_banana"))
    );

    let validation = validate(&fixture.root, &env.validate_options(), &NoReporter).unwrap();
    assert!(!validation.is_ok());
    let missing: Vec<_> = validation
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::AssetMissingFromPackage)
        .map(|p| p.subject.as_str())
        .collect();
    assert_eq!(
        missing,
        ["templates/nano_banana-1.webp", "input/banana.png"],
        "{validation:#?}"
    );
    let line = validation
        .problems
        .iter()
        .find(|p| p.subject == "templates/nano_banana-1.webp")
        .unwrap();
    assert!(line.to_string().contains("packages/media_api"), "{line}");
    // Not bumped and meta not raised: also reported.
    assert!(
        validation
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::PackageNotBumped)
    );
    assert!(
        validation
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::MetaVersionNotRaised)
    );

    // Publishing refuses while validation fails, and uploads nothing.
    let files_before = env.server.files();
    let err = publish(&fixture.root, &env.options(), &env.uv, &NoReporter).unwrap_err();
    assert!(matches!(err, ReleaseError::ValidationFailed { .. }), "{err:?}");
    assert!(
        err.hint()
            .unwrap()
            .contains("comfydock release validate --index-url")
    );
    assert_eq!(env.server.files(), files_before);

    // The fix: add the assets to the media package, raise meta, bump.
    fixture.add_nano_banana_assets();
    fixture.commit("Ship nano banana assets");
    let err = bump(&fixture.root, &BumpOptions::default(), &NoReporter).unwrap_err();
    assert!(err.hint().unwrap().contains("--meta-version 1.0.1"), "{err}");
    let bumped = bump(
        &fixture.root,
        &BumpOptions {
            meta_version: Some("1.1.0".into()),
            ..BumpOptions::default()
        },
        &NoReporter,
    )
    .unwrap();
    let api_bump = bumped
        .bumps
        .iter()
        .find(|b| b.package == "tmpl-media-api")
        .unwrap();
    assert_eq!((api_bump.from.as_str(), api_bump.to.as_str()), ("0.1.0", "0.1.1"));
    assert!(
        fixture
            .read("pyproject.toml")
            .contains("\"tmpl-media-api==0.1.1\"")
    );
    assert!(fixture.read("pyproject.toml").contains("version = \"1.1.0\""));

    // Uncommitted release changes block publishing.
    let err = publish(&fixture.root, &env.options(), &env.uv, &NoReporter).unwrap_err();
    assert!(matches!(err, ReleaseError::DirtyWorktree { .. }), "{err:?}");
    fixture.commit("Release 1.1.0");

    let validation = validate(&fixture.root, &env.validate_options(), &NoReporter).unwrap();
    assert!(validation.is_ok(), "{:#?}", validation.problems);

    // A dry run changes nothing.
    let dry = publish(
        &fixture.root,
        &PublishOptions {
            dry_run: true,
            ..env.options()
        },
        &env.uv,
        &NoReporter,
    )
    .unwrap();
    assert_eq!(outcome(&dry, "tmpl-media-api"), PublishOutcome::WouldPublish);
    assert_eq!(outcome(&dry, "tmpl-media-image"), PublishOutcome::AlreadyOnIndex);
    assert_eq!(dry.tag_outcome, TagOutcome::WouldCreate);
    assert_eq!(env.server.files(), files_before);

    let second = env.publish();
    assert!(second.complete, "{second:#?}");
    assert_eq!(
        second.packages[0].package, "tmpl-media-api",
        "changed packages go first"
    );
    assert_eq!(outcome(&second, "tmpl-media-api"), PublishOutcome::Published);
    assert_eq!(outcome(&second, "tmpl-core"), PublishOutcome::AlreadyOnIndex);
    assert_eq!(
        outcome(&second, "tmpl-media-image"),
        PublishOutcome::AlreadyOnIndex
    );
    assert_eq!(outcome(&second, "tmpl-meta"), PublishOutcome::Published);
    assert_eq!(second.packages.last().unwrap().package, "tmpl-meta");
    assert_eq!(second.tag_outcome, TagOutcome::Created);
    assert_eq!(env.tags(), ["v1.0.0", "v1.1.0"]);

    // Release notes: per package, templates added; also the annotated tag's message.
    let api_notes = second
        .notes
        .packages
        .iter()
        .find(|p| p.package == "tmpl-media-api")
        .unwrap();
    assert_eq!(api_notes.added, ["nano_banana"]);
    assert_eq!(api_notes.version, "0.1.1");
    assert_eq!(second.notes.previous_tag.as_deref(), Some("v1.0.0"));
    let message = fixture.git(&["tag", "--list", "--format=%(contents)", "v1.1.0"]);
    assert!(message.contains("tmpl-media-api 0.1.1"), "{message}");
    assert!(message.contains("- added: nano_banana"), "{message}");

    // Users installing the meta package get the new template's assets.
    let venv = env.install("tmpl-meta==1.1.0");
    let thumbnail = find_file(&venv, "nano_banana-1.webp").expect("nano banana thumbnail installed");
    assert!(
        thumbnail.to_string_lossy().contains("tmpl_media_api"),
        "{}",
        thumbnail.display()
    );
    assert_eq!(fs_err::read(&thumbnail).unwrap(), support::THUMB);
    assert!(find_file(&venv, "banana.png").is_some());

    // Publishing the finished release again changes nothing.
    let again = env.publish();
    assert!(again.complete);
    assert!(
        again
            .packages
            .iter()
            .all(|p| p.outcome == PublishOutcome::AlreadyOnIndex),
        "{again:#?}"
    );
    assert_eq!(again.tag_outcome, TagOutcome::AlreadyOnHead);
}

#[test]
fn a_failed_sub_package_upload_holds_back_meta_and_a_rerun_finishes() {
    let env = Env::new();
    let fixture = &env.fixture;
    assert!(env.publish().complete);

    // Change two media packages: a new API template and a new flux thumbnail.
    fixture.add_nano_banana_template();
    fixture.add_nano_banana_assets();
    let new_thumb = b"RIFF new flux thumbnail WEBP";
    fixture.write("templates/flux_schnell-1.webp", new_thumb);
    fixture.write(
        "packages/media_image/src/tmpl_media_image/templates/flux_schnell-1.webp",
        new_thumb,
    );
    fixture.commit("New template and thumbnail");
    bump(
        &fixture.root,
        &BumpOptions {
            meta_version: Some("1.1.0".into()),
            ..BumpOptions::default()
        },
        &NoReporter,
    )
    .unwrap();
    fixture.commit("Release 1.1.0");

    // The index rejects media-image's files.
    for file in [
        "tmpl_media_image-0.1.1-py3-none-any.whl",
        "tmpl_media_image-0.1.1.tar.gz",
    ] {
        env.server.reject_uploads_of(file);
    }
    let failed = env.publish();
    assert!(!failed.complete);
    assert_eq!(outcome(&failed, "tmpl-media-api"), PublishOutcome::Published);
    assert_eq!(outcome(&failed, "tmpl-media-image"), PublishOutcome::Failed);
    let image = failed
        .packages
        .iter()
        .find(|p| p.package == "tmpl-media-image")
        .unwrap();
    assert!(
        image.error.as_deref().unwrap().contains("uv publish"),
        "{image:#?}"
    );
    assert_eq!(outcome(&failed, "tmpl-meta"), PublishOutcome::NotAttempted);
    assert_eq!(failed.tag_outcome, TagOutcome::NotCreated);
    assert!(
        failed
            .next_step
            .as_deref()
            .unwrap()
            .contains("comfydock release publish --index-url")
    );
    assert!(
        !env.server
            .files()
            .iter()
            .any(|f| f.starts_with("tmpl_meta-1.1.0")),
        "{:?}",
        env.server.files()
    );
    assert_eq!(env.tags(), ["v1.0.0"]);
    assert_eq!(failed.failures().count(), 1);

    // The re-run publishes only what is missing.
    for file in [
        "tmpl_media_image-0.1.1-py3-none-any.whl",
        "tmpl_media_image-0.1.1.tar.gz",
    ] {
        env.server.accept_uploads_of(file);
    }
    let rerun = env.publish();
    assert!(rerun.complete, "{rerun:#?}");
    assert_eq!(outcome(&rerun, "tmpl-media-api"), PublishOutcome::AlreadyOnIndex);
    assert_eq!(outcome(&rerun, "tmpl-core"), PublishOutcome::AlreadyOnIndex);
    assert_eq!(outcome(&rerun, "tmpl-media-image"), PublishOutcome::Published);
    assert_eq!(outcome(&rerun, "tmpl-meta"), PublishOutcome::Published);
    assert_eq!(rerun.tag_outcome, TagOutcome::Created);
    assert_eq!(env.tags(), ["v1.0.0", "v1.1.0"]);
    let image_notes = rerun
        .notes
        .packages
        .iter()
        .find(|p| p.package == "tmpl-media-image")
        .unwrap();
    assert_eq!(image_notes.changed, ["flux_schnell"]);

    let venv = env.install("tmpl-meta==1.1.0");
    let thumb = find_file(&venv, "flux_schnell-1.webp").unwrap();
    assert_eq!(fs_err::read(thumb).unwrap(), new_thumb);
}

#[test]
fn validate_reports_pins_and_index_problems_one_line_each() {
    let env = Env::new();
    let fixture = &env.fixture;
    fixture.edit("pyproject.toml", "\"tmpl-core==0.1.0\"", "\"tmpl-core>=0.1.0\"");
    fixture.edit("pyproject.toml", "\"tmpl-media-image==0.1.0\",", "");
    fixture.edit(
        "pyproject.toml",
        "image = [\"tmpl-media-image==0.1.0\"]",
        "image = []",
    );
    fixture.edit(
        "pyproject.toml",
        "\"tmpl-media-api==0.1.0\"",
        "\"tmpl-media-api==0.0.9\"",
    );
    fixture.write("templates/broken.json", "{\"nodes\": 5}");
    fixture.write("templates/broken-1.webp", support::THUMB);
    fixture.edit(
        "templates/index.json",
        r#"      {"name": "api_flux","#,
        r#"      {"name": "broken", "mediaType": "image", "mediaSubtype": "webp", "description": "x"},
      {"name": "api_flux","#,
    );
    fixture.edit(
        "bundles.json",
        r#"["api_flux"]"#,
        r#"["api_flux", "broken", "gone"]"#,
    );
    fixture.edit(
        "bundles.json",
        "\"media-image\"",
        "\"media-video\": [],\n  \"media-image\"",
    );
    fixture.commit("Break things");

    let report = validate(&fixture.root, &env.validate_options(), &NoReporter).unwrap();
    let kinds: Vec<ProblemKind> = report.problems.iter().map(|p| p.kind).collect();
    for expected in [
        ProblemKind::NotExactlyPinned,
        ProblemKind::SubPackageNotPinned,
        ProblemKind::PinMismatch,
        ProblemKind::PinnedVersionUnavailable,
        ProblemKind::InvalidWorkflow,
        ProblemKind::BundleTemplateMissing,
        ProblemKind::BundlePackageMissing,
        ProblemKind::AssetMissingFromPackage,
    ] {
        assert!(
            kinds.contains(&expected),
            "{expected:?} missing from {:#?}",
            report.problems
        );
    }
    for problem in &report.problems {
        assert!(!problem.to_string().contains('\n'), "{problem}");
    }
    let unavailable = report
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::PinnedVersionUnavailable)
        .unwrap();
    assert!(unavailable.to_string().contains("0.0.9"), "{unavailable}");
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["problems"][0]["kind"].is_string());
}

#[test]
fn validate_checks_pins_against_the_configured_index() {
    let env = Env::new();
    let fixture = &env.fixture;
    fixture.edit(
        "pyproject.toml",
        "[build-system]",
        &format!(
            "[tool.comfydock.release]\nindex-url = \"{}\"\n\n[build-system]",
            env.server.simple_url()
        ),
    );
    fixture.commit("Configure the index");
    let report = validate(&fixture.root, &ValidateOptions::default(), &NoReporter).unwrap();
    assert_eq!(
        report.index_url.as_deref(),
        Some(env.server.simple_url().as_str())
    );
    assert!(report.is_ok(), "{:#?}", report.problems);
}

#[test]
fn a_partial_release_followed_by_new_commits_never_skips_changed_content() {
    let env = Env::with_fixture(workflow_templates::fixture());
    let fixture = &env.fixture;
    let first = env.publish();
    assert!(first.complete, "{first:#?}");
    assert_eq!(env.tags(), ["v0.11.96"]);

    // Release 0.11.97 with a new media-api template; the meta upload fails: a partial release.
    add_template(fixture, "gemini_edit", "media-api", b"RIFF gemini thumbnail");
    fixture.sync();
    let bump_options = BumpOptions {
        meta_version: Some("0.11.97".into()),
        index_url: Some(env.server.simple_url()),
        content_check: Some(env.uv.clone()),
        ..BumpOptions::default()
    };
    bump(&fixture.root, &bump_options, &NoReporter).unwrap();
    assert!(
        fixture
            .read("pyproject.toml")
            .contains("wt-templates-media-api==0.3.85")
    );
    fixture.commit("Release 0.11.97");
    let meta_files = [
        "wt_templates-0.11.97-py3-none-any.whl",
        "wt_templates-0.11.97.tar.gz",
    ];
    for file in meta_files {
        env.server.reject_uploads_of(file);
    }
    let partial = env.publish();
    assert!(!partial.complete);
    assert_eq!(
        outcome(&partial, "wt-templates-media-api"),
        PublishOutcome::Published
    );
    for file in meta_files {
        env.server.accept_uploads_of(file);
    }

    // The nano banana lands in media-api after the partial release.
    add_template(fixture, "nano_banana", "media-api", b"RIFF nano banana thumbnail");
    fixture.sync();
    fixture.commit("Add nano banana");

    // By git alone media-api was "already raised since the last release" and would be skipped.
    let blind = bump(
        &fixture.root,
        &BumpOptions {
            dry_run: true,
            ..BumpOptions::default()
        },
        &NoReporter,
    )
    .unwrap();
    let api = blind.bumps.iter().find(|b| b.dir == "media_api").unwrap();
    assert_eq!(
        (api.to.as_str(), api.action),
        ("0.3.85", BumpAction::AlreadyRaised)
    );

    // Validation compares with the index and refuses, naming the fix.
    let report = validate(&fixture.root, &env.validate_options(), &NoReporter).unwrap();
    let problem = report
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::PublishedContentDiffers && p.subject == "packages/media_api")
        .unwrap_or_else(|| panic!("{:#?}", report.problems));
    assert!(problem.message.contains("nano_banana-1.webp"), "{problem}");
    assert!(problem.message.contains("comfydock release bump"), "{problem}");
    let files_before = env.server.files();
    let err = publish(&fixture.root, &env.options(), &env.uv, &NoReporter).unwrap_err();
    assert!(matches!(err, ReleaseError::ValidationFailed { .. }), "{err:?}");
    assert_eq!(env.server.files(), files_before, "nothing uploaded");

    // The fix: bump with the index in view.
    let report = bump(
        &fixture.root,
        &BumpOptions {
            meta_version: None,
            ..bump_options
        },
        &NoReporter,
    )
    .unwrap();
    let api = report.bumps.iter().find(|b| b.dir == "media_api").unwrap();
    assert_eq!(
        (api.to.as_str(), api.action),
        ("0.3.86", BumpAction::BumpedPastPublished)
    );
    assert!(
        api.published_changes
            .iter()
            .any(|c| c.contains("nano_banana-1.webp")),
        "{api:?}"
    );
    assert!(
        fixture
            .read("pyproject.toml")
            .contains("wt-templates-media-api==0.3.86")
    );
    fixture.commit("Bump past the partial release");
    let done = env.publish();
    assert!(done.complete, "{done:#?}");
    assert_eq!(
        outcome(&done, "wt-templates-media-api"),
        PublishOutcome::Published
    );
    assert_eq!(outcome(&done, "wt-templates"), PublishOutcome::Published);

    let venv = env.install("wt-templates==0.11.97");
    assert!(
        find_file(&venv, "nano_banana-1.webp").is_some(),
        "the new asset is installed"
    );
    assert!(find_file(&venv, "gemini_edit-1.webp").is_some());
}
