//! `configtx.yaml` in Fabric's format (v1.4 and v2.x), with the defaults
//! Fabric's `genesisconfig` fills in (`completeInitialization`).
//!
//! Keys are matched case-insensitively (viper lower-cases them), YAML
//! anchors, aliases and `<<` merge keys are honoured, sizes accept `10 MB` /
//! `512 KB` (powers of 1024) and durations Go's syntax (`2s`, `500ms`).
//! Relative paths (`MSPDir`, etcdraft TLS certificates) are resolved against
//! the directory holding the configtx.yaml.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::units::{parse_byte_size, GoDuration};

/// `Type: Signature` policies.
pub const SIGNATURE_POLICY_TYPE: &str = "Signature";
/// `Type: ImplicitMeta` policies.
pub const IMPLICIT_META_POLICY_TYPE: &str = "ImplicitMeta";
/// Default `AdminPrincipal` of organizations (Fabric's `AdminRoleAdminPrincipal`).
pub const ADMIN_ROLE_ADMIN_PRINCIPAL: &str = "Role.ADMIN";
/// Fabric's MSP type name for X.509 MSPs.
pub const MSP_TYPE_BCCSP: &str = "bccsp";

/// A policy definition (`Type` and `Rule`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// `Signature` or `ImplicitMeta`.
    pub policy_type: String,
    /// The rule, e.g. `OR('Org1MSP.member')` or `ANY Readers`.
    pub rule: String,
}

impl Policy {
    /// An `ImplicitMeta` policy.
    pub fn implicit_meta(rule: &str) -> Self {
        Policy {
            policy_type: IMPLICIT_META_POLICY_TYPE.into(),
            rule: rule.into(),
        }
    }

    /// A `Signature` policy.
    pub fn signature(rule: &str) -> Self {
        Policy {
            policy_type: SIGNATURE_POLICY_TYPE.into(),
            rule: rule.into(),
        }
    }
}

/// Policy name to definition.
pub type Policies = BTreeMap<String, Policy>;

/// An anchor peer of an application organization.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AnchorPeer {
    /// Host name.
    pub host: String,
    /// Port.
    pub port: i64,
}

/// An organization definition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Organization {
    /// The group name in the channel config.
    pub name: String,
    /// The MSP ID.
    pub id: String,
    /// The MSP folder (absolute after initialization).
    pub msp_dir: PathBuf,
    /// `bccsp` (default) or `idemix` (not supported by this encoder).
    pub msp_type: String,
    /// Readers/Writers/Admins (and any other) policies.
    pub policies: Policies,
    /// Anchor peers (application orgs).
    pub anchor_peers: Vec<AnchorPeer>,
    /// Orderer endpoints (orderer orgs, Fabric v1.4.2+/v2 `Endpoints` value).
    pub orderer_endpoints: Vec<String>,
    /// Deprecated v1.4 knob: anything but `Role.ADMIN` makes the default
    /// Admins policy accept members.
    pub admin_principal: String,
    /// The org's material is not available locally: encode an empty group.
    pub skip_as_foreign: bool,
}

/// The members of a consortium.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Consortium {
    /// Member organizations.
    pub organizations: Vec<Organization>,
}

/// The Application section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Application {
    /// Member organizations.
    pub organizations: Vec<Organization>,
    /// Capability name to enabled.
    pub capabilities: BTreeMap<String, bool>,
    /// Group policies.
    pub policies: Policies,
    /// ACL resource to policy reference.
    pub acls: BTreeMap<String, String>,
}

/// BatchSize of the Orderer section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchSize {
    /// Maximum number of messages in a batch.
    pub max_message_count: u32,
    /// Absolute maximum batch size in bytes.
    pub absolute_max_bytes: u32,
    /// Preferred maximum batch size in bytes.
    pub preferred_max_bytes: u32,
}

/// An etcd/raft consenter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EtcdRaftConsenter {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u32,
    /// Path of the client TLS certificate (absolute after initialization).
    pub client_tls_cert: PathBuf,
    /// Path of the server TLS certificate (absolute after initialization).
    pub server_tls_cert: PathBuf,
}

/// etcd/raft options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EtcdRaftOptions {
    /// Tick interval (a Go duration string).
    pub tick_interval: String,
    /// Election tick.
    pub election_tick: u32,
    /// Heartbeat tick.
    pub heartbeat_tick: u32,
    /// Maximum in-flight blocks.
    pub max_inflight_blocks: u32,
    /// Snapshot interval size in bytes.
    pub snapshot_interval_size: u32,
}

