//! Starting and stopping a relay: certificate, socket, background tasks, orderly shutdown.

use crate::cert;
use crate::config::RelayConfig;
use crate::handlers::Shared;
use crate::listener::{self, Listener, ListenerCounters};
use crate::stats::{self, RelayStats};
use crate::store::space::{DirProbe, SpaceGuard};
use crate::store::{PgStore, SledStore, Store};
use anyhow::{Context, Result};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vigil_core::ids::CertFingerprint;

/// Directory inside the data directory that holds the sled database.
pub const STORE_DIR: &str = "store";
/// Directory inside the data directory that holds attachment blobs, one file per blob.
pub const BLOB_DIR: &str = "blobs";

/// Open the sled store `config` names (in `data_dir/store`, with its quota, expiry and cache).
pub fn open_store(config: &RelayConfig) -> Result<Arc<dyn Store>> {
    check_data_dir(&config.data_dir)?;
    let path = config.data_dir.join(STORE_DIR);
    let l = &config.limits;
    let blobs = config.data_dir.join(BLOB_DIR);
    let store = SledStore::open_with_blobs(
        &path,
        config.expiry(),
        l.quota(),
        l.store_cache_bytes,
        &blobs,
    )
    .with_context(|| {
        format!(
            "cannot open the store in {} (is another vigil-relay using this data directory?)",
            path.display()
        )
    })?;
    Ok(Arc::new(store))
}

/// Make sure the data directory exists and this process may list and write it, so that a
/// permissions problem is reported as one (with what to do), not as a busy store.
fn check_data_dir(dir: &Path) -> Result<()> {
    let fail = |e: std::io::Error| anyhow::anyhow!(data_dir_advice(dir, &e));
    std::fs::create_dir_all(dir).map_err(fail)?;
    std::fs::read_dir(dir).map_err(fail)?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"").map_err(fail)?;
    std::fs::remove_file(&probe).map_err(fail)?;
    Ok(())
}

/// What went wrong with the data directory `dir`, and what to do about it, in one line.
fn data_dir_advice(dir: &Path, e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    let what = match e.kind() {
        ErrorKind::PermissionDenied => "run vigil-relay as the user that owns it, give that user access (e.g. `chown -R vigil-relay DIR`), or pass another --data".to_string(),
        ErrorKind::ReadOnlyFilesystem => "its file system is mounted read-only; remount it writable or pass another --data".into(),
        ErrorKind::StorageFull => "its disk is full; free space or pass another --data".into(),
        _ => "check that the path is a directory this user may write, or pass another --data".into(),
    };
    format!(
        "cannot use the data directory {} ({e}): {what}",
        dir.display()
    )
}

/// Serve with `store` until `shutdown` completes, then stop cleanly (see
/// [`RelayHandle::shutdown`]).
pub async fn run(
    config: RelayConfig,
    store: Arc<dyn Store>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let relay = start_with(config, store).await?;
    tracing::info!(listen = %relay.local_addr(), "listening on {}", relay.local_addr());
    shutdown.await;
    tracing::info!("shutting down");
    relay.shutdown().await
}

/// Start a relay on the store `config` names: PostgreSQL at `config.store`, or else sled in
/// `config.data_dir`.
pub async fn start(config: RelayConfig) -> Result<RelayHandle> {
    config.limits.validate()?;
    let store = match &config.store {
        Some(url) => open_pg_store(&config, url).await?,
        None => open_store(&config)?,
    };
    start_with(config, store).await
}

/// Open the PostgreSQL store at `url` (creating or migrating its tables). The data directory
/// is still checked: it holds the certificate and key.
pub async fn open_pg_store(config: &RelayConfig, url: &str) -> Result<Arc<dyn Store>> {
    check_data_dir(&config.data_dir)?;
    let l = &config.limits;
    let store = PgStore::open(url, config.expiry(), l.quota(), l.store_connections).await?;
    Ok(Arc::new(store))
}

