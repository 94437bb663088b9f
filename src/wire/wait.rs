//! Wait: the holder of a mailbox key asks the relay to answer as soon as the mailbox holds
//! something; the relay answers Pending.
//!
//! Why it exists: an urgent report ("a person is being held now") should reach the NGO in
//! seconds, and asking with Fetch every few seconds costs both sides a proof, a store look-up
//! and a fetch slot each time, most of them for nothing. A Wait is one request that the relay
//! holds open: it answers at once if the mailbox has items, else as soon as a deposit (or a
//! released check-in alert) into it is stored, else with a count of zero when the wait ends.
//! The client then fetches as usual; the answer carries no envelope and no item id.
//!
//! The wait asked for is at most [`MAX_WAIT_SECS`]; the relay may end it sooner (its own
//! `max_wait_secs`, or shutting down). It carries a proof like Fetch and Status, so only the key
//! holder can wait on a mailbox, and the relay holds at most a few waiters per mailbox
//! (`max_waiters_per_mailbox`), refusing more with Busy.

use super::auth::{Authenticated, Claim, Proof, Purpose};
use super::frame::{fixed, Message};
use super::limits::{MAX_WAIT_SECS, NONCE_LEN, SIGNATURE_LEN};
use super::WireError;
use crate::ids::MailboxId;
use sha2::{Digest, Sha256};

/// The label signed into a wait proof.
pub const PURPOSE: Purpose = Purpose::new(b"wait\0");

/// Wait body: mailbox id, nonce, wait seconds (u16), signature.
pub const BODY_LEN: usize = MailboxId::LEN + NONCE_LEN + 2 + SIGNATURE_LEN;

/// Pending body: the item count (u64).
pub const PENDING_BODY_LEN: usize = 8;

/// Request (`0x0e`): answer when `mailbox` holds items, waiting at most `wait_secs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wait {
    /// The mailbox.
    pub mailbox: MailboxId,
    /// Longest wait, in seconds: 1 ..= [`MAX_WAIT_SECS`].
    pub wait_secs: u16,
    /// Proof with purpose [`PURPOSE`].
    pub proof: Proof,
}

impl Wait {
    /// The request-specific digest a proof signs: SHA-256 of `wait_secs` as u16 big-endian, so
    /// nobody on the way can change how long the relay holds the request.
    pub fn digest(wait_secs: u16) -> [u8; 32] {
        Sha256::digest(wait_secs.to_be_bytes()).into()
    }
}

/// A wait outside 1 ..= [`MAX_WAIT_SECS`].
fn check_wait(wait_secs: u16) -> Result<(), WireError> {
    if wait_secs == 0 {
        return Err(WireError::Malformed(
            "a wait of zero seconds (ask with Status instead)",
        ));
    }
    if wait_secs > MAX_WAIT_SECS {
        return Err(WireError::TooLarge {
            what: "wait seconds",
            len: u64::from(wait_secs),
            max: u64::from(MAX_WAIT_SECS),
        });
    }
    Ok(())
}

impl Authenticated for Wait {
    fn claim(&self) -> Claim {
        Claim {
            purpose: PURPOSE,
            mailbox: self.mailbox,
            digest: Self::digest(self.wait_secs),
            proof: self.proof,
        }
    }
}

/// Response (`0x8e`): how many items the mailbox holds now; 0 when the wait ended with nothing
/// (or the relay ended it early, e.g. to shut down). Either way the client fetches if it is not
/// 0, and waits again otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// Items waiting to be fetched and acknowledged.
    pub items: u64,
}

impl Message for Wait {
    const MIN_BODY: usize = BODY_LEN;
    const MAX_BODY: usize = BODY_LEN;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        let w = fixed(head, |r| {
            let mailbox = MailboxId(r.array("mailbox id")?);
            let nonce = r.array("nonce")?;
            let wait_secs = r.u16("wait seconds")?;
            let signature = r.array("signature")?;
            Ok(Wait {
                mailbox,
                wait_secs,
                proof: Proof { nonce, signature },
            })
        })?;
        w.check()?;
        Ok(w)
    }

    fn check(&self) -> Result<(), WireError> {
        check_wait(self.wait_secs)
    }

    fn body_len(&self) -> usize {
        BODY_LEN
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.mailbox.as_bytes());
        out.extend_from_slice(&self.proof.nonce);
        out.extend_from_slice(&self.wait_secs.to_be_bytes());
        out.extend_from_slice(&self.proof.signature);
    }
}

