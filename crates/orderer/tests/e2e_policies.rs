//! End-to-end: who may write and who may read. The real `orderer` binary
//! boots an application channel whose config has two member orgs (Org1MSP,
//! Org2MSP) and an orderer org (OrdererMSP), all with real certificates in
//! Fabric's MSP layout (NodeOUs); an outsider org has its own CA that the
//! channel does not trust. Statuses and `info` texts are Fabric's.

mod support;

use fabric_common::devcrypto::{DevOrg, NodeOu};
use fabric_common::envelope::{
    create_signed_envelope, seek_envelope, seek_newest, seek_oldest, EnvelopeOptions,
};
use fabric_common::msp::LocalSigner;
use fabric_protos::common::{Envelope, HeaderType, Status};
use fabric_protos::orderer::SeekInfo;
use support::*;

const PROFILES: &str = r#"
Profiles:
    TwoOrgsApplicationGenesis:
        <<: *ChannelDefaults
        Orderer:
            <<: *OrdererDefaults
            Organizations:
                - *OrdererOrg
        Application:
            <<: *ApplicationDefaults
            Organizations:
                - *Org1
                - *Org2
"#;

/// The `info` of a writers-policy failure, as Fabric's SigFilter and
/// ClassifyError render it.
const WRITERS_DENIED: &str = "implicit policy evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 of the 'Writers' sub-policies to be satisfied: permission denied";

struct Orgs {
    net: Net,
    org1: LocalSigner,
    org2: LocalSigner,
    org1_admin: LocalSigner,
    outsider: LocalSigner,
    /// An outsider certificate presented under Org1MSP's ID.
    impostor: LocalSigner,
    org1_expired: LocalSigner,
    /// Expired a minute ago, issued inside the CA's validity.
    org1_recently_expired: LocalSigner,
    outsider_expired: LocalSigner,
    _orgs: Vec<DevOrg>,
}

fn setup() -> Orgs {
    let dir = tempfile::tempdir().unwrap();
    let crypto = dir.path().join("crypto");
    let orderer = DevOrg::create(&crypto.join("orderer"), "OrdererMSP", "example.com").unwrap();
    let org1 = DevOrg::create(&crypto.join("org1"), "Org1MSP", "org1.example.com").unwrap();
    let org2 = DevOrg::create(&crypto.join("org2"), "Org2MSP", "org2.example.com").unwrap();
    // Not in the channel config: nobody trusts this CA.
    let outsider = DevOrg::create(
        &dir.path().join("outsider"),
        "OutsiderMSP",
        "outsider.example.org",
    )
    .unwrap();
    let orderer_msp = orderer
        .issue("orderer.example.com", NodeOu::Orderer)
        .unwrap();
    let load = |org: &DevOrg, name: &str, ou: NodeOu, days: i64, mspid: &str| {
        LocalSigner::load(&org.issue_with_validity(name, ou, days).unwrap(), mspid).unwrap()
    };
    let o = Orgs {
        org1: load(
            &org1,
            "User1@org1.example.com",
            NodeOu::Client,
            365,
            "Org1MSP",
        ),
        org2: load(
            &org2,
            "User1@org2.example.com",
            NodeOu::Client,
            365,
            "Org2MSP",
        ),
        org1_admin: load(
            &org1,
            "Admin@org1.example.com",
            NodeOu::Admin,
            365,
            "Org1MSP",
        ),
        outsider: load(
            &outsider,
            "User1@outsider.example.org",
            NodeOu::Client,
            365,
            "OutsiderMSP",
        ),
        impostor: load(
            &outsider,
            "User2@outsider.example.org",
            NodeOu::Client,
            365,
            "Org1MSP",
        ),
        org1_expired: load(
            &org1,
            "Expired@org1.example.com",
            NodeOu::Client,
            -1,
            "Org1MSP",
        ),
        org1_recently_expired: recently_expired(&org1, "Recent@org1.example.com"),
        outsider_expired: load(
            &outsider,
            "Expired@outsider.example.org",
            NodeOu::Client,
            -1,
            "OutsiderMSP",
        ),
        net: Net {
            genesis: genesis_from_configtx(
                dir.path(),
                &format!("{}{PROFILES}", three_org_configtx("16 KB", "16 KB")),
                "TwoOrgsApplicationGenesis",
                CHANNEL,
            ),
            client: LocalSigner::load(
                &org1
                    .issue("User9@org1.example.com", NodeOu::Client)
                    .unwrap(),
                "Org1MSP",
            )
            .unwrap(),
            org: orderer,
            orderer_msp,
            dir,
        },
        _orgs: vec![org1, org2, outsider],
    };
    o
}

