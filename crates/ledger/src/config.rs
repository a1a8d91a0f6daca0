//! Ledger limits.

use crate::error::{LedgerError, Result};

/// Limits of one channel's ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerConfig {
    /// A new block file is started when appending a record would make the
    /// current file larger than this (Fabric's `addBlock` rule, which also
    /// applies to an empty current file: a record larger than this gets a
    /// new file of its own and leaves the current one empty). Fabric's
    /// `defaultMaxBlockfileSize`: 64 MiB, used by its orderer.
    pub file_size_max: u64,
    /// Largest encoded block accepted by `append` and by `open`. Bounds every
    /// buffer the ledger allocates for one block, so a corrupted length field
    /// cannot make it allocate more.
    pub block_size_max: u32,
    /// Most blocks accepted by one `append_batch` call.
    pub batch_blocks_max: usize,
}

impl LedgerConfig {
    /// The defaults: 64 MiB files, 1 GiB blocks, 1024 blocks per batch.
    pub const DEFAULT: LedgerConfig = LedgerConfig {
        file_size_max: 64 * 1024 * 1024,
        block_size_max: 1024 * 1024 * 1024,
        batch_blocks_max: 1024,
    };

    /// Smallest allowed `file_size_max` (a guard against a typo in the
    /// configuration; any block larger than the limit gets its own file).
    pub const FILE_SIZE_MAX_MIN: u64 = 64;

    /// Checks the rules and returns the config unchanged.
    pub fn validate(self) -> Result<LedgerConfig> {
        if self.file_size_max < Self::FILE_SIZE_MAX_MIN {
            return Err(LedgerError::InvalidConfig(
                "file_size_max must be at least 64 bytes",
            ));
        }
        if self.block_size_max == 0 {
            return Err(LedgerError::InvalidConfig("block_size_max must be > 0"));
        }
        if self.batch_blocks_max == 0 {
            return Err(LedgerError::InvalidConfig("batch_blocks_max must be > 0"));
        }
        Ok(self)
    }
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(
            LedgerConfig::default().validate().unwrap(),
            LedgerConfig::DEFAULT
        );
    }

    #[test]
    fn rejects_broken_limits() {
        let bad = [
            LedgerConfig {
                file_size_max: 24,
                ..LedgerConfig::DEFAULT
            },
            LedgerConfig {
                block_size_max: 0,
                ..LedgerConfig::DEFAULT
            },
            LedgerConfig {
                batch_blocks_max: 0,
                ..LedgerConfig::DEFAULT
            },
        ];
        for config in bad {
            assert!(config.validate().is_err(), "{config:?}");
        }
    }
}
