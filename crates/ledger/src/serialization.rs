//! Fabric's block serialization, the body of every record in a block file.
//!
//! Fabric (`common/ledger/blkstorage/block_serialization.go`, v1.4.x under
//! `fsblkstorage/`) does not store the protobuf encoding of `common.Block`.
//! It stores, with no field tags:
//!
//! ```text
//! uvarint(header.number)
//! bytes(header.data_hash)  bytes(header.previous_hash)
//! uvarint(#data)     bytes(data[0])     … bytes(data[k-1])
//! uvarint(#metadata) bytes(metadata[0]) … bytes(metadata[m-1])
//! bytes(x) = uvarint(len(x)) x
//! ```
//!
//! What Fabric does at the edges, and what this module does the same way:
//! a missing `metadata` is written as zero entries (v2.5; v1.4 cannot write
//! it); an empty hash is written as length 0. Reading always yields a block
//! whose header, data and metadata are all present (possibly empty), and an
//! empty `previous_hash` reads back as empty. The protobuf encoding of what
//! [`BlockView::to_block`] returns is therefore what Fabric's orderer serves
//! for the same bytes. Fabric's reader ignores bytes after the metadata;
//! this one rejects them ([`DecodeError::TrailingBytes`]), since no writer
//! produces them.

use std::fmt;

use fabric_protos::common::{Block, BlockData, BlockHeader, BlockMetadata};

/// Most bytes of a uvarint encoding a `u64`.
pub const UVARINT_LEN_MAX: usize = 10;

/// Why bytes are not a Fabric block serialization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes end inside the named field.
    Truncated(&'static str),
    /// A uvarint longer than ten bytes or overflowing 64 bits.
    BadVarint(&'static str),
    /// A count or length larger than the bytes that remain could hold.
    LengthOverflow(&'static str),
    /// Bytes remain after the metadata.
    TrailingBytes(usize),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated(field) => write!(f, "bytes end inside the {field}"),
            DecodeError::BadVarint(field) => write!(f, "malformed varint in the {field}"),
            DecodeError::LengthOverflow(field) => {
                write!(f, "the {field} announces more bytes than the record holds")
            }
            DecodeError::TrailingBytes(n) => write!(f, "{n} bytes after the block metadata"),
        }
    }
}

/// Appends the uvarint encoding of `value` to `out`.
pub fn put_uvarint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Length of the uvarint encoding of `value`.
pub fn uvarint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// The outcome of reading a uvarint from the start of some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uvarint {
    /// The value and the bytes it took.
    Value(u64, usize),
    /// Every byte has its continuation bit set and there are fewer than
    /// [`UVARINT_LEN_MAX`] of them: the bytes end inside the varint.
    Incomplete,
    /// Longer than ten bytes, or over 64 bits.
    Malformed,
}

