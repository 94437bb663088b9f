//! Moving a home written before the vault (issue 12) into it: every plain file becomes a
//! record, then the plain files are overwritten and removed.
//!
//! Runs at every unlock and does nothing once no plain file is left, so a migration cut short
//! (a crash, a full disk) finishes the next time: records are written before any plain file is
//! touched, and writing a record twice is harmless.
//!
//! Overwriting is done in place, but on flash storage (phones, SSDs) the controller may write
//! the new bytes elsewhere and leave the old ones in cells it has not erased yet: a forensic
//! read of the chip may still find the old plain files. docs/threat-model.md says what that
//! means for someone who used Vigil before the vault.

use super::{MAX_ITEM_FILE, MAX_KEY_FILE, MAX_META};
use crate::vault::Vault;
use anyhow::Result;
use std::fs;
use std::path::{Path, PathBuf};
use vigil_core::card::MAX_CARD_LEN;
use vigil_fs::read_limited;
use zeroize::Zeroizing;

/// Records written per index update: bounds memory and the index rewrites alike.
const BATCH: usize = 128;

/// What was migrated.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    /// Plain files moved into the vault and removed.
    pub files: usize,
}

/// One plain file and the record it becomes.
struct Move {
    from: PathBuf,
    to: String,
    max: usize,
}

fn files_with(dir: &Path, ext: &str) -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, PathBuf)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| ext.is_empty() || p.extension().and_then(|e| e.to_str()) == Some(ext))
        .filter_map(|p| {
            let stem = if ext.is_empty() {
                p.file_name()?.to_str()?.to_string()
            } else {
                p.file_stem()?.to_str()?.to_string()
            };
            Some((stem, p))
        })
        .collect();
    out.sort();
    out
}

/// The plain files of a home from before the vault, and their records.
fn plan(root: &Path) -> Vec<Move> {
    let mut m = Vec::new();
    let mut one = |from: PathBuf, to: String, max: usize| m.push(Move { from, to, max });
    let f = root.join("reporter.key");
    if f.is_file() {
        one(f, super::REPORTER_KEY.into(), MAX_KEY_FILE);
    }
    for (stem, p) in files_with(&root.join("contacts"), "card") {
        one(p, format!("contacts/{stem}"), MAX_CARD_LEN + 2);
    }
    for (stem, p) in files_with(&root.join("contacts"), "verified") {
        one(p, format!("contact-marks/{stem}"), MAX_META);
    }
    for (stem, p) in files_with(&root.join("outbox"), "json") {
        one(p, format!("outbox/{stem}"), MAX_ITEM_FILE);
    }
    let ngo = root.join("ngo");
    for (file, rec, max) in [
        ("ngo.json", super::NGO_CONFIG, 1024 * 1024),
        ("identity.key", super::NGO_IDENTITY, MAX_KEY_FILE),
        ("mailbox.key", super::NGO_MAILBOX, MAX_KEY_FILE),
        ("card.txt", super::NGO_CARD, MAX_CARD_LEN + 2),
    ] {
        let p = ngo.join(file);
        if p.is_file() {
            one(p, rec.into(), max);
        }
    }
    for (name, p) in files_with(&ngo.join("staff"), "") {
        one(p, super::staff_record(&name), MAX_KEY_FILE);
    }
    for (rejected, dir) in [
        (false, root.join("inbox")),
        (true, root.join("inbox/rejected")),
    ] {
        for (id, p) in files_with(&dir, "age") {
            one(p, super::inbox::env_record(rejected, &id), MAX_ITEM_FILE);
        }
        for (id, p) in files_with(&dir, "json") {
            one(p, super::inbox::meta_record(rejected, &id), MAX_META);
        }
    }
    for (digest, p) in files_with(&root.join("inbox/seen"), "") {
        one(p, format!("inbox/seen/{digest}"), MAX_META);
    }
    m
}

