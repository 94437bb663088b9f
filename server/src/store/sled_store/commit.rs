//! Group commit: one thread makes the sled store's writes durable, for many requests at once.
//!
//! A request queues a [`Job`]: either a wait (it wrote to sled itself, as an ack does on a
//! blocking thread) or a write for this thread to make (a small deposit's `compare_and_swap`).
//! The thread takes every job queued so far, makes the writes, makes everything durable once, and
//! answers them all. A wait is only queued after its write completed, and the queue is drained
//! before the commit starts, so every answered write is on disk. One `fdatasync` then serves a
//! whole burst of deposits.
//!
//! Why small deposits are written here and not on the request's task: a `compare_and_swap` into
//! sled is usually an in-memory append of a few microseconds, but now and then it waits, for a
//! leaf to be paged in once the stored envelopes outgrow the cache, or for sled's log buffers to
//! drain (measured: over a thousand swaps of 2 to 64 ms in one benchmark run). On an async
//! worker such a wait stalls every request that worker serves; here it only delays the deposits
//! of one commit. The requests' CPU is the same: the write moves, nothing is added.
//!
//! Why a thread of its own, not a tokio task: the commit blocks on the disk, and sled 0.34.7's
//! `flush_async` can deadlock when many tasks await it at once (sled issue #1308). The thread
//! needs no runtime; requests reach it through a bounded channel (a full queue makes them wait).
//!
//! What "durable" takes, because sled 0.34.7 does not do it itself before `flush` returns
//! ([`Durability`]):
//! * sled's log file `db` is written with `sync_file_range`, which neither flushes the file's
//!   metadata nor the disk's volatile cache, so it does not survive power loss: one
//!   `fdatasync` on a handle opened once fixes that;
//! * values (and tree pages) larger than about a quarter of a 512 KiB segment go to blob files
//!   `blobs/<lsn>`, written and never synced: each new blob is synced once, and the `blobs`
//!   directory after new entries appear. (The relay keeps envelopes over 64 KiB in files of its
//!   own, so blobs are rare: large tree pages, and stores written by older relays.)

use crate::store::StoreError;
use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// How many commit requests may wait in the queue; a full queue makes requests wait.
const QUEUE: usize = 1024;

/// What the commit thread calls once the writes queued before it are durable (or the commit
/// failed): a request's answer, sent on.
pub(super) type Waiter = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// A write this thread makes before the next commit; it returns the waiter that answers it.
pub(super) type Write = Box<dyn FnOnce() -> Waiter + Send>;

/// What a request queues.
pub(super) enum Job {
    /// Answer once everything written before is durable.
    Wait(Waiter),
    /// Make this write, then answer once it is durable.
    Write(Write),
}

/// Counters of the commit thread, for `stats`.
#[derive(Debug, Default)]
pub struct FlushCounters {
    /// Commits made.
    pub flushes: AtomicU64,
    /// Requests answered (one per durable write request).
    pub waiters: AtomicU64,
    /// Largest number of requests one commit answered.
    pub max_batch: AtomicU64,
    /// Total time spent committing, microseconds.
    pub flush_micros: AtomicU64,
    /// Longest single commit, microseconds.
    pub max_flush_micros: AtomicU64,
    /// Commits that failed.
    pub failures: AtomicU64,
    /// Whether the last commit failed.
    pub last_failed: AtomicBool,
}

/// A plain copy of [`FlushCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FlushStats {
    /// Commits made.
    pub flushes: u64,
    /// Requests answered (one per durable write request).
    pub waiters: u64,
    /// Largest number of requests one commit answered.
    pub max_batch: u64,
    /// Total time spent committing, microseconds.
    pub flush_micros: u64,
    /// Longest single commit, microseconds.
    pub max_flush_micros: u64,
    /// Commits that failed.
    pub failures: u64,
}

impl FlushCounters {
    /// Whether the last commit (if any) succeeded.
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

