//! Report threads (issue 15), on both sides, as vault records.
//!
//! - The reporter keeps one record per report sent, `reports/<id>` ([`SentReport`]): for each
//!   NGO the report went to, the thread ([`ReporterThread`]): the reply mailbox's secret key and
//!   the reply key made for that report and NGO alone, where the mailbox is registered, which
//!   outbox copies carried the report, whether a relay stored one, the verified receipt and the
//!   messages. The id is local: random, never sent anywhere.
//! - The NGO keeps one record per received report that carries a reply capability,
//!   `inbox/thread/<inbox id>` ([`NgoThread`]): the capability, the reporter's key, the messages
//!   and what is still to be deposited (the receipt, replies), sealed once so that a retry is the
//!   same deposit under the same deposit id.
//!
//! Secrets (the reply mailbox key, the reply identity) live only in these records, inside the
//! vault; the structures holding them have no `Debug` and wipe them when dropped.

use super::MAX_META;
use crate::home::Home;
use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use vigil_core::age::x25519;
use vigil_core::ids::{CertFingerprint, DepositId, MailboxId, ReportId};
use vigil_core::keys::SigningSecret;
use zeroize::{Zeroize, Zeroizing};

/// Largest thread record read: a report's worth of messages (each at most 12 KiB of text).
const MAX_THREAD_RECORD: usize = 4 * 1024 * 1024;
/// Most messages one thread keeps; older ones are dropped first. A relay or a flooding card
/// holder cannot grow a record without bound.
pub const MAX_THREAD_MESSAGES: usize = 200;

/// Who wrote a message of a thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Author {
    /// The NGO.
    Ngo,
    /// The reporter.
    Reporter,
}

/// One message of a thread, verified before it was recorded.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// Who wrote it.
    pub from: Author,
    /// Its text.
    pub text: String,
    /// When it was signed (the writer's clock).
    pub at: u64,
    /// Its attachments, as the signed message lists them (absent in older records).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<EntryAttachment>,
    /// The key the attachments' blobs are encrypted to (an age X25519 secret key string), kept
    /// so that they can be decrypted again later (`report status --save-to`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blob_key: Option<String>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.text.zeroize();
        if let Some(k) = &mut self.blob_key {
            k.zeroize();
        }
    }
}

impl Entry {
    /// A message without attachments.
    pub fn new(from: Author, text: String, at: u64) -> Self {
        Entry {
            from,
            text,
            at,
            attachments: Vec::new(),
            blob_key: None,
        }
    }

    /// A message with `attachments`, whose blobs are encrypted to `blob_key`.
    pub fn with_attachments(
        from: Author,
        text: String,
        at: u64,
        attachments: &[vigil_core::envelope::Attachment],
        blob_key: Option<&x25519::Identity>,
    ) -> Self {
        let mut e = Entry::new(from, text, at);
        e.attachments = attachments.iter().map(EntryAttachment::of).collect();
        e.blob_key = blob_key
            .map(|k| secrecy::ExposeSecret::expose_secret(&k.to_string_secret()).to_string());
        e
    }

    /// The key of its attachments' blobs.
    pub fn blob_key(&self) -> Result<Option<x25519::Identity>> {
        self.blob_key
            .as_deref()
            .map(|k| {
                k.parse()
                    .map_err(|_| anyhow::anyhow!("a thread record is damaged (attachment key)"))
            })
            .transpose()
    }
}

/// One attachment of a thread message, as recorded.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EntryAttachment {
    /// The signed entry: name, media type, size, hash, blob id.
    pub name: String,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 of its content, hex.
    pub sha256: String,
    /// Its blob, hex.
    pub blob: String,
    /// Whether the sender kept its metadata.
    #[serde(default)]
    pub metadata_kept: bool,
    /// Where this device last wrote it, decrypted and verified, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved: Option<String>,
}

