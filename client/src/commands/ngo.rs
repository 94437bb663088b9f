//! `vigil ngo init`, `add-staff`, `remove-staff`, `renew-card` and `set-relay`.

use super::Ctx;
use crate::cli::{AddStaffArgs, NgoInitArgs, RemoveStaffArgs, RenewCardArgs, SetRelayArgs};
use crate::home::{now_unix, PRIVATE};
use crate::relay::{RelayClient, RelayError};
use crate::state::{inbox_entries, inbox_read, Ngo, NgoConfig, NgoRelay, Staff};
use crate::{t, t_err};
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::time::Duration;
use vigil_core::age::{hybrid, x25519, AnyIdentity, AnyRecipient};
use vigil_core::card::{format_utc, CardRelay, Expiry, RecipientCard, MAX_CARD_RELAYS};
use vigil_core::ids::{CertFingerprint, MailboxId};
use vigil_core::keys::SigningSecret;
use vigil_fs::write_atomic;

/// Create keys, register the mailbox at each relay, write the card.
///
/// With several relays, the inbox is created when the mailbox is registered at one of them at
/// least: a relay that cannot be reached right now (a passing failure: unreachable, link lost,
/// busy) is still put on the card, named in a one-line warning, and recorded as "registration
/// pending"; `vigil inbox fetch` registers the mailbox there once it answers. Until then the
/// copies reporters send there wait in their outboxes while the other relays deliver. Any other
/// failure (a wrong certificate, an address that does not parse, a refusal) stops the command
/// before anything is saved: a card must not pin a relay that is not the one meant.
pub async fn init(ctx: &Ctx, a: NgoInitArgs) -> Result<()> {
    if Ngo::exists(&ctx.home)? {
        bail!(t_err!(
            "ngo-exists",
            home = ctx.home.root().display().to_string()
        ));
    }
    if a.relay.len() != a.relay_fingerprint.len() {
        bail!(t_err!(
            "ngo-relay-pairs",
            relays = (a.relay.len()),
            fingerprints = (a.relay_fingerprint.len())
        )
        .kind("usage"));
    }
    // Checked before anything is registered at a relay.
    expiry(0, a.validity.valid_for)?;
    let mut relays = Vec::with_capacity(a.relay.len());
    for (addr, fp) in a.relay.iter().zip(&a.relay_fingerprint) {
        let fingerprint: CertFingerprint = fp
            .parse()
            .context(t_err!("ngo-bad-fingerprint", flag = "--relay-fingerprint").complete())?;
        relays.push(NgoRelay {
            relay: addr.clone(),
            relay_fingerprint: fingerprint,
            relay_fingerprint_next: None,
        });
    }
    let identity = SigningSecret::generate(&mut rand::rngs::OsRng);
    let mailbox_key = SigningSecret::generate(&mut rand::rngs::OsRng);
    let staff_id = new_staff_identity(!a.classic_keys);
    let mailbox = MailboxId::for_key(&mailbox_key.public().to_bytes());
    let first = relays.remove(0);
    let mut ngo = Ngo {
        config: NgoConfig {
            name: a.name.clone(),
            relay: first.relay,
            relay_fingerprint: first.relay_fingerprint,
            relay_fingerprint_next: None,
            more_relays: relays,
            mailbox,
            registration_pending: Vec::new(),
            retired: Vec::new(),
            staff: vec![Staff {
                name: a.staff.clone(),
                recipient: staff_id.to_public().to_string(),
                local_key: None,
            }],
        },
        identity,
        mailbox_key,
    };
    // The card's own checks (how many relays, none twice, each host:port) before any relay is
    // contacted.
    ngo.card(0, None)?;

    let mut outcomes = Vec::new();
    let mut first_error = None;
    for relay in ngo.config.relays() {
        ctx.out
            .say(t!("ngo-registering", relay = relay.addr.as_str()));
        match register_at(&relay, &ngo.mailbox_key, &mailbox).await? {
            Ok(()) => outcomes.push((relay.addr, None)),
            Err(e) if e.is_retryable() => {
                outcomes.push((relay.addr, Some(e.to_string())));
                first_error.get_or_insert(e);
            }
            Err(e) => return Err(e.into()),
        }
    }
    if let (true, Some(e)) = (outcomes.iter().all(|(_, e)| e.is_some()), first_error) {
        return Err(e.into());
    }
    ngo.config.registration_pending = outcomes
        .iter()
        .filter(|(_, e)| e.is_some())
        .map(|(addr, _)| addr.clone())
        .collect();

    let key_file = Ngo::save_staff_key(&ctx.home, &a.staff, &staff_id)?;
    ngo.config.staff[0].local_key = Some(key_file);
    let now = now_unix();
    let (card, text) = ngo.card(now, Some(expiry(now, a.validity.valid_for)?))?;
    Ngo::create(&ctx.home, &ngo)?;
    write_card(ctx, &text, a.card_out.as_deref())?;
    for (addr, error) in &outcomes {
        if let Some(error) = error {
            ctx.out.say(format!(
                "{}: {}",
                t!("warning-prefix"),
                t!(
                    "ngo-register-pending",
                    relay = addr.as_str(),
                    error = error.as_str()
                )
            ));
        }
    }
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
    let relays_json: Vec<_> = outcomes
        .iter()
        .map(|(addr, e)| json!({"relay": addr, "registered": e.is_none(), "error": e}))
        .collect();
    ctx.out.emit(json!({
        "type": "ngo_created", "name": card.name, "mailbox": mailbox.to_string(),
        "safety_number": sn, "card": text, "card_out": a.card_out.as_ref().map(|p| p.display().to_string()),
        "expires": card.expires, "relays": relays_json,
    }));
    super::prekeys::publish_first(ctx, &ngo).await?;
    Ok(())
}

