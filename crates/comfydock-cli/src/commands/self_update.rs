//! `comfydock self update`: replace this binary with the newest release, when comfydock owns the
//! install (the installer script's receipt sits next to the binary); otherwise name the command
//! of the tool that installed it (uv, pipx, pip, cargo), as `uv self update` does.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::Context;
use crate::error::{CommandError, CommandResult};

/// The distribution name on PyPI (the command is `comfydock`).
const DIST_NAME: &str = "comfydock-rs";
/// What the installer script writes next to the binary it installs.
const RECEIPT_FILE: &str = "comfydock-receipt.json";
/// The release asset that names the version and every archive with its sha256.
const RELEASE_MANIFEST: &str = "comfydock-release.json";

#[derive(Debug, Subcommand)]
pub enum SelfCommand {
    /// Update comfydock to the newest release (or say how, when another tool installed it)
    Update {
        /// Reinstall even when this is already the newest version
        #[arg(long)]
        force: bool,
    },
}

/// How this binary was installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
enum InstallMethod {
    /// The installer script (or an archive unpacked by hand, with the receipt kept).
    Installer {
        receipt: PathBuf,
    },
    UvTool,
    Pipx,
    /// A wheel in a Python environment.
    Pip {
        python: PathBuf,
    },
    Cargo,
    Unknown,
}

/// Written by `scripts/install.sh`.
#[derive(Debug, Deserialize)]
struct Receipt {
    /// Where releases live (`…/releases`, with `latest/download/ASSET` under it).
    release_url: String,
    /// The archive's target triple.
    target: String,
}

/// `comfydock-release.json`.
#[derive(Debug, Deserialize)]
struct ReleaseManifest {
    version: String,
    archives: std::collections::BTreeMap<String, ReleaseArchive>,
}

#[derive(Debug, Deserialize)]
struct ReleaseArchive {
    file: String,
    sha256: String,
}

#[derive(Debug, Serialize)]
struct UpdateReport {
    from: String,
    to: String,
    updated: bool,
    binary: PathBuf,
}

pub fn run(ctx: &Context, command: &SelfCommand) -> CommandResult {
    let SelfCommand::Update { force } = command;
    let exe = std::env::current_exe()
        .and_then(fs_err::canonicalize)
        .map_err(|e| CommandError::failed(format!("cannot tell where this comfydock binary is: {e}")))?;
    match install_method(&exe) {
        InstallMethod::Installer { receipt } => update_from_release(ctx, &exe, &receipt, *force),
        other => {
            let (by, command) = match &other {
                InstallMethod::UvTool => ("uv", format!("uv tool upgrade {DIST_NAME}")),
                InstallMethod::Pipx => ("pipx", format!("pipx upgrade {DIST_NAME}")),
                InstallMethod::Pip { python } => (
                    "pip",
                    format!("{} -m pip install --upgrade {DIST_NAME}", python.display()),
                ),
                InstallMethod::Cargo => (
                    "cargo",
                    "cargo install --locked --force --git https://github.com/comfydock/comfydock comfydock"
                        .to_owned(),
                ),
                InstallMethod::Unknown | InstallMethod::Installer { .. } => {
                    return Err(CommandError::failed(format!(
                        "cannot tell how {} was installed, so it is not updated in place",
                        exe.display()
                    ))
                    .with_hint(format!(
                        "reinstall it the way you installed it: `uv tool install --upgrade {DIST_NAME}`, \
                         `pipx upgrade {DIST_NAME}`, `pip install --upgrade {DIST_NAME}`, or the installer script"
                    )));
                }
            };
            Err(CommandError::failed(format!(
                "comfydock was installed by {by} ({}); {by} updates it",
                exe.display()
            ))
            .with_hint(format!("run `{command}`")))
        }
    }
}

/// Tell how the binary at `exe` (symlinks resolved) was installed, from the files around it.
fn install_method(exe: &Path) -> InstallMethod {
    let Some(bin_dir) = exe.parent() else {
        return InstallMethod::Unknown;
    };
    let receipt = bin_dir.join(RECEIPT_FILE);
    if receipt.is_file() {
        return InstallMethod::Installer { receipt };
    }
    // A Python environment: `<env>/bin/comfydock` (`Scripts\` on Windows) with `pyvenv.cfg`.
    if let Some(env) = bin_dir.parent() {
        if env.join("uv-receipt.toml").is_file() {
            return InstallMethod::UvTool;
        }
        if env.join("pipx_metadata.json").is_file() {
            return InstallMethod::Pipx;
        }
        if env.join("pyvenv.cfg").is_file() || has_our_dist_info(env) {
            let python = ["python", "python3", "python.exe"]
                .iter()
                .map(|name| bin_dir.join(name))
                .find(|p| p.exists())
                .unwrap_or_else(|| PathBuf::from("python3"));
            return InstallMethod::Pip { python };
        }
        if env.join(".crates.toml").is_file() || env.join(".crates2.json").is_file() {
            return InstallMethod::Cargo;
        }
    }
    InstallMethod::Unknown
}

