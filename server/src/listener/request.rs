//! One request on one QUIC stream, from its first byte to its answer.
//!
//! 1. The six header bytes, within `header_timeout_secs`.
//! 2. [`Listener::admit`]: the header checked against the protocol's bounds and this relay's
//!    limits (the one place a request's size is checked), the disk-space gate and the
//!    per-address rates — before any body byte is read or any memory is reserved for it.
//! 3. The message's head (the whole body, or a deposit's first 48 bytes), decoded once.
//! 4. The payload (a deposit's envelope), handed to the handler as one
//!    [`BodySource`](crate::body::BodySource): read into memory first when it is small, read
//!    from the stream as the store consumes it when it is large. Either way it must arrive by
//!    the body deadline (`body_grace_secs` + length / `min_body_rate`).
//! 5. The handler writes its answer through a [`ReplySink`] whose every write has a deadline
//!    too, so a client that stops reading cannot hold a response's memory.
//!
//! Every request read up to its header gets exactly one answer (or a reset stream when the
//! client is gone or an answer already begun cannot be finished).

use super::stream::{ReadFail, ReqRecv, ReqSend};
use super::Listener;
use crate::body::{BodyError, BodySource, BoxFuture, Buffered};
use crate::handlers::{self, refusal, ConnState, Outcome, Rate, ReplySink};
use bytes::Bytes;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use vigil_core::wire::limits::{FRAME_HEADER_LEN, MAX_REQUEST_LEN};
use vigil_core::wire::{decode_request_header, Header, Refusal, Request, RequestType, WireError};

/// Time to wait for the client to acknowledge an answer before the stream task ends.
const RESPONSE_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Request-memory budget is counted in units of this many bytes (semaphore permits).
pub(super) const BUDGET_UNIT: usize = 1024;
/// Payloads up to this many bytes are read into memory before the handler runs; larger ones
/// are streamed to it. Every inline-stored envelope fits, so the store's small path never waits
/// on the network.
const BUFFERED_PAYLOAD_MAX: usize = 64 * 1024;
/// Most request memory a streamed payload may pin at once: what the stream itself buffers is
/// bounded by the QUIC windows, and a store consuming the payload must keep at most this much
/// of it in flight (the sled store keeps 4 MiB, `LARGE_DEPOSIT_MEMORY`). Charged to the
/// request-memory budget for as long as the payload streams.
pub(crate) const STREAMED_PAYLOAD_MEMORY: usize = 4 * 1024 * 1024;
const _: () = assert!(crate::store::sled_store::LARGE_DEPOSIT_MEMORY <= STREAMED_PAYLOAD_MEMORY);
/// Stream error code sent with STOP_SENDING when a request is answered before its body was
/// read (refused, or a repeat of a stored deposit).
const STOP_REFUSED: u32 = 1;
/// Stream error code for a stream dropped because its header did not arrive in time, the relay
/// is shutting down, or an answer could not be completed.
const STOP_TIMEOUT: u32 = 2;

/// The request-memory budget: at least one maximal request must fit, or it would wait forever.
pub(super) fn body_budget(bytes: usize) -> Arc<Semaphore> {
    let units = bytes.max(MAX_REQUEST_LEN + BUDGET_UNIT) / BUDGET_UNIT;
    Arc::new(Semaphore::new(units.min(Semaphore::MAX_PERMITS)))
}

/// Why reading a request stopped before the handler could run.
enum Unread {
    /// Answer with this refusal.
    Refuse(Refusal),
    /// Nobody to answer (the client went away, or the relay is shutting down).
    Drop,
}

