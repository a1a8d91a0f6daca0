//! Steps after decoding: Fabric's back-filling of unset values, path
//! translation relative to the config file, and validation.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::ConfigError;
use crate::model::{Bootstrap, Config};
use crate::values::KafkaVersion;

/// Fabric's code defaults (`localconfig.Defaults`) used to back-fill keys
/// that are unset or zero once the YAML and environment are applied.
///
/// Where they differ from the sample `orderer.yaml` (and so from
/// [`Config::builtin`]), an `orderer.yaml` that omits the key gets the
/// value below, exactly as with Fabric:
///
/// | key | code default | sample yaml |
/// |---|---|---|
/// | `Kafka.Retry.ShortInterval` | 1m | 5s |
/// | `Kafka.Retry.LongInterval` | 10m | 5m |
/// | `Kafka.Retry.NetworkTimeouts.*` | 30s | 10s |
/// | `General.Keepalive.*` | (not back-filled: 0 = gRPC defaults) | 60s / 7200s / 20s |
/// | `Operations.ListenAddress` | (not back-filled) | 127.0.0.1:8443 |
/// | `Admin.ListenAddress` | (not back-filled) | 127.0.0.1:9443 |
/// | `Metrics.Provider` | (not back-filled: empty = disabled) | disabled |
/// | `Kafka.Topic.ReplicationFactor` | (not back-filled) | 3 |
/// | `ChannelParticipation.MaxRequestBodySize` | (not back-filled) | 1 MB |
/// | `General.GenesisProfile` (v1.4) | SampleSingleMSPSolo | SampleInsecureSolo |
/// | `General.Cluster.SendBufferSize` | 100 (v1.4: 10) | 100 (v1.4: 10) |
pub mod code_defaults {
    use std::time::Duration;

    pub const LISTEN_ADDRESS: &str = "127.0.0.1";
    pub const LISTEN_PORT: u16 = 7050;
    pub const BOOTSTRAP_METHOD: &str = "file";
    pub const BOOTSTRAP_FILE: &str = "genesisblock";
    pub const LEDGER_TYPE: &str = "file";
    pub const GENESIS_PROFILE: &str = "SampleSingleMSPSolo";
    pub const SYSTEM_CHANNEL: &str = "test-system-channel-name";
    pub const PROFILE_ADDRESS: &str = "0.0.0.0:6060";
    pub const LOCAL_MSP_DIR: &str = "msp";
    pub const LOCAL_MSP_ID: &str = "SampleOrg";
    pub const TIME_WINDOW: Duration = Duration::from_secs(15 * 60);
    pub const FILE_LEDGER_PREFIX: &str = "hyperledger-fabric-ordererledger";
    pub const MAX_MSG_SIZE: u32 = 100 * 1024 * 1024;
    pub const CLUSTER_RPC_TIMEOUT: Duration = Duration::from_secs(7);
    pub const CLUSTER_DIAL_TIMEOUT: Duration = Duration::from_secs(5);
    pub const CLUSTER_REPLICATION_MAX_RETRIES: u64 = 12;
    pub const CLUSTER_SEND_BUFFER_SIZE: u64 = 100;
    pub const CLUSTER_REPLICATION_BUFFER_SIZE: u64 = 20_971_520;
    pub const CLUSTER_REPLICATION_PULL_TIMEOUT: Duration = Duration::from_secs(5);
    pub const CLUSTER_REPLICATION_RETRY_TIMEOUT: Duration = Duration::from_secs(5);
    pub const CLUSTER_REPLICATION_REFRESH: Duration = Duration::from_secs(5 * 60);
    pub const CLUSTER_CERT_EXPIRATION_WARNING: Duration = Duration::from_secs(7 * 24 * 3600);
    pub const KAFKA_SHORT_INTERVAL: Duration = Duration::from_secs(60);
    pub const KAFKA_SHORT_TOTAL: Duration = Duration::from_secs(10 * 60);
    pub const KAFKA_LONG_INTERVAL: Duration = Duration::from_secs(10 * 60);
    pub const KAFKA_LONG_TOTAL: Duration = Duration::from_secs(12 * 3600);
    pub const KAFKA_NETWORK_TIMEOUT: Duration = Duration::from_secs(30);
    pub const KAFKA_METADATA_BACKOFF: Duration = Duration::from_millis(250);
    pub const KAFKA_METADATA_RETRY_MAX: u32 = 3;
    pub const KAFKA_PRODUCER_BACKOFF: Duration = Duration::from_millis(100);
    pub const KAFKA_PRODUCER_RETRY_MAX: u32 = 3;
    pub const KAFKA_CONSUMER_BACKOFF: Duration = Duration::from_secs(2);
}