impl EntryAttachment {
    fn of(a: &vigil_core::envelope::Attachment) -> Self {
        EntryAttachment {
            name: a.name.clone(),
            media_type: a.media_type.clone(),
            size: a.size,
            sha256: hex::encode(a.sha256),
            blob: hex::encode(a.blob),
            metadata_kept: a.metadata_kept,
            saved: None,
        }
    }

    /// The signed entry back, to check a blob against.
    pub fn entry(&self) -> Result<vigil_core::envelope::Attachment> {
        let bad = || anyhow::anyhow!("a thread record is damaged (attachment)");
        let mut sha256 = [0u8; 32];
        hex::decode_to_slice(&self.sha256, &mut sha256).map_err(|_| bad())?;
        let mut blob = [0u8; 16];
        hex::decode_to_slice(&self.blob, &mut blob).map_err(|_| bad())?;
        Ok(vigil_core::envelope::Attachment {
            name: self.name.clone(),
            media_type: self.media_type.clone(),
            size: self.size,
            sha256,
            blob,
            metadata_kept: self.metadata_kept,
        })
    }
}

/// Two records of one message are the same message whatever this device did with its
/// attachments since.
fn same_message(a: &Entry, b: &Entry) -> bool {
    a.from == b.from
        && a.text == b.text
        && a.at == b.at
        && a.attachments.len() == b.attachments.len()
        && a.attachments
            .iter()
            .zip(&b.attachments)
            .all(|(x, y)| x.blob == y.blob && x.sha256 == y.sha256)
}

/// Add `entry` unless the thread holds it already (a relay may deliver an item twice when an
/// acknowledgement was lost); keeps at most [`MAX_THREAD_MESSAGES`]. Returns whether it is new.
pub fn add_entry(list: &mut Vec<Entry>, entry: Entry) -> bool {
    if list.iter().any(|e| same_message(e, &entry)) {
        return false;
    }
    list.push(entry);
    list.sort_by_key(|e| e.at);
    if list.len() > MAX_THREAD_MESSAGES {
        let extra = list.len() - MAX_THREAD_MESSAGES;
        list.drain(..extra);
    }
    true
}

// ---------------------------------------------------------------- reporter

/// One relay of a reporter's thread: where its reply mailbox is (to be) registered and polled.
#[derive(Clone, Serialize, Deserialize)]
pub struct ThreadRelay {
    /// Relay address.
    pub addr: String,
    /// Pinned certificate, from the NGO's card.
    pub fingerprint: CertFingerprint,
    /// The announced next certificate, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint_next: Option<CertFingerprint>,
    /// Whether the reply mailbox is registered there.
    #[serde(default)]
    pub registered: bool,
    /// Until when (Unix seconds, by this device's clock) the relay said it keeps the mailbox:
    /// the days it granted from the registration on. `None` when it keeps it for good (a relay
    /// that predates mailbox lifetimes, or a registration by an earlier client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_until: Option<u64>,
}

/// Seconds in a day, the unit of mailbox lifetimes.
const DAY: u64 = 86_400;

/// The lifetime to register a reply mailbox with at `now` so that the relay keeps it until
/// `until` (the thread's end): the whole days left, rounded up, plus one day of slack, so that
/// the thread can go on for a day (the last message moving `until`) before it must be
/// registered again. At least 1, at most the protocol's maximum.
pub fn lifetime_days(until: u64, now: u64) -> u16 {
    let days = until.saturating_sub(now).div_ceil(DAY).saturating_add(1);
    u16::try_from(days)
        .unwrap_or(u16::MAX)
        .clamp(1, vigil_core::wire::limits::MAX_MAILBOX_LIFETIME_DAYS)
}

impl ThreadRelay {
    /// Record a registration at `now` that the relay answered with `granted` days (`None`:
    /// kept for good).
    pub fn registered_for(&mut self, granted: Option<u16>, now: u64) {
        self.registered = true;
        self.kept_until = match granted {
            None | Some(u16::MAX) => None,
            Some(d) => Some(now.saturating_add(u64::from(d) * DAY)),
        };
    }

