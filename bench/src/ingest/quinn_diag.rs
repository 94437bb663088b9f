//! Diagnostic: the same closed-loop clients against a bare quinn server that stores nothing
//! (what QUIC alone costs on this machine).

use super::join_all;
use crate::util::cpu_secs;
use anyhow::{anyhow, bail, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the bare-quinn ingest diagnostic's server runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RawQuinnServer {
    /// The `serve-raw-quinn` child process (its CPU is read from `/proc/PID/stat`).
    Child,
    /// A bare quinn server in this process on its own runtime, as the relay runs in the
    /// ingest phase.
    InProcess,
}

/// What the bare-quinn ingest diagnostic measured.
pub struct RawQuinn {
    pub per_s: f64,
    /// UDP datagrams dropped for a full receive buffer during the run (machine-wide).
    pub udp_drops: f64,
    /// UDP sends (both directions, machine-wide) per request.
    pub udp_sends_per_request: f64,
    /// CPU of this process (the clients, plus the server when it is in process).
    pub cpu_secs: f64,
    /// CPU of the server child, if the server was a child.
    pub server_cpu_secs: f64,
}

/// A client transport like `RelayClient`'s: BBR, no streams opened by the server,
/// keep-alives, 20 s idle timeout.
fn raw_quinn_client_config() -> Result<quinn::ClientConfig> {
    let mut cc = crate::util::client_config(crate::util::RAW_ALPN)?;
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_uni_streams(0u32.into());
    t.max_concurrent_bidi_streams(0u32.into());
    t.keep_alive_interval(Some(Duration::from_secs(5)));
    t.max_idle_timeout(Some(quinn::IdleTimeout::try_from(Duration::from_secs(20))?));
    t.congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()));
    cc.transport_config(Arc::new(t));
    Ok(cc)
}

/// Diagnostic ceiling for ingest: the same shape as the relay's ingest (`clients` QUIC
/// connections from this process, each doing its share of `count` requests one after another:
/// open a bidirectional stream, write the 4 KiB envelope, finish, read the one-byte answer)
/// against a bare quinn server that stores nothing. `endpoints`: UDP sockets (quinn endpoints)
/// the clients are spread over; `RelayClient` opens one per client.
pub async fn raw_quinn_ingest(
    server: RawQuinnServer,
    clients: usize,
    endpoints: usize,
    count: usize,
    envelope: Arc<Vec<u8>>,
) -> Result<RawQuinn> {
    let (child, local, remote) = match server {
        RawQuinnServer::Child => {
            let (w, addr, _) = crate::net::spawn_server(crate::net::Target::Raw, clients).await?;
            (Some(w), None, addr.parse::<std::net::SocketAddr>()?)
        }
        RawQuinnServer::InProcess => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
                .thread_name("bench-raw-quinn")
                .enable_all()
                .build()?;
            let ep = rt
                .spawn(async { crate::net::raw_quinn_server(false) })
                .await??;
            let addr = ep.local_addr()?;
            (None, Some((rt, ep)), addr)
        }
    };
    let config = raw_quinn_client_config()?;
    let eps = (0..endpoints.clamp(1, clients.max(1)))
        .map(|_| quinn::Endpoint::client(std::net::SocketAddr::from(([127, 0, 0, 1], 0))))
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut conns = Vec::with_capacity(clients);
    let mut set = tokio::task::JoinSet::new();
    for c in 0..clients {
        let connecting = eps[c % eps.len()].connect_with(config.clone(), remote, "localhost")?;
        set.spawn(tokio::time::timeout(Duration::from_secs(10), connecting));
        if set.len() >= 32 {
            if let Some(r) = set.join_next().await {
                conns.push(r?.map_err(|_| anyhow!("a bare quinn handshake timed out"))??);
            }
        }
    }
    while let Some(r) = set.join_next().await {
        conns.push(r?.map_err(|_| anyhow!("a bare quinn handshake timed out"))??);
    }
    let server_cpu = || match &child {
        Some(w) => crate::util::cpu_secs_of(w.pid),
        None => Ok(0.0),
    };
    let (cpu0, scpu0) = (cpu_secs()?, server_cpu()?);
    let drops0 = crate::util::udp_rcvbuf_errors()?;
    let sends0 = crate::util::udp_out_datagrams()?;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (c, conn) in conns.iter().enumerate() {
        let share = count / clients + usize::from(c < count % clients);
        let (conn, env) = (conn.clone(), envelope.clone());
        tasks.spawn(async move {
            for _ in 0..share {
                let (mut send, mut recv) = conn.open_bi().await?;
                send.write_all(&env).await?;
                send.finish()?;
                let reply = recv.read_to_end(16).await?;
                if reply != [1] {
                    bail!("bare quinn server answered {reply:?}");
                }
            }
            anyhow::Ok(())
        });
    }
    join_all(&mut tasks, "bare quinn ingest").await?;
    let secs = start.elapsed().as_secs_f64();
    let (cpu, scpu) = (cpu_secs()? - cpu0, server_cpu()? - scpu0);
    let udp_drops = crate::util::udp_rcvbuf_errors()? - drops0;
    let udp_sends_per_request = (crate::util::udp_out_datagrams()? - sends0) / count as f64;
    for c in &conns {
        c.close(0u32.into(), b"done");
    }
    for ep in &eps {
        let _ = tokio::time::timeout(Duration::from_secs(2), ep.wait_idle()).await;
    }
    if let Some((rt, ep)) = local {
        ep.close(0u32.into(), b"done");
        rt.shutdown_background();
    }
    if let Some(w) = child {
        w.stop().await?;
    }
    Ok(RawQuinn {
        per_s: count as f64 / secs,
        udp_drops,
        udp_sends_per_request,
        cpu_secs: cpu,
        server_cpu_secs: scpu,
    })
}
