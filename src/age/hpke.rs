//! The one HPKE use the hybrid recipient needs: RFC 9180 base mode, single-shot, for the suite
//! MLKEM768-X25519 (X-Wing, KEM id `0x647a`) + HKDF-SHA256 + ChaCha20-Poly1305.
//!
//! Why not the `hpke` crate: its X-Wing decapsulation accepts an all-zero X25519 shared secret,
//! which the age specification's test vectors (`hybrid_identity`) require us to refuse. The
//! KEM itself comes from the `x-wing` crate (whose rejecting decapsulation key we use); what is
//! here is only RFC 9180's key schedule (section 5.1) with the empty PSK, and one AEAD
//! operation at sequence number 0 (section 5.2), on the crates the rest of age already uses.
//! The C2SP vectors check it byte for byte against the Go implementation.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

/// `"HPKE"` || kem_id || kdf_id || aead_id, each a big-endian u16 (RFC 9180, section 5.1).
const SUITE_ID: [u8; 10] = [
    b'H', b'P', b'K', b'E', 0x64, 0x7a, // MLKEM768-X25519 (draft-ietf-hpke-pq)
    0x00, 0x01, // HKDF-SHA256
    0x00, 0x03, // ChaCha20Poly1305
];
const VERSION_LABEL: &[u8] = b"HPKE-v1";
/// Base mode: no PSK, no sender authentication.
const MODE_BASE: u8 = 0x00;
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

/// `LabeledExtract(salt, label, ikm)`.
fn labeled_extract(salt: &[u8], label: &[u8], ikm: &[u8]) -> Hkdf<Sha256> {
    let mut input = Zeroizing::new(Vec::with_capacity(
        VERSION_LABEL.len() + SUITE_ID.len() + label.len() + ikm.len(),
    ));
    input.extend_from_slice(VERSION_LABEL);
    input.extend_from_slice(&SUITE_ID);
    input.extend_from_slice(label);
    input.extend_from_slice(ikm);
    Hkdf::<Sha256>::new(Some(salt), &input)
}

/// `LabeledExtract` returning the pseudorandom key bytes (for the two context hashes).
fn labeled_extract_bytes(salt: &[u8], label: &[u8], ikm: &[u8]) -> [u8; 32] {
    let mut input =
        Vec::with_capacity(VERSION_LABEL.len() + SUITE_ID.len() + label.len() + ikm.len());
    input.extend_from_slice(VERSION_LABEL);
    input.extend_from_slice(&SUITE_ID);
    input.extend_from_slice(label);
    input.extend_from_slice(ikm);
    let (prk, _) = Hkdf::<Sha256>::extract(Some(salt), &input);
    prk.into()
}

/// `LabeledExpand(prk, label, info, L)` into `out` (L = `out.len()`, at most 32 here).
fn labeled_expand(prk: &Hkdf<Sha256>, label: &[u8], info: &[u8], out: &mut [u8]) {
    let len = u16::try_from(out.len()).unwrap_or(u16::MAX).to_be_bytes();
    let mut full =
        Vec::with_capacity(2 + VERSION_LABEL.len() + SUITE_ID.len() + label.len() + info.len());
    full.extend_from_slice(&len);
    full.extend_from_slice(VERSION_LABEL);
    full.extend_from_slice(&SUITE_ID);
    full.extend_from_slice(label);
    full.extend_from_slice(info);
    // Outputs of 32 and 12 bytes are far below HKDF-SHA256's limit of 255 * 32.
    prk.expand(&full, out)
        .expect("HPKE key schedule outputs are within HKDF's limit");
}

/// The AEAD key and base nonce of `KeySchedule(mode_base, shared_secret, info, "", "")`.
fn key_schedule(
    shared_secret: &[u8; 32],
    info: &[u8],
) -> (Zeroizing<[u8; KEY_LEN]>, [u8; NONCE_LEN]) {
    let psk_id_hash = labeled_extract_bytes(b"", b"psk_id_hash", b"");
    let info_hash = labeled_extract_bytes(b"", b"info_hash", info);
    let mut context = [0u8; 1 + 32 + 32];
    context[0] = MODE_BASE;
    context[1..33].copy_from_slice(&psk_id_hash);
    context[33..].copy_from_slice(&info_hash);
    // secret = LabeledExtract(shared_secret, "secret", psk) with the empty PSK.
    let secret = labeled_extract(shared_secret, b"secret", b"");
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    labeled_expand(&secret, b"key", &context, key.as_mut());
    let mut nonce = [0u8; NONCE_LEN];
    labeled_expand(&secret, b"base_nonce", &context, &mut nonce);
    (key, nonce)
}

/// `SealBase` after encapsulation: encrypts `plaintext` (with empty AAD) under the context set
/// up from the KEM's `shared_secret` and `info`. The sequence number is 0, so the nonce is the
/// base nonce itself.
pub(crate) fn seal(shared_secret: &[u8; 32], info: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let (key, nonce) = key_schedule(shared_secret, info);
    ChaCha20Poly1305::new(Key::from_slice(key.as_ref()))
        .encrypt(Nonce::from_slice(&nonce), plaintext)
        .expect("ChaCha20-Poly1305 encryption of a short message cannot fail")
}

/// `OpenBase` after decapsulation; `None` when the tag does not verify.
pub(crate) fn open(
    shared_secret: &[u8; 32],
    info: &[u8],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let (key, nonce) = key_schedule(shared_secret, info);
    ChaCha20Poly1305::new(Key::from_slice(key.as_ref()))
        .decrypt(Nonce::from_slice(&nonce), ciphertext)
        .ok()
        .map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_and_tamper() {
        let ss = [7u8; 32];
        let ct = seal(&ss, b"info", b"sixteen byte key");
        assert_eq!(ct.len(), 32);
        assert_eq!(
            open(&ss, b"info", &ct).unwrap().as_slice(),
            b"sixteen byte key"
        );
        assert!(open(&ss, b"other info", &ct).is_none());
        assert!(open(&[8u8; 32], b"info", &ct).is_none());
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert!(open(&ss, b"info", &bad).is_none());
    }
}
