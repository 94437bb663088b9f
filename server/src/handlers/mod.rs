//! One file per request, routed from the wire protocol's one table (`vigil_core::wire::table`):
//! adding a line there and a file here is all the relay needs for a new request.
//!
//! A handler gets the decoded request, the request's payload as a [`BodySource`] (empty for
//! every request but a deposit), and a [`ReplySink`] to write its answer to; [`handle`] turns a
//! refusal into the Error response. Handlers see no network: the listener gives them the QUIC
//! stream behind these two traits, tests give them memory (see `tests.rs`).

use crate::alerts::AlertSchedule;
use crate::body::{BodyError, BodySource, BoxFuture};
use crate::store::space::SpaceGuard;
use crate::store::{Store, StoreError};
use crate::waiters::Waiters;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use vigil_core::ids::{AlertId, MailboxId};
use vigil_core::wire::auth::{self, Authenticated, ChallengeSet, Claim};
use vigil_core::wire::limits::EXPORTER_LEN;
use vigil_core::wire::{encode, ErrorCode, Framed, Refusal, Request, WireError};
use vigil_core::wire::{Proof, Purpose};

/// Default of the `max_report_bytes` setting: 2 GiB, a long phone video.
pub const DEFAULT_MAX_REPORT_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// State shared by every connection.
pub struct Shared {
    /// Where mailboxes and items live.
    pub store: Arc<dyn Store>,
    /// Most bytes one report may take (its blobs and envelope): the `max_report_bytes` setting.
    pub max_report_bytes: u64,
    /// Fetch responses being written at once. Each holds a store read buffer and the QUIC send
    /// buffer of its connection until its last byte is written, so this bounds response memory
    /// the way the request budget bounds request memory.
    pub fetch_slots: tokio::sync::Semaphore,
    /// Closes the gate for deposits and registrations when the disk is (nearly) full.
    pub space: Arc<SpaceGuard>,
    /// Counters for `stats` (no ids, no addresses).
    pub counters: Arc<Counters>,
    /// Deposits refused per full mailbox, for the mailbox's `status`.
    pub full_refusals: FullRefusals,
    /// When each armed check-in alert is released; every change to an alert goes through it.
    pub alerts: Arc<AlertSchedule>,
    /// Who waits for which mailbox (Wait), woken once a deposit there is durable.
    pub waiters: Arc<Waiters>,
    /// Longest lifetime granted to a mailbox registered with one, in days: the
    /// `max_mailbox_lifetime_days` setting.
    pub max_mailbox_lifetime_days: u16,
}

/// How many deposits each mailbox refused because it was full, since its owner last asked
/// (`status`) or the relay started. Counting from the last question means a flood is reported
/// once, to whoever asked, and not again at every fetch after the mailbox was emptied.
///
/// Kept in memory only: a seized relay's disk holds no record of who was flooded when. Only
/// registered mailboxes are ever counted (a deposit into an unknown mailbox is refused before
/// its quota is checked), and the map is bounded: past [`FullRefusals::MAX_MAILBOXES`] new
/// mailboxes are not counted, which errs towards silence, never towards memory.
#[derive(Debug, Default)]
pub struct FullRefusals {
    by_mailbox: Mutex<std::collections::HashMap<MailboxId, u64>>,
}

impl FullRefusals {
    /// Most mailboxes counted at once.
    pub const MAX_MAILBOXES: usize = 65_536;

    /// Count one refusal for `mailbox`.
    pub(crate) fn note(&self, mailbox: MailboxId) {
        let Ok(mut m) = self.by_mailbox.lock() else {
            return;
        };
        if let Some(n) = m.get_mut(&mailbox) {
            *n = n.saturating_add(1);
        } else if m.len() < Self::MAX_MAILBOXES {
            m.insert(mailbox, 1);
        }
    }

