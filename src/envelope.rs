//! The report envelope: sign, then encrypt.
//!
//! Inner layer (what is signed), all integers big-endian:
//!
//! | size      | field                                                         |
//! |-----------|---------------------------------------------------------------|
//! | 15        | magic `vigil-envelope` followed by version byte `0x02`, or    |
//! |           | `0x03` when the report has attachments                        |
//! | 32        | sender's Ed25519 public key                                   |
//! | 8         | creation time, seconds since the Unix epoch (u64)             |
//! | 1         | number of intended NGOs `n`, 1..=[`MAX_INTENDED`]             |
//! | 32 × n    | identity keys of every NGO the report was sent to, sorted     |
//! | n × (1+l) | version 2 only: for each key above, in the same order, the    |
//! |           | name on that NGO's card: length `l` (u8, ≤ [`MAX_NGO_NAME_LEN`],|
//! |           | 0 for none) and `l` bytes of UTF-8 without control characters |
//! | 4         | report length `m` (u32), at most [`MAX_REPORT_JSON_LEN`]      |
//! | m         | report JSON                                                   |
//! |           | version 3 only: the attachments (below)                       |
//! | 64        | Ed25519 signature, domain `envelope`, over all bytes above    |
//!
//! Attachments (version 3): a count `a` (u8, 1..=[`MAX_ATTACHMENTS`]); for each, its file
//! name (u8 length ≤ [`MAX_ATTACHMENT_NAME_LEN`], UTF-8, no control characters, no path
//! separators), its media type (u8 length ≤ [`MAX_MEDIA_TYPE_LEN`], printable ASCII), its size
//! (u64), the SHA-256 of its content as sent (32), the id of the blob that carries it (16), and
//! flags (u8; bit 0: metadata kept as it was, `--keep-metadata`; other bits must be 0); then the
//! *blob key* (u8 length, ≤ [`MAX_BLOB_KEY_LEN`], then the age X25519 identity string that
//! opens the blobs). The blobs are ordinary age files encrypted to that key's recipient, one per
//! report, stored once per relay (docs/protocol.md "Attachments"); the key travels only here,
//! inside every NGO's copy, signed with the rest. The content hash is what the NGO's client
//! checks as it decrypts a blob: the relay can lose a blob, not change it unnoticed.
//! A report without attachments is written as version 2, byte for byte as before.
//!
//! The list of intended NGOs is inside the signature, so an NGO that receives a report cannot
//! forward it to a third party as if the reporter had addressed it there: the third party's key
//! is not in the list and [`open`] refuses it.
//!
//! The names (version 2) let each NGO say who else received a report ("sent to 2 NGOs: Desk,
//! Civic Aid"): an NGO holds the other NGOs' keys only through this list, not their cards. They
//! are what the reporter's app read on the cards it sealed to, signed by the reporter like the
//! rest, and they label keys; they add no recipient. They travel here, beside the keys they
//! label, rather than in the report, so the report stays exactly what the reporter wrote.
//! Version 1 (no names) is still opened.
//!
//! Outer layer: the inner bytes encrypted in the age v1 format to every staff recipient of one
//! NGO's card. Any age tool can remove the outer layer; only Vigil checks the inner one.

use crate::age::{self, x25519, AgeError};
use crate::keys::{KeyError, PublicSigningKey, SignatureDomain, SigningSecret};
use crate::reader::{ReadError, Reader};
use crate::report::{is_display_control, Report, ReportError, MAX_REPORT_JSON_LEN};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroizing;

/// The magic of the version written now (with NGO names).
const MAGIC: &[u8; 15] = b"vigil-envelope\x02";
/// The magic of a report with attachments.
const MAGIC_V3: &[u8; 15] = b"vigil-envelope\x03";
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
/// One attachment's entry at its largest.
const MAX_ATTACHMENT_ENTRY_LEN: usize =
    1 + MAX_ATTACHMENT_NAME_LEN + 1 + MAX_MEDIA_TYPE_LEN + 8 + 32 + 16 + 1;
