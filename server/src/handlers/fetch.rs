//! Fetch: stream stored items to the holder of the mailbox key.
//!
//! The store lists the items first (ids and lengths, within the response limits), so the frame
//! header and every item head can be written before any envelope is read; then each envelope
//! is read and written a piece at a time. Memory per response: one piece, plus what the QUIC
//! connection buffers; the listener's reply sink bounds the time every write may take.
//!
//! A fetch with the notes flag gets each item's release note (or an empty note) between its
//! head and its envelope; the store is asked for the notes as the items are written. A fetch
//! with the blobs flag gets each item's blob list after that (the store is asked for the lists
//! before the frame header, whose length depends on them).

use super::{Admission, BodySource, Ctx, Failure, Rate, ReplySink, send};
use std::sync::atomic::Ordering;
use vigil_core::wire::fetch::{blob_list, item_head, items_frame_head_full, Fetch, Items};
use vigil_core::wire::ReleaseNote;
use vigil_core::wire::limits::MAX_FETCH_RESPONSE_BYTES;
use vigil_core::wire::{ErrorCode, Refusal};

/// Bytes of an envelope read and written at a time.
pub(crate) const READ_PIECE: usize = 256 * 1024;

/// A fetch may stream up to 32 MiB and holds a fetch slot until its last byte, so an address
/// that can prove one mailbox must not start fetches without bound.
pub(super) const ADMISSION: Admission = Admission {
    rate: Some(Rate::Fetch),
    needs_space: false,
    carries_envelope: false,
};

pub(super) async fn handle(
    cx: &Ctx<'_>,
    req: Fetch,
    _: &mut dyn BodySource,
    reply: &mut dyn ReplySink,
) -> Result<(), Failure> {
    let shared = cx.shared;
    cx.authorise(&req).await?;
    // Held until the last byte is written.
    let _slot = shared.fetch_slots.acquire().await.map_err(|_| {
        Refusal::new(ErrorCode::Busy, "relay is shutting down; try again later")
    })?;
    let items = shared
        .store
        .list(req.mailbox, req.count(), MAX_FETCH_RESPONSE_BYTES as u64)
        .await
        .map_err(|e| shared.store_failed(e))?;
    shared.counters.fetches.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(items = items.len(), "fetch");
    if items.is_empty() {
        let none = Items {
            items: Vec::new(),
            with_notes: req.with_notes(),
            with_blobs: req.with_blobs(),
        };
        return send(reply, &none).await;
    }
    let mut blobs = Vec::with_capacity(items.len());
    if req.with_blobs() {
        for item in &items {
            let b = (shared.store.item_blobs(req.mailbox, *item).await)
                .map_err(|e| shared.store_failed(e))?;
            blobs.push(b);
        }
    }
    let sizes: Vec<(u64, Option<usize>)> = (items.iter().enumerate())
        .map(|(n, i)| (i.len, blobs.get(n).map(Vec::len)))
        .collect();
    let head = items_frame_head_full(sizes, req.with_notes(), req.with_blobs()).map_err(|e| {
        tracing::error!(error = %e, "stored items exceed the response limits");
        Refusal::new(ErrorCode::StorageFailed, "relay storage failed; try again later")
    })?;
    reply.write(&head).await.map_err(|_| Failure::Abandoned)?;
    for (n, item) in items.into_iter().enumerate() {
        // `items_frame_head` checked every length against MAX_ENVELOPE_LEN (< u32::MAX).
        reply
            .write(&item_head(&item.id, item.len as u32))
            .await
            .map_err(|_| Failure::Abandoned)?;
        if req.with_notes() {
            let note = shared.store.note(req.mailbox, item).await.map_err(|e| {
                tracing::error!(error = %e, "reading a release note failed mid-response");
                Failure::Abandoned
            })?;
            reply
                .write(&ReleaseNote::encode_opt(note.as_ref()))
                .await
                .map_err(|_| Failure::Abandoned)?;
        }
        if let Some(b) = blobs.get(n) {
            reply
                .write(&blob_list(b))
                .await
                .map_err(|_| Failure::Abandoned)?;
        }
        let mut offset = 0u64;
        while offset < item.len {
            let piece = shared
                .store
                .read(req.mailbox, item, offset, READ_PIECE)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "reading a stored envelope failed mid-response");
                    Failure::Abandoned
                })?;
            // Acknowledged or expired since it was listed, or shorter than listed: the answer
            // promised its length, so it cannot be completed; the client fetches again.
            let piece = match piece {
                Some(p) if !p.is_empty() && offset + p.len() as u64 <= item.len => p,
                _ => return Err(Failure::Abandoned),
            };
            reply.write(&piece).await.map_err(|_| Failure::Abandoned)?;
            offset += piece.len() as u64;
        }
    }
    Ok(())
}
