//! Runs the C2SP CCTV age test vectors in `../shared/vectors/age/testdata` (see the README
//! there) against `vigil_core::age`: classic (X25519, scrypt) and hybrid post-quantum
//! (`mlkem768x25519`) alike. The test also counts the hybrid vectors, so that none can be
//! skipped unnoticed.
//!
//! A vector passes when the outcome class matches `expect` and the SHA-256 of all plaintext
//! released (even before a later failure) matches `payload` (empty when absent).

use std::io::Read;

use secrecy::SecretString;
use sha2::{Digest, Sha256};
use vigil_core::age::{self, limits::MAX_SCRYPT_WORK_FACTOR, AgeError, AnyIdentity as Identity};

mod common;

struct Vector {
    expect: String,
    payload: Option<String>,
    identities: Vec<String>,
    passphrases: Vec<String>,
    armored: bool,
    body: Vec<u8>,
}

enum Parsed {
    Run(Vector),
    Skip(String),
}

fn parse_vector(bytes: &[u8]) -> Result<Parsed, String> {
    let split = bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .ok_or("no blank line after the vector header")?;
    let head = std::str::from_utf8(&bytes[..split]).map_err(|e| e.to_string())?;
    let mut body = bytes[split + 2..].to_vec();
    let mut v = Vector {
        expect: String::new(),
        payload: None,
        identities: vec![],
        passphrases: vec![],
        armored: false,
        body: vec![],
    };
    let mut compressed = false;
    for line in head.lines() {
        let (k, val) = line
            .split_once(": ")
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        match k {
            "expect" => v.expect = val.to_string(),
            "payload" => v.payload = Some(val.to_string()),
            "identity" => v.identities.push(val.to_string()),
            "passphrase" => v.passphrases.push(val.to_string()),
            "armored" => v.armored = val == "yes",
            "compressed" if val == "zlib" => compressed = true,
            "file key" | "comment" => {}
            other => return Ok(Parsed::Skip(format!("unknown header key {other:?}"))),
        }
    }
    if compressed {
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(&body[..])
            .read_to_end(&mut out)
            .map_err(|e| format!("zlib: {e}"))?;
        body = out;
    }
    v.body = body;
    Ok(Parsed::Run(v))
}

/// Maps an error to the README's expectation classes.
fn class(e: &AgeError) -> String {
    match e {
        // Input that is neither binary age nor starts with the BEGIN line (after whitespace)
        // is handed to the armor parser, which rejects it: text before BEGIN is bad armor.
        AgeError::InvalidArmor { .. } | AgeError::NotAgeFile => "armor failure",
        AgeError::NoMatch
        | AgeError::WrongPassphrase
        | AgeError::NotPassphraseEncrypted
        | AgeError::PassphraseRequired => "no match",
        AgeError::HeaderMacMismatch => "HMAC failure",
        AgeError::InvalidHeader { .. }
        | AgeError::UnsupportedVersion { .. }
        | AgeError::HeaderTooLarge { .. }
        | AgeError::TooManyStanzas { .. }
        | AgeError::InvalidStanza { .. }
        | AgeError::ZeroSharedSecret
        | AgeError::ScryptNotAlone
        | AgeError::MixedPostQuantum
        | AgeError::WorkFactorTooHigh { .. }
        | AgeError::MissingNonce => "header failure",
        AgeError::Truncated
        | AgeError::ChunkAuth { .. }
        | AgeError::EmptyFinalChunk
        | AgeError::TrailingData
        | AgeError::CounterOverflow
        | AgeError::StreamFailed => "payload failure",
        other => return format!("unexpected error: {other}"),
    }
    .to_string()
}

