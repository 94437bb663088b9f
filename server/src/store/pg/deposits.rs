//! Deposits in PostgreSQL: storing (with or without blobs), listing, reading, acknowledging and
//! expiring items, and each mailbox's usage.
//!
//! A deposit is one transaction: an advisory lock named by (mailbox, deposit id) keeps a second
//! copy out on any relay ([`StoreError::InProgress`]); the `deposits` row and the envelope's
//! chunks are written as the envelope arrives; the blobs gain their references; and the
//! mailbox row's conditional `UPDATE` takes the quota last, so the row is locked only for the
//! moment before `COMMIT`. A failure anywhere (the client gone, the quota taken meanwhile by
//! another relay, the connection lost) rolls all of it back.

use super::chunks::{self, Target};
use super::{backend, blobs, id_of, int, uint, Inner};
use crate::body::BodySource;
use crate::store::sled_store::layout::{blobs_of, blobs_value};
use crate::store::{flip, Deposited, ItemMeta, MailboxUsage, StoreError, LARGE_ENVELOPE_MIN};
use bytes::Bytes;
use std::collections::BTreeMap;
use vigil_core::ids::{BlobId, ItemId, MailboxId};
use vigil_core::wire::alert::NOTE_LEN;
use vigil_core::wire::deposit::Deposit;
use vigil_core::wire::fetch::BlobRef;
use vigil_core::wire::limits::MAX_ENVELOPE_LEN;
use vigil_core::wire::policy::{coarse_time, expiry_cutoff};
use vigil_core::wire::ReleaseNote;

/// Salt of the advisory locks of deposits being received.
const DEPOSIT_LOCK: u64 = 0x6465_706f_7369_7400;

/// Rows one expiry transaction deletes: keeps each transaction (and its row locks) short.
const EXPIRE_BATCH: i64 = 500;

/// Where an envelope of `len` bytes sorts: small ones (the urgent text) first.
pub(crate) fn place_for(len: usize) -> i16 {
    i16::from(len > LARGE_ENVELOPE_MIN)
}

