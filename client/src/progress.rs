//! Progress of long transfers: attachment uploads, downloads, encryption and export.
//!
//! A 1 GiB video on a mobile link takes many minutes, and a silent terminal looks like a hang
//! (people then kill the program, or give up). So a long transfer shows what it has done,
//! three ways depending on where the output goes:
//!
//! - on a terminal (and without `--json`): a progress bar (indicatif) with bytes, rate and time
//!   left, cleared when the transfer ends;
//! - when stderr is a file or a pipe (a script's log): a plain line every few seconds and one at
//!   the end, so the log shows that it moved and how fast, without carriage-return clutter;
//! - with `--json`: nothing. Machine readers get their one result object per step instead.
//!
//! Transfers under [`SHOW_FROM_BYTES`] show nothing: they end before anyone would wonder.
//!
//! The lines name what moves (a file name, an NGO) and never a key or plaintext; they pass
//! through [`crate::display::line`] since the names come from reports.

use crate::output::Output;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::{Duration, Instant};

/// Transfers shorter than this show no progress.
pub const SHOW_FROM_BYTES: u64 = 256 * 1024;

/// How often a plain (not terminal) progress line is written, unless `VIGIL_PROGRESS_INTERVAL_MS`
/// says otherwise (tests and log-scraping scripts set it).
const LINE_EVERY: Duration = Duration::from_secs(5);

/// What a transfer does; the words of its lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    /// Sending to a relay (attachments, a large envelope).
    Upload,
    /// Receiving attachments from a relay.
    Download,
    /// Encrypting a file into the outbox.
    Encrypt,
    /// Decrypting a file out of the vault (`inbox export`).
    Decrypt,
    /// Decrypting a received file to check it against the reporter's signed hash.
    Check,
}

enum Mode {
    Hidden,
    Bar(ProgressBar),
    Lines { every: Duration, last: Instant },
}

/// One transfer's progress display. Dropping it clears a bar; [`Progress::finish`] also writes
/// the closing plain line.
pub struct Progress {
    mode: Mode,
    what: String,
    total: u64,
    done: u64,
    /// Where this run started (a resumed transfer starts part way): rates count from here.
    base: u64,
    started: Instant,
}

