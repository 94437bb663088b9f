//! Check-in alerts end to end: a real relay on 127.0.0.1 with a temporary data directory, the
//! client library's `arm`, `check_in`, `disarm` and `fetch_with_notes`, and envelopes sealed as
//! reports are, with a canary in the text that must never appear in the relay's files.
//!
//! Intervals are seconds (the protocol allows 1 s and up). Nothing here asserts how fast the
//! relay is: releases are waited for with a generous timeout, and only "never early" is checked
//! against the clock.

mod common;

use ed25519_dalek::SigningKey;
use rand::rngs::OsRng;
use std::path::Path;
use std::time::{Duration, Instant};
use vigil_client::relay::{NotedItem, RelayClient, RelayError};
use vigil_core::age::x25519;
use vigil_core::ids::{AlertId, MailboxId};
use vigil_core::keys::SigningSecret;
use vigil_core::wire::alert::CHECKIN_PURPOSE;
use vigil_core::wire::arm::AlertEnvelope;
use vigil_core::wire::checkin::CheckIn;
use vigil_core::wire::{auth, ErrorCode, ReleaseReason, Request};
use vigil_relay::{RelayConfig, RelayHandle};

/// Text that must never be stored by the relay in the clear.
const CANARY: &str = "CANARY-checkin-7f3a9c-the-safehouse-on-lenina-12";

/// How long a release may take to show before a test gives up (a generous bound, not a speed
/// claim).
const RELEASE_TIMEOUT: Duration = Duration::from_secs(30);

