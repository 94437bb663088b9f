//! The QUIC shell around the handlers: TLS and transport configuration, the accept loop, one task
//! per connection and one per request stream.
//!
//! Shutdown follows mini-redis' shape with tokio-util types: a [`CancellationToken`] stops the
//! accept loop and every connection's stream loop; every task is spawned on one [`TaskTracker`],
//! so `RelayHandle::shutdown` can wait until in-flight requests have been answered.

use crate::cert::Identity;
use crate::config::{Limits, RelayConfig};
use crate::handlers::{self, ConnState, Refusal, Shared};
use crate::ratelimit::{AddrPermit, PerAddress, TokenBuckets};
use anyhow::{Context, Result};
use quinn::crypto::rustls::{HandshakeData, QuicServerConfig};
use quinn::{Endpoint, IdleTimeout, Incoming, RecvStream, SendStream, TransportConfig, VarInt};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use vigil_core::wire::limits::{
    DEPOSIT_FIXED_LEN, EXPORTER_LABEL, EXPORTER_LEN, FRAME_HEADER_LEN, MAX_REQUEST_LEN,
};
use vigil_core::wire::{self, ErrorCode, FrameType, WireError, ALPN};

/// Time to wait for the client to acknowledge a response before the stream task ends.
const RESPONSE_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Request-memory budget is counted in units of this many bytes (semaphore permits).
const BUDGET_UNIT: usize = 1024;
/// Stream error code sent with STOP_SENDING when a request is refused before its body is read.
const STOP_REFUSED: u32 = 1;
/// Stream error code for a stream dropped because its header did not arrive in time or the
/// relay is shutting down.
const STOP_TIMEOUT: u32 = 2;

/// rustls + quinn server configuration: TLS 1.3 only, ALPN `vigil/1`, no 0-RTT, no session
/// tickets or resumption (a resumed session would let the relay link a client's connections),
/// bounded windows and streams.
pub(crate) fn server_config(
    identity: &Identity,
    config: &RelayConfig,
) -> Result<quinn::ServerConfig> {
    let tls = tls_config(identity)?;
    let quic =
        QuicServerConfig::try_from(tls).context("TLS configuration is not usable for QUIC")?;
    let mut sc = quinn::ServerConfig::with_crypto(Arc::new(quic));
    sc.transport_config(Arc::new(transport_config(&config.limits)?));
    // Bound what quinn keeps for connection attempts the accept loop has not looked at yet.
    sc.max_incoming(config.limits.max_incoming);
    sc.incoming_buffer_size(config.limits.incoming_buffer_bytes);
    sc.incoming_buffer_size_total(config.limits.incoming_buffer_total_bytes);
    Ok(sc)
}

fn tls_config(identity: &Identity) -> Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 is not available in the crypto provider")?
        .with_no_client_auth()
        .with_single_cert(vec![identity.cert.clone()], identity.key.clone_key())
        .context("the relay certificate or key in the data directory is not usable; restore them from backup")?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    // QUIC allows only 0 or u32::MAX here; 0 refuses 0-RTT, whose data could be replayed.
    tls.max_early_data_size = 0;
    // No tickets and no session cache: every connection is a full handshake, unlinkable.
    tls.send_tls13_tickets = 0;
    tls.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(tls)
}

fn transport_config(l: &Limits) -> Result<TransportConfig> {
    let mut t = TransportConfig::default();
    t.max_concurrent_bidi_streams(VarInt::from_u32(l.max_streams_per_connection));
    t.max_concurrent_uni_streams(VarInt::from_u32(0));
    // Per-stream window: enough to keep a deposit moving; per-connection window: a few streams.
    // quinn's connection window is unbounded by default; with both bounded, a peer can make the
    // relay buffer at most `connection_receive_window` bytes of out-of-order data.
    t.stream_receive_window(VarInt::from_u32(l.stream_receive_window));
    t.receive_window(VarInt::from_u32(l.connection_receive_window));
    t.send_window(8 * 1024 * 1024);
    t.crypto_buffer_size(l.crypto_buffer_bytes);
    // Vigil uses no unreliable datagrams: buffer none.
    t.datagram_receive_buffer_size(None);
    t.max_idle_timeout(Some(
        IdleTimeout::try_from(Duration::from_secs(l.idle_timeout_secs))
            .context("idle timeout is too long")?,
    ));
    Ok(t)
}

