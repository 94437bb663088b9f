//! Group commit: one task owns `Store::flush`.
//!
//! sled 0.34.7's `flush_async` can deadlock when many tasks await it at once (sled issue #1308),
//! and a flush per request would also be slow. So handlers write, then hand a oneshot waiter to
//! this task; the task takes every waiter queued so far, flushes once (in `spawn_blocking`) and
//! answers all of them. A waiter is only queued after its write completed, and the queue is
//! drained before the flush starts, so every answered write is on disk.

use super::{Store, StoreError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// How many flush requests may wait in the queue; a full queue makes handlers wait (bounded
/// channels only).
const FLUSH_QUEUE: usize = 1024;

type Waiter = oneshot::Sender<Result<(), StoreError>>;

/// Counters of the flusher task, for `stats` and the group-commit test.
#[derive(Debug, Default)]
pub struct FlushCounters {
    /// `Store::flush` calls made.
    pub flushes: AtomicU64,
    /// Waiters answered (one per durable write request).
    pub waiters: AtomicU64,
    /// Largest number of waiters one flush answered.
    pub max_batch: AtomicU64,
    /// Total time spent in `Store::flush`, microseconds.
    pub flush_micros: AtomicU64,
    /// Longest single `Store::flush`, microseconds.
    pub max_flush_micros: AtomicU64,
    /// Flushes that failed.
    pub failures: AtomicU64,
    /// Whether the last flush failed.
    pub last_failed: std::sync::atomic::AtomicBool,
}

/// A plain copy of [`FlushCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FlushStats {
    /// `Store::flush` calls made.
    pub flushes: u64,
    /// Waiters answered (one per durable write request).
    pub waiters: u64,
    /// Largest number of waiters one flush answered.
    pub max_batch: u64,
    /// Total time spent flushing, microseconds.
    pub flush_micros: u64,
    /// Longest single flush, microseconds.
    pub max_flush_micros: u64,
    /// Flushes that failed.
    pub failures: u64,
}

impl FlushCounters {
    /// Whether the last flush (if any) succeeded.
    pub fn last_ok(&self) -> bool {
        !self.last_failed.load(Ordering::Relaxed)
    }

    /// A snapshot.
    pub fn snapshot(&self) -> FlushStats {
        FlushStats {
            flushes: self.flushes.load(Ordering::Relaxed),
            waiters: self.waiters.load(Ordering::Relaxed),
            max_batch: self.max_batch.load(Ordering::Relaxed),
            flush_micros: self.flush_micros.load(Ordering::Relaxed),
            max_flush_micros: self.max_flush_micros.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }
}

/// A handle to the flusher task. Cheap to clone; the task ends when every handle is dropped.
#[derive(Clone)]
pub struct Flusher {
    tx: mpsc::Sender<Waiter>,
    counters: Arc<FlushCounters>,
}

impl Flusher {
    /// Start the flusher task for `store`.
    pub fn spawn(store: Arc<dyn Store>) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(FLUSH_QUEUE);
        let counters = Arc::new(FlushCounters::default());
        let task = tokio::spawn(run(store, rx, counters.clone()));
        (Self { tx, counters }, task)
    }

    /// Flush counters so far.
    pub fn stats(&self) -> FlushStats {
        self.counters.snapshot()
    }

    /// The live counters (shared with the task).
    pub fn counters(&self) -> Arc<FlushCounters> {
        self.counters.clone()
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

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Waiter>, c: Arc<FlushCounters>) {
    while let Some(first) = rx.recv().await {
        let mut waiters = vec![first];
        while let Ok(w) = rx.try_recv() {
            waiters.push(w);
        }
        let s = store.clone();
        let started = Instant::now();
        let result = match tokio::task::spawn_blocking(move || s.flush()).await {
            Ok(r) => r,
            Err(e) => Err(StoreError::Backend(format!("flush task failed: {e}"))),
        };
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        c.flushes.fetch_add(1, Ordering::Relaxed);
        c.waiters.fetch_add(waiters.len() as u64, Ordering::Relaxed);
        c.max_batch
            .fetch_max(waiters.len() as u64, Ordering::Relaxed);
        c.flush_micros.fetch_add(micros, Ordering::Relaxed);
        c.max_flush_micros.fetch_max(micros, Ordering::Relaxed);
        c.last_failed.store(result.is_err(), Ordering::Relaxed);
        if let Err(e) = &result {
            c.failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "flushing the store failed");
        }
        tracing::trace!(batch = waiters.len(), "group commit");
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Quota, SledStore};
    use std::time::Duration;
    use vigil_core::ids::{DepositId, MailboxId};

    /// Group commit: many concurrent durable writes share far fewer flushes, and each flush is
    /// the real, fsyncing one. Prints the figures for the issue note.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_deposits_share_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            SledStore::open(
                &dir.path().join("db"),
                Duration::from_secs(3600),
                Quota::default(),
            )
            .unwrap(),
        );
        let m = MailboxId::for_key(&[1; 32]);
        store.register_mailbox(&m, &[1; 32]).unwrap();
        let (flusher, _task) = Flusher::spawn(store.clone());
        const N: usize = 256;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..N {
            let (store, flusher) = (store.clone(), flusher.clone());
            tasks.push(tokio::spawn(async move {
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&(i as u64).to_be_bytes());
                tokio::task::spawn_blocking(move || {
                    store.deposit(&m, &DepositId(id), &[i as u8; 4096], 0)
                })
                .await
                .unwrap()
                .unwrap();
                flusher.flush().await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let st = flusher.stats();
        println!(
            "group commit: {N} deposits of 4 KiB, {} flushes (largest batch {}), \
             mean flush {} us, max flush {} us, total {:?}",
            st.flushes,
            st.max_batch,
            st.flush_micros / st.flushes.max(1),
            st.max_flush_micros,
            started.elapsed()
        );
        assert_eq!(st.waiters, N as u64);
        assert!(
            st.flushes <= N as u64 / 4,
            "{} flushes for {N} concurrent deposits",
            st.flushes
        );
        assert_eq!(store.stats().unwrap().items, N as u64);
    }
}
