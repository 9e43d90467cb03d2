//! Typed workspace settings and their resolution: flag > env > config > default.
//!
//! [`KEYS`] is the one place where every key, its environment variable, default and type are
//! written down; `config list`, validation and the README table all come from it.

use std::collections::BTreeMap;

use serde::Serialize;

use comfydock_foundation::Hinted;

/// What kind of value a key holds; decides validation and masking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// An `http(s)://` URL.
    HttpUrl,
    /// Anything `git clone` accepts: a URL, `user@host:path`, or an absolute local path.
    GitUrl,
    /// A path to an existing executable file.
    ExecutablePath,
    /// A token; stored in `credentials.json` (mode 0600) and masked in every output.
    Secret,
}

/// One settings key.
#[derive(Debug)]
pub struct KeySpec {
    pub name: &'static str,
    pub env: &'static str,
    pub default: Option<&'static str>,
    pub kind: ValueKind,
    pub description: &'static str,
}

impl KeySpec {
    pub fn is_secret(&self) -> bool {
        self.kind == ValueKind::Secret
    }
}

/// A settings key, as code names it; [`Key::spec`] is its entry in [`KEYS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    ComfyuiRepo,
    RegistryUrl,
    TorchIndexUrl,
    ManagerDataUrl,
    HuggingfaceEndpoint,
    CivitaiUrl,
    UvPath,
    TokensHuggingface,
    TokensCivitai,
}

impl Key {
    /// Every key, in the order of [`KEYS`].
    pub const ALL: [Self; 9] = [
        Self::ComfyuiRepo,
        Self::RegistryUrl,
        Self::TorchIndexUrl,
        Self::ManagerDataUrl,
        Self::HuggingfaceEndpoint,
        Self::CivitaiUrl,
        Self::UvPath,
        Self::TokensHuggingface,
        Self::TokensCivitai,
    ];

    pub fn spec(self) -> &'static KeySpec {
        &KEYS[self as usize]
    }

    /// The key as users write it (`comfyui.repo`).
    pub fn name(self) -> &'static str {
        self.spec().name
    }
}

/// Every settings key, in display order (the order of [`Key`]).
pub const KEYS: &[KeySpec] = &[
    KeySpec {
        name: "comfyui.repo",
        env: "COMFYDOCK_COMFYUI_REPO",
        default: Some("https://github.com/comfyanonymous/ComfyUI"),
        kind: ValueKind::GitUrl,
        description: "Git repository ComfyUI is cloned from",
    },
    KeySpec {
        name: "registry.url",
        env: "COMFYDOCK_REGISTRY_URL",
        default: Some("https://api.comfy.org"),
        kind: ValueKind::HttpUrl,
        description: "ComfyUI Registry API",
    },
    KeySpec {
        name: "torch.index_url",
        env: "COMFYDOCK_TORCH_INDEX_URL",
        default: Some("https://download.pytorch.org/whl"),
        kind: ValueKind::HttpUrl,
        description: "PyTorch wheel index; the backend (`/cpu`, `/cu128`, ...) is appended",
    },
    KeySpec {
        name: "manager_data.url",
        env: "COMFYDOCK_MANAGER_DATA_URL",
        default: Some("https://raw.githubusercontent.com/ltdrdata/ComfyUI-Manager/main"),
        kind: ValueKind::HttpUrl,
        description: "ComfyUI-Manager's data files (extension-node-map.json, ...)",
    },
    KeySpec {
        name: "huggingface.endpoint",
        env: "HF_ENDPOINT",
        default: Some("https://huggingface.co"),
        kind: ValueKind::HttpUrl,
        description: "Hugging Face endpoint; `tokens.huggingface` is only sent to this host",
    },
    KeySpec {
        name: "civitai.url",
        env: "COMFYDOCK_CIVITAI_URL",
        default: Some("https://civitai.com"),
        kind: ValueKind::HttpUrl,
        description: "Civitai site and API; `tokens.civitai` is only sent to this host",
    },
    KeySpec {
        name: "uv.path",
        env: "COMFYDOCK_UV",
        default: None,
        kind: ValueKind::ExecutablePath,
        description: "uv binary; else found on PATH, else installed into <workspace>/tools",
    },
    KeySpec {
        name: "tokens.huggingface",
        env: "HF_TOKEN",
        default: None,
        kind: ValueKind::Secret,
        description: "Hugging Face access token",
    },
    KeySpec {
        name: "tokens.civitai",
        env: "CIVITAI_API_TOKEN",
        default: None,
        kind: ValueKind::Secret,
        description: "Civitai API token",
    },
];

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("Unknown setting `{key}`")]
    UnknownKey {
        key: String,
        suggestion: Option<&'static str>,
    },
    #[error("Invalid value `{value}` for `{key}`: {reason}")]
    InvalidValue {
        key: &'static str,
        value: String,
        reason: String,
    },
    #[error("Invalid override `{0}`: expected KEY=VALUE")]
    InvalidOverride(String),
}