    /// Refusals counted for `mailbox` since the last call, which starts the count again.
    pub fn take(&self, mailbox: MailboxId) -> u64 {
        self.by_mailbox
            .lock()
            .map(|mut m| m.remove(&mailbox).unwrap_or(0))
            .unwrap_or(0)
    }
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
    pub refused: [AtomicU64; 13],
    /// Blob chunks written.
    pub chunks_uploaded: AtomicU64,
    /// Bytes of blob chunks read from clients, whether or not they were stored (a chunk cut
    /// off half-way counts what arrived of it). Beyond the blobs' lengths: bytes sent twice.
    pub blob_bytes_received: AtomicU64,
    /// Blob chunks read out.
    pub chunks_downloaded: AtomicU64,
}

impl Counters {
    /// Count a refusal.
    pub(crate) fn refused(&self, code: ErrorCode) {
        let i = usize::from(code.to_u16());
        let i = if i < self.refused.len() { i } else { 0 };
        self.refused[i].fetch_add(1, Ordering::Relaxed);
    }
}

impl Shared {
    /// Fetches answered at once by default.
    pub const DEFAULT_FETCH_SLOTS: usize = 8;

    /// Shared state with the default number of fetch slots and no disk-space gate.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            max_report_bytes: DEFAULT_MAX_REPORT_BYTES,
            fetch_slots: tokio::sync::Semaphore::new(Self::DEFAULT_FETCH_SLOTS),
            space: Arc::new(SpaceGuard::unlimited()),
            counters: Arc::new(Counters::default()),
            full_refusals: FullRefusals::default(),
            alerts: Arc::new(AlertSchedule::default()),
            waiters: Arc::new(Waiters::default()),
            max_mailbox_lifetime_days: crate::config::DEFAULT_MAX_MAILBOX_LIFETIME_DAYS,
        }
    }

    /// Grant mailboxes registered with a lifetime at most `days` days.
    pub fn with_max_mailbox_lifetime(mut self, days: u16) -> Self {
        self.max_mailbox_lifetime_days = days.max(1);
        self
    }

    /// Hold at most `per_mailbox` waiters per mailbox, each at most `max_wait_secs`.
    pub fn with_waiters(mut self, per_mailbox: usize, max_wait_secs: u16) -> Self {
        self.waiters = Arc::new(Waiters::new(per_mailbox, max_wait_secs));
        self
    }

    /// Use `space` as the disk-space gate.
    pub fn with_space(mut self, space: Arc<SpaceGuard>) -> Self {
        self.space = space;
        self
    }

    /// Take at most `n` bytes per report.
    pub fn with_max_report_bytes(mut self, n: u64) -> Self {
        self.max_report_bytes = n;
        self
    }

    /// Answer `n` fetches at once.
    pub fn with_fetch_slots(mut self, n: usize) -> Self {
        self.fetch_slots = tokio::sync::Semaphore::new(n.max(1));
        self
    }

    /// Refuse if the disk-space gate is closed.
    fn check_space(&self) -> Result<(), Refusal> {
        if self.space.accepting() {
            Ok(())
        } else {
            Err(refusal::storage_full())
        }
    }

    /// The refusal for a store error; a store out of room also closes the space gate.
    fn store_failed(&self, e: StoreError) -> Failure {
        match e {
            StoreError::UnknownMailbox => refusal::unknown_mailbox().into(),
            StoreError::QuotaExceeded => Refusal::new(
                ErrorCode::QuotaExceeded,
                "this NGO's mailbox is full until the NGO fetches its reports",
            )
            .into(),
            StoreError::AlertConflict => Refusal::new(
                ErrorCode::Malformed,
                "an alert with this id is armed with other content; arm it under a new id",
            )
            .into(),
            StoreError::InProgress => Refusal::new(
                ErrorCode::Busy,
                "this report is still arriving on another connection; try again shortly",
            )
            .into(),
            StoreError::BlobConflict { total } => Refusal::new(
                ErrorCode::Malformed,
                format!(
                    "this attachment was started with a total of {total} bytes; upload it under a new id"
                ),
            )
            .into(),
            StoreError::BlobIncomplete => Refusal::new(
                ErrorCode::UnknownBlob,
                "an attachment of this report is not completely uploaded; finish its upload first",
            )
            .into(),
            StoreError::NoSpace(msg) => {
                tracing::error!(error = %msg, "store is out of space");
                self.space.note_no_space(&msg);
                refusal::storage_full().into()
            }
            StoreError::Body(e) => Failure::from_body(e),
            other @ (StoreError::Corrupt(_) | StoreError::Backend(_)) => {
                tracing::error!(error = %other, "storage failed");
                Refusal::new(
                    ErrorCode::StorageFailed,
                    "relay storage failed; try again later",
                )
                .into()
            }
        }
    }

    /// The key registered for `mailbox`, or UnknownMailbox.
    async fn registered_key(&self, mailbox: MailboxId) -> Result<[u8; 32], Failure> {
        self.store
            .mailbox_key(mailbox)
            .await
            .map_err(|e| self.store_failed(e))?
            .ok_or_else(|| refusal::unknown_mailbox().into())
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

    /// Consume the claim's nonce and check its signature under `public_key`. The nonce is
    /// consumed first, so a proof is single use even when its signature is bad.
    fn check_proof(&self, public_key: &[u8; 32], claim: &Claim) -> Result<(), Refusal> {
        self.take_nonce(&claim.proof)?;
        if !auth::verify(public_key, &self.exporter, claim) {
            return Err(Refusal::new(
                ErrorCode::BadProof,
                "proof does not verify for this mailbox and connection",
            ));
        }
        Ok(())
    }
}

