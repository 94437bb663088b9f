//! How this process reaches relays: which transport (QUIC, TLS over TCP, or QUIC first with a
//! fallback), through which proxy, and what worked last time for each relay.
//!
//! The settings come from the global flags (`--transport`, `--proxy`, `--verbose`) and their
//! environment variables, set once per run by `commands::run`; every connection
//! (`RelayClient::connect_pinned_with`) follows them, so no command has to pass them along.
//!
//! What worked is remembered per relay address in the home's vault (encrypted, like every other
//! piece of state: the list names relays), so a reporter on a network that drops UDP does not
//! wait for QUIC to time out on every send.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::Duration;

/// How long QUIC gets before TLS over TCP is tried too (`auto`). A QUIC handshake on a working
/// path takes one round trip; a mobile network that drops UDP never answers it.
pub const FALLBACK_AFTER: Duration = Duration::from_millis(2500);

/// Which transport to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Transport {
    /// QUIC first, TLS over TCP if QUIC has not connected within [`FALLBACK_AFTER`] (or the
    /// other way round when TCP is what worked last time for that relay); the first to connect
    /// is used.
    #[default]
    Auto,
    /// QUIC only.
    Quic,
    /// TLS over TCP only.
    Tcp,
}

impl Transport {
    /// As shown to people and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Auto => "auto",
            Transport::Quic => "quic",
            Transport::Tcp => "tcp",
        }
    }
}

impl std::str::FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Transport::Auto),
            "quic" => Ok(Transport::Quic),
            "tcp" => Ok(Transport::Tcp),
            other => Err(format!(
                "{other:?} is not a transport: use auto, quic or tcp"
            )),
        }
    }
}

/// A SOCKS5 proxy (Tor, Orbot), given as `socks5h://HOST:PORT` (or `socks5://`, treated the
/// same: the relay's name is always resolved by the proxy, never locally, so no DNS query
/// leaves this machine). `socks5h://USER:PASS@HOST:PORT` sends those credentials; without them
/// each connection sends fresh random ones, which Tor takes as a request for a separate circuit
/// (`IsolateSOCKSAuth`), so two deposits do not share an exit.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// Proxy host.
    pub host: String,
    /// Proxy port.
    pub port: u16,
    /// Username and password, if given.
    pub auth: Option<(String, String)>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print credentials.
        write!(f, "Proxy({}:{})", self.host, self.port)
    }
}

impl std::fmt::Display for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl std::str::FromStr for Proxy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("proxy {s:?} is not socks5h://HOST:PORT (for Tor: socks5h://127.0.0.1:9050; Orbot: socks5h://127.0.0.1:9050)")
        };
        let rest = s
            .strip_prefix("socks5h://")
            .or_else(|| s.strip_prefix("socks5://"))
            .ok_or_else(bad)?;
        let rest = rest.trim_end_matches('/');
        let (auth, hostport) = match rest.rsplit_once('@') {
            Some((a, h)) => {
                let (u, p) = a.split_once(':').unwrap_or((a, ""));
                if u.is_empty() || u.len() > 255 || p.len() > 255 {
                    return Err(bad());
                }
                (Some((u.to_string(), p.to_string())), h)
            }
            None => (None, rest),
        };
        let (host, port) = hostport.rsplit_once(':').ok_or_else(bad)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port.parse().map_err(|_| bad())?;
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok(Proxy {
            host: host.to_string(),
            port,
            auth,
        })
    }
}

/// The network settings of this run.
#[derive(Clone, Debug, Default)]
pub struct NetSettings {
    /// `--transport`.
    pub transport: Transport,
    /// `--proxy`: when set, every connection goes through it, over TLS on TCP, or fails.
    pub proxy: Option<Proxy>,
    /// `--verbose`: say on stderr which transport connected, and why.
    pub verbose: bool,
}

fn settings_cell() -> &'static RwLock<NetSettings> {
    static S: OnceLock<RwLock<NetSettings>> = OnceLock::new();
    S.get_or_init(|| RwLock::new(NetSettings::default()))
}

/// Set this run's network settings (once at start; tests driving commands in-process set them
/// per command).
pub fn set_settings(s: NetSettings) {
    if let Ok(mut g) = settings_cell().write() {
        *g = s;
    }
}

/// This run's network settings.
pub fn settings() -> NetSettings {
    settings_cell()
        .read()
        .map(|g| g.clone())
        .unwrap_or_default()
}

/// Writes the record; whether it did (the vault may be closed or busy at that moment).
type Saver = Box<dyn Fn(&[u8]) -> bool + Send + Sync>;

#[derive(Default)]
struct Memory {
    /// Relay address → the transport that connected last time ("quic" or "tcp").
    worked: BTreeMap<String, String>,
    saver: Option<Saver>,
    /// Changed since it was last written: a long-running command whose vault is closed between
    /// its steps (`inbox watch`) writes it at its next chance ([`save_unsaved`]).
    dirty: bool,
}

