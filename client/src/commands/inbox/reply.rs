//! `vigil inbox reply`, and the NGO's side of a report's thread (issue 15): the delivery
//! receipt sent after a fetch, replies, and the reporter's answers filed into the thread.
//!
//! A report that carries a reply capability (envelope version 5) gets a thread record when it
//! is stored ([`after_fetch`]) with a receipt sealed at once: signed by this NGO's identity key
//! (domain `receipt`), bound to the report id and the reply key, encrypted to the reply key,
//! padded to the 16 KiB of every envelope. Receipts and replies are deposited into the reply
//! mailbox at a relay the capability names that this NGO's card also lists (pinned as the card
//! pins it), each on a connection of its own. A deposit that fails stays in the thread record
//! and is tried again at the next fetch (or reply), under the same deposit id; it never fails
//! the fetch.
//!
//! A reply with attachments (`--attach`) goes another way: its blobs (scrubbed, hashed and
//! encrypted to a key made for this reply, as a report's are) and its message are queued in the
//! outbox as one deposit into the reply mailbox at the first relay the capability and this
//! NGO's card share, and sent at once; the outbox uploads the blobs from where the relay has
//! them and keeps the deposit, encrypted, for `vigil outbox flush` if it fails.

use super::Ctx;
use crate::cli::InboxReplyArgs;
use crate::display;
use crate::home::now_unix;
use crate::relay::{RelayClient, RelayError};
use crate::state::{
    add_entry, inbox_id_of, inbox_read, message_text, ngo_thread, ngo_thread_ids, ngo_thread_save,
    outbox_queue_with, Author, Entry, Ngo, NgoThread, OutboxItem, Outgoing,
};
use anyhow::Result;
use serde_json::json;
use vigil_core::keys::PublicSigningKey;
use vigil_core::thread::{self, Draft, Expected, Kind, Message};

/// After a fetch stored `stored` (local ids): give every new report that carries a reply
/// capability its thread and receipt, then deposit whatever any thread still owes. Never
/// fails the fetch for a relay's sake; only this machine's own errors (the vault) come back.
pub async fn after_fetch(ctx: &Ctx, ngo: &Ngo, stored: &[String]) -> Result<()> {
    for id in stored {
        if ngo_thread(&ctx.home, id)?.is_some() {
            continue;
        }
        let (_, bytes) = inbox_read(&ctx.home, id)?;
        let Ok(opened) = super::view::open_stored(ctx, ngo, &bytes) else {
            continue;
        };
        let Some(cap) = &opened.reply else {
            continue;
        };
        let report_id = opened.report_id();
        let receipt = thread::seal(
            &Draft {
                kind: Kind::Receipt,
                created: now_unix(),
                report: &report_id,
                reply_recipient: &cap.recipient,
                text: "",
                attachments: None,
            },
            &ngo.identity,
            std::slice::from_ref(&cap.recipient),
            &mut rand::rngs::OsRng,
        )?;
        let t = NgoThread {
            report_id,
            reporter: opened.sender.to_string(),
            mailbox: cap.mailbox,
            recipient: cap.recipient.to_string(),
            relays: cap.relays.clone(),
            receipt_sent_at: None,
            messages: Vec::new(),
            outgoing: vec![Outgoing::new("receipt", &receipt)],
        };
        ngo_thread_save(&ctx.home, id, &t)?;
    }
    send_pending(ctx, ngo, None).await?;
    Ok(())
}

/// Deposit what threads still owe (all of them, or only `only`'s). Returns how many deposits
/// are still pending afterwards, and the last relay error.
async fn send_pending(
    ctx: &Ctx,
    ngo: &Ngo,
    only: Option<&str>,
) -> Result<(usize, Option<RelayError>)> {
    let ids = match only {
        Some(id) => vec![id.to_string()],
        None => ngo_thread_ids(&ctx.home)?,
    };
    let mine = ngo.config.relays();
    let mut left = 0;
    let mut last_error = None;
    for id in ids {
        let Some(mut t) = ngo_thread(&ctx.home, &id)? else {
            continue;
        };
        if t.outgoing.is_empty() {
            continue;
        }
        // The capability's relays that this NGO's card lists: those it can pin.
        let relays: Vec<_> = mine
            .iter()
            .filter(|r| t.relays.iter().any(|a| a.eq_ignore_ascii_case(&r.addr)))
            .collect();
        let mut still = Vec::new();
        for out in std::mem::take(&mut t.outgoing) {
            let sealed = out.envelope()?;
            let mut done = false;
            for relay in &relays {
                let outcome = async {
                    let client =
                        RelayClient::connect_pinned(&relay.addr, &relay.accepted_fingerprints())
                            .await?;
                    let r = client
                        .deposit_status(&t.mailbox, &out.deposit_id, &sealed)
                        .await;
                    client.close().await;
                    r
                }
                .await;
                match outcome {
                    Ok(_) => {
                        done = true;
                        break;
                    }
                    Err(e) => last_error = Some(e),
                }
            }
            if done {
                if out.kind == "receipt" {
                    t.receipt_sent_at = Some(now_unix());
                }
                ctx.out
                    .emit(json!({"type": "thread_sent", "id": id, "kind": out.kind}));
            } else {
                still.push(out);
            }
        }
        if !still.is_empty() {
            left += still.len();
            let why = last_error
                .as_ref()
                .map(crate::failure::localized_relay_error)
                .unwrap_or_else(|| crate::t!("inbox-reply-no-relay"));
            ctx.out.say(format!(
                "{}: {}",
                crate::t!("warning-prefix"),
                crate::t!(
                    "inbox-thread-pending",
                    id = id.as_str(),
                    count = (still.len()),
                    error = why
                )
            ));
            ctx.out.emit(json!({"type": "thread_pending", "id": id, "pending": still.len(), "error": last_error.as_ref().map(ToString::to_string)}));
        }
        t.outgoing = still;
        ngo_thread_save(&ctx.home, &id, &t)?;
    }
    Ok((left, last_error))
}

