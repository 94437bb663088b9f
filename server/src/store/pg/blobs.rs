//! Attachment blobs in PostgreSQL: the `blobs` row (total, durable length, last write,
//! references) and the bytes in `blob_chunks`.
//!
//! The rules are those of `store/blobs.rs`, kept by the database instead of a relay's memory:
//! an upload appends one chunk in one transaction, holding an advisory lock named by the blob
//! (a second upload of it on any relay is [`StoreError::InProgress`]) and the blob's row lock
//! (so expiry skips it); a deposit takes its references with a conditional `UPDATE` that finds
//! only complete blobs; the last reference dropped deletes the blob with its chunks, in the
//! transaction that dropped it; and expiry deletes blobs no item refers to once unwritten for
//! the blob expiry, skipping rows another relay holds.

use super::chunks::{self, Target};
use super::{backend, id_of, int, uint, Inner};
use crate::body::BodySource;
use crate::store::StoreError;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use tokio_postgres::{Client, GenericClient, Transaction};
use vigil_core::ids::BlobId;
use vigil_core::wire::fetch::BlobRef;
use vigil_core::wire::limits::RECEIVE_TIME_GRANULARITY_SECS;
use vigil_core::wire::policy::{coarse_time, upload_step, UploadStep};
use vigil_core::wire::upload::Upload;

/// Salt of the advisory locks of blobs being uploaded.
const BLOB_LOCK: u64 = 0x626c_6f62_0000_0000;

/// Blobs one expiry transaction deletes.
const EXPIRE_BATCH: i64 = 100;

/// `(total, have)` of a blob, if held; with its row locked when `lock`.
async fn held(
    c: &impl GenericClient,
    id: &[u8],
    lock: bool,
) -> Result<Option<(u64, u64)>, StoreError> {
    let q = match lock {
        true => "SELECT total, have FROM blobs WHERE id = $1 FOR UPDATE",
        false => "SELECT total, have FROM blobs WHERE id = $1",
    };
    match c.query_opt(q, &[&id]).await.map_err(backend)? {
        Some(r) => Ok(Some((
            uint(r.try_get(0).map_err(backend)?)?,
            uint(r.try_get(1).map_err(backend)?)?,
        ))),
        None => Ok(None),
    }
}

/// Append an upload's chunk where the blob ends; the blob's durable length.
pub(crate) async fn upload(
    inner: &Inner,
    head: Upload,
    now: u64,
    body: &mut dyn BodySource,
) -> Result<u64, StoreError> {
    let id = &head.blob.0[..];
    let decide =
        |h: Option<(u64, u64)>| match upload_step(h, head.total, head.offset, head.chunk_len) {
            UploadStep::TotalMismatch { held } => Err(StoreError::BlobConflict { total: held }),
            UploadStep::Answer(have) => Ok(Some(have)),
            UploadStep::Write => Ok(None),
        };
    let _slot = inner.streaming_slot(head.chunk_len).await?;
    let mut c = inner.conn().await?;
    if let Some(have) = decide(held(&**c, id, false).await?)? {
        return Ok(have);
    }
    let tx = c.transaction().await.map_err(backend)?;
    let key = super::lock_key(id, &[], BLOB_LOCK);
    let locked: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&key])
        .await
        .and_then(|r| r.try_get(0))
        .map_err(backend)?;
    if !locked {
        return Err(StoreError::InProgress);
    }
    // Looked at again under the locks: another upload may have appended, or expiry deleted it.
    let before = held(&*tx, id, true).await?;
    if let Some(have) = decide(before)? {
        return Ok(have);
    }
    // Kept to the hour, as the sled store stamps its blob files; the second is kept in this
    // relay's memory only (see `expire`).
    let stamp = int(coarse_time(now))?;
    if before.is_none() {
        tx.execute(
            "INSERT INTO blobs (id, total, have, touched) VALUES ($1, $2, 0, $3)",
            &[&id, &int(head.total)?, &stamp],
        )
        .await
        .map_err(backend)?;
    }
    chunks::write(&tx, Target::Blob(id), head.offset, head.chunk_len, body).await?;
    let have = head.offset.saturating_add(head.chunk_len as u64);
    tx.execute(
        "UPDATE blobs SET have = $2, touched = $3 WHERE id = $1",
        &[&id, &int(have)?, &stamp],
    )
    .await
    .map_err(backend)?;
    inner.commit(tx).await?;
    inner.touched_now(head.blob, now);
    inner.totals.change(|t| {
        t.blobs += u64::from(before.is_none());
        t.blob_bytes = t.blob_bytes.saturating_add(head.chunk_len as u64);
    });
    Ok(have)
}

