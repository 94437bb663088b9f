//! The report envelope: sign, then encrypt.
//!
//! Inner layer (what is signed), all integers big-endian:
//!
//! | size      | field                                                         |
//! |-----------|---------------------------------------------------------------|
//! | 15        | magic `vigil-envelope` followed by the version byte: `0x05`   |
//! |           | for a report that carries a reply capability, `0x04` for one  |
//! |           | that does not (and alerts); `0x01` to `0x03` are still opened |
//! | 32        | sender's Ed25519 public key                                   |
//! | 8         | creation time, seconds since the Unix epoch (u64)             |
//! | 1         | number of intended NGOs `n`, 1..=[`MAX_INTENDED`]             |
//! | 32 × n    | identity keys of every NGO the report was sent to, sorted     |
//! | n × (1+l) | versions 2 to 4: for each key above, in the same order, the   |
//! |           | name on that NGO's card: length `l` (u8, ≤ [`MAX_NGO_NAME_LEN`],|
//! |           | 0 for none) and `l` bytes of UTF-8 without control characters |
//! | 4         | report length `m` (u32), at most [`MAX_REPORT_JSON_LEN`]      |
//! | m         | report JSON                                                   |
//! |           | versions 3 to 5: the attachments (below)                      |
//! |           | version 5 only: the reply capability (below)                  |
//! | 4         | versions 4 and 5: padding length `p` (u32)                    |
//! | p         | versions 4 and 5: `p` zero bytes                              |
//! | 64        | Ed25519 signature, domain `envelope`, over all bytes above    |
//!
//! Attachments: a count `a` (u8; version 3: 1..=[`MAX_ATTACHMENTS`]; versions 4 and 5:
//! 0..=[`MAX_ATTACHMENTS`], 0 for a report without any, and then nothing else follows); for
//! each, its file name (u8 length ≤ [`MAX_ATTACHMENT_NAME_LEN`], UTF-8, no control characters,
//! no path separators), its media type (u8 length ≤ [`MAX_MEDIA_TYPE_LEN`], printable ASCII),
//! its size (u64), the SHA-256 of its content as sent (32), the id of the blob that carries it
//! (16), and flags (u8; bit 0: metadata kept as it was, `--keep-metadata`; other bits must be
//! 0); then the *blob key* (u8 length, ≤ [`MAX_BLOB_KEY_LEN`], then the age X25519 identity
//! string that opens the blobs). The blobs are ordinary age files encrypted to that key's
//! recipient, one per report, stored once per relay (docs/protocol.md "Attachments"); the key
//! travels only here, inside every NGO's copy, signed with the rest. The content hash is what
//! the NGO's client checks as it decrypts a blob: the relay can lose a blob, not change it
//! unnoticed.
//!
//! Reply capability (version 5, issue 15): the reply mailbox id (32), the reply recipient (the
//! 32 bytes of an X25519 public key), a relay count `r` (u8, 1..=[`MAX_REPLY_RELAYS`]) and for
//! each relay its address (u8 length, 1..=[`MAX_RELAY_ADDR_LEN`], `host:port`, no whitespace
//! or control characters). The reporter's client made the mailbox key and the X25519 key for
//! this report and this NGO alone, and registered the mailbox at those relays (the NGO's, the
//! ones the report went through); the NGO deposits its signed receipt and replies there,
//! encrypted to the recipient ([`crate::thread`]). It is inside the signature like the rest:
//! nobody but the reporter can point the NGO's answers elsewhere.
//!
//! Padding (versions 4 and 5, issue 14): every report, with attachments or without, is written as
//! version 4, padded so that the *sealed* envelope is [`FIXED_ENVELOPE_LEN`] (16 KiB) long
//! when it fits in that, and otherwise as long as its Padmé bucket ([`padme_len`]) — whatever
//! the report, its addressing or the number of staff keys. The padding is inside the
//! encryption and inside the signature: the relay sees only the bucket, and nobody can strip or
//! change it without breaking the signature. The reader refuses padding that is not exactly
//! the declared number of zero bytes ([`EnvelopeError::BadPadding`]). Versions 1 to 3 carry no
//! padding and still open.
//!
//! The list of intended NGOs is inside the signature, so an NGO that receives a report cannot
//! forward it to a third party as if the reporter had addressed it there: the third party's key
//! is not in the list and [`open`] refuses it.
//!
//! The names (versions 2 to 4) let each NGO say who else received a report ("sent to 2 NGOs: Desk,
//! Civic Aid"): an NGO holds the other NGOs' keys only through this list, not their cards. They
//! are what the reporter's app read on the cards it sealed to, signed by the reporter like the
//! rest, and they label keys; they add no recipient. They travel here, beside the keys they
//! label, rather than in the report, so the report stays exactly what the reporter wrote.
//! Version 1 (no names) is still opened.
//!
//! Outer layer: the inner bytes encrypted in the age v1 format to every staff recipient of one
//! NGO's card. Any age tool can remove the outer layer; only Vigil checks the inner one. The
//! header always has [`ENVELOPE_STANZAS`] X25519 stanzas, the staff's and decoys wrapping the
//! same file key to throwaway keys, in random order, so its length does not count the staff.

use crate::age::chunk::{CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE, NONCE_SIZE, TAG_SIZE};
use crate::age::{self, x25519, AgeError};
use crate::card::MAX_CARD_RECIPIENTS;
use crate::ids::{MailboxId, ReportId};
use crate::keys::{KeyError, PublicSigningKey, SignatureDomain, SigningSecret};
use crate::padding::padme_len;
use crate::reader::{ReadError, Reader};
use crate::report::{is_display_control, Report, ReportError, MAX_REPORT_JSON_LEN};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroizing;

/// The magic of the version written for reports that carry a reply capability.
const MAGIC_V5: &[u8; 15] = b"vigil-envelope\x05";
/// The magic of the version written for reports without one, and for check-in alerts (names,
/// attachments or none, padding).
const MAGIC: &[u8; 15] = b"vigil-envelope\x04";
/// The magic of version 3 (a report with attachments, unpadded), still opened.
const MAGIC_V3: &[u8; 15] = b"vigil-envelope\x03";
/// The magic of version 2 (NGO names, no attachments, unpadded), still opened.
const MAGIC_V2: &[u8; 15] = b"vigil-envelope\x02";
/// The magic of version 1 (no NGO names), still opened.
const MAGIC_V1: &[u8; 15] = b"vigil-envelope\x01";
/// Most NGOs one report can be addressed to. Each costs 32 bytes in every copy.
pub const MAX_INTENDED: usize = 16;
/// Longest NGO name carried in the envelope, in bytes; a longer card name is cut at a
/// character boundary.
pub const MAX_NGO_NAME_LEN: usize = 200;
/// Most attachments one report carries.
pub const MAX_ATTACHMENTS: usize = 64;
/// Longest attachment file name, in bytes.
pub const MAX_ATTACHMENT_NAME_LEN: usize = 255;
/// Longest media type, in bytes.
pub const MAX_MEDIA_TYPE_LEN: usize = 127;
/// Longest blob key (an age X25519 identity string is 74 bytes).
pub const MAX_BLOB_KEY_LEN: usize = 100;
/// Most relays a reply capability names: the most a card lists.
pub const MAX_REPLY_RELAYS: usize = crate::card::MAX_CARD_RELAYS;
pub use crate::card::MAX_RELAY_ADDR_LEN;
/// A reply capability at its largest.
const MAX_REPLY_CAPABILITY_LEN: usize = 32 + 32 + 1 + MAX_REPLY_RELAYS * (1 + MAX_RELAY_ADDR_LEN);
/// One attachment's entry at its largest.
const MAX_ATTACHMENT_ENTRY_LEN: usize =
    1 + MAX_ATTACHMENT_NAME_LEN + 1 + MAX_MEDIA_TYPE_LEN + 8 + 32 + 16 + 1;
/// Largest inner layer before padding: the fixed fields, the keys and their names, the
/// report, the attachments, the padding length and the signature.
const MAX_UNPADDED_INNER_LEN: usize = MAGIC.len()
    + 32
    + 8
    + 1
    + (32 + 1 + MAX_NGO_NAME_LEN) * MAX_INTENDED
    + 4
    + MAX_REPORT_JSON_LEN
    + 1
    + MAX_ATTACHMENT_ENTRY_LEN * MAX_ATTACHMENTS
    + 1
    + MAX_BLOB_KEY_LEN
    + MAX_REPLY_CAPABILITY_LEN
    + 4
    + 64;
/// Largest inner layer: the largest unpadded one, padded (about 1.1 MiB).
pub const MAX_INNER_LEN: usize = padded_inner_len(MAX_UNPADDED_INNER_LEN);

// Padding never shrinks a layer, and the largest envelope still fits in a deposit.
const _: () = assert!(MAX_INNER_LEN >= MAX_UNPADDED_INNER_LEN);
const _: () = assert!(
    sealed_len(MAX_UNPADDED_INNER_LEN) + POST_QUANTUM_EXTRA_LEN
        <= crate::wire::limits::MAX_ENVELOPE_LEN
);

