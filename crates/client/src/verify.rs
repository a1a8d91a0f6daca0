//! Block signature verification, the way peers check orderer blocks
//! (`peer/gossip/mcs.go VerifyBlock`, minus the channel policy): the
//! SIGNATURES metadata slot holds `Metadata{value, signatures}`, and each
//! `MetadataSignature{signature_header, signature}` must be a low-S ECDSA
//! P-256 signature over `value || signature_header || header DER` by the
//! certificate in `SignatureHeader.creator`.
//!
//! Optionally ([`SignerTrust`]) the signing certificate must be one of a set
//! of pinned certificates or be issued directly by one of a set of CAs.

use std::path::Path;

use anyhow::{Context, Result};
use fabric_common::block::{header_bytes, metadata_at, METADATA_SLOTS, SIGNATURES};
use fabric_common::crypto::verify_p256;
use fabric_common::msp::{cert_public_key, LocalSigner};
use fabric_protos::common::{Block, BlockMetadata, Metadata, MetadataSignature, SignatureHeader};
use fabric_protos::msp::SerializedIdentity;
use prost::Message;
use ring::signature::{self, UnparsedPublicKey};
use x509_parser::prelude::*;

/// Why a block's signatures are not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockSigError {
    /// The block has no header.
    NoHeader,
    /// The SIGNATURES slot is missing, empty, or does not decode.
    NoSignatures,
    /// Signature `index` is unusable or does not verify.
    Bad {
        /// Position in `Metadata.signatures`.
        index: usize,
        /// What is wrong.
        reason: String,
    },
}

impl std::fmt::Display for BlockSigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlockSigError::NoHeader => write!(f, "block has no header"),
            BlockSigError::NoSignatures => write!(f, "block carries no orderer signature"),
            BlockSigError::Bad { index, reason } => write!(f, "signature {index}: {reason}"),
        }
    }
}

impl std::error::Error for BlockSigError {}

/// Who signed a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockSigner {
    /// The creator's MSP ID.
    pub mspid: String,
    /// The creator's certificate (DER).
    pub cert_der: Vec<u8>,
}

/// Which signing certificates are accepted. Empty means "any certificate
/// whose signature verifies".
#[derive(Debug, Clone, Default)]
pub struct SignerTrust {
    /// CA certificates (DER); a signer certificate issued by one of them is accepted.
    pub cas: Vec<Vec<u8>>,
    /// Certificates (DER) accepted as they are.
    pub pinned: Vec<Vec<u8>>,
}

/// All certificates in a PEM bundle, as DER.
pub fn pem_certs(pem_bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    let items = ::pem::parse_many(pem_bytes).context("bad PEM")?;
    Ok(items
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.contents().to_vec())
        .collect())
}

impl SignerTrust {
    /// No restriction beyond valid signatures.
    pub fn any() -> Self {
        Self::default()
    }

    /// Whether no restriction is configured.
    pub fn is_empty(&self) -> bool {
        self.cas.is_empty() && self.pinned.is_empty()
    }

