//! Scrub an MP4/MOV file too large to hold in memory (a phone video of minutes is hundreds of
//! MiB; the client must stay under 64 MiB whatever the size).
//!
//! The metadata of such a file is all outside its media data: the MP4 scrubber
//! ([`crate::scrub`]) changes bytes only inside `moov` and top-level XMP boxes, and keeps the file's
//! length and every offset. So this reads the top-level box headers by seeking, loads every box
//! except the large ones that hold media or padding (`mdat`, `free`, `skip`), and scrubs a
//! *sparse copy* in memory: the loaded boxes in their order, each large box replaced by an empty
//! one of its type. The result says, box by box, what to send: the scrubbed bytes of a loaded
//! box, or the original bytes of a large box copied from the file as a stream. The boxes the
//! scrubber looks at are byte for byte those of the file, and the ones it is not shown are the
//! ones it never changes.

use crate::scrub::{self, Outcome, Removed, Warning};
use std::io::{Read, Seek, SeekFrom};

/// Most bytes of a file's boxes other than media data held in memory (a long video's `moov` is
/// a few MiB; more is not a phone video we know how to scrub).
pub const MAX_LOADED: u64 = 24 * 1024 * 1024;

/// Boxes streamed from the file instead of loaded.
fn streamed(kind: &[u8; 4]) -> bool {
    kind == b"mdat" || kind == b"free" || kind == b"skip"
}

/// One part of the file to send.
#[derive(Debug, PartialEq, Eq)]
pub enum Part {
    /// These bytes (a loaded box, scrubbed).
    Bytes(Vec<u8>),
    /// `len` bytes of the file from `at`, as they are.
    Copy {
        /// Offset in the file.
        at: u64,
        /// Length.
        len: u64,
    },
}

/// What [`plan`] found.
#[derive(Debug)]
pub enum Plan {
    /// Send these parts, in order: the scrubbed file.
    Scrubbed {
        /// The parts.
        parts: Vec<Part>,
        /// What was removed.
        removed: Vec<Removed>,
    },
    /// Nothing to remove: send the file as it is.
    Clean,
    /// The scrubber will not touch it (see [`Warning`]): send it as it is, with the warning.
    NotScrubbed(Warning),
}

/// A top-level box of the file.
struct TopBox {
    at: u64,
    len: u64,
    kind: [u8; 4],
}

/// Errors are the scrubber's: a damaged file is said as one.
fn damaged(reason: &'static str) -> anyhow::Error {
    anyhow::anyhow!("the video's structure is damaged ({reason})")
}

