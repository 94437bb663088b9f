//! QUIC client for the relay: connect with a pinned certificate, then one request per stream.
//!
//! The relay's certificate is self-signed; what makes it trusted is its SHA-256 fingerprint on
//! the NGO's signed recipient card. [`RelayClient::connect`] accepts exactly that certificate and
//! nothing else; [`RelayClient::connect_pinned`] accepts any of a small set (the current and the
//! next certificate while the relay operator rotates it, see `docs/operations.md`), verifying the TLS 1.3 handshake signature with ring. TLS session resumption and
//! 0-RTT are off, and no SNI is sent, so the relay cannot link one reporter's connections by
//! session tickets.
//!
//! Mailbox operations (register, fetch, ack) carry a proof of possession of the mailbox key
//! bound to this connection (`vigil_core::wire::auth`): the client asks for a nonce, signs it
//! together with the TLS exporter, and sends the proof with the request.

use ed25519_dalek::SigningKey;
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Connection, Endpoint, IdleTimeout, TransportConfig, VarInt};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vigil_core::ids::{CertFingerprint, DepositId, ItemId, MailboxId};
use vigil_core::wire::auth::{self, Purpose};
use vigil_core::wire::limits::{
    EXPORTER_LABEL, EXPORTER_LEN, FRAME_HEADER_LEN, MAX_ACK_IDS, MAX_ENVELOPE_LEN,
    MAX_ITEMS_PER_FETCH, NONCE_LEN,
};
use vigil_core::wire::{self, ErrorCode, Proof, Request, Response, WireError, ALPN};

/// How long to wait for the QUIC handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one small request may take; larger requests get [`MIN_UPLOAD_RATE`] on top.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Slowest upload still waited for (bytes per second) when bounding a request's total time. A
/// dead link is noticed sooner, by the idle timeout; this bound only catches a relay that keeps
/// the connection alive but never answers.
pub const MIN_UPLOAD_RATE: u64 = 4 * 1024;
/// Give up on a connection that has heard nothing from the relay for this long. Loss bursts on
/// mobile links last seconds; a link silent this long is gone, and a new connection (after a
/// backoff) is the faster way back. The relay may negotiate a shorter one.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// Server name given to TLS. Not sent (SNI is off) and not checked (the certificate is pinned).
const SERVER_NAME: &str = "vigil-relay";

/// Why a relay operation failed. Messages say what happens to the user's data and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The relay address is not `host:port` or does not resolve.
    #[error(
        "relay address {0:?} is not a reachable host:port; check the address on the recipient card"
    )]
    BadAddress(String),
    /// No QUIC connection could be made (network down, blocked, relay offline).
    #[error("cannot reach the relay at {addr} ({reason}); the report stays in the outbox; try again later or from another network")]
    Unreachable {
        /// The address tried.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// The relay presented a certificate other than the pinned one(s). `expected` is the card's
    /// current fingerprint; a card announcing a next certificate accepted that one too.
    #[error("the relay's identity does not match the card (possible interception); the report stays in the outbox; do not retry from this network, and confirm the relay fingerprint with the NGO over a channel you trust (card: {expected}, relay: {got})")]
    FingerprintMismatch {
        /// Fingerprint from the card.
        expected: CertFingerprint,
        /// Fingerprint the relay presented.
        got: CertFingerprint,
    },
    /// The relay answered with an Error response.
    #[error("the relay refused the request: {message} ({code}); {}", if *.retryable { "try again later" } else { "retrying will not help" })]
    Refused {
        /// The relay's error code.
        code: ErrorCode,
        /// The relay's short explanation.
        message: String,
        /// Whether the same request may succeed later.
        retryable: bool,
    },
    /// The relay's answer did not follow the protocol.
    #[error("the relay sent an invalid answer ({0}); try again later, and tell the NGO if it keeps happening")]
    Protocol(String),
    /// The connection broke during a request.
    #[error(
        "the connection to the relay was lost ({0}); the report stays in the outbox; try again"
    )]
    ConnectionLost(String),
    /// The relay did not answer in time.
    #[error("the relay did not answer within {0} seconds; the report stays in the outbox; try again later")]
    Timeout(u64),
    /// Nothing was pinned: a caller bug or a damaged state file, never a reason to trust the relay.
    #[error(
        "no relay certificate fingerprint to check the relay against; import the NGO's card again"
    )]
    NothingPinned,
    /// The envelope is larger than any relay accepts.
    #[error("the encrypted report is {len} bytes, more than a relay accepts ({max} bytes); leave out some attachments")]
    TooLarge {
        /// Envelope length.
        len: usize,
        /// `MAX_ENVELOPE_LEN`.
        max: usize,
    },
}

