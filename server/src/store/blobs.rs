//! What both backends keep in memory about attachment blobs: each blob's total, its durable
//! length, when it was last written, and how many items refer to it; and which blobs are being
//! uploaded right now. Where the bytes live is the backend's business (files in `blobs/` for the
//! sled store, memory for the memory store); the rules are here, once:
//!
//! * an upload appends only where the blob ends (`vigil_core::wire::policy::upload_step`), one
//!   upload per blob at a time ([`StoreError::InProgress`] for a second);
//! * a deposit may refer only to complete blobs ([`StoreError::BlobIncomplete`]), and takes one
//!   reference per blob;
//! * the last reference dropped (its item acknowledged or expired) deletes the blob at once;
//! * a blob nobody refers to (a partial upload, or a complete one never deposited) is deleted
//!   once it has not been written for the blob expiry (24 h by default).

use super::StoreError;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use vigil_core::ids::BlobId;
use vigil_core::wire::fetch::BlobRef;
use vigil_core::wire::policy::{upload_step, UploadStep};
use vigil_core::wire::upload::Upload;

/// Default for how long a blob no item refers to is kept after its last write: a day, time for a
/// reporter on a bad link to resume, short enough that abandoned uploads do not pile up.
pub const DEFAULT_BLOB_EXPIRY_SECS: u64 = 86_400;

/// One blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlobMeta {
    /// Its whole length, fixed by its first upload.
    pub(crate) total: u64,
    /// Bytes held durably.
    pub(crate) have: u64,
    /// Unix seconds of its last write (or, after a restart, its file's modification time).
    pub(crate) touched: u64,
    /// Items that refer to it.
    pub(crate) refs: u32,
}

impl BlobMeta {
    fn complete(&self) -> bool {
        self.have == self.total
    }
}

#[derive(Default)]
struct State {
    blobs: HashMap<BlobId, BlobMeta>,
    uploading: HashSet<BlobId>,
}

/// The blob index; see the module docs.
pub(crate) struct BlobIndex {
    state: Mutex<State>,
    expiry_secs: AtomicU64,
}

impl Default for BlobIndex {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            expiry_secs: AtomicU64::new(DEFAULT_BLOB_EXPIRY_SECS),
        }
    }
}

/// What an upload does after [`BlobIndex::begin_upload`].
pub(crate) enum UploadPlan<'a> {
    /// Write nothing; answer this durable length.
    Answer(u64),
    /// Append the chunk at `at` (the blob's durable length; 0 and `fresh` for a new blob). The
    /// mark keeps other uploads of the blob out until it is dropped.
    Write {
        /// Where the chunk goes.
        at: u64,
        /// No byte of the blob is held yet (its file may not exist).
        fresh: bool,
        /// The upload in progress.
        mark: UploadMark<'a>,
    },
}

/// An upload of a blob in progress; dropping it lets the next one in.
pub(crate) struct UploadMark<'a> {
    index: &'a BlobIndex,
    blob: BlobId,
}

impl UploadMark<'_> {
    /// The chunk is durable: the blob of `total` bytes now holds `have` bytes.
    pub(crate) fn done(self, total: u64, have: u64, now: u64) {
        let mut s = self.index.state();
        let m = s.blobs.entry(self.blob).or_insert(BlobMeta {
            total,
            have: 0,
            touched: now,
            refs: 0,
        });
        m.have = have;
        m.touched = now;
    }
}

impl Drop for UploadMark<'_> {
    fn drop(&mut self) {
        self.index.state().uploading.remove(&self.blob);
    }
}

impl BlobIndex {
    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing under the lock panics; a poisoned map is still well-formed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keep blobs nobody refers to for `secs` after their last write.
    pub(crate) fn set_expiry(&self, secs: u64) {
        self.expiry_secs.store(secs, Ordering::Relaxed);
    }

