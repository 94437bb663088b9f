//! `vigil report status|reply`: the reporter's side of a report's thread (issue 15).
//!
//! Every report sent with a reply capability has, per NGO, a reply mailbox the reporter's client
//! made for it alone (`crate::state::ReporterThread`). This module registers those mailboxes,
//! fetches them (each on a connection of its own, proving the mailbox key as any fetch does),
//! believes only what is signed by the identity key of the NGO's card, for this report and this
//! reply key ([`vigil_core::thread::Message::check`]), acknowledges everything it read, and
//! sends the reporter's answers into the NGO's mailbox through the outbox, like reports.
//!
//! One connection per reply mailbox and relay, from a fresh endpoint, with the random pause of
//! the outbox between them: two of one reporter's reply mailboxes are never fetched on one
//! connection, so the relay cannot tie them together by the connection (docs/threat-model.md,
//! "Replies and receipts").

use super::Ctx;
use crate::cli::{ReportReplyArgs, ReportStatusArgs, RetryArgs};
use crate::display;
use crate::home::now_unix;
use crate::relay::{RelayClient, RelayError};
use crate::state::{
    add_entry, contacts, message_text, outbox_queue_with, reporter_key, sent_report, sent_reports,
    Author, Entry, OutboxItem, ReporterThread, SentReport,
};
use anyhow::{bail, Result};
use serde_json::json;
use vigil_core::keys::PublicSigningKey;
use vigil_core::thread::{self, Draft, Expected, Kind};
use vigil_core::wire::ErrorCode;

/// Register the reply mailboxes not yet registered at their relays, one connection each, for
/// threads still open. Best effort: what fails stays pending, said in one line, and is tried
/// again by the next `report send`, `outbox flush` or `report status`. Relays in `skip` (found
/// unreachable in this run) are not tried, and a relay that fails is added to it, so that a
/// relay that is down costs one connection timeout per command, not one per mailbox.
pub async fn register_pending(ctx: &Ctx, retry: &RetryArgs, skip: &mut Vec<String>) -> Result<()> {
    let link = retry.link();
    let now = now_unix();
    let mut first = true;
    for mut r in sent_reports(&ctx.home)? {
        let mut changed = false;
        for t in &mut r.threads {
            if t.expires_at() < now {
                continue;
            }
            let key = t.mailbox_key()?;
            // The relay forgets the mailbox when the thread ends (docs/protocol.md, "Report
            // threads", Expiry); polls renew it while the thread goes on.
            let days = crate::state::lifetime_days(t.expires_at(), now);
            for relay in &mut t.relays {
                if relay.registered || skip.iter().any(|s| s.eq_ignore_ascii_case(&relay.addr)) {
                    continue;
                }
                if !first && !retry.no_delay {
                    // As between deposits: a registration right before a deposit, from one
                    // address, ties the two together in a quiet relay's log.
                    pause().await;
                }
                first = false;
                let outcome = async {
                    let client =
                        RelayClient::connect_pinned_with(&relay.addr, &relay.pinned(), &link)
                            .await?;
                    let r = client.register_for(key.as_dalek(), days).await;
                    client.close().await;
                    r
                }
                .await;
                match outcome {
                    Ok(granted) => {
                        relay.registered_for(granted, now);
                        changed = true;
                        ctx.out.emit(json!({"type": "reply_mailbox", "id": r.id, "ngo": t.ngo, "relay": relay.addr, "registered": true, "kept_until": relay.kept_until}));
                    }
                    Err(e) => {
                        skip.push(relay.addr.clone());
                        ctx.out.say(format!(
                            "{}: {}",
                            crate::t!("warning-prefix"),
                            crate::t!(
                                "status-register-pending",
                                ngo = display::line(&t.ngo),
                                relay = relay.addr.as_str(),
                                error = crate::failure::localized_relay_error(&e)
                            )
                        ));
                        ctx.out.emit(json!({"type": "reply_mailbox", "id": r.id, "ngo": t.ngo, "relay": relay.addr, "registered": false, "error": e.to_string()}));
                    }
                }
            }
        }
        if changed {
            r.save(&ctx.home)?;
        }
    }
    Ok(())
}

