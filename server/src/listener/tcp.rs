//! TLS 1.3 over TCP, on the same port number as QUIC: for networks that block or throttle UDP,
//! and for clients behind a SOCKS proxy (Tor, Orbot).
//!
//! A connection goes through three phases:
//! 1. the TLS handshake (front certificate, ALPN `http/1.1`), within `handshake_timeout_secs`;
//! 2. HTTP requests, each answered as an ordinary web server would (`front.rs`), until one
//!    carries a good knock; the relay then sends its identity proof;
//! 3. Vigil request frames one after another, each answered before the next is read, through
//!    the same pipeline as QUIC streams (`request.rs`), with the same limits and proofs.
//!
//! Connection and per-address limits are shared with QUIC: a TCP connection takes the same
//! permits as a QUIC one.

use super::front;
use super::stream::{split_tcp, ReqRecv, ReqSend, TcpIn, TcpOut};
use super::Listener;
use crate::handlers::ConnState;
use crate::ratelimit::AddrPermit;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;
use vigil_core::wire::knock::{knock_matches, parse_head};
use vigil_core::wire::limits::{EXPORTER_LABEL, EXPORTER_LEN};

/// Most HTTP requests answered on one connection before it is closed (nginx's default for
/// keep-alive connections is 1000; a scanner needs a handful).
const MAX_FRONT_REQUESTS: u32 = 100;

/// How long a closing connection keeps reading (and discarding) what the client still sends,
/// so that the client receives our last answer instead of a reset.
const LINGER: Duration = Duration::from_secs(2);

impl Listener {
    /// Accept TCP connections until cancelled.
    pub(crate) async fn run_tcp(self: Arc<Self>, tcp: TcpListener, tls: Arc<rustls::ServerConfig>) {
        let acceptor = TlsAcceptor::from(tls);
        loop {
            let (stream, peer) = tokio::select! {
                _ = self.cancel.cancelled() => break,
                a = tcp.accept() => match a {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!(error = %e, "cannot accept a TCP connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let Some((permit, addr_permit)) = self.admit_connection(peer.ip()) else {
                drop(stream);
                continue;
            };
            self.counters
                .connections_accepted
                .fetch_add(1, Ordering::Relaxed);
            self.counters.tcp_accepted.fetch_add(1, Ordering::Relaxed);
            let l = self.clone();
            let acceptor = acceptor.clone();
            let hard_stop = self.hard_stop.clone();
            self.tracker.spawn(
                async move {
                    tokio::select! {
                        _ = hard_stop.cancelled() => {}
                        () = l.tcp_connection(stream, peer, acceptor, permit, addr_permit) => {}
                    }
                }
                .instrument(tracing::debug_span!("tcp")),
            );
        }
        tracing::debug!("TCP accept loop stopped");
    }

    async fn tcp_connection(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        acceptor: TlsAcceptor,
        _permit: OwnedSemaphorePermit,
        _addr_permit: Option<AddrPermit>,
    ) {
        let _ = stream.set_nodelay(true);
        let handshake = Duration::from_secs(self.limits.handshake_timeout_secs);
        let tls = match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                self.counters
                    .handshakes_failed
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                self.counters
                    .handshakes_failed
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!("TLS handshake timed out");
                return;
            }
        };
        let mut exporter = [0u8; EXPORTER_LEN];
        if tls
            .get_ref()
            .1
            .export_keying_material(&mut exporter, EXPORTER_LABEL, Some(b""))
            .is_err()
        {
            return;
        }
        let (mut rin, mut rout) =
            split_tcp(tls, Duration::from_secs(self.limits.idle_timeout_secs));
        if self.front(&mut rin, &mut rout, &exporter).await {
            self.vigil_requests(&mut rin, &mut rout, exporter, peer.ip())
                .await;
        }
        linger_close(&mut rin, &mut rout).await;
    }

