//! PublishPrekey: the holder of a mailbox key stores the NGO's current signed prekey bundle at
//! the relay; the relay answers PrekeyPublished.
//!
//! Why it exists: reporters seal each report to the NGO's short-lived prekey as well as to its
//! long-term staff keys (`crate::prekey`), and they find the prekey where they deposit. The
//! relay keeps one bundle per mailbox, the latest published, and hands it to anyone who asks
//! (GetPrekey). It does not check the bundle (it does not know the NGO's identity key and needs
//! not to): reporters verify it against their card, so a relay that swaps or forges one only
//! makes reporters fall back to the long-term protection, and they are told so. The proof keeps
//! anyone but the mailbox key holder from replacing it.

use super::auth::{Authenticated, Claim, Proof, Purpose};
use super::frame::{fixed, Message};
use super::limits::{NONCE_LEN, SIGNATURE_LEN};
use super::WireError;
use crate::ids::MailboxId;
use sha2::{Digest, Sha256};

/// The label signed into a publish proof.
pub const PURPOSE: Purpose = Purpose::new(b"prekey\0");

/// The fixed part of the body: mailbox id, nonce, signature.
const FIXED_LEN: usize = MailboxId::LEN + NONCE_LEN + SIGNATURE_LEN;

/// Largest bundle a relay stores: room for a version-1 bundle (`crate::prekey::BUNDLE_LEN`,
/// 1 373 bytes) and a later, somewhat larger one; a bound on what one mailbox can make the
/// relay keep outside its quota.
pub const MAX_BUNDLE_LEN: usize = 4096;

/// Request (`0x0f`): keep `bundle` as `mailbox`'s prekey, replacing the one before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishPrekey {
    /// The mailbox.
    pub mailbox: MailboxId,
    /// Proof with purpose [`PURPOSE`] over [`PublishPrekey::digest`].
    pub proof: Proof,
    /// The signed bundle, opaque to the relay: 1 ..= [`MAX_BUNDLE_LEN`] bytes.
    pub bundle: Vec<u8>,
}

impl PublishPrekey {
    /// The request-specific digest a proof signs: SHA-256 of the bundle, so nobody on the way
    /// can swap it.
    pub fn digest(bundle: &[u8]) -> [u8; 32] {
        Sha256::digest(bundle).into()
    }
}

impl Authenticated for PublishPrekey {
    fn claim(&self) -> Claim {
        Claim {
            purpose: PURPOSE,
            mailbox: self.mailbox,
            digest: Self::digest(&self.bundle),
            proof: self.proof,
        }
    }
}

/// Response (`0x8f`): the bundle is stored (durably).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrekeyPublished;

impl Message for PublishPrekey {
    const MIN_BODY: usize = FIXED_LEN + 1;
    const MAX_BODY: usize = FIXED_LEN + MAX_BUNDLE_LEN;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        fixed(head, |r| {
            let mailbox = MailboxId(r.array("mailbox id")?);
            let nonce = r.array("nonce")?;
            let signature = r.array("signature")?;
            let rest = r.remaining();
            let bundle = r.take(rest, "bundle")?.to_vec();
            Ok(PublishPrekey {
                mailbox,
                proof: Proof { nonce, signature },
                bundle,
            })
        })
    }

    fn check(&self) -> Result<(), WireError> {
        if self.bundle.is_empty() {
            return Err(WireError::Malformed("an empty prekey bundle"));
        }
        if self.bundle.len() > MAX_BUNDLE_LEN {
            return Err(WireError::TooLarge {
                what: "prekey bundle",
                len: self.bundle.len() as u64,
                max: MAX_BUNDLE_LEN as u64,
            });
        }
        Ok(())
    }

    fn body_len(&self) -> usize {
        FIXED_LEN + self.bundle.len()
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.mailbox.as_bytes());
        out.extend_from_slice(&self.proof.nonce);
        out.extend_from_slice(&self.proof.signature);
        out.extend_from_slice(&self.bundle);
    }
}

impl Message for PrekeyPublished {
    const MIN_BODY: usize = 0;
    const MAX_BODY: usize = 0;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        fixed(head, |_| Ok(PrekeyPublished))
    }

    fn body_len(&self) -> usize {
        0
    }

    fn encode_head(&self, _: &mut Vec<u8>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_request_frame, decode_response_frame, encode, Request, Response};

    fn publish(bundle: Vec<u8>) -> PublishPrekey {
        PublishPrekey {
            mailbox: MailboxId([7; 32]),
            proof: Proof {
                nonce: [1; NONCE_LEN],
                signature: [2; SIGNATURE_LEN],
            },
            bundle,
        }
    }

    #[test]
    fn publish_round_trips_and_its_frame_types_are_0x0f_and_0x8f() {
        let p = publish(vec![5; 1373]);
        let bytes = encode(&p).unwrap();
        assert_eq!(bytes[1], 0x0f);
        assert_eq!(bytes.len(), 6 + FIXED_LEN + 1373);
        assert_eq!(decode_request_frame(&bytes), Ok((Request::PublishPrekey(p), &[][..])));
        let bytes = encode(&PrekeyPublished).unwrap();
        assert_eq!(hex::encode(&bytes), "018f00000000");
        assert_eq!(
            decode_response_frame(&bytes),
            Ok(Response::PrekeyPublished(PrekeyPublished))
        );
    }

    #[test]
    fn empty_and_oversized_bundles_are_refused_both_ways() {
        assert!(matches!(encode(&publish(vec![])), Err(WireError::Malformed(_))));
        assert!(matches!(
            encode(&publish(vec![0; MAX_BUNDLE_LEN + 1])),
            Err(WireError::TooLarge { .. })
        ));
        assert!(encode(&publish(vec![0; MAX_BUNDLE_LEN])).is_ok());
        // A sender that skips the check: the header check refuses the length.
        let mut bytes = encode(&publish(vec![0; MAX_BUNDLE_LEN])).unwrap();
        bytes.push(0);
        let len = (FIXED_LEN + MAX_BUNDLE_LEN + 1) as u32;
        bytes[2..6].copy_from_slice(&len.to_be_bytes());
        assert!(decode_request_frame(&bytes).is_err());
        let mut bytes = encode(&publish(vec![0; 1])).unwrap();
        bytes.pop();
        bytes[2..6].copy_from_slice(&(FIXED_LEN as u32).to_be_bytes());
        assert!(decode_request_frame(&bytes).is_err());
    }

    #[test]
    fn the_proof_covers_the_bundle() {
        assert_ne!(PublishPrekey::digest(b"a"), PublishPrekey::digest(b"b"));
        let c = publish(vec![3; 10]).claim();
        assert_eq!(c.purpose, PURPOSE);
        assert_eq!(c.digest, PublishPrekey::digest(&[3; 10]));
    }
}
