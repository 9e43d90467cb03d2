//! `deploy docker | k8s | history`: an environment (or some of its workflows) as a reproducible
//! Docker build context or Kubernetes manifests, and the record of what was built.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use comfydock_deploy::build_history::{BuildHistory, BuildResult, NewBuild};
use comfydock_deploy::docker_context::{self, DockerOptions};
use comfydock_deploy::engine::DockerEngine;
use comfydock_deploy::kubernetes::{self, KubernetesOptions};
use comfydock_deploy::spec::DeploySpec;
use comfydock_deploy::target::{GpuKind, ModelMode, Target};
use comfydock_deploy::{DeployError, output};
use comfydock_environments::environment;
use comfydock_environments::settings::Key;
use comfydock_environments::workspace::Workspace;
use comfydock_foundation::git::Git;
use serde_json::json;

use super::Context;
use crate::error::CommandResult;

#[derive(Debug, Subcommand)]
pub enum DeployCommand {
    /// Write a Docker build context (Dockerfile, compose.yaml, models manifest, entrypoint); optionally build and push
    Docker(DockerArgs),
    /// Write Kubernetes manifests: Deployment with GPU resources, Service, models PVC, ConfigMap (+ API and HPA)
    K8s(K8sArgs),
    /// Show the build history (environment, .cec commit, image tag, digest, time, result)
    History {
        /// Every environment's builds, not only the selected one's
        #[arg(long)]
        all: bool,
    },
}

/// What both targets share.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Only what these resolved workflows need (nodes, models); repeatable
    #[arg(long = "workflow", value_name = "NAME")]
    pub workflows: Vec<String>,
    /// Output folder (created; must be empty or written by an earlier deploy)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// GPU family [default: cuda when the lock covers a CUDA backend, else cpu]
    #[arg(long, value_parser = ["cuda", "rocm", "cpu"])]
    pub gpu: Option<String>,
    /// CUDA version for --gpu cuda, e.g. 12.8 or cu128 [default: the newest the lock covers]
    #[arg(long, value_name = "VER")]
    pub cuda: Option<String>,
    /// How models reach the container: copied into the image, a mounted volume, or fetched and verified at start
    #[arg(long, value_parser = ["bake", "mount", "fetch"], default_value = "fetch")]
    pub models: String,
    /// Add the API service (`comfydock serve`) in front of ComfyUI
    #[arg(long)]
    pub with_api: bool,
    /// Image tag [default: comfydock-<env>:<short .cec commit>]
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// Base image of the builder (and of CPU images and the API image) instead of ubuntu:24.04,
    /// e.g. from your own registry
    #[arg(long, value_name = "IMAGE")]
    pub base_image: Option<String>,
    /// Image to copy the `uv` binary from instead of the public uv image
    #[arg(long, value_name = "IMAGE")]
    pub uv_image: Option<String>,
    /// Use the base image's Python packages (apt) instead of downloading a uv-managed Python
    #[arg(long)]
    pub system_python: bool,
    /// Rewrite a machine-local URL the pins name to one the builder reaches (repeatable), e.g.
    /// `http://127.0.0.1:3141=https://pypi.example.org`
    #[arg(long = "public-url", value_name = "LOCAL=PUBLIC", value_parser = parse_rewrite)]
    pub public_urls: Vec<(String, String)>,
    /// Keep machine-local URLs and paths (the machine that builds reaches them)
    #[arg(long)]
    pub allow_local_urls: bool,
}

fn parse_rewrite(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((from, to)) if !from.is_empty() && !to.is_empty() => Ok((from.to_owned(), to.to_owned())),
        _ => Err(format!("`{value}` is not LOCAL=PUBLIC")),
    }
}

#[derive(Debug, Args)]
pub struct DockerArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Build the image with the local Docker engine (output streamed)
    #[arg(long)]
    pub build: bool,
    /// Push the tag after building (implies --build; uses `docker login` credentials)
    #[arg(long)]
    pub push: bool,
}

#[derive(Debug, Args)]
pub struct K8sArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn run(ctx: &Context, command: &DeployCommand) -> CommandResult {
    match command {
        DeployCommand::Docker(args) => docker(ctx, args),
        DeployCommand::K8s(args) => k8s(ctx, args),
        DeployCommand::History { all } => history(ctx, *all),
    }
}

