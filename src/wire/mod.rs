//! The wire protocol between clients and the relay, as plain encode/decode functions.
//!
//! No sockets here (sans-IO). One file per exchange (a request and the response that answers
//! it): [`challenge`], [`register`], [`deposit`], [`fetch`], [`ack`], [`status`], and the
//! check-in alerts' [`arm`], [`checkin`] and [`disarm`] (what they share is in [`alert`]), plus
//! [`refusal`] (the Error response any request may get). Each file holds its message types, their encoding and
//! decoding, and their limits. The one [`table`] of exchanges and their type bytes generates
//! everything that lists them ([`RequestType`], [`ResponseType`], [`Request`], [`Response`], the
//! header checks), so decoding has no catch-all arm: an unknown or misplaced frame is a named
//! [`WireError`].
//!
//! Frame: `version u8 (= 1) | type u8 | length u32 BE | body[length]`. One request and one
//! response per QUIC bidirectional stream. A shell reads the six header bytes, checks them with
//! [`decode_request_header`] / [`decode_response_header`] (which bound the body by the type's
//! limits before anything is read), reads the message's head and decodes it once. Decoders
//! borrow from their input, never panic, and reject trailing data. `docs/protocol.md` is the
//! spec; `docs/architecture.md` says how to add a request.

pub mod alert;
pub mod auth;
mod error;
mod frame;
pub mod knock;
pub mod limits;
pub mod policy;
pub mod refusal;
#[macro_use]
pub mod table;

/// Declares one public module per exchange, from the table.
macro_rules! exchange_modules {
    ($( $(#[$doc:meta])* $module:ident : $Req:ident = $rb:literal => $Resp:ident = $sb:literal ; )*) => {
        $( $(#[$doc])* pub mod $module; )*
    };
}
crate::for_each_exchange!(exchange_modules);

/// ALPN values: what HTTP/3 and HTTP/1.1 servers use, so that the handshake says nothing
/// about Vigil (see [`knock`]).
pub use knock::{QUIC_ALPN, TCP_ALPN};

pub use alert::{ReleaseNote, ReleaseReason};
pub use auth::{Authenticated, Claim, Proof, Purpose};
pub use error::WireError;
pub use frame::{
    decode_request_frame, decode_request_header, decode_response_frame, decode_response_header,
    encode, Framed, Header, IsRequest, IsResponse, Message, Request, RequestType, Response,
    ResponseType, ERROR_TYPE,
};
pub use refusal::{ErrorCode, Refusal};

#[cfg(test)]
mod tests;
