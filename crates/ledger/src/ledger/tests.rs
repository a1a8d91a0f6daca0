use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fabric_protos::common::{BlockData, BlockHeader, BlockMetadata};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::*;
use crate::record::{scan_records, ScanStop};
use crate::walk::{list_block_files, parse_block_file_name, verify_channel};

const CHANNEL: &str = "testchannel";

fn small(file_size_max: u64) -> LedgerConfig {
    LedgerConfig {
        file_size_max,
        ..LedgerConfig::DEFAULT
    }
}

/// A block with one data entry of `payload_len` bytes.
fn make_block(number: u64, previous_hash: Vec<u8>, payload_len: usize) -> Block {
    let data = vec![vec![(number % 251) as u8; payload_len]];
    Block {
        header: Some(BlockHeader {
            number,
            previous_hash,
            data_hash: Sha256::digest(&data[0]).to_vec(),
        }),
        data: Some(BlockData { data }),
        metadata: Some(BlockMetadata {
            metadata: vec![Vec::new(); 4],
        }),
    }
}

/// `count` linked blocks starting at `start` after a block with hash `prev`.
fn chain_from(start: u64, prev: Option<[u8; 32]>, sizes: &[usize]) -> Vec<Block> {
    let mut prev = prev.map(|h| h.to_vec()).unwrap_or_default();
    let mut blocks = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let block = make_block(start + i as u64, prev, size);
        prev = header_hash(block.header.as_ref().unwrap()).to_vec();
        blocks.push(block);
    }
    blocks
}

fn next_block(ledger: &Ledger, payload_len: usize) -> Block {
    let prev = ledger
        .last_header_hash()
        .map(|h| h.to_vec())
        .unwrap_or_default();
    make_block(ledger.height(), prev, payload_len)
}

fn append_n(ledger: &mut Ledger, n: usize, payload_len: usize) -> Vec<Block> {
    (0..n)
        .map(|_| {
            let block = next_block(ledger, payload_len);
            ledger.append(&block).unwrap();
            block
        })
        .collect()
}

fn block_files(root: &Path) -> Vec<std::path::PathBuf> {
    let dir = channel_dir(root, CHANNEL);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

fn last_file(root: &Path) -> std::path::PathBuf {
    block_files(root).pop().unwrap()
}

/// The record (length prefix and Fabric serialization) of `block`.
fn record_bytes(block: &Block) -> Vec<u8> {
    let mut body = Vec::new();
    serialize_block(block, &mut body);
    let mut out = Vec::new();
    put_uvarint(&mut out, body.len() as u64);
    out.extend_from_slice(&body);
    out
}

fn checksums_file(root: &Path) -> std::path::PathBuf {
    checksums::checksums_path(root, CHANNEL)
}

/// Keeps the first `entries` entries of the checksum file: what a crash
/// after the block fsync and before the checksum write leaves.
fn cut_checksums(root: &Path, entries: usize) {
    let path = checksums_file(root);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..entries * checksums::ENTRY_SIZE]).unwrap();
}

