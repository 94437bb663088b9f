//! The native X25519 recipient type: `age1...` recipients, `AGE-SECRET-KEY-1...` identities
//! and the `X25519` stanza.

use std::fmt;
use std::str::FromStr;

use bech32::primitives::decode::CheckedHrpstring;
use bech32::{Bech32, Hrp};
use rand_core::CryptoRngCore;
use secrecy::SecretString;
use subtle::ConstantTimeEq;
use x25519_dalek::{EphemeralSecret, PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::b64;
use super::format::Stanza;
use super::primitives::{hkdf, unwrap_file_key, wrap_file_key, FileKey, WRAPPED_KEY_LEN};
use super::AgeError;

/// Stanza type for X25519 recipients.
pub(crate) const STANZA_TAG: &str = "X25519";
const KDF_INFO: &[u8] = b"age-encryption.org/v1/X25519";
const RECIPIENT_HRP: Hrp = Hrp::parse_unchecked("age");
const IDENTITY_HRP: Hrp = Hrp::parse_unchecked("AGE-SECRET-KEY-");
/// `age1` + 52 data characters + 6 checksum characters.
const RECIPIENT_STR_LEN: usize = 62;
/// `AGE-SECRET-KEY-1` + 52 data characters + 6 checksum characters.
const IDENTITY_STR_LEN: usize = 74;

/// Decodes a Bech32 (not Bech32m) string with the expected HRP into 32 bytes.
fn decode_bech32(s: &str, hrp: Hrp) -> Option<Zeroizing<[u8; 32]>> {
    let checked = CheckedHrpstring::new::<Bech32>(s).ok()?;
    if checked.hrp() != hrp {
        return None;
    }
    let mut out = Zeroizing::new([0u8; 32]);
    let mut n = 0;
    for b in checked.byte_iter() {
        *out.get_mut(n)? = b;
        n += 1;
    }
    (n == 32).then_some(out)
}

/// An X25519 identity: the secret half of a key pair. Wiped on drop; its `Debug` output is
/// redacted and it has no `Display` (use [`Identity::to_string_secret`]).
pub struct Identity(StaticSecret);

impl Identity {
    /// A fresh identity from `rng` (the shells pass `&mut OsRng`).
    pub fn generate(rng: &mut (impl CryptoRngCore + ?Sized)) -> Self {
        Identity(StaticSecret::random_from_rng(rng))
    }

    /// An identity from its 32 secret bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let bytes = Zeroizing::new(bytes);
        Identity(StaticSecret::from(*bytes))
    }

    /// The 32 secret bytes, wiped when the returned value drops.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The recipient (public key) that encrypts to this identity.
    pub fn to_public(&self) -> Recipient {
        Recipient(PublicKey::from(&self.0))
    }

    /// The `AGE-SECRET-KEY-1...` encoding, kept in a [`SecretString`].
    pub fn to_string_secret(&self) -> SecretString {
        let bytes = self.to_bytes();
        // 32 bytes encode to 74 characters, within Bech32's 90-character limit.
        let s = bech32::encode_upper::<Bech32>(IDENTITY_HRP, bytes.as_slice())
            .expect("a 32-byte payload always fits in Bech32");
        SecretString::from(s)
    }

    /// Tries to unwrap a validated X25519 stanza. `Ok(None)` means "not addressed to me".
    fn unwrap(
        &self,
        share: &[u8; 32],
        body: &[u8; WRAPPED_KEY_LEN],
    ) -> Result<Option<FileKey>, AgeError> {
        let their = PublicKey::from(*share);
        let shared = self.0.diffie_hellman(&their);
        if bool::from(shared.as_bytes().ct_eq(&[0u8; 32])) {
            return Err(AgeError::ZeroSharedSecret);
        }
        let mut salt = [0u8; 64];
        salt[..32].copy_from_slice(share);
        salt[32..].copy_from_slice(PublicKey::from(&self.0).as_bytes());
        let key = hkdf(&salt, shared.as_bytes(), KDF_INFO);
        Ok(unwrap_file_key(&key, body))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Identity")
            .field(&format_args!("<redacted; public {}>", self.to_public()))
            .finish()
    }
}

