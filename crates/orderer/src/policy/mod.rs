//! ② Policy check: Fabric's message processor for one channel
//! (`orderer/common/msgprocessor`): classify the envelope, then run the
//! filter rules in Fabric's order — empty, size, identity expiry, signature
//! against `/Channel/Writers`.
//!
//! [`ChannelPolicies`] is what a channel's config says about who may write
//! and read: its MSPs (with the identity cache) and its policy tree, built
//! once per config. It implements [`WriterPolicy`], the seam the filters
//! call, and [`ChannelPolicies::check_readers`] for Deliver.

use std::sync::Arc;
use std::time::SystemTime;

use fabric_common::envelope::ParsedEnvelope;
use fabric_msp::policy::{
    CHANNEL_ORDERER_READERS, CHANNEL_ORDERER_WRITERS, CHANNEL_READERS, CHANNEL_WRITERS,
};
use fabric_msp::{Certificate, MspManager, PolicyError, PolicyManager, SignedData};
use fabric_protos::common::{Capabilities, Config, Envelope, HeaderType};
use fabric_protos::msp::SerializedIdentity;
use fabric_protos::orderer::{consensus_type, ConsensusType};
use prost::Message;

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
    /// The creator's certificate has expired (Fabric v2.x text; Fabric's
    /// `ClassifyError` makes it BAD_REQUEST).
    #[error("broadcast client identity expired")]
    IdentityExpired,
    /// The channel's writers policy is not satisfied: the policy's own
    /// error, wrapped around Fabric's `ErrPermissionDenied` as
    /// `errors.Wrap(ErrPermissionDenied, err.Error())` renders it.
    #[error("{0}: permission denied")]
    PermissionDenied(String),
    /// The policy to evaluate is not defined (Fabric's sigfilter).
    #[error("could not find policy {0}")]
    NoPolicy(String),
}

/// Decides whether a signed envelope may write: the identity-expiry rule
/// and the signature rule (`/Channel/Writers`) of Fabric's filter set.
pub trait WriterPolicy: Send + Sync + std::fmt::Debug {
    /// Fabric's `expirationRejectRule`: refuses an envelope whose creator
    /// certificate has expired. Default: never expired.
    fn check_expiration(
        &self,
        _env: &Envelope,
        _parsed: &ParsedEnvelope,
        _now: SystemTime,
    ) -> Result<(), FilterError> {
        Ok(())
    }

