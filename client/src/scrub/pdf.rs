//! PDF: blank the document information and uncompressed XMP in place, so no offset changes.
//!
//! A PDF (ISO 32000-1) is a sequence of numbered objects (`12 0 obj ... endobj`), each a
//! dictionary, array, string, number or a dictionary followed by `stream ... endstream`, then a
//! cross-reference table giving each object's byte offset and a `trailer` dictionary. Saving
//! changes often *appends* new objects, a new cross-reference section and a new trailer
//! (incremental update, 7.5.6), so older versions of everything stay in the file. Offsets are
//! absolute, so nothing may move: the file keeps its length.
//!
//! # What is done
//!
//! - The document information dictionary (`/Info` in every trailer, and in cross-reference
//!   stream dictionaries; 14.3.3): every string in it (`/Author`, `/Creator`, `/Producer`,
//!   `/Title`, `/Subject`, `/Keywords`, `/CreationDate`, `/ModDate`, and any private key such
//!   as `/Company`), literal `( ... )` or hexadecimal `< ... >`, is overwritten where it stands:
//!   literal contents with spaces, hex digits with `20` pairs, in every version of the object
//!   the file holds. A value given as a reference to a string object is blanked there. Keys,
//!   delimiters and lengths stay, so the dictionary still parses and every offset holds.
//! - Metadata streams (`/Type /Metadata`, XMP; 14.3.2), wherever they are attached (catalog,
//!   pages, images): when not compressed (no `/Filter`), the stream's bytes are overwritten with
//!   spaces, XML whitespace, so readers see an empty packet.
//!
//! `Removed::bytes` counts the bytes blanked. Strings and streams already blank count as nothing,
//! so a scrubbed file scrubs again to `Clean`.
//!
//! # When the file is left alone
//!
//! [`super::Outcome::NotScrubbed`] when a trailer has `/Encrypt` (strings and streams are
//! ciphertext we cannot read or blank meaningfully), when a metadata stream has a `/Filter`
//! (compressed: blanking it in place would leave an invalid stream, re-compressing changes its
//! length), when the file has object streams (`/Type /ObjStm`, compressed containers of
//! objects) and names a document information dictionary (which may then be, or have a newer
//! version, inside one), and when a reference from the document information cannot be found as a
//! plain object. A file whose syntax breaks (an unterminated string or dictionary, a stream
//! without `endstream`, nesting deeper than [`MAX_DEPTH`]) is [`ScrubError::Damaged`].
//!
//! # Not handled
//!
//! Metadata inside other objects: annotation and comment authors (`/T`), application data
//! (`/PieceInfo`), EXIF inside embedded JPEG photos, form field values, and the text and pages
//! of earlier versions kept by incremental updates. The file identifier (`/ID`) stays: it is
//! derived from a time and a file name but names neither, and readers need it.
//!
//! Objects are found by reading the file front to back as a reader repairing a damaged file
//! would (numbers, `obj`, the object, `stream` data skipped by `/Length` or up to `endstream`),
//! not through the cross-reference table, so objects every version of the table points to are
//! all found, and a stale or broken table does not hide any.

use super::{note, FileKind, Removed, ScrubError, Verdict, Warning, What};
use std::collections::{HashMap, HashSet};

/// Nesting of dictionaries and arrays beyond which the file is called damaged (real files nest
/// a few levels; the bound keeps the recursive reader's stack small).
const MAX_DEPTH: usize = 64;

fn damaged(offset: usize, reason: &'static str) -> ScrubError {
    ScrubError::Damaged {
        kind: FileKind::Pdf,
        offset,
        reason,
    }
}

/// PDF white-space characters (7.2.2).
fn is_ws(b: u8) -> bool {
    matches!(b, 0 | 9 | 10 | 12 | 13 | 32)
}

