//! The outbox survives the client being killed at any point, and never delivers a report twice.
//!
//! - The `vigil` program is SIGKILLed at random moments during `report send` (while reading,
//!   sealing, writing the outbox, connecting, uploading, or between "stored" and removing the
//!   item). After every kill the outbox is readable (no half-written item), and in the end every
//!   report that reached the outbox arrives at the NGO exactly once.
//! - The exact window "relay said stored, client died before removing the item" is reproduced
//!   deterministically: the next flush sends it again under the same deposit id and the relay
//!   answers "already stored".

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use vigil_client::relay::{Deposited, RelayClient};
use vigil_client::state::{inbox_entries, inbox_id, inbox_read, outbox, Ngo};
use vigil_relay::{RelayConfig, RelayHandle};

mod common;

use common::vigil_ok;
const NGO: &str = "Memorial Caucasus desk";

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8")
}

fn report(title: &str, narrative_len: usize) -> String {
    serde_json::json!({
        "kind": "threat",
        "urgency": "urgent",
        "title": title,
        "occurred_at": "2024-01-01",
        "narrative": "n".repeat(narrative_len),
    })
    .to_string()
}

/// A relay, an NGO and a reporter who imported its card.
async fn setup(root: &Path) -> (RelayHandle, std::path::PathBuf, std::path::PathBuf) {
    let relay = vigil_relay::start(RelayConfig::new(
        root.join("relay"),
        "127.0.0.1:0".parse().expect("addr"),
    ))
    .await
    .expect("relay");
    let ngo = root.join("ngo");
    let card = root.join("ngo.card");
    vigil_ok(&[
        "--home",
        s(&ngo),
        "ngo",
        "init",
        "--name",
        NGO,
        "--relay",
        &relay.local_addr().to_string(),
        "--relay-fingerprint",
        &relay.fingerprint().to_string(),
        "--card-out",
        s(&card),
    ])
    .await;
    let rep = root.join("reporter");
    vigil_ok(&["--home", s(&rep), "contact", "add", s(&card)]).await;
    (relay, ngo, rep)
}

