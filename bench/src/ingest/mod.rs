//! Ingest throughput against its anchors, deposit latency at a steady offered load, and fetch
//! time in a small vs a big store.
//!
//! * [`raw_sled`]: the anchor (raw sled inserts with a durable group commit) and diagnostic
//!   variants of it;
//! * [`store_only`]: the relay's store without QUIC (`store_us_per_report`);
//! * [`quinn_diag`]: QUIC alone (a bare quinn server that stores nothing);
//! * [`ceiling`]: the same clients against a bare server that does only the durable write, on
//!   the relay's own endpoint (`ingest_ratio_vs_ceiling`);
//! * [`load`]: the load loops.
//!
//! One in-process relay serves the relay phases, in this order: fill the small store → fetch
//! (small) → measured ingest → fetch (big) → open-loop latency.

mod ceiling;
mod load;
mod quinn_diag;
mod raw_sled;
mod store_only;

use crate::relay_cfg::relay_config;
use crate::report::Report;
use crate::util::{cpu_secs, filler, quantile};
use crate::Sizes;
use anyhow::{anyhow, Result};
use ceiling::Ceiling;
use ed25519_dalek::SigningKey;
use load::{connect_many, deposit_many, fetch_time, open_loop, open_loop_raw_quinn};
use quinn_diag::{raw_quinn_ingest, RawQuinnServer};
use raw_sled::{raw_sled, RawWrite};
use std::sync::Arc;
use std::time::Duration;
use vigil_client::relay::RelayClient;
use vigil_core::ids::DepositId;

/// Envelope size for ingest, latency and fetch: a typical text report after encryption.
pub const ENVELOPE_LEN: usize = 4096;
/// Items in the mailbox that is fetched.
pub const FETCH_ITEMS: u32 = 10;
/// Mailboxes the "other" reports are spread over.
const OTHER_MAILBOXES: usize = 16;
/// Rounds in which the relay and the ceiling take turns; `ingest_ratio_vs_ceiling` is their
/// median ratio.
const INGEST_ROUNDS: usize = 5;
/// Upper bound on any one load loop.
const PHASE_TIMEOUT: Duration = Duration::from_secs(600);

fn signing_key(seed: u8) -> SigningKey {
    let mut s = [0u8; 32];
    s[0] = seed;
    s[1] = 0xb3;
    SigningKey::from_bytes(&s)
}

fn deposit_id() -> DepositId {
    DepositId(rand::random())
}

/// Wait for every task of a load loop, at most [`PHASE_TIMEOUT`]; the first error wins.
async fn join_all(tasks: &mut tokio::task::JoinSet<Result<()>>, what: &str) -> Result<()> {
    tokio::time::timeout(PHASE_TIMEOUT, async {
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        anyhow::Ok(())
    })
    .await
    .map_err(|_| anyhow!("{what} did not finish in time"))?
}

