//! A report's thread: the NGO's signed delivery receipt and replies, and the reporter's answers
//! (issue 15). Sign, then encrypt, as report envelopes are.
//!
//! A report sealed with a reply capability (`envelope` version 5) names a reply mailbox and an
//! X25519 *reply recipient* made for that report and that NGO alone. The NGO answers there:
//! receipts and replies are signed by its identity key (the key of its card) and encrypted to
//! the reply recipient. The reporter answers into the NGO's own mailbox, signed by the key that
//! signed the report and encrypted to the NGO's staff keys, like a report.
//!
//! Inner layer (what is signed), all integers big-endian:
//!
//! | size | field                                                                      |
//! |------|----------------------------------------------------------------------------|
//! | 13   | magic `vigil-thread` followed by the version byte `0x01`                   |
//! | 1    | kind: 1 receipt (NGO), 2 reply (NGO), 3 answer (reporter)                  |
//! | 32   | the signer's Ed25519 public key                                            |
//! | 8    | creation time, seconds since the Unix epoch (the signer's clock)           |
//! | 32   | report id ([`ReportId`]: SHA-256 of the report's signed inner layer)       |
//! | 32   | the thread's reply recipient (X25519 public key bytes)                     |
//! | 4    | text length `t` (u32): 0 for a receipt, 1..=[`MAX_TEXT_LEN`] otherwise     |
//! | t    | the text, UTF-8                                                            |
//! | 4    | padding length `p` (u32)                                                   |
//! | p    | `p` zero bytes                                                             |
//! | 64   | Ed25519 signature over all bytes above, domain `receipt` (kind 1) or `reply` |
//!
//! Binding: the report id ties a receipt or reply to one signed report, the reply recipient to
//! the key the reporter made for it, and the signer to the NGO's card (the reporter's client
//! compares it with the identity key of the card it sealed to). A relay, which holds none of
//! the keys, can withhold a message but cannot forge one, nor move one to another report or
//! another thread: the reporter's client refuses each of those with its own error.
//!
//! Version 2 (`vigil-thread\x02`) is written for a reply or answer with attachments (issue 15):
//! after the text, a u32 length `b` and `b` bytes of attachment block (count
//! 1..=[`MAX_THREAD_ATTACHMENTS`], then each attachment's entry and the blob key, byte for byte
//! as in a report envelope: `envelope::encode_attachments`), then the padding. The blobs are
//! uploaded and deposited with the message as a report's are, encrypted to a key made for this
//! message alone, which travels inside the signature. A receipt never carries attachments.
//! Messages without attachments are still version 1, byte for byte.
//!
//! Size: the padding brings every sealed message to the length of a text report's envelope
//! ([`envelope::FIXED_ENVELOPE_LEN`], 16 KiB; every text up to [`MAX_TEXT_LEN`] fits), with the
//! same 16-stanza age header, so the relay cannot tell a receipt from a reply, nor either from a
//! report, by size.

use crate::age::{self, x25519};
use crate::envelope::{self, Attachment, Attachments, EnvelopeError, Opened, MAX_INNER_LEN};
use crate::ids::ReportId;
use crate::keys::{PublicSigningKey, SignatureDomain, SigningSecret};
use crate::reader::{ReadError, Reader};
use rand_core::CryptoRngCore;
use std::fmt;
use zeroize::Zeroizing;

/// The magic of version 1.
const MAGIC: &[u8; 13] = b"vigil-thread\x01";
/// The magic of version 2: version 1 with an attachment block after the text.
const MAGIC_V2: &[u8; 13] = b"vigil-thread\x02";
/// Most attachments one reply or answer carries: a few documents or photos. A report takes
/// more (`envelope::MAX_ATTACHMENTS`); a thread message stays near the fixed size.
pub const MAX_THREAD_ATTACHMENTS: usize = 16;
/// Longest attachment block: the count, sixteen entries of the longest name and media type,
/// the blob key.
const MAX_ATTACHMENT_BLOCK_LEN: usize = 1
    + MAX_THREAD_ATTACHMENTS
        * (1 + envelope::MAX_ATTACHMENT_NAME_LEN
            + 1
            + envelope::MAX_MEDIA_TYPE_LEN
            + 8
            + 32
            + 16
            + 1)
    + 1
    + envelope::MAX_BLOB_KEY_LEN;
