//! Channel policies: signature policies (`cauthdsl`), implicit-meta
//! policies and the hierarchical policy manager built from a channel
//! config tree, with Fabric's evaluation and path rules.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use fabric_protos::common::{
    implicit_meta_policy::Rule, policy::PolicyType, signature_policy, Config, ConfigGroup,
    ImplicitMetaPolicy, MspPrincipal, SignaturePolicy as SignaturePolicyProto,
    SignaturePolicyEnvelope,
};
use prost::Message;

use crate::manager::MspManager;
use crate::msp::{Identity, MspError};

/// Path separator of policy names.
pub const PATH_SEPARATOR: &str = "/";
/// The root group's name in policy paths.
pub const CHANNEL_PREFIX: &str = "Channel";
/// `/Channel/Readers`.
pub const CHANNEL_READERS: &str = "/Channel/Readers";
/// `/Channel/Writers`.
pub const CHANNEL_WRITERS: &str = "/Channel/Writers";
/// `/Channel/Admins`.
pub const CHANNEL_ADMINS: &str = "/Channel/Admins";
/// `/Channel/Orderer/BlockValidation`.
pub const BLOCK_VALIDATION: &str = "/Channel/Orderer/BlockValidation";
/// `/Channel/Orderer/Readers`.
pub const CHANNEL_ORDERER_READERS: &str = "/Channel/Orderer/Readers";
/// `/Channel/Orderer/Writers`.
pub const CHANNEL_ORDERER_WRITERS: &str = "/Channel/Orderer/Writers";
/// `/Channel/Orderer/Admins`.
pub const CHANNEL_ORDERER_ADMINS: &str = "/Channel/Orderer/Admins";
/// `/Channel/Application/Readers`.
pub const CHANNEL_APPLICATION_READERS: &str = "/Channel/Application/Readers";
/// `/Channel/Application/Writers`.
pub const CHANNEL_APPLICATION_WRITERS: &str = "/Channel/Application/Writers";
/// `/Channel/Application/Admins`.
pub const CHANNEL_APPLICATION_ADMINS: &str = "/Channel/Application/Admins";

/// One signature over some data by a serialized identity (Fabric's
/// `protoutil.SignedData`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SignedData {
    /// The signed bytes.
    pub data: Vec<u8>,
    /// A marshaled `msp.SerializedIdentity`.
    pub identity: Vec<u8>,
    /// DER ECDSA signature.
    pub signature: Vec<u8>,
}

/// Why a policy was not satisfied or could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The path names no policy (Fabric's reject policy).
    #[error("no such policy: '{0}'")]
    NoSuchPolicy(String),
    /// A signature policy was not satisfied; `details` lists why signers
    /// were skipped (not part of Fabric's message).
    #[error("signature set did not satisfy policy")]
    SignatureSetNotSatisfied {
        /// Per-signer reasons: undecodable identity, unknown MSP, bad
        /// signature, duplicate.
        details: Vec<String>,
    },
    /// An implicit-meta policy was not satisfied.
    #[error("implicit policy evaluation failed - {satisfied} sub-policies were satisfied, but this policy requires {required} of the '{sub_policy}' sub-policies to be satisfied")]
    ImplicitMetaNotSatisfied {
        /// Sub-policies satisfied.
        satisfied: usize,
        /// Threshold.
        required: usize,
        /// Sub-policy name.
        sub_policy: String,
        /// The first sub-policy failure, for diagnosis.
        first_failure: Option<Box<PolicyError>>,
    },
    /// The creator's certificate has expired (checked by callers before the policy).
    #[error("identity expired")]
    IdentityExpired,
    /// The policy tree could not be built.
    #[error("{0}")]
    Invalid(String),
    /// The MSPs of the config could not be set up.
    #[error("{0}")]
    Msp(#[from] MspError),
}

impl PolicyError {
    /// A one-line explanation including the diagnostic details.
    pub fn explain(&self) -> String {
        match self {
            PolicyError::SignatureSetNotSatisfied { details } if !details.is_empty() => {
                format!("{self} ({})", details.join("; "))
            }
            PolicyError::ImplicitMetaNotSatisfied {
                first_failure: Some(f),
                ..
            } => format!("{self} (first failure: {})", f.explain()),
            _ => self.to_string(),
        }
    }
}

#[derive(Debug, Clone)]
enum CompiledRule {
    SignedBy(usize),
    NOutOf { n: i32, rules: Vec<CompiledRule> },
}

/// A compiled `SignaturePolicyEnvelope`.
#[derive(Debug, Clone)]
pub struct SignaturePolicy {
    rule: CompiledRule,
    principals: Vec<MspPrincipal>,
    envelope: SignaturePolicyEnvelope,
}

