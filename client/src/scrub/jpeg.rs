//! JPEG: drop metadata segments, copy everything else byte for byte.
//!
//! A JPEG is a sequence of marker segments (`FF xx`, then a 2-byte big-endian length that
//! counts itself) from SOI to EOI; after each SOS header comes entropy-coded data, which runs
//! until the next `FF` not followed by `00` (a stuffed byte) or `D0`–`D7` (restart markers).
//! Which segments go and why is in the table in the module documentation of [`super`].

use super::{FileKind, Rewriter, ScrubError, Scrubbed, What};

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const COM: u8 = 0xFE;
const APP0: u8 = 0xE0;
const APP1: u8 = 0xE1;
const APP2: u8 = 0xE2;
const APP13: u8 = 0xED;
const APP14: u8 = 0xEE;

fn damaged(offset: usize, reason: &'static str) -> ScrubError {
    ScrubError::Damaged {
        kind: FileKind::Jpeg,
        offset,
        reason,
    }
}

/// Decision for one APPn or COM segment, from its marker and payload.
enum Verdict {
    Keep,
    Remove(What),
    /// A JFIF APP0 with a thumbnail: keep it with the thumbnail cut off.
    JfifWithoutThumbnail,
}

fn judge(marker: u8, payload: &[u8]) -> Verdict {
    match marker {
        APP0 if payload.starts_with(b"JFIF\0") => {
            // JFIF: identifier(5) version(2) units(1) Xdensity(2) Ydensity(2) Xthumb(1) Ythumb(1)
            // then 3*Xthumb*Ythumb bytes of RGB thumbnail.
            if payload.len() > 14 || payload.get(12..14).is_some_and(|t| t != [0, 0]) {
                Verdict::JfifWithoutThumbnail
            } else {
                Verdict::Keep
            }
        }
        APP0 => Verdict::Remove(What::AppOther),
        APP1 => Verdict::Remove(What::ExifXmp),
        APP2 if payload.starts_with(b"ICC_PROFILE\0") => Verdict::Keep,
        APP2 if payload.starts_with(b"MPF\0") => Verdict::Remove(What::Mpf),
        APP13 => Verdict::Remove(What::Iptc),
        APP14 if payload.starts_with(b"Adobe") => Verdict::Keep,
        COM => Verdict::Remove(What::Comments),
        _ => Verdict::Remove(What::AppOther),
    }
}

/// Scrub a JPEG; `None` if there was nothing to remove.
pub(super) fn scrub(data: &[u8]) -> Result<Scrubbed, ScrubError> {
    if !data.starts_with(&[0xFF, SOI]) {
        return Err(damaged(0, "no start-of-image marker"));
    }
    let mut w = Rewriter::new(data.len());
    w.keep(&data[..2]);
    let mut pos = 2;
    loop {
        // A marker: one or more FF (fill bytes are allowed before a marker), then the code.
        let start = pos;
        if data.get(pos) != Some(&0xFF) {
            return Err(damaged(pos, "expected a marker"));
        }
        while data.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let marker = *data
            .get(pos)
            .ok_or_else(|| damaged(pos, "truncated marker"))?;
        pos += 1;
        match marker {
            0x00 => return Err(damaged(pos - 1, "invalid marker 00")),
            EOI => {
                w.keep(&data[start..pos]);
                if pos < data.len() {
                    w.remove(What::TrailerMedia, data.len() - pos);
                }
                return Ok(w.finish());
            }
            SOI => return Err(damaged(pos - 1, "second start-of-image marker")),
            // Markers without a length: TEM and restart markers.
            0x01 | 0xD0..=0xD7 => {
                w.keep(&data[start..pos]);
                continue;
            }
            _ => {}
        }
        let len_bytes = data
            .get(pos..pos + 2)
            .ok_or_else(|| damaged(pos, "truncated segment length"))?;
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        if len < 2 {
            return Err(damaged(pos, "segment length below 2"));
        }
        let end = pos
            .checked_add(len)
            .filter(|&e| e <= data.len())
            .ok_or_else(|| damaged(pos, "segment runs past the end"))?;
        let payload = &data[pos + 2..end];
        match marker {
            0xE0..=0xEF | COM => match judge(marker, payload) {
                Verdict::Keep => w.keep(&data[start..end]),
                Verdict::Remove(what) => w.remove(what, end - start),
                Verdict::JfifWithoutThumbnail => {
                    // Keep the 14 fixed bytes, zero the thumbnail size, fix the length (16).
                    let fixed = payload
                        .get(..14)
                        .ok_or_else(|| damaged(pos, "short JFIF segment"))?;
                    w.keep(&[0xFF, APP0, 0, 16]);
                    w.keep(&fixed[..12]);
                    w.keep(&[0, 0]);
                    w.remove(What::JfifThumbnail, len - 16);
                }
            },
            SOS => {
                // Header, then entropy-coded data up to the next real marker: kept whole.
                let scan_end = entropy_end(data, end)?;
                w.keep(&data[start..scan_end]);
                pos = scan_end;
                continue;
            }
            _ => w.keep(&data[start..end]),
        }
        pos = end;
    }
}

