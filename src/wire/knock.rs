//! Opening a connection: the client's *knock* and the relay's *identity proof*.
//!
//! Why: a relay must look like an ordinary HTTPS server to anyone who connects without a card
//! (a censor scanning addresses, or probing one it saw a phone talk to). So the certificate a
//! relay shows in TLS (its *front* certificate: self-signed and plain, or the operator's real
//! one for its domain) is not what cards pin, and nothing about Vigil is said until the client
//! has shown, inside TLS, that it holds a card for this relay.
//!
//! 1. The client's first bytes inside TLS (on TCP: the stream; on QUIC: the first
//!    bidirectional stream) are an ordinary-looking HTTP/1.1 request whose `Authorization:
//!    Bearer` value holds one [`knock_tag`] per fingerprint the card pins (the current one, and
//!    the next during a certificate rotation): HMAC-SHA256 keyed by the pinned fingerprint over
//!    this connection's TLS exporter. The fingerprint of a certificate the relay never shows
//!    without a knock is a secret shared by card holders; the exporter makes a tag good for
//!    one connection only (a recorded or relayed knock opens nothing).
//! 2. A relay that finds a tag made with one of its own certificates' fingerprints answers with
//!    an [`IdentityProof`]: that certificate, and its key's signature over [`identity_message`]
//!    (a fixed context string and the exporter). The client accepts the connection only if the
//!    certificate's fingerprint is pinned and the signature verifies: a man in the middle has
//!    a different exporter on each side and cannot make either the tag or the signature.
//! 3. Anything else (no tag, a wrong one, not HTTP at all) gets the answer an ordinary web
//!    server would give (`server/src/listener/front.rs`); the Vigil frames of
//!    [`crate::wire`] follow only a good knock.
//!
//! [`parse_head`] is the one HTTP request parser, used for knocks and probes alike: bounded,
//! never panics, and does not allocate before it has found a complete head.

use crate::ids::CertFingerprint;
use crate::wire::limits::EXPORTER_LEN;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// QUIC ALPN offered and accepted: what HTTP/3 servers use.
pub const QUIC_ALPN: &[u8] = b"h3";
/// TLS-over-TCP ALPN offered and accepted: what HTTP/1.1 servers use.
pub const TCP_ALPN: &[u8] = b"http/1.1";

/// Most bytes of an HTTP request head (request line and header fields) read before answering
/// 431/400: what common servers allow (nginx's default large buffer is 8 KiB).
pub const MAX_HEAD_LEN: usize = 8 * 1024;
/// Most header fields in a head.
pub const MAX_HEADERS: usize = 64;
/// Length of one knock tag (HMAC-SHA256).
pub const TAG_LEN: usize = 32;
/// Most tags in a knock: as many fingerprints as a card may pin at once.
pub const MAX_TAGS: usize = 2;
/// Largest identity proof accepted: a certificate and a signature.
pub const MAX_PROOF_LEN: usize = 8 * 1024;
/// The request target a knock uses. Any path would do; this one looks like an API call.
pub const KNOCK_PATH: &str = "/api/v1/session";

const KNOCK_CONTEXT: &[u8] = b"vigil knock v1\0";
const IDENTITY_CONTEXT: &[u8] = b"vigil relay identity v1\0";

/// What was wrong with a request head or an identity proof.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KnockError {
    /// More than [`MAX_HEAD_LEN`] bytes without the blank line that ends a head.
    #[error("request head longer than {MAX_HEAD_LEN} bytes")]
    HeadTooLong,
    /// Not an HTTP/1.x request.
    #[error("not an HTTP request: {0}")]
    NotHttp(&'static str),
    /// More than [`MAX_HEADERS`] header fields.
    #[error("more than {MAX_HEADERS} header fields")]
    TooManyHeaders,
    /// The identity proof is malformed.
    #[error("malformed identity proof: {0}")]
    BadProof(&'static str),
}

/// One connection's knock tag for `fingerprint`.
pub fn knock_tag(fingerprint: &CertFingerprint, exporter: &[u8; EXPORTER_LEN]) -> [u8; TAG_LEN] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(&fingerprint.0).expect("HMAC accepts any key length");
    mac.update(KNOCK_CONTEXT);
    mac.update(exporter);
    mac.finalize().into_bytes().into()
}