    /// Decide an upload, and mark the blob as being uploaded if it is to be written.
    pub(crate) fn begin_upload(&self, head: &Upload) -> Result<UploadPlan<'_>, StoreError> {
        let mut s = self.state();
        let held = s.blobs.get(&head.blob).map(|m| (m.total, m.have));
        match upload_step(held, head.total, head.offset, head.chunk_len) {
            UploadStep::TotalMismatch { held } => Err(StoreError::BlobConflict { total: held }),
            UploadStep::Answer(have) => Ok(UploadPlan::Answer(have)),
            UploadStep::Write => {
                if !s.uploading.insert(head.blob) {
                    return Err(StoreError::InProgress);
                }
                Ok(UploadPlan::Write {
                    at: head.offset,
                    fresh: held.is_none(),
                    mark: UploadMark {
                        index: self,
                        blob: head.blob,
                    },
                })
            }
        }
    }

    /// The blobs' lengths, if every one is complete; then each gains a reference.
    pub(crate) fn take_refs(&self, blobs: &[BlobId]) -> Result<Vec<BlobRef>, StoreError> {
        let mut s = self.state();
        let mut out = Vec::with_capacity(blobs.len());
        for id in blobs {
            match s.blobs.get(id) {
                Some(m) if m.complete() => out.push(BlobRef {
                    id: *id,
                    len: m.total,
                }),
                _ => return Err(StoreError::BlobIncomplete),
            }
        }
        for id in blobs {
            if let Some(m) = s.blobs.get_mut(id) {
                m.refs = m.refs.saturating_add(1);
            }
        }
        Ok(out)
    }

    /// Take back references [`BlobIndex::take_refs`] gave to a deposit that was then not
    /// stored, without deleting anything: the blobs are as they were before.
    pub(crate) fn untake_refs(&self, blobs: &[BlobId]) {
        let mut s = self.state();
        for id in blobs {
            if let Some(m) = s.blobs.get_mut(id) {
                m.refs = m.refs.saturating_sub(1);
            }
        }
    }

    /// The blobs' lengths if every one is complete, without taking references (a check before
    /// a deposit's quota is reserved).
    pub(crate) fn lengths(&self, blobs: &[BlobId]) -> Result<Vec<BlobRef>, StoreError> {
        let s = self.state();
        blobs
            .iter()
            .map(|id| match s.blobs.get(id) {
                Some(m) if m.complete() => Ok(BlobRef {
                    id: *id,
                    len: m.total,
                }),
                _ => Err(StoreError::BlobIncomplete),
            })
            .collect()
    }

    /// Drop one reference to each blob; the blobs no item refers to any more are forgotten and
    /// returned with their totals, for the backend to delete their bytes.
    pub(crate) fn drop_refs(&self, blobs: impl IntoIterator<Item = BlobId>) -> Vec<(BlobId, u64)> {
        let mut s = self.state();
        let mut gone = Vec::new();
        for id in blobs {
            if let Some(m) = s.blobs.get_mut(&id) {
                m.refs = m.refs.saturating_sub(1);
                if m.refs == 0 {
                    gone.push((id, m.total));
                    s.blobs.remove(&id);
                }
            }
        }
        gone
    }

    /// The length of a complete blob; `None` for an unknown or partial one.
    pub(crate) fn complete_len(&self, blob: &BlobId) -> Option<u64> {
        self.state()
            .blobs
            .get(blob)
            .filter(|m| m.complete())
            .map(|m| m.total)
    }

    /// Forget the blobs nobody refers to or uploads whose last write is older than the blob
    /// expiry at `now`, and return them with their totals for the backend to delete.
    pub(crate) fn take_expired(&self, now: u64) -> Vec<(BlobId, u64)> {
        let expiry = self.expiry_secs.load(Ordering::Relaxed);
        let mut s = self.state();
        let State { blobs, uploading } = &mut *s;
        let due: Vec<(BlobId, u64)> = blobs
            .iter()
            .filter(|(id, m)| {
                m.refs == 0 && m.touched.saturating_add(expiry) <= now && !uploading.contains(id)
            })
            .map(|(id, m)| (*id, m.total))
            .collect();
        for (id, _) in &due {
            blobs.remove(id);
        }
        due
    }

    /// Blobs held and their durable bytes, for the operator's stats.
    pub(crate) fn totals(&self) -> (u64, u64) {
        let s = self.state();
        let bytes = s.blobs.values().map(|m| m.have).sum();
        (s.blobs.len() as u64, bytes)
    }

    /// A blob found on disk when the store opens.
    pub(crate) fn found(&self, blob: BlobId, total: u64, have: u64, touched: u64) {
        self.state().blobs.insert(
            blob,
            BlobMeta {
                total,
                have,
                touched,
                refs: 0,
            },
        );
    }

    /// A reference found when the store opens; false if the blob is unknown (lost with its
    /// file, or damaged).
    pub(crate) fn found_ref(&self, blob: &BlobId) -> bool {
        match self.state().blobs.get_mut(blob) {
            Some(m) => {
                m.refs = m.refs.saturating_add(1);
                true
            }
            None => false,
        }
    }
}
