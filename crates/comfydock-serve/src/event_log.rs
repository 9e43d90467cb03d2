//! A running job's events on their way to the store. The worker records progress, node and
//! output events without waiting; one task writes them in order, each burst in one transaction,
//! and wakes the job's followers. A run waits only where order or durability matters: before a
//! prompt leaves (its `submitting` event must be stored first) and before the outcome is
//! recorded (its events come before `succeeded` or `failed`).

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::hub::EventHub;
use crate::store::JobStore;

enum Entry {
    Event(String, Value),
    /// Answered once every event sent before it was written: the first write error since the
    /// last flush, if any.
    Flush(oneshot::Sender<Result<(), String>>),
}

/// The event log of one run. Dropping it lets the writer finish the events already recorded.
pub struct EventLog {
    job_id: Uuid,
    entries: mpsc::UnboundedSender<Entry>,
}

impl EventLog {
    /// Starts the writer task for `job_id`.
    pub fn start(store: Arc<dyn JobStore>, hub: EventHub, job_id: Uuid) -> Self {
        let (entries, mut received) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut failed: Option<String> = None;
            let mut burst = Vec::new();
            while received.recv_many(&mut burst, 256).await > 0 {
                let mut events = Vec::new();
                for entry in burst.drain(..) {
                    match entry {
                        Entry::Event(kind, data) => events.push((kind, data)),
                        Entry::Flush(done) => {
                            write(&*store, &hub, job_id, &mut events, &mut failed).await;
                            let _ = done.send(failed.take().map_or(Ok(()), Err));
                        }
                    }
                }
                write(&*store, &hub, job_id, &mut events, &mut failed).await;
            }
        });
        Self { job_id, entries }
    }

    /// The job these events belong to.
    pub fn job_id(&self) -> Uuid {
        self.job_id
    }

    /// Records an event; it is written soon, after the events recorded before it.
    pub fn record(&self, kind: &str, data: Value) {
        let _ = self.entries.send(Entry::Event(kind.to_owned(), data));
    }

    /// Waits until every event recorded so far is stored. The error is the first failed write
    /// since the last flush (those events are lost; later ones were still tried).
    pub async fn flush(&self) -> Result<(), String> {
        let (done, written) = oneshot::channel();
        if self.entries.send(Entry::Flush(done)).is_err() {
            return Err("the event writer stopped".to_owned());
        }
        written
            .await
            .unwrap_or_else(|_| Err("the event writer stopped".to_owned()))
    }
}

async fn write(
    store: &dyn JobStore,
    hub: &EventHub,
    job_id: Uuid,
    events: &mut Vec<(String, Value)>,
    failed: &mut Option<String>,
) {
    if events.is_empty() {
        return;
    }
    if let Err(error) = store.append_events(job_id, std::mem::take(events)).await {
        tracing::warn!(%error, %job_id, "recording events failed");
        failed.get_or_insert_with(|| error.to_string());
    }
    hub.changed(job_id);
}
