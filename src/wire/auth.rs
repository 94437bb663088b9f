//! Proof of possession of a mailbox key, bound to one TLS session and one relay-issued nonce.
//!
//! The signed message is
//!
//! ```text
//! "vigil/v1/auth\0" || purpose || exporter[32] || nonce[32] || mailbox_id[32] || digest[32]
//! ```
//!
//! where `purpose` is the request's label (`"register\0"`, `"fetch\0"`, `"ack\0"`, defined in each
//! exchange's file), `exporter` is 32 bytes from the TLS keying-material exporter with label
//! [`EXPORTER_LABEL`] and no context, and `digest` is SHA-256 over the request-specific fields
//! (each request's `digest` method). A proof captured on one connection fails on every other connection (the
//! exporter differs), fails a second time on the same connection (the relay forgets the nonce on
//! first use), and cannot be moved to another request or purpose.

pub use super::limits::EXPORTER_LABEL;
use super::limits::{
    EXPORTER_LEN, MAX_OUTSTANDING_CHALLENGES, NONCE_LEN, PUBLIC_KEY_LEN, SIGNATURE_LEN,
};
use crate::ids::{AlertId, MailboxId};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use std::collections::VecDeque;
use subtle::ConstantTimeEq;

/// Domain separator; the same scheme as `keys::SignatureDomain` ("vigil/v1/" || label || "\0").
pub const AUTH_DOMAIN: &[u8] = b"vigil/v1/auth\0";

/// What a proof authorises: a NUL-terminated label signed into the proof message. Each
/// proof-carrying exchange defines its own in its wire file (e.g. `register::PURPOSE`); labels
/// are distinct, so a proof made for one request can never authorise another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Purpose(&'static [u8]);

impl Purpose {
    /// A purpose with this label; it must end in NUL (checked when the proof is built).
    pub const fn new(label: &'static [u8]) -> Self {
        Self(label)
    }

    /// The NUL-terminated label signed for this purpose.
    pub fn label(self) -> &'static [u8] {
        self.0
    }
}

/// Proof of possession of a mailbox key: a signature over [`proof_message`], made with the nonce
/// the relay issued on this connection.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Proof {
    /// The challenge nonce the relay issued (single use).
    pub nonce: [u8; NONCE_LEN],
    /// Ed25519 signature over the proof message.
    pub signature: [u8; SIGNATURE_LEN],
}

impl std::fmt::Debug for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proof")
            .field("nonce", &hex::encode(self.nonce))
            .finish_non_exhaustive()
    }
}

/// What a proof-carrying request claims: the mailbox it acts on, for which purpose, over which
/// request fields (their digest), with which proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    /// What the proof authorises.
    pub purpose: Purpose,
    /// The mailbox acted on.
    pub mailbox: MailboxId,
    /// SHA-256 over the request-specific fields.
    pub digest: [u8; 32],
    /// The proof.
    pub proof: Proof,
}

/// A request that carries a proof of possession of a mailbox key.
pub trait Authenticated {
    /// What it claims.
    fn claim(&self) -> Claim;
}

/// The exact bytes a proof signs.
pub fn proof_message(
    purpose: Purpose,
    exporter: &[u8; EXPORTER_LEN],
    nonce: &[u8; NONCE_LEN],
    mailbox: &MailboxId,
    digest: &[u8; 32],
) -> Vec<u8> {
    signed_message(
        AUTH_DOMAIN,
        purpose,
        exporter,
        nonce,
        &[mailbox.as_bytes(), digest],
    )
}

/// `domain || purpose || exporter || nonce || subject...`: the one layout of every message a
/// relay-bound proof signs. Mailbox proofs ([`proof_message`]) and alert proofs
/// ([`alert_message`]) differ in their domain and subject only.
fn signed_message(
    domain: &[u8],
    purpose: Purpose,
    exporter: &[u8; EXPORTER_LEN],
    nonce: &[u8; NONCE_LEN],
    subject: &[&[u8]],
) -> Vec<u8> {
    let label = purpose.label();
    let tail: usize = subject.iter().map(|s| s.len()).sum();
    let mut m = Vec::with_capacity(domain.len() + label.len() + EXPORTER_LEN + NONCE_LEN + tail);
    m.extend_from_slice(domain);
    m.extend_from_slice(label);
    m.extend_from_slice(exporter);
    m.extend_from_slice(nonce);
    for s in subject {
        m.extend_from_slice(s);
    }
    m
}

/// Domain separator of check-in and disarm proofs (`docs/protocol.md`, "Check-in alerts"): a
/// proof over an alert can never pass for a mailbox proof, nor the other way round.
pub const CHECKIN_DOMAIN: &[u8] = b"vigil/v1/checkin\0";

/// The exact bytes a check-in or disarm proof signs:
/// `"vigil/v1/checkin\0" || purpose || exporter || nonce || alert id`.
///
/// No digest: the alert id is the request's only field, and the purpose tells a check-in from a
/// disarm. The key that signs is the alert's check-in key or its duress key, made for this
/// alert alone.
pub fn alert_message(
    purpose: Purpose,
    exporter: &[u8; EXPORTER_LEN],
    nonce: &[u8; NONCE_LEN],
    alert: &AlertId,
) -> Vec<u8> {
    signed_message(
        CHECKIN_DOMAIN,
        purpose,
        exporter,
        nonce,
        &[alert.as_bytes()],
    )
}

/// Sign a check-in or disarm proof with an alert's check-in or duress key.
pub fn sign_alert(
    key: &SigningKey,
    purpose: Purpose,
    exporter: &[u8; EXPORTER_LEN],
    nonce: &[u8; NONCE_LEN],
    alert: &AlertId,
) -> Proof {
    let sig = key.sign(&alert_message(purpose, exporter, nonce, alert));
    Proof {
        nonce: *nonce,
        signature: sig.to_bytes(),
    }
}

/// Check a check-in or disarm proof under `public_key` for this connection's `exporter`
/// (signature only: the caller consumed the nonce). Strict, as [`verify`] is.
pub fn verify_alert(
    public_key: &[u8; PUBLIC_KEY_LEN],
    exporter: &[u8; EXPORTER_LEN],
    purpose: Purpose,
    alert: &AlertId,
    proof: &Proof,
) -> bool {
    verify_strict(
        public_key,
        &alert_message(purpose, exporter, &proof.nonce, alert),
        &proof.signature,
    )
}

fn verify_strict(
    public_key: &[u8; PUBLIC_KEY_LEN],
    msg: &[u8],
    signature: &[u8; SIGNATURE_LEN],
) -> bool {
    let Ok(vk) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    let sig = ed25519_dalek::Signature::from_bytes(signature);
    vk.verify_strict(msg, &sig).is_ok()
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

/// Check a request's signature under `public_key` for this connection's `exporter`.
///
/// This checks the signature only; the caller must also have consumed the nonce from its
/// [`ChallengeSet`] (single use) and, for Fetch and Ack, looked up the key registered for the
/// mailbox. Uses `verify_strict` so malleable or small-order-key signatures are refused.
pub fn verify(
    public_key: &[u8; PUBLIC_KEY_LEN],
    exporter: &[u8; EXPORTER_LEN],
    claim: &Claim,
) -> bool {
    let Claim {
        purpose,
        mailbox,
        digest,
        proof,
    } = *claim;
    let msg = proof_message(purpose, exporter, &proof.nonce, &mailbox, &digest);
    verify_strict(public_key, &msg, &proof.signature)
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
