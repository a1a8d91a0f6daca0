//! The single writer ([`Ledger`]) and its cheap, shareable readers
//! ([`LedgerReader`]).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use fabric_protos::common::Block;
use prost::Message;
use tokio::sync::watch;

use crate::checksums::{self, ChecksumFile, Entry};
use crate::config::LedgerConfig;
use crate::error::{io_error, LedgerError, Result};
use crate::fabric_index::retire_fabric_index;
use crate::hash::header_hash;
use crate::io::{AppendIo, OsIo};
use crate::serialization::{put_uvarint, serialize_block, serialized_len, uvarint_len, BlockView};
use crate::walk::{block_file_name, list_block_files, walk, TornTail};

/// Longest channel id Fabric accepts.
pub const CHANNEL_ID_LEN_MAX: usize = 249;

/// The directory holding a channel's block files: `<root>/chains/<channel_id>`.
pub fn channel_dir(root: &Path, channel_id: &str) -> PathBuf {
    root.join("chains").join(channel_id)
}

/// Fabric's channel name rule: `[a-z][a-z0-9.-]*`, at most 249 characters.
/// Also what keeps the id safe as a path component.
fn validate_channel_id(channel_id: &str) -> Result<()> {
    let bytes = channel_id.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= CHANNEL_ID_LEN_MAX
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(LedgerError::InvalidChannelId(channel_id.to_owned()))
    }
}

/// The in-memory index, rebuilt by the walk on open.
#[derive(Debug)]
struct Index {
    /// `locations[n]` is block `n`; the length is the height.
    locations: Vec<Entry>,
    /// `files[suffix]`: one handle per block file, shared with the writer.
    files: Vec<Arc<File>>,
}

/// State shared by the writer and all readers.
#[derive(Debug)]
struct Shared {
    channel_id: String,
    /// The ledger root (`FileLedger.Location`).
    root: PathBuf,
    dir: PathBuf,
    /// Held only for short, non-async critical sections (copying an
    /// `Entry`, or publishing a committed append).
    index: RwLock<Index>,
    /// Kept only to hand out clones; the writer holds the sender, so waiting
    /// readers learn when the writer is dropped.
    height_rx: watch::Receiver<u64>,
}

impl Shared {
    fn file_path(&self, suffix: u32) -> PathBuf {
        self.dir.join(block_file_name(suffix))
    }
}

/// Failure injection for the write path (tests only).
#[cfg(test)]
#[derive(Debug, Clone, Copy)]
pub(crate) enum FailPoint {
    /// Write the first `after_bytes` bytes of the next segment, then fail.
    Write { after_bytes: usize },
    /// Write the whole next segment, then fail its fsync.
    Sync,
}

/// A channel's block ledger: the single writer.
///
/// Owned by the one task that appends blocks (the chain). Readers get a
/// [`LedgerReader`] from [`Ledger::reader`]. Every method does blocking file
/// I/O; `append` includes an fsync.
pub struct Ledger {
    shared: Arc<Shared>,
    config: LedgerConfig,
    /// The last block file, the one appends go to.
    current_file: Arc<File>,
    current_suffix: u32,
    /// Length of the clean prefix of `current_file` (= its length on disk).
    current_len: u64,
    height: u64,
    /// Header hash of block `height - 1`.
    last_hash: Option<[u8; 32]>,
    height_tx: watch::Sender<u64>,
    /// Set when a failed append could not be rolled back; the next append
    /// first tries [`Ledger::repair`] again.
    poisoned: bool,
    /// Where appends write and sync (the OS, or a fault injector in tests).
    io: Arc<dyn AppendIo>,
    /// The checksum file; `None` after a write to it failed (the next open
    /// rebuilds the missing entries from the block files).
    checksums: Option<ChecksumFile>,
    /// Whether Fabric's `index/` was already set aside by this writer.
    fabric_index_retired: bool,
    /// Test-only: fail the segment write after skipping this many.
    #[cfg(test)]
    fail_point: Option<(usize, FailPoint)>,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("channel_id", &self.shared.channel_id)
            .field("height", &self.height)
            .field("current_suffix", &self.current_suffix)
            .field("current_len", &self.current_len)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        if let Some(checksums) = self.checksums.as_mut() {
            let io = Arc::clone(&self.io);
            if let Err(error) = checksums.flush(io.as_ref()).and_then(|()| checksums.sync()) {
                tracing::warn!(%error, "could not sync the block checksum file");
            }
        }
    }
}

