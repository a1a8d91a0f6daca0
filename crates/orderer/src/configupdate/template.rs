//! New channels from a system channel: the template config a channel
//! creation request is applied to (Fabric's `DefaultTemplator`), the
//! creation checks, and the resulting config of the new channel.

use fabric_msp::PolicyManager;
use fabric_protos::common::{
    Capabilities, ChannelHeader, Config, ConfigGroup, ConfigPolicy, ConfigUpdate,
    ConfigUpdateEnvelope, ConfigValue, Consortium, Envelope, Payload, Policy,
};
use fabric_protos::orderer::{consensus_type, ChannelRestrictions, ConsensusType};
use prost::Message;

use super::validator::ConfigValidator;
use super::ConfigUpdateError;

/// Config keys (`common/channelconfig`).
pub mod keys {
    /// `Orderer`.
    pub const ORDERER_GROUP: &str = "Orderer";
    /// `Application`.
    pub const APPLICATION_GROUP: &str = "Application";
    /// `Consortiums`.
    pub const CONSORTIUMS_GROUP: &str = "Consortiums";
    /// `Consortium`.
    pub const CONSORTIUM: &str = "Consortium";
    /// `ChannelCreationPolicy`.
    pub const CHANNEL_CREATION_POLICY: &str = "ChannelCreationPolicy";
    /// `Admins`.
    pub const ADMINS: &str = "Admins";
    /// `Capabilities`.
    pub const CAPABILITIES: &str = "Capabilities";
    /// `ChannelRestrictions`.
    pub const CHANNEL_RESTRICTIONS: &str = "ChannelRestrictions";
    /// `ConsensusType`.
    pub const CONSENSUS_TYPE: &str = "ConsensusType";
}

use keys::*;

/// The orderer capabilities that change channel creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OrdererCapabilities {
    /// `V1_1` or later: the template takes the system channel's mod policy
    /// and all its versions are zero.
    pub predictable_channel_template: bool,
    /// `V2_0`: a request that sets the Application `Admins` policy (version
    /// ≠ 0) is authorized by the creation policy stored as `Admins`.
    pub channel_creation_policy_as_admins: bool,
}

impl OrdererCapabilities {
    /// From the `/Channel/Orderer/Capabilities` value of a channel group.
    pub fn of(channel_group: &ConfigGroup) -> Self {
        let caps = channel_group
            .groups
            .get(ORDERER_GROUP)
            .and_then(|o| o.values.get(CAPABILITIES))
            .and_then(|v| Capabilities::decode(v.value.as_slice()).ok())
            .map(|c| c.capabilities)
            .unwrap_or_default();
        let has = |n: &str| caps.contains_key(n);
        OrdererCapabilities {
            predictable_channel_template: has("V1_1") || has("V1_4_2") || has("V2_0"),
            channel_creation_policy_as_admins: has("V2_0"),
        }
    }
}

/// A channel creation request checked against the system channel, with the
/// template config it applies to.
#[derive(Debug, Clone)]
pub struct ChannelTemplate {
    /// The new channel's ID.
    pub channel_id: String,
    /// The template (sequence 0).
    pub config: Config,
    /// The request's `ConfigUpdateEnvelope`.
    pub update_env: ConfigUpdateEnvelope,
}

fn err(msg: impl Into<String>) -> ConfigUpdateError {
    ConfigUpdateError::Invalid(msg.into())
}

fn zero_versions(g: &mut ConfigGroup) {
    g.version = 0;
    for v in g.values.values_mut() {
        v.version = 0;
    }
    for p in g.policies.values_mut() {
        p.version = 0;
    }
    for sub in g.groups.values_mut() {
        zero_versions(sub);
    }
}

