//! CheckIn: by the check-in key, the alert's deadline moves to now + `every` + `grace`; by the
//! duress key, the alert is released at once, marked duress. Either way the answer is CheckedIn,
//! the same bytes, written only once the change is durable.

use super::{send, Admission, BodySource, Ctx, Failure, ReplySink, Signer};
use crate::clock::now_unix;
use std::time::Duration;
use vigil_core::wire::alert::CHECKIN_PURPOSE;
use vigil_core::wire::checkin::{CheckIn, CheckedIn};
use vigil_core::wire::policy::{alert_deadline, alert_period};
use vigil_core::wire::ReleaseReason;

/// A proof guards it, and a reporter's phone retries check-ins: the fetch rate, per address.
pub(super) const ADMISSION: Admission = super::fetch::ADMISSION;

pub(super) async fn handle(
    cx: &Ctx<'_>,
    req: CheckIn,
    _: &mut dyn BodySource,
    reply: &mut dyn ReplySink,
) -> Result<(), Failure> {
    let shared = cx.shared;
    let signer = cx.alert_signer(req.alert, &req.proof, CHECKIN_PURPOSE).await?;
    let id = req.alert;
    let now = now_unix();
    let mut schedule = shared.alerts.lock().await;
    match signer {
        Signer::CheckIn { every, grace } => {
            let deadline = alert_deadline(now, every, grace);
            let armed = (shared.store.check_in(id, deadline, now).await)
                .map_err(|e| shared.store_failed(e))?;
            if !armed {
                // Released or disarmed since the proof was checked.
                return Err(super::refusal::bad_alert_proof().into());
            }
            schedule.set(id, Duration::from_secs(alert_period(every, grace)));
        }
        Signer::Duress => {
            (shared.store.release(id, ReleaseReason::Duress, now).await)
                .map_err(|e| shared.store_failed(e))?;
            schedule.remove(&id);
            // Its envelopes are in their mailboxes now; which ones, only the store knows.
            shared.waiters.wake_all();
            tracing::info!(reason = "duress", "released a check-in alert");
        }
    }
    drop(schedule);
    send(reply, &CheckedIn).await
}
