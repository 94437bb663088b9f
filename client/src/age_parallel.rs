//! Whole-buffer age encryption and decryption on several threads.
//!
//! The core seals and opens STREAM chunks one at a time and starts no threads
//! (`vigil_core::age::chunk`). Chunks are independent: chunk `i` depends only on the payload
//! key, `i` and whether it is the final chunk, and in a complete in-memory payload the final
//! chunk is known from the length ([`PayloadLayout`]). So this shell cuts the payload into runs
//! of chunks and hands each run to its own scoped thread, which seals or opens its chunks in
//! place with the core's routines.
//!
//! [`encrypt_to_vec_parallel`] writes the start of the file, then each worker copies its
//! chunks' plaintext into one output buffer allocated once and seals them there; the bytes are
//! those of `age::encrypt_to_vec` given the same randomness. [`decrypt_to_vec_parallel`]
//! accepts exactly the files `age::decrypt_from_slice` accepts, with the same result and the
//! same error kinds (for a damaged payload the error may name a different chunk, since all
//! chunks are checked at once), and releases plaintext only when *every* chunk authenticated;
//! on any failure the partly decrypted buffer is wiped.
//!
//! Memory is the size of the output: this is for in-memory payloads (the benchmark), not for
//! streaming evidence files, which `vigil age` encrypts with the core's bounded-memory
//! `StreamWriter`.

use std::io;

use rand_core::CryptoRngCore;
use vigil_core::age::chunk::{PayloadLayout, CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE, TAG_SIZE};
use vigil_core::age::{self, x25519, AgeError};
use zeroize::{Zeroize, Zeroizing};

