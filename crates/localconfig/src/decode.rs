//! Key schema, environment overlay and value normalisation.
//!
//! The YAML document is walked together with a schema of the known keys.
//! For every key, both those present in the YAML and those only in the
//! schema, the environment variable `ORDERER_<PATH>` (path upper-cased,
//! dots replaced by underscores) replaces the YAML value when it is set and
//! non-empty. Keys match case-insensitively. Unknown keys are errors, except
//! under `General.BCCSP` where Fabric ignores them. Each value is converted
//! with Fabric's rules into a canonical JSON form that the typed structs in
//! [`crate::model`] deserialize without further checks.

use serde_json::{Map, Number, Value};

use crate::error::ConfigError;
use crate::values::{
    parse_bracket_list, parse_byte_size, parse_duration, parse_go_bool, parse_go_duration,
    parse_go_int, pem_certificates, KafkaVersion,
};

/// The shape of one key.
pub(crate) enum Kind {
    /// String.
    Str,
    /// File path (string).
    Path,
    Bool,
    /// Go duration.
    Dur,
    /// TCP port (0..=65535).
    Port,
    /// Non-negative integer up to the given maximum.
    UInt(u64),
    /// Signed 16-bit integer.
    I16,
    /// Byte size (`10 MB` or integer) up to the given maximum.
    Size(u64),
    /// List of file paths.
    PathList,
    /// List of strings (addresses).
    StrList,
    /// PEM text, inline or `{File: path}`.
    Pem,
    /// List of PEM certificates, inline or `{File: path}`.
    PemList,
    KafkaVersion,
    /// Free-form value.
    Any,
    /// A mapping with known keys; `lenient` ignores unknown keys.
    Section {
        fields: Vec<Field>,
        lenient: bool,
    },
}

pub(crate) struct Field {
    name: &'static str,
    kind: Kind,
}

fn f(name: &'static str, kind: Kind) -> Field {
    Field { name, kind }
}

fn sec(fields: Vec<Field>) -> Kind {
    Kind::Section {
        fields,
        lenient: false,
    }
}

fn tls_paths() -> Kind {
    use Kind::*;
    sec(vec![
        f("Enabled", Bool),
        f("PrivateKey", Path),
        f("Certificate", Path),
        f("RootCAs", PathList),
        f("ClientAuthRequired", Bool),
        f("ClientRootCAs", PathList),
        f("TLSHandshakeTimeShift", Dur),
    ])
}

fn file_key_store() -> Kind {
    sec(vec![f("KeyStore", Kind::Path)])
}