    /// Adds the CA certificates of a PEM file.
    pub fn add_ca_file(&mut self, path: &Path) -> Result<()> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let certs = pem_certs(&bytes).with_context(|| path.display().to_string())?;
        anyhow::ensure!(!certs.is_empty(), "{}: no certificate", path.display());
        self.cas.extend(certs);
        Ok(())
    }

    /// Adds the CAs of an MSP folder (`cacerts/` and `intermediatecerts/`).
    pub fn add_msp_dir(&mut self, msp_dir: &Path) -> Result<()> {
        let mut found = 0;
        for sub in ["cacerts", "intermediatecerts"] {
            let dir = msp_dir.join(sub);
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in rd.flatten() {
                let p = entry.path();
                if p.is_file() {
                    let bytes = std::fs::read(&p)?;
                    let certs = pem_certs(&bytes).with_context(|| p.display().to_string())?;
                    found += certs.len();
                    self.cas.extend(certs);
                }
            }
        }
        anyhow::ensure!(
            found > 0,
            "{}: no CA certificate in cacerts/",
            msp_dir.display()
        );
        Ok(())
    }

    /// Accepts a certificate given in PEM: pinned as is, and as a CA if it is one.
    pub fn add_trusted_pem(&mut self, pem_bytes: &[u8]) -> Result<()> {
        for der in pem_certs(pem_bytes)? {
            if let Ok((_, c)) = parse_x509_certificate(&der) {
                if c.is_ca() {
                    self.cas.push(der.clone());
                }
            }
            self.pinned.push(der);
        }
        Ok(())
    }

    /// Checks a signer certificate against the configured trust.
    pub fn check(&self, cert_der: &[u8]) -> Result<(), String> {
        if self.is_empty() || self.pinned.iter().any(|p| p == cert_der) {
            return Ok(());
        }
        let (_, cert) =
            parse_x509_certificate(cert_der).map_err(|e| format!("certificate: {e}"))?;
        for ca in &self.cas {
            if issued_by(&cert, ca) {
                return Ok(());
            }
        }
        Err(format!("certificate {} is not trusted", cert.subject()))
    }
}

/// Whether `cert` carries a valid signature by the CA certificate `ca_der`
/// (ECDSA P-256 with SHA-256 or SHA-384) and names it as issuer.
fn issued_by(cert: &X509Certificate<'_>, ca_der: &[u8]) -> bool {
    let Ok((_, ca)) = parse_x509_certificate(ca_der) else {
        return false;
    };
    if cert.issuer().as_raw() != ca.subject().as_raw() {
        return false;
    }
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    let alg: &dyn signature::VerificationAlgorithm = match oid.as_str() {
        "1.2.840.10045.4.3.2" => &signature::ECDSA_P256_SHA256_ASN1,
        "1.2.840.10045.4.3.3" => &signature::ECDSA_P256_SHA384_ASN1,
        _ => return false,
    };
    let key = ca.public_key().subject_public_key.data.as_ref();
    UnparsedPublicKey::new(alg, key)
        .verify(
            cert.tbs_certificate.as_ref(),
            cert.signature_value.data.as_ref(),
        )
        .is_ok()
}

/// The bytes an orderer signs: `value || signature_header || header DER`.
pub fn signed_bytes(block: &Block, value: &[u8], signature_header: &[u8]) -> Option<Vec<u8>> {
    let header = block.header.as_ref()?;
    let hb = header_bytes(header);
    let mut msg = Vec::with_capacity(value.len() + signature_header.len() + hb.len());
    msg.extend_from_slice(value);
    msg.extend_from_slice(signature_header);
    msg.extend_from_slice(&hb);
    Some(msg)
}

/// Verifies every signature in the block's SIGNATURES slot (at least one
/// is required) and returns the signers.
pub fn verify_block_signatures(
    block: &Block,
    trust: &SignerTrust,
) -> Result<Vec<BlockSigner>, BlockSigError> {
    if block.header.is_none() {
        return Err(BlockSigError::NoHeader);
    }
    let md = metadata_at(block, SIGNATURES).ok_or(BlockSigError::NoSignatures)?;
    if md.signatures.is_empty() {
        return Err(BlockSigError::NoSignatures);
    }
    let mut signers = Vec::with_capacity(md.signatures.len());
    for (index, ms) in md.signatures.iter().enumerate() {
        let bad = |reason: String| BlockSigError::Bad { index, reason };
        let sh = SignatureHeader::decode(ms.signature_header.as_slice())
            .map_err(|e| bad(format!("signature header: {e}")))?;
        let id = SerializedIdentity::decode(sh.creator.as_slice())
            .map_err(|e| bad(format!("creator: {e}")))?;
        let cert =
            ::pem::parse(&id.id_bytes).map_err(|e| bad(format!("creator certificate: {e}")))?;
        let cert_der = cert.contents().to_vec();
        let pk = cert_public_key(&cert_der).map_err(bad)?;
        let msg =
            signed_bytes(block, &md.value, &ms.signature_header).ok_or(BlockSigError::NoHeader)?;
        verify_p256(&pk, &msg, &ms.signature).map_err(|e| bad(format!("{} ({})", e, id.mspid)))?;
        trust.check(&cert_der).map_err(bad)?;
        signers.push(BlockSigner {
            mspid: id.mspid,
            cert_der,
        });
    }
    Ok(signers)
}

