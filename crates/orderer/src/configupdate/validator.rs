//! Authorizing a config update against the current config and computing
//! the config it produces (Fabric's `configtx.ValidatorImpl`:
//! `ProposeConfigUpdate` and `Validate`).

use fabric_msp::{signed_data_from_config_update_envelope, PolicyManager, SignedData};
use fabric_protos::common::{
    Config, ConfigEnvelope, ConfigUpdate, ConfigUpdateEnvelope, Envelope, HeaderType,
};
use prost::Message;

use super::configmap::{
    config_map_to_group, map_config, validate_config_id, ConfigMap, Item, MAX_ID_LENGTH,
    PATH_SEPARATOR, ROOT_GROUP,
};
use super::ConfigUpdateError;

/// Fabric's channel ID rule (`[a-z][a-z0-9.-]*`, at most 249 characters:
/// what both Kafka topic names and CouchDB database names allow).
pub fn validate_channel_id(channel_id: &str) -> Result<(), String> {
    if channel_id.is_empty() {
        return Err("channel ID illegal, cannot be empty".into());
    }
    if channel_id.len() > MAX_ID_LENGTH {
        return Err(format!(
            "channel ID illegal, cannot be longer than {MAX_ID_LENGTH}"
        ));
    }
    let b = channel_id.as_bytes();
    let ok = b[0].is_ascii_lowercase()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-');
    if !ok {
        return Err(format!("'{channel_id}' contains illegal characters"));
    }
    Ok(())
}

