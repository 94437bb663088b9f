//! The STREAM payload, one chunk at a time.
//!
//! The payload is cut into chunks of [`CHUNK_SIZE`] plaintext bytes, each sealed with
//! ChaCha20-Poly1305 under the [`PayloadKey`] and the 12-byte nonce `index` (11 bytes, big
//! endian) || `last` (0x01 for the final chunk, 0x00 otherwise). A chunk depends only on
//! (key, index, last), so [`seal_chunk`] and [`open_chunk`] are the one place where a chunk is
//! sealed or opened: the streaming [`StreamWriter`](super::StreamWriter) and
//! [`StreamReader`](super::StreamReader) call them in order, and a caller holding a whole
//! payload in memory may call them in any order, on as many threads as it likes, through a
//! [`PayloadLayout`]. Nothing here spawns a thread.

use std::io;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use zeroize::{Zeroize, Zeroizing};

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

/// First chunk index that is never used: the counter is 11 bytes, but a `u64` index (2^64
/// chunks, a zettabyte file) is the practical bound; we refuse to reach it rather than wrap.
const MAX_INDEX: u64 = u64::MAX;

/// The payload key: HKDF-SHA-256(ikm = file key, salt = payload nonce, info = "payload").
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

#[cfg(test)]
impl PayloadKey {
    /// The sealed empty final chunk `index` (just its tag), which [`seal_chunk`] refuses to
    /// make after other chunks; for tests that readers refuse it.
    pub(crate) fn empty_final_chunk_for_tests(&self, index: u64) -> [u8; TAG_SIZE] {
        let tag = self
            .cipher()
            .encrypt_in_place_detached(&chunk_nonce(index, true), b"", &mut [])
            .expect("sealing an empty chunk cannot fail");
        let mut out = [0u8; TAG_SIZE];
        out.copy_from_slice(&tag);
        out
    }
}

/// The nonce of chunk `index`: 11-byte big-endian counter, then the last-chunk flag.
fn chunk_nonce(index: u64, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::from(n)
}

/// Seals chunk `index` in place and returns its tag, which follows the chunk in the file.
///
/// `body` holds the plaintext and afterwards the ciphertext. A chunk that is not `last` must
/// be exactly [`CHUNK_SIZE`] bytes; the final chunk at most that, and empty only when it is
/// also the first (an empty payload). Anything else is refused, so no file this function
/// helps write is one that [`open_chunk`] would refuse.
pub fn seal_chunk(
    key: &PayloadKey,
    index: u64,
    last: bool,
    body: &mut [u8],
) -> Result<[u8; TAG_SIZE], AgeError> {
    if index == MAX_INDEX {
        return Err(AgeError::CounterOverflow);
    }
    let bad_len = if last {
        body.len() > CHUNK_SIZE || (body.is_empty() && index > 0)
    } else {
        body.len() != CHUNK_SIZE
    };
    if bad_len {
        return Err(AgeError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an age chunk holds 64 KiB of plaintext; only the final one may be shorter, \
             and it may be empty only in an empty file",
        )));
    }
    let tag = key
        .cipher()
        .encrypt_in_place_detached(&chunk_nonce(index, last), b"", body)
        .map_err(|_| AgeError::Io(io::Error::other("chunk encryption failed")))?;
    let mut out = [0u8; TAG_SIZE];
    out.copy_from_slice(&tag);
    Ok(out)
}

