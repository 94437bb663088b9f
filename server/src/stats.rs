//! Operator statistics: counts and sizes only.
//!
//! sled allows one process per database, so `vigil-relay stats` cannot open the store while the
//! relay runs. Instead the running relay writes [`STATS_FILE`] in its data directory every
//! `stats_interval_secs` (write to a temporary file, fsync, rename: readers never see half a
//! file), and `stats` / `health` read it. Nothing in it identifies a mailbox, an item or a
//! client: no ids, no addresses, no per-mailbox figures.

use crate::store::FlushStats;
use crate::store::StoreStats;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// File name of the stats snapshot inside the data directory.
pub const STATS_FILE: &str = "stats.json";

/// One snapshot.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RelayStats {
    /// Program version.
    pub version: String,
    /// Unix seconds when this snapshot was taken.
    pub written_at: u64,
    /// Unix seconds when the relay started.
    pub started_at: u64,
    /// Seconds between snapshots (a reader treats a snapshot older than a few of these as
    /// stale).
    pub interval_secs: u64,
    /// Whether the relay is shutting down (the last snapshot of a clean stop says true).
    pub stopped: bool,
    /// Registered mailboxes, waiting items and their envelope bytes, armed check-in alerts.
    pub store: StoreStats,
    /// Bytes the store directory takes on disk.
    pub store_disk_bytes: u64,
    /// Whether deposits are accepted (false: disk full or read-only).
    pub accepting_deposits: bool,
    /// Bytes free in the data directory at the last probe.
    pub free_bytes: u64,
    /// Whether the last flush of the store succeeded.
    pub last_flush_ok: bool,
    /// Group commit figures.
    pub flush: FlushStats,
    /// Connections open now.
    pub connections_open: u64,
    /// Connection attempts handed to the handshake since start.
    pub connections_accepted: u64,
    /// Refused because the total connection limit was reached.
    pub refused_connection_limit: u64,
    /// Refused because one source address had too many connections.
    pub refused_per_address: u64,
    /// QUIC Retry packets sent (address validation under load).
    pub retries_sent: u64,
    /// Retries due but not possible (the client had answered one already); admitted instead.
    #[serde(default)]
    pub retries_failed: u64,
    /// Handshakes that failed or timed out.
    pub handshakes_failed: u64,
    /// Connections closed because they reached `max_connection_secs`.
    #[serde(default)]
    pub connections_expired: u64,
    /// Streams dropped because the header came too late.
    pub header_timeouts: u64,
    /// Requests refused because the body came too slowly.
    pub slow_bodies: u64,
    /// Deposits, registrations, fetches and status requests refused by per-address rates.
    pub rate_limited: u64,
    /// Of `connections_accepted`, those over TLS on TCP.
    #[serde(default)]
    pub tcp_accepted: u64,
    /// HTTP requests answered as an ordinary web server (no good knock: scanners, browsers,
    /// probes, or clients whose card pins another certificate).
    #[serde(default)]
    pub front_requests: u64,
    /// QUIC connections closed because their first stream was not a good knock.
    #[serde(default)]
    pub knocks_failed: u64,
    /// Deposits newly stored since start.
    pub deposits_stored: u64,
    /// Deposit retries recognised as already stored.
    pub deposits_duplicate: u64,
    /// Registrations since start.
    pub registrations: u64,
    /// Fetches answered since start.
    pub fetches: u64,
    /// Items deleted by acks since start.
    pub items_acked: u64,
    /// Bytes of attachment chunks received since start, stored or not (a chunk cut off
    /// half-way counts what arrived): above the uploaded blobs' lengths, what was sent twice.
    #[serde(default)]
    pub blob_bytes_received: u64,
    /// Refused requests by error name (e.g. "storage-full": 3).
    pub refused: std::collections::BTreeMap<String, u64>,
}

/// Write `stats` to `dir/STATS_FILE` atomically.
pub fn write(dir: &Path, stats: &RelayStats) -> std::io::Result<()> {
    let mut text = serde_json::to_vec_pretty(stats).map_err(std::io::Error::other)?;
    text.push(b'\n');
    vigil_fs::write_atomic(&dir.join(STATS_FILE), &text, vigil_fs::Access::Private)
        .map_err(std::io::Error::other)
}

/// Read the last snapshot from `dir`.
pub fn read(dir: &Path) -> anyhow::Result<RelayStats> {
    use anyhow::Context;
    let path = dir.join(STATS_FILE);
    let text = std::fs::read(&path).with_context(|| {
        format!(
            "cannot read {} (is vigil-relay serve running with --data {}?)",
            path.display(),
            dir.display()
        )
    })?;
    serde_json::from_slice(&text).with_context(|| format!("{} is not valid", path.display()))
}

/// Why a relay is unhealthy, or `Ok` with a one-line summary.
pub fn health(stats: &RelayStats, now: u64) -> Result<String, String> {
    let max_age = (3 * stats.interval_secs).max(15);
    let age = now.saturating_sub(stats.written_at);
    if stats.stopped {
        return Err("relay is stopped".into());
    }
    if age > max_age {
        return Err(format!(
            "stats are {age} s old (more than {max_age} s): the relay is not running or hangs"
        ));
    }
    if !stats.last_flush_ok {
        return Err(
            "the last flush of the store failed: reports cannot be stored; see the log".into(),
        );
    }
    if !stats.accepting_deposits {
        return Err(format!(
            "refusing deposits: the data directory is full or read-only ({} bytes free)",
            stats.free_bytes
        ));
    }
    Ok(format!(
        "ok: {} connections, {} items waiting, {} bytes free",
        stats.connections_open, stats.store.items, stats.free_bytes
    ))
}

/// Total size of the files under `dir`, following no symlinks.
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    let mut visited = 0usize;
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            visited += 1;
            if visited > 1_000_000 {
                return total;
            }
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() {
                total = total.saturating_add(m.len());
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_and_health() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = RelayStats {
            written_at: 1000,
            interval_secs: 5,
            accepting_deposits: true,
            last_flush_ok: true,
            ..Default::default()
        };
        write(dir.path(), &s).unwrap();
        assert_eq!(read(dir.path()).unwrap(), s);
        assert!(health(&s, 1010).is_ok());
        assert!(health(&s, 1100).unwrap_err().contains("old"));
        s.accepting_deposits = false;
        assert!(health(&s, 1000).unwrap_err().contains("full"));
        s.stopped = true;
        assert!(health(&s, 1000).is_err());
    }
}
