//! Requests and responses, and their encoding. One request and one response per QUIC
//! bidirectional stream; see `docs/protocol.md` for the byte layout.

use super::codec::Reader;
use super::frame::{finish_frame, split_frame, start_frame, FrameType};
use super::limits::*;
use super::WireError;
use crate::ids::{DepositId, ItemId, MailboxId};

/// Proof of possession of a mailbox key: a signature over `auth::proof_message`, made with the
/// nonce the relay issued on this connection.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Proof {
    /// The challenge nonce the relay issued (single use).
    pub nonce: [u8; NONCE_LEN],
    /// Ed25519 signature over the proof message.
    pub signature: [u8; SIGNATURE_LEN],
}

impl std::fmt::Debug for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proof")
            .field("nonce", &hex::encode(self.nonce))
            .finish_non_exhaustive()
    }
}

/// A client → relay message. Borrows its variable-length fields from the frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// Ask for a fresh, single-use nonce for the next proof on this connection.
    Challenge,
    /// Register a mailbox for `public_key`; the proof shows the sender holds the secret key.
    Register {
        /// Ed25519 mailbox public key.
        public_key: [u8; PUBLIC_KEY_LEN],
        /// Proof with purpose `register`.
        proof: Proof,
    },
    /// Deposit an envelope. Anonymous: no sender identity, no proof.
    Deposit {
        /// Destination mailbox.
        mailbox: MailboxId,
        /// Chosen by the sender; a repeat of the same (mailbox, deposit id) is stored once.
        deposit_id: DepositId,
        /// The encrypted envelope, 1 ..= `MAX_ENVELOPE_LEN` bytes.
        envelope: &'a [u8],
    },
    /// Fetch up to `max_items` stored items.
    Fetch {
        /// The mailbox.
        mailbox: MailboxId,
        /// 1 ..= `MAX_ITEMS_PER_FETCH`.
        max_items: u32,
        /// Proof with purpose `fetch`.
        proof: Proof,
    },
    /// Acknowledge items, which the relay then deletes.
    Ack {
        /// The mailbox.
        mailbox: MailboxId,
        /// 1 ..= `MAX_ACK_IDS` ids.
        ids: Vec<ItemId>,
        /// Proof with purpose `ack`.
        proof: Proof,
    },
}

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
            other => Self::Other(other),
        }
    }

    /// Whether a client should retry the same request later by default.
    pub fn default_retryable(self) -> bool {
        matches!(
            self,
            Self::StorageFailed | Self::Busy | Self::StorageFull | Self::RateLimited
        )
    }

    /// The error a relay answers for a request that failed to decode.
    pub fn for_wire_error(e: &WireError) -> Self {
        match e {
            WireError::UnsupportedVersion { .. } => Self::UnsupportedVersion,
            WireError::TooLarge { .. } | WireError::TooMany { .. } => Self::TooLarge,
            WireError::UnknownType(_) | WireError::UnexpectedType(_) => Self::UnknownRequest,
            _ => Self::Malformed,
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
            Self::Other(n) => return write!(f, "error-{n}"),
        };
        f.write_str(s)
    }
}

/// One stored item in an Items response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemRef<'a> {
    /// The relay's id for the item, used to acknowledge it.
    pub id: ItemId,
    /// The envelope as deposited.
    pub envelope: &'a [u8],
}

/// A relay → client message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response<'a> {
    /// A fresh nonce for the next proof on this connection.
    ChallengeNonce([u8; NONCE_LEN]),
    /// The mailbox is registered (or already was, for the same key).
    Registered(MailboxId),
    /// The envelope is on the relay's disk. `duplicate` is true when this (mailbox, deposit id)
    /// had been stored before and nothing new was written.
    Stored {
        /// A retry of an earlier deposit.
        duplicate: bool,
    },
    /// Items from the mailbox, oldest first where the relay can tell.
    Items(Vec<ItemRef<'a>>),
    /// How many of the acknowledged ids were deleted (ids already gone are not counted).
    Acked(u64),
    /// The request was refused.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// Whether retrying the same request later may succeed.
        retryable: bool,
        /// Short human-readable explanation (UTF-8, at most `MAX_ERROR_MESSAGE_LEN` bytes).
        message: &'a str,
    },
}

fn too_many(what: &'static str, count: usize, max: usize) -> WireError {
    WireError::TooMany {
        what,
        count: count as u64,
        max: max as u64,
    }
}

fn too_large(what: &'static str, len: usize, max: usize) -> WireError {
    WireError::TooLarge {
        what,
        len: len as u64,
        max: max as u64,
    }
}

