//! The native hybrid post-quantum recipient type (C2SP `age.md`, "The MLKEM768-X25519 (i.e.
//! X-Wing) hybrid post-quantum recipient type"): `age1pq1...` recipients,
//! `AGE-SECRET-KEY-PQ-1...` identities and the `mlkem768x25519` stanza.
//!
//! Why: a state that records a report's ciphertext today can keep it until X25519 falls to a
//! quantum computer; the people named in a torture report are in danger for decades. A hybrid
//! stanza stays closed unless *both* ML-KEM-768 and X25519 are broken.
//!
//! The KEM is the `x-wing` crate's, with the decapsulation key that refuses an all-zero X25519
//! shared secret (the spec's vectors require it); the HPKE base-mode wrapping of the file key is
//! [`super::hpke`]. No lattice code is written here.

use std::fmt;
use std::str::FromStr;

use bech32::primitives::decode::CheckedHrpstring;
use bech32::{Checksum, Hrp};
use rand_core::CryptoRngCore;
use secrecy::SecretString;
use x_wing::kem::{Decapsulator, KeyExport, TryDecapsulate};
use x_wing::{
    Ciphertext, DecapsulationKeyRejectNonContrib, EncapsulationKey, CIPHERTEXT_SIZE,
    DECAPSULATION_KEY_SIZE, ENCAPSULATION_KEY_SIZE, ENCAPSULATION_RANDOMNESS_SIZE,
};
use zeroize::Zeroizing;

use super::b64;
use super::format::Stanza;
use super::hpke;
use super::primitives::{FileKey, FILE_KEY_LEN, WRAPPED_KEY_LEN};
use super::AgeError;

/// Stanza type for hybrid recipients.
pub(crate) const STANZA_TAG: &str = "mlkem768x25519";
/// The HPKE `info` the spec fixes for this stanza.
const HPKE_INFO: &[u8] = b"age-encryption.org/mlkem768x25519";
const RECIPIENT_HRP: Hrp = Hrp::parse_unchecked("age1pq");
const IDENTITY_HRP: Hrp = Hrp::parse_unchecked("AGE-SECRET-KEY-PQ-");
/// Size of the encapsulated key (the stanza's argument): ML-KEM-768 ciphertext and an X25519
/// share.
pub const ENC_LEN: usize = CIPHERTEXT_SIZE;
/// Size of a recipient: the ML-KEM-768 encapsulation key and an X25519 public key.
pub const RECIPIENT_LEN: usize = ENCAPSULATION_KEY_SIZE;

/// Bech32 as age uses it, without BIP-173's 90-character limit.
///
/// A hybrid recipient is 1216 bytes, about 1950 characters, above even the `bech32` crate's
/// 1023-character bound for the Bech32 checksum. The checksum is the same BCH code (the
/// generator and target residue of BIP-173); only the length at which its error-detection
/// guarantee is stated differs, and age's reference implementation uses it at these lengths.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum LongBech32 {}

impl Checksum for LongBech32 {
    type MidstateRepr = u32;
    /// Long enough for a hybrid recipient (with room), short enough to bound the work a
    /// hostile string can cause before it is refused.
    const CODE_LENGTH: usize = 4096;
    const CHECKSUM_LENGTH: usize = 6;
    // BIP-173's generator coefficients.
    const GENERATOR_SH: [u32; 5] = [
        0x3b6a_57b2,
        0x2650_8e6d,
        0x1ea1_19fa,
        0x3d42_33dd,
        0x2a14_62b3,
    ];
    const TARGET_RESIDUE: u32 = 1;
}

/// Decodes a Bech32 string with the expected HRP into exactly `N` bytes.
fn decode_bech32<const N: usize>(s: &str, hrp: Hrp) -> Option<Zeroizing<Vec<u8>>> {
    if s.len() > LongBech32::CODE_LENGTH {
        return None;
    }
    let checked = CheckedHrpstring::new::<LongBech32>(s).ok()?;
    if checked.hrp() != hrp {
        return None;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(N));
    for b in checked.byte_iter() {
        if out.len() == N {
            return None;
        }
        out.push(b);
    }
    (out.len() == N).then_some(out)
}

