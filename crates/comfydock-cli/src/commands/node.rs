//! `node add / remove / update / list / info / search / disable / enable / check`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use comfydock_environments::environment::{self, Environment};
use comfydock_environments::manifest::node_entry as entry;
use comfydock_environments::nodes::ops::{self, ChangeReport, InstallScript};
use comfydock_environments::nodes::{NodeContext, NodeSource, NodeSpec, check, install};
use comfydock_environments::workspace::Workspace;
use serde_json::json;

use super::Context;
use crate::error::{CommandError, CommandResult};

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Add nodes: registry `ID[@VERSION]`, `GIT_URL[@REF]`, or `--dev PATH` (all or nothing)
    Add(AddArgs),
    /// Remove nodes: folder (dev folders are only unlinked), dependency group, then re-lock and sync
    Remove {
        /// Node keys or folder names
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Move nodes to the newest registry version or the newest commit of their branch/tag
    Update {
        /// Node keys or folder names
        names: Vec<String>,
        /// Update every registry and git node
        #[arg(long, conflicts_with = "names")]
        all: bool,
    },
    /// List the environment's nodes: source, version, commit, hash and state on disk
    List,
    /// Show a node of the environment, or a registry node by id
    Info {
        /// Node key, folder name or registry id
        name: String,
    },
    /// Search the registry and the node index (class names)
    Search {
        /// Words of a node's id, name or description, or part of a node class name
        query: String,
        /// Show at most this many registry results
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// Disable a node (moved to custom_nodes/.disabled; its packages stay)
    Disable {
        /// Node key or folder name
        name: String,
    },
    /// Enable a disabled node
    Enable {
        /// Node key or folder name
        name: String,
    },
    /// Statically scan a node's Python imports for modules nothing provides (never runs its code)
    Check {
        /// Node key or folder name
        name: Option<String>,
        /// Check every node
        #[arg(long, conflicts_with = "name")]
        all: bool,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Registry ids (`ID` or `ID@VERSION`, case-insensitive) or git URLs (`URL` or `URL@REF`)
    pub specs: Vec<String>,
    /// A local node folder to track as a dev node (repeatable); comfydock never deletes it
    #[arg(long = "dev", value_name = "PATH")]
    pub dev: Vec<PathBuf>,
    /// Run each node's install.py after installing (arbitrary code: only for nodes you trust)
    #[arg(long)]
    pub run_install_scripts: bool,
}

pub fn run(ctx: &Context, command: &NodeCommand) -> CommandResult {
    match command {
        NodeCommand::Add(args) => add(ctx, args),
        NodeCommand::Remove { names } => remove(ctx, names),
        NodeCommand::Update { names, all } => update(ctx, names, *all),
        NodeCommand::List => list(ctx),
        NodeCommand::Info { name } => info(ctx, name),
        NodeCommand::Search { query, limit } => search(ctx, query, *limit),
        NodeCommand::Disable { name } => set_enabled(ctx, name, false),
        NodeCommand::Enable { name } => set_enabled(ctx, name, true),
        NodeCommand::Check { name, all } => check_nodes(ctx, name.as_deref(), *all),
    }
}

/// Workspace, settings, tools and environment for a node command.
struct Session {
    workspace: Workspace,
    settings: comfydock_environments::settings::Settings,
    tools: environment::Tools,
    env: Environment,
}

impl Session {
    fn open(ctx: &Context) -> CommandResult<Self> {
        let workspace = ctx.workspace()?;
        let env = environment::select(&workspace, ctx.global.env.as_deref())?;
        let settings = ctx.settings(&workspace);
        let tools = environment::tools(&workspace, &settings, &ctx.reporter)?;
        Ok(Self {
            workspace,
            settings,
            tools,
            env,
        })
    }

    fn node_ctx<'a>(&'a self, ctx: &'a Context) -> NodeContext<'a> {
        NodeContext {
            workspace: &self.workspace,
            settings: &self.settings,
            tools: &self.tools,
            env: &self.env,
            reporter: &ctx.reporter,
        }
    }
}

fn add(ctx: &Context, args: &AddArgs) -> CommandResult {
    if args.specs.is_empty() && args.dev.is_empty() {
        return Err(CommandError::usage("Nothing to add").with_hint(
            "pass registry ids, git URLs, or `--dev PATH`, e.g. `comfydock node add comfyui-impact-pack`",
        ));
    }
    let mut specs = args
        .specs
        .iter()
        .map(|s| NodeSpec::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    specs.extend(args.dev.iter().map(|p| NodeSpec::dev(p)));
    let session = Session::open(ctx)?;
    let _lock = ctx.lock(&session.workspace)?;
    let report = ops::add(&session.node_ctx(ctx), &specs, args.run_install_scripts)?;
    print_changes(ctx, &session.env, &report, "Added");
    Ok(())
}

fn update(ctx: &Context, names: &[String], all: bool) -> CommandResult {
    if names.is_empty() && !all {
        return Err(CommandError::usage("Name the nodes to update, or pass `--all`"));
    }
    let session = Session::open(ctx)?;
    let _lock = ctx.lock(&session.workspace)?;
    let report = ops::update(&session.node_ctx(ctx), names, all)?;
    print_changes(ctx, &session.env, &report, "Updated");
    Ok(())
}

fn print_changes(ctx: &Context, env: &Environment, report: &ChangeReport, verb: &str) {
    if ctx.printer.json_mode() {
        ctx.printer.json(report);
        return;
    }
    if report.offline {
        ctx.printer
            .warn("offline: the registry is unreachable; used cached registry data and cached archives");
    }
    for node in &report.nodes {
        let e = &node.entry;
        let what = match &node.previous {
            Some(old) => format!("`{}` {} -> {}", e.key, old.pinned(), e.pinned()),
            None => format!("`{}` {} ({})", e.key, e.pinned(), e.source),
        };
        ctx.printer.status(verb, what);
        if !node.requirements.is_empty() {
            ctx.printer
                .info(format!("  requirements: {}", node.requirements.join(", ")));
        }
        if !node.torch_dropped.is_empty() {
            ctx.printer.warn(format!(
                "`{}` asks for {}; ignored: torch comes from the environment's backend",
                e.key,
                node.torch_dropped.join(", ")
            ));
        }
        for skipped in &node.skipped {
            ctx.printer
                .warn(format!("`{}`: skipped requirement line {skipped}", e.key));
        }
        if node.install_script == InstallScript::Ran {
            ctx.printer.info(format!("  ran install.py of `{}`", e.key));
        }
    }
    for key in &report.unchanged {
        ctx.printer.info(format!("`{key}` is up to date"));
    }
    if !report.nodes.is_empty() {
        ctx.printer.hint(format!(
            "commit it with `comfydock -e {} commit -m MESSAGE`",
            env.name
        ));
    }
}

fn remove(ctx: &Context, names: &[String]) -> CommandResult {
    let session = Session::open(ctx)?;
    let _lock = ctx.lock(&session.workspace)?;
    let removed = ops::remove(&session.node_ctx(ctx), names)?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&json!({ "removed": removed }));
        return Ok(());
    }
    for e in &removed {
        let note = if e.source == NodeSource::Dev {
            " (dev folder kept)"
        } else {
            ""
        };
        ctx.printer
            .status("Removed", format!("`{}` {}{note}", e.key, e.pinned()));
    }
    Ok(())
}

fn list(ctx: &Context) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let nodes = ops::list(&env)?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&nodes);
        return Ok(());
    }
    if nodes.is_empty() {
        ctx.printer.info(format!(
            "`{}` has no custom nodes; add one with `comfydock -e {} node add ID`",
            env.name, env.name
        ));
    }
    let rows: Vec<[String; 5]> = nodes
        .iter()
        .map(|n| {
            let e = &n.entry;
            let (version, detail) = match e.source {
                NodeSource::Registry => (
                    e.pinned(),
                    format!(
                        "sha256 {}",
                        e.sha256.as_deref().map_or("?", |s| &s[..16.min(s.len())])
                    ),
                ),
                NodeSource::Git => (e.pinned(), e.url.clone().unwrap_or_default()),
                NodeSource::Dev => ("dev".to_owned(), e.path.clone().unwrap_or_default()),
            };
            [
                e.key.clone(),
                e.source.as_str().to_owned(),
                version,
                n.state.to_string(),
                detail,
            ]
        })
        .collect();
    let width = |column: usize| rows.iter().map(|r| r[column].chars().count()).max().unwrap_or(0);
    let widths = [width(0), width(1), width(2), width(3)];
    for [key, source, version, state, detail] in &rows {
        ctx.printer.data(format!(
            "{key:<w0$}  {source:<w1$}  {version:<w2$}  {state:<w3$}  {detail}",
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        ));
    }
    Ok(())
}

