//! Fabric's wire messages, generated from this project's own `.proto` files
//! (written from the field numbers of fabric-protos v0.2.x, which still has
//! `orderer/kafka.proto`), plus the `orderer.AtomicBroadcast` gRPC service.
//!
//! Maps are generated as `BTreeMap`, so every message encodes
//! deterministically (Fabric's configtxgen output decodes to the same JSON).

#![allow(clippy::all, missing_docs, unreachable_pub)]

pub mod common {
    include!(concat!(env!("OUT_DIR"), "/common.rs"));
}

pub mod msp {
    include!(concat!(env!("OUT_DIR"), "/msp.rs"));
}

pub mod orderer {
    include!(concat!(env!("OUT_DIR"), "/orderer.rs"));
}

/// Fabric's `peer` package (named `protos` on the wire).
pub mod peer {
    include!(concat!(env!("OUT_DIR"), "/protos.rs"));
}

pub use prost::Message;
pub use prost_types::Timestamp;
