//! Download: stream a range of a complete blob to whoever names it. The 128-bit random blob id
//! is the capability (only a mailbox owner's authenticated Fetch reveals it). The range is
//! checked against the blob's length first, then the frame header is written and the bytes
//! follow a piece at a time from the store, every write under the reply's deadline, holding a
//! fetch slot (the same bound on response memory as fetches) until the last byte.

use super::{Admission, BodySource, Ctx, Failure, Rate, ReplySink};
use crate::handlers::fetch::READ_PIECE;
use std::sync::atomic::Ordering;
use vigil_core::wire::download::{chunk_frame_head, Download};
use vigil_core::wire::{ErrorCode, Refusal};

/// Rate-limited per address by the chunk rate (not the fetch rate: a large attachment is many
/// chunks); each streams up to 8 MiB and holds a fetch slot.
pub(super) const ADMISSION: Admission = Admission {
    rate: Some(Rate::Transfer),
    needs_space: false,
    carries_envelope: false,
};

pub(super) async fn handle(
    cx: &Ctx<'_>,
    req: Download,
    _: &mut dyn BodySource,
    reply: &mut dyn ReplySink,
) -> Result<(), Failure> {
    let shared = cx.shared;
    let len = (shared.store.blob_len(req.blob).await)
        .map_err(|e| shared.store_failed(e))?
        .ok_or_else(|| {
            Refusal::new(
                ErrorCode::UnknownBlob,
                "no such attachment here: not uploaded completely, or acknowledged or expired",
            )
        })?;
    let end = req.offset.saturating_add(u64::from(req.len));
    if end > len {
        return Err(Refusal::new(
            ErrorCode::Malformed,
            format!("the range ends past the attachment's {len} bytes"),
        )
        .into());
    }
    let _slot = shared.fetch_slots.acquire().await.map_err(|_| {
        Refusal::new(ErrorCode::Busy, "relay is shutting down; try again later")
    })?;
    reply
        .write(&chunk_frame_head(req.len))
        .await
        .map_err(|_| Failure::Abandoned)?;
    let mut offset = req.offset;
    while offset < end {
        let want = usize::try_from(end - offset).map_or(READ_PIECE, |n| n.min(READ_PIECE));
        let piece = shared
            .store
            .read_blob(req.blob, offset, want)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "reading a blob failed mid-response");
                Failure::Abandoned
            })?;
        // Deleted since its length was read, or shorter: the answer cannot be completed.
        let piece = match piece {
            Some(p) if !p.is_empty() && offset + p.len() as u64 <= end => p,
            _ => return Err(Failure::Abandoned),
        };
        reply.write(&piece).await.map_err(|_| Failure::Abandoned)?;
        offset += piece.len() as u64;
    }
    shared
        .counters
        .chunks_downloaded
        .fetch_add(1, Ordering::Relaxed);
    Ok(())
}
