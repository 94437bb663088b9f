//! The STREAM payload as `std::io` streams: [`StreamWriter`] seals what is written to it and
//! [`StreamReader`] releases what authenticates, in order, with memory bounded by one chunk.
//! Each chunk is sealed and opened by [`super::chunk`].

use std::io::{self, Read, Write};

use zeroize::{Zeroize, Zeroizing};

use super::chunk::{
    open_chunk, seal_chunk, PayloadKey, CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE, TAG_SIZE,
};
use super::input::Input;
use super::AgeError;

/// Encrypts plaintext written to it into an age payload on `W`.
///
/// It keeps one chunk of plaintext (wiped on drop): a full chunk is only sealed once more
/// data arrives, because the final chunk may be full. [`StreamWriter::finish`] MUST be called
/// to seal the final chunk; dropping the writer leaves a truncated file that decryption
/// rejects.
pub struct StreamWriter<W: Write> {
    inner: W,
    key: PayloadKey,
    index: u64,
    buf: Zeroizing<Vec<u8>>,
}

impl<W: Write> StreamWriter<W> {
    pub(crate) fn new(inner: W, key: PayloadKey) -> Self {
        StreamWriter {
            inner,
            key,
            index: 0,
            buf: Zeroizing::new(Vec::with_capacity(ENCRYPTED_CHUNK_SIZE)),
        }
    }

    fn seal_and_write(&mut self, last: bool) -> Result<(), AgeError> {
        let tag = seal_chunk(&self.key, self.index, last, &mut self.buf)?;
        // Within the capacity reserved in `new`, so the buffer does not move.
        self.buf.extend_from_slice(&tag);
        self.inner.write_all(&self.buf)?;
        // Only ciphertext is left in the buffer; clearing keeps the capacity.
        self.buf.clear();
        self.index += 1;
        Ok(())
    }