pub async fn run(s: &Sizes, out: &mut Report) -> Result<()> {
    let envelope = Arc::new(filler(ENVELOPE_LEN, 0x5eed));
    let ingest_count = s.big_store - s.small_store;

    crate::progress(&format!(
        "ingest anchor: raw sled, {} tasks, {ingest_count} × 4 KiB",
        s.clients
    ));
    let raw = raw_sled(s.clients, ingest_count, envelope.clone(), RawWrite::Inline).await?;
    crate::progress("ingest, durability cost: the same without fdatasync (not power-loss safe)");
    let nosync = raw_sled(
        s.clients,
        ingest_count,
        envelope.clone(),
        RawWrite::InlineWithoutFdatasync,
    )
    .await?;
    out.set("ingest_diag_raw_sled_without_fdatasync_per_s", nosync.per_s);
    out.set(
        "ingest_diag_raw_sled_without_fdatasync_mean_flush_ms",
        nosync.flush_secs * 1e3 / nosync.flushes.max(1) as f64,
    );
    out.set(
        "ingest_diag_fdatasync_throughput_ratio",
        raw.per_s / nosync.per_s.max(f64::MIN_POSITIVE),
    );
    crate::progress("ingest, diagnostics: raw sled via spawn_blocking, and as a transaction");
    let sb = raw_sled(
        s.clients,
        ingest_count,
        envelope.clone(),
        RawWrite::SpawnBlocking,
    )
    .await?;
    let tx = raw_sled(
        s.clients,
        ingest_count,
        envelope.clone(),
        RawWrite::Transaction,
    )
    .await?;
    out.set("ingest_diag_raw_sled_spawn_blocking_per_s", sb.per_s);
    out.set(
        "ingest_diag_raw_sled_spawn_blocking_mean_flush_ms",
        sb.flush_secs * 1e3 / sb.flushes.max(1) as f64,
    );
    let txb = raw_sled(
        s.clients,
        ingest_count,
        envelope.clone(),
        RawWrite::TransactionBlocking,
    )
    .await?;
    out.set("ingest_diag_raw_sled_transaction_blocking_per_s", txb.per_s);
    out.set(
        "ingest_diag_raw_sled_transaction_blocking_mean_flush_ms",
        txb.flush_secs * 1e3 / txb.flushes.max(1) as f64,
    );
    out.set("ingest_diag_raw_sled_transaction_per_s", tx.per_s);
    let batch = raw_sled(s.clients, ingest_count, envelope.clone(), RawWrite::Batch).await?;
    out.set("ingest_diag_raw_sled_batch_per_s", batch.per_s);
    let ins = raw_sled(s.clients, ingest_count, envelope.clone(), RawWrite::Inserts).await?;
    out.set("ingest_diag_raw_sled_5_inserts_per_s", ins.per_s);
    out.set(
        "ingest_diag_raw_sled_transaction_mean_flush_ms",
        tx.flush_secs * 1e3 / tx.flushes.max(1) as f64,
    );
    crate::progress("ingest, middle step: the relay's store and flusher without QUIC");
    let so = store_only::store_only(
        s.clients,
        ingest_count,
        bytes::Bytes::copy_from_slice(&envelope),
    )
    .await?;
    let store_us = so.cpu_secs * 1e6 / ingest_count as f64;
    out.set("store_us_per_report", store_us);
    out.set("ingest_store_only_cpu_us_per_report", store_us);
    out.set("ingest_store_only_per_s", so.per_s);
    out.set("ingest_store_only_ratio_vs_raw_sled", so.per_s / raw.per_s);
    out.set(
        "ingest_store_only_reports_per_flush",
        ingest_count as f64 / so.flushes,
    );
    out.set("ingest_store_only_mean_flush_ms", so.mean_flush_ms);
    out.set("ingest_store_only_blob_files_left", so.blobs);

    crate::progress(&format!(
        "ingest, ceiling: the same {} closed-loop clients against a bare quinn server",
        s.clients
    ));
    // As RelayClient does: one endpoint (UDP socket) per client connection.
    let rq = raw_quinn_ingest(
        RawQuinnServer::Child,
        s.clients,
        s.clients,
        ingest_count,
        envelope.clone(),
    )
    .await?;
    let per = |secs: f64| secs * 1e6 / ingest_count as f64;
    out.set("ingest_diag_raw_quinn_per_s", rq.per_s);
    out.set(
        "ingest_diag_raw_quinn_ratio_vs_raw_sled",
        rq.per_s / raw.per_s,
    );
    out.set(
        "ingest_diag_raw_quinn_client_cpu_us_per_request",
        per(rq.cpu_secs),
    );
    out.set(
        "ingest_diag_raw_quinn_server_cpu_us_per_request",
        per(rq.server_cpu_secs),
    );
    out.set(
        "ingest_diag_raw_quinn_cpu_us_per_request",
        per(rq.cpu_secs + rq.server_cpu_secs),
    );
    out.set("ingest_diag_raw_quinn_client_endpoints", s.clients as f64);
    out.set("ingest_diag_raw_quinn_udp_rcvbuf_drops", rq.udp_drops);
    out.set(
        "ingest_diag_raw_quinn_udp_sends_per_request",
        rq.udp_sends_per_request,
    );
    let rqi = raw_quinn_ingest(
        RawQuinnServer::InProcess,
        s.clients,
        s.clients,
        ingest_count,
        envelope.clone(),
    )
    .await?;
    out.set("ingest_diag_raw_quinn_in_process_per_s", rqi.per_s);
    out.set(
        "ingest_diag_raw_quinn_in_process_ratio_vs_raw_sled",
        rqi.per_s / raw.per_s,
    );
    out.set(
        "ingest_diag_raw_quinn_in_process_cpu_us_per_request",
        per(rqi.cpu_secs),
    );
    out.set(
        "ingest_diag_raw_quinn_in_process_udp_rcvbuf_drops",
        rqi.udp_drops,
    );
    let rq1 = raw_quinn_ingest(
        RawQuinnServer::InProcess,
        s.clients,
        1,
        ingest_count,
        envelope.clone(),
    )
    .await?;
    out.set(
        "ingest_diag_raw_quinn_in_process_1_endpoint_per_s",
        rq1.per_s,
    );
    out.set(
        "ingest_diag_raw_quinn_in_process_1_endpoint_cpu_us_per_request",
        per(rq1.cpu_secs),
    );
    out.set(
        "ingest_diag_raw_quinn_in_process_1_endpoint_udp_rcvbuf_drops",
        rq1.udp_drops,
    );

    crate::progress(&format!(
        "ingest ceiling: the same {} clients against a bare server doing one durable sled write",
        s.clients
    ));
    let ceiling = Ceiling::start(s.clients).await?;
    let ceiling_clients = connect_many(&ceiling.addr, &ceiling.fp, s.clients).await?;

    let dir = tempfile::tempdir()?;
    // The relay gets its own runtime, as `vigil-relay` has in its own process (one worker per
    // core), instead of sharing the one that drives the 256 clients: on a shared runtime, every
    // relay task (above all quinn's endpoint driver, which drains the relay's one UDP socket)
    // queues behind hundreds of ready client tasks, the socket's receive buffer overflows, and
    // the figure measures loss recovery of the bench's own making. The clients and the relay
    // still share this process and its two cores.
    let relay_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
        .thread_name("bench-relay")
        .enable_all()
        .build()?;
    let relay = relay_rt
        .spawn(vigil_relay::start(relay_config(dir.path(), s.clients + 64)))
        .await??;
    let addr = relay.local_addr().to_string();
    let fp = relay.fingerprint();
    let result = async {
        let admin = RelayClient::connect(&addr, &fp).await?;
        let ngo = signing_key(200);
        let ngo_box = admin.register(&ngo).await?;
        let mut others = Vec::new();
        for i in 0..OTHER_MAILBOXES {
            others.push(admin.register(&signing_key(i as u8)).await?);
        }
        crate::progress(&format!(
            "fetch: filling the small store ({} reports)",
            s.small_store
        ));
        let fill = connect_many(&addr, &fp, 16).await?;
        deposit_many(&fill, &others, s.small_store, envelope.clone()).await?;
        deposit_many(
            &fill[..1],
            &[ngo_box],
            FETCH_ITEMS as usize,
            envelope.clone(),
        )
        .await?;
        let small = fetch_time(&admin, &ngo, s.fetch_reps).await?;

        crate::progress(&format!(
            "ingest: {} QUIC clients, {ingest_count} × 4 KiB deposits",
            s.clients
        ));
        let clients = connect_many(&addr, &fp, s.clients).await?;
        // The relay and the ceiling take turns, round by round, so that a slow moment of this
        // shared machine weighs on both alike; each round's ratio compares neighbours.
        let mut ratios = Vec::new();
        let (mut relay_secs, mut ceiling_secs) = (0.0, 0.0);
        let (mut cpu, mut ceiling_cpu, mut ceiling_flushes) = (0.0, 0.0, 0u64);
        let f0 = relay.stats().await.flush;
        let drops0 = crate::util::udp_rcvbuf_errors()?;
        let mut sends = 0.0;
        for round in 0..INGEST_ROUNDS {
            let n =
                ingest_count / INGEST_ROUNDS + usize::from(round < ingest_count % INGEST_ROUNDS);
            let (c0, cf0) = (cpu_secs()?, ceiling.flushes());
            let tc = deposit_many(&ceiling_clients, &others, n, envelope.clone()).await?;
            ceiling_cpu += cpu_secs()? - c0;
            ceiling_flushes += ceiling.flushes() - cf0;
            let (c0, s0) = (cpu_secs()?, crate::util::udp_out_datagrams()?);
            let tr = deposit_many(&clients, &others, n, envelope.clone()).await?;
            cpu += cpu_secs()? - c0;
            sends += crate::util::udp_out_datagrams()? - s0;
            ratios.push(tc.as_secs_f64() / tr.as_secs_f64());
            relay_secs += tr.as_secs_f64();
            ceiling_secs += tc.as_secs_f64();
        }
        let f1 = relay.stats().await.flush;
        out.set("ingest_udp_sends_per_report", sends / ingest_count as f64);
        out.set(
            "ingest_udp_rcvbuf_drops",
            crate::util::udp_rcvbuf_errors()? - drops0,
        );
        let ingest = ingest_count as f64 / relay_secs;
        let ceiling_per_s = ingest_count as f64 / ceiling_secs;
        drop(clients);
        let flushes = f1.flushes.saturating_sub(f0.flushes).max(1) as f64;
        let flush_ms = f1.flush_micros.saturating_sub(f0.flush_micros) as f64 / 1e3;
        out.set("ingest_relay_flushes", flushes);
        out.set(
            "ingest_relay_reports_per_flush",
            ingest_count as f64 / flushes,
        );
        out.set("ingest_relay_mean_flush_ms", flush_ms / flushes);
        out.set(
            "ingest_relay_flush_busy_fraction",
            flush_ms / 1e3 / relay_secs,
        );
        out.set("ingest_cpu_us_per_report", cpu * 1e6 / ingest_count as f64);
        out.set("ingest_cpu_cores_busy", cpu / relay_secs);
        out.set("ingest_ceiling_per_s", ceiling_per_s);
        out.set(
            "ingest_ceiling_cpu_us_per_report",
            ceiling_cpu * 1e6 / ingest_count as f64,
        );
        out.set(
            "ingest_ceiling_reports_per_flush",
            ingest_count as f64 / ceiling_flushes.max(1) as f64,
        );
        out.set("ingest_ratio_vs_ceiling", quantile(&mut ratios, 0.5));
        out.set("ingest_ratio_vs_ceiling_min", quantile(&mut ratios, 0.0));
        out.set("ingest_ratio_vs_ceiling_max", quantile(&mut ratios, 1.0));
        out.set("ingest_ratio_vs_ceiling_rounds", INGEST_ROUNDS as f64);

        crate::progress(&format!("fetch: big store ({} reports)", s.big_store));
        let big = fetch_time(&admin, &ngo, s.fetch_reps).await?;

        crate::progress(&format!(
            "latency: {} deposits/s open loop for {} s",
            s.p99_rate, s.p99_secs
        ));
        let f0 = relay.stats().await.flush;
        let mailbox = others[0];
        let (p50, p99, max, achieved) = open_loop(s.p99_rate, s.p99_secs, |i| {
            let (client, env) = (fill[i % fill.len()].clone(), envelope.clone());
            async move {
                client.deposit(&mailbox, &deposit_id(), &env).await?;
                anyhow::Ok(())
            }
        })
        .await?;
        let f1 = relay.stats().await.flush;
        let flushes = f1.flushes.saturating_sub(f0.flushes).max(1) as f64;
        out.set(
            "deposit_relay_mean_flush_ms",
            f1.flush_micros.saturating_sub(f0.flush_micros) as f64 / 1e3 / flushes,
        );
        out.set(
            "relay_max_flush_ms_since_start",
            f1.max_flush_micros as f64 / 1e3,
        );
        out.set(
            "deposit_relay_reports_per_flush",
            (s.p99_rate * s.p99_secs) / flushes,
        );
        admin.close().await;

        crate::progress("latency anchor: the same open loop against a bare quinn server");
        let (raw_p50, raw_p99) = open_loop_raw_quinn(s, envelope.clone()).await?;
        out.set("deposit_raw_quinn_p50_ms", raw_p50);
        out.set("deposit_raw_quinn_p99_ms", raw_p99);
        out.set("ingest_reports_per_s", ingest);
        out.set("ingest_raw_sled_inserts_per_s", raw.per_s);
        out.set("ingest_ratio_vs_raw_sled", ingest / raw.per_s);
        let rf = raw.flushes.max(1) as f64;
        out.set("ingest_raw_sled_flushes", rf);
        out.set(
            "ingest_raw_sled_reports_per_flush",
            ingest_count as f64 / rf,
        );
        out.set("ingest_raw_sled_mean_flush_ms", raw.flush_secs * 1e3 / rf);
        out.set(
            "ingest_raw_sled_cpu_us_per_report",
            raw.cpu_secs * 1e6 / ingest_count as f64,
        );
        out.set("ingest_clients", s.clients as f64);
        out.set("ingest_reports", ingest_count as f64);
        out.set("ingest_envelope_bytes", ENVELOPE_LEN as f64);
        out.set("deposit_p99_ms", p99);
        out.set("deposit_p50_ms", p50);
        out.set("deposit_max_ms", max);
        out.set("deposit_offered_per_s", s.p99_rate);
        out.set("deposit_achieved_per_s", achieved);
        out.set("fetch_small_store_ms", small);
        out.set("fetch_big_store_ms", big);
        out.set("fetch_ratio_big_vs_small_store", big / small);
        out.set("fetch_small_store_reports", s.small_store as f64);
        out.set("fetch_big_store_reports", s.big_store as f64);
        anyhow::Ok(())
    }
    .await;
    relay_rt.spawn(relay.shutdown()).await??;
    relay_rt.shutdown_background();
    for c in ceiling_clients {
        if let Ok(c) = Arc::try_unwrap(c) {
            c.close().await;
        }
    }
    ceiling.stop();
    result
}
