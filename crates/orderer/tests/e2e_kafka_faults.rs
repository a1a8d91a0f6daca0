//! Kafka faults on the real cluster: a broker stopped under load, two of a
//! topic's three replicas down (writes refused, `/healthz` failing as
//! Fabric's NOT_ENOUGH_REPLICAS check does), every broker down for longer
//! than the read timeout (Deliver refused as Fabric's `Errored()` does, until
//! consumption resumes), and an OSN started while Kafka is down.
//! These tests stop and start brokers of the shared test cluster, so they
//! run one at a time (a process-wide lock) and restore the cluster.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fabric_common::envelope::{seek_newest, seek_oldest};
use fabric_protos::common::Status;
use fabric_protos::orderer::SeekInfo;
use support::kafka::*;
use support::*;

static CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn all() -> SeekInfo {
    SeekInfo {
        start: Some(seek_oldest()),
        stop: Some(seek_newest()),
        ..Default::default()
    }
}

/// All payloads in the chain, verified.
async fn chain_payloads(node: &Node, net: &Net, channel: &str) -> Vec<Vec<u8>> {
    let mut c = node.client().await;
    let (blocks, s) = deliver(&mut c, &net.client, channel, all()).await;
    assert_eq!(s, Some(Status::Success));
    verify_chain(&blocks, net.org.ca_cert_pem());
    blocks.iter().skip(1).flat_map(block_payloads).collect()
}

/// Restarts every stopped node and waits until all brokers serve.
fn restore_cluster() {
    kafka_sh(&["start", "--wait"]);
}

/// Restores the cluster when a test ends, also by panic.
struct RestoreOnDrop;

