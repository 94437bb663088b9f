//! The relay client: connect over QUIC or TLS on TCP (directly or through a SOCKS5 proxy),
//! knock and check the relay's identity, then one request per stream (QUIC) or one after
//! another (TCP).
//!
//! - `tls`: the identity check (the certificate the card pins by its SHA-256 fingerprint,
//!   proven inside TLS after a knock: `vigil_core::wire::knock`) and the TLS settings (TLS 1.3,
//!   no session resumption, no 0-RTT, no SNI, so the relay cannot link one reporter's
//!   connections).
//! - `transport`: this run's choice of transport and proxy, and what worked per relay.
//! - `connection`: [`RelayClient`] connects (QUIC, TCP, or QUIC with a TCP fallback), and sends
//!   each request frame through one exchange function with a time bound ([`LinkOptions`]).
//! - `tcp`, `socks`: TLS over TCP, and the SOCKS5 proxy client.
//! - `requests`: one client call per protocol request (challenge, register, deposit, fetch,
//!   ack, status), with proofs of mailbox ownership bound to the connection, and the check-in
//!   alert calls (arm, check in, disarm, fetch with release notes).
//! - `error`: [`RelayError`], what went wrong, in words that fit any command; each command
//!   family adds its own advice (`crate::failure`).

mod connection;
mod error;
mod requests;
mod socks;
mod tcp;
pub mod tls;
pub mod transport;

pub use connection::{
    knock_quic, LinkOptions, RelayClient, CONNECT_TIMEOUT, IDLE_TIMEOUT, MIN_UPLOAD_RATE,
    REQUEST_TIMEOUT,
};
pub use error::RelayError;
pub use requests::{Deposited, FetchedItem, FullItem, NotedItem};
pub use tls::MAX_PINNED;
pub use transport::{NetSettings, Proxy, Transport};
