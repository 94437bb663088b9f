//! `vigil report send|check`.

use super::Ctx;
use crate::cli::{ReportCheckArgs, ReportSendArgs};
use crate::home::now_unix;
use crate::state::{contact_by_name, outbox, reporter_key, OutboxItem};
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::Path;
use vigil_core::envelope;
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
    ctx.out.say(format!(
        "Report is valid: {} / {} — {}",
        r.kind.as_str(),
        r.urgency.as_str(),
        crate::display::line(&r.title)
    ));
    ctx.out.emit(
        json!({"type": "report_valid", "kind": r.kind.as_str(), "urgency": r.urgency.as_str()}),
    );
    Ok(())
}

/// Seal a report for each named NGO, queue the copies durably, then deliver the outbox.
pub async fn send(ctx: &Ctx, a: ReportSendArgs) -> Result<()> {
    let mut cards: Vec<vigil_core::card::RecipientCard> = Vec::new();
    for name in &a.to {
        let card = contact_by_name(&ctx.home, name)?.card;
        // The same NGO named twice (in any case) gets one copy.
        if !cards.iter().any(|c| c.identity_key == card.identity_key) {
            cards.push(card);
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
            confirm_send(&report, &names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
            report.to_json()?
        }
        None => bail!("no --file given and stdin is not a terminal; pass --file report.json (or --file - to read stdin)"),
    };
    let report = Report::from_json(&json_bytes)?;
    let sender = reporter_key(&ctx.home)?;
    let intended: Vec<_> = cards.iter().map(|c| c.identity_key).collect();
    // This report's copies go first and decide the outcome; an older copy still waiting must not
    // delay it or turn its success into a failure.
    let earlier = outbox(&ctx.home)?;
    let mut items = Vec::with_capacity(cards.len());
    for card in &cards {
        let sealed = envelope::seal(
            &json_bytes,
            &sender,
            &intended,
            &card.recipients,
            now,
            &mut rand::rngs::OsRng,
        )?;
        let item = OutboxItem::new(card, &sealed, now);
        item.save(&ctx.home)?;
        items.push(item);
    }
    ctx.out.say(format!(
        "Report \"{}\" ({}, {}) encrypted for {} and queued.",
        crate::display::line(&report.title),
        report.kind.as_str(),
        report.urgency.as_str(),
        crate::output::count(cards.len() as u64, "NGO", "NGOs")
    ));
    ctx.out
        .emit(json!({"type": "queued", "to": names, "copies": cards.len()}));
    if a.queue_only {
        return Ok(());
    }
    let summary = super::outbox::flush(ctx, items, &a.retry).await?;
    ctx.out.say(format!(
        "Done: this report is stored at the relay for {}.",
        summary.sent.join(", ")
    ));
    if !earlier.is_empty() {
        let n = earlier.len();
        ctx.out.say(format!(
            "Also sending {n} earlier report {} from the outbox.",
            if n == 1 { "copy" } else { "copies" }
        ));
        if let Err(e) = super::outbox::flush(ctx, earlier, &a.retry).await {
            // This report was delivered; the older copies stay queued, sealed, for later.
            let e = crate::display::line(&format!("{e:#}"));
            ctx.out.say(format!(
                "Warning: earlier report copies are still waiting in the outbox ({e}); they are safe there, run `vigil outbox flush` later."
            ));
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
            bail!("input ended before the report was complete; nothing was sent");
        }
        let v = line.trim().to_string();
        if !v.is_empty() {
            return Ok(Some(v));
        }
        if !required {
            return Ok(None);
        }
        eprintln!("  (required)");
    }
}

fn ask_choice<T: Copy>(
    stdin: &mut impl BufRead,
    question: &str,
    options: &[(T, &str)],
    default: usize,
) -> Result<T> {
    let names: Vec<&str> = options.iter().map(|(_, n)| *n).collect();
    loop {
        let q = format!(
            "{question} [{}] (default {})",
            names.join(", "),
            names[default]
        );
        match ask(stdin, &q, false)? {
            None => return Ok(options[default].0),
            Some(v) => {
                if let Some((t, _)) = options.iter().find(|(_, n)| n.eq_ignore_ascii_case(&v)) {
                    return Ok(*t);
                }
                if let Some((t, _)) = v
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| options.get(i.wrapping_sub(1)))
                {
                    return Ok(*t);
                }
                eprintln!("  choose one of: {}", names.join(", "));
            }
        }
    }
}

/// Show what is about to be sent and ask once more: a report typed under stress deserves a last
/// look before it leaves the device.
fn confirm_send(report: &Report, to: &[String]) -> Result<()> {
    eprintln!(
        "\nAbout to encrypt and send to {}:\n  {} / {}: {}\n  {}",
        to.join(", "),
        report.urgency.as_str(),
        report.kind.as_str(),
        crate::display::line(&report.title),
        crate::display::block(&report.narrative, "  ")
    );
    let stdin = std::io::stdin();
    let answer = ask(&mut stdin.lock(), "Send now? [Y/n]", false)?;
    match answer.as_deref().map(str::to_lowercase).as_deref() {
        None | Some("y") | Some("yes") => Ok(()),
        _ => bail!("not sent; nothing was stored (run the command again to start over)"),
    }
}

/// Ask for a report field by field on the terminal.
fn prompt_report() -> Result<Report> {
    eprintln!(
        "New incident report. Press Enter to skip optional fields. Nothing is sent until the end."
    );
    let stdin = std::io::stdin();
    let mut s = stdin.lock();
    let kinds: Vec<(ReportKind, &str)> = ReportKind::ALL.iter().map(|k| (*k, k.as_str())).collect();
    let kind = ask_choice(&mut s, "What happened", &kinds, 0)?;
    let urg = [
        (Urgency::Urgent, "urgent"),
        (Urgency::High, "high"),
        (Urgency::Normal, "normal"),
        (Urgency::Low, "low"),
    ];
    let urgency = ask_choice(&mut s, "How urgent", &urg, 0)?;
    let title = ask(&mut s, "One-line title", true)?.unwrap_or_default();
    let occurred_at = ask(
        &mut s,
        "When (e.g. 2024-02-20 or 2024-02-20T10:00+03:00)",
        true,
    )?
    .unwrap_or_default();
    let place = ask(&mut s, "Where", false)?;
    let victim = ask(&mut s, "Who was targeted (name or pseudonym)", false)?;
    let relative = ask(&mut s, "Relative at risk, if any", false)?;
    let agency = ask(&mut s, "Who did it (agency, unit), if known", false)?;
    let vehicle = ask(&mut s, "Vehicles (colour, make, plate), if seen", false)?;
    let narrative = ask(&mut s, "What happened, in your words", true)?.unwrap_or_default();
    let action = ask(&mut s, "What should the NGO do", false)?;
    let publish = ask(
        &mut s,
        "May the NGO publish anonymised details? (yes/no)",
        false,
    )?;
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
        v["consent"] = json!({"publish": p.to_lowercase().starts_with('y')});
    }
    serde_json::from_value(v).context("could not build the report")
}
