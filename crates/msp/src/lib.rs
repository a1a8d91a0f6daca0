//! Fabric's X.509 membership service provider and channel policies, for
//! the ordering service:
//!
//! * [`Msp`]: one organization's MSP from its `MSPConfig` (root and
//!   intermediate CAs, admin certificates, CRLs, OU identifiers, NodeOUs),
//!   identity deserialization, validation and principal checks;
//! * [`MspManager`]: the MSPs of a channel, dispatching by MSP ID, with a
//!   bounded cache of deserialized and validated identities;
//! * [`PolicyManager`]: signature and implicit-meta policies of a channel
//!   config tree, resolved by path (`/Channel/Writers`, relative names);
//! * [`signed_data_from_envelope`]: the signature set of an envelope.
//!
//! Behaviour follows Fabric v1.4–v2.5 (`msp/`, `common/cauthdsl`,
//! `common/policies`). Known deviations: idemix MSPs are recognised but
//! their identities are refused; signing identities in `MSPConfig` are
//! ignored; the SHA3 hash family is refused at setup; Go's name-constraint
//! checks beyond Fabric's legacy CN rule are not applied; a certificate
//! that does not chain to the MSP still deserializes (Fabric fails
//! deserialization instead) and fails validation.

#![warn(missing_docs)]

pub mod cache;
pub mod cert;
mod der;
pub mod manager;
pub mod msp;
pub mod policy;
pub mod signed_data;

#[cfg(test)]
mod tests;

pub use cache::{BoundedCache, CacheStats, DEFAULT_CAPACITY};
pub use cert::{CertError, Certificate, Crl, KeyType, PublicKey};
pub use manager::{collect_msp_configs, CachedIdentity, MspManager};
pub use msp::{verify_signature, Identity, Msp, MspError, MspVersion, OuIdentifier};
pub use policy::{
    evaluate_signature_policy, Policy, PolicyError, PolicyManager, SignaturePolicy, SignedData,
};
pub use signed_data::{
    signed_data_from_config_update_envelope, signed_data_from_envelope, SignedDataError,
};