/// Longest text of a reply or answer, in bytes: twelve KiB of UTF-8 (about 6 000 Cyrillic
/// letters), the most that keeps every sealed message at the fixed 16 KiB of a text report.
pub const MAX_TEXT_LEN: usize = 12 * 1024;
/// Fixed fields before the text: magic, kind, signer, time, report id, recipient, text length.
const FIXED_LEN: usize = MAGIC.len() + 1 + 32 + 8 + 32 + 32 + 4;
/// Largest inner layer read: the largest message with attachments, padded (without them it is
/// always the fixed size).
const MAX_THREAD_INNER_LEN: usize =
    envelope::padded_inner_len(FIXED_LEN + MAX_TEXT_LEN + 4 + MAX_ATTACHMENT_BLOCK_LEN + 4 + 64);

// Every message, the longest included, seals to the fixed size.
const _: () = assert!(
    envelope::sealed_len(FIXED_LEN + MAX_TEXT_LEN + 4 + 64) == envelope::FIXED_ENVELOPE_LEN
);
const _: () = assert!(MAX_THREAD_INNER_LEN <= MAX_INNER_LEN);

/// What a thread message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The NGO received and stored the report (no text).
    Receipt,
    /// The NGO's reply.
    Reply,
    /// The reporter's answer.
    Answer,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::Receipt => 1,
            Kind::Reply => 2,
            Kind::Answer => 3,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Kind::Receipt),
            2 => Some(Kind::Reply),
            3 => Some(Kind::Answer),
            _ => None,
        }
    }

    /// The signature domain of this kind.
    fn domain(self) -> SignatureDomain {
        match self {
            Kind::Receipt => SignatureDomain::Receipt,
            Kind::Reply | Kind::Answer => SignatureDomain::Reply,
        }
    }
}

/// Why a thread message could not be made, opened or believed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThreadError {
    /// The bytes are not a thread message of a known version, or are damaged.
    #[error("thread message is malformed ({0}); it was damaged or not made by Vigil")]
    Malformed(&'static str),
    /// The signature does not verify under the key the message names.
    #[error("thread message's signature does not verify: it was altered or forged")]
    BadSignature,
    /// Signed, but by another key than the one that must have signed it.
    #[error("signed by a key that is not {0}")]
    WrongSigner(&'static str),
    /// Signed for another report.
    #[error("it names another report than this thread's")]
    WrongReport,
    /// Bound to another reply key than this thread's.
    #[error("it is bound to another reply key than this thread's")]
    WrongReplyKey,
    /// A kind that cannot come this way (a reporter's answer in the reply mailbox, an NGO's
    /// receipt in the NGO's own mailbox).
    #[error("a {0} cannot come this way")]
    WrongKind(&'static str),
    /// A text that is empty (reply, answer), present (receipt) or longer than
    /// [`MAX_TEXT_LEN`].
    #[error("the text must be 1 to {MAX_TEXT_LEN} bytes of UTF-8; shorten it")]
    BadText,
    /// The padding is not the declared number of zero bytes.
    #[error("thread message's padding is not {0}; it was damaged or not made by Vigil")]
    BadPadding(&'static str),
}

impl From<ReadError> for ThreadError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Truncated { what, .. } | ReadError::BadFlag { what } => {
                ThreadError::Malformed(what)
            }
            ReadError::Trailing { .. } => ThreadError::Malformed("trailing bytes"),
        }
    }
}

/// A decrypted thread message whose signature verified under the key it names. Whether that
/// key is the right one, and the report and reply key the right ones, is [`Message::check`]'s
/// question. Holds plaintext: no derived `Debug`, the text is wiped when dropped.
pub struct Message {
    /// What it is.
    pub kind: Kind,
    /// Who signed it (verified).
    pub signer: PublicSigningKey,
    /// When, by the signer's clock.
    pub created: u64,
    /// The report it belongs to.
    pub report: ReportId,
    /// The thread's reply recipient it is bound to.
    pub reply_recipient: [u8; 32],
    /// The text (empty for a receipt).
    pub text: Zeroizing<String>,
    /// Its attachments (version 2), in the order the signer listed them; none for version 1.
    pub attachments: Vec<Attachment>,
    /// The key their blobs are encrypted to, when there are any.
    pub blob_key: Option<x25519::Identity>,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("kind", &self.kind)
            .field("signer", &self.signer)
            .field("created", &self.created)
            .field("report", &self.report)
            .field("text", &format_args!("[{} bytes]", self.text.len()))
            .field("attachments", &self.attachments.len())
            .finish()
    }
}

