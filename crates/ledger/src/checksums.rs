//! The block checksum file, kept beside Fabric's block files, never in them.
//!
//! Path: `<root>/rust-orderer/<channel_id>/block-checksums` ([`checksums_path`]).
//! It is outside `<root>/chains/` on purpose: Fabric's orderer takes every
//! directory under `chains/` for a channel and every `blockfile_*` file in a
//! channel directory for a block file. Fabric ignores `rust-orderer/`.
//!
//! The file is a sequence of 24-byte entries, entry `n` for block `n`:
//!
//! ```text
//! offset  size  field
//!      0     4  file       u32 LE, block file number (blockfile_NNNNNN)
//!      4     8  offset     u64 LE, offset of the record's length prefix
//!     12     4  body_len   u32 LE, length of Fabric's block serialization
//!     16     4  body_crc   u32 LE, CRC-32C (Castagnoli) of that serialization
//!     20     4  entry_crc  u32 LE, CRC-32C of bytes 0..20 of this entry
//! ```
//!
//! It is derived data: written after the block is durable, in batches of
//! up to 128 entries (a write when a batch is full, when a block file is
//! started, and when the writer is dropped; an fsync in the last two cases),
//! and rebuilt from the block files when it is missing, shorter
//! than the block files, or ends in entries whose own checksum fails (a
//! crash while writing it). Rebuilt entries are only written after the
//! blocks they describe were verified (numbering, `previous_hash` chain,
//! data hash). Deleting the directory is always safe: the next open
//! re-verifies the blocks and rebuilds it.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{io_error, Result};

/// Directory under the ledger root that holds this orderer's extra data.
pub const SIDE_DIR: &str = "rust-orderer";
/// Name of the checksum file in `<root>/rust-orderer/<channel_id>/`.
pub const CHECKSUMS_FILE: &str = "block-checksums";
/// Size of one entry.
pub const ENTRY_SIZE: usize = 24;
/// Entries queued in memory before they are written: one small write per
/// this many blocks instead of one per block, which keeps the checksum
/// file off the fsync path of appends (on ext4 `data=ordered`, an fsync of
/// the block file also flushes other files' newly allocated data).
const FLUSH_ENTRIES: usize = 128;

/// The checksum file of `channel_id` under the ledger `root`.
pub fn checksums_path(root: &Path, channel_id: &str) -> PathBuf {
    root.join(SIDE_DIR).join(channel_id).join(CHECKSUMS_FILE)
}

/// Where block `n` is and what its bytes must hash to: one entry of the
/// checksum file, and the in-memory index of the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Block file number.
    pub file: u32,
    /// Offset of the record's length prefix.
    pub offset: u64,
    /// Length of the record body.
    pub body_len: u32,
    /// CRC-32C of the record body.
    pub body_crc: u32,
}

impl Entry {
    /// Offset of the record body.
    pub fn body_offset(&self) -> u64 {
        self.offset + crate::serialization::uvarint_len(self.body_len.into()) as u64
    }

    fn encode(&self) -> [u8; ENTRY_SIZE] {
        let mut out = [0u8; ENTRY_SIZE];
        out[0..4].copy_from_slice(&self.file.to_le_bytes());
        out[4..12].copy_from_slice(&self.offset.to_le_bytes());
        out[12..16].copy_from_slice(&self.body_len.to_le_bytes());
        out[16..20].copy_from_slice(&self.body_crc.to_le_bytes());
        let crc = crc32c::crc32c(&out[0..20]);
        out[20..24].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Entry> {
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
        if bytes.len() != ENTRY_SIZE || crc32c::crc32c(&bytes[0..20]) != u32_at(20) {
            return None;
        }
        Some(Entry {
            file: u32_at(0),
            offset: u64::from_le_bytes(bytes[4..12].try_into().expect("8 bytes")),
            body_len: u32_at(12),
            body_crc: u32_at(16),
        })
    }
}

/// Reads the entries of a checksum file, read-only. A missing file has no
/// entries. Reading stops at the first entry that is partial or fails its
/// own checksum; what follows is not trusted (it is rebuilt).
pub(crate) fn load(path: &Path) -> Result<Vec<Entry>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(path)(e)),
    };
    let entries: Vec<Entry> = bytes.chunks(ENTRY_SIZE).map_while(Entry::decode).collect();
    let ignored = bytes.len() - entries.len() * ENTRY_SIZE;
    if ignored > 0 {
        tracing::warn!(
            file = %path.display(),
            offset = entries.len() * ENTRY_SIZE,
            ignored_bytes = ignored,
            "checksum file ends in an unreadable entry; the checksums after it are rebuilt from the block files"
        );
    }
    Ok(entries)
}

