//! Status: how full a mailbox is, for the holder of its key, so an NGO sees a flood filling its
//! mailbox before honest reports are refused.

use super::{Admission, BodySource, Ctx, Failure, ReplySink, send};
use vigil_core::wire::status::{MailboxStatus, Status};

/// Admitted as a fetch is (sharing its rate): both are what an NGO polls.
pub(super) const ADMISSION: Admission = super::fetch::ADMISSION;

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