/// Every file under `root` with its bytes, to prove that nothing changed.
fn snapshot(root: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path.clone());
                out.push((path, Vec::new()));
            } else {
                let bytes = fs::read(&path).unwrap();
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

/// Opens with `config`, expects `Corrupt` and an unchanged tree; returns
/// the error's file, offset and reason.
fn expect_refused(root: &Path, config: LedgerConfig) -> (std::path::PathBuf, u64, String) {
    let before = snapshot(root);
    let result = Ledger::open_with_config(root, CHANNEL, config);
    assert_eq!(snapshot(root), before, "open changed the directory");
    match result {
        Err(LedgerError::Corrupt {
            file,
            offset,
            reason,
        }) => (file, offset, reason),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// Checks numbers and the hash chain of everything a reader serves.
fn verify_chain(reader: &LedgerReader) {
    let mut prev: Option<[u8; 32]> = None;
    for n in 0..reader.height() {
        let block = reader.get(n).unwrap();
        let header = block.header.unwrap();
        assert_eq!(header.number, n);
        if let Some(prev) = prev {
            assert_eq!(header.previous_hash, prev);
        }
        prev = Some(header_hash(&header));
    }
}

#[test]
fn round_trip_across_several_files() {
    let root = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open_with_config(root.path(), CHANNEL, small(400)).unwrap();
    assert_eq!(ledger.height(), 0);
    let reader = ledger.reader();
    assert!(reader.last_block().unwrap().is_none());
    assert!(matches!(
        reader.get(0),
        Err(LedgerError::NotFound {
            number: 0,
            height: 0
        })
    ));

    let blocks = append_n(&mut ledger, 20, 100);
    assert_eq!(ledger.height(), 20);
    assert_eq!(reader.height(), 20);
    let files = block_files(root.path());
    assert!(files.len() >= 5, "{files:?}");
    assert!(files[0].ends_with("blockfile_000000"));
    for file in &files {
        assert!(fs::metadata(file).unwrap().len() <= 400);
    }
    for (n, block) in blocks.iter().enumerate() {
        assert_eq!(&reader.get(n as u64).unwrap(), block);
        assert_eq!(reader.get_raw(n as u64).unwrap(), block.encode_to_vec());
    }
    assert_eq!(reader.last_block().unwrap().as_ref(), blocks.last());
    assert!(matches!(
        reader.get(20),
        Err(LedgerError::NotFound { number: 20, .. })
    ));
    verify_chain(&reader);
}

#[test]
fn block_larger_than_file_size_max_gets_its_own_file() {
    let root = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open_with_config(root.path(), CHANNEL, small(200)).unwrap();
    append_n(&mut ledger, 1, 10);
    append_n(&mut ledger, 1, 1000);
    append_n(&mut ledger, 1, 10);
    assert_eq!(block_files(root.path()).len(), 3);
    drop(ledger);
    let ledger = Ledger::open_with_config(root.path(), CHANNEL, small(200)).unwrap();
    assert_eq!(ledger.height(), 3);
    verify_chain(&ledger.reader());
}

#[test]
fn reopen_gives_same_height_and_blocks() {
    let root = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open_with_config(root.path(), CHANNEL, small(1000)).unwrap();
    let blocks = append_n(&mut ledger, 15, 150);
    let hash = ledger.last_header_hash();
    drop(ledger);

    let mut ledger = Ledger::open_with_config(root.path(), CHANNEL, small(1000)).unwrap();
    assert_eq!(ledger.height(), 15);
    assert_eq!(ledger.last_header_hash(), hash);
    let reader = ledger.reader();
    for (n, block) in blocks.iter().enumerate() {
        assert_eq!(&reader.get(n as u64).unwrap(), block);
    }
    // And it keeps going.
    append_n(&mut ledger, 3, 150);
    drop(ledger);
    let ledger = Ledger::open(root.path(), CHANNEL).unwrap();
    assert_eq!(ledger.height(), 18);
    verify_chain(&ledger.reader());
}

/// Truncates the last file at every offset inside its last record; each
/// time the ledger must reopen at height - 1 and accept the block again.
fn torn_tail_at_every_offset(config: LedgerConfig) {
    let root = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open_with_config(root.path(), CHANNEL, config).unwrap();
    append_n(&mut ledger, 3, 60);
    let last = next_block(&ledger, 60);
    let before = fs::metadata(last_file(root.path())).unwrap().len();
    let files_before = block_files(root.path()).len();
    ledger.append(&last).unwrap();
    drop(ledger);
    let path = last_file(root.path());
    let full = fs::read(&path).unwrap();
    let checksums = fs::read(checksums_file(root.path())).unwrap();
    let record_start = if block_files(root.path()).len() > files_before {
        0
    } else {
        before as usize
    };
    assert!(full.len() > record_start + 1);

    let files = block_files(root.path());
    for cut in record_start..full.len() {
        // A crash mid-append: part of the record, no checksum entry.
        fs::write(&path, &full[..cut]).unwrap();
        cut_checksums(root.path(), 3);
        let mut ledger = Ledger::open_with_config(root.path(), CHANNEL, config).unwrap();
        assert_eq!(ledger.height(), 3, "cut at {cut}");
        assert_eq!(fs::metadata(&path).unwrap().len(), record_start as u64);
        ledger.append(&last).unwrap();
        assert_eq!(ledger.height(), 4);
        assert_eq!(ledger.reader().get(3).unwrap(), last);
        drop(ledger);
        // The same record again: in the same file, or (when the file is
        // now empty and the record over file_size_max) alone in a new one,
        // as Fabric's roll-over rule does.
        let now = block_files(root.path());
        assert_eq!(fs::read(now.last().unwrap()).unwrap(), full, "cut at {cut}");
        if now == files {
            assert_eq!(fs::read(checksums_file(root.path())).unwrap(), checksums);
        }
        for extra in &now[files.len()..] {
            fs::remove_file(extra).unwrap();
        }
    }
}

#[test]
fn partial_record_known_to_the_checksum_file_is_refused() {
    // The block was durable when its checksum was written: losing its tail
    // later is data loss, not a torn append.
    let root = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(root.path(), CHANNEL).unwrap();
    append_n(&mut ledger, 3, 60);
    drop(ledger);
    let path = last_file(root.path());
    let last_record = *record_offsets(&path).last().unwrap();
    let len = fs::metadata(&path).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    let (file, offset, reason) = expect_refused(root.path(), LedgerConfig::DEFAULT);
    assert_eq!(file, path);
    assert_eq!(offset, last_record);
    assert!(reason.contains("lost data"), "{reason}");
}

#[test]
fn torn_tail_truncated_at_every_offset() {
    torn_tail_at_every_offset(LedgerConfig::DEFAULT);
}

#[test]
fn torn_tail_of_a_fresh_file_truncated_at_every_offset() {
    // Each record gets its own file, so the torn record is the whole file.
    torn_tail_at_every_offset(small(100));
}

#[test]
fn partial_next_block_after_last_record_is_recovered() {
    let root = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(root.path(), CHANNEL).unwrap();
    let blocks = append_n(&mut ledger, 3, 50);
    let next = next_block(&ledger, 50);
    drop(ledger);
    let path = last_file(root.path());
    let clean = fs::read(&path).unwrap();
    let record = record_bytes(&next);

    let tails: Vec<Vec<u8>> = vec![
        record[..1].to_vec(),
        record[..2].to_vec(),
        record[..40].to_vec(),
        record[..record.len() - 1].to_vec(),
        b"x".to_vec(), // declares 120 bytes, none present
        vec![0x80],    // a length prefix cut short
        vec![0xff; 4],
    ];
    for tail in tails {
        let mut bytes = clean.clone();
        bytes.extend_from_slice(&tail);
        fs::write(&path, &bytes).unwrap();
        let mut ledger = Ledger::open(root.path(), CHANNEL).unwrap();
        assert_eq!(ledger.height(), 3, "{tail:?}");
        assert_eq!(fs::read(&path).unwrap(), clean);
        assert_eq!(ledger.reader().get(2).unwrap(), blocks[2]);
        ledger.append(&next).unwrap();
        drop(ledger);
        fs::write(&path, &clean).unwrap();
        cut_checksums(root.path(), 3);
    }
}

#[test]
fn garbage_after_last_record_is_refused_not_truncated() {
    let root = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(root.path(), CHANNEL).unwrap();
    append_n(&mut ledger, 3, 50);
    let next = next_block(&ledger, 50);
    drop(ledger);
    let path = last_file(root.path());
    let clean = fs::read(&path).unwrap();
    let mut other = next.clone();
    other.header.as_mut().unwrap().number = 9;
    let mut other_record = record_bytes(&other);
    other_record.truncate(30);
    let mut complete_then_more = record_bytes(&next);
    complete_then_more.push(0);

    let tails: Vec<Vec<u8>> = vec![
        b"FBLK\x10\x00".to_vec(), // the old format's magic: 70 bytes declared, wrong start
        vec![0; 4096],            // zero-length records do not decode
        vec![0xab; 23],           // not a varint
        other_record,             // partial, but of another block
        b"\x05hello".to_vec(),    // complete record that is no block
        complete_then_more,       // a good block then a stray byte
    ];
    for tail in tails {
        let mut bytes = clean.clone();
        bytes.extend_from_slice(&tail);
        fs::write(&path, &bytes).unwrap();
        let (file, offset, _reason) = expect_refused(root.path(), LedgerConfig::DEFAULT);
        assert_eq!(file, path);
        assert!(offset >= clean.len() as u64, "{tail:?}");
    }
}

/// Record offsets in one file.
fn record_offsets(path: &Path) -> Vec<u64> {
    let bytes = fs::read(path).unwrap();
    let scan = scan_records(&bytes, u32::MAX);
    assert_eq!(scan.stop, ScanStop::Clean);
    scan.records.iter().map(|r| r.offset).collect()
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

#[test]
fn flipped_byte_anywhere_in_a_checksummed_record_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(root.path(), CHANNEL).unwrap();
    append_n(&mut ledger, 4, 80);
    drop(ledger);
    let path = last_file(root.path());
    let offsets = record_offsets(&path);
    // Every byte of a middle record and of the last record: the checksum
    // file catches it (the last record is complete, so it is no torn tail).
    for record in [1, 3] {
        let end = offsets
            .get(record + 1)
            .copied()
            .unwrap_or(fs::metadata(&path).unwrap().len());
        for at in offsets[record]..end {
            flip_byte(&path, at);
            let (file, offset, reason) = expect_refused(root.path(), LedgerConfig::DEFAULT);
            assert_eq!(file, path);
            assert!(
                offset >= offsets[record] && offset <= end,
                "byte {at}: offset {offset}: {reason}"
            );
            flip_byte(&path, at);
        }
    }
    assert_eq!(Ledger::open(root.path(), CHANNEL).unwrap().height(), 4);
}

#[test]
fn fabric_written_file_with_a_flipped_byte_in_the_middle_is_refused() {
    // No checksum file (as Fabric leaves it): the structure, the numbering,
    // the hash chain and the data hash catch damage to the length prefix,
    // the header and the data. (Damage to the metadata of a block without a
    // checksum is only caught by its signature, which `open` does not check.)
    let root = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(root.path(), CHANNEL).unwrap();
    let blocks = append_n(&mut ledger, 4, 80);
    drop(ledger);
    let path = last_file(root.path());
    let offsets = record_offsets(&path);
    let metadata_len = 1 + blocks[1].metadata.as_ref().unwrap().metadata.len();
    let end = offsets[2] - metadata_len as u64;
    fs::remove_dir_all(root.path().join(checksums::SIDE_DIR)).unwrap();
    for at in offsets[1]..end {
        flip_byte(&path, at);
        let (file, offset, reason) = expect_refused(root.path(), LedgerConfig::DEFAULT);
        assert_eq!(file, path);
        assert!(offset >= offsets[1], "byte {at}: offset {offset}: {reason}");
        assert!(!root.path().join(checksums::SIDE_DIR).exists());
        flip_byte(&path, at);
    }
    let ledger = Ledger::open(root.path(), CHANNEL).unwrap();
    assert_eq!(ledger.height(), 4);
    for (n, block) in blocks.iter().enumerate() {
        assert_eq!(&ledger.reader().get(n as u64).unwrap(), block);
    }
}

#[test]
fn foreign_files_are_refused_and_left_untouched() {
    // The old FBLK record format of this crate: a 24-byte header, then the
    // protobuf block.
    let block = make_block(0, Vec::new(), 300);
    let body = block.encode_to_vec();
    let mut fblk = Vec::new();
    fblk.extend_from_slice(b"FBLK");
    fblk.extend_from_slice(&(body.len() as u32).to_le_bytes());
    fblk.extend_from_slice(&0u64.to_le_bytes());
    fblk.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    let header_crc = crc32c::crc32c(&fblk);
    fblk.extend_from_slice(&header_crc.to_le_bytes());
    fblk.extend_from_slice(&body);
    // Random bytes (a fixed xorshift stream).
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let random: Vec<u8> = (0..300_000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    // Protobuf-encoded blocks back to back (someone else's layout).
    let protobuf: Vec<u8> = chain_from(0, None, &[100, 100])
        .iter()
        .flat_map(|b| b.encode_to_vec())
        .collect();

    for bytes in [fblk, random, protobuf] {
        let root = tempfile::tempdir().unwrap();
        let dir = channel_dir(root.path(), CHANNEL);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(block_file_name(0)), &bytes).unwrap();
        let (file, offset, reason) = expect_refused(root.path(), LedgerConfig::DEFAULT);
        assert_eq!(file, dir.join(block_file_name(0)));
        assert_eq!(offset, 0, "{reason}");
        assert!(!root.path().join(checksums::SIDE_DIR).exists());
        let text = LedgerError::Corrupt {
            file,
            offset,
            reason,
        }
        .to_string();
        assert!(text.contains("restore it from a backup"), "{text}");
    }
}

#[test]
fn missing_or_short_checksum_file_is_rebuilt_from_verified_blocks() {
    let root = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open_with_config(root.path(), CHANNEL, small(600)).unwrap();
    let blocks = append_n(&mut ledger, 9, 100);
    drop(ledger);
    let full = fs::read(checksums_file(root.path())).unwrap();
    assert_eq!(full.len(), 9 * checksums::ENTRY_SIZE);

    // Gone (a ledger written by Fabric), short, ending in a partial entry,
    // or with a damaged entry: rebuilt byte for byte.
    let damaged = {
        let mut bytes = full.clone();
        bytes[5 * checksums::ENTRY_SIZE + 2] ^= 1;
        bytes
    };
    let variants: Vec<Option<Vec<u8>>> = vec![
        None,
        Some(Vec::new()),
        Some(full[..4 * checksums::ENTRY_SIZE].to_vec()),
        Some(full[..4 * checksums::ENTRY_SIZE + 7].to_vec()),
        Some(damaged),
    ];
    for variant in variants {
        match &variant {
            None => fs::remove_dir_all(root.path().join(checksums::SIDE_DIR)).unwrap(),
            Some(bytes) => fs::write(checksums_file(root.path()), bytes).unwrap(),
        }
        let ledger = Ledger::open_with_config(root.path(), CHANNEL, small(600)).unwrap();
        assert_eq!(ledger.height(), 9);
        assert_eq!(fs::read(checksums_file(root.path())).unwrap(), full);
        for (n, block) in blocks.iter().enumerate() {
            assert_eq!(&ledger.reader().get(n as u64).unwrap(), block);
        }
    }

    // More entries than blocks: blocks were lost.
    let files = block_files(root.path());
    fs::remove_file(files.last().unwrap()).unwrap();
    let (_, _, reason) = expect_refused(root.path(), small(600));
    assert!(reason.contains("blocks were lost"), "{reason}");
}

#[test]
fn damage_in_a_file_that_is_not_the_last_is_corrupt() {
    let root = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open_with_config(root.path(), CHANNEL, small(400)).unwrap();
    append_n(&mut ledger, 8, 100);
    drop(ledger);
    let files = block_files(root.path());
    assert!(files.len() >= 3);
    // The last record of the first file: a torn tail if it were the last file.
    let offsets = record_offsets(&files[0]);
    flip_byte(&files[0], offsets.last().unwrap() + 30);
    match Ledger::open_with_config(root.path(), CHANNEL, small(400)) {
        Err(LedgerError::Corrupt { file, .. }) => assert_eq!(file, files[0]),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn missing_or_empty_middle_files_are_corrupt() {
    let root = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open_with_config(root.path(), CHANNEL, small(300)).unwrap();
    append_n(&mut ledger, 6, 100);
    drop(ledger);
    let files = block_files(root.path());
    assert!(files.len() >= 3);
    let saved = fs::read(&files[1]).unwrap();

    fs::write(&files[1], b"").unwrap();
    assert!(matches!(
        Ledger::open_with_config(root.path(), CHANNEL, small(300)),
        Err(LedgerError::Corrupt { .. })
    ));
    fs::remove_file(&files[1]).unwrap();
    match Ledger::open_with_config(root.path(), CHANNEL, small(300)) {
        Err(LedgerError::Corrupt { file, .. }) => assert_eq!(file, files[1]),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    fs::write(&files[1], saved).unwrap();
    assert_eq!(
        Ledger::open_with_config(root.path(), CHANNEL, small(300))
            .unwrap()
            .height(),
        6
    );
}

#[test]
fn valid_records_with_broken_chain_or_numbering_are_corrupt() {
    // Write records by hand: well-formed, but block 1 does not link.
    let root = tempfile::tempdir().unwrap();
    drop(Ledger::open(root.path(), CHANNEL).unwrap());
    let b0 = make_block(0, Vec::new(), 10);
    let b1 = make_block(1, vec![7; 32], 10);
    let mut bytes = record_bytes(&b0);
    let second = bytes.len() as u64;
    bytes.extend_from_slice(&record_bytes(&b1));
    fs::write(last_file(root.path()), &bytes).unwrap();
    let (_, offset, reason) = expect_refused(root.path(), LedgerConfig::DEFAULT);
    assert_eq!(offset, second);
    assert!(reason.contains("previous_hash"), "{reason}");

    // A record whose number disagrees with the position.
    fs::write(
        last_file(root.path()),
        record_bytes(&make_block(5, Vec::new(), 10)),
    )
    .unwrap();
    let (_, offset, reason) = expect_refused(root.path(), LedgerConfig::DEFAULT);
    assert_eq!(offset, 0);
    assert!(reason.contains("block 5 where block 0"), "{reason}");

    // A wrong data hash.
    let mut b0 = make_block(0, Vec::new(), 10);
    b0.header.as_mut().unwrap().data_hash = vec![1; 32];
    fs::write(last_file(root.path()), record_bytes(&b0)).unwrap();
    let (_, _, reason) = expect_refused(root.path(), LedgerConfig::DEFAULT);
    assert!(reason.contains("data_hash"), "{reason}");
}

#[test]
fn lowered_block_size_limit_is_not_truncated() {
    let root = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(root.path(), CHANNEL).unwrap();
    append_n(&mut ledger, 2, 500);
    drop(ledger);
    let len = fs::metadata(last_file(root.path())).unwrap().len();
    let config = LedgerConfig {
        block_size_max: 100,
        ..LedgerConfig::DEFAULT
    };
    assert!(matches!(
        Ledger::open_with_config(root.path(), CHANNEL, config),
        Err(LedgerError::Corrupt { .. })
    ));
    assert_eq!(fs::metadata(last_file(root.path())).unwrap().len(), len);
}

#[test]
fn bad_appends_are_rejected_without_writing() {
    let root = tempfile::tempdir().unwrap();
    let config = LedgerConfig {
        block_size_max: 1000,
        batch_blocks_max: 4,
        ..LedgerConfig::DEFAULT
    };
    let mut ledger = Ledger::open_with_config(root.path(), CHANNEL, config).unwrap();
    let mut rx = ledger.reader().subscribe();
    append_n(&mut ledger, 2, 10);
    let len = fs::metadata(last_file(root.path())).unwrap().len();
    let hash = ledger.last_header_hash().unwrap().to_vec();

    let gap = make_block(3, hash.clone(), 10);
    let duplicate = make_block(1, hash.clone(), 10);
    let wrong_prev = make_block(2, vec![0; 32], 10);
    let empty_prev = make_block(2, Vec::new(), 10);
    let headerless = Block {
        header: None,
        ..make_block(2, hash.clone(), 10)
    };
    let huge = make_block(2, hash.clone(), 2000);
    let mut wrong_data_hash = make_block(2, hash.clone(), 10);
    wrong_data_hash.header.as_mut().unwrap().data_hash = vec![0; 32];
    assert!(matches!(
        ledger.append(&gap),
        Err(LedgerError::WrongNumber {
            expected: 2,
            got: 3
        })
    ));
    assert!(matches!(
        ledger.append(&duplicate),
        Err(LedgerError::WrongNumber {
            expected: 2,
            got: 1
        })
    ));
    assert!(matches!(
        ledger.append(&wrong_prev),
        Err(LedgerError::WrongPreviousHash { number: 2 })
    ));
    assert!(matches!(
        ledger.append(&empty_prev),
        Err(LedgerError::WrongPreviousHash { number: 2 })
    ));
    assert!(matches!(
        ledger.append(&wrong_data_hash),
        Err(LedgerError::WrongDataHash { number: 2 })
    ));
    assert!(matches!(
        ledger.append(&headerless),
        Err(LedgerError::MissingHeader)
    ));
    assert!(matches!(
        ledger.append(&huge),
        Err(LedgerError::BlockTooLarge {
            number: 2,
            limit: 1000,
            ..
        })
    ));
    // A batch is checked as a whole: a bad second block writes nothing.
    let good = make_block(2, hash.clone(), 10);
    let bad_link = make_block(3, vec![1; 32], 10);
    assert!(matches!(
        ledger.append_batch(&[good.clone(), bad_link]),
        Err(LedgerError::WrongPreviousHash { number: 3 })
    ));
    let too_many = chain_from(2, ledger.last_header_hash(), &[1; 5]);
    assert!(matches!(
        ledger.append_batch(&too_many),
        Err(LedgerError::BatchTooLarge { count: 5, limit: 4 })
    ));
    assert_eq!(ledger.append_batch(&[]).unwrap(), 2);

    assert_eq!(ledger.height(), 2);
    assert_eq!(fs::metadata(last_file(root.path())).unwrap().len(), len);
    assert_eq!(*rx.borrow_and_update(), 2);
    ledger.append(&good).unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), 3);
}

#[test]
fn failed_writes_roll_back_and_the_ledger_stays_usable() {
    let root = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open_with_config(root.path(), CHANNEL, small(300)).unwrap();
    append_n(&mut ledger, 1, 100);
    let reader = ledger.reader();

    for fail_point in [
        FailPoint::Write { after_bytes: 0 },
        FailPoint::Write { after_bytes: 30 },
        FailPoint::Sync,
    ] {
        let files = block_files(root.path());
        let len = fs::metadata(files.last().unwrap()).unwrap().len();
        let height = ledger.height();
        ledger.set_fail_point(0, fail_point);
        let block = next_block(&ledger, 50);
        assert!(matches!(ledger.append(&block), Err(LedgerError::Io { .. })));
        assert_eq!(block_files(root.path()), files, "{fail_point:?}");
        assert_eq!(fs::metadata(files.last().unwrap()).unwrap().len(), len);
        assert_eq!(ledger.height(), height);
        assert_eq!(reader.height(), height);
        verify_chain(&reader);
        ledger.append(&block).unwrap();
    }

    // A batch spilling into new files fails in its second file: the first
    // file is truncated back and the new files are removed.
    let files = block_files(root.path());
    let len = fs::metadata(files.last().unwrap()).unwrap().len();
    let height = ledger.height();
    let batch = chain_from(height, ledger.last_header_hash(), &[100; 6]);
    // Two segments are written and synced, the third fails.
    ledger.set_fail_point(2, FailPoint::Write { after_bytes: 10 });
    assert!(ledger.append_batch(&batch).is_err());
    assert_eq!(block_files(root.path()), files);
    assert_eq!(fs::metadata(files.last().unwrap()).unwrap().len(), len);
    assert_eq!(ledger.append_batch(&batch).unwrap(), height + 6);
    assert!(block_files(root.path()).len() > files.len());
    drop(ledger);

    let ledger = Ledger::open_with_config(root.path(), CHANNEL, small(300)).unwrap();
    assert_eq!(ledger.height(), height + 6);
    verify_chain(&ledger.reader());
}

#[test]
fn disk_full_and_io_errors_through_append_io_fail_cleanly_and_recover() {
    use crate::io::{Fault, FaultyIo, EIO_ERRNO as EIO, ENOSPC_ERRNO as ENOSPC};
    let root = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open_with_config(root.path(), CHANNEL, small(4096)).unwrap();
    let faulty = Arc::new(FaultyIo::new());
    ledger.set_append_io(faulty.clone());
    append_n(&mut ledger, 3, 100);
    let reader = ledger.reader();
    let path = last_file(root.path());

    for fault in [
        Fault::Write {
            after_bytes: 0,
            errno: ENOSPC,
        },
        Fault::Write {
            after_bytes: 40,
            errno: ENOSPC,
        },
        Fault::Sync { errno: EIO },
    ] {
        let len = fs::metadata(&path).unwrap().len();
        let height = ledger.height();
        faulty.set(Some(fault));
        let block = next_block(&ledger, 100);
        // Retried several times while the disk stays full: each attempt
        // fails the same way and leaves nothing behind.
        for _ in 0..3 {
            let err = ledger.append(&block).unwrap_err();
            assert!(err.is_transient(), "{err}");
            let text = err.to_string();
            assert!(text.contains(&path.display().to_string()), "{text}");
            let errno = match fault {
                Fault::Write { errno, .. } | Fault::Sync { errno } => errno,
            };
            assert!(text.contains(&format!("os error {errno}")), "{text}");
            assert_eq!(fs::metadata(&path).unwrap().len(), len, "{fault:?}");
            assert_eq!(reader.height(), height);
            assert!(reader.get(height).is_err());
        }
        // Space is back: the same block goes in.
        faulty.set(None);
        assert_eq!(ledger.append(&block).unwrap(), height + 1);
        assert_eq!(reader.get(height).unwrap(), block);
    }
    assert_eq!(faulty.failures(), 9);
    drop(ledger);
    let ledger = Ledger::open_with_config(root.path(), CHANNEL, small(4096)).unwrap();
    assert_eq!(ledger.height(), 6);
    verify_chain(&ledger.reader());
}

#[test]
fn a_poisoned_writer_repairs_the_files_before_the_next_append() {
    let root = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open_with_config(root.path(), CHANNEL, small(4096)).unwrap();
    append_n(&mut ledger, 2, 50);
    let files = block_files(root.path());
    let path = files.last().unwrap().clone();
    let len = fs::metadata(&path).unwrap().len();
    // What a failed rollback leaves: a partial record at the end of the
    // current file and a file the append had started.
    {
        let f = OpenOptions::new().append(true).open(&path).unwrap();
        use std::io::Write;
        (&f).write_all(&[0xAB; 700]).unwrap();
    }
    let stray = channel_dir(root.path(), CHANNEL).join(block_file_name(files.len() as u32));
    fs::write(&stray, [1u8; 10]).unwrap();
    ledger.poisoned = true;

    let block = next_block(&ledger, 50);
    ledger.append(&block).unwrap();
    assert!(!ledger.poisoned);
    assert!(!stray.exists());
    // The garbage (longer than the new record) is gone, not overwritten.
    let record_len = record_bytes(&block).len() as u64;
    assert_eq!(fs::metadata(&path).unwrap().len(), len + record_len);
    drop(ledger);
    let ledger = Ledger::open_with_config(root.path(), CHANNEL, small(4096)).unwrap();
    assert_eq!(ledger.height(), 3);
    verify_chain(&ledger.reader());
}

#[test]
fn append_batch_across_files_round_trips() {
    let root = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open_with_config(root.path(), CHANNEL, small(500)).unwrap();
    let first = chain_from(0, None, &[10, 200, 300, 50, 600, 5]);
    assert_eq!(ledger.append_batch(&first).unwrap(), 6);
    let second = chain_from(6, ledger.last_header_hash(), &[100; 10]);
    assert_eq!(ledger.append_batch(&second).unwrap(), 16);
    drop(ledger);
    let ledger = Ledger::open_with_config(root.path(), CHANNEL, small(500)).unwrap();
    let reader = ledger.reader();
    for (n, block) in first.iter().chain(&second).enumerate() {
        assert_eq!(&reader.get(n as u64).unwrap(), block);
    }
}

#[test]
fn readers_detect_damage_after_open() {
    let root = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(root.path(), CHANNEL).unwrap();
    append_n(&mut ledger, 3, 100);
    let path = last_file(root.path());
    let offsets = record_offsets(&path);
    flip_byte(&path, offsets[1] + 5);
    let reader = ledger.reader();
    assert!(matches!(reader.get(1), Err(LedgerError::Corrupt { .. })));
    assert!(matches!(
        reader.get_raw(1),
        Err(LedgerError::Corrupt { .. })
    ));
    assert!(reader.get(0).is_ok());
    assert!(reader.get(2).is_ok());
}

#[test]
fn invalid_channel_ids_and_configs_are_rejected() {
    let root = tempfile::tempdir().unwrap();
    let long = "a".repeat(CHANNEL_ID_LEN_MAX + 1);
    for id in [
        "",
        "Upper",
        "1abc",
        "../escape",
        "a/b",
        "a_b",
        long.as_str(),
    ] {
        assert!(
            matches!(
                Ledger::open(root.path(), id),
                Err(LedgerError::InvalidChannelId(_))
            ),
            "{id:?}"
        );
    }
    for id in ["a", "my-channel.1", &"a".repeat(CHANNEL_ID_LEN_MAX)] {
        Ledger::open(root.path(), id).unwrap();
    }
    assert!(matches!(
        Ledger::open_with_config(root.path(), CHANNEL, small(10)),
        Err(LedgerError::InvalidConfig(_))
    ));
}

#[test]
fn block_file_names() {
    assert_eq!(block_file_name(0), "blockfile_000000");
    assert_eq!(block_file_name(123), "blockfile_000123");
    assert_eq!(block_file_name(1_234_567), "blockfile_1234567");
    assert_eq!(parse_block_file_name("blockfile_000007"), Some(7));
    assert_eq!(parse_block_file_name("blockfile_1234567"), Some(1_234_567));
    assert_eq!(parse_block_file_name("blockfile_7"), None);
    assert_eq!(parse_block_file_name("blockfile_0000007"), None);
    assert_eq!(parse_block_file_name("blockfile_00000x"), None);
    assert_eq!(parse_block_file_name("index"), None);
}

#[test]
fn reader_is_send_sync_and_cheap() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<LedgerReader>();
    fn assert_send<T: Send>() {}
    assert_send::<Ledger>();
}

#[test]
fn concurrent_reader_sees_only_complete_blocks() {
    let root = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open_with_config(root.path(), CHANNEL, small(2000)).unwrap();
    let reader = ledger.reader();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let reader = reader.clone();
                let done = &done;
                scope.spawn(move || {
                    let mut reads = 0u64;
                    let mut prev_height = 0;
                    loop {
                        let finished = done.load(Ordering::Acquire);
                        let height = reader.height();
                        assert!(height >= prev_height);
                        prev_height = height;
                        if height > 0 {
                            // The newest block is always complete and valid.
                            let block = reader.get(height - 1).unwrap();
                            assert_eq!(block.header.unwrap().number, height - 1);
                            reads += 1;
                        }
                        if finished {
                            break;
                        }
                    }
                    verify_chain(&reader);
                    reads
                })
            })
            .collect();
        for i in 0..150 {
            let block = next_block(&ledger, 20 + (i * 37) % 300);
            ledger.append(&block).unwrap();
        }
        done.store(true, Ordering::Release);
        for handle in readers {
            assert!(handle.join().unwrap() > 0);
        }
    });
    assert_eq!(reader.height(), 150);
}

