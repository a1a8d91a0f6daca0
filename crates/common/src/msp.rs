//! The local MSP signing identity (`General.LocalMSPDir` / `LocalMSPID`):
//! the certificate in `signcerts/` and its private key in `keystore/`
//! (PKCS#8 PEM, as cryptogen and fabric-ca write it), or in a PKCS#11 token
//! (`General.BCCSP.Default: PKCS11`, see [`crate::pkcs11`]).

use std::fmt;
use std::path::{Path, PathBuf};

use fabric_protos::common::SignatureHeader;
use fabric_protos::msp::SerializedIdentity;
use prost::Message;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

use crate::crypto;
use crate::envelope::new_nonce;
use crate::pkcs11::{Pkcs11Settings, TokenKey};

/// Where the private key of the local MSP lives (`General.BCCSP.Default`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum KeySource {
    /// `SW`: a PKCS#8 PEM file in `keystore/`.
    #[default]
    Software,
    /// `PKCS11`: a token; `keystore/` is not read.
    Pkcs11(Pkcs11Settings),
}

/// The private half of the identity.
enum SigningKey {
    Software {
        key: EcdsaKeyPair,
        rng: SystemRandom,
    },
    Token(TokenKey),
}

/// Why a local MSP could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum MspError {
    /// A file or folder could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The MSP folder's content is unusable.
    #[error("{path}: {reason}")]
    Invalid {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A signing identity: certificate, key and MSP ID.
pub struct LocalSigner {
    mspid: String,
    cert_pem: Vec<u8>,
    cert_der: Vec<u8>,
    key: SigningKey,
    creator: Vec<u8>,
}

impl fmt::Debug for LocalSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSigner")
            .field("mspid", &self.mspid)
            .finish_non_exhaustive()
    }
}

/// The first file of `signcerts/` and its bytes.
fn read_signcert(msp_dir: &Path) -> Result<(PathBuf, Vec<u8>), MspError> {
    let signcerts = msp_dir.join("signcerts");
    let cert_file = read_dir_files(&signcerts)?
        .into_iter()
        .next()
        .ok_or_else(|| MspError::Invalid {
            path: signcerts.clone(),
            reason: "no certificate found".into(),
        })?;
    let cert_pem = std::fs::read(&cert_file).map_err(|e| MspError::Io {
        path: cert_file.clone(),
        source: e,
    })?;
    Ok((cert_file, cert_pem))
}

