//! Config updates and channel creation on real certificates: an orderer
//! org, two application orgs in one consortium and an outsider whose CA no
//! config trusts, each with admin and client identities (NodeOUs).

use std::collections::BTreeMap;

use fabric_common::devcrypto::{DevOrg, NodeOu};
use fabric_common::envelope::{create_signed_envelope, parse_envelope, EnvelopeOptions};
use fabric_common::msp::LocalSigner;
use fabric_configtx::{
    channel_creation_config_update_envelope, genesis_block_from_profile, gowire, Application,
    Consortium as ConsortiumDef, DevNetwork, Organization, Policies, Policy as PolicyDef, Profile,
};
use fabric_msp::{signed_data_from_envelope, PolicyManager};
use fabric_protos::common::{
    Config, ConfigEnvelope, ConfigGroup, ConfigSignature, ConfigUpdate, ConfigUpdateEnvelope,
    ConfigValue, Consortium, Envelope, HeaderType, Payload,
};
use fabric_protos::orderer::{BatchSize, ConsensusType};
use prost::Message;

use super::*;

const SYS: &str = "syschannel";

struct Net {
    _dir: tempfile::TempDir,
    orderer_org: DevOrg,
    org1: DevOrg,
    org2: DevOrg,
    outsider: DevOrg,
    orderer: LocalSigner,
    orderer_admin: LocalSigner,
    orderer_client: LocalSigner,
    admin1: LocalSigner,
    client1: LocalSigner,
    admin2: LocalSigner,
    client2: LocalSigner,
    evil_admin: LocalSigner,
}

fn signer(org: &DevOrg, name: &str, ou: NodeOu) -> LocalSigner {
    LocalSigner::load(&org.issue(name, ou).unwrap(), &org.mspid).unwrap()
}

fn net() -> Net {
    let dir = tempfile::tempdir().unwrap();
    let mk = |sub: &str, msp: &str, domain: &str| {
        DevOrg::create(&dir.path().join(sub), msp, domain).unwrap()
    };
    let orderer_org = mk("ordererorg", "OrdererMSP", "example.com");
    let org1 = mk("org1", "Org1MSP", "org1.example.com");
    let org2 = mk("org2", "Org2MSP", "org2.example.com");
    let outsider = mk("evil", "EvilMSP", "evil.example.com");
    Net {
        orderer: signer(&orderer_org, "orderer.example.com", NodeOu::Orderer),
        orderer_admin: signer(&orderer_org, "Admin@example.com", NodeOu::Admin),
        orderer_client: signer(&orderer_org, "User1@example.com", NodeOu::Client),
        admin1: signer(&org1, "Admin@org1.example.com", NodeOu::Admin),
        client1: signer(&org1, "User1@org1.example.com", NodeOu::Client),
        admin2: signer(&org2, "Admin@org2.example.com", NodeOu::Admin),
        client2: signer(&org2, "User1@org2.example.com", NodeOu::Client),
        evil_admin: signer(&outsider, "Admin@evil.example.com", NodeOu::Admin),
        _dir: dir,
        orderer_org,
        org1,
        org2,
        outsider,
    }
}

fn org_def(org: &DevOrg, name: &str) -> Organization {
    let id = &org.mspid;
    let mut policies = Policies::new();
    policies.insert(
        "Readers".into(),
        PolicyDef::signature(&format!("OR('{id}.member')")),
    );
    policies.insert(
        "Writers".into(),
        PolicyDef::signature(&format!("OR('{id}.member')")),
    );
    policies.insert(
        "Admins".into(),
        PolicyDef::signature(&format!("OR('{id}.admin')")),
    );
    Organization {
        name: name.into(),
        id: id.clone(),
        msp_dir: org.msp_dir(),
        msp_type: "bccsp".into(),
        policies,
        admin_principal: "Role.ADMIN".into(),
        ..Default::default()
    }
}

fn group_policies(orderer: bool) -> Policies {
    let mut p = Policies::new();
    p.insert("Readers".into(), PolicyDef::implicit_meta("ANY Readers"));
    p.insert("Writers".into(), PolicyDef::implicit_meta("ANY Writers"));
    p.insert("Admins".into(), PolicyDef::implicit_meta("MAJORITY Admins"));
    if orderer {
        p.insert(
            "BlockValidation".into(),
            PolicyDef::implicit_meta("ANY Writers"),
        );
    }
    p
}

fn caps(names: &[&str]) -> BTreeMap<String, bool> {
    names.iter().map(|n| (n.to_string(), true)).collect()
}

/// The system channel profile: Kafka, OrdererOrg, SampleConsortium = {Org1, Org2}.
fn system_profile(n: &Net, orderer_caps: &[&str], max_channels: u64) -> Profile {
    let dev = DevNetwork::new(n.orderer_org.msp_dir());
    let mut p = dev.system_channel_profile();
    let o = p.orderer.as_mut().unwrap();
    o.orderer_type = "kafka".into();
    o.organizations = vec![org_def(&n.orderer_org, "OrdererOrg")];
    o.policies = group_policies(true);
    o.capabilities = caps(orderer_caps);
    o.max_channels = max_channels;
    p.policies = group_policies(false);
    let mut cons = BTreeMap::new();
    cons.insert(
        "SampleConsortium".to_string(),
        ConsortiumDef {
            organizations: vec![org_def(&n.org1, "Org1"), org_def(&n.org2, "Org2")],
        },
    );
    p.consortiums = Some(cons);
    p
}

fn config_of_envelope(env: &Envelope) -> Config {
    let payload = Payload::decode(env.payload.as_slice()).unwrap();
    ConfigEnvelope::decode(payload.data.as_slice())
        .unwrap()
        .config
        .unwrap()
}

/// A config as the orderer reads it from a genesis block.
fn config_of_profile(p: &Profile, channel_id: &str) -> Config {
    let block = genesis_block_from_profile(p, channel_id).unwrap();
    config_of_envelope(&Envelope::decode(block.data.unwrap().data[0].as_slice()).unwrap())
}

fn system_config(n: &Net) -> Config {
    config_of_profile(&system_profile(n, &["V1_4_2"], 0), SYS)
}

/// What `peer channel update` / `peer channel signconfigtx` add.
fn add_signature(cue: &mut ConfigUpdateEnvelope, s: &LocalSigner) {
    let signature_header = s.new_signature_header().encode_to_vec();
    let mut msg = signature_header.clone();
    msg.extend_from_slice(&cue.config_update);
    cue.signatures.push(ConfigSignature {
        signature: s.sign(&msg),
        signature_header,
    });
}

