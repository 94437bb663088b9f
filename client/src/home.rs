//! The client's state directory (`--home`, `VIGIL_HOME`, or `~/.vigil`).
//!
//! Layout:
//! ```text
//! reporter.key            reporter's Ed25519 seed (hex), 0600, made on first use
//! contacts/<id>.card      NGO recipient cards, verified on import
//! outbox/<deposit>.json   sealed envelopes waiting for the relay's "stored"
//! ngo/ngo.json            an NGO inbox's settings (name, relay, mailbox, staff)
//! ngo/identity.key        NGO identity key (signs the card), 0600
//! ngo/mailbox.key         key proving ownership of the mailbox to the relay, 0600
//! ngo/staff/<n>.key       staff age identities held on this machine, 0600
//! ngo/card.txt            the current signed card
//! inbox/<id>.age          received envelopes, still encrypted; decrypted only for display
//! inbox/rejected/         envelopes that failed to open or verify, kept as evidence
//! ```
//! Every file is written to a temporary name, synced, then renamed, so a crash leaves either the
//! old or the new content, never half of one. Secret files are created with mode 0600 and
//! directories with 0700.

use anyhow::{Context, Result};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The state directory.
#[derive(Clone, Debug)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// Use `root`, creating it (0700) if needed.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        create_private_dir(&root)?;
        Ok(Self { root })
    }

    /// Resolve the directory from the flag, then `VIGIL_HOME` (handled by clap), then `~/.vigil`.
    pub fn resolve(flag: Option<PathBuf>) -> Result<Self> {
        let root = match flag {
            Some(p) => p,
            None => {
                let home = std::env::var_os("HOME")
                    .context("no --home given, VIGIL_HOME unset and HOME unset; pass --home DIR")?;
                PathBuf::from(home).join(".vigil")
            }
        };
        Self::open(root)
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path below the root.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// A subdirectory, created (0700) if needed.
    pub fn dir(&self, rel: impl AsRef<Path>) -> Result<PathBuf> {
        let p = self.root.join(rel);
        create_private_dir(&p)?;
        Ok(p)
    }
}

/// Create a directory and its parents with mode 0700.
pub fn create_private_dir(p: &Path) -> Result<()> {
    if p.is_dir() {
        return Ok(());
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(p)
        .with_context(|| format!("cannot create directory {}; check permissions", p.display()))
}

/// Write `bytes` to `path` atomically and durably: temp file, fsync, rename, fsync the directory.
/// `secret` files get mode 0600.
pub fn write_atomic(path: &Path, bytes: &[u8], secret: bool) -> Result<()> {
    let dir = path.parent().context("path has no parent directory")?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .with_context(|| {
            format!(
                "cannot write in {}; check permissions and free space",
                dir.display()
            )
        })?;
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = secret;
    tmp.write_all(bytes)?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("cannot sync {}; is the disk full?", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    sync_dir(dir);
    Ok(())
}

/// Create a new file that must not exist yet (keys, cards the user asked for).
pub fn write_new(path: &Path, bytes: &[u8], secret: bool) -> Result<()> {
    if path.exists() {
        anyhow::bail!(
            "{} already exists; remove it or choose another path",
            path.display()
        );
    }
    write_atomic(path, bytes, secret)
}

/// Make a rename or removal in `dir` durable.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Read a file that is expected to be small, refusing anything larger than `max` bytes before
/// reading it whole.
pub fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let f = fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut buf = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if buf.len() as u64 > max {
        anyhow::bail!(
            "{} is larger than {max} bytes; is it the right file?",
            path.display()
        );
    }
    Ok(buf)
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