/// Whether `<prefix>/lib/python3.X/site-packages` holds our wheel's metadata (a system or user
/// site install without a virtual environment).
fn has_our_dist_info(prefix: &Path) -> bool {
    let Ok(libs) = fs_err::read_dir(prefix.join("lib")) else {
        return false;
    };
    libs.flatten().any(|lib| {
        fs_err::read_dir(lib.path().join("site-packages")).is_ok_and(|entries| {
            entries.flatten().any(|entry| {
                let name = entry.file_name().to_string_lossy().to_ascii_lowercase();
                name.starts_with("comfydock_rs-") && name.ends_with(".dist-info")
            })
        })
    })
}

fn update_from_release(ctx: &Context, exe: &Path, receipt_path: &Path, force: bool) -> CommandResult {
    let receipt: Receipt = serde_json::from_slice(&fs_err::read(receipt_path)?).map_err(|e| {
        CommandError::failed(format!(
            "{} is not a valid install receipt: {e}",
            receipt_path.display()
        ))
        .with_hint("reinstall with the installer script")
    })?;
    let base = receipt.release_url.trim_end_matches('/');
    let client = reqwest::blocking::Client::builder()
        .user_agent(concat!("comfydock/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| CommandError::failed(format!("cannot start an HTTP client: {e}")))?;
    let get = |asset: &str| -> Result<Vec<u8>, CommandError> {
        let url = format!("{base}/latest/download/{asset}");
        let shown = comfydock_foundation::redact::RedactedUrl(&url).to_string();
        let response = client
            .get(&url)
            .send()
            .and_then(reqwest::blocking::Response::error_for_status)
            .map_err(|e| CommandError::failed(format!("cannot download {shown}: {e}")))?;
        response
            .bytes()
            .map(|b| b.to_vec())
            .map_err(|e| CommandError::failed(format!("cannot download {shown}: {e}")))
    };
    let manifest: ReleaseManifest = serde_json::from_slice(&get(RELEASE_MANIFEST)?)
        .map_err(|e| CommandError::failed(format!("the release's {RELEASE_MANIFEST} is not valid: {e}")))?;
    let current = env!("CARGO_PKG_VERSION");
    let newer = version_key(&manifest.version) > version_key(current);
    let print = |updated: bool, human: &dyn Fn()| {
        let report = UpdateReport {
            from: current.to_owned(),
            to: manifest.version.clone(),
            updated,
            binary: exe.to_owned(),
        };
        if ctx.printer.json_mode() {
            ctx.printer.json(&report);
        } else {
            human();
        }
    };
    if !newer && !force {
        print(false, &|| {
            ctx.printer.info(format!(
                "comfydock {current} is the newest release ({})",
                manifest.version
            ));
        });
        return Ok(());
    }
    let archive = manifest.archives.get(&receipt.target).ok_or_else(|| {
        CommandError::failed(format!(
            "release {} has no archive for {}",
            manifest.version, receipt.target
        ))
    })?;
    if archive.file.contains(['/', '\\']) || archive.file.starts_with('.') {
        return Err(CommandError::failed(format!(
            "the release names an unsafe archive file `{}`",
            archive.file
        )));
    }
    ctx.printer.status("Downloading", &archive.file);
    let bytes = get(&archive.file)?;
    let actual = hex(&Sha256::digest(&bytes));
    if !actual.eq_ignore_ascii_case(archive.sha256.trim()) {
        return Err(CommandError::failed(format!(
            "{} does not match the release's sha256 (expected {}, got {actual}); nothing was changed",
            archive.file, archive.sha256
        )));
    }
    let binary = binary_from_archive(&bytes).map_err(|e| {
        CommandError::failed(format!("{} holds no usable comfydock binary: {e}", archive.file))
    })?;
    replace_binary(exe, &binary)?;
    print(true, &|| {
        ctx.printer.status(
            "Updated",
            format!("comfydock {current} → {} ({})", manifest.version, exe.display()),
        );
    });
    Ok(())
}

/// `1.2.3` → `[1, 2, 3]`; anything after a `-` or `+` is ignored.
fn version_key(version: &str) -> Vec<u64> {
    version
        .split(['-', '+'])
        .next()
        .unwrap_or_default()
        .split('.')
        .map(|part| part.parse().unwrap_or(0))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// The `comfydock` file of a `.tar.gz` release archive (at its top or in one folder).
fn binary_from_archive(bytes: &[u8]) -> Result<Vec<u8>, std::io::Error> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let is_binary = entry.header().entry_type().is_file()
            && path.file_name().is_some_and(|n| n == "comfydock")
            && path.components().count() <= 2;
        if is_binary {
            let mut binary = Vec::new();
            entry.read_to_end(&mut binary)?;
            return Ok(binary);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "no `comfydock` file in the archive",
    ))
}

/// Write the new binary next to the old one, then rename it over (atomic on one file system; the
/// running process keeps its open copy).
fn replace_binary(exe: &Path, binary: &[u8]) -> Result<(), CommandError> {
    let dir = exe.parent().unwrap_or(Path::new("."));
    let staged = dir.join(".comfydock.update");
    fs_err::write(&staged, binary)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs_err::set_permissions(&staged, std::fs::Permissions::from_mode(0o755))?;
    }
    fs_err::rename(&staged, exe).inspect_err(|_| {
        let _ = fs_err::remove_file(&staged);
    })?;
    Ok(())
}
