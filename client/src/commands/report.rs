//! `vigil report send|check`.

use super::Ctx;
use crate::cli::{ReportCheckArgs, ReportSendArgs};
use crate::home::now_unix;
use crate::state::{
    outbox_queue_with, plan_send, OutboxBlob, OutboxItem, ReporterThread, SentReport,
};
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::Path;
use vigil_core::age;
use vigil_core::card::RecipientCard;
use vigil_core::envelope;
use vigil_core::ids::MailboxId;
use vigil_core::keys::SigningSecret;
use vigil_core::report::{Report, ReportKind, Urgency, MAX_REPORT_JSON_LEN};
use vigil_fs::read_limited;
use zeroize::Zeroizing;

fn read_report(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let bytes = if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .lock()
            .take(MAX_REPORT_JSON_LEN as u64 + 1)
            .read_to_end(&mut buf)?;
        buf
    } else {
        read_limited(path, MAX_REPORT_JSON_LEN as u64)?
    };
    Ok(Zeroizing::new(bytes))
}

/// Validate a report file.
pub fn check(ctx: &Ctx, a: ReportCheckArgs) -> Result<()> {
    let bytes = read_report(&a.file)?;
    let r = Report::from_json(&bytes)?;
    r.check_for_sending()?;
    ctx.out.say(crate::t!(
        "report-valid",
        kind = kind_word(r.kind),
        urgency = urgency_word(r.urgency),
        title = crate::display::line(&r.title)
    ));
    ctx.out.emit(
        json!({"type": "report_valid", "kind": r.kind.as_str(), "urgency": r.urgency.as_str()}),
    );
    Ok(())
}

