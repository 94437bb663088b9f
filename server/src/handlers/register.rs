//! Register: remember a mailbox public key after a proof of possession, and, for a
//! registration with a lifetime (a reply mailbox), until when: at most the relay's
//! `max_mailbox_lifetime_days`, never shorter than an earlier registration of it made it.

use super::{Admission, BodySource, Ctx, Failure, Rate, ReplySink, send};
use std::sync::atomic::Ordering;
use vigil_core::ids::MailboxId;
use vigil_core::wire::policy::{days_left, mailbox_expiry};
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
    let now = crate::clock::now_unix();
    // Capped, not refused: the client learns what it got from the answer.
    let asked = (req.lifetime_days).map(|d| d.min(cx.shared.max_mailbox_lifetime_days).max(1));
    let expires = cx
        .shared
        .store
        .register(mailbox, req.public_key, asked.map(|d| mailbox_expiry(now, d)))
        .await
        .map_err(|e| cx.shared.store_failed(e))?;
    // Answered in the form asked: a client that sent no lifetime gets the 32 bytes it knows.
    let lifetime_days = req
        .lifetime_days
        .map(|_| expires.map_or(u16::MAX, |t| days_left(t, now)));
    cx.shared
        .counters
        .registrations
        .fetch_add(1, Ordering::Relaxed);
    tracing::info!("mailbox registered");
    send(
        reply,
        &Registered {
            mailbox,
            lifetime_days,
        },
    )
    .await
}
