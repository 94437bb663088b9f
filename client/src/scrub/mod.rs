//! Strip identifying metadata from evidence attachments before they are encrypted (issue 13).
//!
//! A reporter's photo of a detention site can name the reporter more surely than anything they
//! write: phones put the GPS position, the device model and serial number, the owner's name and
//! the original time into every picture. The relay never sees attachments in the clear, but the
//! NGO does, and so does anyone who later obtains a copy of the evidence from the NGO, a court
//! file or a publication. So the client strips metadata by default, and tells the reporter what
//! it removed and what it could not.
//!
//! This module is pure: bytes in, bytes out, no files, no clock. It never re-encodes anything:
//! every segment or chunk that is kept is copied byte for byte (the compressed image data
//! included), so pixels are identical and the evidence has not been "edited".
//!
//! # What each format gets
//!
//! | format | removed | kept, and why |
//! |---|---|---|
//! | JPEG ([`jpeg`]) | APP1 (EXIF with GPS, camera, serial, times, and its thumbnail; XMP), APP2 other than ICC (MPF: the extra images phones append), APP3–APP13 (IPTC/Photoshop in APP13, JUMBF/C2PA in APP11, maker blocks), APP15, APP0 other than JFIF (JFXX thumbnails), APP14 other than Adobe, COM, and anything after EOI (MPF images, motion-photo video, appended data) | APP0 JFIF (its own thumbnail, if any, is zeroed out), APP2 `ICC_PROFILE` (colour: without it the colours change; profiles are generic such as sRGB or Display P3), APP14 `Adobe` (it says how to convert colours when decoding), all tables, frames, scans and entropy-coded data |
//! | PNG ([`png`]) | `eXIf` (and the older `exIf`/`zxIf`), `tEXt`, `zTXt`, `iTXt` (XMP, author, software, comment), `tIME`, `caBX` (C2PA content credentials: signer, device, edits), data after `IEND` | every other chunk, including `iCCP`, `sRGB`, `gAMA`, `cHRM` (colour) and all `IDAT`; kept chunks and their CRCs are untouched |
//! | WebP ([`webp`]) | `EXIF` and `XMP ` chunks (the `VP8X` EXIF and XMP flags are cleared to match), data after the RIFF end | every other chunk, including `ICCP`, `ANIM`/`ANMF`, `ALPH`, `VP8`/`VP8L`; the RIFF size is rewritten |
//! | MP4/MOV/3GP ([`mp4`]) | `udta` and `meta` boxes in `moov` and in each `trak` (GPS, make, model, software, owner, recording date), XMP `uuid` boxes: each turned into a `free` box of the same size, zero-filled; creation and modification times in `mvhd`/`tkhd`/`mdhd` zeroed | every other byte: the file keeps its length, so the absolute offsets in `stco`/`co64` stay right whether `moov` is before or after `mdat`. Files with a data track (GPS/sensor data, timed metadata, timecode, subtitles) or a box of a type it does not know where metadata could hide (a maker's `uuid`, `cmov`, a top-level `meta`) get [`Outcome::NotScrubbed`] |
//! | HEIC/HEIF/AVIF ([`heif`]) | the `Exif` item (GPS, make, model, serial, times), the XMP `mime` item and any other `mime`/`uri ` metadata item: their bytes zeroed where `iloc` puts them and their `infe` type renamed to `free`; `xml `/`bxml` boxes in `meta` turned into zero-filled `free` boxes | every other byte: picture items, properties (`colr` colour profile, `ispe`, `irot`), `iref`; the file keeps its length, so `iloc` offsets stay right. Metadata built from other items (`iloc` method 2), in another file, of length "to the end", outside `mdat`/`idat` or overlapping a picture's bytes, an image sequence (`moov`), unknown boxes, a `udes` property: [`Outcome::NotScrubbed`] |
//! | PDF ([`pdf`]) | every string in every version of the document information dictionary (`/Info` of each trailer and cross-reference stream: author, creator, producer, title, subject, keywords, dates, private keys), overwritten with spaces (hex strings with `20`); uncompressed `/Type /Metadata` (XMP) streams overwritten with spaces | every other byte; the file keeps its length, so `xref` offsets stay right. Encrypted files, compressed metadata streams, object streams with a document information dictionary: [`Outcome::NotScrubbed`]. Not reached: annotation authors, `/PieceInfo`, EXIF of embedded photos, earlier revisions of the text |
//! | Office (docx/xlsx/pptx, OpenDocument, OLE doc/xls/ppt) | nothing: [`Outcome::NotScrubbed`] | they carry author names, company, edit history and revision ids inside compressed parts |
//! | anything else | nothing: [`Outcome::Unknown`] | sent as it is |
//!
//! What was removed and why a file was left alone are ids ([`What`], [`Warning`]), not words: the
//! client says them in the reporter's language.
//!
//! Types are recognised from their first bytes ([`detect`]), never from the file name: a photo
//! renamed `notes.txt` is still scrubbed.
//!
//! # Limits and robustness
//!
//! Input is untrusted (a file a reporter received, or one crafted to crash the client). Every
//! length read from a file is checked against what is actually there before it is used; nothing
//! is allocated from a declared length; every loop advances. A damaged file of a known type gives
//! [`ScrubError::Damaged`] rather than a guess: the caller then asks the reporter whether to send
//! it unscrubbed. Inputs over [`MAX_SCRUB_LEN`] give [`ScrubError::TooLarge`].
//!
//! # Not handled
//!
//! The picture itself (faces, street signs, reflections), metadata inside formats listed above as
//! not scrubbed, steganographic or sensor-noise fingerprints (a camera can be identified from
//! its sensor noise in the pixels), and unknown chunks in WebP (kept as the WebP specification
//! asks). See "Evidence metadata" in `docs/threat-model.md`.

