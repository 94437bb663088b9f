//! The encrypted home on disk: the one place that reads and writes a home's state once it is
//! encrypted at rest (issue 12). Commands ask it for named records (`contacts/<key>`,
//! `outbox/<id>`, ...); it finds, seals and opens them with the vault key
//! (`vigil_core::vault`), and nothing else touches the files.
//!
//! Layout under the home:
//!
//! - `vault/key`: the key file, the vault key under the passphrase. Destroying it (`vigil panic`,
//!   [`destroy_key`]) makes every record unreadable, whoever recovers the rest.
//! - `vault/r/<64 hex>`: one file per record, named by an HMAC of the record's name. Nothing in a
//!   directory listing says what a file is.
//! - The record `vault/index` (sealed like the others) lists the names of all records, so a
//!   listing does not have to open every record. A record is written before the index names it
//!   and unnamed before it is deleted, so a crash leaves at worst a file the index does not
//!   name, which the next [`Vault::unlock`] deletes.
//!
//! Every write is atomic and durable (a temporary file, synced, renamed, directory synced), so a
//! record is either the old one or the new one after a power cut.
//!
//! `crate::state` is the typed layer above it (contacts, outbox, inbox...); `crate::unlock` gets
//! a vault open (unlock session, passphrase file or prompt) and migrates a plain home into it.

use crate::home::PRIVATE;
use anyhow::{bail, Context, Result};
use rand::rngs::OsRng;
use rand::RngCore;
use secrecy::SecretString;
use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use vigil_core::vault::{VaultError, VaultKey, MAX_KEY_FILE_LEN};
use vigil_fs::{create_private_dir, read_limited, remove_durably, sync_dir, write_atomic};
use zeroize::Zeroizing;

/// The name of the index record.
const INDEX: &str = "vault/index";
/// Names under this prefix are *blobs*: large files that are ciphertext already (an attachment
/// encrypted to its report's blob key), kept as they are under `vault/b/` instead of being
/// sealed again, written and read as streams. Their names are HMACs like the records'.
pub const BLOB_PREFIX: &str = "blob/";
/// Names under this prefix are blobs still being received (see [`Vault::blob_partial`]): kept
/// across a killed command, so that a download goes on where it stopped.
pub const PART_PREFIX: &str = "blob-part/";

/// The name of the blob with this id (the same on the reporter's and the NGO's side).
pub fn blob_name(id: &[u8; 16]) -> String {
    format!("{BLOB_PREFIX}{}", hex::encode(id))
}
/// Most records a vault names (an inbox of this many reports is years of a busy NGO's work;
/// the bound keeps a damaged or planted index from costing unbounded memory).
const MAX_RECORDS: usize = 1_000_000;
/// Largest index payload: the names, one per line.
const MAX_INDEX_LEN: usize = 64 * 1024 * 1024;

/// An unlocked home.
pub struct Vault {
    dir: PathBuf,
    key: VaultKey,
    names: BTreeSet<String>,
}

fn key_path(home: &Path) -> PathBuf {
    home.join("vault").join("key")
}

/// Whether `home` holds an encrypted home.
pub fn exists(home: &Path) -> bool {
    key_path(home).exists()
}

/// Destroy the key file: overwrite it with random bytes, sync, remove. Needs no passphrase, so
/// it works in the seconds someone has before the phone is taken. On flash storage the
/// overwrite may land on other cells than the original (wear levelling), so the old key file
/// may survive in the chip until erased; it is still locked by the passphrase (docs/threat-model.md).
pub fn destroy_key(home: &Path) -> Result<bool> {
    let path = key_path(home);
    if !path.exists() {
        return Ok(false);
    }
    let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as usize;
    let mut noise = vec![0u8; len.clamp(1, MAX_KEY_FILE_LEN)];
    OsRng.fill_bytes(&mut noise);
    {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {} to destroy it", path.display()))?;
        f.write_all(&noise)?;
        f.sync_all()?;
    }
    remove_durably(&path)?;
    Ok(true)
}