/// Store a deposit; see the module docs.
pub(crate) async fn deposit(
    inner: &Inner,
    head: Deposit,
    blob_ids: &[BlobId],
    now: u64,
    body: &mut dyn BodySource,
) -> Result<Deposited, StoreError> {
    let (m, d) = (&head.mailbox.as_bytes()[..], &head.deposit_id.0[..]);
    let len = head.envelope_len as u64;
    let _slot = inner.streaming_slot(head.envelope_len).await?;
    let mut c = inner.conn().await?;
    // Before a byte is read: the mailbox, a repeat (stored or acknowledged), the quota.
    let row = c
        .query_opt(
            "SELECT items + sealed_items, bytes + sealed_bytes + blob_bytes,
                    EXISTS (SELECT 1 FROM deposits WHERE mailbox = $1 AND deposit_id = $2)
             FROM mailboxes WHERE id = $1",
            &[&m, &d],
        )
        .await
        .map_err(backend)?;
    let Some(row) = row else {
        return Err(StoreError::UnknownMailbox);
    };
    if row.try_get::<_, bool>(2).map_err(backend)? {
        return Ok(Deposited::Repeat);
    }
    let refs = blobs::lengths(&c, blob_ids).await?;
    let blob_sum = refs.iter().fold(0u64, |n, b| n.saturating_add(b.len));
    let (items, bytes) = (
        uint(row.try_get(0).map_err(backend)?)?,
        uint(row.try_get(1).map_err(backend)?)?,
    );
    if !inner
        .quota
        .allows(items, bytes, len.saturating_add(blob_sum))
    {
        return Err(StoreError::QuotaExceeded);
    }

    let tx = c.transaction().await.map_err(backend)?;
    let key = super::lock_key(m, d, DEPOSIT_LOCK);
    let locked: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&key])
        .await
        .and_then(|r| r.try_get(0))
        .map_err(backend)?;
    if !locked {
        return Err(StoreError::InProgress);
    }
    // Stored by another relay between the look above and the lock.
    if tx
        .query_opt(
            "SELECT 1 FROM deposits WHERE mailbox = $1 AND deposit_id = $2",
            &[&m, &d],
        )
        .await
        .map_err(backend)?
        .is_some()
    {
        return Ok(Deposited::Repeat);
    }
    let blob_list = (!refs.is_empty()).then(|| blobs_value(&refs));
    let inserted = tx
        .execute(
            "INSERT INTO deposits (mailbox, deposit_id, place, len, time, blobs)
         VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &m,
                &d,
                &place_for(head.envelope_len),
                &int(len)?,
                &int(coarse_time(now))?,
                &blob_list,
            ],
        )
        .await;
    match inserted {
        // Another relay stored it while holding the lock under another key (a relay of a build
        // that names locks differently): the insert waited for its commit, so it is a repeat.
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
            return Ok(Deposited::Repeat)
        }
        // The mailbox was forgotten (its lifetime ended) since the look above.
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) => {
            return Err(StoreError::UnknownMailbox)
        }
        other => other.map_err(backend)?,
    };
    chunks::write(&tx, Target::Envelope(m, d), 0, head.envelope_len, body).await?;
    // Referenced from here on, checked again: a blob may have expired meanwhile.
    blobs::take_refs(&tx, blob_ids).await?;
    let fits = tx
        .execute(
            "UPDATE mailboxes SET items = items + 1, bytes = bytes + $2,
                                  blob_bytes = blob_bytes + $3
             WHERE id = $1 AND items + sealed_items + 1 <= $4
               AND bytes + sealed_bytes + blob_bytes + $2 + $3 <= $5",
            &[
                &m,
                &int(len)?,
                &int(blob_sum)?,
                &int(inner.quota.max_items)?,
                &int(inner.quota.max_bytes)?,
            ],
        )
        .await
        .map_err(backend)?;
    if fits == 0 {
        // Filled by deposits that committed while this envelope arrived.
        return Err(StoreError::QuotaExceeded);
    }
    // Delivered to every relay's live-inbox waiters once (and only if) this commits.
    tx.execute(
        "SELECT pg_notify($1, $2)",
        &[
            &super::notify::CHANNEL,
            &super::notify::payload(&head.mailbox),
        ],
    )
    .await
    .map_err(backend)?;
    inner.commit(tx).await?;
    inner.totals.change(|t| {
        t.items += 1;
        t.bytes += len;
    });
    Ok(Deposited::New)
}

