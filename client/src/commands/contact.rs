//! `vigil contact add|list|remove|verify`.

use super::Ctx;
use crate::cli::{ContactAddArgs, ContactRemoveArgs, ContactVerifyArgs};
use crate::home::now_unix;
use crate::state::{contact_by_name, contact_record, contact_save, contacts, outbox_for};
use crate::{t, t_err};
use anyhow::{bail, Context, Result};
use i18n_embed::fluent::FluentLanguageLoader;
use i18n_embed_fl::fl;
use serde_json::json;
use std::io::{IsTerminal, Read};
use vigil_core::card::{format_utc, Expiry, RecipientCard, MAX_CARD_LEN};
use vigil_core::names::look_alike;
use vigil_fs::read_limited;

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
    let text = String::from_utf8(bytes).context(t_err!("card-not-text").complete())?;
    let card = RecipientCard::parse(&text)?;
    let now = now_unix();
    card.check_not_expired(now)?;
    let existing = contacts(&ctx.home)?;
    let mut action = "added";
    let mut changes = Vec::new();
    let mut previous: Option<RecipientCard> = None;
    for c in &existing {
        let same_key = c.card.identity_key == card.identity_key;
        if same_key {
            if c.card.created > card.created {
                bail!(t_err!("contact-newer-exists", name = c.card.name.as_str()));
            }
            action = "updated";
            changes = describe_changes(&c.card, &card);
            previous = Some(c.card.clone());
            if c.record != contact_record(&card) {
                c.remove(&ctx.home)?;
            }
        } else if look_alike(&c.card.name, &card.name) {
            if !a.replace {
                if c.card.name.to_lowercase() == card.name.to_lowercase() {
                    bail!(t_err!("contact-impersonation", name = card.name.as_str()));
                }
                bail!(t_err!(
                    "contact-look-alike",
                    name = crate::display::line(&card.name),
                    existing = c.card.name.as_str()
                ));
            }
            c.remove(&ctx.home)?;
            action = "replaced";
        }
    }
    contact_save(&ctx.home, text.trim(), &card)?;
    let sn = card.safety_number();
    if action == "updated" {
        let shown = match &previous {
            Some(old) => changes_in(crate::i18n::loader(), old, &card),
            None => Vec::new(),
        };
        let what = if shown.is_empty() {
            t!("contact-nothing-changed")
        } else {
            shown.join("; ")
        };
        ctx.out.say(t!(
            "contact-updated",
            name = card.name.as_str(),
            what = what
        ));
        ctx.out.say(t!("contact-safety-number", sn = sn.as_str()));
        ctx.out.say(t!("contact-updated-note"));
    } else {
        ctx.out.say(t!(
            "contact-added",
            name = card.name.as_str(),
            action = action
        ));
        ctx.out.say(t!("contact-safety-number", sn = sn.as_str()));
        ctx.out.say(t!("contact-compare"));
    }
    if let Some(e) = card.expires {
        ctx.out.say(t!("contact-valid-until", when = format_utc(e)));
    }
    ctx.out.emit(json!({"type": "contact", "action": action, "name": card.name, "safety_number": sn, "relay": card.relay, "changes": changes, "expires": card.expires}));
    warn_expiring(ctx, &card, now, false);
    Ok(())
}

/// The warning for a card that expires within 30 days, or `None`.
fn expiring_warning(card: &RecipientCard, now: u64) -> Option<String> {
    match card.expiry(now) {
        Expiry::Soon { expires } => Some(t!(
            "card-expiring",
            name = card.name.as_str(),
            when = format_utc(expires)
        )),
        _ => None,
    }
}

/// Warn on stderr when `card` expires within 30 days, and with `emit` also as a
/// `card_expiring` JSON object (for `report send`, whose objects scripts read as events).
pub fn warn_expiring(ctx: &Ctx, card: &RecipientCard, now: u64, emit: bool) {
    if let Some(w) = expiring_warning(card, now) {
        ctx.out.say(format!("{}: {w}", t!("warning-prefix")));
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
        bail!(t_err!(
            "contact-remove-waiting",
            count = queued.len(),
            name = c.card.name.as_str()
        ));
    }
    for item in &queued {
        item.remove(&ctx.home)?;
    }
    c.remove(&ctx.home)?;
    ctx.out
        .say(t!("contact-removed", name = c.card.name.as_str()));
    if !queued.is_empty() {
        ctx.out
            .say(t!("contact-removed-outbox", count = queued.len()));
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
        "{}\n\n    {sn}\n",
        t!("contact-verify-number", name = c.card.name.as_str())
    ));
    ctx.out.say(t!("contact-verify-how"));
    if let Some(w) = expiring_warning(&c.card, now_unix()) {
        ctx.out.say(format!("{}: {w}", t!("warning-prefix")));
    }
    if a.clear {
        c.set_verified(&ctx.home, None)?;
        ctx.out
            .say(t!("contact-verify-cleared", name = c.card.name.as_str()));
    } else {
        let confirmed = if a.yes || !std::io::stdin().is_terminal() {
            true
        } else {
            ask_yes_no(&format!("{} ", t!("contact-verify-ask")))?
        };
        if confirmed {
            let now = now_unix();
            c.set_verified(&ctx.home, Some(now))?;
            ctx.out.say(t!(
                "contact-verified",
                name = c.card.name.as_str(),
                when = format_utc(now)
            ));
        } else {
            ctx.out
                .say(t!("contact-not-verified", name = c.card.name.as_str()));
        }
    }
    ctx.out.emit(json!({
        "type": "contact_verify", "name": c.card.name, "safety_number": sn,
        "relay": c.card.relay, "expires": c.card.expires,
        "verified": c.verified_at.is_some(), "verified_at": c.verified_at,
    }));
    Ok(())
}