/// The blobs' lengths if every one is complete (a look before a deposit reads its envelope).
pub(crate) async fn lengths(c: &Client, ids: &[BlobId]) -> Result<Vec<BlobRef>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let wanted: Vec<&[u8]> = ids.iter().map(|b| &b.0[..]).collect();
    let rows = c
        .query(
            "SELECT id, total FROM blobs WHERE id = ANY($1) AND have = total",
            &[&wanted],
        )
        .await
        .map_err(backend)?;
    let mut found = HashMap::with_capacity(rows.len());
    for r in rows {
        let id: [u8; 16] = id_of(r.try_get::<_, &[u8]>(0).map_err(backend)?)?;
        found.insert(id, uint(r.try_get(1).map_err(backend)?)?);
    }
    ids.iter()
        .map(|b| match found.get(&b.0) {
            Some(len) => Ok(BlobRef { id: *b, len: *len }),
            None => Err(StoreError::BlobIncomplete),
        })
        .collect()
}

/// How many times each blob is named, in id order (the lock order).
fn counted(ids: impl IntoIterator<Item = BlobId>) -> BTreeMap<[u8; 16], i64> {
    let mut out = BTreeMap::new();
    for b in ids {
        *out.entry(b.0).or_insert(0i64) += 1;
    }
    out
}

/// Give each blob one reference per time it is named, if every one is complete.
pub(crate) async fn take_refs(tx: &Transaction<'_>, ids: &[BlobId]) -> Result<(), StoreError> {
    for (id, n) in counted(ids.iter().copied()) {
        let done = tx
            .execute(
                "UPDATE blobs SET refs = refs + $2 WHERE id = $1 AND have = total",
                &[&&id[..], &n],
            )
            .await
            .map_err(backend)?;
        if done == 0 {
            return Err(StoreError::BlobIncomplete);
        }
    }
    Ok(())
}

/// What dropping references did: the bytes the references held (what their mailbox counted
/// against its quota), and the blobs deleted with their bytes (for the totals, once committed).
#[derive(Clone, Debug, Default)]
pub(crate) struct Dropped {
    pub(crate) held: u64,
    pub(crate) blobs: u64,
    pub(crate) bytes: u64,
    /// The blobs deleted.
    pub(crate) gone: Vec<BlobId>,
}

impl Dropped {
    /// Count the deleted blobs out of the totals (after the commit).
    pub(crate) fn apply(&self, inner: &Inner) {
        inner.forget_touched(&self.gone);
        inner.totals.change(|t| {
            t.blobs = t.blobs.saturating_sub(self.blobs);
            t.blob_bytes = t.blob_bytes.saturating_sub(self.bytes);
        });
    }
}

/// Drop one reference per blob named; delete the blobs left without any.
pub(crate) async fn drop_refs(
    tx: &Transaction<'_>,
    refs: &[BlobRef],
) -> Result<Dropped, StoreError> {
    let mut out = Dropped {
        held: refs.iter().fold(0u64, |n, b| n.saturating_add(b.len)),
        ..Dropped::default()
    };
    for (id, n) in counted(refs.iter().map(|b| b.id)) {
        let left = tx
            .query_opt(
                "UPDATE blobs SET refs = greatest(refs - $2, 0) WHERE id = $1 RETURNING refs",
                &[&&id[..], &n],
            )
            .await
            .map_err(backend)?;
        let Some(left) = left else { continue };
        if left.try_get::<_, i64>(0).map_err(backend)? == 0 {
            let gone = tx
                .query_opt(
                    "DELETE FROM blobs WHERE id = $1 AND refs = 0 RETURNING have",
                    &[&&id[..]],
                )
                .await
                .map_err(backend)?;
            if let Some(g) = gone {
                out.gone.push(BlobId(id));
                out.blobs += 1;
                out.bytes = out
                    .bytes
                    .saturating_add(uint(g.try_get(0).map_err(backend)?)?);
            }
        }
    }
    Ok(out)
}

