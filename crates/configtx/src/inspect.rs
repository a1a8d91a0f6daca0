//! Human-readable JSON of blocks, envelopes and config groups in the style
//! of Fabric's protolator (`configtxgen -inspectBlock`, `configtxlator
//! proto_decode`): nested marshaled messages are decoded in place, config
//! values by their key, proto field names, enums by name, 64-bit integers
//! as strings, bytes as base64, defaults emitted; nested opaque fields that
//! are empty print as `null`; objects have sorted keys and tab indentation.
//! Values protolator cannot type (unknown keys) fall back to base64.

use std::collections::BTreeMap;

use base64::Engine;
use fabric_protos::common::{
    signature_policy, Block, Config, ConfigEnvelope, ConfigGroup, ConfigPolicy, ConfigSignature,
    ConfigUpdate, ConfigUpdateEnvelope, ConfigValue, Envelope, Header, MspPrincipal, MspRole,
    OrganizationUnit, Payload, Policy, SignatureHeader, SignaturePolicy, SignaturePolicyEnvelope,
};
use fabric_protos::msp::{FabricMspConfig, FabricOuIdentifier, MspConfig, SerializedIdentity};
use fabric_protos::Timestamp;
use prost::Message;

use crate::encoder::etcdraft;
use crate::error::{Error, Result};

/// A JSON value with Go `encoding/json` output conventions.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number, kept as its literal text.
    Num(String),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object (keys sorted).
    Obj(BTreeMap<String, Json>),
}

impl Json {
    /// Renders like Go's `json.Encoder` with `SetIndent("", "\t")`, with a trailing newline.
    pub fn to_pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out.push('\n');
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Num(n) => out.push_str(n),
            Json::Str(s) => write_go_string(out, s),
            Json::Arr(a) if a.is_empty() => out.push_str("[]"),
            Json::Obj(o) if o.is_empty() => out.push_str("{}"),
            Json::Arr(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, depth + 1);
                    v.write(out, depth + 1);
                }
                newline(out, depth);
                out.push(']');
            }
            Json::Obj(o) => {
                out.push('{');
                for (i, (k, v)) in o.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, depth + 1);
                    write_go_string(out, k);
                    out.push_str(": ");
                    v.write(out, depth + 1);
                }
                newline(out, depth);
                out.push('}');
            }
        }
    }

    /// Converts to a `serde_json::Value` (numbers parsed).
    pub fn to_value(&self) -> serde_json::Value {
        match self {
            Json::Null => serde_json::Value::Null,
            Json::Bool(b) => serde_json::Value::Bool(*b),
            Json::Num(n) => serde_json::from_str(n).unwrap_or(serde_json::Value::Null),
            Json::Str(s) => serde_json::Value::String(s.clone()),
            Json::Arr(a) => serde_json::Value::Array(a.iter().map(Json::to_value).collect()),
            Json::Obj(o) => serde_json::Value::Object(
                o.iter().map(|(k, v)| (k.clone(), v.to_value())).collect(),
            ),
        }
    }
}

fn newline(out: &mut String, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push('\t');
    }
}

fn write_go_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

struct ObjBuilder(BTreeMap<String, Json>);

impl ObjBuilder {
    fn new() -> Self {
        ObjBuilder(BTreeMap::new())
    }
    fn f(mut self, k: &str, v: Json) -> Self {
        self.0.insert(k.to_string(), v);
        self
    }
    fn done(self) -> Json {
        Json::Obj(self.0)
    }
}

fn b64(b: &[u8]) -> Json {
    Json::Str(base64::engine::general_purpose::STANDARD.encode(b))
}
fn s(v: &str) -> Json {
    Json::Str(v.to_string())
}
fn n<T: ToString>(v: T) -> Json {
    Json::Num(v.to_string())
}
fn n64<T: ToString>(v: T) -> Json {
    Json::Str(v.to_string())
}
fn arr<T>(v: &[T], f: impl Fn(&T) -> Json) -> Json {
    Json::Arr(v.iter().map(f).collect())
}
fn opt<T>(v: &Option<T>, f: impl Fn(&T) -> Json) -> Json {
    v.as_ref().map(f).unwrap_or(Json::Null)
}
fn enum_name(v: i32, names: &[(i32, &str)]) -> Json {
    names
        .iter()
        .find(|(k, _)| *k == v)
        .map(|(_, name)| s(name))
        .unwrap_or_else(|| n(v))
}

