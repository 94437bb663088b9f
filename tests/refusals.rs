//! Refusals across the whole system: a relay with a different certificate, an unreachable relay,
//! a tampered envelope, a signature by a key other than the one claimed. Each is refused with a
//! specific error, and nothing already stored is lost.

mod common;

use common::*;
use rand::rngs::OsRng;
use vigil_client::relay::{RelayClient, RelayError};
use vigil_client::state::{contact_by_name, inbox_entries, outbox, Ngo};
use vigil_core::ids::DepositId;
use vigil_core::keys::SigningSecret;

const REPORT: &str = r#"{"kind":"arbitrary_detention","urgency":"high","title":"held","occurred_at":"2024-03-01","narrative":"taken to the district department"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impostor_relay_is_refused_and_the_report_stays_queued() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let relay = start_relay(&root.join("relay")).await;
    let addr = relay.local_addr().to_string();
    let (ngo, card) = make_ngo(root, "ngo", "Memorial Caucasus desk", &relay).await;
    let rep = make_reporter(root, &[&card]).await;
    let reps = rep.to_str().expect("utf8");
    let report = root.join("r.json");
    std::fs::write(&report, REPORT).expect("write");

    // The real relay goes away; an impostor with its own certificate answers on the same address.
    relay.shutdown().await.expect("shutdown");
    let impostor = start_relay_at(&root.join("impostor"), &addr).await;
    let err = vigil(&[
        "--home",
        reps,
        "report",
        "send",
        "--to",
        "Memorial Caucasus desk",
        "--file",
        report.to_str().expect("utf8"),
    ])
    .await
    .expect_err("impostor must be refused");
    assert_eq!(
        vigil_client::exit_code_for(&err),
        vigil_client::exit::RELAY_IDENTITY_MISMATCH,
        "{err:#}"
    );
    assert!(format!("{err:#}").contains("does not match"), "{err:#}");
    let home = common::bins::home(&rep).expect("home");
    assert_eq!(
        outbox(&home).expect("outbox").len(),
        1,
        "report stays queued"
    );
    impostor.shutdown().await.expect("shutdown");

    // Nothing listens now: unreachable, still queued, its own exit code.
    let err = vigil(&["--home", reps, "outbox", "flush"])
        .await
        .expect_err("nobody listens");
    assert_eq!(
        vigil_client::exit_code_for(&err),
        vigil_client::exit::RELAY_UNREACHABLE,
        "{err:#}"
    );
    assert_eq!(outbox(&home).expect("outbox").len(), 1);

    // The real relay comes back on its data: the queued report goes through, once.
    let relay = start_relay_at(&root.join("relay"), &addr).await;
    vigil_ok(&["--home", reps, "outbox", "flush"]).await;
    assert!(outbox(&home).expect("outbox").is_empty());
    vigil_ok(&["--home", ngo.to_str().expect("utf8"), "inbox", "fetch"]).await;
    assert_eq!(
        inbox_entries(&common::bins::home(&ngo).expect("home"))
            .expect("entries")
            .len(),
        1
    );
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_and_forged_envelopes_are_rejected_without_losing_good_ones() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let relay = start_relay(&root.join("relay")).await;
    let (ngo_dir, card) = make_ngo(root, "ngo", "Memorial Caucasus desk", &relay).await;
    let rep = make_reporter(root, &[&card]).await;
    let reps = rep.to_str().expect("utf8");
    let report = root.join("r.json");
    std::fs::write(&report, REPORT).expect("write");
    vigil_ok(&[
        "--home",
        reps,
        "report",
        "send",
        "--to",
        "Memorial Caucasus desk",
        "--file",
        report.to_str().expect("utf8"),
    ])
    .await;

    let rep_home = common::bins::home(&rep).expect("home");
    let card = contact_by_name(&rep_home, "Memorial Caucasus desk")
        .expect("contact")
        .card;
    let client = RelayClient::connect(&card.relay, &card.relay_fingerprint)
        .await
        .expect("connect");

    // 1. A good envelope with one ciphertext byte flipped (in the payload, after the header).
    let sender = vigil_client::state::reporter_key(&rep_home).expect("key");
    let good = vigil_core::envelope::seal(
        REPORT.as_bytes(),
        &sender,
        &[card.identity_key],
        &card.recipients,
        1,
        &mut OsRng,
    )
    .expect("seal");
    let mut tampered = good.clone();
    let last = tampered.len() - 20;
    tampered[last] ^= 0x40;
    client
        .deposit(&card.mailbox, &DepositId(rand::random()), &tampered)
        .await
        .expect("relay stores ciphertext blindly");

    // 2. A forged inner layer: signed by one key, claiming another as the sender.
    let forger = SigningSecret::generate(&mut OsRng);
    let mut inner =
        vigil_core::envelope::sign_inner(REPORT.as_bytes(), &forger, &[card.identity_key], 1)
            .expect("inner")
            .to_vec();
    inner[15..47].copy_from_slice(&sender.public().to_bytes());
    let forged =
        vigil_core::age::encrypt_to_vec(&card.recipients, &inner, &mut OsRng).expect("encrypt");
    client
        .deposit(&card.mailbox, &DepositId(rand::random()), &forged)
        .await
        .expect("stored");

    // 3. A report sealed for another NGO and forwarded here.
    let other_ngo = SigningSecret::generate(&mut OsRng).public();
    let forwarded = vigil_core::envelope::seal(
        REPORT.as_bytes(),
        &sender,
        &[other_ngo],
        &card.recipients,
        1,
        &mut OsRng,
    )
    .expect("seal");
    client
        .deposit(&card.mailbox, &DepositId(rand::random()), &forwarded)
        .await
        .expect("stored");
    client.close().await;

    let ngo_home = common::bins::home(&ngo_dir).expect("home");
    let summary = vigil_client::commands::inbox::fetch(&vigil_client::commands::Ctx {
        home: ngo_home.clone(),
        out: vigil_client::output::Output { json: false },
    })
    .await
    .expect("fetch completes despite bad items");
    assert_eq!(summary.stored.len(), 1, "the good report is kept");
    assert_eq!(summary.rejected, 3);
    let rejected: Vec<String> = vigil_client::state::rejected_entries(&ngo_home)
        .expect("rejected")
        .into_iter()
        .map(|e| e.reason)
        .collect();
    assert_eq!(rejected.len(), 3, "rejected envelopes are kept as evidence");
    let reasons = rejected.join("\n");
    assert!(reasons.contains("signature does not verify"), "{reasons}");
    assert!(reasons.contains("signed for other NGOs"), "{reasons}");
    // The NGO can still read its good report.
    assert_eq!(
        vigil_client::commands::inbox::list(&vigil_client::commands::Ctx {
            home: ngo_home,
            out: vigil_client::output::Output { json: true }
        })
        .expect("list"),
        1
    );
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_with_someone_elses_key_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let relay = start_relay(&root.join("relay")).await;
    let (ngo_dir, _card) = make_ngo(root, "ngo", "Memorial Caucasus desk", &relay).await;
    let ngo = Ngo::load(&common::bins::home(&ngo_dir).expect("home")).expect("ngo");
    let client = RelayClient::connect(&ngo.config.relay, &ngo.config.relay_fingerprint)
        .await
        .expect("connect");
    let stranger = SigningSecret::generate(&mut OsRng);
    let err = client
        .fetch(stranger.as_dalek(), 10)
        .await
        .expect_err("unregistered key must not fetch");
    assert!(matches!(err, RelayError::Refused { .. }), "{err}");
    // The owner still can.
    assert!(client
        .fetch(ngo.mailbox_key.as_dalek(), 10)
        .await
        .expect("owner fetch")
        .is_empty());
    client.close().await;
    relay.shutdown().await.expect("shutdown");
}