/// Seal a report for each named NGO, queue the copies durably, then deliver the outbox.
pub async fn send(ctx: &Ctx, a: ReportSendArgs) -> Result<()> {
    // The one read of the home on the way: contacts, the reporter's key, the queued copies.
    let plan = plan_send(&ctx.home, &a.to)?;
    let mut cards: Vec<RecipientCard> = Vec::new();
    let mut unverified: Vec<String> = Vec::new();
    for contact in plan.contacts {
        // The same NGO named twice (in any case) gets one copy.
        if !cards
            .iter()
            .any(|c| c.identity_key == contact.card.identity_key)
        {
            if contact.verified_at.is_none() {
                unverified.push(contact.card.name.clone());
            }
            cards.push(contact.card);
        }
    }
    let names: Vec<&str> = cards.iter().map(|c| c.name.as_str()).collect();
    // Before the report is even read: nothing is sealed to an expired card.
    let now = now_unix();
    for card in &cards {
        card.check_not_expired(now)?;
    }
    for card in &cards {
        super::contact::warn_expiring(ctx, card, now, true);
    }
    let json_bytes = match &a.file {
        Some(p) => read_report(p)?,
        None if std::io::stdin().is_terminal() => {
            let report = prompt_report()?;
            confirm_send(
                &report,
                &names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            )?;
            report.to_json()?
        }
        None => bail!(crate::t_err!("send-no-file")),
    };
    let report = Report::from_json(&json_bytes)?;
    let sender = plan.sender;
    // Each NGO's name goes beside its key, so every NGO can name the others it went to.
    let intended: Vec<_> = cards.iter().map(RecipientCard::addressee).collect();
    // This report's copies go first and decide the outcome; an older copy still waiting must not
    // delay it or turn its success into a failure.
    let earlier = plan.earlier;
    // Attachments: scrubbed, hashed and encrypted once into the outbox as blobs, to a key made
    // for this report, which each copy's envelope carries.
    let blob_key = age::x25519::Identity::generate(&mut rand::rngs::OsRng);
    let prepared = prepare_attachments(
        ctx,
        &a.attach,
        a.keep_metadata,
        &blob_key,
        envelope::MAX_ATTACHMENTS,
    )?;
    let (entries, blobs) = split_prepared(&prepared);
    let mut items = Vec::with_capacity(cards.len());
    // The report's threads, one per NGO, each with a reply mailbox and a reply key made for
    // this report and this NGO alone (docs/threat-model.md, "Replies and receipts").
    let mut sent = SentReport::new(&report.title, now);
    let sealed_all = (|| -> Result<()> {
        for card in &cards {
            let attachments = (!entries.is_empty()).then_some(envelope::Attachments {
                list: &entries,
                blob_key: &blob_key,
            });
            let thread = (!a.no_replies).then(|| {
                let mailbox_key = SigningSecret::generate(&mut rand::rngs::OsRng);
                let reply = age::x25519::Identity::generate(&mut rand::rngs::OsRng);
                let capability = envelope::ReplyCapability {
                    mailbox: MailboxId::for_key(&mailbox_key.public().to_bytes()),
                    recipient: reply.to_public(),
                    relays: card.relays().into_iter().map(|r| r.addr).collect(),
                };
                let thread =
                    ReporterThread::new(card, &mailbox_key, &reply, now, a.replies_for.as_secs());
                (thread, capability)
            });
            let (sealed, report_id) = envelope::seal_report(
                &json_bytes,
                &sender,
                &intended,
                envelope::Extras {
                    attachments,
                    reply: thread.as_ref().map(|(_, c)| c),
                },
                &card.recipients,
                now,
                &mut rand::rngs::OsRng,
            )?;
            let first = items.len();
            // One sealed envelope, the same bytes at every relay of the card: the NGO keeps one
            // copy of whatever arrives via several (docs/threat-model.md says what that costs).
            for relay in card.relays() {
                let mut item = OutboxItem::for_relay(card, &relay, &sealed, now);
                item.blobs = blobs.clone();
                items.push(item);
            }
            let deposits = items[first..].iter().map(|i| i.deposit_id).collect();
            match thread {
                Some((mut thread, _)) => {
                    thread.report_id = report_id;
                    thread.deposits = deposits;
                    sent.threads.push(thread);
                }
                // Listed by `report status` too, as queued or stored.
                None => sent.without_replies.push(crate::state::PlainCopy {
                    ngo: card.name.clone(),
                    deposits,
                    stored_at: None,
                }),
            }
        }
        // The one write: every copy queued durably before any is sent, with the report's
        // record.
        let record = Some(sent.encoded()?);
        outbox_queue_with(&ctx.home, &items, record.as_ref())
    })();
    if let Err(e) = sealed_all {
        // Nothing was queued: the blobs made for it go.
        let mut v = ctx.home.vault()?;
        for b in &blobs {
            v.remove(&b.record)?;
        }
        return Err(e);
    }
    ctx.out.say(crate::t!(
        "report-queued",
        title = crate::display::line(&report.title),
        kind = kind_word(report.kind),
        urgency = urgency_word(report.urgency),
        count = cards.len()
    ));
    for name in &unverified {
        ctx.out.say(format!(
            "{}: {}",
            crate::t!("warning-prefix"),
            crate::t!("report-unverified", name = name.as_str())
        ));
    }
    ctx.out.emit(
        json!({"type": "queued", "id": sent.id, "to": names, "copies": cards.len(), "unverified": unverified, "replies": !a.no_replies}),
    );
    if a.queue_only {
        return Ok(());
    }
    // Which item is which NGO's copy for which relay, to judge the outcome per NGO.
    let copies: Vec<(usize, String, vigil_core::ids::DepositId)> = items
        .iter()
        .map(|i| {
            let card = cards
                .iter()
                .position(|c| Some(c.identity_key.to_string()) == i.ngo_key)
                .unwrap_or_default();
            (card, i.relay.clone(), i.deposit_id)
        })
        .collect();
    let flushed = super::outbox::flush_items(ctx, items, &a.retry).await?;
    // The reply mailboxes, each registered on a connection of its own once the report is out
    // (lazily: a report that waits in the outbox registers nothing yet), at the relays that
    // answered. Best effort: a refusal (the relay's registration rate) leaves it for
    // `report status` and the next flush.
    let mut down: Vec<String> = flushed
        .summary
        .failed_relays
        .iter()
        .map(|(r, _)| r.clone())
        .collect();
    super::report_status::register_pending(ctx, &a.retry, &mut down).await?;
    let summary = flushed.summary;
    let stored = |id: &vigil_core::ids::DepositId| summary.stored.contains(id);
    // Delivered once at least one relay of each NGO stored its copy; a copy for another relay
    // that failed stays queued for `vigil outbox flush`, and is said here.
    let reached_all =
        (0..cards.len()).all(|c| copies.iter().any(|(card, _, id)| *card == c && stored(id)));
    if !reached_all {
        let e = flushed
            .error
            .unwrap_or_else(|| anyhow::anyhow!("a copy was not delivered"));
        return Err(e.context(crate::t_err!("outbox-pending", count = summary.pending)));
    }
    for (c, card) in cards.iter().enumerate() {
        let mine: Vec<_> = copies.iter().filter(|(i, _, _)| *i == c).collect();
        for (_, relay, id) in &mine {
            if stored(id) {
                continue;
            }
            let why = summary
                .failed_relays
                .iter()
                .find(|(r, _)| r == relay)
                .map(|(_, why)| why.clone())
                .unwrap_or_else(|| crate::t!("report-relay-refused"));
            ctx.out.say(format!(
                "{}: {}",
                crate::t!("warning-prefix"),
                crate::t!(
                    "report-relay-queued",
                    to = card.name.as_str(),
                    relay = relay.as_str(),
                    error = why
                )
            ));
        }
        let relays: Vec<_> = mine
            .iter()
            .map(|(_, relay, id)| {
                json!({"relay": relay, "deposit_id": id.to_string(),
                       "state": if stored(id) { "stored" } else { "queued" }})
            })
            .collect();
        ctx.out
            .emit(json!({"type": "delivery", "to": card.name, "relays": relays}));
    }
    let mut names: Vec<&str> = Vec::new();
    for n in &summary.sent {
        if !names.contains(&n.as_str()) {
            names.push(n);
        }
    }
    ctx.out
        .say(crate::t!("report-done", names = names.join(", ")));
    if !earlier.is_empty() {
        let n = earlier.len();
        ctx.out.say(crate::t!("report-earlier", count = n));
        if let Err(e) = super::outbox::flush(ctx, earlier, &a.retry).await {
            // This report was delivered; the older copies stay queued, sealed, for later.
            let shown = crate::display::line(&crate::failure::localized_message(&e));
            let e = crate::display::line(&format!("{e:#}"));
            ctx.out
                .say(crate::t!("report-earlier-pending", error = shown));
            ctx.out.emit(json!({"type": "earlier_pending", "error": e}));
        }
    }
    Ok(())
}

