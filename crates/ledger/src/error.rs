//! The ledger's error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong opening, appending to or reading a ledger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// An I/O call failed.
    #[error("ledger i/o error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Stored data is not a valid Fabric ledger (damaged, foreign, or not
    /// matching its checksums) somewhere other than a torn last record, or
    /// a record read back does not match what was written. Never served,
    /// never truncated: the ledger is left as it is.
    #[error(
        "corrupt ledger file {file} at offset {offset}: {reason}. The ledger was left unchanged; \
         restore it from a backup or move the directory aside (`orderer ledger verify <dir>` \
         reports the details)"
    )]
    Corrupt {
        /// The block file.
        file: PathBuf,
        /// Byte offset of the damaged record (or 0 for whole-file problems).
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An appended block's number is not the next one (the ledger height,
    /// plus its position in a batch).
    #[error("block number {got} where block {expected} was expected")]
    WrongNumber {
        /// The number the block must have.
        expected: u64,
        /// The number in the block header.
        got: u64,
    },
    /// An appended block's `previous_hash` is not the hash of the last header.
    #[error("block {number}: previous_hash is not the header hash of the block before (empty for block 0)")]
    WrongPreviousHash {
        /// The appended block's number.
        number: u64,
    },
    /// An appended block's `data_hash` is not the SHA-256 of its data.
    #[error("block {number}: data_hash is not the SHA-256 of the block's data")]
    WrongDataHash {
        /// The appended block's number.
        number: u64,
    },
    /// An appended block has no header.
    #[error("block has no header")]
    MissingHeader,
    /// An appended block encodes to more bytes than the configured limit.
    #[error("block {number} encodes to {size} bytes, over the limit of {limit}")]
    BlockTooLarge {
        /// The block's number.
        number: u64,
        /// Its encoded size.
        size: u64,
        /// `LedgerConfig::block_size_max`.
        limit: u32,
    },
    /// A batch holds more blocks than `LedgerConfig::batch_blocks_max`.
    #[error("batch of {count} blocks exceeds the limit of {limit}")]
    BatchTooLarge {
        /// Blocks in the batch.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The requested block is at or above the height.
    #[error("block {number} not found (height {height})")]
    NotFound {
        /// The requested number.
        number: u64,
        /// The height at the time of the request.
        height: u64,
    },
    /// The writer was dropped while waiting for a height.
    #[error("ledger writer closed")]
    Closed,
    /// A failed append could not be rolled back, so the files' state is
    /// unknown; the writer refuses further appends (reads still work).
    /// Reopen the ledger to recover.
    #[error("ledger writer poisoned by an earlier failed rollback; reopen the ledger")]
    Poisoned,
    /// The channel id is not a valid Fabric channel name.
    #[error("invalid channel id {0:?}: want [a-z][a-z0-9.-]*, at most 249 characters")]
    InvalidChannelId(String),
    /// The configuration breaks a rule.
    #[error("invalid ledger config: {0}")]
    InvalidConfig(&'static str),
}

impl LedgerError {
    /// Whether retrying the same append later can succeed: an I/O failure
    /// (disk full, I/O error) or a poisoned writer, which the next append
    /// repairs first. Everything else is a bug or corruption.
    pub fn is_transient(&self) -> bool {
        matches!(self, LedgerError::Io { .. } | LedgerError::Poisoned)
    }
}

/// Shorthand for results with [`LedgerError`].
pub type Result<T, E = LedgerError> = std::result::Result<T, E>;

pub(crate) fn io_error(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> LedgerError {
    let path = path.into();
    move |source| LedgerError::Io { path, source }
}
