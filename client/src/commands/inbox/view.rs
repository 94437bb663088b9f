//! `vigil inbox list|show`: received reports shown for people, through [`crate::display`].

use super::{time_warning, utc, Ctx};
use crate::display;
use crate::state::{inbox_entries, inbox_meta, inbox_read, AlertNote, Ngo};
use anyhow::Result;
use serde_json::json;
use vigil_core::envelope::{self, Opened};

/// One report as a line of the triage list (`fetch`, `list`), then when it happened, was signed
/// and was received, and who signed it (the first 16 hex digits of the reporter's key: the same
/// reporter shows the same digits on every report), with the time warning on a line of its own.
pub(super) fn say_report_line(
    ctx: &Ctx,
    id: &str,
    o: &Opened,
    received: u64,
    warning: Option<&str>,
    alert: Option<&AlertNote>,
) {
    let r = &o.report;
    if let Some(a) = alert {
        ctx.out.say(format!("!! {}", alert_line(a)));
    }
    let flag = if alert.is_some() || r.urgency >= vigil_core::report::Urgency::Urgent {
        "!! "
    } else {
        "   "
    };
    ctx.out.say(format!(
        "{flag}{id}  {:<7} {:<20} {}",
        crate::commands::report::urgency_word(r.urgency),
        crate::commands::report::kind_word(r.kind),
        display::line(&r.title)
    ));
    let sender = o.sender.to_string();
    ctx.out.say(format!(
        "     {}",
        crate::t!(
            "inbox-line-times",
            happened = display::line(&r.occurred_at),
            signed = utc(o.created),
            received = utc(received),
            sender = (&sender[..16.min(sender.len())])
        )
    ));
    if warning.is_some() {
        if let Some(w) = super::time_warning_shown(o.created, received) {
            ctx.out.say(format!(
                "     {}",
                crate::t!("inbox-time-warning", id = id, warning = w)
            ));
        }
    }
}

/// The line that says a report came as a released check-in alert, from the relay's note.
pub(super) fn alert_line(a: &AlertNote) -> String {
    let last = if a.last_checkin_at == 0 {
        crate::t!("inbox-alert-no-checkin", armed = utc(a.armed_at))
    } else {
        utc(a.last_checkin_at)
    };
    let released = utc(a.released_at);
    if a.reason == "duress" {
        crate::t!("inbox-alert-duress", last = last, released = released)
    } else {
        crate::t!("inbox-alert-missed", last = last, released = released)
    }
}

/// The note as JSON (`null` for an ordinary report).
pub(super) fn alert_json(a: Option<&AlertNote>) -> serde_json::Value {
    match a {
        Some(a) => json!({
            "reason": a.reason, "armed_at": a.armed_at,
            "last_checkin_at": a.last_checkin_at, "released_at": a.released_at,
        }),
        None => serde_json::Value::Null,
    }
}

pub(super) fn open_stored(ctx: &Ctx, ngo: &Ngo, envelope_bytes: &[u8]) -> Result<Opened> {
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
        // A report stored before a newer rule (such as the one-line fields' refusal of control
        // characters) may no longer open; it must not hide the rest of the inbox.
        match open_stored(ctx, &ngo, &bytes) {
            Ok(opened) => rows.push((id, meta.received_at, opened, meta.alert)),
            Err(e) => {
                let e_any = e;
                let e = format!("{e_any:#}");
                ctx.out.say(crate::t!(
                    "inbox-unreadable",
                    id = id.as_str(),
                    error = display::line(&crate::failure::localized_message(&e_any))
                ));
                ctx.out
                    .emit(json!({"type": "unreadable", "id": id, "error": e}));
            }
        }
    }
    // Released check-in alerts first: someone went silent or checked in under duress.
    rows.sort_by(|a, b| {
        b.3.is_some()
            .cmp(&a.3.is_some())
            .then(b.2.report.urgency.cmp(&a.2.report.urgency))
            .then(b.1.cmp(&a.1))
    });
    if rows.is_empty() {
        ctx.out.say(crate::t!("inbox-empty"));
    }
    for (id, received, o, alert) in &rows {
        let warning = time_warning(o.created, *received);
        say_report_line(ctx, id, o, *received, warning.as_deref(), alert.as_ref());
        ctx.out.emit(json!({
            "type": "report", "id": id, "received_at": received, "urgency": o.report.urgency.as_str(),
            "kind": o.report.kind.as_str(), "title": o.report.title, "occurred_at": o.report.occurred_at,
            "sender": o.sender.to_string(), "created": o.created, "time_warning": warning,
            "alert": alert_json(alert.as_ref()),
        }));
    }
    Ok(rows.len())
}