    /// Whether the relay would forget the mailbox before `until` (the thread's end), so that it
    /// must be registered again.
    pub fn needs_renewal(&self, until: u64) -> bool {
        self.registered && self.kept_until.is_some_and(|k| k < until)
    }

    /// The certificates accepted for this relay.
    pub fn pinned(&self) -> Vec<CertFingerprint> {
        let mut v = vec![self.fingerprint];
        v.extend(self.fingerprint_next);
        v
    }
}

/// A report's thread with one NGO, on the reporter's side.
#[derive(Serialize, Deserialize)]
pub struct ReporterThread {
    /// The NGO's name, from its card.
    pub ngo: String,
    /// The NGO's identity key (hex): receipts and replies must be signed by it.
    pub ngo_key: String,
    /// The report's id for this NGO (what receipts and replies name).
    pub report_id: ReportId,
    /// The reply mailbox's Ed25519 secret key (hex).
    mailbox_secret: String,
    /// The reply identity (age X25519 secret key string).
    reply_secret: String,
    /// The relays of the NGO's card, where the mailbox is registered.
    pub relays: Vec<ThreadRelay>,
    /// The deposit ids of the outbox copies that carry the report.
    pub deposits: Vec<DepositId>,
    /// When a relay first said it stored a copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_at: Option<u64>,
    /// When the NGO signed its receipt (a verified one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<u64>,
    /// The NGO's replies and the reporter's answers, oldest first.
    #[serde(default)]
    pub messages: Vec<Entry>,
    /// When the last message (or the report) was made, by this device's clock.
    pub last_activity: u64,
    /// How long after `last_activity` the reply mailbox is polled, in seconds.
    pub replies_for: u64,
}

impl Drop for ReporterThread {
    fn drop(&mut self) {
        self.mailbox_secret.zeroize();
        self.reply_secret.zeroize();
    }
}

impl ReporterThread {
    /// A thread for a new report to one NGO, with keys made for it alone.
    pub fn new(
        ngo: &vigil_core::card::RecipientCard,
        mailbox_key: &SigningSecret,
        reply: &x25519::Identity,
        now: u64,
        replies_for: u64,
    ) -> Self {
        let secret = reply.to_string_secret();
        ReporterThread {
            ngo: ngo.name.clone(),
            ngo_key: ngo.identity_key.to_string(),
            report_id: ReportId([0; 32]),
            mailbox_secret: mailbox_key.to_hex_secret().to_string(),
            reply_secret: secrecy::ExposeSecret::expose_secret(&secret).to_string(),
            relays: ngo
                .relays()
                .into_iter()
                .map(|r| ThreadRelay {
                    addr: r.addr,
                    fingerprint: r.fingerprint,
                    fingerprint_next: r.fingerprint_next,
                    registered: false,
                    kept_until: None,
                })
                .collect(),
            deposits: Vec::new(),
            stored_at: None,
            delivered_at: None,
            messages: Vec::new(),
            last_activity: now,
            replies_for,
        }
    }

    /// The reply mailbox's key.
    pub fn mailbox_key(&self) -> Result<SigningSecret> {
        SigningSecret::from_hex_secret(&self.mailbox_secret)
            .context("a report record is damaged (reply mailbox key)")
    }

    /// The reply mailbox's id.
    pub fn mailbox(&self) -> Result<MailboxId> {
        Ok(MailboxId::for_key(&self.mailbox_key()?.public().to_bytes()))
    }

    /// The reply identity.
    pub fn reply_identity(&self) -> Result<x25519::Identity> {
        self.reply_secret
            .parse()
            .map_err(|_| anyhow::anyhow!("a report record is damaged (reply key)"))
    }

    /// When the reply mailbox is given up: `replies_for` after the last message.
    pub fn expires_at(&self) -> u64 {
        self.last_activity.saturating_add(self.replies_for)
    }

