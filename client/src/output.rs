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
}

/// `n` and the noun in the right number, for English messages: "1 report", "3 reports".
pub fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}