#[tokio::test]
async fn wait_for_height_wakes_on_append_and_reports_close() {
    let root = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(root.path(), CHANNEL).unwrap();
    let reader = ledger.reader();
    assert_eq!(reader.wait_for_height(0).await.unwrap(), 0);

    let waiter = {
        let reader = reader.clone();
        tokio::spawn(async move { reader.wait_for_height(3).await })
    };
    let writer = std::thread::spawn(move || {
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(5));
            append_n(&mut ledger, 1, 10);
        }
        ledger
    });
    assert_eq!(waiter.await.unwrap().unwrap(), 3);
    assert_eq!(reader.get(2).unwrap().header.unwrap().number, 2);
    let ledger = writer.join().unwrap();

    let mut rx = reader.subscribe();
    drop(ledger);
    assert!(rx.changed().await.is_err());
    assert!(matches!(
        reader.wait_for_height(4).await,
        Err(LedgerError::Closed)
    ));
    // Reads still work after the writer is gone.
    assert_eq!(reader.height(), 3);
    verify_chain(&reader);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_blocks_round_trip(
        sizes in proptest::collection::vec(0usize..700, 1..25),
        batch in 1usize..5,
        file_size_max in 100u64..2000,
    ) {
        let root = tempfile::tempdir().unwrap();
        let config = small(file_size_max);
        let mut ledger = Ledger::open_with_config(root.path(), CHANNEL, config).unwrap();
        let blocks = chain_from(0, None, &sizes);
        for chunk in blocks.chunks(batch) {
            ledger.append_batch(chunk).unwrap();
        }
        prop_assert_eq!(ledger.height(), sizes.len() as u64);
        drop(ledger);
        let ledger = Ledger::open_with_config(root.path(), CHANNEL, config).unwrap();
        prop_assert_eq!(ledger.height(), sizes.len() as u64);
        let reader = ledger.reader();
        for (n, block) in blocks.iter().enumerate() {
            prop_assert_eq!(&reader.get(n as u64).unwrap(), block);
        }
        for file in block_files(root.path()) {
            let len = fs::metadata(&file).unwrap().len();
            let records = record_offsets(&file).len();
            prop_assert!(len <= file_size_max || records == 1);
        }
    }
}

