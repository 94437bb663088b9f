//! The sled store: the conformance suite, and what only this backend has (its layout, its
//! migration from earlier relays' stores, blob files, envelope files left by a crash).

use super::*;
use crate::store::conformance::{self, Backend, DAY, LARGE};
use std::path::PathBuf;
use vigil_core::ids::{DepositId, ItemId};

struct Sled;

impl Backend for Sled {
    fn open(&self, dir: &Path, quota: Quota, expiry: Duration) -> Arc<dyn Store> {
        Arc::new(open_waiting(&dir.join("db"), quota, expiry))
    }

    fn durable(&self) -> bool {
        true
    }
}

conformance::conformance_tests!(Sled);

/// Open, waiting out the file lock that a just-dropped store's commit thread may still hold for
/// a moment (tests reopen the same directory right after a drop).
fn open_waiting(path: &Path, quota: Quota, expiry: Duration) -> SledStore {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match SledStore::open(path, expiry, quota) {
            Ok(s) => return s,
            Err(StoreError::Backend(e))
                if e.contains("could not acquire lock") && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot open the test store: {e}"),
        }
    }
}

fn open(dir: &Path) -> SledStore {
    open_waiting(
        &dir.join("db"),
        Quota::default(),
        Duration::from_secs(30 * DAY),
    )
}

fn envelope_dir(dir: &Path) -> PathBuf {
    dir.join("db").join(envelope_files::DIR_NAME)
}

/// Files in the envelope directory, temporary ones included.
fn envelope_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(envelope_dir(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_small_deposit_is_one_item_and_a_large_one_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let m = conformance::mailbox(&s, 1).await;
    conformance::deposit(&s, m, 1, b"small", DAY).await.unwrap();
    conformance::deposit(&s, m, 2, &conformance::envelope(2, LARGE), DAY)
        .await
        .unwrap();
    let inner = &s.inner;
    assert_eq!(inner.items.len(), 2, "one entry per deposit, nothing else");
    let k1 = deposit_key(&m, &DepositId([1; 16]));
    let v = inner
        .items
        .get(item_key(&k1, Place::Inline))
        .unwrap()
        .unwrap();
    assert_eq!(inline_envelope(&v), Some(&b"small"[..]));
    assert_eq!(entry(&v).unwrap().time, coarse_time(DAY));
    let k2 = deposit_key(&m, &DepositId([2; 16]));
    assert_eq!(envelope_files(dir.path()), vec![hex::encode(k2)]);
    // Sled holds only the file's index entry.
    let v = inner
        .items
        .get(item_key(&k2, Place::File))
        .unwrap()
        .unwrap();
    assert_eq!(v.len(), layout::VALUE_HEAD_LEN + 8);
    // An ack turns the item into its tombstone in place, and expiry removes it.
    let ids: Vec<ItemId> = s
        .list(m, 64, u64::MAX)
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(s.ack(m, &ids).await.unwrap(), 2);
    assert_eq!(inner.items.len(), 2);
    for kv in inner.items.iter() {
        assert!(!entry(&kv.unwrap().1).unwrap().is_item());
    }
    assert_eq!(
        s.expire(DAY + 31 * DAY).await.unwrap(),
        0,
        "no items, only tombstones"
    );
    assert!(inner.items.is_empty());
}

#[tokio::test]
async fn acks_and_expiry_remove_envelope_files() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let m = conformance::mailbox(&s, 1).await;
    for d in [1u8, 2] {
        conformance::deposit(&s, m, d, &conformance::envelope(d, LARGE), DAY)
            .await
            .unwrap();
    }
    assert_eq!(envelope_files(dir.path()).len(), 2);
    let first = s.list(m, 1, u64::MAX).await.unwrap();
    assert_eq!(s.ack(m, &[first[0].id]).await.unwrap(), 1);
    assert_eq!(envelope_files(dir.path()).len(), 1);
    assert_eq!(s.expire(DAY + 31 * DAY).await.unwrap(), 1);
    assert!(envelope_files(dir.path()).is_empty());
    assert!(s.inner.items.is_empty());
}

#[tokio::test]
async fn crash_leftovers_in_the_envelope_directory_are_collected_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let kept = conformance::envelope(3, LARGE);
    let m;
    {
        let s = open(dir.path());
        m = conformance::mailbox(&s, 1).await;
        conformance::deposit(&s, m, 3, &kept, DAY).await.unwrap();
        // An upload cut off by the crash (its drop never ran)...
        let (f, p) = s.inner.files.create_temp().unwrap();
        let mut t = envelope_files::TempEnvelope::new(f, p);
        t.write(&[4; 5000]).unwrap();
        // ...and one that was published but not yet indexed when the power went.
        let unindexed = deposit_key(&m, &DepositId([5; 16]));
        std::fs::write(
            envelope_dir(dir.path()).join(hex::encode(unindexed)),
            b"unindexed",
        )
        .unwrap();
        assert_eq!(envelope_files(dir.path()).len(), 3);
    }
    let s = open(dir.path());
    assert_eq!(
        envelope_files(dir.path()),
        vec![hex::encode(deposit_key(&m, &DepositId([3; 16])))]
    );
    let got = conformance::fetch_all(&s, m).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, kept);
    // Neither leftover was ever acknowledged: both deposits can be made again.
    for d in [4u8, 5] {
        let env = conformance::envelope(d, LARGE);
        assert_eq!(
            conformance::deposit(&s, m, d, &env, DAY).await,
            Ok(Deposited::New)
        );
    }
}