/// Show one report.
///
/// Every report-derived line is indented (two spaces, four inside the narrative and the
/// requested action) and escaped by [`display`]; the trailer Vigil adds ("Signed by reporter
/// key ...") starts in the first column, so a report cannot forge it. See `crate::display`.
pub fn show(ctx: &Ctx, id: &str) -> Result<()> {
    let ngo = Ngo::load(&ctx.home)?;
    let (id, bytes) = inbox_read(&ctx.home, id)?;
    let meta = inbox_meta(&ctx.home, &id)?;
    let received = meta.received_at;
    let o = open_stored(ctx, &ngo, &bytes)?;
    let warning = time_warning(o.created, received);
    let report_value: serde_json::Value = serde_json::from_slice(&o.report_json)?;
    let sent_to = recipients(&o, &ngo);
    let here = attachments_here(ctx, &o)?;
    let thread = crate::state::ngo_thread(&ctx.home, &id)?;
    if ctx.out.json {
        let attachments: Vec<_> = o
            .attachments
            .iter()
            .zip(&here)
            .map(|(a, here)| {
                json!({"name": a.name, "media_type": a.media_type, "size": a.size,
                       "sha256": hex::encode(a.sha256), "metadata_kept": a.metadata_kept,
                       "downloaded": here})
            })
            .collect();
        let named: Vec<_> = sent_to
            .iter()
            .map(|r| json!({"name": r.name, "identity_key": r.key, "this_ngo": r.this_ngo}))
            .collect();
        ctx.out.emit(json!({
            "type": "report", "id": id, "sender": o.sender.to_string(), "created": o.created,
            "sent_to": o.intended.len(), "sent_to_names": named, "report": report_value,
            "received_at": received, "time_warning": warning,
            "alert": alert_json(meta.alert.as_ref()), "attachments": attachments,
            "thread": super::reply::thread_json(thread.as_ref()),
        }));
        return Ok(());
    }
    let text = render(
        &id,
        &o,
        &sent_to,
        (received, warning.as_deref()),
        &here,
        thread.as_ref(),
    );
    match &meta.alert {
        Some(a) => ctx.out.data(format!("!! {}\n{text}", alert_line(a))),
        None => ctx.out.data(text),
    }
    Ok(())
}

/// Whether each attachment's blob is in this home (downloaded with the report).
pub(super) fn attachments_here(ctx: &Ctx, o: &Opened) -> Result<Vec<bool>> {
    if o.attachments.is_empty() {
        return Ok(Vec::new());
    }
    let v = ctx.home.vault()?;
    Ok(o.attachments
        .iter()
        .map(|a| v.contains(&crate::vault::blob_name(&a.blob)))
        .collect())
}

/// One NGO a report was sealed for, as `inbox show` names it.
struct Recipient {
    /// The name the reporter's app gave it (from that NGO's card), if any.
    name: Option<String>,
    /// Its identity key, from the signed list.
    key: String,
    /// Whether it is this NGO.
    this_ngo: bool,
}

/// The NGOs of the envelope's signed list, in its order, each with the name the reporter's
/// app gave it (this NGO's own name where it gave none).
fn recipients(o: &Opened, ngo: &Ngo) -> Vec<Recipient> {
    let me = ngo.identity.public();
    o.intended
        .iter()
        .zip(&o.intended_names)
        .map(|(k, named)| {
            let this_ngo = *k == me;
            Recipient {
                name: named
                    .clone()
                    .or_else(|| this_ngo.then(|| ngo.config.name.clone())),
                key: k.to_string(),
                this_ngo,
            }
        })
        .collect()
}

