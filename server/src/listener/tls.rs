//! The relay's TLS and QUIC transport configuration: TLS 1.3 only, ALPN `vigil/1`, no 0-RTT, no
//! session tickets or resumption (a resumed session would let the relay link a client's
//! connections), bounded windows and streams.

use crate::cert::Identity;
use crate::config::{Limits, RelayConfig};
use anyhow::{Context, Result};
use quinn::crypto::rustls::QuicServerConfig;
use quinn::{IdleTimeout, TransportConfig, VarInt};
use std::sync::Arc;
use std::time::Duration;
use vigil_core::wire::ALPN;

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
    // No address-validation tokens in NEW_TOKEN frames: a client that kept one and presented it
    // on its next connection would let the relay tie the two together (the token carries the
    // address and time it was issued for). Retry tokens, used within one handshake under load,
    // are unaffected. (quinn's default is already 0 without its `bloom` feature; said here so it
    // stays so whatever features a dependency turns on.)
    sc.validation_token.sent(0);
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
