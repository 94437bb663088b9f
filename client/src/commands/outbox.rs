//! `vigil outbox list|flush|cancel`: reports wait here, sealed, until a relay confirms it stored them.
//!
//! An item leaves the outbox only after the relay's "stored" reply, which the relay sends only
//! after the envelope is on disk. A retry reuses the item's deposit id, so a "stored" reply lost
//! on a bad link does not lead to a second copy in the NGO's inbox.
//!
//! Crash safety: an item is written (temp file, fsync, rename, fsync of the directory) before
//! anything is sent, and removed only after "stored". Killed before the write, the report was
//! never queued (the user saw no "queued"); killed between "stored" and the removal, the next
//! flush sends it again under the same deposit id and the relay answers "already stored".
//!
//! A report for an NGO whose card lists several relays is queued as one item per relay, each
//! with the same envelope bytes (sealed once) and a deposit id of its own, sharing the report's
//! attachment blobs (uploaded to each relay from where that relay has them). Each item is
//! delivered over its own connection and leaves the outbox when its relay stores it, so the
//! copy for a relay that is down waits here for a later flush while the others are delivered.

use super::Ctx;
use crate::cli::RetryArgs;
use crate::home::now_unix;
use crate::progress::{Activity, Progress};
use crate::relay::{Deposited, LinkOptions, RelayClient, RelayError};
use crate::retry::format_duration;
use crate::state::{contacts, outbox, OutboxItem};
use anyhow::Result;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;
use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;
use vigil_core::wire::ErrorCode;

/// What a flush achieved.
#[derive(Debug, Default)]
pub struct FlushSummary {
    /// NGO names whose copy was stored (once per stored item: an NGO with several relays may
    /// appear once per relay).
    pub sent: Vec<String>,
    /// The deposit ids of the items stored.
    pub stored: Vec<vigil_core::ids::DepositId>,
    /// The relays given up on in this flush, with why (in this run's language); their items
    /// are still queued.
    pub failed_relays: Vec<(String, String)>,
    /// Items still waiting.
    pub pending: usize,
}

/// A flush that ran to its end: what it achieved, and the first error that left something
/// queued (`None` when everything was delivered).
pub struct Flushed {
    /// What was delivered.
    pub summary: FlushSummary,
    /// Why something is still queued.
    pub error: Option<anyhow::Error>,
}

/// List queued items.
pub fn list(ctx: &Ctx) -> Result<()> {
    let items = outbox(&ctx.home)?;
    if items.is_empty() {
        ctx.out.say(crate::t!("outbox-empty-delivered"));
    }
    let now = now_unix();
    for i in &items {
        let id = i.deposit_id.to_string();
        let age = now.saturating_sub(i.queued_at);
        ctx.out.say(crate::t!(
            "outbox-item",
            id = (&id[..8.min(id.len())]),
            to = i.to.as_str(),
            relay = i.relay.as_str(),
            age = age_text(age),
            attempts = i.attempts
        ));
        ctx.out.emit(json!({"type": "outbox_item", "id": id, "deposit_id": id, "to": i.to, "relay": i.relay, "queued_at": i.queued_at, "age_secs": age, "attempts": i.attempts, "attachments": i.blobs.len(), "attachment_bytes": i.blobs.iter().map(|b| b.len).sum::<u64>()}));
    }
    Ok(())
}

/// How long ago, for a person: "just now", "12 min ago", "5 h ago", "3 days ago".
fn age_text(secs: u64) -> String {
    match secs {
        0..60 => crate::t!("age-just-now"),
        60..3600 => crate::t!("age-minutes", n = (secs / 60)),
        3600..172_800 => crate::t!("age-hours", n = (secs / 3600)),
        _ => crate::t!("age-days", n = (secs / 86_400)),
    }
}

