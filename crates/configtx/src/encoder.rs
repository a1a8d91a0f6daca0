//! The channel configuration tree exactly as Fabric's configtxgen encoder
//! builds it (`internal/configtxgen/encoder`).
//!
//! Policies: when a group defines policies they are encoded as given and
//! Fabric v2's checks apply (Readers, Writers and Admins required, plus
//! BlockValidation for the Orderer group). When a group defines none, the
//! defaults Fabric v1.4 emitted are used (with a warning): ImplicitMeta
//! `ANY Readers` / `ANY Writers` / `MAJORITY Admins` (+ `ANY Writers`
//! BlockValidation for the orderer) on channel/orderer/application groups,
//! and one-signature member/admin policies on organizations.

use std::collections::BTreeMap;
use std::path::Path;

use fabric_protos::common::{
    msp_role, policy, BlockDataHashingStructure, Capabilities, Capability, ConfigGroup,
    ConfigPolicy, ConfigValue, Consortium, HashingAlgorithm, OrdererAddresses,
    Policy as PolicyProto,
};
use fabric_protos::orderer::{
    BatchSize, BatchTimeout, ChannelRestrictions, ConsensusType, KafkaBrokers,
};
use fabric_protos::peer::{AcLs, AnchorPeer, AnchorPeers, ApiResource};
use prost::Message;

use crate::config::{
    self, Application, Orderer, Organization, Policies, Profile, ADMIN_ROLE_ADMIN_PRINCIPAL,
    IMPLICIT_META_POLICY_TYPE, SIGNATURE_POLICY_TYPE,
};
use crate::error::{Error, Result};
use crate::gowire;
use crate::msp::verifying_msp_config;
use crate::policydsl;

/// Config keys and policy names used by the encoder (Fabric's `channelconfig` constants).
pub mod keys {
    /// `Readers`.
    pub const READERS: &str = "Readers";
    /// `Writers`.
    pub const WRITERS: &str = "Writers";
    /// `Admins`.
    pub const ADMINS: &str = "Admins";
    /// `BlockValidation`.
    pub const BLOCK_VALIDATION: &str = "BlockValidation";
    /// `/Channel/Orderer/Admins`.
    pub const ORDERER_ADMINS_POLICY: &str = "/Channel/Orderer/Admins";
    /// `Orderer`.
    pub const ORDERER_GROUP: &str = "Orderer";
    /// `Application`.
    pub const APPLICATION_GROUP: &str = "Application";
    /// `Consortiums`.
    pub const CONSORTIUMS_GROUP: &str = "Consortiums";
    /// `HashingAlgorithm`.
    pub const HASHING_ALGORITHM: &str = "HashingAlgorithm";
    /// `BlockDataHashingStructure`.
    pub const BLOCK_DATA_HASHING_STRUCTURE: &str = "BlockDataHashingStructure";
    /// `OrdererAddresses`.
    pub const ORDERER_ADDRESSES: &str = "OrdererAddresses";
    /// `Consortium`.
    pub const CONSORTIUM: &str = "Consortium";
    /// `Capabilities`.
    pub const CAPABILITIES: &str = "Capabilities";
    /// `ConsensusType`.
    pub const CONSENSUS_TYPE: &str = "ConsensusType";
    /// `BatchSize`.
    pub const BATCH_SIZE: &str = "BatchSize";
    /// `BatchTimeout`.
    pub const BATCH_TIMEOUT: &str = "BatchTimeout";
    /// `ChannelRestrictions`.
    pub const CHANNEL_RESTRICTIONS: &str = "ChannelRestrictions";
    /// `KafkaBrokers`.
    pub const KAFKA_BROKERS: &str = "KafkaBrokers";
    /// `MSP`.
    pub const MSP: &str = "MSP";
    /// `Endpoints`.
    pub const ENDPOINTS: &str = "Endpoints";
    /// `AnchorPeers`.
    pub const ANCHOR_PEERS: &str = "AnchorPeers";
    /// `ACLs`.
    pub const ACLS: &str = "ACLs";
    /// `ChannelCreationPolicy`.
    pub const CHANNEL_CREATION_POLICY: &str = "ChannelCreationPolicy";
}

