//! The age v1 file format (C2SP `age.md`), without I/O of its own.
//!
//! Vigil encrypts reports and evidence to NGO keys in the age format so that files stay
//! readable with any age tool. This module implements the hybrid post-quantum (ML-KEM-768 +
//! X25519), X25519 and scrypt recipient types,
//! the header with its MAC, the STREAM payload and ASCII armor, over `std::io::Read`/`Write`.
//! The payload's chunks are sealed and opened one at a time by [`chunk`]; a caller that wants
//! them on several threads (the client's `age_parallel`) drives those routines itself, with
//! [`start_file`] and [`unwrap_payload`] for the header. Randomness is an argument.
//!
//! Decryption is strict and bounded: every size is capped by a named constant in [`limits`],
//! parsers reject non-canonical encodings, and plaintext is only released from chunks whose
//! authentication tag verified.
//!
//! ```
//! use std::io::{Read, Write};
//! use rand::rngs::OsRng;
//! use vigil_core::age::{self, x25519::Identity};
//!
//! // The core takes its randomness as an argument; programs pass the OS generator.
//! let id = Identity::generate(&mut OsRng);
//! let mut w = age::encrypt(&[id.to_public()], Vec::new(), &mut OsRng).unwrap();
//! w.write_all(b"incident report").unwrap();
//! let file = w.finish().unwrap();
//!
//! let mut r = age::Decryptor::new(&file[..]).unwrap().decrypt(&[id]).unwrap();
//! let mut out = Vec::new();
//! r.read_to_end(&mut out).unwrap();
//! assert_eq!(out, b"incident report");
//! ```

pub mod armor;
mod b64;
pub mod chunk;
mod decrypt;
mod error;
pub mod format;
mod hpke;
pub mod hybrid;
mod input;
pub mod keys;
pub mod limits;
mod primitives;
pub mod scrypt;
pub mod stream;
pub mod x25519;

use std::io::{Read, Write};

use rand_core::CryptoRngCore;
use secrecy::SecretString;
use zeroize::{Zeroize, Zeroizing};

pub use armor::{ArmoredReader, ArmoredWriter};
pub use decrypt::{unwrap_payload, Decryptor};
pub use error::AgeError;
pub use input::is_binary;
pub use keys::{AnyIdentity, AnyRecipient, Identity, Recipient};
pub use stream::{StreamReader, StreamWriter};

use chunk::{PayloadKey, NONCE_SIZE};
use format::{encode_header, Stanza};
use limits::{MAX_IDENTITY_FILE_LEN, MAX_STANZAS};
use primitives::FileKey;

