//! Padmé: the length a padded object is rounded up to, so that its size says little.
//!
//! Padmé (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and Communication with
//! PURBs", PETS 2019) keeps the top `⌊log₂ E⌋ + 1` bits of a length `L`, where `E = ⌊log₂ L⌋`,
//! and rounds the rest up. A padded length therefore leaks O(log log L) bits instead of the
//! O(log L) an exact length leaks, and costs at most about 12 % (the worst case is reached for
//! small `E`; it shrinks as lengths grow). Unlike rounding to powers of two (up to 100 %
//! overhead) it stays cheap for large files, which is why Vigil uses it for envelopes above the
//! fixed size (`crate::envelope`) and for attachment blobs.
//!
//! The function is pure arithmetic, `const`, and has no failure mode: a length within 2⁵⁷ of
//! `u64::MAX` (no real file) saturates to `u64::MAX` rather than wrap.

/// The Padmé length for an object of `len` bytes: the smallest length ≥ `len` whose low
/// `E − S` bits are zero, with `E = ⌊log₂ len⌋` and `S = ⌊log₂ E⌋ + 1`.
///
/// Lengths 0 and 1 are their own bucket (there is no `log₂ 0`, and nothing to hide in a byte).
/// Every length that already is a bucket maps to itself, so padding twice changes nothing.
pub const fn padme_len(len: u64) -> u64 {
    if len < 2 {
        return len;
    }
    let e = len.ilog2();
    // e ≥ 1, so its log exists; s ≤ 6 and e − s never underflows (e ≥ 1 gives s ≤ e).
    let s = e.ilog2() + 1;
    let low_bits = e - s;
    let mask = (1u64 << low_bits) - 1;
    match len.checked_add(mask) {
        Some(v) => v & !mask,
        None => u64::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values worked out by hand from the definition (E, S, low bits zeroed, rounded up).
    #[test]
    fn hand_computed_values() {
        let cases: &[(u64, u64)] = &[
            // Tiny lengths: E − S = 0, nothing is rounded.
            (0, 0),
            (1, 1),
            (2, 2),
            (3, 3),
            (7, 7),
            // E = 3, S = 2: one low bit.
            (8, 8),
            (9, 10),
            (15, 16),
            // E = 4, S = 3: one low bit.
            (16, 16),
            (17, 18),
            // E = 5, S = 3: two low bits.
            (33, 36),
            // E = 9, S = 4: five low bits (multiples of 32).
            (1000, 1024),
            (513, 544),
            // E = 14, S = 4: ten low bits (multiples of 1024).
            (16_384, 16_384),
            (16_385, 17_408),
            // E = 19, S = 5: fourteen low bits (multiples of 16 384); 61 × 16 384 = 999 424.
            (1_000_000, 1_015_808),
            // E = 20, S = 5: fifteen low bits.
            (1_048_577, 1_081_344),
            // E = 30, S = 5: 25 low bits; 1 GiB is a bucket, one byte more rounds up 32 MiB.
            (1 << 30, 1 << 30),
            ((1 << 30) + 1, (1 << 30) + (1 << 25)),
        ];
        for &(len, want) in cases {
            assert_eq!(padme_len(len), want, "padme_len({len})");
        }
    }

    #[test]
    fn near_the_top_it_saturates_instead_of_wrapping() {
        // E = 63, S = 6: 57 low bits. 2⁶³ is a bucket; anything that would round past
        // u64::MAX saturates.
        assert_eq!(padme_len(1 << 63), 1 << 63);
        assert_eq!(padme_len((1 << 63) + 1), (1 << 63) + (1 << 57));
        assert_eq!(padme_len(u64::MAX), u64::MAX);
        assert_eq!(padme_len(u64::MAX - (1 << 57) + 2), u64::MAX);
    }

    #[test]
    fn never_shorter_idempotent_monotone_and_within_twelve_percent() {
        let mut prev = 0;
        for len in 0..70_000u64 {
            let p = padme_len(len);
            assert!(p >= len);
            assert_eq!(padme_len(p), p, "a bucket is its own bucket ({len})");
            assert!(p >= prev, "monotone at {len}");
            prev = p;
            if len >= 16 {
                // The paper's bound: overhead at most 2^(E−S) − 1 bytes, under 12 % here.
                assert!((p - len) * 100 <= len * 12, "{len} -> {p}");
            }
        }
    }
}
