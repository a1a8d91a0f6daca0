use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load_yaml(yaml: &str, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    load_from_map(Some(yaml), None, &env(pairs))
}

fn load_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    load_from_map(None, None, &env(pairs))
}

fn err_of(r: Result<Config, ConfigError>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

const SECS: fn(u64) -> Duration = Duration::from_secs;
const MS: fn(u64) -> Duration = Duration::from_millis;

/// A v2.5-style orderer.yaml written for these tests (every section).
const V25_YAML: &str = r#"
General:
  ListenAddress: 0.0.0.0
  ListenPort: 7150
  TLS:
    Enabled: true
    PrivateKey: tls/node.key
    Certificate: tls/node.pem
    RootCAs:
      - tls/root.pem
      - /abs/other-root.pem
    ClientAuthRequired: true
    ClientRootCAs: [tls/client-root.pem]
  Keepalive:
    ServerMinInterval: 30s
    ServerInterval: 1h
    ServerTimeout: 15s
  MaxRecvMsgSize: 52428800
  MaxSendMsgSize: 52428800
  Cluster:
    SendBufferSize: 50
    ClientCertificate: tls/cluster.pem
    ClientPrivateKey: tls/cluster.key
    ListenPort:
    ListenAddress:
    ServerCertificate:
    ServerPrivateKey:
    RootCAs:
  BootstrapMethod: file
  BootstrapFile: blocks/system.block
  LocalMSPDir: crypto/msp
  LocalMSPID: OrdererMSP
  Profile:
    Enabled: false
    Address: 0.0.0.0:6161
  BCCSP:
    Default: SW
    SW:
      Hash: SHA2
      Security: 256
      FileKeyStore:
        KeyStore:
    PKCS11:
      Library:
      Label:
      Pin:
      Hash:
      Security:
      FileKeyStore:
        KeyStore:
  Authentication:
    TimeWindow: 10m
    NoExpirationChecks: false
FileLedger:
  Location: ledger-data
Kafka:
  Retry:
    ShortInterval: 3s
    ShortTotal: 5m
    LongInterval: 2m
    LongTotal: 6h
    NetworkTimeouts:
      DialTimeout: 7s
      ReadTimeout: 8s
      WriteTimeout: 9s
    Metadata:
      RetryBackoff: 200ms
      RetryMax: 4
    Producer:
      RetryBackoff: 50ms
      RetryMax: 5
    Consumer:
      RetryBackoff: 1s
  Topic:
    ReplicationFactor: 2
  Verbose: true
  TLS:
    Enabled: false
    PrivateKey:
    Certificate:
    RootCAs:
  SASLPlain:
    Enabled: false
    User:
    Password:
  Version: 2.8.1
Debug:
  BroadcastTraceDir:
  DeliverTraceDir:
Operations:
  ListenAddress: 0.0.0.0:9443
  TLS:
    Enabled: false
    Certificate:
    PrivateKey:
    ClientAuthRequired: false
    ClientRootCAs: []
Metrics:
  Provider: prometheus
  Statsd:
    Network: udp
    Address: 127.0.0.1:8125
    WriteInterval: 10s
    Prefix:
Admin:
  ListenAddress: 0.0.0.0:9444
  TLS:
    Enabled: true
    Certificate: /etc/admin/tls.pem
    PrivateKey: /etc/admin/tls.key
    ClientAuthRequired: true
    ClientRootCAs: [/etc/admin/ca.pem]
ChannelParticipation:
  Enabled: true
  MaxRequestBodySize: 2 MB
Consensus:
  WALDir: /data/wal
  SnapDir: /data/snap
"#;

/// A v1.4-style orderer.yaml written for these tests.
const V14_YAML: &str = r#"
---
General:
  LedgerType: file
  ListenAddress: 127.0.0.1
  ListenPort: 7050
  TLS:
    Enabled: false
    PrivateKey: tls/server.key
    Certificate: tls/server.crt
    RootCAs:
      - tls/ca.crt
    ClientAuthRequired: false
    ClientRootCAs:
  Keepalive:
    ServerMinInterval: 60s
    ServerInterval: 7200s
    ServerTimeout: 20s
  Cluster:
    SendBufferSize: 10
    ClientCertificate:
    ClientPrivateKey:
    ListenPort:
    ListenAddress:
    ServerCertificate:
    ServerPrivateKey:
  GenesisMethod: provisional
  GenesisProfile: TwoOrgsKafka
  GenesisFile: genesis.block
  LocalMSPDir: msp
  LocalMSPID: OrdererOrg
  Profile:
    Enabled: false
    Address: 0.0.0.0:6060
  BCCSP:
    Default: SW
    SW:
      Hash: SHA2
      Security: 256
      FileKeyStore:
        KeyStore:
  Authentication:
    TimeWindow: 15m
FileLedger:
  Location: /var/ledger
  Prefix: ordererledger
RAMLedger:
  HistorySize: 1000
Kafka:
  Retry:
    ShortInterval: 5s
    ShortTotal: 10m
    LongInterval: 5m
    LongTotal: 12h
    NetworkTimeouts:
      DialTimeout: 10s
      ReadTimeout: 10s
      WriteTimeout: 10s
    Metadata:
      RetryBackoff: 250ms
      RetryMax: 3
    Producer:
      RetryBackoff: 100ms
      RetryMax: 3
    Consumer:
      RetryBackoff: 2s
  Topic:
    ReplicationFactor: 3
  Verbose: false
  TLS:
    Enabled: false
    PrivateKey:
    Certificate:
    RootCAs:
  SASLPlain:
    Enabled: false
    User:
    Password:
  Version:
Debug:
  BroadcastTraceDir:
  DeliverTraceDir:
Operations:
  ListenAddress: 127.0.0.1:8443
  TLS:
    Enabled: false
    Certificate:
    PrivateKey:
    ClientAuthRequired: false
    ClientRootCAs: []
Metrics:
  Provider: disabled
  Statsd:
    Network: udp
    Address: 127.0.0.1:8125
    WriteInterval: 30s
    Prefix:
Consensus:
  WALDir: /var/wal
  SnapDir: /var/snap
"#;

#[test]
fn builtin_defaults_equal_sample_values() {
    let c = Config::builtin();
    assert_eq!(c.source, ConfigSource::BuiltinDefaults);
    assert_eq!(c, Config::default());
    let g = &c.general;
    assert_eq!(g.listen_address, "127.0.0.1");
    assert_eq!(g.listen_port, 7050);
    assert_eq!(c.listen_addr(), "127.0.0.1:7050");
    assert!(!g.tls.enabled);
    assert_eq!(g.tls.private_key, PathBuf::from("tls/server.key"));
    assert_eq!(g.tls.certificate, PathBuf::from("tls/server.crt"));
    assert_eq!(g.tls.root_cas, vec![PathBuf::from("tls/ca.crt")]);
    assert!(g.tls.client_root_cas.is_empty());
    assert_eq!(g.keepalive.server_min_interval, SECS(60));
    assert_eq!(g.keepalive.server_interval, SECS(7200));
    assert_eq!(g.keepalive.server_timeout, SECS(20));
    assert_eq!(g.max_recv_msg_size, 104_857_600);
    assert_eq!(g.max_send_msg_size, 104_857_600);
    assert_eq!(g.cluster.send_buffer_size, 100);
    assert_eq!(g.cluster.rpc_timeout, SECS(7));
    assert_eq!(g.cluster.dial_timeout, SECS(5));
    assert_eq!(g.cluster.replication_buffer_size, 20_971_520);
    assert_eq!(g.bootstrap_method, "file");
    assert_eq!(g.bootstrap_file, PathBuf::from("genesisblock"));
    assert_eq!(c.bootstrap(), Bootstrap::File("genesisblock".into()));
    assert_eq!(g.local_msp_dir, PathBuf::from("msp"));
    assert_eq!(g.local_msp_id, "SampleOrg");
    assert!(!g.profile.enabled);
    assert_eq!(g.profile.address, "0.0.0.0:6060");
    assert_eq!(g.bccsp.default, "SW");
    assert_eq!(g.bccsp.sw.hash, "SHA2");
    assert_eq!(g.bccsp.sw.security, 256);
    assert_eq!(g.authentication.time_window, SECS(15 * 60));
    assert!(!g.authentication.no_expiration_checks);
    assert_eq!(g.ledger_type, "file");
    assert_eq!(
        c.file_ledger.location,
        PathBuf::from("/var/hyperledger/production/orderer")
    );
    let r = &c.kafka.retry;
    assert_eq!(r.short_interval, SECS(5));
    assert_eq!(r.short_total, SECS(600));
    assert_eq!(r.long_interval, SECS(300));
    assert_eq!(r.long_total, SECS(12 * 3600));
    assert_eq!(r.network_timeouts.dial_timeout, SECS(10));
    assert_eq!(r.network_timeouts.read_timeout, SECS(10));
    assert_eq!(r.network_timeouts.write_timeout, SECS(10));
    assert_eq!(r.metadata.retry_backoff, MS(250));
    assert_eq!(r.metadata.retry_max, 3);
    assert_eq!(r.producer.retry_backoff, MS(100));
    assert_eq!(r.producer.retry_max, 3);
    assert_eq!(r.consumer.retry_backoff, SECS(2));
    assert_eq!(c.kafka.topic.replication_factor, 3);
    assert!(!c.kafka.verbose);
    assert!(!c.kafka.tls.enabled);
    assert!(!c.kafka.sasl_plain.enabled);
    assert_eq!(c.kafka.version, KafkaVersion::V0_10_2_0);
    assert_eq!(c.kafka.version.to_string(), "0.10.2.0");
    assert_eq!(c.debug.broadcast_trace_dir, PathBuf::new());
    assert_eq!(c.operations.listen_address, "127.0.0.1:8443");
    assert!(!c.operations.tls.enabled);
    assert_eq!(c.metrics.provider, "disabled");
    assert_eq!(c.metrics.statsd.network, "udp");
    assert_eq!(c.metrics.statsd.address, "127.0.0.1:8125");
    assert_eq!(c.metrics.statsd.write_interval, SECS(30));
    assert_eq!(c.admin.listen_address, "127.0.0.1:9443");
    assert!(c.admin.tls.client_auth_required);
    assert!(!c.channel_participation.enabled);
    assert_eq!(c.channel_participation.max_request_body_size, 1024 * 1024);
    assert_eq!(
        c.consensus["WALDir"],
        "/var/hyperledger/production/orderer/etcdraft/wal"
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn schema_and_model_have_the_same_keys() {
    fn leaves(prefix: &str, v: &serde_json::Value, out: &mut BTreeSet<String>) {
        match v {
            serde_json::Value::Object(m)
                if !matches!(
                    prefix,
                    "Consensus" | "General.BCCSP.PKCS11.KeyIDs" | "General.BCCSP.PLUGIN.Config"
                ) =>
            {
                for (k, child) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(&p, child, out);
                }
            }
            _ => {
                out.insert(prefix.to_string());
            }
        }
    }
    let mut from_model = BTreeSet::new();
    leaves(
        "",
        &serde_json::to_value(Config::builtin()).unwrap(),
        &mut from_model,
    );
    let from_schema: BTreeSet<String> = decode::leaf_paths().into_iter().collect();
    assert_eq!(from_model, from_schema);
}

#[test]
fn v25_style_file_loads() {
    let base = Path::new("/etc/orderer");
    let c = load_from_map(Some(V25_YAML), Some(base), &env(&[])).unwrap();
    assert_eq!(c.source, ConfigSource::Inline);
    let g = &c.general;
    assert_eq!(c.listen_addr(), "0.0.0.0:7150");
    assert!(g.tls.enabled && g.tls.client_auth_required);
    // Relative paths resolve against the config directory; absolute stay.
    assert_eq!(g.tls.private_key, base.join("tls/node.key"));
    assert_eq!(g.tls.certificate, base.join("tls/node.pem"));
    assert_eq!(
        g.tls.root_cas,
        vec![
            base.join("tls/root.pem"),
            PathBuf::from("/abs/other-root.pem")
        ]
    );
    assert_eq!(
        g.tls.client_root_cas,
        vec![base.join("tls/client-root.pem")]
    );
    assert_eq!(g.cluster.client_certificate, base.join("tls/cluster.pem"));
    assert_eq!(g.cluster.client_private_key, base.join("tls/cluster.key"));
    assert_eq!(g.cluster.send_buffer_size, 50);
    assert_eq!(g.cluster.listen_port, 0);
    assert_eq!(g.keepalive.server_interval, SECS(3600));
    assert_eq!(g.max_recv_msg_size, 50 * 1024 * 1024);
    assert_eq!(
        c.bootstrap(),
        Bootstrap::File(base.join("blocks/system.block"))
    );
    assert_eq!(g.local_msp_dir, base.join("crypto/msp"));
    assert_eq!(g.local_msp_id, "OrdererMSP");
    assert_eq!(g.authentication.time_window, SECS(600));
    assert_eq!(c.file_ledger.location, base.join("ledger-data"));
    let r = &c.kafka.retry;
    assert_eq!(
        (
            r.short_interval,
            r.short_total,
            r.long_interval,
            r.long_total
        ),
        (SECS(3), SECS(300), SECS(120), SECS(6 * 3600))
    );
    assert_eq!(r.network_timeouts.write_timeout, SECS(9));
    assert_eq!(
        (r.metadata.retry_backoff, r.metadata.retry_max),
        (MS(200), 4)
    );
    assert_eq!(
        (r.producer.retry_backoff, r.producer.retry_max),
        (MS(50), 5)
    );
    assert_eq!(r.consumer.retry_backoff, SECS(1));
    assert_eq!(c.kafka.topic.replication_factor, 2);
    assert!(c.kafka.verbose);
    assert_eq!(c.kafka.version, KafkaVersion::V1_0_0_0);
    assert_eq!(c.metrics.provider, "prometheus");
    // Admin TLS paths are not translated (as in Fabric).
    assert_eq!(c.admin.tls.certificate, PathBuf::from("/etc/admin/tls.pem"));
    assert!(c.channel_participation.enabled);
    assert_eq!(
        c.channel_participation.max_request_body_size,
        2 * 1024 * 1024
    );
    assert_eq!(c.consensus["SnapDir"], "/data/snap");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn v14_style_file_loads() {
    let base = Path::new("/opt/cfg");
    let c = load_from_map(Some(V14_YAML), Some(base), &env(&[])).unwrap();
    let g = &c.general;
    assert_eq!(g.ledger_type, "file");
    assert_eq!(g.genesis_method, "provisional");
    assert_eq!(g.bootstrap_method, "provisional");
    assert_eq!(
        c.bootstrap(),
        Bootstrap::Provisional {
            profile: "TwoOrgsKafka".into(),
            system_channel: "test-system-channel-name".into(),
        }
    );
    assert_eq!(g.genesis_file, base.join("genesis.block"));
    assert_eq!(g.bootstrap_file, base.join("genesis.block"));
    assert_eq!(g.cluster.send_buffer_size, 10);
    assert_eq!(c.ram_ledger.history_size, 1000);
    assert_eq!(c.file_ledger.prefix, "ordererledger");
    assert_eq!(c.file_ledger.location, PathBuf::from("/var/ledger"));
    assert_eq!(c.kafka.version, KafkaVersion::V0_10_2_0);
    // Sections absent from a v1.4 file keep Fabric's zero values.
    assert_eq!(c.admin.listen_address, "");
    assert_eq!(c.channel_participation.max_request_body_size, 0);
    assert!(c.warnings.iter().any(|w| w.contains("GenesisMethod")));

    // GenesisMethod: file uses GenesisFile.
    let c = load_from_map(
        Some(V14_YAML),
        Some(base),
        &env(&[("ORDERER_GENERAL_GENESISMETHOD", "file")]),
    )
    .unwrap();
    assert_eq!(c.bootstrap(), Bootstrap::File(base.join("genesis.block")));
}

#[test]
fn v2_keys_win_over_v14_keys() {
    let yaml = "General:\n  GenesisMethod: provisional\n  GenesisFile: old.block\n  BootstrapMethod: none\n  BootstrapFile: new.block\n";
    let c = load_yaml(yaml, &[]).unwrap();
    assert_eq!(c.bootstrap(), Bootstrap::None);
    assert_eq!(c.general.bootstrap_file, PathBuf::from("new.block"));

    let yaml = "General:\n  GenesisMethod: file\n  GenesisFile: old.block\n";
    let c = load_yaml(yaml, &[("ORDERER_GENERAL_BOOTSTRAPFILE", "/b/new.block")]).unwrap();
    assert_eq!(c.bootstrap(), Bootstrap::File("/b/new.block".into()));

    // Only the v1.4 file key set (via env) on top of the built-in defaults.
    let c = load_env(&[("ORDERER_GENERAL_GENESISFILE", "/g/genesis.block")]).unwrap();
    assert_eq!(c.bootstrap(), Bootstrap::File("/g/genesis.block".into()));
}

#[test]
fn missing_keys_get_fabric_code_defaults() {
    let c = load_yaml("General:\n  ListenPort: 7051\n", &[]).unwrap();
    assert_eq!(c.general.listen_port, 7051);
    assert_eq!(c.general.listen_address, "127.0.0.1");
    assert_eq!(c.general.local_msp_id, "SampleOrg");
    assert_eq!(c.kafka.retry.short_interval, SECS(60));
    assert_eq!(c.kafka.retry.long_interval, SECS(600));
    assert_eq!(c.kafka.retry.network_timeouts.dial_timeout, SECS(30));
    assert_eq!(c.general.keepalive.server_min_interval, Duration::ZERO);
    assert_eq!(c.general.max_recv_msg_size, 100 * 1024 * 1024);
    assert_eq!(c.general.bootstrap_method, "file");
    assert_eq!(c.operations.listen_address, "");
    // Zero is "unset" for back-filled keys, as in Fabric.
    let c = load_yaml("Kafka:\n  Retry:\n    ShortInterval: 0s\n", &[]).unwrap();
    assert_eq!(c.kafka.retry.short_interval, SECS(60));
    // An empty document is fine too.
    assert!(load_yaml("", &[]).is_ok());
}

#[test]
fn env_overrides_every_value_type() {
    let c = load_env(&[
        ("ORDERER_GENERAL_LISTENPORT", "7777"),
        ("ORDERER_GENERAL_LISTENADDRESS", "0.0.0.0"),
        ("ORDERER_KAFKA_RETRY_SHORTINTERVAL", "1s"),
        ("ORDERER_KAFKA_RETRY_LONGTOTAL", "1.5h"),
        ("ORDERER_KAFKA_RETRY_NETWORKTIMEOUTS_READTIMEOUT", "1m30s"),
        ("ORDERER_CHANNELPARTICIPATION_MAXREQUESTBODYSIZE", "10 MB"),
        ("ORDERER_GENERAL_MAXRECVMSGSIZE", "98 MB"),
        ("ORDERER_GENERAL_MAXSENDMSGSIZE", "512 KB"),
        ("ORDERER_GENERAL_TLS_ROOTCAS", "[a.pem, b.pem]"),
        ("ORDERER_GENERAL_TLS_CLIENTROOTCAS", "c.pem"),
        ("ORDERER_GENERAL_TLS_ENABLED", "TRUE"),
        ("ORDERER_KAFKA_VERBOSE", "1"),
        ("ORDERER_KAFKA_TOPIC_REPLICATIONFACTOR", "2"),
        ("ORDERER_KAFKA_RETRY_METADATA_RETRYMAX", "0x10"),
        ("ORDERER_KAFKA_VERSION", "0.11.0.2"),
        ("ORDERER_GENERAL_LOCALMSPDIR", "/m/msp"),
        ("ORDERER_GENERAL_LOCALMSPID", "Org9MSP"),
        ("ORDERER_FILELEDGER_LOCATION", "/data/ledger"),
        ("ORDERER_GENERAL_BOOTSTRAPFILE", "/b/genesis.block"),
        ("ORDERER_GENERAL_BOOTSTRAPMETHOD", "none"),
        ("ORDERER_KAFKA_TLS_ROOTCAS", "[pem1, pem2]"),
        // Empty values are ignored, as in Fabric.
        ("ORDERER_GENERAL_LOCALMSPDIR_UNUSED", ""),
        ("ORDERER_METRICS_PROVIDER", ""),
    ])
    .unwrap();
    let g = &c.general;
    assert_eq!(c.listen_addr(), "0.0.0.0:7777");
    assert_eq!(c.kafka.retry.short_interval, SECS(1));
    assert_eq!(c.kafka.retry.long_total, SECS(5400));
    assert_eq!(c.kafka.retry.network_timeouts.read_timeout, SECS(90));
    assert_eq!(
        c.channel_participation.max_request_body_size,
        10 * 1024 * 1024
    );
    assert_eq!(g.max_recv_msg_size, 98 * 1024 * 1024);
    assert_eq!(g.max_send_msg_size, 512 * 1024);
    assert_eq!(
        g.tls.root_cas,
        vec![PathBuf::from("a.pem"), PathBuf::from("b.pem")]
    );
    assert_eq!(g.tls.client_root_cas, vec![PathBuf::from("c.pem")]);
    assert!(g.tls.enabled);
    assert!(c.kafka.verbose);
    assert_eq!(c.kafka.topic.replication_factor, 2);
    assert_eq!(c.kafka.retry.metadata.retry_max, 16);
    assert_eq!(c.kafka.version.to_string(), "0.11.0.0");
    assert_eq!(g.local_msp_dir, PathBuf::from("/m/msp"));
    assert_eq!(g.local_msp_id, "Org9MSP");
    assert_eq!(c.file_ledger.location, PathBuf::from("/data/ledger"));
    assert_eq!(c.bootstrap(), Bootstrap::None);
    assert_eq!(
        c.kafka.tls.root_cas,
        vec!["pem1".to_string(), "pem2".to_string()]
    );
    assert_eq!(c.metrics.provider, "disabled");
}

#[test]
fn env_overrides_apply_to_keys_absent_from_yaml() {
    // Neither the key nor its section is in the YAML.
    let c = load_yaml(
        "General:\n  ListenPort: 7050\n",
        &[
            ("ORDERER_KAFKA_RETRY_SHORTINTERVAL", "2s"),
            ("ORDERER_ADMIN_LISTENADDRESS", "127.0.0.1:9999"),
            ("ORDERER_GENERAL_TLS_ENABLED", "false"),
        ],
    )
    .unwrap();
    assert_eq!(c.kafka.retry.short_interval, SECS(2));
    assert_eq!(c.admin.listen_address, "127.0.0.1:9999");
    // Key spelled in lower case in the YAML: the variable still matches.
    let c = load_yaml(
        "general:\n  listenport: 7050\n",
        &[("ORDERER_GENERAL_LISTENPORT", "8050")],
    )
    .unwrap();
    assert_eq!(c.general.listen_port, 8050);
    // Relative paths from the environment resolve like those in the file.
    let c = load_from_map(
        Some("General: {}\n"),
        Some(Path::new("/cfg")),
        &env(&[("ORDERER_GENERAL_LOCALMSPDIR", "msp2")]),
    )
    .unwrap();
    assert_eq!(c.general.local_msp_dir, PathBuf::from("/cfg/msp2"));
}

#[test]
fn env_overrides_in_free_form_consensus() {
    let c = load_yaml(
        "Consensus:\n  WALDir: /a\n  Nested:\n    X: 1\n",
        &[
            ("ORDERER_CONSENSUS_WALDIR", "/b"),
            ("ORDERER_CONSENSUS_NESTED_X", "[2, 3]"),
            ("ORDERER_CONSENSUS_NEW", "ignored"),
        ],
    )
    .unwrap();
    assert_eq!(c.consensus["WALDir"], "/b");
    assert_eq!(c.consensus["Nested"]["X"], "[2, 3]");
    assert!(c.consensus.get("NEW").is_none() && c.consensus.get("New").is_none());
    // Anything goes under Consensus.
    assert!(load_yaml("Consensus: [1, {a: b}]\n", &[]).is_ok());
}

#[test]
fn keys_are_case_insensitive() {
    let c = load_yaml(
        "GENERAL:\n  listenPORT: 7060\n  tls:\n    ENABLED: false\n  localmspid: X\nkafka:\n  retry:\n    shortinterval: 4s\n",
        &[],
    )
    .unwrap();
    assert_eq!(c.general.listen_port, 7060);
    assert_eq!(c.general.local_msp_id, "X");
    assert_eq!(c.kafka.retry.short_interval, SECS(4));
    let e = err_of(load_yaml(
        "General:\n  ListenPort: 1\n  listenport: 2\n",
        &[],
    ));
    assert!(e.starts_with("General.listenport: duplicate"), "{e}");
}

#[test]
fn unknown_keys_are_rejected_with_their_path() {
    let e = err_of(load_yaml("General:\n  ListenPrt: 7050\n", &[]));
    assert_eq!(e, "General.ListenPrt: unknown configuration key");
    let e = err_of(load_yaml("Kafka:\n  Retry:\n    ShortIntervall: 1s\n", &[]));
    assert_eq!(e, "Kafka.Retry.ShortIntervall: unknown configuration key");
    let e = err_of(load_yaml("Orderer:\n  X: 1\n", &[]));
    assert_eq!(e, "Orderer: unknown configuration key");
    match load_yaml("General:\n  Foo: 1\n  Bar: 2\n", &[]) {
        Err(e @ ConfigError::Multiple(_)) => {
            assert_eq!(e.keys(), vec!["General.Bar", "General.Foo"]);
        }
        other => panic!("unexpected {other:?}"),
    }
    // Like Fabric, unknown BCCSP keys are ignored (with a warning).
    let c = load_yaml("General:\n  BCCSP:\n    SW:\n      Whatever: 1\n", &[]).unwrap();
    assert!(c
        .warnings
        .iter()
        .any(|w| w.contains("General.BCCSP.SW.Whatever")));
}

#[test]
fn pkcs11_settings_from_yaml_and_environment() {
    let ski = "AB".repeat(32);
    let yaml = format!(
        "General:\n  BCCSP:\n    Default: SW\n    PKCS11:\n      Library: /usr/lib/x.so\n      Label: ForFabric\n      Pin: '98765432'\n      Hash: SHA2\n      Security: 256\n      SoftwareVerify: true\n      Immutable: true\n      AltID: alt\n      KeyIds:\n        - SKI: {ski}\n          ID: orderer-key\n"
    );
    // Fabric's ORDERER_GENERAL_BCCSP_* overrides switch the provider on.
    let c = load_yaml(
        &yaml,
        &[
            ("ORDERER_GENERAL_BCCSP_DEFAULT", "PKCS11"),
            ("ORDERER_GENERAL_BCCSP_PKCS11_LABEL", "FromEnv"),
            ("ORDERER_GENERAL_BCCSP_PKCS11_PIN", "1234"),
        ],
    )
    .unwrap();
    let p = &c.general.bccsp.pkcs11;
    assert_eq!(c.general.bccsp.default, "PKCS11");
    assert_eq!(p.library, "/usr/lib/x.so");
    assert_eq!((p.label.as_str(), p.pin.as_str()), ("FromEnv", "1234"));
    assert!(p.software_verify && p.immutable);
    assert_eq!(p.alt_id, "alt");
    assert_eq!(
        p.key_id_mappings().unwrap(),
        vec![KeyIdMapping {
            ski: ski.to_ascii_lowercase(),
            id: "orderer-key".into()
        }]
    );
    assert!(!format!("{:?}", c.redacted()).contains("1234"));
}

#[test]
fn invalid_values_are_rejected_with_their_key() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        ("General:\n  ListenPort: 70000\n", &[], "General.ListenPort: 70000 is not a valid port"),
        ("", &[("ORDERER_GENERAL_LISTENPORT", "http")], "General.ListenPort: \"http\" is not a valid port"),
        ("General:\n  BootstrapMethod: foo\n", &[], "General.BootstrapMethod: unknown value \"foo\" (expected file or none)"),
        ("General:\n  GenesisMethod: foo\n", &[], "General.GenesisMethod: unknown value \"foo\" (expected provisional or file)"),
        ("Kafka:\n  Retry:\n    ShortInterval: -5s\n", &[], "Kafka.Retry.ShortInterval: must not be negative (got \"-5s\")"),
        ("", &[("ORDERER_KAFKA_RETRY_SHORTINTERVAL", "5 seconds")], "Kafka.Retry.ShortInterval: unknown unit"),
        ("", &[("ORDERER_KAFKA_RETRY_LONGTOTAL", "10")], "Kafka.Retry.LongTotal: missing unit in duration \"10\""),
        ("", &[("ORDERER_GENERAL_TLS_ENABLED", "yes please")], "General.TLS.Enabled: \"yes please\" is not a valid boolean"),
        ("General:\n  TLS:\n    Enabled: true\n    PrivateKey: k\n", &[], "General.TLS.Certificate: must be set when General.TLS.Enabled is true"),
        ("", &[("ORDERER_KAFKA_TLS_ENABLED", "true"), ("ORDERER_KAFKA_TLS_CERTIFICATE", "c"), ("ORDERER_KAFKA_TLS_PRIVATEKEY", "k")], "Kafka.TLS.RootCAs: must be set when Kafka.TLS.Enabled is true"),
        ("Kafka:\n  SASLPlain:\n    Enabled: true\n    User: u\n", &[], "Kafka.SASLPlain.Password: must be set"),
        ("", &[("ORDERER_CHANNELPARTICIPATION_MAXREQUESTBODYSIZE", "4 GB")], "ChannelParticipation.MaxRequestBodySize: value \"4 GB\" exceeds the maximum 4294967295"),
        ("General:\n  MaxRecvMsgSize: 4294967296\n", &[], "General.MaxRecvMsgSize: 4294967296 exceeds the maximum 2147483647"),
        ("", &[("ORDERER_GENERAL_MAXSENDMSGSIZE", "-1")], "General.MaxSendMsgSize: \"-1\" is negative"),
        ("Kafka:\n  Topic:\n    ReplicationFactor: 40000\n", &[], "Kafka.Topic.ReplicationFactor: 40000 is out of range"),
        ("Kafka:\n  Retry:\n    Metadata:\n      RetryMax: -1\n", &[], "Kafka.Retry.Metadata.RetryMax: must not be negative"),
        ("Kafka:\n  Version: 0.8.1\n", &[], "Kafka.Version: unsupported Kafka version \"0.8.1\""),
        ("Admin:\n  TLS:\n    Enabled: true\n    Certificate: c\n    PrivateKey: k\n    ClientAuthRequired: false\n", &[], "Admin.TLS.ClientAuthRequired: must be true"),
        ("Metrics:\n  Provider: graphite\n", &[], "Metrics.Provider: unknown value \"graphite\""),
        ("Metrics:\n  Provider: statsd\n  Statsd:\n    Network: udp\n    Address: nohost\n    WriteInterval: 1s\n", &[], "Metrics.Statsd.Address: \"nohost\" is not a valid address"),
        ("Operations:\n  ListenAddress: localhost:99999\n", &[], "Operations.ListenAddress: \"localhost:99999\" is not a valid address"),
        ("General:\n  ListenAddress: 0.0.0.0:7050\n", &[], "General.ListenAddress: \"0.0.0.0:7050\" must be a host name"),
        ("General:\n  LedgerType: sql\n", &[], "General.LedgerType: unknown value \"sql\""),
        ("General:\n  BCCSP:\n    Default: HSM\n", &[], "General.BCCSP.Default: unknown value \"HSM\""),
        ("", &[("ORDERER_GENERAL_BCCSP_DEFAULT", "PKCS11"), ("ORDERER_GENERAL_BCCSP_PKCS11_LABEL", "L"), ("ORDERER_GENERAL_BCCSP_PKCS11_PIN", "1"), ("ORDERER_GENERAL_BCCSP_PKCS11_HASH", "SHA2"), ("ORDERER_GENERAL_BCCSP_PKCS11_SECURITY", "256")], "General.BCCSP.PKCS11.Library: must be set when BCCSP.Default is PKCS11"),
        ("General:\n  BCCSP:\n    Default: PKCS11\n    PKCS11:\n      Library: /l.so\n      Label: L\n      Pin: '1'\n      Hash: SHA2\n      Security: 521\n", &[], "General.BCCSP.PKCS11.Security: unsupported value 521"),
        ("General:\n  BCCSP:\n    Default: PKCS11\n    PKCS11:\n      Library: /l.so\n      Label: L\n      Pin: '1'\n      Hash: MD5\n      Security: 256\n", &[], "General.BCCSP.PKCS11.Hash: unknown value \"MD5\""),
        ("General:\n  BCCSP:\n    Default: PKCS11\n    PKCS11:\n      Library: /l.so\n      Label: L\n      Pin: '1'\n      Hash: SHA2\n      Security: 256\n      KeyIds:\n        - SKI: abc\n          ID: k\n", &[], "General.BCCSP.PKCS11.KeyIds: entry 0: SKI \"abc\" is not 64 hex digits"),
        ("General:\n  TLS: true\n", &[], "General.TLS: expected a mapping, got a boolean"),
        ("General:\n  LocalMSPID: [a, b]\n", &[], "General.LocalMSPID: expected a string, got a list"),
        ("", &[("ORDERER_GENERAL_LOCALMSPID", "[a]")], "General.LocalMSPID: expected a single value"),
        ("", &[("ORDERER_KAFKA", "x")], "Kafka: is a section; environment variable ORDERER_KAFKA cannot replace it"),
        ("General: [1]\n", &[], "General: expected a mapping, got a list"),
    ];
    for (yaml, vars, want) in cases {
        let e = err_of(load_yaml(yaml, vars));
        assert!(
            e.starts_with(want),
            "yaml {yaml:?} env {vars:?}:\n got  {e}\n want {want}"
        );
    }
    // Malformed YAML.
    assert!(matches!(
        load_yaml("General: [\n", &[]),
        Err(ConfigError::Yaml { .. })
    ));
}

#[test]
fn all_errors_are_reported_at_once() {
    let e = load_yaml(
        "General:\n  ListenPort: 70000\nKafka:\n  Retry:\n    ShortTotal: forever\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(
        e.keys(),
        vec!["General.ListenPort", "Kafka.Retry.ShortTotal"]
    );
    assert!(e.to_string().starts_with("2 configuration errors: "), "{e}");
}

#[test]
fn yaml_anchors_and_merge_keys() {
    let yaml = r#"
x-timeouts: &timeouts
  DialTimeout: 3s
  ReadTimeout: 4s
  WriteTimeout: 5s
x-tls: &tls
  Enabled: false
  ClientAuthRequired: false
  ClientRootCAs: []
Kafka:
  Retry:
    NetworkTimeouts:
      <<: *timeouts
      WriteTimeout: 6s
Operations:
  ListenAddress: 127.0.0.1:8443
  TLS: *tls
"#;
    // Top-level helper keys are unknown to the orderer, like in Fabric.
    let e = err_of(load_yaml(yaml, &[]));
    assert!(e.contains("x-timeouts: unknown configuration key"), "{e}");

    let yaml = r#"
General:
  TLS: &tls
    Enabled: false
    PrivateKey: a.key
    Certificate: a.crt
  Keepalive: &ka
    ServerMinInterval: 1s
    ServerInterval: 2s
    ServerTimeout: 3s
Operations:
  ListenAddress: 127.0.0.1:8443
  TLS:
    <<: *tls
    Certificate: ops.crt
Kafka:
  Retry:
    NetworkTimeouts:
      <<: [{DialTimeout: 3s, ReadTimeout: 4s}, {WriteTimeout: 5s}]
      WriteTimeout: 6s
"#;
    let c = load_yaml(yaml, &[]).unwrap();
    assert_eq!(c.operations.tls.private_key, PathBuf::from("a.key"));
    assert_eq!(c.operations.tls.certificate, PathBuf::from("ops.crt"));
    let t = &c.kafka.retry.network_timeouts;
    assert_eq!(
        (t.dial_timeout, t.read_timeout, t.write_timeout),
        (SECS(3), SECS(4), SECS(6))
    );
}

#[test]
fn kafka_tls_pem_from_files_and_env_file_suffix() {
    let dir = tempfile::tempdir().unwrap();
    let cert = "-----BEGIN CERTIFICATE-----\nQUJDRA==\n-----END CERTIFICATE-----\n";
    let key = "-----BEGIN EC PRIVATE KEY-----\nS0VZ\n-----END EC PRIVATE KEY-----\n";
    let cert_path = dir.path().join("client.pem");
    let key_path = dir.path().join("client.key");
    let cas_path = dir.path().join("cas.pem");
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    std::fs::write(&cas_path, format!("{cert}{key}{cert}")).unwrap();
    let yaml = format!(
        "Kafka:\n  TLS:\n    Enabled: true\n    Certificate:\n      File: {}\n    RootCAs:\n      File: {}\n    PrivateKey:\n",
        cert_path.display(),
        cas_path.display()
    );
    let c = load_yaml(
        &yaml,
        &[(
            "ORDERER_KAFKA_TLS_PRIVATEKEY_FILE",
            key_path.to_str().unwrap(),
        )],
    )
    .unwrap();
    assert_eq!(c.kafka.tls.certificate, cert);
    assert_eq!(c.kafka.tls.private_key, key);
    assert_eq!(
        c.kafka.tls.root_cas,
        vec![cert.to_string(), cert.to_string()]
    );
    // Inline PEM works as well.
    let c = load_yaml(
        "Kafka:\n  TLS:\n    Enabled: true\n    Certificate: |\n      -----BEGIN CERTIFICATE-----\n      QUJDRA==\n      -----END CERTIFICATE-----\n    PrivateKey: k\n    RootCAs: [r]\n",
        &[],
    )
    .unwrap();
    assert_eq!(c.kafka.tls.certificate, cert);
    // A missing file names the key.
    let e = err_of(load_yaml(
        "Kafka:\n  TLS:\n    Certificate:\n      File: /nonexistent/x.pem\n",
        &[],
    ));
    assert!(
        e.starts_with("Kafka.TLS.Certificate: cannot read file"),
        "{e}"
    );
}

#[test]
fn bare_number_durations_are_nanoseconds_with_a_warning() {
    let c = load_yaml("General:\n  Keepalive:\n    ServerTimeout: 20\n", &[]).unwrap();
    assert_eq!(c.general.keepalive.server_timeout, Duration::from_nanos(20));
    assert!(c
        .warnings
        .iter()
        .any(|w| w.contains("General.Keepalive.ServerTimeout")));
}

#[test]
fn config_file_discovery_and_relative_paths() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        find_config_file(Some(dir.path())).filter(|p| p.starts_with(dir.path())),
        None
    );
    let yml = dir.path().join("orderer.yml");
    std::fs::write(&yml, "General:\n  LocalMSPDir: msp\n").unwrap();
    assert_eq!(find_config_file(Some(dir.path())), Some(yml.clone()));
    let path = dir.path().join("orderer.yaml");
    std::fs::write(
        &path,
        "General:\n  LocalMSPDir: msp\n  BootstrapFile: sys.block\n  TLS:\n    PrivateKey: /abs/k\n    Certificate: tls/c\nFileLedger:\n  Location: data\nOperations:\n  TLS:\n    Certificate: ops/c\n",
    )
    .unwrap();
    // .yaml is preferred over .yml.
    assert_eq!(find_config_file(Some(dir.path())), Some(path.clone()));
    let c = load_from_file(&path, &|_: &str| None).unwrap();
    assert_eq!(c.source, ConfigSource::File(path.clone()));
    assert_eq!(c.general.local_msp_dir, dir.path().join("msp"));
    assert_eq!(c.bootstrap(), Bootstrap::File(dir.path().join("sys.block")));
    assert_eq!(c.general.tls.private_key, PathBuf::from("/abs/k"));
    assert_eq!(c.general.tls.certificate, dir.path().join("tls/c"));
    assert_eq!(c.file_ledger.location, dir.path().join("data"));
    assert_eq!(c.operations.tls.certificate, PathBuf::from("ops/c"));
    // Unreadable file.
    assert!(matches!(
        load_from_file(&dir.path().join("missing.yaml"), &|_: &str| None),
        Err(ConfigError::Io { .. })
    ));
}

