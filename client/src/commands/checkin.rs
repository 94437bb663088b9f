//! `vigil checkin arm|status|disarm`, and `vigil checkin` itself: the alarm that goes off when
//! a reporter goes silent (docs/protocol.md "Check-in alerts", docs/threat-model.md).
//!
//! At arming, the alert (a report, sealed for each named NGO like any other) is deposited at
//! each NGO's relay, sealed there until the reporter stops checking in. Two Ed25519 keys are made
//! for each relay's alert, for this alert alone: the *check-in key* keeps it sealed, the *duress
//! key* releases it at once. The relay holds both public keys; the device holds the secret ones
//! only inside two files:
//!
//! ```text
//! checkin/<32 hex>   the check-in keys, age-encrypted under the home's passphrase (scrypt)
//! checkin/<32 hex>   the duress keys, age-encrypted under the duress passphrase (scrypt)
//! checkin/last       when the last check-in was made, encrypted to the vault's public key
//! ```
//!
//! Both key files have the same size and random names, and hold the same fields. `vigil
//! checkin` reads the passphrase, tries it on *both* files (always both, in name order, so the
//! work is the same whichever opens), signs with the key of the one that opened, and writes
//! `checkin/last` the same way: nothing in its output, exit code, timing or files afterwards
//! tells the two passphrases apart. Only the relay can, by which key verifies; it answers both
//! with the same bytes. `checkin` and `checkin disarm` therefore never open the vault (the duress
//! passphrase does not open it; that is the decision written in docs/threat-model.md).
//!
//! The vault keeps a record of the armed alert (`checkin/current`: the NGOs, the schedule, and
//! which file is the check-in one, so `vigil passphrase change` can re-seal it) for `vigil
//! checkin status`, which is a command of the home's owner and opens the vault.

use super::Ctx;
use crate::cli::{CheckinArgs, CheckinArmArgs};
use crate::home::now_unix;
use crate::relay::{RelayClient, RelayError};
use crate::unlock::{passphrase, passphrase_from, Asking};
use anyhow::{bail, Context, Result};
use ed25519_dalek::SigningKey;
use rand::rngs::OsRng;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use vigil_core::age::{self, x25519};
use vigil_core::card::{format_utc, RecipientCard};
use vigil_core::envelope;
use vigil_core::ids::{AlertId, CertFingerprint};
use vigil_core::report::{Report, MAX_REPORT_JSON_LEN};
use vigil_core::vault::MAX_WORK_FACTOR;
use vigil_core::wire::arm::AlertEnvelope;
use vigil_fs::{read_limited, remove_durably, write_atomic};
use zeroize::Zeroizing;

/// The vault record of the armed alert.
const RECORD: &str = "checkin/current";
/// The directory of the check-in files, below the home.
const DIR: &str = "checkin";
/// The file of the last check-in.
const LAST: &str = "last";
/// Every key file's plaintext is padded to this many bytes, so the two files are the same size
/// whatever the relay addresses in them.
const PADDED_LEN: usize = 8192;
/// Largest key file read.
const MAX_FILE: u64 = 64 * 1024;

/// One relay's alert, as a key file holds it.
#[derive(Clone, Serialize, Deserialize)]
struct RelayAlert {
    /// The relay address.
    relay: String,
    /// Its pinned certificates (hex).
    pins: Vec<String>,
    /// The alert id (hex).
    alert: String,
    /// The secret key that signs for it here (hex): check-in or duress, whichever file this is.
    key: String,
}

/// What each key file holds (the same fields in both).
#[derive(Clone, Serialize, Deserialize)]
struct KeyFile {
    /// Format.
    v: u32,
    /// Seconds between check-ins.
    every: u32,
    /// Seconds of slack.
    grace: u32,
    /// The vault's public key, for `checkin/last`.
    vault_recipient: String,
    /// One alert per relay.
    alerts: Vec<RelayAlert>,
}

/// The vault's record of the armed alert.
#[derive(Serialize, Deserialize)]
struct Armed {
    /// The NGOs it goes to.
    to: Vec<String>,
    every: u32,
    grace: u32,
    /// When it was armed (this device's clock).
    armed_at: u64,
    /// The file name (in `checkin/`) of the check-in keys.
    checkin_file: String,
    /// Their plaintext, to re-seal under a new passphrase.
    checkin_keys: String,
}

fn dir(home: &Path) -> PathBuf {
    home.join(DIR)
}

