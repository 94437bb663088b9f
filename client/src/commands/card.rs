//! `vigil card show`.

use super::Ctx;
use crate::cli::CardShowArgs;
use anyhow::{Context, Result};
use serde_json::json;
use vigil_core::card::{RecipientCard, MAX_CARD_LEN};
use vigil_fs::read_limited;

/// Widest QR code `card show --qr` prints, in terminal columns: a phone's terminal app, or a
/// laptop's default window, is 80 columns wide, and a code wider than its window cannot be
/// scanned at all.
pub const QR_MAX_COLUMNS: usize = 80;

/// Light modules drawn as blocks on a dark terminal (dark modules are the background), so
/// phones scan it from dark terminals too. Index: which quarters of a character cell are light
/// (1 = upper left, 2 = upper right, 4 = lower left, 8 = lower right).
const QUADRANTS: [char; 16] = [
    ' ', '\u{2598}', '\u{259D}', '\u{2580}', '\u{2596}', '\u{258C}', '\u{259E}', '\u{259B}',
    '\u{2597}', '\u{259A}', '\u{2590}', '\u{259C}', '\u{2584}', '\u{2599}', '\u{259F}', '\u{2588}',
];

/// Render `text` as a QR code for a terminal, at most [`QR_MAX_COLUMNS`] wide.
///
/// Each character cell shows two rows of modules (half-height blocks), one module per column
/// when that fits; a card with several staff keys does not fit that way, so it is drawn with
/// two modules per column as well (quarter blocks). Its modules are then twice as tall as they
/// are wide; a QR reader maps the code through its finder patterns, so a code stretched along
/// one axis reads like one seen at an angle. The quiet zone is two modules (the standard asks
/// for four; the dark terminal around the code adds the rest).
pub fn qr_text(text: &str) -> Result<String> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::L)
        .context(crate::t_err!("card-qr-too-large").complete())?;
    let width = code.width();
    let colors = code.to_colors();
    const QUIET: usize = 2;
    let size = width + 2 * QUIET;
    // Light outside the code and on light modules.
    let light = |x: usize, y: usize| -> bool {
        if x < QUIET || y < QUIET || x >= QUIET + width || y >= QUIET + width {
            return true;
        }
        colors[(y - QUIET) * width + (x - QUIET)] == qrcode::Color::Light
    };
    let per_column = if size <= QR_MAX_COLUMNS { 1 } else { 2 };
    let columns = size.div_ceil(per_column);
    if columns > QR_MAX_COLUMNS {
        anyhow::bail!(crate::t_err!("card-qr-too-wide", columns = columns));
    }
    let mut out = String::with_capacity(size.div_ceil(2) * (columns * 3 + 1));
    for row in (0..size).step_by(2) {
        for col in 0..columns {
            let mut mask = 0;
            for (bit, dx, dy) in [(1, 0, 0), (2, 1, 0), (4, 0, 1), (8, 1, 1)] {
                let (x, y) = (col * per_column + dx, row + dy);
                // One module per column: both halves of a cell show the same module.
                let x = if per_column == 1 { col } else { x };
                if x < size && y < size && light(x, y) {
                    mask |= bit;
                }
            }
            out.push(QUADRANTS[mask]);
        }
        out.push('\n');
    }
    out.pop();
    Ok(out)
}

/// Prefix of one part of a card too large for one QR code: `VIGIL-CARD-PART-i/n:` then the
/// i-th piece of the card text. A phone scans every part, in any order, and joins the pieces in
/// order; the result is the card text, checked by its signature as any card is.
pub const QR_PART_PREFIX: &str = "VIGIL-CARD-PART-";

/// The card as QR codes: one when it fits (every card with classic keys), else as few parts as
/// fit, each its own code. A card with post-quantum staff keys (about 2.6 KiB of text per key)
/// never fits one terminal-sized code.
pub fn qr_parts(text: &str) -> Result<Vec<String>> {
    let one_error = match qr_text(text) {
        Ok(one) => return Ok(vec![one]),
        Err(e) => e,
    };
    // Card text is ASCII (the prefix, base64url and a dot), so byte offsets are char boundaries.
    if !text.is_ascii() {
        return Err(one_error);
    }
    for parts in 2..=64usize {
        let piece = text.len().div_ceil(parts);
        let codes: Result<Vec<String>> = text
            .as_bytes()
            .chunks(piece)
            .enumerate()
            .map(|(i, chunk)| {
                let chunk = std::str::from_utf8(chunk).unwrap_or_default();
                qr_text(&format!("{QR_PART_PREFIX}{}/{parts}:{chunk}", i + 1))
            })
            .collect();
        if let Ok(codes) = codes {
            return Ok(codes);
        }
    }
    Err(one_error)
}

