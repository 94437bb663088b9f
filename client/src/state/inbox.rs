//! The NGO's received inbox: envelopes as they arrived (still encrypted), their metadata, the
//! record of signed reports already seen (to recognise replays), and the rejected ones kept as
//! evidence. All of it vault records: `inbox/env/<id>`, `inbox/meta/<id>`, `inbox/seen/<digest>`,
//! `rejected/env/<id>`, `rejected/meta/<id>`.

use super::{RejectedKind, MAX_ITEM_FILE, MAX_META};
use crate::home::Home;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Local id of a received envelope: a prefix of its hash, stable across machines.
pub fn inbox_id(envelope: &[u8]) -> String {
    hex::encode(&Sha256::digest(envelope)[..8])
}

pub(super) fn env_record(rejected: bool, id: &str) -> String {
    if rejected {
        format!("rejected/env/{id}")
    } else {
        format!("inbox/env/{id}")
    }
}

pub(super) fn meta_record(rejected: bool, id: &str) -> String {
    if rejected {
        format!("rejected/meta/{id}")
    } else {
        format!("inbox/meta/{id}")
    }
}

/// Metadata kept next to a received envelope (nothing from inside it).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct InboxMeta {
    /// When this machine fetched it.
    pub received_at: u64,
    /// Why it was kept aside (rejected envelopes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_because: Option<String>,
    /// Its kind (rejected envelopes only), as [`RejectedKind::as_str`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_kind: Option<String>,
    /// The envelope's length.
    #[serde(default)]
    pub bytes: u64,
    /// When the relay released it as a check-in alert: the relay's note (outside the
    /// envelope; the relay wrote it, not the reporter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<AlertNote>,
}

/// What the relay said about a released check-in alert.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AlertNote {
    /// `missed` or `duress`.
    pub reason: String,
    /// When the alert was armed (relay clock).
    pub armed_at: u64,
    /// The last check-in the relay received (relay clock), or the arming time.
    pub last_checkin_at: u64,
    /// When the relay released it.
    pub released_at: u64,
}

/// Store a received envelope durably (before it is acknowledged to the relay): in the inbox,
/// or with `rejected` (its kind and the reason in words) among the rejected.
pub fn inbox_store(
    home: &Home,
    envelope: &[u8],
    rejected: Option<(RejectedKind, &str)>,
) -> Result<String> {
    inbox_store_with(home, envelope, rejected, None)
}

/// [`inbox_store`], with the relay's note when the envelope came as a released check-in alert.
pub fn inbox_store_with(
    home: &Home,
    envelope: &[u8],
    rejected: Option<(RejectedKind, &str)>,
    alert: Option<AlertNote>,
) -> Result<String> {
    let id = inbox_id(envelope);
    let meta = InboxMeta {
        received_at: crate::home::now_unix(),
        rejected_because: rejected.map(|(_, why)| why.to_string()),
        rejected_kind: rejected.map(|(kind, _)| kind.as_str().to_string()),
        bytes: envelope.len() as u64,
        alert,
    };
    let meta = serde_json::to_vec(&meta)?;
    let r = rejected.is_some();
    home.vault()?
        .put_many(&[(env_record(r, &id), envelope), (meta_record(r, &id), &meta)])?;
    Ok(id)
}

/// Replace a stored envelope by the same report sealed to other keys (`vigil ngo rotate-keys`
/// re-seals what only a retiring key opens), under the same id and metadata.
pub fn inbox_replace(home: &Home, id: &str, envelope: &[u8]) -> Result<()> {
    let mut meta = read_meta(home, false, id)?;
    meta.bytes = envelope.len() as u64;
    let meta = serde_json::to_vec(&meta)?;
    home.vault()?.put_many(&[
        (env_record(false, id), envelope),
        (meta_record(false, id), &meta),
    ])?;
    Ok(())
}

/// The metadata record of an envelope; a missing or damaged one reads as received at 0.
pub(super) fn read_meta(home: &Home, rejected: bool, id: &str) -> Result<InboxMeta> {
    Ok(home
        .vault()?
        .get(&meta_record(rejected, id), MAX_META)?
        .and_then(|b| serde_json::from_slice::<InboxMeta>(&b).ok())
        .unwrap_or_default())
}

/// Ids of stored envelopes with their metadata.
pub fn inbox_entries(home: &Home) -> Result<Vec<(String, InboxMeta)>> {
    let ids: Vec<String> = home
        .vault()?
        .list("inbox/env/")
        .into_iter()
        .filter_map(|n| n.strip_prefix("inbox/env/").map(str::to_string))
        .collect();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let meta = read_meta(home, false, &id)?;
        out.push((id, meta));
    }
    Ok(out)
}