/// Start a relay on `store`: load or create the certificate, bind, and serve in background tasks
/// on the current tokio runtime.
pub async fn start_with(config: RelayConfig, store: Arc<dyn Store>) -> Result<RelayHandle> {
    config.limits.validate()?;
    let limits = config.limits.clone();
    let identity = cert::load_or_create_named(&config.data_dir, config.cert_name.as_deref())?;
    let fingerprint = identity.fingerprint();
    let identity_key = Arc::new(listener::IdentityKey::new(&identity)?);
    let front = cert::load_front(
        &config.data_dir,
        config.cert_name.as_deref(),
        config.tls_cert.as_deref().zip(config.tls_key.as_deref()),
    )?;
    let front_page = Arc::new(listener::FrontPage::load(config.front_page.as_deref())?);
    let (endpoint, tcp) = bind(&config, &front)?;
    let local_addr = endpoint
        .local_addr()
        .context("cannot read the listening address")?;

    let space = Arc::new(SpaceGuard::new(
        Box::new(DirProbe {
            dir: config.data_dir.clone(),
        }),
        limits.min_free_bytes,
    ));
    {
        let s = space.clone();
        let _ = tokio::task::spawn_blocking(move || s.refresh()).await;
    }
    store.set_blob_expiry(limits.blob_expiry_secs);
    let shared = Arc::new(
        Shared::new(store.clone())
            .with_max_report_bytes(limits.max_report_bytes)
            .with_space(space.clone())
            .with_fetch_slots(limits.fetch_slots)
            .with_waiters(limits.max_waiters_per_mailbox, limits.wait_secs())
            .with_max_mailbox_lifetime(limits.max_mailbox_lifetime_days),
    );
    // Every armed alert is scheduled before the first request can touch one (docs/protocol.md,
    // "Time", rule 3: an overdue alert gets its grace from now).
    let armed = shared
        .alerts
        .load(&*store, crate::clock::now_unix())
        .await
        .context("cannot read the armed check-in alerts from the store")?;
    if armed > 0 {
        tracing::info!(alerts = armed, "check-in alerts armed");
    }
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    tracker.spawn(
        shared
            .alerts
            .clone()
            .run(store.clone(), shared.waiters.clone(), cancel.clone()),
    );
    // Deposits taken by other relays on a shared store wake this relay's watchers too.
    {
        let waiters = Arc::downgrade(&shared.waiters);
        store.on_deposits(Arc::new(move |mailbox| {
            if let Some(w) = waiters.upgrade() {
                match mailbox {
                    Some(m) => w.wake(&m),
                    None => w.wake_all(),
                }
            }
        }));
    }
    if store.shared() {
        tracker.spawn(adopt_alerts_loop(
            shared.alerts.clone(),
            store.clone(),
            cancel.clone(),
        ));
    }
    // Waiting watchers answer as the relay begins to shut down, not at the end of their wait.
    tracker.spawn({
        let (waiters, cancel) = (shared.waiters.clone(), cancel.clone());
        async move {
            cancel.cancelled().await;
            waiters.close();
        }
    });
    tracker.spawn(expiry_loop(
        store.clone(),
        Duration::from_secs(limits.expiry_interval_secs),
        cancel.clone(),
    ));
    tracker.spawn(space_loop(
        space,
        Duration::from_secs(limits.space_check_secs),
        cancel.clone(),
    ));
    let listener_counters = Arc::new(ListenerCounters::default());
    let listener = Listener::new(
        endpoint.clone(),
        shared.clone(),
        cancel.clone(),
        tracker.clone(),
        &limits,
        listener_counters.clone(),
        identity_key,
        front_page,
    );
    let listener = Arc::new(listener);
    let hard_stop = listener.hard_stop.clone();
    if let Some(tcp) = tcp {
        let tls = listener::tcp_config(&front)?;
        tracker.spawn(listener.clone().run_tcp(tcp, tls));
    }
    let stats = StatsSource {
        data_dir: config.data_dir.clone(),
        shared,
        listener: listener_counters,
        endpoint: endpoint.clone(),
        started_at: crate::clock::now_unix(),
        interval_secs: limits.stats_interval_secs,
    };
    tracker.spawn(stats_loop(stats.clone(), cancel.clone()));
    // Prometheus metrics (issue 17), when asked for: the same counts as the stats file.
    let metrics_addr = match config.metrics {
        Some(addr) => {
            let l = crate::metrics::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("metrics: {}", bind_advice(addr, &e)))?;
            let bound = l.local_addr().ok();
            let source = stats.clone();
            tracker.spawn(crate::metrics::serve(
                l,
                move || source.snapshot(false),
                cancel.clone(),
            ));
            bound
        }
        None => None,
    };
    let accept_task = tokio::spawn(listener.run());
    tracing::info!(fingerprint = %fingerprint, "relay listening");
    Ok(RelayHandle {
        local_addr,
        fingerprint,
        endpoint,
        cancel,
        tracker,
        store,
        accept_task: Some(accept_task),
        grace: Duration::from_secs(limits.shutdown_grace_secs),
        stats,
        hard_stop,
        metrics_addr,
    })
}