/// What a message must be to be believed: see [`Message::check`].
pub struct Expected<'a> {
    /// The key that must have signed it: the NGO's card identity key (receipts, replies) or the
    /// key that signed the report (answers).
    pub signer: &'a PublicSigningKey,
    /// Said of a wrong signer: "the NGO's card key", "the report's signer".
    pub signer_is: &'static str,
    /// The thread's report.
    pub report: &'a ReportId,
    /// The thread's reply recipient.
    pub reply_recipient: &'a x25519::Recipient,
    /// The kinds that may come this way.
    pub kinds: &'a [Kind],
}

impl Message {
    /// Refuse a message that is not what this thread expects: another kind, another signer,
    /// another report, another reply key (in that order; each its own error). Keys and ids are
    /// compared in constant time.
    pub fn check(&self, want: &Expected<'_>) -> Result<(), ThreadError> {
        use subtle::ConstantTimeEq;
        if !want.kinds.contains(&self.kind) {
            return Err(ThreadError::WrongKind(match self.kind {
                Kind::Receipt => "receipt",
                Kind::Reply => "reply",
                Kind::Answer => "reporter's answer",
            }));
        }
        if !bool::from(self.signer.to_bytes().ct_eq(&want.signer.to_bytes())) {
            return Err(ThreadError::WrongSigner(want.signer_is));
        }
        if !self.report.ct_eq(want.report) {
            return Err(ThreadError::WrongReport);
        }
        if !bool::from(self.reply_recipient.ct_eq(&want.reply_recipient.to_bytes())) {
            return Err(ThreadError::WrongReplyKey);
        }
        Ok(())
    }
}

/// What to sign: one message of a thread.
pub struct Draft<'a> {
    /// What it is.
    pub kind: Kind,
    /// When (the signer's clock).
    pub created: u64,
    /// The report of the thread.
    pub report: &'a ReportId,
    /// The thread's reply recipient.
    pub reply_recipient: &'a x25519::Recipient,
    /// The text: empty for a receipt, 1..=[`MAX_TEXT_LEN`] bytes otherwise.
    pub text: &'a str,
    /// Attachments (1..=[`MAX_THREAD_ATTACHMENTS`]) and their blob key, for a reply or an
    /// answer: version 2. `None`: version 1.
    pub attachments: Option<Attachments<'a>>,
}

/// Sign `draft` with `signer`, padded so that it seals to the fixed size.
pub fn sign(draft: &Draft<'_>, signer: &SigningSecret) -> Result<Zeroizing<Vec<u8>>, ThreadError> {
    let t = draft.text.len();
    if (draft.kind == Kind::Receipt) != (t == 0) || t > MAX_TEXT_LEN {
        return Err(ThreadError::BadText);
    }
    let mut block = Zeroizing::new(Vec::new());
    if let Some(a) = draft.attachments {
        if draft.kind == Kind::Receipt || a.list.len() > MAX_THREAD_ATTACHMENTS {
            return Err(ThreadError::Malformed("attachment count"));
        }
        envelope::encode_attachments(a, &mut block)
            .map_err(|_| ThreadError::Malformed("attachments"))?;
    }
    let extra = if draft.attachments.is_some() {
        4 + block.len()
    } else {
        0
    };
    let unpadded = FIXED_LEN + t + extra + 4 + 64;
    let total = envelope::padded_inner_len(unpadded);
    let pad = total - unpadded;
    let mut out = Zeroizing::new(Vec::with_capacity(total));
    out.extend_from_slice(if draft.attachments.is_some() {
        MAGIC_V2
    } else {
        MAGIC
    });
    out.push(draft.kind.byte());
    out.extend_from_slice(&signer.public().to_bytes());
    out.extend_from_slice(&draft.created.to_be_bytes());
    out.extend_from_slice(draft.report.as_bytes());
    out.extend_from_slice(&draft.reply_recipient.to_bytes());
    out.extend_from_slice(&(t as u32).to_be_bytes());
    out.extend_from_slice(draft.text.as_bytes());
    if draft.attachments.is_some() {
        out.extend_from_slice(&(block.len() as u32).to_be_bytes());
        out.extend_from_slice(&block);
    }
    out.extend_from_slice(&(pad as u32).to_be_bytes());
    let end = out.len() + pad;
    out.resize(end, 0);
    let sig = signer.sign(draft.kind.domain(), &out);
    out.extend_from_slice(&sig);
    Ok(out)
}

