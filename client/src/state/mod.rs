//! Reporter and NGO state, typed: keys, contacts, outbox, inbox. Everything is a record of
//! the home's vault (`crate::vault`, opened by `Home::vault`); commands use these functions and
//! never open a file of the home themselves.

use crate::home::Home;
use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use vigil_core::age::{AnyIdentity, AnyRecipient};
use vigil_core::card::{CardRelay, RecipientCard, MAX_CARD_LEN};
use vigil_core::envelope::MAX_INNER_LEN;
use vigil_core::ids::{CertFingerprint, DepositId, MailboxId};
use vigil_core::keys::SigningSecret;
use zeroize::Zeroizing;

mod inbox;
pub mod migrate;
pub mod prekeys;
mod rejected;
mod threads;
pub use inbox::*;
pub use rejected::*;
pub use threads::*;

/// Largest key record read: a handful of lines.
const MAX_KEY_FILE: usize = 16 * 1024;
/// Largest outbox or inbox record read: an envelope plus base64 and metadata.
const MAX_ITEM_FILE: usize = MAX_INNER_LEN * 2 + 64 * 1024;
/// Largest small metadata record (a verification mark, inbox metadata, a seen record).
const MAX_META: usize = 64 * 1024;

/// The record of the reporter's signing key.
const REPORTER_KEY: &str = "reporter/key";

fn read_secret_hex(home: &Home, record: &str) -> Result<Option<SigningSecret>> {
    let Some(text) = home.vault()?.get(record, MAX_KEY_FILE)? else {
        return Ok(None);
    };
    let s = std::str::from_utf8(&text).context("key record is not text; it may be damaged")?;
    Ok(Some(
        SigningSecret::from_hex_secret(s).with_context(|| format!("{record} is damaged"))?,
    ))
}

/// The reporter's signing key, created on first use.
pub fn reporter_key(home: &Home) -> Result<SigningSecret> {
    if let Some(k) = read_secret_hex(home, REPORTER_KEY)? {
        return Ok(k);
    }
    let k = SigningSecret::generate(&mut rand::rngs::OsRng);
    home.vault()?
        .put(REPORTER_KEY, k.to_hex_secret().as_bytes())?;
    Ok(k)
}

// ---------------------------------------------------------------- contacts

/// A stored contact: a card whose signature was checked.
pub struct Contact {
    /// The card.
    pub card: RecipientCard,
    /// The record it is stored as.
    pub record: String,
    /// When the reporter said they compared the safety number with the NGO out of band
    /// (`vigil contact verify`), if they did. Bound to the NGO's identity key: a newer card
    /// signed by the same key keeps it, a card under another key starts unverified.
    pub verified_at: Option<u64>,
}

/// The record name of a contact's verification mark.
fn mark_record(record: &str) -> String {
    format!("contact-marks/{}", record.trim_start_matches("contacts/"))
}

impl Contact {
    /// Record that the safety number was compared (`Some(time)`), or forget it (`None`).
    pub fn set_verified(&mut self, home: &Home, at: Option<u64>) -> Result<()> {
        let mark = mark_record(&self.record);
        let mut v = home.vault()?;
        match at {
            Some(t) => v.put(
                &mark,
                format!("{}\n", serde_json::json!({ "verified_at": t })).as_bytes(),
            )?,
            None => {
                v.remove(&mark)?;
            }
        }
        self.verified_at = at;
        Ok(())
    }

    /// Delete the contact and its verification mark.
    pub fn remove(&self, home: &Home) -> Result<()> {
        let mut v = home.vault()?;
        v.remove(&mark_record(&self.record))?;
        v.remove(&self.record)?;
        Ok(())
    }
}

/// The time in a verification mark; a damaged mark reads as "not verified", the safe side.
fn read_mark(bytes: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    v["verified_at"].as_u64()
}

