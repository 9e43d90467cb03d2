//! `comfydock model ...`: model roots, the content-addressed index, verified downloads.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use comfydock_foundation::display_text::human_bytes;

use clap::{Args, Subcommand};
use comfydock_environments::workspace::Workspace;
use comfydock_environments::workspace_models;
use comfydock_models::download::{DownloadReporter, DownloadRequest, ExpectedHash};
use comfydock_models::extra_paths::import_extra_model_paths;
use comfydock_models::index::{ModelIndex, ModelRecord};
use comfydock_models::query::{FindQuery, ModelId};
use comfydock_models::roots::ModelRoot;
use comfydock_models::scan::{ScanIssue, ScanOptions, ScanReporter};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::Context;
use crate::error::{CommandError, CommandResult};
use crate::printer::Printer;

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Manage the folders models are indexed from (ComfyUI sees them through extra_model_paths.yaml)
    #[command(subcommand)]
    Root(RootCommand),
    /// Index every model file under the roots (incremental: unchanged files are not read)
    Scan {
        /// Scan only this root
        #[arg(long, value_name = "PATH")]
        root: Option<PathBuf>,
        /// Also compute sha256 of newly hashed files
        #[arg(long)]
        sha256: bool,
    },
    /// List indexed models
    List,
    /// Find models by name or path fragment
    Find {
        /// Text to look for in file names and paths
        query: String,
        /// Only this models folder (checkpoints, loras, ...)
        #[arg(long)]
        folder: Option<String>,
    },
    /// Show one model: hashes, locations, sources
    Show {
        /// A blake3/sha256 prefix (8+ hex) or a path
        id: String,
    },
    /// Compute and store sha256 (for Civitai/Hugging Face lookups)
    Hash {
        #[command(flatten)]
        select: SelectArgs,
        /// The hash to compute: sha256 (blake3 is always known)
        #[arg(long, default_value_t = true)]
        sha256: bool,
    },
    /// Models stored more than once, and different models sharing a file name
    Duplicates,
    /// Re-hash models and report any that changed or vanished
    Verify(SelectArgs),
    /// Download models with resume, retries and hash verification, then index them
    Download(DownloadArgs),
    /// Look models up by sha256 on Civitai and record the sources found
    #[command(subcommand)]
    Sources(SourcesCommand),
    /// Record where a model can be downloaded from
    AddSource {
        /// A blake3/sha256 prefix (8+ hex) or a path
        id: String,
        /// Download URL
        url: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RootCommand {
    /// List model roots (the first is the default download target)
    List,
    /// Add a model root
    Add {
        /// Folder holding ComfyUI-style model folders (checkpoints/, loras/, ...)
        path: PathBuf,
        /// Make it the default root (downloads go there)
        #[arg(long)]
        default: bool,
    },
    /// Remove a model root (files are never touched; their index locations are dropped)
    Remove {
        /// The root's folder
        path: PathBuf,
    },
    /// Adopt the roots of an existing ComfyUI's extra_model_paths.yaml
    Import {
        /// Path to extra_model_paths.yaml
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum SourcesCommand {
    /// Look up sources by sha256 on Civitai
    Find(SelectArgs),
}

#[derive(Debug, Args)]
pub struct SelectArgs {
    /// A blake3/sha256 prefix (8+ hex) or a path
    #[arg(required_unless_present = "all")]
    pub id: Option<String>,
    /// Every indexed model
    #[arg(long, conflicts_with = "id")]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// URLs to download (Hugging Face, Civitai pages, or any http(s) URL)
    #[arg(required = true)]
    pub urls: Vec<String>,
    /// Target `FOLDER/` or `FOLDER/NAME` under the default root (e.g. `checkpoints/`)
    #[arg(long, value_name = "FOLDER/NAME")]
    pub to: Option<String>,
    /// Expected sha256; a mismatch leaves nothing behind
    #[arg(long, value_name = "HEX", conflicts_with = "blake3")]
    pub sha256: Option<String>,
    /// Expected blake3; a mismatch leaves nothing behind
    #[arg(long, value_name = "HEX")]
    pub blake3: Option<String>,
    /// Downloads at once
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
}

pub fn run(ctx: &Context, command: &ModelCommand) -> CommandResult {
    let workspace = ctx.workspace()?;
    match command {
        ModelCommand::Root(command) => root(ctx, &workspace, command),
        ModelCommand::Scan { root, sha256 } => scan(ctx, &workspace, root.as_deref(), *sha256),
        ModelCommand::List => print_models(ctx, &workspace, None),
        ModelCommand::Find { query, folder } => {
            let query = FindQuery {
                text: Some(query.clone()),
                folder: folder.clone(),
            };
            print_models(ctx, &workspace, Some(&query))
        }
        ModelCommand::Show { id } => {
            let model = workspace_models::open_index(&workspace)?.resolve(&ModelId::parse(id))?;
            if ctx.printer.json_mode() {
                ctx.printer.json(&model);
            } else {
                print_model_detail(ctx.printer, &model);
            }
            Ok(())
        }
        ModelCommand::Hash { select, sha256: _ } => {
            let _lock = ctx.lock(&workspace)?;
            let mut index = workspace_models::open_index(&workspace)?;
            let models = selected_models(&index, select)?;
            let report = index.ensure_sha256(&models)?;
            if ctx.printer.json_mode() {
                ctx.printer.json(&report);
            } else {
                for (blake3, sha256) in &report.hashes {
                    ctx.printer.data(format!(
                        "{}  sha256 {sha256}",
                        comfydock_foundation::display_text::truncate(blake3, 16)
                    ));
                }
                for issue in &report.errors {
                    ctx.printer
                        .warn(format!("{}: {}", issue.path.display(), issue.message));
                }
            }
            Ok(())
        }
        ModelCommand::Duplicates => {
            let report = workspace_models::open_index(&workspace)?.duplicates()?;
            if ctx.printer.json_mode() {
                ctx.printer.json(&report);
                return Ok(());
            }
            for model in &report.same_content {
                ctx.printer.data(format!(
                    "same content ({}, {} each):",
                    comfydock_foundation::display_text::truncate(&model.blake3, 16),
                    human_bytes(model.size)
                ));
                for l in &model.locations {
                    ctx.printer.data(format!("  {}", l.path().display()));
                }
            }
            for clash in &report.same_name {
                ctx.printer
                    .data(format!("same name `{}`, different content:", clash.file_name));
                for m in &clash.models {
                    let named = m.locations.iter().filter(|l| {
                        l.path().file_name().and_then(|n| n.to_str()) == Some(clash.file_name.as_str())
                    });
                    for l in named {
                        ctx.printer.data(format!(
                            "  {}  {:>9}  {}",
                            comfydock_foundation::display_text::truncate(&m.blake3, 16),
                            human_bytes(m.size),
                            l.path().display()
                        ));
                    }
                }
            }
            Ok(())
        }
        ModelCommand::Verify(select) => {
            let index = workspace_models::open_index(&workspace)?;
            let models = selected_models(&index, select)?;
            let report = index.verify(&models);
            if ctx.printer.json_mode() {
                ctx.printer.json(&report);
            } else {
                for entry in &report.entries {
                    ctx.printer.data(format!(
                        "{}  {}  {}",
                        comfydock_foundation::display_text::truncate(&entry.blake3, 16),
                        serde_json::to_value(&entry.status)
                            .ok()
                            .and_then(|v| v.get("status").cloned())
                            .map_or_else(
                                || format!("{:?}", entry.status),
                                |s| s.as_str().unwrap_or_default().to_owned()
                            ),
                        entry.path.display()
                    ));
                }
            }
            if report.is_clean() {
                Ok(())
            } else {
                Err(CommandError::failed("Some models changed or are missing")
                    .with_hint("re-index them with `comfydock model scan`"))
            }
        }
        ModelCommand::Download(args) => download(ctx, &workspace, args),
        ModelCommand::Sources(SourcesCommand::Find(select)) => {
            let _lock = ctx.lock(&workspace)?;
            let mut index = workspace_models::open_index(&workspace)?;
            let models = selected_models(&index, select)?;
            let downloader = workspace_models::downloader(&ctx.settings(&workspace), 4)?;
            let search = workspace_models::block_on(index.find_sources(&downloader, &models))??;
            let short = |blake3: &str| comfydock_foundation::display_text::truncate(blake3, 16).to_owned();
            if ctx.printer.json_mode() {
                ctx.printer.json(&search);
            } else {
                for found in &search.found {
                    let name = found.file.model_name.as_deref().unwrap_or("?");
                    let state = if found.added { "added" } else { "already recorded" };
                    ctx.printer.data(format!(
                        "{}  {name} (Civitai version {})  {}  {state}",
                        short(&found.blake3),
                        found.file.version_id,
                        found.file.download_url
                    ));
                }
                for blake3 in &search.not_found {
                    ctx.printer.data(format!("{}  no source found", short(blake3)));
                }
            }
            match search.errors.as_slice() {
                [] => Ok(()),
                errors => {
                    for (blake3, message) in errors {
                        ctx.printer
                            .warn(format!("{}: the look-up failed: {message}", short(blake3)));
                    }
                    Err(CommandError::failed(format!(
                        "{} of {} look-ups failed; the sources found were recorded",
                        errors.len(),
                        models.len()
                    ))
                    .with_hint("check `comfydock config get civitai.url` and your network, then run the same command again"))
                }
            }
        }
        ModelCommand::AddSource { id, url } => {
            let kind = workspace_models::endpoints(&ctx.settings(&workspace))?.classify(url);
            // Sources are stored in the index and travel into manifests, bundles and deploy
            // files: credentials belong in the token settings, never in a source.
            if let Some(what) = comfydock_foundation::redact::credentials_in(url) {
                let key = match kind {
                    comfydock_models::index::SourceKind::Civitai => "tokens.civitai",
                    _ => "tokens.huggingface",
                };
                return Err(CommandError::failed(format!(
                    "Refusing to record `{}`: it carries credentials ({what})",
                    comfydock_foundation::redact::RedactedUrl(url)
                ))
                .with_hint(format!(
                    "add the URL without them, and keep the token in the settings: `comfydock config set {key} TOKEN` (sent only to its own host); nothing was recorded"
                )));
            }
            let _lock = ctx.lock(&workspace)?;
            let mut index = workspace_models::open_index(&workspace)?;
            let model = index.resolve(&ModelId::parse(id))?;
            let added = index.add_source(model.id, url, kind)?;
            if ctx.printer.json_mode() {
                ctx.printer
                    .json(&json!({ "blake3": model.blake3, "url": url, "added": added }));
            } else if added {
                ctx.printer.status(
                    "Added",
                    format!(
                        "source {url} to {}",
                        comfydock_foundation::display_text::truncate(&model.blake3, 16)
                    ),
                );
            } else {
                ctx.printer.info("That source was already recorded");
            }
            Ok(())
        }
    }
}

fn root(ctx: &Context, workspace: &Workspace, command: &RootCommand) -> CommandResult {
    if let RootCommand::List = command {
        let roots = workspace_models::load_roots(workspace)?;
        if ctx.printer.json_mode() {
            ctx.printer.json(&roots.roots);
        } else {
            for (i, root) in roots.roots.iter().enumerate() {
                let default = if i == 0 { "  (default)" } else { "" };
                ctx.printer.data(format!("{}{default}", root.path.display()));
            }
        }
        return Ok(());
    }
    let _lock = ctx.lock(workspace)?;
    let mut roots = workspace_models::load_roots(workspace)?;
    match command {
        RootCommand::List => unreachable!("handled above"),
        RootCommand::Add { path, default } => {
            let path = std::path::absolute(path)?;
            roots.add(ModelRoot::standard(&path), *default)?;
            ctx.printer
                .status("Added", format!("model root {}", path.display()));
            ctx.printer.hint("index it with `comfydock model scan`");
        }
        RootCommand::Remove { path } => {
            let path = std::path::absolute(path)?;
            let removed = roots.remove(&path)?;
            workspace_models::open_index(workspace)?.forget_root(&removed)?;
            ctx.printer.status(
                "Removed",
                format!("model root {} (files untouched)", path.display()),
            );
        }
        RootCommand::Import { file } => {
            for imported in import_extra_model_paths(file)? {
                ctx.printer.status(
                    "Adopted",
                    format!(
                        "{} (section `{}`)",
                        imported.root.path.display(),
                        imported.section
                    ),
                );
                roots.add(imported.root, imported.is_default)?;
            }
        }
    }
    roots.save(&workspace.model_roots_path())?;
    workspace_models::refresh_model_paths(workspace)?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&roots.roots);
    }
    Ok(())
}

fn selected_models(index: &ModelIndex, select: &SelectArgs) -> CommandResult<Vec<ModelRecord>> {
    match &select.id {
        Some(id) => Ok(vec![index.resolve(&ModelId::parse(id))?]),
        None => Ok(index.list()?),
    }
}

fn scan(ctx: &Context, workspace: &Workspace, only: Option<&Path>, sha256: bool) -> CommandResult {
    let _lock = ctx.lock(workspace)?;
    let mut roots = workspace_models::load_roots(workspace)?.roots;
    if let Some(only) = only {
        let only = std::path::absolute(only)?;
        roots.retain(|r| r.path == only);
        if roots.is_empty() {
            return Err(
                CommandError::failed(format!("`{}` is not a model root", only.display())).with_hint(format!(
                    "add it with `comfydock model root add {}`",
                    only.display()
                )),
            );
        }
    }
    let reporter = ScanProgress::new(ctx.printer);
    let summary = workspace_models::open_index(workspace)?.scan(
        &roots,
        ScanOptions {
            compute_sha256: sha256,
        },
        &reporter,
    )?;
    reporter.finish();
    if ctx.printer.json_mode() {
        ctx.printer.json(&summary);
        return Ok(());
    }
    ctx.printer.status(
        "Scanned",
        format!(
            "{} files: {} hashed ({} bytes read), {} unchanged, {} skipped, {} new models, {} locations removed",
            summary.files_seen,
            summary.files_hashed,
            summary.bytes_read,
            summary.files_unchanged,
            summary.files_skipped,
            summary.models_added,
            summary.locations_removed.len()
        ),
    );
    for issue in &summary.errors {
        ctx.printer
            .warn(format!("{}: {}", issue.path.display(), issue.message));
    }
    Ok(())
}

/// A byte progress bar for scans, only on a terminal.
struct ScanProgress {
    printer: Printer,
    bar: Mutex<Option<ProgressBar>>,
}

impl ScanProgress {
    fn new(printer: Printer) -> Self {
        Self {
            printer,
            bar: Mutex::new(None),
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().expect("progress lock").take() {
            bar.finish_and_clear();
        }
    }
}

impl ScanReporter for ScanProgress {
    fn hashing_started(&self, files: u64, bytes: u64) {
        if !self.printer.show_progress() {
            return;
        }
        let bar = ProgressBar::new(bytes).with_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(format!("Hashing {files} files"));
        *self.bar.lock().expect("progress lock") = Some(bar);
    }

    fn file_hashed(&self, _path: &Path, bytes: u64) {
        if let Some(bar) = &*self.bar.lock().expect("progress lock") {
            bar.inc(bytes);
        }
    }

    fn issue(&self, _issue: &ScanIssue) {}
}

fn download(ctx: &Context, workspace: &Workspace, args: &DownloadArgs) -> CommandResult {
    let _lock = ctx.lock(workspace)?;
    let root = workspace_models::default_root(workspace)?;
    let expected = match (&args.sha256, &args.blake3) {
        (Some(h), _) => Some(ExpectedHash::Sha256(h.clone())),
        (_, Some(h)) => Some(ExpectedHash::Blake3(h.clone())),
        _ => None,
    };
    let requests: Vec<DownloadRequest> = args
        .urls
        .iter()
        .map(|url| DownloadRequest {
            url: url.clone(),
            to: args.to.clone(),
            expected: expected.clone(),
        })
        .collect();
    let client = workspace_models::downloader(&ctx.settings(workspace), args.jobs)?;
    let reporter = DownloadProgress::new(ctx.printer);
    let results = workspace_models::download_blocking(&client, &root, &requests, Some(&reporter))?;
    let mut index = workspace_models::open_index(workspace)?;
    let mut failures = Vec::new();
    // Whether any failure is worth re-running (a network error, not a wrong hash or a bad `--to`).
    let mut retryable = false;
    let mut succeeded = Vec::new();
    for (request, result) in requests.iter().zip(results) {
        match result {
            Ok(downloaded) => {
                index.record_download(&downloaded)?;
                if !ctx.printer.json_mode() {
                    ctx.printer.status(
                        "Downloaded",
                        format!(
                            "{} ({} bytes, blake3 {})",
                            downloaded.path.display(),
                            downloaded.size,
                            comfydock_foundation::display_text::truncate(&downloaded.blake3, 16)
                        ),
                    );
                }
                succeeded.push(downloaded);
            }
            Err(err) => {
                retryable |= err.is_retryable();
                ctx.printer.warn(format!(
                    "{}: {}",
                    comfydock_models::endpoints::redact_url(&request.url),
                    err
                ));
                if let Some(hint) = comfydock_foundation::Hinted::hint(&err) {
                    ctx.printer.info(format!("  {hint}"));
                }
                failures.push(request.url.clone());
            }
        }
    }
    if ctx.printer.json_mode() {
        ctx.printer.json(&json!({ "downloaded": succeeded, "failed": failures.iter().map(|u| comfydock_models::endpoints::redact_url(u)).collect::<Vec<_>>() }));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        let failed = CommandError::failed(format!(
            "{} of {} downloads failed",
            failures.len(),
            requests.len()
        ));
        Err(if retryable {
            failed.with_hint("re-run the same command: partial downloads resume from their .part files")
        } else {
            failed
        })
    }
}

/// Per-download byte bars on a terminal; plain retry notes otherwise.
struct DownloadProgress {
    printer: Printer,
    bars: Option<indicatif::MultiProgress>,
    active: Mutex<std::collections::BTreeMap<usize, ProgressBar>>,
}

impl DownloadProgress {
    fn new(printer: Printer) -> Self {
        let bars = printer.show_progress().then(indicatif::MultiProgress::new);
        Self {
            printer,
            bars,
            active: Mutex::new(std::collections::BTreeMap::new()),
        }
    }
}

impl DownloadReporter for DownloadProgress {
    fn started(&self, id: usize, name: &str, total: Option<u64>, resumed_from: u64) {
        if resumed_from > 0 {
            self.printer
                .info(format!("Resuming {name} from byte {resumed_from}"));
        }
        if let Some(bars) = &self.bars {
            let bar = bars.add(
                ProgressBar::new(total.unwrap_or(0)).with_style(
                    ProgressStyle::with_template(
                        "{msg:>24} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                ),
            );
            bar.set_message(name.to_owned());
            bar.set_position(resumed_from);
            self.active.lock().expect("progress lock").insert(id, bar);
        }
    }

    fn progress(&self, id: usize, done: u64) {
        if let Some(bar) = self.active.lock().expect("progress lock").get(&id) {
            bar.set_position(done);
        }
    }

    fn retrying(&self, _id: usize, attempt: u32, message: &str) {
        self.printer.warn(format!("retry {attempt}: {message}"));
    }

    fn finished(&self, id: usize, _ok: bool) {
        if let Some(bar) = self.active.lock().expect("progress lock").remove(&id) {
            bar.finish_and_clear();
        }
    }
}

/// Every model (or those matching `query`), printed as it is read from the index.
fn print_models(ctx: &Context, workspace: &Workspace, query: Option<&FindQuery>) -> CommandResult {
    let index = workspace_models::open_index(workspace)?;
    let json = ctx.printer.json_mode();
    let mut out = ctx.printer.data_stream();
    if json {
        out.begin_array();
    }
    let printed = index.visit_models(query, |model| {
        let open = if json {
            out.element(&model)
        } else {
            let place = model
                .locations
                .first()
                .map_or("(no location)", |l| l.relative_path.as_str());
            out.line(format_args!(
                "{}  {:>12}  {place}",
                comfydock_foundation::display_text::truncate(&model.blake3, 16),
                model.size
            ))
        };
        if open {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    });
    out.finish();
    if printed? == 0 {
        ctx.printer.info("No models indexed; run `comfydock model scan`");
    }
    Ok(())
}

fn print_model_detail(printer: Printer, model: &ModelRecord) {
    printer.data(format!("blake3  {}", model.blake3));
    printer.data(format!(
        "sha256  {}",
        model
            .sha256
            .as_deref()
            .unwrap_or("(not computed: `comfydock model hash ID`)")
    ));
    printer.data(format!("size    {}", model.size));
    for l in &model.locations {
        printer.data(format!("at      {}", l.path().display()));
    }
    for s in &model.sources {
        printer.data(format!("source  {}", s.url));
    }
}