#[test]
fn effective_config_round_trips_through_yaml() {
    let c = load_from_map(Some(V25_YAML), Some(Path::new("/etc/orderer")), &env(&[])).unwrap();
    let text = c.to_yaml_string();
    let again = load_yaml(&text, &[]).unwrap();
    assert_eq!(again.general, c.general);
    assert_eq!(again.kafka, c.kafka);
    assert_eq!(again.channel_participation, c.channel_participation);
    let b = Config::builtin();
    let again = load_yaml(&b.to_yaml_string(), &[]).unwrap();
    assert_eq!(again.general, b.general);
    assert_eq!(again.kafka, b.kafka);
}

#[test]
fn validate_catches_hand_built_mistakes() {
    let mut c = Config::builtin();
    assert!(c.validate().is_ok());
    c.kafka.retry.short_interval = Duration::ZERO;
    let e = c.validate().unwrap_err().to_string();
    assert_eq!(e, "Kafka.Retry.ShortInterval: must be > 0");
}

#[test]
fn env_var_names_follow_viper_rules() {
    assert_eq!(
        env_var_name("General.ListenPort"),
        "ORDERER_GENERAL_LISTENPORT"
    );
    assert_eq!(
        env_var_name("Kafka.Retry.NetworkTimeouts.DialTimeout"),
        "ORDERER_KAFKA_RETRY_NETWORKTIMEOUTS_DIALTIMEOUT"
    );
}

