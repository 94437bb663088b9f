//! WebP: drop the `EXIF` and `XMP ` chunks, clear their flags in `VP8X`, rewrite the RIFF size.
//!
//! A WebP file is `RIFF`, a 4-byte little-endian size (of everything after it), `WEBP`, then
//! chunks: a FourCC, a 4-byte little-endian payload size, the payload, and one padding byte when
//! the size is odd (RFC 9649, 2.3 and 2.7). The first chunk is `VP8 `, `VP8L` or, in the extended
//! format, `VP8X`, whose first payload byte holds flags that announce an ICC profile, alpha,
//! EXIF, XMP and animation. Metadata lives only in the top-level `EXIF` and `XMP ` chunks.
//! Chunks we do not know are kept, as RFC 9649 asks readers to ignore and writers to preserve
//! them.

use super::{FileKind, Rewriter, ScrubError, Scrubbed, What};

/// `VP8X` flag bits (RFC 9649, 2.7.1.1: Rsv Rsv I L E X A R, most significant first).
const FLAG_EXIF: u8 = 0x08;
const FLAG_XMP: u8 = 0x04;

fn damaged(offset: usize, reason: &'static str) -> ScrubError {
    ScrubError::Damaged {
        kind: FileKind::WebP,
        offset,
        reason,
    }
}

fn le32(b: &[u8]) -> usize {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
}

