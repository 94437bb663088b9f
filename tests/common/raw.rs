//! Shared by the relay's network tests: a bare QUIC client that speaks `vigil/1`, for tests that
//! need to misbehave or to stop half way through a request. It pins the relay's certificate with
//! the client's own verifier (`vigil_client::relay::tls`).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;
use vigil_core::ids::CertFingerprint;
use vigil_core::wire::ALPN;

/// A client endpoint bound to `ip` (any port) that accepts only the relay certificate `fp`.
pub fn raw_endpoint(ip: &str, fp: CertFingerprint) -> quinn::Endpoint {
    let mut ep = quinn::Endpoint::client(format!("{ip}:0").parse().unwrap()).unwrap();
    ep.set_default_client_config(
        vigil_client::relay::tls::quic_client_config(&[fp], ALPN).unwrap(),
    );
    ep
}

/// Connect, or `None` if refused or too slow.
pub async fn connect(ep: &quinn::Endpoint, relay: SocketAddr) -> Option<quinn::Connection> {
    let c = ep
        .connect(relay, vigil_client::relay::tls::SERVER_NAME)
        .ok()?;
    tokio::time::timeout(Duration::from_secs(5), c)
        .await
        .ok()?
        .ok()
}
