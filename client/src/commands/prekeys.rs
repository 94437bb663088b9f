//! Prekeys (issue 16): the NGO makes, publishes and destroys them; the reporter finds, checks
//! and uses them. The design and its limits are in docs/threat-model.md ("Forward secrecy:
//! prekeys").

use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use vigil_core::card::{format_utc, CardRelay};
use vigil_core::ids::MailboxId;
use vigil_core::keys::PublicSigningKey;
use vigil_core::prekey::{PrekeyBundle, PrekeyError};

use super::Ctx;
use crate::cli::NgoPrekeysArgs;
use crate::home::now_unix;
use crate::relay::RelayClient;
use crate::state::prekeys::{cache_bundle, cached_bundle, PrekeyState};
use crate::state::Ngo;
use crate::{t, t_err};

/// How long a reporter's client waits for a relay's answer to GetPrekey before sealing without
/// it: the report is what matters, and it must not wait on a slow network for a layer it can do
/// without.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// After `ngo init`: make the first prekey and publish it at every relay where the mailbox is
/// registered, so that the first reports already have forward secrecy. Best effort.
pub async fn publish_first(ctx: &Ctx, ngo: &Ngo) -> Result<()> {
    let mut state = PrekeyState::load(&ctx.home)?;
    renew_if_due(ctx, ngo, &mut state, now_unix())?;
    for relay in ngo.config.relays() {
        if ngo.config.is_pending(&relay.addr) {
            continue;
        }
        if let Ok(client) =
            RelayClient::connect_pinned(&relay.addr, &relay.accepted_fingerprints()).await
        {
            publish_at(ctx, ngo, &mut state, &relay, &client).await?;
            client.close().await;
        }
    }
    Ok(())
}

/// Make a new prekey if one is due (`PrekeyState::renewal_due`); says so.
pub fn renew_if_due(ctx: &Ctx, ngo: &Ngo, state: &mut PrekeyState, now: u64) -> Result<()> {
    if state.renewal_due(now) {
        let k = state.make(&ctx.home, ngo, now)?;
        ctx.out.say(t!(
            "prekey-made",
            id = k.id.as_str(),
            until = format_utc(k.expires)
        ));
    }
    Ok(())
}

/// Publish the newest prekey at `relay` over `client` if it is not there yet. A failure is a
/// warning (reporters then seal with the long-term keys only), never the fetch's.
pub async fn publish_at(
    ctx: &Ctx,
    ngo: &Ngo,
    state: &mut PrekeyState,
    relay: &CardRelay,
    client: &RelayClient,
) -> Result<()> {
    if !state.policy.enabled {
        return Ok(());
    }
    let Some(newest) = state.keys.last_mut() else {
        return Ok(());
    };
    if newest.expires <= now_unix()
        || newest
            .published
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&relay.addr))
    {
        return Ok(());
    }
    let bundle = newest.bundle_bytes()?;
    match client
        .publish_prekey(ngo.mailbox_key.as_dalek(), &bundle)
        .await
    {
        Ok(()) => {
            newest.published.push(relay.addr.clone());
            state.save(&ctx.home)?;
        }
        Err(e) => ctx.out.say(format!(
            "{}: {}",
            t!("warning-prefix"),
            t!(
                "prekey-publish-failed",
                relay = relay.addr.as_str(),
                error = e.to_string()
            )
        )),
    }
    Ok(())
}

/// After a fetch that emptied every relay of the card: destroy the prekeys past their expiry
/// and grace period, and say so.
pub fn destroy_due(ctx: &Ctx, state: &mut PrekeyState, now: u64) -> Result<()> {
    let gone = state.destroy_due(&ctx.home, now)?;
    if !gone.is_empty() {
        ctx.out.say(t!("prekey-destroyed", count = (gone.len())));
        ctx.out
            .emit(json!({"type": "prekeys_destroyed", "ids": gone}));
    }
    Ok(())
}