/// Opens chunk `index` in place: `body` holds the ciphertext without its `tag` and afterwards
/// the plaintext.
///
/// The tag is checked before anything is decrypted, so on failure `body` is unchanged and the
/// caller may try the other `last` flag. A chunk that is not `last` must be exactly
/// [`CHUNK_SIZE`] bytes. A final chunk that authenticates but is empty although it is not the
/// first is refused with [`AgeError::EmptyFinalChunk`], as age requires.
pub fn open_chunk(
    key: &PayloadKey,
    index: u64,
    last: bool,
    body: &mut [u8],
    tag: &[u8; TAG_SIZE],
) -> Result<(), AgeError> {
    if index == MAX_INDEX {
        return Err(AgeError::CounterOverflow);
    }
    let bad_len = if last {
        body.len() > CHUNK_SIZE
    } else {
        body.len() != CHUNK_SIZE
    };
    if bad_len {
        return Err(AgeError::ChunkAuth { chunk: index });
    }
    key.cipher()
        .decrypt_in_place_detached(&chunk_nonce(index, last), b"", body, Tag::from_slice(tag))
        .map_err(|_| AgeError::ChunkAuth { chunk: index })?;
    if last && body.is_empty() && index > 0 {
        return Err(AgeError::EmptyFinalChunk);
    }
    Ok(())
}

/// Where the chunks of a complete payload held in memory lie, so that they can be sealed or
/// opened in any order (for instance on several threads) with the results of the streaming
/// writer and reader.
///
/// Chunk `i` is plaintext bytes `i * CHUNK_SIZE ..` (at most [`CHUNK_SIZE`] of them) and
/// ciphertext bytes `i * ENCRYPTED_CHUNK_SIZE ..` (that plus [`TAG_SIZE`]), as
/// `chunks(CHUNK_SIZE)` and `chunks(ENCRYPTED_CHUNK_SIZE)` cut them; an empty plaintext is one
/// empty chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadLayout {
    chunks: usize,
    plaintext_len: usize,
}

impl PayloadLayout {
    /// The payload that seals `plaintext_len` bytes.
    pub fn for_plaintext(plaintext_len: usize) -> Result<Self, AgeError> {
        let layout = PayloadLayout {
            chunks: plaintext_len.div_ceil(CHUNK_SIZE).max(1),
            plaintext_len,
        };
        layout.checked_ciphertext_len()?;
        Ok(layout)
    }

    /// The payload of `ciphertext_len` bytes; [`AgeError::Truncated`] when it is empty or ends
    /// inside a tag. Whether the chunks authenticate is for [`PayloadLayout::open`] to say.
    pub fn for_ciphertext(ciphertext_len: usize) -> Result<Self, AgeError> {
        let full = ciphertext_len / ENCRYPTED_CHUNK_SIZE;
        let rem = ciphertext_len % ENCRYPTED_CHUNK_SIZE;
        let layout = match rem {
            0 if full == 0 => return Err(AgeError::Truncated),
            0 => PayloadLayout {
                chunks: full,
                plaintext_len: full * CHUNK_SIZE,
            },
            // A chunk cut off inside its tag.
            r if r < TAG_SIZE => return Err(AgeError::Truncated),
            _ => PayloadLayout {
                chunks: full + 1,
                plaintext_len: full * CHUNK_SIZE + rem - TAG_SIZE,
            },
        };
        layout.checked_ciphertext_len()?;
        Ok(layout)
    }

    fn checked_ciphertext_len(&self) -> Result<usize, AgeError> {
        let last = u64::try_from(self.chunks - 1).map_err(|_| AgeError::CounterOverflow)?;
        if last == MAX_INDEX {
            return Err(AgeError::CounterOverflow);
        }
        self.chunks
            .checked_mul(TAG_SIZE)
            .and_then(|tags| tags.checked_add(self.plaintext_len))
            .ok_or(AgeError::CounterOverflow)
    }

    /// Number of chunks (at least one).
    pub fn chunks(&self) -> usize {
        self.chunks
    }

    /// Plaintext bytes of the whole payload.
    pub fn plaintext_len(&self) -> usize {
        self.plaintext_len
    }

    /// Ciphertext bytes of the whole payload (plaintext plus one tag per chunk).
    pub fn ciphertext_len(&self) -> usize {
        // Checked when the layout was made.
        self.plaintext_len + self.chunks * TAG_SIZE
    }

