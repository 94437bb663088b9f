//! Check-in alerts in PostgreSQL: one `alerts` row each (the sled store's encoding: times, then
//! the Arm body as the wire encodes it), the quota they hold in their mailboxes' `sealed_*`
//! counters.
//!
//! Arming takes every envelope's quota in the arming transaction (all or nothing). A release is
//! one `DELETE ... RETURNING` of the alert followed, in the same transaction, by one item per
//! envelope: of two relays releasing the same alert, the second finds nothing and changes
//! nothing.
//!
//! Several relays: each relay schedules the alerts it armed or checked in to (and all of them
//! when it starts). A relay whose schedule is stale (another relay took a check-in that moved
//! the deadline) must not release on the old deadline, so a release for a missed check-in is
//! refused while the stored deadline is more than [`DEADLINE_SLACK_SECS`] ahead; the relay that
//! took the check-in holds the new deadline and releases it then.

use super::chunks::{self, Target};
use super::{backend, int, Inner};
use crate::store::sled_store::layout::{alert_of, alert_value};
use crate::store::{alert_deposit_id, Alert, AlertKeys, AlertTimes, Armed, StoreError};
use vigil_core::ids::AlertId;
use vigil_core::wire::policy::{coarse_minute, coarse_time};
use vigil_core::wire::{ReleaseNote, ReleaseReason};

/// How far a stored deadline may be ahead of a relay's clock when its schedule says "missed":
/// a deadline is rounded up to the second and `now` cut down, so the relay that set it can be
/// up to 2 s early by the wall clock; relays sharing a database keep their clocks in step (NTP).
pub(crate) const DEADLINE_SLACK_SECS: u64 = 5;

/// The alert with this id as stored, with `Repeat` or `AlertConflict` against `alert`.
fn repeat(stored: &[u8], alert: &Alert) -> Result<Armed, StoreError> {
    match alert_of(stored)?.arm == alert.arm {
        true => Ok(Armed::Repeat),
        false => Err(StoreError::AlertConflict),
    }
}

pub(crate) async fn arm(inner: &Inner, alert: Alert) -> Result<Armed, StoreError> {
    let id = &alert.arm.alert.0[..];
    let mut c = inner.conn().await?;
    let tx = c.transaction().await.map_err(backend)?;
    if let Some(r) = tx
        .query_opt("SELECT value FROM alerts WHERE id = $1", &[&id])
        .await
        .map_err(backend)?
    {
        return repeat(r.try_get(0).map_err(backend)?, &alert);
    }
    let mut envelopes: Vec<_> = alert.arm.envelopes.iter().collect();
    envelopes.sort_by_key(|e| e.mailbox.0);
    for e in envelopes {
        let m = &e.mailbox.as_bytes()[..];
        let len = int(e.envelope.len() as u64)?;
        let held = tx
            .execute(
                "UPDATE mailboxes SET sealed_items = sealed_items + 1,
                                      sealed_bytes = sealed_bytes + $2
                 WHERE id = $1 AND items + sealed_items + 1 <= $3
                   AND bytes + sealed_bytes + blob_bytes + $2 <= $4",
                &[
                    &m,
                    &len,
                    &int(inner.quota.max_items)?,
                    &int(inner.quota.max_bytes)?,
                ],
            )
            .await
            .map_err(backend)?;
        if held == 0 {
            let known = tx
                .query_opt("SELECT 1 FROM mailboxes WHERE id = $1", &[&m])
                .await
                .map_err(backend)?;
            return Err(match known {
                Some(_) => StoreError::QuotaExceeded,
                None => StoreError::UnknownMailbox,
            });
        }
    }
    let inserted = tx
        .execute(
            "INSERT INTO alerts (id, deadline, value) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO NOTHING",
            &[&id, &int(alert.deadline)?, &alert_value(&alert)],
        )
        .await
        .map_err(backend)?;
    if inserted == 0 {
        // Armed meanwhile through another connection: that one holds the quota.
        drop(tx);
        let r = c
            .query_one("SELECT value FROM alerts WHERE id = $1", &[&id])
            .await
            .map_err(backend)?;
        return repeat(r.try_get(0).map_err(backend)?, &alert);
    }
    inner.commit(tx).await?;
    inner.totals.change(|t| t.alerts += 1);
    Ok(Armed::New)
}

pub(crate) async fn keys(inner: &Inner, id: AlertId) -> Result<Option<AlertKeys>, StoreError> {
    let c = inner.conn().await?;
    let Some(r) = c
        .query_opt("SELECT value FROM alerts WHERE id = $1", &[&&id.0[..]])
        .await
        .map_err(backend)?
    else {
        return Ok(None);
    };
    let a = alert_of(r.try_get(0).map_err(backend)?)?;
    Ok(Some(AlertKeys {
        checkin: a.arm.checkin_key,
        duress: a.arm.duress_key,
        every: a.arm.every,
        grace: a.arm.grace,
    }))
}

