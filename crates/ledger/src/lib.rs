//! The orderer's per-channel block-file ledger.
//!
//! # Layout
//!
//! One directory per channel, `<root>/chains/<channel_id>/`, holding
//! `blockfile_000000`, `blockfile_000001`, … (Fabric's names). Appends go to
//! the last file; a new file is started when a record would push the current
//! one past [`LedgerConfig::file_size_max`] (64 MiB by default). The files
//! hold only records, back to back; the record format (a 24-byte header with
//! magic, body length, block number, body CRC-32C and header CRC-32C, then
//! the protobuf-encoded `common.Block` unchanged) is described in
//! [`record`].
//!
//! # Modules
//!
//! * [`record`]: the record format and [`scan_records`], the pure,
//!   panic-free parser of a record stream (the fuzzing entry point).
//! * `ledger`: [`Ledger`], the single writer (open, recover, append), and
//!   [`LedgerReader`], the cloneable reader (get, height, wait).
//! * [`LedgerConfig`]: the limits; [`LedgerError`]: the errors.
//! * [`io`]: [`AppendIo`], the narrow write/sync layer of appends, and
//!   [`FaultyIo`], which fails it like a full or broken disk (tests).
//! * `hash`: Fabric's block header hash (`fabric_common::block::header_hash`),
//!   used to verify the `previous_hash` chain.
//!
//! # Durability
//!
//! `append` returns only after the record is written and `sync_data`
//! completed (and the directory synced when a file was created). Only then
//! is the block added to the index readers use and the new height sent on
//! the `watch` channel, so readers never see a block that is not durable.
//! A failed write or sync truncates the file back to its previous length,
//! so the same blocks can be appended again once the disk has room (the
//! chains retry with bounded backoff); a failed truncation is retried by the
//! next append ([`Ledger::repair`]) before it writes anything.
//!
//! # Recovery: torn tail vs. corruption
//!
//! `open` scans every record. At the first bad record of a file (partial
//! header, bad magic, bad header checksum, partial body, bad body checksum)
//! the rest of that file is searched, byte by byte, for a valid record
//! *header* (magic and header checksum correct, length within the limit):
//!
//! * none found, and the file is the last one: a **torn tail**, what a crash
//!   during an append leaves. It is truncated away (logged with
//!   `tracing::warn!`) and the ledger opens at the last good block. This
//!   includes a flipped byte inside the last record: bit rot in the last
//!   record cannot be told apart from a torn write, so that block is
//!   dropped. For the Kafka orderer this is safe: the block is rebuilt from
//!   the Kafka log, whose offsets are recorded in the previous block.
//! * found, or the file is not the last one: **corruption**. `open` fails
//!   with [`LedgerError::Corrupt`] `{ file, offset, reason }` and changes
//!   nothing on disk. Corrupt data is never served or silently dropped.
//!
//! The rule errs towards refusing to open: a crash while writing a block
//! whose payload happens to embed a byte-exact valid record header is
//! reported as corruption, for an operator to inspect, rather than
//! truncated. A record whose header is intact but whose length exceeds
//! `block_size_max` (the limit was lowered) is also an error, never
//! truncated. Records with valid checksums but the wrong block number, an
//! undecodable block or a broken `previous_hash` link are corruption
//! wherever they are.

mod config;
mod error;
mod hash;
pub mod io;
mod ledger;
pub mod record;

pub use config::LedgerConfig;
pub use error::{LedgerError, Result};
pub use io::{AppendIo, Fault, FaultyIo, OsIo, EIO_ERRNO, ENOSPC_ERRNO};
pub use ledger::{
    block_file_name, channel_dir, Ledger, LedgerReader, BLOCK_FILE_PREFIX, CHANNEL_ID_LEN_MAX,
};
pub use record::{scan_records, RecordDefect, RecordSpan, ScanResult, ScanStop};