/// The EtcdRaft section of the Orderer section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EtcdRaft {
    /// Consenters.
    pub consenters: Vec<EtcdRaftConsenter>,
    /// Options (`None` = defaults).
    pub options: Option<EtcdRaftOptions>,
}

/// The Orderer section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Orderer {
    /// `solo`, `kafka` or `etcdraft`.
    pub orderer_type: String,
    /// Global orderer addresses (`None` = unset, gets Fabric's default).
    pub addresses: Option<Vec<String>>,
    /// Batch timeout (zero = unset).
    pub batch_timeout: GoDuration,
    /// Batch size (zero fields = unset).
    pub batch_size: BatchSize,
    /// Kafka brokers (`None` = unset).
    pub kafka_brokers: Option<Vec<String>>,
    /// etcd/raft configuration.
    pub etcd_raft: Option<EtcdRaft>,
    /// Orderer organizations.
    pub organizations: Vec<Organization>,
    /// Maximum number of channels (0 = unlimited).
    pub max_channels: u64,
    /// Capability name to enabled.
    pub capabilities: BTreeMap<String, bool>,
    /// Group policies.
    pub policies: Policies,
}

/// A profile: one channel configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profile {
    /// The consortium of an application channel.
    pub consortium: String,
    /// Application section.
    pub application: Option<Application>,
    /// Orderer section.
    pub orderer: Option<Orderer>,
    /// Consortiums (system channel only).
    pub consortiums: Option<BTreeMap<String, Consortium>>,
    /// Channel capabilities.
    pub capabilities: BTreeMap<String, bool>,
    /// Channel policies.
    pub policies: Policies,
}

/// The whole configtx.yaml document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopLevel {
    /// Profiles by name (not yet initialized; use [`TopLevel::profile`]).
    pub profiles: BTreeMap<String, Profile>,
    /// Top-level organizations (initialized).
    pub organizations: Vec<Organization>,
    /// The `Channel` section, if any.
    pub channel: Option<Profile>,
    /// The `Application` section, if any.
    pub application: Option<Application>,
    /// The `Orderer` section, if any (initialized).
    pub orderer: Option<Orderer>,
    /// The `Capabilities` section.
    pub capabilities: BTreeMap<String, BTreeMap<String, bool>>,
    /// Directory relative paths are resolved against.
    pub config_dir: PathBuf,
}

impl TopLevel {
    /// Parses a configtx.yaml document; relative paths resolve against `config_dir`.
    pub fn parse(yaml: &str, config_dir: &Path) -> Result<Self> {
        let root: Value = serde_saphyr::from_str(yaml).map_err(|e| Error::Yaml(e.to_string()))?;
        let mut t = decode_top_level(&root)?;
        t.config_dir = config_dir.to_path_buf();
        for org in &mut t.organizations {
            org.complete_initialization(config_dir);
        }
        if let Some(o) = &mut t.orderer {
            // The top-level Orderer section is only a template; ignore failures
            // the way a profile not referencing it would.
            let _ = o.complete_initialization(config_dir);
        }
        Ok(t)
    }

    /// Reads `configtx.yaml` from `dir` (like `-configPath` / `FABRIC_CFG_PATH`).
    pub fn load(dir: &Path) -> Result<Self> {
        let file = dir.join("configtx.yaml");
        let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        Self::parse(&text, &abs)
    }

    /// The named profile with Fabric's defaults filled in and paths resolved.
    pub fn profile(&self, name: &str) -> Result<Profile> {
        let mut p = self
            .profiles
            .get(name)
            .cloned()
            .ok_or_else(|| Error::Config(format!("Could not find profile: {name}")))?;
        p.complete_initialization(&self.config_dir)?;
        Ok(p)
    }

    /// A top-level organization by name.
    pub fn organization(&self, name: &str) -> Option<&Organization> {
        self.organizations.iter().find(|o| o.name == name)
    }
}

