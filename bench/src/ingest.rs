//! Ingest throughput vs raw sled, deposit latency at a steady offered load, and fetch time in
//! a small vs a big store. One in-process relay serves all three, in this order:
//! fill the small store → fetch (small) → measured ingest → fetch (big) → open-loop latency.

use crate::relay_cfg::relay_config;
use crate::report::Report;
use crate::util::{filler, quantile};
use crate::Sizes;
use anyhow::{anyhow, bail, Context, Result};
use ed25519_dalek::SigningKey;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use vigil_client::relay::RelayClient;
use vigil_core::ids::{CertFingerprint, DepositId, MailboxId};

/// Envelope size for ingest, latency and fetch: a typical text report after encryption.
pub const ENVELOPE_LEN: usize = 4096;
/// Items in the mailbox that is fetched.
pub const FETCH_ITEMS: u32 = 10;
/// Mailboxes the "other" reports are spread over.
const OTHER_MAILBOXES: usize = 16;
/// Upper bound on any one load loop.
const PHASE_TIMEOUT: Duration = Duration::from_secs(600);

fn signing_key(seed: u8) -> SigningKey {
    let mut s = [0u8; 32];
    s[0] = seed;
    s[1] = 0xb3;
    SigningKey::from_bytes(&s)
}

fn deposit_id() -> DepositId {
    DepositId(rand::random())
}

/// The anchor: raw sled, same bytes, same concurrency, no network and no crypto. `clients`
/// tokio tasks each insert `(mailbox || task || seq) → envelope` into the default tree and then
/// wait for one flusher task, which takes every waiter queued so far, calls `Db::flush` once
/// (in `spawn_blocking`) and answers them all (group commit, as the relay does).
pub async fn raw_sled(clients: usize, count: usize, envelope: Arc<Vec<u8>>) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let db = sled::open(dir.path().join("raw")).context("cannot open the raw sled anchor")?;
    type Waiter = oneshot::Sender<Result<(), String>>;
    let (tx, mut rx) = mpsc::channel::<Waiter>(1024);
    let fdb = db.clone();
    let flusher = tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut waiters = vec![first];
            while let Ok(w) = rx.try_recv() {
                waiters.push(w);
            }
            let d = fdb.clone();
            let r = match tokio::task::spawn_blocking(move || d.flush()).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            for w in waiters {
                let _ = w.send(r.clone());
            }
        }
    });
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let share = count / clients + usize::from(c < count % clients);
        let (db, tx, env) = (db.clone(), tx.clone(), envelope.clone());
        tasks.spawn(async move {
            for i in 0..share {
                let mut key = [0u8; 48];
                key[0] = (c % OTHER_MAILBOXES) as u8;
                key[32..40].copy_from_slice(&(c as u64).to_be_bytes());
                key[40..48].copy_from_slice(&(i as u64).to_be_bytes());
                db.insert(key, env.as_slice())?;
                let (wtx, wrx) = oneshot::channel();
                tx.send(wtx).await.map_err(|_| anyhow!("flusher stopped"))?;
                wrx.await?.map_err(|e| anyhow!("sled flush failed: {e}"))?;
            }
            anyhow::Ok(())
        });
    }
    drop(tx);
    tokio::time::timeout(PHASE_TIMEOUT, async {
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        anyhow::Ok(())
    })
    .await
    .map_err(|_| anyhow!("raw sled anchor did not finish in time"))??;
    let secs = start.elapsed().as_secs_f64();
    let _ = flusher.await;
    Ok(count as f64 / secs)
}

/// Connect `n` clients, `parallel` handshakes at a time.
async fn connect_many(addr: &str, fp: &CertFingerprint, n: usize) -> Result<Vec<Arc<RelayClient>>> {
    let mut out = Vec::with_capacity(n);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (addr, fp) = (addr.to_string(), *fp);
        set.spawn(async move { RelayClient::connect(&addr, &fp).await });
        if set.len() >= 32 {
            if let Some(r) = set.join_next().await {
                out.push(Arc::new(r??));
            }
        }
    }
    while let Some(r) = set.join_next().await {
        out.push(Arc::new(r??));
    }
    Ok(out)
}

/// Every client deposits its share of `count` envelopes one after another, round-robin over
/// `mailboxes`. Returns the elapsed time.
async fn deposit_many(
    clients: &[Arc<RelayClient>],
    mailboxes: &[MailboxId],
    count: usize,
    envelope: Arc<Vec<u8>>,
) -> Result<Duration> {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let n = clients.len();
    for (c, client) in clients.iter().enumerate() {
        let share = count / n + usize::from(c < count % n);
        let (client, env) = (client.clone(), envelope.clone());
        let mailboxes = mailboxes.to_vec();
        tasks.spawn(async move {
            for i in 0..share {
                let m = &mailboxes[(c + i) % mailboxes.len()];
                client.deposit(m, &deposit_id(), &env).await?;
            }
            anyhow::Ok(())
        });
    }
    tokio::time::timeout(PHASE_TIMEOUT, async {
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        anyhow::Ok(())
    })
    .await
    .map_err(|_| anyhow!("deposits did not finish in time"))??;
    Ok(start.elapsed())
}

