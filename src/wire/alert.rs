//! What the check-in alert exchanges ([`arm`](super::arm), [`checkin`](super::checkin),
//! [`disarm`](super::disarm)) share: the proof purposes, the alert proof's body, and the release
//! note the relay attaches to an envelope it released (read through the Fetch notes flag,
//! [`fetch::WITH_NOTES`](super::fetch::WITH_NOTES)).
//!
//! A check-in alert is a set of sealed report envelopes (one per NGO mailbox) that the relay
//! holds back while its owner keeps checking in, and releases into those mailboxes when a
//! check-in is missed or made with the duress key. `docs/protocol.md`, "Check-in alerts", is
//! the spec; the time rules the relay keeps are in [`super::policy`].

use super::auth::{Proof, Purpose};
use super::frame::fixed;
use super::limits::{NONCE_LEN, SIGNATURE_LEN};
use super::WireError;
use crate::ids::{AlertId, DepositId};
use sha2::{Digest, Sha256};

/// The label signed into a check-in proof.
pub const CHECKIN_PURPOSE: Purpose = Purpose::new(b"checkin\0");

/// The label signed into a disarm proof: a captured check-in can never disarm, nor the other
/// way round.
pub const DISARM_PURPOSE: Purpose = Purpose::new(b"disarm\0");

/// CheckIn and Disarm body: alert id, nonce, signature.
pub const PROOF_BODY_LEN: usize = AlertId::LEN + NONCE_LEN + SIGNATURE_LEN;

/// A release note on the wire: reason (u8), armed at, last check-in at, released at (u64 each).
pub const NOTE_LEN: usize = 1 + 3 * 8;

/// Why the relay released an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReleaseReason {
    /// No check-in came by the deadline.
    Missed,
    /// A check-in or disarm was signed with the duress key: the owner is under coercion.
    Duress,
}

impl ReleaseReason {
    /// The byte in a note (0 means "no note").
    pub fn to_u8(self) -> u8 {
        match self {
            Self::Missed => 1,
            Self::Duress => 2,
        }
    }

    /// From the byte in a note; 0 (no note) and unknown values are `None`.
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Missed),
            2 => Some(Self::Duress),
            _ => None,
        }
    }

    /// `missed` or `duress`, for logs, JSON and people.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missed => "missed",
            Self::Duress => "duress",
        }
    }
}

impl std::fmt::Display for ReleaseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the relay says about an envelope it released from an alert. The relay writes it beside
/// the envelope (it cannot write inside one); an NGO's client shows the item as an urgent alert
/// with it. Times are the relay's clock, Unix seconds, rounded down to the minute
/// (`policy::ALERT_TIME_GRANULARITY_SECS`) except `released_at`, which is the release itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReleaseNote {
    /// Why it was released.
    pub reason: ReleaseReason,
    /// When the alert was armed (to the minute).
    pub armed_at: u64,
    /// When the last check-in by the check-in key came (to the minute); 0 if none came since
    /// the alert was armed.
    pub last_checkin_at: u64,
    /// When the relay released it (to the minute).
    pub released_at: u64,
}

impl ReleaseNote {
    /// The note's bytes, or [`NOTE_LEN`] zero bytes for an item without a note.
    pub fn encode_opt(note: Option<&ReleaseNote>) -> [u8; NOTE_LEN] {
        let mut out = [0u8; NOTE_LEN];
        if let Some(n) = note {
            out[0] = n.reason.to_u8();
            out[1..9].copy_from_slice(&n.armed_at.to_be_bytes());
            out[9..17].copy_from_slice(&n.last_checkin_at.to_be_bytes());
            out[17..25].copy_from_slice(&n.released_at.to_be_bytes());
        }
        out
    }

    /// Decode [`NOTE_LEN`] bytes: `None` for reason 0 with every other byte zero, a note for a
    /// known reason; anything else is refused (there is one encoding of each note).
    pub fn decode_opt(b: &[u8]) -> Result<Option<ReleaseNote>, WireError> {
        fixed(b, |r| {
            let reason = r.u8("release reason")?;
            let armed_at = r.u64("armed at")?;
            let last_checkin_at = r.u64("last check-in at")?;
            let released_at = r.u64("released at")?;
            match (reason, ReleaseReason::from_u8(reason)) {
                (0, _) if armed_at == 0 && last_checkin_at == 0 && released_at == 0 => Ok(None),
                (0, _) => Err(WireError::Malformed("an empty release note carries times")),
                (_, Some(reason)) => Ok(Some(ReleaseNote {
                    reason,
                    armed_at,
                    last_checkin_at,
                    released_at,
                })),
                (_, None) => Err(WireError::Malformed("unknown release reason")),
            }
        })
    }
}

