//! MP4/MOV: blank metadata boxes in place, so no offset in the file changes.
//!
//! An ISO-BMFF or QuickTime file is a tree of boxes: a 4-byte big-endian size (1: a 64-bit size
//! follows the type; 0: to the end of the file, top level only), a 4-byte type, the payload
//! (ISO/IEC 14496-12, 4.2). Sample tables (`stco`, `co64`) hold absolute file offsets into
//! `mdat`, and `moov` often comes before `mdat`, so removing bytes from `moov` would break every
//! offset after it. Instead each metadata box is turned into a `free` box of the same size with
//! an all-zero payload (`free` may appear in any box and is ignored by readers, 8.1.2), and
//! creation and modification times are zeroed where they stand. The file keeps its length and
//! every offset; media data is untouched. `Removed::bytes` counts the bytes blanked.
//!
//! Blanked: `udta` and `meta` inside `moov` and each `trak` (QuickTime `©xyz` and Apple
//! `com.apple.quicktime.location.ISO6709` GPS, make, model, software, owner, creation date, 3GPP
//! `loci`/`auth`, XMP in `XMP_`), XMP `uuid` boxes at the top level, in `moov` or in a `trak`.
//! Zeroed: the creation and modification times of `mvhd`, `tkhd` and `mdhd`.
//!
//! Not scrubbed (the caller gets [`super::Outcome::NotScrubbed`]): files with a track that is
//! neither video nor sound (GoPro GPMF GPS, Apple timed metadata, timecode, subtitles: data
//! inside `mdat` we cannot blank without a per-format parser; many iPhone videos have such a
//! track), and files with a box of a type not on the short lists in [`scrub`] at the top level
//! or in `moov`, `trak` or `mdia` (camera makers' `uuid` boxes holding EXIF, as in Canon CR3
//! and some Sony files; compressed `cmov` movies; HEIF-style top-level `meta` item lists). Not looked at: maker-specific boxes inside sample descriptions
//! (`stsd`), which are codec settings in the files we know of.

use super::{note, FileKind, Removed, ScrubError, Verdict, Warning, What};

/// ISO/IEC 14496-12 "uuid" user type of an XMP packet (Adobe XMP specification, part 3).
const XMP_UUID: [u8; 16] = [
    0xBE, 0x7A, 0xCF, 0xCB, 0x97, 0xA9, 0x42, 0xE8, 0x9C, 0x71, 0x99, 0x94, 0x91, 0xE3, 0xAF, 0xAC,
];

fn damaged(offset: usize, reason: &'static str) -> ScrubError {
    ScrubError::Damaged {
        kind: FileKind::Mp4,
        offset,
        reason,
    }
}

/// One box: where it starts, where its payload starts (after size, type and any 64-bit size or
/// `uuid` user type) and where it ends.
#[derive(Clone, Copy)]
struct Bx {
    start: usize,
    body: usize,
    end: usize,
    kind: [u8; 4],
}

impl Bx {
    /// Where the 64-bit size, if any, ends: what a `free` box keeps as its header.
    fn header_end(&self, data: &[u8]) -> usize {
        if data[self.start..self.start + 4] == [0, 0, 0, 1] {
            self.start + 16
        } else {
            self.start + 8
        }
    }

    fn is_xmp(&self, data: &[u8]) -> bool {
        &self.kind == b"uuid" && data[self.body - 16..self.body] == XMP_UUID
    }
}

/// The boxes in `data[from..to]`, all checked to lie inside it.
fn children(data: &[u8], from: usize, to: usize, top_level: bool) -> Result<Vec<Bx>, ScrubError> {
    let mut boxes = Vec::new();
    let mut pos = from;
    while pos < to {
        let h = data
            .get(pos..pos + 8)
            .filter(|_| pos + 8 <= to)
            .ok_or_else(|| damaged(pos, "truncated box header"))?;
        let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let kind = [h[4], h[5], h[6], h[7]];
        let (mut body, size) = match size32 {
            0 if top_level => (pos + 8, to - pos),
            0 => return Err(damaged(pos, "box size 0 inside another box")),
            1 => {
                let l = data
                    .get(pos + 8..pos + 16)
                    .filter(|_| pos + 16 <= to)
                    .ok_or_else(|| damaged(pos, "truncated 64-bit box size"))?;
                let size =
                    u64::from_be_bytes(l.try_into().map_err(|_| damaged(pos, "64-bit size"))?);
                (
                    pos + 16,
                    usize::try_from(size).map_err(|_| damaged(pos, "box larger than memory"))?,
                )
            }
            n => (pos + 8, n as usize),
        };
        if &kind == b"uuid" {
            body += 16;
        }
        let end = pos
            .checked_add(size)
            .filter(|&e| e <= to && e >= body)
            .ok_or_else(|| damaged(pos, "box size out of bounds"))?;
        boxes.push(Bx {
            start: pos,
            body,
            end,
            kind,
        });
        pos = end;
    }
    Ok(boxes)
}

