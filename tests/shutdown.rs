//! Graceful shutdown with a deposit in flight: the relay finishes it (answers "stored" and the
//! report is there, byte for byte, after a restart), and a deposit that never completes is
//! dropped whole, never half stored.

use ed25519_dalek::SigningKey;
use std::time::Duration;
use vigil_client::relay::RelayClient;
use vigil_core::ids::{DepositId, MailboxId};
use vigil_core::wire::deposit::{Deposit, Stored};
use vigil_core::wire::{decode_response_frame, Response};
use vigil_relay::RelayConfig;

mod common;

fn envelope() -> Vec<u8> {
    (0..2 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect()
}

async fn registered(relay: &vigil_relay::RelayHandle) -> (SigningKey, MailboxId) {
    let c = RelayClient::connect(&relay.local_addr().to_string(), &relay.fingerprint())
        .await
        .unwrap();
    let k = SigningKey::from_bytes(&[7; 32]);
    let m = c.register(&k).await.unwrap();
    c.close().await;
    (k, m)
}

fn deposit_frame(m: MailboxId, id: u8, envelope: &[u8]) -> Vec<u8> {
    Deposit {
        mailbox: m,
        deposit_id: DepositId([id; 16]),
        envelope_len: envelope.len(),
    }
    .frame_with(envelope)
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_an_in_flight_deposit_and_drops_an_abandoned_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = RelayConfig::new(dir.path(), "127.0.0.1:0".parse().unwrap());
    config.limits.shutdown_grace_secs = 3;
    let relay = vigil_relay::start(config.clone()).await.unwrap();
    let addr = relay.local_addr();
    let (k, m) = registered(&relay).await;
    let env = envelope();

    let ep = common::raw::raw_endpoint("127.0.0.1", relay.fingerprint());
    let conn = common::raw::connect(&ep, addr).await.unwrap();
    // Deposit 1: half the frame now, the rest after shutdown has begun.
    let frame = deposit_frame(m, 1, &env);
    let (mut send1, mut recv1) = conn.open_bi().await.unwrap();
    let half = frame.len() / 2;
    send1.write_all(&frame[..half]).await.unwrap();
    // Deposit 2: half the frame, and never the rest.
    let frame2 = deposit_frame(m, 2, &env);
    let (mut send2, _recv2) = conn.open_bi().await.unwrap();
    send2.write_all(&frame2[..half]).await.unwrap();
    // Let the relay read both headers.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let shutdown = tokio::spawn(relay.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    send1.write_all(&frame[half..]).await.unwrap();
    send1.finish().unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(20), recv1.read_to_end(1024))
        .await
        .expect("answer before the grace period ended")
        .unwrap();
    assert_eq!(
        decode_response_frame(&resp).unwrap(),
        Response::Stored(Stored { duplicate: false }),
        "the in-flight deposit was finished"
    );
    tokio::time::timeout(Duration::from_secs(30), shutdown)
        .await
        .expect("shutdown ends after the grace period")
        .unwrap()
        .unwrap();
    let s = vigil_relay::stats::read(dir.path()).unwrap();
    assert!(s.stopped);
    assert_eq!(s.deposits_stored, 1);
    drop(conn);

    // Restart on the same data: exactly the finished report, byte for byte.
    let relay = vigil_relay::start(config).await.unwrap();
    let c = RelayClient::connect(&relay.local_addr().to_string(), &relay.fingerprint())
        .await
        .unwrap();
    let items = c.fetch(&k, 10).await.unwrap();
    assert_eq!(items.len(), 1, "the abandoned deposit left nothing behind");
    assert_eq!(items[0].envelope, env);
    c.close().await;
    relay.shutdown().await.unwrap();
}