/// Set in the child process of the crash test: the ledger root to write to.
const CRASH_CHILD_ENV: &str = "FABRIC_LEDGER_CRASH_CHILD_ROOT";
const CRASH_CONFIG: LedgerConfig = LedgerConfig {
    file_size_max: 4096,
    block_size_max: 1 << 20,
    batch_blocks_max: 16,
};

/// The child half of `sigkill_during_appends_leaves_a_valid_chain`: a no-op
/// unless the environment variable is set, then appends until killed.
#[test]
fn crash_child_writer() {
    let Ok(root) = std::env::var(CRASH_CHILD_ENV) else {
        return;
    };
    let mut ledger = Ledger::open_with_config(&root, CHANNEL, CRASH_CONFIG).unwrap();
    loop {
        let height = ledger.height();
        let size = (height as usize * 7919) % 3000;
        if height.is_multiple_of(5) {
            let batch = chain_from(height, ledger.last_header_hash(), &[size, 40, size / 2]);
            ledger.append_batch(&batch).unwrap();
        } else {
            append_n(&mut ledger, 1, size);
        }
    }
}

#[test]
fn sigkill_during_appends_leaves_a_valid_chain() {
    let root = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut height = 0;
    for round in 0..6 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "ledger::tests::crash_child_writer",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(CRASH_CHILD_ENV, root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(50 + random() % 250));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let ledger = Ledger::open_with_config(root.path(), CHANNEL, CRASH_CONFIG).unwrap();
        // Appends that returned are durable: the height never goes back.
        assert!(ledger.height() >= height, "round {round}");
        height = ledger.height();
        eprintln!("crash round {round}: reopened at height {height}");
        verify_chain(&ledger.reader());
    }
    assert!(height > 0);
}

