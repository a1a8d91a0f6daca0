//! The typed orderer configuration.
//!
//! Field names follow the keys of Fabric's `orderer.yaml` (serde renames give
//! the exact spelling). `Default` on these structs gives Go's *zero values*,
//! i.e. what Fabric has before it back-fills missing keys; the effective
//! defaults are produced by the loader (see [`crate::Config::builtin`]).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::values::{go_duration, KafkaVersion};

/// Where the loaded configuration came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ConfigSource {
    /// An `orderer.yaml`/`orderer.yml` file at this path.
    File(PathBuf),
    /// YAML text passed to [`crate::load_from`].
    Inline,
    /// No configuration file was found: the embedded development defaults
    /// (the values of Fabric's v2.x sample `orderer.yaml`) were used.
    #[default]
    BuiltinDefaults,
}

/// The orderer's local configuration (`orderer.yaml` plus `ORDERER_*`
/// environment overrides), after back-filling and validation.
///
/// `Config::default()` is [`Config::builtin`]: the built-in development
/// defaults (Fabric's v2.x sample `orderer.yaml` values).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(rename = "General", default)]
    pub general: General,
    #[serde(rename = "FileLedger", default)]
    pub file_ledger: FileLedger,
    /// v1.4 only.
    #[serde(rename = "RAMLedger", default)]
    pub ram_ledger: RamLedger,
    #[serde(rename = "Kafka", default)]
    pub kafka: Kafka,
    #[serde(rename = "Debug", default)]
    pub debug: Debug,
    /// Consensus-type specific settings (Raft's `WALDir`, `SnapDir`, …).
    /// Free-form: any YAML value is accepted and kept as is.
    #[serde(rename = "Consensus", default)]
    pub consensus: serde_json::Value,
    #[serde(rename = "Operations", default)]
    pub operations: Operations,
    #[serde(rename = "Metrics", default)]
    pub metrics: Metrics,
    /// v2.3+.
    #[serde(rename = "Admin", default)]
    pub admin: Admin,
    /// v2.3+ (v2.2 has it without `MaxRequestBodySize`).
    #[serde(rename = "ChannelParticipation", default)]
    pub channel_participation: ChannelParticipation,

    /// Where this configuration came from (not part of the YAML).
    #[serde(skip)]
    pub source: ConfigSource,
    /// Non-fatal findings made while loading: deprecated keys in use,
    /// ignored keys under `General.BCCSP` (not part of the YAML).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config::builtin()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct General {
    /// v1.4 only: `file` (default), `json` or `ram`.
    pub ledger_type: String,
    /// Fabric v1.0–v1.1 (deprecated, refused by Fabric since v1.2): the log
    /// spec, used when `FABRIC_LOGGING_SPEC` is unset.
    pub log_level: String,
    /// Fabric v1.0–v1.1 (deprecated): the log format, used when
    /// `FABRIC_LOGGING_FORMAT` is unset.
    pub log_format: String,
    pub listen_address: String,
    pub listen_port: u16,
    #[serde(rename = "TLS")]
    pub tls: Tls,
    /// Raft cluster settings; accepted and typed, unused by the Kafka orderer.
    pub cluster: Cluster,
    pub keepalive: Keepalive,
    /// Fabric's `comm` `ConnectionTimeout` (0: 5 s): the TLS handshake and
    /// the HTTP/2 preface must be done this long after a gRPC connection is
    /// accepted.
    #[serde(with = "go_duration")]
    pub connection_timeout: Duration,
    /// Ours: limits of the gRPC port (0: the built-in default).
    pub limits: Limits,
    /// v1.4 key: `provisional` or `file`. See [`Config::bootstrap`].
    pub genesis_method: String,
    /// v1.4 key. See [`Config::bootstrap`].
    pub genesis_file: PathBuf,
    /// v1.4 only: the configtx.yaml profile used by `provisional`.
    pub genesis_profile: String,
    /// v1.4 only: system channel name used by `provisional`.
    pub system_channel: String,
    /// v2 key: `file` or `none`. After loading this holds the effective
    /// method (taken from `GenesisMethod` when unset). See [`Config::bootstrap`].
    pub bootstrap_method: String,
    /// v2 key. After loading this holds the effective bootstrap file path.
    pub bootstrap_file: PathBuf,
    pub profile: Profile,
    #[serde(rename = "LocalMSPDir")]
    pub local_msp_dir: PathBuf,
    #[serde(rename = "LocalMSPID")]
    pub local_msp_id: String,
    #[serde(rename = "BCCSP")]
    pub bccsp: Bccsp,
    pub authentication: Authentication,
    /// Bytes; Fabric's type is int32, so at most 2147483647.
    pub max_recv_msg_size: u32,
    /// Bytes; Fabric's type is int32, so at most 2147483647.
    pub max_send_msg_size: u32,
}

