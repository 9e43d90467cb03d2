//! `comfydock release status|bump|validate|publish` — the template monorepo release manager.
//! Works on a repository folder, not on a workspace.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use comfydock_environments::settings::Key;
use comfydock_environments::settings::Settings;
use comfydock_environments::workspace::Workspace;
use comfydock_foundation::uv::Uv;
use comfydock_release::bump::BumpAction;
use comfydock_release::repo::ReleaseRepo;
use comfydock_release::{
    BumpOptions, PublishOptions, StatusOptions, ValidateOptions, bump, publish, status, validate,
};

use super::Context;
use crate::error::{CommandError, CommandResult, ExitStatus};

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The monorepo root [default: the current folder]
    #[arg(long, global = true, value_name = "PATH", default_value = ".")]
    pub repo: PathBuf,
    #[command(subcommand)]
    pub command: ReleaseCommand,
}

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Files changed since the last release tag and the packages they affect, with reasons
    Status {
        /// Compare against this revision instead of the newest `v*` tag
        #[arg(long, value_name = "REF")]
        since: Option<String>,
    },
    /// Patch-bump every affected sub-package and pin them exactly (`==`) in the meta package
    Bump {
        /// Compare against this revision instead of the newest `v*` tag
        #[arg(long, value_name = "REF")]
        since: Option<String>,
        /// Show what would change; write nothing
        #[arg(long)]
        dry_run: bool,
        /// Raise the meta package to this version (its version is always your choice)
        #[arg(long, value_name = "VERSION")]
        meta_version: Option<String>,
        /// Bump this frozen package (a folder listed in `frozen-packages`) all the same
        #[arg(long, value_name = "DIR")]
        allow_frozen: Vec<String>,
        /// Also bump packages whose version is on this index with other content
        /// [default: `index-url` of [tool.comfydock.release]; without either, no comparison]
        #[arg(long, value_name = "URL")]
        index_url: Option<String>,
    },
    /// Check templates, bundles, assets, exact pins and pinned versions on the index
    Validate {
        /// Simple API of the package index to check pinned versions against
        /// [default: `index-url` of [tool.comfydock.release], else PyPI]
        #[arg(long, value_name = "URL")]
        index_url: Option<String>,
        /// Do not run the configured `sync-command` first
        #[arg(long)]
        no_sync: bool,
    },
    /// Build and upload changed sub-packages, then the meta package, then tag the release
    Publish {
        /// Simple API of the package index
        /// [default: `index-url` of [tool.comfydock.release], else PyPI]
        #[arg(long, value_name = "URL")]
        index_url: Option<String>,
        /// Upload endpoint [default: derived from --index-url]
        #[arg(long, value_name = "URL")]
        publish_url: Option<String>,
        /// Show what would be built and uploaded; do nothing
        #[arg(long)]
        dry_run: bool,
    },
}