fn read_dir_files(dir: &Path) -> Result<Vec<PathBuf>, MspError> {
    let rd = std::fs::read_dir(dir).map_err(|e| MspError::Io {
        path: dir.into(),
        source: e,
    })?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

impl LocalSigner {
    /// Loads the identity from an MSP folder, its key from `source`.
    pub fn load_with(msp_dir: &Path, mspid: &str, source: &KeySource) -> Result<Self, MspError> {
        match source {
            KeySource::Software => Self::load(msp_dir, mspid),
            KeySource::Pkcs11(settings) => Self::load_pkcs11(msp_dir, mspid, settings),
        }
    }

    /// The certificate from `signcerts/`, the key from a PKCS#11 token.
    fn load_pkcs11(
        msp_dir: &Path,
        mspid: &str,
        settings: &Pkcs11Settings,
    ) -> Result<Self, MspError> {
        let (cert_file, cert_pem) = read_signcert(msp_dir)?;
        let invalid = |reason: String| MspError::Invalid {
            path: cert_file.clone(),
            reason,
        };
        let cert = pem::parse(&cert_pem).map_err(|e| invalid(format!("certificate: {e}")))?;
        let cert_der = cert.contents().to_vec();
        let public = cert_public_key(&cert_der).map_err(invalid)?;
        let token = TokenKey::open(settings, &public).map_err(|e| MspError::Invalid {
            path: settings.library.clone(),
            reason: e.to_string(),
        })?;
        tracing::info!(
            label = %settings.label,
            cka_id = %token.id_hex(),
            "local MSP signs with a PKCS#11 token key"
        );
        Ok(Self::assemble(
            mspid,
            cert_pem,
            cert_der,
            SigningKey::Token(token),
        ))
    }

    fn assemble(mspid: &str, cert_pem: Vec<u8>, cert_der: Vec<u8>, key: SigningKey) -> Self {
        let creator = SerializedIdentity {
            mspid: mspid.to_string(),
            id_bytes: cert_pem.clone(),
        }
        .encode_to_vec();
        Self {
            mspid: mspid.into(),
            cert_pem,
            cert_der,
            key,
            creator,
        }
    }

    /// Loads the identity from an MSP folder in Fabric's layout.
    pub fn load(msp_dir: &Path, mspid: &str) -> Result<Self, MspError> {
        let (_, cert_pem) = read_signcert(msp_dir)?;
        let keystore = msp_dir.join("keystore");
        let mut keys = Vec::new();
        for f in read_dir_files(&keystore)? {
            let bytes = std::fs::read(&f).map_err(|e| MspError::Io {
                path: f.clone(),
                source: e,
            })?;
            keys.push((f, bytes));
        }
        let mut last_err = MspError::Invalid {
            path: keystore.clone(),
            reason: "no private key matching the signing certificate".into(),
        };
        for (path, key_pem) in keys {
            match Self::from_pem(mspid, &cert_pem, &key_pem) {
                Ok(s) => return Ok(s),
                Err(MspError::Invalid { reason, .. }) if reason.contains("does not match") => {}
                Err(MspError::Invalid { reason, .. }) => {
                    last_err = MspError::Invalid { path, reason };
                }
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }

    /// Builds an identity from a PEM certificate and a PEM PKCS#8 P-256 key.
    pub fn from_pem(mspid: &str, cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, MspError> {
        let invalid = |reason: String| MspError::Invalid {
            path: PathBuf::new(),
            reason,
        };
        let cert = pem::parse(cert_pem).map_err(|e| invalid(format!("certificate: {e}")))?;
        let key = pem::parse(key_pem).map_err(|e| invalid(format!("private key: {e}")))?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, key.contents(), &rng)
            .map_err(|e| invalid(format!("private key is not PKCS#8 ECDSA P-256: {e}")))?;
        let cert_der = cert.contents().to_vec();
        let public = cert_public_key(&cert_der).map_err(invalid)?;
        if public != key.public_key().as_ref() {
            return Err(invalid("private key does not match the certificate".into()));
        }
        Ok(Self::assemble(
            mspid,
            cert_pem.to_vec(),
            cert_der,
            SigningKey::Software { key, rng },
        ))
    }

    /// The MSP ID.
    pub fn mspid(&self) -> &str {
        &self.mspid
    }

    /// The PEM certificate.
    pub fn cert_pem(&self) -> &[u8] {
        &self.cert_pem
    }

    /// The DER certificate.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Marshaled `msp.SerializedIdentity` (the `creator` field).
    pub fn creator(&self) -> &[u8] {
        &self.creator
    }

    /// A fresh `SignatureHeader` (creator and 24-byte nonce).
    pub fn new_signature_header(&self) -> SignatureHeader {
        SignatureHeader {
            creator: self.creator.clone(),
            nonce: new_nonce(),
        }
    }

    /// ECDSA P-256 over SHA-256(msg), DER, low-S.
    ///
    /// Panics when the key cannot sign: an RNG failure, or a token that
    /// still fails after its session was re-opened (as Fabric's block
    /// writer, which signs "or panics").
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match &self.key {
            SigningKey::Software { key, rng } => {
                // ring only fails on RNG failure, which is unrecoverable.
                let sig = key.sign(rng, msg).expect("system RNG failed");
                crypto::to_low_s(sig.as_ref()).expect("ring produced a malformed signature")
            }
            SigningKey::Token(token) => token
                .sign(msg)
                .unwrap_or_else(|e| panic!("local MSP signature failed: {e}")),
        }
    }
}

/// The uncompressed SEC1 public key of a DER certificate.
pub fn cert_public_key(cert_der: &[u8]) -> Result<Vec<u8>, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| format!("certificate does not parse: {e}"))?;
    Ok(cert.public_key().subject_public_key.data.to_vec())
}

/// The public key of a PEM certificate.
pub fn pem_cert_public_key(cert_pem: &[u8]) -> Result<Vec<u8>, String> {
    let cert = pem::parse(cert_pem).map_err(|e| format!("certificate PEM: {e}"))?;
    cert_public_key(cert.contents())
}
