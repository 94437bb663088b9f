//! Relay configuration: every limit in one [`Limits`] struct, with a safe default and the reason
//! for it, layered as flags > environment (`VIGIL_RELAY_*`) > TOML file > defaults.
//!
//! The file has two top-level keys and one table:
//!
//! ```toml
//! data_dir = "/var/lib/vigil-relay"
//! listen = "0.0.0.0:4433"
//! [limits]
//! max_connections = 256
//! ```
//!
//! Every key of `[limits]` is also an environment variable (`max_connections` →
//! `VIGIL_RELAY_MAX_CONNECTIONS`) and a `serve` flag (`--max-connections`). Unknown keys are
//! errors, so a typo does not silently leave a default in place.

use crate::store::Quota;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use vigil_core::wire::limits::MAX_ENVELOPE_LEN;

/// A configuration that cannot be used; the message names the setting and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the config file {path}: {reason}")]
    Read {
        /// File.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file is not valid TOML for this program (unknown key, wrong type...).
    #[error("config file {path} is not valid: {reason}")]
    Parse {
        /// File.
        path: PathBuf,
        /// What the TOML parser said.
        reason: String,
    },
    /// An environment variable does not parse as its setting's type.
    #[error("environment variable {var}={value:?} is not valid: {reason}")]
    Env {
        /// Variable.
        var: String,
        /// Its value.
        value: String,
        /// Why.
        reason: String,
    },
    /// A value is out of its allowed range.
    #[error("setting {name} = {value} is out of range: {rule}")]
    Range {
        /// Setting.
        name: &'static str,
        /// Value given.
        value: String,
        /// The rule it breaks.
        rule: String,
    },
}

/// Declares every limit once: its documentation, name, type, default and valid range. The struct,
/// the override layers, the environment variables, the flags, the validation and the docs
/// table are all generated from that one line.
macro_rules! limits {
    ($( $(#[doc = $doc:literal])+ $name:ident : $ty:ty = $default:expr, $rule:ident ( $($bound:tt)* ) $(, $why:literal)? ; )*) => {
        /// Every limit of the relay. See `docs/operations.md` for why each default is what it is.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct Limits {
            $( $(#[doc = $doc])+ pub $name: $ty, )*
        }

        impl Default for Limits {
            fn default() -> Self {
                Self { $( $name: $default, )* }
            }
        }

        /// Optional values for every limit: one layer (file, environment or flags).
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, clap::Args)]
        #[serde(deny_unknown_fields)]
        pub struct LimitOverrides {
            $( $(#[doc = $doc])+ #[arg(long)] pub $name: Option<$ty>, )*
        }

        impl LimitOverrides {
            /// Put every value this layer sets into `limits`.
            pub fn apply(&self, limits: &mut Limits) {
                $( if let Some(v) = &self.$name { limits.$name = v.clone(); } )*
            }

            /// The layer from environment variables `VIGIL_RELAY_<NAME>`, read through `get`.
            pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
                Ok(Self { $( $name: env_value::<$ty>(get, stringify!($name))?, )* })
            }
        }

        /// Name and documentation of every limit, in declaration order.
        pub const LIMIT_DOCS: &[(&str, &str)] = &[ $( (stringify!($name), concat!($($doc, "\n"),+)), )* ];

        impl Limits {
            /// Check every value against its range; the error names the setting.
            pub fn validate(&self) -> Result<(), ConfigError> {
                $( rule!(self, $name, $rule ( $($bound)* ) $(, $why)?); )*
                Ok(())
            }
        }
    };
}

/// One limit's check, and an optional reason shown with it: `any()`, `min(lo)`,
/// `range(lo, hi)`, or bounded by another limit: `at_least(other)`, `up_to(lo, other)`.
macro_rules! rule {
    ($l:ident, $name:ident, at_least($other:ident) $(, $why:literal)?) => {
        if !($l.$name >= $l.$other) {
            return Err(range_error(stringify!($name), &$l.$name, format!(">= {}", stringify!($other)), None $(.or(Some($why)))?));
        }
    };
    ($l:ident, $name:ident, up_to($lo:expr, $other:ident) $(, $why:literal)?) => {
        if !(($lo..=$l.$other).contains(&$l.$name)) {
            return Err(range_error(stringify!($name), &$l.$name, format!("{} ..= {}", stringify!($lo), stringify!($other)), None $(.or(Some($why)))?));
        }
    };
    ($l:ident, $name:ident, any()) => {};
    ($l:ident, $name:ident, min($lo:expr) $(, $why:literal)?) => {
        if !($l.$name >= $lo) {
            return Err(range_error(stringify!($name), &$l.$name, format!(">= {}", stringify!($lo)), None $(.or(Some($why)))?));
        }
    };
    ($l:ident, $name:ident, range($lo:expr, $hi:expr) $(, $why:literal)?) => {
        if !(($lo..=$hi).contains(&$l.$name)) {
            return Err(range_error(stringify!($name), &$l.$name, format!("{} ..= {}", stringify!($lo), stringify!($hi)), None $(.or(Some($why)))?));
        }
    };
}

fn range_error(
    name: &'static str,
    value: &dyn std::fmt::Display,
    rule: String,
    why: Option<&str>,
) -> ConfigError {
    let mut rule = rule;
    if let Some(why) = why {
        rule = format!("{rule} ({why})");
    }
    ConfigError::Range {
        name,
        value: value.to_string(),
        rule,
    }
}

fn env_value<T: std::str::FromStr>(
    get: &dyn Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<T>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    let var = env_var_name(name);
    match get(&var) {
        None => Ok(None),
        Some(value) => value
            .trim()
            .parse::<T>()
            .map(Some)
            .map_err(|e| ConfigError::Env {
                reason: e.to_string(),
                var,
                value,
            }),
    }
}

/// `url` with the password of its user part (`USER:PASSWORD@`), if any, replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..auth_end].rfind('@') else {
        return url.to_string();
    };
    match rest[..at].find(':') {
        Some(colon) => format!("{}{}:***{}", &url[..start], &rest[..colon], &rest[at..]),
        None => url.to_string(),
    }
}

