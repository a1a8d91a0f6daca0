//! Shared Fabric primitives used by the orderer, `configtxgen` and the client:
//! block hashing and assembly ([`block`]), ECDSA P-256 signatures with
//! Fabric's low-S rule ([`crypto`]), local MSP signing identities ([`msp`]) with their key in a file or a
//! PKCS#11 token ([`pkcs11`]),
//! signed envelopes ([`envelope`]) and their bytes as Fabric re-encodes them
//! ([`envelope_wire`]) and development crypto material in
//! Fabric's MSP folder layout ([`devcrypto`]).

pub mod block;
pub mod crypto;
pub mod devcrypto;
pub mod envelope;
pub mod envelope_wire;
pub mod msp;
pub mod p256_tables;
pub mod pkcs11;
pub mod softhsm;

pub use fabric_protos;