fn compile(
    p: Option<&SignaturePolicyProto>,
    n_principals: usize,
    depth: usize,
) -> Result<CompiledRule, PolicyError> {
    let p = p.ok_or_else(|| PolicyError::Invalid("Empty policy element".into()))?;
    if depth > 256 {
        return Err(PolicyError::Invalid("policy nested too deeply".into()));
    }
    match &p.r#type {
        Some(signature_policy::Type::SignedBy(i)) => {
            if *i < 0 || *i as usize >= n_principals {
                return Err(PolicyError::Invalid(format!(
                    "identity index out of range, requested {i}, but identities length is {n_principals}"
                )));
            }
            Ok(CompiledRule::SignedBy(*i as usize))
        }
        Some(signature_policy::Type::NOutOf(n)) => Ok(CompiledRule::NOutOf {
            n: n.n,
            rules: n
                .rules
                .iter()
                .map(|r| compile(Some(r), n_principals, depth + 1))
                .collect::<Result<_, _>>()?,
        }),
        None => Err(PolicyError::Invalid("Unknown type: <nil>".into())),
    }
}

impl SignaturePolicy {
    /// Compiles an envelope (version must be 0).
    pub fn new(envelope: SignaturePolicyEnvelope) -> Result<Self, PolicyError> {
        if envelope.version != 0 {
            return Err(PolicyError::Invalid(format!(
                "This evaluator only understands messages of version 0, but version was {}",
                envelope.version
            )));
        }
        let rule = compile(envelope.rule.as_ref(), envelope.identities.len(), 0)?;
        Ok(SignaturePolicy {
            rule,
            principals: envelope.identities.clone(),
            envelope,
        })
    }

    /// Decodes and compiles the bytes of a `SignaturePolicyEnvelope`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PolicyError> {
        let env = SignaturePolicyEnvelope::decode(bytes).map_err(|e| {
            PolicyError::Invalid(format!("Error unmarshalling to SignaturePolicy: {e}"))
        })?;
        Self::new(env)
    }

    /// The source envelope.
    pub fn envelope(&self) -> &SignaturePolicyEnvelope {
        &self.envelope
    }

    /// Evaluates against already verified, deduplicated identities.
    pub fn evaluate_identities(
        &self,
        msps: &MspManager,
        ids: &[Arc<Identity>],
    ) -> Result<(), PolicyError> {
        let mut used = vec![false; ids.len()];
        if self.eval(&self.rule, msps, ids, &mut used) {
            Ok(())
        } else {
            Err(PolicyError::SignatureSetNotSatisfied {
                details: Vec::new(),
            })
        }
    }

    /// cauthdsl: each identity can satisfy at most one `SignedBy` leaf; an
    /// `n`-out-of gate tries its rules in order on a copy of the "used"
    /// marks and keeps the marks of the rules that succeed.
    fn eval(
        &self,
        rule: &CompiledRule,
        msps: &MspManager,
        ids: &[Arc<Identity>],
        used: &mut [bool],
    ) -> bool {
        match rule {
            CompiledRule::SignedBy(i) => {
                let principal = &self.principals[*i];
                for (k, id) in ids.iter().enumerate() {
                    if used[k] {
                        continue;
                    }
                    if msps.satisfies_principal(id, principal).is_ok() {
                        used[k] = true;
                        return true;
                    }
                }
                false
            }
            CompiledRule::NOutOf { n, rules } => {
                let mut verified = 0i32;
                let mut scratch = vec![false; used.len()];
                for r in rules {
                    scratch.copy_from_slice(used);
                    if self.eval(r, msps, ids, &mut scratch) {
                        verified += 1;
                        used.copy_from_slice(&scratch);
                    }
                }
                verified >= *n
            }
        }
    }
}

/// The verified signers of a signature set, computed once per evaluation
/// and shared by every signature policy reached from it.
struct Signers<'a> {
    set: &'a [SignedData],
    msps: &'a MspManager,
    cell: OnceLock<(Vec<Arc<Identity>>, Vec<String>)>,
}

impl<'a> Signers<'a> {
    fn new(set: &'a [SignedData], msps: &'a MspManager) -> Self {
        Signers {
            set,
            msps,
            cell: OnceLock::new(),
        }
    }

