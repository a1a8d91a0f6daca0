//! ② Policy check: Fabric's message processor for one channel
//! (`orderer/common/msgprocessor`): classify the envelope, then run the
//! filter rules in Fabric's order — empty, size, identity expiry, signature
//! against `/Channel/Writers`.
//!
//! The signature and expiry rules are the seam for the identities/policies
//! work: [`WriterPolicy`] decides whether a signed envelope may write.

use fabric_common::envelope::ParsedEnvelope;
use fabric_protos::common::{Envelope, HeaderType};

/// How an envelope is processed (Fabric `ClassifyMsg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgClass {
    /// Ordinary transaction (ENDORSER_TRANSACTION, MESSAGE, …).
    Normal,
    /// CONFIG_UPDATE.
    ConfigUpdate,
    /// CONFIG or ORDERER_TRANSACTION: not accepted from clients directly.
    Config,
}

/// Classifies by channel header type.
pub fn classify(header_type: i32) -> MsgClass {
    match HeaderType::try_from(header_type) {
        Ok(HeaderType::ConfigUpdate) => MsgClass::ConfigUpdate,
        Ok(HeaderType::Config) | Ok(HeaderType::OrdererTransaction) => MsgClass::Config,
        _ => MsgClass::Normal,
    }
}

/// A filter rule's rejection.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    /// `Envelope.payload` is empty.
    #[error("Message was empty")]
    Empty,
    /// Larger than `BatchSize.AbsoluteMaxBytes`.
    #[error("message payload is {size} bytes and exceeds maximum allowed {max} bytes")]
    TooLarge {
        /// `len(payload) + len(signature)`.
        size: u64,
        /// `AbsoluteMaxBytes`.
        max: u32,
    },
    /// The creator's certificate has expired.
    #[error("broadcast client identity expired")]
    IdentityExpired,
    /// The channel's writers policy is not satisfied.
    #[error("implicit policy evaluation failed: {0}")]
    PermissionDenied(String),
}

/// Decides whether a signed envelope satisfies `/Channel/Writers` (the seam
/// the identities/policies work fills in).
pub trait WriterPolicy: Send + Sync + std::fmt::Debug {
    /// `Ok(())` when the envelope's creator may write to the channel.
    fn check(&self, env: &Envelope, parsed: &ParsedEnvelope) -> Result<(), FilterError>;
}

/// Accepts every envelope: the solo foundation's development policy, used
/// until channel policies are evaluated.
#[derive(Debug, Default)]
pub struct AcceptAll;

impl WriterPolicy for AcceptAll {
    fn check(&self, _env: &Envelope, _parsed: &ParsedEnvelope) -> Result<(), FilterError> {
        Ok(())
    }
}

/// `len(payload) + len(signature)`: the size every limit applies to.
pub fn message_size(env: &Envelope) -> u64 {
    (env.payload.len() + env.signature.len()) as u64
}

/// Runs the standard channel filters in Fabric's order.
pub fn apply_filters(
    env: &Envelope,
    parsed: &ParsedEnvelope,
    absolute_max_bytes: u32,
    writers: &dyn WriterPolicy,
) -> Result<(), FilterError> {
    if env.payload.is_empty() {
        return Err(FilterError::Empty);
    }
    let size = message_size(env);
    if size > u64::from(absolute_max_bytes) {
        return Err(FilterError::TooLarge {
            size,
            max: absolute_max_bytes,
        });
    }
    writers.check(env, parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_fabric() {
        assert_eq!(
            classify(HeaderType::ConfigUpdate as i32),
            MsgClass::ConfigUpdate
        );
        assert_eq!(classify(HeaderType::Config as i32), MsgClass::Config);
        assert_eq!(
            classify(HeaderType::OrdererTransaction as i32),
            MsgClass::Config
        );
        assert_eq!(
            classify(HeaderType::EndorserTransaction as i32),
            MsgClass::Normal
        );
        assert_eq!(classify(HeaderType::Message as i32), MsgClass::Normal);
        assert_eq!(classify(77), MsgClass::Normal);
    }

    #[test]
    fn size_rule_counts_payload_and_signature() {
        let env = Envelope {
            payload: vec![1; 60],
            signature: vec![2; 40],
        };
        let parsed = ParsedEnvelope {
            payload: Default::default(),
            channel_header: Default::default(),
            signature_header: Default::default(),
        };
        assert_eq!(apply_filters(&env, &parsed, 100, &AcceptAll), Ok(()));
        assert_eq!(
            apply_filters(&env, &parsed, 99, &AcceptAll),
            Err(FilterError::TooLarge { size: 100, max: 99 })
        );
        let empty = Envelope {
            payload: vec![],
            signature: vec![1],
        };
        assert_eq!(
            apply_filters(&empty, &parsed, 99, &AcceptAll),
            Err(FilterError::Empty)
        );
    }
}