impl Drop for RestoreOnDrop {
    fn drop(&mut self) {
        let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../scripts/kafka/kafka.sh");
        let _ = std::process::Command::new(script)
            .args(["start", "--wait"])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_broker_stopped_under_load_loses_and_duplicates_nothing() {
    let _g = CLUSTER.lock().await;
    let _restore = RestoreOnDrop;
    let channel = unique_channel("brokerdown");
    let net = kafka_net(&channel, 200, 50);
    let node = Node::start(&net, &net.dir.path().join("ledger"), free_port());
    wait_ready(&node, &net, &channel, Duration::from_secs(60)).await;
    let (leader, replicas) = leader_and_replicas(&channel);
    assert_eq!(replicas.len(), 3, "replication factor 3");

    let signer = Arc::new(
        fabric_common::msp::LocalSigner::load(
            &net.org.dir.join("users/User1@example.com/msp"),
            "SampleOrg",
        )
        .unwrap(),
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for s in 0..2u32 {
        let mut client = node.client().await;
        let (signer, stop, channel) = (signer.clone(), stop.clone(), channel.clone());
        load.push(tokio::spawn(async move {
            let (mut acked, mut refused) = (Vec::new(), 0u32);
            for chunk in 0.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let payloads: Vec<Vec<u8>> = (0..50)
                    .map(|i| format!("s{s}-c{chunk}-{i}").into_bytes())
                    .collect();
                let envs: Vec<_> = payloads
                    .iter()
                    .map(|p| tx(&signer, &channel, p.clone()))
                    .collect();
                let resps = broadcast(&mut client, envs).await;
                for (r, p) in resps.iter().zip(&payloads) {
                    if r.status == Status::Success as i32 {
                        acked.push(p.clone());
                    } else {
                        refused += 1;
                    }
                }
            }
            (acked, refused)
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Stop the partition leader: the most disruptive single broker.
    kafka_sh(&["stop-broker", &leader.to_string()]);
    tokio::time::sleep(Duration::from_secs(6)).await;
    // Reads keep working while the broker is down.
    assert_eq!(
        deliver_status(&node, &net, &channel).await,
        Some(Status::Success)
    );
    kafka_sh(&["start-broker", &leader.to_string()]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut acked, mut refused) = (Vec::new(), 0);
    for h in load {
        let (a, r) = h.await.unwrap();
        acked.extend(a);
        refused += r;
    }
    restore_cluster();
    // Every acknowledged envelope is in the chain exactly once.
    let deadline = Instant::now() + Duration::from_secs(30);
    let chain = loop {
        let chain = chain_payloads(&node, &net, &channel).await;
        let set: HashSet<&Vec<u8>> = chain.iter().collect();
        if acked.iter().all(|p| set.contains(p)) || Instant::now() > deadline {
            break chain;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let set: HashSet<&Vec<u8>> = chain.iter().collect();
    assert_eq!(set.len(), chain.len(), "no duplicates in the chain");
    let lost = acked.iter().filter(|p| !set.contains(p)).count();
    assert_eq!(lost, 0, "acknowledged envelopes lost");
    eprintln!(
        "broker {leader} stopped under load: acked {}, refused {refused}, in chain {}",
        acked.len(),
        chain.len()
    );
    assert!(
        acked.len() > 200,
        "load kept flowing: {} acked",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_three_replicas_down_refuses_writes_serves_reads_then_resumes() {
    let _g = CLUSTER.lock().await;
    let _restore = RestoreOnDrop;
    let channel = unique_channel("isr");
    let net = kafka_net(&channel, 200, 10);
    // A short ShortTotal bounds how long a produce waits for in-sync replicas.
    let ops = free_port();
    let ops_addr = format!("127.0.0.1:{ops}");
    let node = Node::start_env(
        &net,
        &net.dir.path().join("ledger"),
        free_port(),
        "SampleOrg",
        true,
        &[
            ("ORDERER_KAFKA_RETRY_SHORTTOTAL", "5s"),
            ("ORDERER_OPERATIONS_LISTENADDRESS", &ops_addr),
        ],
        true,
    );
    wait_ready(&node, &net, &channel, Duration::from_secs(60)).await;
    let mut c = node.client().await;
    let r = broadcast(
        &mut c,
        (0..10)
            .map(|i| tx(&net.client, &channel, vec![i]))
            .collect(),
    )
    .await;
    assert!(r.iter().all(|r| r.status == Status::Success as i32));
    let deadline = Instant::now() + Duration::from_secs(20);
    while chain_payloads(&node, &net, &channel).await.len() < 10 {
        assert!(Instant::now() < deadline, "first batch not delivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (leader, replicas) = leader_and_replicas(&channel);
    let down: Vec<i32> = replicas
        .iter()
        .copied()
        .filter(|b| *b != leader)
        .take(1)
        .chain([leader])
        .collect();
    for b in &down {
        kafka_sh(&["stop-broker", &b.to_string()]);
    }
    // Writes: refused with SERVICE_UNAVAILABLE (min.insync.replicas=2 cannot be met).
    let t0 = Instant::now();
    let r = broadcast(
        &mut c,
        vec![tx(&net.client, &channel, b"while-down".to_vec())],
    )
    .await;
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0].status,
        Status::ServiceUnavailable as i32,
        "{}",
        r[0].info
    );
    eprintln!("write refused after {:?}: {}", t0.elapsed(), r[0].info);
    // Reads: still served.
    let chain = chain_payloads(&node, &net, &channel).await;
    assert_eq!(chain.len(), 10);
    // /healthz: Fabric's Kafka check (a CONNECT posted) fails on NOT_ENOUGH_REPLICAS.
    let (code, body) = http_get(ops, "/healthz");
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains(&format!("{channel}/0")) && body.contains("fewer in-sync replicas"),
        "{body}"
    );
    eprintln!("healthz while in-sync replicas are missing: {body}");
    // One replica back: writes resume.
    kafka_sh(&["start-broker", &down[0].to_string()]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = broadcast(&mut c, vec![tx(&net.client, &channel, b"after".to_vec())]).await;
        if r.first().map(|r| r.status) == Some(Status::Success as i32) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writes did not resume: {:?}",
            r.first()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    restore_cluster();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let chain = chain_payloads(&node, &net, &channel).await;
        if chain.iter().any(|p| p == b"after") {
            assert!(chain.iter().filter(|p| *p == b"after").count() >= 1);
            break;
        }
        assert!(Instant::now() < deadline, "resumed write not delivered");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Healthy again once enough replicas are in sync.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, body) = http_get(ops, "/healthz");
        if code == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "healthz still failing: {body}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_errors_past_the_read_timeout_refuse_deliver_until_consumption_resumes() {
    let _g = CLUSTER.lock().await;
    let _restore = RestoreOnDrop;
    let channel = unique_channel("errored");
    let net = kafka_net(&channel, 200, 5);
    let node = Node::start_env(
        &net,
        &net.dir.path().join("ledger"),
        free_port(),
        "SampleOrg",
        true,
        &[("ORDERER_KAFKA_RETRY_NETWORKTIMEOUTS_READTIMEOUT", "3s")],
        true,
    );
    wait_ready(&node, &net, &channel, Duration::from_secs(60)).await;
    let mut c = node.client().await;
    let r = broadcast(
        &mut c,
        (0..5).map(|i| tx(&net.client, &channel, vec![i])).collect(),
    )
    .await;
    assert!(r.iter().all(|r| r.status == Status::Success as i32));
    let deadline = Instant::now() + Duration::from_secs(20);
    while chain_payloads(&node, &net, &channel).await.len() < 5 {
        assert!(Instant::now() < deadline, "first batch not delivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A follower waiting for block 2, then every broker down: consumption fails on and on.
    let mut fc = node.client().await;
    let seek = SeekInfo {
        start: Some(fabric_common::envelope::seek_specified(2)),
        stop: Some(fabric_common::envelope::seek_specified(u64::MAX)),
        ..Default::default()
    };
    let follower = deliver(&mut fc, &net.client, &channel, seek);
    let kill = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        tokio::task::spawn_blocking(|| {
            for b in 1..=4 {
                kafka_sh(&["kill-broker", &b.to_string()]);
            }
        })
        .await
        .unwrap();
        Instant::now()
    };
    let ((blocks, status), t0) = tokio::join!(follower, kill);
    assert!(blocks.is_empty());
    assert_eq!(status, Some(Status::ServiceUnavailable));
    eprintln!(
        "waiting follower refused {:?} after the brokers died",
        t0.elapsed()
    );
    // New strict requests are refused; best-effort ones are still served.
    assert_eq!(
        deliver_status(&node, &net, &channel).await,
        Some(Status::ServiceUnavailable)
    );
    let best_effort = SeekInfo {
        start: Some(seek_oldest()),
        stop: Some(seek_newest()),
        error_response: fabric_protos::orderer::seek_info::SeekErrorResponse::BestEffort as i32,
        ..Default::default()
    };
    let (blocks, s) = deliver(&mut c, &net.client, &channel, best_effort).await;
    assert_eq!(s, Some(Status::Success));
    assert_eq!(blocks.len(), 2);
    let log = std::fs::read_to_string(&node.log).unwrap();
    assert!(log.contains("Closed the errorChan"), "{log}");
    // Kafka back: the posted CONNECT is consumed and Deliver serves again by itself.
    restore_cluster();
    let t1 = Instant::now();
    wait_ready(&node, &net, &channel, Duration::from_secs(120)).await;
    eprintln!(
        "Deliver served again {:?} after the brokers came back",
        t1.elapsed()
    );
    let log = std::fs::read_to_string(&node.log).unwrap();
    assert!(log.contains("Marked consenter as available again"), "{log}");
    // And orders again.
    let mut c = node.client().await;
    let r = broadcast(
        &mut c,
        (5..8).map(|i| tx(&net.client, &channel, vec![i])).collect(),
    )
    .await;
    assert!(
        r.iter().all(|r| r.status == Status::Success as i32),
        "{r:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let p = chain_payloads(&node, &net, &channel).await;
        if p.len() == 8 {
            assert_eq!(p, (0..8u8).map(|i| vec![i]).collect::<Vec<_>>());
            break;
        }
        assert!(Instant::now() < deadline, "{} payloads", p.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn osn_started_before_kafka_retries_and_serves_once_kafka_comes() {
    let _g = CLUSTER.lock().await;
    let _restore = RestoreOnDrop;
    let channel = unique_channel("late");
    let net = kafka_net(&channel, 200, 10);
    kafka_sh(&["stop"]);
    let node = Node::start_env(
        &net,
        &net.dir.path().join("ledger"),
        free_port(),
        "SampleOrg",
        true,
        &[
            ("ORDERER_KAFKA_RETRY_SHORTINTERVAL", "1s"),
            ("ORDERER_KAFKA_RETRY_SHORTTOTAL", "5m"),
        ],
        true,
    );
    // Not ready: Broadcast and Deliver answer SERVICE_UNAVAILABLE.
    let mut c = node.client().await;
    let r = broadcast(&mut c, vec![tx(&net.client, &channel, b"early".to_vec())]).await;
    assert_eq!(
        r[0].status,
        Status::ServiceUnavailable as i32,
        "{}",
        r[0].info
    );
    assert_eq!(
        deliver_status(&node, &net, &channel).await,
        Some(Status::ServiceUnavailable)
    );
    // BEST_EFFORT Deliver is served from the ledger meanwhile.
    let mut be = SeekInfo {
        start: Some(seek_oldest()),
        stop: Some(seek_oldest()),
        ..Default::default()
    };
    be.error_response = fabric_protos::orderer::seek_info::SeekErrorResponse::BestEffort as i32;
    let (b, s) = deliver(&mut c, &net.client, &channel, be).await;
    assert_eq!((b.len(), s), (1, Some(Status::Success)));
    tokio::time::sleep(Duration::from_secs(3)).await;
    restore_cluster();
    wait_ready(&node, &net, &channel, Duration::from_secs(90)).await;
    let r = broadcast(&mut c, vec![tx(&net.client, &channel, b"late".to_vec())]).await;
    assert_eq!(r[0].status, Status::Success as i32, "{}", r[0].info);
    let log = std::fs::read_to_string(&node.log).unwrap();
    assert!(log.contains("retrying"), "the retry schedule was logged");
}