/// Remove one queued item, by its id or a unique prefix of it (at least 4 characters).
pub fn cancel(ctx: &Ctx, id: &str) -> Result<()> {
    let wanted = id.trim().to_lowercase();
    if wanted.len() < 4 || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(crate::t_err!("outbox-bad-id", id = id).not_found().into());
    }
    let items = outbox(&ctx.home)?;
    let mut matching = items
        .into_iter()
        .filter(|i| i.deposit_id.to_string().starts_with(&wanted));
    let (Some(item), None) = (matching.next(), matching.next()) else {
        let found = outbox(&ctx.home)?
            .iter()
            .any(|i| i.deposit_id.to_string().starts_with(&wanted));
        return Err(match found {
            true => crate::t_err!("outbox-ambiguous-id", id = id).into(),
            false => crate::t_err!("outbox-no-such-id", id = id)
                .not_found()
                .into(),
        });
    };
    item.remove(&ctx.home)?;
    let mut line = crate::t!("outbox-cancelled", to = item.to.as_str());
    if item.attempts > 0 {
        line = format!("{line} {}", crate::t!("outbox-cancelled-maybe-delivered"));
    }
    ctx.out.say(line);
    ctx.out.emit(json!({"type": "outbox_cancelled", "id": item.deposit_id.to_string(), "to": item.to, "maybe_delivered": item.attempts > 0}));
    Ok(())
}

/// Try to deliver everything queued.
pub async fn flush_all(ctx: &Ctx, retry: &RetryArgs) -> Result<FlushSummary> {
    let items = outbox(&ctx.home)?;
    if items.is_empty() {
        ctx.out.say(crate::t!("outbox-empty"));
        ctx.out
            .emit(json!({"type": "outbox_flushed", "sent": 0, "pending": 0}));
        // Reply mailboxes `report send` could not register yet (see `report_status`).
        super::report_status::register_pending(ctx, retry, &mut Vec::new()).await?;
        return Ok(FlushSummary::default());
    }
    let flushed = flush_items(ctx, items, retry).await?;
    let mut down: Vec<String> = flushed
        .summary
        .failed_relays
        .iter()
        .map(|(r, _)| r.clone())
        .collect();
    super::report_status::register_pending(ctx, retry, &mut down).await?;
    match flushed.error {
        Some(e) => Err(e.context(crate::t_err!(
            "outbox-pending",
            count = flushed.summary.pending
        ))),
        None => Ok(flushed.summary),
    }
}

/// Deliver `items`, grouped by relay so each relay gets one connection at a time.
///
/// A failure for a passing reason (relay unreachable, link lost or stalled, relay busy) ends the
/// connection; after a backoff with jitter (`crate::retry`) a new connection carries on with
/// what is left, until the budget of `--retry-for` is spent. A refusal that retrying cannot cure
/// leaves that item in the outbox and moves on to the next; a relay that is not the one on the
/// card stops everything at once (possible interception: nothing more is sent from here).
///
/// Each item pins the relay certificate(s) of the card it was sealed for; if the reporter has
/// since imported a newer card for the same relay and mailbox (a certificate rotation), the
/// newer card's pins are used instead (see [`OutboxItem::adopt_pins`]).
///
/// Returns an error (after delivering what it could) when anything is still pending, so the exit
/// code says so.
pub async fn flush(ctx: &Ctx, items: Vec<OutboxItem>, retry: &RetryArgs) -> Result<FlushSummary> {
    let flushed = flush_items(ctx, items, retry).await?;
    match flushed.error {
        Some(e) => Err(e.context(crate::t_err!(
            "outbox-pending",
            count = flushed.summary.pending
        ))),
        None => Ok(flushed.summary),
    }
}