    /// `queued`, `stored` or `delivered`.
    pub fn state(&self) -> &'static str {
        match (self.delivered_at, self.stored_at) {
            (Some(_), _) => "delivered",
            (None, Some(_)) => "stored",
            (None, None) => "queued",
        }
    }
}

/// One report the reporter sent, with its threads.
#[derive(Serialize, Deserialize)]
pub struct SentReport {
    /// Local id: 16 hex digits, random.
    pub id: String,
    /// The report's title, for the reporter's own list.
    pub title: String,
    /// When it was signed.
    pub created: u64,
    /// One thread per NGO.
    pub threads: Vec<ReporterThread>,
    /// The NGOs it went to without a reply capability (`report send --no-replies`): no thread,
    /// only whether a relay stored the copy (absent in older records).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub without_replies: Vec<PlainCopy>,
}

/// A report's copy for one NGO sent without a reply capability: what `report status` can say
/// of it (queued or stored; never delivered, as no receipt can come).
#[derive(Serialize, Deserialize)]
pub struct PlainCopy {
    /// The NGO's name, from its card.
    pub ngo: String,
    /// The deposit ids of the outbox copies that carry it.
    pub deposits: Vec<DepositId>,
    /// When a relay first said it stored a copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_at: Option<u64>,
}

impl PlainCopy {
    /// `queued` or `stored`.
    pub fn state(&self) -> &'static str {
        match self.stored_at {
            Some(_) => "stored",
            None => "queued",
        }
    }
}

impl Drop for SentReport {
    fn drop(&mut self) {
        self.title.zeroize();
    }
}

impl SentReport {
    /// A new record with a fresh local id.
    pub fn new(title: &str, created: u64) -> Self {
        let mut id = [0u8; 8];
        rand::Rng::fill(&mut rand::rngs::OsRng, &mut id);
        SentReport {
            id: hex::encode(id),
            title: title.to_string(),
            created,
            threads: Vec::new(),
            without_replies: Vec::new(),
        }
    }

    fn record(&self) -> String {
        format!("reports/{}", self.id)
    }

    /// Store (or update).
    pub fn save(&self, home: &Home) -> Result<()> {
        let bytes = Zeroizing::new(serde_json::to_vec(self)?);
        home.vault()?.put(&self.record(), &bytes)
    }

    /// The record and its bytes, for a write together with others.
    pub fn encoded(&self) -> Result<(String, Zeroizing<Vec<u8>>)> {
        Ok((self.record(), Zeroizing::new(serde_json::to_vec(self)?)))
    }
}

/// Every report sent from this home, oldest first.
pub fn sent_reports(home: &Home) -> Result<Vec<SentReport>> {
    let v = home.vault()?;
    let mut out = Vec::new();
    for record in v.list("reports/") {
        let Some(bytes) = v.get(&record, MAX_THREAD_RECORD)? else {
            continue;
        };
        let r: SentReport = serde_json::from_slice(&bytes)
            .with_context(|| format!("the report record {record} is damaged"))?;
        out.push(r);
    }
    out.sort_by_key(|r| r.created);
    Ok(out)
}

/// The sent report whose id starts with `prefix` (a unique prefix).
pub fn sent_report(home: &Home, prefix: &str) -> Result<SentReport> {
    let wanted = prefix.trim().to_lowercase();
    if wanted.is_empty() || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(crate::t_err!("status-no-such-report", id = prefix));
    }
    let mut found: Vec<SentReport> = sent_reports(home)?
        .into_iter()
        .filter(|r| r.id.starts_with(&wanted))
        .collect();
    match found.len() {
        0 => Err(crate::t_err!("status-no-such-report", id = prefix)
            .not_found()
            .into()),
        1 => Ok(found.remove(0)),
        _ => bail!(crate::t_err!("inbox-ambiguous-id", id = prefix)),
    }
}

