//! Block hashing and assembly exactly as Fabric peers verify them.
//!
//! * header hash = SHA-256(DER SEQUENCE { INTEGER number, OCTET STRING
//!   previous_hash, OCTET STRING data_hash }) (Fabric `protoutil.BlockHeaderHash`);
//! * data hash = SHA-256 of the plain concatenation of the data entries;
//! * five metadata slots (SIGNATURES, LAST_CONFIG, TRANSACTIONS_FILTER,
//!   ORDERER, COMMIT_HASH), as Fabric v1.4.2+ allocates them.

use fabric_protos::common::{
    Block, BlockData, BlockHeader, BlockMetadata, LastConfig, Metadata, OrdererBlockMetadata,
};
use prost::Message;
use sha2::{Digest, Sha256};

/// Number of metadata slots in a block (Fabric v1.4.2 and later).
pub const METADATA_SLOTS: usize = 5;
/// Index of the SIGNATURES metadata slot.
pub const SIGNATURES: usize = 0;
/// Index of the LAST_CONFIG metadata slot.
pub const LAST_CONFIG: usize = 1;
/// Index of the TRANSACTIONS_FILTER metadata slot.
pub const TRANSACTIONS_FILTER: usize = 2;
/// Index of the (deprecated) ORDERER metadata slot.
pub const ORDERER: usize = 3;
/// Index of the COMMIT_HASH metadata slot.
pub const COMMIT_HASH: usize = 4;