/// All contacts, verified again as they are read.
pub fn contacts(home: &Home) -> Result<Vec<Contact>> {
    let v = home.vault()?;
    let mut out = Vec::new();
    for record in v.list("contacts/") {
        let Some(bytes) = v.get(&record, MAX_CARD_LEN)? else {
            continue;
        };
        let damaged = || crate::t_err!("contact-damaged", path = record.clone());
        let text = std::str::from_utf8(&bytes).with_context(|| damaged().complete())?;
        let card = RecipientCard::parse(text).with_context(damaged)?;
        let verified_at = v
            .get(&mark_record(&record), MAX_META)?
            .and_then(|b| read_mark(&b));
        out.push(Contact {
            card,
            record,
            verified_at,
        });
    }
    out.sort_by_key(|c| c.card.name.to_lowercase());
    Ok(out)
}

/// Store a verified card as the contact for its identity key (replacing an older card of the
/// same key).
pub fn contact_save(home: &Home, card_text: &str, card: &RecipientCard) -> Result<()> {
    home.vault()?
        .put(&contact_record(card), format!("{card_text}\n").as_bytes())
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
    pick_contact(contacts(home)?, name)
}

/// What `report send` needs from the home, read in one pass: the named contacts (in the order
/// named), the reporter's signing key (made on first use), and the copies already queued.
pub struct SendPlan {
    /// The contacts, one per name.
    pub contacts: Vec<Contact>,
    /// The reporter's key.
    pub sender: SigningSecret,
    /// Items queued before this report.
    pub earlier: Vec<OutboxItem>,
}

/// Read what `report send` needs (see [`SendPlan`]); the sealed copies then go back in one
/// write with [`outbox_queue`].
pub fn plan_send(home: &Home, names: &[String]) -> Result<SendPlan> {
    let all = contacts(home)?;
    let mut picked = Vec::with_capacity(names.len());
    for name in names {
        let found = pick_contact(all.iter().map(Contact::clone_shallow).collect(), name)?;
        picked.push(found);
    }
    Ok(SendPlan {
        contacts: picked,
        sender: reporter_key(home)?,
        earlier: outbox(home)?,
    })
}

impl Contact {
    fn clone_shallow(&self) -> Contact {
        Contact {
            card: self.card.clone(),
            record: self.record.clone(),
            verified_at: self.verified_at,
        }
    }
}

fn pick_contact(all: Vec<Contact>, name: &str) -> Result<Contact> {
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

/// The record a card with this identity key is stored as.
pub fn contact_record(card: &RecipientCard) -> String {
    let id = card.identity_key.to_bytes();
    format!("contacts/{}", hex::encode(&id[..12]))
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
    /// The attachment blobs the envelope refers to, uploaded before it is deposited (absent in
    /// older files). Copies of one report share them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blobs: Vec<OutboxBlob>,
}

/// One attachment blob an outbox item refers to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxBlob {
    /// The blob id (hex), as the envelope names it and the relay stores it.
    pub id: String,
    /// Its name in the vault.
    pub record: String,
    /// Its length (ciphertext).
    pub len: u64,
}

impl OutboxItem {
    /// A new item for an envelope sealed for `card`, to be deposited at its first relay.
    pub fn new(card: &RecipientCard, envelope: &[u8], now: u64) -> Self {
        Self::for_relay(card, &card.first_relay(), envelope, now)
    }

    /// A new item for an envelope sealed for `card`, to be deposited at `relay` (one of the
    /// card's). Each relay's copy is an item of its own, under a deposit id of its own: it is
    /// delivered, retried and removed on its own, and the ids given to different relays have
    /// nothing in common (the envelope bytes are the same, which is what links the copies).
    pub fn for_relay(card: &RecipientCard, relay: &CardRelay, envelope: &[u8], now: u64) -> Self {
        let mut id = [0u8; 16];
        rand::Rng::fill(&mut rand::rngs::OsRng, &mut id);
        OutboxItem {
            deposit_id: DepositId(id),
            to: card.name.clone(),
            relay: relay.addr.clone(),
            relay_fingerprint: relay.fingerprint,
            relay_fingerprint_next: relay.fingerprint_next,
            mailbox: card.mailbox,
            ngo_key: Some(card.identity_key.to_string()),
            queued_at: now,
            attempts: 0,
            envelope_b64: B64.encode(envelope),
            blobs: Vec::new(),
        }
    }

