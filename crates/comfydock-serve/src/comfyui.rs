//! A client of one ComfyUI server: `POST /prompt`, `/ws?clientId=`, `/history/{id}`, `/view`,
//! `/upload/image`, `/interrupt`, `/queue`, `/object_info`, `/system_stats`.

use std::time::Duration;

use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Errors talking to ComfyUI. [`ComfyError::is_transient`] says whether another try (maybe on
/// another backend) could succeed.
#[derive(Debug, thiserror::Error)]
pub enum ComfyError {
    #[error("ComfyUI at `{url}` is unreachable")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("ComfyUI answered `{url}` with HTTP {status}: {body}")]
    Status { url: String, status: u16, body: String },
    #[error("ComfyUI rejected the prompt at `{url}`: {message}")]
    Rejected {
        url: String,
        message: String,
        body: Value,
    },
    #[error("WebSocket `{url}` failed")]
    WebSocket {
        url: String,
        #[source]
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    #[error("WebSocket `{url}` closed before the prompt finished")]
    WebSocketClosed { url: String },
    #[error("ComfyUI at `{url}` sent something unexpected: {message}")]
    Protocol { url: String, message: String },
}

impl ComfyError {
    /// Connection problems and server errors are transient; a rejected prompt is not.
    pub fn is_transient(&self) -> bool {
        match self {
            ComfyError::Unreachable { .. }
            | ComfyError::WebSocket { .. }
            | ComfyError::WebSocketClosed { .. } => true,
            ComfyError::Status { status, .. } => *status >= 500,
            ComfyError::Rejected { .. } | ComfyError::Protocol { .. } => false,
        }
    }
}

/// A file reference in ComfyUI's outputs (`{filename, subfolder, type}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    pub filename: String,
    pub subfolder: String,
    pub kind: String,
}

/// Where a prompt is in a ComfyUI server's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueState {
    Running,
    Pending,
    /// Not in the queue: finished (see the history), never received, or lost with a restart.
    Absent,
}

/// The WebSocket of one client id.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One ComfyUI server.
#[derive(Debug, Clone)]
pub struct ComfyClient {
    base: String,
    http: reqwest::Client,
}

