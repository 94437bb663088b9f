//! Recipient cards: what an NGO hands to reporters so they can send it reports.
//!
//! A card says: this is NGO *name*; encrypt to these age recipients (one per staff key); reports
//! signed for this NGO are bound to this identity key; deposit them in this mailbox at this relay,
//! whose certificate has this fingerprint. It is signed by the NGO's identity key, so a card
//! altered in transit fails to verify. A signature alone cannot tell a reporter that the key is
//! really the NGO's: that is what the safety number, compared out of band, is for.
//!
//! Text form, one line so it fits a QR code and a chat message:
//! `VIGIL-CARD-1.` || base64url(body JSON) || `.` || base64url(signature)

use crate::age::x25519::Recipient;
use crate::ids::{CertFingerprint, MailboxId};
use crate::keys::{safety_number, KeyError, PublicSigningKey, SignatureDomain, SigningSecret};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// Prefix of the text form; the number is the card format version.
pub const CARD_PREFIX: &str = "VIGIL-CARD-1.";
/// Largest card text accepted, in bytes. A card with 16 staff recipients is about 2 KiB; the cap
/// stops a hostile "card" from costing memory or time before its signature is even checked.
pub const MAX_CARD_LEN: usize = 8 * 1024;
/// Most recipients (staff keys) on one card: each costs a stanza in every report's header.
pub const MAX_CARD_RECIPIENTS: usize = 16;
/// Longest NGO name, in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// Longest relay address, in bytes.
pub const MAX_RELAY_ADDR_LEN: usize = 255;

/// Why a card was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CardError {
    /// Larger than [`MAX_CARD_LEN`].
    #[error("card is {len} bytes, more than the {max}-byte limit; this is not a Vigil card")]
    TooLarge {
        /// Size seen.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Wrong prefix or wrong number of parts.
    #[error("not a Vigil recipient card (it should start with {CARD_PREFIX}); ask the NGO for its card again")]
    NotACard,
    /// Base64 or JSON damaged.
    #[error("recipient card is damaged ({0}); ask the NGO for its card again")]
    Damaged(String),
    /// A field is out of range.
    #[error(
        "recipient card field `{field}` is invalid: {problem}; ask the NGO for its card again"
    )]
    Field {
        /// Field name.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The signature does not verify under the card's own identity key.
    #[error("recipient card's signature does not verify: it was altered after the NGO made it; do not use it, get the card from the NGO again")]
    BadSignature,
    /// A key inside the card is not valid.
    #[error("recipient card holds an invalid key: {0}")]
    Key(#[from] KeyError),
}

/// The signed contents of a card, as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CardBody {
    v: u32,
    name: String,
    identity_key: String,
    recipients: Vec<String>,
    relay: String,
    relay_fingerprint: String,
    mailbox: String,
    created: u64,
}

/// A verified recipient card.
#[derive(Clone, Debug, PartialEq)]
pub struct RecipientCard {
    /// The NGO's display name; reporters address reports by it.
    pub name: String,
    /// The NGO's identity key: signs the card; reports are bound to it.
    pub identity_key: PublicSigningKey,
    /// Staff recipients: every report is encrypted to each of them.
    pub recipients: Vec<Recipient>,
    /// Relay address, `host:port`.
    pub relay: String,
    /// Pinned relay certificate fingerprint.
    pub relay_fingerprint: CertFingerprint,
    /// Mailbox at the relay.
    pub mailbox: MailboxId,
    /// When the card was made, seconds since the Unix epoch (ordering of re-issued cards).
    pub created: u64,
}