/// Reads one uvarint from the start of `bytes`.
pub fn get_uvarint(bytes: &[u8]) -> Uvarint {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().take(UVARINT_LEN_MAX).enumerate() {
        let low = u64::from(byte & 0x7f);
        if i == UVARINT_LEN_MAX - 1 && byte > 1 {
            return Uvarint::Malformed;
        }
        value |= low << (7 * i);
        if byte & 0x80 == 0 {
            return Uvarint::Value(value, i + 1);
        }
    }
    if bytes.len() < UVARINT_LEN_MAX {
        Uvarint::Incomplete
    } else {
        Uvarint::Malformed
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_uvarint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends Fabric's serialization of `block` (without the record's length
/// prefix) to `out`. A missing header is written as an empty one and missing
/// data or metadata as zero entries; the ledger refuses headerless blocks
/// before calling this.
pub fn serialize_block(block: &Block, out: &mut Vec<u8>) {
    let default_header = BlockHeader::default();
    let header = block.header.as_ref().unwrap_or(&default_header);
    put_uvarint(out, header.number);
    put_bytes(out, &header.data_hash);
    put_bytes(out, &header.previous_hash);
    let data: &[Vec<u8>] = block.data.as_ref().map_or(&[], |d| &d.data);
    put_uvarint(out, data.len() as u64);
    for envelope in data {
        put_bytes(out, envelope);
    }
    let metadata: &[Vec<u8>] = block.metadata.as_ref().map_or(&[], |m| &m.metadata);
    put_uvarint(out, metadata.len() as u64);
    for entry in metadata {
        put_bytes(out, entry);
    }
}

/// Size in bytes of Fabric's serialization of `block`.
pub fn serialized_len(block: &Block) -> usize {
    let bytes_len = |b: &[u8]| uvarint_len(b.len() as u64) + b.len();
    let list_len =
        |l: &[Vec<u8>]| uvarint_len(l.len() as u64) + l.iter().map(|b| bytes_len(b)).sum::<usize>();
    let default_header = BlockHeader::default();
    let header = block.header.as_ref().unwrap_or(&default_header);
    uvarint_len(header.number)
        + bytes_len(&header.data_hash)
        + bytes_len(&header.previous_hash)
        + list_len(block.data.as_ref().map_or(&[], |d| &d.data))
        + list_len(block.metadata.as_ref().map_or(&[], |m| &m.metadata))
}

/// A block serialization parsed in place: every field borrows the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockView<'a> {
    /// `header.number`.
    pub number: u64,
    /// `header.data_hash`.
    pub data_hash: &'a [u8],
    /// `header.previous_hash`.
    pub previous_hash: &'a [u8],
    /// `data.data`, the envelopes.
    pub data: Vec<&'a [u8]>,
    /// `metadata.metadata`.
    pub metadata: Vec<&'a [u8]>,
}

/// A cursor over serialized bytes.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn uvarint(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        match get_uvarint(self.bytes) {
            Uvarint::Value(value, n) => {
                self.bytes = &self.bytes[n..];
                Ok(value)
            }
            Uvarint::Incomplete => Err(DecodeError::Truncated(field)),
            Uvarint::Malformed => Err(DecodeError::BadVarint(field)),
        }
    }

    fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.uvarint(field)?;
        if len > self.bytes.len() as u64 {
            return Err(DecodeError::Truncated(field));
        }
        let (value, rest) = self.bytes.split_at(len as usize);
        self.bytes = rest;
        Ok(value)
    }

    /// A count followed by that many `bytes(x)`. Each entry takes at least
    /// one byte, which bounds the count before anything is allocated.
    fn list(&mut self, field: &'static str) -> Result<Vec<&'a [u8]>, DecodeError> {
        let count = self.uvarint(field)?;
        if count > self.bytes.len() as u64 {
            return Err(DecodeError::LengthOverflow(field));
        }
        (0..count).map(|_| self.bytes(field)).collect()
    }
}

