//! The `vigil-relay` program.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use vigil_relay::cert;
use vigil_relay::config::{FileConfig, FlagLayer, LimitOverrides, RelayConfig};

/// Vigil relay: stores end-to-end encrypted reports until the NGO fetches them.
#[derive(Parser)]
#[command(name = "vigil-relay", version, about)]
struct Cli {
    /// Log format on stderr: `text` for people, `json` (one object per line) for collectors.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "VIGIL_RELAY_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Where the configuration comes from. Precedence: flags > `VIGIL_RELAY_*` > file > defaults.
#[derive(Args)]
struct ConfigArgs {
    /// TOML config file (see docs/operations.md); every key optional.
    #[arg(long, env = "VIGIL_RELAY_CONFIG", value_hint = clap::ValueHint::FilePath)]
    config: Option<PathBuf>,
    /// Data directory: certificate, key (0600), the store and stats.json. Created if absent.
    /// Also `VIGIL_RELAY_DATA` or `data_dir` in the file.
    #[arg(long, value_hint = clap::ValueHint::DirPath)]
    data: Option<PathBuf>,
    /// Keep reports in this PostgreSQL database instead of sled under --data, so that several
    /// relays (same --data certificate) can share it: postgres://USER@HOST:PORT/DB. The relay
    /// creates and migrates its tables. Also `VIGIL_RELAY_STORE` or `store` in the file.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// Address to listen on (default 127.0.0.1:4433): QUIC on that UDP port and TLS over TCP
    /// on the same TCP port. Also `VIGIL_RELAY_LISTEN`.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Serve QUIC only, not TLS over TCP (which reaches reporters on networks that block UDP).
    /// Also `VIGIL_RELAY_NO_TCP=1` or `tcp = false` in the file.
    #[arg(long)]
    no_tcp: bool,
    /// Certificate chain (PEM) to show in TLS, e.g. from an ACME client for this relay's
    /// domain, with --tls-key. Default: a plain self-signed one. Cards do not pin it: renew it
    /// freely. Also `VIGIL_RELAY_TLS_CERT` or `tls_cert` in the file.
    #[arg(long, requires = "tls_key", value_hint = clap::ValueHint::FilePath)]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert. Also `VIGIL_RELAY_TLS_KEY` or `tls_key` in the file.
    #[arg(long, requires = "tls_cert", value_hint = clap::ValueHint::FilePath)]
    tls_key: Option<PathBuf>,
    /// HTML page shown to web browsers and scanners at `/` (default: a short blank page).
    /// Also `VIGIL_RELAY_FRONT_PAGE` or `front_page` in the file.
    #[arg(long, value_hint = clap::ValueHint::FilePath)]
    front_page: Option<PathBuf>,
    /// Host name put in the certificate when the data directory has none yet (default: a
    /// random, ordinary-looking one). An existing certificate is kept. Also
    /// `VIGIL_RELAY_CERT_NAME` or `cert_name` in the file.
    #[arg(long)]
    cert_name: Option<String>,
    /// Serve the statistics for Prometheus on this address (`GET /metrics`; counts and sizes
    /// only, no ids or addresses), e.g. 127.0.0.1:9464. Bind it to loopback or a private
    /// network. Also `VIGIL_RELAY_METRICS` or `metrics` in the file.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    #[command(flatten)]
    limits: LimitOverrides,
}

impl ConfigArgs {
    fn resolve(&self) -> Result<RelayConfig> {
        let file = match &self.config {
            Some(p) => Some(FileConfig::load(p)?),
            None => None,
        };
        let flags = FlagLayer {
            data_dir: self.data.clone(),
            store: self.store.clone(),
            listen: self.listen,
            cert_name: self.cert_name.clone(),
            tcp: self.no_tcp.then_some(false),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            front_page: self.front_page.clone(),
            metrics: self.metrics,
            limits: self.limits.clone(),
        };
        Ok(RelayConfig::layered(
            file.as_ref(),
            &|k| std::env::var(k).ok(),
            &flags,
        )?)
    }
}

/// `serve`: the configuration, and how to tell a supervisor that the relay is up.
#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Once listening, print one JSON line on stdout for the process that started this one:
    /// `{"type":"ready","addr":"IP:PORT","fingerprint":"HEX"}` (the bound address, useful with
    /// port 0, and the certificate's SHA-256 fingerprint). Nothing else goes to stdout.
    #[arg(long)]
    ready_json: bool,
}

/// Only what finds the data directory.
#[derive(Args)]
struct DataArgs {
    /// Data directory of the relay. Also `VIGIL_RELAY_DATA`.
    #[arg(long, env = "VIGIL_RELAY_DATA", value_hint = clap::ValueHint::DirPath)]
    data: Option<PathBuf>,
    /// Or take `data_dir` from this config file.
    #[arg(long, env = "VIGIL_RELAY_CONFIG", value_hint = clap::ValueHint::FilePath)]
    config: Option<PathBuf>,
}

