//! The connection: connect with pinned TLS, then [`RelayClient::exchange`] sends one request
//! frame on a new stream and reads the one answer frame. Every request in `requests.rs` is built
//! on that one function.

use super::tcp::{TcpLink, TcpTarget};
use super::tls::{quic_client_config, Pins, SERVER_NAME};
use super::transport::{self, Transport};
use super::RelayError;
use quinn::{Connection, Endpoint, IdleTimeout, TransportConfig, VarInt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use vigil_core::ids::CertFingerprint;
use vigil_core::wire::knock::{knock_request, MAX_PROOF_LEN};
use vigil_core::wire::limits::{EXPORTER_LABEL, EXPORTER_LEN, FRAME_HEADER_LEN};
use vigil_core::wire::{self, Request, QUIC_ALPN};

/// How long to wait for a connection (handshake, knock and identity proof).
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

/// A connection to one relay, over QUIC or TLS on TCP.
pub struct RelayClient {
    inner: Inner,
    link: LinkOptions,
}

enum Inner {
    Quic {
        endpoint: Endpoint,
        conn: Connection,
        exporter: [u8; EXPORTER_LEN],
    },
    Tcp {
        target: TcpTarget,
        /// The open link; `None` or dead: connect again before the next exchange.
        link: tokio::sync::Mutex<Option<TcpLink>>,
        /// The current link's exporter (proofs are bound to it).
        exporter: std::sync::Mutex<[u8; EXPORTER_LEN]>,
        /// Bytes sent on links already replaced.
        sent_before: std::sync::atomic::AtomicU64,
    },
}

/// Why the QUIC attempt of an `auto` connection gave way to TCP, for `--verbose`.
fn say_verbose(line: String) {
    if transport::settings().verbose {
        eprintln!("{line}");
    }
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

    /// Connect to `addr` and accept only a relay that proves a certificate whose fingerprint is
    /// one of `pinned` (the card's current one first, then its announced next one). Fails with
    /// [`RelayError::FingerprintMismatch`] when none matches.
    pub async fn connect_pinned(
        addr: &str,
        pinned: &[CertFingerprint],
    ) -> Result<Self, RelayError> {
        Self::connect_pinned_with(addr, pinned, &LinkOptions::default()).await
    }

    /// [`RelayClient::connect_pinned`] with explicit link options. The transport and proxy are
    /// this run's (`transport::settings`): QUIC, TLS over TCP, or `auto` (QUIC, and TCP too if
    /// QUIC has not connected within [`transport::FALLBACK_AFTER`]; the first to connect wins,
    /// and is remembered for the relay). With a proxy, TCP through it only, never directly.
    pub async fn connect_pinned_with(
        addr: &str,
        pinned: &[CertFingerprint],
        link: &LinkOptions,
    ) -> Result<Self, RelayError> {
        let pins = Pins::new(pinned)?;
        let settings = transport::settings();
        let started = std::time::Instant::now();
        let tcp_target = TcpTarget {
            addr: addr.to_string(),
            pins: pins.clone(),
            proxy: settings.proxy.clone(),
            timeout: link.connect_timeout,
            idle: link.idle_timeout,
        };
        let choice = if settings.proxy.is_some() {
            if settings.transport == Transport::Quic {
                return Err(RelayError::Unreachable {
                    addr: addr.to_string(),
                    reason: "QUIC cannot go through a SOCKS proxy; use --transport tcp (or auto) \
                             with --proxy"
                        .into(),
                });
            }
            Transport::Tcp
        } else {
            settings.transport
        };
        let client = match choice {
            Transport::Quic => Self::connect_quic(addr, &pins, link).await?,
            Transport::Tcp => Self::connect_tcp(tcp_target, link).await?,
            Transport::Auto => Self::connect_auto(addr, &pins, tcp_target, link).await?,
        };
        let used = client.transport();
        if choice == Transport::Auto {
            transport::remember(addr, used);
        }
        say_verbose(crate::t!(
            "net-connected",
            addr = addr,
            transport = if used == Transport::Tcp {
                "TLS/TCP"
            } else {
                "QUIC"
            },
            ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
        ));
        Ok(client)
    }

    /// QUIC first (or TCP first when TCP is what connected last time), the other after
    /// [`transport::FALLBACK_AFTER`] or as soon as the first fails; the first to connect wins.
    async fn connect_auto(
        addr: &str,
        pins: &Pins,
        tcp_target: TcpTarget,
        link: &LinkOptions,
    ) -> Result<Self, RelayError> {
        let tcp_first = transport::remembered(addr) == Some(Transport::Tcp);
        let quic = Self::connect_quic(addr, pins, link);
        let tcp = Self::connect_tcp(tcp_target, link);
        tokio::pin!(quic, tcp);
        let head_start = tokio::time::sleep(transport::FALLBACK_AFTER);
        tokio::pin!(head_start);
        let (mut quic_err, mut tcp_err) = (None, None);
        let mut second_started = false;
        loop {
            let quic_on = quic_err.is_none() && (!tcp_first || second_started);
            let tcp_on = tcp_err.is_none() && (tcp_first || second_started);
            if quic_err.is_some() && tcp_err.is_some() {
                break;
            }
            if !quic_on && !tcp_on && !second_started {
                second_started = true;
                continue;
            }
            tokio::select! {
                () = &mut head_start, if !second_started => {
                    second_started = true;
                    say_verbose(crate::t!(
                        "net-fallback",
                        addr = addr,
                        first = if tcp_first { "TLS/TCP" } else { "QUIC" },
                        second = if tcp_first { "QUIC" } else { "TLS/TCP" },
                        secs = format!("{:.1}", transport::FALLBACK_AFTER.as_secs_f32())
                    ));
                }
                r = &mut quic, if quic_on => match r {
                    Ok(c) => return Ok(c),
                    Err(e) => {
                        second_started = true;
                        quic_err = Some(e);
                    }
                },
                r = &mut tcp, if tcp_on => match r {
                    Ok(c) => return Ok(c),
                    Err(e) => {
                        second_started = true;
                        tcp_err = Some(e);
                    }
                },
            }
        }
        // Both failed: an identity mismatch first (it matters more than a timeout), else the
        // error of the transport tried first.
        let (first, second) = if tcp_first {
            (tcp_err, quic_err)
        } else {
            (quic_err, tcp_err)
        };
        let (first, second) = (first.expect("both failed"), second.expect("both failed"));
        Err(match (first, second) {
            (e @ RelayError::FingerprintMismatch { .. }, _) => e,
            (_, e @ RelayError::FingerprintMismatch { .. }) => e,
            (
                RelayError::Unreachable { addr, reason },
                RelayError::Unreachable { reason: r2, .. },
            ) => RelayError::Unreachable {
                addr,
                reason: format!("{reason}; {r2}"),
            },
            (e, _) => e,
        })
    }

    async fn connect_tcp(target: TcpTarget, link: &LinkOptions) -> Result<Self, RelayError> {
        let l = target.connect().await?;
        Ok(Self {
            inner: Inner::Tcp {
                exporter: std::sync::Mutex::new(l.exporter),
                link: tokio::sync::Mutex::new(Some(l)),
                target,
                sent_before: std::sync::atomic::AtomicU64::new(0),
            },
            link: link.clone(),
        })
    }

    async fn connect_quic(addr: &str, pins: &Pins, link: &LinkOptions) -> Result<Self, RelayError> {
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
        let mut config = quic_client_config(QUIC_ALPN)?;
        config.transport_config(Arc::new(link.transport()));
        let connecting = endpoint
            .connect_with(config, remote, SERVER_NAME)
            .map_err(|e| unreachable(e.to_string()))?;
        let opened = async {
            let conn = connecting
                .await
                .map_err(|e| unreachable(connect_failure(&e)))?;
            let exporter = knock_quic_pinned(&conn, addr, pins).await?;
            Ok::<_, RelayError>((conn, exporter))
        };
        let (conn, exporter) = match tokio::time::timeout(link.connect_timeout, opened).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer over QUIC within {:.1} seconds",
                    link.connect_timeout.as_secs_f32()
                )))
            }
        };
        Ok(Self {
            inner: Inner::Quic {
                endpoint,
                conn,
                exporter,
            },
            link: link.clone(),
        })
    }

    /// Make the next request go on a new connection (TLS over TCP; nothing on QUIC, whose
    /// connection does not suffer per-flow stalls the same way). Used after a TCP flow stalled:
    /// some censors freeze a flow after a few KB, and a fresh flow per request then still gets
    /// through.
    pub async fn reconnect_next(&self) {
        if let Inner::Tcp {
            link, sent_before, ..
        } = &self.inner
        {
            let mut guard = link.lock().await;
            if let Some(old) = guard.take() {
                sent_before.fetch_add(old.sent, std::sync::atomic::Ordering::Relaxed);
                old.close().await;
            }
        }
    }

    /// The transport this client uses.
    pub fn transport(&self) -> Transport {
        match self.inner {
            Inner::Quic { .. } => Transport::Quic,
            Inner::Tcp { .. } => Transport::Tcp,
        }
    }

    /// Bytes this connection has sent so far (QUIC: UDP payload, headers, retransmissions and
    /// acknowledgements included; TCP: TLS payload): for progress displays and tests.
    pub fn sent_bytes(&self) -> u64 {
        match &self.inner {
            Inner::Quic { conn, .. } => conn.stats().udp_tx.bytes,
            Inner::Tcp {
                link, sent_before, ..
            } => {
                let now = link
                    .try_lock()
                    .ok()
                    .and_then(|l| l.as_ref().map(|l| l.sent))
                    .unwrap_or(0);
                sent_before.load(std::sync::atomic::Ordering::Relaxed) + now
            }
        }
    }

    /// Close the connection politely.
    pub async fn close(self) {
        match self.inner {
            Inner::Quic { endpoint, conn, .. } => {
                conn.close(VarInt::from_u32(0), b"done");
                let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
            }
            Inner::Tcp { link, .. } => {
                if let Some(l) = link.into_inner() {
                    l.close().await;
                }
            }
        }
    }

    /// Move this client to another local UDP socket, as when a phone changes networks or a NAT
    /// gives it a new port. The connection carries on (QUIC connection migration); the relay
    /// validates the new path before sending much to it. QUIC only.
    pub fn rebind(&self, socket: std::net::UdpSocket) -> std::io::Result<()> {
        match &self.inner {
            Inner::Quic { endpoint, .. } => endpoint.rebind(socket),
            Inner::Tcp { .. } => Err(std::io::Error::other("not a QUIC connection")),
        }
    }

    /// The local UDP address in use (QUIC only).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match &self.inner {
            Inner::Quic { endpoint, .. } => endpoint.local_addr(),
            Inner::Tcp { .. } => Err(std::io::Error::other("not a QUIC connection")),
        }
    }

    /// The idle timeout of this connection's link: on TLS over TCP also how long the client
    /// waits for an answer to begin once a request is sent (see [`RelayClient::wait`]).
    pub fn idle_timeout(&self) -> Duration {
        self.link.idle_timeout
    }

    /// This connection's TLS exporter value (what proofs of mailbox ownership are bound to).
    pub fn exporter(&self) -> [u8; EXPORTER_LEN] {
        match &self.inner {
            Inner::Quic { exporter, .. } => *exporter,
            Inner::Tcp { exporter, .. } => exporter.lock().map(|e| *e).unwrap_or([0; EXPORTER_LEN]),
        }
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
        let conn = match &self.inner {
            Inner::Quic { conn, .. } => conn,
            Inner::Tcp {
                target,
                link,
                exporter,
                sent_before,
            } => {
                let mut guard = link.lock().await;
                if guard.as_ref().is_none_or(|l| l.dead) {
                    if let Some(old) = guard.take() {
                        sent_before.fetch_add(old.sent, std::sync::atomic::Ordering::Relaxed);
                    }
                    let fresh = target.connect().await?;
                    if let Ok(mut e) = exporter.lock() {
                        *e = fresh.exporter;
                    }
                    *guard = Some(fresh);
                }
                let l = guard.as_mut().expect("connected above");
                return l.exchange(parts).await;
            }
        };
        let lost = |e: &dyn std::fmt::Display| RelayError::ConnectionLost(e.to_string());
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| lost(&e))?;
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