/// Ask on the terminal; only "y" or "yes" (or a yes of this run's language) is a yes.
fn ask_yes_no(question: &str) -> Result<bool> {
    use std::io::Write;
    eprint!("{question}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let answer = line.trim().to_lowercase();
    Ok(answer == "y"
        || answer == "yes"
        || t!("prompt-yes-words")
            .split(',')
            .any(|w| w.trim() == answer))
}

/// What a newer card from the same NGO key changes, in words, for `contact add` and
/// `ngo set-relay`: in English, as their JSON `changes` carries it.
pub fn describe_changes(old: &RecipientCard, new: &RecipientCard) -> Vec<String> {
    changes_in(crate::i18n::english(), old, new)
}

/// [`describe_changes`] in this run's language, for the person reading.
pub fn describe_changes_shown(old: &RecipientCard, new: &RecipientCard) -> Vec<String> {
    changes_in(crate::i18n::loader(), old, new)
}

fn changes_in(l: &FluentLanguageLoader, old: &RecipientCard, new: &RecipientCard) -> Vec<String> {
    let mut out = Vec::new();
    if new.name != old.name {
        out.push(fl!(l, "change-name", old = old.name.as_str()));
    }
    if new.relay != old.relay {
        out.push(fl!(
            l,
            "change-relay",
            from = old.relay.as_str(),
            to = new.relay.as_str()
        ));
    }
    let completed = new.relay_fingerprint != old.relay_fingerprint
        && old.relay_fingerprint_next == Some(new.relay_fingerprint);
    if completed {
        out.push(fl!(
            l,
            "change-rotation-completed",
            fp = new.relay_fingerprint.to_string()
        ));
    } else if new.relay_fingerprint != old.relay_fingerprint {
        out.push(fl!(
            l,
            "change-cert",
            fp = new.relay_fingerprint.to_string()
        ));
    }
    match (old.relay_fingerprint_next, new.relay_fingerprint_next) {
        (None, Some(n)) => out.push(fl!(l, "change-rotation-announced", fp = n.to_string())),
        (Some(a), Some(b)) if a != b => out.push(fl!(l, "change-next", fp = b.to_string())),
        (Some(_), None) if !completed => out.push(fl!(l, "change-rotation-withdrawn")),
        _ => {}
    }
    // The further relays, by address: added, taken off, or with other certificates.
    let (old_all, new_all) = (old.relays(), new.relays());
    for r in &new.more_relays {
        match old_all.iter().find(|o| o.same_addr(&r.addr)) {
            None => out.push(fl!(l, "change-relay-added", relay = r.addr.as_str())),
            Some(o) if o != r && old.more_relays.contains(o) => {
                out.push(fl!(l, "change-relay-certs", relay = r.addr.as_str()))
            }
            Some(_) => {}
        }
    }
    for o in &old.more_relays {
        if !new_all.iter().any(|r| r.same_addr(&o.addr)) {
            out.push(fl!(l, "change-relay-removed", relay = o.addr.as_str()));
        }
    }
    if new.mailbox != old.mailbox {
        out.push(fl!(l, "change-mailbox"));
    }
    if new.recipients != old.recipients {
        out.push(fl!(l, "change-staff", count = (new.recipients.len())));
    }
    out
}

/// List contacts.
pub fn list(ctx: &Ctx) -> Result<()> {
    let all = contacts(&ctx.home)?;
    if all.is_empty() {
        ctx.out.say(t!("contact-none"));
    }
    let now = now_unix();
    for c in &all {
        let next = c.card.relay_fingerprint_next;
        let mut lines = vec![
            t!(
                "contact-list-item",
                name = c.card.name.as_str(),
                relay = c.card.relay.as_str(),
                keys = (c.card.recipients.len())
            ),
            t!("contact-list-sn", sn = c.card.safety_number()),
            t!(
                "contact-list-cert",
                fp = c.card.relay_fingerprint.to_string()
            ),
        ];
        if let Some(n) = next {
            lines.push(t!("contact-list-next-cert", fp = n.to_string()));
        }
        for r in &c.card.more_relays {
            lines.push(t!(
                "contact-list-more-relay",
                relay = r.addr.as_str(),
                fp = r.fingerprint.to_string()
            ));
        }
        ctx.out.say(lines.join("\n    "));
        match c.card.expiry(now) {
            Expiry::Expired { expires } => ctx.out.say(format!(
                "    {}",
                t!(
                    "contact-list-expired",
                    when = format_utc(expires),
                    name = c.card.name.as_str()
                )
            )),
            Expiry::Soon { .. } => warn_expiring(ctx, &c.card, now, false),
            Expiry::Valid { expires } => ctx.out.say(format!(
                "    {}",
                t!("contact-list-valid", when = format_utc(expires))
            )),
            Expiry::Never => {}
        }
        match c.verified_at {
            Some(at) => ctx.out.say(format!(
                "    {}",
                t!("contact-list-verified", when = format_utc(at))
            )),
            None => ctx.out.say(format!(
                "    {}",
                t!("contact-list-unverified", name = c.card.name.as_str())
            )),
        }
        ctx.out.emit(json!({
            "type": "contact",
            "name": c.card.name,
            "relay": c.card.relay,
            "safety_number": c.card.safety_number(),
            "relay_fingerprint": c.card.relay_fingerprint.to_string(),
            "relay_fingerprint_next": next.map(|n| n.to_string()),
            "relays": super::card::relays_json(&c.card),
            "expires": c.card.expires,
            "verified": c.verified_at.is_some(),
            "verified_at": c.verified_at,
        }));
    }
    Ok(())
}
