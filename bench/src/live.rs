//! Issue 15, the live inbox: how soon a watcher has a deposit.
//!
//! An in-process relay (sled store, as `vigil-relay` runs) on 127.0.0.1, one mailbox, one
//! watcher connection running what `vigil inbox watch` runs per relay over the library: Wait,
//! and on a wake Fetch and Ack, then Wait again. A depositing client on a connection of its own
//! deposits one envelope (4 KiB, numbered) at a time; the time from its `deposit` call returning
//! (the relay answered "stored": the envelope is durable) to the watcher's Fetch having returned
//! that envelope is one sample. The next deposit follows once the watcher has it.
//!
//! - `live_inbox_latency_ms_p50`, `live_inbox_latency_ms_p99`: the median and 99th percentile
//!   over the deposits (`live_inbox_deposits`). A sample is 0 when the watcher had the envelope
//!   before the depositor heard "stored": the relay wakes waiters as soon as the deposit is
//!   durable, before it writes its answer. Goal: p99 < 500 ms on loopback.
//! - `live_inbox_wakes`: Waits answered with items (at most one per deposit; fewer when a
//!   deposit came while the watcher was fetching, and its next Wait was answered at once).
//!
//! What it leaves out: `inbox watch` also decrypts, verifies and stores each report in the
//! vault (an fsync or two and one age decryption, measured by the `crypto` and `panic` phases).

use crate::report::Report;
use crate::util::{filler, quantile};
use anyhow::{anyhow, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use vigil_client::relay::RelayClient;
use vigil_core::ids::DepositId;

/// Size of each deposited envelope.
const ENVELOPE: usize = 4096;

/// Run the phase with `deposits` deposits.
pub async fn run(deposits: usize, out: &mut Report) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = vigil_relay::start(vigil_relay::RelayConfig::new(
        dir.path(),
        "127.0.0.1:0".parse()?,
    ))
    .await?;
    let (addr, fp) = (relay.local_addr().to_string(), relay.fingerprint());
    let key = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    let watcher = RelayClient::connect(&addr, &fp).await?;
    let mailbox = watcher.register(&key).await?;
    let depositor = RelayClient::connect(&addr, &fp).await?;

    // The watcher: each envelope's number, and when its fetch returned it.
    let (tx, mut got) = mpsc::unbounded_channel::<(u64, Instant)>();
    let wakes = Arc::new(AtomicU64::new(0));
    let watching = tokio::spawn({
        let wakes = wakes.clone();
        async move {
            loop {
                if watcher.wait(&key, 60).await? == 0 {
                    continue;
                }
                wakes.fetch_add(1, Ordering::Relaxed);
                let items = watcher.fetch(&key, 64).await?;
                let now = Instant::now();
                let mut ids = Vec::with_capacity(items.len());
                for it in items {
                    let n = u64::from_be_bytes(it.envelope[..8].try_into()?);
                    if tx.send((n, now)).is_err() {
                        return Ok::<(), anyhow::Error>(());
                    }
                    ids.push(it.id);
                }
                watcher.ack(&key, &ids).await?;
            }
        }
    });

    let mut ms = Vec::with_capacity(deposits);
    for n in 0..deposits as u64 {
        let mut envelope = n.to_be_bytes().to_vec();
        envelope.extend_from_slice(&filler(ENVELOPE - 8, n));
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&n.to_be_bytes());
        depositor
            .deposit(&mailbox, &DepositId(id), &envelope)
            .await?;
        let stored = Instant::now();
        let seen = loop {
            match tokio::time::timeout(Duration::from_secs(10), got.recv()).await {
                Ok(Some((m, at))) if m == n => break at,
                Ok(Some(_)) => {}
                Ok(None) => {
                    let ended = watching.await?;
                    return Err(anyhow!("the watcher stopped: {ended:?}"));
                }
                Err(_) => return Err(anyhow!("deposit {n} did not reach the watcher in 10 s")),
            }
        };
        ms.push(seen.saturating_duration_since(stored).as_secs_f64() * 1e3);
    }
    watching.abort();
    out.set("live_inbox_deposits", deposits as f64);
    out.set("live_inbox_wakes", wakes.load(Ordering::Relaxed) as f64);
    out.set("live_inbox_latency_ms_p50", quantile(&mut ms, 0.50));
    out.set("live_inbox_latency_ms_p99", quantile(&mut ms, 0.99));
    depositor.close().await;
    tokio::time::timeout(Duration::from_secs(30), relay.shutdown())
        .await
        .map_err(|_| anyhow!("the relay did not stop"))??;
    Ok(())
}
