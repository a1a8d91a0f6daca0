//! The read-only walk over a channel's block files: every record is split
//! off, decoded and checked (numbering from 0 across files, `previous_hash`
//! chain, data hash, the checksum file). Used by [`crate::Ledger::open`]
//! before it changes anything, and by [`verify_channel`] for an offline
//! check. Orderer signatures are not checked here.

use std::fs::{self, File};

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use fabric_protos::common::Block;

use crate::checksums::{self, Entry};
use crate::config::LedgerConfig;
use crate::error::{io_error, LedgerError, Result};
use crate::hash::header_hash;
use crate::record::{scan_source, RecordDefect, RecordSource, RecordSpan, ScanStop};
use crate::serialization::{check_prefix, plausible_start, BlockView, DecodeError};

/// Prefix of block file names (Fabric's `blockfilePrefix`).
pub const BLOCK_FILE_PREFIX: &str = "blockfile_";

/// The name of block file number `suffix`: `blockfile_000000`, … (`%06d`).
pub fn block_file_name(suffix: u32) -> String {
    format!("{BLOCK_FILE_PREFIX}{suffix:06}")
}

/// The suffix of a canonical block file name, `None` for any other name.
pub(crate) fn parse_block_file_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix(BLOCK_FILE_PREFIX)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let suffix: u32 = digits.parse().ok()?;
    (block_file_name(suffix) == name).then_some(suffix)
}

/// The suffixes of the block files in `dir`, which must be 0, 1, …, n-1.
pub(crate) fn list_block_files(dir: &Path) -> Result<Vec<u32>> {
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

/// A partial last record that an interrupted append can have left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The last block file.
    pub file: PathBuf,
    /// Offset of the partial record: the end of the last complete one.
    pub offset: u64,
    /// Bytes from `offset` to the end of the file.
    pub bytes: u64,
    /// What is missing.
    pub defect: RecordDefect,
}

/// What a successful walk found.
#[derive(Debug)]
pub(crate) struct Walk {
    /// Entry `n` describes block `n`.
    pub entries: Vec<Entry>,
    /// Entries that matched the checksum file (the rest were verified by
    /// data hash and are new).
    pub trusted: usize,
    /// Header hash of the last block.
    pub last_hash: Option<[u8; 32]>,
    /// Block file suffixes, 0..n.
    pub suffixes: Vec<u32>,
    /// Length of the clean prefix of the last file.
    pub last_len: u64,
    /// A partial last record, if any (not yet removed).
    pub torn: Option<TornTail>,
}

/// A block file seen through [`RecordSource`].
pub(crate) struct FileSource<'a> {
    pub file: &'a File,
    pub len: u64,
    pub path: &'a Path,
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

/// A check of each block by the caller of [`verify_channel_blocks`] (the
/// orderer's signature check): called in chain order after the block passed
/// the walk's own checks; an `Err` is reported at the block's record.
pub type BlockVisitor<'v> = dyn FnMut(&Block) -> std::result::Result<(), String> + 'v;

/// State carried from record to record.
struct Walker<'a, 'v> {
    checksums: &'a [Entry],
    checksums_path: &'a Path,
    /// Check data hashes of blocks the checksum file vouches for too.
    full: bool,
    entries: Vec<Entry>,
    last_hash: Option<[u8; 32]>,
    visit: Option<&'a mut BlockVisitor<'v>>,
}

fn corrupt(path: &Path, offset: u64, reason: String) -> LedgerError {
    LedgerError::Corrupt {
        file: path.to_owned(),
        offset,
        reason,
    }
}

