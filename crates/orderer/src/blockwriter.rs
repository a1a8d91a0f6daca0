//! ⑥ Block assembly and signing (Fabric `multichannel/blockwriter.go`):
//! number, previous hash, data hash; SIGNATURES carries the signed
//! `OrdererBlockMetadata{LastConfig, consenter_metadata}`; LAST_CONFIG holds
//! `LastConfig` (unsigned, as in v1.4.1+ and v2.x).

use std::sync::Arc;

use fabric_common::block::{self, header_bytes, header_hash, LAST_CONFIG, SIGNATURES};
use fabric_common::msp::LocalSigner;
use fabric_protos::common::{
    Block, BlockHeader, LastConfig, Metadata, MetadataSignature, OrdererBlockMetadata,
};
use prost::Message;

/// Builds and signs the next block of one chain. Owned by the chain task.
#[derive(Debug)]
pub struct BlockWriter {
    signer: Arc<LocalSigner>,
    last_header: Option<BlockHeader>,
    last_config_index: u64,
}

impl BlockWriter {
    /// Starts after `last` (the ledger's last block), or before genesis.
    pub fn new(signer: Arc<LocalSigner>, last: Option<&Block>) -> Self {
        let last_header = last.and_then(|b| b.header.clone());
        let last_config_index = last.and_then(block::last_config_index).unwrap_or(0);
        Self {
            signer,
            last_header,
            last_config_index,
        }
    }

    /// Continues after `last`, a block appended without this writer (pulled
    /// from another OSN by catch-up).
    pub fn restart_after(&mut self, last: &Block) {
        self.last_header = last.header.clone();
        self.last_config_index = block::last_config_index(last).unwrap_or(0);
    }

    /// Number of the next block.
    pub fn next_number(&self) -> u64 {
        self.last_header.as_ref().map_or(0, |h| h.number + 1)
    }

    /// The LAST_CONFIG index in force.
    pub fn last_config_index(&self) -> u64 {
        self.last_config_index
    }

    /// Assembles, signs and returns the next block holding `data`.
    /// `is_config` marks a config block (LAST_CONFIG then points to itself);
    /// `consenter_metadata` is the consenter's `Metadata.value` (empty for solo).
    pub fn next_block(
        &mut self,
        data: Vec<Vec<u8>>,
        is_config: bool,
        consenter_metadata: &[u8],
    ) -> Block {
        let number = self.next_number();
        let prev = self
            .last_header
            .as_ref()
            .map(header_hash)
            .unwrap_or_default();
        let mut blk = block::new_block(number, prev, data);
        if is_config {
            self.last_config_index = number;
        }
        let header = blk.header.clone().unwrap_or_default();
        let obm = OrdererBlockMetadata {
            last_config: Some(LastConfig {
                index: self.last_config_index,
            }),
            consenter_metadata: Metadata {
                value: consenter_metadata.to_vec(),
                signatures: vec![],
            }
            .encode_to_vec(),
        }
        .encode_to_vec();
        let shdr = self.signer.new_signature_header().encode_to_vec();
        let mut signed = Vec::with_capacity(obm.len() + shdr.len() + 80);
        signed.extend_from_slice(&obm);
        signed.extend_from_slice(&shdr);
        signed.extend_from_slice(&header_bytes(&header));
        let signature = self.signer.sign(&signed);
        let md = blk.metadata.get_or_insert_with(Default::default);
        md.metadata[SIGNATURES] = Metadata {
            value: obm,
            signatures: vec![MetadataSignature {
                signature_header: shdr,
                signature,
            }],
        }
        .encode_to_vec();
        md.metadata[LAST_CONFIG] = Metadata {
            value: LastConfig {
                index: self.last_config_index,
            }
            .encode_to_vec(),
            signatures: vec![],
        }
        .encode_to_vec();
        self.last_header = Some(header);
        blk
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_common::devcrypto::{DevOrg, NodeOu};
    use fabric_protos::common::SignatureHeader;
    use fabric_protos::msp::SerializedIdentity;

    #[test]
    fn blocks_chain_and_carry_a_verifiable_orderer_signature() {
        let dir = tempfile::tempdir().unwrap();
        let org = DevOrg::create(dir.path(), "SampleOrg", "example.com").unwrap();
        let msp = org.issue("orderer.example.com", NodeOu::Orderer).unwrap();
        let signer = Arc::new(LocalSigner::load(&msp, "SampleOrg").unwrap());
        let genesis = block::new_block(0, vec![], vec![b"config".to_vec()]);
        let mut w = BlockWriter::new(signer, Some(&genesis));
        let b1 = w.next_block(vec![b"tx1".to_vec()], false, &[]);
        let b2 = w.next_block(vec![b"cfg".to_vec()], true, &[]);
        let b3 = w.next_block(vec![b"tx2".to_vec()], false, &[]);
        block::verify_link(genesis.header.as_ref(), &b1).unwrap();
        block::verify_link(b1.header.as_ref(), &b2).unwrap();
        block::verify_link(b2.header.as_ref(), &b3).unwrap();
        assert_eq!(block::last_config_index(&b1), Some(0));
        assert_eq!(block::last_config_index(&b2), Some(2));
        assert_eq!(block::last_config_index(&b3), Some(2));
        for b in [&b1, &b2, &b3] {
            let md = block::metadata_at(b, SIGNATURES).unwrap();
            let sig = &md.signatures[0];
            let shdr = SignatureHeader::decode(sig.signature_header.as_slice()).unwrap();
            let id = SerializedIdentity::decode(shdr.creator.as_slice()).unwrap();
            assert_eq!(id.mspid, "SampleOrg");
            let pk = fabric_common::msp::pem_cert_public_key(&id.id_bytes).unwrap();
            let mut msg = md.value.clone();
            msg.extend_from_slice(&sig.signature_header);
            msg.extend_from_slice(&header_bytes(b.header.as_ref().unwrap()));
            fabric_common::crypto::verify_p256(&pk, &msg, &sig.signature).unwrap();
            assert_eq!(b.metadata.as_ref().unwrap().metadata.len(), 5);
        }
    }
}
