//! Signatures from the network: DER parsing and low-S normalisation.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(low) = fabric_common::crypto::to_low_s(data) {
        assert!(fabric_common::crypto::is_low_s(&low).unwrap());
    }
    let _ = fabric_common::block::last_config_index(&fabric_protos::common::Block {
        metadata: Some(fabric_protos::common::BlockMetadata { metadata: vec![data.to_vec(); 5] }),
        ..Default::default()
    });
});