#[test]
fn redacted_hides_secrets() {
    let c = load_env(&[
        ("ORDERER_KAFKA_SASLPLAIN_ENABLED", "true"),
        ("ORDERER_KAFKA_SASLPLAIN_USER", "u"),
        ("ORDERER_KAFKA_SASLPLAIN_PASSWORD", "s3cret"),
    ])
    .unwrap();
    let text = c.redacted().to_yaml_string();
    assert!(
        !text.contains("s3cret") && text.contains("<redacted>"),
        "{text}"
    );
    assert_eq!(c.kafka.sasl_plain.password, "s3cret");
}

#[test]
fn general_limits_and_connection_timeout() {
    let c = load_yaml(
        "General:\n  ConnectionTimeout: 2s\n  Limits:\n    MaxConnections: 100\n    MaxConcurrentStreams: 10\n",
        &[("ORDERER_GENERAL_LIMITS_MAXSTREAMS", "500")],
    )
    .unwrap();
    assert_eq!(c.general.connection_timeout, SECS(2));
    assert_eq!(c.general.limits.max_connections, 100);
    assert_eq!(c.general.limits.max_concurrent_streams, 10);
    assert_eq!(c.general.limits.max_streams, 500);
    // Unset: zero, the orderer's defaults.
    let c = load_yaml("", &[]).unwrap();
    assert_eq!(c.general.limits.max_streams, 0);
    assert!(load_yaml("General:\n  Limits:\n    MaxStreamz: 1\n", &[]).is_err());
    let c = load_yaml(
        "General:\n  Limits:\n    MaxStreamBytes: 1 MB\n    MaxConnectionBytes: 4194304\n",
        &[("ORDERER_GENERAL_LIMITS_MAXRECEIVEDBYTES", "32 MB")],
    )
    .unwrap();
    assert_eq!(c.general.limits.max_stream_bytes, 1 << 20);
    assert_eq!(c.general.limits.max_connection_bytes, 4 << 20);
    assert_eq!(c.general.limits.max_received_bytes, 32 << 20);
    let c = load_yaml(
        "General:\n  Limits:\n    MaxDeliverBufferedBytes: 64 MB\n",
        &[],
    )
    .unwrap();
    assert_eq!(c.general.limits.max_deliver_buffered_bytes, 64 << 20);
    assert!(load_yaml("General:\n  Limits:\n    MaxReceivedBytes: 5 GB\n", &[]).is_err());
    assert!(load_yaml("General:\n  Limits:\n    MaxStreams: -1\n", &[]).is_err());
}

