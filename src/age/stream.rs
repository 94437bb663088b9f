//! The STREAM payload: 64 KiB chunks sealed with ChaCha20-Poly1305 under the payload key.
//!
//! Chunk `i` uses the 12-byte nonce `i` (11 bytes, big endian) || `last` (0x01 for the final
//! chunk, 0x00 otherwise). Because each chunk depends only on (key, index, last), sealing and
//! opening are plain functions, [`seal_chunk`] and [`open_chunk`], that a parallel driver can
//! call from several threads; [`StreamWriter`] and [`StreamReader`] drive them sequentially
//! with memory bounded by one chunk.

use std::io::{self, Read, Write};

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use zeroize::{Zeroize, Zeroizing};

use super::input::Input;
use super::primitives::{hkdf, FileKey};
use super::AgeError;

/// Plaintext bytes per chunk (all but the final chunk are exactly this long).
pub const CHUNK_SIZE: usize = 64 * 1024;
/// Poly1305 tag bytes appended to every chunk.
pub const TAG_SIZE: usize = 16;
/// Ciphertext bytes of a full chunk.
pub const ENCRYPTED_CHUNK_SIZE: usize = CHUNK_SIZE + TAG_SIZE;
/// Bytes of the random nonce that starts the payload.
pub const NONCE_SIZE: usize = 16;

/// Largest chunk index: the counter is 11 bytes, but a `u64` index (2^64 chunks, a zettabyte
/// file) is the practical bound; we refuse to go past it rather than wrap.
const MAX_INDEX: u64 = u64::MAX;

/// The payload key: HKDF-SHA-256(ikm = file key, salt = nonce, info = "payload").
/// Wiped on drop; no `Debug`.
pub struct PayloadKey(Zeroizing<[u8; 32]>);

impl PayloadKey {
    pub(crate) fn derive(file_key: &FileKey, nonce: &[u8; NONCE_SIZE]) -> Self {
        PayloadKey(hkdf(nonce, file_key.expose(), b"payload"))
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(self.0.as_slice()))
    }
}

fn chunk_nonce(index: u64, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::from(n)
}

/// Encrypts one chunk in place: `buf` holds at most [`CHUNK_SIZE`] plaintext bytes and
/// afterwards the ciphertext with its tag. Only the final chunk may be shorter than
/// [`CHUNK_SIZE`], and only a single-chunk payload may have an empty one.
pub fn seal_chunk(
    key: &PayloadKey,
    index: u64,
    last: bool,
    buf: &mut Vec<u8>,
) -> Result<(), AgeError> {
    if buf.len() > CHUNK_SIZE {
        return Err(AgeError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an age chunk holds at most 64 KiB of plaintext",
        )));
    }
    key.cipher()
        .encrypt_in_place(&chunk_nonce(index, last), b"", buf)
        .map_err(|_| AgeError::Io(io::Error::other("chunk encryption failed")))
}

/// Decrypts one chunk in place: `buf` holds the ciphertext with its tag and afterwards the
/// plaintext. On failure `buf` is left unchanged (the tag is checked before any decryption),
/// so a caller may retry with the other `last` flag.
pub fn open_chunk(
    key: &PayloadKey,
    index: u64,
    last: bool,
    buf: &mut Vec<u8>,
) -> Result<(), AgeError> {
    if buf.len() < TAG_SIZE || buf.len() > ENCRYPTED_CHUNK_SIZE {
        return Err(AgeError::ChunkAuth { chunk: index });
    }
    key.cipher()
        .decrypt_in_place(&chunk_nonce(index, last), b"", buf)
        .map_err(|_| AgeError::ChunkAuth { chunk: index })
}

