//! Relay policy decisions that need no I/O: per-mailbox quota, coarse receive times and expiry.
//! They live here, beside the limits, so they are tested without a disk or a clock, and a future
//! store implementation applies exactly the same rules.

use super::limits::{MAILBOX_LIFETIME_GRANULARITY_SECS, RECEIVE_TIME_GRANULARITY_SECS};

/// Per-mailbox limits: a flood of deposits into one mailbox fills only that mailbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// Most items a mailbox may hold.
    pub max_items: u64,
    /// Most envelope bytes a mailbox may hold.
    pub max_bytes: u64,
}

impl Default for Quota {
    /// 10 000 items / 4 GiB: far above what an NGO receives between two fetches, while a full
    /// mailbox still fits on a small server's disk.
    fn default() -> Self {
        Self {
            max_items: 10_000,
            max_bytes: 4 * 1024 * 1024 * 1024,
        }
    }
}

impl Quota {
    /// Whether a mailbox holding `items` items of `bytes` bytes may take one more of `len` bytes.
    pub fn allows(&self, items: u64, bytes: u64, len: u64) -> bool {
        items.saturating_add(1) <= self.max_items && bytes.saturating_add(len) <= self.max_bytes
    }
}

/// The receive time a relay records for something arriving at Unix time `now`: rounded down to
/// [`RECEIVE_TIME_GRANULARITY_SECS`], so a seized store gives no precise timeline.
pub fn coarse_time(now: u64) -> u64 {
    now - now % RECEIVE_TIME_GRANULARITY_SECS
}

/// The latest coarse receive time that has expired at `now` for an expiry of `expiry_secs`, or
/// `None` if nothing can have expired yet. An item received at coarse time `t` expires once
/// `t + expiry_secs <= now`.
pub fn expiry_cutoff(now: u64, expiry_secs: u64) -> Option<u64> {
    now.checked_sub(expiry_secs)
}

/// The expiry a relay keeps for a mailbox registered at `now` (Unix seconds) for `days` days:
/// the start of the UTC day `days + 1` days after `now`'s day. The mailbox is thus kept at least
/// `days` whole days (and less than one more), and the stored time says only a day.
pub fn mailbox_expiry(now: u64, days: u16) -> u64 {
    let day = MAILBOX_LIFETIME_GRANULARITY_SECS;
    (now - now % day).saturating_add((u64::from(days) + 1).saturating_mul(day))
}

/// `expires` rounded up to the start of a UTC day: what a store keeps of a mailbox's expiry,
/// whatever its caller computed.
pub fn coarse_expiry(expires: u64) -> u64 {
    let day = MAILBOX_LIFETIME_GRANULARITY_SECS;
    match expires % day {
        0 => expires,
        r => expires.saturating_add(day - r),
    }
}

/// A mailbox's expiry after a registration asked for `asked` (`None`: no lifetime, an NGO's
/// mailbox), given what it held (`None`: not registered; `Some(None)`: registered without a
/// lifetime). A registration never shortens a mailbox's life: the later expiry wins, and no
/// lifetime beats any.
pub fn merged_expiry(held: Option<Option<u64>>, asked: Option<u64>) -> Option<u64> {
    match (held, asked) {
        (Some(None), _) | (_, None) => None,
        (Some(Some(h)), Some(a)) => Some(h.max(a)),
        (None, Some(a)) => Some(a),
    }
}

/// Whole days from `now` until `expires`, as a Registered answer states them (at most
/// `u16::MAX`): a client may count on the mailbox for that long.
pub fn days_left(expires: u64, now: u64) -> u16 {
    let days = expires.saturating_sub(now) / MAILBOX_LIFETIME_GRANULARITY_SECS;
    u16::try_from(days).unwrap_or(u16::MAX)
}

/// Alert times (armed at, last check-in, released at) are kept to the minute: enough for an NGO
/// to know when someone went silent, and no finer timeline of a reporter's habits on the relay.
pub const ALERT_TIME_GRANULARITY_SECS: u64 = 60;

/// `now` rounded down to [`ALERT_TIME_GRANULARITY_SECS`].
pub fn coarse_minute(now: u64) -> u64 {
    now - now % ALERT_TIME_GRANULARITY_SECS
}

/// Seconds from arming or a check-in until the release, unless another check-in comes:
/// `every` (when the next check-in is due) plus `grace` (slack for a late one).
pub fn alert_period(every: u32, grace: u32) -> u64 {
    u64::from(every) + u64::from(grace)
}

/// The wall-clock deadline after arming or a check-in at `now` (Unix seconds), rounded up.
///
/// `now` is whole seconds, cut down from the true time by up to a second; so is the relay's
/// clock when it reads the deadline back after a restart ([`resume_after_restart`]). One second
/// more makes the stored deadline never earlier than the true one, so a restart can release at
/// most a second late, never early (`docs/protocol.md`, "Time", rule 3).
pub fn alert_deadline(now: u64, every: u32, grace: u32) -> u64 {
    now.saturating_add(alert_period(every, grace))
        .saturating_add(1)
}

