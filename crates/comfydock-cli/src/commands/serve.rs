//! `serve`: workflows as a typed HTTP API with a durable job queue; `serve keys`: API keys.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use comfydock_environments::comfyui_process::{self, RunOptions};
use comfydock_environments::environment::{self, Environment};
use comfydock_environments::workflow_tracking as tracking;
use comfydock_foundation::git::Git;
use comfydock_serve::job::RetryPolicy;
use comfydock_serve::output_store::OutputStore;
use comfydock_serve::params::ExposeConfig;
use comfydock_serve::store::JobStore;
use comfydock_serve::{ServeOptions, WorkflowSource};
use serde_json::{Value, json};

use super::Context;
use crate::error::{CommandError, CommandResult};

/// `comfydock serve`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServeArgs {
    #[command(subcommand)]
    pub command: Option<ServeCommand>,

    /// Workflow to serve (repeatable): a workflow name of the environment, or a path to a .json file
    #[arg(long = "workflow", value_name = "NAME")]
    pub workflows: Vec<String>,

    /// A running ComfyUI to send jobs to (repeatable; one worker each)
    #[arg(long = "comfyui", value_name = "URL", conflicts_with = "spawn")]
    pub comfyui: Vec<String>,

    /// Start N ComfyUI processes of the environment (process i sees GPU i)
    #[arg(long, value_name = "N")]
    pub spawn: Option<u16>,

    /// First port for `--spawn` (then +1 per process)
    #[arg(long, value_name = "PORT", default_value_t = 8190)]
    pub spawn_port: u16,

    /// Address to listen on (non-loopback addresses need API keys)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8189")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub db: DbArgs,

    /// Accept these API keys (comma-separated; each at least 32 characters), e.g. from a
    /// deployment's Secret; stored by hash like `serve keys create` keys
    #[arg(
        long = "api-key",
        value_name = "KEY",
        env = "COMFYDOCK_SERVE_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,

    /// Where job outputs are kept: a folder, or `s3://BUCKET/PREFIX` for a bucket every instance
    /// shares (settings from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL)
    /// [default: <workspace>/serve/outputs]
    #[arg(long, value_name = "LOCATION", env = "COMFYDOCK_SERVE_OUTPUTS")]
    pub outputs: Option<String>,

    /// Attempts per job for transient failures (backend down, timeout) before dead-lettering
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub max_attempts: u32,

    /// Seconds a worker's claim lasts without a heartbeat (a crashed instance's jobs rerun after it)
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub lease_secs: u64,

    /// First retry delay in milliseconds (doubles per attempt, with jitter)
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub retry_base_ms: u64,

    /// Largest request body in MiB
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub body_limit_mib: usize,

    /// Largest uploaded file in MiB (multipart or base64)
    #[arg(long, value_name = "MIB", default_value_t = 32)]
    pub file_limit_mib: usize,

    /// Requests per minute per API key
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u32>,

    /// Allow browser requests from this origin (repeatable; `*` for any)
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,

    /// Let webhooks target loopback, private and link-local addresses (serve's own network);
    /// by default only public addresses are allowed
    #[arg(long)]
    pub allow_private_webhooks: bool,
    /// Do not serve the web console (`/console`: a form per workflow, live jobs, the queue)
    #[arg(long)]
    pub no_console: bool,

    /// Idle poll interval of workers in milliseconds
    #[arg(long, value_name = "MS", default_value_t = 500, hide = true)]
    pub poll_ms: u64,
}