/// PDF delimiter characters (7.2.2).
fn is_delim(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

fn is_regular(b: u8) -> bool {
    !is_ws(b) && !is_delim(b)
}

/// Past white space and comments.
fn skip_ws(d: &[u8], mut pos: usize) -> usize {
    loop {
        match d.get(pos) {
            Some(&b) if is_ws(b) => pos += 1,
            Some(b'%') => {
                while d.get(pos).is_some_and(|&b| b != b'\n' && b != b'\r') {
                    pos += 1;
                }
            }
            _ => return pos,
        }
    }
}

/// The end of the run of regular characters starting at `pos`.
fn regular_end(d: &[u8], mut pos: usize) -> usize {
    while d.get(pos).is_some_and(|&b| is_regular(b)) {
        pos += 1;
    }
    pos
}

/// A non-negative integer token, if `tok` is one (saturating: only equality matters).
fn int(tok: &[u8]) -> Option<u64> {
    if tok.is_empty() || !tok.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(tok.iter().fold(0u64, |n, &c| {
        n.saturating_mul(10).saturating_add(u64::from(c - b'0'))
    }))
}

/// A name's characters after `/`, with `#xx` escapes decoded (7.3.5): `/Metad#61ta` is
/// `/Metadata` to a reader, so it must be to us.
fn decode_name(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if raw[i] == b'#' {
            if let (Some(h), Some(l)) = (
                raw.get(i + 1).and_then(|&b| hex(b)),
                raw.get(i + 2).and_then(|&b| hex(b)),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    out
}

/// A PDF value, as far as this module needs it.
enum Val {
    Dict(Vec<(Vec<u8>, Val)>),
    Str,
    Name(Vec<u8>),
    Int(u64),
    Ref(u64, u64),
    Other,
}

impl Val {
    /// The value of `key` in a dictionary.
    fn get(&self, key: &[u8]) -> Option<&Val> {
        match self {
            Val::Dict(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn name_is(&self, key: &[u8], name: &[u8]) -> bool {
        matches!(self.get(key), Some(Val::Name(n)) if n == name)
    }
}

/// Strings and references met while reading a value.
#[derive(Default)]
struct Found {
    /// (contents start, contents end, hexadecimal)
    strings: Vec<(usize, usize, bool)>,
    refs: Vec<(u64, u64)>,
}

/// Read one value at `pos` (after white space); its end.
fn value(d: &[u8], pos: usize, depth: usize, f: &mut Found) -> Result<(Val, usize), ScrubError> {
    if depth > MAX_DEPTH {
        return Err(damaged(pos, "nesting too deep"));
    }
    let pos = skip_ws(d, pos);
    let b = *d.get(pos).ok_or_else(|| damaged(pos, "truncated object"))?;
    match b {
        b'<' if d.get(pos + 1) == Some(&b'<') => {
            let mut entries = Vec::new();
            let mut p = pos + 2;
            loop {
                p = skip_ws(d, p);
                match d.get(p) {
                    None => return Err(damaged(pos, "unterminated dictionary")),
                    Some(b'>') if d.get(p + 1) == Some(&b'>') => {
                        return Ok((Val::Dict(entries), p + 2))
                    }
                    Some(b'/') => {}
                    Some(_) => return Err(damaged(p, "dictionary key is not a name")),
                }
                let key_end = regular_end(d, p + 1);
                let key = decode_name(&d[p + 1..key_end]);
                let (v, end) = element(d, key_end, depth + 1, f)?;
                entries.push((key, v));
                p = end;
            }
        }
        b'<' => {
            let len = d[pos + 1..]
                .iter()
                .position(|&c| c == b'>')
                .ok_or_else(|| damaged(pos, "unterminated hex string"))?;
            let end = pos + 1 + len;
            if !d[pos + 1..end]
                .iter()
                .all(|&c| c.is_ascii_hexdigit() || is_ws(c))
            {
                return Err(damaged(pos, "bad hex string"));
            }
            f.strings.push((pos + 1, end, true));
            Ok((Val::Str, end + 1))
        }
        b'(' => {
            let mut nest = 1usize;
            let mut p = pos + 1;
            loop {
                match d.get(p) {
                    None => return Err(damaged(pos, "unterminated string")),
                    Some(b'\\') => p += 1, // the escaped byte is skipped below
                    Some(b'(') => nest += 1,
                    Some(b')') => {
                        nest -= 1;
                        if nest == 0 {
                            break;
                        }
                    }
                    Some(_) => {}
                }
                p += 1;
            }
            f.strings.push((pos + 1, p, false));
            Ok((Val::Str, p + 1))
        }
        b'[' => {
            let mut p = pos + 1;
            loop {
                p = skip_ws(d, p);
                match d.get(p) {
                    None => return Err(damaged(pos, "unterminated array")),
                    Some(b']') => return Ok((Val::Other, p + 1)),
                    Some(_) => p = element(d, p, depth + 1, f)?.1,
                }
            }
        }
        b'/' => {
            let end = regular_end(d, pos + 1);
            Ok((Val::Name(decode_name(&d[pos + 1..end])), end))
        }
        _ if is_regular(b) => {
            let end = regular_end(d, pos);
            Ok((int(&d[pos..end]).map_or(Val::Other, Val::Int), end))
        }
        _ => Err(damaged(pos, "unexpected delimiter")),
    }
}

/// A dictionary value or array element: a value, or a reference `N G R`.
fn element(d: &[u8], pos: usize, depth: usize, f: &mut Found) -> Result<(Val, usize), ScrubError> {
    let (v, end) = value(d, pos, depth, f)?;
    if let Val::Int(num) = v {
        let g = skip_ws(d, end);
        let g_end = regular_end(d, g);
        if let Some(gen) = int(&d[g..g_end]) {
            let r = skip_ws(d, g_end);
            let r_end = regular_end(d, r);
            if &d[r..r_end] == b"R" {
                f.refs.push((num, gen));
                return Ok((Val::Ref(num, gen), r_end));
            }
        }
    }
    Ok((v, end))
}

/// One object as found in the file.
struct Obj {
    num: u64,
    gen: u64,
    /// Where its value starts (after `obj`).
    value_at: usize,
    is_dict: bool,
    is_str: bool,
    /// `/Type` of a dictionary.
    type_name: Option<Vec<u8>>,
    has_filter: bool,
    /// `/Info` of a cross-reference stream dictionary.
    info: Option<(u64, u64)>,
    has_encrypt: bool,
    /// The stream's data, if it is a stream.
    stream: Option<(usize, usize)>,
}

/// Every object and every trailer's `/Info` and `/Encrypt`, reading front to back.
struct Layout {
    objs: Vec<Obj>,
    trailer_info: Vec<(u64, u64)>,
    trailer_encrypt: bool,
    trailers: usize,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn read_layout(d: &[u8]) -> Result<Layout, ScrubError> {
    let mut l = Layout {
        objs: Vec::new(),
        trailer_info: Vec::new(),
        trailer_encrypt: false,
        trailers: 0,
    };
    let mut pos = 0;
    loop {
        pos = skip_ws(d, pos);
        let Some(&b) = d.get(pos) else { break };
        if !is_regular(b) {
            pos += 1; // a stray delimiter between objects: readers skip it too
            continue;
        }
        let end = regular_end(d, pos);
        let tok = &d[pos..end];
        if tok == b"trailer" {
            let (v, e) = value(d, end, 0, &mut Found::default())?;
            l.trailers += 1;
            if let Some(Val::Ref(n, g)) = v.get(b"Info") {
                l.trailer_info.push((*n, *g));
            }
            l.trailer_encrypt |= v.get(b"Encrypt").is_some();
            pos = e;
            continue;
        }
        pos = end;
        // `N G obj`?
        let Some(num) = int(tok) else { continue };
        let g = skip_ws(d, end);
        let g_end = regular_end(d, g);
        let Some(gen) = int(&d[g..g_end]) else {
            continue;
        };
        let o = skip_ws(d, g_end);
        let o_end = regular_end(d, o);
        if &d[o..o_end] != b"obj" {
            continue;
        }
        let (v, v_end) = value(d, o_end, 0, &mut Found::default())?;
        let mut obj = Obj {
            num,
            gen,
            value_at: o_end,
            is_dict: matches!(v, Val::Dict(_)),
            is_str: matches!(v, Val::Str),
            type_name: match v.get(b"Type") {
                Some(Val::Name(n)) => Some(n.clone()),
                _ => None,
            },
            has_filter: v.get(b"Filter").is_some(),
            info: match v.get(b"Info") {
                Some(Val::Ref(n, g)) if v.name_is(b"Type", b"XRef") => Some((*n, *g)),
                _ => None,
            },
            has_encrypt: v.name_is(b"Type", b"XRef") && v.get(b"Encrypt").is_some(),
            stream: None,
        };
        pos = v_end;
        let s = skip_ws(d, v_end);
        if obj.is_dict && d[s..].starts_with(b"stream") && regular_end(d, s) == s + 6 {
            // The keyword is followed by CRLF or LF (7.3.8.1); a lone CR is tolerated.
            let mut start = s + 6;
            if d[start..].starts_with(b"\r\n") {
                start += 2;
            } else if matches!(d.get(start), Some(b'\n' | b'\r')) {
                start += 1;
            }
            // By `/Length` when it is direct and lands on `endstream`; else up to `endstream`.
            let by_length = match v.get(b"Length") {
                Some(Val::Int(n)) => usize::try_from(*n)
                    .ok()
                    .and_then(|n| start.checked_add(n))
                    .filter(|&e| e <= d.len() && d[skip_ws(d, e)..].starts_with(b"endstream")),
                _ => None,
            };
            let (data_end, after) = match by_length {
                Some(e) => (e, skip_ws(d, e) + 9),
                None => {
                    let at = find(&d[start..], b"endstream")
                        .map(|i| start + i)
                        .ok_or_else(|| damaged(s, "stream without endstream"))?;
                    let mut e = at;
                    if e > start && d[e - 1] == b'\n' {
                        e -= 1;
                    }
                    if e > start && d[e - 1] == b'\r' {
                        e -= 1;
                    }
                    (e, at + 9)
                }
            };
            obj.stream = Some((start, data_end));
            pos = after;
        }
        l.objs.push(obj);
    }
    if l.objs.is_empty() && l.trailers == 0 {
        return Err(damaged(0, "no objects and no trailer"));
    }
    Ok(l)
}

/// Whether a string's contents (literal, or hex digits) are blank already.
fn is_blank(d: &[u8], (from, to, hex): (usize, usize, bool)) -> bool {
    if hex {
        d[from..to]
            .iter()
            .filter(|c| !is_ws(**c))
            .enumerate()
            .all(|(i, &c)| c == if i % 2 == 0 { b'2' } else { b'0' })
    } else {
        d[from..to].iter().all(|&c| c == b' ')
    }
}

/// Scrub a PDF.
pub(super) fn scrub(d: &[u8]) -> Result<Verdict, ScrubError> {
    let l = read_layout(d)?;
    if l.trailer_encrypt || l.objs.iter().any(|o| o.has_encrypt) {
        return Ok(Verdict::Warn(Warning::PdfEncrypted));
    }
    let mut info_refs = l.trailer_info.clone();
    info_refs.extend(l.objs.iter().filter_map(|o| o.info));
    let has_objstm = l
        .objs
        .iter()
        .any(|o| o.type_name.as_deref() == Some(b"ObjStm"));
    if has_objstm && !info_refs.is_empty() {
        return Ok(Verdict::Warn(Warning::PdfCompressed));
    }

    let mut removed: Vec<Removed> = Vec::new();
    let mut streams = Vec::new();
    for o in l
        .objs
        .iter()
        .filter(|o| o.type_name.as_deref() == Some(b"Metadata"))
    {
        let Some((from, to)) = o.stream else { continue };
        if o.has_filter {
            return Ok(Verdict::Warn(Warning::PdfCompressed));
        }
        if d[from..to].iter().any(|&c| !is_ws(c)) {
            streams.push((from, to));
            note(&mut removed, What::Xmp, to - from);
        }
    }

    // Every version of each document information dictionary, and string objects it refers to.
    // Indexed and deduplicated, so a file with many trailers or objects costs a pass or two.
    let mut index: HashMap<(u64, u64), Vec<&Obj>> = HashMap::new();
    for o in &l.objs {
        index.entry((o.num, o.gen)).or_default().push(o);
    }
    let versions = |r: (u64, u64)| index.get(&r).map(Vec::as_slice).unwrap_or(&[]).iter();
    info_refs.sort_unstable();
    info_refs.dedup();
    let mut seen_targets = HashSet::new();
    let mut strings = Vec::new();
    for r in info_refs {
        let mut any = false;
        for o in versions(r) {
            any = true;
            if !o.is_dict || o.stream.is_some() {
                return Ok(Verdict::Warn(Warning::Pdf));
            }
            let mut f = Found::default();
            value(d, o.value_at, 0, &mut f)?;
            strings.extend(f.strings);
            for target in f.refs {
                if !seen_targets.insert(target) {
                    continue;
                }
                let mut found = false;
                for t in versions(target) {
                    found = true;
                    if !t.is_str {
                        return Ok(Verdict::Warn(Warning::Pdf));
                    }
                    let mut tf = Found::default();
                    value(d, t.value_at, 0, &mut tf)?;
                    strings.extend(tf.strings);
                }
                if !found {
                    return Ok(Verdict::Warn(Warning::Pdf));
                }
            }
        }
        if !any {
            return Ok(Verdict::Warn(Warning::Pdf));
        }
    }
    strings.sort_unstable();
    strings.dedup();
    strings.retain(|&s| !is_blank(d, s));
    for &(from, to, _) in &strings {
        note(&mut removed, What::PdfInfo, to - from);
    }

    if removed.is_empty() {
        return Ok(Verdict::Done(None));
    }
    let mut out = d.to_vec();
    for (from, to, hex) in strings {
        if hex {
            for (i, c) in out[from..to].iter_mut().filter(|c| !is_ws(**c)).enumerate() {
                *c = if i % 2 == 0 { b'2' } else { b'0' };
            }
        } else {
            out[from..to].fill(b' ');
        }
    }
    for (from, to) in streams {
        out[from..to].fill(b' ');
    }
    Ok(Verdict::Done(Some((out, removed))))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::assert_robust;
    use super::super::{scrub as scrub_any, Outcome};
    use super::*;

    const XMP: &str = "<?xpacket begin=\"\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><dc:creator>XMP-CANARY</dc:creator></x:xmpmeta>\n<?xpacket end=\"w\"?>";

    /// A PDF from `objects` (numbered from `first`), with its cross-reference section and
    /// trailer; `prefix` is the file so far (for an incremental update), `prev` the offset of
    /// the previous section.
    fn pdf(
        prefix: &str,
        first: usize,
        objects: &[&str],
        trailer: &str,
        prev: Option<usize>,
    ) -> String {
        let mut out = prefix.to_string();
        let mut offsets = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.push_str(&format!("{} 0 obj\n{o}\nendobj\n", first + i));
        }
        let xref_at = out.len();
        out.push_str("xref\n");
        if first == 1 {
            out.push_str(&format!("0 {}\n0000000000 65535 f\r\n", objects.len() + 1));
        } else {
            out.push_str(&format!("{first} {}\n", objects.len()));
        }
        for off in offsets {
            out.push_str(&format!("{off:010} 00000 n\r\n"));
        }
        let prev = prev.map(|p| format!(" /Prev {p}")).unwrap_or_default();
        out.push_str(&format!(
            "trailer\n<< {trailer}{prev} >>\nstartxref\n{xref_at}\n%%EOF\n"
        ));
        out
    }

    fn dirty_pdf() -> (String, usize) {
        let metadata = format!(
            "<< /Type /Metadata /Subtype /XML /Length {} >>\nstream\n{XMP}\nendstream",
            XMP.len()
        );
        let objects = [
            "<< /Type /Catalog /Pages 2 0 R /Metadata 4 0 R >>",
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
            metadata.as_str(),
            "<< /Author (AUTHOR-CANARY \\(Ivanov\\) (nested)) /Creator <FEFF0043414E415259> /Producer (PRODUCER-CANARY) /CreationDate (D:20240101120000+03'00') /Title 6 0 R /Trapped /False >>",
            "(TITLE-CANARY)",
        ];
        let first = pdf(
            "%PDF-1.7\n%\u{e2}\u{e3}\n",
            1,
            &objects,
            "/Size 7 /Root 1 0 R /Info 5 0 R /ID [<0A1B> <0A1B>]",
            None,
        );
        let prev = first.rfind("xref\n").unwrap();
        // An incremental update with a new information dictionary.
        let update = pdf(
            &first,
            7,
            &["<</ModDate(D:20240202)/Company<55504441544543414E415259>>>"],
            "/Size 8 /Root 1 0 R /Info 7 0 R",
            Some(prev),
        );
        (update, prev)
    }

    /// Every `n` entry of every cross-reference section points at `N 0 obj`.
    fn assert_xref_holds(file: &[u8]) {
        let text = String::from_utf8_lossy(file);
        let mut checked = 0;
        for (at, _) in text.match_indices("\nxref\n") {
            let mut lines = text[at + 6..].lines();
            let head = lines.next().unwrap();
            let mut it = head.split(' ');
            let first: usize = it.next().unwrap().parse().unwrap();
            let count: usize = it.next().unwrap().parse().unwrap();
            for (i, line) in lines.take(count).enumerate() {
                if line.trim_end().ends_with('n') {
                    let off: usize = line[..10].parse().unwrap();
                    let want = format!("{} 0 obj", first + i);
                    assert!(text[off..].starts_with(&want), "{want} at {off}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 7);
    }

    #[test]
    fn blanks_information_and_xmp_in_place() {
        let (input, _) = dirty_pdf();
        let input = input.into_bytes();
        assert_xref_holds(&input);
        let Outcome::Scrubbed {
            bytes,
            kind,
            removed,
        } = scrub_any(&input).unwrap()
        else {
            panic!("expected Scrubbed")
        };
        assert_eq!(kind, FileKind::Pdf);
        assert_eq!(bytes.len(), input.len());
        let text = String::from_utf8_lossy(&bytes);
        for canary in [
            "XMP-CANARY",
            "AUTHOR-CANARY",
            "Ivanov",
            "43414E415259",
            "PRODUCER-CANARY",
            "TITLE-CANARY",
            "20240101",
            "20240202",
        ] {
            assert!(!text.contains(canary), "{canary} left");
        }
        assert_xref_holds(&bytes);
        // Keys and delimiters stay; strings are blank, hex strings spaces too.
        let author = format!("/Author ({}) /Creator <{}>", " ".repeat(33), "20".repeat(9));
        assert!(text.contains(&author));
        assert!(text.contains(&format!("/Company<{}>>>", "20".repeat(12))));
        assert!(text.contains("stream\n    "));
        let whats: Vec<_> = removed.iter().map(|r| r.what).collect();
        assert_eq!(whats, [What::Xmp, What::PdfInfo]);
        assert_eq!(removed[0].bytes, XMP.len());
        assert_eq!(
            scrub_any(&bytes).unwrap(),
            Outcome::Clean {
                kind: FileKind::Pdf
            }
        );
    }

    #[test]
    fn compressed_or_encrypted_metadata_is_left_alone() {
        let warn = |warning| {
            Ok(Outcome::NotScrubbed {
                kind: FileKind::Pdf,
                warning,
            })
        };
        let compressed = pdf(
            "%PDF-1.5\n",
            1,
            &[
                "<< /Type /Catalog /Metadata 2 0 R >>",
                "<< /Type /Metadata /Subtype /XML /Filter /FlateDecode /Length 8 >>\nstream\nx\u{9c}ZLIB..\nendstream",
            ],
            "/Size 3 /Root 1 0 R",
            None,
        );
        assert_eq!(
            scrub_any(compressed.as_bytes()),
            warn(Warning::PdfCompressed)
        );
        let object_streams = pdf(
            "%PDF-1.5\n",
            1,
            &[
                "<< /Type /Catalog >>",
                "<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length 4 >>\nstream\nzzzz\nendstream",
            ],
            "/Size 3 /Root 1 0 R /Info 9 0 R",
            None,
        );
        assert_eq!(
            scrub_any(object_streams.as_bytes()),
            warn(Warning::PdfCompressed)
        );
        let encrypted = pdf(
            "%PDF-1.4\n",
            1,
            &["<< /Type /Catalog >>", "<< /Author (AUTHOR-CANARY) >>"],
            "/Size 3 /Root 1 0 R /Info 2 0 R /Encrypt << /Filter /Standard >>",
            None,
        );
        assert_eq!(scrub_any(encrypted.as_bytes()), warn(Warning::PdfEncrypted));
        // An information dictionary that is not there.
        let missing = pdf("%PDF-1.4\n", 1, &["<< >>"], "/Info 5 0 R", None);
        assert_eq!(scrub_any(missing.as_bytes()), warn(Warning::Pdf));
    }

    #[test]
    fn clean_and_damaged() {
        let clean = pdf("%PDF-1.4\n", 1, &["<< /Type /Catalog >>"], "/Size 2", None);
        assert_eq!(
            scrub_any(clean.as_bytes()),
            Ok(Outcome::Clean {
                kind: FileKind::Pdf
            })
        );
        for bad in [
            "%PDF-1.4\n1 0 obj\n<< /Author (open\nendobj\n",
            "%PDF-1.4\n1 0 obj\n<< /Type /Metadata >>\nstream\nno end\n",
            "%PDF-1.4\n1 0 obj\n<< 5 >>\nendobj\n",
        ] {
            assert!(
                matches!(
                    scrub_any(bad.as_bytes()),
                    Err(ScrubError::Damaged {
                        kind: FileKind::Pdf,
                        ..
                    })
                ),
                "{bad}"
            );
        }
        let deep = format!("%PDF-1.4\n1 0 obj\n{}\nendobj\n", "[".repeat(100_000));
        assert!(scrub_any(deep.as_bytes()).is_err());
    }

    #[test]
    fn truncations_and_flips_never_panic() {
        assert_robust(dirty_pdf().0.as_bytes());
    }
}