/// Changes to make, gathered before copying anything.
#[derive(Default)]
struct Plan {
    /// Boxes to turn into `free`.
    blank: Vec<Bx>,
    /// Byte ranges to zero.
    zero: Vec<(usize, usize)>,
    removed: Vec<Removed>,
}

impl Plan {
    fn note(&mut self, what: What, bytes: usize) {
        note(&mut self.removed, what, bytes);
    }

    fn blank(&mut self, b: Bx, what: What) {
        if b.end == b.body {
            return; // an empty box says nothing
        }
        self.blank.push(b);
        self.note(what, b.end - b.start);
    }

    /// Zero the creation and modification times of an `mvhd`, `tkhd` or `mdhd` (all begin with
    /// version and flags, then the two times: 32-bit in version 0, 64-bit in version 1).
    fn times(&mut self, data: &[u8], b: Bx) -> Result<(), ScrubError> {
        let width = match data.get(b.body) {
            Some(0) => 4,
            Some(1) => 8,
            _ => return Err(damaged(b.body, "unknown header box version")),
        };
        let range = (b.body + 4, b.body + 4 + 2 * width);
        let times = data
            .get(range.0..range.1)
            .filter(|_| range.1 <= b.end)
            .ok_or_else(|| damaged(b.start, "short header box"))?;
        if times.iter().any(|&t| t != 0) {
            self.zero.push(range);
            self.note(What::Times, 2 * width);
        }
        Ok(())
    }
}

/// Boxes that are ignorable padding wherever they appear.
fn is_padding(kind: &[u8; 4]) -> bool {
    kind == b"free" || kind == b"skip"
}

/// Scrub an MP4/MOV file.
///
/// Boxes are checked against short lists of known types at the top level and in `moov`, `trak`
/// and `mdia`: an unknown box there (a camera maker's `uuid` holding EXIF, a compressed `cmov`
/// movie, a HEIF-style `meta` item list) may hold metadata we cannot see into, so the file is
/// left alone with a warning rather than called scrubbed.
pub(super) fn scrub(data: &[u8]) -> Result<Verdict, ScrubError> {
    let mut plan = Plan::default();
    let mut moov_seen = false;
    for top in children(data, 0, data.len(), true)? {
        match &top.kind {
            b"moov" => {
                moov_seen = true;
                if let Some(warning) = moov(data, top, &mut plan)? {
                    return Ok(Verdict::Warn(warning));
                }
            }
            b"uuid" if top.is_xmp(data) => plan.blank(top, What::Xmp),
            b"ftyp" | b"mdat" | b"wide" | b"moof" | b"mfra" | b"sidx" | b"ssix" | b"styp"
            | b"prft" | b"emsg" | b"pdin" => {}
            k if is_padding(k) => {}
            _ => return Ok(Verdict::Warn(Warning::Mp4)),
        }
    }
    if !moov_seen {
        return Err(damaged(0, "no moov box"));
    }
    if plan.removed.is_empty() {
        return Ok(Verdict::Done(None));
    }
    let mut out = data.to_vec();
    for b in &plan.blank {
        let h = b.header_end(data);
        out[b.start + 4..b.start + 8].copy_from_slice(b"free");
        out[h..b.end].fill(0);
    }
    for &(from, to) in &plan.zero {
        out[from..to].fill(0);
    }
    Ok(Verdict::Done(Some((out, plan.removed))))
}

