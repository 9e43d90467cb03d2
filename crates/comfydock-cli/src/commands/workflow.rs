//! `comfydock workflow ...`: file-level analysis, validation and conversion, and per-environment
//! tracking (one way, from ComfyUI into `.cec`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use comfydock_environments::environment;
use comfydock_environments::workflow_tracking as tracking;
use comfydock_foundation::git::Git;
use comfydock_workflow::{
    AnalysisOptions, NodeCategory, Severity, ValidationOptions, WorkflowDocument, WorkflowError, analyze,
    convert_to_api, node_types_from_object_info, validate,
};
use serde_json::json;

use super::Context;
use crate::error::{CommandError, CommandResult, ExitStatus};

#[derive(Debug, Subcommand)]
pub enum WorkflowCommand {
    /// List the node types (built-in or custom, with packages) and models a workflow file needs
    Analyze(PathsArgs),
    /// Check a workflow file for dangling links, type mismatches, cycles, unknown nodes and missing
    /// required inputs
    Validate {
        #[command(flatten)]
        paths: PathsArgs,
        /// Node definitions (a saved /object_info) to also report unknown node types and
        /// required inputs that get neither a link nor a value
        #[arg(long, value_name = "FILE")]
        object_info: Option<PathBuf>,
    },
    /// Convert a UI-format workflow to the API (prompt) format
    Convert {
        #[command(flatten)]
        file: FileArgs,
        /// Node definitions: a saved /object_info document
        #[arg(long, value_name = "FILE")]
        object_info: PathBuf,
    },
    /// Workflows in the environment: tracked/untracked and new/modified/deleted/synced
    List,
    /// Track workflows: `commit` will copy them into .cec
    Track {
        /// Workflow names (paths under the workflows folder, without .json)
        names: Vec<String>,
        /// Track every workflow not matched by .cec/.comfydockignore
        #[arg(long, conflicts_with = "names")]
        all: bool,
    },
    /// Stop tracking a workflow (its copy leaves .cec at the next commit)
    Untrack {
        /// Workflow name
        name: String,
    },
    /// Write a committed workflow back into ComfyUI's folder
    Restore {
        /// Workflow name
        name: String,
        /// Take it from this revision of .cec [default: the last commit]
        #[arg(long, value_name = "REV")]
        rev: Option<String>,
        /// Replace the file even if it has changes that are not committed (it is moved to the
        /// workspace trash)
        #[arg(long)]
        force: bool,
    },
    /// Map custom nodes to packages and models to the index; with --install, add and download what is missing
    Resolve {
        /// Workflow name
        name: String,
        /// Pick the best-ranked package when several provide a node type (and say why)
        #[arg(long)]
        auto: bool,
        /// Add missing nodes and download missing models
        #[arg(long)]
        install: bool,
    },
    /// Map node types to packages by hand (for every workflow of the environment)
    #[command(subcommand)]
    Node(NodeMappingCommand),
    /// Say by hand what a workflow's model reference is
    #[command(subcommand)]
    Model(ModelPinCommand),
    /// Semantic diff of a workflow: ComfyUI's file against its committed copy
    Diff {
        /// Workflow name
        name: String,
        /// Compare against this revision of .cec [default: HEAD]
        rev: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelPinCommand {
    /// Pin a model reference to an indexed file (hash prefix or path) or a URL (downloaded and
    /// verified now), or mark it optional
    Set {
        /// Workflow name
        workflow: String,
        /// The model as the workflow names it (e.g. `sd15.safetensors`)
        model: String,
        /// An indexed file (blake3/sha256 prefix or path) or an http(s) URL
        #[arg(required_unless_present = "optional")]
        file_or_url: Option<String>,
        /// The workflow runs without it: never counted as a missing required model
        #[arg(long)]
        optional: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum NodeMappingCommand {
    /// Say which package provides a node type (or, with --none, that it needs none); then run
    /// `workflow resolve`
    Map {
        /// The node type as the workflow names it (e.g. `MysteryNode`)
        node_type: String,
        /// Registry id, git URL or installed node
        #[arg(required_unless_present = "none", conflicts_with = "none")]
        package: Option<String>,
        /// The type needs no package (resolution skips it)
        #[arg(long)]
        none: bool,
    },
    /// Drop a mapping made with `workflow node map`
    Unmap {
        /// The node type
        node_type: String,
    },
}

#[derive(Debug, Args)]
pub struct PathsArgs {
    /// Workflow JSON files (UI or API format), PNGs with an embedded workflow, or folders (every
    /// .json and .png below them); with several, one run reports each file and a summary
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

impl PathsArgs {
    /// The one file given, when exactly one path that is not a folder was given.
    fn single_file(&self) -> Option<&Path> {
        match self.paths.as_slice() {
            [path] if !path.is_dir() => Some(path),
            _ => None,
        }
    }
}

#[derive(Debug, Args)]
pub struct FileArgs {
    /// A workflow JSON file (UI or API format) or a PNG with embedded workflow
    pub file: PathBuf,
}

/// Read a workflow from JSON or from a PNG's `workflow`/`prompt` text chunks.
fn load(path: &Path) -> CommandResult<WorkflowDocument> {
    document_from_bytes(path, &fs_err::read(path)?)
}

/// [`load`] of bytes already read from `path`.
fn document_from_bytes(path: &Path, bytes: &[u8]) -> CommandResult<WorkflowDocument> {
    if bytes.starts_with(b"\x89PNG") {
        let found = comfydock_workflow::png::extract_workflows(bytes)
            .map_err(|e| CommandError::failed(format!("Failed to read `{}`: {e}", path.display())))?;
        return found.workflow.or(found.prompt).ok_or_else(|| {
            CommandError::failed(format!(
                "`{}` has no embedded workflow (no `workflow` or `prompt` chunk)",
                path.display()
            ))
        });
    }
    WorkflowDocument::parse_bytes(bytes).map_err(|e| workflow_error(path, &e))
}

fn workflow_error(path: &Path, error: &WorkflowError) -> CommandError {
    let failed = CommandError::failed(format!("`{}`: {error}", path.display()));
    match error {
        WorkflowError::SubgraphTooDeep { .. }
        | WorkflowError::TooManyNodes { .. }
        | WorkflowError::ExpansionTooLarge { .. } => failed.with_hint(
            "editor-made workflows stay far below these limits; if this file is yours, open it in ComfyUI and unpack the innermost subgraphs",
        ),
        _ => failed,
    }
}

pub fn run(ctx: &Context, command: &WorkflowCommand) -> CommandResult<ExitStatus> {
    let done = |result: CommandResult| result.map(|()| ExitStatus::Success);
    match command {
        WorkflowCommand::Analyze(args) => match args.single_file() {
            Some(path) => done(analyze_file(ctx, path)),
            None => analyze_files(ctx, &workflow_files(&args.paths)?),
        },
        WorkflowCommand::Validate { paths, object_info } => match paths.single_file() {
            Some(path) => done(validate_file(ctx, path, object_info.as_deref())),
            None => validate_files(ctx, &workflow_files(&paths.paths)?, object_info.as_deref()),
        },
        WorkflowCommand::Convert { file, object_info } => done(convert_file(ctx, &file.file, object_info)),
        WorkflowCommand::List => done(list(ctx)),
        WorkflowCommand::Track { names, all } => done(track(ctx, names, *all)),
        WorkflowCommand::Untrack { name } => done(untrack(ctx, name)),
        WorkflowCommand::Restore { name, rev, force } => done(restore(ctx, name, rev.as_deref(), *force)),
        WorkflowCommand::Diff { name, rev } => done(diff(ctx, name, rev.as_deref())),
        WorkflowCommand::Node(command) => done(node_mapping(ctx, command)),
        WorkflowCommand::Model(command) => done(model_pin(ctx, command)),
        WorkflowCommand::Resolve { name, auto, install } => {
            done(super::resolve::resolve(ctx, name, *auto, *install))
        }
    }
}

/// The analysis of a workflow file's bytes: JSON is read node by node when it can (large
/// workflows stay near their size in memory), a PNG through its embedded workflow.
fn analyze_bytes(
    path: &Path,
    bytes: &[u8],
    options: &AnalysisOptions,
) -> CommandResult<comfydock_workflow::Analysis> {
    if bytes.starts_with(b"\x89PNG") {
        let doc = document_from_bytes(path, bytes)?;
        return analyze(&doc, options).map_err(|e| workflow_error(path, &e));
    }
    comfydock_workflow::analyze_json(bytes, options).map_err(|e| workflow_error(path, &e))
}

fn analyze_file(ctx: &Context, path: &Path) -> CommandResult {
    let bytes = fs_err::read(path)?;
    let setup = AnalyzeSetup::new(ctx)?;
    let analysis = analyze_bytes(path, &bytes, &setup.options)?;
    let claims = setup.claims(ctx, &analysis);
    if ctx.printer.json_mode() {
        ctx.printer.json(&analysis_json(&analysis, &claims));
        return Ok(());
    }
    print_analysis(ctx, path, &analysis, &claims);
    Ok(())
}

/// What analysing any number of files shares: the options (with `-e ENV`, built-ins come from
/// that environment's ComfyUI checkout as well) and the node index, opened (and refreshed) once,
/// when the first analysis is done: a file that is refused leaves the workspace as it was.
struct AnalyzeSetup {
    options: AnalysisOptions,
    env: Option<environment::Environment>,
    index: std::cell::OnceCell<Option<comfydock_environments::nodes::index::NodeIndex>>,
}

/// Packages the node index knows, by custom node type.
type IndexClaims = std::collections::BTreeMap<String, Vec<comfydock_environments::nodes::index::Claim>>;

impl AnalyzeSetup {
    fn new(ctx: &Context) -> CommandResult<Self> {
        let mut options = AnalysisOptions::default();
        let env = if ctx.global.env.is_some() {
            Some(selected(ctx)?)
        } else {
            None
        };
        if let Some(env) = &env {
            options.builtins = comfydock_environments::comfyui_builtins::builtin_nodes(env);
        }
        Ok(Self {
            options,
            env,
            index: std::cell::OnceCell::new(),
        })
    }

    /// Packages the node index knows for each custom node type without a package hint.
    fn claims(&self, ctx: &Context, analysis: &comfydock_workflow::Analysis) -> IndexClaims {
        let mut out = IndexClaims::new();
        let Some(index) = self.index.get_or_init(|| node_index(ctx, self.env.as_ref())) else {
            return out;
        };
        for t in analysis.custom_node_types().filter(|t| t.packages.is_empty()) {
            if let Ok(claims) = index.lookup(&t.node_type)
                && !claims.is_empty()
            {
                out.insert(t.node_type.clone(), claims);
            }
        }
        out
    }
}

/// `--json` of one analysis: the analysis with the node index's packages.
fn analysis_json(analysis: &comfydock_workflow::Analysis, claims: &IndexClaims) -> serde_json::Value {
    let mut value = serde_json::to_value(analysis).unwrap_or_default();
    value["index_packages"] = serde_json::to_value(claims).unwrap_or_default();
    value
}

fn print_analysis(ctx: &Context, path: &Path, analysis: &comfydock_workflow::Analysis, claims: &IndexClaims) {
    ctx.printer.data(format!(
        "{}: {} nodes, {} subgraph definitions",
        path.display(),
        analysis.node_count,
        analysis.subgraph_definition_count
    ));
    let custom: Vec<_> = analysis
        .node_types
        .iter()
        .filter(|t| t.category == NodeCategory::Custom)
        .collect();
    ctx.printer.data(format!("Custom node types ({}):", custom.len()));
    for t in custom {
        let packages: Vec<String> = t
            .packages
            .iter()
            .map(|p| {
                let id = p
                    .cnr_id
                    .clone()
                    .or_else(|| p.aux_id.clone())
                    .unwrap_or_else(|| "?".into());
                match &p.ver {
                    Some(v) => format!("{id}@{v}"),
                    None => id,
                }
            })
            .collect();
        let mut packages: Vec<String> = packages;
        if packages.is_empty() {
            packages = claims
                .get(&t.node_type)
                .map(|c| {
                    c.iter()
                        .map(|c| format!("{} (node index: {:?})", c.package, c.source).to_lowercase())
                        .collect()
                })
                .unwrap_or_default();
        }
        let packages = if packages.is_empty() {
            "package unknown".to_owned()
        } else {
            packages.join(", ")
        };
        ctx.printer.data(format!(
            "  {}  ({packages}; nodes {})",
            t.node_type,
            t.node_ids.join(", ")
        ));
    }
    if !analysis.legacy_node_versions.is_empty() {
        let packs: Vec<String> = analysis
            .legacy_node_versions
            .iter()
            .filter(|(pack, _)| pack.as_str() != "comfy-core")
            .map(|(pack, ver)| format!("{pack}@{}", &ver[..ver.len().min(12)]))
            .collect();
        ctx.printer.data(format!(
            "Packs named in extra.node_versions: {}",
            packs.join(", ")
        ));
    }
    ctx.printer.data(format!("Models ({}):", analysis.models.len()));
    for m in &analysis.models {
        ctx.printer.data(format!(
            "  {}  [{}] {:?}{}",
            m.relative_path,
            m.folder.as_deref().unwrap_or("unknown folder"),
            m.criticality,
            if m.disabled { " (node disabled)" } else { "" }
        ));
    }
    if !analysis.file_inputs.is_empty() {
        ctx.printer
            .data(format!("Input files ({}):", analysis.file_inputs.len()));
        for f in &analysis.file_inputs {
            ctx.printer
                .data(format!("  {}", serde_json::to_string(f).unwrap_or_default()));
        }
    }
}

/// The node index, for packages of custom node types without a package hint. With an
/// environment it is refreshed first (installed nodes, ComfyUI-Manager's map); without one the
/// workspace index is read as it is. Outside a workspace there is no index.
fn node_index(
    ctx: &Context,
    env: Option<&environment::Environment>,
) -> Option<comfydock_environments::nodes::index::NodeIndex> {
    let workspace = ctx.workspace().ok()?;
    if let Some(env) = env {
        let settings = ctx.settings(&workspace);
        if let Ok(tools) = environment::tools(&workspace, &settings, &ctx.reporter) {
            let node_ctx = comfydock_environments::nodes::NodeContext {
                workspace: &workspace,
                settings: &settings,
                tools: &tools,
                env,
                reporter: &ctx.reporter,
            };
            if let Err(err) = comfydock_environments::nodes::ops::refresh_index(&node_ctx) {
                ctx.printer
                    .warn(format!("could not refresh the node index: {err}"));
            }
        }
    }
    comfydock_environments::nodes::index::NodeIndex::open(&workspace.metadata_dir().join("node_index.db"))
        .ok()
}

fn validate_file(ctx: &Context, path: &Path, object_info: Option<&Path>) -> CommandResult {
    let doc = load(path)?;
    let definitions = object_info.map(read_json).transpose()?;
    let known: Option<HashSet<String>> = definitions.as_ref().map(node_types_from_object_info);
    let issues = validate(
        &doc,
        &ValidationOptions {
            known_node_types: known.as_ref(),
            node_definitions: definitions.as_ref(),
        },
    );
    if ctx.printer.json_mode() {
        ctx.printer.json(&issues);
    } else {
        for issue in &issues {
            let level = match issue.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            ctx.printer.data(format!("{level}: {}", issue.message));
        }
    }
    let errors = issues.iter().filter(|i| i.severity == Severity::Error).count();
    if errors > 0 {
        return Err(CommandError::failed(format!(
            "`{}` has {errors} error(s)",
            path.display()
        )));
    }
    ctx.printer.status("Valid", path.display());
    Ok(())
}

/// The workflow files named by `paths`: files as given, folders as every `.json` and `.png`
/// below them (hidden entries skipped), each folder's files in name order.
fn workflow_files(paths: &[PathBuf]) -> CommandResult<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        let mut entries: Vec<_> = fs_err::read_dir(dir)?
            .map(|entry| entry.map(|entry| entry.path()))
            .collect::<std::io::Result<_>>()?;
        entries.sort();
        for path in entries {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                walk(&path, out)?;
            } else if path
                .extension()
                .is_some_and(|ext| ext.eq_ignore_ascii_case("json") || ext.eq_ignore_ascii_case("png"))
            {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let before = files.len();
            walk(path, &mut files)?;
            if files.len() == before {
                return Err(CommandError::failed(format!(
                    "`{}` holds no workflow (.json or .png) files",
                    path.display()
                )));
            }
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// A file of a batch that could not be read or analysed.
#[derive(Debug, serde::Serialize)]
struct FileFailure {
    path: PathBuf,
    error: String,
}

impl FileFailure {
    /// The failure of one file of many, warned about at once unless the output is JSON.
    fn shown(ctx: &Context, path: &Path, error: &CommandError) -> Self {
        let error = error.one_line();
        if !ctx.printer.json_mode() {
            ctx.printer.warn(&error);
        }
        Self {
            path: path.to_owned(),
            error,
        }
    }
}

/// `workflow analyze` of several files in one run: each file's analysis as the single-file form
/// prints it, failures as warnings, then a summary (`--json`: one document with every file, the
/// failures and the summary, and nothing else). Fails (exit 1) when any file could not be
/// analysed.
fn analyze_files(ctx: &Context, files: &[PathBuf]) -> CommandResult<ExitStatus> {
    let setup = AnalyzeSetup::new(ctx)?;
    let mut results = Vec::new();
    let mut failures = Vec::new();
    let mut custom_types = std::collections::BTreeSet::new();
    let mut models = std::collections::BTreeSet::new();
    for path in files {
        let analysed = fs_err::read(path)
            .map_err(CommandError::from)
            .and_then(|bytes| analyze_bytes(path, &bytes, &setup.options));
        let analysis = match analysed {
            Ok(analysis) => analysis,
            Err(error) => {
                failures.push(FileFailure::shown(ctx, path, &error));
                continue;
            }
        };
        let claims = setup.claims(ctx, &analysis);
        custom_types.extend(analysis.custom_node_types().map(|t| t.node_type.clone()));
        models.extend(analysis.models.iter().map(|m| m.relative_path.clone()));
        if ctx.printer.json_mode() {
            results.push(json!({ "path": path, "analysis": analysis_json(&analysis, &claims) }));
        } else {
            print_analysis(ctx, path, &analysis, &claims);
        }
    }
    let summary = json!({
        "files": files.len(),
        "analyzed": files.len() - failures.len(),
        "failed": failures.len(),
        "custom_node_types": custom_types.len(),
        "models": models.len(),
    });
    if ctx.printer.json_mode() {
        ctx.printer
            .json(&json!({ "files": results, "failures": failures, "summary": summary }));
    } else {
        ctx.printer.status(
            "Analyzed",
            format!(
                "{} of {} workflows: {} distinct custom node types, {} distinct models",
                files.len() - failures.len(),
                files.len(),
                custom_types.len(),
                models.len()
            ),
        );
    }
    batch_status(
        ctx,
        failures.len(),
        format!(
            "{} of {} workflows could not be analyzed",
            failures.len(),
            files.len()
        ),
    )
}

/// `workflow validate` of several files in one run: every issue prefixed with its file, then a
/// summary (`--json`: one document, and nothing else). Fails (exit 1) when any file has an error
/// or cannot be read.
fn validate_files(ctx: &Context, files: &[PathBuf], object_info: Option<&Path>) -> CommandResult<ExitStatus> {
    let definitions = object_info.map(read_json).transpose()?;
    let known: Option<HashSet<String>> = definitions.as_ref().map(node_types_from_object_info);
    let options = ValidationOptions {
        known_node_types: known.as_ref(),
        node_definitions: definitions.as_ref(),
    };
    let mut results = Vec::new();
    let mut failures = Vec::new();
    let (mut invalid, mut errors, mut warnings) = (0, 0, 0);
    for path in files {
        let issues = match load(path) {
            Ok(doc) => validate(&doc, &options),
            Err(error) => {
                failures.push(FileFailure::shown(ctx, path, &error));
                continue;
            }
        };
        let file_errors = issues.iter().filter(|i| i.severity == Severity::Error).count();
        errors += file_errors;
        warnings += issues.len() - file_errors;
        invalid += usize::from(file_errors > 0);
        if ctx.printer.json_mode() {
            results.push(json!({ "path": path, "valid": file_errors == 0, "issues": issues }));
        } else {
            for issue in &issues {
                let level = match issue.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                };
                ctx.printer
                    .data(format!("{}: {level}: {}", path.display(), issue.message));
            }
        }
    }
    let valid = files.len() - failures.len() - invalid;
    let summary = json!({
        "files": files.len(),
        "valid": valid,
        "invalid": invalid,
        "unreadable": failures.len(),
        "errors": errors,
        "warnings": warnings,
    });
    if ctx.printer.json_mode() {
        ctx.printer
            .json(&json!({ "files": results, "failures": failures, "summary": summary }));
    } else {
        ctx.printer.status(
            "Validated",
            format!(
                "{} workflows: {valid} valid, {invalid} with errors, {} unreadable ({errors} errors, {warnings} warnings)",
                files.len(),
                failures.len()
            ),
        );
    }
    batch_status(
        ctx,
        invalid + failures.len(),
        format!(
            "{} of {} workflows are invalid or unreadable",
            invalid + failures.len(),
            files.len()
        ),
    )
}

/// How a batch ends: success without failures; otherwise exit 1, with `error: message` in
/// text mode, and in `--json` mode nothing more than the document already printed.
fn batch_status(ctx: &Context, failures: usize, message: String) -> CommandResult<ExitStatus> {
    if failures == 0 {
        Ok(ExitStatus::Success)
    } else if ctx.printer.json_mode() {
        Ok(ExitStatus::Failure)
    } else {
        Err(CommandError::failed(message))
    }
}

fn read_json(path: &Path) -> CommandResult<serde_json::Value> {
    let text = fs_err::read_to_string(path)?;
    serde_json::from_str(&text).map_err(|e| {
        CommandError::failed(format!(
            "`{}` is not valid JSON at line {}, column {}",
            path.display(),
            e.line(),
            e.column()
        ))
    })
}

fn convert_file(ctx: &Context, path: &Path, object_info: &Path) -> CommandResult {
    let doc = load(path)?;
    let WorkflowDocument::Ui(ui) = &doc else {
        return Err(CommandError::failed(format!(
            "`{}` is already in API format",
            path.display()
        )));
    };
    let conversion = convert_to_api(ui, &read_json(object_info)?).map_err(|e| workflow_error(path, &e))?;
    for warning in &conversion.warnings {
        ctx.printer
            .warn(serde_json::to_string(warning).unwrap_or_default());
    }
    ctx.printer.json(&conversion.prompt);
    Ok(())
}

fn selected(ctx: &Context) -> CommandResult<environment::Environment> {
    let workspace = ctx.workspace()?;
    Ok(environment::select(&workspace, ctx.global.env.as_deref())?)
}

fn list(ctx: &Context) -> CommandResult {
    let env = selected(ctx)?;
    let entries = tracking::list(&env)?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&entries);
        return Ok(());
    }
    if entries.is_empty() {
        ctx.printer.info(format!(
            "No workflows in {}",
            tracking::comfyui_workflows_dir(&env).display()
        ));
    }
    for e in entries {
        let tracked = if e.tracked { "tracked  " } else { "untracked" };
        ctx.printer.data(format!(
            "{tracked}  {:<9} {}",
            format!("{:?}", e.state).to_lowercase(),
            e.name
        ));
    }
    Ok(())
}

fn track(ctx: &Context, names: &[String], all: bool) -> CommandResult {
    if names.is_empty() && !all {
        return Err(CommandError::usage(
            "Name the workflows to track, or pass `--all`",
        ));
    }
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let _lock = ctx.lock(&workspace)?;
    let report = tracking::track(&env, names, all)?;
    let added = &report.added;
    if ctx.printer.json_mode() {
        ctx.printer
            .json(&json!({ "tracked": added, "skipped": report.skipped }));
        return Ok(());
    }
    for skipped in &report.skipped {
        ctx.printer.warn(format!(
            "workflow `{}` is not tracked: its name is not portable (`import` would refuse it); rename it in ComfyUI, e.g. to `{}`",
            skipped.name, skipped.suggestion
        ));
    }
    if added.is_empty() {
        ctx.printer.info("Nothing new to track");
    }
    for name in added {
        ctx.printer.status("Tracking", name);
    }
    if !added.is_empty() {
        ctx.printer.hint(format!(
            "`comfydock -e {} commit -m MESSAGE` copies them into .cec",
            env.name
        ));
    }
    Ok(())
}

fn untrack(ctx: &Context, name: &str) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let _lock = ctx.lock(&workspace)?;
    tracking::untrack(&env, name)?;
    if ctx.printer.json_mode() {
        ctx.printer
            .json(&json!({ "untracked": tracking::normalize_name(name) }));
    } else {
        ctx.printer.status("Untracked", tracking::normalize_name(name));
    }
    Ok(())
}

fn restore(ctx: &Context, name: &str, rev: Option<&str>, force: bool) -> CommandResult {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let _lock = ctx.lock(&workspace)?;
    let git = Git::find()?;
    let rev = rev.unwrap_or("HEAD");
    let restored = tracking::restore(&git, &workspace, &env, name, Some(rev), force)?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&json!({
            "restored": tracking::normalize_name(name),
            "path": restored.path,
            "rev": rev,
            "trashed": restored.trashed,
        }));
    } else {
        if let Some(kept) = &restored.trashed {
            ctx.printer
                .status("Kept", format!("the replaced file as {}", kept.display()));
        }
        ctx.printer.status(
            "Restored",
            format!(
                "{} from {rev} to {}",
                tracking::normalize_name(name),
                restored.path.display()
            ),
        );
        ctx.printer
            .hint("reload the workflow in the ComfyUI browser tab: the open tab still shows the old version");
    }
    Ok(())
}