/// The spec, target and options both generators start from.
struct Prepared {
    workspace: Workspace,
    env: environment::Environment,
    spec: DeploySpec,
    target: Target,
    models: ModelMode,
    tag: String,
}

fn prepare(ctx: &Context, common: &CommonArgs) -> CommandResult<Prepared> {
    let workspace = ctx.workspace()?;
    let env = environment::select(&workspace, ctx.global.env.as_deref())?;
    let settings = ctx.settings(&workspace);
    let repo = settings.value(Key::ComfyuiRepo).unwrap_or_default();
    let git = Git::find()?;
    let mut spec = DeploySpec::from_environment(&env, &git, &repo, &common.workflows)?;
    spec.check_nodes_pinned()?;
    comfydock_deploy::machine_local::rewrite(&mut spec, &common.public_urls);
    let local = comfydock_deploy::machine_local::find(&spec);
    if !local.is_empty() && !common.allow_local_urls {
        return Err(DeployError::MachineLocal {
            env: env.name.clone(),
            found: local,
        }
        .into());
    }
    let gpu = match common.gpu.as_deref() {
        Some(g) => g.parse::<GpuKind>().map_err(crate::error::CommandError::usage)?,
        None if spec.backends.iter().any(|b| b.as_str().starts_with("cu")) => GpuKind::Cuda,
        None => GpuKind::Cpu,
    };
    let mut target = Target::resolve(&spec, gpu, common.cuda.as_deref())?;
    if let Some(base) = &common.base_image {
        target = target.with_base_image(base);
    }
    if let Some(uv) = &common.uv_image {
        uv.clone_into(&mut target.uv_image);
    }
    target.system_python = common.system_python;
    let models: ModelMode = common.models.parse().map_err(crate::error::CommandError::usage)?;
    if models == ModelMode::Bake {
        output::check_bakeable(&spec)?;
    }
    let tag = common.tag.clone().unwrap_or_else(|| spec.default_tag());
    Ok(Prepared {
        workspace,
        env,
        spec,
        target,
        models,
        tag,
    })
}

impl Prepared {
    /// Append a row to `.metadata/builds.db`.
    fn record(
        &self,
        kind: &str,
        dir: &Path,
        result: BuildResult,
        digest: Option<&str>,
        detail: Option<&str>,
    ) -> Result<(), DeployError> {
        let history = BuildHistory::open(&self.workspace.metadata_dir().join("builds.db"))?;
        history.record(&NewBuild {
            environment: &self.spec.environment,
            cec_commit: self.spec.cec_commit.as_deref(),
            kind,
            image_tag: &self.tag,
            digest,
            result,
            context_dir: dir,
            detail,
        })?;
        Ok(())
    }
}

