//! Frames: `version u8 | type u8 | length u32 BE | body[length]`, and the [`Message`] trait every
//! request and response implements.
//!
//! A stream reader reads the six header bytes and checks them with [`decode_request_header`] (or
//! [`decode_response_header`]): version, a known type, the right direction, and a body length
//! within that type's bounds — before it reads, or allocates for, a single body byte. It then
//! reads the message's *head* (for every message but a deposit that is the whole body) and
//! decodes it once with [`Request::decode`] / [`Response::decode`]. A deposit's envelope, the one
//! payload that can be large, follows its head on the stream and is never held whole by the wire
//! code.
//!
//! The request and response types, their bytes and bounds, and the unions over them are generated
//! from the one table in [`super::table`].

use super::limits::{FRAME_HEADER_LEN, PROTOCOL_VERSION};
use super::refusal;
use super::WireError;
use crate::reader::Reader;

/// Type byte of the Error response, which may answer any request.
pub const ERROR_TYPE: u8 = 0xff;

/// A request or response: its body bounds and its encoding.
///
/// A message's body is its *head* followed by an optional *payload*. Only a deposit has a
/// payload (its envelope, streamed after the head); for every other message the head is the
/// whole body.
pub trait Message: Sized {
    /// Smallest valid body length.
    const MIN_BODY: usize;
    /// Largest valid body length; see `wire::limits` for the reasons.
    const MAX_BODY: usize;

    /// How many leading bytes of a body of `body_len` bytes are the head. `body_len` is within
    /// the bounds above.
    fn head_len(body_len: usize) -> usize {
        body_len
    }

    /// Decode the head (exactly [`Message::head_len`] bytes) of a body of `body_len` bytes.
    /// Rejects trailing bytes and any field outside its limits.
    fn decode(head: &[u8], body_len: usize) -> Result<Self, WireError>;

    /// Check every field against the limits a receiver enforces, so a sender learns of a
    /// violation before it sends.
    fn check(&self) -> Result<(), WireError> {
        Ok(())
    }

    /// Length of the whole body: head plus payload.
    fn body_len(&self) -> usize;

    /// Append the head's bytes to `out`.
    fn encode_head(&self, out: &mut Vec<u8>);
}

/// A message with a place in the table: its type byte.
pub trait Framed: Message {
    /// The frame type byte.
    const TYPE_BYTE: u8;
}

/// A request, and the response that answers it.
pub trait IsRequest: Framed {
    /// Its place in the table.
    const TYPE: RequestType;
    /// The response a relay answers it with (unless it refuses it with an Error).
    type Answer: IsResponse;
}

/// A response.
pub trait IsResponse: Framed {
    /// Its place in the table.
    const TYPE: ResponseType;

    /// This response out of the union, or the union back if it holds another.
    fn from_response(r: Response) -> Result<Self, Response>;
}

/// The frame of `m`: header (with the whole body's length) and head. For a deposit the sender
/// writes the envelope right after these bytes; for every other message this is the whole frame.
pub fn encode<M: Framed>(m: &M) -> Result<Vec<u8>, WireError> {
    m.check()?;
    let body_len = m.body_len();
    let len = u32::try_from(body_len).map_err(|_| WireError::TooLarge {
        what: "frame body",
        len: body_len as u64,
        max: u32::MAX as u64,
    })?;
    let head_len = M::head_len(body_len);
    let mut v = Vec::with_capacity(FRAME_HEADER_LEN + head_len);
    v.push(PROTOCOL_VERSION);
    v.push(M::TYPE_BYTE);
    v.extend_from_slice(&len.to_be_bytes());
    m.encode_head(&mut v);
    debug_assert_eq!(v.len(), FRAME_HEADER_LEN + head_len);
    Ok(v)
}

/// A checked frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<T> {
    /// The message type.
    pub kind: T,
    /// Body length; already checked against the type's minimum and maximum.
    pub body_len: usize,
}

/// Check `len` against a type's bounds.
fn bounded(name: &'static str, len: u32, (min, max): (usize, usize)) -> Result<usize, WireError> {
    let len = u64::from(len);
    if len > max as u64 {
        return Err(WireError::TooLarge {
            what: name,
            len,
            max: max as u64,
        });
    }
    if len < min as u64 {
        return Err(WireError::Truncated {
            what: name,
            needed: min as u64 - len,
        });
    }
    // len <= max, and every max fits in usize.
    Ok(len as usize)
}

fn split_header(h: &[u8; FRAME_HEADER_LEN]) -> Result<(u8, u32), WireError> {
    if h[0] != PROTOCOL_VERSION {
        return Err(WireError::UnsupportedVersion {
            got: h[0],
            supported: PROTOCOL_VERSION,
        });
    }
    Ok((h[1], u32::from_be_bytes([h[2], h[3], h[4], h[5]])))
}

