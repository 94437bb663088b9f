//! The one place where Vigil's programs write files durably.
//!
//! Both the `vigil` client (keys, cards, outbox, inbox) and the `vigil-relay` (its certificate,
//! its stats file, the envelope files beside its store) need the same few operations, done the
//! same careful way, so they live here once instead of once per program:
//!
//! * [`write_atomic`]: write a temporary file in the target's directory, `fsync` it, rename it
//!   over the target, then `fsync` the directory. A crash or power loss leaves either the old
//!   content or the new one, never half of either, and never a missing file.
//! * [`write_new`]: the same, refusing to replace a file that exists (keys, certificates).
//! * [`sync_dir`]: make a creation, rename or removal in a directory durable.
//! * [`create_private_dir`]: directories only their owner can enter (0700).
//! * [`read_limited`]: read a file that should be small, refusing one larger than a bound before
//!   reading it whole, so a damaged or hostile file cannot make a program allocate without limit.
//!
//! The core crate (`vigil-core`) does no I/O at all; this crate is the thin layer beneath the two
//! programs. Errors name the file and say what to check.
#![forbid(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Who may read a file written here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Only the owner (mode 0600): keys, certificates' private keys, anything secret.
    Private,
    /// Owner writes, others may read (mode 0644): certificates, cards, stats.
    Public,
}

impl Access {
    #[cfg(unix)]
    fn mode(self) -> u32 {
        match self {
            Access::Private => 0o600,
            Access::Public => 0o644,
        }
    }
}

/// Why a file operation failed. Each message names the file and what to check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsError {
    /// The operating system refused or failed an operation on `path`.
    #[error("cannot {op} {path}: {source}; check permissions and free space")]
    Io {
        /// What was being done ("write", "sync", "create directory", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// [`write_new`] found the file already there.
    #[error("{0} already exists; remove it or choose another path")]
    Exists(PathBuf),
    /// [`read_limited`] found the file larger than allowed.
    #[error("{path} is larger than {max} bytes; is it the right file?")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The bound.
        max: u64,
    },
}

impl FsError {
    /// The underlying I/O error, if there is one (to tell a full disk from a missing file).
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            FsError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_err<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> FsError + 'p {
    move |source| FsError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Create `dir` and its missing parents with mode 0700 (owner only). An existing directory is
/// left as it is.
pub fn create_private_dir(dir: &Path) -> Result<(), FsError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(io_err("create directory", dir))
}

/// Set `file`'s access and modification times to `unix_secs` (a time the caller has rounded,
/// such as the hour): a file's times otherwise tell a seized disk when, to the nanosecond, each
/// report or attachment arrived. The inode change time cannot be set this way and stays exact.
pub fn set_file_times(file: &File, unix_secs: u64) -> io::Result<()> {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_secs);
    file.set_times(fs::FileTimes::new().set_accessed(t).set_modified(t))
}

/// Make entries created, renamed or removed in `dir` survive power loss. A directory that does
/// not exist has nothing to sync.
pub fn sync_dir(dir: &Path) -> Result<(), FsError> {
    match File::open(dir) {
        Ok(d) => d.sync_all().map_err(io_err("sync directory", dir)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("open directory", dir)(e)),
    }
}

/// Create a new, empty temporary file in `dir` with `access`, named `<prefix><unique>`. The
/// name is unique within this process and checked against existing files (`O_EXCL`), so a file
/// planted under the same name is never followed or overwritten.
pub fn create_temp(dir: &Path, prefix: &str, access: Access) -> Result<(File, PathBuf), FsError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{prefix}{}-{n}-{nanos:08x}", std::process::id()));
        let mut o = OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(access.mode());
        }
        #[cfg(not(unix))]
        let _ = access;
        match o.open(&path) {
            Ok(f) => return Ok((f, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err("create a file in", dir)(e)),
        }
    }
}