    /// A deposit of `envelope` into `mailbox` at `relay` that is not an NGO's card mailbox (an
    /// NGO's reply with attachments, into a reporter's reply mailbox): `to` names it in
    /// messages; no card key, so no newer card changes its pins.
    pub fn for_mailbox(
        to: &str,
        relay: &CardRelay,
        mailbox: MailboxId,
        envelope: &[u8],
        now: u64,
    ) -> Self {
        let mut id = [0u8; 16];
        rand::Rng::fill(&mut rand::rngs::OsRng, &mut id);
        OutboxItem {
            deposit_id: DepositId(id),
            to: to.to_string(),
            relay: relay.addr.clone(),
            relay_fingerprint: relay.fingerprint,
            relay_fingerprint_next: relay.fingerprint_next,
            mailbox,
            ngo_key: None,
            queued_at: now,
            attempts: 0,
            envelope_b64: B64.encode(envelope),
            blobs: Vec::new(),
        }
    }

    /// The relay certificates accepted for this item: current first, then the announced next.
    pub fn pinned(&self) -> Vec<CertFingerprint> {
        let mut v = vec![self.relay_fingerprint];
        v.extend(self.relay_fingerprint_next);
        v
    }

    /// Take the relay pins of a newer card from the same NGO key for the same relay (any of
    /// the card's relays with this item's address) and mailbox. A report queued before the
    /// reporter imported a rotation card then follows the relay to its new certificate instead
    /// of being refused for good. The card is signed by the key the item was sealed for
    /// (`contact add` keeps one card per key, the newest), so it is as trusted as the card the
    /// item came from, and it is the NGO's latest word on which certificates are genuine.
    /// Returns whether the pins changed.
    pub fn adopt_pins(&mut self, card: &RecipientCard) -> bool {
        let same_ngo = self
            .ngo_key
            .as_deref()
            .is_some_and(|k| k == card.identity_key.to_string());
        if !same_ngo || !card.mailbox.ct_eq(&self.mailbox) {
            return false;
        }
        let Some(relay) = card.relays().into_iter().find(|r| r.addr == self.relay) else {
            return false;
        };
        let changed = relay.fingerprint != self.relay_fingerprint
            || relay.fingerprint_next != self.relay_fingerprint_next;
        self.relay_fingerprint = relay.fingerprint;
        self.relay_fingerprint_next = relay.fingerprint_next;
        changed
    }

    /// The envelope bytes.
    pub fn envelope(&self) -> Result<Vec<u8>> {
        B64.decode(&self.envelope_b64)
            .context("outbox file is damaged")
    }

    fn record(&self) -> String {
        format!("outbox/{}", self.deposit_id)
    }

    /// Store (or update) durably.
    pub fn save(&self, home: &Home) -> Result<()> {
        let bytes = Zeroizing::new(serde_json::to_vec(self)?);
        home.vault()?.put(&self.record(), &bytes)
    }

    /// Update the stored copy (its attempt count) unless it left the outbox meanwhile: a
    /// delivered item must not come back.
    pub fn save_if_queued(&self, home: &Home) -> Result<()> {
        let mut v = home.vault()?;
        if v.contains(&self.record()) {
            let bytes = Zeroizing::new(serde_json::to_vec(self)?);
            v.put(&self.record(), &bytes)?;
        }
        Ok(())
    }

    /// Remove after the relay confirmed it stored the envelope (or the reporter cancelled it).
    /// Already gone is fine. Its blobs go too, unless another queued copy still needs them.
    pub fn remove(&self, home: &Home) -> Result<()> {
        home.vault()?.remove(&self.record())?;
        if !self.blobs.is_empty() {
            let others = outbox(home)?;
            let mut v = home.vault()?;
            for b in &self.blobs {
                if !others
                    .iter()
                    .any(|o| o.blobs.iter().any(|x| x.record == b.record))
                {
                    v.remove(&b.record)?;
                }
            }
        }
        Ok(())
    }
}

