//! When check-in alerts are released: the relay's schedule of deadlines and the task that keeps
//! it (`docs/protocol.md`, "Check-in alerts", "Time").
//!
//! The store keeps each alert's deadline as a wall-clock time, durably, with every change (rule
//! 1: a restart never forgets an alert). While the relay runs, this module measures the time to
//! each deadline on the monotonic clock, from the moment it last read or set it (rule 2: a wall
//! clock jumping forward does not release early, one jumping back does not delay). When the
//! relay starts it reads every stored deadline once and gives each alert at least its `grace`
//! from now (rule 3, [`resume_after_restart`]): a restart delays a release by at most `grace`
//! and never drops one.
//!
//! Every change to an alert (arm, check-in, release, disarm) happens under the schedule's lock,
//! store write included, so a check-in and a release of the same alert can never interleave: a
//! check-in that got the lock first moves the deadline before the release task looks, and one
//! that got it after finds the alert released (and is refused, as for an unknown alert).

use crate::store::{Store, StoreError};
use crate::waiters::Waiters;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vigil_core::ids::AlertId;
use vigil_core::wire::policy::resume_after_restart;
use vigil_core::wire::ReleaseReason;

/// The release task looks at the schedule at least this often, whatever it was told: a backstop
/// for a missed wake-up, and the bound on how late a release can be.
const MAX_SLEEP: Duration = Duration::from_millis(500);

/// After a release failed (storage), try that alert again this much later.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Each armed alert's deadline on the monotonic clock.
#[derive(Default)]
pub struct AlertSchedule {
    deadlines: Mutex<HashMap<AlertId, Instant>>,
    /// Tells the release task that a deadline changed.
    changed: Notify,
}

/// The schedule, locked: the one way to change an alert (see the module docs).
pub(crate) struct Locked<'a> {
    deadlines: MutexGuard<'a, HashMap<AlertId, Instant>>,
    changed: &'a Notify,
}

impl Locked<'_> {
    /// `id` is due `after` from now.
    pub(crate) fn set(&mut self, id: AlertId, after: Duration) {
        self.deadlines.insert(id, Instant::now() + after);
        self.changed.notify_one();
    }

    /// `id` is no longer armed.
    pub(crate) fn remove(&mut self, id: &AlertId) {
        self.deadlines.remove(id);
    }

    /// Time left until `id` is due, if it is scheduled.
    pub(crate) fn left(&self, id: &AlertId) -> Option<Duration> {
        let d = self.deadlines.get(id)?;
        Some(d.saturating_duration_since(Instant::now()))
    }
}