/// The offset of the first marker after entropy-coded data starting at `from`: an `FF` followed
/// by neither `00` (a stuffed `FF` byte) nor `D0`–`D7` (restart markers, part of the scan). An
/// `FF FF` is fill before a marker, so the marker starts at the first `FF`.
fn entropy_end(data: &[u8], from: usize) -> Result<usize, ScrubError> {
    let mut i = from;
    while let Some(off) = data
        .get(i..)
        .and_then(|rest| rest.iter().position(|&b| b == 0xFF))
    {
        let at = i + off;
        match data.get(at + 1) {
            None => break,
            Some(0x00 | 0xD0..=0xD7) => i = at + 2,
            Some(_) => return Ok(at),
        }
    }
    Err(damaged(
        data.len(),
        "image data runs to the end of the file without an end marker",
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::testutil::{assert_robust, segment};
    use super::super::{scrub as scrub_any, FileKind, Outcome};
    use super::*;

    /// A minimal valid baseline 8x8 grayscale JPEG, split into (header, scan) so tests can put
    /// metadata between. DQT all ones; one DC and one AC Huffman table with a single 1-bit code
    /// for symbol 0; the scan is DC category 0 and EOB: bits `00`, padded with ones: `3F`.
    fn tables_and_frame() -> Vec<u8> {
        let mut v = Vec::new();
        let mut dqt = vec![0x00];
        dqt.extend_from_slice(&[1; 64]);
        v.extend(segment(0xDB, &dqt));
        v.extend(segment(0xC0, &[8, 0, 8, 0, 8, 1, 1, 0x11, 0]));
        let mut dht = vec![0x00, 1];
        dht.extend_from_slice(&[0; 15]);
        dht.push(0);
        dht.push(0x10);
        dht.push(1);
        dht.extend_from_slice(&[0; 15]);
        dht.push(0);
        v.extend(segment(0xC4, &dht));
        v
    }

    fn scan() -> Vec<u8> {
        let mut v = segment(SOS, &[1, 1, 0x00, 0, 63, 0]);
        // Entropy data with a stuffed FF00 and a restart marker, to exercise the scanner.
        v.extend_from_slice(&[0x3F, 0xFF, 0x00, 0xFF, 0xD0, 0x3F]);
        v
    }

    fn jfif() -> Vec<u8> {
        segment(APP0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0")
    }

    fn icc() -> Vec<u8> {
        segment(APP2, b"ICC_PROFILE\0\x01\x01fake-srgb-profile")
    }

    fn adobe() -> Vec<u8> {
        segment(APP14, b"Adobe\0\x64\0\0\0\0\x01")
    }

    fn exif() -> Vec<u8> {
        segment(APP1, b"Exif\0\0MM\0\x2a\0\0\0\x08GPS-CANARY SERIAL-CANARY")
    }

    pub(crate) fn clean_jpeg() -> Vec<u8> {
        [
            vec![0xFF, SOI],
            jfif(),
            icc(),
            adobe(),
            tables_and_frame(),
            scan(),
            vec![0xFF, EOI],
        ]
        .concat()
    }

    pub(crate) fn dirty_jpeg() -> Vec<u8> {
        [
            vec![0xFF, SOI],
            jfif(),
            exif(),
            segment(
                APP1,
                b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>OWNER-CANARY</x:xmpmeta>",
            ),
            icc(),
            segment(APP2, b"MPF\0MPF-CANARY"),
            segment(APP13, b"Photoshop 3.0\08BIM\x04\x04IPTC-CANARY"),
            adobe(),
            segment(COM, b"COMMENT-CANARY"),
            tables_and_frame(),
            vec![0xFF, 0xFF], // fill bytes before the next marker
            segment(0xEB, b"JUMBF-C2PA-CANARY"),
            scan(),
            vec![0xFF, EOI],
            b"\xFF\xD8TRAILER-CANARY".to_vec(),
        ]
        .concat()
    }

    #[test]
    fn removes_metadata_and_keeps_image_bytes() {
        let input = dirty_jpeg();
        let Outcome::Scrubbed {
            bytes,
            kind,
            removed,
        } = scrub_any(&input).unwrap()
        else {
            panic!("expected Scrubbed")
        };
        assert_eq!(kind, FileKind::Jpeg);
        for canary in [
            "GPS-CANARY",
            "SERIAL-CANARY",
            "OWNER-CANARY",
            "MPF-CANARY",
            "IPTC-CANARY",
            "COMMENT-CANARY",
            "C2PA-CANARY",
            "TRAILER-CANARY",
        ] {
            assert!(
                !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
                "{canary} left"
            );
        }
        // Exactly the clean file: every kept segment, the scan included, byte for byte.
        assert_eq!(bytes, clean_jpeg());
        let whats: Vec<_> = removed.iter().map(|r| r.what).collect();
        assert_eq!(
            whats,
            [
                What::ExifXmp,
                What::Mpf,
                What::Iptc,
                What::Comments,
                What::AppOther,
                What::TrailerMedia
            ]
        );
        let total: usize = removed.iter().map(|r| r.bytes).sum();
        assert_eq!(total, input.len() - bytes.len());
        // Re-parsed, it is a valid JPEG with nothing left to remove.
        assert_eq!(
            scrub_any(&bytes).unwrap(),
            Outcome::Clean {
                kind: FileKind::Jpeg
            }
        );
    }

    #[test]
    fn clean_file_is_clean() {
        assert_eq!(
            scrub_any(&clean_jpeg()).unwrap(),
            Outcome::Clean {
                kind: FileKind::Jpeg
            }
        );
    }

    #[test]
    fn jfif_thumbnail_is_cut() {
        let mut thumb = b"JFIF\0\x01\x01\0\0\x01\0\x01\x01\x01".to_vec();
        thumb.extend_from_slice(b"RGB"); // one 1x1 RGB pixel
        let input = [
            vec![0xFF, SOI],
            segment(APP0, &thumb),
            tables_and_frame(),
            scan(),
            vec![0xFF, EOI],
        ]
        .concat();
        let Outcome::Scrubbed { bytes, removed, .. } = scrub_any(&input).unwrap() else {
            panic!()
        };
        assert_eq!(
            bytes,
            [
                vec![0xFF, SOI],
                jfif(),
                tables_and_frame(),
                scan(),
                vec![0xFF, EOI]
            ]
            .concat()
        );
        assert_eq!(
            removed,
            [super::super::Removed {
                what: What::JfifThumbnail,
                bytes: 3
            }]
        );
    }

    #[test]
    fn damaged_files_are_errors() {
        let cases: [&[u8]; 5] = [
            &[0xFF, 0xD8, 0xFF],
            &[0xFF, 0xD8, 0xFF, 0xE1, 0x00],
            &[0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x01],
            &[0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x10, 1, 2],
            &[0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x3F, 0x3F],
        ];
        for c in cases {
            assert!(
                matches!(
                    scrub_any(c),
                    Err(ScrubError::Damaged {
                        kind: FileKind::Jpeg,
                        ..
                    })
                ),
                "{c:?}"
            );
        }
    }

    #[test]
    fn truncations_and_flips_never_panic() {
        assert_robust(&dirty_jpeg());
        assert_robust(&clean_jpeg());
    }
}
