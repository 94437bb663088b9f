//! Helpers shared by the end-to-end tests: a real relay on 127.0.0.1, real clients driven through
//! the same command-line entry point the `vigil` program uses.
#![allow(dead_code)]

pub mod bins;
pub mod pg;
pub mod raw;
pub mod shared;

use std::path::{Path, PathBuf};
use vigil_client::cli::Cli;
use vigil_client::commands;
use vigil_relay::{RelayConfig, RelayHandle};

/// A relay on a fresh port with its data in `dir`.
pub async fn start_relay(dir: &Path) -> RelayHandle {
    start_relay_at(dir, "127.0.0.1:0").await
}

/// A relay on a given address.
pub async fn start_relay_at(dir: &Path, addr: &str) -> RelayHandle {
    let config = RelayConfig::new(dir, addr.parse().expect("test address"));
    vigil_relay::start(config).await.expect("relay starts")
}

/// Run `vigil ARGS...` in-process; returns the error, if any.
pub async fn vigil(args: &[&str]) -> anyhow::Result<()> {
    let mut full = vec!["vigil"];
    full.extend_from_slice(args);
    // Without the random pause between queued deposits, where the command has the flag (see
    // `bins::as_script`).
    let mut quick = full.clone();
    quick.push("--no-delay");
    let cli = match <Cli as clap::Parser>::try_parse_from(quick) {
        Ok(cli) => cli,
        Err(_) => <Cli as clap::Parser>::try_parse_from(full)?,
    };
    let unlocking = commands::Unlocking {
        passphrase: Some(bins::TEST_PASSPHRASE.to_string().into()),
        work_factor: Some(10),
    };
    commands::run_with(cli, unlocking).await
}

/// Run and panic with the message on failure.
pub async fn vigil_ok(args: &[&str]) {
    if let Err(e) = vigil(args).await {
        panic!("vigil {args:?} failed: {e:#}");
    }
}

/// The shared fixture reports, or None (see [`shared::dir`]: a failure under `CI=true`).
pub fn fixtures_dir() -> Option<PathBuf> {
    shared::dir("fixtures/reports", "fixture-based checks")
}

/// Sorted fixture files; empty only when the directory is absent (and not under CI).
pub fn fixture_files() -> Vec<PathBuf> {
    let Some(dir) = fixtures_dir() else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    assert!(
        !v.is_empty(),
        "no fixture reports (*.json) in the fixtures directory"
    );
    v
}

/// An NGO home with its inbox created at `relay` and a second staff key; returns the card path.
pub async fn make_ngo(
    root: &Path,
    dir: &str,
    name: &str,
    relay: &RelayHandle,
) -> (PathBuf, PathBuf) {
    let home = root.join(dir);
    let card = root.join(format!("{dir}.card"));
    let h = home.to_str().expect("utf8");
    vigil_ok(&[
        "--home",
        h,
        "ngo",
        "init",
        "--name",
        name,
        "--relay",
        &relay.local_addr().to_string(),
        "--relay-fingerprint",
        &relay.fingerprint().to_string(),
        "--card-out",
        card.to_str().expect("utf8"),
    ])
    .await;
    vigil_ok(&[
        "--home",
        h,
        "ngo",
        "add-staff",
        "--name",
        "second",
        "--card-out",
        card.to_str().expect("utf8"),
    ])
    .await;
    (home, card)
}

/// Every file below `dir`, recursively.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Does `hay` contain `needle`?
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// An NGO home whose card names `relay_addr` (e.g. a proxy in front of the relay) and pins
/// `fingerprint`; returns the home and the card path.
pub async fn make_ngo_at(
    root: &Path,
    dir: &str,
    name: &str,
    relay_addr: &str,
    fingerprint: &str,
) -> (PathBuf, PathBuf) {
    let home = root.join(dir);
    let card = root.join(format!("{dir}.card"));
    let h = home.to_str().expect("utf8");
    vigil_ok(&[
        "--home",
        h,
        "ngo",
        "init",
        "--name",
        name,
        "--relay",
        relay_addr,
        "--relay-fingerprint",
        fingerprint,
        "--card-out",
        card.to_str().expect("utf8"),
    ])
    .await;
    (home, card)
}

