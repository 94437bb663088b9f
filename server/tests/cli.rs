//! The `vigil-relay` program: output format, environment variable, clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_vigil-relay");

#[test]
fn fingerprint_prints_one_line_of_lowercase_hex() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let out = Command::new(BIN)
        .args(["fingerprint", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1);
    let line = text.trim_end();
    assert_eq!(line.len(), 64);
    assert!(line
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    assert_eq!(
        line,
        vigil_relay::fingerprint_of_data_dir(&data)
            .unwrap()
            .to_string()
    );
    // Same answer through the environment variable.
    let out = Command::new(BIN)
        .arg("fingerprint")
        .env("VIGIL_RELAY_DATA", &data)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim_end(), line);
}

#[test]
fn errors_are_one_line_and_fail() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let out = Command::new(BIN)
        .args(["fingerprint", "--data"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
}

#[cfg(unix)]
#[test]
fn serve_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--expiry-days",
            "7",
            "--data",
        ])
        .arg(dir.path())
        .env("VIGIL_RELAY_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(
        first.starts_with("vigil-relay listening on 127.0.0.1:"),
        "{first}"
    );
    let second = lines.next().unwrap().unwrap();
    let fp = vigil_relay::fingerprint_of_data_dir(dir.path()).unwrap();
    assert_eq!(second, format!("certificate fingerprint: {fp}"));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
}

#[test]
fn check_config_layers_flags_over_env_over_file_and_names_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    std::fs::write(
        &file,
        "listen = \"0.0.0.0:4433\"\n[limits]\nmax_connections = 100\ndeposit_burst = 5\n\
         idle_timeout_secs = 20\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&file)
        .args(["--deposit-burst", "9", "--data"])
        .arg(dir.path())
        .env("VIGIL_RELAY_DEPOSIT_BURST", "7")
        .env("VIGIL_RELAY_IDLE_TIMEOUT_SECS", "25")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let c: vigil_relay::RelayConfig = toml::from_str(&text).unwrap();
    assert_eq!(c.listen, "0.0.0.0:4433".parse().unwrap(), "file");
    assert_eq!(c.limits.max_connections, 100, "file");
    assert_eq!(c.limits.idle_timeout_secs, 25, "env over file");
    assert_eq!(c.limits.deposit_burst, 9, "flag over env");
    assert_eq!(c.data_dir, dir.path(), "flag");

    std::fs::write(&file, "[limits]\nmax_conections = 100\n").unwrap();
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("max_conections"), "{err}");
}

#[cfg(unix)]
#[test]
fn stats_and_health_work_while_serving_and_report_a_clean_stop() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--stats-interval-secs",
            "1",
            "--log-format",
            "json",
            "--ready-json",
            "--data",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // Structured log lines are JSON objects; the two banner lines are plain.
    let mut saw_json = false;
    for _ in 0..10 {
        let line = lines.next().unwrap().unwrap();
        if line.starts_with('{') {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert!(v.get("level").is_some(), "{line}");
            saw_json = true;
        }
        if line.starts_with("certificate fingerprint") {
            break;
        }
    }
    assert!(saw_json, "json log lines");
    // --ready-json: one line on stdout saying where the relay listens and who it is.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut ready = String::new();
    stdout.read_line(&mut ready).unwrap();
    let v: serde_json::Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(v["type"], "ready", "{ready}");
    let addr: std::net::SocketAddr = v["addr"].as_str().unwrap().parse().unwrap();
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{ready}");
    assert_eq!(
        v["fingerprint"],
        vigil_relay::fingerprint_of_data_dir(dir.path())
            .unwrap()
            .to_string()
    );
    let health = || {
        Command::new(BIN)
            .args(["health", "--data"])
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let mut ok = false;
    for _ in 0..50 {
        if health().status.success() {
            ok = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(ok, "health reports ok while serving");
    let out = Command::new(BIN)
        .args(["stats", "--json", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let s: vigil_relay::RelayStats = serde_json::from_slice(&out.stdout).unwrap();
    assert!(s.accepting_deposits && !s.stopped);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("127.0.0.1"), "no addresses in stats");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(rest.is_empty(), "only the ready line on stdout: {rest}");
    let out = health();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped"));
}
