//! Disk space guard: refuse new deposits *before* the disk is full.
//!
//! sled 0.34.7 treats an I/O error while writing its log as fatal for the open database (it
//! records a global error and every later operation returns it), so a relay that let sled run
//! into `ENOSPC` would stop serving fetches too, until restarted. The guard keeps a margin
//! instead: when free space in the data directory falls below `min_free_bytes`, or the
//! directory cannot be written, new deposits and registrations are refused with the retryable
//! `StorageFull` error, while fetches and acks (which free space) go on. A background task
//! re-probes every few seconds, so the relay accepts deposits again by itself once space
//! returns. A `NoSpace` error from the store itself also closes the gate until the next probe.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Name of the small file written and removed by [`DirProbe`] to check the directory is
/// writable.
pub const PROBE_FILE: &str = ".space-probe";

/// What a probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpaceReport {
    /// The directory is writable and has this many bytes available to the relay's user.
    Writable {
        /// Bytes available.
        available: u64,
    },
    /// The directory cannot be written (read-only file system, permissions, out of inodes...).
    NotWritable(String),
}

/// Something that can tell how much room the store has. Blocking.
pub trait SpaceProbe: Send + Sync + 'static {
    /// Look now.
    fn probe(&self) -> SpaceReport;
}

/// The real probe: `statvfs` free space for the relay's user, and a 1-byte write test.
pub struct DirProbe {
    /// The data directory (the store lives inside it).
    pub dir: PathBuf,
}

impl SpaceProbe for DirProbe {
    fn probe(&self) -> SpaceReport {
        let path = self.dir.join(PROBE_FILE);
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"x"));
        let _ = std::fs::remove_file(&path);
        if let Err(e) = written {
            return SpaceReport::NotWritable(e.to_string());
        }
        match fs2::available_space(&self.dir) {
            Ok(available) => SpaceReport::Writable { available },
            Err(e) => SpaceReport::NotWritable(e.to_string()),
        }
    }
}

/// A probe that always reports plenty of room (tests and in-memory stores).
pub struct Unlimited;

impl SpaceProbe for Unlimited {
    fn probe(&self) -> SpaceReport {
        SpaceReport::Writable {
            available: u64::MAX,
        }
    }
}

/// The gate in front of writes that add data.
pub struct SpaceGuard {
    probe: Box<dyn SpaceProbe>,
    min_free_bytes: u64,
    accepting: AtomicBool,
    available: AtomicU64,
    /// Bytes promised to large uploads still arriving (see [`SpaceGuard::try_reserve`]).
    reserved: AtomicU64,
    /// Why the gate is closed, for the log (no ids, no addresses).
    reason: Mutex<Option<String>>,
}

impl SpaceGuard {
    /// A guard that refuses writes when `probe` reports less than `min_free_bytes` available.
    /// Starts open; call [`SpaceGuard::refresh`] to look.
    pub fn new(probe: Box<dyn SpaceProbe>, min_free_bytes: u64) -> Self {
        Self {
            probe,
            min_free_bytes,
            accepting: AtomicBool::new(true),
            available: AtomicU64::new(u64::MAX),
            reserved: AtomicU64::new(0),
            reason: Mutex::new(None),
        }
    }

    /// A guard that never closes.
    pub fn unlimited() -> Self {
        Self::new(Box::new(Unlimited), 0)
    }

    /// Whether new deposits and registrations are accepted now.
    pub fn accepting(&self) -> bool {
        self.accepting.load(Ordering::Acquire)
    }

    /// Bytes available at the last probe (`u64::MAX` before the first).
    pub fn available(&self) -> u64 {
        self.available.load(Ordering::Relaxed)
    }