impl Walker<'_, '_> {
    fn height(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Checks one complete record holding, by position, the next block.
    fn check_record(
        &mut self,
        path: &Path,
        suffix: u32,
        span: RecordSpan,
        body: &[u8],
    ) -> Result<()> {
        let n = self.height();
        let entry = Entry {
            file: suffix,
            offset: span.offset,
            body_len: span.body_len,
            body_crc: crc32c::crc32c(body),
        };
        let recorded = self.checksums.get(self.entries.len());
        if let Some(recorded) = recorded {
            if *recorded != entry {
                return Err(corrupt(path, span.offset, format!(
                    "block {n}: the record (file {}, offset {}, {} bytes, crc32c {:08x}) does not match \
                     what {} recorded when it was written (file {}, offset {}, {} bytes, crc32c {:08x}): \
                     the block bytes changed (bit rot?) or the block files were replaced; if they were \
                     replaced on purpose, move {} aside to have the checksums rebuilt",
                    entry.file, entry.offset, entry.body_len, entry.body_crc,
                    self.checksums_path.display(), recorded.file, recorded.offset, recorded.body_len,
                    recorded.body_crc, self.checksums_path.display()
                )));
            }
        }
        let view = BlockView::parse(body).map_err(|e| {
            corrupt(
                path,
                span.offset,
                format!("record of block {n} is not a Fabric block serialization: {e}"),
            )
        })?;
        self.check_block(path, span.offset, &view, recorded.is_none() || self.full)?;
        if let Some(visit) = self.visit.as_mut() {
            visit(&view.to_block()).map_err(|why| corrupt(path, span.offset, why))?;
        }
        self.last_hash = Some(header_hash(&view.header()));
        self.entries.push(entry);
        Ok(())
    }

    fn check_block(
        &self,
        path: &Path,
        offset: u64,
        view: &BlockView,
        data_hash: bool,
    ) -> Result<()> {
        let n = self.height();
        if view.number != n {
            return Err(corrupt(path, offset, format!(
                "record holds block {} where block {n} was expected (blocks are numbered from 0 across the files)",
                view.number
            )));
        }
        match self.last_hash {
            Some(previous) if view.previous_hash != previous => {
                return Err(corrupt(
                    path,
                    offset,
                    format!(
                        "block {n}: previous_hash is not the header hash of block {}",
                        n - 1
                    ),
                ));
            }
            None if !view.previous_hash.is_empty() => {
                return Err(corrupt(
                    path,
                    offset,
                    "block 0 has a previous_hash".to_owned(),
                ));
            }
            _ => {}
        }
        if data_hash && view.computed_data_hash() != view.data_hash {
            return Err(corrupt(
                path,
                offset,
                format!("block {n}: data_hash is not the SHA-256 of the block's data"),
            ));
        }
        Ok(())
    }

    /// Decides whether the partial record at `offset` of the last file is a
    /// torn append: the checksum file must not know the block, and the bytes
    /// present must start like the block expected there.
    fn check_partial(
        &self,
        source: &FileSource,
        offset: u64,
        defect: RecordDefect,
    ) -> Result<TornTail> {
        let n = self.height();
        let path = source.path;
        if self.checksums.len() as u64 > n {
            return Err(corrupt(path, offset, format!(
                "{defect}: block {n} was complete when it was written ({} records it), so this is lost \
                 data, not an interrupted append",
                self.checksums_path.display()
            )));
        }
        if let RecordDefect::BodyTruncated { body_len, .. } = defect {
            let start = offset + crate::serialization::uvarint_len(body_len) as u64;
            // Less than the declared length, which is within the limit.
            let mut present = vec![0u8; (source.len - start) as usize];
            source.read_exact_at(start, &mut present)?;
            if let Some(why) = not_a_torn_append(&present, body_len, n, self.last_hash.as_ref()) {
                return Err(corrupt(path, offset, format!(
                    "{defect}, but {why}: not an interrupted append (a foreign format, or a damaged \
                     length prefix in front of further data)"
                )));
            }
        }
        Ok(TornTail {
            file: path.to_owned(),
            offset,
            bytes: source.len - offset,
            defect,
        })
    }
}

/// Why `present`, the bytes of a record body cut short, cannot be what an
/// interrupted append of block `n` (after a block with header hash
/// `last_hash`) left; `None` when it can. Such bytes are a strict prefix of
/// one block serialization: they start with the expected number and
/// previous hash, and parsing them runs out of bytes. A complete block
/// followed by more bytes (a damaged length prefix that swallowed the
/// records after it) or malformed bytes are not.
fn not_a_torn_append(
    present: &[u8],
    declared_len: u64,
    n: u64,
    last_hash: Option<&[u8; 32]>,
) -> Option<String> {
    // Block 0 has an empty previous_hash (Fabric's `addBlock` requires it).
    let previous: &[u8] = last_hash.map_or(&[], |h| h.as_slice());
    if !plausible_start(present, n, Some(previous)) {
        return Some(format!("its bytes do not start like block {n}"));
    }
    match check_prefix(present, declared_len) {
        Ok(()) => None,
        Err(DecodeError::TrailingBytes(more)) => Some(format!(
            "its bytes hold a complete block followed by {more} more bytes"
        )),
        Err(e) => Some(format!("its bytes are malformed ({e})")),
    }
}

/// Walks every block file of the channel directory `dir`, read-only.
pub(crate) fn walk(
    dir: &Path,
    config: &LedgerConfig,
    checksums: &[Entry],
    checksums_path: &Path,
    full: bool,
    visit: Option<&mut BlockVisitor>,
) -> Result<Walk> {
    let suffixes = list_block_files(dir)?;
    let mut walker = Walker {
        checksums,
        checksums_path,
        full,
        entries: Vec::new(),
        last_hash: None,
        visit,
    };
    let mut last_len = 0;
    let mut torn = None;
    for &suffix in &suffixes {
        let is_last = suffix as usize + 1 == suffixes.len();
        let path = dir.join(block_file_name(suffix));
        let file = File::open(&path).map_err(io_error(&path))?;
        let len = file.metadata().map_err(io_error(&path))?.len();
        let source = FileSource {
            file: &file,
            len,
            path: &path,
        };
        let (valid_len, stop) = scan_source(&source, config.block_size_max, |span, body| {
            walker.check_record(&path, suffix, span, body)
        })?;
        match stop {
            ScanStop::Clean => {}
            ScanStop::Partial { offset, defect } if is_last => {
                torn = Some(walker.check_partial(&source, offset, defect)?);
            }
            ScanStop::Partial { offset, defect } => {
                return Err(corrupt(
                    &path,
                    offset,
                    format!("{defect} in a block file that is not the last"),
                ));
            }
            ScanStop::Malformed { offset, defect } => {
                let hint = match defect {
                    RecordDefect::LengthOverLimit { .. } => {
                        " (block_size_max lowered, or not a Fabric block file)"
                    }
                    _ => " (not a Fabric block file, or damaged)",
                };
                return Err(corrupt(&path, offset, format!("{defect}{hint}")));
            }
        }
        last_len = valid_len;
    }
    let height = walker.entries.len();
    if checksums.len() > height {
        let last = dir.join(block_file_name(*suffixes.last().unwrap_or(&0)));
        return Err(corrupt(
            &last,
            last_len,
            format!(
            "{} records {} blocks but the block files hold {height}: blocks were lost or the files \
             replaced by older ones",
            checksums_path.display(),
            checksums.len()
        ),
        ));
    }
    Ok(Walk {
        trusted: checksums.len(),
        entries: walker.entries,
        last_hash: walker.last_hash,
        suffixes,
        last_len,
        torn,
    })
}

/// What [`verify_channel`] found in a channel that passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelReport {
    /// Number of blocks.
    pub height: u64,
    /// Number of block files.
    pub files: usize,
    /// Blocks whose bytes were compared with the checksum file.
    pub checksummed: u64,
    /// A partial last record that opening the ledger would remove.
    pub torn_tail: Option<TornTail>,
}

