//! Wait: hold the request of the mailbox key's holder until the mailbox has items, so a
//! watching NGO hears of a deposit within moments instead of polling with fetches.
//!
//! The answer (Pending, the item count) comes at once if the mailbox holds items; otherwise when
//! a deposit into it is stored and durable (the deposit handlers wake the mailbox's waiters after
//! the store returned; a released check-in alert wakes them all), or with a count of zero when
//! the wait granted ends or the relay shuts down. A wake is checked against the store before it
//! is answered, so a wake for another reason only sends the waiter back to waiting.
//!
//! The slot: at most `max_waiters_per_mailbox` at once per mailbox (Busy beyond, with a message
//! that says so), each one a request in flight on its connection (counted against
//! `max_streams_per_connection`), given back as soon as the client is gone (QUIC) or the wait
//! ends, whichever is first.

use super::{Admission, BodySource, Ctx, Failure, ReplySink, send};
use crate::waiters::Full;
use std::time::Duration;
use vigil_core::ids::MailboxId;
use vigil_core::wire::wait::{Pending, Wait};
use vigil_core::wire::{ErrorCode, Refusal};

/// Admitted as a fetch is (sharing its rate): a watcher asks about once a minute when nothing
/// happens, and once per wake, far below the fetch rate; a proof guards the rest.
pub(super) const ADMISSION: Admission = super::fetch::ADMISSION;

pub(super) async fn handle(
    cx: &Ctx<'_>,
    req: Wait,
    _: &mut dyn BodySource,
    reply: &mut dyn ReplySink,
) -> Result<(), Failure> {
    let shared = cx.shared;
    cx.authorise(&req).await?;
    let waiter = shared.waiters.join(req.mailbox).map_err(too_many)?;
    let granted = Duration::from_secs(u64::from(shared.waiters.granted(req.wait_secs)));
    let deadline = tokio::time::Instant::now() + granted;
    let items = loop {
        // Listening before looking: a deposit stored between the look and the wait still wakes.
        let woken = waiter.wake().notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let items = pending(cx, req.mailbox).await?;
        if items > 0 || waiter.is_closing() {
            break items;
        }
        tokio::select! {
            () = &mut woken => {}
            () = tokio::time::sleep_until(deadline) => break 0,
            () = waiter.closing() => break 0,
            // Nobody to answer: give the slot back now rather than at the deadline.
            () = reply.gone() => return Err(Failure::Abandoned),
        }
    };
    drop(waiter);
    tracing::debug!(items, "wait answered");
    send(reply, &Pending { items }).await
}

/// Items waiting in `mailbox` (an in-memory count in the stores).
async fn pending(cx: &Ctx<'_>, mailbox: MailboxId) -> Result<u64, Failure> {
    let shared = cx.shared;
    let usage = (shared.store.usage(mailbox).await).map_err(|e| shared.store_failed(e))?;
    Ok(usage.items)
}

/// The refusal of a wait beyond the limits.
fn too_many(full: Full) -> Refusal {
    let message = match full {
        Full::Mailbox(n) => format!(
            "this mailbox already has {n} watchers waiting at this relay, its maximum; stop one \
             (another `vigil inbox watch`?) or try again later"
        ),
        Full::Relay => "the relay is holding its maximum of waiting watchers; try again later"
            .to_string(),
    };
    Refusal::new(ErrorCode::Busy, message)
}

#[cfg(test)]
mod tests {
    use super::super::{handle, ConnState, Outcome, Shared};
    use crate::body::Buffered;
    use crate::store::{MemoryStore, Quota, Store};
    use ed25519_dalek::SigningKey;
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    use vigil_core::ids::{DepositId, MailboxId};
    use vigil_core::wire::auth;
    use vigil_core::wire::challenge::Challenge;
    use vigil_core::wire::deposit::Deposit;
    use vigil_core::wire::wait::{self, Pending, Wait};
    use vigil_core::wire::{decode_response_frame, ErrorCode, Request, Response};

    const EXPORTER: [u8; 32] = [5; 32];

    struct Relay {
        shared: Shared,
        conn: ConnState,
        key: SigningKey,
        mailbox: MailboxId,
    }

    async fn relay(per_mailbox: usize, max_wait_secs: u16) -> Arc<Relay> {
        let store = MemoryStore::new(Duration::from_secs(3600), Quota::default());
        let key = SigningKey::from_bytes(&[3; 32]);
        let pk = key.verifying_key().to_bytes();
        let mailbox = MailboxId::for_key(&pk);
        store.register(mailbox, pk, None).await.unwrap();
        let shared = Shared::new(Arc::new(store)).with_waiters(per_mailbox, max_wait_secs);
        Arc::new(Relay {
            shared,
            conn: ConnState::new(EXPORTER),
            key,
            mailbox,
        })
    }

    impl Relay {
        async fn call(&self, req: Request, body: Vec<u8>) -> (Response, Outcome) {
            let mut reply = Vec::new();
            let body = &mut Buffered::new(body);
            let outcome = handle(&self.shared, &self.conn, req, body, &mut reply).await;
            (decode_response_frame(&reply).unwrap(), outcome)
        }