    /// Phase 2: answer HTTP requests until a good knock. `true`: knocked, and the identity
    /// proof is sent.
    async fn front(
        &self,
        rin: &mut TcpIn,
        rout: &mut TcpOut,
        exporter: &[u8; EXPORTER_LEN],
    ) -> bool {
        // An idle keep-alive connection is closed after this long, as web servers do.
        let idle = Duration::from_secs(self.limits.idle_timeout_secs);
        let header = Duration::from_secs(self.limits.header_timeout_secs.max(1));
        let own = [self.identity.fingerprint()];
        // A visitor may not hold a connection (and its permits) for ever by asking again and
        // again: the connection's lifetime applies here too, and after MAX_FRONT_REQUESTS
        // answers it is closed, as web servers close keep-alive connections after a number of
        // requests.
        let lifetime =
            tokio::time::Instant::now() + Duration::from_secs(self.limits.max_connection_secs);
        let mut answered = 0u32;
        loop {
            if answered >= MAX_FRONT_REQUESTS {
                return false;
            }
            // Wait for a request to begin, then for its whole head.
            if rin.buffered().is_empty() {
                let more = tokio::select! {
                    _ = self.cancel.cancelled() => false,
                    () = tokio::time::sleep_until(lifetime) => false,
                    r = tokio::time::timeout(idle, rin.read_more()) => matches!(r, Ok(true)),
                };
                if !more {
                    return false;
                }
            }
            let deadline = tokio::time::Instant::now() + header;
            let (len, knocked, body) = loop {
                let parsed = match parse_head(rin.buffered()) {
                    Ok(Some(head)) => Some((
                        head.len,
                        knock_matches(&head.knock_tags(), &own, exporter).is_some(),
                        head.content_length().map(|n| (n, head.wants_close())),
                        front::answer(&self.front_page, &head, crate::clock::now_unix()),
                    )),
                    Ok(None) => None,
                    Err(e) => {
                        self.counters.front_requests.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(error = %e, "not an HTTP request");
                        let _ = rout
                            .send(&front::bad_request(crate::clock::now_unix()))
                            .await;
                        return false;
                    }
                };
                if let Some(p) = parsed {
                    break (p.0, p.1, (p.2, p.3));
                }
                match tokio::time::timeout_at(deadline, rin.read_more()).await {
                    Ok(true) => {}
                    // A head that never completes is dropped without an answer, as a web
                    // server's header timeout does.
                    _ => return false,
                }
            };
            rin.consume(len);
            if knocked {
                return match self.identity.proof(exporter) {
                    Ok(proof) => rout.send(&proof).await,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot make the identity proof");
                        false
                    }
                };
            }
            self.counters.front_requests.fetch_add(1, Ordering::Relaxed);
            let ((length, (answer, close)), now) = (body, crate::clock::now_unix());
            match length {
                Err(_) => {
                    let _ = rout.send(&front::bad_request(now)).await;
                    return false;
                }
                Ok((n, _)) if n > front::MAX_DISCARDED_BODY => {
                    let _ = rout.send(&front::too_large(now)).await;
                    return false;
                }
                Ok((n, _)) => {
                    let discarded = tokio::time::timeout(header, rin.discard(n as usize)).await;
                    if !matches!(discarded, Ok(true)) {
                        return false;
                    }
                }
            }
            answered += 1;
            if !rout.send(&answer).await || close {
                return false;
            }
        }
    }

    /// Phase 3: Vigil requests, one at a time, until the client leaves, the connection is idle
    /// too long or reaches its lifetime, or an answer could not be completed.
    async fn vigil_requests(
        &self,
        rin: &mut TcpIn,
        rout: &mut TcpOut,
        exporter: [u8; EXPORTER_LEN],
        ip: IpAddr,
    ) {
        let state = ConnState::new(exporter);
        let idle = Duration::from_secs(self.limits.idle_timeout_secs);
        let lifetime =
            tokio::time::Instant::now() + Duration::from_secs(self.limits.max_connection_secs);
        loop {
            let ready = tokio::select! {
                _ = self.cancel.cancelled() => false,
                () = tokio::time::sleep_until(lifetime) => {
                    self.counters.connections_expired.fetch_add(1, Ordering::Relaxed);
                    false
                }
                r = tokio::time::timeout(idle, rin.ready()) => matches!(r, Ok(true)),
            };
            if !ready {
                return;
            }
            self.request(ReqSend::Tcp(rout), ReqRecv::Tcp(rin), &state, ip)
                .await;
            // An answer that could not be finished, or a request answered before its payload
            // was read: the client cannot find the next request's start; close.
            if rout.broken || rin.unread() > 0 {
                return;
            }
        }
    }
}

/// Close politely: TLS close_notify, then read and discard what the client still sends for a
/// moment, so that our last answer is not lost to a reset.
async fn linger_close(rin: &mut TcpIn, rout: &mut TcpOut) {
    rout.shutdown().await;
    let _ = tokio::time::timeout(LINGER, async {
        while rin.read_more().await {
            let n = rin.buffered().len();
            rin.consume(n);
        }
    })
    .await;
}
