//! `vigil inbox status`, and the warning `fetch` gives when the mailbox at the relay fills up.

use super::Ctx;
use crate::relay::RelayClient;
use crate::state::Ngo;
use anyhow::Result;
use serde_json::json;
use vigil_core::wire::status::MailboxStatus;

/// Fill above which `fetch` and `status` warn.
const WARN_FILL: f64 = 0.8;

/// Show how full the mailbox is at each relay of the card. A relay that cannot be reached is
/// named in a one-line warning; the command fails only when none answers.
pub async fn status(ctx: &Ctx) -> Result<()> {
    let ngo = Ngo::load(&ctx.home)?;
    let relays = ngo.config.relays();
    let mut answered = false;
    let mut first_error = None;
    for relay in &relays {
        let st = async {
            let client =
                RelayClient::connect_pinned(&relay.addr, &relay.accepted_fingerprints()).await?;
            let st = client.status(ngo.mailbox_key.as_dalek()).await;
            client.close().await;
            st
        }
        .await;
        let st = match st {
            Ok(st) => st,
            Err(e) if relays.len() > 1 => {
                ctx.out.say(format!(
                    "{}: {}",
                    crate::t!("warning-prefix"),
                    crate::t!(
                        "inbox-status-unreachable",
                        relay = relay.addr.as_str(),
                        error = crate::failure::localized_relay_error(&e)
                    )
                ));
                ctx.out.emit(json!({
                    "type": "mailbox_status_unavailable", "relay": relay.addr, "error": e.to_string(),
                }));
                first_error.get_or_insert(e);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        answered = true;
        ctx.out.say(crate::t!(
            "inbox-status",
            relay = relay.addr.as_str(),
            items = (st.items),
            max_items = (st.max_items),
            bytes = human_bytes(st.bytes),
            max_bytes = human_bytes(st.max_bytes),
            fill = format!("{:.0}", st.fill() * 100.0),
            expiry = human_duration(st.expiry_secs)
        ));
        ctx.out.emit(json!({
            "type": "mailbox_status", "relay": relay.addr, "items": st.items, "bytes": st.bytes,
            "max_items": st.max_items, "max_bytes": st.max_bytes, "fill": st.fill(),
            "refused_full": st.refused_full, "expiry_secs": st.expiry_secs,
        }));
        warn_if_full(ctx, &st);
    }
    match (answered, first_error) {
        (false, Some(e)) => Err(e.into()),
        _ => Ok(()),
    }
}

/// Warn (on stderr for people, as a `mailbox_warning` object for `--json`) when the mailbox is
/// nearly full or has refused deposits because it was full.
pub(super) fn warn_if_full(ctx: &Ctx, st: &MailboxStatus) {
    let fill = st.fill();
    if st.refused_full > 0 {
        ctx.out
            .say(crate::t!("inbox-refused-full", count = (st.refused_full)));
    } else if fill >= WARN_FILL {
        ctx.out.say(crate::t!(
            "inbox-nearly-full",
            fill = format!("{:.0}", fill * 100.0)
        ));
    } else {
        return;
    }
    ctx.out.emit(json!({
        "type": "mailbox_warning", "fill": fill, "refused_full": st.refused_full,
        "advice": "run `vigil inbox fetch` until the mailbox is empty",
    }));
}

pub(super) fn human_bytes(n: u64) -> String {
    crate::display::bytes(n)
}

fn human_duration(secs: u64) -> String {
    match secs {
        s if s >= 2 * 86_400 => crate::t!("unit-days", n = (s / 86_400)),
        s if s >= 2 * 3600 => crate::t!("unit-hours", n = (s / 3600)),
        s => crate::t!("unit-seconds", n = s),
    }
}
