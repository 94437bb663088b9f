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