/// What the accept loop and the streams counted. Counts only, no addresses.
#[derive(Debug, Default)]
pub struct ListenerCounters {
    /// Connection attempts handed to the handshake.
    pub connections_accepted: AtomicU64,
    /// Refused because `max_connections` were open.
    pub refused_connection_limit: AtomicU64,
    /// Refused because the source address had `max_connections_per_address` open.
    pub refused_per_address: AtomicU64,
    /// Answered with a QUIC Retry (address validation under load).
    pub retries_sent: AtomicU64,
    /// A Retry was due but quinn could not send one (the Initial already carried a Retry
    /// token); the connection was then admitted like any other.
    pub retries_failed: AtomicU64,
    /// Handshakes that failed or timed out.
    pub handshakes_failed: AtomicU64,
    /// Streams dropped because their header did not arrive within `header_timeout_secs`.
    pub header_timeouts: AtomicU64,
    /// Requests refused because the body arrived slower than `min_body_rate`.
    pub slow_bodies: AtomicU64,
    /// Deposits or registrations refused by a per-address rate limit.
    pub rate_limited: AtomicU64,
}

/// Everything the accept loop hands to connection tasks.
pub(crate) struct Listener {
    pub(crate) endpoint: Endpoint,
    pub(crate) shared: Arc<Shared>,
    pub(crate) cancel: CancellationToken,
    pub(crate) tracker: TaskTracker,
    /// Permit per open connection; when none is left new connections are refused.
    pub(crate) connections: Arc<Semaphore>,
    /// Total permits of `connections`.
    pub(crate) max_connections: usize,
    /// Open connections per source address.
    pub(crate) per_address: Arc<PerAddress>,
    /// Deposits per source address.
    pub(crate) deposit_rate: TokenBuckets,
    /// Registrations per source address.
    pub(crate) register_rate: TokenBuckets,
    /// Bytes of request bodies in memory, in [`BUDGET_UNIT`]s.
    pub(crate) body_budget: Arc<Semaphore>,
    /// Every limit.
    pub(crate) limits: Limits,
    /// What happened, for stats.
    pub(crate) counters: Arc<ListenerCounters>,
}

impl Listener {
    /// A listener with `limits`.
    pub(crate) fn new(
        endpoint: Endpoint,
        shared: Arc<Shared>,
        cancel: CancellationToken,
        tracker: TaskTracker,
        limits: &Limits,
        counters: Arc<ListenerCounters>,
    ) -> Self {
        let n = limits.max_rate_entries();
        Self {
            endpoint,
            shared,
            cancel,
            tracker,
            connections: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            max_connections: limits.max_connections.max(1),
            per_address: PerAddress::new(limits.max_connections_per_address.max(1)),
            deposit_rate: TokenBuckets::new(
                limits.deposit_burst,
                f64::from(limits.deposits_per_minute) / 60.0,
                n,
            ),
            register_rate: TokenBuckets::new(
                limits.registrations_per_hour,
                f64::from(limits.registrations_per_hour) / 3600.0,
                n,
            ),
            body_budget: Self::body_budget(limits.request_memory_bytes),
            limits: limits.clone(),
            counters,
        }
    }

    pub(crate) fn body_budget(bytes: usize) -> Arc<Semaphore> {
        // At least one maximal request must fit, or it would wait forever.
        let units = bytes.max(MAX_REQUEST_LEN + BUDGET_UNIT) / BUDGET_UNIT;
        Arc::new(Semaphore::new(units.min(Semaphore::MAX_PERMITS)))
    }

