//! File rules of `vigil age`: key files are capped and read as text, new key files are never
//! overwritten, and results go to a temporary file beside `-o OUT` that is renamed into place
//! only on success (or to stdout).

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use vigil_core::age::{self, limits::MAX_IDENTITY_FILE_LEN, AgeError};
use zeroize::Zeroizing;

/// Creates `path` (which must not exist) with `mode` and writes `data`, synced to disk.
pub(super) fn write_new_file(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} already exists; refusing to overwrite it (it may hold the only copy of a key), choose another -o",
                path.display()
            )
        } else {
            anyhow::anyhow!("cannot create {}: {e}", path.display())
        }
    })?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Reads a key file (or stdin for None / "-"), capped at the core's key file limit.
pub(super) fn read_key_file(path: Option<&Path>) -> Result<Zeroizing<String>> {
    let limit = u64::try_from(MAX_IDENTITY_FILE_LEN).unwrap_or(u64::MAX) + 1;
    let mut buf = Zeroizing::new(String::new());
    let name = match path {
        Some(p) if p != Path::new("-") => {
            let f =
                File::open(p).with_context(|| format!("cannot open key file {}", p.display()))?;
            f.take(limit)
                .read_to_string(&mut buf)
                .with_context(|| format!("cannot read key file {} as text", p.display()))?;
            p.display().to_string()
        }
        _ => {
            io::stdin()
                .lock()
                .take(limit)
                .read_to_string(&mut buf)
                .context("cannot read a key file from stdin as text")?;
            "stdin".to_string()
        }
    };
    if buf.len() > MAX_IDENTITY_FILE_LEN {
        bail!(
            "{name} is larger than {MAX_IDENTITY_FILE_LEN} bytes, so it is not an age key file; check the path"
        );
    }
    Ok(buf)
}

pub(super) fn open_input(path: Option<&Path>) -> Result<Box<dyn Read>> {
    match path {
        Some(p) if p != Path::new("-") => {
            Ok(Box::new(File::open(p).with_context(|| {
                format!("cannot open input {}", p.display())
            })?))
        }
        _ => Ok(Box::new(io::stdin().lock())),
    }
}

/// Where the result goes: a temporary file renamed into place on success, or stdout.
pub(super) enum Sink {
    File {
        tmp: tempfile::NamedTempFile,
        dest: PathBuf,
    },
    Stdout,
}

impl Sink {
    /// Checks the destination before any work: OUT must not exist and its directory must.
    pub(super) fn open(output: Option<&Path>) -> Result<Sink> {
        let Some(dest) = output else {
            return Ok(Sink::Stdout);
        };
        if dest.exists() {
            bail!(
                "{} already exists; refusing to overwrite it, remove it or choose another -o",
                dest.display()
            );
        }
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".vigil-age-")
            .suffix(".tmp")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
        Ok(Sink::File {
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    pub(super) fn writer(&mut self) -> Result<Box<dyn Write + '_>> {
        Ok(match self {
            Sink::File { tmp, .. } => Box::new(BufWriter::new(tmp.as_file_mut())),
            Sink::Stdout => Box::new(BufWriter::new(io::stdout().lock())),
        })
    }

    /// Syncs and renames the temporary file into place (never overwriting).
    pub(super) fn commit(self) -> Result<Option<PathBuf>> {
        match self {
            Sink::File { tmp, dest } => {
                tmp.as_file()
                    .sync_all()
                    .with_context(|| format!("cannot write {}", dest.display()))?;
                tmp.persist_noclobber(&dest).map_err(|e| {
                    anyhow::anyhow!(
                        "cannot move the result into {}: {}",
                        dest.display(),
                        e.error
                    )
                })?;
                Ok(Some(dest))
            }
            Sink::Stdout => Ok(None),
        }
    }
}

pub(super) fn load_identities(paths: &[PathBuf]) -> Result<Vec<age::AnyIdentity>> {
    let mut ids = Vec::new();
    for p in paths {
        let text = read_key_file(Some(p))?;
        let mut more = age::parse_identity_file(&text)
            .with_context(|| format!("identity file {}", p.display()))?;
        ids.append(&mut more);
    }
    Ok(ids)
}

/// Turns an I/O error from the age reader/writer back into its `AgeError` message.
pub(super) fn age_io(e: io::Error) -> anyhow::Error {
    if AgeError::from_io_ref(&e).is_some() {
        anyhow::Error::new(AgeError::from(e))
    } else {
        anyhow::Error::new(e)
    }
}

/// Counts bytes written, for the JSON summary.
pub(super) struct CountingWriter<W: Write> {
    inner: W,
    pub(super) count: u64,
}

impl<W: Write> CountingWriter<W> {
    pub(super) fn new(inner: W) -> Self {
        CountingWriter { inner, count: 0 }
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