/// `max_connections` → `VIGIL_RELAY_MAX_CONNECTIONS`.
pub fn env_var_name(setting: &str) -> String {
    format!("VIGIL_RELAY_{}", setting.to_ascii_uppercase())
}

limits! {
    /// Delete unfetched items after this many days (1 ..= 3650).
    expiry_days: u64 = 30, range(1, 3650);
    /// Longest a mailbox registered with a lifetime (a reporter's reply mailbox) is kept, in
    /// days: a registration asking for more gets this many (1 ..= 3660). NGO mailboxes carry no
    /// lifetime and are kept.
    max_mailbox_lifetime_days: u16 = DEFAULT_MAX_MAILBOX_LIFETIME_DAYS, range(1, vigil_core::wire::limits::MAX_MAILBOX_LIFETIME_DAYS), "the protocol maximum is 3660";
    /// Seconds between runs of the expiry sweep.
    expiry_interval_secs: u64 = 3600, min(1);
    /// Items one mailbox may hold before deposits to it are refused (QuotaExceeded).
    mailbox_max_items: u64 = Quota::default().max_items, min(1);
    /// Envelope bytes one mailbox may hold before deposits to it are refused (QuotaExceeded).
    mailbox_max_bytes: u64 = Quota::default().max_bytes, min(1);
    /// Largest envelope accepted in one deposit, at most the protocol's 16 MiB (TooLarge).
    max_envelope_bytes: usize = MAX_ENVELOPE_LEN, range(1, MAX_ENVELOPE_LEN), "the protocol maximum is 16777216";
    /// Most bytes one report may take at this relay, its attachment blobs included (Quote and
    /// Upload refuse more with TooLarge, stating this limit).
    max_report_bytes: u64 = crate::handlers::DEFAULT_MAX_REPORT_BYTES, range(1, vigil_core::wire::limits::MAX_BLOB_LEN), "the protocol maximum is 64 GiB";
    /// Seconds an attachment blob that no report refers to (an upload never finished, or never
    /// deposited) is kept after its last chunk arrived.
    blob_expiry_secs: u64 = crate::store::DEFAULT_BLOB_EXPIRY_SECS, range(60, 30 * 86_400);
    /// Open QUIC connections in total; more are refused before any handshake work.
    max_connections: usize = 256, min(1);
    /// Open connections (including handshakes) per source address (IPv6: per /64); more are
    /// refused before any handshake work.
    max_connections_per_address: usize = 16, up_to(1, max_connections);
    /// Above this many open connections, a new client must first prove its address with a
    /// QUIC Retry round trip (stops spoofed-source floods). 0: always.
    retry_above_connections: usize = 64, any();
    /// Handshakes waiting to be accepted at once (quinn `max_incoming`).
    max_incoming: usize = 1024, min(1);
    /// Bytes buffered for one connection that is not yet accepted (quinn
    /// `incoming_buffer_size`).
    incoming_buffer_bytes: u64 = 64 * 1024, min(1500), "one datagram must fit";
    /// Bytes buffered for all not yet accepted connections (quinn
    /// `incoming_buffer_size_total`).
    incoming_buffer_total_bytes: u64 = 16 * 1024 * 1024, at_least(incoming_buffer_bytes);
    /// Concurrent requests (bidirectional streams) per connection.
    max_streams_per_connection: u32 = 16, range(1, 1024);
    /// QUIC flow-control window per stream, bytes.
    stream_receive_window: u32 = 1024 * 1024, min(16 * 1024);
    /// QUIC flow-control window per connection, bytes (quinn leaves it unbounded by default).
    connection_receive_window: u32 = 4 * 1024 * 1024, at_least(stream_receive_window);
    /// TLS handshake bytes buffered per connection (quinn `crypto_buffer_size`).
    crypto_buffer_bytes: usize = 16 * 1024, min(4096), "a certificate must fit";
    /// Kernel receive and send buffer of the relay's one UDP socket, bytes. Every client's
    /// packets arrive on it; when it overflows the kernel drops them and clients wait for
    /// retransmissions. Linux caps it at `net.core.rmem_max` / `net.core.wmem_max` (often
    /// 208 KiB); the relay warns at start if it got less than asked (see operations.md).
    udp_buffer_bytes: usize = 4 * 1024 * 1024, range(64 * 1024, 1 << 30);
    /// Seconds a QUIC/TLS handshake may take.
    handshake_timeout_secs: u64 = 10, range(1, 86_400);
    /// Seconds of silence after which a connection is closed.
    idle_timeout_secs: u64 = 30, range(1, 3600);
    /// Seconds a connection may stay open, however busy. Without it an attacker holds the
    /// connection slots (`max_connections`, `max_connections_per_address`) forever with
    /// keep-alives. At the limit the relay takes no new requests on the connection, lets those in
    /// flight finish within their own deadlines, then closes it (QUIC application close, code 2);
    /// a client reconnects for its next request. An hour is many deposits, or one 16 MiB upload
    /// on a slow (64 KiB/s) link over ten times; an upload in progress is never cut by it.
    max_connection_secs: u64 = 3600, range(1, 7 * 86_400);
    /// Seconds from opening a stream to the end of the 6-byte request header.
    header_timeout_secs: u64 = 10, range(1, 86_400);
    /// Slowest accepted upload of a request body, bytes per second, after body_grace_secs:
    /// a body of n bytes must arrive within body_grace_secs + n / min_body_rate seconds.
    min_body_rate: u64 = 8 * 1024, min(1);
    /// Seconds added to every body deadline (see min_body_rate).
    body_grace_secs: u64 = 15, range(1, 86_400);
    /// Seconds to handle a request and send its answer once the body is in.
    request_timeout_secs: u64 = 60, range(1, 86_400);
    /// Request-body bytes held in memory at once, across all connections.
    request_memory_bytes: usize = 256 * 1024 * 1024, min(1), "one maximal request always fits";
    /// Connections to the PostgreSQL store (`store = "postgres://..."`) this relay keeps. Each
    /// request holds one for its transaction, a large deposit or upload for as long as its
    /// bytes take to arrive (at most half of them at once); a request that finds none free
    /// waits up to 30 s, then fails.
    store_connections: usize = crate::store::pg::DEFAULT_POOL_SIZE, range(2, 1024);
    /// Bytes of the store's page cache (sled `cache_capacity`). Stored reports beyond it stay
    /// on disk only; sled's own default (1 GiB) would keep that much evidence resident.
    store_cache_bytes: u64 = crate::store::sled_store::DEFAULT_CACHE_BYTES, min(1024 * 1024);
    /// Fetch responses written at once. Each streams its items a 256 KiB piece at a time and
    /// holds its slot until its last byte (or its write deadline), so response memory stays
    /// near fetch_slots x (piece + the connection's QUIC send window), however full mailboxes are.
    fetch_slots: usize = 8, min(1);
    /// Deposits per minute per source address, sustained (token bucket, memory only).
    deposits_per_minute: u32 = 60, min(1);
    /// Deposits a source address may make at once before the rate applies.
    deposit_burst: u32 = 30, min(1);
    /// Mailbox registrations per hour per source address (memory only).
    registrations_per_hour: u32 = 10, min(1);
    /// Fetch and Status requests per minute per source address, sustained (token bucket,
    /// memory only). A fetch may stream up to 32 MiB and holds a fetch slot while it does; an
    /// NGO's staff polling every few seconds, several behind one address, stay far below it.
    fetches_per_minute: u32 = 240, min(1);
    /// Fetch and Status requests a source address may make at once before the rate applies.
    fetch_burst: u32 = 60, min(1);
    /// Watchers (Wait requests, `vigil inbox watch`) waiting on one mailbox at once; more are
    /// refused (Busy). A few staff watching one inbox, plus a reconnecting one whose old wait
    /// the relay has not noticed is gone yet (TLS over TCP), fit; a key holder cannot pin more
    /// of the relay's requests and memory on one mailbox.
    max_waiters_per_mailbox: usize = crate::waiters::DEFAULT_MAX_PER_MAILBOX, range(1, 64);
    /// Longest a Wait is held, seconds (the protocol's maximum is 60; the relay also keeps it
    /// within request_timeout_secs). When it ends with nothing stored the watcher asks again.
    max_wait_secs: u16 = vigil_core::wire::limits::MAX_WAIT_SECS, range(1, vigil_core::wire::limits::MAX_WAIT_SECS), "the protocol maximum is 60";
    /// Attachment chunks (Upload and Download requests, up to 8 MiB each, 1 MiB from the
    /// client) per minute per source address, sustained: a rate of its own, so a 1 GiB video
    /// (a thousand chunks) is not held to the pace of deposits or fetches. The default, 100 a
    /// second, is about 100 MiB/s; it stops floods of tiny requests, not a fast link.
    transfer_chunks_per_minute: u32 = 6000, min(1);
    /// Attachment chunks a source address may send or ask for at once before the rate applies.
    transfer_burst: u32 = 600, min(1);
    /// Apply the per-address limits (connections, deposits, registrations, fetches) to loopback
    /// addresses too. Off by default: a local process is the operator's own (tests, a local
    /// `vigil demo`, health probes), and nobody reaches loopback from outside.
    limit_loopback: bool = false, any();
    /// Source addresses remembered by the rate limiters; when full, the one used least recently
    /// is forgotten.
    rate_limit_addresses: usize = 65536, min(16);
    /// Refuse deposits and registrations when the data directory has less free space.
    min_free_bytes: u64 = 256 * 1024 * 1024, any();
    /// Seconds between free-space probes (also how fast deposits resume after space returns).
    space_check_secs: u64 = 5, range(1, 86_400);
    /// Seconds between writes of the stats file read by `vigil-relay stats` and `health`.
    stats_interval_secs: u64 = 5, range(1, 86_400);
    /// Seconds `shutdown` waits for in-flight requests before aborting them.
    shutdown_grace_secs: u64 = 30, range(0, 3600);
}