/// Records of one append that go to one file.
#[derive(Debug)]
struct Segment {
    suffix: u32,
    /// The file does not exist yet.
    create: bool,
    /// File length before this append.
    start_len: u64,
    /// The records, written at `start_len`.
    bytes: Vec<u8>,
    locations: Vec<Entry>,
}

impl Segment {
    fn end(&self) -> u64 {
        self.start_len + self.bytes.len() as u64
    }

    fn new_file(suffix: u32) -> Segment {
        Segment {
            suffix,
            create: true,
            start_len: 0,
            bytes: Vec::new(),
            locations: Vec::new(),
        }
    }

    /// Appends the record of `block` (already checked) and its location.
    fn push(&mut self, block: &Block, body_len: usize) {
        let offset = self.end();
        put_uvarint(&mut self.bytes, body_len as u64);
        let body_start = self.bytes.len();
        serialize_block(block, &mut self.bytes);
        let body = &self.bytes[body_start..];
        assert_eq!(body.len(), body_len);
        self.locations.push(Entry {
            file: self.suffix,
            offset,
            body_len: body_len as u32,
            body_crc: crc32c::crc32c(body),
        });
    }
}

fn sync_dir(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(io_error(path))
}

/// Creates the channel directory (and an empty first block file, as Fabric
/// does) when missing, and makes the entries durable.
fn create_channel_dir(root: &Path, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    if list_block_files(dir)?.is_empty() {
        let path = dir.join(block_file_name(0));
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_error(&path))?;
    }
    sync_dir(dir)?;
    sync_dir(&root.join("chains"))?;
    sync_dir(root)
}

/// Removes a torn tail found by the walk (the only truncation `open` does).
fn truncate_torn_tail(channel_id: &str, torn: &TornTail) -> Result<()> {
    tracing::warn!(
        channel = channel_id,
        file = %torn.file.display(),
        offset = torn.offset,
        dropped_bytes = torn.bytes,
        defect = %torn.defect,
        "truncating the partial last record of the ledger (an append interrupted by a crash)"
    );
    OpenOptions::new()
        .write(true)
        .open(&torn.file)
        .and_then(|file| file.set_len(torn.offset).and_then(|()| file.sync_all()))
        .map_err(io_error(&torn.file))
}

/// Opens every block file; the last one also for writing.
fn open_block_files(dir: &Path, suffixes: &[u32]) -> Result<Vec<Arc<File>>> {
    suffixes
        .iter()
        .map(|&suffix| {
            let path = dir.join(block_file_name(suffix));
            let is_last = suffix as usize + 1 == suffixes.len();
            OpenOptions::new()
                .read(true)
                .write(is_last)
                .open(&path)
                .map(Arc::new)
                .map_err(io_error(&path))
        })
        .collect()
}

impl Ledger {
    /// Opens (creating if needed) the ledger of `channel_id` under `root`
    /// with [`LedgerConfig::DEFAULT`]. See [`Ledger::open_with_config`].
    pub fn open(root: impl AsRef<Path>, channel_id: &str) -> Result<Ledger> {
        Ledger::open_with_config(root, channel_id, LedgerConfig::DEFAULT)
    }

