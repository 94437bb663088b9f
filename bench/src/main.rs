//! vigil-bench: Vigil's throughput, latency and memory as ratios against anchors measured in
//! the same run on the same bytes (raw sled, a bare quinn stream and server, the `age` crate).
//!
//! ```text
//! cargo run --release -p vigil-bench -- --quick --json   # about 2 minutes on 2 cores
//! cargo run --release -p vigil-bench                     # full run, human table
//! cargo run -p vigil-bench -- --smoke --json             # tiny sizes, for tests
//! cargo run --release -p vigil-bench -- --json --only attachments   # issue 13, 1 GiB
//! cargo run --release -p vigil-bench -- --json --only watch         # issue 14, ~30 s
//! cargo run --release -p vigil-bench -- --json --only live          # issue 15, seconds
//! ```
//!
//! All traffic stays on 127.0.0.1 and every load loop is bounded in count and time. The
//! hidden subcommands are the child processes the memory figures need (see `net.rs`).

mod attachments;
mod blobs;
mod crypto;
mod ingest;
mod kdf;
mod live;
mod net;
mod panic;
mod programs;
mod relay_cfg;
mod report;
mod util;
mod watch;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use report::Report;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Parser, Debug)]
#[command(
    name = "vigil-bench",
    about = "Vigil's throughput, latency and memory as ratios against same-run anchors",
    after_help = "Figures and their anchors: docs/benchmarks.md"
)]
struct Cli {
    /// Smaller sizes (under 3 minutes on 2 cores); the sizes used are in the output.
    #[arg(long, conflicts_with = "smoke")]
    quick: bool,
    /// Tiny sizes, seconds: checks that every figure is produced, measures nothing useful.
    #[arg(long)]
    smoke: bool,
    /// Print one JSON object of numbers on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// Run only these phases (comma-separated: crypto, kdf, panic, ingest, upload, idle, blobs,
    /// attachments, watch, live).
    #[arg(long, value_delimiter = ',')]
    only: Vec<Phase>,
    #[command(subcommand)]
    child: Option<Child>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Phase {
    Crypto,
    Kdf,
    Panic,
    Ingest,
    Upload,
    Idle,
    Blobs,
    Attachments,
    Watch,
    Live,
}

#[derive(Subcommand, Debug)]
enum Child {
    /// (internal) Run a relay for memory measurements.
    #[command(hide = true)]
    ServeRelay {
        #[arg(long)]
        connections: usize,
    },
    /// (internal) Run a bare quinn server.
    #[command(hide = true)]
    ServeRawQuinn {
        /// Write each stream to a file and sync it before answering.
        #[arg(long)]
        durable: bool,
    },
    /// (internal) Upload items and report time and peak memory.
    #[command(hide = true)]
    UploadClient {
        #[arg(long, value_enum)]
        target: net::Target,
        #[arg(long)]
        addr: String,
        #[arg(long)]
        fp: Option<String>,
        #[arg(long)]
        size: usize,
        #[arg(long)]
        count: usize,
    },
    /// (internal) Send bytes on one stream to a bare quinn server and report the time.
    #[command(hide = true)]
    StreamClient {
        #[arg(long)]
        addr: String,
        #[arg(long)]
        bytes: u64,
    },
    /// (internal) Hold idle connections.
    #[command(hide = true)]
    IdleClients {
        #[arg(long, value_enum)]
        target: net::Target,
        #[arg(long)]
        addr: String,
        #[arg(long, default_value_t = 8)]
        endpoints: usize,
        /// The relay's fingerprint (the relay target): each connection knocks with it.
        #[arg(long)]
        fp: Option<String>,
    },
}

/// Sizes of one run.
#[derive(Clone, Debug)]
pub struct Sizes {
    pub clients: usize,
    pub small_store: usize,
    pub big_store: usize,
    pub fetch_reps: usize,
    pub p99_rate: f64,
    pub p99_secs: f64,
    pub crypto_bytes: usize,
    pub crypto_reps: usize,
    pub upload_item: usize,
    pub upload_count: usize,
    pub upload_rounds: usize,
    pub idle_low: usize,
    pub idle_high: usize,
    /// Pause before each idle-memory reading, so the server has finished its handshake work.
    pub idle_settle_ms: u64,
    /// Size of the blob the `blobs` phase sends through the relay and back.
    pub blob_bytes: u64,
    /// Size of the file the `attachments` phase sends with the real programs (issue 13 asks
    /// for 1 GiB; `--quick` sends 256 MiB, said by the key `attachment_mib`).
    pub attachment_bytes: u64,
}

const MIB: usize = 1024 * 1024;

impl Sizes {
    fn full() -> Self {
        Sizes {
            clients: 256,
            small_store: 1_000,
            big_store: 100_000,
            fetch_reps: 50,
            p99_rate: 1000.0,
            p99_secs: 20.0,
            crypto_bytes: 100 * MIB,
            crypto_reps: 3,
            upload_item: vigil_core::wire::limits::MAX_ENVELOPE_LEN,
            upload_count: 64,
            upload_rounds: 2,
            idle_low: 1_000,
            idle_high: 10_000,
            idle_settle_ms: 1500,
            blob_bytes: 1 << 30,
            attachment_bytes: 1 << 30,
        }
    }
    fn quick() -> Self {
        Sizes {
            big_store: 20_000,
            fetch_reps: 30,
            p99_secs: 5.0,
            crypto_reps: 2,
            upload_count: 8,
            idle_low: 500,
            idle_high: 2_000,
            attachment_bytes: 256 << 20,
            ..Self::full()
        }
    }
    fn smoke() -> Self {
        Sizes {
            clients: 8,
            small_store: 40,
            big_store: 200,
            fetch_reps: 3,
            p99_rate: 100.0,
            p99_secs: 1.0,
            crypto_bytes: 2 * MIB,
            crypto_reps: 1,
            upload_item: MIB,
            upload_count: 2,
            upload_rounds: 1,
            idle_low: 5,
            idle_high: 20,
            idle_settle_ms: 200,
            blob_bytes: 20 * MIB as u64,
            attachment_bytes: 4 * MIB as u64,
        }
    }
}

static QUIET: AtomicBool = AtomicBool::new(false);

/// A progress line on stderr (hidden under `--json`).
pub fn progress(msg: &str) {
    if !QUIET.load(Ordering::Relaxed) {
        eprintln!("vigil-bench: {msg}");
    }
}

async fn bench(cli: &Cli) -> Result<Report> {
    let (sizes, mode) = if cli.smoke {
        (Sizes::smoke(), 0.0)
    } else if cli.quick {
        (Sizes::quick(), 1.0)
    } else {
        (Sizes::full(), 2.0)
    };
    let run = |p: Phase| cli.only.is_empty() || cli.only.contains(&p);
    let mut out = Report::default();
    out.set("mode_smoke0_quick1_full2", mode);
    let started = std::time::Instant::now();
    if run(Phase::Crypto) {
        let s = sizes.clone();
        let mut part = Report::default();
        let part =
            tokio::task::spawn_blocking(move || crypto::run(&s, &mut part).map(|_| part)).await??;
        out.merge(part);
    }
    if run(Phase::Kdf) {
        // Smoke runs check the figure is produced, at work factors that cost nothing.
        let (factors, reps) = if cli.smoke { (8..=9, 1) } else { (14..=18, 3) };
        let mut part = Report::default();
        let part =
            tokio::task::spawn_blocking(move || kdf::run(factors, reps, &mut part).map(|_| part))
                .await??;
        out.merge(part);
    }
    if run(Phase::Panic) {
        // A full inbox: 10 000 reports (about two years of a busy desk); a full outbox: 500
        // queued copies of 200 KB.
        let (inbox, outbox) = if cli.smoke { (20, 5) } else { (10_000, 500) };
        let mut part = Report::default();
        let part =
            tokio::task::spawn_blocking(move || panic::run(inbox, outbox, &mut part).map(|_| part))
                .await??;
        out.merge(part);
    }
    if run(Phase::Ingest) {
        ingest::run(&sizes, &mut out).await?;
    }
    if run(Phase::Upload) {
        net::upload(&sizes, &mut out).await?;
    }
    if run(Phase::Idle) {
        net::idle(&sizes, &mut out).await?;
    }
    if run(Phase::Blobs) {
        blobs::run(sizes.blob_bytes, &mut out).await?;
    }
    if run(Phase::Attachments) {
        attachments::run(sizes.attachment_bytes, &mut out).await?;
    }
    if run(Phase::Watch) {
        watch::run(cli.smoke, &mut out).await?;
    }
    if run(Phase::Live) {
        live::run(if cli.smoke { 10 } else { 200 }, &mut out).await?;
    }
    out.set("run_secs", started.elapsed().as_secs_f64());
    out.set(
        "nproc",
        std::thread::available_parallelism().map_or(0, |n| n.get()) as f64,
    );
    Ok(out)
}

async fn child(c: &Child) -> Result<()> {
    match c {
        Child::ServeRelay { connections } => net::serve_relay(*connections).await,
        Child::ServeRawQuinn { durable } => net::serve_raw_quinn(*durable).await,
        Child::UploadClient {
            target,
            addr,
            fp,
            size,
            count,
        } => net::upload_client(*target, addr, fp.as_deref(), *size, *count).await,
        Child::StreamClient { addr, bytes } => attachments::stream_client(addr, *bytes).await,
        Child::IdleClients {
            target,
            addr,
            endpoints,
            fp,
        } => net::idle_clients(*target, addr, *endpoints, fp.as_deref()).await,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    QUIET.store(cli.json, Ordering::Relaxed);
    let result = async {
        if let Some(c) = &cli.child {
            return child(c).await;
        }
        if !cfg!(target_os = "linux") {
            bail!("vigil-bench reads /proc for memory figures and runs on Linux only");
        }
        let out = bench(&cli).await?;
        if cli.json {
            println!("{}", out.json());
        } else {
            print!("{}", out.table());
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
