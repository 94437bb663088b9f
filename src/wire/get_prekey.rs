//! GetPrekey: anyone asks for a mailbox's current prekey bundle; the relay answers Prekey.
//!
//! Why it needs no proof: the bundle is public (signed by the NGO, for every reporter holding
//! its card), and a reporter asks on the connection it deposits on, so the relay learns nothing
//! it would not learn from the deposit. An unknown mailbox and a mailbox without a bundle get
//! the same answer (no bundle), so the request does not tell which mailboxes exist.

use super::frame::{fixed, Message};
use super::publish_prekey::MAX_BUNDLE_LEN;
use super::WireError;
use crate::ids::MailboxId;

/// Request (`0x10`): the prekey bundle of `mailbox`, if the relay has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetPrekey {
    /// The mailbox.
    pub mailbox: MailboxId,
}

/// Response (`0x90`): the bundle, or none (empty body).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prekey {
    /// The bundle as published, unchecked by the relay; `None` when there is none.
    pub bundle: Option<Vec<u8>>,
}

impl Message for GetPrekey {
    const MIN_BODY: usize = MailboxId::LEN;
    const MAX_BODY: usize = MailboxId::LEN;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        fixed(head, |r| {
            Ok(GetPrekey {
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

impl Message for Prekey {
    const MIN_BODY: usize = 0;
    const MAX_BODY: usize = MAX_BUNDLE_LEN;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        Ok(Prekey {
            bundle: (!head.is_empty()).then(|| head.to_vec()),
        })
    }

    fn check(&self) -> Result<(), WireError> {
        match &self.bundle {
            Some(b) if b.is_empty() => Err(WireError::Malformed("an empty prekey bundle")),
            Some(b) if b.len() > MAX_BUNDLE_LEN => Err(WireError::TooLarge {
                what: "prekey bundle",
                len: b.len() as u64,
                max: MAX_BUNDLE_LEN as u64,
            }),
            _ => Ok(()),
        }
    }

    fn body_len(&self) -> usize {
        self.bundle.as_ref().map_or(0, Vec::len)
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        if let Some(b) = &self.bundle {
            out.extend_from_slice(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_request_frame, decode_response_frame, encode, Request, Response};

    #[test]
    fn get_and_prekey_round_trip_with_and_without_a_bundle() {
        let g = GetPrekey {
            mailbox: MailboxId([4; 32]),
        };
        let bytes = encode(&g).unwrap();
        assert_eq!(&bytes[..6], [1, 0x10, 0, 0, 0, 32]);
        assert_eq!(decode_request_frame(&bytes), Ok((Request::GetPrekey(g), &[][..])));
        for p in [
            Prekey { bundle: None },
            Prekey {
                bundle: Some(vec![9; 1373]),
            },
        ] {
            let bytes = encode(&p).unwrap();
            assert_eq!(bytes[1], 0x90);
            assert_eq!(decode_response_frame(&bytes), Ok(Response::Prekey(p)));
        }
        assert!(encode(&Prekey {
            bundle: Some(vec![0; MAX_BUNDLE_LEN + 1])
        })
        .is_err());
    }
}