    /// The chunk's index as the nonce counter, and whether it is the final chunk.
    fn position(&self, index: usize) -> Result<(u64, bool), AgeError> {
        if index >= self.chunks {
            return Err(AgeError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "chunk index past the end of the payload",
            )));
        }
        // `checked_ciphertext_len` made sure every index fits the counter.
        let counter = u64::try_from(index).map_err(|_| AgeError::CounterOverflow)?;
        Ok((counter, index + 1 == self.chunks))
    }

    /// Seals chunk `index` in place with [`seal_chunk`]; returns its tag.
    pub fn seal(
        &self,
        key: &PayloadKey,
        index: usize,
        body: &mut [u8],
    ) -> Result<[u8; TAG_SIZE], AgeError> {
        let (counter, last) = self.position(index)?;
        seal_chunk(key, counter, last, body)
    }

    /// Opens chunk `index` in place with [`open_chunk`], and on failure says why as the
    /// streaming reader would for the same file: a chunk that opens only with the other
    /// `last` flag means the file was cut at a chunk boundary ([`AgeError::Truncated`]) or
    /// goes on after its final chunk ([`AgeError::TrailingData`]). On any error `body` is
    /// wiped.
    pub fn open(
        &self,
        key: &PayloadKey,
        index: usize,
        body: &mut [u8],
        tag: &[u8; TAG_SIZE],
    ) -> Result<(), AgeError> {
        let (counter, last) = self.position(index)?;
        let err = match open_chunk(key, counter, last, body, tag) {
            Ok(()) => return Ok(()),
            Err(AgeError::ChunkAuth { .. }) => {
                match (open_chunk(key, counter, !last, body, tag).is_ok(), last) {
                    (true, true) => AgeError::Truncated,
                    (true, false) => AgeError::TrailingData,
                    (false, _) => AgeError::ChunkAuth { chunk: counter },
                }
            }
            Err(e) => e,
        };
        body.zeroize();
        Err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> PayloadKey {
        PayloadKey::derive(&FileKey::from_bytes([seed; 16]), &[4u8; NONCE_SIZE])
    }

    /// Seals `pt` as chunk `index` and returns ciphertext || tag.
    fn sealed(k: &PayloadKey, index: u64, last: bool, pt: &[u8]) -> Vec<u8> {
        let mut c = pt.to_vec();
        let tag = seal_chunk(k, index, last, &mut c).unwrap();
        c.extend_from_slice(&tag);
        c
    }

    /// Opens ciphertext || tag as chunk `index`.
    fn opened(k: &PayloadKey, index: u64, last: bool, ct: &[u8]) -> Result<Vec<u8>, AgeError> {
        let (body, tag) = ct.split_at(ct.len() - TAG_SIZE);
        let mut body = body.to_vec();
        open_chunk(k, index, last, &mut body, tag.try_into().unwrap())?;
        Ok(body)
    }

    #[test]
    fn chunk_round_trip() {
        let k = key(1);
        let full: Vec<u8> = (0..CHUNK_SIZE).map(|i| (i % 251) as u8).collect();
        for (index, last, pt) in [
            (0, true, &b""[..]),
            (0, true, b"abc"),
            (0, false, &full[..]),
            (7, false, &full[..]),
            (7, true, &full[..]),
            (3, true, &full[..100]),
        ] {
            let ct = sealed(&k, index, last, pt);
            assert_eq!(ct.len(), pt.len() + TAG_SIZE);
            if !pt.is_empty() {
                assert_ne!(&ct[..pt.len()], pt, "the body was not encrypted");
            }
            assert_eq!(opened(&k, index, last, &ct).unwrap(), pt);
        }
    }

    #[test]
    fn nonce_is_counter_then_last_flag() {
        let n = chunk_nonce(0x0102_0304_0506_0708, true);
        assert_eq!(
            n.as_slice(),
            [0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1].as_slice()
        );
        assert_eq!(chunk_nonce(0, false).as_slice(), [0u8; 12].as_slice());
        // The spec's nonce for chunk 1 of a longer file: counter 1, not last.
        let mut one = [0u8; 12];
        one[10] = 1;
        assert_eq!(chunk_nonce(1, false).as_slice(), one.as_slice());
    }

    #[test]
    fn wrong_counter_flag_or_key_is_refused_and_leaves_the_body() {
        let k = key(1);
        let ct = sealed(&k, 2, true, b"testimony");
        let (body, tag) = ct.split_at(ct.len() - TAG_SIZE);
        let tag: &[u8; TAG_SIZE] = tag.try_into().unwrap();
        for (k, index, last) in [(key(1), 3, true), (key(1), 2, false), (key(2), 2, true)] {
            let mut b = body.to_vec();
            assert!(matches!(
                open_chunk(&k, index, last, &mut b, tag),
                Err(AgeError::ChunkAuth { chunk }) if chunk == index
            ));
            assert_eq!(b, body, "a failed open must not touch the body");
        }
        let mut b = body.to_vec();
        open_chunk(&k, 2, true, &mut b, tag).unwrap();
        assert_eq!(b, b"testimony");
    }

    #[test]
    fn tampering_is_detected() {
        let k = key(1);
        let ct = sealed(&k, 0, false, &[9u8; CHUNK_SIZE]);
        for pos in [0, CHUNK_SIZE / 2, CHUNK_SIZE - 1, CHUNK_SIZE, ct.len() - 1] {
            let mut bad = ct.clone();
            bad[pos] ^= 0x80;
            assert!(
                matches!(
                    opened(&k, 0, false, &bad),
                    Err(AgeError::ChunkAuth { chunk: 0 })
                ),
                "flipped byte {pos}"
            );
        }
    }

    #[test]
    fn chunk_sizes_are_enforced() {
        let k = key(1);
        let mut short = vec![1u8; CHUNK_SIZE - 1];
        let mut long = vec![1u8; CHUNK_SIZE + 1];
        assert!(seal_chunk(&k, 0, false, &mut short).is_err());
        assert!(seal_chunk(&k, 0, true, &mut long).is_err());
        assert!(seal_chunk(&k, 1, true, &mut []).is_err());
        assert!(matches!(
            seal_chunk(&k, MAX_INDEX, true, &mut [1]),
            Err(AgeError::CounterOverflow)
        ));
        // An empty final chunk after others authenticates but is refused.
        let tag = k.empty_final_chunk_for_tests(1);
        assert!(matches!(
            open_chunk(&k, 1, true, &mut [], &tag),
            Err(AgeError::EmptyFinalChunk)
        ));
        // A short chunk is never a non-final one.
        let ct = sealed(&k, 0, true, b"abc");
        assert!(matches!(
            opened(&k, 0, false, &ct),
            Err(AgeError::ChunkAuth { chunk: 0 })
        ));
    }

    #[test]
    fn layouts() {
        let l = PayloadLayout::for_plaintext(0).unwrap();
        assert_eq!((l.chunks(), l.ciphertext_len()), (1, TAG_SIZE));
        let l = PayloadLayout::for_plaintext(CHUNK_SIZE).unwrap();
        assert_eq!((l.chunks(), l.ciphertext_len()), (1, ENCRYPTED_CHUNK_SIZE));
        let l = PayloadLayout::for_plaintext(2 * CHUNK_SIZE + 1).unwrap();
        assert_eq!(l.chunks(), 3);
        assert_eq!(
            PayloadLayout::for_ciphertext(l.ciphertext_len()).unwrap(),
            l
        );
        for bad in [0, 1, TAG_SIZE - 1, ENCRYPTED_CHUNK_SIZE + TAG_SIZE - 1] {
            assert!(matches!(
                PayloadLayout::for_ciphertext(bad),
                Err(AgeError::Truncated)
            ));
        }
        assert!(PayloadLayout::for_plaintext(usize::MAX).is_err());
    }

    /// Seals `pt` chunk by chunk through a layout, last chunk first.
    fn seal_backwards(k: &PayloadKey, pt: &[u8]) -> Vec<u8> {
        let layout = PayloadLayout::for_plaintext(pt.len()).unwrap();
        let mut out = vec![0u8; layout.ciphertext_len()];
        let slots: Vec<_> = out.chunks_mut(ENCRYPTED_CHUNK_SIZE).collect();
        for (i, slot) in slots.into_iter().enumerate().rev() {
            let body_len = slot.len() - TAG_SIZE;
            let (body, tag) = slot.split_at_mut(body_len);
            body.copy_from_slice(&pt[i * CHUNK_SIZE..i * CHUNK_SIZE + body_len]);
            tag.copy_from_slice(&layout.seal(k, i, body).unwrap());
        }
        out
    }

    /// Opens a payload chunk by chunk through a layout, last chunk first.
    fn open_backwards(k: &PayloadKey, ct: &[u8]) -> Result<Vec<u8>, AgeError> {
        let layout = PayloadLayout::for_ciphertext(ct.len())?;
        let mut out = Vec::new();
        for (i, c) in ct.chunks(ENCRYPTED_CHUNK_SIZE).enumerate().rev() {
            let (body, tag) = c.split_at(c.len() - TAG_SIZE);
            let mut body = body.to_vec();
            layout.open(k, i, &mut body, tag.try_into().unwrap())?;
            out.splice(0..0, body);
        }
        Ok(out)
    }

    #[test]
    fn layout_seals_and_opens_in_any_order() {
        let k = key(5);
        for len in [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE - 2] {
            let pt: Vec<u8> = (0..len).map(|i| (i % 241) as u8).collect();
            let ct = seal_backwards(&k, &pt);
            // The same bytes as sealing in order.
            let mut forward = Vec::new();
            let n = len.div_ceil(CHUNK_SIZE).max(1);
            for i in 0..n {
                let end = ((i + 1) * CHUNK_SIZE).min(len);
                forward.extend(sealed(&k, i as u64, i + 1 == n, &pt[i * CHUNK_SIZE..end]));
            }
            assert_eq!(ct, forward, "len {len}");
            assert_eq!(open_backwards(&k, &ct).unwrap(), pt, "len {len}");
        }
    }

    #[test]
    fn layout_open_says_why() {
        let k = key(5);
        let pt = vec![3u8; 3 * CHUNK_SIZE + 10];
        let ct = seal_backwards(&k, &pt);
        // Cut at a chunk boundary: the new last chunk was sealed as non-final.
        assert!(matches!(
            open_backwards(&k, &ct[..2 * ENCRYPTED_CHUNK_SIZE]),
            Err(AgeError::Truncated)
        ));
        // A full final chunk with another chunk after it.
        let whole = seal_backwards(&k, &pt[..2 * CHUNK_SIZE]);
        let mut extra = whole.clone();
        extra.extend_from_slice(&ct[2 * ENCRYPTED_CHUNK_SIZE..]);
        let layout = PayloadLayout::for_ciphertext(extra.len()).unwrap();
        let mut body = whole[ENCRYPTED_CHUNK_SIZE..2 * ENCRYPTED_CHUNK_SIZE - TAG_SIZE].to_vec();
        let tag = whole[2 * ENCRYPTED_CHUNK_SIZE - TAG_SIZE..]
            .try_into()
            .unwrap();
        assert!(matches!(
            layout.open(&k, 1, &mut body, tag),
            Err(AgeError::TrailingData)
        ));
        assert!(body.iter().all(|&b| b == 0), "a refused chunk is wiped");
        // A flipped bit names the chunk.
        let mut bad = ct.clone();
        bad[ENCRYPTED_CHUNK_SIZE + 3] ^= 1;
        assert!(matches!(
            open_backwards(&k, &bad),
            Err(AgeError::ChunkAuth { chunk: 1 })
        ));
        // An index past the payload.
        let layout = PayloadLayout::for_ciphertext(ct.len()).unwrap();
        let tag = [0u8; TAG_SIZE];
        assert!(layout.open(&k, 9, &mut [], &tag).is_err());
        assert!(layout.seal(&k, 9, &mut []).is_err());
    }
}
