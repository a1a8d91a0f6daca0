//! The two calls an append makes on a block file, behind a narrow trait so
//! that tests (of this crate and of the chains above it) can make them fail
//! the way a full or broken disk does.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// `ENOSPC` on Linux: "No space left on device".
pub const ENOSPC_ERRNO: i32 = 28;
/// `EIO` on Linux: "Input/output error".
pub const EIO_ERRNO: i32 = 5;

/// Writes and syncs block-file bytes. [`OsIo`] is the real thing; tests
/// substitute [`FaultyIo`] with [`crate::Ledger::set_append_io`].
pub trait AppendIo: Send + Sync + fmt::Debug {
    /// Writes all of `buf` at `offset` (`pwrite` until done).
    fn write_all_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes the written data durable (`fdatasync`).
    fn sync_data(&self, file: &File) -> io::Result<()>;
}

/// The operating system's `pwrite` and `fdatasync`.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsIo;

impl AppendIo for OsIo {
    fn write_all_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        file.write_all_at(buf, offset)
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }
}

/// A failure [`FaultyIo`] injects into every append until cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Write the first `after_bytes` bytes (a partial record), then fail
    /// with OS error `errno` (what a disk filling up mid-write does).
    Write {
        /// Bytes actually written before the error.
        after_bytes: usize,
        /// The OS error number returned, e.g. [`ENOSPC_ERRNO`].
        errno: i32,
    },
    /// Write everything, then fail the sync with OS error `errno` (e.g. [`EIO_ERRNO`]).
    Sync {
        /// The OS error number returned.
        errno: i32,
    },
}

/// An [`AppendIo`] that behaves like [`OsIo`] until a [`Fault`] is set,
/// then fails every write or sync that way until it is cleared. For tests.
#[derive(Debug, Default)]
pub struct FaultyIo {
    fault: Mutex<Option<Fault>>,
    failures: AtomicU64,
}

impl FaultyIo {
    /// A pass-through instance with no fault set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or with `None` clears) the fault injected from now on.
    pub fn set(&self, fault: Option<Fault>) {
        *self.fault.lock().unwrap_or_else(|e| e.into_inner()) = fault;
    }

    /// How many calls have failed so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::SeqCst)
    }

    fn current(&self) -> Option<Fault> {
        *self.fault.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl AppendIo for FaultyIo {
    fn write_all_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        if let Some(Fault::Write { after_bytes, errno }) = self.current() {
            file.write_all_at(&buf[..after_bytes.min(buf.len())], offset)?;
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Err(io::Error::from_raw_os_error(errno));
        }
        file.write_all_at(buf, offset)
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        if let Some(Fault::Sync { errno }) = self.current() {
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Err(io::Error::from_raw_os_error(errno));
        }
        file.sync_data()
    }
}
