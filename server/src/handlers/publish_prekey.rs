//! PublishPrekey: keep the mailbox's signed prekey bundle (issue 16), for the holder of the
//! mailbox key. The bundle is opaque here: reporters check its signature against their card,
//! so the relay has nothing to verify and nothing to learn from it.

use super::{Admission, BodySource, Ctx, Failure, ReplySink, send};
use vigil_core::wire::publish_prekey::{PrekeyPublished, PublishPrekey};

/// Admitted as a fetch is (sharing its rate): an NGO publishes about twice a week, alongside
/// its fetches; the proof guards the rest.
pub(super) const ADMISSION: Admission = super::fetch::ADMISSION;

pub(super) async fn handle(
    cx: &Ctx<'_>,
    req: PublishPrekey,
    _: &mut dyn BodySource,
    reply: &mut dyn ReplySink,
) -> Result<(), Failure> {
    let shared = cx.shared;
    cx.authorise(&req).await?;
    let kept = shared
        .store
        .set_prekey(req.mailbox, &req.bundle)
        .await
        .map_err(|e| shared.store_failed(e))?;
    if !kept {
        // Forgotten between the proof and now (its lifetime ended).
        return Err(super::refusal::unknown_mailbox().into());
    }
    send(reply, &PrekeyPublished).await
}
