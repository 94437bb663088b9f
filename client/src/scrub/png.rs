//! PNG: drop metadata chunks, copy every other chunk byte for byte (CRC included).
//!
//! A PNG is an 8-byte signature, then chunks: 4-byte big-endian data length, 4-byte type, data,
//! 4-byte CRC over type and data; `IHDR` first, `IEND` last (PNG specification, third edition,
//! 5.3 and 5.6). Kept chunks are copied whole, so their CRCs stay valid without being recomputed.
//! CRCs are not checked: a chunk we keep is passed on as it came, and one we drop does not
//! matter.

use super::{FileKind, Rewriter, ScrubError, Scrubbed, What};

const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// "A four-byte unsigned integer ... limited to 2^31-1" (5.3).
const MAX_CHUNK_LEN: usize = 0x7FFF_FFFF;

fn damaged(offset: usize, reason: &'static str) -> ScrubError {
    ScrubError::Damaged {
        kind: FileKind::Png,
        offset,
        reason,
    }
}

/// Which chunks go. Everything else, known or not, stays: colour chunks (`iCCP`, `sRGB`, `gAMA`,
/// `cHRM`, `cICP`), pixel data and its parameters, animation (`acTL`, `fcTL`, `fdAT`).
fn judge(chunk_type: &[u8]) -> Option<What> {
    match chunk_type {
        // `exIf` and `zxIf`: names some programs used before `eXIf` was registered.
        b"eXIf" | b"exIf" | b"zxIf" => Some(What::Exif),
        b"tEXt" | b"zTXt" | b"iTXt" => Some(What::PngText),
        b"tIME" => Some(What::ModTime),
        b"caBX" => Some(What::C2pa),
        _ => None,
    }
}