/// The client's knock: an HTTP/1.1 request carrying one tag per pinned fingerprint (at most
/// [`MAX_TAGS`]; extra ones are ignored). `host` is the relay address as the card gives it.
pub fn knock_request(
    host: &str,
    pinned: &[CertFingerprint],
    exporter: &[u8; EXPORTER_LEN],
) -> Vec<u8> {
    let mut tags = Vec::with_capacity(TAG_LEN * MAX_TAGS);
    for fp in pinned.iter().take(MAX_TAGS) {
        tags.extend_from_slice(&knock_tag(fp, exporter));
    }
    // Only characters allowed in a Host field; a card's address is host:port anyway.
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        .take(255)
        .collect();
    format!(
        "POST {KNOCK_PATH} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n\
         Content-Length: 0\r\n\r\n",
        B64URL.encode(&tags)
    )
    .into_bytes()
}

/// A parsed HTTP request head. Borrowed from the bytes it was parsed from.
#[derive(Debug, PartialEq, Eq)]
pub struct Head<'a> {
    /// The method, e.g. `GET`.
    pub method: &'a str,
    /// The request target, e.g. `/`.
    pub target: &'a str,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: &'a str,
    /// Header fields in order, names as sent.
    pub headers: Vec<(&'a str, &'a str)>,
    /// Bytes the head took, blank line included: the body (if any) starts here.
    pub len: usize,
}

impl<'a> Head<'a> {
    /// The first field named `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// The body length the head announces: `Ok(0)` with none; `Err` for a chunked or
    /// unparseable one (the caller answers 411/400 and closes).
    pub fn content_length(&self) -> Result<u64, KnockError> {
        if self.header("transfer-encoding").is_some() {
            return Err(KnockError::NotHttp("transfer-encoding is not supported"));
        }
        match self.header("content-length") {
            None => Ok(0),
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| KnockError::NotHttp("bad content-length")),
        }
    }

    /// Whether the client asked to close the connection after this answer (HTTP/1.0 without
    /// keep-alive, or `Connection: close`).
    pub fn wants_close(&self) -> bool {
        let conn = self.header("connection").unwrap_or("");
        if self.version == "HTTP/1.0" {
            !conn.eq_ignore_ascii_case("keep-alive")
        } else {
            conn.eq_ignore_ascii_case("close")
        }
    }

    /// The knock tags this head carries (none when it is not a well-formed knock).
    pub fn knock_tags(&self) -> Vec<[u8; TAG_LEN]> {
        let Some(auth) = self.header("authorization") else {
            return Vec::new();
        };
        let Some(b64) = auth.strip_prefix("Bearer ") else {
            return Vec::new();
        };
        if b64.len() > (TAG_LEN * MAX_TAGS).div_ceil(3) * 4 {
            return Vec::new();
        }
        let Ok(raw) = B64URL.decode(b64.trim()) else {
            return Vec::new();
        };
        if raw.is_empty() || raw.len() % TAG_LEN != 0 || raw.len() > TAG_LEN * MAX_TAGS {
            return Vec::new();
        }
        raw.chunks_exact(TAG_LEN)
            .map(|c| {
                let mut t = [0u8; TAG_LEN];
                t.copy_from_slice(c);
                t
            })
            .collect()
    }
}

/// Parse the request head at the start of `buf`. `Ok(None)`: not complete yet (read more, up
/// to [`MAX_HEAD_LEN`]). Leading empty lines are skipped, as RFC 9112 allows.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head<'_>>, KnockError> {
    let mut start = 0;
    while buf[start..].starts_with(b"\r\n") {
        start += 2;
    }
    let Some(end) = find(&buf[start..], b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD_LEN {
            Err(KnockError::HeadTooLong)
        } else {
            Ok(None)
        };
    };
    let len = start + end + 4;
    if len > MAX_HEAD_LEN {
        return Err(KnockError::HeadTooLong);
    }
    let text = std::str::from_utf8(&buf[start..start + end])
        .map_err(|_| KnockError::NotHttp("head is not text"))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(KnockError::NotHttp("bad request line"));
    };
    if method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || target.is_empty()
        || !(version == "HTTP/1.1" || version == "HTTP/1.0")
    {
        return Err(KnockError::NotHttp("bad request line"));
    }
    let mut headers = Vec::new();
    for line in lines {
        if headers.len() == MAX_HEADERS {
            return Err(KnockError::TooManyHeaders);
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(KnockError::NotHttp("header field without a colon"));
        };
        if name.is_empty() || name.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(KnockError::NotHttp("bad header field name"));
        }
        headers.push((name, value.trim_matches([' ', '\t'])));
    }
    Ok(Some(Head {
        method,
        target,
        version,
        headers,
        len,
    }))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Which of `own` (the relay's certificates' fingerprints) some tag in `tags` was made with,
