//! `orderer ledger verify`: the offline check of a channel's chain that an
//! operator runs before handing a data directory to another orderer binary.
//!
//! The ledger crate walks the block files read-only (numbering, hash chain,
//! data hashes, the record framing, each problem with its file and offset);
//! this module adds what needs the channel config: every block after the
//! genesis block must carry orderer signatures that satisfy the channel's
//! `/Channel/Orderer/BlockValidation` policy as it stood *before* that block
//! (a config block is checked with the previous config, as a peer does), and
//! each config block replaces the policies for the blocks after it.

use std::path::Path;

use fabric_common::block::{header_bytes, metadata_at, SIGNATURES};
use fabric_ledger::{verify_channel_blocks, ChannelReport, LedgerConfig, LedgerError};
use fabric_msp::policy::SignedData;
use fabric_protos::common::{
    Block, ChannelHeader, Envelope, HeaderType, MetadataSignature, Payload, SignatureHeader,
};
use prost::Message;

use crate::channelconfig::ChannelConfig;
use crate::policy::ChannelPolicies;

/// The policy every block's orderer signatures must satisfy.
pub const BLOCK_VALIDATION: &str = "/Channel/Orderer/BlockValidation";

/// Why a block fails the check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockCheckError {
    /// The first block is not a config block: there is no channel config.
    #[error("block 0 is not a config (genesis) block: {0}")]
    NoGenesis(String),
    /// A config block's config cannot be used.
    #[error("block {number}: its channel config cannot be used: {reason}")]
    BadConfig { number: u64, reason: String },
    /// The SIGNATURES metadata is missing or does not decode.
    #[error("block {0}: no orderer signatures (SIGNATURES metadata missing or undecodable)")]
    NoSignatures(u64),
    /// The signatures do not satisfy the policy.
    #[error("block {number}: orderer signatures do not satisfy {BLOCK_VALIDATION}: {reason}")]
    PolicyNotMet { number: u64, reason: String },
}

/// Checks a channel's blocks in order, tracking the config in force.
#[derive(Debug)]
pub struct SignatureChecker {
    policies: Option<ChannelPolicies>,
}

impl Default for SignatureChecker {
    fn default() -> Self {
        Self::new()
    }
}

impl SignatureChecker {
    /// A checker that expects the genesis block first.
    pub fn new() -> Self {
        Self { policies: None }
    }

    /// Checks the next block of the chain (blocks must come in order,
    /// starting at 0; numbering and hashes are the ledger walk's job).
    pub fn check(&mut self, block: &Block) -> Result<(), BlockCheckError> {
        let number = block.header.as_ref().map_or(0, |h| h.number);
        match &self.policies {
            None => {
                let policies =
                    policies_of(block).map_err(|e| BlockCheckError::NoGenesis(e.to_string()))?;
                self.policies = Some(policies);
                return Ok(());
            }
            Some(policies) => verify_signatures(policies, block, number)?,
        }
        if is_config_block(block) {
            let policies = policies_of(block).map_err(|e| BlockCheckError::BadConfig {
                number,
                reason: e.to_string(),
            })?;
            self.policies = Some(policies);
        }
        Ok(())
    }
}

/// The outcome of one channel's check.
#[derive(Debug)]
pub struct ChannelOutcome {
    /// The channel ID (its folder under `chains/`).
    pub channel_id: String,
    /// What the walk found, or the first problem (file, offset, reason).
    pub result: Result<ChannelReport, LedgerError>,
}

/// Checks every channel under `<root>/chains`, read-only: the ledger walk
/// of each and the orderer signatures of every block. Fails only when the
/// folder cannot be listed.
pub fn verify_ledger(root: &Path) -> anyhow::Result<Vec<ChannelOutcome>> {
    let mut out = Vec::new();
    for channel_id in crate::server::existing_channels(root)? {
        let mut checker = SignatureChecker::new();
        let result = verify_channel_blocks(root, &channel_id, &LedgerConfig::DEFAULT, &mut |b| {
            checker.check(b).map_err(|e| e.to_string())
        });
        out.push(ChannelOutcome { channel_id, result });
    }
    Ok(out)
}

