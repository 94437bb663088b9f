//! Post-quantum staff keys (issue 16): a new NGO's card carries hybrid ML-KEM-768 + X25519
//! keys, a report sealed to it has only hybrid stanzas and opens; `vigil ngo rotate-keys` moves
//! a classic NGO to hybrid keys, keeps the old keys for reports still sealed to them, and
//! destroys them after their date while the reports they opened stay readable; `vigil age`
//! makes, uses and refuses to mix hybrid keys.

mod common;

use common::*;
use std::path::Path;
use vigil_client::state::{inbox_entries, inbox_read, Ngo};
use vigil_core::age::format::Header;
use vigil_core::card::RecipientCard;

const NGO: &str = "Civic Assistance desk";

fn write_report(root: &Path, title: &str) -> String {
    let p = root.join(format!("{title}.json"));
    std::fs::write(
        &p,
        format!(
            r#"{{"kind":"abduction","urgency":"urgent","title":"{title}","occurred_at":"2024-03-01","narrative":"taken from the street by men in an unmarked car"}}"#
        ),
    )
    .expect("write report");
    p.to_str().expect("utf8").to_string()
}

fn read_card(path: &Path) -> RecipientCard {
    RecipientCard::parse(&std::fs::read_to_string(path).expect("read card")).expect("card")
}

async fn send(home: &str, report: &str) {
    vigil_ok(&[
        "--home",
        home,
        "report",
        "send",
        "--to",
        NGO,
        "--file",
        report,
        "--no-retry",
    ])
    .await;
}