/// "Desk (this NGO), Civic Assistance, an NGO not named (key 0a1b…)".
fn recipient_names(list: &[Recipient]) -> String {
    list.iter()
        .map(|r| {
            let name = match &r.name {
                Some(n) => display::line(n),
                None => crate::t!("show-unnamed-ngo", key = (&r.key[..16.min(r.key.len())])),
            };
            if r.this_ngo {
                crate::t!("show-this-ngo", name = name)
            } else {
                name
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The human text of `inbox show`.
fn render(
    id: &str,
    o: &Opened,
    sent_to: &[Recipient],
    (received, warning): (u64, Option<&str>),
    here: &[bool],
    thread: Option<&crate::state::NgoThread>,
) -> String {
    use display::{block, line};
    let r = &o.report;
    let mut s = String::new();
    s.push_str(&format!("{}\n", crate::t!("show-report", id = id)));
    s.push_str(&format!(
        "  {} / {}: {}\n",
        crate::commands::report::urgency_word(r.urgency).to_uppercase(),
        crate::commands::report::kind_word(r.kind),
        line(&r.title)
    ));
    s.push_str(&format!(
        "  {}{}\n",
        crate::t!("show-when", when = line(&r.occurred_at)),
        r.occurred_at_precision
            .as_ref()
            .map(|p| format!(" {}", crate::t!("show-precision", precision = line(p))))
            .unwrap_or_default()
    ));
    if let Some(l) = &r.location {
        // The label and the indent of the lines after it are as wide in every language.
        s.push_str(&format!(
            "  {}",
            crate::t!("show-where", place = block(&l.text, "         "))
        ));
        if let (Some(lat), Some(lon)) = (l.lat, l.lon) {
            s.push_str(&format!(" ({lat}, {lon})"));
        }
        s.push('\n');
    }
    for p in &r.subjects {
        s.push_str(&format!(
            "  {}: {}{}\n",
            line(&p.role),
            line(&p.name),
            p.notes
                .as_ref()
                .map(|n| format!(" — {}", block(n, "    ")))
                .unwrap_or_default()
        ));
    }
    for p in &r.perpetrators {
        s.push_str(&format!(
            "  {}{}\n",
            crate::t!(
                "show-perpetrator",
                agency = match p.agency.as_deref() {
                    Some(a) => line(a),
                    None => crate::t!("show-unknown"),
                }
            ),
            p.notes
                .as_ref()
                .map(|n| format!(" — {}", block(n, "    ")))
                .unwrap_or_default()
        ));
        for v in p.vehicles.iter().flatten() {
            s.push_str(&format!(
                "    {}\n",
                crate::t!(
                    "show-vehicle",
                    description = block(v.description.as_deref().unwrap_or("?"), "      "),
                    plate = line(v.plate.as_deref().unwrap_or("?"))
                )
            ));
        }
    }
    for w in r.witnesses.iter().flatten() {
        s.push_str(&format!(
            "  {}{}\n",
            crate::t!("show-witness", name = line(&w.name)),
            w.contact
                .as_ref()
                .map(|c| format!(
                    " {}",
                    crate::t!("show-witness-contact", contact = block(c, "    "))
                ))
                .unwrap_or_default()
        ));
    }
    s.push_str(&format!("\n    {}\n", block(&r.narrative, "    ")));
    if let Some(a) = &r.requested_action {
        s.push_str(&format!(
            "\n  {}\n",
            crate::t!("show-requested-action", action = block(a, "    "))
        ));
    }
    if !o.attachments.is_empty() {
        s.push_str(&format!(
            "\n  {}\n",
            crate::t!("show-attachments", count = o.attachments.len())
        ));
        for (a, here) in o.attachments.iter().zip(here) {
            let mut notes = Vec::new();
            if a.metadata_kept {
                notes.push(crate::t!("show-attachment-metadata-kept"));
            }
            if !here {
                notes.push(crate::t!("show-attachment-missing"));
            }
            s.push_str(&format!(
                "    {}  {}  {}  SHA-256 {}{}\n",
                line(&a.name),
                line(&a.media_type),
                display::bytes(a.size),
                hex::encode(a.sha256),
                if notes.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", notes.join("; "))
                }
            ));
        }
    }
    let extra = extra_fields(r);
    if !extra.is_empty() {
        // Fields this version of Vigil does not know (from a newer client, or added by hand):
        // shown, never dropped.
        s.push_str(&format!("\n  {}\n", crate::t!("show-other-fields")));
        for (path, value) in extra {
            s.push_str(&format!(
                "    {}: {}\n",
                line(&path),
                block(&value, "      ")
            ));
        }
    }
    s.push_str(&format!(
        "\n  {}\n",
        crate::t!(
            "show-signed",
            signed = utc(o.created),
            received = if received == 0 {
                crate::t!("show-unknown-time")
            } else {
                utc(received)
            }
        )
    ));
    if warning.is_some() {
        if let Some(w) = super::time_warning_shown(o.created, received) {
            s.push_str(&format!("  {}\n", crate::t!("show-warning", warning = w)));
        }
    }
    // The thread (receipt, replies, answers), every message line indented like the report's.
    if let Some(t) = thread {
        s.push_str(&super::reply::render_thread(t));
        s.push('\n');
    }
    // Vigil's trailer, in the first column where no report-derived line can start.
    s.push_str(&crate::t!(
        "show-signed-by",
        key = o.sender.to_string(),
        count = (o.intended.len()),
        names = recipient_names(sent_to)
    ));
    s
}

/// Every field of `r` that this version does not know, at any level, as (path, JSON value).
pub(super) fn extra_fields(r: &vigil_core::report::Report) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut add = |prefix: &str, map: &serde_json::Map<String, serde_json::Value>| {
        for (k, v) in map {
            let value = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push((format!("{prefix}{k}"), value));
        }
    };
    add("", &r.extra);
    if let Some(l) = &r.location {
        add("location.", &l.extra);
    }
    for (i, p) in r.subjects.iter().enumerate() {
        add(&format!("subjects[{i}]."), &p.extra);
    }
    for (i, p) in r.perpetrators.iter().enumerate() {
        add(&format!("perpetrators[{i}]."), &p.extra);
        for (j, v) in p.vehicles.iter().flatten().enumerate() {
            add(&format!("perpetrators[{i}].vehicles[{j}]."), &v.extra);
        }
    }
    for (i, w) in r.witnesses.iter().flatten().enumerate() {
        add(&format!("witnesses[{i}]."), &w.extra);
    }
    if let Some(c) = &r.consent {
        add("consent.", &c.extra);
    }
    out
}
