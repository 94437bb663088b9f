//! Frame header: `version u8 | type u8 | length u32 BE`, followed by `length` body bytes.
//!
//! A stream reader reads the six header bytes, calls [`decode_request_header`] (or
//! [`decode_response_header`]), and only then reads — and allocates for — exactly
//! `header.body_len` bytes, which the header check has already bounded by the per-type maximum.

use super::limits::*;
use super::WireError;

/// The message a frame carries. Requests have the high bit clear, responses set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    /// Request: ask for a fresh challenge nonce.
    Challenge = 0x01,
    /// Request: register a mailbox public key.
    Register = 0x02,
    /// Request: deposit an envelope into a mailbox (anonymous).
    Deposit = 0x03,
    /// Request: fetch items from a mailbox (proof required).
    Fetch = 0x04,
    /// Request: acknowledge (delete) fetched items (proof required).
    Ack = 0x05,
    /// Response to Challenge.
    ChallengeNonce = 0x81,
    /// Response to Register.
    Registered = 0x82,
    /// Response to Deposit, sent only after the envelope is on disk.
    Stored = 0x83,
    /// Response to Fetch.
    Items = 0x84,
    /// Response to Ack.
    Acked = 0x85,
    /// Response to any request that was refused.
    Error = 0xff,
}

impl FrameType {
    /// Parse a type byte.
    pub fn from_u8(b: u8) -> Result<Self, WireError> {
        Ok(match b {
            0x01 => Self::Challenge,
            0x02 => Self::Register,
            0x03 => Self::Deposit,
            0x04 => Self::Fetch,
            0x05 => Self::Ack,
            0x81 => Self::ChallengeNonce,
            0x82 => Self::Registered,
            0x83 => Self::Stored,
            0x84 => Self::Items,
            0x85 => Self::Acked,
            0xff => Self::Error,
            other => return Err(WireError::UnknownType(other)),
        })
    }

    /// Whether this type travels client → relay.
    pub fn is_request(self) -> bool {
        (self as u8) & 0x80 == 0
    }

    /// Smallest valid body length for this type.
    pub fn min_body_len(self) -> usize {
        match self {
            Self::Challenge => 0,
            Self::Register => REGISTER_BODY_LEN,
            Self::Deposit => DEPOSIT_FIXED_LEN + 1,
            Self::Fetch => FETCH_BODY_LEN,
            Self::Ack => ACK_FIXED_LEN + 16,
            Self::ChallengeNonce => NONCE_LEN,
            Self::Registered => 32,
            Self::Stored => 1,
            Self::Items => 2,
            Self::Acked => 8,
            Self::Error => 4,
        }
    }

    /// Largest valid body length for this type; see `wire::limits` for the reasons.
    pub fn max_body_len(self) -> usize {
        match self {
            Self::Challenge => 0,
            Self::Register => REGISTER_BODY_LEN,
            Self::Deposit => MAX_DEPOSIT_BODY_LEN,
            Self::Fetch => FETCH_BODY_LEN,
            Self::Ack => MAX_ACK_BODY_LEN,
            Self::ChallengeNonce => NONCE_LEN,
            Self::Registered => 32,
            Self::Stored => 1,
            Self::Items => MAX_ITEMS_BODY_LEN,
            Self::Acked => 8,
            Self::Error => MAX_ERROR_BODY_LEN,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Challenge => "Challenge body",
            Self::Register => "Register body",
            Self::Deposit => "Deposit body",
            Self::Fetch => "Fetch body",
            Self::Ack => "Ack body",
            Self::ChallengeNonce => "ChallengeNonce body",
            Self::Registered => "Registered body",
            Self::Stored => "Stored body",
            Self::Items => "Items body",
            Self::Acked => "Acked body",
            Self::Error => "Error body",
        }
    }
}

/// A checked frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The message type.
    pub frame_type: FrameType,
    /// Body length; already checked against the type's minimum and maximum.
    pub body_len: usize,
}

fn decode_header(h: &[u8; FRAME_HEADER_LEN], want_request: bool) -> Result<FrameHeader, WireError> {
    if h[0] != PROTOCOL_VERSION {
        return Err(WireError::UnsupportedVersion {
            got: h[0],
            supported: PROTOCOL_VERSION,
        });
    }
    let frame_type = FrameType::from_u8(h[1])?;
    if frame_type.is_request() != want_request {
        return Err(WireError::UnexpectedType(h[1]));
    }
    let len = u32::from_be_bytes([h[2], h[3], h[4], h[5]]) as u64;
    let max = frame_type.max_body_len() as u64;
    if len > max {
        return Err(WireError::TooLarge {
            what: frame_type.name(),
            len,
            max,
        });
    }
    let min = frame_type.min_body_len() as u64;
    if len < min {
        return Err(WireError::Truncated {
            what: frame_type.name(),
            needed: min - len,
        });
    }
    // len <= max, and every max fits in usize (checked in limits.rs).
    Ok(FrameHeader {
        frame_type,
        body_len: len as usize,
    })
}

/// Check the header of a frame sent by a client. Fails on an unknown version or type, a response
/// type, or a length outside the type's bounds — before any body byte is read.
pub fn decode_request_header(h: &[u8; FRAME_HEADER_LEN]) -> Result<FrameHeader, WireError> {
    decode_header(h, true)
}

/// Check the header of a frame sent by a relay.
pub fn decode_response_header(h: &[u8; FRAME_HEADER_LEN]) -> Result<FrameHeader, WireError> {
    decode_header(h, false)
}

/// Split a complete frame into its checked header and body, rejecting trailing bytes.
pub(crate) fn split_frame(
    frame: &[u8],
    want_request: bool,
) -> Result<(FrameHeader, &[u8]), WireError> {
    let (head, body) = frame
        .split_first_chunk::<FRAME_HEADER_LEN>()
        .ok_or_else(|| WireError::Truncated {
            what: "frame header",
            needed: FRAME_HEADER_LEN.saturating_sub(frame.len()) as u64,
        })?;
    let header = decode_header(head, want_request)?;
    match body.len().cmp(&header.body_len) {
        std::cmp::Ordering::Less => Err(WireError::Truncated {
            what: header.frame_type.name(),
            needed: (header.body_len - body.len()) as u64,
        }),
        std::cmp::Ordering::Greater => Err(WireError::TrailingData {
            extra: (body.len() - header.body_len) as u64,
        }),
        std::cmp::Ordering::Equal => Ok((header, body)),
    }
}

/// Start a frame: header with a placeholder length. [`finish_frame`] fills the length in.
pub(crate) fn start_frame(t: FrameType, capacity: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(FRAME_HEADER_LEN + capacity);
    v.push(PROTOCOL_VERSION);
    v.push(t as u8);
    v.extend_from_slice(&[0; 4]);
    v
}

/// Write the body length into a frame built by [`start_frame`].
///
/// Callers only build bodies within `MAX_FRAME_LEN`, which fits in u32 (checked in limits.rs);
/// the saturating conversion makes an oversize body fail the peer's length check rather than
/// wrap around.
pub(crate) fn finish_frame(mut v: Vec<u8>) -> Vec<u8> {
    let len = u32::try_from(v.len() - FRAME_HEADER_LEN).unwrap_or(u32::MAX);
    v[2..6].copy_from_slice(&len.to_be_bytes());
    v
}
