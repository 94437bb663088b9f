//! Ack: the holder of a mailbox key acknowledges fetched items; the relay deletes them durably
//! and answers Acked with how many existed.

use super::auth::{Authenticated, Claim, Proof, Purpose};
use super::frame::{fixed, Message};
use super::limits::{MAX_ACK_IDS, NONCE_LEN, SIGNATURE_LEN};
use super::WireError;
use crate::ids::{ItemId, MailboxId};
use sha2::{Digest, Sha256};

/// The label signed into an ack proof.
pub const PURPOSE: Purpose = Purpose::new(b"ack\0");

/// Ack body without ids: mailbox id, nonce, count (u16), signature.
pub const FIXED_LEN: usize = MailboxId::LEN + NONCE_LEN + 2 + SIGNATURE_LEN;
/// Largest Ack body.
pub const MAX_BODY_LEN: usize = FIXED_LEN + ItemId::LEN * MAX_ACK_IDS;

/// Request (`0x05`): delete `ids` from `mailbox`. Ids that do not exist there are ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The mailbox.
    pub mailbox: MailboxId,
    /// 1 ..= `MAX_ACK_IDS` ids.
    pub ids: Vec<ItemId>,
    /// Proof with purpose [`PURPOSE`].
    pub proof: Proof,
}

impl Ack {
    /// The request-specific digest a proof signs: SHA-256 of `count u16 BE || id[16] * count`,
    /// exactly as the ids appear in the frame. Callers pass at most `MAX_ACK_IDS` ids (the
    /// encoder refuses more).
    pub fn digest(ids: &[ItemId]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update((ids.len().min(u16::MAX as usize) as u16).to_be_bytes());
        for id in ids {
            h.update(id.as_bytes());
        }
        h.finalize().into()
    }
}

impl Authenticated for Ack {
    fn claim(&self) -> Claim {
        Claim {
            purpose: PURPOSE,
            mailbox: self.mailbox,
            digest: Self::digest(&self.ids),
            proof: self.proof,
        }
    }
}

/// Response (`0x85`): how many of the acknowledged ids existed and were deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acked {
    /// Items deleted.
    pub count: u64,
}

fn check_count(n: usize) -> Result<(), WireError> {
    if n == 0 {
        return Err(WireError::Malformed("ack carries no item ids"));
    }
    if n > MAX_ACK_IDS {
        return Err(WireError::TooMany {
            what: "ack ids",
            count: n as u64,
            max: MAX_ACK_IDS as u64,
        });
    }
    Ok(())
}

impl Message for Ack {
    const MIN_BODY: usize = FIXED_LEN + ItemId::LEN;
    const MAX_BODY: usize = MAX_BODY_LEN;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        fixed(head, |r| {
            let mailbox = MailboxId(r.array("mailbox id")?);
            let nonce = r.array("nonce")?;
            let count = r.u16("ack count")? as usize;
            check_count(count)?;
            // Every id must be there before anything is allocated for them.
            let need = ItemId::LEN * count + SIGNATURE_LEN;
            if r.remaining() < need {
                return Err(WireError::Truncated {
                    what: "ack ids",
                    needed: (need - r.remaining()) as u64,
                });
            }
            let mut ids = Vec::with_capacity(count);
            for _ in 0..count {
                ids.push(ItemId(r.array("item id")?));
            }
            let signature = r.array("signature")?;
            Ok(Ack {
                mailbox,
                ids,
                proof: Proof { nonce, signature },
            })
        })
    }

    fn check(&self) -> Result<(), WireError> {
        check_count(self.ids.len())
    }

    fn body_len(&self) -> usize {
        FIXED_LEN + ItemId::LEN * self.ids.len()
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.mailbox.as_bytes());
        out.extend_from_slice(&self.proof.nonce);
        // `check` bounds the count by MAX_ACK_IDS <= u16::MAX.
        out.extend_from_slice(&(self.ids.len() as u16).to_be_bytes());
        for id in &self.ids {
            out.extend_from_slice(id.as_bytes());
        }
        out.extend_from_slice(&self.proof.signature);
    }
}

impl Message for Acked {
    const MIN_BODY: usize = 8;
    const MAX_BODY: usize = 8;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        fixed(head, |r| {
            Ok(Acked {
                count: r.u64("acked count")?,
            })
        })
    }

    fn body_len(&self) -> usize {
        8
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.count.to_be_bytes());
    }
}
