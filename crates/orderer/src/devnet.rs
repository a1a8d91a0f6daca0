//! The embedded default: with no configuration at all, `orderer start`
//! brings up a working development network, as Fabric's provisional
//! genesis did. It creates, once, under a data directory:
//!
//! * crypto material for one organisation `SampleOrg` in Fabric's MSP
//!   layout (an orderer, an admin and a client identity, NodeOUs on);
//! * a solo genesis block for the channel [`DEV_CHANNEL_ID`], made with the
//!   project's own configtx encoder;
//! * `devnet.json`, which tells `orderer-client` what to use.
//!
//! Later starts reuse it. The ledger lives in `<dir>/ledger` unless
//! `ORDERER_FILELEDGER_LOCATION` says otherwise.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fabric_common::devcrypto::{DevOrg, NodeOu};
use prost::Message;
use serde_json::json;

/// The development channel (the system channel, which accepts normal
/// transactions as Fabric's did in development mode).
pub const DEV_CHANNEL_ID: &str = "system-channel";
/// The development MSP ID (Fabric's `General.LocalMSPID` sample value).
pub const DEV_MSPID: &str = "SampleOrg";

/// Paths of the development network.
#[derive(Debug, Clone)]
pub struct DevNet {
    /// The data directory.
    pub dir: PathBuf,
    /// Channel ID.
    pub channel_id: String,
    /// MSP ID of every identity.
    pub mspid: String,
    /// The orderer's local MSP folder.
    pub orderer_msp_dir: PathBuf,
    /// A client (writer/reader) MSP folder.
    pub client_msp_dir: PathBuf,
    /// An admin MSP folder.
    pub admin_msp_dir: PathBuf,
    /// The genesis block file.
    pub genesis_file: PathBuf,
    /// Default ledger location.
    pub ledger_dir: PathBuf,
}

/// `$FABRIC_ORDERER_DEV_DIR`, else `$HOME/.fabric-orderer-dev`.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FABRIC_ORDERER_DEV_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".fabric-orderer-dev")
}

impl DevNet {
    fn paths(dir: &Path) -> Self {
        let org = dir
            .join("crypto")
            .join("ordererOrganizations")
            .join("example.com");
        DevNet {
            dir: dir.into(),
            channel_id: DEV_CHANNEL_ID.into(),
            mspid: DEV_MSPID.into(),
            orderer_msp_dir: org.join("orderers").join("orderer.example.com").join("msp"),
            client_msp_dir: org.join("users").join("User1@example.com").join("msp"),
            admin_msp_dir: org.join("users").join("Admin@example.com").join("msp"),
            genesis_file: dir.join("genesis.block"),
            ledger_dir: dir.join("ledger"),
        }
    }

    /// Creates the network under `dir` unless it already exists; `address`
    /// is the orderer endpoint written into the genesis block.
    pub fn ensure(dir: &Path, address: &str) -> Result<Self> {
        let net = Self::paths(dir);
        let marker = dir.join("devnet.json");
        if marker.is_file() && net.genesis_file.is_file() && net.orderer_msp_dir.is_dir() {
            return Ok(net);
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let org_dir = dir
            .join("crypto")
            .join("ordererOrganizations")
            .join("example.com");
        let org = DevOrg::create(&org_dir, DEV_MSPID, "example.com")
            .context("creating development CA")?;
        org.issue("orderer.example.com", NodeOu::Orderer)?;
        org.issue("Admin@example.com", NodeOu::Admin)?;
        org.issue("User1@example.com", NodeOu::Client)?;
        let mut network = fabric_configtx::dev::DevNetwork::new(org.msp_dir());
        network.orderer_addresses = vec![address.to_string()];
        let profile = network.system_channel_profile();
        let block = fabric_configtx::genesis::genesis_block_from_profile(&profile, DEV_CHANNEL_ID)
            .context("building the development genesis block")?;
        std::fs::write(&net.genesis_file, block.encode_to_vec())
            .with_context(|| format!("writing {}", net.genesis_file.display()))?;
        let info = json!({
            "channel_id": net.channel_id,
            "client_msp_dir": net.client_msp_dir,
            "client_mspid": net.mspid,
            "admin_msp_dir": net.admin_msp_dir,
            "orderer_address": address,
            "orderer_cert_pem": std::fs::read_to_string(net.orderer_msp_dir.join("signcerts").join("orderer.example.com-cert.pem"))?,
            "ca_cert_pem": org.ca_cert_pem(),
        });
        std::fs::write(&marker, serde_json::to_vec_pretty(&info)?)
            .with_context(|| format!("writing {}", marker.display()))?;
        Ok(net)
    }
}
