//! Prekeys: short-lived hybrid keys an NGO publishes, signed, at its relays, so that a report
//! sealed today cannot be opened later with the NGO's long-term keys alone (issue 16).
//!
//! Why: a service that copies a relay's disk (or records its traffic) and later seizes an NGO
//! laptop holds everything needed to open every report ever sealed to that NGO's staff keys.
//! With a prekey, a report is sealed twice: the usual envelope to the staff keys, and that
//! envelope again to the NGO's current prekey ([`wrap`]). The NGO removes the outer layer when
//! it fetches the report (and keeps the inner envelope, its archive, under its staff keys), and
//! destroys the prekey's secret once the prekey has expired and every report sealed to it has
//! been fetched. From then on the relay's copy (or a recording) opens for nobody, whatever keys
//! are seized.
//!
//! A *bundle* is what the relay stores and hands out: the NGO's identity key and mailbox (what
//! binds the prekey to the card), the prekey's validity, and the hybrid recipient, signed by the
//! NGO identity key under the [`SignatureDomain::Prekey`] domain. The relay cannot make one,
//! and a reporter refuses one that is not signed by the card's key, is for another mailbox, or
//! has expired; the report then goes with the long-term protection only, and the reporter is
//! told so.
//!
//! Layout of a bundle (big-endian integers):
//!
//! | size | field                                                        |
//! |------|--------------------------------------------------------------|
//! | 13   | magic `vigil-prekey` and version byte `0x01`                 |
//! | 32   | the NGO's identity key (Ed25519)                             |
//! | 32   | the NGO's mailbox id                                         |
//! | 8    | created, Unix seconds                                        |
//! | 8    | expires, Unix seconds                                        |
//! | 1216 | the prekey: an age `mlkem768x25519` recipient                |
//! | 64   | Ed25519 signature, domain `prekey`, over everything above    |

use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::age::{self, hybrid, AgeError};
use crate::ids::MailboxId;
use crate::keys::{PublicSigningKey, SignatureDomain, SigningSecret};
use crate::reader::{ReadError, Reader};

impl From<ReadError> for PrekeyError {
    fn from(_: ReadError) -> Self {
        PrekeyError::Malformed("truncated or with trailing bytes")
    }
}

const MAGIC: &[u8; 13] = b"vigil-prekey\x01";
/// Length of a signed bundle.
pub const BUNDLE_LEN: usize = MAGIC.len() + 32 + 32 + 8 + 8 + hybrid::RECIPIENT_LEN + 64;
/// Longest validity a reporter accepts in a bundle. A prekey that lives for months protects
/// little more than a long-term key; a bundle claiming more is refused.
pub const MAX_LIFETIME_SECS: u64 = 31 * 86_400;
/// How far in the future a bundle's creation time may be (clocks disagree).
pub const MAX_CLOCK_SKEW_SECS: u64 = 600;