/// TLS settings whose key and certificates are file paths
/// (`General.TLS`, `Operations.TLS`, `Admin.TLS`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct Tls {
    pub enabled: bool,
    pub private_key: PathBuf,
    pub certificate: PathBuf,
    #[serde(rename = "RootCAs")]
    pub root_cas: Vec<PathBuf>,
    pub client_auth_required: bool,
    #[serde(rename = "ClientRootCAs")]
    pub client_root_cas: Vec<PathBuf>,
    #[serde(rename = "TLSHandshakeTimeShift", with = "go_duration")]
    pub tls_handshake_time_shift: Duration,
}

/// `Kafka.TLS`: unlike the other TLS sections these values are PEM
/// *contents*, given inline or loaded from a file with a `File:` sub-key
/// (or `ORDERER_KAFKA_TLS_<KEY>_FILE`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct KafkaTls {
    pub enabled: bool,
    /// PEM private key.
    pub private_key: String,
    /// PEM certificate.
    pub certificate: String,
    /// PEM CA certificates.
    #[serde(rename = "RootCAs")]
    pub root_cas: Vec<String>,
    pub client_auth_required: bool,
    #[serde(rename = "ClientRootCAs")]
    pub client_root_cas: Vec<String>,
    #[serde(rename = "TLSHandshakeTimeShift", with = "go_duration")]
    pub tls_handshake_time_shift: Duration,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct Cluster {
    pub listen_address: String,
    pub listen_port: u16,
    pub server_certificate: PathBuf,
    pub server_private_key: PathBuf,
    pub client_certificate: PathBuf,
    pub client_private_key: PathBuf,
    #[serde(rename = "RootCAs")]
    pub root_cas: Vec<PathBuf>,
    #[serde(with = "go_duration")]
    pub dial_timeout: Duration,
    #[serde(rename = "RPCTimeout", with = "go_duration")]
    pub rpc_timeout: Duration,
    pub replication_buffer_size: u64,
    #[serde(with = "go_duration")]
    pub replication_pull_timeout: Duration,
    #[serde(with = "go_duration")]
    pub replication_retry_timeout: Duration,
    #[serde(with = "go_duration")]
    pub replication_background_refresh_interval: Duration,
    pub replication_max_retries: u64,
    pub send_buffer_size: u64,
    #[serde(with = "go_duration")]
    pub cert_expiration_warning_threshold: Duration,
    #[serde(rename = "TLSHandshakeTimeShift", with = "go_duration")]
    pub tls_handshake_time_shift: Duration,
}

/// `General.Limits` (this orderer's; Fabric has no such keys). Zero means
/// the built-in default (`orderer::limits`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct Limits {
    /// gRPC connections open or handshaking at once (default 4096, lowered
    /// to the descriptor limit less 256).
    pub max_connections: u32,
    /// Streams per gRPC connection (HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`,
    /// default 1000).
    pub max_concurrent_streams: u32,
    /// Broadcast and Deliver streams open at once over all connections
    /// (default 8192); more are refused with `RESOURCE_EXHAUSTED`.
    pub max_streams: u32,
    /// Client bytes one Broadcast or Deliver stream may hold received and
    /// not yet answered (default 16 MiB); beyond it the stream is not read.
    pub max_stream_bytes: u64,
    /// The same for all the streams of one connection (default 64 MiB).
    pub max_connection_bytes: u64,
    /// The same for all streams of all connections (default 128 MiB).
    pub max_received_bytes: u64,
    /// Bytes of Deliver blocks read from the ledger and not yet written to
    /// the clients' connections, all streams together (default 256 MiB);
    /// beyond it Deliver streams wait before their next ledger read.
    pub max_deliver_buffered_bytes: u64,
}

