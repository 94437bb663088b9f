//! Recipient cards: what an NGO hands to reporters so they can send it reports.
//!
//! A card says: this is NGO *name*; encrypt to these age recipients (one per staff key); reports
//! signed for this NGO are bound to this identity key; deposit them in this mailbox at this relay,
//! whose certificate has this fingerprint (and, while the relay operator rotates its certificate,
//! also this *next* fingerprint). It is signed by the NGO's identity key, so a card
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
/// Most recipients (staff keys) on one card. Every report's header carries this many stanzas
/// whatever the card holds (`envelope::ENVELOPE_STANZAS`: the staff's plus decoys, so the
/// header does not count the staff), so raising it costs 98 bytes per step in every envelope.
pub const MAX_CARD_RECIPIENTS: usize = 16;
/// Longest NGO name, in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// Longest relay address, in bytes.
pub const MAX_RELAY_ADDR_LEN: usize = 255;
/// How long before its expiry a card is "expiring soon": reporters are warned this early so the
/// NGO has a month to reach them with a renewed card before sending stops.
pub const EXPIRY_WARNING_SECS: u64 = 30 * 86_400;

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
    /// The card text stops early: copied or scanned only in part.
    #[error("this card is incomplete: its end is missing (cut off when it was copied or scanned?); copy the whole card, from VIGIL-CARD-1. to its last character, or ask the NGO to send it again")]
    Incomplete,
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
    /// The card's signed expiry has passed: the NGO may have changed keys or relay since, and a
    /// report sealed to a stale card may reach nobody (or a removed staff member).
    #[error("the card of \"{name}\" expired on {when}; ask {name} for a renewed card and import it with `vigil contact add`")]
    Expired {
        /// The NGO's name.
        name: String,
        /// When it expired, as a UTC date and time.
        when: String,
    },
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
    /// Absent on cards made before (or outside) a certificate rotation, so those cards keep
    /// their exact bytes and meaning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    relay_fingerprint_next: Option<String>,
    mailbox: String,
    created: u64,
    /// Absent on cards made before expiry existed, so those cards keep their exact bytes and
    /// stay valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires: Option<u64>,
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
    /// The relay's *next* certificate, announced during a certificate rotation: clients accept
    /// either fingerprint until the NGO issues a card with only the new one. See
    /// `docs/operations.md`, "Rotating the certificate".
    pub relay_fingerprint_next: Option<CertFingerprint>,
    /// Mailbox at the relay.
    pub mailbox: MailboxId,
    /// When the card was made, seconds since the Unix epoch (ordering of re-issued cards).
    pub created: u64,
    /// When the card stops being valid, seconds since the Unix epoch; `None` (cards made before
    /// the field existed) never expires. Signed, but not part of the safety number: a renewal
    /// changes only this and `created`, and must not make reporters compare numbers again.
    pub expires: Option<u64>,
}

/// Where a card stands against its expiry at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// The card carries no expiry (made before the field existed).
    Never,
    /// Valid for more than [`EXPIRY_WARNING_SECS`].
    Valid {
        /// Expiry, Unix seconds.
        expires: u64,
    },
    /// Valid, but for at most [`EXPIRY_WARNING_SECS`]: time to ask for a renewed card.
    Soon {
        /// Expiry, Unix seconds.
        expires: u64,
    },
    /// Expired: nothing may be sealed to it.
    Expired {
        /// Expiry, Unix seconds.
        expires: u64,
    },
}

/// Safety-number element that precedes the next relay fingerprint. Its length (not 32) keeps it
/// from being read as a staff recipient, so a card with a next fingerprint can never share a
/// safety number with a card that lists one more recipient instead.
const NEXT_FINGERPRINT_TAG: &[u8] = b"relay-fingerprint-next";

