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
/// Enough for a signed text report with a few compressed photos. Neither peer holds a deposit's
/// envelope whole in memory on its way (the relay streams a large one to disk as it arrives),
/// but one frame is one item in a mailbox, fetched and acknowledged whole; larger evidence is
/// meant to travel as chunked, resumable attachments rather than as a bigger frame.
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

/// A mailbox registered with a lifetime (a reporter's reply mailbox, issue 15) is kept in whole
/// days: its expiry is stored as the start of a UTC day, so a seized store says on which day a
/// thread will be given up, not the second its registration came.
pub const MAILBOX_LIFETIME_GRANULARITY_SECS: u64 = 24 * 3600;

/// Longest lifetime a Register may ask for, in days: ten years. A relay grants at most its own
/// (smaller) limit; this only bounds what a receiver accepts as well-formed.
pub const MAX_MAILBOX_LIFETIME_DAYS: u16 = 3660;

/// Default lifetime of an unfetched item at the relay: 30 days. Long enough for an NGO that
/// checks weekly; short enough that a seized relay holds little history.
pub const DEFAULT_EXPIRY_SECS: u64 = 30 * 24 * 3600;

/// Shortest `every` and `grace` of a check-in alert: one second.
///
/// A short interval only ever affects the person who armed the alert (it is their alert that
/// is released if they miss a check-in), and it costs the relay no more than a long one: one
/// stored deadline and one timer per alert, and check-ins are rate-limited per address like
/// fetches. A floor of a minute would only stop people, and the acceptance tests, from trying
/// the feature in seconds.
pub const MIN_ALERT_INTERVAL_SECS: u32 = 1;

/// Longest `every` and `grace` of a check-in alert: 30 days, the relay's default expiry of an
/// unfetched item. An alert nobody checks in to for longer than that is an alert its owner has
/// forgotten, and a bounded interval keeps every deadline far inside `u64` arithmetic.
pub const MAX_ALERT_INTERVAL_SECS: u32 = 30 * 24 * 3600;

/// Most envelopes (NGO mailboxes) one alert may carry. A reporter sends a disappearance alert to
/// the few NGOs they trust; eight bounds one Arm's list, its quota checks and its release.
pub const MAX_ALERT_ENVELOPES: usize = 8;

/// Largest envelope of an alert: 64 KiB, the largest envelope a store keeps inline. An alert is
/// urgent text (who, where, what to do), sealed long before it is needed; evidence belongs in
/// ordinary deposits. Small envelopes let an Arm travel as one buffered head and let a release
/// be one atomic write.
pub const MAX_ALERT_ENVELOPE_LEN: usize = 64 * 1024;

/// Most mailboxes one Quote may ask about: a report goes to the few NGOs a reporter trusts, and
/// sixteen bounds the request, the answer and the relay's look-ups.
pub const MAX_QUOTE_MAILBOXES: usize = 16;

/// Largest blob (one encrypted attachment) the protocol can describe: 64 GiB. Each relay takes
/// far less (its `max_report_bytes`, 2 GiB by default); this only keeps every offset and sum of
/// a blob far inside `u64` arithmetic.
pub const MAX_BLOB_LEN: u64 = 64 * 1024 * 1024 * 1024;

/// Largest chunk of a blob in one Upload or Download: 8 MiB. Small enough that a dropped mobile
/// link loses little and that the relay holds at most this much of a blob per request (it
/// streams larger payloads to disk anyway); large enough that one request per chunk costs
/// little next to the bytes.
pub const MAX_BLOB_CHUNK: usize = 8 * 1024 * 1024;

/// Most blobs one deposit may refer to: a report's attachments. Bounds the fixed slot list of
/// a DepositBlobs head and each item's blob list in an Items response.
pub const MAX_BLOBS_PER_DEPOSIT: usize = 64;

/// Longest wait one Wait may ask for: 60 seconds. Long enough that a watcher asks about
/// once a minute when nothing happens; short enough that a waiting request stays well inside
/// the relay's request timeout and a QUIC connection's idle and keep-alive timers, and that a
/// waiter whose client vanished without a trace holds its slot for at most a minute.
pub const MAX_WAIT_SECS: u16 = 60;

// Each message's own body lengths (fixed sizes, head lengths, maxima) live in its exchange's file
// (`register::BODY_LEN`, `deposit::MAX_BODY_LEN`, `fetch::MAX_ITEMS_BODY_LEN`, ...), beside the
// code that encodes and decodes it. Two bounds span every message:

/// Largest body of any frame: an Items response. A stream reader may use this as an outer cap,
/// but the header check applies each type's tighter bounds (`RequestType::body_bounds`).
pub const MAX_FRAME_LEN: usize = super::fetch::MAX_ITEMS_BODY_LEN;

/// Largest request body (the biggest request is a DepositBlobs: a Deposit and its blob slots).
pub const MAX_REQUEST_LEN: usize = super::deposit_blobs::MAX_BODY_LEN;

// Invariants the decoders rely on, checked at compile time.
const _: () = assert!(MAX_ERROR_MESSAGE_LEN <= u8::MAX as usize);
const _: () = assert!(MAX_ACK_IDS <= u16::MAX as usize);
const _: () = assert!(MAX_ITEMS_PER_FETCH <= u16::MAX as u32);
const _: () = assert!(MAX_ENVELOPE_LEN <= MAX_FETCH_RESPONSE_BYTES);
const _: () = assert!(MAX_FRAME_LEN <= u32::MAX as usize);
const _: () = assert!(MAX_REQUEST_LEN <= MAX_FRAME_LEN);
const _: () = assert!(super::arm::MAX_BODY_LEN <= MAX_REQUEST_LEN);
const _: () = assert!(MAX_ALERT_ENVELOPES <= u8::MAX as usize);
const _: () = assert!(MIN_ALERT_INTERVAL_SECS >= 1);
const _: () = assert!(MAX_QUOTE_MAILBOXES <= u8::MAX as usize);
const _: () = assert!(MAX_BLOBS_PER_DEPOSIT <= u8::MAX as usize);
const _: () = assert!(MAX_BLOB_CHUNK <= u32::MAX as usize);
const _: () = assert!(super::upload::MAX_BODY_LEN <= MAX_REQUEST_LEN);
const _: () = assert!(super::deposit::MAX_BODY_LEN <= MAX_REQUEST_LEN);
