//! ② A channel's message processor (Fabric `msgprocessor.StandardChannel`),
//! built from the channel's config bundle. Broadcast validates with it, and
//! the Kafka chain re-validates with it a message ordered under an older
//! config, so both apply the same rules:
//!
//! * [`MsgProcessor::process_normal`] (`ProcessNormalMsg`): refused in
//!   maintenance mode, then the filters (empty, size, writers policy,
//!   expiry).
//! * [`MsgProcessor::process_config_update`] (`ProcessConfigUpdateMsg`): the
//!   filters, the update proposed against the config, a CONFIG envelope
//!   signed by this orderer, the filters again on it.
//! * [`MsgProcessor::process_config`] (`ProcessConfigMsg`): a CONFIG
//!   envelope's `last_update` processed again as a config update (the
//!   CONFIG envelope itself, made by an orderer, is not filtered).

use std::sync::Arc;

use fabric_common::envelope::{parse_envelope, EnvelopeError, ParsedEnvelope};
use fabric_common::msp::LocalSigner;
use fabric_protos::common::{ConfigEnvelope, Envelope, HeaderType};
use prost::Message as _;

use crate::channels::{ChannelBundle, Registrar};
use crate::configupdate::{self, ConfigUpdateError, ConfigValidator};
use crate::policy::{self, FilterError};

/// Why the processor refuses a message.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// Payload, header or channel header does not decode.
    #[error("could not determine channel ID: {0}")]
    Header(#[from] EnvelopeError),
    /// The channel is in maintenance mode.
    #[error("{0}")]
    Maintenance(String),
    /// A filter rule refused it.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// A CONFIG_UPDATE that cannot be applied.
    #[error("error applying config update to existing channel: {0}")]
    ConfigUpdate(String),
    /// A CONFIG message that is not a config envelope with a last update.
    #[error("bad config message: {0}")]
    BadConfig(String),
}

impl From<ConfigUpdateError> for ProcessError {
    fn from(e: ConfigUpdateError) -> Self {
        match e {
            ConfigUpdateError::MaintenanceMode(m) => ProcessError::Maintenance(m),
            other => ProcessError::ConfigUpdate(other.to_string()),
        }
    }
}

/// One channel's processor, over its current bundle.
#[derive(Debug, Clone, Copy)]
pub struct MsgProcessor<'a> {
    channel_id: &'a str,
    bundle: &'a ChannelBundle,
    expiration_checks: bool,
    signer: &'a LocalSigner,
}

impl<'a> MsgProcessor<'a> {
    /// The processor of `channel_id` at `bundle`; `expiration_checks` is
    /// false when `General.Authentication.NoExpirationChecks` is set.
    pub fn new(
        channel_id: &'a str,
        bundle: &'a ChannelBundle,
        expiration_checks: bool,
        signer: &'a LocalSigner,
    ) -> Self {
        Self {
            channel_id,
            bundle,
            expiration_checks,
            signer,
        }
    }

    fn filters(&self, env: &Envelope, parsed: &ParsedEnvelope) -> Result<(), FilterError> {
        policy::apply_filters(
            env,
            parsed,
            self.bundle.config.batch_size.absolute_max_bytes,
            self.expiration_checks,
            &self.bundle.policies,
        )
    }

    /// Fabric `ProcessNormalMsg`: the config sequence it was validated at.
    pub fn process_normal(
        &self,
        env: &Envelope,
        parsed: &ParsedEnvelope,
    ) -> Result<u64, ProcessError> {
        if self.bundle.policies.normal_rejected() {
            return Err(ProcessError::Maintenance(
                "normal transactions are rejected: maintenance mode".into(),
            ));
        }
        self.filters(env, parsed)?;
        Ok(self.bundle.sequence())
    }