/// Scrub a PNG; `None` if there was nothing to remove.
pub(super) fn scrub(data: &[u8]) -> Result<Scrubbed, ScrubError> {
    if !data.starts_with(SIGNATURE) {
        return Err(damaged(0, "no PNG signature"));
    }
    let mut w = Rewriter::new(data.len());
    w.keep(SIGNATURE);
    let mut pos = SIGNATURE.len();
    let mut first = true;
    loop {
        let head = data
            .get(pos..pos + 8)
            .ok_or_else(|| damaged(pos, "truncated chunk header, or no IEND"))?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let chunk_type = &head[4..8];
        if len > MAX_CHUNK_LEN {
            return Err(damaged(pos, "chunk length over 2^31-1"));
        }
        if !chunk_type.iter().all(u8::is_ascii_alphabetic) {
            return Err(damaged(pos + 4, "chunk type is not four letters"));
        }
        if first && chunk_type != b"IHDR" {
            return Err(damaged(pos + 4, "first chunk is not IHDR"));
        }
        first = false;
        // length + type + data + CRC; len <= 2^31-1 so this cannot overflow a 64-bit usize, and
        // checked_add covers 32-bit targets.
        let end = (pos + 12)
            .checked_add(len)
            .filter(|&e| e <= data.len())
            .ok_or_else(|| damaged(pos, "chunk runs past the end"))?;
        match judge(chunk_type) {
            Some(what) => w.remove(what, end - pos),
            None => w.keep(&data[pos..end]),
        }
        pos = end;
        if chunk_type == b"IEND" {
            if pos < data.len() {
                w.remove(What::Trailer, data.len() - pos);
            }
            return Ok(w.finish());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{assert_robust, crc32};
    use super::super::{scrub as scrub_any, FileKind, Outcome, Removed};
    use super::*;

    fn chunk(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v.extend_from_slice(&crc32(&[kind, body]).to_be_bytes());
        v
    }

    /// IHDR of a 1x1 8-bit grayscale image, and its one IDAT: zlib stream of filter byte 0 and
    /// pixel 0 (stored block), Adler-32 included.
    fn ihdr() -> Vec<u8> {
        chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0])
    }
    fn idat() -> Vec<u8> {
        chunk(
            b"IDAT",
            &[
                0x78, 0x01, 0x01, 0x02, 0x00, 0xFD, 0xFF, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01,
            ],
        )
    }
    fn iccp() -> Vec<u8> {
        chunk(b"iCCP", b"sRGB\0\0fake-compressed-profile")
    }
    fn iend() -> Vec<u8> {
        chunk(b"IEND", b"")
    }

    fn clean_png() -> Vec<u8> {
        [SIGNATURE.to_vec(), ihdr(), iccp(), idat(), iend()].concat()
    }

    fn dirty_png() -> Vec<u8> {
        [
            SIGNATURE.to_vec(),
            ihdr(),
            chunk(b"eXIf", b"MM\0\x2a\0\0\0\x08GPS-CANARY SERIAL-CANARY"),
            iccp(),
            chunk(b"tEXt", b"Author\0OWNER-CANARY"),
            chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0<x>XMP-CANARY</x>"),
            chunk(b"zTXt", b"Comment\0\0ZTXT-CANARY"),
            chunk(b"tIME", &[0x07, 0xEA, 12, 3, 23, 7, 4]),
            idat(),
            chunk(b"caBX", b"C2PA-CANARY"),
            iend(),
            b"TRAILER-CANARY".to_vec(),
        ]
        .concat()
    }

    /// Walk the chunks of a PNG checking every CRC: the output is structurally valid.
    fn chunks_with_valid_crcs(png: &[u8]) -> Vec<[u8; 4]> {
        assert!(png.starts_with(SIGNATURE));
        let mut pos = 8;
        let mut types = Vec::new();
        while pos < png.len() {
            let len = u32::from_be_bytes(png[pos..pos + 4].try_into().unwrap()) as usize;
            let kind = &png[pos + 4..pos + 8];
            let body = &png[pos + 8..pos + 8 + len];
            let crc = u32::from_be_bytes(png[pos + 8 + len..pos + 12 + len].try_into().unwrap());
            assert_eq!(crc, crc32(&[kind, body]));
            types.push(kind.try_into().unwrap());
            pos += 12 + len;
        }
        assert_eq!(pos, png.len());
        types
    }

    #[test]
    fn removes_metadata_chunks_and_keeps_the_rest() {
        let input = dirty_png();
        let Outcome::Scrubbed {
            bytes,
            kind,
            removed,
        } = scrub_any(&input).unwrap()
        else {
            panic!("expected Scrubbed")
        };
        assert_eq!(kind, FileKind::Png);
        for canary in [
            "GPS-CANARY",
            "SERIAL-CANARY",
            "OWNER-CANARY",
            "XMP-CANARY",
            "ZTXT-CANARY",
            "C2PA-CANARY",
            "TRAILER-CANARY",
        ] {
            assert!(
                !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
                "{canary} left"
            );
        }
        assert_eq!(bytes, clean_png());
        assert_eq!(
            chunks_with_valid_crcs(&bytes),
            [*b"IHDR", *b"iCCP", *b"IDAT", *b"IEND"]
        );
        let whats: Vec<_> = removed.iter().map(|r| r.what).collect();
        assert_eq!(
            whats,
            [
                What::Exif,
                What::PngText,
                What::ModTime,
                What::C2pa,
                What::Trailer
            ]
        );
        assert_eq!(
            removed[3],
            Removed {
                what: What::C2pa,
                bytes: 12 + 11
            }
        );
        let total: usize = removed.iter().map(|r| r.bytes).sum();
        assert_eq!(total, input.len() - bytes.len());
        assert_eq!(
            scrub_any(&bytes).unwrap(),
            Outcome::Clean {
                kind: FileKind::Png
            }
        );
    }

    #[test]
    fn clean_file_is_clean() {
        chunks_with_valid_crcs(&clean_png());
        assert_eq!(
            scrub_any(&clean_png()).unwrap(),
            Outcome::Clean {
                kind: FileKind::Png
            }
        );
    }

    #[test]
    fn damaged_files_are_errors() {
        let good = clean_png();
        let no_iend = &good[..good.len() - 12];
        let mut huge = good.clone();
        huge[8..12].copy_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
        let not_ihdr = [SIGNATURE.to_vec(), idat(), ihdr(), iend()].concat();
        let mut bad_type = good.clone();
        bad_type[12] = b'1';
        for c in [no_iend, &huge, &not_ihdr, &bad_type, &good[..9]] {
            assert!(
                matches!(
                    scrub_any(c),
                    Err(ScrubError::Damaged {
                        kind: FileKind::Png,
                        ..
                    })
                ),
                "{c:?}"
            );
        }
    }

    #[test]
    fn truncations_and_flips_never_panic() {
        assert_robust(&dirty_png());
        assert_robust(&clean_png());
    }
}
