//! DepositBlobs: a [Deposit](super::deposit) whose envelope refers to attachment blobs uploaded
//! before it. The relay stores it exactly as a deposit (same mailbox, deposit id, envelope, same
//! idempotence per (mailbox, deposit id)), and only if every blob it names is complete; the item
//! then holds a reference to each blob, and the blobs' bytes count against its mailbox's quota.
//! The answer, BlobsStored, comes once the item and its references are durable.
//!
//! The head has a fixed length, so the relay knows where the envelope starts from the frame
//! header alone and streams it exactly as a deposit's: mailbox id, deposit id, the number of
//! blobs (1 ..= [`MAX_BLOBS_PER_DEPOSIT`]), then [`MAX_BLOBS_PER_DEPOSIT`] slots of 16 bytes of
//! which the first `count` hold the blob ids and the rest MUST be zero. The slots cost 1 KiB per
//! deposit, next to blobs of megabytes.

use super::deposit::{self, Deposit};
use super::frame::{fixed, Message};
use super::limits::{MAX_BLOBS_PER_DEPOSIT, MAX_ENVELOPE_LEN};
use super::WireError;
use crate::ids::{BlobId, DepositId, MailboxId};

/// DepositBlobs head: a deposit's head, the blob count (u8) and the blob id slots.
pub const HEAD_LEN: usize = deposit::HEAD_LEN + 1 + BlobId::LEN * MAX_BLOBS_PER_DEPOSIT;
/// Largest DepositBlobs body.
pub const MAX_BODY_LEN: usize = HEAD_LEN + MAX_ENVELOPE_LEN;

/// Request (`0x0c`): a deposit and the blobs its envelope refers to; the envelope follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepositBlobs {
    /// The deposit, as a Deposit request would carry it.
    pub deposit: Deposit,
    /// 1 ..= `MAX_BLOBS_PER_DEPOSIT` distinct blobs, each complete at the relay.
    pub blobs: Vec<BlobId>,
}

/// Response (`0x8c`): the envelope and its blob references are on stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobsStored {
    /// True when this (mailbox, deposit id) had been stored before and nothing new was written.
    pub duplicate: bool,
}

impl DepositBlobs {
    /// A whole frame, envelope included, for tests and tools.
    pub fn frame_with(&self, envelope: &[u8]) -> Result<Vec<u8>, WireError> {
        if envelope.len() != self.deposit.envelope_len {
            return Err(WireError::Malformed(
                "envelope length differs from the head",
            ));
        }
        let mut v = super::encode(self)?;
        v.extend_from_slice(envelope);
        Ok(v)
    }
}

impl Message for DepositBlobs {
    const MIN_BODY: usize = HEAD_LEN + 1;
    const MAX_BODY: usize = MAX_BODY_LEN;

    fn head_len(_: usize) -> usize {
        HEAD_LEN
    }

    fn decode(head: &[u8], body_len: usize) -> Result<Self, WireError> {
        let d = fixed(head, |r| {
            let mailbox = MailboxId(r.array("mailbox id")?);
            let deposit_id = DepositId(r.array("deposit id")?);
            let count = r.u8("blob count")? as usize;
            if count > MAX_BLOBS_PER_DEPOSIT {
                return Err(WireError::TooMany {
                    what: "blobs per deposit",
                    count: count as u64,
                    max: MAX_BLOBS_PER_DEPOSIT as u64,
                });
            }
            // The slots are a fixed part of the head: no allocation depends on the count
            // beyond the bound just checked.
            let mut blobs = Vec::with_capacity(count);
            for i in 0..MAX_BLOBS_PER_DEPOSIT {
                let id = BlobId(r.array("blob id")?);
                if i < count {
                    blobs.push(id);
                } else if id.0 != [0; 16] {
                    return Err(WireError::Malformed("an unused blob slot is not zero"));
                }
            }
            Ok(DepositBlobs {
                deposit: Deposit {
                    mailbox,
                    deposit_id,
                    envelope_len: body_len.saturating_sub(HEAD_LEN),
                },
                blobs,
            })
        })?;
        d.check()?;
        Ok(d)
    }