impl Listener {
    /// Read one request, hand it to its handler, finish the stream.
    pub(super) async fn request(
        &self,
        send: ReqSend<'_>,
        mut recv: ReqRecv<'_>,
        conn: &ConnState,
        ip: IpAddr,
    ) {
        let mut reply = QuicReply {
            send,
            started: false,
            grace: Duration::from_secs(self.limits.body_grace_secs),
            min_rate: self.limits.min_body_rate.max(1),
        };
        let outcome = match self.read_and_handle(&mut recv, &mut reply, conn, ip).await {
            Ok(outcome) => outcome,
            Err(Unread::Drop) => Outcome::Abandoned,
            Err(Unread::Refuse(r)) => {
                // Refused before the body was read: tell the client to stop sending it.
                recv.stop(STOP_REFUSED);
                handlers::refuse(&self.shared, r, &mut reply).await
            }
        };
        let mut send = reply.send;
        if outcome == Outcome::Abandoned {
            recv.stop(STOP_TIMEOUT);
            send.reset(STOP_TIMEOUT);
            return;
        }
        if send.finish().await.is_err() {
            send.reset(STOP_TIMEOUT);
            return;
        }
        let _ = tokio::time::timeout(RESPONSE_DRAIN_TIMEOUT, send.stopped()).await;
    }

    async fn read_and_handle(
        &self,
        recv: &mut ReqRecv<'_>,
        reply: &mut QuicReply<'_>,
        conn: &ConnState,
        ip: IpAddr,
    ) -> Result<Outcome, Unread> {
        let header = self.read_header(recv, ip).await?;
        recv.set_body_len(header.body_len);
        let body_deadline = tokio::time::Instant::now() + self.body_time(header.body_len);
        let head_len = header.kind.head_len(header.body_len);
        let payload_len = header.body_len - head_len;
        // Memory for the head and a buffered payload, or what a streamed payload may pin.
        let held = if payload_len > BUFFERED_PAYLOAD_MAX {
            head_len + STREAMED_PAYLOAD_MEMORY
        } else {
            header.body_len
        };
        let _permit = self.reserve_memory(held).await.ok_or(Unread::Drop)?;
        let mut stream = QuicBody {
            recv,
            remaining: head_len,
            deadline: body_deadline,
            ended: false,
            too_slow: false,
        };
        let mut buffered;
        let (head, body): (Bytes, &mut dyn BodySource) = if payload_len > BUFFERED_PAYLOAD_MAX {
            let head = stream.read_exact(head_len).await;
            let head = self.unread(head, &stream)?;
            stream.remaining = payload_len;
            (head, &mut stream)
        } else {
            // Small: the whole body and the end of the stream in one go, under one deadline.
            stream.remaining = header.body_len;
            let mut whole = self.unread(stream.read_to_end().await, &stream)?;
            let head = whole.split_to(head_len);
            buffered = Buffered::new(whole);
            (head, &mut buffered)
        };
        let req = Request::decode(header.kind, &head, header.body_len)
            .map_err(|e| Unread::Refuse(refusal::from_wire(&e)))?;
        // A backstop for a handler stuck on the store: the body's own deadline, the handling
        // time, and the time the largest answer of this type may take at the minimum rate
        // (each write of the answer has its own deadline too).
        let (_, answer_max) = header.kind.answer().body_bounds();
        let backstop = body_deadline
            + Duration::from_secs(self.limits.request_timeout_secs)
            + reply.time_for(answer_max);
        let handled = tokio::time::timeout_at(
            backstop,
            handlers::handle(&self.shared, conn, req, body, reply),
        )
        .await;
        let finished = body.finished();
        if stream.too_slow {
            self.counters.slow_bodies.fetch_add(1, Ordering::Relaxed);
        }
        let outcome = match handled {
            Ok(outcome) => outcome,
            Err(_) if !reply.started => {
                tracing::warn!("request handling timed out");
                handlers::refuse(&self.shared, refusal::overloaded(), reply).await
            }
            Err(_) => Outcome::Abandoned,
        };
        // Answered before the whole payload arrived (refused, or a repeat of a stored
        // deposit): tell the client to stop sending.
        if !finished {
            stream.recv.stop(STOP_REFUSED);
        }
        Ok(outcome)
    }

    /// A read of the head or a buffered payload: what to answer if it failed.
    fn unread<T>(&self, r: Result<T, BodyError>, stream: &QuicBody<'_, '_>) -> Result<T, Unread> {
        r.map_err(|e| {
            if stream.too_slow {
                self.counters.slow_bodies.fetch_add(1, Ordering::Relaxed);
            }
            match handlers::Failure::from_body(e) {
                handlers::Failure::Refused(r) => Unread::Refuse(r),
                handlers::Failure::Abandoned => Unread::Drop,
            }
        })
    }