    /// Fabric's `SignatureSetToValidIdentities`: deserialize, skip an
    /// identity already accepted (MSP ID + identity id) before checking its
    /// signature, verify, keep.
    fn get(&self) -> &(Vec<Arc<Identity>>, Vec<String>) {
        self.cell.get_or_init(|| {
            let mut seen = HashSet::new();
            let mut ids = Vec::with_capacity(self.set.len());
            let mut details = Vec::new();
            for (i, sd) in self.set.iter().enumerate() {
                let id = match self.msps.deserialize_identity(&sd.identity) {
                    Ok(id) => id,
                    Err(e) => {
                        details.push(format!("invalid identity at index {i}: {e}"));
                        continue;
                    }
                };
                let key = format!("{}{}", id.mspid(), id.id());
                if seen.contains(&key) {
                    details.push(format!("de-duplicating identity at index {i}"));
                    continue;
                }
                if let Err(e) = id.verify(&sd.data, &sd.signature) {
                    details.push(format!("signature for identity {i} is invalid: {e}"));
                    continue;
                }
                seen.insert(key);
                ids.push(id);
            }
            (ids, details)
        })
    }
}

#[derive(Debug)]
enum PolicyImpl {
    Signature(SignaturePolicy),
    ImplicitMeta {
        threshold: usize,
        rule: i32,
        subs: Vec<Arc<PolicyImpl>>,
        sub_policy: String,
    },
    Reject(String),
}

/// Fabric's `NewImplicitMetaPolicy` thresholds: ANY 1, ALL n, MAJORITY
/// n/2+1, zero sub-policies 0; an unknown rule leaves Go's threshold at 0.
fn implicit_meta(rule: i32, subs: Vec<Arc<PolicyImpl>>, sub_policy: String) -> PolicyImpl {
    let n = subs.len();
    let threshold = match Rule::try_from(rule) {
        _ if n == 0 => 0,
        Ok(Rule::Any) => 1,
        Ok(Rule::All) => n,
        Ok(Rule::Majority) => n / 2 + 1,
        Err(_) => 0,
    };
    PolicyImpl::ImplicitMeta {
        threshold,
        rule,
        subs,
        sub_policy,
    }
}

impl PolicyImpl {
    fn evaluate(&self, signers: &Signers<'_>) -> Result<(), PolicyError> {
        match self {
            PolicyImpl::Reject(name) => Err(PolicyError::NoSuchPolicy(name.clone())),
            PolicyImpl::Signature(sp) => {
                let (ids, details) = signers.get();
                sp.evaluate_identities(signers.msps, ids).map_err(|_| {
                    PolicyError::SignatureSetNotSatisfied {
                        details: details.clone(),
                    }
                })
            }
            PolicyImpl::ImplicitMeta {
                threshold,
                subs,
                sub_policy,
                ..
            } => {
                let mut remaining = *threshold;
                if remaining == 0 {
                    return Ok(());
                }
                let mut first_failure = None;
                for p in subs {
                    match p.evaluate(signers) {
                        Ok(()) => {
                            remaining -= 1;
                            if remaining == 0 {
                                return Ok(());
                            }
                        }
                        Err(e) => {
                            first_failure.get_or_insert_with(|| Box::new(e));
                        }
                    }
                }
                Err(PolicyError::ImplicitMetaNotSatisfied {
                    satisfied: threshold - remaining,
                    required: *threshold,
                    sub_policy: sub_policy.clone(),
                    first_failure,
                })
            }
        }
    }
}

#[derive(Debug)]
struct Node {
    path: String,
    policies: HashMap<String, Arc<PolicyImpl>>,
    managers: BTreeMap<String, Arc<Node>>,
}

