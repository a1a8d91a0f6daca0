//! The channel configuration the orderer acts on, read from a CONFIG
//! envelope (`ConfigEnvelope.config.channel_group`): batch size and timeout,
//! consensus type, Kafka brokers, config sequence.

use std::time::Duration;

use fabric_common::envelope::parse_envelope;
use fabric_protos::common::{Block, Config, ConfigEnvelope, ConfigGroup, Envelope, HeaderType};
use fabric_protos::orderer::{BatchSize as PbBatchSize, BatchTimeout, ConsensusType, KafkaBrokers};
use prost::Message;

use crate::blockcutter::BatchSize;

/// Why a config could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChannelConfigError {
    /// The block does not hold a CONFIG envelope.
    #[error("not a config block: {0}")]
    NotConfig(String),
    /// A value is missing or malformed.
    #[error("config value {path}: {reason}")]
    Value {
        /// e.g. `Orderer/BatchSize`
        path: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// The orderer-relevant part of a channel's config.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelConfig {
    /// The channel ID from the config envelope's channel header.
    pub channel_id: String,
    /// `Config.sequence`.
    pub sequence: u64,
    /// `Orderer/ConsensusType.type` (`solo`, `kafka`, …).
    pub consensus_type: String,
    /// `Orderer/BatchSize`.
    pub batch_size: BatchSize,
    /// `Orderer/BatchTimeout`.
    pub batch_timeout: Duration,
    /// `Orderer/KafkaBrokers`.
    pub kafka_brokers: Vec<String>,
    /// Whether the channel group has a `Consortiums` group (system channel).
    pub is_system_channel: bool,
    /// The full config (for later policy evaluation).
    pub config: Config,
}

/// Parses a Go duration string (`2s`, `500ms`, `1m30s`, `1.5h`) with the
/// same parser as `orderer.yaml`; negative durations are refused.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let nanos = orderer_config::parse_go_duration(s.trim()).ok()?;
    u64::try_from(nanos).ok().map(Duration::from_nanos)
}

fn value<M: Message + Default>(
    group: &ConfigGroup,
    key: &str,
    path: &'static str,
) -> Result<Option<M>, ChannelConfigError> {
    match group.values.get(key) {
        None => Ok(None),
        Some(v) => M::decode(v.value.as_slice())
            .map(Some)
            .map_err(|e| ChannelConfigError::Value {
                path,
                reason: e.to_string(),
            }),
    }
}

impl ChannelConfig {
    /// Whether Kafka blocks also carry their `KafkaMetadata` in the deprecated
    /// ORDERER metadata slot (index 3), as Fabric v1.4 orderers write it and
    /// read it back on restart (v1.4.12 `chainsupport.go`). Fabric v2.x never
    /// writes that slot, and only v2.x orderers can serve a channel whose
    /// Orderer group has the `V2_0` capability: so the slot is written for
    /// channels without it, which Fabric v1.4 OSNs may share.
    pub fn legacy_orderer_metadata(&self) -> bool {
        !crate::dedupe::has_orderer_capability(&self.config, "V2_0")
    }

    /// Fabric's `Resubmission()` (`common/capabilities/orderer.go`): a Kafka
    /// message validated at an older config sequence is re-validated and
    /// re-ordered. Orderer capability `V1_1`, `V1_4_2` or `V2_0`; without
    /// any, the Kafka chain runs in Fabric's compatibility mode
    /// ([`crate::consensus::kafka::decide`]).
    pub fn resubmission(&self) -> bool {
        ["V1_1", "V1_4_2", "V2_0"]
            .iter()
            .any(|c| crate::dedupe::has_orderer_capability(&self.config, c))
    }

    /// Whether the channel's exactly-once window is on: its Orderer group has
    /// the [`crate::dedupe::EXACTLY_ONCE_CAPABILITY`] capability.
    pub fn exactly_once(&self) -> bool {
        crate::dedupe::exactly_once(&self.config)
    }

