//! Who is waiting for which mailbox (the Wait request, `handlers/wait.rs`), and waking them when
//! something is stored there.
//!
//! The store knows nothing of waiters: the handler layer wakes them after a store call returned,
//! that is, once the deposit is durable (`handlers/deposit.rs`, `handlers/deposit_blobs.rs`). A
//! check-in alert's release puts envelopes into mailboxes the release path does not name, so it
//! wakes every waiter ([`Waiters::wake_all`]); each looks at its own mailbox again and goes back
//! to waiting if it is still empty. A wake is a hint, never a promise: a waiter always asks the
//! store before it answers, so a wake too many costs one in-memory look-up and a wake missed
//! costs at most the rest of the wait.
//!
//! Bounded, and nothing left behind: a mailbox has an entry only while someone waits on it (the
//! [`Waiter`] guard removes it when the last one leaves, however the request ends), at most
//! `max_waiters_per_mailbox` wait on one mailbox, and at most [`Waiters::MAX_WAITING`] in all.
//! Every waiter is also a request in flight on a connection, so the connection limits
//! (`max_connections` x `max_streams_per_connection`) bound them too. Memory only: a seized
//! relay's disk says nothing about who was watching.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use vigil_core::ids::MailboxId;
use vigil_core::wire::limits::MAX_WAIT_SECS;

/// Default of the `max_waiters_per_mailbox` setting.
pub const DEFAULT_MAX_PER_MAILBOX: usize = 4;

/// Every mailbox someone is waiting on.
#[derive(Debug)]
pub struct Waiters {
    by_mailbox: Mutex<Map>,
    /// Most waiters on one mailbox.
    max_per_mailbox: usize,
    /// Longest wait the relay grants, seconds.
    max_wait_secs: u16,
    /// Cancelled when the relay shuts down: every waiter answers at once.
    closing: CancellationToken,
}

#[derive(Debug, Default)]
struct Map {
    entries: HashMap<MailboxId, Entry>,
    /// Waiters over all entries.
    total: usize,
}

#[derive(Debug)]
struct Entry {
    waiting: usize,
    wake: Arc<Notify>,
}

/// Why a wait was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Full {
    /// The mailbox has its maximum of waiters already.
    Mailbox(usize),
    /// The relay holds [`Waiters::MAX_WAITING`] waiters in all.
    Relay,
}

impl Default for Waiters {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_PER_MAILBOX, MAX_WAIT_SECS)
    }
}

impl Waiters {
    /// Most waiters in all, whatever the other limits allow: a backstop that errs towards a
    /// refusal (the client falls back to its next wait), never towards memory.
    pub const MAX_WAITING: usize = 65_536;

    /// At most `max_per_mailbox` waiters per mailbox, each waiting at most `max_wait_secs`
    /// (clamped to the protocol's maximum).
    pub fn new(max_per_mailbox: usize, max_wait_secs: u16) -> Self {
        Self {
            by_mailbox: Mutex::new(Map::default()),
            max_per_mailbox: max_per_mailbox.max(1),
            max_wait_secs: max_wait_secs.clamp(1, MAX_WAIT_SECS),
            closing: CancellationToken::new(),
        }
    }

    /// Most waiters per mailbox.
    pub fn max_per_mailbox(&self) -> usize {
        self.max_per_mailbox
    }

    /// The longest wait granted for one asking for `asked` seconds.
    pub fn granted(&self, asked: u16) -> u16 {
        asked.clamp(1, self.max_wait_secs)
    }

    /// Join the waiters of `mailbox`; the guard leaves when dropped.
    pub fn join(self: &Arc<Self>, mailbox: MailboxId) -> Result<Waiter, Full> {
        let mut guard = self.by_mailbox.lock().map_err(|_| Full::Relay)?;
        let m = &mut *guard;
        let wake = match m.entries.get_mut(&mailbox) {
            Some(e) if e.waiting >= self.max_per_mailbox => {
                return Err(Full::Mailbox(self.max_per_mailbox))
            }
            _ if m.total >= Self::MAX_WAITING => return Err(Full::Relay),
            Some(e) => {
                e.waiting += 1;
                e.wake.clone()
            }
            None => {
                let wake = Arc::new(Notify::new());
                m.entries.insert(
                    mailbox,
                    Entry {
                        waiting: 1,
                        wake: wake.clone(),
                    },
                );
                wake
            }
        };
        m.total += 1;
        Ok(Waiter {
            waiters: self.clone(),
            mailbox,
            wake,
        })
    }

