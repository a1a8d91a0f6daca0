//! Resolution of a `SeekInfo` into a start and stop block number, as
//! Fabric's Deliver and file ledger iterator do it (`common/deliver/deliver.go`,
//! `common/ledger/blockledger/fileledger/impl.go`).

use fabric_protos::orderer::{seek_position::Type, SeekInfo};

use super::DeliverError;

/// Resolved positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeekRange {
    /// First block to send.
    pub start: u64,
    /// Last block to send (`u64::MAX`: follow forever).
    pub stop: u64,
}

/// Resolves `seek` against the current `height` (always ≥ 1: every channel
/// has a genesis block).
pub fn resolve(seek: &SeekInfo, height: u64) -> Result<SeekRange, DeliverError> {
    let (Some(start_pos), Some(stop_pos)) = (seek.start.as_ref(), seek.stop.as_ref()) else {
        return Err(DeliverError::MissingPosition);
    };
    let newest = height.saturating_sub(1);
    let start = match &start_pos.r#type {
        Some(Type::Oldest(_)) => 0,
        Some(Type::Newest(_)) => newest,
        Some(Type::Specified(s)) => {
            if s.number > height {
                // The file ledger answers a start beyond the height with NotFound.
                return Err(DeliverError::NotFound(format!(
                    "requested block {} is beyond the height {height}",
                    s.number
                )));
            }
            s.number
        }
        Some(Type::NextCommit(_)) => height,
        None => return Err(DeliverError::UnsupportedPosition("start")),
    };
    let stop = match &stop_pos.r#type {
        Some(Type::Oldest(_)) => start,
        Some(Type::Newest(_)) => {
            if start_pos == stop_pos {
                start
            } else {
                newest
            }
        }
        Some(Type::Specified(s)) => {
            if s.number < start {
                return Err(DeliverError::StopBeforeStart {
                    start,
                    stop: s.number,
                });
            }
            s.number
        }
        Some(Type::NextCommit(_)) | None => return Err(DeliverError::UnsupportedPosition("stop")),
    };
    Ok(SeekRange { start, stop })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_common::envelope::{seek_newest, seek_oldest, seek_specified};
    use fabric_protos::orderer::{SeekNextCommit, SeekPosition};

    fn seek(start: Option<SeekPosition>, stop: Option<SeekPosition>) -> SeekInfo {
        SeekInfo {
            start,
            stop,
            ..Default::default()
        }
    }

    fn next_commit() -> SeekPosition {
        SeekPosition {
            r#type: Some(Type::NextCommit(SeekNextCommit {})),
        }
    }

    #[test]
    fn seek_cases() {
        let h = 10; // blocks 0..=9
        let ok = |s: SeekInfo| resolve(&s, h).unwrap();
        assert_eq!(
            ok(seek(Some(seek_oldest()), Some(seek_oldest()))),
            SeekRange { start: 0, stop: 0 }
        );
        assert_eq!(
            ok(seek(Some(seek_oldest()), Some(seek_newest()))),
            SeekRange { start: 0, stop: 9 }
        );
        assert_eq!(
            ok(seek(Some(seek_newest()), Some(seek_newest()))),
            SeekRange { start: 9, stop: 9 }
        );
        assert_eq!(
            ok(seek(Some(seek_specified(3)), Some(seek_specified(5)))),
            SeekRange { start: 3, stop: 5 }
        );
        assert_eq!(
            ok(seek(Some(seek_specified(3)), Some(seek_oldest()))),
            SeekRange { start: 3, stop: 3 }
        );
        assert_eq!(
            ok(seek(Some(seek_specified(2)), Some(seek_newest()))),
            SeekRange { start: 2, stop: 9 }
        );
        assert_eq!(
            ok(seek(Some(seek_oldest()), Some(seek_specified(u64::MAX)))),
            SeekRange {
                start: 0,
                stop: u64::MAX
            }
        );
        // Start == height is allowed and waits for the next block.
        assert_eq!(
            ok(seek(Some(seek_specified(10)), Some(seek_specified(10)))),
            SeekRange {
                start: 10,
                stop: 10
            }
        );
        assert_eq!(
            ok(seek(Some(next_commit()), Some(seek_specified(u64::MAX)))).start,
            10
        );
        // Newest as stop with a different start uses the height now.
        assert_eq!(
            ok(seek(Some(seek_specified(9)), Some(seek_newest()))),
            SeekRange { start: 9, stop: 9 }
        );
    }

    #[test]
    fn seek_errors() {
        let h = 10;
        assert!(matches!(
            resolve(&seek(None, Some(seek_oldest())), h),
            Err(DeliverError::MissingPosition)
        ));
        assert!(matches!(
            resolve(&seek(Some(seek_oldest()), None), h),
            Err(DeliverError::MissingPosition)
        ));
        assert!(matches!(
            resolve(&seek(Some(seek_specified(11)), Some(seek_specified(11))), h),
            Err(DeliverError::NotFound(_))
        ));
        assert!(matches!(
            resolve(&seek(Some(seek_specified(5)), Some(seek_specified(4))), h),
            Err(DeliverError::StopBeforeStart { start: 5, stop: 4 })
        ));
        assert!(matches!(
            resolve(
                &seek(Some(SeekPosition { r#type: None }), Some(seek_oldest())),
                h
            ),
            Err(DeliverError::UnsupportedPosition("start"))
        ));
    }
}
