//! Vigil core: keys, recipient cards, incident reports, the envelope (sign, then encrypt in the
//! age v1 format) and the wire protocol as plain encode/decode functions with limits.
//!
//! This crate does no I/O of its own: no sockets, no files, no clock, no threads, no global
//! random number generator, no async runtime. It takes bytes, `impl Read`/`impl Write`, the
//! current time and a random number generator (`&mut impl rand_core::CryptoRngCore`; the
//! programs pass `&mut OsRng`) as arguments, so every decision can be tested in memory,
//! deterministically if need be, and reused by the client, the relay and the benchmarks.
#![forbid(unsafe_code)]

pub mod age;
pub mod card;
pub mod civil;
pub mod envelope;
pub mod ids;
pub mod keys;
pub mod names;
pub mod padding;
pub mod prekey;
mod reader;
pub mod report;
pub mod thread;
pub mod vault;
pub mod wire;