impl Node {
    fn build(path: String, group: &ConfigGroup, depth: usize) -> Result<Node, PolicyError> {
        if depth > 64 {
            return Err(PolicyError::Invalid("config tree nested too deeply".into()));
        }
        let mut managers = BTreeMap::new();
        for (name, g) in &group.groups {
            managers.insert(
                name.clone(),
                Arc::new(Node::build(
                    format!("{path}{PATH_SEPARATOR}{name}"),
                    g,
                    depth + 1,
                )?),
            );
        }
        let mut policies = HashMap::new();
        for (name, cp) in &group.policies {
            let policy = cp.policy.as_ref().ok_or_else(|| {
                PolicyError::Invalid(format!("policy {name} at path {path} was nil"))
            })?;
            let compiled = if policy.r#type == PolicyType::ImplicitMeta as i32 {
                let def = ImplicitMetaPolicy::decode(policy.value.as_slice()).map_err(|e| {
                    PolicyError::Invalid(format!(
                        "implicit policy {name} at path {path} did not compile: Error unmarshalling to ImplicitMetaPolicy: {e}"
                    ))
                })?;
                let subs: Vec<Arc<PolicyImpl>> = managers
                    .values()
                    .map(|m: &Arc<Node>| m.lookup(&def.sub_policy).0)
                    .collect();
                implicit_meta(def.rule, subs, def.sub_policy)
            } else if policy.r#type == PolicyType::Signature as i32 {
                PolicyImpl::Signature(SignaturePolicy::from_bytes(&policy.value).map_err(|e| {
                    PolicyError::Invalid(format!(
                        "policy {name} at path {path} did not compile: {e}"
                    ))
                })?)
            } else {
                return Err(PolicyError::Invalid(format!(
                    "policy {name} at path {path} has unknown policy type: {}",
                    policy.r#type
                )));
            };
            policies.insert(name.clone(), Arc::new(compiled));
        }
        for (gname, m) in &managers {
            for (pname, p) in &m.policies {
                policies.insert(format!("{gname}{PATH_SEPARATOR}{pname}"), p.clone());
            }
        }
        Ok(Node {
            path,
            policies,
            managers,
        })
    }

    /// Fabric's `ManagerImpl.GetPolicy`.
    fn lookup(&self, id: &str) -> (Arc<PolicyImpl>, bool, String) {
        if id.is_empty() {
            return (
                Arc::new(PolicyImpl::Reject(String::new())),
                false,
                String::new(),
            );
        }
        let relpath = if let Some(abs) = id.strip_prefix(PATH_SEPARATOR) {
            match abs
                .strip_prefix(self.path.as_str())
                .and_then(|r| r.strip_prefix(PATH_SEPARATOR))
            {
                Some(rel) => rel,
                None => return (Arc::new(PolicyImpl::Reject(id.into())), false, id.into()),
            }
        } else {
            id
        };
        let full = format!("{PATH_SEPARATOR}{}{PATH_SEPARATOR}{relpath}", self.path);
        match self.policies.get(relpath) {
            Some(p) => (p.clone(), true, full),
            None => (Arc::new(PolicyImpl::Reject(relpath.into())), false, full),
        }
    }
}

/// A resolved policy, ready to evaluate signature sets.
#[derive(Debug, Clone)]
pub struct Policy {
    inner: Arc<PolicyImpl>,
    msps: Arc<MspManager>,
    name: String,
}

impl Policy {
    /// The full path (`/Channel/...`) this policy was resolved to.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the signature set satisfies the policy.
    pub fn evaluate_signed_data(&self, signed: &[SignedData]) -> Result<(), PolicyError> {
        self.inner.evaluate(&Signers::new(signed, &self.msps))
    }
}

/// The policy manager of a channel config (or of one of its groups).
#[derive(Debug, Clone)]
pub struct PolicyManager {
    node: Arc<Node>,
    msps: Arc<MspManager>,
    creation_policies: Arc<BTreeMap<String, fabric_protos::common::Policy>>,
}

/// The `ChannelCreationPolicy` value of each consortium of a system
/// channel group (`/Channel/Consortiums/<name>` values).
pub fn channel_creation_policies(
    channel_group: &ConfigGroup,
) -> Result<BTreeMap<String, fabric_protos::common::Policy>, PolicyError> {
    let mut out = BTreeMap::new();
    if let Some(cs) = channel_group.groups.get(crate::manager::CONSORTIUMS_GROUP) {
        for (name, g) in &cs.groups {
            if let Some(v) = g.values.get(CHANNEL_CREATION_POLICY) {
                let p = fabric_protos::common::Policy::decode(v.value.as_slice()).map_err(|e| {
                    PolicyError::Invalid(format!(
                        "consortium {name}: could not decode ChannelCreationPolicy: {e}"
                    ))
                })?;
                out.insert(name.clone(), p);
            }
        }
    }
    Ok(out)
}

/// The consortium value naming the channel creation policy.
pub const CHANNEL_CREATION_POLICY: &str = "ChannelCreationPolicy";

impl PolicyManager {
    /// Builds the manager for a channel group (path `Channel`), evaluating
    /// signatures with `msps`.
    pub fn new(channel_group: &ConfigGroup, msps: Arc<MspManager>) -> Result<Self, PolicyError> {
        Ok(PolicyManager {
            node: Arc::new(Node::build(CHANNEL_PREFIX.into(), channel_group, 0)?),
            msps,
            creation_policies: Arc::new(channel_creation_policies(channel_group)?),
        })
    }

    /// Builds the MSP manager and the policy manager of a channel `Config`.
    pub fn from_config(config: &Config) -> Result<Self, PolicyError> {
        let group = config
            .channel_group
            .as_ref()
            .ok_or_else(|| PolicyError::Invalid("config must contain a channel group".into()))?;
        let msps = Arc::new(MspManager::from_channel_group(group)?);
        Self::new(group, msps)
    }

