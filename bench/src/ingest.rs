//! Ingest throughput vs raw sled, deposit latency at a steady offered load, and fetch time in
//! a small vs a big store. One in-process relay serves all three, in this order:
//! fill the small store → fetch (small) → measured ingest → fetch (big) → open-loop latency.

use crate::relay_cfg::relay_config;
use crate::report::Report;
use crate::util::{cpu_secs, filler, quantile};
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

/// Wait for every task of a load loop, at most [`PHASE_TIMEOUT`]; the first error wins.
async fn join_all(tasks: &mut tokio::task::JoinSet<Result<()>>, what: &str) -> Result<()> {
    tokio::time::timeout(PHASE_TIMEOUT, async {
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        anyhow::Ok(())
    })
    .await
    .map_err(|_| anyhow!("{what} did not finish in time"))?
}

/// How the raw sled tasks write.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RawWrite {
    /// `Tree::insert` on the task itself: the anchor.
    Inline,
    /// The same insert in `spawn_blocking`, as the relay's handlers call the store.
    SpawnBlocking,
    /// A sled transaction over four trees (item, deposit id, time index, per-mailbox usage
    /// counter read-modify-write), inline: the shape of the relay's `SledStore::deposit`.
    Transaction,
    /// The same transaction in `spawn_blocking`, so up to `clients` run at once, as in the relay.
    TransactionBlocking,
    /// The same five records as the relay writes per deposit, as one atomic `Batch` on one
    /// tree (kinds told apart by a key prefix), inline.
    Batch,
    /// The same five records as five plain inserts (not atomic together), inline: shows
    /// whether the cost is the number of records or sled's atomicity.
    Inserts,
    /// The anchor without the `fdatasync` after each group flush: what sled 0.34.7 alone calls
    /// durable (`sync_file_range`, which does not survive power loss). Measures the price of the
    /// relay's power-loss durability; never used as an anchor.
    InlineWithoutFdatasync,
}

/// What the raw sled anchor measured.
pub struct RawSled {
    pub per_s: f64,
    pub flushes: u64,
    pub flush_secs: f64,
    pub cpu_secs: f64,
}

