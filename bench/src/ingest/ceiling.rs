//! The ingest ceiling: the same clients (`RelayClient`, one QUIC connection each) against a bare
//! quinn server that does only what any durable relay must: read the request, insert it into
//! sled (one write) and answer after the same group commit the relay's store uses (sled's flush
//! plus `fdatasync` of its log, on a thread of its own, for every request queued so far).
//!
//! Its sled has the relay's store configuration (page cache size); the server runs on the
//! relay's own QUIC endpoint (`vigil_relay::quic_endpoint`: same TLS,
//! transport limits and UDP buffers) on a runtime of its own, as the relay does in the ingest
//! phase; the two differ only in what they do with a request. `ingest_ratio_vs_ceiling` is the
//! relay's ingest over this, measured in alternating rounds (see `super::run`).

use crate::relay_cfg::relay_config;
use anyhow::{anyhow, Context, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use vigil_core::ids::CertFingerprint;
use vigil_core::wire::deposit::{Stored, HEAD_LEN};
use vigil_core::wire::limits::FRAME_HEADER_LEN;

type Waiter = oneshot::Sender<Result<(), String>>;

/// Group commit on a thread of its own, as the relay's store does it.
fn committer(
    db: sled::Db,
    log: std::fs::File,
    flushes: Arc<std::sync::atomic::AtomicU64>,
) -> mpsc::Sender<Waiter> {
    let (tx, mut rx) = mpsc::channel::<Waiter>(1024);
    std::thread::spawn(move || {
        while let Some(first) = rx.blocking_recv() {
            let mut waiters = vec![first];
            while let Ok(w) = rx.try_recv() {
                waiters.push(w);
            }
            let r = db
                .flush()
                .map_err(|e| e.to_string())
                .and_then(|_| log.sync_data().map_err(|e| e.to_string()));
            flushes.fetch_add(1, Ordering::Relaxed);
            for w in waiters {
                let _ = w.send(r.clone());
            }
        }
    });
    tx
}

/// Serve one connection's streams: read the deposit frame whole, insert it, wait for the
/// commit, answer Stored.
async fn serve(
    conn: quinn::Connection,
    db: sled::Db,
    commit: mpsc::Sender<Waiter>,
    stored: Arc<Vec<u8>>,
) -> Result<()> {
    loop {
        let (mut send, mut recv) = conn.accept_bi().await?;
        let (db, commit, stored) = (db.clone(), commit.clone(), stored.clone());
        tokio::spawn(async move {
            let frame = recv.read_to_end(1 << 20).await?;
            let key = frame
                .get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + HEAD_LEN)
                .ok_or_else(|| anyhow!("short frame"))?;
            db.insert(key, &frame[FRAME_HEADER_LEN + HEAD_LEN..])?;
            let (tx, rx) = oneshot::channel();
            commit.send(tx).await?;
            rx.await?.map_err(|e| anyhow!("commit failed: {e}"))?;
            send.write_all(&stored).await?;
            send.finish()?;
            let _ = tokio::time::timeout(Duration::from_secs(10), send.stopped()).await;
            anyhow::Ok(())
        });
    }
}

/// The ceiling server, running on a runtime of its own until [`Ceiling::stop`].
pub struct Ceiling {
    rt: tokio::runtime::Runtime,
    endpoint: quinn::Endpoint,
    /// Where it listens.
    pub addr: String,
    /// Its certificate, as `RelayClient` pins it.
    pub fp: CertFingerprint,
    flushes: Arc<AtomicU64>,
    _dir: tempfile::TempDir,
}

impl Ceiling {
    /// Start the ceiling server, configured for `clients` connections like the relay.
    pub async fn start(clients: usize) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let config = relay_config(dir.path(), clients + 64);
        let identity = Arc::new(vigil_relay::cert::load_or_create(dir.path())?);
        let front = vigil_relay::cert::load_front(dir.path(), None, None)?;
        let fp = identity.fingerprint();
        let path = dir.path().join("ceiling");
        // sled configured as the relay configures its store (the same page cache bound), so
        // that the two differ only in what the relay does beyond one durable write.
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(config.limits.store_cache_bytes)
            .open()
            .context("cannot open the ceiling's sled")?;
        let log = std::fs::File::open(path.join("db"))?;
        let flushes = Arc::new(AtomicU64::new(0));
        let commit = committer(db.clone(), log, flushes.clone());
        let stored = Arc::new(vigil_core::wire::encode(&Stored { duplicate: false })?);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
            .thread_name("bench-ceiling")
            .enable_all()
            .build()?;
        let endpoint = rt
            .spawn(async move { vigil_relay::quic_endpoint(&config, &front) })
            .await??;
        let addr = endpoint.local_addr()?.to_string();
        let acceptor = endpoint.clone();
        rt.spawn(async move {
            while let Some(incoming) = acceptor.accept().await {
                let (db, commit, stored) = (db.clone(), commit.clone(), stored.clone());
                let identity = identity.clone();
                tokio::spawn(async move {
                    if let Ok(conn) = incoming.await {
                        // The same knock and identity proof as the relay's.
                        if matches!(vigil_relay::answer_knock(&conn, &identity).await, Ok(true)) {
                            let _ = serve(conn, db, commit, stored).await;
                        }
                    }
                });
            }
        });
        Ok(Self {
            rt,
            endpoint,
            addr,
            fp,
            flushes,
            _dir: dir,
        })
    }

    /// Group commits so far.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    /// Close the endpoint and drop the runtime.
    pub fn stop(self) {
        self.endpoint.close(0u32.into(), b"done");
        self.rt.shutdown_background();
    }
}
