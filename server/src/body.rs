//! A request's payload, as handlers and stores read it.
//!
//! Only a deposit has a payload (its envelope, after the 48-byte head). The listener hands it
//! over as one [`BodySource`], whatever its size: already in memory ([`Buffered`]) when it is
//! small, or read from the QUIC stream piece by piece, under a deadline, when it is large. A
//! store reads it the same way in both cases and decides for itself where the bytes go; nothing
//! between the socket and the store branches on the size.
//!
//! A source delivers exactly the payload's length and then checks that the stream ends there:
//! a truncated or over-long body is an error, never a short or padded envelope.

use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;

/// A boxed future, for the object-safe async traits of the relay (stores and body sources).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a payload could not be read to its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The stream was reset or the connection lost: nobody is left to answer.
    #[error("the client went away")]
    Gone,
    /// The payload did not arrive by its deadline (a trickling client holds relay resources).
    #[error("the request body arrived too slowly")]
    TooSlow,
    /// The stream ended before the payload was complete.
    #[error("the request body is {needed} bytes short")]
    Truncated {
        /// Bytes missing.
        needed: u64,
    },
    /// Bytes followed the payload on the stream.
    #[error("bytes follow the request body")]
    Trailing,
}

/// Where a request's payload comes from: the QUIC stream, or memory.
pub trait BodySource: Send {
    /// Payload bytes not yet delivered.
    fn remaining(&self) -> usize;

    /// The next piece of the payload, at most `max` (> 0) bytes; `Ok(None)` once all of it was
    /// delivered and the stream was seen to end right after it.
    fn next_chunk(&mut self, max: usize) -> BoxFuture<'_, Result<Option<Bytes>, BodyError>>;

    /// The whole payload at once, without a copy, if it is already in memory and nothing of it
    /// was read yet.
    fn take_buffered(&mut self) -> Option<Bytes> {
        None
    }

    /// Whether the whole payload and the end of the stream were read.
    fn finished(&self) -> bool;
}

/// Read the whole payload into memory: without a copy when it is buffered, else by collecting
/// the pieces into one exact allocation (its length is known and bounded by the frame header).
pub async fn read_all(body: &mut dyn BodySource) -> Result<Bytes, BodyError> {
    if let Some(b) = body.take_buffered() {
        return Ok(b);
    }
    let mut out = Vec::with_capacity(body.remaining());
    while let Some(chunk) = body.next_chunk(usize::MAX).await? {
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

/// A payload already in memory, whose stream was seen to end right after it.
pub struct Buffered {
    data: Bytes,
    untouched: bool,
}

impl Buffered {
    /// A payload of `data`.
    pub fn new(data: impl Into<Bytes>) -> Self {
        Self {
            data: data.into(),
            untouched: true,
        }
    }

    /// No payload (every request but a deposit).
    pub fn empty() -> Self {
        Self::new(Bytes::new())
    }
}

impl BodySource for Buffered {
    fn remaining(&self) -> usize {
        self.data.len()
    }

    fn next_chunk(&mut self, max: usize) -> BoxFuture<'_, Result<Option<Bytes>, BodyError>> {
        self.untouched = false;
        let n = self.data.len().min(max.max(1));
        let chunk = (n > 0).then(|| self.data.split_to(n));
        Box::pin(std::future::ready(Ok(chunk)))
    }

    fn take_buffered(&mut self) -> Option<Bytes> {
        if !self.untouched {
            return None;
        }
        self.untouched = false;
        Some(std::mem::take(&mut self.data))
    }

    fn finished(&self) -> bool {
        self.data.is_empty()
    }
}

/// Payload sources for tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use std::collections::VecDeque;

    /// A payload of an announced length, handed out in pieces as a network would, from data
    /// that may be shorter (truncated) or longer (trailing bytes) than announced; or the client
    /// vanishes after `gone_after` pieces. Counts the bytes read.
    pub(crate) struct Pieces {
        remaining: usize,
        pieces: VecDeque<Bytes>,
        /// Pieces handed out before the client is gone.
        pub(crate) gone_after: Option<usize>,
        handed: usize,
        ended: bool,
        /// Payload bytes handed out.
        pub(crate) read: usize,
    }

    impl Pieces {
        /// `data` in pieces of `piece` bytes, announced as `announced` bytes long.
        pub(crate) fn new(data: &[u8], piece: usize, announced: usize) -> Self {
            Self {
                remaining: announced,
                pieces: data
                    .chunks(piece.max(1))
                    .map(Bytes::copy_from_slice)
                    .collect(),
                gone_after: None,
                handed: 0,
                ended: false,
                read: 0,
            }
        }

        /// `data`, announced at its own length.
        pub(crate) fn exact(data: &[u8], piece: usize) -> Self {
            Self::new(data, piece, data.len())
        }

        fn next(&mut self, max: usize) -> Result<Option<Bytes>, BodyError> {
            if self.gone_after == Some(self.handed) {
                return Err(BodyError::Gone);
            }
            if self.remaining == 0 {
                if !self.pieces.is_empty() {
                    return Err(BodyError::Trailing);
                }
                self.ended = true;
                return Ok(None);
            }
            let Some(mut p) = self.pieces.pop_front() else {
                return Err(BodyError::Truncated {
                    needed: self.remaining as u64,
                });
            };
            let n = p.len().min(max.max(1)).min(self.remaining);
            if n < p.len() {
                self.pieces.push_front(p.split_off(n));
            }
            self.handed += 1;
            self.read += n;
            self.remaining -= n;
            Ok(Some(p))
        }
    }

    impl BodySource for Pieces {
        fn remaining(&self) -> usize {
            self.remaining
        }

        fn next_chunk(&mut self, max: usize) -> BoxFuture<'_, Result<Option<Bytes>, BodyError>> {
            Box::pin(std::future::ready(self.next(max)))
        }

        fn finished(&self) -> bool {
            self.ended
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn buffered_sources_hand_out_the_payload_once() {
        let mut b = Buffered::new(b"abcdef".to_vec());
        assert_eq!(b.remaining(), 6);
        assert_eq!(read_all(&mut b).await.unwrap(), &b"abcdef"[..]);
        assert!(b.finished());
        let mut b = Buffered::new(b"abcdef".to_vec());
        assert_eq!(b.next_chunk(4).await.unwrap().unwrap(), &b"abcd"[..]);
        assert_eq!(b.take_buffered(), None, "partly read: no longer whole");
        assert_eq!(read_all(&mut b).await.unwrap(), &b"ef"[..]);
        assert_eq!(b.next_chunk(4).await.unwrap(), None);
    }
}
