//! The orderer's local configuration, read the way Fabric's orderer reads
//! its `orderer.yaml` (Fabric v1.4 and v2.x keys are both accepted).
//!
//! # Loading
//!
//! [`load`] looks for `orderer.yaml` (then `orderer.yml`) in, in order,
//! `$FABRIC_CFG_PATH` (when set), the current directory and
//! `/etc/hyperledger/fabric`, like Fabric v2's `viperutil.ConfigPaths`. When
//! no file is found, the embedded development defaults ([`BUILTIN_ORDERER_YAML`],
//! the values of Fabric's v2.x sample `orderer.yaml`) are used and
//! [`Config::source`] is [`ConfigSource::BuiltinDefaults`]; Fabric itself
//! would fail to start.
//!
//! Then, as in Fabric:
//!
//! 1. Every key, whether in the YAML or not, can be overridden by an
//!    environment variable `ORDERER_<KEY PATH>`: the path upper-cased with
//!    dots replaced by underscores (`ORDERER_GENERAL_LISTENPORT`,
//!    `ORDERER_KAFKA_RETRY_SHORTINTERVAL`). Empty variables are ignored.
//!    Fabric only applies overrides below sections that exist in the YAML;
//!    here they apply everywhere. Under the free-form `Consensus` section
//!    only keys present in the YAML can be overridden (values stay strings).
//!    PEM keys of `Kafka.TLS` also accept `ORDERER_KAFKA_TLS_<KEY>_FILE`
//!    when the key is unset.
//! 2. Keys match case-insensitively. Unknown keys are errors naming the full
//!    path (`General.ListenPrt: unknown configuration key`), except inside
//!    `General.BCCSP`, where Fabric ignores them (they are listed in
//!    [`Config::warnings`]).
//! 3. Values use Fabric's decode rules: Go durations (`5s`, `1m30s`, `1.5h`;
//!    a bare number is nanoseconds), booleans (`true`, `1`, `T`, `FALSE`,
//!    YAML `yes`/`no`), integers in Go base-0 syntax, byte sizes
//!    (`10 MB` = 10 × 1024², `512 KB`, `1G`, plain integers) for
//!    `ChannelParticipation.MaxRequestBodySize` and (an extension, Fabric
//!    only takes integers there) `General.MaxRecvMsgSize`/`MaxSendMsgSize`,
//!    lists as YAML sequences, `[a, b]` text or a single value, and
//!    `Kafka.TLS` PEM values inline or as `{File: path}`.
//! 4. Unset or zero values are back-filled with Fabric's code defaults
//!    ([`finish::code_defaults`]; they differ from the sample YAML for some
//!    keys, see there). So an `orderer.yaml` that omits a key behaves as
//!    with Fabric.
//! 5. Relative paths are resolved against the config file's directory for
//!    the keys Fabric translates (see [`finish`]).
//! 6. Every value is validated; errors name the key
//!    (`General.ListenPort: 70000 is not a valid port`).

pub mod decode;
pub mod error;
pub mod finish;
pub mod model;
pub mod values;

use std::path::{Path, PathBuf};

pub use decode::env_var_name;
pub use error::ConfigError;
pub use model::*;
pub use values::{
    format_go_duration, parse_byte_size, parse_duration, parse_go_duration, KafkaVersion,
};

/// The config file name Fabric's orderer looks for (with `.yaml` or `.yml`).
pub const CONFIG_NAME: &str = "orderer";

/// The directory searched last, as in Fabric.
pub const OFFICIAL_CONFIG_DIR: &str = "/etc/hyperledger/fabric";

/// The embedded development defaults, used when no `orderer.yaml` is found.
/// The values are those of Fabric's v2.x sample `orderer.yaml`.
pub const BUILTIN_ORDERER_YAML: &str = r#"# Built-in development defaults of the Kafka-based orderer.
General:
  ListenAddress: 127.0.0.1
  ListenPort: 7050
  TLS:
    Enabled: false
    PrivateKey: tls/server.key
    Certificate: tls/server.crt
    RootCAs: [tls/ca.crt]
    ClientAuthRequired: false
  Keepalive:
    ServerMinInterval: 60s
    ServerInterval: 7200s
    ServerTimeout: 20s
  MaxRecvMsgSize: 104857600
  MaxSendMsgSize: 104857600
  Cluster:
    SendBufferSize: 100
  BootstrapMethod: file
  BootstrapFile: ""          # empty: back-filled to "genesisblock"
  LocalMSPDir: msp
  LocalMSPID: SampleOrg
  Profile:
    Enabled: false
    Address: 0.0.0.0:6060
  BCCSP:
    Default: SW
    SW:
      Hash: SHA2
      Security: 256
  Authentication:
    TimeWindow: 15m
FileLedger:
  Location: /var/hyperledger/production/orderer
Kafka:
  Retry:
    ShortInterval: 5s
    ShortTotal: 10m
    LongInterval: 5m
    LongTotal: 12h
    NetworkTimeouts: {DialTimeout: 10s, ReadTimeout: 10s, WriteTimeout: 10s}
    Metadata: {RetryBackoff: 250ms, RetryMax: 3}
    Producer: {RetryBackoff: 100ms, RetryMax: 3}
    Consumer: {RetryBackoff: 2s}
  Topic:
    ReplicationFactor: 3
  Verbose: false
  TLS:
    Enabled: false
  SASLPlain:
    Enabled: false
  Version: ""                # empty: 0.10.2.0
