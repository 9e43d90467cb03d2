//! `comfydock release status|bump|validate|publish` — the template monorepo release manager.
//! Works on a repository folder, not on a workspace.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use comfydock_core::uv::Uv;
use comfydock_release::{
    BumpOptions, PYPI_SIMPLE_URL, PublishOptions, StatusOptions, ValidateOptions, bump, publish, status,
    validate,
};

use super::Context;
use crate::error::{CommandError, CommandResult};

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
    },
    /// Check templates, bundles, assets, exact pins and pinned versions on the index
    Validate {
        /// Simple API of the package index to check pinned versions against
        #[arg(long, value_name = "URL", default_value = PYPI_SIMPLE_URL)]
        index_url: String,
    },
    /// Build and upload changed sub-packages, then the meta package, then tag the release
    Publish {
        /// Simple API of the package index
        #[arg(long, value_name = "URL", default_value = PYPI_SIMPLE_URL)]
        index_url: String,
        /// Upload endpoint [default: derived from --index-url]
        #[arg(long, value_name = "URL")]
        publish_url: Option<String>,
        /// Show what would be built and uploaded; do nothing
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn run(ctx: &Context, args: &ReleaseArgs) -> CommandResult {
    let root = &args.repo;
    match &args.command {
        ReleaseCommand::Status { since } => {
            let report = status(root, &StatusOptions { since: since.clone() })?;
            if ctx.printer.json_mode() {
                ctx.printer.json(&report);
                return Ok(());
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
            Ok(())
        }
        ReleaseCommand::Bump {
            since,
            dry_run,
            meta_version,
        } => {
            let options = BumpOptions {
                since: since.clone(),
                dry_run: *dry_run,
                meta_version: meta_version.clone(),
            };
            let report = bump(root, &options, &ctx.reporter)?;
            if ctx.printer.json_mode() {
                ctx.printer.json(&report);
                return Ok(());
            }
            let verb = if *dry_run { "Would bump" } else { "Bumped" };
            for b in &report.bumps {
                ctx.printer
                    .data(format!("{verb} {} {} -> {}", b.package, b.from, b.to));
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
            Ok(())
        }
        ReleaseCommand::Validate { index_url } => {
            let report = validate(
                root,
                &ValidateOptions {
                    index_url: Some(index_url.clone()),
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
                Ok(())
            } else {
                Err(CommandError::failed(format!(
                    "{} release problem(s) found",
                    report.problems.len()
                )))
            }
        }
        ReleaseCommand::Publish {
            index_url,
            publish_url,
            dry_run,
        } => {
            let configured = std::env::var("COMFYDOCK_UV").ok().filter(|s| !s.is_empty());
            let tools = std::env::temp_dir();
            let uv = Uv::locate(configured.as_deref(), &tools)?.ok_or_else(|| {
                CommandError::failed("uv was not found")
                    .with_hint("put uv on PATH or set `COMFYDOCK_UV=/path/to/uv`")
            })?;
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
                        .data(format!("{} {} {:?}{error}", p.package, p.version, p.outcome));
                }
            }
            if report.complete {
                Ok(())
            } else {
                let err = CommandError::failed("The release is incomplete");
                Err(match &report.next_step {
                    Some(step) => err.with_hint(step.clone()),
                    None => err,
                })
            }
        }
    }
}
