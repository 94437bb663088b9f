//! The ingest anchor: raw sled, same bytes, same concurrency, no network and no crypto; and
//! diagnostic variants of it that each add one cost. The variants are the write shapes the
//! relay's store had before it became one write per deposit (a transaction over four trees, then
//! five plain writes, each behind `spawn_blocking`); they stay to show what each shape costs on
//! the machine of the run.

use super::{join_all, OTHER_MAILBOXES};
use crate::util::cpu_secs;
use anyhow::{anyhow, Context, Result};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// How the raw sled tasks write.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RawWrite {
    /// `Tree::insert` on the task itself: the anchor.
    Inline,
    /// The same insert in `spawn_blocking`, as the relay's handlers once called the store (a
    /// small deposit now writes on the request's own task).
    SpawnBlocking,
    /// A sled transaction over four trees (item, deposit id, time index, per-mailbox usage
    /// counter read-modify-write), inline: the relay store's first shape.
    Transaction,
    /// The same transaction in `spawn_blocking`, so up to `clients` run at once.
    TransactionBlocking,
    /// Five records per deposit (the relay store's second shape), as one atomic `Batch` on one
    /// tree (kinds told apart by a key prefix), inline.
    Batch,
    /// The same five records as five plain inserts (not atomic together), inline: shows
    /// whether the cost is the number of records or sled's atomicity.
    Inserts,
    /// The anchor without the `fdatasync` after each group flush: what sled 0.34.7 alone calls
    /// durable (`sync_file_range`, which does not survive power loss). Measures the price of the
    /// relay's power-loss durability; never used as an anchor.
    InlineWithoutFdatasync,
}

/// What the raw sled anchor measured.
pub struct RawSled {
    pub per_s: f64,
    pub flushes: u64,
    pub flush_secs: f64,
    pub cpu_secs: f64,
}

