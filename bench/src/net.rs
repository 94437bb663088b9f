//! Figures that need separate processes: upload throughput vs a bare quinn stream (with peak
//! memory of both sides), and the memory of idle connections, relay vs a bare quinn server.
//!
//! The relay (`serve-relay`) and the bare quinn server (`serve-raw-quinn`) each run in their
//! own child process, so `/proc/PID/status` shows only their memory; the clients
//! (`upload-client`, `idle-clients`) run in further children.

use crate::relay_cfg::relay_config;
use crate::report::Report;
use crate::util::{client_config, filler, raw_server_config, say, Worker, RAW_ALPN};
use crate::Sizes;
use anyhow::{anyhow, bail, Context, Result};
use clap::ValueEnum;
use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use vigil_client::relay::RelayClient;
use vigil_core::ids::{CertFingerprint, DepositId};

/// Which server a client child talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    Relay,
    Raw,
    /// The bare quinn server writing each stream to its own file as it arrives and syncing it
    /// before answering: the least any durable server must do (diagnostic).
    RawDurable,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Relay => "relay",
            Target::Raw => "raw",
            Target::RawDurable => "raw-durable",
        }
    }
}

const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

fn stdin_lines() -> tokio::io::Lines<BufReader<tokio::io::Stdin>> {
    BufReader::new(tokio::io::stdin()).lines()
}

/// Child: a relay on 127.0.0.1 in a temporary directory, configured for `connections`.
/// Prints `READY {"addr","fp"}`, answers every line with `OK` and the relay's connection
/// counters, stops at EOF.
pub async fn serve_relay(connections: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = vigil_relay::start(relay_config(dir.path(), connections)).await?;
    say(
        "READY",
        &json!({"addr": relay.local_addr().to_string(), "fp": relay.fingerprint().to_string()}),
    );
    let mut lines = stdin_lines();
    while lines.next_line().await?.is_some() {
        let st = relay.stats().await;
        say(
            "OK",
            &json!({
                "connections_open": st.connections_open,
                "connections_accepted": st.connections_accepted,
                "retries_sent": st.retries_sent,
                "retries_failed": st.retries_failed,
                "handshakes_failed": st.handshakes_failed,
                "refused_connection_limit": st.refused_connection_limit,
            }),
        );
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), relay.shutdown()).await;
    Ok(())
}

