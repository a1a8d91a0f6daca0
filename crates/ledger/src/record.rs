//! Records in a block file, and the record-stream scanner.
//!
//! A block file is a sequence of records and nothing else, exactly as
//! Fabric's `blockfile_mgr.go` `addBlock` writes them:
//!
//! ```text
//! uvarint(len(B)) B        B = Fabric's block serialization (see `serialization`)
//! ```
//!
//! There is no magic, no checksum and no record header to resynchronise on,
//! so the scanner cannot tell "damage followed by good records" from
//! "garbage": it reads records from offset 0 while their length prefix is
//! sound and their bytes are all present, and stops at the first that is
//! not. It only reports what it found ([`ScanStop`]); whether a partial
//! last record may be dropped is the ledger's decision. Block checksums live
//! outside Fabric's files (see `checksums`).

use std::convert::Infallible;
use std::fmt;

use crate::serialization::{get_uvarint, Uvarint, UVARINT_LEN_MAX};

/// Why the bytes at some offset are not a complete record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordDefect {
    /// The bytes end inside the length prefix (every byte present has its
    /// continuation bit set).
    LengthTruncated {
        /// Bytes left at the offset.
        available: u64,
    },
    /// The length prefix is not a valid uvarint.
    LengthMalformed,
    /// The length prefix announces more than the configured block size limit.
    LengthOverLimit {
        /// Announced body length.
        body_len: u64,
        /// Configured limit.
        body_len_max: u32,
    },
    /// The length prefix is sound but the body runs past the end of the data.
    BodyTruncated {
        /// Announced body length.
        body_len: u64,
        /// Body bytes present.
        available: u64,
    },
}

impl RecordDefect {
    /// Whether the bytes simply end inside the record (what an interrupted
    /// append leaves), rather than being malformed.
    pub fn is_partial(&self) -> bool {
        matches!(
            self,
            RecordDefect::LengthTruncated { .. } | RecordDefect::BodyTruncated { .. }
        )
    }
}

impl fmt::Display for RecordDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RecordDefect::LengthTruncated { available } => {
                write!(f, "partial length prefix ({available} bytes)")
            }
            RecordDefect::LengthMalformed => write!(f, "malformed length prefix"),
            RecordDefect::LengthOverLimit {
                body_len,
                body_len_max,
            } => write!(
                f,
                "length prefix announces {body_len} bytes, over the block size limit of {body_len_max}"
            ),
            RecordDefect::BodyTruncated {
                body_len,
                available,
            } => write!(f, "partial record ({available} of {body_len} bytes)"),
        }
    }
}

/// Where one complete record sits in the scanned bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordSpan {
    /// Offset of the length prefix.
    pub offset: u64,
    /// Bytes of the length prefix.
    pub prefix_len: u8,
    /// Length of the body (Fabric's block serialization).
    pub body_len: u32,
}

impl RecordSpan {
    /// Offset of the body.
    pub fn body_offset(&self) -> u64 {
        self.offset + u64::from(self.prefix_len)
    }

    /// Offset just past the record.
    pub fn end(&self) -> u64 {
        self.body_offset() + u64::from(self.body_len)
    }
}

/// How a scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanStop {
    /// Every byte belongs to a complete record.
    Clean,
    /// The bytes end inside the record at `offset` (a partial length prefix
    /// or body): possibly a torn append, if it is the last file and the bytes
    /// present fit the block expected there.
    Partial {
        /// Offset of the partial record.
        offset: u64,
        /// What is missing.
        defect: RecordDefect,
    },
    /// The length prefix at `offset` is malformed or over the limit. Never
    /// the product of a torn append.
    Malformed {
        /// Offset of the bad record.
        offset: u64,
        /// What is wrong.
        defect: RecordDefect,
    },
}

/// The result of [`scan_records`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanResult {
    /// The complete records, in order, from offset 0 without gaps.
    pub records: Vec<RecordSpan>,
    /// End of the last complete record.
    pub valid_len: u64,
    /// How the scan ended.
    pub stop: ScanStop,
}

/// Splits a record stream held in memory into records. Pure, total and
/// panic-free for any input: the entry point for fuzzing the file format
/// (with [`crate::serialization::BlockView::parse`] for the bodies).
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

