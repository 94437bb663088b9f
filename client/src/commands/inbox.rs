//! `vigil inbox fetch|list|show|status`.
//!
//! Fetch order matters: download, decrypt, verify, store durably on this machine, and only then
//! acknowledge, so that the relay deletes nothing this machine does not hold. Envelopes that fail
//! to open or verify are kept under `inbox/rejected/` (evidence of tampering or misaddressing) and
//! acknowledged too, so that one bad item cannot block the mailbox.

use super::Ctx;
use crate::relay::{RelayClient, RelayError};
use crate::state::{inbox_entries, inbox_read, inbox_store, Ngo};
use anyhow::Result;
use serde_json::json;
use vigil_core::envelope::{self, Opened};
use vigil_core::report::Report;
use vigil_core::wire::status::MailboxStatus;
use vigil_core::wire::ErrorCode;

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
) -> Result<Vec<crate::relay::FetchedItem>, RelayError> {
    let mut waits = 0;
    loop {
        match client.fetch(key, FETCH_BATCH).await {
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

/// Counts from one fetch.
#[derive(Debug, Default)]
pub struct FetchSummary {
    /// Verified reports stored.
    pub stored: Vec<String>,
    /// Items that failed to open or verify.
    pub rejected: usize,
}

/// Download, verify, store, acknowledge.
pub async fn fetch(ctx: &Ctx) -> Result<FetchSummary> {
    let ngo = Ngo::load(&ctx.home)?;
    let ids = ngo.local_identities(&ctx.home)?;
    if ids.is_empty() {
        anyhow::bail!(
            "no staff key is held in this inbox; add one with `vigil ngo add-staff --name NAME`"
        );
    }
    let me = ngo.identity.public();
    let client = RelayClient::connect_pinned(&ngo.config.relay, &ngo.config.pinned()).await?;
    let mut summary = FetchSummary::default();
    loop {
        let items = fetch_round(&client, ngo.mailbox_key.as_dalek()).await?;
        if items.is_empty() {
            break;
        }
        let n = items.len();
        let mut acks = Vec::with_capacity(n);
        for item in items {
            match envelope::open(&item.envelope, &ids, &me) {
                Ok(opened) => {
                    let id = inbox_store(&ctx.home, &item.envelope, None)?;
                    say_report_line(ctx, &id, &opened.report);
                    ctx.out.emit(json!({"type": "fetched", "id": id, "urgency": opened.report.urgency.as_str(), "kind": opened.report.kind.as_str(), "title": opened.report.title}));
                    summary.stored.push(id);
                }
                Err(e) => {
                    let id = inbox_store(&ctx.home, &item.envelope, Some(&e.to_string()))?;
                    ctx.out
                        .say(format!("Rejected item {id}: {e} (kept in inbox/rejected)"));
                    ctx.out
                        .emit(json!({"type": "rejected", "id": id, "error": e.to_string()}));
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
    // A flood that filled the mailbox refuses honest reports at the relay, where nobody sees
    // them: say so at every fetch. Best effort: the reports above are already safe here, and an
    // older relay that does not know the request is no reason to fail the fetch.
    if let Ok(st) = client.status(ngo.mailbox_key.as_dalek()).await {
        warn_if_full(ctx, &st);
    }
    client.close().await;
    super::ngo::warn_own_card_expiring(ctx);
    ctx.out.say(format!(
        "Fetched {} new report(s){}.",
        summary.stored.len(),
        if summary.rejected > 0 {
            format!(", rejected {}", summary.rejected)
        } else {
            String::new()
        }
    ));
    ctx.out.emit(
        json!({"type": "fetch_done", "stored": summary.stored.len(), "rejected": summary.rejected}),
    );
    Ok(summary)
}

/// Fill above which `fetch` and `status` warn.
const WARN_FILL: f64 = 0.8;

/// Show how full the mailbox is at the relay.
pub async fn status(ctx: &Ctx) -> Result<()> {
    let ngo = Ngo::load(&ctx.home)?;
    let client = RelayClient::connect_pinned(&ngo.config.relay, &ngo.config.pinned()).await?;
    let st = client.status(ngo.mailbox_key.as_dalek()).await;
    client.close().await;
    let st = st?;
    ctx.out.say(format!(
        "Mailbox at {}: {} of {} reports, {} of {} ({:.0}% full). Unfetched reports are deleted after {}.",
        ngo.config.relay,
        st.items,
        st.max_items,
        human_bytes(st.bytes),
        human_bytes(st.max_bytes),
        st.fill() * 100.0,
        human_duration(st.expiry_secs),
    ));
    ctx.out.emit(json!({
        "type": "mailbox_status", "items": st.items, "bytes": st.bytes,
        "max_items": st.max_items, "max_bytes": st.max_bytes, "fill": st.fill(),
        "refused_full": st.refused_full, "expiry_secs": st.expiry_secs,
    }));
    warn_if_full(ctx, &st);
    Ok(())
}

/// Warn (on stderr for people, as a `mailbox_warning` object for `--json`) when the mailbox is
/// nearly full or has refused deposits because it was full.
fn warn_if_full(ctx: &Ctx, st: &MailboxStatus) {
    let fill = st.fill();
    if st.refused_full > 0 {
        ctx.out.say(format!(
            "Warning: the relay refused {} report(s) because this mailbox was full; run `vigil inbox fetch` until it is empty so senders' retries get through, and tell the relay operator if junk keeps filling it.",
            st.refused_full
        ));
    } else if fill >= WARN_FILL {
        ctx.out.say(format!(
            "Warning: this mailbox is {:.0}% full at the relay; run `vigil inbox fetch` now, or new reports will be refused once it is full.",
            fill * 100.0
        ));
    } else {
        return;
    }
    ctx.out.emit(json!({
        "type": "mailbox_warning", "fill": fill, "refused_full": st.refused_full,
        "advice": "run `vigil inbox fetch` until the mailbox is empty",
    }));
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} bytes"),
        _ => format!("{v:.1} {}", UNITS[unit]),
    }
}

fn human_duration(secs: u64) -> String {
    match secs {
        s if s >= 2 * 86_400 => format!("{} days", s / 86_400),
        s if s >= 2 * 3600 => format!("{} hours", s / 3600),
        s => format!("{s} seconds"),
    }
}

fn say_report_line(ctx: &Ctx, id: &str, r: &Report) {
    let flag = if r.urgency >= vigil_core::report::Urgency::Urgent {
        "!! "
    } else {
        "   "
    };
    ctx.out.say(format!(
        "{flag}{id}  {:<7} {:<20} {}",
        r.urgency.as_str(),
        r.kind.as_str(),
        r.title
    ));
}

fn open_stored(ctx: &Ctx, ngo: &Ngo, envelope_bytes: &[u8]) -> Result<Opened> {
    let ids = ngo.local_identities(&ctx.home)?;
    Ok(envelope::open(
        envelope_bytes,
        &ids,
        &ngo.identity.public(),
    )?)
}

/// List stored reports, most urgent first, then newest first.
pub fn list(ctx: &Ctx) -> Result<usize> {
    let ngo = Ngo::load(&ctx.home)?;
    let mut rows = Vec::new();
    for (id, meta) in inbox_entries(&ctx.home)? {
        let (_, bytes) = inbox_read(&ctx.home, &id)?;
        let opened = open_stored(ctx, &ngo, &bytes)?;
        rows.push((id, meta.received_at, opened));
    }
    rows.sort_by(|a, b| {
        b.2.report
            .urgency
            .cmp(&a.2.report.urgency)
            .then(b.1.cmp(&a.1))
    });
    if rows.is_empty() {
        ctx.out
            .say("Inbox is empty; run `vigil inbox fetch` to download new reports.");
    }
    for (id, received, o) in &rows {
        say_report_line(ctx, id, &o.report);
        ctx.out.emit(json!({
            "type": "report", "id": id, "received_at": received, "urgency": o.report.urgency.as_str(),
            "kind": o.report.kind.as_str(), "title": o.report.title, "occurred_at": o.report.occurred_at,
            "sender": o.sender.to_string(),
        }));
    }
    Ok(rows.len())
}

/// Show one report.
pub fn show(ctx: &Ctx, id: &str) -> Result<()> {
    let ngo = Ngo::load(&ctx.home)?;
    let (id, bytes) = inbox_read(&ctx.home, id)?;
    let o = open_stored(ctx, &ngo, &bytes)?;
    let report_value: serde_json::Value = serde_json::from_slice(&o.report_json)?;
    if ctx.out.json {
        ctx.out.emit(json!({
            "type": "report", "id": id, "sender": o.sender.to_string(), "created": o.created,
            "sent_to": o.intended.len(), "report": report_value,
        }));
        return Ok(());
    }
    let r = &o.report;
    let mut s = String::new();
    s.push_str(&format!("Report {id}\n"));
    s.push_str(&format!(
        "  {} / {}: {}\n",
        r.urgency.as_str().to_uppercase(),
        r.kind.as_str(),
        r.title
    ));
    s.push_str(&format!(
        "  When:  {}{}\n",
        r.occurred_at,
        r.occurred_at_precision
            .as_ref()
            .map(|p| format!(" (to the {p})"))
            .unwrap_or_default()
    ));
    if let Some(l) = &r.location {
        s.push_str(&format!("  Where: {}", l.text));
        if let (Some(lat), Some(lon)) = (l.lat, l.lon) {
            s.push_str(&format!(" ({lat}, {lon})"));
        }
        s.push('\n');
    }
    for p in &r.subjects {
        s.push_str(&format!(
            "  {}: {}{}\n",
            p.role,
            p.name,
            p.notes
                .as_ref()
                .map(|n| format!(" — {n}"))
                .unwrap_or_default()
        ));
    }
    for p in &r.perpetrators {
        s.push_str(&format!(
            "  perpetrator: {}{}\n",
            p.agency.as_deref().unwrap_or("unknown"),
            p.notes
                .as_ref()
                .map(|n| format!(" — {n}"))
                .unwrap_or_default()
        ));
        for v in p.vehicles.iter().flatten() {
            s.push_str(&format!(
                "    vehicle: {} plate {}\n",
                v.description.as_deref().unwrap_or("?"),
                v.plate.as_deref().unwrap_or("?")
            ));
        }
    }
    for w in r.witnesses.iter().flatten() {
        s.push_str(&format!(
            "  witness: {}{}\n",
            w.name,
            w.contact
                .as_ref()
                .map(|c| format!(" (contact: {c})"))
                .unwrap_or_default()
        ));
    }
    s.push_str(&format!("\n{}\n", r.narrative));
    if let Some(a) = &r.requested_action {
        s.push_str(&format!("\nRequested action: {a}\n"));
    }
    s.push_str(&format!(
        "\nSigned by reporter key {} (sent to {} NGO(s))",
        o.sender,
        o.intended.len()
    ));
    ctx.out.data(s);
    Ok(())
}
