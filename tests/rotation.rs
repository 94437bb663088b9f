//! Relay certificate rotation without losing reporters (issue 4): the operator makes a next
//! certificate, the NGO announces it on a re-issued card, reporters holding that card accept
//! both certificates across the promote, and a reporter still holding only the old card is
//! refused (possible interception) with the report kept in the outbox until it gets the new card.

mod common;

use common::*;
use std::path::Path;
use vigil_client::commands::contact::describe_changes;
use vigil_client::relay::RelayError;
use vigil_client::state::{contact_by_name, inbox_entries, outbox, Ngo};
use vigil_core::card::RecipientCard;

const NGO: &str = "Memorial Caucasus desk";

fn report(root: &Path, n: u32) -> String {
    let p = root.join(format!("report-{n}.json"));
    std::fs::write(
        &p,
        format!(
            r#"{{"kind":"arbitrary_detention","urgency":"high","title":"held {n}","occurred_at":"2024-03-01","narrative":"taken to the district department ({n})"}}"#
        ),
    )
    .expect("write report");
    p.to_str().expect("utf8").to_string()
}

async fn send(home: &str, report: &str) -> anyhow::Result<()> {
    vigil(&[
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
    .await
}

fn read_card(path: &Path) -> RecipientCard {
    RecipientCard::parse(&std::fs::read_to_string(path).expect("read card")).expect("card")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_reporters_with_the_new_card_and_refuses_stale_pins() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let relay_dir = root.join("relay");
    let relay = start_relay(&relay_dir).await;
    let addr = relay.local_addr().to_string();
    let a = relay.fingerprint();
    let (ngo, card_path) = make_ngo(root, "ngo", NGO, &relay).await;
    let ngos = ngo.to_str().expect("utf8");
    let card_str = card_path.to_str().expect("utf8");
    let first_card = read_card(&card_path);
    assert_eq!(first_card.accepted_fingerprints(), vec![a]);

    // Two reporters hold the first card; one will get the rotation card, the other will not.
    let fresh = root.join("fresh");
    let fresh_s = fresh.to_str().expect("utf8");
    let stale = root.join("stale");
    let stale_s = stale.to_str().expect("utf8");
    let old_card = root.join("old.card");
    std::fs::copy(&card_path, &old_card).expect("copy card");
    vigil_ok(&["--home", fresh_s, "contact", "add", card_str]).await;
    vigil_ok(&[
        "--home",
        stale_s,
        "contact",
        "add",
        old_card.to_str().expect("utf8"),
    ])
    .await;

    // Operator: a next certificate B beside A; running it again gives the same B.
    let rotation = vigil_relay::cert::rotate(&relay_dir, false).expect("rotate");
    assert!(rotation.created);
    let b = rotation.next;
    assert_ne!(a, b);
    assert_eq!(
        vigil_relay::cert::rotate(&relay_dir, false).expect("rotate again"),
        vigil_relay::cert::Rotation {
            next: b,
            created: false
        }
    );
    assert_eq!(
        vigil_relay::cert::next_fingerprint(&relay_dir).expect("next"),
        Some(b)
    );
    assert_eq!(relay.fingerprint(), a, "the relay keeps serving A");

    // NGO announces B on a re-issued card.
    vigil_ok(&[
        "--home",
        ngos,
        "ngo",
        "set-relay",
        "--next-fingerprint",
        &b.to_string(),
        "--card-out",
        card_str,
    ])
    .await;
    let overlap_card = read_card(&card_path);
    assert_eq!(overlap_card.accepted_fingerprints(), vec![a, b]);
    assert!(overlap_card.created > first_card.created);
    assert_eq!(overlap_card.identity_key, first_card.identity_key);
    assert_eq!(overlap_card.mailbox, first_card.mailbox);
    assert_ne!(overlap_card.safety_number(), first_card.safety_number());
    let changes = describe_changes(&first_card, &overlap_card);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(
        changes[0].contains("relay certificate rotation announced"),
        "{changes:?}"
    );
    let ngo_home = common::bins::home(&ngo).expect("home");
    assert_eq!(
        Ngo::load(&ngo_home).expect("ngo").config.pinned(),
        vec![a, b]
    );

    // The fresh reporter re-imports the card (an update, same NGO key) and sends: A answers.
    vigil_ok(&["--home", fresh_s, "contact", "add", card_str]).await;
    let fresh_home = common::bins::home(&fresh).expect("home");
    assert_eq!(
        contact_by_name(&fresh_home, NGO)
            .expect("contact")
            .card
            .relay_fingerprint_next,
        Some(b)
    );
    send(fresh_s, &report(root, 1)).await.expect("send via A");
    assert!(outbox(&fresh_home).expect("outbox").is_empty());

    // Operator: stop, promote B, restart on the same data and port.
    relay.shutdown().await.expect("shutdown");
    let promotion = vigil_relay::cert::promote(&relay_dir).expect("promote");
    assert_eq!(promotion.old, Some(a));
    assert_eq!(promotion.current, b);
    let relay = start_relay_at(&relay_dir, &addr).await;
    assert_eq!(relay.fingerprint(), b);

    // The fresh reporter's card accepts B as the announced next certificate.
    send(fresh_s, &report(root, 2)).await.expect("send via B");
    assert!(outbox(&fresh_home).expect("outbox").is_empty());

    // The stale reporter pins only A: refused as a possible interception, report kept.
    let err = send(stale_s, &report(root, 3))
        .await
        .expect_err("old card must not accept B");
    match err.downcast_ref::<RelayError>() {
        Some(RelayError::FingerprintMismatch { expected, got }) => {
            assert_eq!(*expected, a);
            // The relay shows its certificate only to a client that knocks with it: a card
            // pinning another one learns nothing about it.
            assert_eq!(*got, None);
        }
        _ => panic!("expected FingerprintMismatch, got {err:#}"),
    }
    assert_eq!(
        vigil_client::exit_code_for(&err),
        vigil_client::exit::RELAY_IDENTITY_MISMATCH
    );
    let stale_home = common::bins::home(&stale).expect("home");
    assert_eq!(outbox(&stale_home).expect("outbox").len(), 1);
    // Retrying does not change that.
    vigil(&["--home", stale_s, "outbox", "flush", "--no-retry"])
        .await
        .expect_err("still refused");
    assert_eq!(outbox(&stale_home).expect("outbox").len(), 1);

    // The NGO's own client pins both during the overlap, so it already reaches B.
    vigil_ok(&["--home", ngos, "inbox", "fetch"]).await;
    // A fresh look at the home: another command wrote to it since `ngo_home` was opened.
    let ngo_home = common::bins::home(ngos).expect("home");
    assert_eq!(inbox_entries(&ngo_home).expect("entries").len(), 2);

    // NGO ends the overlap: a card pinning only B.
    vigil_ok(&[
        "--home",
        ngos,
        "ngo",
        "set-relay",
        "--relay-fingerprint",
        &b.to_string(),
        "--clear-next",
        "--card-out",
        card_str,
    ])
    .await;
    let final_card = read_card(&card_path);
    assert_eq!(final_card.accepted_fingerprints(), vec![b]);
    assert!(final_card.created > overlap_card.created);
    let changes = describe_changes(&overlap_card, &final_card);
    assert_eq!(
        changes,
        vec![format!("relay certificate rotation completed (now {b})")]
    );
    let ngo_home = common::bins::home(ngos).expect("home");
    assert_eq!(Ngo::load(&ngo_home).expect("ngo").config.pinned(), vec![b]);

    // An older card cannot replace the newer one at a reporter.
    vigil_ok(&["--home", fresh_s, "contact", "add", card_str]).await;
    let err = vigil(&[
        "--home",
        fresh_s,
        "contact",
        "add",
        old_card.to_str().expect("utf8"),
    ])
    .await
    .expect_err("downgrade refused");
    assert!(format!("{err:#}").contains("newer card"), "{err:#}");
    send(fresh_s, &report(root, 4)).await.expect("send via B");

    // The stale reporter finally gets the new card: the queued report follows it to B.
    vigil_ok(&["--home", stale_s, "contact", "add", card_str]).await;
    vigil_ok(&["--home", stale_s, "outbox", "flush", "--no-retry"]).await;
    assert!(outbox(&stale_home).expect("outbox").is_empty());

    // The NGO fetches everything: nothing was lost across the rotation.
    vigil_ok(&["--home", ngos, "inbox", "fetch"]).await;
    let ngo_home = common::bins::home(ngos).expect("home");
    assert_eq!(inbox_entries(&ngo_home).expect("entries").len(), 4);
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_relay_refuses_nonsense() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let relay = start_relay(&root.join("relay")).await;
    let (ngo, _) = make_ngo(root, "ngo", NGO, &relay).await;
    let ngos = ngo.to_str().expect("utf8");
    let a = relay.fingerprint().to_string();
    let err = vigil(&["--home", ngos, "ngo", "set-relay"])
        .await
        .expect_err("nothing to change");
    assert!(format!("{err:#}").contains("nothing to change"), "{err:#}");
    let err = vigil(&["--home", ngos, "ngo", "set-relay", "--next-fingerprint", &a])
        .await
        .expect_err("next equals current");
    assert!(
        format!("{err:#}").contains("current certificate"),
        "{err:#}"
    );
    let err = vigil(&[
        "--home",
        ngos,
        "ngo",
        "set-relay",
        "--next-fingerprint",
        "zz",
    ])
    .await
    .expect_err("not a fingerprint");
    assert!(format!("{err:#}").contains("--next-fingerprint"), "{err:#}");
    assert!(vigil(&[
        "--home",
        ngos,
        "ngo",
        "set-relay",
        "--next-fingerprint",
        &a,
        "--clear-next"
    ])
    .await
    .is_err());
    // Nothing changed on disk.
    let home = common::bins::home(&ngo).expect("home");
    assert_eq!(
        Ngo::load(&home).expect("ngo").config.pinned(),
        vec![relay.fingerprint()]
    );
    relay.shutdown().await.expect("shutdown");
}

/// The operator's side seen from a client: after `cert promote` and a restart, the relay serves
/// the next certificate; a client pinning only the old one is refused, one pinning both gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promoted_certificate_is_served_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let config = vigil_relay::RelayConfig::new(&data, "127.0.0.1:0".parse().unwrap());
    let relay = vigil_relay::start(config.clone()).await.unwrap();
    let a = relay.fingerprint();
    let next = vigil_relay::cert::rotate(&data, false).unwrap();
    assert!(next.created);
    // The running relay still serves only A.
    let addr = relay.local_addr().to_string();
    vigil_client::relay::RelayClient::connect(&addr, &a)
        .await
        .expect("current certificate still served")
        .close()
        .await;
    relay.shutdown().await.unwrap();

    let p = vigil_relay::cert::promote(&data).unwrap();
    assert_eq!(p.old, Some(a));
    assert_eq!(p.current, next.next);
    let config = vigil_relay::RelayConfig::new(&data, addr.parse().unwrap());
    let relay = vigil_relay::start(config).await.unwrap();
    assert_eq!(relay.fingerprint(), next.next);
    match vigil_client::relay::RelayClient::connect(&addr, &a).await {
        Err(vigil_client::relay::RelayError::FingerprintMismatch { got, .. }) => {
            assert_eq!(got, None, "B is not shown to a client knocking with A")
        }
        Err(e) => panic!("expected a mismatch, got {e}"),
        Ok(_) => panic!("old pin accepted after promote"),
    }
    vigil_client::relay::RelayClient::connect_pinned(&addr, &[a, next.next])
        .await
        .expect("a card pinning both is accepted")
        .close()
        .await;
    relay.shutdown().await.unwrap();
}