/// Fabric's `EnvelopeToConfigUpdate`: the `ConfigUpdateEnvelope` carried by
/// a `CONFIG_UPDATE` envelope.
pub fn config_update_envelope_of(env: &Envelope) -> Result<ConfigUpdateEnvelope, String> {
    let payload = fabric_protos::common::Payload::decode(env.payload.as_slice())
        .map_err(|e| format!("error unmarshalling Payload: {e}"))?;
    let header = payload
        .header
        .as_ref()
        .ok_or_else(|| "envelope must have a Header".to_string())?;
    let chdr = fabric_protos::common::ChannelHeader::decode(header.channel_header.as_slice())
        .map_err(|e| format!("error unmarshalling ChannelHeader: {e}"))?;
    if chdr.r#type != HeaderType::ConfigUpdate as i32 {
        let name = HeaderType::try_from(chdr.r#type)
            .map(|t| t.as_str_name().to_string())
            .unwrap_or_else(|_| chdr.r#type.to_string());
        return Err(format!("invalid type {name}, expected CONFIG_UPDATE"));
    }
    ConfigUpdateEnvelope::decode(payload.data.as_slice())
        .map_err(|e| format!("error unmarshalling message for type CONFIG_UPDATE: {e}"))
}

/// The config of one channel, flattened once, against which updates are
/// authorized. Build one per config sequence and reuse it.
#[derive(Debug, Clone)]
pub struct ConfigValidator {
    channel_id: String,
    sequence: u64,
    map: ConfigMap,
}

fn mod_policy_is_valid(mod_policy: &str) -> Result<(), String> {
    if mod_policy.is_empty() {
        return Err("mod_policy not set".into());
    }
    let trimmed = mod_policy
        .strip_prefix(PATH_SEPARATOR)
        .unwrap_or(mod_policy);
    for (i, element) in trimmed.split(PATH_SEPARATOR).enumerate() {
        validate_config_id(element).map_err(|e| format!("path element at {i} is invalid: {e}"))?;
    }
    Ok(())
}

impl ConfigValidator {
    /// Flattens `config` of `channel_id` (Fabric's `NewValidatorImpl`).
    pub fn new(channel_id: &str, config: &Config) -> Result<Self, ConfigUpdateError> {
        let group = config
            .channel_group
            .as_ref()
            .ok_or_else(|| ConfigUpdateError::invalid("nil channel group"))?;
        validate_channel_id(channel_id)
            .map_err(|e| ConfigUpdateError::invalid(format!("bad channel ID: {e}")))?;
        let map = map_config(Some(group), ROOT_GROUP).map_err(|e| {
            ConfigUpdateError::invalid(format!("error converting config to map: {e}"))
        })?;
        Ok(ConfigValidator {
            channel_id: channel_id.to_string(),
            sequence: config.sequence,
            map,
        })
    }

    /// The channel.
    pub fn channel_id(&self) -> &str {
        &self.channel_id
    }

    /// The current config sequence.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Authorizes `update_env` and returns the config it produces, at
    /// sequence + 1 (Fabric's `ProposeConfigUpdate` without the envelope
    /// unwrapping). `policies` must be the channel's root policy manager.
    pub fn apply(
        &self,
        update_env: &ConfigUpdateEnvelope,
        policies: &PolicyManager,
    ) -> Result<Config, ConfigUpdateError> {
        let map = self
            .authorize_update(update_env, policies)
            .map_err(|e| e.context("error authorizing update"))?;
        let group = config_map_to_group(&map, ROOT_GROUP).map_err(|e| {
            ConfigUpdateError::invalid(format!(
                "could not turn configMap back to channelGroup: {e}"
            ))
        })?;
        Ok(Config {
            sequence: self.sequence + 1,
            channel_group: Some(group),
        })
    }

    /// Fabric's `ProposeConfigUpdate`: `update_tx` is the client's
    /// `CONFIG_UPDATE` envelope; the result carries it as `last_update`.
    pub fn propose_config_update(
        &self,
        update_tx: &Envelope,
        policies: &PolicyManager,
    ) -> Result<ConfigEnvelope, ConfigUpdateError> {
        let cue = config_update_envelope_of(update_tx).map_err(|e| {
            ConfigUpdateError::invalid(format!("error converting envelope to config update: {e}"))
        })?;
        let config = self.apply(&cue, policies)?;
        Ok(ConfigEnvelope {
            config: Some(config),
            last_update: Some(update_tx.clone()),
        })
    }

    /// Fabric's `Validate`: a `CONFIG` envelope's config must be at
    /// sequence + 1 and be exactly what its `last_update`, authorized again
    /// against the current config, produces.
    pub fn validate(
        &self,
        config_env: &ConfigEnvelope,
        policies: &PolicyManager,
    ) -> Result<(), ConfigUpdateError> {
        let config = config_env
            .config
            .as_ref()
            .ok_or_else(|| ConfigUpdateError::invalid("config envelope has nil config"))?;
        if config.sequence != self.sequence + 1 {
            return Err(ConfigUpdateError::invalid(format!(
                "config currently at sequence {}, cannot validate config at sequence {}",
                self.sequence, config.sequence
            )));
        }
        let last_update = config_env
            .last_update
            .as_ref()
            .ok_or_else(|| ConfigUpdateError::invalid("config envelope has no last update"))?;
        let cue = config_update_envelope_of(last_update).map_err(ConfigUpdateError::Invalid)?;
        let map = self.authorize_update(&cue, policies)?;
        let group = config_map_to_group(&map, ROOT_GROUP).map_err(|e| {
            ConfigUpdateError::invalid(format!(
                "could not turn configMap back to channelGroup: {e}"
            ))
        })?;
        if Some(&group) != config.channel_group.as_ref() {
            return Err(ConfigUpdateError::invalid(
                "ConfigEnvelope LastUpdate did not produce the supplied config result",
            ));
        }
        Ok(())
    }

    fn authorize_update(
        &self,
        update_env: &ConfigUpdateEnvelope,
        policies: &PolicyManager,
    ) -> Result<ConfigMap, ConfigUpdateError> {
        let update = ConfigUpdate::decode(update_env.config_update.as_slice())
            .map_err(|e| ConfigUpdateError::invalid(e.to_string()))?;
        if update.channel_id != self.channel_id {
            return Err(ConfigUpdateError::invalid(format!(
                "ConfigUpdate for channel '{}' but envelope for channel '{}'",
                update.channel_id, self.channel_id
            )));
        }
        let read_set = map_config(update.read_set.as_ref(), ROOT_GROUP)
            .map_err(|e| ConfigUpdateError::invalid(format!("error mapping ReadSet: {e}")))?;
        self.verify_read_set(&read_set)
            .map_err(|e| ConfigUpdateError::invalid(format!("error validating ReadSet: {e}")))?;
        let write_set = map_config(update.write_set.as_ref(), ROOT_GROUP)
            .map_err(|e| ConfigUpdateError::invalid(format!("error mapping WriteSet: {e}")))?;
        let delta: ConfigMap = write_set
            .iter()
            .filter(|(k, v)| read_set.get(*k).is_none_or(|r| r.version() != v.version()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let signed = signed_data_from_config_update_envelope(update_env)
            .map_err(|e| ConfigUpdateError::invalid(e.to_string()))?;
        self.verify_delta_set(&delta, &signed, policies)
            .map_err(|e| e.context("error validating DeltaSet"))?;
        let mut result = self.map.clone();
        result.extend(delta);
        // Every write-set key is either in the delta or (same version) in the
        // verified read set, so it is in the result.
        if let Some(k) = write_set.keys().find(|k| !result.contains_key(*k)) {
            return Err(ConfigUpdateError::invalid(format!(
                "full config did not verify: writeset contained key {k} which did not appear in proposed config"
            )));
        }
        Ok(result)
    }

    fn verify_read_set(&self, read_set: &ConfigMap) -> Result<(), String> {
        for (key, item) in read_set {
            let existing = self.map.get(key).ok_or_else(|| {
                format!(
                    "existing config does not contain element for {key} but was in the read set"
                )
            })?;
            if existing.version() != item.version() {
                return Err(format!(
                    "proposed update requires that key {key} be at version {}, but it is currently at version {}",
                    item.version(),
                    existing.version()
                ));
            }
        }
        Ok(())
    }

    fn verify_delta_set(
        &self,
        delta: &ConfigMap,
        signed: &[SignedData],
        policies: &PolicyManager,
    ) -> Result<(), ConfigUpdateError> {
        if delta.is_empty() {
            return Err(ConfigUpdateError::invalid(
                "delta set was empty -- update would have no effect",
            ));
        }
        for (key, item) in delta {
            mod_policy_is_valid(item.mod_policy()).map_err(|e| {
                ConfigUpdateError::invalid(format!("invalid mod_policy for element {key}: {e}"))
            })?;
            let Some(existing) = self.map.get(key) else {
                // New elements need no policy of their own: adding them
                // changes their group, whose version must go up.
                if item.version() != 0 {
                    return Err(ConfigUpdateError::invalid(format!(
                        "attempted to set key {key} to version {}, but key does not exist",
                        item.version()
                    )));
                }
                continue;
            };
            if item.version() != existing.version() + 1 {
                return Err(ConfigUpdateError::invalid(format!(
                    "attempt to set key {key} to version {}, but key is at version {}",
                    item.version(),
                    existing.version()
                )));
            }
            let policy = policy_for_item(policies, existing).ok_or_else(|| {
                ConfigUpdateError::invalid(format!(
                    "unexpected missing policy {} for item {key}",
                    existing.mod_policy()
                ))
            })?;
            if let Err(cause) = policy.evaluate_signed_data(signed) {
                return Err(ConfigUpdateError::PolicyNotSatisfied {
                    message: format!("policy for {key} not satisfied: {cause}"),
                    key: key.clone(),
                    policy: policy.name().to_string(),
                    cause,
                });
            }
        }
        Ok(())
    }
}

/// Resolves an existing element's mod policy: absolute paths from the root;
/// relative ones from the element's group (for a group: the group itself).
fn policy_for_item(root: &PolicyManager, item: &Item) -> Option<fabric_msp::Policy> {
    let mod_policy = item.mod_policy();
    let mut manager = root.clone();
    if !mod_policy.is_empty() && !mod_policy.starts_with(PATH_SEPARATOR) && !item.path.is_empty() {
        let path: Vec<&str> = item.path[1..].iter().map(String::as_str).collect();
        manager = manager.manager(&path)?;
        if item.is_group() {
            manager = manager.manager(&[item.key.as_str()])?;
        }
    }
    let (policy, found) = manager.get_policy(mod_policy);
    found.then_some(policy)
}

/// Authorizes `update_env` against `current` (the config of `channel_id`,
/// whose policies `policies` evaluates) and returns the new config at
/// sequence + 1. See [`ConfigValidator::apply`].
pub fn validate_update(
    current: &Config,
    channel_id: &str,
    update_env: &ConfigUpdateEnvelope,
    policies: &PolicyManager,
) -> Result<Config, ConfigUpdateError> {
    ConfigValidator::new(channel_id, current)?.apply(update_env, policies)
}
