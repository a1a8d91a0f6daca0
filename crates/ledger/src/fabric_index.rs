//! Fabric's LevelDB block index (`<root>/index/`), and why it is set aside
//! before this orderer appends to a ledger root.
//!
//! # What Fabric does with it on start (read in Fabric's source)
//!
//! One goleveldb database under `<root>/index/` serves every channel. Per
//! channel it holds a checkpoint of the block files (v1.4.12
//! `fsblkstorage/blockfile_mgr.go` `checkpointInfo`: latest file number, its
//! size, last block number, chain empty; v2.5 `blkstorage/blockfile_mgr.go`
//! `blockfilesInfo`, the same fields) and the block-number → file-location
//! index. `newBlockfileMgr` (both versions) does on start:
//!
//! * **(a) no `index/` directory**: the database is created empty (v2.5
//!   `blockstore_provider.go` `NewProvider` opens it through `leveldbhelper`,
//!   which records the data format version in an empty database), so case
//!   (b) applies to every channel.
//! * **(b) no checkpoint for the channel** (`loadCurrentInfo` /
//!   `loadBlkfilesInfo` returns nil): the checkpoint is rebuilt from the
//!   files (`constructCheckpointInfoFromBlockFiles` in v1.4.12,
//!   `constructBlockfilesInfo` in v2.5's `blockfile_helper.go`): the last
//!   `blockfile_NNNNNN` is scanned for its last complete block, falling back
//!   to the file before when the last has none. Then the current file is
//!   truncated to the end of that block (`truncateFile`) and `syncIndex`
//!   indexes every block the index lacks, from block 0 when it is empty.
//!   This path reads everything we write correctly.
//! * **(c) a stale checkpoint** (Fabric's own, from before we appended):
//!   `syncCPInfoFromFS` (v1.4.12) / `syncBlockfilesInfoFromFS` (v2.5) looks
//!   only at the file the checkpoint names. If that file grew, it scans the
//!   new blocks in it and counts them in. **Files after it are never looked
//!   at**: blocks we wrote to new files are invisible to Fabric, which then
//!   takes its height from the checkpointed file and appends blocks whose
//!   numbers we already used, after its own `truncateFile` of the checkpointed
//!   file and into a next file it opens with `O_APPEND` — a forked, broken
//!   chain. Even the same-file case relies on the checkpoint's size being a
//!   record boundary of the current content.
//!
//! # What we do
//!
//! Before the first append of a [`crate::Ledger`] to a root holding
//! `index/`, [`retire_fabric_index`] renames it (never deletes it) to
//! `index.stale-<unix seconds>` and logs a warning. Fabric's orderer started
//! on the root later takes path (a)/(b) and rebuilds its index from the
//! block files. Opening and reading a ledger leave `index/` alone: while we
//! only read, Fabric's checkpoint stays true (truncating a torn tail never
//! removes a block Fabric checkpointed, since it only checkpoints complete
//! blocks).

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{io_error, Result};

/// Name of Fabric's index directory under the ledger root.
pub const FABRIC_INDEX_DIR: &str = "index";

/// Renames `<root>/index` to `<root>/index.stale-<unix seconds>` (with a
/// `.N` suffix if that exists) and syncs `root`. Returns the new path, or
/// `None` when there is no `index/` (including when another channel's
/// writer renamed it first).
pub fn retire_fabric_index(root: &Path) -> Result<Option<PathBuf>> {
    let index = root.join(FABRIC_INDEX_DIR);
    if !index.exists() {
        return Ok(None);
    }
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let base = format!("{FABRIC_INDEX_DIR}.stale-{seconds}");
    let mut target = root.join(&base);
    let mut n = 1;
    while target.exists() {
        target = root.join(format!("{base}.{n}"));
        n += 1;
    }
    match fs::rename(&index, &target) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(&index)(e)),
    }
    File::open(root)
        .and_then(|dir| dir.sync_all())
        .map_err(io_error(root))?;
    tracing::warn!(
        from = %index.display(),
        to = %target.display(),
        "moved Fabric's block index aside before appending: its checkpoint would go stale; \
         Fabric's orderer rebuilds the index from the block files"
    );
    Ok(Some(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_never_deletes() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(retire_fabric_index(root.path()).unwrap(), None);
        for round in 0..2 {
            let index = root.path().join("index");
            fs::create_dir(&index).unwrap();
            fs::write(index.join("CURRENT"), format!("MANIFEST-{round}")).unwrap();
            let moved = retire_fabric_index(root.path()).unwrap().unwrap();
            assert!(!index.exists());
            let name = moved.file_name().unwrap().to_str().unwrap().to_owned();
            assert!(name.starts_with("index.stale-"), "{name}");
            assert_eq!(
                fs::read_to_string(moved.join("CURRENT")).unwrap(),
                format!("MANIFEST-{round}")
            );
        }
        let stale = fs::read_dir(root.path()).unwrap().count();
        assert_eq!(stale, 2);
    }
}
