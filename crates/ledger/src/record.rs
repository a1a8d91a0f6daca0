//! The on-disk record format and the record-stream scanner.
//!
//! A block file is a sequence of records, nothing else (no file header):
//!
//! ```text
//! offset  size  field       meaning
//!      0     4  magic       b"FBLK"
//!      4     4  body_len    u32 little-endian, length of the body in bytes
//!      8     8  number      u64 little-endian, the block number (= header.number)
//!     16     4  body_crc    u32 little-endian, CRC-32C (Castagnoli) of the body
//!     20     4  header_crc  u32 little-endian, CRC-32C of bytes 0..20 of this header
//!     24     …  body        the protobuf-encoded `common.Block`, exactly as appended
//! ```
//!
//! The header has its own checksum so that a header can be recognised as
//! valid without reading its body. That keeps the search for "is there a
//! valid record after this bad one?" linear in the file size (see
//! [`scan_records`]) and means a corrupted `body_len` is caught before it is
//! used to size a buffer.

use std::convert::Infallible;
use std::fmt;

/// First four bytes of every record.
pub const RECORD_MAGIC: [u8; 4] = *b"FBLK";
/// Size of the fixed record header in bytes.
pub const RECORD_HEADER_SIZE: usize = 24;
/// Bytes read per step while searching for a valid header after a bad record.
const SEARCH_CHUNK_SIZE: usize = 64 * 1024;

const _: () = assert!(RECORD_HEADER_SIZE == 4 + 4 + 8 + 4 + 4);
const _: () = assert!(SEARCH_CHUNK_SIZE >= RECORD_HEADER_SIZE);

/// The decoded fixed header of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Length of the body that follows the header.
    pub body_len: u32,
    /// Block number of the block in the body.
    pub number: u64,
    /// CRC-32C of the body.
    pub body_crc: u32,
}

impl RecordHeader {
    /// The header for `body` holding block `number`.
    ///
    /// # Panics
    /// If the body is longer than `u32::MAX` bytes (callers check the
    /// configured block size limit first).
    pub fn for_body(number: u64, body: &[u8]) -> Self {
        let body_len = u32::try_from(body.len()).expect("record body longer than u32::MAX");
        RecordHeader {
            body_len,
            number,
            body_crc: crc32c::crc32c(body),
        }
    }

    /// The 24 header bytes.
    pub fn encode(&self) -> [u8; RECORD_HEADER_SIZE] {
        let mut out = [0u8; RECORD_HEADER_SIZE];
        out[0..4].copy_from_slice(&RECORD_MAGIC);
        out[4..8].copy_from_slice(&self.body_len.to_le_bytes());
        out[8..16].copy_from_slice(&self.number.to_le_bytes());
        out[16..20].copy_from_slice(&self.body_crc.to_le_bytes());
        let header_crc = crc32c::crc32c(&out[0..20]);
        out[20..24].copy_from_slice(&header_crc.to_le_bytes());
        out
    }

    /// Decodes and checks a header: magic, header checksum, and
    /// `body_len <= body_len_max`. The body is not looked at.
    pub fn decode(
        bytes: &[u8; RECORD_HEADER_SIZE],
        body_len_max: u32,
    ) -> Result<RecordHeader, RecordDefect> {
        if bytes[0..4] != RECORD_MAGIC {
            return Err(RecordDefect::BadMagic);
        }
        let header_crc = u32::from_le_bytes(bytes[20..24].try_into().expect("4 bytes"));
        if crc32c::crc32c(&bytes[0..20]) != header_crc {
            return Err(RecordDefect::HeaderChecksum);
        }
        let header = RecordHeader {
            body_len: u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")),
            number: u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")),
            body_crc: u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes")),
        };
        if header.body_len > body_len_max {
            return Err(RecordDefect::BodyTooLarge {
                body_len: header.body_len,
                body_len_max,
            });
        }
        Ok(header)
    }

    /// Size of the whole record (header and body) in bytes.
    pub fn record_len(&self) -> u64 {
        RECORD_HEADER_SIZE as u64 + u64::from(self.body_len)
    }
}

/// Appends one complete record (header and body) to `out`.
pub fn encode_record(number: u64, body: &[u8], out: &mut Vec<u8>) {
    let header = RecordHeader::for_body(number, body);
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(body);
}