/// Show a card.
pub fn show(ctx: &Ctx, a: CardShowArgs) -> Result<()> {
    let text = match &a.file {
        Some(path) => String::from_utf8(read_limited(path, MAX_CARD_LEN as u64)?)
            .context(crate::t_err!("card-not-text").complete())?,
        None => crate::state::Ngo::card_text(&ctx.home)?
            .ok_or_else(|| anyhow::Error::from(crate::t_err!("card-none").not_found()))?,
    };
    let card = RecipientCard::parse(&text)?;
    let text = text.trim();
    ctx.out
        .say(crate::t!("card-show-ngo", name = card.name.as_str()));
    ctx.out
        .say(crate::t!("card-show-relay", relay = card.relay.as_str()));
    ctx.out.say(crate::t!(
        "card-show-cert",
        fp = card.relay_fingerprint.to_colon_hex()
    ));
    if let Some(next) = card.relay_fingerprint_next {
        ctx.out
            .say(crate::t!("card-show-next-cert", fp = next.to_colon_hex()));
    }
    for r in &card.more_relays {
        ctx.out
            .say(crate::t!("card-show-more-relay", relay = r.addr.as_str()));
        ctx.out.say(crate::t!(
            "card-show-cert",
            fp = r.fingerprint.to_colon_hex()
        ));
        if let Some(next) = r.fingerprint_next {
            ctx.out
                .say(crate::t!("card-show-next-cert", fp = next.to_colon_hex()));
        }
    }
    ctx.out
        .say(crate::t!("card-show-keys", keys = (card.recipients.len())));
    ctx.out
        .say(crate::t!("card-show-sn", sn = card.safety_number()));
    if let Some(e) = card.expires {
        ctx.out.say(crate::t!(
            "card-show-valid",
            when = vigil_core::card::format_utc(e)
        ));
    }
    if a.qr {
        let codes = qr_parts(text)?;
        let n = codes.len();
        if n == 1 {
            ctx.out.data(&codes[0]);
        } else {
            for (i, code) in codes.iter().enumerate() {
                ctx.out
                    .data(crate::t!("card-qr-part", part = (i + 1), parts = n));
                ctx.out.data(code);
            }
        }
    } else {
        ctx.out.data(text);
    }
    ctx.out.emit(json!({
        "type": "card", "name": card.name, "relay": card.relay,
        "relay_fingerprint": card.relay_fingerprint.to_string(),
        "relay_fingerprint_next": card.relay_fingerprint_next.map(|f| f.to_string()), "mailbox": card.mailbox.to_string(),
        "recipients": card.recipients.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "identity_key": card.identity_key.to_string(), "safety_number": card.safety_number(),
        "created": card.created, "card": text, "expires": card.expires,
        "relays": relays_json(&card),
    }));
    Ok(())
}

/// Every relay of `card`, in order, as `--json` lists them (the first also stays in the
/// top-level `relay` fields, as before cards had several).
pub fn relays_json(card: &RecipientCard) -> serde_json::Value {
    card.relays()
        .iter()
        .map(|r| {
            json!({
                "relay": r.addr, "relay_fingerprint": r.fingerprint.to_string(),
                "relay_fingerprint_next": r.fingerprint_next.map(|f| f.to_string()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read a terminal rendering back as a camera would see it: each character cell 6 pixels
    /// wide and 12 tall (a terminal cell's shape), its lit quarters white, on a dark window.
    fn scan(rendered: &str) -> Option<String> {
        let rows: Vec<Vec<char>> = rendered.lines().map(|l| l.chars().collect()).collect();
        let (cw, ch, margin) = (6, 12, 24);
        let cols = rows.iter().map(Vec::len).max()?;
        let (w, h) = (cols * cw + 2 * margin, rows.len() * ch + 2 * margin);
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
            let (Some(x), Some(y)) = (x.checked_sub(margin), y.checked_sub(margin)) else {
                return 0;
            };
            let Some(c) = rows.get(y / ch).and_then(|r| r.get(x / cw)) else {
                return 0;
            };
            let mask = QUADRANTS
                .iter()
                .position(|q| q == c)
                .expect("a block character");
            let bit = match ((x % cw) * 2 / cw, (y % ch) * 2 / ch) {
                (0, 0) => 1,
                (1, 0) => 2,
                (0, _) => 4,
                _ => 8,
            };
            if mask & bit != 0 {
                255
            } else {
                0
            }
        });
        let grids = img.detect_grids();
        grids.first()?.decode().ok().map(|(_, text)| text)
    }

    #[test]
    fn qr_codes_of_real_card_sizes_fit_80_columns_and_read_back() {
        // A card with one staff key is about 600 characters, with two 737, with four about 1000.
        for len in [300, 600, 737, 1000, 1200] {
            let text: String = format!("VIGIL-CARD-1.{}", "eyJ2IjoxLCJuYW1lIjoiTWVt".repeat(60))
                .chars()
                .take(len)
                .collect();
            let rendered = qr_text(&text).unwrap();
            let widest = rendered.lines().map(|l| l.chars().count()).max().unwrap();
            assert!(
                widest <= QR_MAX_COLUMNS,
                "{len} characters: {widest} columns"
            );
            assert_eq!(
                scan(&rendered).as_deref(),
                Some(text.as_str()),
                "{len} characters"
            );
        }
    }

    #[test]
    fn a_card_too_large_for_a_terminal_says_to_share_the_file() {
        let text = "x".repeat(2500);
        let e = qr_text(&text).unwrap_err().to_string();
        assert!(e.contains("share the card file"), "{e}");
    }

    #[test]
    fn a_post_quantum_card_is_drawn_as_parts_that_read_back_to_the_card() {
        // Two post-quantum staff keys: about 6 KiB of card text.
        let text: String = format!("VIGIL-CARD-1.{}", "eyJ2IjoxLCJuYW1lIjoiTWVt".repeat(300))
            .chars()
            .take(6200)
            .collect();
        let codes = qr_parts(&text).unwrap();
        assert!(codes.len() >= 2, "{} parts", codes.len());
        let mut joined = String::new();
        for (i, code) in codes.iter().enumerate() {
            let widest = code.lines().map(|l| l.chars().count()).max().unwrap();
            assert!(widest <= QR_MAX_COLUMNS, "part {i}: {widest} columns");
            let read = scan(code).expect("the part reads back");
            let rest = read
                .strip_prefix(&format!("{QR_PART_PREFIX}{}/{}:", i + 1, codes.len()))
                .expect("numbered part");
            joined.push_str(rest);
        }
        assert_eq!(joined, text);
        // A short card stays one code.
        assert_eq!(qr_parts(&text[..700]).unwrap().len(), 1);
    }
}
