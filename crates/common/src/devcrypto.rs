//! Development crypto material in Fabric's MSP folder layout (what
//! `cryptogen` produces), so the embedded default network and the tests run
//! on real certificates: one CA per organisation, NodeOUs enabled, and
//! identities whose subject OU is `orderer`, `peer`, `admin` or `client`.
//!
//! ```text
//! <org>/ca/ca.<domain>-cert.pem, priv_sk
//! <org>/msp/{cacerts,admincerts,tlscacerts}/…, config.yaml      (the org's MSPDir for configtx.yaml)
//! <org>/orderers/orderer.<domain>/msp/{signcerts,keystore,cacerts,…}
//! <org>/peers/peer0.<domain>/msp/…
//! <org>/users/Admin@<domain>/msp/…, <org>/users/User1@<domain>/msp/…
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

/// The role written into an identity's subject OU (Fabric NodeOUs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeOu {
    /// `client`
    Client,
    /// `peer`
    Peer,
    /// `admin`
    Admin,
    /// `orderer`
    Orderer,
}

impl NodeOu {
    /// The OU string.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeOu::Client => "client",
            NodeOu::Peer => "peer",
            NodeOu::Admin => "admin",
            NodeOu::Orderer => "orderer",
        }
    }
}

/// A generated organisation.
#[derive(Debug)]
pub struct DevOrg {
    /// MSP ID.
    pub mspid: String,
    /// Domain, e.g. `example.com`.
    pub domain: String,
    /// The organisation's base folder.
    pub dir: PathBuf,
    ca_cert_pem: String,
    ca_key: KeyPair,
    ca_params: CertificateParams,
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn write(path: &Path, contents: &[u8]) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, contents)
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(days);
}

fn node_ous_yaml(ca_file: &str) -> String {
    let mut s = String::from("NodeOUs:\n  Enable: true\n");
    for (key, ou) in [
        ("ClientOUIdentifier", "client"),
        ("PeerOUIdentifier", "peer"),
        ("AdminOUIdentifier", "admin"),
        ("OrdererOUIdentifier", "orderer"),
    ] {
        s.push_str(&format!(
            "  {key}:\n    Certificate: cacerts/{ca_file}\n    OrganizationalUnitIdentifier: {ou}\n"
        ));
    }
    s
}

impl DevOrg {
    /// Creates the CA and the org's MSP folder under `dir`.
    pub fn create(dir: &Path, mspid: &str, domain: &str) -> io::Result<Self> {
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(io_err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(io_err)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, "US");
        dn.push(DnType::StateOrProvinceName, "California");
        dn.push(DnType::LocalityName, "San Francisco");
        dn.push(DnType::OrganizationName, domain);
        dn.push(DnType::CommonName, format!("ca.{domain}"));
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        validity(&mut params, 3650);
        let cert = params.self_signed(&ca_key).map_err(io_err)?;
        let ca_cert_pem = cert.pem();
        let ca_file = format!("ca.{domain}-cert.pem");
        write(&dir.join("ca").join(&ca_file), ca_cert_pem.as_bytes())?;
        write(
            &dir.join("ca").join("priv_sk"),
            ca_key.serialize_pem().as_bytes(),
        )?;
        let msp = dir.join("msp");
        write(&msp.join("cacerts").join(&ca_file), ca_cert_pem.as_bytes())?;
        write(
            &msp.join("tlscacerts")
                .join(format!("tlsca.{domain}-cert.pem")),
            ca_cert_pem.as_bytes(),
        )?;
        fs::create_dir_all(msp.join("admincerts"))?;
        write(&msp.join("config.yaml"), node_ous_yaml(&ca_file).as_bytes())?;
        Ok(Self {
            mspid: mspid.into(),
            domain: domain.into(),
            dir: dir.into(),
            ca_cert_pem,
            ca_key,
            ca_params: params,
        })
    }

