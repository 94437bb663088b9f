//! Signing keys and domain-separated signatures.
//!
//! Every signature Vigil makes is over `"vigil/v1/" || domain || "\0" || message`, where the
//! domain names what is being signed (a card, an envelope). A signature made for one purpose can
//! therefore never be presented as a signature for another: a relay-auth proof is not a card, a
//! card is not a report.

use ed25519_dalek::{Signer, Verifier};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroizing;

/// Why a key or signature was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// A public key's bytes are not a valid Ed25519 point.
    #[error("not a valid Ed25519 public key; get the card or key again from its owner")]
    BadPublicKey,
    /// A signature did not verify under the key that claims to have made it.
    #[error("signature does not verify for the claimed key: the data was altered or signed by someone else")]
    BadSignature,
    /// Key text was not the expected encoding.
    #[error("key is not 64 hex digits; the key file may be damaged")]
    BadEncoding,
}

/// What a signature is for. Each purpose has its own domain string, so signatures cannot be
/// moved between purposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureDomain {
    /// A recipient card, signed by the NGO's identity key.
    Card,
    /// The inner layer of a report envelope, signed by the reporter.
    Envelope,
    /// A delivery receipt of a report's thread (`crate::thread`), signed by the NGO's identity
    /// key: "this report reached us". A domain of its own so that no other signature of the
    /// NGO's (a card, a reply) can be shown to a reporter as a receipt.
    Receipt,
    /// A reply in a report's thread (`crate::thread`): the NGO's, signed by its identity key,
    /// or the reporter's answer, signed by the reporter's key. Apart from [`Self::Envelope`]
    /// so that an answer can never be taken for a report, and from [`Self::Receipt`] so that a
    /// reply is never counted as a receipt nor a receipt as a (blank) reply.
    Reply,
    /// A prekey bundle (`crate::prekey`), signed by the NGO's identity key: "seal reports to
    /// this short-lived key too". Apart from [`Self::Card`] so that no card signature can be
    /// passed off as a prekey, nor a prekey as a card.
    Prekey,
}

impl SignatureDomain {
    fn label(self) -> &'static [u8] {
        match self {
            SignatureDomain::Card => b"card",
            SignatureDomain::Envelope => b"envelope",
            SignatureDomain::Receipt => b"receipt",
            SignatureDomain::Reply => b"reply",
            SignatureDomain::Prekey => b"prekey",
        }
    }

    /// The exact bytes that are signed for `message` in this domain. They are a copy of the
    /// message, which may be a report's plaintext (the envelope's inner layer), so they are wiped
    /// when dropped; the exact capacity means the buffer never moves and leaves no copy behind.
    pub fn signed_bytes(self, message: &[u8]) -> zeroize::Zeroizing<Vec<u8>> {
        let label = self.label();
        let mut out =
            zeroize::Zeroizing::new(Vec::with_capacity(9 + label.len() + 1 + message.len()));
        out.extend_from_slice(b"vigil/v1/");
        out.extend_from_slice(label);
        out.push(0);
        out.extend_from_slice(message);
        out
    }
}

/// An Ed25519 signing key. No `Debug`, no `Display`: it never reaches a log line. The inner
/// dalek key zeroizes itself on drop.
pub struct SigningSecret(ed25519_dalek::SigningKey);

impl SigningSecret {
    /// A fresh key from `rng` (the shells pass `&mut OsRng`).
    pub fn generate(rng: &mut (impl CryptoRngCore + ?Sized)) -> Self {
        Self(ed25519_dalek::SigningKey::generate(rng))
    }

    /// Rebuild from a 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// The seed as hex, for writing to a 0600 key file; wiped when dropped.
    pub fn to_hex_secret(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.to_bytes()))
    }

    /// Parse the hex written by [`Self::to_hex_secret`].
    pub fn from_hex_secret(text: &str) -> Result<Self, KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), seed.as_mut()).map_err(|_| KeyError::BadEncoding)?;
        Ok(Self::from_seed(&seed))
    }

    /// The public half.
    pub fn public(&self) -> PublicSigningKey {
        PublicSigningKey(self.0.verifying_key())
    }

    /// The dalek key, for code (such as relay authentication) that signs protocol messages
    /// built elsewhere with their own domain separation.
    pub fn as_dalek(&self) -> &ed25519_dalek::SigningKey {
        &self.0
    }

    /// Sign `message` in `domain`.
    pub fn sign(&self, domain: SignatureDomain, message: &[u8]) -> [u8; 64] {
        self.0.sign(&domain.signed_bytes(message)).to_bytes()
    }
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicSigningKey(ed25519_dalek::VerifyingKey);