impl Request<'_> {
    /// The frame type of this request.
    pub fn frame_type(&self) -> FrameType {
        match self {
            Self::Challenge => FrameType::Challenge,
            Self::Register { .. } => FrameType::Register,
            Self::Deposit { .. } => FrameType::Deposit,
            Self::Fetch { .. } => FrameType::Fetch,
            Self::Ack { .. } => FrameType::Ack,
        }
    }

    /// Encode as a complete frame. Fails if a field is outside the limits a relay enforces, so a
    /// client learns that before sending.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let t = self.frame_type();
        let out = match self {
            Self::Challenge => start_frame(t, 0),
            Self::Register { public_key, proof } => {
                let mut v = start_frame(t, REGISTER_BODY_LEN);
                v.extend_from_slice(public_key);
                v.extend_from_slice(&proof.nonce);
                v.extend_from_slice(&proof.signature);
                v
            }
            Self::Deposit {
                mailbox,
                deposit_id,
                envelope,
            } => {
                if envelope.is_empty() {
                    return Err(WireError::Malformed("envelope is empty"));
                }
                if envelope.len() > MAX_ENVELOPE_LEN {
                    return Err(too_large("envelope", envelope.len(), MAX_ENVELOPE_LEN));
                }
                let mut v = start_frame(t, DEPOSIT_FIXED_LEN + envelope.len());
                v.extend_from_slice(mailbox.as_bytes());
                v.extend_from_slice(deposit_id.as_bytes());
                v.extend_from_slice(envelope);
                v
            }
            Self::Fetch {
                mailbox,
                max_items,
                proof,
            } => {
                check_max_items(*max_items)?;
                let mut v = start_frame(t, FETCH_BODY_LEN);
                v.extend_from_slice(mailbox.as_bytes());
                v.extend_from_slice(&proof.nonce);
                v.extend_from_slice(&max_items.to_be_bytes());
                v.extend_from_slice(&proof.signature);
                v
            }
            Self::Ack {
                mailbox,
                ids,
                proof,
            } => {
                check_ack_count(ids.len())?;
                let mut v = start_frame(t, ACK_FIXED_LEN + 16 * ids.len());
                v.extend_from_slice(mailbox.as_bytes());
                v.extend_from_slice(&proof.nonce);
                // check_ack_count bounds len by MAX_ACK_IDS <= u16::MAX.
                v.extend_from_slice(&(ids.len() as u16).to_be_bytes());
                for id in ids {
                    v.extend_from_slice(id.as_bytes());
                }
                v.extend_from_slice(&proof.signature);
                v
            }
        };
        Ok(finish_frame(out))
    }
}

fn check_max_items(n: u32) -> Result<(), WireError> {
    if n == 0 {
        return Err(WireError::Malformed("max items is zero"));
    }
    if n > MAX_ITEMS_PER_FETCH {
        return Err(too_many(
            "items per fetch",
            n as usize,
            MAX_ITEMS_PER_FETCH as usize,
        ));
    }
    Ok(())
}

fn check_ack_count(n: usize) -> Result<(), WireError> {
    if n == 0 {
        return Err(WireError::Malformed("ack carries no item ids"));
    }
    if n > MAX_ACK_IDS {
        return Err(too_many("ack ids", n, MAX_ACK_IDS));
    }
    Ok(())
}

fn proof(r: &mut Reader<'_>, nonce: [u8; NONCE_LEN]) -> Result<Proof, WireError> {
    Ok(Proof {
        nonce,
        signature: r.array("signature")?,
    })
}

/// Decode a complete request frame (header and body), rejecting trailing bytes.
pub fn decode_request(frame: &[u8]) -> Result<Request<'_>, WireError> {
    let (h, body) = split_frame(frame, true)?;
    decode_request_body(h.frame_type, body)
}

/// Everything of a Deposit frame before its envelope: the frame header (with the full length)
/// and the fixed body start. A sender writes this and then the envelope itself, so a large
/// envelope is not copied into a frame first; the bytes on the wire are exactly those of
/// [`Request::encode`].
pub fn encode_deposit_head(
    mailbox: &MailboxId,
    deposit_id: &DepositId,
    envelope_len: usize,
) -> Result<Vec<u8>, WireError> {
    if envelope_len == 0 {
        return Err(WireError::Malformed("envelope is empty"));
    }
    if envelope_len > MAX_ENVELOPE_LEN {
        return Err(too_large("envelope", envelope_len, MAX_ENVELOPE_LEN));
    }
    let mut v = start_frame(FrameType::Deposit, DEPOSIT_FIXED_LEN);
    v.extend_from_slice(mailbox.as_bytes());
    v.extend_from_slice(deposit_id.as_bytes());
    let len = u32::try_from(DEPOSIT_FIXED_LEN + envelope_len).unwrap_or(u32::MAX);
    v[2..6].copy_from_slice(&len.to_be_bytes());
    Ok(v)
}