/// How long a relay that has just started waits before releasing an alert whose stored deadline
/// is `deadline`, at wall-clock time `now` (`docs/protocol.md`, "Time", rule 3).
///
/// Never less than `grace`: while the relay was down, its owner's check-ins failed through no
/// fault of theirs, so an alert that fell due meanwhile (or falls due sooner than its owner could
/// notice the relay is back) gets `grace` from the restart, and any check-in in that time moves
/// the deadline as usual. Never more than the time left or `grace`, whichever is longer: a
/// restart delays a release by at most `grace`, and never drops one.
pub fn resume_after_restart(deadline: u64, now: u64, grace: u32) -> u64 {
    deadline.saturating_sub(now).max(u64::from(grace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_counts_items_and_bytes() {
        let q = Quota {
            max_items: 2,
            max_bytes: 10,
        };
        assert!(q.allows(0, 0, 10));
        assert!(!q.allows(0, 0, 11));
        assert!(q.allows(1, 5, 5));
        assert!(!q.allows(2, 0, 1));
        assert!(!q.allows(u64::MAX, u64::MAX, u64::MAX), "no overflow");
    }

    #[test]
    fn alert_deadlines_and_restarts() {
        assert_eq!(coarse_minute(119), 60);
        // Armed at 1000.0 to 1000.99: due at 1006.0 to 1006.99; stored as 1007, never earlier.
        assert_eq!(alert_deadline(1000, 4, 2), 1007);
        assert_eq!(alert_deadline(u64::MAX, 4, 2), u64::MAX, "no overflow");
        // Not yet due: the time left, or grace if that is longer.
        assert_eq!(resume_after_restart(1100, 1000, 30), 100);
        assert_eq!(resume_after_restart(1010, 1000, 30), 30);
        // Overdue (the relay was down, or its clock jumped forward): grace from now.
        assert_eq!(resume_after_restart(900, 1000, 30), 30);
        assert_eq!(resume_after_restart(0, u64::MAX, 1), 1);
    }

    #[test]
    fn mailbox_lifetimes_are_whole_days_and_never_shrink() {
        const D: u64 = MAILBOX_LIFETIME_GRANULARITY_SECS;
        // Registered at 10:00 on day 100 for 3 days: gone at the start of day 104, so kept at
        // least 3 whole days, and the relay answers 3.
        let now = 100 * D + 10 * 3600;
        assert_eq!(mailbox_expiry(now, 3), 104 * D);
        assert_eq!(days_left(mailbox_expiry(now, 3), now), 3);
        assert_eq!(mailbox_expiry(100 * D, 3), 104 * D, "at midnight too");
        assert_eq!(days_left(104 * D, 100 * D), 4);
        assert_eq!(mailbox_expiry(u64::MAX, u16::MAX), u64::MAX, "no overflow");
        assert_eq!(days_left(0, 5), 0);
        assert_eq!(days_left(u64::MAX, 0), u16::MAX);
        assert_eq!(coarse_expiry(104 * D), 104 * D);
        assert_eq!(coarse_expiry(104 * D + 1), 105 * D);
        assert_eq!(coarse_expiry(u64::MAX), u64::MAX);
        // Later wins; no lifetime wins over any; nothing held takes what is asked.
        assert_eq!(merged_expiry(None, Some(5)), Some(5));
        assert_eq!(merged_expiry(None, None), None);
        assert_eq!(merged_expiry(Some(Some(9)), Some(5)), Some(9));
        assert_eq!(merged_expiry(Some(Some(5)), Some(9)), Some(9));
        assert_eq!(merged_expiry(Some(None), Some(9)), None);
        assert_eq!(merged_expiry(Some(Some(5)), None), None);
    }

    #[test]
    fn times_are_coarse_and_expiry_is_inclusive() {
        assert_eq!(coarse_time(7199), 3600);
        assert_eq!(coarse_time(7200), 7200);
        assert_eq!(expiry_cutoff(100, 200), None);
        assert_eq!(expiry_cutoff(300, 200), Some(100));
    }
}

/// What a relay does with an Upload (`docs/protocol.md`, "Upload"), decided without I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadStep {
    /// Append the chunk at the offset the relay holds.
    Write,
    /// Write nothing and answer the blob's durable length: the offset is not where the blob
    /// ends (a resume probe, a repeat, or a client that lost track), or the chunk is empty.
    Answer(u64),
    /// The upload names another total than the blob's first upload did: refuse it.
    TotalMismatch {
        /// The total the relay holds.
        held: u64,
    },
}

/// The step for an upload of `chunk_len` bytes at `offset` of a blob of `total` bytes, given
/// what the relay holds of the blob (`(total, durable length)`, or nothing yet). The chunk is
/// within `total` (the wire decoder checked that).
pub fn upload_step(
    held: Option<(u64, u64)>,
    total: u64,
    offset: u64,
    chunk_len: usize,
) -> UploadStep {
    let (held_total, have) = held.unwrap_or((total, 0));
    if held_total != total {
        return UploadStep::TotalMismatch { held: held_total };
    }
    if offset != have || chunk_len == 0 {
        return UploadStep::Answer(have);
    }
    UploadStep::Write
}

#[cfg(test)]
mod upload_tests {
    use super::*;

    #[test]
    fn uploads_append_only_where_the_blob_ends() {
        assert_eq!(upload_step(None, 10, 0, 4), UploadStep::Write);
        assert_eq!(
            upload_step(None, 10, 0, 0),
            UploadStep::Answer(0),
            "the probe"
        );
        assert_eq!(upload_step(None, 10, 4, 4), UploadStep::Answer(0));
        assert_eq!(upload_step(Some((10, 4)), 10, 4, 6), UploadStep::Write);
        assert_eq!(upload_step(Some((10, 4)), 10, 0, 4), UploadStep::Answer(4));
        assert_eq!(
            upload_step(Some((10, 10)), 10, 10, 0),
            UploadStep::Answer(10)
        );
        assert_eq!(
            upload_step(Some((10, 4)), 11, 4, 1),
            UploadStep::TotalMismatch { held: 10 }
        );
    }
}