pub mod heif;
pub mod jpeg;
pub mod mp4;
pub mod pdf;
pub mod png;
pub mod webp;

#[cfg(test)]
mod testutil;

/// The largest input [`scrub`] accepts: 512 MiB.
///
/// Scrubbing holds the input and the output in memory at once, so this bounds the client's
/// memory at about twice this. Photos are a few MiB; a larger file is almost always a long video,
/// and the caller should [`detect`] it from its first bytes rather than read it all: a video
/// goes through [`crate::large_video`], which shows this scrubber only the boxes outside the
/// media data (MP4 scrubbing changes nothing else) and streams the rest.
pub const MAX_SCRUB_LEN: usize = 512 * 1024 * 1024;

/// What a file is, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// JPEG/JFIF/EXIF image (`FF D8 FF`).
    Jpeg,
    /// PNG image (the 8-byte PNG signature).
    Png,
    /// WebP image (`RIFF`, size, `WEBP`).
    WebP,
    /// HEIF family: HEIC, HEIF, AVIF (an ISO-BMFF `ftyp` box with an image brand).
    Heic,
    /// MP4, MOV, 3GP, M4A and other ISO-BMFF/QuickTime video or audio.
    Mp4,
    /// PDF document (`%PDF-`).
    Pdf,
    /// Office document: OOXML (docx/xlsx/pptx), OpenDocument, or OLE compound file (doc/xls/ppt).
    Office,
    /// Anything else.
    Other,
}

/// One kind of metadata removed, for telling the reporter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// What it was: a stable id the client turns into words in the reporter's language.
    pub what: What,
    /// How many bytes of the file it took (all occurrences together).
    pub bytes: usize,
}