/// Joins a relative path onto `dir` (Fabric's `TranslatePathInPlace`).
fn translate_path(dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

impl Organization {
    /// Fills MSPType/AdminPrincipal defaults and resolves MSPDir.
    pub fn complete_initialization(&mut self, config_dir: &Path) {
        if self.msp_type.is_empty() {
            self.msp_type = MSP_TYPE_BCCSP.into();
        }
        if self.admin_principal.is_empty() {
            self.admin_principal = ADMIN_ROLE_ADMIN_PRINCIPAL.into();
        }
        self.msp_dir = translate_path(config_dir, &self.msp_dir);
    }
}

/// Fabric's genesis defaults for the Orderer section.
pub mod defaults {
    use crate::units::GoDuration;

    /// `solo`.
    pub const ORDERER_TYPE: &str = "solo";
    /// `127.0.0.1:7050`.
    pub const ADDRESS: &str = "127.0.0.1:7050";
    /// 2s.
    pub const BATCH_TIMEOUT: GoDuration = GoDuration::from_secs(2);
    /// 500.
    pub const MAX_MESSAGE_COUNT: u32 = 500;
    /// 10 MiB.
    pub const ABSOLUTE_MAX_BYTES: u32 = 10 * 1024 * 1024;
    /// 2 MiB.
    pub const PREFERRED_MAX_BYTES: u32 = 2 * 1024 * 1024;
    /// `127.0.0.1:9092`.
    pub const KAFKA_BROKER: &str = "127.0.0.1:9092";
    /// etcdraft TickInterval.
    pub const RAFT_TICK_INTERVAL: &str = "500ms";
    /// etcdraft ElectionTick.
    pub const RAFT_ELECTION_TICK: u32 = 10;
    /// etcdraft HeartbeatTick.
    pub const RAFT_HEARTBEAT_TICK: u32 = 1;
    /// etcdraft MaxInflightBlocks.
    pub const RAFT_MAX_INFLIGHT_BLOCKS: u32 = 5;
    /// etcdraft SnapshotIntervalSize (16 MiB).
    pub const RAFT_SNAPSHOT_INTERVAL_SIZE: u32 = 16 * 1024 * 1024;
}

impl Orderer {
    /// Fills Fabric's defaults (type, batch parameters, Kafka
    /// brokers, etcdraft options) and validates the consensus type.
    pub fn complete_initialization(&mut self, config_dir: &Path) -> Result<()> {
        if self.orderer_type.is_empty() {
            self.orderer_type = defaults::ORDERER_TYPE.into();
        }
        // Fabric v2.3+ (FAB-18054) no longer fills a default address: the
        // OrdererAddresses value is only written when addresses are listed.
        if self.batch_timeout.as_nanos() == 0 {
            self.batch_timeout = defaults::BATCH_TIMEOUT;
        }
        if self.batch_size.max_message_count == 0 {
            self.batch_size.max_message_count = defaults::MAX_MESSAGE_COUNT;
        }
        if self.batch_size.absolute_max_bytes == 0 {
            self.batch_size.absolute_max_bytes = defaults::ABSOLUTE_MAX_BYTES;
        }
        if self.batch_size.preferred_max_bytes == 0 {
            self.batch_size.preferred_max_bytes = defaults::PREFERRED_MAX_BYTES;
        }
        match self.orderer_type.as_str() {
            "solo" => {}
            "kafka" => {
                if self.kafka_brokers.is_none() {
                    self.kafka_brokers = Some(vec![defaults::KAFKA_BROKER.into()]);
                }
            }
            "etcdraft" => {
                let raft = self
                    .etcd_raft
                    .as_mut()
                    .ok_or_else(|| Error::Config("etcdraft configuration missing".into()))?;
                let o = raft.options.get_or_insert_with(Default::default);
                if o.tick_interval.is_empty() {
                    o.tick_interval = defaults::RAFT_TICK_INTERVAL.into();
                }
                if o.election_tick == 0 {
                    o.election_tick = defaults::RAFT_ELECTION_TICK;
                }
                if o.heartbeat_tick == 0 {
                    o.heartbeat_tick = defaults::RAFT_HEARTBEAT_TICK;
                }
                if o.max_inflight_blocks == 0 {
                    o.max_inflight_blocks = defaults::RAFT_MAX_INFLIGHT_BLOCKS;
                }
                if o.snapshot_interval_size == 0 {
                    o.snapshot_interval_size = defaults::RAFT_SNAPSHOT_INTERVAL_SIZE;
                }
                if raft.consenters.is_empty() {
                    return Err(Error::Config(
                        "etcdraft configuration did not specify any consenter".into(),
                    ));
                }
                GoDuration::parse(&o.tick_interval).map_err(|_| {
                    Error::Config(format!(
                        "Etcdraft TickInterval ({}) must be in time duration format",
                        o.tick_interval
                    ))
                })?;
                if o.election_tick <= o.heartbeat_tick {
                    return Err(Error::Config(
                        "election tick must be greater than heartbeat tick".into(),
                    ));
                }
                for c in &mut raft.consenters {
                    if c.host.is_empty() {
                        return Err(Error::Config(
                            "consenter info in etcdraft configuration did not specify host".into(),
                        ));
                    }
                    if c.port == 0 {
                        return Err(Error::Config(
                            "consenter info in etcdraft configuration did not specify port".into(),
                        ));
                    }
                    if c.client_tls_cert.as_os_str().is_empty() {
                        return Err(Error::Config(
                            "consenter info in etcdraft configuration did not specify client TLS cert".into(),
                        ));
                    }
                    if c.server_tls_cert.as_os_str().is_empty() {
                        return Err(Error::Config(
                            "consenter info in etcdraft configuration did not specify server TLS cert".into(),
                        ));
                    }
                    c.client_tls_cert = translate_path(config_dir, &c.client_tls_cert);
                    c.server_tls_cert = translate_path(config_dir, &c.server_tls_cert);
                }
            }
            other => return Err(Error::Config(format!("unknown orderer type: {other}"))),
        }
        Ok(())
    }
}

impl Profile {
    /// Fabric's `Profile.completeInitialization`: org defaults and paths,
    /// orderer defaults.
    pub fn complete_initialization(&mut self, config_dir: &Path) -> Result<()> {
        if let Some(app) = &mut self.application {
            for org in &mut app.organizations {
                org.complete_initialization(config_dir);
            }
        }
        if let Some(cs) = &mut self.consortiums {
            for c in cs.values_mut() {
                for org in &mut c.organizations {
                    org.complete_initialization(config_dir);
                }
            }
        }
        if let Some(o) = &mut self.orderer {
            for org in &mut o.organizations {
                org.complete_initialization(config_dir);
            }
            o.complete_initialization(config_dir)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Decoding from the generic YAML tree.

struct Obj<'a> {
    map: &'a Map<String, Value>,
    what: &'a str,
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "sequence",
        Value::Object(_) => "mapping",
    }
}

fn as_obj<'a>(v: &'a Value, what: &'a str) -> Result<Option<Obj<'a>>> {
    match v {
        Value::Null => Ok(None),
        Value::Object(map) => Ok(Some(Obj { map, what })),
        other => Err(Error::Config(format!(
            "{what}: expected a mapping, got {}",
            kind(other)
        ))),
    }
}

impl<'a> Obj<'a> {
    /// Case-insensitive lookup; explicit `null` is treated as absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    fn check_keys(&self, known: &[&str]) {
        for k in self.map.keys() {
            if !known.iter().any(|n| n.eq_ignore_ascii_case(k)) {
                eprintln!("warning: {}: ignoring unknown key '{k}'", self.what);
            }
        }
    }

    fn string(&self, key: &str) -> Result<String> {
        match self.get(key) {
            None => Ok(String::new()),
            Some(v) => scalar_string(v).ok_or_else(|| {
                Error::Config(format!(
                    "{}.{key}: expected a string, got {}",
                    self.what,
                    kind(v)
                ))
            }),
        }
    }

    fn bool(&self, key: &str) -> Result<bool> {
        match self.get(key) {
            None => Ok(false),
            Some(v) => to_bool(v)
                .ok_or_else(|| Error::Config(format!("{}.{key}: expected a bool", self.what))),
        }
    }

    fn uint(&self, key: &str, max: u64) -> Result<u64> {
        match self.get(key) {
            None => Ok(0),
            Some(v) => to_uint(v, max).ok_or_else(|| {
                Error::Config(format!(
                    "{}.{key}: expected an unsigned integer, got {v}",
                    self.what
                ))
            }),
        }
    }

    fn size(&self, key: &str) -> Result<u32> {
        match self.get(key) {
            None => Ok(0),
            Some(Value::String(s)) => {
                parse_byte_size(s).map_err(|e| e.context(format!("{}.{key}", self.what)))
            }
            Some(v) => to_uint(v, u32::MAX as u64)
                .map(|n| n as u32)
                .ok_or_else(|| {
                    Error::Config(format!(
                        "{}.{key}: expected a byte size, got {v}",
                        self.what
                    ))
                }),
        }
    }

    fn strings(&self, key: &str) -> Result<Option<Vec<String>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    scalar_string(v).ok_or_else(|| {
                        Error::Config(format!("{}.{key}: expected a list of strings", self.what))
                    })
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            // viper accepts a single string for a []string.
            Some(Value::String(s)) => Ok(Some(s.split_whitespace().map(str::to_string).collect())),
            Some(v) => Err(Error::Config(format!(
                "{}.{key}: expected a list, got {}",
                self.what,
                kind(v)
            ))),
        }
    }

    fn list(&self, key: &str) -> Result<&'a [Value]> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Value::Array(a)) => Ok(a),
            Some(v) => Err(Error::Config(format!(
                "{}.{key}: expected a list, got {}",
                self.what,
                kind(v)
            ))),
        }
    }
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn to_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "t" | "yes" | "y" | "on" => Some(true),
            "false" | "0" | "f" | "no" | "n" | "off" | "" => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        _ => None,
    }
}