        async fn wait(&self, secs: u16) -> Response {
            let nonce = match self.call(Request::Challenge(Challenge), Vec::new()).await.0 {
                Response::ChallengeNonce(n) => n.nonce,
                other => panic!("{other:?}"),
            };
            let d = Wait::digest(secs);
            let proof = auth::sign(&self.key, wait::PURPOSE, &EXPORTER, &nonce, &self.mailbox, &d);
            let req = Wait {
                mailbox: self.mailbox,
                wait_secs: secs,
                proof,
            };
            self.call(Request::Wait(req), Vec::new()).await.0
        }

        async fn deposit(&self, d: u8) {
            let head = Deposit {
                mailbox: self.mailbox,
                deposit_id: DepositId([d; 16]),
                envelope_len: 3,
            };
            let (r, _) = self.call(Request::Deposit(head), b"env".to_vec()).await;
            assert!(matches!(r, Response::Stored(_)), "{r:?}");
        }

        async fn until_waiting(&self, n: usize) {
            while self.shared.waiters.waiting_on(&self.mailbox) < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }

    #[tokio::test]
    async fn a_mailbox_with_items_is_answered_at_once() {
        let r = relay(4, 60).await;
        r.deposit(1).await;
        let t = Instant::now();
        assert_eq!(r.wait(60).await, Response::Pending(Pending { items: 1 }));
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_waiter_is_woken_by_a_deposit_and_only_then() {
        let r = relay(4, 60).await;
        let waiting = tokio::spawn({
            let r = r.clone();
            async move { r.wait(60).await }
        });
        r.until_waiting(1).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "nothing stored: still waiting");
        let t = Instant::now();
        r.deposit(1).await;
        let answer = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken by the deposit")
            .unwrap();
        assert_eq!(answer, Response::Pending(Pending { items: 1 }));
        assert!(t.elapsed() < Duration::from_secs(1));
        assert_eq!(r.shared.waiters.mailboxes(), 0, "the waiter left");
    }

    #[tokio::test]
    async fn a_released_alert_wakes_every_waiter_to_look_again() {
        let r = relay(4, 60).await;
        let waiting = tokio::spawn({
            let r = r.clone();
            async move { r.wait(60).await }
        });
        r.until_waiting(1).await;
        // A wake with nothing in this mailbox: it looks, and waits on.
        r.shared.waiters.wake_all();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished());
        r.deposit(1).await;
        let answer = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert_eq!(
            answer.expect("woken").unwrap(),
            Response::Pending(Pending { items: 1 })
        );
    }

    #[tokio::test]
    async fn the_waiter_beyond_the_limit_is_refused_busy_and_its_slot_is_free_again_later() {
        let r = relay(2, 60).await;
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let r = r.clone();
                tokio::spawn(async move { r.wait(60).await })
            })
            .collect();
        r.until_waiting(2).await;
        match r.wait(60).await {
            Response::Error(e) => {
                assert_eq!(e.code, ErrorCode::Busy);
                assert!(e.retryable);
                assert!(e.message.contains("2 watchers"), "{}", e.message);
            }
            other => panic!("{other:?}"),
        }
        r.deposit(1).await;
        for w in waiters {
            assert_eq!(w.await.unwrap(), Response::Pending(Pending { items: 1 }));
        }
        assert_eq!(r.shared.waiters.mailboxes(), 0);
        assert_eq!(r.wait(60).await, Response::Pending(Pending { items: 1 }));
    }

    #[tokio::test]
    async fn the_wait_ends_with_nothing_at_the_relays_limit_or_when_it_shuts_down() {
        let r = relay(4, 1).await;
        let t = Instant::now();
        // Asked for 60 s; this relay grants 1.
        assert_eq!(r.wait(60).await, Response::Pending(Pending { items: 0 }));
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(5), "{took:?}");
        let r = relay(4, 60).await;
        let waiting = tokio::spawn({
            let r = r.clone();
            async move { r.wait(60).await }
        });
        r.until_waiting(1).await;
        r.shared.waiters.close();
        let answer = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert_eq!(
            answer.expect("answered at shutdown").unwrap(),
            Response::Pending(Pending { items: 0 })
        );
    }

    #[tokio::test]
    async fn a_wait_without_a_good_proof_is_refused_and_holds_no_slot() {
        let r = relay(4, 60).await;
        let req = Wait {
            mailbox: r.mailbox,
            wait_secs: 5,
            proof: vigil_core::wire::Proof {
                nonce: [1; 32],
                signature: [2; 64],
            },
        };
        match r.call(Request::Wait(req), Vec::new()).await.0 {
            Response::Error(e) => assert_eq!(e.code, ErrorCode::BadProof),
            other => panic!("{other:?}"),
        }
        assert_eq!(r.shared.waiters.mailboxes(), 0);
    }
}
