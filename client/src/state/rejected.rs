//! `inbox/rejected/`: envelopes the NGO fetched and acknowledged but did not take into the
//! inbox, kept on its own disk, and the bound that stops them from filling it.
//!
//! Three kinds land here. Envelopes no staff key here opens (`no_key`) may be honest reports
//! waiting for a key that was removed or is on another machine: every fetch tries them again.
//! Envelopes that open but fail to verify or parse (`invalid`) and repeats of a signed report
//! already in the inbox (`replay`) are evidence of tampering or of someone re-sending captured
//! reports, and otherwise junk.
//!
//! Anyone holding the NGO's card can deposit such envelopes, as many as the relay's mailbox
//! quota admits per fetch, fetch after fetch: kept without a bound they would fill the NGO's
//! disk. So the directory is bounded (items and bytes); past the bound the oldest evidence goes
//! first and the oldest `no_key` envelopes only after all evidence, and the fetch that trimmed
//! says how many went. `vigil inbox rejected list|clear` shows and empties it by hand.

use super::inbox::{env_record, meta_record, read_meta};
use super::MAX_ITEM_FILE;
use crate::home::Home;
use anyhow::{Context, Result};

/// Why an envelope was kept under `inbox/rejected/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RejectedKind {
    /// Opened and found invalid: bad signature, not for this NGO, a malformed report.
    Invalid,
    /// The same signed report as one already in the inbox, arriving as a new item.
    Replay,
    /// Sealed for no staff key this inbox holds: retried at every fetch.
    NoKey,
}

impl RejectedKind {
    /// The name used in files, JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::Replay => "replay",
            Self::NoKey => "no_key",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Invalid, Self::Replay, Self::NoKey]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    /// Eviction order: evidence before envelopes that may still open with a returning key.
    fn keep_priority(self) -> u8 {
        match self {
            Self::Invalid | Self::Replay => 0,
            Self::NoKey => 1,
        }
    }
}

/// How the reason of an envelope kept because no staff key here opens it begins (also how
/// entries written before kinds were recorded are recognised).
pub const NO_KEY_REASON: &str = "sealed for no staff key this inbox holds";
/// How the reason of a replay begins (for entries written before kinds were recorded).
pub const REPLAY_REASON: &str = "replay of report";

/// One envelope under `inbox/rejected/`.
#[derive(Clone, Debug)]
pub struct RejectedEntry {
    /// Local id (a prefix of the envelope's hash).
    pub id: String,
    /// Why it is here, in words.
    pub reason: String,
    /// Why it is here, as a kind.
    pub kind: RejectedKind,
    /// When this machine fetched it (0 if unknown).
    pub received_at: u64,
    /// Size of the envelope.
    pub bytes: u64,
}

/// The default bound on the number of envelopes kept.
pub const REJECTED_MAX_ITEMS: usize = 2_000;
/// The default bound on their total size: room for every no-key envelope of a few full
/// mailboxes, far below what fills a laptop.
pub const REJECTED_MAX_BYTES: u64 = 512 * 1024 * 1024;

/// The bound on `inbox/rejected/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RejectedBound {
    /// Most envelopes kept.
    pub max_items: usize,
    /// Most envelope bytes kept.
    pub max_bytes: u64,
}

impl RejectedBound {
    /// The defaults, or `VIGIL_REJECTED_MAX_ITEMS` and `VIGIL_REJECTED_MAX_MB` where set (an
    /// NGO that must keep more evidence raises them; a test lowers them). A value that is not
    /// a number is an error, not silently the default.
    pub fn from_env() -> Result<Self> {
        let read = |name: &str| -> Result<Option<u64>> {
            match std::env::var(name) {
                Ok(v) => v.trim().parse::<u64>().map(Some).map_err(|_| {
                    anyhow::anyhow!("{name}={v:?} is not a whole number; unset it or give one")
                }),
                Err(_) => Ok(None),
            }
        };
        Ok(Self {
            max_items: read("VIGIL_REJECTED_MAX_ITEMS")?.map_or(REJECTED_MAX_ITEMS, |n| {
                usize::try_from(n).unwrap_or(usize::MAX)
            }),
            max_bytes: read("VIGIL_REJECTED_MAX_MB")?
                .map_or(REJECTED_MAX_BYTES, |mb| mb.saturating_mul(1024 * 1024)),
        })
    }
}

