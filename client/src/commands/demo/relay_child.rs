//! The demo's relay: the `vigil-relay` program as a child process, so that the reporter's
//! program contains no relay (no server code, no sled store).
//!
//! The program is found through `VIGIL_RELAY_BIN`, else beside the running `vigil`, else on
//! `PATH`. Under `cargo run` a missing one is built first (`cargo build -p vigil-relay`), so
//! `cargo run --release -p vigil-client -- demo` works on a fresh clone. The child runs
//! `vigil-relay serve --listen 127.0.0.1:0 --ready-json` and says where it listens and which
//! certificate it serves on its first stdout line; it is stopped with SIGTERM, which makes it
//! flush its store and exit.

use crate::output::Output;
use anyhow::{bail, Context, Result};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use vigil_core::ids::CertFingerprint;

/// Environment variable naming the `vigil-relay` program to run.
pub const RELAY_BIN_ENV: &str = "VIGIL_RELAY_BIN";
/// Longest wait for the child's ready line (a first start creates a certificate and a store).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the child to stop after SIGTERM (it lets requests finish, then flushes).
const STOP_TIMEOUT: Duration = Duration::from_secs(40);

fn program_name() -> String {
    format!("vigil-relay{}", std::env::consts::EXE_SUFFIX)
}

/// A running `vigil-relay` child.
pub struct RelayChild {
    child: Child,
    /// Kept open so the child's stdout is never a closed pipe.
    _stdout: BufReader<ChildStdout>,
    /// Where it listens (`127.0.0.1:PORT`).
    pub addr: String,
    /// Its certificate.
    pub fingerprint: CertFingerprint,
    /// The program that runs.
    pub program: PathBuf,
}

impl RelayChild {
    /// Start the relay program with its data in `data_dir` and its log in `log_file`, and wait
    /// until it listens.
    pub async fn start(data_dir: &Path, log_file: &Path, out: Output) -> Result<Self> {
        let program = find_or_build(out).await?;
        let log = std::fs::File::create(log_file)
            .with_context(|| format!("cannot create {}", log_file.display()))?;
        let mut cmd = Command::new(&program);
        cmd.args(["serve", "--data"]).arg(data_dir).args([
            "--listen",
            "127.0.0.1:0",
            "--ready-json",
        ]);
        // The operator's settings (a config file, limits) are not the demo's.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("VIGIL_RELAY_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("VIGIL_RELAY_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let mut stdout = BufReader::new(child.stdout.take().context("no stdout pipe")?);
        let mut line = String::new();
        let read = tokio::time::timeout(READY_TIMEOUT, stdout.read_line(&mut line)).await;
        let (addr, fingerprint) = match read {
            Ok(Ok(n)) if n > 0 => parse_ready(&line)?,
            _ => {
                let _ = child.kill().await;
                bail!(
                    "the relay program {} did not start: {}",
                    program.display(),
                    last_line(log_file).unwrap_or_else(|| "no ready line, no log".into())
                );
            }
        };
        Ok(Self {
            child,
            _stdout: stdout,
            addr,
            fingerprint,
            program,
        })
    }

    /// Stop the relay the way an operator does (SIGTERM: finish, flush, exit 0) and wait for it,
    /// so that its files are complete and closed. Killed if it does not stop in time.
    pub async fn stop(mut self) -> Result<()> {
        #[cfg(unix)]
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        #[cfg(not(unix))]
        let _ = self.child.start_kill();
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => {
                let status = status.context("cannot wait for the relay to stop")?;
                if !cfg!(unix) || status.success() {
                    Ok(())
                } else {
                    bail!("the relay did not stop cleanly ({status})")
                }
            }
            Err(_) => {
                let _ = self.child.kill().await;
                bail!(
                    "the relay did not stop within {} seconds and was killed",
                    STOP_TIMEOUT.as_secs()
                )
            }
        }
    }
}

/// `{"type":"ready","addr":"127.0.0.1:PORT","fingerprint":"HEX"}`
fn parse_ready(line: &str) -> Result<(String, CertFingerprint)> {
    let bad = || format!("the relay's ready line is not what this vigil expects: {line:?}");
    let v: serde_json::Value = serde_json::from_str(line.trim()).with_context(bad)?;
    if v["type"] != "ready" {
        bail!(bad());
    }
    let addr = v["addr"].as_str().with_context(bad)?.to_string();
    let fingerprint = v["fingerprint"]
        .as_str()
        .and_then(|f| f.parse().ok())
        .with_context(bad)?;
    Ok((addr, fingerprint))
}

fn last_line(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(str::to_string)
}

