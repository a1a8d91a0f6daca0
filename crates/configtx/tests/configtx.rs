mod support;

use std::collections::BTreeSet;
use std::path::Path;

use base64::Engine;
use fabric_configtx::encoder::keys;
use fabric_configtx::{
    channel_creation_tx, genesis_block_from_profile, genesis_block_from_profile_with,
    inspect_block, inspect_envelope, new_channel_group, DevNetwork, GenesisFormat, GoDuration,
    TopLevel,
};
use fabric_protos::common::{
    msp_role, policy, signature_policy, Block, Capabilities, ChannelHeader, ConfigEnvelope,
    ConfigGroup, ConfigUpdate, ConfigUpdateEnvelope, Consortium, Envelope, ImplicitMetaPolicy,
    LastConfig, Metadata, MspRole, OrdererAddresses, OrdererBlockMetadata, Payload, Policy,
    SignatureHeader, SignaturePolicyEnvelope,
};
use fabric_protos::msp::{FabricMspConfig, MspConfig};
use fabric_protos::orderer::{
    BatchSize, BatchTimeout, ChannelRestrictions, ConsensusType, KafkaBrokers,
};
use fabric_protos::peer::{AcLs, AnchorPeers};
use prost::Message;
use sha2::{Digest, Sha256};

fn keys_of<V>(m: &std::collections::BTreeMap<String, V>) -> BTreeSet<&str> {
    m.keys().map(String::as_str).collect()
}

fn set<'a>(v: &[&'a str]) -> BTreeSet<&'a str> {
    v.iter().copied().collect()
}

fn load(dir: &Path) -> TopLevel {
    TopLevel::load(dir).unwrap()
}

#[test]
fn yaml_anchors_merge_keys_and_units() {
    let tmp = tempfile::tempdir().unwrap();
    support::setup(tmp.path());
    let top = load(tmp.path());
    assert_eq!(top.organizations.len(), 2);
    assert_eq!(top.capabilities["Channel"].get("V1_3"), Some(&false));

    let p = top.profile("DevKafkaSystem").unwrap();
    // Merged from &ChannelDefaults.
    assert_eq!(keys_of(&p.policies), set(&["Admins", "Readers", "Writers"]));
    assert_eq!(p.capabilities.get("V1_4_3"), Some(&true));
    let o = p.orderer.as_ref().unwrap();
    assert_eq!(o.orderer_type, "kafka");
    assert_eq!(o.batch_timeout, GoDuration::from_secs(2));
    assert_eq!(o.batch_size.max_message_count, 10);
    assert_eq!(o.batch_size.absolute_max_bytes, 99 * 1024 * 1024);
    assert_eq!(o.batch_size.preferred_max_bytes, 512 * 1024);
    assert_eq!(
        o.kafka_brokers.as_deref(),
        Some(&["kafka0:9092".to_string(), "kafka1:9092".to_string()][..])
    );
    assert_eq!(o.organizations[0].name, "OrdererOrg");
    // Relative MSPDir resolved against the configtx.yaml directory.
    let abs = std::path::absolute(tmp.path()).unwrap();
    assert_eq!(o.organizations[0].msp_dir, abs.join("crypto/orderer/msp"));
    assert_eq!(o.organizations[0].msp_type, "bccsp");
    assert_eq!(
        p.consortiums.as_ref().unwrap()["SampleConsortium"].organizations[0].id,
        "Org1MSP"
    );

    // Explicit keys override merged ones, also inside sequences.
    let fast = top.profile("FastKafka").unwrap();
    let fo = fast.orderer.as_ref().unwrap();
    assert_eq!(fo.batch_timeout, GoDuration::from_millis(250));
    assert_eq!(fo.batch_size.max_message_count, 10);
    assert_eq!(fo.organizations[0].name, "RenamedOrdererOrg");
    assert_eq!(fo.organizations[0].id, "OrdererMSP");
    assert_eq!(fo.organizations[0].policies.len(), 3);

    let app = top.profile("Org1Channel").unwrap();
    let a = app.application.as_ref().unwrap();
    assert_eq!(app.consortium, "SampleConsortium");
    assert_eq!(a.acls["peer/Propose"], "/Channel/Application/Writers");
    assert_eq!(a.organizations[0].anchor_peers[0].port, 7051);
    assert!(app.orderer.is_none());

    assert!(top
        .profile("Nope")
        .unwrap_err()
        .to_string()
        .contains("Could not find profile"));
}

