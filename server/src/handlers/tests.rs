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

impl Fixture {
    /// Fetch `k`'s mailbox, which must hold exactly one item, and acknowledge that item.
    async fn fetch_one_and_ack(&self, k: &SigningKey, m: &MailboxId) {
        let items = self.fetch(k, [5; 32]).await;
        let id = match decode_response(&items).unwrap() {
            Response::Items(i) => {
                assert_eq!(i.len(), 1);
                i[0].id
            }
            other => panic!("{other:?}"),
        };
        let nonce = self.nonce().await;
        let proof = auth::sign(
            k,
            Purpose::Ack,
            &[5; 32],
            &nonce,
            m,
            &auth::ack_digest(&[id]),
        );
        let r = self
            .call(Request::Ack {
                mailbox: *m,
                ids: vec![id],
                proof,
            })
            .await;
        assert_eq!(decode_response(&r).unwrap(), Response::Acked(1));
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
    f.fetch_one_and_ack(&k, &m).await;
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

/// A store that fails writes that add data with the error a full disk gives, while `full` is
/// set; reads, acks and flushes pass through. Fault injection for the disk-full behaviour.
struct FullDisk {
    inner: SledStore,
    full: std::sync::atomic::AtomicBool,
}

impl FullDisk {
    fn failing(&self) -> Result<(), StoreError> {
        if self.full.load(std::sync::atomic::Ordering::SeqCst) {
            Err(StoreError::from_io(&std::io::Error::from(
                std::io::ErrorKind::StorageFull,
            )))
        } else {
            Ok(())
        }
    }
}

impl Store for FullDisk {
    fn register_mailbox(&self, m: &MailboxId, k: &[u8; 32]) -> Result<(), StoreError> {
        self.failing()?;
        self.inner.register_mailbox(m, k)
    }
    fn mailbox_key(&self, m: &MailboxId) -> Result<Option<[u8; 32]>, StoreError> {
        self.inner.mailbox_key(m)
    }
    fn deposit(
        &self,
        m: &MailboxId,
        d: &DepositId,
        e: &[u8],
        now: u64,
    ) -> Result<(ItemId, bool), StoreError> {
        self.failing()?;
        self.inner.deposit(m, d, e, now)
    }
    fn begin_large_deposit(
        &self,
        m: &MailboxId,
        d: &DepositId,
        len: u64,
        now: u64,
    ) -> Result<crate::store::LargeDeposit, StoreError> {
        self.failing()?;
        self.inner.begin_large_deposit(m, d, len, now)
    }
    fn fetch(
        &self,
        m: &MailboxId,
        n: u32,
        b: usize,
    ) -> Result<Vec<crate::store::StoredItem>, StoreError> {
        self.inner.fetch(m, n, b)
    }
    fn ack(&self, m: &MailboxId, ids: &[ItemId]) -> Result<u64, StoreError> {
        self.inner.ack(m, ids)
    }
    fn expire(&self, now: u64) -> Result<u64, StoreError> {
        self.inner.expire(now)
    }
    fn stats(&self) -> Result<crate::store::StoreStats, StoreError> {
        self.inner.stats()
    }
    fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush()
    }
}

struct FakeSpace(Arc<std::sync::atomic::AtomicU64>);
impl crate::store::space::SpaceProbe for FakeSpace {
    fn probe(&self) -> crate::store::space::SpaceReport {
        crate::store::space::SpaceReport::Writable {
            available: self.0.load(std::sync::atomic::Ordering::SeqCst),
        }
    }
}

#[tokio::test]
async fn full_disk_refuses_deposits_serves_fetches_and_recovers() {
    use std::sync::atomic::Ordering::SeqCst;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FullDisk {
        inner: SledStore::open(
            &dir.path().join("db"),
            Duration::from_secs(3600),
            Quota::default(),
        )
        .unwrap(),
        full: Default::default(),
    });
    let free = Arc::new(std::sync::atomic::AtomicU64::new(1 << 30));
    let space = Arc::new(crate::store::space::SpaceGuard::new(
        Box::new(FakeSpace(free.clone())),
        1 << 20,
    ));
    let dyn_store: Arc<dyn Store> = store.clone();
    let (flusher, _task) = Flusher::spawn(dyn_store.clone());
    let f = Fixture {
        _dir: dir,
        shared: Shared::new(dyn_store, flusher).with_space(space.clone()),
        conn: ConnState::new([5; 32]),
    };
    let k = SigningKey::from_bytes(&[1; 32]);
    let m = f.register(&k).await;
    let deposit = |n: u8| Request::Deposit {
        mailbox: m,
        deposit_id: DepositId([n; 16]),
        envelope: b"sealed",
    };
    assert!(matches!(
        decode_response(&f.call(deposit(1)).await).unwrap(),
        Response::Stored { .. }
    ));

