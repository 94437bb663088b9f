//! HEIC/HEIF/AVIF: blank the EXIF and XMP items in place, so no offset in the file changes.
//!
//! A HEIF file (ISO/IEC 23008-12) is an ISO-BMFF box tree (see [`super::mp4`]) whose pictures
//! are *items* described in the top-level `meta` box: `iinf` holds one `infe` per item (its id
//! and four-letter type: `hvc1`, `av01`, `grid` for pictures; `Exif`; `mime` with a content type,
//! `application/rdf+xml` for XMP; `uri `), `iloc` says where each item's bytes are (extents:
//! offsets and lengths, in the file or in the `idat` box of `meta`), `iref` links them (`cdsc`:
//! "this metadata item describes that picture"). Phones put GPS position, make, model, serial
//! number and the original times in the `Exif` item, and more in an XMP `mime` item.
//!
//! # What is done
//!
//! Offsets in `iloc` are absolute (or relative to `idat`), so nothing may move. For each
//! metadata item (`Exif`; every `mime` item; `uri ` items) this module
//!
//! 1. overwrites the bytes of each of its extents with zeros, where they stand, and
//! 2. renames its `infe` item type to `free`.
//!
//! `xml ` and `bxml` boxes directly in `meta` (XML metadata about the whole file) become `free`
//! boxes of the same size with zeroed payloads, as in the MP4 scrubber. The file keeps its
//! length; every picture item's bytes, every property (`iprp`: colour profile, size, rotation)
//! and every reference stay byte for byte. `Removed::bytes` counts the bytes zeroed.
//!
//! Why both steps: zeroing alone is what removes the information, and it is enough for privacy;
//! but an `Exif` item full of zeros is a damaged EXIF block that readers would try to parse and
//! complain about. Renamed, it is no longer EXIF or XMP to anyone: readers act on the item types
//! they know and pass over the others (libavif, libheif and exiftool all work so; we could not
//! check the wording of ISO/IEC 23008-12 itself, so the zeroing does not rely on it). Checked by
//! hand with libheif 1.15 and exiftool 12.57 on a HEIC and an AVIF that exiftool had given GPS,
//! artist, model and XMP: after scrubbing, exiftool reports no EXIF, GPS or XMP tag and no
//! warning, `heif-convert` decodes the same pixels as from the original and no longer copies
//! metadata into its output, and `heif-info` still lists the two items (because of their `cdsc`
//! reference) as metadata of type `free` holding only zeros. `free` is the ISO-BMFF word for
//! "ignorable"; it is not a registered item type, and it names no tool: a scrubbed file should
//! not say it went through Vigil. Removing the item from `iinf`/`iloc` would change their sizes
//! and hence offsets; shortening its extent length to 0 would be worse: in `iloc`, length 0
//! means "to the end".
//!
//! No maintained pure-Rust crate does this without decoding and re-encoding (the HEIF crates
//! found read metadata, or decode and encode pictures), hence this small parser.
//!
//! # When the file is left alone
//!
//! [`super::Outcome::NotScrubbed`], never a guess, when: a metadata item's bytes are built from
//! other items (`iloc` construction method 2) or kept in another file (a data reference), an
//! extent length is 0 ("to the end"), or its bytes are not inside a top-level `mdat` (method 0)
//! or `idat` (method 1); a metadata extent overlaps a picture's bytes; `infe` is of version 0 or
//! 1 (items without a type), `iloc` or `iinf` of an unknown version; `meta`'s handler is not
//! `pict`; the file has boxes this module does not know at the top level (`moov` of an image
//! sequence, whose tracks may carry metadata; a maker's `uuid`) or in `meta` (`ipro`: protected
//! items), or a `udes` property (a user description: name, text, tags). A length that points
//! past its box or the file is [`ScrubError::Damaged`].
//!
//! HEIF pictures have no creation or modification times of their own (unlike MP4's `mvhd`): the
//! times are in the EXIF item, zeroed with it. Image sequences have a `moov` with such times and
//! their own metadata boxes, and are left alone (above).
//!
//! Not looked at: metadata inside a picture's own coded bytes (HEVC SEI messages; cameras do not
//! put identifying data there that we know of).

use super::{note, FileKind, Removed, ScrubError, Verdict, Warning, What};
use std::collections::HashMap;

/// The item type metadata items are renamed to (see the module documentation).
const RENAMED: &[u8; 4] = b"free";

/// At most this many extents in `iloc`, all items together. Every extent can be zero bytes long
/// in the file (offset and length sizes 0), so the box's own size does not bound them; real
/// files have a few hundred (one per tile of a grid picture).
const MAX_EXTENTS: usize = 1 << 16;