/// The release commands; a failed validation or publication in `--json` mode prints only its
/// report (one JSON document) and exits 1.
pub fn run(ctx: &Context, args: &ReleaseArgs) -> CommandResult<ExitStatus> {
    let root = &args.repo;
    match &args.command {
        ReleaseCommand::Status { since } => {
            let report = status(root, &StatusOptions { since: since.clone() })?;
            if ctx.printer.json_mode() {
                ctx.printer.json(&report);
                return Ok(ExitStatus::Success);
            }
            ctx.printer.data(format!(
                "Changes since {}: {} file(s)",
                report.since.as_deref().unwrap_or("the beginning"),
                report.changed_files.len()
            ));
            for package in &report.packages {
                ctx.printer
                    .data(format!("{} {}", package.package, package.version));
                for reason in &package.reasons {
                    ctx.printer.data(format!("  - {}", reason.message));
                }
            }
            for warning in &report.warnings {
                ctx.printer.warn(warning);
            }
            Ok(ExitStatus::Success)
        }
        ReleaseCommand::Bump {
            since,
            dry_run,
            meta_version,
            allow_frozen,
            index_url,
        } => {
            let index_known =
                index_url.is_some() || ReleaseRepo::load(root).is_ok_and(|r| r.config.index_url.is_some());
            let options = BumpOptions {
                since: since.clone(),
                dry_run: *dry_run,
                meta_version: meta_version.clone(),
                allow_frozen: allow_frozen.clone(),
                index_url: index_url.clone(),
                content_check: if index_known { Some(release_uv(ctx)?) } else { None },
            };
            let report = bump(root, &options, &ctx.reporter)?;
            if ctx.printer.json_mode() {
                ctx.printer.json(&report);
                return Ok(ExitStatus::Success);
            }
            for b in &report.bumps {
                ctx.printer.data(match b.action {
                    BumpAction::Bumped if *dry_run => {
                        format!("Would bump {} {} -> {}", b.package, b.from, b.to)
                    }
                    BumpAction::Bumped => format!("Bumped {} {} -> {}", b.package, b.from, b.to),
                    BumpAction::BumpedPastPublished => format!(
                        "{} {} {} -> {} ({} {}: {})",
                        if *dry_run { "Would bump" } else { "Bumped" },
                        b.package,
                        b.from,
                        b.to,
                        b.from,
                        b.action,
                        comfydock_release::published::summarize(&b.published_changes)
                    ),
                    BumpAction::AlreadyRaised | BumpAction::NewPackage => {
                        format!("Kept {} {} ({})", b.package, b.to, b.action)
                    }
                });
            }
            for p in &report.pins {
                ctx.printer.data(format!(
                    "  pin {} ({}): {} -> {}",
                    p.dependency, p.location, p.from, p.to
                ));
            }
            for warning in &report.warnings {
                ctx.printer.warn(warning);
            }
            Ok(ExitStatus::Success)
        }
        ReleaseCommand::Validate { index_url, no_sync } => {
            let report = validate(
                root,
                &ValidateOptions {
                    index_url: index_url.clone(),
                    offline: false,
                    skip_sync: *no_sync,
                    content_check: Some(release_uv(ctx)?),
                },
                &ctx.reporter,
            )?;
            if ctx.printer.json_mode() {
                ctx.printer.json(&report);
            } else {
                for problem in &report.problems {
                    ctx.printer.data(problem);
                }
            }
            if report.is_ok() {
                ctx.printer.status(
                    "Valid",
                    format!(
                        "{} templates, {} bundles, {} packages",
                        report.templates_checked, report.bundles_checked, report.packages_checked
                    ),
                );
                Ok(ExitStatus::Success)
            } else {
                failed_after_report(
                    ctx,
                    CommandError::failed(format!("{} release problem(s) found", report.problems.len())),
                )
            }
        }
        ReleaseCommand::Publish {
            index_url,
            publish_url,
            dry_run,
        } => {
            let uv = release_uv(ctx)?;
            let options = PublishOptions {
                index_url: index_url.clone(),
                publish_url: publish_url.clone(),
                credentials: None,
                dry_run: *dry_run,
            };
            let report = publish(root, &options, &uv, &ctx.reporter)?;
            if ctx.printer.json_mode() {
                ctx.printer.json(&report);
            } else {
                for p in &report.packages {
                    let error = p.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
                    ctx.printer
                        .data(format!("{} {}: {}{error}", p.package, p.version, p.outcome));
                }
            }
            if report.complete {
                Ok(ExitStatus::Success)
            } else {
                let err = CommandError::failed("The release is incomplete");
                failed_after_report(
                    ctx,
                    match &report.next_step {
                        Some(step) => err.with_hint(step.clone()),
                        None => err,
                    },
                )
            }
        }
    }
}

/// A command whose report was printed failed: in `--json` mode the report is the one JSON
/// document, so the error goes to stderr only; otherwise it is returned as usual.
fn failed_after_report(ctx: &Context, err: CommandError) -> CommandResult<ExitStatus> {
    if ctx.printer.json_mode() {
        use std::io::Write as _;
        let _ = write!(anstream::stderr(), "{}", err.render());
        Ok(err.status())
    } else {
        Err(err)
    }
}

/// uv the way every other command finds it (`uv.path`, PATH, the workspace tools), installed
/// into the workspace tools folder when missing. A release repository needs no workspace: without
/// one, the tools folder of the default workspace location is used all the same.
fn release_uv(ctx: &Context) -> CommandResult<Uv> {
    let (settings, tools_dir, cache_dir) = if let Ok(workspace) = ctx.workspace() {
        (
            ctx.settings(&workspace),
            workspace.tools_dir(),
            Some(workspace.cache_dir().join("uv")),
        )
    } else {
        let (root, _) = Workspace::locate(ctx.global.workspace.as_deref())?;
        let settings = Settings {
            flags: ctx.overrides.clone(),
            env: Settings::env_snapshot(),
            ..Settings::default()
        };
        (settings, root.join("tools"), None)
    };
    let uv = Uv::locate_or_install(settings.value(Key::UvPath).as_deref(), &tools_dir, &ctx.reporter)?;
    Ok(match cache_dir {
        Some(dir) => uv.with_cache_dir(dir),
        None => uv,
    })
}