    // The disk fills up under the store's feet: the write fails with ENOSPC.
    store.full.store(true, SeqCst);
    free.store(1000, SeqCst);
    let r = f.call(deposit(2)).await;
    match decode_response(&r).unwrap() {
        Response::Error {
            code, retryable, ..
        } => {
            assert_eq!(code, ErrorCode::StorageFull);
            assert!(retryable);
        }
        other => panic!("{other:?}"),
    }
    assert!(!space.accepting(), "the gate closed after ENOSPC");
    // The gate refuses before touching the store.
    assert_eq!(code(&f.call(deposit(3)).await), ErrorCode::StorageFull);
    // Fetch still works, and so does ack (which frees space).
    f.fetch_one_and_ack(&k, &m).await;
    // Still below the margin at the next probe: still refused.
    store.full.store(false, SeqCst);
    assert!(!space.refresh());
    assert_eq!(code(&f.call(deposit(4)).await), ErrorCode::StorageFull);
    // Space returns: the next probe reopens the gate, deposits work again.
    free.store(1 << 30, SeqCst);
    assert!(space.refresh());
    assert!(matches!(
        decode_response(&f.call(deposit(5)).await).unwrap(),
        Response::Stored { duplicate: false }
    ));
    assert_eq!(
        f.shared.counters.refused[usize::from(ErrorCode::StorageFull.to_u16())]
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
}

/// A streamed body in memory: `pieces` in order, then the end of the stream, or `Gone` if
/// `gone_after` pieces were handed out. Counts what was read.
struct MemBody {
    /// The length the deposit announces (may differ from what `pieces` hold).
    announced: usize,
    pieces: std::collections::VecDeque<Vec<u8>>,
    gone_after: Option<usize>,
    handed: usize,
    bytes_read: usize,
}

impl MemBody {
    fn new(data: &[u8], piece: usize) -> Self {
        Self {
            announced: data.len(),
            pieces: data.chunks(piece).map(|c| c.to_vec()).collect(),
            gone_after: None,
            handed: 0,
            bytes_read: 0,
        }
    }
}

impl BodySource for MemBody {
    type Chunk = Vec<u8>;