    /// Fabric `ProcessConfigUpdateMsg` on an existing channel: the CONFIG
    /// envelope to order and the sequence it was validated at.
    pub fn process_config_update(
        &self,
        env: &Envelope,
        parsed: &ParsedEnvelope,
    ) -> Result<(Envelope, u64), ProcessError> {
        let seq = self.bundle.sequence();
        self.filters(env, parsed)?;
        let validator = ConfigValidator::new(self.channel_id, &self.bundle.config.config)?;
        let proposed =
            validator.propose_config_update(env, self.bundle.policies.policy_manager())?;
        let config = proposed
            .config
            .ok_or_else(|| ProcessError::ConfigUpdate("proposal without config".into()))?;
        let tx =
            configupdate::config_envelope_tx(self.channel_id, config, env.clone(), self.signer);
        let tx_parsed = parse_envelope(&tx)?;
        self.filters(&tx, &tx_parsed)?;
        Ok((tx, seq))
    }

    /// Fabric `ProcessConfigMsg`: a CONFIG envelope ordered under an older
    /// config is re-derived from its `last_update`.
    pub fn process_config(&self, env: &Envelope) -> Result<(Envelope, u64), ProcessError> {
        let parsed = parse_envelope(env)?;
        if parsed.channel_header.r#type != HeaderType::Config as i32 {
            return Err(ProcessError::BadConfig(format!(
                "header type {} is not CONFIG",
                parsed.channel_header.r#type
            )));
        }
        let ce = ConfigEnvelope::decode(parsed.payload.data.as_slice())
            .map_err(|e| ProcessError::BadConfig(e.to_string()))?;
        let last_update = ce
            .last_update
            .ok_or_else(|| ProcessError::BadConfig("config envelope without last_update".into()))?;
        let update_parsed = parse_envelope(&last_update)?;
        self.process_config_update(&last_update, &update_parsed)
    }
}

/// Re-validation of one channel's envelopes (Kafka and solo chains) through
/// the channel's processor at its current bundle.
#[derive(Debug)]
pub struct ChannelRevalidator {
    /// The channel.
    pub channel_id: String,
    /// Where its current bundle is.
    pub registrar: Arc<Registrar>,
    /// Signs re-derived CONFIG envelopes.
    pub signer: Arc<LocalSigner>,
    /// False when `General.Authentication.NoExpirationChecks` is set.
    pub expiration_checks: bool,
}

impl ChannelRevalidator {
    /// Runs `f` with the channel's processor at its current config.
    fn with_processor<T>(
        &self,
        f: impl FnOnce(&MsgProcessor<'_>) -> Result<T, String>,
    ) -> Result<T, String> {
        let support = self.registrar.get(&self.channel_id).ok_or("channel gone")?;
        let bundle = support.bundle();
        let p = MsgProcessor::new(
            &self.channel_id,
            &bundle,
            self.expiration_checks,
            &self.signer,
        );
        f(&p)
    }
}

/// Kafka re-validation through the same processor Broadcast uses.
impl crate::consensus::kafka::decide::Revalidate for ChannelRevalidator {
    fn normal(&self, env: &[u8]) -> Result<(), String> {
        let env = Envelope::decode(env).map_err(|e| e.to_string())?;
        let parsed = fabric_common::envelope::parse_envelope(&env).map_err(|e| e.to_string())?;
        self.with_processor(|p| p.process_normal(&env, &parsed).map_err(|e| e.to_string()))
            .map(|_| ())
    }

    fn config(&self, env: &[u8]) -> Result<Vec<u8>, String> {
        let outer = Envelope::decode(env).map_err(|e| e.to_string())?;
        let parsed = fabric_common::envelope::parse_envelope(&outer).map_err(|e| e.to_string())?;
        if parsed.channel_header.r#type != HeaderType::Config as i32 {
            // Channel creation is re-checked when the new channel is made.
            return Ok(env.to_vec());
        }
        self.with_processor(|p| p.process_config(&outer).map_err(|e| e.to_string()))
            .map(|(tx, _)| tx.encode_to_vec())
    }
}