/// A kind of metadata a scrubber removes.
///
/// The scrubbers are pure and know no language, so they name what they removed by this id; the
/// client says it through the Fluent message `scrub-what-{id}` (`client/i18n/*/vigil.ftl`), and
/// `--json` carries both the id (stable, for programs) and the English words (what it always
/// carried).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum What {
    /// JPEG APP1: EXIF and XMP together.
    ExifXmp,
    /// EXIF alone (PNG `eXIf`, WebP `EXIF`, HEIF `Exif` item).
    Exif,
    /// XMP alone (WebP `XMP `, MP4 XMP `uuid`, HEIF XMP item, PDF metadata stream).
    Xmp,
    /// JPEG APP13: IPTC and Photoshop resources.
    Iptc,
    /// JPEG APP2 MPF: extra images.
    Mpf,
    /// Other JPEG application segments.
    AppOther,
    /// JPEG comments.
    Comments,
    /// The thumbnail inside JPEG's JFIF segment.
    JfifThumbnail,
    /// Data after a JPEG's end (appended images, motion-photo video).
    TrailerMedia,
    /// Data after the end of a PNG or WebP.
    Trailer,
    /// PNG text chunks.
    PngText,
    /// PNG `tIME`.
    ModTime,
    /// C2PA content credentials.
    C2pa,
    /// MP4/MOV `udta` and `meta` boxes.
    VideoMeta,
    /// Creation and modification times in MP4/MOV headers.
    Times,
    /// HEIF metadata items other than EXIF and XMP, and XML boxes.
    OtherItems,
    /// The PDF document information dictionary.
    PdfInfo,
}

impl What {
    /// Every kind, for the catalogue tests.
    pub const ALL: [What; 17] = [
        What::ExifXmp,
        What::Exif,
        What::Xmp,
        What::Iptc,
        What::Mpf,
        What::AppOther,
        What::Comments,
        What::JfifThumbnail,
        What::TrailerMedia,
        What::Trailer,
        What::PngText,
        What::ModTime,
        What::C2pa,
        What::VideoMeta,
        What::Times,
        What::OtherItems,
        What::PdfInfo,
    ];

    /// Stable machine id: `--json` field `id`, and the Fluent message `scrub-what-{id}`.
    pub fn id(self) -> &'static str {
        match self {
            What::ExifXmp => "exif-xmp",
            What::Exif => "exif",
            What::Xmp => "xmp",
            What::Iptc => "iptc",
            What::Mpf => "mpf",
            What::AppOther => "app-other",
            What::Comments => "comments",
            What::JfifThumbnail => "jfif-thumbnail",
            What::TrailerMedia => "trailer-media",
            What::Trailer => "trailer",
            What::PngText => "png-text",
            What::ModTime => "mod-time",
            What::C2pa => "c2pa",
            What::VideoMeta => "video-meta",
            What::Times => "times",
            What::OtherItems => "other-items",
            What::PdfInfo => "pdf-info",
        }
    }

    /// In English, as `--json` has always carried it in `what`.
    pub fn english(self) -> &'static str {
        match self {
            What::ExifXmp => {
                "EXIF/XMP (GPS position, camera model and serial number, owner, times, thumbnail)"
            }
            What::Exif => "EXIF (GPS position, camera model and serial number, times)",
            What::Xmp => "XMP (author, editing software, place, times)",
            What::Iptc => "IPTC/Photoshop (author, captions, place, times)",
            What::Mpf => "extra images (MPF: previews, depth or HDR maps with their own metadata)",
            What::AppOther => {
                "other application metadata (maker notes, C2PA, stereo, JFXX thumbnail)"
            }
            What::Comments => "comments",
            What::JfifThumbnail => {
                "JFIF thumbnail (a small copy of the picture, possibly before editing)"
            }
            What::TrailerMedia => {
                "data after the end of the image (appended images, motion-photo video)"
            }
            What::Trailer => "data after the end of the image",
            What::PngText => "text (XMP, author, software, comments, creation time)",
            What::ModTime => "last-modification time",
            What::C2pa => "C2PA content credentials (signer, device, edit history)",
            What::VideoMeta => {
                "video metadata (GPS position, phone make and model, software, owner, recording date)"
            }
            What::Times => "creation and modification times",
            What::OtherItems => "other metadata items (XML descriptions, content credentials)",
            What::PdfInfo => {
                "document information (author, title, subject, keywords, the program that made it, times)"
            }
        }
    }
}