/// The key files present, in name order.
fn key_files(home: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir(home)) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.len() == 32)
        })
        .collect();
    v.sort();
    v
}

fn seal_key_file(plain: &str, pass: &SecretString, work_factor: u8) -> Result<Vec<u8>> {
    let mut padded = Zeroizing::new(plain.as_bytes().to_vec());
    if padded.len() > PADDED_LEN {
        bail!("too many relays in one alert");
    }
    padded.resize(PADDED_LEN, b' ');
    let mut w = age::encrypt_with_passphrase(pass, work_factor, Vec::new(), &mut OsRng)?;
    w.write_all(&padded)?;
    Ok(w.finish()?)
}

/// Try `pass` on every key file; the one it opens, if any. Always tries all of them.
fn open_key_files(home: &Path, pass: &SecretString) -> Result<Option<KeyFile>> {
    let files = key_files(home);
    if files.is_empty() {
        return Err(crate::t_err!("checkin-not-armed").not_found().into());
    }
    let mut found = None;
    for f in files {
        let bytes = read_limited(&f, MAX_FILE)?;
        let opened = age::Decryptor::new(&bytes[..])
            .and_then(|d| d.decrypt_with_passphrase(pass, MAX_WORK_FACTOR))
            .ok()
            .and_then(|mut r| {
                let mut plain = Zeroizing::new(Vec::new());
                std::io::Read::read_to_end(
                    &mut std::io::Read::take(&mut r, PADDED_LEN as u64 + 1),
                    &mut plain,
                )
                .ok()?;
                serde_json::from_slice::<KeyFile>(&plain).ok()
            });
        if found.is_none() {
            found = opened;
        }
    }
    Ok(found)
}

fn hex32(s: &str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).context("a check-in key file is damaged")?;
    Ok(out)
}

fn alert_id(s: &str) -> Result<AlertId> {
    let mut out = [0u8; 16];
    hex::decode_to_slice(s, &mut out).context("a check-in key file is damaged")?;
    Ok(AlertId(out))
}

fn pins(a: &RelayAlert) -> Result<Vec<CertFingerprint>> {
    a.pins
        .iter()
        .map(|p| {
            p.parse()
                .map_err(|_| anyhow::anyhow!("a check-in key file is damaged"))
        })
        .collect()
}