fn to_uint(v: &Value, max: u64) -> Option<u64> {
    let n = match v {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => s.trim().parse::<u64>().ok()?,
        _ => return None,
    };
    (n <= max).then_some(n)
}

fn decode_bool_map(v: Option<&Value>, what: &str) -> Result<BTreeMap<String, bool>> {
    let mut out = BTreeMap::new();
    if let Some(v) = v {
        if let Some(o) = as_obj(v, what)? {
            for (k, v) in o.map {
                let b = to_bool(v)
                    .ok_or_else(|| Error::Config(format!("{what}.{k}: expected a bool")))?;
                out.insert(k.clone(), b);
            }
        }
    }
    Ok(out)
}

fn decode_policies(v: Option<&Value>, what: &str) -> Result<Policies> {
    let mut out = BTreeMap::new();
    if let Some(v) = v {
        if let Some(o) = as_obj(v, what)? {
            for (name, pv) in o.map {
                let w = format!("{what}.{name}");
                let Some(po) = as_obj(pv, &w)? else { continue };
                po.check_keys(&["Type", "Rule"]);
                out.insert(
                    name.clone(),
                    Policy {
                        policy_type: po.string("Type")?,
                        rule: po.string("Rule")?,
                    },
                );
            }
        }
    }
    Ok(out)
}