impl ConnState {
    /// Consume the proof's nonce: refused if it was not issued on this connection or was used.
    fn take_nonce(&self, proof: &Proof) -> Result<(), Refusal> {
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
        Ok(())
    }
}

/// Which of an alert's keys signed a check-in or disarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signer {
    /// The check-in key, of an alert checked in to every `every` seconds with `grace`.
    CheckIn {
        /// The alert's interval.
        every: u32,
        /// Its grace.
        grace: u32,
    },
    /// The duress key.
    Duress,
}

/// Stand-in keys an unknown alert id is verified against, so that it costs what a known one
/// does and is refused the same way (a prober learns nothing about which ids are armed).
fn stand_in_keys() -> &'static ([u8; 32], [u8; 32]) {
    static KEYS: std::sync::OnceLock<([u8; 32], [u8; 32])> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let k = |b| {
            ed25519_dalek::SigningKey::from_bytes(&[b; 32])
                .verifying_key()
                .to_bytes()
        };
        (k(1), k(2))
    })
}

/// What a handler works with.
pub(crate) struct Ctx<'a> {
    /// The relay.
    pub(crate) shared: &'a Shared,
    /// This connection.
    pub(crate) conn: &'a ConnState,
}

impl Ctx<'_> {
    /// Check a mailbox request's proof against the key registered for its mailbox: the one
    /// gate of every request that acts on a mailbox (fetch, ack, status). Register proves the
    /// key it carries instead.
    async fn authorise(&self, req: &impl Authenticated) -> Result<(), Failure> {
        let claim = req.claim();
        let key = self.shared.registered_key(claim.mailbox).await?;
        self.conn.check_proof(&key, &claim)?;
        Ok(())
    }

    /// Check a check-in's or disarm's proof: which of the alert's keys signed it. The gate of
    /// both requests.
    ///
    /// The nonce is consumed first (single use, as for every proof). Then the signature is
    /// checked against *both* keys, always, so the time taken does not tell a duress proof from
    /// a normal one; an unknown alert id is checked against stand-in keys and refused exactly as
    /// a bad signature is.
    async fn alert_signer(
        &self,
        alert: AlertId,
        proof: &Proof,
        purpose: Purpose,
    ) -> Result<Signer, Failure> {
        self.conn.take_nonce(proof)?;
        let keys =
            (self.shared.store.alert_keys(alert).await).map_err(|e| self.shared.store_failed(e))?;
        let (stand_in_checkin, stand_in_duress) = *stand_in_keys();
        let (checkin, duress) = keys.map_or((stand_in_checkin, stand_in_duress), |k| {
            (k.checkin, k.duress)
        });
        let exporter = &self.conn.exporter;
        let by_checkin = auth::verify_alert(&checkin, exporter, purpose, &alert, proof);
        let by_duress = auth::verify_alert(&duress, exporter, purpose, &alert, proof);
        match (keys, by_checkin, by_duress) {
            (Some(k), true, _) => Ok(Signer::CheckIn {
                every: k.every,
                grace: k.grace,
            }),
            (Some(_), false, true) => Ok(Signer::Duress),
            _ => Err(refusal::bad_alert_proof().into()),
        }
    }
}

