//! X.509 certificates and CRLs reduced to the owned facts an MSP needs,
//! signature checks over them (via `ring`), and Fabric's low-S
//! "sanitisation" of ECDSA certificate signatures.
//!
//! Parsing never panics; anything `x509-parser` rejects, or any trailing
//! data after the DER structure, is an error.

use std::fmt;

use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::extensions::ParsedExtension;

use crate::der;

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_ECDSA_SHA1: &str = "1.2.840.10045.4.1";
const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const OID_ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
const OID_ECDSA_SHA512: &str = "1.2.840.10045.4.3.4";
const OID_RSA_SHA256: &str = "1.2.840.113549.1.1.11";
const OID_RSA_SHA384: &str = "1.2.840.113549.1.1.12";
const OID_RSA_SHA512: &str = "1.2.840.113549.1.1.13";
const OID_NETSCAPE_SGC: &str = "2.16.840.1.113730.4.1";
const OID_MICROSOFT_SGC: &str = "1.3.6.1.4.1.311.10.3.3";

/// P-256 group order.
pub(crate) const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
/// P-384 group order.
pub(crate) const P384_N: [u8; 48] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
];

/// The kind of a subject public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
    /// RSA (only usable to verify certificate/CRL signatures of CAs).
    Rsa,
    /// Anything else (other curves, DSA, Ed25519...).
    Other,
}

/// A subject public key: its type and the raw key bits (SEC1 point for
/// ECDSA, PKCS#1 `RSAPublicKey` for RSA).
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// Key type.
    pub key_type: KeyType,
    /// Raw subjectPublicKey bits.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}({})", self.key_type, hex::encode(&self.bytes))
    }
}

impl PublicKey {
    /// The half order of the key's curve, for low-S checks.
    pub(crate) fn curve_order(&self) -> Option<&'static [u8]> {
        match self.key_type {
            KeyType::EcdsaP256 => Some(&P256_N),
            KeyType::EcdsaP384 => Some(&P384_N),
            _ => None,
        }
    }
}

/// Why a certificate or CRL could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// The input is not a (single) DER certificate / CRL.
    #[error("{0}")]
    Parse(String),
    /// The signature does not verify or its algorithm is not supported.
    #[error("{0}")]
    Signature(String),
}

/// Extended key usage summary (for Go's default `ServerAuth` usage check).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Eku {
    pub any: bool,
    pub server_auth: bool,
    pub entries: usize,
}

/// An X.509 certificate with the facts the MSP uses, owned.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    tbs: Vec<u8>,
    sig_alg: String,
    signature: Vec<u8>,
    subject_raw: Vec<u8>,
    issuer_raw: Vec<u8>,
    subject: String,
    issuer: String,
    common_name: String,
    serial: Vec<u8>,
    not_before: i64,
    not_after: i64,
    version: u32,
    pub(crate) bc_valid: bool,
    pub(crate) is_ca: bool,
    pub(crate) path_len: Option<u32>,
    pub(crate) key_cert_sign: Option<bool>,
    pub(crate) ski: Option<Vec<u8>>,
    pub(crate) aki: Option<Vec<u8>>,
    pub(crate) eku: Option<Eku>,
    pub(crate) has_san: bool,
    pub(crate) has_name_constraints: bool,
    pub(crate) unhandled_critical: bool,
    ous: Vec<String>,
    key: PublicKey,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject)
            .field("issuer", &self.issuer)
            .field("serial", &hex::encode(&self.serial))
            .finish_non_exhaustive()
    }
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}
impl Eq for Certificate {}

fn oid_of(any: &Option<x509_parser::der_parser::asn1_rs::Any<'_>>) -> Option<String> {
    any.as_ref()
        .and_then(|a| a.clone().oid().ok())
        .map(|o| o.to_id_string())
}