fn decode_org(v: &Value, what: &str) -> Result<Organization> {
    let o = as_obj(v, what)?.ok_or_else(|| Error::Config(format!("{what}: empty organization")))?;
    o.check_keys(&[
        "Name",
        "ID",
        "MSPDir",
        "MSPType",
        "Policies",
        "AnchorPeers",
        "OrdererEndpoints",
        "AdminPrincipal",
        "SkipAsForeign",
    ]);
    let name = o.string("Name")?;
    let w = format!("{what}({name})");
    let mut anchor_peers = Vec::new();
    for (i, a) in o.list("AnchorPeers")?.iter().enumerate() {
        let aw = format!("{w}.AnchorPeers[{i}]");
        if let Some(ao) = as_obj(a, &aw)? {
            ao.check_keys(&["Host", "Port"]);
            let port = match ao.get("Port") {
                None => 0,
                Some(p) => match p {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                }
                .ok_or_else(|| Error::Config(format!("{aw}.Port: expected an integer")))?,
            };
            anchor_peers.push(AnchorPeer {
                host: ao.string("Host")?,
                port,
            });
        }
    }
    Ok(Organization {
        id: o.string("ID")?,
        msp_dir: PathBuf::from(o.string("MSPDir")?),
        msp_type: o.string("MSPType")?,
        policies: decode_policies(o.get("Policies"), &format!("{w}.Policies"))?,
        anchor_peers,
        orderer_endpoints: o.strings("OrdererEndpoints")?.unwrap_or_default(),
        admin_principal: o.string("AdminPrincipal")?,
        skip_as_foreign: o.bool("SkipAsForeign")?,
        name,
    })
}

fn decode_orgs(o: &Obj<'_>, what: &str) -> Result<Vec<Organization>> {
    o.list("Organizations")?
        .iter()
        .enumerate()
        .map(|(i, v)| decode_org(v, &format!("{what}.Organizations[{i}]")))
        .collect()
}

