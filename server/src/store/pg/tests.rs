//! The conformance suite on PostgreSQL, and what only a shared database must do: two stores
//! (two relays) on one database racing for the same deposits, quota, expiry and releases.

use super::*;
use crate::store::conformance::{self, Backend};
use std::path::Path;

/// The PostgreSQL backend for the conformance suite: a test's directory names its database
/// (created on the first open, its URL kept in the directory), so a reopen finds it again.
struct Pg;

impl Backend for Pg {
    fn open(&self, dir: &Path, quota: Quota, expiry: Duration) -> Arc<dyn Store> {
        let file = dir.join("pg-url");
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async {
                let url = match std::fs::read_to_string(&file) {
                    Ok(u) => u,
                    Err(_) => {
                        let server = testing::server_url().expect("available() said yes");
                        let u = testing::fresh_database(&server).await;
                        std::fs::write(&file, &u).unwrap();
                        u
                    }
                };
                let s = PgStore::open(&url, expiry, quota, 8).await.unwrap();
                Arc::new(s) as Arc<dyn Store>
            })
        })
    }

    fn durable(&self) -> bool {
        true
    }

    fn available(&self) -> bool {
        testing::server_url().is_some()
    }
}

conformance::conformance_tests!(Pg);

const DAY: u64 = conformance::DAY;

