//! Deposit: store an envelope, anonymously, and answer "stored" only once it is on disk.
//!
//! Two paths. A small envelope arrives whole in the request body and is stored in one write
//! ([`apply`]). An envelope longer than [`LARGE_ENVELOPE_MIN`] is streamed ([`apply_streamed`]):
//! the store is asked first (registered mailbox, repeat, quota), so a refused or repeated upload
//! is answered before its bytes are sent; then the body's chunks, as the network delivered them
//! (no copy), are handed in batches to a writer thread that appends each batch to the store's
//! file with one vectored write while the next batch arrives.

use super::{
    blocking, durable, encode, no_space, now_unix, BodyError, BodySource, Refusal, Shared,
};
use crate::store::{LargeDeposit, StagedEnvelope, StoreError, LARGE_ENVELOPE_MIN};
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;
use vigil_core::ids::{DepositId, MailboxId};
use vigil_core::wire::{ErrorCode, Response, WireError};

/// Bytes per batch handed to the writer thread: large enough that a write call and a channel
/// hand-off per batch cost nothing next to the bytes, small enough to hold a few.
pub(crate) const PIECE_LEN: usize = 1024 * 1024;
/// Chunks per batch at most: one vectored write takes up to 1024 slices (Linux `IOV_MAX`).
const PIECE_CHUNKS: usize = 1024;
/// Pieces queued for the writer thread while the next one fills.
const PIECES_QUEUED: usize = 2;
/// Most request memory one streamed deposit holds: the batch being filled, the queued ones and
/// the one being written. The listener reserves this much of its request-memory budget. (The
/// chunks are views into quinn's receive buffers; a batch of small chunks can keep somewhat
/// more of those buffers alive than its byte count, which the per-connection receive window
/// bounds in turn.)
pub(crate) const STREAMED_DEPOSIT_MEMORY: usize = PIECE_LEN * (PIECES_QUEUED + 2);

/// `buf[offset..]` is the envelope. Taking the request buffer by value lets a deposit reach the
/// store without another copy of up to `MAX_ENVELOPE_LEN` bytes.
pub(super) async fn apply(
    shared: &Shared,
    mailbox: MailboxId,
    deposit_id: DepositId,
    buf: Vec<u8>,
    offset: usize,
) -> Result<Vec<u8>, Refusal> {
    if buf.len().saturating_sub(offset) > shared.max_envelope {
        return Err(Refusal::new(
            ErrorCode::TooLarge,
            "report is larger than this relay accepts",
        ));
    }
    shared.check_space()?;
    let now = now_unix();
    let (_, duplicate) = blocking(shared, move |s| {
        let envelope = buf.get(offset..).unwrap_or_default();
        s.deposit(&mailbox, &deposit_id, envelope, now)
    })
    .await?;
    stored(shared, duplicate).await
}

/// Answer "stored" once the write is durable. Also for a duplicate: the first copy may still
/// be waiting for its flush.
async fn stored(shared: &Shared, duplicate: bool) -> Result<Vec<u8>, Refusal> {
    durable(shared).await?;
    let counter = if duplicate {
        &shared.counters.deposits_duplicate
    } else {
        &shared.counters.deposits_stored
    };
    counter.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(duplicate, "deposit stored");
    Ok(encode(&Response::Stored { duplicate }))
}

/// What the writer thread is handed.
enum Piece<C> {
    /// The next chunks of the envelope, in order.
    Data(Vec<C>),
    /// Everything arrived: commit.
    Commit,
}

/// Why the body stopped flowing before it was complete.
enum Stopped {
    /// The stream or connection is gone: nobody to answer.
    Gone,
    /// The body was malformed (too short, trailing bytes).
    Refused(Refusal),
    /// The writer thread ended (a write failed); its result says why.
    Writer,
}