impl RelayError {
    /// Whether trying again later (same relay, same data) may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            RelayError::Unreachable { .. }
            | RelayError::ConnectionLost(_)
            | RelayError::Timeout(_) => true,
            RelayError::Refused { retryable, .. } => *retryable,
            _ => false,
        }
    }
}

impl From<WireError> for RelayError {
    fn from(e: WireError) -> Self {
        RelayError::Protocol(e.to_string())
    }
}

/// How the client treats the link. [`LinkOptions::default`] suits a bad mobile network; tests
/// shorten the timeouts.
#[derive(Clone, Debug)]
pub struct LinkOptions {
    /// Longest wait for the QUIC handshake.
    pub connect_timeout: Duration,
    /// Longest wait for a small request; see [`MIN_UPLOAD_RATE`] for large ones.
    pub request_timeout: Duration,
    /// Close the connection after this long without a packet from the relay (QUIC idle
    /// timeout; the smaller of this and the relay's applies).
    pub idle_timeout: Duration,
}

impl Default for LinkOptions {
    fn default() -> Self {
        Self {
            connect_timeout: CONNECT_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

impl LinkOptions {
    /// Same defaults with another idle timeout (`--stall-timeout`).
    pub fn with_idle_timeout(idle_timeout: Duration) -> Self {
        Self {
            idle_timeout,
            ..Self::default()
        }
    }

    /// Keep-alives every quarter of the idle timeout (1 s at least): several may be lost before
    /// the connection is given up, and NAT mappings (often 30 s for UDP) stay open.
    fn keep_alive(&self) -> Duration {
        (self.idle_timeout / 4).max(Duration::from_secs(1))
    }

    /// Time bound for a request of `len` bytes.
    fn request_timeout_for(&self, len: usize) -> Duration {
        let upload = Duration::from_secs((len as u64) / MIN_UPLOAD_RATE);
        self.request_timeout.saturating_add(upload)
    }
}

/// The relay's answer to a deposit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deposited {
    /// Stored now.
    New,
    /// An earlier deposit with the same id was already stored (a retry after a lost answer).
    Duplicate,
}

/// One item fetched from a mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedItem {
    /// The relay's id, for [`RelayClient::ack`].
    pub id: ItemId,
    /// The envelope exactly as deposited.
    pub envelope: Vec<u8>,
}

/// Most certificates one connection may pin: the current and the next during a rotation.
pub const MAX_PINNED: usize = 2;

/// Does `got` equal any of `pinned`? Every entry is compared, in constant time, so the time taken
/// says nothing about which one (if any) matched.
fn pin_matches(pinned: &[CertFingerprint], got: &CertFingerprint) -> bool {
    pinned.iter().fold(false, |any, p| any | got.ct_eq(p))
}

/// Accepts exactly the certificates identified by the pinned SHA-256 fingerprints, and records
/// what the server presented so that a mismatch can be reported as such.
#[derive(Debug)]
struct PinnedCertVerifier {
    expected: Vec<CertFingerprint>,
    presented: Mutex<Option<CertFingerprint>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = CertFingerprint::of_der(end_entity);
        if let Ok(mut p) = self.presented.lock() {
            *p = Some(got);
        }
        if pin_matches(&self.expected, &got) && intermediates.is_empty() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn client_config(
    verifier: Arc<PinnedCertVerifier>,
    link: &LinkOptions,
) -> Result<quinn::ClientConfig, RelayError> {
    let internal =
        |e: &dyn std::fmt::Display| RelayError::Protocol(format!("TLS setup failed: {e}"));
    let mut tls = rustls::ClientConfig::builder_with_provider(verifier.provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| internal(&e))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.resumption = rustls::client::Resumption::disabled();
    tls.enable_early_data = false;
    tls.enable_sni = false;
    let quic = QuicClientConfig::try_from(tls).map_err(|e| internal(&e))?;
    let mut cc = quinn::ClientConfig::new(Arc::new(quic));
    let mut t = TransportConfig::default();
    t.max_concurrent_uni_streams(VarInt::from_u32(0));
    t.max_concurrent_bidi_streams(VarInt::from_u32(0));
    t.keep_alive_interval(Some(link.keep_alive()));
    // Uploads go from client to relay, so the client's congestion controller sets their pace:
    // BBR for lossy radio links and Cubic for fast short ones, whichever allows more (see
    // `congestion`).
    t.congestion_controller_factory(Arc::new(crate::congestion::LargerOfBbrAndCubic::default()));
    if let Ok(idle) = IdleTimeout::try_from(link.idle_timeout) {
        t.max_idle_timeout(Some(idle));
    }
    cc.transport_config(Arc::new(t));
    Ok(cc)
}

/// Why a connection attempt failed, in words for the person waiting.
fn connect_failure(e: &quinn::ConnectionError) -> String {
    match e {
        // The relay refuses before any handshake work when it holds its maximum of
        // connections, or the maximum from one address (one NAT may hide many reporters).
        quinn::ConnectionError::ConnectionClosed(c)
            if c.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED =>
        {
            "the relay is refusing new connections for now: it is full, or too many connections \
             come from your network"
                .into()
        }
        other => other.to_string(),
    }
}

/// A connection to one relay.
pub struct RelayClient {
    endpoint: Endpoint,
    conn: Connection,
    exporter: [u8; EXPORTER_LEN],
    link: LinkOptions,
}

impl RelayClient {
    /// Connect to `addr` ("host:port") and accept only the certificate with `fingerprint`.
    pub async fn connect(addr: &str, fingerprint: &CertFingerprint) -> Result<Self, RelayError> {
        Self::connect_with(addr, fingerprint, &LinkOptions::default()).await
    }

