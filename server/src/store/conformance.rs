//! The store conformance suite: what every [`Store`] must do, run against every backend.
//!
//! A backend implements [`Backend`] (how to open a store in a directory) and invokes
//! [`conformance_tests!`] in its tests; each case below becomes one test for it. A second
//! backend (a distributed database, say) is ready when it passes all of them.
//!
//! Cases: deposit and repeat; a repeat or a refusal answered without reading the envelope;
//! fetch order and limits; reading envelopes in pieces; ack; expiry; quota; bad bodies leave
//! nothing; concurrent repeats store once; and, for a backend that claims durability across a
//! restart, that what was acknowledged as stored survives a reopen and an abandoned upload
//! does not. Check-in alerts: arming is idempotent and holds quota without showing as items; a
//! release turns every envelope into an item with its note, once; a disarm deletes; both
//! survive a reopen. Blobs: uploads resume at the durable offset and refuse another total; a
//! deposit waits for complete blobs; one copy shared by two mailboxes' items, deleted after the
//! last ack; unreferenced blobs expire; blob bytes count against the quota; all of it survives
//! a reopen. Mailbox lifetimes: kept to the day and never shortened by a registration; a
//! mailbox past its lifetime is forgotten with its items, tombstones and blob references while
//! mailboxes without one stay; lifetimes survive a reopen. Prekeys: one bundle per registered
//! mailbox, replaced by the next, gone with the mailbox, kept across a reopen.

use super::{Alert, Armed, Deposited, ItemMeta, Quota, Store, StoreError};
use crate::body::testing::Pieces;
use crate::body::BodyError;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use vigil_core::ids::{AlertId, BlobId, DepositId, ItemId, MailboxId};
use vigil_core::wire::arm::{AlertEnvelope, Arm};
use vigil_core::wire::deposit::Deposit;
use vigil_core::wire::limits::RECEIVE_TIME_GRANULARITY_SECS;
use vigil_core::wire::upload::Upload;
use vigil_core::wire::{ReleaseNote, ReleaseReason};

/// One day, in seconds.
pub(crate) const DAY: u64 = 24 * 3600;
/// An envelope length every backend keeps "small".
pub(crate) const SMALL: usize = 3000;
/// An envelope length past `LARGE_ENVELOPE_MIN`: listed after every small one.
pub(crate) const LARGE: usize = 300_000;

/// How to open a store of one backend.
pub(crate) trait Backend: Sync {
    /// A store in `dir` (fresh, or reopened with what an earlier one left there).
    fn open(&self, dir: &Path, quota: Quota, expiry: Duration) -> Arc<dyn Store>;
    /// Whether what a store acknowledged survives dropping it and opening the directory again.
    fn durable(&self) -> bool;
    /// Whether the backend can run here; one that cannot (no database server for the tests)
    /// says why, and fails instead under `CI=true`.
    fn available(&self) -> bool {
        true
    }
}

/// Generate one `#[tokio::test]` per conformance case for `$backend` (an expression of a type
/// implementing [`Backend`]).
macro_rules! conformance_tests {
    ($backend:expr) => {
        $crate::store::conformance::conformance_tests!(@cases $backend;
            deposit_is_idempotent_per_mailbox_and_deposit_id,
            repeats_and_refusals_are_answered_without_reading_the_envelope,
            fetch_lists_small_before_large_within_limits,
            envelopes_read_back_in_pieces,
            ack_deletes_own_items_and_keeps_the_id_remembered,
            expiry_removes_old_items_and_their_ids,
            quota_counts_items_and_bytes,
            usage_shows_what_waits_against_the_quota,
            bad_bodies_store_nothing_and_can_be_sent_again,
            concurrent_repeats_store_once,
            acknowledged_state_survives_a_reopen,
            alerts_arm_once_and_hold_their_quota_unseen,
            a_release_makes_items_with_notes_once,
            a_disarm_deletes_the_alert_and_frees_its_quota,
            alerts_and_notes_survive_a_reopen,
            blob_uploads_resume_at_the_durable_offset,
            deposits_with_blobs_wait_for_complete_blobs_and_share_them,
            unreferenced_blobs_expire_and_item_expiry_frees_blobs,
            blob_bytes_count_against_the_quota,
            blobs_and_their_references_survive_a_reopen,
            mailbox_lifetimes_are_whole_days_and_never_shrink,
            an_expired_mailbox_is_forgotten_with_all_it_holds,
            mailbox_lifetimes_survive_a_reopen,
            prekeys_are_kept_per_mailbox_replaced_and_forgotten_with_it,
        );
    };
    (@cases $backend:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if !$crate::store::conformance::Backend::available(&$backend) {
                    return;
                }
                $crate::store::conformance::$case(&$backend).await;
            }
        )*
    };
}
pub(crate) use conformance_tests;

fn default_quota() -> Quota {
    Quota::default()
}

fn open(b: &dyn Backend, dir: &Path) -> Arc<dyn Store> {
    b.open(dir, default_quota(), Duration::from_secs(30 * DAY))
}

/// A registered mailbox.
pub(crate) async fn mailbox(s: &dyn Store, n: u8) -> MailboxId {
    let m = MailboxId::for_key(&[n; 32]);
    s.register(m, [n; 32], None).await.unwrap();
    m
}

/// Recognisable envelope bytes.
pub(crate) fn envelope(n: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31) ^ n).collect()
}

fn head(m: MailboxId, d: u8, len: usize) -> Deposit {
    Deposit {
        mailbox: m,
        deposit_id: DepositId([d; 16]),
        envelope_len: len,
    }
}

/// Deposit `env` under deposit id `d`, in uneven pieces as a network hands them over.
pub(crate) async fn deposit(
    s: &dyn Store,
    m: MailboxId,
    d: u8,
    env: &[u8],
    now: u64,
) -> Result<Deposited, StoreError> {
    let mut body = Pieces::exact(env, 7777);
    s.deposit(head(m, d, env.len()), now, &mut body).await
}

/// Every item of `m` that one listing returns, with its envelope read back.
pub(crate) async fn fetch_all(s: &dyn Store, m: MailboxId) -> Vec<(ItemId, Vec<u8>)> {
    let mut out = Vec::new();
    for item in s.list(m, 64, u64::MAX).await.unwrap() {
        out.push((item.id, read(s, m, item, 100_000).await.unwrap()));
    }
    out
}

/// Read an item's envelope in pieces of `piece` bytes; `None` if it is gone.
async fn read(s: &dyn Store, m: MailboxId, item: ItemMeta, piece: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    while (out.len() as u64) < item.len {
        let p = s.read(m, item, out.len() as u64, piece).await.unwrap()?;
        assert!(
            !p.is_empty() && p.len() <= piece,
            "a piece of {} bytes",
            p.len()
        );
        out.extend_from_slice(&p);
    }
    assert_eq!(out.len() as u64, item.len);
    Some(out)
}

