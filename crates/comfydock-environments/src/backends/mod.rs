//! Torch backends of an environment (`comfydock backend list|add|remove|use`).
//!
//! The lock covers several backends at once (one uv extra each, see [`crate::torch_backend`]);
//! each machine syncs with one of them, stored in `.local.json`. Adding or removing a backend
//! rewrites every place uv reads backends from ([`crate::manifest::Manifest::set_torch_backends`])
//! and re-locks, all or nothing: on failure `pyproject.toml` and `uv.lock` get their bytes back.
//! What the lock really covers is read from `uv.lock` itself ([`crate::lock_coverage`]).

pub mod error;

use serde::Serialize;

use crate::environment::{self, Environment, SyncMode, Tools};
use crate::lifecycle::SyncReport;
use crate::manifest::FileTransaction;
use crate::resolver_failure::ResolverOutput;
use crate::settings::Key;
use crate::settings::Settings;
use crate::torch_backend::TorchBackend;
use crate::workspace::Workspace;
use comfydock_foundation::reporter::Reporter;

pub use crate::lock_coverage::LockedBackend;

pub use error::BackendError;

/// Everything a backend change needs.
pub struct BackendContext<'a> {
    pub workspace: &'a Workspace,
    pub settings: &'a Settings,
    pub tools: &'a Tools,
    pub env: &'a Environment,
    pub reporter: &'a dyn Reporter,
}

/// `backend list`: what the lock covers and what this machine uses.
#[derive(Debug, Clone, Serialize)]
pub struct BackendListing {
    pub environment: String,
    /// The backend this machine syncs with.
    pub current: String,
    /// Backends `uv.lock` covers.
    pub locked: Vec<LockedBackend>,
    /// Backends `torch_backends` lists that the lock does not cover yet (`sync` locks them).
    pub pending: Vec<String>,
}

/// Read which backends `env`'s lock covers.
pub fn list(env: &Environment) -> Result<BackendListing, BackendError> {
    let manifest = env.manifest()?;
    let locked = crate::lock_coverage::read(&env.lock_path())?;
    let pending = manifest
        .torch_backends()
        .into_iter()
        .filter(|b| !locked.iter().any(|l| l.backend == *b))
        .map(|b| b.to_string())
        .collect();
    Ok(BackendListing {
        environment: env.name.clone(),
        current: env.backend().to_string(),
        locked,
        pending,
    })
}

/// What `backend add` / `backend remove` did.
#[derive(Debug, Clone, Serialize)]
pub struct BackendChange {
    pub environment: String,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Asked for, but already covered by the lock (nothing to do).
    pub unchanged: Vec<String>,
    /// What the lock covers afterwards.
    pub locked: Vec<LockedBackend>,
}

/// Lock `backends` too: add their extras, indexes and sources, re-lock, check the lock covers
/// each, and sync this machine's backend from the new lock. All or nothing.
pub fn add(ctx: &BackendContext<'_>, backends: &[TorchBackend]) -> Result<BackendChange, BackendError> {
    let env = ctx.env;
    let manifest = env.manifest()?;
    let locked = crate::lock_coverage::read(&env.lock_path())?;
    let mut wanted = manifest.torch_backends();
    let mut change = BackendChange {
        environment: env.name.clone(),
        added: Vec::new(),
        removed: Vec::new(),
        unchanged: Vec::new(),
        locked: Vec::new(),
    };
    for backend in backends {
        let is_locked = locked.iter().any(|l| l.backend == *backend);
        if is_locked && wanted.contains(backend) {
            if !change.unchanged.contains(&backend.to_string()) {
                change.unchanged.push(backend.to_string());
            }
            continue;
        }
        if !wanted.contains(backend) {
            wanted.push(backend.clone());
        }
        if !change.added.contains(&backend.to_string()) {
            change.added.push(backend.to_string());
        }
    }
    if change.added.is_empty() {
        change.locked = locked;
        return Ok(change);
    }
    change.locked = relock(ctx, &wanted, backends)?;
    Ok(change)
}