/// Why a file of a type known to carry metadata was left as it is.
///
/// Like [`What`], an id the client says in the reporter's language (`scrub-warn-{id}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Warning {
    /// A HEIC/HEIF/AVIF file built in a way the scrubber does not change safely.
    Heic,
    /// An MP4/MOV file with a box the scrubber does not know.
    Mp4,
    /// A video with a data track (GPS, sensor data, timecode, subtitles).
    Mp4DataTrack,
    /// A PDF whose structure the scrubber does not follow (an indirect value in its document
    /// information, a reference it cannot find).
    Pdf,
    /// A PDF whose metadata is (or may be) in compressed streams or object streams.
    PdfCompressed,
    /// An encrypted PDF.
    PdfEncrypted,
    /// Office documents.
    Office,
    /// A scrubbable type, but too large to scrub in memory on this device (the client decides
    /// the bound; `max_mib` is it).
    TooLarge {
        /// The bound, in MiB.
        max_mib: u64,
    },
    /// Any other type known to carry metadata.
    Other,
}

impl Warning {
    /// Every warning, for the catalogue tests.
    pub const ALL: [Warning; 9] = [
        Warning::Heic,
        Warning::Mp4,
        Warning::Mp4DataTrack,
        Warning::Pdf,
        Warning::PdfCompressed,
        Warning::PdfEncrypted,
        Warning::Office,
        Warning::TooLarge { max_mib: 48 },
        Warning::Other,
    ];

    /// Stable machine id: `--json` field `warning_id`, and the Fluent message `scrub-warn-{id}`
    /// (which takes `$mib` for [`Warning::TooLarge`]).
    pub fn id(self) -> &'static str {
        match self {
            Warning::Heic => "heic",
            Warning::Mp4 => "mp4",
            Warning::Mp4DataTrack => "mp4-data-track",
            Warning::Pdf => "pdf",
            Warning::PdfCompressed => "pdf-compressed",
            Warning::PdfEncrypted => "pdf-encrypted",
            Warning::Office => "office",
            Warning::TooLarge { .. } => "too-large",
            Warning::Other => "other",
        }
    }

    /// In English, as `--json` carries it in `warning`.
    pub fn english(self) -> String {
        match self {
            Warning::Heic => "this HEIC/HEIF photo is built in a way Vigil cannot change safely, so its EXIF (GPS position, camera, serial number, times) and XMP stay in it; convert the photo to JPEG first (for example with a screenshot or the phone's \"most compatible\" camera setting)".into(),
            Warning::Mp4 => "videos (MP4/MOV) carry metadata Vigil cannot remove yet: often the GPS position, the phone model, the recording time and sometimes the owner's name".into(),
            Warning::Mp4DataTrack => "this video has a data track besides picture and sound (often GPS or sensor data recorded with it, a timecode or subtitles) that Vigil cannot remove".into(),
            Warning::Pdf => "this PDF is built in a way Vigil cannot change safely, so its metadata stays in it: author name, the program and computer that made it, creation times, and earlier versions of the text".into(),
            Warning::PdfCompressed => "this PDF keeps its metadata (author name, the program that made it, times) in compressed parts that Vigil cannot change without rewriting the file; print it to a new PDF or scan it first".into(),
            Warning::PdfEncrypted => "this PDF is encrypted, so Vigil cannot remove its metadata (author name, the program that made it, times)".into(),
            Warning::Office => "Office documents carry metadata Vigil cannot remove: the author's and editors' names, company, edit times, revision history and comments".into(),
            Warning::TooLarge { max_mib } => format!("larger than {max_mib} MiB, too large to remove its metadata on this device"),
            Warning::Other => "this file may carry identifying metadata Vigil cannot remove".into(),
        }
    }
}