/// Why the bytes at some offset are not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordDefect {
    /// Fewer than [`RECORD_HEADER_SIZE`] bytes are left.
    HeaderTruncated {
        /// Bytes left at the offset.
        available: u64,
    },
    /// The first four bytes are not [`RECORD_MAGIC`].
    BadMagic,
    /// The header checksum does not match.
    HeaderChecksum,
    /// The header is intact but announces a body over the size limit.
    BodyTooLarge {
        /// Announced body length.
        body_len: u32,
        /// Configured limit.
        body_len_max: u32,
    },
    /// The header is intact but the body runs past the end of the data.
    BodyTruncated {
        /// Announced body length.
        body_len: u32,
        /// Body bytes present.
        available: u64,
    },
    /// The body checksum does not match.
    BodyChecksum,
}

impl fmt::Display for RecordDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RecordDefect::HeaderTruncated { available } => {
                write!(
                    f,
                    "partial record header ({available} of {RECORD_HEADER_SIZE} bytes)"
                )
            }
            RecordDefect::BadMagic => write!(f, "bad record magic"),
            RecordDefect::HeaderChecksum => write!(f, "record header checksum mismatch"),
            RecordDefect::BodyTooLarge {
                body_len,
                body_len_max,
            } => write!(
                f,
                "record body of {body_len} bytes exceeds the limit of {body_len_max}"
            ),
            RecordDefect::BodyTruncated {
                body_len,
                available,
            } => write!(f, "partial record body ({available} of {body_len} bytes)"),
            RecordDefect::BodyChecksum => write!(f, "record body checksum mismatch"),
        }
    }
}

/// Where one valid record sits in the scanned bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordSpan {
    /// Offset of the record header.
    pub offset: u64,
    /// The record's header.
    pub header: RecordHeader,
}

impl RecordSpan {
    /// Offset of the body.
    pub fn body_offset(&self) -> u64 {
        self.offset + RECORD_HEADER_SIZE as u64
    }

    /// Offset just past the record.
    pub fn end(&self) -> u64 {
        self.offset + self.header.record_len()
    }
}

/// How a scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanStop {
    /// Every byte belongs to a valid record.
    Clean,
    /// The record at `offset` is bad and no valid record header follows it:
    /// what a crash in the middle of an append leaves behind. Truncating at
    /// `offset` restores a clean stream.
    TornTail {
        /// Offset of the bad record.
        offset: u64,
        /// What is wrong with it.
        defect: RecordDefect,
    },
    /// The record at `offset` is bad but a valid record header starts later,
    /// at `next_valid_header`: damage in the middle of the stream, which must
    /// not be truncated away.
    Corrupt {
        /// Offset of the bad record.
        offset: u64,
        /// What is wrong with it.
        defect: RecordDefect,
        /// Offset of the first valid header after the bad record.
        next_valid_header: u64,
    },
}

/// The result of [`scan_records`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanResult {
    /// The valid records, in order, from offset 0 without gaps.
    pub records: Vec<RecordSpan>,
    /// Length of the valid prefix: the end of the last valid record.
    pub valid_len: u64,
    /// How the scan ended.
    pub stop: ScanStop,
}

/// Parses a record stream held in memory. Pure, total and panic-free for
/// any input: the entry point for fuzzing (`cargo fuzz`) the file format.
///
/// Records are read from offset 0 while they are valid (magic, header
/// checksum, `body_len <= body_len_max`, whole body present, body checksum).
/// At the first bad record the rest of the bytes are searched, one offset at
/// a time, for a valid record *header* (magic, header checksum, length within
/// the limit; the body is not required). If one is found the stop is
/// [`ScanStop::Corrupt`], otherwise [`ScanStop::TornTail`].
///
/// Block numbers are not checked here; the ledger does that.
pub fn scan_records(bytes: &[u8], body_len_max: u32) -> ScanResult {
    let mut records = Vec::new();
    let scan = scan_source(bytes, body_len_max, |span, _body| {
        records.push(span);
        Ok::<(), Infallible>(())
    });
    let (valid_len, stop) = match scan {
        Ok(end) => end,
        Err(never) => match never {},
    };
    ScanResult {
        records,
        valid_len,
        stop,
    }
}

/// Random-access bytes that records are scanned from: a slice in memory or
/// an open file.
pub(crate) trait RecordSource {
    type Error;
    /// Total number of bytes.
    fn source_len(&self) -> u64;
    /// Fills `buf` from `offset`. Callers stay within `source_len`.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Self::Error>;
}

impl RecordSource for [u8] {
    type Error = Infallible;

