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
//! lock                    empty; locked (flock) while a command works here
//! ```
//! Every file is written through `vigil_fs` (Vigil's one durable-file helper): a temporary name,
//! synced, then renamed, so a crash leaves either the old or the new content, never half of one.
//! Files here are created with mode 0600 ([`PRIVATE`]) and directories with 0700.

use anyhow::Result;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vigil_fs::create_private_dir;

/// How the client writes every file in its home (and the cards it writes elsewhere): owner
/// only, mode 0600. Encrypted envelopes and cards are not secret, but nothing on this machine is
/// anyone else's business.
pub const PRIVATE: vigil_fs::Access = vigil_fs::Access::Private;

/// Where the home is (`--home`, `VIGIL_HOME`, else `~/.vigil`), without creating it.
pub fn root_of(flag: Option<PathBuf>) -> Result<PathBuf> {
    Ok(match flag {
        Some(p) => p,
        None => {
            let home = std::env::var_os("HOME")
                .ok_or_else(|| anyhow::Error::from(crate::t_err!("home-unknown")))?;
            PathBuf::from(home).join(".vigil")
        }
    })
}

/// The state directory.
#[derive(Clone, Debug)]
pub struct Home {
    root: PathBuf,
    /// Held while a command works here (see [`Home::lock`]); shared by clones.
    lock: Option<Arc<vigil_fs::DirLock>>,
}

impl Home {
    /// Use `root`, creating it (0700) if needed.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        create_private_dir(&root)?;
        Ok(Self { root, lock: None })
    }

    /// Hold this home exclusively until the last clone is dropped: one `vigil` command at a
    /// time works in a home, so two commands started together (two `report send`s, a send
    /// during `outbox flush`) cannot both create a signing key, or both deliver and delete the
    /// same outbox item. A second command waits for the first, after `waiting` says so. The lock
    /// ends with the process however it ends, so a killed command leaves none behind.
    pub fn lock(mut self, waiting: impl FnOnce()) -> Result<Self> {
        if self.lock.is_none() {
            self.lock = Some(Arc::new(vigil_fs::lock_dir(&self.root, waiting)?));
        }
        Ok(self)
    }

    /// Resolve the directory from the flag, then `VIGIL_HOME` (handled by clap), then `~/.vigil`.
    pub fn resolve(flag: Option<PathBuf>) -> Result<Self> {
        Self::open(root_of(flag)?)
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

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
