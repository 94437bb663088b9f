//! The relay over TLS 1.3 on TCP: connect (directly or through a SOCKS5 proxy), knock, check
//! the identity proof, then one request frame after another, each answer read before the next
//! request is sent.
//!
//! A request the relay answers before reading its whole payload (a refusal, or a deposit it
//! already holds) leaves the connection unusable (the relay closes it: the rest of the payload
//! would be taken for the next request), so the link notes it and the next exchange connects
//! again first.

use super::tls::{rustls_config, Pins, SERVER_NAME};
use super::transport::Proxy;
use super::{socks, RelayError};
use rustls::pki_types::ServerName;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use vigil_core::wire::knock::{knock_request, MAX_PROOF_LEN};
use vigil_core::wire::limits::{EXPORTER_LABEL, EXPORTER_LEN, FRAME_HEADER_LEN};
use vigil_core::wire::{self, TCP_ALPN};

type Tls = TlsStream<TcpStream>;

/// One open TLS-over-TCP connection to a relay, after its identity was checked.
pub(super) struct TcpLink {
    r: ReadHalf<Tls>,
    w: WriteHalf<Tls>,
    pub(super) exporter: [u8; EXPORTER_LEN],
    /// The relay will close this connection (an early answer, or a broken exchange).
    pub(super) dead: bool,
    /// Bytes written so far (TLS payload), for progress and tests.
    pub(super) sent: u64,
    /// See [`TcpTarget::idle`].
    idle: Duration,
}

/// Largest piece written under one no-progress deadline.
const WRITE_PIECE: usize = 16 * 1024;

/// Where a TCP link goes, kept to connect again.
#[derive(Clone)]
pub(super) struct TcpTarget {
    pub(super) addr: String,
    pub(super) pins: Pins,
    pub(super) proxy: Option<Proxy>,
    pub(super) timeout: Duration,
    /// Give up on a link that makes no progress (no byte written or read) for this long: a
    /// stalled flow (some censors freeze TLS flows after a few KB) is then cut and connected
    /// again instead of waiting out a whole request's time bound.
    pub(super) idle: Duration,
}

impl TcpTarget {
    /// Connect, knock and check the relay's identity, within the timeout.
    pub(super) async fn connect(&self) -> Result<TcpLink, RelayError> {
        match tokio::time::timeout(self.timeout, self.connect_unbounded()).await {
            Ok(r) => r,
            Err(_) => Err(self.unreachable(format!(
                "no answer over TCP within {:.1} seconds",
                self.timeout.as_secs_f32()
            ))),
        }
    }

    fn unreachable(&self, reason: String) -> RelayError {
        RelayError::Unreachable {
            addr: self.addr.clone(),
            reason,
        }
    }

    async fn connect_unbounded(&self) -> Result<TcpLink, RelayError> {
        let stream = match &self.proxy {
            Some(proxy) => {
                let (host, port) = split_host_port(&self.addr)
                    .ok_or_else(|| RelayError::BadAddress(self.addr.clone()))?;
                socks::connect(proxy, host, port, self.timeout)
                    .await
                    .map_err(|e| match e {
                        socks::SocksError::ProxyDown { .. } => self.unreachable(format!(
                            "{e}; nothing is sent without it while a proxy is set: start the proxy (Tor, Orbot) or remove --proxy / VIGIL_PROXY"
                        )),
                        other => self.unreachable(other.to_string()),
                    })?
            }
            None => {
                let remote = super::connection::resolve(&self.addr).await?;
                TcpStream::connect(remote).await.map_err(|e| {
                    self.unreachable(if e.kind() == std::io::ErrorKind::ConnectionRefused {
                        // Worded for `i18n_errors::unreachable_reason`.
                        "TCP: connection refused".to_string()
                    } else {
                        format!("TCP: {e}")
                    })
                })?
            }
        };
        let _ = stream.set_nodelay(true);
        let tls = TlsConnector::from(Arc::new(rustls_config(TCP_ALPN)?));
        let name = ServerName::try_from(SERVER_NAME)
            .map_err(|e| RelayError::Protocol(format!("TLS setup failed: {e}")))?;
        let mut tls = tls
            .connect(name, stream)
            .await
            .map_err(|e| self.unreachable(format!("TLS over TCP: {e}")))?;
        let mut exporter = [0u8; EXPORTER_LEN];
        tls.get_ref()
            .1
            .export_keying_material(&mut exporter, EXPORTER_LABEL, Some(b""))
            .map_err(|_| RelayError::Protocol("TLS exporter unavailable".into()))?;
        let lost = |e: std::io::Error| RelayError::ConnectionLost(e.to_string());
        tls.write_all(&knock_request(&self.addr, self.pins.as_slice(), &exporter))
            .await
            .map_err(lost)?;
        tls.flush().await.map_err(lost)?;
        let proof = read_proof(&mut tls).await.map_err(|e| match e {
            ProofRead::NotRecognised => RelayError::FingerprintMismatch {
                expected: self.pins.as_slice()[0],
                got: None,
            },
            ProofRead::Io(e) => lost(e),
        })?;
        self.pins.check_proof(&proof, &exporter)?;
        let (r, w) = tokio::io::split(tls);
        Ok(TcpLink {
            r,
            w,
            exporter,
            dead: false,
            sent: 0,
            idle: self.idle,
        })
    }
}

enum ProofRead {
    /// The relay answered as a web server: it did not recognise the knock.
    NotRecognised,
    Io(std::io::Error),
}