fn signed(mut cue: ConfigUpdateEnvelope, signers: &[&LocalSigner]) -> ConfigUpdateEnvelope {
    for s in signers {
        add_signature(&mut cue, s);
    }
    cue
}

/// A CONFIG_UPDATE envelope, signed by the first signer like `peer` does.
fn update_tx(channel_id: &str, cue: &ConfigUpdateEnvelope, by: Option<&LocalSigner>) -> Envelope {
    create_signed_envelope(
        HeaderType::ConfigUpdate,
        channel_id,
        by,
        cue.encode_to_vec(),
        &EnvelopeOptions::default(),
    )
}

fn group(c: &Config) -> &ConfigGroup {
    c.channel_group.as_ref().unwrap()
}

fn batch_size(c: &Config) -> BatchSize {
    BatchSize::decode(
        group(c).groups["Orderer"].values["BatchSize"]
            .value
            .as_slice(),
    )
    .unwrap()
}

/// The unsigned update changing `Orderer/BatchSize.MaxMessageCount`, as
/// `configtxlator compute_update` makes it.
fn batch_size_update(c: &Config, channel_id: &str, count: u32) -> ConfigUpdateEnvelope {
    let mut updated = group(c).clone();
    let bs = BatchSize {
        max_message_count: count,
        ..batch_size(c)
    };
    updated
        .groups
        .get_mut("Orderer")
        .unwrap()
        .values
        .get_mut("BatchSize")
        .unwrap()
        .value = bs.encode_to_vec();
    update_envelope(group(c), &updated, channel_id)
}

fn update_envelope(
    original: &ConfigGroup,
    updated: &ConfigGroup,
    channel_id: &str,
) -> ConfigUpdateEnvelope {
    let mut cu = fabric_configtx::update::compute(original, updated).unwrap();
    cu.channel_id = channel_id.into();
    raw_update(&cu)
}

fn raw_update(cu: &ConfigUpdate) -> ConfigUpdateEnvelope {
    ConfigUpdateEnvelope {
        config_update: gowire::config_update(cu),
        signatures: vec![],
    }
}

fn decode_update(cue: &ConfigUpdateEnvelope) -> ConfigUpdate {
    ConfigUpdate::decode(cue.config_update.as_slice()).unwrap()
}

fn pm(c: &Config) -> PolicyManager {
    PolicyManager::from_config(c).unwrap()
}

fn policy_failure(e: &ConfigUpdateError) -> (&str, &str) {
    match e {
        ConfigUpdateError::PolicyNotSatisfied { key, policy, .. } => (key, policy),
        other => panic!("expected a policy failure, got {other:?}"),
    }
}

const ORDERER_ADMINS_FAILURE: &str = "error authorizing update: error validating DeltaSet: policy for [Value]  /Channel/Orderer/BatchSize not satisfied: implicit policy evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 of the 'Admins' sub-policies to be satisfied";

#[test]
fn config_map_keys_and_round_trip() {
    let n = net();
    let c = system_config(&n);
    let map = map_config(c.channel_group.as_ref(), "Channel").unwrap();
    for k in [
        "[Group]  /Channel",
        "[Group]  /Channel/Orderer",
        "[Group]  /Channel/Orderer/OrdererOrg",
        "[Value]  /Channel/Orderer/BatchSize",
        "[Value]  /Channel/OrdererAddresses",
        "[Policy] /Channel/Orderer/Admins",
        "[Policy] /Channel/Admins",
        "[Value]  /Channel/Consortiums/SampleConsortium/ChannelCreationPolicy",
        "[Group]  /Channel/Consortiums/SampleConsortium/Org2",
    ] {
        assert!(map.contains_key(k), "{k}");
    }
    let bs = &map["[Value]  /Channel/Orderer/BatchSize"];
    assert_eq!(bs.key, "BatchSize");
    assert_eq!(bs.path, ["Channel", "Orderer"]);
    assert_eq!(map["[Group]  /Channel"].path, Vec::<String>::new());
    assert_eq!(&config_map_to_group(&map, "Channel").unwrap(), group(&c));

    assert_eq!(map_config(None, "Channel").unwrap().len(), 0);
    let mut bad = group(&c).clone();
    bad.values.insert("bad key".into(), ConfigValue::default());
    assert_eq!(
        map_config(Some(&bad), "Channel").unwrap_err(),
        "illegal characters in key: [Value]  : config ID 'bad key' contains illegal characters"
    );
    assert!(validate_config_id("..").is_err());
    assert!(validate_config_id("").is_err());
    assert!(validate_config_id(&"a".repeat(250)).is_err());
    validate_config_id("Org1.example-com").unwrap();
}

#[test]
fn channel_ids() {
    for ok in ["mychannel", "a", "my.channel-2", &"a".repeat(249)] {
        validate_channel_id(ok).unwrap();
    }
    assert_eq!(
        validate_channel_id("").unwrap_err(),
        "channel ID illegal, cannot be empty"
    );
    assert_eq!(
        validate_channel_id(&"a".repeat(250)).unwrap_err(),
        "channel ID illegal, cannot be longer than 249"
    );
    for bad in [
        "MyChannel",
        "my_channel",
        "1channel",
        "-a",
        ".a",
        "a b",
        "é",
    ] {
        assert_eq!(
            validate_channel_id(bad).unwrap_err(),
            format!("'{bad}' contains illegal characters")
        );
    }
}