/// Bind QUIC on `config.listen` and, unless turned off, TCP on the same port number. With port
/// 0, the port QUIC got is tried for TCP, and another pair when it is taken.
fn bind(
    config: &RelayConfig,
    front: &cert::Front,
) -> Result<(quinn::Endpoint, Option<tokio::net::TcpListener>)> {
    let mut attempts = 0;
    loop {
        let endpoint = quic_endpoint(config, front)?;
        if !config.tcp {
            return Ok((endpoint, None));
        }
        let addr = endpoint
            .local_addr()
            .context("cannot read the listening address")?;
        match tcp_listener(addr) {
            Ok(l) => return Ok((endpoint, Some(l))),
            Err(e) if config.listen.port() == 0 && attempts < 20 => {
                attempts += 1;
                tracing::debug!(error = %e, "TCP port taken; trying another pair");
            }
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "TCP: {} (or run with --no-tcp to serve QUIC only)",
                    bind_advice(config.listen, &e)
                ))
            }
        }
    }
}

fn tcp_listener(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv6() {
        tokio::net::TcpSocket::new_v6()?
    } else {
        tokio::net::TcpSocket::new_v4()?
    };
    // A restarted relay binds again while old connections linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// A running relay. Dropping it without [`RelayHandle::shutdown`] stops accepting and closes
/// connections abruptly; `shutdown` is the orderly way.
pub struct RelayHandle {
    local_addr: SocketAddr,
    fingerprint: CertFingerprint,
    endpoint: quinn::Endpoint,
    cancel: CancellationToken,
    tracker: TaskTracker,
    store: Arc<dyn Store>,
    accept_task: Option<JoinHandle<()>>,
    grace: Duration,
    stats: StatsSource,
    /// Ends TLS-over-TCP connections still open when the shutdown grace period is over.
    hard_stop: CancellationToken,
    /// Where `--metrics` serves, if it does.
    metrics_addr: Option<SocketAddr>,
}

impl RelayHandle {
    /// The UDP address the relay listens on (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// SHA-256 fingerprint of the relay certificate, as pinned by recipient cards.
    pub fn fingerprint(&self) -> CertFingerprint {
        self.fingerprint
    }

    /// The address the Prometheus metrics are served on (`--metrics`), with the real port.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// A stats snapshot now (counts and sizes only).
    pub async fn stats(&self) -> RelayStats {
        let s = self.stats.clone();
        tokio::task::spawn_blocking(move || s.snapshot(false))
            .await
            .unwrap_or_default()
    }

    /// Stop accepting connections and requests, let in-flight requests finish (up to the
    /// configured grace period), make the store durable, and close the endpoint. A deposit whose
    /// body is still arriving when the grace period ends never reaches the store (a large one
    /// streams into a temporary file that is deleted when its upload fails): no report is ever
    /// half stored; its client got no "stored" and retries with the same deposit id.
    pub async fn shutdown(mut self) -> Result<()> {
        self.endpoint.set_server_config(None);
        self.cancel.cancel();
        if let Some(t) = self.accept_task.take() {
            let _ = t.await;
        }
        self.tracker.close();
        if tokio::time::timeout(self.grace, self.tracker.wait())
            .await
            .is_err()
        {
            // Abort what is left: closing the connections fails every pending read, so a
            // deposit whose body is still arriving ends before it reaches the store.
            tracing::warn!(
                "some requests did not finish within the shutdown grace period; aborting them"
            );
            self.endpoint
                .close(quinn::VarInt::from_u32(0), b"relay shutting down");
            self.hard_stop.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(5), self.tracker.wait()).await;
        }
        self.store
            .flush()
            .await
            .context("final flush of the store failed")?;
        self.endpoint
            .close(quinn::VarInt::from_u32(0), b"relay shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(3), self.endpoint.wait_idle()).await;
        self.stats.write(true).await;
        tracing::info!("relay stopped");
        Ok(())
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.hard_stop.cancel();
        self.endpoint
            .close(quinn::VarInt::from_u32(0), b"relay stopped");
    }
}

/// Answer the knock on a fresh QUIC connection to an endpoint made with [`quic_endpoint`], as
/// the relay does before it serves requests: `true` when the client knocked with `identity`'s
/// fingerprint and got the identity proof. For the benchmarks' ceiling server, which must do
/// the same work per connection as the relay.
pub async fn answer_knock(conn: &quinn::Connection, identity: &cert::Identity) -> Result<bool> {
    let key = listener::IdentityKey::new(identity)?;
    let mut exporter = [0u8; vigil_core::wire::limits::EXPORTER_LEN];
    conn.export_keying_material(&mut exporter, vigil_core::wire::limits::EXPORTER_LABEL, b"")
        .map_err(|_| anyhow::anyhow!("TLS exporter unavailable"))?;
    Ok(listener::answer_knock(conn, &key, &exporter)
        .await
        .is_some())
}

/// Fingerprint of the relay certificate in `dir`, creating the certificate if absent.
pub fn fingerprint_of_data_dir(dir: &Path) -> Result<CertFingerprint> {
    Ok(cert::load_or_create(dir)?.fingerprint())
}

/// What went wrong binding `addr`, and what to do about it, in one line.
fn bind_advice(addr: std::net::SocketAddr, e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    let what = match e.kind() {
        ErrorKind::PermissionDenied if addr.port() < 1024 => format!(
            "ports below 1024 need privileges: run the relay with CAP_NET_BIND_SERVICE (e.g. `setcap cap_net_bind_service=+ep vigil-relay`, or AmbientCapabilities= in its systemd unit), or listen on a port of 1024 or above such as {}:4433",
            addr.ip()
        ),
        ErrorKind::PermissionDenied => "the system refused it; check the firewall or security policy (SELinux, AppArmor) for this program".into(),
        ErrorKind::AddrInUse => "another program already uses this port; stop it, or choose another --listen port".into(),
        ErrorKind::AddrNotAvailable => "this machine has no such address; use one of its own addresses, or 0.0.0.0 for all".into(),
        _ => "check the --listen address".into(),
    };
    format!("cannot listen on {addr} ({e}): {what}")
}

/// The relay's QUIC endpoint for `config`, presenting `identity`: its TLS and transport
/// settings, and the UDP socket bound with the configured buffer sizes. (The benchmarks build
/// their ceiling server on the same endpoint, so it differs from the relay only in what it does
/// with a request.)
pub fn quic_endpoint(config: &RelayConfig, front: &cert::Front) -> Result<quinn::Endpoint> {
    let server_config = listener::server_config(front, config)?;
    let socket = std::net::UdpSocket::bind(config.listen)
        .map_err(|e| anyhow::anyhow!(bind_advice(config.listen, &e)))?;
    let want = config.limits.udp_buffer_bytes;
    let state = quinn::udp::UdpSocketState::new((&socket).into())
        .context("cannot set up the UDP socket")?;
    // A refusal here is not fatal: the relay works with the kernel's default buffers, only
    // drops more packets under load. Linux reports twice the size it grants.
    let _ = state.set_recv_buffer_size((&socket).into(), want);
    let _ = state.set_send_buffer_size((&socket).into(), want);
    let got = state.recv_buffer_size((&socket).into()).unwrap_or(0);
    if got < want {
        tracing::warn!(
            wanted = want,
            granted = got,
            "the kernel granted a smaller UDP receive buffer than udp_buffer_bytes; under load \
             packets will be dropped; raise net.core.rmem_max (see docs/operations.md)"
        );
    }
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(server_config),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|e| anyhow::anyhow!(bind_advice(config.listen, &e)))
}