fn decode_application(v: &Value, what: &str) -> Result<Option<Application>> {
    let Some(o) = as_obj(v, what)? else {
        return Ok(None);
    };
    o.check_keys(&[
        "Organizations",
        "Capabilities",
        "Resources",
        "Policies",
        "ACLs",
    ]);
    let mut acls = BTreeMap::new();
    if let Some(av) = o.get("ACLs") {
        if let Some(ao) = as_obj(av, "ACLs")? {
            for (k, v) in ao.map {
                let s = scalar_string(v)
                    .ok_or_else(|| Error::Config(format!("{what}.ACLs.{k}: expected a string")))?;
                acls.insert(k.clone(), s);
            }
        }
    }
    Ok(Some(Application {
        organizations: decode_orgs(&o, what)?,
        capabilities: decode_bool_map(o.get("Capabilities"), &format!("{what}.Capabilities"))?,
        policies: decode_policies(o.get("Policies"), &format!("{what}.Policies"))?,
        acls,
    }))
}

fn decode_orderer(v: &Value, what: &str) -> Result<Option<Orderer>> {
    let Some(o) = as_obj(v, what)? else {
        return Ok(None);
    };
    o.check_keys(&[
        "OrdererType",
        "Addresses",
        "BatchTimeout",
        "BatchSize",
        "Kafka",
        "EtcdRaft",
        "Organizations",
        "MaxChannels",
        "Capabilities",
        "Policies",
    ]);
    let batch_timeout = match o.get("BatchTimeout") {
        None => GoDuration(0),
        Some(Value::String(s)) if s.is_empty() => GoDuration(0),
        Some(Value::String(s)) => {
            GoDuration::parse(s).map_err(|e| e.context(format!("{what}.BatchTimeout")))?
        }
        // A bare integer is nanoseconds (mapstructure's int -> time.Duration).
        Some(Value::Number(n)) => GoDuration(
            n.as_i64()
                .ok_or_else(|| Error::Config(format!("{what}.BatchTimeout: out of range")))?,
        ),
        Some(v) => {
            return Err(Error::Config(format!(
                "{what}.BatchTimeout: expected a duration, got {}",
                kind(v)
            )))
        }
    };
    let mut batch_size = BatchSize::default();
    if let Some(bv) = o.get("BatchSize") {
        let bw = format!("{what}.BatchSize");
        if let Some(bo) = as_obj(bv, &bw)? {
            bo.check_keys(&["MaxMessageCount", "AbsoluteMaxBytes", "PreferredMaxBytes"]);
            batch_size = BatchSize {
                max_message_count: bo.uint("MaxMessageCount", u32::MAX as u64)? as u32,
                absolute_max_bytes: bo.size("AbsoluteMaxBytes")?,
                preferred_max_bytes: bo.size("PreferredMaxBytes")?,
            };
        }
    }
    let mut kafka_brokers = None;
    if let Some(kv) = o.get("Kafka") {
        let kw = format!("{what}.Kafka");
        if let Some(ko) = as_obj(kv, &kw)? {
            ko.check_keys(&["Brokers"]);
            kafka_brokers = ko.strings("Brokers")?;
        }
    }
    let mut etcd_raft = None;
    if let Some(ev) = o.get("EtcdRaft") {
        let ew = format!("{what}.EtcdRaft");
        if let Some(eo) = as_obj(ev, &ew)? {
            eo.check_keys(&["Consenters", "Options"]);
            let mut consenters = Vec::new();
            for (i, c) in eo.list("Consenters")?.iter().enumerate() {
                let cw = format!("{ew}.Consenters[{i}]");
                if let Some(co) = as_obj(c, &cw)? {
                    co.check_keys(&["Host", "Port", "ClientTLSCert", "ServerTLSCert"]);
                    consenters.push(EtcdRaftConsenter {
                        host: co.string("Host")?,
                        port: co.uint("Port", u32::MAX as u64)? as u32,
                        client_tls_cert: co.string("ClientTLSCert")?.into(),
                        server_tls_cert: co.string("ServerTLSCert")?.into(),
                    });
                }
            }
            let mut options = None;
            if let Some(ov) = eo.get("Options") {
                let ow = format!("{ew}.Options");
                if let Some(oo) = as_obj(ov, &ow)? {
                    oo.check_keys(&[
                        "TickInterval",
                        "ElectionTick",
                        "HeartbeatTick",
                        "MaxInflightBlocks",
                        "SnapshotIntervalSize",
                    ]);
                    options = Some(EtcdRaftOptions {
                        tick_interval: oo.string("TickInterval")?,
                        election_tick: oo.uint("ElectionTick", u32::MAX as u64)? as u32,
                        heartbeat_tick: oo.uint("HeartbeatTick", u32::MAX as u64)? as u32,
                        max_inflight_blocks: oo.uint("MaxInflightBlocks", u32::MAX as u64)? as u32,
                        snapshot_interval_size: oo.size("SnapshotIntervalSize")?,
                    });
                }
            }
            etcd_raft = Some(EtcdRaft {
                consenters,
                options,
            });
        }
    }
    Ok(Some(Orderer {
        orderer_type: o.string("OrdererType")?,
        addresses: o.strings("Addresses")?,
        batch_timeout,
        batch_size,
        kafka_brokers,
        etcd_raft,
        organizations: decode_orgs(&o, what)?,
        max_channels: o.uint("MaxChannels", u64::MAX)?,
        capabilities: decode_bool_map(o.get("Capabilities"), &format!("{what}.Capabilities"))?,
        policies: decode_policies(o.get("Policies"), &format!("{what}.Policies"))?,
    }))
}

