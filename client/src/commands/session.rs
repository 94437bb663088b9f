//! `vigil unlock`, `vigil lock`, `vigil passphrase change`: the passphrase side of the
//! encrypted home (`crate::vault`, `crate::unlock`, `crate::agent`).

use super::Ctx;
use crate::cli::{PassphraseChangeArgs, UnlockArgs};
use crate::output::Output;
use crate::unlock::{passphrase_from, Asking};
use anyhow::{bail, Result};
use serde_json::json;
use std::path::Path;
use vigil_core::card::format_utc;

/// Open the vault (asking for the passphrase unless a session is already open) and leave its
/// key with an unlock session for `a.for_`.
pub fn unlock(ctx: &Ctx, a: UnlockArgs) -> Result<()> {
    if a.for_ > crate::agent::MAX_SESSION {
        bail!(crate::t_err!(
            "unlock-too-long",
            max = (crate::agent::MAX_SESSION.as_secs() / 3600u64)
        ));
    }
    let secs = a.for_.as_secs().max(1);
    {
        let vault = ctx.home.vault()?;
        crate::agent::start(
            ctx.home.root(),
            vault.key(),
            std::time::Duration::from_secs(secs),
        )?;
    }
    let until = crate::home::now_unix() + secs;
    ctx.out.say(crate::t!(
        "unlock-done",
        until = format_utc(until),
        minutes = secs.div_ceil(60)
    ));
    ctx.out
        .emit(json!({"type": "unlocked", "until": until, "seconds": secs}));
    Ok(())
}

/// End the session of the home at `root`, if one is open.
pub fn lock(root: &Path, out: Output) -> Result<()> {
    let was = crate::agent::stop(root);
    out.say(if was {
        crate::t!("lock-done")
    } else {
        crate::t!("lock-none")
    });
    out.emit(json!({"type": "locked", "was_unlocked": was}));
    Ok(())
}

/// Put the vault key under a new passphrase. The current one is needed (an open session is not
/// enough: whoever finds an unlocked laptop must not be able to lock its owner out).
pub fn change(ctx: &Ctx, a: PassphraseChangeArgs) -> Result<()> {
    let root = ctx.home.root();
    if !crate::vault::exists(root) {
        // A home without a vault gets one under the new passphrase (and is migrated into it).
        let new = passphrase_from(a.new_passphrase_file.clone(), Asking::ChooseNew)?;
        let home = ctx.home.clone().with_passphrase(new);
        drop(home.vault()?);
    } else {
        let current = crate::unlock::passphrase(&ctx.home, Asking::Unlock)?;
        crate::unlock::open_with(&ctx.home, &current)?;
        let new = passphrase_from(a.new_passphrase_file.clone(), Asking::ChooseNew)?;
        ctx.home
            .vault()?
            .change_passphrase(&new, crate::unlock::work_factor_for(&ctx.home)?)?;
        // An armed check-in's keys were sealed under the old passphrase.
        super::checkin::reseal(&ctx.home, &new)?;
    }
    // A session holds the key, not the passphrase, so it would go on working; end it so the
    // change takes effect everywhere at once.
    crate::agent::stop(root);
    ctx.out.say(crate::t!("passphrase-changed"));
    ctx.out.emit(json!({"type": "passphrase_changed"}));
    Ok(())
}
