//! Reporter and NGO state kept under the home directory: keys, contacts, outbox, inbox.

use crate::home::{Home, PRIVATE};
use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::PathBuf;
use vigil_core::age::x25519;
use vigil_core::card::{RecipientCard, MAX_CARD_LEN};
use vigil_core::envelope::MAX_INNER_LEN;
use vigil_core::ids::{CertFingerprint, DepositId, MailboxId};
use vigil_core::keys::SigningSecret;
use vigil_fs::{read_limited, remove_durably, write_atomic, write_new};
use zeroize::Zeroizing;

mod inbox;
mod rejected;
pub use inbox::*;
pub use rejected::*;

/// Largest key file read: a handful of lines.
const MAX_KEY_FILE: u64 = 16 * 1024;
/// Largest outbox or inbox file read: an envelope plus base64 and metadata.
const MAX_ITEM_FILE: u64 = (MAX_INNER_LEN as u64) * 2 + 64 * 1024;

fn read_secret_hex(path: &std::path::Path) -> Result<SigningSecret> {
    let text = Zeroizing::new(read_limited(path, MAX_KEY_FILE)?);
    let s = std::str::from_utf8(&text).context("key file is not text; it may be damaged")?;
    SigningSecret::from_hex_secret(s).with_context(|| format!("{} is damaged", path.display()))
}

/// The reporter's signing key, created on first use.
pub fn reporter_key(home: &Home) -> Result<SigningSecret> {
    let p = home.path("reporter.key");
    if p.exists() {
        return read_secret_hex(&p);
    }
    let k = SigningSecret::generate(&mut rand::rngs::OsRng);
    write_new(&p, k.to_hex_secret().as_bytes(), PRIVATE)?;
    Ok(k)
}

// ---------------------------------------------------------------- contacts

/// A stored contact: a card whose signature was checked.
pub struct Contact {
    /// The card.
    pub card: RecipientCard,
    /// Where it is stored.
    pub path: PathBuf,
    /// When the reporter said they compared the safety number with the NGO out of band
    /// (`vigil contact verify`), if they did. Bound to the NGO's identity key: a newer card
    /// signed by the same key keeps it, a card under another key starts unverified.
    pub verified_at: Option<u64>,
}

impl Contact {
    /// Where the verification mark of this contact is kept.
    fn mark_path(&self) -> PathBuf {
        self.path.with_extension("verified")
    }

    /// Record that the safety number was compared (`Some(time)`), or forget it (`None`).
    pub fn set_verified(&mut self, at: Option<u64>) -> Result<()> {
        let mark = self.mark_path();
        match at {
            Some(t) => write_atomic(
                &mark,
                format!("{}\n", serde_json::json!({ "verified_at": t })).as_bytes(),
                PRIVATE,
            )?,
            None if mark.exists() => remove_durably(&mark)?,
            None => {}
        }
        self.verified_at = at;
        Ok(())
    }

    /// Delete the contact and its verification mark.
    pub fn remove(&self) -> Result<()> {
        let mark = self.mark_path();
        if mark.exists() {
            remove_durably(&mark)?;
        }
        remove_durably(&self.path)?;
        Ok(())
    }
}

/// The time in a verification mark; a damaged mark reads as "not verified", the safe side.
fn read_mark(path: &std::path::Path) -> Option<u64> {
    let bytes = read_limited(path, 1024).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v["verified_at"].as_u64()
}

/// All contacts, verified again as they are read (a modified file is refused).
pub fn contacts(home: &Home) -> Result<Vec<Contact>> {
    let dir = home.dir("contacts")?;
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("card") {
            continue;
        }
        let bytes = read_limited(&path, MAX_CARD_LEN as u64)?;
        let damaged = || crate::t_err!("contact-damaged", path = path.display().to_string());
        let text = String::from_utf8(bytes).with_context(|| damaged().complete())?;
        let card = RecipientCard::parse(&text).with_context(damaged)?;
        let verified_at = read_mark(&path.with_extension("verified"));
        out.push(Contact {
            card,
            path,
            verified_at,
        });
    }
    out.sort_by_key(|c| c.card.name.to_lowercase());
    Ok(out)
}