/// Write `bytes` to `path` atomically and durably: a temporary file beside it, `fsync`, rename
/// over `path`, `fsync` the directory. Readers see the old content or the new, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8], access: Access) -> Result<(), FsError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let (mut f, tmp) = create_temp(dir, ".tmp-", access)?;
    let written = f
        .write_all(bytes)
        .map_err(io_err("write", path))
        .and_then(|()| f.sync_all().map_err(io_err("sync", path)))
        .and_then(|()| fs::rename(&tmp, path).map_err(io_err("replace", path)));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    sync_dir(dir)
}

/// [`write_atomic`] for a file that must not exist yet (keys, certificates): an existing file
/// is never replaced.
pub fn write_new(path: &Path, bytes: &[u8], access: Access) -> Result<(), FsError> {
    if path.exists() {
        return Err(FsError::Exists(path.to_path_buf()));
    }
    write_atomic(path, bytes, access)
}

/// Remove `path` if it exists, and make the removal durable.
pub fn remove_durably(path: &Path) -> Result<(), FsError> {
    match fs::remove_file(path) {
        Ok(()) => path.parent().map_or(Ok(()), sync_dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", path)(e)),
    }
}

/// Read a file expected to be small, refusing one of more than `max` bytes before reading it
/// whole.
pub fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>, FsError> {
    let f = File::open(path).map_err(io_err("open", path))?;
    let mut buf = Vec::new();
    f.take(max.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(io_err("read", path))?;
    if buf.len() as u64 > max {
        return Err(FsError::TooLarge {
            path: path.to_path_buf(),
            max,
        });
    }
    Ok(buf)
}

/// An exclusive lock on a directory, held until dropped: one process at a time works in it.
///
/// It is an advisory lock (`flock`) on a file named `lock` inside the directory, so it ends
/// when the process does, however it ends (a crash or SIGKILL leaves no stale lock behind). The
/// lock file itself is empty and stays.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// Lock `dir` exclusively. If another process holds the lock, call `waiting` once and then wait
/// for it (a person's second command waits for the first rather than failing).
pub fn lock_dir(dir: &Path, waiting: impl FnOnce()) -> Result<DirLock, FsError> {
    let path = dir.join("lock");
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(&path).map_err(io_err("open", &path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            waiting();
            file.lock().map_err(io_err("lock", &path))?;
        }
        Err(fs::TryLockError::Error(e)) => return Err(io_err("lock", &path)(e)),
    }
    Ok(DirLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_lock_excludes_a_second_holder_until_dropped() {
        use std::sync::mpsc::channel;
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let first = lock_dir(dir.path(), || panic!("nobody holds it yet")).unwrap();
        let (waiting_tx, waiting_rx) = channel();
        let (got_tx, got_rx) = channel();
        let path = dir.path().to_path_buf();
        let second = std::thread::spawn(move || {
            let lock = lock_dir(&path, || waiting_tx.send(()).unwrap()).unwrap();
            got_tx.send(()).unwrap();
            drop(lock);
        });
        waiting_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the second holder finds the lock taken and says it waits");
        assert!(got_rx.try_recv().is_err(), "not while the first holds it");
        drop(first);
        got_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the second holder gets the lock once the first lets go");
        second.join().unwrap();
    }

    #[test]
    fn atomic_writes_replace_and_leave_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        write_atomic(&p, b"one", Access::Public).unwrap();
        write_atomic(&p, b"two", Access::Public).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn write_new_refuses_to_replace() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        write_new(&p, b"secret", Access::Private).unwrap();
        assert!(matches!(
            write_new(&p, b"other", Access::Private),
            Err(FsError::Exists(_))
        ));
        assert_eq!(fs::read(&p).unwrap(), b"secret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn private_dirs_and_bounded_reads() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("a/b");
        create_private_dir(&d).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&d).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
        let p = d.join("f");
        write_atomic(&p, &[7; 100], Access::Public).unwrap();
        assert_eq!(read_limited(&p, 100).unwrap().len(), 100);
        assert!(matches!(
            read_limited(&p, 99),
            Err(FsError::TooLarge { max: 99, .. })
        ));
        remove_durably(&p).unwrap();
        remove_durably(&p).unwrap();
        assert!(!p.exists());
        sync_dir(&dir.path().join("missing")).unwrap();
    }
}