/// The anchor: raw sled, same bytes, same concurrency, no network and no crypto. `clients`
/// tokio tasks each insert `(mailbox || task || seq) → envelope` into the default tree and then
/// wait for one flusher task, which takes every waiter queued so far, calls `Db::flush` and then
/// `fdatasync` on sled's log file once (in `spawn_blocking`) and answers them all (group
/// commit). The fdatasync is what makes sled 0.34.7 durable at all (its flush only does
/// `sync_file_range`), exactly as the relay's store does; 4 KiB values are never sled blobs.
///
/// `how` picks the anchor ([`RawWrite::Inline`]) or a diagnostic variant that adds one of the
/// relay's costs to it, to attribute the gap between the anchor and the relay.
pub async fn raw_sled(
    clients: usize,
    count: usize,
    envelope: Arc<Vec<u8>>,
    how: RawWrite,
) -> Result<RawSled> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("raw");
    let db = sled::open(&path).context("cannot open the raw sled anchor")?;
    let trees = [
        db.open_tree("items")?,
        db.open_tree("deposits")?,
        db.open_tree("by_time")?,
        db.open_tree("usage")?,
    ];
    let log = Arc::new(std::fs::File::open(path.join("db")).context("cannot open sled's log")?);
    let stats = Arc::new(std::sync::Mutex::new((0u64, 0.0f64)));
    let fstats = stats.clone();
    type Waiter = oneshot::Sender<Result<(), String>>;
    let (tx, mut rx) = mpsc::channel::<Waiter>(1024);
    let fdb = db.clone();
    let flusher = tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut waiters = vec![first];
            while let Ok(w) = rx.try_recv() {
                waiters.push(w);
            }
            let (d, log) = (fdb.clone(), log.clone());
            let t = Instant::now();
            let r = match tokio::task::spawn_blocking(move || {
                d.flush()?;
                if how != RawWrite::InlineWithoutFdatasync {
                    log.sync_data()?;
                }
                anyhow::Ok(())
            })
            .await
            {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Ok(mut st) = fstats.lock() {
                st.0 += 1;
                st.1 += t.elapsed().as_secs_f64();
            }
            for w in waiters {
                let _ = w.send(r.clone());
            }
        }
    });
    let cpu0 = cpu_secs()?;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let share = count / clients + usize::from(c < count % clients);
        let (db, tx, env, trees) = (db.clone(), tx.clone(), envelope.clone(), trees.clone());
        tasks.spawn(async move {
            for i in 0..share {
                let mut key = [0u8; 48];
                key[0] = (c % OTHER_MAILBOXES) as u8;
                key[32..40].copy_from_slice(&(c as u64).to_be_bytes());
                key[40..48].copy_from_slice(&(i as u64).to_be_bytes());
                match how {
                    RawWrite::Inline | RawWrite::InlineWithoutFdatasync => {
                        db.insert(key, env.as_slice())?;
                    }
                    RawWrite::SpawnBlocking => {
                        let (db, env) = (db.clone(), env.clone());
                        tokio::task::spawn_blocking(move || db.insert(key, env.as_slice()))
                            .await??;
                    }
                    RawWrite::Transaction => transaction4(&trees, &key, &env)?,
                    RawWrite::Batch | RawWrite::Inserts => {
                        let mut b = sled::Batch::default();
                        for kind in [b'i', b'd', b't', b'u'] {
                            let mut k = Vec::with_capacity(49);
                            k.push(kind);
                            k.extend_from_slice(&key);
                            if kind == b'i' {
                                b.insert(k, env.as_slice());
                            } else {
                                b.insert(k, &key[32..]);
                            }
                        }
                        let mut k = key.to_vec();
                        k[0] ^= 0x80;
                        b.insert(k.clone(), &[][..]);
                        if how == RawWrite::Batch {
                            db.apply_batch(b)?;
                        } else {
                            for kind in [b'i', b'd', b't', b'u'] {
                                let mut k = Vec::with_capacity(49);
                                k.push(kind);
                                k.extend_from_slice(&key);
                                if kind == b'i' {
                                    db.insert(k, env.as_slice())?;
                                } else {
                                    db.insert(k, &key[32..])?;
                                }
                            }
                            db.insert(k, &[][..])?;
                        }
                    }
                    RawWrite::TransactionBlocking => {
                        let (trees, env) = (trees.clone(), env.clone());
                        tokio::task::spawn_blocking(move || transaction4(&trees, &key, &env))
                            .await??;
                    }
                }
                let (wtx, wrx) = oneshot::channel();
                tx.send(wtx).await.map_err(|_| anyhow!("flusher stopped"))?;
                wrx.await?.map_err(|e| anyhow!("sled flush failed: {e}"))?;
            }
            anyhow::Ok(())
        });
    }
    drop(tx);
    join_all(&mut tasks, "raw sled anchor").await?;
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_secs()? - cpu0;
    let _ = flusher.await;
    let (flushes, flush_secs) = stats.lock().map(|s| *s).unwrap_or_default();
    Ok(RawSled {
        per_s: count as f64 / secs,
        flushes,
        flush_secs,
        cpu_secs: cpu,
    })
}

/// The diagnostic transaction: the relay store's write pattern for one deposit.
fn transaction4(trees: &[sled::Tree; 4], key: &[u8; 48], env: &[u8]) -> Result<()> {
    use sled::transaction::{ConflictableTransactionError, TransactionError};
    use sled::Transactional;
    let value = sled::IVec::from(env);
    let mailbox = &key[..32];
    let r: Result<(), TransactionError<()>> = (&trees[0], &trees[1], &trees[2], &trees[3])
        .transaction(|(items, deposits, by_time, usage)| {
            if deposits.get(&key[..])?.is_some() {
                return Err(ConflictableTransactionError::Abort(()));
            }
            let n = usage
                .get(mailbox)?
                .and_then(|v| <[u8; 8]>::try_from(&v[..]).ok())
                .map_or(0, u64::from_be_bytes);
            items.insert(&key[..], value.clone())?;
            deposits.insert(&key[..], &key[32..])?;
            by_time.insert(&key[..], &[][..])?;
            usage.insert(mailbox, &(n + 1).to_be_bytes()[..])?;
            Ok(())
        });
    r.map_err(|e| anyhow!("sled transaction failed: {e:?}"))
}