/// What [`scrub`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Metadata was found and removed; `bytes` is the file to send instead of the original.
    Scrubbed {
        /// The scrubbed file.
        bytes: Vec<u8>,
        /// Its type.
        kind: FileKind,
        /// What was removed, one entry per kind of metadata, in the order first found.
        removed: Vec<Removed>,
    },
    /// A supported type with nothing to remove: send the original.
    Clean {
        /// Its type.
        kind: FileKind,
    },
    /// A type known to carry identifying metadata that this module cannot strip: the reporter
    /// must be told before it is sent.
    NotScrubbed {
        /// Its type.
        kind: FileKind,
        /// Why, and what may be in it.
        warning: Warning,
    },
    /// Not a type we know: sent as it is.
    Unknown,
}

/// Why a file could not be scrubbed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScrubError {
    /// Over [`MAX_SCRUB_LEN`].
    #[error("the {kind:?} file is {len} bytes, more than the {max} bytes that can be scrubbed; send it without scrubbing only if you know it carries no identifying metadata")]
    TooLarge {
        /// Its type, from its first bytes.
        kind: FileKind,
        /// Its length.
        len: usize,
        /// [`MAX_SCRUB_LEN`].
        max: usize,
    },
    /// The file starts like `kind` but its structure is broken (truncated, a length pointing
    /// past the end, a missing end marker).
    #[error("the {kind:?} file is damaged at byte {offset} ({reason}); its metadata cannot be removed safely. Open and re-save it, or send it as it is only if you accept its metadata")]
    Damaged {
        /// Its type, from its first bytes.
        kind: FileKind,
        /// Where the problem was found.
        offset: usize,
        /// What was wrong.
        reason: &'static str,
    },
}

/// Recognise a file from its first bytes (a prefix of the file is enough: 4 KiB covers every
/// check here).
pub fn detect(bytes: &[u8]) -> FileKind {
    const PNG_SIG: &[u8] = b"\x89PNG\r\n\x1a\n";
    const OLE_SIG: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        FileKind::Jpeg
    } else if bytes.starts_with(PNG_SIG) {
        FileKind::Png
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        FileKind::WebP
    } else if let Some(kind) = detect_bmff(bytes) {
        kind
    } else if bytes
        .get(..1024)
        .unwrap_or(bytes)
        .windows(5)
        .any(|w| w == b"%PDF-")
    {
        // The PDF header may follow up to 1 KiB of other bytes (ISO 32000-1, annex H.3).
        FileKind::Pdf
    } else if bytes.starts_with(OLE_SIG) || is_office_zip(bytes) {
        FileKind::Office
    } else {
        FileKind::Other
    }
}

/// ISO-BMFF (MP4, HEIF) or QuickTime: a first box `ftyp` whose brands tell image from video, or
/// an old QuickTime file starting with a `moov`, `mdat` or `wide` box.
fn detect_bmff(bytes: &[u8]) -> Option<FileKind> {
    let box_type = bytes.get(4..8)?;
    match box_type {
        b"ftyp" => {
            // major brand, minor version, compatible brands, within the box's stated size.
            let size = u32::from_be_bytes(bytes[0..4].try_into().ok()?) as usize;
            let end = size.clamp(8, 4096).min(bytes.len());
            let major = bytes.get(8..12)?;
            let compatible = bytes.get(16..end).unwrap_or(&[]);
            const IMAGE: [&[u8; 4]; 10] = [
                b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif",
                b"avis",
            ];
            let is_image = IMAGE.iter().any(|b| major == *b)
                || compatible
                    .chunks_exact(4)
                    .any(|c| IMAGE.iter().any(|b| c == *b));
            Some(if is_image {
                FileKind::Heic
            } else {
                FileKind::Mp4
            })
        }
        b"moov" | b"mdat" | b"wide" => Some(FileKind::Mp4),
        _ => None,
    }
}

/// A zip whose first entries name OOXML or OpenDocument parts. Entry names are stored
/// uncompressed in local headers, so a search of the first 64 KiB finds them.
fn is_office_zip(bytes: &[u8]) -> bool {
    if !bytes.starts_with(b"PK\x03\x04") {
        return false;
    }
    let head = bytes.get(..64 * 1024).unwrap_or(bytes);
    const MARKS: [&[u8]; 5] = [
        b"[Content_Types].xml",
        b"word/",
        b"xl/",
        b"ppt/",
        b"application/vnd.oasis.opendocument",
    ];
    MARKS.iter().any(|m| head.windows(m.len()).any(|w| w == *m))
}

