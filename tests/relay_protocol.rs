//! End to end over real loopback QUIC: the relay library on 127.0.0.1:0 with a temporary data
//! directory, driven by the real client library.

use ed25519_dalek::SigningKey;
use vigil_client::relay::{RelayClient, RelayError};
use vigil_core::ids::{CertFingerprint, DepositId, ItemId, MailboxId};
use vigil_core::wire::ack::{self, Ack};
use vigil_core::wire::auth;
use vigil_core::wire::deposit::{self, Deposit};
use vigil_core::wire::fetch::{self, Fetch};
use vigil_core::wire::limits::MAX_ENVELOPE_LEN;
use vigil_core::wire::{decode_response_frame, ErrorCode, Request, RequestType, Response};
use vigil_relay::{RelayConfig, RelayHandle};

async fn start(dir: &std::path::Path) -> RelayHandle {
    vigil_relay::start(RelayConfig::new(dir, "127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap()
}

async fn connect(relay: &RelayHandle) -> RelayClient {
    RelayClient::connect(&relay.local_addr().to_string(), &relay.fingerprint())
        .await
        .unwrap()
}

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn mailbox_of(k: &SigningKey) -> MailboxId {
    MailboxId::for_key(&k.verifying_key().to_bytes())
}

fn refused_code(r: Result<impl std::fmt::Debug, RelayError>) -> ErrorCode {
    match r {
        Err(RelayError::Refused { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn error_code(frame: &[u8]) -> ErrorCode {
    match decode_response_frame(frame).unwrap() {
        Response::Error(r) => r.code,
        other => panic!("expected an Error response, got {other:?}"),
    }
}

#[tokio::test]
async fn register_deposit_fetch_ack_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path()).await;
    let ngo = connect(&relay).await;
    let k = key(1);
    let mailbox = ngo.register(&k).await.unwrap();
    assert_eq!(mailbox, mailbox_of(&k));
    assert_eq!(
        ngo.register(&k).await.unwrap(),
        mailbox,
        "registering again is harmless"
    );

    let reporter = connect(&relay).await;
    reporter
        .deposit(&mailbox, &DepositId([1; 16]), b"first envelope")
        .await
        .unwrap();
    reporter
        .deposit(&mailbox, &DepositId([2; 16]), b"second envelope")
        .await
        .unwrap();
    reporter.close().await;

    let items = ngo.fetch(&k, 10).await.unwrap();
    let mut got: Vec<&[u8]> = items.iter().map(|i| i.envelope.as_slice()).collect();
    got.sort();
    assert_eq!(got, vec![&b"first envelope"[..], &b"second envelope"[..]]);
    assert_eq!(
        ngo.fetch(&k, 1).await.unwrap().len(),
        1,
        "max items respected"
    );

    let ids: Vec<ItemId> = items.iter().map(|i| i.id).collect();
    assert_eq!(ngo.ack(&k, &ids).await.unwrap(), 2);
    assert_eq!(ngo.ack(&k, &ids).await.unwrap(), 0, "already deleted");
    assert!(ngo.fetch(&k, 10).await.unwrap().is_empty());
    ngo.close().await;
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn large_envelope_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path()).await;
    let c = connect(&relay).await;
    let k = key(1);
    let mailbox = c.register(&k).await.unwrap();
    let big: Vec<u8> = (0..MAX_ENVELOPE_LEN).map(|i| (i % 251) as u8).collect();
    c.deposit(&mailbox, &DepositId([1; 16]), &big)
        .await
        .unwrap();
    // The relay keeps it in a file of its own, outside sled.
    let files = || {
        std::fs::read_dir(dir.path().join("store").join("envelopes"))
            .unwrap()
            .count()
    };
    assert_eq!(files(), 1);
    // A retry of a stored large deposit is answered before its body is sent again.
    let before = c.sent_bytes();
    let again = c
        .deposit_status(&mailbox, &DepositId([1; 16]), &big)
        .await
        .unwrap();
    assert_eq!(again, vigil_client::relay::Deposited::Duplicate);
    let resent = c.sent_bytes() - before;
    assert!(
        resent < 4 << 20,
        "the repeat sent {resent} bytes of a {MAX_ENVELOPE_LEN}-byte envelope"
    );
    let items = c.fetch(&k, 10).await.unwrap();
    assert_eq!(items.len(), 1);
    assert!(items[0].envelope == big);
    assert_eq!(c.ack(&k, &[items[0].id]).await.unwrap(), 1);
    assert_eq!(files(), 0, "the ack removed the file");
    let too_big = vec![0u8; MAX_ENVELOPE_LEN + 1];
    assert!(matches!(
        c.deposit(&mailbox, &DepositId([2; 16]), &too_big).await,
        Err(RelayError::TooLarge { .. })
    ));
    c.close().await;
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn deposit_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path()).await;
    let c = connect(&relay).await;
    let k = key(1);
    let mailbox = c.register(&k).await.unwrap();
    for _ in 0..3 {
        c.deposit(&mailbox, &DepositId([7; 16]), b"same report")
            .await
            .unwrap();
    }
    // A retry on a fresh connection, as after a lost "stored" answer.
    let c2 = connect(&relay).await;
    c2.deposit(&mailbox, &DepositId([7; 16]), b"same report")
        .await
        .unwrap();
    assert_eq!(c.fetch(&k, 10).await.unwrap().len(), 1);
    c.close().await;
    c2.close().await;
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn deposit_to_unregistered_mailbox_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path()).await;
    let c = connect(&relay).await;
    let r = c
        .deposit(&mailbox_of(&key(9)), &DepositId([1; 16]), b"x")
        .await;
    assert_eq!(refused_code(r), ErrorCode::UnknownMailbox);
    c.close().await;
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn wrong_key_cannot_fetch_or_ack() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path()).await;
    let c = connect(&relay).await;
    let owner = key(1);
    let mailbox = c.register(&owner).await.unwrap();
    c.deposit(&mailbox, &DepositId([1; 16]), b"secret")
        .await
        .unwrap();
    let id = c.fetch(&owner, 10).await.unwrap()[0].id;

    // An attacker signs with their own key but names the victim's mailbox.
    let attacker = key(2);
    let proof = c
        .proof(&attacker, fetch::PURPOSE, &mailbox, &Fetch::digest(10))
        .await
        .unwrap();
    let frame = c
        .request(
            &Request::Fetch(Fetch {
                mailbox,
                max_items: 10,
                proof,
            }),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(error_code(&frame), ErrorCode::BadProof);
    let proof = c
        .proof(&attacker, ack::PURPOSE, &mailbox, &Ack::digest(&[id]))
        .await
        .unwrap();
    let frame = c
        .request(
            &Request::Ack(Ack {
                mailbox,
                ids: vec![id],
                proof,
            }),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(error_code(&frame), ErrorCode::BadProof);
    // The attacker's own (unregistered) mailbox is unknown.
    assert_eq!(
        refused_code(c.fetch(&attacker, 10).await),
        ErrorCode::UnknownMailbox
    );
    // Nothing was deleted.
    assert_eq!(c.fetch(&owner, 10).await.unwrap().len(), 1);
    c.close().await;
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn replayed_proof_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path()).await;
    let a = connect(&relay).await;
    let k = key(1);
    let mailbox = a.register(&k).await.unwrap();
    a.deposit(&mailbox, &DepositId([1; 16]), b"report")
        .await
        .unwrap();

    let proof = a
        .proof(&k, fetch::PURPOSE, &mailbox, &Fetch::digest(5))
        .await
        .unwrap();
    let req = Request::Fetch(Fetch {
        mailbox,
        max_items: 5,
        proof,
    });
    let first = a.request(&req, &[]).await.unwrap();
    assert!(
        matches!(decode_response_frame(&first).unwrap(), Response::Items(ref i) if i.items.len() == 1)
    );
    // Same proof again on the same connection: the nonce is spent.
    assert_eq!(
        error_code(&a.request(&req, &[]).await.unwrap()),
        ErrorCode::BadProof
    );

    // Captured proof replayed on another connection, even with a nonce that connection issued:
    // the TLS exporter differs.
    let b = connect(&relay).await;
    assert_ne!(a.exporter(), b.exporter());
    assert_eq!(
        error_code(&b.request(&req, &[]).await.unwrap()),
        ErrorCode::BadProof
    );
    let nonce_b = b.challenge().await.unwrap();
    let signed_for_a = auth::sign(
        &k,
        fetch::PURPOSE,
        &a.exporter(),
        &nonce_b,
        &mailbox,
        &Fetch::digest(5),
    );
    let moved = Request::Fetch(Fetch {
        mailbox,
        max_items: 5,
        proof: signed_for_a,
    });
    assert_eq!(
        error_code(&b.request(&moved, &[]).await.unwrap()),
        ErrorCode::BadProof
    );
    // A proof for fetch cannot be used to ack.
    let proof = b
        .proof(&k, fetch::PURPOSE, &mailbox, &Fetch::digest(5))
        .await
        .unwrap();
    let ack = Request::Ack(Ack {
        mailbox,
        ids: vec![ItemId([0; 16])],
        proof,
    });
    assert_eq!(
        error_code(&b.request(&ack, &[]).await.unwrap()),
        ErrorCode::BadProof
    );
    a.close().await;
    b.close().await;
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn client_pinned_to_another_fingerprint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path()).await;
    let wrong = CertFingerprint([0x42; 32]);
    match RelayClient::connect(&relay.local_addr().to_string(), &wrong).await {
        Err(RelayError::FingerprintMismatch { expected, got }) => {
            assert_eq!(expected, wrong);
            // Not shown: the relay shows its certificate only to a client that knocks with it.
            assert_eq!(got, None);
        }
        Err(other) => panic!("expected FingerprintMismatch, got {other}"),
        Ok(_) => panic!("connected despite a wrong pin"),
    }
    let err = anyhow::Error::from(RelayError::FingerprintMismatch {
        expected: wrong,
        got: None,
    });
    assert!(err.to_string().contains("possible interception"), "{err}");
    // What it means for the user's data is the command's to say: a reporter's report stays in
    // the outbox.
    let shown =
        vigil_client::failure::Failure::from_error(&err, vigil_client::failure::Family::Reporter);
    assert!(
        shown.line().contains("stays in the outbox"),
        "{}",
        shown.line()
    );
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_frames_are_refused_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path()).await;
    let c = connect(&relay).await;
    let k = key(1);
    let mailbox = c.register(&k).await.unwrap();
    c.deposit(&mailbox, &DepositId([1; 16]), b"kept")
        .await
        .unwrap();

    // Truncated: the header announces more body than is sent before the stream ends.
    let good = Deposit {
        mailbox,
        deposit_id: DepositId([2; 16]),
        envelope_len: 10,
    }
    .frame_with(b"0123456789")
    .unwrap();
    assert_eq!(
        error_code(&c.raw_request(&good[..good.len() - 3]).await.unwrap()),
        ErrorCode::Malformed
    );
    assert_eq!(
        error_code(&c.raw_request(&good[..3]).await.unwrap()),
        ErrorCode::Malformed
    );
    // Trailing data after the announced body.
    let mut long = good.clone();
    long.push(0);
    assert_eq!(
        error_code(&c.raw_request(&long).await.unwrap()),
        ErrorCode::Malformed
    );
    // Oversized: refused from the header, without the relay reading (or us sending) the body.
    let mut huge = vec![1, RequestType::Deposit.byte()];
    huge.extend_from_slice(&((deposit::MAX_BODY_LEN + 1) as u32).to_be_bytes());
    huge.extend_from_slice(&[0; 1000]);
    assert_eq!(
        error_code(&c.raw_request(&huge).await.unwrap()),
        ErrorCode::TooLarge
    );
    // Unknown version and type; a response type sent as a request.
    assert_eq!(
        error_code(&c.raw_request(&[9, 1, 0, 0, 0, 0]).await.unwrap()),
        ErrorCode::UnsupportedVersion
    );
    assert_eq!(
        error_code(&c.raw_request(&[1, 0x42, 0, 0, 0, 0]).await.unwrap()),
        ErrorCode::UnknownRequest
    );
    assert_eq!(
        error_code(&c.raw_request(&[1, 0x83, 0, 0, 0, 1, 0]).await.unwrap()),
        ErrorCode::UnknownRequest
    );
    // Empty envelope.
    let mut empty = vec![1, RequestType::Deposit.byte(), 0, 0, 0, 48];
    empty.extend_from_slice(&[0; 48]);
    assert_eq!(
        error_code(&c.raw_request(&empty).await.unwrap()),
        ErrorCode::Malformed
    );

    // The same connection and the relay keep serving; the stored item is intact, the truncated
    // deposit was not stored.
    c.deposit(&mailbox, &DepositId([3; 16]), b"after")
        .await
        .unwrap();
    let items = c.fetch(&k, 10).await.unwrap();
    let mut got: Vec<&[u8]> = items.iter().map(|i| i.envelope.as_slice()).collect();
    got.sort();
    assert_eq!(got, vec![&b"after"[..], &b"kept"[..]]);
    c.close().await;
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn restart_keeps_items_and_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(1);
    let relay = start(dir.path()).await;
    let fp = relay.fingerprint();
    assert_eq!(
        vigil_relay::fingerprint_of_data_dir(dir.path()).unwrap(),
        fp
    );
    let c = connect(&relay).await;
    let mailbox = c.register(&k).await.unwrap();
    c.deposit(&mailbox, &DepositId([1; 16]), b"survives")
        .await
        .unwrap();
    c.close().await;
    relay.shutdown().await.unwrap();

    let relay = start(dir.path()).await;
    assert_eq!(relay.fingerprint(), fp);
    let c = RelayClient::connect(&relay.local_addr().to_string(), &fp)
        .await
        .unwrap();
    let items = c.fetch(&k, 10).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].envelope, b"survives");
    // The deposit id is remembered too.
    c.deposit(&mailbox, &DepositId([1; 16]), b"survives")
        .await
        .unwrap();
    assert_eq!(c.fetch(&k, 10).await.unwrap().len(), 1);
    c.close().await;
    relay.shutdown().await.unwrap();
}

