//! Channels through the system channel, as `peer channel create` does it,
//! and config updates: only an org admin can create a channel; the new
//! channel's members can write and read it and nobody else can; a config
//! update changing `BatchSize.MaxMessageCount` changes the blocks that follow.

mod support;

use std::time::{Duration, Instant};

use fabric_common::devcrypto::{DevOrg, NodeOu};
use fabric_common::envelope::{
    create_signed_envelope, seek_newest, seek_oldest, seek_specified, EnvelopeOptions,
};
use fabric_common::msp::LocalSigner;
use fabric_protos::common::{
    Block, ConfigEnvelope, ConfigSignature, ConfigUpdateEnvelope, Envelope, HeaderType, Payload,
    Status,
};
use fabric_protos::orderer::{BatchSize, SeekInfo};
use prost::Message;
use support::*;

const PROFILES: &str = r#"
Profiles:
    SysChannel:
        <<: *ChannelDefaults
        Orderer:
            <<: *OrdererDefaults
            Organizations:
                - *OrdererOrg
        Consortiums:
            SampleConsortium:
                Organizations:
                    - *Org1
                    - *Org2
    Org1Channel:
        <<: *ChannelDefaults
        Consortium: SampleConsortium
        Application:
            <<: *ApplicationDefaults
            Organizations:
                - *Org1
"#;

const SYS: &str = "syschannel";

struct Setup {
    net: Net,
    dir: std::path::PathBuf,
    orderer_admin: LocalSigner,
    org1_admin: LocalSigner,
    org1_user: LocalSigner,
    org2_admin: LocalSigner,
    org2_user: LocalSigner,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let crypto = dir.join("crypto");
    let orderer = DevOrg::create(&crypto.join("orderer"), "OrdererMSP", "example.com").unwrap();
    let org1 = DevOrg::create(&crypto.join("org1"), "Org1MSP", "org1.example.com").unwrap();
    let org2 = DevOrg::create(&crypto.join("org2"), "Org2MSP", "org2.example.com").unwrap();
    let signer = |org: &DevOrg, name: &str, ou: NodeOu| {
        LocalSigner::load(&org.issue(name, ou).unwrap(), &org.mspid).unwrap()
    };
    let orderer_msp = orderer
        .issue("orderer.example.com", NodeOu::Orderer)
        .unwrap();
    let orderer_admin = signer(&orderer, "Admin@example.com", NodeOu::Admin);
    let org1_admin = signer(&org1, "Admin@org1.example.com", NodeOu::Admin);
    let org1_user = signer(&org1, "User1@org1.example.com", NodeOu::Client);
    let org2_admin = signer(&org2, "Admin@org2.example.com", NodeOu::Admin);
    let org2_user = signer(&org2, "User1@org2.example.com", NodeOu::Client);
    let yaml = format!("{}{PROFILES}", three_org_configtx("1 MB", "512 KB"));
    std::fs::write(dir.join("configtx.yaml"), &yaml).unwrap();
    let genesis = genesis_from_configtx(&dir, &yaml, "SysChannel", SYS);
    let client = LocalSigner::load(
        &orderer.dir.join("users/Admin@example.com/msp"),
        "OrdererMSP",
    )
    .unwrap();
    Setup {
        net: Net {
            dir: tmp,
            org: orderer,
            orderer_msp,
            client,
            genesis,
        },
        dir,
        orderer_admin,
        org1_admin,
        org1_user,
        org2_admin,
        org2_user,
    }
}

/// Signs a ConfigUpdateEnvelope as `peer channel create/update` does and wraps it.
fn signed_update(
    channel: &str,
    mut cue: ConfigUpdateEnvelope,
    signers: &[&LocalSigner],
) -> Envelope {
    for s in signers {
        let shdr = s.new_signature_header().encode_to_vec();
        let mut msg = shdr.clone();
        msg.extend_from_slice(&cue.config_update);
        cue.signatures.push(ConfigSignature {
            signature_header: shdr,
            signature: s.sign(&msg),
        });
    }
    create_signed_envelope(
        HeaderType::ConfigUpdate,
        channel,
        Some(signers[0]),
        cue.encode_to_vec(),
        &EnvelopeOptions::default(),
    )
}

