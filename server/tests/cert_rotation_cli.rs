//! `vigil-relay cert rotate|promote` and `fingerprint --next`: the operator's side of a
//! certificate rotation, through the real binary.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_vigil-relay");

fn run(args: &[&str], data: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--data")
        .arg(data)
        .env("VIGIL_RELAY_LOG", "warn")
        .output()
        .expect("run vigil-relay")
}

fn stdout_line(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout.clone()).expect("utf8");
    assert_eq!(text.lines().count(), 1, "{text}");
    let line = text.trim_end().to_string();
    assert_eq!(line.len(), 64, "{line}");
    line
}

fn one_line_error(out: &Output) -> String {
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr.clone()).expect("utf8");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

#[test]
fn rotate_is_idempotent_and_promote_swaps_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let current = stdout_line(&run(&["fingerprint"], &data));

    // No next certificate yet: a clear one-line error, and nothing is created.
    let err = one_line_error(&run(&["fingerprint", "--next"], &data));
    assert!(err.contains("cert rotate"), "{err}");
    assert!(!data.join(vigil_relay::cert::NEXT_CERT_FILE).exists());

    let next = stdout_line(&run(&["cert", "rotate"], &data));
    assert_ne!(next, current);
    assert_eq!(stdout_line(&run(&["fingerprint", "--next"], &data)), next);
    // The current certificate is untouched.
    assert_eq!(stdout_line(&run(&["fingerprint"], &data)), current);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join(vigil_relay::cert::NEXT_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "next key mode {mode:o}");
    }

    // Again: the same next certificate, not a second one.
    let again = run(&["cert", "rotate"], &data);
    assert_eq!(stdout_line(&again), next);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    // --force replaces it.
    let forced = stdout_line(&run(&["cert", "rotate", "--force"], &data));
    assert_ne!(forced, next);
    assert_ne!(forced, current);
    assert_eq!(stdout_line(&run(&["fingerprint", "--next"], &data)), forced);

    let old_key = std::fs::read(data.join(vigil_relay::cert::KEY_FILE)).unwrap();
    let promoted = run(&["cert", "promote"], &data);
    assert_eq!(stdout_line(&promoted), forced);
    let note = String::from_utf8_lossy(&promoted.stderr);
    assert!(note.contains("restart"), "{note}");
    assert_eq!(stdout_line(&run(&["fingerprint"], &data)), forced);
    assert_eq!(
        vigil_relay::fingerprint_of_data_dir(&data)
            .unwrap()
            .to_string(),
        forced
    );
    for f in [
        vigil_relay::cert::NEXT_CERT_FILE,
        vigil_relay::cert::NEXT_KEY_FILE,
        vigil_relay::cert::OLD_KEY_FILE,
    ] {
        assert!(!data.join(f).exists(), "{f} left behind");
    }
    // The old key is nowhere in the data directory any more.
    for entry in std::fs::read_dir(&data).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            assert_ne!(std::fs::read(&p).unwrap(), old_key, "{}", p.display());
        }
    }

    // Nothing left to promote, and no next fingerprint.
    let err = one_line_error(&run(&["cert", "promote"], &data));
    assert!(err.contains("cert rotate"), "{err}");
    one_line_error(&run(&["fingerprint", "--next"], &data));
}

#[test]
fn rotate_refuses_a_directory_without_a_relay() {
    let dir = tempfile::tempdir().unwrap();
    let err = one_line_error(&run(&["cert", "rotate"], &dir.path().join("typo")));
    assert!(err.contains("no current certificate"), "{err}");
    assert!(!dir.path().join("typo").join("relay-cert.der").exists());
}

#[test]
fn an_interrupted_promote_is_finished_by_running_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    vigil_relay::fingerprint_of_data_dir(&data).unwrap();
    let next = vigil_relay::cert::rotate(&data, false).unwrap().next;
    // Simulate a crash after the old key was moved aside and the new certificate installed.
    std::fs::rename(
        data.join(vigil_relay::cert::KEY_FILE),
        data.join(vigil_relay::cert::OLD_KEY_FILE),
    )
    .unwrap();
    std::fs::rename(
        data.join(vigil_relay::cert::NEXT_CERT_FILE),
        data.join(vigil_relay::cert::CERT_FILE),
    )
    .unwrap();
    // The relay refuses to start (and does not make a fresh certificate) ...
    let err = format!(
        "{:#}",
        vigil_relay::fingerprint_of_data_dir(&data).expect_err("half-promoted")
    );
    assert!(err.contains("cert promote"), "{err}");
    // ... and promote finishes the job.
    let p = vigil_relay::cert::promote(&data).unwrap();
    assert_eq!(p.current, next);
    assert_eq!(vigil_relay::fingerprint_of_data_dir(&data).unwrap(), next);
    assert!(!data.join(vigil_relay::cert::OLD_KEY_FILE).exists());
}
