//! Handlers in memory: a real sled store in a temporary directory, a fixed exporter, payloads
//! and answers in memory, no network.

use super::*;
use crate::body::testing::Pieces;
use crate::body::Buffered;
use crate::store::space::{SpaceGuard, SpaceProbe, SpaceReport};
use crate::store::{Deposited, ItemMeta, Quota, SledStore, StoreFuture, StoreStats};
use ed25519_dalek::SigningKey;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use vigil_core::ids::{AlertId, DepositId, ItemId};
use vigil_core::wire::ack::{self, Ack, Acked};
use vigil_core::wire::challenge::Challenge;
use vigil_core::wire::deposit::{Deposit, Stored};
use vigil_core::wire::fetch::{self, Fetch};
use vigil_core::wire::register::{self, Register, Registered};
use vigil_core::wire::{decode_response_frame, Response};
use vigil_core::wire::{ReleaseNote, ReleaseReason};

const EXPORTER: [u8; 32] = [5; 32];

struct Fixture {
    _dir: tempfile::TempDir,
    shared: Shared,
    conn: ConnState,
}

fn sled(dir: &std::path::Path) -> SledStore {
    SledStore::open(&dir.join("db"), Duration::from_secs(3600), Quota::default()).unwrap()
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(sled(dir.path()));
    Fixture {
        _dir: dir,
        shared: Shared::new(store),
        conn: ConnState::new(EXPORTER),
    }
}

/// The answer to `req`, and how the request ended.
async fn call_with(f: &Fixture, req: Request, body: &mut dyn BodySource) -> (Vec<u8>, Outcome) {
    let mut reply = Vec::new();
    let outcome = handle(&f.shared, &f.conn, req, body, &mut reply).await;
    (reply, outcome)
}

impl Fixture {
    async fn call(&self, req: Request) -> Response {
        let (reply, _) = call_with(self, req, &mut Buffered::empty()).await;
        decode_response_frame(&reply).unwrap()
    }

    async fn deposit(&self, m: MailboxId, d: u8, envelope: &[u8]) -> Response {
        let head = Deposit {
            mailbox: m,
            deposit_id: DepositId([d; 16]),
            envelope_len: envelope.len(),
        };
        let (reply, _) = call_with(
            self,
            Request::Deposit(head),
            &mut Buffered::new(envelope.to_vec()),
        )
        .await;
        decode_response_frame(&reply).unwrap()
    }

    async fn nonce(&self) -> [u8; 32] {
        match self.call(Request::Challenge(Challenge)).await {
            Response::ChallengeNonce(n) => n.nonce,
            other => panic!("{other:?}"),
        }
    }

    async fn register(&self, k: &SigningKey) -> MailboxId {
        let pk = k.verifying_key().to_bytes();
        let m = MailboxId::for_key(&pk);
        let nonce = self.nonce().await;
        let proof = auth::sign(
            k,
            register::PURPOSE,
            &EXPORTER,
            &nonce,
            &m,
            &Register::digest(&pk, None),
        );
        let r = self
            .call(Request::Register(Register {
                public_key: pk,
                proof,
                lifetime_days: None,
            }))
            .await;
        assert_eq!(
            r,
            Response::Registered(Registered {
                mailbox: m,
                lifetime_days: None
            })
        );
        m
    }

    async fn fetch_request(&self, k: &SigningKey, exporter: [u8; 32]) -> Request {
        let m = MailboxId::for_key(&k.verifying_key().to_bytes());
        let nonce = self.nonce().await;
        let proof = auth::sign(k, fetch::PURPOSE, &exporter, &nonce, &m, &Fetch::digest(10));
        Request::Fetch(Fetch {
            mailbox: m,
            max_items: 10,
            proof,
        })
    }

    async fn fetch(&self, k: &SigningKey) -> Vec<fetch::Item> {
        match self.call(self.fetch_request(k, EXPORTER).await).await {
            Response::Items(i) => i.items,
            other => panic!("{other:?}"),
        }
    }

    async fn ack(&self, k: &SigningKey, ids: Vec<ItemId>) -> Response {
        let m = MailboxId::for_key(&k.verifying_key().to_bytes());
        let nonce = self.nonce().await;
        let proof = auth::sign(k, ack::PURPOSE, &EXPORTER, &nonce, &m, &Ack::digest(&ids));
        self.call(Request::Ack(Ack {
            mailbox: m,
            ids,
            proof,
        }))
        .await
    }
}