/// The kept envelopes, oldest first.
pub fn rejected_entries(home: &Home) -> Result<Vec<RejectedEntry>> {
    let ids: Vec<String> = home
        .vault()?
        .list("rejected/env/")
        .into_iter()
        .filter_map(|n| n.strip_prefix("rejected/env/").map(str::to_string))
        .collect();
    let mut out = Vec::new();
    for id in ids {
        let meta = read_meta(home, true, &id)?;
        let reason = meta.rejected_because.clone().unwrap_or_default();
        let kind = meta
            .rejected_kind
            .as_deref()
            .and_then(RejectedKind::parse)
            .unwrap_or(if reason.starts_with(NO_KEY_REASON) {
                RejectedKind::NoKey
            } else if reason.starts_with(REPLAY_REASON) {
                RejectedKind::Replay
            } else {
                RejectedKind::Invalid
            });
        let bytes = if meta.bytes > 0 {
            meta.bytes
        } else {
            home.vault()?.size(&env_record(true, &id))
        };
        out.push(RejectedEntry {
            id,
            reason,
            kind,
            received_at: meta.received_at,
            bytes,
        });
    }
    out.sort_by(|a, b| (a.received_at, &a.id).cmp(&(b.received_at, &b.id)));
    Ok(out)
}

/// The envelope of one kept entry.
pub fn rejected_read(home: &Home, id: &str) -> Result<Vec<u8>> {
    Ok(home
        .vault()?
        .get(&env_record(true, id), MAX_ITEM_FILE)?
        .with_context(|| format!("kept envelope {id} is gone"))?
        .to_vec())
}

/// Delete one kept entry (envelope and metadata).
pub fn rejected_remove(home: &Home, id: &str) -> Result<()> {
    let mut v = home.vault()?;
    v.remove(&meta_record(true, id))?;
    v.remove(&env_record(true, id))?;
    Ok(())
}

/// What a trim removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trimmed {
    /// Envelopes removed.
    pub removed: usize,
    /// Of those, envelopes that opened for no staff key here.
    pub removed_no_key: usize,
}

/// The entries to remove so that the rest fit `bound`: evidence (oldest first) before no-key
/// envelopes (oldest first).
pub fn over_bound(entries: &[RejectedEntry], bound: RejectedBound) -> Vec<RejectedEntry> {
    let mut order: Vec<&RejectedEntry> = entries.iter().collect();
    order.sort_by_key(|e| (e.kind.keep_priority(), e.received_at));
    let mut items = entries.len();
    let mut bytes: u64 = entries.iter().map(|e| e.bytes).sum();
    let mut out = Vec::new();
    for e in order {
        if items <= bound.max_items && bytes <= bound.max_bytes {
            break;
        }
        items -= 1;
        bytes = bytes.saturating_sub(e.bytes);
        out.push(e.clone());
    }
    out
}

/// Bring `inbox/rejected/` within `bound`.
pub fn rejected_trim(home: &Home, bound: RejectedBound) -> Result<Trimmed> {
    let mut t = Trimmed::default();
    for e in over_bound(&rejected_entries(home)?, bound) {
        rejected_remove(home, &e.id)?;
        t.removed += 1;
        if e.kind == RejectedKind::NoKey {
            t.removed_no_key += 1;
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, kind: RejectedKind, received_at: u64, bytes: u64) -> RejectedEntry {
        RejectedEntry {
            id: id.into(),
            reason: String::new(),
            kind,
            received_at,
            bytes,
        }
    }

    #[test]
    fn evidence_goes_before_no_key_envelopes_oldest_first() {
        use RejectedKind::*;
        let entries = [
            entry("k1", NoKey, 1, 10),
            entry("i1", Invalid, 2, 10),
            entry("r1", Replay, 3, 10),
            entry("k2", NoKey, 4, 10),
            entry("i2", Invalid, 5, 10),
        ];
        let ids =
            |b| -> Vec<String> { over_bound(&entries, b).into_iter().map(|e| e.id).collect() };
        let items = |n| RejectedBound {
            max_items: n,
            max_bytes: u64::MAX,
        };
        assert!(ids(items(5)).is_empty());
        assert_eq!(ids(items(3)), ["i1", "r1"]);
        assert_eq!(ids(items(1)), ["i1", "r1", "i2", "k1"]);
        assert_eq!(ids(items(0)).len(), 5);
        let bytes = RejectedBound {
            max_items: 100,
            max_bytes: 25,
        };
        assert_eq!(ids(bytes), ["i1", "r1", "i2"]);
    }
}
