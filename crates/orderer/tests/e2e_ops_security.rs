//! End-to-end, on the real binary and the real Kafka cluster of
//! `scripts/test.sh` (`KAFKA_BROKERS`, plus `KAFKA_SSL_BROKERS`,
//! `KAFKA_SASL_SSL_BROKERS` and `KAFKA_TLS_DIR` for its SSL and SASL_SSL
//! listeners, see `scripts/kafka/kafka.sh`):
//!
//! * the orderer orders through Kafka over TLS (client certificate) and over
//!   SASL_SSL (PLAIN); a wrong password or an untrusted CA gives
//!   SERVICE_UNAVAILABLE and a clear log, not a crash;
//! * `orderer check-kafka` passes on the guide's settings and names
//!   `unclean-leader-election` when a channel topic has it on; the orderer
//!   warns at start-up;
//! * `/healthz` turns 503 when the brokers are stopped and 200 when they
//!   return;
//! * `/metrics`, read by a Prometheus text parser (`prometheus-parse`): the
//!   Fabric series move under load on a Kafka channel, and every metric the
//!   Grafana dashboard uses is exported;
//! * `Operations.TLS` (and mutual TLS), with certificate reload.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fabric_common::envelope::{seek_newest, seek_oldest};
use fabric_protos::common::Status;
use fabric_protos::orderer::SeekInfo;
use support::kafka::{brokers, kafka_sh, unique_channel, wait_ready};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

/// Tests that stop the brokers hold this exclusively; the others share it.
static CLUSTER: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

// ------------------------------------------------------------------ Kafka TLS environment --

struct KafkaTls {
    dir: PathBuf,
    ssl: Vec<String>,
    sasl_ssl: Vec<String>,
}

fn env_list(name: &str) -> Vec<String> {
    let v = std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: scripts/test.sh exports it from `scripts/kafka/kafka.sh brokers --ssl|--sasl-ssl` \
             and `kafka.sh tls-dir` (KAFKA_SSL_BROKERS, KAFKA_SASL_SSL_BROKERS, KAFKA_TLS_DIR)"
        )
    });
    v.split(',').map(str::to_string).collect()
}

/// The cluster's TLS listeners and material; panics (never skips) without them.
fn kafka_tls() -> KafkaTls {
    let dir = PathBuf::from(env_list("KAFKA_TLS_DIR").remove(0));
    assert!(
        dir.join("ca.pem").is_file(),
        "{}/ca.pem missing",
        dir.display()
    );
    KafkaTls {
        ssl: env_list("KAFKA_SSL_BROKERS"),
        sasl_ssl: env_list("KAFKA_SASL_SSL_BROKERS"),
        dir,
    }
}

impl KafkaTls {
    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap()
    }
}

fn kafka_net_on(channel: &str, brokers: Vec<String>) -> Net {
    net_with(channel, |dev| {
        dev.orderer_type = "kafka".into();
        dev.kafka_brokers = brokers;
        dev.batch_timeout = fabric_configtx::units::GoDuration::from_millis(200);
        dev.batch_size.max_message_count = 10;
    })
}

/// Short Kafka retries so that a misconfigured chain gives up quickly.
const SHORT_RETRY: &[(&str, &str)] = &[
    ("ORDERER_KAFKA_RETRY_SHORTINTERVAL", "1s"),
    ("ORDERER_KAFKA_RETRY_SHORTTOTAL", "20s"),
    ("ORDERER_KAFKA_RETRY_LONGINTERVAL", "2s"),
    ("ORDERER_KAFKA_RETRY_LONGTOTAL", "10s"),
];