/// The anchor: raw sled, same bytes, same concurrency, no network and no crypto. `clients`
/// tokio tasks each insert `(mailbox || task || seq) → envelope` into the default tree and then
/// wait for one flusher task, which takes every waiter queued so far, calls `Db::flush` and then
/// `fdatasync` on sled's log file once (in `spawn_blocking`) and answers them all (group
/// commit). The fdatasync is what makes sled 0.34.7 durable at all (its flush only does
/// `sync_file_range`), exactly as the relay's store does; 4 KiB values are never sled blobs.
///
/// `how` picks the anchor ([`RawWrite::Inline`]) or a diagnostic variant that adds one of the
/// relay's costs to it, to attribute the gap between the anchor and the relay.
pub async fn raw_sled(
    clients: usize,
    count: usize,
    envelope: Arc<Vec<u8>>,
    how: RawWrite,
) -> Result<RawSled> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("raw");
    let db = sled::open(&path).context("cannot open the raw sled anchor")?;
    let trees = [
        db.open_tree("items")?,
        db.open_tree("deposits")?,
        db.open_tree("by_time")?,
        db.open_tree("usage")?,
    ];
    let log = Arc::new(std::fs::File::open(path.join("db")).context("cannot open sled's log")?);
    let stats = Arc::new(std::sync::Mutex::new((0u64, 0.0f64)));
    let fstats = stats.clone();
    type Waiter = oneshot::Sender<Result<(), String>>;
    let (tx, mut rx) = mpsc::channel::<Waiter>(1024);
    let fdb = db.clone();
    let flusher = tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut waiters = vec![first];
            while let Ok(w) = rx.try_recv() {
                waiters.push(w);
            }
            let (d, log) = (fdb.clone(), log.clone());
            let t = Instant::now();
            let r = match tokio::task::spawn_blocking(move || {
                d.flush()?;
                if how != RawWrite::InlineWithoutFdatasync {
                    log.sync_data()?;
                }
                anyhow::Ok(())
            })
            .await
            {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Ok(mut st) = fstats.lock() {
                st.0 += 1;
                st.1 += t.elapsed().as_secs_f64();
            }
            for w in waiters {
                let _ = w.send(r.clone());
            }
        }
    });
    let cpu0 = cpu_secs()?;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let share = count / clients + usize::from(c < count % clients);
        let (db, tx, env, trees) = (db.clone(), tx.clone(), envelope.clone(), trees.clone());
        tasks.spawn(async move {
            for i in 0..share {
                let mut key = [0u8; 48];
                key[0] = (c % OTHER_MAILBOXES) as u8;
                key[32..40].copy_from_slice(&(c as u64).to_be_bytes());
                key[40..48].copy_from_slice(&(i as u64).to_be_bytes());
                match how {
                    RawWrite::Inline | RawWrite::InlineWithoutFdatasync => {
                        db.insert(key, env.as_slice())?;
                    }
                    RawWrite::SpawnBlocking => {
                        let (db, env) = (db.clone(), env.clone());
                        tokio::task::spawn_blocking(move || db.insert(key, env.as_slice()))
                            .await??;
                    }
                    RawWrite::Transaction => transaction4(&trees, &key, &env)?,
                    RawWrite::Batch | RawWrite::Inserts => {
                        let mut b = sled::Batch::default();
                        for kind in [b'i', b'd', b't', b'u'] {
                            let mut k = Vec::with_capacity(49);
                            k.push(kind);
                            k.extend_from_slice(&key);
                            if kind == b'i' {
                                b.insert(k, env.as_slice());
                            } else {
                                b.insert(k, &key[32..]);
                            }
                        }
                        let mut k = key.to_vec();
                        k[0] ^= 0x80;
                        b.insert(k.clone(), &[][..]);
                        if how == RawWrite::Batch {
                            db.apply_batch(b)?;
                        } else {
                            for kind in [b'i', b'd', b't', b'u'] {
                                let mut k = Vec::with_capacity(49);
                                k.push(kind);
                                k.extend_from_slice(&key);
                                if kind == b'i' {
                                    db.insert(k, env.as_slice())?;
                                } else {
                                    db.insert(k, &key[32..])?;
                                }
                            }
                            db.insert(k, &[][..])?;
                        }
                    }
                    RawWrite::TransactionBlocking => {
                        let (trees, env) = (trees.clone(), env.clone());
                        tokio::task::spawn_blocking(move || transaction4(&trees, &key, &env))
                            .await??;
                    }
                }
                let (wtx, wrx) = oneshot::channel();
                tx.send(wtx).await.map_err(|_| anyhow!("flusher stopped"))?;
                wrx.await?.map_err(|e| anyhow!("sled flush failed: {e}"))?;
            }
            anyhow::Ok(())
        });
    }
    drop(tx);
    join_all(&mut tasks, "raw sled anchor").await?;
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_secs()? - cpu0;
    let _ = flusher.await;
    let (flushes, flush_secs) = stats.lock().map(|s| *s).unwrap_or_default();
    Ok(RawSled {
        per_s: count as f64 / secs,
        flushes,
        flush_secs,
        cpu_secs: cpu,
    })
}

/// The diagnostic transaction: the relay store's write pattern for one deposit.
fn transaction4(trees: &[sled::Tree; 4], key: &[u8; 48], env: &[u8]) -> Result<()> {
    use sled::transaction::{ConflictableTransactionError, TransactionError};
    use sled::Transactional;
    let value = sled::IVec::from(env);
    let mailbox = &key[..32];
    let r: Result<(), TransactionError<()>> = (&trees[0], &trees[1], &trees[2], &trees[3])
        .transaction(|(items, deposits, by_time, usage)| {
            if deposits.get(&key[..])?.is_some() {
                return Err(ConflictableTransactionError::Abort(()));
            }
            let n = usage
                .get(mailbox)?
                .and_then(|v| <[u8; 8]>::try_from(&v[..]).ok())
                .map_or(0, u64::from_be_bytes);
            items.insert(&key[..], value.clone())?;
            deposits.insert(&key[..], &key[32..])?;
            by_time.insert(&key[..], &[][..])?;
            usage.insert(mailbox, &(n + 1).to_be_bytes()[..])?;
            Ok(())
        });
    r.map_err(|e| anyhow!("sled transaction failed: {e:?}"))
}

