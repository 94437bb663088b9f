//! GetPrekey: hand out a mailbox's prekey bundle to whoever asks (issue 16). The bundle is
//! public; an unknown mailbox and one without a bundle get the same empty answer, so the
//! request does not tell which mailboxes exist.

use super::{Admission, BodySource, Ctx, Failure, ReplySink, send};
use vigil_core::wire::get_prekey::{GetPrekey, Prekey};

/// Admitted as a fetch is (sharing its rate): a reporter asks once per report, before its
/// deposit.
pub(super) const ADMISSION: Admission = super::fetch::ADMISSION;

pub(super) async fn handle(
    cx: &Ctx<'_>,
    req: GetPrekey,
    _: &mut dyn BodySource,
    reply: &mut dyn ReplySink,
) -> Result<(), Failure> {
    let shared = cx.shared;
    let bundle = shared
        .store
        .prekey(req.mailbox)
        .await
        .map_err(|e| shared.store_failed(e))?;
    send(reply, &Prekey { bundle }).await
}
