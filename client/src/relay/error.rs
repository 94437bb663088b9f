//! [`RelayError`]: why a relay operation failed.

use vigil_core::ids::CertFingerprint;
use vigil_core::wire::{ErrorCode, WireError};

/// Why a relay operation failed. Messages say what happened, in words that fit any command:
/// what it means for the user's data, and what to do, depends on the command (a report in the
/// outbox, an NGO's inbox at the relay), so each command family adds its own advice
/// (`crate::failure`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The relay address is not `host:port` or does not resolve.
    #[error("relay address {0:?} is not a host:port that resolves")]
    BadAddress(String),
    /// No connection could be made (network down, blocked, relay offline).
    #[error("cannot reach the relay at {addr} ({reason})")]
    Unreachable {
        /// The address tried.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// The relay proved a certificate other than the pinned one(s), or (`got: None`) the server
    /// at the address did not recognise the card's knock and answered as a plain web server:
    /// it is not this card's relay, or the relay's certificate changed. `expected` is the
    /// card's current fingerprint; a card announcing a next certificate accepted that one too.
    #[error("the relay's identity does not match the card (possible interception, or the relay's certificate changed; card: {expected}, relay: {})", got.map_or_else(|| "did not recognise the card".to_string(), |g| g.to_string()))]
    FingerprintMismatch {
        /// Fingerprint from the card.
        expected: CertFingerprint,
        /// Fingerprint the relay proved, if it proved one.
        got: Option<CertFingerprint>,
    },
    /// The relay answered with an Error response.
    #[error("the relay refused the request: {message} ({code}{})", if *.retryable { ", temporary" } else { "" })]
    Refused {
        /// The relay's error code.
        code: ErrorCode,
        /// The relay's short explanation.
        message: String,
        /// Whether the same request may succeed later.
        retryable: bool,
    },
    /// The relay's answer did not follow the protocol.
    #[error("the relay sent an invalid answer ({0})")]
    Protocol(String),
    /// The connection broke during a request.
    #[error("the connection to the relay was lost ({0})")]
    ConnectionLost(String),
    /// The relay did not answer in time.
    #[error("the relay did not answer within {0} seconds")]
    Timeout(u64),
    /// Nothing was pinned: a caller bug or a damaged state file, never a reason to trust the relay.
    #[error("no relay certificate fingerprint to check the relay against")]
    NothingPinned,
    /// The envelope is larger than any relay accepts.
    #[error("the encrypted report is {len} bytes, more than a relay accepts ({max} bytes)")]
    TooLarge {
        /// Envelope length.
        len: usize,
        /// `MAX_ENVELOPE_LEN`.
        max: usize,
    },
}

impl RelayError {
    /// Whether trying again later (same relay, same data) may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            RelayError::Unreachable { .. }
            | RelayError::ConnectionLost(_)
            | RelayError::Timeout(_) => true,
            RelayError::Refused { retryable, .. } => *retryable,
            _ => false,
        }
    }
}

impl From<WireError> for RelayError {
    fn from(e: WireError) -> Self {
        RelayError::Protocol(e.to_string())
    }
}
