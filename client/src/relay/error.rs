//! [`RelayError`]: why a relay operation failed.

use vigil_core::ids::CertFingerprint;
use vigil_core::wire::{ErrorCode, WireError};

/// Why a relay operation failed. Messages say what happens to the user's data and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The relay address is not `host:port` or does not resolve.
    #[error(
        "relay address {0:?} is not a reachable host:port; check the address on the recipient card"
    )]
    BadAddress(String),
    /// No QUIC connection could be made (network down, blocked, relay offline).
    #[error("cannot reach the relay at {addr} ({reason}); the report stays in the outbox; try again later or from another network")]
    Unreachable {
        /// The address tried.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// The relay presented a certificate other than the pinned one(s). `expected` is the card's
    /// current fingerprint; a card announcing a next certificate accepted that one too.
    #[error("the relay's identity does not match the card (possible interception); the report stays in the outbox; do not retry from this network, and confirm the relay fingerprint with the NGO over a channel you trust (card: {expected}, relay: {got})")]
    FingerprintMismatch {
        /// Fingerprint from the card.
        expected: CertFingerprint,
        /// Fingerprint the relay presented.
        got: CertFingerprint,
    },
    /// The relay answered with an Error response.
    #[error("the relay refused the request: {message} ({code}); {}", if *.retryable { "try again later" } else { "retrying will not help" })]
    Refused {
        /// The relay's error code.
        code: ErrorCode,
        /// The relay's short explanation.
        message: String,
        /// Whether the same request may succeed later.
        retryable: bool,
    },
    /// The relay's answer did not follow the protocol.
    #[error("the relay sent an invalid answer ({0}); try again later, and tell the NGO if it keeps happening")]
    Protocol(String),
    /// The connection broke during a request.
    #[error(
        "the connection to the relay was lost ({0}); the report stays in the outbox; try again"
    )]
    ConnectionLost(String),
    /// The relay did not answer in time.
    #[error("the relay did not answer within {0} seconds; the report stays in the outbox; try again later")]
    Timeout(u64),
    /// Nothing was pinned: a caller bug or a damaged state file, never a reason to trust the relay.
    #[error(
        "no relay certificate fingerprint to check the relay against; import the NGO's card again"
    )]
    NothingPinned,
    /// The envelope is larger than any relay accepts.
    #[error("the encrypted report is {len} bytes, more than a relay accepts ({max} bytes); leave out some attachments")]
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