/// Where a handler writes its answer: the QUIC stream (under a deadline), or memory in tests.
pub trait ReplySink: Send {
    /// Write the next bytes of the answer. Fails when the client is gone or reads too slowly.
    fn write<'a>(&'a mut self, bytes: &'a [u8]) -> BoxFuture<'a, Result<(), BodyError>>;

    /// Whether any byte of the answer was written (after that a refusal can no longer be sent).
    fn started(&self) -> bool;

    /// Completes when the client can no longer get the answer (it stopped the stream or lost
    /// the connection), so a request held open (Wait) gives its slot back at once. Never, where
    /// nothing tells (memory; TLS over TCP): such a request ends at its own deadline.
    fn gone(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::pending())
    }
}

impl ReplySink for Vec<u8> {
    fn write<'a>(&'a mut self, bytes: &'a [u8]) -> BoxFuture<'a, Result<(), BodyError>> {
        self.extend_from_slice(bytes);
        Box::pin(std::future::ready(Ok(())))
    }

    fn started(&self) -> bool {
        !self.is_empty()
    }
}

/// Write a whole response message.
async fn send<M: Framed>(reply: &mut dyn ReplySink, m: &M) -> Result<(), Failure> {
    let frame = encode(m).map_err(|e| {
        tracing::error!(error = %e, "could not encode a response");
        Failure::Refused(Refusal::new(ErrorCode::StorageFailed, "internal error"))
    })?;
    reply.write(&frame).await.map_err(|_| Failure::Abandoned)
}

/// Why a request got no normal answer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Refused before any answer byte was written: the client gets this Error response.
    Refused(Refusal),
    /// Nobody is left to answer, or an answer already begun cannot be completed: the stream is
    /// reset and the client retries.
    Abandoned,
}

impl From<Refusal> for Failure {
    fn from(r: Refusal) -> Self {
        Failure::Refused(r)
    }
}

impl Failure {
    /// A payload that could not be read.
    pub(crate) fn from_body(e: BodyError) -> Self {
        match e {
            BodyError::Gone => Failure::Abandoned,
            BodyError::TooSlow => refusal::too_slow().into(),
            BodyError::Truncated { needed } => refusal::from_wire(&WireError::Truncated {
                what: "request body",
                needed,
            })
            .into(),
            BodyError::Trailing => refusal::from_wire(&WireError::TrailingData { extra: 1 }).into(),
        }
    }
}

/// The relay's standard refusals.
pub(crate) mod refusal {
    use vigil_core::wire::{ErrorCode, Refusal, WireError};

    /// The disk is full or read-only.
    pub(crate) fn storage_full() -> Refusal {
        Refusal::new(
            ErrorCode::StorageFull,
            "relay disk is full; new reports are refused until space returns; try again later",
        )
    }

    /// A request body that did not arrive by its deadline.
    pub(crate) fn too_slow() -> Refusal {
        Refusal::new(
            ErrorCode::Busy,
            "request arrived too slowly; try again on a better link",
        )
    }

    /// Handling did not finish in time.
    pub(crate) fn overloaded() -> Refusal {
        Refusal::new(ErrorCode::Busy, "relay is overloaded; try again later")
    }

    /// A check-in or disarm whose proof does not verify, or for an alert that is not armed:
    /// one refusal for both, so a prober cannot tell armed ids from others.
    pub(crate) fn bad_alert_proof() -> Refusal {
        Refusal::new(
            ErrorCode::BadProof,
            "proof does not verify for this alert and connection",
        )
    }

    /// Nobody registered the mailbox.
    pub(crate) fn unknown_mailbox() -> Refusal {
        Refusal::new(ErrorCode::UnknownMailbox, "mailbox is not registered here")
    }

