//! Getting a home's vault open, the one way every command does it.
//!
//! In order:
//!
//! 1. An **unlock session** (`vigil unlock --for 15m`, see [`crate::agent`]) running for this
//!    home hands over the vault key: no passphrase, no KDF. NGO staff triaging an inbox type
//!    their passphrase once.
//! 2. A passphrase given in memory ([`Home::with_passphrase`], `vigil demo`'s throwaway homes).
//! 3. [`PASSPHRASE_FILE_ENV`] names a file holding the passphrase (scripts, tests).
//! 4. The terminal: asked once to unlock, twice to choose one.
//! 5. Otherwise a one-line error that says how to give it.
//!
//! A home without a vault gets one the first time a command needs its state, under the
//! passphrase from the same sources; a home that still holds the plain files of Vigil before
//! issue 12 is migrated into it then (`crate::state::migrate`), and again at every unlock until
//! no plain file is left (a migration cut short by a crash finishes the next time).

use crate::age_cmd::passphrase::{have_terminal, read_passphrase_file, PASSPHRASE_FILE_ENV};
use crate::home::Home;
use crate::vault::{self, Vault};
use anyhow::{bail, Context, Result};
use secrecy::{ExposeSecret, SecretString};
use std::path::PathBuf;
use vigil_core::vault::{DEFAULT_WORK_FACTOR, MAX_WORK_FACTOR};

/// Environment variable that sets the scrypt work factor of a new key file (`vigil passphrase
/// change` and the first unlock). For slow devices and for test suites that make hundreds of
/// homes; the default is [`DEFAULT_WORK_FACTOR`], and less than [`MIN_WORK_FACTOR`] is refused.
pub const WORK_FACTOR_ENV: &str = "VIGIL_VAULT_WORK_FACTOR";

/// The least work factor accepted from [`WORK_FACTOR_ENV`]: 2^10 × 8 × 128 bytes = 1 MiB per
/// guess, only for tests. Real homes keep the default.
pub const MIN_WORK_FACTOR: u8 = 10;

/// The work factor for a new passphrase-locked file of `home` (its own override, else
/// [`work_factor`]).
pub fn work_factor_for(home: &Home) -> Result<u8> {
    match home.given_work_factor() {
        Some(wf) => Ok(wf),
        None => work_factor(),
    }
}

/// The work factor for a new key file.
pub fn work_factor() -> Result<u8> {
    match std::env::var(WORK_FACTOR_ENV) {
        Err(_) => Ok(DEFAULT_WORK_FACTOR),
        Ok(v) => match v.trim().parse::<u8>() {
            Ok(n) if (MIN_WORK_FACTOR..=MAX_WORK_FACTOR).contains(&n) => Ok(n),
            _ => bail!(
                "{WORK_FACTOR_ENV}={v:?} is not a work factor from {MIN_WORK_FACTOR} to {MAX_WORK_FACTOR}; unset it to use the default {DEFAULT_WORK_FACTOR}"
            ),
        },
    }
}

/// What the passphrase is for, which decides the prompt and whether it is asked twice.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Asking {
    /// Unlock an existing home.
    Unlock,
    /// Choose the passphrase of a new (or newly migrated) home.
    Choose,
    /// Choose a replacement (`vigil passphrase change`).
    ChooseNew,
    /// Choose the duress passphrase of a check-in alert.
    Duress,
}

/// The passphrase for `home`, from memory, the file in [`PASSPHRASE_FILE_ENV`] or the terminal.
pub fn passphrase(home: &Home, asking: Asking) -> Result<SecretString> {
    if let Some(p) = home.given_passphrase() {
        return Ok(p.clone());
    }
    passphrase_from(
        std::env::var_os(PASSPHRASE_FILE_ENV).map(PathBuf::from),
        asking,
    )
}

/// The passphrase from `file` (if set and not empty), else the terminal.
pub fn passphrase_from(file: Option<PathBuf>, asking: Asking) -> Result<SecretString> {
    if let Some(f) = file.filter(|f| !f.as_os_str().is_empty()) {
        return read_passphrase_file(&f);
    }
    if !have_terminal() {
        bail!(crate::t_err!("vault-no-passphrase"));
    }
    let prompt = match asking {
        Asking::Unlock => crate::t!("vault-prompt-unlock"),
        Asking::Choose => crate::t!("vault-prompt-choose"),
        Asking::ChooseNew => crate::t!("vault-prompt-new"),
        Asking::Duress => crate::t!("vault-prompt-duress"),
    };
    let first = SecretString::from(
        rpassword::prompt_password(format!("{prompt} "))
            .context("cannot read the passphrase from the terminal")?,
    );
    if first.expose_secret().is_empty() {
        bail!(crate::t_err!("vault-empty-passphrase"));
    }
    if asking != Asking::Unlock {
        let again = SecretString::from(
            rpassword::prompt_password(format!("{} ", crate::t!("vault-prompt-again")))
                .context("cannot read the passphrase from the terminal")?,
        );
        if first.expose_secret() != again.expose_secret() {
            bail!(crate::t_err!("vault-passphrases-differ"));
        }
    }
    Ok(first)
}

/// Open the vault of `home` (see the module docs); used by [`Home::vault`].
pub fn open(home: &Home) -> Result<Vault> {
    let root = home.root();
    let mut vault = if vault::exists(root) {
        match crate::agent::key_for(root).and_then(|k| Vault::with_key(root, k).ok()) {
            Some(v) => v,
            None => Vault::unlock(root, &passphrase(home, Asking::Unlock)?)?,
        }
    } else {
        let pass = passphrase(home, Asking::Choose)?;
        let wf = match home.given_work_factor() {
            Some(wf) => wf,
            None => work_factor()?,
        };
        Vault::create(root, &pass, wf)?
    };
    crate::state::migrate::migrate(root, &mut vault)?;
    Ok(vault)
}

/// Open (or, the first time, create) the vault of `home` with `passphrase` itself, never an
/// unlock session: for commands that must know the passphrase is the home's (arming a
/// check-in seals the check-in key under it), and leave the vault open in `home`.
pub fn open_with(home: &Home, passphrase: &SecretString) -> Result<()> {
    let root = home.root();
    let mut vault = if vault::exists(root) {
        Vault::unlock(root, passphrase)?
    } else {
        let wf = match home.given_work_factor() {
            Some(wf) => wf,
            None => work_factor()?,
        };
        Vault::create(root, passphrase, wf)?
    };
    crate::state::migrate::migrate(root, &mut vault)?;
    home.set_vault(vault)
}
