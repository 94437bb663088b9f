//! One file per request. [`handle`] dispatches a decoded request and always produces a response
//! frame: a refused request gets an Error response, never a dropped stream.
//!
//! Handlers see no network: they get the decoded request, this connection's [`ConnState`]
//! (exporter and outstanding nonces) and the [`Shared`] relay state, so they are tested in
//! memory (see the tests below).

mod ack;
mod challenge;
mod deposit;
mod fetch;
mod register;

use crate::store::flusher::Flusher;
use crate::store::space::SpaceGuard;
use crate::store::{Store, StoreError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use vigil_core::ids::MailboxId;
use vigil_core::wire::auth::{self, ChallengeSet};
use vigil_core::wire::limits::{DEPOSIT_FIXED_LEN, EXPORTER_LEN};
use vigil_core::wire::{self, ErrorCode, FrameType, Request, Response, WireError};

/// State shared by every connection.
pub struct Shared {
    /// Where mailboxes and items live.
    pub store: Arc<dyn Store>,
    /// The single place that makes writes durable; "stored" waits on it.
    pub flusher: Flusher,
    /// Fetches running at once. Each may hold up to `MAX_FETCH_RESPONSE_BYTES` in memory, so
    /// this bounds response memory the way the request budget bounds request memory.
    pub fetch_slots: tokio::sync::Semaphore,
    /// Closes the gate for deposits and registrations when the disk is (nearly) full.
    pub space: Arc<SpaceGuard>,
    /// Largest envelope accepted (`limits.max_envelope_bytes`).
    pub max_envelope: usize,
    /// Counters for `stats` (no ids, no addresses).
    pub counters: Arc<Counters>,
}

/// Request counters. Counts only: nothing identifies a mailbox, an item or a client.
#[derive(Debug, Default)]
pub struct Counters {
    /// Deposits newly stored.
    pub deposits_stored: AtomicU64,
    /// Deposits that were retries of a stored one.
    pub deposits_duplicate: AtomicU64,
    /// Successful registrations (including repeats).
    pub registrations: AtomicU64,
    /// Fetch requests answered with items (possibly none).
    pub fetches: AtomicU64,
    /// Items deleted by acks.
    pub items_acked: AtomicU64,
    /// Refused requests by wire error code (index = code, 0 = unknown codes).
    pub refused: [AtomicU64; 12],
}

impl Counters {
    fn refused(&self, code: ErrorCode) {
        let i = usize::from(code.to_u16());
        let i = if i < self.refused.len() { i } else { 0 };
        self.refused[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Count a refusal made outside the handlers (by the listener).
    pub(crate) fn count_refusal(&self, code: ErrorCode) {
        self.refused(code);
    }
}

impl Shared {
    /// Fetches allowed at once by default (8 × 32 MiB of responses at most).
    pub const DEFAULT_FETCH_SLOTS: usize = 8;

    /// Shared state with the default number of fetch slots, no disk-space gate and the
    /// protocol's envelope maximum.
    pub fn new(store: Arc<dyn Store>, flusher: Flusher) -> Self {
        Self {
            store,
            flusher,
            fetch_slots: tokio::sync::Semaphore::new(Self::DEFAULT_FETCH_SLOTS),
            space: Arc::new(SpaceGuard::unlimited()),
            max_envelope: vigil_core::wire::limits::MAX_ENVELOPE_LEN,
            counters: Arc::new(Counters::default()),
        }
    }

    /// Use `space` as the disk-space gate.
    pub fn with_space(mut self, space: Arc<SpaceGuard>) -> Self {
        self.space = space;
        self
    }

    /// Allow `n` fetches at once and envelopes up to `max_envelope` bytes.
    pub fn with_limits(mut self, fetch_slots: usize, max_envelope: usize) -> Self {
        self.fetch_slots = tokio::sync::Semaphore::new(fetch_slots.max(1));
        self.max_envelope = max_envelope;
        self
    }

    /// Refuse if the disk-space gate is closed.
    fn check_space(&self) -> Result<(), Refusal> {
        if self.space.accepting() {
            Ok(())
        } else {
            Err(Refusal::storage_full())
        }
    }
}

/// State of one connection.
pub struct ConnState {
    /// TLS exporter output of this connection, bound into every proof.
    exporter: [u8; EXPORTER_LEN],
    /// Nonces issued on this connection and not yet used.
    challenges: Mutex<ChallengeSet>,
}

impl ConnState {
    /// New state for a connection whose TLS exporter produced `exporter`.
    pub fn new(exporter: [u8; EXPORTER_LEN]) -> Self {
        Self {
            exporter,
            challenges: Mutex::new(ChallengeSet::new()),
        }
    }

    /// Consume the request's nonce and check its signature under `public_key`. The nonce is
    /// consumed first, so a proof is single use even when its signature is bad.
    fn check_proof(&self, public_key: &[u8; 32], req: &Request<'_>) -> Result<(), Refusal> {
        let Some((_, _, _, proof)) = auth::claim(req) else {
            return Err(Refusal::new(
                ErrorCode::BadProof,
                "request carries no proof",
            ));
        };
        let known = match self.challenges.lock() {
            Ok(mut set) => set.take(&proof.nonce),
            Err(_) => false,
        };
        if !known {
            return Err(Refusal::new(
                ErrorCode::BadProof,
                "unknown or used nonce; ask for a new challenge",
            ));
        }
        if !auth::verify(public_key, &self.exporter, req) {
            return Err(Refusal::new(
                ErrorCode::BadProof,
                "proof does not verify for this mailbox and connection",
            ));
        }
        Ok(())
    }
}

/// A refused request: what the client is told.
#[derive(Debug)]
pub(crate) struct Refusal {
    code: ErrorCode,
    retryable: bool,
    message: &'static str,
}

impl Refusal {
    pub(crate) fn new(code: ErrorCode, message: &'static str) -> Self {
        Self {
            code,
            retryable: code.default_retryable(),
            message,
        }
    }

    /// The disk is full or read-only.
    pub(crate) fn storage_full() -> Self {
        Self::new(
            ErrorCode::StorageFull,
            "relay disk is full; new reports are refused until space returns; try again later",
        )
    }

    /// A request body that did not arrive by its deadline.
    pub(crate) fn too_slow() -> Self {
        Self::new(
            ErrorCode::Busy,
            "request arrived too slowly; try again on a better link",
        )
    }

    /// A per-address rate limit.
    pub(crate) fn rate_limited(message: &'static str) -> Self {
        Self::new(ErrorCode::RateLimited, message)
    }

    /// The wire code.
    pub(crate) fn code(&self) -> ErrorCode {
        self.code
    }

    pub(crate) fn from_wire(e: &WireError) -> Self {
        let message = match e {
            WireError::UnsupportedVersion { .. } => "unsupported protocol version",
            WireError::TooLarge { .. } => "frame exceeds the size limit",
            WireError::TooMany { .. } => "too many entries in the request",
            WireError::Truncated { .. } => "frame is truncated",
            WireError::TrailingData { .. } => "unexpected bytes after the request",
            WireError::UnknownType(_) | WireError::UnexpectedType(_) => "unknown request type",
            _ => "malformed request",
        };
        Self::new(ErrorCode::for_wire_error(e), message)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        encode(&Response::Error {
            code: self.code,
            retryable: self.retryable,
            message: self.message,
        })
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnknownMailbox => {
                Refusal::new(ErrorCode::UnknownMailbox, "mailbox is not registered here")
            }
            StoreError::QuotaExceeded => Refusal::new(ErrorCode::QuotaExceeded, "mailbox is full"),
            StoreError::InProgress => Refusal::new(
                ErrorCode::Busy,
                "this report is still arriving on another connection; try again shortly",
            ),
            StoreError::NoSpace(e) => {
                tracing::error!(error = %e, "store is out of space");
                Refusal::storage_full()
            }
            other => {
                tracing::error!(error = %other, "storage failed");
                Refusal::new(
                    ErrorCode::StorageFailed,
                    "relay storage failed; try again later",
                )
            }
        }
    }
}

/// Encode a response. Our own responses are built within the limits, so encoding cannot fail;
/// should it, the client gets a storage error instead of a panic.
fn encode(resp: &Response<'_>) -> Vec<u8> {
    match resp.encode() {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "could not encode a response");
            Response::Error {
                code: ErrorCode::StorageFailed,
                retryable: true,
                message: "internal error",
            }
            .encode()
            .unwrap_or_default()
        }
    }
}