pub(crate) async fn deposit_is_idempotent_per_mailbox_and_deposit_id(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(b, dir.path());
    let (m1, m2) = (mailbox(&*s, 1).await, mailbox(&*s, 2).await);
    for (d, len) in [(1u8, SMALL), (2, LARGE)] {
        let env = envelope(d, len);
        assert_eq!(deposit(&*s, m1, d, &env, DAY).await, Ok(Deposited::New));
        assert_eq!(
            deposit(&*s, m1, d, &env, 2 * DAY).await,
            Ok(Deposited::Repeat)
        );
        // The same deposit id in another mailbox is another deposit.
        assert_eq!(deposit(&*s, m2, d, &env, DAY).await, Ok(Deposited::New));
    }
    assert_eq!(
        deposit(&*s, MailboxId([9; 32]), 1, b"x", DAY).await,
        Err(StoreError::UnknownMailbox)
    );
    assert_eq!(s.mailbox_key(m1).await.unwrap(), Some([1; 32]));
    assert_eq!(s.mailbox_key(MailboxId([9; 32])).await.unwrap(), None);
    let st = s.stats();
    assert_eq!(
        (st.mailboxes, st.items, st.bytes),
        (2, 4, 2 * (SMALL + LARGE) as u64)
    );
    let got = fetch_all(&*s, m1).await;
    assert_eq!(got.len(), 2);
    assert_ne!(
        got[0].0,
        fetch_all(&*s, m2).await[0].0,
        "item ids differ per mailbox"
    );
}

pub(crate) async fn repeats_and_refusals_are_answered_without_reading_the_envelope(
    b: &dyn Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(b, dir.path());
    let m = mailbox(&*s, 1).await;
    for (d, len) in [(1u8, SMALL), (2, LARGE)] {
        let env = envelope(d, len);
        deposit(&*s, m, d, &env, DAY).await.unwrap();
        let mut body = Pieces::exact(&env, 1000);
        assert_eq!(
            s.deposit(head(m, d, len), DAY, &mut body).await,
            Ok(Deposited::Repeat)
        );
        assert_eq!(body.read, 0, "a repeat of {len} bytes was read");
        let mut body = Pieces::exact(&env, 1000);
        assert_eq!(
            s.deposit(head(MailboxId([9; 32]), d, len), DAY, &mut body)
                .await,
            Err(StoreError::UnknownMailbox)
        );
        assert_eq!(body.read, 0);
    }
}

pub(crate) async fn fetch_lists_small_before_large_within_limits(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(b, dir.path());
    let m = mailbox(&*s, 1).await;
    // Deposited large first: the small ones still come first.
    deposit(&*s, m, 1, &envelope(1, LARGE), DAY).await.unwrap();
    deposit(&*s, m, 2, &envelope(2, LARGE + 1), DAY)
        .await
        .unwrap();
    for d in 3..8u8 {
        deposit(&*s, m, d, &envelope(d, SMALL), DAY).await.unwrap();
    }
    let all = s.list(m, 64, u64::MAX).await.unwrap();
    let lens: Vec<u64> = all.iter().map(|i| i.len).collect();
    assert_eq!(&lens[..5], &[SMALL as u64; 5]);
    let mut large = lens[5..].to_vec();
    large.sort_unstable();
    assert_eq!(large, vec![LARGE as u64, LARGE as u64 + 1]);
    assert_eq!(
        s.list(m, 64, u64::MAX).await.unwrap(),
        all,
        "a stable order"
    );
    // Item and byte limits: a prefix of the order, never skipping an item that did not fit.
    assert_eq!(s.list(m, 3, u64::MAX).await.unwrap(), all[..3]);
    let budget = 5 * SMALL as u64 + LARGE as u64 - 1;
    assert_eq!(s.list(m, 64, budget).await.unwrap(), all[..5]);
    assert_eq!(s.list(m, 64, 1).await.unwrap(), all[..1], "at least one");
    let other = mailbox(&*s, 2).await;
    assert!(s.list(other, 64, u64::MAX).await.unwrap().is_empty());
}

pub(crate) async fn envelopes_read_back_in_pieces(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(b, dir.path());
    let m = mailbox(&*s, 1).await;
    let (small, large) = (envelope(1, SMALL), envelope(2, 3 * LARGE + 5));
    deposit(&*s, m, 1, &small, DAY).await.unwrap();
    deposit(&*s, m, 2, &large, DAY).await.unwrap();
    let items = s.list(m, 64, u64::MAX).await.unwrap();
    for piece in [1000, 65536, 1 << 20] {
        assert_eq!(read(&*s, m, items[0], piece).await.unwrap(), small);
        assert_eq!(read(&*s, m, items[1], piece).await.unwrap(), large);
    }
    // Past the end: nothing more.
    let end = s.read(m, items[0], SMALL as u64, 100).await.unwrap();
    assert!(end.is_some_and(|e| e.is_empty()));
}

pub(crate) async fn ack_deletes_own_items_and_keeps_the_id_remembered(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(b, dir.path());
    let (m1, m2) = (mailbox(&*s, 1).await, mailbox(&*s, 2).await);
    for (d, len) in [(1u8, SMALL), (2, LARGE)] {
        let env = envelope(d, len);
        deposit(&*s, m1, d, &env, DAY).await.unwrap();
        deposit(&*s, m2, d, &env, DAY).await.unwrap();
    }
    let items1 = s.list(m1, 64, u64::MAX).await.unwrap();
    let items2 = s.list(m2, 64, u64::MAX).await.unwrap();
    let ids2: Vec<ItemId> = items2.iter().map(|i| i.id).collect();
    assert_eq!(
        s.ack(m1, &ids2).await.unwrap(),
        0,
        "another mailbox's items"
    );
    let ids1: Vec<ItemId> = items1.iter().map(|i| i.id).collect();
    let twice: Vec<ItemId> = ids1.iter().chain(&ids1).copied().collect();
    assert_eq!(s.ack(m1, &twice).await.unwrap(), 2);
    assert!(s.list(m1, 64, u64::MAX).await.unwrap().is_empty());
    assert_eq!(s.list(m2, 64, u64::MAX).await.unwrap().len(), 2);
    for item in &items1 {
        assert_eq!(s.read(m1, *item, 0, 100).await.unwrap(), None, "gone");
    }
    // Late retries of the acknowledged deposits are recognised, not stored again.
    for (d, len) in [(1u8, SMALL), (2, LARGE)] {
        assert_eq!(
            deposit(&*s, m1, d, &envelope(d, len), DAY).await,
            Ok(Deposited::Repeat)
        );
    }
    assert!(s.list(m1, 64, u64::MAX).await.unwrap().is_empty());
    assert_eq!(s.stats().items, 2);
    assert_eq!(s.stats().bytes, (SMALL + LARGE) as u64);
}