/// Scans `source` record by record, calling `on_record` with each complete
/// record and its body, in order. Memory use is one body (at most
/// `body_len_max`). Returns the end of the last complete record and how the
/// scan stopped.
pub(crate) fn scan_source<S, E>(
    source: &S,
    body_len_max: u32,
    mut on_record: impl FnMut(RecordSpan, &[u8]) -> Result<(), E>,
) -> Result<(u64, ScanStop), E>
where
    S: RecordSource + ?Sized,
    E: From<S::Error>,
{
    let mut body = Vec::new();
    let mut offset = 0u64;
    loop {
        if offset == source.source_len() {
            return Ok((offset, ScanStop::Clean));
        }
        match read_record(source, offset, body_len_max, &mut body)? {
            Ok(span) => {
                on_record(span, &body)?;
                offset = span.end();
            }
            Err(defect) if defect.is_partial() => {
                return Ok((offset, ScanStop::Partial { offset, defect }))
            }
            Err(defect) => return Ok((offset, ScanStop::Malformed { offset, defect })),
        }
    }
}

/// Reads the length prefix at `offset`.
fn read_prefix<S: RecordSource + ?Sized>(
    source: &S,
    offset: u64,
    body_len_max: u32,
) -> Result<Result<(u8, u32), RecordDefect>, S::Error> {
    let available = source.source_len() - offset;
    let mut prefix = [0u8; UVARINT_LEN_MAX];
    let prefix = &mut prefix[..available.min(UVARINT_LEN_MAX as u64) as usize];
    source.read_exact_at(offset, prefix)?;
    Ok(match get_uvarint(prefix) {
        Uvarint::Incomplete => Err(RecordDefect::LengthTruncated { available }),
        Uvarint::Malformed => Err(RecordDefect::LengthMalformed),
        Uvarint::Value(body_len, _) if body_len > u64::from(body_len_max) => {
            Err(RecordDefect::LengthOverLimit {
                body_len,
                body_len_max,
            })
        }
        Uvarint::Value(body_len, n) => Ok((n as u8, body_len as u32)),
    })
}

/// Reads the record at `offset`, leaving its body in `body`. The body
/// buffer is sized only after the length passed the limit and is known to
/// fit in the source.
pub(crate) fn read_record<S: RecordSource + ?Sized>(
    source: &S,
    offset: u64,
    body_len_max: u32,
    body: &mut Vec<u8>,
) -> Result<Result<RecordSpan, RecordDefect>, S::Error> {
    assert!(offset <= source.source_len());
    let (prefix_len, body_len) = match read_prefix(source, offset, body_len_max)? {
        Ok(prefix) => prefix,
        Err(defect) => return Ok(Err(defect)),
    };
    let span = RecordSpan {
        offset,
        prefix_len,
        body_len,
    };
    let available = source.source_len() - span.body_offset();
    if u64::from(body_len) > available {
        return Ok(Err(RecordDefect::BodyTruncated {
            body_len: body_len.into(),
            available,
        }));
    }
    body.clear();
    body.resize(body_len as usize, 0);
    source.read_exact_at(span.body_offset(), body)?;
    Ok(Ok(span))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serialization::put_uvarint;
    use proptest::prelude::*;

    const LIMIT: u32 = 1 << 20;

    fn stream(bodies: &[Vec<u8>]) -> (Vec<u8>, Vec<u64>) {
        let mut out = Vec::new();
        let mut offsets = Vec::new();
        for body in bodies {
            offsets.push(out.len() as u64);
            put_uvarint(&mut out, body.len() as u64);
            out.extend_from_slice(body);
        }
        (out, offsets)
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
        assert_eq!(result.records[2].prefix_len, 2);
        assert_eq!(result.records[2].body_len, 1000);
    }

    #[test]
    fn over_limit_and_malformed_prefixes_are_not_partial() {
        let (mut bytes, _) = stream(&[vec![1; 50]]);
        let result = scan_records(&bytes, 49);
        assert_eq!(
            result.stop,
            ScanStop::Malformed {
                offset: 0,
                defect: RecordDefect::LengthOverLimit {
                    body_len: 50,
                    body_len_max: 49
                }
            }
        );
        bytes.extend_from_slice(&[0xff; 12]);
        let result = scan_records(&bytes, LIMIT);
        assert_eq!(
            result.stop,
            ScanStop::Malformed {
                offset: 51,
                defect: RecordDefect::LengthMalformed
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
        fn every_truncation_of_last_record_is_partial(
            bodies in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..300), 1..5),
            cut in any::<proptest::sample::Index>(),
        ) {
            let (bytes, offsets) = stream(&bodies);
            let last = *offsets.last().unwrap() as usize;
            let cut = last + cut.index(bytes.len() - last);
            let result = scan_records(&bytes[..cut], LIMIT);
            prop_assert_eq!(result.records.len(), bodies.len() - 1);
            prop_assert_eq!(result.valid_len, last as u64);
            let partial = matches!(result.stop, ScanStop::Partial { offset, .. } if offset == last as u64)
                || (cut == last && result.stop == ScanStop::Clean);
            prop_assert!(partial, "{:?}", result.stop);
        }
    }
}
