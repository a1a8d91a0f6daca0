//! Where the client connects and whom it signs as.
//!
//! With no `--mspdir` the client uses the embedded development network that
//! `orderer start` (with no configuration) creates: it reads `devnet.json`
//! from the development data folder (`$FABRIC_ORDERER_DEV_DIR`, default
//! `$HOME/.fabric-orderer-dev`):
//!
//! ```json
//! {"channel_id": "...", "client_msp_dir": "...", "client_mspid": "...",
//!  "orderer_address": "127.0.0.1:7050", "orderer_cert_pem": "-----BEGIN CERTIFICATE-----..."}
//! ```
//!
//! A relative `client_msp_dir` is taken relative to that folder. Explicit
//! flags always win over the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use fabric_common::msp::LocalSigner;
use serde::{Deserialize, Serialize};

use crate::verify::SignerTrust;

/// Environment variable naming the development data folder.
pub const DEV_DIR_ENV: &str = "FABRIC_ORDERER_DEV_DIR";
/// The file in it that describes the development network.
pub const DEVNET_FILE: &str = "devnet.json";
/// The orderer address used when neither a flag nor `devnet.json` names one.
pub const DEFAULT_SERVER: &str = "127.0.0.1:7050";
/// Fabric's default `General.LocalMSPID`.
pub const DEFAULT_MSPID: &str = "SampleOrg";

/// The content of `devnet.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevNet {
    /// The application channel to use.
    pub channel_id: String,
    /// An MSP folder of a client identity allowed to read and write.
    pub client_msp_dir: PathBuf,
    /// That identity's MSP ID.
    pub client_mspid: String,
    /// `host:port` of the orderer.
    #[serde(default)]
    pub orderer_address: Option<String>,
    /// The orderer's signing certificate (or its CA), PEM: blocks must be signed by it.
    #[serde(default)]
    pub orderer_cert_pem: Option<String>,
}

/// The development data folder: `$FABRIC_ORDERER_DEV_DIR`, else `$HOME/.fabric-orderer-dev`.
pub fn dev_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(DEV_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".fabric-orderer-dev")
}

impl DevNet {
    /// Reads `<dir>/devnet.json`; `Ok(None)` when it does not exist.
    pub fn load(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(DEVNET_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let mut dn: DevNet = serde_json::from_slice(&bytes).with_context(|| {
            format!("{} is not a valid dev network description", path.display())
        })?;
        if dn.client_msp_dir.is_relative() {
            dn.client_msp_dir = dir.join(&dn.client_msp_dir);
        }
        Ok(Some(dn))
    }
}

/// Connection and identity flags shared by all subcommands.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GlobalArgs {
    /// Orderer address host:port [default: devnet.json's, else 127.0.0.1:7050]
    #[arg(long, global = true)]
    pub server: Option<String>,
    /// Channel ID [default: the dev network's channel]
    #[arg(short = 'c', long, global = true)]
    pub channel: Option<String>,
    /// MSP folder of the signing identity [default: the dev network's client]
    #[arg(long, global = true)]
    pub mspdir: Option<PathBuf>,
    /// MSP ID of the signing identity [default: the dev network's, else SampleOrg]
    #[arg(long, global = true)]
    pub mspid: Option<String>,
    /// PEM file with CA certificate(s) that must have issued the orderer's block-signing certificate
    #[arg(long = "orderer-ca", global = true)]
    pub orderer_ca: Vec<PathBuf>,
    /// The orderer org's MSP folder; its cacerts/ must have issued the block-signing certificate
    #[arg(long = "orderer-mspdir", global = true)]
    pub orderer_mspdir: Option<PathBuf>,
}

/// A resolved target: where to connect, which channel, whom to sign as and
/// which block signers to accept.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port`.
    pub server: String,
    /// Channel ID.
    pub channel: String,
    /// The client identity.
    pub signer: Arc<LocalSigner>,
    /// Accepted block signers.
    pub trust: SignerTrust,
}

impl GlobalArgs {
    /// Resolves the flags, reading the dev network from [`dev_dir`] where needed.
    pub fn resolve(&self) -> Result<Target> {
        self.resolve_in(&dev_dir())
    }