/// Queue several items at once (one report's copies): one index write for all of them.
pub fn outbox_queue(home: &Home, items: &[OutboxItem]) -> Result<()> {
    outbox_queue_with(home, items, None)
}

/// [`outbox_queue`], with one more record written in the same index write (the report's
/// threads: the copies and the record that names them exist together or not at all).
pub fn outbox_queue_with(
    home: &Home,
    items: &[OutboxItem],
    extra: Option<&(String, Zeroizing<Vec<u8>>)>,
) -> Result<()> {
    let encoded = items
        .iter()
        .map(|i| Ok((i.record(), Zeroizing::new(serde_json::to_vec(i)?))))
        .collect::<Result<Vec<_>>>()?;
    let records: Vec<(String, &[u8])> = encoded
        .iter()
        .chain(extra)
        .map(|(n, b)| (n.clone(), b.as_slice()))
        .collect();
    home.vault()?.put_many(&records)
}

/// Every queued item, oldest first.
pub fn outbox(home: &Home) -> Result<Vec<OutboxItem>> {
    let v = home.vault()?;
    let mut out = Vec::new();
    for record in v.list("outbox/") {
        let Some(bytes) = v.get(&record, MAX_ITEM_FILE)? else {
            continue;
        };
        let item: OutboxItem = serde_json::from_slice(&bytes)
            .with_context(|| crate::t_err!("outbox-damaged", path = record.clone()).complete())?;
        out.push(item);
    }
    out.sort_by_key(|i| i.queued_at);
    Ok(out)
}

// ---------------------------------------------------------------- NGO

const NGO_CONFIG: &str = "ngo/config";
const NGO_IDENTITY: &str = "ngo/identity";
const NGO_MAILBOX: &str = "ngo/mailbox";
const NGO_CARD: &str = "ngo/card";

fn staff_record(file: &str) -> String {
    format!("ngo/staff/{file}")
}

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
    /// The relays after the first (the fields above), in the card's order; absent in older
    /// files and for single-relay NGOs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_relays: Vec<NgoRelay>,
    /// Mailbox at the relay (the same id at every relay).
    pub mailbox: MailboxId,
    /// Addresses of the card's relays where the mailbox is not registered yet: `ngo init`
    /// could not reach them. `inbox fetch` and `ngo set-relay` register it there when they
    /// can, and take the address off this list. Absent in older files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registration_pending: Vec<String>,
    /// Staff recipients.
    pub staff: Vec<Staff>,
    /// Staff keys taken off the card by `vigil ngo rotate-keys`, kept only to open reports
    /// sealed to the old card that may still arrive, and destroyed after their date. Absent in
    /// older files and before any rotation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<RetiredKey>,
}

/// A staff key that is no longer on the card, kept until `destroy_after` (Unix seconds).
#[derive(Clone, Serialize, Deserialize)]
pub struct RetiredKey {
    /// The staff member's display name.
    pub name: String,
    /// Its age recipient.
    pub recipient: String,
    /// The staff key record holding its identity, when this machine has it.
    pub local_key: Option<String>,
    /// When reports sealed to it can no longer arrive: the old card's expiry plus the longest a
    /// relay keeps an item. The next NGO command after it destroys the key.
    pub destroy_after: u64,
}

impl NgoConfig {
    /// True when the card's staff keys are post-quantum (a card never mixes kinds).
    pub fn post_quantum(&self) -> bool {
        self.staff
            .first()
            .is_some_and(|s| s.recipient.starts_with("age1pq1"))
    }
}

/// One further relay of an NGO, as its settings keep it (the first is `NgoConfig::relay`).
#[derive(Clone, Serialize, Deserialize)]
pub struct NgoRelay {
    /// Relay address.
    pub relay: String,
    /// Pinned relay certificate.
    pub relay_fingerprint: CertFingerprint,
    /// The relay's next certificate during a rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_fingerprint_next: Option<CertFingerprint>,
}

