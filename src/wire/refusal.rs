//! The Error response (`0xff`): a refusal, which may answer any request.
//!
//! A relay answers every request it could read a header of with exactly one response; when it
//! will not or cannot do what was asked, that response is a [`Refusal`] with a code, a flag
//! saying whether the same request may succeed later, and a short message for people.

use super::frame::{fixed, Message};
use super::limits::MAX_ERROR_MESSAGE_LEN;
use super::WireError;

/// Largest Error body: code (u16) + retryable (u8) + message length (u8) + message.
pub const MAX_BODY_LEN: usize = 2 + 1 + 1 + MAX_ERROR_MESSAGE_LEN;

/// Error codes carried in an Error response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request could not be decoded.
    Malformed,
    /// The frame's protocol version is not supported.
    UnsupportedVersion,
    /// A length exceeds a limit.
    TooLarge,
    /// The mailbox is not registered at this relay.
    UnknownMailbox,
    /// The proof of possession did not verify (wrong key, unknown or reused nonce, another
    /// connection's proof).
    BadProof,
    /// The mailbox is full.
    QuotaExceeded,
    /// The relay could not write to or read from its disk.
    StorageFailed,
    /// The relay is overloaded or shutting down.
    Busy,
    /// The request type is unknown or not allowed.
    UnknownRequest,
    /// The relay's disk is full or read-only: it refuses new deposits and registrations until
    /// space returns, but still serves fetches and acks (which free space).
    StorageFull,
    /// This source address sent more deposits or registrations than the relay allows per unit
    /// of time, or opened more connections than allowed per address.
    RateLimited,
    /// The blob is not at this relay (never completely uploaded, or deleted once the last item
    /// referring to it was acknowledged or expired).
    UnknownBlob,
    /// A code this program does not know (from a newer peer).
    Other(u16),
}

impl ErrorCode {
    /// Numeric value on the wire.
    pub fn to_u16(self) -> u16 {
        match self {
            Self::Malformed => 1,
            Self::UnsupportedVersion => 2,
            Self::TooLarge => 3,
            Self::UnknownMailbox => 4,
            Self::BadProof => 5,
            Self::QuotaExceeded => 6,
            Self::StorageFailed => 7,
            Self::Busy => 8,
            Self::UnknownRequest => 9,
            Self::StorageFull => 10,
            Self::RateLimited => 11,
            Self::UnknownBlob => 12,
            Self::Other(n) => n,
        }
    }

    /// From the wire value; unknown values are kept as [`ErrorCode::Other`].
    pub fn from_u16(n: u16) -> Self {
        match n {
            1 => Self::Malformed,
            2 => Self::UnsupportedVersion,
            3 => Self::TooLarge,
            4 => Self::UnknownMailbox,
            5 => Self::BadProof,
            6 => Self::QuotaExceeded,
            7 => Self::StorageFailed,
            8 => Self::Busy,
            9 => Self::UnknownRequest,
            10 => Self::StorageFull,
            11 => Self::RateLimited,
            12 => Self::UnknownBlob,
            other => Self::Other(other),
        }
    }

    /// Whether a client should retry the same request later by default. A full mailbox is
    /// retryable: it empties when its NGO fetches, and an honest report refused by a flood
    /// must wait in the sender's outbox for that, not be given up.
    pub fn default_retryable(self) -> bool {
        matches!(
            self,
            Self::StorageFailed
                | Self::Busy
                | Self::StorageFull
                | Self::RateLimited
                | Self::QuotaExceeded
        )
    }

    /// The error a relay answers for a request that failed to decode.
    pub fn for_wire_error(e: &WireError) -> Self {
        match e {
            WireError::UnsupportedVersion { .. } => Self::UnsupportedVersion,
            WireError::TooLarge { .. } | WireError::TooMany { .. } => Self::TooLarge,
            WireError::UnknownType(_) | WireError::UnexpectedType(_) => Self::UnknownRequest,
            WireError::Truncated { .. }
            | WireError::TrailingData { .. }
            | WireError::Malformed(_) => Self::Malformed,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Self::Malformed => "malformed",
            Self::UnsupportedVersion => "unsupported-version",
            Self::TooLarge => "too-large",
            Self::UnknownMailbox => "unknown-mailbox",
            Self::BadProof => "bad-proof",
            Self::QuotaExceeded => "quota-exceeded",
            Self::StorageFailed => "storage-failed",
            Self::Busy => "busy",
            Self::UnknownRequest => "unknown-request",
            Self::StorageFull => "storage-full",
            Self::RateLimited => "rate-limited",
            Self::UnknownBlob => "unknown-blob",
            Self::Other(n) => return write!(f, "error-{n}"),
        };
        f.write_str(s)
    }
}

/// Response (`0xff`): the request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// What went wrong.
    pub code: ErrorCode,
    /// Whether retrying the same request later may succeed.
    pub retryable: bool,
    /// Short explanation for people (UTF-8); MUST NOT be parsed. Longer than
    /// `MAX_ERROR_MESSAGE_LEN` bytes, it is cut at a character boundary when encoded.
    pub message: String,
}

impl Refusal {
    /// A refusal with the code's default retryability.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            retryable: code.default_retryable(),
            message: message.into(),
        }
    }

    /// The message as it goes on the wire: at most `MAX_ERROR_MESSAGE_LEN` bytes, cut at a
    /// character boundary.
    fn shown(&self) -> &str {
        let mut end = self.message.len().min(MAX_ERROR_MESSAGE_LEN);
        while !self.message.is_char_boundary(end) {
            end -= 1;
        }
        &self.message[..end]
    }
}

impl Refusal {
    /// What a relay answers a request that failed to decode.
    pub fn for_wire_error(e: &WireError) -> Self {
        let message = match e {
            WireError::UnsupportedVersion { .. } => "unsupported protocol version",
            WireError::TooLarge { .. } => "frame exceeds the size limit",
            WireError::TooMany { .. } => "too many entries in the request",
            WireError::Truncated { .. } => "frame is truncated",
            WireError::TrailingData { .. } => "unexpected bytes after the request",
            WireError::UnknownType(_) | WireError::UnexpectedType(_) => "unknown request type",
            WireError::Malformed(_) => "malformed request",
        };
        Self::new(ErrorCode::for_wire_error(e), message)
    }
}

impl Message for Refusal {
    const MIN_BODY: usize = 4;
    const MAX_BODY: usize = MAX_BODY_LEN;

    fn decode(head: &[u8], _: usize) -> Result<Self, WireError> {
        fixed(head, |r| {
            let code = ErrorCode::from_u16(r.u16("error code")?);
            let retryable = r.bool("retryable flag")?;
            let len = r.u8("message length")? as usize;
            if len > MAX_ERROR_MESSAGE_LEN {
                return Err(WireError::TooLarge {
                    what: "error message",
                    len: len as u64,
                    max: MAX_ERROR_MESSAGE_LEN as u64,
                });
            }
            let message = std::str::from_utf8(r.take(len, "error message")?)
                .map_err(|_| WireError::Malformed("error message is not UTF-8"))?
                .to_string();
            Ok(Refusal {
                code,
                retryable,
                message,
            })
        })
    }

    fn body_len(&self) -> usize {
        4 + self.shown().len()
    }

    fn encode_head(&self, out: &mut Vec<u8>) {
        let msg = self.shown();
        out.extend_from_slice(&self.code.to_u16().to_be_bytes());
        out.push(u8::from(self.retryable));
        // `shown` is at most MAX_ERROR_MESSAGE_LEN <= 255 bytes.
        out.push(msg.len() as u8);
        out.extend_from_slice(msg.as_bytes());
    }
}