impl DataArgs {
    fn dir(&self) -> Result<PathBuf> {
        if let Some(d) = &self.data {
            return Ok(d.clone());
        }
        if let Some(p) = &self.config {
            if let Some(d) = FileConfig::load(p)?.data_dir {
                return Ok(d);
            }
        }
        Ok(PathBuf::from(vigil_relay::config::DEFAULT_DATA_DIR))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve: listen for QUIC connections until SIGINT or SIGTERM, then stop cleanly (exit 0).
    #[command(
        after_help = "Examples:\n  vigil-relay serve --data /var/lib/vigil-relay --listen 0.0.0.0:4433\n  \
                            vigil-relay serve --config /etc/vigil-relay.toml --max-connections 512"
    )]
    Serve(Box<ServeArgs>),
    /// Validate the configuration (file, environment, flags) and print the effective one.
    CheckConfig(Box<ConfigArgs>),
    /// Print counts and sizes of a running relay (from DATA/stats.json; no ids, no addresses).
    Stats {
        #[command(flatten)]
        data: DataArgs,
        /// Print the JSON snapshot instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Exit 0 if the relay runs and accepts reports, 1 (with the reason on stderr) if not.
    Health {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Print the SHA-256 fingerprint of the relay certificate (lowercase hex), creating the
    /// certificate if absent. Put it on the NGO's recipient card.
    Fingerprint {
        /// Data directory.
        #[arg(long, env = "VIGIL_RELAY_DATA", value_hint = clap::ValueHint::DirPath)]
        data: PathBuf,
        /// Print the next certificate's fingerprint (made by `cert rotate`) instead; fails if
        /// there is none. NGOs announce it with `vigil ngo set-relay --next-fingerprint`.
        #[arg(long)]
        next: bool,
        /// Host name for the certificate if this makes it (none in the data directory yet).
        #[arg(long, env = "VIGIL_RELAY_CERT_NAME")]
        cert_name: Option<String>,
    },
    /// Rotate the relay certificate: `rotate` makes the next one, `promote` makes it current.
    #[command(subcommand, after_help = CERT_HELP)]
    Cert(CertCmd),
}

const CERT_HELP: &str = "\
Procedure (docs/operations.md, \"Rotating the certificate\"):
  vigil-relay cert rotate --data DIR      # prints the next fingerprint; give it to every NGO
  ... NGOs announce it on new cards; wait until reporters have them ...
  systemctl stop vigil-relay
  vigil-relay cert promote --data DIR     # next becomes current; the old key is wiped
  systemctl start vigil-relay";

#[derive(Subcommand)]
enum CertCmd {
    /// Make a next certificate and key beside the current ones and print its fingerprint. Run
    /// again, it prints the same fingerprint (unless --force). The relay keeps serving the
    /// current certificate.
    Rotate {
        /// Data directory.
        #[arg(long, env = "VIGIL_RELAY_DATA", value_hint = clap::ValueHint::DirPath)]
        data: PathBuf,
        /// Replace an existing next certificate (cards announcing it must be re-issued).
        #[arg(long)]
        force: bool,
        /// Host name in the next certificate (default: a random, ordinary-looking one).
        #[arg(long, env = "VIGIL_RELAY_CERT_NAME")]
        cert_name: Option<String>,
    },
    /// Make the next certificate current and wipe the old key. Stop the relay first (or restart
    /// it right after): a running relay serves the old certificate until it restarts.
    Promote {
        /// Data directory.
        #[arg(long, env = "VIGIL_RELAY_DATA", value_hint = clap::ValueHint::DirPath)]
        data: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("VIGIL_RELAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match cli.log_format {
        LogFormat::Json => builder.json().with_current_span(false).init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Fingerprint {
            data,
            next: false,
            cert_name,
        } => {
            let id = cert::load_or_create_named(&data, cert_name.as_deref())?;
            println!("{}", id.fingerprint());
        }
        Command::Fingerprint {
            data, next: true, ..
        } => match cert::next_fingerprint(&data)? {
            Some(fp) => println!("{fp}"),
            None => anyhow::bail!(
                "{} has no next certificate; make one with `vigil-relay cert rotate --data {}`",
                data.display(),
                data.display()
            ),
        },
        Command::Cert(CertCmd::Rotate {
            data,
            force,
            cert_name,
        }) => {
            let r = cert::rotate_named(&data, force, cert_name.as_deref())?;
            println!("{}", r.next);
            if r.created {
                eprintln!(
                    "next certificate created; the relay still serves the current one. Give this \
                     fingerprint to every NGO (`vigil ngo set-relay --next-fingerprint FP`), wait \
                     until their reporters have the new cards, then stop the relay, run \
                     `vigil-relay cert promote` and start it again"
                );
            } else {
                eprintln!(
                    "a next certificate already exists; this is its fingerprint (--force replaces \
                     it, and cards announcing it must then be re-issued)"
                );
            }
        }
        Command::Cert(CertCmd::Promote { data }) => {
            let p = cert::promote(&data)?;
            println!("{}", p.current);
            match p.old {
                Some(old) => eprintln!("certificate {old} retired; {} is now current", p.current),
                None => eprintln!("{} is now current", p.current),
            }
            eprintln!(
                "the old key was overwritten and deleted (best effort: on SSDs and journaling or \
                 copy-on-write file systems, and in backups, copies may survive); restart the \
                 relay if it is running: it serves the new certificate only after a restart. \
                 NGOs should now issue cards with `vigil ngo set-relay --relay-fingerprint {}`",
                p.current
            );
        }
        Command::CheckConfig(args) => {
            let config = args.resolve()?;
            print!("{}", config.to_toml());
            eprintln!("configuration is valid");
        }
        Command::Stats { data, json } => {
            let dir = data.dir()?;
            let s = vigil_relay::stats::read(&dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print_stats(&s);
            }
            if let Err(why) = vigil_relay::stats::health(&s, vigil_relay::clock::now_unix()) {
                eprintln!("note: {why}");
            }
        }
        Command::Health { data } => {
            let dir = data.dir()?;
            let verdict = vigil_relay::stats::read(&dir)
                .map_err(|e| format!("{e:#}"))
                .and_then(|s| vigil_relay::stats::health(&s, vigil_relay::clock::now_unix()));
            return Ok(match verdict {
                Ok(line) => {
                    println!("{line}");
                    ExitCode::SUCCESS
                }
                Err(why) => {
                    eprintln!("unhealthy: {why}");
                    ExitCode::FAILURE
                }
            });
        }
        Command::Serve(args) => {
            let config = args.config.resolve()?;
            let ready_json = args.ready_json;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            rt.block_on(async move {
                let relay = vigil_relay::start(config).await?;
                // Listen for signals before saying we are up: a supervisor (or a
                // test) may send SIGTERM the moment it reads the ready line, and a
                // signal that arrives before the handler exists kills the process
                // without the clean shutdown (final flush, stats snapshot).
                let signals = Signals::listen()?;
                eprintln!("vigil-relay listening on {}", relay.local_addr());
                eprintln!("certificate fingerprint: {}", relay.fingerprint());
                if ready_json {
                    announce_ready(relay.local_addr(), relay.fingerprint())?;
                }
                signals.wait().await?;
                eprintln!("shutting down");
                relay.shutdown().await
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_stats(s: &vigil_relay::RelayStats) {
    let now = vigil_relay::clock::now_unix();
    println!("version               {}", s.version);
    println!(
        "snapshot age          {} s",
        now.saturating_sub(s.written_at)
    );
    println!(
        "uptime                {} s",
        s.written_at.saturating_sub(s.started_at)
    );
    println!("accepting deposits    {}", s.accepting_deposits);
    println!("free bytes            {}", s.free_bytes);
    println!("mailboxes             {}", s.store.mailboxes);
    println!("items waiting         {}", s.store.items);
    println!("envelope bytes        {}", s.store.bytes);
    println!("check-in alerts armed {}", s.store.alerts);
    println!("attachment blobs      {}", s.store.blobs);
    println!("attachment bytes      {}", s.store.blob_bytes);
    println!("store size on disk    {}", s.store_disk_bytes);
    println!("connections open      {}", s.connections_open);
    println!("connections accepted  {}", s.connections_accepted);
    println!(
        "connections refused   {} (total limit), {} (per address)",
        s.refused_connection_limit, s.refused_per_address
    );
    println!(
        "retries sent          {} ({} not possible, admitted)",
        s.retries_sent, s.retries_failed
    );
    println!("handshakes failed     {}", s.handshakes_failed);
    println!("connections expired   {}", s.connections_expired);
    println!(
        "slow requests         {} (header), {} (body)",
        s.header_timeouts, s.slow_bodies
    );
    println!("rate limited          {}", s.rate_limited);
    println!("over TCP              {}", s.tcp_accepted);
    println!("web answers           {} (no knock)", s.front_requests);
    println!("QUIC knocks failed    {}", s.knocks_failed);
    println!(
        "deposits              {} stored, {} duplicate",
        s.deposits_stored, s.deposits_duplicate
    );
    println!("registrations         {}", s.registrations);
    println!("fetches               {}", s.fetches);
    println!("items acked           {}", s.items_acked);
    println!("attachment bytes in   {}", s.blob_bytes_received);
    println!(
        "flushes               {} ({} waiters, largest batch {}, mean {} us, max {} us, {} failed)",
        s.flush.flushes,
        s.flush.waiters,
        s.flush.max_batch,
        s.flush.flush_micros / s.flush.flushes.max(1),
        s.flush.max_flush_micros,
        s.flush.failures
    );
    for (code, n) in &s.refused {
        println!("refused {code:<14}{n}");
    }
}

/// The `--ready-json` line, flushed at once: the parent is waiting for it.
fn announce_ready(addr: SocketAddr, fingerprint: vigil_core::ids::CertFingerprint) -> Result<()> {
    use std::io::Write;
    let line = serde_json::json!({
        "type": "ready",
        "addr": addr.to_string(),
        "fingerprint": fingerprint.to_string(),
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .context("cannot write the ready line on stdout")
}

/// SIGTERM and Ctrl-C, listened for from the moment this is made.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
                int: signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    #[cfg_attr(not(unix), allow(unused_mut))]
    async fn wait(mut self) -> Result<()> {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c()
            .await
            .context("cannot listen for Ctrl-C")?;
        Ok(())
    }
}
