//! ASCII armor: the strict PEM encoding of RFC 7468 (section 3, figure 3) with the label
//! `AGE ENCRYPTED FILE`, padded canonical base64 in 64-column lines.
//!
//! The spec notes armored files are malleable unless the decoder is strict, so this one is:
//! only whitespace may surround the block; every line but the last data line is exactly 64
//! columns; the last data line is 1 to 64 columns; padding is canonical and only at the end;
//! no headers, no blank lines, no spaces. LF and CRLF line endings are both accepted.

use std::io::{self, BufRead, Read, Write};

use base64::Engine;

use super::b64::{self, PADDED};
use super::limits::MAX_ARMOR_WHITESPACE;
use super::AgeError;

/// The first line of an armored file.
pub const BEGIN_LINE: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
/// The last line of an armored file.
pub const END_LINE: &[u8] = b"-----END AGE ENCRYPTED FILE-----";
/// Base64 columns per line.
pub const COLUMNS: usize = 64;
/// Bytes encoded per full line.
const BYTES_PER_LINE: usize = COLUMNS / 4 * 3;
/// A line we read may be 64 columns plus CR; anything longer is rejected on the spot.
const MAX_RAW_LINE: usize = COLUMNS + 1;

fn armor_err(reason: &'static str) -> io::Error {
    AgeError::InvalidArmor { reason }.into_io()
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Skips whitespace; fails if more than [`MAX_ARMOR_WHITESPACE`] bytes of it, or (when
/// `to_eof`) if anything else follows.
fn skip_ws<R: BufRead>(r: &mut R, to_eof: bool) -> io::Result<()> {
    let mut seen = 0usize;
    loop {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(());
        }
        let n = avail.iter().take_while(|&&b| is_ws(b)).count();
        seen += n;
        if seen > MAX_ARMOR_WHITESPACE {
            return Err(armor_err("too much whitespace around the armor"));
        }
        let stop = n < avail.len();
        r.consume(n);
        if stop {
            return if to_eof {
                Err(armor_err("there is data after the END line"))
            } else {
                Ok(())
            };
        }
    }
}

/// Reads one line into `buf` (without its LF, or CRLF). Returns its length and whether a
/// line ending was found (false at EOF).
fn read_line<R: BufRead>(r: &mut R, buf: &mut [u8; MAX_RAW_LINE]) -> io::Result<(usize, bool)> {
    let mut n = 0;
    let eol = loop {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            break false;
        }
        let (take, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (avail.len(), false),
        };
        if n + take > MAX_RAW_LINE {
            return Err(armor_err("a line is longer than 64 columns"));
        }
        buf[n..n + take].copy_from_slice(&avail[..take]);
        n += take;
        r.consume(take + usize::from(done));
        if done {
            break true;
        }
    };
    if eol && n > 0 && buf[n - 1] == b'\r' {
        n -= 1;
    }
    Ok((n, eol))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading data lines; `short_seen` once a line shorter than 64 columns (or with
    /// padding) was read, after which only the END line may come.
    Body { short_seen: bool, any_data: bool },
    /// The END line and trailing whitespace were verified.
    Ended,
}

/// Decodes an armored age file as it is read, enforcing the strict rules above. Errors are
/// `io::Error`s carrying [`AgeError::InvalidArmor`].
pub struct ArmoredReader<R: BufRead> {
    inner: R,
    decoded: [u8; BYTES_PER_LINE],
    start: usize,
    end: usize,
    state: State,
}

impl<R: BufRead> ArmoredReader<R> {
    /// Checks the leading whitespace and BEGIN line.
    pub fn new(mut inner: R) -> Result<Self, AgeError> {
        skip_ws(&mut inner, false)?;
        let mut line = [0u8; MAX_RAW_LINE];
        let (n, eol) = read_line(&mut inner, &mut line).map_err(|e| {
            // An over-long first line simply means "this is not armor".
            if AgeError::from_io_ref(&e).is_some() {
                AgeError::NotAgeFile.into_io()
            } else {
                e
            }
        })?;
        if &line[..n] != BEGIN_LINE || !eol {
            return Err(AgeError::NotAgeFile);
        }
        Ok(ArmoredReader {
            inner,
            decoded: [0; BYTES_PER_LINE],
            start: 0,
            end: 0,
            state: State::Body {
                short_seen: false,
                any_data: false,
            },
        })
    }

    /// Decodes the next line into `self.decoded`, or verifies the end of the armor.
    fn next_line(&mut self) -> io::Result<()> {
        let State::Body {
            short_seen,
            any_data,
        } = self.state
        else {
            return Ok(());
        };
        let mut buf = [0u8; MAX_RAW_LINE];
        let (n, eol) = read_line(&mut self.inner, &mut buf)?;
        let line = &buf[..n];
        if line == END_LINE {
            if !any_data {
                return Err(armor_err(
                    "there is no data between the BEGIN and END lines",
                ));
            }
            skip_ws(&mut self.inner, true)?;
            self.state = State::Ended;
            return Ok(());
        }
        if !eol {
            return Err(armor_err(
                "the END line is missing (the file is truncated?)",
            ));
        }
        if short_seen {
            return Err(armor_err(
                "a line shorter than 64 columns is not the last line before END",
            ));
        }
        if n == 0 {
            return Err(armor_err("there is an empty line"));
        }
        if n > COLUMNS {
            return Err(armor_err("a line is longer than 64 columns"));
        }
        if !line.iter().all(|&b| b64::is_b64_char(b) || b == b'=') {
            return Err(armor_err(
                "a line has a character outside base64 (whitespace or a header?)",
            ));
        }
        let short = n < COLUMNS || line.contains(&b'=');
        let len = PADDED
            .decode_slice(line, &mut self.decoded)
            .map_err(|_| armor_err("the base64 is not canonical or its padding is wrong"))?;
        self.start = 0;
        self.end = len;
        self.state = State::Body {
            short_seen: short,
            any_data: true,
        };
        Ok(())
    }
}

impl<R: BufRead> BufRead for ArmoredReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        // Each valid line yields at least one byte, so this loop ends after one line, or
        // when the armor is finished or broken.
        while self.start == self.end && self.state != State::Ended {
            self.next_line()?;
        }
        Ok(&self.decoded[self.start..self.end])
    }

    fn consume(&mut self, amt: usize) {
        self.start = (self.start + amt).min(self.end);
    }
}