use keys::*;

fn add_value(g: &mut ConfigGroup, key: &str, value: Vec<u8>, mod_policy: &str) {
    g.values.insert(
        key.to_string(),
        ConfigValue {
            version: 0,
            value,
            mod_policy: mod_policy.to_string(),
        },
    );
}

fn add_policy(g: &mut ConfigGroup, key: &str, policy: PolicyProto, mod_policy: &str) {
    g.policies.insert(
        key.to_string(),
        ConfigPolicy {
            version: 0,
            policy: Some(policy),
            mod_policy: mod_policy.to_string(),
        },
    );
}

/// `Policy{type: IMPLICIT_META, value: ImplicitMetaPolicy{sub_policy, rule}}`.
pub fn implicit_meta_policy(
    sub_policy: &str,
    rule: fabric_protos::common::implicit_meta_policy::Rule,
) -> PolicyProto {
    PolicyProto {
        r#type: policy::PolicyType::ImplicitMeta as i32,
        value: fabric_protos::common::ImplicitMetaPolicy {
            sub_policy: sub_policy.into(),
            rule: rule as i32,
        }
        .encode_to_vec(),
    }
}

fn signature_policy(env: &fabric_protos::common::SignaturePolicyEnvelope) -> PolicyProto {
    PolicyProto {
        r#type: policy::PolicyType::Signature as i32,
        value: env.encode_to_vec(),
    }
}

/// Encodes one policy definition (`Type`/`Rule`) to a `common.Policy`.
pub fn encode_policy(p: &config::Policy) -> Result<PolicyProto> {
    match p.policy_type.as_str() {
        IMPLICIT_META_POLICY_TYPE => {
            let imp = policydsl::implicit_meta_from_str(&p.rule).map_err(|e| {
                e.context(format!("invalid implicit meta policy rule '{}'", p.rule))
            })?;
            Ok(PolicyProto {
                r#type: policy::PolicyType::ImplicitMeta as i32,
                value: imp.encode_to_vec(),
            })
        }
        SIGNATURE_POLICY_TYPE => {
            let sp = policydsl::signature_policy_from_str(&p.rule)
                .map_err(|e| e.context(format!("invalid signature policy rule '{}'", p.rule)))?;
            Ok(signature_policy(&sp))
        }
        other => Err(Error::Encode(format!("unknown policy type: {other}"))),
    }
}

fn add_policies(
    g: &mut ConfigGroup,
    policies: &Policies,
    mod_policy: &str,
    orderer: bool,
) -> Result<()> {
    if orderer && !policies.contains_key(BLOCK_VALIDATION) {
        return Err(Error::Encode("no BlockValidation policy defined".into()));
    }
    for key in [ADMINS, READERS, WRITERS] {
        if !policies.contains_key(key) {
            return Err(Error::Encode(format!("no {key} policy defined")));
        }
    }
    for (name, p) in policies {
        add_policy(g, name, encode_policy(p)?, mod_policy);
    }
    Ok(())
}

fn add_implicit_meta_defaults(g: &mut ConfigGroup, what: &str) {
    use fabric_protos::common::implicit_meta_policy::Rule;
    eprintln!(
        "warning: Default policy emission is deprecated, please include policy specifications for the {what} group in configtx.yaml"
    );
    add_policy(
        g,
        ADMINS,
        implicit_meta_policy(ADMINS, Rule::Majority),
        ADMINS,
    );
    add_policy(g, READERS, implicit_meta_policy(READERS, Rule::Any), ADMINS);
    add_policy(g, WRITERS, implicit_meta_policy(WRITERS, Rule::Any), ADMINS);
}

