//! The QUIC shell around the handlers: TLS and transport configuration, the accept loop, one task
//! per connection and one per request stream.
//!
//! Shutdown follows mini-redis' shape with tokio-util types: a [`CancellationToken`] stops the
//! accept loop and every connection's stream loop; every task is spawned on one [`TaskTracker`],
//! so `RelayHandle::shutdown` can wait until in-flight requests have been answered.

use crate::cert::Identity;
use crate::config::RelayConfig;
use crate::handlers::{self, ConnState, Refusal, Shared};
use anyhow::{Context, Result};
use quinn::crypto::rustls::{HandshakeData, QuicServerConfig};
use quinn::{Endpoint, IdleTimeout, Incoming, RecvStream, SendStream, TransportConfig, VarInt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use vigil_core::wire::limits::{EXPORTER_LABEL, EXPORTER_LEN, FRAME_HEADER_LEN, MAX_REQUEST_LEN};
use vigil_core::wire::{self, WireError, ALPN};

/// Time allowed for the QUIC/TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to wait for the client to acknowledge a response before the stream task ends.
const RESPONSE_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Request-memory budget is counted in units of this many bytes (semaphore permits).
const BUDGET_UNIT: usize = 1024;
/// Stream error code sent with STOP_SENDING when a request is refused before its body is read.
const STOP_REFUSED: u32 = 1;

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
    sc.transport_config(Arc::new(transport_config(config)?));
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

fn transport_config(config: &RelayConfig) -> Result<TransportConfig> {
    let mut t = TransportConfig::default();
    t.max_concurrent_bidi_streams(VarInt::from_u32(config.max_streams_per_connection));
    t.max_concurrent_uni_streams(VarInt::from_u32(0));
    // Per-stream window: enough to keep a deposit moving; per-connection window: a few streams.
    t.stream_receive_window(VarInt::from_u32(1024 * 1024));
    t.receive_window(VarInt::from_u32(4 * 1024 * 1024));
    t.send_window(8 * 1024 * 1024);
    t.max_idle_timeout(Some(
        IdleTimeout::try_from(config.idle_timeout).context("idle timeout is too long")?,
    ));
    Ok(t)
}

/// Everything the accept loop hands to connection tasks.
pub(crate) struct Listener {
    pub(crate) endpoint: Endpoint,
    pub(crate) shared: Arc<Shared>,
    pub(crate) cancel: CancellationToken,
    pub(crate) tracker: TaskTracker,
    /// Permit per open connection; when none is left new connections are refused.
    pub(crate) connections: Arc<Semaphore>,
    /// Bytes of request bodies in memory, in [`BUDGET_UNIT`]s.
    pub(crate) body_budget: Arc<Semaphore>,
    pub(crate) request_timeout: Duration,
}

impl Listener {
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
            let Ok(permit) = this.connections.clone().try_acquire_owned() else {
                tracing::warn!("connection limit reached; refusing a connection");
                incoming.refuse();
                continue;
            };
            let l = this.clone();
            this.tracker.spawn(
                async move { l.connection(incoming, permit).await }
                    .instrument(tracing::debug_span!("conn")),
            );
        }
        tracing::debug!("accept loop stopped");
    }

    async fn connection(self: Arc<Self>, incoming: Incoming, _permit: OwnedSemaphorePermit) {
        let conn = match tokio::time::timeout(HANDSHAKE_TIMEOUT, incoming).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "handshake failed");
                return;
            }
            Err(_) => {
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
            self.tracker.spawn(
                async move {
                    let timeout = l.request_timeout;
                    if tokio::time::timeout(timeout, l.stream(send, recv, &st))
                        .await
                        .is_err()
                    {
                        tracing::debug!("request timed out");
                    }
                }
                .in_current_span(),
            );
        }
    }

    /// Read one request, answer it, finish the stream.
    async fn stream(&self, mut send: SendStream, mut recv: RecvStream, conn: &ConnState) {
        let response = match self.read_request(&mut recv).await {
            Ok(Some((header, body, _permit))) => {
                handlers::handle_body(&self.shared, conn, header.frame_type, body).await
            }
            Ok(None) => return,
            Err(refusal) => {
                let _ = recv.stop(VarInt::from_u32(STOP_REFUSED));
                refusal.encode()
            }
        };
        if send.write_all(&response).await.is_err() || send.finish().is_err() {
            return;
        }
        let _ = tokio::time::timeout(RESPONSE_DRAIN_TIMEOUT, send.stopped()).await;
    }

    /// Read the header, check it, then read exactly the body it announces, and check the client
    /// finished the stream. `Ok(None)`: the stream is gone, nobody to answer.
    async fn read_request(
        &self,
        recv: &mut RecvStream,
    ) -> Result<Option<(wire::FrameHeader, Vec<u8>, OwnedSemaphorePermit)>, Refusal> {
        let mut h = [0u8; FRAME_HEADER_LEN];
        match recv.read_exact(&mut h).await {
            Ok(()) => {}
            Err(quinn::ReadExactError::FinishedEarly(got)) => {
                return Err(Refusal::from_wire(&WireError::Truncated {
                    what: "frame header",
                    needed: (FRAME_HEADER_LEN - got) as u64,
                }))
            }
            Err(quinn::ReadExactError::ReadError(_)) => return Ok(None),
        }
        let header = wire::decode_request_header(&h).map_err(|e| Refusal::from_wire(&e))?;
        let len = header.body_len;
        let units = len.div_ceil(BUDGET_UNIT);
        let units = u32::try_from(units).unwrap_or(u32::MAX);
        let Ok(permit) = self.body_budget.clone().acquire_many_owned(units).await else {
            return Ok(None);
        };
        // Grow with the data actually received; the header check already bounded `len`.
        let mut body = Vec::with_capacity(len.min(64 * 1024));
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
            Ok(None) => Ok(Some((header, body, permit))),
            Ok(Some(_)) => Err(Refusal::from_wire(&WireError::TrailingData { extra: 1 })),
            Err(_) => Ok(None),
        }
    }
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
