//! One request's two directions, whichever transport carries it.
//!
//! On QUIC a request has its own bidirectional stream: its end is the end of the stream, and
//! a request answered early is cut off with STOP_SENDING. On TLS over TCP requests follow one
//! another on the connection: a request ends after the length its header announces, and a
//! request answered before its payload was read leaves the rest of the payload on the
//! connection, which the connection task then reads and discards or closes
//! ([`TcpIn::unread`]). The request pipeline (`request.rs`) sees the same two types either way.

use bytes::{Bytes, BytesMut};
use quinn::VarInt;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// The TLS-over-TCP connection.
pub(super) type Tls = TlsStream<TcpStream>;

/// Why a read of a request's bytes stopped.
pub(super) enum ReadFail {
    /// The request ended after this many of the bytes asked for.
    Short(usize),
    /// The connection or stream is gone.
    Gone,
}

/// The reading side of one request.
pub(super) enum ReqRecv<'a> {
    /// The request's own QUIC stream.
    Quic(quinn::RecvStream),
    /// The connection's reading side, positioned at this request.
    Tcp(&'a mut TcpIn),
}

/// The writing side of one request.
pub(super) enum ReqSend<'a> {
    /// The request's own QUIC stream.
    Quic(quinn::SendStream),
    /// The connection's writing side.
    Tcp(&'a mut TcpOut),
}

/// The reading side of a TLS-over-TCP connection, with what was read ahead of the request
/// being served.
pub(super) struct TcpIn {
    r: ReadHalf<Tls>,
    buf: BytesMut,
    /// A read that brings nothing for this long ends the connection: on TCP nothing else tells
    /// a frozen flow (a censor's middlebox taking bytes in and delivering none) from a slow
    /// one, and an upload stuck on it would hold its attachment against the client's retry on
    /// a new connection until the body deadline.
    idle: std::time::Duration,
    /// Bytes of the current request (after its header) not yet handed out.
    remaining: usize,
}

/// The writing side of a TLS-over-TCP connection.
pub(super) struct TcpOut {
    w: WriteHalf<Tls>,
    /// An answer could not be completed: the connection must be closed, the client cannot
    /// find the next answer's start.
    pub(super) broken: bool,
}

/// Split a connection.
pub(super) fn split_tcp(tls: Tls, idle: std::time::Duration) -> (TcpIn, TcpOut) {
    let (r, w) = tokio::io::split(tls);
    (
        TcpIn {
            r,
            idle,
            buf: BytesMut::new(),
            remaining: 0,
        },
        TcpOut { w, broken: false },
    )
}

impl TcpIn {
    /// Wait until at least one byte of a next request is available. `false`: the client
    /// closed the connection (or it failed).
    pub(super) async fn ready(&mut self) -> bool {
        if !self.buf.is_empty() {
            return true;
        }
        matches!(self.r.read_buf(&mut self.buf).await, Ok(n) if n > 0)
    }

    /// Payload bytes of the request just served that were never read (it was answered early).
    pub(super) fn unread(&self) -> usize {
        self.remaining
    }

    /// Read and discard `n` bytes (an early-answered request's payload).
    pub(super) async fn discard(&mut self, mut n: usize) -> bool {
        while n > 0 {
            if self.buf.is_empty()
                && !matches!(self.r.read_buf(&mut self.buf).await, Ok(k) if k > 0)
            {
                return false;
            }
            let k = n.min(self.buf.len());
            let _ = self.buf.split_to(k);
            n -= k;
        }
        self.remaining = 0;
        true
    }

    /// Bytes read and not yet consumed.
    pub(super) fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Drop the first `n` buffered bytes.
    pub(super) fn consume(&mut self, n: usize) {
        let _ = self.buf.split_to(n.min(self.buf.len()));
    }

    /// Read some more into the buffer. `false`: the connection ended.
    pub(super) async fn read_more(&mut self) -> bool {
        self.fill().await
    }

    async fn fill(&mut self) -> bool {
        self.buf.reserve(16 * 1024);
        matches!(
            tokio::time::timeout(self.idle, self.r.read_buf(&mut self.buf)).await,
            Ok(Ok(n)) if n > 0
        )
    }
}

