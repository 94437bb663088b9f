//! Ack: delete fetched items, durably, for the holder of the mailbox key.

use super::{blocking, durable, encode, registered_key, ConnState, Refusal, Shared};
use vigil_core::wire::{ErrorCode, Request, Response};

pub(super) async fn apply(
    shared: &Shared,
    conn: &ConnState,
    req: &Request<'_>,
) -> Result<Vec<u8>, Refusal> {
    let Request::Ack { mailbox, ids, .. } = req else {
        return Err(Refusal::new(
            ErrorCode::UnknownRequest,
            "not an ack request",
        ));
    };
    let mailbox = *mailbox;
    let key = registered_key(shared, mailbox).await?;
    conn.check_proof(&key, req)?;
    let ids = ids.clone();
    let n = blocking(shared, move |s| s.ack(&mailbox, &ids)).await?;
    durable(shared).await?;
    shared
        .counters
        .items_acked
        .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    tracing::debug!(deleted = n, "ack");
    Ok(encode(&Response::Acked(n)))
}