    /// [`RelayClient::connect`] with explicit link options.
    pub async fn connect_with(
        addr: &str,
        fingerprint: &CertFingerprint,
        link: &LinkOptions,
    ) -> Result<Self, RelayError> {
        Self::connect_pinned_with(addr, std::slice::from_ref(fingerprint), link).await
    }

    /// Connect to `addr` and accept only a certificate whose fingerprint is one of `pinned`
    /// (the card's current one first, then its announced next one). Fails with
    /// [`RelayError::FingerprintMismatch`] when none matches.
    pub async fn connect_pinned(
        addr: &str,
        pinned: &[CertFingerprint],
    ) -> Result<Self, RelayError> {
        Self::connect_pinned_with(addr, pinned, &LinkOptions::default()).await
    }

    /// [`RelayClient::connect_pinned`] with explicit link options.
    pub async fn connect_pinned_with(
        addr: &str,
        pinned: &[CertFingerprint],
        link: &LinkOptions,
    ) -> Result<Self, RelayError> {
        let Some(first) = pinned.first().copied() else {
            return Err(RelayError::NothingPinned);
        };
        if pinned.len() > MAX_PINNED {
            return Err(RelayError::Protocol(format!(
                "{} certificates pinned, at most {MAX_PINNED} are allowed",
                pinned.len()
            )));
        }
        let remote = resolve(addr).await?;
        let unreachable = |reason: String| RelayError::Unreachable {
            addr: addr.to_string(),
            reason,
        };
        let bind: SocketAddr = if remote.is_ipv6() {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        }
        .parse()
        .map_err(|_| unreachable("no local address".into()))?;
        let endpoint = Endpoint::client(bind)
            .map_err(|e| unreachable(format!("cannot open a UDP socket: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(PinnedCertVerifier {
            expected: pinned.to_vec(),
            presented: Mutex::new(None),
            provider,
        });
        let config = client_config(verifier.clone(), link)?;
        let connecting = endpoint
            .connect_with(config, remote, SERVER_NAME)
            .map_err(|e| unreachable(e.to_string()))?;
        let result = tokio::time::timeout(link.connect_timeout, connecting).await;
        let mismatch = || {
            let got = verifier.presented.lock().ok().and_then(|p| *p);
            got.filter(|g| !pin_matches(pinned, g))
                .map(|got| RelayError::FingerprintMismatch {
                    expected: first,
                    got,
                })
        };
        let conn = match result {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                return Err(mismatch().unwrap_or_else(|| unreachable(connect_failure(&e))))
            }
            Err(_) => {
                return Err(mismatch().unwrap_or_else(|| {
                    unreachable(format!(
                        "no answer within {:.1} seconds",
                        link.connect_timeout.as_secs_f32()
                    ))
                }))
            }
        };
        let mut exporter = [0u8; EXPORTER_LEN];
        conn.export_keying_material(&mut exporter, EXPORTER_LABEL, b"")
            .map_err(|_| RelayError::Protocol("TLS exporter unavailable".into()))?;
        Ok(Self {
            endpoint,
            conn,
            exporter,
            link: link.clone(),
        })
    }