/// A bare quinn server on 127.0.0.1 (port chosen by the OS), serving in a background task of
/// the current runtime: every bidirectional stream is read to its end (bytes dropped) and
/// answered with one byte. Used by the `serve-raw-quinn` child and, in process, by the ingest
/// diagnostic.
///
/// With `durable`, every stream is written to a new file in a temporary directory by a
/// blocking thread as its chunks arrive (no copy on the way), and the file is `fdatasync`ed
/// before the answer: the same disk work as the relay's large-envelope path, without anything
/// else the relay does (frame, store index, group flush).
pub(crate) fn raw_quinn_server(durable: bool) -> Result<quinn::Endpoint> {
    let ep = quinn::Endpoint::server(raw_server_config()?, SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let dir = std::sync::Arc::new(tempfile::tempdir()?);
    let acceptor = ep.clone();
    tokio::spawn(async move {
        while let Some(incoming) = acceptor.accept().await {
            let dir = dir.clone();
            tokio::spawn(async move {
                let conn = incoming.await?;
                loop {
                    let (mut send, mut recv) = conn.accept_bi().await?;
                    let dir = dir.clone();
                    tokio::spawn(async move {
                        if durable {
                            let path = dir.path().join(format!("{:x}", rand::random::<u64>()));
                            // Chunks are handed over in batches of about 1 MiB and written
                            // with one vectored write each (no copy, few system calls).
                            let (tx, rx) = std::sync::mpsc::channel::<Vec<bytes::Bytes>>();
                            let writer = tokio::task::spawn_blocking(move || {
                                let mut f = std::fs::File::create(&path)?;
                                for batch in rx {
                                    write_all_vectored(&mut f, &batch)?;
                                }
                                f.sync_data()?;
                                std::fs::remove_file(&path)?;
                                anyhow::Ok(())
                            });
                            let (mut batch, mut batched) = (Vec::new(), 0usize);
                            while let Some(c) = recv.read_chunk(usize::MAX, true).await? {
                                batched += c.bytes.len();
                                batch.push(c.bytes);
                                if batched >= 1 << 20 || batch.len() >= 1024 {
                                    tx.send(std::mem::take(&mut batch))?;
                                    batched = 0;
                                }
                            }
                            tx.send(batch)?;
                            drop(tx);
                            writer.await??;
                        } else {
                            while recv.read_chunk(usize::MAX, true).await?.is_some() {}
                        }
                        send.write_all(&[1]).await?;
                        send.finish()?;
                        let _ = send.stopped().await;
                        anyhow::Ok(())
                    });
                }
                #[allow(unreachable_code)]
                anyhow::Ok(())
            });
        }
    });
    Ok(ep)
}

/// Child: a bare quinn server ([`raw_quinn_server`]).
pub async fn serve_raw_quinn(durable: bool) -> Result<()> {
    let ep = raw_quinn_server(durable)?;
    say("READY", &json!({"addr": ep.local_addr()?.to_string()}));
    let mut lines = stdin_lines();
    while lines.next_line().await?.is_some() {
        say("OK", &json!({}));
    }
    ep.close(0u32.into(), b"done");
    Ok(())
}

/// Write every byte of `parts`, in as few `writev` calls as the kernel allows.
fn write_all_vectored(f: &mut std::fs::File, parts: &[bytes::Bytes]) -> std::io::Result<()> {
    use std::io::{IoSlice, Write};
    let (mut i, mut off) = (0usize, 0usize);
    while i < parts.len() {
        let mut slices = Vec::with_capacity(parts.len() - i);
        slices.push(IoSlice::new(&parts[i][off..]));
        slices.extend(parts[i + 1..].iter().map(|p| IoSlice::new(p)));
        let mut n = f.write_vectored(&slices)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while i < parts.len() && n >= parts[i].len() - off {
            n -= parts[i].len() - off;
            i += 1;
            off = 0;
        }
        off += n;
    }
    Ok(())
}

/// Child: upload `count` items of `size` bytes one after another, then print
/// `READY {"secs","bytes","peak_rss_mib"}` and wait for EOF.
pub async fn upload_client(
    target: Target,
    addr: &str,
    fp: Option<&str>,
    size: usize,
    count: usize,
) -> Result<()> {
    let data = filler(size, 0x0b1d);
    let secs = match target {
        Target::Relay => {
            let fp: CertFingerprint = fp
                .ok_or_else(|| anyhow!("--fp is required for the relay"))?
                .parse()
                .map_err(|_| anyhow!("bad fingerprint"))?;
            let client = RelayClient::connect(addr, &fp).await?;
            let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
            let mailbox = client.register(&key).await?;
            let t = Instant::now();
            for _ in 0..count {
                client
                    .deposit(&mailbox, &DepositId(rand::random()), &data)
                    .await?;
            }
            let secs = t.elapsed().as_secs_f64();
            client.close().await;
            secs
        }
        Target::Raw | Target::RawDurable => {
            let remote: SocketAddr = addr.parse()?;
            let ep = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0)))?;
            let conn = ep
                .connect_with(client_config(RAW_ALPN)?, remote, "localhost")?
                .await?;
            let t = Instant::now();
            for _ in 0..count {
                let (mut send, mut recv) = conn.open_bi().await?;
                send.write_all(&data).await?;
                send.finish()?;
                let reply = recv.read_to_end(16).await?;
                if reply != [1] {
                    bail!("bare quinn server answered {reply:?}");
                }
            }
            let secs = t.elapsed().as_secs_f64();
            conn.close(0u32.into(), b"done");
            ep.wait_idle().await;
            secs
        }
    };
    let mem = crate::util::self_mem()?;
    say(
        "READY",
        &json!({"secs": secs, "bytes": size * count, "peak_rss_mib": mem.hwm_mib}),
    );
    let mut lines = stdin_lines();
    while lines.next_line().await?.is_some() {}
    Ok(())
}