/// Recipient stanzas in the age header of every envelope Vigil seals: the staff keys of the
/// NGO, the rest decoys (see [`age::start_file_with_decoys`]), so that the header does not tell
/// how many staff keys an NGO has. It is the most a card may hold ([`MAX_CARD_RECIPIENTS`]):
/// every card fits, and each stanza costs [`x25519::STANZA_LEN`] (98) bytes in every envelope
/// and one X25519 operation per stanza and identity when the NGO opens it.
pub const ENVELOPE_STANZAS: usize = MAX_CARD_RECIPIENTS;

/// Length of every sealed envelope whose report would otherwise fit in it: 16 KiB.
///
/// The sample reports (`/work/shared/fixtures/reports`, 701 to 1 406 bytes of JSON) seal to
/// about 3.3 KiB unpadded with one NGO; the worst-case addressing (16 NGOs, 200-byte names)
/// adds about 3.7 KiB. At 16 KiB a report of up to 10 KiB of JSON fits whatever its
/// addressing (14 KiB for a report to one NGO), ten times the longest sample, so every
/// realistic text report is stored at this one size; longer ones go to Padmé buckets
/// ([`padme_len`]: 16 to 32 sizes per doubling, at most 12 % larger). docs/protocol.md, "Envelope padding".
pub const FIXED_ENVELOPE_LEN: usize = 16 * 1024;

/// How much longer every envelope sealed to an NGO with post-quantum (hybrid) staff keys is than
/// one sealed to classic X25519 keys: its header holds [`ENVELOPE_STANZAS`] hybrid stanzas
/// (1 557 bytes each, against 98), about 23 KiB more. The inner layer is padded the same way
/// for both (it is signed once for every NGO of a report), so post-quantum envelopes have
/// fixed sizes too: [`FIXED_ENVELOPE_LEN`] plus this, or a Padmé bucket plus this.
pub const POST_QUANTUM_EXTRA_LEN: usize =
    age::hybrid::header_len(ENVELOPE_STANZAS) - x25519::header_len(ENVELOPE_STANZAS);

/// Bytes before the payload of every classic envelope: the age header with [`ENVELOPE_STANZAS`]
/// stanzas and the payload nonce.
const SEALED_PREFIX_LEN: usize = x25519::header_len(ENVELOPE_STANZAS) + NONCE_SIZE;

/// Ciphertext bytes of an age payload of `plaintext` bytes: one tag per 64 KiB chunk, and at
/// least one chunk (as [`age::chunk::PayloadLayout`] counts them).
const fn payload_len(plaintext: usize) -> usize {
    let chunks = plaintext.div_ceil(CHUNK_SIZE);
    plaintext + if chunks == 0 { 1 } else { chunks } * TAG_SIZE
}

/// The length of the sealed envelope that carries an inner layer of `unpadded` bytes before
/// padding: [`FIXED_ENVELOPE_LEN`] when it fits, else its Padmé bucket.
pub const fn sealed_len(unpadded: usize) -> usize {
    let exact = SEALED_PREFIX_LEN + payload_len(unpadded);
    if exact <= FIXED_ENVELOPE_LEN {
        FIXED_ENVELOPE_LEN
    } else {
        // Envelopes are at most a few MiB, far inside both integer types.
        padme_len(exact as u64) as usize
    }
}

/// The smallest inner layer whose sealed envelope is at least `sealed` bytes long. It seals to
/// exactly `sealed` bytes except where no payload has that length: a payload one byte into a
/// new 64 KiB chunk gains a 16-byte tag, so 16 ciphertext lengths just past each chunk are
/// skipped, and a bucket landing there is exceeded by 1 to 16 bytes (the same for every
/// envelope of the bucket).
const fn inner_len_for(sealed: usize) -> usize {
    let payload = sealed.saturating_sub(SEALED_PREFIX_LEN);
    let chunks = payload.div_ceil(ENCRYPTED_CHUNK_SIZE);
    let chunks = if chunks == 0 { 1 } else { chunks };
    let plaintext = payload.saturating_sub(chunks * TAG_SIZE);
    if plaintext <= (chunks - 1) * CHUNK_SIZE && chunks > 1 {
        (chunks - 1) * CHUNK_SIZE + 1
    } else {
        plaintext
    }
}

/// The padded length of an inner layer of `unpadded` bytes (padding length field included).
pub(crate) const fn padded_inner_len(unpadded: usize) -> usize {
    let padded = inner_len_for(sealed_len(unpadded));
    if padded > unpadded {
        padded
    } else {
        unpadded
    }
}

/// One attachment of a report, as the signed inner layer describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// The file name the reporter attached (no directories).
    pub name: String,
    /// Its media type (`image/jpeg`, `application/octet-stream`...).
    pub media_type: String,
    /// Its size in bytes, as sent.
    pub size: u64,
    /// SHA-256 of its content as sent.
    pub sha256: [u8; 32],
    /// The blob that carries it, encrypted to the blob key.
    pub blob: [u8; 16],
    /// The reporter kept its metadata (`--keep-metadata`): `sha256` is then the original's.
    pub metadata_kept: bool,
}

impl Attachment {
    fn check(&self) -> Result<(), EnvelopeError> {
        if self.name.is_empty()
            || self.name.len() > MAX_ATTACHMENT_NAME_LEN
            || self
                .name
                .chars()
                .any(|c| is_display_control(c) || c == '/' || c == '\\')
            || self.name == "."
            || self.name == ".."
        {
            return Err(EnvelopeError::Malformed("attachment name"));
        }
        if self.media_type.is_empty()
            || self.media_type.len() > MAX_MEDIA_TYPE_LEN
            || !self.media_type.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(EnvelopeError::Malformed("attachment media type"));
        }
        Ok(())
    }
}

/// Where and to whom an NGO answers one report: a mailbox and an X25519 key the reporter's
/// client made for this report and this NGO alone (version 5, see the module documentation).
/// Nothing in it is secret from the NGO, and nothing in it names the reporter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyCapability {
    /// The reply mailbox, registered by the reporter's client at `relays`.
    pub mailbox: MailboxId,
    /// The key receipts and replies are encrypted to.
    pub recipient: x25519::Recipient,
    /// The relays (`host:port`, those of the NGO's card the report went to) where the mailbox
    /// is registered, 1..=[`MAX_REPLY_RELAYS`].
    pub relays: Vec<String>,
}

impl ReplyCapability {
    fn check(&self) -> Result<(), EnvelopeError> {
        if self.relays.is_empty() || self.relays.len() > MAX_REPLY_RELAYS {
            return Err(EnvelopeError::Malformed("reply relay count"));
        }
        if !self.relays.iter().all(|a| reply_relay_ok(a)) {
            return Err(EnvelopeError::Malformed("reply relay address"));
        }
        Ok(())
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.mailbox.as_bytes());
        out.extend_from_slice(&self.recipient.to_bytes());
        out.push(self.relays.len() as u8);
        for a in &self.relays {
            out.push(a.len() as u8);
            out.extend_from_slice(a.as_bytes());
        }
    }
}

/// A relay address as a capability may carry it: `host:port`, within
/// [`MAX_RELAY_ADDR_LEN`], no whitespace or control characters (as on a card).
fn reply_relay_ok(a: &str) -> bool {
    !a.is_empty()
        && a.len() <= MAX_RELAY_ADDR_LEN
        && a.contains(':')
        && !a
            .chars()
            .any(|c| c.is_whitespace() || is_display_control(c))
}

/// The attachments of a report being sealed, with the key their blobs are encrypted to.
#[derive(Clone, Copy)]
pub struct Attachments<'a> {
    /// One entry per attachment, 1..=[`MAX_ATTACHMENTS`].
    pub list: &'a [Attachment],
    /// The identity whose recipient the blobs were encrypted to.
    pub blob_key: &'a x25519::Identity,
}

