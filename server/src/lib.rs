//! vigil-relay: a QUIC relay that stores only ciphertext.
//!
//! Reporters deposit age-encrypted envelopes into an NGO's mailbox anonymously; the NGO fetches
//! and acknowledges them with a proof of possession of the mailbox key, bound to the TLS session
//! (see `vigil_core::wire::auth` and `docs/protocol.md`). The relay answers "stored" only after
//! the envelope is on stable storage, keeps nothing about who connected (no IP addresses in the
//! store or in info-level logs), and removes unfetched items after a configurable expiry.
//!
//! The relay is a library with a small entry point, so the `vigil-relay` program, the tests and
//! the benchmarks start it the same way, on any [`Store`](store::Store):
//!
//! * [`run`]`(config, store, shutdown)`: serve until `shutdown` completes, then stop cleanly;
//! * [`start_with`]`(config, store)` → [`RelayHandle`] (address, fingerprint, stats,
//!   [`RelayHandle::shutdown`]): the same, for callers that need the address first;
//! * [`start`]`(config)`: [`start_with`] on the sled store in `config.data_dir`.
//!
//! A map of the crate, and of a deposit's path through it, is in `docs/architecture.md`.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod body;
pub mod cert;
pub mod clock;
pub mod config;
pub mod handlers;
mod listener;
pub mod metrics;
mod ratelimit;
mod relay;
pub mod stats;
pub mod store;
pub mod waiters;

pub use config::RelayConfig;
pub use listener::ListenerCounters;
pub use relay::{
    answer_knock, fingerprint_of_data_dir, open_pg_store, open_store, quic_endpoint, run, start,
    start_with, RelayHandle, STORE_DIR,
};
pub use stats::RelayStats;
