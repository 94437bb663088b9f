//! `vigil ngo rotate-keys`: move an NGO to new (post-quantum) staff keys, and the destruction of
//! the old ones once reports sealed to them can no longer arrive.
//!
//! Why the old keys are kept at all: a reporter seals to the card they hold, and may hold the
//! old one until it expires; a report sealed just before can wait in their outbox and then at
//! the relay. Why they are destroyed: a key that still exists can be seized with the laptop,
//! and with the relay's recorded traffic it opens every report ever sealed to it. So each
//! retired key carries a date (the old card's expiry plus `--keep-old-keys`), and the first
//! `inbox fetch` after it re-seals to the current staff keys whatever stored report only that
//! key opens, then deletes the key from the home.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde_json::json;
use vigil_core::age::{self, AnyRecipient};
use vigil_core::card::format_utc;
use vigil_core::envelope::{ENVELOPE_STANZAS, MAX_INNER_LEN};

use super::ngo::{current_card, new_staff_identity, reissue, write_card};
use super::Ctx;
use crate::cli::RotateKeysArgs;
use crate::home::now_unix;
use crate::state::{inbox_entries, inbox_read, inbox_replace, Ngo, RetiredKey, Staff};
use crate::{t, t_err};

/// Replace every staff key by a new post-quantum one and re-issue the card.
pub fn rotate_keys(ctx: &Ctx, a: RotateKeysArgs) -> Result<()> {
    let mut ngo = Ngo::load(&ctx.home)?;
    let mut given: BTreeMap<String, AnyRecipient> = BTreeMap::new();
    for pair in &a.staff_recipient {
        let (name, r) = pair
            .split_once('=')
            .ok_or_else(|| t_err!("ngo-rotate-pair", pair = pair.as_str()).kind("usage"))?;
        let r: AnyRecipient = r
            .trim()
            .parse()
            .context(t_err!("ngo-bad-recipient").complete())?;
        if !r.is_post_quantum() {
            bail!(t_err!("ngo-staff-key-needs-pq").kind("usage"));
        }
        let name = name.trim().to_lowercase();
        if !ngo
            .config
            .staff
            .iter()
            .any(|s| s.name.to_lowercase() == name)
        {
            bail!(t_err!(
                "ngo-no-such-staff",
                name = name.as_str(),
                staff = staff_names(&ngo)
            )
            .kind("usage"));
        }
        given.insert(name, r);
    }
    let missing: Vec<&str> = ngo
        .config
        .staff
        .iter()
        .filter(|s| s.local_key.is_none() && !given.contains_key(&s.name.to_lowercase()))
        .map(|s| s.name.as_str())
        .collect();
    if !missing.is_empty() {
        bail!(t_err!("ngo-rotate-remote-staff", names = missing.join(", ")).kind("usage"));
    }

    let now = now_unix();
    let old_expiry = current_card(ctx)
        .and_then(|c| c.expires)
        .unwrap_or(now)
        .max(now);
    let destroy_after = old_expiry.saturating_add(a.keep_old_keys.as_secs());
    let mut staff = Vec::with_capacity(ngo.config.staff.len());
    for s in &ngo.config.staff {
        let (recipient, local_key) = match given.get(&s.name.to_lowercase()) {
            Some(r) => (r.clone(), None),
            None => {
                let id = new_staff_identity(true);
                let file = Ngo::save_staff_key(&ctx.home, &s.name, &id)?;
                (id.to_public(), Some(file))
            }
        };
        ngo.config.retired.push(RetiredKey {
            name: s.name.clone(),
            recipient: s.recipient.clone(),
            local_key: s.local_key.clone(),
            destroy_after,
        });
        staff.push(Staff {
            name: s.name.clone(),
            recipient: recipient.to_string(),
            local_key,
        });
    }
    ngo.config.staff = staff;
    let (card, text) = reissue(ctx, &ngo, a.validity.valid_for)?;
    ngo.save_config(&ctx.home)?;
    write_card(ctx, &text, a.card_out.as_deref())?;

    ctx.out.say(t!(
        "ngo-keys-rotated",
        keys = (card.recipients.len()),
        until = format_utc(destroy_after)
    ));
    ctx.out.say(t!("ngo-hand-new-card"));
    ctx.out
        .say(t!("contact-safety-number", sn = card.safety_number()));
    ctx.out.emit(json!({
        "type": "keys_rotated",
        "staff": card.recipients.iter().zip(&ngo.config.staff)
            .map(|(r, s)| json!({"name": s.name, "recipient": r.to_string(), "post_quantum": r.is_post_quantum()}))
            .collect::<Vec<_>>(),
        "old_keys_destroyed_after": destroy_after,
        "safety_number": card.safety_number(), "card": text, "expires": card.expires,
        "card_out": a.card_out.as_ref().map(|p| p.display().to_string()),
    }));
    Ok(())
}

fn staff_names(ngo: &Ngo) -> String {
    ngo.config
        .staff
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Destroy the retired staff keys whose date has passed: first re-seal to the current staff
/// keys every stored report that only they open here (so the archive stays readable), then
/// delete them from the home and from the settings. Returns how many keys were destroyed.
pub fn destroy_retired_keys(ctx: &Ctx, ngo: &mut Ngo) -> Result<usize> {
    let now = now_unix();
    let (due, kept): (Vec<RetiredKey>, Vec<RetiredKey>) = ngo
        .config
        .retired
        .drain(..)
        .partition(|r| r.destroy_after <= now);
    ngo.config.retired = kept;
    if due.is_empty() {
        return Ok(0);
    }
    let current: Vec<AnyRecipient> = ngo
        .config
        .staff
        .iter()
        .map(|s| s.recipient.parse::<AnyRecipient>())
        .collect::<Result<_, _>>()?;
    let mut old = Vec::new();
    for r in &due {
        if let Some(file) = &r.local_key {
            old.extend(Ngo::staff_key(&ctx.home, file)?);
        }
    }
    let keep_ids = ngo.local_identities(&ctx.home)?;
    let opens = |bytes: &[u8], ids: &[age::AnyIdentity]| {
        !ids.is_empty()
            && age::Decryptor::new(bytes)
                .and_then(|d| d.decrypt(ids))
                .is_ok()
    };
    if !old.is_empty() {
        for (id, _) in inbox_entries(&ctx.home)? {
            let (_, bytes) = inbox_read(&ctx.home, &id)?;
            if !opens(&bytes, &old) || opens(&bytes, &keep_ids) {
                continue;
            }
            let inner = age::decrypt_from_slice(&bytes, &old, MAX_INNER_LEN)
                .with_context(|| format!("cannot re-seal stored report {id}"))?;
            let resealed = age::encrypt_to_vec_with_decoys(
                &current,
                ENVELOPE_STANZAS,
                &inner,
                &mut rand::rngs::OsRng,
            )?;
            inbox_replace(&ctx.home, &id, &resealed)?;
        }
    }
    for r in &due {
        if let Some(file) = &r.local_key {
            Ngo::remove_staff_key(&ctx.home, file)?;
        }
    }
    ngo.save_config(&ctx.home)?;
    ctx.out
        .say(t!("ngo-retired-keys-destroyed", count = (due.len())));
    Ok(due.len())
}
