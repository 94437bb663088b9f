//! Register: the holder of a mailbox key registers its mailbox at the relay; the relay answers
//! Registered with the mailbox id.
//!
//! The mailbox id is `SHA-256("vigil/v1/mailbox-id\0" || public key)`, so registering the same
//! key twice is harmless and no one can register a mailbox for a key they do not hold.
//!
//! A registration may carry a lifetime in whole days (a reporter's reply mailbox, made for one
//! report's thread: issue 15), two more bytes after the signature. The relay then forgets the
//! mailbox (registration, items, blobs) once that lifetime has passed, so a thread given up by
//! the reporter's client is given up at the relay too. An NGO's mailbox is registered without
//! one and kept as before. The lifetime is inside the proof's digest, so nobody on the way can
//! add, strip or change it, and a 128-byte Register (every client before lifetimes) decodes as
//! before, as a registration without one.

use super::auth::{Authenticated, Claim, Proof, Purpose};
use super::frame::{fixed, Message};
use super::limits::{MAX_MAILBOX_LIFETIME_DAYS, NONCE_LEN, PUBLIC_KEY_LEN, SIGNATURE_LEN};
use super::WireError;
use crate::ids::MailboxId;
use sha2::{Digest, Sha256};

/// The label signed into a registration proof.
pub const PURPOSE: Purpose = Purpose::new(b"register\0");

/// Register body without a lifetime: public key, nonce, signature.
pub const BODY_LEN: usize = PUBLIC_KEY_LEN + NONCE_LEN + SIGNATURE_LEN;

/// Register body with a lifetime: [`BODY_LEN`] and the lifetime in days (u16).
pub const BODY_WITH_LIFETIME_LEN: usize = BODY_LEN + 2;

/// Registered body without a lifetime: the mailbox id.
pub const REGISTERED_LEN: usize = MailboxId::LEN;

/// Registered body answering a registration with a lifetime: the mailbox id and the days granted.
pub const REGISTERED_WITH_LIFETIME_LEN: usize = REGISTERED_LEN + 2;

/// Request (`0x02`): register the mailbox of `public_key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Register {
    /// Ed25519 mailbox public key.
    pub public_key: [u8; PUBLIC_KEY_LEN],
    /// Proof with purpose [`PURPOSE`].
    pub proof: Proof,
    /// Keep the mailbox this many whole days from now, then forget it
    /// (1 ..= [`MAX_MAILBOX_LIFETIME_DAYS`]); `None` for no lifetime (an NGO's mailbox).
    pub lifetime_days: Option<u16>,
}

impl Register {
    /// The request-specific digest a proof signs: SHA-256 of the public key, followed by the
    /// lifetime (u16) when there is one.
    pub fn digest(public_key: &[u8; PUBLIC_KEY_LEN], lifetime_days: Option<u16>) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(public_key);
        if let Some(days) = lifetime_days {
            h.update(days.to_be_bytes());
        }
        h.finalize().into()
    }
}

/// Refuse a lifetime of 0 days (a mailbox gone before it is used) or above the protocol's
/// maximum.
fn check_lifetime(days: Option<u16>) -> Result<(), WireError> {
    match days {
        Some(0) => Err(WireError::Malformed("a mailbox lifetime of 0 days")),
        Some(d) if d > MAX_MAILBOX_LIFETIME_DAYS => Err(WireError::TooMany {
            what: "mailbox lifetime in days",
            count: u64::from(d),
            max: u64::from(MAX_MAILBOX_LIFETIME_DAYS),
        }),
        _ => Ok(()),
    }
}

impl Authenticated for Register {
    fn claim(&self) -> Claim {
        Claim {
            purpose: PURPOSE,
            mailbox: MailboxId::for_key(&self.public_key),
            digest: Self::digest(&self.public_key, self.lifetime_days),
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
    /// Only in answer to a registration with a lifetime: the whole days from now the relay
    /// keeps the mailbox (at most what was asked unless an earlier registration asked for
    /// more; `u16::MAX` for a mailbox registered without a lifetime, which stays). A client
    /// registers again before they run out if it needs the mailbox longer.
    pub lifetime_days: Option<u16>,
}

impl Message for Register {
    const MIN_BODY: usize = BODY_LEN;
    const MAX_BODY: usize = BODY_WITH_LIFETIME_LEN;

    fn decode(head: &[u8], body_len: usize) -> Result<Self, WireError> {
        if body_len != BODY_LEN && body_len != BODY_WITH_LIFETIME_LEN {
            return Err(WireError::Malformed(
                "a Register body is 128 bytes, or 130 with a lifetime",
            ));
        }
        fixed(head, |r| {
            let public_key = r.array("public key")?;
            let nonce = r.array("nonce")?;
            let signature = r.array("signature")?;
            let lifetime_days = match r.remaining() {
                0 => None,
                _ => Some(r.u16("lifetime")?),
            };
            check_lifetime(lifetime_days)?;
            Ok(Register {
                public_key,
                proof: Proof { nonce, signature },
                lifetime_days,
            })
        })
    }

    fn check(&self) -> Result<(), WireError> {
        check_lifetime(self.lifetime_days)
    }

    fn body_len(&self) -> usize {
        match self.lifetime_days {
            None => BODY_LEN,
            Some(_) => BODY_WITH_LIFETIME_LEN,
        }
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.public_key);
        out.extend_from_slice(&self.proof.nonce);
        out.extend_from_slice(&self.proof.signature);
        if let Some(days) = self.lifetime_days {
            out.extend_from_slice(&days.to_be_bytes());
        }
    }
}

impl Message for Registered {
    const MIN_BODY: usize = REGISTERED_LEN;
    const MAX_BODY: usize = REGISTERED_WITH_LIFETIME_LEN;

