//! Small cryptographic building blocks shared by the stanza types, the header and the payload.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand_core::CryptoRngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

/// Size of the file key, per the spec ("a 128-bit symmetric file key").
pub(crate) const FILE_KEY_LEN: usize = 16;

/// Size of a wrapped file key: the key plus a Poly1305 tag. Stanza bodies must be exactly
/// this long before we try to decrypt them, to avoid partitioning oracles.
pub(crate) const WRAPPED_KEY_LEN: usize = FILE_KEY_LEN + 16;

/// The per-file symmetric key. Wiped on drop; never printed.
pub(crate) struct FileKey(Zeroizing<[u8; FILE_KEY_LEN]>);

impl FileKey {
    /// A fresh file key from `rng`.
    pub(crate) fn generate(rng: &mut (impl CryptoRngCore + ?Sized)) -> Self {
        let mut k = Zeroizing::new([0u8; FILE_KEY_LEN]);
        rng.fill_bytes(k.as_mut());
        FileKey(k)
    }

    pub(crate) fn expose(&self) -> &[u8; FILE_KEY_LEN] {
        &self.0
    }

    /// A file key unwrapped from a stanza.
    pub(crate) fn from_secret(bytes: Zeroizing<[u8; FILE_KEY_LEN]>) -> Self {
        FileKey(bytes)
    }

    #[cfg(test)]
    pub(crate) fn from_bytes(bytes: [u8; FILE_KEY_LEN]) -> Self {
        FileKey(Zeroizing::new(bytes))
    }
}

/// HKDF-SHA-256 with a 32-byte output, as every age key derivation uses.
pub(crate) fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA-256's 255 * 32 byte output limit, so expand cannot fail.
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, out.as_mut())
        .expect("32-byte HKDF output is always valid");
    out
}

/// HMAC-SHA-256.
pub(crate) fn hmac(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Wraps the file key with ChaCha20-Poly1305 under `key` and the all-zero nonce (safe: every
/// wrap key is single-use, derived from a fresh ephemeral share or salt).
pub(crate) fn wrap_file_key(key: &[u8; 32], file_key: &FileKey) -> Vec<u8> {
    ChaCha20Poly1305::new(Key::from_slice(key))
        .encrypt(&Nonce::default(), file_key.expose().as_slice())
        .expect("ChaCha20-Poly1305 encryption of 16 bytes cannot fail")
}

/// Unwraps a 32-byte stanza body. `None` when the tag does not verify (not our stanza, or the
/// wrong passphrase).
pub(crate) fn unwrap_file_key(key: &[u8; 32], body: &[u8; WRAPPED_KEY_LEN]) -> Option<FileKey> {
    let pt = Zeroizing::new(
        ChaCha20Poly1305::new(Key::from_slice(key))
            .decrypt(&Nonce::default(), body.as_slice())
            .ok()?,
    );
    if pt.len() != FILE_KEY_LEN {
        return None;
    }
    let mut key = Zeroizing::new([0u8; FILE_KEY_LEN]);
    key.copy_from_slice(&pt);
    Some(FileKey(key))
}