/// [`flush`], returning what was delivered even when something is still queued (the error is
/// then in [`Flushed::error`]); the outer error is local (the vault). `report send` uses it to
/// tell a report stored at one relay of a card, its copy for another still queued, from a
/// report that reached no relay at all.
pub async fn flush_items(
    ctx: &Ctx,
    mut items: Vec<OutboxItem>,
    retry: &RetryArgs,
) -> Result<Flushed> {
    let policy = retry.policy(ctx.out.interactive());
    let link = retry.link();
    let mut rng = StdRng::from_entropy();
    let started = Instant::now();
    let total = items.len();
    // A contact file that cannot be read leaves the items with the pins they were queued with:
    // never weaker, and `contact list` reports the damage.
    if let Ok(cards) = contacts(&ctx.home) {
        for item in &mut items {
            for c in &cards {
                if item.adopt_pins(&c.card) {
                    item.save_if_queued(&ctx.home)?;
                }
            }
        }
    }
    let mut by_relay: BTreeMap<(String, String), VecDeque<OutboxItem>> = BTreeMap::new();
    for i in items {
        let pins: Vec<String> = i.pinned().iter().map(ToString::to_string).collect();
        by_relay
            .entry((i.relay.clone(), pins.join(",")))
            .or_default()
            .push_back(i);
    }
    let mut summary = FlushSummary::default();
    let mut first_error: Option<anyhow::Error> = None;
    let mut retries = 0u32;
    // Pauses between deposits so far (see [`SPACING_BUDGET`]).
    let mut paused = std::time::Duration::ZERO;
    for ((relay, _), mut pending) in by_relay {
        let mut given_up = Vec::new();
        // Whether the next connection follows one that delivered (or gave up) an item, rather
        // than the start or a retry's own wait.
        let mut spaced = false;
        while !pending.is_empty() {
            if spaced && !retry.no_delay && paused < SPACING_BUDGET {
                let pause = spacing(&mut rng).min(SPACING_BUDGET - paused);
                paused += pause;
                ctx.out
                    .say(crate::t!("outbox-spacing", delay = format_duration(pause)));
                ctx.out
                    .emit(json!({"type": "spacing", "delay_ms": pause.as_millis() as u64}));
                tokio::time::sleep(pause).await;
            }
            spaced = true;
            let Some(err) = attempt(
                ctx,
                &relay,
                &link,
                &mut pending,
                &mut given_up,
                &mut summary,
                &mut first_error,
            )
            .await?
            else {
                continue;
            };
            spaced = false;
            let delay = if err.is_retryable() {
                // A relay that says it is rate limiting us or out of disk will not be better in
                // half a second: wait at least this long, within the same total budget.
                let floor = min_delay_for(&err);
                policy
                    .delay(retries, started.elapsed(), &mut rng)
                    .map(|d| d.max(floor))
                    .filter(|d| started.elapsed() + *d <= policy.total)
            } else {
                None
            };
            let Some(delay) = delay else {
                let stop_all = matches!(err, RelayError::FingerprintMismatch { .. });
                summary
                    .failed_relays
                    .push((relay.clone(), crate::failure::localized_relay_error(&err)));
                first_error.get_or_insert(anyhow::Error::from(err));
                if stop_all {
                    save_attempts(ctx, pending.iter().chain(&given_up))?;
                    return finish(ctx, summary, total, first_error);
                }
                break;
            };
            retries += 1;
            let left = policy.total.saturating_sub(started.elapsed());
            ctx.out.say(format!(
                "{}\n  {}",
                crate::t!(
                    "outbox-attempt-failed",
                    attempt = retries,
                    error = crate::failure::localized_relay_error(&err)
                ),
                crate::t!(
                    "outbox-retrying",
                    delay = format_duration(delay),
                    left = format_duration(left)
                )
            ));
            ctx.out.emit(json!({"type": "retry", "attempt": retries, "error": err.to_string(), "retry_in_ms": delay.as_millis() as u64, "pending": pending.len()}));
            tokio::time::sleep(delay).await;
        }
        save_attempts(ctx, pending.iter().chain(&given_up))?;
    }
    finish(ctx, summary, total, first_error)
}