/// Why an envelope could not be made or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The outer age layer failed: not for our keys, damaged, or truncated.
    #[error(transparent)]
    Age(#[from] AgeError),
    /// The inner layer is not in the expected format.
    #[error("report envelope is malformed ({0}); it was damaged or not made by Vigil")]
    Malformed(&'static str),
    /// Too many intended NGOs.
    #[error("a report can be sent to at most {MAX_INTENDED} NGOs at once")]
    TooManyRecipients,
    /// Our identity key is not among the intended NGOs.
    #[error("this report was signed for other NGOs, not for this one: it may have been forwarded; treat its origin with care")]
    NotIntendedForUs,
    /// The reporter's signature does not verify.
    #[error("the report's signature does not verify: it was altered or signed by a different key than the one it claims")]
    BadSignature,
    /// The report itself is invalid.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// The padding of a version 4 inner layer is not the declared number of zero bytes (or,
    /// when sealing, could not be declared).
    #[error("report envelope's padding is not {0}; it was damaged or not made by Vigil")]
    BadPadding(&'static str),
    /// A message of a report's thread that is malformed, forged or misdirected.
    #[error(transparent)]
    Thread(#[from] crate::thread::ThreadError),
}

/// A decrypted, verified report. It holds the plaintext, so it has no derived `Debug` (see the
/// manual one, which prints no content), and its report JSON is wiped when dropped.
pub struct Opened {
    /// The report.
    pub report: Report,
    /// The report JSON exactly as the reporter signed it.
    pub report_json: Zeroizing<Vec<u8>>,
    /// The reporter's public key (pseudonymous: it identifies a device, not a name).
    pub sender: PublicSigningKey,
    /// Every NGO the reporter addressed.
    pub intended: Vec<PublicSigningKey>,
    /// The name the reporter's app gave each key of `intended` (same order), from that NGO's
    /// card; `None` where it gave none (and always for version 1 envelopes).
    pub intended_names: Vec<Option<String>>,
    /// When the reporter's device made the envelope (its own clock; may be wrong).
    pub created: u64,
    /// The report's attachments (empty for versions 1 and 2).
    pub attachments: Vec<Attachment>,
    /// The key that opens the attachments' blobs (secret; `None` without attachments).
    pub blob_key: Option<x25519::Identity>,
    /// SHA-256 of the signed part of the inner layer (sender key, creation time, intended NGOs,
    /// report). The envelope carries no report id; this is one: the same signed report always
    /// has it, however often it is re-encrypted or re-deposited, and no other report can have
    /// it. The NGO uses it to recognise a replayed report, and the thread's receipts and
    /// replies name the report by it ([`Opened::report_id`]).
    pub digest: [u8; 32],
    /// Where and to whom to answer (version 5); `None` for older envelopes and for reports
    /// whose reporter asked for no answers.
    pub reply: Option<ReplyCapability>,
}

impl Opened {
    /// The report's id in its thread: [`Opened::digest`], typed.
    pub fn report_id(&self) -> ReportId {
        ReportId(self.digest)
    }
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("report", &self.report)
            .field(
                "report_json",
                &format_args!("[{} bytes]", self.report_json.len()),
            )
            .field("sender", &self.sender)
            .field("intended", &self.intended.len())
            .field("created", &self.created)
            .field("attachments", &self.attachments.len())
            .field("reply", &self.reply.is_some())
            .finish()
    }
}

/// One NGO a report is addressed to: its identity key and the name on its card.
#[derive(Clone, Copy, Debug)]
pub struct Addressee<'a> {
    /// The NGO's identity key.
    pub key: PublicSigningKey,
    /// The name on its card ("" for none).
    pub name: &'a str,
}

/// Build the signed inner layer, naming no NGO (see [`sign_inner_named`]).
pub fn sign_inner(
    report_json: &[u8],
    sender: &SigningSecret,
    intended: &[PublicSigningKey],
    created: u64,
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    let unnamed: Vec<Addressee<'_>> = intended
        .iter()
        .map(|&key| Addressee { key, name: "" })
        .collect();
    sign_inner_named(report_json, sender, &unnamed, created)
}

/// `name` as carried in the envelope: display controls dropped (a card refuses them anyway),
/// cut to [`MAX_NGO_NAME_LEN`] bytes at a character boundary.
fn carried_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars().filter(|&c| !is_display_control(c)) {
        if out.len() + c.len_utf8() > MAX_NGO_NAME_LEN {
            break;
        }
        out.push(c);
    }
    out
}

