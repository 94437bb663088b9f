//! The client's state directory (`--home`, `VIGIL_HOME`, or `~/.vigil`).
//!
//! Layout (issue 12: everything of value is in the vault, `crate::vault`):
//! ```text
//! vault/key               the vault key under the passphrase (age scrypt); `vigil panic` destroys it
//! vault/r/<64 hex>        one sealed record per piece of state, named by an HMAC of its name:
//!                         reporter/key, contacts/<id>, contact-marks/<id>, outbox/<deposit>,
//!                         ngo/{config,identity,mailbox,card}, ngo/staff/<name>.key,
//!                         inbox/{env,meta,seen}/<id>, rejected/{env,meta}/<id>, vault/index
//! vault/agent.sock        while an unlock session (`vigil unlock`) is open
//! lock                    empty; locked (flock) while a command works here
//! ```
//! A home written before the vault held the same state in plain files (`reporter.key`,
//! `contacts/`, `outbox/`, `ngo/`, `inbox/`); `crate::state::migrate` moves them in.
//!
//! Every file is written through `vigil_fs` (Vigil's one durable-file helper): a temporary name,
//! synced, then renamed, so a crash leaves either the old or the new content, never half of one.
//! Files here are created with mode 0600 ([`PRIVATE`]) and directories with 0700.

use crate::vault::Vault;
use anyhow::Result;
use secrecy::SecretString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
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

/// The vault record of which transport reached which relay (`crate::relay::transport`).
const NET_RECORD: &str = "net/transports";

/// The state directory.
#[derive(Clone)]
pub struct Home {
    root: PathBuf,
    /// Held while a command works here (see [`Home::lock`]); shared by clones.
    lock: Option<Arc<vigil_fs::DirLock>>,
    /// The home's vault once a command needed it (opened at most once per command); shared by
    /// clones, so the outbox's parallel deliveries write through one index.
    vault: Arc<Mutex<Option<Vault>>>,
    /// A passphrase given in memory instead of asked for (`vigil demo`'s throwaway homes).
    passphrase: Option<Arc<SecretString>>,
    /// The scrypt work factor for a vault made here, instead of `unlock::work_factor()`.
    work_factor: Option<u8>,
}

impl std::fmt::Debug for Home {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Home")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// The open vault of a home, borrowed for one step (a few reads or writes); dropped before any
/// await, so deliveries running side by side take turns.
pub struct VaultGuard<'a>(MutexGuard<'a, Option<Vault>>);

impl std::ops::Deref for VaultGuard<'_> {
    type Target = Vault;
    fn deref(&self) -> &Vault {
        match self.0.as_ref() {
            Some(v) => v,
            None => unreachable!("a VaultGuard is made only over an open vault"),
        }
    }
}

impl std::ops::DerefMut for VaultGuard<'_> {
    fn deref_mut(&mut self) -> &mut Vault {
        match self.0.as_mut() {
            Some(v) => v,
            None => unreachable!("a VaultGuard is made only over an open vault"),
        }
    }
}

impl Home {
    /// Use `root`, creating it (0700) if needed.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        create_private_dir(&root)?;
        Ok(Self {
            root,
            lock: None,
            vault: Arc::new(Mutex::new(None)),
            passphrase: None,
            work_factor: None,
        })
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

    /// Use `passphrase` for this home's vault instead of asking (throwaway demo homes only).
    pub fn with_passphrase(mut self, passphrase: SecretString) -> Self {
        self.passphrase = Some(Arc::new(passphrase));
        self
    }

    /// Make a new vault here with this scrypt work factor (tests and throwaway homes; a real
    /// home uses `unlock::work_factor()`).
    pub fn with_work_factor(mut self, work_factor: u8) -> Self {
        self.work_factor = Some(work_factor);
        self
    }

    /// The work factor given with [`Self::with_work_factor`], if any.
    pub(crate) fn given_work_factor(&self) -> Option<u8> {
        self.work_factor
    }

    /// The passphrase given with [`Self::with_passphrase`], if any.
    pub(crate) fn given_passphrase(&self) -> Option<&SecretString> {
        self.passphrase.as_deref()
    }

    /// The home's vault: opened on first use (from an unlock session, `VIGIL_PASSPHRASE_FILE`
    /// or a prompt; created, and a plain home migrated into it, the first time), then kept open
    /// until the command ends. See `crate::unlock`.
    pub fn vault(&self) -> Result<VaultGuard<'_>> {
        let mut guard = self.vault.lock().map_err(|_| {
            anyhow::anyhow!("an earlier step failed while using the vault; run the command again")
        })?;
        if guard.is_none() {
            let vault = crate::unlock::open(self)?;
            self.load_net_memory(&vault);
            *guard = Some(vault);
        }
        Ok(VaultGuard(guard))
    }

    /// Hand the relay layer what this home remembers about which transport reached which relay,
    /// and a way to save it (best effort: skipped when the vault is busy at that moment).
    fn load_net_memory(&self, vault: &Vault) {
        let bytes = vault.get(NET_RECORD, 64 * 1024).ok().flatten();
        let cell = Arc::downgrade(&self.vault);
        crate::relay::transport::load_memory(
            bytes.as_deref().map(|b| b.as_slice()),
            Box::new(move |b: &[u8]| {
                let Some(cell) = cell.upgrade() else {
                    return false;
                };
                let Ok(mut g) = cell.try_lock() else {
                    return false;
                };
                g.as_mut().is_some_and(|v| v.put(NET_RECORD, b).is_ok())
            }),
        );
    }

    /// Write what the relay layer remembered about transports while this home's vault was not
    /// open (`inbox watch` connects between the moments it holds the home), best effort as
    /// every write of that record is.
    pub fn save_net_memory(&self) -> Result<()> {
        let mut v = self.vault()?;
        crate::relay::transport::save_unsaved(|b| v.put(NET_RECORD, b).is_ok());
        Ok(())
    }

    /// Use `vault`, opened by the caller, as this home's vault for the rest of the command.
    pub fn set_vault(&self, vault: Vault) -> Result<()> {
        let mut guard = self.vault.lock().map_err(|_| {
            anyhow::anyhow!("an earlier step failed while using the vault; run the command again")
        })?;
        *guard = Some(vault);
        Ok(())
    }

    /// Whether the vault is already open in this command (no passphrase would be asked).
    pub fn vault_is_open(&self) -> bool {
        self.vault.lock().map(|g| g.is_some()).unwrap_or(false)
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
