//! Bad links: a reporter's report crosses an in-process UDP proxy (`common::lossy`) that drops,
//! delays, reorders and duplicates datagrams, is cut mid-transfer, or loses the relay's "stored"
//! reply. Every report arrives at the NGO exactly once, and until it is stored it waits in the
//! outbox.
//!
//! The proxy's decisions come from a seeded RNG; timings still vary from run to run, so the tests
//! assert outcomes (delivered, queued, one copy), never durations. Timeouts are safety nets only.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vigil_client::relay::RelayClient;
use vigil_client::state::{inbox_entries, inbox_read, outbox, Ngo};
use vigil_core::envelope;
use vigil_relay::RelayHandle;

const NGO: &str = "Memorial Caucasus desk";

/// A relay, a proxy in front of it, an NGO whose card names the proxy, and a reporter who
/// imported that card.
struct World {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    relay: RelayHandle,
    proxy: LossyProxy,
    ngo: PathBuf,
    reporter: PathBuf,
}

impl World {
    async fn new(seed: u64) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().to_path_buf();
        let relay = start_relay(&root.join("relay")).await;
        let proxy = LossyProxy::start(relay.local_addr(), LinkConditions::clean(), seed).await;
        let (ngo, card) = make_ngo_at(
            &root,
            "ngo",
            NGO,
            &proxy.addr().to_string(),
            &relay.fingerprint().to_string(),
        )
        .await;
        let reporter = root.join("reporter");
        vigil_ok(&[
            "--home",
            s(&reporter),
            "contact",
            "add",
            card.to_str().expect("utf8"),
        ])
        .await;
        World {
            _tmp: tmp,
            root,
            relay,
            proxy,
            ngo,
            reporter,
        }
    }

    fn report_file(&self, name: &str, narrative_len: usize) -> PathBuf {
        let p = self.root.join(name);
        std::fs::write(&p, report_json(name, narrative_len)).expect("write report");
        p
    }

    fn queued(&self) -> usize {
        outbox(&common::bins::home(&self.reporter).expect("home"))
            .expect("outbox")
            .len()
    }

    /// Items waiting at the relay, asked directly (not through the proxy), without acking.
    async fn at_relay(&self) -> usize {
        let ngo = Ngo::load(&common::bins::home(&self.ngo).expect("home")).expect("ngo");
        let c = RelayClient::connect(
            &self.relay.local_addr().to_string(),
            &self.relay.fingerprint(),
        )
        .await
        .expect("direct connection");
        let n = c
            .fetch(ngo.mailbox_key.as_dalek(), 64)
            .await
            .expect("fetch")
            .len();
        c.close().await;
        n
    }

    /// Fetch at the NGO over a clean link and return the reports received, decrypted.
    async fn ngo_reports(&self) -> Vec<serde_json::Value> {
        self.proxy.set_conditions(LinkConditions::clean());
        self.proxy.set_forwarding(true);
        vigil_ok(&["--home", s(&self.ngo), "inbox", "fetch"]).await;
        let home = common::bins::home(&self.ngo).expect("home");
        let ngo = Ngo::load(&home).expect("ngo");
        let ids = ngo.local_identities(&home).expect("identities");
        inbox_entries(&home)
            .expect("entries")
            .into_iter()
            .map(|(id, _)| {
                let (_, bytes) = inbox_read(&home, &id).expect("read");
                let opened = envelope::open(&bytes, &ids, &ngo.identity.public()).expect("opens");
                serde_json::from_slice(&opened.report_json).expect("json")
            })
            .collect()
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

/// A report whose JSON is about `narrative_len` bytes long (pseudo-random words, so nothing
/// about it is uniform).
fn report_json(title: &str, narrative_len: usize) -> String {
    let words = [
        "detained",
        "district",
        "department",
        "car",
        "night",
        "brother",
        "lawyer",
        "phone",
        "checkpoint",
        "base",
        "regiment",
        "statement",
        "witness",
        "unmarked",
        "taken",
    ];
    let mut narrative = String::with_capacity(narrative_len + 16);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while narrative.len() < narrative_len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        narrative.push_str(words[(x % words.len() as u64) as usize]);
        narrative.push(' ');
    }
    narrative.truncate(narrative_len);
    serde_json::json!({
        "kind": "arbitrary_detention",
        "urgency": "urgent",
        "title": title,
        "occurred_at": "2024-03-01",
        "narrative": narrative,
    })
    .to_string()
}

