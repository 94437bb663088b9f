//! Canonical base64 as age uses it: standard alphabet, no padding in the header, padding in
//! the ASCII armor, and in both cases no non-zero trailing bits (RFC 4648, section 3.5).

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

/// Unpadded canonical base64, used for header arguments, bodies and the MAC.
pub(crate) const RAW: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_allow_trailing_bits(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// Padded canonical base64, used inside ASCII armor.
pub(crate) const PADDED: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_allow_trailing_bits(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// True for the 64 characters of the standard alphabet (no `=`).
pub(crate) fn is_b64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

/// Length of the unpadded encoding of `n` bytes.
pub(crate) const fn raw_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

/// Decodes unpadded canonical base64 that must encode exactly `N` bytes.
///
/// The length is checked before decoding, so nothing is allocated for wrong-sized input.
pub(crate) fn decode_exact<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != raw_len(N) || !s.iter().all(|&b| is_b64_char(b)) {
        return None;
    }
    let v = RAW.decode(s).ok()?;
    v.as_slice().try_into().ok()
}

/// Encodes unpadded.
pub(crate) fn encode(bytes: &[u8]) -> String {
    RAW.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_only() {
        // "AA" and "AB" both decode to one zero byte in lax decoders; only "AA" is canonical.
        assert_eq!(decode_exact::<1>(b"AA"), Some([0]));
        assert_eq!(decode_exact::<1>(b"AB"), None);
        assert_eq!(decode_exact::<1>(b"AA=="), None);
        assert_eq!(decode_exact::<1>(b"A A"), None);
        assert_eq!(decode_exact::<2>(b"AA"), None);
        assert!(RAW.decode("AAA=").is_err());
        assert!(PADDED.decode("AA").is_err());
        assert!(PADDED.decode("AB==").is_err());
        assert_eq!(PADDED.decode("AA==").ok(), Some(vec![0]));
    }

    #[test]
    fn raw_lengths() {
        assert_eq!(raw_len(16), 22);
        assert_eq!(raw_len(32), 43);
        assert_eq!(encode(&[0u8; 32]).len(), 43);
    }
}
