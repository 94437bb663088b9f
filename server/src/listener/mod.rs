//! The QUIC shell around the handlers: the accept loop and one task per connection
//! ([`Listener`]), one task per request stream ([`request`]), and the TLS and transport
//! configuration ([`tls`]).
//!
//! Shutdown follows mini-redis' shape with tokio-util types: a [`CancellationToken`] stops the
//! accept loop and every connection's stream loop; every task is spawned on one [`TaskTracker`],
//! so `RelayHandle::shutdown` can wait until in-flight requests have been answered.

mod request;
mod tls;

use crate::config::Limits;
use crate::handlers::{ConnState, Shared};
use crate::ratelimit::{AddrPermit, PerAddress, TokenBuckets};
use quinn::crypto::rustls::HandshakeData;
use quinn::{Endpoint, Incoming, VarInt};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use vigil_core::wire::limits::{EXPORTER_LABEL, EXPORTER_LEN};
use vigil_core::wire::ALPN;

pub(crate) use tls::server_config;

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
        }
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
            let addr_permit = if this.exempt(ip) {
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
                    .track_future(async move { l.request(send, recv, &st, ip).await })
                    .in_current_span(),
            );
        }
    }

    /// Whether `ip` is exempt from the per-address limits.
    fn exempt(&self, ip: IpAddr) -> bool {
        !self.limits.limit_loopback && crate::ratelimit::addr_key(ip).is_loopback()
    }
}
