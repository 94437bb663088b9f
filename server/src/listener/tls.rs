//! The relay's TLS and QUIC transport configuration: TLS 1.3 only, the web's ALPN values (`h3`
//! on QUIC, `http/1.1` on TCP), the front certificate, no 0-RTT, no session tickets or
//! resumption (a resumed session would let the relay link a client's connections), bounded
//! windows and streams. And the identity key that signs the proof a knocking client checks
//! (`vigil_core::wire::knock`).

use crate::cert::{Front, Identity};
use crate::config::{Limits, RelayConfig};
use anyhow::{Context, Result};
use quinn::crypto::rustls::QuicServerConfig;
use quinn::{IdleTimeout, TransportConfig, VarInt};
use std::sync::Arc;
use std::time::Duration;
use vigil_core::ids::CertFingerprint;
use vigil_core::wire::knock::{identity_message, IdentityProof};
use vigil_core::wire::limits::EXPORTER_LEN;
use vigil_core::wire::{QUIC_ALPN, TCP_ALPN};

/// The certificate cards pin, and its key, ready to sign identity proofs.
pub(crate) struct IdentityKey {
    cert: Vec<u8>,
    fingerprint: CertFingerprint,
    key: Arc<dyn rustls::sign::SigningKey>,
}

impl IdentityKey {
    pub(crate) fn new(identity: &Identity) -> Result<Self> {
        let key = rustls::crypto::ring::sign::any_supported_type(&identity.key)
            .context("the relay key in the data directory is not usable; restore it from backup")?;
        Ok(Self {
            cert: identity.cert.to_vec(),
            fingerprint: identity.fingerprint(),
            key,
        })
    }

    /// The fingerprint cards pin.
    pub(crate) fn fingerprint(&self) -> CertFingerprint {
        self.fingerprint
    }

    /// The identity proof for the connection with `exporter`, encoded.
    pub(crate) fn proof(&self, exporter: &[u8; EXPORTER_LEN]) -> Result<Vec<u8>> {
        use rustls::SignatureScheme as S;
        let signer = self
            .key
            .choose_scheme(&[
                S::ECDSA_NISTP256_SHA256,
                S::ED25519,
                S::ECDSA_NISTP384_SHA384,
                S::RSA_PSS_SHA256,
            ])
            .context("the relay key's type cannot sign identity proofs")?;
        let signature = signer
            .sign(&identity_message(exporter))
            .map_err(|e| anyhow::anyhow!("cannot sign the identity proof: {e}"))?;
        IdentityProof {
            cert: self.cert.clone(),
            scheme: u16::from(signer.scheme()),
            signature,
        }
        .encode()
        .context("the relay certificate is too large for an identity proof")
    }
}

/// rustls + quinn server configuration: TLS 1.3 only, ALPN `h3`, the front certificate, no
/// 0-RTT, no session tickets or resumption (a resumed session would let the relay link a
/// client's connections), bounded windows and streams.
pub(crate) fn server_config(front: &Front, config: &RelayConfig) -> Result<quinn::ServerConfig> {
    let tls = tls_config(front, QUIC_ALPN)?;
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

/// The TLS-over-TCP configuration: the same as QUIC's, with ALPN `http/1.1` (a client that
/// offers no ALPN, like many scanners, is served too, as web servers do).
pub(crate) fn tcp_config(front: &Front) -> Result<Arc<rustls::ServerConfig>> {
    // A client offering only other protocols (`h2` alone) is refused, as by any HTTP/1.1-only
    // server; browsers and curl always offer `http/1.1` too.
    Ok(Arc::new(tls_config(front, TCP_ALPN)?))
}

fn tls_config(front: &Front, alpn: &[u8]) -> Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 is not available in the crypto provider")?
        .with_no_client_auth()
        .with_single_cert(front.chain.clone(), front.key.clone_key())
        .context("the TLS certificate or its key is not usable (a --tls-cert/--tls-key pair that does not match, or a damaged front certificate in the data directory: delete front-cert.der and front-key.der to make a new one)")?;
    tls.alpn_protocols = vec![alpn.to_vec()];
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
        let front = crate::cert::load_front(dir.path(), None, None).unwrap();
        let tls = tls_config(&front, QUIC_ALPN).unwrap();
        assert_eq!(tls.max_early_data_size, 0);
        assert_eq!(tls.send_tls13_tickets, 0);
        assert!(!tls.session_storage.can_cache());
        assert!(!tls.ticketer.enabled());
        assert_eq!(tls.alpn_protocols, vec![QUIC_ALPN.to_vec()]);
    }
}