/// The queued outbox items sealed for `card`'s NGO: by its identity key, or, for items queued
/// before items recorded the key, by name (case-insensitive).
pub fn outbox_for(home: &Home, card: &RecipientCard) -> Result<Vec<OutboxItem>> {
    let key = card.identity_key.to_string();
    let name = card.name.to_lowercase();
    Ok(outbox(home)?
        .into_iter()
        .filter(|i| match &i.ngo_key {
            Some(k) => *k == key,
            None => i.to.to_lowercase() == name,
        })
        .collect())
}

/// Find a contact by name (case-insensitive, exact).
pub fn contact_by_name(home: &Home, name: &str) -> Result<Contact> {
    let all = contacts(home)?;
    let wanted = name.trim().to_lowercase();
    let mut matching: Vec<Contact> = all
        .into_iter()
        .filter(|c| c.card.name.to_lowercase() == wanted)
        .collect();
    match matching.len() {
        0 => Err(crate::t_err!("contact-not-found", name = name)
            .not_found()
            .into()),
        1 => Ok(matching.remove(0)),
        _ => bail!(crate::t_err!("contact-several", name = name)),
    }
}

/// Where a card with this identity key is stored.
pub fn contact_path(home: &Home, card: &RecipientCard) -> Result<PathBuf> {
    let id = card.identity_key.to_bytes();
    Ok(home
        .dir("contacts")?
        .join(format!("{}.card", hex::encode(&id[..12]))))
}

// ---------------------------------------------------------------- outbox

/// A sealed envelope waiting for the relay to say "stored".
#[derive(Serialize, Deserialize)]
pub struct OutboxItem {
    /// Chosen once, reused on every retry, so the relay stores it once.
    pub deposit_id: DepositId,
    /// The NGO's name, for messages.
    pub to: String,
    /// Relay address.
    pub relay: String,
    /// Pinned relay certificate.
    pub relay_fingerprint: CertFingerprint,
    /// The relay's next certificate, if the card announced a rotation (absent in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_fingerprint_next: Option<CertFingerprint>,
    /// Mailbox at the relay.
    pub mailbox: MailboxId,
    /// The NGO identity key that signed the card (absent in older files): only a newer card
    /// signed by this key may change the item's relay pins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ngo_key: Option<String>,
    /// When it was queued.
    pub queued_at: u64,
    /// Attempts so far.
    pub attempts: u32,
    /// The age-encrypted envelope, base64.
    envelope_b64: String,
}

impl OutboxItem {
    /// A new item for an envelope sealed for `card`.
    pub fn new(card: &RecipientCard, envelope: &[u8], now: u64) -> Self {
        let mut id = [0u8; 16];
        rand::Rng::fill(&mut rand::rngs::OsRng, &mut id);
        OutboxItem {
            deposit_id: DepositId(id),
            to: card.name.clone(),
            relay: card.relay.clone(),
            relay_fingerprint: card.relay_fingerprint,
            relay_fingerprint_next: card.relay_fingerprint_next,
            mailbox: card.mailbox,
            ngo_key: Some(card.identity_key.to_string()),
            queued_at: now,
            attempts: 0,
            envelope_b64: B64.encode(envelope),
        }
    }

    /// The relay certificates accepted for this item: current first, then the announced next.
    pub fn pinned(&self) -> Vec<CertFingerprint> {
        let mut v = vec![self.relay_fingerprint];
        v.extend(self.relay_fingerprint_next);
        v
    }