fn code(r: &Response) -> ErrorCode {
    match r {
        Response::Error(e) => e.code,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn stored(duplicate: bool) -> Response {
    Response::Stored(Stored { duplicate })
}

#[tokio::test]
async fn deposit_then_fetch_then_ack() {
    let f = fixture();
    let k = SigningKey::from_bytes(&[1; 32]);
    let m = f.register(&k).await;
    assert_eq!(f.deposit(m, 1, b"e").await, stored(false));
    assert_eq!(f.deposit(m, 1, b"e").await, stored(true));
    let items = f.fetch(&k).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].envelope, b"e");
    assert_eq!(
        f.ack(&k, vec![items[0].id]).await,
        Response::Acked(Acked { count: 1 })
    );
    assert!(f.fetch(&k).await.is_empty());
    let c = &f.shared.counters;
    assert_eq!(c.deposits_stored.load(Ordering::Relaxed), 1);
    assert_eq!(c.deposits_duplicate.load(Ordering::Relaxed), 1);
    assert_eq!(c.items_acked.load(Ordering::Relaxed), 1);
    assert_eq!(c.fetches.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn proof_from_another_connection_or_unknown_nonce_is_refused() {
    let f = fixture();
    let k = SigningKey::from_bytes(&[1; 32]);
    let m = f.register(&k).await;
    let r = f.call(f.fetch_request(&k, [6; 32]).await).await;
    assert_eq!(code(&r), ErrorCode::BadProof);
    // A nonce never issued.
    let proof = auth::sign(
        &k,
        fetch::PURPOSE,
        &EXPORTER,
        &[0; 32],
        &m,
        &Fetch::digest(10),
    );
    let r = f
        .call(Request::Fetch(Fetch {
            mailbox: m,
            max_items: 10,
            proof,
        }))
        .await;
    assert_eq!(code(&r), ErrorCode::BadProof);
    assert_eq!(
        f.shared.counters.refused[usize::from(ErrorCode::BadProof.to_u16())]
            .load(Ordering::Relaxed),
        2
    );
}

#[tokio::test]
async fn a_failed_proof_still_spends_its_nonce() {
    let f = fixture();
    let k = SigningKey::from_bytes(&[1; 32]);
    let m = f.register(&k).await;
    let nonce = f.nonce().await;
    let fetch_with = |exporter| {
        let proof = auth::sign(
            &k,
            fetch::PURPOSE,
            &exporter,
            &nonce,
            &m,
            &Fetch::digest(10),
        );
        Request::Fetch(Fetch {
            mailbox: m,
            max_items: 10,
            proof,
        })
    };
    assert_eq!(
        code(&f.call(fetch_with([6; 32])).await),
        ErrorCode::BadProof
    );
    assert_eq!(
        code(&f.call(fetch_with(EXPORTER)).await),
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
        register::PURPOSE,
        &EXPORTER,
        &nonce,
        &m,
        &Register::digest(&victim, None),
    );
    let r = f
        .call(Request::Register(Register {
            public_key: victim,
            proof,
            lifetime_days: None,
        }))
        .await;
    assert_eq!(code(&r), ErrorCode::BadProof);
    assert_eq!(f.shared.store.mailbox_key(m).await.unwrap(), None);
}

/// A registration with a lifetime is granted at most the relay's limit and answered with the
/// days granted; its proof covers the lifetime; a later registration never shortens it.
#[tokio::test]
async fn a_registration_with_a_lifetime_is_capped_and_answered_with_it() {
    let mut f = fixture();
    f.shared = Shared::new(f.shared.store.clone()).with_max_mailbox_lifetime(30);
    let k = SigningKey::from_bytes(&[4; 32]);
    let pk = k.verifying_key().to_bytes();
    let m = MailboxId::for_key(&pk);
    let register = |days: Option<u16>, signed: Option<u16>| {
        let f = &f;
        let k = &k;
        async move {
            let nonce = f.nonce().await;
            let digest = Register::digest(&pk, signed);
            let proof = auth::sign(k, register::PURPOSE, &EXPORTER, &nonce, &m, &digest);
            f.call(Request::Register(Register {
                public_key: pk,
                proof,
                lifetime_days: days,
            }))
            .await
        }
    };
    // A lifetime the proof does not cover (stripped or changed on the way) is refused.
    assert_eq!(code(&register(Some(90), None).await), ErrorCode::BadProof);
    assert_eq!(
        code(&register(Some(90), Some(10)).await),
        ErrorCode::BadProof
    );
    let granted = |r: Response| match r {
        Response::Registered(Registered {
            mailbox,
            lifetime_days,
        }) => {
            assert_eq!(mailbox, m);
            lifetime_days
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        granted(register(Some(90), Some(90)).await),
        Some(30),
        "capped"
    );
    assert_eq!(
        granted(register(Some(5), Some(5)).await),
        Some(30),
        "never shorter"
    );
    let expires = f.shared.store.register(m, pk, Some(0)).await.unwrap();
    let now = crate::clock::now_unix();
    assert!(
        expires.is_some_and(|t| t % 86_400 == 0 && t > now + 30 * 86_400 && t <= now + 31 * 86_400),
        "kept at least 30 whole days, to the day: {expires:?}"
    );
    // Without a lifetime: the 32-byte answer of old, and the mailbox is kept for good.
    assert_eq!(granted(register(None, None).await), None);
    assert_eq!(granted(register(Some(5), Some(5)).await), Some(u16::MAX));
}

#[tokio::test]
async fn requests_for_an_unknown_mailbox_are_refused() {
    let f = fixture();
    let k = SigningKey::from_bytes(&[3; 32]);
    assert_eq!(
        code(&f.ack(&k, vec![ItemId([0; 16])]).await),
        ErrorCode::UnknownMailbox
    );
    let m = MailboxId::for_key(&k.verifying_key().to_bytes());
    assert_eq!(
        code(&f.deposit(m, 1, b"x").await),
        ErrorCode::UnknownMailbox
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_deposits_stream_and_repeats_are_answered_before_their_body() {
    let f = fixture();
    let k = SigningKey::from_bytes(&[1; 32]);
    let m = f.register(&k).await;
    let env: Vec<u8> = (0..3 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    let head = |d: u8| {
        Request::Deposit(Deposit {
            mailbox: m,
            deposit_id: DepositId([d; 16]),
            envelope_len: env.len(),
        })
    };
    // Stored, whatever the piece sizes the network hands over.
    let mut body = Pieces::exact(&env, 1200);
    let (r, outcome) = call_with(&f, head(1), &mut body).await;
    assert_eq!(
        (decode_response_frame(&r).unwrap(), outcome),
        (stored(false), Outcome::Answered)
    );
    assert_eq!(body.read, env.len());
    assert!(body.finished());
    // A repeat is answered before any of its body is read.
    let mut body = Pieces::exact(&env, 1200);
    let (r, _) = call_with(&f, head(1), &mut body).await;
    assert_eq!(decode_response_frame(&r).unwrap(), stored(true));
    assert_eq!(body.read, 0);
    assert!(!body.finished(), "the listener then stops the stream");
    // Short, long, or gone: nothing stored; malformed bodies are answered, a gone client not.
    let mut short = Pieces::new(&env[..env.len() - 1], 65536, env.len());
    let (r, _) = call_with(&f, head(2), &mut short).await;
    assert_eq!(
        code(&decode_response_frame(&r).unwrap()),
        ErrorCode::Malformed
    );
    let mut gone = Pieces::exact(&env, 65536);
    gone.gone_after = Some(20);
    let (r, outcome) = call_with(&f, head(3), &mut gone).await;
    assert_eq!((r.len(), outcome), (0, Outcome::Abandoned));
    let items = f.fetch(&k).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].envelope, env);
}

struct FakeSpace(Arc<AtomicU64>);

impl SpaceProbe for FakeSpace {
    fn probe(&self) -> SpaceReport {
        SpaceReport::Writable {
            available: self.0.load(Ordering::SeqCst),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_that_would_eat_the_disk_margin_is_refused_before_its_body() {
    const MIB: u64 = 1024 * 1024;
    let mut f = fixture();
    let free = Arc::new(AtomicU64::new(256 * MIB + 2 * MIB));
    let space = Arc::new(SpaceGuard::new(
        Box::new(FakeSpace(free.clone())),
        256 * MIB,
    ));
    assert!(space.refresh());
    f.shared.space = space.clone();
    let k = SigningKey::from_bytes(&[1; 32]);
    let m = f.register(&k).await;
    let deposit = |d: u8, len: u64| {
        Request::Deposit(Deposit {
            mailbox: m,
            deposit_id: DepositId([d; 16]),
            envelope_len: len as usize,
        })
    };
    let big = vec![7u8; 3 * MIB as usize];
    let mut body = Pieces::exact(&big, 65536);
    let (r, _) = call_with(&f, deposit(1, 3 * MIB), &mut body).await;
    assert_eq!(
        code(&decode_response_frame(&r).unwrap()),
        ErrorCode::StorageFull
    );
    assert_eq!(body.read, 0, "refused before the body");
    assert_eq!(space.reserved(), 0);
    assert!(space.accepting(), "small reports still go through");
    // One that fits is stored, and its bytes count as used until the next probe.
    let fits = vec![7u8; MIB as usize];
    let (r, _) = call_with(&f, deposit(2, MIB), &mut Pieces::exact(&fits, 65536)).await;
    assert_eq!(decode_response_frame(&r).unwrap(), stored(false));
    assert_eq!(space.reserved(), 0);
    assert_eq!(space.available(), 256 * MIB + MIB);
    let two = vec![8u8; 2 * MIB as usize];
    let (r, _) = call_with(&f, deposit(3, 2 * MIB), &mut Pieces::exact(&two, 65536)).await;
    assert_eq!(
        code(&decode_response_frame(&r).unwrap()),
        ErrorCode::StorageFull
    );
}

/// A store whose writes fail as on a full disk while `full` is set; reads and acks pass
/// through. Fault injection for the disk-full behaviour.
struct FullDisk {
    inner: SledStore,
    full: AtomicBool,
}

impl FullDisk {
    fn failing(&self) -> Result<(), StoreError> {
        if self.full.load(Ordering::SeqCst) {
            Err(StoreError::from_io(&std::io::Error::from(
                std::io::ErrorKind::StorageFull,
            )))
        } else {
            Ok(())
        }
    }
}

impl Store for FullDisk {
    fn register(&self, m: MailboxId, k: [u8; 32], e: Option<u64>) -> StoreFuture<'_, Option<u64>> {
        match self.failing() {
            Ok(()) => self.inner.register(m, k, e),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }
    fn mailbox_key(&self, m: MailboxId) -> StoreFuture<'_, Option<[u8; 32]>> {
        self.inner.mailbox_key(m)
    }
    fn set_prekey<'a>(&'a self, m: MailboxId, bundle: &'a [u8]) -> StoreFuture<'a, bool> {
        self.inner.set_prekey(m, bundle)
    }
    fn prekey(&self, m: MailboxId) -> StoreFuture<'_, Option<Vec<u8>>> {
        self.inner.prekey(m)
    }
    fn deposit<'a>(
        &'a self,
        h: Deposit,
        now: u64,
        b: &'a mut dyn BodySource,
    ) -> StoreFuture<'a, Deposited> {
        match self.failing() {
            Ok(()) => self.inner.deposit(h, now, b),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }
    fn list(&self, m: MailboxId, n: u32, b: u64) -> StoreFuture<'_, Vec<ItemMeta>> {
        self.inner.list(m, n, b)
    }
    fn read(
        &self,
        m: MailboxId,
        i: ItemMeta,
        o: u64,
        n: usize,
    ) -> StoreFuture<'_, Option<bytes::Bytes>> {
        self.inner.read(m, i, o, n)
    }
    fn ack<'a>(&'a self, m: MailboxId, ids: &'a [ItemId]) -> StoreFuture<'a, u64> {
        self.inner.ack(m, ids)
    }
    fn usage(&self, m: MailboxId) -> StoreFuture<'_, crate::store::MailboxUsage> {
        self.inner.usage(m)
    }
    fn expire(&self, now: u64) -> StoreFuture<'_, u64> {
        self.inner.expire(now)
    }
    fn arm(&self, a: crate::store::Alert) -> StoreFuture<'_, crate::store::Armed> {
        match self.failing() {
            Ok(()) => self.inner.arm(a),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }
    fn alert_keys(&self, id: AlertId) -> StoreFuture<'_, Option<crate::store::AlertKeys>> {
        self.inner.alert_keys(id)
    }
    fn check_in(&self, id: AlertId, deadline: u64, now: u64) -> StoreFuture<'_, bool> {
        self.inner.check_in(id, deadline, now)
    }
    fn release(&self, id: AlertId, r: ReleaseReason, now: u64) -> StoreFuture<'_, bool> {
        self.inner.release(id, r, now)
    }
    fn disarm(&self, id: AlertId) -> StoreFuture<'_, bool> {
        self.inner.disarm(id)
    }
    fn alerts(&self) -> StoreFuture<'_, Vec<crate::store::AlertTimes>> {
        self.inner.alerts()
    }
    fn note(&self, m: MailboxId, i: ItemMeta) -> StoreFuture<'_, Option<ReleaseNote>> {
        self.inner.note(m, i)
    }
    fn upload<'a>(
        &'a self,
        h: vigil_core::wire::upload::Upload,
        now: u64,
        b: &'a mut dyn BodySource,
    ) -> StoreFuture<'a, u64> {
        match self.failing() {
            Ok(()) => self.inner.upload(h, now, b),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }
    fn deposit_blobs<'a>(
        &'a self,
        h: Deposit,
        blobs: &'a [vigil_core::ids::BlobId],
        now: u64,
        b: &'a mut dyn BodySource,
    ) -> StoreFuture<'a, Deposited> {
        match self.failing() {
            Ok(()) => self.inner.deposit_blobs(h, blobs, now, b),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }
    fn item_blobs(
        &self,
        m: MailboxId,
        i: ItemMeta,
    ) -> StoreFuture<'_, Vec<vigil_core::wire::fetch::BlobRef>> {
        self.inner.item_blobs(m, i)
    }
    fn blob_len(&self, id: vigil_core::ids::BlobId) -> StoreFuture<'_, Option<u64>> {
        self.inner.blob_len(id)
    }
    fn read_blob(
        &self,
        id: vigil_core::ids::BlobId,
        o: u64,
        n: usize,
    ) -> StoreFuture<'_, Option<bytes::Bytes>> {
        self.inner.read_blob(id, o, n)
    }
    fn room(&self, m: MailboxId) -> StoreFuture<'_, Option<u64>> {
        self.inner.room(m)
    }
    fn set_blob_expiry(&self, secs: u64) {
        self.inner.set_blob_expiry(secs)
    }
    fn stats(&self) -> StoreStats {
        self.inner.stats()
    }
    fn flush_stats(&self) -> crate::store::FlushStats {
        self.inner.flush_stats()
    }
    fn last_flush_ok(&self) -> bool {
        self.inner.last_flush_ok()
    }
    fn flush(&self) -> StoreFuture<'_, ()> {
        self.inner.flush()
    }
}