pub(crate) async fn check_in(
    inner: &Inner,
    id: AlertId,
    deadline: u64,
    now: u64,
) -> Result<bool, StoreError> {
    let mut c = inner.conn().await?;
    let tx = c.transaction().await.map_err(backend)?;
    let Some(r) = tx
        .query_opt(
            "SELECT value FROM alerts WHERE id = $1 FOR UPDATE",
            &[&&id.0[..]],
        )
        .await
        .map_err(backend)?
    else {
        return Ok(false);
    };
    let mut a = alert_of(r.try_get(0).map_err(backend)?)?;
    a.deadline = deadline;
    a.last_checkin_at = coarse_minute(now);
    tx.execute(
        "UPDATE alerts SET deadline = $2, value = $3 WHERE id = $1",
        &[&&id.0[..], &int(deadline)?, &alert_value(&a)],
    )
    .await
    .map_err(backend)?;
    inner.commit(tx).await?;
    Ok(true)
}

pub(crate) async fn release(
    inner: &Inner,
    id: AlertId,
    reason: ReleaseReason,
    now: u64,
) -> Result<bool, StoreError> {
    let mut c = inner.conn().await?;
    let tx = c.transaction().await.map_err(backend)?;
    let Some(r) = tx
        .query_opt(
            "DELETE FROM alerts WHERE id = $1 RETURNING value",
            &[&&id.0[..]],
        )
        .await
        .map_err(backend)?
    else {
        return Ok(false);
    };
    let alert = alert_of(r.try_get(0).map_err(backend)?)?;
    if reason == ReleaseReason::Missed && alert.deadline > now.saturating_add(DEADLINE_SLACK_SECS) {
        // Checked in through another relay since this one scheduled it: not due (rolled back).
        return Ok(false);
    }
    let note = ReleaseNote::encode_opt(Some(&alert.note(reason, now)));
    let deposit_id = alert_deposit_id(&id);
    let d = &deposit_id.0[..];
    let time = int(coarse_time(now))?;
    let mut envelopes: Vec<_> = alert.arm.envelopes.iter().collect();
    envelopes.sort_by_key(|e| e.mailbox.0);
    let (mut items, mut bytes) = (0u64, 0u64);
    for e in envelopes {
        let m = &e.mailbox.as_bytes()[..];
        let len = e.envelope.len() as u64;
        // A deposit under the same id (never in practice) keeps its place; a mailbox forgotten
        // since arming (its lifetime ended) gets nothing.
        let placed = tx
            .execute(
                "INSERT INTO deposits (mailbox, deposit_id, place, len, time, note)
                 SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM mailboxes WHERE id = $1)
                 ON CONFLICT DO NOTHING",
                &[
                    &m,
                    &d,
                    &super::deposits::place_for(e.envelope.len()),
                    &int(len)?,
                    &time,
                    &&note[..],
                ],
            )
            .await
            .map_err(backend)?;
        if placed > 0 {
            chunks::write_all(&tx, Target::Envelope(m, d), &e.envelope).await?;
        }
        let (n, b) = if placed > 0 {
            (1i64, int(len)?)
        } else {
            (0, 0)
        };
        tx.execute(
            "UPDATE mailboxes SET sealed_items = greatest(sealed_items - 1, 0),
                                  sealed_bytes = greatest(sealed_bytes - $2, 0),
                                  items = items + $3, bytes = bytes + $4
             WHERE id = $1",
            &[&m, &int(len)?, &n, &b],
        )
        .await
        .map_err(backend)?;
        if placed > 0 {
            items += 1;
            bytes += len;
        }
    }
    // Every relay's waiters look at their mailboxes again once this commits.
    tx.execute("SELECT pg_notify($1, '')", &[&super::notify::CHANNEL])
        .await
        .map_err(backend)?;
    inner.commit(tx).await?;
    inner.totals.change(|t| {
        t.alerts = t.alerts.saturating_sub(1);
        t.items += items;
        t.bytes += bytes;
    });
    Ok(true)
}

pub(crate) async fn disarm(inner: &Inner, id: AlertId) -> Result<bool, StoreError> {
    let mut c = inner.conn().await?;
    let tx = c.transaction().await.map_err(backend)?;
    let Some(r) = tx
        .query_opt(
            "DELETE FROM alerts WHERE id = $1 RETURNING value",
            &[&&id.0[..]],
        )
        .await
        .map_err(backend)?
    else {
        return Ok(false);
    };
    if let Ok(a) = alert_of(r.try_get(0).map_err(backend)?) {
        let mut envelopes: Vec<_> = a.arm.envelopes.iter().collect();
        envelopes.sort_by_key(|e| e.mailbox.0);
        for e in envelopes {
            tx.execute(
                "UPDATE mailboxes SET sealed_items = greatest(sealed_items - 1, 0),
                                      sealed_bytes = greatest(sealed_bytes - $2, 0)
                 WHERE id = $1",
                &[&&e.mailbox.as_bytes()[..], &int(e.envelope.len() as u64)?],
            )
            .await
            .map_err(backend)?;
        }
    }
    inner.commit(tx).await?;
    inner
        .totals
        .change(|t| t.alerts = t.alerts.saturating_sub(1));
    Ok(true)
}

pub(crate) async fn times(inner: &Inner) -> Result<Vec<AlertTimes>, StoreError> {
    let c = inner.conn().await?;
    let rows = c
        .query("SELECT value FROM alerts", &[])
        .await
        .map_err(backend)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let a = alert_of(r.try_get(0).map_err(backend)?)?;
        out.push(AlertTimes {
            id: a.arm.alert,
            grace: a.arm.grace,
            deadline: a.deadline,
        });
    }
    Ok(out)
}