impl Certificate {
    /// Parses one DER certificate (no trailing bytes allowed).
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let (rest, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| CertError::Parse(format!("x509: malformed certificate: {e}")))?;
        if !rest.is_empty() {
            return Err(CertError::Parse("x509: trailing data".into()));
        }
        let tbs = &cert.tbs_certificate;
        let spki = tbs.public_key();
        let key_type = match spki.algorithm.algorithm.to_id_string().as_str() {
            OID_EC_PUBLIC_KEY => match oid_of(&spki.algorithm.parameters).as_deref() {
                Some(OID_P256) => KeyType::EcdsaP256,
                Some(OID_P384) => KeyType::EcdsaP384,
                _ => KeyType::Other,
            },
            OID_RSA => KeyType::Rsa,
            _ => KeyType::Other,
        };
        let mut c = Certificate {
            der: der.to_vec(),
            tbs: tbs.as_ref().to_vec(),
            sig_alg: cert.signature_algorithm.algorithm.to_id_string(),
            signature: cert.signature_value.data.to_vec(),
            subject_raw: tbs.subject.as_raw().to_vec(),
            issuer_raw: tbs.issuer.as_raw().to_vec(),
            subject: tbs.subject.to_string(),
            issuer: tbs.issuer.to_string(),
            common_name: tbs
                .subject
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .unwrap_or_default()
                .to_string(),
            serial: tbs.serial.to_bytes_be(),
            not_before: tbs.validity.not_before.timestamp(),
            not_after: tbs.validity.not_after.timestamp(),
            version: tbs.version.0,
            bc_valid: false,
            is_ca: false,
            path_len: None,
            key_cert_sign: None,
            ski: None,
            aki: None,
            eku: None,
            has_san: false,
            has_name_constraints: false,
            unhandled_critical: false,
            ous: tbs
                .subject
                .iter_organizational_unit()
                .filter_map(|ou| ou.as_str().ok().map(str::to_string))
                .collect(),
            key: PublicKey {
                key_type,
                bytes: spki.subject_public_key.data.to_vec(),
            },
        };
        for ext in tbs.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::BasicConstraints(bc) => {
                    c.bc_valid = true;
                    c.is_ca = bc.ca;
                    c.path_len = bc.path_len_constraint;
                }
                ParsedExtension::KeyUsage(ku) => c.key_cert_sign = Some(ku.key_cert_sign()),
                ParsedExtension::SubjectKeyIdentifier(ki) => c.ski = Some(ki.0.to_vec()),
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    c.aki = aki.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                ParsedExtension::ExtendedKeyUsage(eku) => {
                    let sgc = eku.other.iter().any(|o| {
                        let s = o.to_id_string();
                        s == OID_NETSCAPE_SGC || s == OID_MICROSOFT_SGC
                    });
                    let entries = [
                        eku.any,
                        eku.server_auth,
                        eku.client_auth,
                        eku.code_signing,
                        eku.email_protection,
                        eku.time_stamping,
                        eku.ocsp_signing,
                    ]
                    .iter()
                    .filter(|b| **b)
                    .count()
                        + eku.other.len();
                    c.eku = Some(Eku {
                        any: eku.any,
                        server_auth: eku.server_auth || sgc,
                        entries,
                    });
                }
                ParsedExtension::SubjectAlternativeName(_) => c.has_san = true,
                ParsedExtension::NameConstraints(_) => c.has_name_constraints = true,
                ParsedExtension::UnsupportedExtension { .. }
                | ParsedExtension::ParseError { .. }
                    if ext.critical =>
                {
                    c.unhandled_critical = true
                }
                _ => {}
            }
        }
        Ok(c)
    }

    /// Parses the first PEM block of `pem_bytes` (any label, like Go's
    /// `pem.Decode`) as a certificate.
    pub fn from_pem(pem_bytes: &[u8]) -> Result<Self, CertError> {
        let block = first_pem_block(pem_bytes)
            .ok_or_else(|| CertError::Parse("could not decode the PEM structure".into()))?;
        Self::from_der(&block)
    }

    /// DER bytes (after low-S sanitisation when the MSP applied it).
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// Subject, RFC 4514 style.
    pub fn subject(&self) -> &str {
        &self.subject
    }
    /// Issuer, RFC 4514 style.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
    /// Serial number magnitude, big-endian.
    pub fn serial(&self) -> &[u8] {
        &self.serial
    }
    /// NotBefore, Unix seconds.
    pub fn not_before(&self) -> i64 {
        self.not_before
    }
    /// NotAfter, Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }
    /// Subject organizational units, in order.
    pub fn organizational_units(&self) -> &[String] {
        &self.ous
    }
    /// Subject public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.key
    }
    /// BasicConstraints CA flag.
    pub fn is_ca(&self) -> bool {
        self.is_ca
    }
    /// Subject key identifier.
    pub fn subject_key_id(&self) -> Option<&[u8]> {
        self.ski.as_deref()
    }
    pub(crate) fn subject_raw(&self) -> &[u8] {
        &self.subject_raw
    }
    pub(crate) fn issuer_raw(&self) -> &[u8] {
        &self.issuer_raw
    }
    pub(crate) fn common_name(&self) -> &str {
        &self.common_name
    }
    /// Whether the certificate is X.509 v3 (`version` field value 2).
    pub(crate) fn is_v3(&self) -> bool {
        self.version == 2
    }

    /// Whether `self` signed `child` (signature only; CA-ness is checked
    /// separately, like Go's `CheckSignatureFrom`).
    pub(crate) fn verify_child(&self, child: &Certificate) -> Result<(), CertError> {
        verify_signed(&self.key, &child.sig_alg, &child.tbs, &child.signature)
    }

    /// Go's `CheckSignatureFrom` constraints on the parent.
    pub(crate) fn may_sign_certificates(&self) -> bool {
        if self.is_v3() && !self.bc_valid || self.bc_valid && !self.is_ca {
            return false;
        }
        self.key_cert_sign != Some(false)
    }

    /// Fabric's sanitisation: when the certificate is ECDSA-signed and its
    /// signature's `s` is above half the order of the signer's curve, the
    /// certificate is re-encoded with `n - s` (the signature stays valid).
    /// Signatures are always re-encoded in minimal DER.
    pub(crate) fn sanitized(self, signer: &PublicKey) -> Result<Self, CertError> {
        if ![
            OID_ECDSA_SHA1,
            OID_ECDSA_SHA256,
            OID_ECDSA_SHA384,
            OID_ECDSA_SHA512,
        ]
        .contains(&self.sig_alg.as_str())
        {
            return Ok(self);
        }
        let Some(n) = signer.curve_order() else {
            return Err(CertError::Signature("curve not recognized".into()));
        };
        let (r, s) = der::ecdsa_sig(&self.signature).ok_or_else(|| {
            CertError::Signature("failed unmashalling signature: malformed ECDSA signature".into())
        })?;
        let half = der::sub_mag(n, &[1]); // (n - 1) / 2 computed below
        let half = shr1(&half);
        let s = if der::cmp_mag(&s, &half) == std::cmp::Ordering::Greater {
            der::sub_mag(n, &s)
        } else {
            s
        };
        let sig = der::encode_ecdsa_sig(&r, &s);
        if sig == self.signature {
            return Ok(self);
        }
        let [tbs, alg, _] = der::split_signed(&self.der)
            .ok_or_else(|| CertError::Parse("unmarshalling of the certificate failed".into()))?;
        let mut bits = Vec::with_capacity(sig.len() + 1);
        bits.push(0);
        bits.extend_from_slice(&sig);
        let mut body = Vec::with_capacity(self.der.len() + 4);
        body.extend_from_slice(tbs);
        body.extend_from_slice(alg);
        body.extend(der::encode(0x03, &bits));
        Certificate::from_der(&der::encode(0x30, &body))
    }
}