/// gRPC server keepalive. Zero means "use the gRPC/Fabric comm default".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct Keepalive {
    #[serde(with = "go_duration")]
    pub server_min_interval: Duration,
    #[serde(with = "go_duration")]
    pub server_interval: Duration,
    #[serde(with = "go_duration")]
    pub server_timeout: Duration,
}

/// Go pprof server settings (accepted; the address is validated).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct Profile {
    pub enabled: bool,
    pub address: String,
}

/// Crypto provider settings. Like Fabric, unknown keys inside this section
/// are ignored (reported in [`Config::warnings`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bccsp {
    /// `SW` (default) or `PKCS11` (`PLUGIN` in v1.4).
    #[serde(rename = "Default")]
    pub default: String,
    #[serde(rename = "SW")]
    pub sw: SwOpts,
    #[serde(rename = "PKCS11")]
    pub pkcs11: Pkcs11Opts,
    /// v1.4 only.
    #[serde(rename = "PLUGIN")]
    pub plugin: PluginOpts,
}

impl Default for Bccsp {
    /// Fabric's `GetDefaultOpts`: SW, SHA2, 256.
    fn default() -> Self {
        Bccsp {
            default: "SW".into(),
            sw: SwOpts::default(),
            pkcs11: Pkcs11Opts::default(),
            plugin: PluginOpts::default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct SwOpts {
    pub hash: String,
    pub security: u32,
    pub file_key_store: FileKeyStore,
}

impl Default for SwOpts {
    fn default() -> Self {
        SwOpts {
            hash: "SHA2".into(),
            security: 256,
            file_key_store: FileKeyStore::default(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct FileKeyStore {
    /// Key store directory (not translated relative to the config file,
    /// as in Fabric). Empty means `<LocalMSPDir>/keystore`.
    pub key_store: PathBuf,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct Pkcs11Opts {
    pub library: String,
    pub label: String,
    pub pin: String,
    pub hash: String,
    pub security: u32,
    pub software_verify: bool,
    pub immutable: bool,
    #[serde(rename = "AltID")]
    pub alt_id: String,
    /// v2.4+: list of `{SKI, ID}` mappings, kept as given; read through
    /// [`Pkcs11Opts::key_id_mappings`] (checked when the config loads).
    #[serde(rename = "KeyIDs")]
    pub key_ids: serde_json::Value,
    /// v1.4 only.
    pub temp_keys: bool,
    pub file_key_store: FileKeyStore,
}

/// One `BCCSP.PKCS11.KeyIds` entry: the key whose subject key identifier is
/// `ski` (hex) has `CKA_ID` `id` in the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyIdMapping {
    /// Lower-case hex SKI (SHA-256 of the uncompressed public point).
    pub ski: String,
    /// The `CKA_ID`, as the bytes of this string (as Fabric).
    pub id: String,
}

impl Pkcs11Opts {
    /// `KeyIds` as typed mappings: a list of `{SKI, ID}` (keys
    /// case-insensitive, as Fabric reads them), SKI in hex.
    pub fn key_id_mappings(&self) -> Result<Vec<KeyIdMapping>, String> {
        let list = match &self.key_ids {
            serde_json::Value::Null => return Ok(vec![]),
            serde_json::Value::Array(list) => list,
            other => {
                return Err(format!(
                    "must be a list of {{SKI, ID}} mappings, got {other}"
                ))
            }
        };
        list.iter()
            .enumerate()
            .map(|(i, entry)| key_id_mapping(i, entry))
            .collect()
    }
}

fn key_id_mapping(i: usize, entry: &serde_json::Value) -> Result<KeyIdMapping, String> {
    let serde_json::Value::Object(m) = entry else {
        return Err(format!("entry {i}: must be a mapping with SKI and ID"));
    };
    let field = |name: &str| {
        m.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("entry {i}: {name} must be a string"))
    };
    let ski = field("SKI")?.to_ascii_lowercase();
    let id = field("ID")?;
    if ski.len() != 64 || !ski.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "entry {i}: SKI {ski:?} is not 64 hex digits (SHA-256 of the public key)"
        ));
    }
    if id.is_empty() {
        return Err(format!("entry {i}: ID must not be empty"));
    }
    Ok(KeyIdMapping { ski, id })
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct PluginOpts {
    pub library: String,
    pub config: serde_json::Value,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct Authentication {
    /// Allowed clock skew for client request timestamps.
    #[serde(with = "go_duration")]
    pub time_window: Duration,
    pub no_expiration_checks: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct FileLedger {
    pub location: PathBuf,
    /// v1.4: prefix of the temporary ledger directory used when `Location`
    /// is empty. Accepted but unused in v2.
    pub prefix: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct RamLedger {
    pub history_size: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct Kafka {
    pub retry: KafkaRetry,
    pub topic: KafkaTopic,
    pub verbose: bool,
    #[serde(rename = "TLS")]
    pub tls: KafkaTls,
    #[serde(rename = "SASLPlain")]
    pub sasl_plain: SaslPlain,
    /// Ours: SASL/SCRAM (`SCRAM-SHA-256` or `SCRAM-SHA-512`), which managed
    /// Kafka services use; not with `SASLPlain`.
    #[serde(rename = "SASLSCRAM")]
    pub sasl_scram: SaslScram,
    /// Ours: where a chain whose Kafka records were pruned gets the missing
    /// blocks (see [`KafkaCatchUp`]).
    #[serde(rename = "CatchUp")]
    pub catch_up: KafkaCatchUp,
    /// Protocol version, resolved to the nearest known version (see
    /// [`KafkaVersion::parse`]).
    pub version: KafkaVersion,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct KafkaRetry {
    #[serde(with = "go_duration")]
    pub short_interval: Duration,
    #[serde(with = "go_duration")]
    pub short_total: Duration,
    #[serde(with = "go_duration")]
    pub long_interval: Duration,
    #[serde(with = "go_duration")]
    pub long_total: Duration,
    pub network_timeouts: NetworkTimeouts,
    pub metadata: RetryPolicy,
    pub producer: RetryPolicy,
    pub consumer: ConsumerRetry,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct NetworkTimeouts {
    #[serde(with = "go_duration")]
    pub dial_timeout: Duration,
    #[serde(with = "go_duration")]
    pub read_timeout: Duration,
    #[serde(with = "go_duration")]
    pub write_timeout: Duration,
}

/// `Kafka.Retry.Metadata` and `Kafka.Retry.Producer`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct RetryPolicy {
    #[serde(with = "go_duration")]
    pub retry_backoff: Duration,
    pub retry_max: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct ConsumerRetry {
    #[serde(with = "go_duration")]
    pub retry_backoff: Duration,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct KafkaTopic {
    /// Replication factor for topics the orderer creates (Go type int16).
    pub replication_factor: i16,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct SaslPlain {
    pub enabled: bool,
    pub user: String,
    pub password: String,
}

/// `Kafka.SASLSCRAM` (ours).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct SaslScram {
    pub enabled: bool,
    /// `SCRAM-SHA-512` (default) or `SCRAM-SHA-256`.
    pub mechanism: String,
    pub user: String,
    pub password: String,
}

/// `Kafka.CatchUp` (ours): when the partition no longer holds the offset a
/// channel needs next (retention or DeleteRecords pruned it), the chain
/// pulls the missing blocks over Deliver from another OSN and verifies each.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct KafkaCatchUp {
    /// OSN addresses (`host:port`) to pull from, tried in order; empty: the
    /// channel config's orderer addresses (`OrdererAddresses`, and the
    /// orderer organizations' `Endpoints`).
    pub sources: Vec<String>,
    /// A starting chain with more than this many records (Kafka offsets)
    /// between its resume offset and the partition's end first pulls the
    /// blocks the sources already have, and replays only the rest. 0: the
    /// built-in default (`orderer::consensus::kafka::catchup::DEFAULT_PULL_THRESHOLD`);
    /// 9223372036854775807 always replays (pulls only what was pruned).
    pub pull_threshold: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct Debug {
    pub broadcast_trace_dir: PathBuf,
    pub deliver_trace_dir: PathBuf,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct Operations {
    pub listen_address: String,
    /// File paths, used as given (Fabric does not translate them).
    #[serde(rename = "TLS")]
    pub tls: Tls,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct Metrics {
    /// `disabled`, `prometheus` or `statsd` (empty means disabled).
    pub provider: String,
    pub statsd: Statsd,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct Statsd {
    pub network: String,
    pub address: String,
    #[serde(with = "go_duration")]
    pub write_interval: Duration,
    pub prefix: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct Admin {
    pub listen_address: String,
    /// File paths, used as given (Fabric does not translate them).
    #[serde(rename = "TLS")]
    pub tls: Tls,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct ChannelParticipation {
    pub enabled: bool,
    /// v2.2 only; accepted.
    pub remove_storage: bool,
    /// Bytes (Go type uint32; accepts `1 MB` style sizes).
    pub max_request_body_size: u32,
}

/// How the orderer obtains its first block. See [`Config::bootstrap`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// Read the genesis (or system channel config) block from this file.
    File(PathBuf),
    /// Start without a system channel (v2.3+ channel participation).
    None,
    /// v1.4 `GenesisMethod: provisional`: build the genesis block from the
    /// configtx.yaml `profile`, for system channel `system_channel`.
    Provisional {
        profile: String,
        system_channel: String,
    },
}

impl Config {
    /// The effective bootstrap method.
    ///
    /// The v1.4 keys (`General.GenesisMethod`, `General.GenesisFile`) and
    /// the v2 keys (`General.BootstrapMethod`, `General.BootstrapFile`) are
    /// both accepted. As in Fabric v2, a v2 key that is set (non-empty) wins;
    /// otherwise the v1.4 key is used; otherwise the default (`file`,
    /// `genesisblock`). Method and file are resolved independently, so
    /// `GenesisFile` with `BootstrapMethod: file` works. `provisional` is
    /// only reachable through `GenesisMethod` (it does not exist in v2).
    /// The file path is already resolved against the config file's directory.
    pub fn bootstrap(&self) -> Bootstrap {
        match self.general.bootstrap_method.as_str() {
            "none" => Bootstrap::None,
            "provisional" => Bootstrap::Provisional {
                profile: self.general.genesis_profile.clone(),
                system_channel: self.general.system_channel.clone(),
            },
            _ => Bootstrap::File(self.general.bootstrap_file.clone()),
        }
    }

    /// The gRPC listen address, `ListenAddress:ListenPort`, built the way
    /// Fabric builds it (`fmt.Sprintf("%s:%d")`); use `[::]` for IPv6.
    pub fn listen_addr(&self) -> String {
        format!(
            "{}:{}",
            self.general.listen_address, self.general.listen_port
        )
    }

    /// A copy with secrets (Kafka SASL password, Kafka TLS private key,
    /// PKCS11 PIN) replaced by `<redacted>`, for logging.
    pub fn redacted(&self) -> Config {
        let mut c = self.clone();
        for secret in [
            &mut c.kafka.sasl_plain.password,
            &mut c.kafka.sasl_scram.password,
            &mut c.kafka.tls.private_key,
            &mut c.general.bccsp.pkcs11.pin,
        ] {
            if !secret.is_empty() {
                *secret = "<redacted>".to_string();
            }
        }
        c
    }

    /// The effective configuration as YAML (durations in Go syntax, sizes in
    /// bytes). Loading this text again gives the same configuration. It
    /// includes secrets: use [`Config::redacted`] before logging it.
    pub fn to_yaml_string(&self) -> String {
        // serde-saphyr's serializer is used on the JSON form, which keeps
        // key spelling and ordering of the typed structs.
        serde_saphyr::to_string(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}
