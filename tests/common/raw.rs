//! Shared by the relay's network tests: a bare QUIC client that speaks `vigil/1`, for tests that
//! need to misbehave or to stop half way through a request. It pins the relay's certificate with
//! the client's own verifier (`vigil_client::relay::tls`).
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;
use vigil_core::ids::CertFingerprint;
use vigil_core::wire::QUIC_ALPN;

/// The pinned certificate of each raw endpoint, by its local address.
static PINS: Mutex<Option<HashMap<SocketAddr, CertFingerprint>>> = Mutex::new(None);

/// A client endpoint bound to `ip` (any port) whose connections knock with, and accept only,
/// the relay certificate `fp`.
pub fn raw_endpoint(ip: &str, fp: CertFingerprint) -> quinn::Endpoint {
    let mut ep = quinn::Endpoint::client(format!("{ip}:0").parse().unwrap()).unwrap();
    ep.set_default_client_config(vigil_client::relay::tls::quic_client_config(QUIC_ALPN).unwrap());
    PINS.lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(ep.local_addr().unwrap(), fp);
    ep
}

/// Connect and knock (the relay's identity checked), or `None` if refused or too slow.
pub async fn connect(ep: &quinn::Endpoint, relay: SocketAddr) -> Option<quinn::Connection> {
    let fp = *PINS.lock().unwrap().as_ref()?.get(&ep.local_addr().ok()?)?;
    let c = ep
        .connect(relay, vigil_client::relay::tls::SERVER_NAME)
        .ok()?;
    let conn = tokio::time::timeout(Duration::from_secs(5), c)
        .await
        .ok()?
        .ok()?;
    tokio::time::timeout(
        Duration::from_secs(5),
        vigil_client::relay::knock_quic(&conn, &relay.to_string(), &[fp]),
    )
    .await
    .ok()?
    .ok()?;
    Some(conn)
}