impl<'a> BlockView<'a> {
    /// Parses a whole block serialization; panic-free for any input.
    pub fn parse(bytes: &'a [u8]) -> Result<BlockView<'a>, DecodeError> {
        let mut reader = Reader { bytes };
        let view = BlockView {
            number: reader.uvarint("block number")?,
            data_hash: reader.bytes("data hash")?,
            previous_hash: reader.bytes("previous hash")?,
            data: reader.list("block data")?,
            metadata: reader.list("block metadata")?,
        };
        match reader.bytes.len() {
            0 => Ok(view),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    /// The block header, as Fabric rebuilds it.
    pub fn header(&self) -> BlockHeader {
        BlockHeader {
            number: self.number,
            previous_hash: self.previous_hash.to_vec(),
            data_hash: self.data_hash.to_vec(),
        }
    }

    /// SHA-256 of the concatenated envelopes: what `data_hash` must be.
    pub fn computed_data_hash(&self) -> Vec<u8> {
        fabric_common::block::data_hash(&self.data)
    }

    /// The block, with header, data and metadata all present.
    pub fn to_block(&self) -> Block {
        let owned = |list: &[&[u8]]| list.iter().map(|b| b.to_vec()).collect();
        Block {
            header: Some(self.header()),
            data: Some(BlockData {
                data: owned(&self.data),
            }),
            metadata: Some(BlockMetadata {
                metadata: owned(&self.metadata),
            }),
        }
    }
}

/// Why [`check_prefix`] stopped.
enum PrefixEnd {
    /// The bytes present ran out inside a field: a plausible prefix.
    OutOfBytes,
    /// Something announced does not fit the declared length, or is malformed.
    Bad(DecodeError),
}

/// A cursor over the first bytes of a body declared `declared` bytes long.
struct PrefixReader<'a> {
    present: &'a [u8],
    pos: usize,
    declared: u64,
}

impl PrefixReader<'_> {
    fn uvarint(&mut self, field: &'static str) -> Result<u64, PrefixEnd> {
        match get_uvarint(&self.present[self.pos..]) {
            Uvarint::Value(value, n) => {
                self.pos += n;
                Ok(value)
            }
            Uvarint::Incomplete => Err(PrefixEnd::OutOfBytes),
            Uvarint::Malformed => Err(PrefixEnd::Bad(DecodeError::BadVarint(field))),
        }
    }

    /// Skips `len` bytes that must fit in the declared length.
    fn skip(&mut self, len: u64, field: &'static str) -> Result<(), PrefixEnd> {
        if len > self.declared.saturating_sub(self.pos as u64) {
            return Err(PrefixEnd::Bad(DecodeError::LengthOverflow(field)));
        }
        if len > (self.present.len() - self.pos) as u64 {
            return Err(PrefixEnd::OutOfBytes);
        }
        self.pos += len as usize;
        Ok(())
    }

    fn bytes(&mut self, field: &'static str) -> Result<(), PrefixEnd> {
        let len = self.uvarint(field)?;
        self.skip(len, field)
    }

    fn list(&mut self, field: &'static str) -> Result<(), PrefixEnd> {
        let count = self.uvarint(field)?;
        if count > self.declared.saturating_sub(self.pos as u64) {
            return Err(PrefixEnd::Bad(DecodeError::LengthOverflow(field)));
        }
        (0..count).try_for_each(|_| self.bytes(field))
    }
}

/// Checks that `present`, the first bytes of a record body whose length
/// prefix declares `declared_len` bytes, can be a strict prefix of a block
/// serialization of that length: the bytes run out inside a field, and
/// nothing parsed from them is malformed or announces more than the
/// declared length. A complete block in them is an error
/// ([`DecodeError::TrailingBytes`] with the bytes after it, possibly 0).
pub fn check_prefix(present: &[u8], declared_len: u64) -> Result<(), DecodeError> {
    let mut reader = PrefixReader {
        present,
        pos: 0,
        declared: declared_len,
    };
    let walked = (|| {
        reader.uvarint("block number")?;
        reader.bytes("data hash")?;
        reader.bytes("previous hash")?;
        reader.list("block data")?;
        reader.list("block metadata")
    })();
    match walked {
        Err(PrefixEnd::OutOfBytes) => Ok(()),
        Err(PrefixEnd::Bad(e)) => Err(e),
        Ok(()) => Err(DecodeError::TrailingBytes(present.len() - reader.pos)),
    }
}

/// Checks that `partial`, the bytes present of a record body cut short, can
/// be the start of the serialization of block `number` whose
/// `previous_hash` is `previous_hash` (`None`: not checked, block 0). What
/// an interrupted append of that block leaves passes; almost anything else
/// (another format, another block) does not.
pub fn plausible_start(partial: &[u8], number: u64, previous_hash: Option<&[u8]>) -> bool {
    let mut expected = Vec::with_capacity(UVARINT_LEN_MAX);
    put_uvarint(&mut expected, number);
    let n = expected.len().min(partial.len());
    if partial[..n] != expected[..n] {
        return false;
    }
    let mut reader = Reader {
        bytes: &partial[n..],
    };
    if n < expected.len() {
        return true;
    }
    let hash_len = match reader.uvarint("data hash") {
        Ok(len) => len,
        Err(DecodeError::Truncated(_)) => return true,
        Err(_) => return false,
    };
    if hash_len as usize >= reader.bytes.len() {
        return true;
    }
    reader.bytes = &reader.bytes[hash_len as usize..];
    let Some(previous_hash) = previous_hash else {
        return true;
    };
    let mut expected = Vec::new();
    put_bytes(&mut expected, previous_hash);
    let n = expected.len().min(reader.bytes.len());
    reader.bytes[..n] == expected[..n]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use prost::Message;

    fn block(number: u64, data: Vec<Vec<u8>>, metadata: Option<Vec<Vec<u8>>>) -> Block {
        Block {
            header: Some(BlockHeader {
                number,
                previous_hash: vec![3; 32],
                data_hash: fabric_common::block::data_hash(&data),
            }),
            data: Some(BlockData { data }),
            metadata: metadata.map(|metadata| BlockMetadata { metadata }),
        }
    }

    #[test]
    fn layout_matches_fabric() {
        let b = Block {
            header: Some(BlockHeader {
                number: 300,
                previous_hash: Vec::new(),
                data_hash: vec![0xaa; 2],
            }),
            data: Some(BlockData {
                data: vec![b"xyz".to_vec()],
            }),
            metadata: Some(BlockMetadata {
                metadata: vec![Vec::new(), vec![7]],
            }),
        };
        let mut out = Vec::new();
        serialize_block(&b, &mut out);
        let want: &[u8] = &[
            0xac, 0x02, // 300
            2, 0xaa, 0xaa, // data hash
            0,    // empty previous hash
            1, 3, b'x', b'y', b'z', // one envelope
            2, 0, 1, 7, // two metadata entries
        ];
        assert_eq!(out, want);
        assert_eq!(serialized_len(&b), want.len());
        assert_eq!(BlockView::parse(&out).unwrap().to_block(), b);
    }

    #[test]
    fn missing_metadata_reads_back_present_and_empty() {
        let b = block(1, vec![vec![1]], None);
        let mut out = Vec::new();
        serialize_block(&b, &mut out);
        let back = BlockView::parse(&out).unwrap().to_block();
        assert_eq!(back.metadata, Some(BlockMetadata::default()));
        // The protobuf encoding now carries an empty metadata field, as
        // Fabric serves it.
        assert_ne!(back.encode_to_vec(), b.encode_to_vec());
    }

    #[test]
    fn uvarints() {
        for value in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_uvarint(&mut out, value);
            assert_eq!(out.len(), uvarint_len(value), "{value}");
            assert_eq!(get_uvarint(&out), Uvarint::Value(value, out.len()));
            assert_eq!(get_uvarint(&out[..out.len() - 1]), Uvarint::Incomplete);
        }
        assert_eq!(get_uvarint(&[0xff; 10]), Uvarint::Malformed);
        assert_eq!(get_uvarint(&[0xff; 11]), Uvarint::Malformed);
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert_eq!(get_uvarint(&over), Uvarint::Malformed);
    }