fn fill_str(v: &mut String, d: &str) {
    if v.is_empty() {
        *v = d.to_string();
    }
}

fn fill_dur(v: &mut Duration, d: Duration) {
    if v.is_zero() {
        *v = d;
    }
}

fn fill_num<T: PartialEq + Default>(v: &mut T, d: T) {
    if *v == T::default() {
        *v = d;
    }
}

/// Fabric's `completeInitialization` (v2.5, plus the v1.4-only keys).
/// Returns whether the effective bootstrap method came from `GenesisMethod`.
pub(crate) fn backfill(c: &mut Config) -> bool {
    use code_defaults as d;
    let g = &mut c.general;
    fill_str(&mut g.listen_address, d::LISTEN_ADDRESS);
    fill_num(&mut g.listen_port, d::LISTEN_PORT);
    fill_str(&mut g.ledger_type, d::LEDGER_TYPE);
    fill_str(&mut g.genesis_profile, d::GENESIS_PROFILE);
    fill_str(&mut g.system_channel, d::SYSTEM_CHANNEL);

    if !g.log_level.is_empty() {
        c.warnings.push(
            "General.LogLevel is deprecated (Fabric v1.0–v1.1); use FABRIC_LOGGING_SPEC"
                .to_string(),
        );
    }
    if !g.log_format.is_empty() {
        c.warnings.push(
            "General.LogFormat is deprecated (Fabric v1.0–v1.1); use FABRIC_LOGGING_FORMAT"
                .to_string(),
        );
    }

    let mut method_from_genesis = false;
    if g.bootstrap_method.is_empty() {
        if g.genesis_method.is_empty() {
            g.bootstrap_method = d::BOOTSTRAP_METHOD.to_string();
        } else {
            c.warnings.push(
                "General.GenesisMethod is deprecated; use General.BootstrapMethod".to_string(),
            );
            g.bootstrap_method = g.genesis_method.clone();
            method_from_genesis = true;
        }
    }
    if g.bootstrap_file.as_os_str().is_empty() {
        if g.genesis_file.as_os_str().is_empty() {
            g.bootstrap_file = PathBuf::from(d::BOOTSTRAP_FILE);
        } else {
            c.warnings
                .push("General.GenesisFile is deprecated; use General.BootstrapFile".to_string());
            g.bootstrap_file = g.genesis_file.clone();
        }
    }

    let cl = &mut g.cluster;
    fill_dur(&mut cl.rpc_timeout, d::CLUSTER_RPC_TIMEOUT);
    fill_dur(&mut cl.dial_timeout, d::CLUSTER_DIAL_TIMEOUT);
    fill_num(
        &mut cl.replication_max_retries,
        d::CLUSTER_REPLICATION_MAX_RETRIES,
    );
    fill_num(&mut cl.send_buffer_size, d::CLUSTER_SEND_BUFFER_SIZE);
    fill_num(
        &mut cl.replication_buffer_size,
        d::CLUSTER_REPLICATION_BUFFER_SIZE,
    );
    fill_dur(
        &mut cl.replication_pull_timeout,
        d::CLUSTER_REPLICATION_PULL_TIMEOUT,
    );
    fill_dur(
        &mut cl.replication_retry_timeout,
        d::CLUSTER_REPLICATION_RETRY_TIMEOUT,
    );
    fill_dur(
        &mut cl.replication_background_refresh_interval,
        d::CLUSTER_REPLICATION_REFRESH,
    );
    fill_dur(
        &mut cl.cert_expiration_warning_threshold,
        d::CLUSTER_CERT_EXPIRATION_WARNING,
    );

    if g.profile.enabled {
        fill_str(&mut g.profile.address, d::PROFILE_ADDRESS);
    }
    if g.local_msp_dir.as_os_str().is_empty() {
        g.local_msp_dir = PathBuf::from(d::LOCAL_MSP_DIR);
    }
    fill_str(&mut g.local_msp_id, d::LOCAL_MSP_ID);
    fill_dur(&mut g.authentication.time_window, d::TIME_WINDOW);
    fill_num(&mut g.max_recv_msg_size, d::MAX_MSG_SIZE);
    fill_num(&mut g.max_send_msg_size, d::MAX_MSG_SIZE);

    fill_str(&mut c.file_ledger.prefix, d::FILE_LEDGER_PREFIX);

    let r = &mut c.kafka.retry;
    fill_dur(&mut r.short_interval, d::KAFKA_SHORT_INTERVAL);
    fill_dur(&mut r.short_total, d::KAFKA_SHORT_TOTAL);
    fill_dur(&mut r.long_interval, d::KAFKA_LONG_INTERVAL);
    fill_dur(&mut r.long_total, d::KAFKA_LONG_TOTAL);
    fill_dur(
        &mut r.network_timeouts.dial_timeout,
        d::KAFKA_NETWORK_TIMEOUT,
    );
    fill_dur(
        &mut r.network_timeouts.read_timeout,
        d::KAFKA_NETWORK_TIMEOUT,
    );
    fill_dur(
        &mut r.network_timeouts.write_timeout,
        d::KAFKA_NETWORK_TIMEOUT,
    );
    fill_dur(&mut r.metadata.retry_backoff, d::KAFKA_METADATA_BACKOFF);
    fill_num(&mut r.metadata.retry_max, d::KAFKA_METADATA_RETRY_MAX);
    fill_dur(&mut r.producer.retry_backoff, d::KAFKA_PRODUCER_BACKOFF);
    fill_num(&mut r.producer.retry_max, d::KAFKA_PRODUCER_RETRY_MAX);
    fill_dur(&mut r.consumer.retry_backoff, d::KAFKA_CONSUMER_BACKOFF);
    // Kafka.Version: the struct default already is 0.10.2.0 when unset.
    method_from_genesis
}

