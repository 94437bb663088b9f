//! [`Decryptor`]: input detection (binary or armored), header parsing, stanza unwrapping.

use std::io::{self, BufRead, BufReader, Chain, Cursor, Read};

use secrecy::SecretString;

use super::armor::ArmoredReader;
use super::format::{Header, MAGIC_PREFIX};
use super::primitives::FileKey;
use super::stream::{PayloadKey, StreamReader, NONCE_SIZE};
use super::{scrypt, x25519, AgeError};

type Prefixed<R> = Chain<Cursor<Vec<u8>>, R>;

/// The decryptor's input: a binary age file, or the decoded bytes of an armored one.
pub(crate) enum Input<R: Read> {
    Binary(BufReader<Prefixed<R>>),
    Armored(ArmoredReader<BufReader<Prefixed<R>>>),
}

impl<R: Read> Input<R> {
    /// Peeks at the first bytes: anything that is (a prefix of) `age-encryption.org/` is read
    /// as a binary file, everything else must be armor.
    fn detect(mut r: R) -> Result<Self, AgeError> {
        let mut prefix = vec![0u8; MAGIC_PREFIX.len()];
        let mut n = 0;
        while n < prefix.len() {
            match r.read(&mut prefix[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        prefix.truncate(n);
        let binary = MAGIC_PREFIX.starts_with(&prefix);
        let reader = BufReader::new(Cursor::new(prefix).chain(r));
        if binary {
            Ok(Input::Binary(reader))
        } else {
            Ok(Input::Armored(ArmoredReader::new(reader)?))
        }
    }
}

#[cfg(test)]
impl<'a> Input<&'a [u8]> {
    pub(crate) fn binary_for_tests(bytes: &'a [u8]) -> Self {
        Input::Binary(BufReader::new(Cursor::new(Vec::new()).chain(bytes)))
    }
}

impl<R: Read> Read for Input<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::Binary(r) => r.read(out),
            Input::Armored(r) => r.read(out),
        }
    }
}

impl<R: Read> BufRead for Input<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self {
            Input::Binary(r) => r.fill_buf(),
            Input::Armored(r) => r.fill_buf(),
        }
    }

    fn consume(&mut self, amt: usize) {
        match self {
            Input::Binary(r) => r.consume(amt),
            Input::Armored(r) => r.consume(amt),
        }
    }
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
        self.header
            .stanzas
            .iter()
            .any(|s| s.tag() == scrypt::STANZA_TAG)
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Decrypts with X25519 identities.
    pub fn decrypt(self, identities: &[x25519::Identity]) -> Result<StreamReader<R>, AgeError> {
        if self.is_passphrase() {
            return Err(if self.header.stanzas.len() > 1 {
                AgeError::ScryptNotAlone
            } else {
                AgeError::PassphraseRequired
            });
        }
        let file_key =
            x25519::unwrap_stanzas(identities, &self.header.stanzas)?.ok_or(AgeError::NoMatch)?;
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