impl RecipientCard {
    /// The NGO as an envelope names it among the addressees: its identity key and the name on
    /// this card.
    pub fn addressee(&self) -> crate::envelope::Addressee<'_> {
        crate::envelope::Addressee {
            key: self.identity_key,
            name: &self.name,
        }
    }

    /// The relay certificates a client accepts for this card: the current one first, then the
    /// announced next one if any.
    pub fn accepted_fingerprints(&self) -> Vec<CertFingerprint> {
        let mut v = vec![self.relay_fingerprint];
        v.extend(self.relay_fingerprint_next);
        v
    }

    /// Where this card stands at `now` (Unix seconds). A card is expired from its `expires`
    /// second on.
    pub fn expiry(&self, now: u64) -> Expiry {
        match self.expires {
            None => Expiry::Never,
            Some(expires) if now >= expires => Expiry::Expired { expires },
            Some(expires) if expires - now <= EXPIRY_WARNING_SECS => Expiry::Soon { expires },
            Some(expires) => Expiry::Valid { expires },
        }
    }

    /// Refuse a card that has expired at `now`; anything else (even expiring soon) passes.
    pub fn check_not_expired(&self, now: u64) -> Result<(), CardError> {
        match self.expiry(now) {
            Expiry::Expired { expires } => Err(CardError::Expired {
                name: self.name.clone(),
                when: format_utc(expires),
            }),
            _ => Ok(()),
        }
    }

    /// Check every field against its limit.
    fn validate(&self) -> Result<(), CardError> {
        if self.expires.is_some_and(|e| e <= self.created) {
            return Err(CardError::Field {
                field: "expires",
                problem: "is not after created".into(),
            });
        }
        if self
            .relay_fingerprint_next
            .is_some_and(|n| n == self.relay_fingerprint)
        {
            return Err(CardError::Field {
                field: "relay_fingerprint_next",
                problem: "is the same as relay_fingerprint".into(),
            });
        }
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
            relay_fingerprint_next: self.relay_fingerprint_next.map(|f| f.to_string()),
            mailbox: self.mailbox.to_string(),
            created: self.created,
            expires: self.expires,
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
        /// Characters of a 64-byte signature in unpadded base64url.
        const SIGNATURE_B64_LEN: usize = 86;
        if text.len() > MAX_CARD_LEN {
            return Err(CardError::TooLarge {
                len: text.len(),
                max: MAX_CARD_LEN,
            });
        }
        let text = text.trim();
        let rest = text.strip_prefix(CARD_PREFIX).ok_or(CardError::NotACard)?;
        // A card copied or scanned in part is told apart from a damaged one: the body ends
        // before its signature, the signature is short, or the body's JSON stops mid-way.
        let (body_b64, sig_b64) = rest.split_once('.').ok_or(CardError::Incomplete)?;
        if sig_b64.contains('.') {
            return Err(CardError::NotACard);
        }
        if sig_b64.len() < SIGNATURE_B64_LEN {
            return Err(CardError::Incomplete);
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
        let body: CardBody = serde_json::from_slice(&json).map_err(|e| match e.is_eof() {
            true => CardError::Incomplete,
            false => CardError::Damaged(e.to_string()),
        })?;
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
            relay_fingerprint_next: body
                .relay_fingerprint_next
                .map(|f| {
                    f.parse()
                        .map_err(|e: crate::ids::IdError| CardError::Field {
                            field: "relay_fingerprint_next",
                            problem: e.to_string(),
                        })
                })
                .transpose()?,
            mailbox: body
                .mailbox
                .parse()
                .map_err(|e: crate::ids::IdError| CardError::Field {
                    field: "mailbox",
                    problem: e.to_string(),
                })?,
            created: body.created,
            expires: body.expires,
        };
        card.validate()?;
        Ok(card)
    }

    /// The safety number for this card: covers the identity key, every recipient, the relay
    /// fingerprint(s) and the mailbox, so that swapping any of them changes the number.
    ///
    /// The next relay fingerprint is included only when present (after a tag element), so the
    /// safety number of a card without one is what it was before that field existed. The expiry
    /// (like `created`) is left out: renewing a card must not change the number reporters have
    /// compared out of band.
    pub fn safety_number(&self) -> String {
        let id = self.identity_key.to_bytes();
        let fp = self.relay_fingerprint.0;
        let mb = self.mailbox.0;
        let next = self.relay_fingerprint_next.map(|f| f.0);
        let recips: Vec<[u8; 32]> = self.recipients.iter().map(Recipient::to_bytes).collect();
        let mut material: Vec<&[u8]> = vec![&id, &fp, &mb];
        material.extend(recips.iter().map(|r| r.as_slice()));
        if let Some(next) = &next {
            material.push(NEXT_FINGERPRINT_TAG);
            material.push(next);
        }
        safety_number(&material)
    }
}

