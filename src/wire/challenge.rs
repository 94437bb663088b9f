//! Challenge: the client asks for a fresh, single-use nonce; the relay answers ChallengeNonce.
//!
//! Every proof of possession (register, fetch, ack) signs a nonce the relay issued on the same
//! connection, so a proof can never be replayed: see [`super::auth`].

use super::frame::{fixed, Message};
use super::limits::NONCE_LEN;
use super::WireError;

/// Request (`0x01`): empty body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Challenge;

/// Response (`0x81`): 32 bytes from a CSPRNG, remembered by the relay for this connection only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChallengeNonce {
    /// The nonce.
    pub nonce: [u8; NONCE_LEN],
}

impl Message for Challenge {
    const MIN_BODY: usize = 0;
    const MAX_BODY: usize = 0;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        fixed(head, |_| Ok(Challenge))
    }

    fn body_len(&self) -> usize {
        0
    }

    fn encode_head(&self, _: &mut Vec<u8>) {}
}

impl Message for ChallengeNonce {
    const MIN_BODY: usize = NONCE_LEN;
    const MAX_BODY: usize = NONCE_LEN;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        fixed(head, |r| {
            Ok(ChallengeNonce {
                nonce: r.array("nonce")?,
            })
        })
    }

    fn body_len(&self) -> usize {
        NONCE_LEN
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.nonce);
    }
}
