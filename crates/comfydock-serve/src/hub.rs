//! In-process signals between HTTP handlers and workers: "job X has new events", "a job was
//! queued", and cancellation of running jobs.
//!
//! Events themselves live in the store (the source of truth, shared by every instance); the hub
//! only says when to look, so a WebSocket sees this process's events at once and other
//! instances' events on its next poll.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Cheap to clone.
#[derive(Clone)]
pub struct EventHub {
    changed: broadcast::Sender<Uuid>,
    running: Arc<Mutex<HashMap<Uuid, CancellationToken>>>,
    queued: Arc<Notify>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new()
    }
}

impl EventHub {
    pub fn new() -> Self {
        let (changed, _) = broadcast::channel(1024);
        Self {
            changed,
            running: Arc::default(),
            queued: Arc::new(Notify::new()),
        }
    }

    /// Says that job `id` has new events.
    pub fn changed(&self, id: Uuid) {
        let _ = self.changed.send(id);
    }

    /// Receives the ids of jobs with new events.
    pub fn subscribe(&self) -> broadcast::Receiver<Uuid> {
        self.changed.subscribe()
    }

    /// Wakes idle workers after an enqueue.
    pub fn job_queued(&self) {
        self.queued.notify_waiters();
    }

    /// A future that completes at the next [`EventHub::job_queued`]. Call `enable()` on it
    /// (pinned) before looking at the queue, so an enqueue in between is not missed.
    pub fn queued_signal(&self) -> tokio::sync::futures::Notified<'_> {
        self.queued.notified()
    }

    /// Registers a running job; the token fires when it is cancelled.
    pub fn start(&self, id: Uuid) -> CancellationToken {
        let token = CancellationToken::new();
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, token.clone());
        token
    }

    /// Forgets a running job.
    pub fn finish(&self, id: Uuid) {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    /// Cancels a job running in this process. False when it does not run here.
    pub fn cancel(&self, id: Uuid) -> bool {
        let token = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned();
        token.inspect(CancellationToken::cancel).is_some()
    }
}
