//! The wire protocol between clients and the relay, as plain encode/decode functions.
//!
//! No sockets here (sans-IO): the client and relay shells read a six-byte header from a QUIC
//! stream, check it with [`decode_request_header`] / [`decode_response_header`] — which bounds
//! the body length by the per-type maximum from [`limits`] — then read exactly that many bytes
//! and decode the body with [`decode_request_body`] / [`decode_response_body`]. Decoders borrow
//! from their input, never panic, and reject trailing data. `docs/protocol.md` is the spec.
//!
//! Frame: `version u8 (= 1) | type u8 | length u32 BE | body[length]`. One request and one
//! response per QUIC bidirectional stream.

pub mod auth;
mod codec;
mod error;
mod frame;
pub mod limits;
mod message;
pub mod policy;

/// ALPN protocol id both peers require; a TLS connection without it is refused.
pub const ALPN: &[u8] = b"vigil/1";

pub use error::WireError;
pub use frame::{decode_request_header, decode_response_header, FrameHeader, FrameType};
pub use message::{
    decode_deposit_head, decode_request, decode_request_body, decode_response,
    decode_response_body, encode_deposit_head, ErrorCode, ItemRef, Proof, Request, Response,
};

#[cfg(test)]
mod tests;