/// Fabric's `DefaultTemplator.NewChannelConfig`: checks a channel creation
/// request (`update_tx`, a `CONFIG_UPDATE` envelope for a channel the
/// system channel does not know) against the system channel config and
/// builds the template it applies to: the system channel's values and
/// policies, its Orderer group, an Application group with the consortium's
/// definitions of the orgs the request names whose mod policy is the
/// consortium's channel creation policy, and the Consortium value.
pub fn channel_template(
    system: &Config,
    update_tx: &Envelope,
) -> Result<ChannelTemplate, ConfigUpdateError> {
    const PREFIX: &str = "Failing initial channel config creation";
    let payload = Payload::decode(update_tx.payload.as_slice()).map_err(|e| {
        err(format!(
            "{PREFIX} because of payload unmarshalling error: {e}"
        ))
    })?;
    let update_env = ConfigUpdateEnvelope::decode(payload.data.as_slice()).map_err(|e| {
        err(format!(
            "{PREFIX} because of config update envelope unmarshalling error: {e}"
        ))
    })?;
    let header = payload.header.as_ref().ok_or_else(|| {
        err("Failed initial channel config creation because config update header was missing")
    })?;
    let chdr = ChannelHeader::decode(header.channel_header.as_slice()).map_err(|e| {
        err(format!(
            "Failed initial channel config creation because channel header was malformed: {e}"
        ))
    })?;
    let update = ConfigUpdate::decode(update_env.config_update.as_slice()).map_err(|e| {
        err(format!(
            "{PREFIX} because of config update unmarshalling error: {e}"
        ))
    })?;
    if update.channel_id != chdr.channel_id {
        return Err(err(format!(
            "{PREFIX}: mismatched channel IDs: '{}' != '{}'",
            update.channel_id, chdr.channel_id
        )));
    }
    let write_set = update
        .write_set
        .as_ref()
        .ok_or_else(|| err("Config update has an empty writeset"))?;
    let app_update = write_set
        .groups
        .get(APPLICATION_GROUP)
        .ok_or_else(|| err("Config update has missing application group"))?;
    if app_update.version != 1 {
        return Err(err(format!(
            "Config update for channel creation does not set application group version to 1, was {}",
            app_update.version
        )));
    }
    let consortium_value = write_set
        .values
        .get(CONSORTIUM)
        .ok_or_else(|| err("Consortium config value missing"))?;
    let consortium = Consortium::decode(consortium_value.value.as_slice())
        .map_err(|e| err(format!("Error reading unmarshalling consortium name: {e}")))?;

    let system_group = system
        .channel_group
        .as_ref()
        .ok_or_else(|| err("system channel config has no channel group"))?;
    let consortiums = system_group.groups.get(CONSORTIUMS_GROUP).ok_or_else(|| {
        err("The ordering system channel does not appear to support creating channels")
    })?;
    let consortium_group = consortiums
        .groups
        .get(&consortium.name)
        .ok_or_else(|| err(format!("Unknown consortium name: {}", consortium.name)))?;
    let creation_policy = consortium_group
        .values
        .get(CHANNEL_CREATION_POLICY)
        .map(|v| Policy::decode(v.value.as_slice()))
        .transpose()
        .map_err(|e| {
            err(format!(
                "consortium {}: could not decode ChannelCreationPolicy: {e}",
                consortium.name
            ))
        })?;

    let caps = OrdererCapabilities::of(system_group);
    let mut policy_key = CHANNEL_CREATION_POLICY;
    if caps.channel_creation_policy_as_admins
        && app_update
            .policies
            .get(ADMINS)
            .is_none_or(|p| p.version != 0)
    {
        policy_key = ADMINS;
    }
    let mut application = ConfigGroup {
        mod_policy: policy_key.into(),
        ..Default::default()
    };
    application.policies.insert(
        policy_key.into(),
        ConfigPolicy {
            version: 0,
            policy: creation_policy,
            mod_policy: policy_key.into(),
        },
    );
    if !consortium_group.groups.is_empty() {
        if app_update.groups.is_empty() {
            return Err(err(
                "Proposed configuration has no application group members, but consortium contains members",
            ));
        }
        for org in app_update.groups.keys() {
            let def = consortium_group.groups.get(org).ok_or_else(|| {
                err(format!(
                    "Attempted to include member {org} which is not in the consortium"
                ))
            })?;
            application.groups.insert(org.clone(), def.clone());
        }
    } else {
        tracing::warn!(
            channel = %chdr.channel_id,
            members = app_update.groups.len(),
            "system channel consortium has no members, creating the channel with the requested members"
        );
    }

    let mut channel = ConfigGroup {
        values: system_group.values.clone(),
        policies: system_group.policies.clone(),
        ..Default::default()
    };
    if let Some(o) = system_group.groups.get(ORDERER_GROUP) {
        channel.groups.insert(ORDERER_GROUP.into(), o.clone());
    }
    channel.groups.insert(APPLICATION_GROUP.into(), application);
    channel.values.insert(
        CONSORTIUM.into(),
        ConfigValue {
            version: 0,
            value: Consortium {
                name: consortium.name.clone(),
            }
            .encode_to_vec(),
            mod_policy: ADMINS.into(),
        },
    );
    if caps.predictable_channel_template {
        channel.mod_policy = system_group.mod_policy.clone();
        zero_versions(&mut channel);
    }
    Ok(ChannelTemplate {
        channel_id: chdr.channel_id,
        config: Config {
            sequence: 0,
            channel_group: Some(channel),
        },
        update_env,
    })
}

