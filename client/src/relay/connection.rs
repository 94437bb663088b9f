//! The connection: connect with pinned TLS, then [`RelayClient::exchange`] sends one request
//! frame on a new stream and reads the one answer frame. Every request in `requests.rs` is built
//! on that one function.

use super::tls::{PinnedCertVerifier, SERVER_NAME};
use super::RelayError;
use quinn::{Connection, Endpoint, IdleTimeout, TransportConfig, VarInt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use vigil_core::ids::CertFingerprint;
use vigil_core::wire::limits::{EXPORTER_LABEL, EXPORTER_LEN, FRAME_HEADER_LEN};
use vigil_core::wire::{self, Request, ALPN};

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

    /// The QUIC transport: no streams opened by the relay, keep-alives, the idle timeout, and
    /// the congestion controller for uploads.
    fn transport(&self) -> TransportConfig {
        let mut t = TransportConfig::default();
        t.max_concurrent_uni_streams(VarInt::from_u32(0));
        t.max_concurrent_bidi_streams(VarInt::from_u32(0));
        t.keep_alive_interval(Some(self.keep_alive()));
        // Uploads go from client to relay, so the client's congestion controller sets their
        // pace: BBR for lossy radio links and Cubic for fast short ones, whichever allows more
        // (see `congestion`).
        t.congestion_controller_factory(
            Arc::new(crate::congestion::LargerOfBbrAndCubic::default()),
        );
        if let Ok(idle) = IdleTimeout::try_from(self.idle_timeout) {
            t.max_idle_timeout(Some(idle));
        }
        t
    }
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
        let verifier = Arc::new(PinnedCertVerifier::new(pinned)?);
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
        let mut config = verifier.clone().quic_config(ALPN)?;
        config.transport_config(Arc::new(link.transport()));
        let connecting = endpoint
            .connect_with(config, remote, SERVER_NAME)
            .map_err(|e| unreachable(e.to_string()))?;
        let result = tokio::time::timeout(link.connect_timeout, connecting).await;
        let mismatch = || {
            verifier
                .mismatch()
                .map(|got| RelayError::FingerprintMismatch {
                    expected: pinned[0],
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

    /// UDP payload bytes this connection has sent so far (QUIC headers, retransmissions and
    /// acknowledgements included): for progress displays and tests.
    pub fn sent_bytes(&self) -> u64 {
        self.conn.stats().udp_tx.bytes
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

    /// This connection's TLS exporter value (what proofs of mailbox ownership are bound to).
    pub fn exporter(&self) -> [u8; EXPORTER_LEN] {
        self.exporter
    }

    /// Encode and send one request; returns the raw response frame. Public for end-to-end tests
    /// of the protocol; commands use the calls in `requests.rs`.
    /// A deposit's envelope goes in `payload` (empty for every other request).
    pub async fn request(&self, req: &Request, payload: &[u8]) -> Result<Vec<u8>, RelayError> {
        let frame = req.encode().map_err(super::requests::encode_error)?;
        self.exchange(&[&frame, payload]).await
    }

    /// Send `frame` as is on a new stream (it need not be valid) and return the relay's response
    /// frame, checked against the response limits but not decoded. For protocol tests.
    pub async fn raw_request(&self, frame: &[u8]) -> Result<Vec<u8>, RelayError> {
        self.exchange(&[frame]).await
    }

    /// The one exchange every request goes through: send one request frame, given as
    /// consecutive `parts` (a deposit's head and envelope are not copied into one buffer), on a
    /// new stream, and read the answer frame, within a time bound that grows with the size.
    pub(super) async fn exchange(&self, parts: &[&[u8]]) -> Result<Vec<u8>, RelayError> {
        let len = parts.iter().map(|p| p.len()).sum();
        let limit = self.link.request_timeout_for(len);
        match tokio::time::timeout(limit, self.exchange_unbounded(parts)).await {
            Ok(r) => r,
            Err(_) => Err(RelayError::Timeout(limit.as_secs())),
        }
    }

    async fn exchange_unbounded(&self, parts: &[&[u8]]) -> Result<Vec<u8>, RelayError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
