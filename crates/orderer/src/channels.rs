//! The registrar: channel ID → the channel's support (its config, chain
//! handle and ledger reader). Broadcast and Deliver look channels up here.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use fabric_ledger::LedgerReader;

use crate::channelconfig::ChannelConfig;
use crate::consensus::ChainHandle;

/// Everything a request needs about one channel.
#[derive(Debug)]
pub struct ChannelSupport {
    /// The channel ID.
    pub channel_id: String,
    config: RwLock<Arc<ChannelConfig>>,
    /// Submission handle of the chain.
    pub chain: ChainHandle,
    /// Reader of the channel's ledger.
    pub ledger: LedgerReader,
}

impl ChannelSupport {
    /// A channel's support.
    pub fn new(config: ChannelConfig, chain: ChainHandle, ledger: LedgerReader) -> Self {
        Self {
            channel_id: config.channel_id.clone(),
            config: RwLock::new(Arc::new(config)),
            chain,
            ledger,
        }
    }

    /// The config in force.
    pub fn config(&self) -> Arc<ChannelConfig> {
        Arc::clone(&self.config.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Replaces the config (after a config block).
    pub fn set_config(&self, config: ChannelConfig) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
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
