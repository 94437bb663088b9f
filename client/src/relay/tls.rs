//! TLS for the relay connection, and the one certificate verifier in Vigil.
//!
//! The relay's certificate is self-signed; what makes it trusted is its SHA-256 fingerprint on
//! the NGO's signed recipient card. [`PinnedCertVerifier`] accepts exactly the pinned
//! certificate(s), at most [`MAX_PINNED`] of them (the current and the next certificate while
//! the relay operator rotates it, see `docs/operations.md`), and verifies the TLS 1.3 handshake
//! signature with ring. It records what the relay presented, so that a mismatch is reported as
//! such and not as "unreachable".
//!
//! Every configuration built here is TLS 1.3 only, with session resumption and 0-RTT off and no
//! SNI, so the relay cannot link one reporter's connections by session tickets.
//!
//! Tests and the benchmark use the same verifier through [`quic_client_config`] (pinned, quinn's
//! default transport) and, with the `unpinned` cargo feature only, `unpinned_quic_client_config`
//! (any certificate; for the benchmark's bare-quinn anchor server, whose throwaway certificate
//! lives in another process).

use super::RelayError;
use quinn::crypto::rustls::QuicClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::sync::{Arc, Mutex};
use vigil_core::ids::CertFingerprint;

/// Most certificates one connection may pin: the current and the next during a rotation.
pub const MAX_PINNED: usize = 2;

/// Server name given to TLS. Not sent (SNI is off) and not checked (the certificate is pinned).
pub const SERVER_NAME: &str = "vigil-relay";

/// Does `got` equal any of `pinned`? Every entry is compared, in constant time, so the time taken
/// says nothing about which one (if any) matched.
fn pin_matches(pinned: &[CertFingerprint], got: &CertFingerprint) -> bool {
    pinned.iter().fold(false, |any, p| any | got.ct_eq(p))
}

/// Which certificates a verifier accepts.
#[derive(Debug)]
enum Pins {
    /// Exactly these (1 ..= [`MAX_PINNED`]).
    Exactly(Vec<CertFingerprint>),
    /// Any certificate: the benchmark's bare-quinn anchor only (`unpinned` feature).
    #[cfg(feature = "unpinned")]
    AnyForBench,
}

/// Accepts exactly the certificates identified by the pinned SHA-256 fingerprints, and records
/// what the server presented so that a mismatch can be reported as such.
#[derive(Debug)]
pub struct PinnedCertVerifier {
    pins: Pins,
    presented: Mutex<Option<CertFingerprint>>,
    provider: Arc<CryptoProvider>,
}

impl PinnedCertVerifier {
    /// A verifier for `pinned` (the card's current fingerprint first, then its announced next
    /// one). Refuses an empty set ([`RelayError::NothingPinned`]) and more than [`MAX_PINNED`].
    pub fn new(pinned: &[CertFingerprint]) -> Result<Self, RelayError> {
        if pinned.is_empty() {
            return Err(RelayError::NothingPinned);
        }
        if pinned.len() > MAX_PINNED {
            return Err(RelayError::Protocol(format!(
                "{} certificates pinned, at most {MAX_PINNED} are allowed",
                pinned.len()
            )));
        }
        Ok(Self::with_pins(Pins::Exactly(pinned.to_vec())))
    }

    fn with_pins(pins: Pins) -> Self {
        Self {
            pins,
            presented: Mutex::new(None),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        }
    }

    /// The fingerprint the relay presented, if the handshake got that far and it is not one of
    /// the pinned ones: the evidence for [`RelayError::FingerprintMismatch`].
    pub fn mismatch(&self) -> Option<CertFingerprint> {
        let got = self.presented.lock().ok().and_then(|p| *p)?;
        match &self.pins {
            Pins::Exactly(pinned) => (!pin_matches(pinned, &got)).then_some(got),
            #[cfg(feature = "unpinned")]
            Pins::AnyForBench => None,
        }
    }

    /// A rustls client configuration using this verifier: TLS 1.3 only, `alpn`, no resumption,
    /// no 0-RTT, no SNI.
    pub fn rustls_config(self: Arc<Self>, alpn: &[u8]) -> Result<rustls::ClientConfig, RelayError> {
        let mut tls = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_setup)?
            .dangerous()
            .with_custom_certificate_verifier(self)
            .with_no_client_auth();
        tls.alpn_protocols = vec![alpn.to_vec()];
        tls.resumption = rustls::client::Resumption::disabled();
        tls.enable_early_data = false;
        tls.enable_sni = false;
        Ok(tls)
    }

    /// [`PinnedCertVerifier::rustls_config`] as a quinn client configuration, with quinn's
    /// default transport (the caller may set another).
    pub fn quic_config(self: Arc<Self>, alpn: &[u8]) -> Result<quinn::ClientConfig, RelayError> {
        let quic = QuicClientConfig::try_from(self.rustls_config(alpn)?).map_err(tls_setup)?;
        Ok(quinn::ClientConfig::new(Arc::new(quic)))
    }
}

fn tls_setup(e: impl std::fmt::Display) -> RelayError {
    RelayError::Protocol(format!("TLS setup failed: {e}"))
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
        let accepted = match &self.pins {
            Pins::Exactly(pinned) => pin_matches(pinned, &got),
            #[cfg(feature = "unpinned")]
            Pins::AnyForBench => true,
        };
        if accepted && intermediates.is_empty() {
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

/// A quinn client configuration that accepts only the certificates `pinned`, speaks `alpn` and
/// uses quinn's default transport: for tests that need a bare QUIC connection to a relay (to
/// misbehave, or to stop half way through a request). The `vigil` program connects through
/// [`super::RelayClient`] instead.
pub fn quic_client_config(
    pinned: &[CertFingerprint],
    alpn: &[u8],
) -> Result<quinn::ClientConfig, RelayError> {
    Arc::new(PinnedCertVerifier::new(pinned)?).quic_config(alpn)
}

/// **Benchmark and test use only; never in the `vigil` program.** A quinn client configuration
/// that accepts *any* server certificate (the handshake signature is still verified), for the
/// benchmark's bare-quinn anchor server, whose throwaway certificate is made in another process.
/// Compiled only with the `unpinned` cargo feature, which only `vigil-bench` enables.
#[cfg(feature = "unpinned")]
pub fn unpinned_quic_client_config(alpn: &[u8]) -> Result<quinn::ClientConfig, RelayError> {
    Arc::new(PinnedCertVerifier::with_pins(Pins::AnyForBench)).quic_config(alpn)
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

    #[test]
    fn empty_or_oversized_pin_sets_are_refused() {
        let a = CertFingerprint([1; 32]);
        assert!(matches!(
            PinnedCertVerifier::new(&[]),
            Err(RelayError::NothingPinned)
        ));
        assert!(matches!(
            PinnedCertVerifier::new(&[a, a, a]),
            Err(RelayError::Protocol(_))
        ));
    }
}