/// Move every plain file of the home at `root` into `vault`, then overwrite and remove them.
pub fn migrate(root: &Path, vault: &mut Vault) -> Result<Migrated> {
    let moves = plan(root);
    if moves.is_empty() {
        return Ok(Migrated::default());
    }
    for batch in moves.chunks(BATCH) {
        let mut payloads: Vec<(String, Zeroizing<Vec<u8>>)> = Vec::with_capacity(batch.len());
        for m in batch {
            let mut bytes = Zeroizing::new(read_limited(&m.from, m.max as u64)?);
            // The size the rejected bound counts, kept beside the metadata it used to stat.
            if m.to.starts_with("rejected/meta/") || m.to.starts_with("inbox/meta/") {
                let env = m.from.with_extension("age");
                if let (Ok(mut v), Ok(md)) = (
                    serde_json::from_slice::<serde_json::Value>(&bytes),
                    fs::metadata(&env),
                ) {
                    v["bytes"] = serde_json::json!(md.len());
                    bytes = Zeroizing::new(serde_json::to_vec(&v)?);
                }
            }
            payloads.push((m.to.clone(), bytes));
        }
        let records: Vec<(String, &[u8])> = payloads
            .iter()
            .map(|(n, b)| (n.clone(), b.as_slice()))
            .collect();
        vault.put_many(&records)?;
    }
    // Everything is in the vault: only now remove the plain copies, keys first.
    let mut noise = vec![0u8; 64 * 1024];
    let mut files = 0;
    let (keys, rest): (Vec<&Move>, Vec<&Move>) = moves.iter().partition(|m| {
        m.to.ends_with("/key")
            || m.to.contains("identity")
            || m.to.contains("mailbox")
            || m.to.starts_with("ngo/staff/")
    });
    for m in keys.into_iter().chain(rest) {
        if crate::commands::panic::shred(&m.from, true, &mut noise) {
            files += 1;
        }
    }
    for dir in [
        "inbox/seen",
        "inbox/rejected",
        "inbox",
        "ngo/staff",
        "ngo",
        "outbox",
        "contacts",
    ] {
        // Only empty directories go; anything unknown in them stays for the person to see.
        let _ = fs::remove_dir(root.join(dir));
    }
    let _ = vigil_fs::sync_dir(root);
    Ok(Migrated { files })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn write(root: &Path, rel: &str, bytes: &[u8]) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("dir");
        fs::write(p, bytes).expect("write");
    }

    /// A home of the layout before the vault: each file becomes the record its reader now
    /// looks for, byte for byte, and nothing plain is left (the directories go too).
    #[test]
    fn a_plain_home_moves_into_the_vault_and_its_files_are_gone() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        let files: &[(&str, &str, &[u8])] = &[
            ("reporter.key", "reporter/key", b"00aa"),
            ("contacts/0011.card", "contacts/0011", b"VIGIL-CARD-1.x"),
            (
                "contacts/0011.verified",
                "contact-marks/0011",
                b"{\"verified_at\":5}",
            ),
            ("outbox/dd.json", "outbox/dd", b"{\"to\":\"Memorial\"}"),
            ("ngo/ngo.json", "ngo/config", b"{\"name\":\"Memorial\"}"),
            ("ngo/identity.key", "ngo/identity", b"11bb"),
            ("ngo/mailbox.key", "ngo/mailbox", b"22cc"),
            ("ngo/card.txt", "ngo/card", b"VIGIL-CARD-1.y\n"),
            (
                "ngo/staff/desk.key",
                "ngo/staff/desk.key",
                b"AGE-SECRET-KEY-1X",
            ),
            ("inbox/ab12.age", "inbox/env/ab12", b"age-envelope"),
            ("inbox/seen/ffee", "inbox/seen/ffee", b"{\"id\":\"ab12\"}"),
            (
                "inbox/rejected/cd34.age",
                "rejected/env/cd34",
                b"bad-envelope",
            ),
        ];
        for (file, _, bytes) in files {
            write(root, file, bytes);
        }
        write(root, "inbox/ab12.json", b"{\"received_at\":7}");
        write(
            root,
            "inbox/rejected/cd34.json",
            b"{\"received_at\":8,\"rejected_kind\":\"invalid\"}",
        );

        let mut v = Vault::create(root, &SecretString::from("p".to_string()), 10).expect("vault");
        let done = migrate(root, &mut v).expect("migrate");
        assert_eq!(done.files, files.len() + 2);
        for (file, record, bytes) in files {
            assert!(!root.join(file).exists(), "{file} is gone");
            let got = v.get(record, 1 << 20).expect("get").expect(record);
            assert_eq!(&got[..], *bytes, "{record}");
        }
        // Metadata gained the envelope's size (the rejected bound counts it).
        let meta = v
            .get("rejected/meta/cd34", 4096)
            .expect("get")
            .expect("meta");
        let meta: serde_json::Value = serde_json::from_slice(&meta).expect("json");
        assert_eq!(meta["bytes"], 12);
        assert_eq!(meta["rejected_kind"], "invalid");
        for dir in ["contacts", "outbox", "ngo", "inbox"] {
            assert!(!root.join(dir).exists(), "{dir}/ is gone");
        }
        // Nothing left to do the next time.
        assert_eq!(migrate(root, &mut v).expect("again"), Migrated::default());
    }
}