/// Store an envelope of `len` bytes read from `body`, for `mailbox` under `deposit_id`.
/// `Ok(None)`: the client went away; whatever was written is discarded.
pub(super) async fn apply_streamed<B: BodySource>(
    shared: &Shared,
    mailbox: MailboxId,
    deposit_id: DepositId,
    len: usize,
    body: &mut B,
) -> Result<Option<Vec<u8>>, Refusal> {
    if len > shared.max_envelope {
        return Err(Refusal::new(
            ErrorCode::TooLarge,
            "report is larger than this relay accepts",
        ));
    }
    // Room on disk is promised before a byte is written (and before the store is asked, so a
    // full disk refuses without a store call).
    let reservation = shared
        .space
        .try_reserve(len as u64)
        .ok_or_else(Refusal::storage_full)?;
    let now = now_unix();
    let begun = blocking(shared, move |s| {
        s.begin_large_deposit(&mailbox, &deposit_id, len as u64, now)
    })
    .await?;
    let staged = match begun {
        LargeDeposit::Repeat(_) => return stored(shared, true).await.map(Some),
        LargeDeposit::Write(staged) => staged,
    };
    let (tx, rx) = mpsc::channel(PIECES_QUEUED);
    let writer = tokio::task::spawn_blocking(move || write_pieces(staged, rx));
    let pumped = pump(body, len, &tx).await;
    let pumped = match pumped {
        Ok(()) => tx.send(Piece::Commit).await.map_err(|_| Stopped::Writer),
        Err(e) => Err(e),
    };
    // Closing the channel tells a writer that did not get Commit to discard the upload.
    drop(tx);
    let written = writer.await;
    match pumped {
        Err(Stopped::Gone) => return Ok(None),
        Err(Stopped::Refused(r)) => return Err(r),
        Ok(()) | Err(Stopped::Writer) => {}
    }
    let duplicate = match written {
        Ok(Ok(Some((_, duplicate)))) => {
            if !duplicate {
                reservation.consumed();
            }
            duplicate
        }
        Ok(Ok(None)) => {
            return Err(Refusal::from(StoreError::Backend(
                "the envelope writer stopped before the commit".into(),
            )))
        }
        Ok(Err(e)) => return Err(no_space(shared, e)),
        Err(e) => {
            return Err(Refusal::from(StoreError::Backend(format!(
                "envelope writer failed: {e}"
            ))))
        }
    };
    stored(shared, duplicate).await.map(Some)
}

/// The writer thread: append pieces until Commit (then commit) or until the channel closes
/// (then drop the staged envelope, which discards it). `Ok(None)`: discarded.
fn write_pieces<C: AsRef<[u8]>>(
    mut staged: Box<dyn StagedEnvelope>,
    mut rx: mpsc::Receiver<Piece<C>>,
) -> Result<Option<(vigil_core::ids::ItemId, bool)>, StoreError> {
    while let Some(piece) = rx.blocking_recv() {
        match piece {
            Piece::Data(chunks) => {
                let parts: Vec<&[u8]> = chunks.iter().map(AsRef::as_ref).collect();
                staged.write_parts(&parts)?
            }
            Piece::Commit => return staged.commit().map(Some),
        }
    }
    Ok(None)
}

/// Hand exactly `len` body bytes to the writer in batches, then check the body ends there.
async fn pump<B: BodySource>(
    body: &mut B,
    len: usize,
    tx: &mpsc::Sender<Piece<B::Chunk>>,
) -> Result<(), Stopped> {
    let mut piece = Vec::new();
    let mut piece_len = 0usize;
    let mut got = 0usize;
    while got < len {
        let want = (len - got).min(PIECE_LEN - piece_len);
        match body.next_chunk(want).await {
            Ok(Some(chunk)) => {
                let n = chunk.as_ref().len();
                // A source must not return more than asked; if one did, the body is refused
                // rather than overrun.
                if n > want {
                    return Err(Stopped::Refused(Refusal::from_wire(
                        &WireError::TrailingData {
                            extra: (n - want) as u64,
                        },
                    )));
                }
                got += n;
                piece_len += n;
                piece.push(chunk);
            }
            Ok(None) => {
                return Err(Stopped::Refused(Refusal::from_wire(
                    &WireError::Truncated {
                        what: "request body",
                        needed: (len - got) as u64,
                    },
                )))
            }
            Err(BodyError::Gone) => return Err(Stopped::Gone),
            Err(BodyError::TooSlow) => return Err(Stopped::Refused(Refusal::too_slow())),
        }
        if piece_len == PIECE_LEN || piece.len() == PIECE_CHUNKS || got == len {
            piece_len = 0;
            tx.send(Piece::Data(std::mem::take(&mut piece)))
                .await
                .map_err(|_| Stopped::Writer)?;
        }
    }
    match body.next_chunk(1).await {
        Ok(None) => Ok(()),
        Ok(Some(_)) => Err(Stopped::Refused(Refusal::from_wire(
            &WireError::TrailingData { extra: 1 },
        ))),
        Err(BodyError::Gone) => Err(Stopped::Gone),
        Err(BodyError::TooSlow) => Err(Stopped::Refused(Refusal::too_slow())),
    }
}

/// Whether an envelope of `len` bytes takes the streamed path.
pub(crate) fn is_large(len: usize) -> bool {
    len > LARGE_ENVELOPE_MIN
}