fn info(ctx: &Context, name: &str) -> CommandResult {
    let session = Session::open(ctx)?;
    let info = ops::info(&session.node_ctx(ctx), name)?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&info);
        return Ok(());
    }
    if info.offline {
        ctx.printer.warn("offline: registry data comes from the cache");
    }
    if let Some(n) = &info.node {
        let e = &n.entry;
        ctx.printer.data(format!("{} ({}), {}", e.key, e.source, n.state));
        ctx.printer.data(format!("  pinned:       {}", e.pinned()));
        for (label, value) in [
            (
                "folder",
                Some(install::node_dir(&session.env, e).display().to_string()),
            ),
            ("url", e.url.clone()),
            ("sha256", e.sha256.clone()),
            ("commit", e.commit.clone()),
            ("repository", e.repository.clone()),
        ] {
            if let Some(value) = value {
                ctx.printer.data(format!("  {:<13} {value}", format!("{label}:")));
            }
        }
        ctx.printer.data(format!(
            "  requirements: {}",
            if n.requirements.is_empty() {
                "(none)".to_owned()
            } else {
                n.requirements.join(", ")
            }
        ));
    }
    if let Some(r) = &info.registry {
        ctx.printer
            .data(format!("registry: {} — {}", r.name, r.description));
        if let Some(repo) = &r.repository {
            ctx.printer.data(format!("  repository:   {repo}"));
        }
        if !info.versions.is_empty() {
            ctx.printer
                .data(format!("  versions:     {}", info.versions.join(", ")));
        }
    }
    if !info.classes.is_empty() {
        // One line per class with every source that claims it for this package.
        let mut names: Vec<(String, Vec<String>)> = Vec::new();
        for c in &info.classes {
            let source = serde_json::to_value(c.source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            match names.iter_mut().find(|(n, _)| *n == c.class_name) {
                Some((_, sources)) => sources.push(source),
                None => names.push((c.class_name.clone(), vec![source])),
            }
        }
        ctx.printer.data("  node classes:");
        for (name, sources) in names {
            ctx.printer.data(format!("    {name} ({})", sources.join(", ")));
        }
    }
    Ok(())
}