impl Progress {
    /// Progress for `activity` on `name` (a file name or an NGO), of `total` bytes.
    pub fn new(out: &Output, activity: Activity, name: &str, total: u64) -> Self {
        let name = crate::display::line(name);
        let what = match activity {
            Activity::Upload => crate::t!("progress-upload", name = name.as_str()),
            Activity::Download => crate::t!("progress-download", name = name.as_str()),
            Activity::Encrypt => crate::t!("progress-encrypt", name = name.as_str()),
            Activity::Decrypt => crate::t!("progress-decrypt", name = name.as_str()),
            Activity::Check => crate::t!("progress-check", name = name.as_str()),
        };
        let mode = if out.json || total < SHOW_FROM_BYTES {
            Mode::Hidden
        } else if out.interactive() {
            let bar =
                ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(4));
            // The template is fixed (not from the catalogues): its placeholders are indicatif's
            // own, and numbers with units read the same in every language we ship.
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} ~{eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(what.clone());
            Mode::Bar(bar)
        } else {
            Mode::Lines {
                every: line_interval(),
                last: Instant::now(),
            }
        };
        Progress {
            mode,
            what,
            total,
            done: 0,
            base: 0,
            started: Instant::now(),
        }
    }

    /// The transfer resumes at `done` bytes (already there from an earlier run): shown as done,
    /// not counted in the rate.
    pub fn resume_at(&mut self, done: u64) {
        self.done = done.min(self.total);
        self.base = self.done;
        self.started = Instant::now();
        if let Mode::Bar(bar) = &self.mode {
            bar.set_position(self.done);
            bar.reset_eta();
        }
    }

    /// `done` bytes of the total are through.
    pub fn set(&mut self, done: u64) {
        self.done = done.min(self.total);
        match &mut self.mode {
            Mode::Hidden => {}
            Mode::Bar(bar) => bar.set_position(self.done),
            Mode::Lines { every, last } => {
                if last.elapsed() >= *every {
                    *last = Instant::now();
                    let line = self.line();
                    eprintln!("{line}");
                }
            }
        }
    }

    /// `n` more bytes are through.
    pub fn add(&mut self, n: u64) {
        self.set(self.done.saturating_add(n));
    }

    /// The transfer is complete: clear the bar, or write the closing plain line.
    pub fn finish(mut self) {
        if let Mode::Lines { .. } = self.mode {
            let secs = self.started.elapsed();
            let line = crate::t!(
                "progress-done",
                what = self.what.as_str(),
                total = crate::display::bytes(self.total),
                time = crate::retry::format_duration(secs),
                rate = crate::display::bytes(self.rate())
            );
            eprintln!("{line}");
        }
        self.clear();
    }

    fn clear(&mut self) {
        if let Mode::Bar(bar) = &self.mode {
            bar.finish_and_clear();
        }
        self.mode = Mode::Hidden;
    }

    /// Bytes per second in this run.
    fn rate(&self) -> u64 {
        let secs = self.started.elapsed().as_secs_f64();
        if secs <= 0.0 {
            return 0;
        }
        (self.done.saturating_sub(self.base) as f64 / secs) as u64
    }

    /// The plain line for where the transfer is now.
    fn line(&self) -> String {
        let rate = self.rate();
        let (done, total) = (
            crate::display::bytes(self.done),
            crate::display::bytes(self.total),
        );
        if rate == 0 {
            return crate::t!(
                "progress-line-start",
                what = self.what.as_str(),
                done = done,
                total = total
            );
        }
        let left =
            Duration::from_secs_f64(self.total.saturating_sub(self.done) as f64 / rate as f64);
        crate::t!(
            "progress-line",
            what = self.what.as_str(),
            done = done,
            total = total,
            rate = crate::display::bytes(rate),
            left = crate::retry::format_duration(left)
        )
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The plain-line interval: `VIGIL_PROGRESS_INTERVAL_MS` if set and sane, else [`LINE_EVERY`].
fn line_interval() -> Duration {
    std::env::var("VIGIL_PROGRESS_INTERVAL_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ms| (10..=3_600_000).contains(ms))
        .map_or(LINE_EVERY, Duration::from_millis)
}

/// A reader that reports every byte it yields to a [`Progress`].
pub struct Counting<'a, R> {
    inner: R,
    progress: &'a mut Progress,
}

impl<'a, R> Counting<'a, R> {
    /// Count what `inner` yields into `progress`.
    pub fn new(inner: R, progress: &'a mut Progress) -> Self {
        Counting { inner, progress }
    }
}

impl<R: std::io::Read> std::io::Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_small_transfers_show_nothing_and_lines_count_from_the_resume_point() {
        let json = Output { json: true };
        let p = Progress::new(&json, Activity::Upload, "Desk", 1 << 30);
        assert!(matches!(p.mode, Mode::Hidden));
        let plain = Output { json: false };
        let p = Progress::new(&plain, Activity::Download, "car.jpg", SHOW_FROM_BYTES - 1);
        assert!(matches!(p.mode, Mode::Hidden));

        // Tests run without a terminal on stderr: plain lines.
        let mut p = Progress::new(&plain, Activity::Decrypt, "video.mp4", 100 << 20);
        assert!(matches!(p.mode, Mode::Lines { .. }));
        p.resume_at(60 << 20);
        assert_eq!(p.rate(), 0, "resumed bytes are not this run's rate");
        let line = p.line();
        assert!(line.contains("60.0 MiB"), "{line}");
        assert!(line.contains("100.0 MiB"), "{line}");
        p.started -= Duration::from_secs(2);
        p.set(80 << 20);
        let rate = p.rate();
        assert!(
            (9 << 20..=10 << 20).contains(&rate),
            "20 MiB in about 2 s: {rate}"
        );
        let line = p.line();
        assert!(line.contains("80.0 MiB"), "{line}");
        assert!(line.contains("video.mp4"), "{line}");
        p.set(200 << 20);
        assert_eq!(p.done, 100 << 20, "never past the total");
    }

    #[test]
    fn a_counting_reader_reports_every_byte() {
        let plain = Output { json: true };
        let mut p = Progress::new(&plain, Activity::Encrypt, "x", 1 << 20);
        let data = vec![7u8; 300_000];
        let mut r = Counting::new(&data[..], &mut p);
        let mut sink = Vec::new();
        std::io::copy(&mut r, &mut sink).expect("copy");
        assert_eq!(p.done, 300_000);
    }
}