/// One connection to `relay`, for one deposit: the front item of `pending`. Returns the error
/// that ended it early (the item is back at the front of `pending`), or `None` when the item was
/// delivered or refused for good (then it moved to `given_up`).
///
/// One deposit per connection, each from a fresh endpoint (new UDP port, new connection ids,
/// new TLS keys, no resumption): the relay cannot tell that two deposits came from one device
/// by the connection they share (docs/threat-model.md, "Linking deposits").
async fn attempt(
    ctx: &Ctx,
    relay: &str,
    link: &LinkOptions,
    pending: &mut VecDeque<OutboxItem>,
    given_up: &mut Vec<OutboxItem>,
    summary: &mut FlushSummary,
    first_error: &mut Option<anyhow::Error>,
) -> Result<Option<RelayError>> {
    let Some(pinned) = pending.front().map(OutboxItem::pinned) else {
        return Ok(None);
    };
    let client = match RelayClient::connect_pinned_with(relay, &pinned, link).await {
        Ok(c) => c,
        Err(e) => {
            for item in pending.iter_mut() {
                item.attempts = item.attempts.saturating_add(1);
            }
            return Ok(Some(e));
        }
    };
    if let Some(mut item) = pending.pop_front() {
        let envelope = item.envelope()?;
        // The prekey layer (issue 16), added now, on this connection, with the NGO's current
        // prekey; without one the copy goes sealed to the long-term keys only, and says so.
        let ngo_key = item
            .ngo_key
            .as_deref()
            .and_then(|k| k.parse::<vigil_core::keys::PublicSigningKey>().ok());
        // Only a copy for an NGO's card mailbox has an NGO prekey to look for; a deposit into a
        // reporter's reply mailbox (an NGO's reply with attachments) has none, and says nothing.
        let protection = match &ngo_key {
            Some(k) => Some(
                super::prekeys::for_deposit(ctx, &client, k, &item.mailbox, &item.to, now_unix())
                    .await,
            ),
            None => None,
        };
        let envelope = match &protection {
            Some(super::prekeys::Protection::Prekey(b)) => {
                vigil_core::prekey::wrap(&envelope, &b.recipient, &mut rand::rngs::OsRng)?
            }
            _ => envelope,
        };
        item.attempts = item.attempts.saturating_add(1);
        let outcome = if item.blobs.is_empty() {
            let deposit = client.deposit_status(&item.mailbox, &item.deposit_id, &envelope);
            with_progress(ctx, &client, &item.to, envelope.len() as u64, deposit).await
        } else {
            // Attachments first (the relay refuses an envelope naming blobs it does not hold
            // whole), each from where the relay has it; then the envelope, naming them.
            match upload_blobs(ctx, &client, &item).await? {
                Ok(ids) => {
                    client
                        .deposit_with_blobs(&item.mailbox, &item.deposit_id, &envelope, &ids)
                        .await
                }
                Err(e) => Err(e),
            }
        };
        match outcome {
            Ok(outcome) => {
                item.remove(&ctx.home)?;
                // A report's thread shows it as stored from now on (`vigil report status`).
                crate::state::copy_stored(&ctx.home, &item.deposit_id, now_unix())?;
                let mut line = crate::t!("outbox-delivered", to = item.to.as_str());
                if outcome == Deposited::Duplicate {
                    line = format!("{line} {}", crate::t!("outbox-delivered-duplicate"));
                }
                ctx.out.say(line);
                let forward_secrecy = match &protection {
                    None => serde_json::Value::Null,
                    Some(super::prekeys::Protection::Prekey(b)) => {
                        ctx.out.say(crate::t!(
                            "report-prekey-used",
                            name = item.to.as_str(),
                            until = vigil_core::card::format_utc(b.expires)
                        ));
                        json!({"prekey": true, "prekey_id": b.id(), "prekey_expires": b.expires, "reason": null})
                    }
                    Some(super::prekeys::Protection::LongTermOnly(why)) => {
                        ctx.out.say(format!(
                            "{}: {}",
                            crate::t!("warning-prefix"),
                            crate::t!(
                                "report-prekey-not-used",
                                name = item.to.as_str(),
                                why = why.as_str()
                            )
                        ));
                        json!({"prekey": false, "prekey_id": null, "prekey_expires": null, "reason": why})
                    }
                };
                ctx.out.emit(json!({"type": "stored", "to": item.to, "relay": item.relay, "deposit_id": item.deposit_id.to_string(), "duplicate": outcome == Deposited::Duplicate, "forward_secrecy": forward_secrecy}));
                summary.sent.push(item.to.clone());
                summary.stored.push(item.deposit_id);
            }
            Err(
                e @ RelayError::Refused {
                    code: ErrorCode::QuotaExceeded,
                    ..
                },
            ) => {
                // This NGO's mailbox is full; the next NGO's at the same relay may not be, and
                // waiting seconds will not empty it: keep this copy for a later flush and go on.
                ctx.out.say(crate::t!(
                    "outbox-not-delivered-yet",
                    to = item.to.as_str(),
                    error = crate::failure::localized_relay_error(&e)
                ));
                first_error.get_or_insert(anyhow::Error::from(e));
                given_up.push(item);
            }
            Err(
                e @ (RelayError::Refused {
                    retryable: false, ..
                }
                | RelayError::TooLarge { .. }),
            ) => {
                ctx.out.say(crate::t!(
                    "outbox-not-delivered",
                    to = item.to.as_str(),
                    error = crate::failure::localized_relay_error(&e)
                ));
                first_error.get_or_insert(anyhow::Error::from(e));
                given_up.push(item);
            }
            Err(e) => {
                pending.push_front(item);
                client.close().await;
                return Ok(Some(e));
            }
        }
    }
    client.close().await;
    Ok(None)
}