impl Limits {
    /// Entries each rate limiter may hold.
    pub fn max_rate_entries(&self) -> usize {
        self.rate_limit_addresses.max(16)
    }

    /// The longest wait granted: `max_wait_secs`, within `request_timeout_secs` (the backstop
    /// on every request's handling, which a held Wait must not run into).
    pub fn wait_secs(&self) -> u16 {
        let cap = u16::try_from(self.request_timeout_secs).unwrap_or(u16::MAX);
        self.max_wait_secs.min(cap).max(1)
    }

    /// The per-mailbox quota.
    pub fn quota(&self) -> Quota {
        Quota {
            max_items: self.mailbox_max_items,
            max_bytes: self.mailbox_max_bytes,
        }
    }
}

/// Default of `max_mailbox_lifetime_days`: a year. A reporter's client asks for its thread's
/// `--replies-for` (90 days by default) after the last message and registers again when a
/// thread goes on; a year leaves room for longer threads without keeping abandoned ones long.
pub const DEFAULT_MAX_MAILBOX_LIFETIME_DAYS: u16 = 365;

/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/vigil-relay";
/// Default listening address: loopback only, so a relay is never exposed by accident.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4433";

/// Everything `start` needs. Build with [`RelayConfig::new`] and adjust `limits`, or with
/// [`RelayConfig::layered`] from file, environment and flags.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// Holds the certificate, its key, the sled database and the stats file.
    pub data_dir: PathBuf,
    /// Keep reports in this PostgreSQL database (`postgres://USER@HOST:PORT/DB`) instead of
    /// sled under `data_dir`: several relays can share it. `None`: sled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// UDP address to listen on; port 0 picks a free port (see `RelayHandle::local_addr`).
    pub listen: SocketAddr,
    /// Host name in a newly made certificate (subject and SAN); `None`: a random one. Used only
    /// when the data directory has no certificate yet: an existing one is pinned by clients and
    /// kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_name: Option<String>,
    /// Also serve the protocol over TLS 1.3 on TCP, on the same port number as QUIC (for
    /// networks that block or throttle UDP). `--no-tcp` turns it off.
    #[serde(default = "yes")]
    pub tcp: bool,
    /// The certificate chain (PEM) shown in TLS to everyone, e.g. from an ACME client for the
    /// relay's domain; with `tls_key`. `None`: a plain self-signed one made in the data
    /// directory. Cards never pin it (see `vigil_core::wire::knock`), so renewing it changes
    /// nothing for reporters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of `tls_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// An HTML file served to web browsers and scanners at `/` (what an ordinary site would
    /// show); `None`: a short blank page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub front_page: Option<PathBuf>,
    /// Serve the statistics in the Prometheus text format on this address (`GET /metrics`);
    /// `None`: not served. Bind it to loopback or a private network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<SocketAddr>,
    /// Every limit.
    #[serde(default)]
    pub limits: Limits,
}

