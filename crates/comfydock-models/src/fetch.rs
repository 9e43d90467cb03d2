//! HTTP GET with redirects followed by hand, so `Authorization` is only ever sent to the host
//! its token belongs to (see `Endpoints::authorization_for`).

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue, LOCATION, RANGE};
use url::Url;

use crate::endpoints::{Endpoints, Tokens, redact_url};

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
            if !response.status().is_redirection() {
                return Ok((response, current));
            }
            let Some(location) = response.headers().get(LOCATION).and_then(|v| v.to_str().ok()) else {
                return Ok((response, current));
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
