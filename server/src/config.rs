//! Relay configuration.

use crate::store::Quota;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use vigil_core::wire::limits::DEFAULT_EXPIRY_SECS;

/// Everything `start` needs. Build with [`RelayConfig::new`] and adjust fields.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Holds the certificate, its key and the sled database.
    pub data_dir: PathBuf,
    /// UDP address to listen on; port 0 picks a free port (see `RelayHandle::local_addr`).
    pub listen: SocketAddr,
    /// How long an unfetched item is kept.
    pub expiry: Duration,
    /// How often expired items are removed.
    pub expiry_interval: Duration,
    /// Per-mailbox limits.
    pub quota: Quota,
    /// Most simultaneous connections; more are refused so a flood cannot exhaust memory.
    pub max_connections: usize,
    /// Most simultaneous requests per connection (QUIC bidirectional streams).
    pub max_streams_per_connection: u32,
    /// Request bodies buffered across all connections at once, in bytes. Reading a body waits
    /// for budget, so many large deposits at once cannot exhaust memory.
    pub request_memory_budget: usize,
    /// Close a connection silent for this long.
    pub idle_timeout: Duration,
    /// Give up on a request (read, handle, answer) after this long.
    pub request_timeout: Duration,
    /// How long `shutdown` waits for in-flight requests.
    pub shutdown_grace: Duration,
}

impl RelayConfig {
    /// Defaults: 30-day expiry, hourly expiry runs, 256 connections, 16 streams each, 256 MiB
    /// request memory, 30 s idle timeout, 120 s per request.
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen,
            expiry: Duration::from_secs(DEFAULT_EXPIRY_SECS),
            expiry_interval: Duration::from_secs(3600),
            quota: Quota::default(),
            max_connections: 256,
            max_streams_per_connection: 16,
            request_memory_budget: 256 * 1024 * 1024,
            idle_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}