    /// Fabric's `SigFilter`: `Ok(())` when the envelope's signature set
    /// satisfies the channel's writers policy.
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

/// Runs the standard channel filters in Fabric's order
/// (`CreateStandardChannelFilters`): empty, size, identity expiry (unless
/// `expiration_checks` is off: `General.Authentication.NoExpirationChecks`),
/// signature.
pub fn apply_filters(
    env: &Envelope,
    parsed: &ParsedEnvelope,
    absolute_max_bytes: u32,
    expiration_checks: bool,
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
    if expiration_checks {
        writers.check_expiration(env, parsed, SystemTime::now())?;
    }
    writers.check(env, parsed)
}

/// The orderer capabilities under which Fabric's broadcast expiration rule
/// acts (`OrdererProvider.ExpirationCheck`: V1_1, V1_4_2, V2_0).
const EXPIRATION_CHECK_CAPABILITIES: [&str; 3] = ["V1_1", "V1_4_2", "V2_0"];

/// The orderer capabilities under which maintenance mode refuses normal
/// transactions (`OrdererProvider.ConsensusTypeMigration`: V1_4_2, V2_0).
const MIGRATION_CAPABILITIES: [&str; 2] = ["V1_4_2", "V2_0"];

/// A channel's MSPs and policies, built once from one config (and replaced
/// as a whole when the config changes).
#[derive(Debug)]
pub struct ChannelPolicies {
    policies: PolicyManager,
    /// The orderer capabilities enable the broadcast expiration rule.
    expiration_capability: bool,
    /// `Orderer/ConsensusType.state` is `STATE_MAINTENANCE`: the orderer
    /// policies apply instead of the channel's.
    maintenance: bool,
    /// The orderer capabilities enable consensus-type migration (V1_4_2,
    /// V2_0), under which Fabric refuses normal transactions while the
    /// channel is in maintenance mode.
    migration_capability: bool,
}

fn orderer_value<M: Message + Default>(config: &Config, key: &str) -> Option<M> {
    let v = config
        .channel_group
        .as_ref()?
        .groups
        .get(fabric_msp::manager::ORDERER_GROUP)?
        .values
        .get(key)?;
    M::decode(v.value.as_slice()).ok()
}

/// Fabric's `crypto.ExpiresAt` on a marshaled `SerializedIdentity`: the
/// NotAfter of the PEM certificate, `None` when it does not parse (an
/// identity that cannot expire).
fn raw_expires_at(creator: &[u8]) -> Option<SystemTime> {
    let sid = SerializedIdentity::decode(creator).ok()?;
    let cert = Certificate::from_pem(&sid.id_bytes).ok()?;
    let t = cert.not_after();
    Some(if t >= 0 {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(t as u64)
    } else {
        SystemTime::UNIX_EPOCH - std::time::Duration::from_secs(t.unsigned_abs())
    })
}

impl ChannelPolicies {
    /// Sets up the MSPs and the policy tree of a channel config.
    pub fn from_config(config: &Config) -> Result<Self, PolicyError> {
        let policies = PolicyManager::from_config(config)?;
        let capabilities =
            orderer_value::<Capabilities>(config, fabric_msp::manager::CAPABILITIES_KEY)
                .unwrap_or_default();
        let has_any = |names: &[&str]| {
            names
                .iter()
                .any(|k| capabilities.capabilities.contains_key(*k))
        };
        let expiration_capability = has_any(&EXPIRATION_CHECK_CAPABILITIES);
        let migration_capability = has_any(&MIGRATION_CAPABILITIES);
        let maintenance = orderer_value::<ConsensusType>(config, "ConsensusType")
            .is_some_and(|c| c.state == consensus_type::State::Maintenance as i32);
        Ok(Self {
            policies,
            expiration_capability,
            maintenance,
            migration_capability,
        })
    }

    /// Whether normal (non-config) transactions are refused: the channel is
    /// in maintenance mode under a consensus-migration capability (Fabric's
    /// `StandardChannel.ProcessNormalMsg`, checked before the filters).
    pub fn normal_rejected(&self) -> bool {
        self.maintenance && self.migration_capability
    }

    /// The channel's MSPs (with the identity cache).
    pub fn msp_manager(&self) -> &Arc<MspManager> {
        self.policies.msp_manager()
    }

    /// The channel's policy tree.
    pub fn policy_manager(&self) -> &PolicyManager {
        &self.policies
    }

    /// Whether the broadcast expiration rule is on for this channel's
    /// orderer capabilities.
    pub fn expiration_capability(&self) -> bool {
        self.expiration_capability
    }

    /// When the creator's certificate expires (Fabric's `crypto.ExpiresAt`),
    /// `None` if it cannot expire (no parsable certificate). Channel
    /// members are answered from the identity cache; other creators are
    /// parsed directly.
    pub fn creator_expires_at(&self, creator: &[u8]) -> Option<SystemTime> {
        match self.msp_manager().deserialize_identity(creator) {
            Ok(id) => Some(id.expires_at()),
            Err(_) => raw_expires_at(creator),
        }
    }

    /// Evaluates a policy by path over a signature set; a missing policy
    /// is refused like Fabric's sigfilter does.
    pub fn evaluate(&self, path: &str, signed: &[SignedData]) -> Result<(), FilterError> {
        let (policy, found) = self.policies.get_policy(path);
        if !found {
            return Err(FilterError::NoPolicy(path.to_string()));
        }
        policy.evaluate_signed_data(signed).map_err(|e| {
            tracing::debug!(policy = path, reason = %e.explain(), "signature set did not satisfy policy");
            FilterError::PermissionDenied(e.to_string())
        })
    }