/// One line per channel, as `orderer ledger verify` prints it.
pub fn outcome_line(o: &ChannelOutcome) -> String {
    match &o.result {
        Ok(r) => {
            let torn = r.torn_tail.as_ref().map_or(String::new(), |t| {
                format!(
                    "; a partial last record ({} bytes at offset {} of {}) that starting the \
                     orderer would remove",
                    t.bytes,
                    t.offset,
                    t.file.display()
                )
            });
            format!(
                "OK channel {}: {} blocks in {} block file(s): numbering, hash chain, data hashes, \
                 orderer signatures ({} blocks also against their checksums){torn}",
                o.channel_id, r.height, r.files, r.checksummed
            )
        }
        Err(e) => format!("FAIL channel {}: {e}", o.channel_id),
    }
}

fn policies_of(block: &Block) -> Result<ChannelPolicies, String> {
    let cc = ChannelConfig::from_block(block).map_err(|e| e.to_string())?;
    ChannelPolicies::from_config(&cc.config).map_err(|e| e.to_string())
}

/// Whether the block holds one CONFIG envelope (an ORDERER_TRANSACTION on
/// the system channel creates another channel and changes nothing here).
pub fn is_config_block(block: &Block) -> bool {
    let Some(data) = block.data.as_ref().filter(|d| d.data.len() == 1) else {
        return false;
    };
    let header_type = Envelope::decode(data.data[0].as_slice())
        .ok()
        .and_then(|env| Payload::decode(env.payload.as_slice()).ok())
        .and_then(|p| p.header)
        .and_then(|h| ChannelHeader::decode(h.channel_header.as_slice()).ok())
        .map(|ch| ch.r#type);
    header_type == Some(HeaderType::Config as i32)
}

/// The signed data of each orderer signature on the block: the signature
/// covers `value || signature_header || DER(header)`.
pub fn block_signed_data(block: &Block) -> Option<Vec<SignedData>> {
    let header = block.header.as_ref()?;
    let md = metadata_at(block, SIGNATURES)?;
    if md.signatures.is_empty() {
        return None;
    }
    let header_der = header_bytes(header);
    let one = |s: &MetadataSignature| {
        let sh = SignatureHeader::decode(s.signature_header.as_slice()).ok()?;
        let mut data = md.value.clone();
        data.extend_from_slice(&s.signature_header);
        data.extend_from_slice(&header_der);
        Some(SignedData {
            data,
            identity: sh.creator,
            signature: s.signature.clone(),
        })
    };
    md.signatures.iter().map(one).collect()
}

/// Whether `block`'s orderer signatures satisfy `/Channel/Orderer/BlockValidation` of `policies`.
pub(crate) fn verify_signatures(
    policies: &ChannelPolicies,
    block: &Block,
    number: u64,
) -> Result<(), BlockCheckError> {
    let signed = block_signed_data(block).ok_or(BlockCheckError::NoSignatures(number))?;
    policies
        .evaluate(BLOCK_VALIDATION, &signed)
        .map_err(|e| BlockCheckError::PolicyNotMet {
            number,
            reason: e.to_string(),
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use fabric_common::devcrypto::{DevOrg, NodeOu};
    use fabric_common::msp::LocalSigner;

    use super::*;
    use crate::blockwriter::BlockWriter;
    use crate::devnet::DevNet;

    /// A dev network's genesis block, its orderer's block writer, and a
    /// signer of the same MSP ID under a CA the channel does not know
    /// (shared with `consensus::kafka::catchup`'s tests).
    pub(crate) struct Fixture {
        pub(crate) _dir: tempfile::TempDir,
        pub(crate) genesis: Block,
        pub(crate) writer: BlockWriter,
        pub(crate) stranger: Arc<LocalSigner>,
    }

    pub(crate) fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let net = DevNet::ensure(&dir.path().join("net"), "127.0.0.1:7050").unwrap();
        let genesis = crate::server::read_block_file(&net.genesis_file).unwrap();
        let signer = Arc::new(LocalSigner::load(&net.orderer_msp_dir, &net.mspid).unwrap());
        // same MSP ID, but a CA the channel does not know
        let other = DevOrg::create(&dir.path().join("other"), &net.mspid, "other.com").unwrap();
        let msp = other.issue("orderer.other.com", NodeOu::Orderer).unwrap();
        let stranger = Arc::new(LocalSigner::load(&msp, &net.mspid).unwrap());
        let writer = BlockWriter::new(signer, Some(&genesis));
        Fixture {
            _dir: dir,
            genesis,
            writer,
            stranger,
        }
    }

    #[test]
    fn a_chain_signed_by_the_channels_orderer_passes() {
        let mut f = fixture();
        let mut c = SignatureChecker::new();
        c.check(&f.genesis).unwrap();
        for i in 0..3u8 {
            let b = f.writer.next_block(vec![vec![i; 10]], false, &[]);
            c.check(&b).unwrap();
        }
    }

    #[test]
    fn the_first_block_must_hold_a_config() {
        let mut f = fixture();
        let b = f.writer.next_block(vec![b"tx".to_vec()], false, &[]);
        assert!(matches!(
            SignatureChecker::new().check(&b),
            Err(BlockCheckError::NoGenesis(_))
        ));
    }

    #[test]
    fn unsigned_tampered_and_foreign_blocks_are_refused() {
        let mut f = fixture();
        let mut c = SignatureChecker::new();
        c.check(&f.genesis).unwrap();

        let mut unsigned = f.writer.next_block(vec![b"a".to_vec()], false, &[]);
        unsigned.metadata.as_mut().unwrap().metadata[SIGNATURES].clear();
        assert_eq!(c.check(&unsigned), Err(BlockCheckError::NoSignatures(1)));

        let mut tampered = f.writer.next_block(vec![b"b".to_vec()], false, &[]);
        tampered.header.as_mut().unwrap().data_hash[0] ^= 1;
        assert!(matches!(
            c.check(&tampered),
            Err(BlockCheckError::PolicyNotMet { number: 2, .. })
        ));

        let mut foreign_writer = BlockWriter::new(f.stranger.clone(), Some(&f.genesis));
        let foreign = foreign_writer.next_block(vec![b"c".to_vec()], false, &[]);
        assert!(matches!(
            c.check(&foreign),
            Err(BlockCheckError::PolicyNotMet { number: 1, .. })
        ));
    }

    fn ledger_with(blocks: &[Block]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let mut l = fabric_ledger::Ledger::open(root.path(), "ch").unwrap();
        for b in blocks {
            l.append(b).unwrap();
        }
        root
    }

    #[test]
    fn verify_ledger_passes_a_good_chain_and_names_the_record_of_a_foreign_signature() {
        let mut f = fixture();
        let b1 = f.writer.next_block(vec![b"a".to_vec()], false, &[]);
        let good = ledger_with(&[f.genesis.clone(), b1.clone()]);
        let out = verify_ledger(good.path()).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].result.as_ref().unwrap().height, 2, "{out:?}");
        assert!(outcome_line(&out[0]).starts_with("OK channel ch: 2 blocks"));

        // a well-linked block 2 signed by an identity the channel does not trust
        let mut foreign_writer = BlockWriter::new(f.stranger.clone(), Some(&b1));
        let b2 = foreign_writer.next_block(vec![b"b".to_vec()], false, &[]);
        let bad = ledger_with(&[f.genesis.clone(), b1, b2]);
        let out = verify_ledger(bad.path()).unwrap();
        let line = outcome_line(&out[0]);
        assert!(line.starts_with("FAIL channel ch:"), "{line}");
        assert!(line.contains("blockfile_000000"), "{line}");
        assert!(line.contains("block 2: orderer signatures"), "{line}");
    }

    #[test]
    fn only_a_config_envelope_makes_a_config_block() {
        let f = fixture();
        assert!(is_config_block(&f.genesis));
        let normal = fabric_common::block::new_block(1, vec![], vec![b"not an envelope".to_vec()]);
        assert!(!is_config_block(&normal));
    }
}