/// Plan the changes inside one `moov`; `Some(warning)` if the file must be left alone.
fn moov(data: &[u8], moov: Bx, plan: &mut Plan) -> Result<Option<Warning>, ScrubError> {
    for b in children(data, moov.body, moov.end, false)? {
        match &b.kind {
            b"mvhd" => plan.times(data, b)?,
            b"udta" | b"meta" => plan.blank(b, What::VideoMeta),
            b"uuid" if b.is_xmp(data) => plan.blank(b, What::Xmp),
            b"trak" => {
                if let Some(w) = trak(data, b, plan)? {
                    return Ok(Some(w));
                }
            }
            b"iods" | b"mvex" | b"pssh" => {}
            k if is_padding(k) => {}
            _ => return Ok(Some(Warning::Mp4)),
        }
    }
    Ok(None)
}

fn trak(data: &[u8], trak: Bx, plan: &mut Plan) -> Result<Option<Warning>, ScrubError> {
    for b in children(data, trak.body, trak.end, false)? {
        match &b.kind {
            b"tkhd" => plan.times(data, b)?,
            b"udta" | b"meta" => plan.blank(b, What::VideoMeta),
            b"uuid" if b.is_xmp(data) => plan.blank(b, What::Xmp),
            b"mdia" => {
                if let Some(w) = mdia(data, b, plan)? {
                    return Ok(Some(w));
                }
            }
            b"tref" | b"trgr" | b"edts" => {}
            k if is_padding(k) => {}
            _ => return Ok(Some(Warning::Mp4)),
        }
    }
    Ok(None)
}