/// Remove identifying metadata from `bytes`, without re-encoding anything.
///
/// See the module documentation for what is removed from each type.
pub fn scrub(bytes: &[u8]) -> Result<Outcome, ScrubError> {
    let kind = detect(bytes);
    if bytes.len() > MAX_SCRUB_LEN {
        return Err(ScrubError::TooLarge {
            kind,
            len: bytes.len(),
            max: MAX_SCRUB_LEN,
        });
    }
    let result = match kind {
        FileKind::Jpeg => jpeg::scrub(bytes)?,
        FileKind::Png => png::scrub(bytes)?,
        FileKind::WebP => webp::scrub(bytes)?,
        FileKind::Heic => match heif::scrub(bytes)? {
            Verdict::Done(result) => result,
            Verdict::Warn(warning) => return Ok(Outcome::NotScrubbed { kind, warning }),
        },
        FileKind::Mp4 => match mp4::scrub(bytes)? {
            Verdict::Done(result) => result,
            Verdict::Warn(warning) => return Ok(Outcome::NotScrubbed { kind, warning }),
        },
        FileKind::Pdf => match pdf::scrub(bytes)? {
            Verdict::Done(result) => result,
            Verdict::Warn(warning) => return Ok(Outcome::NotScrubbed { kind, warning }),
        },
        FileKind::Office => {
            return Ok(Outcome::NotScrubbed {
                kind,
                warning: Warning::Office,
            })
        }
        FileKind::Other => return Ok(Outcome::Unknown),
    };
    Ok(match result {
        Some((out, removed)) => Outcome::Scrubbed {
            bytes: out,
            kind,
            removed,
        },
        None => Outcome::Clean { kind },
    })
}

/// What a format scrubber returns: `None` when there was nothing to remove.
type Scrubbed = Option<(Vec<u8>, Vec<Removed>)>;

/// What the in-place scrubbers (MP4, HEIF, PDF) decide: they may meet a structure they cannot
/// change safely, which is not damage but a reason to leave the file alone.
pub(super) enum Verdict {
    /// Scrubbed, or `None`: nothing to remove.
    Done(Scrubbed),
    /// Left alone, with this warning for the reporter.
    Warn(Warning),
}

/// Record `bytes` more of `what` in `removed`, one entry per kind in the order first found.
fn note(removed: &mut Vec<Removed>, what: What, bytes: usize) {
    match removed.iter_mut().find(|r| r.what == what) {
        Some(r) => r.bytes += bytes,
        None => removed.push(Removed { what, bytes }),
    }
}

/// Collects the output and the list of removals for one file.
struct Rewriter {
    out: Vec<u8>,
    removed: Vec<Removed>,
}

impl Rewriter {
    /// `capacity` is the input's length: the output is never longer (bounded by
    /// [`MAX_SCRUB_LEN`] through [`scrub`]).
    fn new(capacity: usize) -> Self {
        Rewriter {
            out: Vec::with_capacity(capacity),
            removed: Vec::new(),
        }
    }

    fn keep(&mut self, part: &[u8]) {
        self.out.extend_from_slice(part);
    }

    fn remove(&mut self, what: What, bytes: usize) {
        note(&mut self.removed, what, bytes);
    }

    fn finish(self) -> Scrubbed {
        if self.removed.is_empty() {
            None
        } else {
            Some((self.out, self.removed))
        }
    }
}