fn ask(stdin: &mut impl BufRead, question: &str, required: bool) -> Result<Option<String>> {
    loop {
        eprint!("{question}: ");
        std::io::stderr().flush()?;
        let mut line = String::new();
        if stdin.read_line(&mut line)? == 0 {
            bail!(crate::t_err!("prompt-input-ended"));
        }
        let v = line.trim().to_string();
        if !v.is_empty() {
            return Ok(Some(v));
        }
        if !required {
            return Ok(None);
        }
        eprintln!("  ({})", crate::t!("prompt-required"));
    }
}

/// Ask for one of `options` (value, word shown in this language, the format's own word); the
/// answer may be either word or the option's number.
fn ask_choice<T: Copy>(
    stdin: &mut impl BufRead,
    question: &str,
    options: &[(T, String, &str)],
    default: usize,
) -> Result<T> {
    let names: Vec<&str> = options.iter().map(|(_, n, _)| n.as_str()).collect();
    loop {
        let q = crate::t!(
            "prompt-choice",
            question = question,
            options = names.join(", "),
            default = names[default]
        );
        match ask(stdin, &q, false)? {
            None => return Ok(options[default].0),
            Some(v) => {
                if let Some((t, _, _)) = options.iter().find(|(_, n, c)| {
                    n.to_lowercase() == v.to_lowercase() || c.eq_ignore_ascii_case(&v)
                }) {
                    return Ok(*t);
                }
                if let Some((t, _, _)) = v
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| options.get(i.wrapping_sub(1)))
                {
                    return Ok(*t);
                }
                eprintln!(
                    "  {}",
                    crate::t!("prompt-choose-one", options = names.join(", "))
                );
            }
        }
    }
}

