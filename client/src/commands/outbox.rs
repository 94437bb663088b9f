//! `vigil outbox list|flush`: reports wait here, sealed, until a relay confirms it stored them.
//!
//! An item leaves the outbox only after the relay's "stored" reply, which the relay sends only
//! after the envelope is on disk. A retry reuses the item's deposit id, so a "stored" reply lost
//! on a bad link does not lead to a second copy in the NGO's inbox.

use super::Ctx;
use crate::home::now_unix;
use crate::relay::RelayClient;
use crate::state::{outbox, OutboxItem};
use anyhow::Result;
use serde_json::json;
use std::collections::BTreeMap;

/// What a flush achieved.
#[derive(Debug, Default)]
pub struct FlushSummary {
    /// NGO names whose copy was stored.
    pub sent: Vec<String>,
    /// Items still waiting.
    pub pending: usize,
}

/// List queued items.
pub fn list(ctx: &Ctx) -> Result<()> {
    let items = outbox(&ctx.home)?;
    if items.is_empty() {
        ctx.out
            .say("Outbox is empty: everything was delivered to the relay.");
    }
    let now = now_unix();
    for i in &items {
        let age_min = now.saturating_sub(i.queued_at) / 60;
        ctx.out.say(format!(
            "to {} via {}  queued {age_min} min ago, {} attempt(s)",
            i.to, i.relay, i.attempts
        ));
        ctx.out.emit(json!({"type": "outbox_item", "deposit_id": i.deposit_id.to_string(), "to": i.to, "relay": i.relay, "queued_at": i.queued_at, "attempts": i.attempts}));
    }
    Ok(())
}

/// Try to deliver everything queued.
pub async fn flush_all(ctx: &Ctx) -> Result<FlushSummary> {
    let items = outbox(&ctx.home)?;
    if items.is_empty() {
        ctx.out.say("Outbox is empty.");
        ctx.out
            .emit(json!({"type": "outbox_flushed", "sent": 0, "pending": 0}));
        return Ok(FlushSummary::default());
    }
    flush(ctx, items).await
}

/// Deliver `items`, grouped by relay so each relay gets one connection. Returns an error (after
/// delivering what it could) when anything is still pending, so the exit code says so.
pub async fn flush(ctx: &Ctx, items: Vec<OutboxItem>) -> Result<FlushSummary> {
    let mut by_relay: BTreeMap<(String, String), Vec<OutboxItem>> = BTreeMap::new();
    for i in items {
        by_relay
            .entry((i.relay.clone(), i.relay_fingerprint.to_string()))
            .or_default()
            .push(i);
    }
    let mut summary = FlushSummary::default();
    let mut first_error: Option<anyhow::Error> = None;
    for ((relay, _), mut group) in by_relay {
        let fp = group[0].relay_fingerprint;
        let client = match RelayClient::connect(&relay, &fp).await {
            Ok(c) => c,
            Err(e) => {
                for item in &mut group {
                    item.attempts += 1;
                    item.save(&ctx.home)?;
                }
                summary.pending += group.len();
                first_error.get_or_insert(anyhow::Error::from(e));
                continue;
            }
        };
        for item in &mut group {
            let envelope = item.envelope()?;
            match client
                .deposit(&item.mailbox, &item.deposit_id, &envelope)
                .await
            {
                Ok(()) => {
                    item.remove(&ctx.home)?;
                    ctx.out.say(format!(
                        "Delivered to the relay for {} (stored on its disk).",
                        item.to
                    ));
                    ctx.out.emit(json!({"type": "stored", "to": item.to, "deposit_id": item.deposit_id.to_string()}));
                    summary.sent.push(item.to.clone());
                }
                Err(e) => {
                    item.attempts += 1;
                    item.save(&ctx.home)?;
                    summary.pending += 1;
                    first_error.get_or_insert(anyhow::Error::from(e));
                }
            }
        }
        client.close().await;
    }
    ctx.out.emit(
        json!({"type": "outbox_flushed", "sent": summary.sent.len(), "pending": summary.pending}),
    );
    match first_error {
        Some(e) => Err(e.context(format!(
            "{} report copy(ies) wait in the outbox for `vigil outbox flush`",
            summary.pending
        ))),
        None => Ok(summary),
    }
}
