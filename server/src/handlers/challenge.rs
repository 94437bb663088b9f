//! Challenge: hand out a fresh single-use nonce for this connection.

use super::{encode, ConnState};
use rand::RngCore;
use vigil_core::wire::limits::NONCE_LEN;
use vigil_core::wire::Response;

pub(super) fn apply(conn: &ConnState) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    if let Ok(mut set) = conn.challenges.lock() {
        set.issue(nonce);
    }
    encode(&Response::ChallengeNonce(nonce))
}