    /// Seals the final chunk, flushes and returns the inner writer.
    pub fn finish(mut self) -> Result<W, AgeError> {
        self.seal_and_write(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for StreamWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        if self.buf.len() == CHUNK_SIZE {
            self.seal_and_write(false).map_err(AgeError::into_io)?;
        }
        let n = (CHUNK_SIZE - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    /// Flushes the inner writer; a partial chunk stays buffered until more data or `finish`.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ReadState {
    /// More chunks are expected.
    Open,
    /// The final chunk was authenticated; the input must now be at EOF.
    FinalSeen,
    /// Finished successfully.
    Done,
    /// A read failed; every later read fails too.
    Failed,
}

/// Decrypts an age payload as it is read. Plaintext is released only from chunks whose tag
/// verified, one chunk at a time (memory stays at one chunk); the stream errors on
/// truncation, an empty non-first final chunk, and data after the final chunk.
///
/// Errors are `io::Error`s carrying an [`AgeError`]; recover it with
/// [`AgeError::from_io_ref`].
pub struct StreamReader<R: Read> {
    input: Input<R>,
    key: PayloadKey,
    index: u64,
    chunk: Zeroizing<Vec<u8>>,
    pos: usize,
    state: ReadState,
}

impl<R: Read> StreamReader<R> {
    pub(crate) fn new(input: Input<R>, key: PayloadKey) -> Self {
        StreamReader {
            input,
            key,
            index: 0,
            chunk: Zeroizing::new(Vec::with_capacity(ENCRYPTED_CHUNK_SIZE)),
            pos: 0,
            state: ReadState::Open,
        }
    }

    /// Reads and authenticates the next chunk into `self.chunk`.
    fn next_chunk(&mut self) -> Result<(), AgeError> {
        self.chunk.zeroize();
        self.pos = 0;
        self.chunk.resize(ENCRYPTED_CHUNK_SIZE, 0);
        let mut filled = 0;
        while filled < ENCRYPTED_CHUNK_SIZE {
            match self.input.read(&mut self.chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.chunk.clear();
                    return Err(e.into());
                }
            }
        }
        self.chunk.truncate(filled);
        if filled < TAG_SIZE {
            // Zero bytes: EOF without a final chunk. 1..16 bytes: a cut-off chunk.
            self.chunk.clear();
            return Err(AgeError::Truncated);
        }
        let mut tag = [0u8; TAG_SIZE];
        tag.copy_from_slice(&self.chunk[filled - TAG_SIZE..]);
        self.chunk.truncate(filled - TAG_SIZE);
        if filled < ENCRYPTED_CHUNK_SIZE {
            // A short chunk can only be the final one.
            open_chunk(&self.key, self.index, true, &mut self.chunk, &tag)?;
            self.state = ReadState::FinalSeen;
        } else if open_chunk(&self.key, self.index, false, &mut self.chunk, &tag).is_err() {
            // A full chunk may still be the final one.
            open_chunk(&self.key, self.index, true, &mut self.chunk, &tag)?;
            self.state = ReadState::FinalSeen;
        }
        self.index += 1;
        Ok(())
    }

    /// After the final chunk: the input must be exhausted.
    fn expect_eof(&mut self) -> Result<(), AgeError> {
        let mut probe = [0u8; 1];
        loop {
            match self.input.read(&mut probe) {
                Ok(0) => return Ok(()),
                Ok(_) => return Err(AgeError::TrailingData),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn fail(&mut self, e: AgeError) -> io::Error {
        self.state = ReadState::Failed;
        self.chunk.zeroize();
        self.pos = 0;
        e.into_io()
    }
}

impl<R: Read> Read for StreamReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        // At most three passes: release buffered plaintext, or fetch a chunk (which may be
        // an empty first-and-final chunk), then check for EOF.
        loop {
            if self.pos < self.chunk.len() {
                let n = (self.chunk.len() - self.pos).min(out.len());
                out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            match self.state {
                ReadState::Open => {
                    if let Err(e) = self.next_chunk() {
                        return Err(self.fail(e));
                    }
                }
                ReadState::FinalSeen => {
                    self.chunk.zeroize();
                    self.pos = 0;
                    if let Err(e) = self.expect_eof() {
                        return Err(self.fail(e));
                    }
                    self.state = ReadState::Done;
                    return Ok(0);
                }
                ReadState::Done => return Ok(0),
                ReadState::Failed => return Err(AgeError::StreamFailed.into_io()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::age::chunk::NONCE_SIZE;
    use crate::age::input::Input;
    use crate::age::primitives::FileKey;

    fn key() -> PayloadKey {
        PayloadKey::derive(&FileKey::from_bytes([3u8; 16]), &[4u8; NONCE_SIZE])
    }

    fn encrypt(pt: &[u8]) -> Vec<u8> {
        let mut w = StreamWriter::new(Vec::new(), key());
        w.write_all(pt).unwrap();
        w.finish().unwrap()
    }

    fn decrypt(ct: &[u8]) -> (Vec<u8>, Option<AgeError>) {
        let input = Input::binary_for_tests(ct);
        let mut r = StreamReader::new(input, key());
        let mut out = Vec::new();
        let mut buf = [0u8; 1000];
        loop {
            match r.read(&mut buf) {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => {
                    let err = e
                        .into_inner()
                        .and_then(|i| i.downcast::<AgeError>().ok())
                        .map(|b| *b);
                    return (out, Some(err.unwrap()));
                }
            }
        }
    }

    #[test]
    fn round_trips_at_chunk_boundaries() {
        for len in [
            0,
            1,
            CHUNK_SIZE - 1,
            CHUNK_SIZE,
            CHUNK_SIZE + 1,
            3 * CHUNK_SIZE,
        ] {
            let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let ct = encrypt(&pt);
            let chunks = len.div_ceil(CHUNK_SIZE).max(1);
            assert_eq!(ct.len(), len + chunks * TAG_SIZE, "len {len}");
            let (out, err) = decrypt(&ct);
            assert!(err.is_none(), "len {len}: {err:?}");
            assert_eq!(out, pt);
        }
    }

    #[test]
    fn truncation_is_detected() {
        let pt = vec![7u8; 2 * CHUNK_SIZE + 10];
        let ct = encrypt(&pt);
        // Cut at a chunk boundary: the first two chunks are released, then an error.
        let (out, err) = decrypt(&ct[..2 * ENCRYPTED_CHUNK_SIZE]);
        assert_eq!(out.len(), 2 * CHUNK_SIZE);
        assert!(matches!(err, Some(AgeError::Truncated)));
        // Cut inside the final chunk: its tag no longer verifies.
        let (out, err) = decrypt(&ct[..ct.len() - 1]);
        assert_eq!(out.len(), 2 * CHUNK_SIZE);
        assert!(matches!(err, Some(AgeError::ChunkAuth { chunk: 2 })));
        // Nothing at all.
        assert!(matches!(decrypt(&[]).1, Some(AgeError::Truncated)));
        assert!(matches!(decrypt(&ct[..5]).1, Some(AgeError::Truncated)));
    }

    #[test]
    fn trailing_data_and_empty_final_chunk() {
        // After a full final chunk, the chunk is authentic and released; the extra byte is
        // then an error.
        let mut ct = encrypt(&[9u8; CHUNK_SIZE]);
        ct.push(0);
        let (out, err) = decrypt(&ct);
        assert_eq!(out.len(), CHUNK_SIZE);
        assert!(matches!(err, Some(AgeError::TrailingData)));
        // After a short final chunk the extra byte belongs to the chunk: nothing verifies.
        let mut ct = encrypt(b"hello");
        ct.push(0);
        let (out, err) = decrypt(&ct);
        assert!(out.is_empty());
        assert!(matches!(err, Some(AgeError::ChunkAuth { chunk: 0 })));

        // A full non-final chunk followed by an empty final chunk (which `seal_chunk` refuses
        // to make, so it is sealed by hand).
        let k = key();
        let mut c0 = vec![1u8; CHUNK_SIZE];
        let tag = seal_chunk(&k, 0, false, &mut c0).unwrap();
        c0.extend_from_slice(&tag);
        c0.extend_from_slice(&k.empty_final_chunk_for_tests(1));
        let (out, err) = decrypt(&c0);
        assert_eq!(out.len(), CHUNK_SIZE);
        assert!(matches!(err, Some(AgeError::EmptyFinalChunk)));
    }

    #[test]
    fn tampering_releases_nothing_from_the_bad_chunk() {
        let mut ct = encrypt(b"secret testimony");
        ct[3] ^= 1;
        let (out, err) = decrypt(&ct);
        assert!(out.is_empty());
        assert!(matches!(err, Some(AgeError::ChunkAuth { chunk: 0 })));
    }
}
