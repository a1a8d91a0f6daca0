//! Turning envelopes and config updates into signature sets
//! (Fabric's `protoutil.EnvelopeAsSignedData` and
//! `ConfigUpdateEnvelopeAsSignedData`).

use fabric_protos::common::{ConfigUpdateEnvelope, Envelope, Payload, SignatureHeader};
use prost::Message;

use crate::policy::SignedData;

/// Why an envelope could not be turned into signed data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SignedDataError(pub String);

/// The single signed datum of an envelope: the payload bytes, the
/// signature header's creator, the envelope signature.
pub fn signed_data_from_envelope(env: &Envelope) -> Result<Vec<SignedData>, SignedDataError> {
    let payload = Payload::decode(env.payload.as_slice())
        .map_err(|e| SignedDataError(format!("proto: could not unmarshal payload: {e}")))?;
    let header = payload
        .header
        .ok_or_else(|| SignedDataError("Missing Header".into()))?;
    let shdr = SignatureHeader::decode(header.signature_header.as_slice())
        .map_err(|e| SignedDataError(format!("GetSignatureHeaderFromBytes failed, err {e}")))?;
    Ok(vec![SignedData {
        data: env.payload.clone(),
        identity: shdr.creator,
        signature: env.signature.clone(),
    }])
}

/// One signed datum per config signature: `signature_header ||
/// config_update`, the header's creator, the signature.
pub fn signed_data_from_config_update_envelope(
    cue: &ConfigUpdateEnvelope,
) -> Result<Vec<SignedData>, SignedDataError> {
    cue.signatures
        .iter()
        .map(|cs| {
            let shdr = SignatureHeader::decode(cs.signature_header.as_slice())
                .map_err(|e| SignedDataError(format!("proto: {e}")))?;
            let mut data = Vec::with_capacity(cs.signature_header.len() + cue.config_update.len());
            data.extend_from_slice(&cs.signature_header);
            data.extend_from_slice(&cue.config_update);
            Ok(SignedData {
                data,
                identity: shdr.creator,
                signature: cs.signature.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn never_panics(payload in proptest::collection::vec(0u8.., 0..200), sig in proptest::collection::vec(0u8.., 0..8)) {
            let env = Envelope { payload, signature: sig };
            let _ = signed_data_from_envelope(&env);
            if let Ok(cue) = ConfigUpdateEnvelope::decode(env.payload.as_slice()) {
                let _ = signed_data_from_config_update_envelope(&cue);
            }
        }
    }
}