#[tokio::test]
async fn a_lost_envelope_file_is_skipped_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let m = conformance::mailbox(&s, 1).await;
    for d in [1u8, 2] {
        conformance::deposit(&s, m, d, &conformance::envelope(d, LARGE), DAY)
            .await
            .unwrap();
    }
    std::fs::remove_file(
        envelope_dir(dir.path()).join(hex::encode(deposit_key(&m, &DepositId([1; 16])))),
    )
    .unwrap();
    let got = conformance::fetch_all(&s, m).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, conformance::envelope(2, LARGE));
}

#[tokio::test]
async fn the_commit_syncs_new_blob_files_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let m = conformance::mailbox(&s, 1).await;
    // Large envelopes no longer go into sled, but a store written by an older relay holds them
    // there: 1 MiB is far above sled's blob threshold, so it is its own blob file.
    let k = deposit_key(&m, &DepositId([1; 16]));
    s.inner
        .items
        .insert(
            item_key(&k, Place::Inline),
            inline_value(0, &vec![7u8; 1 << 20]),
        )
        .unwrap();
    s.flush().await.unwrap();
    let synced = s.inner.durability.synced_blobs();
    assert!(synced >= 1, "the blob file was seen and synced");
    s.flush().await.unwrap();
    assert_eq!(s.inner.durability.synced_blobs(), synced);
}

#[test]
fn io_errors_for_a_full_or_read_only_disk_are_no_space() {
    for kind in [
        std::io::ErrorKind::StorageFull,
        std::io::ErrorKind::ReadOnlyFilesystem,
        std::io::ErrorKind::QuotaExceeded,
    ] {
        let e = backend(sled::Error::Io(std::io::Error::from(kind)));
        assert!(matches!(e, StoreError::NoSpace(_)), "{kind:?}");
    }
    let e = backend(sled::Error::Io(std::io::Error::other("x")));
    assert!(matches!(e, StoreError::Backend(_)));
}

/// Write a store the way relays before layout 2 did (see `migrate`), then open it.
#[tokio::test]
async fn a_store_of_an_earlier_relay_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let m = MailboxId::for_key(&[1; 32]);
    let key = |d: u8| deposit_key(&m, &DepositId([d; 16]));
    let t0 = coarse_time(100 * DAY);
    let large = conformance::envelope(2, LARGE);
    {
        let db = sled::open(&path).unwrap();
        let tree = |n: &str| db.open_tree(n).unwrap();
        tree("mailboxes")
            .insert(m.as_bytes(), &[1u8; 32][..])
            .unwrap();
        let (reports, large_t, expiry, acked) = (
            tree("reports"),
            tree("large"),
            tree("expiry"),
            tree("acked"),
        );
        let expiry_key = |t: u64, k: &DepositKey| [&t.to_be_bytes()[..], &k[..]].concat();
        // 1: a small report; 2: a large one in its file; 3: acknowledged (tombstone only).
        reports.insert(key(1), &b"small"[..]).unwrap();
        expiry
            .insert(expiry_key(t0, &key(1)), &5u64.to_be_bytes()[..])
            .unwrap();
        large_t
            .insert(key(2), &(LARGE as u64).to_be_bytes()[..])
            .unwrap();
        expiry
            .insert(
                expiry_key(t0 + 3600, &key(2)),
                &(LARGE as u64).to_be_bytes()[..],
            )
            .unwrap();
        std::fs::create_dir_all(path.join("envelopes")).unwrap();
        std::fs::write(path.join("envelopes").join(hex::encode(key(2))), &large).unwrap();
        acked.insert(key(3), &[][..]).unwrap();
        expiry
            .insert(expiry_key(t0, &key(3)), &4u64.to_be_bytes()[..])
            .unwrap();
        db.flush().unwrap();
    }
    let s = open(dir.path());
    let names: Vec<Vec<u8>> = s.inner.db_tree_names();
    for old in ["reports", "large", "expiry"] {
        assert!(
            !names.contains(&old.as_bytes().to_vec()),
            "{old} was dropped"
        );
    }
    assert_eq!(s.stats().items, 2);
    let got: Vec<Vec<u8>> = conformance::fetch_all(&s, m)
        .await
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    assert_eq!(got, vec![b"small".to_vec(), large.clone()]);
    // Item ids are what they were (derived from the same keys), and remembered ids stay so.
    assert_eq!(
        s.list(m, 1, u64::MAX).await.unwrap()[0].id,
        layout::item_id(&key(1))
    );
    for (d, env) in [(1u8, b"small".to_vec()), (3, b"gone".to_vec())] {
        assert_eq!(
            conformance::deposit(&s, m, d, &env, t0).await,
            Ok(Deposited::Repeat)
        );
    }
    // Times came across: 1 and 3 expire with t0's hour, 2 an hour later.
    assert_eq!(s.expire(t0 + 30 * DAY).await.unwrap(), 1);
    assert_eq!(
        conformance::deposit(&s, m, 3, b"again", t0 + 30 * DAY).await,
        Ok(Deposited::New),
        "the tombstone expired with its time"
    );
    assert_eq!(s.expire(t0 + 3600 + 30 * DAY).await.unwrap(), 1);
    drop(s);
    // Opening again finds nothing left to migrate.
    let s = open(dir.path());
    assert_eq!(s.stats().items, 1);
}
