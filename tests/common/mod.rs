//! Helpers shared by the end-to-end tests: a real relay on 127.0.0.1, real clients driven through
//! the same command-line entry point the `vigil` program uses.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use vigil_client::cli::Cli;
use vigil_client::commands;
use vigil_relay::{RelayConfig, RelayHandle};

/// A relay on a fresh port with its data in `dir`.
pub async fn start_relay(dir: &Path) -> RelayHandle {
    start_relay_at(dir, "127.0.0.1:0").await
}

/// A relay on a given address.
pub async fn start_relay_at(dir: &Path, addr: &str) -> RelayHandle {
    let config = RelayConfig::new(dir, addr.parse().expect("test address"));
    vigil_relay::start(config).await.expect("relay starts")
}

/// Run `vigil ARGS...` in-process; returns the error, if any.
pub async fn vigil(args: &[&str]) -> anyhow::Result<()> {
    let mut full = vec!["vigil"];
    full.extend_from_slice(args);
    let cli = <Cli as clap::Parser>::try_parse_from(full)?;
    commands::run(cli).await
}

/// Run and panic with the message on failure.
pub async fn vigil_ok(args: &[&str]) {
    if let Err(e) = vigil(args).await {
        panic!("vigil {args:?} failed: {e:#}");
    }
}

/// The shared fixtures directory, or None (tests then skip with a message).
pub fn fixtures_dir() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/reports");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!(
            "SKIP: {} is absent; fixture-based checks are skipped",
            p.display()
        );
        None
    }
}

/// Sorted fixture files.
pub fn fixture_files() -> Vec<PathBuf> {
    let Some(dir) = fixtures_dir() else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    v
}

/// An NGO home with its inbox created at `relay` and a second staff key; returns the card path.
pub async fn make_ngo(
    root: &Path,
    dir: &str,
    name: &str,
    relay: &RelayHandle,
) -> (PathBuf, PathBuf) {
    let home = root.join(dir);
    let card = root.join(format!("{dir}.card"));
    let h = home.to_str().expect("utf8");
    vigil_ok(&[
        "--home",
        h,
        "ngo",
        "init",
        "--name",
        name,
        "--relay",
        &relay.local_addr().to_string(),
        "--relay-fingerprint",
        &relay.fingerprint().to_string(),
        "--card-out",
        card.to_str().expect("utf8"),
    ])
    .await;
    vigil_ok(&[
        "--home",
        h,
        "ngo",
        "add-staff",
        "--name",
        "second",
        "--card-out",
        card.to_str().expect("utf8"),
    ])
    .await;
    (home, card)
}

/// Every file below `dir`, recursively.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Does `hay` contain `needle`?
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
