//! `vigil contact add|list`.

use super::Ctx;
use crate::cli::ContactAddArgs;
use crate::home::PRIVATE;
use crate::state::{contact_path, contacts};
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::io::Read;
use vigil_core::card::{RecipientCard, MAX_CARD_LEN};
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
        } else if c.card.name.to_lowercase() == card.name.to_lowercase() {
            if !a.replace {
                bail!(
                    "a different NGO key is already saved as \"{}\": this card may be an impersonation; compare safety numbers with the NGO, then rerun with --replace if it is genuine",
                    card.name
                );
            }
            std::fs::remove_file(&c.path)?;
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
        ctx.out.say("Compare it with the NGO in person or over a call you trust before sending anything sensitive.");
    }
    ctx.out.emit(json!({"type": "contact", "action": action, "name": card.name, "safety_number": sn, "relay": card.relay, "changes": changes}));
    Ok(())
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
        ctx.out.emit(json!({
            "type": "contact",
            "name": c.card.name,
            "relay": c.card.relay,
            "safety_number": c.card.safety_number(),
            "relay_fingerprint": c.card.relay_fingerprint.to_string(),
            "relay_fingerprint_next": next.map(|n| n.to_string()),
        }));
    }
    Ok(())
}
