//! The single writer ([`Ledger`]) and its cheap, shareable readers
//! ([`LedgerReader`]).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use fabric_protos::common::{Block, BlockHeader};
use prost::Message;
use tokio::sync::watch;

use crate::config::LedgerConfig;
use crate::error::{io_error, LedgerError, Result};
use crate::hash::header_hash;
use crate::io::{AppendIo, OsIo};
use crate::record::{
    encode_record, scan_source, RecordDefect, RecordHeader, RecordSource, ScanStop,
    RECORD_HEADER_SIZE,
};

/// Prefix of block file names (Fabric's `blockfilePrefix`).
pub const BLOCK_FILE_PREFIX: &str = "blockfile_";
/// Longest channel id Fabric accepts.
pub const CHANNEL_ID_LEN_MAX: usize = 249;

/// The name of block file number `suffix`: `blockfile_000000`, … (`%06d`).
pub fn block_file_name(suffix: u32) -> String {
    format!("{BLOCK_FILE_PREFIX}{suffix:06}")
}

/// The directory holding a channel's block files: `<root>/chains/<channel_id>`.
pub fn channel_dir(root: &Path, channel_id: &str) -> PathBuf {
    root.join("chains").join(channel_id)
}

/// The suffix of a canonical block file name, `None` for any other name.
fn parse_block_file_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix(BLOCK_FILE_PREFIX)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let suffix: u32 = digits.parse().ok()?;
    (block_file_name(suffix) == name).then_some(suffix)
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

/// Where a block's record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Location {
    /// Block file suffix.
    file: u32,
    /// Offset of the record header in that file.
    offset: u64,
    /// Length of the record body (the encoded block).
    body_len: u32,
}

/// The in-memory index, rebuilt by scanning on open.
#[derive(Debug)]
struct Index {
    /// `locations[n]` is block `n`; the length is the height.
    locations: Vec<Location>,
    /// `files[suffix]`: one handle per block file, shared with the writer.
    files: Vec<Arc<File>>,
}

/// State shared by the writer and all readers.
#[derive(Debug)]
struct Shared {
    channel_id: String,
    dir: PathBuf,
    /// Held only for short, non-async critical sections (copying a
    /// `Location`, or publishing a committed append).
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

/// A block header decoded without the block's data and metadata: `open`
/// only needs the header of each block to check the chain.
#[derive(Clone, PartialEq, prost::Message)]
struct HeaderOnly {
    #[prost(message, optional, tag = "1")]
    header: Option<BlockHeader>,
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
    locations: Vec<Location>,
}

impl Segment {
    fn end(&self) -> u64 {
        self.start_len + self.bytes.len() as u64
    }
}

/// A block file seen through [`RecordSource`].
struct FileSource<'a> {
    file: &'a File,
    len: u64,
    path: &'a Path,
}

impl RecordSource for FileSource<'_> {
    type Error = LedgerError;

    fn source_len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(io_error(self.path))
    }
}

fn sync_dir(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(io_error(path))
}

/// The suffixes of the block files in `dir`, which must be 0, 1, …, n-1.
fn list_block_files(dir: &Path) -> Result<Vec<u32>> {
    let mut suffixes = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name();
        match name.to_str().and_then(parse_block_file_name) {
            Some(suffix) => suffixes.push(suffix),
            None => tracing::debug!(dir = %dir.display(), name = ?name, "ignoring non-block file"),
        }
    }
    suffixes.sort_unstable();
    for (expected, &suffix) in suffixes.iter().enumerate() {
        if suffix as usize != expected {
            return Err(LedgerError::Corrupt {
                file: dir.join(block_file_name(expected as u32)),
                offset: 0,
                reason: format!("block file missing (found {})", block_file_name(suffix)),
            });
        }
    }
    Ok(suffixes)
}

fn decode_header(body: &[u8]) -> std::result::Result<BlockHeader, String> {
    HeaderOnly::decode(body)
        .map_err(|e| format!("block does not decode: {e}"))?
        .header
        .ok_or_else(|| "block has no header".to_owned())
}

impl Ledger {
    /// Opens (creating if needed) the ledger of `channel_id` under `root`
    /// with [`LedgerConfig::DEFAULT`]. See [`Ledger::open_with_config`].
    pub fn open(root: impl AsRef<Path>, channel_id: &str) -> Result<Ledger> {
        Ledger::open_with_config(root, channel_id, LedgerConfig::DEFAULT)
    }

