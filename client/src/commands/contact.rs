//! `vigil contact add|list|remove|verify`.

use super::Ctx;
use crate::cli::{ContactAddArgs, ContactRemoveArgs, ContactVerifyArgs};
use crate::home::{now_unix, PRIVATE};
use crate::state::{contact_by_name, contact_path, contacts, outbox_for};
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::io::{IsTerminal, Read};
use vigil_core::card::{format_utc, Expiry, RecipientCard, MAX_CARD_LEN};
use vigil_core::names::look_alike;
use vigil_fs::{read_limited, write_atomic};

/// Import a card.
pub fn add(ctx: &Ctx, a: ContactAddArgs) -> Result<()> {
    let bytes = if a.card.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .lock()
            .take(MAX_CARD_LEN as u64 + 1)
            .read_to_end(&mut buf)?;
        buf
    } else {
        read_limited(&a.card, MAX_CARD_LEN as u64)?
    };
    let text = String::from_utf8(bytes).context("card is not text; is it the right file?")?;
    let card = RecipientCard::parse(&text)?;
    let now = now_unix();
    card.check_not_expired(now)?;
    let existing = contacts(&ctx.home)?;
    let mut action = "added";
    let mut changes = Vec::new();
    for c in &existing {
        let same_key = c.card.identity_key == card.identity_key;
        if same_key {
            if c.card.created > card.created {
                bail!(
                    "you already have a newer card for \"{}\"; keeping it",
                    c.card.name
                );
            }
            action = "updated";
            changes = describe_changes(&c.card, &card);
            if c.path != contact_path(&ctx.home, &card)? {
                std::fs::remove_file(&c.path)?;
            }
        } else if look_alike(&c.card.name, &card.name) {
            if !a.replace {
                if c.card.name.to_lowercase() == card.name.to_lowercase() {
                    bail!(
                        "a different NGO key is already saved as \"{}\": this card may be an impersonation; compare safety numbers with the NGO, then rerun with --replace if it is genuine",
                        card.name
                    );
                }
                bail!(
                    "the name \"{}\" reads like your contact \"{}\" (it differs only in case, spacing or look-alike letters) but the card has a different NGO key: it may be an impersonation; compare safety numbers with the NGO, then rerun with --replace if it is genuine",
                    crate::display::line(&card.name),
                    c.card.name
                );
            }
            c.remove()?;
            action = "replaced";
        }
    }
    write_atomic(
        &contact_path(&ctx.home, &card)?,
        format!("{}\n", text.trim()).as_bytes(),
        PRIVATE,
    )?;
    let sn = card.safety_number();
    if action == "updated" {
        let what = if changes.is_empty() {
            "nothing changed".to_string()
        } else {
            changes.join("; ")
        };
        ctx.out
            .say(format!("Contact \"{}\" updated: {what}.", card.name));
        ctx.out.say(format!("Safety number: {sn}"));
        ctx.out.say("The new card is signed by the same NGO key as the one you had; its safety number changes whenever the relay, its certificates or the staff keys change.");
    } else {
        ctx.out.say(format!("Contact \"{}\" {action}.", card.name));
        ctx.out.say(format!("Safety number: {sn}"));
        ctx.out.say("Compare it with the NGO in person or over a call you trust before sending anything sensitive (`vigil contact verify NAME` shows how).");
    }
    if let Some(e) = card.expires {
        ctx.out
            .say(format!("The card is valid until {}.", format_utc(e)));
    }
    ctx.out.emit(json!({"type": "contact", "action": action, "name": card.name, "safety_number": sn, "relay": card.relay, "changes": changes, "expires": card.expires}));
    warn_expiring(ctx, &card, now, false);
    Ok(())
}

/// The warning for a card that expires within 30 days, or `None`.
fn expiring_warning(card: &RecipientCard, now: u64) -> Option<String> {
    match card.expiry(now) {
        Expiry::Soon { expires } => Some(format!(
            "the card of \"{}\" expires on {}; ask {} for a renewed card and import it with `vigil contact add`",
            card.name,
            format_utc(expires),
            card.name
        )),
        _ => None,
    }
}

