//! Forward secrecy with prekeys (issue 16): a report sealed to the NGO's current prekey reads
//! normally; once the prekey has expired, its grace period passed and a fetch emptied the
//! relay, its secret is gone from the NGO's home, and a copy of the relay's store taken while
//! the report waited there no longer opens with every key the NGO still holds. A prekey the
//! relay forges, or one that expired, is refused with a clear message, and the report still
//! goes, sealed to the long-term keys only.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use vigil_client::relay::RelayClient;
use vigil_client::state::prekeys::PrekeyState;
use vigil_client::state::{inbox_entries, Ngo};
use vigil_core::card::RecipientCard;
use vigil_core::prekey::{is_prekey_layer, PrekeyBundle};

const NGO: &str = "Rights Defenders desk";

fn write_report(root: &Path, title: &str) -> String {
    let p = root.join(format!("{title}.json"));
    std::fs::write(
        &p,
        format!(
            r#"{{"kind":"disappearance","urgency":"urgent","title":"{title}","occurred_at":"2024-05-01","narrative":"last seen at the checkpoint"}}"#
        ),
    )
    .expect("write report");
    p.to_str().expect("utf8").to_string()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).expect("copy");
        }
    }
}

/// Send a report with `--json` and return the `stored` object of its (one) copy.
async fn send_json(home: &str, report: &str) -> Value {
    let out = bins::vigil_output(&[
        "--home",
        home,
        "--json",
        "report",
        "send",
        "--to",
        NGO,
        "--file",
        report,
        "--no-retry",
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "stored")
        .unwrap_or_else(|| panic!("no stored object in {text}"))
}

/// Everything waiting at the relay at `addr` for the NGO in `ngo`, fetched with its mailbox key
/// (as whoever seized the relay and the NGO's keys could), not acknowledged.
async fn items_at(addr: &str, fp: vigil_core::ids::CertFingerprint, ngo: &Path) -> Vec<Vec<u8>> {
    let home = bins::home(ngo).expect("home");
    let state = Ngo::load(&home).expect("ngo");
    let client = RelayClient::connect_pinned(addr, &[fp])
        .await
        .expect("connect");
    let items = client
        .fetch(state.mailbox_key.as_dalek(), 64)
        .await
        .expect("fetch");
    client.close().await;
    items.into_iter().map(|i| i.envelope).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prekeyed_report_reads_and_then_a_relay_copy_opens_for_no_key_left() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let relay_dir = root.join("relay");
    let relay = start_relay(&relay_dir).await;
    let addr = relay.local_addr().to_string();
    let fp = relay.fingerprint();
    let (ngo, card_path) = make_ngo(root, "ngo", NGO, &relay).await;
    let ngo_s = ngo.to_str().expect("utf8");
    // `ngo init` made and published a first prekey (a week).
    let first = PrekeyState::load(&bins::home(&ngo).expect("home")).expect("prekeys");
    assert_eq!(first.keys.len(), 1);
    assert_eq!(first.keys[0].published, vec![addr.clone()]);
    // A short-lived one for this test: 30 s (time for the send below on a loaded machine), kept
    // 1 s after it expires.
    vigil_ok(&[
        "--home",
        ngo_s,
        "ngo",
        "prekeys",
        "--lifetime",
        "30s",
        "--grace",
        "1s",
    ])
    .await;
    let state = PrekeyState::load(&bins::home(&ngo).expect("home")).expect("prekeys");
    assert_eq!(
        state.keys.len(),
        2,
        "a new one: the first lived longer than 30 s"
    );
    let short = state.keys[1].clone();
    assert_eq!(short.expires - short.created, 30);

    // The reporter finds it at the relay, checks it against the card and seals to it.
    let reporter = make_reporter(root, &[&card_path]).await;
    let reporter = reporter.to_str().expect("utf8");
    let stored = send_json(reporter, &write_report(root, "taken-at-checkpoint")).await;
    let fs = &stored["forward_secrecy"];
    assert_eq!(fs["prekey"], true, "{stored}");
    assert_eq!(fs["prekey_id"], short.id.as_str(), "{stored}");

    // The relay is seized now, with the report in it.
    relay.shutdown().await.expect("shutdown");
    let seized_dir = root.join("seized");
    copy_dir(&relay_dir, &seized_dir);
    let relay = start_relay_at(&relay_dir, &addr).await;

    // The NGO reads it as any report.
    vigil_ok(&["--home", ngo_s, "inbox", "fetch"]).await;
    let home = bins::home(&ngo).expect("home");
    assert_eq!(inbox_entries(&home).expect("inbox").len(), 1);
    drop(home);

    // While the prekey lives, the seized copy is a prekey layer that the prekey and the staff
    // keys together open: the copy holds the report.
    let seized = start_relay(&seized_dir).await;
    let copies = items_at(&seized.local_addr().to_string(), fp, &ngo).await;
    assert_eq!(copies.len(), 1);
    assert!(is_prekey_layer(&copies[0]));
    {
        let home = bins::home(&ngo).expect("home");
        let state = Ngo::load(&home).expect("ngo");
        let staff = state.local_identities(&home).expect("staff keys");
        let prekeys = PrekeyState::load(&home)
            .expect("prekeys")
            .identities(&home)
            .expect("prekey secrets");
        let (_, inner) = vigil_core::prekey::unwrap(&copies[0], &prekeys, 1 << 24)
            .expect("unwrap")
            .expect("a held prekey opens it");
        vigil_core::envelope::open(&inner, &staff, &state.identity.public())
            .expect("then the staff keys");
        // The staff keys alone never did.
        assert!(vigil_core::envelope::open(&copies[0], &staff, &state.identity.public()).is_err());
    }

    // After its expiry and grace, the next fetch (which empties the relay) destroys it.
    let now = vigil_client::home::now_unix();
    let due = short.expires + 1;
    if due >= now {
        tokio::time::sleep(std::time::Duration::from_secs(due - now + 1)).await;
    }
    let out = bins::vigil_output(&["--home", ngo_s, "--json", "inbox", "fetch"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("prekeys_destroyed") && stdout.contains(&short.id),
        "{stdout}"
    );
    let home = bins::home(&ngo).expect("home");
    let left = PrekeyState::load(&home).expect("prekeys");
    assert!(
        left.keys.iter().all(|k| k.id != short.id),
        "the short prekey is off the list"
    );
    let records = home.vault().expect("vault").list("ngo/prekey/");
    assert!(
        records.iter().all(|r| !r.ends_with(&short.id)),
        "its secret is gone from the home: {records:?}"
    );
    // The seized copy plus everything the NGO still holds (staff keys, identity, the prekeys
    // left) opens nothing.
    let state = Ngo::load(&home).expect("ngo");
    let staff = state.local_identities(&home).expect("staff keys");
    let prekeys = left.identities(&home).expect("prekey secrets");
    assert!(
        !prekeys.is_empty(),
        "the first, week-long prekey is still held"
    );
    assert!(vigil_core::prekey::unwrap(&copies[0], &prekeys, 1 << 24)
        .expect("unwrap")
        .is_none());
    assert!(vigil_core::envelope::open(&copies[0], &staff, &state.identity.public()).is_err());
    // The report itself stays readable in the NGO's inbox (kept under the staff keys).
    assert_eq!(inbox_entries(&home).expect("inbox").len(), 1);
    drop(home);
    seized.shutdown().await.expect("shutdown");
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_expired_prekeys_are_refused_and_the_report_still_goes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let relay = start_relay(&root.join("relay")).await;
    let addr = relay.local_addr().to_string();
    let (ngo, card_path) = make_ngo(root, "ngo", NGO, &relay).await;
    let ngo_s = ngo.to_str().expect("utf8");
    let card =
        RecipientCard::parse(&std::fs::read_to_string(&card_path).expect("card")).expect("card");
    let home = bins::home(&ngo).expect("home");
    let state = Ngo::load(&home).expect("ngo");
    drop(home);
    let client = RelayClient::connect_pinned(&addr, &[relay.fingerprint()])
        .await
        .expect("connect");
    let now = vigil_client::home::now_unix();
    let prekey = vigil_core::age::hybrid::Identity::generate(&mut rand::rngs::OsRng);
    let bundle = |created: u64, expires: u64| PrekeyBundle {
        ngo: card.identity_key,
        mailbox: card.mailbox,
        created,
        expires,
        recipient: prekey.to_public(),
    };

    // Whoever holds the mailbox key (the relay could simply store it) puts up a prekey of its
    // own making in the NGO's name.
    let mallory = vigil_core::keys::SigningSecret::generate(&mut rand::rngs::OsRng);
    client
        .publish_prekey(
            state.mailbox_key.as_dalek(),
            &bundle(now, now + 86_400).sign(&mallory),
        )
        .await
        .expect("publish");
    let reporter = make_reporter(root, &[&card_path]).await;
    let reporter = reporter.to_str().expect("utf8");
    let stored = send_json(reporter, &write_report(root, "forged")).await;
    let fs = &stored["forward_secrecy"];
    assert_eq!(fs["prekey"], false, "{stored}");
    assert!(
        fs["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("not signed by the NGO's key"),
        "{stored}"
    );

    // The NGO's own, but expired.
    client
        .publish_prekey(
            state.mailbox_key.as_dalek(),
            &bundle(now - 7_200, now - 3_600).sign(&state.identity),
        )
        .await
        .expect("publish");
    client.close().await;
    let stored = send_json(reporter, &write_report(root, "stale")).await;
    let fs = &stored["forward_secrecy"];
    assert_eq!(fs["prekey"], false, "{stored}");
    assert!(
        fs["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("expired"),
        "{stored}"
    );

    // Both reports arrive, sealed to the long-term keys only.
    vigil_ok(&["--home", ngo_s, "inbox", "fetch"]).await;
    let home = bins::home(&ngo).expect("home");
    assert_eq!(inbox_entries(&home).expect("inbox").len(), 2);
    drop(home);
    relay.shutdown().await.expect("shutdown");
}