fn model_pin(ctx: &Context, command: &ModelPinCommand) -> CommandResult {
    use comfydock_resolution::model_pin::{self, ModelAnswer};
    let ModelPinCommand::Set {
        workflow,
        model,
        file_or_url,
        optional,
    } = command;
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let _lock = ctx.lock(&workspace)?;
    let settings = ctx.settings(&workspace);
    let tools = environment::tools(&workspace, &settings, &ctx.reporter)?;
    let resolve_ctx = comfydock_resolution::resolve::ResolveContext {
        workspace: &workspace,
        settings: &settings,
        tools: &tools,
        env: &env,
        reporter: &ctx.reporter,
    };
    let mut answers = Vec::new();
    if let Some(value) = file_or_url {
        let lower = value.to_ascii_lowercase();
        answers.push(if lower.starts_with("http://") || lower.starts_with("https://") {
            ModelAnswer::Url(value)
        } else {
            ModelAnswer::File(value)
        });
    }
    if *optional {
        answers.push(ModelAnswer::Optional);
    }
    let mut last = None;
    for answer in answers {
        last = Some(model_pin::set(&resolve_ctx, workflow, model, answer)?);
    }
    let set = last.expect("clap requires a file, a URL or --optional");
    if ctx.printer.json_mode() {
        ctx.printer.json(&set);
        return Ok(());
    }
    let what = match &set.blake3 {
        Some(b) => format!(
            "to {} ({})",
            comfydock_foundation::display_text::short_hash(b),
            set.criticality.as_str()
        ),
        None => "as optional".to_owned(),
    };
    ctx.printer
        .status("Pinned", format!("`{}` of `{}` {what}", set.model, set.workflow));
    ctx.printer.hint(format!(
        "commit it with `comfydock -e {} commit -m MESSAGE`",
        env.name
    ));
    Ok(())
}

