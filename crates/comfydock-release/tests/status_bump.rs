//! `release status` and `release bump` on a fixture monorepo with real git.

mod support;

use comfydock_foundation::Hinted as _;
use comfydock_foundation::reporter::NoReporter;
use comfydock_release::bump::BumpAction;
use comfydock_release::status::{Cause, PackageRole};
use comfydock_release::{BumpOptions, ReleaseError, StatusOptions, bump, status};
use support::Fixture;

fn released_fixture() -> Fixture {
    let fixture = Fixture::new();
    fixture.tag("v1.0.0");
    fixture
}

#[test]
fn before_the_first_release_every_package_is_affected() {
    let fixture = Fixture::new();
    let report = status(&fixture.root, &StatusOptions::default()).unwrap();
    assert_eq!(report.since, None);
    let names: Vec<_> = report.packages.iter().map(|p| p.package.as_str()).collect();
    assert_eq!(
        names,
        ["tmpl-core", "tmpl-media-api", "tmpl-media-image", "tmpl-meta"]
    );
}

#[test]
fn nothing_changed_since_the_tag_means_nothing_affected() {
    let fixture = released_fixture();
    let report = status(&fixture.root, &StatusOptions::default()).unwrap();
    assert_eq!(report.since.as_deref(), Some("v1.0.0"));
    assert!(report.changed_files.is_empty());
    assert!(report.packages.is_empty());
}

#[test]
fn a_new_template_names_its_media_package_and_why() {
    let fixture = released_fixture();
    fixture.add_nano_banana_template();
    fixture.commit("Add nano banana");

    let report = status(&fixture.root, &StatusOptions::default()).unwrap();
    let names: Vec<_> = report.packages.iter().map(|p| p.package.as_str()).collect();
    assert_eq!(names, ["tmpl-media-api", "tmpl-meta"], "{report:#?}");

    let media_api = &report.packages[0];
    assert_eq!(media_api.dir.as_deref(), Some("media_api"));
    assert_eq!(media_api.role, PackageRole::Sub);
    assert!(media_api.reasons.iter().any(|r| r.cause
        == Cause::BundleMembership {
            bundle: "media-api".into(),
            added: vec!["nano_banana".into()],
            removed: vec![],
        }));
    assert!(media_api.reasons.iter().any(|r| r.cause
        == Cause::TemplateFile {
            path: "templates/nano_banana-1.webp".into(),
            template: "nano_banana".into(),
            bundle: "media-api".into(),
        }));
    assert!(media_api.reasons.iter().any(|r| r.cause
        == Cause::InputFile {
            path: "input/banana.png".into(),
            template: "nano_banana".into(),
            bundle: "media-api".into(),
        }));
    let message = &media_api.reasons[0].message;
    assert!(message.contains("nano_banana"), "{message}");

    let meta = &report.packages[1];
    assert_eq!(meta.role, PackageRole::Meta);
    assert_eq!(
        meta.reasons[0].cause,
        Cause::PinnedPackagesChanged {
            packages: vec!["tmpl-media-api".into()]
        }
    );
    let bundles = report
        .changed_files
        .iter()
        .find(|f| f.path == "bundles.json")
        .unwrap();
    assert_eq!(bundles.packages, ["tmpl-media-api"]);
    assert!(!bundles.uncommitted);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    // The JSON report uses stable snake_case fields.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["packages"][0]["reasons"][0]["kind"], "bundle_membership");
    assert_eq!(json["changed_files"][0]["change"], "modified");
}