fn add_signature_defaults(g: &mut ConfigGroup, org: &Organization) {
    use msp_role::MspRoleType;
    eprintln!(
        "warning: Default policy emission is deprecated, please include policy specifications for the org group {} in configtx.yaml",
        org.name
    );
    let dev_mode =
        !org.admin_principal.is_empty() && org.admin_principal != ADMIN_ROLE_ADMIN_PRINCIPAL;
    let admin_role = if dev_mode {
        MspRoleType::Member
    } else {
        MspRoleType::Admin
    };
    add_policy(
        g,
        ADMINS,
        signature_policy(&policydsl::signed_by_msp_role(&org.id, admin_role)),
        ADMINS,
    );
    add_policy(
        g,
        READERS,
        signature_policy(&policydsl::signed_by_msp_role(&org.id, MspRoleType::Member)),
        ADMINS,
    );
    add_policy(
        g,
        WRITERS,
        signature_policy(&policydsl::signed_by_msp_role(&org.id, MspRoleType::Member)),
        ADMINS,
    );
}

fn group_policies(
    g: &mut ConfigGroup,
    policies: &Policies,
    orderer: bool,
    what: &str,
) -> Result<()> {
    if policies.is_empty() {
        if orderer {
            use fabric_protos::common::implicit_meta_policy::Rule;
            add_policy(
                g,
                BLOCK_VALIDATION,
                implicit_meta_policy(WRITERS, Rule::Any),
                ADMINS,
            );
        }
        add_implicit_meta_defaults(g, what);
        Ok(())
    } else {
        add_policies(g, policies, ADMINS, orderer)
    }
}

fn org_policies(g: &mut ConfigGroup, org: &Organization) -> Result<()> {
    if org.policies.is_empty() {
        add_signature_defaults(g, org);
        Ok(())
    } else {
        add_policies(g, &org.policies, ADMINS, false)
    }
}

/// The `Capabilities` value bytes (only capabilities set to `true`).
pub fn capabilities_value(caps: &BTreeMap<String, bool>) -> Vec<u8> {
    let c = Capabilities {
        capabilities: caps
            .iter()
            .filter(|(_, on)| **on)
            .map(|(k, _)| (k.clone(), Capability {}))
            .collect(),
    };
    gowire::capabilities(&c)
}

fn msp_value(org: &Organization) -> Result<Vec<u8>> {
    let conf =
        verifying_msp_config(Path::new(&org.msp_dir), &org.id, &org.msp_type).map_err(|e| {
            e.context(format!(
                "1 - Error loading MSP configuration for org: {}",
                org.name
            ))
        })?;
    Ok(conf.encode_to_vec())
}

/// The part every org group shares (Fabric's `New*OrgGroup`): mod policy
/// Admins, and unless the org is foreign its policies and MSP value.
/// The flag is `false` for a foreign org (`SkipAsForeign`), whose group is
/// empty. `what` names the group in errors as Fabric does.
fn org_group_base(org: &Organization, what: &str) -> Result<(ConfigGroup, bool)> {
    let mut g = ConfigGroup {
        mod_policy: ADMINS.into(),
        ..Default::default()
    };
    if org.skip_as_foreign {
        return Ok((g, false));
    }
    let msp = msp_value(org)?;
    org_policies(&mut g, org).map_err(|e| e.context(format!("error adding policies to {what}")))?;
    add_value(&mut g, MSP, msp, ADMINS);
    Ok((g, true))
}

/// The group of an orderer organization (`NewOrdererOrgGroup`).
pub fn new_orderer_org_group(org: &Organization) -> Result<ConfigGroup> {
    let (mut g, full) = org_group_base(org, &format!("orderer org group '{}'", org.name))?;
    if full && !org.orderer_endpoints.is_empty() {
        add_value(
            &mut g,
            ENDPOINTS,
            OrdererAddresses {
                addresses: org.orderer_endpoints.clone(),
            }
            .encode_to_vec(),
            ADMINS,
        );
    }
    Ok(g)
}

