//! The ingest ceiling: the same clients (`RelayClient`, one QUIC connection each) against a bare
//! quinn server that does only what any durable relay must: read the request, insert it into
//! sled (one write) and answer after the same group commit the relay's store uses (sled's flush
//! plus `fdatasync` of its log, on a thread of its own, for every request queued so far).
//!
//! The server runs on the relay's own QUIC endpoint (`vigil_relay::quic_endpoint`: same TLS,
//! transport limits and UDP buffers) on a runtime of its own, as the relay does in the ingest
//! phase; the two differ only in what they do with a request. `ingest_ratio_vs_ceiling` is the
//! relay's ingest over this.

use super::load::{connect_many, deposit_many};
use crate::relay_cfg::relay_config;
use crate::util::cpu_secs;
use anyhow::{anyhow, Context, Result};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use vigil_core::ids::MailboxId;
use vigil_core::wire::deposit::{Stored, HEAD_LEN};
use vigil_core::wire::limits::FRAME_HEADER_LEN;

/// What the ceiling measured.
pub struct Ceiling {
    pub per_s: f64,
    /// CPU seconds of this process (clients and server).
    pub cpu_secs: f64,
    pub flushes: f64,
}

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
            flushes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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

/// `clients` closed-loop clients deposit `count` envelopes into the ceiling server.
pub async fn ceiling(
    clients: usize,
    count: usize,
    envelope: Arc<Vec<u8>>,
    mailboxes: &[MailboxId],
) -> Result<Ceiling> {
    let dir = tempfile::tempdir()?;
    let config = relay_config(dir.path(), clients + 64);
    let identity = vigil_relay::cert::load_or_create(dir.path())?;
    let fp = identity.fingerprint();
    let path = dir.path().join("ceiling");
    let db = sled::open(&path).context("cannot open the ceiling's sled")?;
    let log = std::fs::File::open(path.join("db"))?;
    let flushes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let commit = committer(db.clone(), log, flushes.clone());
    let stored = Arc::new(vigil_core::wire::encode(&Stored { duplicate: false })?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
        .thread_name("bench-ceiling")
        .enable_all()
        .build()?;
    let endpoint = rt
        .spawn(async move { vigil_relay::quic_endpoint(&config, &identity) })
        .await??;
    let addr = endpoint.local_addr()?.to_string();
    let acceptor = endpoint.clone();
    rt.spawn(async move {
        while let Some(incoming) = acceptor.accept().await {
            let (db, commit, stored) = (db.clone(), commit.clone(), stored.clone());
            tokio::spawn(async move {
                if let Ok(conn) = incoming.await {
                    let _ = serve(conn, db, commit, stored).await;
                }
            });
        }
    });
    let result = async {
        let conns = connect_many(&addr, &fp, clients).await?;
        let f0 = flushes.load(std::sync::atomic::Ordering::Relaxed);
        let cpu0 = cpu_secs()?;
        let took = deposit_many(&conns, mailboxes, count, envelope).await?;
        let cpu = cpu_secs()? - cpu0;
        let f = flushes.load(std::sync::atomic::Ordering::Relaxed) - f0;
        for c in conns {
            if let Ok(c) = Arc::try_unwrap(c) {
                c.close().await;
            }
        }
        anyhow::Ok(Ceiling {
            per_s: count as f64 / took.as_secs_f64(),
            cpu_secs: cpu,
            flushes: f.max(1) as f64,
        })
    }
    .await;
    endpoint.close(0u32.into(), b"done");
    rt.shutdown_background();
    result
}