fn yes() -> bool {
    true
}

/// The config file: every key optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL store URL.
    pub store: Option<String>,
    /// Listening address.
    pub listen: Option<SocketAddr>,
    /// Name for a new certificate.
    pub cert_name: Option<String>,
    /// Serve TLS over TCP too (default true).
    pub tcp: Option<bool>,
    /// Front certificate chain (PEM).
    pub tls_cert: Option<PathBuf>,
    /// Front certificate key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Page served at `/`.
    pub front_page: Option<PathBuf>,
    /// Prometheus metrics address.
    pub metrics: Option<SocketAddr>,
    /// Limits set in the file.
    #[serde(default)]
    pub limits: LimitOverrides,
}

impl FileConfig {
    /// Read and parse `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }
}

/// Values given on the command line (highest precedence).
#[derive(Clone, Debug, Default)]
pub struct FlagLayer {
    /// `--data`.
    pub data_dir: Option<PathBuf>,
    /// `--store`.
    pub store: Option<String>,
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--cert-name`.
    pub cert_name: Option<String>,
    /// `--no-tcp` (`Some(false)`).
    pub tcp: Option<bool>,
    /// `--tls-cert`.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key`.
    pub tls_key: Option<PathBuf>,
    /// `--front-page`.
    pub front_page: Option<PathBuf>,
    /// `--metrics`.
    pub metrics: Option<SocketAddr>,
    /// `--<limit>` flags.
    pub limits: LimitOverrides,
}