/// The middle step between the anchor and the relay: the relay's own store (`SledStore`, its
/// transaction over four trees) and its group-commit `Flusher`, driven by the same tasks with
/// the same bytes, without QUIC. Returns (reports/s, flushes, mean flush ms, blob files left,
/// CPU seconds of this process).
pub async fn store_only(
    clients: usize,
    count: usize,
    envelope: Arc<Vec<u8>>,
) -> Result<(f64, f64, f64, f64, f64)> {
    use vigil_relay::store::flusher::Flusher;
    use vigil_relay::store::{Quota, SledStore, Store};
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
    let mailboxes: Vec<MailboxId> = (0..OTHER_MAILBOXES)
        .map(|i| {
            let pk = signing_key(i as u8).verifying_key().to_bytes();
            let m = MailboxId::for_key(&pk);
            store.register_mailbox(&m, &pk).map(|_| m)
        })
        .collect::<Result<_, _>>()?;
    let (flusher, task) = Flusher::spawn(store.clone());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let cpu0 = cpu_secs()?;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let share = count / clients + usize::from(c < count % clients);
        let (store, flusher, env) = (store.clone(), flusher.clone(), envelope.clone());
        let m = mailboxes[c % mailboxes.len()];
        tasks.spawn(async move {
            for _ in 0..share {
                let (s, e) = (store.clone(), env.clone());
                tokio::task::spawn_blocking(move || s.deposit(&m, &deposit_id(), &e, now))
                    .await??;
                flusher.flush().await?;
            }
            anyhow::Ok(())
        });
    }
    join_all(&mut tasks, "store-only ingest").await?;
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_secs()? - cpu0;
    let f = flusher.stats();
    drop(flusher);
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    let flushes = f.flushes.max(1) as f64;
    // sled writes large values and large tree pages as separate blob files, which the relay
    // fsyncs one by one; count what this run left behind.
    let blobs = std::fs::read_dir(dir.path().join("store").join("blobs"))
        .map(|d| d.count())
        .unwrap_or(0);
    Ok((
        count as f64 / secs,
        flushes,
        f.flush_micros as f64 / 1e3 / flushes,
        blobs as f64,
        cpu,
    ))
}

/// Where the bare-quinn ingest diagnostic's server runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RawQuinnServer {
    /// The `serve-raw-quinn` child process (its CPU is read from `/proc/PID/stat`).
    Child,
    /// A bare quinn server in this process on its own runtime, as the relay runs in the
    /// ingest phase.
    InProcess,
}

/// What the bare-quinn ingest diagnostic measured.
pub struct RawQuinn {
    pub per_s: f64,
    /// UDP datagrams dropped for a full receive buffer during the run (machine-wide).
    pub udp_drops: f64,
    /// UDP sends (both directions, machine-wide) per request.
    pub udp_sends_per_request: f64,
    /// CPU of this process (the clients, plus the server when it is in process).
    pub cpu_secs: f64,
    /// CPU of the server child, if the server was a child.
    pub server_cpu_secs: f64,
}

/// A client transport like `RelayClient`'s: BBR, no streams opened by the server,
/// keep-alives, 20 s idle timeout.
fn raw_quinn_client_config() -> Result<quinn::ClientConfig> {
    let mut cc = crate::util::client_config(crate::util::RAW_ALPN)?;
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_uni_streams(0u32.into());
    t.max_concurrent_bidi_streams(0u32.into());
    t.keep_alive_interval(Some(Duration::from_secs(5)));
    t.max_idle_timeout(Some(quinn::IdleTimeout::try_from(Duration::from_secs(20))?));
    t.congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()));
    cc.transport_config(Arc::new(t));
    Ok(cc)
}

