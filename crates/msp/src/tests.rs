//! Scenario tests on real certificates (`DevOrg`, rcgen) and real config
//! trees (`fabric-configtx`).

use std::sync::Arc;
use std::time::SystemTime;

use fabric_common::devcrypto::{DevOrg, NodeOu};
use fabric_common::msp::LocalSigner;
use fabric_configtx::config::{
    Application, Orderer, Organization, Policies, Policy as PolicyDef, Profile,
};
use fabric_configtx::policydsl::{role_principal, signature_policy_from_str};
use fabric_configtx::DevNetwork;
use fabric_protos::common::{
    msp_identity_anonymity::MspIdentityAnonymityType, msp_principal::Classification,
    msp_role::MspRoleType, CombinedPrincipal, Envelope, MspIdentityAnonymity, MspPrincipal,
    OrganizationUnit,
};
use fabric_protos::msp::{FabricMspConfig, MspConfig};
use prost::Message;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::*;

fn msp_config(org: &DevOrg) -> MspConfig {
    fabric_configtx::msp::verifying_msp_config(&org.msp_dir(), &org.mspid, "bccsp").unwrap()
}

fn fabric_config(org: &DevOrg) -> FabricMspConfig {
    fabric_configtx::msp::fabric_msp_config(&org.msp_dir(), &org.mspid).unwrap()
}

fn to_msp_config(fc: &FabricMspConfig) -> MspConfig {
    MspConfig {
        r#type: 0,
        config: fc.encode_to_vec(),
    }
}

fn signer(org: &DevOrg, name: &str, ou: NodeOu) -> LocalSigner {
    LocalSigner::load(&org.issue(name, ou).unwrap(), &org.mspid).unwrap()
}

fn sd(s: &LocalSigner, msg: &[u8]) -> SignedData {
    SignedData {
        data: msg.to_vec(),
        identity: s.creator().to_vec(),
        signature: s.sign(msg),
    }
}

fn role(mspid: &str, r: MspRoleType) -> MspPrincipal {
    role_principal(mspid, r)
}

fn ca_issuer(org: &DevOrg) -> Issuer<'static, KeyPair> {
    let key = std::fs::read_to_string(org.dir.join("ca").join("priv_sk")).unwrap();
    let key = KeyPair::from_pem(&key).unwrap();
    Issuer::from_ca_cert_pem(org.ca_cert_pem(), key).unwrap()
}

struct Leaf {
    cert_pem: String,
    key_pem: String,
}

impl Leaf {
    fn signer(&self, mspid: &str) -> LocalSigner {
        LocalSigner::from_pem(mspid, self.cert_pem.as_bytes(), self.key_pem.as_bytes()).unwrap()
    }
    fn serialized(&self, mspid: &str) -> Vec<u8> {
        fabric_protos::msp::SerializedIdentity {
            mspid: mspid.into(),
            id_bytes: self.cert_pem.clone().into_bytes(),
        }
        .encode_to_vec()
    }
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    cn: &str,
    ous: &[&str],
    validity: (OffsetDateTime, OffsetDateTime),
    eku: &[ExtendedKeyUsagePurpose],
    serial: u64,
) -> Leaf {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    // rcgen keeps one value per attribute type: further OUs go in as
    // custom attributes with the OU OID.
    for (i, ou) in ous.iter().enumerate() {
        let ty = if i == 0 {
            DnType::OrganizationalUnitName
        } else {
            DnType::CustomDnType(vec![2, 5, 4, 11])
        };
        dn.push(ty, *ou);
    }
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = eku.to_vec();
    params.use_authority_key_identifier_extension = true;
    params.not_before = validity.0;
    params.not_after = validity.1;
    params.serial_number = Some(SerialNumber::from(serial));
    let cert = params.signed_by(&key, issuer).unwrap();
    Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn valid_now() -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    (now - Duration::minutes(1), now + Duration::days(30))
}

/// Three orgs and an outsider, each a DevOrg with NodeOUs.
struct Net {
    _dir: tempfile::TempDir,
    orgs: Vec<DevOrg>,
    outsider: DevOrg,
}

fn net() -> Net {
    let dir = tempfile::tempdir().unwrap();
    let orgs = (1..=3)
        .map(|i| {
            DevOrg::create(
                &dir.path().join(format!("org{i}")),
                &format!("Org{i}MSP"),
                &format!("org{i}.example.com"),
            )
            .unwrap()
        })
        .collect();
    let outsider = DevOrg::create(
        &dir.path().join("outsider"),
        "OutsiderMSP",
        "evil.example.com",
    )
    .unwrap();
    Net {
        _dir: dir,
        orgs,
        outsider,
    }
}

