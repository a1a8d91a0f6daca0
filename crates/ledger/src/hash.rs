//! Fabric's block header hash, for verifying the `previous_hash` chain:
//! `fabric_common::block::header_hash` (SHA-256 of the header's DER, with
//! golden vectors there), as the fixed-size value the ledger keeps.

use fabric_protos::common::BlockHeader;

/// SHA-256 of the DER-encoded block header.
pub(crate) fn header_hash(header: &BlockHeader) -> [u8; 32] {
    fabric_common::block::header_hash(header)
        .try_into()
        .expect("SHA-256 digests are 32 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fabric_test_vector() {
        let header = BlockHeader {
            number: 0,
            previous_hash: b"datahash".to_vec(),
            data_hash: fabric_common::block::data_hash(&[vec![0u8, 1, 2]]),
        };
        let hex: String = header_hash(&header)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "7d9bf4ccd0665d7ebec25ea15ad7872bb1b5392858fd7f21123b69e1a057d8ee"
        );
    }
}