/// Diagnostic ceiling for ingest: the same shape as the relay's ingest (`clients` QUIC
/// connections from this process, each doing its share of `count` requests one after another:
/// open a bidirectional stream, write the 4 KiB envelope, finish, read the one-byte answer)
/// against a bare quinn server that stores nothing. `endpoints`: UDP sockets (quinn endpoints)
/// the clients are spread over; `RelayClient` opens one per client.
pub async fn raw_quinn_ingest(
    server: RawQuinnServer,
    clients: usize,
    endpoints: usize,
    count: usize,
    envelope: Arc<Vec<u8>>,
) -> Result<RawQuinn> {
    let (child, local, remote) = match server {
        RawQuinnServer::Child => {
            let (w, addr, _) = crate::net::spawn_server(crate::net::Target::Raw, clients).await?;
            (Some(w), None, addr.parse::<std::net::SocketAddr>()?)
        }
        RawQuinnServer::InProcess => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
                .thread_name("bench-raw-quinn")
                .enable_all()
                .build()?;
            let ep = rt
                .spawn(async { crate::net::raw_quinn_server(false) })
                .await??;
            let addr = ep.local_addr()?;
            (None, Some((rt, ep)), addr)
        }
    };
    let config = raw_quinn_client_config()?;
    let eps = (0..endpoints.clamp(1, clients.max(1)))
        .map(|_| quinn::Endpoint::client(std::net::SocketAddr::from(([127, 0, 0, 1], 0))))
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut conns = Vec::with_capacity(clients);
    let mut set = tokio::task::JoinSet::new();
    for c in 0..clients {
        let connecting = eps[c % eps.len()].connect_with(config.clone(), remote, "localhost")?;
        set.spawn(tokio::time::timeout(Duration::from_secs(10), connecting));
        if set.len() >= 32 {
            if let Some(r) = set.join_next().await {
                conns.push(r?.map_err(|_| anyhow!("a bare quinn handshake timed out"))??);
            }
        }
    }
    while let Some(r) = set.join_next().await {
        conns.push(r?.map_err(|_| anyhow!("a bare quinn handshake timed out"))??);
    }
    let server_cpu = || match &child {
        Some(w) => crate::util::cpu_secs_of(w.pid),
        None => Ok(0.0),
    };
    let (cpu0, scpu0) = (cpu_secs()?, server_cpu()?);
    let drops0 = crate::util::udp_rcvbuf_errors()?;
    let sends0 = crate::util::udp_out_datagrams()?;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (c, conn) in conns.iter().enumerate() {
        let share = count / clients + usize::from(c < count % clients);
        let (conn, env) = (conn.clone(), envelope.clone());
        tasks.spawn(async move {
            for _ in 0..share {
                let (mut send, mut recv) = conn.open_bi().await?;
                send.write_all(&env).await?;
                send.finish()?;
                let reply = recv.read_to_end(16).await?;
                if reply != [1] {
                    bail!("bare quinn server answered {reply:?}");
                }
            }
            anyhow::Ok(())
        });
    }
    join_all(&mut tasks, "bare quinn ingest").await?;
    let secs = start.elapsed().as_secs_f64();
    let (cpu, scpu) = (cpu_secs()? - cpu0, server_cpu()? - scpu0);
    let udp_drops = crate::util::udp_rcvbuf_errors()? - drops0;
    let udp_sends_per_request = (crate::util::udp_out_datagrams()? - sends0) / count as f64;
    for c in &conns {
        c.close(0u32.into(), b"done");
    }
    for ep in &eps {
        let _ = tokio::time::timeout(Duration::from_secs(2), ep.wait_idle()).await;
    }
    if let Some((rt, ep)) = local {
        ep.close(0u32.into(), b"done");
        rt.shutdown_background();
    }
    if let Some(w) = child {
        w.stop().await?;
    }
    Ok(RawQuinn {
        per_s: count as f64 / secs,
        udp_drops,
        udp_sends_per_request,
        cpu_secs: cpu,
        server_cpu_secs: scpu,
    })
}

