//! Where output goes.
//!
//! Human text goes to stderr so that stdout stays clean for data (a card, a decrypted report);
//! with `--json`, stdout carries one JSON object per line (`{"type": ..., ...}`) and nothing else,
//! and the human text is suppressed.

use serde_json::Value;
use std::io::{IsTerminal, Write};

/// How this run prints.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    /// Machine-readable output on stdout.
    pub json: bool,
}

impl Output {
    /// A line of human-readable progress or result, on stderr (hidden under `--json`).
    pub fn say(&self, line: impl AsRef<str>) {
        if !self.json {
            let mut e = std::io::stderr().lock();
            let _ = writeln!(e, "{}", line.as_ref());
        }
    }

    /// A JSON object on stdout, when `--json` is on.
    pub fn emit(&self, value: Value) {
        if self.json {
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "{value}");
            let _ = o.flush();
        }
    }

    /// Text that is the command's result (a card, a report) on stdout when not in JSON mode.
    pub fn data(&self, text: impl AsRef<str>) {
        if !self.json {
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "{}", text.as_ref());
        }
    }

    /// Whether progress bars make sense: a terminal on stderr and no `--json`.
    pub fn interactive(&self) -> bool {
        !self.json && std::io::stderr().is_terminal()
    }

    /// Replace the current terminal line with `line` (no newline): a progress display. Only
    /// call when [`Output::interactive`].
    pub fn progress(&self, line: &str) {
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r{line}\x1b[K");
        let _ = e.flush();
    }

    /// Clear a progress line.
    pub fn progress_done(&self) {
        self.progress("");
    }
}

/// `n` and the noun in the right number, for English messages: "1 report", "3 reports".
pub fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `3.2 of 16.0 MiB sent, 210 KiB/s, about 1m2s left`: what an upload has done so far.
/// `sent` is clamped to `total` (the count includes packet overhead).
pub fn upload_progress(sent: u64, total: u64, elapsed: std::time::Duration) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let sent = sent.min(total);
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { sent as f64 / secs } else { 0.0 };
    let mut line = format!(
        "{:.1} of {:.1} MiB sent",
        sent as f64 / MIB,
        total as f64 / MIB
    );
    if rate >= 1.0 {
        if rate >= MIB {
            line.push_str(&format!(", {:.1} MiB/s", rate / MIB));
        } else {
            line.push_str(&format!(", {:.0} KiB/s", rate / 1024.0));
        }
        let left = std::time::Duration::from_secs_f64((total - sent) as f64 / rate);
        if sent < total {
            line.push_str(&format!(
                ", about {} left",
                crate::retry::format_duration(left)
            ));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn upload_progress_reads_well() {
        assert_eq!(
            upload_progress(0, 16 << 20, Duration::ZERO),
            "0.0 of 16.0 MiB sent"
        );
        assert_eq!(
            upload_progress(4 << 20, 16 << 20, Duration::from_secs(20)),
            "4.0 of 16.0 MiB sent, 205 KiB/s, about 1m left"
        );
        assert_eq!(
            upload_progress(32 << 20, 16 << 20, Duration::from_secs(2)),
            "16.0 of 16.0 MiB sent, 8.0 MiB/s"
        );
    }
}
