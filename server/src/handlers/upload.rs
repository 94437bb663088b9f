//! Upload: append a chunk to an attachment blob, anonymously, and answer the blob's durable
//! length only once the chunk is on disk. A chunk at any other offset than the blob's end
//! writes nothing and is answered that end: how a client resumes.

use super::{refusal, send, Admission, BodySource, Ctx, Failure, Rate, ReplySink};
use crate::clock::now_unix;
use std::sync::atomic::Ordering;
use vigil_core::wire::quote::human_bytes;
use vigil_core::wire::upload::{Upload, Uploaded};
use vigil_core::wire::{ErrorCode, Refusal};

/// Writes to disk like a deposit: the disk-space gate and the per-address deposit rate, before
/// a byte of the chunk is read. The chunk's size is bounded by the protocol (8 MiB).
pub(super) const ADMISSION: Admission = Admission {
    rate: Some(Rate::Deposit),
    needs_space: true,
    carries_envelope: false,
};

pub(super) async fn handle(
    cx: &Ctx<'_>,
    req: Upload,
    body: &mut dyn BodySource,
    reply: &mut dyn ReplySink,
) -> Result<(), Failure> {
    let shared = cx.shared;
    if req.total > shared.max_report_bytes {
        return Err(Refusal::new(
            ErrorCode::TooLarge,
            format!(
                "the relay takes at most {} per report",
                human_bytes(shared.max_report_bytes)
            ),
        )
        .into());
    }
    let reservation = shared
        .space
        .try_reserve(req.chunk_len as u64)
        .ok_or_else(refusal::storage_full)?;
    let offset = (shared.store.upload(req, now_unix(), body).await)
        .map_err(|e| shared.store_failed(e))?;
    reservation.consumed();
    shared
        .counters
        .chunks_uploaded
        .fetch_add(1, Ordering::Relaxed);
    send(reply, &Uploaded { offset }).await
}