    fn check(&self) -> Result<(), WireError> {
        self.deposit.check()?;
        match self.blobs.len() {
            0 => return Err(WireError::Malformed("a deposit with blobs names none")),
            n if n > MAX_BLOBS_PER_DEPOSIT => {
                return Err(WireError::TooMany {
                    what: "blobs per deposit",
                    count: n as u64,
                    max: MAX_BLOBS_PER_DEPOSIT as u64,
                })
            }
            _ => {}
        }
        for (i, b) in self.blobs.iter().enumerate() {
            if self.blobs[..i].contains(b) {
                return Err(WireError::Malformed("a blob is named twice"));
            }
        }
        Ok(())
    }

    fn body_len(&self) -> usize {
        HEAD_LEN + self.deposit.envelope_len
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.deposit.mailbox.as_bytes());
        out.extend_from_slice(self.deposit.deposit_id.as_bytes());
        // `check` ran first: the count fits a byte and every slot.
        out.push(self.blobs.len() as u8);
        for b in &self.blobs {
            out.extend_from_slice(b.as_bytes());
        }
        out.resize(out.len() + BlobId::LEN * (MAX_BLOBS_PER_DEPOSIT - self.blobs.len()), 0);
    }
}

impl Message for BlobsStored {
    const MIN_BODY: usize = 1;
    const MAX_BODY: usize = 1;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        fixed(head, |r| {
            Ok(BlobsStored {
                duplicate: r.bool("duplicate flag")?,
            })
        })
    }

    fn body_len(&self) -> usize {
        1
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        out.push(u8::from(self.duplicate));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_request_frame, decode_response_frame, encode, Request, Response};

    fn sample(blobs: Vec<BlobId>) -> DepositBlobs {
        DepositBlobs {
            deposit: Deposit {
                mailbox: MailboxId([0x22; 32]),
                deposit_id: DepositId([0x33; 16]),
                envelope_len: 2,
            },
            blobs,
        }
    }

    #[test]
    fn deposit_blobs_bytes_are_exact() {
        let d = sample(vec![BlobId([0xb1; 16]), BlobId([0xb2; 16])]);
        let frame = d.frame_with(b"ev").unwrap();
        assert_eq!(HEAD_LEN, 1073);
        assert_eq!(&frame[..6], [1, 0x0c, 0, 0, 0x04, 0x33]);
        assert_eq!(&frame[6..38], [0x22; 32]);
        assert_eq!(&frame[38..54], [0x33; 16]);
        assert_eq!(frame[54], 2);
        assert_eq!(&frame[55..71], [0xb1; 16]);
        assert_eq!(&frame[71..87], [0xb2; 16]);
        assert!(frame[87..6 + HEAD_LEN].iter().all(|b| *b == 0));
        assert_eq!(&frame[6 + HEAD_LEN..], b"ev");
        assert_eq!(decode_request_frame(&frame), Ok((Request::DepositBlobs(d), &b"ev"[..])));
        let bytes = encode(&BlobsStored { duplicate: false }).unwrap();
        assert_eq!(bytes, [1, 0x8c, 0, 0, 0, 1, 0]);
        assert_eq!(
            decode_response_frame(&bytes),
            Ok(Response::BlobsStored(BlobsStored { duplicate: false }))
        );
    }

    #[test]
    fn bad_blob_lists_are_refused() {
        let d = sample(vec![BlobId([0xb1; 16])]);
        let head = encode(&d).unwrap()[6..].to_vec();
        assert!(DepositBlobs::decode(&head[..HEAD_LEN - 1], HEAD_LEN + 1).is_err());
        let mut dirty = head.clone();
        dirty[HEAD_LEN - 1] = 1;
        assert_eq!(
            DepositBlobs::decode(&dirty, HEAD_LEN + 2),
            Err(WireError::Malformed("an unused blob slot is not zero"))
        );
        let mut many = head.clone();
        many[48] = 65;
        assert!(matches!(
            DepositBlobs::decode(&many, HEAD_LEN + 2),
            Err(WireError::TooMany { .. })
        ));
        let mut none = head.clone();
        none[48] = 0;
        none[49..65].fill(0);
        assert!(DepositBlobs::decode(&none, HEAD_LEN + 2).is_err());
        assert!(DepositBlobs::decode(&head, HEAD_LEN).is_err(), "empty envelope");
        assert!(encode(&sample(vec![BlobId([1; 16]); 2])).is_err(), "named twice");
        assert!(encode(&sample(vec![BlobId([1; 16]); 65])).is_err());
    }
}