impl RecipientCard {
    /// Check every field against its limit.
    fn validate(&self) -> Result<(), CardError> {
        let n = self.name.trim();
        if n.is_empty()
            || self.name.chars().count() > MAX_NAME_CHARS
            || self.name.chars().any(char::is_control)
        {
            return Err(CardError::Field {
                field: "name",
                problem: format!("must be 1 to {MAX_NAME_CHARS} printable characters"),
            });
        }
        if self.recipients.is_empty() || self.recipients.len() > MAX_CARD_RECIPIENTS {
            return Err(CardError::Field {
                field: "recipients",
                problem: format!(
                    "must hold 1 to {MAX_CARD_RECIPIENTS} staff keys, not {}",
                    self.recipients.len()
                ),
            });
        }
        if self.relay.is_empty()
            || self.relay.len() > MAX_RELAY_ADDR_LEN
            || !self.relay.contains(':')
            || self
                .relay
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(CardError::Field {
                field: "relay",
                problem: "must be host:port".into(),
            });
        }
        Ok(())
    }

    /// Sign and encode the card with the NGO's identity key.
    pub fn sign(&self, identity: &SigningSecret) -> Result<String, CardError> {
        self.validate()?;
        if identity.public() != self.identity_key {
            return Err(CardError::Field {
                field: "identity_key",
                problem: "is not the key signing the card".into(),
            });
        }
        let body = CardBody {
            v: 1,
            name: self.name.clone(),
            identity_key: self.identity_key.to_string(),
            recipients: self.recipients.iter().map(ToString::to_string).collect(),
            relay: self.relay.clone(),
            relay_fingerprint: self.relay_fingerprint.to_string(),
            mailbox: self.mailbox.to_string(),
            created: self.created,
        };
        let json = serde_json::to_vec(&body).map_err(|e| CardError::Damaged(e.to_string()))?;
        let sig = identity.sign(SignatureDomain::Card, &json);
        let text = format!(
            "{CARD_PREFIX}{}.{}",
            URL_SAFE_NO_PAD.encode(&json),
            URL_SAFE_NO_PAD.encode(sig)
        );
        if text.len() > MAX_CARD_LEN {
            return Err(CardError::TooLarge {
                len: text.len(),
                max: MAX_CARD_LEN,
            });
        }
        Ok(text)
    }

    /// Parse and verify a card's text form. Surrounding white space is ignored.
    pub fn parse(text: &str) -> Result<Self, CardError> {
        if text.len() > MAX_CARD_LEN {
            return Err(CardError::TooLarge {
                len: text.len(),
                max: MAX_CARD_LEN,
            });
        }
        let text = text.trim();
        let rest = text.strip_prefix(CARD_PREFIX).ok_or(CardError::NotACard)?;
        let (body_b64, sig_b64) = rest.split_once('.').ok_or(CardError::NotACard)?;
        if sig_b64.contains('.') {
            return Err(CardError::NotACard);
        }
        let json = URL_SAFE_NO_PAD
            .decode(body_b64)
            .map_err(|e| CardError::Damaged(e.to_string()))?;
        let sig_bytes = URL_SAFE_NO_PAD
            .decode(sig_b64)
            .map_err(|e| CardError::Damaged(e.to_string()))?;
        let sig: [u8; 64] = sig_bytes
            .try_into()
            .map_err(|_| CardError::Damaged("signature has the wrong length".into()))?;
        let body: CardBody =
            serde_json::from_slice(&json).map_err(|e| CardError::Damaged(e.to_string()))?;
        if body.v != 1 {
            return Err(CardError::Field {
                field: "v",
                problem: format!("version {} is not supported; update Vigil", body.v),
            });
        }
        let identity_key: PublicSigningKey = body.identity_key.parse()?;
        // Verify before looking at anything else the card claims.
        identity_key
            .verify(SignatureDomain::Card, &json, &sig)
            .map_err(|_| CardError::BadSignature)?;
        if body.recipients.len() > MAX_CARD_RECIPIENTS {
            return Err(CardError::Field {
                field: "recipients",
                problem: format!("more than {MAX_CARD_RECIPIENTS}"),
            });
        }
        let recipients = body
            .recipients
            .iter()
            .map(|r| {
                r.parse::<Recipient>().map_err(|e| CardError::Field {
                    field: "recipients",
                    problem: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let card = RecipientCard {
            name: body.name,
            identity_key,
            recipients,
            relay: body.relay,
            relay_fingerprint: body.relay_fingerprint.parse().map_err(
                |e: crate::ids::IdError| CardError::Field {
                    field: "relay_fingerprint",
                    problem: e.to_string(),
                },
            )?,
            mailbox: body
                .mailbox
                .parse()
                .map_err(|e: crate::ids::IdError| CardError::Field {
                    field: "mailbox",
                    problem: e.to_string(),
                })?,
            created: body.created,
        };
        card.validate()?;
        Ok(card)
    }

    /// The safety number for this card: covers the identity key, every recipient, the relay
    /// fingerprint and the mailbox, so that swapping any of them changes the number.
    pub fn safety_number(&self) -> String {
        let id = self.identity_key.to_bytes();
        let fp = self.relay_fingerprint.0;
        let mb = self.mailbox.0;
        let recips: Vec<[u8; 32]> = self.recipients.iter().map(Recipient::to_bytes).collect();
        let mut material: Vec<&[u8]> = vec![&id, &fp, &mb];
        material.extend(recips.iter().map(|r| r.as_slice()));
        safety_number(&material)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::age::x25519::Identity;

    fn sample() -> (RecipientCard, SigningSecret) {
        let id = SigningSecret::generate();
        let card = RecipientCard {
            name: "Memorial Caucasus desk".into(),
            identity_key: id.public(),
            recipients: vec![
                Identity::generate().to_public(),
                Identity::generate().to_public(),
            ],
            relay: "127.0.0.1:4433".into(),
            relay_fingerprint: CertFingerprint([7; 32]),
            mailbox: MailboxId([9; 32]),
            created: 1_700_000_000,
        };
        (card, id)
    }

    #[test]
    fn round_trip() {
        let (card, id) = sample();
        let text = card.sign(&id).unwrap();
        let back = RecipientCard::parse(&format!("\n {text}\n")).unwrap();
        assert_eq!(back, card);
        assert_eq!(back.safety_number(), card.safety_number());
    }

    #[test]
    fn tampering_is_detected() {
        let (card, id) = sample();
        let text = card.sign(&id).unwrap();
        // Re-sign a modified body with another key but keep the original identity key inside.
        let mut evil = card.clone();
        evil.relay = "203.0.113.9:4433".into();
        let other = SigningSecret::generate();
        evil.identity_key = other.public();
        let evil_text = evil.sign(&other).unwrap();
        let (_, evil_sig) = evil_text.rsplit_once('.').unwrap();
        let (orig_body, _) = text.rsplit_once('.').unwrap();
        let spliced = format!("{orig_body}.{evil_sig}");
        assert!(matches!(
            RecipientCard::parse(&spliced),
            Err(CardError::BadSignature)
        ));
        assert!(matches!(
            RecipientCard::parse("hello"),
            Err(CardError::NotACard)
        ));
        assert!(matches!(
            RecipientCard::parse(&"A".repeat(MAX_CARD_LEN + 1)),
            Err(CardError::TooLarge { .. })
        ));
        assert!(RecipientCard::parse(&format!("{CARD_PREFIX}!!.!!")).is_err());
    }

    #[test]
    fn safety_number_changes_with_relay_fingerprint() {
        let (card, _) = sample();
        let mut other = card.clone();
        other.relay_fingerprint = CertFingerprint([8; 32]);
        assert_ne!(card.safety_number(), other.safety_number());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,3000}") {
            let _ = RecipientCard::parse(&text);
            let _ = RecipientCard::parse(&format!("{CARD_PREFIX}{text}"));
        }
    }
}
