//! Ack: delete fetched items, durably, for the holder of the mailbox key.

use super::{Admission, BodySource, Ctx, Failure, ReplySink, send};
use std::sync::atomic::Ordering;
use vigil_core::wire::ack::{Ack, Acked};

/// An ack costs a proof and follows a fetch, which is rate-limited; it frees space, so it works
/// while the disk is full.
pub(super) const ADMISSION: Admission = Admission::OPEN;

pub(super) async fn handle(
    cx: &Ctx<'_>,
    req: Ack,
    _: &mut dyn BodySource,
    reply: &mut dyn ReplySink,
) -> Result<(), Failure> {
    let shared = cx.shared;
    cx.authorise(&req).await?;
    let count = shared
        .store
        .ack(req.mailbox, &req.ids)
        .await
        .map_err(|e| shared.store_failed(e))?;
    shared
        .counters
        .items_acked
        .fetch_add(count, Ordering::Relaxed);
    tracing::debug!(deleted = count, "ack");
    send(reply, &Acked { count }).await
}
