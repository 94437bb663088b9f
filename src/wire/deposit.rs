//! Deposit: anyone holding a mailbox id deposits an envelope into it, anonymously (no sender
//! identity, no proof); the relay answers Stored once the envelope is on stable storage.
//!
//! The request's head is the mailbox and the deposit id; the envelope follows it on the stream
//! as the payload, whose length the frame header gives (body length − [`HEAD_LEN`]). A relay
//! reads the head, decides (unknown mailbox, quota, repeat...) and reads the envelope only if
//! it needs it, piece by piece; a sender writes the head frame from [`super::encode`] and then the
//! envelope, so neither side copies a large envelope into a frame.
//!
//! Deposits are idempotent per (mailbox, deposit id): a repeat is answered Stored with
//! `duplicate` set, and stored once.

use super::frame::{fixed, Message};
use super::limits::MAX_ENVELOPE_LEN;
use super::WireError;
use crate::ids::{DepositId, MailboxId};

/// Deposit head: mailbox id (32) + deposit id (16).
pub const HEAD_LEN: usize = MailboxId::LEN + DepositId::LEN;
/// Largest Deposit body.
pub const MAX_BODY_LEN: usize = HEAD_LEN + MAX_ENVELOPE_LEN;

/// Request (`0x03`): the head of a deposit; the envelope (`envelope_len` bytes) follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deposit {
    /// Destination mailbox.
    pub mailbox: MailboxId,
    /// Chosen by the sender per envelope and reused on every retry, so a repeat is stored once.
    pub deposit_id: DepositId,
    /// Length of the envelope that follows: 1 ..= `MAX_ENVELOPE_LEN`.
    pub envelope_len: usize,
}

/// Response (`0x83`): the envelope (or, for a repeat, the first copy) is on stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored {
    /// True when this (mailbox, deposit id) had been stored before and nothing new was written.
    pub duplicate: bool,
}

impl Deposit {
    /// A whole deposit frame, envelope included, for tests and tools (senders of large envelopes
    /// write the head and the envelope one after the other instead).
    pub fn frame_with(&self, envelope: &[u8]) -> Result<Vec<u8>, WireError> {
        if envelope.len() != self.envelope_len {
            return Err(WireError::Malformed(
                "envelope length differs from the head",
            ));
        }
        let mut v = super::encode(self)?;
        v.extend_from_slice(envelope);
        Ok(v)
    }
}

impl Message for Deposit {
    const MIN_BODY: usize = HEAD_LEN + 1;
    const MAX_BODY: usize = MAX_BODY_LEN;

    fn head_len(_: usize) -> usize {
        HEAD_LEN
    }

    fn decode(head: &[u8], body_len: usize) -> Result<Self, WireError> {
        let d = fixed(head, |r| {
            Ok(Deposit {
                mailbox: MailboxId(r.array("mailbox id")?),
                deposit_id: DepositId(r.array("deposit id")?),
                envelope_len: body_len.saturating_sub(HEAD_LEN),
            })
        })?;
        d.check()?;
        Ok(d)
    }

    fn check(&self) -> Result<(), WireError> {
        if self.envelope_len == 0 {
            return Err(WireError::Malformed("envelope is empty"));
        }
        if self.envelope_len > MAX_ENVELOPE_LEN {
            return Err(WireError::TooLarge {
                what: "envelope",
                len: self.envelope_len as u64,
                max: MAX_ENVELOPE_LEN as u64,
            });
        }
        Ok(())
    }

    fn body_len(&self) -> usize {
        HEAD_LEN + self.envelope_len
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.mailbox.as_bytes());
        out.extend_from_slice(self.deposit_id.as_bytes());
    }
}

impl Message for Stored {
    const MIN_BODY: usize = 1;
    const MAX_BODY: usize = 1;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        fixed(head, |r| {
            Ok(Stored {
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