#[test]
fn batch_size_update_signed_by_the_orderer_admin_is_accepted() {
    let n = net();
    let c = system_config(&n);
    assert_eq!(batch_size(&c).max_message_count, 500);
    let cue = signed(batch_size_update(&c, SYS, 10), &[&n.orderer_admin]);
    let new = validate_update(&c, SYS, &cue, &pm(&c)).unwrap();
    assert_eq!(new.sequence, c.sequence + 1);
    assert_eq!(batch_size(&new).max_message_count, 10);
    assert_eq!(batch_size(&new).absolute_max_bytes, 10 * 1024 * 1024);
    // Only BatchSize changed, and its version went up by one.
    let mut expected = group(&c).clone();
    let v = expected
        .groups
        .get_mut("Orderer")
        .unwrap()
        .values
        .get_mut("BatchSize")
        .unwrap();
    v.version += 1;
    v.value = group(&new).groups["Orderer"].values["BatchSize"]
        .value
        .clone();
    assert_eq!(group(&new), &expected);

    // Extra signatures (even an outsider's) do not hurt.
    let cue2 = signed(
        batch_size_update(&c, SYS, 10),
        &[&n.evil_admin, &n.client1, &n.orderer_admin],
    );
    assert_eq!(validate_update(&c, SYS, &cue2, &pm(&c)).unwrap(), new);

    // The orderer's CONFIG envelope and Fabric's Validate on it.
    let tx = update_tx(SYS, &cue, Some(&n.orderer_admin));
    let v = ConfigValidator::new(SYS, &c).unwrap();
    let proposed = v.propose_config_update(&tx, &pm(&c)).unwrap();
    assert_eq!(proposed.config.as_ref(), Some(&new));
    assert_eq!(proposed.last_update.as_ref(), Some(&tx));
    v.validate(&proposed, &pm(&c)).unwrap();
    let config_tx = config_envelope_tx(SYS, new.clone(), tx.clone(), &n.orderer);
    let parsed = parse_envelope(&config_tx).unwrap();
    assert_eq!(parsed.channel_header.r#type, HeaderType::Config as i32);
    assert_eq!(parsed.channel_header.channel_id, SYS);
    assert_eq!(parsed.channel_header.version, 0);
    assert_eq!(parsed.channel_header.epoch, 0);
    assert!(parsed.channel_header.tx_id.is_empty());
    assert_eq!(parsed.signature_header.creator, n.orderer.creator());
    let env = ConfigEnvelope::decode(parsed.payload.data.as_slice()).unwrap();
    assert_eq!(env, proposed);
    v.validate(&env, &pm(&c)).unwrap();
    // The orderer's signature satisfies the system channel's orderer writers.
    pm(&c)
        .evaluate(
            "/Channel/Orderer/Writers",
            &signed_data_from_envelope(&config_tx).unwrap(),
        )
        .unwrap();

    // A config that the last update does not produce, or a wrong sequence.
    let mut forged = env.clone();
    let fc = forged.config.as_mut().unwrap();
    fc.channel_group
        .as_mut()
        .unwrap()
        .values
        .get_mut("OrdererAddresses")
        .unwrap()
        .value = b"x".to_vec();
    assert_eq!(
        v.validate(&forged, &pm(&c)).unwrap_err().to_string(),
        "ConfigEnvelope LastUpdate did not produce the supplied config result"
    );
    let mut seq = env.clone();
    seq.config.as_mut().unwrap().sequence = 5;
    assert_eq!(
        v.validate(&seq, &pm(&c)).unwrap_err().to_string(),
        "config currently at sequence 0, cannot validate config at sequence 5"
    );
    // Not a CONFIG_UPDATE envelope.
    let e = v.propose_config_update(&config_tx, &pm(&c)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "error converting envelope to config update: invalid type CONFIG, expected CONFIG_UPDATE"
    );
}

#[test]
fn batch_size_update_without_the_orderer_admin_is_rejected() {
    let n = net();
    let c = system_config(&n);
    let p = pm(&c);
    for who in [
        vec![&n.orderer_client],
        vec![&n.orderer],
        vec![&n.admin1, &n.admin2],
        vec![&n.evil_admin],
        vec![],
    ] {
        let cue = signed(batch_size_update(&c, SYS, 10), &who);
        let e = validate_update(&c, SYS, &cue, &p).unwrap_err();
        assert_eq!(e.to_string(), ORDERER_ADMINS_FAILURE);
        assert_eq!(
            policy_failure(&e),
            (
                "[Value]  /Channel/Orderer/BatchSize",
                "/Channel/Orderer/Admins"
            )
        );
    }
    // A signature over other bytes does not count.
    let mut cue = signed(batch_size_update(&c, SYS, 10), &[&n.orderer_admin]);
    cue.signatures[0].signature = n.orderer_admin.sign(b"something else");
    let e = validate_update(&c, SYS, &cue, &p).unwrap_err();
    assert_eq!(e.to_string(), ORDERER_ADMINS_FAILURE);
    assert!(e.explain().contains("signature for identity 0 is invalid"));
}

#[test]
fn stale_replayed_and_empty_updates_are_rejected() {
    let n = net();
    let c = system_config(&n);
    let cue = signed(batch_size_update(&c, SYS, 10), &[&n.orderer_admin]);
    let new = validate_update(&c, SYS, &cue, &pm(&c)).unwrap();

    // The same update again: BatchSize is already at version 1.
    let e = validate_update(&new, SYS, &cue, &pm(&new)).unwrap_err();
    assert_eq!(e.to_string(), "error authorizing update: error validating DeltaSet: attempt to set key [Value]  /Channel/Orderer/BatchSize to version 1, but key is at version 1");

    // A read set naming versions the config is not at.
    let mut cu = decode_update(&cue);
    cu.read_set
        .as_mut()
        .unwrap()
        .groups
        .get_mut("Orderer")
        .unwrap()
        .version = 3;
    let e = validate_update(
        &c,
        SYS,
        &signed(raw_update(&cu), &[&n.orderer_admin]),
        &pm(&c),
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "error authorizing update: error validating ReadSet: proposed update requires that key [Group]  /Channel/Orderer be at version 3, but it is currently at version 0");
    assert!(matches!(e, ConfigUpdateError::Invalid(_)));

    // A stale read set after a config change that bumped the Orderer group.
    let mut updated = group(&c).clone();
    updated
        .groups
        .get_mut("Orderer")
        .unwrap()
        .values
        .remove("KafkaBrokers");
    let rm = signed(
        update_envelope(group(&c), &updated, SYS),
        &[&n.orderer_admin],
    );
    let after_rm = validate_update(&c, SYS, &rm, &pm(&c)).unwrap();
    assert_eq!(group(&after_rm).groups["Orderer"].version, 1);
    let e = validate_update(&after_rm, SYS, &rm, &pm(&after_rm)).unwrap_err();
    assert_eq!(e.to_string(), "error authorizing update: error validating ReadSet: proposed update requires that key [Group]  /Channel/Orderer be at version 0, but it is currently at version 1");

    // A read set element the config does not have.
    let mut cu = decode_update(&cue);
    cu.read_set
        .as_mut()
        .unwrap()
        .values
        .insert("Nope".into(), ConfigValue::default());
    let e = validate_update(&c, SYS, &raw_update(&cu), &pm(&c)).unwrap_err();
    assert_eq!(e.to_string(), "error authorizing update: error validating ReadSet: existing config does not contain element for [Value]  /Channel/Nope but was in the read set");

    // Write set = read set: nothing changes.
    let mut cu = decode_update(&cue);
    cu.write_set = cu.read_set.clone();
    let e = validate_update(
        &c,
        SYS,
        &signed(raw_update(&cu), &[&n.orderer_admin]),
        &pm(&c),
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "error authorizing update: error validating DeltaSet: delta set was empty -- update would have no effect");
    let empty = raw_update(&ConfigUpdate {
        channel_id: SYS.into(),
        ..Default::default()
    });
    let e = validate_update(&c, SYS, &empty, &pm(&c)).unwrap_err();
    assert_eq!(e.to_string(), "error authorizing update: error validating DeltaSet: delta set was empty -- update would have no effect");

    // Another channel's update.
    let other = signed(batch_size_update(&c, "other", 10), &[&n.orderer_admin]);
    let e = validate_update(&c, SYS, &other, &pm(&c)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "error authorizing update: ConfigUpdate for channel 'other' but envelope for channel 'syschannel'"
    );
    // Garbage.
    let garbage = ConfigUpdateEnvelope {
        config_update: vec![0xff, 0xff, 0xff],
        signatures: vec![],
    };
    let e = validate_update(&c, SYS, &garbage, &pm(&c)).unwrap_err();
    assert!(
        e.to_string().starts_with("error authorizing update: "),
        "{e}"
    );
}

#[test]
fn version_and_mod_policy_rules_of_the_delta_set() {
    let n = net();
    let c = system_config(&n);
    let p = pm(&c);
    let base = decode_update(&batch_size_update(&c, SYS, 10));
    let with = |f: &dyn Fn(&mut ConfigGroup)| {
        let mut cu = base.clone();
        f(cu.write_set
            .as_mut()
            .unwrap()
            .groups
            .get_mut("Orderer")
            .unwrap());
        signed(raw_update(&cu), &[&n.orderer_admin])
    };
    // Skipping a version.
    let cue = with(&|o| o.values.get_mut("BatchSize").unwrap().version = 2);
    assert_eq!(
        validate_update(&c, SYS, &cue, &p).unwrap_err().to_string(),
        "error authorizing update: error validating DeltaSet: attempt to set key [Value]  /Channel/Orderer/BatchSize to version 2, but key is at version 0"
    );
    // A new element must start at version 0.
    let cue = with(&|o| {
        o.values.insert(
            "Extra".into(),
            ConfigValue {
                version: 1,
                value: vec![],
                mod_policy: "Admins".into(),
            },
        );
    });
    assert_eq!(
        validate_update(&c, SYS, &cue, &p).unwrap_err().to_string(),
        "error authorizing update: error validating DeltaSet: attempted to set key [Value]  /Channel/Orderer/Extra to version 1, but key does not exist"
    );
    // The new element's mod policy must be set and well formed.
    let cue = with(&|o| o.values.get_mut("BatchSize").unwrap().mod_policy.clear());
    assert_eq!(
        validate_update(&c, SYS, &cue, &p).unwrap_err().to_string(),
        "error authorizing update: error validating DeltaSet: invalid mod_policy for element [Value]  /Channel/Orderer/BatchSize: mod_policy not set"
    );
    let cue =
        with(&|o| o.values.get_mut("BatchSize").unwrap().mod_policy = "/Channel//Admins".into());
    assert_eq!(
        validate_update(&c, SYS, &cue, &p).unwrap_err().to_string(),
        "error authorizing update: error validating DeltaSet: invalid mod_policy for element [Value]  /Channel/Orderer/BatchSize: path element at 1 is invalid: config ID illegal, cannot be empty"
    );
    // A new element in a group whose version does not change is not part of
    // the result (the group keeps its members), as in Fabric.
    let cue = with(&|o| {
        o.values.insert(
            "Extra".into(),
            ConfigValue {
                version: 0,
                value: vec![1],
                mod_policy: "Admins".into(),
            },
        );
    });
    let new = validate_update(&c, SYS, &cue, &p).unwrap();
    assert!(!group(&new).groups["Orderer"].values.contains_key("Extra"));
    // The existing element's mod policy decides, not the new one's.
    let cue =
        with(&|o| o.values.get_mut("BatchSize").unwrap().mod_policy = "/Channel/Readers".into());
    let new = validate_update(&c, SYS, &cue, &p).unwrap();
    assert_eq!(
        group(&new).groups["Orderer"].values["BatchSize"].mod_policy,
        "/Channel/Readers"
    );
    let e = validate_update(
        &new,
        SYS,
        &signed(batch_size_update(&new, SYS, 20), &[&n.orderer_admin]),
        &pm(&new),
    );
    // /Channel/Readers of the system channel = ANY Readers of {Orderer, Consortiums}:
    // the Consortiums group has no Readers policy, the orderer admin is an OrdererOrg member.
    e.unwrap();
}

#[test]
fn group_changes_add_and_remove_members_under_the_group_mod_policy() {
    let n = net();
    let c = system_config(&n);
    let mut updated = group(&c).clone();
    let orderer = updated.groups.get_mut("Orderer").unwrap();
    orderer.values.remove("KafkaBrokers");
    let readers = orderer.policies["Readers"].clone();
    orderer.policies.insert("Extra".into(), readers);
    let cue = update_envelope(group(&c), &updated, SYS);
    let cu = decode_update(&cue);
    assert_eq!(cu.write_set.as_ref().unwrap().groups["Orderer"].version, 1);

    // The Orderer group's own mod policy (Admins, relative to the group).
    let e = validate_update(&c, SYS, &signed(cue.clone(), &[&n.admin1]), &pm(&c)).unwrap_err();
    assert_eq!(
        policy_failure(&e),
        ("[Group]  /Channel/Orderer", "/Channel/Orderer/Admins")
    );
    let new = validate_update(&c, SYS, &signed(cue, &[&n.orderer_admin]), &pm(&c)).unwrap();
    let o = &group(&new).groups["Orderer"];
    assert_eq!(o.version, 1);
    assert!(!o.values.contains_key("KafkaBrokers"));
    assert_eq!(o.policies["Extra"].version, 0);
    assert_eq!(o.policies["Extra"].policy, o.policies["Readers"].policy);
    assert_eq!(o.groups, group(&c).groups["Orderer"].groups);
    assert_eq!(
        group(&new).groups["Consortiums"],
        group(&c).groups["Consortiums"]
    );

    // A group removed from its parent disappears with everything below it;
    // the root's mod policy is /Channel/Admins (MAJORITY of Orderer and
    // Consortiums admins; the Consortiums Admins policy accepts anyone).
    let mut updated = group(&c).clone();
    updated.groups.remove("Consortiums");
    let cue = update_envelope(group(&c), &updated, SYS);
    let e = validate_update(&c, SYS, &signed(cue.clone(), &[&n.admin1]), &pm(&c)).unwrap_err();
    assert_eq!(policy_failure(&e), ("[Group]  /Channel", "/Channel/Admins"));
    let new = validate_update(&c, SYS, &signed(cue, &[&n.orderer_admin]), &pm(&c)).unwrap();
    assert!(!group(&new).groups.contains_key("Consortiums"));
    assert_eq!(group(&new).version, 1);
}

#[test]
fn empty_mod_policies_are_upgraded_when_the_orderer_has_capabilities() {
    let n = net();
    let mut c = system_config(&n);
    c.channel_group
        .as_mut()
        .unwrap()
        .values
        .get_mut("HashingAlgorithm")
        .unwrap()
        .mod_policy
        .clear();
    let cue = signed(batch_size_update(&c, SYS, 7), &[&n.orderer_admin]);
    let new = validate_update(&c, SYS, &cue, &pm(&c)).unwrap();
    assert_eq!(group(&new).values["HashingAlgorithm"].mod_policy, "Admins");
    // Without orderer capabilities they stay empty.
    let mut c2 = c.clone();
    c2.channel_group
        .as_mut()
        .unwrap()
        .groups
        .get_mut("Orderer")
        .unwrap()
        .values
        .remove("Capabilities");
    let cue = signed(batch_size_update(&c2, SYS, 7), &[&n.orderer_admin]);
    let new = validate_update(&c2, SYS, &cue, &pm(&c2)).unwrap();
    assert_eq!(group(&new).values["HashingAlgorithm"].mod_policy, "");
}

// ---------------------------------------------------------------- creation

fn app_profile(consortium: &str, orgs: &[(&DevOrg, &str)]) -> Profile {
    Profile {
        consortium: consortium.into(),
        application: Some(Application {
            organizations: orgs.iter().map(|(o, name)| org_def(o, name)).collect(),
            capabilities: caps(&["V1_4_2"]),
            policies: group_policies(false),
            acls: Default::default(),
        }),
        orderer: None,
        consortiums: None,
        capabilities: caps(&["V1_4_3"]),
        policies: group_policies(false),
    }
}

/// `configtxgen -outputCreateChannelTx` + `peer channel create` signing.
fn creation_tx(
    channel_id: &str,
    profile: &Profile,
    base: Option<&Profile>,
    signers: &[&LocalSigner],
) -> Envelope {
    let cue = channel_creation_config_update_envelope(channel_id, profile, base).unwrap();
    update_tx(channel_id, &signed(cue, signers), signers.first().copied())
}

fn one_org(n: &Net) -> Profile {
    app_profile("SampleConsortium", &[(&n.org1, "Org1")])
}

#[test]
fn channel_creation_by_an_org_admin() {
    let n = net();
    let sys = system_config(&n);
    let tx = creation_tx("mychannel", &one_org(&n), None, &[&n.admin1]);
    let (id, config) = new_channel_config(&sys, &tx, 1).unwrap();
    assert_eq!(id, "mychannel");
    assert_eq!(config.sequence, 1);
    let g = group(&config);
    // The system channel's Orderer group, values and policies.
    assert_eq!(g.groups["Orderer"], group(&sys).groups["Orderer"]);
    for k in [
        "HashingAlgorithm",
        "BlockDataHashingStructure",
        "OrdererAddresses",
        "Capabilities",
    ] {
        assert_eq!(g.values[k], group(&sys).values[k], "{k}");
    }
    assert_eq!(g.policies, group(&sys).policies);
    assert_eq!(g.mod_policy, group(&sys).mod_policy);
    assert!(!g.groups.contains_key("Consortiums"));
    let cons = &g.values["Consortium"];
    assert_eq!(
        Consortium::decode(cons.value.as_slice()).unwrap().name,
        "SampleConsortium"
    );
    assert_eq!((cons.version, cons.mod_policy.as_str()), (0, "Admins"));
    // The Application group as the request writes it, with the
    // consortium's definition of Org1.
    let app = &g.groups["Application"];
    assert_eq!(app.version, 1);
    assert_eq!(app.mod_policy, "Admins");
    assert_eq!(app.groups.keys().collect::<Vec<_>>(), ["Org1"]);
    assert_eq!(
        app.groups["Org1"],
        group(&sys).groups["Consortiums"].groups["SampleConsortium"].groups["Org1"]
    );
    assert_eq!(
        app.policies.keys().collect::<Vec<_>>(),
        ["Admins", "Readers", "Writers"]
    );
    assert!(app.values.contains_key("Capabilities"));

    // Who may use the new channel.
    let p = pm(&config);
    let sd = |s: &LocalSigner| {
        let env = create_signed_envelope(
            HeaderType::EndorserTransaction,
            "mychannel",
            Some(s),
            b"tx".to_vec(),
            &EnvelopeOptions::default(),
        );
        signed_data_from_envelope(&env).unwrap()
    };
    for s in [&n.client1, &n.admin1] {
        p.evaluate("/Channel/Writers", &sd(s)).unwrap();
        p.evaluate("/Channel/Readers", &sd(s)).unwrap();
    }
    for s in [&n.client2, &n.admin2, &n.evil_admin] {
        assert!(p.evaluate("/Channel/Writers", &sd(s)).is_err());
        assert!(p.evaluate("/Channel/Readers", &sd(s)).is_err());
    }

    // The orderer's envelopes and the new channel's block 0.
    let (inner, outer) = channel_creation_txs(SYS, &id, config.clone(), tx.clone(), &n.orderer);
    let po = parse_envelope(&outer).unwrap();
    assert_eq!(
        po.channel_header.r#type,
        HeaderType::OrdererTransaction as i32
    );
    assert_eq!(po.channel_header.channel_id, SYS);
    assert_eq!(unwrap_orderer_transaction(&outer).unwrap(), inner);
    let pi = parse_envelope(&inner).unwrap();
    assert_eq!(pi.channel_header.r#type, HeaderType::Config as i32);
    assert_eq!(pi.channel_header.channel_id, "mychannel");
    let env = ConfigEnvelope::decode(pi.payload.data.as_slice()).unwrap();
    assert_eq!(env.config.as_ref(), Some(&config));
    assert_eq!(env.last_update.as_ref(), Some(&tx));
    for e in [&inner, &outer] {
        pm(&sys)
            .evaluate(
                "/Channel/Orderer/Writers",
                &signed_data_from_envelope(e).unwrap(),
            )
            .unwrap();
    }
    // Fabric's system channel filter re-derives the inner config.
    let t = channel_template(&sys, env.last_update.as_ref().unwrap()).unwrap();
    assert_eq!(t.config.sequence, 0);
    let v = ConfigValidator::new("mychannel", &t.config).unwrap();
    v.validate(&env, &pm(&t.config)).unwrap();
    let block = genesis_block_for_new_channel(&inner);
    let h = block.header.as_ref().unwrap();
    assert_eq!(h.number, 0);
    assert!(h.previous_hash.is_empty());
    assert_eq!(
        h.data_hash,
        fabric_common::block::data_hash(&block.data.as_ref().unwrap().data)
    );
    assert_eq!(block.data.as_ref().unwrap().data, [inner.encode_to_vec()]);
    let md = &block.metadata.as_ref().unwrap().metadata;
    assert!(!md.is_empty() && md.iter().all(|m| m.is_empty()));

    // The new channel takes config updates of its own.
    let cue = signed(
        batch_size_update(&config, "mychannel", 10),
        &[&n.orderer_admin],
    );
    let next = validate_update(&config, "mychannel", &cue, &p).unwrap();
    assert_eq!(next.sequence, 2);
    assert_eq!(batch_size(&next).max_message_count, 10);
    let cue = signed(batch_size_update(&config, "mychannel", 10), &[&n.admin1]);
    let e = validate_update(&config, "mychannel", &cue, &p).unwrap_err();
    assert_eq!(
        policy_failure(&e),
        (
            "[Value]  /Channel/Orderer/BatchSize",
            "/Channel/Orderer/Admins"
        )
    );
}

#[test]
fn two_org_channel_needs_any_member_admin() {
    let n = net();
    let sys = system_config(&n);
    let profile = app_profile("SampleConsortium", &[(&n.org1, "Org1"), (&n.org2, "Org2")]);
    for who in [&n.admin1, &n.admin2] {
        let tx = creation_tx("twoorgs", &profile, None, &[who]);
        let (_, config) = new_channel_config(&sys, &tx, 1).unwrap();
        let app = &group(&config).groups["Application"];
        assert_eq!(app.groups.keys().collect::<Vec<_>>(), ["Org1", "Org2"]);
        let p = pm(&config);
        // MAJORITY Admins of two orgs needs both admins.
        let cue = signed(
            ConfigUpdateEnvelope {
                config_update: vec![],
                signatures: vec![],
            },
            &[&n.admin1, &n.admin2],
        );
        let sd = fabric_msp::signed_data_from_config_update_envelope(&cue).unwrap();
        p.evaluate("/Channel/Application/Admins", &sd).unwrap();
        assert!(p.evaluate("/Channel/Application/Admins", &sd[..1]).is_err());
    }
}

#[test]
fn channel_creation_needs_an_admin_of_a_named_org() {
    let n = net();
    let sys = system_config(&n);
    let prefix = "error validating channel creation transaction for new channel 'mychannel', could not successfully apply update to template configuration: error authorizing update: error validating DeltaSet: policy for [Group]  /Channel/Application not satisfied: ";
    for who in [
        vec![&n.client1],
        vec![&n.admin2],
        vec![&n.evil_admin],
        vec![&n.orderer_admin],
        vec![&n.client1, &n.client2, &n.evil_admin],
        vec![],
    ] {
        let tx = creation_tx("mychannel", &one_org(&n), None, &who);
        let e = new_channel_config(&sys, &tx, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{prefix}implicit policy evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 of the 'Admins' sub-policies to be satisfied")
        );
        assert_eq!(
            policy_failure(&e),
            (
                "[Group]  /Channel/Application",
                "/Channel/Application/ChannelCreationPolicy"
            )
        );
    }
    // Signatures over another request do not carry over.
    let tx = creation_tx("otherchannel", &one_org(&n), None, &[&n.admin1]);
    let mut cue = config_update_envelope_of(&tx).unwrap();
    let good = creation_tx("mychannel", &one_org(&n), None, &[]);
    cue.config_update = config_update_envelope_of(&good).unwrap().config_update;
    let tx = update_tx("mychannel", &cue, Some(&n.admin1));
    assert!(matches!(
        new_channel_config(&sys, &tx, 1).unwrap_err(),
        ConfigUpdateError::PolicyNotSatisfied { .. }
    ));
}

#[test]
fn channel_creation_requests_checked_against_the_system_channel() {
    let n = net();
    let sys = system_config(&n);
    let err = |tx: &Envelope| new_channel_config(&sys, tx, 1).unwrap_err().to_string();

    let unknown = app_profile("OtherConsortium", &[(&n.org1, "Org1")]);
    assert_eq!(
        err(&creation_tx("mychannel", &unknown, None, &[&n.admin1])),
        "Unknown consortium name: OtherConsortium"
    );
    let stranger = app_profile(
        "SampleConsortium",
        &[(&n.org1, "Org1"), (&n.outsider, "Org3")],
    );
    assert_eq!(
        err(&creation_tx("mychannel", &stranger, None, &[&n.admin1])),
        "Attempted to include member Org3 which is not in the consortium"
    );
    // A consortium org under another name is not a member either.
    let renamed = app_profile("SampleConsortium", &[(&n.org1, "Org1Renamed")]);
    assert_eq!(
        err(&creation_tx("mychannel", &renamed, None, &[&n.admin1])),
        "Attempted to include member Org1Renamed which is not in the consortium"
    );
    for bad in ["MyChannel", "my_channel", "9lives"] {
        assert_eq!(
            err(&creation_tx(bad, &one_org(&n), None, &[&n.admin1])),
            format!("initializing configtx manager failed: bad channel ID: '{bad}' contains illegal characters")
        );
    }
    let long = "a".repeat(250);
    assert_eq!(
        err(&creation_tx(&long, &one_org(&n), None, &[&n.admin1])),
        "initializing configtx manager failed: bad channel ID: channel ID illegal, cannot be longer than 249"
    );
    new_channel_config(
        &sys,
        &creation_tx(&"a".repeat(249), &one_org(&n), None, &[&n.admin1]),
        1,
    )
    .unwrap();

    // Tampered requests.
    let good = creation_tx("mychannel", &one_org(&n), None, &[]);
    let cue = config_update_envelope_of(&good).unwrap();
    let tamper = |f: &dyn Fn(&mut ConfigUpdate)| {
        let mut cu = decode_update(&cue);
        f(&mut cu);
        update_tx("mychannel", &signed(raw_update(&cu), &[&n.admin1]), None)
    };
    assert_eq!(
        err(&tamper(&|cu| ws(cu)
            .groups
            .get_mut("Application")
            .unwrap()
            .version = 2)),
        "Config update for channel creation does not set application group version to 1, was 2"
    );
    assert_eq!(
        err(&tamper(&|cu| {
            ws(cu).groups.remove("Application");
        })),
        "Config update has missing application group"
    );
    assert_eq!(
        err(&tamper(&|cu| {
            ws(cu).values.remove("Consortium");
        })),
        "Consortium config value missing"
    );
    assert_eq!(
        err(&tamper(&|cu| cu.write_set = None)),
        "Config update has an empty writeset"
    );
    assert_eq!(
        err(&tamper(&|cu| ws(cu)
            .groups
            .get_mut("Application")
            .unwrap()
            .groups
            .clear())),
        "Proposed configuration has no application group members, but consortium contains members"
    );
    assert_eq!(
        err(&tamper(&|cu| cu.channel_id = "otherchannel".into())),
        "Failing initial channel config creation: mismatched channel IDs: 'otherchannel' != 'mychannel'"
    );
    // An org group at a version the template does not have.
    let e = err(&tamper(&|cu| {
        cu.read_set
            .as_mut()
            .unwrap()
            .groups
            .get_mut("Application")
            .unwrap()
            .groups
            .get_mut("Org1")
            .unwrap()
            .version = 1;
    }));
    assert!(e.ends_with("error validating ReadSet: proposed update requires that key [Group]  /Channel/Application/Org1 be at version 1, but it is currently at version 0"), "{e}");
    assert!(err(&Envelope::default()).starts_with(
        "Failed initial channel config creation because config update header was missing"
    ));
    assert!(err(&Envelope {
        payload: vec![0xff; 3],
        signature: vec![]
    })
    .starts_with("Failing initial channel config creation because of payload unmarshalling error"));

    // Not a system channel.
    let app_channel = new_channel_config(&sys, &good_signed(&n), 1).unwrap().1;
    assert_eq!(
        new_channel_config(&app_channel, &good_signed(&n), 1)
            .unwrap_err()
            .to_string(),
        "The ordering system channel does not appear to support creating channels"
    );
}

fn good_signed(n: &Net) -> Envelope {
    creation_tx("mychannel", &one_org(n), None, &[&n.admin1])
}

#[test]
fn channel_limit_and_maintenance_mode() {
    let n = net();
    let sys = config_of_profile(&system_profile(&n, &["V1_4_2"], 3), SYS);
    let tx = good_signed(&n);
    // Fabric refuses only once the count is above the maximum.
    new_channel_config(&sys, &tx, 3).unwrap();
    let e = new_channel_config(&sys, &tx, 4).unwrap_err();
    assert_eq!(
        e,
        ConfigUpdateError::TooManyChannels(
            "channel creation would exceed maximimum number of channels: 3".into()
        )
    );
    // No limit.
    new_channel_config(&system_config(&n), &tx, 100_000).unwrap();
    // Invalid requests are reported before the limit.
    let bad = creation_tx("mychannel", &one_org(&n), None, &[&n.client1]);
    assert!(matches!(
        new_channel_config(&sys, &bad, 4).unwrap_err(),
        ConfigUpdateError::PolicyNotSatisfied { .. }
    ));

    let mut maint = sys.clone();
    let ct = maint
        .channel_group
        .as_mut()
        .unwrap()
        .groups
        .get_mut("Orderer")
        .unwrap()
        .values
        .get_mut("ConsensusType")
        .unwrap();
    let mut v = ConsensusType::decode(ct.value.as_slice()).unwrap();
    v.state = 1;
    ct.value = v.encode_to_vec();
    let e = new_channel_config(&maint, &tx, 1).unwrap_err();
    assert_eq!(
        e,
        ConfigUpdateError::MaintenanceMode(
            "channel creation is not permitted: maintenance mode".into()
        )
    );
}

#[test]
fn orderer_capabilities_shape_the_template() {
    let n = net();
    let one = one_org(&n);
    // V2_0 with a request made against the system channel's group
    // (`-channelCreateTxBaseProfile`): it sets Application/Admins at
    // version 1, so the creation policy is stored as Admins.
    // Such profiles carry the Orderer section too (the sample profiles
    // merge it in); without it the request would also remove the Orderer
    // group and need /Channel/Admins.
    let sys_profile = system_profile(&n, &["V2_0"], 0);
    let sys = config_of_profile(&sys_profile, SYS);
    assert!(OrdererCapabilities::of(group(&sys)).channel_creation_policy_as_admins);
    let mut full = one.clone();
    full.orderer = sys_profile.orderer.clone();
    let no_orderer = creation_tx("mychannel", &one, Some(&sys_profile), &[&n.admin1]);
    assert_eq!(
        policy_failure(&new_channel_config(&sys, &no_orderer, 1).unwrap_err()),
        ("[Group]  /Channel", "/Channel/Admins")
    );
    let tx = creation_tx("mychannel", &full, Some(&sys_profile), &[&n.admin1]);
    let cu = decode_update(&config_update_envelope_of(&tx).unwrap());
    assert_eq!(
        cu.write_set.as_ref().unwrap().groups["Application"].policies["Admins"].version,
        1
    );
    let t = channel_template(&sys, &tx).unwrap();
    let app = &group(&t.config).groups["Application"];
    assert_eq!(app.mod_policy, "Admins");
    assert_eq!(app.policies.keys().collect::<Vec<_>>(), ["Admins"]);
    let (_, config) = new_channel_config(&sys, &tx, 1).unwrap();
    let app = &group(&config).groups["Application"];
    assert_eq!(app.policies["Admins"].version, 1);
    assert_eq!(app.mod_policy, "Admins");
    let bad = creation_tx("mychannel", &full, Some(&sys_profile), &[&n.client1]);
    let e = new_channel_config(&sys, &bad, 1).unwrap_err();
    assert_eq!(policy_failure(&e).1, "/Channel/Application/Admins");
    // V2_0 with a plain request: ChannelCreationPolicy as before.
    let tx = creation_tx("mychannel", &one, None, &[&n.admin1]);
    let t = channel_template(&sys, &tx).unwrap();
    assert_eq!(
        group(&t.config).groups["Application"].mod_policy,
        "ChannelCreationPolicy"
    );
    new_channel_config(&sys, &tx, 1).unwrap();

    // No orderer capabilities: versions and the root mod policy are not
    // normalised (and channel capabilities need orderer capabilities).
    // Without channel capabilities MSPs are v1.0, which ignore NodeOUs: an
    // org admin is then whoever the Admins policy names, here any member.
    let mut p = system_profile(&n, &[], 0);
    p.capabilities.clear();
    for org in &mut p
        .consortiums
        .as_mut()
        .unwrap()
        .get_mut("SampleConsortium")
        .unwrap()
        .organizations
    {
        let member = PolicyDef::signature(&format!("OR('{}.member')", org.id));
        org.policies.insert("Admins".into(), member);
    }
    let mut sys = config_of_profile(&p, SYS);
    sys.channel_group
        .as_mut()
        .unwrap()
        .groups
        .get_mut("Orderer")
        .unwrap()
        .version = 4;
    let mut app = one.clone();
    app.capabilities.clear();
    app.application.as_mut().unwrap().capabilities.clear();
    let tx = creation_tx("mychannel", &app, None, &[&n.admin1]);
    let t = channel_template(&sys, &tx).unwrap();
    assert_eq!(group(&t.config).groups["Orderer"].version, 4);
    assert_eq!(group(&t.config).mod_policy, "");
    new_channel_config(&sys, &tx, 1).unwrap();
    let tx = creation_tx("mychannel", &one, None, &[&n.admin1]);
    assert_eq!(
        new_channel_config(&sys, &tx, 1).unwrap_err().to_string(),
        "config does not validly parse: cannot enable application capabilities without orderer support first"
    );
}

fn ws(cu: &mut ConfigUpdate) -> &mut ConfigGroup {
    cu.write_set.as_mut().unwrap()
}

#[test]
fn mutated_requests_never_panic() {
    use proptest::test_runner::{Config as RunnerConfig, TestRunner};
    let n = net();
    let sys = system_config(&n);
    let p = pm(&sys);
    let update = signed(batch_size_update(&sys, SYS, 10), &[&n.orderer_admin]);
    let creation = good_signed(&n);
    let strategy = (
        proptest::collection::vec((0usize..4096, proptest::num::u8::ANY), 1..6),
        0usize..4096,
    );
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 200,
        ..RunnerConfig::default()
    });
    runner
        .run(&strategy, |(flips, cut)| {
            let mut cu = update.config_update.clone();
            let mut tx = creation.payload.clone();
            for (pos, val) in &flips {
                let i = pos % cu.len();
                cu[i] ^= val;
                let j = pos % tx.len();
                tx[j] ^= val;
            }
            // Truncate about one case in four.
            if cut % 4 == 0 {
                cu.truncate(cut / 4);
            }
            let cue = ConfigUpdateEnvelope {
                config_update: cu,
                signatures: update.signatures.clone(),
            };
            let _ = validate_update(&sys, SYS, &cue, &p);
            let env = Envelope {
                payload: tx,
                signature: vec![],
            };
            let _ = new_channel_config(&sys, &env, 1);
            Ok(())
        })
        .unwrap();
}