    #[test]
    fn damaged_bytes_are_errors() {
        let b = block(5, vec![vec![1; 10], vec![2; 3]], Some(vec![vec![9]]));
        let mut out = Vec::new();
        serialize_block(&b, &mut out);
        for cut in 0..out.len() {
            assert!(BlockView::parse(&out[..cut]).is_err(), "cut {cut}");
        }
        let mut longer = out.clone();
        longer.push(0);
        assert_eq!(
            BlockView::parse(&longer),
            Err(DecodeError::TrailingBytes(1))
        );
        // A count far larger than the bytes: refused before allocating.
        assert!(BlockView::parse(&[0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }

    #[test]
    fn plausible_start_accepts_prefixes_of_the_expected_block_only() {
        let b = block(7, vec![vec![1; 40]], Some(vec![]));
        let mut out = Vec::new();
        serialize_block(&b, &mut out);
        let prev = [3u8; 32];
        for cut in 0..out.len() {
            assert!(plausible_start(&out[..cut], 7, Some(&prev)), "cut {cut}");
        }
        assert!(!plausible_start(&out, 8, Some(&prev)));
        assert!(!plausible_start(&out[..40], 7, Some(&[4u8; 32])));
        assert!(plausible_start(&out[..40], 7, None));
        assert!(!plausible_start(b"FBLK", 0, None));
    }

    #[test]
    fn check_prefix_accepts_strict_prefixes_only() {
        let b = block(9, vec![vec![1; 30], vec![2; 5]], Some(vec![vec![3]]));
        let mut out = Vec::new();
        serialize_block(&b, &mut out);
        let declared = out.len() as u64;
        for cut in 0..out.len() {
            assert_eq!(check_prefix(&out[..cut], declared), Ok(()), "cut {cut}");
        }
        assert_eq!(
            check_prefix(&out, declared),
            Err(DecodeError::TrailingBytes(0))
        );
        let mut more = out.clone();
        more.extend_from_slice(&[0; 3]);
        assert_eq!(
            check_prefix(&more, declared + 10),
            Err(DecodeError::TrailingBytes(3))
        );
        // A field longer than the declared record.
        assert!(check_prefix(&out[..40], 20).is_err());
    }

    fn arb_block() -> impl Strategy<Value = Block> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..40);
        (
            any::<u64>(),
            bytes(),
            bytes(),
            proptest::collection::vec(bytes(), 0..6),
            proptest::option::of(proptest::collection::vec(bytes(), 0..6)),
        )
            .prop_map(|(number, data_hash, previous_hash, data, metadata)| Block {
                header: Some(BlockHeader {
                    number,
                    previous_hash,
                    data_hash,
                }),
                data: Some(BlockData { data }),
                metadata: Some(BlockMetadata {
                    metadata: metadata.unwrap_or_default(),
                }),
            })
    }

    proptest! {
        #[test]
        fn encode_decode_round_trips(b in arb_block()) {
            let mut out = Vec::new();
            serialize_block(&b, &mut out);
            prop_assert_eq!(out.len(), serialized_len(&b));
            let view = BlockView::parse(&out).unwrap();
            prop_assert_eq!(view.to_block().encode_to_vec(), b.encode_to_vec());
            prop_assert_eq!(view.to_block(), b);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(view) = BlockView::parse(&bytes) {
                // Non-canonical varints parse too (as in Go), so compare
                // the re-parsed view, not the bytes.
                let mut out = Vec::new();
                serialize_block(&view.to_block(), &mut out);
                prop_assert_eq!(BlockView::parse(&out).unwrap(), view);
            }
            let _ = plausible_start(&bytes, 3, Some(&[1; 32]));
        }
    }
}