/// Child: hold idle connections. Each line is a total `n`: open connections (64 handshakes at
/// a time, spread over `endpoints` UDP sockets) until `n` are open, then print `OK {"open"}`.
pub async fn idle_clients(
    target: Target,
    addr: &str,
    endpoints: usize,
    fp: Option<&str>,
) -> Result<()> {
    let remote: SocketAddr = addr.parse()?;
    let alpn: &[u8] = match target {
        Target::Relay => vigil_core::wire::QUIC_ALPN,
        Target::Raw | Target::RawDurable => RAW_ALPN,
    };
    // A relay connection is served (and so costs the relay what a client's does) only after
    // its knock.
    let pin: Option<CertFingerprint> = match target {
        Target::Relay => Some(
            fp.ok_or_else(|| anyhow!("--fp is required for the relay"))?
                .parse()
                .map_err(|_| anyhow!("bad fingerprint"))?,
        ),
        _ => None,
    };
    let knock_addr = addr.to_string();
    let config = client_config(alpn)?;
    let eps = (0..endpoints.max(1))
        .map(|_| quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))))
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut conns: Vec<quinn::Connection> = Vec::new();
    let mut failures = 0usize;
    say("READY", &json!({}));
    let mut lines = stdin_lines();
    while let Some(line) = lines.next_line().await? {
        let want: usize = line.trim().parse().context("idle-clients wants a number")?;
        let mut set = tokio::task::JoinSet::new();
        while conns.len() < want {
            while set.len() < 64 && conns.len() + set.len() < want {
                let ep = &eps[(conns.len() + set.len()) % eps.len()];
                let connecting = ep.connect_with(config.clone(), remote, "localhost")?;
                let host = knock_addr.clone();
                set.spawn(tokio::time::timeout(Duration::from_secs(8), async move {
                    let conn = connecting.await.map_err(|e| anyhow!("{e}"))?;
                    if let Some(fp) = pin {
                        vigil_client::relay::knock_quic(&conn, &host, &[fp])
                            .await
                            .map_err(|e| anyhow!("{e}"))?;
                    }
                    Ok::<_, anyhow::Error>(conn)
                }));
            }
            let Some(r) = set.join_next().await else {
                break;
            };
            match r? {
                Ok(Ok(conn)) => conns.push(conn),
                // A lost handshake (UDP bursts on loopback can overflow socket buffers) is
                // replaced by a new attempt; many of them mean something is wrong.
                Ok(Err(e)) if failures < want / 50 + 5 => {
                    failures += 1;
                    eprintln!("vigil-bench: idle-clients: a handshake failed ({e}); retrying");
                }
                Err(_) if failures < want / 50 + 5 => {
                    failures += 1;
                    eprintln!("vigil-bench: idle-clients: a handshake took over 8 s; retrying");
                }
                Ok(Err(e)) => bail!("too many failed handshakes; last: {e}"),
                Err(_) => bail!("too many handshakes took over 8 s"),
            }
        }
        say("OK", &json!({"open": conns.len(), "failures": failures}));
    }
    for c in &conns {
        c.close(0u32.into(), b"done");
    }
    Ok(())
}

fn field<'a>(v: &'a serde_json::Value, k: &str) -> Result<&'a serde_json::Value> {
    v.get(k)
        .ok_or_else(|| anyhow!("child reply lacks {k}: {v}"))
}