/// Record that a relay stored the outbox copy `deposit` (called by the outbox as it removes
/// the copy), if a report's thread carries it.
pub fn copy_stored(home: &Home, deposit: &DepositId, now: u64) -> Result<()> {
    for mut r in sent_reports(home)? {
        let mut changed = false;
        for t in &mut r.threads {
            if t.stored_at.is_none() && t.deposits.iter().any(|d| d.ct_eq(deposit)) {
                t.stored_at = Some(now);
                changed = true;
            }
        }
        for c in &mut r.without_replies {
            if c.stored_at.is_none() && c.deposits.iter().any(|d| d.ct_eq(deposit)) {
                c.stored_at = Some(now);
                changed = true;
            }
        }
        if changed {
            return r.save(home);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- NGO

/// A deposit the NGO still owes a thread: the sealed receipt or reply, sent at the next chance.
#[derive(Clone, Serialize, Deserialize)]
pub struct Outgoing {
    /// The deposit id, the same on every retry (the relay stores it once).
    pub deposit_id: DepositId,
    /// `receipt` or `reply`, for messages.
    pub kind: String,
    /// The sealed message, base64.
    envelope_b64: String,
}

impl Outgoing {
    /// A new deposit of `sealed`.
    pub fn new(kind: &str, sealed: &[u8]) -> Self {
        let mut id = [0u8; 16];
        rand::Rng::fill(&mut rand::rngs::OsRng, &mut id);
        Outgoing {
            deposit_id: DepositId(id),
            kind: kind.to_string(),
            envelope_b64: B64.encode(sealed),
        }
    }

    /// The sealed bytes.
    pub fn envelope(&self) -> Result<Vec<u8>> {
        B64.decode(&self.envelope_b64)
            .context("a thread record is damaged (queued answer)")
    }
}

/// A received report's thread, on the NGO's side.
#[derive(Serialize, Deserialize)]
pub struct NgoThread {
    /// The report's id.
    pub report_id: ReportId,
    /// The reporter's key (hex), which answers must be signed by.
    pub reporter: String,
    /// The reply mailbox.
    pub mailbox: MailboxId,
    /// The reply recipient (age1...).
    pub recipient: String,
    /// The relays the capability names.
    pub relays: Vec<String>,
    /// When the receipt was deposited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_sent_at: Option<u64>,
    /// The NGO's replies and the reporter's answers, oldest first.
    #[serde(default)]
    pub messages: Vec<Entry>,
    /// What is still to be deposited, oldest first.
    #[serde(default)]
    pub outgoing: Vec<Outgoing>,
}

impl NgoThread {
    /// The reply recipient, parsed.
    pub fn recipient(&self) -> Result<x25519::Recipient> {
        self.recipient
            .parse()
            .map_err(|_| anyhow::anyhow!("a thread record is damaged (reply key)"))
    }
}

fn ngo_thread_record(id: &str) -> String {
    format!("inbox/thread/{id}")
}

/// The thread of the stored report `id`, if it has one.
pub fn ngo_thread(home: &Home, id: &str) -> Result<Option<NgoThread>> {
    match home
        .vault()?
        .get(&ngo_thread_record(id), MAX_THREAD_RECORD)?
    {
        Some(b) => Ok(Some(
            serde_json::from_slice(&b).context("a thread record is damaged")?,
        )),
        None => Ok(None),
    }
}

/// Store (or update) the thread of report `id`.
pub fn ngo_thread_save(home: &Home, id: &str, t: &NgoThread) -> Result<()> {
    let bytes = Zeroizing::new(serde_json::to_vec(t)?);
    home.vault()?.put(&ngo_thread_record(id), &bytes)
}

/// The ids of every stored report with a thread.
pub fn ngo_thread_ids(home: &Home) -> Result<Vec<String>> {
    Ok(home
        .vault()?
        .list("inbox/thread/")
        .into_iter()
        .filter_map(|n| n.strip_prefix("inbox/thread/").map(str::to_string))
        .collect())
}

/// The local id of the stored report with this report id (through the replay record kept for
/// every stored report).
pub fn inbox_id_of(home: &Home, report: &ReportId) -> Result<Option<String>> {
    Ok(super::inbox_seen(home, report.as_bytes())?.map(|s| s.id))
}

/// Read a message's text from `--message` or `--file` (UTF-8, bounded).
pub fn message_text(message: Option<&str>, file: Option<&std::path::Path>) -> Result<String> {
    let text = match (message, file) {
        (Some(m), _) => m.to_string(),
        (None, Some(p)) => {
            let bytes = vigil_fs::read_limited(p, vigil_core::thread::MAX_TEXT_LEN as u64)?;
            String::from_utf8(bytes.to_vec()).context("the file is not UTF-8 text")?
        }
        (None, None) => String::new(),
    };
    let text = text.trim_end().to_string();
    if text.is_empty() || text.len() > vigil_core::thread::MAX_TEXT_LEN {
        bail!(crate::t_err!(
            "thread-bad-text",
            max = (vigil_core::thread::MAX_TEXT_LEN as u64)
        ));
    }
    Ok(text)
}

/// Smallest metadata record a thread may be confused with; kept so the bound is visible.
const _: () = assert!(MAX_META < MAX_THREAD_RECORD);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_kept_once_in_order_and_bounded() {
        let mut list = Vec::new();
        let e = |at: u64, text: &str| Entry::new(Author::Ngo, text.into(), at);
        assert!(add_entry(&mut list, e(5, "b")));
        assert!(add_entry(&mut list, e(1, "a")));
        assert!(!add_entry(&mut list, e(5, "b")), "a redelivered item");
        assert_eq!(list.iter().map(|x| x.at).collect::<Vec<_>>(), [1, 5]);
        for i in 0..(MAX_THREAD_MESSAGES as u64 + 10) {
            add_entry(&mut list, e(100 + i, "x"));
        }
        assert_eq!(list.len(), MAX_THREAD_MESSAGES);
        assert_eq!(list[0].at, 110, "the oldest went first");
    }

    #[test]
    fn reply_mailboxes_are_registered_for_their_thread_and_renewed_when_it_outlives_them() {
        let now = 1_000 * DAY + 5;
        assert_eq!(lifetime_days(now + 90 * DAY, now), 91, "a day of slack");
        assert_eq!(lifetime_days(now + 90 * DAY - 1, now), 91);
        assert_eq!(lifetime_days(now, now), 1);
        assert_eq!(
            lifetime_days(0, now),
            1,
            "an expired thread asks for the least"
        );
        assert_eq!(
            lifetime_days(u64::MAX, 0),
            vigil_core::wire::limits::MAX_MAILBOX_LIFETIME_DAYS
        );
        let mut r = ThreadRelay {
            addr: "a:1".into(),
            fingerprint: CertFingerprint([0; 32]),
            fingerprint_next: None,
            registered: false,
            kept_until: None,
        };
        assert!(!r.needs_renewal(u64::MAX), "not registered yet");
        // Granted what was asked: no renewal until the thread goes on for more than the slack.
        r.registered_for(Some(91), now);
        assert!(!r.needs_renewal(now + 90 * DAY));
        assert!(!r.needs_renewal(now + 91 * DAY));
        assert!(r.needs_renewal(now + 91 * DAY + 1));
        // A relay that caps lifetimes: renewed at every poll while the thread outlives it.
        r.registered_for(Some(30), now);
        assert!(r.needs_renewal(now + 90 * DAY));
        // Kept for good (an old relay, or a mailbox some registration made permanent).
        r.registered_for(None, now);
        assert!(!r.needs_renewal(u64::MAX));
        r.registered_for(Some(u16::MAX), now);
        assert!(!r.needs_renewal(u64::MAX));
    }
}