/// Generates the type enums, the header checks and the unions from the table.
macro_rules! frames {
    ($( $(#[$doc:meta])* $module:ident : $Req:ident = $req_byte:literal => $Resp:ident = $resp_byte:literal ; )*) => {
        /// A request's type (client → relay), from the table in [`super::table`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum RequestType {
            $( $(#[$doc])* $Req, )*
        }

        /// A response's type (relay → client), from the table in [`super::table`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ResponseType {
            $( #[doc = concat!("Answer to ", stringify!($Req), ".")] $Resp, )*
            /// A refusal; may answer any request.
            Error,
        }

        impl RequestType {
            /// Every request type, in table order.
            pub const ALL: &'static [RequestType] = &[$(RequestType::$Req),*];

            /// The type byte.
            pub fn byte(self) -> u8 {
                match self { $( Self::$Req => $req_byte, )* }
            }

            /// Its name, for messages.
            pub fn name(self) -> &'static str {
                match self { $( Self::$Req => stringify!($Req), )* }
            }

            /// The response type that answers it (when it is not refused).
            pub fn answer(self) -> ResponseType {
                match self { $( Self::$Req => ResponseType::$Resp, )* }
            }

            /// Smallest and largest body.
            pub fn body_bounds(self) -> (usize, usize) {
                match self {
                    $( Self::$Req => (<super::$module::$Req as Message>::MIN_BODY, <super::$module::$Req as Message>::MAX_BODY), )*
                }
            }

            /// How many leading bytes of a body of `body_len` bytes are the request's head.
            pub fn head_len(self, body_len: usize) -> usize {
                match self { $( Self::$Req => <super::$module::$Req as Message>::head_len(body_len), )* }
            }
        }

        impl ResponseType {
            /// Every response type, in table order, then Error.
            pub const ALL: &'static [ResponseType] = &[$(ResponseType::$Resp,)* ResponseType::Error];

            /// The type byte.
            pub fn byte(self) -> u8 {
                match self { $( Self::$Resp => $resp_byte, )* Self::Error => ERROR_TYPE }
            }

            /// Its name, for messages.
            pub fn name(self) -> &'static str {
                match self { $( Self::$Resp => stringify!($Resp), )* Self::Error => "Error" }
            }

            /// Smallest and largest body.
            pub fn body_bounds(self) -> (usize, usize) {
                match self {
                    $( Self::$Resp => (<super::$module::$Resp as Message>::MIN_BODY, <super::$module::$Resp as Message>::MAX_BODY), )*
                    Self::Error => (<refusal::Refusal as Message>::MIN_BODY, <refusal::Refusal as Message>::MAX_BODY),
                }
            }
        }

        /// What a type byte names: a request, a response, or nothing known.
        fn classify(byte: u8) -> Result<Result<RequestType, ResponseType>, WireError> {
            match byte {
                $( $req_byte => Ok(Ok(RequestType::$Req)), $resp_byte => Ok(Err(ResponseType::$Resp)), )*
                ERROR_TYPE => Ok(Err(ResponseType::Error)),
                unknown => Err(WireError::UnknownType(unknown)),
            }
        }

        $(
            impl Framed for super::$module::$Req { const TYPE_BYTE: u8 = $req_byte; }
            impl IsRequest for super::$module::$Req {
                const TYPE: RequestType = RequestType::$Req;
                type Answer = super::$module::$Resp;
            }
            impl Framed for super::$module::$Resp { const TYPE_BYTE: u8 = $resp_byte; }
            impl IsResponse for super::$module::$Resp {
                const TYPE: ResponseType = ResponseType::$Resp;
                fn from_response(r: Response) -> Result<Self, Response> {
                    match r {
                        Response::$Resp(m) => Ok(m),
                        other => Err(other),
                    }
                }
            }
        )*

        /// Any request, decoded from its head (a deposit's envelope is not part of it).
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Request {
            $( $(#[$doc])* $Req(super::$module::$Req), )*
        }

        impl Request {
            /// Decode the head of a request whose header was checked by
            /// [`decode_request_header`]: exactly `kind.head_len(body_len)` bytes.
            pub fn decode(kind: RequestType, head: &[u8], body_len: usize) -> Result<Self, WireError> {
                Ok(match kind {
                    $( RequestType::$Req => Self::$Req(<super::$module::$Req as Message>::decode(head, body_len)?), )*
                })
            }

            /// Its type.
            pub fn kind(&self) -> RequestType {
                match self { $( Self::$Req(_) => RequestType::$Req, )* }
            }

            /// Its frame (header and head), as [`encode`] gives it.
            pub fn encode(&self) -> Result<Vec<u8>, WireError> {
                match self { $( Self::$Req(m) => encode(m), )* }
            }
        }

        /// Any response, decoded from its whole body.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Response {
            $( #[doc = concat!("Answer to ", stringify!($Req), ".")] $Resp(super::$module::$Resp), )*
            /// The request was refused.
            Error(refusal::Refusal),
        }

        impl Response {
            /// Decode the body of a response whose header was checked by
            /// [`decode_response_header`].
            pub fn decode(kind: ResponseType, body: &[u8]) -> Result<Self, WireError> {
                let n = body.len();
                Ok(match kind {
                    $( ResponseType::$Resp => Self::$Resp(<super::$module::$Resp as Message>::decode(body, n)?), )*
                    ResponseType::Error => Self::Error(<refusal::Refusal as Message>::decode(body, n)?),
                })
            }

            /// Its type.
            pub fn kind(&self) -> ResponseType {
                match self { $( Self::$Resp(_) => ResponseType::$Resp, )* Self::Error(_) => ResponseType::Error }
            }

            /// Its whole frame.
            pub fn encode(&self) -> Result<Vec<u8>, WireError> {
                match self { $( Self::$Resp(m) => encode(m), )* Self::Error(m) => encode(m) }
            }
        }
    };
}

crate::for_each_exchange!(frames);

impl Framed for refusal::Refusal {
    const TYPE_BYTE: u8 = ERROR_TYPE;
}

impl IsResponse for refusal::Refusal {
    const TYPE: ResponseType = ResponseType::Error;
    fn from_response(r: Response) -> Result<Self, Response> {
        match r {
            Response::Error(m) => Ok(m),
            other => Err(other),
        }
    }
}

/// Check the header of a frame sent by a client: the version, a known request type (a response
/// type is [`WireError::UnexpectedType`]) and a body length within that type's bounds — before
/// any body byte is read.
pub fn decode_request_header(h: &[u8; FRAME_HEADER_LEN]) -> Result<Header<RequestType>, WireError> {
    let (byte, len) = split_header(h)?;
    let kind = classify(byte)?.map_err(|_| WireError::UnexpectedType(byte))?;
    let body_len = bounded(kind.name(), len, kind.body_bounds())?;
    Ok(Header { kind, body_len })
}

/// Check the header of a frame sent by a relay (a request type is
/// [`WireError::UnexpectedType`]).
pub fn decode_response_header(
    h: &[u8; FRAME_HEADER_LEN],
) -> Result<Header<ResponseType>, WireError> {
    let (byte, len) = split_header(h)?;
    let kind = match classify(byte)? {
        Ok(_) => return Err(WireError::UnexpectedType(byte)),
        Err(kind) => kind,
    };
    let body_len = bounded(kind.name(), len, kind.body_bounds())?;
    Ok(Header { kind, body_len })
}

/// Split a complete frame held in memory into its checked header and body, rejecting a short
/// body or trailing bytes.
fn split_frame(frame: &[u8]) -> Result<(&[u8; FRAME_HEADER_LEN], &[u8]), WireError> {
    frame
        .split_first_chunk::<FRAME_HEADER_LEN>()
        .ok_or_else(|| WireError::Truncated {
            what: "frame header",
            needed: FRAME_HEADER_LEN.saturating_sub(frame.len()) as u64,
        })
}

fn exact_body(body: &[u8], body_len: usize, what: &'static str) -> Result<(), WireError> {
    match body.len().cmp(&body_len) {
        std::cmp::Ordering::Less => Err(WireError::Truncated {
            what,
            needed: (body_len - body.len()) as u64,
        }),
        std::cmp::Ordering::Greater => Err(WireError::TrailingData {
            extra: (body.len() - body_len) as u64,
        }),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// Decode a complete request frame held in memory (header, head, and a deposit's envelope).
/// Returns the request and its payload (the envelope; empty for other requests). For tests and
/// tools: the relay reads requests from the stream piece by piece instead.
pub fn decode_request_frame(frame: &[u8]) -> Result<(Request, &[u8]), WireError> {
    let (h, body) = split_frame(frame)?;
    let header = decode_request_header(h)?;
    exact_body(body, header.body_len, header.kind.name())?;
    let (head, payload) = body.split_at(header.kind.head_len(header.body_len));
    Ok((
        Request::decode(header.kind, head, header.body_len)?,
        payload,
    ))
}

/// Decode a complete response frame held in memory, rejecting trailing bytes.
pub fn decode_response_frame(frame: &[u8]) -> Result<Response, WireError> {
    let (h, body) = split_frame(frame)?;
    let header = decode_response_header(h)?;
    exact_body(body, header.body_len, header.kind.name())?;
    Response::decode(header.kind, body)
}

/// Decode a head that must be exactly `len` bytes of fixed fields: run `f` over a reader and
/// reject what it leaves unread.
pub(crate) fn fixed<T>(
    head: &[u8],
    f: impl FnOnce(&mut Reader<'_, WireError>) -> Result<T, WireError>,
) -> Result<T, WireError> {
    let mut r = Reader::new(head);
    let v = f(&mut r)?;
    r.finish()?;
    Ok(v)
}
