//! End-to-end: the real `orderer` with `General.BCCSP.Default: PKCS11`
//! (through Fabric's `ORDERER_GENERAL_BCCSP_*` variables), its key in a
//! SoftHSM2 token and no key file left in the MSP folder. Under `CI=true` a
//! missing SoftHSM2 fails the test.

mod support;

use std::time::{Duration, Instant};

use fabric_common::envelope::{seek_newest, seek_oldest};
use fabric_common::pkcs11::ski;
use fabric_common::softhsm::{msp_key_file, msp_public_point, token_or_skip, SoftHsm};
use fabric_protos::common::{Envelope, Status};
use fabric_protos::orderer::SeekInfo;
use prost::Message;
use support::*;

fn pkcs11_env<'a>(
    hsm: &'a SoftHsm,
    lib: &'a str,
    conf: &'a str,
    pin: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("SOFTHSM2_CONF", conf),
        ("ORDERER_GENERAL_BCCSP_DEFAULT", "PKCS11"),
        ("ORDERER_GENERAL_BCCSP_PKCS11_LIBRARY", lib),
        ("ORDERER_GENERAL_BCCSP_PKCS11_LABEL", &hsm.label),
        ("ORDERER_GENERAL_BCCSP_PKCS11_PIN", pin),
        ("ORDERER_GENERAL_BCCSP_PKCS11_HASH", "SHA2"),
        ("ORDERER_GENERAL_BCCSP_PKCS11_SECURITY", "256"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_are_signed_by_the_token_key_and_verify_against_the_orderer_cert() {
    let net = net(100, 10, 1 << 20);
    let Some(hsm) = token_or_skip(&net.dir.path().join("hsm"), "OrdererToken", "98765432") else {
        return;
    };
    // The operator's step: the key goes into the token under CKA_ID = SKI,
    // and leaves the MSP folder.
    let point = msp_public_point(&net.orderer_msp);
    let key_file = msp_key_file(&net.orderer_msp);
    hsm.import_key(&key_file, &ski(&point), "orderer").unwrap();
    std::fs::remove_file(&key_file).unwrap();

    let (lib, conf) = (
        hsm.library.display().to_string(),
        hsm.conf.display().to_string(),
    );

    // A wrong PIN stops the node at start, naming the setting.
    let mut bad = Node::start_env(
        &net,
        &net.dir.path().join("ledger-bad"),
        free_port(),
        "SampleOrg",
        true,
        &pkcs11_env(&hsm, &lib, &conf, "0000"),
        false,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = bad.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "orderer with a wrong PIN kept running"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let log = std::fs::read_to_string(&bad.log).unwrap();
    assert!(log.contains("BCCSP.PKCS11.Pin"), "{log}");

    let ledger = net.dir.path().join("ledger");
    let node = Node::start_env(
        &net,
        &ledger,
        free_port(),
        "SampleOrg",
        true,
        &pkcs11_env(&hsm, &lib, &conf, &hsm.pin),
        true,
    );
    let mut client = node.client().await;
    let envs: Vec<Envelope> = (0..50u32)
        .map(|i| tx(&net.client, CHANNEL, format!("hsm:{i}").into_bytes()))
        .collect();
    let resps = broadcast(&mut client, envs).await;
    assert!(resps.iter().all(|r| r.status == Status::Success as i32));
    let (blocks, status) = deliver(
        &mut client,
        &net.client,
        CHANNEL,
        SeekInfo {
            start: Some(seek_oldest()),
            stop: Some(seek_newest()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(status, Some(Status::Success));
    assert!(blocks.len() >= 6, "{} blocks", blocks.len());
    // Each block's signature verifies with the certificate it names ...
    verify_chain(&blocks, net.org.ca_cert_pem());
    // ... and that certificate is the orderer's signcert.
    let signcert = std::fs::read_dir(net.orderer_msp.join("signcerts"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let signcert = std::fs::read(signcert).unwrap();
    for b in &blocks[1..] {
        let md = fabric_common::block::metadata_at(b, fabric_common::block::SIGNATURES).unwrap();
        let shdr = fabric_protos::common::SignatureHeader::decode(
            md.signatures[0].signature_header.as_slice(),
        )
        .unwrap();
        let id = fabric_protos::msp::SerializedIdentity::decode(shdr.creator.as_slice()).unwrap();
        assert_eq!(id.id_bytes, signcert);
    }
    let log = std::fs::read_to_string(&node.log).unwrap();
    assert!(
        log.contains("local MSP signs with a PKCS#11 token key"),
        "{log}"
    );
    assert!(!net
        .orderer_msp
        .join("keystore")
        .read_dir()
        .unwrap()
        .any(|_| true));
}