fn start_node(net: &Net, env: &[(String, String)]) -> (Node, tempfile::TempDir) {
    let ledger = tempfile::tempdir().unwrap();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let node = Node::start_env(
        net,
        ledger.path(),
        free_port(),
        "SampleOrg",
        true,
        &env,
        true,
    );
    (node, ledger)
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `Kafka.TLS` with the cluster's client certificate and `root_ca`.
fn tls_env(t: &KafkaTls, root_ca: &str) -> Vec<(String, String)> {
    owned(&[
        ("ORDERER_KAFKA_TLS_ENABLED", "true"),
        ("ORDERER_KAFKA_TLS_CERTIFICATE_FILE", &t.file("client.pem")),
        ("ORDERER_KAFKA_TLS_PRIVATEKEY_FILE", &t.file("client.key")),
        ("ORDERER_KAFKA_TLS_ROOTCAS_FILE", &t.file(root_ca)),
    ])
}

fn sasl_env(user: &str, password: &str) -> Vec<(String, String)> {
    owned(&[
        ("ORDERER_KAFKA_SASLPLAIN_ENABLED", "true"),
        ("ORDERER_KAFKA_SASLPLAIN_USER", user),
        ("ORDERER_KAFKA_SASLPLAIN_PASSWORD", password),
    ])
}

fn scram_env(mechanism: &str, user: &str, password: &str) -> Vec<(String, String)> {
    owned(&[
        ("ORDERER_KAFKA_SASLSCRAM_ENABLED", "true"),
        ("ORDERER_KAFKA_SASLSCRAM_MECHANISM", mechanism),
        ("ORDERER_KAFKA_SASLSCRAM_USER", user),
        ("ORDERER_KAFKA_SASLSCRAM_PASSWORD", password),
    ])
}

fn all() -> SeekInfo {
    SeekInfo {
        start: Some(seek_oldest()),
        stop: Some(seek_newest()),
        ..Default::default()
    }
}

/// Broadcasts `n` envelopes on `channel` (all must be SUCCESS) and reads
/// the chain back: every payload once, in order.
async fn order_and_read(node: &Node, net: &Net, channel: &str, n: usize, tag: &str) {
    let mut c = node.client().await;
    let payloads: Vec<Vec<u8>> = (0..n).map(|i| format!("{tag}-{i}").into_bytes()).collect();
    let envs = payloads
        .iter()
        .map(|p| tx(&net.client, channel, p.clone()))
        .collect();
    let resp = broadcast(&mut c, envs).await;
    assert_eq!(resp.len(), n);
    for r in &resp {
        assert_eq!(r.status, Status::Success as i32, "{r:?}");
    }
    // Blocks are cut within the batch timeout; read until all are there.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (blocks, status) = deliver(&mut c, &net.client, channel, all()).await;
        assert_eq!(status, Some(Status::Success));
        let prefix = format!("{tag}-");
        let got: Vec<Vec<u8>> = blocks
            .iter()
            .skip(1)
            .flat_map(block_payloads)
            .filter(|p| p.starts_with(prefix.as_bytes()))
            .collect();
        if got.len() >= n {
            assert_eq!(got, payloads, "payloads in order, once each");
            verify_chain(&blocks, net.org.ca_cert_pem());
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} envelopes in blocks",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn broadcast_status(node: &Node, net: &Net, channel: &str) -> i32 {
    let mut c = node.client().await;
    let r = broadcast(&mut c, vec![tx(&net.client, channel, b"probe".to_vec())]).await;
    r.first().map_or(-1, |r| r.status)
}

fn log_of(node: &Node) -> String {
    std::fs::read_to_string(&node.log).unwrap_or_default()
}

/// Waits until the node's log contains every one of `needles`.
fn wait_log(node: &Node, needles: &[&str], within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let log = log_of(node);
        if needles.iter().all(|n| log.contains(n)) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "log lacks one of {needles:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------- Kafka over TLS and SASL --

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orderer_orders_through_kafka_over_tls_and_over_sasl_ssl() {
    let _shared = CLUSTER.read().await;
    let t = kafka_tls();
    // TLS with a client certificate (the SSL listener requires one).
    let ch_tls = unique_channel("tls");
    let net_tls = kafka_net_on(&ch_tls, t.ssl.clone());
    let (node_tls, _l1) = start_node(&net_tls, &tls_env(&t, "ca.pem"));
    // SASL_SSL: TLS plus SASL/PLAIN user and password.
    let ch_sasl = unique_channel("sasl");
    let net_sasl = kafka_net_on(&ch_sasl, t.sasl_ssl.clone());
    let mut env = tls_env(&t, "ca.pem");
    env.extend(sasl_env(&t.read("sasl.user"), &t.read("sasl.password")));
    let (node_sasl, _l2) = start_node(&net_sasl, &env);

    wait_ready(&node_tls, &net_tls, &ch_tls, Duration::from_secs(60)).await;
    wait_ready(&node_sasl, &net_sasl, &ch_sasl, Duration::from_secs(60)).await;
    order_and_read(&node_tls, &net_tls, &ch_tls, 25, "tls").await;
    order_and_read(&node_sasl, &net_sasl, &ch_sasl, 25, "sasl").await;
    for (node, what) in [(&node_tls, "SSL"), (&node_sasl, "SASL_SSL")] {
        let log = log_of(node);
        assert!(
            log.contains("Start phase completed successfully"),
            "{what}: {log}"
        );
    }

    // The cluster check works over SASL_SSL too (same Kafka.* settings as `start`).
    let out = check_kafka(&net_sasl, &env);
    assert_eq!(out.code, 0, "check-kafka over SASL_SSL:\n{}", out.text);
    assert!(out.text.contains("SASL PLAIN"), "{}", out.text);
    assert!(
        out.text.contains("check-kafka: all 6 rules pass"),
        "{}",
        out.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orderer_orders_over_sasl_scram_and_a_wrong_scram_password_is_refused() {
    let _shared = CLUSTER.read().await;
    let t = kafka_tls();
    // A SCRAM user made by the test (kafka.sh sets both mechanisms' credentials).
    let user = format!("scram-{}", std::process::id());
    support::kafka::kafka_sh(&["scram-user", &user, "scram-secret"]);
    let mut nodes = Vec::new();
    for mech in ["SCRAM-SHA-512", "SCRAM-SHA-256"] {
        let ch = unique_channel(&mech.to_ascii_lowercase());
        let net = kafka_net_on(&ch, t.sasl_ssl.clone());
        let mut env = tls_env(&t, "ca.pem");
        env.extend(scram_env(mech, &user, "scram-secret"));
        let (node, ledger) = start_node(&net, &env);
        nodes.push((mech, ch, net, node, ledger, env));
    }
    for (mech, ch, net, node, _, _) in &nodes {
        wait_ready(node, net, ch, Duration::from_secs(60)).await;
        order_and_read(node, net, ch, 25, mech).await;
    }
    let (_, _, net, _, _, env) = &nodes[0];
    let out = check_kafka(net, env);
    assert_eq!(out.code, 0, "check-kafka over SCRAM:\n{}", out.text);
    assert!(out.text.contains("SASL SCRAM-SHA-512"), "{}", out.text);

    // The wrong password: SERVICE_UNAVAILABLE and a log line that says why.
    let ch = unique_channel("badscram");
    let net = kafka_net_on(&ch, t.sasl_ssl.clone());
    let mut env = tls_env(&t, "ca.pem");
    env.extend(scram_env("SCRAM-SHA-512", &user, "not-the-password"));
    env.extend(owned(SHORT_RETRY));
    let (mut node, _l) = start_node(&net, &env);
    let log = wait_log(
        &node,
        &[
            "connect to the Kafka brokers",
            "Authentication failed",
            "Kafka.SASLSCRAM",
        ],
        Duration::from_secs(40),
    );
    assert_eq!(
        broadcast_status(&node, &net, &ch).await,
        Status::ServiceUnavailable as i32,
        "{log}"
    );
    assert!(node.alive(), "the orderer must not exit:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_sasl_password_or_untrusted_ca_gives_service_unavailable_and_a_clear_log() {
    let _shared = CLUSTER.read().await;
    let t = kafka_tls();
    let ch_pw = unique_channel("badpw");
    let net_pw = kafka_net_on(&ch_pw, t.sasl_ssl.clone());
    let mut env = tls_env(&t, "ca.pem");
    env.extend(sasl_env(&t.read("sasl.user"), "not-the-password"));
    env.extend(owned(SHORT_RETRY));
    env.extend(owned(&[(
        "ORDERER_OPERATIONS_LISTENADDRESS",
        &format!("127.0.0.1:{}", free_port()),
    )]));
    let (mut node_pw, _l1) = start_node(&net_pw, &env);

    let ch_ca = unique_channel("badca");
    let net_ca = kafka_net_on(&ch_ca, t.ssl.clone());
    let mut env = tls_env(&t, "other-ca.pem");
    env.extend(owned(SHORT_RETRY));
    let (mut node_ca, _l2) = start_node(&net_ca, &env);

    // The reasons, in the orderer's log (librdkafka's, through our logger).
    let log_pw = wait_log(
        &node_pw,
        &[
            "connect to the Kafka brokers",
            "Authentication failed",
            "check the user and password of Kafka.SASLPlain",
        ],
        Duration::from_secs(40),
    );
    let log_ca = wait_log(
        &node_ca,
        &[
            "connect to the Kafka brokers",
            "certificate verify failed",
            "check Kafka.TLS.RootCAs",
        ],
        Duration::from_secs(40),
    );
    for (node, net, ch, log) in [
        (&mut node_pw, &net_pw, &ch_pw, &log_pw),
        (&mut node_ca, &net_ca, &ch_ca, &log_ca),
    ] {
        assert_eq!(
            broadcast_status(node, net, ch).await,
            Status::ServiceUnavailable as i32,
            "{log}"
        );
        assert_eq!(
            support::kafka::deliver_status(node, net, ch).await,
            Some(Status::ServiceUnavailable)
        );
        assert!(node.alive(), "the orderer must not exit:\n{log}");
        let line = log
            .lines()
            .find(|l| l.contains("connect to the Kafka brokers"))
            .unwrap();
        eprintln!("{ch}: {line}");
        assert!(!log.contains("panicked"), "{log}");
    }
}

// -------------------------------------------------------------------------- check-kafka --

struct CheckOut {
    code: i32,
    text: String,
}

/// Runs `orderer check-kafka` with the net's genesis block and `env`.
fn check_kafka(net: &Net, env: &[(String, String)]) -> CheckOut {
    let cfg = net.dir.path().join("no-config");
    std::fs::create_dir_all(&cfg).unwrap();
    let ledger = net.dir.path().join("check-ledger");
    let out = Command::new(env!("CARGO_BIN_EXE_orderer"))
        .args(["check-kafka", "--timeout", "20"])
        .current_dir(&cfg)
        .env("FABRIC_CFG_PATH", &cfg)
        .env("ORDERER_GENERAL_BOOTSTRAPFILE", &net.genesis)
        .env("ORDERER_FILELEDGER_LOCATION", &ledger)
        .env("FABRIC_LOGGING_SPEC", "warn")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    CheckOut {
        code: out.status.code().unwrap_or(-1),
        text: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Creates `topic` (1 partition, RF 3) with the topic config `configs`.
async fn create_topic(topic: &str, configs: &[(&str, &str)]) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers().join(","))
        .create()
        .unwrap();
    let mut t = NewTopic::new(topic, 1, TopicReplication::Fixed(3));
    for (k, v) in configs {
        t = t.set(k, v);
    }
    let res = admin
        .create_topics(
            [&t],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .unwrap();
    for r in res {
        r.unwrap();
    }
    // Metadata reaches every broker shortly after the controller created the topic.
    let deadline = Instant::now() + Duration::from_secs(30);
    while support::kafka::leader_and_replicas_opt(topic).is_none() {
        assert!(
            Instant::now() < deadline,
            "topic {topic} not in the metadata"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_kafka_passes_on_the_guide_settings_and_names_unclean_leader_election() {
    let _shared = CLUSTER.read().await;
    // The cluster as scripts/kafka/kafka.sh starts it (the guide's settings),
    // with a channel topic created as the orderer creates it.
    let good = unique_channel("checkok");
    create_topic(&good, &[]).await;
    let net = kafka_net_on(&good, brokers());
    let out = check_kafka(&net, &[]);
    assert_eq!(out.code, 0, "{}", out.text);
    for rule in [
        "brokers",
        "replication-factor",
        "min-insync-replicas",
        "unclean-leader-election",
        "message-size",
        "retention",
    ] {
        assert!(
            out.text
                .lines()
                .any(|l| l.starts_with("PASS") && l.contains(rule)),
            "{rule} passes:\n{}",
            out.text
        );
    }
    assert!(
        out.text.contains("check-kafka: all 6 rules pass"),
        "{}",
        out.text
    );
    assert!(out.text.contains("4 broker(s)"), "{}", out.text);
    assert!(
        out.text.contains(&format!("topic {good}: 3 replica(s)")),
        "{}",
        out.text
    );

    // A channel topic with unclean leader election on: that rule fails, by name.
    let bad = unique_channel("checkunclean");
    create_topic(&bad, &[("unclean.leader.election.enable", "true")]).await;
    let net = kafka_net_on(&bad, brokers());
    let out = check_kafka(&net, &[]);
    assert_eq!(out.code, 1, "{}", out.text);
    assert!(
        out.text.contains("FAIL  unclean-leader-election"),
        "{}",
        out.text
    );
    assert!(
        out.text
            .contains(&format!("topic {bad}: unclean.leader.election.enable=true")),
        "{}",
        out.text
    );
    assert!(
        out.text.contains("fix: remove the topic override"),
        "{}",
        out.text
    );
    assert!(
        out.text
            .contains("1 of 6 rules fail: unclean-leader-election"),
        "{}",
        out.text
    );

    // The orderer warns about it at start-up, and still serves.
    let (node, _l) = start_node(&net, &[]);
    let log = wait_log(
        &node,
        &[
            "WARNING: the Kafka cluster does not follow Fabric's Kafka guide",
            "unclean-leader-election",
        ],
        Duration::from_secs(30),
    );
    assert!(!log.contains("retention off (log.retention.ms=-1"), "{log}");
    wait_ready(&node, &net, &bad, Duration::from_secs(60)).await;

    // Brokers that cannot be reached: exit status 2 and the reason.
    let net = kafka_net_on(
        &unique_channel("checknone"),
        vec![format!("127.0.0.1:{}", free_port())],
    );
    let out = check_kafka(&net, &[]);
    assert_eq!(out.code, 2, "{}", out.text);
    assert!(
        out.text.contains("cannot read the cluster metadata"),
        "{}",
        out.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_kafka_accepts_finite_retention_only_when_catch_up_is_configured() {
    let _shared = CLUSTER.read().await;
    // A channel topic pruned by time and by size (the brokers keep -1).
    let topic = unique_channel("checkretention");
    create_topic(
        &topic,
        &[
            ("retention.ms", "3600000"),
            ("retention.bytes", "1073741824"),
        ],
    )
    .await;
    let net = kafka_net_on(&topic, brokers());

    // No source but this OSN itself (the config's only address is
    // 127.0.0.1:7050, the default listen address): retention must be off.
    let out = check_kafka(&net, &[]);
    assert_eq!(out.code, 1, "{}", out.text);
    assert!(
        out.text
            .contains("catch-up: no source other than this OSN (127.0.0.1:7050)"),
        "{}",
        out.text
    );
    assert!(out.text.contains("FAIL  retention"), "{}", out.text);
    assert!(
        out.text.contains(&format!(
            "topic {topic}: retention.ms=3600000, retention.bytes=1073741824"
        )),
        "{}",
        out.text
    );
    assert!(out.text.contains("Kafka.CatchUp.Sources"), "{}", out.text);
    assert!(
        out.text.contains("1 of 6 rules fail: retention"),
        "{}",
        out.text
    );

    // With a catch-up source: accepted, and the report says the trade-off.
    let sources = vec![(
        "ORDERER_KAFKA_CATCHUP_SOURCES".to_string(),
        "[osn1.example.com:7050]".to_string(),
    )];
    let out = check_kafka(&net, &sources);
    assert_eq!(out.code, 0, "{}", out.text);
    assert!(
        out.text.contains("catch-up sources: osn1.example.com:7050"),
        "{}",
        out.text
    );
    assert!(
        out.text
            .lines()
            .any(|l| l.starts_with("PASS") && l.contains("retention")),
        "{}",
        out.text
    );
    assert!(
        out.text.contains(&format!("note (topic {topic})")),
        "{}",
        out.text
    );
    assert!(
        out.text
            .contains("must pull the pruned blocks from one of them"),
        "{}",
        out.text
    );
    assert!(
        out.text.contains("check-kafka: all 6 rules pass"),
        "{}",
        out.text
    );
    // The same source, when it is this OSN's own address, does not count.
    let mut own = sources.clone();
    own[0].1 = "[127.0.0.1:7050]".into();
    assert_eq!(check_kafka(&net, &own).code, 1);

    // The other rules stay: with a source, compaction still fails.
    let compacted = unique_channel("checkcompact");
    create_topic(&compacted, &[("cleanup.policy", "compact")]).await;
    let out = check_kafka(&kafka_net_on(&compacted, brokers()), &sources);
    assert_eq!(out.code, 1, "{}", out.text);
    assert!(
        out.text
            .contains(&format!("topic {compacted}: cleanup.policy=compact")),
        "{}",
        out.text
    );

    // At start-up: a node whose channel config names another OSN (it
    // listens on another port) accepts the finite retention, logs the
    // trade-off, warns about nothing, and serves.
    let (node, _l) = start_node(&net, &[]);
    let log = wait_log(
        &node,
        &["accepted because catch-up is configured (sources: 127.0.0.1:7050)"],
        Duration::from_secs(30),
    );
    wait_ready(&node, &net, &topic, Duration::from_secs(60)).await;
    assert!(
        !log.contains("does not follow Fabric's Kafka guide"),
        "{log}"
    );
}

/// A one-node KRaft cluster started by `kafka.sh` with unclean leader
/// election on (about 20 s); `down` on drop.
struct UncleanCluster {
    env: Vec<(String, String)>,
    brokers: Vec<String>,
    _dir: tempfile::TempDir,
}

impl UncleanCluster {
    fn kafka_sh(env: &[(String, String)], args: &[&str]) -> std::process::Output {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kafka/kafka.sh");
        Command::new(script)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .unwrap()
    }

    fn start() -> UncleanCluster {
        let dir = tempfile::tempdir().unwrap();
        let broker = free_port();
        let env = owned(&[
            (
                "KAFKA_RUN_DIR",
                &dir.path().join("kafka").display().to_string(),
            ),
            ("KAFKA_BROKER_PORT_BASE", &broker.to_string()),
            ("KAFKA_CONTROLLER_PORT_BASE", &free_port().to_string()),
            ("KAFKA_NUM_BROKERS", "1"),
            ("KAFKA_NUM_CONTROLLERS", "1"),
            ("KAFKA_REPLICATION_FACTOR", "1"),
            ("KAFKA_MIN_ISR", "1"),
            ("KAFKA_TLS", "0"),
            ("KAFKA_UNCLEAN_LEADER_ELECTION", "true"),
        ]);
        let c = UncleanCluster {
            brokers: vec![format!("127.0.0.1:{broker}")],
            env,
            _dir: dir,
        };
        let out = Self::kafka_sh(&c.env, &["start", "--kraft", "--wait"]);
        assert!(
            out.status.success(),
            "kafka.sh start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        c
    }
}

impl Drop for UncleanCluster {
    fn drop(&mut self) {
        let _ = Self::kafka_sh(&self.env, &["down"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_kafka_fails_on_a_cluster_started_with_unclean_leader_election() {
    let cluster = UncleanCluster::start();
    let net = kafka_net_on(&unique_channel("unclean"), cluster.brokers.clone());
    let out = check_kafka(&net, &[]);
    eprintln!("{}", out.text);
    assert_eq!(out.code, 1, "{}", out.text);
    assert!(
        out.text.contains("FAIL  unclean-leader-election"),
        "{}",
        out.text
    );
    assert!(
        out.text
            .contains("broker 1: unclean.leader.election.enable=true"),
        "{}",
        out.text
    );
    assert!(
        out.text
            .contains("fix: set unclean.leader.election.enable=false on every broker"),
        "{}",
        out.text
    );
    // The same one-node cluster also breaks the guide's size rules, by name.
    assert!(out.text.contains("FAIL  brokers"), "{}", out.text);
    assert!(out.text.contains("PASS  retention"), "{}", out.text);
}

// ----------------------------------------------------------------- /healthz and brokers --

struct Http {
    status: u16,
    body: String,
}

/// A plain HTTP/1.1 GET.
async fn http_get(port: u16, path: &str) -> Http {
    let s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    request(s, port, path).await.unwrap()
}

async fn request<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    port: u16,
    path: &str,
) -> std::io::Result<Http> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    // A TLS peer may close without close_notify; what was read counts.
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no HTTP response: {text:?}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || tail.len() < n {
                break;
            }
            out.push_str(&tail[..n]);
            rest = &tail[(n + 2).min(tail.len())..];
        }
        out
    } else {
        body.to_string()
    };
    Ok(Http { status, body })
}

async fn wait_healthz(port: u16, want: u16, within: Duration) -> (Http, Duration) {
    let t0 = Instant::now();
    loop {
        let h = http_get(port, "/healthz").await;
        if h.status == want {
            return (h, t0.elapsed());
        }
        assert!(
            t0.elapsed() < within,
            "/healthz still {} after {within:?}: {}",
            h.status,
            h.body
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_503_while_the_kafka_brokers_are_stopped_and_200_when_they_return() {
    let _exclusive = CLUSTER.write().await;
    let channel = unique_channel("health");
    let net = kafka_net_on(&channel, brokers());
    let ops = free_port();
    let (node, _l) = start_node(
        &net,
        &owned(&[(
            "ORDERER_OPERATIONS_LISTENADDRESS",
            &format!("127.0.0.1:{ops}"),
        )]),
    );
    wait_ready(&node, &net, &channel, Duration::from_secs(60)).await;
    order_and_read(&node, &net, &channel, 5, "before").await;
    wait_healthz(ops, 200, Duration::from_secs(10)).await;

    // Every broker down (kill -9: as fast as a crash; data kept).
    for n in 1..=4 {
        kafka_sh(&["kill-broker", &n.to_string()]);
    }
    let (h, took) = wait_healthz(ops, 503, Duration::from_secs(30)).await;
    eprintln!(
        "/healthz 503 {took:?} after the last broker was killed: {}",
        h.body
    );
    let body: serde_json::Value = serde_json::from_str(&h.body).unwrap();
    assert_eq!(body["status"], "Service Unavailable");
    let checks = body["failed_checks"].as_array().unwrap();
    assert_eq!(checks.len(), 1, "{body}");
    assert_eq!(checks[0]["component"], format!("{channel}/0"));
    assert!(
        checks[0]["reason"].as_str().unwrap().contains("Kafka"),
        "{body}"
    );

    // Brokers back: healthy again, and ordering resumes.
    for n in 1..=4 {
        kafka_sh(&["start-broker", &n.to_string()]);
    }
    kafka_sh(&["wait"]);
    let (_, took) = wait_healthz(ops, 200, Duration::from_secs(60)).await;
    eprintln!("/healthz 200 {took:?} after the cluster was ready again");
    order_and_read(&node, &net, &channel, 10, "after").await;
}

// ---------------------------------------------------------------------------- /metrics --

fn scrape(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("Prometheus text format")
}

/// The value of `name` summed over samples whose labels include `want`
/// (histograms and summaries: their count).
fn value(s: &prometheus_parse::Scrape, name: &str, want: &[(&str, &str)]) -> f64 {
    use prometheus_parse::Value;
    s.samples
        .iter()
        .filter(|x| x.metric == name && want.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(h) => h.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => 0.0,
        })
        .sum()
}

/// The metric names a Grafana dashboard's queries use (`name{` in `expr`),
/// with `_bucket` of histograms taken back to the metric's name.
fn dashboard_metrics(path: &Path) -> BTreeSet<String> {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut exprs = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    if k == "expr" {
                        if let Some(s) = v.as_str() {
                            out.push(s.to_string());
                        }
                    } else {
                        walk(v, out);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&json, &mut exprs);
    let mut names = BTreeSet::new();
    for e in exprs {
        let b = e.as_bytes();
        for (i, _) in e.match_indices('{') {
            let mut j = i;
            while j > 0 && (b[j - 1].is_ascii_alphanumeric() || b[j - 1] == b'_') {
                j -= 1;
            }
            let name = &e[j..i];
            if name.contains('_') {
                names.insert(name.trim_end_matches("_bucket").to_string());
            }
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_and_move_under_load_on_a_kafka_channel() {
    let _shared = CLUSTER.read().await;
    let channel = unique_channel("metrics");
    let net = kafka_net_on(&channel, brokers());
    let ops = free_port();
    let (node, _l) = start_node(
        &net,
        &owned(&[
            (
                "ORDERER_OPERATIONS_LISTENADDRESS",
                &format!("127.0.0.1:{ops}"),
            ),
            ("ORDERER_METRICS_PROVIDER", "prometheus"),
        ]),
    );
    wait_ready(&node, &net, &channel, Duration::from_secs(60)).await;
    let before = scrape(&http_get(ops, "/metrics").await.body);

    // Load: 200 envelopes (blocks of at most 10), then read every block back.
    order_and_read(&node, &net, &channel, 200, "load").await;
    let after_text = http_get(ops, "/metrics").await.body;
    let after = scrape(&after_text);

    let ch = [("channel", channel.as_str())];
    let ok = [
        ("channel", channel.as_str()),
        ("status", "SUCCESS"),
        ("type", "MESSAGE"),
    ];
    type Labels<'a> = &'a [(&'a str, &'a str)];
    let moved: Vec<(&str, Labels, f64)> = vec![
        ("broadcast_processed_count", &ok, 200.0),
        ("deliver_blocks_sent", &ch, 20.0),
        ("blockcutter_block_fill_duration", &ch, 20.0),
        ("consensus_kafka_last_offset_persisted", &ch, 190.0),
        ("ledger_blockchain_height", &ch, 20.0),
    ];
    for (name, labels, at_least) in moved {
        let (b, a) = (value(&before, name, labels), value(&after, name, labels));
        eprintln!("{name}{labels:?}: {b} -> {a}");
        assert!(
            a - b >= at_least,
            "{name} moved by {} (< {at_least}):\n{after_text}",
            a - b
        );
    }

    // Every metric the Grafana dashboard queries is exported.
    let dash =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ops/grafana/orderer-dashboard.json");
    let names = dashboard_metrics(&dash);
    assert!(names.len() >= 8, "{names:?}");
    // The Kafka client gauges come with librdkafka's statistics (every 2 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let (exported, missing) = loop {
        let now = scrape(&http_get(ops, "/metrics").await.body);
        let exported: BTreeSet<String> = now.samples.iter().map(|s| s.metric.clone()).collect();
        let missing: Vec<&String> = names.iter().filter(|n| !exported.contains(*n)).collect();
        if missing.is_empty() || std::time::Instant::now() > deadline {
            break (exported, missing);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        missing.is_empty(),
        "dashboard metrics not exported: {missing:?}\n{exported:?}"
    );
}

// ------------------------------------------------------------------- Operations.TLS --

struct Pki {
    ca_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new(cn: &str) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = p.self_signed(&key).unwrap();
        Pki {
            ca_pem: cert.pem(),
            issuer: rcgen::Issuer::new(p, key),
        }
    }

    /// (cert PEM, key PEM, cert DER).
    fn leaf(&self, cn: &str, server: bool) -> (String, String, Vec<u8>) {
        use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
        let key = KeyPair::generate().unwrap();
        let sans = if server {
            vec!["localhost".to_string(), "127.0.0.1".to_string()]
        } else {
            vec![]
        };
        let mut p = CertificateParams::new(sans).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let c = p.signed_by(&key, &self.issuer).unwrap();
        (c.pem(), key.serialize_pem(), c.der().to_vec())
    }
}

/// An HTTPS GET trusting `ca_pem`, with an optional client certificate;
/// the response and the server certificate seen.
async fn https_get(
    port: u16,
    path: &str,
    ca_pem: &str,
    client: Option<&(String, String, Vec<u8>)>,
) -> std::io::Result<(Http, Vec<u8>)> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let cfg = match client {
        Some((cert, key, _)) => b
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let conn = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tls = tokio::time::timeout(
        Duration::from_secs(10),
        conn.connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .map_err(|_| std::io::Error::other("handshake timed out"))??;
    let server_cert = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let h = request(tls, port, path).await?;
    Ok((h, server_cert))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_tls_and_mutual_tls_with_certificate_reload() {
    let net = support::net(200, 10, 1 << 20);
    let dir = net.dir.path().join("ops-tls");
    std::fs::create_dir_all(&dir).unwrap();
    let server_ca = Pki::new("ops-tls-ca");
    let client_ca = Pki::new("ops-client-ca");
    let (cert, key, der1) = server_ca.leaf("orderer-ops", true);
    std::fs::write(dir.join("server.crt"), &cert).unwrap();
    std::fs::write(dir.join("server.key"), &key).unwrap();
    std::fs::write(dir.join("client-ca.crt"), &client_ca.ca_pem).unwrap();
    let good_client = client_ca.leaf("operator", false);
    let stranger = Pki::new("other-ca").leaf("stranger", false);
    let file = |n: &str| dir.join(n).display().to_string();

    // TLS, client certificates optional: /healthz and /version open,
    // /metrics and /logspec only with a verified client certificate.
    let ops = free_port();
    let ledger = tempfile::tempdir().unwrap();
    let env = [
        (
            "ORDERER_OPERATIONS_LISTENADDRESS",
            format!("127.0.0.1:{ops}"),
        ),
        ("ORDERER_METRICS_PROVIDER", "prometheus".into()),
        ("ORDERER_OPERATIONS_TLS_ENABLED", "true".into()),
        ("ORDERER_OPERATIONS_TLS_CERTIFICATE", file("server.crt")),
        ("ORDERER_OPERATIONS_TLS_PRIVATEKEY", file("server.key")),
        (
            "ORDERER_OPERATIONS_TLS_CLIENTROOTCAS",
            file("client-ca.crt"),
        ),
    ];
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let node = Node::start_env(
        &net,
        ledger.path(),
        free_port(),
        "SampleOrg",
        true,
        &env_ref,
        true,
    );
    node.wait_port(ops, Duration::from_secs(20));
    let ca = &server_ca.ca_pem;
    let (h, seen) = https_get(ops, "/healthz", ca, None).await.unwrap();
    assert_eq!((h.status, seen == der1), (200, true), "{}", h.body);
    assert_eq!(
        https_get(ops, "/version", ca, None).await.unwrap().0.status,
        200
    );
    assert_eq!(
        https_get(ops, "/metrics", ca, None).await.unwrap().0.status,
        401
    );
    assert_eq!(
        https_get(ops, "/logspec", ca, None).await.unwrap().0.status,
        401
    );
    let (m, _) = https_get(ops, "/metrics", ca, Some(&good_client))
        .await
        .unwrap();
    assert_eq!(m.status, 200);
    assert!(
        m.body.contains("broadcast_processed_count")
            || m.body.contains("ledger_blockchain_height")
            || m.body.contains("fabric_version"),
        "{}",
        m.body
    );
    assert_eq!(
        https_get(ops, "/logspec", ca, Some(&good_client))
            .await
            .unwrap()
            .0
            .status,
        200
    );
    // A certificate from a CA not in ClientRootCAs is refused in the handshake.
    assert!(https_get(ops, "/healthz", ca, Some(&stranger))
        .await
        .is_err());
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = tokio::net::TcpStream::connect(("127.0.0.1", ops))
        .await
        .unwrap();
    assert!(
        request(plain, ops, "/healthz")
            .await
            .map(|h| h.status)
            .unwrap_or(0)
            != 200
    );

    // Certificate reload: new files are served by the next handshake, no restart.
    let (cert2, key2, der2) = server_ca.leaf("orderer-ops-renewed", true);
    std::fs::write(dir.join("server.key.new"), &key2).unwrap();
    std::fs::write(dir.join("server.crt.new"), &cert2).unwrap();
    std::fs::rename(dir.join("server.key.new"), dir.join("server.key")).unwrap();
    std::fs::rename(dir.join("server.crt.new"), dir.join("server.crt")).unwrap();
    let (h, seen) = https_get(ops, "/healthz", ca, None).await.unwrap();
    assert_eq!(h.status, 200);
    assert!(seen == der2, "the renewed certificate is served");
    // A broken file keeps the last good certificate.
    std::fs::write(dir.join("server.crt"), "not a certificate").unwrap();
    let (h, seen) = https_get(ops, "/healthz", ca, None).await.unwrap();
    assert_eq!((h.status, seen == der2), (200, true));
    wait_log(
        &node,
        &[
            "serving the new certificate",
            "still serving the previous certificate",
        ],
        Duration::from_secs(5),
    );
    drop(node);

    // Mutual TLS required: no certificate, no handshake; a good one is served.
    std::fs::write(dir.join("server.crt"), &cert2).unwrap();
    let ops = free_port();
    let mut env = env.to_vec();
    env[0].1 = format!("127.0.0.1:{ops}");
    env.push(("ORDERER_OPERATIONS_TLS_CLIENTAUTHREQUIRED", "true".into()));
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ledger = tempfile::tempdir().unwrap();
    let node = Node::start_env(
        &net,
        ledger.path(),
        free_port(),
        "SampleOrg",
        true,
        &env_ref,
        true,
    );
    node.wait_port(ops, Duration::from_secs(20));
    // rustls clients see a refused client certificate on the first read.
    let no_cert = https_get(ops, "/healthz", ca, None).await;
    assert!(
        no_cert
            .as_ref()
            .map(|(h, _)| h.status != 200)
            .unwrap_or(true),
        "no client certificate must not be served"
    );
    let (h, _) = https_get(ops, "/healthz", ca, Some(&good_client))
        .await
        .unwrap();
    assert_eq!(h.status, 200, "{}", h.body);
    let (h, _) = https_get(ops, "/metrics", ca, Some(&good_client))
        .await
        .unwrap();
    assert_eq!(h.status, 200);
    // Unreadable TLS files stop start-up with the key named.
    drop(node);
    let mut env = env.to_vec();
    env[3].1 = file("missing.crt");
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ledger = tempfile::tempdir().unwrap();
    let mut node = Node::start_env(
        &net,
        ledger.path(),
        free_port(),
        "SampleOrg",
        true,
        &env_ref,
        false,
    );
    let st = tokio::task::block_in_place(|| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = node.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "orderer did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    assert!(!st.success());
    assert!(
        log_of(&node).contains("Operations.TLS.Certificate"),
        "{}",
        log_of(&node)
    );
    let _ = node.alive();
}
