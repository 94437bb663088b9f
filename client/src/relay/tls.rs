//! TLS for the relay connection, and the one place the relay's identity is checked.
//!
//! A relay shows every client the same *front* certificate in TLS (plain, or a real one for
//! its domain), so that a scanner learns nothing: see `vigil_core::wire::knock`. The TLS layer
//! therefore accepts any certificate ([`FrontVerifier`], which still checks the handshake
//! signature, so the TLS session is a real one with whoever holds that key). What makes the
//! relay trusted comes next, inside TLS: the client knocks with its card's pinned fingerprints
//! and the relay answers with an identity proof, which [`Pins::check_proof`] accepts only if
//! the certificate in it is pinned (compared in constant time) and its key signed this
//! connection's exporter. A man in the middle holds a different exporter on each side: it can
//! neither knock for the client nor sign for the relay.
//!
//! Every configuration built here is TLS 1.3 only, with session resumption and 0-RTT off and no
//! SNI, so the relay cannot link one reporter's connections by session tickets, and the
//! network sees no server name.

use super::RelayError;
use quinn::crypto::rustls::QuicClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;
use vigil_core::ids::CertFingerprint;
use vigil_core::wire::knock::{identity_message, IdentityProof};
use vigil_core::wire::limits::EXPORTER_LEN;

/// Most certificates one connection may pin: the current and the next during a rotation.
pub const MAX_PINNED: usize = 2;

/// Server name given to TLS. Not sent (SNI is off) and not checked.
pub const SERVER_NAME: &str = "localhost";

/// Does `got` equal any of `pinned`? Every entry is compared, in constant time, so the time taken
/// says nothing about which one (if any) matched.
fn pin_matches(pinned: &[CertFingerprint], got: &CertFingerprint) -> bool {
    pinned.iter().fold(false, |any, p| any | got.ct_eq(p))
}

/// The certificates a card pins for its relay: 1 ..= [`MAX_PINNED`], the current one first.
#[derive(Clone, Debug)]
pub struct Pins(Vec<CertFingerprint>);

impl Pins {
    /// Refuses an empty set ([`RelayError::NothingPinned`]) and more than [`MAX_PINNED`].
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
        Ok(Self(pinned.to_vec()))
    }

    /// The pinned fingerprints, the current one first.
    pub fn as_slice(&self) -> &[CertFingerprint] {
        &self.0
    }

    /// Accept the relay's identity proof for the connection with `exporter`: the certificate
    /// must be pinned and its key must have signed `identity_message(exporter)`.
    pub fn check_proof(
        &self,
        proof: &[u8],
        exporter: &[u8; EXPORTER_LEN],
    ) -> Result<(), RelayError> {
        let p = IdentityProof::decode(proof)
            .map_err(|e| RelayError::Protocol(format!("the relay's identity proof: {e}")))?;
        let got = CertFingerprint::of_der(&p.cert);
        if !pin_matches(&self.0, &got) {
            return Err(RelayError::FingerprintMismatch {
                expected: self.0[0],
                got: Some(got),
            });
        }
        verify_signature(&p, &identity_message(exporter)).map_err(|why| {
            RelayError::Protocol(format!("the relay's identity proof does not verify: {why}"))
        })
    }
}

/// Check `proof.signature` over `message` with the key of `proof.cert`, by the algorithm its
/// TLS SignatureScheme code names (only the schemes TLS 1.3 allows).
fn verify_signature(proof: &IdentityProof, message: &[u8]) -> Result<(), String> {
    use webpki::ring as alg;
    let algorithm: &dyn rustls::pki_types::SignatureVerificationAlgorithm =
        match SignatureScheme::from(proof.scheme) {
            SignatureScheme::ECDSA_NISTP256_SHA256 => alg::ECDSA_P256_SHA256,
            SignatureScheme::ECDSA_NISTP384_SHA384 => alg::ECDSA_P384_SHA384,
            SignatureScheme::ED25519 => alg::ED25519,
            SignatureScheme::RSA_PSS_SHA256 => alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
            other => return Err(format!("unsupported signature scheme {other:?}")),
        };
    let cert = CertificateDer::from(proof.cert.as_slice());
    let ee = webpki::EndEntityCert::try_from(&cert).map_err(|e| e.to_string())?;
    ee.verify_signature(algorithm, message, &proof.signature)
        .map_err(|e| e.to_string())
}

