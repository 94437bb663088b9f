//! The age v1 header: parsing (bounded, strict) and encoding.
//!
//! ```text
//! age-encryption.org/v1
//! -> X25519 <share>
//! <body, base64 wrapped at 64 columns, last line shorter than 64 (may be empty)>
//! --- <base64 HMAC-SHA-256 of everything up to and including "---">
//! ```
//!
//! The reader takes only what the grammar asks for, one line at a time, from a `BufRead`;
//! every line and the whole header are capped (see [`limits`](super::limits)) before any byte
//! is copied, so the payload that follows is left unread for the STREAM decryptor.

use std::io::{self, BufRead};

use subtle::ConstantTimeEq;

use super::b64;
use super::limits::{MAX_HEADER_LEN, MAX_HEADER_LINE_LEN, MAX_STANZAS, MAX_STANZA_ARGS};
use super::primitives::{hkdf, hmac, FileKey};
use super::AgeError;

/// The version line, without its LF.
pub const VERSION_LINE: &[u8] = b"age-encryption.org/v1";
/// Prefix shared by all age version lines.
pub const MAGIC_PREFIX: &[u8] = b"age-encryption.org/";
/// Body lines are wrapped at this many base64 characters.
pub const BODY_COLUMNS: usize = 64;
const MAC_LEN: usize = 32;

/// One recipient stanza: its arguments (the first is the type) and its decoded body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stanza {
    /// `args[0]` is the stanza type (`X25519`, `scrypt`, or anything else to be skipped).
    pub args: Vec<String>,
    /// The decoded body (for native types, a wrapped file key).
    pub body: Vec<u8>,
}

impl Stanza {
    /// The stanza type, i.e. its first argument.
    pub fn tag(&self) -> &str {
        self.args.first().map(String::as_str).unwrap_or("")
    }
}

/// A parsed header: stanzas, the MAC found in the file, and the exact bytes it covers.
#[derive(Clone, Debug)]
pub struct Header {
    /// The recipient stanzas in file order.
    pub stanzas: Vec<Stanza>,
    mac: [u8; MAC_LEN],
    /// The header bytes from the version line through `---` (what the MAC covers).
    mac_input: Vec<u8>,
}

fn invalid(reason: &'static str) -> AgeError {
    AgeError::InvalidHeader { reason }
}

/// True for VCHAR (printable ASCII except space), the argument alphabet.
fn is_vchar(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}