impl NgoRelay {
    /// The same relay as a card names it.
    pub fn to_card(&self) -> CardRelay {
        CardRelay {
            addr: self.relay.clone(),
            fingerprint: self.relay_fingerprint,
            fingerprint_next: self.relay_fingerprint_next,
        }
    }
}

impl NgoConfig {
    /// The relay certificates this NGO accepts at its first relay: current first, then the
    /// announced next.
    pub fn pinned(&self) -> Vec<CertFingerprint> {
        let mut v = vec![self.relay_fingerprint];
        v.extend(self.relay_fingerprint_next);
        v
    }

    /// Every relay of this NGO, the first one first, as the card lists them.
    pub fn relays(&self) -> Vec<CardRelay> {
        let mut v = vec![CardRelay {
            addr: self.relay.clone(),
            fingerprint: self.relay_fingerprint,
            fingerprint_next: self.relay_fingerprint_next,
        }];
        v.extend(self.more_relays.iter().map(NgoRelay::to_card));
        v
    }

    /// Every relay of this NGO as its settings keep them, the first one first.
    pub fn all_relays(&self) -> Vec<NgoRelay> {
        let mut v = vec![NgoRelay {
            relay: self.relay.clone(),
            relay_fingerprint: self.relay_fingerprint,
            relay_fingerprint_next: self.relay_fingerprint_next,
        }];
        v.extend(self.more_relays.iter().cloned());
        v
    }

    /// Replace the relays: the first of `all` becomes the first relay (`relay` and its
    /// fingerprints), the rest `more_relays`. `all` must not be empty.
    pub fn set_relays(&mut self, mut all: Vec<NgoRelay>) {
        if all.is_empty() {
            return;
        }
        let first = all.remove(0);
        self.relay = first.relay;
        self.relay_fingerprint = first.relay_fingerprint;
        self.relay_fingerprint_next = first.relay_fingerprint_next;
        self.more_relays = all;
    }

    /// Whether the mailbox still has to be registered at `addr`.
    pub fn is_pending(&self, addr: &str) -> bool {
        self.registration_pending
            .iter()
            .any(|p| p.eq_ignore_ascii_case(addr))
    }