impl ReqRecv<'_> {
    /// Fill `out` from the start of the request (its header).
    pub(super) async fn read_exact(&mut self, out: &mut [u8]) -> Result<(), ReadFail> {
        match self {
            ReqRecv::Quic(r) => r.read_exact(out).await.map_err(|e| match e {
                quinn::ReadExactError::FinishedEarly(got) => ReadFail::Short(got),
                quinn::ReadExactError::ReadError(_) => ReadFail::Gone,
            }),
            ReqRecv::Tcp(t) => {
                let mut got = 0;
                while got < out.len() {
                    if t.buf.is_empty() && !t.fill().await {
                        return Err(if got == 0 {
                            ReadFail::Gone
                        } else {
                            ReadFail::Short(got)
                        });
                    }
                    let k = (out.len() - got).min(t.buf.len());
                    out[got..got + k].copy_from_slice(&t.buf.split_to(k));
                    got += k;
                }
                Ok(())
            }
        }
    }

    /// The request's length after its header, as the header announced it: on TCP, where the
    /// request ends.
    pub(super) fn set_body_len(&mut self, len: usize) {
        if let ReqRecv::Tcp(t) = self {
            t.remaining = len;
        }
    }

    /// Up to `max` (> 0) more bytes of the request; `None` at its end.
    pub(super) async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, ()> {
        match self {
            ReqRecv::Quic(r) => match r.read_chunk(max, true).await {
                Ok(Some(c)) => Ok(Some(c.bytes)),
                Ok(None) => Ok(None),
                Err(_) => Err(()),
            },
            ReqRecv::Tcp(t) => {
                if t.remaining == 0 {
                    return Ok(None);
                }
                if t.buf.is_empty() && !t.fill().await {
                    // The connection ended inside the request: a truncated body.
                    return Ok(None);
                }
                let k = max.min(t.remaining).min(t.buf.len());
                t.remaining -= k;
                Ok(Some(t.buf.split_to(k).freeze()))
            }
        }
    }

    /// Tell the client to stop sending this request (QUIC). On TCP the connection task deals
    /// with the unread rest after the answer.
    pub(super) fn stop(&mut self, code: u32) {
        if let ReqRecv::Quic(r) = self {
            let _ = r.stop(VarInt::from_u32(code));
        }
    }
}

impl ReqSend<'_> {
    /// Write all of `bytes`.
    pub(super) async fn write_all(&mut self, bytes: &[u8]) -> Result<(), ()> {
        match self {
            ReqSend::Quic(s) => s.write_all(bytes).await.map_err(|_| ()),
            ReqSend::Tcp(t) => t.w.write_all(bytes).await.map_err(|_| ()),
        }
    }

    /// The answer is complete.
    pub(super) async fn finish(&mut self) -> Result<(), ()> {
        match self {
            ReqSend::Quic(s) => s.finish().map_err(|_| ()),
            ReqSend::Tcp(t) => t.w.flush().await.map_err(|_| ()),
        }
    }

    /// The answer cannot be completed.
    pub(super) fn reset(&mut self, code: u32) {
        match self {
            ReqSend::Quic(s) => {
                let _ = s.reset(VarInt::from_u32(code));
            }
            ReqSend::Tcp(t) => t.broken = true,
        }
    }

    /// Wait (bounded by the caller) until the client has the whole answer (QUIC); nothing to
    /// wait for on TCP.
    pub(super) async fn stopped(&mut self) {
        if let ReqSend::Quic(s) = self {
            let _ = s.stopped().await;
        }
    }

    /// Completes when no answer can reach the client any more: it stopped the stream, or the
    /// connection is lost (QUIC). Never on TCP, where only reading the connection would tell,
    /// and the connection's reading side belongs to the request loop.
    pub(super) async fn gone(&mut self) {
        match self {
            ReqSend::Quic(s) => {
                let _ = s.stopped().await;
            }
            ReqSend::Tcp(_) => std::future::pending().await,
        }
    }
}

impl TcpOut {
    /// Write `bytes` and flush.
    pub(super) async fn send(&mut self, bytes: &[u8]) -> bool {
        self.w.write_all(bytes).await.is_ok() && self.w.flush().await.is_ok()
    }

    /// Close the TLS session (close_notify) and the writing side.
    pub(super) async fn shutdown(&mut self) {
        let _ = self.w.shutdown().await;
    }
}