/// `vigil ngo prekeys`: show the prekeys and their policy, or change the policy. A shorter
/// lifetime than the newest prekey's makes a new one at once and publishes it.
pub async fn command(ctx: &Ctx, a: NgoPrekeysArgs) -> Result<()> {
    let ngo = Ngo::load(&ctx.home)?;
    let mut state = PrekeyState::load(&ctx.home)?;
    let now = now_unix();
    let mut changed = false;
    if let Some(l) = a.lifetime {
        if l.as_secs() == 0 || l.as_secs() > vigil_core::prekey::MAX_LIFETIME_SECS {
            anyhow::bail!(t_err!("prekey-bad-lifetime").kind("usage"));
        }
        state.policy.lifetime_secs = l.as_secs();
        changed = true;
    }
    if let Some(g) = a.grace {
        state.policy.grace_secs = g.as_secs();
        changed = true;
    }
    if a.off {
        state.policy.enabled = false;
        changed = true;
    }
    if a.on {
        state.policy.enabled = true;
        changed = true;
    }
    if changed {
        state.save(&ctx.home)?;
    }
    let too_long = state
        .newest()
        .is_some_and(|k| k.expires > now.saturating_add(state.policy.lifetime_secs));
    if state.policy.enabled && (a.renew || too_long || state.renewal_due(now)) {
        let k = state.make(&ctx.home, &ngo, now)?;
        ctx.out.say(t!(
            "prekey-made",
            id = k.id.as_str(),
            until = format_utc(k.expires)
        ));
        for relay in ngo.config.relays() {
            match RelayClient::connect_pinned(&relay.addr, &relay.accepted_fingerprints()).await {
                Ok(client) => {
                    publish_at(ctx, &ngo, &mut state, &relay, &client).await?;
                    client.close().await;
                }
                Err(e) => ctx.out.say(format!(
                    "{}: {}",
                    t!("warning-prefix"),
                    t!(
                        "prekey-publish-failed",
                        relay = relay.addr.as_str(),
                        error = e.to_string()
                    )
                )),
            }
        }
    }
    if !state.policy.enabled {
        ctx.out.say(t!("prekey-off"));
    }
    ctx.out.say(t!(
        "prekey-policy",
        lifetime = span(state.policy.lifetime_secs),
        grace = span(state.policy.grace_secs)
    ));
    for k in &state.keys {
        ctx.out.data(t!(
            "prekey-line",
            id = k.id.as_str(),
            until = format_utc(k.expires),
            relays = (k.published.len())
        ));
    }
    ctx.out.emit(json!({
        "type": "prekeys",
        "enabled": state.policy.enabled,
        "lifetime_secs": state.policy.lifetime_secs,
        "grace_secs": state.policy.grace_secs,
        "keys": state.keys.iter().map(|k| json!({
            "id": k.id, "created": k.created, "expires": k.expires,
            "published": k.published, "expired": k.expires <= now,
        })).collect::<Vec<_>>(),
    }));
    Ok(())
}

/// A span of seconds in the unit a person reads best: days, hours, minutes or seconds.
fn span(secs: u64) -> String {
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Which protection a report copy for one NGO gets.
pub enum Protection {
    /// Sealed to the NGO's current prekey as well (forward secrecy). Boxed: the bundle holds
    /// a 1216-byte key.
    Prekey(Box<PrekeyBundle>),
    /// The long-term staff keys only, and why.
    LongTermOnly(String),
}

/// The NGO's current prekey for a copy about to be deposited over `client`: the cached bundle
/// while it is in the first half of its life, else asked of the relay on this connection (the
/// relay learns nothing the deposit does not tell it), checked against the card's identity key
/// `ngo` and `mailbox`, and cached; when the relay has none, or hands out one the card refuses
/// (said as a warning), or does not know the request, the cached bundle if it is still valid. The copy is sealed to its prekey at deposit time, not when
/// the report was written: a copy that waited in the outbox for days gets the prekey current
/// when it leaves, not one the NGO may have destroyed meanwhile.
pub async fn for_deposit(
    ctx: &Ctx,
    client: &RelayClient,
    ngo: &PublicSigningKey,
    mailbox: &MailboxId,
    name: &str,
    now: u64,
) -> Protection {
    // A cached bundle in the first half of its life is used as it is: the NGO makes its next
    // prekey only at the half, so there is nothing newer to ask for, and one request fewer per
    // deposit keeps a reporter flushing many copies well inside the relay's rates.
    let cached = cached_bundle(&ctx.home, ngo)
        .ok()
        .flatten()
        .and_then(|bytes| PrekeyBundle::verify(&bytes, ngo, mailbox, now).ok());
    if let Some(b) = &cached {
        if now
            < b.created
                .saturating_add(b.expires.saturating_sub(b.created) / 2)
        {
            return Protection::Prekey(Box::new(b.clone()));
        }
    }
    let mut refused: Option<PrekeyError> = None;
    let mut failed: Option<String> = None;
    match tokio::time::timeout(LOOKUP_TIMEOUT, client.get_prekey(*mailbox)).await {
        Ok(Ok(Some(bytes))) => match PrekeyBundle::verify(&bytes, ngo, mailbox, now) {
            Ok(b) => {
                // Best effort: without the cache, a later copy whose relay has none to give
                // goes with the long-term keys only.
                let _ = cache_bundle(&ctx.home, ngo, &bytes);
                return Protection::Prekey(Box::new(b));
            }
            Err(e) => refused = Some(e),
        },
        Ok(Ok(None)) => {}
        Ok(Err(e)) => failed = Some(e.to_string()),
        Err(_) => failed = Some(t!("prekey-lookup-slow")),
    }
    if let Some(e) = &refused {
        ctx.out
            .say(format!("{}: {name}: {e}", t!("warning-prefix")));
    }
    // The bundle verified last time will do while its signed expiry allows: it is the NGO's
    // own, whatever a relay hands out now.
    if let Some(b) = cached {
        return Protection::Prekey(Box::new(b));
    }
    Protection::LongTermOnly(match (refused, failed) {
        (Some(e), _) => e.to_string(),
        (None, Some(e)) => t!("prekey-unreachable", error = e),
        (None, None) => t!("prekey-none-published"),
    })
}