Debug:
  BroadcastTraceDir: ""
  DeliverTraceDir: ""
Operations:
  ListenAddress: 127.0.0.1:8443
  TLS:
    Enabled: false
    ClientAuthRequired: false
Metrics:
  Provider: disabled
  Statsd:
    Network: udp
    Address: 127.0.0.1:8125
    WriteInterval: 30s
    Prefix: ""
Admin:
  ListenAddress: 127.0.0.1:9443
  TLS:
    Enabled: false
    ClientAuthRequired: true
ChannelParticipation:
  Enabled: false
  MaxRequestBodySize: 1 MB
Consensus:
  WALDir: /var/hyperledger/production/orderer/etcdraft/wal
  SnapDir: /var/hyperledger/production/orderer/etcdraft/snapshot
"#;

/// Loads the configuration from the real environment: finds `orderer.yaml`
/// through `FABRIC_CFG_PATH` (see [`find_config_file`]), or falls back to
/// the built-in defaults, then applies `ORDERER_*` variables.
pub fn load() -> Result<Config, ConfigError> {
    let env = |name: &str| std::env::var(name).ok();
    let cfg_path = std::env::var_os("FABRIC_CFG_PATH").map(PathBuf::from);
    match find_config_file(cfg_path.as_deref()) {
        Some(path) => load_from_file(&path, &env),
        None => load_from(None, None, &env),
    }
}

/// Finds the config file: `orderer.yaml` or `orderer.yml` in
/// `fabric_cfg_path` (if given and non-empty), then `.`, then
/// `/etc/hyperledger/fabric`.
pub fn find_config_file(fabric_cfg_path: Option<&Path>) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(p) = fabric_cfg_path.filter(|p| !p.as_os_str().is_empty()) {
        dirs.push(p.to_path_buf());
    }
    dirs.push(PathBuf::from("."));
    dirs.push(PathBuf::from(OFFICIAL_CONFIG_DIR));
    for dir in dirs {
        for ext in ["yaml", "yml"] {
            let candidate = dir.join(format!("{CONFIG_NAME}.{ext}"));
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Loads a config file; relative paths in it resolve against its directory.
pub fn load_from_file(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut cfg = load_inner(&text, &path.display().to_string(), Some(base), env)?;
    cfg.source = ConfigSource::File(path.to_path_buf());
    Ok(cfg)
}

/// Loads from YAML text (`None`: the built-in defaults) with the given
/// environment lookup. Relative paths resolve against `base_dir` when given
/// (otherwise they stay relative to the working directory).
pub fn load_from(
    yaml: Option<&str>,
    base_dir: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let (text, origin, source) = match yaml {
        Some(t) => (t, "<inline>", ConfigSource::Inline),
        None => (
            BUILTIN_ORDERER_YAML,
            "<built-in defaults>",
            ConfigSource::BuiltinDefaults,
        ),
    };
    let mut cfg = load_inner(text, origin, base_dir, env)?;
    cfg.source = source;
    Ok(cfg)
}

/// [`load_from`] with the environment given as a map (for tests and tools).
pub fn load_from_map(
    yaml: Option<&str>,
    base_dir: Option<&Path>,
    env: &std::collections::HashMap<String, String>,
) -> Result<Config, ConfigError> {
    load_from(yaml, base_dir, &|k: &str| env.get(k).cloned())
}

fn load_inner(
    text: &str,
    origin: &str,
    base_dir: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let doc: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| ConfigError::Yaml {
        origin: origin.to_string(),
        message: e.to_string(),
    })?;
    let mut decoder = decode::Decoder::new(env);
    let canonical = decoder.decode_root(Some(&doc));
    if let Some(err) = ConfigError::from_list(std::mem::take(&mut decoder.errors)) {
        return Err(err);
    }
    let mut cfg: Config = serde_json::from_value(canonical).map_err(|e| {
        // The decoder only produces values the structs accept; this is a bug.
        ConfigError::invalid("<internal>", format!("schema and model disagree: {e}"))
    })?;
    cfg.warnings = decoder.warnings;
    let method_from_genesis = finish::backfill(&mut cfg);
    if let Some(base) = base_dir {
        finish::translate_paths(&mut cfg, base);
    }
    if let Some(err) = ConfigError::from_list(finish::validate(&cfg, method_from_genesis)) {
        return Err(err);
    }
    Ok(cfg)
}

impl Config {
    /// The built-in development defaults (Fabric's v2.x sample values, after
    /// back-filling), without any environment overrides.
    pub fn builtin() -> Config {
        load_from(None, None, &|_: &str| None).expect("built-in defaults are valid")
    }

    /// Validates a configuration built or modified in code (loading already
    /// validates).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let from_genesis = self.general.bootstrap_method == self.general.genesis_method
            && !self.general.genesis_method.is_empty();
        match ConfigError::from_list(finish::validate(self, from_genesis)) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