    /// Take the relay pins of a newer card from the same NGO key for the same relay and
    /// mailbox. A report queued before the reporter imported a rotation card then follows the
    /// relay to its new certificate instead of being refused for good. The card is signed by
    /// the key the item was sealed for (`contact add` keeps one card per key, the newest), so it
    /// is as trusted as the card the item came from, and it is the NGO's latest word on which
    /// certificates are genuine. Returns whether the pins changed.
    pub fn adopt_pins(&mut self, card: &RecipientCard) -> bool {
        let same_ngo = self
            .ngo_key
            .as_deref()
            .is_some_and(|k| k == card.identity_key.to_string());
        if !same_ngo || card.relay != self.relay || !card.mailbox.ct_eq(&self.mailbox) {
            return false;
        }
        let changed = card.relay_fingerprint != self.relay_fingerprint
            || card.relay_fingerprint_next != self.relay_fingerprint_next;
        self.relay_fingerprint = card.relay_fingerprint;
        self.relay_fingerprint_next = card.relay_fingerprint_next;
        changed
    }

    /// The envelope bytes.
    pub fn envelope(&self) -> Result<Vec<u8>> {
        B64.decode(&self.envelope_b64)
            .context("outbox file is damaged")
    }

    fn path(&self, home: &Home) -> Result<PathBuf> {
        Ok(home
            .dir("outbox")?
            .join(format!("{}.json", self.deposit_id)))
    }

    /// Store (or update) durably.
    pub fn save(&self, home: &Home) -> Result<()> {
        let bytes = serde_json::to_vec(self)?;
        Ok(write_atomic(&self.path(home)?, &bytes, PRIVATE)?)
    }

    /// Update the stored copy (its attempt count) unless it left the outbox meanwhile (another
    /// `vigil` process delivered it): a delivered item must not come back.
    pub fn save_if_queued(&self, home: &Home) -> Result<()> {
        if self.path(home)?.exists() {
            self.save(home)?;
        }
        Ok(())
    }

    /// Remove after the relay confirmed it stored the envelope. Already gone is fine: another
    /// `vigil` process delivered the same item (same deposit id, so the relay kept one copy).
    pub fn remove(&self, home: &Home) -> Result<()> {
        Ok(remove_durably(&self.path(home)?)?)
    }
}

/// Every queued item, oldest first.
pub fn outbox(home: &Home) -> Result<Vec<OutboxItem>> {
    let dir = home.dir("outbox")?;
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let bytes = read_limited(&path, MAX_ITEM_FILE)?;
        let item: OutboxItem = serde_json::from_slice(&bytes).with_context(|| {
            crate::t_err!("outbox-damaged", path = path.display().to_string()).complete()
        })?;
        out.push(item);
    }
    out.sort_by_key(|i| i.queued_at);
    Ok(out)
}

// ---------------------------------------------------------------- NGO

/// A staff member whose key the card lists.
#[derive(Clone, Serialize, Deserialize)]
pub struct Staff {
    /// Display name (local only; never on the card).
    pub name: String,
    /// Their age recipient.
    pub recipient: String,
    /// Whether this machine holds their secret key (`ngo/staff/<name>.key`).
    pub local_key: Option<String>,
}

/// An NGO inbox's settings.
#[derive(Clone, Serialize, Deserialize)]
pub struct NgoConfig {
    /// The NGO's name as on the card.
    pub name: String,
    /// Relay address.
    pub relay: String,
    /// Pinned relay certificate.
    pub relay_fingerprint: CertFingerprint,
    /// The relay's next certificate during a rotation (`vigil ngo set-relay --next-fingerprint`);
    /// absent in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_fingerprint_next: Option<CertFingerprint>,
    /// Mailbox at the relay.
    pub mailbox: MailboxId,
    /// Staff recipients.
    pub staff: Vec<Staff>,
}

impl NgoConfig {
    /// The relay certificates this NGO accepts: current first, then the announced next.
    pub fn pinned(&self) -> Vec<CertFingerprint> {
        let mut v = vec![self.relay_fingerprint];
        v.extend(self.relay_fingerprint_next);
        v
    }
}

/// Loaded NGO state.
pub struct Ngo {
    /// Settings.
    pub config: NgoConfig,
    /// Identity (card-signing) key.
    pub identity: SigningSecret,
    /// Mailbox key.
    pub mailbox_key: SigningSecret,
}

impl Ngo {
    /// Is there an NGO in this home?
    pub fn exists(home: &Home) -> bool {
        home.path("ngo/ngo.json").exists()
    }

