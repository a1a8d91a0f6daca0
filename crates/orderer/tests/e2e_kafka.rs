//! The Kafka consenter against a real Kafka cluster (started by
//! `scripts/test.sh` with `scripts/kafka/kafka.sh`; its bootstrap list in
//! `KAFKA_BROKERS`). These tests fail, never skip, when Kafka is missing.

mod support;

use std::path::Path;
use std::time::Duration;

use fabric_common::envelope::{seek_newest, seek_oldest, seek_specified};
use fabric_protos::common::{Block, Status};
use fabric_protos::orderer::SeekInfo;
use prost::Message;
use support::kafka::*;
use support::*;

fn all() -> SeekInfo {
    SeekInfo {
        start: Some(seek_oldest()),
        stop: Some(seek_newest()),
        ..Default::default()
    }
}

async fn chain_of(node: &Node, net: &Net, channel: &str, height: u64) -> Vec<Block> {
    let mut c = node.client().await;
    let seek = SeekInfo {
        start: Some(seek_oldest()),
        stop: Some(seek_specified(height - 1)),
        ..Default::default()
    };
    let (blocks, s) = deliver(&mut c, &net.client, channel, seek).await;
    assert_eq!(s, Some(Status::Success));
    blocks
}

fn start_osn(net: &Net, channel_ledger: &Path) -> Node {
    Node::start(net, channel_ledger, free_port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_osns_cut_byte_identical_blocks_and_resume_after_kill9() {
    let channel = unique_channel("kafka3");
    let net = kafka_net(&channel, 300, 20);
    let ledgers: Vec<_> = (0..3)
        .map(|i| net.dir.path().join(format!("ledger{i}")))
        .collect();
    let mut nodes: Vec<Node> = ledgers.iter().map(|l| start_osn(&net, l)).collect();
    for n in &nodes {
        wait_ready(n, &net, &channel, Duration::from_secs(60)).await;
    }
    // Broadcast to each OSN in turn; partial batches are cut by time-to-cut messages.
    let mut sent = Vec::new();
    for round in 0..6u32 {
        let n = &nodes[round as usize % 3];
        let mut c = n.client().await;
        let envs: Vec<_> = (0..37u32)
            .map(|i| {
                let p = format!("r{round}-{i}").into_bytes();
                sent.push(p.clone());
                tx(&net.client, &channel, p)
            })
            .collect();
        let resps = broadcast(&mut c, envs).await;
        assert!(
            resps.iter().all(|r| r.status == Status::Success as i32),
            "{:?}",
            resps.last()
        );
    }
    // Every acknowledged envelope ends up in a block on every OSN.
    let want = sent.len();
    let mut chains = Vec::new();
    for n in &nodes {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let blocks = loop {
            let mut c = n.client().await;
            let (blocks, _) = deliver(&mut c, &net.client, &channel, all()).await;
            let count: usize = blocks.iter().skip(1).map(|b| block_payloads(b).len()).sum();
            if count >= want || std::time::Instant::now() > deadline {
                break blocks;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        verify_chain(&blocks, net.org.ca_cert_pem());
        chains.push(blocks);
    }
    let height = chains.iter().map(|c| c.len()).min().unwrap() as u64;
    let trimmed: Vec<Vec<Block>> = chains
        .iter()
        .map(|c| c[..height as usize].to_vec())
        .collect();
    let got: Vec<Vec<u8>> = trimmed[0].iter().skip(1).flat_map(block_payloads).collect();
    assert_eq!(got, sent, "all envelopes once, in order");
    for (i, c) in trimmed.iter().enumerate().skip(1) {
        for (a, b) in trimmed[0].iter().zip(c) {
            assert_eq!(
                a.header,
                b.header,
                "OSN {i}: header of block {}",
                a.header.as_ref().unwrap().number
            );
            assert_eq!(a.data, b.data, "OSN {i}: data");
        }
    }
    // kill -9 one OSN while load flows through another; restart it: it converges.
    let load = {
        let mut c = nodes[0].client().await;
        let signer = std::sync::Arc::new(
            fabric_common::msp::LocalSigner::load(
                &net.org.dir.join("users/User1@example.com/msp"),
                "SampleOrg",
            )
            .unwrap(),
        );
        let channel = channel.clone();
        tokio::spawn(async move {
            let mut acked = 0usize;
            for chunk in 0..10u32 {
                let envs: Vec<_> = (0..5u32)
                    .map(|i| {
                        tx(
                            &signer,
                            &channel,
                            format!("after-kill-{chunk}-{i}").into_bytes(),
                        )
                    })
                    .collect();
                let resps = broadcast(&mut c, envs).await;
                assert!(resps.iter().all(|r| r.status == Status::Success as i32));
                acked += resps.len();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            acked
        })
    };
    tokio::time::sleep(Duration::from_millis(250)).await;
    nodes[2].kill9();
    assert_eq!(load.await.unwrap(), 50);
    let port = nodes[2].port;
    nodes[2] = Node::start(&net, &ledgers[2], port);
    wait_ready(&nodes[2], &net, &channel, Duration::from_secs(60)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (a, b) = loop {
        let mut c0 = nodes[0].client().await;
        let (a, _) = deliver(&mut c0, &net.client, &channel, all()).await;
        let mut c2 = nodes[2].client().await;
        let (b, _) = deliver(&mut c2, &net.client, &channel, all()).await;
        let n = a
            .iter()
            .skip(1)
            .map(|x| block_payloads(x).len())
            .sum::<usize>();
        if (n == want + 50 && a.len() == b.len()) || std::time::Instant::now() > deadline {
            break (a, b);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(a.len(), b.len(), "restarted OSN caught up");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x.header, &x.data), (&y.header, &y.data));
    }
    let _ = chain_of(&nodes[1], &net, &channel, a.len() as u64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_created_through_the_system_channel_gets_its_own_topic() {
    use fabric_common::envelope::{create_signed_envelope, EnvelopeOptions};
    use fabric_protos::common::{ConfigSignature, HeaderType};
    let sys = unique_channel("kafkasys");
    let net = kafka_net(&sys, 200, 10);
    let node = start_osn(&net, &net.dir.path().join("ledger"));
    wait_ready(&node, &net, &sys, Duration::from_secs(60)).await;

    // The dev network's org policies let any member administer it.
    let new_channel = unique_channel("kafkaapp");
    let dev = fabric_configtx::dev::DevNetwork::new(net.org.msp_dir());
    let mut cue = fabric_configtx::genesis::channel_creation_config_update_envelope(
        &new_channel,
        &dev.application_channel_profile(),
        None,
    )
    .unwrap();
    let shdr = net.client.new_signature_header().encode_to_vec();
    let mut msg = shdr.clone();
    msg.extend_from_slice(&cue.config_update);
    cue.signatures.push(ConfigSignature {
        signature_header: shdr,
        signature: net.client.sign(&msg),
    });
    let env = create_signed_envelope(
        HeaderType::ConfigUpdate,
        &new_channel,
        Some(&net.client),
        cue.encode_to_vec(),
        &EnvelopeOptions::default(),
    );
    let mut c = node.client().await;
    let r = broadcast(&mut c, vec![env]).await;
    assert_eq!(r[0].status, Status::Success as i32, "{}", r[0].info);
    wait_ready(&node, &net, &new_channel, Duration::from_secs(60)).await;
    let (leader, replicas) = leader_and_replicas(&new_channel);
    assert!(
        leader >= 0 && replicas.len() == 3,
        "topic {new_channel}: leader {leader}, replicas {replicas:?}"
    );
    let r = broadcast(
        &mut c,
        (0..10u8)
            .map(|i| tx(&net.client, &new_channel, vec![i]))
            .collect(),
    )
    .await;
    assert!(
        r.iter().all(|r| r.status == Status::Success as i32),
        "{:?}",
        r.last()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (blocks, s) = deliver(&mut c, &net.client, &new_channel, all()).await;
        assert_eq!(s, Some(Status::Success));
        if blocks.len() == 2 {
            verify_chain(&blocks, net.org.ca_cert_pem());
            assert_eq!(block_payloads(&blocks[1]).len(), 10);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no block on the new channel"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sends `once` and `x` to OSN a, then `once` again and `y` to OSN b;
/// returns the payloads both chains agree on (with identical headers).
async fn resend_across_two_osns(net: &Net, channel: &str, want: usize) -> Vec<Vec<u8>> {
    let a = start_osn(net, &net.dir.path().join("a"));
    let b = start_osn(net, &net.dir.path().join("b"));
    wait_ready(&a, net, channel, Duration::from_secs(60)).await;
    wait_ready(&b, net, channel, Duration::from_secs(60)).await;
    let once = tx(&net.client, channel, b"once".to_vec());
    let mut ca = a.client().await;
    let mut cb = b.client().await;
    let r = broadcast(
        &mut ca,
        vec![once.clone(), tx(&net.client, channel, b"x".to_vec())],
    )
    .await;
    assert!(r.iter().all(|r| r.status == Status::Success as i32));
    let r = broadcast(
        &mut cb,
        vec![once.clone(), tx(&net.client, channel, b"y".to_vec())],
    )
    .await;
    assert!(r.iter().all(|r| r.status == Status::Success as i32));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (ba, _) = deliver(&mut ca, &net.client, channel, all()).await;
        let (bb, _) = deliver(&mut cb, &net.client, channel, all()).await;
        let pa: Vec<Vec<u8>> = ba.iter().skip(1).flat_map(block_payloads).collect();
        let pb: Vec<Vec<u8>> = bb.iter().skip(1).flat_map(block_payloads).collect();
        if pa.len() >= want && pa == pb {
            let ha: Vec<_> = ba.iter().map(|b| b.header.clone()).collect();
            let hb: Vec<_> = bb.iter().map(|b| b.header.clone()).collect();
            assert_eq!(ha, hb);
            // Nothing more arrives (a copy dropped late would show here).
            tokio::time::sleep(Duration::from_millis(600)).await;
            let (ba, _) = deliver(&mut ca, &net.client, channel, all()).await;
            assert_eq!(ba.len(), bb.len());
            return pa;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "chains: {pa:?} vs {pb:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_an_envelope_resent_to_two_osns_is_in_both_chains_twice_as_in_fabric() {
    let channel = unique_channel("dupes");
    let net = kafka_net(&channel, 200, 10);
    let got = resend_across_two_osns(&net, &channel, 4).await;
    assert_eq!(
        got,
        vec![
            b"once".to_vec(),
            b"x".to_vec(),
            b"once".to_vec(),
            b"y".to_vec()
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_exactly_once_an_envelope_resent_to_two_osns_is_in_both_chains_once() {
    let channel = unique_channel("dedupe");
    let net = kafka_net_exactly_once(&channel, 200, 10);
    let got = resend_across_two_osns(&net, &channel, 3).await;
    assert_eq!(got, vec![b"once".to_vec(), b"x".to_vec(), b"y".to_vec()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_update_through_kafka_is_an_isolated_block_on_every_osn_and_resizes_later_blocks()
{
    let channel = unique_channel("kcfg");
    let net = kafka_net(&channel, 300, 10);
    let a = start_osn(&net, &net.dir.path().join("a"));
    let b = start_osn(&net, &net.dir.path().join("b"));
    wait_ready(&a, &net, &channel, Duration::from_secs(60)).await;
    wait_ready(&b, &net, &channel, Duration::from_secs(60)).await;
    let mut ca = a.client().await;
    let (g, _) = deliver(
        &mut ca,
        &net.client,
        &channel,
        SeekInfo {
            start: Some(seek_oldest()),
            stop: Some(seek_oldest()),
            ..Default::default()
        },
    )
    .await;
    let original = config_group_of(&g[0]);
    let upd = signed_config_update(&net, &channel, &original, |g| {
        set_batch(g, |bs| bs.max_message_count = 4)
    });
    // Some normal traffic pending when the update arrives, then 8 more through the other OSN.
    let r = broadcast(
        &mut ca,
        vec![
            tx(&net.client, &channel, b"p1".to_vec()),
            tx(&net.client, &channel, b"p2".to_vec()),
            upd,
        ],
    )
    .await;
    assert!(
        r.iter().all(|r| r.status == Status::Success as i32),
        "{:?}",
        r
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut cb = b.client().await;
    let r = broadcast(
        &mut cb,
        (0..8u8)
            .map(|i| tx(&net.client, &channel, vec![i]))
            .collect(),
    )
    .await;
    assert!(r.iter().all(|r| r.status == Status::Success as i32));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (ba, bb) = loop {
        let (ba, _) = deliver(&mut ca, &net.client, &channel, all()).await;
        let (bb, _) = deliver(&mut cb, &net.client, &channel, all()).await;
        let n: usize = ba
            .iter()
            .skip(1)
            .map(|x| x.data.as_ref().unwrap().data.len())
            .sum();
        if (n >= 11 && ba.len() == bb.len()) || std::time::Instant::now() > deadline {
            break (ba, bb);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for (x, y) in ba.iter().zip(&bb) {
        assert_eq!((&x.header, &x.data), (&y.header, &y.data));
    }
    verify_chain(&ba, net.org.ca_cert_pem());
    let sizes: Vec<usize> = ba
        .iter()
        .skip(1)
        .map(|x| x.data.as_ref().unwrap().data.len())
        .collect();
    // [p1 p2] cut before the config block, the config block alone, then blocks of at most 4.
    assert_eq!(sizes, vec![2, 1, 4, 4], "block sizes {sizes:?}");
    assert_eq!(fabric_common::block::last_config_index(&ba[2]), Some(2));
    assert_eq!(
        fabric_common::block::last_config_index(ba.last().unwrap()),
        Some(2)
    );
}

/// The channel config group of a config block.
fn config_group_of(block: &Block) -> fabric_protos::common::ConfigGroup {
    use fabric_protos::common::{ConfigEnvelope, Envelope, Payload};
    let env = Envelope::decode(block.data.as_ref().unwrap().data[0].as_slice()).unwrap();
    let payload = Payload::decode(env.payload.as_slice()).unwrap();
    ConfigEnvelope::decode(payload.data.as_slice())
        .unwrap()
        .config
        .unwrap()
        .channel_group
        .unwrap()
}

/// Changes `/Channel/Orderer/BatchSize`.
fn set_batch(
    g: &mut fabric_protos::common::ConfigGroup,
    f: impl FnOnce(&mut fabric_protos::orderer::BatchSize),
) {
    let v = g
        .groups
        .get_mut("Orderer")
        .unwrap()
        .values
        .get_mut("BatchSize")
        .unwrap();
    let mut bs = fabric_protos::orderer::BatchSize::decode(v.value.as_slice()).unwrap();
    f(&mut bs);
    v.value = bs.encode_to_vec();
}

/// Changes `/Channel/Orderer/BatchTimeout`.
fn set_batch_timeout(g: &mut fabric_protos::common::ConfigGroup, timeout: &str) {
    let v = g
        .groups
        .get_mut("Orderer")
        .unwrap()
        .values
        .get_mut("BatchTimeout")
        .unwrap();
    v.value = fabric_protos::orderer::BatchTimeout {
        timeout: timeout.into(),
    }
    .encode_to_vec();
}

/// A CONFIG_UPDATE from `original` to `edit(original)`, signed by the
/// network's admin client as `peer channel update` does.
fn signed_config_update(
    net: &Net,
    channel: &str,
    original: &fabric_protos::common::ConfigGroup,
    edit: impl FnOnce(&mut fabric_protos::common::ConfigGroup),
) -> fabric_protos::common::Envelope {
    use fabric_common::envelope::{create_signed_envelope, EnvelopeOptions};
    use fabric_protos::common::{ConfigSignature, ConfigUpdateEnvelope, HeaderType};
    let mut updated = original.clone();
    edit(&mut updated);
    let mut update = fabric_configtx::update::compute(original, &updated).unwrap();
    update.channel_id = channel.to_string();
    let mut cue = ConfigUpdateEnvelope {
        config_update: update.encode_to_vec(),
        signatures: vec![],
    };
    let shdr = net.client.new_signature_header().encode_to_vec();
    let mut msg = shdr.clone();
    msg.extend_from_slice(&cue.config_update);
    cue.signatures.push(ConfigSignature {
        signature_header: shdr,
        signature: net.client.sign(&msg),
    });
    create_signed_envelope(
        HeaderType::ConfigUpdate,
        channel,
        Some(&net.client),
        cue.encode_to_vec(),
        &EnvelopeOptions::default(),
    )
}

/// The Kafka metadata a block records.
fn kafka_md(b: &Block) -> fabric_protos::orderer::KafkaMetadata {
    let raw = fabric_common::block::consenter_metadata(b).expect("Kafka metadata");
    fabric_protos::orderer::KafkaMetadata::decode(raw.as_slice()).unwrap()
}

/// Whether a block holds a CONFIG envelope.
fn is_config_block(b: &Block) -> bool {
    use fabric_protos::common::{ChannelHeader, Envelope, HeaderType, Payload};
    let Some(d) = b.data.as_ref().and_then(|d| d.data.first()) else {
        return false;
    };
    let env = Envelope::decode(d.as_slice()).unwrap();
    let p = Payload::decode(env.payload.as_slice()).unwrap();
    let ch = ChannelHeader::decode(p.header.unwrap().channel_header.as_slice()).unwrap();
    ch.r#type == HeaderType::Config as i32
}

/// Waits until both OSNs hold `want` blocks (or more) and returns both chains;
/// asserts they are identical in header, data and Kafka metadata.
async fn same_chains(a: &Node, b: &Node, net: &Net, channel: &str, want: usize) -> Vec<Block> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut ca = a.client().await;
        let mut cb = b.client().await;
        let (ba, _) = deliver(&mut ca, &net.client, channel, all()).await;
        let (bb, _) = deliver(&mut cb, &net.client, channel, all()).await;
        if ba.len() >= want && ba.len() == bb.len() {
            for (x, y) in ba.iter().zip(&bb) {
                assert_eq!((&x.header, &x.data), (&y.header, &y.data));
                if x.header.as_ref().unwrap().number > 0 {
                    assert_eq!(kafka_md(x), kafka_md(y));
                }
            }
            verify_chain(&ba, net.org.ca_cert_pem());
            return ba;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "chains of {} and {} blocks, want {want}",
            ba.len(),
            bb.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_update_reordered_after_another_makes_broadcast_wait_and_every_osn_agrees() {
    let channel = unique_channel("fab5969");
    let net = kafka_net(&channel, 300, 10);
    let a = start_osn(&net, &net.dir.path().join("a"));
    let b = start_osn(&net, &net.dir.path().join("b"));
    wait_ready(&a, &net, &channel, Duration::from_secs(60)).await;
    wait_ready(&b, &net, &channel, Duration::from_secs(60)).await;
    // Two updates validated at the same sequence, sent at once through both
    // OSNs: the one consumed second is stale, re-validated, re-ordered
    // (FAB-5969); until it is back Broadcast waits.
    let mut height = 1;
    let mut reordered = None;
    for attempt in 0..6u32 {
        let chain = same_chains(&a, &b, &net, &channel, height).await;
        let last_config = chain.iter().rev().find(|b| is_config_block(b)).unwrap();
        let original = config_group_of(last_config);
        let ua = signed_config_update(&net, &channel, &original, |g| {
            set_batch(g, |bs| bs.max_message_count = 4 + attempt)
        });
        let ub = signed_config_update(&net, &channel, &original, |g| {
            set_batch_timeout(g, &format!("{}ms", 310 + 10 * attempt))
        });
        let (mut ca, mut cb) = (a.client().await, b.client().await);
        let (ra, rb) = tokio::join!(broadcast(&mut ca, vec![ua]), broadcast(&mut cb, vec![ub]));
        assert_eq!(ra[0].status, Status::Success as i32, "{}", ra[0].info);
        assert_eq!(rb[0].status, Status::Success as i32, "{}", rb[0].info);
        height += 2;
        let chain = same_chains(&a, &b, &net, &channel, height).await;
        assert_eq!(chain.len(), height, "both updates committed once");
        let md = kafka_md(&chain[height - 1]);
        if md.last_resubmitted_config_offset != 0 {
            reordered = Some((attempt, md));
            break;
        }
    }
    let (attempt, md) = reordered.expect("no update was re-ordered in 6 attempts");
    eprintln!("re-ordered on attempt {attempt}: {md:?}");
    // The re-ordered config block records its original offset in both fields, as Fabric's does.
    assert_eq!(
        md.last_original_offset_processed,
        md.last_resubmitted_config_offset
    );
    // Broadcast waited on some OSN and resumed (each OSN re-orders the stale copy it consumed).
    let logs = [&a, &b].map(|n| std::fs::read_to_string(&n.log).unwrap());
    assert!(
        logs.iter()
            .any(|l| l.contains("Broadcast waits for a re-ordered config message")),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("Broadcast resumes for a re-ordered config message")),
        "{logs:?}"
    );
    // And normal traffic flows through both.
    for n in [&a, &b] {
        let mut c = n.client().await;
        let r = broadcast(&mut c, vec![tx(&net.client, &channel, b"after".to_vec())]).await;
        assert_eq!(r[0].status, Status::Success as i32, "{}", r[0].info);
    }
    let chain = same_chains(&a, &b, &net, &channel, height + 1).await;
    let n: usize = chain
        .iter()
        .flat_map(block_payloads)
        .filter(|p| p == b"after")
        .count();
    assert!(n >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_without_the_v1_1_capability_runs_in_compatibility_mode_on_every_osn() {
    let channel = unique_channel("compat");
    let net = net_with(&channel, |dev| {
        dev.orderer_type = "kafka".into();
        dev.kafka_brokers = brokers();
        dev.batch_timeout = fabric_configtx::units::GoDuration::from_millis(300);
        dev.batch_size.max_message_count = 10;
        dev.orderer_capabilities.clear();
    });
    let a = start_osn(&net, &net.dir.path().join("a"));
    let b = start_osn(&net, &net.dir.path().join("b"));
    wait_ready(&a, &net, &channel, Duration::from_secs(60)).await;
    wait_ready(&b, &net, &channel, Duration::from_secs(60)).await;
    let genesis = same_chains(&a, &b, &net, &channel, 1).await;
    let original = config_group_of(&genesis[0]);
    let upd = signed_config_update(&net, &channel, &original, |g| {
        set_batch(g, |bs| bs.max_message_count = 3)
    });
    let (mut ca, mut cb) = (a.client().await, b.client().await);
    let first: Vec<_> = (0..5u8)
        .map(|i| tx(&net.client, &channel, vec![i]))
        .collect();
    let (ra, rb) = tokio::join!(broadcast(&mut ca, first), broadcast(&mut cb, vec![upd]));
    assert!(
        ra.iter().all(|r| r.status == Status::Success as i32),
        "{ra:?}"
    );
    assert_eq!(rb[0].status, Status::Success as i32, "{}", rb[0].info);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = broadcast(
        &mut cb,
        (5..12u8)
            .map(|i| tx(&net.client, &channel, vec![i]))
            .collect(),
    )
    .await;
    assert!(
        r.iter().all(|r| r.status == Status::Success as i32),
        "{r:?}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let chain = loop {
        let chain = same_chains(&a, &b, &net, &channel, 2).await;
        let n = chain
            .iter()
            .skip(1)
            .filter(|b| !is_config_block(b))
            .map(|b| block_payloads(b).len())
            .sum::<usize>();
        if n == 12 {
            break chain;
        }
        assert!(std::time::Instant::now() < deadline, "{n} of 12 delivered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Nothing is re-ordered in compatibility mode: the resubmission fields stay 0.
    for b in chain.iter().skip(1) {
        let md = kafka_md(b);
        assert_eq!(
            (
                md.last_original_offset_processed,
                md.last_resubmitted_config_offset
            ),
            (0, 0)
        );
    }
    assert_eq!(chain.iter().filter(|b| is_config_block(b)).count(), 2);
    // Blocks after the update hold at most 3.
    let cfg_at = chain.iter().rposition(is_config_block).unwrap();
    assert!(chain[cfg_at + 1..]
        .iter()
        .all(|b| block_payloads(b).len() <= 3));
    for n in [&a, &b] {
        let log = std::fs::read_to_string(&n.log).unwrap();
        assert!(log.contains("compatibility mode"), "{log}");
    }
}

/// Broadcasts `n` envelopes named `tag-i` through `node`; all must succeed.
async fn order(node: &Node, net: &Net, channel: &str, tag: &str, n: u32) {
    let mut c = node.client().await;
    let envs: Vec<_> = (0..n)
        .map(|i| tx(&net.client, channel, format!("{tag}-{i}").into_bytes()))
        .collect();
    let resps = broadcast(&mut c, envs).await;
    assert!(
        resps.iter().all(|r| r.status == Status::Success as i32),
        "{:?}",
        resps.last()
    );
}

/// Waits until the node's log says it cannot resume, then checks that
/// Broadcast and Deliver answer SERVICE_UNAVAILABLE and no block was cut.
/// Returns the offset the node said it needs.
async fn refuses_pruned_partition(node: &Node, net: &Net, channel: &str) -> i64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let log = loop {
        let log = std::fs::read_to_string(&node.log).unwrap();
        if log.contains("cannot resume the Kafka chain") {
            break log;
        }
        assert!(std::time::Instant::now() < deadline, "{log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let needed: i64 = log
        .split("needs offset ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no needed offset in: {log}"));
    assert!(!log.contains("Start phase completed successfully"), "{log}");
    assert_eq!(
        support::kafka::deliver_status(node, net, channel).await,
        Some(Status::ServiceUnavailable)
    );
    let mut c = node.client().await;
    let r = broadcast(
        &mut c,
        vec![tx(&net.client, channel, b"after prune".to_vec())],
    )
    .await;
    assert_eq!(
        r[0].status,
        Status::ServiceUnavailable as i32,
        "{}",
        r[0].info
    );
    needed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_osn_never_cuts_blocks_from_a_pruned_partition_position() {
    let channel = unique_channel("pruned");
    let net = kafka_net(&channel, 200, 10);
    let dir = net.dir.path();
    let a = start_osn(&net, &dir.join("a"));
    let mut b = start_osn(&net, &dir.join("b"));
    wait_ready(&a, &net, &channel, Duration::from_secs(60)).await;
    wait_ready(&b, &net, &channel, Duration::from_secs(60)).await;
    order(&a, &net, &channel, "early", 30).await;
    chain_of(&b, &net, &channel, 4).await;
    b.kill9();
    // B is down while A orders more, then the partition is pruned.
    order(&a, &net, &channel, "late", 30).await;
    let a_chain = chain_of(&a, &net, &channel, 7).await;
    support::kafka::prune_partition(&channel);

    // B restarts behind the log start, and its only catch-up source does
    // not answer: it must not serve a stale chain as current, nor cut
    // blocks from what remains, and it says what it is missing.
    let nowhere = [(SOURCES, format!("127.0.0.1:{}", free_port()))];
    let b = start_with(&net, &dir.join("b"), &nowhere);
    let needed = refuses_pruned_partition(&b, &net, &channel).await;
    let log = wait_log(&b, "no catch-up source could provide the missing blocks").await;
    assert!(
        log.contains(&format!("and after (Kafka offset {needed} on was pruned")),
        "{log}"
    );
    assert!(log.contains(&nowhere[0].1), "{log}");
    // Clients are told why too (the state says so once the first round
    // over the sources failed, just after the log line).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut cl = b.client().await;
        let r = broadcast(
            &mut cl,
            vec![tx(&net.client, &channel, b"while catching up".to_vec())],
        )
        .await;
        assert_eq!(r[0].status, Status::ServiceUnavailable as i32);
        if r[0].info.contains("catching up") && r[0].info.contains(&nowhere[0].1) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", r[0].info);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // B's chain is a prefix of A's: it needs the record after one of A's blocks.
    let lops: Vec<i64> = a_chain
        .iter()
        .skip(1)
        .map(|b| kafka_md(b).last_offset_persisted)
        .collect();
    assert!(
        lops.contains(&(needed - 1)),
        "needed {needed}, A's blocks end at {lops:?}"
    );
    assert!(needed - 1 < *lops.last().unwrap(), "B was behind A");
    // A brand-new OSN needs offset 0, which is gone: it refuses too
    // (starting at the oldest remaining record would fork the chain).
    let ops = free_port();
    let c = start_with(
        &net,
        &dir.join("c"),
        &[
            nowhere[0].clone(),
            ("ORDERER_METRICS_PROVIDER", "prometheus".into()),
            (
                "ORDERER_OPERATIONS_LISTENADDRESS",
                format!("127.0.0.1:{ops}"),
            ),
        ],
    );
    assert_eq!(refuses_pruned_partition(&c, &net, &channel).await, 0);
    wait_log(&c, "blocks 1 and after").await;
    // The metric shows how far it got: its genesis block only.
    let (code, metrics) = http_get(ops, "/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics
            .lines()
            .any(|l| l == format!("consensus_kafka_catchup_height{{channel=\"{channel}\"}} 1")),
        "{metrics}"
    );
    let (c_blocks, _) = {
        let mut cl = c.client().await;
        deliver(
            &mut cl,
            &net.client,
            &channel,
            SeekInfo {
                start: Some(seek_oldest()),
                stop: Some(seek_oldest()),
                ..Default::default()
            },
        )
        .await
    };
    assert!(c_blocks.is_empty(), "a refusing OSN serves nothing");

    // A, whose position is past the log start, keeps ordering.
    order(&a, &net, &channel, "after", 10).await;
    let later = chain_of(&a, &net, &channel, a_chain.len() as u64 + 1).await;
    assert!(later.len() > a_chain.len());
}

/// `Kafka.CatchUp.Sources` as an environment override.
const SOURCES: &str = "ORDERER_KAFKA_CATCHUP_SOURCES";

/// An OSN with extra `ORDERER_*` settings.
fn start_with(net: &Net, ledger: &Path, env: &[(&str, String)]) -> Node {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Node::start_env(net, ledger, free_port(), "SampleOrg", true, &env, true)
}

/// Waits (60 s at most) until the node's log holds `what`; returns the log.
async fn wait_log(node: &Node, what: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let log = std::fs::read_to_string(&node.log).unwrap();
        if log.contains(what) {
            return log;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {what:?} in: {log}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The blocks of `node` once it holds `height` of them (Deliver may answer
/// SERVICE_UNAVAILABLE while it catches up).
async fn chain_when(node: &Node, net: &Net, channel: &str, height: u64) -> Vec<Block> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut c = node.client().await;
        let (blocks, s) = deliver(&mut c, &net.client, channel, all()).await;
        if s == Some(Status::Success) && blocks.len() as u64 >= height {
            return blocks;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "port {}: {s:?}, {} blocks: {}",
            node.port,
            blocks.len(),
            std::fs::read_to_string(&node.log).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every node's chain once it holds the envelopes `want` (waiting up to
/// 30 s): each verified against the orderer CA, holding `want` once, in
/// order, and all byte-identical in header and data to the first node's.
async fn identical_chains_holding(nodes: &[&Node], net: &Net, channel: &str, want: &[Vec<u8>]) {
    let mut chains = Vec::new();
    for n in nodes {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let chain = loop {
            let chain = chain_when(n, net, channel, 1).await;
            if payloads_of(&chain).len() >= want.len() || std::time::Instant::now() > deadline {
                break chain;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        verify_chain(&chain, net.org.ca_cert_pem());
        assert_eq!(
            payloads_of(&chain),
            want,
            "port {}: every acknowledged envelope once, in order",
            n.port
        );
        chains.push(chain);
    }
    for (i, chain) in chains.iter().enumerate().skip(1) {
        assert_eq!(chain.len(), chains[0].len(), "OSN {i}: height");
        for (x, y) in chains[0].iter().zip(chain) {
            let n = x.header.as_ref().unwrap().number;
            assert_eq!(x.header, y.header, "OSN {i}: header of block {n}");
            assert_eq!(x.data, y.data, "OSN {i}: data of block {n}");
        }
    }
}

/// Every envelope's payload data once, in order, over blocks 1.. .
fn payloads_of(chain: &[Block]) -> Vec<Vec<u8>> {
    chain.iter().skip(1).flat_map(block_payloads).collect()
}

/// The height an OSN reached by catch-up, from its log line.
fn caught_up_height(log: &str) -> u64 {
    log.split("caught up from another OSN; consuming Kafka again")
        .nth(1)
        .and_then(|rest| rest.split(" height=").nth(1))
        .and_then(|h| h.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|h| h.parse().ok())
        .unwrap_or_else(|| panic!("no caught-up height in: {log}"))
}

/// `n` payloads `tag-i`.
fn named(tag: &str, n: u32) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("{tag}-{i}").into_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn osns_behind_a_pruned_partition_catch_up_from_another_osn_and_follow_kafka() {
    let channel = unique_channel("catchup");
    let net = kafka_net(&channel, 200, 10);
    let dir = net.dir.path();
    let a = start_osn(&net, &dir.join("a"));
    let source = [(SOURCES, format!("127.0.0.1:{}", a.port))];
    let mut b = start_with(&net, &dir.join("b"), &source);
    wait_ready(&a, &net, &channel, Duration::from_secs(60)).await;
    wait_ready(&b, &net, &channel, Duration::from_secs(60)).await;
    order(&a, &net, &channel, "early", 30).await;
    chain_of(&b, &net, &channel, 4).await;
    let b_height = {
        let mut cl = b.client().await;
        deliver(&mut cl, &net.client, &channel, all()).await.0.len()
    };
    b.kill9();
    // B is down while A orders more; then the partition is pruned, and A
    // orders again (blocks whose offsets lie past the new log start).
    order(&a, &net, &channel, "late", 30).await;
    support::kafka::prune_partition(&channel);
    order(&a, &net, &channel, "pruned", 10).await;
    let a_chain = chain_of(&a, &net, &channel, 8).await;

    // (a) B restarts behind the log start: it pulls blocks 4..7 from A,
    // verified, then follows Kafka.
    let b = start_with(&net, &dir.join("b"), &source);
    let log = wait_log(&b, "caught up from another OSN; consuming Kafka again").await;
    assert!(log.contains("cannot resume the Kafka chain"), "{log}");
    assert!(!log.contains("rejected a block"), "{log}");
    let b_chain = chain_when(&b, &net, &channel, 8).await;
    // The pulled blocks are A's, byte for byte (signatures included); the
    // ones B cut itself, before it stopped and after it caught up, have the
    // same header and data.
    let pulled_to = caught_up_height(&log);
    assert!(pulled_to > b_height as u64, "{log}");
    assert_eq!(
        b_chain[b_height..pulled_to as usize],
        a_chain[b_height..pulled_to as usize]
    );
    for (x, y) in a_chain.iter().zip(&b_chain) {
        assert_eq!((&x.header, &x.data), (&y.header, &y.data));
    }
    // (b) A brand-new OSN after the pruning: from its genesis block only.
    let c = start_with(&net, &dir.join("c"), &source);
    let log = wait_log(&c, "caught up from another OSN; consuming Kafka again").await;
    let pulled_to = caught_up_height(&log) as usize;
    let c_chain = chain_when(&c, &net, &channel, 8).await;
    assert_eq!(c_chain[..pulled_to], a_chain[..pulled_to]);
    for (x, y) in a_chain.iter().zip(&c_chain) {
        assert_eq!((&x.header, &x.data), (&y.header, &y.data));
    }

    // Both follow Kafka: envelopes sent through each are ordered, and all
    // three OSNs cut the same blocks.
    order(&b, &net, &channel, "via-b", 20).await;
    order(&c, &net, &channel, "via-c", 20).await;
    let want: Vec<Vec<u8>> = [
        named("early", 30),
        named("late", 30),
        named("pruned", 10),
        named("via-b", 20),
        named("via-c", 20),
    ]
    .concat();
    identical_chains_holding(&[&a, &b, &c], &net, &channel, &want).await;
}

/// A catch-up source that serves a fixed list of blocks from the requested
/// number on (what a hostile or broken OSN could send).
#[derive(Clone)]
struct FakeSource {
    blocks: std::sync::Arc<Vec<Block>>,
}

#[tonic::async_trait]
impl fabric_protos::orderer::atomic_broadcast_server::AtomicBroadcast for FakeSource {
    type BroadcastStream = futures::stream::BoxStream<
        'static,
        Result<fabric_protos::orderer::BroadcastResponse, tonic::Status>,
    >;
    type DeliverStream = futures::stream::BoxStream<
        'static,
        Result<fabric_protos::orderer::DeliverResponse, tonic::Status>,
    >;

    async fn broadcast(
        &self,
        _: tonic::Request<tonic::Streaming<fabric_protos::common::Envelope>>,
    ) -> Result<tonic::Response<Self::BroadcastStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("fake source"))
    }

    async fn deliver(
        &self,
        request: tonic::Request<tonic::Streaming<fabric_protos::common::Envelope>>,
    ) -> Result<tonic::Response<Self::DeliverStream>, tonic::Status> {
        use fabric_protos::orderer::{deliver_response, seek_position, DeliverResponse};
        use futures::StreamExt as _;
        let env = request
            .into_inner()
            .message()
            .await?
            .ok_or_else(|| tonic::Status::invalid_argument("no seek"))?;
        let parsed = fabric_common::envelope::parse_envelope(&env).unwrap();
        let seek = SeekInfo::decode(parsed.payload.data.as_slice()).unwrap();
        let start = match seek.start.and_then(|p| p.r#type) {
            Some(seek_position::Type::Specified(s)) => s.number as usize,
            _ => 0,
        };
        let mut out: Vec<Result<DeliverResponse, tonic::Status>> = self
            .blocks
            .iter()
            .skip(start)
            .map(|b| {
                Ok(DeliverResponse {
                    r#type: Some(deliver_response::Type::Block(b.clone())),
                })
            })
            .collect();
        out.push(Ok(DeliverResponse {
            r#type: Some(deliver_response::Type::Status(Status::Success as i32)),
        }));
        Ok(tonic::Response::new(futures::stream::iter(out).boxed()))
    }
}

/// Serves `blocks` as a fake source on a free port; returns its address.
fn serve_fake_source(blocks: Vec<Block>) -> String {
    let port = free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let svc =
        fabric_protos::orderer::atomic_broadcast_server::AtomicBroadcastServer::new(FakeSource {
            blocks: std::sync::Arc::new(blocks),
        });
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve(addr),
    );
    addr.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_source_serving_tampered_blocks_is_rejected_and_the_next_source_is_used() {
    let channel = unique_channel("tamper");
    let net = kafka_net(&channel, 200, 10);
    let dir = net.dir.path();
    let a = start_osn(&net, &dir.join("a"));
    wait_ready(&a, &net, &channel, Duration::from_secs(60)).await;
    order(&a, &net, &channel, "early", 30).await;
    support::kafka::prune_partition(&channel);
    order(&a, &net, &channel, "pruned", 10).await;
    let a_chain = chain_of(&a, &net, &channel, 5).await;

    // Three sources that each serve A's chain with one block broken, listed
    // before A: a wrong data hash at block 2, a forged signature at block 3
    // (changed data, header re-hashed: the signature no longer covers it),
    // and a gap (block 1 left out: block 4 offered where 3 is next).
    let mut bad_data = a_chain.clone();
    bad_data[2].data.as_mut().unwrap().data[0][10] ^= 1;
    let mut forged = a_chain.clone();
    {
        let b = &mut forged[3];
        b.data.as_mut().unwrap().data.pop();
        let h = fabric_common::block::data_hash(&b.data.as_ref().unwrap().data);
        b.header.as_mut().unwrap().data_hash = h;
    }
    let mut gap = a_chain.clone();
    gap.remove(1);
    let fakes = [
        serve_fake_source(bad_data),
        serve_fake_source(forged),
        serve_fake_source(gap),
    ];
    let sources = format!(
        "[{}, {}, {}, 127.0.0.1:{}]",
        fakes[0], fakes[1], fakes[2], a.port
    );
    let c = start_with(&net, &dir.join("c"), &[(SOURCES, sources)]);
    let log = wait_log(&c, "caught up from another OSN; consuming Kafka again").await;
    for (fake, what) in [
        (
            &fakes[0],
            "block 2 rejected: block 2: data_hash does not match",
        ),
        (
            &fakes[1],
            "block 3 rejected: block 3: orderer signatures do not satisfy",
        ),
        (
            &fakes[2],
            "block 4 rejected: block 4 is not the next block 3",
        ),
    ] {
        assert!(
            log.lines().any(|l| l.contains("catch-up source failed")
                && l.contains(fake.as_str())
                && l.contains(what)),
            "{fake}: {what}: {log}"
        );
    }
    assert!(
        log.contains("rejected a block pulled for catch-up"),
        "{log}"
    );
    assert!(
        log.contains(&format!("source=127.0.0.1:{}", a.port)),
        "A served the rest: {log}"
    );
    let pulled_to = caught_up_height(&log) as usize;
    let c_chain = chain_when(&c, &net, &channel, pulled_to as u64).await;
    assert_eq!(c_chain[..pulled_to], a_chain[..pulled_to]);
    // and it follows Kafka with A
    order(&c, &net, &channel, "via-c", 10).await;
    let want = [named("early", 30), named("pruned", 10), named("via-c", 10)].concat();
    for n in [&a, &c] {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let chain = chain_when(n, &net, &channel, 1).await;
            let got = payloads_of(&chain);
            if got == want {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "port {}: {} of {}",
                n.port,
                got.len(),
                want.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Sends `sig` (`STOP`, `CONT`) to the node's process.
fn signal(node: &Node, sig: &str) {
    let st = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(node.child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_osn_whose_position_is_pruned_under_it_catches_up_and_goes_on() {
    let channel = unique_channel("underit");
    let net = kafka_net(&channel, 200, 10);
    let dir = net.dir.path();
    let a = start_osn(&net, &dir.join("a"));
    let b = start_with(
        &net,
        &dir.join("b"),
        &[(SOURCES, format!("127.0.0.1:{}", a.port))],
    );
    wait_ready(&a, &net, &channel, Duration::from_secs(60)).await;
    wait_ready(&b, &net, &channel, Duration::from_secs(60)).await;
    order(&a, &net, &channel, "early", 30).await;
    chain_of(&b, &net, &channel, 4).await;
    // B is frozen (its chain running) while A orders, the partition is
    // pruned past B's position, and A orders again.
    signal(&b, "STOP");
    order(&a, &net, &channel, "late", 30).await;
    // A fetch B had in flight may bring it the first of these (the answer
    // waits in its socket); what follows it can only come from A.
    tokio::time::sleep(Duration::from_millis(300)).await;
    order(&a, &net, &channel, "later", 30).await;
    support::kafka::prune_partition(&channel);
    order(&a, &net, &channel, "pruned", 10).await;
    signal(&b, "CONT");
    let log = wait_log(&b, "caught up from another OSN; consuming Kafka again").await;
    assert!(log.contains("cannot resume the Kafka chain"), "{log}");
    assert!(
        log.find("Start phase completed successfully") < log.find("cannot resume the Kafka chain"),
        "B was running when its position was pruned: {log}"
    );
    order(&b, &net, &channel, "via-b", 10).await;
    let want = [
        named("early", 30),
        named("late", 30),
        named("later", 30),
        named("pruned", 10),
        named("via-b", 10),
    ]
    .concat();
    identical_chains_holding(&[&a, &b], &net, &channel, &want).await;
}

/// A TLS CA for the catch-up TLS test, and PEM files of certificates it
/// issues for 127.0.0.1 (server and client use, as Fabric's TLS certs).
struct TestTlsCa {
    pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestTlsCa {
    fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "tlsca.example.com");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Self {
            pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// (certificate file, key file, certificate PEM, key PEM, DER).
    fn issue(&self, dir: &Path, name: &str) -> (String, String, String, String, Vec<u8>) {
        use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        std::fs::create_dir_all(dir).unwrap();
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (
            c.display().to_string(),
            k.display().to_string(),
            cert.pem(),
            key.serialize_pem(),
            cert.der().to_vec(),
        )
    }
}

/// A TLS client of the node on `port` (`identity`: certificate and key PEM).
async fn tls_client_of(
    port: u16,
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> fabric_protos::orderer::atomic_broadcast_client::AtomicBroadcastClient<tonic::transport::Channel>
{
    use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some((c, k)) = identity {
        tls = tls.identity(Identity::from_pem(c, k));
    }
    let ch = Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap();
    fabric_protos::orderer::atomic_broadcast_client::AtomicBroadcastClient::new(ch)
        .max_decoding_message_size(100 << 20)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_osn_catches_up_over_mutual_tls_with_its_own_certificate() {
    use sha2::Digest as _;
    let channel = unique_channel("catchuptls");
    let net = kafka_net(&channel, 200, 10);
    let dir = net.dir.path();
    let ca = TestTlsCa::new();
    let ca_file = dir.join("tls/ca.crt");
    std::fs::create_dir_all(dir.join("tls")).unwrap();
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let roots = format!("[{}]", ca_file.display());
    // A: the source, mutual TLS (a client without a certificate from the CA
    // cannot connect).
    let (a_cert, a_key, ..) = ca.issue(&dir.join("tls"), "a");
    let a_port = free_port();
    let a_env: Vec<(&str, &str)> = vec![
        ("ORDERER_GENERAL_TLS_ENABLED", "true"),
        ("ORDERER_GENERAL_TLS_CERTIFICATE", &a_cert),
        ("ORDERER_GENERAL_TLS_PRIVATEKEY", &a_key),
        ("ORDERER_GENERAL_TLS_ROOTCAS", &roots),
        ("ORDERER_GENERAL_TLS_CLIENTAUTHREQUIRED", "true"),
        ("ORDERER_GENERAL_TLS_CLIENTROOTCAS", &roots),
    ];
    let _a = Node::start_env(
        &net,
        &dir.join("a"),
        a_port,
        "SampleOrg",
        true,
        &a_env,
        true,
    );
    // D: plaintext, for the test's traffic.
    let d = start_osn(&net, &dir.join("d"));
    wait_ready(&d, &net, &channel, Duration::from_secs(60)).await;
    order(&d, &net, &channel, "early", 30).await;
    support::kafka::prune_partition(&channel);
    order(&d, &net, &channel, "pruned", 10).await;
    let d_chain = chain_of(&d, &net, &channel, 5).await;
    // A has them too (asked over mutual TLS, the seek bound to the cert).
    let (_, _, me_cert, me_key, me_der) = ca.issue(&dir.join("tls"), "test-client");
    let hash = sha2::Sha256::digest(&me_der).to_vec();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut c = tls_client_of(a_port, &ca.pem, Some((&me_cert, &me_key))).await;
        let env = fabric_common::envelope::seek_envelope(
            &channel,
            Some(&net.client),
            &all(),
            hash.clone(),
        );
        let r = deliver_many(&mut c, vec![env]).await;
        if r[0].1 == Some(Status::Success) && r[0].0.len() >= 5 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "A: {:?}", r[0].1);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // C: brand new, TLS on (trusting the CA through General.TLS.RootCAs),
    // catches up from A presenting its own certificate.
    let (c_cert, c_key, ..) = ca.issue(&dir.join("tls"), "c");
    let source = format!("127.0.0.1:{a_port}");
    let c_port = free_port();
    let c_env: Vec<(&str, &str)> = vec![
        ("ORDERER_GENERAL_TLS_ENABLED", "true"),
        ("ORDERER_GENERAL_TLS_CERTIFICATE", &c_cert),
        ("ORDERER_GENERAL_TLS_PRIVATEKEY", &c_key),
        ("ORDERER_GENERAL_TLS_ROOTCAS", &roots),
        (SOURCES, &source),
    ];
    let c = Node::start_env(
        &net,
        &dir.join("c"),
        c_port,
        "SampleOrg",
        true,
        &c_env,
        true,
    );
    let log = wait_log(&c, "caught up from another OSN; consuming Kafka again").await;
    assert!(log.contains(&format!("source={source}")), "{log}");
    let pulled_to = caught_up_height(&log) as usize;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let c_chain = loop {
        let mut cl = tls_client_of(c_port, &ca.pem, None).await;
        let (blocks, s) = deliver(&mut cl, &net.client, &channel, all()).await;
        if s == Some(Status::Success) && blocks.len() >= 5 {
            break blocks;
        }
        assert!(std::time::Instant::now() < deadline, "C: {s:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for (x, y) in d_chain.iter().zip(&c_chain) {
        assert_eq!((&x.header, &x.data), (&y.header, &y.data));
    }
    assert!(pulled_to >= 4, "{log}");
}

/// `Kafka.CatchUp.PullThreshold` as an environment override.
const PULL_THRESHOLD: &str = "ORDERER_KAFKA_CATCHUP_PULLTHRESHOLD";

/// The number of blocks a node pulled ahead, from its log line.
fn pulled_ahead(log: &str) -> u64 {
    log.lines()
        .find(|l| l.contains("pulled ahead from other OSNs"))
        .and_then(|l| l.split(" pulled=").nth(1))
        .and_then(|n| n.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no pulled-ahead count in: {log}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_osn_far_behind_an_unpruned_partition_pulls_first_then_follows_kafka() {
    let channel = unique_channel("pullahead");
    let net = kafka_net(&channel, 200, 10);
    let dir = net.dir.path();
    let a = start_osn(&net, &dir.join("a"));
    wait_ready(&a, &net, &channel, Duration::from_secs(60)).await;
    order(&a, &net, &channel, "early", 60).await;
    let a_chain = chain_of(&a, &net, &channel, 7).await;
    let source = (SOURCES, format!("127.0.0.1:{}", a.port));

    // (a) Far behind (more than 10 records): C pulls what A has, verified,
    // then consumes Kafka from the last pulled block's offsets. Nothing is
    // pruned: Kafka would have served it all.
    let c = start_with(
        &net,
        &dir.join("c"),
        &[source.clone(), (PULL_THRESHOLD, "10".into())],
    );
    let log = wait_log(&c, "pulled ahead from other OSNs").await;
    assert!(
        log.contains("far behind the partition's end: pulling blocks from other OSNs"),
        "{log}"
    );
    assert!(!log.contains("cannot resume the Kafka chain"), "{log}");
    let pulled = pulled_ahead(&log) as usize;
    assert!(
        pulled >= a_chain.len() - 1,
        "{pulled} of {}: {log}",
        a_chain.len()
    );
    let c_chain = chain_when(&c, &net, &channel, a_chain.len() as u64).await;
    assert_eq!(
        c_chain[..a_chain.len()],
        a_chain[..],
        "A's blocks, byte for byte"
    );

    // (b) The source is itself behind (it has blocks 0..3 only): D pulls
    // those, and the rest comes from Kafka, from block 3's offsets on.
    let behind = serve_fake_source(a_chain[..4].to_vec());
    let d = start_with(
        &net,
        &dir.join("d"),
        &[(SOURCES, behind), (PULL_THRESHOLD, "10".into())],
    );
    let log = wait_log(&d, "pulled ahead from other OSNs").await;
    assert_eq!(pulled_ahead(&log), 3, "{log}");
    let lop3 = kafka_md(&a_chain[3]).last_offset_persisted;
    assert!(
        log.contains(&format!("start_offset={}", lop3 + 1)),
        "Kafka resumes after block 3's last offset {lop3}: {log}"
    );
    let d_chain = chain_when(&d, &net, &channel, a_chain.len() as u64).await;
    assert_eq!(d_chain[..4], a_chain[..4]);
    for (x, y) in a_chain.iter().zip(&d_chain) {
        assert_eq!((&x.header, &x.data), (&y.header, &y.data));
    }

    // (c) Within the threshold (the default): E replays the partition.
    let e = start_with(&net, &dir.join("e"), &[source]);
    wait_ready(&e, &net, &channel, Duration::from_secs(60)).await;
    let e_chain = chain_when(&e, &net, &channel, a_chain.len() as u64).await;
    let log = std::fs::read_to_string(&e.log).unwrap();
    assert!(!log.contains("pulling blocks from other OSNs"), "{log}");
    for (x, y) in a_chain.iter().zip(&e_chain) {
        assert_eq!((&x.header, &x.data), (&y.header, &y.data));
    }

    // All follow Kafka: envelopes through C and D are ordered, and every
    // OSN holds every envelope once, in the same blocks.
    order(&c, &net, &channel, "via-c", 20).await;
    order(&d, &net, &channel, "via-d", 20).await;
    let want = [named("early", 60), named("via-c", 20), named("via-d", 20)].concat();
    identical_chains_holding(&[&a, &c, &d, &e], &net, &channel, &want).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_any_catch_up_source_a_new_osn_past_the_pruning_refuses_and_says_what_is_missing() {
    // A channel config without orderer addresses, and no Kafka.CatchUp.Sources.
    let channel = unique_channel("nosource");
    let net = support::net_with(&channel, |dev| {
        dev.orderer_type = "kafka".into();
        dev.kafka_brokers = brokers();
        dev.batch_timeout = fabric_configtx::units::GoDuration::from_millis(200);
        dev.batch_size.max_message_count = 10;
        dev.orderer_addresses.clear();
    });
    let dir = net.dir.path();
    let a = start_osn(&net, &dir.join("a"));
    wait_ready(&a, &net, &channel, Duration::from_secs(60)).await;
    order(&a, &net, &channel, "early", 30).await;
    support::kafka::prune_partition(&channel);
    let c = start_osn(&net, &dir.join("c"));
    assert_eq!(refuses_pruned_partition(&c, &net, &channel).await, 0);
    let log = wait_log(&c, "no catch-up source: set Kafka.CatchUp.Sources").await;
    assert!(
        log.contains("blocks 1 and after (Kafka offset 0 on was pruned"),
        "{log}"
    );
    // Clients are told what is missing too.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut cl = c.client().await;
        let r = broadcast(&mut cl, vec![tx(&net.client, &channel, b"x".to_vec())]).await;
        assert_eq!(r[0].status, Status::ServiceUnavailable as i32);
        if r[0]
            .info
            .contains("no catch-up source is configured (Kafka.CatchUp.Sources)")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", r[0].info);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        support::kafka::deliver_status(&c, &net, &channel).await,
        Some(Status::ServiceUnavailable)
    );
    // The refusing OSN's ledger still holds only its genesis block.
    let (blocks, _) = {
        let mut cl = c.client().await;
        deliver(
            &mut cl,
            &net.client,
            &channel,
            SeekInfo {
                start: Some(seek_oldest()),
                stop: Some(seek_newest()),
                error_response: fabric_protos::orderer::seek_info::SeekErrorResponse::BestEffort
                    as i32,
                ..Default::default()
            },
        )
        .await
    };
    assert_eq!(
        blocks.len(),
        1,
        "BEST_EFFORT serves only the verified genesis block"
    );
}