#[test]
fn uncommitted_changes_count_and_packages_files_map_to_their_package() {
    let fixture = released_fixture();
    fixture.write("packages/core/src/tmpl_core/loader.py", "LOADER = 1\n");
    fixture.edit(
        "pyproject.toml",
        "description = \"Workflow templates\"",
        "description = \"Templates\"",
    );
    let report = status(&fixture.root, &StatusOptions::default()).unwrap();
    let core = &report.packages[0];
    assert_eq!(core.package, "tmpl-core");
    assert_eq!(
        core.reasons[0].cause,
        Cause::PackageFile {
            path: "packages/core/src/tmpl_core/loader.py".into()
        }
    );
    let loader = report
        .changed_files
        .iter()
        .find(|f| f.path.ends_with("loader.py"))
        .unwrap();
    assert!(loader.uncommitted);
    let meta = report.packages.last().unwrap();
    assert!(meta.reasons.iter().any(|r| r.cause
        == Cause::MetaFile {
            path: "pyproject.toml".into()
        }));
}

#[test]
fn a_template_in_no_bundle_is_a_warning() {
    let fixture = released_fixture();
    fixture.write("templates/orphan.json", support::workflow_without_inputs());
    fixture.edit(
        "templates/index.json",
        r#"      {"name": "api_flux","#,
        r#"      {"name": "orphan", "mediaType": "image", "mediaSubtype": "webp", "description": "x"},
      {"name": "api_flux","#,
    );
    let report = status(&fixture.root, &StatusOptions::default()).unwrap();
    assert!(report.packages.is_empty(), "{report:#?}");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("templates/orphan.json") && w.contains("no bundle")),
        "{:?}",
        report.warnings
    );
}

#[test]
fn since_overrides_the_tag() {
    let fixture = released_fixture();
    fixture.add_nano_banana_template();
    fixture.commit("Add nano banana");
    let report = status(
        &fixture.root,
        &StatusOptions {
            since: Some("HEAD".into()),
        },
    )
    .unwrap();
    assert!(report.packages.is_empty());
    let err = status(
        &fixture.root,
        &StatusOptions {
            since: Some("no-such-ref".into()),
        },
    )
    .unwrap_err();
    assert!(matches!(err, ReleaseError::Git(_)), "{err:?}");
}