    /// Load it, or say how to create one.
    pub fn load(home: &Home) -> Result<Self> {
        let p = home.path("ngo/ngo.json");
        if !p.exists() {
            return Err(
                crate::t_err!("ngo-none", home = home.root().display().to_string())
                    .not_found()
                    .into(),
            );
        }
        let config: NgoConfig = serde_json::from_slice(&read_limited(&p, 1024 * 1024)?)
            .context("ngo/ngo.json is damaged")?;
        let identity = read_secret_hex(&home.path("ngo/identity.key"))?;
        let mailbox_key = read_secret_hex(&home.path("ngo/mailbox.key"))?;
        Ok(Ngo {
            config,
            identity,
            mailbox_key,
        })
    }

    /// Write the keys of a new NGO (refuses to overwrite) and its settings.
    pub fn create(home: &Home, ngo: &Ngo) -> Result<()> {
        home.dir("ngo")?;
        write_new(
            &home.path("ngo/identity.key"),
            ngo.identity.to_hex_secret().as_bytes(),
            PRIVATE,
        )?;
        write_new(
            &home.path("ngo/mailbox.key"),
            ngo.mailbox_key.to_hex_secret().as_bytes(),
            PRIVATE,
        )?;
        ngo.save_config(home)
    }

    /// Save settings.
    pub fn save_config(&self, home: &Home) -> Result<()> {
        Ok(write_atomic(
            &home.path("ngo/ngo.json"),
            &serde_json::to_vec_pretty(&self.config)?,
            PRIVATE,
        )?)
    }

    /// Staff identities held on this machine.
    pub fn local_identities(&self, home: &Home) -> Result<Vec<x25519::Identity>> {
        let mut ids = Vec::new();
        for s in &self.config.staff {
            if let Some(file) = &s.local_key {
                let text = Zeroizing::new(read_limited(
                    &home.path("ngo/staff").join(file),
                    MAX_KEY_FILE,
                )?);
                let text = std::str::from_utf8(&text).context("staff key file is not text")?;
                ids.extend(
                    vigil_core::age::parse_identity_file(text)
                        .with_context(|| format!("staff key {file} is damaged"))?,
                );
            }
        }
        Ok(ids)
    }

    /// Save a new staff identity as an age identity file; returns the file name.
    pub fn save_staff_key(home: &Home, name: &str, id: &x25519::Identity) -> Result<String> {
        let dir = home.dir("ngo/staff")?;
        let slug: String = name
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { '-' })
            .collect();
        let mut file = format!("{slug}.key");
        let mut n = 2;
        while dir.join(&file).exists() {
            file = format!("{slug}-{n}.key");
            n += 1;
        }
        let secret = id.to_string_secret();
        let text = Zeroizing::new(format!(
            "# Vigil staff key for {name}\n# public key: {}\n{}\n",
            id.to_public(),
            secrecy::ExposeSecret::expose_secret(&secret)
        ));
        write_new(&dir.join(&file), text.as_bytes(), PRIVATE)?;
        Ok(file)
    }

    /// Build and sign the current card, dated `created`, valid until `expires` (`None` only to
    /// rebuild a card issued before cards had an expiry).
    pub fn card(&self, created: u64, expires: Option<u64>) -> Result<(RecipientCard, String)> {
        let recipients = self
            .config
            .staff
            .iter()
            .map(|s| {
                s.recipient
                    .parse::<x25519::Recipient>()
                    .map_err(|e| anyhow::anyhow!("staff key of {}: {e}", s.name))
            })
            .collect::<Result<Vec<_>>>()?;
        let card = RecipientCard {
            name: self.config.name.clone(),
            identity_key: self.identity.public(),
            recipients,
            relay: self.config.relay.clone(),
            relay_fingerprint: self.config.relay_fingerprint,
            relay_fingerprint_next: self.config.relay_fingerprint_next,
            mailbox: self.config.mailbox,
            created,
            expires,
        };
        let text = card.sign(&self.identity)?;
        Ok((card, text))
    }
}
