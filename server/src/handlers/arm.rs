//! Arm: hold a check-in alert's sealed envelopes until a check-in is missed; answer Armed once
//! the alert is on disk, with the time left until its release.
//!
//! Anonymous, like a deposit: nothing about who armed it is kept. Its envelopes count against
//! their mailboxes' quotas from now on, and its first deadline is `every` + `grace` from now.

use super::{refusal, send, Admission, BodySource, Ctx, Failure, Rate, ReplySink};
use crate::clock::now_unix;
use crate::store::{Alert, Armed as Done, StoreError};
use std::time::Duration;
use vigil_core::wire::arm::{Arm, Armed};
use vigil_core::wire::policy::{alert_deadline, alert_period};

/// Anonymous and writes to the store, like a deposit: the deposit rate and the disk-space gate.
/// (Its envelopes are bounded by the protocol's `MAX_ALERT_ENVELOPE_LEN`, not the relay's
/// deposit limit.)
pub(super) const ADMISSION: Admission = Admission {
    rate: Some(Rate::Deposit),
    needs_space: true,
    carries_envelope: false,
};

pub(super) async fn handle(
    cx: &Ctx<'_>,
    req: Arm,
    _: &mut dyn BodySource,
    reply: &mut dyn ReplySink,
) -> Result<(), Failure> {
    let shared = cx.shared;
    let bytes: u64 = req.envelopes.iter().map(|e| e.envelope.len() as u64).sum();
    let reservation = shared
        .space
        .try_reserve(bytes)
        .ok_or_else(refusal::storage_full)?;
    let (id, period) = (req.alert, alert_period(req.every, req.grace));
    let mailboxes: Vec<_> = req.envelopes.iter().map(|e| e.mailbox).collect();
    let now = now_unix();
    let deadline = alert_deadline(now, req.every, req.grace);
    let alert = Alert::armed(req, now, deadline);
    let mut schedule = shared.alerts.lock().await;
    let left = match shared.store.arm(alert).await {
        Ok(Done::New) => {
            reservation.consumed();
            schedule.set(id, Duration::from_secs(period));
            tracing::debug!("alert armed");
            period
        }
        // Armed before: the time left on its schedule.
        Ok(Done::Repeat) => (schedule.left(&id))
            .map(|d| d.as_secs())
            .unwrap_or(period),
        Err(e) => {
            if e == StoreError::QuotaExceeded {
                for m in mailboxes {
                    shared.full_refusals.note(m);
                }
            }
            return Err(shared.store_failed(e));
        }
    };
    drop(schedule);
    send(reply, &Armed { deadline_secs: left }).await
}
