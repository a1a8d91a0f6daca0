//! The orderer's per-channel block-file ledger, in Fabric's on-disk format.
//!
//! # Layout under the ledger root (`FileLedger.Location`)
//!
//! * `chains/<channel_id>/blockfile_000000`, `blockfile_000001`, …: the
//!   blocks, byte for byte as Fabric's `common/ledger/blkstorage` (v1.4.x
//!   `fsblkstorage`) writes them, so Fabric's orderer and ours can take over
//!   each other's data directory. Each record is `uvarint(len(B)) B` with B
//!   Fabric's block serialization ([`serialization`]); nothing else is in
//!   these files. A new file starts when a record would push the current one
//!   past [`LedgerConfig::file_size_max`] (64 MiB, Fabric's default and what
//!   its orderer uses).
//! * `rust-orderer/<channel_id>/block-checksums`: our integrity data, one
//!   entry per block (location, length, CRC-32C of B) — see [`checksums`].
//!   It lives outside `chains/` because Fabric takes every directory there
//!   for a channel and every `blockfile_*` for a block file. It is derived
//!   data, rebuilt from the verified block files when missing or short.
//! * `index/`: Fabric's LevelDB index. We never read or write it; before our
//!   first append to a root that has one it is renamed to
//!   `index.stale-<unix seconds>` so that Fabric's orderer rebuilds it rather
//!   than trust a stale checkpoint — see [`fabric_index`] for what Fabric's
//!   source does in each case.
//!
//! # Modules
//!
//! * [`serialization`]: Fabric's block serialization, encode and parse (pure).
//! * [`record`]: splitting a block file into records, [`scan_records`]
//!   (pure, panic-free: with [`serialization::BlockView::parse`] the fuzzing
//!   entry point).
//! * [`checksums`]: the checksum file.
//! * `walk`: the read-only check of a channel's files used by `open`, and
//!   [`verify_channel`] for an offline check (numbering, hash chain, data
//!   hashes, checksums; no signatures).
//! * `ledger`: [`Ledger`], the single writer (open, recover, append), and
//!   [`LedgerReader`], the cloneable reader (get, height, wait).
//! * [`LedgerConfig`]: the limits; [`LedgerError`]: the errors of this layer
//!   ([`serialization::DecodeError`] and [`RecordDefect`] are those of the
//!   pure layers below).
//! * [`io`]: [`AppendIo`], the narrow write/sync layer of appends, and
//!   [`FaultyIo`], which fails it like a full or broken disk (tests).
//!
//! # Durability
//!
//! `append` writes the records of a batch and returns only after
//! `sync_data` completed (and the directory synced when a file was
//! created). Only then are the blocks added to the index readers use and
//! the new height sent on the `watch` channel, so readers never see a block
//! that is not durable. Then their checksums are queued for the checksum
//! file, which is written every 128 blocks and written and synced when a
//! block file is started and when the writer is dropped, never on the fsync
//! path of an append (entries lost in a crash are rebuilt from the verified
//! block files). A failed write or sync truncates the block file back to its
//! previous length (as Fabric's `addBlock` does), so the same blocks can be
//! appended again once the disk has room; a failed truncation is retried by
//! the next append ([`Ledger::repair`]) before it writes anything.
//!
//! # Recovery: torn tail vs. corruption
//!
//! `open` first walks every block file **read-only**: records must split
//! and decode, blocks be numbered 0, 1, … across the files, each
//! `previous_hash` be the header hash of the block before, the bytes of
//! each block match its checksum entry, and blocks without an entry (written
//! by Fabric, or by us just before a crash) have a correct data hash.
//!
//! A **torn tail** is the one thing `open` removes: a partial last record of
//! the last file — the bytes end inside its length prefix, or its declared
//! length (at most `block_size_max`) exceeds the bytes left — whose bytes
//! start like the block expected there (its number, and the previous
//! block's hash) and which the checksum file does not record as written.
//! That is what an append interrupted by a crash leaves. It is truncated
//! with a warning naming file, offset and bytes.
//!
//! Everything else fails `open` with [`LedgerError::Corrupt`] naming file,
//! offset, what was found and what to do, **before anything on disk is
//! changed**: a foreign format, a record whose bytes are all there but do
//! not decode, a malformed length or one over the limit, a bad record
//! followed by more bytes, a problem in a file that is not the last, broken
//! numbering or hash chain, a wrong data hash, a checksum mismatch, a
//! partial record the checksum file knows as complete, or fewer blocks than
//! the checksum file records. Readers check the checksum on every read and
//! report a mismatch the same way.

pub mod checksums;
mod config;
mod error;
pub mod fabric_index;
mod hash;
pub mod io;
mod ledger;
pub mod record;
pub mod serialization;
mod walk;

pub use checksums::checksums_path;
pub use config::LedgerConfig;
pub use error::{LedgerError, Result};
pub use fabric_index::retire_fabric_index;
pub use io::{AppendIo, Fault, FaultyIo, OsIo, EIO_ERRNO, ENOSPC_ERRNO};
pub use ledger::{channel_dir, Ledger, LedgerReader, CHANNEL_ID_LEN_MAX};
pub use record::{scan_records, RecordDefect, RecordSpan, ScanResult, ScanStop};
pub use walk::{
    block_file_name, verify_channel, verify_channel_blocks, BlockVisitor, ChannelReport, TornTail,
    BLOCK_FILE_PREFIX,
};
