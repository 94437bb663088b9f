//! The real `vigil` and `vigil-relay` programs, for the figures that must come from them (the
//! attachment phase measures the processes a reporter and an NGO actually run, not the library
//! in this process).
//!
//! They are looked for beside this program (`target/<profile>/`). `cargo run -p vigil-bench`
//! builds only the bench, so when one is missing, or older than a source file it is built from
//! (the bench must never measure a stale program), they are built with `$CARGO build -p
//! vigil-client -p vigil-relay --bins` in this program's profile.

use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Paths of the two programs.
pub struct Programs {
    pub vigil: PathBuf,
    pub relay: PathBuf,
}

impl Programs {
    /// Find them beside this program, building them first when missing or stale.
    pub fn find() -> Result<Programs> {
        let me = std::env::current_exe().context("cannot find the vigil-bench executable")?;
        let dir = me
            .parent()
            .ok_or_else(|| anyhow!("vigil-bench has no directory"))?;
        // Under `cargo test` the bench's own test runs this program from target/<profile>/,
        // like `cargo run`; a test binary itself would sit in deps/.
        let dir = if dir.file_name().is_some_and(|n| n == "deps") {
            dir.parent().unwrap_or(dir)
        } else {
            dir
        };
        let exe = |name: &str| dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        let p = Programs {
            vigil: exe("vigil"),
            relay: exe("vigil-relay"),
        };
        let newest = newest_source();
        let stale = |path: &Path| match (modified(path), newest) {
            (None, _) => true,
            (Some(m), Some(n)) => m < n,
            (Some(_), None) => false,
        };
        if stale(&p.vigil) || stale(&p.relay) {
            build(dir)?;
        }
        for path in [&p.vigil, &p.relay] {
            if !path.is_file() {
                bail!("{} is missing after the build", path.display());
            }
        }
        Ok(p)
    }
}

fn modified(p: &Path) -> Option<SystemTime> {
    p.metadata().and_then(|m| m.modified()).ok()
}

/// When the newest source file of the two programs changed, if the source tree this bench was
/// built from is still there (a copied bench binary uses the programs beside it as they are).
fn newest_source() -> Option<SystemTime> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if !root.join("client/src").is_dir() {
        return None;
    }
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut stack: Vec<PathBuf> = ["src", "client/src", "client/i18n", "server/src", "fs/src"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Some(m) = modified(&p) {
                newest = newest.max(m);
            }
        }
    }
    Some(newest)
}

/// Build both programs into `profile_dir` (`target/<profile>`), in that profile.
fn build(profile_dir: &Path) -> Result<()> {
    crate::progress("building vigil and vigil-relay (missing or older than their sources)");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "-p", "vigil-client", "-p", "vigil-relay", "--bins"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
    }
    if let Some(target_dir) = profile_dir.parent() {
        cmd.arg("--target-dir").arg(target_dir);
    }
    // Cargo's output would break the one JSON line on stdout.
    cmd.stdout(std::process::Stdio::null());
    let status = cmd.status().context("cannot run cargo to build vigil")?;
    if !status.success() {
        bail!("building vigil and vigil-relay failed: {status}");
    }
    Ok(())
}