/// The union of the keys of Fabric v1.4 and v2.x `orderer.yaml`.
pub(crate) fn schema() -> Kind {
    use Kind::*;
    let i32_max = i32::MAX as u64;
    let u32_max = u64::from(u32::MAX);
    sec(vec![
        f(
            "General",
            sec(vec![
                f("LedgerType", Str),
                // Fabric v1.0–v1.1, deprecated: the log spec and format.
                f("LogLevel", Str),
                f("LogFormat", Str),
                f("ListenAddress", Str),
                f("ListenPort", Port),
                f("TLS", tls_paths()),
                f(
                    "Cluster",
                    sec(vec![
                        f("ListenAddress", Str),
                        f("ListenPort", Port),
                        f("ServerCertificate", Path),
                        f("ServerPrivateKey", Path),
                        f("ClientCertificate", Path),
                        f("ClientPrivateKey", Path),
                        f("RootCAs", PathList),
                        f("DialTimeout", Dur),
                        f("RPCTimeout", Dur),
                        f("ReplicationBufferSize", UInt(i64::MAX as u64)),
                        f("ReplicationPullTimeout", Dur),
                        f("ReplicationRetryTimeout", Dur),
                        f("ReplicationBackgroundRefreshInterval", Dur),
                        f("ReplicationMaxRetries", UInt(i64::MAX as u64)),
                        f("SendBufferSize", UInt(i64::MAX as u64)),
                        f("CertExpirationWarningThreshold", Dur),
                        f("TLSHandshakeTimeShift", Dur),
                    ]),
                ),
                f(
                    "Keepalive",
                    sec(vec![
                        f("ServerMinInterval", Dur),
                        f("ServerInterval", Dur),
                        f("ServerTimeout", Dur),
                    ]),
                ),
                f("ConnectionTimeout", Dur),
                // Ours (Fabric has none): limits of the gRPC port.
                f(
                    "Limits",
                    sec(vec![
                        f("MaxConnections", UInt(u32_max)),
                        f("MaxConcurrentStreams", UInt(u32_max)),
                        f("MaxStreams", UInt(u32_max)),
                        f("MaxStreamBytes", Size(u32_max)),
                        f("MaxConnectionBytes", Size(u32_max)),
                        f("MaxReceivedBytes", Size(u32_max)),
                        f("MaxDeliverBufferedBytes", Size(u32_max)),
                    ]),
                ),
                f("GenesisMethod", Str),
                f("GenesisFile", Path),
                f("GenesisProfile", Str),
                f("SystemChannel", Str),
                f("BootstrapMethod", Str),
                f("BootstrapFile", Path),
                f("Profile", sec(vec![f("Enabled", Bool), f("Address", Str)])),
                f("LocalMSPDir", Path),
                f("LocalMSPID", Str),
                f(
                    "BCCSP",
                    Section {
                        lenient: true,
                        fields: vec![
                            f("Default", Str),
                            f(
                                "SW",
                                Section {
                                    lenient: true,
                                    fields: vec![
                                        f("Hash", Str),
                                        f("Security", UInt(u32_max)),
                                        f("FileKeyStore", file_key_store()),
                                    ],
                                },
                            ),
                            f(
                                "PKCS11",
                                Section {
                                    lenient: true,
                                    fields: vec![
                                        f("Library", Str),
                                        f("Label", Str),
                                        f("Pin", Str),
                                        f("Hash", Str),
                                        f("Security", UInt(u32_max)),
                                        f("SoftwareVerify", Bool),
                                        f("Immutable", Bool),
                                        f("AltID", Str),
                                        f("KeyIDs", Any),
                                        f("TempKeys", Bool),
                                        f("FileKeyStore", file_key_store()),
                                    ],
                                },
                            ),
                            f(
                                "PLUGIN",
                                Section {
                                    lenient: true,
                                    fields: vec![f("Library", Str), f("Config", Any)],
                                },
                            ),
                        ],
                    },
                ),
                f(
                    "Authentication",
                    sec(vec![f("TimeWindow", Dur), f("NoExpirationChecks", Bool)]),
                ),
                f("MaxRecvMsgSize", Size(i32_max)),
                f("MaxSendMsgSize", Size(i32_max)),
            ]),
        ),
        f(
            "FileLedger",
            sec(vec![f("Location", Path), f("Prefix", Str)]),
        ),
        f("RAMLedger", sec(vec![f("HistorySize", UInt(u64::MAX))])),
        f(
            "Kafka",
            sec(vec![
                f(
                    "Retry",
                    sec(vec![
                        f("ShortInterval", Dur),
                        f("ShortTotal", Dur),
                        f("LongInterval", Dur),
                        f("LongTotal", Dur),
                        f(
                            "NetworkTimeouts",
                            sec(vec![
                                f("DialTimeout", Dur),
                                f("ReadTimeout", Dur),
                                f("WriteTimeout", Dur),
                            ]),
                        ),
                        f(
                            "Metadata",
                            sec(vec![f("RetryBackoff", Dur), f("RetryMax", UInt(u32_max))]),
                        ),
                        f(
                            "Producer",
                            sec(vec![f("RetryBackoff", Dur), f("RetryMax", UInt(u32_max))]),
                        ),
                        f("Consumer", sec(vec![f("RetryBackoff", Dur)])),
                    ]),
                ),
                f("Topic", sec(vec![f("ReplicationFactor", I16)])),
                f("Verbose", Bool),
                f(
                    "TLS",
                    sec(vec![
                        f("Enabled", Bool),
                        f("PrivateKey", Pem),
                        f("Certificate", Pem),
                        f("RootCAs", PemList),
                        f("ClientAuthRequired", Bool),
                        f("ClientRootCAs", PemList),
                        f("TLSHandshakeTimeShift", Dur),
                    ]),
                ),
                f(
                    "SASLPlain",
                    sec(vec![f("Enabled", Bool), f("User", Str), f("Password", Str)]),
                ),
                // Ours (Fabric has only SASLPlain): SASL/SCRAM.
                f(
                    "SASLSCRAM",
                    sec(vec![
                        f("Enabled", Bool),
                        f("Mechanism", Str),
                        f("User", Str),
                        f("Password", Str),
                    ]),
                ),
                f("Version", KafkaVersion),
                // Ours: catch-up from other OSNs when the partition was pruned,
                // or when it is much cheaper than replaying it.
                f(
                    "CatchUp",
                    sec(vec![
                        f("Sources", StrList),
                        f("PullThreshold", UInt(i64::MAX as u64)),
                    ]),
                ),
            ]),
        ),
        f(
            "Debug",
            sec(vec![
                f("BroadcastTraceDir", Path),
                f("DeliverTraceDir", Path),
            ]),
        ),
        f("Consensus", Any),
        f(
            "Operations",
            sec(vec![f("ListenAddress", Str), f("TLS", tls_paths())]),
        ),
        f(
            "Metrics",
            sec(vec![
                f("Provider", Str),
                f(
                    "Statsd",
                    sec(vec![
                        f("Network", Str),
                        f("Address", Str),
                        f("WriteInterval", Dur),
                        f("Prefix", Str),
                    ]),
                ),
            ]),
        ),
        f(
            "Admin",
            sec(vec![f("ListenAddress", Str), f("TLS", tls_paths())]),
        ),
        f(
            "ChannelParticipation",
            sec(vec![
                f("Enabled", Bool),
                f("RemoveStorage", Bool),
                f("MaxRequestBodySize", Size(u32_max)),
            ]),
        ),
    ])
}