/// Warn on stderr when `card` expires within 30 days, and with `emit` also as a
/// `card_expiring` JSON object (for `report send`, whose objects scripts read as events).
pub fn warn_expiring(ctx: &Ctx, card: &RecipientCard, now: u64, emit: bool) {
    if let Some(w) = expiring_warning(card, now) {
        ctx.out.say(format!("warning: {w}"));
        if emit {
            ctx.out.emit(json!({
                "type": "card_expiring", "name": card.name, "expires": card.expires,
                "advice": format!("ask {} for a renewed card", card.name),
            }));
        }
    }
}

/// Remove a contact, refusing while reports for it wait in the outbox unless `--force`, which
/// deletes them: a report must not be dropped silently, nor sent to an NGO the reporter has
/// removed.
pub fn remove(ctx: &Ctx, a: ContactRemoveArgs) -> Result<()> {
    let c = contact_by_name(&ctx.home, &a.name)?;
    let queued = outbox_for(&ctx.home, &c.card)?;
    if !queued.is_empty() && !a.force {
        bail!(
            "{} for \"{}\" still waiting in the outbox; deliver them first (`vigil outbox flush`), or rerun with --force to delete them with the contact",
            crate::output::count(queued.len() as u64, "report copy", "report copies"),
            c.card.name
        );
    }
    for item in &queued {
        item.remove(&ctx.home)?;
    }
    c.remove()?;
    ctx.out.say(format!("Contact \"{}\" removed.", c.card.name));
    if !queued.is_empty() {
        ctx.out.say(format!(
            "Deleted {} for it from the outbox.",
            crate::output::count(
                queued.len() as u64,
                "unsent report copy",
                "unsent report copies"
            )
        ));
    }
    ctx.out.emit(json!({
        "type": "contact_removed", "name": c.card.name,
        "safety_number": c.card.safety_number(), "outbox_removed": queued.len(),
    }));
    Ok(())
}

/// Show a contact's safety number and how to compare it, then record that it was compared.
///
/// On a terminal the reporter is asked whether the numbers matched, and only "yes" records
/// it; a script (stdin not a terminal) or `--yes` records it at once: whoever runs it vouches
/// for the comparison. `--clear` forgets the mark. The mark changes what `contact list` and
/// `report send` say, never what is sent.
pub fn verify(ctx: &Ctx, a: ContactVerifyArgs) -> Result<()> {
    let mut c = contact_by_name(&ctx.home, &a.name)?;
    let sn = c.card.safety_number();
    ctx.out.say(format!(
        "Safety number of \"{}\":\n\n    {sn}\n",
        c.card.name
    ));
    ctx.out.say(
        "To verify it, compare it digit by digit with the number the NGO sees (`vigil card show` on its side), \
         in person or on a voice or video call with someone from the NGO you recognise; not over the channel the card came by. \
         If all 60 digits match, the card is the NGO's. If not, send nothing: the card may be an impersonation; get the card again in person.",
    );
    if let Some(w) = expiring_warning(&c.card, now_unix()) {
        ctx.out.say(format!("warning: {w}"));
    }
    if a.clear {
        c.set_verified(None)?;
        ctx.out.say(format!(
            "\"{}\" is no longer marked as verified.",
            c.card.name
        ));
    } else {
        let confirmed = if a.yes || !std::io::stdin().is_terminal() {
            true
        } else {
            ask_yes_no("Did all 60 digits match? [y/N] ")?
        };
        if confirmed {
            let now = now_unix();
            c.set_verified(Some(now))?;
            ctx.out.say(format!(
                "\"{}\" is marked as verified ({}).",
                c.card.name,
                format_utc(now)
            ));
        } else {
            ctx.out.say(format!(
                "\"{}\" is not marked as verified. If the numbers differ, send it nothing and remove it (`vigil contact remove`).",
                c.card.name
            ));
        }
    }
    ctx.out.emit(json!({
        "type": "contact_verify", "name": c.card.name, "safety_number": sn,
        "relay": c.card.relay, "expires": c.card.expires,
        "verified": c.verified_at.is_some(), "verified_at": c.verified_at,
    }));
    Ok(())
}