fn num(v: &serde_json::Value, k: &str) -> Result<f64> {
    field(v, k)?
        .as_f64()
        .ok_or_else(|| anyhow!("child reply {k} is not a number: {v}"))
}

fn text(v: &serde_json::Value, k: &str) -> Result<String> {
    Ok(field(v, k)?
        .as_str()
        .ok_or_else(|| anyhow!("child reply {k} is not text: {v}"))?
        .to_string())
}

pub(crate) async fn spawn_server(
    target: Target,
    connections: usize,
) -> Result<(Worker, String, Option<String>)> {
    let args: Vec<String> = match target {
        Target::Relay => vec![
            "serve-relay".into(),
            "--connections".into(),
            connections.to_string(),
        ],
        Target::Raw => vec!["serve-raw-quinn".into()],
        Target::RawDurable => vec!["serve-raw-quinn".into(), "--durable".into()],
    };
    let (w, ready) = Worker::spawn(&args, CHILD_TIMEOUT).await?;
    let addr = text(&ready, "addr")?;
    let fp = if target == Target::Relay {
        Some(text(&ready, "fp")?)
    } else {
        None
    };
    Ok((w, addr, fp))
}

/// One upload run against a fresh server: (seconds, client peak MiB, server peak MiB).
async fn upload_once(target: Target, size: usize, count: usize) -> Result<(f64, f64, f64)> {
    let (server, addr, fp) = spawn_server(target, 16).await?;
    let mut args = vec![
        "upload-client".to_string(),
        "--target".into(),
        target.name().into(),
        "--addr".into(),
        addr,
        "--size".into(),
        size.to_string(),
        "--count".into(),
        count.to_string(),
    ];
    if let Some(fp) = fp {
        args.extend(["--fp".to_string(), fp]);
    }
    let (client, res) = Worker::spawn(&args, Duration::from_secs(600)).await?;
    let server_peak = server.mem()?.hwm_mib;
    client.stop().await?;
    server.stop().await?;
    Ok((num(&res, "secs")?, num(&res, "peak_rss_mib")?, server_peak))
}

pub async fn upload(s: &Sizes, out: &mut Report) -> Result<()> {
    let (size, count) = (s.upload_item, s.upload_count);
    crate::progress(&format!(
        "upload: {count} × {} MiB items, relay vs bare quinn, best of {}",
        size >> 20,
        s.upload_rounds
    ));
    let mut raw = (f64::INFINITY, 0.0f64, 0.0f64);
    let mut relay = (f64::INFINITY, 0.0f64, 0.0f64);
    let mut durable = (f64::INFINITY, 0.0f64, 0.0f64);
    for _ in 0..s.upload_rounds.max(1) {
        for (target, acc) in [
            (Target::Raw, &mut raw),
            (Target::RawDurable, &mut durable),
            (Target::Relay, &mut relay),
        ] {
            let (secs, cpeak, speak) = upload_once(target, size, count).await?;
            acc.0 = acc.0.min(secs);
            acc.1 = acc.1.max(cpeak);
            acc.2 = acc.2.max(speak);
        }
    }
    let mib = (size * count) as f64 / (1024.0 * 1024.0);
    out.set("upload_ratio_vs_raw_quinn", raw.0 / relay.0);
    out.set("upload_relay_mib_per_s", mib / relay.0);
    out.set("upload_raw_quinn_mib_per_s", mib / raw.0);
    out.set("upload_item_mib", size as f64 / (1024.0 * 1024.0));
    out.set("upload_total_mib", mib);
    out.set("upload_client_peak_rss_mib", relay.1);
    out.set("upload_relay_peak_rss_mib", relay.2);
    out.set("upload_raw_client_peak_rss_mib", raw.1);
    out.set("upload_raw_server_peak_rss_mib", raw.2);
    // What durability alone costs: the bare server writing and syncing each item, and the
    // relay measured against that.
    out.set("upload_diag_raw_quinn_durable_mib_per_s", mib / durable.0);
    out.set(
        "upload_diag_durable_raw_ratio_vs_raw_quinn",
        raw.0 / durable.0,
    );
    out.set(
        "upload_diag_ratio_vs_raw_quinn_durable",
        durable.0 / relay.0,
    );
    Ok(())
}