/// The pause before the next queued deposit to the same relay: uniform between
/// [`SPACING_MIN`] and [`SPACING_MAX`]. Deposits seconds apart from one address are easy to
/// tie together in a quiet relay's log; a random pause blurs the order and rhythm a device
/// sends in (it does not hide that one address sent several: a proxy such as Tor does that).
fn spacing(rng: &mut impl rand::Rng) -> std::time::Duration {
    let ms = rng.gen_range(SPACING_MIN.as_millis() as u64..=SPACING_MAX.as_millis() as u64);
    std::time::Duration::from_millis(ms)
}

/// Shortest pause between queued deposits (see [`spacing`]).
pub const SPACING_MIN: std::time::Duration = std::time::Duration::from_secs(1);
/// Longest pause between queued deposits.
pub const SPACING_MAX: std::time::Duration = std::time::Duration::from_secs(5);
/// Most time one flush spends in these pauses; the deposits after it go one right after
/// another. A long queue (a phone back online after days) is one burst from one address
/// whatever the pauses, and a person waiting on it should not wait minutes for nothing.
pub const SPACING_BUDGET: std::time::Duration = std::time::Duration::from_secs(30);

/// How long an upload waits for the relay to let go of a blob that an earlier, dead connection
/// was sending (a `report send` killed or cut off mid-chunk): the relay answers Busy until it
/// notices, which takes its idle timeout (the client's `--stall-timeout`, 20 s by default, or the
/// relay's, 30 s, whichever is shorter). Waiting here, rather than failing the attempt, lets a
/// plain `vigil outbox flush` after a killed send finish in one go.
const BUSY_BLOB_WAIT: std::time::Duration = std::time::Duration::from_secs(45);
/// How often the relay is asked again meanwhile.
const BUSY_BLOB_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// [`RelayClient::upload_chunk`], waiting out a Busy answer for up to [`BUSY_BLOB_WAIT`].
async fn upload_chunk_waiting(
    client: &RelayClient,
    id: vigil_core::ids::BlobId,
    total: u64,
    offset: u64,
    chunk: &[u8],
) -> Result<u64, RelayError> {
    let started = Instant::now();
    loop {
        match client.upload_chunk(id, total, offset, chunk).await {
            Err(RelayError::Refused {
                code: ErrorCode::Busy,
                ..
            }) if started.elapsed() + BUSY_BLOB_POLL <= BUSY_BLOB_WAIT => {
                tokio::time::sleep(BUSY_BLOB_POLL).await;
            }
            other => return other,
        }
    }
}

/// How much of a blob one Upload carries: large enough to keep a good link busy, small enough
/// that a dropped one costs little to send again.
const UPLOAD_CHUNK: usize = 1024 * 1024;

