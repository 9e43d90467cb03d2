//! HTTP GET with redirects followed by hand, so `Authorization` is only ever sent to the host
//! its token belongs to (see `Endpoints::authorization_for`).

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue, LOCATION, RANGE};
use url::Url;

use crate::endpoints::{Endpoints, Tokens, redact_url, same_host};

/// More redirects than this is a loop.
const MAX_REDIRECTS: usize = 10;

/// A request could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("Request to `{url}` failed")]
    Network {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("Too many redirects starting at `{url}`")]
    TooManyRedirects { url: String },
    #[error("`{url}` redirected to an invalid location")]
    BadRedirect { url: String },
    #[error("Cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// The HTTP client plus the rules for which token goes where.
#[derive(Debug, Clone)]
pub(crate) struct HttpContext {
    client: reqwest::Client,
    pub endpoints: Endpoints,
    tokens: Tokens,
}

impl HttpContext {
    pub fn new(endpoints: Endpoints, tokens: Tokens) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_mins(2))
            .user_agent(concat!("comfydock/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(FetchError::Client)?;
        Ok(Self {
            client,
            endpoints,
            tokens,
        })
    }

    /// GET `url` (from byte `range_from` if given), following redirects; returns the final
    /// response and the URL that produced it.
    pub async fn get(
        &self,
        url: &Url,
        range_from: Option<u64>,
    ) -> Result<(reqwest::Response, Url), FetchError> {
        self.get_with_published_hash(url, range_from)
            .await
            .map(|(response, url, _)| (response, url))
    }

    /// Like [`HttpContext::get`], and also returns the sha256 the Hugging Face endpoint
    /// publishes for an LFS file (`X-Linked-Etag` on its redirect), if any.
    pub async fn get_with_published_hash(
        &self,
        url: &Url,
        range_from: Option<u64>,
    ) -> Result<(reqwest::Response, Url, Option<String>), FetchError> {
        let mut published_sha256 = None;
        let mut current = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let mut request = self.client.get(current.clone());
            if let Some(offset) = range_from {
                request = request.header(RANGE, format!("bytes={offset}-"));
            }
            if let Some(authorization) = self.endpoints.authorization_for(&current, &self.tokens)
                && let Ok(mut value) = HeaderValue::from_str(&authorization)
            {
                value.set_sensitive(true);
                request = request.header(AUTHORIZATION, value);
            }
            let response = request.send().await.map_err(|source| FetchError::Network {
                url: redact_url(current.as_str()),
                source: source.without_url(),
            })?;
            if same_host(&current, &self.endpoints.huggingface)
                && let Some(sha256) = linked_sha256(&response)
            {
                published_sha256 = Some(sha256);
            }
            if !response.status().is_redirection() {
                return Ok((response, current, published_sha256));
            }
            let Some(location) = response.headers().get(LOCATION).and_then(|v| v.to_str().ok()) else {
                return Ok((response, current, published_sha256));
            };
            current = current.join(location).map_err(|_| FetchError::BadRedirect {
                url: redact_url(current.as_str()),
            })?;
        }
        Err(FetchError::TooManyRedirects {
            url: redact_url(url.as_str()),
        })
    }

    /// GET a JSON document; `Ok(None)` for 404.
    pub async fn get_json(&self, url: &Url) -> Result<Option<serde_json::Value>, JsonFetchError> {
        let (response, _) = self.get(url, None).await?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(JsonFetchError::Status {
                url: redact_url(url.as_str()),
                status: status.as_u16(),
            });
        }
        let bytes = response.bytes().await.map_err(|source| FetchError::Network {
            url: redact_url(url.as_str()),
            source: source.without_url(),
        })?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| JsonFetchError::Json {
                url: redact_url(url.as_str()),
                source,
            })
    }
}

/// A 64-hex `X-Linked-Etag` (Hugging Face's sha256 of an LFS file), lower-cased.
fn linked_sha256(response: &reqwest::Response) -> Option<String> {
    let value = response.headers().get("x-linked-etag")?.to_str().ok()?;
    let value = value.trim().trim_start_matches("W/").trim_matches('"');
    (value.len() == 64 && value.chars().all(|c| c.is_ascii_hexdigit())).then(|| value.to_ascii_lowercase())
}

/// Fetching a JSON document failed.
#[derive(Debug, thiserror::Error)]
pub enum JsonFetchError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("`{url}` answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("`{url}` did not return valid JSON")]
    Json {
        url: String,
        #[source]
        source: serde_json::Error,
    },
}

impl JsonFetchError {
    /// Server trouble worth retrying later.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Fetch(FetchError::Network { .. }) => true,
            Self::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}