    fn decode(head: &[u8], body_len: usize) -> Result<Self, WireError> {
        if body_len != REGISTERED_LEN && body_len != REGISTERED_WITH_LIFETIME_LEN {
            return Err(WireError::Malformed(
                "a Registered body is 32 bytes, or 34 with a lifetime",
            ));
        }
        fixed(head, |r| {
            let mailbox = MailboxId(r.array("mailbox id")?);
            let lifetime_days = match r.remaining() {
                0 => None,
                _ => Some(r.u16("lifetime")?),
            };
            Ok(Registered {
                mailbox,
                lifetime_days,
            })
        })
    }

    fn body_len(&self) -> usize {
        match self.lifetime_days {
            None => REGISTERED_LEN,
            Some(_) => REGISTERED_WITH_LIFETIME_LEN,
        }
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.mailbox.as_bytes());
        if let Some(days) = self.lifetime_days {
            out.extend_from_slice(&days.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_request_frame, decode_response_frame, encode, Request, Response};

    fn register(lifetime_days: Option<u16>) -> Register {
        Register {
            public_key: [1; PUBLIC_KEY_LEN],
            proof: Proof {
                nonce: [2; NONCE_LEN],
                signature: [3; SIGNATURE_LEN],
            },
            lifetime_days,
        }
    }

    /// Set a frame's length field to its body's length.
    fn fix_len(bytes: &mut [u8]) {
        let len = (bytes.len() - 6) as u32;
        bytes[2..6].copy_from_slice(&len.to_be_bytes());
    }

    #[test]
    fn a_register_without_a_lifetime_is_the_128_bytes_it_always_was() {
        let bytes = encode(&register(None)).unwrap();
        assert_eq!(bytes.len(), 6 + 128);
        assert_eq!(&bytes[6..38], &[1; 32]);
        assert_eq!(
            decode_request_frame(&bytes),
            Ok((Request::Register(register(None)), &[][..]))
        );
        // The digest of a registration without a lifetime did not change either.
        assert_eq!(
            Register::digest(&[1; 32], None),
            <[u8; 32]>::from(Sha256::digest([1u8; 32]))
        );
    }

    #[test]
    fn a_lifetime_is_two_more_bytes_and_part_of_the_digest() {
        let bytes = encode(&register(Some(90))).unwrap();
        assert_eq!(bytes.len(), 6 + 130);
        assert_eq!(&bytes[134..], &90u16.to_be_bytes());
        assert_eq!(
            decode_request_frame(&bytes),
            Ok((Request::Register(register(Some(90))), &[][..]))
        );
        let d = |days| Register::digest(&[1; 32], days);
        assert_ne!(d(Some(90)), d(None), "nobody can strip it");
        assert_ne!(d(Some(90)), d(Some(91)), "or change it");
        let answer = Registered {
            mailbox: MailboxId([4; 32]),
            lifetime_days: Some(30),
        };
        let bytes = encode(&answer).unwrap();
        assert_eq!(bytes.len(), 6 + 34);
        assert_eq!(decode_response_frame(&bytes), Ok(Response::Registered(answer)));
        let plain = Registered {
            mailbox: MailboxId([4; 32]),
            lifetime_days: None,
        };
        assert_eq!(encode(&plain).unwrap().len(), 6 + 32);
    }

    #[test]
    fn bad_lifetimes_and_lengths_are_refused() {
        assert_eq!(
            encode(&register(Some(0))),
            Err(WireError::Malformed("a mailbox lifetime of 0 days"))
        );
        assert!(encode(&register(Some(MAX_MAILBOX_LIFETIME_DAYS))).is_ok());
        assert!(matches!(
            encode(&register(Some(MAX_MAILBOX_LIFETIME_DAYS + 1))),
            Err(WireError::TooMany { .. })
        ));
        for days in [0u16, MAX_MAILBOX_LIFETIME_DAYS + 1, u16::MAX] {
            let mut bytes = encode(&register(None)).unwrap();
            bytes.extend_from_slice(&days.to_be_bytes());
            fix_len(&mut bytes);
            assert!(decode_request_frame(&bytes).is_err(), "{days} days");
        }
        // 129 bytes (one byte of a lifetime) and 131 are neither form; the header check
        // refuses anything beyond 130 before a body byte is read.
        let mut bytes = encode(&register(None)).unwrap();
        bytes.push(1);
        fix_len(&mut bytes);
        assert!(matches!(
            decode_request_frame(&bytes),
            Err(WireError::Malformed(_))
        ));
        let mut bytes = encode(&register(Some(5))).unwrap();
        bytes.push(1);
        fix_len(&mut bytes);
        assert!(matches!(
            decode_request_frame(&bytes),
            Err(WireError::TooLarge { .. })
        ));
        let mut bytes = encode(&Registered {
            mailbox: MailboxId([4; 32]),
            lifetime_days: None,
        })
        .unwrap();
        bytes.push(1);
        fix_len(&mut bytes);
        assert!(decode_response_frame(&bytes).is_err());
    }
}
