//! `vigil card show`.

use super::Ctx;
use crate::cli::CardShowArgs;
use anyhow::{Context, Result};
use serde_json::json;
use vigil_core::card::{RecipientCard, MAX_CARD_LEN};
use vigil_fs::read_limited;

/// Render `text` as a QR code with half-height block characters (two modules per character
/// cell), dark modules drawn as spaces on a light background so phones scan it from dark
/// terminals too.
pub fn qr_text(text: &str) -> Result<String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::L)
        .context("card is too large for a QR code; share the card file instead")?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// Show a card.
pub fn show(ctx: &Ctx, a: CardShowArgs) -> Result<()> {
    let path = a
        .file
        .clone()
        .unwrap_or_else(|| ctx.home.path("ngo/card.txt"));
    if a.file.is_none() && !path.exists() {
        return Err(crate::failure::NotFound(
            "this home has no NGO card; pass a card file, or create an inbox with `vigil ngo init`"
                .into(),
        )
        .into());
    }
    let text = String::from_utf8(read_limited(&path, MAX_CARD_LEN as u64)?)
        .context("card file is not text")?;
    let card = RecipientCard::parse(&text)?;
    let text = text.trim();
    ctx.out.say(format!("NGO:            {}", card.name));
    ctx.out.say(format!("Relay:          {}", card.relay));
    ctx.out.say(format!(
        "Relay cert:     {}",
        card.relay_fingerprint.to_colon_hex()
    ));
    if let Some(next) = card.relay_fingerprint_next {
        ctx.out.say(format!(
            "Next relay cert: {} (rotation announced; both accepted)",
            next.to_colon_hex()
        ));
    }
    ctx.out
        .say(format!("Staff keys:     {}", card.recipients.len()));
    ctx.out
        .say(format!("Safety number:  {}", card.safety_number()));
    if let Some(e) = card.expires {
        ctx.out.say(format!(
            "Valid until:    {}",
            vigil_core::card::format_utc(e)
        ));
    }
    if a.qr {
        ctx.out.data(qr_text(text)?);
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
    }));
    Ok(())
}
