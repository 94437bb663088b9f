//! Large envelopes live in files of their own, outside sled; sled keeps only their index.
//!
//! Why: sled 0.34.7 writes every value above about 128 KiB to a separate blob file anyway, keeps
//! the whole value in memory (its cache counts a blob only by the small pointer it logs), and
//! needs the whole value before it can write anything. A 16 MiB evidence report therefore sat in
//! the relay's memory while it arrived and again in sled's cache, and was written to disk only
//! after the last byte came in. Here the relay streams the envelope into a temporary file as it
//! arrives, has a helper thread sync it every [`SYNC_EVERY`] bytes so that little is left to
//! sync at the end, and holds at most a few pieces of it in memory. This is also the shape the planned
//! chunked, resumable attachments need.
//!
//! Layout: one directory (`envelopes/` inside the store directory). A finished envelope is the
//! file named by the lowercase hex of its store key (mailbox id ‖ deposit id, 96 characters); an
//! envelope still arriving is `tmp-<random>`. Names carry nothing sled's keys do not already hold.
//!
//! Durability order for one envelope: write the temporary file, fdatasync it, rename it to its
//! final name, fsync the directory — and only then write the index entry in sled, which becomes
//! durable with the next group flush. After a crash, a temporary file or a final file without an
//! index entry is an upload nobody was told "stored" about; [`EnvelopeFiles::collect_garbage`]
//! deletes both when the store opens.