    /// The CA certificate (PEM).
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    /// The org's MSP folder (for `configtx.yaml`'s `MSPDir`).
    pub fn msp_dir(&self) -> PathBuf {
        self.dir.join("msp")
    }

    /// Issues an identity `name` with role `ou` and writes its MSP folder;
    /// returns that folder. Orderers go under `orderers/`, peers under
    /// `peers/`, admins and clients under `users/`.
    pub fn issue(&self, name: &str, ou: NodeOu) -> io::Result<PathBuf> {
        self.issue_with_validity(name, ou, 3650)
    }

    /// As [`DevOrg::issue`], with a validity in days (negative: already expired).
    pub fn issue_with_validity(&self, name: &str, ou: NodeOu, days: i64) -> io::Result<PathBuf> {
        let sub = match ou {
            NodeOu::Orderer => "orderers",
            NodeOu::Peer => "peers",
            NodeOu::Admin | NodeOu::Client => "users",
        };
        let base = self.dir.join(sub).join(name).join("msp");
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(io_err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(io_err)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, "US");
        dn.push(DnType::StateOrProvinceName, "California");
        dn.push(DnType::LocalityName, "San Francisco");
        dn.push(DnType::OrganizationalUnitName, ou.as_str());
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        if days >= 0 {
            validity(&mut params, days.max(1));
        } else {
            let now = time::OffsetDateTime::now_utc();
            params.not_before = now - time::Duration::days(30);
            params.not_after = now + time::Duration::days(days);
        }
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).map_err(io_err)?;
        let ca_file = format!("ca.{}-cert.pem", self.domain);
        write(
            &base.join("signcerts").join(format!("{name}-cert.pem")),
            cert.pem().as_bytes(),
        )?;
        write(
            &base.join("keystore").join("priv_sk"),
            key.serialize_pem().as_bytes(),
        )?;
        write(
            &base.join("cacerts").join(&ca_file),
            self.ca_cert_pem.as_bytes(),
        )?;
        write(
            &base
                .join("tlscacerts")
                .join(format!("tlsca.{}-cert.pem", self.domain)),
            self.ca_cert_pem.as_bytes(),
        )?;
        fs::create_dir_all(base.join("admincerts"))?;
        write(
            &base.join("config.yaml"),
            node_ous_yaml(&ca_file).as_bytes(),
        )?;
        Ok(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msp::LocalSigner;

    #[test]
    fn issued_identity_loads_and_signs_verifiably() {
        let dir = tempfile::tempdir().unwrap();
        let org = DevOrg::create(&dir.path().join("org"), "SampleOrg", "example.com").unwrap();
        let msp = org.issue("orderer.example.com", NodeOu::Orderer).unwrap();
        let signer = LocalSigner::load(&msp, "SampleOrg").unwrap();
        let sig = signer.sign(b"hello");
        let pk = crate::msp::cert_public_key(signer.cert_der()).unwrap();
        crate::crypto::verify_p256(&pk, b"hello", &sig).unwrap();
        // The certificate names its role in the subject OU and is signed by the CA.
        let (_, cert) = x509_parser::parse_x509_certificate(signer.cert_der()).unwrap();
        let ou: Vec<_> = cert.subject().iter_organizational_unit().collect();
        assert_eq!(ou.len(), 1);
        assert_eq!(ou[0].as_str().unwrap(), "orderer");
        let ca = pem::parse(org.ca_cert_pem()).unwrap();
        let (_, ca) = x509_parser::parse_x509_certificate(ca.contents()).unwrap();
        cert.verify_signature(Some(ca.public_key())).unwrap();
        assert!(ca.is_ca());
        assert!(ca.extensions().iter().any(|e| matches!(
            e.parsed_extension(),
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(_)
        )));
        assert!(msp.join("config.yaml").is_file());
        assert!(org.msp_dir().join("cacerts").read_dir().unwrap().count() == 1);
    }
}