/// Checks a channel's block files without changing anything (for an
/// offline `verify` command): records split and decode, blocks numbered
/// from 0 without gaps across the files, each `previous_hash` is the header
/// hash of the block before, each `data_hash` matches the data, and the
/// bytes match the checksum file where it has entries. Signatures are not
/// checked. The first problem is returned as [`LedgerError::Corrupt`] with
/// the file and the offset of the record.
pub fn verify_channel(
    root: &Path,
    channel_id: &str,
    config: &LedgerConfig,
) -> Result<ChannelReport> {
    verify_channel_blocks(root, channel_id, config, &mut |_| Ok(()))
}

/// [`verify_channel`], and `visit` called on every block in chain order
/// (after the block passed the checks above), so that a caller can check
/// what needs the channel config, such as orderer signatures, in the same
/// single pass; its first `Err` is reported like the walk's own problems.
pub fn verify_channel_blocks(
    root: &Path,
    channel_id: &str,
    config: &LedgerConfig,
    visit: &mut BlockVisitor,
) -> Result<ChannelReport> {
    let dir = crate::ledger::channel_dir(root, channel_id);
    let checksums_path = checksums::checksums_path(root, channel_id);
    let recorded = checksums::load(&checksums_path)?;
    let walk = walk(&dir, config, &recorded, &checksums_path, true, Some(visit))?;
    Ok(ChannelReport {
        height: walk.entries.len() as u64,
        files: walk.suffixes.len(),
        checksummed: walk.trusted as u64,
        torn_tail: walk.torn,
    })
}