    /// Record that the mailbox is now registered at `addr`.
    pub fn registered(&mut self, addr: &str) {
        self.registration_pending
            .retain(|p| !p.eq_ignore_ascii_case(addr));
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
    pub fn exists(home: &Home) -> Result<bool> {
        Ok(home.vault()?.contains(NGO_CONFIG))
    }

    /// Load it, or say how to create one.
    pub fn load(home: &Home) -> Result<Self> {
        let bytes = home.vault()?.get(NGO_CONFIG, 1024 * 1024)?;
        let Some(bytes) = bytes else {
            return Err(
                crate::t_err!("ngo-none", home = home.root().display().to_string())
                    .not_found()
                    .into(),
            );
        };
        let config: NgoConfig =
            serde_json::from_slice(&bytes).context("the NGO settings record is damaged")?;
        let identity =
            read_secret_hex(home, NGO_IDENTITY)?.context("the NGO identity key is missing")?;
        let mailbox_key =
            read_secret_hex(home, NGO_MAILBOX)?.context("the NGO mailbox key is missing")?;
        Ok(Ngo {
            config,
            identity,
            mailbox_key,
        })
    }

    /// Write the keys of a new NGO (refuses to overwrite) and its settings.
    pub fn create(home: &Home, ngo: &Ngo) -> Result<()> {
        let mut v = home.vault()?;
        if v.contains(NGO_IDENTITY) {
            bail!("this home already holds an NGO identity key; use another --home");
        }
        let id = ngo.identity.to_hex_secret();
        let mb = ngo.mailbox_key.to_hex_secret();
        let config = serde_json::to_vec_pretty(&ngo.config)?;
        v.put_many(&[
            (NGO_IDENTITY.to_string(), id.as_bytes()),
            (NGO_MAILBOX.to_string(), mb.as_bytes()),
            (NGO_CONFIG.to_string(), &config),
        ])
    }

    /// Save settings.
    pub fn save_config(&self, home: &Home) -> Result<()> {
        home.vault()?
            .put(NGO_CONFIG, &serde_json::to_vec_pretty(&self.config)?)
    }

    /// Staff identities held on this machine.
    pub fn local_identities(&self, home: &Home) -> Result<Vec<AnyIdentity>> {
        let mut ids = Vec::new();
        let files = self.config.staff.iter().map(|s| &s.local_key);
        let retired = self.config.retired.iter().map(|r| &r.local_key);
        for file in files.chain(retired).flatten() {
            ids.extend(Self::staff_key(home, file)?);
        }
        Ok(ids)
    }

    /// The identities in one staff key record (named as in `Staff::local_key`).
    pub fn staff_key(home: &Home, file: &str) -> Result<Vec<AnyIdentity>> {
        let text = home
            .vault()?
            .get(&staff_record(file), MAX_KEY_FILE)?
            .with_context(|| format!("staff key {file} is missing from this home"))?;
        let text = std::str::from_utf8(&text).context("staff key record is not text")?;
        vigil_core::age::parse_identity_file(text)
            .with_context(|| format!("staff key {file} is damaged"))
    }

    /// The age identity file text of one staff key (for `vigil ngo export-staff-key`).
    pub fn staff_key_text(home: &Home, file: &str) -> Result<Zeroizing<Vec<u8>>> {
        home.vault()?
            .get(&staff_record(file), MAX_KEY_FILE)?
            .with_context(|| format!("staff key {file} is missing from this home"))
    }

    /// Delete one staff key record.
    pub fn remove_staff_key(home: &Home, file: &str) -> Result<()> {
        home.vault()?.remove(&staff_record(file))?;
        Ok(())
    }

    /// Save a new staff identity as an age identity file; returns its name.
    pub fn save_staff_key(home: &Home, name: &str, id: &AnyIdentity) -> Result<String> {
        let mut v = home.vault()?;
        let slug: String = name
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { '-' })
            .collect();
        let mut file = format!("{slug}.key");
        let mut n = 2;
        while v.contains(&staff_record(&file)) {
            file = format!("{slug}-{n}.key");
            n += 1;
        }
        let secret = id.to_string_secret();
        let text = Zeroizing::new(format!(
            "# Vigil staff key for {name}\n# public key: {}\n{}\n",
            id.to_public(),
            secrecy::ExposeSecret::expose_secret(&secret)
        ));
        v.put(&staff_record(&file), text.as_bytes())?;
        Ok(file)
    }

    /// The card this NGO last issued (its text), if any.
    pub fn card_text(home: &Home) -> Result<Option<String>> {
        Ok(home
            .vault()?
            .get(NGO_CARD, MAX_CARD_LEN + 2)?
            .and_then(|b| String::from_utf8(b.to_vec()).ok()))
    }

