//! Load loops against a relay (or anything that speaks to `RelayClient`): connecting many
//! clients, closed-loop deposits, fetch timing, open-loop latency.

use super::{deposit_id, join_all, FETCH_ITEMS};
use crate::util::quantile;
use crate::Sizes;
use anyhow::{anyhow, bail, Result};
use ed25519_dalek::SigningKey;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil_client::relay::RelayClient;
use vigil_core::ids::{CertFingerprint, MailboxId};

/// Connect `n` clients, 32 handshakes at a time. A handshake that fails to get through (its
/// packets can be dropped when loopback bursts overflow a socket's receive buffer on a loaded
/// machine) is tried again, up to twice per client.
pub(super) async fn connect_many(
    addr: &str,
    fp: &CertFingerprint,
    n: usize,
) -> Result<Vec<Arc<RelayClient>>> {
    let mut out = Vec::with_capacity(n);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (addr, fp) = (addr.to_string(), *fp);
        set.spawn(async move {
            let mut tries = 0;
            loop {
                match RelayClient::connect(&addr, &fp).await {
                    Err(e @ vigil_client::relay::RelayError::Unreachable { .. }) if tries < 2 => {
                        tries += 1;
                        eprintln!("vigil-bench: a relay handshake failed ({e}); retrying");
                    }
                    r => return r,
                }
            }
        });
        if set.len() >= 32 {
            if let Some(r) = set.join_next().await {
                out.push(Arc::new(r??));
            }
        }
    }
    while let Some(r) = set.join_next().await {
        out.push(Arc::new(r??));
    }
    Ok(out)
}

/// Every client deposits its share of `count` envelopes one after another, round-robin over
/// `mailboxes`. Returns the elapsed time.
pub(super) async fn deposit_many(
    clients: &[Arc<RelayClient>],
    mailboxes: &[MailboxId],
    count: usize,
    envelope: Arc<Vec<u8>>,
) -> Result<Duration> {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let n = clients.len();
    for (c, client) in clients.iter().enumerate() {
        let share = count / n + usize::from(c < count % n);
        let (client, env) = (client.clone(), envelope.clone());
        let mailboxes = mailboxes.to_vec();
        tasks.spawn(async move {
            for i in 0..share {
                let m = &mailboxes[(c + i) % mailboxes.len()];
                client.deposit(m, &deposit_id(), &env).await?;
            }
            anyhow::Ok(())
        });
    }
    join_all(&mut tasks, "deposits").await?;
    Ok(start.elapsed())
}

/// Median time (ms) of fetching the 10-item mailbox, after warm-up.
pub(super) async fn fetch_time(client: &RelayClient, key: &SigningKey, reps: usize) -> Result<f64> {
    for _ in 0..3 {
        client.fetch(key, FETCH_ITEMS).await?;
    }
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        let items = client.fetch(key, FETCH_ITEMS).await?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        if items.len() != FETCH_ITEMS as usize {
            bail!("fetched {} items, expected {FETCH_ITEMS}", items.len());
        }
    }
    Ok(quantile(&mut times, 0.5))
}

/// Open loop: request `i` is due at `start + i / rate`, whether or not earlier ones
/// finished; its latency runs from when it was due (so queueing delay counts). `request(i)`
/// makes the request. Returns (p50, p99, max) in ms and the achieved rate.
pub(super) async fn open_loop<F, Fut>(
    rate: f64,
    secs: f64,
    request: F,
) -> Result<(f64, f64, f64, f64)>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let n = (rate * secs).round() as usize;
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due).await;
        let req = request(i);
        set.spawn(async move {
            tokio::time::timeout(Duration::from_secs(10), req)
                .await
                .map_err(|_| anyhow!("a request took over 10 s"))??;
            anyhow::Ok(due.elapsed().as_secs_f64() * 1e3)
        });
    }
    let mut lat = Vec::with_capacity(n);
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(r) = set.join_next().await {
            lat.push(r??);
        }
        anyhow::Ok(())
    })
    .await
    .map_err(|_| anyhow!("open-loop requests did not finish in time"))??;
    let achieved = n as f64 / start.elapsed().as_secs_f64();
    let p50 = quantile(&mut lat, 0.5);
    let p99 = quantile(&mut lat, 0.99);
    let max = quantile(&mut lat, 1.0);
    Ok((p50, p99, max, achieved))
}

/// The same open loop against the bare quinn server (a child process): 4 KiB up, one byte
/// back, no storage. Its p99 is the machine's own tail latency at this load.
pub(super) async fn open_loop_raw_quinn(s: &Sizes, envelope: Arc<Vec<u8>>) -> Result<(f64, f64)> {
    let (server, addr, _) = crate::net::spawn_server(crate::net::Target::Raw, 16).await?;
    let remote: std::net::SocketAddr = addr.parse()?;
    let ep = quinn::Endpoint::client(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let config = crate::util::client_config(crate::util::RAW_ALPN)?;
    let mut conns = Vec::new();
    for _ in 0..16 {
        conns.push(
            ep.connect_with(config.clone(), remote, "localhost")?
                .await?,
        );
    }
    let (p50, p99, _, _) = open_loop(s.p99_rate, s.p99_secs, |i| {
        let (conn, env) = (conns[i % conns.len()].clone(), envelope.clone());
        async move {
            let (mut send, mut recv) = conn.open_bi().await?;
            send.write_all(&env).await?;
            send.finish()?;
            recv.read_to_end(16).await?;
            anyhow::Ok(())
        }
    })
    .await?;
    for c in &conns {
        c.close(0u32.into(), b"done");
    }
    server.stop().await?;
    Ok((p50, p99))
}