    /// Reads the config from a CONFIG envelope.
    pub fn from_envelope(env: &Envelope) -> Result<Self, ChannelConfigError> {
        let parsed =
            parse_envelope(env).map_err(|e| ChannelConfigError::NotConfig(e.to_string()))?;
        if parsed.channel_header.r#type != HeaderType::Config as i32 {
            return Err(ChannelConfigError::NotConfig(format!(
                "header type {} is not CONFIG",
                parsed.channel_header.r#type
            )));
        }
        let ce = ConfigEnvelope::decode(parsed.payload.data.as_slice())
            .map_err(|e| ChannelConfigError::NotConfig(e.to_string()))?;
        let config = ce
            .config
            .ok_or_else(|| ChannelConfigError::NotConfig("no config".into()))?;
        Self::from_config(parsed.channel_header.channel_id, config)
    }

    /// Reads the config from a config block (its only envelope).
    pub fn from_block(block: &Block) -> Result<Self, ChannelConfigError> {
        let data = block
            .data
            .as_ref()
            .and_then(|d| d.data.first())
            .ok_or_else(|| ChannelConfigError::NotConfig("block has no data".into()))?;
        let env = Envelope::decode(data.as_slice())
            .map_err(|e| ChannelConfigError::NotConfig(e.to_string()))?;
        Self::from_envelope(&env)
    }

    /// Reads the config from a `Config`.
    pub fn from_config(channel_id: String, config: Config) -> Result<Self, ChannelConfigError> {
        let root = config
            .channel_group
            .as_ref()
            .ok_or_else(|| ChannelConfigError::NotConfig("no channel group".into()))?;
        let orderer = root
            .groups
            .get("Orderer")
            .ok_or(ChannelConfigError::Value {
                path: "Orderer",
                reason: "missing Orderer group".into(),
            })?;
        let bs: PbBatchSize =
            value(orderer, "BatchSize", "Orderer/BatchSize")?.ok_or(ChannelConfigError::Value {
                path: "Orderer/BatchSize",
                reason: "missing".into(),
            })?;
        if bs.max_message_count == 0 {
            return Err(ChannelConfigError::Value {
                path: "Orderer/BatchSize",
                reason: "MaxMessageCount must be greater than 0".into(),
            });
        }
        if bs.absolute_max_bytes == 0 {
            return Err(ChannelConfigError::Value {
                path: "Orderer/BatchSize",
                reason: "AbsoluteMaxBytes must be greater than 0".into(),
            });
        }
        if bs.preferred_max_bytes > bs.absolute_max_bytes {
            return Err(ChannelConfigError::Value {
                path: "Orderer/BatchSize",
                reason: format!(
                    "PreferredMaxBytes ({}) must be at most AbsoluteMaxBytes ({})",
                    bs.preferred_max_bytes, bs.absolute_max_bytes
                ),
            });
        }
        let bt: BatchTimeout = value(orderer, "BatchTimeout", "Orderer/BatchTimeout")?.ok_or(
            ChannelConfigError::Value {
                path: "Orderer/BatchTimeout",
                reason: "missing".into(),
            },
        )?;
        let batch_timeout = parse_go_duration(&bt.timeout)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| ChannelConfigError::Value {
                path: "Orderer/BatchTimeout",
                reason: format!("invalid duration {:?}", bt.timeout),
            })?;
        let ct: ConsensusType = value(orderer, "ConsensusType", "Orderer/ConsensusType")?.ok_or(
            ChannelConfigError::Value {
                path: "Orderer/ConsensusType",
                reason: "missing".into(),
            },
        )?;
        let kb: Option<KafkaBrokers> = value(orderer, "KafkaBrokers", "Orderer/KafkaBrokers")?;
        Ok(Self {
            channel_id,
            sequence: config.sequence,
            consensus_type: ct.r#type,
            batch_size: BatchSize {
                max_message_count: bs.max_message_count,
                absolute_max_bytes: bs.absolute_max_bytes,
                preferred_max_bytes: bs.preferred_max_bytes,
            },
            batch_timeout,
            kafka_brokers: kb.map(|k| k.brokers).unwrap_or_default(),
            is_system_channel: root.groups.contains_key("Consortiums"),
            config,
        })
    }
}

/// A config whose only content is `/Channel/Orderer` with these
/// capabilities (no Capabilities value when `caps` is empty), for tests.
#[cfg(test)]
pub(crate) fn orderer_capabilities_config(caps: &[&str]) -> Config {
    use fabric_protos::common::{Capabilities, Capability, ConfigValue};
    let mut orderer = ConfigGroup::default();
    if !caps.is_empty() {
        let c = Capabilities {
            capabilities: caps
                .iter()
                .map(|k| (k.to_string(), Capability::default()))
                .collect(),
        };
        orderer.values.insert(
            "Capabilities".into(),
            ConfigValue {
                value: c.encode_to_vec(),
                ..Default::default()
            },
        );
    }
    let mut root = ConfigGroup::default();
    root.groups.insert("Orderer".into(), orderer);
    Config {
        channel_group: Some(root),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_orderer_capabilities(caps: &[&str]) -> ChannelConfig {
        ChannelConfig {
            channel_id: "c".into(),
            sequence: 0,
            consensus_type: "kafka".into(),
            batch_size: BatchSize {
                max_message_count: 10,
                absolute_max_bytes: 1 << 20,
                preferred_max_bytes: 1 << 19,
            },
            batch_timeout: Duration::from_secs(2),
            kafka_brokers: vec![],
            is_system_channel: false,
            config: orderer_capabilities_config(caps),
        }
    }

    #[test]
    fn legacy_orderer_metadata_unless_v2_orderer_capability() {
        assert!(with_orderer_capabilities(&[]).legacy_orderer_metadata());
        assert!(with_orderer_capabilities(&["V1_4_2"]).legacy_orderer_metadata());
        assert!(!with_orderer_capabilities(&["V2_0"]).legacy_orderer_metadata());
        assert!(!with_orderer_capabilities(&["V1_4_2", "V2_0"]).legacy_orderer_metadata());
    }

    #[test]
    fn resubmission_with_any_v1_1_or_later_orderer_capability() {
        assert!(!with_orderer_capabilities(&[]).resubmission());
        assert!(!with_orderer_capabilities(&["RS_EXACTLY_ONCE"]).resubmission());
        for c in ["V1_1", "V1_4_2", "V2_0"] {
            assert!(with_orderer_capabilities(&[c]).resubmission(), "{c}");
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration(""), None);
        assert_eq!(parse_go_duration("2"), None);
        assert_eq!(parse_go_duration("s"), None);
        assert_eq!(parse_go_duration("2x"), None);
    }
}