/// Median time (ms) of fetching the 10-item mailbox, after warm-up.
async fn fetch_time(client: &RelayClient, key: &SigningKey, reps: usize) -> Result<f64> {
    for _ in 0..3 {
        client.fetch(key, FETCH_ITEMS).await?;
    }
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        let items = client.fetch(key, FETCH_ITEMS).await?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        if items.len() != FETCH_ITEMS as usize {
            bail!("fetched {} items, expected {FETCH_ITEMS}", items.len());
        }
    }
    Ok(quantile(&mut times, 0.5))
}

/// Open loop: deposit `i` is due at `start + i / rate`, whether or not earlier ones finished;
/// its latency runs from when it was due (so queueing delay counts), spread over `conns`
/// connections. Returns (p50, p99, max) in ms and the achieved rate.
async fn open_loop(
    clients: &[Arc<RelayClient>],
    mailbox: MailboxId,
    rate: f64,
    secs: f64,
    envelope: Arc<Vec<u8>>,
) -> Result<(f64, f64, f64, f64)> {
    let n = (rate * secs).round() as usize;
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due).await;
        let (client, env) = (clients[i % clients.len()].clone(), envelope.clone());
        set.spawn(async move {
            tokio::time::timeout(
                Duration::from_secs(10),
                client.deposit(&mailbox, &deposit_id(), &env),
            )
            .await
            .map_err(|_| anyhow!("a deposit took over 10 s"))??;
            anyhow::Ok(due.elapsed().as_secs_f64() * 1e3)
        });
    }
    let mut lat = Vec::with_capacity(n);
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(r) = set.join_next().await {
            lat.push(r??);
        }
        anyhow::Ok(())
    })
    .await
    .map_err(|_| anyhow!("open-loop deposits did not finish in time"))??;
    let achieved = n as f64 / start.elapsed().as_secs_f64();
    let p50 = quantile(&mut lat, 0.5);
    let p99 = quantile(&mut lat, 0.99);
    let max = quantile(&mut lat, 1.0);
    Ok((p50, p99, max, achieved))
}

pub async fn run(s: &Sizes, out: &mut Report) -> Result<()> {
    let envelope = Arc::new(filler(ENVELOPE_LEN, 0x5eed));
    let ingest_count = s.big_store - s.small_store;

    crate::progress(&format!(
        "ingest anchor: raw sled, {} tasks, {ingest_count} × 4 KiB",
        s.clients
    ));
    let raw = raw_sled(s.clients, ingest_count, envelope.clone()).await?;

    let dir = tempfile::tempdir()?;
    let relay = vigil_relay::start(relay_config(dir.path(), s.clients + 64)).await?;
    let addr = relay.local_addr().to_string();
    let fp = relay.fingerprint();
    let result = async {
        let admin = RelayClient::connect(&addr, &fp).await?;
        let ngo = signing_key(200);
        let ngo_box = admin.register(&ngo).await?;
        let mut others = Vec::new();
        for i in 0..OTHER_MAILBOXES {
            others.push(admin.register(&signing_key(i as u8)).await?);
        }
        crate::progress(&format!(
            "fetch: filling the small store ({} reports)",
            s.small_store
        ));
        let fill = connect_many(&addr, &fp, 16).await?;
        deposit_many(&fill, &others, s.small_store, envelope.clone()).await?;
        deposit_many(
            &fill[..1],
            &[ngo_box],
            FETCH_ITEMS as usize,
            envelope.clone(),
        )
        .await?;
        let small = fetch_time(&admin, &ngo, s.fetch_reps).await?;

        crate::progress(&format!(
            "ingest: {} QUIC clients, {ingest_count} × 4 KiB deposits",
            s.clients
        ));
        let clients = connect_many(&addr, &fp, s.clients).await?;
        let took = deposit_many(&clients, &others, ingest_count, envelope.clone()).await?;
        let ingest = ingest_count as f64 / took.as_secs_f64();
        drop(clients);

        crate::progress(&format!("fetch: big store ({} reports)", s.big_store));
        let big = fetch_time(&admin, &ngo, s.fetch_reps).await?;

        crate::progress(&format!(
            "latency: {} deposits/s open loop for {} s",
            s.p99_rate, s.p99_secs
        ));
        let (p50, p99, max, achieved) =
            open_loop(&fill, others[0], s.p99_rate, s.p99_secs, envelope.clone()).await?;
        admin.close().await;

        out.set("ingest_reports_per_s", ingest);
        out.set("ingest_raw_sled_inserts_per_s", raw);
        out.set("ingest_ratio_vs_raw_sled", ingest / raw);
        out.set("ingest_clients", s.clients as f64);
        out.set("ingest_reports", ingest_count as f64);
        out.set("ingest_envelope_bytes", ENVELOPE_LEN as f64);
        out.set("deposit_p99_ms", p99);
        out.set("deposit_p50_ms", p50);
        out.set("deposit_max_ms", max);
        out.set("deposit_offered_per_s", s.p99_rate);
        out.set("deposit_achieved_per_s", achieved);
        out.set("fetch_small_store_ms", small);
        out.set("fetch_big_store_ms", big);
        out.set("fetch_ratio_big_vs_small_store", big / small);
        out.set("fetch_small_store_reports", s.small_store as f64);
        out.set("fetch_big_store_reports", s.big_store as f64);
        anyhow::Ok(())
    }
    .await;
    relay.shutdown().await?;
    result
}
