//! Test fixtures: MSP folders generated with rcgen and a configtx.yaml
//! written for these tests.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};

pub struct TestMsp {
    pub dir: PathBuf,
    pub ca_pem: String,
    pub admin_pem: String,
    pub tls_ca_pem: String,
}

fn write(path: &Path, data: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

fn ca(cn: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let pem = params.self_signed(&key).unwrap().pem();
    (params, key, pem)
}

fn leaf(cn: &str, ou: &str, ca_params: &CertificateParams, ca_key: &KeyPair) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationalUnitName, ou);
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    let issuer = Issuer::from_params(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Fabric MSP layout: cacerts/ca.pem, signcerts/cert.pem, keystore/priv_sk,
/// admincerts/admin.pem, tlscacerts/tlsca.pem, config.yaml with NodeOUs.
pub fn make_msp(dir: &Path, name: &str) -> TestMsp {
    let (ca_params, ca_key, ca_pem) = ca(&format!("ca.{name}"));
    let (_, _, tls_ca_pem) = ca(&format!("tlsca.{name}"));
    let (sign_pem, sign_key) = leaf(&format!("node.{name}"), "peer", &ca_params, &ca_key);
    let (admin_pem, _) = leaf(&format!("Admin@{name}"), "admin", &ca_params, &ca_key);
    write(&dir.join("cacerts/ca.pem"), ca_pem.as_bytes());
    write(&dir.join("signcerts/cert.pem"), sign_pem.as_bytes());
    write(&dir.join("keystore/priv_sk"), sign_key.as_bytes());
    write(&dir.join("admincerts/admin.pem"), admin_pem.as_bytes());
    write(&dir.join("admincerts/README"), b"not a certificate");
    write(&dir.join("tlscacerts/tlsca.pem"), tls_ca_pem.as_bytes());
    let mut yaml = String::from("NodeOUs:\n  Enable: true\n");
    for (k, ou) in [
        ("ClientOUIdentifier", "client"),
        ("PeerOUIdentifier", "peer"),
        ("AdminOUIdentifier", "admin"),
        ("OrdererOUIdentifier", "orderer"),
    ] {
        yaml.push_str(&format!(
            "  {k}:\n    Certificate: cacerts/ca.pem\n    OrganizationalUnitIdentifier: {ou}\n"
        ));
    }
    write(&dir.join("config.yaml"), yaml.as_bytes());
    TestMsp {
        dir: dir.to_path_buf(),
        ca_pem,
        admin_pem,
        tls_ca_pem,
    }
}

/// A configtx.yaml in Fabric's format: anchors for orgs, policies and
/// section defaults, merged into profiles with `<<`.
pub const CONFIGTX: &str = r#"
Organizations:
  - &OrdererOrg
    Name: OrdererOrg
    ID: OrdererMSP
    MSPDir: crypto/orderer/msp
    Policies: &OrdererOrgPolicies
      Readers:
        Type: Signature
        Rule: "OR('OrdererMSP.member')"
      Writers:
        Type: Signature
        Rule: "OR('OrdererMSP.member')"
      Admins:
        Type: Signature
        Rule: "OR('OrdererMSP.admin')"
    OrdererEndpoints:
      - orderer0.example.com:7050

  - &Org1
    Name: Org1
    ID: Org1MSP
    MSPDir: crypto/org1/msp
    Policies:
      Readers:
        Type: Signature
        Rule: "OR('Org1MSP.admin', 'Org1MSP.peer', 'Org1MSP.client')"
      Writers:
        Type: Signature
        Rule: "OR('Org1MSP.admin', 'Org1MSP.client')"
      Admins:
        Type: Signature
        Rule: "OR('Org1MSP.admin')"
    AnchorPeers:
      - Host: peer0.org1.example.com
        Port: 7051

Capabilities:
  Channel: &ChannelCaps
    V1_4_3: true
    V1_3: false
  Orderer: &OrdererCaps
    V1_4_2: true
  Application: &AppCaps
    V1_4_2: true

Application: &AppDefaults
  Organizations:
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
    <<: *AppCaps
  ACLs:
    qscc/GetChainInfo: /Channel/Application/Readers
    peer/Propose: /Channel/Application/Writers

Orderer: &OrdererDefaults
  OrdererType: kafka
  Addresses:
    - orderer0.example.com:7050
  BatchTimeout: 2s
  BatchSize:
    MaxMessageCount: 10
    AbsoluteMaxBytes: 99 MB
    PreferredMaxBytes: 512 KB
  Kafka:
    Brokers:
      - kafka0:9092
      - kafka1:9092
  Organizations:
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
  Capabilities:
    <<: *OrdererCaps

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
    <<: *ChannelCaps

Profiles:
  DevKafkaSystem:
    <<: *ChannelDefaults
    Orderer:
      <<: *OrdererDefaults
      Organizations:
        - *OrdererOrg
    Consortiums:
      SampleConsortium:
        Organizations:
          - *Org1

  FastKafka:
    <<: *ChannelDefaults
    Orderer:
      <<: *OrdererDefaults
      BatchTimeout: 250ms
      Organizations:
        - <<: *OrdererOrg
          Name: RenamedOrdererOrg
    Consortiums:
      SampleConsortium:
        Organizations:
          - *Org1

  Org1Channel:
    <<: *ChannelDefaults
    Consortium: SampleConsortium
    Application:
      <<: *AppDefaults
      Organizations:
        - *Org1

  LegacyDefaults:
    Orderer:
      Organizations:
        - Name: OrdererOrg
          ID: OrdererMSP
          MSPDir: crypto/orderer/msp
    Consortiums:
      Legacy:
        Organizations:
          - Name: Org1
            ID: Org1MSP
            MSPDir: crypto/org1/msp
            AdminPrincipal: Role.MEMBER
"#;

/// Writes CONFIGTX and the two MSP folders into `dir`.
pub fn setup(dir: &Path) -> (TestMsp, TestMsp) {
    let orderer = make_msp(&dir.join("crypto/orderer/msp"), "orderer.example.com");
    let org1 = make_msp(&dir.join("crypto/org1/msp"), "org1.example.com");
    fs::write(dir.join("configtx.yaml"), CONFIGTX).unwrap();
    (orderer, org1)
}
