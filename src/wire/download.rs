//! Download: anyone holding a blob id reads a chunk of the blob; the relay answers BlobChunk.
//!
//! No proof: the blob id is 128 random bits chosen by the reporter's client, and the relay
//! reveals it only to a mailbox's owner, in an authenticated Fetch of an item that refers to the
//! blob (the Fetch blobs flag). Knowing the id is the capability, as knowing a mailbox id is the
//! capability to deposit. What a download returns is ciphertext to a key inside the NGO's
//! envelope. Downloads are rate-limited per address like fetches.
//!
//! The relay answers only from a complete blob, and only within it: `offset + len` at most the
//! blob's length. It streams the chunk from its file under the write deadline; the answer's body
//! is exactly the bytes asked for.

use super::frame::{fixed, Message};
use super::limits::{MAX_BLOB_CHUNK, MAX_BLOB_LEN};
use super::WireError;
use crate::ids::BlobId;

/// Download body: blob id (16) + offset (u64) + length (u32).
pub const BODY_LEN: usize = BlobId::LEN + 8 + 4;

/// Request (`0x0d`): `len` bytes of `blob` from `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Download {
    /// The blob.
    pub blob: BlobId,
    /// Where to start.
    pub offset: u64,
    /// How many bytes: 1 ..= `MAX_BLOB_CHUNK`.
    pub len: u32,
}

/// Response (`0x8d`): the bytes asked for, exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobChunk {
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl Message for Download {
    const MIN_BODY: usize = BODY_LEN;
    const MAX_BODY: usize = BODY_LEN;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        let d = fixed(head, |r| {
            Ok(Download {
                blob: BlobId(r.array("blob id")?),
                offset: r.u64("offset")?,
                len: r.u32("length")?,
            })
        })?;
        d.check()?;
        Ok(d)
    }

    fn check(&self) -> Result<(), WireError> {
        if self.len == 0 {
            return Err(WireError::Malformed("a download of no bytes"));
        }
        if self.len as usize > MAX_BLOB_CHUNK {
            return Err(WireError::TooLarge {
                what: "blob chunk",
                len: u64::from(self.len),
                max: MAX_BLOB_CHUNK as u64,
            });
        }
        if self.offset.saturating_add(u64::from(self.len)) > MAX_BLOB_LEN {
            return Err(WireError::TooLarge {
                what: "blob offset",
                len: self.offset,
                max: MAX_BLOB_LEN,
            });
        }
        Ok(())
    }

    fn body_len(&self) -> usize {
        BODY_LEN
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.blob.as_bytes());
        out.extend_from_slice(&self.offset.to_be_bytes());
        out.extend_from_slice(&self.len.to_be_bytes());
    }
}

/// The frame header of a BlobChunk of `len` bytes: what the relay writes before streaming them.
pub fn chunk_frame_head(len: u32) -> [u8; super::limits::FRAME_HEADER_LEN] {
    let mut h = [0u8; super::limits::FRAME_HEADER_LEN];
    h[0] = super::limits::PROTOCOL_VERSION;
    h[1] = <BlobChunk as super::Framed>::TYPE_BYTE;
    h[2..].copy_from_slice(&len.to_be_bytes());
    h
}

impl Message for BlobChunk {
    const MIN_BODY: usize = 0;
    const MAX_BODY: usize = MAX_BLOB_CHUNK;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        // The header check bounded the body by MAX_BLOB_CHUNK before it was read.
        Ok(BlobChunk {
            bytes: head.to_vec(),
        })
    }

    fn check(&self) -> Result<(), WireError> {
        if self.bytes.len() > MAX_BLOB_CHUNK {
            return Err(WireError::TooLarge {
                what: "blob chunk",
                len: self.bytes.len() as u64,
                max: MAX_BLOB_CHUNK as u64,
            });
        }
        Ok(())
    }

    fn body_len(&self) -> usize {
        self.bytes.len()
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_request_frame, decode_response_frame, encode, Request, Response};

    #[test]
    fn download_and_chunk_bytes_are_exact() {
        let d = Download {
            blob: BlobId([0xd0; 16]),
            offset: 0x0100,
            len: 3,
        };
        let bytes = encode(&d).unwrap();
        let mut want = vec![1, 0x0d, 0, 0, 0, 28];
        want.extend_from_slice(&[0xd0; 16]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 3]);
        assert_eq!(bytes, want);
        assert_eq!(decode_request_frame(&bytes), Ok((Request::Download(d), &[][..])));
        let c = BlobChunk {
            bytes: b"xyz".to_vec(),
        };
        let bytes = encode(&c).unwrap();
        assert_eq!(bytes, [1, 0x8d, 0, 0, 0, 3, b'x', b'y', b'z']);
        assert_eq!(&bytes[..6], chunk_frame_head(3));
        assert_eq!(decode_response_frame(&bytes), Ok(Response::BlobChunk(c)));
    }

    #[test]
    fn bad_downloads_are_refused() {
        let d = Download {
            blob: BlobId([1; 16]),
            offset: 0,
            len: 1,
        };
        let body = encode(&d).unwrap()[6..].to_vec();
        assert!(Download::decode(&body[..27], 27).is_err());
        let mut zero = body.clone();
        zero[24..28].copy_from_slice(&0u32.to_be_bytes());
        assert!(Download::decode(&zero, 28).is_err());
        let mut big = body.clone();
        big[24..28].copy_from_slice(&(MAX_BLOB_CHUNK as u32 + 1).to_be_bytes());
        assert!(matches!(
            Download::decode(&big, 28),
            Err(WireError::TooLarge { .. })
        ));
        let mut h = [1u8, 0x8d, 0, 0, 0, 0];
        h[2..].copy_from_slice(&(MAX_BLOB_CHUNK as u32 + 1).to_be_bytes());
        assert!(crate::wire::decode_response_header(&h).is_err());
    }
}