#[cfg(unix)]
#[test]
fn key_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    vigil_relay::fingerprint_of_data_dir(dir.path()).unwrap();
    let mode = std::fs::metadata(dir.path().join(vigil_relay::cert::KEY_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deposits_from_many_connections_are_all_stored() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path()).await;
    let ngo = connect(&relay).await;
    let k = key(1);
    let mailbox = ngo.register(&k).await.unwrap();
    let addr = relay.local_addr().to_string();
    let fp = relay.fingerprint();
    let mut tasks = Vec::new();
    for c in 0..4u8 {
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            let client = std::sync::Arc::new(RelayClient::connect(&addr, &fp).await.unwrap());
            let mut inner = Vec::new();
            for i in 0..12u8 {
                let client = client.clone();
                inner.push(tokio::spawn(async move {
                    let id = DepositId([c * 16 + i; 16]);
                    client
                        .deposit(&mailbox, &id, &[c, i, 0, 1, 2, 3])
                        .await
                        .unwrap();
                }));
            }
            for t in inner {
                t.await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut total = 0;
    loop {
        let items = ngo.fetch(&k, 64).await.unwrap();
        if items.is_empty() {
            break;
        }
        total += items.len();
        let ids: Vec<ItemId> = items.iter().map(|i| i.id).collect();
        ngo.ack(&k, &ids).await.unwrap();
    }
    assert_eq!(total, 48);
    ngo.close().await;
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = RelayConfig::new(dir.path(), "127.0.0.1:0".parse().unwrap());
    config.limits.max_connections = 1;
    config.limits.max_connections_per_address = 1;
    let relay = vigil_relay::start(config).await.unwrap();
    let first = connect(&relay).await;
    let second = RelayClient::connect(&relay.local_addr().to_string(), &relay.fingerprint()).await;
    match second {
        Err(e @ RelayError::Unreachable { .. }) => {
            // Said as what it is, not as a network failure.
            assert!(e.to_string().contains("refusing new connections"), "{e}");
            assert!(e.is_retryable());
        }
        other => panic!("{:?}", other.err()),
    }
    first.challenge().await.unwrap();
    first.close().await;
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_refuses_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path()).await;
    let addr = relay.local_addr().to_string();
    let fp = relay.fingerprint();
    relay.shutdown().await.unwrap();
    let r = RelayClient::connect(&addr, &fp).await;
    assert!(matches!(r, Err(RelayError::Unreachable { .. })));
}

#[tokio::test]
async fn status_shows_usage_and_full_refusals_to_the_owner_only() {
    use vigil_core::wire::status::{self, Status};
    let dir = tempfile::tempdir().unwrap();
    let mut config = RelayConfig::new(dir.path(), "127.0.0.1:0".parse().unwrap());
    config.limits.mailbox_max_items = 2;
    let relay = vigil_relay::start(config).await.unwrap();
    let c = connect(&relay).await;
    let owner = key(1);
    let mailbox = c.register(&owner).await.unwrap();
    for d in 1..=2u8 {
        c.deposit(&mailbox, &DepositId([d; 16]), b"report")
            .await
            .unwrap();
    }
    for d in 3..=5u8 {
        assert_eq!(
            refused_code(c.deposit(&mailbox, &DepositId([d; 16]), b"report").await),
            ErrorCode::QuotaExceeded
        );
    }
    let st = c.status(&owner).await.unwrap();
    assert_eq!((st.items, st.bytes, st.max_items), (2, 12, 2));
    assert_eq!(st.refused_full, 3);
    assert_eq!(st.expiry_secs, 30 * 86_400);
    assert_eq!(
        c.status(&owner).await.unwrap().refused_full,
        0,
        "reported once"
    );

    // Someone else's key cannot ask about this mailbox.
    let attacker = key(2);
    let proof = c
        .proof(&attacker, status::PURPOSE, &mailbox, &Status::digest())
        .await
        .unwrap();
    let frame = c
        .request(&Request::Status(Status { mailbox, proof }), &[])
        .await
        .unwrap();
    assert_eq!(error_code(&frame), ErrorCode::BadProof);
    // A proof made for a fetch does not answer a status question.
    let proof = c
        .proof(&owner, fetch::PURPOSE, &mailbox, &Status::digest())
        .await
        .unwrap();
    let frame = c
        .request(&Request::Status(Status { mailbox, proof }), &[])
        .await
        .unwrap();
    assert_eq!(error_code(&frame), ErrorCode::BadProof);
    c.close().await;
    relay.shutdown().await.unwrap();
}

/// Issue 11, finding 4: new relay certificates carry an ordinary validity (about a year), so one
/// may expire while cards still pin it. The client pins the fingerprint and checks no dates: an
/// expired pinned certificate still connects.
#[tokio::test]
async fn an_expired_pinned_certificate_still_connects() {
    let dir = tempfile::tempdir().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["mail.example.org".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2001, 1, 1);
    params.not_after = rcgen::date_time_ymd(2002, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::create_dir_all(dir.path()).unwrap();
    std::fs::write(
        dir.path().join(vigil_relay::cert::KEY_FILE),
        key.serialize_der(),
    )
    .unwrap();
    std::fs::write(dir.path().join(vigil_relay::cert::CERT_FILE), cert.der()).unwrap();
    let relay = start(dir.path()).await;
    assert_eq!(relay.fingerprint(), CertFingerprint::of_der(cert.der()));
    let c = connect(&relay).await;
    c.challenge().await.unwrap();
    c.close().await;
    relay.shutdown().await.unwrap();
}

/// The operator's `cert_name` names a new certificate; a client connects to it as to any.
#[tokio::test]
async fn a_new_certificate_carries_the_operators_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = RelayConfig::new(dir.path(), "127.0.0.1:0".parse().unwrap());
    config.cert_name = Some("files.example.net".into());
    let relay = vigil_relay::start(config).await.unwrap();
    let der = std::fs::read(dir.path().join(vigil_relay::cert::CERT_FILE)).unwrap();
    assert!(der.windows(17).any(|w| w == b"files.example.net"));
    let c = connect(&relay).await;
    c.challenge().await.unwrap();
    c.close().await;
    relay.shutdown().await.unwrap();
}
