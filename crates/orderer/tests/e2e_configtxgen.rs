//! The operator's path: a `configtx.yaml` in Fabric's format → our
//! `configtxgen -outputBlock` → `orderer start` configured only through
//! `ORDERER_*` variables → 2,000 signed counter values broadcast and
//! delivered in order over a chain that verifies; `kill -9` under load and
//! restart keep the chain valid and every acknowledged envelope in it once.

mod support;

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use fabric_common::devcrypto::{DevOrg, NodeOu};
use fabric_common::envelope::{seek_newest, seek_oldest};
use fabric_common::msp::LocalSigner;
use fabric_protos::common::Status;
use fabric_protos::orderer::SeekInfo;
use support::*;

const CONFIGTX: &str = r#"
Organizations:
    - &OrdererOrg
        Name: OrdererOrg
        ID: OrdererMSP
        MSPDir: crypto/orderer/msp
        Policies: &OrgPolicies
            Readers:
                Type: Signature
                Rule: "OR('OrdererMSP.member')"
            Writers:
                Type: Signature
                Rule: "OR('OrdererMSP.member')"
            Admins:
                Type: Signature
                Rule: "OR('OrdererMSP.admin')"

Capabilities:
    Channel: &ChannelCapabilities
        V1_4_3: true
    Orderer: &OrdererCapabilities
        V1_4_2: true

Orderer: &OrdererDefaults
    OrdererType: solo
    Addresses:
        - 127.0.0.1:7050
    BatchTimeout: 300ms
    BatchSize:
        MaxMessageCount: 50
        AbsoluteMaxBytes: 10 MB
        PreferredMaxBytes: 512 KB
    Kafka:
        Brokers:
            - 127.0.0.1:9092
    Policies:
        Readers:
            Type: ImplicitMeta
            Rule: "ANY Readers"
        Writers:
            Type: ImplicitMeta
            Rule: "ANY Writers"
        Admins:
            Type: ImplicitMeta
            Rule: "MAJORITY Admins"
        BlockValidation:
            Type: ImplicitMeta
            Rule: "ANY Writers"

Channel: &ChannelDefaults
    Policies:
        Readers:
            Type: ImplicitMeta
            Rule: "ANY Readers"
        Writers:
            Type: ImplicitMeta
            Rule: "ANY Writers"
        Admins:
            Type: ImplicitMeta
            Rule: "MAJORITY Admins"
    Capabilities:
        <<: *ChannelCapabilities

Profiles:
    TestSolo:
        <<: *ChannelDefaults
        Orderer:
            <<: *OrdererDefaults
            Organizations:
                - *OrdererOrg
            Capabilities:
                <<: *OrdererCapabilities
        Consortiums:
            SampleConsortium:
                Organizations:
                    - *OrdererOrg
"#;

struct Setup {
    net: Net,
    signer: LocalSigner,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let org = DevOrg::create(
        &dir.path().join("crypto/orderer"),
        "OrdererMSP",
        "example.com",
    )
    .unwrap();
    let orderer_msp = org.issue("orderer.example.com", NodeOu::Orderer).unwrap();
    let client_msp = org.issue("User1@example.com", NodeOu::Client).unwrap();
    std::fs::write(dir.path().join("configtx.yaml"), CONFIGTX).unwrap();
    let genesis = dir.path().join("genesis.block");
    let out = Command::new(bin("configtxgen"))
        .args(["-configPath"])
        .arg(dir.path())
        .args([
            "-profile",
            "TestSolo",
            "-channelID",
            CHANNEL,
            "-outputBlock",
        ])
        .arg(&genesis)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "configtxgen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inspect = Command::new(bin("configtxgen"))
        .arg("-inspectBlock")
        .arg(&genesis)
        .output()
        .unwrap();
    assert!(inspect.status.success());
    let json: serde_json::Value =
        serde_json::from_slice(&inspect.stdout).expect("-inspectBlock prints JSON");
    assert!(json.to_string().contains("OrdererMSP"));
    let signer = LocalSigner::load(&client_msp, "OrdererMSP").unwrap();
    let client = LocalSigner::load(&client_msp, "OrdererMSP").unwrap();
    Setup {
        net: Net {
            dir,
            org,
            orderer_msp,
            client,
            genesis,
        },
        signer,
    }
}

