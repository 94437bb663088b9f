//! Register: remember a mailbox public key after a proof of possession.

use super::{blocking, durable, encode, ConnState, Refusal, Shared};
use vigil_core::ids::MailboxId;
use vigil_core::wire::{Request, Response};

pub(super) async fn apply(
    shared: &Shared,
    conn: &ConnState,
    req: &Request<'_>,
) -> Result<Vec<u8>, Refusal> {
    let Request::Register { public_key, .. } = req else {
        return Err(Refusal::new(
            vigil_core::wire::ErrorCode::UnknownRequest,
            "not a register request",
        ));
    };
    conn.check_proof(public_key, req)?;
    shared.check_space()?;
    let key = *public_key;
    let mailbox = MailboxId::for_key(&key);
    blocking(shared, move |s| s.register_mailbox(&mailbox, &key)).await?;
    durable(shared).await?;
    shared
        .counters
        .registrations
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::info!("mailbox registered");
    Ok(encode(&Response::Registered(mailbox)))
}