/// A hybrid identity: the 32-byte seed the ML-KEM-768 and X25519 secret keys are expanded
/// from. Wiped on drop (the `x-wing` key zeroizes itself); its `Debug` output is redacted and
/// it has no `Display` (use [`Identity::to_string_secret`]).
#[derive(Clone)]
pub struct Identity(DecapsulationKeyRejectNonContrib);

impl Identity {
    /// A fresh identity from `rng` (the shells pass `&mut OsRng`).
    pub fn generate(rng: &mut (impl CryptoRngCore + ?Sized)) -> Self {
        let mut seed = Zeroizing::new([0u8; DECAPSULATION_KEY_SIZE]);
        rng.fill_bytes(seed.as_mut());
        Self::from_bytes(*seed)
    }

    /// An identity from its 32-byte seed.
    pub fn from_bytes(bytes: [u8; DECAPSULATION_KEY_SIZE]) -> Self {
        let bytes = Zeroizing::new(bytes);
        Identity(DecapsulationKeyRejectNonContrib::from(*bytes))
    }

    /// The 32-byte seed, wiped when the returned value drops.
    pub fn to_bytes(&self) -> Zeroizing<[u8; DECAPSULATION_KEY_SIZE]> {
        let mut out = Zeroizing::new([0u8; DECAPSULATION_KEY_SIZE]);
        let key = Zeroizing::new(self.0.to_bytes());
        out.copy_from_slice(key.as_slice());
        out
    }

    /// The recipient (public key) that encrypts to this identity.
    pub fn to_public(&self) -> Recipient {
        Recipient(self.0.encapsulation_key().clone())
    }

    /// The `AGE-SECRET-KEY-PQ-1...` encoding, kept in a [`SecretString`].
    pub fn to_string_secret(&self) -> SecretString {
        let bytes = self.to_bytes();
        let s = bech32::encode_upper::<LongBech32>(IDENTITY_HRP, bytes.as_slice())
            .expect("a 32-byte payload always fits");
        SecretString::from(s)
    }

    /// Tries to unwrap a validated stanza. `Ok(None)` means "not addressed to me" (ML-KEM's
    /// implicit rejection makes a wrong key show up only as a failed AEAD tag).
    fn unwrap(
        &self,
        enc: &Ciphertext,
        body: &[u8; WRAPPED_KEY_LEN],
    ) -> Result<Option<FileKey>, AgeError> {
        let shared = self
            .0
            .try_decapsulate(enc)
            .map_err(|_| AgeError::ZeroSharedSecret)?;
        let mut ss = Zeroizing::new([0u8; 32]);
        ss.copy_from_slice(shared.as_slice());
        drop(Zeroizing::new(shared));
        let Some(pt) = hpke::open(&ss, HPKE_INFO, body) else {
            return Ok(None);
        };
        let mut key = Zeroizing::new([0u8; FILE_KEY_LEN]);
        if pt.len() != FILE_KEY_LEN {
            return Ok(None);
        }
        key.copy_from_slice(&pt);
        Ok(Some(FileKey::from_secret(key)))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("hybrid::Identity(<redacted>)")
    }
}

impl FromStr for Identity {
    type Err = AgeError;

    fn from_str(s: &str) -> Result<Self, AgeError> {
        let bad = |reason| AgeError::InvalidIdentity { reason };
        if !s.starts_with("AGE-SECRET-KEY-PQ-1") {
            return Err(bad("it does not start with AGE-SECRET-KEY-PQ-1"));
        }
        let bytes = decode_bech32::<DECAPSULATION_KEY_SIZE>(s, IDENTITY_HRP).ok_or(bad(
            "its Bech32 encoding, checksum or length is invalid (mistyped or truncated?)",
        ))?;
        let mut seed = Zeroizing::new([0u8; DECAPSULATION_KEY_SIZE]);
        seed.copy_from_slice(&bytes);
        Ok(Identity::from_bytes(*seed))
    }
}

/// A hybrid recipient: the ML-KEM-768 encapsulation key and the X25519 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct Recipient(EncapsulationKey);