/// A random pause as between queued deposits.
async fn pause() {
    use rand::Rng;
    let ms = rand::rngs::OsRng.gen_range(
        super::outbox::SPACING_MIN.as_millis() as u64
            ..=super::outbox::SPACING_MAX.as_millis() as u64,
    );
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

/// `vigil report status`.
pub async fn status(ctx: &Ctx, a: ReportStatusArgs) -> Result<()> {
    if !a.offline {
        let retry = RetryArgs::default();
        let mut unreachable = Vec::new();
        register_pending(ctx, &retry, &mut unreachable).await?;
        poll_all(ctx, &retry, &unreachable).await?;
    }
    if let Some(dir) = &a.save_to {
        save_attachments(ctx, dir)?;
    }
    let reports = sent_reports(&ctx.home)?;
    if reports.is_empty() {
        ctx.out.say(crate::t!("status-none"));
    }
    let now = now_unix();
    for r in &reports {
        ctx.out.say(crate::t!(
            "status-report",
            id = r.id.as_str(),
            title = display::line(&r.title),
            signed = super::inbox::utc(r.created)
        ));
        for t in &r.threads {
            let state = match t.state() {
                "delivered" => crate::t!(
                    "status-delivered",
                    ngo = display::line(&t.ngo),
                    at = super::inbox::utc(t.delivered_at.unwrap_or_default())
                ),
                "stored" => crate::t!("status-stored", ngo = display::line(&t.ngo)),
                _ => crate::t!("status-queued", ngo = display::line(&t.ngo)),
            };
            ctx.out.say(format!("  {state}"));
            for m in &t.messages {
                let who = match m.from {
                    Author::Ngo => display::line(&t.ngo),
                    Author::Reporter => crate::t!("status-you"),
                };
                ctx.out.say(format!(
                    "    {} {}:\n      {}",
                    super::inbox::utc(m.at),
                    who,
                    display::block(&m.text, "      ")
                ));
                for x in &m.attachments {
                    ctx.out
                        .say(format!("      {}", super::inbox::reply::attachment_line(x)));
                }
            }
            let expired = t.expires_at() < now;
            if expired {
                ctx.out.say(format!(
                    "    {}",
                    crate::t!("status-expired", at = super::inbox::utc(t.expires_at()))
                ));
            }
            let replies: Vec<_> = t
                .messages
                .iter()
                .filter(|m| m.from == Author::Ngo)
                .map(|m| json!({"text": m.text, "at": m.at, "attachments": super::inbox::reply::attachments_json(&m.attachments)}))
                .collect();
            let answers: Vec<_> = t
                .messages
                .iter()
                .filter(|m| m.from == Author::Reporter)
                .map(|m| json!({"text": m.text, "at": m.at, "attachments": super::inbox::reply::attachments_json(&m.attachments)}))
                .collect();
            ctx.out.emit(json!({
                "type": "report_status", "id": r.id, "ngo": t.ngo, "state": t.state(),
                "title": r.title, "created": r.created, "stored_at": t.stored_at,
                "delivered_at": t.delivered_at, "replies": replies, "answers": answers,
                "expires_at": t.expires_at(), "expired": expired, "with_replies": true,
            }));
        }
        // Sent with --no-replies: what the outbox knows, and that nothing more will come.
        for c in &r.without_replies {
            let state = match c.state() {
                "stored" => crate::t!("status-stored", ngo = display::line(&c.ngo)),
                _ => crate::t!("status-queued", ngo = display::line(&c.ngo)),
            };
            ctx.out
                .say(format!("  {state} {}", crate::t!("status-without-replies")));
            ctx.out.emit(json!({
                "type": "report_status", "id": r.id, "ngo": c.ngo, "state": c.state(),
                "title": r.title, "created": r.created, "stored_at": c.stored_at,
                "delivered_at": null, "replies": [], "answers": [], "expires_at": null,
                "expired": false, "with_replies": false,
            }));
        }
    }
    Ok(())
}

/// Fetch every open thread's reply mailbox at each of its relays.
async fn poll_all(ctx: &Ctx, retry: &RetryArgs, skip: &[String]) -> Result<()> {
    let link = retry.link();
    let now = now_unix();
    let mut first = true;
    for mut r in sent_reports(&ctx.home)? {
        let mut changed = false;
        for t in &mut r.threads {
            if t.expires_at() < now {
                continue;
            }
            let relays: Vec<_> = t
                .relays
                .iter()
                .filter(|x| x.registered && !skip.iter().any(|s| s.eq_ignore_ascii_case(&x.addr)))
                .cloned()
                .collect();
            for relay in relays {
                if !first && !retry.no_delay {
                    pause().await;
                }
                first = false;
                match poll_one(ctx, &r.id, t, &relay, &link).await {
                    Ok(c) => changed |= c,
                    Err(e) => {
                        ctx.out.say(format!(
                            "{}: {}",
                            crate::t!("warning-prefix"),
                            crate::t!(
                                "status-relay-unreachable",
                                relay = relay.addr.as_str(),
                                error = crate::failure::localized_relay_error(&e)
                            )
                        ));
                        ctx.out.emit(json!({"type": "relay_unreachable", "relay": relay.addr, "error": e.to_string()}));
                    }
                }
            }
        }
        if changed {
            r.save(&ctx.home)?;
        }
    }
    Ok(())
}

/// Fetch one thread's reply mailbox at one relay: verify each item, record what is genuine,
/// warn about what is not, acknowledge all of it; then, if the thread now outlives what the
/// relay keeps of the mailbox, register it again for longer, on the same connection (which
/// proved the mailbox key already, so the relay learns nothing new). Returns whether the thread
/// changed.
async fn poll_one(
    ctx: &Ctx,
    report: &str,
    t: &mut ReporterThread,
    relay: &crate::state::ThreadRelay,
    link: &crate::relay::LinkOptions,
) -> Result<bool, RelayError> {
    let key = t
        .mailbox_key()
        .map_err(|e| RelayError::Protocol(e.to_string()))?;
    let identity = t
        .reply_identity()
        .map_err(|e| RelayError::Protocol(e.to_string()))?;
    let ngo_key: PublicSigningKey = t
        .ngo_key
        .parse()
        .map_err(|_| RelayError::Protocol("a report record is damaged (NGO key)".into()))?;
    let reply_recipient = identity.to_public();
    let client = RelayClient::connect_pinned_with(&relay.addr, &relay.pinned(), link).await?;
    let mut changed = false;
    loop {
        let items = match fetch_with_blobs(&client, &key).await {
            Ok(items) => items,
            // Expired at the relay, or the relay lost it: nothing to read there.
            Err(RelayError::Refused {
                code: ErrorCode::UnknownMailbox,
                ..
            }) => break,
            Err(e) => {
                client.close().await;
                return Err(e);
            }
        };
        if items.is_empty() {
            break;
        }
        let n = items.len();
        for item in &items {
            let verdict = thread::open(&item.envelope, std::slice::from_ref(&identity))
                .map_err(|e| e.to_string())
                .and_then(|m| {
                    m.check(&Expected {
                        signer: &ngo_key,
                        signer_is: "the NGO's card key",
                        report: &t.report_id,
                        reply_recipient: &reply_recipient,
                        kinds: &[Kind::Receipt, Kind::Reply],
                    })
                    .map(|()| m)
                    .map_err(|e| e.to_string())
                });
            match verdict {
                Ok(m) if m.kind == Kind::Receipt => {
                    if t.delivered_at.is_none() {
                        t.delivered_at = Some(m.created);
                        t.stored_at.get_or_insert(m.created);
                        changed = true;
                    }
                }
                Ok(m) => {
                    if !m.attachments.is_empty() {
                        // Into the vault, checked against the signed hashes, before the
                        // acknowledgement lets the relay delete them.
                        let key = m.blob_key.as_ref();
                        super::inbox::download_blobs(
                            ctx,
                            &client,
                            &m.attachments,
                            key,
                            &item.blobs,
                        )
                        .await
                        .map_err(|e| match e.downcast::<RelayError>() {
                            Ok(r) => r,
                            Err(e) => RelayError::Protocol(e.to_string()),
                        })?;
                    }
                    let entry = Entry::with_attachments(
                        Author::Ngo,
                        m.text.to_string(),
                        m.created,
                        &m.attachments,
                        m.blob_key.as_ref(),
                    );
                    if add_entry(&mut t.messages, entry) {
                        // A reply shows the report arrived, receipt or not.
                        t.stored_at.get_or_insert(m.created);
                        t.last_activity = t.last_activity.max(now_unix());
                        changed = true;
                        ctx.out.say(crate::t!(
                            "status-new-reply",
                            ngo = display::line(&t.ngo),
                            id = report
                        ));
                    }
                }
                Err(why) => {
                    ctx.out.say(format!(
                        "{}: {}",
                        crate::t!("warning-prefix"),
                        crate::t!(
                            "status-forged",
                            ngo = display::line(&t.ngo),
                            id = report,
                            why = display::line(&why)
                        )
                    ));
                    ctx.out.emit(json!({"type": "forged", "id": report, "ngo": t.ngo, "relay": relay.addr, "error": why}));
                }
            }
        }
        // Read and judged: the relay may delete it all (forgeries included, or they would
        // fill the mailbox and come back at every status).
        let ids: Vec<_> = items.iter().map(|i| i.id).collect();
        if let Err(e) = client.ack(key.as_dalek(), &ids).await {
            client.close().await;
            return Err(e);
        }
        if n < 64 {
            break;
        }
    }
    let until = t.expires_at();
    let renew = t
        .relays
        .iter()
        .position(|r| r.addr == relay.addr && r.needs_renewal(until));
    if let Some(i) = renew {
        let now = now_unix();
        match client
            .register_for(key.as_dalek(), crate::state::lifetime_days(until, now))
            .await
        {
            Ok(granted) => {
                t.relays[i].registered_for(granted, now);
                changed = true;
            }
            Err(e) => {
                client.close().await;
                return Err(e);
            }
        }
    }
    client.close().await;
    Ok(changed)
}

/// One round of a reply mailbox's items with the blobs each names; from a relay that predates
/// attachments (which refuses the flag as too large), without.
async fn fetch_with_blobs(
    client: &RelayClient,
    key: &vigil_core::keys::SigningSecret,
) -> Result<Vec<crate::relay::FullItem>, RelayError> {
    match client.fetch_full(key.as_dalek(), 64).await {
        Err(RelayError::Refused {
            code: ErrorCode::TooLarge,
            ..
        }) => Ok(client
            .fetch(key.as_dalek(), 64)
            .await?
            .into_iter()
            .map(|i| crate::relay::FullItem {
                id: i.id,
                envelope: i.envelope,
                note: None,
                blobs: Vec::new(),
            })
            .collect()),
        other => other,
    }
}

/// Write the attachments of the NGO's replies that are in the vault and not yet written into
/// `dir`, decrypted and checked against their signed hashes (`inbox export` does the same for
/// an NGO), recording where each went. One that cannot be written is said, in one line, and
/// tried again at the next `--save-to`.
fn save_attachments(ctx: &Ctx, dir: &std::path::Path) -> Result<()> {
    let mut made_dir = false;
    for mut r in sent_reports(&ctx.home)? {
        let mut changed = false;
        for t in &mut r.threads {
            for m in &mut t.messages {
                if m.from != Author::Ngo || m.attachments.iter().all(|x| x.saved.is_some()) {
                    continue;
                }
                let Some(key) = m.blob_key()? else {
                    continue;
                };
                if !made_dir {
                    vigil_fs::create_private_dir(dir)?;
                    made_dir = true;
                }
                for x in m.attachments.iter_mut().filter(|x| x.saved.is_none()) {
                    let written = x
                        .entry()
                        .and_then(|a| super::inbox::export::export_one(ctx, dir, &a, &key));
                    match written {
                        Ok(path) => {
                            x.saved = Some(path.display().to_string());
                            changed = true;
                        }
                        Err(e) => ctx.out.say(format!(
                            "{}: {}",
                            crate::t!("warning-prefix"),
                            display::line(&crate::failure::localized_message(&e))
                        )),
                    }
                }
            }
        }
        if changed {
            r.save(&ctx.home)?;
        }
    }
    Ok(())
}

/// `vigil report reply`: an answer in a report's thread, sealed to the NGO's staff keys from its
/// current card, signed by the reporter's key, queued in the outbox and sent like a report.
pub async fn reply(ctx: &Ctx, a: ReportReplyArgs) -> Result<()> {
    let text = message_text(a.message.as_deref(), a.file.as_deref())?;
    let mut report: SentReport = sent_report(&ctx.home, &a.id)?;
    if report.threads.is_empty() {
        bail!(crate::t_err!(
            "status-sent-without-replies",
            id = report.id.as_str()
        ));
    }
    let index = match &a.to {
        Some(name) => report
            .threads
            .iter()
            .position(|t| t.ngo.eq_ignore_ascii_case(name.trim())),
        None if report.threads.len() == 1 => Some(0),
        None => bail!(crate::t_err!("status-which-ngo", id = report.id.as_str())),
    };
    let Some(index) = index else {
        bail!(crate::t_err!(
            "status-not-sent-to",
            id = report.id.as_str(),
            ngo = a.to.as_deref().unwrap_or_default()
        ));
    };
    let now = now_unix();
    let t = &report.threads[index];
    // The NGO's current card (the newest from its key): its staff keys and relays today.
    let card = contacts(&ctx.home)?
        .into_iter()
        .map(|c| c.card)
        .find(|c| c.identity_key.to_string() == t.ngo_key)
        .ok_or_else(|| crate::t_err!("status-no-contact", ngo = t.ngo.as_str()))?;
    card.check_not_expired(now)?;
    let sender = reporter_key(&ctx.home)?;
    let recipient = t.reply_identity()?.to_public();
    let report_id = t.report_id;
    // Attachments as a report's: scrubbed, hashed, encrypted once into the outbox to a key made
    // for this answer, uploaded before the answer that names them.
    let blob_key = vigil_core::age::x25519::Identity::generate(&mut rand::rngs::OsRng);
    let prepared = super::report::prepare_attachments(
        ctx,
        &a.attach,
        a.keep_metadata,
        &blob_key,
        thread::MAX_THREAD_ATTACHMENTS,
    )?;
    let (entries, blobs) = super::report::split_prepared(&prepared);
    let queued = (|| -> Result<(Vec<OutboxItem>, String)> {
        let sealed = thread::seal(
            &Draft {
                kind: Kind::Answer,
                created: now,
                report: &report_id,
                reply_recipient: &recipient,
                text: &text,
                attachments: (!entries.is_empty()).then_some(vigil_core::envelope::Attachments {
                    list: &entries,
                    blob_key: &blob_key,
                }),
            },
            &sender,
            &card.recipients,
            &mut rand::rngs::OsRng,
        )?;
        let items: Vec<OutboxItem> = card
            .relays()
            .iter()
            .map(|relay| {
                let mut item = OutboxItem::for_relay(&card, relay, &sealed, now);
                item.blobs = blobs.clone();
                item
            })
            .collect();
        let t = &mut report.threads[index];
        add_entry(
            &mut t.messages,
            Entry::with_attachments(Author::Reporter, text, now, &entries, None),
        );
        t.last_activity = now;
        let ngo = t.ngo.clone();
        let record = report.encoded()?;
        outbox_queue_with(&ctx.home, &items, Some(&record))?;
        Ok((items, ngo))
    })();
    let (items, ngo) = match queued {
        Ok(q) => q,
        Err(e) => {
            let mut v = ctx.home.vault()?;
            for b in &blobs {
                v.remove(&b.record)?;
            }
            return Err(e);
        }
    };
    ctx.out.say(crate::t!(
        "status-answer-queued",
        ngo = display::line(&ngo),
        id = report.id.as_str()
    ));
    ctx.out
        .emit(json!({"type": "answer_queued", "id": report.id, "ngo": ngo}));
    super::outbox::flush(ctx, items, &a.retry).await?;
    Ok(())
}
