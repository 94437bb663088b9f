//! Quote: tell a reporter, before it uploads anything, whether a report of this size fits: the
//! relay's per-report limit and each mailbox's room. Anonymous, like a deposit; it reveals no
//! more than a deposit attempt would. A refusal states the limit in one line.

use super::{refusal, send, Admission, BodySource, Ctx, Failure, Rate, ReplySink};
use vigil_core::wire::quote::{human_bytes, Quote, Room};
use vigil_core::wire::{ErrorCode, Refusal};

/// Cheap look-ups, but each names mailboxes: counted against the per-address deposit rate, as
/// the deposits it precedes are.
pub(super) const ADMISSION: Admission = Admission {
    rate: Some(Rate::Deposit),
    needs_space: false,
    carries_envelope: false,
};

pub(super) async fn handle(
    cx: &Ctx<'_>,
    req: Quote,
    _: &mut dyn BodySource,
    reply: &mut dyn ReplySink,
) -> Result<(), Failure> {
    let shared = cx.shared;
    let max = shared.max_report_bytes;
    if req.total > max {
        return Err(Refusal::new(
            ErrorCode::TooLarge,
            format!("the relay takes at most {} per report", human_bytes(max)),
        )
        .into());
    }
    let mut left = Vec::with_capacity(req.mailboxes.len());
    for m in &req.mailboxes {
        let room = (shared.store.room(*m).await)
            .map_err(|e| shared.store_failed(e))?
            .ok_or_else(refusal::unknown_mailbox)?;
        if room < req.total {
            return Err(Refusal::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "an NGO's mailbox has room for {} more until the NGO fetches its reports",
                    human_bytes(room)
                ),
            )
            .into());
        }
        left.push(room);
    }
    send(
        reply,
        &Room {
            max_report_bytes: max,
            left,
        },
    )
    .await
}
