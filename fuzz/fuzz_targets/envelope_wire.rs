//! Untrusted Broadcast bytes and Kafka records: the envelope's wire walk
//! (Fabric's re-encoding and the cutter's size) never panics, agrees with
//! prost on the known fields, and re-encoding what it wrote is a fixed point.
#![no_main]
use fabric_common::envelope_wire::EnvelopeWire;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(w) = EnvelopeWire::parse(data) else {
        return;
    };
    let out = w.go_marshal().into_owned();
    let again = EnvelopeWire::parse(&out).expect("Go's bytes parse");
    assert_eq!(again.go_marshal().as_ref(), &out[..]);
    assert_eq!(again.size(), w.size());
    if let Ok(env) = fabric_protos::common::Envelope::decode(data) {
        assert_eq!((env.payload.as_slice(), env.signature.as_slice()), (w.payload, w.signature));
    }
});