/// The group of an application organization (`NewApplicationOrgGroup`).
pub fn new_application_org_group(org: &Organization) -> Result<ConfigGroup> {
    let (mut g, full) = org_group_base(org, &format!("application org group {}", org.name))?;
    if full && !org.anchor_peers.is_empty() {
        let anchors = AnchorPeers {
            anchor_peers: org
                .anchor_peers
                .iter()
                .map(|a| AnchorPeer {
                    host: a.host.clone(),
                    port: a.port as i32,
                })
                .collect(),
        };
        add_value(&mut g, ANCHOR_PEERS, anchors.encode_to_vec(), ADMINS);
    }
    Ok(g)
}

/// The group of a consortium member (`NewConsortiumOrgGroup`).
pub fn new_consortium_org_group(org: &Organization) -> Result<ConfigGroup> {
    Ok(org_group_base(org, &format!("consortiums org group '{}'", org.name))?.0)
}

/// Local definitions of Fabric's `orderer/etcdraft` messages.
pub mod etcdraft {
    /// `etcdraft.ConfigMetadata`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ConfigMetadata {
        /// Consenters.
        #[prost(message, repeated, tag = "1")]
        pub consenters: Vec<Consenter>,
        /// Options.
        #[prost(message, optional, tag = "2")]
        pub options: Option<Options>,
    }

    /// `etcdraft.Consenter`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Consenter {
        /// Host.
        #[prost(string, tag = "1")]
        pub host: String,
        /// Port.
        #[prost(uint32, tag = "2")]
        pub port: u32,
        /// PEM client TLS certificate.
        #[prost(bytes = "vec", tag = "3")]
        pub client_tls_cert: Vec<u8>,
        /// PEM server TLS certificate.
        #[prost(bytes = "vec", tag = "4")]
        pub server_tls_cert: Vec<u8>,
    }

    /// `etcdraft.Options`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Options {
        /// Tick interval.
        #[prost(string, tag = "1")]
        pub tick_interval: String,
        /// Election tick.
        #[prost(uint32, tag = "2")]
        pub election_tick: u32,
        /// Heartbeat tick.
        #[prost(uint32, tag = "3")]
        pub heartbeat_tick: u32,
        /// Max in-flight blocks.
        #[prost(uint32, tag = "4")]
        pub max_inflight_blocks: u32,
        /// Snapshot interval size.
        #[prost(uint32, tag = "5")]
        pub snapshot_interval_size: u32,
    }
}

fn etcdraft_metadata(raft: &config::EtcdRaft) -> Result<Vec<u8>> {
    let mut consenters = Vec::new();
    for c in &raft.consenters {
        let client = std::fs::read(&c.client_tls_cert).map_err(|e| {
            Error::Encode(format!(
                "cannot load client cert for consenter {}:{}: {e}",
                c.host, c.port
            ))
        })?;
        let server = std::fs::read(&c.server_tls_cert).map_err(|e| {
            Error::Encode(format!(
                "cannot load server cert for consenter {}:{}: {e}",
                c.host, c.port
            ))
        })?;
        consenters.push(etcdraft::Consenter {
            host: c.host.clone(),
            port: c.port,
            client_tls_cert: client,
            server_tls_cert: server,
        });
    }
    let options = raft.options.as_ref().map(|o| etcdraft::Options {
        tick_interval: o.tick_interval.clone(),
        election_tick: o.election_tick,
        heartbeat_tick: o.heartbeat_tick,
        max_inflight_blocks: o.max_inflight_blocks,
        snapshot_interval_size: o.snapshot_interval_size,
    });
    Ok(etcdraft::ConfigMetadata {
        consenters,
        options,
    }
    .encode_to_vec())
}

