//! Kafka test support: the cluster started by `scripts/test.sh`
//! (`KAFKA_BROKERS`), `scripts/kafka/kafka.sh` for faults, and Kafka networks.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use fabric_common::envelope::seek_oldest;
use fabric_protos::common::Status;
use fabric_protos::orderer::SeekInfo;

use super::{deliver, Net, Node};

/// The cluster's bootstrap list; panics (never skips) without one.
pub fn brokers() -> Vec<String> {
    let b = std::env::var("KAFKA_BROKERS").expect(
        "KAFKA_BROKERS is not set: start Kafka with scripts/kafka/kafka.sh start --wait \
         and export KAFKA_BROKERS=$(scripts/kafka/kafka.sh brokers) (scripts/test.sh does both)",
    );
    b.split(',').map(str::to_string).collect()
}

/// Runs `scripts/kafka/kafka.sh ARGS` and asserts success.
pub fn kafka_sh(args: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kafka/kafka.sh");
    let out = Command::new(script)
        .args(args)
        .output()
        .expect("running kafka.sh");
    assert!(
        out.status.success(),
        "kafka.sh {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A channel (= topic) name unique to this run.
pub fn unique_channel(prefix: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    format!("{prefix}-{t}-{}", std::process::id())
}

/// One org, a Kafka genesis block for `channel` on the test cluster.
pub fn kafka_net(channel: &str, batch_timeout_ms: i64, max_message_count: u32) -> Net {
    super::net_with(channel, |dev| {
        dev.orderer_type = "kafka".into();
        dev.kafka_brokers = brokers();
        dev.batch_timeout = fabric_configtx::units::GoDuration::from_millis(batch_timeout_ms);
        dev.batch_size.max_message_count = max_message_count;
    })
}

/// As [`kafka_net`], with the `RS_EXACTLY_ONCE` orderer capability in the
/// genesis block (the channel's exactly-once window is on).
pub fn kafka_net_exactly_once(channel: &str, batch_timeout_ms: i64, max_message_count: u32) -> Net {
    super::net_with(channel, |dev| {
        dev.orderer_type = "kafka".into();
        dev.kafka_brokers = brokers();
        dev.batch_timeout = fabric_configtx::units::GoDuration::from_millis(batch_timeout_ms);
        dev.batch_size.max_message_count = max_message_count;
        dev.orderer_capabilities.push(super::EXACTLY_ONCE.into());
    })
}

/// Deliver status of a one-block seek.
pub async fn deliver_status(node: &Node, net: &Net, channel: &str) -> Option<Status> {
    let mut c = node.client().await;
    let seek = SeekInfo {
        start: Some(seek_oldest()),
        stop: Some(seek_oldest()),
        ..Default::default()
    };
    deliver(&mut c, &net.client, channel, seek).await.1
}

/// Waits until the chain serves Deliver (it answers SERVICE_UNAVAILABLE while connecting).
pub async fn wait_ready(node: &Node, net: &Net, channel: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let s = deliver_status(node, net, channel).await;
        if s == Some(Status::Success) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "chain on port {} not ready: {s:?}",
            node.port
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The broker id leading partition 0 of `topic`, and its replicas.
pub fn leader_and_replicas(topic: &str) -> (i32, Vec<i32>) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers().join(","))
        .create()
        .unwrap();
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .expect("topic exists");
    let p = &t.partitions()[0];
    (p.leader(), p.replicas().to_vec())
}

/// As [`leader_and_replicas`], `None` while `topic` is not (yet) in the
/// metadata or has no leader.
pub fn leader_and_replicas_opt(topic: &str) -> Option<(i32, Vec<i32>)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers().join(","))
        .create()
        .ok()?;
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(5)).ok()?;
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    if t.error().is_some() {
        return None;
    }
    let p = t.partitions().first()?;
    (p.leader() >= 0).then(|| (p.leader(), p.replicas().to_vec()))
}

/// A Kafka network whose only broker address has nothing listening.
pub fn unreachable_kafka_net() -> Net {
    super::net_with(super::CHANNEL, |dev| {
        dev.orderer_type = "kafka".into();
        dev.kafka_brokers = vec![format!("127.0.0.1:{}", super::free_port())];
    })
}

/// Deletes every record of `topic`'s partition 0 below its high watermark
/// (Kafka's DeleteRecords, as retention would), through `kafka.sh`.
pub fn prune_partition(topic: &str) {
    let f = std::env::temp_dir().join(format!("prune-{topic}.json"));
    std::fs::write(
        &f,
        format!(
            r#"{{"partitions":[{{"topic":"{topic}","partition":0,"offset":-1}}],"version":1}}"#
        ),
    )
    .unwrap();
    kafka_sh(&[
        "run-class",
        "org.apache.kafka.tools.DeleteRecordsCommand",
        "--bootstrap-server",
        &brokers().join(","),
        "--offset-json-file",
        f.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(f);
}