impl ComfyClient {
    /// A client of `base` (`http://127.0.0.1:8188`).
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn check(url: String, response: reqwest::Response) -> Result<reqwest::Response, ComfyError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        Err(ComfyError::Status {
            url,
            status: status.as_u16(),
            body: body.chars().take(500).collect(),
        })
    }

    async fn get_json(&self, path: &str, timeout: Duration) -> Result<Value, ComfyError> {
        let url = self.url(path);
        let response = self
            .http
            .get(&url)
            .timeout(timeout)
            .send()
            .await
            .map_err(|source| ComfyError::Unreachable {
                url: url.clone(),
                source,
            })?;
        let response = Self::check(url.clone(), response).await?;
        response
            .json()
            .await
            .map_err(|source| ComfyError::Unreachable { url, source })
    }

    /// `GET /system_stats` (also the reachability probe).
    pub async fn system_stats(&self) -> Result<Value, ComfyError> {
        self.get_json("/system_stats", Duration::from_secs(5)).await
    }

    /// `GET /object_info`.
    pub async fn object_info(&self) -> Result<Value, ComfyError> {
        self.get_json("/object_info", Duration::from_mins(1)).await
    }

    /// `GET /history/{id}`: the entry once the prompt finished.
    pub async fn history(&self, prompt_id: &str) -> Result<Option<Value>, ComfyError> {
        let body = self
            .get_json(&format!("/history/{prompt_id}"), Duration::from_secs(30))
            .await?;
        Ok(body.get(prompt_id).cloned())
    }

    /// `POST /prompt`. A 400 is [`ComfyError::Rejected`] carrying ComfyUI's `node_errors`.
    pub async fn submit(
        &self,
        prompt: &Value,
        client_id: &str,
        prompt_id: &str,
    ) -> Result<Value, ComfyError> {
        let url = self.url("/prompt");
        let body = json!({"prompt": prompt, "client_id": client_id, "prompt_id": prompt_id});
        let response = self
            .http
            .post(&url)
            .timeout(Duration::from_mins(1))
            .json(&body)
            .send()
            .await
            .map_err(|source| ComfyError::Unreachable {
                url: url.clone(),
                source,
            })?;
        if response.status() == reqwest::StatusCode::BAD_REQUEST {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let message = body["error"]["message"]
                .as_str()
                .unwrap_or("prompt rejected")
                .to_owned();
            return Err(ComfyError::Rejected { url, message, body });
        }
        let response = Self::check(url.clone(), response).await?;
        response
            .json()
            .await
            .map_err(|source| ComfyError::Unreachable { url, source })
    }

    /// `GET /view`: the response to stream the file from, or `None` on 404 (not written yet, or
    /// gone).
    pub async fn view(&self, file: &FileRef) -> Result<Option<reqwest::Response>, ComfyError> {
        let url = url::Url::parse_with_params(
            &self.url("/view"),
            [
                ("filename", &file.filename),
                ("subfolder", &file.subfolder),
                ("type", &file.kind),
            ],
        )
        .map_or_else(|_| self.url("/view"), String::from);
        let response = self
            .http
            .get(&url)
            .timeout(Duration::from_mins(5))
            .send()
            .await
            .map_err(|source| ComfyError::Unreachable {
                url: url.clone(),
                source,
            })?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Self::check(url, response).await.map(Some)
    }

    /// `GET /queue`: whether `prompt_id` is running or waiting there.
    pub async fn queue_state(&self, prompt_id: &str) -> Result<QueueState, ComfyError> {
        let body = self.get_json("/queue", Duration::from_secs(30)).await?;
        let holds = |key: &str| {
            body[key]
                .as_array()
                .into_iter()
                .flatten()
                .any(|item| item[1].as_str() == Some(prompt_id))
        };
        Ok(if holds("queue_running") {
            QueueState::Running
        } else if holds("queue_pending") {
            QueueState::Pending
        } else {
            QueueState::Absent
        })
    }

    /// `POST /queue {"delete": [prompt_id]}`: takes a prompt that has not started out of the queue
    /// (a running one is not affected; see [`ComfyClient::interrupt`]).
    pub async fn delete_queued(&self, prompt_id: &str) -> Result<(), ComfyError> {
        let url = self.url("/queue");
        let response = self
            .http
            .post(&url)
            .timeout(Duration::from_secs(10))
            .json(&json!({"delete": [prompt_id]}))
            .send()
            .await
            .map_err(|source| ComfyError::Unreachable {
                url: url.clone(),
                source,
            })?;
        Self::check(url, response).await.map(drop)
    }

    /// Makes sure `prompt_id` does not run (any more): removes it from the queue, then interrupts it
    /// if it is running. In this order, a prompt that starts in between is still interrupted.
    pub async fn withdraw(&self, prompt_id: &str) -> Result<(), ComfyError> {
        let deleted = self.delete_queued(prompt_id).await;
        self.interrupt(prompt_id).await?;
        deleted
    }

    /// `POST /upload/image` (any media): returns the name to put into the prompt (`sub/name`).
    pub async fn upload(&self, filename: &str, bytes: Vec<u8>) -> Result<String, ComfyError> {
        let url = self.url("/upload/image");
        let form = reqwest::multipart::Form::new()
            .part(
                "image",
                reqwest::multipart::Part::bytes(bytes).file_name(filename.to_owned()),
            )
            .text("type", "input")
            .text("overwrite", "false");
        let response = self
            .http
            .post(&url)
            .timeout(Duration::from_mins(5))
            .multipart(form)
            .send()
            .await
            .map_err(|source| ComfyError::Unreachable {
                url: url.clone(),
                source,
            })?;
        let response = Self::check(url.clone(), response).await?;
        let body: Value = response.json().await.map_err(|source| ComfyError::Unreachable {
            url: url.clone(),
            source,
        })?;
        let name = body["name"].as_str().ok_or_else(|| ComfyError::Protocol {
            url: url.clone(),
            message: format!("upload answer without `name`: {body}"),
        })?;
        let subfolder = body["subfolder"].as_str().unwrap_or("");
        Ok(if subfolder.is_empty() {
            name.to_owned()
        } else {
            format!("{subfolder}/{name}")
        })
    }

    /// `POST /interrupt {"prompt_id"}`: stops that prompt if it is running.
    pub async fn interrupt(&self, prompt_id: &str) -> Result<(), ComfyError> {
        let url = self.url("/interrupt");
        let response = self
            .http
            .post(&url)
            .timeout(Duration::from_secs(10))
            .json(&json!({"prompt_id": prompt_id}))
            .send()
            .await
            .map_err(|source| ComfyError::Unreachable {
                url: url.clone(),
                source,
            })?;
        Self::check(url, response).await.map(drop)
    }

    /// Opens `/ws?clientId=` and waits for the first `status` message.
    pub async fn connect(&self, client_id: &str) -> Result<Socket, ComfyError> {
        let ws_base = self.base.replacen("http", "ws", 1);
        let url = format!("{ws_base}/ws?clientId={client_id}");
        let connect = tokio_tungstenite::connect_async(url.as_str());
        let (mut socket, _) = tokio::time::timeout(Duration::from_secs(10), connect)
            .await
            .map_err(|_| ComfyError::WebSocketClosed { url: url.clone() })?
            .map_err(|source| ComfyError::WebSocket {
                url: url.clone(),
                source: Box::new(source),
            })?;
        // The greeting says the server is ready for our prompts.
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
            Ok(Some(Ok(_))) => Ok(socket),
            Ok(Some(Err(source))) => Err(ComfyError::WebSocket {
                url,
                source: Box::new(source),
            }),
            _ => Err(ComfyError::WebSocketClosed { url }),
        }
    }
}