/// Fabric's `TranslatePath`: relative paths are joined to the directory of
/// the config file. Empty values stay empty (Fabric would turn them into
/// the directory itself, which is never a usable file).
fn translate(base: &Path, p: &mut PathBuf) {
    if p.as_os_str().is_empty()
        || p.is_absolute()
        || base.as_os_str().is_empty()
        || base == Path::new(".")
    {
        return;
    }
    *p = base.join(&*p);
}

/// The keys Fabric translates (`completeInitialization`): General.TLS
/// key, certificate and CA lists, General.Cluster client key/certificate and
/// CAs, BootstrapFile (and v1.4's GenesisFile), LocalMSPDir and
/// FileLedger.Location. Operations/Admin TLS files, Cluster server
/// key/certificate, Debug dirs and the BCCSP key store are not translated.
pub(crate) fn translate_paths(c: &mut Config, base: &Path) {
    let g = &mut c.general;
    translate(base, &mut g.cluster.client_private_key);
    translate(base, &mut g.cluster.client_certificate);
    for p in &mut g.cluster.root_cas {
        translate(base, p);
    }
    for p in g
        .tls
        .root_cas
        .iter_mut()
        .chain(g.tls.client_root_cas.iter_mut())
    {
        translate(base, p);
    }
    translate(base, &mut g.tls.private_key);
    translate(base, &mut g.tls.certificate);
    translate(base, &mut g.bootstrap_file);
    translate(base, &mut g.genesis_file);
    translate(base, &mut g.local_msp_dir);
    translate(base, &mut c.file_ledger.location);
}

