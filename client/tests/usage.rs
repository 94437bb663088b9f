//! The `vigil` program's command line, without a relay: usage errors exit 2 (with the JSON error
//! object under `--json`), `--help` and `--version` exit 0. Tests that need a relay are in the
//! `vigil-e2e` package (`tests/`).

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .env_remove("VIGIL_HOME")
        // English whatever the developer's locale: these tests read messages.
        .env("LANG", "C")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env_remove("VIGIL_LANG")
        .output()
        .expect("run vigil")
}

#[test]
fn usage_errors_exit_2_and_are_one_json_object_under_json() {
    let o = run(&["no-such-command"]);
    assert_eq!(o.status.code(), Some(2), "usage errors exit 2");
    assert!(o.stdout.is_empty(), "no JSON without --json");
    let o = run(&["no-such-command", "--json"]);
    assert_eq!(o.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["kind"], "usage", "{v}");
    assert_eq!(v["exit_code"], 2, "{v}");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("no-such-command")),
        "{v}"
    );
    for ok in [&["--help"][..], &["--version"], &["inbox", "--help"]] {
        let o = run(ok);
        assert_eq!(o.status.code(), Some(0), "{ok:?}");
        assert!(!o.stdout.is_empty(), "{ok:?}");
    }
}

/// `--retry-for` and `--no-retry` are accepted by both commands and conflict with each other.
#[test]
fn retry_flags_parse() {
    let o = run(&["outbox", "flush", "--retry-for", "1m", "--no-retry"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "conflicting flags are a usage error"
    );
    let o = run(&["outbox", "flush", "--retry-for", "soon"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a duration"));
    let o = run(&["report", "send", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(
        help.contains("--retry-for")
            && help.contains("--no-retry")
            && help.contains("--stall-timeout")
    );
}

/// One command at a time works in a home: a second waits, says so, and goes on once the first
/// is done (two first `report send`s must not create two signing keys).
#[test]
fn a_second_command_on_the_same_home_waits_for_the_first() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let home = tempfile::tempdir().expect("tempdir");
    // This test holds the home as a first `vigil` command would.
    let held =
        vigil_fs::lock_dir(home.path(), || panic!("nobody holds the home yet")).expect("lock");
    let pass_dir = tempfile::tempdir().expect("tempdir");
    let pass = pass_dir.path().join("pass");
    std::fs::write(&pass, "a passphrase\n").expect("passphrase file");
    let mut second = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "--home",
            home.path().to_str().expect("utf8"),
            "contact",
            "list",
        ])
        .env_remove("VIGIL_HOME")
        .env("LANG", "C")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env_remove("VIGIL_LANG")
        .env("VIGIL_PASSPHRASE_FILE", &pass)
        .env("VIGIL_VAULT_WORK_FACTOR", "10")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start vigil");
    let mut stderr = BufReader::new(second.stderr.take().expect("stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("read stderr");
    assert!(line.contains("waiting for it to finish"), "{line}");
    assert!(
        second.try_wait().expect("poll").is_none(),
        "it waits while the home is held"
    );
    drop(held);
    let status = second.wait().expect("wait");
    assert!(status.success(), "it goes on once the home is free");
}

/// `vigil report check FILE` names the field that is wrong, once, and points to the format's
/// documentation (which is in this repository).
#[test]
fn report_check_names_the_wrong_field_and_points_to_the_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let home = home.to_str().expect("utf8");
    let file = dir.path().join("r.json");
    let file_s = file.to_str().expect("utf8");
    let cases = [
        (
            r#"{"kind":"threat","urgency":5,"title":"t","occurred_at":"2024","narrative":"n"}"#,
            "`urgency` must be one of low|normal|high|urgent, got 5",
        ),
        (
            r#"{"kind":"picnic","urgency":"low","title":"t","occurred_at":"2024","narrative":"n"}"#,
            "`kind` must be one of abduction|",
        ),
        (
            r#"{"kind":"threat","urgency":"low","title":"t","occurred_at":"yesterday","narrative":"n"}"#,
            "`occurred_at` must be a date",
        ),
        (
            r#"{"kind":"threat","urgency":"low","title":"t","occurred_at":"2024-02-30","narrative":"n"}"#,
            "`occurred_at` must be a date",
        ),
        (
            r#"{"kind":"threat","urgency":"low","title":"t","occurred_at":"2024"}"#,
            "`narrative` is missing",
        ),
    ];
    for (report, expected) in cases {
        std::fs::write(&file, report).expect("write");
        let o = run(&["--home", home, "report", "check", file_s]);
        assert_eq!(o.status.code(), Some(1), "{report}");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(stderr.lines().count(), 1, "printed once: {stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(stderr.contains("docs/report-format.md"), "{stderr}");
    }
    std::fs::write(
        &file,
        r#"{"kind":"threat","urgency":"low","title":"t","occurred_at":"2024-02","narrative":"n"}"#,
    )
    .expect("write");
    let o = run(&["--home", home, "report", "check", file_s]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "a month is enough when the day is unknown"
    );
}
