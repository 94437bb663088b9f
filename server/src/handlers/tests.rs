//! Handlers in memory: a real sled store in a temporary directory, a fixed exporter, no network.

use super::*;
use crate::store::{Quota, SledStore};
use ed25519_dalek::SigningKey;
use std::time::Duration;
use vigil_core::ids::{DepositId, ItemId};
use vigil_core::wire::auth::Purpose;
use vigil_core::wire::decode_response;

struct Fixture {
    _dir: tempfile::TempDir,
    shared: Shared,
    conn: ConnState,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SledStore::open(
            &dir.path().join("db"),
            Duration::from_secs(3600),
            Quota::default(),
        )
        .unwrap(),
    );
    let (flusher, _task) = Flusher::spawn(store.clone());
    Fixture {
        _dir: dir,
        shared: Shared::new(store, flusher),
        conn: ConnState::new([5; 32]),
    }
}

impl Fixture {
    async fn call(&self, req: Request<'_>) -> Vec<u8> {
        handle(&self.shared, &self.conn, req).await
    }

    async fn nonce(&self) -> [u8; 32] {
        match decode_response(&self.call(Request::Challenge).await).unwrap() {
            Response::ChallengeNonce(n) => n,
            other => panic!("{other:?}"),
        }
    }

    async fn register(&self, k: &SigningKey) -> MailboxId {
        let pk = k.verifying_key().to_bytes();
        let m = MailboxId::for_key(&pk);
        let nonce = self.nonce().await;
        let proof = auth::sign(
            k,
            Purpose::Register,
            &[5; 32],
            &nonce,
            &m,
            &auth::register_digest(&pk),
        );
        let f = self
            .call(Request::Register {
                public_key: pk,
                proof,
            })
            .await;
        assert_eq!(decode_response(&f).unwrap(), Response::Registered(m));
        m
    }

    async fn fetch(&self, k: &SigningKey, exporter: [u8; 32]) -> Vec<u8> {
        let m = MailboxId::for_key(&k.verifying_key().to_bytes());
        let nonce = self.nonce().await;
        let proof = auth::sign(
            k,
            Purpose::Fetch,
            &exporter,
            &nonce,
            &m,
            &auth::fetch_digest(10),
        );
        self.call(Request::Fetch {
            mailbox: m,
            max_items: 10,
            proof,
        })
        .await
    }
}

