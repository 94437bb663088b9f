//! Large deposits: an envelope over `LARGE_ENVELOPE_MIN` streams from the request into a file of
//! its own as it arrives, and sled gets only its index entry.
//!
//! The body's chunks, as the network delivered them (no copy), are handed in batches to a
//! writer on a blocking thread, which appends each batch with one vectored write while the next
//! batch arrives. After the last byte: fdatasync the file, rename it to its final name, fsync the
//! directory, and only then write the index entry (the commit point), which the group commit
//! makes durable. A crash anywhere before the index entry leaves a file that no index names,
//! which the next start deletes (`EnvelopeFiles::collect_garbage`).

use super::envelope_files::TempEnvelope;
use super::layout::{entry, file_value, item_key, mailbox_of, DepositKey, Kind, Place};
use super::Inner;
use crate::body::{BodyError, BodySource};
use crate::store::{Deposited, StoreError};
use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Bytes per batch handed to the writer: large enough that a write call and a channel hand-off
/// per batch cost nothing next to the bytes, small enough to hold a few.
const PIECE_LEN: usize = 1024 * 1024;
/// Chunks per batch at most: one vectored write takes up to 1024 slices (Linux `IOV_MAX`).
const PIECE_CHUNKS: usize = 1024;
/// Batches queued for the writer while the next one fills.
const PIECES_QUEUED: usize = 2;
/// Most request memory one large deposit holds: the batch being filled, the queued ones and
/// the one being written. (The chunks are views into quinn's receive buffers; a batch of small
/// chunks can keep somewhat more of those alive than its byte count, which the per-connection
/// receive window bounds in turn.)
pub const LARGE_DEPOSIT_MEMORY: usize = PIECE_LEN * (PIECES_QUEUED + 2);

/// What the writer is handed.
enum Piece {
    /// The next chunks of the envelope, in order.
    Data(Vec<Bytes>),
    /// Everything arrived: commit.
    Commit,
}

/// Why the body stopped flowing before it was complete.
enum Stopped {
    /// The body could not be read to its end.
    Body(BodyError),
    /// The writer ended (a write failed); its result says why.
    Writer,
}

/// Everything a large deposit holds; dropping it before the commit undoes all of it: the
/// temporary file is deleted, the quota given back, and the key freed for another upload.
struct Staged {
    inner: Arc<Inner>,
    key: DepositKey,
    len: u64,
    time: u64,
    temp: Option<TempEnvelope>,
    /// The mailbox quota reserved for this envelope is still to be given back on drop.
    reserved: bool,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            let path = temp.path().to_path_buf();
            drop(temp);
            if let Err(e) = std::fs::remove_file(&path) {
                // Collected at the next start.
                tracing::warn!(error = %e, "cannot remove an abandoned upload's temporary file");
            }
        }
        if self.reserved {
            self.inner.usage.release(mailbox_of(&self.key), self.len);
        }
        if let Ok(mut r) = self.inner.receiving.lock() {
            r.remove(&self.key);
        }
    }
}

impl Staged {
    fn write(&mut self, parts: &[&[u8]]) -> Result<(), StoreError> {
        let temp = self
            .temp
            .as_mut()
            .ok_or(StoreError::Backend("envelope file already closed".into()))?;
        let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
        if temp.written() + total > self.len {
            return Err(StoreError::Backend(
                "envelope is longer than announced".into(),
            ));
        }
        temp.write_parts(parts)
    }