/// Scrub a WebP; `None` if there was nothing to remove.
pub(super) fn scrub(data: &[u8]) -> Result<Scrubbed, ScrubError> {
    let head = data
        .get(..12)
        .ok_or_else(|| damaged(0, "truncated RIFF header"))?;
    if &head[..4] != b"RIFF" || &head[8..12] != b"WEBP" {
        return Err(damaged(0, "not a RIFF WEBP file"));
    }
    let riff_end = le32(&head[4..8])
        .checked_add(8)
        .filter(|&e| e <= data.len())
        .ok_or_else(|| damaged(4, "RIFF size runs past the end"))?;

    // First pass: the chunks, each as (start, end including padding, FourCC).
    let mut chunks = Vec::new();
    let mut pos = 12;
    while pos < riff_end {
        let h = data
            .get(pos..pos + 8)
            .filter(|_| pos + 8 <= riff_end)
            .ok_or_else(|| damaged(pos, "truncated chunk header"))?;
        let size = le32(&h[4..8]);
        let end = (pos + 8)
            .checked_add(size)
            .and_then(|e| e.checked_add(size & 1))
            .filter(|&e| e <= riff_end)
            .ok_or_else(|| damaged(pos, "chunk runs past the RIFF end"))?;
        chunks.push((pos, end, [h[0], h[1], h[2], h[3]]));
        pos = end;
    }
    match chunks.first() {
        Some((_, _, fourcc)) if [b"VP8 ", b"VP8L", b"VP8X"].contains(&fourcc) => {}
        _ => return Err(damaged(12, "first chunk is not VP8, VP8L or VP8X")),
    }

    let mut w = Rewriter::new(data.len());
    w.keep(&data[..12]);
    let strips_metadata = chunks.iter().any(|(_, _, f)| f == b"EXIF" || f == b"XMP ");
    for &(start, end, fourcc) in &chunks {
        match &fourcc {
            b"EXIF" => w.remove(What::Exif, end - start),
            b"XMP " => w.remove(What::Xmp, end - start),
            b"VP8X" if strips_metadata => {
                let flags = *data
                    .get(start + 8)
                    .filter(|_| start + 8 < end)
                    .ok_or_else(|| damaged(start, "empty VP8X chunk"))?;
                w.keep(&data[start..start + 8]);
                w.keep(&[flags & !(FLAG_EXIF | FLAG_XMP)]);
                w.keep(&data[start + 9..end]);
            }
            _ => w.keep(&data[start..end]),
        }
    }
    if riff_end < data.len() {
        w.remove(What::Trailer, data.len() - riff_end);
    }
    // The output is no longer than the input, whose RIFF size fitted in 32 bits.
    let riff_size = u32::try_from(w.out.len() - 8).map_err(|_| damaged(4, "RIFF size overflow"))?;
    w.out[4..8].copy_from_slice(&riff_size.to_le_bytes());
    Ok(w.finish())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::assert_robust;
    use super::super::{scrub as scrub_any, FileKind, Outcome, Removed};
    use super::*;

    fn chunk(fourcc: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut v = fourcc.to_vec();
        v.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_le_bytes());
        v.extend_from_slice(payload);
        if payload.len() % 2 == 1 {
            v.push(0);
        }
        v
    }

    fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body = chunks.concat();
        [
            b"RIFF".to_vec(),
            u32::try_from(body.len() + 4)
                .unwrap()
                .to_le_bytes()
                .to_vec(),
            b"WEBP".to_vec(),
            body,
        ]
        .concat()
    }

    fn vp8x(flags: u8) -> Vec<u8> {
        // flags, 3 reserved bytes, canvas 1x1 (stored minus one, 24-bit little-endian).
        chunk(b"VP8X", &[flags, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    }

    /// A lossless 1x1 image bitstream (its contents are opaque here; it is copied as is).
    fn vp8l() -> Vec<u8> {
        chunk(
            b"VP8L",
            &[
                0x2F, 0, 0, 0, 0x10, 0x07, 0x10, 0x11, 0x11, 0x88, 0x88, 0xFE, 0x07, 0x00,
            ],
        )
    }

    fn iccp() -> Vec<u8> {
        chunk(b"ICCP", b"fake-icc")
    }

    fn clean_webp() -> Vec<u8> {
        riff(&[vp8x(0x20), iccp(), vp8l()])
    }

    fn dirty_webp() -> Vec<u8> {
        let mut v = riff(&[
            vp8x(0x20 | FLAG_EXIF | FLAG_XMP),
            iccp(),
            vp8l(),
            chunk(b"EXIF", b"MM\0\x2a\0\0\0\x08GPS-CANARY SERIAL-CANARY!"),
            chunk(b"XMP ", b"<x:xmpmeta>OWNER-CANARY</x:xmpmeta>"),
        ]);
        v.extend_from_slice(b"TRAILER-CANARY");
        v
    }

    #[test]
    fn removes_exif_and_xmp_and_fixes_flags_and_size() {
        let input = dirty_webp();
        let Outcome::Scrubbed {
            bytes,
            kind,
            removed,
        } = scrub_any(&input).unwrap()
        else {
            panic!("expected Scrubbed")
        };
        assert_eq!(kind, FileKind::WebP);
        for canary in [
            "GPS-CANARY",
            "SERIAL-CANARY",
            "OWNER-CANARY",
            "TRAILER-CANARY",
        ] {
            assert!(
                !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
                "{canary} left"
            );
        }
        // VP8X keeps the ICC flag, loses EXIF and XMP; ICCP and VP8L are byte-identical.
        assert_eq!(bytes, clean_webp());
        assert_eq!(le32(&bytes[4..8]), bytes.len() - 8);
        let odd_exif = 8 + 33 + 1;
        assert_eq!(
            removed,
            [
                Removed {
                    what: What::Exif,
                    bytes: odd_exif
                },
                Removed {
                    what: What::Xmp,
                    bytes: 8 + 35 + 1
                },
                Removed {
                    what: What::Trailer,
                    bytes: 14
                }
            ]
        );
        assert_eq!(
            scrub_any(&bytes).unwrap(),
            Outcome::Clean {
                kind: FileKind::WebP
            }
        );
    }

    #[test]
    fn simple_format_and_clean_files() {
        assert_eq!(
            scrub_any(&clean_webp()).unwrap(),
            Outcome::Clean {
                kind: FileKind::WebP
            }
        );
        assert_eq!(
            scrub_any(&riff(&[vp8l()])).unwrap(),
            Outcome::Clean {
                kind: FileKind::WebP
            }
        );
    }

    #[test]
    fn damaged_files_are_errors() {
        let good = clean_webp();
        let mut short_riff = good.clone();
        short_riff[4..8].copy_from_slice(&1000u32.to_le_bytes());
        let mut bad_first = good.clone();
        bad_first[12..16].copy_from_slice(b"EXIF");
        let no_chunks = riff(&[]);
        for c in [
            &good[..good.len() - 1],
            &short_riff,
            &bad_first,
            &no_chunks,
            &good[..12],
        ] {
            assert!(
                matches!(
                    scrub_any(c),
                    Err(ScrubError::Damaged {
                        kind: FileKind::WebP,
                        ..
                    })
                ),
                "{c:?}"
            );
        }
    }

    #[test]
    fn truncations_and_flips_never_panic() {
        assert_robust(&dirty_webp());
        assert_robust(&clean_webp());
    }
}
