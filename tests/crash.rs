//! Crash safety: the real `vigil-relay` program is killed with SIGKILL at random moments while
//! many clients deposit and an NGO fetches and acknowledges, and restarted on the same data
//! directory and port each time. At the end, every deposit the relay acknowledged as stored has
//! been fetched, byte for byte, and no deposit was stored twice, although clients retried every
//! unacknowledged deposit with the same deposit id across the restarts.
//!
//! Default: 40 kills (under a minute on a 2-core machine). A longer soak:
//!
//! ```sh
//! VIGIL_CRASH_KILLS=500 cargo test --release -p vigil-e2e --test crash -- --nocapture
//! ```
//!
//! `VIGIL_CRASH_SEED=N` replays the same kill schedule and deposit sizes (the seed in use is
//! printed); thread timing still differs between runs.

use ed25519_dalek::SigningKey;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vigil_client::relay::{Deposited, LinkOptions, RelayClient, RelayError};
use vigil_core::ids::{CertFingerprint, DepositId, ItemId, MailboxId};

mod common;
const DEFAULT_KILLS: u32 = 40;
const CLIENTS: usize = 12;
const MAILBOXES: u8 = 8;

/// Short timeouts: the relay is on loopback, and a dead relay should be noticed fast.
fn link() -> LinkOptions {
    LinkOptions {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(15),
        idle_timeout: Duration::from_secs(3),
    }
}

fn mailbox_key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n + 1; 32])
}

fn mailbox_of(id: &DepositId) -> (u8, MailboxId) {
    let n = id.0[0] % MAILBOXES;
    let k = mailbox_key(n);
    (n, MailboxId::for_key(&k.verifying_key().to_bytes()))
}

/// The envelope for a deposit id, regenerated at will so the test keeps ids, not bytes. It
/// starts with the id, so an envelope fetched back names its deposit. Sizes: mostly up to
/// 16 KiB, now and then up to 256 KiB, and rarely up to 2 MiB (several QUIC round trips, so
/// kills land mid-upload; above 64 KiB the relay streams the envelope into a file of its own).
fn envelope_for(id: &DepositId) -> Vec<u8> {
    let mut seed = [0u8; 32];
    seed[..16].copy_from_slice(&id.0);
    let mut rng = StdRng::from_seed(seed);
    let len = if rng.gen_ratio(1, 32) {
        rng.gen_range(16 * 1024..=256 * 1024)
    } else if rng.gen_ratio(1, 64) {
        rng.gen_range(256 * 1024..=2 * 1024 * 1024)
    } else {
        rng.gen_range(1..=16 * 1024)
    };
    let mut env = id.0.to_vec();
    let start = env.len();
    env.resize(start + len, 0);
    rng.fill_bytes(&mut env[start..]);
    env
}

/// A running relay process.
struct RelayProcess {
    child: Child,
    addr: SocketAddr,
}

fn spawn_relay(data: &Path, listen: &str, store: Option<&str>) -> RelayProcess {
    let mut cmd = Command::new(common::bins::vigil_relay());
    cmd.args(["serve", "--listen", listen, "--data"]).arg(data);
    if let Some(url) = store {
        cmd.args(["--store", url]);
    }
    let mut child = cmd
        .env("VIGIL_RELAY_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vigil-relay");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let a = rest.split_whitespace().next().unwrap_or_default();
                    break a.parse::<SocketAddr>().expect("listening address");
                }
            }
            _ => {
                let status = child.wait();
                panic!("vigil-relay exited before listening: {status:?}");
            }
        }
    };
    // Keep draining stderr so the relay never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    RelayProcess { child, addr }
}

#[derive(Default)]
struct Tally {
    /// Deposits the relay answered "stored" for.
    acked: Mutex<HashSet<[u8; 16]>>,
    /// For each deposit id, the relay item ids it was fetched under.
    fetched: Mutex<HashMap<[u8; 16], HashSet<ItemId>>>,
    /// Items whose ack the relay confirmed.
    acked_items: Mutex<HashSet<ItemId>>,
    stored_new: AtomicU64,
    stored_duplicate: AtomicU64,
    failed_attempts: AtomicU64,
    resurrected: AtomicU64,
}

async fn connect(addr: &str, fp: &CertFingerprint) -> Option<RelayClient> {
    RelayClient::connect_with(addr, fp, &link()).await.ok()
}

