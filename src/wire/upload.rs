//! Upload: anyone sends a chunk of an attachment blob, anonymously; the relay answers Uploaded
//! with the blob's length now on stable storage.
//!
//! The head is the blob id (16 random bytes the client chose), the blob's total length and the
//! offset of this chunk; the chunk follows as the payload (0 ..= [`MAX_BLOB_CHUNK`] bytes), like
//! a deposit's envelope, so the relay streams it to disk and never holds it whole.
//!
//! Resuming: the relay writes a chunk only if its offset is exactly the length it already holds
//! durably; otherwise it writes nothing and answers that length. So a client that lost a
//! connection (or whose relay restarted) sends offset 0 with an empty chunk to ask, then
//! continues from the answer. The total is fixed by the first upload of an id: an upload
//! naming another total is refused. A blob is complete when its length reaches its total.

use super::frame::{fixed, Message};
use super::limits::{MAX_BLOB_CHUNK, MAX_BLOB_LEN};
use super::WireError;
use crate::ids::BlobId;

/// Upload head: blob id (16) + total (u64) + offset (u64).
pub const HEAD_LEN: usize = BlobId::LEN + 8 + 8;
/// Largest Upload body.
pub const MAX_BODY_LEN: usize = HEAD_LEN + MAX_BLOB_CHUNK;

/// Request (`0x0b`): the head of an upload; the chunk (`chunk_len` bytes) follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upload {
    /// The blob.
    pub blob: BlobId,
    /// The blob's whole length: 1 ..= `MAX_BLOB_LEN` (and at most the relay's
    /// `max_report_bytes`); the same in every upload of the blob.
    pub total: u64,
    /// Where the chunk starts in the blob.
    pub offset: u64,
    /// Length of the chunk that follows: 0 ..= `MAX_BLOB_CHUNK`, and `offset + chunk_len <=
    /// total`.
    pub chunk_len: usize,
}

/// Response (`0x8b`): how many bytes of the blob the relay holds durably.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uploaded {
    /// The blob's durable length: where the next chunk starts. Equal to the total once the
    /// blob is complete.
    pub offset: u64,
}

impl Upload {
    /// A whole upload frame, chunk included, for tests and tools.
    pub fn frame_with(&self, chunk: &[u8]) -> Result<Vec<u8>, WireError> {
        if chunk.len() != self.chunk_len {
            return Err(WireError::Malformed("chunk length differs from the head"));
        }
        let mut v = super::encode(self)?;
        v.extend_from_slice(chunk);
        Ok(v)
    }
}

impl Message for Upload {
    const MIN_BODY: usize = HEAD_LEN;
    const MAX_BODY: usize = MAX_BODY_LEN;

    fn head_len(_: usize) -> usize {
        HEAD_LEN
    }

    fn decode(head: &[u8], body_len: usize) -> Result<Self, WireError> {
        let u = fixed(head, |r| {
            Ok(Upload {
                blob: BlobId(r.array("blob id")?),
                total: r.u64("total length")?,
                offset: r.u64("offset")?,
                chunk_len: body_len.saturating_sub(HEAD_LEN),
            })
        })?;
        u.check()?;
        Ok(u)
    }

    fn check(&self) -> Result<(), WireError> {
        if self.total == 0 {
            return Err(WireError::Malformed("a blob is empty"));
        }
        if self.total > MAX_BLOB_LEN {
            return Err(WireError::TooLarge {
                what: "blob",
                len: self.total,
                max: MAX_BLOB_LEN,
            });
        }
        if self.chunk_len > MAX_BLOB_CHUNK {
            return Err(WireError::TooLarge {
                what: "blob chunk",
                len: self.chunk_len as u64,
                max: MAX_BLOB_CHUNK as u64,
            });
        }
        // Both terms are bounded above (64 GiB, 8 MiB) unless the offset is absurd.
        if self.offset.saturating_add(self.chunk_len as u64) > self.total {
            return Err(WireError::Malformed("chunk ends past the blob's total length"));
        }
        Ok(())
    }

    fn body_len(&self) -> usize {
        HEAD_LEN + self.chunk_len
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.blob.as_bytes());
        out.extend_from_slice(&self.total.to_be_bytes());
        out.extend_from_slice(&self.offset.to_be_bytes());
    }
}

impl Message for Uploaded {
    const MIN_BODY: usize = 8;
    const MAX_BODY: usize = 8;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        fixed(head, |r| {
            Ok(Uploaded {
                offset: r.u64("offset")?,
            })
        })
    }

    fn body_len(&self) -> usize {
        8
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.offset.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_request_frame, decode_response_frame, encode, Request, Response};

    fn upload(chunk_len: usize) -> Upload {
        Upload {
            blob: BlobId([0xb0; 16]),
            total: 10,
            offset: 4,
            chunk_len,
        }
    }

    #[test]
    fn upload_and_uploaded_bytes_are_exact() {
        let frame = upload(3).frame_with(b"abc").unwrap();
        let mut want = vec![1, 0x0b, 0, 0, 0, 35];
        want.extend_from_slice(&[0xb0; 16]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 4]);
        want.extend_from_slice(b"abc");
        assert_eq!(frame, want);
        assert_eq!(
            decode_request_frame(&frame),
            Ok((Request::Upload(upload(3)), &b"abc"[..]))
        );
        // The resume probe: offset 0, no chunk.
        let probe = Upload {
            offset: 0,
            ..upload(0)
        };
        assert_eq!(encode(&probe).unwrap().len(), 6 + HEAD_LEN);
        let bytes = encode(&Uploaded { offset: 7 }).unwrap();
        assert_eq!(bytes, [1, 0x8b, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(
            decode_response_frame(&bytes),
            Ok(Response::Uploaded(Uploaded { offset: 7 }))
        );
    }

    #[test]
    fn bad_uploads_are_refused_before_a_chunk_byte_is_read() {
        let head = &encode(&upload(3)).unwrap()[6..];
        assert!(Upload::decode(&head[..31], 34).is_err(), "truncated head");
        // A chunk past the total.
        assert!(Upload::decode(head, HEAD_LEN + 7).is_err());
        // A chunk over the limit: the header check refuses it first.
        let len = (MAX_BODY_LEN + 1) as u32;
        let mut h = [1u8, 0x0b, 0, 0, 0, 0];
        h[2..].copy_from_slice(&len.to_be_bytes());
        assert!(matches!(
            crate::wire::decode_request_header(&h),
            Err(WireError::TooLarge { .. })
        ));
        let empty = Upload {
            total: 0,
            offset: 0,
            ..upload(0)
        };
        assert!(encode(&empty).is_err());
        let huge = Upload {
            total: MAX_BLOB_LEN + 1,
            ..upload(0)
        };
        assert!(encode(&huge).is_err());
        assert!(decode_response_frame(&[1, 0x8b, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }
}
