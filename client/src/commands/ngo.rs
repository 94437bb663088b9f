//! `vigil ngo init`, `add-staff`, `remove-staff`, `renew-card` and `set-relay`.

use super::Ctx;
use crate::cli::{AddStaffArgs, NgoInitArgs, RemoveStaffArgs, RenewCardArgs, SetRelayArgs};
use crate::failure::NotFound;
use crate::home::{now_unix, PRIVATE};
use crate::relay::RelayClient;
use crate::state::{inbox_entries, Ngo, NgoConfig, Staff};
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::time::Duration;
use vigil_core::age::x25519;
use vigil_core::card::{format_utc, Expiry, RecipientCard, MAX_CARD_LEN};
use vigil_core::ids::{CertFingerprint, MailboxId};
use vigil_core::keys::SigningSecret;
use vigil_fs::{read_limited, remove_durably, write_atomic};

/// Largest stored envelope read when checking which keys open it.
const MAX_INBOX_FILE: u64 = (vigil_core::envelope::MAX_INNER_LEN as u64) * 2 + 64 * 1024;

/// Create keys, register the mailbox, write the card.
pub async fn init(ctx: &Ctx, a: NgoInitArgs) -> Result<()> {
    if Ngo::exists(&ctx.home) {
        bail!(
            "{} already holds an NGO inbox; use another --home for a second NGO",
            ctx.home.root().display()
        );
    }
    // Checked before anything is registered at the relay.
    expiry(0, a.validity.valid_for)?;
    let fingerprint: CertFingerprint = a.relay_fingerprint.parse().context(
        "--relay-fingerprint is not a SHA-256 fingerprint; copy it from `vigil-relay fingerprint`",
    )?;
    let identity = SigningSecret::generate(&mut rand::rngs::OsRng);
    let mailbox_key = SigningSecret::generate(&mut rand::rngs::OsRng);
    let staff_id = x25519::Identity::generate(&mut rand::rngs::OsRng);

    ctx.out
        .say(format!("Registering a mailbox at {} ...", a.relay));
    let client = RelayClient::connect(&a.relay, &fingerprint).await?;
    let mailbox = client.register(mailbox_key.as_dalek()).await?;
    client.close().await;
    if mailbox != MailboxId::for_key(&mailbox_key.public().to_bytes()) {
        bail!("the relay answered with a mailbox id that does not belong to our key; do not use this relay");
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
    ctx.out.say(format!(
        "NGO inbox \"{}\" created in {}",
        card.name,
        ctx.home.root().display()
    ));
    if let Some(p) = &a.card_out {
        ctx.out.say(format!(
            "Recipient card written to {} (show it as a QR code: vigil card show --qr)",
            p.display()
        ));
    }
    ctx.out.say(format!("Safety number: {sn}"));
    say_valid_until(ctx, &card);
    ctx.out.say("Reporters should compare this number with the one `vigil contact add` shows them, over a channel you trust.");
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
        bail!(
            "a card holds at most {} staff keys; remove one first",
            vigil_core::card::MAX_CARD_RECIPIENTS
        );
    }
    let (recipient, local_key) = match &a.recipient {
        Some(r) => {
            let rec: x25519::Recipient = r
                .parse()
                .context("--recipient is not an age recipient (age1...)")?;
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
        bail!("this key is already on the card");
    }
    ngo.config.staff.push(Staff {
        name: a.name.clone(),
        recipient: recipient.to_string(),
        local_key: local_key.clone(),
    });
    let (card, text) = reissue(ctx, &ngo, a.validity.valid_for)?;
    ngo.save_config(&ctx.home)?;
    write_card(ctx, &text, a.card_out.as_deref())?;
    ctx.out.say(format!(
        "Added staff key for {} ({recipient}); the card now has {} keys.",
        a.name,
        card.recipients.len()
    ));
    ctx.out.say("Give reporters the updated card: reports sealed with the old card are not readable by the new key.");
    ctx.out
        .say(format!("Safety number: {}", card.safety_number()));
    ctx.out.emit(json!({
        "type": "staff_added", "name": a.name, "recipient": recipient.to_string(),
        "key_file": local_key.map(|f| ctx.home.path("ngo/staff").join(f).display().to_string()),
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
            return Err(NotFound(format!(
                "no staff member named \"{wanted}\" on this NGO's card; the staff are {}",
                names.join(", ")
            ))
            .into());
        }
        [i] => *i,
        _ => bail!("several staff members are named \"{wanted}\"; give the key (age1...) of the one to remove instead"),
    };
    if ngo.config.staff.len() == 1 {
        bail!(
            "\"{}\" holds the only staff key on the card, and a card needs one; add the new key first (`vigil ngo add-staff --name NAME`), then remove this one",
            ngo.config.staff[index].name
        );
    }
    let removed = ngo.config.staff.remove(index);
    if let (Some(file), false) = (&removed.local_key, a.force) {
        let only_this = reports_only_for(ctx, &ngo, file)?;
        if only_this > 0 {
            bail!(
                "{} in this inbox can only be opened with the key of \"{}\", which removing it would delete; read them first, or keep a copy of {} somewhere safe, then rerun with --force",
                crate::output::count(only_this as u64, "report", "reports"),
                removed.name,
                ctx.home.path("ngo/staff").join(file).display()
            );
        }
    }
    let (card, text) = reissue(ctx, &ngo, a.validity.valid_for)?;
    ngo.save_config(&ctx.home)?;
    write_card(ctx, &text, a.card_out.as_deref())?;
    // Only now that no saved setting names the key file: a crash before this line leaves an
    // unused key file, never settings naming a key that is gone.
    let key_deleted = match &removed.local_key {
        Some(file) => {
            let path = ctx.home.path("ngo/staff").join(file);
            remove_durably(&path)?;
            Some(path)
        }
        None => None,
    };
    ctx.out.say(format!(
        "Removed the staff key of {} ({}); the card now has {}.",
        removed.name,
        removed.recipient,
        crate::output::count(card.recipients.len() as u64, "key", "keys")
    ));
    if let Some(p) = &key_deleted {
        ctx.out.say(format!(
            "Deleted its secret key from this home ({}).",
            p.display()
        ));
    }
    ctx.out.say("Give every reporter the re-issued card: until they import it, their reports are still sealed to the removed key too. Reports sealed before stay readable by it.");
    if ngo.config.staff.iter().all(|s| s.local_key.is_none()) {
        ctx.out.say("Note: this home now holds no staff key, so it cannot open reports; fetch and read them where a staff key is.");
    }
    ctx.out
        .say(format!("Safety number: {}", card.safety_number()));
    say_valid_until(ctx, &card);
    ctx.out.emit(json!({
        "type": "staff_removed", "name": removed.name, "recipient": removed.recipient,
        "key_deleted": key_deleted.map(|p| p.display().to_string()),
        "safety_number": card.safety_number(), "card": text, "created": card.created,
        "expires": card.expires, "card_out": a.card_out.as_ref().map(|p| p.display().to_string()),
    }));
    Ok(())
}

/// How many reports stored in this inbox the staff key in `file` opens but none of the keys
/// `ngo` (already without it) holds here: deleting the file would make them unreadable here.
fn reports_only_for(ctx: &Ctx, ngo: &Ngo, file: &str) -> Result<usize> {
    let text = zeroize::Zeroizing::new(read_limited(
        &ctx.home.path("ngo/staff").join(file),
        16 * 1024,
    )?);
    let text = std::str::from_utf8(&text).context("staff key file is not text")?;
    let removed = vigil_core::age::parse_identity_file(text)
        .with_context(|| format!("staff key {file} is damaged"))?;
    let remaining = ngo.local_identities(&ctx.home)?;
    // The header alone says which keys open a file; the body is not read.
    let opens = |bytes: &[u8], ids: &[x25519::Identity]| {
        vigil_core::age::Decryptor::new(bytes)
            .and_then(|d| d.decrypt(ids))
            .is_ok()
    };
    let mut count = 0;
    for (id, _) in inbox_entries(&ctx.home)? {
        let bytes = read_limited(
            &ctx.home.path("inbox").join(format!("{id}.age")),
            MAX_INBOX_FILE,
        )?;
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
    ctx.out.say(format!(
        "Safety number: {sn} (a renewal alone does not change it)"
    ));
    if let Some(p) = &a.card_out {
        ctx.out
            .say(format!("Renewed card written to {}.", p.display()));
    }
    ctx.out.say("Hand the renewed card to every reporter before the old one expires: they cannot send with an expired card.");
    ctx.out.emit(json!({
        "type": "card_renewed", "safety_number": sn, "card": text, "created": card.created,
        "expires": card.expires, "card_out": a.card_out.as_ref().map(|p| p.display().to_string()),
    }));
    Ok(())
}

/// The expiry of a card dated `created` and valid for `valid_for`.
fn expiry(created: u64, valid_for: Duration) -> Result<u64> {
    if valid_for.as_secs() == 0 {
        bail!("--valid-for must be at least 1s; e.g. 365d for a year");
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
            "warning: this NGO's card expires on {}; run `vigil ngo renew-card --card-out FILE` and hand the renewed card to reporters",
            format_utc(expires)
        )),
        Expiry::Expired { expires } => ctx.out.say(format!(
            "warning: this NGO's card expired on {}: reporters cannot send to it; run `vigil ngo renew-card --card-out FILE` and hand the renewed card to reporters",
            format_utc(expires)
        )),
        Expiry::Valid { .. } | Expiry::Never => {}
    }
}

fn say_valid_until(ctx: &Ctx, card: &RecipientCard) {
    if let Some(e) = card.expires {
        ctx.out.say(format!(
            "The card is valid until {}; renew it before then with `vigil ngo renew-card`.",
            format_utc(e)
        ));
    }
}

/// Store the signed card as this home's current card and, when asked, also at `card_out`.
fn write_card(ctx: &Ctx, text: &str, card_out: Option<&std::path::Path>) -> Result<()> {
    let line = format!("{text}\n");
    write_atomic(&ctx.home.path("ngo/card.txt"), line.as_bytes(), PRIVATE)?;
    if let Some(p) = card_out {
        write_atomic(p, line.as_bytes(), PRIVATE)?;
    }
    Ok(())
}

/// The card this NGO last issued, if readable: a re-issued card's `created` must be later, so
/// that `contact add` takes the new card as newer even when two are issued within one second.
fn current_card(ctx: &Ctx) -> Option<RecipientCard> {
    let bytes = read_limited(&ctx.home.path("ngo/card.txt"), MAX_CARD_LEN as u64).ok()?;
    RecipientCard::parse(std::str::from_utf8(&bytes).ok()?).ok()
}

/// Change the relay address or pinned certificates and re-issue the card.
pub async fn set_relay(ctx: &Ctx, a: SetRelayArgs) -> Result<()> {
    if a.relay.is_none()
        && a.relay_fingerprint.is_none()
        && a.next_fingerprint.is_none()
        && !a.clear_next
    {
        bail!("nothing to change; give --relay, --relay-fingerprint, --next-fingerprint or --clear-next (see `vigil ngo set-relay --help`)");
    }
    let parse = |flag: &str, v: &str| -> Result<CertFingerprint> {
        v.parse().with_context(|| {
            format!("{flag} is not a SHA-256 fingerprint; copy it from `vigil-relay fingerprint`")
        })
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
            bail!("--next-fingerprint is the relay's current certificate; give the fingerprint of the next one (`vigil-relay fingerprint --next`)");
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
            ctx.out
                .say(format!("Registering the mailbox at {relay} ..."));
            let client = RelayClient::connect_pinned(relay, &ngo.config.pinned()).await?;
            let mailbox = client.register(ngo.mailbox_key.as_dalek()).await?;
            client.close().await;
            if !mailbox.ct_eq(&ngo.config.mailbox) {
                bail!("the relay at {relay} answered with a mailbox id that does not belong to our key; do not use this relay");
            }
            ngo.config.relay = relay.clone();
        }
    }
    let (card, text) = reissue(ctx, &ngo, a.validity.valid_for)?;
    let changes = super::contact::describe_changes(&old_card, &card);
    ngo.save_config(&ctx.home)?;
    write_card(ctx, &text, a.card_out.as_deref())?;
    let sn = card.safety_number();
    if changes.is_empty() {
        ctx.out
            .say("Card re-issued; the relay settings were already as given.");
    } else {
        ctx.out
            .say(format!("Card re-issued: {}.", changes.join("; ")));
    }
    ctx.out.say(format!("Safety number: {sn}"));
    say_valid_until(ctx, &card);
    if let Some(p) = &a.card_out {
        ctx.out
            .say(format!("New recipient card written to {}.", p.display()));
    }
    ctx.out.say("Hand the new card to every reporter (vigil card show --qr, or the card file) the way you handed out the first one.");
    if let Some(next) = card.relay_fingerprint_next {
        ctx.out.say(format!(
            "Reporters with this card accept the relay's current certificate and the next one ({next}). \
             Reporters still holding an older card will be refused once the operator promotes the next certificate: \
             reach them all before that."
        ));
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