    fn record(&self, batch: usize, micros: u64, ok: bool) {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.waiters.fetch_add(batch as u64, Ordering::Relaxed);
        self.max_batch.fetch_max(batch as u64, Ordering::Relaxed);
        self.flush_micros.fetch_add(micros, Ordering::Relaxed);
        self.max_flush_micros.fetch_max(micros, Ordering::Relaxed);
        self.last_failed.store(!ok, Ordering::Relaxed);
        if !ok {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The handle requests use to wait for a commit. Dropping it ends the thread and waits for it,
/// so whatever the thread holds (sled's database, and with it the directory's lock) is released
/// when the store is.
pub(super) struct Committer {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    counters: Arc<FlushCounters>,
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Committer {
    /// Start the commit thread; `commit` makes everything written so far durable.
    pub(super) fn start(
        commit: impl Fn() -> Result<(), StoreError> + Send + 'static,
    ) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let counters = Arc::new(FlushCounters::default());
        let c = counters.clone();
        let thread = std::thread::Builder::new()
            .name("vigil-store-commit".into())
            .spawn(move || run(rx, &commit, &c))
            .map_err(|e| StoreError::Backend(format!("cannot start the commit thread: {e}")))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            counters,
        })
    }

    /// Wait until every write completed before this call is durable.
    pub(super) async fn wait(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        let queue = self.tx.as_ref().ok_or_else(stopped)?;
        let waiter: Waiter = Box::new(move |r| {
            let _ = tx.send(r);
        });
        queue.send(Job::Wait(waiter)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Have the commit thread make `write` before its next commit; answers with what the write
    /// returned, once it is durable.
    pub(super) async fn write<T: Send + 'static>(
        &self,
        write: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        let queue = self.tx.as_ref().ok_or_else(stopped)?;
        let job: Write = Box::new(move || {
            let made = write();
            Box::new(move |committed: Result<(), StoreError>| {
                let _ = tx.send(made.and_then(|v| committed.map(|()| v)));
            })
        });
        queue.send(Job::Write(job)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    pub(super) fn counters(&self) -> &FlushCounters {
        &self.counters
    }
}

/// The commit thread is gone (the store is closing, or the thread failed to start).
pub(super) fn stopped() -> StoreError {
    StoreError::Backend("the store's commit thread has stopped".into())
}

fn run(
    mut rx: mpsc::Receiver<Job>,
    commit: &dyn Fn() -> Result<(), StoreError>,
    c: &FlushCounters,
) {
    let answer = |job: Job| match job {
        Job::Wait(w) => w,
        Job::Write(write) => write(),
    };
    while let Some(first) = rx.blocking_recv() {
        let mut waiters = vec![answer(first)];
        while let Ok(job) = rx.try_recv() {
            waiters.push(answer(job));
        }
        let started = Instant::now();
        let result = commit();
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        c.record(waiters.len(), micros, result.is_ok());
        if let Err(e) = &result {
            tracing::error!(error = %e, "making the store's writes durable failed");
        }
        tracing::trace!(batch = waiters.len(), "group commit");
        for w in waiters {
            w(result.clone());
        }
    }
}

fn io_err(e: std::io::Error) -> StoreError {
    StoreError::from_io(&e)
}

/// What sled's own flush leaves unsynced (see the module docs), and the syncing of it.
pub(super) struct Durability {
    /// sled's log file, opened once at start.
    log: File,
    /// sled's blob directory.
    blobs_dir: PathBuf,
    /// Blob files already synced. Pruned to the files that still exist at every commit.
    synced_blobs: Mutex<HashSet<OsString>>,
}

impl Durability {
    /// For the sled database in `path`. Everything present at start was written by an earlier
    /// run: it is synced once, and the directories, so entries created just before a crash are
    /// durable too.
    pub(super) fn open(path: &Path) -> Result<Self, StoreError> {
        let d = Self {
            log: File::open(path.join("db")).map_err(io_err)?,
            blobs_dir: path.join("blobs"),
            synced_blobs: Mutex::default(),
        };
        d.sync()?;
        vigil_fs::sync_dir(path)?;
        Ok(d)
    }

    /// fdatasync the new blobs, their directory, and the log.
    pub(super) fn sync(&self) -> Result<(), StoreError> {
        let mut synced = self
            .synced_blobs
            .lock()
            .map_err(|_| StoreError::Backend("blob sync state poisoned".into()))?;
        let mut present = HashSet::with_capacity(synced.len());
        let mut new_entries = false;
        match std::fs::read_dir(&self.blobs_dir) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.map_err(io_err)?;
                    let name = entry.file_name();
                    if !synced.contains(&name) {
                        match File::open(entry.path()) {
                            Ok(f) => f.sync_data().map_err(io_err)?,
                            // Removed by sled since the listing (its item was deleted).
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                            Err(e) => return Err(io_err(e)),
                        }
                        new_entries = true;
                    }
                    present.insert(name);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e)),
        }
        if new_entries {
            vigil_fs::sync_dir(&self.blobs_dir)?;
        }
        *synced = present;
        drop(synced);
        self.log.sync_data().map_err(io_err)
    }

    #[cfg(test)]
    pub(super) fn synced_blobs(&self) -> usize {
        self.synced_blobs.lock().map(|s| s.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Group commit: many concurrent waiters share far fewer commits, and every waiter is
    /// answered only after a commit that started after it was queued.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_waiters_share_commits() {
        let commits = Arc::new(AtomicUsize::new(0));
        let c = commits.clone();
        let committer = Arc::new(
            Committer::start(move || {
                std::thread::sleep(std::time::Duration::from_millis(2));
                c.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .unwrap(),
        );
        const N: usize = 256;
        let mut tasks = Vec::new();
        for _ in 0..N {
            let (committer, commits) = (committer.clone(), commits.clone());
            tasks.push(tokio::spawn(async move {
                let before = commits.load(Ordering::SeqCst);
                committer.wait().await.unwrap();
                assert!(
                    commits.load(Ordering::SeqCst) > before,
                    "answered by a commit that ran after the request"
                );
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let st = committer.counters().snapshot();
        assert_eq!(st.waiters, N as u64);
        assert_eq!(st.flushes, commits.load(Ordering::SeqCst) as u64);
        assert!(
            st.flushes <= N as u64 / 4,
            "{} commits for {N} concurrent waiters",
            st.flushes
        );
        assert!(st.max_batch > 1);
    }

    #[tokio::test]
    async fn writes_are_made_by_the_commit_thread_and_answered_once_durable() {
        let made = Arc::new(AtomicUsize::new(0));
        let m = made.clone();
        let committer = Committer::start(move || {
            // The commit sees every write queued before it.
            assert!(m.load(Ordering::SeqCst) > 0);
            Ok(())
        })
        .unwrap();
        let me = std::thread::current().id();
        let m = made.clone();
        let (v, thread) = committer
            .write(move || {
                m.fetch_add(1, Ordering::SeqCst);
                Ok((7, std::thread::current().id()))
            })
            .await
            .unwrap();
        assert_eq!(v, 7);
        assert_ne!(thread, me, "made on the commit thread");
        assert_eq!(
            committer
                .write(|| Err::<(), _>(StoreError::Corrupt("x")))
                .await,
            Err(StoreError::Corrupt("x")),
            "a failed write answers its error"
        );
        assert_eq!(committer.counters().snapshot().waiters, 2);
    }

    #[tokio::test]
    async fn a_failed_commit_fails_its_waiters_and_is_counted() {
        let committer = Committer::start(|| Err(StoreError::NoSpace("disk full".into()))).unwrap();
        assert!(matches!(
            committer.wait().await,
            Err(StoreError::NoSpace(_))
        ));
        assert!(!committer.counters().last_ok());
        assert_eq!(committer.counters().snapshot().failures, 1);
    }
}