/// Checks every value; returns all problems found.
pub(crate) fn validate(c: &Config, method_from_genesis: bool) -> Vec<ConfigError> {
    let mut errs = Vec::new();
    let mut bad = |key: &str, msg: String| errs.push(ConfigError::invalid(key, msg));
    let g = &c.general;

    // General.
    let la = &g.listen_address;
    if la.contains(char::is_whitespace)
        || (la.contains(':') && !(la.starts_with('[') && la.ends_with(']')))
    {
        bad(
            "General.ListenAddress",
            format!(
                "{la:?} must be a host name or IP address without a port (write IPv6 as [::1])"
            ),
        );
    }
    if !matches!(g.ledger_type.as_str(), "file" | "json" | "ram") {
        bad(
            "General.LedgerType",
            format!(
                "unknown value {:?} (expected file, json or ram)",
                g.ledger_type
            ),
        );
    }
    if !g.genesis_method.is_empty()
        && !matches!(g.genesis_method.as_str(), "provisional" | "file" | "none")
    {
        bad(
            "General.GenesisMethod",
            format!(
                "unknown value {:?} (expected provisional or file)",
                g.genesis_method
            ),
        );
    } else if !method_from_genesis && !matches!(g.bootstrap_method.as_str(), "file" | "none") {
        bad(
            "General.BootstrapMethod",
            format!(
                "unknown value {:?} (expected file or none)",
                g.bootstrap_method
            ),
        );
    }
    if matches!(c.bootstrap(), Bootstrap::Provisional { .. }) {
        if g.genesis_profile.trim().is_empty() {
            bad(
                "General.GenesisProfile",
                "must be set for provisional bootstrap".into(),
            );
        }
        if g.system_channel.trim().is_empty() {
            bad(
                "General.SystemChannel",
                "must be set for provisional bootstrap".into(),
            );
        }
    }
    check_tls_files(&mut bad, "General.TLS", &g.tls);
    check_tls_files(&mut bad, "Operations.TLS", &c.operations.tls);
    check_tls_files(&mut bad, "Admin.TLS", &c.admin.tls);
    if c.admin.tls.enabled && !c.admin.tls.client_auth_required {
        bad(
            "Admin.TLS.ClientAuthRequired",
            "must be true when Admin.TLS.Enabled is true".into(),
        );
    }
    if g.profile.enabled {
        check_host_port(&mut bad, "General.Profile.Address", &g.profile.address);
    }
    if !g.cluster.listen_address.is_empty() && g.cluster.listen_port == 0 {
        bad(
            "General.Cluster.ListenPort",
            "must be set when General.Cluster.ListenAddress is set".into(),
        );
    }
    if g.local_msp_id.trim().is_empty() {
        bad("General.LocalMSPID", "must not be empty".into());
    }
    match g.bccsp.default.as_str() {
        "SW" => {
            if !matches!(g.bccsp.sw.hash.as_str(), "SHA2" | "SHA3") {
                bad(
                    "General.BCCSP.SW.Hash",
                    format!(
                        "unknown value {:?} (expected SHA2 or SHA3)",
                        g.bccsp.sw.hash
                    ),
                );
            }
            if !matches!(g.bccsp.sw.security, 256 | 384) {
                bad(
                    "General.BCCSP.SW.Security",
                    format!(
                        "unsupported value {} (expected 256 or 384)",
                        g.bccsp.sw.security
                    ),
                );
            }
        }
        "PKCS11" => check_pkcs11(&mut bad, &g.bccsp.pkcs11),
        "PLUGIN" => {
            if g.bccsp.plugin.library.is_empty() {
                bad(
                    "General.BCCSP.PLUGIN.Library",
                    "must be set when BCCSP.Default is PLUGIN".into(),
                );
            }
        }
        other => bad(
            "General.BCCSP.Default",
            format!("unknown value {other:?} (expected SW or PKCS11)"),
        ),
    }

    // Kafka.
    let k = &c.kafka;
    let r = &k.retry;
    for (key, d) in [
        ("Kafka.Retry.ShortInterval", r.short_interval),
        ("Kafka.Retry.ShortTotal", r.short_total),
        ("Kafka.Retry.LongInterval", r.long_interval),
        ("Kafka.Retry.LongTotal", r.long_total),
        (
            "Kafka.Retry.NetworkTimeouts.DialTimeout",
            r.network_timeouts.dial_timeout,
        ),
        (
            "Kafka.Retry.NetworkTimeouts.ReadTimeout",
            r.network_timeouts.read_timeout,
        ),
        (
            "Kafka.Retry.NetworkTimeouts.WriteTimeout",
            r.network_timeouts.write_timeout,
        ),
        (
            "Kafka.Retry.Metadata.RetryBackoff",
            r.metadata.retry_backoff,
        ),
        (
            "Kafka.Retry.Producer.RetryBackoff",
            r.producer.retry_backoff,
        ),
        (
            "Kafka.Retry.Consumer.RetryBackoff",
            r.consumer.retry_backoff,
        ),
    ] {
        if d.is_zero() {
            bad(key, "must be > 0".into());
        }
    }
    if k.topic.replication_factor < -1 {
        bad(
            "Kafka.Topic.ReplicationFactor",
            format!(
                "{} is not valid (expected a positive number, or -1 for the broker default)",
                k.topic.replication_factor
            ),
        );
    }
    if k.tls.enabled {
        if k.tls.certificate.trim().is_empty() {
            bad(
                "Kafka.TLS.Certificate",
                "must be set when Kafka.TLS.Enabled is true".into(),
            );
        }
        if k.tls.private_key.trim().is_empty() {
            bad(
                "Kafka.TLS.PrivateKey",
                "must be set when Kafka.TLS.Enabled is true".into(),
            );
        }
        if k.tls.root_cas.is_empty() {
            bad(
                "Kafka.TLS.RootCAs",
                "must be set when Kafka.TLS.Enabled is true".into(),
            );
        }
    }
    if k.sasl_plain.enabled {
        if k.sasl_plain.user.is_empty() {
            bad(
                "Kafka.SASLPlain.User",
                "must be set when Kafka.SASLPlain.Enabled is true".into(),
            );
        }
        if k.sasl_plain.password.is_empty() {
            bad(
                "Kafka.SASLPlain.Password",
                "must be set when Kafka.SASLPlain.Enabled is true".into(),
            );
        }
    }
    if k.sasl_scram.enabled {
        if k.sasl_plain.enabled {
            bad(
                "Kafka.SASLSCRAM.Enabled",
                "Kafka.SASLPlain and Kafka.SASLSCRAM cannot both be enabled".into(),
            );
        }
        if !matches!(
            k.sasl_scram.mechanism.as_str(),
            "" | "SCRAM-SHA-256" | "SCRAM-SHA-512"
        ) {
            bad(
                "Kafka.SASLSCRAM.Mechanism",
                format!(
                    "{:?}: must be SCRAM-SHA-256 or SCRAM-SHA-512",
                    k.sasl_scram.mechanism
                ),
            );
        }
        for (key, v) in [
            ("Kafka.SASLSCRAM.User", &k.sasl_scram.user),
            ("Kafka.SASLSCRAM.Password", &k.sasl_scram.password),
        ] {
            if v.is_empty() {
                bad(
                    key,
                    "must be set when Kafka.SASLSCRAM.Enabled is true".into(),
                );
            }
        }
    }
    for source in &k.catch_up.sources {
        check_host_port(&mut bad, "Kafka.CatchUp.Sources", source);
    }
    if k.version < KafkaVersion([0, 8, 2, 0]) {
        bad(
            "Kafka.Version",
            format!("unsupported Kafka version {}", k.version),
        );
    }

    // Operations, Admin, Metrics.
    if !c.operations.listen_address.is_empty() {
        check_host_port(
            &mut bad,
            "Operations.ListenAddress",
            &c.operations.listen_address,
        );
    }
    if !c.admin.listen_address.is_empty() {
        check_host_port(&mut bad, "Admin.ListenAddress", &c.admin.listen_address);
    }
    match c.metrics.provider.as_str() {
        "" | "disabled" | "prometheus" => {}
        "statsd" => {
            let s = &c.metrics.statsd;
            if !matches!(s.network.as_str(), "udp" | "tcp") {
                bad(
                    "Metrics.Statsd.Network",
                    format!("unknown value {:?} (expected udp or tcp)", s.network),
                );
            }
            check_host_port(&mut bad, "Metrics.Statsd.Address", &s.address);
            if s.write_interval.is_zero() {
                bad("Metrics.Statsd.WriteInterval", "must be > 0".into());
            }
        }
        other => bad(
            "Metrics.Provider",
            format!("unknown value {other:?} (expected disabled, prometheus or statsd)"),
        ),
    }
    errs
}