    /// Sync and publish the file, then index it (the commit point). Blocking.
    fn commit(mut self) -> Result<Deposited, StoreError> {
        let key = self.key;
        let temp = self
            .temp
            .as_mut()
            .ok_or(StoreError::Backend("envelope file already closed".into()))?;
        if temp.written() != self.len {
            return Err(StoreError::Backend(
                "envelope is shorter than announced".into(),
            ));
        }
        temp.sync()?;
        let inner = self.inner.clone();
        let ikey = item_key(&key, Place::File);
        // Stored or acknowledged meanwhile (by a copy another connection finished first): a
        // repeat; the temporary file is deleted on drop.
        if inner.items.contains_key(ikey).map_err(super::backend)? {
            return Ok(Deposited::Repeat);
        }
        let path = temp.path().to_path_buf();
        inner.files.publish(&path, &key)?;
        self.temp = None;
        let indexed = inner
            .items
            .compare_and_swap(ikey, None::<&[u8]>, Some(file_value(self.time, self.len)))
            .map_err(super::backend);
        match indexed {
            Ok(Ok(())) => {}
            // Cannot happen while `receiving` serialises uploads of one key and an ack needs an
            // item to act on; if it did, keep the file only if it is indexed.
            Ok(Err(e)) => {
                let indexed = e
                    .current
                    .as_deref()
                    .and_then(|v| entry(v).ok())
                    .is_some_and(|e| e.kind == Kind::File);
                if !indexed {
                    inner.files.remove(&key)?;
                }
                return Ok(Deposited::Repeat);
            }
            Err(e) => {
                // Not indexed: the published file must not outlive this failure (if removing
                // it fails too, the next start collects it).
                let _ = inner.files.remove(&key);
                return Err(e);
            }
        }
        self.reserved = false;
        inner.buckets.note(self.time, mailbox_of(&key))?;
        Ok(Deposited::New)
    }
}

/// Store `len` bytes from `body` under `key` in a file. The caller checked the mailbox and a
/// repeat; this reserves the quota, streams, commits. Not yet durable: the caller waits for the
/// group commit.
pub(super) async fn deposit(
    inner: &Arc<Inner>,
    key: DepositKey,
    len: u64,
    time: u64,
    body: &mut dyn BodySource,
) -> Result<Deposited, StoreError> {
    if !inner
        .receiving
        .lock()
        .map_err(|_| StoreError::Backend("upload registry poisoned".into()))?
        .insert(key)
    {
        return Err(StoreError::InProgress);
    }
    // From here on, dropping `staged` undoes what was taken.
    let mut staged = Staged {
        inner: inner.clone(),
        key,
        len,
        time,
        temp: None,
        reserved: false,
    };
    inner.usage.reserve(&inner.quota, mailbox_of(&key), len)?;
    staged.reserved = true;
    let (file, path) = inner.files.create_temp()?;
    staged.temp = Some(TempEnvelope::new(file, path));

    let (tx, rx) = mpsc::channel(PIECES_QUEUED);
    let writer = tokio::task::spawn_blocking(move || write_pieces(staged, rx));
    let pumped = match pump(body, &tx).await {
        Ok(()) => tx.send(Piece::Commit).await.map_err(|_| Stopped::Writer),
        Err(e) => Err(e),
    };
    // Closing the channel tells a writer that did not get Commit to discard the upload.
    drop(tx);
    let written = writer
        .await
        .map_err(|e| StoreError::Backend(format!("envelope writer failed: {e}")))?;
    match pumped {
        Err(Stopped::Body(e)) => Err(StoreError::Body(e)),
        Ok(()) | Err(Stopped::Writer) => written?.ok_or_else(|| {
            StoreError::Backend("the envelope writer stopped before the commit".into())
        }),
    }
}

/// The writer: append batches until Commit (then commit) or until the channel closes (then
/// drop the staged envelope, which discards it). `Ok(None)`: discarded.
fn write_pieces(
    mut staged: Staged,
    mut rx: mpsc::Receiver<Piece>,
) -> Result<Option<Deposited>, StoreError> {
    while let Some(piece) = rx.blocking_recv() {
        match piece {
            Piece::Data(chunks) => {
                let parts: Vec<&[u8]> = chunks.iter().map(|c| &c[..]).collect();
                staged.write(&parts)?
            }
            Piece::Commit => return staged.commit().map(Some),
        }
    }
    Ok(None)
}

/// Hand the whole body to the writer in batches; the body source checks its length and end.
async fn pump(body: &mut dyn BodySource, tx: &mpsc::Sender<Piece>) -> Result<(), Stopped> {
    let mut piece = Vec::new();
    let mut piece_len = 0usize;
    loop {
        let chunk = body
            .next_chunk(PIECE_LEN - piece_len)
            .await
            .map_err(Stopped::Body)?;
        let done = chunk.is_none();
        if let Some(c) = chunk {
            piece_len += c.len();
            piece.push(c);
        }
        if !piece.is_empty() && (done || piece_len >= PIECE_LEN || piece.len() == PIECE_CHUNKS) {
            piece_len = 0;
            tx.send(Piece::Data(std::mem::take(&mut piece)))
                .await
                .map_err(|_| Stopped::Writer)?;
        }
        if done {
            return Ok(());
        }
    }
}