impl Message for Pending {
    const MIN_BODY: usize = PENDING_BODY_LEN;
    const MAX_BODY: usize = PENDING_BODY_LEN;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        fixed(head, |r| {
            Ok(Pending {
                items: r.u64("items")?,
            })
        })
    }

    fn body_len(&self) -> usize {
        PENDING_BODY_LEN
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.items.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_request_frame, decode_response_frame, encode, Request, Response};

    fn wait(wait_secs: u16) -> Wait {
        Wait {
            mailbox: MailboxId([7; 32]),
            wait_secs,
            proof: Proof {
                nonce: [1; NONCE_LEN],
                signature: [2; SIGNATURE_LEN],
            },
        }
    }

    #[test]
    fn wait_round_trips_and_its_frame_types_are_0x0e_and_0x8e() {
        let bytes = encode(&wait(30)).unwrap();
        assert_eq!(bytes[1], 0x0e);
        assert_eq!(bytes.len(), 6 + BODY_LEN);
        // The wait follows the mailbox and the nonce, big-endian.
        assert_eq!(&bytes[6 + 64..6 + 66], &[0, 30]);
        assert_eq!(
            decode_request_frame(&bytes),
            Ok((Request::Wait(wait(30)), &[][..]))
        );
        let bytes = encode(&Pending { items: 3 }).unwrap();
        assert_eq!(hex::encode(&bytes), "018e000000080000000000000003");
        assert_eq!(
            decode_response_frame(&bytes),
            Ok(Response::Pending(Pending { items: 3 }))
        );
    }

    #[test]
    fn the_longest_wait_is_accepted_and_one_more_second_is_refused() {
        assert!(encode(&wait(MAX_WAIT_SECS)).is_ok());
        let too_long = wait(MAX_WAIT_SECS + 1);
        assert!(matches!(
            encode(&too_long),
            Err(WireError::TooLarge {
                what: "wait seconds",
                ..
            })
        ));
        // A sender that skips the check is refused by the receiver just the same.
        let mut bytes = encode(&wait(1)).unwrap();
        bytes[6 + 64..6 + 66].copy_from_slice(&(MAX_WAIT_SECS + 1).to_be_bytes());
        assert!(matches!(
            decode_request_frame(&bytes),
            Err(WireError::TooLarge { .. })
        ));
        bytes[6 + 64..6 + 66].copy_from_slice(&u16::MAX.to_be_bytes());
        assert!(decode_request_frame(&bytes).is_err());
    }

    #[test]
    fn a_wait_of_zero_seconds_is_malformed() {
        assert!(matches!(encode(&wait(0)), Err(WireError::Malformed(_))));
        let mut bytes = encode(&wait(1)).unwrap();
        bytes[6 + 64..6 + 66].copy_from_slice(&[0, 0]);
        assert!(matches!(
            decode_request_frame(&bytes),
            Err(WireError::Malformed(_))
        ));
    }

    #[test]
    fn frames_of_the_wrong_length_are_refused_by_the_header_check() {
        for delta in [1i64, -1] {
            let mut bytes = encode(&wait(5)).unwrap();
            if delta > 0 {
                bytes.push(0);
            } else {
                bytes.pop();
            }
            let len = (BODY_LEN as i64 + delta) as u32;
            bytes[2..6].copy_from_slice(&len.to_be_bytes());
            let e = decode_request_frame(&bytes).unwrap_err();
            assert!(
                matches!(
                    e,
                    WireError::TooLarge { what: "Wait", .. }
                        | WireError::Truncated { what: "Wait", .. }
                ),
                "{e:?}"
            );
        }
        let mut bytes = encode(&Pending { items: 1 }).unwrap();
        bytes.push(0);
        bytes[2..6].copy_from_slice(&9u32.to_be_bytes());
        assert!(matches!(
            decode_response_frame(&bytes),
            Err(WireError::TooLarge { what: "Pending", .. })
        ));
        // A truncated frame: the header promises more than is there.
        let bytes = encode(&wait(5)).unwrap();
        assert!(decode_request_frame(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn the_proof_covers_the_wait() {
        assert_ne!(Wait::digest(5), Wait::digest(6));
        let c = wait(5).claim();
        assert_eq!(c.purpose, PURPOSE);
        assert_eq!(c.digest, Wait::digest(5));
        assert_eq!(c.mailbox, MailboxId([7; 32]));
    }
}