/// on the connection with `exporter`. Every pair is compared, in constant time, so the time
/// taken says nothing about which matched.
pub fn knock_matches(
    tags: &[[u8; TAG_LEN]],
    own: &[CertFingerprint],
    exporter: &[u8; EXPORTER_LEN],
) -> Option<usize> {
    let mut found = None;
    for (i, fp) in own.iter().enumerate() {
        let want = knock_tag(fp, exporter);
        let mut any = subtle::Choice::from(0);
        for t in tags {
            any |= want.ct_eq(t);
        }
        if bool::from(any) && found.is_none() {
            found = Some(i);
        }
    }
    found
}

/// What the relay signs to prove it holds the pinned certificate's key on this connection.
pub fn identity_message(exporter: &[u8; EXPORTER_LEN]) -> Vec<u8> {
    let mut m = Vec::with_capacity(IDENTITY_CONTEXT.len() + EXPORTER_LEN);
    m.extend_from_slice(IDENTITY_CONTEXT);
    m.extend_from_slice(exporter);
    m
}

/// The relay's answer to a good knock: `cert_len u16 | cert | scheme u16 | sig_len u16 | sig`
/// (big-endian). `scheme` is the TLS SignatureScheme code of the signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityProof {
    /// The certificate (DER) whose fingerprint the card pins.
    pub cert: Vec<u8>,
    /// TLS SignatureScheme code, e.g. 0x0403 for ECDSA P-256 SHA-256.
    pub scheme: u16,
    /// Signature over [`identity_message`] by the certificate's key.
    pub signature: Vec<u8>,
}

impl IdentityProof {
    /// Encode, or `None` if a part is too long for its length field or the whole exceeds
    /// [`MAX_PROOF_LEN`].
    pub fn encode(&self) -> Option<Vec<u8>> {
        let cert_len = u16::try_from(self.cert.len()).ok()?;
        let sig_len = u16::try_from(self.signature.len()).ok()?;
        let mut out = Vec::with_capacity(6 + self.cert.len() + self.signature.len());
        out.extend_from_slice(&cert_len.to_be_bytes());
        out.extend_from_slice(&self.cert);
        out.extend_from_slice(&self.scheme.to_be_bytes());
        out.extend_from_slice(&sig_len.to_be_bytes());
        out.extend_from_slice(&self.signature);
        (out.len() <= MAX_PROOF_LEN).then_some(out)
    }