/// The fixed start of a deposit body: the mailbox and the deposit id. A relay that streams a
/// large envelope to disk reads these first and the envelope (everything after them, whose
/// length the frame header gives) piece by piece, instead of calling [`decode_request_body`] on
/// a body held in memory.
pub fn decode_deposit_head(head: &[u8; DEPOSIT_FIXED_LEN]) -> (MailboxId, DepositId) {
    let mut mailbox = [0u8; 32];
    let mut deposit = [0u8; 16];
    mailbox.copy_from_slice(&head[..32]);
    deposit.copy_from_slice(&head[32..]);
    (MailboxId(mailbox), DepositId(deposit))
}

/// Decode a request body whose header was already checked by `decode_request_header`.
pub fn decode_request_body(t: FrameType, body: &[u8]) -> Result<Request<'_>, WireError> {
    if body.len() > t.max_body_len() {
        return Err(too_large("request body", body.len(), t.max_body_len()));
    }
    let mut r = Reader::new(body);
    let req = match t {
        FrameType::Challenge => Request::Challenge,
        FrameType::Register => {
            let public_key = r.array("public key")?;
            let nonce = r.array("nonce")?;
            Request::Register {
                public_key,
                proof: proof(&mut r, nonce)?,
            }
        }
        FrameType::Deposit => {
            let mailbox = MailboxId(r.array("mailbox id")?);
            let deposit_id = DepositId(r.array("deposit id")?);
            let envelope = r.rest();
            if envelope.is_empty() {
                return Err(WireError::Malformed("envelope is empty"));
            }
            if envelope.len() > MAX_ENVELOPE_LEN {
                return Err(too_large("envelope", envelope.len(), MAX_ENVELOPE_LEN));
            }
            Request::Deposit {
                mailbox,
                deposit_id,
                envelope,
            }
        }
        FrameType::Fetch => {
            let mailbox = MailboxId(r.array("mailbox id")?);
            let nonce = r.array("nonce")?;
            let max_items = r.u32("max items")?;
            check_max_items(max_items)?;
            Request::Fetch {
                mailbox,
                max_items,
                proof: proof(&mut r, nonce)?,
            }
        }
        FrameType::Ack => {
            let mailbox = MailboxId(r.array("mailbox id")?);
            let nonce = r.array("nonce")?;
            let count = r.u16("ack count")? as usize;
            check_ack_count(count)?;
            // Check the ids are all present before allocating for them.
            if r.remaining() < 16 * count + SIGNATURE_LEN {
                return Err(WireError::Truncated {
                    what: "ack ids",
                    needed: (16 * count + SIGNATURE_LEN - r.remaining()) as u64,
                });
            }
            let mut ids = Vec::with_capacity(count);
            for _ in 0..count {
                ids.push(ItemId(r.array("item id")?));
            }
            Request::Ack {
                mailbox,
                ids,
                proof: proof(&mut r, nonce)?,
            }
        }
        other => return Err(WireError::UnexpectedType(other as u8)),
    };
    r.finish()?;
    Ok(req)
}