impl FromStr for Identity {
    type Err = AgeError;

    fn from_str(s: &str) -> Result<Self, AgeError> {
        let bad = |reason| AgeError::InvalidIdentity { reason };
        if s.starts_with("AGE-SECRET-KEY-PQ-") {
            return Err(bad(
                "it is a post-quantum (AGE-SECRET-KEY-PQ-1...) identity where an X25519 one is needed",
            ));
        }
        if !s.starts_with("AGE-SECRET-KEY-1") {
            return Err(bad("it does not start with AGE-SECRET-KEY-1"));
        }
        if s.len() != IDENTITY_STR_LEN {
            return Err(bad("it has the wrong length"));
        }
        let bytes = decode_bech32(s, IDENTITY_HRP).ok_or(bad(
            "its Bech32 encoding or checksum is invalid (mistyped or truncated?)",
        ))?;
        Ok(Identity(StaticSecret::from(*bytes)))
    }
}

/// An X25519 recipient: the public key files are encrypted to.
#[derive(Clone, PartialEq, Eq)]
pub struct Recipient(PublicKey);

impl Recipient {
    /// The 32 public-key bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// A recipient from its 32 public-key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Recipient(PublicKey::from(bytes))
    }

    /// Builds a stanza wrapping `file_key` to this recipient with a fresh ephemeral key from
    /// `rng`.
    pub(crate) fn wrap(
        &self,
        file_key: &FileKey,
        rng: &mut (impl CryptoRngCore + ?Sized),
    ) -> Result<Stanza, AgeError> {
        let eph = EphemeralSecret::random_from_rng(rng);
        let share = PublicKey::from(&eph);
        let shared = eph.diffie_hellman(&self.0);
        if bool::from(shared.as_bytes().ct_eq(&[0u8; 32])) {
            return Err(AgeError::InvalidRecipient {
                reason: "it is a low-order point that would leak the file key",
            });
        }
        let mut salt = [0u8; 64];
        salt[..32].copy_from_slice(share.as_bytes());
        salt[32..].copy_from_slice(self.0.as_bytes());
        let key = hkdf(&salt, shared.as_bytes(), KDF_INFO);
        Ok(Stanza {
            args: vec![STANZA_TAG.to_string(), b64::encode(share.as_bytes())],
            body: wrap_file_key(&key, file_key),
        })
    }
}

/// Bytes one X25519 stanza takes in an encoded header: `-> X25519 ` (10), the base64 share
/// (43) and LF, then the base64 wrapped key (43) and LF. Every stanza has this length, whoever
/// it is for, which is what lets a header with a fixed stanza count have a fixed length.
pub const STANZA_LEN: usize = 10 + 43 + 1 + 43 + 1;

/// Bytes of an encoded header holding `stanzas` X25519 stanzas: the version line, the stanzas,
/// and the MAC line (`--- `, 43 base64 characters, LF). The payload nonce is not included.
pub const fn header_len(stanzas: usize) -> usize {
    super::format::VERSION_LINE.len() + 1 + stanzas * STANZA_LEN + 4 + 43 + 1
}

/// A stanza that wraps `file_key` to a throwaway key made here and dropped at once: a decoy,
/// made exactly as a real stanza is (fresh ephemeral share, real HKDF and ChaCha20-Poly1305),
/// so nothing in the header tells it from a recipient's. The throwaway secret is an
/// [`EphemeralSecret`], which cannot be copied or exported and is wiped when dropped; nobody,
/// the sender included, can open the decoy afterwards.
pub(crate) fn decoy_stanza(
    file_key: &FileKey,
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> Result<Stanza, AgeError> {
    let throwaway = EphemeralSecret::random_from_rng(&mut *rng);
    let nobody = Recipient(PublicKey::from(&throwaway));
    drop(throwaway);
    nobody.wrap(file_key, rng)
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        bech32::encode_lower_to_fmt::<Bech32, _>(f, RECIPIENT_HRP, self.0.as_bytes())
            .map_err(|_| fmt::Error)
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipient({self})")
    }
}