/// The smallest chunk a stalled TLS-over-TCP upload shrinks to (see [`upload_blobs`]).
const MIN_UPLOAD_CHUNK: usize = 16 * 1024;

/// How many stalled chunks one upload rides out by shrinking and reconnecting before it gives
/// the error to the retry loop.
const MAX_STALLS: u32 = 8;

/// Upload the blobs of `item` that the relay does not hold whole yet, each from the offset the
/// relay reports (so a cut link, a killed client or a restarted relay costs only the chunk in
/// flight), after asking the relay whether the report fits at all. The outer error is local
/// (the outbox copy of a blob is unreadable); the inner one is the relay's, handled like a
/// deposit's.
async fn upload_blobs(
    ctx: &Ctx,
    client: &RelayClient,
    item: &OutboxItem,
) -> Result<Result<Vec<vigil_core::ids::BlobId>, RelayError>> {
    use std::io::{Read, Seek, SeekFrom};
    let total: u64 = item.blobs.iter().map(|b| b.len).sum();
    match client.quote(&[item.mailbox], total).await {
        Ok(_) => {}
        // Said with this report's size, in one line: "the relay takes at most 2 GiB per report;
        // this one is 2.3 GiB".
        Err(RelayError::Refused {
            code: ErrorCode::TooLarge,
            message,
            retryable,
        }) => {
            return Ok(Err(RelayError::Refused {
                code: ErrorCode::TooLarge,
                message: format!(
                    "{message}; this one is {}",
                    vigil_core::wire::quote::human_bytes(total)
                ),
                retryable,
            }))
        }
        Err(e) => return Ok(Err(e)),
    }
    let mut ids = Vec::with_capacity(item.blobs.len());
    let mut buf = zeroize::Zeroizing::new(vec![0u8; UPLOAD_CHUNK]);
    // Over TLS on TCP, a chunk whose flow stalls (some censors freeze TLS flows to foreign
    // servers after 15-20 KB) is sent again, a quarter the size, on a new connection, and from
    // then on every chunk gets a new connection: progress is made across many short flows.
    let mut chunk = UPLOAD_CHUNK;
    let mut fresh_flow_per_chunk = false;
    let mut stalls = 0u32;
    let mut progress = Progress::new(&ctx.out, Activity::Upload, &item.to, total);
    let mut done = 0u64;
    for (n, b) in item.blobs.iter().enumerate() {
        let mut raw = [0u8; 16];
        hex::decode_to_slice(&b.id, &mut raw)
            .map_err(|_| anyhow::anyhow!("an outbox item is damaged (blob id)"))?;
        let id = vigil_core::ids::BlobId(raw);
        ids.push(id);
        let mut offset = match client.upload_status(id, b.len).await {
            Ok(o) => o,
            Err(e) => return Ok(Err(e)),
        };
        if n == 0 {
            // What an earlier run (or another sender of the same blob) left at the relay is not
            // this run's rate.
            progress.resume_at(offset);
        }
        if offset < b.len {
            let mut file = ctx.home.vault()?.blob_open(&b.record)?.ok_or_else(|| {
                anyhow::anyhow!(
                    "an attachment of the report for {} is missing from the outbox",
                    item.to
                )
            })?;
            file.seek(SeekFrom::Start(offset))?;
            while offset < b.len {
                let want = chunk.min((b.len - offset) as usize);
                file.read_exact(&mut buf[..want])?;
                if fresh_flow_per_chunk {
                    client.reconnect_next().await;
                }
                offset = match upload_chunk_waiting(client, id, b.len, offset, &buf[..want]).await {
                    Ok(o) => o,
                    Err(RelayError::ConnectionLost(_) | RelayError::Timeout(_))
                        if client.transport() == crate::relay::Transport::Tcp
                            && stalls < MAX_STALLS =>
                    {
                        stalls += 1;
                        chunk = (chunk / 4).max(MIN_UPLOAD_CHUNK);
                        fresh_flow_per_chunk = true;
                        client.reconnect_next().await;
                        match client.upload_status(id, b.len).await {
                            Ok(o) => o,
                            Err(e) => return Ok(Err(e)),
                        }
                    }
                    Err(e) => return Ok(Err(e)),
                };
                // The relay may say it holds another offset (another sender of the same blob):
                // go on from there.
                file.seek(SeekFrom::Start(offset))?;
                progress.set(done + offset);
            }
        }
        done += b.len;
        progress.set(done);
    }
    progress.finish();
    if fresh_flow_per_chunk {
        // The deposit that follows gets a fresh flow too.
        client.reconnect_next().await;
    }
    Ok(Ok(ids))
}

