//! Challenge: hand out a fresh single-use nonce for this connection.

use super::{Admission, BodySource, Ctx, Failure, ReplySink, send};
use rand::RngCore;
use vigil_core::wire::challenge::{Challenge, ChallengeNonce};
use vigil_core::wire::limits::NONCE_LEN;

/// A challenge costs the relay 32 random bytes and is bounded per connection.
pub(super) const ADMISSION: Admission = Admission::OPEN;

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