/// Show the whole draft and ask once more: a report typed under stress deserves a last look
/// before it leaves the device. Only an explicit yes sends; Enter alone does not.
fn confirm_send(report: &Report, to: &[String]) -> Result<()> {
    let stdin = std::io::stdin();
    confirm_from(&mut stdin.lock(), report, to)
}

fn confirm_from(stdin: &mut impl BufRead, report: &Report, to: &[String]) -> Result<()> {
    let draft = serde_json::to_string_pretty(report).context("could not show the draft")?;
    eprintln!(
        "\n{}\n  {}",
        crate::t!("prompt-draft", to = to.join(", ")),
        crate::display::block(&draft, "  ")
    );
    let answer = ask(stdin, &crate::t!("prompt-send-now"), false)?;
    // "y" and "yes" in every language, for a reporter whose keyboard is in Latin.
    let yes = answer.as_deref().map(str::to_lowercase).is_some_and(|a| {
        a == "y"
            || a == "yes"
            || crate::t!("prompt-yes-words")
                .split(',')
                .any(|w| w.trim() == a)
    });
    match yes {
        true => Ok(()),
        false => bail!(crate::t_err!("prompt-not-sent")),
    }
}

/// Ask for several lines, until an empty line or the end of input (Ctrl-D), so that a narrative
/// of many lines stays in its field and never spills into the questions after it.
fn ask_lines(stdin: &mut impl BufRead, question: &str) -> Result<String> {
    eprintln!("{}", crate::t!("prompt-lines", question = question));
    loop {
        let mut lines = Vec::new();
        let mut ended = false;
        loop {
            let mut line = String::new();
            if stdin.read_line(&mut line)? == 0 {
                ended = true;
                break;
            }
            let line = line.trim_end_matches(['\n', '\r']);
            if line.trim().is_empty() {
                break;
            }
            lines.push(line.to_string());
        }
        if !lines.is_empty() {
            return Ok(lines.join("\n"));
        }
        if ended {
            bail!(crate::t_err!("prompt-input-ended"));
        }
        eprintln!("  ({})", crate::t!("prompt-lines-required"));
    }
}

/// Ask until the answer is a date or time a report may carry.
fn ask_when(stdin: &mut impl BufRead) -> Result<String> {
    loop {
        let v = ask(stdin, &crate::t!("prompt-when"), true)?.unwrap_or_default();
        if vigil_core::report::is_report_time(&v) {
            return Ok(v);
        }
        eprintln!("  {}", crate::t!("prompt-not-a-date"));
    }
}

/// Ask for a report field by field on the terminal.
fn prompt_report() -> Result<Report> {
    let stdin = std::io::stdin();
    prompt_report_from(&mut stdin.lock())
}