/// The relay program: `explicit` (from [`RELAY_BIN_ENV`]), else `vigil-relay` in `exe_dir`
/// (beside the running `vigil`), else the first one on `path_var`.
fn locate(
    explicit: Option<OsString>,
    exe_dir: Option<&Path>,
    path_var: Option<&OsStr>,
) -> Result<Option<PathBuf>> {
    if let Some(p) = explicit {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!(
                "{RELAY_BIN_ENV} names {}, which is not a file; point it at the vigil-relay program",
                p.display()
            );
        }
        return Ok(Some(p));
    }
    let name = program_name();
    let beside = exe_dir.map(|d| d.join(&name)).filter(|p| p.is_file());
    Ok(beside.or_else(|| {
        std::env::split_paths(path_var?)
            .map(|d| d.join(&name))
            .find(|p| p.is_file())
    }))
}

/// Whether `exe` is a release build (`target/release/vigil`).
fn is_release_build(exe: &Path) -> bool {
    exe.parent()
        .and_then(Path::file_name)
        .is_some_and(|d| d == "release")
}

/// Find the relay program or, under `cargo run`, build it.
async fn find_or_build(out: Output) -> Result<PathBuf> {
    let exe = std::env::current_exe().ok();
    let exe_dir = exe.as_deref().and_then(Path::parent);
    let path_var = std::env::var_os("PATH");
    if let Some(p) = locate(
        std::env::var_os(RELAY_BIN_ENV),
        exe_dir,
        path_var.as_deref(),
    )? {
        return Ok(p);
    }
    let how = "build it with `cargo build --release -p vigil-relay` and keep it beside vigil, or \
               set VIGIL_RELAY_BIN to its path";
    let (Some(cargo), Some(manifest_dir), Some(exe)) = (
        std::env::var_os("CARGO"),
        std::env::var_os("CARGO_MANIFEST_DIR"),
        exe.as_deref(),
    ) else {
        bail!(
            "the demo needs the vigil-relay program, found neither beside vigil nor on PATH; {how}"
        );
    };
    let mut args = vec!["build", "-p", "vigil-relay"];
    if is_release_build(exe) {
        args.push("--release");
    }
    out.say(format!(
        "The demo runs the relay as its own program, vigil-relay, which is not built yet: running `cargo {}` first.",
        args.join(" ")
    ));
    let status = Command::new(&cargo)
        .args(&args)
        .current_dir(&manifest_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .await
        .with_context(|| format!("cannot run {}", Path::new(&cargo).display()))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status}); {how}", args.join(" "));
    }
    match locate(None, exe.parent(), None)? {
        Some(p) => Ok(p),
        None => bail!(
            "built vigil-relay, but it is not beside {}; {how}",
            exe.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::write(p, b"").expect("write");
    }

    #[test]
    fn the_relay_program_is_found_by_env_then_beside_vigil_then_on_path() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (exe_dir, on_path, elsewhere) = (
            tmp.path().join("target"),
            tmp.path().join("bin"),
            tmp.path().join("x"),
        );
        for d in [&exe_dir, &on_path, &elsewhere] {
            std::fs::create_dir(d).expect("dir");
        }
        let path_var = std::env::join_paths([&elsewhere, &on_path]).expect("PATH");
        assert_eq!(
            locate(None, Some(&exe_dir), Some(&path_var)).expect("ok"),
            None
        );
        touch(&on_path.join(program_name()));
        assert_eq!(
            locate(None, Some(&exe_dir), Some(&path_var)).expect("ok"),
            Some(on_path.join(program_name()))
        );
        touch(&exe_dir.join(program_name()));
        assert_eq!(
            locate(None, Some(&exe_dir), Some(&path_var)).expect("ok"),
            Some(exe_dir.join(program_name()))
        );
        let chosen = elsewhere.join("my-relay");
        touch(&chosen);
        assert_eq!(
            locate(Some(chosen.clone().into()), Some(&exe_dir), Some(&path_var)).expect("ok"),
            Some(chosen)
        );
        let err = locate(Some(elsewhere.join("missing").into()), None, None).expect_err("missing");
        assert!(err.to_string().contains(RELAY_BIN_ENV), "{err}");
    }

    #[test]
    fn release_builds_build_a_release_relay() {
        assert!(is_release_build(Path::new("/w/target/release/vigil")));
        assert!(!is_release_build(Path::new("/w/target/debug/vigil")));
        assert!(!is_release_build(Path::new("vigil")));
    }

    #[test]
    fn the_ready_line_is_checked() {
        let fp = "ab".repeat(32);
        let (addr, got) = parse_ready(&format!(
            "{{\"type\":\"ready\",\"addr\":\"127.0.0.1:4433\",\"fingerprint\":\"{fp}\"}}\n"
        ))
        .expect("parses");
        assert_eq!(addr, "127.0.0.1:4433");
        assert_eq!(got.to_string(), fp);
        assert!(parse_ready("listening").is_err());
        assert!(parse_ready("{\"type\":\"ready\",\"addr\":\"a\",\"fingerprint\":\"zz\"}").is_err());
    }
}