    /// Accept connections until cancelled.
    pub(crate) async fn run(self) {
        let this = Arc::new(self);
        loop {
            let incoming = tokio::select! {
                _ = this.cancel.cancelled() => break,
                i = this.endpoint.accept() => match i {
                    Some(i) => i,
                    None => break,
                },
            };
            let c = &this.counters;
            // Under load, make a new client prove it receives packets at its source address
            // (one extra round trip) before anything is counted against that address: a
            // spoofed-source flood then costs us one Retry packet per datagram and no state.
            let open = this.max_connections - this.connections.available_permits();
            let incoming = if open >= this.limits.retry_above_connections
                && !incoming.remote_address_validated()
            {
                match incoming.retry() {
                    Ok(()) => {
                        c.retries_sent.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    // quinn refuses a second Retry for an Initial that already carries a Retry
                    // token (`may_retry`). Such a client has answered one Retry already: never
                    // drop it silently (it would only learn by timing out); count it and let it
                    // through the same limits as any other connection.
                    Err(e) => {
                        c.retries_failed.fetch_add(1, Ordering::Relaxed);
                        e.into_incoming()
                    }
                }
            } else {
                incoming
            };
            let ip = incoming.remote_address().ip();
            let exempt = this.exempt(ip);
            let addr_permit = if exempt {
                None
            } else if let Some(p) = this.per_address.try_acquire(ip) {
                Some(p)
            } else {
                // Counted, never logged with the address.
                c.refused_per_address.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("per-address connection limit reached; refusing a connection");
                incoming.refuse();
                continue;
            };
            let Ok(permit) = this.connections.clone().try_acquire_owned() else {
                c.refused_connection_limit.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("connection limit reached; refusing a connection");
                incoming.refuse();
                continue;
            };
            c.connections_accepted.fetch_add(1, Ordering::Relaxed);
            let l = this.clone();
            this.tracker.spawn(
                async move { l.connection(incoming, permit, addr_permit).await }
                    .instrument(tracing::debug_span!("conn")),
            );
        }
        tracing::debug!("accept loop stopped");
    }

    async fn connection(
        self: Arc<Self>,
        incoming: Incoming,
        _permit: OwnedSemaphorePermit,
        _addr_permit: Option<AddrPermit>,
    ) {
        let ip = incoming.remote_address().ip();
        let handshake = Duration::from_secs(self.limits.handshake_timeout_secs);
        let conn = match tokio::time::timeout(handshake, incoming).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                self.counters
                    .handshakes_failed
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "handshake failed");
                return;
            }
            Err(_) => {
                self.counters
                    .handshakes_failed
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!("handshake timed out");
                return;
            }
        };
        let alpn_ok = conn
            .handshake_data()
            .and_then(|h| h.downcast::<HandshakeData>().ok())
            .and_then(|h| h.protocol)
            .is_some_and(|p| p == ALPN);
        if !alpn_ok {
            conn.close(VarInt::from_u32(1), b"ALPN vigil/1 required");
            return;
        }
        let mut exporter = [0u8; EXPORTER_LEN];
        if conn
            .export_keying_material(&mut exporter, EXPORTER_LABEL, b"")
            .is_err()
        {
            conn.close(VarInt::from_u32(1), b"internal error");
            return;
        }
        let state = Arc::new(ConnState::new(exporter));
        tracing::debug!("connection open");
        loop {
            let (send, recv) = tokio::select! {
                _ = self.cancel.cancelled() => break,
                s = conn.accept_bi() => match s {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(reason = %e, "connection closed");
                        break;
                    }
                },
            };
            let l = self.clone();
            let st = state.clone();
            self.tracker
                .spawn(async move { l.stream(send, recv, &st, ip).await }.in_current_span());
        }
    }

    /// Read one request, answer it, finish the stream. Every phase has its own deadline: the
    /// header within `header_timeout_secs`, the body at `min_body_rate` after a grace period,
    /// the handling and answer within `request_timeout_secs`.
    async fn stream(
        &self,
        mut send: SendStream,
        mut recv: RecvStream,
        conn: &ConnState,
        ip: IpAddr,
    ) {
        let header_timeout = Duration::from_secs(self.limits.header_timeout_secs);
        let mut h = [0u8; FRAME_HEADER_LEN];
        let header = tokio::select! {
            // No new requests once shutdown began; requests past their header are finished.
            _ = self.cancel.cancelled() => None,
            r = tokio::time::timeout(header_timeout, recv.read_exact(&mut h)) => Some(r),
        };
        let response = match header {
            None => {
                drop_stream(send, recv);
                return;
            }
            Some(Err(_)) => {
                self.counters
                    .header_timeouts
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!("request header did not arrive in time");
                drop_stream(send, recv);
                return;
            }
            Some(Ok(Err(quinn::ReadExactError::ReadError(_)))) => return,
            Some(Ok(Err(quinn::ReadExactError::FinishedEarly(got)))) => {
                Err(Refusal::from_wire(&WireError::Truncated {
                    what: "frame header",
                    needed: (FRAME_HEADER_LEN - got) as u64,
                }))
            }
            Some(Ok(Ok(()))) => self.admit(&h, ip),
        };
        let response = match response {
            Err(refusal) => {
                let _ = recv.stop(VarInt::from_u32(STOP_REFUSED));
                self.shared.counters.count_refusal(refusal.code());
                refusal.encode()
            }
            Ok(header)
                if header.frame_type == FrameType::Deposit
                    && handlers::is_streamed_deposit(
                        header.body_len.saturating_sub(DEPOSIT_FIXED_LEN),
                    ) =>
            {
                match self.streamed_deposit(&mut recv, header.body_len).await {
                    Some(frame) => frame,
                    None => return,
                }
            }
            Ok(header) => {
                let len = header.body_len as u64;
                let body_deadline = self.body_deadline(len);
                match tokio::time::timeout(
                    body_deadline,
                    self.read_body(&mut recv, header.body_len),
                )
                .await
                {
                    Err(_) => {
                        self.counters.slow_bodies.fetch_add(1, Ordering::Relaxed);
                        let _ = recv.stop(VarInt::from_u32(STOP_REFUSED));
                        handlers::too_slow(&self.shared)
                    }
                    Ok(Ok(None)) => return,
                    Ok(Err(refusal)) => {
                        let _ = recv.stop(VarInt::from_u32(STOP_REFUSED));
                        self.shared.counters.count_refusal(refusal.code());
                        refusal.encode()
                    }
                    Ok(Ok(Some((body, _permit)))) => {
                        let handling = Duration::from_secs(self.limits.request_timeout_secs);
                        match tokio::time::timeout(
                            handling,
                            handlers::handle_body(&self.shared, conn, header.frame_type, body),
                        )
                        .await
                        {
                            Ok(frame) => frame,
                            Err(_) => {
                                tracing::warn!("request handling timed out");
                                let r = Refusal::new(
                                    ErrorCode::Busy,
                                    "relay is overloaded; try again later",
                                );
                                self.shared.counters.count_refusal(r.code());
                                r.encode()
                            }
                        }
                    }
                }
            }
        };
        if send.write_all(&response).await.is_err() || send.finish().is_err() {
            return;
        }
        let _ = tokio::time::timeout(RESPONSE_DRAIN_TIMEOUT, send.stopped()).await;
    }

    /// How long a body of `len` bytes may take to arrive: a grace period, then `min_body_rate`.
    fn body_deadline(&self, len: u64) -> Duration {
        Duration::from_secs(self.limits.body_grace_secs + len / self.limits.min_body_rate.max(1))
    }

    /// A deposit too large to hold in memory: read the mailbox and deposit id, then let the
    /// handler stream the envelope into the store. The body must arrive by the same deadline as
    /// a body read whole; the store's work after the last byte gets `request_timeout_secs`.
    /// The request-memory budget is charged only for the pieces in flight. `None`: the client
    /// went away.
    async fn streamed_deposit(&self, recv: &mut RecvStream, body_len: usize) -> Option<Vec<u8>> {
        let units = u32::try_from(handlers::STREAMED_DEPOSIT_MEMORY.div_ceil(BUDGET_UNIT))
            .unwrap_or(u32::MAX);
        let _permit = self
            .body_budget
            .clone()
            .acquire_many_owned(units)
            .await
            .ok()?;
        let body_deadline = self.body_deadline(body_len as u64);
        let mut body = QuicBody {
            recv,
            deadline: tokio::time::Instant::now() + body_deadline,
            finished: false,
            too_slow: false,
        };
        let backstop = body_deadline + Duration::from_secs(self.limits.request_timeout_secs);
        let answer = tokio::time::timeout(backstop, async {
            let mut head = [0u8; DEPOSIT_FIXED_LEN];
            let mut got = 0;
            while got < DEPOSIT_FIXED_LEN {
                match handlers::BodySource::next_chunk(&mut body, DEPOSIT_FIXED_LEN - got).await {
                    Ok(Some(c)) => {
                        let c = c.as_ref();
                        // quinn never returns more than asked; checked anyway, not trusted.
                        head.get_mut(got..got + c.len())?.copy_from_slice(c);
                        got += c.len();
                    }
                    Ok(None) => {
                        let r = Refusal::from_wire(&WireError::Truncated {
                            what: "deposit",
                            needed: (DEPOSIT_FIXED_LEN - got) as u64,
                        });
                        self.shared.counters.count_refusal(r.code());
                        return Some(r.encode());
                    }
                    Err(handlers::BodyError::Gone) => return None,
                    Err(handlers::BodyError::TooSlow) => {
                        return Some(handlers::too_slow(&self.shared))
                    }
                }
            }
            let len = body_len - DEPOSIT_FIXED_LEN;
            handlers::handle_streamed_deposit(&self.shared, &head, len, &mut body).await
        })
        .await;
        let answer = match answer {
            Ok(a) => a?,
            Err(_) => {
                tracing::warn!("request handling timed out");
                let r = Refusal::new(ErrorCode::Busy, "relay is overloaded; try again later");
                self.shared.counters.count_refusal(r.code());
                r.encode()
            }
        };
        if body.too_slow {
            self.counters.slow_bodies.fetch_add(1, Ordering::Relaxed);
        }
        // Answered before the whole body arrived (refused, or a repeat of a stored deposit):
        // tell the client to stop sending.
        if !body.finished {
            let _ = body.recv.stop(VarInt::from_u32(STOP_REFUSED));
        }
        Some(answer)
    }

    /// Whether `ip` is exempt from the per-address limits.
    fn exempt(&self, ip: IpAddr) -> bool {
        !self.limits.limit_loopback && crate::ratelimit::addr_key(ip).is_loopback()
    }

    /// Check a header before reading any body: well-formed, within this relay's limits, and
    /// within the source address's rates. Refusals here cost the relay no body memory.
    fn admit(&self, h: &[u8; FRAME_HEADER_LEN], ip: IpAddr) -> Result<wire::FrameHeader, Refusal> {
        let header = wire::decode_request_header(h).map_err(|e| Refusal::from_wire(&e))?;
        match header.frame_type {
            FrameType::Deposit => {
                if header.body_len.saturating_sub(DEPOSIT_FIXED_LEN) > self.shared.max_envelope {
                    return Err(Refusal::new(
                        ErrorCode::TooLarge,
                        "report is larger than this relay accepts",
                    ));
                }
                if !self.shared.space.accepting() {
                    return Err(Refusal::storage_full());
                }
                if !self.exempt(ip) && !self.deposit_rate.try_take(ip, Instant::now()) {
                    self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                    return Err(Refusal::rate_limited(
                        "too many deposits from your network; try again in a minute",
                    ));
                }
            }
            FrameType::Register
                if !self.exempt(ip) && !self.register_rate.try_take(ip, Instant::now()) =>
            {
                self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                return Err(Refusal::rate_limited(
                    "too many registrations from your network; try again in an hour",
                ));
            }
            _ => {}
        }
        Ok(header)
    }

    /// Read exactly the `len` body bytes the header announced, and check the client finished
    /// the stream. `Ok(None)`: the stream is gone, nobody to answer.
    async fn read_body(
        &self,
        recv: &mut RecvStream,
        len: usize,
    ) -> Result<Option<(Vec<u8>, OwnedSemaphorePermit)>, Refusal> {
        let units = len.div_ceil(BUDGET_UNIT);
        let units = u32::try_from(units).unwrap_or(u32::MAX);
        let Ok(permit) = self.body_budget.clone().acquire_many_owned(units).await else {
            return Ok(None);
        };
        // `len` is bounded by the header check and its bytes are reserved in the body budget
        // above, so allocate it at once: growing by doubling would copy a 16 MiB body twice.
        let mut body = Vec::with_capacity(len);
        while body.len() < len {
            match recv.read_chunk(len - body.len(), true).await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk.bytes),
                Ok(None) => {
                    return Err(Refusal::from_wire(&WireError::Truncated {
                        what: "request body",
                        needed: (len - body.len()) as u64,
                    }))
                }
                Err(_) => return Ok(None),
            }
        }
        match recv.read_chunk(1, true).await {
            Ok(None) => Ok(Some((body, permit))),
            Ok(Some(_)) => Err(Refusal::from_wire(&WireError::TrailingData { extra: 1 })),
            Err(_) => Ok(None),
        }
    }
}