    /// The MSPs used for evaluation.
    pub fn msp_manager(&self) -> &Arc<MspManager> {
        &self.msps
    }

    /// This manager's group path (e.g. `Channel/Orderer`).
    pub fn path(&self) -> &str {
        &self.node.path
    }

    /// Every policy name reachable from this group, relative to it.
    pub fn policy_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.node.policies.keys().cloned().collect();
        v.sort();
        v
    }

    /// The manager of a sub-group (`["Orderer"]`, `["Application", "Org1"]`...).
    pub fn manager(&self, path: &[&str]) -> Option<PolicyManager> {
        let mut node = self.node.clone();
        for p in path {
            node = node.managers.get(*p)?.clone();
        }
        Some(PolicyManager {
            node,
            msps: self.msps.clone(),
            creation_policies: self.creation_policies.clone(),
        })
    }

    /// Resolves a policy like Fabric's `GetPolicy`: absolute when it starts
    /// with `/` (and must lie under this group), else relative to this
    /// group; a missing policy gives a policy that rejects everything and
    /// `false`.
    pub fn get_policy(&self, id: &str) -> (Policy, bool) {
        let (inner, found, name) = self.node.lookup(id);
        (
            Policy {
                inner,
                msps: self.msps.clone(),
                name,
            },
            found,
        )
    }

    /// The channel creation policy of a consortium (system channel), as
    /// Fabric evaluates it for a new channel: in the new channel's
    /// Application group, whose sub-groups are the consortium orgs named in
    /// the creation request (`member_orgs`; `None` = all consortium orgs).
    /// The name is `/Channel/Application/ChannelCreationPolicy`.
    pub fn channel_creation_policy(
        &self,
        consortium: &str,
        member_orgs: Option<&[&str]>,
    ) -> Result<Policy, PolicyError> {
        let def = self.creation_policies.get(consortium).ok_or_else(|| {
            PolicyError::NoSuchPolicy(format!(
                "/Channel/Consortiums/{consortium}/{CHANNEL_CREATION_POLICY}"
            ))
        })?;
        let cons = self
            .node
            .managers
            .get(crate::manager::CONSORTIUMS_GROUP)
            .and_then(|c| c.managers.get(consortium))
            .ok_or_else(|| PolicyError::Invalid(format!("unknown consortium {consortium}")))?;
        let mut group = ConfigGroup::default();
        group.policies.insert(
            CHANNEL_CREATION_POLICY.into(),
            fabric_protos::common::ConfigPolicy {
                policy: Some(def.clone()),
                ..Default::default()
            },
        );
        // Sub-groups stand for the orgs; their policies come from the consortium.
        let mut node = Node::build("Channel/Application".into(), &group, 0)?;
        let orgs: BTreeMap<String, Arc<Node>> = cons
            .managers
            .iter()
            .filter(|(n, _)| member_orgs.is_none_or(|m| m.contains(&n.as_str())))
            .map(|(n, m)| (n.clone(), m.clone()))
            .collect();
        if let Some(PolicyImpl::ImplicitMeta {
            sub_policy, rule, ..
        }) = node
            .policies
            .get(CHANNEL_CREATION_POLICY)
            .map(|p| p.as_ref())
        {
            let subs: Vec<Arc<PolicyImpl>> =
                orgs.values().map(|m| m.lookup(sub_policy).0).collect();
            let imp = implicit_meta(*rule, subs, sub_policy.clone());
            node.policies
                .insert(CHANNEL_CREATION_POLICY.into(), Arc::new(imp));
        }
        Ok(Policy {
            inner: node.policies[CHANNEL_CREATION_POLICY].clone(),
            msps: self.msps.clone(),
            name: format!("/Channel/Application/{CHANNEL_CREATION_POLICY}"),
        })
    }

    /// Resolves and evaluates.
    pub fn evaluate(&self, id: &str, signed: &[SignedData]) -> Result<(), PolicyError> {
        self.get_policy(id).0.evaluate_signed_data(signed)
    }
}

/// Evaluates a standalone signature policy envelope against a signature set.
pub fn evaluate_signature_policy(
    envelope: &SignaturePolicyEnvelope,
    msps: &MspManager,
    signed: &[SignedData],
) -> Result<(), PolicyError> {
    let sp = SignaturePolicy::new(envelope.clone())?;
    let signers = Signers::new(signed, msps);
    let (ids, details) = signers.get();
    sp.evaluate_identities(msps, ids)
        .map_err(|_| PolicyError::SignatureSetNotSatisfied {
            details: details.clone(),
        })
}
