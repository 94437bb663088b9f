//! `vigil ngo init`, `add-staff`, `remove-staff`, `renew-card` and `set-relay`.

use super::Ctx;
use crate::cli::{AddStaffArgs, NgoInitArgs, RemoveStaffArgs, RenewCardArgs, SetRelayArgs};
use crate::home::{now_unix, PRIVATE};
use crate::relay::RelayClient;
use crate::state::{inbox_entries, inbox_read, Ngo, NgoConfig, Staff};
use crate::{t, t_err};
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::time::Duration;
use vigil_core::age::x25519;
use vigil_core::card::{format_utc, Expiry, RecipientCard};
use vigil_core::ids::{CertFingerprint, MailboxId};
use vigil_core::keys::SigningSecret;
use vigil_fs::write_atomic;

/// Create keys, register the mailbox, write the card.
pub async fn init(ctx: &Ctx, a: NgoInitArgs) -> Result<()> {
    if Ngo::exists(&ctx.home)? {
        bail!(t_err!(
            "ngo-exists",
            home = ctx.home.root().display().to_string()
        ));
    }
    // Checked before anything is registered at the relay.
    expiry(0, a.validity.valid_for)?;
    let fingerprint: CertFingerprint = a
        .relay_fingerprint
        .parse()
        .context(t_err!("ngo-bad-fingerprint", flag = "--relay-fingerprint").complete())?;
    let identity = SigningSecret::generate(&mut rand::rngs::OsRng);
    let mailbox_key = SigningSecret::generate(&mut rand::rngs::OsRng);
    let staff_id = x25519::Identity::generate(&mut rand::rngs::OsRng);

    ctx.out.say(t!("ngo-registering", relay = a.relay.as_str()));
    let client = RelayClient::connect(&a.relay, &fingerprint).await?;
    let mailbox = client.register(mailbox_key.as_dalek()).await?;
    client.close().await;
    if mailbox != MailboxId::for_key(&mailbox_key.public().to_bytes()) {
        bail!(t_err!("ngo-wrong-mailbox", relay = a.relay.as_str()));
    }

    let key_file = Ngo::save_staff_key(&ctx.home, &a.staff, &staff_id)?;
    let ngo = Ngo {
        config: NgoConfig {
            name: a.name.clone(),
            relay: a.relay.clone(),
            relay_fingerprint: fingerprint,
            relay_fingerprint_next: None,
            mailbox,
            staff: vec![Staff {
                name: a.staff.clone(),
                recipient: staff_id.to_public().to_string(),
                local_key: Some(key_file),
            }],
        },
        identity,
        mailbox_key,
    };
    let now = now_unix();
    let (card, text) = ngo.card(now, Some(expiry(now, a.validity.valid_for)?))?;
    Ngo::create(&ctx.home, &ngo)?;
    write_card(ctx, &text, a.card_out.as_deref())?;
    let sn = card.safety_number();
    ctx.out.say(t!(
        "ngo-created",
        name = card.name.as_str(),
        home = ctx.home.root().display().to_string()
    ));
    if let Some(p) = &a.card_out {
        ctx.out
            .say(t!("ngo-card-written", path = p.display().to_string()));
    }
    ctx.out.say(t!("contact-safety-number", sn = sn.as_str()));
    say_valid_until(ctx, &card);
    ctx.out.say(t!("ngo-compare"));
    ctx.out.emit(json!({
        "type": "ngo_created", "name": card.name, "mailbox": mailbox.to_string(),
        "safety_number": sn, "card": text, "card_out": a.card_out.as_ref().map(|p| p.display().to_string()),
        "expires": card.expires,
    }));
    Ok(())
}

