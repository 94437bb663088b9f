//! Every maximum the wire protocol enforces, in one place, each with the reason for its value.
//!
//! Decoders compare a peer's declared length or count against these constants *before* they
//! borrow or allocate anything, so a peer cannot make the relay or the client reserve memory it
//! has not actually sent. `docs/protocol.md` names the same constants.

/// Protocol version carried in the first byte of every frame. A receiver refuses any other value
/// instead of guessing, so a future format change can never be misread as this one.
pub const PROTOCOL_VERSION: u8 = 1;

/// Frame header: version (1) + type (1) + body length (4, big-endian).
pub const FRAME_HEADER_LEN: usize = 6;

/// Largest envelope (the age-encrypted report) a relay accepts in one deposit: 16 MiB.
///
/// Enough for a signed text report with a few compressed photos. Larger evidence needs chunked
/// streaming (planned) rather than a bigger single frame, because the relay holds one frame in
/// memory while it checks and stores it.
pub const MAX_ENVELOPE_LEN: usize = 16 * 1024 * 1024;

/// Most items one fetch may return. Bounds the item list a client must allocate for, and the
/// time the relay spends on one request.
pub const MAX_ITEMS_PER_FETCH: u32 = 64;

/// Most envelope bytes one Items response carries, summed over its items: 32 MiB.
///
/// The relay stops adding items before this is exceeded, but always includes at least one item
/// if the mailbox is not empty; since one envelope is at most [`MAX_ENVELOPE_LEN`], a single
/// item always fits.
pub const MAX_FETCH_RESPONSE_BYTES: usize = 2 * MAX_ENVELOPE_LEN;

/// Most item ids one Ack may carry: more than a full fetch, so one ack always covers one fetch,
/// while bounding the work (and the signed hash input) of one request.
pub const MAX_ACK_IDS: usize = 256;

/// Longest human-readable message in an Error response, in bytes of UTF-8. Errors are short
/// hints, not documents; a cap keeps a hostile relay from filling a client's log.
pub const MAX_ERROR_MESSAGE_LEN: usize = 200;

/// Challenges a relay keeps outstanding per connection. Requesting more evicts the oldest; a
/// client never needs more than one per concurrent stream.
pub const MAX_OUTSTANDING_CHALLENGES: usize = 16;

/// Length of a challenge nonce. 256 random bits: never repeats in practice, cannot be guessed.
pub const NONCE_LEN: usize = 32;

/// Length of the TLS keying-material exporter output bound into every proof.
pub const EXPORTER_LEN: usize = 32;

/// Exporter label (RFC 5705 / RFC 8446 section 7.5) used by both peers; no context is given.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-vigil-v1-auth";

/// Length of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;

/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// Receive times are stored rounded down to this many seconds (one hour), so the store does not
/// keep a precise timeline of when each report arrived; expiry needs no more precision.
pub const RECEIVE_TIME_GRANULARITY_SECS: u64 = 3600;

/// Default lifetime of an unfetched item at the relay: 30 days. Long enough for an NGO that
/// checks weekly; short enough that a seized relay holds little history.
pub const DEFAULT_EXPIRY_SECS: u64 = 30 * 24 * 3600;

// Body lengths per message type. Fixed-size messages have min == max.

/// Register body: public key, nonce, signature.
pub const REGISTER_BODY_LEN: usize = PUBLIC_KEY_LEN + NONCE_LEN + SIGNATURE_LEN;
/// Deposit body before the envelope: mailbox id (32) + deposit id (16).
pub const DEPOSIT_FIXED_LEN: usize = 32 + 16;
/// Largest Deposit body.
pub const MAX_DEPOSIT_BODY_LEN: usize = DEPOSIT_FIXED_LEN + MAX_ENVELOPE_LEN;
/// Fetch body: mailbox id, nonce, max items (u32), signature.
pub const FETCH_BODY_LEN: usize = 32 + NONCE_LEN + 4 + SIGNATURE_LEN;
/// Ack body without ids: mailbox id, nonce, count (u16), signature.
pub const ACK_FIXED_LEN: usize = 32 + NONCE_LEN + 2 + SIGNATURE_LEN;
/// Largest Ack body.
pub const MAX_ACK_BODY_LEN: usize = ACK_FIXED_LEN + 16 * MAX_ACK_IDS;
/// Per-item overhead in an Items response: item id (16) + length (u32).
pub const ITEM_OVERHEAD_LEN: usize = 16 + 4;
/// Largest Items body: count (u16) + per-item overhead + envelope bytes.
pub const MAX_ITEMS_BODY_LEN: usize =
    2 + ITEM_OVERHEAD_LEN * MAX_ITEMS_PER_FETCH as usize + MAX_FETCH_RESPONSE_BYTES;
/// Largest Error body: code (u16) + retryable (u8) + message length (u8) + message.
pub const MAX_ERROR_BODY_LEN: usize = 2 + 1 + 1 + MAX_ERROR_MESSAGE_LEN;

/// Largest body of any frame. A stream reader may use this as an outer cap, but decoders apply
/// the tighter per-type maximum from the header (see `FrameType::max_body_len`).
pub const MAX_FRAME_LEN: usize = MAX_ITEMS_BODY_LEN;

/// Largest request body (the biggest request is a Deposit).
pub const MAX_REQUEST_LEN: usize = MAX_DEPOSIT_BODY_LEN;

// Invariants the decoders rely on, checked at compile time.
const _: () = assert!(MAX_ERROR_MESSAGE_LEN <= u8::MAX as usize);
const _: () = assert!(MAX_ACK_IDS <= u16::MAX as usize);
const _: () = assert!(MAX_ITEMS_PER_FETCH <= u16::MAX as u32);
const _: () = assert!(MAX_ENVELOPE_LEN <= MAX_FETCH_RESPONSE_BYTES);
const _: () = assert!(MAX_FRAME_LEN <= u32::MAX as usize);
const _: () = assert!(MAX_REQUEST_LEN <= MAX_FRAME_LEN);
const _: () = assert!(MAX_ERROR_MESSAGE_LEN <= 255);
