//! `vigil panic`: make this device's Vigil state useless to whoever is about to take it.
//!
//! The person running it may have seconds (a car stops beside them, someone is at the door), so
//! it asks nothing, needs no passphrase and does not wait for another vigil command to finish
//! (it takes no home lock). It works in order of what protects people most per millisecond:
//!
//! 1. The vault key file, when the home is encrypted (`crate::vault`): once it is gone, no
//!    record of the home can be decrypted, passphrase or not. One small file, synced.
//! 2. The secret keys of a home not yet encrypted: the reporter's signing key, the NGO's
//!    identity, mailbox and staff keys. Each is overwritten with random bytes, synced and
//!    removed; without the staff keys the inbox's envelopes no longer open.
//! 3. Everything else under the home (contacts, outbox, inbox, metadata): small files are
//!    overwritten first (they name NGOs and relays in a home not yet encrypted), then the whole
//!    directory is removed. Large files (envelopes, ciphertext already) are only removed.
//!
//! What it cannot do: flash storage may keep old copies of a file in cells the overwrite did
//! not reach (docs/threat-model.md says what that means), and it cannot reach copies made
//! elsewhere (backups, a forensic image taken earlier).

use crate::output::Output;
use anyhow::Result;
use rand::rngs::OsRng;
use rand::RngCore;
use serde_json::json;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Files up to this size are overwritten before removal; larger ones hold ciphertext only.
const OVERWRITE_UP_TO: u64 = 64 * 1024;

/// The secret key files of a home not yet encrypted, relative to its root.
const KEY_FILES: &[&str] = &["reporter.key", "ngo/identity.key", "ngo/mailbox.key"];

/// What `vigil panic` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Destroyed {
    /// Key files destroyed (the vault key file and plain secret keys).
    pub keys: usize,
    /// Other files removed.
    pub files: usize,
    /// Milliseconds until the keys were gone.
    pub keys_ms: u64,
    /// Milliseconds until everything was gone.
    pub total_ms: u64,
}

/// Overwrite `path` with random bytes of its length (at most `OVERWRITE_UP_TO`), optionally
/// sync, and remove it. Errors are ignored file by file: a panic goes on whatever fails.
pub(crate) fn shred(path: &Path, sync: bool, noise: &mut [u8]) -> bool {
    let len = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if len <= OVERWRITE_UP_TO {
        let n = len as usize;
        OsRng.fill_bytes(&mut noise[..n]);
        if let Ok(mut f) = fs::OpenOptions::new().write(true).open(path) {
            let _ = f.write_all(&noise[..n]);
            if sync {
                let _ = f.sync_all();
            }
        }
    }
    fs::remove_file(path).is_ok()
}

/// Every file under `dir`, depth first.
pub(crate) fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => files_under(&p, out),
            Ok(_) => out.push(p),
            Err(_) => {}
        }
    }
}

/// Destroy the state in `root`.
pub fn destroy(root: &Path) -> Destroyed {
    let started = Instant::now();
    let mut done = Destroyed::default();
    let mut noise = vec![0u8; OVERWRITE_UP_TO as usize];
    if crate::vault::destroy_key(root).unwrap_or(false) {
        done.keys += 1;
    }
    let mut keys: Vec<PathBuf> = KEY_FILES.iter().map(|k| root.join(k)).collect();
    files_under(&root.join("ngo/staff"), &mut keys);
    for k in keys.iter().filter(|k| k.exists()) {
        if shred(k, true, &mut noise) {
            done.keys += 1;
        }
    }
    for dir in [root.join("ngo/staff"), root.join("ngo"), root.to_path_buf()] {
        if dir.exists() {
            let _ = vigil_fs::sync_dir(&dir);
        }
    }
    done.keys_ms = started.elapsed().as_millis() as u64;
    // An unlock session still holds the vault key in memory: end it (it would also notice the
    // key file is gone within a tenth of a second).
    crate::agent::stop(root);
    let mut rest = Vec::new();
    files_under(root, &mut rest);
    for f in &rest {
        if shred(f, false, &mut noise) {
            done.files += 1;
        }
    }
    let _ = fs::remove_dir_all(root);
    if let Some(parent) = root.parent() {
        let _ = vigil_fs::sync_dir(parent);
    }
    done.total_ms = started.elapsed().as_millis() as u64;
    done
}

/// `vigil panic`.
pub fn run(root: &Path, out: Output) -> Result<()> {
    if !root.exists() {
        out.say(crate::t!(
            "panic-nothing",
            home = root.display().to_string()
        ));
        out.emit(json!({"type": "panic", "keys": 0, "files": 0, "keys_ms": 0, "total_ms": 0}));
        return Ok(());
    }
    let d = destroy(root);
    // Only now, with everything gone, is the catalogue loaded for the message.
    out.say(crate::t!(
        "panic-done",
        keys = (d.keys),
        keys_ms = (d.keys_ms),
        files = (d.files),
        total_ms = (d.total_ms)
    ));
    out.emit(json!({
        "type": "panic", "keys": d.keys, "files": d.files, "keys_ms": d.keys_ms,
        "total_ms": d.total_ms,
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_go_first_and_nothing_is_left() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("home");
        for (rel, size) in [
            ("reporter.key", 64),
            ("ngo/identity.key", 64),
            ("ngo/mailbox.key", 64),
            ("ngo/staff/alice.key", 80),
            ("ngo/staff/bob.key", 80),
            ("contacts/abc.card", 900),
            ("outbox/1.json", 200_000),
            ("inbox/1.age", 5_000),
            ("lock", 0),
        ] {
            let p = root.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, vec![b'k'; size]).unwrap();
        }
        let d = destroy(&root);
        assert_eq!((d.keys, d.files), (5, 4));
        assert!(!root.exists());
        let again = destroy(&root);
        assert_eq!((again.keys, again.files), (0, 0), "twice is harmless");
    }

    #[test]
    fn an_encrypted_home_loses_its_key_first() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("home");
        let pass = secrecy::SecretString::from("p".to_string());
        let mut v = crate::vault::Vault::create(&root, &pass, 10).unwrap();
        v.put("inbox/1", b"report").unwrap();
        drop(v);
        let d = destroy(&root);
        assert_eq!(d.keys, 1, "the vault key file");
        assert!(!root.exists());
    }
}