/// Signs a block as Fabric's `addBlockSignature` does, replacing the
/// SIGNATURES slot with `Metadata{value, [signature]}` (for tests and tools).
pub fn sign_block(block: &mut Block, signer: &LocalSigner, value: Vec<u8>) {
    let shdr = signer.new_signature_header().encode_to_vec();
    let msg = signed_bytes(block, &value, &shdr).expect("block has a header");
    let sig = signer.sign(&msg);
    let md = Metadata {
        value,
        signatures: vec![MetadataSignature {
            signature_header: shdr,
            signature: sig,
        }],
    };
    let slots = &mut block
        .metadata
        .get_or_insert_with(BlockMetadata::default)
        .metadata;
    if slots.len() < METADATA_SLOTS {
        slots.resize(METADATA_SLOTS, Vec::new());
    }
    slots[SIGNATURES] = md.encode_to_vec();
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_common::block::{header_hash, new_block};
    use fabric_common::devcrypto::{DevOrg, NodeOu};
    use fabric_protos::common::{LastConfig, OrdererBlockMetadata};

    fn org(dir: &Path, name: &str) -> (DevOrg, LocalSigner) {
        let org = DevOrg::create(
            &dir.join(name),
            name,
            &format!("{}.example.com", name.to_lowercase()),
        )
        .unwrap();
        let msp = org.issue("orderer0", NodeOu::Orderer).unwrap();
        let signer = LocalSigner::load(&msp, name).unwrap();
        (org, signer)
    }

    fn obm(index: u64) -> Vec<u8> {
        OrdererBlockMetadata {
            last_config: Some(LastConfig { index }),
            consenter_metadata: vec![],
        }
        .encode_to_vec()
    }

    #[test]
    fn self_signed_block_verifies_and_tampering_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let (org1, signer) = org(dir.path(), "OrdererOrg");
        let (org2, _other) = org(dir.path(), "OtherOrg");

        let b0 = new_block(0, vec![], vec![b"genesis".to_vec()]);
        let mut b1 = new_block(
            1,
            header_hash(b0.header.as_ref().unwrap()),
            vec![b"tx".to_vec()],
        );
        sign_block(&mut b1, &signer, obm(0));

        let signers = verify_block_signatures(&b1, &SignerTrust::any()).unwrap();
        assert_eq!(signers.len(), 1);
        assert_eq!(signers[0].mspid, "OrdererOrg");
        assert_eq!(signers[0].cert_der, signer.cert_der());

        // CA trust: the issuing CA accepts, another CA rejects.
        let mut good = SignerTrust::any();
        good.add_ca_file(
            &org1
                .dir
                .join("msp/cacerts/ca.ordererorg.example.com-cert.pem"),
        )
        .unwrap();
        verify_block_signatures(&b1, &good).unwrap();
        let mut msp_trust = SignerTrust::any();
        msp_trust.add_msp_dir(&org1.msp_dir()).unwrap();
        verify_block_signatures(&b1, &msp_trust).unwrap();
        let mut wrong = SignerTrust::any();
        wrong.add_msp_dir(&org2.msp_dir()).unwrap();
        assert!(matches!(
            verify_block_signatures(&b1, &wrong),
            Err(BlockSigError::Bad { index: 0, .. })
        ));
        // Pinned certificate (and a CA given as "trusted PEM").
        let mut pinned = SignerTrust::any();
        pinned.add_trusted_pem(signer.cert_pem()).unwrap();
        assert!(pinned.cas.is_empty());
        verify_block_signatures(&b1, &pinned).unwrap();
        let mut ca_pem = SignerTrust::any();
        ca_pem
            .add_trusted_pem(org1.ca_cert_pem().as_bytes())
            .unwrap();
        assert_eq!(ca_pem.cas.len(), 1);
        verify_block_signatures(&b1, &ca_pem).unwrap();

        // Header tampering breaks the signature.
        let mut t = b1.clone();
        t.header.as_mut().unwrap().number = 2;
        assert!(matches!(
            verify_block_signatures(&t, &SignerTrust::any()),
            Err(BlockSigError::Bad { .. })
        ));
        let mut t = b1.clone();
        t.header.as_mut().unwrap().data_hash[0] ^= 1;
        assert!(verify_block_signatures(&t, &SignerTrust::any()).is_err());

        // Value tampering breaks it too.
        let mut t = b1.clone();
        let mut md = metadata_at(&t, SIGNATURES).unwrap();
        md.value = obm(7);
        t.metadata.as_mut().unwrap().metadata[SIGNATURES] = md.encode_to_vec();
        assert!(verify_block_signatures(&t, &SignerTrust::any()).is_err());

        // A signature made by someone else under the orderer's creator fails.
        let mut t = b1.clone();
        let mut md = metadata_at(&t, SIGNATURES).unwrap();
        let msg = signed_bytes(&t, &md.value, &md.signatures[0].signature_header).unwrap();
        md.signatures[0].signature = _other.sign(&msg);
        t.metadata.as_mut().unwrap().metadata[SIGNATURES] = md.encode_to_vec();
        assert!(verify_block_signatures(&t, &SignerTrust::any()).is_err());

        // Unsigned block.
        assert_eq!(
            verify_block_signatures(&b0, &SignerTrust::any()),
            Err(BlockSigError::NoSignatures)
        );
    }

    #[test]
    fn high_s_signature_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let (_org, signer) = org(dir.path(), "OrdererOrg");
        let mut b = new_block(3, vec![1; 32], vec![b"x".to_vec()]);
        sign_block(&mut b, &signer, obm(0));
        let mut md = metadata_at(&b, SIGNATURES).unwrap();
        // Flip s to n - s: still a mathematically valid signature, but high-S.
        md.signatures[0].signature = flip_s(&md.signatures[0].signature);
        b.metadata.as_mut().unwrap().metadata[SIGNATURES] = md.encode_to_vec();
        let err = verify_block_signatures(&b, &SignerTrust::any()).unwrap_err();
        assert!(err.to_string().contains("invalid S"), "{err}");
    }

    /// DER (r, s) → (r, n - s).
    fn flip_s(sig: &[u8]) -> Vec<u8> {
        const N: [u8; 32] = [
            0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2,
            0xfc, 0x63, 0x25, 0x51,
        ];
        let rlen = sig[3] as usize;
        let r = &sig[4..4 + rlen];
        let slen = sig[5 + rlen] as usize;
        let s = &sig[6 + rlen..6 + rlen + slen];
        let mut s32 = [0u8; 32];
        let s = if s.len() > 32 { &s[s.len() - 32..] } else { s };
        s32[32 - s.len()..].copy_from_slice(s);
        let mut out = [0u8; 32];
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let mut d = N[i] as i16 - s32[i] as i16 - borrow;
            borrow = if d < 0 {
                d += 256;
                1
            } else {
                0
            };
            out[i] = d as u8;
        }
        let int = |b: &[u8]| {
            let z = b.iter().take_while(|x| **x == 0).count().min(b.len() - 1);
            let mut v = b[z..].to_vec();
            if v[0] & 0x80 != 0 {
                v.insert(0, 0);
            }
            let mut e = vec![0x02, v.len() as u8];
            e.extend(v);
            e
        };
        let mut body = int(r);
        body.extend(int(&out));
        let mut der = vec![0x30, body.len() as u8];
        der.extend(body);
        der
    }
}