impl Recipient {
    /// The 1216 public-key bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_bytes().to_vec()
    }

    /// A recipient from its 1216 public-key bytes. Refuses an ML-KEM key that is not
    /// canonical (FIPS 203's modulus check) and an X25519 key of low order, which would make
    /// the X25519 half contribute nothing.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AgeError> {
        let bad = |reason| AgeError::InvalidRecipient { reason };
        if bytes.len() != RECIPIENT_LEN {
            return Err(bad("a post-quantum recipient must be 1216 bytes"));
        }
        let key = EncapsulationKey::try_from(bytes)
            .map_err(|_| bad("its ML-KEM-768 part is not a valid encapsulation key"))?;
        let mut x = [0u8; 32];
        x.copy_from_slice(&bytes[RECIPIENT_LEN - 32..]);
        // Clamped scalars are multiples of 8, so any scalar yields the all-zero secret
        // against a point of small order, and only against one.
        let probe = x25519_dalek::StaticSecret::from([0x42u8; 32]);
        if !probe
            .diffie_hellman(&x25519_dalek::PublicKey::from(x))
            .was_contributory()
        {
            return Err(bad("its X25519 part is a low-order point"));
        }
        Ok(Recipient(key))
    }

    /// Builds a stanza wrapping `file_key` to this recipient, with encapsulation randomness
    /// from `rng`.
    pub(crate) fn wrap(
        &self,
        file_key: &FileKey,
        rng: &mut (impl CryptoRngCore + ?Sized),
    ) -> Result<Stanza, AgeError> {
        let mut randomness = Zeroizing::new([0u8; ENCAPSULATION_RANDOMNESS_SIZE]);
        rng.fill_bytes(randomness.as_mut());
        let (enc, shared) = self.0.encapsulate_deterministic(&(*randomness).into());
        let mut ss = Zeroizing::new([0u8; 32]);
        ss.copy_from_slice(shared.as_slice());
        drop(Zeroizing::new(shared));
        Ok(Stanza {
            args: vec![STANZA_TAG.to_string(), b64::encode(enc.as_slice())],
            body: hpke::seal(&ss, HPKE_INFO, file_key.expose()),
        })
    }
}

/// Bytes one hybrid stanza takes in an encoded header: `-> mlkem768x25519 ` (18), the base64
/// encapsulated key (1494) and LF, then the base64 wrapped key (43) and LF.
pub const STANZA_LEN: usize = 18 + b64::raw_len(ENC_LEN) + 1 + 43 + 1;

/// Bytes of an encoded header holding `stanzas` hybrid stanzas (as
/// [`super::x25519::header_len`]).
pub const fn header_len(stanzas: usize) -> usize {
    super::format::VERSION_LINE.len() + 1 + stanzas * STANZA_LEN + 4 + 43 + 1
}

/// A stanza wrapping `file_key` to a throwaway hybrid key made here and dropped at once: a
/// decoy, indistinguishable from a recipient's stanza (see [`super::x25519::decoy_stanza`]).
pub(crate) fn decoy_stanza(
    file_key: &FileKey,
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> Result<Stanza, AgeError> {
    let nobody = Identity::generate(&mut *rng).to_public();
    nobody.wrap(file_key, rng)
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        bech32::encode_lower_to_fmt::<LongBech32, _>(f, RECIPIENT_HRP, self.0.to_bytes().as_slice())
            .map_err(|_| fmt::Error)
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.to_string();
        write!(f, "hybrid::Recipient({}…{})", &s[..16], &s[s.len() - 8..])
    }
}

impl FromStr for Recipient {
    type Err = AgeError;

    fn from_str(s: &str) -> Result<Self, AgeError> {
        let bad = |reason| AgeError::InvalidRecipient { reason };
        if !s.starts_with("age1pq1") {
            return Err(bad("it does not start with age1pq1"));
        }
        let bytes = decode_bech32::<RECIPIENT_LEN>(s, RECIPIENT_HRP).ok_or(bad(
            "its Bech32 encoding, checksum or length is invalid (mistyped or truncated?)",
        ))?;
        Recipient::from_bytes(&bytes)
    }
}