/// Set to a ledger root written by Fabric (`<root>/chains/<channel>/…`) to
/// run `fabric_written_ledger_round_trips`, e.g. one of the sample ledgers
/// in Fabric's `internal/ledgerutil/testdata`.
const FABRIC_ROOT_ENV: &str = "FABRIC_LEDGER_ROOT";
/// The channel of that ledger (default `mychannel`).
const FABRIC_CHANNEL_ENV: &str = "FABRIC_LEDGER_CHANNEL";

/// On a copy of a Fabric-written ledger: the read-only check passes, the
/// ledger opens with the same blocks, re-serializing every block gives the
/// block files byte for byte, and appending continues the chain.
#[test]
fn fabric_written_ledger_round_trips() {
    let Ok(source) = std::env::var(FABRIC_ROOT_ENV) else {
        return;
    };
    let channel = std::env::var(FABRIC_CHANNEL_ENV).unwrap_or_else(|_| "mychannel".to_owned());
    let root = tempfile::tempdir().unwrap();
    let dir = channel_dir(root.path(), &channel);
    fs::create_dir_all(&dir).unwrap();
    let source_dir = channel_dir(Path::new(&source), &channel);
    let mut originals = Vec::new();
    for suffix in list_block_files(&source_dir).unwrap() {
        let bytes = fs::read(source_dir.join(block_file_name(suffix))).unwrap();
        fs::write(dir.join(block_file_name(suffix)), &bytes).unwrap();
        originals.push(bytes);
    }
    let report = verify_channel(root.path(), &channel, &LedgerConfig::DEFAULT).unwrap();
    eprintln!("{report:?}");
    assert_eq!(report.torn_tail, None);
    assert!(!root.path().join(checksums::SIDE_DIR).exists());

    let mut ledger = Ledger::open(root.path(), &channel).unwrap();
    assert_eq!(ledger.height(), report.height);
    let reader = ledger.reader();
    let mut rebuilt: Vec<Vec<u8>> = vec![Vec::new(); originals.len()];
    for n in 0..reader.height() {
        let block = reader.get(n).unwrap();
        let entry = reader.shared.index.read().unwrap().locations[n as usize];
        rebuilt[entry.file as usize].extend_from_slice(&record_bytes(&block));
    }
    assert!(
        rebuilt == originals,
        "re-serialized blocks differ from Fabric's files"
    );
    let block = fabric_common::block::new_block(
        ledger.height(),
        ledger.last_header_hash().unwrap().to_vec(),
        vec![b"appended by us".to_vec()],
    );
    ledger.append(&block).unwrap();
    drop(ledger);
    let ledger = Ledger::open(root.path(), &channel).unwrap();
    assert_eq!(ledger.height(), report.height + 1);
    verify_chain(&ledger.reader());
}

