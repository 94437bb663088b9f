//! The NGO's prekeys (issue 16) as the home keeps them, and a reporter's cached copy of each
//! NGO's current bundle.
//!
//! NGO side: `ngo/prekeys` (JSON: the policy, and each prekey's id, dates, signed bundle and the
//! relays it was published at) and one secret record per prekey, `ngo/prekey/<id>` (its age
//! identity). A prekey is made when the newest one is half through its life, published at each
//! relay of the card, used to open the reports sealed to it, and destroyed (its record removed)
//! once it expired, its grace period passed, and a fetch then emptied every relay of the card.
//!
//! Reporter side: `prekeys/<NGO identity key>` holds the last bundle verified for that NGO, so a
//! report sealed while the relay cannot be reached still gets the prekey layer while the
//! bundle's signed expiry allows.

use anyhow::{Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use vigil_core::age::hybrid;
use vigil_core::keys::PublicSigningKey;
use vigil_core::prekey::{PrekeyBundle, BUNDLE_LEN, MAX_LIFETIME_SECS};

use super::Ngo;
use crate::home::Home;

const STATE: &str = "ngo/prekeys";
const MAX_STATE: usize = 256 * 1024;
/// Most prekeys held at once: more means the NGO has not fetched for many lifetimes, and the
/// oldest are not kept for ever.
const MAX_HELD: usize = 64;

fn secret_record(id: &str) -> String {
    format!("ngo/prekey/{id}")
}

fn cached_record(ngo: &PublicSigningKey) -> String {
    format!("prekeys/{ngo}")
}

/// How the NGO's prekeys are made and destroyed.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PrekeyPolicy {
    /// Whether prekeys are made and published at all.
    pub enabled: bool,
    /// How long each prekey is valid (its signed expiry is this after its creation).
    pub lifetime_secs: u64,
    /// How long after its expiry a prekey's secret is kept for reports sealed to it that are
    /// still on their way (in outboxes or at the relay).
    pub grace_secs: u64,
}

impl Default for PrekeyPolicy {
    /// A week each, a week of grace: a seized relay copy (or a recording) becomes useless to
    /// whoever also seizes the NGO's long-term keys within about three weeks.
    fn default() -> Self {
        PrekeyPolicy {
            enabled: true,
            lifetime_secs: 7 * 86_400,
            grace_secs: 7 * 86_400,
        }
    }
}

/// One prekey the NGO holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PrekeyRecord {
    /// Its short id (`PrekeyBundle::id`).
    pub id: String,
    /// When it was made.
    pub created: u64,
    /// Its signed expiry.
    pub expires: u64,
    /// The signed bundle, base64.
    pub bundle: String,
    /// The relays it was published at.
    #[serde(default)]
    pub published: Vec<String>,
}

impl PrekeyRecord {
    /// The signed bundle's bytes.
    pub fn bundle_bytes(&self) -> Result<Vec<u8>> {
        STANDARD
            .decode(&self.bundle)
            .context("a stored prekey bundle is damaged")
    }
}

/// The NGO's prekeys and their policy.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PrekeyState {
    /// The policy.
    #[serde(default)]
    pub policy: PrekeyPolicy,
    /// Held prekeys, oldest first.
    #[serde(default)]
    pub keys: Vec<PrekeyRecord>,
}

impl PrekeyState {
    /// The state in `home` (the default policy and no prekeys when none was saved).
    pub fn load(home: &Home) -> Result<Self> {
        match home.vault()?.get(STATE, MAX_STATE)? {
            Some(bytes) => serde_json::from_slice(&bytes).context("the prekey list is damaged"),
            None => Ok(PrekeyState::default()),
        }
    }

    /// Save it.
    pub fn save(&self, home: &Home) -> Result<()> {
        home.vault()?.put(STATE, &serde_json::to_vec(self)?)
    }

    /// The newest prekey, if any.
    pub fn newest(&self) -> Option<&PrekeyRecord> {
        self.keys.last()
    }

