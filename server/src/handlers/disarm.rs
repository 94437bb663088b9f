//! Disarm: by the check-in key, the alert and its envelopes are deleted; by the duress key, the
//! alert is released at once, marked duress. Either way the answer is Disarmed, the same bytes,
//! written only once the change is durable.

use super::{send, Admission, BodySource, Ctx, Failure, ReplySink, Signer};
use crate::clock::now_unix;
use vigil_core::wire::alert::DISARM_PURPOSE;
use vigil_core::wire::disarm::{Disarm, Disarmed};
use vigil_core::wire::ReleaseReason;

/// Admitted as a check-in is.
pub(super) const ADMISSION: Admission = super::checkin::ADMISSION;

pub(super) async fn handle(
    cx: &Ctx<'_>,
    req: Disarm,
    _: &mut dyn BodySource,
    reply: &mut dyn ReplySink,
) -> Result<(), Failure> {
    let shared = cx.shared;
    let signer = cx.alert_signer(req.alert, &req.proof, DISARM_PURPOSE).await?;
    let id = req.alert;
    let mut schedule = shared.alerts.lock().await;
    let done = match signer {
        Signer::CheckIn { .. } => shared.store.disarm(id).await,
        Signer::Duress => {
            let r = shared.store.release(id, ReleaseReason::Duress, now_unix()).await;
            if r.is_ok() {
                shared.waiters.wake_all();
                tracing::info!(reason = "duress", "released a check-in alert");
            }
            r
        }
    };
    done.map_err(|e| shared.store_failed(e))?;
    schedule.remove(&id);
    drop(schedule);
    send(reply, &Disarmed).await
}