fn prompt_report_from(s: &mut impl BufRead) -> Result<Report> {
    eprintln!("{}", crate::t!("prompt-intro"));
    let kinds: Vec<(ReportKind, String, &str)> = ReportKind::ALL
        .iter()
        .map(|k| (*k, kind_word(*k), k.as_str()))
        .collect();
    let kind = ask_choice(s, &crate::t!("prompt-kind"), &kinds, 0)?;
    let urg: Vec<(Urgency, String, &str)> = [
        Urgency::Urgent,
        Urgency::High,
        Urgency::Normal,
        Urgency::Low,
    ]
    .into_iter()
    .map(|u| (u, urgency_word(u), u.as_str()))
    .collect();
    let urgency = ask_choice(s, &crate::t!("prompt-urgency"), &urg, 0)?;
    let title = ask(s, &crate::t!("prompt-title"), true)?.unwrap_or_default();
    let occurred_at = ask_when(s)?;
    let place = ask(s, &crate::t!("prompt-where"), false)?;
    let victim = ask(s, &crate::t!("prompt-victim"), false)?;
    let relative = ask(s, &crate::t!("prompt-relative"), false)?;
    let agency = ask(s, &crate::t!("prompt-agency"), false)?;
    let vehicle = ask(s, &crate::t!("prompt-vehicle"), false)?;
    let narrative = ask_lines(s, &crate::t!("prompt-narrative"))?;
    let action = ask(s, &crate::t!("prompt-action"), false)?;
    let publish = ask(s, &crate::t!("prompt-publish"), false)?;
    let mut v = json!({"kind": kind.as_str(), "urgency": urgency.as_str(), "title": title, "occurred_at": occurred_at, "narrative": narrative});
    if let Some(p) = place {
        v["location"] = json!({"text": p});
    }
    let mut subjects = Vec::new();
    if let Some(n) = victim {
        subjects.push(json!({"name": n, "role": "victim"}));
    }
    if let Some(n) = relative {
        subjects.push(json!({"name": n, "role": "relative"}));
    }
    if !subjects.is_empty() {
        v["subjects"] = json!(subjects);
    }
    if agency.is_some() || vehicle.is_some() {
        let mut p = json!({});
        if let Some(a) = agency {
            p["agency"] = json!(a);
        }
        if let Some(veh) = vehicle {
            p["vehicles"] = json!([{"description": veh}]);
        }
        v["perpetrators"] = json!([p]);
    }
    if let Some(a) = action {
        v["requested_action"] = json!(a);
    }
    if let Some(p) = publish {
        let p = p.to_lowercase();
        let yes = p.starts_with('y')
            || crate::t!("prompt-yes-words")
                .split(',')
                .any(|w| p.starts_with(w.trim()));
        v["consent"] = json!({"publish": yes});
    }
    serde_json::from_value(v).context("could not build the report")
}

/// A kind of incident in this run's language, as the questions offer it.
pub(crate) fn kind_word(k: ReportKind) -> String {
    let id = match k {
        ReportKind::Abduction => "kind-abduction",
        ReportKind::ArbitraryDetention => "kind-arbitrary-detention",
        ReportKind::Disappearance => "kind-disappearance",
        ReportKind::Torture => "kind-torture",
        ReportKind::Threat => "kind-threat",
        ReportKind::RelativeThreatened => "kind-relative-threatened",
        ReportKind::DeportationRisk => "kind-deportation-risk",
        ReportKind::Other => "kind-other",
    };
    crate::i18n::by_id(crate::i18n::language(), id)
}

/// An urgency in this run's language.
pub(crate) fn urgency_word(u: Urgency) -> String {
    let id = match u {
        Urgency::Urgent => "urgency-urgent",
        Urgency::High => "urgency-high",
        Urgency::Normal => "urgency-normal",
        Urgency::Low => "urgency-low",
    };
    crate::i18n::by_id(crate::i18n::language(), id)
}

/// A kind of metadata the scrubber removed, in this run's language (`scrub-what-{id}`).
fn removed_words(what: crate::scrub::What) -> String {
    crate::i18n::by_id(
        crate::i18n::language(),
        &format!("scrub-what-{}", what.id()),
    )
}

/// Why an attachment's metadata stays, in this run's language (`scrub-warn-{id}`).
fn warning_words(w: crate::scrub::Warning) -> String {
    let id = format!("scrub-warn-{}", w.id());
    let mut args = std::collections::HashMap::new();
    if let crate::scrub::Warning::TooLarge { max_mib } = w {
        args.insert("mib", max_mib.to_string());
    }
    crate::i18n::loader().get_args(&id, args)
}

/// Prepare the files of `--attach` (see `crate::attach`; at most `max`, for a report or a
/// thread message), saying for each what happened to its metadata. On an error, the blobs
/// already made are removed.
/// What prepared attachments give a message: the entries its envelope names, and the blobs its
/// outbox item uploads before it (the same for a report, a reply and an answer).
pub(super) fn split_prepared(
    prepared: &[crate::attach::Prepared],
) -> (Vec<envelope::Attachment>, Vec<OutboxBlob>) {
    let entries = prepared.iter().map(|p| p.entry.clone()).collect();
    let blobs = prepared
        .iter()
        .map(|p| OutboxBlob {
            id: hex::encode(p.entry.blob),
            record: p.blob_record.clone(),
            len: p.blob_len,
        })
        .collect();
    (entries, blobs)
}