    fn source_len(&self) -> u64 {
        self.len() as u64
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Infallible> {
        let start = usize::try_from(offset).expect("offset within slice");
        buf.copy_from_slice(&self[start..start + buf.len()]);
        Ok(())
    }
}

/// Scans `source` record by record, calling `on_record` with each valid
/// record and its body (in order). Memory use is one body (at most
/// `body_len_max`) plus one search chunk. Returns the valid length and how
/// the scan stopped; see [`scan_records`] for the rules.
pub(crate) fn scan_source<S, E>(
    source: &S,
    body_len_max: u32,
    mut on_record: impl FnMut(RecordSpan, &[u8]) -> Result<(), E>,
) -> Result<(u64, ScanStop), E>
where
    S: RecordSource + ?Sized,
    E: From<S::Error>,
{
    let source_len = source.source_len();
    let mut body = Vec::new();
    let mut offset = 0u64;
    loop {
        assert!(offset <= source_len);
        if offset == source_len {
            return Ok((offset, ScanStop::Clean));
        }
        match read_record(source, offset, body_len_max, &mut body)? {
            Ok(header) => {
                let span = RecordSpan { offset, header };
                assert_eq!(body.len(), header.body_len as usize);
                on_record(span, &body)?;
                offset = span.end();
            }
            Err(defect) => {
                let stop = match find_valid_header(source, offset + 1, body_len_max)? {
                    Some(next_valid_header) => ScanStop::Corrupt {
                        offset,
                        defect,
                        next_valid_header,
                    },
                    None => ScanStop::TornTail { offset, defect },
                };
                return Ok((offset, stop));
            }
        }
    }
}

/// Reads and fully checks the record at `offset`, leaving its body in `body`.
/// The body buffer is sized only after the header checksum and the length
/// limit passed and the body is known to fit in the source.
pub(crate) fn read_record<S: RecordSource + ?Sized>(
    source: &S,
    offset: u64,
    body_len_max: u32,
    body: &mut Vec<u8>,
) -> Result<Result<RecordHeader, RecordDefect>, S::Error> {
    let source_len = source.source_len();
    assert!(offset <= source_len);
    let available = source_len - offset;
    if available < RECORD_HEADER_SIZE as u64 {
        return Ok(Err(RecordDefect::HeaderTruncated { available }));
    }
    let mut header_bytes = [0u8; RECORD_HEADER_SIZE];
    source.read_exact_at(offset, &mut header_bytes)?;
    let header = match RecordHeader::decode(&header_bytes, body_len_max) {
        Ok(header) => header,
        Err(defect) => return Ok(Err(defect)),
    };
    let body_available = available - RECORD_HEADER_SIZE as u64;
    if u64::from(header.body_len) > body_available {
        return Ok(Err(RecordDefect::BodyTruncated {
            body_len: header.body_len,
            available: body_available,
        }));
    }
    body.clear();
    body.resize(header.body_len as usize, 0);
    source.read_exact_at(offset + RECORD_HEADER_SIZE as u64, body)?;
    if crc32c::crc32c(body) != header.body_crc {
        return Ok(Err(RecordDefect::BodyChecksum));
    }
    Ok(Ok(header))
}

/// The first offset `>= from` where a valid record header starts, if any.
/// Linear in the remaining length: each candidate costs one 20-byte CRC.
fn find_valid_header<S: RecordSource + ?Sized>(
    source: &S,
    from: u64,
    body_len_max: u32,
) -> Result<Option<u64>, S::Error> {
    let source_len = source.source_len();
    let mut window = vec![0u8; SEARCH_CHUNK_SIZE + RECORD_HEADER_SIZE - 1];
    let mut start = from;
    // Each step checks the candidates start..start + SEARCH_CHUNK_SIZE; the
    // window overlaps the next step by RECORD_HEADER_SIZE - 1 bytes.
    while start.saturating_add(RECORD_HEADER_SIZE as u64) <= source_len {
        let window_len = (source_len - start).min(window.len() as u64) as usize;
        let window = &mut window[..window_len];
        source.read_exact_at(start, window)?;
        for (i, candidate) in window.windows(RECORD_HEADER_SIZE).enumerate() {
            if candidate[0..4] != RECORD_MAGIC {
                continue;
            }
            let candidate: &[u8; RECORD_HEADER_SIZE] =
                candidate.try_into().expect("window of header size");
            if RecordHeader::decode(candidate, body_len_max).is_ok() {
                return Ok(Some(start + i as u64));
            }
        }
        start += SEARCH_CHUNK_SIZE as u64;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMIT: u32 = 1 << 20;

    fn stream(bodies: &[Vec<u8>]) -> (Vec<u8>, Vec<u64>) {
        let mut out = Vec::new();
        let mut offsets = Vec::new();
        for (number, body) in bodies.iter().enumerate() {
            offsets.push(out.len() as u64);
            encode_record(number as u64, body, &mut out);
        }
        (out, offsets)
    }

    #[test]
    fn header_round_trip() {
        let header = RecordHeader::for_body(7, b"hello");
        let bytes = header.encode();
        assert_eq!(&bytes[0..4], b"FBLK");
        assert_eq!(RecordHeader::decode(&bytes, LIMIT), Ok(header));
        assert_eq!(
            RecordHeader::decode(&bytes, 4),
            Err(RecordDefect::BodyTooLarge {
                body_len: 5,
                body_len_max: 4
            })
        );
        for i in 0..RECORD_HEADER_SIZE {
            let mut flipped = bytes;
            flipped[i] ^= 0x01;
            assert!(RecordHeader::decode(&flipped, LIMIT).is_err(), "byte {i}");
        }
    }

    #[test]
    fn empty_and_clean_streams() {
        let result = scan_records(&[], LIMIT);
        assert_eq!(result.stop, ScanStop::Clean);
        assert_eq!(result.valid_len, 0);

        let (bytes, offsets) = stream(&[b"a".to_vec(), vec![], vec![9; 1000]]);
        let result = scan_records(&bytes, LIMIT);
        assert_eq!(result.stop, ScanStop::Clean);
        assert_eq!(result.valid_len, bytes.len() as u64);
        let got: Vec<u64> = result.records.iter().map(|r| r.offset).collect();
        assert_eq!(got, offsets);
    }

    #[test]
    fn bad_record_followed_by_valid_header_is_corrupt() {
        let (mut bytes, offsets) = stream(&[vec![1; 50], vec![2; 50], vec![3; 50]]);
        bytes[offsets[1] as usize + 30] ^= 0xff;
        let result = scan_records(&bytes, LIMIT);
        assert_eq!(result.records.len(), 1);
        assert_eq!(
            result.stop,
            ScanStop::Corrupt {
                offset: offsets[1],
                defect: RecordDefect::BodyChecksum,
                next_valid_header: offsets[2],
            }
        );
    }

    #[test]
    fn bad_last_record_is_torn_tail() {
        let (mut bytes, offsets) = stream(&[vec![1; 50], vec![2; 50]]);
        bytes[offsets[1] as usize + 2] ^= 0xff;
        let result = scan_records(&bytes, LIMIT);
        assert_eq!(result.records.len(), 1);
        assert_eq!(
            result.stop,
            ScanStop::TornTail {
                offset: offsets[1],
                defect: RecordDefect::BadMagic
            }
        );
    }

    #[test]
    fn search_crosses_chunk_boundaries() {
        // A bad record, then a valid one placed so that its header straddles
        // the first search chunk boundary.
        let mut bytes = vec![0u8; SEARCH_CHUNK_SIZE - 5];
        encode_record(1, b"x", &mut bytes);
        let result = scan_records(&bytes, LIMIT);
        assert_eq!(
            result.stop,
            ScanStop::Corrupt {
                offset: 0,
                defect: RecordDefect::BadMagic,
                next_valid_header: (SEARCH_CHUNK_SIZE - 5) as u64,
            }
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..2048),
            limit in 0u32..4096,
        ) {
            let result = scan_records(&bytes, limit);
            prop_assert!(result.valid_len <= bytes.len() as u64);
            let mut offset = 0;
            for span in &result.records {
                prop_assert_eq!(span.offset, offset);
                offset = span.end();
            }
            prop_assert_eq!(offset, result.valid_len);
        }

        #[test]
        fn valid_prefix_survives_any_suffix(
            bodies in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..200), 0..8),
            suffix in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let (mut bytes, offsets) = stream(&bodies);
            let prefix_len = bytes.len() as u64;
            bytes.extend_from_slice(&suffix);
            let result = scan_records(&bytes, LIMIT);
            prop_assert!(result.records.len() >= bodies.len());
            let got: Vec<u64> =
                result.records.iter().take(bodies.len()).map(|r| r.offset).collect();
            prop_assert_eq!(got, offsets);
            prop_assert!(result.valid_len >= prefix_len);
        }

        #[test]
        fn every_truncation_of_last_record_is_torn_tail(
            bodies in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..100), 1..5),
            cut in any::<proptest::sample::Index>(),
        ) {
            let (bytes, offsets) = stream(&bodies);
            let last = *offsets.last().unwrap() as usize;
            let cut = last + cut.index(bytes.len() - last);
            let result = scan_records(&bytes[..cut], LIMIT);
            prop_assert_eq!(result.records.len(), bodies.len() - 1);
            prop_assert_eq!(result.valid_len, last as u64);
            let torn = matches!(result.stop, ScanStop::TornTail { .. })
                || (cut == last && result.stop == ScanStop::Clean);
            prop_assert!(torn, "{:?}", result.stop);
        }
    }
}