#[test]
fn roles_node_ous_and_principals() {
    let n = net();
    let org = &n.orgs[0];
    let msp = Msp::from_config(&msp_config(org)).unwrap();
    assert!(msp.node_ous_enabled());
    let admin = signer(org, "Admin@org1", NodeOu::Admin);
    let client = signer(org, "User1@org1", NodeOu::Client);
    let peer = signer(org, "peer0.org1", NodeOu::Peer);
    let orderer = signer(org, "orderer.org1", NodeOu::Orderer);
    let ids: Vec<Identity> = [&admin, &client, &peer, &orderer]
        .iter()
        .map(|s| msp.deserialize_identity(s.creator()).unwrap())
        .collect();
    for id in &ids {
        msp.validate(id).unwrap();
        assert_eq!(id.mspid(), "Org1MSP");
        // Certifiers identifier = SHA-256 of the root CA certificate.
        let root_hash = Sha256::digest(msp.root_certs()[0].der()).to_vec();
        assert_eq!(
            id.organizational_units()[0].certifiers_identifier,
            root_hash
        );
    }
    let expect = [
        (MspRoleType::Member, [true, true, true, true]),
        (MspRoleType::Admin, [true, false, false, false]),
        (MspRoleType::Client, [false, true, false, false]),
        (MspRoleType::Peer, [false, false, true, false]),
        (MspRoleType::Orderer, [false, false, false, true]),
    ];
    for (r, want) in expect {
        for (id, w) in ids.iter().zip(want) {
            assert_eq!(
                msp.satisfies_principal(id, &role("Org1MSP", r)).is_ok(),
                w,
                "{r:?} for {:?}",
                id.certificate().organizational_units()
            );
        }
    }
    // Another MSP's role.
    let e = msp
        .satisfies_principal(&ids[0], &role("Org2MSP", MspRoleType::Member))
        .unwrap_err();
    assert!(e.0.contains("different MSP"), "{e}");
    // ORGANIZATION_UNIT with the certifiers identifier.
    let ou = |name: &str, certifiers: Vec<u8>| MspPrincipal {
        principal_classification: Classification::OrganizationUnit as i32,
        principal: OrganizationUnit {
            msp_identifier: "Org1MSP".into(),
            organizational_unit_identifier: name.into(),
            certifiers_identifier: certifiers,
        }
        .encode_to_vec(),
    };
    let cid = ids[2].organizational_units()[0]
        .certifiers_identifier
        .clone();
    assert!(msp
        .satisfies_principal(&ids[2], &ou("peer", cid.clone()))
        .is_ok());
    assert!(msp
        .satisfies_principal(&ids[1], &ou("peer", cid.clone()))
        .is_err());
    assert!(msp
        .satisfies_principal(&ids[2], &ou("peer", vec![1, 2, 3]))
        .is_err());
    // IDENTITY principal.
    let ident = MspPrincipal {
        principal_classification: Classification::Identity as i32,
        principal: client.creator().to_vec(),
    };
    assert!(msp.satisfies_principal(&ids[1], &ident).is_ok());
    assert_eq!(
        msp.satisfies_principal(&ids[0], &ident).unwrap_err().0,
        "The identities do not match"
    );
    // ANONYMITY: nominal is satisfied by X.509 identities, anonymous never.
    let anon = |t: MspIdentityAnonymityType| MspPrincipal {
        principal_classification: Classification::Anonymity as i32,
        principal: MspIdentityAnonymity {
            anonymity_type: t as i32,
        }
        .encode_to_vec(),
    };
    assert!(msp
        .satisfies_principal(&ids[0], &anon(MspIdentityAnonymityType::Nominal))
        .is_ok());
    assert!(msp
        .satisfies_principal(&ids[0], &anon(MspIdentityAnonymityType::Anonymous))
        .unwrap_err()
        .0
        .contains("anonymous"));
    // COMBINED: every sub-principal.
    let combined = |ps: Vec<MspPrincipal>| MspPrincipal {
        principal_classification: Classification::Combined as i32,
        principal: CombinedPrincipal { principals: ps }.encode_to_vec(),
    };
    let member_and_client = combined(vec![
        role("Org1MSP", MspRoleType::Member),
        role("Org1MSP", MspRoleType::Client),
    ]);
    assert!(msp.satisfies_principal(&ids[1], &member_and_client).is_ok());
    assert!(msp
        .satisfies_principal(&ids[2], &member_and_client)
        .is_err());
    assert_eq!(
        msp.satisfies_principal(&ids[1], &combined(vec![]))
            .unwrap_err()
            .0,
        "No principals in CombinedPrincipal"
    );
    // Unknown classification.
    let weird = MspPrincipal {
        principal_classification: 42,
        principal: vec![],
    };
    assert_eq!(
        msp.satisfies_principal(&ids[1], &weird).unwrap_err().0,
        "invalid principal type 42"
    );
    // Before v1.4.3 there is no ORDERER role and COMBINED needs v1.3.
    let old = Msp::from_config_versioned(&msp_config(org), MspVersion::V1_1);
    // v1.1 setup needs admins when ... it does not (admins only required in v1.4.3).
    let old = old.unwrap();
    let oid = old.deserialize_identity(orderer.creator()).unwrap();
    assert!(old
        .satisfies_principal(&oid, &role("Org1MSP", MspRoleType::Orderer))
        .is_err());
    assert!(old
        .satisfies_principal(&oid, &member_and_client)
        .unwrap_err()
        .0
        .contains("invalid principal type 4"));
}