/// Stop locking `backends`. The backend this machine syncs with cannot be removed.
pub fn remove(ctx: &BackendContext<'_>, backends: &[TorchBackend]) -> Result<BackendChange, BackendError> {
    let env = ctx.env;
    let manifest = env.manifest()?;
    let locked = crate::lock_coverage::read(&env.lock_path())?;
    let declared = manifest.torch_backends();
    let current = env.backend();
    for backend in backends {
        let known = declared.contains(backend) || locked.iter().any(|l| l.backend == *backend);
        if !known {
            let mut names: Vec<String> = declared.iter().map(ToString::to_string).collect();
            names.extend(locked.iter().map(|l| l.backend.to_string()));
            names.sort();
            names.dedup();
            return Err(BackendError::NotPresent {
                backend: backend.to_string(),
                env: env.name.clone(),
                known: names,
            });
        }
        if *backend == current {
            return Err(BackendError::RemovingCurrent {
                backend: backend.to_string(),
                env: env.name.clone(),
            });
        }
    }
    let mut wanted = declared;
    for l in &locked {
        if !wanted.contains(&l.backend) {
            wanted.push(l.backend.clone());
        }
    }
    wanted.retain(|b| !backends.contains(b));
    let locked = relock(ctx, &wanted, &[])?;
    let mut removed: Vec<String> = backends.iter().map(ToString::to_string).collect();
    removed.dedup();
    Ok(BackendChange {
        environment: env.name.clone(),
        added: Vec::new(),
        removed,
        unchanged: Vec::new(),
        locked,
    })
}

/// Rewrite the manifest for `wanted`, re-lock, check `must_cover` is covered, sync this
/// machine's backend; restore `pyproject.toml` and `uv.lock` on any failure.
fn relock(
    ctx: &BackendContext<'_>,
    wanted: &[TorchBackend],
    must_cover: &[TorchBackend],
) -> Result<Vec<LockedBackend>, BackendError> {
    let env = ctx.env;
    let mut manifest = env.manifest()?;
    let base = ctx.settings.value(Key::TorchIndexUrl).unwrap_or_default();
    let mut tx = FileTransaction::new();
    tx.track(&env.manifest_path())?;
    tx.track(&env.lock_path())?;
    manifest.set_torch_backends(wanted, &base);
    manifest.save()?;
    ctx.reporter.phase("Resolving Python dependencies");
    if let Err(err) = environment::uv_lock(ctx.tools, env, ctx.reporter) {
        let stderr = err.uv_stderr().map(str::to_owned);
        tx.rollback()?;
        let Some(stderr) = stderr else {
            return Err(err.into());
        };
        let indexes = must_cover
            .iter()
            .map(|b| {
                manifest
                    .backend_index_url(b)
                    .unwrap_or_else(|| b.index_url(&base))
            })
            .collect::<Vec<_>>()
            .join(", ");
        return Err(BackendError::Lock {
            backends: names(must_cover),
            indexes,
            env: env.name.clone(),
            resolver: ResolverOutput::from_uv_stderr(&stderr),
        });
    }
    let locked = crate::lock_coverage::read(&env.lock_path())?;
    if let Some(missing) = must_cover
        .iter()
        .find(|b| !locked.iter().any(|l| l.backend == **b))
    {
        tx.rollback()?;
        return Err(BackendError::NotCovered {
            backend: missing.to_string(),
            env: env.name.clone(),
        });
    }
    ctx.reporter.phase(&format!(
        "Installing Python packages (torch backend {})",
        env.backend()
    ));
    environment::sync_or_restore(ctx.tools, env, SyncMode::Inexact, tx, ctx.reporter)?;
    Ok(locked)
}

fn names(backends: &[TorchBackend]) -> String {
    backends
        .iter()
        .map(|b| format!("`{b}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `backend use` did.
#[derive(Debug, Clone, Serialize)]
pub struct BackendSwitch {
    pub environment: String,
    pub from: String,
    pub to: String,
    pub sync: SyncReport,
}

/// Make this machine sync `env` with `backend` (which the lock must cover, or `torch_backends`
/// list so the sync locks it), then sync (`prune`: also uninstall what the lock does not list).
/// On failure the previous choice is kept.
pub fn use_backend(
    ctx: &BackendContext<'_>,
    backend: &TorchBackend,
    prune: bool,
) -> Result<BackendSwitch, BackendError> {
    let env = ctx.env;
    let locked = crate::lock_coverage::read(&env.lock_path())?;
    let manifest = env.manifest()?;
    // A backend only listed in `torch_backends` is locked by the sync below.
    if !locked.iter().any(|l| l.backend == *backend) && !manifest.covers_backend(backend) {
        return Err(BackendError::NotLocked {
            backend: backend.to_string(),
            env: env.name.clone(),
            locked: locked.iter().map(|l| l.backend.to_string()).collect(),
        });
    }
    let before = env.state();
    let from = env.backend().to_string();
    let mut state = before.clone();
    state.torch_backend = Some(backend.to_string());
    env.save_state(&state)?;
    match crate::lifecycle::sync(
        ctx.workspace,
        ctx.settings,
        ctx.tools,
        env,
        prune,
        false,
        ctx.reporter,
    ) {
        Ok(sync) => Ok(BackendSwitch {
            environment: env.name.clone(),
            from,
            to: backend.to_string(),
            sync,
        }),
        Err(err) => {
            env.save_state(&before)?;
            Err(err.into())
        }
    }
}