#[test]
fn case_insensitive_keys_and_inline_yaml() {
    let yaml = "profiles:\n  p:\n    orderer:\n      orderertype: SOLO\n";
    let top = TopLevel::parse(yaml, Path::new("/base")).unwrap();
    let err = top.profile("p").unwrap_err();
    assert!(err.to_string().contains("unknown orderer type: SOLO"));
    let yaml = "Profiles:\n  p:\n    Orderer:\n      ordererType: solo\n      batchsize: {absolutemaxbytes: 1 KB}\n";
    let p = TopLevel::parse(yaml, Path::new("/base"))
        .unwrap()
        .profile("p")
        .unwrap();
    assert_eq!(p.orderer.unwrap().batch_size.absolute_max_bytes, 1024);
}

#[test]
fn orderer_defaults_like_genesisconfig() {
    let tmp = tempfile::tempdir().unwrap();
    support::setup(tmp.path());
    let p = load(tmp.path()).profile("LegacyDefaults").unwrap();
    let o = p.orderer.as_ref().unwrap();
    assert_eq!(o.orderer_type, "solo");
    // Fabric v2.3+ (FAB-18054) fills no default orderer address.
    assert_eq!(o.addresses.as_deref().unwrap_or_default(), &[] as &[String]);
    assert_eq!(o.batch_timeout.to_string(), "2s");
    assert_eq!(o.batch_size.max_message_count, 500);
    assert_eq!(o.batch_size.absolute_max_bytes, 10 * 1024 * 1024);
    assert_eq!(o.batch_size.preferred_max_bytes, 2 * 1024 * 1024);
    assert_eq!(o.organizations[0].admin_principal, "Role.ADMIN");

    let yaml = "Profiles:\n  k:\n    Orderer:\n      OrdererType: kafka\n";
    let k = TopLevel::parse(yaml, Path::new("/x"))
        .unwrap()
        .profile("k")
        .unwrap();
    assert_eq!(
        k.orderer.unwrap().kafka_brokers.unwrap(),
        vec!["127.0.0.1:9092".to_string()]
    );
}

fn policy_of(g: &ConfigGroup, name: &str) -> Policy {
    g.policies[name].policy.clone().unwrap()
}

