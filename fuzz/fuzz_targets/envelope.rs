//! Untrusted Broadcast input: envelope → payload → headers, classification
//! and the size/empty filters.
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = fabric_protos::common::Envelope::decode(data) {
        if let Ok(parsed) = fabric_common::envelope::parse_envelope(&env) {
            let _ = orderer::policy::classify(parsed.channel_header.r#type);
            let _ = orderer::policy::apply_filters(&env, &parsed, 1 << 20, true, &orderer::policy::AcceptAll);
            let _ = orderer::channelconfig::ChannelConfig::from_envelope(&env);
        }
    }
});
