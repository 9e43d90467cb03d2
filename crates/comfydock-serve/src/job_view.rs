//! The JSON the API shows for jobs and their events. The HTTP answers and the webhook body the
//! worker posts are the same document, so both use these functions.

use serde_json::{Value, json};

use crate::job::{Job, JobEvent, format_ms};

/// The API view of a job.
pub fn job_json(job: &Job) -> Value {
    let params = job.params.as_object().map(|map| {
        map.iter()
            .map(|(name, value)| {
                let shown = match value.get("data").and_then(Value::as_str) {
                    Some(data) => json!({"filename": value["filename"], "base64_length": data.len()}),
                    None => value.clone(),
                };
                (name.clone(), shown)
            })
            .collect::<serde_json::Map<_, _>>()
    });
    json!({
        "id": job.id,
        "workflow": job.workflow,
        "status": job.status,
        "params": params,
        "priority": job.priority,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "idempotency_key": job.idempotency_key,
        "created_at": format_ms(job.created_at),
        "started_at": job.started_at.map(format_ms),
        "finished_at": job.finished_at.map(format_ms),
        "error": job.last_error,
        "outputs": job.outputs.as_ref().map_or(json!([]), |o| o["files"].clone()),
        "events_url": format!("/v1/jobs/{}/events", job.id),
    })
}

/// The API view of a job event (WebSocket messages and the events listing).
pub fn event_json(event: &JobEvent) -> Value {
    json!({"job_id": event.job_id, "seq": event.seq, "at": format_ms(event.at), "kind": event.kind, "data": event.data})
}
