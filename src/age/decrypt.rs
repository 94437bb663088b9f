//! [`Decryptor`]: header parsing and stanza unwrapping over a detected [`Input`].

use std::io::{self, Read};

use secrecy::SecretString;

use super::chunk::{PayloadKey, NONCE_SIZE};
use super::format::Header;
use super::input::Input;
use super::keys::{Identity, IdentityRef};
use super::primitives::FileKey;
use super::stream::StreamReader;
use super::{hybrid, scrypt, x25519, AgeError};

fn is_passphrase(header: &Header) -> bool {
    header.stanzas.iter().any(|s| s.tag() == scrypt::STANZA_TAG)
}

/// The file key, unwrapped with `identities` (X25519 or hybrid). A passphrase file is refused:
/// its scrypt stanza must be alone and needs the passphrase. A header with both hybrid and
/// X25519 stanzas is refused too ([`AgeError::MixedPostQuantum`]): whoever made it defeated
/// the post-quantum protection, and we do not pretend the file has it.
///
/// Each identity type looks only at its own stanzas, which it validates strictly; the others
/// are ignored, as the spec asks.
fn identity_file_key<I: Identity>(header: &Header, identities: &[I]) -> Result<FileKey, AgeError> {
    if is_passphrase(header) {
        return Err(if header.stanzas.len() > 1 {
            AgeError::ScryptNotAlone
        } else {
            AgeError::PassphraseRequired
        });
    }
    let has = |tag| header.stanzas.iter().any(|s| s.tag() == tag);
    if has(hybrid::STANZA_TAG) && has(x25519::STANZA_TAG) {
        return Err(AgeError::MixedPostQuantum);
    }
    let mut classic = Vec::new();
    let mut hybrids = Vec::new();
    for id in identities {
        match id.as_ref_any() {
            IdentityRef::X25519(i) => classic.push(i),
            IdentityRef::Hybrid(i) => hybrids.push(i),
        }
    }
    if !classic.is_empty() {
        if let Some(fk) = x25519::unwrap_stanzas(&classic, &header.stanzas)? {
            return Ok(fk);
        }
    }
    if !hybrids.is_empty() {
        if let Some(fk) = hybrid::unwrap_stanzas(&hybrids, &header.stanzas)? {
            return Ok(fk);
        }
    }
    Err(AgeError::NoMatch)
}

/// For a binary age file held in memory (see [`is_binary`](super::is_binary); armored files go
/// through [`Decryptor`]): parses the header, unwraps the file key with `identities`, verifies
/// the header MAC, and returns the payload key with the payload (the bytes after the payload
/// nonce), whose chunks the caller then opens, in any order, through a
/// [`PayloadLayout`](super::chunk::PayloadLayout).
pub fn unwrap_payload<'a, I: Identity>(
    ciphertext: &'a [u8],
    identities: &[I],
) -> Result<(PayloadKey, &'a [u8]), AgeError> {
    let (header, used) = Header::parse(ciphertext)?;
    let file_key = identity_file_key(&header, identities)?;
    header.verify_mac(&file_key)?;
    let rest = ciphertext.get(used..).unwrap_or_default();
    let (nonce, payload) = rest
        .split_first_chunk::<NONCE_SIZE>()
        .ok_or(AgeError::MissingNonce)?;
    Ok((PayloadKey::derive(&file_key, nonce), payload))
}

/// A parsed age file, ready to be decrypted with identities or a passphrase.
///
/// [`Decryptor::new`] reads only the header (at most
/// [`MAX_HEADER_LEN`](super::limits::MAX_HEADER_LEN) bytes); the payload is read as the
/// returned [`StreamReader`] is.
pub struct Decryptor<R: Read> {
    input: Input<R>,
    header: Header,
}

impl<R: Read> Decryptor<R> {
    /// Detects armor and parses the header.
    pub fn new(input: R) -> Result<Self, AgeError> {
        let mut input = Input::detect(input)?;
        let header = Header::read(&mut input)?;
        Ok(Decryptor { input, header })
    }

    /// True when the file is encrypted with a passphrase (has an scrypt stanza).
    pub fn is_passphrase(&self) -> bool {
        is_passphrase(&self.header)
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Decrypts with identities (X25519, hybrid, or both kinds).
    pub fn decrypt<I: Identity>(self, identities: &[I]) -> Result<StreamReader<R>, AgeError> {
        let file_key = identity_file_key(&self.header, identities)?;
        self.into_payload(file_key)
    }

    /// Decrypts with a passphrase, refusing scrypt work factors above `max_work_factor`
    /// (see [`MAX_SCRYPT_WORK_FACTOR`](super::limits::MAX_SCRYPT_WORK_FACTOR)).
    pub fn decrypt_with_passphrase(
        self,
        passphrase: &SecretString,
        max_work_factor: u8,
    ) -> Result<StreamReader<R>, AgeError> {
        let stanzas = &self.header.stanzas;
        let Some(stanza) = stanzas.iter().find(|s| s.tag() == scrypt::STANZA_TAG) else {
            return Err(AgeError::NotPassphraseEncrypted);
        };
        if stanzas.len() > 1 {
            return Err(AgeError::ScryptNotAlone);
        }
        let file_key = scrypt::unwrap(stanza, passphrase, max_work_factor)?;
        self.into_payload(file_key)
    }

    /// Verifies the header MAC, reads the payload nonce and starts the STREAM reader.
    fn into_payload(mut self, file_key: FileKey) -> Result<StreamReader<R>, AgeError> {
        self.header.verify_mac(&file_key)?;
        let mut nonce = [0u8; NONCE_SIZE];
        let mut n = 0;
        while n < NONCE_SIZE {
            match self.input.read(&mut nonce[n..]) {
                Ok(0) => return Err(AgeError::MissingNonce),
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        let key = PayloadKey::derive(&file_key, &nonce);
        Ok(StreamReader::new(self.input, key))
    }
}