fn exit_code(r: &anyhow::Result<()>) -> Option<u8> {
    r.as_ref().err().map(vigil_client::exit_code_for)
}

/// 10 % loss in each direction, 300 ms added round trip with jitter (so datagrams are reordered),
/// 1 % duplicated: a report of 1 MiB (the largest report the format allows) goes through `vigil
/// report send`, is acknowledged as stored, and reaches the NGO once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_mib_report_crosses_a_link_with_10_percent_loss_and_300ms_rtt() {
    let w = World::new(0x5eed_0001).await;
    let json_len = vigil_core::report::MAX_REPORT_JSON_LEN - 256;
    let report = w.report_file("lossy-1mib.json", json_len);
    assert!(std::fs::metadata(&report).expect("meta").len() as usize <= json_len + 256);
    w.proxy.set_conditions(LinkConditions {
        loss: 0.10,
        one_way_delay: Duration::from_millis(150),
        jitter: Duration::from_millis(10),
        duplicate: 0.01,
    });
    let started = Instant::now();
    let sent = tokio::time::timeout(
        Duration::from_secs(240),
        vigil(&[
            "--home",
            s(&w.reporter),
            "report",
            "send",
            "--to",
            NGO,
            "--file",
            s(&report),
            "--retry-for",
            "3m",
        ]),
    )
    .await
    .expect("safety net: the send ends");
    let took = started.elapsed();
    let st = w.proxy.stats();
    eprintln!(
        "lossy link: 1 MiB report stored in {:.1} s ({} datagrams forwarded, {} dropped, {} duplicated)",
        took.as_secs_f64(),
        st.forwarded.load(std::sync::atomic::Ordering::Relaxed),
        st.dropped.load(std::sync::atomic::Ordering::Relaxed),
        st.duplicated.load(std::sync::atomic::Ordering::Relaxed),
    );
    if let Err(e) = &sent {
        panic!("send over the lossy link failed: {e:#}");
    }
    assert!(st.dropped.load(std::sync::atomic::Ordering::Relaxed) > 0);
    assert_eq!(w.queued(), 0, "stored, so it left the outbox");
    let reports = w.ngo_reports().await;
    assert_eq!(reports.len(), 1, "exactly one copy at the NGO");
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("read")).expect("json");
    assert_eq!(reports[0], expected, "the report arrives intact");
}

/// The link dies a third of the way into a 1 MiB upload. With no retries, the send fails with
/// exit code 3 and the report waits in the outbox; once the link is back, `vigil outbox flush`
/// delivers it, and the NGO gets one copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_cut_mid_transfer_leaves_the_report_queued_for_the_next_attempt() {
    let w = World::new(0x5eed_0002).await;
    let report = w.report_file("cut.json", 1000 * 1024);
    w.proxy.set_conditions(LinkConditions {
        loss: 0.0,
        one_way_delay: Duration::from_millis(20),
        jitter: Duration::ZERO,
        duplicate: 0.0,
    });
    w.proxy.cut_after(350 * 1024);
    let r = tokio::time::timeout(
        Duration::from_secs(60),
        vigil(&[
            "--home",
            s(&w.reporter),
            "report",
            "send",
            "--to",
            NGO,
            "--file",
            s(&report),
            "--no-retry",
            "--stall-timeout",
            "2s",
        ]),
    )
    .await
    .expect("safety net: the send ends");
    assert!(!w.proxy.forwarding(), "the link was cut during the upload");
    assert_eq!(
        exit_code(&r),
        Some(vigil_client::exit::RELAY_UNREACHABLE),
        "{r:?}"
    );
    assert_eq!(w.queued(), 1, "the report waits in the outbox");
    assert_eq!(w.at_relay().await, 0, "nothing half-stored at the relay");

    w.proxy.set_forwarding(true);
    vigil_ok(&["--home", s(&w.reporter), "outbox", "flush", "--no-retry"]).await;
    assert_eq!(w.queued(), 0);
    let reports = w.ngo_reports().await;
    assert_eq!(reports.len(), 1, "exactly one copy at the NGO");
    assert_eq!(reports[0]["title"], "cut.json");
}