/// Ask on the terminal; only "y" or "yes" is a yes.
fn ask_yes_no(question: &str) -> Result<bool> {
    use std::io::Write;
    eprint!("{question}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim().to_lowercase().as_str(), "y" | "yes"))
}

/// What a newer card from the same NGO key changes, in words, for `contact add` and
/// `ngo set-relay`.
pub fn describe_changes(old: &RecipientCard, new: &RecipientCard) -> Vec<String> {
    let mut out = Vec::new();
    if new.name != old.name {
        out.push(format!("name changed from \"{}\"", old.name));
    }
    if new.relay != old.relay {
        out.push(format!("relay moved from {} to {}", old.relay, new.relay));
    }
    let completed = new.relay_fingerprint != old.relay_fingerprint
        && old.relay_fingerprint_next == Some(new.relay_fingerprint);
    if completed {
        out.push(format!(
            "relay certificate rotation completed (now {})",
            new.relay_fingerprint
        ));
    } else if new.relay_fingerprint != old.relay_fingerprint {
        out.push(format!(
            "relay certificate changed to {}",
            new.relay_fingerprint
        ));
    }
    match (old.relay_fingerprint_next, new.relay_fingerprint_next) {
        (None, Some(n)) => out.push(format!(
            "relay certificate rotation announced (next certificate {n}, accepted from now on)"
        )),
        (Some(a), Some(b)) if a != b => {
            out.push(format!("announced next relay certificate changed to {b}"))
        }
        (Some(_), None) if !completed => {
            out.push("announced relay certificate rotation withdrawn".into())
        }
        _ => {}
    }
    if new.mailbox != old.mailbox {
        out.push("mailbox changed".into());
    }
    if new.recipients != old.recipients {
        out.push(format!("staff keys changed ({} now)", new.recipients.len()));
    }
    out
}

/// List contacts.
pub fn list(ctx: &Ctx) -> Result<()> {
    let all = contacts(&ctx.home)?;
    if all.is_empty() {
        ctx.out
            .say("No contacts yet; add an NGO's card with `vigil contact add CARD_FILE`.");
    }
    let now = now_unix();
    for c in &all {
        let next = c.card.relay_fingerprint_next;
        ctx.out.say(format!(
            "{}  (relay {}, {} staff keys)\n    safety number {}\n    relay certificate {}{}",
            c.card.name,
            c.card.relay,
            c.card.recipients.len(),
            c.card.safety_number(),
            c.card.relay_fingerprint,
            next.map(|n| format!("\n    next relay certificate {n} (the relay is changing certificates; both are accepted)"))
                .unwrap_or_default()
        ));
        match c.card.expiry(now) {
            Expiry::Expired { expires } => ctx.out.say(format!(
                "    EXPIRED on {}: reports cannot be sent to it; ask {} for a renewed card",
                format_utc(expires),
                c.card.name
            )),
            Expiry::Soon { .. } => warn_expiring(ctx, &c.card, now, false),
            Expiry::Valid { expires } => ctx
                .out
                .say(format!("    valid until {}", format_utc(expires))),
            Expiry::Never => {}
        }
        match c.verified_at {
            Some(t) => ctx.out.say(format!(
                "    safety number verified with the NGO ({})",
                format_utc(t)
            )),
            None => ctx.out.say(format!(
                "    NOT VERIFIED: compare the safety number with the NGO (`vigil contact verify \"{}\"`)",
                c.card.name
            )),
        }
        ctx.out.emit(json!({
            "type": "contact",
            "name": c.card.name,
            "relay": c.card.relay,
            "safety_number": c.card.safety_number(),
            "relay_fingerprint": c.card.relay_fingerprint.to_string(),
            "relay_fingerprint_next": next.map(|n| n.to_string()),
            "expires": c.card.expires,
            "verified": c.verified_at.is_some(),
            "verified_at": c.verified_at,
        }));
    }
    Ok(())
}