/// Why a bundle was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PrekeyError {
    /// Not a bundle of this version, or the wrong length.
    #[error("the relay's prekey for this NGO is malformed ({0}); the report goes with the NGO's long-term keys only")]
    Malformed(&'static str),
    /// The signature does not verify under the card's identity key: forged or altered (by the
    /// relay or on the way).
    #[error("the relay's prekey for this NGO is not signed by the NGO's key on your card (forged or altered); it was refused and the report goes with the NGO's long-term keys only")]
    BadSignature,
    /// Signed for another mailbox, or another NGO's bundle.
    #[error("the relay's prekey belongs to another NGO or mailbox than your card's; it was refused and the report goes with the NGO's long-term keys only")]
    WrongNgo,
    /// Past its expiry: the NGO may have destroyed its secret already.
    #[error("the relay's prekey for this NGO expired (at {expires}, Unix time); it was refused and the report goes with the NGO's long-term keys only")]
    Expired {
        /// When it expired.
        expires: u64,
    },
    /// Created in the future, or claiming a longer life than [`MAX_LIFETIME_SECS`].
    #[error("the relay's prekey for this NGO has implausible dates ({0}); it was refused and the report goes with the NGO's long-term keys only")]
    BadDates(&'static str),
    /// The hybrid key inside does not parse.
    #[error("the relay's prekey for this NGO holds an invalid key ({0}); the report goes with the NGO's long-term keys only")]
    Key(&'static str),
}

/// A prekey, as the NGO publishes it and a reporter verifies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrekeyBundle {
    /// The NGO's identity key (the card's `identity_key`).
    pub ngo: PublicSigningKey,
    /// The NGO's mailbox (the card's `mailbox`).
    pub mailbox: MailboxId,
    /// When the NGO made it.
    pub created: u64,
    /// After this, reporters no longer seal to it.
    pub expires: u64,
    /// The prekey itself.
    pub recipient: hybrid::Recipient,
}

impl PrekeyBundle {
    /// The bytes that are signed.
    fn body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(BUNDLE_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.ngo.to_bytes());
        out.extend_from_slice(self.mailbox.as_bytes());
        out.extend_from_slice(&self.created.to_be_bytes());
        out.extend_from_slice(&self.expires.to_be_bytes());
        out.extend_from_slice(&self.recipient.to_bytes());
        out
    }

    /// The signed bundle. `identity` must be the key named in `ngo`.
    pub fn sign(&self, identity: &SigningSecret) -> Vec<u8> {
        let mut out = self.body();
        let sig = identity.sign(SignatureDomain::Prekey, &out);
        out.extend_from_slice(&sig);
        out
    }

    /// A short id of the prekey (the first 8 bytes of SHA-256 of its recipient, in hex), to
    /// name it in files and messages.
    pub fn id(&self) -> String {
        id_of(&self.recipient)
    }

    /// Parse a bundle and check it for the card that names `ngo` and `mailbox`, at `now`:
    /// signature first, then binding, then dates.
    pub fn verify(
        bytes: &[u8],
        ngo: &PublicSigningKey,
        mailbox: &MailboxId,
        now: u64,
    ) -> Result<Self, PrekeyError> {
        if bytes.len() != BUNDLE_LEN {
            return Err(PrekeyError::Malformed("wrong length"));
        }
        let (body, sig) = bytes.split_at(BUNDLE_LEN - 64);
        let mut r: Reader<'_, PrekeyError> = Reader::new(body);
        let magic = r.take(MAGIC.len(), "magic")?;
        if magic != MAGIC {
            return Err(PrekeyError::Malformed("not a Vigil prekey of version 1"));
        }
        let key: [u8; 32] = r.array("identity key")?;
        let signer = PublicSigningKey::from_bytes(&key).map_err(|_| PrekeyError::BadSignature)?;
        let sig: [u8; 64] = sig
            .try_into()
            .map_err(|_| PrekeyError::Malformed("signature"))?;
        // Verified with the card's key, not the one inside: a bundle signed by anyone else
        // fails here whatever it claims.
        if signer != *ngo {
            return Err(PrekeyError::WrongNgo);
        }
        ngo.verify(SignatureDomain::Prekey, body, &sig)
            .map_err(|_| PrekeyError::BadSignature)?;
        let mb = MailboxId(r.array("mailbox")?);
        if mb != *mailbox {
            return Err(PrekeyError::WrongNgo);
        }
        let created = r.u64("created")?;
        let expires = r.u64("expires")?;
        let recipient_bytes = r.take(hybrid::RECIPIENT_LEN, "prekey")?;
        r.finish()?;
        if expires <= created {
            return Err(PrekeyError::BadDates("it expires before it was made"));
        }
        if expires - created > MAX_LIFETIME_SECS {
            return Err(PrekeyError::BadDates("it claims to live more than 31 days"));
        }
        if created > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
            return Err(PrekeyError::BadDates("it was made in the future"));
        }
        if expires <= now {
            return Err(PrekeyError::Expired { expires });
        }
        let recipient = hybrid::Recipient::from_bytes(recipient_bytes).map_err(|e| match e {
            AgeError::InvalidRecipient { reason } => PrekeyError::Key(reason),
            _ => PrekeyError::Key("not a post-quantum recipient"),
        })?;
        Ok(PrekeyBundle {
            ngo: signer,
            mailbox: mb,
            created,
            expires,
            recipient,
        })
    }
}

