//! The decryptor's input: a binary age file, or the decoded bytes of an armored one.
//!
//! Its own module so that both [`super::decrypt`] (which detects the input and reads the
//! header) and [`super::stream`] (which reads the payload) can depend on it.

use std::io::{self, BufRead, BufReader, Chain, Cursor, Read};

use super::armor::ArmoredReader;
use super::format::MAGIC_PREFIX;
use super::AgeError;

type Prefixed<R> = Chain<Cursor<Vec<u8>>, R>;

/// True when `start`, the first bytes of a file, is (a prefix of) a binary age file; any
/// other file must be armored.
pub fn is_binary(start: &[u8]) -> bool {
    MAGIC_PREFIX.starts_with(&start[..start.len().min(MAGIC_PREFIX.len())])
}

/// A binary age file, or the decoded bytes of an armored one.
pub(crate) enum Input<R: Read> {
    Binary(BufReader<Prefixed<R>>),
    Armored(ArmoredReader<BufReader<Prefixed<R>>>),
}

impl<R: Read> Input<R> {
    /// Peeks at the first bytes to tell binary from armor (see [`is_binary`]).
    pub(crate) fn detect(mut r: R) -> Result<Self, AgeError> {
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
        let binary = is_binary(&prefix);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_detection() {
        assert!(is_binary(b""));
        assert!(is_binary(b"age-enc"));
        assert!(is_binary(b"age-encryption.org/v1\n-> X25519"));
        assert!(!is_binary(b"-----BEGIN AGE ENCRYPTED FILE-----"));
        assert!(!is_binary(b"age-encryptiom.org/"));
    }
}
