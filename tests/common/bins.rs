//! The `vigil` and `vigil-relay` programs, for tests that run them as a person or a script does.
//!
//! Cargo tells a test where its own package's programs are (`CARGO_BIN_EXE_*`), but these live
//! in other packages. A test binary sits in `target/<profile>/deps/`, so the programs are
//! expected in `target/<profile>/`: `cargo test --workspace` builds them before running any
//! test (cargo builds a package's programs for `cargo test` only when that package has
//! integration tests of its own: `client/tests/usage.rs` and `server/tests/` are why both are
//! built). When one is missing, or older than a source file it is built from (as after
//! `cargo test -p vigil-e2e` following a change to the client), they are built first with
//! `$CARGO build -p vigil-client -p vigil-relay --bins` (with the test's profile), once per test
//! process, so a test never runs a stale program.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

/// The `vigil` program.
pub fn vigil() -> &'static Path {
    &programs().0
}

/// `cmd` with the locale set to `C` and Vigil's language variables removed: the messages tests
/// read are English whatever the developer's locale (`vigil_client::i18n` chooses the language
/// from these variables). A test that wants another language sets it after this.
pub fn in_english(cmd: &mut std::process::Command) -> &mut std::process::Command {
    cmd.env("LANG", "C")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env_remove("VIGIL_LANG")
}

/// The passphrase every test home is encrypted under (issue 12: all client state is).
pub const TEST_PASSPHRASE: &str = "correct horse battery staple of the test suite";

/// A file holding [`TEST_PASSPHRASE`], written once per test process.
pub fn passphrase_file() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("vigil-test-pass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("passphrase dir");
        let f = dir.join("passphrase");
        std::fs::write(&f, format!("{TEST_PASSPHRASE}\n")).expect("passphrase file");
        f
    })
}

/// `cmd` as a script drives `vigil` ([`in_english`]), giving the home's passphrase through
/// `VIGIL_PASSPHRASE_FILE` and a cheap scrypt work factor (`VIGIL_VAULT_WORK_FACTOR=10`; the
/// suite makes hundreds of homes, and what the factor costs is measured by `vigil-bench`, not
/// here), without the pause between queued deposits. A test that wants no passphrase, or
/// another one, overrides or removes them after this.
pub fn as_script(cmd: &mut std::process::Command) -> &mut std::process::Command {
    in_english(cmd)
        .env("VIGIL_PASSPHRASE_FILE", passphrase_file())
        .env("VIGIL_VAULT_WORK_FACTOR", "10")
        // The random pause between queued deposits (1-5 s each) would make the suite crawl;
        // `queued_deposits_go_one_per_connection_with_a_random_pause` checks it.
        .env("VIGIL_NO_DELAY", "1")
}

/// The home at `dir` as the library sees it, unlocked with [`TEST_PASSPHRASE`] (a new one made
/// with the test suite's cheap work factor).
pub fn home(dir: impl Into<PathBuf>) -> anyhow::Result<vigil_client::home::Home> {
    Ok(vigil_client::home::Home::open(dir)?
        .with_passphrase(TEST_PASSPHRASE.to_string().into())
        .with_work_factor(10))
}

/// The `vigil-relay` program.
pub fn vigil_relay() -> &'static Path {
    &programs().1
}

fn programs() -> &'static (PathBuf, PathBuf) {
    static PROGRAMS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    PROGRAMS.get_or_init(|| {
        let test_exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = test_exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary is in target/<profile>/deps");
        let exe = |name: &str| profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        let (vigil, relay) = (exe("vigil"), exe("vigil-relay"));
        let sources = newest_source();
        if [&vigil, &relay]
            .iter()
            .any(|p| modified(p).is_none_or(|m| m < sources))
        {
            build(profile_dir);
        }
        for p in [&vigil, &relay] {
            assert!(p.is_file(), "{} is missing after the build", p.display());
        }
        (vigil, relay)
    })
}

fn modified(p: &Path) -> Option<SystemTime> {
    p.metadata().and_then(|m| m.modified()).ok()
}

/// When the newest source file the two programs are built from changed (the same mtimes cargo
/// compares; a manifest edit alone need not rebuild them).
fn newest_source() -> SystemTime {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut stack: Vec<PathBuf> = ["src", "client/src", "server/src", "fs/src"]
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
    newest
}

fn build(profile_dir: &Path) {
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
    let status = cmd
        .status()
        .expect("run cargo to build vigil and vigil-relay");
    assert!(
        status.success(),
        "building vigil and vigil-relay failed: {status}"
    );
}

/// Run the `vigil` program with `args` as a script would ([`as_script`], no `VIGIL_HOME`), off
/// the async threads (an in-process relay may be serving on them), and return its output.
pub async fn vigil_output(args: &[&str]) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let mut c = std::process::Command::new(vigil());
        c.args(&args).env_remove("VIGIL_HOME");
        as_script(&mut c);
        c.output().expect("run vigil")
    })
    .await
    .expect("vigil ran")
}