fn check_tls_files(bad: &mut impl FnMut(&str, String), section: &str, tls: &crate::model::Tls) {
    if !tls.enabled {
        return;
    }
    if tls.certificate.as_os_str().is_empty() {
        bad(
            &format!("{section}.Certificate"),
            format!("must be set when {section}.Enabled is true"),
        );
    }
    if tls.private_key.as_os_str().is_empty() {
        bad(
            &format!("{section}.PrivateKey"),
            format!("must be set when {section}.Enabled is true"),
        );
    }
}

/// Checks `host:port` syntax as Go's `net.SplitHostPort` would accept it,
/// with a numeric port.
/// `General.BCCSP.PKCS11` when it is the provider: what the orderer needs
/// to find the token and the key (Fabric refuses the same values, at the
/// first use of the provider).
fn check_pkcs11(bad: &mut impl FnMut(&str, String), p: &crate::model::Pkcs11Opts) {
    let need = "must be set when BCCSP.Default is PKCS11";
    for (key, value) in [
        ("General.BCCSP.PKCS11.Library", &p.library),
        ("General.BCCSP.PKCS11.Label", &p.label),
        ("General.BCCSP.PKCS11.Pin", &p.pin),
    ] {
        if value.is_empty() {
            bad(key, need.into());
        }
    }
    if !matches!(p.hash.as_str(), "SHA2" | "SHA3") {
        bad(
            "General.BCCSP.PKCS11.Hash",
            format!("unknown value {:?} (expected SHA2 or SHA3)", p.hash),
        );
    }
    if !matches!(p.security, 256 | 384) {
        bad(
            "General.BCCSP.PKCS11.Security",
            format!("unsupported value {} (expected 256 or 384)", p.security),
        );
    }
    if let Err(e) = p.key_id_mappings() {
        bad("General.BCCSP.PKCS11.KeyIds", e);
    }
}

fn check_host_port(bad: &mut impl FnMut(&str, String), key: &str, addr: &str) {
    let ok = (|| {
        let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
            let (h, p) = rest.split_once("]:")?;
            (h, p)
        } else {
            let (h, p) = addr.rsplit_once(':')?;
            if h.contains(':') {
                return None;
            }
            (h, p)
        };
        if host.contains(char::is_whitespace) {
            return None;
        }
        port.parse::<u16>().ok()
    })();
    if ok.is_none() {
        bad(
            key,
            format!("{addr:?} is not a valid address (expected host:port)"),
        );
    }
}
