//! The unlock session: `vigil unlock --for 15m` leaves the vault key with a small process of
//! its own, so the commands of a working session (an NGO reading fifty reports) do not each ask
//! for the passphrase and pay the KDF. `vigil lock`, `vigil panic`, the end of the time, or the
//! home's key file disappearing end it.
//!
//! How, and why this way:
//!
//! - The key is never written to a file. `vigil unlock` starts the agent (this same program,
//!   hidden subcommand `agent-serve`) and hands it the key through the agent's stdin pipe, not
//!   its arguments or environment (which other users' `ps` can read on some systems).
//! - The agent answers on a Unix socket inside the home's `vault/` directory, which is the
//!   user's alone (0700), as ssh-agent's socket directory is: only this user (and root) can
//!   connect. The socket's name is fixed and says nothing but that a session is open.
//! - Time is measured on the monotonic clock, so changing the wall clock does not stretch the
//!   session. The agent checks several times a second whether its time is up, whether it was
//!   told to lock, and whether the key file is still there (after `vigil panic` the key must not
//!   outlive the file).
//! - What it cannot do: keep the key out of swap or a core dump (that needs `mlock`, which the
//!   standard library does not offer without unsafe code, which this project forbids), or out
//!   of reach of root on a running machine. docs/threat-model.md says what that means: a session
//!   is for a machine in a safe room, and a device about to be taken gets `vigil panic`.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vigil_core::vault::{VaultKey, MAX_KEY_FILE_LEN};
use zeroize::Zeroizing;

/// The longest session `vigil unlock --for` opens: a working day. Longer is a machine left
/// unlocked.
pub const MAX_SESSION: Duration = Duration::from_secs(12 * 3600);

/// How often the agent looks at its clock, its socket and the key file.
const TICK: Duration = Duration::from_millis(100);

/// How long a client waits for the agent to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// Where the agent of the home at `root` listens.
pub fn socket_path(root: &Path) -> PathBuf {
    root.join("vault").join("agent.sock")
}

fn ask(root: &Path, request: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let mut s = UnixStream::connect(socket_path(root)).ok()?;
    s.set_read_timeout(Some(ANSWER_WITHIN)).ok()?;
    s.set_write_timeout(Some(ANSWER_WITHIN)).ok()?;
    s.write_all(request).ok()?;
    s.shutdown(std::net::Shutdown::Write).ok()?;
    let mut answer = Zeroizing::new(Vec::new());
    s.take(MAX_KEY_FILE_LEN as u64)
        .read_to_end(&mut answer)
        .ok()?;
    Some(answer)
}

/// The vault key held by an unlock session for this home, if one is open.
pub fn key_for(root: &Path) -> Option<VaultKey> {
    let answer = ask(root, b"key\n")?;
    let text = std::str::from_utf8(&answer).ok()?;
    VaultKey::from_secret_text(text).ok()
}

/// When the session of this home ends (Unix seconds), if one is open.
pub fn session_until(root: &Path) -> Option<u64> {
    let answer = ask(root, b"until\n")?;
    std::str::from_utf8(&answer).ok()?.trim().parse().ok()
}

/// End the session of this home, if one is open; whether one was. Waits (briefly) until the
/// agent is gone, so the next command asks for the passphrase again.
pub fn stop(root: &Path) -> bool {
    let was = ask(root, b"lock\n").is_some_and(|a| a.starts_with(b"locked"));
    let sock = socket_path(root);
    let until = Instant::now() + ANSWER_WITHIN;
    while was && sock.exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    was
}

/// Start a session for `root` holding `key` for `length`. Ends any earlier one first.
pub fn start(root: &Path, key: &VaultKey, length: Duration) -> Result<()> {
    stop(root);
    let exe =
        std::env::current_exe().context("cannot find the vigil program to start the session")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--home")
        .arg(root)
        .arg("agent-serve")
        .arg("--for-secs")
        .arg(length.as_secs().to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    // Its own process group: closing the terminal or Ctrl-C in it does not end the session
    // (`vigil lock` does).
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().context("cannot start the unlock session")?;
    {
        let mut stdin = child
            .stdin
            .take()
            .context("the session has no input pipe")?;
        stdin.write_all(key.to_secret_text().as_bytes())?;
    }
    let stdout = child
        .stdout
        .take()
        .context("the session has no output pipe")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    if line.trim() != "ready" {
        let _ = child.kill();
        let _ = child.wait();
        bail!(
            "the unlock session did not start ({}); run `vigil unlock` again",
            line.trim()
        );
    }
    // The agent runs on; its exit status is nobody's business.
    std::thread::spawn(move || child.wait());
    Ok(())
}

/// The agent itself (`vigil agent-serve`, started by [`start`]): read the key from stdin, listen,
/// answer until the time is up, then wipe the key and go.
pub fn serve(root: &Path, length: Duration) -> Result<()> {
    let mut text = Zeroizing::new(String::new());
    std::io::stdin()
        .take(MAX_KEY_FILE_LEN as u64)
        .read_to_string(&mut text)?;
    let key = VaultKey::from_secret_text(&text).context("the session was given no valid key")?;
    drop(text);
    let length = length.min(MAX_SESSION);
    let sock = socket_path(root);
    if sock.exists() {
        std::fs::remove_file(&sock)?;
    }
    let listener = UnixListener::bind(&sock)
        .with_context(|| format!("cannot listen on {}", sock.display()))?;
    listener.set_nonblocking(true)?;
    let started = Instant::now();
    let until_unix = crate::home::now_unix() + length.as_secs();
    println!("ready");
    std::io::stdout().flush()?;
    let key_file = root.join("vault").join("key");
    loop {
        if started.elapsed() >= length || !key_file.exists() || !sock.exists() {
            break;
        }
        match listener.accept() {
            Ok((mut s, _)) => {
                if answer(&mut s, &key, until_unix) {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(TICK),
            Err(_) => std::thread::sleep(TICK),
        }
    }
    let _ = std::fs::remove_file(&sock);
    Ok(())
}

/// Answer one connection; whether the session should end.
fn answer(s: &mut UnixStream, key: &VaultKey, until_unix: u64) -> bool {
    if s.set_nonblocking(false).is_err()
        || s.set_read_timeout(Some(ANSWER_WITHIN)).is_err()
        || s.set_write_timeout(Some(ANSWER_WITHIN)).is_err()
    {
        return false;
    }
    let mut req = [0u8; 16];
    let mut n = 0;
    while n < req.len() {
        match s.read(&mut req[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return false,
        }
        if req[..n].contains(&b'\n') {
            break;
        }
    }
    match &req[..n] {
        b"key\n" => {
            let _ = s.write_all(key.to_secret_text().as_bytes());
            false
        }
        b"until\n" => {
            let _ = s.write_all(format!("{until_unix}\n").as_bytes());
            false
        }
        b"lock\n" => {
            let _ = s.write_all(b"locked\n");
            true
        }
        _ => false,
    }
}