    /// Opens (creating if needed) the ledger in `<root>/chains/<channel_id>`.
    ///
    /// First walks every block file read-only (see `walk`): records split
    /// and decode as Fabric's serialization, blocks numbered from 0 across
    /// the files, each `previous_hash` the header hash of the block before,
    /// each block's bytes equal to the checksum file's entry, and for blocks
    /// the checksum file does not know yet (written by Fabric, or by a crash
    /// before the entry) the data hash. Any problem fails with
    /// [`LedgerError::Corrupt`] and nothing on disk is changed.
    ///
    /// Only then: a partial last record of the last file that starts like
    /// the expected block and that the checksum file does not know (an
    /// append interrupted by a crash) is truncated with a warning, and the
    /// checksum file is completed.
    pub fn open_with_config(
        root: impl AsRef<Path>,
        channel_id: &str,
        config: LedgerConfig,
    ) -> Result<Ledger> {
        let config = config.validate()?;
        validate_channel_id(channel_id)?;
        let root = root.as_ref();
        let dir = channel_dir(root, channel_id);
        create_channel_dir(root, &dir)?;

        let checksums_path = checksums::checksums_path(root, channel_id);
        let recorded = checksums::load(&checksums_path)?;
        let walk = walk(&dir, &config, &recorded, &checksums_path, false, None)?;
        if let Some(torn) = &walk.torn {
            truncate_torn_tail(channel_id, torn)?;
        }
        let checksum_file = ChecksumFile::open(&checksums_path, &walk.entries, walk.trusted)?;
        let files = open_block_files(&dir, &walk.suffixes)?;

        let height = walk.entries.len() as u64;
        let current_suffix = *walk.suffixes.last().expect("at least one block file");
        let current_file = Arc::clone(files.last().expect("at least one block file"));
        assert_eq!(height == 0, walk.last_hash.is_none());
        tracing::info!(
            channel = channel_id,
            height,
            files = files.len(),
            "opened ledger"
        );

        let (height_tx, height_rx) = watch::channel(height);
        let shared = Arc::new(Shared {
            channel_id: channel_id.to_owned(),
            root: root.to_owned(),
            dir,
            index: RwLock::new(Index {
                locations: walk.entries,
                files,
            }),
            height_rx,
        });
        Ok(Ledger {
            shared,
            config,
            current_file,
            current_suffix,
            current_len: walk.last_len,
            height,
            last_hash: walk.last_hash,
            height_tx,
            poisoned: false,
            io: Arc::new(OsIo),
            checksums: Some(checksum_file),
            fabric_index_retired: false,
            #[cfg(test)]
            fail_point: None,
        })
    }

    /// A reader sharing this ledger's index and files.
    pub fn reader(&self) -> LedgerReader {
        LedgerReader {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Number of blocks; the next block's number.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// Header hash of the last block (the `previous_hash` the next block
    /// must carry), `None` while the ledger is empty.
    pub fn last_header_hash(&self) -> Option<[u8; 32]> {
        self.last_hash
    }

    /// The channel this ledger belongs to.
    pub fn channel_id(&self) -> &str {
        &self.shared.channel_id
    }

    /// The directory holding the block files.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The limits this ledger was opened with.
    pub fn config(&self) -> &LedgerConfig {
        &self.config
    }

    /// Appends one block. See [`Ledger::append_batch`].
    pub fn append(&mut self, block: &Block) -> Result<u64> {
        self.append_batch(std::slice::from_ref(block))
    }

    /// Appends blocks in order with one fsync per file touched, and returns
    /// the new height.
    ///
    /// Every block is checked before anything is written: block `i` must
    /// have number `height + i`, carry the header hash of the block before
    /// it as `previous_hash` (empty for block 0) and the SHA-256 of its
    /// data as `data_hash`; its serialization must fit `block_size_max`.
    /// Records go to the current block file until one would push it past
    /// `file_size_max`, then to a new file (Fabric's rule, `addBlock`: even
    /// when the current file is empty). Then the records are written, the
    /// file synced (and the directory, when a new file is started), and
    /// only then are the blocks published to readers and the height sent on
    /// the watch channel. Readers never see a block that is not durable.
    /// Their checksums are then queued for the checksum file (written in
    /// batches, see `checksums`).
    ///
    /// Before the first append of this writer, Fabric's `index/` is moved
    /// aside when the root has one ([`crate::retire_fabric_index`]).
    ///
    /// If writing or syncing fails, the files are restored to their length
    /// before the call (files created by the call are removed), the error is
    /// returned and the ledger stays usable: the same blocks can be appended
    /// again once the cause (a full disk) is gone. If that rollback itself
    /// fails the writer is poisoned: the next call first retries the
    /// rollback ([`Ledger::repair`]) and fails with its error (an
    /// [`LedgerError::Io`] naming the file) while that still fails. Reads
    /// work throughout and never see a partial record.
    pub fn append_batch(&mut self, blocks: &[Block]) -> Result<u64> {
        if self.poisoned {
            self.repair()?;
        }
        if blocks.len() > self.config.batch_blocks_max {
            return Err(LedgerError::BatchTooLarge {
                count: blocks.len(),
                limit: self.config.batch_blocks_max,
            });
        }
        if blocks.is_empty() {
            return Ok(self.height);
        }
        let (segments, last_hash) = self.encode_batch(blocks)?;
        if !self.fabric_index_retired {
            retire_fabric_index(&self.shared.root)?;
            self.fabric_index_retired = true;
        }

        // Write and sync, segment by segment.
        let mut touched: Vec<(&Segment, Arc<File>)> = Vec::with_capacity(segments.len());
        let mut failure = None;
        for segment in segments.iter().filter(|s| s.create || !s.bytes.is_empty()) {
            if let Err(error) = self.write_segment(segment, &mut touched) {
                failure = Some(error);
                break;
            }
        }
        if let Some(error) = failure {
            tracing::error!(channel = %self.shared.channel_id, %error, "ledger append failed; rolling back");
            self.rollback(&touched);
            return Err(error);
        }
        self.publish(&touched, blocks.len() as u64, last_hash);
        self.record_checksums(&touched);
        Ok(self.height)
    }

    /// Checks every block and encodes the records, split into one segment
    /// per block file. Returns them and the header hash of the last block.
    fn encode_batch(&self, blocks: &[Block]) -> Result<(Vec<Segment>, Option<[u8; 32]>)> {
        let mut last_hash = self.last_hash;
        let mut segments = vec![Segment {
            suffix: self.current_suffix,
            create: false,
            start_len: self.current_len,
            bytes: Vec::new(),
            locations: Vec::new(),
        }];
        for (i, block) in blocks.iter().enumerate() {
            let expected = self.height + i as u64;
            let header = self.check_block(block, expected, last_hash)?;
            let body_len = serialized_len(block);
            if body_len > self.config.block_size_max as usize {
                return Err(LedgerError::BlockTooLarge {
                    number: expected,
                    size: body_len as u64,
                    limit: self.config.block_size_max,
                });
            }
            let record_len = (uvarint_len(body_len as u64) + body_len) as u64;
            let segment = segments.last().expect("at least one segment");
            if segment.end() + record_len > self.config.file_size_max {
                let suffix = segment
                    .suffix
                    .checked_add(1)
                    .expect("block file suffix overflow");
                segments.push(Segment::new_file(suffix));
            }
            segments
                .last_mut()
                .expect("at least one segment")
                .push(block, body_len);
            last_hash = Some(header_hash(header));
        }
        Ok((segments, last_hash))
    }

    /// Checks that `block` can follow a block whose header hash is
    /// `last_hash` as block `expected`; returns its header.
    fn check_block<'b>(
        &self,
        block: &'b Block,
        expected: u64,
        last_hash: Option<[u8; 32]>,
    ) -> Result<&'b fabric_protos::common::BlockHeader> {
        let header = block.header.as_ref().ok_or(LedgerError::MissingHeader)?;
        if header.number != expected {
            return Err(LedgerError::WrongNumber {
                expected,
                got: header.number,
            });
        }
        // Block 0 must have an empty previous_hash, as Fabric's `addBlock`
        // requires (its current hash is empty then).
        let previous: &[u8] = last_hash.as_ref().map_or(&[], |h| h.as_slice());
        if header.previous_hash != previous {
            return Err(LedgerError::WrongPreviousHash { number: expected });
        }
        let data: &[Vec<u8>] = block.data.as_ref().map_or(&[], |d| &d.data);
        if fabric_common::block::data_hash(data) != header.data_hash {
            return Err(LedgerError::WrongDataHash { number: expected });
        }
        Ok(header)
    }