/// A JPEG full of identifying metadata (canaries `GPS-CANARY`, `SERIAL-CANARY`...) and the same
/// image without it, for tests elsewhere in the crate.
#[cfg(test)]
pub(crate) fn sample_jpegs() -> (Vec<u8>, Vec<u8>) {
    (jpeg::tests::dirty_jpeg(), jpeg::tests::clean_jpeg())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_from_magic_bytes() {
        assert_eq!(detect(&[0xFF, 0xD8, 0xFF, 0xE0]), FileKind::Jpeg);
        assert_eq!(detect(b"\x89PNG\r\n\x1a\n\0\0"), FileKind::Png);
        assert_eq!(detect(b"RIFF\x10\0\0\0WEBPVP8 "), FileKind::WebP);
        assert_eq!(detect(b"RIFF\x10\0\0\0AVI LIST"), FileKind::Other);
        assert_eq!(
            detect(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"),
            FileKind::Heic
        );
        assert_eq!(
            detect(b"\0\0\0\x18ftypmif1\0\0\0\0mif1avif"),
            FileKind::Heic
        );
        assert_eq!(detect(b"\0\0\0\x14ftypisom\0\0\0\0isom"), FileKind::Mp4);
        assert_eq!(detect(b"\0\0\0\x14ftypqt  \0\0\0\0qt  "), FileKind::Mp4);
        assert_eq!(detect(b"\0\0\0\x08wide\0\0\0\x08mdat"), FileKind::Mp4);
        assert_eq!(detect(b"%PDF-1.7\n"), FileKind::Pdf);
        assert_eq!(
            detect(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0"),
            FileKind::Office
        );
        assert_eq!(
            detect(b"PK\x03\x04\x14\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x13\0\0\0[Content_Types].xml"),
            FileKind::Office
        );
        assert_eq!(detect(b"PK\x03\x04\x14\0\0\0photo.jpg"), FileKind::Other);
        assert_eq!(detect(b"hello"), FileKind::Other);
        assert_eq!(detect(b""), FileKind::Other);
        // Truncated heads never panic.
        for n in 0..12 {
            let _ = detect(&b"\0\0\0\x18ftypheic"[..n.min(12)]);
            let _ = detect(&b"RIFF\x10\0\0\0WEBP"[..n]);
        }
    }

    #[test]
    fn unsupported_types_warn_and_others_pass() {
        let cases: [(&[u8], FileKind); 1] =
            [(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0", FileKind::Office)];
        for (bytes, kind) in cases {
            match scrub(bytes).unwrap() {
                Outcome::NotScrubbed { kind: k, warning } => {
                    assert_eq!(k, kind);
                    assert!(!warning.english().is_empty());
                }
                other => panic!("{kind:?}: {other:?}"),
            }
        }
        // A HEIF without its `meta` box, a PDF without objects or trailer, an MP4 without its
        // `moov` box cannot be shown, let alone scrubbed.
        for (bytes, kind) in [
            (&b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"[..], FileKind::Heic),
            (b"%PDF-1.4\n%AUTHOR-CANARY", FileKind::Pdf),
        ] {
            assert!(
                matches!(scrub(bytes), Err(ScrubError::Damaged { kind: k, .. }) if k == kind),
                "{kind:?}"
            );
        }
        // An MP4 without its `moov` box cannot be played, let alone scrubbed.
        assert!(matches!(
            scrub(b"\0\0\0\x14ftypisom\0\0\0\0isom"),
            Err(ScrubError::Damaged {
                kind: FileKind::Mp4,
                ..
            })
        ));
        assert_eq!(scrub(b"just some text").unwrap(), Outcome::Unknown);
        assert_eq!(scrub(b"").unwrap(), Outcome::Unknown);
    }

    #[test]
    fn too_large_is_refused_before_parsing() {
        // Only the length is looked at first; a sparse zeroed buffer is cheap to allocate.
        let mut big = vec![0u8; MAX_SCRUB_LEN + 1];
        big[..3].copy_from_slice(&[0xFF, 0xD8, 0xFF]);
        assert_eq!(
            scrub(&big),
            Err(ScrubError::TooLarge {
                kind: FileKind::Jpeg,
                len: MAX_SCRUB_LEN + 1,
                max: MAX_SCRUB_LEN
            })
        );
    }
}