async fn start(dir: &Path) -> RelayHandle {
    vigil_relay::start(RelayConfig::new(dir, "127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap()
}

async fn connect(relay: &RelayHandle) -> RelayClient {
    RelayClient::connect(&relay.local_addr().to_string(), &relay.fingerprint())
        .await
        .unwrap()
}

/// An NGO: its mailbox key, its staff decryption key and its identity key.
struct Ngo {
    mailbox_key: SigningKey,
    staff: x25519::Identity,
    identity: SigningSecret,
}

impl Ngo {
    async fn register(relay: &RelayHandle) -> (Ngo, MailboxId) {
        let ngo = Ngo {
            mailbox_key: SigningKey::generate(&mut OsRng),
            staff: x25519::Identity::generate(&mut OsRng),
            identity: SigningSecret::generate(&mut OsRng),
        };
        let c = connect(relay).await;
        let m = c.register(&ngo.mailbox_key).await.unwrap();
        c.close().await;
        (ngo, m)
    }

    /// An alert envelope for this NGO's mailbox, sealed as any report is, with the canary.
    fn seal(&self, mailbox: MailboxId) -> AlertEnvelope {
        let report = format!(
            r#"{{"kind":"disappearance","urgency":"urgent","title":"no check-in","occurred_at":"2024-03-01","narrative":"{CANARY}"}}"#
        );
        let reporter = SigningSecret::generate(&mut OsRng);
        let envelope = vigil_core::envelope::seal(
            report.as_bytes(),
            &reporter,
            &[self.identity.public()],
            &[self.staff.to_public()],
            1,
            &mut OsRng,
        )
        .unwrap();
        AlertEnvelope { mailbox, envelope }
    }

    async fn fetch(&self, relay: &RelayHandle) -> Vec<NotedItem> {
        let c = connect(relay).await;
        let items = c.fetch_with_notes(&self.mailbox_key, 64).await.unwrap();
        c.close().await;
        items
    }

    /// Fetch until something is there (or panic after [`RELEASE_TIMEOUT`]).
    async fn wait_for_release(&self, relay: &RelayHandle) -> Vec<NotedItem> {
        let start = Instant::now();
        loop {
            let items = self.fetch(relay).await;
            if !items.is_empty() {
                return items;
            }
            assert!(
                start.elapsed() < RELEASE_TIMEOUT,
                "the alert was never released"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The released item opens as the sealed report, canary and all.
    fn opens(&self, item: &NotedItem) {
        let staff = [x25519::Identity::from_bytes(*self.staff.to_bytes())];
        let opened =
            vigil_core::envelope::open(&item.envelope, &staff, &self.identity.public()).unwrap();
        let text = String::from_utf8(opened.report_json.to_vec()).unwrap();
        assert!(text.contains(CANARY));
    }
}

/// An alert's id and its two keys.
struct Alert {
    id: AlertId,
    checkin: SigningKey,
    duress: SigningKey,
}

impl Alert {
    fn new() -> Self {
        Alert {
            id: AlertId(rand::random()),
            checkin: SigningKey::generate(&mut OsRng),
            duress: SigningKey::generate(&mut OsRng),
        }
    }

    async fn arm(&self, relay: &RelayHandle, every: u32, grace: u32, env: Vec<AlertEnvelope>) {
        let c = connect(relay).await;
        let left = c
            .arm(
                self.id,
                every,
                grace,
                &self.checkin.verifying_key(),
                &self.duress.verifying_key(),
                env,
            )
            .await
            .unwrap();
        assert_eq!(left, u64::from(every + grace));
        c.close().await;
    }

    async fn check_in(&self, relay: &RelayHandle, key: &SigningKey) -> Result<(), RelayError> {
        let c = connect(relay).await;
        let r = c.check_in(&self.id, key).await;
        c.close().await;
        r
    }

    /// The raw answer frame to a check-in signed by `key`.
    async fn check_in_raw(&self, relay: &RelayHandle, key: &SigningKey) -> Vec<u8> {
        let c = connect(relay).await;
        let nonce = c.challenge().await.unwrap();
        let proof = auth::sign_alert(key, CHECKIN_PURPOSE, &c.exporter(), &nonce, &self.id);
        let req = Request::CheckIn(CheckIn {
            alert: self.id,
            proof,
        });
        let frame = c.request(&req, &[]).await.unwrap();
        c.close().await;
        frame
    }
}

/// No file under the relay's data directory holds the canary.
fn assert_no_canary(dir: &Path) {
    for f in common::all_files(dir) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !common::contains(&bytes, CANARY.as_bytes()),
            "{} holds the alert's plaintext",
            f.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_ins_past_several_deadlines_keep_the_alert_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path()).await;
    let (ngo, m) = Ngo::register(&relay).await;
    let alert = Alert::new();
    alert.arm(&relay, 2, 1, vec![ngo.seal(m)]).await;
    // Check in every second for about three deadlines' worth of time.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(9) {
        alert.check_in(&relay, &alert.checkin).await.unwrap();
        assert!(
            ngo.fetch(&relay).await.is_empty(),
            "released despite check-ins"
        );
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    assert!(ngo.fetch(&relay).await.is_empty());
    relay.shutdown().await.unwrap();
    assert_no_canary(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_check_in_releases_the_alert_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path()).await;
    let (ngo, m) = Ngo::register(&relay).await;
    let (ngo2, m2) = Ngo::register(&relay).await;
    let alert = Alert::new();
    let armed_at = Instant::now();
    alert
        .arm(&relay, 1, 1, vec![ngo.seal(m), ngo2.seal(m2)])
        .await;
    assert_no_canary(dir.path());
    let items = ngo.wait_for_release(&relay).await;
    assert!(
        armed_at.elapsed() >= Duration::from_secs(2),
        "released before every + grace"
    );
    assert_eq!(items.len(), 1);
    let note = items[0].note.expect("a release note");
    assert_eq!(note.reason, ReleaseReason::Missed);
    assert_eq!(note.last_checkin_at, 0, "no check-in came");
    assert!(note.armed_at <= note.released_at);
    assert_eq!(note.armed_at % 60, 0, "to the minute");
    ngo.opens(&items[0]);
    // Both mailboxes got theirs; a plain fetch sees the envelope alone.
    let c = connect(&relay).await;
    let plain = c.fetch(&ngo2.mailbox_key, 64).await.unwrap();
    assert_eq!(plain.len(), 1);
    ngo2.opens(&NotedItem {
        id: plain[0].id,
        envelope: plain[0].envelope.clone(),
        note: None,
    });
    // Released once: check-ins now fail, and an ack removes it like any item.
    let late = alert.check_in(&relay, &alert.checkin).await;
    assert!(
        matches!(
            late,
            Err(RelayError::Refused {
                code: ErrorCode::BadProof,
                ..
            })
        ),
        "{late:?}"
    );
    assert_eq!(c.ack(&ngo.mailbox_key, &[items[0].id]).await.unwrap(), 1);
    c.close().await;
    assert!(ngo.fetch(&relay).await.is_empty());
    relay.shutdown().await.unwrap();
    assert_no_canary(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duress_check_in_looks_normal_and_releases_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path()).await;
    let (ngo, m) = Ngo::register(&relay).await;
    let alert = Alert::new();
    alert.arm(&relay, 600, 600, vec![ngo.seal(m)]).await;
    let normal = alert.check_in_raw(&relay, &alert.checkin).await;
    assert!(ngo.fetch(&relay).await.is_empty());
    let forced = alert.check_in_raw(&relay, &alert.duress).await;
    assert_eq!(forced, normal, "identical answers whichever key signed");
    assert_eq!(normal, [1, 0x88, 0, 0, 0, 0]);
    // Answered only once the release was durable: it is there now, not in ten minutes.
    let items = ngo.fetch(&relay).await;
    assert_eq!(items.len(), 1);
    let note = items[0].note.expect("a release note");
    assert_eq!(note.reason, ReleaseReason::Duress);
    assert_ne!(note.last_checkin_at, 0, "the normal check-in is recorded");
    ngo.opens(&items[0]);
    relay.shutdown().await.unwrap();
    assert_no_canary(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disarmed_alert_is_never_released() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path()).await;
    let (ngo, m) = Ngo::register(&relay).await;
    let alert = Alert::new();
    alert.arm(&relay, 1, 1, vec![ngo.seal(m)]).await;
    let c = connect(&relay).await;
    c.disarm(&alert.id, &alert.checkin).await.unwrap();
    c.close().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        ngo.fetch(&relay).await.is_empty(),
        "released after a disarm"
    );
    let late = alert.check_in(&relay, &alert.checkin).await;
    assert!(
        matches!(
            late,
            Err(RelayError::Refused {
                code: ErrorCode::BadProof,
                ..
            })
        ),
        "{late:?}"
    );
    // Disarming under duress answers the same and releases.
    let other = Alert::new();
    other.arm(&relay, 600, 600, vec![ngo.seal(m)]).await;
    let c = connect(&relay).await;
    c.disarm(&other.id, &other.duress).await.unwrap();
    c.close().await;
    let items = ngo.fetch(&relay).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].note.unwrap().reason, ReleaseReason::Duress);
    relay.shutdown().await.unwrap();
    assert_no_canary(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_before_the_deadline_neither_releases_early_nor_forgets() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path()).await;
    let (ngo, m) = Ngo::register(&relay).await;
    let alert = Alert::new();
    let armed_at = Instant::now();
    alert.arm(&relay, 3, 2, vec![ngo.seal(m)]).await;
    relay.shutdown().await.unwrap();
    assert_no_canary(dir.path());
    let relay = start(dir.path()).await;
    let restarted = Instant::now();
    let first = ngo.fetch(&relay).await;
    // Whatever the restart cost, the relay owes the reporter `grace` (2 s) after it: a fetch
    // answered within that finds nothing. (On a loaded machine the fetch itself may take longer;
    // then this check says nothing, and the one below still holds.)
    if restarted.elapsed() < Duration::from_secs(2) {
        assert!(first.is_empty(), "released early");
    }
    let items = if first.is_empty() {
        ngo.wait_for_release(&relay).await
    } else {
        first
    };
    assert!(
        armed_at.elapsed() >= Duration::from_secs(5),
        "released before its deadline"
    );
    assert_eq!(items[0].note.unwrap().reason, ReleaseReason::Missed);
    ngo.opens(&items[0]);
    relay.shutdown().await.unwrap();
    assert_no_canary(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_due_while_the_relay_was_down_gets_its_grace_then_is_released() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path()).await;
    let (ngo, m) = Ngo::register(&relay).await;
    let alert = Alert::new();
    alert.arm(&relay, 1, 2, vec![ngo.seal(m)]).await;
    relay.shutdown().await.unwrap();
    // The deadline (3 s) passes while the relay is down.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let restarted = Instant::now();
    let relay = start(dir.path()).await;
    let first = ngo.fetch(&relay).await;
    // Checked only while the grace since the restart has not run out (a loaded machine may
    // take that long to start and answer).
    if restarted.elapsed() < Duration::from_secs(2) {
        assert!(first.is_empty(), "released at once");
    }
    let items = if first.is_empty() {
        ngo.wait_for_release(&relay).await
    } else {
        first
    };
    assert!(
        restarted.elapsed() >= Duration::from_secs(2),
        "released before grace had passed since the restart"
    );
    assert_eq!(items[0].note.unwrap().reason, ReleaseReason::Missed);
    relay.shutdown().await.unwrap();

    // The same, but the reporter checks in during the grace after the restart: kept sealed.
    let alert = Alert::new();
    let relay = start(dir.path()).await;
    let c = connect(&relay).await;
    c.ack(&ngo.mailbox_key, &[items[0].id]).await.unwrap();
    c.close().await;
    alert.arm(&relay, 1, 2, vec![ngo.seal(m)]).await;
    relay.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let relay = start(dir.path()).await;
    alert.check_in(&relay, &alert.checkin).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        ngo.fetch(&relay).await.is_empty(),
        "a check-in after the restart counts"
    );
    let c = connect(&relay).await;
    c.disarm(&alert.id, &alert.checkin).await.unwrap();
    c.close().await;
    relay.shutdown().await.unwrap();
    assert_no_canary(dir.path());
}