    /// Keep `text` as this NGO's current card.
    pub fn save_card_text(home: &Home, text: &str) -> Result<()> {
        home.vault()?.put(NGO_CARD, text.as_bytes())
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
                    .parse::<AnyRecipient>()
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
            more_relays: self
                .config
                .more_relays
                .iter()
                .map(NgoRelay::to_card)
                .collect(),
            mailbox: self.config.mailbox,
            created,
            expires,
        };
        let text = card.sign(&self.identity)?;
        Ok((card, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_relay_card() -> RecipientCard {
        let id = SigningSecret::generate(&mut rand::rngs::OsRng);
        RecipientCard {
            name: "Desk".into(),
            identity_key: id.public(),
            recipients: vec![
                vigil_core::age::x25519::Identity::generate(&mut rand::rngs::OsRng)
                    .to_public()
                    .into(),
            ],
            relay: "a.example.org:4433".into(),
            relay_fingerprint: CertFingerprint([1; 32]),
            relay_fingerprint_next: None,
            more_relays: vec![CardRelay {
                addr: "b.example.org:4433".into(),
                fingerprint: CertFingerprint([2; 32]),
                fingerprint_next: None,
            }],
            mailbox: MailboxId([9; 32]),
            created: 1,
            expires: None,
        }
    }

    /// Each relay's copy pins that relay's certificates, and follows a rotation announced for
    /// that relay (and no other) on a newer card.
    #[test]
    fn a_copy_per_relay_pins_and_follows_its_own_relay() {
        let mut card = two_relay_card();
        let items: Vec<OutboxItem> = card
            .relays()
            .iter()
            .map(|r| OutboxItem::for_relay(&card, r, b"sealed", 5))
            .collect();
        assert_eq!(items[0].relay, "a.example.org:4433");
        assert_eq!(items[0].pinned(), [CertFingerprint([1; 32])]);
        assert_eq!(items[1].relay, "b.example.org:4433");
        assert_eq!(items[1].pinned(), [CertFingerprint([2; 32])]);
        assert_ne!(items[0].deposit_id, items[1].deposit_id);
        assert_eq!(items[0].envelope().unwrap(), items[1].envelope().unwrap());
        card.more_relays[0].fingerprint_next = Some(CertFingerprint([3; 32]));
        let (mut a, mut b) = (
            OutboxItem::for_relay(&card, &card.relays()[0], b"x", 5),
            OutboxItem::for_relay(&card, &two_relay_card().more_relays[0], b"x", 5),
        );
        assert!(!a.adopt_pins(&card), "relay A's pins did not change");
        assert!(b.adopt_pins(&card));
        assert_eq!(
            b.pinned(),
            [CertFingerprint([2; 32]), CertFingerprint([3; 32])]
        );
    }

    /// The same bytes from another relay are a copy, once per relay; from the relay that
    /// delivered the stored copy, or a second item from one that delivered a copy, a replay.
    #[test]
    fn copies_are_told_from_replays_by_relay() {
        let mut seen = Seen {
            id: "abcd".into(),
            item: "item-a".into(),
            relay: Some("a:1".into()),
            copies: Vec::new(),
        };
        assert!(seen.is_copy_from("b:1", "item-b"));
        assert!(
            !seen.is_copy_from("A:1", "item-x"),
            "replayed at the first relay"
        );
        seen.copies.push(SeenCopy {
            relay: "b:1".into(),
            item: "item-b".into(),
        });
        assert!(
            seen.is_copy_from("b:1", "item-b"),
            "its acknowledgement was lost"
        );
        assert!(
            !seen.is_copy_from("b:1", "item-c"),
            "replayed at the second relay"
        );
        // Records from before several relays: identical bytes as a new item are a replay.
        seen.relay = None;
        assert!(!seen.is_copy_from("b:1", "item-b"));
    }

    /// Settings written before several relays existed still read, and relays set in order put
    /// the first one in the old fields.
    #[test]
    fn ngo_settings_keep_the_first_relay_where_it_was() {
        let old = format!(
            r#"{{"name":"Desk","relay":"a:1","relay_fingerprint":"{}","mailbox":"{}","staff":[]}}"#,
            CertFingerprint([1; 32]),
            MailboxId([9; 32])
        );
        let mut c: NgoConfig = serde_json::from_str(&old).unwrap();
        assert!(c.more_relays.is_empty() && c.registration_pending.is_empty());
        assert_eq!(c.relays().len(), 1);
        let mut all = c.all_relays();
        all.push(NgoRelay {
            relay: "b:1".into(),
            relay_fingerprint: CertFingerprint([2; 32]),
            relay_fingerprint_next: None,
        });
        all.remove(0);
        c.set_relays(all);
        assert_eq!(c.relay, "b:1");
        assert!(c.more_relays.is_empty());
        c.registration_pending = vec!["B:1".into()];
        assert!(c.is_pending("b:1"));
        c.registered("b:1");
        assert!(!c.is_pending("b:1"));
        // Unchanged settings serialise without the new fields.
        let back = serde_json::to_string(&c).unwrap();
        assert!(!back.contains("more_relays") && !back.contains("registration_pending"));
    }
}