    /// The writers policy in force: `/Channel/Writers`, or
    /// `/Channel/Orderer/Writers` in maintenance mode.
    pub fn writers_path(&self) -> &'static str {
        if self.maintenance {
            CHANNEL_ORDERER_WRITERS
        } else {
            CHANNEL_WRITERS
        }
    }

    /// The readers policy in force: `/Channel/Readers`, or
    /// `/Channel/Orderer/Readers` in maintenance mode.
    pub fn readers_path(&self) -> &'static str {
        if self.maintenance {
            CHANNEL_ORDERER_READERS
        } else {
            CHANNEL_READERS
        }
    }

    /// Deliver's policy check: the seek envelope's signature set against
    /// the readers policy.
    pub fn check_readers(&self, signed: &[SignedData]) -> Result<(), FilterError> {
        self.evaluate(self.readers_path(), signed)
    }
}

/// The envelope's signature set built from its already decoded headers
/// (what `signed_data_from_envelope` returns, without decoding again).
pub fn envelope_signed_data(env: &Envelope, parsed: &ParsedEnvelope) -> [SignedData; 1] {
    [SignedData {
        data: env.payload.clone(),
        identity: parsed.signature_header.creator.clone(),
        signature: env.signature.clone(),
    }]
}

impl WriterPolicy for ChannelPolicies {
    fn check_expiration(
        &self,
        _env: &Envelope,
        parsed: &ParsedEnvelope,
        now: SystemTime,
    ) -> Result<(), FilterError> {
        if !self.expiration_capability {
            return Ok(());
        }
        match self.creator_expires_at(&parsed.signature_header.creator) {
            Some(t) if t < now => Err(FilterError::IdentityExpired),
            _ => Ok(()),
        }
    }

