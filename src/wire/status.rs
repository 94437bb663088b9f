//! Status: the holder of a mailbox key asks how full the mailbox is; the relay answers
//! MailboxStatus.
//!
//! Why it exists: anyone holding an NGO's card can deposit into its mailbox, so a flood of junk
//! can fill it, and once it is full honest reports are refused at the relay, where the NGO does
//! not see them. The status tells the NGO how close the mailbox is to its quota, how many
//! deposits were refused because it was full, and how long the relay keeps items, so the NGO can
//! fetch, acknowledge and make room before reports are lost. It reveals nothing about who
//! deposited, and only to the key holder (the request carries a proof like fetch and ack).

use super::auth::{Authenticated, Claim, Proof, Purpose};
use super::frame::{fixed, Message};
use super::limits::{NONCE_LEN, SIGNATURE_LEN};
use super::WireError;
use crate::ids::MailboxId;
use sha2::{Digest, Sha256};

/// The label signed into a status proof.
pub const PURPOSE: Purpose = Purpose::new(b"status\0");

/// Status body: mailbox id, nonce, signature.
pub const BODY_LEN: usize = MailboxId::LEN + NONCE_LEN + SIGNATURE_LEN;

/// MailboxStatus body: six u64 fields.
pub const STATUS_BODY_LEN: usize = 6 * 8;

/// Request (`0x06`): how full is `mailbox`?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// The mailbox.
    pub mailbox: MailboxId,
    /// Proof with purpose [`PURPOSE`].
    pub proof: Proof,
}

impl Status {
    /// The request-specific digest a proof signs: SHA-256 of nothing, since the request has no
    /// fields beyond the mailbox (which the proof message holds already).
    pub fn digest() -> [u8; 32] {
        Sha256::digest([]).into()
    }
}

impl Authenticated for Status {
    fn claim(&self) -> Claim {
        Claim {
            purpose: PURPOSE,
            mailbox: self.mailbox,
            digest: Self::digest(),
            proof: self.proof,
        }
    }
}

/// Response (`0x86`): the mailbox's usage against its quota.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MailboxStatus {
    /// Items waiting to be fetched and acknowledged.
    pub items: u64,
    /// Envelope bytes waiting.
    pub bytes: u64,
    /// Most items the mailbox may hold.
    pub max_items: u64,
    /// Most envelope bytes the mailbox may hold.
    pub max_bytes: u64,
    /// Deposits refused because the mailbox was full since the last Status of this mailbox (or
    /// since the relay started): each flood is reported once. The relay keeps this count in
    /// memory only, so a seized relay's disk holds no record of it.
    pub refused_full: u64,
    /// How long the relay keeps an item that is not acknowledged, in seconds.
    pub expiry_secs: u64,
}

impl MailboxStatus {
    /// How full the mailbox is, as the larger of its item and byte fractions (0.0 ..= 1.0, or
    /// 1.0 for a quota of zero).
    pub fn fill(&self) -> f64 {
        let frac = |used: u64, max: u64| match max {
            0 => 1.0,
            m => (used as f64 / m as f64).min(1.0),
        };
        frac(self.items, self.max_items).max(frac(self.bytes, self.max_bytes))
    }
}

impl Message for Status {
    const MIN_BODY: usize = BODY_LEN;
    const MAX_BODY: usize = BODY_LEN;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        fixed(head, |r| {
            let mailbox = MailboxId(r.array("mailbox id")?);
            let nonce = r.array("nonce")?;
            let signature = r.array("signature")?;
            Ok(Status {
                mailbox,
                proof: Proof { nonce, signature },
            })
        })
    }

    fn body_len(&self) -> usize {
        BODY_LEN
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.mailbox.as_bytes());
        out.extend_from_slice(&self.proof.nonce);
        out.extend_from_slice(&self.proof.signature);
    }
}

impl Message for MailboxStatus {
    const MIN_BODY: usize = STATUS_BODY_LEN;
    const MAX_BODY: usize = STATUS_BODY_LEN;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        fixed(head, |r| {
            Ok(MailboxStatus {
                items: r.u64("items")?,
                bytes: r.u64("bytes")?,
                max_items: r.u64("max items")?,
                max_bytes: r.u64("max bytes")?,
                refused_full: r.u64("refused deposits")?,
                expiry_secs: r.u64("expiry")?,
            })
        })
    }

    fn body_len(&self) -> usize {
        STATUS_BODY_LEN
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        for v in [
            self.items,
            self.bytes,
            self.max_items,
            self.max_bytes,
            self.refused_full,
            self.expiry_secs,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_request_frame, decode_response_frame, encode, Request, Response};

    fn status() -> Status {
        Status {
            mailbox: MailboxId([7; 32]),
            proof: Proof {
                nonce: [1; NONCE_LEN],
                signature: [2; SIGNATURE_LEN],
            },
        }
    }

    #[test]
    fn status_round_trips_and_its_frame_type_is_0x06() {
        let bytes = encode(&status()).unwrap();
        assert_eq!(bytes[1], 0x06);
        assert_eq!(
            decode_request_frame(&bytes),
            Ok((Request::Status(status()), &[][..]))
        );
        let answer = MailboxStatus {
            items: 1,
            bytes: 2,
            max_items: 3,
            max_bytes: 4,
            refused_full: 5,
            expiry_secs: 6,
        };
        let bytes = encode(&answer).unwrap();
        assert_eq!(bytes[1], 0x86);
        assert_eq!(
            decode_response_frame(&bytes),
            Ok(Response::MailboxStatus(answer))
        );
    }

    #[test]
    fn a_status_of_the_wrong_length_is_refused_by_the_header_check() {
        for delta in [1i64, -1] {
            let mut bytes = encode(&status()).unwrap();
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
                    WireError::TooLarge { what: "Status", .. }
                        | WireError::Truncated { what: "Status", .. }
                ),
                "{e:?}"
            );
        }
    }

    #[test]
    fn fill_is_the_fuller_of_items_and_bytes() {
        let s = MailboxStatus {
            items: 5,
            max_items: 10,
            bytes: 90,
            max_bytes: 100,
            ..Default::default()
        };
        assert!((s.fill() - 0.9).abs() < 1e-9);
        let none = MailboxStatus::default();
        assert_eq!(none.fill(), 1.0, "a quota of zero is full");
    }
}