impl Hinted for SettingsError {
    fn hint(&self) -> Option<String> {
        match self {
            Self::UnknownKey {
                suggestion: Some(s), ..
            } => Some(format!("did you mean `{s}`?")),
            Self::UnknownKey { suggestion: None, .. } => {
                Some("run `comfydock config list` to see every key".to_owned())
            }
            Self::InvalidValue { .. } | Self::InvalidOverride(_) => None,
        }
    }
}

/// Look a key up by name.
pub fn key_spec(name: &str) -> Result<&'static KeySpec, SettingsError> {
    KEYS.iter()
        .find(|k| k.name == name)
        .ok_or_else(|| SettingsError::UnknownKey {
            key: name.to_owned(),
            suggestion: closest_key(name),
        })
}

fn closest_key(name: &str) -> Option<&'static str> {
    KEYS.iter()
        .map(|k| (edit_distance(name, k.name), k.name))
        .filter(|(d, k)| *d <= k.len() / 3 + 1)
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance, for "did you mean" suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Check a value for `key` and return it normalised (trimmed, no trailing `/` on URLs).
pub fn validate(key: &'static KeySpec, value: &str) -> Result<String, SettingsError> {
    let invalid = |reason: String| SettingsError::InvalidValue {
        key: key.name,
        value: if key.is_secret() {
            mask(value)
        } else {
            value.to_owned()
        },
        reason,
    };
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid(
            "the value is empty; use `comfydock config unset` to remove it".into(),
        ));
    }
    match key.kind {
        ValueKind::HttpUrl => {
            let url = url::Url::parse(value).map_err(|e| invalid(format!("not a URL ({e})")))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(invalid("expected an http:// or https:// URL".into()));
            }
            Ok(value.trim_end_matches('/').to_owned())
        }
        ValueKind::GitUrl => {
            let is_scp_like = value.contains('@') && value.contains(':') && !value.contains("://");
            let is_path = std::path::Path::new(value).is_absolute();
            if let Ok(url) = url::Url::parse(value) {
                if matches!(url.scheme(), "http" | "https" | "ssh" | "git" | "file") {
                    return Ok(value.trim_end_matches('/').to_owned());
                }
                if !is_scp_like {
                    return Err(invalid(format!("unsupported URL scheme `{}`", url.scheme())));
                }
            }
            if is_scp_like || is_path {
                Ok(value.to_owned())
            } else {
                Err(invalid(
                    "expected a git URL (https://, ssh://, file://, user@host:path) or an absolute path"
                        .into(),
                ))
            }
        }
        ValueKind::ExecutablePath => {
            let path = std::path::Path::new(value);
            if !path.is_file() {
                return Err(invalid("no such file".into()));
            }
            Ok(value.to_owned())
        }
        ValueKind::Secret => {
            if value.chars().any(char::is_whitespace) {
                return Err(invalid("tokens cannot contain whitespace".into()));
            }
            Ok(value.to_owned())
        }
    }
}

/// Hide a secret: only its last four characters, and only when it is long enough.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() >= 12 {
        format!("****{}", chars[chars.len() - 4..].iter().collect::<String>())
    } else {
        "****".to_owned()
    }
}

/// Where a resolved value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Default,
    Config,
    Env,
    Flag,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Default => "default",
            Self::Config => "config",
            Self::Env => "env",
            Self::Flag => "flag",
        })
    }
}

/// A key's effective value and where it came from.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub spec: &'static KeySpec,
    pub value: Option<String>,
    pub origin: Origin,
}

impl Resolved {
    /// The value as it may be shown: secrets masked.
    pub fn display_value(&self) -> Option<String> {
        self.value.as_deref().map(|v| {
            if self.spec.is_secret() {
                mask(v)
            } else {
                v.to_owned()
            }
        })
    }
}