impl PublicSigningKey {
    /// Parse 32 bytes; refuses points that are not valid keys.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| KeyError::BadPublicKey)
    }

    /// The 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Verify a signature made by [`SigningSecret::sign`] in the same domain. Uses strict
    /// verification (rejects small-order keys and non-canonical signatures).
    pub fn verify(
        &self,
        domain: SignatureDomain,
        message: &[u8],
        signature: &[u8; 64],
    ) -> Result<(), KeyError> {
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        self.0
            .verify_strict(&domain.signed_bytes(message), &sig)
            .map_err(|_| KeyError::BadSignature)
    }

    /// The dalek key, for protocol code.
    pub fn as_dalek(&self) -> &ed25519_dalek::VerifyingKey {
        &self.0
    }
}

impl Verifier<ed25519_dalek::Signature> for PublicSigningKey {
    fn verify(
        &self,
        msg: &[u8],
        sig: &ed25519_dalek::Signature,
    ) -> Result<(), ed25519_dalek::SignatureError> {
        self.0.verify_strict(msg, sig)
    }
}

impl fmt::Debug for PublicSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicSigningKey({})", hex::encode(self.to_bytes()))
    }
}

impl fmt::Display for PublicSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.to_bytes()))
    }
}

impl std::str::FromStr for PublicSigningKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let mut b = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut b).map_err(|_| KeyError::BadEncoding)?;
        Self::from_bytes(&b)
    }
}

/// A number two people read to each other (in person or over a trusted call) to confirm that the
/// card one of them imported is the card the other made. Like Signal's safety numbers: twelve
/// groups of five digits derived from a hash of everything the card asks you to trust.
pub fn safety_number(material: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    h.update(b"vigil/v1/safety-number\0");
    for m in material {
        h.update((m.len() as u64).to_be_bytes());
        h.update(m);
    }
    let digest = h.finalize();
    // Twelve groups need 12 * 5 = 60 digits; take 5 bytes per two groups from a 2nd hash round.
    let mut digest2 = Sha256::new();
    digest2.update(digest);
    let d2 = digest2.finalize();
    let bytes: Vec<u8> = digest.iter().chain(d2.iter()).copied().collect();
    let mut groups = Vec::with_capacity(12);
    for i in 0..12 {
        let chunk = &bytes[i * 5..i * 5 + 5];
        let n = chunk.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)) % 100_000;
        groups.push(format!("{n:05}"));
    }
    groups.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn sign_verify_and_domain_separation() {
        let k = SigningSecret::generate(&mut OsRng);
        let sig = k.sign(SignatureDomain::Card, b"hello");
        assert!(k
            .public()
            .verify(SignatureDomain::Card, b"hello", &sig)
            .is_ok());
        assert_eq!(
            k.public().verify(SignatureDomain::Envelope, b"hello", &sig),
            Err(KeyError::BadSignature)
        );
        assert_eq!(
            k.public().verify(SignatureDomain::Card, b"hellO", &sig),
            Err(KeyError::BadSignature)
        );
        // Every domain against every other: a signature made in one verifies in no other.
        let all = [
            SignatureDomain::Card,
            SignatureDomain::Envelope,
            SignatureDomain::Receipt,
            SignatureDomain::Reply,
        ];
        for made in all {
            let sig = k.sign(made, b"report id");
            for checked in all {
                assert_eq!(
                    k.public().verify(checked, b"report id", &sig).is_ok(),
                    made == checked,
                    "{made:?} checked as {checked:?}"
                );
            }
        }
    }

    #[test]
    fn secret_hex_round_trip() {
        let k = SigningSecret::generate(&mut OsRng);
        let back = SigningSecret::from_hex_secret(&k.to_hex_secret()).unwrap();
        assert_eq!(back.public(), k.public());
        assert!(SigningSecret::from_hex_secret("zz").is_err());
    }

    #[test]
    fn safety_number_shape_and_sensitivity() {
        let a = safety_number(&[b"key-a", b"age1x"]);
        let b = safety_number(&[b"key-b", b"age1x"]);
        assert_eq!(a.split(' ').count(), 12);
        assert!(a
            .split(' ')
            .all(|g| g.len() == 5 && g.chars().all(|c| c.is_ascii_digit())));
        assert_ne!(a, b);
        // Length-prefixing: moving a byte between fields changes the number.
        assert_ne!(safety_number(&[b"ab", b"c"]), safety_number(&[b"a", b"bc"]));
    }
}
