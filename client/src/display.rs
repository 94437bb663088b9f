//! Report-derived text made safe to print for a person.
//!
//! A report comes from someone the NGO cannot vet, and its text reaches a terminal (or a file
//! or pager a terminal later shows). Every human printer of report-derived text goes through
//! this module: [`line`] for one-line fields, [`block`] for free text (the narrative, notes).
//!
//! Every character [`is_display_control`] names (C0 and C1 controls, DEL, the bidirectional
//! controls, the line and paragraph separators) is shown as a visible Rust-style escape such as
//! `\u{1b}`, on a terminal or not: an escape sequence cannot clear or rewrite a line, a carriage
//! return cannot go back over one, an override cannot reorder what follows. `--json` output is
//! not touched (serde escapes control characters, and scripts need the exact text).
//!
//! Free text keeps its line breaks, but every line of it is printed behind an indent that
//! [`block`] adds itself. Vigil's own trailing lines (the "Signed by" line of `inbox show`)
//! start in the first column, and no report-derived line can: a newline inside a field is
//! always followed by the indent, and a carriage return or a line separator is escaped, so a
//! report cannot end a line and start one of Vigil's.

use vigil_core::report::is_display_control;

/// One line of text: every control character, including newlines, shown as an escape.
pub fn line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_char(&mut out, c);
    }
    out
}

/// Multi-line text: each line escaped as by [`line`], lines after the first preceded by
/// `indent` (which must not be empty, see the module documentation). The caller prints the
/// first line after a label or the same indent.
pub fn block(text: &str, indent: &str) -> String {
    debug_assert!(!indent.is_empty());
    let mut out = String::with_capacity(text.len() + indent.len());
    for (i, l) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(indent);
        }
        out.push_str(&line(l));
    }
    out
}

fn push_char(out: &mut String, c: char) {
    if is_display_control(c) {
        out.extend(c.escape_unicode());
    } else {
        out.push(c);
    }
}

/// A size for people: "512 bytes", "1.5 MiB" (the unit word of small sizes in their language).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => crate::t!("unit-bytes", n = n),
        _ => format!("{v:.1} {}", UNITS[unit]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_become_visible_escapes() {
        assert_eq!(line("a\u{1b}[2Kb"), "a\\u{1b}[2Kb");
        assert_eq!(line("x\r\nSigned by"), "x\\u{d}\\u{a}Signed by");
        assert_eq!(line("\u{202e}evil\u{2066}"), "\\u{202e}evil\\u{2066}");
        assert_eq!(line("Ахмед, سلام, \t"), "Ахмед, سلام, \\u{9}");
        assert_eq!(
            block("one\ntwo\r\n\nSigned by x", "    "),
            "one\n    two\\u{d}\n    \n    Signed by x"
        );
        for s in [
            block("a\u{2028}b\u{85}c\u{9b}", "  "),
            line("\u{7f}\u{200f}\u{61c}"),
        ] {
            assert!(!s.chars().any(is_display_control_but_newline), "{s:?}");
        }
    }

    fn is_display_control_but_newline(c: char) -> bool {
        c != '\n' && is_display_control(c)
    }
}