fn decode<M: Message + Default>(bytes: &[u8], what: &str) -> Result<M> {
    M::decode(bytes).map_err(|e| Error::Decode(format!("{what}: {e}")))
}

/// An opaque field: `null` when empty, else the decoded message rendered by `f`.
fn opaque<M: Message + Default>(
    bytes: &[u8],
    what: &str,
    f: impl Fn(&M) -> Result<Json>,
) -> Result<Json> {
    if bytes.is_empty() {
        return Ok(Json::Null);
    }
    f(&decode::<M>(bytes, what)?)
}

/// RFC 3339 (UTC, `Z`) with 0, 3, 6 or 9 fractional digits, as protojson prints timestamps.
pub fn format_timestamp(ts: &Timestamp) -> String {
    let secs = ts.seconds;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil-from-days (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let mut y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    if m <= 2 {
        y += 1;
    }
    let frac = match ts.nanos {
        0 => String::new(),
        x if x % 1_000_000 == 0 => format!(".{:03}", x / 1_000_000),
        x if x % 1_000 == 0 => format!(".{:06}", x / 1_000),
        x => format!(".{x:09}"),
    };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

// --- common ---------------------------------------------------------------

/// A block.
pub fn block_json(b: &Block) -> Result<Json> {
    let header = opt(&b.header, |h| {
        ObjBuilder::new()
            .f("data_hash", b64(&h.data_hash))
            .f("number", n64(h.number))
            .f("previous_hash", b64(&h.previous_hash))
            .done()
    });
    let data = match &b.data {
        None => Json::Null,
        Some(d) => {
            let envs = d
                .data
                .iter()
                .map(|e| envelope_bytes_json(e))
                .collect::<Result<Vec<_>>>()?;
            ObjBuilder::new().f("data", Json::Arr(envs)).done()
        }
    };
    let metadata = opt(&b.metadata, |m| {
        ObjBuilder::new()
            .f("metadata", arr(&m.metadata, |x| b64(x)))
            .done()
    });
    Ok(ObjBuilder::new()
        .f("data", data)
        .f("header", header)
        .f("metadata", metadata)
        .done())
}

fn envelope_bytes_json(bytes: &[u8]) -> Result<Json> {
    envelope_json(&decode::<Envelope>(bytes, "envelope")?)
}

/// An envelope, with its payload decoded.
pub fn envelope_json(e: &Envelope) -> Result<Json> {
    Ok(ObjBuilder::new()
        .f(
            "payload",
            opaque::<Payload>(&e.payload, "payload", payload_json)?,
        )
        .f("signature", b64(&e.signature))
        .done())
}

fn payload_json(p: &Payload) -> Result<Json> {
    let header = match &p.header {
        None => Json::Null,
        Some(h) => header_json(h)?,
    };
    let data = if p.data.is_empty() {
        Json::Null
    } else {
        let htype = p
            .header
            .as_ref()
            .and_then(|h| {
                fabric_protos::common::ChannelHeader::decode(h.channel_header.as_slice()).ok()
            })
            .map(|ch| ch.r#type);
        match htype {
            Some(1) => config_envelope_json(&decode(&p.data, "config envelope")?)?,
            Some(2) => config_update_envelope_json(&decode(&p.data, "config update envelope")?)?,
            Some(4) => envelope_json(&decode(&p.data, "envelope")?)?,
            _ => b64(&p.data),
        }
    };
    Ok(ObjBuilder::new().f("data", data).f("header", header).done())
}

fn header_json(h: &Header) -> Result<Json> {
    Ok(ObjBuilder::new()
        .f(
            "channel_header",
            opaque(
                &h.channel_header,
                "channel header",
                |ch: &fabric_protos::common::ChannelHeader| {
                    Ok(ObjBuilder::new()
                        .f("channel_id", s(&ch.channel_id))
                        .f("epoch", n64(ch.epoch))
                        .f(
                            "extension",
                            if ch.extension.is_empty() {
                                Json::Null
                            } else {
                                b64(&ch.extension)
                            },
                        )
                        .f(
                            "timestamp",
                            opt(&ch.timestamp, |t| Json::Str(format_timestamp(t))),
                        )
                        .f("tls_cert_hash", b64(&ch.tls_cert_hash))
                        .f("tx_id", s(&ch.tx_id))
                        .f("type", n(ch.r#type))
                        .f("version", n(ch.version))
                        .done())
                },
            )?,
        )
        .f(
            "signature_header",
            opaque(
                &h.signature_header,
                "signature header",
                signature_header_json,
            )?,
        )
        .done())
}

fn signature_header_json(sh: &SignatureHeader) -> Result<Json> {
    Ok(ObjBuilder::new()
        .f(
            "creator",
            opaque(&sh.creator, "creator", |id: &SerializedIdentity| {
                Ok(serialized_identity_json(id))
            })?,
        )
        .f("nonce", b64(&sh.nonce))
        .done())
}

fn serialized_identity_json(id: &SerializedIdentity) -> Json {
    ObjBuilder::new()
        .f("id_bytes", b64(&id.id_bytes))
        .f("mspid", s(&id.mspid))
        .done()
}

fn config_envelope_json(ce: &ConfigEnvelope) -> Result<Json> {
    Ok(ObjBuilder::new()
        .f(
            "config",
            match &ce.config {
                None => Json::Null,
                Some(c) => config_json(c)?,
            },
        )
        .f(
            "last_update",
            match &ce.last_update {
                None => Json::Null,
                Some(e) => envelope_json(e)?,
            },
        )
        .done())
}

/// A `common.Config`.
pub fn config_json(c: &Config) -> Result<Json> {
    Ok(ObjBuilder::new()
        .f(
            "channel_group",
            match &c.channel_group {
                None => Json::Null,
                Some(g) => group_json(g, GroupKind::Channel)?,
            },
        )
        .f("sequence", n64(c.sequence))
        .done())
}

fn config_update_envelope_json(cue: &ConfigUpdateEnvelope) -> Result<Json> {
    let sigs = cue
        .signatures
        .iter()
        .map(|sig: &ConfigSignature| {
            Ok(ObjBuilder::new()
                .f("signature", b64(&sig.signature))
                .f(
                    "signature_header",
                    opaque(
                        &sig.signature_header,
                        "signature header",
                        signature_header_json,
                    )?,
                )
                .done())
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ObjBuilder::new()
        .f(
            "config_update",
            opaque(&cue.config_update, "config update", config_update_json)?,
        )
        .f("signatures", Json::Arr(sigs))
        .done())
}

/// A `common.ConfigUpdate`.
pub fn config_update_json(u: &ConfigUpdate) -> Result<Json> {
    let grp = |g: &Option<ConfigGroup>| -> Result<Json> {
        match g {
            None => Ok(Json::Null),
            Some(g) => group_json(g, GroupKind::Channel),
        }
    };
    Ok(ObjBuilder::new()
        .f("channel_id", s(&u.channel_id))
        .f(
            "isolated_data",
            Json::Obj(
                u.isolated_data
                    .iter()
                    .map(|(k, v)| (k.clone(), b64(v)))
                    .collect(),
            ),
        )
        .f("read_set", grp(&u.read_set)?)
        .f("write_set", grp(&u.write_set)?)
        .done())
}

// --- config groups --------------------------------------------------------

/// Where a config group sits in the tree (decides how values decode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    /// The root `Channel` group.
    Channel,
    /// `/Channel/Orderer`.
    Orderer,
    /// An orderer organization.
    OrdererOrg,
    /// `/Channel/Application`.
    Application,
    /// An application organization.
    ApplicationOrg,
    /// `/Channel/Consortiums`.
    Consortiums,
    /// A consortium.
    Consortium,
    /// A consortium member organization.
    ConsortiumOrg,
    /// Anything else.
    Unknown,
}

fn child_kind(parent: GroupKind, key: &str) -> GroupKind {
    match parent {
        GroupKind::Channel => match key {
            "Consortiums" => GroupKind::Consortiums,
            "Orderer" => GroupKind::Orderer,
            "Application" => GroupKind::Application,
            _ => GroupKind::Unknown,
        },
        GroupKind::Orderer => GroupKind::OrdererOrg,
        GroupKind::Application => GroupKind::ApplicationOrg,
        GroupKind::Consortiums => GroupKind::Consortium,
        GroupKind::Consortium => GroupKind::ConsortiumOrg,
        _ => GroupKind::Unknown,
    }
}

/// A config group rendered with its values decoded by key.
pub fn group_json(g: &ConfigGroup, kind: GroupKind) -> Result<Json> {
    let mut groups = BTreeMap::new();
    for (k, sub) in &g.groups {
        groups.insert(k.clone(), group_json(sub, child_kind(kind, k))?);
    }
    let mut values = BTreeMap::new();
    for (k, v) in &g.values {
        values.insert(k.clone(), config_value_json(v, kind, k)?);
    }
    let mut policies = BTreeMap::new();
    for (k, p) in &g.policies {
        policies.insert(k.clone(), config_policy_json(p)?);
    }
    Ok(ObjBuilder::new()
        .f("groups", Json::Obj(groups))
        .f("mod_policy", s(&g.mod_policy))
        .f("policies", Json::Obj(policies))
        .f("values", Json::Obj(values))
        .f("version", n64(g.version))
        .done())
}

fn config_policy_json(p: &ConfigPolicy) -> Result<Json> {
    Ok(ObjBuilder::new()
        .f("mod_policy", s(&p.mod_policy))
        .f(
            "policy",
            match &p.policy {
                None => Json::Null,
                Some(p) => policy_json(p)?,
            },
        )
        .f("version", n64(p.version))
        .done())
}

/// A `common.Policy` with its value decoded by type.
pub fn policy_json(p: &Policy) -> Result<Json> {
    let value = match p.r#type {
        1 => opaque(
            &p.value,
            "signature policy",
            |e: &SignaturePolicyEnvelope| signature_policy_envelope_json(e),
        )?,
        3 => opaque(
            &p.value,
            "implicit meta policy",
            |m: &fabric_protos::common::ImplicitMetaPolicy| {
                Ok(ObjBuilder::new()
                    .f(
                        "rule",
                        enum_name(m.rule, &[(0, "ANY"), (1, "ALL"), (2, "MAJORITY")]),
                    )
                    .f("sub_policy", s(&m.sub_policy))
                    .done())
            },
        )?,
        _ if p.value.is_empty() => Json::Null,
        _ => b64(&p.value),
    };
    Ok(ObjBuilder::new()
        .f("type", n(p.r#type))
        .f("value", value)
        .done())
}

fn signature_policy_envelope_json(e: &SignaturePolicyEnvelope) -> Result<Json> {
    let ids = e
        .identities
        .iter()
        .map(msp_principal_json)
        .collect::<Result<Vec<_>>>()?;
    Ok(ObjBuilder::new()
        .f("identities", Json::Arr(ids))
        .f("rule", opt(&e.rule, signature_policy_json))
        .f("version", n(e.version))
        .done())
}

fn signature_policy_json(p: &SignaturePolicy) -> Json {
    match &p.r#type {
        None => Json::Obj(BTreeMap::new()),
        Some(signature_policy::Type::SignedBy(i)) => ObjBuilder::new().f("signed_by", n(*i)).done(),
        Some(signature_policy::Type::NOutOf(no)) => ObjBuilder::new()
            .f(
                "n_out_of",
                ObjBuilder::new()
                    .f("n", n(no.n))
                    .f("rules", arr(&no.rules, signature_policy_json))
                    .done(),
            )
            .done(),
    }
}

fn msp_principal_json(p: &MspPrincipal) -> Result<Json> {
    let principal = match p.principal_classification {
        0 => opaque(&p.principal, "msp role", |r: &MspRole| {
            Ok(ObjBuilder::new()
                .f("msp_identifier", s(&r.msp_identifier))
                .f(
                    "role",
                    enum_name(
                        r.role,
                        &[
                            (0, "MEMBER"),
                            (1, "ADMIN"),
                            (2, "CLIENT"),
                            (3, "PEER"),
                            (4, "ORDERER"),
                        ],
                    ),
                )
                .done())
        })?,
        1 => opaque(&p.principal, "organization unit", |o: &OrganizationUnit| {
            Ok(ObjBuilder::new()
                .f("certifiers_identifier", b64(&o.certifiers_identifier))
                .f("msp_identifier", s(&o.msp_identifier))
                .f(
                    "organizational_unit_identifier",
                    s(&o.organizational_unit_identifier),
                )
                .done())
        })?,
        2 => opaque(&p.principal, "identity", |id: &SerializedIdentity| {
            Ok(serialized_identity_json(id))
        })?,
        _ if p.principal.is_empty() => Json::Null,
        _ => b64(&p.principal),
    };
    Ok(ObjBuilder::new()
        .f("principal", principal)
        .f(
            "principal_classification",
            enum_name(
                p.principal_classification,
                &[
                    (0, "ROLE"),
                    (1, "ORGANIZATION_UNIT"),
                    (2, "IDENTITY"),
                    (3, "ANONYMITY"),
                    (4, "COMBINED"),
                ],
            ),
        )
        .done())
}

fn ou_identifier_json(o: &FabricOuIdentifier) -> Json {
    ObjBuilder::new()
        .f("certificate", b64(&o.certificate))
        .f(
            "organizational_unit_identifier",
            s(&o.organizational_unit_identifier),
        )
        .done()
}

fn fabric_msp_config_json(c: &FabricMspConfig) -> Json {
    let bl = |v: &Vec<Vec<u8>>| arr(v, |x| b64(x));
    ObjBuilder::new()
        .f("admins", bl(&c.admins))
        .f(
            "crypto_config",
            opt(&c.crypto_config, |cc| {
                ObjBuilder::new()
                    .f(
                        "identity_identifier_hash_function",
                        s(&cc.identity_identifier_hash_function),
                    )
                    .f("signature_hash_family", s(&cc.signature_hash_family))
                    .done()
            }),
        )
        .f(
            "fabric_node_ous",
            opt(&c.fabric_node_ous, |no| {
                ObjBuilder::new()
                    .f(
                        "admin_ou_identifier",
                        opt(&no.admin_ou_identifier, ou_identifier_json),
                    )
                    .f(
                        "client_ou_identifier",
                        opt(&no.client_ou_identifier, ou_identifier_json),
                    )
                    .f("enable", Json::Bool(no.enable))
                    .f(
                        "orderer_ou_identifier",
                        opt(&no.orderer_ou_identifier, ou_identifier_json),
                    )
                    .f(
                        "peer_ou_identifier",
                        opt(&no.peer_ou_identifier, ou_identifier_json),
                    )
                    .done()
            }),
        )
        .f("intermediate_certs", bl(&c.intermediate_certs))
        .f("name", s(&c.name))
        .f(
            "organizational_unit_identifiers",
            arr(&c.organizational_unit_identifiers, ou_identifier_json),
        )
        .f("revocation_list", bl(&c.revocation_list))
        .f("root_certs", bl(&c.root_certs))
        .f(
            "signing_identity",
            opt(&c.signing_identity, |si| {
                ObjBuilder::new()
                    .f(
                        "private_signer",
                        opt(&si.private_signer, |k| {
                            ObjBuilder::new()
                                .f("key_identifier", s(&k.key_identifier))
                                .f("key_material", b64(&k.key_material))
                                .done()
                        }),
                    )
                    .f("public_signer", b64(&si.public_signer))
                    .done()
            }),
        )
        .f("tls_intermediate_certs", bl(&c.tls_intermediate_certs))
        .f("tls_root_certs", bl(&c.tls_root_certs))
        .done()
}

fn msp_config_json(m: &MspConfig) -> Result<Json> {
    let config = match m.r#type {
        0 => opaque(&m.config, "fabric msp config", |c: &FabricMspConfig| {
            Ok(fabric_msp_config_json(c))
        })?,
        _ if m.config.is_empty() => Json::Null,
        _ => b64(&m.config),
    };
    Ok(ObjBuilder::new()
        .f("config", config)
        .f("type", n(m.r#type))
        .done())
}

fn addresses_json(field: &str, a: &[String]) -> Json {
    ObjBuilder::new().f(field, arr(a, |x| s(x))).done()
}

/// Decodes the bytes of a config value given its group kind and key.
fn value_payload_json(kind: GroupKind, key: &str, v: &[u8]) -> Result<Json> {
    use fabric_protos::common as c;
    use fabric_protos::orderer as o;
    use fabric_protos::peer as p;
    let caps = |c: &c::Capabilities| {
        Ok(ObjBuilder::new()
            .f(
                "capabilities",
                Json::Obj(
                    c.capabilities
                        .keys()
                        .map(|k| (k.clone(), Json::Obj(BTreeMap::new())))
                        .collect(),
                ),
            )
            .done())
    };
    let out = match (kind, key) {
        (GroupKind::Channel, "HashingAlgorithm") => opaque(v, key, |h: &c::HashingAlgorithm| {
            Ok(ObjBuilder::new().f("name", s(&h.name)).done())
        })?,
        (GroupKind::Channel, "BlockDataHashingStructure") => {
            opaque(v, key, |h: &c::BlockDataHashingStructure| {
                Ok(ObjBuilder::new().f("width", n(h.width)).done())
            })?
        }
        (GroupKind::Channel, "OrdererAddresses") | (GroupKind::OrdererOrg, "Endpoints") => {
            opaque(v, key, |a: &c::OrdererAddresses| {
                Ok(addresses_json("addresses", &a.addresses))
            })?
        }
        (GroupKind::Channel, "Consortium") => opaque(v, key, |x: &c::Consortium| {
            Ok(ObjBuilder::new().f("name", s(&x.name)).done())
        })?,
        (GroupKind::Channel | GroupKind::Orderer | GroupKind::Application, "Capabilities") => {
            opaque(v, key, caps)?
        }
        (GroupKind::Orderer, "ConsensusType") => opaque(v, key, |ct: &o::ConsensusType| {
            let metadata = if ct.metadata.is_empty() {
                Json::Null
            } else if ct.r#type == "etcdraft" {
                etcdraft_json(&decode::<etcdraft::ConfigMetadata>(
                    &ct.metadata,
                    "etcdraft metadata",
                )?)
            } else {
                // google.protobuf.Empty
                Json::Obj(BTreeMap::new())
            };
            Ok(ObjBuilder::new()
                .f("metadata", metadata)
                .f(
                    "state",
                    enum_name(ct.state, &[(0, "STATE_NORMAL"), (1, "STATE_MAINTENANCE")]),
                )
                .f("type", s(&ct.r#type))
                .done())
        })?,
        (GroupKind::Orderer, "BatchSize") => opaque(v, key, |b: &o::BatchSize| {
            Ok(ObjBuilder::new()
                .f("absolute_max_bytes", n(b.absolute_max_bytes))
                .f("max_message_count", n(b.max_message_count))
                .f("preferred_max_bytes", n(b.preferred_max_bytes))
                .done())
        })?,
        (GroupKind::Orderer, "BatchTimeout") => opaque(v, key, |b: &o::BatchTimeout| {
            Ok(ObjBuilder::new().f("timeout", s(&b.timeout)).done())
        })?,
        (GroupKind::Orderer, "KafkaBrokers") => opaque(v, key, |k: &o::KafkaBrokers| {
            Ok(addresses_json("brokers", &k.brokers))
        })?,
        (GroupKind::Orderer, "ChannelRestrictions") => {
            opaque(v, key, |r: &o::ChannelRestrictions| {
                Ok(ObjBuilder::new().f("max_count", n64(r.max_count)).done())
            })?
        }
        (GroupKind::OrdererOrg | GroupKind::ApplicationOrg | GroupKind::ConsortiumOrg, "MSP") => {
            opaque(v, key, msp_config_json)?
        }
        (GroupKind::ApplicationOrg, "AnchorPeers") => opaque(v, key, |a: &p::AnchorPeers| {
            Ok(ObjBuilder::new()
                .f(
                    "anchor_peers",
                    arr(&a.anchor_peers, |x| {
                        ObjBuilder::new()
                            .f("host", s(&x.host))
                            .f("port", n(x.port))
                            .done()
                    }),
                )
                .done())
        })?,
        (GroupKind::Application, "ACLs") => opaque(v, key, |a: &p::AcLs| {
            Ok(ObjBuilder::new()
                .f(
                    "acls",
                    Json::Obj(
                        a.acls
                            .iter()
                            .map(|(k, r)| {
                                (
                                    k.clone(),
                                    ObjBuilder::new().f("policy_ref", s(&r.policy_ref)).done(),
                                )
                            })
                            .collect(),
                    ),
                )
                .done())
        })?,
        (GroupKind::Consortium, "ChannelCreationPolicy") => opaque(v, key, policy_json)?,
        _ if v.is_empty() => Json::Null,
        _ => b64(v),
    };
    Ok(out)
}

fn etcdraft_json(m: &etcdraft::ConfigMetadata) -> Json {
    ObjBuilder::new()
        .f(
            "consenters",
            arr(&m.consenters, |c| {
                ObjBuilder::new()
                    .f("client_tls_cert", b64(&c.client_tls_cert))
                    .f("host", s(&c.host))
                    .f("port", n(c.port))
                    .f("server_tls_cert", b64(&c.server_tls_cert))
                    .done()
            }),
        )
        .f(
            "options",
            opt(&m.options, |o| {
                ObjBuilder::new()
                    .f("election_tick", n(o.election_tick))
                    .f("heartbeat_tick", n(o.heartbeat_tick))
                    .f("max_inflight_blocks", n(o.max_inflight_blocks))
                    .f("snapshot_interval_size", n(o.snapshot_interval_size))
                    .f("tick_interval", s(&o.tick_interval))
                    .done()
            }),
        )
        .done()
}

fn config_value_json(v: &ConfigValue, kind: GroupKind, key: &str) -> Result<Json> {
    Ok(ObjBuilder::new()
        .f("mod_policy", s(&v.mod_policy))
        .f("value", value_payload_json(kind, key, &v.value)?)
        .f("version", n64(v.version))
        .done())
}

/// Pretty JSON of a serialized block (what `-inspectBlock` prints).
pub fn inspect_block(bytes: &[u8]) -> Result<String> {
    let block: Block = decode(bytes, "error unmarshalling to block")?;
    Ok(block_json(&block)
        .map_err(|e| e.context("malformed block contents"))?
        .to_pretty())
}

/// Pretty JSON of a serialized envelope (what `-inspectChannelCreateTx` prints).
pub fn inspect_envelope(bytes: &[u8]) -> Result<String> {
    let env: Envelope = decode(bytes, "Error unmarshalling envelope")?;
    Ok(envelope_json(&env)
        .map_err(|e| e.context("malformed transaction contents"))?
        .to_pretty())
}