/// All leaf key paths of the schema (for tests and documentation).
#[cfg(test)]
pub(crate) fn leaf_paths() -> Vec<String> {
    fn walk(prefix: &str, kind: &Kind, out: &mut Vec<String>) {
        match kind {
            Kind::Section { fields, .. } => {
                for fld in fields {
                    walk(&join(prefix, fld.name), &fld.kind, out);
                }
            }
            _ => out.push(prefix.to_string()),
        }
    }
    let mut out = Vec::new();
    walk("", &schema(), &mut out);
    out
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// The environment variable for a key path.
pub fn env_var_name(path: &str) -> String {
    format!("ORDERER_{}", path.to_ascii_uppercase().replace('.', "_"))
}

/// Walks a document and collects errors and warnings.
pub(crate) struct Decoder<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<String>,
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn num_to_string(n: &Number) -> String {
    n.to_string()
}

impl<'a> Decoder<'a> {
    pub fn new(env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Decoder {
            env,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn getenv(&self, path: &str) -> Option<String> {
        (self.env)(&env_var_name(path)).filter(|v| !v.is_empty())
    }

    /// Decodes the whole document (`None` or null means an empty document).
    pub fn decode_root(&mut self, doc: Option<&Value>) -> Value {
        let root = schema();
        match &root {
            Kind::Section { fields, lenient } => self.section("", doc, fields, *lenient),
            _ => unreachable!("the schema root is a section"),
        }
    }

    fn section(
        &mut self,
        path: &str,
        yaml: Option<&Value>,
        fields: &[Field],
        lenient: bool,
    ) -> Value {
        let empty = Map::new();
        let entries = match yaml {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(m)) => m,
            Some(other) => {
                let key = if path.is_empty() { "<document>" } else { path };
                self.errors.push(ConfigError::invalid(
                    key,
                    format!("expected a mapping, got {}", describe(other)),
                ));
                &empty
            }
        };
        // Match YAML keys to schema fields, case-insensitively.
        let mut assigned: Vec<Option<(&str, &Value)>> = vec![None; fields.len()];
        for (key, value) in entries {
            match fields
                .iter()
                .position(|fl| fl.name.eq_ignore_ascii_case(key))
            {
                Some(i) => {
                    if let Some((first, _)) = assigned[i] {
                        self.errors.push(ConfigError::invalid(
                            join(path, key),
                            format!("duplicate of key {first:?} (keys are case-insensitive)"),
                        ));
                    } else {
                        assigned[i] = Some((key.as_str(), value));
                    }
                }
                None if lenient => self.warnings.push(format!(
                    "{}: unknown key ignored (Fabric ignores unknown keys in this section)",
                    join(path, key)
                )),
                None => self.errors.push(ConfigError::UnknownKey {
                    key: join(path, key),
                }),
            }
        }

        let mut out = Map::new();
        for (fl, slot) in fields.iter().zip(assigned) {
            let key = join(path, fl.name);
            let yaml_value = slot.map(|(_, v)| v);
            let env_value = self.getenv(&key);
            if let Kind::Section { fields, lenient } = &fl.kind {
                if env_value.is_some() {
                    self.errors.push(ConfigError::invalid(
                        &key,
                        format!(
                            "is a section; environment variable {} cannot replace it",
                            env_var_name(&key)
                        ),
                    ));
                }
                let v = self.section(&key, yaml_value, fields, *lenient);
                out.insert(fl.name.to_string(), v);
                continue;
            }
            if let Kind::Any = fl.kind {
                let v = match env_value {
                    Some(s) => Value::String(s),
                    None => yaml_value
                        .map(|v| self.overlay_any(&key, v))
                        .unwrap_or(Value::Null),
                };
                if !v.is_null() {
                    out.insert(fl.name.to_string(), v);
                }
                continue;
            }
            let from_env = env_value.is_some();
            let value = match env_value {
                Some(s) => Some(Value::String(s)),
                None => match yaml_value {
                    Some(v) if !v.is_null() => Some(v.clone()),
                    // Fabric: an unset key may be given as `<KEY>_FILE`.
                    _ if matches!(fl.kind, Kind::Pem | Kind::PemList) => self
                        .getenv(&format!("{key}.File"))
                        .map(|p| serde_json::json!({ "File": p })),
                    _ => None,
                },
            };
            let Some(value) = value else { continue };
            match self.leaf(&key, &fl.kind, &value, from_env) {
                Ok(Some(v)) => {
                    out.insert(fl.name.to_string(), v);
                }
                Ok(None) => {}
                Err(message) => self.errors.push(ConfigError::Invalid { key, message }),
            }
        }
        Value::Object(out)
    }

    /// Applies environment overrides to the existing keys of a free-form
    /// value (Fabric only recurses into mappings that exist in the YAML).
    fn overlay_any(&self, path: &str, v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, child)| {
                        let key = join(path, k);
                        let nv = match self.getenv(&key) {
                            Some(s) => Value::String(s),
                            None => self.overlay_any(&key, child),
                        };
                        (k.clone(), nv)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Converts one value; `Ok(None)` means "not set".
    fn leaf(
        &mut self,
        key: &str,
        kind: &Kind,
        v: &Value,
        from_env: bool,
    ) -> Result<Option<Value>, String> {
        let out = match kind {
            Kind::Str | Kind::Path => Value::String(scalar_string(v)?),
            Kind::Bool => Value::Bool(match v {
                Value::Bool(b) => *b,
                Value::String(s) => parse_go_bool(s)?,
                Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
                other => return Err(format!("expected a boolean, got {}", describe(other))),
            }),
            Kind::Dur => {
                let nanos = match v {
                    Value::String(s) => {
                        if parse_go_duration(s).is_ok_and(|n| n < 0) {
                            return Err(format!("must not be negative (got {s:?})"));
                        }
                        parse_duration(s)?.as_nanos() as u64
                    }
                    Value::Number(_) => {
                        let n = int_of(v)?;
                        if n < 0 {
                            return Err(format!("must not be negative (got {n})"));
                        }
                        let n = u64::try_from(n)
                            .ok()
                            .filter(|n| *n <= i64::MAX as u64)
                            .ok_or_else(|| format!("duration {n} is out of range"))?;
                        if n != 0 && !from_env {
                            self.warnings.push(format!(
                                "{key}: bare number {n} is read as {n} nanoseconds \
                                 (as Fabric does); write a unit such as \"{n}s\""
                            ));
                        }
                        n
                    }
                    other => return Err(format!("expected a duration, got {}", describe(other))),
                };
                Value::from(nanos)
            }
            Kind::Port => {
                let n = int_of(v).map_err(|_| format!("{} is not a valid port", shown(v)))?;
                if !(0..=65535).contains(&n) {
                    return Err(format!("{n} is not a valid port"));
                }
                Value::from(n as u64)
            }
            Kind::UInt(max) => {
                let n = int_of(v)?;
                if n < 0 {
                    return Err(format!("must not be negative (got {n})"));
                }
                if n > i128::from(*max) {
                    return Err(format!("{n} is out of range (maximum {max})"));
                }
                Value::from(n as u64)
            }
            Kind::I16 => {
                let n = int_of(v)?;
                if n < i128::from(i16::MIN) || n > i128::from(i16::MAX) {
                    return Err(format!("{n} is out of range for a 16-bit integer"));
                }
                Value::from(n as i64)
            }
            Kind::Size(max) => {
                let n = match v {
                    Value::String(s) => parse_byte_size(s, *max)?,
                    Value::Number(_) => {
                        let n = int_of(v)?;
                        if n < 0 {
                            return Err(format!("must not be negative (got {n})"));
                        }
                        if n > i128::from(*max) {
                            return Err(format!("{n} exceeds the maximum {max}"));
                        }
                        n as u64
                    }
                    other => return Err(format!("expected a size, got {}", describe(other))),
                };
                Value::from(n)
            }
            Kind::PathList | Kind::StrList => {
                Value::Array(string_list(v)?.into_iter().map(Value::String).collect())
            }
            Kind::Pem => match v {
                Value::Object(m) => Value::String(read_file_value(m)?),
                other => Value::String(scalar_string(other)?),
            },
            Kind::PemList => match v {
                Value::Object(m) => {
                    let text = read_file_value(m)?;
                    Value::Array(
                        pem_certificates(&text)
                            .into_iter()
                            .map(Value::String)
                            .collect(),
                    )
                }
                other => Value::Array(string_list(other)?.into_iter().map(Value::String).collect()),
            },
            Kind::KafkaVersion => {
                let s = scalar_string(v)?;
                if s.is_empty() {
                    return Ok(None);
                }
                Value::String(KafkaVersion::parse(&s)?.to_string())
            }
            Kind::Any | Kind::Section { .. } => unreachable!("handled by the caller"),
        };
        Ok(Some(out))
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// Go's weakly typed string conversion (numbers and booleans become text).
fn scalar_string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => {
            if parse_bracket_list(s).is_some() {
                return Err(format!("expected a single value, got the list {s:?}"));
            }
            Ok(s.clone())
        }
        Value::Number(n) => Ok(num_to_string(n)),
        Value::Bool(b) => Ok(if *b { "1" } else { "0" }.to_string()),
        Value::Null => Ok(String::new()),
        other => Err(format!("expected a string, got {}", describe(other))),
    }
}

/// Go's weakly typed integer conversion.
fn int_of(v: &Value) -> Result<i128, String> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i128::from(i))
            } else if let Some(u) = n.as_u64() {
                Ok(i128::from(u))
            } else {
                let x = n.as_f64().unwrap_or(f64::NAN);
                if x.fract() == 0.0 && x.abs() < 1e19 {
                    Ok(x as i128)
                } else {
                    Err(format!("{n} is not an integer"))
                }
            }
        }
        Value::String(s) if s.is_empty() => Ok(0),
        Value::String(s) => parse_go_int(s),
        Value::Bool(b) => Ok(i128::from(*b)),
        other => Err(format!("expected an integer, got {}", describe(other))),
    }
}

/// A list of strings: a YAML sequence, `[a, b]` text, or a single value.
fn string_list(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::Array(items) => items
            .iter()
            .filter(|i| !i.is_null())
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                other => scalar_string(other),
            })
            .collect(),
        Value::String(s) => Ok(match parse_bracket_list(s) {
            Some(list) => list,
            None if s.is_empty() => Vec::new(),
            None => vec![s.clone()],
        }),
        Value::Number(_) | Value::Bool(_) => Ok(vec![scalar_string(v)?]),
        other => Err(format!("expected a list, got {}", describe(other))),
    }
}

/// `{File: path}`: the file's contents (path relative to the working
/// directory, as in Fabric).
fn read_file_value(m: &Map<String, Value>) -> Result<String, String> {
    let file = m.get("File").or_else(|| m.get("file"));
    match file {
        Some(Value::String(p)) if !p.is_empty() => {
            std::fs::read_to_string(p).map_err(|e| format!("cannot read file {p:?}: {e}"))
        }
        Some(_) => Err("value of File is empty".to_string()),
        None => Err("expected PEM text or a mapping with a File key".to_string()),
    }
}
