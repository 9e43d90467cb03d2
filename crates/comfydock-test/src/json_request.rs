//! Sending a request and reading its answer as JSON, the step most HTTP tests repeat.

use serde_json::Value;

/// Sends `request` and returns its body as JSON (whatever the status). Panics when the request
/// fails or the body is not JSON: a test should stop there.
pub async fn json_answer(request: reqwest::RequestBuilder) -> Value {
    request
        .send()
        .await
        .expect("the request is answered")
        .json()
        .await
        .expect("the answer is JSON")
}