/// The open checksum file of a ledger writer.
#[derive(Debug)]
pub(crate) struct ChecksumFile {
    path: PathBuf,
    file: File,
    /// Entries in the file (= its length / ENTRY_SIZE).
    entries: u64,
    /// Encoded entries not yet written.
    pending: Vec<u8>,
}

impl ChecksumFile {
    /// Opens (creating) the checksum file and makes it hold exactly
    /// `entries`: the first `trusted` are already in the file as they are;
    /// anything after them is replaced by the rest of `entries`.
    pub fn open(path: &Path, entries: &[Entry], trusted: usize) -> Result<ChecksumFile> {
        let dir = path.parent().expect("checksum file has a directory");
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_error(path))?;
        let mut this = ChecksumFile {
            path: path.to_owned(),
            file,
            entries: trusted as u64,
            pending: Vec::new(),
        };
        let len = this.file.metadata().map_err(io_error(path))?.len();
        if len == (entries.len() * ENTRY_SIZE) as u64 && trusted == entries.len() {
            return Ok(this);
        }
        this.file
            .set_len((trusted * ENTRY_SIZE) as u64)
            .map_err(io_error(path))?;
        this.append(&entries[trusted..]);
        this.flush(&crate::io::OsIo)?;
        this.sync()?;
        sync_dir(dir)?;
        if let Some(side_root) = dir.parent() {
            sync_dir(side_root)?;
        }
        tracing::info!(
            file = %path.display(),
            kept = trusted,
            written = entries.len() - trusted,
            "block checksums rebuilt from the verified block files"
        );
        Ok(this)
    }

    /// Queues entries in memory; [`ChecksumFile::flush`] writes them.
    pub fn append(&mut self, entries: &[Entry]) {
        self.pending
            .extend(entries.iter().flat_map(|entry| entry.encode()));
    }

    /// Whether enough entries are queued to be worth a write.
    pub fn flush_due(&self) -> bool {
        self.pending.len() >= FLUSH_ENTRIES * ENTRY_SIZE
    }

    /// Writes the queued entries (no fsync). On failure they stay queued.
    pub fn flush(&mut self, io: &dyn crate::io::AppendIo) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        io.write_all_at(&self.file, &self.pending, self.entries * ENTRY_SIZE as u64)
            .map_err(io_error(&self.path))?;
        self.entries += (self.pending.len() / ENTRY_SIZE) as u64;
        self.pending.clear();
        Ok(())
    }

    /// Makes the written entries durable.
    pub fn sync(&self) -> Result<()> {
        self.file.sync_data().map_err(io_error(&self.path))
    }
}

fn sync_dir(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u32) -> Entry {
        Entry {
            file: n / 3,
            offset: u64::from(n) * 1000,
            body_len: 900 + n,
            body_crc: n.wrapping_mul(0x9e37_79b9),
        }
    }

    #[test]
    fn entries_round_trip_and_detect_damage() {
        let e = entry(5);
        let bytes = e.encode();
        assert_eq!(Entry::decode(&bytes), Some(e));
        for i in 0..ENTRY_SIZE {
            let mut bad = bytes;
            bad[i] ^= 0x10;
            assert_eq!(Entry::decode(&bad), None, "byte {i}");
        }
        assert_eq!(Entry::decode(&bytes[..20]), None);
    }

    #[test]
    fn open_rewrites_untrusted_tail_and_load_stops_at_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = checksums_path(dir.path(), "ch");
        assert!(load(&path).unwrap().is_empty());
        let entries: Vec<Entry> = (0..6).map(entry).collect();
        let mut file = ChecksumFile::open(&path, &entries[..4], 0).unwrap();
        file.append(&entries[4..]);
        assert_eq!(load(&path).unwrap(), entries[..4]);
        file.flush(&crate::io::OsIo).unwrap();
        drop(file);
        assert_eq!(load(&path).unwrap(), entries);

        // Damage entry 2 and leave a partial entry at the end.
        let mut bytes = fs::read(&path).unwrap();
        bytes[2 * ENTRY_SIZE + 3] ^= 1;
        bytes.extend_from_slice(&[7; 5]);
        fs::write(&path, &bytes).unwrap();
        assert_eq!(load(&path).unwrap(), entries[..2]);

        ChecksumFile::open(&path, &entries, 2).unwrap();
        assert_eq!(load(&path).unwrap(), entries);
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            (entries.len() * ENTRY_SIZE) as u64
        );
    }
}
