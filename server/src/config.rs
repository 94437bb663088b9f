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
        rule: &'static str,
    },
}

macro_rules! limits {
    ($( $(#[doc = $doc:literal])+ $name:ident : $ty:ty = $default:expr ; )*) => {
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
    };
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

/// `max_connections` → `VIGIL_RELAY_MAX_CONNECTIONS`.
pub fn env_var_name(setting: &str) -> String {
    format!("VIGIL_RELAY_{}", setting.to_ascii_uppercase())
}

limits! {
    /// Delete unfetched items after this many days (1 ..= 3650).
    expiry_days: u64 = 30;
    /// Seconds between runs of the expiry sweep.
    expiry_interval_secs: u64 = 3600;
    /// Items one mailbox may hold before deposits to it are refused (QuotaExceeded).
    mailbox_max_items: u64 = Quota::default().max_items;
    /// Envelope bytes one mailbox may hold before deposits to it are refused (QuotaExceeded).
    mailbox_max_bytes: u64 = Quota::default().max_bytes;
    /// Largest envelope accepted in one deposit, at most the protocol's 16 MiB (TooLarge).
    max_envelope_bytes: usize = MAX_ENVELOPE_LEN;
    /// Open QUIC connections in total; more are refused before any handshake work.
    max_connections: usize = 256;
    /// Open connections (including handshakes) per source address (IPv6: per /64); more are
    /// refused before any handshake work.
    max_connections_per_address: usize = 16;
    /// Above this many open connections, a new client must first prove its address with a
    /// QUIC Retry round trip (stops spoofed-source floods). 0: always.
    retry_above_connections: usize = 64;
    /// Handshakes waiting to be accepted at once (quinn `max_incoming`).
    max_incoming: usize = 1024;
    /// Bytes buffered for one connection that is not yet accepted (quinn
    /// `incoming_buffer_size`).
    incoming_buffer_bytes: u64 = 64 * 1024;
    /// Bytes buffered for all not yet accepted connections (quinn
    /// `incoming_buffer_size_total`).
    incoming_buffer_total_bytes: u64 = 16 * 1024 * 1024;
    /// Concurrent requests (bidirectional streams) per connection.
    max_streams_per_connection: u32 = 16;
    /// QUIC flow-control window per stream, bytes.
    stream_receive_window: u32 = 1024 * 1024;
    /// QUIC flow-control window per connection, bytes (quinn leaves it unbounded by default).
    connection_receive_window: u32 = 4 * 1024 * 1024;
    /// TLS handshake bytes buffered per connection (quinn `crypto_buffer_size`).
    crypto_buffer_bytes: usize = 16 * 1024;
    /// Kernel receive and send buffer of the relay's one UDP socket, bytes. Every client's
    /// packets arrive on it; when it overflows the kernel drops them and clients wait for
    /// retransmissions. Linux caps it at `net.core.rmem_max` / `net.core.wmem_max` (often
    /// 208 KiB); the relay warns at start if it got less than asked (see operations.md).
    udp_buffer_bytes: usize = 4 * 1024 * 1024;
    /// Seconds a QUIC/TLS handshake may take.
    handshake_timeout_secs: u64 = 10;
    /// Seconds of silence after which a connection is closed.
    idle_timeout_secs: u64 = 30;
    /// Seconds from opening a stream to the end of the 6-byte request header.
    header_timeout_secs: u64 = 10;
    /// Slowest accepted upload of a request body, bytes per second, after body_grace_secs:
    /// a body of n bytes must arrive within body_grace_secs + n / min_body_rate seconds.
    min_body_rate: u64 = 8 * 1024;
    /// Seconds added to every body deadline (see min_body_rate).
    body_grace_secs: u64 = 15;
    /// Seconds to handle a request and send its answer once the body is in.
    request_timeout_secs: u64 = 60;
    /// Request-body bytes held in memory at once, across all connections.
    request_memory_bytes: usize = 256 * 1024 * 1024;
    /// Bytes of the store's page cache (sled `cache_capacity`). Stored reports beyond it stay
    /// on disk only; sled's own default (1 GiB) would keep that much evidence resident.
    store_cache_bytes: u64 = 64 * 1024 * 1024;
    /// Fetch responses built at once (each holds up to 32 MiB).
    fetch_slots: usize = 8;
    /// Deposits per minute per source address, sustained (token bucket, memory only).
    deposits_per_minute: u32 = 60;
    /// Deposits a source address may make at once before the rate applies.
    deposit_burst: u32 = 30;
    /// Mailbox registrations per hour per source address (memory only).
    registrations_per_hour: u32 = 10;
    /// Apply the per-address limits (connections, deposits, registrations) to loopback
    /// addresses too. Off by default: a local process is the operator's own (tests, a local
    /// `vigil demo`, health probes), and nobody reaches loopback from outside.
    limit_loopback: bool = false;
    /// Source addresses remembered by the rate limiters; when full, idle ones are forgotten.
    rate_limit_addresses: usize = 65536;
    /// Refuse deposits and registrations when the data directory has less free space.
    min_free_bytes: u64 = 256 * 1024 * 1024;
    /// Seconds between free-space probes (also how fast deposits resume after space returns).
    space_check_secs: u64 = 5;
    /// Seconds between writes of the stats file read by `vigil-relay stats` and `health`.
    stats_interval_secs: u64 = 5;
    /// Seconds `shutdown` waits for in-flight requests before aborting them.
    shutdown_grace_secs: u64 = 30;
}

impl Limits {
    /// Check every range; the error names the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn check(
            ok: bool,
            name: &'static str,
            value: impl ToString,
            rule: &'static str,
        ) -> Result<(), ConfigError> {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::Range {
                    name,
                    value: value.to_string(),
                    rule,
                })
            }
        }
        let l = self;
        check(
            (1..=3650).contains(&l.expiry_days),
            "expiry_days",
            l.expiry_days,
            "1 ..= 3650",
        )?;
        check(
            l.expiry_interval_secs >= 1,
            "expiry_interval_secs",
            l.expiry_interval_secs,
            ">= 1",
        )?;
        check(
            l.mailbox_max_items >= 1,
            "mailbox_max_items",
            l.mailbox_max_items,
            ">= 1",
        )?;
        check(
            l.mailbox_max_bytes >= 1,
            "mailbox_max_bytes",
            l.mailbox_max_bytes,
            ">= 1",
        )?;
        check(
            (1..=MAX_ENVELOPE_LEN).contains(&l.max_envelope_bytes),
            "max_envelope_bytes",
            l.max_envelope_bytes,
            "1 ..= 16777216 (the protocol maximum)",
        )?;
        check(
            l.max_connections >= 1,
            "max_connections",
            l.max_connections,
            ">= 1",
        )?;
        check(
            (1..=l.max_connections).contains(&l.max_connections_per_address),
            "max_connections_per_address",
            l.max_connections_per_address,
            "1 ..= max_connections",
        )?;
        check(l.max_incoming >= 1, "max_incoming", l.max_incoming, ">= 1")?;
        check(
            l.incoming_buffer_bytes >= 1500,
            "incoming_buffer_bytes",
            l.incoming_buffer_bytes,
            ">= 1500 (one datagram)",
        )?;
        check(
            l.incoming_buffer_total_bytes >= l.incoming_buffer_bytes,
            "incoming_buffer_total_bytes",
            l.incoming_buffer_total_bytes,
            ">= incoming_buffer_bytes",
        )?;
        check(
            (1..=1024).contains(&l.max_streams_per_connection),
            "max_streams_per_connection",
            l.max_streams_per_connection,
            "1 ..= 1024",
        )?;
        check(
            l.stream_receive_window >= 16 * 1024,
            "stream_receive_window",
            l.stream_receive_window,
            ">= 16384",
        )?;
        check(
            l.connection_receive_window >= l.stream_receive_window,
            "connection_receive_window",
            l.connection_receive_window,
            ">= stream_receive_window",
        )?;
        check(
            l.crypto_buffer_bytes >= 4096,
            "crypto_buffer_bytes",
            l.crypto_buffer_bytes,
            ">= 4096 (a certificate must fit)",
        )?;
        check(
            (64 * 1024..=1 << 30).contains(&l.udp_buffer_bytes),
            "udp_buffer_bytes",
            l.udp_buffer_bytes,
            "65536 ..= 1073741824",
        )?;
        for (name, v) in [
            ("handshake_timeout_secs", l.handshake_timeout_secs),
            ("header_timeout_secs", l.header_timeout_secs),
            ("body_grace_secs", l.body_grace_secs),
            ("request_timeout_secs", l.request_timeout_secs),
            ("space_check_secs", l.space_check_secs),
            ("stats_interval_secs", l.stats_interval_secs),
        ] {
            check((1..=86_400).contains(&v), name, v, "1 ..= 86400")?;
        }
        check(
            (1..=3600).contains(&l.idle_timeout_secs),
            "idle_timeout_secs",
            l.idle_timeout_secs,
            "1 ..= 3600",
        )?;
        check(
            l.min_body_rate >= 1,
            "min_body_rate",
            l.min_body_rate,
            ">= 1",
        )?;
        check(
            l.request_memory_bytes >= 1,
            "request_memory_bytes",
            l.request_memory_bytes,
            ">= 1 (one maximal request always fits)",
        )?;
        check(
            l.store_cache_bytes >= 1024 * 1024,
            "store_cache_bytes",
            l.store_cache_bytes,
            ">= 1 MiB",
        )?;
        check(l.fetch_slots >= 1, "fetch_slots", l.fetch_slots, ">= 1")?;
        check(
            l.deposits_per_minute >= 1,
            "deposits_per_minute",
            l.deposits_per_minute,
            ">= 1",
        )?;
        check(
            l.deposit_burst >= 1,
            "deposit_burst",
            l.deposit_burst,
            ">= 1",
        )?;
        check(
            l.registrations_per_hour >= 1,
            "registrations_per_hour",
            l.registrations_per_hour,
            ">= 1",
        )?;
        check(
            l.rate_limit_addresses >= 16,
            "rate_limit_addresses",
            l.rate_limit_addresses,
            ">= 16",
        )?;
        check(
            l.shutdown_grace_secs <= 3600,
            "shutdown_grace_secs",
            l.shutdown_grace_secs,
            "0 ..= 3600",
        )?;
        Ok(())
    }

    /// Entries each rate limiter may hold.
    pub fn max_rate_entries(&self) -> usize {
        self.rate_limit_addresses.max(16)
    }

    /// The per-mailbox quota.
    pub fn quota(&self) -> Quota {
        Quota {
            max_items: self.mailbox_max_items,
            max_bytes: self.mailbox_max_bytes,
        }
    }
}

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
    /// UDP address to listen on; port 0 picks a free port (see `RelayHandle::local_addr`).
    pub listen: SocketAddr,
    /// Every limit.
    #[serde(default)]
    pub limits: Limits,
}

/// The config file: every key optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// Listening address.
    pub listen: Option<SocketAddr>,
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
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--<limit>` flags.
    pub limits: LimitOverrides,
}

impl RelayConfig {
    /// Defaults for everything but the data directory and the address.
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen,
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
                rule: "host:port",
            })?;
        let mut c = Self::new(DEFAULT_DATA_DIR, default_listen);
        if let Some(f) = file {
            if let Some(d) = &f.data_dir {
                c.data_dir = d.clone();
            }
            if let Some(l) = f.listen {
                c.listen = l;
            }
            f.limits.apply(&mut c.limits);
        }
        if let Some(d) = env("VIGIL_RELAY_DATA") {
            c.data_dir = PathBuf::from(d);
        }
        if let Some(l) = env_value::<SocketAddr>(env, "listen")? {
            c.listen = l;
        }
        LimitOverrides::from_env(env)?.apply(&mut c.limits);
        if let Some(d) = &flags.data_dir {
            c.data_dir = d.clone();
        }
        if let Some(l) = flags.listen {
            c.listen = l;
        }
        flags.limits.apply(&mut c.limits);
        c.limits.validate()?;
        Ok(c)
    }

    /// The effective configuration as a config file.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
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
}