#[allow(unused_imports)] // not every test file uses the proxy
pub use lossy::{LinkConditions, LossyProxy};

/// An in-process UDP proxy that impairs the link between QUIC clients and a relay.
pub mod lossy {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::net::UdpSocket;
    use tokio::task::JoinHandle;

    /// What the link does to each datagram, independently per direction.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct LinkConditions {
        /// Probability that a datagram is dropped.
        pub loss: f64,
        /// Fixed delay added in each direction (half the added round trip).
        pub one_way_delay: Duration,
        /// Extra delay drawn uniformly from `0..jitter`; datagrams overtake each other.
        pub jitter: Duration,
        /// Probability that a datagram is delivered twice.
        pub duplicate: f64,
    }

    impl LinkConditions {
        /// A perfect link.
        pub fn clean() -> Self {
            Self::default()
        }
    }

    /// Counters, for the test's printout.
    #[derive(Debug, Default)]
    pub struct Stats {
        pub forwarded: AtomicU64,
        pub dropped: AtomicU64,
        pub duplicated: AtomicU64,
        pub upstream_bytes: AtomicU64,
    }

    struct Session {
        client: SocketAddr,
        upstream: Mutex<Arc<UdpSocket>>,
        /// Replies from the relay to this client are dropped (a one-way outage).
        replies_blocked: AtomicBool,
        readers: Mutex<Vec<JoinHandle<()>>>,
    }

    struct Shared {
        front: Arc<UdpSocket>,
        relay: SocketAddr,
        conditions: Mutex<LinkConditions>,
        rng: Mutex<StdRng>,
        forwarding: AtomicBool,
        cut_after: Mutex<Option<u64>>,
        sessions: Mutex<HashMap<SocketAddr, Arc<Session>>>,
        stats: Stats,
    }

    /// The proxy; it stops when dropped.
    pub struct LossyProxy {
        shared: Arc<Shared>,
        task: JoinHandle<()>,
    }

    impl Drop for LossyProxy {
        fn drop(&mut self) {
            self.task.abort();
            if let Ok(sessions) = self.shared.sessions.lock() {
                for s in sessions.values() {
                    if let Ok(r) = s.readers.lock() {
                        r.iter().for_each(|h| h.abort());
                    }
                }
            }
        }
    }

    impl LossyProxy {
        /// Listen on 127.0.0.1 and forward to `relay` under `conditions`, with decisions drawn
        /// from an RNG seeded with `seed`.
        pub async fn start(relay: SocketAddr, conditions: LinkConditions, seed: u64) -> Self {
            let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind proxy"));
            let shared = Arc::new(Shared {
                front,
                relay,
                conditions: Mutex::new(conditions),
                rng: Mutex::new(StdRng::seed_from_u64(seed)),
                forwarding: AtomicBool::new(true),
                cut_after: Mutex::new(None),
                sessions: Mutex::new(HashMap::new()),
                stats: Stats::default(),
            });
            let task = tokio::spawn(front_loop(shared.clone()));
            LossyProxy { shared, task }
        }

        /// Where clients should send.
        pub fn addr(&self) -> SocketAddr {
            self.shared.front.local_addr().expect("proxy address")
        }

        /// Change the impairments from now on.
        pub fn set_conditions(&self, c: LinkConditions) {
            *self.shared.conditions.lock().expect("lock") = c;
        }

        /// Cut (`false`) or restore (`true`) the link in both directions. Datagrams still in
        /// flight when the link is cut are lost.
        pub fn set_forwarding(&self, on: bool) {
            self.shared.forwarding.store(on, Ordering::SeqCst);
        }

        /// Whether the link is up.
        pub fn forwarding(&self) -> bool {
            self.shared.forwarding.load(Ordering::SeqCst)
        }

        /// Cut the link once more than `bytes` (counted from now) went from clients to the relay.
        pub fn cut_after(&self, bytes: u64) {
            let now = self.shared.stats.upstream_bytes.load(Ordering::SeqCst);
            *self.shared.cut_after.lock().expect("lock") = Some(now + bytes);
        }

        /// Drop every reply to the clients seen so far (a one-way outage on their paths); new
        /// clients (new source ports) are not affected.
        pub fn block_replies_to_current_clients(&self) {
            for s in self.shared.sessions.lock().expect("lock").values() {
                s.replies_blocked.store(true, Ordering::SeqCst);
            }
        }

        /// How many distinct client addresses (UDP source ports) have sent through the proxy.
        pub fn clients_seen(&self) -> usize {
            self.shared.sessions.lock().expect("lock").len()
        }

        /// NAT rebinding: every client's traffic reaches the relay from a new source port, and
        /// the old port is closed. Returns (old, new) source address per client.
        pub async fn rebind_upstream(&self) -> Vec<(SocketAddr, SocketAddr)> {
            let sessions: Vec<Arc<Session>> = self
                .shared
                .sessions
                .lock()
                .expect("lock")
                .values()
                .cloned()
                .collect();
            let mut changes = Vec::new();
            for s in sessions {
                let new = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
                let reader = tokio::spawn(reply_loop(self.shared.clone(), s.clone(), new.clone()));
                let old = std::mem::replace(&mut *s.upstream.lock().expect("lock"), new.clone());
                // The old mapping is gone: whatever the relay still sends there is lost.
                let mut readers = s.readers.lock().expect("lock");
                readers.drain(..).for_each(|h| h.abort());
                readers.push(reader);
                changes.push((
                    old.local_addr().expect("addr"),
                    new.local_addr().expect("addr"),
                ));
            }
            changes
        }

        /// Counters so far.
        pub fn stats(&self) -> &Stats {
            &self.shared.stats
        }
    }

    /// Draw the fate of one datagram: how many copies, each after which delay.
    fn fate(shared: &Shared) -> Vec<Duration> {
        let c = *shared.conditions.lock().expect("lock");
        let mut rng = shared.rng.lock().expect("lock");
        if rng.gen_bool(c.loss.clamp(0.0, 1.0)) {
            shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return Vec::new();
        }
        let copies = if rng.gen_bool(c.duplicate.clamp(0.0, 1.0)) {
            shared.stats.duplicated.fetch_add(1, Ordering::Relaxed);
            2
        } else {
            1
        };
        (0..copies)
            .map(|_| {
                let jitter = if c.jitter.is_zero() {
                    Duration::ZERO
                } else {
                    c.jitter.mul_f64(rng.gen::<f64>())
                };
                c.one_way_delay + jitter
            })
            .collect()
    }

    /// Send `data` after `delay` unless the link is down by then (or `blocked` says so).
    fn send_later(
        shared: &Arc<Shared>,
        delay: Duration,
        data: Arc<Vec<u8>>,
        to: SocketAddr,
        via: Option<Arc<Session>>,
        blocked: Option<Arc<Session>>,
    ) {
        let shared = shared.clone();
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if !shared.forwarding.load(Ordering::SeqCst) {
                return;
            }
            if blocked.is_some_and(|s| s.replies_blocked.load(Ordering::SeqCst)) {
                return;
            }
            let socket = match &via {
                Some(s) => s.upstream.lock().expect("lock").clone(),
                None => shared.front.clone(),
            };
            if socket.send_to(&data, to).await.is_ok() {
                shared.stats.forwarded.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    async fn front_loop(shared: Arc<Shared>) {
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((n, from)) = shared.front.recv_from(&mut buf).await else {
                continue;
            };
            let session = {
                let existing = shared.sessions.lock().expect("lock").get(&from).cloned();
                match existing {
                    Some(s) => s,
                    None => {
                        let Ok(up) = UdpSocket::bind("127.0.0.1:0").await else {
                            continue;
                        };
                        let up = Arc::new(up);
                        let s = Arc::new(Session {
                            client: from,
                            upstream: Mutex::new(up.clone()),
                            replies_blocked: AtomicBool::new(false),
                            readers: Mutex::new(Vec::new()),
                        });
                        let reader = tokio::spawn(reply_loop(shared.clone(), s.clone(), up));
                        s.readers.lock().expect("lock").push(reader);
                        shared
                            .sessions
                            .lock()
                            .expect("lock")
                            .insert(from, s.clone());
                        s
                    }
                }
            };
            if !shared.forwarding.load(Ordering::SeqCst) {
                continue;
            }
            let total = shared
                .stats
                .upstream_bytes
                .fetch_add(n as u64, Ordering::SeqCst)
                + n as u64;
            {
                let mut cut = shared.cut_after.lock().expect("lock");
                if cut.is_some_and(|limit| total > limit) {
                    *cut = None;
                    shared.forwarding.store(false, Ordering::SeqCst);
                    continue;
                }
            }
            let data = Arc::new(buf[..n].to_vec());
            for delay in fate(&shared) {
                send_later(
                    &shared,
                    delay,
                    data.clone(),
                    shared.relay,
                    Some(session.clone()),
                    None,
                );
            }
        }
    }

    async fn reply_loop(shared: Arc<Shared>, session: Arc<Session>, socket: Arc<UdpSocket>) {
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((n, _)) = socket.recv_from(&mut buf).await else {
                continue;
            };
            if !shared.forwarding.load(Ordering::SeqCst)
                || session.replies_blocked.load(Ordering::SeqCst)
            {
                continue;
            }
            let data = Arc::new(buf[..n].to_vec());
            for delay in fate(&shared) {
                send_later(
                    &shared,
                    delay,
                    data.clone(),
                    session.client,
                    None,
                    Some(session.clone()),
                );
            }
        }
    }
}

