//! `vigil ngo init`, `vigil ngo add-staff` and `vigil ngo set-relay`.

use super::Ctx;
use crate::cli::{AddStaffArgs, NgoInitArgs, SetRelayArgs};
use crate::home::{now_unix, PRIVATE};
use crate::relay::RelayClient;
use crate::state::{Ngo, NgoConfig, Staff};
use anyhow::{bail, Context, Result};
use serde_json::json;
use vigil_core::age::x25519;
use vigil_core::card::{RecipientCard, MAX_CARD_LEN};
use vigil_core::ids::{CertFingerprint, MailboxId};
use vigil_core::keys::SigningSecret;
use vigil_fs::{read_limited, write_atomic};

/// Create keys, register the mailbox, write the card.
pub async fn init(ctx: &Ctx, a: NgoInitArgs) -> Result<()> {
    if Ngo::exists(&ctx.home) {
        bail!(
            "{} already holds an NGO inbox; use another --home for a second NGO",
            ctx.home.root().display()
        );
    }
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
    let (card, text) = ngo.card(now_unix())?;
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
    ctx.out.say("Reporters should compare this number with the one `vigil contact add` shows them, over a channel you trust.");
    ctx.out.emit(json!({
        "type": "ngo_created", "name": card.name, "mailbox": mailbox.to_string(),
        "safety_number": sn, "card": text, "card_out": a.card_out.as_ref().map(|p| p.display().to_string()),
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
    let (card, text) = ngo.card(now_unix())?;
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
        "safety_number": card.safety_number(), "card": text,
    }));
    Ok(())
}

/// The card this NGO last issued, if readable: a re-issued card's `created` must be later, so
/// that `contact add` takes the new card as newer even when two are issued within one second.
/// Store the signed card as this home's current card and, when asked, also at `card_out`.
fn write_card(ctx: &Ctx, text: &str, card_out: Option<&std::path::Path>) -> Result<()> {
    let line = format!("{text}\n");
    write_atomic(&ctx.home.path("ngo/card.txt"), line.as_bytes(), PRIVATE)?;
    if let Some(p) = card_out {
        write_atomic(p, line.as_bytes(), PRIVATE)?;
    }
    Ok(())
}

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
    let (old_card, _) = ngo.card(previous.as_ref().map_or(0, |c| c.created))?;
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
    let created = now_unix().max(previous.map_or(0, |c| c.created.saturating_add(1)));
    let (card, text) = ngo.card(created)?;
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
    }));
    Ok(())
}