/// The template's policy manager, after the checks of Fabric's
/// `channelconfig.NewBundle` that apply here.
fn template_policies(template: &Config) -> Result<PolicyManager, ConfigUpdateError> {
    pre_validate(template)?;
    PolicyManager::from_config(template).map_err(|e| match e {
        fabric_msp::PolicyError::Msp(m) => err(format!("initializing channelconfig failed: {m}")),
        other => err(format!("initializing policymanager failed: {other}")),
    })
}

/// Fabric's `channelconfig` pre-validation: capabilities of the channel or
/// the application need orderer capabilities.
fn pre_validate(config: &Config) -> Result<(), ConfigUpdateError> {
    let group = config
        .channel_group
        .as_ref()
        .ok_or_else(|| err("config must contain a channel group"))?;
    if let Some(o) = group.groups.get(ORDERER_GROUP) {
        if !o.values.contains_key(CAPABILITIES) {
            if group.values.contains_key(CAPABILITIES) {
                return Err(err(
                    "cannot enable channel capabilities without orderer support first",
                ));
            }
            if group
                .groups
                .get(APPLICATION_GROUP)
                .is_some_and(|a| a.values.contains_key(CAPABILITIES))
            {
                return Err(err(
                    "cannot enable application capabilities without orderer support first",
                ));
            }
        }
    }
    Ok(())
}

/// The system channel's channel limit and maintenance state (Fabric's
/// `SystemChainFilter`, applied to the wrapped creation transaction).
/// `channel_count` is the number of channels this orderer has, the system
/// channel included; Fabric refuses only when it is *greater* than
/// `ChannelRestrictions.max_count`.
pub fn check_channel_limits(
    system: &Config,
    channel_count: usize,
) -> Result<(), ConfigUpdateError> {
    let orderer = system
        .channel_group
        .as_ref()
        .and_then(|g| g.groups.get(ORDERER_GROUP));
    let max = orderer
        .and_then(|o| o.values.get(CHANNEL_RESTRICTIONS))
        .and_then(|v| ChannelRestrictions::decode(v.value.as_slice()).ok())
        .map(|r| r.max_count)
        .unwrap_or(0);
    if max > 0 && channel_count as u64 > max {
        return Err(ConfigUpdateError::TooManyChannels(format!(
            "channel creation would exceed maximimum number of channels: {max}"
        )));
    }
    let state = orderer
        .and_then(|o| o.values.get(CONSENSUS_TYPE))
        .and_then(|v| ConsensusType::decode(v.value.as_slice()).ok())
        .map(|c| c.state)
        .unwrap_or(0);
    if state != consensus_type::State::Normal as i32 {
        return Err(ConfigUpdateError::MaintenanceMode(
            "channel creation is not permitted: maintenance mode".into(),
        ));
    }
    Ok(())
}

/// Checks a channel creation request against the system channel config and
/// returns the new channel's ID and its first config (sequence 1): the
/// request applied to [`channel_template`], its `ConfigSignature`s
/// satisfying the consortium's channel creation policy over the orgs it
/// names; then [`check_channel_limits`] with `channel_count` (all channels,
/// the system channel included).
pub fn new_channel_config(
    system: &Config,
    update_tx: &Envelope,
    channel_count: usize,
) -> Result<(String, Config), ConfigUpdateError> {
    let t = channel_template(system, update_tx)?;
    let policies = template_policies(&t.config)?;
    let validator = ConfigValidator::new(&t.channel_id, &t.config)
        .map_err(|e| e.context("initializing configtx manager failed"))?;
    let config = validator.apply(&t.update_env, &policies).map_err(|e| {
        e.context(format!(
            "error validating channel creation transaction for new channel '{}', could not successfully apply update to template configuration",
            t.channel_id
        ))
    })?;
    check_channel_limits(system, channel_count)?;
    // The system channel filter parses the resulting config again.
    pre_validate(&config).map_err(|e| e.context("config does not validly parse"))?;
    PolicyManager::from_config(&config)
        .map_err(|e| err(format!("config does not validly parse: {e}")))?;
    Ok((t.channel_id, config))
}