/// The link dies mid-upload and comes back a few seconds later while `vigil report send` is
/// still retrying: the same command finishes the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_that_comes_back_during_the_retry_window_completes_the_same_send() {
    let w = World::new(0x5eed_0003).await;
    let report = w.report_file("comeback.json", 600 * 1024);
    w.proxy.set_conditions(LinkConditions {
        loss: 0.02,
        one_way_delay: Duration::from_millis(20),
        jitter: Duration::from_millis(5),
        duplicate: 0.0,
    });
    w.proxy.cut_after(200 * 1024);
    let args = [
        "--home",
        s(&w.reporter),
        "report",
        "send",
        "--to",
        NGO,
        "--file",
        s(&report),
        "--retry-for",
        "90s",
        "--stall-timeout",
        "2s",
    ];
    let send = vigil(&args);
    let restore = async {
        while w.proxy.forwarding() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_secs(4)).await;
        w.proxy.set_forwarding(true);
    };
    let (r, ()) = tokio::time::timeout(Duration::from_secs(120), async {
        tokio::join!(send, restore)
    })
    .await
    .expect("safety net: the send ends");
    if let Err(e) = r {
        panic!("send should complete once the link is back: {e:#}");
    }
    assert_eq!(w.queued(), 0);
    let reports = w.ngo_reports().await;
    assert_eq!(reports.len(), 1, "exactly one copy at the NGO");
}

/// The relay stores the deposit but its "stored" reply never reaches the reporter (the return
/// path dies). The client gives up on the silent connection, retries on a new one with the same
/// deposit id, the relay answers "already stored", and the NGO gets exactly one copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_lost_stored_reply_yields_exactly_one_copy() {
    let w = World::new(0x5eed_0004).await;
    let report = w.report_file("lost-reply.json", 8 * 1024);
    // Replies take 300 ms through the proxy: time enough to see the item at the relay (asked
    // directly) and cut the return path before "stored" gets through.
    w.proxy.set_conditions(LinkConditions {
        loss: 0.0,
        one_way_delay: Duration::from_millis(300),
        jitter: Duration::ZERO,
        duplicate: 0.0,
    });
    let clients_before = w.proxy.clients_seen();
    let args = [
        "--home",
        s(&w.reporter),
        "report",
        "send",
        "--to",
        NGO,
        "--file",
        s(&report),
        "--retry-for",
        "60s",
        "--stall-timeout",
        "2s",
    ];
    let send = vigil(&args);
    let cut_reply = async {
        let ngo = Ngo::load(&common::bins::home(&w.ngo).expect("home")).expect("ngo");
        let direct =
            RelayClient::connect(&w.relay.local_addr().to_string(), &w.relay.fingerprint())
                .await
                .expect("direct connection");
        loop {
            let items = direct
                .fetch(ngo.mailbox_key.as_dalek(), 4)
                .await
                .expect("fetch");
            if !items.is_empty() {
                w.proxy.block_replies_to_current_clients();
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        direct.close().await;
    };
    let (r, ()) = tokio::time::timeout(Duration::from_secs(90), async {
        tokio::join!(send, cut_reply)
    })
    .await
    .expect("safety net: the send ends");
    if let Err(e) = r {
        panic!("the retry should succeed: {e:#}");
    }
    assert!(
        w.proxy.clients_seen() >= clients_before + 2,
        "the reporter had to come back on a new connection"
    );
    assert_eq!(w.queued(), 0);
    assert_eq!(w.at_relay().await, 1, "the relay holds one copy");
    let reports = w.ngo_reports().await;
    assert_eq!(reports.len(), 1, "exactly one copy at the NGO");
    assert_eq!(reports[0]["title"], "lost-reply.json");
}