/// Finds the file key among `stanzas` with any of `identities`.
///
/// Every `mlkem768x25519` stanza is validated as the spec requires (exactly two arguments, a
/// canonical 1120-byte encapsulated key, a 32-byte body) before any decryption is tried; other
/// stanza types are skipped. `Ok(None)` means no identity matched.
pub(crate) fn unwrap_stanzas(
    identities: &[&Identity],
    stanzas: &[Stanza],
) -> Result<Option<FileKey>, AgeError> {
    let bad = |reason| AgeError::InvalidStanza {
        kind: STANZA_TAG,
        reason,
    };
    for st in stanzas.iter().filter(|s| s.tag() == STANZA_TAG) {
        if st.args.len() != 2 {
            return Err(bad("it must have exactly one argument after the type"));
        }
        let enc = b64::decode_exact::<ENC_LEN>(st.args[1].as_bytes()).ok_or(bad(
            "the encapsulated key is not canonical base64 of 1120 bytes",
        ))?;
        let enc = Ciphertext::from(enc);
        let body: &[u8; WRAPPED_KEY_LEN] = st
            .body
            .as_slice()
            .try_into()
            .map_err(|_| bad("the body is not exactly 32 bytes"))?;
        for id in identities {
            if let Some(fk) = id.unwrap(&enc, body)? {
                return Ok(Some(fk));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;
    use secrecy::ExposeSecret;

    // The example identity from the age specification, and the start and end of its recipient.
    const SPEC_IDENTITY: &str =
        "AGE-SECRET-KEY-PQ-1XX76JRALNLXDMEW0CRK45QMCCH4X06SE84UN3VPM33W6HWDX0H3SK3ZQFR";

    #[test]
    fn spec_example_identity() {
        let id: Identity = SPEC_IDENTITY.parse().unwrap();
        assert_eq!(id.to_string_secret().expose_secret(), SPEC_IDENTITY);
        let r = id.to_public().to_string();
        assert!(
            r.starts_with("age1pq1x34nzsvr0rxjsgdn8zgyhfe8j7ceq5r9rdelkjuh3y235jzxshfg87pzf5"),
            "{r}"
        );
        assert_eq!(r.parse::<Recipient>().unwrap(), id.to_public());
        assert!(!format!("{id:?}").contains("XX76"));
    }

    #[test]
    fn rejects_bad_strings() {
        let id = Identity::generate(&mut OsRng);
        let r = id.to_public().to_string();
        assert!(r.to_uppercase().parse::<Recipient>().is_err());
        let mut flipped = r.clone();
        let c = if flipped.as_bytes()[20] == b'q' {
            "p"
        } else {
            "q"
        };
        flipped.replace_range(20..21, c);
        assert!(flipped.parse::<Recipient>().is_err());
        assert!(r[..r.len() - 1].parse::<Recipient>().is_err());
        assert!(SPEC_IDENTITY.to_lowercase().parse::<Identity>().is_err());
        assert!(SPEC_IDENTITY.parse::<Recipient>().is_err());
        assert!("age1pq1".parse::<Recipient>().is_err());
        assert!("age1pq1".repeat(1000).parse::<Recipient>().is_err());
        // An X25519 part of low order (here the identity point, all zero) is refused.
        let mut bytes = id.to_public().to_bytes();
        bytes[RECIPIENT_LEN - 32..].fill(0);
        assert!(Recipient::from_bytes(&bytes).is_err());
        // An ML-KEM part with a coefficient above the modulus is refused.
        let mut bytes = id.to_public().to_bytes();
        bytes[0] = 0xff;
        bytes[1] = 0xff;
        assert!(Recipient::from_bytes(&bytes).is_err());
    }

    #[test]
    fn wrap_unwrap_and_stanza_length() {
        let id = Identity::generate(&mut OsRng);
        let fk = FileKey::generate(&mut OsRng);
        let st = id.to_public().wrap(&fk, &mut OsRng).unwrap();
        assert_eq!(st.args[1].len(), b64::raw_len(ENC_LEN));
        let other = Identity::generate(&mut OsRng);
        let got = unwrap_stanzas(&[&other, &id], std::slice::from_ref(&st))
            .unwrap()
            .unwrap();
        assert_eq!(got.expose(), fk.expose());
        assert!(unwrap_stanzas(&[&other], &[st]).unwrap().is_none());
    }
}
