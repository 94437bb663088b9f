//! Fetch: return stored items to the holder of the mailbox key.

use super::{blocking, encode, registered_key, ConnState, Refusal, Shared};
use vigil_core::wire::limits::MAX_FETCH_RESPONSE_BYTES;
use vigil_core::wire::{ErrorCode, ItemRef, Request, Response};

pub(super) async fn apply(
    shared: &Shared,
    conn: &ConnState,
    req: &Request<'_>,
) -> Result<Vec<u8>, Refusal> {
    let Request::Fetch {
        mailbox, max_items, ..
    } = req
    else {
        return Err(Refusal::new(
            ErrorCode::UnknownRequest,
            "not a fetch request",
        ));
    };
    let (mailbox, max_items) = (*mailbox, *max_items);
    let key = registered_key(shared, mailbox).await?;
    conn.check_proof(&key, req)?;
    let _slot =
        shared.fetch_slots.acquire().await.map_err(|_| {
            Refusal::new(ErrorCode::Busy, "relay is shutting down; try again later")
        })?;
    let items = blocking(shared, move |s| {
        s.fetch(&mailbox, max_items, MAX_FETCH_RESPONSE_BYTES)
    })
    .await?;
    shared
        .counters
        .fetches
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::debug!(items = items.len(), "fetch");
    let refs: Vec<ItemRef<'_>> = items
        .iter()
        .map(|i| ItemRef {
            id: i.id,
            envelope: &i.envelope,
        })
        .collect();
    Ok(encode(&Response::Items(refs)))
}