/// Deposits whose request body is at most this many bytes are written to the store on the
/// request's own task instead of a blocking thread. Writing a few KiB into sled is an
/// in-memory append (tens of microseconds, no file I/O: sled writes its log buffers from its
/// own threads, and durability comes from the flusher's group commit), while a
/// `spawn_blocking` round trip costs a thread wake-up and two context switches per request,
/// which on a small machine was the largest cost of the relay's ingest path after QUIC
/// itself. Kept far below sled's blob threshold (a quarter of its 512 KiB segment), above
/// which sled writes the value to its own file synchronously.
pub(crate) const INLINE_STORE_MAX_BODY: usize = 16 * 1024;

tokio::task_local! {
    /// Set for the extent of one small deposit: [`blocking`] then runs the store call inline.
    static INLINE_STORE: bool;
}

/// Run `f` on the store in a blocking thread, or inline on this task when the request was
/// marked small (see [`INLINE_STORE_MAX_BODY`]).
async fn blocking<T: Send + 'static>(
    shared: &Shared,
    f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Refusal> {
    if INLINE_STORE.try_with(|inline| *inline).unwrap_or(false) {
        return f(shared.store.as_ref()).map_err(|e| no_space(shared, e));
    }
    let store = shared.store.clone();
    match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
        Ok(r) => r.map_err(|e| no_space(shared, e)),
        Err(e) => Err(Refusal::from(StoreError::Backend(format!(
            "store task failed: {e}"
        )))),
    }
}

