//! `vigil age` end to end on temporary files, and its pure rules.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::Result;
use clap::Parser;

use super::keygen::rfc3339_utc;
use super::passphrase::{passphrase_source, PassphraseSource};
use super::*;

/// Mirrors how the top-level CLI mounts this command: `vigil age ...`.
#[derive(Parser, Debug)]
struct Cli {
    #[command(subcommand)]
    cmd: Top,
}

#[derive(clap::Subcommand, Debug)]
enum Top {
    Age(AgeArgs),
}

fn parse(args: &[&str]) -> Result<AgeArgs, clap::Error> {
    let mut v = vec!["vigil", "age"];
    v.extend_from_slice(args);
    Cli::try_parse_from(v).map(|c| match c.cmd {
        Top::Age(a) => a,
    })
}

fn run_args(args: &[&str]) -> Result<()> {
    run(parse(args).expect("arguments parse"), false)
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Generates a key file in `dir` and returns (path, public key).
fn keygen_in(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    run_args(&["keygen", "-o", p(&key)]).unwrap();
    let text = fs::read_to_string(&key).unwrap();
    let public = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string();
    (key, public)
}

#[test]
fn keygen_writes_private_file_and_refuses_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen_in(dir.path(), "key.txt");
    let text = fs::read_to_string(&key).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("# created: 20"));
    assert!(lines[0].ends_with('Z'));
    assert!(public.starts_with("age1"));
    assert!(lines[2].starts_with("AGE-SECRET-KEY-1"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let err = run_args(&["keygen", "-o", p(&key)]).unwrap_err();
    assert!(err.to_string().contains("refusing to overwrite"), "{err}");
    assert_eq!(fs::read_to_string(&key).unwrap(), text);

    // -y converts the identity file to its recipient.
    let recips = dir.path().join("recips.txt");
    run_args(&["keygen", "-y", "-o", p(&recips), p(&key)]).unwrap();
    assert_eq!(fs::read_to_string(&recips).unwrap(), format!("{public}\n"));
}

#[test]
fn encrypt_decrypt_files_binary_and_armored() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keygen_in(dir.path(), "key.txt");
    let (key2, _) = keygen_in(dir.path(), "key2.txt");
    let recips = dir.path().join("recips.txt");
    run_args(&["keygen", "-y", "-o", p(&recips), p(&key2)]).unwrap();

    let input = dir.path().join("report.txt");
    let data: Vec<u8> = (0..150_000u32).map(|i| (i % 253) as u8).collect();
    fs::write(&input, &data).unwrap();

    // Binary, to -r; decrypt with -i.
    let ct = dir.path().join("report.age");
    run_args(&["-e", "-r", &public, "-o", p(&ct), p(&input)]).unwrap();
    let out = dir.path().join("report.out");
    run_args(&["-d", "-i", p(&key), "-o", p(&out), p(&ct)]).unwrap();
    assert_eq!(fs::read(&out).unwrap(), data);

    // Armored, to -r and -R; either identity decrypts.
    let act = dir.path().join("report.asc");
    run_args(&[
        "-a",
        "-r",
        &public,
        "-R",
        p(&recips),
        "-o",
        p(&act),
        p(&input),
    ])
    .unwrap();
    assert!(fs::read_to_string(&act)
        .unwrap()
        .starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"));
    let out2 = dir.path().join("report2.out");
    run_args(&["-d", "-i", p(&key2), "-o", p(&out2), p(&act)]).unwrap();
    assert_eq!(fs::read(&out2).unwrap(), data);

    // Existing output is never overwritten.
    let err = run_args(&["-d", "-i", p(&key), "-o", p(&out), p(&ct)]).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
}

#[test]
fn wrong_key_or_tampering_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let (_, public) = keygen_in(dir.path(), "key.txt");
    let (other, _) = keygen_in(dir.path(), "other.txt");
    let input = dir.path().join("in.txt");
    fs::write(&input, vec![1u8; 100_000]).unwrap();
    let ct = dir.path().join("in.age");
    run_args(&["-r", &public, "-o", p(&ct), p(&input)]).unwrap();

    let out = dir.path().join("out.txt");
    let err = run_args(&["-d", "-i", p(&other), "-o", p(&out), p(&ct)]).unwrap_err();
    assert!(
        format!("{err:#}").contains("no identity matches"),
        "{err:#}"
    );
    assert!(!out.exists());

    // Flip a byte in the last chunk: the first chunk verifies, but OUT must not appear.
    let key = dir.path().join("key.txt");
    let mut bytes = fs::read(&ct).unwrap();
    let n = bytes.len();
    bytes[n - 20] ^= 1;
    let bad = dir.path().join("bad.age");
    fs::write(&bad, bytes).unwrap();
    let err = run_args(&["-d", "-i", p(&key), "-o", p(&out), p(&bad)]).unwrap_err();
    assert!(
        format!("{err:#}").contains("failed authentication"),
        "{err:#}"
    );
    assert!(!out.exists());
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".vigil-age-"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn passphrase_from_file() {
    let dir = tempfile::tempdir().unwrap();
    let pass = dir.path().join("pass.txt");
    fs::write(&pass, "correct horse battery staple\n").unwrap();
    let input = dir.path().join("in.txt");
    fs::write(&input, b"testimony").unwrap();
    let ct = dir.path().join("in.age");
    run_args(&[
        "-p",
        "--passphrase-file",
        p(&pass),
        "--work-factor",
        "4",
        "-a",
        "-o",
        p(&ct),
        p(&input),
    ])
    .unwrap();
    let out = dir.path().join("out.txt");
    run_args(&["-d", "--passphrase-file", p(&pass), "-o", p(&out), p(&ct)]).unwrap();
    assert_eq!(fs::read(&out).unwrap(), b"testimony");

    let wrong = dir.path().join("wrong.txt");
    fs::write(&wrong, "not it\n").unwrap();
    let out2 = dir.path().join("out2.txt");
    let err =
        run_args(&["-d", "--passphrase-file", p(&wrong), "-o", p(&out2), p(&ct)]).unwrap_err();
    assert!(
        format!("{err:#}").contains("passphrase is wrong"),
        "{err:#}"
    );
    assert!(!out2.exists());

    // A low maximum work factor refuses the file and names the value.
    let err = run_args(&[
        "-d",
        "--passphrase-file",
        p(&pass),
        "--max-work-factor",
        "3",
        "-o",
        p(&out2),
        p(&ct),
    ])
    .unwrap_err();
    assert!(format!("{err:#}").contains("work factor is 4"), "{err:#}");
}

#[test]
fn passphrase_source_rules() {
    let f = PathBuf::from("/tmp/pf");
    assert_eq!(
        passphrase_source(Some(&f), None, true).unwrap(),
        PassphraseSource::File(f.clone())
    );
    assert_eq!(
        passphrase_source(None, Some(f.clone()), false).unwrap(),
        PassphraseSource::File(f.clone())
    );
    assert_eq!(
        passphrase_source(None, Some(f), true).unwrap(),
        PassphraseSource::Prompt
    );
    let err = passphrase_source(None, None, false).unwrap_err();
    assert!(err.to_string().contains(PASSPHRASE_FILE_ENV));
}

#[test]
fn flag_rules() {
    assert!(parse(&["-e", "-d"]).is_err());
    assert!(parse(&["keygen", "-e"]).is_err());
    assert!(parse(&["-e", "keygen"]).is_err() || run_args(&["-e", "keygen"]).is_err());
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    fs::write(&input, b"x").unwrap();
    let out = dir.path().join("o");
    let err = run_args(&["-e", "-o", p(&out), p(&input)]).unwrap_err();
    assert!(err.to_string().contains("-r RECIPIENT"), "{err}");
    let err = run_args(&["-d", "-r", "age1x", p(&input)]).unwrap_err();
    assert!(err.to_string().contains("for encrypting"), "{err}");
    let err = run_args(&["-e", "-r", "age1nope", "-o", p(&out), p(&input)]).unwrap_err();
    assert!(format!("{err:#}").contains("invalid recipient"), "{err:#}");
    assert!(!out.exists());
}

#[test]
fn rfc3339_format() {
    assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    let t = UNIX_EPOCH + std::time::Duration::from_secs(1_709_210_096);
    assert_eq!(rfc3339_utc(t), "2024-02-29T12:34:56Z");
}