fn damaged(offset: usize, reason: &'static str) -> ScrubError {
    ScrubError::Damaged {
        kind: FileKind::Heic,
        offset,
        reason,
    }
}

/// One box: where it starts, where its payload starts and where it ends.
#[derive(Clone, Copy, Debug)]
struct Bx {
    start: usize,
    body: usize,
    end: usize,
    kind: [u8; 4],
}

/// The boxes in `data[from..to]`, all checked to lie inside it. A size of 1 means a 64-bit
/// `largesize` follows the type; 0 means "to the end of the file" and is allowed only at the
/// top level.
fn children(data: &[u8], from: usize, to: usize, top_level: bool) -> Result<Vec<Bx>, ScrubError> {
    let mut boxes = Vec::new();
    let mut pos = from;
    while pos < to {
        let mut r = Rd::new(data, pos, to);
        let size32 = r
            .u32()
            .ok_or_else(|| damaged(pos, "truncated box header"))?;
        let kind = r
            .fourcc()
            .ok_or_else(|| damaged(pos, "truncated box header"))?;
        let size = match size32 {
            0 if top_level => (to - pos) as u64,
            0 => return Err(damaged(pos, "box size 0 inside another box")),
            1 => r
                .u64()
                .ok_or_else(|| damaged(pos, "truncated 64-bit box size"))?,
            n => u64::from(n),
        };
        if &kind == b"uuid" {
            r.skip(16)
                .ok_or_else(|| damaged(pos, "truncated uuid box"))?;
        }
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| pos.checked_add(s))
            .filter(|&e| e <= to && e >= r.pos)
            .ok_or_else(|| damaged(pos, "box size out of bounds"))?;
        boxes.push(Bx {
            start: pos,
            body: r.pos,
            end,
            kind,
        });
        pos = end;
    }
    Ok(boxes)
}

/// A bounded reader over `data[pos..end]`: every read checks what is there and returns `None`
/// past the end.
struct Rd<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Rd<'a> {
    fn new(data: &'a [u8], pos: usize, end: usize) -> Self {
        Rd {
            data,
            pos,
            end: end.min(data.len()),
        }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.end)?;
        let s = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        Some(u64::from_be_bytes(b.try_into().ok()?))
    }

    fn fourcc(&mut self) -> Option<[u8; 4]> {
        self.take(4).map(|b| [b[0], b[1], b[2], b[3]])
    }

    /// An `iloc` field of 0, 4 or 8 bytes (0: absent, read as 0).
    fn sized(&mut self, size: u8) -> Option<u64> {
        match size {
            0 => Some(0),
            4 => self.u32().map(u64::from),
            8 => self.u64(),
            _ => None,
        }
    }

    /// A null-terminated string; without its terminator, the rest of the box.
    fn cstr(&mut self) -> &'a [u8] {
        let rest = self.data.get(self.pos..self.end).unwrap_or(&[]);
        match rest.iter().position(|&b| b == 0) {
            Some(n) => {
                self.pos += n + 1;
                &rest[..n]
            }
            None => {
                self.pos = self.end;
                rest
            }
        }
    }
}

/// An item of `iinf`, as far as this module cares.
struct Item {
    id: u32,
    /// Where its four-letter type is in the file (to rename it).
    type_at: usize,
    /// `Some` for a metadata item.
    what: Option<What>,
}

/// Where an item's bytes are, from `iloc`.
struct Location {
    id: u32,
    method: u8,
    data_ref: u16,
    /// (offset, length), the base offset already added; a length of 0 means "to the end".
    extents: Vec<(u64, u64)>,
}

/// Changes to make, gathered before copying anything.
#[derive(Default)]
struct Plan {
    zero: Vec<(usize, usize)>,
    rename: Vec<usize>,
    blank: Vec<Bx>,
    removed: Vec<Removed>,
}