impl AlertSchedule {
    /// Lock the schedule.
    pub(crate) async fn lock(&self) -> Locked<'_> {
        Locked {
            deadlines: self.deadlines.lock().await,
            changed: &self.changed,
        }
    }

    /// Armed alerts scheduled (for tests and stats).
    pub async fn len(&self) -> usize {
        self.deadlines.lock().await.len()
    }

    /// Whether no alert is scheduled.
    pub async fn is_empty(&self) -> bool {
        self.len().await == 0
    }

    /// Read every armed alert from `store` when the relay starts, at wall-clock time `now`: each
    /// is due when its stored deadline says, but not sooner than its `grace` from now.
    pub async fn load(&self, store: &dyn Store, now: u64) -> Result<usize, StoreError> {
        let alerts = store.alerts().await?;
        let mut s = self.lock().await;
        for a in &alerts {
            let after = resume_after_restart(a.deadline, now, a.grace);
            s.set(a.id, Duration::from_secs(after));
        }
        Ok(alerts.len())
    }

    /// Schedule the armed alerts in `store` this relay does not know of yet, at wall-clock time
    /// `now`, as [`AlertSchedule::load`] does at start (when a store is shared, another relay
    /// may have armed them, and may be gone before their deadline); how many were new here.
    /// Alerts already scheduled keep their time: a check-in through another relay that moved
    /// a deadline makes this relay's release of the old one a refusal by the store (the alert
    /// then leaves this schedule and comes back with its new deadline at the next look).
    pub async fn adopt(&self, store: &dyn Store, now: u64) -> Result<usize, StoreError> {
        let alerts = store.alerts().await?;
        let mut s = self.lock().await;
        let mut new = 0;
        for a in &alerts {
            if s.deadlines.contains_key(&a.id) {
                continue;
            }
            let after = resume_after_restart(a.deadline, now, a.grace);
            s.set(a.id, Duration::from_secs(after));
            new += 1;
        }
        Ok(new)
    }

    /// Release every alert due by now, marked missed, at wall-clock time `now`; how many were
    /// released. An alert whose release failed stays scheduled, a little later.
    pub async fn release_due(&self, store: &dyn Store, now: u64) -> usize {
        let mut s = self.lock().await;
        let at = Instant::now();
        let due: Vec<AlertId> = (s.deadlines.iter())
            .filter(|(_, d)| **d <= at)
            .map(|(id, _)| *id)
            .collect();
        let mut released = 0;
        for id in due {
            match store.release(id, ReleaseReason::Missed, now).await {
                Ok(done) => {
                    s.remove(&id);
                    if done {
                        released += 1;
                        // No id: the log says that, not which.
                        tracing::info!(reason = "missed", "released a check-in alert");
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "releasing a check-in alert failed; retrying");
                    s.set(id, RETRY_AFTER);
                }
            }
        }
        released
    }

    /// When the release task should look next.
    async fn next_look(&self) -> Instant {
        let now = Instant::now();
        let d = self.deadlines.lock().await;
        let soonest = d.values().min().copied().unwrap_or(now + MAX_SLEEP);
        soonest.min(now + MAX_SLEEP)
    }

    /// Release alerts as they fall due, until cancelled; after a release, wake every waiter
    /// (a released alert's mailboxes are the store's to know, and each waiter looks at its own).
    pub(crate) async fn run(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        waiters: Arc<Waiters>,
        cancel: CancellationToken,
    ) {
        loop {
            let next = self.next_look().await;
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.changed.notified() => {}
                _ = tokio::time::sleep_until(next) => {}
            }
            if self.release_due(&*store, crate::clock::now_unix()).await > 0 {
                waiters.wake_all();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Alert, MemoryStore, Quota};
    use vigil_core::ids::MailboxId;
    use vigil_core::wire::arm::{AlertEnvelope, Arm};

    async fn store_with_alert(deadline: u64, grace: u32) -> (Arc<MemoryStore>, AlertId) {
        let s = Arc::new(MemoryStore::new(
            Duration::from_secs(3600),
            Quota::default(),
        ));
        let m = MailboxId::for_key(&[1; 32]);
        s.register(m, [1; 32], None).await.unwrap();
        let id = AlertId([9; 16]);
        let arm = Arm {
            alert: id,
            every: 1,
            grace,
            checkin_key: [2; 32],
            duress_key: [3; 32],
            envelopes: vec![AlertEnvelope {
                mailbox: m,
                envelope: b"sealed".to_vec(),
            }],
        };
        s.arm(Alert::armed(arm, 1000, deadline)).await.unwrap();
        (s, id)
    }

    #[tokio::test(start_paused = true)]
    async fn an_overdue_alert_waits_grace_after_a_restart_then_is_released() {
        // Stored deadline long past (the relay was down): not released at once.
        let (store, id) = store_with_alert(500, 30).await;
        let sched = AlertSchedule::default();
        assert_eq!(sched.load(&*store, 10_000).await.unwrap(), 1);
        assert_eq!(sched.release_due(&*store, 10_000).await, 0);
        let left = sched.lock().await.left(&id).unwrap();
        assert_eq!(left, Duration::from_secs(30));
        tokio::time::advance(Duration::from_secs(29)).await;
        assert_eq!(sched.release_due(&*store, 10_029).await, 0);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(sched.release_due(&*store, 10_030).await, 1);
        assert!(sched.is_empty().await);
        assert!(store.alerts().await.unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn adopting_schedules_only_alerts_not_yet_scheduled() {
        let (store, id) = store_with_alert(1100, 5).await;
        let sched = AlertSchedule::default();
        assert_eq!(
            sched.adopt(&*store, 1000).await.unwrap(),
            1,
            "armed elsewhere"
        );
        assert_eq!(sched.lock().await.left(&id), Some(Duration::from_secs(100)));
        // Scheduled already: its time stays as this relay set it.
        sched.lock().await.set(id, Duration::from_secs(7));
        assert_eq!(sched.adopt(&*store, 1050).await.unwrap(), 0);
        assert_eq!(sched.lock().await.left(&id), Some(Duration::from_secs(7)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_wall_clock_plays_no_part_once_loaded() {
        let (store, _) = store_with_alert(1100, 5).await;
        let sched = AlertSchedule::default();
        sched.load(&*store, 1000).await.unwrap();
        // The wall clock jumps a day forward: nothing is due on the monotonic clock.
        assert_eq!(sched.release_due(&*store, 1000 + 86_400).await, 0);
        tokio::time::advance(Duration::from_secs(100)).await;
        // ... and jumps back: the deadline still comes.
        assert_eq!(sched.release_due(&*store, 0).await, 1);
    }
}