/// The Orderer group (`NewOrdererGroup`).
pub fn new_orderer_group(conf: &Orderer) -> Result<ConfigGroup> {
    let mut g = ConfigGroup::default();
    group_policies(&mut g, &conf.policies, true, "orderer")
        .map_err(|e| e.context("error adding policies to orderer group"))?;
    let bs = conf.batch_size;
    add_value(
        &mut g,
        BATCH_SIZE,
        BatchSize {
            max_message_count: bs.max_message_count,
            absolute_max_bytes: bs.absolute_max_bytes,
            preferred_max_bytes: bs.preferred_max_bytes,
        }
        .encode_to_vec(),
        ADMINS,
    );
    add_value(
        &mut g,
        BATCH_TIMEOUT,
        BatchTimeout {
            timeout: conf.batch_timeout.to_string(),
        }
        .encode_to_vec(),
        ADMINS,
    );
    add_value(
        &mut g,
        CHANNEL_RESTRICTIONS,
        ChannelRestrictions {
            max_count: conf.max_channels,
        }
        .encode_to_vec(),
        ADMINS,
    );
    if !conf.capabilities.is_empty() {
        add_value(
            &mut g,
            CAPABILITIES,
            capabilities_value(&conf.capabilities),
            ADMINS,
        );
    }
    let metadata = match conf.orderer_type.as_str() {
        "solo" => Vec::new(),
        "kafka" => {
            let brokers = conf.kafka_brokers.clone().unwrap_or_default();
            add_value(
                &mut g,
                KAFKA_BROKERS,
                KafkaBrokers { brokers }.encode_to_vec(),
                ADMINS,
            );
            Vec::new()
        }
        "etcdraft" => {
            let raft = conf
                .etcd_raft
                .as_ref()
                .ok_or_else(|| Error::Encode("etcdraft configuration missing".into()))?;
            etcdraft_metadata(raft)
                .map_err(|e| e.context("cannot marshal metadata for orderer type etcdraft"))?
        }
        other => return Err(Error::Encode(format!("unknown orderer type: {other}"))),
    };
    add_value(
        &mut g,
        CONSENSUS_TYPE,
        ConsensusType {
            r#type: conf.orderer_type.clone(),
            metadata,
            state: 0,
        }
        .encode_to_vec(),
        ADMINS,
    );
    for org in &conf.organizations {
        let og =
            new_orderer_org_group(org).map_err(|e| e.context("failed to create orderer org"))?;
        g.groups.insert(org.name.clone(), og);
    }
    g.mod_policy = ADMINS.into();
    Ok(g)
}

/// The Application group (`NewApplicationGroup`).
pub fn new_application_group(conf: &Application) -> Result<ConfigGroup> {
    let mut g = ConfigGroup::default();
    group_policies(&mut g, &conf.policies, false, "application")
        .map_err(|e| e.context("error adding policies to application group"))?;
    if !conf.acls.is_empty() {
        let acls = AcLs {
            acls: conf
                .acls
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        ApiResource {
                            policy_ref: v.clone(),
                        },
                    )
                })
                .collect(),
        };
        add_value(&mut g, ACLS, gowire::acls(&acls), ADMINS);
    }
    if !conf.capabilities.is_empty() {
        add_value(
            &mut g,
            CAPABILITIES,
            capabilities_value(&conf.capabilities),
            ADMINS,
        );
    }
    for org in &conf.organizations {
        let og = new_application_org_group(org)
            .map_err(|e| e.context("failed to create application org"))?;
        g.groups.insert(org.name.clone(), og);
    }
    g.mod_policy = ADMINS.into();
    Ok(g)
}

