//! The MSPs of one channel configuration, dispatching by MSP ID, with a
//! bounded cache of deserialized-and-validated identities.

use std::collections::BTreeMap;
use std::sync::Arc;

use fabric_protos::common::{Capabilities, Config, ConfigGroup, MspPrincipal};
use fabric_protos::msp::{MspConfig, SerializedIdentity};
use prost::Message;

use crate::cache::{BoundedCache, CacheStats, DEFAULT_CAPACITY};
use crate::msp::{Identity, Msp, MspError, MspVersion, MSP_TYPE_FABRIC};

/// Config group and value keys (`common/channelconfig`).
pub const ORDERER_GROUP: &str = "Orderer";
/// Application group key.
pub const APPLICATION_GROUP: &str = "Application";
/// Consortiums group key.
pub const CONSORTIUMS_GROUP: &str = "Consortiums";
/// The organization value holding its `MSPConfig`.
pub const MSP_KEY: &str = "MSP";
/// The capabilities value.
pub const CAPABILITIES_KEY: &str = "Capabilities";

#[derive(Debug)]
enum Entry {
    Fabric(Arc<Msp>),
    /// An MSP of a type this implementation cannot evaluate (idemix).
    Unsupported(i32),
}

/// A deserialization result as cached: the identity (with its validation
/// memoised inside) or why it could not be deserialized.
pub type CachedIdentity = Result<Arc<Identity>, MspError>;

/// All MSPs of a channel.
pub struct MspManager {
    msps: BTreeMap<String, Entry>,
    cache: BoundedCache<Vec<u8>, CachedIdentity>,
}

impl std::fmt::Debug for MspManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MspManager")
            .field("msps", &self.msps.keys().collect::<Vec<_>>())
            .field("cache", &self.cache.stats())
            .finish()
    }
}

/// The channel capability names in a channel group.
pub fn channel_capabilities(channel_group: &ConfigGroup) -> Vec<String> {
    channel_group
        .values
        .get(CAPABILITIES_KEY)
        .and_then(|v| Capabilities::decode(v.value.as_slice()).ok())
        .map(|c| c.capabilities.into_keys().collect())
        .unwrap_or_default()
}

/// Every organization `MSPConfig` of a channel group: orderer orgs,
/// application orgs and the orgs of every consortium.
pub fn collect_msp_configs(channel_group: &ConfigGroup) -> Result<Vec<MspConfig>, MspError> {
    let mut orgs: Vec<(&str, &ConfigGroup)> = Vec::new();
    for key in [ORDERER_GROUP, APPLICATION_GROUP] {
        if let Some(g) = channel_group.groups.get(key) {
            orgs.extend(g.groups.iter().map(|(n, g)| (n.as_str(), g)));
        }
    }
    if let Some(cs) = channel_group.groups.get(CONSORTIUMS_GROUP) {
        for c in cs.groups.values() {
            orgs.extend(c.groups.iter().map(|(n, g)| (n.as_str(), g)));
        }
    }
    let mut out = Vec::new();
    for (name, g) in orgs {
        let conf = match g.values.get(MSP_KEY) {
            Some(v) => MspConfig::decode(v.value.as_slice()).map_err(|e| {
                MspError::new(format!(
                    "failed to deserialize MSP value of org {name}: {e}"
                ))
            })?,
            // Fabric decodes a missing value as an empty FABRIC config,
            // which then fails setup.
            None => MspConfig::default(),
        };
        out.push(conf);
    }
    Ok(out)
}

impl MspManager {
    /// A manager over already set-up MSPs.
    pub fn new(msps: impl IntoIterator<Item = Msp>) -> Self {
        Self::with_capacity(msps, DEFAULT_CAPACITY)
    }

    /// As [`MspManager::new`] with an identity-cache capacity.
    pub fn with_capacity(msps: impl IntoIterator<Item = Msp>, capacity: usize) -> Self {
        MspManager {
            msps: msps
                .into_iter()
                .map(|m| (m.name().to_string(), Entry::Fabric(Arc::new(m))))
                .collect(),
            cache: BoundedCache::new(capacity),
        }
    }

    /// Sets up the MSPs of a channel group (`Config.channel_group`), with
    /// the MSP version its channel capabilities select.
    pub fn from_channel_group(channel_group: &ConfigGroup) -> Result<Self, MspError> {
        let caps = channel_capabilities(channel_group);
        let version = MspVersion::from_channel_capabilities(caps.iter().map(String::as_str));
        Self::from_msp_configs(collect_msp_configs(channel_group)?, version)
    }

