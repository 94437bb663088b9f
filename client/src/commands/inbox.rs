//! `vigil inbox fetch|list|show`.
//!
//! Fetch order matters: download, decrypt, verify, store durably on this machine, and only then
//! acknowledge, so that the relay deletes nothing this machine does not hold. Envelopes that fail
//! to open or verify are kept under `inbox/rejected/` (evidence of tampering or misaddressing) and
//! acknowledged too, so that one bad item cannot block the mailbox.

use super::Ctx;
use crate::relay::RelayClient;
use crate::state::{inbox_entries, inbox_read, inbox_store, Ngo};
use anyhow::Result;
use serde_json::json;
use vigil_core::envelope::{self, Opened};
use vigil_core::report::Report;

/// Most items asked for per fetch round.
const FETCH_BATCH: u32 = 64;

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
        let items = client
            .fetch(ngo.mailbox_key.as_dalek(), FETCH_BATCH)
            .await?;
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
    client.close().await;
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
