//! Challenge: hand out a fresh single-use nonce for this connection.

use super::{send, BodySource, Ctx, Failure, ReplySink};
use rand::RngCore;
use vigil_core::wire::challenge::{Challenge, ChallengeNonce};
use vigil_core::wire::limits::NONCE_LEN;

pub(super) async fn handle(
    cx: &Ctx<'_>,
    _: Challenge,
    _: &mut dyn BodySource,
    reply: &mut dyn ReplySink,
) -> Result<(), Failure> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    if let Ok(mut set) = cx.conn.challenges.lock() {
        set.issue(nonce);
    }
    send(reply, &ChallengeNonce { nonce }).await
}