/// Connect `n` clients, 32 handshakes at a time. A handshake that fails to get through (its
/// packets can be dropped when loopback bursts overflow a socket's receive buffer on a loaded
/// machine) is tried again, up to twice per client.
async fn connect_many(addr: &str, fp: &CertFingerprint, n: usize) -> Result<Vec<Arc<RelayClient>>> {
    let mut out = Vec::with_capacity(n);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (addr, fp) = (addr.to_string(), *fp);
        set.spawn(async move {
            let mut tries = 0;
            loop {
                match RelayClient::connect(&addr, &fp).await {
                    Err(e @ vigil_client::relay::RelayError::Unreachable { .. }) if tries < 2 => {
                        tries += 1;
                        eprintln!("vigil-bench: a relay handshake failed ({e}); retrying");
                    }
                    r => return r,
                }
            }
        });
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
    join_all(&mut tasks, "deposits").await?;
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

/// Open loop: request `i` is due at `start + i / rate`, whether or not earlier ones
/// finished; its latency runs from when it was due (so queueing delay counts). `request(i)`
/// makes the request. Returns (p50, p99, max) in ms and the achieved rate.
async fn open_loop<F, Fut>(rate: f64, secs: f64, request: F) -> Result<(f64, f64, f64, f64)>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let n = (rate * secs).round() as usize;
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due).await;
        let req = request(i);
        set.spawn(async move {
            tokio::time::timeout(Duration::from_secs(10), req)
                .await
                .map_err(|_| anyhow!("a request took over 10 s"))??;
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
    .map_err(|_| anyhow!("open-loop requests did not finish in time"))??;
    let achieved = n as f64 / start.elapsed().as_secs_f64();
    let p50 = quantile(&mut lat, 0.5);
    let p99 = quantile(&mut lat, 0.99);
    let max = quantile(&mut lat, 1.0);
    Ok((p50, p99, max, achieved))
}

/// The same open loop against the bare quinn server (a child process): 4 KiB up, one byte
/// back, no storage. Its p99 is the machine's own tail latency at this load.
async fn open_loop_raw_quinn(s: &Sizes, envelope: Arc<Vec<u8>>) -> Result<(f64, f64)> {
    let (server, addr, _) = crate::net::spawn_server(crate::net::Target::Raw, 16).await?;
    let remote: std::net::SocketAddr = addr.parse()?;
    let ep = quinn::Endpoint::client(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let config = crate::util::client_config(crate::util::RAW_ALPN)?;
    let mut conns = Vec::new();
    for _ in 0..16 {
        conns.push(
            ep.connect_with(config.clone(), remote, "localhost")?
                .await?,
        );
    }
    let (p50, p99, _, _) = open_loop(s.p99_rate, s.p99_secs, |i| {
        let (conn, env) = (conns[i % conns.len()].clone(), envelope.clone());
        async move {
            let (mut send, mut recv) = conn.open_bi().await?;
            send.write_all(&env).await?;
            send.finish()?;
            recv.read_to_end(16).await?;
            anyhow::Ok(())
        }
    })
    .await?;
    for c in &conns {
        c.close(0u32.into(), b"done");
    }
    server.stop().await?;
    Ok((p50, p99))
}

pub async fn run(s: &Sizes, out: &mut Report) -> Result<()> {
    let envelope = Arc::new(filler(ENVELOPE_LEN, 0x5eed));
    let ingest_count = s.big_store - s.small_store;

    crate::progress(&format!(
        "ingest anchor: raw sled, {} tasks, {ingest_count} × 4 KiB",
        s.clients
    ));
    let raw = raw_sled(s.clients, ingest_count, envelope.clone(), RawWrite::Inline).await?;
    crate::progress("ingest, durability cost: the same without fdatasync (not power-loss safe)");
    let nosync = raw_sled(
        s.clients,
        ingest_count,
        envelope.clone(),
        RawWrite::InlineWithoutFdatasync,
    )
    .await?;
    out.set("ingest_diag_raw_sled_without_fdatasync_per_s", nosync.per_s);
    out.set(
        "ingest_diag_raw_sled_without_fdatasync_mean_flush_ms",
        nosync.flush_secs * 1e3 / nosync.flushes.max(1) as f64,
    );
    out.set(
        "ingest_diag_fdatasync_throughput_ratio",
        raw.per_s / nosync.per_s.max(f64::MIN_POSITIVE),
    );
    crate::progress("ingest, diagnostics: raw sled via spawn_blocking, and as a transaction");
    let sb = raw_sled(
        s.clients,
        ingest_count,
        envelope.clone(),
        RawWrite::SpawnBlocking,
    )
    .await?;
    let tx = raw_sled(
        s.clients,
        ingest_count,
        envelope.clone(),
        RawWrite::Transaction,
    )
    .await?;
    out.set("ingest_diag_raw_sled_spawn_blocking_per_s", sb.per_s);
    out.set(
        "ingest_diag_raw_sled_spawn_blocking_mean_flush_ms",
        sb.flush_secs * 1e3 / sb.flushes.max(1) as f64,
    );
    let txb = raw_sled(
        s.clients,
        ingest_count,
        envelope.clone(),
        RawWrite::TransactionBlocking,
    )
    .await?;
    out.set("ingest_diag_raw_sled_transaction_blocking_per_s", txb.per_s);
    out.set(
        "ingest_diag_raw_sled_transaction_blocking_mean_flush_ms",
        txb.flush_secs * 1e3 / txb.flushes.max(1) as f64,
    );
    out.set("ingest_diag_raw_sled_transaction_per_s", tx.per_s);
    let batch = raw_sled(s.clients, ingest_count, envelope.clone(), RawWrite::Batch).await?;
    out.set("ingest_diag_raw_sled_batch_per_s", batch.per_s);
    let ins = raw_sled(s.clients, ingest_count, envelope.clone(), RawWrite::Inserts).await?;
    out.set("ingest_diag_raw_sled_5_inserts_per_s", ins.per_s);
    out.set(
        "ingest_diag_raw_sled_transaction_mean_flush_ms",
        tx.flush_secs * 1e3 / tx.flushes.max(1) as f64,
    );
    crate::progress("ingest, middle step: the relay's store and flusher without QUIC");
    let (store_per_s, store_flushes, store_flush_ms, store_blobs, store_cpu) =
        store_only(s.clients, ingest_count, envelope.clone()).await?;
    out.set(
        "ingest_store_only_cpu_us_per_report",
        store_cpu * 1e6 / ingest_count as f64,
    );
    out.set("ingest_store_only_per_s", store_per_s);
    out.set(
        "ingest_store_only_ratio_vs_raw_sled",
        store_per_s / raw.per_s,
    );
    out.set(
        "ingest_store_only_reports_per_flush",
        ingest_count as f64 / store_flushes,
    );
    out.set("ingest_store_only_mean_flush_ms", store_flush_ms);
    out.set("ingest_store_only_blob_files_left", store_blobs);

    crate::progress(&format!(
        "ingest, ceiling: the same {} closed-loop clients against a bare quinn server",
        s.clients
    ));
    // As RelayClient does: one endpoint (UDP socket) per client connection.
    let rq = raw_quinn_ingest(
        RawQuinnServer::Child,
        s.clients,
        s.clients,
        ingest_count,
        envelope.clone(),
    )
    .await?;
    let per = |secs: f64| secs * 1e6 / ingest_count as f64;
    out.set("ingest_diag_raw_quinn_per_s", rq.per_s);
    out.set(
        "ingest_diag_raw_quinn_ratio_vs_raw_sled",
        rq.per_s / raw.per_s,
    );
    out.set(
        "ingest_diag_raw_quinn_client_cpu_us_per_request",
        per(rq.cpu_secs),
    );
    out.set(
        "ingest_diag_raw_quinn_server_cpu_us_per_request",
        per(rq.server_cpu_secs),
    );
    out.set(
        "ingest_diag_raw_quinn_cpu_us_per_request",
        per(rq.cpu_secs + rq.server_cpu_secs),
    );
    out.set("ingest_diag_raw_quinn_client_endpoints", s.clients as f64);
    out.set("ingest_diag_raw_quinn_udp_rcvbuf_drops", rq.udp_drops);
    out.set(
        "ingest_diag_raw_quinn_udp_sends_per_request",
        rq.udp_sends_per_request,
    );
    let rqi = raw_quinn_ingest(
        RawQuinnServer::InProcess,
        s.clients,
        s.clients,
        ingest_count,
        envelope.clone(),
    )
    .await?;
    out.set("ingest_diag_raw_quinn_in_process_per_s", rqi.per_s);
    out.set(
        "ingest_diag_raw_quinn_in_process_ratio_vs_raw_sled",
        rqi.per_s / raw.per_s,
    );
    out.set(
        "ingest_diag_raw_quinn_in_process_cpu_us_per_request",
        per(rqi.cpu_secs),
    );
    out.set(
        "ingest_diag_raw_quinn_in_process_udp_rcvbuf_drops",
        rqi.udp_drops,
    );
    let rq1 = raw_quinn_ingest(
        RawQuinnServer::InProcess,
        s.clients,
        1,
        ingest_count,
        envelope.clone(),
    )
    .await?;
    out.set(
        "ingest_diag_raw_quinn_in_process_1_endpoint_per_s",
        rq1.per_s,
    );
    out.set(
        "ingest_diag_raw_quinn_in_process_1_endpoint_cpu_us_per_request",
        per(rq1.cpu_secs),
    );
    out.set(
        "ingest_diag_raw_quinn_in_process_1_endpoint_udp_rcvbuf_drops",
        rq1.udp_drops,
    );

    let dir = tempfile::tempdir()?;
    // The relay gets its own runtime, as `vigil-relay` has in its own process (one worker per
    // core), instead of sharing the one that drives the 256 clients: on a shared runtime, every
    // relay task (above all quinn's endpoint driver, which drains the relay's one UDP socket)
    // queues behind hundreds of ready client tasks, the socket's receive buffer overflows, and
    // the figure measures loss recovery of the bench's own making. The clients and the relay
    // still share this process and its two cores.
    let relay_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
        .thread_name("bench-relay")
        .enable_all()
        .build()?;
    let relay = relay_rt
        .spawn(vigil_relay::start(relay_config(dir.path(), s.clients + 64)))
        .await??;
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
        let f0 = relay.stats().await.flush;
        let cpu0 = cpu_secs()?;
        let drops0 = crate::util::udp_rcvbuf_errors()?;
        let sends0 = crate::util::udp_out_datagrams()?;
        let took = deposit_many(&clients, &others, ingest_count, envelope.clone()).await?;
        out.set(
            "ingest_udp_sends_per_report",
            (crate::util::udp_out_datagrams()? - sends0) / ingest_count as f64,
        );
        let cpu = cpu_secs()? - cpu0;
        out.set(
            "ingest_udp_rcvbuf_drops",
            crate::util::udp_rcvbuf_errors()? - drops0,
        );
        let f1 = relay.stats().await.flush;
        let ingest = ingest_count as f64 / took.as_secs_f64();
        drop(clients);
        let flushes = f1.flushes.saturating_sub(f0.flushes).max(1) as f64;
        let flush_ms = f1.flush_micros.saturating_sub(f0.flush_micros) as f64 / 1e3;
        out.set("ingest_relay_flushes", flushes);
        out.set(
            "ingest_relay_reports_per_flush",
            ingest_count as f64 / flushes,
        );
        out.set("ingest_relay_mean_flush_ms", flush_ms / flushes);
        out.set(
            "ingest_relay_flush_busy_fraction",
            flush_ms / 1e3 / took.as_secs_f64(),
        );
        out.set("ingest_cpu_us_per_report", cpu * 1e6 / ingest_count as f64);
        out.set("ingest_cpu_cores_busy", cpu / took.as_secs_f64());

        crate::progress(&format!("fetch: big store ({} reports)", s.big_store));
        let big = fetch_time(&admin, &ngo, s.fetch_reps).await?;

        crate::progress(&format!(
            "latency: {} deposits/s open loop for {} s",
            s.p99_rate, s.p99_secs
        ));
        let f0 = relay.stats().await.flush;
        let mailbox = others[0];
        let (p50, p99, max, achieved) = open_loop(s.p99_rate, s.p99_secs, |i| {
            let (client, env) = (fill[i % fill.len()].clone(), envelope.clone());
            async move {
                client.deposit(&mailbox, &deposit_id(), &env).await?;
                anyhow::Ok(())
            }
        })
        .await?;
        let f1 = relay.stats().await.flush;
        let flushes = f1.flushes.saturating_sub(f0.flushes).max(1) as f64;
        out.set(
            "deposit_relay_mean_flush_ms",
            f1.flush_micros.saturating_sub(f0.flush_micros) as f64 / 1e3 / flushes,
        );
        out.set(
            "relay_max_flush_ms_since_start",
            f1.max_flush_micros as f64 / 1e3,
        );
        out.set(
            "deposit_relay_reports_per_flush",
            (s.p99_rate * s.p99_secs) / flushes,
        );
        admin.close().await;

        crate::progress("latency anchor: the same open loop against a bare quinn server");
        let (raw_p50, raw_p99) = open_loop_raw_quinn(s, envelope.clone()).await?;
        out.set("deposit_raw_quinn_p50_ms", raw_p50);
        out.set("deposit_raw_quinn_p99_ms", raw_p99);
        out.set("ingest_reports_per_s", ingest);
        out.set("ingest_raw_sled_inserts_per_s", raw.per_s);
        out.set("ingest_ratio_vs_raw_sled", ingest / raw.per_s);
        let rf = raw.flushes.max(1) as f64;
        out.set("ingest_raw_sled_flushes", rf);
        out.set(
            "ingest_raw_sled_reports_per_flush",
            ingest_count as f64 / rf,
        );
        out.set("ingest_raw_sled_mean_flush_ms", raw.flush_secs * 1e3 / rf);
        out.set(
            "ingest_raw_sled_cpu_us_per_report",
            raw.cpu_secs * 1e6 / ingest_count as f64,
        );
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
    relay_rt.spawn(relay.shutdown()).await??;
    relay_rt.shutdown_background();
    result
}
