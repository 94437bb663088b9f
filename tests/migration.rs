//! Connection migration: a phone moves from Wi-Fi to mobile data, or a carrier NAT gives it a new
//! port, in the middle of a session. QUIC identifies the connection by its connection ids, not
//! by the address; the relay (quinn's `migration(true)`, the default) validates the new path and
//! carries on. The same connection (same TLS session: same exporter, so proofs of mailbox
//! ownership still verify) keeps depositing and fetching.

mod common;

use common::*;
use ed25519_dalek::SigningKey;
use std::time::Duration;
use vigil_client::relay::RelayClient;
use vigil_core::ids::{DepositId, MailboxId};

fn mailbox_key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

/// Bytes that name themselves, large enough to need many datagrams (and so more than the relay
/// may send to an unvalidated new path).
fn envelope(tag: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| tag ^ (i as u8).wrapping_mul(31)).collect()
}

fn local_socket() -> std::net::UdpSocket {
    std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a new local socket")
}

async fn fetch_all(c: &RelayClient, key: &SigningKey) -> Vec<Vec<u8>> {
    let mut got: Vec<Vec<u8>> = c
        .fetch(key, 64)
        .await
        .expect("fetch")
        .into_iter()
        .map(|i| i.envelope)
        .collect();
    got.sort();
    got
}

/// The client's own socket changes (`Endpoint::rebind`): deposits before and after go over one
/// connection, and the NGO, itself moved to a new socket, fetches both with proofs bound to its
/// unchanged TLS session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_changes_its_local_address_keeps_its_connection() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let relay = start_relay(tmp.path()).await;
    let addr = relay.local_addr().to_string();
    let key = mailbox_key();
    let ngo = RelayClient::connect(&addr, &relay.fingerprint())
        .await
        .expect("connect");
    let mailbox: MailboxId = ngo.register(&key).await.expect("register");

    let reporter = RelayClient::connect(&addr, &relay.fingerprint())
        .await
        .expect("connect");
    let exporter = reporter.exporter();
    let before = envelope(1, 3000);
    reporter
        .deposit(&mailbox, &DepositId([1; 16]), &before)
        .await
        .expect("deposit before the move");

    let old_addr = reporter.local_addr().expect("addr");
    reporter.rebind(local_socket()).expect("rebind");
    let new_addr = reporter.local_addr().expect("addr");
    assert_ne!(old_addr.port(), new_addr.port(), "the client moved");

    let after = envelope(2, 200 * 1024);
    tokio::time::timeout(
        Duration::from_secs(30),
        reporter.deposit(&mailbox, &DepositId([2; 16]), &after),
    )
    .await
    .expect("safety net")
    .expect("deposit after the move, on the same connection");
    assert_eq!(reporter.exporter(), exporter, "same TLS session");
    reporter.close().await;

    ngo.rebind(local_socket()).expect("rebind the NGO too");
    let got = fetch_all(&ngo, &key).await;
    let mut want = vec![before, after];
    want.sort();
    assert_eq!(got, want, "both deposits, byte for byte");
    ngo.close().await;
    relay.shutdown().await.expect("shutdown");
}

/// NAT rebinding: the client does nothing, but a NAT in the path (the proxy) starts sending its
/// traffic from a new source port. The relay follows the client to the new address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_behind_a_nat_that_rebinds_keeps_its_connection() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let relay = start_relay(tmp.path()).await;
    let proxy = LossyProxy::start(relay.local_addr(), LinkConditions::clean(), 7).await;
    let key = mailbox_key();
    let via_nat = proxy.addr().to_string();
    let ngo = RelayClient::connect(&via_nat, &relay.fingerprint())
        .await
        .expect("connect");
    let mailbox = ngo.register(&key).await.expect("register");
    let reporter = RelayClient::connect(&via_nat, &relay.fingerprint())
        .await
        .expect("connect");
    let exporter = reporter.exporter();
    let before = envelope(3, 3000);
    reporter
        .deposit(&mailbox, &DepositId([3; 16]), &before)
        .await
        .expect("deposit before the rebinding");

    let changes = proxy.rebind_upstream().await;
    assert_eq!(changes.len(), 2, "both clients' mappings changed");
    assert!(changes.iter().all(|(old, new)| old.port() != new.port()));

    let after = envelope(4, 200 * 1024);
    tokio::time::timeout(
        Duration::from_secs(30),
        reporter.deposit(&mailbox, &DepositId([4; 16]), &after),
    )
    .await
    .expect("safety net")
    .expect("deposit after the rebinding, on the same connection");
    assert_eq!(reporter.exporter(), exporter, "same TLS session");
    assert_eq!(proxy.clients_seen(), 2, "no new connection was opened");

    let got = tokio::time::timeout(Duration::from_secs(30), fetch_all(&ngo, &key))
        .await
        .expect("safety net");
    let mut want = vec![before, after];
    want.sort();
    assert_eq!(got, want, "both deposits, byte for byte");
    reporter.close().await;
    ngo.close().await;
    relay.shutdown().await.expect("shutdown");
}