/// Scrub a HEIF file (HEIC, AVIF...).
pub(super) fn scrub(data: &[u8]) -> Result<Verdict, ScrubError> {
    let tops = children(data, 0, data.len(), true)?;
    if tops.first().map(|b| &b.kind) != Some(b"ftyp") {
        return Err(damaged(0, "first box is not ftyp"));
    }
    let mut meta = None;
    let mut mdats = Vec::new();
    for t in &tops[1..] {
        match &t.kind {
            b"meta" if meta.is_none() => meta = Some(*t),
            b"meta" => return Err(damaged(t.start, "a second top-level meta box")),
            b"mdat" => mdats.push((t.body, t.end)),
            b"free" | b"skip" => {}
            _ => return Ok(Verdict::Warn(Warning::Heic)),
        }
    }
    let meta = meta.ok_or_else(|| damaged(0, "no meta box"))?;
    let mut plan = Plan::default();
    if let Some(w) = plan_meta(data, meta, &mdats, &mut plan)? {
        return Ok(Verdict::Warn(w));
    }
    if plan.removed.is_empty() {
        return Ok(Verdict::Done(None));
    }
    let mut out = data.to_vec();
    for &(from, to) in &plan.zero {
        out[from..to].fill(0);
    }
    for &at in &plan.rename {
        out[at..at + 4].copy_from_slice(RENAMED);
    }
    for b in &plan.blank {
        out[b.start + 4..b.start + 8].copy_from_slice(b"free");
        // Keep a 64-bit size if there is one; zero the rest.
        let header = if data[b.start..b.start + 4] == [0, 0, 0, 1] {
            16
        } else {
            8
        };
        out[b.start + header..b.end].fill(0);
    }
    Ok(Verdict::Done(Some((out, plan.removed))))
}

/// Plan the changes inside the top-level `meta` box; `Some(warning)` if the file must be left
/// alone.
fn plan_meta(
    data: &[u8],
    meta: Bx,
    mdats: &[(usize, usize)],
    plan: &mut Plan,
) -> Result<Option<Warning>, ScrubError> {
    // `meta` is a FullBox: version (0) and flags come before its children.
    let mut r = Rd::new(data, meta.body, meta.end);
    if r.u32()
        .ok_or_else(|| damaged(meta.body, "short meta box"))?
        >> 24
        != 0
    {
        return Ok(Some(Warning::Heic));
    }
    let mut handler_ok = false;
    let mut items = Vec::new();
    let mut locations = Vec::new();
    let mut idat = None;
    for b in children(data, r.pos, meta.end, false)? {
        match &b.kind {
            b"hdlr" => {
                // version/flags (4), pre_defined (4), handler_type (4).
                let mut h = Rd::new(data, b.body, b.end);
                let handler = h
                    .skip(8)
                    .and_then(|_| h.fourcc())
                    .ok_or_else(|| damaged(b.start, "short hdlr box"))?;
                handler_ok = &handler == b"pict";
            }
            b"iinf" => match read_iinf(data, b, &mut items)? {
                true => {}
                false => return Ok(Some(Warning::Heic)),
            },
            b"iloc" => match read_iloc(data, b, &mut locations)? {
                true => {}
                false => return Ok(Some(Warning::Heic)),
            },
            b"idat" => idat = Some((b.body, b.end)),
            b"iprp" => {
                if has_user_description(data, b)? {
                    return Ok(Some(Warning::Heic));
                }
            }
            b"xml " | b"bxml" => {
                if b.end > b.body {
                    plan.blank.push(b);
                    note(&mut plan.removed, What::OtherItems, b.end - b.start);
                }
            }
            b"pitm" | b"iref" | b"dinf" | b"grpl" | b"free" | b"skip" => {}
            _ => return Ok(Some(Warning::Heic)),
        }
    }
    if !handler_ok {
        return Ok(Some(Warning::Heic));
    }
    // By id, so a file with many items costs no more than a few passes over them.
    let mut kinds: HashMap<u32, Option<What>> = HashMap::with_capacity(items.len());
    for item in &items {
        if kinds.insert(item.id, item.what).is_some() {
            return Err(damaged(item.type_at, "two items with the same id"));
        }
    }
    let is_meta = |id: u32| matches!(kinds.get(&id), Some(Some(_)));

    // Every picture's bytes (whatever is not a metadata item), to check no metadata extent
    // overlaps them: merged into sorted, disjoint ranges for a binary search.
    let mut pictures: Vec<(usize, usize)> = Vec::new();
    for loc in locations.iter().filter(|l| !is_meta(l.id)) {
        let source = match (loc.data_ref, loc.method) {
            (0, 0) => (0, data.len()),
            (0, 1) => match idat {
                Some(range) => range,
                None => continue,
            },
            _ => continue, // built from other items, or in another file: nothing of this file
        };
        for &(off, len) in &loc.extents {
            let start = usize::try_from(off)
                .ok()
                .and_then(|o| o.checked_add(source.0))
                .unwrap_or(usize::MAX)
                .min(source.1);
            let end = match len {
                0 => source.1,
                n => usize::try_from(n)
                    .ok()
                    .and_then(|n| start.checked_add(n))
                    .unwrap_or(usize::MAX)
                    .min(source.1),
            };
            pictures.push((start, end));
        }
    }
    let pictures = merge(pictures);
    let overlaps_picture = |start: usize, end: usize| {
        let i = pictures.partition_point(|&(_, e)| e <= start);
        pictures.get(i).is_some_and(|&(s, _)| s < end)
    };
    // Top-level boxes come in file order, so their payloads are sorted and disjoint.
    let in_mdat = |start: usize, end: usize| {
        let i = mdats.partition_point(|&(_, e)| e < end);
        mdats.get(i).is_some_and(|&(s, e)| s <= start && end <= e)
    };

    let mut zeroed: HashMap<u32, usize> = HashMap::new();
    for loc in locations.iter().filter(|l| is_meta(l.id)) {
        let container = match (loc.data_ref, loc.method) {
            (0, 0) => None,
            (0, 1) => match idat {
                Some(range) => Some(range),
                None => return Err(damaged(meta.start, "item in idat, but no idat box")),
            },
            _ => return Ok(Some(Warning::Heic)),
        };
        for &(off, len) in &loc.extents {
            if len == 0 {
                return Ok(Some(Warning::Heic));
            }
            let base = container.map_or(0, |c| c.0);
            let start = usize::try_from(off)
                .ok()
                .and_then(|o| o.checked_add(base))
                .ok_or_else(|| damaged(meta.start, "item offset out of range"))?;
            let end = usize::try_from(len)
                .ok()
                .and_then(|n| start.checked_add(n))
                .filter(|&e| e <= data.len())
                .ok_or_else(|| damaged(meta.start, "item extent past the end of the file"))?;
            // Only inside the data boxes: never a box header or the item tables.
            let inside = match container {
                Some((from, to)) => from <= start && end <= to,
                None => in_mdat(start, end),
            };
            if !inside || overlaps_picture(start, end) {
                return Ok(Some(Warning::Heic));
            }
            plan.zero.push((start, end));
            *zeroed.entry(loc.id).or_default() += end - start;
        }
    }
    // In `iinf` order, so the reporter reads them in the order the file lists them.
    for item in &items {
        if let Some(what) = item.what {
            plan.rename.push(item.type_at);
            note(
                &mut plan.removed,
                what,
                zeroed.get(&item.id).copied().unwrap_or(0),
            );
        }
    }
    Ok(None)
}