/// The item ids of `mailbox` as deposit ids, sorted and without repeats (the lock order).
fn deposit_ids(mailbox: &MailboxId, ids: &[ItemId]) -> Vec<[u8; 16]> {
    let mut out: Vec<[u8; 16]> = ids.iter().map(|i| flip(mailbox, &i.0)).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Up to `max_items` waiting items of `mailbox` in fetch order, within `max_bytes` (at least
/// one).
pub(crate) async fn list(
    inner: &Inner,
    mailbox: MailboxId,
    max_items: u32,
    max_bytes: u64,
) -> Result<Vec<ItemMeta>, StoreError> {
    let c = inner.conn().await?;
    let rows = c
        .query(
            "SELECT deposit_id, len, place FROM deposits
             WHERE mailbox = $1 AND NOT acked ORDER BY place, deposit_id LIMIT $2",
            &[&&mailbox.as_bytes()[..], &i64::from(max_items)],
        )
        .await
        .map_err(backend)?;
    let (mut out, mut total) = (Vec::with_capacity(rows.len()), 0u64);
    for row in rows {
        let d: [u8; 16] = id_of(row.try_get::<_, &[u8]>(0).map_err(backend)?)?;
        let len = uint(row.try_get(1).map_err(backend)?)?;
        let place: i16 = row.try_get(2).map_err(backend)?;
        if len == 0 || len > MAX_ENVELOPE_LEN as u64 || !(0..=1).contains(&place) {
            // Damaged: skip it rather than block the mailbox; it goes at expiry. No ids logged.
            tracing::error!("a stored envelope is damaged; skipping it");
            continue;
        }
        // Stop at the first item that does not fit (never skip one), but list at least one.
        if !out.is_empty() && total.saturating_add(len) > max_bytes {
            break;
        }
        total = total.saturating_add(len);
        out.push(ItemMeta {
            id: ItemId(flip(&mailbox, &d)),
            len,
            place: place as u8,
        });
    }
    Ok(out)
}

/// Up to `max` bytes of an item's envelope from `offset`; `None` if it is gone.
pub(crate) async fn read(
    inner: &Inner,
    mailbox: MailboxId,
    item: ItemMeta,
    offset: u64,
    max: usize,
) -> Result<Option<Bytes>, StoreError> {
    let d = flip(&mailbox, &item.id.0);
    let c = inner.conn().await?;
    let target = Target::Envelope(&mailbox.as_bytes()[..], &d[..]);
    Ok(chunks::read(&c, target, offset, max, item.len)
        .await?
        .map(Bytes::from))
}

/// What `mailbox` holds waiting, against its quota.
pub(crate) async fn usage(inner: &Inner, mailbox: MailboxId) -> Result<MailboxUsage, StoreError> {
    let c = inner.conn().await?;
    let row = c
        .query_opt(
            "SELECT items, bytes + blob_bytes FROM mailboxes WHERE id = $1",
            &[&&mailbox.as_bytes()[..]],
        )
        .await
        .map_err(backend)?;
    let (items, bytes) = match row {
        Some(r) => (
            uint(r.try_get(0).map_err(backend)?)?,
            uint(r.try_get(1).map_err(backend)?)?,
        ),
        None => (0, 0),
    };
    Ok(MailboxUsage {
        items,
        bytes,
        quota: inner.quota,
        expiry_secs: inner.expiry.as_secs(),
    })
}

/// Bytes `mailbox` may still take, or `None` if it is not registered.
pub(crate) async fn room(inner: &Inner, mailbox: MailboxId) -> Result<Option<u64>, StoreError> {
    let c = inner.conn().await?;
    let row = c
        .query_opt(
            "SELECT bytes + sealed_bytes + blob_bytes FROM mailboxes WHERE id = $1",
            &[&&mailbox.as_bytes()[..]],
        )
        .await
        .map_err(backend)?;
    match row {
        Some(r) => {
            let used = uint(r.try_get(0).map_err(backend)?)?;
            Ok(Some(inner.quota.max_bytes.saturating_sub(used)))
        }
        None => Ok(None),
    }
}

/// Acknowledge `ids` of `mailbox`: each item becomes its tombstone, its chunks and blob
/// references go, and its mailbox's counters drop, in one transaction.
pub(crate) async fn ack(
    inner: &Inner,
    mailbox: MailboxId,
    ids: &[ItemId],
) -> Result<u64, StoreError> {
    let ds = deposit_ids(&mailbox, ids);
    if ds.is_empty() {
        return Ok(0);
    }
    let d_refs: Vec<&[u8]> = ds.iter().map(|d| &d[..]).collect();
    let m = &mailbox.as_bytes()[..];
    let mut c = inner.conn().await?;
    let tx = c.transaction().await.map_err(backend)?;
    // Locked in deposit id order; an item acknowledged meanwhile (on another relay) drops out
    // when its lock is granted, as `NOT acked` is checked again then.
    let rows = tx
        .query(
            "WITH old AS (
                SELECT deposit_id, len, blobs FROM deposits
                WHERE mailbox = $1 AND deposit_id = ANY($2) AND NOT acked
                ORDER BY deposit_id FOR UPDATE
             )
             UPDATE deposits d SET acked = true, note = NULL, blobs = NULL
             FROM old WHERE d.mailbox = $1 AND d.deposit_id = old.deposit_id
             RETURNING old.deposit_id, old.len, old.blobs",
            &[&m, &d_refs],
        )
        .await
        .map_err(backend)?;
    if rows.is_empty() {
        return Ok(0);
    }
    let (mut n, mut bytes, mut blob_ids) = (0u64, 0u64, Vec::new());
    let mut acked: Vec<Vec<u8>> = Vec::with_capacity(rows.len());
    for row in &rows {
        acked.push(row.try_get::<_, Vec<u8>>(0).map_err(backend)?);
        bytes = bytes.saturating_add(uint(row.try_get(1).map_err(backend)?)?);
        if let Some(v) = row.try_get::<_, Option<&[u8]>>(2).map_err(backend)? {
            blob_ids.extend(blobs_of(v)?);
        }
        n += 1;
    }
    tx.execute(
        "DELETE FROM envelope_chunks WHERE mailbox = $1 AND deposit_id = ANY($2)",
        &[&m, &acked],
    )
    .await
    .map_err(backend)?;
    let dropped = blobs::drop_refs(&tx, &blob_ids).await?;
    release_usage(&tx, m, n, bytes, dropped.held).await?;
    inner.commit(tx).await?;
    dropped.apply(inner);
    inner.totals.change(|t| {
        t.items = t.items.saturating_sub(n);
        t.bytes = t.bytes.saturating_sub(bytes);
    });
    Ok(n)
}

/// Take `n` items of `bytes` bytes (and `blob_bytes` of blobs) off a mailbox's counters (never
/// below zero: a counter that drifted must not make an acknowledgement fail).
async fn release_usage(
    tx: &tokio_postgres::Transaction<'_>,
    m: &[u8],
    n: u64,
    bytes: u64,
    blob_bytes: u64,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE mailboxes SET items = greatest(items - $2, 0), bytes = greatest(bytes - $3, 0),
                              blob_bytes = greatest(blob_bytes - $4, 0)
         WHERE id = $1",
        &[&m, &int(n)?, &int(bytes)?, &int(blob_bytes)?],
    )
    .await
    .map_err(backend)?;
    Ok(())
}