    /// Register the mailbox of `mailbox_key` (idempotent). Returns its id.
    pub async fn register(&self, mailbox_key: &SigningKey) -> Result<MailboxId, RelayError> {
        let public_key = mailbox_key.verifying_key().to_bytes();
        let mailbox = MailboxId::for_key(&public_key);
        let proof = self
            .proof(
                mailbox_key,
                Purpose::Register,
                &mailbox,
                &auth::register_digest(&public_key),
            )
            .await?;
        let frame = self
            .request(&Request::Register { public_key, proof })
            .await?;
        match expect_response(&frame)? {
            Response::Registered(m) if m == mailbox => Ok(m),
            Response::Registered(_) => Err(RelayError::Protocol(
                "registered a different mailbox id".into(),
            )),
            other => Err(unexpected(&other)),
        }
    }

    /// Deposit `envelope`. `Ok` only once the relay has said the envelope is on its disk.
    /// Retrying with the same `deposit_id` after a lost answer stores it only once.
    pub async fn deposit(
        &self,
        mailbox: &MailboxId,
        deposit_id: &DepositId,
        envelope: &[u8],
    ) -> Result<(), RelayError> {
        self.deposit_status(mailbox, deposit_id, envelope)
            .await
            .map(|_| ())
    }

    /// [`RelayClient::deposit`], saying whether the relay had already stored this deposit id.
    pub async fn deposit_status(
        &self,
        mailbox: &MailboxId,
        deposit_id: &DepositId,
        envelope: &[u8],
    ) -> Result<Deposited, RelayError> {
        if envelope.len() > MAX_ENVELOPE_LEN {
            return Err(RelayError::TooLarge {
                len: envelope.len(),
                max: MAX_ENVELOPE_LEN,
            });
        }
        // Head and envelope are written one after the other: a 16 MiB envelope is not copied
        // into a frame first.
        let head = wire::encode_deposit_head(mailbox, deposit_id, envelope.len())
            .map_err(|e| RelayError::Protocol(format!("cannot encode the request: {e}")))?;
        let limit = self.link.request_timeout_for(head.len() + envelope.len());
        let frame = match tokio::time::timeout(limit, self.exchange_parts(&[&head, envelope])).await
        {
            Ok(r) => r?,
            Err(_) => return Err(RelayError::Timeout(limit.as_secs())),
        };
        match expect_response(&frame)? {
            Response::Stored { duplicate: false } => Ok(Deposited::New),
            Response::Stored { duplicate: true } => Ok(Deposited::Duplicate),
            other => Err(unexpected(&other)),
        }
    }

    /// Fetch up to `max_items` items (clamped to 1 ..= `MAX_ITEMS_PER_FETCH`) from the mailbox of
    /// `mailbox_key`. Items stay at the relay until acknowledged.
    pub async fn fetch(
        &self,
        mailbox_key: &SigningKey,
        max_items: u32,
    ) -> Result<Vec<FetchedItem>, RelayError> {
        let max_items = max_items.clamp(1, MAX_ITEMS_PER_FETCH);
        let mailbox = MailboxId::for_key(&mailbox_key.verifying_key().to_bytes());
        let proof = self
            .proof(
                mailbox_key,
                Purpose::Fetch,
                &mailbox,
                &auth::fetch_digest(max_items),
            )
            .await?;
        let frame = self
            .request(&Request::Fetch {
                mailbox,
                max_items,
                proof,
            })
            .await?;
        match expect_response(&frame)? {
            Response::Items(items) => {
                if items.len() > max_items as usize {
                    return Err(RelayError::Protocol("more items than asked for".into()));
                }
                Ok(items
                    .into_iter()
                    .map(|i| FetchedItem {
                        id: i.id,
                        envelope: i.envelope.to_vec(),
                    })
                    .collect())
            }
            other => Err(unexpected(&other)),
        }
    }

