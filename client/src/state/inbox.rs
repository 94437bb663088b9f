//! The NGO's received inbox: envelopes as they arrived (still encrypted), their metadata, the
//! record of signed reports already seen (to recognise replays), and the rejected ones kept as
//! evidence.

use super::RejectedKind;
use super::MAX_ITEM_FILE;
use crate::home::{Home, PRIVATE};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::PathBuf;
use vigil_fs::{read_limited, write_atomic};

/// Local id of a received envelope: a prefix of its hash, stable across machines.
pub fn inbox_id(envelope: &[u8]) -> String {
    hex::encode(&Sha256::digest(envelope)[..8])
}

/// Metadata kept next to a received envelope (nothing from inside it).
#[derive(Serialize, Deserialize)]
pub struct InboxMeta {
    /// When this machine fetched it.
    pub received_at: u64,
}

/// Store a received envelope durably (before it is acknowledged to the relay): in the inbox,
/// or with `rejected` (its kind and the reason in words) under `inbox/rejected/`.
pub fn inbox_store(
    home: &Home,
    envelope: &[u8],
    rejected: Option<(RejectedKind, &str)>,
) -> Result<String> {
    let id = inbox_id(envelope);
    let dir = if rejected.is_some() {
        home.dir("inbox/rejected")?
    } else {
        home.dir("inbox")?
    };
    write_atomic(&dir.join(format!("{id}.age")), envelope, PRIVATE)?;
    let meta = serde_json::json!({
        "received_at": crate::home::now_unix(),
        "rejected_because": rejected.map(|(_, why)| why),
        "rejected_kind": rejected.map(|(kind, _)| kind.as_str()),
    });
    write_atomic(
        &dir.join(format!("{id}.json")),
        meta.to_string().as_bytes(),
        PRIVATE,
    )?;
    Ok(id)
}

/// Ids of stored envelopes with their metadata.
pub fn inbox_entries(home: &Home) -> Result<Vec<(String, InboxMeta)>> {
    let dir = home.dir("inbox")?;
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("age") {
            continue;
        }
        let Some(id) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        let meta = read_limited(&dir.join(format!("{id}.json")), 64 * 1024)
            .ok()
            .and_then(|b| serde_json::from_slice::<InboxMeta>(&b).ok())
            .unwrap_or(InboxMeta { received_at: 0 });
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
    let matches: Vec<String> = inbox_entries(home)?
        .into_iter()
        .map(|(id, _)| id)
        .filter(|id| id.starts_with(&wanted))
        .collect();
    match matches.as_slice() {
        [] => Err(crate::t_err!("inbox-no-such-id", id = id_prefix)
            .not_found()
            .into()),
        [id] => {
            let bytes = read_limited(&home.path("inbox").join(format!("{id}.age")), MAX_ITEM_FILE)?;
            Ok((id.clone(), bytes))
        }
        _ => bail!(crate::t_err!("inbox-ambiguous-id", id = id_prefix)),
    }
}

/// The metadata of one stored report (received time 0 if the file is missing or damaged).
pub fn inbox_meta(home: &Home, id: &str) -> Result<InboxMeta> {
    let path = home.dir("inbox")?.join(format!("{id}.json"));
    Ok(read_limited(&path, 64 * 1024)
        .ok()
        .and_then(|b| serde_json::from_slice::<InboxMeta>(&b).ok())
        .unwrap_or(InboxMeta { received_at: 0 }))
}

/// What the inbox remembers of one signed report it stored: under which local id, and from
/// which relay item, so that a redelivery of the same item (its acknowledgement was lost) is
/// told apart from a replay (the same signed report deposited again, as a new item).
#[derive(Serialize, Deserialize)]
pub struct Seen {
    /// The local id the report is stored under.
    pub id: String,
    /// The relay's item id it came as.
    pub item: String,
}

fn seen_path(home: &Home, digest: &[u8; 32]) -> Result<PathBuf> {
    Ok(home.dir("inbox/seen")?.join(hex::encode(digest)))
}

/// The record of the signed report with this digest (`envelope::Opened::digest`), if stored.
pub fn inbox_seen(home: &Home, digest: &[u8; 32]) -> Result<Option<Seen>> {
    let path = seen_path(home, digest)?;
    if !path.exists() {
        return Ok(None);
    }
    let bytes = read_limited(&path, 4096)?;
    Ok(serde_json::from_slice(&bytes).ok())
}

/// Remember that the signed report with this digest is stored as `seen.id`. Written before the
/// envelope itself, so that a crash in between leaves a record whose item comes again (and is
/// then stored), never a stored report without a record.
pub fn inbox_mark_seen(home: &Home, digest: &[u8; 32], seen: &Seen) -> Result<()> {
    Ok(write_atomic(
        &seen_path(home, digest)?,
        &serde_json::to_vec(seen)?,
        PRIVATE,
    )?)
}

/// Whether an envelope with these exact bytes is already stored as a report.
pub fn inbox_holds(home: &Home, envelope: &[u8]) -> Result<bool> {
    Ok(home
        .dir("inbox")?
        .join(format!("{}.age", inbox_id(envelope)))
        .exists())
}