#[test]
fn fabric_v1_1_log_keys_are_accepted_with_a_warning() {
    // The Kafka guide's "General.LogLevel: DEBUG, Kafka.Verbose: true".
    let c = load_yaml(
        "General:\n  LogLevel: DEBUG\n  LogFormat: json\nKafka:\n  Verbose: true\n",
        &[],
    )
    .unwrap();
    assert_eq!(c.general.log_level, "DEBUG");
    assert_eq!(c.general.log_format, "json");
    assert!(c.kafka.verbose);
    for key in ["General.LogLevel", "General.LogFormat"] {
        assert!(
            c.warnings
                .iter()
                .any(|w| w.starts_with(key) && w.contains("deprecated")),
            "{key}: {:?}",
            c.warnings
        );
    }
    let c = load_yaml("", &[("ORDERER_GENERAL_LOGLEVEL", "warning")]).unwrap();
    assert_eq!(c.general.log_level, "warning");
}

#[test]
fn sasl_scram_is_checked_once_at_load() {
    let c = load_yaml(
        "Kafka:\n  SASLSCRAM:\n    Enabled: true\n    User: u\n    Password: p\n",
        &[],
    )
    .unwrap();
    assert!(c.kafka.sasl_scram.enabled);
    assert_eq!(
        c.kafka.sasl_scram.mechanism, "",
        "default chosen by the orderer: SCRAM-SHA-512"
    );
    assert_eq!(c.redacted().kafka.sasl_scram.password, "<redacted>");
    for (yaml, want) in [
        (
            "Kafka:\n  SASLSCRAM:\n    Enabled: true\n    Mechanism: SCRAM-SHA-1\n    User: u\n    Password: p\n",
            "Kafka.SASLSCRAM.Mechanism",
        ),
        ("Kafka:\n  SASLSCRAM:\n    Enabled: true\n    User: u\n", "Kafka.SASLSCRAM.Password: must be set"),
        (
            "Kafka:\n  SASLPlain:\n    Enabled: true\n    User: u\n    Password: p\n  SASLSCRAM:\n    Enabled: true\n    User: u\n    Password: p\n",
            "cannot both be enabled",
        ),
    ] {
        let e = err_of(load_yaml(yaml, &[]));
        assert!(e.contains(want), "{yaml}: {e}");
    }
    let c = load_yaml(
        "",
        &[
            ("ORDERER_KAFKA_SASLSCRAM_ENABLED", "true"),
            ("ORDERER_KAFKA_SASLSCRAM_MECHANISM", "SCRAM-SHA-256"),
            ("ORDERER_KAFKA_SASLSCRAM_USER", "u"),
            ("ORDERER_KAFKA_SASLSCRAM_PASSWORD", "p"),
        ],
    )
    .unwrap();
    assert_eq!(c.kafka.sasl_scram.mechanism, "SCRAM-SHA-256");
}

