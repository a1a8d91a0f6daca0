mod support;

use std::process::Command;

use fabric_protos::common::{Block, Envelope};
use prost::Message;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_configtxgen"))
}

#[test]
fn output_and_inspect_block_and_tx() {
    let tmp = tempfile::tempdir().unwrap();
    support::setup(tmp.path());
    let dir = tmp.path().to_str().unwrap();
    let block_path = tmp.path().join("out/genesis.block");

    let out = bin()
        .args([
            "-configPath",
            dir,
            "-profile",
            "DevKafkaSystem",
            "-channelID",
            "testchainid",
        ])
        .arg(format!("-outputBlock={}", block_path.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let block = Block::decode(std::fs::read(&block_path).unwrap().as_slice()).unwrap();
    assert_eq!(block.header.unwrap().number, 0);

    let out = bin()
        .arg("--inspectBlock")
        .arg(&block_path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        j["data"]["data"][0]["payload"]["header"]["channel_header"]["channel_id"],
        "testchainid"
    );

    // Using FABRIC_CFG_PATH instead of -configPath.
    let tx_path = tmp.path().join("channel.tx");
    let out = bin()
        .env("FABRIC_CFG_PATH", dir)
        .args([
            "-profile",
            "Org1Channel",
            "-channelID",
            "mychannel",
            "-outputCreateChannelTx",
        ])
        .arg(&tx_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Envelope::decode(std::fs::read(&tx_path).unwrap().as_slice()).unwrap();
    let out = bin()
        .arg("-inspectChannelCreateTx")
        .arg(&tx_path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        j["payload"]["data"]["config_update"]["channel_id"],
        "mychannel"
    );

    // Anchor peer update.
    let ap = tmp.path().join("anchors.tx");
    let out = bin()
        .args([
            "-configPath",
            dir,
            "-profile",
            "Org1Channel",
            "-channelID",
            "mychannel",
            "-asOrg",
            "Org1",
        ])
        .arg("-outputAnchorPeersUpdate")
        .arg(&ap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bin()
        .arg("-inspectChannelCreateTx")
        .arg(&ap)
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ws = &j["payload"]["data"]["config_update"]["write_set"]["groups"]["Application"]["groups"]
        ["Org1"];
    assert_eq!(ws["version"], "1");
    assert_eq!(
        ws["values"]["AnchorPeers"]["value"]["anchor_peers"][0]["port"],
        7051
    );
}

#[test]
fn print_org_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    support::setup(tmp.path());
    let dir = tmp.path().to_str().unwrap();
    let out = bin()
        .args(["-configPath", dir, "-printOrg", "OrdererOrg"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["mod_policy"], "Admins");
    assert_eq!(j["values"]["MSP"]["value"]["config"]["name"], "OrdererMSP");
    assert_eq!(
        j["values"]["Endpoints"]["value"]["addresses"][0],
        "orderer0.example.com:7050"
    );

    let out = bin()
        .args(["-configPath", dir, "-printOrg", "Nobody"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));

    // Outputs need a channel ID (Fabric v2 behaviour).
    let out = bin()
        .args([
            "-configPath",
            dir,
            "-profile",
            "DevKafkaSystem",
            "-outputBlock",
            "x.block",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Missing channelID"));

    let out = bin()
        .args([
            "-configPath",
            dir,
            "-channelID",
            "c",
            "-profile",
            "Missing",
            "-outputBlock",
            "x.block",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Could not find profile"));

    let out = bin().arg("-bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));

    let out = bin().arg("-version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("configtxgen:"));
}