impl Vault {
    /// Create an encrypted home in `home` under `passphrase`; refuses if one exists.
    pub fn create(home: &Path, passphrase: &SecretString, work_factor: u8) -> Result<Self> {
        let dir = home.join("vault");
        if key_path(home).exists() {
            bail!("this home is already encrypted; unlock it instead");
        }
        create_private_dir(&dir)?;
        create_private_dir(&dir.join("r"))?;
        create_private_dir(&dir.join("b"))?;
        let key = VaultKey::generate(&mut OsRng);
        let file = key.lock(passphrase, work_factor, &mut OsRng)?;
        let vault = Self {
            dir,
            key,
            names: BTreeSet::new(),
        };
        // The index first: a key file without one would read as an empty, damaged vault.
        vault.write_index()?;
        write_atomic(&key_path(home), &file, PRIVATE)?;
        Ok(vault)
    }

    /// Unlock the home in `home` with `passphrase`, and delete records a crash left unnamed.
    pub fn unlock(home: &Path, passphrase: &SecretString) -> Result<Self> {
        let path = key_path(home);
        let file = read_limited(&path, MAX_KEY_FILE_LEN as u64)
            .with_context(|| format!("cannot read the vault key file {}", path.display()))?;
        let key = VaultKey::unlock(&file, passphrase).map_err(|e| match e {
            VaultError::WrongPassphrase => anyhow::Error::from(WrongPassphrase),
            other => other.into(),
        })?;
        Self::with_key(home, key)
    }

    /// Open the home in `home` with a key already unlocked (held by an unlock session). Fails
    /// if the key is not this home's (its index does not open with it).
    pub fn with_key(home: &Path, key: VaultKey) -> Result<Self> {
        if !exists(home) {
            bail!("this home has no vault key file (it was destroyed or never made)");
        }
        let dir = home.join("vault");
        let mut vault = Self {
            dir,
            key,
            names: BTreeSet::new(),
        };
        let index = vault
            .read(INDEX, MAX_INDEX_LEN)?
            .context("the vault's index is missing; the home is damaged")?;
        let text = std::str::from_utf8(&index).context("the vault's index is damaged")?;
        for name in text.lines().filter(|l| !l.is_empty()) {
            if vault.names.len() >= MAX_RECORDS {
                bail!("the vault's index names more than {MAX_RECORDS} records; it is damaged");
            }
            vault.names.insert(name.to_string());
        }
        vault.collect_orphans()?;
        Ok(vault)
    }

    /// Put the vault key under a new passphrase (the records stay as they are).
    pub fn change_passphrase(&self, new: &SecretString, work_factor: u8) -> Result<()> {
        let file = self.key.lock(new, work_factor, &mut OsRng)?;
        let home = self.dir.parent().context("vault directory has no parent")?;
        write_atomic(&key_path(home), &file, PRIVATE)?;
        Ok(())
    }

    fn record_path(&self, name: &str) -> PathBuf {
        let sub = if name.starts_with(BLOB_PREFIX) || name.starts_with(PART_PREFIX) {
            "b"
        } else {
            "r"
        };
        self.dir.join(sub).join(self.key.file_name(name))
    }