pub(super) fn prepare_attachments(
    ctx: &Ctx,
    paths: &[std::path::PathBuf],
    keep_metadata: bool,
    blob_key: &age::x25519::Identity,
    max: usize,
) -> Result<Vec<crate::attach::Prepared>> {
    use crate::attach::{self, Metadata};
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let files = attach::collect(paths)?;
    if files.len() > max {
        bail!(crate::t_err!(
            "thread-too-many-attachments",
            max = (max as u64),
            count = (files.len() as u64)
        ));
    }
    let mut done: Vec<attach::Prepared> = Vec::with_capacity(files.len());
    let mut v = ctx.home.vault()?;
    for f in &files {
        match attach::prepare(&mut v, f, blob_key, keep_metadata, &ctx.out) {
            Ok(p) => done.push(p),
            Err(e) => {
                for p in &done {
                    v.remove(&p.blob_record)?;
                }
                return Err(e);
            }
        }
    }
    drop(v);
    for p in &done {
        let name = crate::display::line(&p.entry.name);
        let size = crate::display::bytes(p.entry.size);
        let (word, line, removed, warning) = match &p.metadata {
            Metadata::Removed(r) => {
                let what: Vec<String> = r.iter().map(|x| removed_words(x.what)).collect();
                (
                    "removed",
                    crate::t!(
                        "attach-removed",
                        name = name.as_str(),
                        size = size.as_str(),
                        what = what.join("; ")
                    ),
                    r.iter()
                        .map(|x| {
                            json!({"what": x.what.english(), "id": x.what.id(), "bytes": x.bytes})
                        })
                        .collect(),
                    None,
                )
            }
            Metadata::Clean => (
                "clean",
                crate::t!("attach-clean", name = name.as_str(), size = size.as_str()),
                Vec::new(),
                None,
            ),
            Metadata::Kept => (
                "kept",
                crate::t!("attach-kept", name = name.as_str(), size = size.as_str()),
                Vec::new(),
                None,
            ),
            Metadata::NotRemoved(w) => (
                "not_removed",
                format!(
                    "{}: {}",
                    crate::t!("warning-prefix"),
                    crate::t!(
                        "attach-not-removed",
                        name = name.as_str(),
                        size = size.as_str(),
                        why = warning_words(*w)
                    )
                ),
                Vec::new(),
                Some(*w),
            ),
            Metadata::Unknown => (
                "unknown",
                crate::t!("attach-as-is", name = name.as_str(), size = size.as_str()),
                Vec::new(),
                None,
            ),
        };
        ctx.out.say(line);
        ctx.out.emit(json!({
            "type": "attachment", "name": p.entry.name, "media_type": p.entry.media_type,
            "size": p.entry.size, "sha256": hex::encode(p.entry.sha256),
            "metadata": word, "removed": removed,
            "warning": warning.map(|w| w.english()), "warning_id": warning.map(|w| w.id()),
        }));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// Every kind of removed metadata and every warning of the scrubber has its message in
    /// every language, and the Russian one is not the English.
    #[test]
    fn scrub_ids_have_messages_in_every_language() {
        use crate::i18n::{by_id, loader_for, Lang};
        use crate::scrub::{Warning, What};
        let ids = What::ALL
            .iter()
            .map(|w| format!("scrub-what-{}", w.id()))
            .chain(
                Warning::ALL
                    .iter()
                    .map(|w| format!("scrub-warn-{}", w.id())),
            );
        for id in ids {
            let en = by_id(Lang::En, &id);
            let ru = by_id(Lang::Ru, &id);
            for s in [&en, &ru] {
                assert!(!s.is_empty() && !s.contains("No localization"), "{id}: {s}");
            }
            assert_ne!(en, ru, "{id}");
            assert!(ru.chars().any(|c| ('а'..='я').contains(&c)), "{id}: {ru}");
        }
        // The English messages say what `--json` says.
        for w in What::ALL {
            assert_eq!(
                by_id(Lang::En, &format!("scrub-what-{}", w.id())),
                w.english()
            );
        }
        for w in Warning::ALL {
            let mut args = std::collections::HashMap::new();
            args.insert("mib", "48".to_string());
            let en = loader_for(Lang::En).get_args(&format!("scrub-warn-{}", w.id()), args);
            assert_eq!(en, w.english());
        }
    }

    /// Answers in the order the questions come: kind, urgency, title, when (a bad one first),
    /// where, victim, relative, agency, vehicle, narrative lines, then action and publish.
    const ANSWERS: &str = "threat\nurgent\nCalls at night\nyesterday\n2024-02-20\nNalchik\n\n\n\n\nFirst line.\nSecond line.\nThird line.\n\nCall me back\nno\n";

    #[test]
    fn a_narrative_of_many_lines_stays_in_its_field() {
        let r = prompt_report_from(&mut Cursor::new(ANSWERS)).unwrap();
        assert_eq!(r.narrative, "First line.\nSecond line.\nThird line.");
        assert_eq!(r.requested_action.as_deref(), Some("Call me back"));
        assert_eq!(
            r.occurred_at, "2024-02-20",
            "a date that is not one is asked again"
        );
        assert_eq!(r.consent.and_then(|c| c.publish), Some(false));
    }

    /// Input as a terminal gives it: Ctrl-D ends one read (it returns nothing), and the next
    /// read waits for more typing.
    struct Terminal(Vec<Cursor<String>>);

    impl std::io::Read for Terminal {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let Some(first) = self.0.first_mut() else {
                return Ok(0);
            };
            let n = first.read(buf)?;
            if n == 0 {
                self.0.remove(0);
            }
            Ok(n)
        }
    }

    #[test]
    fn a_narrative_may_end_with_ctrl_d_but_not_be_empty() {
        let (typed, after) = ANSWERS.split_once("Third line.\n\n").unwrap();
        let mut tty = std::io::BufReader::new(Terminal(vec![
            Cursor::new(format!("{typed}Third line.\n")),
            Cursor::new(after.to_string()),
        ]));
        let r = prompt_report_from(&mut tty).unwrap();
        assert!(r.narrative.ends_with("Third line."), "{:?}", r.narrative);
        assert_eq!(r.requested_action.as_deref(), Some("Call me back"));
        let empty = ANSWERS.split("First line.").next().unwrap();
        let e = prompt_report_from(&mut Cursor::new(empty)).unwrap_err();
        assert!(e.to_string().contains("nothing was sent"), "{e}");
    }

    #[test]
    fn only_an_explicit_yes_sends() {
        let r = prompt_report_from(&mut Cursor::new(ANSWERS)).unwrap();
        let to = vec!["Desk".to_string()];
        for no in ["\n", "n\n", "sure\n", ""] {
            assert!(
                confirm_from(&mut Cursor::new(no), &r, &to).is_err(),
                "{no:?}"
            );
        }
        for yes in ["y\n", "YES\n"] {
            assert!(
                confirm_from(&mut Cursor::new(yes), &r, &to).is_ok(),
                "{yes:?}"
            );
        }
    }

    /// The choices offered are the format's own words in English; every kind and urgency has a
    /// word in every language (they are looked up by an id made at run time).
    #[test]
    fn every_kind_and_urgency_has_a_word() {
        for k in ReportKind::ALL {
            assert_eq!(kind_word(k), k.as_str());
        }
        for u in Urgency::ALL {
            assert_eq!(urgency_word(u), u.as_str());
        }
        let ru = crate::i18n::loader_for(crate::i18n::Lang::Ru);
        for id in [
            "kind-abduction",
            "kind-arbitrary-detention",
            "kind-disappearance",
            "kind-torture",
            "kind-threat",
            "kind-relative-threatened",
            "kind-deportation-risk",
            "kind-other",
            "urgency-urgent",
            "urgency-high",
            "urgency-normal",
            "urgency-low",
        ] {
            assert!(ru.has(id), "{id}");
            assert!(!ru.get(id).is_ascii(), "{id}");
        }
    }
}
