//! `vigil inbox fetch|list|show|status`.
//!
//! Fetch order matters: download, decrypt, verify, store durably on this machine, and only then
//! acknowledge, so that the relay deletes nothing this machine does not hold. Envelopes that fail
//! to open or verify are kept under `inbox/rejected/` (evidence of tampering or misaddressing) and
//! acknowledged too, so that one bad item cannot block the mailbox.
//!
//! An envelope that none of this inbox's staff keys opens is kept and acknowledged like the
//! others, with a loud warning each time, rather than left at the relay: anyone holding the card
//! can deposit such envelopes, so leaving them would let junk fill the mailbox and stall every
//! fetch behind it, and the relay deletes unfetched items after its expiry time anyway. Kept
//! here, the envelope waits for the missing key (`docs/threat-model.md`).
//!
//! A report signed long before (or after) it was received is shown with a warning, and the same
//! signed report arriving again as a new item is stored under `inbox/rejected/` as a replay, not
//! listed as a new report.
//!
//! An NGO whose card lists several relays fetches from each in turn, each over its own
//! connection. A reporter deposits the same sealed envelope at every relay, so one report
//! arrives once per relay: a copy whose bytes (SHA-256) are those of a report already stored
//! here, and whose signed report is that one, is acknowledged at its relay (so that relay deletes
//! it too) and not stored again. A relay that cannot be reached is named in a one-line warning
//! and the fetch goes on with the others; it fails only when no relay answers.
//!
//! Everything printed for people from inside a report goes through [`crate::display`].

use super::Ctx;
use crate::display;
use crate::home::now_unix;
use crate::progress::{Activity, Progress};
use crate::relay::{RelayClient, RelayError};
use crate::state::prekeys::PrekeyState;
use crate::state::{
    inbox_holds, inbox_mark_seen, inbox_seen, inbox_store, inbox_store_with, rejected_entries,
    rejected_read, rejected_remove, rejected_trim, AlertNote, Ngo, RejectedBound, RejectedKind,
    Seen, NO_KEY_REASON,
};
use anyhow::{Context, Result};
use serde_json::json;
use vigil_core::age::{self, AgeError};
use vigil_core::envelope::{self, EnvelopeError, Opened};
use vigil_core::thread::{self, Incoming};
use vigil_core::wire::ErrorCode;

pub(crate) mod export;
mod rejected;
pub(crate) mod reply;
mod status;
mod view;
mod watch;
pub use export::export;
pub use rejected::{clear as rejected_clear, list as rejected_list};
pub use reply::reply;
pub use status::status;
use status::warn_if_full;
use view::say_report_line;
pub use view::{list, show};
pub use watch::{watch, NewReport};

/// How far the signed creation time may be from the time the NGO received the report before it
/// is flagged. A report usually arrives within minutes; one queued on a phone without network
/// may take days. A week apart means an old report replayed (a captured envelope deposited
/// again), or a reporter's clock far off: either way the NGO should know before acting on it.
pub const MAX_CREATED_SKEW_SECS: u64 = 7 * 86_400;

/// Most items asked for per fetch round.
const FETCH_BATCH: u32 = 64;
/// The relay limits fetches per source address (`fetches_per_minute`, `fetch_burst`); draining
/// a full mailbox (10 000 items: 157 rounds) can outrun the burst. Then wait this long and ask
/// again, rather than stop half way.
const RATE_LIMITED_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// Waits for the fetch rate per round before giving up (the error says to try again later).
const RATE_LIMITED_TRIES: u32 = 30;

/// One fetch round, waiting out the relay's fetch rate limit a bounded number of times.
async fn fetch_round(
    client: &RelayClient,
    key: &ed25519_dalek::SigningKey,
) -> Result<Vec<crate::relay::FullItem>, RelayError> {
    let mut waits = 0;
    loop {
        match client.fetch_full(key, FETCH_BATCH).await {
            Err(RelayError::Refused {
                code: ErrorCode::RateLimited,
                ..
            }) if waits < RATE_LIMITED_TRIES => {
                waits += 1;
                tokio::time::sleep(RATE_LIMITED_WAIT).await;
            }
            other => return other,
        }
    }
}