impl RelayConfig {
    /// Defaults for everything but the data directory and the address.
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        Self {
            data_dir: data_dir.into(),
            store: None,
            listen,
            cert_name: None,
            tcp: true,
            tls_cert: None,
            tls_key: None,
            front_page: None,
            metrics: None,
            limits: Limits::default(),
        }
    }

    /// flags > environment > file > defaults, then validated. `env` reads one variable
    /// (`std::env::var(..).ok()` in the program, a map in tests). `VIGIL_RELAY_DATA` and
    /// `VIGIL_RELAY_LISTEN` set the data directory and the address.
    pub fn layered(
        file: Option<&FileConfig>,
        env: &dyn Fn(&str) -> Option<String>,
        flags: &FlagLayer,
    ) -> Result<Self, ConfigError> {
        let default_listen: SocketAddr =
            DEFAULT_LISTEN.parse().map_err(|_| ConfigError::Range {
                name: "listen",
                value: DEFAULT_LISTEN.into(),
                rule: "host:port".into(),
            })?;
        let mut c = Self::new(DEFAULT_DATA_DIR, default_listen);
        if let Some(f) = file {
            if let Some(d) = &f.data_dir {
                c.data_dir = d.clone();
            }
            if let Some(u) = &f.store {
                c.store = Some(u.clone());
            }
            if let Some(l) = f.listen {
                c.listen = l;
            }
            if let Some(n) = &f.cert_name {
                c.cert_name = Some(n.clone());
            }
            c.front_from(f.tcp, &f.tls_cert, &f.tls_key, &f.front_page);
            if let Some(m) = f.metrics {
                c.metrics = Some(m);
            }
            f.limits.apply(&mut c.limits);
        }
        if let Some(d) = env("VIGIL_RELAY_DATA") {
            c.data_dir = PathBuf::from(d);
        }
        if let Some(u) = env("VIGIL_RELAY_STORE").filter(|u| !u.is_empty()) {
            c.store = Some(u);
        }
        if let Some(l) = env_value::<SocketAddr>(env, "listen")? {
            c.listen = l;
        }
        if let Some(n) = env("VIGIL_RELAY_CERT_NAME") {
            c.cert_name = Some(n);
        }
        let env_tcp = match env("VIGIL_RELAY_NO_TCP").as_deref() {
            None | Some("") | Some("0") => None,
            Some(_) => Some(false),
        };
        let path = |name: &str| env(name).map(PathBuf::from);
        c.front_from(
            env_tcp,
            &path("VIGIL_RELAY_TLS_CERT"),
            &path("VIGIL_RELAY_TLS_KEY"),
            &path("VIGIL_RELAY_FRONT_PAGE"),
        );
        if let Some(m) = env_value::<SocketAddr>(env, "metrics")? {
            c.metrics = Some(m);
        }
        LimitOverrides::from_env(env)?.apply(&mut c.limits);
        if let Some(d) = &flags.data_dir {
            c.data_dir = d.clone();
        }
        if let Some(u) = &flags.store {
            c.store = Some(u.clone());
        }
        if let Some(l) = flags.listen {
            c.listen = l;
        }
        if let Some(n) = &flags.cert_name {
            c.cert_name = Some(n.clone());
        }
        c.front_from(
            flags.tcp,
            &flags.tls_cert,
            &flags.tls_key,
            &flags.front_page,
        );
        if let Some(m) = flags.metrics {
            c.metrics = Some(m);
        }
        flags.limits.apply(&mut c.limits);
        if c.tls_cert.is_some() != c.tls_key.is_some() {
            return Err(ConfigError::Range {
                name: "tls_cert",
                value: "only one of tls_cert and tls_key".into(),
                rule: "give both the certificate chain and its key (PEM files), or neither".into(),
            });
        }
        c.limits.validate()?;
        if let Some(u) = &c.store {
            if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
                return Err(ConfigError::Range {
                    name: "store",
                    value: redact_url(u),
                    rule: "a PostgreSQL URL, postgres://USER@HOST:PORT/DB (leave it out for \
                           the sled store in the data directory)"
                        .into(),
                });
            }
        }
        if let Some(n) = &c.cert_name {
            crate::cert::check_cert_name(n).map_err(|e| ConfigError::Range {
                name: "cert_name",
                value: n.clone(),
                rule: e.to_string(),
            })?;
        }
        Ok(c)
    }

    /// Apply one layer's TCP and front settings (each only when given).
    fn front_from(
        &mut self,
        tcp: Option<bool>,
        cert: &Option<PathBuf>,
        key: &Option<PathBuf>,
        page: &Option<PathBuf>,
    ) {
        if let Some(t) = tcp {
            self.tcp = t;
        }
        if let Some(p) = cert {
            self.tls_cert = Some(p.clone());
        }
        if let Some(p) = key {
            self.tls_key = Some(p.clone());
        }
        if let Some(p) = page {
            self.front_page = Some(p.clone());
        }
    }

    /// The effective configuration as a config file (a password in the store URL shown as
    /// `***`: the output goes to terminals and logs).
    pub fn to_toml(&self) -> String {
        let mut shown = self.clone();
        shown.store = shown.store.as_deref().map(redact_url);
        toml::to_string(&shown).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }

    /// How long an unfetched item is kept.
    pub fn expiry(&self) -> Duration {
        Duration::from_secs(self.limits.expiry_days.saturating_mul(24 * 3600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env<'a>(map: &'a HashMap<&str, &str>) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| map.get(k).map(|v| v.to_string())
    }

    #[test]
    fn flags_beat_env_beat_file_beat_defaults() {
        let file: FileConfig = toml::from_str(
            "data_dir = \"/srv/relay\"\nlisten = \"0.0.0.0:4433\"\n[limits]\n\
             max_connections = 100\nmax_connections_per_address = 5\ndeposit_burst = 7\n",
        )
        .unwrap();
        let vars = HashMap::from([
            ("VIGIL_RELAY_MAX_CONNECTIONS_PER_ADDRESS", "6"),
            ("VIGIL_RELAY_DEPOSIT_BURST", "8"),
        ]);
        let flags = FlagLayer {
            tcp: None,
            tls_cert: None,
            tls_key: None,
            front_page: None,
            limits: LimitOverrides {
                deposit_burst: Some(9),
                ..Default::default()
            },
            ..Default::default()
        };
        let c = RelayConfig::layered(Some(&file), &env(&vars), &flags).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/srv/relay"));
        assert_eq!(c.listen, "0.0.0.0:4433".parse().unwrap());
        assert_eq!(c.limits.max_connections, 100, "file");
        assert_eq!(c.limits.max_connections_per_address, 6, "env beats file");
        assert_eq!(c.limits.deposit_burst, 9, "flag beats env");
        assert_eq!(c.limits.idle_timeout_secs, 30, "default");
    }

    #[test]
    fn bad_values_name_the_setting() {
        let e = toml::from_str::<FileConfig>("[limits]\nmax_conections = 1\n").unwrap_err();
        assert!(e.to_string().contains("max_conections"), "{e}");
        let vars = HashMap::from([("VIGIL_RELAY_IDLE_TIMEOUT_SECS", "soon")]);
        let e = RelayConfig::layered(None, &env(&vars), &FlagLayer::default()).unwrap_err();
        assert!(
            e.to_string().contains("VIGIL_RELAY_IDLE_TIMEOUT_SECS"),
            "{e}"
        );
        let vars = HashMap::from([("VIGIL_RELAY_MAX_ENVELOPE_BYTES", "99999999")]);
        let e = RelayConfig::layered(None, &env(&vars), &FlagLayer::default()).unwrap_err();
        assert!(e.to_string().contains("max_envelope_bytes"), "{e}");
        let vars = HashMap::from([("VIGIL_RELAY_UDP_BUFFER_BYTES", "1000")]);
        let e = RelayConfig::layered(None, &env(&vars), &FlagLayer::default()).unwrap_err();
        assert!(e.to_string().contains("udp_buffer_bytes"), "{e}");
    }

    #[test]
    fn every_rule_names_its_setting_and_the_limit_it_depends_on() {
        let broken = |f: &dyn Fn(&mut Limits)| {
            let mut l = Limits::default();
            f(&mut l);
            l.validate().unwrap_err().to_string()
        };
        let e = broken(&|l| l.max_connections_per_address = l.max_connections + 1);
        assert!(
            e.contains("max_connections_per_address = 257") && e.contains("1 ..= max_connections"),
            "{e}"
        );
        let e = broken(&|l| l.connection_receive_window = l.stream_receive_window - 1);
        assert!(e.contains(">= stream_receive_window"), "{e}");
        let e = broken(&|l| l.incoming_buffer_bytes = 100);
        assert!(e.contains(">= 1500 (one datagram must fit)"), "{e}");
        let e = broken(&|l| l.expiry_days = 0);
        assert!(
            e.contains("expiry_days = 0") && e.contains("1 ..= 3650"),
            "{e}"
        );
        let e = broken(&|l| l.shutdown_grace_secs = 3601);
        assert!(e.contains("shutdown_grace_secs"), "{e}");
    }

    #[test]
    fn defaults_are_valid_and_print_as_a_loadable_file() {
        Limits::default().validate().unwrap();
        let c = RelayConfig::new("/x", "127.0.0.1:1".parse().unwrap());
        let back: RelayConfig = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(back, c);
        let file: FileConfig = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(file.limits.max_connections, Some(256));
        assert_eq!(
            LIMIT_DOCS.len(),
            toml::Value::try_from(&c.limits)
                .unwrap()
                .as_table()
                .unwrap()
                .len()
        );
    }

    #[test]
    fn cert_name_is_layered_and_checked() {
        let file: FileConfig = toml::from_str("cert_name = \"a.example.org\"\n").unwrap();
        let none = |_: &str| None;
        let c = RelayConfig::layered(Some(&file), &none, &FlagLayer::default()).unwrap();
        assert_eq!(c.cert_name.as_deref(), Some("a.example.org"));
        let back: RelayConfig = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(back, c);
        let env = |k: &str| (k == "VIGIL_RELAY_CERT_NAME").then(|| "b.example.org".to_string());
        let c = RelayConfig::layered(Some(&file), &env, &FlagLayer::default()).unwrap();
        assert_eq!(c.cert_name.as_deref(), Some("b.example.org"));
        let flags = FlagLayer {
            tcp: None,
            tls_cert: None,
            tls_key: None,
            front_page: None,
            cert_name: Some("bad name".into()),
            ..Default::default()
        };
        let e = RelayConfig::layered(None, &none, &flags)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cert_name"), "{e}");
    }

    #[test]
    fn tcp_and_the_front_are_layered_and_checked() {
        let none = |_: &str| None;
        let c = RelayConfig::layered(None, &none, &FlagLayer::default()).unwrap();
        assert!(c.tcp, "TCP is on by default");
        let file: FileConfig =
            toml::from_str("tcp = false\nfront_page = \"/srv/index.html\"\n").unwrap();
        let c = RelayConfig::layered(Some(&file), &none, &FlagLayer::default()).unwrap();
        assert!(!c.tcp);
        assert_eq!(c.front_page.as_deref(), Some(Path::new("/srv/index.html")));
        let back: RelayConfig = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(back, c);
        let env = |k: &str| (k == "VIGIL_RELAY_NO_TCP").then(|| "1".to_string());
        assert!(
            !RelayConfig::layered(None, &env, &FlagLayer::default())
                .unwrap()
                .tcp
        );
        let flags = FlagLayer {
            tcp: Some(false),
            ..Default::default()
        };
        assert!(!RelayConfig::layered(None, &none, &flags).unwrap().tcp);
        // A certificate without its key (or the reverse) is refused, naming the setting.
        let flags = FlagLayer {
            tls_cert: Some("/etc/fullchain.pem".into()),
            ..Default::default()
        };
        let e = RelayConfig::layered(None, &none, &flags)
            .unwrap_err()
            .to_string();
        assert!(e.contains("tls_cert"), "{e}");
    }

    #[test]
    fn the_store_url_is_layered_checked_and_printed_without_its_password() {
        let none = |_: &str| None;
        let c = RelayConfig::layered(None, &none, &FlagLayer::default()).unwrap();
        assert_eq!(c.store, None, "sled by default");
        let file: FileConfig = toml::from_str("store = \"postgres://file@db/vigil\"\n").unwrap();
        let c = RelayConfig::layered(Some(&file), &none, &FlagLayer::default()).unwrap();
        assert_eq!(c.store.as_deref(), Some("postgres://file@db/vigil"));
        let env = |k: &str| (k == "VIGIL_RELAY_STORE").then(|| "postgres://env@db/v".to_string());
        let c = RelayConfig::layered(Some(&file), &env, &FlagLayer::default()).unwrap();
        assert_eq!(
            c.store.as_deref(),
            Some("postgres://env@db/v"),
            "env beats file"
        );
        let flags = FlagLayer {
            store: Some("postgresql://flag:secret@db:5433/v".into()),
            ..Default::default()
        };
        let c = RelayConfig::layered(Some(&file), &env, &flags).unwrap();
        assert_eq!(
            c.store.as_deref(),
            Some("postgresql://flag:secret@db:5433/v")
        );
        let shown = c.to_toml();
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("postgresql://flag:***@db:5433/v"), "{shown}");
        let flags = FlagLayer {
            store: Some("mysql://u:pw@db/v".into()),
            ..Default::default()
        };
        let e = RelayConfig::layered(None, &none, &flags)
            .unwrap_err()
            .to_string();
        assert!(e.contains("store") && !e.contains("pw"), "{e}");
        assert_eq!(redact_url("postgres://u@h/d"), "postgres://u@h/d");
    }
}