/// The header and payload nonce (from `rng`) that start a file, and the payload key.
fn file_start(
    stanzas: &[Stanza],
    file_key: &FileKey,
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> (Vec<u8>, PayloadKey) {
    let mut prefix = encode_header(stanzas, file_key);
    let mut nonce = [0u8; NONCE_SIZE];
    rng.fill_bytes(&mut nonce);
    prefix.extend_from_slice(&nonce);
    (prefix, PayloadKey::derive(file_key, &nonce))
}

/// Writes the start of the file and returns the payload writer.
fn begin<W: Write>(
    (prefix, key): (Vec<u8>, PayloadKey),
    mut output: W,
) -> Result<StreamWriter<W>, AgeError> {
    output.write_all(&prefix)?;
    Ok(StreamWriter::new(output, key))
}

/// Starts an encryption to `recipients`; write plaintext into the returned writer, then call
/// [`StreamWriter::finish`] to get `W` back. The file key, ephemeral keys and payload nonce
/// come from `rng` (the shells pass `&mut OsRng`).
pub fn encrypt<R: Recipient, W: Write>(
    recipients: &[R],
    output: W,
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> Result<StreamWriter<W>, AgeError> {
    begin(start_file(recipients, rng)?, output)
}

/// The start of a new file to `recipients`: its header and payload nonce, and the payload key
/// to seal its chunks with. [`encrypt`] writes the start and then streams; a caller that seals
/// a whole in-memory payload out of order appends the chunks itself, through a
/// [`chunk::PayloadLayout`].
///
/// The recipient count is checked against [`MAX_STANZAS`]: a header we could not read back
/// ourselves is never written. Post-quantum and classic recipients are not mixed
/// ([`AgeError::MixedPostQuantum`]).
pub fn start_file<R: Recipient>(
    recipients: &[R],
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> Result<(Vec<u8>, PayloadKey), AgeError> {
    if recipients.is_empty() {
        return Err(AgeError::NoRecipients);
    }
    keys::check_not_mixed(recipients)?;
    if recipients.len() > MAX_STANZAS {
        return Err(AgeError::TooManyRecipients {
            count: recipients.len(),
            max: MAX_STANZAS,
        });
    }
    let file_key = FileKey::generate(rng);
    let stanzas = recipients
        .iter()
        .map(|r| wrap(r, &file_key, rng))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(file_start(&stanzas, &file_key, rng))
}

/// One stanza wrapping `file_key` to `recipient`.
fn wrap<R: Recipient>(
    recipient: &R,
    file_key: &FileKey,
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> Result<Stanza, AgeError> {
    match recipient.as_ref_any() {
        keys::RecipientRef::X25519(r) => r.wrap(file_key, rng),
        keys::RecipientRef::Hybrid(r) => r.wrap(file_key, rng),
    }
}

/// [`start_file`] with a header of exactly `stanzas` stanzas: one per recipient, and
/// the rest decoys (the file key really wrapped to throwaway keys of the recipients' type, see
/// [`x25519::decoy_stanza`] and [`hybrid::decoy_stanza`]), all in an order drawn from `rng`. The header's length and stanza
/// count are then the same whatever the number of recipients, so a reader of the file cannot
/// count them; each recipient still opens it as any age file, trying at most `stanzas`
/// stanzas.
///
/// Fails with [`AgeError::TooManyRecipients`] when there are more recipients than `stanzas`
/// or `stanzas` is above [`MAX_STANZAS`], and [`AgeError::NoRecipients`] when there are none.
pub fn start_file_with_decoys<R: Recipient>(
    recipients: &[R],
    stanzas: usize,
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> Result<(Vec<u8>, PayloadKey), AgeError> {
    if recipients.is_empty() {
        return Err(AgeError::NoRecipients);
    }
    if recipients.len() > stanzas || stanzas > MAX_STANZAS {
        return Err(AgeError::TooManyRecipients {
            count: recipients.len().max(stanzas),
            max: stanzas.min(MAX_STANZAS),
        });
    }
    keys::check_not_mixed(recipients)?;
    let post_quantum = recipients.iter().any(Recipient::is_post_quantum);
    let file_key = FileKey::generate(rng);
    let mut all = Vec::with_capacity(stanzas);
    for r in recipients {
        all.push(wrap(r, &file_key, rng)?);
    }
    while all.len() < stanzas {
        all.push(if post_quantum {
            hybrid::decoy_stanza(&file_key, rng)?
        } else {
            x25519::decoy_stanza(&file_key, rng)?
        });
    }
    shuffle(&mut all, rng);
    Ok(file_start(&all, &file_key, rng))
}

/// Encrypts a small in-memory message as [`encrypt_to_vec`] does, with a header of exactly
/// `stanzas` stanzas (see [`start_file_with_decoys`]).
pub fn encrypt_to_vec_with_decoys<R: Recipient>(
    recipients: &[R],
    stanzas: usize,
    plaintext: &[u8],
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> Result<Vec<u8>, AgeError> {
    let start = start_file_with_decoys(recipients, stanzas, rng)?;
    let capacity =
        start.0.len() + chunk::PayloadLayout::for_plaintext(plaintext.len())?.ciphertext_len();
    let mut w = begin(start, Vec::with_capacity(capacity))?;
    w.write_all(plaintext)?;
    w.finish()
}

/// Fisher–Yates shuffle with unbiased indices from `rng` (rejection sampling), so the position
/// of a real stanza among the decoys is uniform.
fn shuffle<T>(items: &mut [T], rng: &mut (impl CryptoRngCore + ?Sized)) {
    for i in (1..items.len()).rev() {
        // Headers hold at most MAX_STANZAS items, so the bound fits in u32.
        let bound = u32::try_from(i + 1).unwrap_or(u32::MAX);
        // The largest multiple of `bound` that fits; draws at or above it are redrawn.
        let zone = u32::MAX - u32::MAX % bound;
        let j = loop {
            let x = rng.next_u32();
            if x < zone {
                break (x % bound) as usize;
            }
        };
        items.swap(i, j);
    }
}

/// Starts an encryption with a passphrase at scrypt `work_factor` (log2 N; use
/// [`limits::DEFAULT_SCRYPT_WORK_FACTOR`] unless you have a reason).
pub fn encrypt_with_passphrase<W: Write>(
    passphrase: &SecretString,
    work_factor: u8,
    output: W,
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> Result<StreamWriter<W>, AgeError> {
    let file_key = FileKey::generate(rng);
    let stanza = scrypt::wrap(passphrase, work_factor, &file_key, rng)?;
    begin(file_start(&[stanza], &file_key, rng), output)
}

/// Encrypts a small in-memory message to `recipients` (randomness from `rng`, as [`encrypt`]).
pub fn encrypt_to_vec<R: Recipient>(
    recipients: &[R],
    plaintext: &[u8],
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> Result<Vec<u8>, AgeError> {
    let mut w = encrypt(recipients, Vec::with_capacity(plaintext.len() + 512), rng)?;
    w.write_all(plaintext)?;
    w.finish()
}

/// Decrypts a small in-memory age file (binary or armored); fails with
/// [`AgeError::PlaintextTooLarge`] rather than hold more than `max_plaintext` bytes.
pub fn decrypt_from_slice<I: Identity>(
    ciphertext: &[u8],
    identities: &[I],
    max_plaintext: usize,
) -> Result<Zeroizing<Vec<u8>>, AgeError> {
    let mut r = Decryptor::new(ciphertext)?.decrypt(identities)?;
    // The plaintext is never longer than the ciphertext; reserving up front avoids
    // reallocations that would leave unwiped copies behind.
    let mut out = Zeroizing::new(Vec::with_capacity(ciphertext.len().min(max_plaintext)));
    let mut buf = Zeroizing::new([0u8; 16 * 1024]);
    loop {
        let n = r.read(buf.as_mut())?;
        if n == 0 {
            break;
        }
        if out.len() + n > max_plaintext {
            buf.zeroize();
            return Err(AgeError::PlaintextTooLarge { max: max_plaintext });
        }
        out.extend_from_slice(&buf[..n]);
    }
    Ok(out)
}

/// Splits a key file into its meaningful lines: `#` comments and blank lines are skipped,
/// surrounding whitespace trimmed. Returns (1-based line number, key text).
fn key_lines(text: &str) -> Result<impl Iterator<Item = (usize, &str)>, AgeError> {
    if text.len() > MAX_IDENTITY_FILE_LEN {
        return Err(AgeError::KeyFileTooLarge {
            max: MAX_IDENTITY_FILE_LEN,
        });
    }
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#')))
}

/// Parses an identity file: one `AGE-SECRET-KEY-1...` or `AGE-SECRET-KEY-PQ-1...` per line,
/// `#` comments and blank lines allowed, at most [`MAX_IDENTITY_FILE_LEN`] bytes. Errors name
/// the line, never its content (it may be a secret).
pub fn parse_identity_file(text: &str) -> Result<Vec<AnyIdentity>, AgeError> {
    let mut ids = Vec::new();
    for (line, l) in key_lines(text)? {
        let id = l.parse::<AnyIdentity>().map_err(|e| match e {
            AgeError::InvalidIdentity { reason } => AgeError::InvalidKeyFile { line, reason },
            other => other,
        })?;
        ids.push(id);
    }
    if ids.is_empty() {
        return Err(AgeError::NoKeys);
    }
    Ok(ids)
}

/// Parses a recipients file: one `age1...` or `age1pq1...` per line, `#` comments and blank
/// lines allowed.
pub fn parse_recipients_file(text: &str) -> Result<Vec<AnyRecipient>, AgeError> {
    let mut rs = Vec::new();
    for (line, l) in key_lines(text)? {
        let r = l.parse::<AnyRecipient>().map_err(|e| match e {
            AgeError::InvalidRecipient { reason } => AgeError::InvalidKeyFile { line, reason },
            other => other,
        })?;
        rs.push(r);
    }
    if rs.is_empty() {
        return Err(AgeError::NoKeys);
    }
    Ok(rs)
}

#[cfg(test)]
mod tests {
    use super::x25519::Identity;
    use super::*;
    use rand::rngs::OsRng;
    use secrecy::ExposeSecret;

    #[test]
    fn in_memory_round_trip_and_limit() {
        let id = Identity::generate(&mut OsRng);
        let ct = encrypt_to_vec(&[id.to_public()], b"twelve bytes", &mut OsRng).unwrap();
        let pt = decrypt_from_slice(&ct, &[id], 12).unwrap();
        assert_eq!(pt.as_slice(), b"twelve bytes");
        let id = Identity::generate(&mut OsRng);
        let ct = encrypt_to_vec(&[id.to_public()], b"thirteen byte", &mut OsRng).unwrap();
        assert!(matches!(
            decrypt_from_slice(&ct, &[id], 12),
            Err(AgeError::PlaintextTooLarge { max: 12 })
        ));
        assert!(matches!(
            decrypt_from_slice(&ct, &[Identity::generate(&mut OsRng)], 100),
            Err(AgeError::NoMatch)
        ));
    }

    #[test]
    fn decoys_fix_the_stanza_count_and_only_recipients_open() {
        let one = [Identity::generate(&mut OsRng)];
        let five: Vec<Identity> = (0..5).map(|_| Identity::generate(&mut OsRng)).collect();
        let to = |ids: &[Identity]| ids.iter().map(Identity::to_public).collect::<Vec<_>>();
        let a = encrypt_to_vec_with_decoys(&to(&one), 16, b"report", &mut OsRng).unwrap();
        let b = encrypt_to_vec_with_decoys(&to(&five), 16, b"report", &mut OsRng).unwrap();
        let (ha, la) = format::Header::parse(&a).unwrap();
        let (hb, lb) = format::Header::parse(&b).unwrap();
        assert_eq!((ha.stanzas.len(), hb.stanzas.len()), (16, 16));
        assert_eq!((la, lb), (x25519::header_len(16), x25519::header_len(16)));
        assert_eq!(a.len(), b.len());
        for id in &five {
            let pt = decrypt_from_slice(&b, std::slice::from_ref(id), 100).unwrap();
            assert_eq!(pt.as_slice(), b"report");
        }
        // Each real key opens exactly one stanza; the eleven decoys open for none of them
        // (nor for anyone: their throwaway secrets were dropped when they were made).
        let opened_by = |st: &format::Stanza, ids: &[Identity]| {
            let refs: Vec<&Identity> = ids.iter().collect();
            x25519::unwrap_stanzas(&refs, std::slice::from_ref(st))
                .unwrap()
                .is_some()
        };
        for id in &five {
            let n = hb
                .stanzas
                .iter()
                .filter(|st| opened_by(st, std::slice::from_ref(id)))
                .count();
            assert_eq!(n, 1);
        }
        let decoys = hb.stanzas.iter().filter(|st| !opened_by(st, &five)).count();
        assert_eq!(decoys, 11);
        // The throwaway secret's type has no way out (no serialisation, no Clone) and wipes
        // itself in its Drop (x25519-dalek's `zeroize(drop)`).
        fn wipeable<T: zeroize::Zeroize>() {}
        wipeable::<x25519_dalek::EphemeralSecret>();
        assert!(std::mem::needs_drop::<x25519_dalek::EphemeralSecret>());
    }

    #[test]
    fn the_real_stanza_is_at_a_random_place() {
        let id = Identity::generate(&mut OsRng);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..40 {
            let f = encrypt_to_vec_with_decoys(&[id.to_public()], 16, b"r", &mut OsRng).unwrap();
            let (h, _) = format::Header::parse(&f).unwrap();
            let at = h
                .stanzas
                .iter()
                .position(|st| {
                    x25519::unwrap_stanzas(&[&id], std::slice::from_ref(st))
                        .unwrap()
                        .is_some()
                })
                .unwrap();
            seen.insert(at);
        }
        // 40 uniform draws from 16 places fall in 3 or fewer with odds below 10^-26.
        assert!(seen.len() >= 4, "{seen:?}");
    }

    #[test]
    fn decoy_counts_are_checked() {
        let ids: Vec<Identity> = (0..3).map(|_| Identity::generate(&mut OsRng)).collect();
        let to: Vec<_> = ids.iter().map(Identity::to_public).collect();
        assert!(matches!(
            encrypt_to_vec_with_decoys(&to, 2, b"x", &mut OsRng),
            Err(AgeError::TooManyRecipients { count: 3, max: 2 })
        ));
        assert!(matches!(
            encrypt_to_vec_with_decoys(&to, MAX_STANZAS + 1, b"x", &mut OsRng),
            Err(AgeError::TooManyRecipients { .. })
        ));
        assert!(matches!(
            encrypt_to_vec_with_decoys::<x25519::Recipient>(&[], 4, b"x", &mut OsRng),
            Err(AgeError::NoRecipients)
        ));
        // Exactly as many recipients as stanzas: no decoy, still fine.
        let f = encrypt_to_vec_with_decoys(&to, 3, b"x", &mut OsRng).unwrap();
        assert_eq!(format::Header::parse(&f).unwrap().0.stanzas.len(), 3);
    }

    proptest::proptest! {
        /// Arbitrary bytes, and an age file with one byte changed, never panic: they decrypt
        /// or fail with an error.
        #[test]
        fn decrypt_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
                                pos in proptest::prelude::any::<usize>(),
                                bit in 0u8..8) {
            let id = Identity::from_bytes([1u8; 32]);
            let _ = decrypt_from_slice(&bytes, std::slice::from_ref(&id), 1 << 20);
            let mut ct = encrypt_to_vec(&[id.to_public()], b"hello, tamper me", &mut OsRng).unwrap();
            let i = pos % ct.len();
            ct[i] ^= 1 << bit;
            proptest::prop_assert!(decrypt_from_slice(&ct, &[id], 1 << 20).is_err());
        }
    }

    #[test]
    fn armored_passphrase_round_trip() {
        let pass = SecretString::from("a long passphrase".to_string());
        let mut w =
            encrypt_with_passphrase(&pass, 4, ArmoredWriter::new(Vec::new()), &mut OsRng).unwrap();
        w.write_all(&[5u8; 70_000]).unwrap();
        let text = w.finish().unwrap().finish().unwrap();
        assert!(text.starts_with(armor::BEGIN_LINE));
        let d = Decryptor::new(&text[..]).unwrap();
        assert!(d.is_passphrase());
        let mut out = Vec::new();
        d.decrypt_with_passphrase(&pass, 20)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, vec![5u8; 70_000]);
        assert!(matches!(
            Decryptor::new(&text[..])
                .unwrap()
                .decrypt(&[Identity::generate(&mut OsRng)]),
            Err(AgeError::PassphraseRequired)
        ));
        assert!(matches!(
            Decryptor::new(&text[..])
                .unwrap()
                .decrypt_with_passphrase(&pass, 3),
            Err(AgeError::WorkFactorTooHigh {
                work_factor: 4,
                max: 3
            })
        ));
    }

    #[test]
    fn identity_file() {
        let a = Identity::generate(&mut OsRng);
        let b = Identity::generate(&mut OsRng);
        let text = format!(
            "# created: now\n# public key: {}\n{}\n\n  {}  \r\n",
            a.to_public(),
            a.to_string_secret().expose_secret(),
            b.to_string_secret().expose_secret()
        );
        let ids = parse_identity_file(&text).unwrap();
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[1].to_public(), AnyRecipient::from(b.to_public()));
        assert!(matches!(
            parse_identity_file("# nothing\n"),
            Err(AgeError::NoKeys)
        ));
        assert!(matches!(
            parse_identity_file("# x\nAGE-SECRET-KEY-1NOPE\n"),
            Err(AgeError::InvalidKeyFile { line: 2, .. })
        ));
        let big = "#".repeat(MAX_IDENTITY_FILE_LEN + 1);
        assert!(matches!(
            parse_identity_file(&big),
            Err(AgeError::KeyFileTooLarge { .. })
        ));
        let rs = parse_recipients_file(&format!("{}\n", a.to_public())).unwrap();
        assert_eq!(rs, vec![AnyRecipient::from(a.to_public())]);
    }
}