fn code(frame: &[u8]) -> ErrorCode {
    match decode_response(frame).unwrap() {
        Response::Error { code, .. } => code,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn deposit_then_fetch_then_ack() {
    let f = fixture();
    let k = SigningKey::from_bytes(&[1; 32]);
    let m = f.register(&k).await;
    let r = f
        .call(Request::Deposit {
            mailbox: m,
            deposit_id: DepositId([1; 16]),
            envelope: b"e",
        })
        .await;
    assert_eq!(
        decode_response(&r).unwrap(),
        Response::Stored { duplicate: false }
    );
    let r = f
        .call(Request::Deposit {
            mailbox: m,
            deposit_id: DepositId([1; 16]),
            envelope: b"e",
        })
        .await;
    assert_eq!(
        decode_response(&r).unwrap(),
        Response::Stored { duplicate: true }
    );
    let items = f.fetch(&k, [5; 32]).await;
    let id = match decode_response(&items).unwrap() {
        Response::Items(i) => {
            assert_eq!(i.len(), 1);
            i[0].id
        }
        other => panic!("{other:?}"),
    };
    let nonce = f.nonce().await;
    let proof = auth::sign(
        &k,
        Purpose::Ack,
        &[5; 32],
        &nonce,
        &m,
        &auth::ack_digest(&[id]),
    );
    let r = f
        .call(Request::Ack {
            mailbox: m,
            ids: vec![id],
            proof,
        })
        .await;
    assert_eq!(decode_response(&r).unwrap(), Response::Acked(1));
}

#[tokio::test]
async fn proof_from_another_connection_or_unknown_nonce_is_refused() {
    let f = fixture();
    let k = SigningKey::from_bytes(&[1; 32]);
    f.register(&k).await;
    assert_eq!(code(&f.fetch(&k, [6; 32]).await), ErrorCode::BadProof);
    // Never-issued nonce.
    let m = MailboxId::for_key(&k.verifying_key().to_bytes());
    let proof = auth::sign(
        &k,
        Purpose::Fetch,
        &[5; 32],
        &[0; 32],
        &m,
        &auth::fetch_digest(10),
    );
    let r = f
        .call(Request::Fetch {
            mailbox: m,
            max_items: 10,
            proof,
        })
        .await;
    assert_eq!(code(&r), ErrorCode::BadProof);
}

#[tokio::test]
async fn a_failed_proof_still_spends_its_nonce() {
    let f = fixture();
    let k = SigningKey::from_bytes(&[1; 32]);
    let m = f.register(&k).await;
    let nonce = f.nonce().await;
    let bad = auth::sign(
        &k,
        Purpose::Fetch,
        &[6; 32],
        &nonce,
        &m,
        &auth::fetch_digest(10),
    );
    assert_eq!(
        code(
            &f.call(Request::Fetch {
                mailbox: m,
                max_items: 10,
                proof: bad
            })
            .await
        ),
        ErrorCode::BadProof
    );
    let good = auth::sign(
        &k,
        Purpose::Fetch,
        &[5; 32],
        &nonce,
        &m,
        &auth::fetch_digest(10),
    );
    assert_eq!(
        code(
            &f.call(Request::Fetch {
                mailbox: m,
                max_items: 10,
                proof: good
            })
            .await
        ),
        ErrorCode::BadProof
    );
}

#[tokio::test]
async fn register_with_someone_elses_key_is_refused() {
    let f = fixture();
    let victim = SigningKey::from_bytes(&[1; 32]).verifying_key().to_bytes();
    let attacker = SigningKey::from_bytes(&[2; 32]);
    let nonce = f.nonce().await;
    let m = MailboxId::for_key(&victim);
    let proof = auth::sign(
        &attacker,
        Purpose::Register,
        &[5; 32],
        &nonce,
        &m,
        &auth::register_digest(&victim),
    );
    let r = f
        .call(Request::Register {
            public_key: victim,
            proof,
        })
        .await;
    assert_eq!(code(&r), ErrorCode::BadProof);
    assert_eq!(f.shared.store.mailbox_key(&m).unwrap(), None);
}

#[tokio::test]
async fn ack_of_unknown_mailbox_is_refused() {
    let f = fixture();
    let k = SigningKey::from_bytes(&[3; 32]);
    let m = MailboxId::for_key(&k.verifying_key().to_bytes());
    let nonce = f.nonce().await;
    let proof = auth::sign(
        &k,
        Purpose::Ack,
        &[5; 32],
        &nonce,
        &m,
        &auth::ack_digest(&[ItemId([0; 16])]),
    );
    let r = f
        .call(Request::Ack {
            mailbox: m,
            ids: vec![ItemId([0; 16])],
            proof,
        })
        .await;
    assert_eq!(code(&r), ErrorCode::UnknownMailbox);
}

#[tokio::test]
async fn many_concurrent_deposits_share_flushes() {
    let f = Arc::new(fixture());
    let k = SigningKey::from_bytes(&[1; 32]);
    let m = f.register(&k).await;
    let mut tasks = Vec::new();
    for i in 0..64u8 {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            let r = f
                .call(Request::Deposit {
                    mailbox: m,
                    deposit_id: DepositId([i; 16]),
                    envelope: &[i; 100],
                })
                .await;
            assert_eq!(
                decode_response(&r).unwrap(),
                Response::Stored { duplicate: false }
            );
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(f.shared.store.stats().unwrap().items, 64);
}