fn implicit(p: &Policy) -> ImplicitMetaPolicy {
    assert_eq!(p.r#type, policy::PolicyType::ImplicitMeta as i32);
    ImplicitMetaPolicy::decode(p.value.as_slice()).unwrap()
}

fn signature(p: &Policy) -> SignaturePolicyEnvelope {
    assert_eq!(p.r#type, policy::PolicyType::Signature as i32);
    SignaturePolicyEnvelope::decode(p.value.as_slice()).unwrap()
}

fn roles(e: &SignaturePolicyEnvelope) -> Vec<(String, i32)> {
    e.identities
        .iter()
        .map(|p| {
            let r = MspRole::decode(p.principal.as_slice()).unwrap();
            (r.msp_identifier, r.role)
        })
        .collect()
}

#[test]
fn encoder_tree_shape_for_kafka_system_channel() {
    let tmp = tempfile::tempdir().unwrap();
    let (orderer_msp, org1_msp) = support::setup(tmp.path());
    let profile = load(tmp.path()).profile("DevKafkaSystem").unwrap();
    let root = new_channel_group(&profile).unwrap();

    // Channel
    assert_eq!(root.mod_policy, "Admins");
    assert_eq!(root.version, 0);
    assert_eq!(keys_of(&root.groups), set(&["Consortiums", "Orderer"]));
    assert_eq!(
        keys_of(&root.values),
        set(&[
            "BlockDataHashingStructure",
            "Capabilities",
            "HashingAlgorithm",
            "OrdererAddresses"
        ])
    );
    assert_eq!(
        keys_of(&root.policies),
        set(&["Admins", "Readers", "Writers"])
    );
    for (k, v) in &root.values {
        let expect = if k == "OrdererAddresses" {
            "/Channel/Orderer/Admins"
        } else {
            "Admins"
        };
        assert_eq!(v.mod_policy, expect, "{k}");
        assert_eq!(v.version, 0);
    }
    assert_eq!(root.values["HashingAlgorithm"].value, b"\x0a\x06SHA256");
    assert_eq!(
        root.values["BlockDataHashingStructure"].value,
        b"\x08\xff\xff\xff\xff\x0f"
    );
    assert_eq!(
        OrdererAddresses::decode(root.values["OrdererAddresses"].value.as_slice())
            .unwrap()
            .addresses,
        vec!["orderer0.example.com:7050"]
    );
    // Only enabled capabilities, Go map-entry encoding.
    assert_eq!(
        root.values["Capabilities"].value,
        b"\x0a\x0a\x0a\x06V1_4_3\x12\x00"
    );
    let caps = Capabilities::decode(root.values["Capabilities"].value.as_slice()).unwrap();
    assert_eq!(keys_of(&caps.capabilities), set(&["V1_4_3"]));
    let admins = implicit(&policy_of(&root, "Admins"));
    assert_eq!((admins.sub_policy.as_str(), admins.rule), ("Admins", 2));
    for p in root.policies.values() {
        assert_eq!(p.mod_policy, "Admins");
    }

    // Orderer
    let ord = &root.groups["Orderer"];
    assert_eq!(ord.mod_policy, "Admins");
    assert_eq!(
        keys_of(&ord.values),
        set(&[
            "BatchSize",
            "BatchTimeout",
            "Capabilities",
            "ChannelRestrictions",
            "ConsensusType",
            "KafkaBrokers"
        ])
    );
    assert_eq!(
        keys_of(&ord.policies),
        set(&["Admins", "BlockValidation", "Readers", "Writers"])
    );
    assert!(ord.values.values().all(|v| v.mod_policy == "Admins"));
    let bv = implicit(&policy_of(ord, "BlockValidation"));
    assert_eq!((bv.sub_policy.as_str(), bv.rule), ("Writers", 0));
    let bs = BatchSize::decode(ord.values["BatchSize"].value.as_slice()).unwrap();
    assert_eq!(
        (
            bs.max_message_count,
            bs.absolute_max_bytes,
            bs.preferred_max_bytes
        ),
        (10, 103_809_024, 524_288)
    );
    assert_eq!(
        BatchTimeout::decode(ord.values["BatchTimeout"].value.as_slice())
            .unwrap()
            .timeout,
        "2s"
    );
    assert_eq!(
        ChannelRestrictions::decode(ord.values["ChannelRestrictions"].value.as_slice())
            .unwrap()
            .max_count,
        0
    );
    assert!(ord.values["ChannelRestrictions"].value.is_empty());
    let ct = ConsensusType::decode(ord.values["ConsensusType"].value.as_slice()).unwrap();
    assert_eq!(
        (ct.r#type.as_str(), ct.metadata.len(), ct.state),
        ("kafka", 0, 0)
    );
    assert_eq!(ord.values["ConsensusType"].value, b"\x0a\x05kafka");
    assert_eq!(
        KafkaBrokers::decode(ord.values["KafkaBrokers"].value.as_slice())
            .unwrap()
            .brokers,
        vec!["kafka0:9092", "kafka1:9092"]
    );
    assert_eq!(keys_of(&ord.groups), set(&["OrdererOrg"]));
    let oorg = &ord.groups["OrdererOrg"];
    assert_eq!(oorg.mod_policy, "Admins");
    assert_eq!(keys_of(&oorg.values), set(&["Endpoints", "MSP"]));
    assert_eq!(
        keys_of(&oorg.policies),
        set(&["Admins", "Readers", "Writers"])
    );
    assert!(oorg.groups.is_empty());
    assert_eq!(
        OrdererAddresses::decode(oorg.values["Endpoints"].value.as_slice())
            .unwrap()
            .addresses,
        vec!["orderer0.example.com:7050"]
    );
    let oadm = signature(&policy_of(oorg, "Admins"));
    assert_eq!(
        roles(&oadm),
        vec![(
            "OrdererMSP".to_string(),
            msp_role::MspRoleType::Admin as i32
        )]
    );

    // MSP value
    let msp = MspConfig::decode(oorg.values["MSP"].value.as_slice()).unwrap();
    assert_eq!(msp.r#type, 0);
    let f = FabricMspConfig::decode(msp.config.as_slice()).unwrap();
    assert_eq!(f.name, "OrdererMSP");
    assert_eq!(f.root_certs, vec![orderer_msp.ca_pem.as_bytes().to_vec()]);
    assert_eq!(f.admins, vec![orderer_msp.admin_pem.as_bytes().to_vec()]);
    assert_eq!(
        f.tls_root_certs,
        vec![orderer_msp.tls_ca_pem.as_bytes().to_vec()]
    );
    assert!(
        f.intermediate_certs.is_empty()
            && f.revocation_list.is_empty()
            && f.signing_identity.is_none()
    );
    let cc = f.crypto_config.unwrap();
    assert_eq!(
        (
            cc.signature_hash_family.as_str(),
            cc.identity_identifier_hash_function.as_str()
        ),
        ("SHA2", "SHA256")
    );
    let nous = f.fabric_node_ous.unwrap();
    assert!(nous.enable);
    assert_eq!(
        nous.orderer_ou_identifier
            .as_ref()
            .unwrap()
            .organizational_unit_identifier,
        "orderer"
    );
    assert_eq!(
        nous.client_ou_identifier.as_ref().unwrap().certificate,
        orderer_msp.ca_pem.as_bytes()
    );

    // Consortiums
    let cons = &root.groups["Consortiums"];
    assert_eq!(cons.mod_policy, "/Channel/Orderer/Admins");
    assert!(cons.values.is_empty());
    assert_eq!(keys_of(&cons.policies), set(&["Admins"]));
    assert_eq!(
        cons.policies["Admins"].mod_policy,
        "/Channel/Orderer/Admins"
    );
    let accept_all = signature(&policy_of(cons, "Admins"));
    assert!(accept_all.identities.is_empty());
    assert_eq!(policy_of(cons, "Admins").value, b"\x12\x02\x12\x00");
    let sc = &cons.groups["SampleConsortium"];
    assert_eq!(sc.mod_policy, "/Channel/Orderer/Admins");
    assert_eq!(keys_of(&sc.values), set(&["ChannelCreationPolicy"]));
    assert_eq!(
        sc.values["ChannelCreationPolicy"].mod_policy,
        "/Channel/Orderer/Admins"
    );
    let ccp = Policy::decode(sc.values["ChannelCreationPolicy"].value.as_slice()).unwrap();
    let ccp = implicit(&ccp);
    assert_eq!((ccp.sub_policy.as_str(), ccp.rule), ("Admins", 0));
    assert!(sc.policies.is_empty());
    let org1 = &sc.groups["Org1"];
    assert_eq!(org1.mod_policy, "Admins");
    // Consortium members carry no anchor peers.
    assert_eq!(keys_of(&org1.values), set(&["MSP"]));
    let readers = signature(&policy_of(org1, "Readers"));
    assert_eq!(
        roles(&readers)
            .into_iter()
            .map(|(_, r)| r)
            .collect::<Vec<_>>(),
        vec![
            msp_role::MspRoleType::Admin as i32,
            msp_role::MspRoleType::Peer as i32,
            msp_role::MspRoleType::Client as i32
        ]
    );
    match readers.rule.unwrap().r#type.unwrap() {
        signature_policy::Type::NOutOf(n) => assert_eq!((n.n, n.rules.len()), (1, 3)),
        other => panic!("{other:?}"),
    }
    let f1 = FabricMspConfig::decode(
        MspConfig::decode(org1.values["MSP"].value.as_slice())
            .unwrap()
            .config
            .as_slice(),
    )
    .unwrap();
    assert_eq!(f1.root_certs, vec![org1_msp.ca_pem.as_bytes().to_vec()]);
}

#[test]
fn legacy_default_policies() {
    let tmp = tempfile::tempdir().unwrap();
    support::setup(tmp.path());
    let profile = load(tmp.path()).profile("LegacyDefaults").unwrap();
    let root = new_channel_group(&profile).unwrap();
    assert_eq!(
        keys_of(&root.policies),
        set(&["Admins", "Readers", "Writers"])
    );
    assert!(!root.values.contains_key("Capabilities"));
    let ord = &root.groups["Orderer"];
    assert_eq!(
        keys_of(&ord.policies),
        set(&["Admins", "BlockValidation", "Readers", "Writers"])
    );
    assert!(!ord.values.contains_key("KafkaBrokers"));
    assert_eq!(
        ConsensusType::decode(ord.values["ConsensusType"].value.as_slice())
            .unwrap()
            .r#type,
        "solo"
    );
    // Default org policies: admin role unless AdminPrincipal says otherwise.
    let oadm = signature(&policy_of(&ord.groups["OrdererOrg"], "Admins"));
    assert_eq!(roles(&oadm)[0].1, msp_role::MspRoleType::Admin as i32);
    let org1 = &root.groups["Consortiums"].groups["Legacy"].groups["Org1"];
    assert_eq!(
        roles(&signature(&policy_of(org1, "Admins")))[0].1,
        msp_role::MspRoleType::Member as i32
    );
    assert_eq!(
        roles(&signature(&policy_of(org1, "Writers")))[0].1,
        msp_role::MspRoleType::Member as i32
    );
}

#[test]
fn v2_policy_requirements() {
    let tmp = tempfile::tempdir().unwrap();
    support::setup(tmp.path());
    let top = load(tmp.path());
    let mut p = top.profile("DevKafkaSystem").unwrap();
    p.orderer
        .as_mut()
        .unwrap()
        .policies
        .remove("BlockValidation");
    let e = new_channel_group(&p).unwrap_err().to_string();
    assert!(e.contains("no BlockValidation policy defined"), "{e}");
    let mut p = top.profile("DevKafkaSystem").unwrap();
    p.policies.remove("Writers");
    assert!(new_channel_group(&p)
        .unwrap_err()
        .to_string()
        .contains("no Writers policy defined"));
    let mut p = top.profile("DevKafkaSystem").unwrap();
    p.policies.get_mut("Admins").unwrap().rule = "MOST Admins".into();
    assert!(new_channel_group(&p)
        .unwrap_err()
        .to_string()
        .contains("invalid implicit meta policy rule"));
}

fn unpack_genesis(block: &Block) -> (ChannelHeader, SignatureHeader, ConfigEnvelope) {
    let env = Envelope::decode(block.data.as_ref().unwrap().data[0].as_slice()).unwrap();
    assert!(env.signature.is_empty());
    let payload = Payload::decode(env.payload.as_slice()).unwrap();
    let header = payload.header.unwrap();
    let ch = ChannelHeader::decode(header.channel_header.as_slice()).unwrap();
    let sh = SignatureHeader::decode(header.signature_header.as_slice()).unwrap();
    (
        ch,
        sh,
        ConfigEnvelope::decode(payload.data.as_slice()).unwrap(),
    )
}

#[test]
fn genesis_block_fields_and_hashes() {
    let tmp = tempfile::tempdir().unwrap();
    support::setup(tmp.path());
    let profile = load(tmp.path()).profile("DevKafkaSystem").unwrap();
    let block = genesis_block_from_profile(&profile, "testchainid").unwrap();
    let header = block.header.as_ref().unwrap();
    assert_eq!(header.number, 0);
    assert!(header.previous_hash.is_empty());
    let data = &block.data.as_ref().unwrap().data;
    assert_eq!(data.len(), 1);
    assert_eq!(header.data_hash, Sha256::digest(&data[0]).to_vec());
    assert_eq!(fabric_common::block::header_hash(header).len(), 32);

    let md = &block.metadata.as_ref().unwrap().metadata;
    assert_eq!(md.len(), 5);
    let lc = Metadata::decode(md[1].as_slice()).unwrap();
    assert_eq!(LastConfig::decode(lc.value.as_slice()).unwrap().index, 0);
    let sig = Metadata::decode(md[0].as_slice()).unwrap();
    assert!(sig.signatures.is_empty());
    assert_eq!(
        OrdererBlockMetadata::decode(sig.value.as_slice())
            .unwrap()
            .last_config,
        Some(LastConfig { index: 0 })
    );
    assert!(md[2].is_empty() && md[3].is_empty() && md[4].is_empty());

    let (ch, sh, ce) = unpack_genesis(&block);
    assert_eq!(ch.r#type, 1);
    assert_eq!(ch.version, 1);
    assert_eq!(ch.channel_id, "testchainid");
    assert_eq!(ch.epoch, 0);
    assert!(ch.timestamp.as_ref().unwrap().seconds > 1_600_000_000);
    assert_eq!(ch.timestamp.as_ref().unwrap().nanos, 0);
    assert!(sh.creator.is_empty());
    assert_eq!(sh.nonce.len(), 24);
    assert_eq!(
        ch.tx_id,
        fabric_common::envelope::compute_txid(&sh.nonce, &[])
    );
    assert!(ce.last_update.is_none());
    let config = ce.config.unwrap();
    assert_eq!(config.sequence, 0);
    assert_eq!(
        config.channel_group.unwrap(),
        new_channel_group(&profile).unwrap()
    );

    let v14 =
        genesis_block_from_profile_with(&profile, "testchainid", GenesisFormat::V1_4).unwrap();
    let md = &v14.metadata.as_ref().unwrap().metadata;
    assert!(md[0].is_empty());
    assert_eq!(md.len(), 5);

    // Application profiles cannot bootstrap (no orderer section).
    let app = load(tmp.path()).profile("Org1Channel").unwrap();
    assert!(genesis_block_from_profile(&app, "c")
        .unwrap_err()
        .to_string()
        .contains("missing orderer section"));
}

#[test]
fn inspect_block_json_reflects_block() {
    let tmp = tempfile::tempdir().unwrap();
    let (orderer_msp, _) = support::setup(tmp.path());
    let profile = load(tmp.path()).profile("DevKafkaSystem").unwrap();
    let block = genesis_block_from_profile(&profile, "testchainid").unwrap();
    let text = inspect_block(&block.encode_to_vec()).unwrap();
    assert!(text.starts_with("{\n\t\"data\": {"), "{}", &text[..40]);
    assert!(text.ends_with("}\n"));
    let j: serde_json::Value = serde_json::from_str(&text).unwrap();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);

    let header = block.header.as_ref().unwrap();
    assert_eq!(j["header"]["number"], "0");
    assert_eq!(j["header"]["data_hash"], b64(&header.data_hash));
    assert_eq!(j["header"]["previous_hash"], "");
    let md = j["metadata"]["metadata"].as_array().unwrap();
    assert_eq!(md.len(), 5);
    assert_eq!(md[0], b64(&block.metadata.as_ref().unwrap().metadata[0]));
    assert_eq!(md[2], "");

    let env = &j["data"]["data"][0];
    assert_eq!(env["signature"], "");
    let hdr = &env["payload"]["header"];
    assert_eq!(hdr["channel_header"]["channel_id"], "testchainid");
    assert_eq!(hdr["channel_header"]["type"], 1);
    assert_eq!(hdr["channel_header"]["version"], 1);
    assert_eq!(hdr["channel_header"]["epoch"], "0");
    assert!(hdr["channel_header"]["extension"].is_null());
    assert!(hdr["channel_header"]["timestamp"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert!(hdr["signature_header"]["creator"].is_null());
    let (ch, sh, _) = unpack_genesis(&block);
    assert_eq!(hdr["channel_header"]["tx_id"], ch.tx_id);
    assert_eq!(hdr["signature_header"]["nonce"], b64(&sh.nonce));

    let data = &env["payload"]["data"];
    assert!(data["last_update"].is_null());
    let cfg = &data["config"];
    assert_eq!(cfg["sequence"], "0");
    let root = &cfg["channel_group"];
    assert_eq!(root["mod_policy"], "Admins");
    assert_eq!(root["version"], "0");
    assert_eq!(
        root["values"]["HashingAlgorithm"]["value"]["name"],
        "SHA256"
    );
    assert_eq!(
        root["values"]["BlockDataHashingStructure"]["value"]["width"],
        4294967295u64
    );
    assert_eq!(
        root["values"]["OrdererAddresses"]["mod_policy"],
        "/Channel/Orderer/Admins"
    );
    assert_eq!(
        root["values"]["Capabilities"]["value"]["capabilities"]["V1_4_3"],
        serde_json::json!({})
    );
    assert_eq!(root["policies"]["Admins"]["policy"]["type"], 3);
    assert_eq!(
        root["policies"]["Admins"]["policy"]["value"]["rule"],
        "MAJORITY"
    );
    assert_eq!(
        root["policies"]["Admins"]["policy"]["value"]["sub_policy"],
        "Admins"
    );

    let ord = &root["groups"]["Orderer"];
    assert_eq!(ord["values"]["BatchSize"]["value"]["max_message_count"], 10);
    assert_eq!(
        ord["values"]["BatchSize"]["value"]["absolute_max_bytes"],
        103809024
    );
    assert_eq!(ord["values"]["BatchTimeout"]["value"]["timeout"], "2s");
    assert_eq!(ord["values"]["ConsensusType"]["value"]["type"], "kafka");
    assert_eq!(
        ord["values"]["ConsensusType"]["value"]["state"],
        "STATE_NORMAL"
    );
    assert!(ord["values"]["ConsensusType"]["value"]["metadata"].is_null());
    assert!(ord["values"]["ChannelRestrictions"]["value"].is_null());
    assert_eq!(
        ord["values"]["KafkaBrokers"]["value"]["brokers"][1],
        "kafka1:9092"
    );
    let oorg = &ord["groups"]["OrdererOrg"];
    assert_eq!(
        oorg["values"]["Endpoints"]["value"]["addresses"][0],
        "orderer0.example.com:7050"
    );
    let mspj = &oorg["values"]["MSP"]["value"];
    assert_eq!(mspj["type"], 0);
    assert_eq!(mspj["config"]["name"], "OrdererMSP");
    assert_eq!(
        mspj["config"]["root_certs"][0],
        b64(orderer_msp.ca_pem.as_bytes())
    );
    assert!(mspj["config"]["signing_identity"].is_null());
    assert_eq!(mspj["config"]["intermediate_certs"], serde_json::json!([]));
    assert_eq!(
        mspj["config"]["crypto_config"]["signature_hash_family"],
        "SHA2"
    );
    assert_eq!(mspj["config"]["fabric_node_ous"]["enable"], true);
    assert_eq!(
        mspj["config"]["fabric_node_ous"]["peer_ou_identifier"]["organizational_unit_identifier"],
        "peer"
    );
    let adm = &oorg["policies"]["Admins"]["policy"];
    assert_eq!(adm["type"], 1);
    assert_eq!(
        adm["value"]["identities"][0]["principal_classification"],
        "ROLE"
    );
    assert_eq!(
        adm["value"]["identities"][0]["principal"]["msp_identifier"],
        "OrdererMSP"
    );
    assert_eq!(adm["value"]["identities"][0]["principal"]["role"], "ADMIN");
    assert_eq!(adm["value"]["rule"]["n_out_of"]["n"], 1);
    assert_eq!(adm["value"]["rule"]["n_out_of"]["rules"][0]["signed_by"], 0);
    assert_eq!(adm["value"]["version"], 0);

    let cons = &root["groups"]["Consortiums"];
    assert_eq!(cons["mod_policy"], "/Channel/Orderer/Admins");
    assert_eq!(
        cons["policies"]["Admins"]["policy"]["value"]["rule"]["n_out_of"]["n"],
        0
    );
    assert_eq!(
        cons["policies"]["Admins"]["policy"]["value"]["rule"]["n_out_of"]["rules"],
        serde_json::json!([])
    );
    let ccp = &cons["groups"]["SampleConsortium"]["values"]["ChannelCreationPolicy"]["value"];
    assert_eq!(ccp["type"], 3);
    assert_eq!(ccp["value"]["rule"], "ANY");
    assert_eq!(
        cons["groups"]["SampleConsortium"]["groups"]["Org1"]["values"]["MSP"]["value"]["config"]
            ["name"],
        "Org1MSP"
    );

    // Every byte of the config tree is accounted for: re-encoding the
    // decoded JSON's certificates gives back the files.
    let certs = mspj["config"]["admins"].as_array().unwrap();
    assert_eq!(certs.len(), 1);
    let der = base64::engine::general_purpose::STANDARD
        .decode(certs[0].as_str().unwrap())
        .unwrap();
    assert_eq!(der, orderer_msp.admin_pem.as_bytes());
}

#[test]
fn channel_creation_tx_shape() {
    let tmp = tempfile::tempdir().unwrap();
    support::setup(tmp.path());
    let top = load(tmp.path());
    let profile = top.profile("Org1Channel").unwrap();
    let env = channel_creation_tx("mychannel", &profile, None).unwrap();
    assert!(env.signature.is_empty());
    let payload = Payload::decode(env.payload.as_slice()).unwrap();
    let header = payload.header.unwrap();
    assert!(header.signature_header.is_empty());
    let ch = ChannelHeader::decode(header.channel_header.as_slice()).unwrap();
    assert_eq!((ch.r#type, ch.version, ch.epoch), (2, 0, 0));
    assert_eq!(ch.channel_id, "mychannel");
    assert!(ch.tx_id.is_empty());
    let cue = ConfigUpdateEnvelope::decode(payload.data.as_slice()).unwrap();
    assert!(cue.signatures.is_empty());
    let cu = ConfigUpdate::decode(cue.config_update.as_slice()).unwrap();
    assert_eq!(cu.channel_id, "mychannel");
    assert!(cu.isolated_data.is_empty());

    let rs = cu.read_set.unwrap();
    assert_eq!(rs.version, 0);
    assert_eq!(rs.mod_policy, "");
    assert!(rs.policies.is_empty());
    assert_eq!(keys_of(&rs.values), set(&["Consortium"]));
    assert_eq!(rs.values["Consortium"], Default::default());
    assert_eq!(keys_of(&rs.groups), set(&["Application"]));
    let rapp = &rs.groups["Application"];
    assert_eq!((rapp.version, rapp.mod_policy.as_str()), (0, ""));
    assert!(rapp.values.is_empty() && rapp.policies.is_empty());
    assert_eq!(keys_of(&rapp.groups), set(&["Org1"]));
    assert_eq!(rapp.groups["Org1"], ConfigGroup::default());

    let ws = cu.write_set.unwrap();
    assert_eq!((ws.version, ws.mod_policy.as_str()), (0, ""));
    assert!(ws.policies.is_empty());
    assert_eq!(keys_of(&ws.values), set(&["Consortium"]));
    let cv = &ws.values["Consortium"];
    assert_eq!((cv.version, cv.mod_policy.as_str()), (0, ""));
    assert_eq!(
        Consortium::decode(cv.value.as_slice()).unwrap().name,
        "SampleConsortium"
    );
    let wapp = &ws.groups["Application"];
    assert_eq!((wapp.version, wapp.mod_policy.as_str()), (1, "Admins"));
    assert_eq!(
        keys_of(&wapp.policies),
        set(&["Admins", "Readers", "Writers"])
    );
    assert!(wapp
        .policies
        .values()
        .all(|p| p.version == 0 && p.mod_policy == "Admins" && p.policy.is_some()));
    assert_eq!(keys_of(&wapp.values), set(&["ACLs", "Capabilities"]));
    let acls = AcLs::decode(wapp.values["ACLs"].value.as_slice()).unwrap();
    assert_eq!(
        acls.acls["qscc/GetChainInfo"].policy_ref,
        "/Channel/Application/Readers"
    );
    assert_eq!(wapp.groups["Org1"], ConfigGroup::default());

    // The channel's full definition (anchor peers included) as the orderer
    // will build it from the system channel consortium + this update.
    let full = new_channel_group(&profile).unwrap();
    let app_org = &full.groups["Application"].groups["Org1"];
    let anchors = AnchorPeers::decode(app_org.values["AnchorPeers"].value.as_slice()).unwrap();
    assert_eq!(anchors.anchor_peers[0].host, "peer0.org1.example.com");
    assert_eq!(anchors.anchor_peers[0].port, 7051);

    let text = inspect_envelope(&env.encode_to_vec()).unwrap();
    let j: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cuj = &j["payload"]["data"]["config_update"];
    assert_eq!(cuj["channel_id"], "mychannel");
    assert!(cuj["read_set"]["values"]["Consortium"]["value"].is_null());
    assert_eq!(
        cuj["write_set"]["values"]["Consortium"]["value"]["name"],
        "SampleConsortium"
    );
    assert_eq!(cuj["write_set"]["groups"]["Application"]["version"], "1");
    assert_eq!(
        cuj["write_set"]["groups"]["Application"]["values"]["ACLs"]["value"]["acls"]
            ["peer/Propose"]["policy_ref"],
        "/Channel/Application/Writers"
    );
    assert_eq!(j["payload"]["data"]["signatures"], serde_json::json!([]));
    assert!(j["payload"]["header"]["signature_header"].is_null());

    // A profile without Consortium or Application is refused.
    let sys = top.profile("DevKafkaSystem").unwrap();
    assert!(channel_creation_tx("c", &sys, None).is_err());

    // With the system channel as base profile.
    let env2 = channel_creation_tx("mychannel", &profile, Some(&sys)).unwrap();
    let p2 = Payload::decode(env2.payload.as_slice()).unwrap();
    let cu2 = ConfigUpdate::decode(
        ConfigUpdateEnvelope::decode(p2.data.as_slice())
            .unwrap()
            .config_update
            .as_slice(),
    )
    .unwrap();
    let ws2 = cu2.write_set.unwrap();
    assert_eq!(ws2.groups["Application"].version, 1);
    // The app org differs from the consortium org by its anchor peers.
    assert!(ws2.groups["Application"].groups["Org1"]
        .values
        .contains_key("AnchorPeers"));
    assert!(!ws2.groups.contains_key(keys::CONSORTIUMS_GROUP));
}

#[test]
fn dev_network_profiles() {
    let tmp = tempfile::tempdir().unwrap();
    let msp = support::make_msp(&tmp.path().join("msp"), "example.com");
    let mut dev = DevNetwork::new(&msp.dir);
    let sys = dev.system_channel_profile();
    let block = genesis_block_from_profile(&sys, "testchainid").unwrap();
    let (_, _, ce) = unpack_genesis(&block);
    let root = ce.config.unwrap().channel_group.unwrap();
    assert_eq!(keys_of(&root.groups), set(&["Consortiums", "Orderer"]));
    let ord = &root.groups["Orderer"];
    assert_eq!(
        ConsensusType::decode(ord.values["ConsensusType"].value.as_slice())
            .unwrap()
            .r#type,
        "solo"
    );
    assert!(!ord.values.contains_key("KafkaBrokers"));
    let bs = BatchSize::decode(ord.values["BatchSize"].value.as_slice()).unwrap();
    assert_eq!(
        (
            bs.max_message_count,
            bs.absolute_max_bytes,
            bs.preferred_max_bytes
        ),
        (500, 10 << 20, 2 << 20)
    );
    assert!(root.groups["Consortiums"].groups["SampleConsortium"]
        .groups
        .contains_key("SampleOrg"));
    assert_eq!(
        OrdererAddresses::decode(root.values["OrdererAddresses"].value.as_slice())
            .unwrap()
            .addresses,
        vec!["127.0.0.1:7050"]
    );

    dev.orderer_type = "kafka".into();
    let block = genesis_block_from_profile(&dev.system_channel_profile(), "testchainid").unwrap();
    let (_, _, ce) = unpack_genesis(&block);
    let root = ce.config.unwrap().channel_group.unwrap();
    assert!(root.groups["Orderer"].values.contains_key("KafkaBrokers"));

    let tx = channel_creation_tx("mychannel", &dev.application_channel_profile(), None).unwrap();
    assert!(!tx.payload.is_empty());
}

#[test]
fn an_orderer_capability_fabric_does_not_know_is_written_as_given() {
    // The orderer's exactly-once window is switched on by the orderer
    // capability RS_EXACTLY_ONCE; configtxgen passes capability names through.
    let tmp = tempfile::tempdir().unwrap();
    support::setup(tmp.path());
    let path = tmp.path().join("configtx.yaml");
    let yaml = std::fs::read_to_string(&path).unwrap().replace(
        "  Orderer: &OrdererCaps\n    V1_4_2: true\n",
        "  Orderer: &OrdererCaps\n    V1_4_2: true\n    RS_EXACTLY_ONCE: true\n    RS_OFF: false\n",
    );
    assert!(yaml.contains("RS_EXACTLY_ONCE"));
    std::fs::write(&path, yaml).unwrap();
    let profile = load(tmp.path()).profile("DevKafkaSystem").unwrap();
    let root = new_channel_group(&profile).unwrap();
    let caps = Capabilities::decode(
        root.groups["Orderer"].values["Capabilities"]
            .value
            .as_slice(),
    )
    .unwrap();
    assert_eq!(
        keys_of(&caps.capabilities),
        set(&["RS_EXACTLY_ONCE", "V1_4_2"])
    );
    // Only the Orderer group has it.
    let chan = Capabilities::decode(root.values["Capabilities"].value.as_slice()).unwrap();
    assert!(!chan.capabilities.contains_key("RS_EXACTLY_ONCE"));
}