/// A client certificate of `org` that was valid for three minutes and
/// expired a minute ago: inside its CA's validity (unlike
/// `issue_with_validity` with negative days, whose NotBefore predates the
/// CA, which Fabric's MSP chain check refuses on its own).
fn recently_expired(org: &DevOrg, name: &str) -> LocalSigner {
    use rcgen::{
        CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        PKCS_ECDSA_P256_SHA256,
    };
    let ca_key = std::fs::read_to_string(org.dir.join("ca/priv_sk")).unwrap();
    let issuer =
        Issuer::from_ca_cert_pem(org.ca_cert_pem(), KeyPair::from_pem(&ca_key).unwrap()).unwrap();
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationalUnitName, "client");
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(4);
    params.not_after = now - time::Duration::minutes(1);
    let cert = params.signed_by(&key, &issuer).unwrap();
    LocalSigner::from_pem(
        &org.mspid,
        cert.pem().as_bytes(),
        key.serialize_pem().as_bytes(),
    )
    .unwrap()
}

fn all() -> SeekInfo {
    SeekInfo {
        start: Some(seek_oldest()),
        stop: Some(seek_newest()),
        ..Default::default()
    }
}

/// `signer`'s envelope with the signature replaced by one over other bytes.
fn badly_signed(signer: &LocalSigner, data: &[u8]) -> Envelope {
    let mut env = tx(signer, CHANNEL, data.to_vec());
    env.signature = signer.sign(b"some other bytes");
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_and_readers_policies_with_two_orgs_and_an_outsider() {
    let o = setup();
    let ledger = o.net.dir.path().join("ledger");
    let mut node = Node::start_with(&o.net, &ledger, free_port(), "OrdererMSP", true);
    let mut client = node.client().await;

    // Members of both orgs (client and admin roles) may write.
    for (who, s) in [
        ("org1", &o.org1),
        ("org2", &o.org2),
        ("org1 admin", &o.org1_admin),
    ] {
        let resps = broadcast(
            &mut client,
            vec![tx(s, CHANNEL, format!("hello from {who}").into_bytes())],
        )
        .await;
        assert_eq!(resps.len(), 1, "{who}");
        assert_eq!(
            resps[0].status,
            Status::Success as i32,
            "{who}: {}",
            resps[0].info
        );
    }

    let mut unsigned_sig = tx(&o.org1, CHANNEL, b"no signature".to_vec());
    unsigned_sig.signature.clear();
    let cases: Vec<(&str, Envelope, Status, Option<String>)> = vec![
        (
            "unsigned (no creator, no signature)",
            create_signed_envelope(
                HeaderType::Message,
                CHANNEL,
                None,
                b"anonymous".to_vec(),
                &EnvelopeOptions::default(),
            ),
            Status::Forbidden,
            Some(WRITERS_DENIED.into()),
        ),
        (
            "member creator, empty signature",
            unsigned_sig,
            Status::Forbidden,
            Some(WRITERS_DENIED.into()),
        ),
        (
            "badly signed (signature over other bytes)",
            badly_signed(&o.org1, b"tampered"),
            Status::Forbidden,
            Some(WRITERS_DENIED.into()),
        ),
        (
            "outsider",
            tx(&o.outsider, CHANNEL, b"outsider".to_vec()),
            Status::Forbidden,
            Some(WRITERS_DENIED.into()),
        ),
        (
            "outsider certificate under Org1MSP's ID",
            tx(&o.impostor, CHANNEL, b"impostor".to_vec()),
            Status::Forbidden,
            Some(WRITERS_DENIED.into()),
        ),
        (
            // Fabric's expirationRejectRule error is not ErrPermissionDenied,
            // so ClassifyError makes it BAD_REQUEST.
            "expired member identity",
            tx(&o.org1_expired, CHANNEL, b"expired".to_vec()),
            Status::BadRequest,
            Some("broadcast client identity expired".into()),
        ),
        (
            "recently expired member identity",
            tx(
                &o.org1_recently_expired,
                CHANNEL,
                b"recently expired".to_vec(),
            ),
            Status::BadRequest,
            Some("broadcast client identity expired".into()),
        ),
        (
            "expired outsider identity (expiry is checked before the policy)",
            tx(&o.outsider_expired, CHANNEL, b"expired outsider".to_vec()),
            Status::BadRequest,
            Some("broadcast client identity expired".into()),
        ),
        (
            "unknown channel",
            tx(&o.org1, "nosuchchannel", b"x".to_vec()),
            Status::NotFound,
            None,
        ),
        (
            "oversized (even from a member)",
            tx(&o.org1, CHANNEL, vec![7u8; 20_000]),
            Status::BadRequest,
            None,
        ),
        (
            "oversized outsider: size is checked before the signature",
            tx(&o.outsider, CHANNEL, vec![7u8; 20_000]),
            Status::BadRequest,
            None,
        ),
    ];
    let mut good = 3;
    for (name, bad, want, info) in cases {
        // good, bad, good: the bad one is answered and the stream ends there.
        let good1 = tx(&o.org1, CHANNEL, format!("before {name}").into_bytes());
        let good2 = tx(&o.org2, CHANNEL, format!("after {name}").into_bytes());
        let resps = broadcast(&mut client, vec![good1, bad, good2]).await;
        assert_eq!(resps.len(), 2, "{name}: stream closes after the failure");
        assert_eq!(resps[0].status, Status::Success as i32, "{name}");
        assert_eq!(resps[1].status, want as i32, "{name}: {}", resps[1].info);
        assert!(!resps[1].info.is_empty(), "{name}: info explains");
        if let Some(info) = info {
            assert_eq!(resps[1].info, info, "{name}");
        }
        eprintln!("{name}: {want:?} {:?}", resps[1].info);
        // The node keeps serving: a fresh stream succeeds.
        let after = tx(&o.org2, CHANNEL, format!("after {name}").into_bytes());
        let resps = broadcast(&mut client, vec![after]).await;
        assert_eq!(resps[0].status, Status::Success as i32, "{name}");
        good += 2;
    }
    assert!(node.alive(), "node survived all bad input");

    // Readers: both orgs read the same verified chain holding exactly the
    // accepted envelopes.
    let (blocks, status) = deliver(&mut client, &o.org1, CHANNEL, all()).await;
    assert_eq!(status, Some(Status::Success));
    verify_chain_msp(&blocks, o.net.org.ca_cert_pem(), "OrdererMSP");
    let payloads: Vec<Vec<u8>> = blocks.iter().skip(1).flat_map(block_payloads).collect();
    assert_eq!(payloads.len(), good);
    assert!(payloads.iter().all(|p| p.starts_with(b"hello from ")
        || p.starts_with(b"before ")
        || p.starts_with(b"after ")));
    let (blocks2, status) = deliver(&mut client, &o.org2, CHANNEL, all()).await;
    assert_eq!(status, Some(Status::Success));
    assert_eq!(blocks2, blocks);

    // Who may not read: FORBIDDEN, nothing sent, and the node keeps serving.
    let unsigned_seek = seek_envelope(CHANNEL, None, &all(), vec![]);
    let mut bad_sig_seek = seek_envelope(CHANNEL, Some(&o.org1), &all(), vec![]);
    bad_sig_seek.signature = o.org1.sign(b"other bytes");
    let read_cases: Vec<(&str, Envelope, Status)> = vec![
        (
            "outsider",
            seek_envelope(CHANNEL, Some(&o.outsider), &all(), vec![]),
            Status::Forbidden,
        ),
        (
            "impostor",
            seek_envelope(CHANNEL, Some(&o.impostor), &all(), vec![]),
            Status::Forbidden,
        ),
        ("unsigned", unsigned_seek, Status::Forbidden),
        ("badly signed", bad_sig_seek, Status::Forbidden),
        (
            "expired member identity",
            seek_envelope(CHANNEL, Some(&o.org1_expired), &all(), vec![]),
            Status::Forbidden,
        ),
        (
            "recently expired member identity",
            seek_envelope(CHANNEL, Some(&o.org1_recently_expired), &all(), vec![]),
            Status::Forbidden,
        ),
        (
            "unknown channel",
            seek_envelope("nosuchchannel", Some(&o.org1), &all(), vec![]),
            Status::NotFound,
        ),
    ];
    for (name, env, want) in read_cases {
        let r = deliver_many(&mut client, vec![env]).await;
        assert_eq!(r[0].0.len(), 0, "{name}: no block sent");
        assert_eq!(r[0].1, Some(want), "{name}");
        let (b, s) = deliver(&mut client, &o.org2, CHANNEL, all()).await;
        assert_eq!(s, Some(Status::Success), "after {name}");
        assert_eq!(b.len(), blocks.len(), "after {name}");
    }
    // On one stream: a member's request succeeds, the outsider's ends it.
    let r = deliver_many(
        &mut client,
        vec![
            seek_envelope(CHANNEL, Some(&o.org1), &all(), vec![]),
            seek_envelope(CHANNEL, Some(&o.outsider), &all(), vec![]),
            seek_envelope(CHANNEL, Some(&o.org1), &all(), vec![]),
        ],
    )
    .await;
    assert_eq!(r[0].1, Some(Status::Success));
    assert_eq!(r[0].0.len(), blocks.len());
    assert_eq!(r[1], (vec![], Some(Status::Forbidden)));
    assert_eq!(r[2], (vec![], None), "stream ended after FORBIDDEN");

    assert!(node.alive());
    let log = std::fs::read_to_string(&node.log).unwrap();
    assert!(!log.contains("panicked"), "{log}");
    node.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_expiration_checks_lets_an_expired_member_write_and_read() {
    let o = setup();
    let ledger = o.net.dir.path().join("ledger");
    let node = Node::start_env(
        &o.net,
        &ledger,
        free_port(),
        "OrdererMSP",
        true,
        &[("ORDERER_GENERAL_AUTHENTICATION_NOEXPIRATIONCHECKS", "true")],
        true,
    );
    let mut client = node.client().await;
    // Fabric's MSP validates a chain as of the certificate's NotBefore, so
    // with the checks off a recently expired member is just a member; the
    // outsider still is not.
    let expired = &o.org1_recently_expired;
    let resps = broadcast(
        &mut client,
        vec![tx(expired, CHANNEL, b"expired but allowed".to_vec())],
    )
    .await;
    assert_eq!(resps[0].status, Status::Success as i32, "{}", resps[0].info);
    let (blocks, status) = deliver(&mut client, expired, CHANNEL, all()).await;
    assert_eq!(status, Some(Status::Success));
    assert_eq!(blocks.len(), 2);
    let resps = broadcast(
        &mut client,
        vec![tx(&o.outsider_expired, CHANNEL, b"no".to_vec())],
    )
    .await;
    assert_eq!(resps[0].status, Status::Forbidden as i32);
    assert_eq!(resps[0].info, WRITERS_DENIED);
}
