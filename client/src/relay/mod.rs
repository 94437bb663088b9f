//! QUIC client for the relay: connect with a pinned certificate, then one request per stream.
//!
//! - `tls`: the certificate pinning (the relay's self-signed certificate is trusted by its
//!   SHA-256 fingerprint on the NGO's signed card) and the TLS settings (TLS 1.3, no session
//!   resumption, no 0-RTT, no SNI, so the relay cannot link one reporter's connections).
//! - `connection`: [`RelayClient`] connects, and sends each request frame on its own stream
//!   through one exchange function with a time bound ([`LinkOptions`]).
//! - `requests`: one client call per protocol request (challenge, register, deposit, fetch,
//!   ack, status), with proofs of mailbox ownership bound to the connection, and the check-in
//!   alert calls (arm, check in, disarm, fetch with release notes).
//! - `error`: [`RelayError`], what went wrong, in words that fit any command; each command
//!   family adds its own advice (`crate::failure`).

mod connection;
mod error;
mod requests;
pub mod tls;

pub use connection::{
    LinkOptions, RelayClient, CONNECT_TIMEOUT, IDLE_TIMEOUT, MIN_UPLOAD_RATE, REQUEST_TIMEOUT,
};
pub use error::RelayError;
pub use requests::{Deposited, FetchedItem, FullItem, NotedItem};
pub use tls::MAX_PINNED;
