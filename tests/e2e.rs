//! End to end: a real relay on 127.0.0.1, real clients, every fixture report to two NGOs with two
//! staff keys each; fetched, decrypted by each staff key, verified, acknowledged, then gone.

mod common;

use common::*;
use vigil_client::relay::RelayClient;
use vigil_client::state::{inbox_entries, inbox_read, Ngo};
use vigil_core::envelope;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_reaches_two_ngos_and_leaves_the_relay() {
    let files = fixture_files();
    if files.is_empty() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let relay = start_relay(&root.join("relay")).await;
    let (ngo_a, card_a) = make_ngo(root, "ngo-a", "Memorial Caucasus desk", &relay).await;
    let (ngo_b, card_b) = make_ngo(root, "ngo-b", "Crew Against Torture", &relay).await;
    let rep_dir = make_reporter(root, &[&card_a, &card_b]).await;
    let rep = rep_dir.to_str().expect("utf8");

    for f in &files {
        vigil_ok(&[
            "--home",
            rep,
            "report",
            "send",
            "--to",
            "Memorial Caucasus desk",
            "--to",
            "crew against torture",
            "--file",
            f.to_str().expect("utf8"),
        ])
        .await;
    }
    // Nothing is left in the reporter's outbox once the relay said "stored".
    let rep_home = common::bins::home(rep).expect("home");
    assert!(vigil_client::state::outbox(&rep_home)
        .expect("outbox")
        .is_empty());

    for ngo_home in [&ngo_a, &ngo_b] {
        let h = ngo_home.to_str().expect("utf8");
        vigil_ok(&["--home", h, "inbox", "fetch"]).await;
        vigil_ok(&["--home", h, "inbox", "list", "--json"]).await;
        let home = common::bins::home(ngo_home).expect("home");
        let ngo = Ngo::load(&home).expect("ngo");
        let ids = ngo.local_identities(&home).expect("identities");
        assert_eq!(ids.len(), 2, "two staff keys held");
        let entries = inbox_entries(&home).expect("entries");
        assert_eq!(entries.len(), files.len(), "every fixture arrived once");

        // Each fixture matches one stored report, field for field, for each staff key alone.
        let mut expected: Vec<serde_json::Value> = files
            .iter()
            .map(|f| {
                serde_json::from_slice(&std::fs::read(f).expect("fixture")).expect("fixture json")
            })
            .collect();
        for (id, _) in entries {
            vigil_ok(&["--home", h, "inbox", "show", &id]).await;
            let (_, bytes) = inbox_read(&home, &id).expect("read");
            let mut seen = None;
            for staff in &ids {
                let opened =
                    envelope::open(&bytes, std::slice::from_ref(staff), &ngo.identity.public())
                        .expect("each staff key opens it");
                let v: serde_json::Value =
                    serde_json::from_slice(&opened.report_json).expect("json");
                assert_eq!(opened.intended.len(), 2, "bound to both NGOs");
                seen = Some(v);
            }
            let v = seen.expect("opened");
            let pos = expected
                .iter()
                .position(|e| *e == v)
                .expect("report equals one fixture, field for field");
            expected.remove(pos);
        }
        assert!(expected.is_empty());

        // Acknowledged items are gone from the relay.
        let client = RelayClient::connect(&ngo.config.relay, &ngo.config.relay_fingerprint)
            .await
            .expect("connect");
        let left = client
            .fetch(ngo.mailbox_key.as_dalek(), 100)
            .await
            .expect("fetch");
        assert!(left.is_empty(), "relay still holds {} items", left.len());
        client.close().await;
    }
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_never_reaches_the_relay_disk() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let relay_dir = root.join("relay");
    let relay = start_relay(&relay_dir).await;
    let (_ngo, card) = make_ngo(root, "ngo", "Memorial Caucasus desk", &relay).await;
    let rep = make_reporter(root, &[&card]).await;
    let reps = rep.to_str().expect("utf8");

    let canary = format!("CANARY-{}", hex::encode(rand::random::<[u8; 12]>()));
    let report = serde_json::json!({
        "kind": "abduction", "urgency": "urgent", "title": format!("title {canary}"),
        "occurred_at": "2024-01-01", "narrative": format!("narrative {canary} Ахмед"),
    });
    // Write a report as JSON and send it to the NGO.
    let send = |name: &str, report: serde_json::Value| {
        let path = root.join(name);
        std::fs::write(&path, report.to_string()).expect("write");
        async move {
            let file = path.to_str().expect("utf8");
            let to = "Memorial Caucasus desk";
            vigil_ok(&["--home", reps, "report", "send", "--to", to, "--file", file]).await;
        }
    };
    send("r.json", report).await;
    // A long report too (its envelope is over 64 KiB, so the relay keeps it in a file of its
    // own rather than in sled): the canary throughout a 200 KiB narrative.
    let long = serde_json::json!({
        "kind": "torture", "urgency": "normal", "title": "long testimony",
        "occurred_at": "2024-01-02",
        "narrative": format!("{canary} Ахмед ").repeat(200 * 1024 / 40),
    });
    send("long.json", long).await;
    let envelope_files = std::fs::read_dir(relay_dir.join("store").join("envelopes"))
        .expect("envelope directory")
        .count();
    assert_eq!(envelope_files, 1, "the long report is stored as a file");

    let reporter_key = vigil_client::state::reporter_key(&common::bins::home(&rep).expect("home"))
        .expect("key")
        .public()
        .to_bytes();
    let utf16le: Vec<u8> = canary
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    let utf16be: Vec<u8> = canary
        .encode_utf16()
        .flat_map(|u| u.to_be_bytes())
        .collect();
    use base64::Engine;
    let mut needles: Vec<Vec<u8>> = vec![
        canary.as_bytes().to_vec(),
        utf16le,
        utf16be,
        reporter_key.to_vec(),
        hex::encode(reporter_key).into_bytes(),
    ];
    for pad in ["", "x", "xx"] {
        // base64 of the marker at each alignment, minus the characters that mix in neighbours.
        let enc = base64::engine::general_purpose::STANDARD.encode(format!("{pad}{canary}"));
        let start = (pad.len() * 4).div_ceil(3) + 1;
        needles.push(enc.as_bytes()[start..enc.len() - 4].to_vec());
    }
    let check = |when: &str| {
        let files = all_files(&relay_dir);
        assert!(!files.is_empty());
        for f in files {
            let bytes = std::fs::read(&f).expect("read relay file");
            for n in &needles {
                assert!(
                    !contains(&bytes, n),
                    "{when}: relay file {} contains a canary form",
                    f.display()
                );
            }
        }
    };
    check("while running");
    relay.shutdown().await.expect("shutdown");
    check("after shutdown");
}
