//! Untrusted CONFIG_UPDATE payloads: the envelope, its ConfigUpdate and the
//! signatures' signed data.
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(cue) = fabric_protos::common::ConfigUpdateEnvelope::decode(data) {
        let _ = fabric_protos::common::ConfigUpdate::decode(cue.config_update.as_slice());
        let _ = fabric_msp::signed_data_from_config_update_envelope(&cue);
    }
});