use crate::store::StoreError;
use std::fs::File;
use std::io::{IoSlice, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use vigil_core::wire::policy::coarse_time;
use vigil_fs::{sync_dir, Access};

/// Name of the directory, inside the store directory.
pub const DIR_NAME: &str = "envelopes";
/// Prefix of files still being written.
const TEMP_PREFIX: &str = "tmp-";
/// While an envelope is written, ask the sync thread for an fdatasync after every this many
/// bytes: the disk then works while the rest arrives, and the sync at the end has little left.
pub const SYNC_EVERY: u64 = 2 * 1024 * 1024;

fn io_err(e: std::io::Error) -> StoreError {
    StoreError::from_io(&e)
}

/// The envelope directory.
#[derive(Debug)]
pub struct EnvelopeFiles {
    dir: PathBuf,
}

impl EnvelopeFiles {
    /// Open (create) the directory inside `store_dir`, and make its entry durable.
    pub fn open(store_dir: &Path) -> Result<Self, StoreError> {
        let dir = store_dir.join(DIR_NAME);
        vigil_fs::create_private_dir(&dir)?;
        sync_dir(store_dir)?;
        Ok(Self { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn final_path(&self, key: &[u8; 48]) -> PathBuf {
        self.dir.join(hex::encode(key))
    }

    /// A new, empty temporary file (owner-only) for an envelope that is about to arrive.
    pub fn create_temp(&self) -> Result<(File, PathBuf), StoreError> {
        Ok(vigil_fs::create_temp(
            &self.dir,
            TEMP_PREFIX,
            Access::Private,
        )?)
    }

    /// Give a complete, synced temporary file its final name and make the name durable.
    pub fn publish(&self, temp: &Path, key: &[u8; 48]) -> Result<(), StoreError> {
        std::fs::rename(temp, self.final_path(key)).map_err(io_err)?;
        Ok(sync_dir(&self.dir)?)
    }

    /// The length of `key`'s envelope file, or `None` if it is missing.
    pub fn len(&self, key: &[u8; 48]) -> Result<Option<u64>, StoreError> {
        match std::fs::metadata(self.final_path(key)) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(e)),
        }
    }

    /// Up to `max` bytes of `key`'s envelope from `offset`, or `None` if the file is missing.
    /// Allocates at most what the file holds from `offset`, and at most `max`.
    pub fn read_at(
        &self,
        key: &[u8; 48],
        offset: u64,
        max: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let mut f = match File::open(self.final_path(key)) {
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

    /// Delete the envelope of `key`, if there is one.
    pub fn remove(&self, key: &[u8; 48]) -> Result<(), StoreError> {
        remove_if_present(&self.final_path(key))
    }

    /// Delete temporary files, and final files for which `indexed` says there is no index
    /// entry: uploads that a crash interrupted before their client was told "stored", or
    /// envelopes whose ack or expiry removed the index entry but not yet the file. Returns
    /// how many files were deleted. Call only while no deposit is in progress.
    pub fn collect_garbage(
        &self,
        indexed: impl Fn(&[u8; 48]) -> Result<bool, StoreError>,
    ) -> Result<u64, StoreError> {
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.dir).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            let name = entry.file_name();
            let keep = match name.to_str() {
                Some(n) if n.starts_with(TEMP_PREFIX) => false,
                Some(n) => match <[u8; 48]>::try_from(hex::decode(n).unwrap_or_default()) {
                    Ok(key) => indexed(&key)?,
                    // Not ours (an operator's note, say): leave it alone.
                    Err(_) => true,
                },
                None => true,
            };
            if !keep {
                remove_if_present(&entry.path())?;
                removed += 1;
            }
        }
        if removed > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(removed)
    }
}

/// An envelope file being written. Counts what was written, and keeps a helper thread syncing
/// what has been written so far while more arrives.
pub struct TempEnvelope {
    file: File,
    path: PathBuf,
    written: u64,
    unsynced: u64,
    syncer: Option<Syncer>,
}

/// A thread that fdatasyncs the file whenever it is asked to, so that write-back overlaps the
/// transfer instead of following it. Requests made while a sync runs fold into the next one,
/// so the disk sets the pace: a slow disk simply syncs less often. The writer never waits for
/// it until the final [`TempEnvelope::sync`].
struct Syncer {
    wake: std::sync::mpsc::SyncSender<()>,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

impl Syncer {
    /// `None` if the file handle cannot be duplicated or no thread can be started: the final
    /// sync then does all the work, which is slower but just as durable.
    fn start(file: &File) -> Option<Self> {
        let file = file.try_clone().ok()?;
        let (wake, requests) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("vigil-envelope-sync".into())
            .spawn(move || {
                while requests.recv().is_ok() {
                    file.sync_data()?;
                }
                Ok(())
            })
            .ok()?;
        Some(Self { wake, thread })
    }

    /// Wait for the thread to finish its current sync and end; its error, if any.
    fn stop(self) -> std::io::Result<()> {
        drop(self.wake);
        self.thread
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("envelope sync thread panicked")))
    }
}

impl TempEnvelope {
    /// Wrap a file from [`EnvelopeFiles::create_temp`].
    pub fn new(file: File, path: PathBuf) -> Self {
        Self {
            file,
            path,
            written: 0,
            unsynced: 0,
            syncer: None,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The temporary file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.write_parts(&[bytes])
    }

    /// Append `parts` in order, with as few (vectored) write calls as the kernel allows.
    pub fn write_parts(&mut self, parts: &[&[u8]]) -> Result<(), StoreError> {
        let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
        write_all_vectored(&mut self.file, parts).map_err(io_err)?;
        self.written += total;
        self.unsynced += total;
        if self.unsynced >= SYNC_EVERY {
            if self.syncer.is_none() {
                self.syncer = Syncer::start(&self.file);
            }
            if let Some(s) = &self.syncer {
                // Full means a sync is already queued; it will cover these bytes too.
                let _ = s.wake.try_send(());
            }
            self.unsynced = 0;
        }
        Ok(())
    }

    /// Make the content durable (the name is made durable by [`EnvelopeFiles::publish`]).
    pub fn sync(&mut self) -> Result<(), StoreError> {
        if let Some(s) = self.syncer.take() {
            s.stop().map_err(io_err)?;
        }
        // The file's times say no more than the index's coarse receive time does.
        let now = coarse_time(crate::clock::now_unix());
        vigil_fs::set_file_times(&self.file, now).map_err(io_err)?;
        self.file.sync_data().map_err(io_err)?;
        self.unsynced = 0;
        Ok(())
    }
}

impl Drop for TempEnvelope {
    fn drop(&mut self) {
        if let Some(s) = self.syncer.take() {
            // Abandoned upload: nothing to report, but do not leave the thread behind.
            let _ = s.stop();
        }
    }
}

/// `write_all` for a list of slices: one `writev` per call, resuming after short writes.
fn write_all_vectored(file: &mut File, parts: &[&[u8]]) -> std::io::Result<()> {
    let (mut i, mut off) = (0usize, 0usize);
    // Skip empty parts so a zero-length write below always means "no progress".
    while i < parts.len() && parts[i].is_empty() {
        i += 1;
    }
    while i < parts.len() {
        // The kernel takes at most IOV_MAX (1024 on Linux) slices per call.
        let end = parts.len().min(i + 1024);
        let mut slices = Vec::with_capacity(end - i);
        slices.push(IoSlice::new(&parts[i][off..]));
        slices.extend(parts[i + 1..end].iter().map(|p| IoSlice::new(p)));
        let mut n = match file.write_vectored(&slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        while i < parts.len() && n >= parts[i].len() - off {
            n -= parts[i].len() - off;
            i += 1;
            off = 0;
        }
        off += n;
        while i < parts.len() && off == 0 && parts[i].is_empty() {
            i += 1;
        }
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectored_writes_keep_order_across_many_and_empty_parts() {
        let dir = tempfile::tempdir().unwrap();
        let files = EnvelopeFiles::open(dir.path()).unwrap();
        let (f, p) = files.create_temp().unwrap();
        let mut t = TempEnvelope::new(f, p.clone());
        // More parts than one writev takes, some empty, uneven sizes.
        let owned: Vec<Vec<u8>> = (0..3000u32)
            .map(|i| vec![(i % 251) as u8; (i % 7) as usize * 100])
            .collect();
        let parts: Vec<&[u8]> = owned.iter().map(|v| &v[..]).collect();
        t.write_parts(&parts).unwrap();
        t.write_parts(&[]).unwrap();
        t.write_parts(&[b"", b"end"]).unwrap();
        t.sync().unwrap();
        let mut want = owned.concat();
        want.extend_from_slice(b"end");
        assert_eq!(t.written(), want.len() as u64);
        assert_eq!(std::fs::read(&p).unwrap(), want);
    }

    #[test]
    fn publish_read_remove_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let files = EnvelopeFiles::open(dir.path()).unwrap();
        let key = [7u8; 48];
        let (f, p) = files.create_temp().unwrap();
        let mut t = TempEnvelope::new(f, p);
        let data = vec![9u8; (SYNC_EVERY as usize) + 5];
        t.write(&data[..100]).unwrap();
        t.write(&data[100..]).unwrap();
        assert_eq!(t.written(), data.len() as u64);
        t.sync().unwrap();
        files.publish(t.path(), &key).unwrap();
        assert_eq!(files.len(&key).unwrap(), Some(data.len() as u64));
        let got = files.read_at(&key, 0, 1 << 30).unwrap();
        assert_eq!(got.as_deref(), Some(&data[..]));
        let got = files.read_at(&key, 100, 50).unwrap();
        assert_eq!(got.as_deref(), Some(&data[100..150]));
        assert_eq!(files.read_at(&key, u64::MAX, 50).unwrap(), Some(vec![]));
        // A missing file reads as "not there", not as garbage.
        assert_eq!(files.read_at(&[8; 48], 0, 3).unwrap(), None);
        assert_eq!(files.len(&[8; 48]).unwrap(), None);

        // Garbage: a temporary file and an unindexed final file go; indexed and foreign stay.
        let (_, temp) = files.create_temp().unwrap();
        let orphan = [1u8; 48];
        std::fs::write(files.final_path(&orphan), b"x").unwrap();
        std::fs::write(files.dir().join("README"), b"operator note").unwrap();
        let removed = files.collect_garbage(|k| Ok(*k == key)).unwrap();
        assert_eq!(removed, 2);
        assert!(!temp.exists() && !files.final_path(&orphan).exists());
        assert!(files.final_path(&key).exists() && files.dir().join("README").exists());

        files.remove(&key).unwrap();
        files.remove(&key).unwrap();
        assert!(!files.final_path(&key).exists());
    }
}