/// All setting layers; [`Settings::get`] resolves flag > env > config > default.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `-c KEY=VALUE` overrides from the command line.
    pub flags: BTreeMap<String, String>,
    /// Environment variables by name (a snapshot, so tests and the server can inject them).
    pub env: BTreeMap<String, String>,
    /// Values from `workspace.json` settings.
    pub config: BTreeMap<String, String>,
    /// Values from `credentials.json`.
    pub credentials: BTreeMap<String, String>,
}

impl Settings {
    /// Snapshot the process environment for every key's variable.
    pub fn env_snapshot() -> BTreeMap<String, String> {
        KEYS.iter()
            .filter_map(|k| {
                std::env::var(k.env)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .map(|v| (k.env.to_owned(), v))
            })
            .collect()
    }

    /// Parse `KEY=VALUE` command-line overrides, validating each.
    pub fn parse_flags(overrides: &[String]) -> Result<BTreeMap<String, String>, SettingsError> {
        overrides
            .iter()
            .map(|o| {
                let (k, v) = o
                    .split_once('=')
                    .ok_or_else(|| SettingsError::InvalidOverride(o.clone()))?;
                let spec = key_spec(k.trim())?;
                Ok((spec.name.to_owned(), validate(spec, v)?))
            })
            .collect()
    }

    pub fn get(&self, spec: &'static KeySpec) -> Resolved {
        let stored = if spec.is_secret() {
            &self.credentials
        } else {
            &self.config
        };
        let (value, origin) = if let Some(v) = self.flags.get(spec.name) {
            (Some(v.clone()), Origin::Flag)
        } else if let Some(v) = self.env.get(spec.env) {
            (Some(v.clone()), Origin::Env)
        } else if let Some(v) = stored.get(spec.name) {
            (Some(v.clone()), Origin::Config)
        } else {
            (spec.default.map(str::to_owned), Origin::Default)
        };
        Resolved { spec, value, origin }
    }

    /// The effective value of `key`.
    pub fn value(&self, key: Key) -> Option<String> {
        self.get(key.spec()).value
    }

    pub fn all(&self) -> Vec<Resolved> {
        KEYS.iter().map(|k| self.get(k)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_names_its_own_spec() {
        assert_eq!(Key::ALL.len(), KEYS.len());
        for (key, spec) in Key::ALL.iter().zip(KEYS) {
            assert_eq!(key.name(), spec.name, "{key:?}");
        }
        assert_eq!(Key::TokensCivitai.spec().env, "CIVITAI_API_TOKEN");
    }

    #[test]
    fn precedence_is_flag_env_config_default() {
        let spec = key_spec("registry.url").unwrap();
        let mut s = Settings::default();
        assert_eq!(s.get(spec).origin, Origin::Default);
        s.config.insert("registry.url".into(), "http://config".into());
        assert_eq!(s.get(spec).origin, Origin::Config);
        s.env.insert("COMFYDOCK_REGISTRY_URL".into(), "http://env".into());
        assert_eq!(s.get(spec).value.as_deref(), Some("http://env"));
        s.flags.insert("registry.url".into(), "http://flag".into());
        let r = s.get(spec);
        assert_eq!(
            (r.value.as_deref(), r.origin),
            (Some("http://flag"), Origin::Flag)
        );
    }

    #[test]
    fn validation() {
        let url = key_spec("registry.url").unwrap();
        assert!(validate(url, "not-a-url").is_err());
        assert!(validate(url, "ftp://x.org").is_err());
        assert_eq!(
            validate(url, "http://127.0.0.1:9/").unwrap(),
            "http://127.0.0.1:9"
        );
        let git = key_spec("comfyui.repo").unwrap();
        assert!(validate(git, "git@github.com:a/b.git").is_ok());
        assert!(validate(git, "/srv/ComfyUI").is_ok());
        assert!(validate(git, "relative/path").is_err());
        let token = key_spec("tokens.huggingface").unwrap();
        let err = validate(token, "hf_abc def ghijklmnop").unwrap_err().to_string();
        assert!(!err.contains("abc def"), "secret leaked: {err}");
    }

    #[test]
    fn masks_and_suggests() {
        assert_eq!(mask("hf_0123456789abcd"), "****abcd");
        assert_eq!(mask("short"), "****");
        match key_spec("registry.ur").unwrap_err() {
            SettingsError::UnknownKey { suggestion, .. } => assert_eq!(suggestion, Some("registry.url")),
            other => panic!("{other}"),
        }
    }
}