fn shr1(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut carry = 0u8;
    for b in v {
        out.push((b >> 1) | carry);
        carry = (b & 1) << 7;
    }
    let z = out.iter().take_while(|x| **x == 0).count();
    out.drain(..z);
    out
}

/// The DER content of the first PEM block (any label), like Go's
/// `pem.Decode`; `None` if there is none.
pub(crate) fn first_pem_block(bytes: &[u8]) -> Option<Vec<u8>> {
    // `pem::parse` wants the block to start the input; skip leading text.
    let start = bytes.windows(11).position(|w| w == b"-----BEGIN ")?;
    pem::parse(&bytes[start..]).ok().map(|p| p.into_contents())
}

/// Checks a signature made with `alg_oid` by `key` over `tbs`.
pub(crate) fn verify_signed(
    key: &PublicKey,
    alg_oid: &str,
    tbs: &[u8],
    sig: &[u8],
) -> Result<(), CertError> {
    let alg: &'static dyn VerificationAlgorithm = match (alg_oid, key.key_type) {
        (OID_ECDSA_SHA256, KeyType::EcdsaP256) => &signature::ECDSA_P256_SHA256_ASN1,
        (OID_ECDSA_SHA384, KeyType::EcdsaP256) => &signature::ECDSA_P256_SHA384_ASN1,
        (OID_ECDSA_SHA256, KeyType::EcdsaP384) => &signature::ECDSA_P384_SHA256_ASN1,
        (OID_ECDSA_SHA384, KeyType::EcdsaP384) => &signature::ECDSA_P384_SHA384_ASN1,
        (OID_RSA_SHA256, KeyType::Rsa) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (OID_RSA_SHA384, KeyType::Rsa) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (OID_RSA_SHA512, KeyType::Rsa) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (oid, kt) => {
            return Err(CertError::Signature(format!(
                "x509: signature algorithm {oid} with a {kt:?} key is not supported"
            )))
        }
    };
    UnparsedPublicKey::new(alg, &key.bytes)
        .verify(tbs, sig)
        .map_err(|_| CertError::Signature("x509: ECDSA verification failure".into()))
}