pub(crate) async fn expiry_removes_old_items_and_their_ids(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(b, dir.path());
    let m = mailbox(&*s, 1).await;
    let t0 = 100 * DAY + 1234;
    deposit(&*s, m, 1, b"old", t0).await.unwrap();
    deposit(&*s, m, 2, &envelope(2, LARGE), t0).await.unwrap();
    deposit(&*s, m, 3, b"acked", t0).await.unwrap();
    deposit(&*s, m, 4, b"new", t0 + 20 * DAY).await.unwrap();
    let acked = s.list(m, 64, u64::MAX).await.unwrap();
    let acked: Vec<ItemId> = acked.iter().filter(|i| i.len == 5).map(|i| i.id).collect();
    assert_eq!(s.ack(m, &acked).await.unwrap(), 1);
    assert_eq!(s.expire(t0 + 29 * DAY).await.unwrap(), 0);
    // Times are kept coarse: everything from t0's hour expires together, 30 days after the
    // start of that hour.
    let due = t0 - t0 % RECEIVE_TIME_GRANULARITY_SECS + 30 * DAY;
    assert_eq!(s.expire(due - 1).await.unwrap(), 0);
    assert_eq!(s.expire(due).await.unwrap(), 2);
    let left = fetch_all(&*s, m).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].1, b"new");
    assert_eq!(s.stats().items, 1);
    // The expired and the acknowledged deposit ids are forgotten with their items.
    let later = t0 + 31 * DAY;
    assert_eq!(deposit(&*s, m, 1, b"old", later).await, Ok(Deposited::New));
    assert_eq!(
        deposit(&*s, m, 3, b"acked", later).await,
        Ok(Deposited::New)
    );
    assert_eq!(
        deposit(&*s, m, 4, b"new", later).await,
        Ok(Deposited::Repeat)
    );
    assert_eq!(s.expire(later + 30 * DAY).await.unwrap(), 3);
    assert_eq!(s.stats().items, 0);
}

pub(crate) async fn quota_counts_items_and_bytes(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let quota = Quota {
        max_items: 3,
        max_bytes: (2 * LARGE) as u64,
    };
    let s = b.open(dir.path(), quota, Duration::from_secs(30 * DAY));
    let m = mailbox(&*s, 1).await;
    deposit(&*s, m, 1, &envelope(1, LARGE), DAY).await.unwrap();
    let mut body = Pieces::exact(&envelope(2, LARGE + 1), 1000);
    assert_eq!(
        s.deposit(head(m, 2, LARGE + 1), DAY, &mut body).await,
        Err(StoreError::QuotaExceeded)
    );
    assert_eq!(body.read, 0, "refused before a byte arrives");
    deposit(&*s, m, 3, b"a", DAY).await.unwrap();
    deposit(&*s, m, 4, b"b", DAY).await.unwrap();
    assert_eq!(
        deposit(&*s, m, 5, b"c", DAY).await,
        Err(StoreError::QuotaExceeded),
        "items"
    );
    // A refused or repeated deposit leaves usage unchanged; an ack frees room.
    assert_eq!(s.stats().items, 3);
    assert_eq!(deposit(&*s, m, 3, b"a", DAY).await, Ok(Deposited::Repeat));
    let first = s.list(m, 1, u64::MAX).await.unwrap();
    s.ack(m, &[first[0].id]).await.unwrap();
    assert_eq!(deposit(&*s, m, 5, b"c", DAY).await, Ok(Deposited::New));
    // Another mailbox has its own quota.
    let m2 = mailbox(&*s, 2).await;
    assert_eq!(deposit(&*s, m2, 1, b"x", DAY).await, Ok(Deposited::New));
}

pub(crate) async fn usage_shows_what_waits_against_the_quota(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let quota = Quota {
        max_items: 5,
        max_bytes: 1_000_000,
    };
    let s = b.open(dir.path(), quota, Duration::from_secs(7 * DAY));
    let m = mailbox(&*s, 1).await;
    let empty = s.usage(m).await.unwrap();
    assert_eq!((empty.items, empty.bytes), (0, 0));
    assert_eq!(empty.quota, quota);
    assert_eq!(empty.expiry_secs, 7 * DAY);
    deposit(&*s, m, 1, &envelope(1, SMALL), DAY).await.unwrap();
    deposit(&*s, m, 2, &envelope(2, LARGE), DAY).await.unwrap();
    deposit(&*s, m, 1, &envelope(1, SMALL), DAY).await.unwrap();
    let u = s.usage(m).await.unwrap();
    assert_eq!(
        (u.items, u.bytes),
        (2, (SMALL + LARGE) as u64),
        "a repeat adds nothing"
    );
    // Another mailbox, and one nobody registered, hold nothing.
    let m2 = mailbox(&*s, 2).await;
    assert_eq!(s.usage(m2).await.unwrap().items, 0);
    assert_eq!(s.usage(MailboxId([9; 32])).await.unwrap().items, 0);
    // An acknowledged item no longer counts.
    let small = s.list(m, 1, u64::MAX).await.unwrap();
    s.ack(m, &[small[0].id]).await.unwrap();
    let u = s.usage(m).await.unwrap();
    assert_eq!((u.items, u.bytes), (1, LARGE as u64));
}

pub(crate) async fn bad_bodies_store_nothing_and_can_be_sent_again(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(b, dir.path());
    let m = mailbox(&*s, 1).await;
    for (d, len) in [(1u8, SMALL), (2, LARGE)] {
        let env = envelope(d, len);
        let mut short = Pieces::new(&env[..len - 1], 4000, len);
        assert!(matches!(
            s.deposit(head(m, d, len), DAY, &mut short).await,
            Err(StoreError::Body(BodyError::Truncated { needed: 1 }))
        ));
        let long = [&env[..], b"x"].concat();
        let mut long = Pieces::new(&long, 4000, len);
        assert_eq!(
            s.deposit(head(m, d, len), DAY, &mut long).await,
            Err(StoreError::Body(BodyError::Trailing))
        );
        let mut gone = Pieces::exact(&env, 1000);
        gone.gone_after = Some(2);
        assert_eq!(
            s.deposit(head(m, d, len), DAY, &mut gone).await,
            Err(StoreError::Body(BodyError::Gone))
        );
        assert_eq!(
            s.stats().items,
            u64::from(d) - 1,
            "nothing stored, nothing counted"
        );
        assert_eq!(deposit(&*s, m, d, &env, DAY).await, Ok(Deposited::New));
        assert_eq!(fetch_all(&*s, m).await.last().unwrap().1, env);
    }
}