/// Sign `draft` and encrypt it to `to` (the reply recipient, or an NGO's staff keys), with the
/// 16-stanza header of every envelope.
pub fn seal<R: age::Recipient>(
    draft: &Draft<'_>,
    signer: &SigningSecret,
    to: &[R],
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> Result<Vec<u8>, EnvelopeError> {
    let inner = sign(draft, signer)?;
    envelope::encrypt_inner(&inner, to, rng)
}

/// Whether a decrypted inner layer is a thread message (rather than a report).
pub fn is_thread(inner: &[u8]) -> bool {
    inner.starts_with(&MAGIC[..MAGIC.len() - 1])
}

/// Parse a decrypted inner layer and verify its signature under the key it names.
pub fn open_inner(inner: &[u8]) -> Result<Message, ThreadError> {
    if inner.len() > MAX_THREAD_INNER_LEN {
        return Err(ThreadError::Malformed("too large"));
    }
    if inner.len() < 64 {
        return Err(ThreadError::Malformed("too short"));
    }
    let (signed, sig) = inner.split_at(inner.len() - 64);
    let mut r = Reader::<ThreadError>::new(signed);
    let magic = r.take(MAGIC.len(), "magic")?;
    let with_attachments = match magic {
        m if m == MAGIC => false,
        m if m == MAGIC_V2 => true,
        _ => return Err(ThreadError::Malformed("unknown magic or version")),
    };
    let kind = Kind::from_byte(r.u8("kind")?).ok_or(ThreadError::Malformed("unknown kind"))?;
    let signer = PublicSigningKey::from_bytes(&r.array("signer key")?)
        .map_err(|_| ThreadError::BadSignature)?;
    let created = r.u64("creation time")?;
    let report = ReportId(r.array("report id")?);
    let reply_recipient: [u8; 32] = r.array("reply recipient")?;
    let t = r.u32("text length")? as usize;
    if t > MAX_TEXT_LEN || (kind == Kind::Receipt) != (t == 0) {
        return Err(ThreadError::BadText);
    }
    let text = r.take(t, "text")?;
    let mut attachments = Vec::new();
    let mut blob_key_raw = None;
    if with_attachments {
        // Bounded before anything is read from it; parsed as a report's attachments are.
        let b = r.u32("attachment block length")? as usize;
        if b > MAX_ATTACHMENT_BLOCK_LEN || kind == Kind::Receipt {
            return Err(ThreadError::Malformed("attachment block"));
        }
        let mut block = Reader::<EnvelopeError>::new(r.take(b, "attachment block")?);
        let bad = |_| ThreadError::Malformed("attachments");
        let count = usize::from(block.u8("attachment count").map_err(bad)?);
        if count == 0 || count > MAX_THREAD_ATTACHMENTS {
            return Err(ThreadError::Malformed("attachment count"));
        }
        let (list, key) = envelope::read_attachments(&mut block, count).map_err(bad)?;
        block.finish().map_err(bad)?;
        attachments = list;
        blob_key_raw = Some(key);
    }
    let declared = r.u32("padding length")? as usize;
    if declared != r.remaining() {
        return Err(ThreadError::BadPadding("of its declared length"));
    }
    if r.take(declared, "padding")?.iter().any(|&b| b != 0) {
        return Err(ThreadError::BadPadding("all zero bytes"));
    }
    r.finish()?;
    let sig: [u8; 64] = sig
        .try_into()
        .map_err(|_| ThreadError::Malformed("signature"))?;
    signer
        .verify(kind.domain(), signed, &sig)
        .map_err(|_| ThreadError::BadSignature)?;
    let text = std::str::from_utf8(text).map_err(|_| ThreadError::BadText)?;
    let blob_key = blob_key_raw
        .map(envelope::parse_blob_key)
        .transpose()
        .map_err(|_| ThreadError::Malformed("blob key"))?;
    Ok(Message {
        kind,
        signer,
        created,
        report,
        reply_recipient,
        text: Zeroizing::new(text.to_string()),
        attachments,
        blob_key,
    })
}

/// Decrypt with any of `identities` (the reporter's reply identity) and verify.
pub fn open<I: age::Identity>(
    ciphertext: &[u8],
    identities: &[I],
) -> Result<Message, EnvelopeError> {
    let inner = age::decrypt_from_slice(ciphertext, identities, MAX_THREAD_INNER_LEN)?;
    Ok(open_inner(&inner)?)
}

/// What an NGO finds in its mailbox: a report, or a message of a report's thread.
#[derive(Debug)]
pub enum Incoming {
    /// A report envelope.
    Report(Box<Opened>),
    /// A reporter's answer in a thread (its signer is checked by the caller against the
    /// thread's report).
    Thread(Box<Message>),
}

/// Decrypt an item of an NGO's mailbox with any of `identities` (decrypted once) and open it as
/// what its magic says: a report envelope (checked as [`envelope::open`] does, `me` being the
/// NGO's identity key) or a thread message.
pub fn open_incoming<I: age::Identity>(
    ciphertext: &[u8],
    identities: &[I],
    me: &PublicSigningKey,
) -> Result<Incoming, EnvelopeError> {
    let inner = age::decrypt_from_slice(ciphertext, identities, MAX_INNER_LEN)?;
    if is_thread(&inner) {
        Ok(Incoming::Thread(Box::new(open_inner(&inner)?)))
    } else {
        Ok(Incoming::Report(Box::new(envelope::open_inner(
            &inner, me,
        )?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    fn draft<'a>(
        kind: Kind,
        report: &'a ReportId,
        to: &'a x25519::Recipient,
        text: &'a str,
    ) -> Draft<'a> {
        Draft {
            kind,
            created: 77,
            report,
            reply_recipient: to,
            text,
            attachments: None,
        }
    }

    #[test]
    fn every_kind_round_trips_at_the_fixed_size_and_is_checked() {
        let ngo = SigningSecret::generate(&mut OsRng);
        let reply_key = x25519::Identity::generate(&mut OsRng);
        let to = reply_key.to_public();
        let id = ReportId([5; 32]);
        let long = "ж".repeat(MAX_TEXT_LEN / 2);
        for (kind, text) in [
            (Kind::Receipt, ""),
            (Kind::Reply, "Which police station?"),
            (Kind::Reply, long.as_str()),
            (Kind::Answer, "The one on Lenina street."),
        ] {
            let sealed = seal(
                &draft(kind, &id, &to, text),
                &ngo,
                std::slice::from_ref(&to),
                &mut OsRng,
            )
            .unwrap();
            assert_eq!(sealed.len(), envelope::FIXED_ENVELOPE_LEN, "{kind:?}");
            let m = open(&sealed, std::slice::from_ref(&reply_key)).unwrap();
            assert_eq!((m.kind, m.created, m.text.as_str()), (kind, 77, text));
            let want = Expected {
                signer: &ngo.public(),
                signer_is: "the NGO's card key",
                report: &id,
                reply_recipient: &to,
                kinds: &[kind],
            };
            assert_eq!(m.check(&want), Ok(()));
            assert!(!format!("{m:?}").contains("police"), "no text in Debug");
        }
    }

    #[test]
    fn forgeries_are_refused_each_with_its_reason() {
        let ngo = SigningSecret::generate(&mut OsRng);
        let forger = SigningSecret::generate(&mut OsRng);
        let reply_key = x25519::Identity::generate(&mut OsRng);
        let to = reply_key.to_public();
        let other_to = x25519::Identity::generate(&mut OsRng).to_public();
        let id = ReportId([5; 32]);
        let other_id = ReportId([6; 32]);
        let want = Expected {
            signer: &ngo.public(),
            signer_is: "the NGO's card key",
            report: &id,
            reply_recipient: &to,
            kinds: &[Kind::Receipt, Kind::Reply],
        };
        let open_signed = |d: &Draft<'_>, by: &SigningSecret| open_inner(&sign(d, by).unwrap());
        let m = open_signed(&draft(Kind::Receipt, &id, &to, ""), &forger).unwrap();
        assert_eq!(
            m.check(&want),
            Err(ThreadError::WrongSigner("the NGO's card key"))
        );
        let m = open_signed(&draft(Kind::Receipt, &other_id, &to, ""), &ngo).unwrap();
        assert_eq!(m.check(&want), Err(ThreadError::WrongReport));
        let m = open_signed(&draft(Kind::Reply, &id, &other_to, "hi"), &ngo).unwrap();
        assert_eq!(m.check(&want), Err(ThreadError::WrongReplyKey));
        let m = open_signed(&draft(Kind::Answer, &id, &to, "hi"), &ngo).unwrap();
        assert!(matches!(m.check(&want), Err(ThreadError::WrongKind(_))));
        // A signature claimed by another key, or a flipped bit anywhere, does not verify.
        let good = sign(&draft(Kind::Reply, &id, &to, "hello"), &ngo).unwrap();
        let mut claimed = good.to_vec();
        claimed[14..46].copy_from_slice(&forger.public().to_bytes());
        assert_eq!(open_inner(&claimed).unwrap_err(), ThreadError::BadSignature);
        for i in 0..FIXED_LEN + 5 {
            let mut t = good.to_vec();
            t[i] ^= 0x10;
            assert!(open_inner(&t).is_err(), "bit flip at {i}");
        }
        let sig_at = good.len() - 64;
        let mut t = good.to_vec();
        t[sig_at + 3] ^= 1;
        assert_eq!(open_inner(&t).unwrap_err(), ThreadError::BadSignature);
    }

    #[test]
    fn a_receipt_signature_is_not_a_reply_nor_an_envelope_and_back() {
        let ngo = SigningSecret::generate(&mut OsRng);
        let to = x25519::Identity::generate(&mut OsRng).to_public();
        let id = ReportId([1; 32]);
        // The same bytes with the kind byte changed: the signature was made in the receipt
        // domain, so as a reply (kind 2, with a text) it fails, whatever else matches.
        let receipt = sign(&draft(Kind::Receipt, &id, &to, ""), &ngo).unwrap();
        let body = &receipt[..receipt.len() - 64];
        let sig: [u8; 64] = receipt[receipt.len() - 64..].try_into().unwrap();
        assert!(ngo
            .public()
            .verify(SignatureDomain::Receipt, body, &sig)
            .is_ok());
        for other in [
            SignatureDomain::Reply,
            SignatureDomain::Envelope,
            SignatureDomain::Card,
        ] {
            assert!(ngo.public().verify(other, body, &sig).is_err(), "{other:?}");
        }
        let mut as_reply = receipt.to_vec();
        as_reply[13] = Kind::Reply.byte();
        assert!(open_inner(&as_reply).is_err());
        // A thread message is never opened as a report, nor a report as a thread message.
        assert!(matches!(
            envelope::open_inner(&receipt, &ngo.public()),
            Err(EnvelopeError::Malformed(_))
        ));
    }

    #[test]
    fn truncations_bounds_and_texts_are_refused_without_panicking() {
        let ngo = SigningSecret::generate(&mut OsRng);
        let to = x25519::Identity::generate(&mut OsRng).to_public();
        let id = ReportId([1; 32]);
        let good = sign(&draft(Kind::Reply, &id, &to, "hello"), &ngo).unwrap();
        for cut in 0..good.len() {
            assert!(open_inner(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = good.to_vec();
        longer.extend_from_slice(&[0; 64]);
        assert!(open_inner(&longer).is_err());
        assert!(open_inner(&vec![0; MAX_THREAD_INNER_LEN + 1]).is_err());
        // Texts: a receipt has none, a reply one of 1..=MAX_TEXT_LEN bytes.
        assert_eq!(
            sign(&draft(Kind::Receipt, &id, &to, "x"), &ngo).unwrap_err(),
            ThreadError::BadText
        );
        assert_eq!(
            sign(&draft(Kind::Reply, &id, &to, ""), &ngo).unwrap_err(),
            ThreadError::BadText
        );
        let too_long = "a".repeat(MAX_TEXT_LEN + 1);
        assert_eq!(
            sign(&draft(Kind::Answer, &id, &to, &too_long), &ngo).unwrap_err(),
            ThreadError::BadText
        );
        // A hostile signer's declared lengths: a text length past the end, padding that lies,
        // non-zero padding, invalid UTF-8.
        let body = good[..good.len() - 64].to_vec();
        let resign = |b: Vec<u8>| {
            let mut b = b;
            let sig = ngo.sign(SignatureDomain::Reply, &b);
            b.extend_from_slice(&sig);
            b
        };
        let t_at = FIXED_LEN - 4;
        let mut w = body.clone();
        w[t_at..t_at + 4].copy_from_slice(&(MAX_TEXT_LEN as u32 + 1).to_be_bytes());
        assert_eq!(open_inner(&resign(w)).unwrap_err(), ThreadError::BadText);
        let mut w = body.clone();
        w[t_at..t_at + 4].copy_from_slice(&(body.len() as u32).to_be_bytes());
        assert!(open_inner(&resign(w)).is_err());
        let mut w = body.clone();
        let last = w.len() - 1;
        w[last] = 1;
        assert_eq!(
            open_inner(&resign(w)).unwrap_err(),
            ThreadError::BadPadding("all zero bytes")
        );
        let mut w = body.clone();
        w[FIXED_LEN] = 0xff;
        assert_eq!(open_inner(&resign(w)).unwrap_err(), ThreadError::BadText);
        let p_at = FIXED_LEN + 5;
        let mut w = body.clone();
        w[p_at..p_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            open_inner(&resign(w)).unwrap_err(),
            ThreadError::BadPadding("of its declared length")
        );
    }

    #[test]
    fn an_ngo_tells_answers_from_reports_with_one_decryption() {
        let reporter = SigningSecret::generate(&mut OsRng);
        let ngo = SigningSecret::generate(&mut OsRng).public();
        let staff = x25519::Identity::generate(&mut OsRng);
        let reply_to = x25519::Identity::generate(&mut OsRng).to_public();
        let id = ReportId([3; 32]);
        let sealed = seal(
            &draft(Kind::Answer, &id, &reply_to, "yes"),
            &reporter,
            &[staff.to_public()],
            &mut OsRng,
        )
        .unwrap();
        match open_incoming(&sealed, std::slice::from_ref(&staff), &ngo).unwrap() {
            Incoming::Thread(m) => {
                assert_eq!(m.kind, Kind::Answer);
                assert_eq!(m.signer, reporter.public());
            }
            Incoming::Report(_) => panic!("an answer opened as a report"),
        }
    }

    fn attachment(n: u8) -> Attachment {
        Attachment {
            name: format!("form-{n}.pdf"),
            media_type: "application/pdf".into(),
            size: 1000 + u64::from(n),
            sha256: [n; 32],
            blob: [n; 16],
            metadata_kept: false,
        }
    }

    #[test]
    fn replies_and_answers_carry_attachments_signed_with_their_key_in_version_2() {
        let ngo = SigningSecret::generate(&mut OsRng);
        let reply_key = x25519::Identity::generate(&mut OsRng);
        let to = reply_key.to_public();
        let blob_key = x25519::Identity::generate(&mut OsRng);
        let id = ReportId([5; 32]);
        let list = [attachment(1), attachment(2)];
        let with = |kind, text, list: &'static [Attachment]| Draft {
            attachments: Some(Attachments {
                list,
                blob_key: &blob_key,
            }),
            ..draft(kind, &id, &to, text)
        };
        let list: &'static [Attachment] = Box::leak(Box::new(list));
        let sealed = seal(
            &with(Kind::Reply, "The form to sign", list),
            &ngo,
            std::slice::from_ref(&to),
            &mut OsRng,
        )
        .unwrap();
        assert_eq!(sealed.len(), envelope::FIXED_ENVELOPE_LEN, "still one size");
        let m = open(&sealed, std::slice::from_ref(&reply_key)).unwrap();
        assert_eq!(m.attachments, list);
        assert_eq!(
            m.blob_key.as_ref().map(x25519::Identity::to_public),
            Some(blob_key.to_public())
        );
        assert_eq!(m.text.as_str(), "The form to sign");
        // Without attachments: version 1, byte for byte as before.
        let plain = sign(&draft(Kind::Reply, &id, &to, "hi"), &ngo).unwrap();
        assert_eq!(&plain[..13], MAGIC);
        assert!(open_inner(&plain).unwrap().attachments.is_empty());
        let v2 = sign(&with(Kind::Reply, "hi", list), &ngo).unwrap();
        assert_eq!(&v2[..13], MAGIC_V2);
        // The most attachments with the longest names and the longest text: a Padmé size above
        // the fixed one, still read back.
        let big: Vec<Attachment> = (0..MAX_THREAD_ATTACHMENTS as u8)
            .map(|n| Attachment {
                name: format!("{n:02}{}", "я".repeat(126)),
                media_type: "x".repeat(envelope::MAX_MEDIA_TYPE_LEN),
                ..attachment(n)
            })
            .collect();
        let big: &'static [Attachment] = Box::leak(big.into_boxed_slice());
        let long = "ж".repeat(MAX_TEXT_LEN / 2);
        let long: &'static str = Box::leak(long.into_boxed_str());
        let sealed = seal(
            &with(Kind::Answer, long, big),
            &ngo,
            std::slice::from_ref(&to),
            &mut OsRng,
        )
        .unwrap();
        assert!(sealed.len() > envelope::FIXED_ENVELOPE_LEN);
        assert_eq!(
            open(&sealed, std::slice::from_ref(&reply_key))
                .unwrap()
                .attachments
                .len(),
            MAX_THREAD_ATTACHMENTS
        );
        // Refused when made: a receipt with attachments, too many, none.
        assert!(sign(&with(Kind::Receipt, "", list), &ngo).is_err());
        let many: Vec<Attachment> = (0..=MAX_THREAD_ATTACHMENTS as u8).map(attachment).collect();
        let many: &'static [Attachment] = Box::leak(many.into_boxed_slice());
        assert!(sign(&with(Kind::Reply, "hi", many), &ngo).is_err());
        assert!(sign(&with(Kind::Reply, "hi", &[]), &ngo).is_err());
    }

    #[test]
    fn damaged_attachment_blocks_are_refused_before_the_signature_is_believed() {
        let ngo = SigningSecret::generate(&mut OsRng);
        let to = x25519::Identity::generate(&mut OsRng).to_public();
        let blob_key = x25519::Identity::generate(&mut OsRng);
        let id = ReportId([5; 32]);
        let list = [attachment(1)];
        let good = sign(
            &Draft {
                attachments: Some(Attachments {
                    list: &list,
                    blob_key: &blob_key,
                }),
                ..draft(Kind::Reply, &id, &to, "hi")
            },
            &ngo,
        )
        .unwrap();
        let body = good[..good.len() - 64].to_vec();
        let resign = |mut b: Vec<u8>| {
            let sig = ngo.sign(SignatureDomain::Reply, &b);
            b.extend_from_slice(&sig);
            b
        };
        let b_at = FIXED_LEN + 2; // after the 2-byte text
        let block_len = u32::from_be_bytes(body[b_at..b_at + 4].try_into().unwrap()) as usize;
        // A block length beyond the maximum, or beyond the message, or a count of 0 or 17.
        for (at, bytes) in [
            (
                b_at,
                (MAX_ATTACHMENT_BLOCK_LEN as u32 + 1).to_be_bytes().to_vec(),
            ),
            (b_at, (body.len() as u32).to_be_bytes().to_vec()),
            (b_at + 4, vec![0]),
            (b_at + 4, vec![MAX_THREAD_ATTACHMENTS as u8 + 1]),
        ] {
            let mut w = body.clone();
            w[at..at + bytes.len()].copy_from_slice(&bytes);
            assert!(open_inner(&resign(w)).is_err(), "{at} {bytes:?}");
        }
        // A name with a path separator, inside the block.
        let mut w = body.clone();
        w[b_at + 4 + 2] = b'/';
        assert!(open_inner(&resign(w)).is_err());
        // A flipped bit in the block without a new signature.
        let mut w = good.to_vec();
        w[b_at + 4 + block_len - 1] ^= 1;
        assert_eq!(open_inner(&w).unwrap_err(), ThreadError::BadSignature);
        // A version 1 magic before an attachment block: the block is read as padding.
        let mut w = body.clone();
        w[..13].copy_from_slice(MAGIC);
        assert!(open_inner(&resign(w)).is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1024)) {
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let mut with_v2 = MAGIC_V2.to_vec();
            with_v2.extend_from_slice(&bytes);
            proptest::prop_assert!(open_inner(&bytes).is_err());
            proptest::prop_assert!(open_inner(&with_magic).is_err());
            proptest::prop_assert!(open_inner(&with_v2).is_err());
        }
    }
}