    /// Makes written blocks visible: index first, then the height.
    fn publish(
        &mut self,
        touched: &[(&Segment, Arc<File>)],
        count: u64,
        last_hash: Option<[u8; 32]>,
    ) {
        let (last_segment, last_file) = touched.last().expect("a non-empty batch writes");
        let new_height = self.height + count;
        {
            let mut index = self
                .shared
                .index
                .write()
                .expect("ledger index lock poisoned");
            assert_eq!(index.locations.len() as u64, self.height);
            assert_eq!(index.files.len(), self.current_suffix as usize + 1);
            for (segment, file) in touched {
                if segment.create {
                    assert_eq!(index.files.len(), segment.suffix as usize);
                    index.files.push(Arc::clone(file));
                }
                index.locations.extend_from_slice(&segment.locations);
            }
            assert_eq!(index.locations.len() as u64, new_height);
        }
        self.height = new_height;
        self.last_hash = last_hash;
        self.current_suffix = last_segment.suffix;
        self.current_len = last_segment.end();
        self.current_file = Arc::clone(last_file);
        self.height_tx.send_replace(new_height);
    }

    /// Queues the checksums of durable blocks; writes them when enough are
    /// queued, and writes and syncs them when a block file was started. A
    /// failure only loses checksums (the next open rebuilds them).
    fn record_checksums(&mut self, touched: &[(&Segment, Arc<File>)]) {
        let Some(checksums) = self.checksums.as_mut() else {
            return;
        };
        for (segment, _) in touched {
            checksums.append(&segment.locations);
        }
        let started_file = touched.iter().any(|(segment, _)| segment.create);
        let result = if started_file {
            checksums
                .flush(self.io.as_ref())
                .and_then(|()| checksums.sync())
        } else if checksums.flush_due() {
            checksums.flush(self.io.as_ref())
        } else {
            Ok(())
        };
        if let Err(error) = result {
            tracing::error!(
                channel = %self.shared.channel_id,
                %error,
                "could not write block checksums; the next open rebuilds them from the block files"
            );
            self.checksums = None;
        }
    }