pub(crate) async fn concurrent_repeats_store_once(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(b, dir.path());
    let m = mailbox(&*s, 1).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut fresh = 0;
            for d in 0..40u8 {
                if deposit(&*s, m, d, &envelope(d, 100), DAY).await == Ok(Deposited::New) {
                    fresh += 1;
                }
            }
            fresh
        }));
    }
    let mut fresh = 0;
    for t in tasks {
        fresh += t.await.unwrap();
    }
    assert_eq!(fresh, 40);
    assert_eq!(s.stats().items, 40);
    assert_eq!(s.list(m, 64, u64::MAX).await.unwrap().len(), 40);
}

pub(crate) async fn acknowledged_state_survives_a_reopen(b: &dyn Backend) {
    if !b.durable() {
        eprintln!("SKIPPED: this backend does not claim durability across a reopen");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (small, large) = (envelope(1, SMALL), envelope(2, LARGE));
    let m;
    {
        let s = open(b, dir.path());
        m = mailbox(&*s, 1).await;
        deposit(&*s, m, 1, &small, DAY).await.unwrap();
        deposit(&*s, m, 2, &large, DAY).await.unwrap();
        deposit(&*s, m, 3, b"acked", DAY).await.unwrap();
        let acked: Vec<ItemId> = s
            .list(m, 64, u64::MAX)
            .await
            .unwrap()
            .iter()
            .filter(|i| i.len == 5)
            .map(|i| i.id)
            .collect();
        s.ack(m, &acked).await.unwrap();
        // An upload cut off mid-way.
        let mut gone = Pieces::exact(&envelope(4, LARGE), 10_000);
        gone.gone_after = Some(5);
        assert!(s.deposit(head(m, 4, LARGE), DAY, &mut gone).await.is_err());
    }
    let s = open(b, dir.path());
    assert_eq!(s.mailbox_key(m).await.unwrap(), Some([1; 32]));
    let got: Vec<Vec<u8>> = fetch_all(&*s, m)
        .await
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    assert_eq!(got, vec![small.clone(), large]);
    let st = s.stats();
    assert_eq!(
        (st.mailboxes, st.items, st.bytes),
        (1, 2, (SMALL + LARGE) as u64)
    );
    // Remembered ids survive: stored, and acknowledged.
    assert_eq!(deposit(&*s, m, 1, &small, DAY).await, Ok(Deposited::Repeat));
    assert_eq!(
        deposit(&*s, m, 3, b"acked", DAY).await,
        Ok(Deposited::Repeat)
    );
    // The cut-off upload left nothing: it is stored afresh.
    assert_eq!(
        deposit(&*s, m, 4, &envelope(4, LARGE), DAY).await,
        Ok(Deposited::New)
    );
    // Expiry still knows what is there.
    assert_eq!(s.expire(DAY + 31 * DAY).await.unwrap(), 3);
}

/// An alert `n` with one envelope per mailbox, armed at `DAY` with its deadline at `DAY + 60`.
fn alert(n: u8, mailboxes: &[MailboxId]) -> Alert {
    let arm = Arm {
        alert: AlertId([n; 16]),
        every: 40,
        grace: 20,
        checkin_key: [n; 32],
        duress_key: [n ^ 0xff; 32],
        envelopes: (mailboxes.iter().enumerate())
            .map(|(i, m)| AlertEnvelope {
                mailbox: *m,
                envelope: envelope(n.wrapping_add(i as u8), 100),
            })
            .collect(),
    };
    Alert::armed(arm, DAY + 30, DAY + 60)
}

pub(crate) async fn alerts_arm_once_and_hold_their_quota_unseen(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let quota = Quota {
        max_items: 2,
        max_bytes: 1 << 20,
    };
    let s = b.open(dir.path(), quota, Duration::from_secs(30 * DAY));
    let (m1, m2) = (mailbox(&*s, 1).await, mailbox(&*s, 2).await);
    let unknown = MailboxId([9; 32]);
    assert_eq!(
        s.arm(alert(7, &[m1, unknown])).await,
        Err(StoreError::UnknownMailbox)
    );
    assert!(s.alerts().await.unwrap().is_empty(), "all or nothing");
    assert_eq!(s.arm(alert(7, &[m1, m2])).await, Ok(Armed::New));
    assert_eq!(s.arm(alert(7, &[m1, m2])).await, Ok(Armed::Repeat));
    let mut other = alert(7, &[m1, m2]);
    other.arm.every += 1;
    assert_eq!(s.arm(other).await, Err(StoreError::AlertConflict));
    let keys = s.alert_keys(AlertId([7; 16])).await.unwrap().unwrap();
    assert_eq!((keys.checkin, keys.duress), ([7; 32], [0xf8; 32]));
    assert_eq!((keys.every, keys.grace), (40, 20));
    assert_eq!(s.alert_keys(AlertId([8; 16])).await, Ok(None));
    let times = s.alerts().await.unwrap();
    assert_eq!(times.len(), 1);
    assert_eq!((times[0].grace, times[0].deadline), (20, DAY + 60));
    assert_eq!(s.stats().alerts, 1);
    // Sealed: nothing to fetch, nothing in the usage, but the quota holds it.
    assert!(s.list(m1, 64, u64::MAX).await.unwrap().is_empty());
    assert_eq!(s.usage(m1).await.unwrap().items, 0);
    assert_eq!(s.stats().items, 0);
    deposit(&*s, m1, 1, b"a", DAY).await.unwrap();
    assert_eq!(
        deposit(&*s, m1, 2, b"b", DAY).await,
        Err(StoreError::QuotaExceeded)
    );
    // A second alert does not fit m1 either; nothing of it is armed.
    assert_eq!(
        s.arm(alert(8, &[m2, m1])).await,
        Err(StoreError::QuotaExceeded)
    );
    assert_eq!(s.alerts().await.unwrap().len(), 1);
    assert_eq!(s.arm(alert(8, &[m2])).await, Ok(Armed::New));
    assert_eq!(
        s.arm(alert(9, &[m2])).await,
        Err(StoreError::QuotaExceeded),
        "m2 holds two sealed envelopes"
    );
}

pub(crate) async fn a_release_makes_items_with_notes_once(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(b, dir.path());
    let (m1, m2) = (mailbox(&*s, 1).await, mailbox(&*s, 2).await);
    deposit(&*s, m1, 1, b"ordinary", DAY).await.unwrap();
    let a = alert(7, &[m1, m2]);
    let id = a.arm.alert;
    s.arm(a.clone()).await.unwrap();
    // A check-in moves the deadline and records the minute.
    assert_eq!(s.check_in(id, DAY + 500, DAY + 125).await, Ok(true));
    assert_eq!(s.alerts().await.unwrap()[0].deadline, DAY + 500);
    assert_eq!(s.check_in(AlertId([8; 16]), 1, 1).await, Ok(false));
    assert_eq!(
        s.release(id, ReleaseReason::Missed, DAY + 600).await,
        Ok(true)
    );
    let note = ReleaseNote {
        reason: ReleaseReason::Missed,
        armed_at: DAY,
        last_checkin_at: DAY + 120,
        released_at: DAY + 600,
    };
    for (i, m) in [m1, m2].into_iter().enumerate() {
        let items = s.list(m, 64, u64::MAX).await.unwrap();
        let mut with_notes = Vec::new();
        for item in &items {
            let body = read(&*s, m, *item, 7).await.unwrap();
            with_notes.push((body, s.note(m, *item).await.unwrap()));
        }
        assert!(with_notes.contains(&(a.arm.envelopes[i].envelope.clone(), Some(note))));
        assert_eq!(s.usage(m).await.unwrap().items, items.len() as u64);
    }
    let plain = s.list(m1, 64, u64::MAX).await.unwrap();
    assert_eq!(plain.len(), 2);
    let ordinary = plain.iter().find(|i| i.len == 8).unwrap();
    assert_eq!(s.note(m1, *ordinary).await, Ok(None));
    // Released once: a second release, a check-in and a disarm find nothing.
    assert_eq!(
        s.release(id, ReleaseReason::Duress, DAY + 700).await,
        Ok(false)
    );
    assert_eq!(s.check_in(id, DAY + 900, DAY + 700).await, Ok(false));
    assert_eq!(s.disarm(id).await, Ok(false));
    assert_eq!(s.alert_keys(id).await, Ok(None));
    assert_eq!(s.stats().alerts, 0);
    assert_eq!(s.list(m2, 64, u64::MAX).await.unwrap().len(), 1);
    // A released item is acknowledged like any other, and its note goes with it.
    let released = *plain.iter().find(|i| i.len == 100).unwrap();
    assert_eq!(s.ack(m1, &[released.id]).await, Ok(1));
    assert_eq!(s.note(m1, released).await, Ok(None));
    assert_eq!(s.list(m1, 64, u64::MAX).await.unwrap().len(), 1);
    // ... and expires like any other.
    assert_eq!(s.expire(DAY + 600 + 31 * DAY).await.unwrap(), 2);
}

pub(crate) async fn a_disarm_deletes_the_alert_and_frees_its_quota(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let quota = Quota {
        max_items: 1,
        max_bytes: 1 << 20,
    };
    let s = b.open(dir.path(), quota, Duration::from_secs(30 * DAY));
    let m = mailbox(&*s, 1).await;
    let id = AlertId([7; 16]);
    s.arm(alert(7, &[m])).await.unwrap();
    assert_eq!(
        deposit(&*s, m, 1, b"a", DAY).await,
        Err(StoreError::QuotaExceeded)
    );
    assert_eq!(s.disarm(id).await, Ok(true));
    assert_eq!(s.disarm(id).await, Ok(false));
    assert_eq!(s.release(id, ReleaseReason::Missed, DAY).await, Ok(false));
    assert!(s.list(m, 64, u64::MAX).await.unwrap().is_empty());
    assert!(s.alerts().await.unwrap().is_empty());
    assert_eq!(deposit(&*s, m, 1, b"a", DAY).await, Ok(Deposited::New));
    // A disarmed id may be armed again.
    s.ack(m, &[s.list(m, 1, u64::MAX).await.unwrap()[0].id])
        .await
        .unwrap();
    assert_eq!(s.arm(alert(7, &[m])).await, Ok(Armed::New));
}

pub(crate) async fn alerts_and_notes_survive_a_reopen(b: &dyn Backend) {
    if !b.durable() {
        eprintln!("SKIPPED: this backend does not claim durability across a reopen");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let quota = Quota {
        max_items: 1,
        max_bytes: 1 << 20,
    };
    let (m1, m2);
    {
        let s = b.open(dir.path(), quota, Duration::from_secs(30 * DAY));
        (m1, m2) = (mailbox(&*s, 1).await, mailbox(&*s, 2).await);
        s.arm(alert(7, &[m1])).await.unwrap();
        s.check_in(AlertId([7; 16]), DAY + 999, DAY + 130)
            .await
            .unwrap();
        s.arm(alert(8, &[m2])).await.unwrap();
        s.release(AlertId([8; 16]), ReleaseReason::Duress, DAY + 200)
            .await
            .unwrap();
    }
    let s = b.open(dir.path(), quota, Duration::from_secs(30 * DAY));
    let times = s.alerts().await.unwrap();
    assert_eq!(times.len(), 1);
    assert_eq!(
        (times[0].id, times[0].deadline),
        (AlertId([7; 16]), DAY + 999)
    );
    // Its envelope still holds m1's quota.
    assert_eq!(
        deposit(&*s, m1, 1, b"a", DAY).await,
        Err(StoreError::QuotaExceeded)
    );
    let items = s.list(m2, 64, u64::MAX).await.unwrap();
    assert_eq!(items.len(), 1);
    let note = s.note(m2, items[0]).await.unwrap().unwrap();
    assert_eq!(note.reason, ReleaseReason::Duress);
    assert_eq!(note.released_at, DAY + 180);
    assert_eq!(s.usage(m2).await.unwrap().items, 1);
    // The alert armed before the reopen releases with the check-in it had.
    assert_eq!(
        s.release(AlertId([7; 16]), ReleaseReason::Missed, DAY + 2000)
            .await,
        Ok(true)
    );
    let item = s.list(m1, 64, u64::MAX).await.unwrap()[0];
    let note = s.note(m1, item).await.unwrap().unwrap();
    assert_eq!((note.armed_at, note.last_checkin_at), (DAY, DAY + 120));
}

/// Upload `chunk` at `offset` of blob `id` (of `total` bytes), in uneven pieces.
pub(crate) async fn upload(
    s: &dyn Store,
    id: BlobId,
    total: u64,
    offset: u64,
    chunk: &[u8],
    now: u64,
) -> Result<u64, StoreError> {
    let head = Upload {
        blob: id,
        total,
        offset,
        chunk_len: chunk.len(),
    };
    let mut body = Pieces::exact(chunk, 3333);
    s.upload(head, now, &mut body).await
}

/// Deposit `env` under deposit id `d` referring to `blobs`.
async fn deposit_blobs(
    s: &dyn Store,
    m: MailboxId,
    d: u8,
    env: &[u8],
    blobs: &[BlobId],
    now: u64,
) -> Result<Deposited, StoreError> {
    let mut body = Pieces::exact(env, 7777);
    s.deposit_blobs(head(m, d, env.len()), blobs, now, &mut body)
        .await
}

/// The whole of a complete blob, read in pieces.
async fn read_blob(s: &dyn Store, id: BlobId) -> Option<Vec<u8>> {
    let len = s.blob_len(id).await.unwrap()?;
    let mut out = Vec::new();
    while (out.len() as u64) < len {
        let piece = s.read_blob(id, out.len() as u64, 4096).await.unwrap()?;
        assert!(!piece.is_empty());
        out.extend_from_slice(&piece);
    }
    Some(out)
}

pub(crate) async fn blob_uploads_resume_at_the_durable_offset(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(b, dir.path());
    let id = BlobId([1; 16]);
    let data = envelope(9, 10_000);
    // The probe of an unknown blob answers 0 and creates nothing.
    assert_eq!(upload(&*s, id, 10_000, 0, b"", DAY).await, Ok(0));
    assert_eq!(s.stats().blobs, 0);
    assert_eq!(
        upload(&*s, id, 10_000, 0, &data[..4000], DAY).await,
        Ok(4000)
    );
    assert_eq!(s.blob_len(id).await.unwrap(), None, "partial");
    assert_eq!(s.read_blob(id, 0, 10).await.unwrap(), None, "partial");
    // The probe, a repeat and a chunk past the end write nothing and answer the offset.
    assert_eq!(upload(&*s, id, 10_000, 0, b"", DAY).await, Ok(4000));
    assert_eq!(
        upload(&*s, id, 10_000, 0, &data[..4000], DAY).await,
        Ok(4000)
    );
    assert_eq!(
        upload(&*s, id, 10_000, 5000, &[0xff; 10], DAY).await,
        Ok(4000)
    );
    // Another total is refused, before anything is written.
    assert_eq!(
        upload(&*s, id, 9_999, 4000, &data[4000..5000], DAY).await,
        Err(StoreError::BlobConflict { total: 10_000 })
    );
    assert_eq!(
        upload(&*s, id, 10_000, 4000, &data[4000..], DAY).await,
        Ok(10_000)
    );
    assert_eq!(s.blob_len(id).await.unwrap(), Some(10_000));
    assert_eq!(read_blob(&*s, id).await.unwrap(), data);
    assert_eq!(
        s.read_blob(id, 9_998, 10).await.unwrap().unwrap(),
        &data[9_998..]
    );
    assert_eq!((s.stats().blobs, s.stats().blob_bytes), (1, 10_000));
    // A cut-off chunk leaves the durable offset as it was.
    let other = BlobId([2; 16]);
    let head = Upload {
        blob: other,
        total: 100,
        offset: 0,
        chunk_len: 100,
    };
    let mut cut = Pieces::new(&[7; 50], 10, 100);
    assert!(s.upload(head, DAY, &mut cut).await.is_err());
    assert_eq!(upload(&*s, other, 100, 0, b"", DAY).await, Ok(0));
    assert_eq!(upload(&*s, other, 100, 0, &[7; 100], DAY).await, Ok(100));
    assert_eq!(read_blob(&*s, other).await.unwrap(), vec![7; 100]);
}

pub(crate) async fn deposits_with_blobs_wait_for_complete_blobs_and_share_them(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(b, dir.path());
    let (m1, m2) = (mailbox(&*s, 1).await, mailbox(&*s, 2).await);
    let id = BlobId([3; 16]);
    let data = envelope(3, 5000);
    upload(&*s, id, 5000, 0, &data[..1000], DAY).await.unwrap();
    assert_eq!(
        deposit_blobs(&*s, m1, 1, b"env", &[id], DAY).await,
        Err(StoreError::BlobIncomplete)
    );
    assert_eq!(
        deposit_blobs(&*s, m1, 1, b"env", &[BlobId([9; 16])], DAY).await,
        Err(StoreError::BlobIncomplete)
    );
    assert!(
        fetch_all(&*s, m1).await.is_empty(),
        "a refused deposit stores nothing"
    );
    upload(&*s, id, 5000, 1000, &data[1000..], DAY)
        .await
        .unwrap();
    assert_eq!(
        deposit_blobs(&*s, m1, 1, b"env1", &[id], DAY).await,
        Ok(Deposited::New)
    );
    assert_eq!(
        deposit_blobs(&*s, m1, 1, b"env1", &[id], DAY).await,
        Ok(Deposited::Repeat)
    );
    assert_eq!(
        deposit_blobs(&*s, m2, 1, b"env2", &[id], DAY).await,
        Ok(Deposited::New)
    );
    assert_eq!(
        deposit_blobs(&*s, MailboxId([7; 32]), 1, b"e", &[id], DAY).await,
        Err(StoreError::UnknownMailbox)
    );
    // One copy for both items.
    assert_eq!((s.stats().blobs, s.stats().blob_bytes), (1, 5000));
    let items1 = s.list(m1, 64, u64::MAX).await.unwrap();
    assert_eq!(items1.len(), 1);
    let refs = s.item_blobs(m1, items1[0]).await.unwrap();
    assert_eq!((refs.len(), refs[0].id, refs[0].len), (1, id, 5000));
    // A plain deposit refers to nothing.
    deposit(&*s, m1, 2, b"plain", DAY).await.unwrap();
    let plain = s.list(m1, 64, u64::MAX).await.unwrap();
    let plain = plain.iter().find(|i| i.len == 5).unwrap();
    assert!(s.item_blobs(m1, *plain).await.unwrap().is_empty());
    // The first ack leaves the blob for the other mailbox; the last deletes it.
    assert_eq!(s.ack(m1, &[items1[0].id]).await.unwrap(), 1);
    assert_eq!(read_blob(&*s, id).await.unwrap(), data);
    let items2 = s.list(m2, 64, u64::MAX).await.unwrap();
    assert_eq!(s.ack(m2, &[items2[0].id]).await.unwrap(), 1);
    assert_eq!(s.blob_len(id).await.unwrap(), None);
    assert_eq!(s.read_blob(id, 0, 10).await.unwrap(), None);
    assert_eq!((s.stats().blobs, s.stats().blob_bytes), (0, 0));
    // Acknowledging again changes nothing.
    assert_eq!(s.ack(m2, &[items2[0].id]).await.unwrap(), 0);
}

pub(crate) async fn unreferenced_blobs_expire_and_item_expiry_frees_blobs(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(b, dir.path());
    s.set_blob_expiry(DAY);
    let m = mailbox(&*s, 1).await;
    let t0 = 100 * DAY;
    let (partial, kept, used) = (BlobId([1; 16]), BlobId([2; 16]), BlobId([3; 16]));
    upload(&*s, partial, 100, 0, &[1; 50], t0).await.unwrap();
    upload(&*s, kept, 100, 0, &[2; 100], t0).await.unwrap();
    upload(&*s, used, 100, 0, &[3; 100], t0).await.unwrap();
    deposit_blobs(&*s, m, 1, b"env", &[used], t0).await.unwrap();
    s.expire(t0 + DAY - 1).await.unwrap();
    assert_eq!(s.stats().blobs, 3);
    // Writing a chunk renews a partial upload's day.
    upload(&*s, partial, 100, 50, &[1; 10], t0 + 100)
        .await
        .unwrap();
    s.expire(t0 + DAY).await.unwrap();
    assert_eq!(
        s.stats().blobs,
        2,
        "the complete blob nobody refers to is gone"
    );
    assert_eq!(s.blob_len(kept).await.unwrap(), None);
    s.expire(t0 + DAY + 100).await.unwrap();
    assert_eq!(s.stats().blobs, 1, "the partial upload is gone");
    assert_eq!(
        upload(&*s, partial, 100, 0, b"", t0 + DAY + 100).await,
        Ok(0)
    );
    // A referenced blob stays until its item expires, and goes with it.
    assert_eq!(s.blob_len(used).await.unwrap(), Some(100));
    assert_eq!(s.expire(t0 + 31 * DAY).await.unwrap(), 1);
    assert_eq!(s.blob_len(used).await.unwrap(), None);
    assert_eq!(s.stats().blobs, 0);
}

pub(crate) async fn blob_bytes_count_against_the_quota(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let quota = Quota {
        max_items: 10,
        max_bytes: 1000,
    };
    let s = b.open(dir.path(), quota, Duration::from_secs(30 * DAY));
    let m = mailbox(&*s, 1).await;
    let id = BlobId([5; 16]);
    upload(&*s, id, 600, 0, &[5; 600], DAY).await.unwrap();
    assert_eq!(s.room(m).await.unwrap(), Some(1000));
    assert_eq!(s.room(MailboxId([8; 32])).await.unwrap(), None);
    deposit_blobs(&*s, m, 1, &[1; 100], &[id], DAY)
        .await
        .unwrap();
    assert_eq!(s.room(m).await.unwrap(), Some(300));
    assert_eq!(
        s.usage(m).await.unwrap().bytes,
        700,
        "blob bytes show in usage"
    );
    // Each referencing item counts the blob again, though it is stored once.
    assert_eq!(
        deposit_blobs(&*s, m, 2, &[2; 100], &[id], DAY).await,
        Err(StoreError::QuotaExceeded)
    );
    assert_eq!(
        s.room(m).await.unwrap(),
        Some(300),
        "a refusal holds nothing"
    );
    let items = s.list(m, 64, u64::MAX).await.unwrap();
    s.ack(m, &[items[0].id]).await.unwrap();
    assert_eq!(s.room(m).await.unwrap(), Some(1000));
}

pub(crate) async fn blobs_and_their_references_survive_a_reopen(b: &dyn Backend) {
    if !b.durable() {
        eprintln!("SKIPPED: this backend does not claim durability across a reopen");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (partial, whole) = (BlobId([1; 16]), BlobId([2; 16]));
    let data = envelope(2, 300_000);
    let (m1, m2);
    {
        let s = open(b, dir.path());
        m1 = mailbox(&*s, 1).await;
        m2 = mailbox(&*s, 2).await;
        upload(&*s, partial, 1000, 0, &[1; 400], DAY).await.unwrap();
        upload(&*s, whole, 300_000, 0, &data, DAY).await.unwrap();
        deposit_blobs(&*s, m1, 1, b"one", &[whole], DAY)
            .await
            .unwrap();
        deposit_blobs(&*s, m2, 1, b"two", &[whole], DAY)
            .await
            .unwrap();
    }
    let s = open(b, dir.path());
    assert_eq!(upload(&*s, partial, 1000, 0, b"", DAY).await, Ok(400));
    assert_eq!(
        upload(&*s, partial, 1000, 400, &[1; 600], DAY).await,
        Ok(1000)
    );
    assert_eq!(read_blob(&*s, whole).await.unwrap(), data);
    assert_eq!(
        s.room(m1).await.unwrap(),
        Some(Quota::default().max_bytes - 300_003)
    );
    let items = s.list(m1, 64, u64::MAX).await.unwrap();
    assert_eq!(s.item_blobs(m1, items[0]).await.unwrap()[0].id, whole);
    s.ack(m1, &[items[0].id]).await.unwrap();
    assert!(
        s.blob_len(whole).await.unwrap().is_some(),
        "m2 still refers to it"
    );
    let items = s.list(m2, 64, u64::MAX).await.unwrap();
    s.ack(m2, &[items[0].id]).await.unwrap();
    assert_eq!(s.blob_len(whole).await.unwrap(), None);
    drop(s);
    let s = open(b, dir.path());
    assert_eq!(s.blob_len(whole).await.unwrap(), None, "deleted for good");
    assert_eq!(
        s.stats().blobs,
        1,
        "the finished upload nobody deposited is still there"
    );
}

/// A mailbox registered to expire at `expires`.
async fn mailbox_until(s: &dyn Store, n: u8, expires: u64) -> MailboxId {
    let m = MailboxId::for_key(&[n; 32]);
    s.register(m, [n; 32], Some(expires)).await.unwrap();
    m
}

pub(crate) async fn mailbox_lifetimes_are_whole_days_and_never_shrink(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(b, dir.path());
    let m = MailboxId::for_key(&[1; 32]);
    // Kept to the day: rounded up to the start of the next UTC day.
    assert_eq!(
        s.register(m, [1; 32], Some(10 * DAY + 5)).await,
        Ok(Some(11 * DAY))
    );
    assert_eq!(
        s.register(m, [1; 32], Some(11 * DAY)).await,
        Ok(Some(11 * DAY))
    );
    // An earlier expiry does not shorten it; a later one extends it.
    assert_eq!(
        s.register(m, [1; 32], Some(5 * DAY)).await,
        Ok(Some(11 * DAY))
    );
    assert_eq!(
        s.register(m, [1; 32], Some(20 * DAY)).await,
        Ok(Some(20 * DAY))
    );
    s.expire(11 * DAY).await.unwrap();
    assert_eq!(s.mailbox_key(m).await.unwrap(), Some([1; 32]), "extended");
    // A registration without a lifetime makes it permanent, and a lifetime then changes nothing.
    assert_eq!(s.register(m, [1; 32], None).await, Ok(None));
    assert_eq!(s.register(m, [1; 32], Some(30 * DAY)).await, Ok(None));
    s.expire(10_000 * DAY).await.unwrap();
    assert_eq!(s.mailbox_key(m).await.unwrap(), Some([1; 32]), "permanent");
    // A mailbox registered without a lifetime from the start is never forgotten either.
    let ngo = mailbox(&*s, 2).await;
    assert_eq!(s.register(ngo, [2; 32], None).await, Ok(None));
    s.expire(20_000 * DAY).await.unwrap();
    assert_eq!(s.mailbox_key(ngo).await.unwrap(), Some([2; 32]));
    assert_eq!(s.stats().mailboxes, 2);
}

pub(crate) async fn an_expired_mailbox_is_forgotten_with_all_it_holds(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let s = open(b, dir.path());
    s.set_blob_expiry(DAY);
    let t0 = 100 * DAY;
    let ngo = mailbox(&*s, 1).await;
    let reply = mailbox_until(&*s, 2, t0 + 3 * DAY).await;
    // The reply mailbox holds a small and a large item, an acknowledged one (its tombstone),
    // and an item with a blob that the NGO's mailbox shares and one that only it refers to.
    let (shared, own) = (BlobId([1; 16]), BlobId([2; 16]));
    upload(&*s, shared, 100, 0, &[1; 100], t0).await.unwrap();
    upload(&*s, own, 100, 0, &[2; 100], t0).await.unwrap();
    deposit(&*s, reply, 1, b"receipt", t0).await.unwrap();
    deposit(&*s, reply, 2, &envelope(2, LARGE), t0)
        .await
        .unwrap();
    deposit(&*s, reply, 3, b"read", t0).await.unwrap();
    deposit_blobs(&*s, reply, 4, b"with blobs", &[shared, own], t0)
        .await
        .unwrap();
    deposit_blobs(&*s, ngo, 1, b"report", &[shared], t0)
        .await
        .unwrap();
    let read: Vec<ItemId> = (s.list(reply, 64, u64::MAX).await.unwrap())
        .iter()
        .filter(|i| i.len == 4)
        .map(|i| i.id)
        .collect();
    assert_eq!(s.ack(reply, &read).await.unwrap(), 1);
    assert_eq!(s.stats().items, 4);
    // Not yet: a second before its day.
    assert_eq!(s.expire(t0 + 3 * DAY - 1).await.unwrap(), 0);
    assert_eq!(fetch_all(&*s, reply).await.len(), 3);
    // Due: the registration, its three items, its tombstone and its own blob go; the NGO's
    // mailbox, its item and the blob it shares stay.
    assert_eq!(s.expire(t0 + 3 * DAY).await.unwrap(), 3);
    assert_eq!(s.mailbox_key(reply).await.unwrap(), None);
    assert_eq!(s.room(reply).await.unwrap(), None);
    assert!(s.list(reply, 64, u64::MAX).await.unwrap().is_empty());
    assert_eq!(s.usage(reply).await.unwrap().items, 0);
    assert_eq!(s.usage(reply).await.unwrap().bytes, 0);
    assert_eq!(s.blob_len(own).await.unwrap(), None);
    assert_eq!(s.blob_len(shared).await.unwrap(), Some(100));
    assert_eq!(fetch_all(&*s, ngo).await.len(), 1);
    let st = s.stats();
    assert_eq!((st.mailboxes, st.items, st.blobs), (1, 1, 1));
    // Deposits to it are refused as to any unknown mailbox.
    assert_eq!(
        deposit(&*s, reply, 5, b"late", t0 + 3 * DAY).await,
        Err(StoreError::UnknownMailbox)
    );
    // Registered again (the same key), it starts empty: even its deposit ids are forgotten.
    let again = mailbox_until(&*s, 2, t0 + 10 * DAY).await;
    assert_eq!(again, reply);
    assert_eq!(
        deposit(&*s, reply, 3, b"read", t0 + 3 * DAY).await,
        Ok(Deposited::New)
    );
    assert_eq!(fetch_all(&*s, reply).await.len(), 1);
    assert_eq!(s.expire(t0 + 3 * DAY + 1).await.unwrap(), 0, "once");
}

pub(crate) async fn mailbox_lifetimes_survive_a_reopen(b: &dyn Backend) {
    if !b.durable() {
        eprintln!("SKIPPED: this backend does not claim durability across a reopen");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let t0 = 100 * DAY;
    let (ngo, reply, longer);
    {
        let s = open(b, dir.path());
        ngo = mailbox(&*s, 1).await;
        reply = mailbox_until(&*s, 2, t0 + DAY).await;
        longer = mailbox_until(&*s, 3, t0 + DAY).await;
        s.register(longer, [3; 32], Some(t0 + 5 * DAY))
            .await
            .unwrap();
        deposit(&*s, reply, 1, b"reply", t0).await.unwrap();
    }
    let s = open(b, dir.path());
    assert_eq!(s.stats().mailboxes, 3);
    assert_eq!(s.expire(t0 + DAY - 1).await.unwrap(), 0);
    assert_eq!(fetch_all(&*s, reply).await.len(), 1);
    assert_eq!(s.expire(t0 + DAY).await.unwrap(), 1);
    assert_eq!(s.mailbox_key(reply).await.unwrap(), None);
    assert_eq!(
        s.mailbox_key(longer).await.unwrap(),
        Some([3; 32]),
        "extended"
    );
    drop(s);
    let s = open(b, dir.path());
    assert_eq!(
        s.mailbox_key(reply).await.unwrap(),
        None,
        "forgotten for good"
    );
    s.expire(t0 + 5 * DAY).await.unwrap();
    assert_eq!(s.mailbox_key(longer).await.unwrap(), None);
    assert_eq!(s.mailbox_key(ngo).await.unwrap(), Some([1; 32]));
    assert_eq!(s.stats().mailboxes, 1);
}

pub(crate) async fn prekeys_are_kept_per_mailbox_replaced_and_forgotten_with_it(b: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let t0 = 100 * DAY;
    let unknown = MailboxId::for_key(&[9; 32]);
    {
        let s = open(b, dir.path());
        // Nothing is kept for a mailbox nobody registered.
        assert!(!s.set_prekey(unknown, b"bundle").await.unwrap());
        assert_eq!(s.prekey(unknown).await.unwrap(), None);
        let ngo = mailbox(&*s, 1).await;
        let other = mailbox(&*s, 2).await;
        assert_eq!(s.prekey(ngo).await.unwrap(), None);
        assert!(s.set_prekey(ngo, &[1; 1373]).await.unwrap());
        assert_eq!(s.prekey(ngo).await.unwrap(), Some(vec![1; 1373]));
        // The next one replaces it; another mailbox's stays its own.
        assert!(s.set_prekey(ngo, &[2; 1373]).await.unwrap());
        assert!(s.set_prekey(other, b"theirs").await.unwrap());
        assert_eq!(s.prekey(ngo).await.unwrap(), Some(vec![2; 1373]));
        assert_eq!(s.prekey(other).await.unwrap(), Some(b"theirs".to_vec()));
        // A bundle does not count as an item or against the quota.
        assert_eq!(s.usage(ngo).await.unwrap().items, 0);
        // A mailbox forgotten at the end of its lifetime takes its bundle with it.
        let brief = mailbox_until(&*s, 3, t0 + DAY).await;
        assert!(s.set_prekey(brief, b"short").await.unwrap());
        s.expire(t0 + DAY).await.unwrap();
        assert_eq!(s.mailbox_key(brief).await.unwrap(), None);
        assert_eq!(s.prekey(brief).await.unwrap(), None);
        assert_eq!(s.prekey(ngo).await.unwrap(), Some(vec![2; 1373]));
    }
    if !b.durable() {
        return;
    }
    let s = open(b, dir.path());
    let ngo = MailboxId::for_key(&[1; 32]);
    assert_eq!(s.prekey(ngo).await.unwrap(), Some(vec![2; 1373]), "durable");
}