    /// The header, by its deadline, admitted.
    async fn read_header(
        &self,
        recv: &mut ReqRecv<'_>,
        ip: IpAddr,
    ) -> Result<Header<RequestType>, Unread> {
        let timeout = Duration::from_secs(self.limits.header_timeout_secs);
        let mut h = [0u8; FRAME_HEADER_LEN];
        let read = tokio::select! {
            // No new requests once shutdown began; requests past their header are finished.
            _ = self.cancel.cancelled() => return Err(Unread::Drop),
            r = tokio::time::timeout(timeout, recv.read_exact(&mut h)) => r,
        };
        match read {
            Err(_) => {
                self.counters
                    .header_timeouts
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!("request header did not arrive in time");
                Err(Unread::Drop)
            }
            Ok(Err(ReadFail::Gone)) => Err(Unread::Drop),
            Ok(Err(ReadFail::Short(got))) => {
                Err(Unread::Refuse(refusal::from_wire(&WireError::Truncated {
                    what: "frame header",
                    needed: (FRAME_HEADER_LEN - got) as u64,
                })))
            }
            Ok(Ok(())) => self.admit(&h, ip).map_err(Unread::Refuse),
        }
    }

    /// Check a header before reading any body: well-formed, within this relay's limits, and
    /// within the source address's rates. The one place a request's size is checked; refusals
    /// here cost the relay no body memory.
    fn admit(
        &self,
        h: &[u8; FRAME_HEADER_LEN],
        ip: IpAddr,
    ) -> Result<Header<RequestType>, Refusal> {
        let header = decode_request_header(h).map_err(|e| refusal::from_wire(&e))?;
        // What to check is declared by the request's handler file (`ADMISSION`).
        let a = handlers::admission(header.kind);
        if a.carries_envelope
            && header.body_len - header.kind.head_len(header.body_len)
                > self.limits.max_envelope_bytes
        {
            return Err(Refusal::new(
                vigil_core::wire::ErrorCode::TooLarge,
                "report is larger than this relay accepts",
            ));
        }
        if a.needs_space && !self.shared.space.accepting() {
            return Err(refusal::storage_full());
        }
        if let Some(rate) = a.rate {
            let buckets = match rate {
                Rate::Deposit => &self.deposit_rate,
                Rate::Register => &self.register_rate,
                Rate::Fetch => &self.fetch_rate,
                Rate::Transfer => &self.transfer_rate,
            };
            self.rate(buckets, ip, rate.refusal_message())?;
        }
        Ok(header)
    }

    fn rate(
        &self,
        buckets: &crate::ratelimit::TokenBuckets,
        ip: IpAddr,
        message: &'static str,
    ) -> Result<(), Refusal> {
        if self.exempt(ip) || buckets.try_take(ip, Instant::now()) {
            return Ok(());
        }
        self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        Err(Refusal::new(
            vigil_core::wire::ErrorCode::RateLimited,
            message,
        ))
    }

    /// How long a body of `len` bytes may take to arrive: a grace period, then `min_body_rate`.
    fn body_time(&self, len: usize) -> Duration {
        Duration::from_secs(
            self.limits.body_grace_secs + len as u64 / self.limits.min_body_rate.max(1),
        )
    }

    /// Reserve `bytes` of the request-memory budget (waits while it is spent). `None` when the
    /// relay is shutting down.
    async fn reserve_memory(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let units = u32::try_from(bytes.div_ceil(BUDGET_UNIT)).unwrap_or(u32::MAX);
        self.body_budget
            .clone()
            .acquire_many_owned(units)
            .await
            .ok()
    }
}

/// The body of a request read from its stream as it arrives, by a deadline.
struct QuicBody<'a, 'b> {
    recv: &'a mut ReqRecv<'b>,
    /// Bytes of the current part (head or payload) still to come.
    remaining: usize,
    /// When the whole body must have arrived.
    deadline: tokio::time::Instant,
    /// The stream was seen to end after the payload.
    ended: bool,
    /// The deadline passed.
    too_slow: bool,
}