    /// UDP payload bytes this connection has sent so far (QUIC headers, retransmissions and
    /// acknowledgements included): for progress displays and tests.
    pub fn sent_bytes(&self) -> u64 {
        self.conn.stats().udp_tx.bytes
    }

    /// Acknowledge items so the relay deletes them. Returns how many were deleted (ids already
    /// gone are not counted). More than `MAX_ACK_IDS` ids are sent in several requests.
    pub async fn ack(&self, mailbox_key: &SigningKey, ids: &[ItemId]) -> Result<u64, RelayError> {
        let mailbox = MailboxId::for_key(&mailbox_key.verifying_key().to_bytes());
        let mut total = 0u64;
        for chunk in ids.chunks(MAX_ACK_IDS) {
            let proof = self
                .proof(
                    mailbox_key,
                    Purpose::Ack,
                    &mailbox,
                    &auth::ack_digest(chunk),
                )
                .await?;
            let frame = self
                .request(&Request::Ack {
                    mailbox,
                    ids: chunk.to_vec(),
                    proof,
                })
                .await?;
            match expect_response(&frame)? {
                Response::Acked(n) => total = total.saturating_add(n),
                other => return Err(unexpected(&other)),
            }
        }
        Ok(total)
    }

    /// Close the connection politely.
    pub async fn close(self) {
        self.conn.close(VarInt::from_u32(0), b"done");
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
    }

    /// Move this client to another local UDP socket, as when a phone changes networks or a NAT
    /// gives it a new port. The connection carries on (QUIC connection migration); the relay
    /// validates the new path before sending much to it.
    pub fn rebind(&self, socket: std::net::UdpSocket) -> std::io::Result<()> {
        self.endpoint.rebind(socket)
    }

    /// The local UDP address in use.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    // Lower-level helpers, public for end-to-end tests of the protocol.

    /// This connection's TLS exporter value (what proofs are bound to).
    pub fn exporter(&self) -> [u8; EXPORTER_LEN] {
        self.exporter
    }

    /// Ask the relay for a fresh nonce on this connection.
    pub async fn challenge(&self) -> Result<[u8; NONCE_LEN], RelayError> {
        let frame = self.request(&Request::Challenge).await?;
        match expect_response(&frame)? {
            Response::ChallengeNonce(n) => Ok(n),
            other => Err(unexpected(&other)),
        }
    }

    /// Get a nonce and sign a proof for `purpose` on this connection.
    pub async fn proof(
        &self,
        key: &SigningKey,
        purpose: Purpose,
        mailbox: &MailboxId,
        digest: &[u8; 32],
    ) -> Result<Proof, RelayError> {
        let nonce = self.challenge().await?;
        Ok(auth::sign(
            key,
            purpose,
            &self.exporter,
            &nonce,
            mailbox,
            digest,
        ))
    }

    /// Encode and send one request; returns the raw response frame.
    pub async fn request(&self, req: &Request<'_>) -> Result<Vec<u8>, RelayError> {
        let frame = req.encode().map_err(|e| match e {
            WireError::TooLarge { len, max, .. } => RelayError::TooLarge {
                len: len as usize,
                max: max as usize,
            },
            other => RelayError::Protocol(format!("cannot encode the request: {other}")),
        })?;
        self.raw_request(&frame).await
    }

    /// Send `frame` as is on a new stream (it need not be valid) and return the relay's response
    /// frame, checked against the response limits but not decoded.
    pub async fn raw_request(&self, frame: &[u8]) -> Result<Vec<u8>, RelayError> {
        let limit = self.link.request_timeout_for(frame.len());
        match tokio::time::timeout(limit, self.exchange(frame)).await {
            Ok(r) => r,
            Err(_) => Err(RelayError::Timeout(limit.as_secs())),
        }
    }

    async fn exchange(&self, frame: &[u8]) -> Result<Vec<u8>, RelayError> {
        self.exchange_parts(&[frame]).await
    }

