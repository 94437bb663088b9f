//! The `vigil-relay` program.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Vigil relay: stores end-to-end encrypted reports until the NGO fetches them.
#[derive(Parser)]
#[command(name = "vigil-relay", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve: listen for QUIC connections until SIGINT or SIGTERM.
    #[command(
        after_help = "Example:\n  vigil-relay serve --data /var/lib/vigil-relay --listen 0.0.0.0:4433"
    )]
    Serve {
        /// Data directory: certificate, key (0600) and the store. Created if absent.
        #[arg(long, env = "VIGIL_RELAY_DATA", value_hint = clap::ValueHint::DirPath)]
        data: PathBuf,
        /// UDP address to listen on.
        #[arg(long, default_value = "127.0.0.1:4433")]
        listen: SocketAddr,
        /// Delete unfetched items after this many days.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3650))]
        expiry_days: u64,
    },
    /// Print the SHA-256 fingerprint of the relay certificate (lowercase hex), creating the
    /// certificate if absent. Put it on the NGO's recipient card.
    Fingerprint {
        /// Data directory.
        #[arg(long, env = "VIGIL_RELAY_DATA", value_hint = clap::ValueHint::DirPath)]
        data: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VIGIL_RELAY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Fingerprint { data } => {
            println!("{}", vigil_relay::fingerprint_of_data_dir(&data)?);
            Ok(())
        }
        Command::Serve {
            data,
            listen,
            expiry_days,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            rt.block_on(async move {
                let mut config = vigil_relay::RelayConfig::new(data, listen);
                config.expiry = Duration::from_secs(expiry_days * 24 * 3600);
                let relay = vigil_relay::start(config).await?;
                eprintln!("vigil-relay listening on {}", relay.local_addr());
                eprintln!("certificate fingerprint: {}", relay.fingerprint());
                wait_for_signal().await?;
                eprintln!("shutting down");
                relay.shutdown().await
            })
        }
    }
}

async fn wait_for_signal() -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot listen for SIGINT")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")?;
    Ok(())
}