/// Two stores (as two relays would open) on one fresh database, or `None` when skipped.
async fn two_relays(quota: Quota) -> Option<(Arc<PgStore>, Arc<PgStore>, String)> {
    let server = testing::server_url()?;
    let url = testing::fresh_database(&server).await;
    let expiry = Duration::from_secs(30 * DAY);
    let a = PgStore::open(&url, expiry, quota, 8).await.unwrap();
    let b = PgStore::open(&url, expiry, quota, 8).await.unwrap();
    Some((Arc::new(a), Arc::new(b), url))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_through_one_relay_is_fetched_and_acknowledged_through_another() {
    let Some((a, b, _)) = two_relays(Quota::default()).await else {
        return;
    };
    let m = conformance::mailbox(&*a, 1).await;
    assert_eq!(b.mailbox_key(m).await.unwrap(), Some([1; 32]));
    for (d, len) in [(1u8, conformance::SMALL), (2, conformance::LARGE)] {
        let env = conformance::envelope(d, len);
        let put = conformance::deposit(&*a, m, d, &env, DAY).await;
        assert_eq!(put, Ok(Deposited::New));
        // The same deposit through the other relay is a repeat.
        let again = conformance::deposit(&*b, m, d, &env, DAY).await;
        assert_eq!(again, Ok(Deposited::Repeat));
    }
    let got = conformance::fetch_all(&*b, m).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].1, conformance::envelope(2, conformance::LARGE));
    let ids: Vec<ItemId> = got.iter().map(|(id, _)| *id).collect();
    assert_eq!(b.ack(m, &ids).await.unwrap(), 2);
    assert_eq!(a.ack(m, &ids).await.unwrap(), 0, "acknowledged once");
    assert!(a.list(m, 64, u64::MAX).await.unwrap().is_empty());
    let env = conformance::envelope(1, conformance::SMALL);
    assert_eq!(
        conformance::deposit(&*a, m, 1, &env, DAY).await,
        Ok(Deposited::Repeat),
        "an acknowledged id stays remembered on every relay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_racing_for_one_mailbox_never_exceed_its_quota() {
    let quota = Quota {
        max_items: 10,
        max_bytes: 1 << 20,
    };
    let Some((a, b, _)) = two_relays(quota).await else {
        return;
    };
    let m = conformance::mailbox(&*a, 1).await;
    let mut tasks = Vec::new();
    for (i, s) in [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            let mut stored = 0;
            for d in 0..10u8 {
                let id = (i as u8) * 10 + d;
                let env = conformance::envelope(id, 500);
                if conformance::deposit(&*s, m, id, &env, DAY).await == Ok(Deposited::New) {
                    stored += 1;
                }
            }
            stored
        }));
    }
    let mut stored = 0;
    for t in tasks {
        stored += t.await.unwrap();
    }
    assert_eq!(stored, 10, "exactly the quota was stored");
    assert_eq!(a.usage(m).await.unwrap().items, 10);
    assert_eq!(b.list(m, 64, u64::MAX).await.unwrap().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_expiring_and_releasing_at_once_do_it_once() {
    let Some((a, b, _)) = two_relays(Quota::default()).await else {
        return;
    };
    let m = conformance::mailbox(&*a, 1).await;
    for d in 0..60u8 {
        let s = if d % 2 == 0 { &a } else { &b };
        conformance::deposit(&**s, m, d, &conformance::envelope(d, 100), DAY)
            .await
            .unwrap();
    }
    let later = DAY + 31 * DAY;
    let (x, y) = tokio::join!(a.expire(later), b.expire(later));
    assert_eq!(x.unwrap() + y.unwrap(), 60, "each item expired once");
    assert_eq!(a.usage(m).await.unwrap().items, 0);

    use vigil_core::wire::arm::{AlertEnvelope, Arm};
    let arm = Arm {
        alert: AlertId([5; 16]),
        every: 3600,
        grace: 600,
        checkin_key: [2; 32],
        duress_key: [3; 32],
        envelopes: vec![AlertEnvelope {
            mailbox: m,
            envelope: b"sealed".to_vec(),
        }],
    };
    assert_eq!(
        a.arm(Alert::armed(arm.clone(), DAY, DAY + 4200)).await,
        Ok(Armed::New)
    );
    assert_eq!(
        b.arm(Alert::armed(arm, DAY, DAY + 4200)).await,
        Ok(Armed::Repeat)
    );
    // A check-in through b moves the deadline: a's schedule, still on the old one, is refused.
    assert_eq!(
        b.check_in(AlertId([5; 16]), DAY + 9000, DAY + 4000).await,
        Ok(true)
    );
    assert_eq!(
        a.release(AlertId([5; 16]), ReleaseReason::Missed, DAY + 4200)
            .await,
        Ok(false)
    );
    let id = AlertId([5; 16]);
    let (x, y) = tokio::join!(
        a.release(id, ReleaseReason::Missed, DAY + 9000),
        b.release(id, ReleaseReason::Missed, DAY + 9000)
    );
    assert_eq!(
        u8::from(x.unwrap()) + u8::from(y.unwrap()),
        1,
        "released once"
    );
    assert_eq!(b.list(m, 64, u64::MAX).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_newer_than_the_relay_is_refused_in_one_line() {
    let Some((_, _, url)) = two_relays(Quota::default()).await else {
        return;
    };
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
        .batch_execute("UPDATE vigil_schema SET version = 999")
        .await
        .unwrap();
    let refused = PgStore::open(&url, Duration::from_secs(DAY), Quota::default(), 2).await;
    let Err(e) = refused else {
        panic!("a newer schema was accepted")
    };
    let line = e.to_string();
    assert!(
        matches!(e, PgError::SchemaTooNew { found: 999, .. }),
        "{line}"
    );
    assert!(!line.contains('\n') && line.contains("newer"), "{line}");
}

#[tokio::test]
async fn a_bad_url_or_an_unreachable_server_is_one_line_with_advice() {
    let expiry = Duration::from_secs(DAY);
    let e = PgStore::open("mysql://x", expiry, Quota::default(), 2).await;
    assert!(matches!(e, Err(PgError::Url(_))));
    // Nothing listens on port 1.
    let e = PgStore::open("postgres://u@127.0.0.1:1/db", expiry, Quota::default(), 2).await;
    let Err(e) = e else {
        panic!("connected to port 1")
    };
    let line = e.to_string();
    assert!(matches!(e, PgError::Connect(_)), "{line}");
    assert!(
        !line.contains('\n') && line.contains("check that it runs"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_through_one_relay_wakes_the_other_relays_watchers() {
    let Some((a, b, _)) = two_relays(Quota::default()).await else {
        return;
    };
    let m = conformance::mailbox(&*a, 1).await;
    let (tx, mut heard) = tokio::sync::mpsc::unbounded_channel();
    b.on_deposits(Arc::new(move |mailbox| {
        let _ = tx.send(mailbox);
    }));
    // Once listening, the hook hears "look at everything" (what came before was not heard).
    let first = tokio::time::timeout(Duration::from_secs(10), heard.recv()).await;
    assert_eq!(first.expect("listening within 10 s"), Some(None));
    let env = conformance::envelope(1, 100);
    conformance::deposit(&*a, m, 1, &env, DAY).await.unwrap();
    let woke = tokio::time::timeout(Duration::from_secs(5), heard.recv()).await;
    assert_eq!(woke.expect("heard within 5 s"), Some(Some(m)));
    // A repeat stores nothing and announces nothing; a refused deposit neither.
    conformance::deposit(&*a, m, 1, &env, DAY).await.unwrap();
    let other = MailboxId([9; 32]);
    assert!(conformance::deposit(&*a, other, 2, &env, DAY)
        .await
        .is_err());
    let quiet = tokio::time::timeout(Duration::from_millis(300), heard.recv()).await;
    assert!(quiet.is_err(), "nothing more announced: {quiet:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_an_earlier_version_is_migrated_and_keeps_its_items() {
    let Some(server) = testing::server_url() else {
        return;
    };
    let url = testing::fresh_database(&server).await;
    // A database as the first PostgreSQL relay left it: schema version 1, one mailbox, one item.
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(conn);
    client.batch_execute(schema::MIGRATIONS[0]).await.unwrap();
    client
        .batch_execute(
            "CREATE TABLE vigil_schema (one boolean PRIMARY KEY DEFAULT true CHECK (one),
                                        version integer NOT NULL);
             INSERT INTO vigil_schema (version) VALUES (1);",
        )
        .await
        .unwrap();
    let m = MailboxId::for_key(&[1; 32]);
    let (mb, d) = (&m.as_bytes()[..], &[7u8; 16][..]);
    client
        .execute(
            "INSERT INTO mailboxes (id, public_key, items, bytes) VALUES ($1, $2, 1, 3)",
            &[&mb, &&[1u8; 32][..]],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO deposits (mailbox, deposit_id, place, len, time) VALUES ($1, $2, 0, 3, 3600)",
            &[&mb, &d],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO envelope_chunks (mailbox, deposit_id, off, data) VALUES ($1, $2, 0, 'abc')",
            &[&mb, &d],
        )
        .await
        .unwrap();
    let s = PgStore::open(&url, Duration::from_secs(30 * DAY), Quota::default(), 4)
        .await
        .unwrap();
    let version: i32 = client
        .query_one("SELECT version FROM vigil_schema", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, schema::VERSION);
    assert_eq!(s.stats().items, 1);
    let got = conformance::fetch_all(&s, m).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, b"abc");
    // What version 2 added works on the migrated rows.
    assert!(s.set_prekey(m, b"bundle").await.unwrap());
    assert_eq!(s.prekey(m).await.unwrap(), Some(b"bundle".to_vec()));
    assert_eq!(
        s.register(m, [1; 32], Some(DAY)).await,
        Ok(None),
        "stays permanent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_write_times_are_kept_to_the_hour_and_never_expire_a_blob_early() {
    let Some((a, b, url)) = two_relays(Quota::default()).await else {
        return;
    };
    for s in [&a, &b] {
        s.set_blob_expiry(DAY);
    }
    let t0 = 100 * DAY;
    let blob = BlobId([4; 16]);
    let mut body = crate::body::testing::Pieces::exact(&[4; 100], 100);
    let head = vigil_core::wire::upload::Upload {
        blob,
        total: 100,
        offset: 0,
        chunk_len: 100,
    };
    assert_eq!(a.upload(head, t0 + 100, &mut body).await, Ok(100));
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(conn);
    let stored: i64 = client
        .query_one("SELECT touched FROM blobs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored as u64, t0, "the hour, not the second");
    // The relay that did not write it counts from the end of that hour; the writer from the
    // second it knows.
    b.expire(t0 + 100 + DAY).await.unwrap();
    assert_eq!(b.blob_len(blob).await.unwrap(), Some(100));
    a.expire(t0 + 100 + DAY).await.unwrap();
    assert_eq!(b.blob_len(blob).await.unwrap(), None);
}
