//! `configtxgen` in Rust: Fabric's `configtx.yaml` (v1.4 and v2.x formats),
//! the channel configuration encoder, genesis blocks, channel creation
//! transactions and protolator-style JSON inspection.
//!
//! ```no_run
//! use fabric_configtx::{genesis_block_from_profile, TopLevel};
//! let top = TopLevel::load(std::path::Path::new("/etc/hyperledger/fabric")).unwrap();
//! let profile = top.profile("SampleDevModeKafka").unwrap();
//! let block = genesis_block_from_profile(&profile, "testchainid").unwrap();
//! # let _ = block;
//! ```

#![warn(missing_docs)]

pub mod config;
pub mod dev;
pub mod encoder;
pub mod error;
pub mod genesis;
pub mod gowire;
pub mod inspect;
pub mod msp;
pub mod policydsl;
pub mod units;
pub mod update;

pub use config::{
    AnchorPeer, Application, BatchSize, Consortium, EtcdRaft, EtcdRaftConsenter, EtcdRaftOptions,
    Orderer, Organization, Policies, Policy, Profile, TopLevel,
};
pub use dev::DevNetwork;
pub use encoder::{new_channel_group, new_orderer_org_group};
pub use error::{Error, Result};
pub use genesis::{
    channel_creation_config_update_envelope, channel_creation_tx, config_update_tx, genesis_block,
    genesis_block_from_profile, genesis_block_from_profile_with, GenesisFormat,
};
pub use inspect::{inspect_block, inspect_envelope};
pub use units::GoDuration;