    /// Creates the segment's file if needed (recording it in `touched`
    /// before anything can fail), writes the records and syncs.
    fn write_segment<'s>(
        &mut self,
        segment: &'s Segment,
        touched: &mut Vec<(&'s Segment, Arc<File>)>,
    ) -> Result<()> {
        let path = self.shared.file_path(segment.suffix);
        let file = if segment.create {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(io_error(&path))?;
            let file = Arc::new(file);
            touched.push((segment, Arc::clone(&file)));
            sync_dir(&self.shared.dir)?;
            tracing::debug!(channel = %self.shared.channel_id, file = %path.display(), "started block file");
            file
        } else {
            assert_eq!(segment.suffix, self.current_suffix);
            assert_eq!(segment.start_len, self.current_len);
            let file = Arc::clone(&self.current_file);
            touched.push((segment, Arc::clone(&file)));
            file
        };
        if segment.bytes.is_empty() {
            // Fabric's roll-over can leave a new file empty.
            return Ok(());
        }
        self.write_and_sync(&file, segment).map_err(io_error(&path))
    }

    fn write_and_sync(&mut self, file: &File, segment: &Segment) -> io::Result<()> {
        #[cfg(test)]
        if let Some((skip, fail_point)) = self.fail_point.take() {
            if skip > 0 {
                self.fail_point = Some((skip - 1, fail_point));
                file.write_all_at(&segment.bytes, segment.start_len)?;
                return file.sync_data();
            }
            match fail_point {
                FailPoint::Write { after_bytes } => {
                    let partial = &segment.bytes[..after_bytes.min(segment.bytes.len())];
                    file.write_all_at(partial, segment.start_len)?;
                    return Err(io::Error::other("injected write failure"));
                }
                FailPoint::Sync => {
                    file.write_all_at(&segment.bytes, segment.start_len)?;
                    return Err(io::Error::other("injected sync failure"));
                }
            }
        }
        self.io
            .write_all_at(file, &segment.bytes, segment.start_len)?;
        self.io.sync_data(file)
    }

    /// Restores the files to the state the index describes: truncates the
    /// current block file to the end of its last complete record and removes
    /// block files after it (left by an append whose rollback failed).
    /// Clears the poisoned flag on success. Called by `append_batch` when
    /// poisoned; harmless when not.
    pub fn repair(&mut self) -> Result<()> {
        let path = self.shared.file_path(self.current_suffix);
        self.current_file
            .set_len(self.current_len)
            .and_then(|()| self.current_file.sync_data())
            .map_err(io_error(&path))?;
        let mut removed = false;
        let mut suffix = self.current_suffix;
        while let Some(next) = suffix.checked_add(1) {
            suffix = next;
            let path = self.shared.file_path(suffix);
            match fs::remove_file(&path) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) => return Err(io_error(&path)(e)),
            }
        }
        if removed {
            sync_dir(&self.shared.dir)?;
        }
        if self.poisoned {
            tracing::info!(channel = %self.shared.channel_id, height = self.height, "ledger writer repaired");
        }
        self.poisoned = false;
        Ok(())
    }

    /// Replaces the write/sync layer of appends (tests inject a
    /// [`crate::FaultyIo`] to act like a full or failing disk).
    pub fn set_append_io(&mut self, io: Arc<dyn AppendIo>) {
        self.io = io;
    }

    /// Undoes a failed append: truncates the file that existed back to its
    /// old length and removes files this append created. Poisons the writer
    /// if any step fails.
    fn rollback(&mut self, touched: &[(&Segment, Arc<File>)]) {
        for (segment, file) in touched.iter().rev() {
            let path = self.shared.file_path(segment.suffix);
            let undone = if segment.create {
                fs::remove_file(&path)
                    .map_err(io_error(&path))
                    .and_then(|()| sync_dir(&self.shared.dir))
            } else {
                file.set_len(segment.start_len)
                    .and_then(|()| file.sync_data())
                    .map_err(io_error(&path))
            };
            if let Err(error) = undone {
                tracing::error!(
                    channel = %self.shared.channel_id,
                    %error,
                    "ledger rollback failed; refusing further appends"
                );
                self.poisoned = true;
                return;
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn set_fail_point(&mut self, skip_segments: usize, fail_point: FailPoint) {
        self.fail_point = Some((skip_segments, fail_point));
    }
}

/// A reader of a channel's ledger: cheap to clone (one `Arc`), `Send` and
/// `Sync`. Reads never see a block before its append has been fsynced.
///
/// `get`, `get_raw` and `last_block` do blocking positional reads (`pread`);
/// the index lock is held only to copy a location, never across I/O or an
/// `.await`.
#[derive(Clone)]
pub struct LedgerReader {
    shared: Arc<Shared>,
}

impl fmt::Debug for LedgerReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LedgerReader")
            .field("channel_id", &self.shared.channel_id)
            .field("height", &self.height())
            .finish()
    }
}