impl FromStr for Recipient {
    type Err = AgeError;

    fn from_str(s: &str) -> Result<Self, AgeError> {
        let bad = |reason| AgeError::InvalidRecipient { reason };
        if s.starts_with("age1pq1") {
            return Err(bad(
                "it is a post-quantum (age1pq1...) recipient where an X25519 one is needed",
            ));
        }
        if !s.starts_with("age1") {
            return Err(bad("it does not start with age1"));
        }
        if s.len() != RECIPIENT_STR_LEN {
            return Err(bad("it has the wrong length (a plugin or SSH key?)"));
        }
        let bytes = decode_bech32(s, RECIPIENT_HRP).ok_or(bad(
            "its Bech32 encoding or checksum is invalid (mistyped or truncated?)",
        ))?;
        Ok(Recipient(PublicKey::from(*bytes)))
    }
}

/// Finds the file key among `stanzas` with any of `identities`.
///
/// Every `X25519` stanza is validated as the spec requires (exactly two arguments, a canonical
/// 32-byte share, a 32-byte body) before any decryption is tried; other stanza types are
/// skipped. `Ok(None)` means no identity matched.
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
        let share = b64::decode_exact::<32>(st.args[1].as_bytes()).ok_or(bad(
            "the ephemeral share is not canonical base64 of 32 bytes",
        ))?;
        let body: &[u8; WRAPPED_KEY_LEN] = st
            .body
            .as_slice()
            .try_into()
            .map_err(|_| bad("the body is not exactly 32 bytes"))?;
        for id in identities {
            if let Some(fk) = id.unwrap(&share, body)? {
                return Ok(Some(fk));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::OsRng;
    use secrecy::ExposeSecret;

    // The example pair from the age specification.
    const SPEC_IDENTITY: &str =
        "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
    const SPEC_RECIPIENT: &str = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";

    #[test]
    fn spec_example_pair() {
        let id: Identity = SPEC_IDENTITY.parse().unwrap();
        assert_eq!(id.to_public().to_string(), SPEC_RECIPIENT);
        assert_eq!(id.to_string_secret().expose_secret(), SPEC_IDENTITY);
        let r: Recipient = SPEC_RECIPIENT.parse().unwrap();
        assert_eq!(r, id.to_public());
        assert!(!format!("{id:?}").contains("GFPYY"));
    }

    #[test]
    fn rejects_bad_strings() {
        assert!(SPEC_RECIPIENT.to_uppercase().parse::<Recipient>().is_err());
        assert!(SPEC_IDENTITY.to_lowercase().parse::<Identity>().is_err());
        let mut flipped = SPEC_RECIPIENT.to_string();
        flipped.replace_range(10..11, "q");
        assert!(flipped.parse::<Recipient>().is_err());
        assert!(SPEC_IDENTITY.parse::<Recipient>().is_err());
        assert!(SPEC_RECIPIENT.parse::<Identity>().is_err());
        assert!("".parse::<Recipient>().is_err());
        assert!("age1".parse::<Recipient>().is_err());
    }

    #[test]
    fn wrap_unwrap() {
        let id = Identity::generate(&mut OsRng);
        let fk = FileKey::generate(&mut OsRng);
        let st = id.to_public().wrap(&fk, &mut OsRng).unwrap();
        let other = Identity::generate(&mut OsRng);
        let got = unwrap_stanzas(&[&other, &id], std::slice::from_ref(&st))
            .unwrap()
            .unwrap();
        assert_eq!(got.expose(), fk.expose());
        assert!(unwrap_stanzas(&[&other], &[st]).unwrap().is_none());
    }

    proptest! {
        #[test]
        fn bech32_round_trip(bytes in any::<[u8; 32]>()) {
            let id = Identity::from_bytes(bytes);
            let s = id.to_string_secret();
            let back: Identity = s.expose_secret().parse().unwrap();
            prop_assert_eq!(*back.to_bytes(), *id.to_bytes());
            let r = Recipient::from_bytes(bytes);
            let back: Recipient = r.to_string().parse().unwrap();
            prop_assert_eq!(back, r);
        }
    }
}