/// The deposit id an alert's envelope gets in its mailbox when the relay releases it:
/// `SHA-256("vigil/v1/alert-item\0" || alert id)[:16]`. Derived, so a release repeated after a
/// crash lands on the same item; distinct per mailbox because an alert has one envelope per
/// mailbox (the item id mixes in the mailbox id).
pub fn released_deposit_id(alert: &AlertId) -> DepositId {
    let h = Sha256::new()
        .chain_update(b"vigil/v1/alert-item\0")
        .chain_update(alert.as_bytes())
        .finalize();
    let mut d = [0u8; 16];
    d.copy_from_slice(&h[..16]);
    DepositId(d)
}

/// Decode a CheckIn or Disarm body: alert id, nonce, signature.
pub(crate) fn decode_alert_proof(head: &[u8]) -> Result<(AlertId, Proof), WireError> {
    fixed(head, |r| {
        let alert = AlertId(r.array("alert id")?);
        let nonce = r.array("nonce")?;
        let signature = r.array("signature")?;
        Ok((alert, Proof { nonce, signature }))
    })
}

/// Encode a CheckIn or Disarm body.
pub(crate) fn encode_alert_proof(alert: &AlertId, proof: &Proof, out: &mut Vec<u8>) {
    out.extend_from_slice(alert.as_bytes());
    out.extend_from_slice(&proof.nonce);
    out.extend_from_slice(&proof.signature);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::auth::{self, CHECKIN_DOMAIN};
    use ed25519_dalek::SigningKey;

    #[test]
    fn notes_round_trip_and_the_empty_note_is_all_zero() {
        let n = ReleaseNote {
            reason: ReleaseReason::Duress,
            armed_at: 60,
            last_checkin_at: 120,
            released_at: 180,
        };
        let b = ReleaseNote::encode_opt(Some(&n));
        assert_eq!(b[0], 2);
        assert_eq!(ReleaseNote::decode_opt(&b), Ok(Some(n)));
        assert_eq!(ReleaseNote::encode_opt(None), [0; NOTE_LEN]);
        assert_eq!(ReleaseNote::decode_opt(&[0; NOTE_LEN]), Ok(None));
        let mut bad = [0; NOTE_LEN];
        bad[3] = 1;
        assert!(
            ReleaseNote::decode_opt(&bad).is_err(),
            "times without a reason"
        );
        bad[0] = 3;
        assert!(ReleaseNote::decode_opt(&bad).is_err(), "unknown reason");
        assert!(ReleaseNote::decode_opt(&b[..NOTE_LEN - 1]).is_err());
        assert!(ReleaseNote::decode_opt(&[b.as_slice(), &[0]].concat()).is_err());
    }

    #[test]
    fn alert_proofs_are_bound_to_purpose_connection_nonce_and_alert() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let pk = key.verifying_key().to_bytes();
        let (ex, nonce, alert) = ([1; 32], [2; 32], AlertId([3; 16]));
        let p = auth::sign_alert(&key, CHECKIN_PURPOSE, &ex, &nonce, &alert);
        assert!(auth::verify_alert(&pk, &ex, CHECKIN_PURPOSE, &alert, &p));
        assert!(!auth::verify_alert(&pk, &ex, DISARM_PURPOSE, &alert, &p));
        assert!(!auth::verify_alert(
            &pk,
            &[9; 32],
            CHECKIN_PURPOSE,
            &alert,
            &p
        ));
        assert!(!auth::verify_alert(
            &pk,
            &ex,
            CHECKIN_PURPOSE,
            &AlertId([4; 16]),
            &p
        ));
        let other = SigningKey::from_bytes(&[6; 32]).verifying_key().to_bytes();
        assert!(!auth::verify_alert(
            &other,
            &ex,
            CHECKIN_PURPOSE,
            &alert,
            &p
        ));
        let msg = auth::alert_message(CHECKIN_PURPOSE, &ex, &nonce, &alert);
        assert!(msg.starts_with(b"vigil/v1/checkin\0checkin\0"));
        assert_eq!(msg.len(), CHECKIN_DOMAIN.len() + 8 + 32 + 32 + 16);
        // A mailbox proof over the same bytes is a different message.
        let mailbox = crate::ids::MailboxId([3; 32]);
        let mp = auth::proof_message(CHECKIN_PURPOSE, &ex, &nonce, &mailbox, &[0; 32]);
        assert_ne!(msg[..20], mp[..20]);
    }
}