/// The short id of a prekey recipient (see [`PrekeyBundle::id`]).
pub fn id_of(recipient: &hybrid::Recipient) -> String {
    hex::encode(&Sha256::digest(recipient.to_bytes())[..8])
}

/// Seal an envelope (already sealed to the staff keys) once more, to the prekey: an ordinary
/// age file with one `mlkem768x25519` stanza whose payload is the envelope.
pub fn wrap(
    envelope: &[u8],
    prekey: &hybrid::Recipient,
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> Result<Vec<u8>, AgeError> {
    age::encrypt_to_vec(std::slice::from_ref(prekey), envelope, rng)
}

/// Bytes a prekey layer adds to an envelope: the header with one hybrid stanza, the payload
/// nonce and one more tag per 64 KiB chunk of the envelope.
pub fn wrapped_len(envelope_len: usize) -> usize {
    let chunks = envelope_len.div_ceil(age::chunk::CHUNK_SIZE).max(1);
    hybrid::header_len(1) + age::chunk::NONCE_SIZE + envelope_len + chunks * age::chunk::TAG_SIZE
}

/// What [`unwrap`] found: the index of the prekey that opened the layer, and the envelope
/// inside (wiped on drop).
pub type Unwrapped = (usize, Zeroizing<Vec<u8>>);

/// Remove the prekey layer with any of `prekeys`, if `bytes` has one: `Ok(Some((index,
/// envelope)))` names which prekey opened it; `Ok(None)` means the bytes are not a prekey layer
/// these keys open (an envelope without one, or for a prekey destroyed already). A prekey layer
/// has exactly one hybrid stanza, an envelope sixteen, so envelopes are never tried.
pub fn unwrap(
    bytes: &[u8],
    prekeys: &[hybrid::Identity],
    max_len: usize,
) -> Result<Option<Unwrapped>, AgeError> {
    if prekeys.is_empty() || !is_prekey_layer(bytes) {
        return Ok(None);
    }
    for (i, key) in prekeys.iter().enumerate() {
        match age::decrypt_from_slice(bytes, std::slice::from_ref(key), max_len) {
            Ok(inner) => return Ok(Some((i, inner))),
            Err(AgeError::NoMatch) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// True when `bytes` look like a prekey layer: a binary age file whose header holds exactly one
/// `mlkem768x25519` stanza.
pub fn is_prekey_layer(bytes: &[u8]) -> bool {
    match age::format::Header::parse(bytes) {
        Ok((h, _)) => h.stanzas.len() == 1 && h.stanzas[0].tag() == "mlkem768x25519",
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    struct Ngo {
        id: SigningSecret,
        mailbox: MailboxId,
        prekey: hybrid::Identity,
    }

    fn ngo() -> Ngo {
        Ngo {
            id: SigningSecret::generate(&mut OsRng),
            mailbox: MailboxId([9; 32]),
            prekey: hybrid::Identity::generate(&mut OsRng),
        }
    }

    fn bundle(n: &Ngo, created: u64, expires: u64) -> PrekeyBundle {
        PrekeyBundle {
            ngo: n.id.public(),
            mailbox: n.mailbox,
            created,
            expires,
            recipient: n.prekey.to_public(),
        }
    }

    #[test]
    fn a_signed_bundle_verifies_for_its_card() {
        let n = ngo();
        let b = bundle(&n, 1_000, 1_000 + 7 * 86_400);
        let bytes = b.sign(&n.id);
        assert_eq!(bytes.len(), BUNDLE_LEN);
        let got = PrekeyBundle::verify(&bytes, &n.id.public(), &n.mailbox, 2_000).unwrap();
        assert_eq!(got, b);
        assert_eq!(got.id().len(), 16);
    }

    #[test]
    fn forged_altered_foreign_and_stale_bundles_are_refused() {
        let n = ngo();
        let b = bundle(&n, 1_000, 1_000 + 86_400);
        let good = b.sign(&n.id);
        let now = 2_000;
        // Signed by someone else (the relay, say) in the NGO's name.
        let mallory = SigningSecret::generate(&mut OsRng);
        let forged = b.sign(&mallory);
        assert_eq!(
            PrekeyBundle::verify(&forged, &n.id.public(), &n.mailbox, now),
            Err(PrekeyError::BadSignature)
        );
        // The relay's own key inside, its own signature: still not the card's key.
        let mut theirs = b.clone();
        theirs.ngo = mallory.public();
        assert_eq!(
            PrekeyBundle::verify(&theirs.sign(&mallory), &n.id.public(), &n.mailbox, now),
            Err(PrekeyError::WrongNgo)
        );
        // One bit of the prekey changed.
        let mut altered = good.clone();
        altered[200] ^= 1;
        assert_eq!(
            PrekeyBundle::verify(&altered, &n.id.public(), &n.mailbox, now),
            Err(PrekeyError::BadSignature)
        );
        // Another mailbox's bundle, replayed.
        assert_eq!(
            PrekeyBundle::verify(&good, &n.id.public(), &MailboxId([8; 32]), now),
            Err(PrekeyError::WrongNgo)
        );
        // Expired, from the future, too long-lived, malformed.
        assert_eq!(
            PrekeyBundle::verify(&good, &n.id.public(), &n.mailbox, 1_000 + 86_400),
            Err(PrekeyError::Expired {
                expires: 1_000 + 86_400
            })
        );
        let future = bundle(&n, now + 3_600, now + 7_200).sign(&n.id);
        assert!(matches!(
            PrekeyBundle::verify(&future, &n.id.public(), &n.mailbox, now),
            Err(PrekeyError::BadDates(_))
        ));
        let forever = bundle(&n, 1_000, 1_000 + 365 * 86_400).sign(&n.id);
        assert!(matches!(
            PrekeyBundle::verify(&forever, &n.id.public(), &n.mailbox, now),
            Err(PrekeyError::BadDates(_))
        ));
        assert!(matches!(
            PrekeyBundle::verify(&good[..100], &n.id.public(), &n.mailbox, now),
            Err(PrekeyError::Malformed(_))
        ));
        assert!(PrekeyError::BadSignature
            .to_string()
            .contains("long-term keys only"));
    }

    #[test]
    fn the_prekey_layer_opens_only_with_the_prekey() {
        let n = ngo();
        let staff = hybrid::Identity::generate(&mut OsRng);
        let envelope =
            age::encrypt_to_vec_with_decoys(&[staff.to_public()], 16, b"report", &mut OsRng)
                .unwrap();
        assert!(!is_prekey_layer(&envelope));
        let sealed = wrap(&envelope, &n.prekey.to_public(), &mut OsRng).unwrap();
        assert!(is_prekey_layer(&sealed));
        assert_eq!(sealed.len(), wrapped_len(envelope.len()));
        // The staff key alone does not open it: it needs the prekey first.
        assert!(age::decrypt_from_slice(&sealed, std::slice::from_ref(&staff), 1 << 20).is_err());
        let other = hybrid::Identity::generate(&mut OsRng);
        assert!(unwrap(&sealed, std::slice::from_ref(&other), 1 << 20)
            .unwrap()
            .is_none());
        let (i, inner) = unwrap(&sealed, &[other, n.prekey.clone()], 1 << 20)
            .unwrap()
            .unwrap();
        assert_eq!(i, 1);
        assert_eq!(inner.as_slice(), envelope.as_slice());
        // An envelope without the layer is left alone.
        assert!(unwrap(&envelope, std::slice::from_ref(&n.prekey), 1 << 20)
            .unwrap()
            .is_none());
    }
}
