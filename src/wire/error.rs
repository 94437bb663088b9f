//! The one error type of the wire codec.

/// Why a frame could not be decoded. Every variant is the peer's fault (or a version mismatch);
/// the codec itself has no failure modes of its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The frame speaks a protocol version this program does not know.
    #[error("peer speaks wire protocol version {got}, this program speaks version {supported}; update one of the two programs")]
    UnsupportedVersion {
        /// The version byte received.
        got: u8,
        /// The version this program implements.
        supported: u8,
    },
    /// The frame type byte names no known message.
    #[error("unknown message type 0x{0:02x}; the peer may be a newer or a different program")]
    UnknownType(u8),
    /// A known message type arrived where it is not allowed (a response sent as a request, or
    /// the other way round).
    #[error("message type 0x{0:02x} is not allowed in this direction; the peer is misbehaving")]
    UnexpectedType(u8),
    /// A declared length or the frame itself exceeds its named maximum.
    #[error("{what} is {len} bytes, more than the limit of {max} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Declared or actual length.
        len: u64,
        /// The limit from `wire::limits`.
        max: u64,
    },
    /// A count exceeds its named maximum.
    #[error("{what}: {count} given, at most {max} allowed")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// The count received.
        count: u64,
        /// The limit from `wire::limits`.
        max: u64,
    },
    /// The input ended before the frame or a field was complete.
    #[error("frame is truncated: {what} needs {needed} more bytes than were sent")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes missing.
        needed: u64,
    },
    /// Bytes were left over after the frame or message was complete.
    #[error("{extra} unexpected bytes after the end of the message")]
    TrailingData {
        /// How many bytes were left over.
        extra: u64,
    },
    /// A field had an impossible value.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
}

impl From<crate::reader::ReadError> for WireError {
    fn from(e: crate::reader::ReadError) -> Self {
        use crate::reader::ReadError;
        match e {
            ReadError::Truncated { what, needed } => WireError::Truncated { what, needed },
            ReadError::Trailing { extra } => WireError::TrailingData { extra },
            ReadError::BadFlag { .. } => WireError::Malformed("a flag byte is neither 0 nor 1"),
        }
    }
}
