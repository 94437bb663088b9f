//! Stores written by earlier relays, brought to the current layout when the store opens.
//!
//! Layout 1 (relays before the one-path deposit) kept a deposit's life in four trees: `reports`
//! (mailbox ‖ deposit id → envelope), `large` (the same key → length of an envelope kept in a
//! file), `expiry` (coarse time ‖ key → length), and `acked` (key → empty). Layout 2 (see
//! [`super::layout`]) keeps one `items` entry per deposit, item or tombstone, with its time in
//! the value, so a deposit is one write.
//!
//! The migration copies every entry into the new layout, makes that durable, then drops the old
//! trees. It is idempotent: a crash in the middle leaves the old trees in place, and the next
//! open copies again (the same values under the same keys) before dropping them. Envelope files
//! keep their names.

use super::backend;
use super::commit::Durability;
use super::layout::{file_value, inline_value, item_key, tombstone, DepositKey, Place};
use crate::store::StoreError;
use std::collections::HashMap;

/// The trees of layout 1 that layout 2 no longer has.
const OLD_TREES: [&str; 4] = ["reports", "large", "expiry", "acked"];

/// Bring `db` to the current layout. `now` (a coarse time) stands in for the deposit time of a
/// tombstone whose time layout 1 did not record (a crash leftover); it errs towards remembering
/// the deposit id longer.
pub(super) fn from_earlier_layouts(
    db: &sled::Db,
    durability: &Durability,
    now: u64,
) -> Result<(), StoreError> {
    let names = db.tree_names();
    if !OLD_TREES
        .iter()
        .any(|t| names.iter().any(|n| n.as_ref() == t.as_bytes()))
    {
        return Ok(());
    }
    let t = |name: &str| db.open_tree(name).map_err(backend);
    let (reports, large, expiry, acked) = (t("reports")?, t("large")?, t("expiry")?, t("acked")?);
    let items = t("items")?;
    // Times by key, from the expiry index (its key is time ‖ mailbox ‖ deposit id).
    let mut times: HashMap<DepositKey, u64> = HashMap::new();
    for kv in expiry.iter() {
        let (k, _) = kv.map_err(backend)?;
        let (time, key) = k
            .split_at_checked(8)
            .ok_or(StoreError::Corrupt("expiry key"))?;
        let time = u64::from_be_bytes(
            time.try_into()
                .map_err(|_| StoreError::Corrupt("expiry key"))?,
        );
        let key = DepositKey::try_from(key).map_err(|_| StoreError::Corrupt("expiry key"))?;
        times.insert(key, time);
    }
    let time_of = |k: &[u8]| -> Result<(DepositKey, u64), StoreError> {
        let key = DepositKey::try_from(k).map_err(|_| StoreError::Corrupt("layout 1 key"))?;
        Ok((key, times.get(&key).copied().unwrap_or(now)))
    };
    let mut moved = 0u64;
    for kv in reports.iter() {
        let (k, v) = kv.map_err(backend)?;
        let (key, time) = time_of(&k)?;
        // Kept in sled whatever its length (relays before envelope files stored large ones
        // there too); reads do not care.
        items
            .insert(item_key(&key, Place::Inline), inline_value(time, &v))
            .map_err(backend)?;
        moved += 1;
    }
    for kv in large.iter() {
        let (k, v) = kv.map_err(backend)?;
        let (key, time) = time_of(&k)?;
        let len = <[u8; 8]>::try_from(&v[..])
            .map(u64::from_be_bytes)
            .map_err(|_| StoreError::Corrupt("layout 1 file length"))?;
        items
            .insert(item_key(&key, Place::File), file_value(time, len))
            .map_err(backend)?;
        moved += 1;
    }
    // Layout 1 did not record where an acknowledged envelope was kept: its tombstone goes to
    // both places, and both expire with it.
    for kv in acked.iter() {
        let (k, _) = kv.map_err(backend)?;
        let (key, time) = time_of(&k)?;
        for place in Place::ALL {
            items
                .insert(item_key(&key, place), tombstone(time))
                .map_err(backend)?;
        }
    }
    db.flush().map_err(backend)?;
    durability.sync()?;
    for name in OLD_TREES {
        db.drop_tree(name).map_err(backend)?;
    }
    db.flush().map_err(backend)?;
    durability.sync()?;
    tracing::info!(
        items = moved,
        "store migrated to the one-write-per-deposit layout"
    );
    Ok(())
}