/// A reporter home below `root` that has imported each card in `cards`.
pub async fn make_reporter(root: &Path, cards: &[&Path]) -> PathBuf {
    let home = root.join("reporter");
    for card in cards {
        vigil_ok(&[
            "--home",
            home.to_str().expect("utf8"),
            "contact",
            "add",
            card.to_str().expect("utf8"),
        ])
        .await;
    }
    home
}

/// A small valid JPEG (8x8 grey) with an EXIF segment carrying `GPS-CANARY` and a comment,
/// and the same image without them.
pub fn jpeg_with_exif() -> (Vec<u8>, Vec<u8>) {
    fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0xFF, marker];
        v.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }
    let mut dqt = vec![0x00];
    dqt.extend_from_slice(&[1; 64]);
    let mut dht = vec![0x00, 1];
    dht.extend_from_slice(&[0; 15]);
    dht.extend_from_slice(&[0, 0x10, 1]);
    dht.extend_from_slice(&[0; 15]);
    dht.push(0);
    let image = [
        segment(0xDB, &dqt),
        segment(0xC0, &[8, 0, 8, 0, 8, 1, 1, 0x11, 0]),
        segment(0xC4, &dht),
        segment(0xDA, &[1, 1, 0x00, 0, 63, 0]),
        vec![0x3F, 0xFF, 0xD9],
    ]
    .concat();
    let jfif = segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    let clean = [vec![0xFF, 0xD8], jfif.clone(), image.clone()].concat();
    let dirty = [
        vec![0xFF, 0xD8],
        jfif,
        segment(0xE1, b"Exif\0\0MM\0\x2a\0\0\0\x08GPS-CANARY 43.48N 43.61E"),
        segment(0xFE, b"OWNER-CANARY"),
        image,
    ]
    .concat();
    (dirty, clean)
}