fn decode_profile(v: &Value, what: &str) -> Result<Profile> {
    let Some(o) = as_obj(v, what)? else {
        return Ok(Profile::default());
    };
    o.check_keys(&[
        "Consortium",
        "Application",
        "Orderer",
        "Consortiums",
        "Capabilities",
        "Policies",
    ]);
    let consortiums = match o.get("Consortiums") {
        None => None,
        Some(cv) => {
            let cw = format!("{what}.Consortiums");
            let mut out = BTreeMap::new();
            if let Some(co) = as_obj(cv, &cw)? {
                for (name, c) in co.map {
                    let w = format!("{cw}.{name}");
                    let organizations = match as_obj(c, &w)? {
                        None => Vec::new(),
                        Some(o) => {
                            o.check_keys(&["Organizations"]);
                            decode_orgs(&o, &w)?
                        }
                    };
                    out.insert(name.clone(), Consortium { organizations });
                }
            }
            Some(out)
        }
    };
    Ok(Profile {
        consortium: o.string("Consortium")?,
        application: match o.get("Application") {
            Some(a) => decode_application(a, &format!("{what}.Application"))?,
            None => None,
        },
        orderer: match o.get("Orderer") {
            Some(a) => decode_orderer(a, &format!("{what}.Orderer"))?,
            None => None,
        },
        consortiums,
        capabilities: decode_bool_map(o.get("Capabilities"), &format!("{what}.Capabilities"))?,
        policies: decode_policies(o.get("Policies"), &format!("{what}.Policies"))?,
    })
}

fn decode_top_level(root: &Value) -> Result<TopLevel> {
    let Some(o) = as_obj(root, "configtx")? else {
        return Ok(TopLevel::default());
    };
    o.check_keys(&[
        "Profiles",
        "Organizations",
        "Channel",
        "Application",
        "Orderer",
        "Capabilities",
        "Resources",
    ]);
    let mut profiles = BTreeMap::new();
    if let Some(pv) = o.get("Profiles") {
        if let Some(po) = as_obj(pv, "Profiles")? {
            for (name, p) in po.map {
                profiles.insert(
                    name.clone(),
                    decode_profile(p, &format!("Profiles.{name}"))?,
                );
            }
        }
    }
    let mut capabilities = BTreeMap::new();
    if let Some(cv) = o.get("Capabilities") {
        if let Some(co) = as_obj(cv, "Capabilities")? {
            for (k, v) in co.map {
                capabilities.insert(
                    k.clone(),
                    decode_bool_map(Some(v), &format!("Capabilities.{k}"))?,
                );
            }
        }
    }
    Ok(TopLevel {
        profiles,
        organizations: decode_orgs(&o, "")?,
        channel: match o.get("Channel") {
            Some(c) => Some(decode_profile(c, "Channel")?),
            None => None,
        },
        application: match o.get("Application") {
            Some(a) => decode_application(a, "Application")?,
            None => None,
        },
        orderer: match o.get("Orderer") {
            Some(a) => decode_orderer(a, "Orderer")?,
            None => None,
        },
        capabilities,
        config_dir: PathBuf::new(),
    })
}