/// Add a staff key and re-issue the card.
pub fn add_staff(ctx: &Ctx, a: AddStaffArgs) -> Result<()> {
    let mut ngo = Ngo::load(&ctx.home)?;
    if ngo.config.staff.len() >= vigil_core::card::MAX_CARD_RECIPIENTS {
        bail!(t_err!(
            "ngo-too-many-staff",
            max = (vigil_core::card::MAX_CARD_RECIPIENTS)
        ));
    }
    let (recipient, local_key) = match &a.recipient {
        Some(r) => {
            let rec: x25519::Recipient =
                r.parse().context(t_err!("ngo-bad-recipient").complete())?;
            (rec, None)
        }
        None => {
            let id = x25519::Identity::generate(&mut rand::rngs::OsRng);
            let file = Ngo::save_staff_key(&ctx.home, &a.name, &id)?;
            (id.to_public(), Some(file))
        }
    };
    if ngo
        .config
        .staff
        .iter()
        .any(|s| s.recipient == recipient.to_string())
    {
        bail!(t_err!("ngo-key-on-card"));
    }
    ngo.config.staff.push(Staff {
        name: a.name.clone(),
        recipient: recipient.to_string(),
        local_key: local_key.clone(),
    });
    let (card, text) = reissue(ctx, &ngo, a.validity.valid_for)?;
    ngo.save_config(&ctx.home)?;
    write_card(ctx, &text, a.card_out.as_deref())?;
    ctx.out.say(t!(
        "ngo-staff-added",
        name = a.name.as_str(),
        recipient = recipient.to_string(),
        keys = (card.recipients.len())
    ));
    ctx.out.say(t!("ngo-staff-added-note"));
    ctx.out
        .say(t!("contact-safety-number", sn = card.safety_number()));
    ctx.out.emit(json!({
        "type": "staff_added", "name": a.name, "recipient": recipient.to_string(),
        // Staff keys live in the encrypted home, never in a file of their own:
        // `vigil ngo export-staff-key NAME --out FILE` writes a copy when one is needed.
        "key_file": serde_json::Value::Null, "local_key": local_key,
        "safety_number": card.safety_number(), "card": text, "expires": card.expires,
    }));
    Ok(())
}

/// Remove a staff key from the card, re-issue it, and delete the key from this home if it is
/// here.
pub fn remove_staff(ctx: &Ctx, a: RemoveStaffArgs) -> Result<()> {
    let wanted = a.who().trim().to_string();
    let mut ngo = Ngo::load(&ctx.home)?;
    let lower = wanted.to_lowercase();
    let matching: Vec<usize> = (0..ngo.config.staff.len())
        .filter(|&i| {
            let s = &ngo.config.staff[i];
            s.name.to_lowercase() == lower || s.recipient == wanted
        })
        .collect();
    let index = match matching.as_slice() {
        [] => {
            let names: Vec<String> = ngo
                .config
                .staff
                .iter()
                .map(|s| format!("\"{}\"", s.name))
                .collect();
            return Err(t_err!(
                "ngo-no-such-staff",
                name = wanted.as_str(),
                staff = names.join(", ")
            )
            .not_found()
            .into());
        }
        [i] => *i,
        _ => bail!(t_err!("ngo-several-staff", name = wanted.as_str())),
    };
    if ngo.config.staff.len() == 1 {
        bail!(t_err!(
            "ngo-last-staff",
            name = ngo.config.staff[index].name.as_str()
        ));
    }
    let removed = ngo.config.staff.remove(index);
    if let (Some(file), false) = (&removed.local_key, a.force) {
        let only_this = reports_only_for(ctx, &ngo, file)?;
        if only_this > 0 {
            bail!(t_err!(
                "ngo-staff-needed",
                count = only_this,
                name = removed.name.as_str(),
                path = file.as_str()
            ));
        }
    }
    let (card, text) = reissue(ctx, &ngo, a.validity.valid_for)?;
    ngo.save_config(&ctx.home)?;
    write_card(ctx, &text, a.card_out.as_deref())?;
    // Only now that no saved setting names the key file: a crash before this line leaves an
    // unused key file, never settings naming a key that is gone.
    let key_deleted = match &removed.local_key {
        Some(file) => {
            Ngo::remove_staff_key(&ctx.home, file)?;
            Some(file.clone())
        }
        None => None,
    };
    ctx.out.say(t!(
        "ngo-staff-removed",
        name = removed.name.as_str(),
        recipient = removed.recipient.as_str(),
        keys = (card.recipients.len())
    ));
    if let Some(p) = &key_deleted {
        ctx.out.say(t!("ngo-staff-key-deleted", path = p.as_str()));
    }
    ctx.out.say(t!("ngo-staff-removed-note"));
    if ngo.config.staff.iter().all(|s| s.local_key.is_none()) {
        ctx.out.say(t!("ngo-no-local-staff"));
    }
    ctx.out
        .say(t!("contact-safety-number", sn = card.safety_number()));
    say_valid_until(ctx, &card);
    ctx.out.emit(json!({
        "type": "staff_removed", "name": removed.name, "recipient": removed.recipient,
        "key_deleted": key_deleted,
        "safety_number": card.safety_number(), "card": text, "created": card.created,
        "expires": card.expires, "card_out": a.card_out.as_ref().map(|p| p.display().to_string()),
    }));
    Ok(())
}