impl QuicBody<'_, '_> {
    /// Read the rest of the current part and the end of the stream into one buffer, under one
    /// deadline for the whole (a small body: one timer, not one per piece).
    async fn read_to_end(&mut self) -> Result<Bytes, BodyError> {
        let n = self.remaining;
        let deadline = self.deadline;
        let read = async {
            let mut out = Vec::with_capacity(n);
            while out.len() < n {
                match self.recv.read_chunk(n - out.len()).await {
                    Ok(Some(c)) => out.extend_from_slice(&c),
                    Ok(None) => {
                        return Err(BodyError::Truncated {
                            needed: (n - out.len()) as u64,
                        })
                    }
                    Err(_) => return Err(BodyError::Gone),
                }
            }
            match self.recv.read_chunk(1).await {
                Ok(None) => Ok(out),
                Ok(Some(_)) => Err(BodyError::Trailing),
                Err(_) => Err(BodyError::Gone),
            }
        };
        match tokio::time::timeout_at(deadline, read).await {
            Ok(Ok(out)) => {
                self.remaining = 0;
                self.ended = true;
                Ok(Bytes::from(out))
            }
            Ok(Err(e)) => Err(e),
            Err(_) => {
                self.too_slow = true;
                Err(BodyError::TooSlow)
            }
        }
    }

    /// Read exactly `n` bytes of the current part into one buffer.
    async fn read_exact(&mut self, n: usize) -> Result<Bytes, BodyError> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match self.next_chunk(n - out.len()).await? {
                Some(c) => out.extend_from_slice(&c),
                None => break,
            }
        }
        Ok(Bytes::from(out))
    }

    async fn read(&mut self, max: usize) -> Result<Option<Bytes>, BodyError> {
        let want = max.min(self.remaining);
        let at_end = want == 0;
        if at_end && self.ended {
            return Ok(None);
        }
        // At the end, ask for one byte: there must be none, only the end of the stream.
        let read = self.recv.read_chunk(want.max(1));
        match tokio::time::timeout_at(self.deadline, read).await {
            Err(_) => {
                self.too_slow = true;
                Err(BodyError::TooSlow)
            }
            Ok(Err(_)) => Err(BodyError::Gone),
            Ok(Ok(None)) if at_end => {
                self.ended = true;
                Ok(None)
            }
            Ok(Ok(None)) => Err(BodyError::Truncated {
                needed: self.remaining as u64,
            }),
            Ok(Ok(Some(_))) if at_end => Err(BodyError::Trailing),
            // Never more than asked; checked anyway, not trusted.
            Ok(Ok(Some(c))) if c.len() > want => Err(BodyError::Trailing),
            Ok(Ok(Some(c))) => {
                self.remaining -= c.len();
                Ok(Some(c))
            }
        }
    }
}

impl BodySource for QuicBody<'_, '_> {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn next_chunk(&mut self, max: usize) -> BoxFuture<'_, Result<Option<Bytes>, BodyError>> {
        Box::pin(self.read(max))
    }

    fn finished(&self) -> bool {
        self.ended
    }
}

/// The answer's side of the stream: every write must finish within a grace period plus its
/// length at `min_body_rate`, so a client that stops reading is dropped instead of holding the
/// answer's memory.
struct QuicReply<'a> {
    send: ReqSend<'a>,
    started: bool,
    grace: Duration,
    min_rate: u64,
}

impl QuicReply<'_> {
    fn time_for(&self, len: usize) -> Duration {
        self.grace + Duration::from_secs(len as u64 / self.min_rate)
    }
}

impl ReplySink for QuicReply<'_> {
    fn write<'a>(&'a mut self, bytes: &'a [u8]) -> BoxFuture<'a, Result<(), BodyError>> {
        self.started = true;
        let limit = self.time_for(bytes.len());
        Box::pin(async move {
            match tokio::time::timeout(limit, self.send.write_all(bytes)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(())) => Err(BodyError::Gone),
                Err(_) => Err(BodyError::TooSlow),
            }
        })
    }

    fn started(&self) -> bool {
        self.started
    }

    fn gone(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(self.send.gone())
    }
}
