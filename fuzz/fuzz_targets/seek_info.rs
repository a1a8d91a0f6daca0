//! Untrusted Deliver input: SeekInfo decoding and start/stop resolution.
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let height = u64::from_le_bytes(data[..8].try_into().unwrap());
    if let Ok(seek) = fabric_protos::orderer::SeekInfo::decode(&data[8..]) {
        if let Ok(r) = orderer::deliver::seek::resolve(&seek, height) {
            assert!(r.start <= r.stop);
        }
    }
});