pub use crate::civil::format_utc;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::age::x25519::Identity;
    use rand::rngs::OsRng;

    fn sample() -> (RecipientCard, SigningSecret) {
        let id = SigningSecret::generate(&mut OsRng);
        let card = RecipientCard {
            name: "Memorial Caucasus desk".into(),
            identity_key: id.public(),
            recipients: vec![
                Identity::generate(&mut OsRng).to_public(),
                Identity::generate(&mut OsRng).to_public(),
            ],
            relay: "127.0.0.1:4433".into(),
            relay_fingerprint: CertFingerprint([7; 32]),
            relay_fingerprint_next: None,
            mailbox: MailboxId([9; 32]),
            created: 1_700_000_000,
            expires: None,
        };
        (card, id)
    }

    #[test]
    fn a_card_cut_short_is_called_incomplete() {
        let (card, id) = sample();
        let text = card.sign(&id).unwrap();
        assert!(RecipientCard::parse(&text).is_ok());
        for cut in (CARD_PREFIX.len()..text.len())
            .step_by(7)
            .chain([text.len() - 1])
        {
            let e = RecipientCard::parse(&text[..cut]).unwrap_err();
            assert!(matches!(e, CardError::Incomplete), "cut at {cut}: {e}");
            assert!(e.to_string().starts_with("this card is incomplete"), "{e}");
        }
    }

    /// Sign a hand-written body, as a card from an older (or hostile) issuer would be.
    fn sign_json(id: &SigningSecret, json: &str) -> String {
        let sig = id.sign(SignatureDomain::Card, json.as_bytes());
        format!(
            "{CARD_PREFIX}{}.{}",
            URL_SAFE_NO_PAD.encode(json),
            URL_SAFE_NO_PAD.encode(sig)
        )
    }

    fn body_json(card: &RecipientCard, extra: &str) -> String {
        let recips: Vec<String> = card.recipients.iter().map(|r| format!("\"{r}\"")).collect();
        format!(
            r#"{{"v":1,"name":"{}","identity_key":"{}","recipients":[{}],"relay":"{}","relay_fingerprint":"{}",{extra}"mailbox":"{}","created":{}}}"#,
            card.name,
            card.identity_key,
            recips.join(","),
            card.relay,
            card.relay_fingerprint,
            card.mailbox,
            card.created
        )
    }

    #[test]
    fn card_without_next_fingerprint_is_unchanged() {
        let (card, id) = sample();
        // The body a card had before the field existed: same bytes as signing produces now.
        let old_json = body_json(&card, "");
        let text = card.sign(&id).unwrap();
        let (body_b64, _) = text[CARD_PREFIX.len()..].split_once('.').unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(body_b64).unwrap(),
            old_json.as_bytes()
        );
        assert!(!old_json.contains("relay_fingerprint_next"));
        let back = RecipientCard::parse(&sign_json(&id, &old_json)).unwrap();
        assert_eq!(back, card);
        assert_eq!(back.relay_fingerprint_next, None);
        assert_eq!(back.accepted_fingerprints(), vec![card.relay_fingerprint]);
        // Safety number exactly as computed before the field existed.
        let idb = card.identity_key.to_bytes();
        let r0 = card.recipients[0].to_bytes();
        let r1 = card.recipients[1].to_bytes();
        let legacy = safety_number(&[&idb, &[7; 32], &[9; 32], &r0, &r1]);
        assert_eq!(card.safety_number(), legacy);
    }

    #[test]
    fn next_fingerprint_round_trips_and_is_signed() {
        let (mut card, id) = sample();
        let before = card.safety_number();
        card.relay_fingerprint_next = Some(CertFingerprint([8; 32]));
        let text = card.sign(&id).unwrap();
        let back = RecipientCard::parse(&text).unwrap();
        assert_eq!(back, card);
        assert_eq!(
            back.accepted_fingerprints(),
            vec![CertFingerprint([7; 32]), CertFingerprint([8; 32])]
        );
        // Part of the safety number, and not confusable with one more recipient.
        assert_ne!(back.safety_number(), before);
        let mut other = card.clone();
        other.relay_fingerprint_next = Some(CertFingerprint([6; 32]));
        assert_ne!(other.safety_number(), card.safety_number());
        // Part of the signed body: swapping it after signing breaks the signature.
        let json = body_json(
            &card,
            &format!(
                r#""relay_fingerprint_next":"{}","#,
                CertFingerprint([6; 32])
            ),
        );
        let (_, sig) = text.rsplit_once('.').unwrap();
        let forged = format!("{CARD_PREFIX}{}.{sig}", URL_SAFE_NO_PAD.encode(&json));
        assert!(matches!(
            RecipientCard::parse(&forged),
            Err(CardError::BadSignature)
        ));
    }

    #[test]
    fn bad_next_fingerprints_are_refused() {
        let (mut card, id) = sample();
        card.relay_fingerprint_next = Some(card.relay_fingerprint);
        assert!(matches!(
            card.sign(&id),
            Err(CardError::Field {
                field: "relay_fingerprint_next",
                ..
            })
        ));
        card.relay_fingerprint_next = None;
        let same = body_json(
            &card,
            &format!(r#""relay_fingerprint_next":"{}","#, card.relay_fingerprint),
        );
        assert!(matches!(
            RecipientCard::parse(&sign_json(&id, &same)),
            Err(CardError::Field {
                field: "relay_fingerprint_next",
                ..
            })
        ));
        let short = body_json(&card, r#""relay_fingerprint_next":"abcd","#);
        assert!(matches!(
            RecipientCard::parse(&sign_json(&id, &short)),
            Err(CardError::Field {
                field: "relay_fingerprint_next",
                ..
            })
        ));
        // Unknown fields are still refused.
        let unknown = body_json(&card, r#""relay_fingerprint_later":"00","#);
        assert!(matches!(
            RecipientCard::parse(&sign_json(&id, &unknown)),
            Err(CardError::Damaged(_))
        ));
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
        let other = SigningSecret::generate(&mut OsRng);
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

    #[test]
    fn card_without_expiry_keeps_its_bytes_and_never_expires() {
        let (card, id) = sample();
        let text = card.sign(&id).unwrap();
        let (body_b64, _) = text[CARD_PREFIX.len()..].split_once('.').unwrap();
        let json = URL_SAFE_NO_PAD.decode(body_b64).unwrap();
        assert_eq!(json, body_json(&card, "").as_bytes());
        assert!(!String::from_utf8(json).unwrap().contains("expires"));
        let back = RecipientCard::parse(&text).unwrap();
        assert_eq!(back.expires, None);
        assert_eq!(back.expiry(u64::MAX), Expiry::Never);
        assert!(back.check_not_expired(u64::MAX).is_ok());
    }

    #[test]
    fn expiry_round_trips_is_signed_and_leaves_the_safety_number() {
        let (mut card, id) = sample();
        let before = card.safety_number();
        card.expires = Some(card.created + 365 * 86_400);
        let text = card.sign(&id).unwrap();
        let (body_b64, sig) = text[CARD_PREFIX.len()..].split_once('.').unwrap();
        let json = String::from_utf8(URL_SAFE_NO_PAD.decode(body_b64).unwrap()).unwrap();
        // Appended after `created`, so everything before it is as it was.
        assert_eq!(
            json,
            format!(
                "{},\"expires\":{}}}",
                body_json(&card, "").trim_end_matches('}'),
                card.created + 365 * 86_400
            )
        );
        let back = RecipientCard::parse(&text).unwrap();
        assert_eq!(back, card);
        // A renewal must not make reporters compare numbers again.
        assert_eq!(back.safety_number(), before);
        // Signed: pushing the expiry out after signing breaks the signature.
        let longer = json.replace(
            &format!("\"expires\":{}", card.created + 365 * 86_400),
            &format!("\"expires\":{}", card.created + 3650 * 86_400),
        );
        assert_ne!(longer, json);
        let forged = format!("{CARD_PREFIX}{}.{sig}", URL_SAFE_NO_PAD.encode(&longer));
        assert!(matches!(
            RecipientCard::parse(&forged),
            Err(CardError::BadSignature)
        ));
        // Nor can it be removed.
        let forged = format!(
            "{CARD_PREFIX}{}.{sig}",
            URL_SAFE_NO_PAD.encode(body_json(&card, ""))
        );
        assert!(matches!(
            RecipientCard::parse(&forged),
            Err(CardError::BadSignature)
        ));
    }

    #[test]
    fn expiry_is_checked_against_the_given_time() {
        let (mut card, id) = sample();
        let expires = card.created + 100 * 86_400;
        card.expires = Some(expires);
        assert_eq!(card.expiry(card.created), Expiry::Valid { expires });
        assert_eq!(
            card.expiry(expires - EXPIRY_WARNING_SECS - 1),
            Expiry::Valid { expires }
        );
        assert_eq!(
            card.expiry(expires - EXPIRY_WARNING_SECS),
            Expiry::Soon { expires }
        );
        assert_eq!(card.expiry(expires - 1), Expiry::Soon { expires });
        assert!(card.check_not_expired(expires - 1).is_ok());
        assert_eq!(card.expiry(expires), Expiry::Expired { expires });
        let err = card.check_not_expired(expires + 5).unwrap_err();
        assert!(matches!(err, CardError::Expired { .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("ask Memorial Caucasus desk for a renewed card"),
            "{msg}"
        );
        // An expiry not after the card's date is refused when signing and when parsing.
        card.expires = Some(card.created);
        assert!(matches!(
            card.sign(&id),
            Err(CardError::Field {
                field: "expires",
                ..
            })
        ));
        let json = format!(
            "{},\"expires\":{}}}",
            body_json(&card, "").trim_end_matches('}'),
            card.created
        );
        assert!(matches!(
            RecipientCard::parse(&sign_json(&id, &json)),
            Err(CardError::Field {
                field: "expires",
                ..
            })
        ));
    }

    #[test]
    fn times_are_shown_as_utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(format_utc(1_700_000_000), "2023-11-14 22:13 UTC");
        assert_eq!(format_utc(4_107_542_400), "2100-03-01 00:00 UTC");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,3000}") {
            let _ = RecipientCard::parse(&text);
            let _ = RecipientCard::parse(&format!("{CARD_PREFIX}{text}"));
        }
    }
}