/// The length of a complete blob.
pub(crate) async fn complete_len(inner: &Inner, blob: BlobId) -> Result<Option<u64>, StoreError> {
    let c = inner.conn().await?;
    complete(&c, &blob).await
}

async fn complete(c: &Client, blob: &BlobId) -> Result<Option<u64>, StoreError> {
    let row = c
        .query_opt(
            "SELECT total FROM blobs WHERE id = $1 AND have = total",
            &[&&blob.0[..]],
        )
        .await
        .map_err(backend)?;
    row.map(|r| uint(r.try_get(0).map_err(backend)?))
        .transpose()
}

/// Up to `max` bytes of a complete blob from `offset`.
pub(crate) async fn read(
    inner: &Inner,
    blob: BlobId,
    offset: u64,
    max: usize,
) -> Result<Option<Bytes>, StoreError> {
    let c = inner.conn().await?;
    let Some(total) = complete(&c, &blob).await? else {
        return Ok(None);
    };
    Ok(chunks::read(&c, Target::Blob(&blob.0), offset, max, total)
        .await?
        .map(Bytes::from))
}

/// Delete the blobs nobody refers to that were not written for the blob expiry.
///
/// The database knows a blob's last write to the hour (what the sled store keeps on disk);
/// the relay that wrote it knows the second. A blob is due when its last write, as this relay
/// knows it, is at least the blob expiry ago: the second when this relay wrote it, else the end
/// of the stored hour, so a blob is never deleted early, whichever relay looks.
pub(crate) async fn expire(inner: &Inner, now: u64) -> Result<(), StoreError> {
    let secs = inner.blob_expiry.load(Ordering::Relaxed);
    let Some(cutoff) = now.checked_sub(secs) else {
        return Ok(());
    };
    inner.forget_touched_before(cutoff.saturating_sub(RECEIVE_TIME_GRANULARITY_SECS));
    let mut after: Vec<u8> = Vec::new();
    loop {
        let mut c = inner.conn().await?;
        let tx = c.transaction().await.map_err(backend)?;
        // Candidates: unreferenced, stamped with an hour that began by the cutoff.
        let rows = tx
            .query(
                "SELECT id, touched FROM blobs WHERE refs = 0 AND touched <= $1 AND id > $2
                 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED",
                &[&int(cutoff)?, &after, &EXPIRE_BATCH],
            )
            .await
            .map_err(backend)?;
        let batch = rows.len();
        let mut due: Vec<Vec<u8>> = Vec::new();
        for r in &rows {
            let id: Vec<u8> = r.try_get(0).map_err(backend)?;
            let stamp = uint(r.try_get(1).map_err(backend)?)?;
            let blob = BlobId(id_of(&id)?);
            let last = inner
                .touched_of(&blob)
                .unwrap_or(stamp.saturating_add(RECEIVE_TIME_GRANULARITY_SECS));
            if last <= cutoff {
                due.push(id.clone());
            }
            after = id;
        }
        let gone = tx
            .query(
                "DELETE FROM blobs WHERE id = ANY($1) RETURNING id, have",
                &[&due],
            )
            .await
            .map_err(backend)?;
        let mut bytes = 0u64;
        let mut ids = Vec::with_capacity(gone.len());
        for r in &gone {
            ids.push(BlobId(id_of(r.try_get::<_, &[u8]>(0).map_err(backend)?)?));
            bytes = bytes.saturating_add(uint(r.try_get(1).map_err(backend)?)?);
        }
        inner.commit(tx).await?;
        inner.forget_touched(&ids);
        let n = ids.len() as u64;
        inner.totals.change(|t| {
            t.blobs = t.blobs.saturating_sub(n);
            t.blob_bytes = t.blob_bytes.saturating_sub(bytes);
        });
        if (batch as i64) < EXPIRE_BATCH {
            return Ok(());
        }
    }
}
