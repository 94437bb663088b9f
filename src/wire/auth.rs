//! Proof of possession of a mailbox key, bound to one TLS session and one relay-issued nonce.
//!
//! The signed message is
//!
//! ```text
//! "vigil/v1/auth\0" || purpose || exporter[32] || nonce[32] || mailbox_id[32] || digest[32]
//! ```
//!
//! where `purpose` is `"register\0"`, `"fetch\0"` or `"ack\0"`, `exporter` is 32 bytes from the
//! TLS keying-material exporter with label [`EXPORTER_LABEL`] and no context, and `digest` is
//! SHA-256 over the request-specific fields (see [`register_digest`], [`fetch_digest`],
//! [`ack_digest`]). A proof captured on one connection fails on every other connection (the
//! exporter differs), fails a second time on the same connection (the relay forgets the nonce on
//! first use), and cannot be moved to another request or purpose.

pub use super::limits::EXPORTER_LABEL;
use super::limits::{
    EXPORTER_LEN, MAX_OUTSTANDING_CHALLENGES, NONCE_LEN, PUBLIC_KEY_LEN, SIGNATURE_LEN,
};
use super::{Proof, Request};
use crate::ids::{ItemId, MailboxId};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use subtle::ConstantTimeEq;

/// Domain separator; the same scheme as `keys::SignatureDomain` ("vigil/v1/" || label || "\0").
pub const AUTH_DOMAIN: &[u8] = b"vigil/v1/auth\0";

/// What a proof authorises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Register a mailbox.
    Register,
    /// Fetch items.
    Fetch,
    /// Acknowledge (delete) items.
    Ack,
}

impl Purpose {
    /// The NUL-terminated label signed for this purpose.
    pub fn label(self) -> &'static [u8] {
        match self {
            Purpose::Register => b"register\0",
            Purpose::Fetch => b"fetch\0",
            Purpose::Ack => b"ack\0",
        }
    }
}

/// The exact bytes a proof signs.
pub fn proof_message(
    purpose: Purpose,
    exporter: &[u8; EXPORTER_LEN],
    nonce: &[u8; NONCE_LEN],
    mailbox: &MailboxId,
    digest: &[u8; 32],
) -> Vec<u8> {
    let label = purpose.label();
    let mut m = Vec::with_capacity(AUTH_DOMAIN.len() + label.len() + EXPORTER_LEN + NONCE_LEN + 64);
    m.extend_from_slice(AUTH_DOMAIN);
    m.extend_from_slice(label);
    m.extend_from_slice(exporter);
    m.extend_from_slice(nonce);
    m.extend_from_slice(mailbox.as_bytes());
    m.extend_from_slice(digest);
    m
}

/// Register: SHA-256 of the public key being registered.
pub fn register_digest(public_key: &[u8; PUBLIC_KEY_LEN]) -> [u8; 32] {
    Sha256::digest(public_key).into()
}

/// Fetch: SHA-256 of `max_items` as u32 big-endian.
pub fn fetch_digest(max_items: u32) -> [u8; 32] {
    Sha256::digest(max_items.to_be_bytes()).into()
}

/// Ack: SHA-256 of `count u16 BE || id[16] * count`, exactly as the ids appear in the frame.
/// Callers pass at most `MAX_ACK_IDS` ids (the encoder refuses more).
pub fn ack_digest(ids: &[ItemId]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((ids.len().min(u16::MAX as usize) as u16).to_be_bytes());
    for id in ids {
        h.update(id.as_bytes());
    }
    h.finalize().into()
}

/// Sign a proof.
pub fn sign(
    key: &SigningKey,
    purpose: Purpose,
    exporter: &[u8; EXPORTER_LEN],
    nonce: &[u8; NONCE_LEN],
    mailbox: &MailboxId,
    digest: &[u8; 32],
) -> Proof {
    let sig = key.sign(&proof_message(purpose, exporter, nonce, mailbox, digest));
    Proof {
        nonce: *nonce,
        signature: sig.to_bytes(),
    }
}

/// What an authenticated request claims: its purpose, mailbox, field digest and proof.
/// `None` for requests that carry no proof (Challenge, Deposit).
pub fn claim<'r>(req: &'r Request<'_>) -> Option<(Purpose, MailboxId, [u8; 32], &'r Proof)> {
    match req {
        Request::Register { public_key, proof } => Some((
            Purpose::Register,
            MailboxId::for_key(public_key),
            register_digest(public_key),
            proof,
        )),
        Request::Fetch {
            mailbox,
            max_items,
            proof,
        } => Some((Purpose::Fetch, *mailbox, fetch_digest(*max_items), proof)),
        Request::Ack {
            mailbox,
            ids,
            proof,
        } => Some((Purpose::Ack, *mailbox, ack_digest(ids), proof)),
        Request::Challenge | Request::Deposit { .. } => None,
    }
}

/// Check a request's signature under `public_key` for this connection's `exporter`.
///
/// This checks the signature only; the caller must also have consumed the nonce from its
/// [`ChallengeSet`] (single use) and, for Fetch and Ack, looked up the key registered for the
/// mailbox. Uses `verify_strict` so malleable or small-order-key signatures are refused.
pub fn verify(
    public_key: &[u8; PUBLIC_KEY_LEN],
    exporter: &[u8; EXPORTER_LEN],
    req: &Request<'_>,
) -> bool {
    let Some((purpose, mailbox, digest, proof)) = claim(req) else {
        return false;
    };
    let Ok(vk) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    let sig = ed25519_dalek::Signature::from_bytes(&proof.signature);
    let msg = proof_message(purpose, exporter, &proof.nonce, &mailbox, &digest);
    vk.verify_strict(&msg, &sig).is_ok()
}

/// The nonces a relay has issued on one connection and not yet seen used.
///
/// Bounded: issuing more than [`MAX_OUTSTANDING_CHALLENGES`] forgets the oldest. A nonce is
/// removed when it is presented, whether or not the proof then verifies, so it is single use.
#[derive(Default)]
pub struct ChallengeSet {
    outstanding: VecDeque<[u8; NONCE_LEN]>,
}

impl ChallengeSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Remember a freshly generated nonce (the caller draws it from a CSPRNG).
    pub fn issue(&mut self, nonce: [u8; NONCE_LEN]) {
        if self.outstanding.len() >= MAX_OUTSTANDING_CHALLENGES {
            self.outstanding.pop_front();
        }
        self.outstanding.push_back(nonce);
    }

    /// Consume `nonce`: true if it was outstanding. Compares in constant time.
    pub fn take(&mut self, nonce: &[u8; NONCE_LEN]) -> bool {
        let mut found = None;
        for (i, n) in self.outstanding.iter().enumerate() {
            if bool::from(n.ct_eq(nonce)) {
                found = Some(i);
            }
        }
        match found {
            Some(i) => {
                self.outstanding.remove(i);
                true
            }
            None => false,
        }
    }

    /// Number of outstanding nonces.
    pub fn len(&self) -> usize {
        self.outstanding.len()
    }

    /// Whether no nonce is outstanding.
    pub fn is_empty(&self) -> bool {
        self.outstanding.is_empty()
    }
}

const _: () = assert!(SIGNATURE_LEN == ed25519_dalek::SIGNATURE_LENGTH);