/// The next JSON message of a socket (binary preview frames are skipped); `None` when closed.
pub async fn next_message(
    socket: &mut Socket,
) -> Option<Result<Value, tokio_tungstenite::tungstenite::Error>> {
    loop {
        match socket.next().await? {
            Ok(Message::Text(text)) => {
                if let Ok(value) = serde_json::from_str(text.as_str()) {
                    return Some(Ok(value));
                }
            }
            Ok(Message::Close(_)) => return None,
            Ok(_) => {}
            Err(error) => return Some(Err(error)),
        }
    }
}

/// Every file reference in a history entry's `outputs`: `(node id, output key, file)`.
pub fn output_files(outputs: &Value) -> Vec<(String, String, FileRef)> {
    let mut files = Vec::new();
    let Some(nodes) = outputs.as_object() else {
        return files;
    };
    for (node_id, ui) in nodes {
        let Some(ui) = ui.as_object() else { continue };
        for (key, entries) in ui {
            for entry in entries.as_array().into_iter().flatten() {
                let Some(filename) = entry.get("filename").and_then(Value::as_str) else {
                    continue;
                };
                files.push((
                    node_id.clone(),
                    key.clone(),
                    FileRef {
                        filename: filename.to_owned(),
                        subfolder: entry
                            .get("subfolder")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                        kind: entry
                            .get("type")
                            .and_then(Value::as_str)
                            .unwrap_or("output")
                            .to_owned(),
                    },
                ));
            }
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_files_of_every_output_kind() {
        let outputs = json!({
            "9": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]},
            "12": {"gifs": [{"filename": "v.mp4", "subfolder": "vid", "type": "output", "format": "video/h264-mp4"}]},
            "13": {"audio": [{"filename": "s.flac", "subfolder": "audio", "type": "output"}], "text": ["hello"]},
            "14": {"images": [{"filename": "w.webp", "subfolder": "", "type": "output"}], "animated": [true]},
        });
        let files = output_files(&outputs);
        let names: Vec<_> = files
            .iter()
            .map(|(node, key, f)| format!("{node}:{key}:{}/{}", f.subfolder, f.filename))
            .collect();
        assert_eq!(
            names,
            [
                "9:images:/a.png",
                "12:gifs:vid/v.mp4",
                "13:audio:audio/s.flac",
                "14:images:/w.webp"
            ]
        );
    }
}
