//! Vigil core: keys, recipient cards, incident reports, the envelope (sign, then encrypt in the
//! age v1 format) and the wire protocol as plain encode/decode functions with limits.
//!
//! This crate does no I/O of its own: no sockets, no files, no clock, no async runtime. It takes
//! bytes, `impl Read`/`impl Write` and the current time as arguments, so every decision can be
//! tested in memory and reused by the client, the relay and the benchmarks.
#![forbid(unsafe_code)]

pub mod age;
pub mod card;
pub mod envelope;
pub mod ids;
pub mod keys;
pub mod report;
pub mod wire;