fn docker(ctx: &Context, args: &DockerArgs) -> CommandResult {
    let common = &args.common;
    let p = prepare(ctx, common)?;
    let files = docker_context::render(
        &p.spec,
        &DockerOptions {
            target: p.target.clone(),
            models: p.models,
            with_api: common.with_api,
            tag: p.tag.clone(),
        },
    );
    let out = &common.out;
    output::write_context(out, "docker", &files)?;
    output::stage_dev_nodes(&p.spec, &p.env, out)?;
    if common.with_api {
        output::stage_api_binary(out)?;
    }
    if p.models == ModelMode::Bake {
        // Every indexed location of the model's hash, then the default root's `<target>`.
        let models_dir = p.workspace.models_dir();
        let by_root = output::models_root_locator(&models_dir);
        let index =
            comfydock_models::index::ModelIndex::open(&p.workspace.metadata_dir().join("model_index.db"))?;
        let indexed = index.list()?;
        let locate = |pin: &comfydock_deploy::spec::ModelPin| -> Vec<PathBuf> {
            let mut found: Vec<PathBuf> = indexed
                .iter()
                .filter(|r| {
                    pin.blake3.as_deref() == Some(r.blake3.as_str())
                        || (pin.sha256.is_some() && pin.sha256.as_deref() == r.sha256.as_deref())
                })
                .flat_map(|r| r.locations.iter().map(comfydock_models::index::Location::path))
                .collect();
            found.extend(by_root(pin));
            found
        };
        output::stage_models(&p.spec, &locate, out, &ctx.reporter)?;
    }
    p.record("docker", out, BuildResult::Generated, None, None)?;
    ctx.printer.status(
        "Generated",
        format!(
            "build context for `{}` in {} ({} nodes, {} models, torch {}, models {})",
            p.spec.environment,
            out.display(),
            p.spec.nodes.len(),
            p.spec.models.len(),
            p.target.backend,
            p.models
        ),
    );
    let mut digest = None;
    let mut result = BuildResult::Generated;
    if args.build || args.push {
        let engine = match DockerEngine::connect(out) {
            Ok(engine) => engine,
            Err(e) => {
                p.record("docker", out, BuildResult::Failed, None, Some(&e.to_string()))?;
                return Err(e.into());
            }
        };
        let mut images = vec![(out.clone(), p.tag.clone())];
        if common.with_api {
            images.push((out.join("api"), docker_context::api_tag(&p.tag)));
        }
        let built = images.iter().try_for_each(|(dir, tag)| {
            ctx.printer
                .status("Building", format!("{tag} with {}", engine.name()));
            engine.build(dir, tag)?;
            if args.push {
                ctx.printer.status("Pushing", tag);
                engine.push(tag)?;
            }
            Ok::<(), DeployError>(())
        });
        if let Err(e) = built {
            p.record("docker", out, BuildResult::Failed, None, Some(&e.to_string()))?;
            return Err(e.into());
        }
        result = if args.push {
            BuildResult::Pushed
        } else {
            BuildResult::Built
        };
        digest = engine.digest(&p.tag, args.push);
        p.record("docker", out, result, digest.as_deref(), None)?;
        ctx.printer.status(
            if args.push { "Pushed" } else { "Built" },
            format!("{} {}", p.tag, digest.as_deref().unwrap_or_default()),
        );
    } else {
        ctx.printer.hint(format!(
            "build it with `docker buildx build -t {} {}`",
            p.tag,
            out.display()
        ));
    }
    if ctx.printer.json_mode() {
        ctx.printer.json(&json!({
            "environment": p.spec.environment,
            "out": out,
            "tag": p.tag,
            "gpu": p.target.gpu,
            "torch_backend": p.target.backend.as_str(),
            "runtime_image": p.target.runtime_image,
            "models_mode": p.models,
            "files": files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            "nodes": p.spec.nodes.iter().map(|n| n.key.as_str()).collect::<Vec<_>>(),
            "models": p.spec.models,
            "skipped_models": p.spec.skipped_models,
            "result": result,
            "digest": digest,
        }));
    }
    Ok(())
}

fn k8s(ctx: &Context, args: &K8sArgs) -> CommandResult {
    let common = &args.common;
    let p = prepare(ctx, common)?;
    let files = kubernetes::render(
        &p.spec,
        &KubernetesOptions {
            gpu: p.target.gpu,
            models: p.models,
            with_api: common.with_api,
            image: p.tag.clone(),
        },
    );
    output::write_context(&common.out, "k8s", &files)?;
    p.record("k8s", &common.out, BuildResult::Generated, None, None)?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&json!({
            "environment": p.spec.environment,
            "out": common.out,
            "image": p.tag,
            "files": files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    ctx.printer.status(
        "Generated",
        format!(
            "{} Kubernetes manifests in {}",
            files.len(),
            common.out.join("k8s").display()
        ),
    );
    ctx.printer.hint(format!(
        "apply them with `kubectl apply -k {}` once the image `{}` is in a registry the cluster can pull from",
        common.out.join("k8s").display(),
        p.tag
    ));
    Ok(())
}

fn history(ctx: &Context, all: bool) -> CommandResult {
    let workspace = ctx.workspace()?;
    let only = if all {
        None
    } else {
        Some(environment::select(&workspace, ctx.global.env.as_deref())?.name)
    };
    let history = BuildHistory::open(&workspace.metadata_dir().join("builds.db"))?;
    let rows = history.list(only.as_deref())?;
    if ctx.printer.json_mode() {
        ctx.printer.json(&rows);
        return Ok(());
    }
    if rows.is_empty() {
        ctx.printer
            .info("No deployments yet; run `comfydock deploy docker --out DIR`");
    }
    for r in rows {
        let commit = r
            .cec_commit
            .as_deref()
            .map_or("-", comfydock_foundation::display_text::short_hash);
        ctx.printer.data(format!(
            "{}  {:<10} {:<6} {:<12} {}  {}  {}",
            r.time,
            serde_json::to_value(r.result)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            r.kind,
            commit,
            r.environment,
            r.image_tag,
            r.digest.as_deref().unwrap_or("")
        ));
    }
    Ok(())
}
