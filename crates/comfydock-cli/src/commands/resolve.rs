//! `comfydock workflow resolve NAME [--auto] [--install]`: arguments, the terminal prompt for
//! choices, and the report. The resolution itself is `comfydock_resolution::resolve`.

use std::io::IsTerminal as _;

use comfydock_environments::environment::{self, Environment};
use comfydock_environments::workspace::Workspace;
use comfydock_resolution::resolve::{MissingModelAnswer, ModelCandidate, ResolveContext, ResolveReport};
use comfydock_resolution::{Candidate, Chooser, ResolveError, ResolveOptions};

use super::Context;
use crate::error::{CommandError, CommandResult};
use crate::printer::Printer;

pub fn resolve(ctx: &Context, name: &str, auto: bool, install: bool) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let _lock = ctx.lock(&workspace)?;
    let workspace = Workspace::open(workspace.root())?;
    let settings = ctx.settings(&workspace);
    let tools = environment::tools(&workspace, &settings, &ctx.reporter)?;
    let resolve_ctx = ResolveContext {
        workspace: &workspace,
        settings: &settings,
        tools: &tools,
        env: &env,
        reporter: &ctx.reporter,
    };
    let chooser = TerminalChooser {
        printer: ctx.printer,
        auto,
    };
    let report = comfydock_resolution::resolve(&resolve_ctx, name, ResolveOptions { install }, &chooser)
        .map_err(|err| {
            if err.is_usage() {
                let hint = comfydock_foundation::Hinted::hint(&err);
                let usage = CommandError::usage(err.to_string());
                match hint {
                    Some(h) => usage.with_hint(h),
                    None => usage,
                }
            } else {
                err.into()
            }
        })?;
    for warning in &report.warnings {
        ctx.printer.warn(warning);
    }
    print_report(ctx, &env, &report);
    let missing_nodes = report.missing_nodes();
    let missing_required = report.missing_required_models();
    if missing_nodes + missing_required > 0 {
        let resolve_again = format!(
            "comfydock -e {} workflow resolve {} --auto --install",
            env.name, report.workflow
        );
        let hint = match report.unknown_node_types().as_slice() {
            [] => format!("run `{resolve_again}`"),
            unknown => {
                let maps: Vec<String> = unknown
                    .iter()
                    .map(|t| format!("`comfydock -e {} workflow node map {t} PACKAGE`", env.name))
                    .collect();
                format!(
                    "no package is known for {}: name the package that provides each with {} (or `--none` \
                     when none is needed; `comfydock node search TYPE` looks it up), then run `{resolve_again}`",
                    unknown
                        .iter()
                        .map(|t| format!("`{t}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    maps.join(", ")
                )
            }
        };
        return Err(CommandError::failed(format!(
            "`{}` is not fully resolved: {missing_nodes} node type(s) without an installed package, {missing_required} required model(s) missing",
            report.workflow
        ))
        .with_hint(hint));
    }
    Ok(())
}

/// Asks on the terminal, or takes the best-ranked candidate with `--auto`.
struct TerminalChooser {
    printer: Printer,
    auto: bool,
}

impl Chooser for TerminalChooser {
    fn choose_package(
        &self,
        node_type: &str,
        candidates: &[Candidate],
    ) -> Result<(usize, String), ResolveError> {
        if self.auto {
            let best = &candidates[0];
            let why = format!(
                "--auto picked the best-ranked of {} candidates ({})",
                candidates.len(),
                best.why
            );
            self.printer
                .info(format!("`{node_type}` → {}: {why}", best.package));
            return Ok((0, why));
        }
        if !std::io::stdin().is_terminal() {
            return Err(ResolveError::NoTerminal {
                node_type: node_type.to_owned(),
            });
        }
        let options: Vec<String> = candidates
            .iter()
            .map(|c| format!("{} ({})", c.package, c.why))
            .collect();
        let pick = crate::prompt::choose(&format!("Several packages provide `{node_type}`:"), &options)?;
        if pick == 0 || pick > candidates.len() {
            return Err(ResolveError::InvalidChoice {
                node_type: node_type.to_owned(),
                answer: pick.to_string(),
            });
        }
        Ok((pick - 1, "chosen by you".to_owned()))
    }

    fn missing_model(
        &self,
        name: &str,
        criticality: comfydock_workflow::Criticality,
    ) -> Result<MissingModelAnswer, ResolveError> {
        if self.auto || !std::io::stdin().is_terminal() {
            return Ok(MissingModelAnswer::Skip);
        }
        let options = [
            "a file I have (path or hash prefix of an indexed file)".to_owned(),
            "a URL to download it from (verified and indexed)".to_owned(),
            "the workflow runs without it (mark optional)".to_owned(),
            "skip for now".to_owned(),
        ];
        let question = format!(
            "No indexed file matches model `{name}` ({}), and the workflow gives no URL:",
            criticality.as_str()
        );
        let answer = match crate::prompt::choose(&question, &options)? {
            1 => MissingModelAnswer::File(crate::prompt::ask_line("File (path or hash prefix): ")?),
            2 => MissingModelAnswer::Url(crate::prompt::ask_line("URL: ")?),
            3 => MissingModelAnswer::Optional,
            _ => MissingModelAnswer::Skip,
        };
        Ok(match answer {
            MissingModelAnswer::File(t) | MissingModelAnswer::Url(t) if t.is_empty() => {
                MissingModelAnswer::Skip
            }
            other => other,
        })
    }

    fn choose_model(
        &self,
        name: &str,
        candidates: &[ModelCandidate],
    ) -> Result<(usize, String), ResolveError> {
        if self.auto {
            // The file other workflows already use keeps the environment to one copy.
            let pick = candidates.iter().position(|c| !c.used_by.is_empty()).unwrap_or(0);
            let why = if candidates[pick].used_by.is_empty() {
                format!("--auto picked the first of {} matching files", candidates.len())
            } else {
                format!(
                    "--auto picked the file workflow `{}` already uses, of {} matching files",
                    candidates[pick].used_by[0],
                    candidates.len()
                )
            };
            self.printer
                .info(format!("`{name}` → {}: {why}", candidates[pick].path));
            return Ok((pick, why));
        }
        if !std::io::stdin().is_terminal() {
            return Err(ResolveError::NoTerminalModel {
                name: name.to_owned(),
            });
        }
        let options: Vec<String> = candidates
            .iter()
            .map(|c| {
                let used = if c.used_by.is_empty() {
                    String::new()
                } else {
                    format!("; used by {}", c.used_by.join(", "))
                };
                format!(
                    "{} ({}, blake3 {}{used})",
                    c.path,
                    comfydock_foundation::display_text::human_bytes(c.size),
                    comfydock_foundation::display_text::short_hash(&c.blake3)
                )
            })
            .collect();
        let pick = crate::prompt::choose(&format!("Several indexed files match model `{name}`:"), &options)?;
        if pick == 0 || pick > candidates.len() {
            return Err(ResolveError::InvalidChoice {
                node_type: name.to_owned(),
                answer: pick.to_string(),
            });
        }
        Ok((pick - 1, "chosen by you".to_owned()))
    }
}

fn print_report(ctx: &Context, env: &Environment, report: &ResolveReport) {
    if ctx.printer.json_mode() {
        ctx.printer.json(report);
        return;
    }
    ctx.printer
        .data(format!("Workflow `{}` in `{}`", report.workflow, env.name));
    for n in &report.nodes {
        let state = if n.installed { "installed" } else { "missing" };
        ctx.printer.data(format!(
            "  node  {}  → {} ({state}; {})",
            n.node_type,
            n.package.as_deref().unwrap_or("?"),
            n.why
        ));
    }
    for m in &report.models {
        let state = m
            .blake3
            .as_deref()
            .map_or_else(|| "unresolved".to_owned(), |b| b[..16.min(b.len())].to_owned());
        ctx.printer.data(format!(
            "  model {}  [{}] {state} ({})",
            m.name,
            m.folder.as_deref().unwrap_or("?"),
            m.how
        ));
    }
}