    fn check(&self, env: &Envelope, parsed: &ParsedEnvelope) -> Result<(), FilterError> {
        self.evaluate(self.writers_path(), &envelope_signed_data(env, parsed))
    }
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
        assert_eq!(apply_filters(&env, &parsed, 100, true, &AcceptAll), Ok(()));
        assert_eq!(
            apply_filters(&env, &parsed, 99, true, &AcceptAll),
            Err(FilterError::TooLarge { size: 100, max: 99 })
        );
        let empty = Envelope {
            payload: vec![],
            signature: vec![1],
        };
        assert_eq!(
            apply_filters(&empty, &parsed, 99, true, &AcceptAll),
            Err(FilterError::Empty)
        );
    }

    fn dev_policies(org: &fabric_common::devcrypto::DevOrg) -> ChannelPolicies {
        let dev = fabric_configtx::dev::DevNetwork::new(org.msp_dir());
        let block = fabric_configtx::genesis::genesis_block_from_profile(
            &dev.system_channel_profile(),
            "ch",
        )
        .unwrap();
        let config = crate::channelconfig::ChannelConfig::from_block(&block).unwrap();
        ChannelPolicies::from_config(&config.config).unwrap()
    }

    #[test]
    fn maintenance_mode_refuses_normal_transactions_under_migration_capability() {
        use fabric_protos::common::ConfigValue;
        let dir = tempfile::tempdir().unwrap();
        let org = fabric_common::devcrypto::DevOrg::create(dir.path(), "SampleOrg", "example.com")
            .unwrap();
        let dev = fabric_configtx::dev::DevNetwork::new(org.msp_dir());
        let block = fabric_configtx::genesis::genesis_block_from_profile(
            &dev.system_channel_profile(),
            "ch",
        )
        .unwrap();
        let config = crate::channelconfig::ChannelConfig::from_block(&block)
            .unwrap()
            .config;
        let normal = ChannelPolicies::from_config(&config).unwrap();
        assert!(!normal.normal_rejected());
        assert_eq!(normal.writers_path(), CHANNEL_WRITERS);

        let set_orderer_value = |c: &mut Config, key: &str, bytes: Vec<u8>| {
            let orderer = c
                .channel_group
                .as_mut()
                .unwrap()
                .groups
                .get_mut(fabric_msp::manager::ORDERER_GROUP)
                .unwrap();
            orderer.values.insert(
                key.to_string(),
                ConfigValue {
                    value: bytes,
                    ..Default::default()
                },
            );
        };
        let mut maint = config.clone();
        let mut ct = orderer_value::<ConsensusType>(&config, "ConsensusType").unwrap();
        ct.state = consensus_type::State::Maintenance as i32;
        set_orderer_value(&mut maint, "ConsensusType", ct.encode_to_vec());
        let p = ChannelPolicies::from_config(&maint).unwrap();
        assert!(p.normal_rejected(), "dev network has the V1_4_2 capability");
        assert_eq!(p.writers_path(), CHANNEL_ORDERER_WRITERS);

        // Without V1_4_2/V2_0 Fabric orders normal transactions even in maintenance.
        let mut old = maint.clone();
        let caps = Capabilities {
            capabilities: [("V1_1".to_string(), Default::default())].into(),
        };
        set_orderer_value(
            &mut old,
            fabric_msp::manager::CAPABILITIES_KEY,
            caps.encode_to_vec(),
        );
        assert!(!ChannelPolicies::from_config(&old)
            .unwrap()
            .normal_rejected());
    }

    #[test]
    fn filters_in_fabric_order_and_a_repeated_creator_is_one_lookup() {
        use fabric_common::devcrypto::{DevOrg, NodeOu};
        use fabric_common::envelope::{create_signed_envelope, parse_envelope, EnvelopeOptions};
        use fabric_common::msp::LocalSigner;
        let dir = tempfile::tempdir().unwrap();
        let org = DevOrg::create(&dir.path().join("o"), "SampleOrg", "example.com").unwrap();
        let other = DevOrg::create(&dir.path().join("x"), "Outsider", "x.example.org").unwrap();
        let p = dev_policies(&org);
        assert!(p.expiration_capability(), "V1_4_2 orderer capability");
        let load = |o: &DevOrg, name: &str, days: i64| {
            LocalSigner::load(
                &o.issue_with_validity(name, NodeOu::Client, days).unwrap(),
                &o.mspid,
            )
            .unwrap()
        };
        let user = load(&org, "User1", 30);
        let expired = load(&org, "Old", -1);
        let outsider = load(&other, "Out", 30);
        let env = |s: &LocalSigner, n: usize| {
            create_signed_envelope(
                HeaderType::Message,
                "ch",
                Some(s),
                vec![1; n],
                &EnvelopeOptions::default(),
            )
        };
        let run = |e: &Envelope, checks: bool| {
            apply_filters(e, &parse_envelope(e).unwrap(), 2000, checks, &p)
        };
        for _ in 0..100 {
            assert_eq!(run(&env(&user, 10), true), Ok(()));
        }
        let stats = p.msp_manager().cache_stats();
        assert_eq!(stats.misses, 1, "{stats:?}");
        // Size before expiry before signature.
        assert!(matches!(
            run(&env(&outsider, 5000), true),
            Err(FilterError::TooLarge { .. })
        ));
        let mut bad = env(&expired, 10);
        bad.signature = vec![1, 2, 3];
        assert_eq!(run(&bad, true), Err(FilterError::IdentityExpired));
        assert!(matches!(
            run(&bad, false),
            Err(FilterError::PermissionDenied(_))
        ));
        let Err(FilterError::PermissionDenied(why)) = run(&env(&outsider, 10), true) else {
            panic!("outsider accepted")
        };
        assert_eq!(
            FilterError::PermissionDenied(why).to_string(),
            "implicit policy evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 of the 'Writers' sub-policies to be satisfied: permission denied"
        );
    }
}