/// Wait for the group commit.
async fn durable(shared: &Shared) -> Result<(), Refusal> {
    shared
        .flusher
        .flush()
        .await
        .map_err(|e| no_space(shared, e))
}

/// Close the space gate when the store ran out of room, then convert.
fn no_space(shared: &Shared, e: StoreError) -> Refusal {
    if let StoreError::NoSpace(msg) = &e {
        shared.space.note_no_space(msg);
    }
    Refusal::from(e)
}

/// Look up the key registered for `mailbox`.
async fn registered_key(shared: &Shared, mailbox: MailboxId) -> Result<[u8; 32], Refusal> {
    blocking(shared, move |s| s.mailbox_key(&mailbox))
        .await?
        .ok_or_else(|| Refusal::new(ErrorCode::UnknownMailbox, "mailbox is not registered here"))
}

/// Unix seconds now; a clock before 1970 counts as 0.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Handle one request; returns the encoded response frame.
pub async fn handle(shared: &Shared, conn: &ConnState, req: Request<'_>) -> Vec<u8> {
    let result = match &req {
        Request::Challenge => Ok(challenge::apply(conn)),
        Request::Register { .. } => register::apply(shared, conn, &req).await,
        Request::Deposit {
            mailbox,
            deposit_id,
            envelope,
        } => deposit::apply(shared, *mailbox, *deposit_id, envelope.to_vec(), 0).await,
        Request::Fetch { .. } => fetch::apply(shared, conn, &req).await,
        Request::Ack { .. } => ack::apply(shared, conn, &req).await,
    };
    respond(shared, result)
}

/// Decode and handle a request body whose header was already checked; returns the encoded
/// response frame. Deposits are handed to the store without copying the envelope again.
pub async fn handle_body(
    shared: &Shared,
    conn: &ConnState,
    frame_type: FrameType,
    body: Vec<u8>,
) -> Vec<u8> {
    let (mailbox, deposit_id) = match wire::decode_request_body(frame_type, &body) {
        Err(e) => return respond(shared, Err(Refusal::from_wire(&e))),
        Ok(Request::Deposit {
            mailbox,
            deposit_id,
            ..
        }) => (mailbox, deposit_id),
        Ok(req) => return handle(shared, conn, req).await,
    };
    let inline = body.len() <= INLINE_STORE_MAX_BODY;
    let result = INLINE_STORE
        .scope(
            inline,
            deposit::apply(shared, mailbox, deposit_id, body, DEPOSIT_FIXED_LEN),
        )
        .await;
    respond(shared, result)
}

/// Where a streamed request body comes from: the QUIC stream in the relay, a buffer in tests.
pub trait BodySource: Send {
    /// One piece of body, handed on to a writer thread as it is.
    type Chunk: AsRef<[u8]> + Send + 'static;

    /// The next piece of the body, at most `max` bytes; `Ok(None)` once the peer finished
    /// sending.
    fn next_chunk(
        &mut self,
        max: usize,
    ) -> impl std::future::Future<Output = Result<Option<Self::Chunk>, BodyError>> + Send;
}

