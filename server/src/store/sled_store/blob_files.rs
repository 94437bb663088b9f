//! Attachment blobs as files: one file per blob in the relay's `blobs/` directory, named
//! `<hex of the blob id>.<total length>`, holding the bytes received so far. Nothing else is
//! written per blob; which items refer to which blob is in sled (`item_blobs`, see `layout`),
//! and the in-memory index (`store::blobs`) is rebuilt from both when the store opens.
//!
//! An upload appends one chunk: it truncates the file to the blob's durable length (dropping
//! what an interrupted upload left after it), writes the chunk as it arrives, gathered into
//! pieces of [`PIECE`] bytes (at most that much in memory), fdatasyncs the file, and for a new file fsyncs the
//! directory, before the relay answers the new length. After a crash the file's length is taken
//! as the blob's: bytes written but not yet synced may survive (they are bytes the client sent)
//! or be lost (the client resumes from the shorter length); the NGO's client checks every
//! attachment's SHA-256 anyway.

use crate::body::BodySource;
use crate::store::StoreError;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use vigil_core::ids::BlobId;
use vigil_core::wire::limits::RECEIVE_TIME_GRANULARITY_SECS;
use vigil_core::wire::policy::coarse_time;

/// Bytes of a chunk gathered from the stream and written at a time.
pub const PIECE: usize = 1024 * 1024;

fn io_err(e: std::io::Error) -> StoreError {
    StoreError::from_io(&e)
}

/// The blob directory.
#[derive(Debug, Clone)]
pub struct BlobFiles {
    dir: PathBuf,
}

/// A blob file found when the store opens.
pub struct FoundBlob {
    /// The blob.
    pub id: BlobId,
    /// Its total, from its name.
    pub total: u64,
    /// Bytes in the file.
    pub have: u64,
    /// Its modification time, Unix seconds.
    pub touched: u64,
}

impl BlobFiles {
    /// Open (create) `dir` and make its entry durable.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        vigil_fs::create_private_dir(dir)?;
        if let Some(parent) = dir.parent() {
            vigil_fs::sync_dir(parent)?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, id: &BlobId, total: u64) -> PathBuf {
        self.dir.join(format!("{id}.{total}"))
    }

    /// Every blob file, for the index. Files longer than their total (damaged) are deleted;
    /// names that are not a blob's are left alone (an operator's note, say).
    pub fn scan(&self) -> Result<Vec<FoundBlob>, StoreError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Some((id, total)) = name.split_once('.') else {
                continue;
            };
            let (Ok(id), Ok(total)) = (id.parse::<BlobId>(), total.parse::<u64>()) else {
                continue;
            };
            let meta = entry.metadata().map_err(io_err)?;
            if meta.len() > total || total == 0 {
                tracing::error!("a blob file is longer than its total; deleting it");
                remove_if_present(&entry.path())?;
                continue;
            }
            // Files are stamped with the hour their last write began in (see `append`): count
            // from the end of that hour, so a restart never expires a blob early.
            let touched = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| {
                    (d.as_secs() + RECEIVE_TIME_GRANULARITY_SECS).min(crate::clock::now_unix())
                });
            out.push(FoundBlob {
                id,
                total,
                have: meta.len(),
                touched,
            });
        }
        Ok(out)
    }

    /// Append the chunk in `body` to the blob at `at` (its durable length), durably; the new
    /// length. `fresh`: the blob has no file yet (or one an interrupted first upload left).
    pub async fn append(
        &self,
        id: BlobId,
        total: u64,
        at: u64,
        fresh: bool,
        body: &mut dyn BodySource,
    ) -> Result<u64, StoreError> {
        let path = self.path(&id, total);
        let mut file = blocking(move || {
            let mut opts = OpenOptions::new();
            opts.write(true).create(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&path).map_err(io_err)?;
            f.set_len(at).map_err(io_err)?;
            f.seek(SeekFrom::Start(at)).map_err(io_err)?;
            Ok(f)
        })
        .await?;
        // The stream hands over what has arrived, often one packet's worth (about a KiB):
        // gathered here into one buffer of up to PIECE bytes, written with one call on the
        // blocking pool. A thread hand-off and a write per packet cost more system time than
        // the bytes (measured: 1 440 writes per MiB, the relay's CPU mostly in futex and write).
        let mut have = at;
        let mut buf = Vec::with_capacity(PIECE);
        loop {
            let piece = body.next_chunk(PIECE - buf.len()).await?;
            if let Some(p) = &piece {
                have += p.len() as u64;
                buf.extend_from_slice(p);
            }
            if !buf.is_empty() && (buf.len() >= PIECE || piece.is_none()) {
                (file, buf) = blocking(move || {
                    file.write_all(&buf).map_err(io_err)?;
                    buf.clear();
                    Ok((file, buf))
                })
                .await?;
            }
            if piece.is_none() {
                break;
            }
        }
        let dir = self.dir.clone();
        blocking(move || {
            // The file's time is what the expiry of an unreferenced blob goes by after a
            // restart; kept to the hour like every time the relay stores, so a seized disk
            // gives no precise timeline of uploads (docs/threat-model.md).
            let now = coarse_time(crate::clock::now_unix());
            vigil_fs::set_file_times(&file, now).map_err(io_err)?;
            file.sync_data().map_err(io_err)?;
            if fresh {
                vigil_fs::sync_dir(&dir)?;
            }
            Ok(())
        })
        .await?;
        Ok(have)
    }

    /// Up to `max` bytes of the blob from `offset`, or `None` if its file is gone.
    pub fn read_at(
        &self,
        id: &BlobId,
        total: u64,
        offset: u64,
        max: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let mut f = match File::open(self.path(id, total)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(e)),
        };
        let len = f.metadata().map_err(io_err)?.len();
        let want = usize::try_from(len.saturating_sub(offset))
            .unwrap_or(usize::MAX)
            .min(max);
        if want == 0 {
            return Ok(Some(Vec::new()));
        }
        f.seek(SeekFrom::Start(offset)).map_err(io_err)?;
        let mut out = Vec::with_capacity(want);
        f.take(want as u64).read_to_end(&mut out).map_err(io_err)?;
        Ok(Some(out))
    }

    /// Delete the blob's file, if there is one.
    pub fn remove(&self, id: &BlobId, total: u64) -> Result<(), StoreError> {
        remove_if_present(&self.path(id, total))
    }
}

fn remove_if_present(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(e)),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend(format!("blob task failed: {e}")))?
}