    /// Wake whoever waits on `mailbox`: something was stored there (and is durable).
    pub fn wake(&self, mailbox: &MailboxId) {
        if let Ok(m) = self.by_mailbox.lock() {
            if let Some(e) = m.entries.get(mailbox) {
                e.wake.notify_waiters();
            }
        }
    }

    /// Wake every waiter: something was stored in mailboxes the caller does not name (a
    /// check-in alert was released). Each looks at its own mailbox again.
    pub fn wake_all(&self) {
        if let Ok(m) = self.by_mailbox.lock() {
            for e in m.entries.values() {
                e.wake.notify_waiters();
            }
        }
    }

    /// The relay is shutting down: every waiter answers now, and new ones do not wait.
    pub fn close(&self) {
        self.closing.cancel();
    }

    /// Waiters on `mailbox` now (for tests and stats).
    pub fn waiting_on(&self, mailbox: &MailboxId) -> usize {
        self.by_mailbox
            .lock()
            .map_or(0, |m| m.entries.get(mailbox).map_or(0, |e| e.waiting))
    }

    /// Mailboxes with waiters now (for tests and stats).
    pub fn mailboxes(&self) -> usize {
        self.by_mailbox.lock().map_or(0, |m| m.entries.len())
    }

    fn leave(&self, mailbox: &MailboxId) {
        let Ok(mut guard) = self.by_mailbox.lock() else {
            return;
        };
        let m = &mut *guard;
        if let Some(e) = m.entries.get_mut(mailbox) {
            e.waiting = e.waiting.saturating_sub(1);
            m.total = m.total.saturating_sub(1);
            if e.waiting == 0 {
                m.entries.remove(mailbox);
            }
        }
    }
}

/// One waiter on one mailbox; leaves when dropped.
#[derive(Debug)]
pub struct Waiter {
    waiters: Arc<Waiters>,
    mailbox: MailboxId,
    wake: Arc<Notify>,
}

impl Waiter {
    /// The mailbox's wake-up signal. Create the future (and `enable` it) *before* looking at
    /// the store, so a deposit stored between the look and the wait is not missed.
    pub fn wake(&self) -> &Notify {
        &self.wake
    }

    /// Completes when the relay shuts down.
    pub async fn closing(&self) {
        self.waiters.closing.cancelled().await
    }

    /// Whether the relay is shutting down.
    pub fn is_closing(&self) -> bool {
        self.waiters.closing.is_cancelled()
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.waiters.leave(&self.mailbox);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_mailbox_takes_its_maximum_of_waiters_and_forgets_them_when_they_leave() {
        let w = Arc::new(Waiters::new(2, 60));
        let (a, b) = (MailboxId([1; 32]), MailboxId([2; 32]));
        let one = w.join(a).unwrap();
        let two = w.join(a).unwrap();
        assert_eq!(w.join(a).unwrap_err(), Full::Mailbox(2));
        let other = w.join(b).unwrap();
        assert_eq!((w.waiting_on(&a), w.mailboxes()), (2, 2));
        drop(one);
        let three = w.join(a).unwrap();
        drop((two, three, other));
        assert_eq!(w.mailboxes(), 0, "no entry outlives its waiters");
    }

    #[test]
    fn the_wait_granted_is_within_the_relay_and_protocol_limits() {
        let w = Waiters::new(4, 20);
        assert_eq!((w.granted(5), w.granted(20), w.granted(60)), (5, 20, 20));
        assert_eq!(Waiters::new(4, 1000).granted(u16::MAX), MAX_WAIT_SECS);
    }

    #[tokio::test]
    async fn a_wake_reaches_the_waiters_of_that_mailbox_only() {
        let w = Arc::new(Waiters::default());
        let (a, b) = (MailboxId([1; 32]), MailboxId([2; 32]));
        let wa = w.join(a).unwrap();
        let wb = w.join(b).unwrap();
        let fa = wa.wake().notified();
        let fb = wb.wake().notified();
        tokio::pin!(fa, fb);
        fa.as_mut().enable();
        fb.as_mut().enable();
        w.wake(&a);
        tokio::time::timeout(Duration::from_secs(1), fa)
            .await
            .expect("woken");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), fb.as_mut())
                .await
                .is_err(),
            "the other mailbox sleeps on"
        );
        w.wake_all();
        tokio::time::timeout(Duration::from_secs(1), fb)
            .await
            .expect("woken by wake_all");
        w.close();
        assert!(wa.is_closing());
        tokio::time::timeout(Duration::from_secs(1), wa.closing())
            .await
            .expect("closing");
    }
}
