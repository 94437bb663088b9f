//! Status: how full a mailbox is, for the holder of its key, so an NGO sees a flood filling its
//! mailbox before honest reports are refused.

use super::{Admission, BodySource, Ctx, Failure, Rate, ReplySink, send};
use vigil_core::wire::status::{MailboxStatus, Status};

/// Status shares the fetch rate: both are what an NGO polls.
pub(super) const ADMISSION: Admission = Admission {
    rate: Some(Rate::Fetch),
    needs_space: false,
    carries_envelope: false,
};

pub(super) async fn handle(
    cx: &Ctx<'_>,
    req: Status,
    _: &mut dyn BodySource,
    reply: &mut dyn ReplySink,
) -> Result<(), Failure> {
    let shared = cx.shared;
    cx.authorise(&req).await?;
    let usage = shared
        .store
        .usage(req.mailbox)
        .await
        .map_err(|e| shared.store_failed(e))?;
    send(
        reply,
        &MailboxStatus {
            items: usage.items,
            bytes: usage.bytes,
            max_items: usage.quota.max_items,
            max_bytes: usage.quota.max_bytes,
            refused_full: shared.full_refusals.take(req.mailbox),
            expiry_secs: usage.expiry_secs,
        },
    )
    .await
}
