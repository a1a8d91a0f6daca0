//! A client for the orderer's `AtomicBroadcast` service, usable both as the
//! `orderer-client` command and as a library for end-to-end tests.
//!
//! * [`channel`]: `peer channel create | update | fetch`: config transaction
//!   checks, `ConfigSignature`s, channel creation and config updates;
//! * [`config`]: where to connect and whom to sign as (flags, or the embedded
//!   development network's `devnet.json`);
//! * [`conn`]: gRPC connections with Fabric's 100 MiB message limits;
//! * [`verify`]: block signature checks (`addBlockSignature` / peers' `VerifyBlock`);
//! * [`deliver`]: Deliver sessions, the chain follower and the `deliver` command;
//! * [`broadcast`]: a pipelined Broadcast stream with a bounded in-flight window;
//! * [`counter`]: the counter check (every value delivered once and in order);
//! * [`bench`]: the Broadcast load generator with delivered-latency figures;
//! * [`latency`]: latency histograms;
//! * [`load`]: long-lived Broadcast streams and Deliver followers with
//!   samples of the orderer's RSS (the `load` command).
//! * [`reliable`]: load that re-sends after faults and logs acknowledged tx IDs.

pub mod bench;
pub mod broadcast;
pub mod channel;
pub mod config;
pub mod conn;
pub mod counter;
pub mod deliver;
pub mod latency;
pub mod load;
pub mod reliable;
pub mod verify;

/// The symbolic name of a Fabric `common.Status` code (`"SUCCESS"`, …), or the number.
pub fn status_name(code: i32) -> String {
    match fabric_protos::common::Status::try_from(code) {
        Ok(s) => s.as_str_name().to_string(),
        Err(_) => code.to_string(),
    }
}

/// `common.Status::SUCCESS`.
pub const SUCCESS: i32 = fabric_protos::common::Status::Success as i32;

/// A User1@SampleOrg signing identity from a development CA made under `dir`
/// (the tests' client).
#[cfg(test)]
pub(crate) fn test_user_signer(dir: &std::path::Path) -> fabric_common::msp::LocalSigner {
    let org = fabric_common::devcrypto::DevOrg::create(&dir.join("o"), "SampleOrg", "example.com")
        .expect("dev CA");
    let msp = org
        .issue("User1", fabric_common::devcrypto::NodeOu::Client)
        .expect("User1");
    fabric_common::msp::LocalSigner::load(&msp, "SampleOrg").expect("User1 signer")
}