/// The titles of the reports in the NGO's inbox, opened with its keys, and the stanza types of
/// each stored envelope's header.
fn inbox(ngo: &Path) -> Vec<(String, Vec<String>)> {
    let home = bins::home(ngo).expect("home");
    let state = Ngo::load(&home).expect("ngo");
    let ids = state.local_identities(&home).expect("keys");
    let me = state.identity.public();
    let mut out = Vec::new();
    for (id, _) in inbox_entries(&home).expect("entries") {
        let (_, bytes) = inbox_read(&home, &id).expect("read");
        let (header, _) = Header::parse(&bytes).expect("header");
        let tags = header.stanzas.iter().map(|s| s.tag().to_string()).collect();
        let opened = vigil_core::envelope::open(&bytes, &ids, &me).expect("opens");
        let report: serde_json::Value =
            serde_json::from_slice(&opened.report_json).expect("report json");
        out.push((report["title"].as_str().expect("title").to_string(), tags));
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_ngo_gets_post_quantum_keys_and_reads_reports_sealed_to_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let relay = start_relay(&root.join("relay")).await;
    let (ngo, card_path) = make_ngo(root, "ngo", NGO, &relay).await;
    let card = read_card(&card_path);
    assert_eq!(card.recipients.len(), 2);
    assert!(
        card.recipients.iter().all(|r| r.is_post_quantum()),
        "a new NGO's staff keys are post-quantum by default"
    );
    assert!(card.recipients[0].to_string().starts_with("age1pq1"));

    let reporter = make_reporter(root, &[&card_path]).await;
    let reporter = reporter.to_str().expect("utf8");
    send(reporter, &write_report(root, "pq-one")).await;
    vigil_ok(&["--home", ngo.to_str().expect("utf8"), "inbox", "fetch"]).await;
    let got = inbox(&ngo);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "pq-one");
    assert_eq!(got[0].1.len(), vigil_core::envelope::ENVELOPE_STANZAS);
    assert!(
        got[0].1.iter().all(|t| t == "mlkem768x25519"),
        "only hybrid stanzas (staff keys and decoys): {:?}",
        got[0].1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_keys_moves_to_post_quantum_and_destroys_the_old_keys_after_their_date() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let relay = start_relay(&root.join("relay")).await;
    let ngo = root.join("ngo");
    let ngo_s = ngo.to_str().expect("utf8");
    let card_path = root.join("ngo.card");
    let card_s = card_path.to_str().expect("utf8");
    // A classic NGO whose card is valid for a few seconds only, so that the old keys' date
    // (the old card's expiry plus --keep-old-keys) comes within the test.
    vigil_ok(&[
        "--home",
        ngo_s,
        "ngo",
        "init",
        "--name",
        NGO,
        "--relay",
        &relay.local_addr().to_string(),
        "--relay-fingerprint",
        &relay.fingerprint().to_string(),
        "--card-out",
        card_s,
        "--classic-keys",
        "--valid-for",
        "12s",
    ])
    .await;
    let old_card = read_card(&card_path);
    assert!(old_card.recipients.iter().all(|r| !r.is_post_quantum()));
    let old_card_path = root.join("old.card");
    std::fs::copy(&card_path, &old_card_path).expect("copy card");

    let reporter = make_reporter(root, &[&old_card_path]).await;
    let reporter = reporter.to_str().expect("utf8");
    send(reporter, &write_report(root, "before")).await;
    vigil_ok(&["--home", ngo_s, "inbox", "fetch"]).await;

    // A post-quantum recipient cannot join a classic card...
    let pq = vigil_core::age::hybrid::Identity::generate(&mut rand::rngs::OsRng)
        .to_public()
        .to_string();
    let e = vigil(&[
        "--home",
        ngo_s,
        "ngo",
        "add-staff",
        "--name",
        "remote",
        "--recipient",
        &pq,
    ])
    .await
    .expect_err("mixed card refused");
    assert!(format!("{e:#}").contains("never mixes"), "{e:#}");

    // ...the whole card moves instead.
    vigil_ok(&[
        "--home",
        ngo_s,
        "ngo",
        "rotate-keys",
        "--keep-old-keys",
        "1s",
        "--card-out",
        card_s,
    ])
    .await;
    let new_card = read_card(&card_path);
    assert!(new_card.recipients.iter().all(|r| r.is_post_quantum()));
    assert_eq!(new_card.identity_key, old_card.identity_key);
    let home = bins::home(&ngo).expect("home");
    let state = Ngo::load(&home).expect("ngo");
    assert_eq!(state.config.retired.len(), 1);
    let retired = state.config.retired[0].clone();
    let old_file = retired.local_key.clone().expect("the old key was local");
    assert!(Ngo::staff_key(&home, &old_file).is_ok(), "old key kept");
    assert_eq!(
        retired.destroy_after,
        old_card.expires.expect("expiry") + 1,
        "kept until the old card's expiry plus --keep-old-keys"
    );
    drop(home);

    // A reporter still holding the old card seals to the old key: the report still opens.
    send(reporter, &write_report(root, "stale-card")).await;
    vigil_ok(&["--home", ngo_s, "inbox", "fetch"]).await;
    let got = inbox(&ngo);
    assert_eq!(
        got.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        ["before", "stale-card"]
    );

    // After the date, the next fetch destroys the old key and re-seals what only it opened.
    let now = vigil_client::home::now_unix();
    if retired.destroy_after >= now {
        tokio::time::sleep(std::time::Duration::from_secs(
            retired.destroy_after - now + 1,
        ))
        .await;
    }
    vigil_ok(&["--home", ngo_s, "inbox", "fetch"]).await;
    let home = bins::home(&ngo).expect("home");
    let state = Ngo::load(&home).expect("ngo");
    assert!(state.config.retired.is_empty());
    assert!(
        Ngo::staff_key(&home, &old_file).is_err(),
        "the old key is gone from the home"
    );
    drop(home);
    let got = inbox(&ngo);
    assert_eq!(got.len(), 2, "both reports are still readable");
    for (title, tags) in &got {
        assert!(
            tags.iter().all(|t| t == "mlkem768x25519"),
            "{title} re-sealed to the post-quantum keys: {tags:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_age_tool_makes_uses_and_refuses_to_mix_post_quantum_keys() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let s = |p: &Path| p.to_str().expect("utf8").to_string();
    let key = root.join("pq.key");
    vigil_ok(&["age", "keygen", "--pq", "-o", &s(&key)]).await;
    let text = std::fs::read_to_string(&key).expect("key file");
    assert!(text.contains("AGE-SECRET-KEY-PQ-1"));
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("public key line")
        .to_string();
    assert!(recipient.starts_with("age1pq1"), "{recipient}");

    let plain = root.join("plain.txt");
    std::fs::write(&plain, b"names of the witnesses").expect("write");
    let sealed = root.join("plain.age");
    vigil_ok(&["age", "-e", "-r", &recipient, "-o", &s(&sealed), &s(&plain)]).await;
    let bytes = std::fs::read(&sealed).expect("sealed");
    let (h, _) = Header::parse(&bytes).expect("header");
    assert_eq!(h.stanzas.len(), 1);
    assert_eq!(h.stanzas[0].tag(), "mlkem768x25519");
    let opened = root.join("opened.txt");
    vigil_ok(&["age", "-d", "-i", &s(&key), "-o", &s(&opened), &s(&sealed)]).await;
    assert_eq!(
        std::fs::read(&opened).expect("opened"),
        b"names of the witnesses"
    );

    // Mixing a post-quantum and a classic recipient is refused.
    let classic = vigil_core::age::x25519::Identity::generate(&mut rand::rngs::OsRng)
        .to_public()
        .to_string();
    let e = vigil(&[
        "age",
        "-e",
        "-r",
        &recipient,
        "-r",
        &classic,
        "-o",
        &s(&root.join("mixed.age")),
        &s(&plain),
    ])
    .await
    .expect_err("mixed recipients refused");
    assert!(format!("{e:#}").contains("mixes post-quantum"), "{e:#}");
    assert!(!root.join("mixed.age").exists(), "nothing written");
}
