//! The network shell around the handlers: the QUIC accept loop and one task per connection
//! ([`Listener`]), one task per request stream ([`request`]), the same over TLS on TCP
//! ([`tcp`], one request after another on a connection, through [`stream`]), the ordinary web
//! server every connection shows until a client knocks ([`front`],
//! `vigil_core::wire::knock`), and the TLS and transport configuration ([`tls`]).
//!
//! Shutdown follows mini-redis' shape with tokio-util types: a [`CancellationToken`] stops the
//! accept loop and every connection's stream loop; every task is spawned on one [`TaskTracker`],
//! so `RelayHandle::shutdown` can wait until in-flight requests have been answered.

pub(crate) mod front;
mod request;
mod stream;
mod tcp;
mod tls;

use crate::config::Limits;
use crate::handlers::{ConnState, Shared};
use crate::ratelimit::{AddrPermit, PerAddress, TokenBuckets};
use quinn::crypto::rustls::HandshakeData;
use quinn::{Connection, Endpoint, Incoming, VarInt};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use vigil_core::wire::knock::{knock_matches, parse_head, MAX_HEAD_LEN};
use vigil_core::wire::limits::{EXPORTER_LABEL, EXPORTER_LEN};
use vigil_core::wire::QUIC_ALPN;

pub(crate) use front::FrontPage;
use stream::{ReqRecv, ReqSend};
pub(crate) use tls::{server_config, tcp_config, IdentityKey};

/// HTTP/3's H3_GENERAL_PROTOCOL_ERROR: how a QUIC connection that did not knock is closed (what
/// an HTTP/3 server says to a peer that does not speak HTTP/3).
const CLOSE_NOT_KNOCKED: u32 = 0x0101;

/// QUIC application close code (and stream reset code) for a connection that reached
/// `max_connection_secs`. Code 1 is a refused connection (ALPN, internal error).
pub(crate) const CLOSE_EXPIRED: u32 = 2;
/// The reason sent with [`CLOSE_EXPIRED`].
const CLOSE_EXPIRED_REASON: &[u8] = b"connection lifetime reached; reconnect";

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
    /// Connections closed because they reached `max_connection_secs`.
    pub connections_expired: AtomicU64,
    /// Streams dropped because their header did not arrive within `header_timeout_secs`.
    pub header_timeouts: AtomicU64,
    /// Requests refused because the body arrived slower than `min_body_rate`.
    pub slow_bodies: AtomicU64,
    /// Deposits, registrations, fetches or status requests refused by a per-address rate limit.
    pub rate_limited: AtomicU64,
    /// Of `connections_accepted`, those over TLS on TCP.
    pub tcp_accepted: AtomicU64,
    /// HTTP requests answered as an ordinary web server (no good knock): scanners, browsers,
    /// probes, or clients whose card pins another certificate.
    pub front_requests: AtomicU64,
    /// QUIC connections closed because their first stream was not a good knock.
    pub knocks_failed: AtomicU64,
}

/// Read the knock on the first stream of `conn` and, if it was made with `identity`'s
/// fingerprint, answer with the identity proof. `None`: no stream, not a knock, or not ours.
pub(crate) async fn answer_knock(
    conn: &Connection,
    identity: &IdentityKey,
    exporter: &[u8; EXPORTER_LEN],
) -> Option<()> {
    let own = [identity.fingerprint()];
    let (mut send, mut recv) = conn.accept_bi().await.ok()?;
    let mut buf = Vec::new();
    let knocked = loop {
        match parse_head(&buf) {
            Ok(Some(head)) => break knock_matches(&head.knock_tags(), &own, exporter).is_some(),
            Ok(None) => {}
            Err(_) => return None,
        }
        let chunk = recv
            .read_chunk(MAX_HEAD_LEN + 1 - buf.len(), true)
            .await
            .ok()??;
        buf.extend_from_slice(&chunk.bytes);
    };
    if !knocked {
        return None;
    }
    let proof = identity.proof(exporter).ok()?;
    send.write_all(&proof).await.ok()?;
    send.finish().ok()?;
    Some(())
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
    /// Attachment chunks (Upload, Download) per source address.
    pub(crate) transfer_rate: TokenBuckets,
    /// Registrations per source address.
    pub(crate) register_rate: TokenBuckets,
    /// Fetch and Status requests per source address.
    pub(crate) fetch_rate: TokenBuckets,
    /// Bytes of request bodies in memory, in [`request::BUDGET_UNIT`]s.
    pub(crate) body_budget: Arc<Semaphore>,
    /// Every limit.
    pub(crate) limits: Limits,
    /// What happened, for stats.
    pub(crate) counters: Arc<ListenerCounters>,
    /// The certificate cards pin, shown only to clients that knock with it.
    pub(crate) identity: Arc<IdentityKey>,
    /// What the ordinary web server shows at `/`.
    pub(crate) front_page: Arc<FrontPage>,
    /// Cancelled when the shutdown grace period is over: ends TCP connections still open.
    pub(crate) hard_stop: CancellationToken,
}