/// Accepts whatever certificate the server shows (the relay's front certificate; trust comes
/// from the identity proof inside TLS), but checks that the server holds its key: the
/// handshake signature is verified as usual.
#[derive(Debug)]
pub struct FrontVerifier {
    provider: Arc<CryptoProvider>,
}

impl FrontVerifier {
    fn new() -> Self {
        Self {
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        }
    }
}

impl ServerCertVerifier for FrontVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
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

fn tls_setup(e: impl std::fmt::Display) -> RelayError {
    RelayError::Protocol(format!("TLS setup failed: {e}"))
}

/// A rustls client configuration for a relay: TLS 1.3 only, `alpn`, no resumption, no 0-RTT,
/// no SNI, any front certificate.
pub fn rustls_config(alpn: &[u8]) -> Result<rustls::ClientConfig, RelayError> {
    let verifier = Arc::new(FrontVerifier::new());
    let mut tls = rustls::ClientConfig::builder_with_provider(verifier.provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_setup)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    tls.alpn_protocols = vec![alpn.to_vec()];
    tls.resumption = rustls::client::Resumption::disabled();
    tls.enable_early_data = false;
    tls.enable_sni = false;
    Ok(tls)
}

/// [`rustls_config`] as a quinn client configuration, with quinn's default transport (the
/// caller may set another). For tests that need a bare QUIC connection to a relay (to
/// misbehave, or to stop half way through a request) and benchmarks: after connecting they must
/// knock ([`super::knock_quic`]) like the `vigil` program's [`super::RelayClient`] does.
pub fn quic_client_config(alpn: &[u8]) -> Result<quinn::ClientConfig, RelayError> {
    let quic = QuicClientConfig::try_from(rustls_config(alpn)?).map_err(tls_setup)?;
    Ok(quinn::ClientConfig::new(Arc::new(quic)))
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
        assert!(matches!(Pins::new(&[]), Err(RelayError::NothingPinned)));
        assert!(matches!(
            Pins::new(&[a, a, a]),
            Err(RelayError::Protocol(_))
        ));
    }

    #[test]
    fn identity_proofs_verify_only_for_their_connection_and_pin() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["example.org".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der().to_vec();
        let fp = CertFingerprint::of_der(&der);
        let pkcs8 = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let signer = rustls::crypto::ring::sign::any_supported_type(&pkcs8)
            .unwrap()
            .choose_scheme(&[SignatureScheme::ECDSA_NISTP256_SHA256])
            .unwrap();
        let exporter = [5u8; EXPORTER_LEN];
        let proof = IdentityProof {
            cert: der,
            scheme: u16::from(signer.scheme()),
            signature: signer.sign(&identity_message(&exporter)).unwrap(),
        }
        .encode()
        .unwrap();
        Pins::new(&[fp])
            .unwrap()
            .check_proof(&proof, &exporter)
            .unwrap();
        // Another connection: the signature does not verify.
        assert!(matches!(
            Pins::new(&[fp])
                .unwrap()
                .check_proof(&proof, &[6; EXPORTER_LEN]),
            Err(RelayError::Protocol(_))
        ));
        // Another pin: a mismatch naming what the relay showed.
        let other = CertFingerprint([9; 32]);
        match Pins::new(&[other]).unwrap().check_proof(&proof, &exporter) {
            Err(RelayError::FingerprintMismatch { got, expected }) => {
                assert_eq!(got, Some(fp));
                assert_eq!(expected, other);
            }
            r => panic!("{r:?}"),
        }
    }
}