fn random_name() -> String {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Seconds from a duration given on the command line, within the relay's bounds.
fn seconds(d: Duration, flag: &str) -> Result<u32> {
    let s = d.as_secs();
    let (min, max) = (
        vigil_core::wire::limits::MIN_ALERT_INTERVAL_SECS,
        vigil_core::wire::limits::MAX_ALERT_INTERVAL_SECS,
    );
    if s < u64::from(min) || s > u64::from(max) {
        bail!(crate::t_err!(
            "checkin-bad-interval",
            flag = flag,
            min = (u64::from(min)),
            max_days = (u64::from(max) / 86_400)
        ));
    }
    Ok(s as u32)
}

/// Do `op` on a fresh connection to `relay` (it closes the connection when done), retrying
/// what fails for a passing reason as `policy` allows.
async fn with_retries<T, F, Fut>(
    ctx: &Ctx,
    policy: crate::retry::RetryPolicy,
    link: &crate::relay::LinkOptions,
    relay: &str,
    pinned: &[CertFingerprint],
    op: F,
) -> Result<T, RelayError>
where
    F: Fn(RelayClient) -> Fut,
    Fut: std::future::Future<Output = Result<T, RelayError>>,
{
    let started = Instant::now();
    let mut retry = 0;
    loop {
        let attempt = async {
            let client = RelayClient::connect_pinned_with(relay, pinned, link).await?;
            op(client).await
        }
        .await;
        match attempt {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() => {
                match policy.delay(retry, started.elapsed(), &mut rand::thread_rng()) {
                    Some(d) => {
                        ctx.out.say(crate::t!(
                            "checkin-retrying",
                            error = crate::display::line(&e.to_string())
                        ));
                        tokio::time::sleep(d).await;
                        retry += 1;
                    }
                    None => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// `vigil checkin arm`.
pub async fn arm(ctx: &Ctx, a: CheckinArmArgs) -> Result<()> {
    let root = ctx.home.root().to_path_buf();
    let every = seconds(a.every, "--every")?;
    let grace = seconds(a.grace, "--grace")?;
    if !key_files(&root).is_empty() {
        bail!(crate::t_err!("checkin-already-armed"));
    }
    // The home's passphrase itself (not a session): the check-in keys are sealed under it.
    let home_pass = passphrase(
        &ctx.home,
        if crate::vault::exists(&root) {
            Asking::Unlock
        } else {
            Asking::Choose
        },
    )?;
    crate::unlock::open_with(&ctx.home, &home_pass)?;
    let duress = match &a.duress_passphrase_file {
        Some(f) => crate::age_cmd::passphrase::read_passphrase_file(f)?,
        None if std::io::stdin().is_terminal() => {
            ctx.out.say(crate::t!("checkin-duress-explain"));
            passphrase_from(None, Asking::Duress)?
        }
        None => bail!(crate::t_err!("checkin-no-duress")),
    };
    if bool::from(
        home_pass
            .expose_secret()
            .as_bytes()
            .ct_eq(duress.expose_secret().as_bytes()),
    ) {
        bail!(crate::t_err!("checkin-same-passphrases"));
    }

    let alert_json = read_limited(&a.alert, MAX_REPORT_JSON_LEN as u64)?;
    let report = Report::from_json(&alert_json)?;
    report.check_for_sending()?;
    let plan = crate::state::plan_send(&ctx.home, &a.to)?;
    let now = now_unix();
    let mut cards: Vec<RecipientCard> = Vec::new();
    for c in plan.contacts {
        if !cards.iter().any(|k| k.identity_key == c.card.identity_key) {
            c.card.check_not_expired(now)?;
            cards.push(c.card);
        }
    }
    let names: Vec<String> = cards.iter().map(|c| c.name.clone()).collect();
    let intended: Vec<_> = cards.iter().map(RecipientCard::addressee).collect();

    // One alert per relay, with keys of its own.
    struct Group {
        relay: String,
        pins: Vec<CertFingerprint>,
        alert: AlertId,
        checkin: SigningKey,
        duress: SigningKey,
        envelopes: Vec<AlertEnvelope>,
    }
    let mut groups: Vec<Group> = Vec::new();
    for card in &cards {
        let sealed = envelope::seal_named(
            &alert_json,
            &plan.sender,
            &intended,
            &card.recipients,
            now,
            &mut OsRng,
        )?;
        let mut card_pins = vec![card.relay_fingerprint];
        card_pins.extend(card.relay_fingerprint_next);
        let env = AlertEnvelope {
            mailbox: card.mailbox,
            envelope: sealed,
        };
        match groups
            .iter_mut()
            .find(|g| g.relay == card.relay && g.pins == card_pins)
        {
            Some(g) => g.envelopes.push(env),
            None => {
                let mut id = [0u8; 16];
                OsRng.fill_bytes(&mut id);
                groups.push(Group {
                    relay: card.relay.clone(),
                    pins: card_pins,
                    alert: AlertId(id),
                    checkin: SigningKey::generate(&mut OsRng),
                    duress: SigningKey::generate(&mut OsRng),
                    envelopes: vec![env],
                });
            }
        }
    }

    let vault_recipient = ctx.home.vault()?.key().recipient().to_string();
    let key_file = |duress: bool| -> Result<Zeroizing<String>> {
        let kf = KeyFile {
            v: 1,
            every,
            grace,
            vault_recipient: vault_recipient.clone(),
            alerts: groups
                .iter()
                .map(|g| RelayAlert {
                    relay: g.relay.clone(),
                    pins: g.pins.iter().map(|p| p.to_string()).collect(),
                    alert: hex::encode(g.alert.0),
                    key: hex::encode(if duress { &g.duress } else { &g.checkin }.to_bytes()),
                })
                .collect(),
        };
        Ok(Zeroizing::new(serde_json::to_string(&kf)?))
    };
    let (checkin_plain, duress_plain) = (key_file(false)?, key_file(true)?);
    let wf = crate::unlock::work_factor_for(&ctx.home)?;
    let (checkin_name, duress_name) = (random_name(), random_name());
    // The files first: an alert armed at the relay must never be one this device cannot check
    // in to. If arming fails, they go again.
    let d = vigil_fs::create_private_dir(&dir(&root)).map(|_| dir(&root))?;
    write_atomic(
        &d.join(&checkin_name),
        &seal_key_file(&checkin_plain, &home_pass, wf)?,
        crate::home::PRIVATE,
    )?;
    write_atomic(
        &d.join(&duress_name),
        &seal_key_file(&duress_plain, &duress, wf)?,
        crate::home::PRIVATE,
    )?;
    let record = Armed {
        to: names.clone(),
        every,
        grace,
        armed_at: now,
        checkin_file: checkin_name.clone(),
        checkin_keys: checkin_plain.to_string(),
    };
    ctx.home
        .vault()?
        .put(RECORD, &Zeroizing::new(serde_json::to_vec(&record)?))?;
    write_last(&root, &vault_recipient, now)?;

    let policy = a.retry.policy(std::io::stdin().is_terminal());
    let link = a.retry.link();
    for g in &groups {
        let result = with_retries(ctx, policy, &link, &g.relay, &g.pins, |c| {
            let envelopes = g.envelopes.clone();
            let (alert, ck, dk) = (g.alert, g.checkin.verifying_key(), g.duress.verifying_key());
            async move {
                let r = c.arm(alert, every, grace, &ck, &dk, envelopes).await;
                c.close().await;
                r
            }
        })
        .await;
        if let Err(e) = result {
            // Nothing is armed that this device holds keys for... except the relays armed before
            // this one: disarm them, then forget everything.
            for done in groups.iter().take_while(|x| x.alert != g.alert) {
                let _ = with_retries(
                    ctx,
                    crate::retry::RetryPolicy::once(),
                    &link,
                    &done.relay,
                    &done.pins,
                    |c| {
                        let (alert, key) = (done.alert, done.checkin.clone());
                        async move {
                            let r = c.disarm(&alert, &key).await;
                            c.close().await;
                            r
                        }
                    },
                )
                .await;
            }
            forget(&ctx.home, &root)?;
            return Err(e.into());
        }
    }
    let next_due = now + u64::from(every);
    ctx.out.say(crate::t!(
        "checkin-armed",
        names = names.join(", "),
        every = crate::retry::format_duration(a.every),
        grace = crate::retry::format_duration(a.grace),
        due = format_utc(next_due)
    ));
    ctx.out.say(crate::t!("checkin-armed-duress"));
    ctx.out.emit(json!({
        "type": "armed", "to": names, "every": every, "grace": grace,
        "next_due": next_due, "relays": groups.len(),
    }));
    Ok(())
}

/// Record the time of a check-in, encrypted to the vault (same size whatever the time).
fn write_last(root: &Path, vault_recipient: &str, at: u64) -> Result<()> {
    let recipient: x25519::Recipient = vault_recipient
        .parse()
        .map_err(|_| anyhow::anyhow!("a check-in key file is damaged"))?;
    let text = format!("{at:020}");
    let mut w = age::encrypt(std::slice::from_ref(&recipient), Vec::new(), &mut OsRng)?;
    w.write_all(text.as_bytes())?;
    write_atomic(&dir(root).join(LAST), &w.finish()?, crate::home::PRIVATE)?;
    Ok(())
}

/// Delete the check-in files and the vault's record (after a disarm, or a failed arm).
fn forget(home: &crate::home::Home, root: &Path) -> Result<()> {
    for f in key_files(root) {
        remove_durably(&f)?;
    }
    let last = dir(root).join(LAST);
    if last.exists() {
        remove_durably(&last)?;
    }
    if crate::vault::exists(root) && home.vault_is_open() {
        home.vault()?.remove(RECORD)?;
    }
    Ok(())
}

/// `vigil checkin` (no subcommand): check in to every relay of the armed alert.
pub async fn check_in(ctx: &Ctx, a: CheckinArgs) -> Result<()> {
    signed(ctx, a.retry, false).await
}

/// `vigil checkin disarm`.
pub async fn disarm(ctx: &Ctx, a: crate::cli::CheckinDisarmArgs) -> Result<()> {
    signed(ctx, a.retry, true).await
}

/// A check-in or a disarm: the same steps whichever passphrase was given.
async fn signed(ctx: &Ctx, retry: crate::cli::RetryArgs, disarming: bool) -> Result<()> {
    let root = ctx.home.root().to_path_buf();
    if key_files(&root).is_empty() {
        return Err(crate::t_err!("checkin-not-armed").not_found().into());
    }
    let pass = passphrase(&ctx.home, Asking::Unlock)?;
    let Some(kf) = open_key_files(&root, &pass)? else {
        return Err(crate::vault::WrongPassphrase.into());
    };
    let policy = retry.policy(std::io::stdin().is_terminal());
    let link = retry.link();
    let mut gone = 0;
    for a in &kf.alerts {
        let id = alert_id(&a.alert)?;
        let key = SigningKey::from_bytes(&hex32(&a.key)?);
        let pinned = pins(a)?;
        let result = with_retries(ctx, policy, &link, &a.relay, &pinned, |c| {
            let key = key.clone();
            async move {
                let r = if disarming {
                    c.disarm(&id, &key).await
                } else {
                    c.check_in(&id, &key).await
                };
                c.close().await;
                r
            }
        })
        .await;
        match result {
            Ok(()) => {}
            // Withdrawing an alert the relay no longer holds (released, or withdrawn before):
            // there is nothing left to withdraw there, only here.
            Err(RelayError::Refused {
                code: vigil_core::wire::ErrorCode::BadProof,
                ..
            }) if disarming => gone += 1,
            Err(e) => return Err(e.into()),
        }
    }
    let now = now_unix();
    if disarming {
        forget(&ctx.home, &root)?;
        if gone > 0 {
            ctx.out.say(crate::t!("checkin-disarmed-gone"));
        } else {
            ctx.out.say(crate::t!("checkin-disarmed"));
        }
        ctx.out
            .emit(json!({"type": "disarmed", "relays": kf.alerts.len(), "already_gone": gone}));
    } else {
        write_last(&root, &kf.vault_recipient, now)?;
        let next_due = now + u64::from(kf.every);
        ctx.out
            .say(crate::t!("checkin-done", due = format_utc(next_due)));
        ctx.out
            .emit(json!({"type": "checked_in", "next_due": next_due, "relays": kf.alerts.len()}));
    }
    Ok(())
}

/// `vigil checkin status`: the home owner's view (opens the vault).
pub fn status(ctx: &Ctx) -> Result<()> {
    let root = ctx.home.root().to_path_buf();
    let record = ctx.home.vault()?.get(RECORD, 1024 * 1024)?;
    let armed = match record {
        Some(bytes) if !key_files(&root).is_empty() => {
            serde_json::from_slice::<Armed>(&bytes).context("the check-in record is damaged")?
        }
        Some(_) => {
            // Disarmed (perhaps by a command that could not open the vault): tidy up.
            ctx.home.vault()?.remove(RECORD)?;
            return say_not_armed(ctx);
        }
        None => return say_not_armed(ctx),
    };
    let last = std::fs::read(dir(&root).join(LAST))
        .ok()
        .and_then(|b| ctx.home.vault().ok()?.key().open_note(&b, 64).ok())
        .and_then(|t| std::str::from_utf8(&t).ok()?.trim().parse::<u64>().ok())
        .unwrap_or(armed.armed_at);
    let next_due = last + u64::from(armed.every);
    let release_after = next_due + u64::from(armed.grace);
    ctx.out.say(crate::t!(
        "checkin-status",
        names = armed.to.join(", "),
        last = format_utc(last),
        due = format_utc(next_due),
        release = format_utc(release_after)
    ));
    ctx.out.emit(json!({
        "type": "checkin_status", "armed": true, "to": armed.to, "every": armed.every,
        "grace": armed.grace, "armed_at": armed.armed_at, "last_checkin": last,
        "next_due": next_due, "release_after": release_after,
    }));
    Ok(())
}

fn say_not_armed(ctx: &Ctx) -> Result<()> {
    ctx.out.say(crate::t!("checkin-none"));
    ctx.out
        .emit(json!({"type": "checkin_status", "armed": false}));
    Ok(())
}

/// After `vigil passphrase change`: seal the check-in keys under the new passphrase too.
pub fn reseal(home: &crate::home::Home, new: &SecretString) -> Result<()> {
    let root = home.root().to_path_buf();
    let Some(bytes) = home.vault()?.get(RECORD, 1024 * 1024)? else {
        return Ok(());
    };
    let armed: Armed = serde_json::from_slice(&bytes).context("the check-in record is damaged")?;
    let path = dir(&root).join(&armed.checkin_file);
    if path.exists() {
        let wf = crate::unlock::work_factor_for(home)?;
        write_atomic(
            &path,
            &seal_key_file(&armed.checkin_keys, new, wf)?,
            crate::home::PRIVATE,
        )?;
    }
    Ok(())
}