fn creation_tx(s: &Setup, channel: &str, signers: &[&LocalSigner]) -> Envelope {
    let yaml = std::fs::read_to_string(s.dir.join("configtx.yaml")).unwrap();
    let top = fabric_configtx::config::TopLevel::parse(&yaml, &s.dir).unwrap();
    let profile = top.profile("Org1Channel").unwrap();
    let cue =
        fabric_configtx::genesis::channel_creation_config_update_envelope(channel, &profile, None)
            .unwrap();
    signed_update(channel, cue, signers)
}

fn seek(
    start: fabric_protos::orderer::SeekPosition,
    stop: fabric_protos::orderer::SeekPosition,
) -> SeekInfo {
    SeekInfo {
        start: Some(start),
        stop: Some(stop),
        ..Default::default()
    }
}

async fn fetch_block(
    node: &Node,
    signer: &LocalSigner,
    channel: &str,
    n: u64,
    within: Duration,
) -> Option<Block> {
    let deadline = Instant::now() + within;
    loop {
        let mut c = node.client().await;
        let (b, s) = deliver(
            &mut c,
            signer,
            channel,
            seek(seek_specified(n), seek_specified(n)),
        )
        .await;
        if s == Some(Status::Success) {
            return b.into_iter().next();
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn config_of(block: &Block) -> fabric_protos::common::Config {
    let env = Envelope::decode(block.data.as_ref().unwrap().data[0].as_slice()).unwrap();
    let payload = Payload::decode(env.payload.as_slice()).unwrap();
    ConfigEnvelope::decode(payload.data.as_slice())
        .unwrap()
        .config
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_org_admin_creates_a_channel_and_only_its_members_use_it() {
    let s = setup();
    let node = Node::start_with(
        &s.net,
        &s.net.dir.path().join("ledger"),
        free_port(),
        "OrdererMSP",
        true,
    );
    let mut c = node.client().await;

    // A user who is not an admin cannot create the channel.
    let r = broadcast(
        &mut c,
        vec![creation_tx(&s, "org1channel", &[&s.org1_user])],
    )
    .await;
    assert_eq!(r[0].status, Status::BadRequest as i32, "{}", r[0].info);
    assert!(
        r[0].info.contains("not satisfied") || r[0].info.contains("policy"),
        "{}",
        r[0].info
    );
    // Neither can an admin of an org that is not in the new channel.
    let r = broadcast(
        &mut c,
        vec![creation_tx(&s, "org1channel", &[&s.org2_admin])],
    )
    .await;
    assert_eq!(r[0].status, Status::BadRequest as i32, "{}", r[0].info);
    assert!(fetch_block(
        &node,
        &s.org1_admin,
        "org1channel",
        0,
        Duration::from_millis(300)
    )
    .await
    .is_none());

    // The org's admin can.
    let r = broadcast(
        &mut c,
        vec![creation_tx(&s, "org1channel", &[&s.org1_admin])],
    )
    .await;
    assert_eq!(r[0].status, Status::Success as i32, "{}", r[0].info);
    let genesis = fetch_block(
        &node,
        &s.org1_admin,
        "org1channel",
        0,
        Duration::from_secs(10),
    )
    .await
    .expect("the new channel's genesis block");
    let cfg = config_of(&genesis);
    let app = &cfg.channel_group.as_ref().unwrap().groups["Application"];
    assert!(app.groups.contains_key("Org1MSP") && !app.groups.contains_key("Org2MSP"));

    // Its member org's users write and read it; the other org's users cannot.
    let r = broadcast(
        &mut c,
        (0..3u8)
            .map(|i| tx(&s.org1_user, "org1channel", vec![i]))
            .collect(),
    )
    .await;
    assert!(
        r.iter().all(|r| r.status == Status::Success as i32),
        "{:?}",
        r
    );
    let r = broadcast(
        &mut c,
        vec![tx(&s.org2_user, "org1channel", b"intruder".to_vec())],
    )
    .await;
    assert_eq!(r[0].status, Status::Forbidden as i32, "{}", r[0].info);
    let (blocks, st) = deliver(
        &mut c,
        &s.org1_user,
        "org1channel",
        seek(seek_oldest(), seek_newest()),
    )
    .await;
    assert_eq!(st, Some(Status::Success));
    let got: Vec<Vec<u8>> = blocks.iter().skip(1).flat_map(block_payloads).collect();
    assert_eq!(got.len(), 3);
    let (_, st) = deliver(
        &mut c,
        &s.org2_user,
        "org1channel",
        seek(seek_oldest(), seek_newest()),
    )
    .await;
    assert_eq!(st, Some(Status::Forbidden));
    // Creating it again is refused.
    let r = broadcast(
        &mut c,
        vec![creation_tx(&s, "org1channel", &[&s.org1_admin])],
    )
    .await;
    assert_ne!(r[0].status, Status::Success as i32);

    // A restart keeps the new channel.
    drop(c);
    let port = node.port;
    drop(node);
    let node = Node::start_with(
        &s.net,
        &s.net.dir.path().join("ledger"),
        port,
        "OrdererMSP",
        true,
    );
    let mut c = node.client().await;
    let (blocks2, st) = deliver(
        &mut c,
        &s.org1_user,
        "org1channel",
        seek(seek_oldest(), seek_newest()),
    )
    .await;
    assert_eq!(st, Some(Status::Success));
    assert_eq!(blocks2, blocks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_update_changing_max_message_count_changes_the_blocks_that_follow() {
    let s = setup();
    let node = Node::start_with(
        &s.net,
        &s.net.dir.path().join("ledger"),
        free_port(),
        "OrdererMSP",
        true,
    );
    let mut c = node.client().await;
    let genesis = fetch_block(&node, &s.orderer_admin, SYS, 0, Duration::from_secs(5))
        .await
        .unwrap();
    let current = config_of(&genesis);
    let original = current.channel_group.clone().unwrap();
    let mut updated = original.clone();
    let orderer = updated.groups.get_mut("Orderer").unwrap();
    let bs_value = orderer.values.get_mut("BatchSize").unwrap();
    let mut bs = BatchSize::decode(bs_value.value.as_slice()).unwrap();
    assert_eq!(bs.max_message_count, 10);
    bs.max_message_count = 3;
    bs_value.value = bs.encode_to_vec();
    let mut update = fabric_configtx::update::compute(&original, &updated).unwrap();
    update.channel_id = SYS.to_string();
    let cue = ConfigUpdateEnvelope {
        config_update: update.encode_to_vec(),
        signatures: vec![],
    };

    // Not signed by an orderer admin: refused.
    let r = broadcast(
        &mut c,
        vec![signed_update(SYS, cue.clone(), &[&s.org1_admin])],
    )
    .await;
    assert_ne!(r[0].status, Status::Success as i32);
    // Signed by the orderer org's admin: a config block of its own.
    let r = broadcast(&mut c, vec![signed_update(SYS, cue, &[&s.orderer_admin])]).await;
    assert_eq!(r[0].status, Status::Success as i32, "{}", r[0].info);
    let cfg_block = fetch_block(&node, &s.orderer_admin, SYS, 1, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(cfg_block.data.as_ref().unwrap().data.len(), 1);
    assert_eq!(config_of(&cfg_block).sequence, 1);
    assert_eq!(fabric_common::block::last_config_index(&cfg_block), Some(1));

    // 9 envelopes now make blocks of 3.
    let r = broadcast(
        &mut c,
        (0..9u8)
            .map(|i| tx(&s.orderer_admin, SYS, vec![i]))
            .collect(),
    )
    .await;
    assert!(
        r.iter().all(|r| r.status == Status::Success as i32),
        "{:?}",
        r
    );
    let (blocks, st) = deliver(
        &mut c,
        &s.orderer_admin,
        SYS,
        seek(seek_oldest(), seek_newest()),
    )
    .await;
    assert_eq!(st, Some(Status::Success));
    verify_chain_msp(&blocks, s.net.org.ca_cert_pem(), "OrdererMSP");
    let sizes: Vec<usize> = blocks[2..]
        .iter()
        .map(|b| b.data.as_ref().unwrap().data.len())
        .collect();
    assert_eq!(sizes, vec![3, 3, 3]);
    for b in &blocks[2..] {
        assert_eq!(
            fabric_common::block::last_config_index(b),
            Some(1),
            "LAST_CONFIG points at the config block"
        );
    }
    // The new config survives a restart.
    let port = node.port;
    drop(c);
    drop(node);
    let node = Node::start_with(
        &s.net,
        &s.net.dir.path().join("ledger"),
        port,
        "OrdererMSP",
        true,
    );
    let mut c = node.client().await;
    let r = broadcast(
        &mut c,
        (0..3u8)
            .map(|i| tx(&s.orderer_admin, SYS, vec![i]))
            .collect(),
    )
    .await;
    assert!(r.iter().all(|r| r.status == Status::Success as i32));
    let (tail, _) = deliver(
        &mut c,
        &s.orderer_admin,
        SYS,
        seek(seek_newest(), seek_newest()),
    )
    .await;
    assert_eq!(tail[0].data.as_ref().unwrap().data.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configtxgen_channel_tx_and_orderer_client_channel_create_like_peer_channel_create() {
    let s = setup();
    let node = Node::start_with(
        &s.net,
        &s.net.dir.path().join("ledger"),
        free_port(),
        "OrdererMSP",
        true,
    );
    let tx_file = s.dir.join("org1cli.tx");
    let out = std::process::Command::new(bin("configtxgen"))
        .arg("-configPath")
        .arg(&s.dir)
        .args([
            "-profile",
            "Org1Channel",
            "-channelID",
            "org1cli",
            "-outputCreateChannelTx",
        ])
        .arg(&tx_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let block_file = s.dir.join("org1cli.block");
    let client = |msp: &str| {
        std::process::Command::new(bin("orderer-client"))
            .args(["--server", &format!("127.0.0.1:{}", node.port)])
            .arg("--mspdir")
            .arg(s.dir.join("crypto/org1/users").join(msp).join("msp"))
            .args([
                "--mspid", "Org1MSP", "channel", "create", "-c", "org1cli", "-f",
            ])
            .arg(&tx_file)
            .arg("--output-block")
            .arg(&block_file)
            .output()
            .unwrap()
    };
    let user = client("User1@org1.example.com");
    assert!(
        !user.status.success(),
        "a user cannot create: {}",
        String::from_utf8_lossy(&user.stdout)
    );
    let admin = client("Admin@org1.example.com");
    assert!(
        admin.status.success(),
        "{}{}",
        String::from_utf8_lossy(&admin.stdout),
        String::from_utf8_lossy(&admin.stderr)
    );
    let genesis = Block::decode(std::fs::read(&block_file).unwrap().as_slice()).unwrap();
    assert_eq!(genesis.header.as_ref().unwrap().number, 0);
    let cfg = config_of(&genesis);
    assert!(cfg.channel_group.unwrap().groups["Application"]
        .groups
        .contains_key("Org1MSP"));

    // A stop between the system channel's creation block and the new ledger:
    // the node finishes the creation at start, with the same genesis block
    // (an empty ledger directory, as a crash mid-creation can leave, too).
    let mut node = node;
    node.kill9();
    // A crash before the new ledger's first append leaves neither block files
    // nor this orderer's checksums of them (`rust-orderer/<channel>/`).
    let chain_dir = s.net.dir.path().join("ledger/chains/org1cli");
    std::fs::remove_dir_all(&chain_dir).unwrap();
    std::fs::create_dir(&chain_dir).unwrap();
    let side_dir = s.net.dir.path().join("ledger/rust-orderer/org1cli");
    if side_dir.exists() {
        std::fs::remove_dir_all(&side_dir).unwrap();
    }
    let node = Node::start_with(
        &s.net,
        &s.net.dir.path().join("ledger"),
        free_port(),
        "OrdererMSP",
        true,
    );
    let again = fetch_block(&node, &s.org1_user, "org1cli", 0, Duration::from_secs(10))
        .await
        .expect("channel recreated at start");
    assert_eq!(again, genesis);
    let log = std::fs::read_to_string(&node.log).unwrap();
    assert!(log.contains("created the ledger of a channel"), "{log}");

    let mut c = node.client().await;
    let r = broadcast(&mut c, vec![tx(&s.org1_user, "org1cli", b"hello".to_vec())]).await;
    assert_eq!(r[0].status, Status::Success as i32, "{}", r[0].info);
}

/// Sets (or removes) the `RS_EXACTLY_ONCE` orderer capability of the system
/// channel through a config update signed by the orderer admin; returns the
/// number of the config block.
async fn set_exactly_once(s: &Setup, node: &Node, c: &mut Client, on: bool) -> u64 {
    use fabric_protos::common::{Capabilities, Capability};
    let (newest, _) = deliver(c, &s.orderer_admin, SYS, seek(seek_newest(), seek_newest())).await;
    let lc = fabric_common::block::last_config_index(&newest[0]).unwrap();
    let current = fetch_block(node, &s.orderer_admin, SYS, lc, Duration::from_secs(5))
        .await
        .unwrap();
    let original = config_of(&current).channel_group.unwrap();
    let mut updated = original.clone();
    let caps = updated
        .groups
        .get_mut("Orderer")
        .unwrap()
        .values
        .get_mut("Capabilities")
        .unwrap();
    let mut c_caps = Capabilities::decode(caps.value.as_slice()).unwrap();
    if on {
        c_caps
            .capabilities
            .insert(EXACTLY_ONCE.into(), Capability::default());
    } else {
        c_caps.capabilities.remove(EXACTLY_ONCE);
    }
    caps.value = c_caps.encode_to_vec();
    let mut update = fabric_configtx::update::compute(&original, &updated).unwrap();
    update.channel_id = SYS.to_string();
    let cue = ConfigUpdateEnvelope {
        config_update: update.encode_to_vec(),
        signatures: vec![],
    };
    let r = broadcast(c, vec![signed_update(SYS, cue, &[&s.orderer_admin])]).await;
    assert_eq!(r[0].status, Status::Success as i32, "{}", r[0].info);
    let (newest, _) = deliver(c, &s.orderer_admin, SYS, seek(seek_newest(), seek_newest())).await;
    let n = newest[0].header.as_ref().unwrap().number;
    assert_eq!(fabric_common::block::last_config_index(&newest[0]), Some(n));
    n
}

type Client = fabric_protos::orderer::atomic_broadcast_client::AtomicBroadcastClient<
    tonic::transport::Channel,
>;

/// Broadcasts `envs`, all must be answered SUCCESS.
async fn send_ok(c: &mut Client, envs: Vec<Envelope>) {
    let r = broadcast(c, envs).await;
    assert!(
        r.iter().all(|r| r.status == Status::Success as i32),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exactly_once_capability_takes_effect_at_the_config_block_that_sets_it() {
    let s = setup();
    let ledger = s.net.dir.path().join("ledger");
    let port = free_port();
    let node = Node::start_with(&s.net, &ledger, port, "OrdererMSP", true);
    let mut c = node.client().await;
    let a = tx(&s.orderer_admin, SYS, b"a".to_vec());
    // Off (as Fabric): every copy is ordered.
    send_ok(&mut c, vec![a.clone(), a.clone()]).await;
    let on_at = set_exactly_once(&s, &node, &mut c, true).await;
    // On from the next envelope; the window starts empty at the switch.
    send_ok(&mut c, vec![a.clone(), a.clone()]).await;
    // After a restart the window is rebuilt from the blocks after the switch.
    drop(c);
    drop(node);
    let node = Node::start_with(&s.net, &ledger, port, "OrdererMSP", true);
    let mut c = node.client().await;
    send_ok(&mut c, vec![a.clone()]).await;
    let off_at = set_exactly_once(&s, &node, &mut c, false).await;
    send_ok(&mut c, vec![a.clone()]).await;
    let (blocks, st) = deliver(
        &mut c,
        &s.orderer_admin,
        SYS,
        seek(seek_oldest(), seek_newest()),
    )
    .await;
    assert_eq!(st, Some(Status::Success));
    let copies = |from: u64, to: u64| {
        blocks[from as usize..to as usize]
            .iter()
            .flat_map(block_payloads)
            .filter(|p| p == b"a")
            .count()
    };
    assert_eq!(copies(1, on_at), 2, "before the switch: both copies");
    assert_eq!(
        copies(on_at + 1, off_at),
        1,
        "on: one copy, also across the restart"
    );
    assert_eq!(
        copies(off_at + 1, blocks.len() as u64),
        1,
        "off again: ordered"
    );
}