fn mdia(data: &[u8], mdia: Bx, plan: &mut Plan) -> Result<Option<Warning>, ScrubError> {
    for m in children(data, mdia.body, mdia.end, false)? {
        match &m.kind {
            b"mdhd" => plan.times(data, m)?,
            b"hdlr" => {
                // version/flags (4), pre_defined (4), handler_type (4).
                let handler = data
                    .get(m.body + 8..m.body + 12)
                    .filter(|_| m.body + 12 <= m.end)
                    .ok_or_else(|| damaged(m.start, "short hdlr box"))?;
                if handler != b"vide" && handler != b"soun" {
                    return Ok(Some(Warning::Mp4DataTrack));
                }
            }
            b"minf" | b"elng" => {}
            k if is_padding(k) => {}
            _ => return Ok(Some(Warning::Mp4)),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::assert_robust;
    use super::super::{scrub as scrub_any, FileKind, Outcome, Removed};
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = u32::try_from(body.len() + 8)
            .unwrap()
            .to_be_bytes()
            .to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    /// A FullBox header box (`mvhd`, `tkhd`, `mdhd`) of version 0 with the given times and
    /// some following fields.
    fn header_box(kind: &[u8; 4], created: u32, modified: u32) -> Vec<u8> {
        let mut body = vec![0, 0, 0, 0];
        body.extend_from_slice(&created.to_be_bytes());
        body.extend_from_slice(&modified.to_be_bytes());
        body.extend_from_slice(&[0, 0, 0x03, 0xE8, 0, 0, 0, 0x10]);
        bx(kind, &body)
    }

    fn hdlr(handler: &[u8; 4]) -> Vec<u8> {
        let mut body = vec![0; 8];
        body.extend_from_slice(handler);
        body.extend_from_slice(&[0; 13]);
        bx(b"hdlr", &body)
    }

    /// ftyp, then moov (before mdat, as "fast start" files have it), then mdat; the `stco`
    /// offset points at the media sample in mdat.
    fn movie(handler: &[u8; 4], created: u32, with_meta: bool) -> (Vec<u8>, usize) {
        let ftyp = bx(b"ftyp", b"isom\0\0\x02\0isomiso2mp41");
        let build = |stco_offset: u32| {
            let mut stco = vec![0, 0, 0, 0, 0, 0, 0, 1];
            stco.extend_from_slice(&stco_offset.to_be_bytes());
            let stbl = bx(b"stbl", &bx(b"stco", &stco));
            let minf = bx(b"minf", &stbl);
            let mdia = bx(
                b"mdia",
                &[header_box(b"mdhd", created, created), hdlr(handler), minf].concat(),
            );
            let mut trak_parts = vec![header_box(b"tkhd", created, created), mdia];
            let mut moov_parts = vec![header_box(b"mvhd", created, created)];
            if with_meta {
                trak_parts.push(bx(b"udta", &bx(b"name", b"TRACK-CANARY")));
                moov_parts.push(bx(
                    b"udta",
                    &bx(b"\xA9xyz", b"\0\x12\0\0+42.1234+045.5678/GPS-CANARY"),
                ));
                moov_parts.push(bx(
                    b"meta",
                    &bx(b"keys", b"com.apple.quicktime.model SERIAL-CANARY"),
                ));
                let mut xmp = XMP_UUID.to_vec();
                xmp.extend_from_slice(b"<x:xmpmeta>OWNER-CANARY</x:xmpmeta>");
                moov_parts.push(bx(b"uuid", &xmp));
            }
            moov_parts.insert(1, bx(b"trak", &trak_parts.concat()));
            bx(b"moov", &moov_parts.concat())
        };
        let moov_len = build(0).len();
        let sample_at = ftyp.len() + moov_len + 8;
        let file = [
            ftyp,
            build(u32::try_from(sample_at).unwrap()),
            bx(b"mdat", b"MEDIA-SAMPLE"),
        ]
        .concat();
        (file, sample_at)
    }

    #[test]
    fn blanks_metadata_in_place_and_keeps_offsets() {
        let (input, sample_at) = movie(b"vide", 0xE000_0000, true);
        assert_eq!(detect_kind(&input), FileKind::Mp4);
        let Outcome::Scrubbed {
            bytes,
            kind,
            removed,
        } = scrub_any(&input).unwrap()
        else {
            panic!("expected Scrubbed")
        };
        assert_eq!(kind, FileKind::Mp4);
        assert_eq!(bytes.len(), input.len());
        for canary in [
            "GPS-CANARY",
            "SERIAL-CANARY",
            "OWNER-CANARY",
            "TRACK-CANARY",
        ] {
            assert!(
                !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
                "{canary} left"
            );
        }
        // The stco offset still points at the same sample, and media data is untouched.
        assert_eq!(&bytes[sample_at..], b"MEDIA-SAMPLE");
        assert_eq!(&bytes[sample_at - 8..], &input[sample_at - 8..]);
        // Only blanked boxes and the six time fields differ.
        let changed = bytes.iter().zip(&input).filter(|(a, b)| a != b).count();
        assert!(changed > 0);
        let whats: Vec<_> = removed.iter().map(|r| r.what).collect();
        assert_eq!(whats, [What::Times, What::VideoMeta, What::Xmp]);
        assert_eq!(removed[0].bytes, 6 * 4);
        // Same tree shape, metadata boxes now `free`; scrubbing again finds nothing.
        let tops: Vec<_> = children(&bytes, 0, bytes.len(), true)
            .unwrap()
            .iter()
            .map(|b| b.kind)
            .collect();
        assert_eq!(tops, [*b"ftyp", *b"moov", *b"mdat"]);
        let moov = children(&bytes, 0, bytes.len(), true).unwrap()[1];
        let inner: Vec<_> = children(&bytes, moov.body, moov.end, false)
            .unwrap()
            .iter()
            .map(|b| b.kind)
            .collect();
        assert_eq!(inner, [*b"mvhd", *b"trak", *b"free", *b"free", *b"free"]);
        assert_eq!(
            scrub_any(&bytes).unwrap(),
            Outcome::Clean {
                kind: FileKind::Mp4
            }
        );
    }

    fn detect_kind(b: &[u8]) -> FileKind {
        super::super::detect(b)
    }

    #[test]
    fn clean_movie_is_clean() {
        let (input, _) = movie(b"soun", 0, false);
        assert_eq!(
            scrub_any(&input).unwrap(),
            Outcome::Clean {
                kind: FileKind::Mp4
            }
        );
    }

    #[test]
    fn data_tracks_are_not_scrubbed() {
        let (input, _) = movie(b"meta", 5, true);
        assert_eq!(
            scrub_any(&input).unwrap(),
            Outcome::NotScrubbed {
                kind: FileKind::Mp4,
                warning: Warning::Mp4DataTrack
            }
        );
    }

    #[test]
    fn large_size_boxes_and_damage() {
        // A top-level XMP uuid box with a 64-bit size, then a moov.
        let mut xmp = vec![0, 0, 0, 1];
        xmp.extend_from_slice(b"uuid");
        xmp.extend_from_slice(&(16u64 + 16 + 10).to_be_bytes());
        xmp.extend_from_slice(&XMP_UUID);
        xmp.extend_from_slice(b"XMP-CANARY");
        let (movie_bytes, _) = movie(b"vide", 0, false);
        let input = [movie_bytes.clone(), xmp].concat();
        let Outcome::Scrubbed { bytes, .. } = scrub_any(&input).unwrap() else {
            panic!()
        };
        assert!(!bytes.windows(10).any(|w| w == b"XMP-CANARY"));
        assert_eq!(
            &bytes[movie_bytes.len()..movie_bytes.len() + 16],
            b"\0\0\0\x01free\0\0\0\0\0\0\0\x2a"
        );
        assert_eq!(
            scrub_any(&bytes).unwrap(),
            Outcome::Clean {
                kind: FileKind::Mp4
            }
        );

        let only_ftyp = bx(b"ftyp", b"isom\0\0\0\0");
        let mut bad = movie_bytes.clone();
        bad[movie_bytes.len() - 20] = 0xFF; // mdat size far past the end
        for c in [&only_ftyp, &bad, &movie_bytes[..movie_bytes.len() - 1]] {
            assert!(
                matches!(
                    scrub_any(c),
                    Err(ScrubError::Damaged {
                        kind: FileKind::Mp4,
                        ..
                    })
                ),
                "{c:?}"
            );
        }
    }

    #[test]
    fn unknown_boxes_are_not_scrubbed() {
        let (plain, _) = movie(b"vide", 7, true);
        // A maker's uuid box at the top level, a compressed movie, a top-level meta.
        let mut maker = vec![0u8; 16];
        maker.extend_from_slice(b"EXIF-CANARY");
        for extra in [
            bx(b"uuid", &maker),
            bx(b"cmov", b"zlib"),
            bx(b"meta", b"\0\0\0\0"),
        ] {
            let input = [plain.clone(), extra].concat();
            assert_eq!(
                scrub_any(&input).unwrap(),
                Outcome::NotScrubbed {
                    kind: FileKind::Mp4,
                    warning: Warning::Mp4
                }
            );
        }
        // The same inside moov: the moov box is the second top-level box; append to it.
        let moov = children(&plain, 0, plain.len(), true).unwrap()[1];
        let extra = bx(b"uuid", &maker);
        let grown = u32::try_from(moov.end - moov.start + extra.len()).unwrap();
        let mut input = plain[..moov.end].to_vec();
        input[moov.start..moov.start + 4].copy_from_slice(&grown.to_be_bytes());
        input.extend_from_slice(&extra);
        input.extend_from_slice(&plain[moov.end..]);
        assert_eq!(
            scrub_any(&input).unwrap(),
            Outcome::NotScrubbed {
                kind: FileKind::Mp4,
                warning: Warning::Mp4
            }
        );
    }

    #[test]
    fn version_1_times_and_mdat_to_end_of_file() {
        // moov after mdat; mdat with size 0 (runs to the end of the file); a version 1 mvhd
        // with 64-bit times.
        let mut mvhd = vec![1, 0, 0, 0];
        mvhd.extend_from_slice(&0x0000_0000_E000_0001u64.to_be_bytes());
        mvhd.extend_from_slice(&0x0000_0000_E000_0002u64.to_be_bytes());
        mvhd.extend_from_slice(&[0, 0, 0x03, 0xE8]);
        let moov = bx(b"moov", &bx(b"mvhd", &mvhd));
        let mut mdat = vec![0, 0, 0, 0];
        mdat.extend_from_slice(b"mdatMEDIA");
        let input = [bx(b"ftyp", b"qt  \0\0\0\0qt  "), moov, mdat].concat();
        let Outcome::Scrubbed { bytes, removed, .. } = scrub_any(&input).unwrap() else {
            panic!()
        };
        assert_eq!(
            removed,
            [Removed {
                what: What::Times,
                bytes: 16
            }]
        );
        let at = 20 + 8 + 8 + 4;
        assert_eq!(&bytes[at..at + 16], &[0; 16]);
        assert_eq!(bytes.len(), input.len());
        assert!(bytes.ends_with(b"\0\0\0\0mdatMEDIA"));
        assert_eq!(
            scrub_any(&bytes).unwrap(),
            Outcome::Clean {
                kind: FileKind::Mp4
            }
        );
        // mvhd of an unknown version is damage, not a guess.
        let mut bad = input.clone();
        bad[20 + 16] = 2;
        assert!(matches!(scrub_any(&bad), Err(ScrubError::Damaged { .. })));
        assert_robust(&input);
    }

    #[test]
    fn truncations_and_flips_never_panic() {
        assert_robust(&movie(b"vide", 7, true).0);
    }
}
