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
        ctx.out.say("inbox/rejected/ is empty.");
    }
    for e in &entries {
        ctx.out.say(format!(
            "{}  {:<7}  received {}  {}\n    {}",
            e.id,
            e.kind.as_str(),
            if e.received_at == 0 {
                "at an unknown time".to_string()
            } else {
                utc(e.received_at)
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
        ctx.out.say(format!(
            "{}, {} in all. `vigil inbox rejected clear` deletes the invalid and replayed ones; --all also those sealed for a missing staff key.",
            crate::output::count(entries.len() as u64, "kept envelope", "kept envelopes"),
            human_bytes(total)
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
    ctx.out.say(format!(
        "Deleted {} ({}) from inbox/rejected/.",
        crate::output::count(removed, "kept envelope", "kept envelopes"),
        human_bytes(bytes)
    ));
    if kept_no_key > 0 {
        ctx.out.say(format!(
            "Kept {} sealed for a staff key this inbox does not hold: they open once the key is back; --all deletes them too.",
            crate::output::count(kept_no_key, "envelope", "envelopes")
        ));
    }
    ctx.out.emit(json!({
        "type": "rejected_cleared", "removed": removed, "bytes": bytes, "kept_no_key": kept_no_key,
    }));
    Ok(())
}