    /// Send one request frame, given as consecutive `parts`, and read the answer.
    async fn exchange_parts(&self, parts: &[&[u8]]) -> Result<Vec<u8>, RelayError> {
        let lost = |e: &dyn std::fmt::Display| RelayError::ConnectionLost(e.to_string());
        let (mut send, mut recv) = self.conn.open_bi().await.map_err(|e| lost(&e))?;
        // If the relay answers early (a refusal, or a repeat of a deposit it already stored) it
        // stops our stream; its answer is still waiting on the receive side, so a failed write
        // is not yet an error.
        let mut written = Ok(());
        for part in parts {
            if let Err(e) = send.write_all(part).await {
                written = Err(lost(&e));
                break;
            }
        }
        let written = written.and_then(|()| send.finish().map_err(|e| lost(&e)));
        let mut h = [0u8; FRAME_HEADER_LEN];
        if let Err(e) = recv.read_exact(&mut h).await {
            return Err(match (written, e) {
                (Err(w), _) => w,
                (Ok(()), quinn::ReadExactError::FinishedEarly(_)) => RelayError::Protocol(
                    "the relay closed the stream without a complete answer".into(),
                ),
                (Ok(()), quinn::ReadExactError::ReadError(e)) => lost(&e),
            });
        }
        let header = wire::decode_response_header(&h)?;
        let mut out = Vec::with_capacity(FRAME_HEADER_LEN + header.body_len.min(64 * 1024));
        out.extend_from_slice(&h);
        let want = FRAME_HEADER_LEN + header.body_len;
        while out.len() < want {
            match recv.read_chunk(want - out.len(), true).await {
                Ok(Some(chunk)) => out.extend_from_slice(&chunk.bytes),
                Ok(None) => {
                    return Err(RelayError::Protocol(
                        "the relay's answer is truncated".into(),
                    ))
                }
                Err(e) => return Err(lost(&e)),
            }
        }
        match recv.read_chunk(1, true).await {
            Ok(None) => Ok(out),
            Ok(Some(_)) => Err(RelayError::Protocol(
                "unexpected bytes after the relay's answer".into(),
            )),
            Err(e) => Err(lost(&e)),
        }
    }
}

async fn resolve(addr: &str) -> Result<SocketAddr, RelayError> {
    if let Ok(a) = addr.parse::<SocketAddr>() {
        return Ok(a);
    }
    let mut addrs = tokio::net::lookup_host(addr)
        .await
        .map_err(|_| RelayError::BadAddress(addr.to_string()))?;
    addrs
        .next()
        .ok_or_else(|| RelayError::BadAddress(addr.to_string()))
}

/// Decode a response frame; an Error response becomes [`RelayError::Refused`].
fn expect_response(frame: &[u8]) -> Result<Response<'_>, RelayError> {
    match wire::decode_response(frame)? {
        Response::Error {
            code,
            retryable,
            message,
        } => Err(RelayError::Refused {
            code,
            message: message.to_string(),
            retryable,
        }),
        other => Ok(other),
    }
}

fn unexpected(r: &Response<'_>) -> RelayError {
    RelayError::Protocol(format!("unexpected {:?} answer", r.frame_type()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_pinned_fingerprint_matches_and_nothing_else() {
        let a = CertFingerprint([1; 32]);
        let b = CertFingerprint([2; 32]);
        let c = CertFingerprint([3; 32]);
        assert!(pin_matches(&[a], &a));
        assert!(!pin_matches(&[a], &b));
        assert!(pin_matches(&[a, b], &a));
        assert!(pin_matches(&[a, b], &b));
        assert!(!pin_matches(&[a, b], &c));
        assert!(!pin_matches(&[], &a));
    }

    #[tokio::test]
    async fn empty_or_oversized_pin_sets_are_refused_before_any_network() {
        let a = CertFingerprint([1; 32]);
        assert!(matches!(
            RelayClient::connect_pinned("127.0.0.1:9", &[]).await,
            Err(RelayError::NothingPinned)
        ));
        assert!(matches!(
            RelayClient::connect_pinned("127.0.0.1:9", &[a, a, a]).await,
            Err(RelayError::Protocol(_))
        ));
    }
}
