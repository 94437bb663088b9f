//! Recipient cards: what an NGO hands to reporters so they can send it reports.
//!
//! A card says: this is NGO *name*; encrypt to these age recipients (one per staff key); reports
//! signed for this NGO are bound to this identity key; deposit them in this mailbox at this relay,
//! whose certificate has this fingerprint (and, while the relay operator rotates its certificate,
//! also this *next* fingerprint), and, optionally, at up to [`MAX_CARD_RELAYS`] − 1 more relays
//! under the same mailbox id, so that seizing or blocking one relay does not stop delivery. It is
//! signed by the NGO's identity key, so a card altered in transit fails to verify. A signature alone cannot tell a reporter that the key is
//! really the NGO's: that is what the safety number, compared out of band, is for.
//!
//! Text form, one line so it fits a QR code and a chat message:
//! `VIGIL-CARD-1.` || base64url(body JSON) || `.` || base64url(signature)

use crate::age::{AnyRecipient as Recipient, Recipient as _};
use crate::ids::{CertFingerprint, MailboxId};
use crate::keys::{safety_number, KeyError, PublicSigningKey, SignatureDomain, SigningSecret};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// Prefix of the text form; the number is the card format version.
pub const CARD_PREFIX: &str = "VIGIL-CARD-1.";
/// Largest card text accepted, in bytes. A card with 16 classic staff recipients is about 2 KiB;
/// one with 16 post-quantum recipients (1216 bytes each, about 2.6 KiB in the card's text) about
/// 44 KiB. The cap stops a hostile "card" from costing memory or time before its signature is
/// even checked.
pub const MAX_CARD_LEN: usize = 64 * 1024;
/// Most recipients (staff keys) on one card. Every report's header carries this many stanzas
/// whatever the card holds (`envelope::ENVELOPE_STANZAS`: the staff's plus decoys, so the
/// header does not count the staff), so raising it costs 98 bytes per step in every envelope.
pub const MAX_CARD_RECIPIENTS: usize = 16;
/// Longest NGO name, in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// Longest relay address, in bytes.
pub const MAX_RELAY_ADDR_LEN: usize = 255;
/// Most relays on one card, the first included. Every report is deposited at each of them (one
/// connection each) and the NGO fetches from each, so every relay costs a reporter a deposit
/// and the NGO a fetch; four is enough to survive the loss of most of them, and keeps a card
/// with 16 staff keys and a next fingerprint on every relay well inside [`MAX_CARD_LEN`].
pub const MAX_CARD_RELAYS: usize = 4;
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
    /// The relays after the first. Absent on single-relay cards, so those keep their exact bytes
    /// and meaning (and older clients, which refuse unknown fields, refuse a card they could
    /// only half use rather than silently dropping its other relays).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    more_relays: Vec<RelayBody>,
    mailbox: String,
    created: u64,
    /// Absent on cards made before expiry existed, so those cards keep their exact bytes and
    /// stay valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires: Option<u64>,
}

/// One more relay in a card body, as JSON (the first relay's fields are the body's own).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RelayBody {
    relay: String,
    relay_fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    relay_fingerprint_next: Option<String>,
}

/// One relay a card names: where reports are deposited and which certificates are accepted
/// there. The mailbox id (and the NGO's mailbox key) is the same at every relay of a card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardRelay {
    /// Relay address, `host:port`.
    pub addr: String,
    /// Pinned relay certificate fingerprint.
    pub fingerprint: CertFingerprint,
    /// The relay's next certificate during a rotation.
    pub fingerprint_next: Option<CertFingerprint>,
}

impl CardRelay {
    /// The certificates accepted at this relay: the current one first, then the next one if any.
    pub fn accepted_fingerprints(&self) -> Vec<CertFingerprint> {
        let mut v = vec![self.fingerprint];
        v.extend(self.fingerprint_next);
        v
    }