/// (MiB per 1k connections between n1 and n2, RSS at 1, n1, n2 in MiB, handshakes retried).
async fn idle_slope(
    target: Target,
    n1: usize,
    n2: usize,
    settle_ms: u64,
    out: &mut Report,
) -> Result<(f64, f64, f64, f64, f64)> {
    let (mut server, addr, fp) = spawn_server(target, n2).await?;
    let mut args = vec![
        "idle-clients".to_string(),
        "--target".into(),
        target.name().into(),
        "--addr".into(),
        addr,
        "--endpoints".into(),
        "8".into(),
    ];
    if let Some(fp) = fp {
        args.extend(["--fp".to_string(), fp]);
    }
    let (mut clients, _) = Worker::spawn(&args, CHILD_TIMEOUT).await?;
    let settle = Duration::from_millis(settle_ms);
    // One warm-up connection so lazily built state is in the baseline.
    clients.ask("1", CHILD_TIMEOUT).await?;
    tokio::time::sleep(settle).await;
    server.ask("ping", CHILD_TIMEOUT).await?;
    let m0 = server.mem()?.rss_mib;
    let mut at = Vec::new();
    let mut retried = 0.0;
    for n in [n1, n2] {
        let r = clients
            .ask(&n.to_string(), Duration::from_secs(600))
            .await?;
        if num(&r, "open")? as usize != n {
            bail!("only {} of {n} idle connections opened", num(&r, "open")?);
        }
        retried = num(&r, "failures")?;
        tokio::time::sleep(settle).await;
        at.push(server.mem()?.rss_mib);
    }
    let counters = server.ask("stats", CHILD_TIMEOUT).await?;
    clients.stop().await?;
    server.stop().await?;
    if target == Target::Relay {
        for k in [
            "retries_sent",
            "retries_failed",
            "handshakes_failed",
            "refused_connection_limit",
        ] {
            if let Some(v) = counters.get(k).and_then(|v| v.as_f64()) {
                out.set(&format!("idle_relay_{k}"), v);
            }
        }
    }
    let slope = (at[1] - at[0]) / (n2 - n1) as f64 * 1000.0;
    Ok((slope, m0, at[0], at[1], retried))
}

pub async fn idle(s: &Sizes, out: &mut Report) -> Result<()> {
    let (n1, n2) = (s.idle_low, s.idle_high);
    crate::progress(&format!(
        "idle connections: {n1} and {n2}, relay vs bare quinn"
    ));
    let raw = idle_slope(Target::Raw, n1, n2, s.idle_settle_ms, out)
        .await
        .context("idle connections to the bare quinn server")?;
    let relay = idle_slope(Target::Relay, n1, n2, s.idle_settle_ms, out)
        .await
        .context("idle connections to the relay")?;
    out.set("relay_rss_mib_per_1k_idle_conns", relay.0);
    out.set("raw_quinn_rss_mib_per_1k_idle_conns", raw.0);
    out.set("idle_conn_mem_ratio_vs_raw_quinn", relay.0 / raw.0);
    out.set("idle_conns_measured_low", n1 as f64);
    out.set("idle_conns_measured_high", n2 as f64);
    out.set("idle_relay_rss_mib_at_1", relay.1);
    out.set("idle_relay_rss_mib_at_low", relay.2);
    out.set("idle_relay_rss_mib_at_high", relay.3);
    out.set("idle_raw_quinn_rss_mib_at_1", raw.1);
    out.set("idle_raw_quinn_rss_mib_at_high", raw.3);
    out.set("idle_relay_handshakes_retried", relay.4);
    out.set("idle_raw_quinn_handshakes_retried", raw.4);
    Ok(())
}
