//! The registrar: channel ID → the channel's support (its config with the
//! MSPs and policies built from it, chain handle and ledger reader).
//! Broadcast and Deliver look channels up here.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use fabric_ledger::LedgerReader;
use fabric_msp::PolicyError;

use crate::channelconfig::ChannelConfig;
use crate::consensus::ChainHandle;
use crate::policy::ChannelPolicies;

/// One config of a channel and what was built from it. Replaced as a whole
/// when the config changes, so a request sees a config and its policies
/// from the same sequence.
#[derive(Debug)]
pub struct ChannelBundle {
    /// The config.
    pub config: Arc<ChannelConfig>,
    /// Its MSPs (with the identity cache) and policies.
    pub policies: ChannelPolicies,
}

impl ChannelBundle {
    /// Builds the MSPs and policies of `config`.
    pub fn new(config: ChannelConfig) -> Result<Self, PolicyError> {
        let policies = ChannelPolicies::from_config(&config.config)?;
        Ok(Self {
            config: Arc::new(config),
            policies,
        })
    }

    /// `Config.sequence`.
    pub fn sequence(&self) -> u64 {
        self.config.sequence
    }
}

/// Everything a request needs about one channel.
#[derive(Debug)]
pub struct ChannelSupport {
    /// The channel ID.
    pub channel_id: String,
    bundle: RwLock<Arc<ChannelBundle>>,
    /// Submission handle of the chain.
    pub chain: ChainHandle,
    /// Reader of the channel's ledger.
    pub ledger: LedgerReader,
}

impl ChannelSupport {
    /// A channel's support; fails when the config's MSPs or policies
    /// cannot be set up.
    pub fn new(
        config: ChannelConfig,
        chain: ChainHandle,
        ledger: LedgerReader,
    ) -> Result<Self, PolicyError> {
        Ok(Self::from_bundle(
            ChannelBundle::new(config)?,
            chain,
            ledger,
        ))
    }

    /// A channel's support around an already built bundle.
    pub fn from_bundle(bundle: ChannelBundle, chain: ChainHandle, ledger: LedgerReader) -> Self {
        Self {
            channel_id: bundle.config.channel_id.clone(),
            bundle: RwLock::new(Arc::new(bundle)),
            chain,
            ledger,
        }
    }

    /// The config in force with its policies.
    pub fn bundle(&self) -> Arc<ChannelBundle> {
        Arc::clone(&self.bundle.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The config in force.
    pub fn config(&self) -> Arc<ChannelConfig> {
        Arc::clone(&self.bundle().config)
    }

    /// The config sequence in force.
    pub fn sequence(&self) -> u64 {
        self.bundle().sequence()
    }

    /// Replaces the config (after a config block), with the MSPs and
    /// policies built from it; on error the previous config stays.
    pub fn set_config(&self, config: ChannelConfig) -> Result<(), PolicyError> {
        let bundle = Arc::new(ChannelBundle::new(config)?);
        *self.bundle.write().unwrap_or_else(|e| e.into_inner()) = bundle;
        Ok(())
    }
}

/// All channels of this node.
#[derive(Debug, Default)]
pub struct Registrar {
    channels: RwLock<HashMap<String, Arc<ChannelSupport>>>,
    system_channel: RwLock<Option<String>>,
}

impl Registrar {
    /// An empty registrar.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a channel.
    pub fn insert(&self, support: ChannelSupport) {
        let id = support.channel_id.clone();
        if support.config().is_system_channel {
            *self
                .system_channel
                .write()
                .unwrap_or_else(|e| e.into_inner()) = Some(id.clone());
        }
        self.channels
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, Arc::new(support));
    }

    /// Looks a channel up.
    pub fn get(&self, channel_id: &str) -> Option<Arc<ChannelSupport>> {
        self.channels
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(channel_id)
            .cloned()
    }

    /// The system channel's ID, if there is one.
    pub fn system_channel(&self) -> Option<String> {
        self.system_channel
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// IDs of all channels, sorted.
    pub fn channel_ids(&self) -> Vec<String> {
        let mut v: Vec<_> = self
            .channels
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }
}