    /// Whether `other` names the same relay: addresses compare without regard to ASCII case,
    /// as host names do, so one relay cannot be listed twice by spelling it differently.
    pub fn same_addr(&self, other: &str) -> bool {
        self.addr.eq_ignore_ascii_case(other)
    }
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
    /// The relays after the first (`relay` and its fingerprints), in the NGO's order; empty on a
    /// single-relay card. At most [`MAX_CARD_RELAYS`] − 1, no address twice. [`Self::relays`]
    /// lists all of them.
    pub more_relays: Vec<CardRelay>,
    /// Mailbox at the relay (the same id at every relay of the card).
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
/// Safety-number element that precedes each further relay's fingerprint (and its next one, after
/// [`NEXT_FINGERPRINT_TAG`]); like that tag, its length keeps it apart from a recipient.
const MORE_RELAY_TAG: &[u8] = b"more-relay";

/// Whether `addr` looks like `host:port`, within [`MAX_RELAY_ADDR_LEN`].
fn valid_addr(addr: &str) -> bool {
    !addr.is_empty()
        && addr.len() <= MAX_RELAY_ADDR_LEN
        && addr.contains(':')
        && !addr.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl RecipientCard {
    /// The NGO as an envelope names it among the addressees: its identity key and the name on
    /// this card.
    pub fn addressee(&self) -> crate::envelope::Addressee<'_> {
        crate::envelope::Addressee {
            key: self.identity_key,
            name: &self.name,
        }
    }

    /// The relay certificates a client accepts for this card's first relay: the current one
    /// first, then the announced next one if any.
    pub fn accepted_fingerprints(&self) -> Vec<CertFingerprint> {
        self.first_relay().accepted_fingerprints()
    }

    /// The card's first relay (the `relay` fields).
    pub fn first_relay(&self) -> CardRelay {
        CardRelay {
            addr: self.relay.clone(),
            fingerprint: self.relay_fingerprint,
            fingerprint_next: self.relay_fingerprint_next,
        }
    }

    /// Every relay of the card in order: the first one, then [`Self::more_relays`]. A report is
    /// deposited at each, and the NGO fetches from each.
    pub fn relays(&self) -> Vec<CardRelay> {
        let mut v = Vec::with_capacity(1 + self.more_relays.len());
        v.push(self.first_relay());
        v.extend(self.more_relays.iter().cloned());
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
        let pq = self
            .recipients
            .iter()
            .filter(|r| r.is_post_quantum())
            .count();
        if pq != 0 && pq != self.recipients.len() {
            return Err(CardError::Field {
                field: "recipients",
                problem: "mixes post-quantum (age1pq1...) and classic (age1...) staff keys; \
                          a report to both would be only as strong as the classic ones"
                    .into(),
            });
        }
        if !valid_addr(&self.relay) {
            return Err(CardError::Field {
                field: "relay",
                problem: "must be host:port".into(),
            });
        }
        self.validate_more_relays()
    }

    /// The further relays: bounded, each a `host:port` with a sane next fingerprint, and no
    /// address twice (a duplicate would double every deposit to one relay for nothing).
    fn validate_more_relays(&self) -> Result<(), CardError> {
        let field = |problem: String| CardError::Field {
            field: "more_relays",
            problem,
        };
        if 1 + self.more_relays.len() > MAX_CARD_RELAYS {
            return Err(field(format!(
                "a card lists at most {MAX_CARD_RELAYS} relays, this one {}",
                1 + self.more_relays.len()
            )));
        }
        let all = self.relays();
        for (i, r) in all.iter().enumerate().skip(1) {
            if !valid_addr(&r.addr) {
                return Err(field(format!("relay {} must be host:port", i + 1)));
            }
            if r.fingerprint_next == Some(r.fingerprint) {
                return Err(field(format!(
                    "relay {}: the next fingerprint is the same as the current one",
                    r.addr
                )));
            }
            if all[..i].iter().any(|earlier| earlier.same_addr(&r.addr)) {
                return Err(field(format!("relay {} is listed twice", r.addr)));
            }
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
            more_relays: self
                .more_relays
                .iter()
                .map(|r| RelayBody {
                    relay: r.addr.clone(),
                    relay_fingerprint: r.fingerprint.to_string(),
                    relay_fingerprint_next: r.fingerprint_next.map(|f| f.to_string()),
                })
                .collect(),
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
        if 1 + body.more_relays.len() > MAX_CARD_RELAYS {
            return Err(CardError::Field {
                field: "more_relays",
                problem: format!("more than {MAX_CARD_RELAYS} relays in all"),
            });
        }
        let fingerprint = |f: &str| {
            f.parse::<CertFingerprint>()
                .map_err(|e: crate::ids::IdError| CardError::Field {
                    field: "more_relays",
                    problem: e.to_string(),
                })
        };
        let more_relays = body
            .more_relays
            .iter()
            .map(|r| {
                Ok(CardRelay {
                    addr: r.relay.clone(),
                    fingerprint: fingerprint(&r.relay_fingerprint)?,
                    fingerprint_next: r
                        .relay_fingerprint_next
                        .as_deref()
                        .map(fingerprint)
                        .transpose()?,
                })
            })
            .collect::<Result<Vec<_>, CardError>>()?;
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
            more_relays,
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
    /// safety number of a card without one is what it was before that field existed; likewise
    /// each further relay's fingerprints, after a tag of their own, so a single-relay card's
    /// number is what it always was. Relay addresses are signed but, as for the first relay,
    /// not part of the number: the pinned certificates are what an impostor cannot copy. The expiry
    /// (like `created`) is left out: renewing a card must not change the number reporters have
    /// compared out of band.
    pub fn safety_number(&self) -> String {
        let id = self.identity_key.to_bytes();
        let fp = self.relay_fingerprint.0;
        let mb = self.mailbox.0;
        let next = self.relay_fingerprint_next.map(|f| f.0);
        let recips: Vec<Vec<u8>> = self.recipients.iter().map(Recipient::to_bytes).collect();
        let mut material: Vec<&[u8]> = vec![&id, &fp, &mb];
        material.extend(recips.iter().map(|r| r.as_slice()));
        if let Some(next) = &next {
            material.push(NEXT_FINGERPRINT_TAG);
            material.push(next);
        }
        for r in &self.more_relays {
            material.push(MORE_RELAY_TAG);
            material.push(&r.fingerprint.0);
            if let Some(next) = &r.fingerprint_next {
                material.push(NEXT_FINGERPRINT_TAG);
                material.push(&next.0);
            }
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
                Identity::generate(&mut OsRng).to_public().into(),
                Identity::generate(&mut OsRng).to_public().into(),
            ],
            relay: "127.0.0.1:4433".into(),
            relay_fingerprint: CertFingerprint([7; 32]),
            relay_fingerprint_next: None,
            more_relays: Vec::new(),
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

    fn more(addr: &str, fp: u8, next: Option<u8>) -> CardRelay {
        CardRelay {
            addr: addr.into(),
            fingerprint: CertFingerprint([fp; 32]),
            fingerprint_next: next.map(|n| CertFingerprint([n; 32])),
        }
    }

    #[test]
    fn a_single_relay_card_keeps_its_bytes_and_lists_one_relay() {
        let (card, id) = sample();
        let text = card.sign(&id).unwrap();
        let (body_b64, _) = text[CARD_PREFIX.len()..].split_once('.').unwrap();
        let json = URL_SAFE_NO_PAD.decode(body_b64).unwrap();
        // Exactly the body cards had before `more_relays` existed.
        assert_eq!(json, body_json(&card, "").as_bytes());
        assert!(!String::from_utf8(json).unwrap().contains("more_relays"));
        // A card signed by an older Vigil still verifies, and names its one relay.
        let back = RecipientCard::parse(&sign_json(&id, &body_json(&card, ""))).unwrap();
        assert_eq!(back, card);
        assert_eq!(
            back.relays(),
            vec![CardRelay {
                addr: "127.0.0.1:4433".into(),
                fingerprint: CertFingerprint([7; 32]),
                fingerprint_next: None,
            }]
        );
    }

    #[test]
    fn a_two_relay_card_round_trips_and_its_relays_are_signed() {
        let (mut card, id) = sample();
        let single = card.safety_number();
        card.more_relays = vec![more("relay-b.example.org:4433", 5, Some(4))];
        let text = card.sign(&id).unwrap();
        let back = RecipientCard::parse(&text).unwrap();
        assert_eq!(back, card);
        let relays = back.relays();
        assert_eq!(relays.len(), 2);
        assert_eq!(relays[0].addr, "127.0.0.1:4433");
        assert_eq!(
            relays[0].accepted_fingerprints(),
            [CertFingerprint([7; 32])]
        );
        assert_eq!(relays[1].addr, "relay-b.example.org:4433");
        assert_eq!(
            relays[1].accepted_fingerprints(),
            [CertFingerprint([5; 32]), CertFingerprint([4; 32])]
        );
        // The first relay's fields are where they always were: an old reader of `relay` sees it.
        let (body_b64, sig) = text[CARD_PREFIX.len()..].split_once('.').unwrap();
        let json = String::from_utf8(URL_SAFE_NO_PAD.decode(body_b64).unwrap()).unwrap();
        let extra = format!(
            r#""more_relays":[{{"relay":"relay-b.example.org:4433","relay_fingerprint":"{}","relay_fingerprint_next":"{}"}}],"#,
            CertFingerprint([5; 32]),
            CertFingerprint([4; 32])
        );
        assert_eq!(json, body_json(&card, &extra));
        // The further relays count in the safety number, each fingerprint on its own.
        assert_ne!(back.safety_number(), single);
        let mut other = card.clone();
        other.more_relays[0].fingerprint_next = None;
        assert_ne!(other.safety_number(), card.safety_number());
        // Signed: dropping or swapping a relay after signing breaks the signature.
        for forged_json in [
            body_json(&card, ""),
            json.replace("relay-b.example.org", "relay-x.example.org"),
        ] {
            let forged = format!(
                "{CARD_PREFIX}{}.{sig}",
                URL_SAFE_NO_PAD.encode(&forged_json)
            );
            assert!(matches!(
                RecipientCard::parse(&forged),
                Err(CardError::BadSignature)
            ));
        }
        // A card with the most relays, each with a next fingerprint, and the most staff keys
        // still fits the card length limit.
        let mut big = card.clone();
        big.recipients = (0..MAX_CARD_RECIPIENTS)
            .map(|_| {
                crate::age::hybrid::Identity::generate(&mut OsRng)
                    .to_public()
                    .into()
            })
            .collect();
        big.relay_fingerprint_next = Some(CertFingerprint([1; 32]));
        big.relay = format!("{}.example.org:4433", "r".repeat(60));
        big.more_relays = (0..MAX_CARD_RELAYS - 1)
            .map(|i| {
                more(
                    &format!("{}{i}.example.org:4433", "r".repeat(60)),
                    20 + i as u8,
                    Some(30 + i as u8),
                )
            })
            .collect();
        let text = big.sign(&id).unwrap();
        assert_eq!(RecipientCard::parse(&text).unwrap(), big);
    }

    #[test]
    fn post_quantum_cards_carry_hybrid_keys_and_never_mix() {
        let (mut card, id) = sample();
        let pq = || -> crate::age::AnyRecipient {
            crate::age::hybrid::Identity::generate(&mut OsRng)
                .to_public()
                .into()
        };
        card.recipients = vec![pq(), pq()];
        let text = card.sign(&id).unwrap();
        let back = RecipientCard::parse(&text).unwrap();
        assert_eq!(back, card);
        assert!(back.recipients.iter().all(|r| r.is_post_quantum()));
        // The safety number covers the whole hybrid key.
        let mut other = card.clone();
        other.recipients[1] = pq();
        assert_ne!(other.safety_number(), card.safety_number());
        // One classic key among hybrid ones would make every report only as strong as it.
        card.recipients[1] = Identity::generate(&mut OsRng).to_public().into();
        assert!(matches!(
            card.sign(&id),
            Err(CardError::Field {
                field: "recipients",
                ..
            })
        ));
    }

    #[test]
    fn too_many_relays_and_duplicate_addresses_are_refused() {
        let (mut card, id) = sample();
        let refused = |e: Result<String, CardError>| {
            matches!(
                e,
                Err(CardError::Field {
                    field: "more_relays",
                    ..
                })
            )
        };
        card.more_relays = (0..MAX_CARD_RELAYS)
            .map(|i| more(&format!("r{i}.example.org:4433"), 20 + i as u8, None))
            .collect();
        assert!(refused(card.sign(&id)), "one relay too many");
        card.more_relays.pop();
        assert!(card.sign(&id).is_ok(), "{MAX_CARD_RELAYS} relays in all");
        // The same address twice, even spelt in another case, or the first relay again.
        card.more_relays = vec![
            more("R.example.org:1", 1, None),
            more("r.EXAMPLE.org:1", 2, None),
        ];
        assert!(refused(card.sign(&id)));
        card.more_relays = vec![more("127.0.0.1:4433", 1, None)];
        assert!(refused(card.sign(&id)));
        card.more_relays = vec![more("no port", 1, None)];
        assert!(refused(card.sign(&id)));
        card.more_relays = vec![more("b.example.org:1", 1, Some(1))];
        assert!(refused(card.sign(&id)));
        // The same checks on a card made elsewhere and signed with the right key.
        card.more_relays.clear();
        let entry = |addr: &str| {
            format!(
                r#"{{"relay":"{addr}","relay_fingerprint":"{}"}}"#,
                CertFingerprint([3; 32])
            )
        };
        let five: Vec<String> = (0..MAX_CARD_RELAYS)
            .map(|i| entry(&format!("r{i}:1")))
            .collect();
        let dup = [entry("b:1"), entry("B:1")];
        for list in [five.join(","), dup.join(",")] {
            let json = body_json(&card, &format!(r#""more_relays":[{list}],"#));
            assert!(matches!(
                RecipientCard::parse(&sign_json(&id, &json)),
                Err(CardError::Field {
                    field: "more_relays",
                    ..
                })
            ));
        }
        // Unknown fields inside a relay entry are refused like anywhere else in the body.
        let odd = format!(
            r#""more_relays":[{{"relay":"b:1","relay_fingerprint":"{}","weight":2}}],"#,
            CertFingerprint([3; 32])
        );
        assert!(matches!(
            RecipientCard::parse(&sign_json(&id, &body_json(&card, &odd))),
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