/// Delete items and tombstones received at or before the expiry cutoff, a batch per
/// transaction; rows another relay is expiring or acknowledging right now are skipped (and
/// taken by a later run, or already gone).
pub(crate) async fn expire(inner: &Inner, now: u64) -> Result<u64, StoreError> {
    let Some(cutoff) = expiry_cutoff(now, inner.expiry.as_secs()) else {
        return Ok(0);
    };
    let cutoff = int(cutoff)?;
    let mut removed = 0u64;
    loop {
        let mut c = inner.conn().await?;
        let tx = c.transaction().await.map_err(backend)?;
        let rows = tx
            .query(
                "DELETE FROM deposits WHERE ctid = ANY (ARRAY (
                    SELECT ctid FROM deposits WHERE time <= $1
                    LIMIT $2 FOR UPDATE SKIP LOCKED))
                 RETURNING mailbox, len, acked, blobs",
                &[&cutoff, &EXPIRE_BATCH],
            )
            .await
            .map_err(backend)?;
        let batch = rows.len();
        // Per mailbox, in id order (the lock order): items, bytes, blob bytes.
        let mut per: BTreeMap<Vec<u8>, (u64, u64, u64)> = BTreeMap::new();
        let mut blob_ids: Vec<BlobRef> = Vec::new();
        let mut items = (0u64, 0u64);
        for row in &rows {
            if row.try_get::<_, bool>(2).map_err(backend)? {
                continue;
            }
            let m: Vec<u8> = row.try_get(0).map_err(backend)?;
            let len = uint(row.try_get(1).map_err(backend)?)?;
            let refs = match row.try_get::<_, Option<&[u8]>>(3).map_err(backend)? {
                Some(v) => blobs_of(v)?,
                None => Vec::new(),
            };
            let sum = refs.iter().fold(0u64, |n, b| n.saturating_add(b.len));
            blob_ids.extend(refs);
            let e = per.entry(m).or_default();
            e.0 += 1;
            e.1 = e.1.saturating_add(len);
            e.2 = e.2.saturating_add(sum);
            items.0 += 1;
            items.1 = items.1.saturating_add(len);
        }
        let dropped = blobs::drop_refs(&tx, &blob_ids).await?;
        for (m, (n, bytes, blob_bytes)) in &per {
            release_usage(&tx, m, *n, *bytes, *blob_bytes).await?;
        }
        inner.commit(tx).await?;
        dropped.apply(inner);
        inner.totals.change(|t| {
            t.items = t.items.saturating_sub(items.0);
            t.bytes = t.bytes.saturating_sub(items.1);
        });
        removed += items.0;
        if (batch as i64) < EXPIRE_BATCH {
            return Ok(removed);
        }
    }
}

/// Mailboxes forgotten per transaction.
const FORGET_BATCH: i64 = 50;