/// Read the identity proof: `cert_len u16 | cert | scheme u16 | sig_len u16 | sig`. An HTTP
/// answer ("HT..." read as a length) is far above [`MAX_PROOF_LEN`]: the knock was not
/// recognised.
async fn read_proof(tls: &mut Tls) -> Result<Vec<u8>, ProofRead> {
    let mut out = vec![0u8; 2];
    tls.read_exact(&mut out).await.map_err(ProofRead::Io)?;
    let cert_len = usize::from(u16::from_be_bytes([out[0], out[1]]));
    if cert_len == 0 || cert_len + 6 > MAX_PROOF_LEN {
        return Err(ProofRead::NotRecognised);
    }
    out.resize(2 + cert_len + 4, 0);
    tls.read_exact(&mut out[2..]).await.map_err(ProofRead::Io)?;
    let sig_len = usize::from(u16::from_be_bytes([out[cert_len + 4], out[cert_len + 5]]));
    if out.len() + sig_len > MAX_PROOF_LEN {
        return Err(ProofRead::NotRecognised);
    }
    let start = out.len();
    out.resize(start + sig_len, 0);
    tls.read_exact(&mut out[start..])
        .await
        .map_err(ProofRead::Io)?;
    Ok(out)
}

/// `host:port` or `[v6]:port` split, the brackets removed.
pub(super) fn split_host_port(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port.parse().ok()?;
    (!host.is_empty()).then_some((host, port))
}

impl TcpLink {
    /// Send one request frame (given as consecutive `parts`) and read the answer frame. The
    /// answer is read while the request is still being written: the relay may answer early.
    pub(super) async fn exchange(&mut self, parts: &[&[u8]]) -> Result<Vec<u8>, RelayError> {
        let lost = |e: &dyn std::fmt::Display| RelayError::ConnectionLost(e.to_string());
        let TcpLink {
            r, w, sent, idle, ..
        } = self;
        let idle = *idle;
        let stalled = || {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "no progress for {} s: the link stalled",
                    idle.as_secs().max(1)
                ),
            )
        };
        let write = async {
            for p in parts {
                for piece in p.chunks(WRITE_PIECE) {
                    tokio::time::timeout(idle, w.write_all(piece))
                        .await
                        .map_err(|_| stalled())??;
                    *sent += piece.len() as u64;
                }
            }
            tokio::time::timeout(idle, w.flush())
                .await
                .map_err(|_| stalled())?
        };
        let read = read_frame(r, idle);
        tokio::pin!(write, read);
        let mut written: Option<std::io::Result<()>> = None;
        // Once the request is all written, the answer must start within `idle` too: a flow
        // whose bytes are taken in but never delivered (a censor that freezes it) shows no
        // other sign. The relay answers a stored chunk or a deposit within a second or two.
        let answer_due = tokio::time::sleep(Duration::from_secs(86_400));
        tokio::pin!(answer_due);
        let answer = loop {
            tokio::select! {
                biased;
                a = &mut read => break a,
                res = &mut write, if written.is_none() => {
                    written = Some(res);
                    answer_due.as_mut().reset(tokio::time::Instant::now() + idle);
                }
                () = &mut answer_due, if written.is_some() => {
                    break Err(RelayError::ConnectionLost(format!(
                        "no answer for {} s after the request: the link stalled",
                        idle.as_secs().max(1)
                    )));
                }
            }
        };
        match (&written, &answer) {
            (Some(Ok(())), Ok(_)) => {}
            // Answered before the request was all written: the relay closes the connection.
            _ => self.dead = true,
        }
        match (answer, written) {
            (Ok(a), _) => Ok(a),
            (Err(RelayError::ConnectionLost(_)), Some(Err(w))) => Err(lost(&w)),
            (Err(e), _) => Err(e),
        }
    }

    /// Close politely (TLS close_notify).
    pub(super) async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.w.shutdown()).await;
    }
}

/// Read one answer frame. The relay may take a while to answer (a durable write, a large fetch
/// being assembled) while the request is still being written, so the first byte gets the
/// request's own time bound (the caller's); after it, each read must make progress within
/// `idle`.
async fn read_frame(r: &mut ReadHalf<Tls>, idle: Duration) -> Result<Vec<u8>, RelayError> {
    let lost = |e: std::io::Error| RelayError::ConnectionLost(e.to_string());
    let stalled = || {
        RelayError::ConnectionLost(format!(
            "no progress for {} s: the link stalled",
            idle.as_secs().max(1)
        ))
    };
    let mut h = [0u8; FRAME_HEADER_LEN];
    r.read_exact(&mut h[..1]).await.map_err(lost)?;
    tokio::time::timeout(idle, r.read_exact(&mut h[1..]))
        .await
        .map_err(|_| stalled())?
        .map_err(lost)?;
    let header = wire::decode_response_header(&h)?;
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + header.body_len.min(64 * 1024));
    out.extend_from_slice(&h);
    let want = FRAME_HEADER_LEN + header.body_len;
    let mut buf = vec![0u8; (want - FRAME_HEADER_LEN).min(64 * 1024)];
    while out.len() < want {
        let n = (want - out.len()).min(buf.len());
        let got = tokio::time::timeout(idle, r.read(&mut buf[..n]))
            .await
            .map_err(|_| stalled())?
            .map_err(lost)?;
        if got == 0 {
            return Err(RelayError::Protocol(
                "the relay's answer is truncated".into(),
            ));
        }
        out.extend_from_slice(&buf[..got]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split() {
        assert_eq!(
            split_host_port("relay.example:443"),
            Some(("relay.example", 443))
        );
        assert_eq!(split_host_port("[::1]:4433"), Some(("::1", 4433)));
        assert_eq!(split_host_port("nohost"), None);
        assert_eq!(split_host_port(":1"), None);
    }
}