#[test]
fn bump_refuses_while_the_meta_version_was_not_raised() {
    let fixture = released_fixture();
    fixture.add_nano_banana_template();
    fixture.add_nano_banana_assets();
    fixture.commit("Add nano banana");
    let before = fixture.read("pyproject.toml");

    let err = bump(&fixture.root, &BumpOptions::default(), &NoReporter).unwrap_err();
    assert!(
        matches!(err, ReleaseError::MetaVersionNotRaised { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("1.0.0"), "{err}");
    let hint = err.hint().unwrap();
    assert!(
        hint.contains("comfydock release bump --meta-version 1.0.1"),
        "{hint}"
    );
    assert_eq!(fixture.read("pyproject.toml"), before);
    assert_eq!(fixture.git(&["status", "--porcelain"]), "");

    // The suggested command works.
    let report = bump(
        &fixture.root,
        &BumpOptions {
            meta_version: Some("1.0.1".into()),
            ..BumpOptions::default()
        },
        &NoReporter,
    )
    .unwrap();
    assert_eq!(report.meta.to, "1.0.1");
    // A meta version not above the release is refused outright.
    let err = bump(
        &fixture.root,
        &BumpOptions {
            meta_version: Some("1.0.0".into()),
            ..BumpOptions::default()
        },
        &NoReporter,
    )
    .unwrap_err();
    assert!(
        matches!(err, ReleaseError::MetaVersionNotHigher { .. }),
        "{err:?}"
    );
}

#[test]
fn bump_raises_affected_packages_and_pins_them_changing_only_version_strings() {
    let fixture = released_fixture();
    fixture.add_nano_banana_template();
    fixture.add_nano_banana_assets();
    fixture.edit("pyproject.toml", "version = \"1.0.0\"", "version = \"1.1.0\"");
    fixture.commit("Add nano banana, meta 1.1.0");
    let meta_before = fixture.read("pyproject.toml");
    let api_before = fixture.read("packages/media_api/pyproject.toml");

    let dry = bump(
        &fixture.root,
        &BumpOptions {
            dry_run: true,
            ..BumpOptions::default()
        },
        &NoReporter,
    )
    .unwrap();
    assert!(dry.files_written.is_empty());
    assert_eq!(fixture.git(&["status", "--porcelain"]), "", "dry run wrote files");

    let report = bump(&fixture.root, &BumpOptions::default(), &NoReporter).unwrap();
    assert_eq!(report.bumps.len(), 1, "{report:#?}");
    let bumped = &report.bumps[0];
    assert_eq!(
        (
            bumped.dir.as_str(),
            bumped.from.as_str(),
            bumped.to.as_str(),
            bumped.action
        ),
        ("media_api", "0.1.0", "0.1.1", BumpAction::Bumped)
    );
    assert_eq!(dry.bumps, report.bumps);
    assert_eq!(dry.pins, report.pins);
    assert_eq!(report.pins.len(), 1);
    assert_eq!(report.pins[0].from, "tmpl-media-api==0.1.0");
    assert_eq!(report.pins[0].to, "tmpl-media-api==0.1.1");
    assert_eq!(
        report.files_written,
        ["packages/media_api/pyproject.toml", "pyproject.toml"]
    );

    assert_eq!(
        fixture.read("pyproject.toml"),
        meta_before.replace("\"tmpl-media-api==0.1.0\"", "\"tmpl-media-api==0.1.1\"")
    );
    assert_eq!(
        fixture.read("packages/media_api/pyproject.toml"),
        api_before.replace("version = \"0.1.0\"", "version = \"0.1.1\"")
    );
    let mut changed: Vec<String> = fixture
        .git(&["status", "--porcelain"])
        .lines()
        .map(|l| l[3..].to_owned())
        .collect();
    changed.sort();
    assert_eq!(changed, ["packages/media_api/pyproject.toml", "pyproject.toml"]);

    // Running it again changes nothing: the package was already raised since the tag.
    let again = bump(&fixture.root, &BumpOptions::default(), &NoReporter).unwrap();
    assert_eq!(again.bumps[0].action, BumpAction::AlreadyRaised);
    assert!(again.pins.is_empty());
    assert!(again.files_written.is_empty());
}

#[test]
fn bump_turns_range_pins_into_exact_pins() {
    let fixture = released_fixture();
    fixture.edit("pyproject.toml", "\"tmpl-core==0.1.0\"", "\"tmpl-core>=0.1.0\"");
    fixture.edit("pyproject.toml", "version = \"1.0.0\"", "version = \"1.0.1\"");
    fixture.commit("Loosen core");
    let report = bump(&fixture.root, &BumpOptions::default(), &NoReporter).unwrap();
    assert!(report.bumps.is_empty());
    assert_eq!(report.pins.len(), 1);
    assert_eq!(report.pins[0].to, "tmpl-core==0.1.0");
    assert!(fixture.read("pyproject.toml").contains("\"tmpl-core==0.1.0\""));
}

#[test]
fn a_removed_template_affects_the_package_that_shipped_it() {
    let fixture = released_fixture();
    fixture.edit(
        "bundles.json",
        r#""media-api": ["api_flux"],"#,
        r#""media-api": [],"#,
    );
    fixture.git(&[
        "rm",
        "--quiet",
        "templates/api_flux.json",
        "templates/api_flux-1.webp",
    ]);
    fixture.commit("Drop api_flux");
    let report = status(&fixture.root, &StatusOptions::default()).unwrap();
    let media_api = report
        .packages
        .iter()
        .find(|p| p.package == "tmpl-media-api")
        .unwrap();
    assert!(media_api.reasons.iter().any(|r| r.cause
        == Cause::BundleMembership {
            bundle: "media-api".into(),
            added: vec![],
            removed: vec!["api_flux".into()],
        }));
    assert!(media_api.reasons.iter().any(|r| r.cause
        == Cause::TemplateFile {
            path: "templates/api_flux.json".into(),
            template: "api_flux".into(),
            bundle: "media-api".into(),
        }));
    let deleted = report
        .changed_files
        .iter()
        .find(|f| f.path == "templates/api_flux.json")
        .unwrap();
    assert_eq!(deleted.change, comfydock_release::git_repo::Change::Deleted);
}

#[test]
fn template_json_affects_the_json_package_only() {
    let fixture = Fixture::new();
    fixture.write(
        "packages/json/pyproject.toml",
        support::package_pyproject("tmpl-json", "0.2.0"),
    );
    fixture.edit(
        "pyproject.toml",
        "    \"tmpl-core==0.1.0\",",
        "    \"tmpl-core==0.1.0\",\n    \"tmpl-json==0.2.0\",",
    );
    fixture.commit("Add the json package");
    fixture.tag("v1.0.0");
    fixture.write("templates/flux_schnell.json", support::workflow("dog.png"));
    let report = status(&fixture.root, &StatusOptions::default()).unwrap();
    let names: Vec<_> = report.packages.iter().map(|p| p.package.as_str()).collect();
    // The media package ships the thumbnails, not the workflow: it is not affected.
    assert_eq!(names, ["tmpl-json", "tmpl-meta"]);
    assert_eq!(
        report.packages[0].reasons[0].cause,
        Cause::TemplateJson {
            path: "templates/flux_schnell.json".into()
        }
    );
}

#[test]
fn a_bundle_override_maps_to_another_package_folder() {
    let fixture = Fixture::new();
    fixture.edit(
        "pyproject.toml",
        "[build-system]",
        "[tool.comfydock.release.bundle-packages]\nmedia-api = \"media_image\"\n\n[build-system]",
    );
    fixture.commit("Map media-api to media_image");
    fixture.tag("v1.0.0");
    fixture.write("templates/api_flux-1.webp", b"new");
    let report = status(&fixture.root, &StatusOptions::default()).unwrap();
    let names: Vec<_> = report.packages.iter().map(|p| p.package.as_str()).collect();
    assert_eq!(names, ["tmpl-media-image", "tmpl-meta"]);
}

#[test]
fn a_shallow_clone_without_tags_is_an_error_with_a_hint() {
    let fixture = released_fixture();
    fixture.write("templates/api_flux-2.webp", support::THUMB);
    fixture.commit("Second thumbnail");
    let clone = tempfile::tempdir().unwrap();
    let url = format!("file://{}", fixture.root.display());
    support::run(
        std::process::Command::new("git")
            .args(["clone", "--quiet", "--depth", "1", "--no-tags", &url])
            .arg(clone.path().join("shallow")),
    );
    let err = status(&clone.path().join("shallow"), &StatusOptions::default()).unwrap_err();
    assert!(matches!(err, ReleaseError::ShallowWithoutTags(_)), "{err:?}");
    assert!(err.hint().unwrap().contains("--unshallow --tags"), "{err}");
    // Naming the reference explicitly still works on the same clone.
    let head = support::run(
        std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(clone.path().join("shallow")),
    );
    let report = status(
        &clone.path().join("shallow"),
        &StatusOptions {
            since: Some(head.trim().to_owned()),
        },
    )
    .unwrap();
    assert!(report.packages.is_empty());
}

#[test]
fn a_file_in_an_unassigned_templates_folder_is_a_warning() {
    let fixture = released_fixture();
    fixture.write("templates/logo/openai.png", b"\x89PNG logo");
    let report = status(&fixture.root, &StatusOptions::default()).unwrap();
    assert!(report.packages.is_empty());
    assert!(
        report.warnings.iter().any(
            |w| w.starts_with("templates/logo/openai.png: no package ships it") && w.contains("logo-dir")
        ),
        "{:?}",
        report.warnings
    );
}