/// A request body read from the QUIC stream as it arrives, by a deadline.
struct QuicBody<'a> {
    recv: &'a mut RecvStream,
    /// When the whole body must have arrived.
    deadline: tokio::time::Instant,
    /// The client finished the stream and every byte was read.
    finished: bool,
    /// The deadline passed.
    too_slow: bool,
}

impl handlers::BodySource for QuicBody<'_> {
    type Chunk = bytes_of::Chunk;

    async fn next_chunk(&mut self, max: usize) -> Result<Option<Self::Chunk>, handlers::BodyError> {
        match tokio::time::timeout_at(self.deadline, self.recv.read_chunk(max, true)).await {
            Ok(Ok(Some(chunk))) => Ok(Some(bytes_of::Chunk(chunk))),
            Ok(Ok(None)) => {
                self.finished = true;
                Ok(None)
            }
            Ok(Err(_)) => Err(handlers::BodyError::Gone),
            Err(_) => {
                self.too_slow = true;
                Err(handlers::BodyError::TooSlow)
            }
        }
    }
}

mod bytes_of {
    /// A piece of stream data as quinn hands it over (no copy).
    pub(super) struct Chunk(pub(super) quinn::Chunk);

    impl AsRef<[u8]> for Chunk {
        fn as_ref(&self) -> &[u8] {
            &self.0.bytes
        }
    }
}

/// Abandon a stream without an answer (no header arrived, or shutting down).
fn drop_stream(mut send: SendStream, mut recv: RecvStream) {
    let _ = recv.stop(VarInt::from_u32(STOP_TIMEOUT));
    let _ = send.reset(VarInt::from_u32(STOP_TIMEOUT));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_refuses_early_data_and_resumption() {
        let dir = tempfile::tempdir().unwrap();
        let identity = crate::cert::load_or_create(dir.path()).unwrap();
        let tls = tls_config(&identity).unwrap();
        assert_eq!(tls.max_early_data_size, 0);
        assert_eq!(tls.send_tls13_tickets, 0);
        assert!(!tls.session_storage.can_cache());
        assert!(!tls.ticketer.enabled());
        assert_eq!(tls.alpn_protocols, vec![ALPN.to_vec()]);
    }
}