#[test]
fn kafka_catch_up_sources_are_addresses_from_yaml_or_environment() {
    let c = load_yaml("", &[]).unwrap();
    assert!(c.kafka.catch_up.sources.is_empty(), "none by default");
    let c = load_yaml(
        "Kafka:\n  CatchUp:\n    Sources:\n      - osn1.example.com:7050\n      - 10.0.0.2:7050\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        c.kafka.catch_up.sources,
        ["osn1.example.com:7050", "10.0.0.2:7050"]
    );
    let c = load_yaml(
        "Kafka:\n  CatchUp:\n    Sources: [a:1]\n",
        &[("ORDERER_KAFKA_CATCHUP_SOURCES", "[b:2, c:3]")],
    )
    .unwrap();
    assert_eq!(c.kafka.catch_up.sources, ["b:2", "c:3"]);
    assert_eq!(c.kafka.catch_up.pull_threshold, 0, "the built-in default");
    let c = load_yaml(
        "Kafka:\n  CatchUp:\n    PullThreshold: 5000\n",
        &[("ORDERER_KAFKA_CATCHUP_PULLTHRESHOLD", "20000")],
    )
    .unwrap();
    assert_eq!(c.kafka.catch_up.pull_threshold, 20000);
    let e = err_of(load_yaml(
        "Kafka:\n  CatchUp:\n    PullThreshold: -1\n",
        &[],
    ));
    assert!(e.contains("Kafka.CatchUp.PullThreshold"), "{e}");
    let e = err_of(load_yaml(
        "Kafka:\n  CatchUp:\n    Sources: [osn1.example.com]\n",
        &[],
    ));
    assert!(
        e.contains("Kafka.CatchUp.Sources") && e.contains("host:port"),
        "{e}"
    );
}