/// Read one stored envelope by id or unique id prefix.
pub fn inbox_read(home: &Home, id_prefix: &str) -> Result<(String, Vec<u8>)> {
    let wanted = id_prefix.trim().to_lowercase();
    if wanted.is_empty() || !wanted.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!(crate::t_err!("inbox-bad-id", id = id_prefix));
    }
    let v = home.vault()?;
    let matches: Vec<String> = v
        .list(&format!("inbox/env/{wanted}"))
        .into_iter()
        .filter_map(|n| n.strip_prefix("inbox/env/").map(str::to_string))
        .collect();
    match matches.as_slice() {
        [] => Err(crate::t_err!("inbox-no-such-id", id = id_prefix)
            .not_found()
            .into()),
        [id] => {
            let bytes = v
                .get(&env_record(false, id), MAX_ITEM_FILE)?
                .ok_or_else(|| {
                    anyhow::Error::from(
                        crate::t_err!("inbox-no-such-id", id = id_prefix).not_found(),
                    )
                })?;
            Ok((id.clone(), bytes.to_vec()))
        }
        _ => bail!(crate::t_err!("inbox-ambiguous-id", id = id_prefix)),
    }
}

/// The metadata of one stored report (received time 0 if the record is missing or damaged).
pub fn inbox_meta(home: &Home, id: &str) -> Result<InboxMeta> {
    read_meta(home, false, id)
}

/// What the inbox remembers of one signed report it stored: under which local id, and from
/// which relay item, so that a redelivery of the same item (its acknowledgement was lost) is
/// told apart from a replay (the same signed report deposited again, as a new item).
///
/// With several relays on the card, the same envelope bytes legitimately arrive once per relay:
/// `relay` is the relay the stored copy came from and `copies` the other relays' items with the
/// same bytes (acknowledged, not stored). The same bytes again as another item *of a relay that
/// already delivered them* are still a replay.
#[derive(Serialize, Deserialize)]
pub struct Seen {
    /// The local id the report is stored under.
    pub id: String,
    /// The relay's item id it came as.
    pub item: String,
    /// The relay it came from (absent in records made before cards had several relays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<String>,
    /// Copies of the same bytes from the card's other relays, one per relay.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copies: Vec<SeenCopy>,
}

/// One relay's copy of a stored report (see [`Seen::copies`]).
#[derive(Clone, Serialize, Deserialize)]
pub struct SeenCopy {
    /// The relay's address.
    pub relay: String,
    /// Its item id there.
    pub item: String,
}

impl Seen {
    /// Whether an item `item` at `relay`, with the stored report's exact bytes, is the copy that
    /// relay holds of it (first time or again after a lost acknowledgement), not a replay: the
    /// stored copy came from another relay, and `relay` has delivered no other item with these
    /// bytes.
    pub fn is_copy_from(&self, relay: &str, item: &str) -> bool {
        let Some(first) = &self.relay else {
            return false;
        };
        if first.eq_ignore_ascii_case(relay) {
            return false;
        }
        match self
            .copies
            .iter()
            .find(|c| c.relay.eq_ignore_ascii_case(relay))
        {
            Some(c) => c.item == item,
            None => true,
        }
    }
}

fn seen_record(digest: &[u8; 32]) -> String {
    format!("inbox/seen/{}", hex::encode(digest))
}

/// The record of the signed report with this digest (`envelope::Opened::digest`), if stored.
pub fn inbox_seen(home: &Home, digest: &[u8; 32]) -> Result<Option<Seen>> {
    Ok(home
        .vault()?
        .get(&seen_record(digest), MAX_META)?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

/// Remember that the signed report with this digest is stored as `seen.id`. Written before the
/// envelope itself, so that a crash in between leaves a record whose item comes again (and is
/// then stored), never a stored report without a record.
pub fn inbox_mark_seen(home: &Home, digest: &[u8; 32], seen: &Seen) -> Result<()> {
    home.vault()?
        .put(&seen_record(digest), &serde_json::to_vec(seen)?)
}

/// Whether an envelope with these exact bytes is already stored as a report.
pub fn inbox_holds(home: &Home, envelope: &[u8]) -> Result<bool> {
    Ok(home
        .vault()?
        .contains(&env_record(false, &inbox_id(envelope))))
}