/// A new staff key: post-quantum (ML-KEM-768 + X25519, the default for new NGOs) or classic.
pub(super) fn new_staff_identity(post_quantum: bool) -> AnyIdentity {
    if post_quantum {
        hybrid::Identity::generate(&mut rand::rngs::OsRng).into()
    } else {
        x25519::Identity::generate(&mut rand::rngs::OsRng).into()
    }
}

/// Register the mailbox of `key` at `relay`. The outer error is a relay that answered with a
/// mailbox id not belonging to the key (`expected`): never to be used. The inner one is the
/// relay's own (unreachable, refused...), for the caller to weigh.
pub(super) async fn register_at(
    relay: &CardRelay,
    key: &SigningSecret,
    expected: &MailboxId,
) -> Result<Result<(), RelayError>> {
    let client =
        match RelayClient::connect_pinned(&relay.addr, &relay.accepted_fingerprints()).await {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
    let mailbox = client.register(key.as_dalek()).await;
    client.close().await;
    match mailbox {
        Ok(m) if m.ct_eq(expected) => Ok(Ok(())),
        Ok(_) => bail!(t_err!("ngo-wrong-mailbox", relay = relay.addr.as_str())),
        Err(e) => Ok(Err(e)),
    }
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
    let post_quantum = ngo.config.post_quantum();
    let (recipient, local_key) = match &a.recipient {
        Some(r) => {
            let rec: AnyRecipient = r.parse().context(t_err!("ngo-bad-recipient").complete())?;
            if rec.is_post_quantum() != post_quantum {
                let e = if post_quantum {
                    t_err!("ngo-staff-key-needs-pq")
                } else {
                    t_err!("ngo-staff-key-needs-classic")
                };
                bail!(e.kind("usage"));
            }
            (rec, None)
        }
        None => {
            let id = new_staff_identity(post_quantum);
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
    let opens = |bytes: &[u8], ids: &[vigil_core::age::AnyIdentity]| {
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
pub(super) fn reissue(
    ctx: &Ctx,
    ngo: &Ngo,
    valid_for: Duration,
) -> Result<(RecipientCard, String)> {
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
pub(super) fn write_card(ctx: &Ctx, text: &str, card_out: Option<&std::path::Path>) -> Result<()> {
    let line = format!("{text}\n");
    Ngo::save_card_text(&ctx.home, &line)?;
    if let Some(p) = card_out {
        write_atomic(p, line.as_bytes(), PRIVATE)?;
    }
    Ok(())
}

/// The card this NGO last issued, if readable: a re-issued card's `created` must be later, so
/// that `contact add` takes the new card as newer even when two are issued within one second.
pub(super) fn current_card(ctx: &Ctx) -> Option<RecipientCard> {
    let text = Ngo::card_text(&ctx.home).ok()??;
    RecipientCard::parse(text.trim()).ok()
}

/// Change a relay's address or pinned certificates, add a relay or take one off, and re-issue
/// the card.
///
/// `--relay`, `--relay-fingerprint`, `--next-fingerprint` and `--clear-next` change one relay:
/// the first, as they always did, or the one `--which` names. `--add-relay` registers the mailbox
/// at the new relay before the card names it (a card must never send reporters to a relay
/// without the mailbox); `--remove-relay` refuses to take off the last relay.
pub async fn set_relay(ctx: &Ctx, a: SetRelayArgs) -> Result<()> {
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
    let mut all = ngo.config.all_relays();
    let find = |all: &[NgoRelay], addr: &str| -> Result<usize> {
        all.iter()
            .position(|r| r.relay.eq_ignore_ascii_case(addr))
            .ok_or_else(|| {
                let names: Vec<&str> = all.iter().map(|r| r.relay.as_str()).collect();
                t_err!("ngo-no-such-relay", relay = addr, relays = names.join(", "))
                    .not_found()
                    .into()
            })
    };
    let mut removed = None;
    if let Some(addr) = &a.add_relay {
        let fp = parse(
            "--relay-fingerprint",
            a.relay_fingerprint.as_deref().unwrap_or_default(),
        )?;
        if all.iter().any(|r| r.relay.eq_ignore_ascii_case(addr)) {
            bail!(t_err!("ngo-relay-on-card", relay = addr.as_str()));
        }
        if all.len() >= MAX_CARD_RELAYS {
            bail!(t_err!("ngo-too-many-relays", max = MAX_CARD_RELAYS));
        }
        let added = NgoRelay {
            relay: addr.clone(),
            relay_fingerprint: fp,
            relay_fingerprint_next: None,
        };
        all.push(added.clone());
        ngo.config.set_relays(all);
        // The card's own checks (the address is host:port) before the relay is contacted.
        ngo.card(0, None)?;
        ctx.out.say(t!("ngo-registering", relay = addr.as_str()));
        register_at(&added.to_card(), &ngo.mailbox_key, &ngo.config.mailbox).await??;
    } else if let Some(addr) = &a.remove_relay {
        let i = find(&all, addr)?;
        if all.len() == 1 {
            bail!(t_err!("ngo-last-relay", relay = all[0].relay.as_str()));
        }
        removed = Some(all.remove(i).relay);
        ngo.config.set_relays(all);
        ngo.config.registered(addr);
    } else {
        if a.relay.is_none()
            && a.relay_fingerprint.is_none()
            && a.next_fingerprint.is_none()
            && !a.clear_next
        {
            bail!(t_err!("ngo-nothing-to-change"));
        }
        let i = match &a.which {
            Some(w) => find(&all, w)?,
            None => 0,
        };
        let r = &mut all[i];
        if let Some(fp) = &a.relay_fingerprint {
            r.relay_fingerprint = parse("--relay-fingerprint", fp)?;
        }
        if let Some(fp) = &a.next_fingerprint {
            let next = parse("--next-fingerprint", fp)?;
            if next == r.relay_fingerprint {
                bail!(t_err!("ngo-next-is-current"));
            }
            r.relay_fingerprint_next = Some(next);
        }
        if a.clear_next {
            r.relay_fingerprint_next = None;
        }
        if r.relay_fingerprint_next == Some(r.relay_fingerprint) {
            // `--relay-fingerprint NEXT`: the rotation is complete; pinning it twice means nothing.
            r.relay_fingerprint_next = None;
        }
        if let Some(relay) = &a.relay {
            if *relay != r.relay {
                let taken = all
                    .iter()
                    .enumerate()
                    .any(|(j, o)| j != i && o.relay.eq_ignore_ascii_case(relay));
                if taken {
                    bail!(t_err!("ngo-relay-on-card", relay = relay.as_str()));
                }
                // Reporters will deposit there: the mailbox must exist before the card says so.
                ctx.out.say(t!("ngo-registering", relay = relay.as_str()));
                let mut moved = all[i].to_card();
                moved.addr = relay.clone();
                register_at(&moved, &ngo.mailbox_key, &ngo.config.mailbox).await??;
                let old = std::mem::replace(&mut all[i].relay, relay.clone());
                ngo.config.registered(&old);
            }
        }
        ngo.config.set_relays(all);
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
    if let Some(r) = &removed {
        ctx.out
            .say(t!("ngo-relay-removed-note", relay = r.as_str()));
    }
    for r in card.relays() {
        if let Some(next) = r.fingerprint_next {
            ctx.out.say(t!("ngo-rotation-note", fp = next.to_string()));
        }
    }
    ctx.out.emit(json!({
        "type": "card_reissued", "changes": changes, "relay": card.relay,
        "relay_fingerprint": card.relay_fingerprint.to_string(),
        "relay_fingerprint_next": card.relay_fingerprint_next.map(|f| f.to_string()),
        "relays": super::card::relays_json(&card),
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