/// Largest inner layer: the fixed fields, the keys and their names, the report, the
/// attachments and the signature.
pub const MAX_INNER_LEN: usize = MAGIC.len()
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
    + 64;

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
    /// it. The NGO uses it to recognise a replayed report.
    pub digest: [u8; 32],
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
/// any, the report's attachments (version 3).
pub fn sign_inner_full(
    report_json: &[u8],
    sender: &SigningSecret,
    intended: &[Addressee<'_>],
    created: u64,
    attachments: Option<Attachments<'_>>,
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
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
    let mut out = Zeroizing::new(Vec::with_capacity(
        MAX_INNER_LEN.min(report_json.len() + 1024 + keys.len() * (1 + MAX_NGO_NAME_LEN)),
    ));
    out.extend_from_slice(if attachments.is_some() {
        MAGIC_V3
    } else {
        MAGIC
    });
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
    if let Some(a) = attachments {
        out.push(a.list.len() as u8);
        for one in a.list {
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
    }
    let sig = sender.sign(SignatureDomain::Envelope, &out);
    out.extend_from_slice(&sig);
    Ok(out)
}

/// Sign the report and encrypt it to one NGO's staff recipients, naming no NGO (see
/// [`seal_named`]).
pub fn seal(
    report_json: &[u8],
    sender: &SigningSecret,
    intended: &[PublicSigningKey],
    recipients: &[x25519::Recipient],
    created: u64,
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> Result<Vec<u8>, EnvelopeError> {
    let inner = sign_inner(report_json, sender, intended, created)?;
    Ok(age::encrypt_to_vec(recipients, &inner, rng)?)
}

/// Sign the report and encrypt it to one NGO's staff recipients.
///
/// `intended` lists *every* NGO this report goes to, with the names on their cards (the same
/// list for each copy), `recipients` the staff keys of the NGO this copy is for. The
/// encryption's randomness comes from `rng` (the client passes `&mut OsRng`).
pub fn seal_named(
    report_json: &[u8],
    sender: &SigningSecret,
    intended: &[Addressee<'_>],
    recipients: &[x25519::Recipient],
    created: u64,
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> Result<Vec<u8>, EnvelopeError> {
    let inner = sign_inner_named(report_json, sender, intended, created)?;
    Ok(age::encrypt_to_vec(recipients, &inner, rng)?)
}

/// [`seal_named`] for a report with attachments: the envelope names them and carries the key
/// of their blobs (which the caller encrypted to `attachments.blob_key`'s recipient).
pub fn seal_with_attachments(
    report_json: &[u8],
    sender: &SigningSecret,
    intended: &[Addressee<'_>],
    attachments: Attachments<'_>,
    recipients: &[x25519::Recipient],
    created: u64,
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> Result<Vec<u8>, EnvelopeError> {
    let inner = sign_inner_full(report_json, sender, intended, created, Some(attachments))?;
    Ok(age::encrypt_to_vec(recipients, &inner, rng)?)
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
    let (named, with_attachments) = match r.take(MAGIC.len(), "magic")? {
        m if m == MAGIC => (true, false),
        m if m == MAGIC_V3 => (true, true),
        m if m == MAGIC_V1 => (false, false),
        _ => return Err(EnvelopeError::Malformed("unknown magic or version")),
    };
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
    if with_attachments {
        let a = usize::from(r.u8("attachment count")?);
        if a == 0 || a > MAX_ATTACHMENTS {
            return Err(EnvelopeError::Malformed("attachment count out of range"));
        }
        attachments.reserve_exact(a);
        for _ in 0..a {
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
        blob_key_raw = Some(r.take(l, "blob key")?);
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
    let blob_key = match blob_key_raw {
        Some(raw) => {
            let text = Zeroizing::new(
                std::str::from_utf8(raw)
                    .map_err(|_| EnvelopeError::Malformed("blob key"))?
                    .to_string(),
            );
            Some(
                text.parse::<x25519::Identity>()
                    .map_err(|_| EnvelopeError::Malformed("blob key"))?,
            )
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
    })
}

/// Decrypt with any of `identities` and verify. `me` is the opening NGO's identity key.
pub fn open(
    ciphertext: &[u8],
    identities: &[x25519::Identity],
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
        // Flip one byte of the report.
        let mut t = inner.to_vec();
        let pos = t.len() - 70;
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

        // Unnamed: version 2 with empty names, and version 1 with none at all.
        let o = open_inner(&sign_inner(REPORT, &sender, &[a, b], 1).unwrap(), &a).unwrap();
        assert_eq!(o.intended_names, [None, None]);
        let mut v1 = header(MAGIC_V1, &sender, &[a]);
        report_part(&mut v1);
        let o = open_inner(&signed(&sender, v1), &a).unwrap();
        assert_eq!(o.intended_names, [None]);
    }

    #[test]
    fn hostile_names_are_refused() {
        let sender = SigningSecret::generate(&mut OsRng);
        let me = SigningSecret::generate(&mut OsRng).public();
        for (name, why) in [
            (&b"Desk\x1b[2J"[..], "NGO name holds control characters"),
            (&b"\xff\xfe"[..], "NGO name is not UTF-8"),
        ] {
            let mut body = header(MAGIC, &sender, &[me]);
            body.push(name.len() as u8);
            body.extend_from_slice(name);
            report_part(&mut body);
            match open_inner(&signed(&sender, body), &me) {
                Err(EnvelopeError::Malformed(m)) => assert_eq!(m, why),
                other => panic!("{:?}", other.map(|_| ())),
            }
        }
        let mut body = header(MAGIC, &sender, &[me]);
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
    fn attachments_are_signed_with_their_blob_key_and_a_plain_report_stays_version_2() {
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
        assert_eq!(&inner[..15], MAGIC_V3);
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
        // No attachments: version 2, as before.
        let plain = sign_inner_named(REPORT, &sender, &to, 5).unwrap();
        assert_eq!(&plain[..15], MAGIC);
        assert!(open_inner(&plain, &me).unwrap().attachments.is_empty());
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

    proptest::proptest! {
        #[test]
        fn arbitrary_inner_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let me = SigningSecret::from_seed(&[3; 32]).public();
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let mut with_v3 = MAGIC_V3.to_vec();
            with_v3.extend_from_slice(&bytes);
            proptest::prop_assert!(open_inner(&bytes, &me).is_err());
            proptest::prop_assert!(open_inner(&with_magic, &me).is_err());
            proptest::prop_assert!(open_inner(&with_v3, &me).is_err());
        }
    }
}