fn node_mapping(ctx: &Context, command: &NodeMappingCommand) -> CommandResult {
    use comfydock_resolution::node_mapping;
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let _lock = ctx.lock(&workspace)?;
    let (node_type, mapped, previous) = match command {
        NodeMappingCommand::Map {
            node_type, package, ..
        } => (
            node_type,
            Some(package.clone()),
            node_mapping::map(&env, node_type, package.as_deref())?,
        ),
        NodeMappingCommand::Unmap { node_type } => {
            let previous = node_mapping::unmap(&env, node_type)?;
            if previous.is_none() {
                return Err(CommandError::failed(format!(
                    "Node type `{node_type}` has no mapping in `{}`",
                    env.name
                ))
                .with_hint(format!(
                    "map it with `comfydock -e {} workflow node map {node_type} PACKAGE`",
                    env.name
                )));
            }
            (node_type, None, previous)
        }
    };
    if ctx.printer.json_mode() {
        ctx.printer.json(&json!({
            "node_type": node_type,
            "mapping": mapped.map(|p| p.map_or(json!(false), |p| json!(p))),
            "previous": previous,
        }));
        return Ok(());
    }
    match &mapped {
        Some(Some(package)) => ctx
            .printer
            .status("Mapped", format!("`{node_type}` to package `{package}`")),
        Some(None) => ctx.printer.status(
            "Mapped",
            format!("`{node_type}` to no package (resolution skips it)"),
        ),
        None => ctx.printer.status("Unmapped", format!("`{node_type}`")),
    }
    ctx.printer.hint(format!(
        "apply it with `comfydock -e {} workflow resolve NAME` (add `--install` to install the package)",
        env.name
    ));
    Ok(())
}