#[tokio::test]
async fn full_disk_refuses_deposits_serves_fetches_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FullDisk {
        inner: sled(dir.path()),
        full: AtomicBool::new(false),
    });
    let free = Arc::new(AtomicU64::new(1 << 30));
    let space = Arc::new(SpaceGuard::new(Box::new(FakeSpace(free.clone())), 1 << 20));
    let f = Fixture {
        _dir: dir,
        shared: Shared::new(store.clone()).with_space(space.clone()),
        conn: ConnState::new(EXPORTER),
    };
    let k = SigningKey::from_bytes(&[1; 32]);
    let m = f.register(&k).await;
    assert_eq!(f.deposit(m, 1, b"sealed").await, stored(false));

    // The disk fills up under the store's feet: the write fails with ENOSPC.
    store.full.store(true, Ordering::SeqCst);
    free.store(1000, Ordering::SeqCst);
    match f.deposit(m, 2, b"sealed").await {
        Response::Error(r) => {
            assert_eq!(r.code, ErrorCode::StorageFull);
            assert!(r.retryable);
        }
        other => panic!("{other:?}"),
    }
    assert!(!space.accepting(), "the gate closed after ENOSPC");
    // The gate refuses before touching the store.
    assert_eq!(
        code(&f.deposit(m, 3, b"sealed").await),
        ErrorCode::StorageFull
    );
    // Fetch still works, and so does ack (which frees space).
    let items = f.fetch(&k).await;
    assert_eq!(
        f.ack(&k, vec![items[0].id]).await,
        Response::Acked(Acked { count: 1 })
    );
    // Still below the margin at the next probe: still refused.
    store.full.store(false, Ordering::SeqCst);
    assert!(!space.refresh());
    assert_eq!(
        code(&f.deposit(m, 4, b"sealed").await),
        ErrorCode::StorageFull
    );
    // Space returns: the next probe reopens the gate, deposits work again.
    free.store(1 << 30, Ordering::SeqCst);
    assert!(space.refresh());
    assert_eq!(f.deposit(m, 5, b"sealed").await, stored(false));
    assert_eq!(
        f.shared.counters.refused[usize::from(ErrorCode::StorageFull.to_u16())]
            .load(Ordering::Relaxed),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_streams_the_same_bytes_as_a_whole_items_frame() {
    let f = fixture();
    let k = SigningKey::from_bytes(&[1; 32]);
    let m = f.register(&k).await;
    let large = crate::store::conformance::envelope(9, 700_000);
    f.deposit(m, 1, b"urgent text").await;
    let mut body = Pieces::exact(&large, 50_000);
    let head = Deposit {
        mailbox: m,
        deposit_id: DepositId([2; 16]),
        envelope_len: large.len(),
    };
    call_with(&f, Request::Deposit(head), &mut body).await;
    let (streamed, outcome) = call_with(
        &f,
        f.fetch_request(&k, EXPORTER).await,
        &mut Buffered::empty(),
    )
    .await;
    assert_eq!(outcome, Outcome::Answered);
    let Response::Items(items) = decode_response_frame(&streamed).unwrap() else {
        panic!("not items")
    };
    assert_eq!(items.items[0].envelope, b"urgent text", "small first");
    assert_eq!(items.items[1].envelope, large);
    assert_eq!(
        streamed,
        vigil_core::wire::encode(&items).unwrap(),
        "byte for byte"
    );
}

/// A reply sink that takes `room` bytes and then fails as a client that stopped reading.
struct StopsReading {
    written: Vec<u8>,
    room: usize,
}

impl ReplySink for StopsReading {
    fn write<'a>(&'a mut self, bytes: &'a [u8]) -> BoxFuture<'a, Result<(), BodyError>> {
        let r = if self.written.len() + bytes.len() > self.room {
            Err(BodyError::TooSlow)
        } else {
            self.written.extend_from_slice(bytes);
            Ok(())
        };
        Box::pin(std::future::ready(r))
    }

    fn started(&self) -> bool {
        !self.written.is_empty()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_whose_client_stops_reading_is_abandoned_and_frees_its_slot() {
    let f = fixture();
    let k = SigningKey::from_bytes(&[1; 32]);
    let m = f.register(&k).await;
    let large = crate::store::conformance::envelope(9, 700_000);
    let head = Deposit {
        mailbox: m,
        deposit_id: DepositId([2; 16]),
        envelope_len: large.len(),
    };
    call_with(
        &f,
        Request::Deposit(head),
        &mut Pieces::exact(&large, 50_000),
    )
    .await;
    let slots = f.shared.fetch_slots.available_permits();
    let mut reply = StopsReading {
        written: Vec::new(),
        room: 100_000,
    };
    let req = f.fetch_request(&k, EXPORTER).await;
    let outcome = handle(&f.shared, &f.conn, req, &mut Buffered::empty(), &mut reply).await;
    assert_eq!(outcome, Outcome::Abandoned);
    assert_eq!(f.shared.fetch_slots.available_permits(), slots);
    // Nothing was lost: the item is still there for the next fetch.
    assert_eq!(f.fetch(&k).await[0].envelope, large);
}

mod alerts {
    use super::*;
    use vigil_core::wire::alert::{CHECKIN_PURPOSE, DISARM_PURPOSE};
    use vigil_core::wire::arm::{AlertEnvelope, Arm, Armed};
    use vigil_core::wire::checkin::{CheckIn, CheckedIn};
    use vigil_core::wire::disarm::{Disarm, Disarmed};
    use vigil_core::wire::Purpose;

    const ALERT: AlertId = AlertId([0x11; 16]);

    fn keys() -> (SigningKey, SigningKey) {
        (
            SigningKey::from_bytes(&[0x21; 32]),
            SigningKey::from_bytes(&[0x22; 32]),
        )
    }

    fn arm(m: MailboxId) -> Arm {
        let (c, d) = keys();
        Arm {
            alert: ALERT,
            every: 4,
            grace: 2,
            checkin_key: c.verifying_key().to_bytes(),
            duress_key: d.verifying_key().to_bytes(),
            envelopes: vec![AlertEnvelope {
                mailbox: m,
                envelope: b"sealed alert".to_vec(),
            }],
        }
    }

    impl Fixture {
        /// The raw answer to a check-in (or, with `DISARM_PURPOSE`, a disarm) signed by `k`.
        async fn alert_call(&self, k: &SigningKey, purpose: Purpose, id: AlertId) -> Vec<u8> {
            let nonce = self.nonce().await;
            let proof = auth::sign_alert(k, purpose, &EXPORTER, &nonce, &id);
            let req = match purpose == DISARM_PURPOSE {
                true => Request::Disarm(Disarm { alert: id, proof }),
                false => Request::CheckIn(CheckIn { alert: id, proof }),
            };
            call_with(self, req, &mut Buffered::empty()).await.0
        }

        async fn fetch_noted(&self, k: &SigningKey) -> fetch::Items {
            let m = MailboxId::for_key(&k.verifying_key().to_bytes());
            let nonce = self.nonce().await;
            let max = fetch::WITH_NOTES | 10;
            let proof = auth::sign(
                k,
                fetch::PURPOSE,
                &EXPORTER,
                &nonce,
                &m,
                &Fetch::digest(max),
            );
            let req = Request::Fetch(Fetch {
                mailbox: m,
                max_items: max,
                proof,
            });
            match self.call(req).await {
                Response::Items(i) => i,
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn arming_is_idempotent_and_checked() {
        let f = fixture();
        let ngo = SigningKey::from_bytes(&[1; 32]);
        let m = f.register(&ngo).await;
        let armed = f.call(Request::Arm(arm(m))).await;
        assert_eq!(armed, Response::Armed(Armed { deadline_secs: 6 }));
        match f.call(Request::Arm(arm(m))).await {
            Response::Armed(a) => assert!(a.deadline_secs <= 6),
            other => panic!("{other:?}"),
        }
        let mut other = arm(m);
        other.grace = 3;
        assert_eq!(
            code(&f.call(Request::Arm(other)).await),
            ErrorCode::Malformed
        );
        let mut nowhere = arm(MailboxId([9; 32]));
        nowhere.alert = AlertId([0x12; 16]);
        assert_eq!(
            code(&f.call(Request::Arm(nowhere)).await),
            ErrorCode::UnknownMailbox
        );
        assert!(f.fetch(&ngo).await.is_empty(), "sealed until released");
        assert_eq!(f.shared.alerts.len().await, 1);
    }

    #[tokio::test]
    async fn a_duress_checkin_answers_what_a_normal_one_does_and_releases() {
        let f = fixture();
        let ngo = SigningKey::from_bytes(&[1; 32]);
        let m = f.register(&ngo).await;
        f.call(Request::Arm(arm(m))).await;
        let (checkin, duress) = keys();
        let normal = f.alert_call(&checkin, CHECKIN_PURPOSE, ALERT).await;
        assert_eq!(normal, vigil_core::wire::encode(&CheckedIn).unwrap());
        assert!(f.fetch(&ngo).await.is_empty(), "a check-in keeps it sealed");
        let forced = f.alert_call(&duress, CHECKIN_PURPOSE, ALERT).await;
        assert_eq!(forced, normal, "the same bytes whichever key signed");
        // Released at once, marked duress; a plain fetch sees the envelope alone.
        let items = f.fetch(&ngo).await;
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].envelope, b"sealed alert");
        assert_eq!(items[0].note, None);
        let noted = f.fetch_noted(&ngo).await;
        assert!(noted.with_notes);
        let note = noted.items[0].note.unwrap();
        assert_eq!(note.reason, ReleaseReason::Duress);
        assert!(note.released_at >= note.armed_at);
        assert!(f.shared.alerts.is_empty().await);
        // Released: further check-ins are refused as for an unknown alert.
        let after = f.alert_call(&checkin, CHECKIN_PURPOSE, ALERT).await;
        assert_eq!(
            code(&decode_response_frame(&after).unwrap()),
            ErrorCode::BadProof
        );
    }

    #[tokio::test]
    async fn bad_proofs_and_unknown_alerts_are_refused_alike() {
        let f = fixture();
        let ngo = SigningKey::from_bytes(&[1; 32]);
        let m = f.register(&ngo).await;
        f.call(Request::Arm(arm(m))).await;
        let (checkin, _) = keys();
        let stranger = SigningKey::from_bytes(&[0x33; 32]);
        let bad_key = f.alert_call(&stranger, CHECKIN_PURPOSE, ALERT).await;
        let unknown = f
            .alert_call(&checkin, CHECKIN_PURPOSE, AlertId([0x99; 16]))
            .await;
        assert_eq!(
            bad_key, unknown,
            "an unknown alert is refused as a bad proof"
        );
        assert_eq!(
            code(&decode_response_frame(&bad_key).unwrap()),
            ErrorCode::BadProof
        );
        // A disarm proof does not check in, a check-in proof does not disarm.
        let nonce = f.nonce().await;
        let proof = auth::sign_alert(&checkin, DISARM_PURPOSE, &EXPORTER, &nonce, &ALERT);
        let r = f
            .call(Request::CheckIn(CheckIn {
                alert: ALERT,
                proof,
            }))
            .await;
        assert_eq!(code(&r), ErrorCode::BadProof);
        // Another connection's proof, and a replayed one.
        let nonce = f.nonce().await;
        let proof = auth::sign_alert(&checkin, CHECKIN_PURPOSE, &[6; 32], &nonce, &ALERT);
        let r = f
            .call(Request::CheckIn(CheckIn {
                alert: ALERT,
                proof,
            }))
            .await;
        assert_eq!(code(&r), ErrorCode::BadProof);
        let nonce = f.nonce().await;
        let proof = auth::sign_alert(&checkin, CHECKIN_PURPOSE, &EXPORTER, &nonce, &ALERT);
        let once = f
            .call(Request::CheckIn(CheckIn {
                alert: ALERT,
                proof,
            }))
            .await;
        assert_eq!(once, Response::CheckedIn(CheckedIn));
        let twice = f
            .call(Request::CheckIn(CheckIn {
                alert: ALERT,
                proof,
            }))
            .await;
        assert_eq!(code(&twice), ErrorCode::BadProof);
        assert!(
            f.fetch(&ngo).await.is_empty(),
            "nothing released by any of it"
        );
    }

    #[tokio::test]
    async fn disarm_deletes_by_the_checkin_key_and_releases_by_the_duress_key() {
        let f = fixture();
        let ngo = SigningKey::from_bytes(&[1; 32]);
        let m = f.register(&ngo).await;
        let (checkin, duress) = keys();
        f.call(Request::Arm(arm(m))).await;
        let gone = f.alert_call(&checkin, DISARM_PURPOSE, ALERT).await;
        assert_eq!(gone, vigil_core::wire::encode(&Disarmed).unwrap());
        assert!(f.fetch(&ngo).await.is_empty());
        assert!(f.shared.alerts.is_empty().await);
        assert!(f.shared.store.alerts().await.unwrap().is_empty());
        // Armed again (a disarmed id is free), then "disarmed" under duress.
        f.call(Request::Arm(arm(m))).await;
        let forced = f.alert_call(&duress, DISARM_PURPOSE, ALERT).await;
        assert_eq!(forced, gone, "the same bytes whichever key signed");
        let noted = f.fetch_noted(&ngo).await;
        assert_eq!(noted.items.len(), 1);
        assert_eq!(noted.items[0].note.unwrap().reason, ReleaseReason::Duress);
    }

    #[tokio::test]
    async fn the_schedule_releases_a_missed_alert_with_its_note() {
        let f = fixture();
        let ngo = SigningKey::from_bytes(&[1; 32]);
        let m = f.register(&ngo).await;
        let mut a = arm(m);
        (a.every, a.grace) = (1, 1);
        f.call(Request::Arm(a)).await;
        let store = f.shared.store.clone();
        let released = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let now = crate::clock::now_unix();
                if f.shared.alerts.release_due(&*store, now).await > 0 {
                    break;
                }
            }
        })
        .await;
        assert!(released.is_ok(), "released after every + grace");
        let noted = f.fetch_noted(&ngo).await;
        let note = noted.items[0].note.unwrap();
        assert_eq!(note.reason, ReleaseReason::Missed);
        assert_eq!(note.last_checkin_at, 0);
    }
}

mod blobs {
    use super::*;
    use vigil_core::ids::BlobId;
    use vigil_core::wire::deposit_blobs::{BlobsStored, DepositBlobs};
    use vigil_core::wire::download::{BlobChunk, Download};
    use vigil_core::wire::quote::{Quote, Room};
    use vigil_core::wire::upload::{Upload, Uploaded};
    use vigil_core::wire::ErrorCode;

    impl Fixture {
        async fn upload(&self, blob: BlobId, total: u64, offset: u64, chunk: &[u8]) -> Response {
            let head = Upload {
                blob,
                total,
                offset,
                chunk_len: chunk.len(),
            };
            let mut body = Pieces::exact(chunk, 1000);
            let (reply, _) = call_with(self, Request::Upload(head), &mut body).await;
            decode_response_frame(&reply).unwrap()
        }

        async fn deposit_blobs(&self, m: MailboxId, d: u8, blobs: Vec<BlobId>) -> Response {
            let req = DepositBlobs {
                deposit: Deposit {
                    mailbox: m,
                    deposit_id: DepositId([d; 16]),
                    envelope_len: 3,
                },
                blobs,
            };
            let mut body = Buffered::new(b"env".to_vec());
            let (reply, _) = call_with(self, Request::DepositBlobs(req), &mut body).await;
            decode_response_frame(&reply).unwrap()
        }

        async fn fetch_flags(&self, k: &SigningKey, max_items: u32) -> fetch::Items {
            let m = MailboxId::for_key(&k.verifying_key().to_bytes());
            let nonce = self.nonce().await;
            let digest = Fetch::digest(max_items);
            let proof = auth::sign(k, fetch::PURPOSE, &EXPORTER, &nonce, &m, &digest);
            let req = Request::Fetch(Fetch {
                mailbox: m,
                max_items,
                proof,
            });
            match self.call(req).await {
                Response::Items(i) => i,
                other => panic!("{other:?}"),
            }
        }
    }

    fn refused(r: Response) -> (ErrorCode, String) {
        match r {
            Response::Error(e) => (e.code, e.message),
            other => panic!("{other:?}"),
        }
    }

    /// `blob_bytes_received` counts every chunk byte read, stored or not: a chunk cut off
    /// half-way counts what arrived of it, its resend counts again, and a chunk for an offset
    /// the blob already holds is answered without being read, so it counts nothing.
    #[tokio::test]
    async fn chunk_bytes_received_are_counted_once_each_time_they_arrive() {
        let f = fixture();
        let received = || {
            f.shared
                .counters
                .blob_bytes_received
                .load(Ordering::Relaxed)
        };
        let id = BlobId([3; 16]);
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        assert_eq!(
            f.upload(id, 5000, 0, &data[..2000]).await,
            Response::Uploaded(Uploaded { offset: 2000 })
        );
        assert_eq!(received(), 2000);

        let head = Upload {
            blob: id,
            total: 5000,
            offset: 2000,
            chunk_len: 2000,
        };
        let mut cut = Pieces::exact(&data[2000..4000], 500);
        cut.gone_after = Some(3);
        let _ = call_with(&f, Request::Upload(head), &mut cut).await;
        assert_eq!(received(), 3500, "the 1500 bytes that came before the cut");

        assert_eq!(
            f.upload(id, 5000, 1000, &data[1000..2000]).await,
            Response::Uploaded(Uploaded { offset: 2000 }),
            "held already: answered, not read"
        );
        assert_eq!(received(), 3500);
        assert_eq!(
            f.upload(id, 5000, 2000, &data[2000..]).await,
            Response::Uploaded(Uploaded { offset: 5000 })
        );
        assert_eq!(received(), 6500, "5000 stored, 1500 sent twice");
    }

    #[tokio::test]
    async fn a_quote_states_the_limits_in_one_line() {
        let mut f = fixture();
        let k = SigningKey::from_bytes(&[1; 32]);
        let m = f.register(&k).await;
        let quote = |total| {
            Request::Quote(Quote {
                mailboxes: vec![m],
                total,
            })
        };
        match f.call(quote(1000)).await {
            Response::Room(Room {
                max_report_bytes,
                left,
            }) => {
                assert_eq!(max_report_bytes, DEFAULT_MAX_REPORT_BYTES);
                assert_eq!(left, vec![Quota::default().max_bytes]);
            }
            other => panic!("{other:?}"),
        }
        let (code, msg) = refused(f.call(quote(3 << 30)).await);
        assert_eq!(code, ErrorCode::TooLarge);
        assert_eq!(msg, "the relay takes at most 2 GiB per report");
        f.shared.max_report_bytes = u64::MAX;
        let (code, _) = refused(f.call(quote(Quota::default().max_bytes + 1)).await);
        assert_eq!(code, ErrorCode::QuotaExceeded);
        let unknown = Request::Quote(Quote {
            mailboxes: vec![m, MailboxId([9; 32])],
            total: 1,
        });
        assert_eq!(refused(f.call(unknown).await).0, ErrorCode::UnknownMailbox);
    }

    #[tokio::test]
    async fn blobs_upload_deposit_fetch_download_and_go_with_the_last_ack() {
        let f = fixture();
        let (k1, k2) = (
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
        );
        let (m1, m2) = (f.register(&k1).await, f.register(&k2).await);
        let id = BlobId([7; 16]);
        let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let up = |offset| Response::Uploaded(Uploaded { offset });
        assert_eq!(f.upload(id, 5000, 0, b"").await, up(0));
        assert_eq!(f.upload(id, 5000, 0, &data[..2000]).await, up(2000));
        assert_eq!(f.upload(id, 5000, 1000, &data[1000..2000]).await, up(2000));
        assert_eq!(
            refused(f.upload(id, 4000, 2000, &data[2000..3000]).await).0,
            ErrorCode::Malformed
        );
        assert_eq!(
            refused(f.upload(BlobId([1; 16]), 3 << 30, 0, b"x").await).0,
            ErrorCode::TooLarge
        );
        let (code, _) = refused(f.deposit_blobs(m1, 1, vec![id]).await);
        assert_eq!(code, ErrorCode::UnknownBlob, "not complete yet");
        assert_eq!(f.upload(id, 5000, 2000, &data[2000..]).await, up(5000));
        let stored = |duplicate| Response::BlobsStored(BlobsStored { duplicate });
        assert_eq!(f.deposit_blobs(m1, 1, vec![id]).await, stored(false));
        assert_eq!(f.deposit_blobs(m1, 1, vec![id]).await, stored(true));
        assert_eq!(f.deposit_blobs(m2, 1, vec![id]).await, stored(false));
        // Without the flag, today's answer; with it, the blob list.
        let plain = f.fetch_flags(&k1, 10).await;
        assert!(!plain.with_blobs && plain.items[0].blobs.is_empty());
        let full = f
            .fetch_flags(&k1, 10 | fetch::WITH_BLOBS | fetch::WITH_NOTES)
            .await;
        assert!(full.with_blobs && full.with_notes);
        assert_eq!(full.items[0].envelope, b"env");
        assert_eq!(
            (full.items[0].blobs[0].id, full.items[0].blobs[0].len),
            (id, 5000)
        );
        // Download in two ranges.
        let mut got = Vec::new();
        for (offset, len) in [(0u64, 3000u32), (3000, 2000)] {
            match f
                .call(Request::Download(Download {
                    blob: id,
                    offset,
                    len,
                }))
                .await
            {
                Response::BlobChunk(BlobChunk { bytes }) => got.extend(bytes),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, data);
        let past = Request::Download(Download {
            blob: id,
            offset: 4000,
            len: 1001,
        });
        assert_eq!(refused(f.call(past).await).0, ErrorCode::Malformed);
        // The last ack deletes the blob.
        let ids: Vec<ItemId> = full.items.iter().map(|i| i.id).collect();
        f.ack(&k1, ids).await;
        let ids: Vec<ItemId> = f.fetch(&k2).await.iter().map(|i| i.id).collect();
        f.ack(&k2, ids).await;
        let gone = Request::Download(Download {
            blob: id,
            offset: 0,
            len: 1,
        });
        assert_eq!(refused(f.call(gone).await).0, ErrorCode::UnknownBlob);
    }
}