    async fn next_chunk(&mut self, max: usize) -> Result<Option<Vec<u8>>, BodyError> {
        if self.gone_after == Some(self.handed) {
            return Err(BodyError::Gone);
        }
        let Some(mut p) = self.pieces.pop_front() else {
            return Ok(None);
        };
        if p.len() > max {
            let rest = p.split_off(max);
            self.pieces.push_front(rest);
        }
        self.handed += 1;
        self.bytes_read += p.len();
        Ok(Some(p))
    }
}

fn head(m: &MailboxId, d: u8) -> [u8; DEPOSIT_FIXED_LEN] {
    let mut h = [0u8; DEPOSIT_FIXED_LEN];
    h[..32].copy_from_slice(m.as_bytes());
    h[32..].copy_from_slice(&[d; 16]);
    h
}

fn fetched_envelopes(frame: &[u8]) -> Vec<Vec<u8>> {
    match decode_response(frame).unwrap() {
        Response::Items(i) => i.iter().map(|i| i.envelope.to_vec()).collect(),
        other => panic!("{other:?}"),
    }
}

/// A streamed deposit of a body from `body`, whose length is the whole of what it holds.
async fn stream(f: &Fixture, m: &MailboxId, d: u8, body: &mut MemBody) -> Vec<u8> {
    let len = body.announced;
    handle_streamed_deposit(&f.shared, &head(m, d), len, body)
        .await
        .expect("the body source does not vanish")
}

fn decoded(frame: &[u8]) -> Response<'_> {
    decode_response(frame).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_deposit_stores_answers_repeats_early_and_refuses_bad_bodies() {
    let f = fixture();
    let k = SigningKey::from_bytes(&[1; 32]);
    let m = f.register(&k).await;
    let env: Vec<u8> = (0..3 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    assert!(is_streamed_deposit(env.len()));

    // Stored, whatever the piece sizes the network hands over.
    let mut body = MemBody::new(&env, 1200);
    let r = stream(&f, &m, 1, &mut body).await;
    assert_eq!(decoded(&r), Response::Stored { duplicate: false });
    assert_eq!(body.bytes_read, env.len());
    assert_eq!(
        fetched_envelopes(&f.fetch(&k, [5; 32]).await),
        vec![env.clone()]
    );

    // A repeat is answered before any of its body is read.
    let mut body = MemBody::new(&env, 1200);
    let r = stream(&f, &m, 1, &mut body).await;
    assert_eq!(decoded(&r), Response::Stored { duplicate: true });
    assert_eq!(body.bytes_read, 0);

    // Shorter than announced, longer than announced, or the client vanishes: nothing stored.
    let mut short = MemBody::new(&env[..env.len() - 1], 65536);
    short.announced = env.len();
    let r = stream(&f, &m, 2, &mut short).await;
    assert_eq!(code(&r), ErrorCode::Malformed);
    let mut long = MemBody::new(&[&env[..], b"x"].concat(), 65536);
    long.announced = env.len();
    let r = stream(&f, &m, 3, &mut long).await;
    assert_eq!(code(&r), ErrorCode::Malformed);
    let mut gone = MemBody::new(&env, 65536);
    gone.gone_after = Some(20);
    assert!(
        handle_streamed_deposit(&f.shared, &head(&m, 4), env.len(), &mut gone)
            .await
            .is_none()
    );
    // Unregistered mailbox: refused without reading.
    let mut body = MemBody::new(&env, 1200);
    let r = stream(&f, &MailboxId([9; 32]), 5, &mut body).await;
    assert_eq!(code(&r), ErrorCode::UnknownMailbox);
    assert_eq!(body.bytes_read, 0);

    assert_eq!(f.shared.store.stats().unwrap().items, 1);
    assert_eq!(
        fetched_envelopes(&f.fetch(&k, [5; 32]).await),
        vec![env.clone()]
    );
    // The failed ones can be sent again and are stored then.
    let mut body = MemBody::new(&env, 100_000);
    let r = stream(&f, &m, 4, &mut body).await;
    assert_eq!(decoded(&r), Response::Stored { duplicate: false });
    assert_eq!(f.shared.store.stats().unwrap().items, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_deposit_that_would_eat_the_disk_margin_is_refused_before_its_body() {
    const MIB: u64 = 1024 * 1024;
    let mut f = fixture();
    let free = Arc::new(std::sync::atomic::AtomicU64::new(256 * MIB + 2 * MIB));
    let space = Arc::new(crate::store::space::SpaceGuard::new(
        Box::new(FakeSpace(free.clone())),
        256 * MIB,
    ));
    assert!(space.refresh());
    f.shared.space = space.clone();
    let k = SigningKey::from_bytes(&[1; 32]);
    let m = f.register(&k).await;

    let big = vec![7u8; 3 * MIB as usize];
    let mut body = MemBody::new(&big, 65536);
    let r = stream(&f, &m, 1, &mut body).await;
    assert_eq!(code(&r), ErrorCode::StorageFull);
    assert_eq!(body.bytes_read, 0, "refused before the body");
    assert_eq!(space.reserved(), 0);
    assert!(space.accepting(), "small reports still go through");

    // One that fits is stored, and its bytes count as used until the next probe.
    let fits = vec![7u8; MIB as usize];
    let mut body = MemBody::new(&fits, 65536);
    let r = stream(&f, &m, 2, &mut body).await;
    assert_eq!(decoded(&r), Response::Stored { duplicate: false });
    assert_eq!(space.reserved(), 0);
    assert_eq!(space.available(), 256 * MIB + MIB);
    let mut body = MemBody::new(&vec![8u8; 2 * MIB as usize], 65536);
    assert_eq!(
        code(&stream(&f, &m, 3, &mut body).await),
        ErrorCode::StorageFull
    );
}
