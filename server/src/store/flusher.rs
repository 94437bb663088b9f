//! Group commit: one task owns `Store::flush`.
//!
//! sled 0.34.7's `flush_async` can deadlock when many tasks await it at once (sled issue #1308),
//! and a flush per request would also be slow. So handlers write, then hand a oneshot waiter to
//! this task; the task takes every waiter queued so far, flushes once (in `spawn_blocking`) and
//! answers all of them. A waiter is only queued after its write completed, and the queue is
//! drained before the flush starts, so every answered write is on disk.

use super::{Store, StoreError};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// How many flush requests may wait in the queue; a full queue makes handlers wait (bounded
/// channels only).
const FLUSH_QUEUE: usize = 1024;

type Waiter = oneshot::Sender<Result<(), StoreError>>;

/// A handle to the flusher task. Cheap to clone; the task ends when every handle is dropped.
#[derive(Clone)]
pub struct Flusher {
    tx: mpsc::Sender<Waiter>,
}

impl Flusher {
    /// Start the flusher task for `store`.
    pub fn spawn(store: Arc<dyn Store>) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(FLUSH_QUEUE);
        let task = tokio::spawn(run(store, rx));
        (Self { tx }, task)
    }

    /// Wait until every write this task completed before calling is durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(tx)
            .await
            .map_err(|_| StoreError::Backend("flusher has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("flusher has stopped".into()))?
    }
}

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Waiter>) {
    while let Some(first) = rx.recv().await {
        let mut waiters = vec![first];
        while let Ok(w) = rx.try_recv() {
            waiters.push(w);
        }
        let s = store.clone();
        let result = match tokio::task::spawn_blocking(move || s.flush()).await {
            Ok(r) => r,
            Err(e) => Err(StoreError::Backend(format!("flush task failed: {e}"))),
        };
        if let Err(e) = &result {
            tracing::error!(error = %e, "flushing the store failed");
        }
        tracing::trace!(batch = waiters.len(), "group commit");
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }
}