/// Everything a stats snapshot is made from.
#[derive(Clone)]
struct StatsSource {
    data_dir: std::path::PathBuf,
    shared: Arc<Shared>,
    listener: Arc<ListenerCounters>,
    endpoint: quinn::Endpoint,
    started_at: u64,
    interval_secs: u64,
}

impl StatsSource {
    /// Take a snapshot (blocking: reads the store directory's size).
    fn snapshot(&self, stopped: bool) -> RelayStats {
        use std::sync::atomic::Ordering::Relaxed;
        let store = &self.shared.store;
        let c = &self.shared.counters;
        let l = &self.listener;
        let refused = c
            .refused
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let n = n.load(Relaxed);
                let code = vigil_core::wire::ErrorCode::from_u16(i as u16);
                (n > 0).then(|| (code.to_string(), n))
            })
            .collect();
        RelayStats {
            version: env!("CARGO_PKG_VERSION").to_string(),
            written_at: crate::clock::now_unix(),
            started_at: self.started_at,
            interval_secs: self.interval_secs,
            stopped,
            store: store.stats(),
            store_disk_bytes: stats::dir_size(&self.data_dir.join(STORE_DIR)),
            accepting_deposits: self.shared.space.accepting(),
            free_bytes: self.shared.space.available(),
            last_flush_ok: store.last_flush_ok(),
            flush: store.flush_stats(),
            connections_open: self.endpoint.open_connections() as u64,
            connections_accepted: l.connections_accepted.load(Relaxed),
            refused_connection_limit: l.refused_connection_limit.load(Relaxed),
            refused_per_address: l.refused_per_address.load(Relaxed),
            retries_sent: l.retries_sent.load(Relaxed),
            retries_failed: l.retries_failed.load(Relaxed),
            handshakes_failed: l.handshakes_failed.load(Relaxed),
            connections_expired: l.connections_expired.load(Relaxed),
            header_timeouts: l.header_timeouts.load(Relaxed),
            slow_bodies: l.slow_bodies.load(Relaxed),
            rate_limited: l.rate_limited.load(Relaxed),
            tcp_accepted: l.tcp_accepted.load(Relaxed),
            front_requests: l.front_requests.load(Relaxed),
            knocks_failed: l.knocks_failed.load(Relaxed),
            deposits_stored: c.deposits_stored.load(Relaxed),
            deposits_duplicate: c.deposits_duplicate.load(Relaxed),
            registrations: c.registrations.load(Relaxed),
            fetches: c.fetches.load(Relaxed),
            items_acked: c.items_acked.load(Relaxed),
            blob_bytes_received: c.blob_bytes_received.load(Relaxed),
            refused,
        }
    }

    async fn write(&self, stopped: bool) {
        let me = self.clone();
        let r = tokio::task::spawn_blocking(move || {
            let s = me.snapshot(stopped);
            stats::write(&me.data_dir, &s)
        })
        .await;
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot write the stats file"),
            Err(e) => tracing::warn!(error = %e, "stats task failed"),
        }
    }
}

