//! The envelopes and the genesis block the orderer itself makes from an
//! accepted config update (Fabric's `CreateSignedEnvelope` calls in the
//! message processors and `registrar.newChain`).

use fabric_common::block::new_block;
use fabric_common::envelope::{create_signed_envelope, EnvelopeOptions};
use fabric_common::msp::LocalSigner;
use fabric_configtx::gowire;
use fabric_protos::common::{Block, Config, ConfigEnvelope, Envelope, HeaderType};
use prost::Message;

/// The `CONFIG` envelope of `channel_id` carrying
/// `ConfigEnvelope{config, last_update}`, signed by the orderer (message
/// version 0, epoch 0, no tx ID). This is what a config block holds.
pub fn config_envelope_tx(
    channel_id: &str,
    config: Config,
    last_update: Envelope,
    signer: &LocalSigner,
) -> Envelope {
    let data = gowire::config_envelope(&ConfigEnvelope {
        config: Some(config),
        last_update: Some(last_update),
    });
    create_signed_envelope(
        HeaderType::Config,
        channel_id,
        Some(signer),
        data,
        &EnvelopeOptions::default(),
    )
}

/// The `ORDERER_TRANSACTION` envelope on the system channel wrapping the
/// new channel's `CONFIG` envelope, signed by the orderer; it is ordered on
/// the system channel and creates the channel when committed.
pub fn orderer_transaction_tx(
    system_channel_id: &str,
    inner_config_tx: &Envelope,
    signer: &LocalSigner,
) -> Envelope {
    create_signed_envelope(
        HeaderType::OrdererTransaction,
        system_channel_id,
        Some(signer),
        inner_config_tx.encode_to_vec(),
        &EnvelopeOptions::default(),
    )
}

/// Both envelopes of a channel creation: the inner `CONFIG` envelope of the
/// new channel (from [`super::new_channel_config`]'s result and the
/// client's request) and the `ORDERER_TRANSACTION` wrapping it.
pub fn channel_creation_txs(
    system_channel_id: &str,
    channel_id: &str,
    config: Config,
    update_tx: Envelope,
    signer: &LocalSigner,
) -> (Envelope, Envelope) {
    let inner = config_envelope_tx(channel_id, config, update_tx, signer);
    let outer = orderer_transaction_tx(system_channel_id, &inner, signer);
    (inner, outer)
}

/// The new channel's block 0: its only transaction is the inner `CONFIG`
/// envelope, no previous hash, every metadata entry empty (no signature, no
/// LAST_CONFIG), as Fabric's `newChain` writes it.
pub fn genesis_block_for_new_channel(inner_config_tx: &Envelope) -> Block {
    new_block(0, Vec::new(), vec![inner_config_tx.encode_to_vec()])
}

/// The `CONFIG` envelope inside an `ORDERER_TRANSACTION` envelope.
pub fn unwrap_orderer_transaction(outer: &Envelope) -> Result<Envelope, String> {
    let parsed = fabric_common::envelope::parse_envelope(outer).map_err(|e| e.to_string())?;
    if parsed.channel_header.r#type != HeaderType::OrdererTransaction as i32 {
        return Err(format!(
            "expected ORDERER_TRANSACTION, got header type {}",
            parsed.channel_header.r#type
        ));
    }
    Envelope::decode(parsed.payload.data.as_slice()).map_err(|e| {
        format!("Abort processing config msg because payload data unmarshalling error: {e}")
    })
}