/// A reporter's answer found in the NGO's mailbox: file it into its report's thread if it is
/// signed by the key that signed the report, for this report and its reply key. `Err(why)`
/// when it is not (the caller keeps it among the rejected).
pub fn file_answer(ctx: &Ctx, m: &Message) -> Result<std::result::Result<String, String>> {
    let Some(id) = inbox_id_of(&ctx.home, &m.report)? else {
        return Ok(Err("an answer to a report this inbox does not hold".into()));
    };
    let Some(mut t) = ngo_thread(&ctx.home, &id)? else {
        return Ok(Err("an answer to a report that carries no reply key".into()));
    };
    let reporter: PublicSigningKey = t.reporter.parse()?;
    let recipient = t.recipient()?;
    if let Err(e) = m.check(&Expected {
        signer: &reporter,
        signer_is: "the report's signer",
        report: &m.report,
        reply_recipient: &recipient,
        kinds: &[Kind::Answer],
    }) {
        return Ok(Err(e.to_string()));
    }
    let entry = Entry::with_attachments(
        Author::Reporter,
        m.text.to_string(),
        m.created,
        &m.attachments,
        m.blob_key.as_ref(),
    );
    if add_entry(&mut t.messages, entry) {
        ngo_thread_save(&ctx.home, &id, &t)?;
        ctx.out.say(crate::t!("inbox-answer", id = id.as_str()));
        ctx.out
            .emit(json!({"type": "answer", "id": id, "created": m.created}));
    }
    Ok(Ok(id))
}

/// `vigil inbox reply`.
pub async fn reply(ctx: &Ctx, a: InboxReplyArgs) -> Result<()> {
    let text = message_text(a.message.as_deref(), a.file.as_deref())?;
    let ngo = Ngo::load(&ctx.home)?;
    let (id, _) = inbox_read(&ctx.home, &a.id)?;
    let Some(mut t) = ngo_thread(&ctx.home, &id)? else {
        anyhow::bail!(crate::t_err!("inbox-no-reply-key", id = id.as_str()));
    };
    let now = now_unix();
    let recipient = t.recipient()?;
    if !a.attach.is_empty() {
        return reply_with_attachments(ctx, &a, &ngo, &id, t, text).await;
    }
    let sealed = thread::seal(
        &Draft {
            kind: Kind::Reply,
            created: now,
            report: &t.report_id,
            reply_recipient: &recipient,
            text: &text,
            attachments: None,
        },
        &ngo.identity,
        std::slice::from_ref(&recipient),
        &mut rand::rngs::OsRng,
    )?;
    add_entry(&mut t.messages, Entry::new(Author::Ngo, text, now));
    t.outgoing.push(Outgoing::new("reply", &sealed));
    ngo_thread_save(&ctx.home, &id, &t)?;
    let (left, error) = send_pending(ctx, &ngo, Some(&id)).await?;
    match (left, error) {
        (0, _) => {
            ctx.out.say(crate::t!("inbox-reply-sent", id = id.as_str()));
            ctx.out.emit(json!({"type": "reply_sent", "id": id}));
            Ok(())
        }
        (_, Some(e)) => Err(anyhow::Error::from(e).context(crate::t_err!("inbox-reply-kept"))),
        (_, None) => Err(crate::t_err!("inbox-reply-kept").into()),
    }
}