fn search(ctx: &Context, query: &str, limit: usize) -> CommandResult {
    let session = Session::open(ctx)?;
    let results = ops::search(&session.node_ctx(ctx), query, limit)?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&results);
        return Ok(());
    }
    if let Some(err) = &results.registry_error {
        ctx.printer.warn(format!("registry not searched: {err}"));
    }
    if results.offline {
        ctx.printer.warn("offline: registry results come from the cache");
    }
    for n in &results.registry {
        ctx.printer.data(format!(
            "{:<30} {:<10} {}",
            n.id,
            n.latest_version.as_deref().unwrap_or("-"),
            n.description
        ));
    }
    if !results.classes.is_empty() {
        ctx.printer.data("Node classes:");
        for c in &results.classes {
            ctx.printer.data(format!(
                "  {:<30} {} ({}, rank {})",
                c.class_name,
                c.package,
                serde_json::to_value(c.source)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                c.rank
            ));
        }
    }
    if results.registry.is_empty() && results.classes.is_empty() {
        ctx.printer.info(format!("Nothing matches `{query}`"));
    }
    Ok(())
}

fn set_enabled(ctx: &Context, name: &str, enabled: bool) -> CommandResult {
    let session = Session::open(ctx)?;
    let _lock = ctx.lock(&session.workspace)?;
    let (e, changed) = ops::set_enabled(&session.node_ctx(ctx), name, enabled)?;
    let state = if enabled { "enabled" } else { "disabled" };
    if ctx.printer.json_mode() {
        ctx.printer
            .json(&json!({ "node": e.key, "enabled": enabled, "changed": changed }));
    } else if changed {
        ctx.printer.status(
            if enabled { "Enabled" } else { "Disabled" },
            format!("`{}`", e.key),
        );
    } else {
        ctx.printer.info(format!("`{}` is already {state}", e.key));
    }
    Ok(())
}

fn check_nodes(ctx: &Context, name: Option<&str>, all: bool) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let manifest = env.manifest()?;
    let entries = entry::read_all(&manifest);
    let targets: Vec<_> = match (name, all) {
        (Some(n), _) => {
            let wanted = n.to_ascii_lowercase();
            let found: Vec<_> = entries
                .iter()
                .filter(|e| e.key == wanted || e.name.eq_ignore_ascii_case(n))
                .cloned()
                .collect();
            if found.is_empty() {
                return Err(comfydock_environments::nodes::NodeError::NotAdded {
                    key: n.to_owned(),
                    env: env.name.clone(),
                    known: entries.iter().map(|e| e.key.clone()).collect(),
                }
                .into());
            }
            found
        }
        (None, true) => entries,
        (None, false) => {
            return Err(CommandError::usage("Name the node to check, or pass `--all`"));
        }
    };
    let mut reports = Vec::new();
    for e in &targets {
        let dir = install::node_dir(&env, e);
        reports.push(check::check(&env, &e.key, &dir)?);
    }
    let missing: usize = reports.iter().map(|r| r.missing.len()).sum();
    if ctx.printer.json_mode() {
        ctx.printer.json(&reports);
    } else {
        for r in &reports {
            if r.missing.is_empty() {
                let every = if r.optional.is_empty() {
                    "every import"
                } else {
                    "every required import"
                };
                ctx.printer.data(format!(
                    "{}: {every} is provided ({} files)",
                    r.key, r.files_scanned
                ));
            }
            for m in &r.missing {
                ctx.printer.data(format!(
                    "{}: {}:{} imports `{}`, which nothing provides",
                    r.key, m.file, m.line, m.module
                ));
            }
            for o in &r.optional {
                ctx.printer.data(format!(
                    "{}: {}:{} imports `{}` ({}), optional: nothing provides it",
                    r.key, o.file, o.line, o.module, o.reason
                ));
            }
        }
    }
    if missing > 0 {
        let mut packages: Vec<&str> = reports
            .iter()
            .flat_map(|r| r.missing.iter().map(|m| m.package.as_str()))
            .collect();
        packages.sort_unstable();
        packages.dedup();
        return Err(CommandError::failed(format!(
            "{missing} required import(s) are provided by nothing in the environment"
        ))
        .with_hint(format!(
            "add the packages with `comfydock -e {} py add {}` (or to the node's requirements)",
            env.name,
            packages.join(" ")
        )));
    }
    Ok(())
}
