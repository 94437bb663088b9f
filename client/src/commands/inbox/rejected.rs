//! `vigil inbox rejected list|clear`: what `inbox/rejected/` holds, and emptying it by hand.

use super::status::human_bytes;
use super::utc;
use crate::cli::RejectedClearArgs;
use crate::commands::Ctx;
use crate::display;
use crate::home::now_unix;
use crate::state::{rejected_entries, rejected_remove, Ngo, RejectedKind};
use anyhow::Result;
use serde_json::json;

/// List the kept envelopes, oldest first.
pub fn list(ctx: &Ctx) -> Result<()> {
    Ngo::load(&ctx.home)?;
    let entries = rejected_entries(&ctx.home)?;
    if entries.is_empty() {
        ctx.out.say(crate::t!("rejected-empty"));
    }
    for e in &entries {
        ctx.out.say(format!(
            "{}  {:<7}  {}  {}\n    {}",
            e.id,
            e.kind.as_str(),
            if e.received_at == 0 {
                crate::t!("rejected-unknown-time")
            } else {
                crate::t!("rejected-received", when = utc(e.received_at))
            },
            human_bytes(e.bytes),
            display::line(&e.reason)
        ));
        ctx.out.emit(json!({
            "type": "rejected_item", "id": e.id, "kind": e.kind.as_str(), "reason": e.reason,
            "received_at": e.received_at, "bytes": e.bytes,
        }));
    }
    if !entries.is_empty() {
        let total: u64 = entries.iter().map(|e| e.bytes).sum();
        ctx.out.say(crate::t!(
            "rejected-total",
            count = (entries.len()),
            bytes = human_bytes(total)
        ));
    }
    Ok(())
}

/// Delete kept envelopes.
pub fn clear(ctx: &Ctx, a: RejectedClearArgs) -> Result<()> {
    Ngo::load(&ctx.home)?;
    let now = now_unix();
    let (mut removed, mut bytes, mut kept_no_key) = (0u64, 0u64, 0u64);
    for e in rejected_entries(&ctx.home)? {
        let old_enough = a
            .older_than
            .is_none_or(|d| e.received_at != 0 && now.saturating_sub(e.received_at) >= d.as_secs());
        if !old_enough {
            continue;
        }
        if e.kind == RejectedKind::NoKey && !a.all {
            kept_no_key += 1;
            continue;
        }
        rejected_remove(&ctx.home, &e.id)?;
        removed += 1;
        bytes += e.bytes;
    }
    ctx.out.say(crate::t!(
        "rejected-deleted",
        count = removed,
        bytes = human_bytes(bytes)
    ));
    if kept_no_key > 0 {
        ctx.out
            .say(crate::t!("rejected-kept-no-key", count = kept_no_key));
    }
    ctx.out.emit(json!({
        "type": "rejected_cleared", "removed": removed, "bytes": bytes, "kept_no_key": kept_no_key,
    }));
    Ok(())
}