/// Reads one LF-terminated line into `raw`, refusing lines longer than `max_line` bytes
/// (excluding the LF) and headers longer than [`MAX_HEADER_LEN`]. Returns the range of the
/// line (without LF) inside `raw`.
fn read_line<R: BufRead>(
    r: &mut R,
    raw: &mut Vec<u8>,
    max_line: usize,
) -> Result<std::ops::Range<usize>, AgeError> {
    let start = raw.len();
    loop {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if avail.is_empty() {
            return Err(invalid("the file ends inside the header"));
        }
        let (take, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        let line_len = raw.len() - start + take - usize::from(done);
        if line_len > max_line {
            return Err(if max_line == BODY_COLUMNS {
                invalid("a stanza body line is longer than 64 columns")
            } else {
                invalid("a header line is too long")
            });
        }
        if raw.len() + take > MAX_HEADER_LEN {
            return Err(AgeError::HeaderTooLarge {
                max: MAX_HEADER_LEN,
            });
        }
        raw.extend_from_slice(&avail[..take]);
        r.consume(take);
        if done {
            return Ok(start..raw.len() - 1);
        }
    }
}

/// Splits and checks a stanza argument line (after `"-> "`).
fn parse_args(line: &[u8]) -> Result<Vec<String>, AgeError> {
    let mut args = Vec::new();
    for arg in line.split(|&b| b == b' ') {
        if arg.is_empty() {
            return Err(invalid("a stanza has an empty argument or a stray space"));
        }
        if !arg.iter().all(|&b| is_vchar(b)) {
            return Err(invalid(
                "a stanza argument has a character outside printable ASCII",
            ));
        }
        if args.len() == MAX_STANZA_ARGS {
            return Err(invalid("a stanza has too many arguments"));
        }
        // All bytes are ASCII, so this conversion is lossless.
        args.push(String::from_utf8_lossy(arg).into_owned());
    }
    Ok(args)
}

impl Header {
    /// Reads a header from `r`, consuming exactly the header bytes (through the MAC line's LF).
    pub fn read<R: BufRead>(r: &mut R) -> Result<Header, AgeError> {
        let mut raw = Vec::new();
        let line = read_line(r, &mut raw, MAX_HEADER_LINE_LEN)?;
        if raw[line.clone()] != *VERSION_LINE {
            let l = &raw[line];
            if l.starts_with(MAGIC_PREFIX) {
                let shown = &l[..l.len().min(64)];
                return Err(AgeError::UnsupportedVersion {
                    version: String::from_utf8_lossy(shown).into_owned(),
                });
            }
            return Err(invalid("it does not start with age-encryption.org/v1"));
        }

        let mut stanzas = Vec::new();
        loop {
            let line = read_line(r, &mut raw, MAX_HEADER_LINE_LEN)?;
            let l = &raw[line.clone()];
            if let Some(rest) = l.strip_prefix(b"---") {
                if stanzas.is_empty() {
                    return Err(invalid("the header has no recipient stanzas"));
                }
                let enc = rest
                    .strip_prefix(b" ")
                    .ok_or_else(|| invalid("the MAC line must be \"--- \" and the MAC"))?;
                let mac = b64::decode_exact::<MAC_LEN>(enc)
                    .ok_or_else(|| invalid("the header MAC is not canonical base64 of 32 bytes"))?;
                let mac_input = raw[..line.start + 3].to_vec();
                return Ok(Header {
                    stanzas,
                    mac,
                    mac_input,
                });
            }
            let Some(arg_line) = l.strip_prefix(b"-> ") else {
                return Err(invalid(
                    "expected a stanza line (\"-> \") or the MAC line (\"--- \")",
                ));
            };
            if stanzas.len() == MAX_STANZAS {
                return Err(AgeError::TooManyStanzas { max: MAX_STANZAS });
            }
            let args = parse_args(arg_line)?;

            // Body: full 64-column lines, then one shorter (possibly empty) final line.
            let mut text = Vec::new();
            loop {
                let bl = read_line(r, &mut raw, BODY_COLUMNS)?;
                let body_line = &raw[bl];
                if !body_line.iter().all(|&b| b64::is_b64_char(b)) {
                    return Err(invalid("a stanza body line is not base64"));
                }
                text.extend_from_slice(body_line);
                if body_line.len() < BODY_COLUMNS {
                    break;
                }
            }
            let body = base64::Engine::decode(&b64::RAW, &text)
                .map_err(|_| invalid("a stanza body is not canonical base64"))?;
            stanzas.push(Stanza { args, body });
        }
    }

    /// Parses a header at the start of `bytes`; returns it and the number of bytes it used.
    pub fn parse(bytes: &[u8]) -> Result<(Header, usize), AgeError> {
        let mut cur = io::Cursor::new(bytes);
        let h = Header::read(&mut cur)?;
        // The cursor position is at most bytes.len(), which fits in usize.
        let used = usize::try_from(cur.position()).unwrap_or(bytes.len());
        Ok((h, used))
    }

    /// Checks the header MAC against `file_key`, in constant time.
    pub(crate) fn verify_mac(&self, file_key: &FileKey) -> Result<(), AgeError> {
        let expected = hmac(&header_mac_key(file_key), &self.mac_input);
        if bool::from(expected.ct_eq(&self.mac)) {
            Ok(())
        } else {
            Err(AgeError::HeaderMacMismatch)
        }
    }
}

fn header_mac_key(file_key: &FileKey) -> zeroize::Zeroizing<[u8; 32]> {
    hkdf(&[], file_key.expose(), b"header")
}

/// Encodes a full header (version line, stanzas, MAC line) for `stanzas` under `file_key`.
///
/// Stanza arguments must already be valid (VCHAR, non-empty); the stanza builders in this
/// module only produce such arguments.
pub(crate) fn encode_header(stanzas: &[Stanza], file_key: &FileKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + stanzas.len() * 128);
    out.extend_from_slice(VERSION_LINE);
    out.push(b'\n');
    for s in stanzas {
        out.extend_from_slice(b"->");
        for a in &s.args {
            out.push(b' ');
            out.extend_from_slice(a.as_bytes());
        }
        out.push(b'\n');
        let text = b64::encode(&s.body);
        for line in text.as_bytes().chunks(BODY_COLUMNS) {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        // The body must end with a short line; an exact multiple of 64 needs an empty one.
        if text.len().is_multiple_of(BODY_COLUMNS) {
            out.push(b'\n');
        }
    }
    out.extend_from_slice(b"---");
    let mac = hmac(&header_mac_key(file_key), &out);
    out.push(b' ');
    out.extend_from_slice(b64::encode(&mac).as_bytes());
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> FileKey {
        FileKey::from_bytes([7u8; 16])
    }

    fn stanza(args: &[&str], body: &[u8]) -> Stanza {
        Stanza {
            args: args.iter().map(|s| s.to_string()).collect(),
            body: body.to_vec(),
        }
    }

    #[test]
    fn round_trip_and_mac() {
        let st = vec![
            stanza(&["X25519", "abc"], &[1u8; 32]),
            stanza(&["grease", "x", "y"], &[]),
            stanza(&["long"], &[9u8; 48]), // exactly 64 columns: needs an empty final line
        ];
        let enc = encode_header(&st, &key());
        let mut with_payload = enc.clone();
        with_payload.extend_from_slice(b"PAYLOAD");
        let (h, used) = Header::parse(&with_payload).unwrap();
        assert_eq!(used, enc.len());
        assert_eq!(h.stanzas, st);
        h.verify_mac(&key()).unwrap();
        assert!(matches!(
            h.verify_mac(&FileKey::from_bytes([8u8; 16])),
            Err(AgeError::HeaderMacMismatch)
        ));
    }

    fn err(bytes: &[u8]) -> AgeError {
        Header::parse(bytes).unwrap_err()
    }

    #[test]
    fn rejects_malformed() {
        let good = encode_header(&[stanza(&["X25519", "abc"], &[1u8; 32])], &key());
        let s = String::from_utf8(good.clone()).unwrap();
        assert!(matches!(err(b""), AgeError::InvalidHeader { .. }));
        assert!(matches!(
            err(b"age-encryption.org/v2\n"),
            AgeError::UnsupportedVersion { .. }
        ));
        // CRLF, double space, missing stanzas, truncated, non-canonical MAC.
        assert!(Header::parse(s.replace('\n', "\r\n").as_bytes()).is_err());
        assert!(Header::parse(s.replace("-> X25519", "->  X25519").as_bytes()).is_err());
        assert!(Header::parse(b"age-encryption.org/v1\n--- AAAA\n").is_err());
        assert!(Header::parse(&good[..good.len() - 1]).is_err());
        // The MAC's last base64 character carries two unused bits, which must be zero.
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut bad = good.clone();
        let n = bad.len();
        let v = alphabet.iter().position(|&c| c == bad[n - 2]).unwrap();
        assert_eq!(v & 3, 0);
        bad[n - 2] = alphabet[v | 1];
        assert!(matches!(err(&bad), AgeError::InvalidHeader { .. }));
        // A MAC line with two spaces, or padding.
        let s2 = s.replace("--- ", "---  ");
        assert!(Header::parse(s2.as_bytes()).is_err());
        let mut padded = good[..n - 1].to_vec();
        padded.extend_from_slice(b"=\n");
        assert!(Header::parse(&padded).is_err());
    }

    #[test]
    fn header_limits() {
        // A long argument line.
        let mut h = b"age-encryption.org/v1\n-> ".to_vec();
        h.extend(std::iter::repeat_n(b'a', MAX_HEADER_LINE_LEN));
        h.extend_from_slice(b"\n\n--- ");
        assert!(matches!(err(&h), AgeError::InvalidHeader { .. }));
        // Too many stanzas.
        let mut h = b"age-encryption.org/v1\n".to_vec();
        for _ in 0..=MAX_STANZAS {
            h.extend_from_slice(b"-> a\n\n");
        }
        assert!(matches!(err(&h), AgeError::TooManyStanzas { .. }));
        // A header that never ends stops at MAX_HEADER_LEN.
        let mut h = b"age-encryption.org/v1\n-> a\n".to_vec();
        let line = [b'A'; 64];
        while h.len() <= MAX_HEADER_LEN + 100 {
            h.extend_from_slice(&line);
            h.push(b'\n');
        }
        assert!(matches!(err(&h), AgeError::HeaderTooLarge { .. }));
        // Too many arguments.
        let mut h = b"age-encryption.org/v1\n->".to_vec();
        for _ in 0..=MAX_STANZA_ARGS {
            h.extend_from_slice(b" a");
        }
        h.extend_from_slice(b"\n\n");
        assert!(matches!(err(&h), AgeError::InvalidHeader { .. }));
        // A 65-column body line.
        let mut h = b"age-encryption.org/v1\n-> a\n".to_vec();
        h.extend_from_slice(&[b'A'; 65]);
        assert!(matches!(err(&h), AgeError::InvalidHeader { .. }));
    }

    fn arb_stanza() -> impl Strategy<Value = Stanza> {
        (
            proptest::collection::vec("[!-~]{1,20}", 1..5),
            proptest::collection::vec(any::<u8>(), 0..200),
        )
            .prop_map(|(args, body)| Stanza { args, body })
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = Header::parse(&bytes);
            let mut prefixed = b"age-encryption.org/v1\n".to_vec();
            prefixed.extend_from_slice(&bytes);
            let _ = Header::parse(&prefixed);
        }

        #[test]
        fn encode_parse_round_trip(stanzas in proptest::collection::vec(arb_stanza(), 1..6),
                                   fk in any::<[u8; 16]>()) {
            let key = FileKey::from_bytes(fk);
            let enc = encode_header(&stanzas, &key);
            let (h, used) = Header::parse(&enc).unwrap();
            prop_assert_eq!(used, enc.len());
            prop_assert_eq!(&h.stanzas, &stanzas);
            prop_assert!(h.verify_mac(&key).is_ok());
        }
    }
}