/// Fetch at the NGO; titles of the reports received, with how many copies of each.
async fn ngo_titles(ngo_home: &Path) -> BTreeMap<String, usize> {
    vigil_ok(&["--home", s(ngo_home), "inbox", "fetch"]).await;
    let home = common::bins::home(ngo_home).expect("home");
    let ngo = Ngo::load(&home).expect("ngo");
    let ids = ngo.local_identities(&home).expect("identities");
    let mut titles = BTreeMap::new();
    for (id, _) in inbox_entries(&home).expect("entries") {
        let (_, bytes) = inbox_read(&home, &id).expect("read");
        let opened =
            vigil_core::envelope::open(&bytes, &ids, &ngo.identity.public()).expect("opens");
        let v: serde_json::Value = serde_json::from_slice(&opened.report_json).expect("json");
        *titles
            .entry(v["title"].as_str().expect("title").to_string())
            .or_insert(0) += 1;
    }
    titles
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_moments_the_outbox_stays_whole_and_delivers_each_report_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let (relay, ngo, rep) = setup(root).await;
    // Envelopes (by hash, the NGO's inbox id) ever seen waiting in the outbox.
    let mut ever_queued: BTreeSet<String> = BTreeSet::new();
    let mut kills = 0;
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let sends = 16;
    let mut window_ms = 1;
    for i in 0..sends {
        let file = root.join(format!("r{i}.json"));
        // Reports of a few sizes, so kills land at every stage: sealing, writing, uploading.
        let len = [400_000, 100, 50_000][i % 3];
        std::fs::write(&file, report(&format!("report {i}"), len)).expect("write");
        let mut child = common::bins::as_script(&mut Command::new(common::bins::vigil()))
            .args([
                "--home",
                s(&rep),
                "report",
                "send",
                "--to",
                NGO,
                "--file",
                s(&file),
                "--no-retry",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn vigil");
        let spawned = std::time::Instant::now();
        if i == 0 {
            // The first send runs to the end: how long a send takes sets the kill window.
            let status = tokio::task::spawn_blocking(move || {
                let st = child.wait();
                (child, st)
            })
            .await
            .expect("wait task");
            child = status.0;
            window_ms = (spawned.elapsed().as_millis() as u64).max(20);
            eprintln!("a whole send takes {window_ms} ms; kills land within that");
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Most of a send is start-up and sealing; the tail (outbox write, upload, removal) is
        // short, so half the kills aim at the later half.
        let at = if x.is_multiple_of(2) {
            x % window_ms
        } else {
            window_ms / 2 + x % (window_ms * 3 / 4)
        };
        tokio::time::sleep(Duration::from_millis(at)).await;
        if child.try_wait().expect("try_wait").is_none() {
            child.kill().expect("SIGKILL vigil");
            kills += 1;
        }
        child.wait().expect("wait");
        // `outbox` fails on a half-written item: every kill leaves it readable.
        for item in
            outbox(&common::bins::home(&rep).expect("home")).expect("outbox readable after a kill")
        {
            ever_queued.insert(inbox_id(&item.envelope().expect("envelope")));
        }
    }
    let left = outbox(&common::bins::home(&rep).expect("home"))
        .expect("outbox")
        .len();
    eprintln!(
        "killed vigil {kills} times in {sends} sends; {} envelope(s) seen queued after a kill, {left} left",
        ever_queued.len()
    );
    if left > 0 {
        vigil_ok(&["--home", s(&rep), "outbox", "flush", "--retry-for", "30s"]).await;
    }
    assert!(outbox(&common::bins::home(&rep).expect("home"))
        .expect("outbox")
        .is_empty());

    // What the relay holds, before the NGO's inbox (keyed by hash) could hide a second copy.
    let ngo_state = Ngo::load(&common::bins::home(&ngo).expect("home")).expect("ngo");
    let c = RelayClient::connect(&relay.local_addr().to_string(), &relay.fingerprint())
        .await
        .expect("connect");
    let items = c
        .fetch(ngo_state.mailbox_key.as_dalek(), 64)
        .await
        .expect("fetch");
    c.close().await;
    // Each copy left the outbox sealed once more to the NGO's current prekey (issue 16): the
    // envelope that was queued is the one inside that layer.
    let home = common::bins::home(&ngo).expect("home");
    let prekeys = vigil_client::state::prekeys::PrekeyState::load(&home)
        .expect("prekeys")
        .identities(&home)
        .expect("prekey secrets");
    drop(home);
    let at_relay: Vec<String> = items
        .iter()
        .map(|i| {
            match vigil_core::prekey::unwrap(&i.envelope, &prekeys, 1 << 24).expect("unwrap") {
                Some((_, inner)) => inbox_id(&inner),
                None => inbox_id(&i.envelope),
            }
        })
        .collect();
    let distinct: BTreeSet<String> = at_relay.iter().cloned().collect();
    assert_eq!(at_relay.len(), distinct.len(), "no envelope stored twice");
    for q in &ever_queued {
        assert!(distinct.contains(q), "a queued report was lost");
    }
    let titles = ngo_titles(&ngo).await;
    assert_eq!(titles.values().sum::<usize>(), at_relay.len());
    for (title, copies) in &titles {
        assert_eq!(*copies, 1, "{title} arrived {copies} times");
    }
    assert!(!titles.is_empty(), "some sends got through");
    relay.shutdown().await.expect("shutdown");
}

/// The relay stored the envelope and said so, and the phone died before the item left the
/// outbox: the next flush delivers it again, the relay recognises the deposit id, and the NGO
/// has one copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_stored_and_removal_the_retry_is_recognised_as_a_repeat() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let (relay, ngo, rep) = setup(root).await;
    let file = root.join("r.json");
    std::fs::write(&file, report("stored then killed", 2000)).expect("write");
    vigil_ok(&[
        "--home",
        s(&rep),
        "report",
        "send",
        "--to",
        NGO,
        "--file",
        s(&file),
        "--queue-only",
    ])
    .await;
    let items = outbox(&common::bins::home(&rep).expect("home")).expect("outbox");
    assert_eq!(items.len(), 1);
    let item = &items[0];
    // What the killed process did before it died: the deposit, answered "stored".
    let c = RelayClient::connect(&item.relay, &item.relay_fingerprint)
        .await
        .expect("connect");
    let first = c
        .deposit_status(
            &item.mailbox,
            &item.deposit_id,
            &item.envelope().expect("env"),
        )
        .await
        .expect("deposit");
    assert_eq!(first, Deposited::New);
    c.close().await;

    // The next run finds the item still queued and sends it again.
    vigil_ok(&["--home", s(&rep), "outbox", "flush", "--no-retry"]).await;
    assert!(outbox(&common::bins::home(&rep).expect("home"))
        .expect("outbox")
        .is_empty());
    let titles = ngo_titles(&ngo).await;
    assert_eq!(
        titles,
        BTreeMap::from([("stored then killed".to_string(), 1)]),
        "exactly one copy"
    );
    relay.shutdown().await.expect("shutdown");
}