#[test]
fn outsiders_ca_identities_and_bad_ous_are_rejected() {
    let n = net();
    let org = &n.orgs[0];
    let mgr =
        MspManager::from_msp_configs(n.orgs.iter().map(msp_config), MspVersion::V1_4_3).unwrap();
    // Outsider under its own MSP ID: unknown on the channel.
    let out = signer(&n.outsider, "User1@evil", NodeOu::Client);
    assert_eq!(
        mgr.deserialize_identity(out.creator()).unwrap_err().0,
        "MSP OutsiderMSP is not defined on channel"
    );
    // Outsider's certificate claiming Org1MSP: deserializes, never validates.
    let claimed = fabric_protos::msp::SerializedIdentity {
        mspid: "Org1MSP".into(),
        id_bytes: out.cert_pem().to_vec(),
    }
    .encode_to_vec();
    let id = mgr.deserialize_identity(&claimed).unwrap();
    let e = mgr.validate(&id).unwrap_err();
    assert!(
        e.0.starts_with("could not obtain certification chain"),
        "{e}"
    );
    assert!(e.0.contains("unknown authority"), "{e}");
    assert!(id.organizational_units().is_empty());
    let msp = mgr.msp("Org1MSP").unwrap();
    assert!(msp
        .satisfies_principal(&id, &role("Org1MSP", MspRoleType::Member))
        .is_err());
    assert!(msp
        .satisfies_principal(&id, &role("Org1MSP", MspRoleType::Admin))
        .is_err());
    // The CA certificate as an identity.
    let ca_sid = fabric_protos::msp::SerializedIdentity {
        mspid: "Org1MSP".into(),
        id_bytes: org.ca_cert_pem().as_bytes().to_vec(),
    }
    .encode_to_vec();
    let e = mgr.deserialize_and_validate(&ca_sid).unwrap_err();
    assert!(e.0.contains("Certificate Authority equals true"), "{e}");
    // Two node OUs, or none.
    let iss = ca_issuer(org);
    let both = leaf(&iss, "both", &["client", "peer"], valid_now(), &[], 11);
    let e = mgr
        .deserialize_and_validate(&both.serialized("Org1MSP"))
        .unwrap_err();
    assert!(e.0.contains("not a combination of them"), "{e}");
    let none = leaf(&iss, "none", &["sales"], valid_now(), &[], 12);
    let e = mgr
        .deserialize_and_validate(&none.serialized("Org1MSP"))
        .unwrap_err();
    assert!(
        e.0.contains("does not have an OU that resolves to client, peer, orderer, or admin"),
        "{e}"
    );
    // Go's default key usage: an EKU without serverAuth fails, with it passes.
    let client_only = leaf(
        &iss,
        "c",
        &["client"],
        valid_now(),
        &[ExtendedKeyUsagePurpose::ClientAuth],
        13,
    );
    let e = mgr
        .deserialize_and_validate(&client_only.serialized("Org1MSP"))
        .unwrap_err();
    assert!(e.0.contains("incompatible key usage"), "{e}");
    let tls_like = leaf(
        &iss,
        "t",
        &["client"],
        valid_now(),
        &[
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        14,
    );
    mgr.deserialize_and_validate(&tls_like.serialized("Org1MSP"))
        .unwrap();
    // Garbage.
    assert!(mgr.deserialize_identity(b"\xff\xff").is_err());
    let junk = fabric_protos::msp::SerializedIdentity {
        mspid: "Org1MSP".into(),
        id_bytes: b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec(),
    }
    .encode_to_vec();
    assert!(mgr
        .deserialize_identity(&junk)
        .unwrap_err()
        .0
        .starts_with("parseCertificate failed"));
}

#[test]
fn signatures_low_s_and_p256_only_sha256() {
    let n = net();
    let org = &n.orgs[0];
    let msp = Msp::from_config(&msp_config(org)).unwrap();
    let s = signer(org, "User1@org1", NodeOu::Client);
    let id = msp.deserialize_identity(s.creator()).unwrap();
    let sig = s.sign(b"payload");
    id.verify(b"payload", &sig).unwrap();
    assert_eq!(
        id.verify(b"other", &sig).unwrap_err().0,
        "The signature is invalid"
    );
    // The high-S twin of a valid signature.
    let (r, sv) = der::ecdsa_sig(&sig).unwrap();
    let high = der::encode_ecdsa_sig(&r, &der::sub_mag(&cert::P256_N, &sv));
    let e = id.verify(b"payload", &high).unwrap_err();
    assert!(e.0.contains("Invalid S"), "{e}");
    assert!(id.verify(b"payload", b"\x30\x00").is_err());
    assert!(id.verify(b"payload", &[]).is_err());
}

#[test]
fn p384_keys_are_checked_with_sha256_and_low_s() {
    // Fabric hashes with SHA-256 (SHA2 family) whatever the curve.
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let params = CertificateParams::new(vec!["x".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let c = Certificate::from_der(cert.der()).unwrap();
    assert_eq!(c.public_key().key_type, KeyType::EcdsaP384);
    let rng = ring::rand::SystemRandom::new();
    let kp = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        &key.serialize_der(),
        &rng,
    )
    .unwrap();
    // ring cannot sign P-384 over SHA-256, so only the negative side is
    // checked here: a SHA-384 signature is not what Fabric verifies.
    let (mut invalid, mut high) = (0, 0);
    for _ in 0..16 {
        let sig = kp.sign(&rng, b"m").unwrap().as_ref().to_vec();
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P384_SHA384_ASN1,
            &c.public_key().bytes,
        )
        .verify(b"m", &sig)
        .unwrap();
        let e = verify_signature(c.public_key(), b"m", &sig).unwrap_err();
        if e.0.contains("Invalid S") {
            high += 1;
        } else {
            assert_eq!(e.0, "The signature is invalid");
            invalid += 1;
        }
    }
    assert!(invalid > 0 && high > 0);
}

#[test]
fn expiry_is_not_part_of_validation() {
    let n = net();
    let org = &n.orgs[0];
    let mgr = MspManager::new([Msp::from_config(&msp_config(org)).unwrap()]);
    let now = OffsetDateTime::now_utc();
    // Issued after the CA, already expired: valid for the MSP, expired for callers.
    let expired = leaf(
        &ca_issuer(org),
        "old",
        &["client"],
        (now - Duration::minutes(3), now - Duration::minutes(1)),
        &[],
        21,
    );
    let id = mgr
        .deserialize_and_validate(&expired.serialized("Org1MSP"))
        .unwrap();
    assert!(id.is_expired_at(SystemTime::now()));
    assert!(id.not_after() < now.unix_timestamp());
    let live = signer(org, "User1@org1", NodeOu::Client);
    let live = mgr.deserialize_and_validate(live.creator()).unwrap();
    assert!(!live.is_expired_at(SystemTime::now()));
    assert!(live.expires_at() > SystemTime::now());
    // DevOrg's expired cert starts 30 days before its CA existed: Go checks
    // the CA at the leaf's NotBefore + 1s, so it does not validate at all.
    let dir = org
        .issue_with_validity("expired", NodeOu::Client, -1)
        .unwrap();
    let s = LocalSigner::load(&dir, "Org1MSP").unwrap();
    let e = mgr.deserialize_and_validate(s.creator()).unwrap_err();
    assert!(e.0.contains("expired or is not yet valid"), "{e}");
}

fn crl_pem(issuer: &Issuer<'_, KeyPair>, serials: &[u64]) -> String {
    let now = OffsetDateTime::now_utc();
    CertificateRevocationListParams {
        this_update: now - Duration::minutes(1),
        next_update: now + Duration::days(1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from(*s),
                revocation_time: now,
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(issuer)
    .unwrap()
    .pem()
    .unwrap()
}

#[test]
fn revoked_certificates_are_rejected() {
    let n = net();
    let org = &n.orgs[0];
    let iss = ca_issuer(org);
    let revoked = leaf(&iss, "revoked", &["client"], valid_now(), &[], 31);
    let fine = leaf(&iss, "fine", &["client"], valid_now(), &[], 32);
    let mut fc = fabric_config(org);
    fc.revocation_list = vec![
        crl_pem(&iss, &[31, 99]).into_bytes(),
        // A CRL from another CA listing the same serial is ignored.
        crl_pem(&ca_issuer(&n.outsider), &[32]).into_bytes(),
    ];
    let msp = Msp::from_config(&to_msp_config(&fc)).unwrap();
    let id = msp
        .deserialize_identity(&revoked.serialized("Org1MSP"))
        .unwrap();
    assert_eq!(
        msp.validate(&id).unwrap_err().0,
        "could not validate identity against certification chain: The certificate has been revoked"
    );
    let id = msp
        .deserialize_identity(&fine.serialized("Org1MSP"))
        .unwrap();
    msp.validate(&id).unwrap();
    // A malformed CRL is a setup error.
    fc.revocation_list = vec![b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n".to_vec()];
    assert!(Msp::from_config(&to_msp_config(&fc)).is_err());
}

#[test]
fn intermediate_ca_chain_and_tree_rules() {
    let n = net();
    let org = &n.orgs[0];
    let root = ca_issuer(org);
    let ica_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "org1.example.com");
    dn.push(DnType::CommonName, "ica.org1.example.com");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    p.use_authority_key_identifier_extension = true;
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::minutes(2);
    p.not_after = now + Duration::days(365);
    p.serial_number = Some(SerialNumber::from(40u64));
    let ica_cert = p.signed_by(&ica_key, &root).unwrap();
    let ica_pem = ica_cert.pem();
    let ica = Issuer::new(p, ica_key);

    let mut fc = fabric_config(org);
    fc.intermediate_certs = vec![ica_pem.clone().into_bytes()];
    // NodeOUs certified by the intermediate.
    if let Some(nous) = fc.fabric_node_ous.as_mut() {
        for o in [
            &mut nous.client_ou_identifier,
            &mut nous.peer_ou_identifier,
            &mut nous.admin_ou_identifier,
            &mut nous.orderer_ou_identifier,
        ]
        .into_iter()
        .flatten()
        {
            o.certificate = ica_pem.clone().into_bytes();
        }
    }
    let msp = Msp::from_config(&to_msp_config(&fc)).unwrap();
    let under_ica = leaf(&ica, "u", &["client"], valid_now(), &[], 41);
    let id = msp
        .deserialize_identity(&under_ica.serialized("Org1MSP"))
        .unwrap();
    msp.validate(&id).unwrap();
    // Hash of the (sanitised) intermediate and root.
    let mut h = Sha256::new();
    h.update(msp.intermediate_certs()[0].der());
    h.update(msp.root_certs()[0].der());
    assert_eq!(
        id.organizational_units()[0].certifiers_identifier,
        h.finalize().to_vec()
    );
    assert!(msp
        .satisfies_principal(&id, &role("Org1MSP", MspRoleType::Client))
        .is_ok());
    // The root now has a child CA: identities it signs directly are refused.
    let under_root = leaf(&root, "r", &["client"], valid_now(), &[], 42);
    let id = msp
        .deserialize_identity(&under_root.serialized("Org1MSP"))
        .unwrap();
    let e = msp.validate(&id).unwrap_err();
    assert!(e.0.contains("Parent certificate should be a leaf"), "{e}");
    // It signs with its key, and policies see it as an Org1 client.
    let mgr = MspManager::new([Msp::from_config(&to_msp_config(&fc)).unwrap()]);
    let s = under_ica.signer("Org1MSP");
    let or = signature_policy_from_str("OR('Org1MSP.client')").unwrap();
    evaluate_signature_policy(&or, &mgr, &[sd(&s, b"m")]).unwrap();
    // An unrelated CRL is fine; revoking the intermediate at the root makes
    // the MSP setup fail.
    fc.revocation_list = vec![crl_pem(&root, &[7]).into_bytes()];
    Msp::from_config(&to_msp_config(&fc)).unwrap();
    fc.revocation_list = vec![crl_pem(&root, &[40]).into_bytes()];
    let e = Msp::from_config(&to_msp_config(&fc)).unwrap_err();
    assert!(e.0.contains("The certificate has been revoked"), "{e}");
}

#[test]
fn explicit_admincerts_and_setup_rules() {
    let n = net();
    let org = &n.orgs[0];
    let boss = signer(org, "Boss@org1", NodeOu::Client);
    let other = signer(org, "User2@org1", NodeOu::Client);
    let mut fc = fabric_config(org);
    fc.admins = vec![boss.cert_pem().to_vec()];
    let msp = Msp::from_config(&to_msp_config(&fc)).unwrap();
    let admin = role("Org1MSP", MspRoleType::Admin);
    let b = msp.deserialize_identity(boss.creator()).unwrap();
    let o = msp.deserialize_identity(other.creator()).unwrap();
    assert!(msp.satisfies_principal(&b, &admin).is_ok());
    assert!(msp.satisfies_principal(&o, &admin).is_err());
    // An admin cert must be a client or admin under NodeOUs.
    let p = signer(org, "peer1.org1", NodeOu::Peer);
    fc.admins = vec![p.cert_pem().to_vec()];
    let e = Msp::from_config(&to_msp_config(&fc)).unwrap_err();
    assert!(e.0.starts_with("admin 0 is invalid"), "{e}");
    // No NodeOUs and no admins: refused; with admins: classic roles only.
    fc.fabric_node_ous = None;
    fc.admins = vec![];
    assert_eq!(
        Msp::from_config(&to_msp_config(&fc)).unwrap_err().0,
        "administrators must be declared when no admin ou classification is set"
    );
    fc.admins = vec![boss.cert_pem().to_vec()];
    let msp = Msp::from_config(&to_msp_config(&fc)).unwrap();
    let b = msp.deserialize_identity(boss.creator()).unwrap();
    assert!(msp.satisfies_principal(&b, &admin).is_ok());
    let e = msp
        .satisfies_principal(&b, &role("Org1MSP", MspRoleType::Client))
        .unwrap_err();
    assert!(e.0.contains("NodeOUs not activated"), "{e}");
    // Bad configs.
    assert!(Msp::from_config(&MspConfig::default()).is_err());
    assert!(Msp::from_config(&MspConfig {
        r#type: 1,
        config: vec![]
    })
    .is_err());
    let mut fc = fabric_config(org);
    fc.root_certs = vec![boss.cert_pem().to_vec()];
    // A leaf as root: Fabric's sanitisation finds no parent.
    let e = Msp::from_config(&to_msp_config(&fc)).unwrap_err();
    assert!(
        e.0.contains("failed to traverse certificate verification chain"),
        "{e}"
    );
}

fn org_def(org: &DevOrg, name: &str) -> Organization {
    let mut policies = Policies::new();
    let id = &org.mspid;
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

/// An application channel as the orderer holds it: Orderer section with
/// Org1 as orderer org, Application section with the three orgs.
fn app_channel_config(n: &Net) -> fabric_protos::common::Config {
    let dev = DevNetwork::new(n.orgs[0].msp_dir());
    let base = dev.system_channel_profile();
    let mut orderer: Orderer = base.orderer.clone().unwrap();
    orderer.orderer_type = "kafka".into();
    orderer.organizations = vec![org_def(&n.orgs[0], "OrdererOrg1")];
    orderer.policies = group_policies(true);
    let profile = Profile {
        consortium: "SampleConsortium".into(),
        application: Some(Application {
            organizations: n
                .orgs
                .iter()
                .enumerate()
                .map(|(i, o)| org_def(o, &format!("Org{}", i + 1)))
                .collect(),
            capabilities: [("V1_4_2".to_string(), true)].into_iter().collect(),
            policies: group_policies(false),
            acls: Default::default(),
        }),
        orderer: Some(orderer),
        consortiums: None,
        capabilities: [("V1_4_3".to_string(), true)].into_iter().collect(),
        policies: group_policies(false),
    };
    // Through a real genesis block, as the orderer would read it.
    let block = fabric_configtx::genesis_block_from_profile(&profile, "mychannel").unwrap();
    let env = Envelope::decode(block.data.unwrap().data[0].as_slice()).unwrap();
    let payload = fabric_protos::common::Payload::decode(env.payload.as_slice()).unwrap();
    fabric_protos::common::ConfigEnvelope::decode(payload.data.as_slice())
        .unwrap()
        .config
        .unwrap()
}

#[test]
fn channel_policies_on_a_real_config_tree() {
    let n = net();
    let config = app_channel_config(&n);
    let pm = PolicyManager::from_config(&config).unwrap();
    let ids: Vec<&str> = pm.msp_manager().msp_ids().collect();
    assert_eq!(ids, ["Org1MSP", "Org2MSP", "Org3MSP"]);
    assert_eq!(
        pm.msp_manager().msp("Org1MSP").unwrap().version(),
        MspVersion::V1_4_3
    );
    let c2 = signer(&n.orgs[1], "User1@org2", NodeOu::Client);
    let msg = b"an envelope payload";
    pm.evaluate(CHANNEL_WRITERS_PATH, &[sd(&c2, msg)]).unwrap();
    pm.evaluate(policy::CHANNEL_READERS, &[sd(&c2, msg)])
        .unwrap();
    pm.evaluate(policy::CHANNEL_APPLICATION_WRITERS, &[sd(&c2, msg)])
        .unwrap();
    // Org2 is not an orderer org.
    let e = pm
        .evaluate(policy::CHANNEL_ORDERER_WRITERS, &[sd(&c2, msg)])
        .unwrap_err();
    assert_eq!(e.to_string(), "implicit policy evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 of the 'Writers' sub-policies to be satisfied");
    let o1 = signer(&n.orgs[0], "orderer.org1", NodeOu::Orderer);
    pm.evaluate(policy::BLOCK_VALIDATION, &[sd(&o1, msg)])
        .unwrap();
    // Outsiders, bad signatures, empty sets.
    let out = signer(&n.outsider, "User1@evil", NodeOu::Client);
    let e = pm
        .evaluate(CHANNEL_WRITERS_PATH, &[sd(&out, msg)])
        .unwrap_err();
    assert_eq!(e.to_string(), "implicit policy evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 of the 'Writers' sub-policies to be satisfied");
    assert!(
        e.explain().contains("not defined on channel"),
        "{}",
        e.explain()
    );
    let mut bad = sd(&c2, msg);
    bad.data = b"tampered".to_vec();
    assert!(pm.evaluate(CHANNEL_WRITERS_PATH, &[bad]).is_err());
    assert!(pm.evaluate(CHANNEL_WRITERS_PATH, &[]).is_err());
    // MAJORITY Admins over three orgs needs two admins.
    let a1 = signer(&n.orgs[0], "Admin@org1", NodeOu::Admin);
    let a2 = signer(&n.orgs[1], "Admin@org2", NodeOu::Admin);
    let path = policy::CHANNEL_APPLICATION_ADMINS;
    pm.evaluate(path, &[sd(&a1, msg), sd(&a2, msg)]).unwrap();
    let e = pm.evaluate(path, &[sd(&a1, msg)]).unwrap_err();
    assert_eq!(e.to_string(), "implicit policy evaluation failed - 1 sub-policies were satisfied, but this policy requires 2 of the 'Admins' sub-policies to be satisfied");
    // The same admin twice is still one admin; a client is no admin.
    assert!(pm.evaluate(path, &[sd(&a1, msg), sd(&a1, b"x")]).is_err());
    assert!(pm.evaluate(path, &[sd(&a1, msg), sd(&c2, msg)]).is_err());
    // /Channel/Admins = MAJORITY of {Application, Orderer} Admins.
    pm.evaluate(policy::CHANNEL_ADMINS, &[sd(&a1, msg), sd(&a2, msg)])
        .unwrap();
    assert!(pm
        .evaluate(policy::CHANNEL_ADMINS, &[sd(&a2, msg), sd(&c2, msg)])
        .is_err());

    // Path resolution.
    let orderer = pm.manager(&["Orderer"]).unwrap();
    assert_eq!(orderer.path(), "Channel/Orderer");
    assert!(orderer.get_policy("Writers").1);
    assert_eq!(
        orderer.get_policy("Writers").0.name(),
        "/Channel/Orderer/Writers"
    );
    assert!(orderer.get_policy("/Channel/Orderer/BlockValidation").1);
    assert!(orderer.get_policy("OrdererOrg1/Admins").1);
    let (p, found) = orderer.get_policy("/Channel/Writers");
    assert!(!found);
    assert_eq!(
        p.evaluate_signed_data(&[sd(&o1, msg)])
            .unwrap_err()
            .to_string(),
        "no such policy: '/Channel/Writers'"
    );
    assert!(pm.get_policy("Application/Org3/Admins").1);
    assert!(!pm.get_policy("").1);
    assert!(!pm.get_policy("/Channel/Nope").1);
    assert!(!pm.get_policy("/ChannelX/Writers").1);
    let org2 = pm.manager(&["Application", "Org2"]).unwrap();
    org2.evaluate("Writers", &[sd(&c2, msg)]).unwrap();
    assert!(org2.evaluate("Admins", &[sd(&c2, msg)]).is_err());
    assert!(pm.manager(&["Application", "Nope"]).is_none());
    assert!(pm
        .policy_names()
        .contains(&"Orderer/OrdererOrg1/Writers".to_string()));
}

const CHANNEL_WRITERS_PATH: &str = policy::CHANNEL_WRITERS;

#[test]
fn system_channel_paths_and_channel_creation_policy() {
    let n = net();
    let dev = DevNetwork::new(n.orgs[0].msp_dir());
    let mut profile = dev.system_channel_profile();
    let cons = profile.consortiums.as_mut().unwrap();
    cons.get_mut("SampleConsortium").unwrap().organizations = n
        .orgs
        .iter()
        .enumerate()
        .map(|(i, o)| org_def(o, &format!("Org{}", i + 1)))
        .collect();
    let group = fabric_configtx::new_channel_group(&profile).unwrap();
    let msps = Arc::new(MspManager::from_channel_group(&group).unwrap());
    let pm = PolicyManager::new(&group, msps).unwrap();
    let c1 = signer(&n.orgs[0], "User1@org1", NodeOu::Client);
    let a3 = signer(&n.orgs[2], "Admin@org3", NodeOu::Admin);
    // Dev org SampleOrg = Org1's MSP folder under MSP ID SampleOrg: Org1's
    // certificates serialized as SampleOrg.
    let as_sample = SignedData {
        identity: fabric_protos::msp::SerializedIdentity {
            mspid: "SampleOrg".into(),
            id_bytes: c1.cert_pem().to_vec(),
        }
        .encode_to_vec(),
        ..sd(&c1, b"m")
    };
    pm.evaluate(policy::CHANNEL_WRITERS, std::slice::from_ref(&as_sample))
        .unwrap();
    pm.evaluate(policy::CHANNEL_ORDERER_WRITERS, &[as_sample])
        .unwrap();
    // Consortium orgs are not writers of the system channel.
    assert!(pm
        .evaluate(policy::CHANNEL_WRITERS, &[sd(&c1, b"m")])
        .is_err());
    // ChannelCreationPolicy = ANY Admins of the orgs in the new channel.
    let ccp = pm
        .channel_creation_policy("SampleConsortium", Some(&["Org3"]))
        .unwrap();
    assert_eq!(ccp.name(), "/Channel/Application/ChannelCreationPolicy");
    ccp.evaluate_signed_data(&[sd(&a3, b"u")]).unwrap();
    let ccp12 = pm
        .channel_creation_policy("SampleConsortium", Some(&["Org1", "Org2"]))
        .unwrap();
    assert!(ccp12.evaluate_signed_data(&[sd(&a3, b"u")]).is_err());
    assert!(pm.channel_creation_policy("Nope", None).is_err());
    // Unknown policy types are refused when building.
    let mut bad = group.clone();
    bad.policies
        .get_mut("Readers")
        .unwrap()
        .policy
        .as_mut()
        .unwrap()
        .r#type = 2;
    let e = PolicyManager::new(&bad, pm.msp_manager().clone()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "policy Readers at path Channel has unknown policy type: 2"
    );
}

#[test]
fn n_out_of_counts_each_signer_once() {
    let n = net();
    let mgr =
        MspManager::from_msp_configs(n.orgs.iter().map(msp_config), MspVersion::V1_4_3).unwrap();
    let u1 = signer(&n.orgs[0], "User1@org1", NodeOu::Client);
    let u2 = signer(&n.orgs[0], "User2@org1", NodeOu::Client);
    let p2 = signer(&n.orgs[1], "peer0.org2", NodeOu::Peer);
    let and = signature_policy_from_str("AND('Org1MSP.member', 'Org1MSP.member')").unwrap();
    // One signer signing twice counts once.
    let e = evaluate_signature_policy(&and, &mgr, &[sd(&u1, b"a"), sd(&u1, b"b")]).unwrap_err();
    assert_eq!(e.to_string(), "signature set did not satisfy policy");
    assert!(e.explain().contains("de-duplicating"), "{}", e.explain());
    evaluate_signature_policy(&and, &mgr, &[sd(&u1, b"a"), sd(&u2, b"b")]).unwrap();
    // A bad first signature does not block the same identity's good one.
    let mut bad = sd(&u1, b"a");
    bad.signature = sd(&u1, b"zzz").signature;
    let or = signature_policy_from_str("OR('Org1MSP.member')").unwrap();
    evaluate_signature_policy(&or, &mgr, &[bad, sd(&u1, b"a")]).unwrap();
    // Greedy "used" marks: the client is consumed by the first leaf.
    let two =
        signature_policy_from_str("OutOf(2, 'Org1MSP.client', 'Org2MSP.peer', 'Org1MSP.member')")
            .unwrap();
    evaluate_signature_policy(&two, &mgr, &[sd(&u1, b"a"), sd(&p2, b"b")]).unwrap();
    let three =
        signature_policy_from_str("OutOf(3, 'Org1MSP.client', 'Org2MSP.peer', 'Org1MSP.member')")
            .unwrap();
    assert!(evaluate_signature_policy(&three, &mgr, &[sd(&u1, b"a"), sd(&p2, b"b")]).is_err());
    evaluate_signature_policy(&three, &mgr, &[sd(&u1, b"a"), sd(&p2, b"b"), sd(&u2, b"c")])
        .unwrap();
    // Accept-all (0 of nothing) and compile errors.
    evaluate_signature_policy(&fabric_configtx::policydsl::accept_all_policy(), &mgr, &[]).unwrap();
    let mut broken = or.clone();
    broken.version = 1;
    assert!(SignaturePolicy::new(broken).is_err());
    let mut out_of_range = or.clone();
    out_of_range.identities.clear();
    assert!(SignaturePolicy::new(out_of_range)
        .unwrap_err()
        .to_string()
        .contains("out of range"));
}

#[test]
fn only_identities_their_msp_validated_get_key_tables() {
    use fabric_common::crypto::{has_key_table, HOT_KEY_AFTER};
    let n = net();
    let mgr =
        MspManager::from_msp_configs(n.orgs.iter().map(msp_config), MspVersion::V1_4_3).unwrap();
    let member = signature_policy_from_str("OR('Org1MSP.member')").unwrap();
    // An outsider's certificate claiming Org1MSP: deserialized and its
    // signatures checked by the policy (as Fabric does) but never
    // validated, so its key never gets a table however much it signs.
    let out = signer(&n.outsider, "User1@evil", NodeOu::Client);
    let claimed = fabric_protos::msp::SerializedIdentity {
        mspid: "Org1MSP".into(),
        id_bytes: out.cert_pem().to_vec(),
    }
    .encode_to_vec();
    let out_id = mgr.deserialize_identity(&claimed).unwrap();
    assert!(mgr.validate(&out_id).is_err());
    for i in 0..2 * HOT_KEY_AFTER {
        let msg = i.to_be_bytes();
        let signed = SignedData {
            data: msg.to_vec(),
            identity: claimed.clone(),
            signature: out.sign(&msg),
        };
        assert!(evaluate_signature_policy(&member, &mgr, &[signed]).is_err());
        out_id.verify(&msg, &out.sign(&msg)).unwrap();
    }
    assert!(!has_key_table(&out_id.public_key().bytes));
    // A member's identity deserialized without the cache is not validated:
    // it does not count either.
    let u1 = signer(&n.orgs[0], "User1@org1", NodeOu::Client);
    let raw = mgr.deserialize_identity_uncached(u1.creator()).unwrap();
    let key = raw.public_key().bytes.clone();
    for i in 0..2 * HOT_KEY_AFTER {
        raw.verify(&i.to_be_bytes(), &u1.sign(&i.to_be_bytes()))
            .unwrap();
    }
    assert!(!has_key_table(&key));
    // Through the policy (the orderer's path), the validated member's key
    // becomes hot and gets its table.
    for i in 0..HOT_KEY_AFTER {
        evaluate_signature_policy(&member, &mgr, &[sd(&u1, &i.to_be_bytes())]).unwrap();
    }
    assert!(has_key_table(&key));
    evaluate_signature_policy(&member, &mgr, &[sd(&u1, b"with the table")]).unwrap();
    let mut bad = sd(&u1, b"a");
    bad.signature = sd(&u1, b"b").signature;
    assert!(evaluate_signature_policy(&member, &mgr, &[bad]).is_err());
}

#[test]
fn envelope_signed_data_and_cache() {
    let n = net();
    let org = &n.orgs[0];
    let mgr = MspManager::with_capacity([Msp::from_config(&msp_config(org)).unwrap()], 4);
    let s = signer(org, "User1@org1", NodeOu::Client);
    let env = fabric_common::envelope::create_signed_envelope(
        fabric_protos::common::HeaderType::Message,
        "mychannel",
        Some(&s),
        b"data".to_vec(),
        &Default::default(),
    );
    let set = signed_data_from_envelope(&env).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(set[0].identity, s.creator());
    assert_eq!(set[0].data, env.payload);
    let id = mgr.deserialize_and_validate(&set[0].identity).unwrap();
    id.verify(&set[0].data, &set[0].signature).unwrap();
    let again = mgr.deserialize_and_validate(&set[0].identity).unwrap();
    assert!(Arc::ptr_eq(&id, &again));
    let st = mgr.cache_stats();
    assert_eq!((st.hits, st.misses), (1, 1));
    // Errors are cached too, and the cache stays bounded.
    for i in 0..10u8 {
        let _ = mgr.deserialize_identity(&[0x0a, 1, i]);
    }
    assert!(mgr.cache_stats().len <= 4);
    assert!(signed_data_from_envelope(&Envelope {
        payload: vec![0xff],
        signature: vec![]
    })
    .is_err());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    #[test]
    fn deserialize_never_panics(bytes in proptest::collection::vec(0u8.., 0..400)) {
        let mgr = fixture_manager();
        let _ = mgr.deserialize_identity(&bytes);
        let msp = mgr.msp("Org1MSP").unwrap();
        let _ = msp.deserialize_identity(&bytes);
        let _ = msp.deserialize_id_bytes(&bytes);
        let _ = SignaturePolicy::from_bytes(&bytes);
        let _ = fabric_protos::common::Config::decode(bytes.as_slice()).map(|c| PolicyManager::from_config(&c));
    }

    #[test]
    fn mutated_certificates_never_panic(pos in 0usize..2000, val in 0u8.., cut in 0usize..2000) {
        let mgr = fixture_manager();
        let msp = mgr.msp("Org1MSP").unwrap();
        let mut der = pem::parse(FIXTURE.with(|f| f.1.clone())).unwrap().into_contents();
        let p = pos % der.len();
        der[p] = val;
        der.truncate(cut.max(1));
        let _ = Certificate::from_der(&der);
        let pem_text = pem::encode(&pem::Pem::new("CERTIFICATE", der));
        if let Ok(id) = msp.deserialize_id_bytes(pem_text.as_bytes()) {
            let _ = msp.validate(&id);
            let _ = id.verify(b"x", b"y");
        }
    }
}

thread_local! {
    static FIXTURE: (Arc<MspManager>, String, tempfile::TempDir) = {
        let dir = tempfile::tempdir().unwrap();
        let org = DevOrg::create(&dir.path().join("org1"), "Org1MSP", "org1.example.com").unwrap();
        let s = signer(&org, "User1@org1", NodeOu::Client);
        let mgr = MspManager::new([Msp::from_config(&msp_config(&org)).unwrap()]);
        (Arc::new(mgr), String::from_utf8(s.cert_pem().to_vec()).unwrap(), dir)
    };
}

fn fixture_manager() -> Arc<MspManager> {
    FIXTURE.with(|f| f.0.clone())
}
