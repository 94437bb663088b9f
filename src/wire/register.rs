//! Register: the holder of a mailbox key registers its mailbox at the relay; the relay answers
//! Registered with the mailbox id.
//!
//! The mailbox id is `SHA-256("vigil/v1/mailbox-id\0" || public key)`, so registering the same
//! key twice is harmless and no one can register a mailbox for a key they do not hold.

use super::auth::{Authenticated, Claim, Proof, Purpose};
use super::frame::{fixed, Message};
use super::limits::{NONCE_LEN, PUBLIC_KEY_LEN, SIGNATURE_LEN};
use super::WireError;
use crate::ids::MailboxId;
use sha2::{Digest, Sha256};

/// The label signed into a registration proof.
pub const PURPOSE: Purpose = Purpose::new(b"register\0");

/// Register body: public key, nonce, signature.
pub const BODY_LEN: usize = PUBLIC_KEY_LEN + NONCE_LEN + SIGNATURE_LEN;

/// Request (`0x02`): register the mailbox of `public_key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Register {
    /// Ed25519 mailbox public key.
    pub public_key: [u8; PUBLIC_KEY_LEN],
    /// Proof with purpose [`PURPOSE`].
    pub proof: Proof,
}

impl Register {
    /// The request-specific digest a proof signs: SHA-256 of the public key.
    pub fn digest(public_key: &[u8; PUBLIC_KEY_LEN]) -> [u8; 32] {
        Sha256::digest(public_key).into()
    }
}

impl Authenticated for Register {
    fn claim(&self) -> Claim {
        Claim {
            purpose: PURPOSE,
            mailbox: MailboxId::for_key(&self.public_key),
            digest: Self::digest(&self.public_key),
            proof: self.proof,
        }
    }
}

/// Response (`0x82`): the mailbox is registered (or already was, for the same key). A client
/// checks the id equals the one it computed from its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Registered {
    /// The mailbox id.
    pub mailbox: MailboxId,
}

impl Message for Register {
    const MIN_BODY: usize = BODY_LEN;
    const MAX_BODY: usize = BODY_LEN;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        fixed(head, |r| {
            let public_key = r.array("public key")?;
            let nonce = r.array("nonce")?;
            let signature = r.array("signature")?;
            Ok(Register {
                public_key,
                proof: Proof { nonce, signature },
            })
        })
    }

    fn body_len(&self) -> usize {
        BODY_LEN
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.public_key);
        out.extend_from_slice(&self.proof.nonce);
        out.extend_from_slice(&self.proof.signature);
    }
}

impl Message for Registered {
    const MIN_BODY: usize = MailboxId::LEN;
    const MAX_BODY: usize = MailboxId::LEN;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        fixed(head, |r| {
            Ok(Registered {
                mailbox: MailboxId(r.array("mailbox id")?),
            })
        })
    }

    fn body_len(&self) -> usize {
        MailboxId::LEN
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.mailbox.as_bytes());
    }
}
