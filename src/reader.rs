//! The one reader of untrusted bytes in the core, in the manner of rustls' `codec::Reader`:
//! every read checks what remains first, nothing is copied or allocated, and
//! [`Reader::finish`] rejects trailing data. The wire protocol and the envelope's inner layer
//! both parse with it; each turns a [`ReadError`] into its own error type.

use std::marker::PhantomData;

/// What went wrong while reading, before the caller's error type gives it a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// The input ended `needed` bytes before the field `what` was complete.
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes missing.
        needed: u64,
    },
    /// `extra` bytes were left after the last field.
    Trailing {
        /// How many.
        extra: u64,
    },
    /// A flag byte (`what`) was neither 0 nor 1.
    BadFlag {
        /// The field.
        what: &'static str,
    },
}

/// Reads fields from the front of a byte slice without panicking; errors are `E`.
pub(crate) struct Reader<'a, E> {
    buf: &'a [u8],
    error: PhantomData<fn() -> E>,
}

impl<'a, E: From<ReadError>> Reader<'a, E> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            error: PhantomData,
        }
    }

    /// Take exactly `n` bytes.
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], E> {
        match self.buf.split_at_checked(n) {
            Some((head, rest)) => {
                self.buf = rest;
                Ok(head)
            }
            None => Err(E::from(ReadError::Truncated {
                what,
                needed: (n - self.buf.len()) as u64,
            })),
        }
    }

    pub(crate) fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], E> {
        let b = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, E> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, E> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, E> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, E> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn bool(&mut self, what: &'static str) -> Result<bool, E> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(E::from(ReadError::BadFlag { what })),
        }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Succeed only if every byte was consumed.
    pub(crate) fn finish(self) -> Result<(), E> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(E::from(ReadError::Trailing {
                extra: self.buf.len() as u64,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_check_what_remains_and_finish_rejects_leftovers() {
        let mut r: Reader<'_, ReadError> = Reader::new(&[0, 1, 0, 2, 9]);
        assert_eq!(r.u16("a"), Ok(1));
        assert_eq!(r.bool("flag"), Ok(false));
        assert_eq!(r.remaining(), 2);
        assert_eq!(
            r.u32("b"),
            Err(ReadError::Truncated {
                what: "b",
                needed: 2
            })
        );
        assert_eq!(r.bool("c"), Err(ReadError::BadFlag { what: "c" }));
        assert_eq!(r.finish(), Err(ReadError::Trailing { extra: 1 }));
        let r: Reader<'_, ReadError> = Reader::new(&[]);
        assert_eq!(r.finish(), Ok(()));
    }
}