/// `vigil inbox reply --attach`: see the module documentation.
async fn reply_with_attachments(
    ctx: &Ctx,
    a: &InboxReplyArgs,
    ngo: &Ngo,
    id: &str,
    mut t: NgoThread,
    text: String,
) -> Result<()> {
    let now = now_unix();
    let recipient = t.recipient()?;
    // The capability's relays that this NGO's card lists (those it can pin): the first.
    let relay = ngo
        .config
        .relays()
        .into_iter()
        .find(|r| t.relays.iter().any(|x| x.eq_ignore_ascii_case(&r.addr)))
        .ok_or_else(|| crate::t_err!("inbox-reply-no-relay"))?;
    let blob_key = vigil_core::age::x25519::Identity::generate(&mut rand::rngs::OsRng);
    let prepared = crate::commands::report::prepare_attachments(
        ctx,
        &a.attach,
        a.keep_metadata,
        &blob_key,
        thread::MAX_THREAD_ATTACHMENTS,
    )?;
    let (entries, blobs) = crate::commands::report::split_prepared(&prepared);
    let queued = (|| -> Result<OutboxItem> {
        let sealed = thread::seal(
            &Draft {
                kind: Kind::Reply,
                created: now,
                report: &t.report_id,
                reply_recipient: &recipient,
                text: &text,
                attachments: Some(vigil_core::envelope::Attachments {
                    list: &entries,
                    blob_key: &blob_key,
                }),
            },
            &ngo.identity,
            std::slice::from_ref(&recipient),
            &mut rand::rngs::OsRng,
        )?;
        let to = crate::t!("inbox-reply-outbox-to", id = id);
        let mut item = OutboxItem::for_mailbox(&to, &relay, t.mailbox, &sealed, now);
        item.blobs = blobs.clone();
        add_entry(
            &mut t.messages,
            Entry::with_attachments(Author::Ngo, text, now, &entries, Some(&blob_key)),
        );
        outbox_queue_with(&ctx.home, std::slice::from_ref(&item), None)?;
        ngo_thread_save(&ctx.home, id, &t)?;
        Ok(item)
    })();
    let item = match queued {
        Ok(item) => item,
        Err(e) => {
            // Nothing was queued: the blobs made for it go.
            let mut v = ctx.home.vault()?;
            for b in &blobs {
                v.remove(&b.record)?;
            }
            return Err(e);
        }
    };
    crate::commands::outbox::flush(ctx, vec![item], &a.retry).await?;
    ctx.out.say(crate::t!("inbox-reply-sent", id = id));
    ctx.out.emit(json!({
        "type": "reply_sent", "id": id,
        "attachments": entries.iter().map(|e| json!({"name": e.name, "size": e.size})).collect::<Vec<_>>(),
    }));
    Ok(())
}

/// The thread of a stored report, as `inbox show --json` gives it (`null` without one).
pub(super) fn thread_json(t: Option<&NgoThread>) -> serde_json::Value {
    let Some(t) = t else {
        return serde_json::Value::Null;
    };
    let messages: Vec<_> = t
        .messages
        .iter()
        .map(|m| json!({"from": m.from, "text": m.text, "at": m.at, "attachments": attachments_json(&m.attachments)}))
        .collect();
    json!({
        "receipt_sent_at": t.receipt_sent_at, "messages": messages,
        "pending": t.outgoing.len(),
    })
}

/// The thread of a stored report, as `inbox show` prints it after the report (every line
/// from a message indented and escaped by [`display`]).
pub(super) fn render_thread(t: &NgoThread) -> String {
    let mut s = format!("\n{}\n", crate::t!("show-thread"));
    match t.receipt_sent_at {
        Some(at) => s.push_str(&format!(
            "  {}\n",
            crate::t!("show-receipt-sent", at = super::utc(at))
        )),
        None => s.push_str(&format!("  {}\n", crate::t!("show-receipt-pending"))),
    }
    for m in &t.messages {
        let who = match m.from {
            Author::Ngo => crate::t!("show-thread-ngo"),
            Author::Reporter => crate::t!("show-thread-reporter"),
        };
        s.push_str(&format!(
            "  {} {}:\n    {}\n",
            super::utc(m.at),
            who,
            display::block(&m.text, "    ")
        ));
        for x in &m.attachments {
            s.push_str(&format!("    {}\n", attachment_line(x)));
        }
    }
    s
}

/// One attachment of a thread message, for a person: name and size, and where it was saved.
pub(crate) fn attachment_line(x: &crate::state::EntryAttachment) -> String {
    let name = display::line(&x.name);
    let size = display::bytes(x.size);
    match &x.saved {
        Some(p) => crate::t!(
            "thread-attachment-saved",
            name = name.as_str(),
            size = size.as_str(),
            path = display::line(p)
        ),
        None => crate::t!(
            "thread-attachment",
            name = name.as_str(),
            size = size.as_str()
        ),
    }
}

/// A thread message's attachments as `--json` gives them: file name, size, media type, and the
/// path where this device saved it (`null` when it did not).
pub(crate) fn attachments_json(list: &[crate::state::EntryAttachment]) -> serde_json::Value {
    list.iter()
        .map(|x| {
            json!({
                "name": x.name, "size": x.size, "media_type": x.media_type,
                "sha256": x.sha256, "saved": x.saved,
            })
        })
        .collect()
}
