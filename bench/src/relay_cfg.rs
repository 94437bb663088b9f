//! The one place that configures the relay under test.
//!
//! The relay's defaults protect a public server: a cap on connections, per-address caps and
//! rates, mailbox quotas. The bench is one source address (127.0.0.1) opening up to 10,000
//! connections and depositing far beyond one mailbox's quota, so it raises exactly these
//! limits, and nothing that changes how a deposit is read, stored or made durable. Everything
//! else (windows, streams per connection, timeouts, Retry above 64 connections, request memory
//! budget, free-space gate) keeps the relay's defaults.

use std::path::Path;
use vigil_relay::RelayConfig;

/// A relay on 127.0.0.1 (port chosen by the OS) storing in `dir`, allowing `connections`.
pub fn relay_config(dir: &Path, connections: usize) -> RelayConfig {
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let mut c = RelayConfig::new(dir, listen);
    let l = &mut c.limits;
    l.max_connections = connections + 64;
    l.max_connections_per_address = l.max_connections;
    l.mailbox_max_items = u64::MAX / 4;
    l.mailbox_max_bytes = u64::MAX / 4;
    // Loopback is exempt from per-address rates by default (limit_loopback = false); raise
    // them anyway so the figures do not depend on that default.
    l.deposits_per_minute = u32::MAX / 4;
    l.deposit_burst = u32::MAX / 4;
    l.registrations_per_hour = u32::MAX / 4;
    // Idle connections are kept open by client keep-alives every 5 s; a longer idle timeout
    // only removes a race at the end of a phase.
    l.idle_timeout_secs = 120;
    c
}