/// Seals a whole in-memory payload with `threads` worker threads (at least one).
///
/// Chunks are independent under STREAM, so each thread seals a contiguous run of them in
/// place; the output is byte-for-byte what [`StreamWriter`] produces under the same key.
/// Memory is the size of the output (this is for in-memory benchmarks and small files, not
/// for streaming evidence).
pub fn seal_payload_parallel(
    key: &PayloadKey,
    plaintext: &[u8],
    threads: usize,
) -> Result<Vec<u8>, AgeError> {
    let n_chunks = plaintext.len().div_ceil(CHUNK_SIZE).max(1);
    let index_limit = u64::try_from(n_chunks).map_err(|_| AgeError::CounterOverflow)?;
    if index_limit == MAX_INDEX {
        return Err(AgeError::CounterOverflow);
    }
    let total = plaintext
        .len()
        .checked_add(n_chunks * TAG_SIZE)
        .ok_or(AgeError::CounterOverflow)?;
    let mut out = vec![0u8; total];
    // One work item per chunk: (index, plaintext, output slot = ciphertext || tag).
    let mut items: Vec<(u64, &[u8], &mut [u8])> = Vec::with_capacity(n_chunks);
    let mut pt_chunks = plaintext.chunks(CHUNK_SIZE);
    for (i, slot) in out.chunks_mut(ENCRYPTED_CHUNK_SIZE).enumerate() {
        // An empty plaintext has one (empty) chunk and `chunks` yields nothing for it.
        let pt = pt_chunks.next().unwrap_or(&[]);
        items.push((i as u64, pt, slot));
    }
    let last_index = index_limit - 1;
    let per_thread = n_chunks.div_ceil(threads.max(1));
    let cipher = key.cipher();
    let seal_run = |run: &mut [(u64, &[u8], &mut [u8])]| -> Result<(), AgeError> {
        for (index, pt, slot) in run.iter_mut() {
            let (body, tag) = slot.split_at_mut(pt.len());
            body.copy_from_slice(pt);
            let t = cipher
                .encrypt_in_place_detached(&chunk_nonce(*index, *index == last_index), b"", body)
                .map_err(|_| AgeError::Io(io::Error::other("chunk encryption failed")))?;
            tag.copy_from_slice(&t);
        }
        Ok(())
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks_mut(per_thread)
            .map(|run| scope.spawn(|| seal_run(run)))
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .map_err(|_| AgeError::Io(io::Error::other("an encryption thread panicked")))?
        })
    })?;
    Ok(out)
}

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
        if self.index == MAX_INDEX {
            return Err(AgeError::CounterOverflow);
        }
        seal_chunk(&self.key, self.index, last, &mut self.buf)?;
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
        if self.index == MAX_INDEX {
            return Err(AgeError::CounterOverflow);
        }
        if filled < ENCRYPTED_CHUNK_SIZE {
            // A short chunk can only be the final one.
            open_chunk(&self.key, self.index, true, &mut self.chunk)?;
            if self.chunk.is_empty() && self.index > 0 {
                return Err(AgeError::EmptyFinalChunk);
            }
            self.state = ReadState::FinalSeen;
        } else if open_chunk(&self.key, self.index, false, &mut self.chunk).is_err() {
            // A full chunk may still be the final one.
            open_chunk(&self.key, self.index, true, &mut self.chunk)?;
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
    use crate::age::input::Input;

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

        // A full non-final chunk followed by an empty final chunk.
        let k = key();
        let mut c0 = vec![1u8; CHUNK_SIZE];
        seal_chunk(&k, 0, false, &mut c0).unwrap();
        let mut c1 = Vec::new();
        seal_chunk(&k, 1, true, &mut c1).unwrap();
        c0.extend_from_slice(&c1);
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

    #[test]
    fn parallel_matches_sequential() {
        for len in [0, 10, CHUNK_SIZE, 3 * CHUNK_SIZE + 7, 9 * CHUNK_SIZE] {
            let pt: Vec<u8> = (0..len).map(|i| (i % 241) as u8).collect();
            for threads in [1, 2, 3, 16] {
                let par = seal_payload_parallel(&key(), &pt, threads).unwrap();
                assert_eq!(par, encrypt(&pt), "len {len}, {threads} threads");
            }
        }
    }

    #[test]
    fn open_leaves_buffer_on_failure() {
        let k = key();
        let mut c = b"abc".to_vec();
        seal_chunk(&k, 0, true, &mut c).unwrap();
        let before = c.clone();
        assert!(open_chunk(&k, 0, false, &mut c).is_err());
        assert_eq!(c, before);
        open_chunk(&k, 0, true, &mut c).unwrap();
        assert_eq!(c, b"abc");
    }
}
