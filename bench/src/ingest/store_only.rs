//! The middle step between the anchor and the relay: the relay's own store (`SledStore`, with
//! its group commit), driven by the same tasks with the same bytes, without QUIC. Its CPU per
//! report is `store_us_per_report`.

use super::{deposit_id, join_all, signing_key, OTHER_MAILBOXES};
use crate::util::cpu_secs;
use anyhow::Result;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil_core::ids::MailboxId;
use vigil_core::wire::deposit::Deposit;
use vigil_relay::body::Buffered;
use vigil_relay::store::{Quota, SledStore, Store};

/// What the store-only step measured.
pub struct StoreOnly {
    pub per_s: f64,
    pub flushes: f64,
    pub mean_flush_ms: f64,
    /// Blob files sled left (values and tree pages it writes as files of their own).
    pub blobs: f64,
    /// CPU seconds of this process (tasks, blocking threads and the commit thread).
    pub cpu_secs: f64,
}

pub async fn store_only(clients: usize, count: usize, envelope: Bytes) -> Result<StoreOnly> {
    let dir = tempfile::tempdir()?;
    let quota = Quota {
        max_items: u64::MAX / 4,
        max_bytes: u64::MAX / 4,
    };
    let store: Arc<dyn Store> = Arc::new(SledStore::open(
        &dir.path().join("store"),
        Duration::from_secs(30 * 86400),
        quota,
    )?);
    let mut mailboxes = Vec::new();
    for i in 0..OTHER_MAILBOXES {
        let pk = signing_key(i as u8).verifying_key().to_bytes();
        let m = MailboxId::for_key(&pk);
        store.register(m, pk, None).await?;
        mailboxes.push(m);
    }
    let f0 = store.flush_stats();
    let now = vigil_relay::clock::now_unix();
    let cpu0 = cpu_secs()?;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let share = count / clients + usize::from(c < count % clients);
        let (store, env) = (store.clone(), envelope.clone());
        let m = mailboxes[c % mailboxes.len()];
        tasks.spawn(async move {
            for _ in 0..share {
                let head = Deposit {
                    mailbox: m,
                    deposit_id: deposit_id(),
                    envelope_len: env.len(),
                };
                store
                    .deposit(head, now, &mut Buffered::new(env.clone()))
                    .await?;
            }
            anyhow::Ok(())
        });
    }
    join_all(&mut tasks, "store-only ingest").await?;
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_secs()? - cpu0;
    let f = store.flush_stats();
    let flushes = f.flushes.saturating_sub(f0.flushes).max(1) as f64;
    let flush_ms = f.flush_micros.saturating_sub(f0.flush_micros) as f64 / 1e3;
    drop(store);
    // sled writes large values and large tree pages as separate blob files, which the store
    // fsyncs one by one; count what this run left behind.
    let blobs = std::fs::read_dir(dir.path().join("store").join("blobs"))
        .map(|d| d.count())
        .unwrap_or(0);
    Ok(StoreOnly {
        per_s: count as f64 / secs,
        flushes,
        mean_flush_ms: flush_ms / flushes,
        blobs: blobs as f64,
        cpu_secs: cpu,
    })
}