/// The queue database option shared by `serve` and `serve keys`.
#[derive(Debug, Args)]
pub struct DbArgs {
    /// Queue database: `sqlite:PATH` or `postgres://USER@HOST/DB` [default: sqlite:<workspace>/serve/queue.db]
    #[arg(long, value_name = "URL", env = "COMFYDOCK_SERVE_DB", global = true)]
    pub db: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ServeCommand {
    /// Manage the bearer API keys of the queue database
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key (shown once; only its hash is stored)
    Create {
        /// A name to recognise it by
        name: String,
    },
    /// List keys (never the secrets)
    List,
    /// Revoke keys by id, name or prefix
    Revoke {
        /// Id, name or prefix of the key
        key: String,
    },
}

pub fn run(ctx: &Context, args: &ServeArgs) -> CommandResult {
    let runtime = comfydock_serve::server::runtime()
        .map_err(|e| CommandError::failed(format!("cannot start the async runtime: {e}")))?;
    match &args.command {
        Some(ServeCommand::Keys(command)) => runtime.block_on(keys(ctx, &args.db, command)),
        None => runtime.block_on(serve(ctx, args)),
    }
}

fn db_url(ctx: &Context, db: &DbArgs) -> CommandResult<String> {
    if let Some(url) = &db.db {
        return Ok(url.clone());
    }
    let workspace = ctx.workspace()?;
    Ok(format!(
        "sqlite:{}",
        workspace.root().join("serve").join("queue.db").display()
    ))
}

async fn keys(ctx: &Context, db: &DbArgs, command: &KeysCommand) -> CommandResult {
    let store = comfydock_serve::store::open(&db_url(ctx, db)?).await?;
    match command {
        KeysCommand::Create { name } => {
            let created = comfydock_serve::keys::create(&*store, name).await?;
            if ctx.printer.json_mode() {
                ctx.printer
                    .json(&json!({"key": created.key, "id": created.record.id, "name": created.record.name}));
            } else {
                ctx.printer.data(&created.key);
                ctx.printer
                    .status("Created", format!("API key `{name}` ({})", created.record.prefix));
                ctx.printer
                    .hint("store it now: it is shown only once; send it as `Authorization: Bearer <key>`");
            }
        }
        KeysCommand::List => {
            let keys = store.list_keys().await?;
            if ctx.printer.json_mode() {
                ctx.printer.json(&keys);
            } else if keys.is_empty() {
                ctx.printer
                    .info("No API keys: `serve` accepts anyone, and only on loopback addresses");
            } else {
                for key in keys {
                    let state = key.revoked_at.map_or_else(
                        || "active".to_owned(),
                        |at| format!("revoked {}", comfydock_serve::job::format_ms(at)),
                    );
                    ctx.printer.data(format!(
                        "{}  {}  {}  created {}  {state}",
                        key.id,
                        key.prefix,
                        key.name,
                        comfydock_serve::job::format_ms(key.created_at)
                    ));
                }
            }
        }
        KeysCommand::Revoke { key } => {
            let revoked = store.revoke_key(key.clone()).await?;
            if revoked == 0 {
                return Err(CommandError::failed(format!("no active API key matches `{key}`"))
                    .with_hint("list them with `comfydock serve keys list`"));
            }
            if ctx.printer.json_mode() {
                ctx.printer.json(&json!({"revoked": revoked}));
            } else {
                ctx.printer
                    .status("Revoked", format!("{revoked} key(s) matching `{key}`"));
            }
        }
    }
    Ok(())
}

/// Commits of `.cec` history the environment summary (`GET /v1/environment`) shows.
const ENVIRONMENT_HISTORY: usize = 50;

/// A route-safe workflow name: `portraits/flux` → `portraits_flux`.
fn route_name(name: &str) -> String {
    tracking::normalize_name(name).replace(['/', '\\', ' '], "_")
}

fn read_workflow(path: &Path) -> CommandResult<Value> {
    let text = fs_err::read_to_string(path)?;
    serde_json::from_str(&text)
        .map_err(|e| CommandError::failed(format!("`{}` is not JSON: {e}", path.display())))
}

/// Resolves `--workflow` values: existing files as given, else names in the environment
/// (its tracked copy in `.cec/workflows`, else ComfyUI's user workflows).
fn workflow_sources(names: &[String], env: Option<&Environment>) -> CommandResult<Vec<WorkflowSource>> {
    let manifest = env.map(Environment::manifest).transpose()?;
    let api_config = manifest.as_ref().map(|m| &m.tool().api);
    let mut sources = Vec::new();
    for name in names {
        let as_path = PathBuf::from(name);
        let (route, path) = if as_path.is_file() {
            let stem = as_path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            (route_name(&stem), as_path)
        } else {
            let env = env.ok_or_else(|| {
                CommandError::failed(format!(
                    "`{name}` is neither a file nor a workflow of an environment"
                ))
                .with_hint("pass a path to the workflow .json, or select an environment with `-e NAME`")
            })?;
            let normalized = tracking::normalize_name(name);
            let candidates = [
                tracking::cec_workflows_dir(env).join(format!("{normalized}.json")),
                tracking::comfyui_workflows_dir(env).join(format!("{normalized}.json")),
            ];
            let path = candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
                CommandError::failed(format!(
                    "environment `{}` has no workflow `{normalized}`",
                    env.name
                ))
                .with_hint(format!(
                    "list them with `comfydock -e {} workflow list`",
                    env.name
                ))
            })?;
            (route_name(&normalized), path)
        };
        let expose = api_config
            .and_then(|api| {
                api.get(&route)
                    .or_else(|| api.get(&tracking::normalize_name(name)))
            })
            .map(|table| ExposeConfig {
                expose: table.expose.clone(),
                names: table.names.clone(),
            });
        if sources.iter().any(|s: &WorkflowSource| s.name == route) {
            return Err(CommandError::usage(format!("workflow `{route}` is given twice")));
        }
        sources.push(WorkflowSource {
            name: route,
            workflow: read_workflow(&path)?,
            expose,
        });
    }
    Ok(sources)
}

/// ComfyUI processes started by `--spawn`; killed when dropped.
struct Spawned(Vec<Child>);