/// The channel's message processor (`crate::msgprocessor`) at config `c`.
fn bundle_of(c: &Config) -> crate::channels::ChannelBundle {
    let cfg = crate::channelconfig::ChannelConfig::from_config(SYS.into(), c.clone()).unwrap();
    crate::channels::ChannelBundle::new(cfg).unwrap()
}

#[test]
fn the_processor_re_derives_a_config_message_from_its_last_update_as_fabric_does() {
    use crate::msgprocessor::{MsgProcessor, ProcessError};
    let n = net();
    let c = system_config(&n);
    let bundle = bundle_of(&c);
    let p = MsgProcessor::new(SYS, &bundle, true, &n.orderer);
    // ProcessConfigUpdateMsg: a CONFIG envelope signed by the orderer, at the current sequence.
    let cue = signed(batch_size_update(&c, SYS, 10), &[&n.orderer_admin]);
    let upd = update_tx(SYS, &cue, Some(&n.orderer_admin));
    let (tx, seq) = p
        .process_config_update(&upd, &parse_envelope(&upd).unwrap())
        .unwrap();
    assert_eq!(seq, c.sequence);
    let new = config_of_envelope(&tx);
    assert_eq!(batch_size(&new).max_message_count, 10);
    // ProcessConfigMsg on it (the Kafka chain's re-validation): the same config again.
    let (again, _) = p.process_config(&tx).unwrap();
    assert_eq!(config_of_envelope(&again), new);
    // Once that config is in force, the same update is stale: refused.
    let after = bundle_of(&new);
    let p2 = MsgProcessor::new(SYS, &after, true, &n.orderer);
    assert!(matches!(
        p2.process_config(&tx),
        Err(ProcessError::ConfigUpdate(_))
    ));
    // Only CONFIG envelopes are config messages.
    assert!(matches!(
        p.process_config(&upd),
        Err(ProcessError::BadConfig(_))
    ));
}

#[test]
fn the_processor_refuses_a_normal_message_from_a_non_writer() {
    use crate::msgprocessor::{MsgProcessor, ProcessError};
    let n = net();
    let c = system_config(&n);
    let bundle = bundle_of(&c);
    let p = MsgProcessor::new(SYS, &bundle, true, &n.orderer);
    let mk = |s: &LocalSigner| {
        fabric_common::envelope::create_signed_envelope(
            HeaderType::Message,
            SYS,
            Some(s),
            b"x".to_vec(),
            &Default::default(),
        )
    };
    let ok = mk(&n.orderer_client);
    assert_eq!(
        p.process_normal(&ok, &parse_envelope(&ok).unwrap())
            .unwrap(),
        c.sequence
    );
    let evil = mk(&n.evil_admin);
    assert!(matches!(
        p.process_normal(&evil, &parse_envelope(&evil).unwrap()),
        Err(ProcessError::Filter(_))
    ));
}