    /// A request that failed to decode.
    pub(crate) fn from_wire(e: &WireError) -> Refusal {
        Refusal::for_wire_error(e)
    }
}

/// What the listener checks for a request from its header alone, before it reads a byte of the
/// body. Each handler file declares its request's as `ADMISSION`, beside the code it guards, so
/// adding a request touches no listener code and cannot forget the question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admission {
    /// Which per-source-address rate the request counts against, if any.
    pub rate: Option<Rate>,
    /// Refused while the disk-space gate is closed (it writes to the store).
    pub needs_space: bool,
    /// Its body ends in an envelope, bounded by the relay's own `max_envelope_bytes` (below the
    /// protocol's maximum, which the header check applies to every request).
    pub carries_envelope: bool,
}

impl Admission {
    /// No check beyond the header's: the request costs little, or a proof guards it.
    pub const OPEN: Admission = Admission {
        rate: None,
        needs_space: false,
        carries_envelope: false,
    };
}

/// The per-source-address rates (token buckets, held in memory only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rate {
    /// `deposits_per_minute`, `deposit_burst`.
    Deposit,
    /// `registrations_per_hour`.
    Register,
    /// `fetches_per_minute`, `fetch_burst`: fetches and status questions, what an NGO polls.
    Fetch,
    /// `transfer_chunks_per_minute`, `transfer_burst`: attachment chunks up and down.
    Transfer,
}

impl Rate {
    /// The refusal's message when an address is over this rate.
    pub fn refusal_message(self) -> &'static str {
        match self {
            Rate::Deposit => "too many deposits from your network; try again in a minute",
            Rate::Register => "too many registrations from your network; try again in an hour",
            Rate::Fetch => "too many fetches from your network; try again in a minute",
            Rate::Transfer => {
                "too many attachment transfers from your network; try again in a minute"
            }
        }
    }
}

/// Declares one handler module per table line and routes each request to it.
macro_rules! handlers {
    ($( $(#[$doc:meta])* $module:ident : $Req:ident = $rb:literal => $Resp:ident = $sb:literal ; )*) => {
        $( mod $module; )*

        /// What the listener checks before reading the body of a request of type `kind`.
        pub fn admission(kind: vigil_core::wire::RequestType) -> Admission {
            match kind {
                $( vigil_core::wire::RequestType::$Req => $module::ADMISSION, )*
            }
        }

        /// Hand a decoded request to its handler file.
        async fn route(
            cx: &Ctx<'_>,
            req: Request,
            body: &mut dyn BodySource,
            reply: &mut dyn ReplySink,
        ) -> Result<(), Failure> {
            match req {
                $( Request::$Req(r) => $module::handle(cx, r, body, reply).await, )*
            }
        }
    };
}
vigil_core::for_each_exchange!(handlers);

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered normally.
    Answered,
    /// Answered with an Error response of this code.
    Refused(ErrorCode),
    /// Not answered: the client went away, or an answer already begun could not be completed.
    /// The caller resets the stream.
    Abandoned,
}

/// Handle one request: route it, and write a refusal if it was refused before any answer.
pub async fn handle(
    shared: &Shared,
    conn: &ConnState,
    req: Request,
    body: &mut dyn BodySource,
    reply: &mut dyn ReplySink,
) -> Outcome {
    let cx = Ctx { shared, conn };
    match route(&cx, req, body, reply).await {
        Ok(()) => Outcome::Answered,
        Err(Failure::Refused(r)) if !reply.started() => refuse(shared, r, reply).await,
        Err(Failure::Refused(r)) => {
            tracing::warn!(code = %r.code, "a request failed after its answer had begun");
            Outcome::Abandoned
        }
        Err(Failure::Abandoned) => Outcome::Abandoned,
    }
}

/// Count and write a refusal.
pub(crate) async fn refuse(shared: &Shared, r: Refusal, reply: &mut dyn ReplySink) -> Outcome {
    shared.counters.refused(r.code);
    tracing::debug!(code = %r.code, "request refused");
    match send(reply, &r).await {
        Ok(()) => Outcome::Refused(r.code),
        Err(_) => Outcome::Abandoned,
    }
}

#[cfg(test)]
mod tests;
