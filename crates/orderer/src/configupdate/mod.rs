//! Config updates and channel creation, pure and synchronous (Fabric's
//! `common/configtx` validator and the system channel's templator):
//!
//! * [`validate_update`] / [`ConfigValidator`]: a `ConfigUpdateEnvelope`
//!   checked against a channel's config (read set versions, delta set,
//!   each changed element's mod policy against the update's
//!   `ConfigSignature`s) and the config it produces at sequence + 1;
//! * [`new_channel_config`]: a channel creation request checked against the
//!   system channel (consortium, members, channel ID, channel limit) and
//!   applied to the template Fabric derives, giving the new channel's first
//!   config;
//! * [`config_envelope_tx`], [`orderer_transaction_tx`],
//!   [`genesis_block_for_new_channel`]: what the orderer signs and writes.
//!
//! Error texts are Fabric's, with its `cause: detail` chaining.

mod configmap;
mod template;
mod validator;
mod wrap;

#[cfg(test)]
mod tests;

pub use configmap::{
    config_map_to_group, map_config, validate_config_id, ConfigMap, Element, GroupShell, Item,
};
pub use template::{
    channel_template, check_channel_limits, new_channel_config, ChannelTemplate,
    OrdererCapabilities,
};
pub use validator::{
    config_update_envelope_of, validate_channel_id, validate_update, ConfigValidator,
};
pub use wrap::{
    channel_creation_txs, config_envelope_tx, genesis_block_for_new_channel,
    orderer_transaction_tx, unwrap_orderer_transaction,
};

use fabric_msp::PolicyError;

/// Why a config update or channel creation request was refused. Fabric
/// answers all of these with BAD_REQUEST except [`MaintenanceMode`]
/// (SERVICE_UNAVAILABLE).
///
/// [`MaintenanceMode`]: ConfigUpdateError::MaintenanceMode
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigUpdateError {
    /// Malformed or inconsistent request (versions, channel IDs, consortium,
    /// members, mod policy syntax...).
    #[error("{0}")]
    Invalid(String),
    /// The update's signatures do not satisfy the mod policy of an element
    /// it changes.
    #[error("{message}")]
    PolicyNotSatisfied {
        /// The full message, Fabric's text.
        message: String,
        /// The element's config map key, e.g. `[Group]  /Channel/Application`.
        key: String,
        /// The resolved policy path, e.g. `/Channel/Orderer/Admins`.
        policy: String,
        /// The policy's verdict.
        cause: PolicyError,
    },
    /// `ChannelRestrictions.max_count` reached.
    #[error("{0}")]
    TooManyChannels(String),
    /// The system channel is in maintenance mode (consensus-type migration).
    #[error("{0}")]
    MaintenanceMode(String),
}

impl ConfigUpdateError {
    fn invalid(msg: impl Into<String>) -> Self {
        ConfigUpdateError::Invalid(msg.into())
    }

    /// Prefixes the message (`prefix: message`), keeping the kind.
    pub fn context(self, prefix: impl std::fmt::Display) -> Self {
        match self {
            ConfigUpdateError::Invalid(m) => ConfigUpdateError::Invalid(format!("{prefix}: {m}")),
            ConfigUpdateError::TooManyChannels(m) => {
                ConfigUpdateError::TooManyChannels(format!("{prefix}: {m}"))
            }
            ConfigUpdateError::MaintenanceMode(m) => {
                ConfigUpdateError::MaintenanceMode(format!("{prefix}: {m}"))
            }
            ConfigUpdateError::PolicyNotSatisfied {
                message,
                key,
                policy,
                cause,
            } => ConfigUpdateError::PolicyNotSatisfied {
                message: format!("{prefix}: {message}"),
                key,
                policy,
                cause,
            },
        }
    }

    /// The message plus, for policy failures, why each signer did not count
    /// (not part of Fabric's text; for logs).
    pub fn explain(&self) -> String {
        match self {
            ConfigUpdateError::PolicyNotSatisfied {
                message,
                policy,
                cause,
                ..
            } => {
                let detail = cause.explain();
                if detail == cause.to_string() {
                    format!("{message} (policy {policy})")
                } else {
                    format!("{message} (policy {policy}: {detail})")
                }
            }
            other => other.to_string(),
        }
    }
}