/// Encrypts an in-memory message to `recipients`, sealing payload chunks on `threads` threads
/// (at least one). The result is an ordinary binary age file; its keys and nonce come from
/// `rng` (pass `&mut OsRng`).
pub fn encrypt_to_vec_parallel(
    recipients: &[x25519::Recipient],
    plaintext: &[u8],
    threads: usize,
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> Result<Vec<u8>, AgeError> {
    let (start, key) = age::start_file(recipients, rng)?;
    let layout = PayloadLayout::for_plaintext(plaintext.len())?;
    let total = start
        .len()
        .checked_add(layout.ciphertext_len())
        .ok_or(AgeError::CounterOverflow)?;
    // `vec![0; n]` gets fresh zero pages from the allocator; the workers fault them in.
    let mut out = vec![0u8; total];
    let (head, payload) = out.split_at_mut(start.len());
    head.copy_from_slice(&start);
    // One work item per chunk: (index, output slot = ciphertext || tag).
    let mut items: Vec<(usize, &mut [u8])> = payload
        .chunks_mut(ENCRYPTED_CHUNK_SIZE)
        .enumerate()
        .collect();
    for_each_on_threads(&mut items, threads, |(index, slot)| {
        let body_len = slot.len() - TAG_SIZE;
        let from = *index * CHUNK_SIZE;
        let pt = plaintext
            .get(from..from + body_len)
            .ok_or_else(|| AgeError::Io(io::Error::other("payload layout mismatch")))?;
        let (body, tag) = slot.split_at_mut(body_len);
        body.copy_from_slice(pt);
        tag.copy_from_slice(&layout.seal(&key, *index, body)?);
        Ok(())
    })?;
    drop(items);
    Ok(out)
}

/// Decrypts an in-memory age file to `identities` using `threads` worker threads (at least
/// one), refusing plaintexts longer than `max_plaintext` before decrypting anything.
///
/// Armored input is decrypted sequentially (armor must be decoded in order); binary input is
/// decrypted in parallel. Memory is the plaintext size plus nothing per chunk.
pub fn decrypt_to_vec_parallel(
    ciphertext: &[u8],
    identities: &[x25519::Identity],
    max_plaintext: usize,
    threads: usize,
) -> Result<Zeroizing<Vec<u8>>, AgeError> {
    if !age::is_binary(ciphertext) {
        return age::decrypt_from_slice(ciphertext, identities, max_plaintext);
    }
    let (key, payload) = age::unwrap_payload(ciphertext, identities)?;
    let layout = PayloadLayout::for_ciphertext(payload.len())?;
    if layout.plaintext_len() > max_plaintext {
        return Err(AgeError::PlaintextTooLarge { max: max_plaintext });
    }
    let mut out = Zeroizing::new(vec![0u8; layout.plaintext_len()]);
    // One work item per chunk: (index, ciphertext with tag, plaintext slot). `chunks_mut`
    // yields nothing for an empty plaintext, and the chained empty slot covers a final chunk
    // that is empty; every ciphertext chunk gets the slot of its plaintext.
    let mut items: Vec<(usize, &[u8], &mut [u8])> = payload
        .chunks(ENCRYPTED_CHUNK_SIZE)
        .zip(
            out.chunks_mut(CHUNK_SIZE)
                .chain(std::iter::once(&mut [][..])),
        )
        .enumerate()
        .map(|(i, (ct, slot))| (i, ct, slot))
        .collect();
    let result = for_each_on_threads(&mut items, threads, |(index, ct, slot)| {
        let (body, tag) = ct
            .split_last_chunk::<TAG_SIZE>()
            .filter(|(body, _)| body.len() == slot.len())
            .ok_or(AgeError::Truncated)?;
        slot.copy_from_slice(body);
        // Wipes the slot itself when the chunk does not open.
        layout.open(&key, *index, slot, tag)
    });
    drop(items);
    if let Err(e) = result {
        out.zeroize();
        return Err(e);
    }
    Ok(out)
}

/// Runs `work` on every item, cutting `items` into `threads` (at least one) contiguous runs,
/// each on its own scoped thread. Every thread is joined before deciding; the error of the
/// lowest failing run is returned (a run stops at its first error).
fn for_each_on_threads<T: Send>(
    items: &mut [T],
    threads: usize,
    work: impl Fn(&mut T) -> Result<(), AgeError> + Sync,
) -> Result<(), AgeError> {
    let per_thread = items.len().div_ceil(threads.max(1)).max(1);
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks_mut(per_thread)
            .map(|run| scope.spawn(move || run.iter_mut().try_for_each(work)))
            .collect();
        let mut first_err = None;
        for h in handles {
            let r = h.join().unwrap_or_else(|_| {
                Err(AgeError::Io(io::Error::other(
                    "an age worker thread panicked",
                )))
            });
            if let (Err(e), None) = (r, &first_err) {
                first_err = Some(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::{OsRng, StdRng};
    use rand::SeedableRng;
    use vigil_core::age::chunk::NONCE_SIZE;
    use vigil_core::age::format::Header;
    use vigil_core::age::{decrypt_from_slice, encrypt_to_vec};

    const MAX: usize = 64 * 1024 * 1024;

    fn ids() -> (x25519::Identity, Vec<x25519::Recipient>) {
        let id = x25519::Identity::generate(&mut OsRng);
        let others = [
            x25519::Identity::generate(&mut OsRng),
            x25519::Identity::generate(&mut OsRng),
        ];
        let mut r = vec![id.to_public()];
        r.extend(others.iter().map(|o| o.to_public()));
        (id, r)
    }

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn equals_sequential_path() {
        let (id, rcpts) = ids();
        let sizes = [
            0,
            1,
            CHUNK_SIZE - 1,
            CHUNK_SIZE,
            CHUNK_SIZE + 1,
            3 * CHUNK_SIZE,
            5 * CHUNK_SIZE + 77,
        ];
        for len in sizes {
            let pt = sample(len);
            for ct in [
                encrypt_to_vec(&rcpts, &pt, &mut OsRng).unwrap(),
                encrypt_to_vec_parallel(&rcpts, &pt, 1, &mut OsRng).unwrap(),
                encrypt_to_vec_parallel(&rcpts, &pt, 3, &mut OsRng).unwrap(),
            ] {
                let seq = decrypt_from_slice(&ct, std::slice::from_ref(&id), MAX).unwrap();
                for threads in [1, 2, 4, 64] {
                    let par = decrypt_to_vec_parallel(&ct, std::slice::from_ref(&id), MAX, threads)
                        .unwrap();
                    assert_eq!(*par, *seq, "len {len}, {threads} threads");
                    assert_eq!(*par, pt);
                }
            }
        }
    }

    fn err(ct: &[u8], id: &x25519::Identity) -> AgeError {
        match decrypt_to_vec_parallel(ct, std::slice::from_ref(id), MAX, 2) {
            Ok(_) => panic!("released plaintext from a damaged file"),
            Err(e) => e,
        }
    }

    #[test]
    fn releases_nothing_unauthenticated() {
        let (id, rcpts) = ids();
        let pt = sample(4 * CHUNK_SIZE + 100);
        let ct = encrypt_to_vec(&rcpts, &pt, &mut OsRng).unwrap();
        let (_, header_len) = Header::parse(&ct).unwrap();
        let payload_start = header_len + NONCE_SIZE;

        // One flipped bit anywhere in the payload (first, middle, last chunk, a tag).
        for off in [
            payload_start,
            payload_start + ENCRYPTED_CHUNK_SIZE + 5,
            payload_start + 2 * ENCRYPTED_CHUNK_SIZE - 1,
            ct.len() - 1,
        ] {
            let mut bad = ct.clone();
            bad[off] ^= 0x01;
            assert!(matches!(err(&bad, &id), AgeError::ChunkAuth { .. }));
            // The sequential path refuses it too.
            assert!(decrypt_from_slice(&bad, std::slice::from_ref(&id), MAX).is_err());
        }

        // Cut at a chunk boundary: the new last chunk was sealed as non-final.
        let cut = &ct[..payload_start + 2 * ENCRYPTED_CHUNK_SIZE];
        assert!(matches!(err(cut, &id), AgeError::Truncated));
        // Cut inside a tag, or right after the nonce.
        let cut = &ct[..payload_start + 2 * ENCRYPTED_CHUNK_SIZE + 5];
        assert!(matches!(err(cut, &id), AgeError::Truncated));
        assert!(matches!(
            err(&ct[..payload_start], &id),
            AgeError::Truncated
        ));
        assert!(matches!(
            err(&ct[..payload_start - 3], &id),
            AgeError::MissingNonce
        ));
        // A chunk after the final one.
        let mut extra = ct.clone();
        let last_chunk = ct[payload_start + 4 * ENCRYPTED_CHUNK_SIZE..].to_vec();
        extra.extend_from_slice(&last_chunk);
        assert!(err(&extra, &id).to_string().contains("chunk"));
        // A modified header (MAC), and the wrong identity.
        let mut hdr = ct.clone();
        hdr[header_len - 3] ^= 0x01;
        assert!(decrypt_to_vec_parallel(&hdr, std::slice::from_ref(&id), MAX, 2).is_err());
        let stranger = x25519::Identity::generate(&mut OsRng);
        assert!(matches!(err(&ct, &stranger), AgeError::NoMatch));
        // The size limit is enforced before decrypting.
        assert!(matches!(
            decrypt_to_vec_parallel(&ct, std::slice::from_ref(&id), 100, 2),
            Err(AgeError::PlaintextTooLarge { max: 100 })
        ));
    }

    #[test]
    fn parallel_encryption_matches_the_sequential_writer() {
        let (id, rcpts) = ids();
        // Given the same randomness, the very same bytes, for any thread count.
        for len in [0, 1, CHUNK_SIZE, 3 * CHUNK_SIZE + 7, 9 * CHUNK_SIZE] {
            let pt = sample(len);
            let seq = encrypt_to_vec(&rcpts, &pt, &mut StdRng::seed_from_u64(7)).unwrap();
            for threads in [1, 2, 3, 16] {
                let par =
                    encrypt_to_vec_parallel(&rcpts, &pt, threads, &mut StdRng::seed_from_u64(7))
                        .unwrap();
                assert_eq!(par, seq, "len {len}, {threads} threads");
            }
        }
        // And with fresh randomness, an ordinary file of the same length.
        for len in [0, 1, CHUNK_SIZE, 2 * CHUNK_SIZE + 5] {
            let pt = sample(len);
            let par = encrypt_to_vec_parallel(&rcpts, &pt, 2, &mut OsRng).unwrap();
            let seq = encrypt_to_vec(&rcpts, &pt, &mut OsRng).unwrap();
            assert_eq!(par.len(), seq.len());
            let out = decrypt_from_slice(&par, std::slice::from_ref(&id), MAX).unwrap();
            assert_eq!(*out, pt);
        }
        assert!(matches!(
            encrypt_to_vec_parallel(&[], b"x", 2, &mut OsRng),
            Err(AgeError::NoRecipients)
        ));
    }

    #[test]
    fn swapped_chunks_are_refused() {
        let (id, rcpts) = ids();
        let ct = encrypt_to_vec(&rcpts, &sample(3 * CHUNK_SIZE + 9), &mut OsRng).unwrap();
        let (_, header_len) = Header::parse(&ct).unwrap();
        let p = header_len + NONCE_SIZE;
        let mut bad = ct.clone();
        let (a, b) = (p, p + ENCRYPTED_CHUNK_SIZE);
        let first = ct[a..b].to_vec();
        bad[a..b].copy_from_slice(&ct[b..b + ENCRYPTED_CHUNK_SIZE]);
        bad[b..b + ENCRYPTED_CHUNK_SIZE].copy_from_slice(&first);
        assert!(matches!(err(&bad, &id), AgeError::ChunkAuth { .. }));
    }

    #[test]
    fn armored_input_falls_back_to_sequential() {
        use std::io::Write;
        use vigil_core::age::ArmoredWriter;
        let (id, rcpts) = ids();
        let pt = sample(2 * CHUNK_SIZE + 3);
        let bin = encrypt_to_vec(&rcpts, &pt, &mut OsRng).unwrap();
        let mut w = ArmoredWriter::new(Vec::new());
        w.write_all(&bin).unwrap();
        let armored = w.finish().unwrap();
        let out = decrypt_to_vec_parallel(&armored, std::slice::from_ref(&id), MAX, 2).unwrap();
        assert_eq!(*out, pt);
    }
}