/// One reporter: deposits one envelope after another; retries each, with the same deposit id,
/// until the relay says "stored", reconnecting as the relay dies and comes back.
async fn reporter(
    addr: String,
    fp: CertFingerprint,
    seed: u64,
    stop: Arc<AtomicBool>,
    t: Arc<Tally>,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut conn: Option<RelayClient> = None;
    let mut pending: Option<DepositId> = None;
    loop {
        let id = match pending {
            Some(id) => id,
            None if stop.load(Ordering::SeqCst) => break,
            None => {
                let mut id = [0u8; 16];
                rng.fill_bytes(&mut id);
                pending = Some(DepositId(id));
                DepositId(id)
            }
        };
        let Some(c) = conn.as_ref() else {
            conn = connect(&addr, &fp).await;
            if conn.is_none() {
                tokio::time::sleep(Duration::from_millis(rng.gen_range(20..100))).await;
            }
            continue;
        };
        let (_, mailbox) = mailbox_of(&id);
        match c.deposit_status(&mailbox, &id, &envelope_for(&id)).await {
            Ok(outcome) => {
                let counter = match outcome {
                    Deposited::New => &t.stored_new,
                    Deposited::Duplicate => &t.stored_duplicate,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                t.acked.lock().expect("lock").insert(id.0);
                pending = None;
                // A little pacing, so the kills land at every stage of a deposit.
                tokio::time::sleep(Duration::from_millis(rng.gen_range(0..15))).await;
            }
            Err(
                e @ RelayError::Refused {
                    retryable: false, ..
                },
            ) => {
                panic!("the relay refused a valid deposit for good: {e}");
            }
            Err(_) => {
                t.failed_attempts.fetch_add(1, Ordering::Relaxed);
                conn = None;
                tokio::time::sleep(Duration::from_millis(rng.gen_range(10..100))).await;
            }
        }
    }
    if let Some(c) = conn {
        c.close().await;
    }
}

/// The NGO: fetches and acknowledges from every mailbox, checking each envelope byte for byte,
/// until `stop` and a full pass finds every mailbox empty.
async fn ngo(addr: String, fp: CertFingerprint, stop: Arc<AtomicBool>, t: Arc<Tally>) {
    let mut conn: Option<RelayClient> = None;
    loop {
        let finishing = stop.load(Ordering::SeqCst);
        let Some(c) = conn.as_ref() else {
            conn = connect(&addr, &fp).await;
            if conn.is_none() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            continue;
        };
        let mut seen_any = false;
        let mut failed = false;
        for n in 0..MAILBOXES {
            let key = mailbox_key(n);
            let items = match c.fetch(&key, 64).await {
                Ok(items) => items,
                Err(_) => {
                    failed = true;
                    break;
                }
            };
            seen_any |= !items.is_empty();
            let mut ids = Vec::new();
            for item in &items {
                let dep: [u8; 16] = item
                    .envelope
                    .get(..16)
                    .and_then(|b| b.try_into().ok())
                    .expect("envelope names its deposit");
                assert_eq!(
                    item.envelope,
                    envelope_for(&DepositId(dep)),
                    "fetched envelope differs from what was deposited"
                );
                assert_eq!(
                    mailbox_of(&DepositId(dep)).0,
                    n,
                    "item in the wrong mailbox"
                );
                if t.acked_items.lock().expect("lock").contains(&item.id) {
                    t.resurrected.fetch_add(1, Ordering::Relaxed);
                }
                t.fetched
                    .lock()
                    .expect("lock")
                    .entry(dep)
                    .or_default()
                    .insert(item.id);
                ids.push(item.id);
            }
            if ids.is_empty() {
                continue;
            }
            match c.ack(&key, &ids).await {
                Ok(_) => t.acked_items.lock().expect("lock").extend(ids),
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            conn = None;
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        if finishing && !seen_any {
            break;
        }
        if !seen_any {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    if let Some(c) = conn {
        c.close().await;
    }
}

async fn spawn_relay_async(data: PathBuf, listen: String, store: Option<String>) -> RelayProcess {
    tokio::task::spawn_blocking(move || spawn_relay(&data, &listen, store.as_deref()))
        .await
        .expect("spawn task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_deposits_survive_sigkill_exactly_once() {
    soak(None, 1).await;
}

/// The same with two relay programs sharing one PostgreSQL database (issue 17): reporters and
/// the NGO spread over both, each kill takes one of them (at random), and every deposit either
/// relay acknowledged is fetched once through either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_deposits_survive_sigkill_of_two_relays_on_postgres() {
    let Some(url) = common::pg::fresh_database().await else {
        return;
    };
    soak(Some(url), 2).await;
}

/// Kill one of `relays` relay programs (sled in the data directory, or all on the PostgreSQL
/// database `store`) at random moments under concurrent deposits, fetches and acks; check that
/// every acknowledged deposit is fetched exactly once.
async fn soak(store: Option<String>, relays: usize) {
    let kills_wanted: u32 = std::env::var("VIGIL_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_KILLS);
    let seed: u64 = std::env::var("VIGIL_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    eprintln!(
        "crash test: {kills_wanted} kills of {relays} relay(s), seed {seed} (VIGIL_CRASH_SEED to replay)"
    );
    let mut rng = StdRng::seed_from_u64(seed);

    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("relay");
    let fp = vigil_relay::fingerprint_of_data_dir(&data).expect("certificate");
    let mut procs = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..relays {
        let p = spawn_relay_async(data.clone(), "127.0.0.1:0".into(), store.clone()).await;
        addrs.push(p.addr.to_string());
        procs.push(p);
    }
    let listen = addrs[0].clone();

    // Mailboxes first; their registration must survive the kills too (a deposit to a mailbox
    // the relay forgot would be refused, failing the test).
    let admin = RelayClient::connect(&listen, &fp).await.expect("connect");
    for n in 0..MAILBOXES {
        admin.register(&mailbox_key(n)).await.expect("register");
    }
    admin.close().await;

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut reporters = Vec::new();
    for i in 0..CLIENTS {
        reporters.push(tokio::spawn(reporter(
            addrs[i % relays].clone(),
            fp,
            seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            stop.clone(),
            tally.clone(),
        )));
    }
    // The NGO fetches through the last relay: with two, half the deposits (those through the
    // first) are fetched and acknowledged through the other.
    let ngo_task = tokio::spawn(ngo(
        addrs[relays - 1].clone(),
        fp,
        stop.clone(),
        tally.clone(),
    ));

    let started = Instant::now();
    let mut kills = 0u32;
    while kills < kills_wanted {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(150..1500))).await;
        let victim = rng.gen_range(0..relays);
        let relay = &mut procs[victim];
        relay.child.kill().expect("SIGKILL the relay");
        relay.child.wait().expect("reap the relay");
        kills += 1;
        // Down for a moment, as after a crash and a supervisor restart.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..300))).await;
        procs[victim] = spawn_relay_async(data.clone(), addrs[victim].clone(), store.clone()).await;
        if kills.is_multiple_of(10) {
            eprintln!(
                "  {kills} kills, {} deposits acknowledged so far",
                tally.acked.lock().expect("lock").len()
            );
        }
    }

    // Let everything in flight finish on the last relays, then drain the mailboxes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let finish = async {
        for r in reporters {
            r.await.expect("reporter task");
        }
        ngo_task.await.expect("ngo task");
    };
    tokio::time::timeout(Duration::from_secs(120), finish)
        .await
        .expect("safety net: clients finish once the relay stays up");
    for mut relay in procs {
        relay.child.kill().expect("stop the relay");
        relay.child.wait().expect("reap the relay");
    }
    match &store {
        // One more start: it removes whatever a kill left half-done among the envelope files
        // (temporary uploads, files whose removal after an ack was cut off). Everything was
        // acknowledged by the NGO, so nothing may be left.
        None => {
            let mut last = spawn_relay_async(data.clone(), listen.clone(), None).await;
            let left: Vec<_> = std::fs::read_dir(data.join("store").join("envelopes"))
                .expect("the relay keeps large envelopes in store/envelopes")
                .map(|e| e.expect("dir entry").file_name())
                .collect();
            last.child.kill().expect("stop the relay");
            last.child.wait().expect("reap the relay");
            assert!(
                left.is_empty(),
                "envelope files left after every item was acknowledged: {left:?}"
            );
        }
        // A killed relay's transactions rolled back with its connections: no bytes are left.
        Some(url) => {
            let db = common::pg::connect(url).await;
            let n = |q: &'static str| {
                let db = &db;
                async move { db.query_one(q, &[]).await.expect("count").get::<_, i64>(0) }
            };
            assert_eq!(n("SELECT count(*) FROM deposits WHERE NOT acked").await, 0);
            assert_eq!(
                n("SELECT count(*) FROM envelope_chunks").await,
                0,
                "bytes left"
            );
        }
    }

    let acked = tally.acked.lock().expect("lock").clone();
    let fetched = tally.fetched.lock().expect("lock").clone();
    let duplicates = tally.stored_duplicate.load(Ordering::Relaxed);
    eprintln!(
        "crash test: {kills} SIGKILLs survived in {:.1} s; {} deposits acknowledged as stored \
         ({} first time, {duplicates} as repeats of a deposit stored before the answer was lost), \
         {} failed attempts retried, {} distinct deposits fetched",
        started.elapsed().as_secs_f64(),
        acked.len(),
        tally.stored_new.load(Ordering::Relaxed),
        tally.failed_attempts.load(Ordering::Relaxed),
        fetched.len(),
    );
    assert_eq!(kills, kills_wanted);
    assert!(acked.len() >= 100, "too few deposits to mean anything");
    let large = acked
        .iter()
        .filter(|id| envelope_for(&DepositId(**id)).len() > 64 * 1024)
        .count();
    eprintln!("  of them {large} large enough to be streamed into files");
    assert!(large > 0, "no deposit took the streamed path");
    for id in &acked {
        match fetched.get(id).map(HashSet::len) {
            Some(1) => {}
            None => panic!(
                "deposit {} was acknowledged as stored but is gone",
                hex::encode(id)
            ),
            Some(n) => panic!("deposit {} was stored {n} times", hex::encode(id)),
        }
    }
    for id in fetched.keys() {
        assert!(
            acked.contains(id),
            "fetched deposit {} that was never acknowledged (every deposit is retried until it is)",
            hex::encode(id)
        );
    }
    assert_eq!(
        tally.resurrected.load(Ordering::Relaxed),
        0,
        "an item came back after the relay confirmed its acknowledgement"
    );
}