    /// Whether a new prekey is due at `now`: none yet, or the newest is half through its life
    /// (so a new one is out while reporters' cached copies of the old one are still valid).
    pub fn renewal_due(&self, now: u64) -> bool {
        if !self.policy.enabled {
            return false;
        }
        match self.newest() {
            None => true,
            Some(k) => {
                now >= k
                    .created
                    .saturating_add(k.expires.saturating_sub(k.created) / 2)
            }
        }
    }

    /// Make, sign and keep a new prekey for `ngo` at `now` (its secret first, then the list);
    /// returns its record.
    pub fn make(&mut self, home: &Home, ngo: &Ngo, now: u64) -> Result<PrekeyRecord> {
        let lifetime = self.policy.lifetime_secs.clamp(1, MAX_LIFETIME_SECS);
        let secret = hybrid::Identity::generate(&mut rand::rngs::OsRng);
        let bundle = PrekeyBundle {
            ngo: ngo.identity.public(),
            mailbox: ngo.config.mailbox,
            created: now,
            expires: now.saturating_add(lifetime),
            recipient: secret.to_public(),
        };
        let signed = bundle.sign(&ngo.identity);
        debug_assert_eq!(signed.len(), BUNDLE_LEN);
        let record = PrekeyRecord {
            id: bundle.id(),
            created: bundle.created,
            expires: bundle.expires,
            bundle: STANDARD.encode(&signed),
            published: Vec::new(),
        };
        let text = secret.to_string_secret();
        home.vault()?.put(
            &secret_record(&record.id),
            secrecy::ExposeSecret::expose_secret(&text).as_bytes(),
        )?;
        self.keys.push(record.clone());
        if self.keys.len() > MAX_HELD {
            let oldest = self.keys.remove(0);
            home.vault()?.remove(&secret_record(&oldest.id))?;
        }
        self.save(home)?;
        Ok(record)
    }

    /// The secrets of every held prekey (current, retiring and expired but not yet destroyed).
    pub fn identities(&self, home: &Home) -> Result<Vec<hybrid::Identity>> {
        let v = home.vault()?;
        let mut out = Vec::with_capacity(self.keys.len());
        for k in &self.keys {
            let Some(text) = v.get(&secret_record(&k.id), 256)? else {
                continue;
            };
            let text = std::str::from_utf8(&text).context("a prekey secret is damaged")?;
            out.push(
                text.trim()
                    .parse::<hybrid::Identity>()
                    .context("a prekey secret is damaged")?,
            );
        }
        Ok(out)
    }

    /// Destroy the prekeys whose expiry and grace period have passed at `now`; the caller has
    /// just emptied every relay of the card, so every report sealed to them that reached a
    /// relay in time has been opened. Returns the destroyed ids.
    pub fn destroy_due(&mut self, home: &Home, now: u64) -> Result<Vec<String>> {
        let grace = self.policy.grace_secs;
        let (due, kept): (Vec<PrekeyRecord>, Vec<PrekeyRecord>) = std::mem::take(&mut self.keys)
            .into_iter()
            .partition(|k| k.expires.saturating_add(grace) <= now);
        self.keys = kept;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let mut v = home.vault()?;
        for k in &due {
            v.remove(&secret_record(&k.id))?;
        }
        drop(v);
        self.save(home)?;
        Ok(due.into_iter().map(|k| k.id).collect())
    }
}

/// The bundle a reporter verified last for the NGO with identity key `ngo`, if any (unchecked:
/// verify it again before use).
pub fn cached_bundle(home: &Home, ngo: &PublicSigningKey) -> Result<Option<Vec<u8>>> {
    Ok(home
        .vault()?
        .get(&cached_record(ngo), BUNDLE_LEN)?
        .map(|b| b.to_vec()))
}

/// Keep `bundle` (verified) as the NGO's latest.
pub fn cache_bundle(home: &Home, ngo: &PublicSigningKey, bundle: &[u8]) -> Result<()> {
    home.vault()?.put(&cached_record(ngo), bundle)
}