/// The top-level boxes of a file of `len` bytes, from their headers.
fn top_boxes(file: &mut (impl Read + Seek), len: u64) -> anyhow::Result<Vec<TopBox>> {
    let mut boxes = Vec::new();
    let mut at = 0u64;
    while at < len {
        if len - at < 8 {
            return Err(damaged("truncated box header"));
        }
        let mut h = [0u8; 16];
        file.seek(SeekFrom::Start(at))?;
        file.read_exact(&mut h[..8])?;
        let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let kind = [h[4], h[5], h[6], h[7]];
        let size = match size32 {
            0 => len - at,
            1 => {
                if len - at < 16 {
                    return Err(damaged("truncated 64-bit box size"));
                }
                file.read_exact(&mut h[8..16])?;
                let mut b = [0u8; 8];
                b.copy_from_slice(&h[8..16]);
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        if size < 8 || size > len - at {
            return Err(damaged("box size out of bounds"));
        }
        boxes.push(TopBox {
            at,
            len: size,
            kind,
        });
        at += size;
    }
    Ok(boxes)
}

/// Plan the scrubbing of the MP4/MOV `file` of `len` bytes, holding at most [`MAX_LOADED`]
/// bytes of it (and the same again for the scrubbed copy).
pub fn plan(file: &mut (impl Read + Seek), len: u64) -> anyhow::Result<Plan> {
    let boxes = top_boxes(file, len)?;
    let loaded: u64 = boxes
        .iter()
        .filter(|b| !streamed(&b.kind))
        .map(|b| b.len)
        .sum();
    if loaded > MAX_LOADED {
        return Ok(Plan::NotScrubbed(Warning::TooLarge {
            max_mib: MAX_LOADED >> 20,
        }));
    }
    // The sparse copy, and where each box sits in it.
    let mut sparse = Vec::with_capacity(loaded as usize + 8 * boxes.len());
    let mut spans = Vec::with_capacity(boxes.len());
    for b in &boxes {
        let start = sparse.len();
        if streamed(&b.kind) {
            sparse.extend_from_slice(&8u32.to_be_bytes());
            sparse.extend_from_slice(&b.kind);
        } else {
            file.seek(SeekFrom::Start(b.at))?;
            let old = sparse.len();
            sparse.resize(old + b.len as usize, 0);
            file.read_exact(&mut sparse[old..])?;
        }
        spans.push((start, sparse.len()));
    }
    match scrub::scrub(&sparse)? {
        Outcome::Scrubbed { bytes, removed, .. } => {
            let parts = boxes
                .iter()
                .zip(&spans)
                .map(|(b, &(from, to))| {
                    if streamed(&b.kind) {
                        Part::Copy {
                            at: b.at,
                            len: b.len,
                        }
                    } else {
                        Part::Bytes(bytes[from..to].to_vec())
                    }
                })
                .collect();
            Ok(Plan::Scrubbed { parts, removed })
        }
        Outcome::Clean { .. } => Ok(Plan::Clean),
        Outcome::NotScrubbed { warning, .. } => Ok(Plan::NotScrubbed(warning)),
        Outcome::Unknown => Ok(Plan::NotScrubbed(Warning::Mp4)),
    }
}

/// A reader of the scrubbed file: the parts of a [`Plan::Scrubbed`], in order, the copied ones
/// read from the file as they are asked for (no part of the media is held).
pub struct PartsReader<'a, F> {
    file: &'a mut F,
    parts: std::vec::IntoIter<Part>,
    current: Option<Current>,
}

enum Current {
    Bytes(std::io::Cursor<Vec<u8>>),
    Copy { left: u64 },
}

impl<'a, F: Read + Seek> PartsReader<'a, F> {
    /// Read `parts`, copying from `file`.
    pub fn new(file: &'a mut F, parts: Vec<Part>) -> Self {
        PartsReader {
            file,
            parts: parts.into_iter(),
            current: None,
        }
    }
}

impl<F: Read + Seek> Read for PartsReader<'_, F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match &mut self.current {
                Some(Current::Bytes(c)) => {
                    let n = c.read(buf)?;
                    if n > 0 {
                        return Ok(n);
                    }
                    self.current = None;
                }
                Some(Current::Copy { left: 0 }) => self.current = None,
                Some(Current::Copy { left }) => {
                    let want = (*left).min(buf.len() as u64) as usize;
                    let n = self.file.read(&mut buf[..want])?;
                    if n == 0 {
                        // The file shrank since it was planned.
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                    *left -= n as u64;
                    return Ok(n);
                }
                None => match self.parts.next() {
                    None => return Ok(0),
                    Some(Part::Bytes(b)) => {
                        self.current = Some(Current::Bytes(std::io::Cursor::new(b)));
                    }
                    Some(Part::Copy { at, len }) => {
                        self.file.seek(SeekFrom::Start(at))?;
                        self.current = Some(Current::Copy { left: len });
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut v = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(payload);
        v
    }

    /// A small but well-formed movie: `ftyp`, a large `mdat` first, then a `moov` with an
    /// `mvhd` carrying times and a `udta` carrying a GPS position.
    fn movie(media: &[u8]) -> Vec<u8> {
        let mut mvhd = vec![0u8; 100];
        mvhd[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        mvhd[8..12].copy_from_slice(&0x1234_5679u32.to_be_bytes());
        let udta = bx(b"udta", &bx(b"\xa9xyz", b"+55.7558+037.6173/GPS-CANARY"));
        let moov = bx(b"moov", &[bx(b"mvhd", &mvhd), udta].concat());
        [
            bx(b"ftyp", b"isom\0\0\x02\0isomiso2mp41"),
            bx(b"mdat", media),
            moov,
        ]
        .concat()
    }

    #[test]
    fn a_large_movie_is_scrubbed_as_the_whole_file_would_be_and_media_is_streamed() {
        let media: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        let file = movie(&media);
        let whole = match scrub::scrub(&file).expect("scrub") {
            Outcome::Scrubbed { bytes, .. } => bytes,
            other => panic!("{other:?}"),
        };
        let mut cursor = std::io::Cursor::new(file.clone());
        let Plan::Scrubbed { parts, removed } = plan(&mut cursor, file.len() as u64).expect("plan")
        else {
            panic!("scrubbed")
        };
        assert!(!removed.is_empty());
        assert!(
            parts
                .iter()
                .any(|p| matches!(p, Part::Copy { len, .. } if *len > 3_000_000)),
            "the media is copied, not loaded"
        );
        let mut out = Vec::new();
        PartsReader::new(&mut cursor, parts)
            .read_to_end(&mut out)
            .expect("read");
        assert_eq!(
            out, whole,
            "the same bytes as scrubbing the whole file in memory"
        );
        assert!(!out.windows(10).any(|w| w == b"GPS-CANARY"));
    }

    #[test]
    fn damaged_or_clean_or_unknown_files_are_said() {
        let file = movie(b"frames");
        let mut cut = file.clone();
        cut.truncate(file.len() - 3);
        assert!(plan(&mut std::io::Cursor::new(&cut), cut.len() as u64).is_err());
        let mut zero_size = file.clone();
        zero_size[0..4].copy_from_slice(&[0, 0, 0, 4]);
        assert!(plan(
            &mut std::io::Cursor::new(&zero_size),
            zero_size.len() as u64
        )
        .is_err());
        let clean = [
            bx(b"ftyp", b"isom\0\0\x02\0isomiso2mp41"),
            bx(b"mdat", b"frames"),
            bx(b"moov", &bx(b"mvhd", &[0u8; 100])),
        ]
        .concat();
        assert!(matches!(
            plan(&mut std::io::Cursor::new(&clean), clean.len() as u64).expect("plan"),
            Plan::Clean
        ));
        // Flipping bytes never panics.
        for i in (0..file.len()).step_by(3) {
            let mut f = file.clone();
            f[i] ^= 0xa5;
            let _ = plan(&mut std::io::Cursor::new(&f), f.len() as u64);
        }
    }
}