/// Sorted, disjoint ranges covering the same bytes as `ranges`.
fn merge(mut ranges: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    ranges.retain(|&(s, e)| s < e);
    ranges.sort_unstable();
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
    for (s, e) in ranges {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Read `iinf` into `items`; `false` if it is of a version or has entries this module does not
/// understand.
fn read_iinf(data: &[u8], iinf: Bx, items: &mut Vec<Item>) -> Result<bool, ScrubError> {
    let mut r = Rd::new(data, iinf.body, iinf.end);
    let version = r.u8().ok_or_else(|| damaged(iinf.body, "short iinf box"))?;
    let count_len = match version {
        0 => 2,
        1 => 4,
        _ => return Ok(false),
    };
    r.skip(3 + count_len)
        .ok_or_else(|| damaged(iinf.body, "short iinf box"))?;
    for infe in children(data, r.pos, iinf.end, false)? {
        if &infe.kind != b"infe" {
            // Nothing else belongs in iinf (free boxes may be anywhere).
            if &infe.kind == b"free" || &infe.kind == b"skip" {
                continue;
            }
            return Ok(false);
        }
        let mut e = Rd::new(data, infe.body, infe.end);
        let short = || damaged(infe.start, "short infe box");
        let version = e.u8().ok_or_else(short)?;
        e.skip(3).ok_or_else(short)?;
        let id = match version {
            2 => u32::from(e.u16().ok_or_else(short)?),
            3 => e.u32().ok_or_else(short)?,
            // Versions 0 and 1 have no item type; later versions are unknown.
            _ => return Ok(false),
        };
        e.u16().ok_or_else(short)?; // item_protection_index
        let type_at = e.pos;
        let item_type = e.fourcc().ok_or_else(short)?;
        let _name = e.cstr();
        let what = match &item_type {
            b"Exif" => Some(What::Exif),
            b"mime" => Some(if e.cstr() == b"application/rdf+xml" {
                What::Xmp
            } else {
                What::OtherItems
            }),
            b"uri " => Some(What::OtherItems),
            _ => None,
        };
        items.push(Item { id, type_at, what });
    }
    Ok(true)
}

/// Read `iloc` (versions 0, 1, 2) into `locations`; `false` if it is of a version this module
/// does not know or holds more than [`MAX_EXTENTS`] extents.
fn read_iloc(data: &[u8], iloc: Bx, locations: &mut Vec<Location>) -> Result<bool, ScrubError> {
    let mut r = Rd::new(data, iloc.body, iloc.end);
    let short = || damaged(iloc.start, "short iloc box");
    let version = r.u8().ok_or_else(short)?;
    if version > 2 {
        return Ok(false);
    }
    r.skip(3).ok_or_else(short)?;
    let sizes = r.u8().ok_or_else(short)?;
    let (offset_size, length_size) = (sizes >> 4, sizes & 0x0F);
    let sizes = r.u8().ok_or_else(short)?;
    let (base_size, index_size) = (sizes >> 4, if version > 0 { sizes & 0x0F } else { 0 });
    if [offset_size, length_size, base_size, index_size]
        .iter()
        .any(|s| ![0, 4, 8].contains(s))
    {
        return Err(damaged(iloc.body + 4, "iloc field size not 0, 4 or 8"));
    }
    let count = if version < 2 {
        u32::from(r.u16().ok_or_else(short)?)
    } else {
        r.u32().ok_or_else(short)?
    };
    let mut total = 0usize;
    // Each item takes at least 6 bytes, so a count larger than the box runs into `short`.
    for _ in 0..count {
        let id = if version < 2 {
            u32::from(r.u16().ok_or_else(short)?)
        } else {
            r.u32().ok_or_else(short)?
        };
        let method = if version > 0 {
            (r.u16().ok_or_else(short)? & 0x0F) as u8
        } else {
            0
        };
        let data_ref = r.u16().ok_or_else(short)?;
        let base = r.sized(base_size).ok_or_else(short)?;
        let extent_count = r.u16().ok_or_else(short)?;
        let mut extents = Vec::new();
        for _ in 0..extent_count {
            total += 1;
            if total > MAX_EXTENTS {
                return Ok(false);
            }
            r.sized(index_size).ok_or_else(short)?;
            let offset = r.sized(offset_size).ok_or_else(short)?;
            let length = r.sized(length_size).ok_or_else(short)?;
            let offset = base
                .checked_add(offset)
                .ok_or_else(|| damaged(iloc.start, "iloc offset overflows"))?;
            extents.push((offset, length));
        }
        locations.push(Location {
            id,
            method,
            data_ref,
            extents,
        });
    }
    Ok(true)
}

/// Whether `iprp`'s property container holds a `udes` (user description: a name, a text and
/// tags someone typed) property.
fn has_user_description(data: &[u8], iprp: Bx) -> Result<bool, ScrubError> {
    for b in children(data, iprp.body, iprp.end, false)? {
        if &b.kind == b"ipco" {
            for p in children(data, b.body, b.end, false)? {
                if &p.kind == b"udes" {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::assert_robust;
    use super::super::{detect, scrub as scrub_any, Outcome};
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

    /// A box with a 64-bit `largesize`.
    fn large_bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 0, 1];
        v.extend_from_slice(kind);
        v.extend_from_slice(&(body.len() as u64 + 16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn full(kind: &[u8; 4], version: u8, body: &[u8]) -> Vec<u8> {
        bx(kind, &[&[version, 0, 0, 0][..], body].concat())
    }

    fn infe(version: u8, id: u32, item_type: &[u8; 4], extra: &[u8]) -> Vec<u8> {
        let mut body = if version == 3 {
            id.to_be_bytes().to_vec()
        } else {
            u16::try_from(id).unwrap().to_be_bytes().to_vec()
        };
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(item_type);
        body.push(0); // empty name
        body.extend_from_slice(extra);
        full(b"infe", version, &body)
    }

    fn put(v: &mut Vec<u8>, size: u8, value: u64) {
        match size {
            0 => assert_eq!(value, 0, "a field of size 0 can only say 0"),
            4 => v.extend_from_slice(&u32::try_from(value).unwrap().to_be_bytes()),
            8 => v.extend_from_slice(&value.to_be_bytes()),
            _ => unreachable!(),
        }
    }

    /// How the test file lays out `iloc` and its data.
    #[derive(Clone, Copy)]
    struct Layout {
        version: u8,
        offset_size: u8,
        length_size: u8,
        base_size: u8,
        index_size: u8,
        /// The XMP item in `idat` (construction method 1) rather than in `mdat`.
        xmp_in_idat: bool,
        /// The mdat box with a 64-bit size.
        large_mdat: bool,
        /// The XMP item's construction method, when not in idat.
        xmp_method: u16,
    }

    const PLAIN: Layout = Layout {
        version: 1,
        offset_size: 4,
        length_size: 4,
        base_size: 0,
        index_size: 0,
        xmp_in_idat: false,
        large_mdat: false,
        xmp_method: 0,
    };

    const IMAGE: &[u8] = b"HEVC-CODED-PICTURE-BYTES-0123456789";
    const EXIF: &[u8] = b"\0\0\0\0MM\0\x2a\0\0\0\x08GPS-CANARY-55.7558N SERIAL-CANARY";
    const XMP: &[u8] = b"<x:xmpmeta><rdf:RDF>OWNER-CANARY</rdf:RDF></x:xmpmeta>";

    /// A small, structurally correct HEIC: ftyp; meta with hdlr `pict`, pitm, iinf (a `hvc1`
    /// picture, an `Exif` item, an XMP `mime` item), iref `cdsc` from both to the picture, iloc,
    /// optional idat; mdat with the picture, the EXIF and (unless in idat) the XMP. Returns the
    /// file and where the picture's bytes are.
    fn heic(l: Layout) -> (Vec<u8>, usize) {
        let ftyp = bx(b"ftyp", b"heic\0\0\0\0mif1heic");
        let build = |mdat_body: u64| {
            let hdlr = full(
                b"hdlr",
                0,
                &[&[0; 4][..], b"pict", &[0; 12], b"\0"].concat(),
            );
            let pitm = full(b"pitm", 0, &1u16.to_be_bytes());
            let mut iinf_body = 3u16.to_be_bytes().to_vec();
            iinf_body.extend(infe(2, 1, b"hvc1", b""));
            iinf_body.extend(infe(2, 2, b"Exif", b""));
            iinf_body.extend(infe(3, 3, b"mime", b"application/rdf+xml\0"));
            let iinf = full(b"iinf", 0, &iinf_body);
            let mut cdsc = Vec::new();
            for from in [2u16, 3] {
                cdsc.extend(bx(b"cdsc", &[from.to_be_bytes(), [0, 1], [0, 1]].concat()));
            }
            let iref = full(b"iref", 0, &cdsc);
            // (id, method, absolute or idat-relative offset, length)
            let mut entries = vec![
                (1u32, 0u16, mdat_body, IMAGE.len() as u64),
                (2, 0, mdat_body + IMAGE.len() as u64, EXIF.len() as u64),
            ];
            if l.xmp_in_idat {
                entries.push((3, 1, 0, XMP.len() as u64));
            } else {
                let at = mdat_body + (IMAGE.len() + EXIF.len()) as u64;
                entries.push((3, l.xmp_method, at, XMP.len() as u64));
            }
            let mut iloc = vec![
                (l.offset_size << 4) | l.length_size,
                (l.base_size << 4) | l.index_size,
            ];
            if l.version < 2 {
                iloc.extend_from_slice(&3u16.to_be_bytes());
            } else {
                iloc.extend_from_slice(&3u32.to_be_bytes());
            }
            for (id, method, offset, length) in entries {
                if l.version < 2 {
                    iloc.extend_from_slice(&u16::try_from(id).unwrap().to_be_bytes());
                } else {
                    iloc.extend_from_slice(&id.to_be_bytes());
                }
                if l.version > 0 {
                    iloc.extend_from_slice(&method.to_be_bytes());
                }
                iloc.extend_from_slice(&[0, 0]); // data_reference_index
                                                 // With a base offset field, the base carries the offset and the extent's own
                                                 // offset is 0 (or absent).
                let (base, off) = if l.base_size > 0 {
                    (offset, 0)
                } else {
                    (0, offset)
                };
                put(&mut iloc, l.base_size, base);
                iloc.extend_from_slice(&1u16.to_be_bytes());
                if l.version > 0 {
                    put(&mut iloc, l.index_size, 0);
                }
                put(&mut iloc, l.offset_size, off);
                put(&mut iloc, l.length_size, length);
            }
            let iloc = full(b"iloc", l.version, &iloc);
            let mut parts = vec![hdlr, pitm, iinf, iref, iloc];
            if l.xmp_in_idat {
                parts.push(bx(b"idat", XMP));
            }
            full(b"meta", 0, &parts.concat())
        };
        let meta_len = build(0).len();
        let header = if l.large_mdat { 16 } else { 8 };
        let mdat_body = ftyp.len() + meta_len + header;
        let mut payload = [IMAGE, EXIF].concat();
        if !l.xmp_in_idat {
            payload.extend_from_slice(XMP);
        }
        let mdat = if l.large_mdat {
            large_bx(b"mdat", &payload)
        } else {
            bx(b"mdat", &payload)
        };
        ([ftyp, build(mdat_body as u64), mdat].concat(), mdat_body)
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    /// The item types `iinf` lists, read back with this module's own parser.
    fn item_types(file: &[u8]) -> Vec<[u8; 4]> {
        let tops = children(file, 0, file.len(), true).unwrap();
        let meta = tops.iter().find(|b| &b.kind == b"meta").unwrap();
        let iinf = children(file, meta.body + 4, meta.end, false)
            .unwrap()
            .into_iter()
            .find(|b| &b.kind == b"iinf")
            .unwrap();
        let mut items = Vec::new();
        assert!(read_iinf(file, iinf, &mut items).unwrap());
        items
            .iter()
            .map(|i| file[i.type_at..i.type_at + 4].try_into().unwrap())
            .collect()
    }

    fn scrubbed(input: &[u8]) -> (Vec<u8>, Vec<Removed>) {
        match scrub_any(input).unwrap() {
            Outcome::Scrubbed {
                bytes,
                kind: FileKind::Heic,
                removed,
            } => (bytes, removed),
            other => panic!("expected Scrubbed, got {other:?}"),
        }
    }

    #[test]
    fn blanks_exif_and_xmp_items_in_place() {
        let (input, image_at) = heic(PLAIN);
        assert_eq!(detect(&input), FileKind::Heic);
        let (out, removed) = scrubbed(&input);
        assert_eq!(out.len(), input.len());
        for canary in [
            &b"GPS-CANARY-55.7558N"[..],
            b"SERIAL-CANARY",
            b"OWNER-CANARY",
        ] {
            assert!(contains(&input, canary));
            assert!(
                !contains(&out, canary),
                "{}",
                String::from_utf8_lossy(canary)
            );
        }
        // The picture's bytes are where they were, byte for byte.
        assert_eq!(&out[image_at..image_at + IMAGE.len()], IMAGE);
        // Metadata bytes are zeros; every other byte but the two renamed types is unchanged.
        let meta_at = image_at + IMAGE.len();
        assert!(out[meta_at..meta_at + EXIF.len() + XMP.len()]
            .iter()
            .all(|&b| b == 0));
        let changed = out.iter().zip(&input).filter(|(a, b)| a != b).count();
        let nonzero = |s: &[u8]| s.iter().filter(|&&b| b != 0).count();
        let renamed = |t: &[u8; 4]| t.iter().zip(RENAMED).filter(|(a, b)| a != b).count();
        assert_eq!(
            changed,
            nonzero(EXIF) + nonzero(XMP) + renamed(b"Exif") + renamed(b"mime")
        );
        assert_eq!(item_types(&out), [*b"hvc1", *b"free", *b"free"]);
        assert_eq!(
            removed,
            [
                Removed {
                    what: What::Exif,
                    bytes: EXIF.len()
                },
                Removed {
                    what: What::Xmp,
                    bytes: XMP.len()
                }
            ]
        );
        assert_eq!(
            scrub_any(&out).unwrap(),
            Outcome::Clean {
                kind: FileKind::Heic
            }
        );
    }

    #[test]
    fn every_iloc_version_and_field_size() {
        let mut layouts = Vec::new();
        for version in 0..=2 {
            for offset_size in [0, 4, 8] {
                for length_size in [4, 8] {
                    for base_size in [0, 4, 8] {
                        for index_size in [0, 4, 8] {
                            // An offset needs somewhere to go; version 0 has no index field.
                            if (offset_size == 0 && base_size == 0)
                                || (version == 0 && index_size != 0)
                            {
                                continue;
                            }
                            layouts.push(Layout {
                                version,
                                offset_size,
                                length_size,
                                base_size,
                                index_size,
                                xmp_in_idat: version > 0 && offset_size == 4,
                                large_mdat: base_size == 8,
                                ..PLAIN
                            });
                        }
                    }
                }
            }
        }
        assert!(layouts.len() > 40);
        for l in layouts {
            let (input, image_at) = heic(l);
            let (out, removed) = scrubbed(&input);
            assert_eq!(out.len(), input.len());
            assert!(!contains(&out, b"GPS-CANARY") && !contains(&out, b"OWNER-CANARY"));
            assert_eq!(&out[image_at..image_at + IMAGE.len()], IMAGE);
            assert_eq!(removed.len(), 2);
            assert_eq!(
                scrub_any(&out).unwrap(),
                Outcome::Clean {
                    kind: FileKind::Heic
                }
            );
        }
    }

    #[test]
    fn what_it_cannot_follow_is_left_alone() {
        let warn = Ok(Outcome::NotScrubbed {
            kind: FileKind::Heic,
            warning: Warning::Heic,
        });
        // XMP built from other items (construction method 2).
        let (input, _) = heic(Layout {
            xmp_method: 2,
            ..PLAIN
        });
        assert_eq!(scrub_any(&input), warn);
        // A metadata extent over the picture's bytes.
        let (mut input, image_at) = heic(PLAIN);
        let exif_offset = (image_at + IMAGE.len()) as u32;
        let at = input
            .windows(4)
            .position(|w| w == exif_offset.to_be_bytes())
            .unwrap();
        input[at..at + 4].copy_from_slice(&(image_at as u32).to_be_bytes());
        assert_eq!(scrub_any(&input), warn);
        // meta whose handler is not `pict`; an image sequence's `moov`; iloc version 3.
        let (plain, _) = heic(PLAIN);
        let at = plain.windows(4).position(|w| w == b"pict").unwrap();
        let mut not_pict = plain.clone();
        not_pict[at..at + 4].copy_from_slice(b"vide");
        assert_eq!(scrub_any(&not_pict), warn);
        let with_moov = [plain.clone(), bx(b"moov", b"")].concat();
        assert_eq!(scrub_any(&with_moov), warn);
        let at = plain.windows(4).position(|w| w == b"iloc").unwrap();
        let mut iloc3 = plain.clone();
        iloc3[at + 4] = 3;
        assert_eq!(scrub_any(&iloc3), warn);
        // EXIF outside mdat (here: over the ftyp box).
        let mut outside = plain.clone();
        let at = outside
            .windows(4)
            .position(|w| w == exif_offset.to_be_bytes())
            .unwrap();
        outside[at..at + 4].copy_from_slice(&8u32.to_be_bytes());
        assert_eq!(scrub_any(&outside), warn);
        // An infe of version 1 (no item type).
        let at = plain.windows(4).position(|w| w == b"infe").unwrap();
        let mut infe1 = plain.clone();
        infe1[at + 4] = 1;
        assert_eq!(scrub_any(&infe1), warn);
        // A user description property.
        let hdlr = full(
            b"hdlr",
            0,
            &[&[0; 4][..], b"pict", &[0; 12], b"\0"].concat(),
        );
        let iprp = bx(
            b"iprp",
            &bx(b"ipco", &full(b"udes", 0, b"en\0NAME-CANARY\0\0\0")),
        );
        let meta = full(b"meta", 0, &[hdlr, iprp].concat());
        let udes = [bx(b"ftyp", b"heic\0\0\0\0mif1heic"), meta].concat();
        assert_eq!(scrub_any(&udes), warn);
        // An iloc field size other than 0, 4 or 8 is damage.
        let at = plain.windows(4).position(|w| w == b"iloc").unwrap();
        let mut bad = plain.clone();
        bad[at + 8] = 0x24;
        assert!(matches!(
            scrub_any(&bad),
            Err(ScrubError::Damaged {
                kind: FileKind::Heic,
                ..
            })
        ));
    }

    #[test]
    fn xml_boxes_in_meta_become_free() {
        // A `meta` with an `xml ` box appended (its size grown to match), and no items.
        let hdlr = full(
            b"hdlr",
            0,
            &[&[0; 4][..], b"pict", &[0; 12], b"\0"].concat(),
        );
        let meta = full(
            b"meta",
            0,
            &[hdlr, full(b"xml ", 0, b"<x>XML-CANARY</x>")].concat(),
        );
        let input = [bx(b"ftyp", b"avif\0\0\0\0mif1avif"), meta, bx(b"mdat", b"")].concat();
        let (out, removed) = scrubbed(&input);
        assert!(!contains(&out, b"XML-CANARY"));
        assert_eq!(removed[0].what, What::OtherItems);
        assert_eq!(
            scrub_any(&out).unwrap(),
            Outcome::Clean {
                kind: FileKind::Heic
            }
        );
    }

    #[test]
    fn truncations_and_flips_never_panic() {
        assert_robust(&heic(PLAIN).0);
        assert_robust(
            &heic(Layout {
                version: 2,
                offset_size: 8,
                length_size: 8,
                base_size: 4,
                index_size: 4,
                xmp_in_idat: true,
                large_mdat: true,
                xmp_method: 0,
            })
            .0,
        );
    }
}
