//! The report envelope: sign, then encrypt.
//!
//! Inner layer (what is signed), all integers big-endian:
//!
//! | size      | field                                                         |
//! |-----------|---------------------------------------------------------------|
//! | 15        | magic `vigil-envelope` followed by version byte `0x02`        |
//! | 32        | sender's Ed25519 public key                                   |
//! | 8         | creation time, seconds since the Unix epoch (u64)             |
//! | 1         | number of intended NGOs `n`, 1..=[`MAX_INTENDED`]             |
//! | 32 × n    | identity keys of every NGO the report was sent to, sorted     |
//! | n × (1+l) | version 2 only: for each key above, in the same order, the    |
//! |           | name on that NGO's card: length `l` (u8, ≤ [`MAX_NGO_NAME_LEN`],|
//! |           | 0 for none) and `l` bytes of UTF-8 without control characters |
//! | 4         | report length `m` (u32), at most [`MAX_REPORT_JSON_LEN`]      |
//! | m         | report JSON                                                   |
//! | 64        | Ed25519 signature, domain `envelope`, over all bytes above    |
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
/// The magic of version 1 (no NGO names), still opened.
const MAGIC_V1: &[u8; 15] = b"vigil-envelope\x01";
/// Most NGOs one report can be addressed to. Each costs 32 bytes in every copy.
pub const MAX_INTENDED: usize = 16;
/// Longest NGO name carried in the envelope, in bytes; a longer card name is cut at a
/// character boundary.
pub const MAX_NGO_NAME_LEN: usize = 200;
/// Largest inner layer: the fixed fields, the keys and their names, the report and the
/// signature.
pub const MAX_INNER_LEN: usize = MAGIC.len()
    + 32
    + 8
    + 1
    + (32 + 1 + MAX_NGO_NAME_LEN) * MAX_INTENDED
    + 4
    + MAX_REPORT_JSON_LEN
    + 64;

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
    out.extend_from_slice(MAGIC);
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
    let named = match r.take(MAGIC.len(), "magic")? {
        m if m == MAGIC => true,
        m if m == MAGIC_V1 => false,
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
    let report = Report::from_json(report_json)?;
    Ok(Opened {
        report,
        report_json: Zeroizing::new(report_json.to_vec()),
        sender,
        intended,
        intended_names,
        created,
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

    proptest::proptest! {
        #[test]
        fn arbitrary_inner_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let me = SigningSecret::from_seed(&[3; 32]).public();
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            proptest::prop_assert!(open_inner(&bytes, &me).is_err());
            proptest::prop_assert!(open_inner(&with_magic, &me).is_err());
        }
    }
}