fn der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn der_octets(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(0x04);
    der_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// DER encoding of the block header as Fabric hashes it.
pub fn header_bytes(header: &BlockHeader) -> Vec<u8> {
    // INTEGER: minimal big-endian two's complement of a non-negative number.
    let be = header.number.to_be_bytes();
    let skip = be.iter().take_while(|b| **b == 0).count().min(7);
    let mut int = Vec::with_capacity(9);
    if be[skip] & 0x80 != 0 {
        int.push(0);
    }
    int.extend_from_slice(&be[skip..]);

    let mut body =
        Vec::with_capacity(int.len() + header.previous_hash.len() + header.data_hash.len() + 12);
    body.push(0x02);
    der_len(&mut body, int.len());
    body.extend_from_slice(&int);
    der_octets(&mut body, &header.previous_hash);
    der_octets(&mut body, &header.data_hash);

    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(0x30);
    der_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

/// SHA-256 of [`header_bytes`]: the value the next block's `previous_hash` holds.
pub fn header_hash(header: &BlockHeader) -> Vec<u8> {
    Sha256::digest(header_bytes(header)).to_vec()
}

/// SHA-256 over the concatenation of the data entries (no length prefixes).
pub fn data_hash<T: AsRef<[u8]>>(data: &[T]) -> Vec<u8> {
    let mut h = Sha256::new();
    for d in data {
        h.update(d.as_ref());
    }
    h.finalize().to_vec()
}

/// A new block with its header and data hash set and five empty metadata slots.
pub fn new_block(number: u64, previous_hash: Vec<u8>, data: Vec<Vec<u8>>) -> Block {
    let header = BlockHeader {
        number,
        previous_hash,
        data_hash: data_hash(&data),
    };
    Block {
        header: Some(header),
        data: Some(BlockData { data }),
        metadata: Some(BlockMetadata {
            metadata: vec![Vec::new(); METADATA_SLOTS],
        }),
    }
}

/// The metadata slot `index` of a block decoded as `common.Metadata`.
pub fn metadata_at(block: &Block, index: usize) -> Option<Metadata> {
    let bytes = block.metadata.as_ref()?.metadata.get(index)?;
    Metadata::decode(bytes.as_slice()).ok()
}

/// The LAST_CONFIG index recorded in a block: from the signed
/// `OrdererBlockMetadata` (v1.4.1+) if present, else from the LAST_CONFIG slot.
pub fn last_config_index(block: &Block) -> Option<u64> {
    if let Some(md) = metadata_at(block, SIGNATURES) {
        if !md.value.is_empty() {
            if let Ok(obm) = OrdererBlockMetadata::decode(md.value.as_slice()) {
                if let Some(lc) = obm.last_config {
                    return Some(lc.index);
                }
            }
        }
    }
    let md = metadata_at(block, LAST_CONFIG)?;
    LastConfig::decode(md.value.as_slice())
        .ok()
        .map(|lc| lc.index)
}

/// The consenter metadata (`Metadata.value`) stored in the signed
/// `OrdererBlockMetadata`, falling back to the ORDERER slot (pre-1.4.1 blocks).
pub fn consenter_metadata(block: &Block) -> Option<Vec<u8>> {
    if let Some(md) = metadata_at(block, SIGNATURES) {
        if let Ok(obm) = OrdererBlockMetadata::decode(md.value.as_slice()) {
            if !obm.consenter_metadata.is_empty() {
                let inner = Metadata::decode(obm.consenter_metadata.as_slice()).ok()?;
                return Some(inner.value);
            }
        }
    }
    metadata_at(block, ORDERER)
        .map(|m| m.value)
        .filter(|v| !v.is_empty())
}

/// Why a sequence of blocks is not a valid hash chain.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChainError {
    /// A block has no header.
    #[error("block at position {0} has no header")]
    MissingHeader(usize),
    /// Block numbers are not consecutive.
    #[error("block number {found} where {expected} was expected")]
    Number {
        /// The number the chain needed.
        expected: u64,
        /// The number found.
        found: u64,
    },
    /// `previous_hash` does not match the previous header's hash.
    #[error("block {0}: previous_hash does not match the hash of the previous block")]
    PreviousHash(u64),
    /// `data_hash` does not match the data.
    #[error("block {0}: data_hash does not match its data")]
    DataHash(u64),
}

/// Checks one block against its predecessor's header (if any): number,
/// previous hash and data hash.
pub fn verify_link(prev: Option<&BlockHeader>, block: &Block) -> Result<(), ChainError> {
    let header = block.header.as_ref().ok_or(ChainError::MissingHeader(0))?;
    let expected = prev.map_or(0, |p| p.number + 1);
    if header.number != expected {
        return Err(ChainError::Number {
            expected,
            found: header.number,
        });
    }
    if let Some(p) = prev {
        if header.previous_hash != header_hash(p) {
            return Err(ChainError::PreviousHash(header.number));
        }
    }
    let data = block
        .data
        .as_ref()
        .map(|d| d.data.as_slice())
        .unwrap_or(&[]);
    if header.data_hash != data_hash(data) {
        return Err(ChainError::DataHash(header.number));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_vector_matches_fabric_construction() {
        // Same construction as Fabric's protoutil TestNewBlock.
        let data = vec![vec![0u8, 1, 2]];
        let dh = data_hash(&data);
        assert_eq!(
            hex::encode(&dh),
            "ae4b3280e56e2faf83f414a6e3dabe9d5fbe18976544c05fed121accb85b53fc"
        );
        let header = BlockHeader {
            number: 0,
            previous_hash: b"datahash".to_vec(),
            data_hash: dh.clone(),
        };
        let der = header_bytes(&header);
        assert_eq!(
            hex::encode(&der[..17]),
            "302f020100040864617461686173680420"
        );
        assert_eq!(&der[17..], dh.as_slice());
        assert_eq!(
            hex::encode(header_hash(&header)),
            "7d9bf4ccd0665d7ebec25ea15ad7872bb1b5392858fd7f21123b69e1a057d8ee"
        );
    }

    #[test]
    fn integer_encoding_is_minimal_twos_complement() {
        let enc = |n: u64| {
            let h = BlockHeader {
                number: n,
                previous_hash: vec![],
                data_hash: vec![],
            };
            let der = header_bytes(&h);
            // 30 len 02 ilen i... 04 00 04 00
            let ilen = der[3] as usize;
            hex::encode(&der[2..4 + ilen])
        };
        assert_eq!(enc(0), "020100");
        assert_eq!(enc(127), "02017f");
        assert_eq!(enc(128), "02020080");
        assert_eq!(enc(256), "02020100");
        assert_eq!(enc(1 << 56), "02080100000000000000");
        assert_eq!(enc(u64::MAX), "020900ffffffffffffffff");
        let h = BlockHeader {
            number: 0,
            previous_hash: vec![],
            data_hash: vec![],
        };
        assert_eq!(
            hex::encode(header_bytes(&h)),
            "3007020100040004 00".replace(' ', "")
        );
    }

    #[test]
    fn long_form_lengths() {
        let h = BlockHeader {
            number: 5,
            previous_hash: vec![7; 200],
            data_hash: vec![9; 32],
        };
        let der = header_bytes(&h);
        // body = 3 + (3 + 200) + 34 = 240 -> 0x81 0xf0
        assert_eq!(&der[..3], &[0x30, 0x81, 0xf0]);
        assert_eq!(&der[6..9], &[0x04, 0x81, 200]);
        // Two length bytes from 256: body = 3 + (4 + 0x1230) + 34 = 0x1259.
        let h = BlockHeader {
            number: 5,
            previous_hash: vec![7; 0x1230],
            data_hash: vec![9; 32],
        };
        let der = header_bytes(&h);
        assert_eq!(&der[..4], &[0x30, 0x82, 0x12, 0x59]);
        assert_eq!(&der[7..11], &[0x04, 0x82, 0x12, 0x30]);
    }

    #[test]
    fn empty_data_hash() {
        let empty: Vec<Vec<u8>> = vec![];
        assert_eq!(
            hex::encode(data_hash(&empty)),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn chain_links_verify_and_detect_tampering() {
        let b0 = new_block(0, vec![], vec![b"a".to_vec()]);
        let b1 = new_block(
            1,
            header_hash(b0.header.as_ref().unwrap()),
            vec![b"b".to_vec()],
        );
        assert_eq!(verify_link(None, &b0), Ok(()));
        assert_eq!(verify_link(b0.header.as_ref(), &b1), Ok(()));
        let mut bad = b1.clone();
        bad.data.as_mut().unwrap().data[0] = b"c".to_vec();
        assert_eq!(
            verify_link(b0.header.as_ref(), &bad),
            Err(ChainError::DataHash(1))
        );
        let mut bad = b1.clone();
        bad.header.as_mut().unwrap().previous_hash[0] ^= 1;
        assert_eq!(
            verify_link(b0.header.as_ref(), &bad),
            Err(ChainError::PreviousHash(1))
        );
    }

    proptest::proptest! {
        #[test]
        fn der_length_is_consistent(n: u64, p in proptest::collection::vec(0u8.., 0..300),
                                    d in proptest::collection::vec(0u8.., 0..300)) {
            let h = BlockHeader { number: n, previous_hash: p, data_hash: d };
            let der = header_bytes(&h);
            proptest::prop_assert_eq!(der[0], 0x30);
            let (len, hdr) = if der[1] < 0x80 { (der[1] as usize, 2) } else {
                let k = (der[1] & 0x7f) as usize;
                (der[2..2 + k].iter().fold(0usize, |a, b| a << 8 | *b as usize), 2 + k)
            };
            proptest::prop_assert_eq!(len + hdr, der.len());
        }
    }
}