/// Build the signed inner layer, with the name of each NGO beside its key.
pub fn sign_inner_named(
    report_json: &[u8],
    sender: &SigningSecret,
    intended: &[Addressee<'_>],
    created: u64,
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    sign_inner_full(report_json, sender, intended, created, None)
}

/// Build the signed inner layer, with the name of each NGO beside its key and, when there are
/// any, the report's attachments; always version 4, padded to its sealed size.
pub fn sign_inner_full(
    report_json: &[u8],
    sender: &SigningSecret,
    intended: &[Addressee<'_>],
    created: u64,
    attachments: Option<Attachments<'_>>,
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    sign_inner_with(report_json, sender, intended, created, attachments, None)
}

/// [`sign_inner_full`], with a reply capability when there is one: version 5 then, version 4
/// (byte for byte as before) without.
pub fn sign_inner_with(
    report_json: &[u8],
    sender: &SigningSecret,
    intended: &[Addressee<'_>],
    created: u64,
    attachments: Option<Attachments<'_>>,
    reply: Option<&ReplyCapability>,
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    if let Some(r) = reply {
        r.check()?;
    }
    if let Some(a) = &attachments {
        if a.list.is_empty() || a.list.len() > MAX_ATTACHMENTS {
            return Err(EnvelopeError::Malformed("attachment count"));
        }
        for one in a.list {
            one.check()?;
        }
    }
    if intended.is_empty() || intended.len() > MAX_INTENDED {
        return Err(EnvelopeError::TooManyRecipients);
    }
    // Validate the report so that nothing the NGO would refuse, or a date nobody can act on, is
    // sent.
    Report::from_json(report_json)?.check_for_sending()?;
    let mut keys: Vec<([u8; 32], String)> = intended
        .iter()
        .map(|a| (a.key.to_bytes(), carried_name(a.name)))
        .collect();
    keys.sort_by_key(|a| a.0);
    keys.dedup_by(|a, b| a.0 == b.0);
    // Everything before the padding, sized up front so that no growing buffer leaves an unwiped
    // copy behind.
    let listed = attachments.map_or(0, |a| a.list.len());
    let mut out = Zeroizing::new(Vec::with_capacity(MAX_UNPADDED_INNER_LEN.min(
        report_json.len()
            + 1024
            + keys.len() * (32 + 1 + MAX_NGO_NAME_LEN)
            + listed * MAX_ATTACHMENT_ENTRY_LEN
            + MAX_BLOB_KEY_LEN
            + MAX_REPLY_CAPABILITY_LEN,
    )));
    out.extend_from_slice(if reply.is_some() { MAGIC_V5 } else { MAGIC });
    out.extend_from_slice(&sender.public().to_bytes());
    out.extend_from_slice(&created.to_be_bytes());
    out.push(keys.len() as u8);
    for (k, _) in &keys {
        out.extend_from_slice(k);
    }
    for (_, name) in &keys {
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
    }
    out.extend_from_slice(&(report_json.len() as u32).to_be_bytes());
    out.extend_from_slice(report_json);
    // Version 4: the attachment count is always there, 0 for none.
    match attachments {
        Some(a) => encode_attachments(a, &mut out)?,
        None => out.push(0),
    }
    if let Some(r) = reply {
        r.encode(&mut out);
    }
    pad_and_sign(out, sender)
}

/// Append the attachment count, each attachment's entry and the blob key: the attachment
/// block of a version 4 or 5 envelope, and of a thread message with attachments
/// (`crate::thread`). The list is checked first (1..=[`MAX_ATTACHMENTS`], each entry valid).
pub(crate) fn encode_attachments(
    a: Attachments<'_>,
    out: &mut Vec<u8>,
) -> Result<(), EnvelopeError> {
    if a.list.is_empty() || a.list.len() > MAX_ATTACHMENTS {
        return Err(EnvelopeError::Malformed("attachment count"));
    }
    out.push(a.list.len() as u8);
    for one in a.list {
        one.check()?;
        out.push(one.name.len() as u8);
        out.extend_from_slice(one.name.as_bytes());
        out.push(one.media_type.len() as u8);
        out.extend_from_slice(one.media_type.as_bytes());
        out.extend_from_slice(&one.size.to_be_bytes());
        out.extend_from_slice(&one.sha256);
        out.extend_from_slice(&one.blob);
        out.push(u8::from(one.metadata_kept));
    }
    let key = a.blob_key.to_string_secret();
    let key = secrecy::ExposeSecret::expose_secret(&key).as_bytes();
    if key.len() > MAX_BLOB_KEY_LEN {
        return Err(EnvelopeError::Malformed("blob key"));
    }
    out.push(key.len() as u8);
    out.extend_from_slice(key);
    Ok(())
}

/// Read `count` attachment entries (1..=[`MAX_ATTACHMENTS`], checked by the caller) and the blob
/// key that follows them, as [`encode_attachments`] wrote them after the count. The key is
/// returned raw: it is parsed ([`parse_blob_key`]) only once the signature verified.
pub(crate) fn read_attachments<'a>(
    r: &mut Reader<'a, EnvelopeError>,
    count: usize,
) -> Result<(Vec<Attachment>, &'a [u8]), EnvelopeError> {
    let mut attachments = Vec::with_capacity(count.min(MAX_ATTACHMENTS));
    for _ in 0..count {
        let l = usize::from(r.u8("attachment name length")?);
        let name = r.take(l, "attachment name")?;
        let l = usize::from(r.u8("media type length")?);
        let media_type = r.take(l, "media type")?;
        let size = r.u64("attachment size")?;
        let sha256: [u8; 32] = r.array("attachment hash")?;
        let blob: [u8; 16] = r.array("blob id")?;
        let flags = r.u8("attachment flags")?;
        if flags > 1 {
            return Err(EnvelopeError::Malformed("unknown attachment flags"));
        }
        let one = Attachment {
            name: std::str::from_utf8(name)
                .map_err(|_| EnvelopeError::Malformed("attachment name"))?
                .to_string(),
            media_type: std::str::from_utf8(media_type)
                .map_err(|_| EnvelopeError::Malformed("attachment media type"))?
                .to_string(),
            size,
            sha256,
            blob,
            metadata_kept: flags == 1,
        };
        one.check()?;
        attachments.push(one);
    }
    let l = usize::from(r.u8("blob key length")?);
    if l > MAX_BLOB_KEY_LEN {
        return Err(EnvelopeError::Malformed("blob key"));
    }
    Ok((attachments, r.take(l, "blob key")?))
}

/// The blob key of an attachment block, from its raw bytes (an `AGE-SECRET-KEY-1...` string).
pub(crate) fn parse_blob_key(raw: &[u8]) -> Result<x25519::Identity, EnvelopeError> {
    let text = Zeroizing::new(
        std::str::from_utf8(raw)
            .map_err(|_| EnvelopeError::Malformed("blob key"))?
            .to_string(),
    );
    text.parse::<x25519::Identity>()
        .map_err(|_| EnvelopeError::Malformed("blob key"))
}

/// Append the padding (its length, then that many zero bytes) that brings `body` to its
/// sealed size ([`sealed_len`]), and sign the whole.
fn pad_and_sign(
    body: Zeroizing<Vec<u8>>,
    sender: &SigningSecret,
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    let unpadded = body.len() + 4 + 64;
    let total = padded_inner_len(unpadded);
    let pad = total - unpadded;
    let declared = u32::try_from(pad).map_err(|_| EnvelopeError::BadPadding("a u32 length"))?;
    let mut out = Zeroizing::new(Vec::with_capacity(total));
    out.extend_from_slice(&body);
    drop(body);
    out.extend_from_slice(&declared.to_be_bytes());
    let end = out.len() + pad;
    out.resize(end, 0);
    let sig = sender.sign(SignatureDomain::Envelope, &out);
    out.extend_from_slice(&sig);
    Ok(out)
}

/// Encrypt a signed inner layer to one NGO's staff `recipients`, with a header of
/// [`ENVELOPE_STANZAS`] stanzas whatever their number.
pub(crate) fn encrypt_inner<R: age::Recipient>(
    inner: &[u8],
    recipients: &[R],
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> Result<Vec<u8>, EnvelopeError> {
    Ok(age::encrypt_to_vec_with_decoys(
        recipients,
        ENVELOPE_STANZAS,
        inner,
        rng,
    )?)
}

/// Sign the report and encrypt it to one NGO's staff recipients, naming no NGO (see
/// [`seal_named`]).
pub fn seal<R: age::Recipient>(
    report_json: &[u8],
    sender: &SigningSecret,
    intended: &[PublicSigningKey],
    recipients: &[R],
    created: u64,
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> Result<Vec<u8>, EnvelopeError> {
    let inner = sign_inner(report_json, sender, intended, created)?;
    encrypt_inner(&inner, recipients, rng)
}

/// Sign the report and encrypt it to one NGO's staff recipients.
///
/// `intended` lists *every* NGO this report goes to, with the names on their cards (the same
/// list for each copy), `recipients` the staff keys of the NGO this copy is for. The
/// encryption's randomness comes from `rng` (the client passes `&mut OsRng`).
pub fn seal_named<R: age::Recipient>(
    report_json: &[u8],
    sender: &SigningSecret,
    intended: &[Addressee<'_>],
    recipients: &[R],
    created: u64,
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> Result<Vec<u8>, EnvelopeError> {
    let inner = sign_inner_named(report_json, sender, intended, created)?;
    encrypt_inner(&inner, recipients, rng)
}

/// [`seal_named`] for a report with attachments: the envelope names them and carries the key
/// of their blobs (which the caller encrypted to `attachments.blob_key`'s recipient).
pub fn seal_with_attachments<R: age::Recipient>(
    report_json: &[u8],
    sender: &SigningSecret,
    intended: &[Addressee<'_>],
    attachments: Attachments<'_>,
    recipients: &[R],
    created: u64,
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> Result<Vec<u8>, EnvelopeError> {
    let inner = sign_inner_full(report_json, sender, intended, created, Some(attachments))?;
    encrypt_inner(&inner, recipients, rng)
}

/// What a report copy needs besides the report: its attachments and its reply capability.
#[derive(Clone, Copy, Default)]
pub struct Extras<'a> {
    /// The attachments, if any.
    pub attachments: Option<Attachments<'a>>,
    /// The reply capability made for this copy's NGO, if the reporter wants answers.
    pub reply: Option<&'a ReplyCapability>,
}

/// Sign the report and encrypt it to one NGO's staff recipients, as [`seal_with_attachments`]
/// does, with a reply capability when `extras` has one; also returns the report's id (what
/// [`Opened::report_id`] will say when the NGO opens it), which the thread's receipts and
/// replies name.
pub fn seal_report<R: age::Recipient>(
    report_json: &[u8],
    sender: &SigningSecret,
    intended: &[Addressee<'_>],
    extras: Extras<'_>,
    recipients: &[R],
    created: u64,
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> Result<(Vec<u8>, ReportId), EnvelopeError> {
    let inner = sign_inner_with(
        report_json,
        sender,
        intended,
        created,
        extras.attachments,
        extras.reply,
    )?;
    let id = inner_report_id(&inner);
    Ok((encrypt_inner(&inner, recipients, rng)?, id))
}

/// The report id of a signed inner layer: SHA-256 of everything before its signature.
fn inner_report_id(inner: &[u8]) -> ReportId {
    ReportId(Sha256::digest(&inner[..inner.len().saturating_sub(64)]).into())
}

impl From<ReadError> for EnvelopeError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Truncated { what, .. } | ReadError::BadFlag { what } => {
                EnvelopeError::Malformed(what)
            }
            ReadError::Trailing { .. } => {
                EnvelopeError::Malformed("trailing bytes before the signature")
            }
        }
    }
}

/// Parse and verify a decrypted inner layer. `me` is the opening NGO's identity key.
pub fn open_inner(inner: &[u8], me: &PublicSigningKey) -> Result<Opened, EnvelopeError> {
    if inner.len() > MAX_INNER_LEN {
        return Err(EnvelopeError::Malformed("inner layer too large"));
    }
    if inner.len() < 64 {
        return Err(EnvelopeError::Malformed("too short"));
    }
    let (signed, sig) = inner.split_at(inner.len() - 64);
    let mut r = Reader::<EnvelopeError>::new(signed);
    let version = match r.take(MAGIC.len(), "magic")? {
        m if m == MAGIC_V5 => 5,
        m if m == MAGIC => 4,
        m if m == MAGIC_V3 => 3,
        m if m == MAGIC_V2 => 2,
        m if m == MAGIC_V1 => 1,
        _ => return Err(EnvelopeError::Malformed("unknown magic or version")),
    };
    let named = version >= 2;
    let sender_bytes: [u8; 32] = r.array("sender key")?;
    let sender = PublicSigningKey::from_bytes(&sender_bytes)
        .map_err(|_: KeyError| EnvelopeError::BadSignature)?;
    let created = r.u64("creation time")?;
    let n = usize::from(r.u8("recipient count")?);
    if n == 0 || n > MAX_INTENDED {
        return Err(EnvelopeError::Malformed("recipient count out of range"));
    }
    let mut intended_raw = Vec::with_capacity(n);
    for _ in 0..n {
        intended_raw.push(r.array::<32>("recipient key")?);
    }
    let mut names_raw: Vec<&[u8]> = Vec::with_capacity(n);
    if named {
        for _ in 0..n {
            let l = usize::from(r.u8("NGO name length")?);
            if l > MAX_NGO_NAME_LEN {
                return Err(EnvelopeError::Malformed("NGO name too long"));
            }
            names_raw.push(r.take(l, "NGO name")?);
        }
    }
    let m = r.u32("report length")? as usize;
    if m > MAX_REPORT_JSON_LEN {
        return Err(EnvelopeError::Malformed("report length over the limit"));
    }
    let report_json = r.take(m, "report")?;
    let mut attachments = Vec::new();
    let mut blob_key_raw: Option<&[u8]> = None;
    // Version 3 always has attachments; versions 4 and 5 always have the count, 0 for none.
    let a = if version >= 3 {
        usize::from(r.u8("attachment count")?)
    } else {
        0
    };
    if (version == 3 && a == 0) || a > MAX_ATTACHMENTS {
        return Err(EnvelopeError::Malformed("attachment count out of range"));
    }
    if a > 0 {
        let (list, key) = read_attachments(&mut r, a)?;
        attachments = list;
        blob_key_raw = Some(key);
    }
    let reply_raw = if version >= 5 {
        let mailbox = MailboxId(r.array("reply mailbox")?);
        let recipient: [u8; 32] = r.array("reply recipient")?;
        let count = usize::from(r.u8("reply relay count")?);
        if count == 0 || count > MAX_REPLY_RELAYS {
            return Err(EnvelopeError::Malformed("reply relay count out of range"));
        }
        let mut relays: Vec<&[u8]> = Vec::with_capacity(count);
        for _ in 0..count {
            let l = usize::from(r.u8("reply relay length")?);
            relays.push(r.take(l, "reply relay")?);
        }
        Some((mailbox, recipient, relays))
    } else {
        None
    };
    if version >= 4 {
        // The padding: exactly the declared number of bytes up to the signature, all zero. It
        // carries nothing, and a sender cannot hide anything in it either.
        let declared = r.u32("padding length")? as usize;
        if declared != r.remaining() {
            return Err(EnvelopeError::BadPadding("of its declared length"));
        }
        if r.take(declared, "padding")?.iter().any(|&b| b != 0) {
            return Err(EnvelopeError::BadPadding("all zero bytes"));
        }
    }
    r.finish()?;
    // The signature comes first: nothing the envelope claims is believed before it verifies.
    let sig: [u8; 64] = sig
        .try_into()
        .map_err(|_| EnvelopeError::Malformed("signature"))?;
    sender
        .verify(SignatureDomain::Envelope, signed, &sig)
        .map_err(|_| EnvelopeError::BadSignature)?;
    let intended = intended_raw
        .iter()
        .map(PublicSigningKey::from_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| EnvelopeError::Malformed("invalid recipient key"))?;
    if !intended.iter().any(|k| k == me) {
        return Err(EnvelopeError::NotIntendedForUs);
    }
    let mut intended_names = vec![None; n];
    for (slot, raw) in intended_names.iter_mut().zip(names_raw) {
        let name = std::str::from_utf8(raw)
            .map_err(|_| EnvelopeError::Malformed("NGO name is not UTF-8"))?;
        if name.chars().any(is_display_control) {
            return Err(EnvelopeError::Malformed(
                "NGO name holds control characters",
            ));
        }
        if !name.is_empty() {
            *slot = Some(name.to_string());
        }
    }
    let blob_key = blob_key_raw.map(parse_blob_key).transpose()?;
    let reply = match reply_raw {
        Some((mailbox, recipient, raw)) => {
            let relays = raw
                .into_iter()
                .map(|a| {
                    std::str::from_utf8(a)
                        .ok()
                        .filter(|a| reply_relay_ok(a))
                        .map(str::to_string)
                        .ok_or(EnvelopeError::Malformed("reply relay address"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Some(ReplyCapability {
                mailbox,
                recipient: x25519::Recipient::from_bytes(recipient),
                relays,
            })
        }
        None => None,
    };
    let report = Report::from_json(report_json)?;
    Ok(Opened {
        report,
        report_json: Zeroizing::new(report_json.to_vec()),
        sender,
        intended,
        intended_names,
        created,
        attachments,
        blob_key,
        digest: Sha256::digest(signed).into(),
        reply,
    })
}

/// Decrypt with any of `identities` and verify. `me` is the opening NGO's identity key.
pub fn open<I: age::Identity>(
    ciphertext: &[u8],
    identities: &[I],
    me: &PublicSigningKey,
) -> Result<Opened, EnvelopeError> {
    let inner = age::decrypt_from_slice(ciphertext, identities, MAX_INNER_LEN)?;
    open_inner(&inner, me)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    const REPORT: &[u8] = br#"{"kind":"threat","urgency":"urgent","title":"t","occurred_at":"2024-01-01","narrative":"n"}"#;

    #[test]
    fn inner_round_trip_and_binding() {
        let sender = SigningSecret::generate(&mut OsRng);
        let ngo_a = SigningSecret::generate(&mut OsRng).public();
        let ngo_b = SigningSecret::generate(&mut OsRng).public();
        let ngo_c = SigningSecret::generate(&mut OsRng).public();
        let inner = sign_inner(REPORT, &sender, &[ngo_a, ngo_b], 42).unwrap();
        let opened = open_inner(&inner, &ngo_b).unwrap();
        assert_eq!(opened.sender, sender.public());
        assert_eq!(opened.created, 42);
        assert_eq!(&opened.report_json[..], REPORT);
        assert!(matches!(
            open_inner(&inner, &ngo_c),
            Err(EnvelopeError::NotIntendedForUs)
        ));
        // The digest names the signed report: the same for the same inner layer, different for
        // another creation time.
        assert_eq!(open_inner(&inner, &ngo_a).unwrap().digest, opened.digest);
        let later = sign_inner(REPORT, &sender, &[ngo_a, ngo_b], 43).unwrap();
        assert_ne!(open_inner(&later, &ngo_a).unwrap().digest, opened.digest);
    }

    #[test]
    fn debug_of_an_opened_report_shows_no_plaintext() {
        let sender = SigningSecret::generate(&mut OsRng);
        let ngo = SigningSecret::generate(&mut OsRng).public();
        let json = br#"{"kind":"threat","urgency":"urgent","title":"SECRET-TITLE","occurred_at":"2024-01-01","narrative":"SECRET-NARRATIVE","subjects":[{"name":"SECRET-NAME","role":"victim"}]}"#;
        let inner = sign_inner(json, &sender, &[ngo], 1).unwrap();
        let opened = open_inner(&inner, &ngo).unwrap();
        let d = format!("{opened:?} {opened:#?}");
        assert!(!d.contains("SECRET"), "{d}");
        assert!(d.contains("Threat"), "{d}");
    }

    #[test]
    fn tampering_and_wrong_signer_are_refused() {
        let sender = SigningSecret::generate(&mut OsRng);
        let ngo = SigningSecret::generate(&mut OsRng).public();
        let inner = sign_inner(REPORT, &sender, &[ngo], 1).unwrap();
        // Flip one byte of the report (magic, sender, time, count, key, empty name, length).
        let mut t = inner.to_vec();
        let pos = 15 + 32 + 8 + 1 + 32 + 1 + 4 + 10;
        t[pos] ^= 1;
        assert!(matches!(
            open_inner(&t, &ngo),
            Err(EnvelopeError::BadSignature)
        ));
        // Claim a different sender key: signature was made by the real one.
        let mut t = inner.to_vec();
        let imposter = SigningSecret::generate(&mut OsRng).public().to_bytes();
        t[15..47].copy_from_slice(&imposter);
        assert!(matches!(
            open_inner(&t, &ngo),
            Err(EnvelopeError::BadSignature)
        ));
        // Truncations never panic.
        for cut in 0..inner.len() {
            assert!(open_inner(&inner[..cut], &ngo).is_err());
        }
    }

    /// Sign `body` (everything before the signature) with `sender`, as a hostile or older
    /// sender would.
    fn signed(sender: &SigningSecret, body: Vec<u8>) -> Vec<u8> {
        let mut out = body;
        let sig = sender.sign(SignatureDomain::Envelope, &out);
        out.extend_from_slice(&sig);
        out
    }

    fn header(magic: &[u8], sender: &SigningSecret, keys: &[PublicSigningKey]) -> Vec<u8> {
        let mut b = magic.to_vec();
        b.extend_from_slice(&sender.public().to_bytes());
        b.extend_from_slice(&7u64.to_be_bytes());
        b.push(keys.len() as u8);
        for k in keys {
            b.extend_from_slice(&k.to_bytes());
        }
        b
    }

    fn report_part(b: &mut Vec<u8>) {
        b.extend_from_slice(&(REPORT.len() as u32).to_be_bytes());
        b.extend_from_slice(REPORT);
    }

    #[test]
    fn names_travel_beside_their_keys_and_version_1_still_opens() {
        let sender = SigningSecret::generate(&mut OsRng);
        let a = SigningSecret::generate(&mut OsRng).public();
        let b = SigningSecret::generate(&mut OsRng).public();
        let long = "Ж".repeat(150);
        let inner = sign_inner_named(
            REPORT,
            &sender,
            &[
                Addressee {
                    key: a,
                    name: " Desk ",
                },
                Addressee {
                    key: b,
                    name: &long,
                },
                Addressee {
                    key: a,
                    name: "Desk again",
                },
            ],
            1,
        )
        .unwrap();
        let o = open_inner(&inner, &a).unwrap();
        assert_eq!(o.intended.len(), 2, "one entry per key");
        let name_of = |k: &PublicSigningKey| {
            let i = o.intended.iter().position(|x| x == k).unwrap();
            o.intended_names[i].clone()
        };
        assert_eq!(name_of(&a).as_deref(), Some("Desk"));
        let cut = name_of(&b).unwrap();
        assert_eq!(cut.len(), MAX_NGO_NAME_LEN, "cut at a character boundary");
        assert!(long.starts_with(&cut));
        assert_eq!(&o.report_json[..], REPORT, "the report is untouched");

        // Unnamed: empty names, and version 1 with none at all.
        let o = open_inner(&sign_inner(REPORT, &sender, &[a, b], 1).unwrap(), &a).unwrap();
        assert_eq!(o.intended_names, [None, None]);
        let mut v1 = header(MAGIC_V1, &sender, &[a]);
        report_part(&mut v1);
        let o = open_inner(&signed(&sender, v1), &a).unwrap();
        assert_eq!(o.intended_names, [None]);
        // Version 2 (names, no attachment count, no padding), as older clients wrote it.
        let mut v2 = header(MAGIC_V2, &sender, &[a]);
        v2.push(4);
        v2.extend_from_slice(b"Desk");
        report_part(&mut v2);
        let o = open_inner(&signed(&sender, v2), &a).unwrap();
        assert_eq!(o.intended_names, [Some("Desk".to_string())]);
        assert!(o.attachments.is_empty() && o.blob_key.is_none());
    }

    #[test]
    fn hostile_names_are_refused() {
        let sender = SigningSecret::generate(&mut OsRng);
        let me = SigningSecret::generate(&mut OsRng).public();
        for (name, why) in [
            (&b"Desk\x1b[2J"[..], "NGO name holds control characters"),
            (&b"\xff\xfe"[..], "NGO name is not UTF-8"),
        ] {
            let mut body = header(MAGIC_V2, &sender, &[me]);
            body.push(name.len() as u8);
            body.extend_from_slice(name);
            report_part(&mut body);
            match open_inner(&signed(&sender, body), &me) {
                Err(EnvelopeError::Malformed(m)) => assert_eq!(m, why),
                other => panic!("{:?}", other.map(|_| ())),
            }
        }
        let mut body = header(MAGIC_V2, &sender, &[me]);
        body.push(255);
        body.extend_from_slice(&[b'a'; 255]);
        report_part(&mut body);
        assert!(matches!(
            open_inner(&signed(&sender, body), &me),
            Err(EnvelopeError::Malformed("NGO name too long"))
        ));
    }

    fn attachment(name: &str) -> Attachment {
        Attachment {
            name: name.into(),
            media_type: "image/jpeg".into(),
            size: 1 << 30,
            sha256: [7; 32],
            blob: [9; 16],
            metadata_kept: false,
        }
    }

    #[test]
    fn attachments_are_signed_with_their_blob_key_and_every_report_is_version_4() {
        let sender = SigningSecret::generate(&mut OsRng);
        let me = SigningSecret::generate(&mut OsRng).public();
        let key = x25519::Identity::generate(&mut OsRng);
        let mut kept = attachment("summons.pdf");
        kept.media_type = "application/pdf".into();
        kept.metadata_kept = true;
        let list = [attachment("car.jpg"), kept];
        let to = [Addressee {
            key: me,
            name: "Desk",
        }];
        let inner = sign_inner_full(
            REPORT,
            &sender,
            &to,
            5,
            Some(Attachments {
                list: &list,
                blob_key: &key,
            }),
        )
        .unwrap();
        assert_eq!(&inner[..15], MAGIC);
        let o = open_inner(&inner, &me).unwrap();
        assert_eq!(o.attachments, list);
        let opened_key = o.blob_key.as_ref().unwrap();
        assert_eq!(opened_key.to_public(), key.to_public());
        assert!(!format!("{o:?}").contains("AGE-SECRET"), "no key in Debug");
        // The list is signed: change one byte of a hash and the signature fails.
        let mut t = inner.to_vec();
        let at = 15 + 32 + 8 + 1 + 32 + 1 + 4 + 4 + REPORT.len() + 1 + 1 + 7 + 1 + 10 + 8;
        t[at] ^= 1;
        assert!(matches!(
            open_inner(&t, &me),
            Err(EnvelopeError::BadSignature)
        ));
        // Truncations never panic.
        for cut in 0..inner.len() {
            assert!(open_inner(&inner[..cut], &me).is_err());
        }
        // No attachments: version 4 too, with a count of 0.
        let plain = sign_inner_named(REPORT, &sender, &to, 5).unwrap();
        assert_eq!(&plain[..15], MAGIC);
        let o = open_inner(&plain, &me).unwrap();
        assert!(o.attachments.is_empty() && o.blob_key.is_none());
        // Version 3 (attachments, no padding), as older clients wrote it, still opens.
        let mut v3 = header(MAGIC_V3, &sender, &[me]);
        v3.push(4);
        v3.extend_from_slice(b"Desk");
        report_part(&mut v3);
        v3.push(list.len() as u8);
        for one in &list {
            v3.push(one.name.len() as u8);
            v3.extend_from_slice(one.name.as_bytes());
            v3.push(one.media_type.len() as u8);
            v3.extend_from_slice(one.media_type.as_bytes());
            v3.extend_from_slice(&one.size.to_be_bytes());
            v3.extend_from_slice(&one.sha256);
            v3.extend_from_slice(&one.blob);
            v3.push(u8::from(one.metadata_kept));
        }
        let text = key.to_string_secret();
        let text = secrecy::ExposeSecret::expose_secret(&text).as_bytes();
        v3.push(text.len() as u8);
        v3.extend_from_slice(text);
        let o = open_inner(&signed(&sender, v3.clone()), &me).unwrap();
        assert_eq!(o.attachments, list);
        assert_eq!(o.intended_names, [Some("Desk".to_string())]);
        // Version 3 never had a count of 0.
        let mut v3_empty = header(MAGIC_V3, &sender, &[me]);
        v3_empty.push(0);
        report_part(&mut v3_empty);
        v3_empty.push(0);
        assert!(matches!(
            open_inner(&signed(&sender, v3_empty), &me),
            Err(EnvelopeError::Malformed("attachment count out of range"))
        ));
        // Names that would escape a directory or a terminal are refused when sealing.
        for bad in ["../x", "a/b", "..", "bell\u{7}", ""] {
            let list = [attachment(bad)];
            let r = sign_inner_full(
                REPORT,
                &sender,
                &to,
                5,
                Some(Attachments {
                    list: &list,
                    blob_key: &key,
                }),
            );
            assert!(r.is_err(), "{bad:?}");
        }
    }

    /// A valid report of exactly `len` bytes of JSON (its narrative stretched to fit).
    fn report_of_len(len: usize) -> Vec<u8> {
        let empty = br#"{"kind":"threat","urgency":"urgent","title":"t","occurred_at":"2024-01-01","narrative":""}"#;
        let mut out = empty[..empty.len() - 2].to_vec();
        out.resize(len - 2, b'a');
        out.extend_from_slice(b"\"}");
        assert!(Report::from_json(&out).is_ok());
        out
    }

    fn staff(n: usize) -> Vec<x25519::Identity> {
        (0..n)
            .map(|_| x25519::Identity::generate(&mut OsRng))
            .collect()
    }

    fn public(ids: &[x25519::Identity]) -> Vec<x25519::Recipient> {
        ids.iter().map(x25519::Identity::to_public).collect()
    }

    #[test]
    fn sealing_arithmetic_matches_the_age_payload() {
        // The header Vigil writes: 16 stanzas of 98 bytes, the version and MAC lines, the nonce.
        assert_eq!(SEALED_PREFIX_LEN, 22 + 16 * 98 + 48 + 16);
        for p in (0..4)
            .flat_map(|k| k * CHUNK_SIZE..k * CHUNK_SIZE + 40)
            .chain([CHUNK_SIZE - 1, 2 * CHUNK_SIZE - 1])
        {
            let layout = age::chunk::PayloadLayout::for_plaintext(p).unwrap();
            assert_eq!(payload_len(p), layout.ciphertext_len(), "{p}");
        }
        // inner_len_for gives the smallest inner layer that seals to at least the target, and
        // exactly the target unless that length falls in the gap after a chunk boundary.
        let sealed_of = |p: usize| SEALED_PREFIX_LEN + payload_len(p);
        for k in 1..4 {
            let boundary = SEALED_PREFIX_LEN + k * ENCRYPTED_CHUNK_SIZE;
            for target in boundary - 40..boundary + 40 {
                let p = inner_len_for(target);
                assert!(sealed_of(p) >= target, "{target}");
                assert!(sealed_of(p - 1) < target, "{target}");
                let in_gap = target > boundary && target <= boundary + TAG_SIZE;
                assert_eq!(sealed_of(p) == target, !in_gap, "{target}");
            }
        }
        // Every inner layer pads to at least its own length, and to its bucket.
        assert_eq!(
            padded_inner_len(100),
            FIXED_ENVELOPE_LEN - SEALED_PREFIX_LEN - TAG_SIZE
        );
        // docs/protocol.md quotes it: 1 082 684 bytes unpadded, 34 × 32 KiB padded.
        assert_eq!(sealed_len(MAX_UNPADDED_INNER_LEN), 1_114_112);
    }

    #[test]
    fn small_reports_seal_to_one_length_whatever_their_size_addressing_or_staff() {
        let sender = SigningSecret::generate(&mut OsRng);
        let me = SigningSecret::generate(&mut OsRng).public();
        let ids = staff(1);
        // A 100-byte report to one NGO with a one-letter name, one staff key.
        let short = seal_named(
            &report_of_len(100),
            &sender,
            &[Addressee { key: me, name: "D" }],
            &public(&ids),
            1,
            &mut OsRng,
        )
        .unwrap();
        // A 10 KiB report to 16 NGOs with 200-byte names, five staff keys.
        let others: Vec<PublicSigningKey> = (0..15)
            .map(|_| SigningSecret::generate(&mut OsRng).public())
            .collect();
        let long_name = "n".repeat(MAX_NGO_NAME_LEN);
        let mut to: Vec<Addressee<'_>> = others
            .iter()
            .map(|&key| Addressee {
                key,
                name: &long_name,
            })
            .collect();
        to.push(Addressee {
            key: me,
            name: &long_name,
        });
        let five = staff(5);
        let long = seal_named(
            &report_of_len(10 * 1024),
            &sender,
            &to,
            &public(&five),
            1,
            &mut OsRng,
        )
        .unwrap();
        // A report with an attachment is padded the same way.
        let key = x25519::Identity::generate(&mut OsRng);
        let with_file = seal_with_attachments(
            REPORT,
            &sender,
            &[Addressee { key: me, name: "D" }],
            Attachments {
                list: &[attachment("car.jpg")],
                blob_key: &key,
            },
            &public(&ids),
            1,
            &mut OsRng,
        )
        .unwrap();
        assert_eq!(short.len(), FIXED_ENVELOPE_LEN);
        assert_eq!(long.len(), FIXED_ENVELOPE_LEN);
        assert_eq!(with_file.len(), FIXED_ENVELOPE_LEN);
        // And each opens, to exactly what was signed.
        let o = open(&short, &ids, &me).unwrap();
        assert_eq!(&o.report_json[..], &report_of_len(100)[..]);
        let o = open(&long, &five[3..4], &me).unwrap();
        assert_eq!(o.report_json.len(), 10 * 1024);
        assert_eq!(o.intended.len(), 16);
        assert_eq!(open(&with_file, &ids, &me).unwrap().attachments.len(), 1);
    }

    /// An NGO with post-quantum staff keys gets envelopes with a header of hybrid stanzas only
    /// (its staff's and hybrid decoys), all of one fixed size whatever the report and the
    /// number of staff, and they open with the hybrid identities.
    #[test]
    fn post_quantum_envelopes_have_their_own_fixed_size_and_open() {
        let sender = SigningSecret::generate(&mut OsRng);
        let me = SigningSecret::generate(&mut OsRng).public();
        let one: Vec<age::hybrid::Identity> = vec![age::hybrid::Identity::generate(&mut OsRng)];
        let three: Vec<age::hybrid::Identity> = (0..3)
            .map(|_| age::hybrid::Identity::generate(&mut OsRng))
            .collect();
        let to =
            |ids: &[age::hybrid::Identity]| ids.iter().map(|i| i.to_public()).collect::<Vec<_>>();
        let small = seal(
            &report_of_len(200),
            &sender,
            &[me],
            &to(&one),
            1,
            &mut OsRng,
        )
        .unwrap();
        let big = seal(
            &report_of_len(3000),
            &sender,
            &[me],
            &to(&three),
            1,
            &mut OsRng,
        )
        .unwrap();
        assert_eq!(small.len(), FIXED_ENVELOPE_LEN + POST_QUANTUM_EXTRA_LEN);
        assert_eq!(big.len(), small.len());
        let (h, used) = age::format::Header::parse(&big).unwrap();
        assert_eq!(used, age::hybrid::header_len(ENVELOPE_STANZAS));
        assert!(h.stanzas.iter().all(|s| s.tag() == "mlkem768x25519"));
        assert_eq!(open(&small, &one, &me).unwrap().report_json.len(), 200);
        assert_eq!(
            open(&big, &three[2..], &me).unwrap().report_json.len(),
            3000
        );
        assert!(matches!(
            open(&big, &one, &me),
            Err(EnvelopeError::Age(AgeError::NoMatch))
        ));
    }

    /// The sample reports (`../shared/fixtures/reports`) all seal to the fixed size, even to 16
    /// NGOs with the longest names: the numbers behind [`FIXED_ENVELOPE_LEN`].
    #[test]
    fn every_sample_report_seals_to_the_fixed_size() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/reports");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{} is missing",
                dir.display()
            );
            eprintln!("SKIPPED: no sample reports at {}", dir.display());
            return;
        };
        let sender = SigningSecret::generate(&mut OsRng);
        let long_name = "n".repeat(MAX_NGO_NAME_LEN);
        let keys: Vec<PublicSigningKey> = (0..MAX_INTENDED)
            .map(|_| SigningSecret::generate(&mut OsRng).public())
            .collect();
        let to: Vec<Addressee<'_>> = keys
            .iter()
            .map(|&key| Addressee {
                key,
                name: &long_name,
            })
            .collect();
        let ids = staff(1);
        let mut seen = 0;
        for entry in entries {
            let json = std::fs::read(entry.unwrap().path()).unwrap();
            let env = seal_named(&json, &sender, &to, &public(&ids), 1, &mut OsRng).unwrap();
            assert_eq!(env.len(), FIXED_ENVELOPE_LEN);
            assert_eq!(
                &open(&env, &ids, &keys[0]).unwrap().report_json[..],
                &json[..]
            );
            seen += 1;
        }
        assert!(seen > 0, "no sample report in {}", dir.display());
    }

    #[test]
    fn one_byte_over_the_fixed_size_lands_in_its_padme_bucket() {
        let sender = SigningSecret::generate(&mut OsRng);
        let me = SigningSecret::generate(&mut OsRng).public();
        let ids = staff(1);
        // Unnamed, one NGO: the inner layer is the report plus 162 bytes (15 magic, 32 sender,
        // 8 time, 1 count, 32 key, 1 name length, 4 report length, 1 attachment count, 4
        // padding length, 64 signature), and the payload adds one 16-byte tag.
        let fits = FIXED_ENVELOPE_LEN - SEALED_PREFIX_LEN - TAG_SIZE - 162;
        let seal_len = |m: usize| {
            let e = seal(
                &report_of_len(m),
                &sender,
                &[me],
                &public(&ids),
                1,
                &mut OsRng,
            )
            .unwrap();
            assert_eq!(&open(&e, &ids, &me).unwrap().report_json.len(), &m);
            e.len()
        };
        assert_eq!(seal_len(fits), FIXED_ENVELOPE_LEN, "the largest that fits");
        // 16 385 bytes: E = 14, S = 4, ten low bits rounded up, 17 × 1 024.
        assert_eq!(seal_len(fits + 1), 17 * 1024);
        assert_eq!(padme_len(FIXED_ENVELOPE_LEN as u64 + 1), 17 * 1024);
        // The whole bucket seals to that one length.
        assert_eq!(seal_len(fits + 1024), 17 * 1024);
        assert_eq!(seal_len(fits + 1025), 18 * 1024);
        // A large report: about 200 KiB lands in a bucket of multiples of 4 KiB.
        let big = seal_len(200_000);
        assert_eq!(
            big as u64,
            padme_len((200_000 + 162 + SEALED_PREFIX_LEN + 4 * TAG_SIZE) as u64)
        );
        assert_eq!(big % 4096, 0);
    }

    #[test]
    fn the_header_does_not_count_the_staff() {
        let sender = SigningSecret::generate(&mut OsRng);
        let me = SigningSecret::generate(&mut OsRng).public();
        let (one, five) = (staff(1), staff(5));
        let a = seal(REPORT, &sender, &[me], &public(&one), 1, &mut OsRng).unwrap();
        let b = seal(REPORT, &sender, &[me], &public(&five), 1, &mut OsRng).unwrap();
        let (ha, la) = age::format::Header::parse(&a).unwrap();
        let (hb, lb) = age::format::Header::parse(&b).unwrap();
        assert_eq!(la, lb);
        assert_eq!(la, x25519::header_len(ENVELOPE_STANZAS));
        assert_eq!(ha.stanzas.len(), ENVELOPE_STANZAS);
        assert_eq!(hb.stanzas.len(), ENVELOPE_STANZAS);
        assert!(ha
            .stanzas
            .iter()
            .chain(&hb.stanzas)
            .all(|s| s.tag() == "X25519" && s.args.len() == 2 && s.body.len() == 32));
        assert_eq!(a.len(), b.len());
        // Each staff key alone still opens its envelope.
        for id in one.iter().chain(&five) {
            let env = if one.iter().any(|o| o.to_public() == id.to_public()) {
                &a
            } else {
                &b
            };
            let o = open(env, std::slice::from_ref(id), &me).unwrap();
            assert_eq!(&o.report_json[..], REPORT);
        }
        // A key that is not on the card opens neither: the decoys' keys are gone.
        let stranger = staff(1);
        for env in [&a, &b] {
            assert!(matches!(
                open(env, &stranger, &me),
                Err(EnvelopeError::Age(AgeError::NoMatch))
            ));
        }
        // A card cannot hold more staff keys than the header has stanzas.
        assert!(matches!(
            seal(
                REPORT,
                &sender,
                &[me],
                &public(&staff(ENVELOPE_STANZAS + 1)),
                1,
                &mut OsRng
            ),
            Err(EnvelopeError::Age(AgeError::TooManyRecipients { .. }))
        ));
    }

    #[test]
    fn padding_is_signed_and_must_be_declared_zeros() {
        let sender = SigningSecret::generate(&mut OsRng);
        let me = SigningSecret::generate(&mut OsRng).public();
        let inner = sign_inner(REPORT, &sender, &[me], 1).unwrap();
        // 15 + 32 + 8 + 1 + 32 + 1 + 4 + report + 1 attachment count: the padding length.
        let at = 94 + REPORT.len();
        let declared = u32::from_be_bytes(inner[at..at + 4].try_into().unwrap()) as usize;
        assert_eq!(at + 4 + declared + 64, inner.len());
        assert!(declared > 10_000, "a short report is mostly padding");
        assert!(open_inner(&inner, &me).is_ok());
        // Changed or stripped, it fails: padding bytes are checked, and signed.
        let mut t = inner.to_vec();
        t[at + 4 + declared / 2] = 1;
        assert!(matches!(
            open_inner(&t, &me),
            Err(EnvelopeError::BadPadding("all zero bytes"))
        ));
        let mut stripped = inner[..at].to_vec();
        stripped.extend_from_slice(&0u32.to_be_bytes());
        stripped.extend_from_slice(&inner[inner.len() - 64..]);
        assert!(matches!(
            open_inner(&stripped, &me),
            Err(EnvelopeError::BadSignature)
        ));
        // A hostile sender who signs non-zero padding, or a wrong length, is refused anyway.
        let body = inner[..inner.len() - 64].to_vec();
        let mut nonzero = body.clone();
        let last = nonzero.len() - 1;
        nonzero[last] = 0x80;
        assert!(matches!(
            open_inner(&signed(&sender, nonzero), &me),
            Err(EnvelopeError::BadPadding("all zero bytes"))
        ));
        for wrong in [declared - 1, declared + 1, u32::MAX as usize] {
            let mut w = body.clone();
            w[at..at + 4].copy_from_slice(&(wrong as u32).to_be_bytes());
            assert!(matches!(
                open_inner(&signed(&sender, w), &me),
                Err(EnvelopeError::BadPadding("of its declared length"))
            ));
        }
        // An unpadded version 4 (padding length 0) is fine: the reader does not insist on a
        // bucket, only on honest padding.
        let mut bare = body[..at].to_vec();
        bare.extend_from_slice(&0u32.to_be_bytes());
        assert!(open_inner(&signed(&sender, bare), &me).is_ok());
    }

    #[test]
    fn the_largest_report_still_seals_and_opens() {
        let sender = SigningSecret::generate(&mut OsRng);
        let me = SigningSecret::generate(&mut OsRng).public();
        let key = x25519::Identity::generate(&mut OsRng);
        let list: Vec<Attachment> = (0..MAX_ATTACHMENTS)
            .map(|i| {
                let mut a = attachment(&format!("{i:0>255}"));
                a.media_type = "m".repeat(MAX_MEDIA_TYPE_LEN);
                a
            })
            .collect();
        let long_name = "n".repeat(MAX_NGO_NAME_LEN);
        let keys: Vec<PublicSigningKey> = (0..MAX_INTENDED - 1)
            .map(|_| SigningSecret::generate(&mut OsRng).public())
            .chain([me])
            .collect();
        let to: Vec<Addressee<'_>> = keys
            .iter()
            .map(|&key| Addressee {
                key,
                name: &long_name,
            })
            .collect();
        let ids = staff(1);
        let env = seal_with_attachments(
            &report_of_len(MAX_REPORT_JSON_LEN),
            &sender,
            &to,
            Attachments {
                list: &list,
                blob_key: &key,
            },
            &public(&ids),
            1,
            &mut OsRng,
        )
        .unwrap();
        // The worst case is the bound: sealed_len of the largest unpadded inner layer.
        assert_eq!(env.len(), sealed_len(MAX_UNPADDED_INNER_LEN));
        let o = open(&env, &ids, &me).unwrap();
        assert_eq!(o.attachments.len(), MAX_ATTACHMENTS);
    }

    fn capability(relays: &[&str]) -> ReplyCapability {
        ReplyCapability {
            mailbox: MailboxId([4; 32]),
            recipient: x25519::Identity::generate(&mut OsRng).to_public(),
            relays: relays.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn a_reply_capability_is_signed_in_version_5_and_its_report_id_is_the_digest() {
        let sender = SigningSecret::generate(&mut OsRng);
        let me = SigningSecret::generate(&mut OsRng).public();
        let to = [Addressee {
            key: me,
            name: "Desk",
        }];
        let cap = capability(&["relay.example.org:443", "127.0.0.1:4433"]);
        let ids = staff(1);
        let (sealed, id) = seal_report(
            REPORT,
            &sender,
            &to,
            Extras {
                attachments: None,
                reply: Some(&cap),
            },
            &public(&ids),
            9,
            &mut OsRng,
        )
        .unwrap();
        assert_eq!(sealed.len(), FIXED_ENVELOPE_LEN);
        let o = open(&sealed, &ids, &me).unwrap();
        assert_eq!(o.reply.as_ref(), Some(&cap));
        assert_eq!(
            o.report_id(),
            id,
            "the reporter knows the id the NGO computes"
        );
        // Without a capability: version 4, byte for byte what sign_inner_named writes.
        let inner = sign_inner_with(REPORT, &sender, &to, 9, None, None).unwrap();
        assert_eq!(&inner[..15], MAGIC);
        assert_eq!(inner, sign_inner_named(REPORT, &sender, &to, 9).unwrap());
        assert!(open_inner(&inner, &me).unwrap().reply.is_none());
        // With one: version 5; every truncation fails, a flipped capability byte breaks the
        // signature.
        let inner = sign_inner_with(REPORT, &sender, &to, 9, None, Some(&cap)).unwrap();
        assert_eq!(&inner[..15], MAGIC_V5);
        for cut in 0..inner.len() {
            assert!(open_inner(&inner[..cut], &me).is_err());
        }
        let at = 15 + 32 + 8 + 1 + 32 + 1 + 4 + 4 + REPORT.len() + 1 + 40;
        let mut t = inner.to_vec();
        t[at] ^= 1;
        assert!(matches!(
            open_inner(&t, &me),
            Err(EnvelopeError::BadSignature)
        ));
    }

    #[test]
    fn reply_capability_bounds_are_checked_both_ways() {
        let sender = SigningSecret::generate(&mut OsRng);
        let me = SigningSecret::generate(&mut OsRng).public();
        let to = [Addressee { key: me, name: "" }];
        let long = format!("{}:1", "h".repeat(MAX_RELAY_ADDR_LEN - 2));
        for bad in [
            capability(&[]),
            capability(&["a:1", "b:1", "c:1", "d:1", "e:1"]),
            capability(&["no-port"]),
            capability(&["a b:1"]),
            capability(&["bell\u{7}:1"]),
            capability(&[&format!("{long}0")]),
        ] {
            assert!(
                sign_inner_with(REPORT, &sender, &to, 1, None, Some(&bad)).is_err(),
                "{:?}",
                bad.relays
            );
        }
        assert!(
            sign_inner_with(REPORT, &sender, &to, 1, None, Some(&capability(&[&long]))).is_ok()
        );
        // A hostile sender's version 5 layer, signed: relay counts and addresses out of range
        // are refused when opening too.
        let mut head = header(MAGIC_V5, &sender, &[me]);
        head.push(0);
        report_part(&mut head);
        head.push(0);
        head.extend_from_slice(&[4; 32]);
        head.extend_from_slice(&[7; 32]);
        for (relays, why) in [
            (vec![], "reply relay count out of range"),
            (vec!["a:1"; 5], "reply relay count out of range"),
            (vec!["nope"], "reply relay address"),
            (vec![""], "reply relay address"),
        ] {
            let mut b = head.clone();
            b.push(relays.len() as u8);
            for r in &relays {
                b.push(r.len() as u8);
                b.extend_from_slice(r.as_bytes());
            }
            b.extend_from_slice(&0u32.to_be_bytes());
            match open_inner(&signed(&sender, b), &me) {
                Err(EnvelopeError::Malformed(m)) => assert_eq!(m, why),
                other => panic!("{relays:?}: {:?}", other.map(|_| ())),
            }
        }
    }

    /// A 10 KiB report to 16 NGOs with 200-byte names, with a capability naming 4 relays of
    /// 128-byte addresses, still seals to the fixed size (docs/protocol.md quotes it).
    #[test]
    fn a_capability_keeps_text_reports_at_the_fixed_size() {
        let sender = SigningSecret::generate(&mut OsRng);
        let long_name = "n".repeat(MAX_NGO_NAME_LEN);
        let keys: Vec<PublicSigningKey> = (0..MAX_INTENDED)
            .map(|_| SigningSecret::generate(&mut OsRng).public())
            .collect();
        let to: Vec<Addressee<'_>> = keys
            .iter()
            .map(|&key| Addressee {
                key,
                name: &long_name,
            })
            .collect();
        let addr = format!("{}:443", "r".repeat(124));
        let cap = capability(&[&addr, &addr, &addr, &addr]);
        let ids = staff(1);
        let (env, _) = seal_report(
            &report_of_len(10 * 1024),
            &sender,
            &to,
            Extras {
                attachments: None,
                reply: Some(&cap),
            },
            &public(&ids),
            1,
            &mut OsRng,
        )
        .unwrap();
        assert_eq!(env.len(), FIXED_ENVELOPE_LEN);
        assert_eq!(open(&env, &ids, &keys[0]).unwrap().reply, Some(cap));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_inner_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let me = SigningSecret::from_seed(&[3; 32]).public();
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            proptest::prop_assert!(open_inner(&bytes, &me).is_err());
            proptest::prop_assert!(open_inner(&with_magic, &me).is_err());
            for magic in [MAGIC_V1, MAGIC_V2, MAGIC_V3, MAGIC_V5] {
                let mut with_old = magic.to_vec();
                with_old.extend_from_slice(&bytes);
                proptest::prop_assert!(open_inner(&with_old, &me).is_err());
            }
        }
    }
}