/// A certificate revocation list.
#[derive(Clone)]
pub struct Crl {
    tbs: Vec<u8>,
    sig_alg: String,
    signature: Vec<u8>,
    pub(crate) aki: Option<Vec<u8>>,
    pub(crate) revoked: Vec<Vec<u8>>,
}

impl fmt::Debug for Crl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crl")
            .field("aki", &self.aki.as_ref().map(hex::encode))
            .field("revoked", &self.revoked.len())
            .finish()
    }
}

impl Crl {
    /// Parses a CRL given as PEM (first block) or DER, like Go's
    /// `x509.ParseCRL`.
    pub fn parse(bytes: &[u8]) -> Result<Self, CertError> {
        let der = if bytes.starts_with(b"-----BEGIN") || !bytes.starts_with(&[0x30]) {
            first_pem_block(bytes)
                .ok_or_else(|| CertError::Parse("could not parse RevocationList".into()))?
        } else {
            bytes.to_vec()
        };
        let (rest, crl) = x509_parser::parse_x509_crl(&der)
            .map_err(|e| CertError::Parse(format!("could not parse RevocationList: {e}")))?;
        if !rest.is_empty() {
            return Err(CertError::Parse(
                "could not parse RevocationList: trailing data".into(),
            ));
        }
        let mut aki = None;
        for ext in crl.extensions() {
            if let ParsedExtension::AuthorityKeyIdentifier(a) = ext.parsed_extension() {
                aki = Some(
                    a.key_identifier
                        .as_ref()
                        .map(|k| k.0.to_vec())
                        .unwrap_or_default(),
                );
            }
        }
        // Go re-encodes ECDSA CRL signatures canonically at setup; a
        // malformed one is a setup error.
        let sig_alg = crl.signature_algorithm.algorithm.to_id_string();
        let mut signature = crl.signature_value.data.to_vec();
        if [
            OID_ECDSA_SHA1,
            OID_ECDSA_SHA256,
            OID_ECDSA_SHA384,
            OID_ECDSA_SHA512,
        ]
        .contains(&sig_alg.as_str())
        {
            let (r, s) = der::ecdsa_sig(&signature).ok_or_else(|| {
                CertError::Parse("failed unmashalling signature of the CRL".into())
            })?;
            signature = der::encode_ecdsa_sig(&r, &s);
        }
        Ok(Crl {
            tbs: crl.tbs_cert_list.as_ref().to_vec(),
            sig_alg,
            signature,
            aki,
            revoked: crl
                .iter_revoked_certificates()
                .map(|r| r.serial().to_bytes_be())
                .collect(),
        })
    }

    /// Whether `ca` signed this CRL.
    pub(crate) fn verify_by(&self, ca: &Certificate) -> Result<(), CertError> {
        verify_signed(&ca.key, &self.sig_alg, &self.tbs, &self.signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_orders() {
        assert_eq!(
            hex::encode(shr1(&der::sub_mag(&P256_N, &[1]))),
            "7fffffff800000007fffffffffffffffde737d56d38bcf4279dce5617e3192a8"
        );
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(0u8.., 0..600)) {
            let _ = Certificate::from_der(&bytes);
            let _ = Certificate::from_pem(&bytes);
            let _ = Crl::parse(&bytes);
        }

        #[test]
        fn der_prefixed_garbage_never_panics(tail in proptest::collection::vec(0u8.., 0..400)) {
            let mut bytes = vec![0x30, 0x82, 0x01, 0x90, 0x30, 0x82, 0x01, 0x38, 0xa0, 0x03, 0x02, 0x01, 0x02];
            bytes.extend(tail);
            let _ = Certificate::from_der(&bytes);
            let _ = Crl::parse(&bytes);
        }
    }
}