    /// Decode exactly `buf` (no trailing bytes).
    pub fn decode(buf: &[u8]) -> Result<Self, KnockError> {
        if buf.len() > MAX_PROOF_LEN {
            return Err(KnockError::BadProof("too long"));
        }
        let mut rest = buf;
        let mut take = |n: usize| -> Result<&[u8], KnockError> {
            if rest.len() < n {
                return Err(KnockError::BadProof("truncated"));
            }
            let (a, b) = rest.split_at(n);
            rest = b;
            Ok(a)
        };
        let u16_of = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
        let cert_len = u16_of(take(2)?) as usize;
        if cert_len == 0 {
            return Err(KnockError::BadProof("empty certificate"));
        }
        let cert = take(cert_len)?.to_vec();
        let scheme = u16_of(take(2)?);
        let sig_len = u16_of(take(2)?) as usize;
        if sig_len == 0 {
            return Err(KnockError::BadProof("empty signature"));
        }
        let signature = take(sig_len)?.to_vec();
        if !rest.is_empty() {
            return Err(KnockError::BadProof("trailing bytes"));
        }
        Ok(Self {
            cert,
            scheme,
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const E1: [u8; EXPORTER_LEN] = [7; EXPORTER_LEN];
    const E2: [u8; EXPORTER_LEN] = [8; EXPORTER_LEN];

    #[test]
    fn a_knock_opens_only_its_own_connection_and_relay() {
        let a = CertFingerprint([1; 32]);
        let b = CertFingerprint([2; 32]);
        let c = CertFingerprint([3; 32]);
        let req = knock_request("relay.example:443", &[a, b], &E1);
        let head = parse_head(&req).unwrap().unwrap();
        assert_eq!(head.len, req.len());
        assert_eq!(head.method, "POST");
        let tags = head.knock_tags();
        assert_eq!(tags.len(), 2);
        assert_eq!(knock_matches(&tags, &[c, a], &E1), Some(1));
        assert_eq!(knock_matches(&tags, &[b], &E1), Some(0));
        // Another connection's exporter, or a relay without either certificate: nothing.
        assert_eq!(knock_matches(&tags, &[a, b], &E2), None);
        assert_eq!(knock_matches(&tags, &[c], &E1), None);
    }

    #[test]
    fn ordinary_requests_carry_no_knock() {
        let get = b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8\r\n\r\n";
        let head = parse_head(get).unwrap().unwrap();
        assert!(head.knock_tags().is_empty());
        assert!(!head.wants_close());
        let bad_bearer = b"GET / HTTP/1.1\r\nAuthorization: Bearer !!!\r\n\r\n";
        assert!(parse_head(bad_bearer)
            .unwrap()
            .unwrap()
            .knock_tags()
            .is_empty());
        let long = format!(
            "GET / HTTP/1.1\r\nAuthorization: Bearer {}\r\n\r\n",
            B64URL.encode([0u8; TAG_LEN * 3])
        );
        assert!(parse_head(long.as_bytes())
            .unwrap()
            .unwrap()
            .knock_tags()
            .is_empty());
    }

    #[test]
    fn heads_are_bounded_and_garbage_is_refused() {
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        assert_eq!(
            parse_head(&vec![b'a'; MAX_HEAD_LEN + 1]),
            Err(KnockError::HeadTooLong)
        );
        assert!(matches!(
            parse_head(b"\x16\x03\x01\x02\x00\r\n\r\n"),
            Err(KnockError::NotHttp(_))
        ));
        assert!(matches!(
            parse_head(b"GET /\r\n\r\n"),
            Err(KnockError::NotHttp(_))
        ));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(
            parse_head(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()),
            Err(KnockError::TooManyHeaders)
        );
        // Every prefix and every one-byte change of a knock parses or fails, never panics.
        let req = knock_request("h:1", &[CertFingerprint([1; 32])], &E1);
        for i in 0..req.len() {
            let _ = parse_head(&req[..i]);
            for flip in [0u8, 0x80, b'\r', b'\n', b':'] {
                let mut m = req.clone();
                m[i] = flip;
                if let Ok(Some(h)) = parse_head(&m) {
                    let _ = h.knock_tags();
                    let _ = h.content_length();
                }
            }
        }
    }

    #[test]
    fn content_length_and_close() {
        let h = b"POST / HTTP/1.0\r\nContent-Length: 12\r\n\r\n";
        let head = parse_head(h).unwrap().unwrap();
        assert_eq!(head.content_length(), Ok(12));
        assert!(head.wants_close());
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(parse_head(chunked)
            .unwrap()
            .unwrap()
            .content_length()
            .is_err());
    }

    #[test]
    fn identity_proofs_round_trip_and_refuse_damage() {
        let p = IdentityProof {
            cert: vec![1, 2, 3],
            scheme: 0x0403,
            signature: vec![9; 70],
        };
        let enc = p.encode().unwrap();
        assert_eq!(IdentityProof::decode(&enc), Ok(p));
        for i in 0..enc.len() {
            assert!(IdentityProof::decode(&enc[..i]).is_err());
        }
        let mut trailing = enc.clone();
        trailing.push(0);
        assert!(IdentityProof::decode(&trailing).is_err());
        assert!(IdentityProof {
            cert: vec![0; MAX_PROOF_LEN],
            scheme: 1,
            signature: vec![1],
        }
        .encode()
        .is_none());
    }
}