impl Response<'_> {
    /// The frame type of this response.
    pub fn frame_type(&self) -> FrameType {
        match self {
            Self::ChallengeNonce(_) => FrameType::ChallengeNonce,
            Self::Registered(_) => FrameType::Registered,
            Self::Stored { .. } => FrameType::Stored,
            Self::Items(_) => FrameType::Items,
            Self::Acked(_) => FrameType::Acked,
            Self::Error { .. } => FrameType::Error,
        }
    }

    /// Encode as a complete frame. An Error message longer than `MAX_ERROR_MESSAGE_LEN` is cut at
    /// a character boundary; an Items list beyond the limits is refused.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let t = self.frame_type();
        let out = match self {
            Self::ChallengeNonce(n) => {
                let mut v = start_frame(t, NONCE_LEN);
                v.extend_from_slice(n);
                v
            }
            Self::Registered(m) => {
                let mut v = start_frame(t, 32);
                v.extend_from_slice(m.as_bytes());
                v
            }
            Self::Stored { duplicate } => {
                let mut v = start_frame(t, 1);
                v.push(u8::from(*duplicate));
                v
            }
            Self::Items(items) => {
                if items.len() > MAX_ITEMS_PER_FETCH as usize {
                    return Err(too_many("items", items.len(), MAX_ITEMS_PER_FETCH as usize));
                }
                let total: usize = items.iter().map(|i| i.envelope.len()).sum();
                if total > MAX_FETCH_RESPONSE_BYTES {
                    return Err(too_large("items", total, MAX_FETCH_RESPONSE_BYTES));
                }
                let mut v = start_frame(t, 2 + ITEM_OVERHEAD_LEN * items.len() + total);
                v.extend_from_slice(&(items.len() as u16).to_be_bytes());
                for i in items {
                    if i.envelope.is_empty() || i.envelope.len() > MAX_ENVELOPE_LEN {
                        return Err(too_large(
                            "item envelope",
                            i.envelope.len(),
                            MAX_ENVELOPE_LEN,
                        ));
                    }
                    v.extend_from_slice(i.id.as_bytes());
                    v.extend_from_slice(&(i.envelope.len() as u32).to_be_bytes());
                    v.extend_from_slice(i.envelope);
                }
                v
            }
            Self::Acked(n) => {
                let mut v = start_frame(t, 8);
                v.extend_from_slice(&n.to_be_bytes());
                v
            }
            Self::Error {
                code,
                retryable,
                message,
            } => {
                let mut end = message.len().min(MAX_ERROR_MESSAGE_LEN);
                while !message.is_char_boundary(end) {
                    end -= 1;
                }
                let msg = &message.as_bytes()[..end];
                let mut v = start_frame(t, 4 + msg.len());
                v.extend_from_slice(&code.to_u16().to_be_bytes());
                v.push(u8::from(*retryable));
                v.push(msg.len() as u8);
                v.extend_from_slice(msg);
                v
            }
        };
        Ok(finish_frame(out))
    }
}

/// Decode a complete response frame, rejecting trailing bytes.
pub fn decode_response(frame: &[u8]) -> Result<Response<'_>, WireError> {
    let (h, body) = split_frame(frame, false)?;
    decode_response_body(h.frame_type, body)
}

/// Decode a response body whose header was already checked by `decode_response_header`.
pub fn decode_response_body(t: FrameType, body: &[u8]) -> Result<Response<'_>, WireError> {
    if body.len() > t.max_body_len() {
        return Err(too_large("response body", body.len(), t.max_body_len()));
    }
    let mut r = Reader::new(body);
    let resp = match t {
        FrameType::ChallengeNonce => Response::ChallengeNonce(r.array("nonce")?),
        FrameType::Registered => Response::Registered(MailboxId(r.array("mailbox id")?)),
        FrameType::Stored => Response::Stored {
            duplicate: r.bool("duplicate flag")?,
        },
        FrameType::Items => {
            let count = r.u16("item count")? as usize;
            if count > MAX_ITEMS_PER_FETCH as usize {
                return Err(too_many("items", count, MAX_ITEMS_PER_FETCH as usize));
            }
            if r.remaining() < count * ITEM_OVERHEAD_LEN {
                return Err(WireError::Truncated {
                    what: "items",
                    needed: (count * ITEM_OVERHEAD_LEN - r.remaining()) as u64,
                });
            }
            let mut items = Vec::with_capacity(count);
            let mut total = 0usize;
            for _ in 0..count {
                let id = ItemId(r.array("item id")?);
                let len = r.u32("item length")? as usize;
                if len == 0 {
                    return Err(WireError::Malformed("item envelope is empty"));
                }
                if len > MAX_ENVELOPE_LEN {
                    return Err(too_large("item envelope", len, MAX_ENVELOPE_LEN));
                }
                total += len;
                if total > MAX_FETCH_RESPONSE_BYTES {
                    return Err(too_large("items", total, MAX_FETCH_RESPONSE_BYTES));
                }
                let envelope = r.take(len, "item envelope")?;
                items.push(ItemRef { id, envelope });
            }
            Response::Items(items)
        }
        FrameType::Acked => Response::Acked(r.u64("acked count")?),
        FrameType::Error => {
            let code = ErrorCode::from_u16(r.u16("error code")?);
            let retryable = r.bool("retryable flag")?;
            let len = r.u8("message length")? as usize;
            if len > MAX_ERROR_MESSAGE_LEN {
                return Err(too_large("error message", len, MAX_ERROR_MESSAGE_LEN));
            }
            let msg = r.take(len, "error message")?;
            let message = std::str::from_utf8(msg)
                .map_err(|_| WireError::Malformed("error message is not UTF-8"))?;
            Response::Error {
                code,
                retryable,
                message,
            }
        }
        other => return Err(WireError::UnexpectedType(other as u8)),
    };
    r.finish()?;
    Ok(resp)
}