    /// Sets up the MSPs of a channel `Config`.
    pub fn from_config(config: &Config) -> Result<Self, MspError> {
        let group = config
            .channel_group
            .as_ref()
            .ok_or_else(|| MspError::new("config must contain a channel group"))?;
        Self::from_channel_group(group)
    }

    /// Sets up MSPs from their configs (duplicates must be identical).
    pub fn from_msp_configs(
        configs: impl IntoIterator<Item = MspConfig>,
        version: MspVersion,
    ) -> Result<Self, MspError> {
        let mut msps = BTreeMap::new();
        let mut seen: BTreeMap<String, MspConfig> = BTreeMap::new();
        for conf in configs {
            let (name, entry) = if conf.r#type == MSP_TYPE_FABRIC {
                let msp = Msp::from_config_versioned(&conf, version)
                    .map_err(|e| e.context("setting up the MSP manager failed"))?;
                (msp.name().to_string(), Entry::Fabric(Arc::new(msp)))
            } else if conf.r#type == crate::msp::MSP_TYPE_IDEMIX {
                // The MSP ID of an idemix config is field 1 of IdemixMSPConfig.
                let name = idemix_name(&conf.config).unwrap_or_default();
                (name, Entry::Unsupported(conf.r#type))
            } else {
                return Err(MspError::new(format!(
                    "Setup error: unsupported msp type {}",
                    conf.r#type
                )));
            };
            if let Some(prev) = seen.get(&name) {
                if *prev != conf {
                    return Err(MspError::new(format!(
                        "Attempted to define two different versions of MSP: {name}"
                    )));
                }
                continue;
            }
            seen.insert(name.clone(), conf);
            msps.insert(name, entry);
        }
        Ok(MspManager {
            msps,
            cache: BoundedCache::new(DEFAULT_CAPACITY),
        })
    }

    /// The MSP with this ID (X.509 MSPs only).
    pub fn msp(&self, mspid: &str) -> Option<&Arc<Msp>> {
        match self.msps.get(mspid) {
            Some(Entry::Fabric(m)) => Some(m),
            _ => None,
        }
    }

    /// The MSP IDs defined on the channel.
    pub fn msp_ids(&self) -> impl Iterator<Item = &str> {
        self.msps.keys().map(String::as_str)
    }

    fn msp_for(&self, mspid: &str) -> Result<&Arc<Msp>, MspError> {
        match self.msps.get(mspid) {
            Some(Entry::Fabric(m)) => Ok(m),
            Some(Entry::Unsupported(t)) => Err(MspError::new(format!(
                "MSP {mspid} is of type {t}, which this implementation does not support"
            ))),
            None => Err(MspError::new(format!(
                "MSP {mspid} is not defined on channel"
            ))),
        }
    }

    /// Deserializes without the cache.
    pub fn deserialize_identity_uncached(&self, serialized: &[u8]) -> Result<Identity, MspError> {
        let sid = SerializedIdentity::decode(serialized).map_err(|e| {
            MspError::new(format!("could not deserialize a SerializedIdentity: {e}"))
        })?;
        self.msp_for(&sid.mspid)?
            .deserialize_id_bytes(&sid.id_bytes)
    }

    /// Deserializes a marshaled `SerializedIdentity` through the cache. A
    /// freshly deserialized identity is validated at once, so the cached
    /// entry also answers [`MspManager::validate`] without work.
    pub fn deserialize_identity(&self, serialized: &[u8]) -> Result<Arc<Identity>, MspError> {
        self.cache.get_or_insert_with(serialized, || {
            let id = Arc::new(self.deserialize_identity_uncached(serialized)?);
            let _ = self.validate(&id);
            Ok(id)
        })
    }

    /// Validates an identity with its own MSP.
    pub fn validate(&self, id: &Identity) -> Result<(), MspError> {
        self.msp_for(id.mspid())?.validate(id)
    }

    /// Deserializes (cached) and validates.
    pub fn deserialize_and_validate(&self, serialized: &[u8]) -> Result<Arc<Identity>, MspError> {
        let id = self.deserialize_identity(serialized)?;
        self.validate(&id)?;
        Ok(id)
    }

    /// Whether `id` satisfies `principal`, judged by the identity's own MSP.
    pub fn satisfies_principal(
        &self,
        id: &Identity,
        principal: &MspPrincipal,
    ) -> Result<(), MspError> {
        self.msp_for(id.mspid())?.satisfies_principal(id, principal)
    }

    /// Identity-cache counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Empties the identity cache.
    pub fn clear_cache(&self) {
        self.cache.clear()
    }
}

fn idemix_name(config: &[u8]) -> Option<String> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct IdemixName {
        #[prost(string, tag = "1")]
        name: String,
    }
    IdemixName::decode(config).ok().map(|n| n.name)
}