    /// As [`GlobalArgs::resolve`], with an explicit development data folder.
    pub fn resolve_in(&self, dev_dir: &Path) -> Result<Target> {
        let needs_devnet = self.mspdir.is_none() || self.channel.is_none();
        let devnet = if needs_devnet {
            DevNet::load(dev_dir)?
        } else {
            None
        };
        let missing = || {
            anyhow::anyhow!(
                "no dev network found ({} does not exist): start the orderer's embedded \
                 default first (`orderer start` with no configuration), set {DEV_DIR_ENV}, \
                 or pass --mspdir, --mspid and --channel",
                dev_dir.join(DEVNET_FILE).display()
            )
        };
        let (msp_dir, mspid) = match (&self.mspdir, &devnet) {
            (Some(d), dn) => (
                d.clone(),
                self.mspid
                    .clone()
                    .or_else(|| dn.as_ref().map(|dn| dn.client_mspid.clone()))
                    .unwrap_or_else(|| DEFAULT_MSPID.to_string()),
            ),
            (None, Some(dn)) => (
                dn.client_msp_dir.clone(),
                self.mspid
                    .clone()
                    .unwrap_or_else(|| dn.client_mspid.clone()),
            ),
            (None, None) => return Err(missing()),
        };
        let channel = match (&self.channel, &devnet) {
            (Some(c), _) => c.clone(),
            (None, Some(dn)) => dn.channel_id.clone(),
            (None, None) => bail!(
                "no --channel given and no dev network found at {}",
                dev_dir.join(DEVNET_FILE).display()
            ),
        };
        let server = self
            .server
            .clone()
            .or_else(|| {
                devnet
                    .as_ref()
                    .and_then(|d| d.orderer_address.clone())
                    .filter(|a| !a.is_empty())
            })
            .unwrap_or_else(|| DEFAULT_SERVER.to_string());
        let signer = LocalSigner::load(&msp_dir, &mspid)
            .with_context(|| format!("loading the signing identity from {}", msp_dir.display()))?;

        let mut trust = SignerTrust::any();
        for ca in &self.orderer_ca {
            trust.add_ca_file(ca)?;
        }
        if let Some(d) = &self.orderer_mspdir {
            trust.add_msp_dir(d)?;
        }
        // The dev network's orderer certificate applies only when the client
        // also uses the dev network's identity (the same network).
        if trust.is_empty() && self.mspdir.is_none() {
            if let Some(pem) = devnet.as_ref().and_then(|d| d.orderer_cert_pem.as_deref()) {
                if !pem.trim().is_empty() {
                    trust
                        .add_trusted_pem(pem.as_bytes())
                        .context("devnet.json orderer_cert_pem")?;
                }
            }
        }
        Ok(Target {
            server,
            channel,
            signer: Arc::new(signer),
            trust,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_common::devcrypto::{DevOrg, NodeOu};

    #[test]
    fn devnet_is_read_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let org = DevOrg::create(&dir.path().join("org"), "SampleOrg", "example.com").unwrap();
        let msp = org.issue("User1@example.com", NodeOu::Client).unwrap();
        let rel = msp.strip_prefix(dir.path()).unwrap().to_path_buf();
        let dn = DevNet {
            channel_id: "devchannel".into(),
            client_msp_dir: rel,
            client_mspid: "SampleOrg".into(),
            orderer_address: Some("127.0.0.1:7999".into()),
            orderer_cert_pem: Some(org.ca_cert_pem().to_string()),
        };
        std::fs::write(
            dir.path().join(DEVNET_FILE),
            serde_json::to_vec(&dn).unwrap(),
        )
        .unwrap();

        let t = GlobalArgs::default().resolve_in(dir.path()).unwrap();
        assert_eq!(t.server, "127.0.0.1:7999");
        assert_eq!(t.channel, "devchannel");
        assert_eq!(t.signer.mspid(), "SampleOrg");
        assert_eq!(t.trust.cas.len(), 1);

        let args = GlobalArgs {
            server: Some("10.0.0.1:7050".into()),
            channel: Some("other".into()),
            mspdir: Some(msp.clone()),
            mspid: Some("SampleOrg".into()),
            ..Default::default()
        };
        let t = args.resolve_in(&dir.path().join("nowhere")).unwrap();
        assert_eq!(
            (t.server.as_str(), t.channel.as_str()),
            ("10.0.0.1:7050", "other")
        );
        assert!(t.trust.is_empty());
    }

    #[test]
    fn missing_devnet_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = GlobalArgs::default()
            .resolve_in(dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("devnet.json") && err.contains("--mspdir"),
            "{err}"
        );
    }
}
