//! Helpers for the scrubber tests: building files by hand and a deterministic fuzz-like loop.

use super::{scrub, Outcome};

/// A JPEG marker segment: `FF marker`, big-endian length (counting itself), payload.
pub(super) fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len() + 2).expect("test segment fits");
    let mut v = vec![0xFF, marker];
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// CRC-32 (ISO-HDLC, as PNG uses), bit by bit: slow and obviously right, for tests only.
pub(super) fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for part in parts {
        for &byte in *part {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
    }
    !crc
}

/// Every truncation of `sample` and several byte changes at every offset: `scrub` must return
/// (no panic, no hang), and whatever it scrubs must scrub again to `Clean`: the output is a
/// well-formed file of its type with nothing left to remove.
pub(super) fn assert_robust(sample: &[u8]) {
    let check = |input: &[u8]| {
        if let Ok(Outcome::Scrubbed { bytes, kind, .. }) = scrub(input) {
            assert_eq!(
                scrub(&bytes),
                Ok(Outcome::Clean { kind }),
                "rescrub of output from {input:02x?}"
            );
        }
    };
    for n in 0..sample.len() {
        check(&sample[..n]);
    }
    let mut buf = sample.to_vec();
    for i in 0..sample.len() {
        for v in [sample[i] ^ 0x01, sample[i] ^ 0x80, 0x00, 0xFF] {
            buf[i] = v;
            check(&buf);
        }
        buf[i] = sample[i];
    }
}
