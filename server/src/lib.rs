//! vigil-relay: a QUIC relay that stores only ciphertext.
//!
//! Reporters deposit age-encrypted envelopes into an NGO's mailbox anonymously; the NGO fetches
//! and acknowledges them with a proof of possession of the mailbox key, bound to the TLS session
//! (see `vigil_core::wire::auth` and `docs/protocol.md`). The relay answers "stored" only after
//! the envelope is flushed to disk, keeps nothing about who connected (no IP addresses in the
//! store or in info-level logs), and removes unfetched items after a configurable expiry.
//!
//! Library API, used by `vigil demo` and the end-to-end tests to run a relay in-process:
//! [`start`] → [`RelayHandle`] → [`RelayHandle::shutdown`].
#![forbid(unsafe_code)]

pub mod cert;
pub mod config;
pub mod handlers;
mod listener;
pub mod store;

use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use store::flusher::Flusher;
use store::{SledStore, Store};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vigil_core::ids::CertFingerprint;

pub use config::RelayConfig;

/// Directory inside the data directory that holds the sled database.
pub const STORE_DIR: &str = "store";

/// A running relay. Dropping it without [`RelayHandle::shutdown`] stops accepting and closes
/// connections abruptly; `shutdown` is the orderly way.
pub struct RelayHandle {
    local_addr: SocketAddr,
    fingerprint: CertFingerprint,
    endpoint: quinn::Endpoint,
    cancel: CancellationToken,
    tracker: TaskTracker,
    shared: Option<Arc<handlers::Shared>>,
    store: Arc<dyn Store>,
    accept_task: Option<JoinHandle<()>>,
    flusher_task: Option<JoinHandle<()>>,
    grace: Duration,
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

    /// Stop accepting connections and requests, let in-flight requests finish (up to the
    /// configured grace period), flush the store, and close the endpoint.
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
            tracing::warn!("some requests did not finish within the shutdown grace period");
        }
        // The flusher ends once the last handle to the shared state is gone.
        self.shared.take();
        if let Some(t) = self.flusher_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.flush())
            .await
            .context("final flush task failed")?
            .context("final flush of the store failed")?;
        self.endpoint
            .close(quinn::VarInt::from_u32(0), b"relay shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(3), self.endpoint.wait_idle()).await;
        tracing::info!("relay stopped");
        Ok(())
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.endpoint
            .close(quinn::VarInt::from_u32(0), b"relay stopped");
    }
}

/// Fingerprint of the relay certificate in `dir`, creating the certificate if absent.
pub fn fingerprint_of_data_dir(dir: &Path) -> Result<CertFingerprint> {
    Ok(cert::load_or_create(dir)?.fingerprint())
}

/// Start a relay: load or create the certificate, open the store, bind, and serve in background
/// tasks on the current tokio runtime.
pub async fn start(config: RelayConfig) -> Result<RelayHandle> {
    let identity = cert::load_or_create(&config.data_dir)?;
    let fingerprint = identity.fingerprint();
    let store_path = config.data_dir.join(STORE_DIR);
    let store: Arc<dyn Store> = Arc::new(
        SledStore::open(&store_path, config.expiry, config.quota).with_context(|| {
            format!(
                "cannot open the store in {} (is another vigil-relay using this data directory?)",
                store_path.display()
            )
        })?,
    );
    let server_config = listener::server_config(&identity, &config)?;
    let endpoint = quinn::Endpoint::server(server_config, config.listen)
        .with_context(|| format!("cannot listen on {}; is the port in use?", config.listen))?;
    let local_addr = endpoint
        .local_addr()
        .context("cannot read the listening address")?;

    let (flusher, flusher_task) = Flusher::spawn(store.clone());
    let shared = Arc::new(handlers::Shared::new(store.clone(), flusher.clone()));
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();

    tracker.spawn(expiry_loop(
        store.clone(),
        flusher,
        config.expiry_interval,
        cancel.clone(),
    ));

    let listener = listener::Listener {
        endpoint: endpoint.clone(),
        shared: shared.clone(),
        cancel: cancel.clone(),
        tracker: tracker.clone(),
        connections: Arc::new(Semaphore::new(config.max_connections.max(1))),
        body_budget: listener::Listener::body_budget(config.request_memory_budget),
        request_timeout: config.request_timeout,
    };
    let accept_task = tokio::spawn(listener.run());
    tracing::info!(fingerprint = %fingerprint, "relay listening");
    Ok(RelayHandle {
        local_addr,
        fingerprint,
        endpoint,
        cancel,
        tracker,
        shared: Some(shared),
        store,
        accept_task: Some(accept_task),
        flusher_task: Some(flusher_task),
        grace: config.shutdown_grace,
    })
}

/// Remove expired items now and then every `interval`, until cancelled.
async fn expiry_loop(
    store: Arc<dyn Store>,
    flusher: Flusher,
    interval: Duration,
    cancel: CancellationToken,
) {
    loop {
        let s = store.clone();
        let now = handlers::now_unix();
        match tokio::task::spawn_blocking(move || s.expire(now)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => {
                tracing::info!(removed = n, "expired unfetched items");
                let _ = flusher.flush().await;
            }
            Ok(Err(e)) => tracing::error!(error = %e, "expiry failed"),
            Err(e) => tracing::error!(error = %e, "expiry task failed"),
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