/// The Consortiums group (`NewConsortiumsGroup`), system channel only.
pub fn new_consortiums_group(conf: &BTreeMap<String, config::Consortium>) -> Result<ConfigGroup> {
    use fabric_protos::common::implicit_meta_policy::Rule;
    let mut g = ConfigGroup::default();
    add_policy(
        &mut g,
        ADMINS,
        signature_policy(&policydsl::accept_all_policy()),
        ORDERER_ADMINS_POLICY,
    );
    for (name, consortium) in conf {
        let mut cg = ConfigGroup::default();
        for org in &consortium.organizations {
            let og = new_consortium_org_group(org).map_err(|e| {
                e.context("failed to create consortium org")
                    .context(format!("failed to create consortium {name}"))
            })?;
            cg.groups.insert(org.name.clone(), og);
        }
        add_value(
            &mut cg,
            CHANNEL_CREATION_POLICY,
            implicit_meta_policy(ADMINS, Rule::Any).encode_to_vec(),
            ORDERER_ADMINS_POLICY,
        );
        cg.mod_policy = ORDERER_ADMINS_POLICY.into();
        g.groups.insert(name.clone(), cg);
    }
    g.mod_policy = ORDERER_ADMINS_POLICY.into();
    Ok(g)
}

/// The root `Channel` group of a profile (`NewChannelGroup`).
pub fn new_channel_group(conf: &Profile) -> Result<ConfigGroup> {
    let mut g = ConfigGroup::default();
    group_policies(&mut g, &conf.policies, false, "channel")
        .map_err(|e| e.context("error adding policies to channel group"))?;
    add_value(
        &mut g,
        HASHING_ALGORITHM,
        HashingAlgorithm {
            name: "SHA256".into(),
        }
        .encode_to_vec(),
        ADMINS,
    );
    add_value(
        &mut g,
        BLOCK_DATA_HASHING_STRUCTURE,
        BlockDataHashingStructure { width: u32::MAX }.encode_to_vec(),
        ADMINS,
    );
    if let Some(o) = &conf.orderer {
        let addrs = o.addresses.clone().unwrap_or_default();
        if !addrs.is_empty() {
            add_value(
                &mut g,
                ORDERER_ADDRESSES,
                OrdererAddresses { addresses: addrs }.encode_to_vec(),
                ORDERER_ADMINS_POLICY,
            );
        }
    }
    if !conf.consortium.is_empty() {
        add_value(
            &mut g,
            CONSORTIUM,
            Consortium {
                name: conf.consortium.clone(),
            }
            .encode_to_vec(),
            ADMINS,
        );
    }
    if !conf.capabilities.is_empty() {
        add_value(
            &mut g,
            CAPABILITIES,
            capabilities_value(&conf.capabilities),
            ADMINS,
        );
    }
    if let Some(o) = &conf.orderer {
        g.groups.insert(
            ORDERER_GROUP.into(),
            new_orderer_group(o).map_err(|e| e.context("could not create orderer group"))?,
        );
    }
    if let Some(a) = &conf.application {
        g.groups.insert(
            APPLICATION_GROUP.into(),
            new_application_group(a)
                .map_err(|e| e.context("could not create application group"))?,
        );
    }
    if let Some(c) = &conf.consortiums {
        g.groups.insert(
            CONSORTIUMS_GROUP.into(),
            new_consortiums_group(c)
                .map_err(|e| e.context("could not create consortiums group"))?,
        );
    }
    g.mod_policy = ADMINS.into();
    Ok(g)
}

/// Fails when any organization of the profile is marked `SkipAsForeign`
/// (genesis blocks need every organization's material).
pub fn has_skipped_foreign_orgs(conf: &Profile) -> Result<()> {
    let mut orgs: Vec<&Organization> = Vec::new();
    if let Some(o) = &conf.orderer {
        orgs.extend(&o.organizations);
    }
    if let Some(a) = &conf.application {
        orgs.extend(&a.organizations);
    }
    if let Some(cs) = &conf.consortiums {
        for c in cs.values() {
            orgs.extend(&c.organizations);
        }
    }
    match orgs.iter().find(|o| o.skip_as_foreign) {
        Some(o) => Err(Error::Encode(format!(
            "organization '{}' is marked to be skipped as foreign",
            o.name
        ))),
        None => Ok(()),
    }
}