    /// Promise `bytes` of disk to an upload that is about to stream them in, or `None` if the
    /// gate is closed or the bytes would eat into the margin: free space at the last probe,
    /// less what other uploads in flight were promised, must stay at least `min_free_bytes`.
    /// Without this, many large uploads admitted together could fill the disk between two
    /// probes and take sled's log down with them.
    pub fn try_reserve(self: &Arc<Self>, bytes: u64) -> Option<SpaceReservation> {
        if !self.accepting() {
            return None;
        }
        let available = self.available();
        self.reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |reserved| {
                let after = available.checked_sub(reserved)?.checked_sub(bytes)?;
                (after >= self.min_free_bytes).then(|| reserved + bytes)
            })
            .ok()?;
        Some(SpaceReservation {
            guard: self.clone(),
            bytes,
        })
    }

    /// Bytes promised to uploads in flight.
    pub fn reserved(&self) -> u64 {
        self.reserved.load(Ordering::Relaxed)
    }

    /// Probe now (blocking) and open or close the gate; logs each change once.
    pub fn refresh(&self) -> bool {
        let closed_reason = match self.probe.probe() {
            SpaceReport::Writable { available } => {
                self.available.store(available, Ordering::Relaxed);
                (available < self.min_free_bytes).then(|| {
                    format!(
                        "{available} bytes free in the data directory, below the minimum of {} \
                         (limits.min_free_bytes)",
                        self.min_free_bytes
                    )
                })
            }
            SpaceReport::NotWritable(e) => {
                self.available.store(0, Ordering::Relaxed);
                Some(format!("the data directory cannot be written: {e}"))
            }
        };
        match closed_reason {
            None => self.open(),
            Some(r) => self.close(r),
        }
        self.accepting()
    }

    /// The store reported no space: close until the next probe says otherwise.
    pub fn note_no_space(&self, error: &str) {
        self.close(format!("the store could not write: {error}"));
    }

    fn open(&self) {
        if !self.accepting.swap(true, Ordering::AcqRel) {
            if let Ok(mut r) = self.reason.lock() {
                *r = None;
            }
            tracing::warn!("disk space is back: accepting new deposits again");
        }
    }

    fn close(&self, reason: String) {
        let was_open = self.accepting.swap(false, Ordering::AcqRel);
        if was_open {
            tracing::error!(
                reason = %reason,
                "refusing new deposits and registrations until disk space returns; \
                 fetches and acks continue"
            );
        }
        if let Ok(mut r) = self.reason.lock() {
            *r = Some(reason);
        }
    }
}

/// Disk promised to one upload; given back when dropped.
pub struct SpaceReservation {
    guard: Arc<SpaceGuard>,
    bytes: u64,
}

impl SpaceReservation {
    /// The upload was stored: its bytes are now on disk, so count them as used until the next
    /// probe measures the truth, and release the promise.
    pub fn consumed(self) {
        let _ = self
            .guard
            .available
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |a| {
                Some(a.saturating_sub(self.bytes))
            });
    }
}

impl Drop for SpaceReservation {
    fn drop(&mut self) {
        let _ = self
            .guard
            .reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                Some(r.saturating_sub(self.bytes))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(Arc<Mutex<SpaceReport>>);
    impl SpaceProbe for Fake {
        fn probe(&self) -> SpaceReport {
            self.0.lock().unwrap().clone()
        }
    }

    #[test]
    fn closes_below_the_margin_and_reopens_when_space_returns() {
        let state = Arc::new(Mutex::new(SpaceReport::Writable { available: 1000 }));
        let g = SpaceGuard::new(Box::new(Fake(state.clone())), 100);
        assert!(g.refresh());
        *state.lock().unwrap() = SpaceReport::Writable { available: 99 };
        assert!(!g.refresh());
        *state.lock().unwrap() = SpaceReport::NotWritable("read-only".into());
        assert!(!g.refresh());
        *state.lock().unwrap() = SpaceReport::Writable { available: 100 };
        assert!(g.refresh());
        g.note_no_space("ENOSPC");
        assert!(!g.accepting());
        assert!(g.refresh());
    }

    #[test]
    fn large_uploads_in_flight_cannot_eat_the_margin() {
        let state = Arc::new(Mutex::new(SpaceReport::Writable { available: 1000 }));
        let g = Arc::new(SpaceGuard::new(Box::new(Fake(state.clone())), 100));
        assert!(g.refresh());
        let a = g.try_reserve(500).expect("fits");
        assert!(
            g.try_reserve(401).is_none(),
            "would leave 99 of a 100 margin"
        );
        let b = g.try_reserve(400).expect("leaves exactly the margin");
        assert_eq!(g.reserved(), 900);
        // An upload that fails gives its promise back; one that is stored uses the space.
        drop(a);
        assert_eq!(g.reserved(), 400);
        b.consumed();
        assert_eq!((g.reserved(), g.available()), (0, 600));
        assert!(g.try_reserve(501).is_none());
        assert!(g.try_reserve(500).is_some());
        // The next probe measures the truth again; a closed gate promises nothing.
        *state.lock().unwrap() = SpaceReport::Writable { available: 50 };
        assert!(!g.refresh());
        assert!(g.try_reserve(1).is_none());
    }

    #[test]
    fn dir_probe_sees_a_writable_directory_and_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = DirProbe {
            dir: dir.path().to_path_buf(),
        };
        assert!(matches!(p.probe(), SpaceReport::Writable { .. }));
        assert!(!dir.path().join(PROBE_FILE).exists());
        let gone = DirProbe {
            dir: dir.path().join("missing"),
        };
        assert!(matches!(gone.probe(), SpaceReport::NotWritable(_)));
    }
}