#[test]
fn verify_channel_reports_without_changing_anything() {
    let root = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open_with_config(root.path(), CHANNEL, small(500)).unwrap();
    append_n(&mut ledger, 6, 100);
    drop(ledger);
    let path = last_file(root.path());
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0x80]);
    fs::write(&path, &bytes).unwrap();

    let before = snapshot(root.path());
    let report = verify_channel(root.path(), CHANNEL, &LedgerConfig::DEFAULT).unwrap();
    assert_eq!(report.height, 6);
    assert_eq!(report.files, block_files(root.path()).len());
    assert_eq!(report.checksummed, 6);
    let torn = report.torn_tail.unwrap();
    assert_eq!((torn.file, torn.bytes), (path.clone(), 1));
    assert_eq!(torn.offset, bytes.len() as u64 - 1);

    let first = block_files(root.path())[0].clone();
    let offsets = record_offsets(&first);
    flip_byte(&first, offsets[1] + 3);
    match verify_channel(root.path(), CHANNEL, &LedgerConfig::DEFAULT) {
        Err(LedgerError::Corrupt { file, offset, .. }) => {
            assert_eq!((file, offset), (first.clone(), offsets[1]));
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    flip_byte(&first, offsets[1] + 3);
    assert_eq!(snapshot(root.path()), before);
}

#[test]
fn fabric_index_is_moved_aside_before_the_first_append_only() {
    let root = tempfile::tempdir().unwrap();
    let index = root.path().join(crate::fabric_index::FABRIC_INDEX_DIR);
    fs::create_dir_all(&index).unwrap();
    fs::write(index.join("CURRENT"), b"MANIFEST-000001\n").unwrap();
    let stale = |root: &Path| -> Vec<std::path::PathBuf> {
        fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_str().unwrap().contains("index.stale-"))
            .collect()
    };

    // Opening and reading leave Fabric's index alone.
    let mut ledger = Ledger::open(root.path(), CHANNEL).unwrap();
    let mut other = Ledger::open(root.path(), "other").unwrap();
    assert!(index.exists());
    // A rejected block writes nothing and moves nothing.
    let mut bad = next_block(&ledger, 10);
    bad.header.as_mut().unwrap().number = 7;
    assert!(ledger.append(&bad).is_err());
    assert!(index.exists());

    append_n(&mut ledger, 2, 10);
    assert!(!index.exists());
    let moved = stale(root.path());
    assert_eq!(moved.len(), 1);
    assert_eq!(
        fs::read(moved[0].join("CURRENT")).unwrap(),
        b"MANIFEST-000001\n"
    );
    // The other channel's writer finds it gone and appends.
    append_n(&mut other, 1, 10);
    assert_eq!(stale(root.path()).len(), 1);

    // A Fabric orderer running in between recreates index/; our next
    // writer moves it aside again before appending.
    drop(ledger);
    fs::create_dir_all(&index).unwrap();
    let mut ledger = Ledger::open(root.path(), CHANNEL).unwrap();
    assert!(index.exists());
    append_n(&mut ledger, 1, 10);
    assert!(!index.exists());
    assert_eq!(stale(root.path()).len(), 2);
}