fn all() -> SeekInfo {
    SeekInfo {
        start: Some(seek_oldest()),
        stop: Some(seek_newest()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configtxgen_block_boots_the_orderer_and_orders_2000_counter_values() {
    let s = setup();
    let ledger = s.net.dir.path().join("ledger");
    let node = Node::start_with(&s.net, &ledger, free_port(), "OrdererMSP", true);
    let mut client = node.client().await;
    let envs = (0..2000u32)
        .map(|i| tx(&s.signer, CHANNEL, format!("counter:{i}").into_bytes()))
        .collect();
    let resps = broadcast(&mut client, envs).await;
    assert_eq!(resps.len(), 2000);
    assert!(resps.iter().all(|r| r.status == Status::Success as i32));
    let (blocks, status) = deliver(&mut client, &s.signer, CHANNEL, all()).await;
    assert_eq!(status, Some(Status::Success));
    verify_chain_msp(&blocks, s.net.org.ca_cert_pem(), "OrdererMSP");
    let got: Vec<Vec<u8>> = blocks.iter().skip(1).flat_map(block_payloads).collect();
    let want: Vec<Vec<u8>> = (0..2000u32)
        .map(|i| format!("counter:{i}").into_bytes())
        .collect();
    assert_eq!(got, want);
    // MaxMessageCount 50 from configtx.yaml
    assert_cut_by_count(&blocks, 2000, 50, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_under_load_never_loses_an_acknowledged_envelope() {
    let s = setup();
    let ledger = s.net.dir.path().join("ledger");
    let port = free_port();
    let mut acked: Vec<Vec<u8>> = Vec::new();
    let signer = std::sync::Arc::new(s.signer);
    for round in 0..4u32 {
        let mut node = Node::start_with(&s.net, &ledger, port, "OrdererMSP", round % 2 == 0);
        let mut handles = Vec::new();
        for stream in 0..2u32 {
            let mut client = node.client().await;
            let signer = signer.clone();
            handles.push(tokio::spawn(async move {
                // Send in chunks; record what was acknowledged.
                let mut ok = Vec::new();
                for chunk in 0.. {
                    let envs: Vec<_> = (0..100u32)
                        .map(|i| {
                            tx(
                                &signer,
                                CHANNEL,
                                format!("r{round}-s{stream}-c{chunk}-{i}").into_bytes(),
                            )
                        })
                        .collect();
                    let payloads: Vec<Vec<u8>> = (0..100u32)
                        .map(|i| format!("r{round}-s{stream}-c{chunk}-{i}").into_bytes())
                        .collect();
                    let stream_out = client.broadcast(tokio_stream::iter(envs)).await;
                    let Ok(resp) = stream_out else { break };
                    let mut resp = resp.into_inner();
                    let mut n = 0;
                    while let Ok(Some(r)) = resp.message().await {
                        if r.status != Status::Success as i32 {
                            break;
                        }
                        ok.push(payloads[n].clone());
                        n += 1;
                    }
                    if n < 100 {
                        break;
                    }
                }
                ok
            }));
        }
        let wait_ms = 300 + u64::from(round) * 170;
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        node.kill9();
        for h in handles {
            acked.extend(h.await.unwrap());
        }
    }
    assert!(acked.len() > 100, "load ran: {} acked", acked.len());
    let node = Node::start_with(&s.net, &ledger, port, "OrdererMSP", true);
    let mut client = node.client().await;
    let (blocks, status) = deliver(&mut client, &signer, CHANNEL, all()).await;
    assert_eq!(status, Some(Status::Success));
    verify_chain_msp(&blocks, s.net.org.ca_cert_pem(), "OrdererMSP");
    let in_chain: Vec<Vec<u8>> = blocks.iter().skip(1).flat_map(block_payloads).collect();
    let unique: HashSet<&Vec<u8>> = in_chain.iter().collect();
    assert_eq!(
        unique.len(),
        in_chain.len(),
        "no envelope twice in the chain"
    );
    let lost: Vec<_> = acked.iter().filter(|p| !unique.contains(p)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged envelopes lost, e.g. {:?}",
        lost.len(),
        String::from_utf8_lossy(lost[0])
    );
    eprintln!(
        "kill -9 rounds: 4, acknowledged {}, in chain {}, blocks {}",
        acked.len(),
        in_chain.len(),
        blocks.len()
    );
}