fn diff(ctx: &Context, name: &str, rev: Option<&str>) -> CommandResult {
    let env = selected(ctx)?;
    let git = Git::find()?;
    let old_bytes = tracking::committed(&git, &env, name, Some(rev.unwrap_or("HEAD")))?;
    let live = tracking::live_path(&env, name);
    let new_bytes = fs_err::read(&live)?;
    let old = WorkflowDocument::parse_bytes(&old_bytes).map_err(|e| workflow_error(Path::new(name), &e))?;
    let new = WorkflowDocument::parse_bytes(&new_bytes).map_err(|e| workflow_error(&live, &e))?;
    let d = comfydock_workflow::diff(&old, &new).map_err(|e| workflow_error(&live, &e))?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&d);
        return Ok(());
    }
    if d.is_empty() {
        ctx.printer.data("No semantic differences");
        return Ok(());
    }
    let label = |id: &str, ty: &str, title: &Option<String>| match title {
        Some(t) => format!("node {id} \"{t}\" ({ty})"),
        None => format!("node {id} ({ty})"),
    };
    for n in &d.nodes_added {
        ctx.printer
            .data(format!("+ {}", label(&n.node_id, &n.node_type, &n.title)));
    }
    for n in &d.nodes_removed {
        ctx.printer
            .data(format!("- {}", label(&n.node_id, &n.node_type, &n.title)));
    }
    for w in &d.widgets_changed {
        let show =
            |v: &Option<serde_json::Value>| v.as_ref().map_or("(none)".to_owned(), ToString::to_string);
        ctx.printer.data(format!(
            "~ {} {}: {} -> {}",
            label(&w.node_id, &w.node_type, &w.title),
            w.widget,
            show(&w.old),
            show(&w.new)
        ));
    }
    for m in d
        .models_added
        .iter()
        .chain(&d.models_removed)
        .chain(&d.models_changed)
    {
        ctx.printer.data(format!(
            "~ model on node {} ({}): {} -> {}",
            m.node_id,
            m.node_type,
            m.old.as_deref().unwrap_or("(none)"),
            m.new.as_deref().unwrap_or("(none)")
        ));
    }
    for m in &d.modes_changed {
        ctx.printer
            .data(format!("~ mode {}", serde_json::to_string(m).unwrap_or_default()));
    }
    Ok(())
}