/// One Download, waiting out the relay's per-address chunk rate a bounded number of times
/// (as [`fetch_round`] does for fetches) rather than failing a long download near its end.
async fn download_chunk(
    client: &RelayClient,
    blob: vigil_core::ids::BlobId,
    offset: u64,
    len: u32,
) -> Result<Vec<u8>, RelayError> {
    let mut waits = 0;
    loop {
        match client.download_chunk(blob, offset, len).await {
            Err(RelayError::Refused {
                code: ErrorCode::RateLimited,
                ..
            }) if waits < RATE_LIMITED_TRIES => {
                waits += 1;
                tokio::time::sleep(RATE_LIMITED_WAIT).await;
            }
            other => return other,
        }
    }
}

/// How much of a blob one Download asks for.
const DOWNLOAD_CHUNK: u32 = 1024 * 1024;

/// Download the blobs of `opened`'s attachments that this home does not hold yet, into the
/// vault as they come (ciphertext to the report's blob key, decrypted again only by
/// `inbox export`). A download goes on from what an interrupted fetch left (the partial blob is
/// kept in the vault), and each blob is decrypted once and checked against the hash the reporter
/// signed before it is kept, so the acknowledgement that follows never lets the relay delete the
/// only good copy of a blob this machine holds damaged. A blob the relay does not list, or one
/// that stays wrong after a fresh download, is said, not fatal: the report itself is here.
///
/// The same for a thread message's attachments (`attachments` and their `blob_key`): an NGO's
/// reply on the reporter's side, a reporter's answer on the NGO's.
pub(crate) async fn download_blobs(
    ctx: &Ctx,
    client: &RelayClient,
    attachments: &[vigil_core::envelope::Attachment],
    blob_key: Option<&vigil_core::age::x25519::Identity>,
    listed: &[vigil_core::wire::fetch::BlobRef],
) -> Result<()> {
    use std::io::Write;
    for a in attachments {
        let name = crate::vault::blob_name(&a.blob);
        if ctx.home.vault()?.contains(&name) {
            continue;
        }
        let Some(r) = listed.iter().find(|b| b.id.0 == a.blob) else {
            ctx.out.say(format!(
                "{}: {}",
                crate::t!("warning-prefix"),
                crate::t!("inbox-attachment-missing", name = display::line(&a.name))
            ));
            continue;
        };
        let key = blob_key.context("the message names attachments but carries no key for them")?;
        let mut resumed_from = None;
        for fresh in [false, true] {
            let mut part = ctx.home.vault()?.blob_partial(&name)?;
            if fresh || part.len() > r.len {
                part.restart()?;
            }
            if !part.is_empty() {
                resumed_from = Some(part.len());
            }
            let mut progress = Progress::new(&ctx.out, Activity::Download, &a.name, r.len);
            progress.resume_at(part.len());
            let mut offset = part.len();
            while offset < r.len {
                let want = u64::from(DOWNLOAD_CHUNK).min(r.len - offset) as u32;
                let bytes = download_chunk(client, r.id, offset, want).await?;
                part.write_all(&bytes)?;
                offset += bytes.len() as u64;
                progress.set(offset);
            }
            progress.finish();
            let mut check = Progress::new(&ctx.out, Activity::Check, &a.name, a.size);
            let reader = part.reader()?;
            match export::decrypt_checked(reader, a, key, &mut std::io::sink(), &mut check) {
                Ok(()) => {
                    check.finish();
                    ctx.home.vault()?.blob_finish_partial(part, &name)?;
                    ctx.out.emit(json!({
                        "type": "attachment_downloaded", "name": a.name, "bytes": r.len,
                        "resumed_from": resumed_from,
                    }));
                    break;
                }
                // What an earlier run left may be what failed: once more from nothing.
                Err(_) if !fresh && resumed_from.is_some() => continue,
                Err(e) => {
                    drop(check);
                    let part_name = part.name().to_string();
                    drop(part);
                    ctx.home.vault()?.remove(&part_name)?;
                    let shown = display::line(&crate::failure::localized_message(&e));
                    ctx.out
                        .say(format!("{}: {shown}", crate::t!("warning-prefix")));
                    ctx.out.emit(json!({
                        "type": "attachment_damaged", "name": a.name, "error": shown,
                    }));
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Counts from one fetch.
#[derive(Debug, Default)]
pub struct FetchSummary {
    /// Verified reports stored.
    pub stored: Vec<String>,
    /// Items that failed to open or verify.
    pub rejected: usize,
    /// Items that repeat a signed report already in this inbox.
    pub replays: usize,
    /// Items that none of this inbox's staff keys opens (also counted in `rejected`).
    pub no_key: usize,
    /// Copies of a report already stored, with the same bytes, that came via another relay of
    /// the card (or the same one again): acknowledged, not stored again.
    pub duplicates: usize,
    /// What was deleted from `inbox/rejected/` to keep it within its bound.
    pub trimmed: crate::state::Trimmed,
    /// Each report stored, as `inbox watch` shows it.
    pub new: Vec<NewReport>,
    /// The caller shows the reports stored (`inbox watch`, from [`Self::new`]): the fetch says
    /// and emits nothing for them itself.
    pub shown_by_caller: bool,
}

/// Download, verify, store, acknowledge, from every relay of this NGO's card.
pub async fn fetch(ctx: &Ctx) -> Result<FetchSummary> {
    let mut ngo = Ngo::load(&ctx.home)?;
    super::rotate_keys::destroy_retired_keys(ctx, &mut ngo)?;
    let bound = RejectedBound::from_env()?;
    let ids = ngo.local_identities(&ctx.home)?;
    if ids.is_empty() {
        anyhow::bail!(crate::t_err!("inbox-no-staff-key"));
    }
    let mut summary = FetchSummary::default();
    let me = ngo.identity.public();
    let still_no_key = recheck_no_key(ctx, &ids, &me, &mut summary)?;
    // Prekeys (issue 16): a new one when the newest is half through its life, published at
    // each relay below; all held ones open the prekey layer of what arrives.
    let mut prekeys = PrekeyState::load(&ctx.home)?;
    super::prekeys::renew_if_due(ctx, &ngo, &mut prekeys, crate::home::now_unix())?;
    let prekey_ids = prekeys.identities(&ctx.home)?;
    let relays = ngo.config.relays();
    let mut reached = Vec::with_capacity(relays.len());
    let mut first_error = None;
    for relay in &relays {
        let keys = Keys {
            staff: &ids,
            prekeys: &prekey_ids,
        };
        match fetch_from(ctx, &mut ngo, relay, keys, &mut prekeys, &mut summary).await {
            Ok(()) => reached.push(json!({"relay": relay.addr, "reached": true})),
            // One relay down (seized, blocked, restarting) is what several relays are for: say
            // so in one line and fetch from the others.
            Err(e) if relays.len() > 1 && is_relay_error(&e) => {
                let shown = display::line(&crate::failure::localized_message(&e));
                ctx.out.say(format!(
                    "{}: {}",
                    crate::t!("warning-prefix"),
                    crate::t!(
                        "inbox-relay-unreachable",
                        relay = relay.addr.as_str(),
                        error = shown
                    )
                ));
                reached.push(json!({"relay": relay.addr, "reached": false, "error": display::line(&format!("{e:#}"))}));
                first_error.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    if let (false, Some(e)) = (reached.iter().any(|r| r["reached"] == true), first_error) {
        return Err(e);
    }
    // Every relay of the card emptied: the prekeys past their expiry and grace period have
    // opened everything sealed to them that arrived in time; destroy them.
    if reached.iter().all(|r| r["reached"] == true) {
        super::prekeys::destroy_due(ctx, &mut prekeys, crate::home::now_unix())?;
    }
    // Receipts for the new reports that ask for them, and whatever earlier receipts and
    // replies could not be deposited: a relay's failure here is a warning, never the fetch's.
    reply::after_fetch(ctx, &ngo, &summary.stored).await?;
    // Everything fetched is safe and acknowledged; now keep the rejected envelopes (which a
    // card holder can add to at every fetch) within their bound.
    summary.trimmed = rejected_trim(&ctx.home, bound)?;
    if summary.trimmed.removed > 0 {
        let t = &summary.trimmed;
        ctx.out.say(crate::t!(
            "inbox-trimmed",
            count = (t.removed),
            max_items = (bound.max_items),
            max_mb = (bound.max_bytes / (1024 * 1024)),
            no_key = (t.removed_no_key)
        ));
    }
    super::ngo::warn_own_card_expiring(ctx);
    ctx.out.say(crate::t!(
        "inbox-fetched",
        count = (summary.stored.len()),
        rejected = (summary.rejected),
        replays = (summary.replays)
    ));
    let no_key_kept =
        (summary.no_key + still_no_key).saturating_sub(summary.trimmed.removed_no_key);
    if no_key_kept > 0 {
        ctx.out.say(crate::t!(
            "inbox-no-key-kept",
            count = no_key_kept,
            new = (summary.no_key)
        ));
    }
    if summary.duplicates > 0 {
        ctx.out
            .say(crate::t!("inbox-duplicates", count = (summary.duplicates)));
    }
    ctx.out.emit(json!({
        "type": "fetch_done", "stored": summary.stored.len(), "rejected": summary.rejected,
        "replays": summary.replays, "no_key": summary.no_key, "no_key_kept": no_key_kept,
        "rejected_trimmed": summary.trimmed.removed, "rejected_trimmed_no_key": summary.trimmed.removed_no_key,
        "duplicates": summary.duplicates, "relays": reached,
    }));
    Ok(summary)
}

/// Whether `e` came from a relay (unreachable, refused, wrong certificate...), rather than from
/// this machine (a vault that cannot be written).
fn is_relay_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<RelayError>())
}

/// Fetch everything waiting at one relay: download, verify, store, acknowledge there. Registers
/// the mailbox first if `ngo init` could not reach this relay (its registration is pending).
async fn fetch_from(
    ctx: &Ctx,
    ngo: &mut Ngo,
    relay: &vigil_core::card::CardRelay,
    keys: Keys<'_>,
    prekeys: &mut PrekeyState,
    summary: &mut FetchSummary,
) -> Result<()> {
    let client = RelayClient::connect_pinned(&relay.addr, &relay.accepted_fingerprints()).await?;
    register_if_pending(ctx, ngo, relay, &client).await?;
    drain(ctx, ngo, &client, relay, keys, summary).await?;
    super::prekeys::publish_at(ctx, ngo, prekeys, relay, &client).await?;
    // A flood that filled the mailbox refuses honest reports at the relay, where nobody sees
    // them: say so at every fetch. Best effort: the reports above are already safe here, and an
    // older relay that does not know the request is no reason to fail the fetch.
    if let Ok(st) = client.status(ngo.mailbox_key.as_dalek()).await {
        warn_if_full(ctx, &st);
    }
    client.close().await;
    Ok(())
}

/// Register the mailbox at `relay` if `ngo init` could not reach it (its registration is
/// pending).
async fn register_if_pending(
    ctx: &Ctx,
    ngo: &mut Ngo,
    relay: &vigil_core::card::CardRelay,
    client: &RelayClient,
) -> Result<()> {
    if ngo.config.is_pending(&relay.addr) {
        let mailbox = client.register(ngo.mailbox_key.as_dalek()).await?;
        if !mailbox.ct_eq(&ngo.config.mailbox) {
            anyhow::bail!(crate::t_err!(
                "ngo-wrong-mailbox",
                relay = relay.addr.as_str()
            ));
        }
        ngo.config.registered(&relay.addr);
        ngo.save_config(&ctx.home)?;
        ctx.out.say(crate::t!(
            "ngo-registered-late",
            relay = relay.addr.as_str()
        ));
        ctx.out
            .emit(json!({"type": "registered", "relay": relay.addr}));
    }
    Ok(())
}

/// Everything waiting at one relay, over `client`: download, verify, store, acknowledge there,
/// one round of up to [`FETCH_BATCH`] items after another until the mailbox is empty. What
/// `inbox fetch` and `inbox watch` (on each wake) both do.
async fn drain(
    ctx: &Ctx,
    ngo: &Ngo,
    client: &RelayClient,
    relay: &vigil_core::card::CardRelay,
    keys: Keys<'_>,
    summary: &mut FetchSummary,
) -> Result<()> {
    let me = ngo.identity.public();
    let ids = keys.staff;
    loop {
        let items = fetch_round(client, ngo.mailbox_key.as_dalek()).await?;
        if items.is_empty() {
            break;
        }
        let n = items.len();
        let mut acks = Vec::with_capacity(n);
        for item in items {
            // The prekey layer, if the reporter had the NGO's prekey: removed here, so that
            // what this inbox keeps is the envelope under the staff keys alone.
            let unwrapped = match vigil_core::prekey::unwrap(
                &item.envelope,
                keys.prekeys,
                vigil_core::wire::limits::MAX_ENVELOPE_LEN,
            ) {
                Ok(found) => found.map(|(_, inner)| inner),
                Err(e) => {
                    let why = e.to_string();
                    let id = inbox_store(
                        &ctx.home,
                        &item.envelope,
                        Some((RejectedKind::Invalid, &why)),
                    )?;
                    ctx.out.say(crate::t!(
                        "inbox-rejected-item",
                        id = id.as_str(),
                        error = display::line(&why)
                    ));
                    ctx.out.emit(
                        json!({"type": "rejected", "id": id, "error": why, "reason": "invalid"}),
                    );
                    summary.rejected += 1;
                    acks.push(item.id);
                    continue;
                }
            };
            let envelope: &[u8] = unwrapped.as_ref().map_or(&item.envelope, |v| v.as_slice());
            match thread::open_incoming(envelope, ids, &me) {
                // A reporter's answer in a report's thread: filed there, or kept as rejected.
                Ok(Incoming::Thread(m)) => {
                    let filed = reply::file_answer(ctx, &m)?;
                    if filed.is_ok() && !m.attachments.is_empty() {
                        // Before the acknowledgement, as a report's.
                        let key = m.blob_key.as_ref();
                        download_blobs(ctx, client, &m.attachments, key, &item.blobs).await?;
                    }
                    if let Err(why) = filed {
                        let id =
                            inbox_store(&ctx.home, envelope, Some((RejectedKind::Invalid, &why)))?;
                        ctx.out.say(crate::t!(
                            "inbox-rejected-item",
                            id = id.as_str(),
                            error = display::line(&why)
                        ));
                        ctx.out.emit(json!({"type": "rejected", "id": id, "error": why, "reason": "invalid"}));
                        summary.rejected += 1;
                    }
                }
                Ok(Incoming::Report(opened)) => {
                    let alert = item.note.map(|n| AlertNote {
                        reason: n.reason.as_str().to_string(),
                        armed_at: n.armed_at,
                        last_checkin_at: n.last_checkin_at,
                        released_at: n.released_at,
                    });
                    let stored = fetched(
                        ctx,
                        envelope,
                        (&item.id.to_string(), Some(&relay.addr)),
                        &opened,
                        summary,
                        alert,
                    )?;
                    if stored && !opened.attachments.is_empty() {
                        // Before the acknowledgement, which lets the relay delete them.
                        let key = opened.blob_key.as_ref();
                        download_blobs(ctx, client, &opened.attachments, key, &item.blobs).await?;
                    }
                }
                Err(EnvelopeError::Age(AgeError::NoMatch)) => {
                    let why =
                        if unwrapped.is_none() && vigil_core::prekey::is_prekey_layer(envelope) {
                            crate::t!("inbox-prekey-gone")
                        } else {
                            no_key_reason(envelope, ids.len())
                        };
                    let id = inbox_store(&ctx.home, envelope, Some((RejectedKind::NoKey, &why)))?;
                    ctx.out.say(crate::t!(
                        "inbox-no-key-item",
                        id = id.as_str(),
                        why = why.as_str()
                    ));
                    ctx.out.emit(json!({"type": "rejected", "id": id, "error": why, "reason": "no_matching_key"}));
                    summary.rejected += 1;
                    summary.no_key += 1;
                }
                Err(e) => {
                    let id = inbox_store(
                        &ctx.home,
                        envelope,
                        Some((RejectedKind::Invalid, &e.to_string())),
                    )?;
                    // The error may quote the report (serde names an unknown `kind`).
                    ctx.out.say(crate::t!(
                        "inbox-rejected-item",
                        id = id.as_str(),
                        error = display::line(&e.to_string())
                    ));
                    ctx.out.emit(json!({"type": "rejected", "id": id, "error": e.to_string(), "reason": "invalid"}));
                    summary.rejected += 1;
                }
            }
            acks.push(item.id);
        }
        client.ack(ngo.mailbox_key.as_dalek(), &acks).await?;
        if (n as u32) < FETCH_BATCH {
            break;
        }
    }
    Ok(())
}

/// The keys a fetch opens items with: the staff identities, and the prekeys held.
#[derive(Clone, Copy)]
pub(super) struct Keys<'a> {
    pub(super) staff: &'a [age::AnyIdentity],
    pub(super) prekeys: &'a [vigil_core::age::hybrid::Identity],
}

/// Store one opened report, unless it is a replay of one already here or another relay's copy
/// of one; returns whether it was stored as a report. `from` names where it came from: the
/// relay's item id, and the relay (`None` for an envelope taken again from `inbox/rejected/`).
fn fetched(
    ctx: &Ctx,
    envelope: &[u8],
    from: (&str, Option<&str>),
    opened: &Opened,
    summary: &mut FetchSummary,
    alert: Option<AlertNote>,
) -> Result<bool> {
    let (item_id, relay) = from;
    let this_id = crate::state::inbox_id(envelope);
    let original = match inbox_seen(&ctx.home, &opened.digest)? {
        // The same item again, with the same bytes: its acknowledgement was lost. Store it (again:
        // the record is written first, so the envelope may not be there yet) as usual.
        Some(seen) if seen.item == item_id && seen.id == this_id => None,
        // The same signed report in the same bytes, as another relay's item: the reporter
        // deposited one sealed envelope at each relay of the card. One copy is kept; this one
        // is only acknowledged, so its relay deletes it too.
        Some(mut seen)
            if seen.id == this_id
                && relay.is_some_and(|r| seen.is_copy_from(r, item_id))
                && inbox_holds(&ctx.home, envelope)? =>
        {
            let relay = relay.unwrap_or_default();
            if !seen
                .copies
                .iter()
                .any(|c| c.relay.eq_ignore_ascii_case(relay))
            {
                seen.copies.push(crate::state::SeenCopy {
                    relay: relay.to_string(),
                    item: item_id.to_string(),
                });
                inbox_mark_seen(&ctx.home, &opened.digest, &seen)?;
            }
            ctx.out
                .emit(json!({"type": "duplicate", "id": this_id, "item": item_id, "relay": relay}));
            summary.duplicates += 1;
            return Ok(false);
        }
        // Another relay's copy, but the stored one is missing (its record was written, then the
        // command died before the envelope): this copy is the report, stored now.
        Some(seen)
            if seen.id == this_id && relay.is_some_and(|r| seen.is_copy_from(r, item_id)) =>
        {
            None
        }
        Some(seen) => Some(seen.id),
        // Stored before this inbox kept records: the same bytes can only be the same report.
        None if inbox_holds(&ctx.home, envelope)? => Some(this_id.clone()),
        None => None,
    };
    let created = opened.created;
    if let Some(original) = original {
        let why = format!("replay of report {original}: the same signed report (same reporter key, same content, same signing time) arrived again as a new item");
        let id = inbox_store(&ctx.home, envelope, Some((RejectedKind::Replay, &why)))?;
        ctx.out.say(crate::t!(
            "inbox-replay",
            id = id.as_str(),
            original = original.as_str(),
            signed = utc(created)
        ));
        ctx.out
            .emit(json!({"type": "replay", "id": id, "original": original, "created": created}));
        summary.replays += 1;
        return Ok(false);
    }
    inbox_mark_seen(
        &ctx.home,
        &opened.digest,
        &Seen {
            id: this_id,
            item: item_id.to_string(),
            relay: relay.map(str::to_string),
            copies: Vec::new(),
        },
    )?;
    let id = inbox_store_with(&ctx.home, envelope, None, alert.clone())?;
    let now = now_unix();
    summary
        .new
        .push(NewReport::of(&id, opened, now, relay, alert.is_some()));
    if summary.shown_by_caller {
        summary.stored.push(id);
        return Ok(true);
    }
    let warning = time_warning(created, now);
    say_report_line(ctx, &id, opened, now, warning.as_deref(), alert.as_ref());
    let r = &opened.report;
    ctx.out.emit(json!({
        "type": "fetched", "id": id, "urgency": r.urgency.as_str(), "kind": r.kind.as_str(),
        "title": r.title, "created": created, "time_warning": warning,
        "alert": view::alert_json(alert.as_ref()),
    }));
    summary.stored.push(id);
    Ok(true)
}

/// Try the envelopes kept because no staff key here opened them again, with the keys held now:
/// a staff key added since (or restored) brings them into the inbox, as if just fetched. Those
/// that still open for no key are counted, and the fetch says so every time.
fn recheck_no_key(
    ctx: &Ctx,
    ids: &[age::AnyIdentity],
    me: &vigil_core::keys::PublicSigningKey,
    summary: &mut FetchSummary,
) -> Result<usize> {
    let mut still = 0;
    for entry in rejected_entries(&ctx.home)? {
        if entry.kind != RejectedKind::NoKey {
            continue;
        }
        let id = entry.id;
        let bytes = rejected_read(&ctx.home, &id)?;
        match envelope::open(&bytes, ids, me) {
            Ok(opened) => {
                ctx.out.say(crate::t!("inbox-opens-now", id = id.as_str()));
                if fetched(
                    ctx,
                    &bytes,
                    (&format!("rejected:{id}"), None),
                    &opened,
                    summary,
                    None,
                )? {
                    rejected_remove(&ctx.home, &id)?;
                }
            }
            Err(EnvelopeError::Age(AgeError::NoMatch)) => still += 1,
            // It opens now but is invalid: keep it, with the reason it has now.
            Err(e) => {
                inbox_store(
                    &ctx.home,
                    &bytes,
                    Some((RejectedKind::Invalid, &e.to_string())),
                )?;
                ctx.out.say(crate::t!(
                    "inbox-opens-now-rejected",
                    id = id.as_str(),
                    error = display::line(&e.to_string())
                ));
            }
        }
    }
    Ok(still)
}

/// Why an envelope that opened for none of our keys is kept, and what to do. An age X25519
/// stanza does not name the key it was made for (by design: that would tell an observer who the
/// recipients are), so the most the header tells is how many recipients there were.
fn no_key_reason(envelope: &[u8], held: usize) -> String {
    let named = match age::format::Header::parse(envelope) {
        Ok((h, _)) => {
            let x = h.stanzas.iter().filter(|s| s.tag() == "X25519").count();
            let pq = h
                .stanzas
                .iter()
                .filter(|s| s.tag() == "mlkem768x25519")
                .count();
            let (n, kind) = if pq > 0 {
                (pq, "post-quantum")
            } else {
                (x, "X25519")
            };
            if n == h.stanzas.len() && n == envelope::ENVELOPE_STANZAS {
                // Decoys fill every header to the same count (issue 14): the count says nothing.
                format!(
                    "its header carries the usual {n} {kind} recipients, real ones among decoys, so it does not say which or how many staff keys it was sealed to"
                )
            } else {
                format!(
                    "it names {} ({} in all), and age stanzas do not say which keys they are",
                    crate::output::count(
                        n as u64,
                        &format!("{kind} recipient"),
                        &format!("{kind} recipients")
                    ),
                    crate::output::count(h.stanzas.len() as u64, "stanza", "stanzas")
                )
            }
        }
        Err(_) => "its age header does not parse".to_string(),
    };
    format!(
        "{NO_KEY_REASON} ({held} held; {named}); was a staff member's key removed, or was it sealed with an old card? Add the missing key to this inbox's staff keys, or ask whoever holds it to open the kept envelope"
    )
}

/// A warning when the signed creation time is more than [`MAX_CREATED_SKEW_SECS`] away from
/// when this inbox received the report.
pub fn time_warning(created: u64, received: u64) -> Option<String> {
    if received == 0 || created.abs_diff(received) <= MAX_CREATED_SKEW_SECS {
        return None;
    }
    let days = created.abs_diff(received) / 86_400;
    Some(if created < received {
        format!("signed {days} days before it was received: it may be an old report sent again (a replay), or the reporter's clock is wrong; check before acting on it")
    } else {
        format!("signed {days} days after it was received: the reporter's clock is wrong, or the time was forged; check before acting on it")
    })
}

/// [`time_warning`] in this run's language, for the person reading (the English one goes into
/// JSON).
pub fn time_warning_shown(created: u64, received: u64) -> Option<String> {
    time_warning(created, received)?;
    let days = created.abs_diff(received) / 86_400;
    Some(match created < received {
        true => crate::t!("inbox-signed-before", days = days),
        false => crate::t!("inbox-signed-after", days = days),
    })
}

/// Unix seconds as `2024-02-20 10:00 UTC`.
pub use vigil_core::civil::format_utc as utc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_well() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_708_423_200), "2024-02-20 10:00 UTC");
        assert_eq!(time_warning(100, 100 + MAX_CREATED_SKEW_SECS), None);
        assert!(time_warning(100, 101 + MAX_CREATED_SKEW_SECS)
            .is_some_and(|w| w.contains("before it was received")));
        assert!(time_warning(101 + MAX_CREATED_SKEW_SECS, 100)
            .is_some_and(|w| w.contains("after it was received")));
        assert_eq!(time_warning(5, 0), None, "unknown receive time");
    }

    #[test]
    fn fields_this_version_does_not_know_are_listed_with_their_place() {
        let r = vigil_core::report::Report::from_json(
            br#"{"kind":"threat","urgency":"low","title":"t","occurred_at":"2024","narrative":"n",
                 "case_no":"A-17","subjects":[{"name":"A","role":"victim","age":19}],
                 "location":{"text":"x","district":"Sunzha"}}"#,
        )
        .unwrap();
        let mut got = view::extra_fields(&r);
        got.sort();
        assert_eq!(
            got,
            [
                ("case_no".to_string(), "A-17".to_string()),
                ("location.district".into(), "Sunzha".into()),
                ("subjects[0].age".into(), "19".into()),
            ]
        );
    }
}