/// How many reports stored in this inbox the staff key in `file` opens but none of the keys
/// `ngo` (already without it) holds here: deleting the file would make them unreadable here.
fn reports_only_for(ctx: &Ctx, ngo: &Ngo, file: &str) -> Result<usize> {
    let removed = Ngo::staff_key(&ctx.home, file)?;
    let remaining = ngo.local_identities(&ctx.home)?;
    // The header alone says which keys open a file; the body is not read.
    let opens = |bytes: &[u8], ids: &[x25519::Identity]| {
        vigil_core::age::Decryptor::new(bytes)
            .and_then(|d| d.decrypt(ids))
            .is_ok()
    };
    let mut count = 0;
    for (id, _) in inbox_entries(&ctx.home)? {
        let (_, bytes) = inbox_read(&ctx.home, &id)?;
        if opens(&bytes, &removed) && (remaining.is_empty() || !opens(&bytes, &remaining)) {
            count += 1;
        }
    }
    Ok(count)
}

/// Re-issue the card as it stands with a new expiry.
pub fn renew_card(ctx: &Ctx, a: RenewCardArgs) -> Result<()> {
    let ngo = Ngo::load(&ctx.home)?;
    let (card, text) = reissue(ctx, &ngo, a.validity.valid_for)?;
    write_card(ctx, &text, a.card_out.as_deref())?;
    let sn = card.safety_number();
    say_valid_until(ctx, &card);
    ctx.out.say(t!("ngo-renewed-sn", sn = sn.as_str()));
    if let Some(p) = &a.card_out {
        ctx.out
            .say(t!("ngo-renewed-written", path = p.display().to_string()));
    }
    ctx.out.say(t!("ngo-renewed-note"));
    ctx.out.emit(json!({
        "type": "card_renewed", "safety_number": sn, "card": text, "created": card.created,
        "expires": card.expires, "card_out": a.card_out.as_ref().map(|p| p.display().to_string()),
    }));
    Ok(())
}

/// The expiry of a card dated `created` and valid for `valid_for`.
fn expiry(created: u64, valid_for: Duration) -> Result<u64> {
    if valid_for.as_secs() == 0 {
        bail!(t_err!("ngo-valid-for-zero"));
    }
    Ok(created.saturating_add(valid_for.as_secs()))
}

/// Sign the card as the settings now stand, valid for `valid_for`. It is dated after the card
/// this home last issued, so that `contact add` takes it as newer even when two are issued
/// within one second.
fn reissue(ctx: &Ctx, ngo: &Ngo, valid_for: Duration) -> Result<(RecipientCard, String)> {
    let previous = current_card(ctx);
    let created = now_unix().max(previous.map_or(0, |c| c.created.saturating_add(1)));
    ngo.card(created, Some(expiry(created, valid_for)?))
}

/// Remind the NGO (on stderr, after `inbox fetch`) that its card expires within 30 days or has
/// expired: reporters are warned too, but only the NGO can renew it.
pub fn warn_own_card_expiring(ctx: &Ctx) {
    let Some(card) = current_card(ctx) else {
        return;
    };
    match card.expiry(now_unix()) {
        Expiry::Soon { expires } => ctx.out.say(format!(
            "{}: {}",
            t!("warning-prefix"),
            t!("ngo-card-expiring", when = format_utc(expires))
        )),
        Expiry::Expired { expires } => ctx.out.say(format!(
            "{}: {}",
            t!("warning-prefix"),
            t!("ngo-card-expired", when = format_utc(expires))
        )),
        Expiry::Valid { .. } | Expiry::Never => {}
    }
}

fn say_valid_until(ctx: &Ctx, card: &RecipientCard) {
    if let Some(e) = card.expires {
        ctx.out.say(t!("ngo-valid-until", when = format_utc(e)));
    }
}

/// Store the signed card as this home's current card and, when asked, also at `card_out`.
fn write_card(ctx: &Ctx, text: &str, card_out: Option<&std::path::Path>) -> Result<()> {
    let line = format!("{text}\n");
    Ngo::save_card_text(&ctx.home, &line)?;
    if let Some(p) = card_out {
        write_atomic(p, line.as_bytes(), PRIVATE)?;
    }
    Ok(())
}

/// The card this NGO last issued, if readable: a re-issued card's `created` must be later, so
/// that `contact add` takes the new card as newer even when two are issued within one second.
fn current_card(ctx: &Ctx) -> Option<RecipientCard> {
    let text = Ngo::card_text(&ctx.home).ok()??;
    RecipientCard::parse(text.trim()).ok()
}