fn memory() -> &'static Mutex<Memory> {
    static M: OnceLock<Mutex<Memory>> = OnceLock::new();
    M.get_or_init(Mutex::default)
}

/// Most relays remembered (a card names at most a few; this bounds a damaged record).
const MAX_REMEMBERED: usize = 64;

/// Load what the home's vault remembers (`bytes`: the record, JSON), and how to save changes
/// to it (`saver`, which writes the record; best effort).
pub fn load_memory(bytes: Option<&[u8]>, saver: Saver) {
    let worked: BTreeMap<String, String> = bytes
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or_default();
    if let Ok(mut m) = memory().lock() {
        m.worked = worked.into_iter().take(MAX_REMEMBERED).collect();
        m.saver = Some(saver);
        m.dirty = false;
    }
}

/// If something was remembered that could not be written when it was, write it now with
/// `write` (which says whether it did).
pub fn save_unsaved(write: impl FnOnce(&[u8]) -> bool) {
    let Ok(mut m) = memory().lock() else { return };
    save_unsaved_in(&mut m, write);
}

fn save_unsaved_in(m: &mut Memory, write: impl FnOnce(&[u8]) -> bool) {
    if !m.dirty {
        return;
    }
    if let Ok(bytes) = serde_json::to_vec(&m.worked) {
        if write(&bytes) {
            m.dirty = false;
        }
    }
}

/// The transport that connected last time to `addr`, if remembered.
pub fn remembered(addr: &str) -> Option<Transport> {
    let m = memory().lock().ok()?;
    m.worked.get(addr).and_then(|t| t.parse().ok())
}

/// Remember that `t` connected to `addr` (saved to the vault when it changes).
pub fn remember(addr: &str, t: Transport) {
    let Ok(mut m) = memory().lock() else { return };
    remember_in(&mut m, addr, t);
}

fn remember_in(m: &mut Memory, addr: &str, t: Transport) {
    if m.worked.get(addr).map(String::as_str) == Some(t.as_str()) {
        return;
    }
    if m.worked.len() >= MAX_REMEMBERED && !m.worked.contains_key(addr) {
        return;
    }
    m.worked.insert(addr.to_string(), t.as_str().to_string());
    m.dirty = true;
    if let (Some(save), Ok(bytes)) = (&m.saver, serde_json::to_vec(&m.worked)) {
        if save(&bytes) {
            m.dirty = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What was remembered while the vault could not take it is written at the next chance,
    /// once. (On a memory of its own: the process-wide one is every test's.)
    #[test]
    fn what_could_not_be_saved_is_saved_at_the_next_chance() {
        let mut m = Memory {
            saver: Some(Box::new(|_: &[u8]| false)),
            ..Memory::default()
        };
        remember_in(&mut m, "relay.example:4433", Transport::Tcp);
        let mut written = Vec::new();
        save_unsaved_in(&mut m, |b| {
            written = b.to_vec();
            true
        });
        let back: BTreeMap<String, String> = serde_json::from_slice(&written).unwrap();
        assert_eq!(
            back.get("relay.example:4433").map(String::as_str),
            Some("tcp")
        );
        save_unsaved_in(&mut m, |_| panic!("nothing left to write"));
        // A write that fails leaves it for the next chance; one the saver makes clears it.
        remember_in(&mut m, "relay.example:4433", Transport::Quic);
        save_unsaved_in(&mut m, |_| false);
        let mut again = false;
        save_unsaved_in(&mut m, |_| {
            again = true;
            true
        });
        assert!(again);
        m.saver = Some(Box::new(|_: &[u8]| true));
        remember_in(&mut m, "other:1", Transport::Quic);
        save_unsaved_in(&mut m, |_| panic!("saved when remembered"));
    }

    #[test]
    fn proxies_parse_and_never_print_credentials() {
        let p: Proxy = "socks5h://127.0.0.1:9050".parse().unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.auth.is_none()),
            ("127.0.0.1", 9050, true)
        );
        let p: Proxy = "socks5://u:secret@[::1]:1080/".parse().unwrap();
        assert_eq!(p.host, "::1");
        assert_eq!(p.auth, Some(("u".into(), "secret".into())));
        assert!(!format!("{p:?} {p}").contains("secret"));
        for bad in [
            "http://h:1",
            "socks5h://h",
            "socks5h://:1",
            "socks5h://h:0",
            "h:1",
        ] {
            assert!(bad.parse::<Proxy>().is_err(), "{bad}");
        }
    }

    #[test]
    fn transports_parse() {
        assert_eq!("TCP".parse::<Transport>(), Ok(Transport::Tcp));
        assert_eq!("auto".parse::<Transport>(), Ok(Transport::Auto));
        assert!("udp".parse::<Transport>().is_err());
    }
}
