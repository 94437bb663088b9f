//! Upload: append a chunk to an attachment blob, anonymously, and answer the blob's durable
//! length only once the chunk is on disk. A chunk at any other offset than the blob's end
//! writes nothing and is answered that end: how a client resumes.
//!
//! Every chunk byte read from a client is counted ([`Counters::blob_bytes_received`]), stored or
//! not: a chunk cut off half-way was still sent once, and the bench and the end-to-end tests
//! compare the count with the blob's length to see how much a resumed upload sent twice.

use super::{refusal, send, Admission, BodySource, Counters, Ctx, Failure, Rate, ReplySink};
use crate::body::{BodyError, BoxFuture};
use crate::clock::now_unix;
use bytes::Bytes;
use std::sync::atomic::Ordering;
use vigil_core::wire::quote::human_bytes;
use vigil_core::wire::upload::{Upload, Uploaded};
use vigil_core::wire::{ErrorCode, Refusal};

/// Writes to disk like a deposit: the disk-space gate and the per-address deposit rate, before
/// a byte of the chunk is read. The chunk's size is bounded by the protocol (8 MiB).
pub(super) const ADMISSION: Admission = Admission {
    rate: Some(Rate::Transfer),
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
    let mut counted = Counted {
        inner: body,
        counters: &shared.counters,
    };
    let offset = (shared.store.upload(req, now_unix(), &mut counted).await)
        .map_err(|e| shared.store_failed(e))?;
    reservation.consumed();
    shared
        .counters
        .chunks_uploaded
        .fetch_add(1, Ordering::Relaxed);
    send(reply, &Uploaded { offset }).await
}

/// A chunk's body that adds every byte it hands to the store to
/// [`Counters::blob_bytes_received`] as it goes, so bytes of a chunk cut off half-way count too.
struct Counted<'a> {
    inner: &'a mut dyn BodySource,
    counters: &'a Counters,
}

impl Counted<'_> {
    fn count(&self, piece: &Bytes) {
        (self.counters.blob_bytes_received).fetch_add(piece.len() as u64, Ordering::Relaxed);
    }
}

impl BodySource for Counted<'_> {
    fn remaining(&self) -> usize {
        self.inner.remaining()
    }

    fn next_chunk(&mut self, max: usize) -> BoxFuture<'_, Result<Option<Bytes>, BodyError>> {
        Box::pin(async move {
            let piece = self.inner.next_chunk(max).await?;
            if let Some(p) = &piece {
                self.count(p);
            }
            Ok(piece)
        })
    }

    fn take_buffered(&mut self) -> Option<Bytes> {
        let whole = self.inner.take_buffered();
        if let Some(w) = &whole {
            self.count(w);
        }
        whole
    }

    fn finished(&self) -> bool {
        self.inner.finished()
    }
}
