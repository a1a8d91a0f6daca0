//! Untrusted creators: SerializedIdentity → PEM → X.509 certificate.
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(id) = fabric_protos::msp::SerializedIdentity::decode(data) {
        let _ = fabric_msp::Certificate::from_pem(&id.id_bytes);
    }
    let _ = fabric_msp::Certificate::from_der(data);
    let _ = fabric_msp::MspManager::new(Vec::new()).deserialize_identity(data);
});