impl<R: BufRead> Read for ArmoredReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// Writes ASCII-armored output: wrap the writer given to [`encrypt`](super::encrypt) in it,
/// then call [`ArmoredWriter::finish`] on what `StreamWriter::finish` returns.
pub struct ArmoredWriter<W: Write> {
    inner: W,
    pending: [u8; BYTES_PER_LINE],
    len: usize,
    started: bool,
}

impl<W: Write> ArmoredWriter<W> {
    /// Wraps `inner`; the BEGIN line is written with the first data (or by `finish`).
    pub fn new(inner: W) -> Self {
        ArmoredWriter {
            inner,
            pending: [0; BYTES_PER_LINE],
            len: 0,
            started: false,
        }
    }

    fn start(&mut self) -> io::Result<()> {
        if !self.started {
            self.inner.write_all(BEGIN_LINE)?;
            self.inner.write_all(b"\n")?;
            self.started = true;
        }
        Ok(())
    }

    /// Writes the last line and the END line, flushes and returns the inner writer.
    pub fn finish(mut self) -> Result<W, AgeError> {
        self.start()?;
        if self.len > 0 {
            let mut line = PADDED.encode(&self.pending[..self.len]);
            line.push('\n');
            self.inner.write_all(line.as_bytes())?;
        }
        self.inner.write_all(END_LINE)?;
        self.inner.write_all(b"\n")?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ArmoredWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        self.start()?;
        if self.len > 0 || data.len() < BYTES_PER_LINE {
            let n = (BYTES_PER_LINE - self.len).min(data.len());
            self.pending[self.len..self.len + n].copy_from_slice(&data[..n]);
            self.len += n;
            if self.len == BYTES_PER_LINE {
                let mut line = PADDED.encode(self.pending);
                line.push('\n');
                self.inner.write_all(line.as_bytes())?;
                self.len = 0;
            }
            return Ok(n);
        }
        // Whole lines straight from `data`, up to 64 lines per call.
        let lines = (data.len() / BYTES_PER_LINE).min(64);
        let mut out = String::with_capacity(lines * (COLUMNS + 1));
        for chunk in data[..lines * BYTES_PER_LINE].chunks(BYTES_PER_LINE) {
            PADDED.encode_string(chunk, &mut out);
            out.push('\n');
        }
        self.inner.write_all(out.as_bytes())?;
        Ok(lines * BYTES_PER_LINE)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn armor(data: &[u8]) -> Vec<u8> {
        let mut w = ArmoredWriter::new(Vec::new());
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    fn dearmor(text: &[u8]) -> Result<Vec<u8>, AgeError> {
        let mut r = ArmoredReader::new(text)?;
        let mut out = Vec::new();
        r.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trip_lengths() {
        for len in [1, 2, 3, 47, 48, 49, 96, 1000, 48 * 70 + 5] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let text = armor(&data);
            for line in text.split(|&b| b == b'\n') {
                assert!(line.len() <= COLUMNS || line == BEGIN_LINE);
            }
            assert_eq!(dearmor(&text).unwrap(), data, "len {len}");
            let crlf = String::from_utf8(text).unwrap().replace('\n', "\r\n");
            assert_eq!(dearmor(crlf.as_bytes()).unwrap(), data);
        }
    }

    fn rejected(text: &str) -> bool {
        matches!(
            dearmor(text.as_bytes()),
            Err(AgeError::InvalidArmor { .. } | AgeError::NotAgeFile)
        )
    }

    #[test]
    fn edge_cases() {
        let ok = String::from_utf8(armor(&[0xAB; 100])).unwrap();
        // Surrounding whitespace and a missing final newline are fine.
        assert!(dearmor(format!(" \n\t{ok}\n\n ").as_bytes()).is_ok());
        assert!(dearmor(ok.trim_end().as_bytes()).is_ok());
        // Everything else is rejected.
        assert!(rejected(&format!("x{ok}")));
        assert!(rejected(&format!("{ok}x")));
        assert!(rejected(&ok.replace("BEGIN AGE", "BEGIN age")));
        assert!(rejected(&ok.replacen('\n', "\n\n", 1)));
        assert!(rejected(&ok.replacen('\n', "\n ", 1)));
        assert!(rejected(&ok.replacen('\n', " \n", 2)));
        assert!(rejected(&ok.replace("==", "")));
        assert!(rejected(
            &ok.replace("\n-----END AGE ENCRYPTED FILE-----\n", "\n")
        ));
        assert!(rejected(
            "-----BEGIN AGE ENCRYPTED FILE-----\n-----END AGE ENCRYPTED FILE-----\n"
        ));
        // A short line in the middle, and a line of 65 columns.
        let lines: Vec<&str> = ok.lines().collect();
        let mid = format!("{}\n{}", &lines[1][..32], &lines[1][32..]);
        assert!(rejected(&ok.replacen(lines[1], &mid, 1)));
        let long = format!("{}{}", lines[1], &lines[2][..1]);
        assert!(rejected(&ok.replacen(lines[1], &long, 1)));
        // Non-canonical: the last character carries non-zero trailing bits.
        let last = lines[lines.len() - 2];
        let tweaked = last.replace("w==", "x==");
        assert_ne!(last, tweaked);
        assert!(rejected(&ok.replacen(last, &tweaked, 1)));
        // Too much leading whitespace.
        assert!(rejected(&format!(
            "{}{ok}",
            " ".repeat(MAX_ARMOR_WHITESPACE + 1)
        )));
    }
}