/// Decrypts once; returns the class and the released plaintext.
fn attempt(v: &Vector, ids: &[Identity], passphrase: Option<&SecretString>) -> (String, Vec<u8>) {
    let mut released = Vec::new();
    let d = match age::Decryptor::new(&v.body[..]) {
        Ok(d) => d,
        Err(e) => return (class(&e), released),
    };
    let r = match passphrase {
        Some(p) => d.decrypt_with_passphrase(p, MAX_SCRYPT_WORK_FACTOR),
        None => d.decrypt(ids),
    };
    let mut r = match r {
        Ok(r) => r,
        Err(e) => return (class(&e), released),
    };
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return ("success".into(), released),
            Ok(n) => released.extend_from_slice(&buf[..n]),
            Err(e) => {
                let c = match AgeError::from_io_ref(&e) {
                    Some(age_err) => class(age_err),
                    None => format!("unexpected I/O error: {e}"),
                };
                return (c, released);
            }
        }
    }
}

fn run(v: &Vector) -> Result<(String, Vec<u8>), String> {
    let ids = v
        .identities
        .iter()
        .map(|s| s.parse::<Identity>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("identity does not parse: {e}"))?;
    if v.passphrases.is_empty() {
        return Ok(attempt(v, &ids, None));
    }
    let mut last = None;
    for p in &v.passphrases {
        let p = SecretString::from(p.clone());
        let (c, out) = attempt(v, &ids, Some(&p));
        if c != "no match" {
            return Ok((c, out));
        }
        last = Some((c, out));
    }
    last.ok_or_else(|| "no passphrase".to_string())
}

#[test]
fn cctv_vectors() {
    let Some(dir) = common::shared::dir("vectors/age/testdata", "CCTV age vectors") else {
        return;
    };
    let entries = std::fs::read_dir(&dir).expect("read the CCTV vectors");
    let mut names: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    names.sort();
    let (mut ran, mut passed, mut skipped, mut hybrid) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for path in &names {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(path).unwrap();
        let v = match parse_vector(&bytes) {
            Ok(Parsed::Run(v)) => v,
            Ok(Parsed::Skip(why)) => {
                println!("skip {name}: {why}");
                skipped += 1;
                continue;
            }
            Err(e) => {
                failures.push(format!("{name}: cannot parse vector: {e}"));
                ran += 1;
                continue;
            }
        };
        ran += 1;
        if v.identities
            .iter()
            .any(|i| i.starts_with("AGE-SECRET-KEY-PQ-"))
        {
            hybrid += 1;
        }
        match run(&v) {
            Ok((c, out)) => {
                let got_hash = hex::encode(Sha256::digest(&out));
                let want_hash = v
                    .payload
                    .clone()
                    .unwrap_or_else(|| hex::encode(Sha256::digest(b"")));
                if c != v.expect || got_hash != want_hash {
                    failures.push(format!(
                        "{name}{}: expected {:?} / payload {}, got {:?} / payload {} ({} bytes)",
                        if v.armored { " (armored)" } else { "" },
                        v.expect,
                        &want_hash[..16],
                        c,
                        &got_hash[..16],
                        out.len()
                    ));
                } else {
                    passed += 1;
                }
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    for f in &failures {
        println!("MISMATCH {f}");
    }
    println!(
        "CCTV age vectors: {ran} ran ({hybrid} post-quantum), {passed} passed, {} failed, {skipped} skipped",
        failures.len()
    );
    assert!(ran > 0, "no vectors ran");
    // shared/vectors holds 13 hybrid vectors; all must have run.
    assert!(hybrid >= 13, "only {hybrid} post-quantum vectors ran");
    assert!(failures.is_empty(), "{} vectors mismatched", failures.len());
}

/// The policy for `../shared`: present, it is used; absent, a visible `SKIPPED` line locally and
/// a failure under `CI=true`, so CI cannot pass without the vectors.
#[test]
fn a_missing_shared_directory_fails_under_ci_and_is_skipped_visibly_elsewhere() {
    use common::shared::require;
    let absent = std::env::temp_dir().join("vigil-test-no-such-shared-dir");
    let what = "the CI policy self-test (this line is expected)";
    assert_eq!(require(absent.clone(), what, None), None);
    assert_eq!(require(absent.clone(), what, Some("false")), None);
    let under_ci = std::panic::catch_unwind(|| require(absent.clone(), what, Some("true")));
    assert!(under_ci.is_err(), "a missing directory fails under CI=true");
    let present = std::env::temp_dir();
    assert_eq!(require(present.clone(), what, Some("true")), Some(present));
}