/// Forget the mailboxes whose lifetime ended at `now` with everything they hold (items,
/// tombstones, notes, prekey, blob references), a batch per transaction; how many items went.
/// A mailbox a deposit is being stored into right now is skipped (its row is locked by the
/// deposit's foreign key) and taken at the next run.
pub(crate) async fn forget_mailboxes(inner: &Inner, now: u64) -> Result<u64, StoreError> {
    let now = int(now)?;
    let mut removed = 0u64;
    loop {
        let mut c = inner.conn().await?;
        let tx = c.transaction().await.map_err(backend)?;
        let due = tx
            .query(
                "SELECT id FROM mailboxes WHERE expires IS NOT NULL AND expires <= $1
                 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
                &[&now, &FORGET_BATCH],
            )
            .await
            .map_err(backend)?;
        if due.is_empty() {
            return Ok(removed);
        }
        let mut ids: Vec<Vec<u8>> = Vec::with_capacity(due.len());
        for r in &due {
            ids.push(r.try_get(0).map_err(backend)?);
        }
        let rows = tx
            .query(
                "DELETE FROM deposits WHERE mailbox = ANY($1) RETURNING len, acked, blobs",
                &[&ids],
            )
            .await
            .map_err(backend)?;
        let (mut items, mut bytes, mut refs) = (0u64, 0u64, Vec::new());
        for row in &rows {
            if row.try_get::<_, bool>(1).map_err(backend)? {
                continue;
            }
            items += 1;
            bytes = bytes.saturating_add(uint(row.try_get(0).map_err(backend)?)?);
            if let Some(v) = row.try_get::<_, Option<&[u8]>>(2).map_err(backend)? {
                refs.extend(blobs_of(v)?);
            }
        }
        let dropped = blobs::drop_refs(&tx, &refs).await?;
        tx.execute("DELETE FROM mailboxes WHERE id = ANY($1)", &[&ids])
            .await
            .map_err(backend)?;
        inner.commit(tx).await?;
        dropped.apply(inner);
        let gone: Vec<MailboxId> = ids
            .iter()
            .filter_map(|v| id_of::<32>(v).ok().map(MailboxId))
            .collect();
        inner.forget_keys(&gone);
        let n = gone.len() as u64;
        inner.totals.change(|t| {
            t.mailboxes = t.mailboxes.saturating_sub(n);
            t.items = t.items.saturating_sub(items);
            t.bytes = t.bytes.saturating_sub(bytes);
        });
        removed += items;
        tracing::info!(mailboxes = n, "forgot mailboxes whose lifetime ended");
        if (due.len() as i64) < FORGET_BATCH {
            return Ok(removed);
        }
    }
}

/// The release note beside an item, if it was released from an alert.
pub(crate) async fn note(
    inner: &Inner,
    mailbox: MailboxId,
    item: ItemMeta,
) -> Result<Option<ReleaseNote>, StoreError> {
    let d = flip(&mailbox, &item.id.0);
    let c = inner.conn().await?;
    let row = c
        .query_opt(
            "SELECT note FROM deposits WHERE mailbox = $1 AND deposit_id = $2 AND NOT acked",
            &[&&mailbox.as_bytes()[..], &&d[..]],
        )
        .await
        .map_err(backend)?;
    let Some(v) = row
        .map(|r| r.try_get::<_, Option<Vec<u8>>>(0))
        .transpose()
        .map_err(backend)?
        .flatten()
    else {
        return Ok(None);
    };
    if v.len() != NOTE_LEN {
        return Err(StoreError::Corrupt("release note"));
    }
    ReleaseNote::decode_opt(&v).map_err(|_| StoreError::Corrupt("release note"))
}

/// The blobs an item refers to.
pub(crate) async fn item_blobs(
    inner: &Inner,
    mailbox: MailboxId,
    item: ItemMeta,
) -> Result<Vec<BlobRef>, StoreError> {
    let d = flip(&mailbox, &item.id.0);
    let c = inner.conn().await?;
    let row = c
        .query_opt(
            "SELECT blobs FROM deposits WHERE mailbox = $1 AND deposit_id = $2 AND NOT acked",
            &[&&mailbox.as_bytes()[..], &&d[..]],
        )
        .await
        .map_err(backend)?;
    match row
        .map(|r| r.try_get::<_, Option<Vec<u8>>>(0))
        .transpose()
        .map_err(backend)?
        .flatten()
    {
        Some(v) => blobs_of(&v),
        None => Ok(Vec::new()),
    }
}
