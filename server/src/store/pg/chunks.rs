//! Envelope and blob bytes in rows of at most [`CHUNK`] bytes, keyed by their offset.
//!
//! Why rows and not one `bytea` or a large object: a row is written as its bytes arrive, so a
//! deposit holds at most one chunk in memory however large its envelope; a range is read by
//! offset without touching the rest; rows go with a `DELETE` (and by cascade with their
//! deposit or blob), replicate like everything else, and need no `lo_unlink` bookkeeping.
//! Because no row is longer than [`CHUNK`], the rows overlapping `[start, end)` are those with
//! `start - CHUNK < off < end`: an index range scan.

use super::{backend, int, uint, CHUNK};
use crate::body::BodySource;
use crate::store::StoreError;
use tokio_postgres::{Client, Transaction};

/// Most bytes one read returns, whatever the caller asks: bounds the memory of a read.
const MAX_READ: usize = 4 * 1024 * 1024;

/// Whose bytes.
#[derive(Clone, Copy)]
pub(crate) enum Target<'a> {
    /// An envelope: (mailbox id, deposit id).
    Envelope(&'a [u8], &'a [u8]),
    /// A blob: its id.
    Blob(&'a [u8]),
}

impl Target<'_> {
    async fn insert(&self, tx: &Transaction<'_>, off: u64, data: &[u8]) -> Result<(), StoreError> {
        let off = int(off)?;
        let done = match self {
            Target::Envelope(m, d) => {
                tx.execute(
                    "INSERT INTO envelope_chunks (mailbox, deposit_id, off, data)
                     VALUES ($1, $2, $3, $4)",
                    &[m, d, &off, &data],
                )
                .await
            }
            Target::Blob(b) => {
                tx.execute(
                    "INSERT INTO blob_chunks (blob, off, data) VALUES ($1, $2, $3)",
                    &[b, &off, &data],
                )
                .await
            }
        };
        done.map(|_| ()).map_err(backend)
    }
}

/// Stream exactly `len` bytes of `body` into rows of `target` from offset `start`, inside `tx`.
pub(crate) async fn write(
    tx: &Transaction<'_>,
    target: Target<'_>,
    start: u64,
    len: usize,
    body: &mut dyn BodySource,
) -> Result<(), StoreError> {
    let short = || StoreError::Backend("the payload's length differs from its head".into());
    if let Some(all) = body.take_buffered() {
        if all.len() != len {
            return Err(short());
        }
        let mut off = start;
        for c in all.chunks(CHUNK) {
            target.insert(tx, off, c).await?;
            off += c.len() as u64;
        }
        return Ok(());
    }
    let mut buf = Vec::with_capacity(len.min(CHUNK));
    let (mut off, mut total) = (start, 0usize);
    while let Some(piece) = body.next_chunk(CHUNK - buf.len()).await? {
        total = total.saturating_add(piece.len());
        if total > len {
            return Err(short());
        }
        buf.extend_from_slice(&piece);
        while buf.len() >= CHUNK {
            target.insert(tx, off, &buf[..CHUNK]).await?;
            buf.drain(..CHUNK);
            off += CHUNK as u64;
        }
    }
    if total != len {
        return Err(short());
    }
    if !buf.is_empty() {
        target.insert(tx, off, &buf).await?;
    }
    Ok(())
}

/// Write `data` (already in memory, e.g. an alert's envelope) into rows of `target` from 0.
pub(crate) async fn write_all(
    tx: &Transaction<'_>,
    target: Target<'_>,
    data: &[u8],
) -> Result<(), StoreError> {
    let mut off = 0u64;
    for c in data.chunks(CHUNK) {
        target.insert(tx, off, c).await?;
        off += c.len() as u64;
    }
    Ok(())
}

/// Up to `max` bytes of `target` from `start`, of `len` bytes in all; `None` when no row
/// holds them (gone since it was listed). A gap in the rows is damage.
pub(crate) async fn read(
    c: &Client,
    target: Target<'_>,
    start: u64,
    max: usize,
    len: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    let want = (max.min(MAX_READ) as u64).min(len.saturating_sub(start));
    if want == 0 {
        return Ok(Some(Vec::new()));
    }
    let end = start + want;
    let (lo, hi) = (int(start)?.saturating_sub(CHUNK as i64), int(end)?);
    let rows = match target {
        Target::Envelope(m, d) => {
            c.query(
                "SELECT off, data FROM envelope_chunks
                 WHERE mailbox = $1 AND deposit_id = $2 AND off > $3 AND off < $4 ORDER BY off",
                &[&m, &d, &lo, &hi],
            )
            .await
        }
        Target::Blob(b) => {
            c.query(
                "SELECT off, data FROM blob_chunks
                 WHERE blob = $1 AND off > $2 AND off < $3 ORDER BY off",
                &[&b, &lo, &hi],
            )
            .await
        }
    }
    .map_err(backend)?;
    if rows.is_empty() {
        return Ok(None);
    }
    let gap = || StoreError::Corrupt("a chunk of stored bytes is missing");
    let mut out = Vec::with_capacity(want as usize);
    let mut at = start;
    for row in rows {
        let off = uint(row.try_get(0).map_err(backend)?)?;
        let data: &[u8] = row.try_get(1).map_err(backend)?;
        let row_end = off.saturating_add(data.len() as u64);
        if off > at {
            return Err(gap());
        }
        if row_end <= at {
            continue;
        }
        let from = usize::try_from(at - off).map_err(|_| gap())?;
        let to = usize::try_from(row_end.min(end) - off).map_err(|_| gap())?;
        out.extend_from_slice(data.get(from..to).ok_or_else(gap)?);
        at = off + to as u64;
        if at >= end {
            break;
        }
    }
    if at != end {
        return Err(gap());
    }
    Ok(Some(out))
}