    /// Opens (creating if needed) the ledger in `<root>/chains/<channel_id>`.
    ///
    /// Scans every block file and checks every record: both checksums,
    /// block numbers consecutive from 0 (record header and block header
    /// agree), and each block's `previous_hash` equal to the header hash of
    /// the block before. Rebuilds the in-memory index from the scan.
    ///
    /// A bad record at the tail of the last file (no valid record header
    /// after it) is what a crash during an append leaves: it is truncated
    /// away with a warning and the ledger opens at the last good block. Any
    /// other damage fails with [`LedgerError::Corrupt`] and changes nothing.
    pub fn open_with_config(
        root: impl AsRef<Path>,
        channel_id: &str,
        config: LedgerConfig,
    ) -> Result<Ledger> {
        let config = config.validate()?;
        validate_channel_id(channel_id)?;
        let root = root.as_ref();
        let dir = channel_dir(root, channel_id);
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        // Make the directory entries themselves durable.
        sync_dir(&dir)?;
        sync_dir(&root.join("chains"))?;
        sync_dir(root)?;

        let mut suffixes = list_block_files(&dir)?;
        if suffixes.is_empty() {
            let path = dir.join(block_file_name(0));
            OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(io_error(&path))?;
            sync_dir(&dir)?;
            suffixes.push(0);
        }

        let mut locations: Vec<Location> = Vec::new();
        let mut files = Vec::with_capacity(suffixes.len());
        let mut last_hash: Option<[u8; 32]> = None;
        let mut current_len = 0;
        for &suffix in &suffixes {
            let is_last = suffix as usize + 1 == suffixes.len();
            let path = dir.join(block_file_name(suffix));
            let file = OpenOptions::new()
                .read(true)
                .write(is_last)
                .open(&path)
                .map_err(io_error(&path))?;
            let file_len = file.metadata().map_err(io_error(&path))?.len();
            let corrupt = |offset: u64, reason: String| LedgerError::Corrupt {
                file: path.clone(),
                offset,
                reason,
            };

            let source = FileSource {
                file: &file,
                len: file_len,
                path: &path,
            };
            let (valid_len, stop) = scan_source(&source, config.block_size_max, |span, body| {
                let expected = locations.len() as u64;
                if span.header.number != expected {
                    return Err(corrupt(
                        span.offset,
                        format!(
                            "record holds block {} where block {expected} was expected",
                            span.header.number
                        ),
                    ));
                }
                let header = decode_header(body).map_err(|reason| corrupt(span.offset, reason))?;
                if header.number != expected {
                    return Err(corrupt(
                        span.offset,
                        format!(
                            "block header number {} in the record of block {expected}",
                            header.number
                        ),
                    ));
                }
                if let Some(previous) = last_hash {
                    if header.previous_hash != previous {
                        return Err(corrupt(
                            span.offset,
                            format!(
                                "block {expected}: previous_hash is not the hash of block {}",
                                expected - 1
                            ),
                        ));
                    }
                }
                last_hash = Some(header_hash(&header));
                locations.push(Location {
                    file: suffix,
                    offset: span.offset,
                    body_len: span.header.body_len,
                });
                Ok(())
            })?;

            match stop {
                ScanStop::Clean => {}
                ScanStop::Corrupt {
                    offset,
                    defect,
                    next_valid_header,
                } => {
                    return Err(corrupt(
                        offset,
                        format!(
                            "{defect}, followed by a valid record at offset {next_valid_header}"
                        ),
                    ));
                }
                ScanStop::TornTail { offset, defect } => {
                    if !is_last {
                        return Err(corrupt(
                            offset,
                            format!("{defect} in a block file that is not the last"),
                        ));
                    }
                    if let RecordDefect::BodyTooLarge { .. } = defect {
                        // An intact header is never the product of a torn
                        // write: the limit was lowered below a stored block.
                        return Err(corrupt(
                            offset,
                            format!("{defect} (block_size_max lowered?)"),
                        ));
                    }
                    tracing::warn!(
                        channel = channel_id,
                        file = %path.display(),
                        offset,
                        dropped_bytes = file_len - offset,
                        %defect,
                        "truncating torn tail of the ledger (crash during an append)"
                    );
                    assert_eq!(valid_len, offset);
                    file.set_len(valid_len)
                        .and_then(|()| file.sync_all())
                        .map_err(io_error(&path))?;
                }
            }
            if !is_last && valid_len == 0 {
                return Err(corrupt(
                    0,
                    "empty block file that is not the last".to_owned(),
                ));
            }
            if is_last {
                current_len = valid_len;
            }
            files.push(Arc::new(file));
        }

        let height = locations.len() as u64;
        let current_suffix = *suffixes.last().expect("at least one block file");
        let current_file = Arc::clone(files.last().expect("at least one block file"));
        assert_eq!(files.len(), suffixes.len());
        assert_eq!(height == 0, last_hash.is_none());
        tracing::info!(
            channel = channel_id,
            height,
            files = files.len(),
            "opened ledger"
        );

        let (height_tx, height_rx) = watch::channel(height);
        let shared = Arc::new(Shared {
            channel_id: channel_id.to_owned(),
            dir,
            index: RwLock::new(Index { locations, files }),
            height_rx,
        });
        Ok(Ledger {
            shared,
            config,
            current_file,
            current_suffix,
            current_len,
            height,
            last_hash,
            height_tx,
            poisoned: false,
            io: Arc::new(OsIo),
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
    /// have number `height + i` and carry the header hash of the block
    /// before it as `previous_hash` (not checked for block 0); its encoding
    /// must fit `block_size_max`. Then the records are written, the file
    /// synced (and the directory, when a new file is started), and only
    /// then are the blocks published to readers and the height sent on the
    /// watch channel. Readers never see a block that is not durable.
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

        // Check and encode everything before touching a file.
        let mut last_hash = self.last_hash;
        let mut segments = vec![Segment {
            suffix: self.current_suffix,
            create: false,
            start_len: self.current_len,
            bytes: Vec::new(),
            locations: Vec::new(),
        }];
        for (i, block) in blocks.iter().enumerate() {
            let header = block.header.as_ref().ok_or(LedgerError::MissingHeader)?;
            let expected = self.height + i as u64;
            if header.number != expected {
                return Err(LedgerError::WrongNumber {
                    expected,
                    got: header.number,
                });
            }
            if let Some(previous) = last_hash {
                if header.previous_hash != previous {
                    return Err(LedgerError::WrongPreviousHash { number: expected });
                }
            }
            let body = block.encode_to_vec();
            if body.len() > self.config.block_size_max as usize {
                return Err(LedgerError::BlockTooLarge {
                    number: expected,
                    size: body.len() as u64,
                    limit: self.config.block_size_max,
                });
            }
            let record_len = (RECORD_HEADER_SIZE + body.len()) as u64;
            let segment = segments.last().expect("at least one segment");
            if segment.end() > 0 && segment.end() + record_len > self.config.file_size_max {
                let suffix = segment
                    .suffix
                    .checked_add(1)
                    .expect("block file suffix overflow");
                segments.push(Segment {
                    suffix,
                    create: true,
                    start_len: 0,
                    bytes: Vec::new(),
                    locations: Vec::new(),
                });
            }
            let segment = segments.last_mut().expect("at least one segment");
            segment.locations.push(Location {
                file: segment.suffix,
                offset: segment.end(),
                body_len: body.len() as u32,
            });
            encode_record(expected, &body, &mut segment.bytes);
            last_hash = Some(header_hash(header));
        }

        // Write and sync, segment by segment.
        let mut touched: Vec<(&Segment, Arc<File>)> = Vec::with_capacity(segments.len());
        let mut failure = None;
        for segment in segments.iter().filter(|s| !s.bytes.is_empty()) {
            match self.write_segment(segment, &mut touched) {
                Ok(()) => {}
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        if let Some(error) = failure {
            tracing::error!(channel = %self.shared.channel_id, %error, "ledger append failed; rolling back");
            self.rollback(&touched);
            return Err(error);
        }

        // Publish: index first, then the height.
        let (last_segment, last_file) = touched.last().expect("a non-empty batch writes");
        let new_height = self.height + blocks.len() as u64;
        {
            let mut index = self
                .shared
                .index
                .write()
                .expect("ledger index lock poisoned");
            assert_eq!(index.locations.len() as u64, self.height);
            assert_eq!(index.files.len(), self.current_suffix as usize + 1);
            for (segment, file) in &touched {
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
        Ok(new_height)
    }

    /// Creates the segment's file if needed (recording it in `touched`
    /// before anything can fail), writes the records and syncs.
    fn write_segment<'s>(
        &mut self,
        segment: &'s Segment,
        touched: &mut Vec<(&'s Segment, Arc<File>)>,
    ) -> Result<()> {
        assert!(!segment.bytes.is_empty());
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

    /// The stored bytes of block `number`: exactly the protobuf encoding
    /// written by `append`. Both record checksums are checked on every read.
    pub fn get_raw(&self, number: u64) -> Result<Vec<u8>> {
        self.read_body(number).map(|(body, _)| body)
    }

    /// Block `number`, decoded.
    pub fn get(&self, number: u64) -> Result<Block> {
        let (body, location) = self.read_body(number)?;
        Block::decode(body.as_slice()).map_err(|e| LedgerError::Corrupt {
            file: self.shared.file_path(location.file),
            offset: location.offset,
            reason: format!("block {number} does not decode: {e}"),
        })
    }

    /// Reads and checks the record of block `number`; returns its body and
    /// where it was.
    fn read_body(&self, number: u64) -> Result<(Vec<u8>, Location)> {
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
        let corrupt = |reason: String| LedgerError::Corrupt {
            file: path.clone(),
            offset: location.offset,
            reason,
        };

        let mut header_bytes = [0u8; RECORD_HEADER_SIZE];
        file.read_exact_at(&mut header_bytes, location.offset)
            .map_err(io_error(&path))?;
        let header = RecordHeader::decode(&header_bytes, u32::MAX)
            .map_err(|defect| corrupt(defect.to_string()))?;
        if header.number != number || header.body_len != location.body_len {
            return Err(corrupt(format!(
                "record header (block {}, {} bytes) does not match the index (block {number}, {} bytes)",
                header.number, header.body_len, location.body_len
            )));
        }
        let mut body = vec![0u8; header.body_len as usize];
        file.read_exact_at(&mut body, location.offset + RECORD_HEADER_SIZE as u64)
            .map_err(io_error(&path))?;
        if crc32c::crc32c(&body) != header.body_crc {
            return Err(corrupt(RecordDefect::BodyChecksum.to_string()));
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