/// Run `deposit` of an envelope of `total` bytes, showing its progress (see
/// [`crate::progress`]) from the connection's byte count, which includes packet overhead.
async fn with_progress(
    ctx: &Ctx,
    client: &RelayClient,
    to: &str,
    total: u64,
    deposit: impl std::future::Future<Output = Result<Deposited, RelayError>>,
) -> Result<Deposited, RelayError> {
    let mut progress = Progress::new(&ctx.out, Activity::Upload, to, total);
    let base = client.sent_bytes();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    tokio::pin!(deposit);
    loop {
        tokio::select! {
            r = &mut deposit => {
                if r.is_ok() {
                    progress.set(total);
                    progress.finish();
                }
                return r;
            }
            _ = tick.tick() => progress.set(client.sent_bytes().saturating_sub(base)),
        }
    }
}

/// Record the attempt counts of items still queued (once per flush, not per retry: each save
/// rewrites the whole sealed envelope).
fn save_attempts<'a>(ctx: &Ctx, items: impl Iterator<Item = &'a OutboxItem>) -> Result<()> {
    for item in items {
        item.save_if_queued(&ctx.home)?;
    }
    Ok(())
}

fn finish(
    ctx: &Ctx,
    mut summary: FlushSummary,
    total: usize,
    first_error: Option<anyhow::Error>,
) -> Result<Flushed> {
    summary.pending = total.saturating_sub(summary.sent.len());
    ctx.out.emit(
        json!({"type": "outbox_flushed", "sent": summary.sent.len(), "pending": summary.pending}),
    );
    Ok(Flushed {
        summary,
        error: first_error,
    })
}

/// The shortest wait before retrying after `err`: the relay's own load signals get longer pauses
/// than a lost packet does.
fn min_delay_for(err: &RelayError) -> std::time::Duration {
    use vigil_core::wire::ErrorCode;
    match err {
        RelayError::Refused {
            code: ErrorCode::RateLimited,
            ..
        } => std::time::Duration::from_secs(30),
        RelayError::Refused {
            code: ErrorCode::StorageFull,
            ..
        } => std::time::Duration::from_secs(60),
        _ => std::time::Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::wire::ErrorCode;

    fn refused(code: ErrorCode) -> RelayError {
        RelayError::Refused {
            code,
            message: String::new(),
            retryable: true,
        }
    }

    #[test]
    fn pauses_between_deposits_spread_over_their_whole_range() {
        let mut rng = StdRng::seed_from_u64(7);
        let pauses: Vec<_> = (0..2000).map(|_| spacing(&mut rng)).collect();
        assert!(pauses
            .iter()
            .all(|p| (SPACING_MIN..=SPACING_MAX).contains(p)));
        let (lo, hi) = (
            pauses.iter().min().expect("some"),
            pauses.iter().max().expect("some"),
        );
        assert!(
            lo.as_millis() < 1100 && hi.as_millis() > 4900,
            "{lo:?} {hi:?}"
        );
        assert!(SPACING_BUDGET >= SPACING_MAX);
    }

    #[test]
    fn relay_load_signals_wait_longer_than_lost_packets() {
        assert_eq!(
            min_delay_for(&refused(ErrorCode::RateLimited)).as_secs(),
            30
        );
        assert_eq!(
            min_delay_for(&refused(ErrorCode::StorageFull)).as_secs(),
            60
        );
        assert_eq!(
            min_delay_for(&refused(ErrorCode::Busy)),
            std::time::Duration::ZERO
        );
    }
}