/// A body that cannot be read further.
#[derive(Debug)]
pub enum BodyError {
    /// The stream was reset or the connection lost: nobody is left to answer.
    Gone,
    /// The body did not arrive by its deadline (a trickling client holds relay resources).
    TooSlow,
}

/// The answer to a body that arrived too slowly, counted as a refusal.
pub fn too_slow(shared: &Shared) -> Vec<u8> {
    respond(shared, Err(Refusal::too_slow()))
}

/// Handle a deposit whose envelope (`len` bytes, after the mailbox and deposit id in `head`)
/// is still to be read from `body`, as [`deposit::is_large`] decides. Returns the encoded
/// response frame, or `None` if the client went away.
pub async fn handle_streamed_deposit<B: BodySource>(
    shared: &Shared,
    head: &[u8; DEPOSIT_FIXED_LEN],
    len: usize,
    body: &mut B,
) -> Option<Vec<u8>> {
    let (mailbox, deposit_id) = wire::decode_deposit_head(head);
    match deposit::apply_streamed(shared, mailbox, deposit_id, len, body).await {
        Ok(None) => None,
        Ok(Some(frame)) => Some(frame),
        Err(refusal) => Some(respond(shared, Err(refusal))),
    }
}

/// Whether a deposit whose envelope is `len` bytes is streamed to the store.
pub fn is_streamed_deposit(len: usize) -> bool {
    deposit::is_large(len)
}

/// Request memory a streamed deposit holds at most.
pub const STREAMED_DEPOSIT_MEMORY: usize = deposit::STREAMED_DEPOSIT_MEMORY;

fn respond(shared: &Shared, result: Result<Vec<u8>, Refusal>) -> Vec<u8> {
    match result {
        Ok(frame) => frame,
        Err(refusal) => {
            shared.counters.refused(refusal.code);
            tracing::debug!(code = %refusal.code, "request refused");
            refusal.encode()
        }
    }
}

#[cfg(test)]
mod tests;

/// The two ways a deposit reaches the store: small bodies inline on the request's task, larger
/// ones through `spawn_blocking`. Both must store, answer only after the flush, and recognise
/// a repeat.
#[cfg(test)]
mod inline_store_tests {
    use super::*;
    use crate::store::{Quota, SledStore};
    use vigil_core::ids::DepositId;
    use vigil_core::wire::decode_response;

    async fn deposit(shared: &Shared, conn: &ConnState, m: MailboxId, id: u8, len: usize) {
        let frame = Request::Deposit {
            mailbox: m,
            deposit_id: DepositId([id; 16]),
            envelope: &vec![id; len],
        }
        .encode()
        .unwrap();
        let mut h = [0u8; wire::limits::FRAME_HEADER_LEN];
        h.copy_from_slice(&frame[..wire::limits::FRAME_HEADER_LEN]);
        let header = wire::decode_request_header(&h).unwrap();
        let body = frame[wire::limits::FRAME_HEADER_LEN..].to_vec();
        assert_eq!(
            body.len() <= INLINE_STORE_MAX_BODY,
            len < INLINE_STORE_MAX_BODY
        );
        for duplicate in [false, true] {
            let r = handle_body(shared, conn, header.frame_type, body.clone()).await;
            assert_eq!(decode_response(&r).unwrap(), Response::Stored { duplicate });
        }
    }

    #[tokio::test]
    async fn small_and_large_deposits_are_stored_and_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            SledStore::open(
                &dir.path().join("db"),
                std::time::Duration::from_secs(3600),
                Quota::default(),
            )
            .unwrap(),
        );
        let m = MailboxId::for_key(&[1; 32]);
        store.register_mailbox(&m, &[1; 32]).unwrap();
        let (flusher, _task) = Flusher::spawn(store.clone());
        let shared = Shared::new(store, flusher);
        let conn = ConnState::new([5; 32]);
        deposit(&shared, &conn, m, 1, 4096).await;
        deposit(&shared, &conn, m, 2, 4 * INLINE_STORE_MAX_BODY).await;
        let st = shared.flusher.stats();
        assert!(st.waiters >= 4 && st.flushes >= 1, "{st:?}");
        assert_eq!(shared.counters.deposits_stored.load(Ordering::Relaxed), 2);
        assert_eq!(
            shared.counters.deposits_duplicate.load(Ordering::Relaxed),
            2
        );
    }
}