/// Change the relay address or pinned certificates and re-issue the card.
pub async fn set_relay(ctx: &Ctx, a: SetRelayArgs) -> Result<()> {
    if a.relay.is_none()
        && a.relay_fingerprint.is_none()
        && a.next_fingerprint.is_none()
        && !a.clear_next
    {
        bail!(t_err!("ngo-nothing-to-change"));
    }
    let parse = |flag: &str, v: &str| -> Result<CertFingerprint> {
        v.parse()
            .with_context(|| t_err!("ngo-bad-fingerprint", flag = flag).complete())
    };
    let mut ngo = Ngo::load(&ctx.home)?;
    let previous = current_card(ctx);
    let (old_card, _) = ngo.card(
        previous.as_ref().map_or(0, |c| c.created),
        previous.as_ref().and_then(|c| c.expires),
    )?;
    if let Some(fp) = &a.relay_fingerprint {
        ngo.config.relay_fingerprint = parse("--relay-fingerprint", fp)?;
    }
    if let Some(fp) = &a.next_fingerprint {
        let next = parse("--next-fingerprint", fp)?;
        if next == ngo.config.relay_fingerprint {
            bail!(t_err!("ngo-next-is-current"));
        }
        ngo.config.relay_fingerprint_next = Some(next);
    }
    if a.clear_next {
        ngo.config.relay_fingerprint_next = None;
    }
    if ngo.config.relay_fingerprint_next == Some(ngo.config.relay_fingerprint) {
        // `--relay-fingerprint NEXT`: the rotation is complete; pinning it twice means nothing.
        ngo.config.relay_fingerprint_next = None;
    }
    if let Some(relay) = &a.relay {
        if *relay != ngo.config.relay {
            // Reporters will deposit there: the mailbox must exist before the card says so.
            ctx.out.say(t!("ngo-registering", relay = relay.as_str()));
            let client = RelayClient::connect_pinned(relay, &ngo.config.pinned()).await?;
            let mailbox = client.register(ngo.mailbox_key.as_dalek()).await?;
            client.close().await;
            if !mailbox.ct_eq(&ngo.config.mailbox) {
                bail!(t_err!("ngo-wrong-mailbox", relay = relay.as_str()));
            }
            ngo.config.relay = relay.clone();
        }
    }
    let (card, text) = reissue(ctx, &ngo, a.validity.valid_for)?;
    let changes = super::contact::describe_changes(&old_card, &card);
    let shown = super::contact::describe_changes_shown(&old_card, &card);
    ngo.save_config(&ctx.home)?;
    write_card(ctx, &text, a.card_out.as_deref())?;
    let sn = card.safety_number();
    if shown.is_empty() {
        ctx.out.say(t!("ngo-reissued-unchanged"));
    } else {
        ctx.out.say(t!("ngo-reissued", changes = shown.join("; ")));
    }
    ctx.out.say(t!("contact-safety-number", sn = sn.as_str()));
    say_valid_until(ctx, &card);
    if let Some(p) = &a.card_out {
        ctx.out
            .say(t!("ngo-new-card-written", path = p.display().to_string()));
    }
    ctx.out.say(t!("ngo-hand-new-card"));
    if let Some(next) = card.relay_fingerprint_next {
        ctx.out.say(t!("ngo-rotation-note", fp = next.to_string()));
    }
    ctx.out.emit(json!({
        "type": "card_reissued", "changes": changes, "relay": card.relay,
        "relay_fingerprint": card.relay_fingerprint.to_string(),
        "relay_fingerprint_next": card.relay_fingerprint_next.map(|f| f.to_string()),
        "safety_number": sn, "card": text, "created": card.created,
        "card_out": a.card_out.as_ref().map(|p| p.display().to_string()),
        "expires": card.expires,
    }));
    Ok(())
}

/// Write a copy of a staff key held here to `a.out` (0600, never over an existing file).
pub fn export_staff_key(ctx: &Ctx, a: crate::cli::ExportStaffKeyArgs) -> Result<()> {
    let ngo = Ngo::load(&ctx.home)?;
    let wanted = a.name.trim().to_lowercase();
    let staff = ngo
        .config
        .staff
        .iter()
        .find(|s| s.name.to_lowercase() == wanted)
        .ok_or_else(|| {
            let names: Vec<String> = ngo
                .config
                .staff
                .iter()
                .map(|s| format!("\"{}\"", s.name))
                .collect();
            anyhow::Error::from(
                t_err!(
                    "ngo-no-such-staff",
                    name = a.name.as_str(),
                    staff = names.join(", ")
                )
                .not_found(),
            )
        })?;
    let Some(file) = &staff.local_key else {
        bail!(
            "the key of {} is not held in this home; it is on their own machine",
            staff.name
        );
    };
    let text = Ngo::staff_key_text(&ctx.home, file)?;
    vigil_fs::write_new(&a.out, &text, PRIVATE)?;
    ctx.out.say(format!(
        "Wrote the staff key of {} to {}. Keep it as safe as this home: it opens every report sealed to it.",
        staff.name,
        a.out.display()
    ));
    ctx.out.emit(json!({"type": "staff_key_exported", "name": staff.name, "out": a.out.display().to_string(), "recipient": staff.recipient}));
    Ok(())
}