    fn read(&self, name: &str, max: usize) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let path = self.record_path(name);
        if !path.exists() {
            return Ok(None);
        }
        // The sealed record is larger than the payload by its header and the name.
        let sealed = read_limited(&path, (max + 64 * 1024) as u64)?;
        Ok(Some(self.key.open(name, &sealed, max)?))
    }

    fn write_index(&self) -> Result<()> {
        let mut text = Zeroizing::new(String::new());
        for n in &self.names {
            text.push_str(n);
            text.push('\n');
        }
        let sealed = self.key.seal(INDEX, text.as_bytes(), &mut OsRng)?;
        write_atomic(&self.record_path(INDEX), &sealed, PRIVATE)?;
        Ok(())
    }

    /// Delete record files that no name in the index leads to (a crash between writing a record
    /// and naming it, or between unnaming and deleting it).
    fn collect_orphans(&self) -> Result<()> {
        let mut known: BTreeSet<String> =
            self.names.iter().map(|n| self.key.file_name(n)).collect();
        known.insert(self.key.file_name(INDEX));
        for sub in ["r", "b"] {
            let dir = self.dir.join(sub);
            if !dir.exists() {
                continue;
            }
            let mut removed = false;
            for entry in fs::read_dir(&dir)? {
                let entry = entry?;
                let file = entry.file_name();
                let Some(file) = file.to_str() else { continue };
                // Blob files being written (`.tmp*`) of a command that was killed go too.
                if !known.contains(file) {
                    fs::remove_file(entry.path())?;
                    removed = true;
                }
            }
            if removed {
                sync_dir(&dir)?;
            }
        }
        Ok(())
    }

    /// A new blob file to write (under `vault/b/`, nameless until [`Self::blob_commit`]). What
    /// is written must be ciphertext already: a blob is not sealed again.
    pub fn blob_create(&self) -> Result<BlobWriter> {
        let dir = self.dir.join("b");
        create_private_dir(&dir)?;
        let file = tempfile::Builder::new()
            .prefix(".tmp")
            .tempfile_in(&dir)
            .with_context(|| format!("cannot create a file in {}", dir.display()))?;
        Ok(BlobWriter { file })
    }

    /// Make the written blob durable and name it `name` (which starts with [`BLOB_PREFIX`]),
    /// replacing any earlier one; returns its length.
    pub fn blob_commit(&mut self, w: BlobWriter, name: &str) -> Result<u64> {
        if !name.starts_with(BLOB_PREFIX) {
            bail!("blob names start with {BLOB_PREFIX}");
        }
        w.file.as_file().sync_all()?;
        let len = w.file.as_file().metadata()?.len();
        let path = self.record_path(name);
        w.file
            .persist(&path)
            .map_err(|e| anyhow::anyhow!("cannot keep {}: {}", path.display(), e.error))?;
        sync_dir(&self.dir.join("b"))?;
        if self.names.insert(name.to_string()) {
            if let Err(e) = self.write_index() {
                self.names.remove(name);
                return Err(e);
            }
        }
        Ok(len)
    }

    /// The partly received blob that will become `name` (which starts with [`BLOB_PREFIX`]):
    /// what an earlier, interrupted download left, or a new empty one. It is named in the index
    /// from the start, so the orphan sweep at unlock keeps it; [`Self::blob_finish_partial`]
    /// turns it into the blob, [`Self::remove`] of [`PartialBlob::name`] drops it.
    ///
    /// Its bytes are ciphertext as the relay sent them; whatever a crash left at its end is
    /// caught by the caller's check of the whole blob before it is named (the age STREAM
    /// authenticates every chunk and the reporter signed the content's hash).
    pub fn blob_partial(&mut self, name: &str) -> Result<PartialBlob> {
        let Some(id) = name.strip_prefix(BLOB_PREFIX) else {
            bail!("blob names start with {BLOB_PREFIX}");
        };
        let part = format!("{PART_PREFIX}{id}");
        let path = self.record_path(&part);
        if !self.names.contains(&part) {
            create_private_dir(&self.dir.join("b"))?;
            self.names.insert(part.clone());
            if let Err(e) = self.write_index() {
                self.names.remove(&part);
                return Err(e);
            }
        }
        let mut open = fs::OpenOptions::new();
        open.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            open.mode(0o600);
        }
        let file = open
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let len = file.metadata()?.len();
        Ok(PartialBlob {
            file,
            path,
            name: part,
            len,
        })
    }

    /// Make the complete partial blob `part` durable and name it `name`, replacing any earlier
    /// one; returns its length.
    pub fn blob_finish_partial(&mut self, part: PartialBlob, name: &str) -> Result<u64> {
        if !name.starts_with(BLOB_PREFIX) {
            bail!("blob names start with {BLOB_PREFIX}");
        }
        part.file.sync_all()?;
        let len = part.file.metadata()?.len();
        drop(part.file);
        let path = self.record_path(name);
        fs::rename(&part.path, &path).with_context(|| format!("cannot keep {}", path.display()))?;
        sync_dir(&self.dir.join("b"))?;
        self.names.remove(&part.name);
        self.names.insert(name.to_string());
        self.write_index()?;
        Ok(len)
    }

    /// Open the blob `name` for reading, if there is one.
    pub fn blob_open(&self, name: &str) -> Result<Option<fs::File>> {
        if !name.starts_with(BLOB_PREFIX) || !self.names.contains(name) {
            return Ok(None);
        }
        let path = self.record_path(name);
        Ok(Some(fs::File::open(&path).with_context(|| {
            format!("cannot open {}", path.display())
        })?))
    }

    /// Store `payload` as the record `name`, replacing any earlier one.
    pub fn put(&mut self, name: &str, payload: &[u8]) -> Result<()> {
        if name == INDEX {
            bail!("{INDEX} is the vault's own record");
        }
        let sealed = self.key.seal(name, payload, &mut OsRng)?;
        write_atomic(&self.record_path(name), &sealed, PRIVATE)?;
        if self.names.insert(name.to_string()) {
            if let Err(e) = self.write_index() {
                self.names.remove(name);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Store several records, naming them all in one index write (a fetch of a hundred reports
    /// rewrites the index once, not a hundred times). Each record is durable before the index
    /// names it, as with [`Self::put`].
    pub fn put_many(&mut self, records: &[(String, &[u8])]) -> Result<()> {
        let mut added = Vec::new();
        for (name, payload) in records {
            if name == INDEX {
                bail!("{INDEX} is the vault's own record");
            }
            let sealed = self.key.seal(name, payload, &mut OsRng)?;
            write_atomic(&self.record_path(name), &sealed, PRIVATE)?;
            if self.names.insert(name.clone()) {
                added.push(name.clone());
            }
        }
        if !added.is_empty() {
            if let Err(e) = self.write_index() {
                for n in added {
                    self.names.remove(&n);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Whether the record `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// The size on disk of the record `name` (sealed, so a little larger than its payload), or
    /// 0 if there is none. Cheap: no decryption.
    pub fn size(&self, name: &str) -> u64 {
        if !self.names.contains(name) {
            return 0;
        }
        fs::metadata(self.record_path(name))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// The key, for handing to an unlock session.
    pub fn key(&self) -> &VaultKey {
        &self.key
    }

    /// The record `name`, if there is one; refuses a payload over `max` bytes.
    pub fn get(&self, name: &str, max: usize) -> Result<Option<Zeroizing<Vec<u8>>>> {
        if !self.names.contains(name) {
            return Ok(None);
        }
        self.read(name, max)
    }

    /// Remove the record `name`; whether there was one.
    pub fn remove(&mut self, name: &str) -> Result<bool> {
        if !self.names.remove(name) {
            return Ok(false);
        }
        if let Err(e) = self.write_index() {
            self.names.insert(name.to_string());
            return Err(e);
        }
        let path = self.record_path(name);
        if path.exists() {
            remove_durably(&path)?;
        }
        Ok(true)
    }

    /// The names of the records under `prefix` (e.g. `outbox/`), in order.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        self.names
            .range(prefix.to_string()..)
            .take_while(|n| n.starts_with(prefix))
            .cloned()
            .collect()
    }
}

/// A blob being written into the vault (see [`Vault::blob_create`]); dropped without
/// [`Vault::blob_commit`], its file is deleted.
pub struct BlobWriter {
    file: tempfile::NamedTempFile,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// A blob being received, kept across runs (see [`Vault::blob_partial`]). Writes append.
pub struct PartialBlob {
    file: fs::File,
    path: PathBuf,
    name: String,
    len: u64,
}

impl PartialBlob {
    /// Bytes held so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing is held yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its name in the vault (for [`Vault::remove`]).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drop what it holds and start again from nothing.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.len = 0;
        Ok(())
    }

    /// A reader of what it holds so far, from the start.
    pub fn reader(&mut self) -> std::io::Result<fs::File> {
        self.file.flush()?;
        fs::File::open(&self.path)
    }
}

impl Write for PartialBlob {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// The passphrase does not open this home. A type of its own so the caller can say so in the
/// user's words and with its own exit code.
/// Said only after the KDF's full cost, the same whatever failed inside the key file.
#[derive(Debug)]
pub struct WrongPassphrase;

impl std::fmt::Display for WrongPassphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::t!("vault-wrong-passphrase"))
    }
}

impl std::error::Error for WrongPassphrase {}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    /// Every byte of every file under `dir`.
    fn all_bytes(dir: &Path) -> Vec<u8> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(all_bytes(&p));
            } else {
                out.extend(fs::read(&p).unwrap());
                out.extend(p.to_string_lossy().as_bytes());
            }
        }
        out
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn records_survive_reopening_and_leave_nothing_readable() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path();
        assert!(!exists(home));
        let mut v = Vault::create(home, &pass("four words of passphrase"), 10).unwrap();
        assert!(exists(home));
        v.put(
            "contacts/Memorial Desk",
            b"CARD-OF-MEMORIAL relay.example.org:4433",
        )
        .unwrap();
        v.put("outbox/01", b"ENVELOPE-ONE").unwrap();
        v.put("outbox/02", b"ENVELOPE-TWO").unwrap();
        v.put("outbox/01", b"ENVELOPE-ONE-AGAIN").unwrap();
        assert!(v.remove("outbox/02").unwrap());
        assert!(!v.remove("outbox/02").unwrap());
        drop(v);

        let bytes = all_bytes(home);
        for secret in [
            &b"Memorial"[..],
            b"relay.example",
            b"ENVELOPE",
            b"outbox",
            b"contacts",
        ] {
            assert!(
                !contains(&bytes, secret),
                "{}",
                String::from_utf8_lossy(secret)
            );
        }

        let v = Vault::unlock(home, &pass("four words of passphrase")).unwrap();
        assert_eq!(v.list("outbox/"), ["outbox/01"]);
        assert_eq!(v.list("contacts/"), ["contacts/Memorial Desk"]);
        assert_eq!(
            &v.get("outbox/01", 100).unwrap().unwrap()[..],
            b"ENVELOPE-ONE-AGAIN"
        );
        assert!(v.get("outbox/02", 100).unwrap().is_none());
        assert!(v.get("outbox/01", 3).is_err(), "larger than asked for");
        let e = Vault::unlock(home, &pass("four words of passphrasE"))
            .err()
            .unwrap();
        assert!(e.downcast_ref::<WrongPassphrase>().is_some(), "{e:#}");
    }

    #[test]
    fn a_new_passphrase_opens_the_same_records_and_the_old_one_does_not() {
        let tmp = tempfile::tempdir().unwrap();
        let mut v = Vault::create(tmp.path(), &pass("old"), 10).unwrap();
        v.put("reporter/key", b"secret").unwrap();
        v.change_passphrase(&pass("new"), 10).unwrap();
        assert!(Vault::unlock(tmp.path(), &pass("old")).is_err());
        let v = Vault::unlock(tmp.path(), &pass("new")).unwrap();
        assert_eq!(&v.get("reporter/key", 10).unwrap().unwrap()[..], b"secret");
    }

    #[test]
    fn destroying_the_key_leaves_the_records_unopenable() {
        let tmp = tempfile::tempdir().unwrap();
        let mut v = Vault::create(tmp.path(), &pass("p"), 10).unwrap();
        v.put("inbox/1", b"report").unwrap();
        drop(v);
        assert!(destroy_key(tmp.path()).unwrap());
        assert!(!exists(tmp.path()));
        assert!(!destroy_key(tmp.path()).unwrap(), "nothing left to destroy");
        assert!(Vault::unlock(tmp.path(), &pass("p")).is_err());
        assert!(
            fs::read_dir(tmp.path().join("vault/r")).unwrap().count() >= 2,
            "records stay, locked"
        );
    }

    #[test]
    fn a_partial_blob_survives_a_restart_and_becomes_the_blob() {
        let tmp = tempfile::tempdir().unwrap();
        let mut v = Vault::create(tmp.path(), &pass("p"), 10).unwrap();
        let mut part = v.blob_partial("blob/0a0b").unwrap();
        assert!(part.is_empty());
        part.write_all(&[1; 1000]).unwrap();
        drop(part);
        drop(v);
        // The orphan sweep at unlock keeps it: the index names it.
        let mut v = Vault::unlock(tmp.path(), &pass("p")).unwrap();
        let mut part = v.blob_partial("blob/0a0b").unwrap();
        assert_eq!(part.len(), 1000);
        part.write_all(&[2; 24]).unwrap();
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut part.reader().unwrap(), &mut back).unwrap();
        assert_eq!(back.len(), 1024);
        assert!(
            v.blob_open("blob/0a0b").unwrap().is_none(),
            "not a blob yet"
        );
        assert_eq!(v.blob_finish_partial(part, "blob/0a0b").unwrap(), 1024);
        assert_eq!(v.list("blob"), ["blob/0a0b"], "the partial name is gone");
        assert_eq!(fs::read_dir(tmp.path().join("vault/b")).unwrap().count(), 1);
        // Restarting empties it; removing it by name deletes its file.
        let mut part = v.blob_partial("blob/0c0d").unwrap();
        part.write_all(b"xyz").unwrap();
        part.restart().unwrap();
        assert!(part.is_empty());
        let name = part.name().to_string();
        drop(part);
        assert!(v.remove(&name).unwrap());
        assert_eq!(fs::read_dir(tmp.path().join("vault/b")).unwrap().count(), 1);
        assert!(v.blob_partial("not-a-blob").is_err());
    }

    #[test]
    fn blobs_are_streamed_in_named_by_hmac_and_removed_like_records() {
        let tmp = tempfile::tempdir().unwrap();
        let mut v = Vault::create(tmp.path(), &pass("p"), 10).unwrap();
        let mut w = v.blob_create().unwrap();
        for _ in 0..64 {
            w.write_all(&[0xab; 4096]).unwrap();
        }
        assert_eq!(v.blob_commit(w, "blob/video-1").unwrap(), 64 * 4096);
        // A blob being written when the command was killed.
        let mut stray = v.blob_create().unwrap();
        stray.write_all(b"half").unwrap();
        std::mem::forget(stray);
        drop(v);
        let names: Vec<String> = fs::read_dir(tmp.path().join("vault/b"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(!names.iter().any(|n| n.contains("video")), "{names:?}");
        let mut v = Vault::unlock(tmp.path(), &pass("p")).unwrap();
        assert_eq!(
            fs::read_dir(tmp.path().join("vault/b")).unwrap().count(),
            1,
            "the half-written one is gone"
        );
        assert_eq!(v.list("blob/"), ["blob/video-1"]);
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut v.blob_open("blob/video-1").unwrap().unwrap(),
            &mut bytes,
        )
        .unwrap();
        assert_eq!(bytes.len(), 64 * 4096);
        assert_eq!(v.size("blob/video-1"), 64 * 4096);
        assert!(v.blob_open("blob/other").unwrap().is_none());
        assert!(v.remove("blob/video-1").unwrap());
        assert_eq!(fs::read_dir(tmp.path().join("vault/b")).unwrap().count(), 0);
        assert!(v
            .blob_commit(v.blob_create().unwrap(), "not-a-blob")
            .is_err());
    }

    #[test]
    fn a_crash_between_writing_and_naming_leaves_no_stray_file() {
        let tmp = tempfile::tempdir().unwrap();
        let mut v = Vault::create(tmp.path(), &pass("p"), 10).unwrap();
        v.put("a", b"1").unwrap();
        // A record written but never named (the index write did not happen).
        let stray = v.key.seal("b", b"2", &mut OsRng).unwrap();
        fs::write(v.record_path("b"), stray).unwrap();
        drop(v);
        let v = Vault::unlock(tmp.path(), &pass("p")).unwrap();
        assert_eq!(v.list(""), ["a"]);
        assert!(!v.record_path("b").exists());
        // A record moved under another name's file is refused, not believed.
        let a = fs::read(v.record_path("a")).unwrap();
        let mut v = v;
        v.put("c", b"3").unwrap();
        fs::write(v.record_path("c"), a).unwrap();
        assert!(v.get("c", 10).is_err());
    }
}