/// Knock on a fresh QUIC connection (the first stream), check the relay's identity proof
/// against `pinned`, and return the connection's exporter. Public for tests and benchmarks that
/// drive bare QUIC connections; [`RelayClient`] does this itself.
pub async fn knock_quic(
    conn: &Connection,
    host: &str,
    pinned: &[CertFingerprint],
) -> Result<[u8; EXPORTER_LEN], RelayError> {
    knock_quic_pinned(conn, host, &Pins::new(pinned)?).await
}

async fn knock_quic_pinned(
    conn: &Connection,
    host: &str,
    pins: &Pins,
) -> Result<[u8; EXPORTER_LEN], RelayError> {
    let mut exporter = [0u8; EXPORTER_LEN];
    conn.export_keying_material(&mut exporter, EXPORTER_LABEL, b"")
        .map_err(|_| RelayError::Protocol("TLS exporter unavailable".into()))?;
    let not_recognised = || RelayError::FingerprintMismatch {
        expected: pins.as_slice()[0],
        got: None,
    };
    let lost = |e: &dyn std::fmt::Display| RelayError::ConnectionLost(e.to_string());
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| lost(&e))?;
    send.write_all(&knock_request(host, pins.as_slice(), &exporter))
        .await
        .map_err(|e| lost(&e))?;
    let _ = send.finish();
    let proof = match recv.read_to_end(MAX_PROOF_LEN).await {
        Ok(p) => p,
        // The relay closes a connection whose knock it does not recognise.
        Err(quinn::ReadToEndError::Read(quinn::ReadError::ConnectionLost(
            quinn::ConnectionError::ApplicationClosed(_),
        ))) => return Err(not_recognised()),
        Err(quinn::ReadToEndError::TooLong) => return Err(not_recognised()),
        Err(e) => return Err(lost(&e)),
    };
    pins.check_proof(&proof, &exporter)?;
    Ok(exporter)
}

pub(super) async fn resolve(addr: &str) -> Result<SocketAddr, RelayError> {
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