impl LedgerReader {
    /// The channel this ledger belongs to.
    pub fn channel_id(&self) -> &str {
        &self.shared.channel_id
    }

    /// Number of durable blocks.
    pub fn height(&self) -> u64 {
        let index = self
            .shared
            .index
            .read()
            .expect("ledger index lock poisoned");
        index.locations.len() as u64
    }

    /// The protobuf encoding of block `number`: what Fabric's orderer
    /// serves for the same stored bytes (header, data and metadata always
    /// present). The record is checked against its checksum on every read.
    pub fn get_raw(&self, number: u64) -> Result<Vec<u8>> {
        self.get(number).map(|block| block.encode_to_vec())
    }

    /// Block `number`, decoded from Fabric's serialization.
    pub fn get(&self, number: u64) -> Result<Block> {
        let (body, location) = self.read_body(number)?;
        let view = BlockView::parse(&body).map_err(|e| LedgerError::Corrupt {
            file: self.shared.file_path(location.file),
            offset: location.offset,
            reason: format!("block {number} does not decode: {e}"),
        })?;
        Ok(view.to_block())
    }

    /// Reads the record body of block `number` and checks it against the
    /// checksum taken when it was written (or verified); returns it and
    /// where it was.
    fn read_body(&self, number: u64) -> Result<(Vec<u8>, Entry)> {
        let (location, file) = {
            let index = self
                .shared
                .index
                .read()
                .expect("ledger index lock poisoned");
            let height = index.locations.len() as u64;
            let location = usize::try_from(number)
                .ok()
                .and_then(|n| index.locations.get(n))
                .copied()
                .ok_or(LedgerError::NotFound { number, height })?;
            (location, Arc::clone(&index.files[location.file as usize]))
        };
        let path = self.shared.file_path(location.file);
        let mut body = vec![0u8; location.body_len as usize];
        file.read_exact_at(&mut body, location.body_offset())
            .map_err(io_error(&path))?;
        let crc = crc32c::crc32c(&body);
        if crc != location.body_crc {
            return Err(LedgerError::Corrupt {
                file: path,
                offset: location.offset,
                reason: format!(
                    "block {number}: crc32c {crc:08x} of the stored bytes is not the {:08x} taken when \
                     they were written or verified (bit rot?)",
                    location.body_crc
                ),
            });
        }
        Ok((body, location))
    }

    /// The last block, `None` while the ledger is empty.
    pub fn last_block(&self) -> Result<Option<Block>> {
        match self.height() {
            0 => Ok(None),
            height => self.get(height - 1).map(Some),
        }
    }

    /// A receiver of the height, updated after each durable append. The
    /// current value is marked seen, so `changed()` waits for the next one.
    /// It reports closed once the [`Ledger`] writer is dropped.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        let mut rx = self.shared.height_rx.clone();
        rx.borrow_and_update();
        rx
    }

    /// Waits until the height is at least `height`; returns the height seen.
    /// Fails with [`LedgerError::Closed`] if the writer is dropped first.
    pub async fn wait_for_height(&self, height: u64) -> Result<u64> {
        let mut rx = self.subscribe();
        let seen = rx
            .wait_for(|&h| h >= height)
            .await
            .map_err(|_| LedgerError::Closed)?;
        Ok(*seen)
    }
}

#[cfg(test)]
mod tests;