impl Drop for Spawned {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn_backends(
    ctx: &Context,
    env: &Environment,
    count: u16,
    first_port: u16,
) -> CommandResult<(Spawned, Vec<String>)> {
    let workspace = ctx.workspace()?;
    environment::write_extra_model_paths(&workspace, env)?;
    comfyui_process::create_data_directories(env)?;
    let mut spawned = Spawned(Vec::new());
    let mut urls = Vec::new();
    for index in 0..count {
        let port = first_port + index;
        comfyui_process::check_port("127.0.0.1", port)?;
        let log = workspace
            .logs_dir()
            .join(&env.name)
            .join(format!("serve-comfyui-{index}.log"));
        if let Some(dir) = log.parent() {
            fs_err::create_dir_all(dir)?;
        }
        let options = RunOptions {
            host: "127.0.0.1".into(),
            port,
            extra_args: Vec::new(),
            log: log.clone(),
        };
        let file = fs_err::File::create(&log)?;
        let mut command = comfyui_process::command(env, &options);
        command
            .env("CUDA_VISIBLE_DEVICES", index.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone()?.into_parts().0))
            .stderr(Stdio::from(file.into_parts().0));
        let child = command
            .spawn()
            .map_err(|e| CommandError::failed(format!("cannot start ComfyUI of `{}`: {e}", env.name)))?;
        ctx.printer.status(
            "Started",
            format!(
                "ComfyUI {index} (pid {}) on port {port}, log {}",
                child.id(),
                log.display()
            ),
        );
        spawned.0.push(child);
        urls.push(format!("http://127.0.0.1:{port}"));
    }
    Ok((spawned, urls))
}

async fn serve(ctx: &Context, args: &ServeArgs) -> CommandResult {
    if args.workflows.is_empty() {
        return Err(
            CommandError::usage("nothing to serve").with_hint("name workflows with `--workflow NAME`")
        );
    }
    let needs_env = args.spawn.is_some() || args.workflows.iter().any(|w| !Path::new(w).is_file());
    let env = if needs_env || ctx.global.env.is_some() {
        let workspace = ctx.workspace()?;
        Some(environment::select(&workspace, ctx.global.env.as_deref())?)
    } else {
        None
    };
    let sources = workflow_sources(&args.workflows, env.as_ref())?;
    let (_spawned, backends) = match (args.spawn, env.as_ref()) {
        (Some(count), Some(env)) if count > 0 => spawn_backends(ctx, env, count, args.spawn_port)?,
        (Some(_), _) => return Err(CommandError::usage("`--spawn` needs at least 1 process")),
        (None, _) if args.comfyui.is_empty() => {
            return Err(CommandError::usage("no ComfyUI backend")
                .with_hint("pass `--comfyui http://127.0.0.1:8188` or `--spawn 1`"));
        }
        (None, _) => (Spawned(Vec::new()), args.comfyui.clone()),
    };
    let outputs = match &args.outputs {
        Some(spec) => OutputStore::from_spec(spec)?,
        None => OutputStore::from(ctx.workspace()?.root().join("serve").join("outputs")),
    };
    let store: Arc<dyn JobStore> = comfydock_serve::store::open(&db_url(ctx, &args.db)?).await?;
    for key in args.api_keys.iter().filter(|k| !k.trim().is_empty()) {
        comfydock_serve::keys::register(&*store, "from the environment", key).await?;
    }
    let outputs_at = outputs.location();
    let mut options = ServeOptions::new(args.listen, backends.clone(), sources, outputs);
    options.max_attempts = args.max_attempts.max(1);
    options.worker.lease = Duration::from_secs(args.lease_secs.max(1));
    options.worker.poll = Duration::from_millis(args.poll_ms.max(10));
    options.worker.retry = RetryPolicy {
        base: Duration::from_millis(args.retry_base_ms),
        ..RetryPolicy::default()
    };
    options.limits.body_limit = args.body_limit_mib.saturating_mul(1024 * 1024);
    options.limits.upload_limit = args.file_limit_mib.saturating_mul(1024 * 1024);
    options.limits.cors_origins.clone_from(&args.cors_origins);
    options.rate_limit_per_minute = args.rate_limit;
    options.worker.webhooks.allow_private = args.allow_private_webhooks;
    options.console = !args.no_console;
    if let Some(env) = env.as_ref() {
        let summary = comfydock_environments::summary::summarize(&Git::find()?, env, ENVIRONMENT_HISTORY)?;
        options.environment =
            Some(serde_json::to_value(summary).map_err(|e| {
                CommandError::failed(format!("cannot describe environment `{}`: {e}", env.name))
            })?);
    }
    let names: Vec<String> = options.workflows.iter().map(|w| w.name.clone()).collect();
    let server = comfydock_serve::start(options, store).await?;
    let addr = server.addr();
    if ctx.printer.json_mode() {
        ctx.printer.json_now(
            &json!({"listen": addr.to_string(), "workflows": names, "backends": backends,
            "outputs": outputs_at, "console": (!args.no_console).then(|| format!("http://{addr}/console/"))}),
        );
    } else {
        ctx.printer.status(
            "Serving",
            format!(
                "{} on http://{addr} ({} backend(s)), outputs in {outputs_at}",
                names.join(", "),
                backends.len()
            ),
        );
        let console = if args.no_console {
            String::new()
        } else {
            format!("console: http://{addr}/console/ · ")
        };
        ctx.printer.hint(format!(
            "{console}docs: http://{addr}/docs · OpenAPI: http://{addr}/openapi.json · stop with Ctrl-C or SIGTERM"
        ));
    }
    server.run_until_signal().await;
    Ok(())
}