/// Probe free space every `interval`, so deposits resume by themselves when space returns.
async fn space_loop(space: Arc<SpaceGuard>, interval: Duration, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
        let s = space.clone();
        let _ = tokio::task::spawn_blocking(move || s.refresh()).await;
    }
}

/// Write the stats file now and every interval, until cancelled.
async fn stats_loop(stats: StatsSource, cancel: CancellationToken) {
    let interval = Duration::from_secs(stats.interval_secs.max(1));
    loop {
        stats.write(false).await;
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// Remove expired items now and then every `interval`, until cancelled.
/// How often a relay on a shared store looks for alerts armed through other relays.
const ADOPT_ALERTS_EVERY: Duration = Duration::from_secs(30);

/// On a shared store, schedule the alerts other relays armed (see [`AlertSchedule::adopt`]),
/// so that an alert is released on time even when the relay that armed it is gone.
async fn adopt_alerts_loop(
    schedule: Arc<crate::alerts::AlertSchedule>,
    store: Arc<dyn Store>,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(ADOPT_ALERTS_EVERY) => {}
        }
        match schedule.adopt(&*store, crate::clock::now_unix()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                alerts = n,
                "scheduled check-in alerts armed through other relays"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the armed check-in alerts; trying again")
            }
        }
    }
}

async fn expiry_loop(store: Arc<dyn Store>, interval: Duration, cancel: CancellationToken) {
    loop {
        match store.expire(crate::clock::now_unix()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "expired unfetched items"),
            Err(e) => tracing::error!(error = %e, "expiry failed"),
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn setup_errors_say_what_to_do_not_a_wrong_guess() {
        let low: std::net::SocketAddr = "0.0.0.0:443".parse().unwrap();
        let high: std::net::SocketAddr = "0.0.0.0:4433".parse().unwrap();
        let denied = Error::from(ErrorKind::PermissionDenied);
        let m = bind_advice(low, &denied);
        assert!(
            m.contains("below 1024") && m.contains("CAP_NET_BIND_SERVICE"),
            "{m}"
        );
        assert!(!m.contains("in use"), "{m}");
        let m = bind_advice(high, &Error::from(ErrorKind::AddrInUse));
        assert!(m.contains("already uses this port"), "{m}");
        let m = data_dir_advice(Path::new("/var/lib/vigil-relay"), &denied);
        assert!(
            m.contains("/var/lib/vigil-relay") && m.contains("--data"),
            "{m}"
        );
        assert!(!m.contains("another vigil-relay"), "{m}");
    }

    #[test]
    fn a_data_directory_that_is_a_file_is_refused_before_the_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let e = check_data_dir(&file).unwrap_err().to_string();
        assert!(e.contains("cannot use the data directory"), "{e}");
    }
}