impl Listener {
    /// A listener with `limits`.
    #[allow(clippy::too_many_arguments)] // each is a different part of the relay; a struct of them would only rename them
    pub(crate) fn new(
        endpoint: Endpoint,
        shared: Arc<Shared>,
        cancel: CancellationToken,
        tracker: TaskTracker,
        limits: &Limits,
        counters: Arc<ListenerCounters>,
        identity: Arc<IdentityKey>,
        front_page: Arc<FrontPage>,
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
            fetch_rate: TokenBuckets::new(
                limits.fetch_burst,
                f64::from(limits.fetches_per_minute) / 60.0,
                n,
            ),
            transfer_rate: TokenBuckets::new(
                limits.transfer_burst,
                f64::from(limits.transfer_chunks_per_minute) / 60.0,
                n,
            ),
            body_budget: request::body_budget(limits.request_memory_bytes),
            limits: limits.clone(),
            counters,
            identity,
            front_page,
            hard_stop: CancellationToken::new(),
        }
    }

    /// Take a connection permit and, unless exempt, a per-address one for `ip`; `None` (and
    /// counted) when a limit is reached.
    fn admit_connection(&self, ip: IpAddr) -> Option<(OwnedSemaphorePermit, Option<AddrPermit>)> {
        let c = &self.counters;
        let addr_permit = if self.exempt(ip) {
            None
        } else if let Some(p) = self.per_address.try_acquire(ip) {
            Some(p)
        } else {
            // Counted, never logged with the address.
            c.refused_per_address.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("per-address connection limit reached; refusing a connection");
            return None;
        };
        let Ok(permit) = self.connections.clone().try_acquire_owned() else {
            c.refused_connection_limit.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("connection limit reached; refusing a connection");
            return None;
        };
        Some((permit, addr_permit))
    }

    /// Accept QUIC connections until cancelled.
    pub(crate) async fn run(self: Arc<Self>) {
        let this = self;
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
            let Some((permit, addr_permit)) = this.admit_connection(ip) else {
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
            .is_some_and(|p| p == QUIC_ALPN);
        if !alpn_ok {
            // rustls already refuses other ALPN values in the handshake; this is a backstop.
            conn.close(VarInt::from_u32(CLOSE_NOT_KNOCKED), b"");
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
        if !self.quic_knock(&conn, &exporter).await {
            self.counters.knocks_failed.fetch_add(1, Ordering::Relaxed);
            conn.close(VarInt::from_u32(CLOSE_NOT_KNOCKED), b"");
            return;
        }
        let state = Arc::new(ConnState::new(exporter));
        tracing::debug!("connection open");
        // Requests in flight on this connection (each also on the relay-wide tracker).
        let in_flight = TaskTracker::new();
        let lifetime = tokio::time::sleep(Duration::from_secs(self.limits.max_connection_secs));
        tokio::pin!(lifetime);
        let mut expired = false;
        loop {
            let (mut send, mut recv) = tokio::select! {
                _ = self.cancel.cancelled() => break,
                () = &mut lifetime, if !expired => {
                    // No new requests; the ones in flight finish within their own deadlines.
                    expired = true;
                    in_flight.close();
                    self.counters.connections_expired.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                () = in_flight.wait(), if expired => {
                    conn.close(VarInt::from_u32(CLOSE_EXPIRED), CLOSE_EXPIRED_REASON);
                    tracing::debug!("connection reached its lifetime; closed");
                    break;
                }
                s = conn.accept_bi() => match s {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(reason = %e, "connection closed");
                        break;
                    }
                },
            };
            if expired {
                // The client sees a reset stream (a retryable lost connection) and reconnects.
                let _ = recv.stop(VarInt::from_u32(CLOSE_EXPIRED));
                let _ = send.reset(VarInt::from_u32(CLOSE_EXPIRED));
                continue;
            }
            let l = self.clone();
            let st = state.clone();
            self.tracker.spawn(
                in_flight
                    .track_future(async move {
                        l.request(ReqSend::Quic(send), ReqRecv::Quic(recv), &st, ip)
                            .await
                    })
                    .in_current_span(),
            );
        }
    }

    /// The first stream of a QUIC connection must be a good knock, within the header timeout;
    /// the identity proof answers it on the same stream.
    async fn quic_knock(&self, conn: &Connection, exporter: &[u8; EXPORTER_LEN]) -> bool {
        let timeout = Duration::from_secs(self.limits.header_timeout_secs.max(1));
        tokio::select! {
            _ = self.cancel.cancelled() => false,
            r = tokio::time::timeout(timeout, answer_knock(conn, &self.identity, exporter)) => {
                matches!(r, Ok(Some(())))
            }
        }
    }

    /// Whether `ip` is exempt from the per-address limits.
    fn exempt(&self, ip: IpAddr) -> bool {
        !self.limits.limit_loopback && crate::ratelimit::addr_key(ip).is_loopback()
    }
}
