//! Register: remember a mailbox public key after a proof of possession.

use super::{Admission, BodySource, Ctx, Failure, Rate, ReplySink, send};
use std::sync::atomic::Ordering;
use vigil_core::ids::MailboxId;
use vigil_core::wire::register::{Register, Registered};
use vigil_core::wire::Authenticated;

/// Registering creates a mailbox: rate-limited per address, and refused while the disk is full.
pub(super) const ADMISSION: Admission = Admission {
    rate: Some(Rate::Register),
    needs_space: true,
    carries_envelope: false,
};

pub(super) async fn handle(
    cx: &Ctx<'_>,
    req: Register,
    _: &mut dyn BodySource,
    reply: &mut dyn ReplySink,
) -> Result<(), Failure> {
    cx.conn.check_proof(&req.public_key, &req.claim())?;
    cx.shared.check_space()?;
    let mailbox = MailboxId::for_key(&req.public_key);
    cx.shared
        .store
        .register(mailbox, req.public_key)
        .await
        .map_err(|e| cx.shared.store_failed(e))?;
    cx.shared
        .counters
        .registrations
        .fetch_add(1, Ordering::Relaxed);
    tracing::info!("mailbox registered");
    send(reply, &Registered { mailbox }).await
}
