//! One X.509 ("FABRIC" type) membership service provider, built from a
//! channel config `MSPConfig`, with the behaviour of Fabric's `bccspmsp`
//! for the MSP versions selected by channel capabilities.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fabric_common::crypto::KeyStanding;
use fabric_protos::common::{
    msp_identity_anonymity::MspIdentityAnonymityType, msp_principal::Classification,
    msp_role::MspRoleType, CombinedPrincipal, MspIdentityAnonymity, MspPrincipal, MspRole,
    OrganizationUnit,
};
use fabric_protos::msp::{FabricMspConfig, FabricOuIdentifier, MspConfig, SerializedIdentity};
use prost::Message;
use sha2::{Digest, Sha256, Sha384};

use crate::cert::{first_pem_block, Certificate, Crl, KeyType, PublicKey};
use crate::der;

/// MSP type `FABRIC` in `MSPConfig.type`.
pub const MSP_TYPE_FABRIC: i32 = 0;
/// MSP type `IDEMIX` in `MSPConfig.type`.
pub const MSP_TYPE_IDEMIX: i32 = 1;

/// An MSP error; the text follows Fabric's wording where Fabric has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MspError(pub String);

impl MspError {
    pub(crate) fn new(s: impl Into<String>) -> Self {
        MspError(s.into())
    }
    /// Prefixes the message (Go's `errors.WithMessage`).
    pub(crate) fn context(self, msg: &str) -> Self {
        MspError(format!("{msg}: {}", self.0))
    }
}

/// The MSP behaviour level, chosen by the channel capabilities
/// (Fabric's `ChannelProvider.MSPVersion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MspVersion {
    /// No capability: no NodeOUs, no combined/anonymity principals.
    V1_0,
    /// `V1_1`: NodeOUs for client and peer.
    V1_1,
    /// `V1_3` or `V1_4_2`: combined and anonymity principals.
    V1_3,
    /// `V1_4_3`, `V2_0`, `V3_0`: admin and orderer NodeOUs.
    V1_4_3,
}

impl MspVersion {
    /// The version for a set of channel capability names.
    pub fn from_channel_capabilities<'a>(caps: impl IntoIterator<Item = &'a str>) -> Self {
        let mut v = MspVersion::V1_0;
        for c in caps {
            let cv = match c {
                "V3_0" | "V2_0" | "V1_4_3" => MspVersion::V1_4_3,
                "V1_3" | "V1_4_2" => MspVersion::V1_3,
                "V1_1" => MspVersion::V1_1,
                _ => MspVersion::V1_0,
            };
            v = v.max(cv);
        }
        v
    }
}

/// An organizational unit of an identity, with the hash of the
/// certification chain that vouches for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OuIdentifier {
    /// The OU string from the certificate subject.
    pub organizational_unit_identifier: String,
    /// Hash of the CA certificates of the chain (issuer up to root).
    pub certifiers_identifier: Vec<u8>,
}

fn ouids(ous: &[OuIdentifier]) -> String {
    let parts: Vec<String> = ous
        .iter()
        .map(|o| {
            let n = o.certifiers_identifier.len().min(8);
            format!(
                "{}({})",
                o.organizational_unit_identifier,
                hex::encode_upper(&o.certifiers_identifier[..n])
            )
        })
        .collect();
    format!("[{}]", parts.join(" "))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdHash {
    Sha256,
    Sha384,
}

impl IdHash {
    fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        match self {
            IdHash::Sha256 => {
                let mut h = Sha256::new();
                for p in parts {
                    h.update(p);
                }
                h.finalize().to_vec()
            }
            IdHash::Sha384 => {
                let mut h = Sha384::new();
                for p in parts {
                    h.update(p);
                }
                h.finalize().to_vec()
            }
        }
    }
}

static NEXT_MSP_UID: AtomicU64 = AtomicU64::new(1);

const CLIENT: usize = 0;
const PEER: usize = 1;
const ADMIN: usize = 2;
const ORDERER: usize = 3;

/// A validated-at-setup X.509 MSP.
pub struct Msp {
    uid: u64,
    name: String,
    version: MspVersion,
    id_hash: IdHash,
    roots: Vec<Arc<Certificate>>,
    intermediates: Vec<Arc<Certificate>>,
    internal_nodes: HashSet<Vec<u8>>,
    admins: Vec<Certificate>,
    crls: Vec<Crl>,
    ou_identifiers: HashMap<String, Vec<Vec<u8>>>,
    ou_enforcement: bool,
    node_ous: [Option<OuIdentifier>; 4],
    tls_root_certs: Vec<Vec<u8>>,
    tls_intermediate_certs: Vec<Vec<u8>>,
}

impl fmt::Debug for Msp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Msp")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("roots", &self.roots.len())
            .field("intermediates", &self.intermediates.len())
            .field("admins", &self.admins.len())
            .field("crls", &self.crls.len())
            .field("node_ous", &self.ou_enforcement)
            .finish_non_exhaustive()
    }
}

/// A deserialized identity (certificate, key, OUs) of one MSP. Validation
/// against the MSP is memoised inside the identity.
pub struct Identity {
    mspid: String,
    id: String,
    cert: Certificate,
    ous: Vec<OuIdentifier>,
    chain: Result<Vec<Arc<Certificate>>, MspError>,
    msp_uid: u64,
    validation: OnceLock<Result<(), MspError>>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("mspid", &self.mspid)
            .field("subject", &self.cert.subject())
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// The MSP ID.
    pub fn mspid(&self) -> &str {
        &self.mspid
    }
    /// Fabric's identity identifier: hex hash of the (sanitised) certificate.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The certificate (after low-S sanitisation).
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }
    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        self.cert.public_key()
    }
    /// The OUs with their certifiers identifier (empty when the
    /// certificate does not chain to this MSP, as in Fabric).
    pub fn organizational_units(&self) -> &[OuIdentifier] {
        &self.ous
    }
    /// The certificate's NotAfter, in Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.cert.not_after()
    }
    /// The certificate's NotAfter (Fabric's `ExpiresAt`).
    pub fn expires_at(&self) -> SystemTime {
        let t = self.cert.not_after();
        if t >= 0 {
            UNIX_EPOCH + Duration::from_secs(t as u64)
        } else {
            UNIX_EPOCH - Duration::from_secs(t.unsigned_abs())
        }
    }
    /// Whether NotAfter is before `now` (Fabric: `ExpiresAt().Before(now)`).
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        self.expires_at() < now
    }

    /// Verifies `sig` over `msg`: ECDSA with SHA-256 of `msg` (Fabric's
    /// SHA2 family), P-256 or P-384 key, DER signature, low-S required.
    /// A P-256 key counts toward a precomputed verification table
    /// (`fabric_common::crypto`) only once this identity's own MSP has
    /// validated it (the memo [`Msp::validate`] leaves, which
    /// [`crate::MspManager::deserialize_identity`] sets for every cached
    /// identity), so throw-away certificates cannot churn the table cache.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), MspError> {
        let standing = if matches!(self.validation.get(), Some(Ok(()))) {
            KeyStanding::ValidatedIdentity
        } else {
            KeyStanding::Unvetted
        };
        verify_signature_with(self.cert.public_key(), msg, sig, standing)
    }
}

/// ECDSA verification as Fabric's BCCSP does it (SHA-256 digest, low-S).
/// The key is not known to belong to a validated identity: it never gets a
/// precomputed table of its own.
pub fn verify_signature(key: &PublicKey, msg: &[u8], sig: &[u8]) -> Result<(), MspError> {
    verify_signature_with(key, msg, sig, KeyStanding::Unvetted)
}

fn verify_signature_with(
    key: &PublicKey,
    msg: &[u8],
    sig: &[u8],
    standing: KeyStanding,
) -> Result<(), MspError> {
    use fabric_common::crypto::{verify_p256_with, SignatureError};
    let undetermined = |e: &str| {
        MspError::new(format!(
            "could not determine the validity of the signature: {e}"
        ))
    };
    match key.key_type {
        KeyType::EcdsaP256 => {
            verify_p256_with(&key.bytes, msg, sig, standing).map_err(|e| match e {
                SignatureError::HighS => {
                    undetermined("Invalid S. Must be smaller than half the order")
                }
                SignatureError::Malformed => undetermined("failed unmashalling signature"),
                SignatureError::Invalid => MspError::new("The signature is invalid"),
            })
        }
        KeyType::EcdsaP384 => {
            let (_, s) =
                der::ecdsa_sig(sig).ok_or_else(|| undetermined("failed unmashalling signature"))?;
            let half = {
                let nm1 = der::sub_mag(&crate::cert::P384_N, &[1]);
                let mut out = Vec::with_capacity(nm1.len());
                let mut carry = 0u8;
                for b in &nm1 {
                    out.push((b >> 1) | carry);
                    carry = (b & 1) << 7;
                }
                out
            };
            if der::cmp_mag(&s, &half) == std::cmp::Ordering::Greater {
                return Err(undetermined(
                    "Invalid S. Must be smaller than half the order",
                ));
            }
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P384_SHA256_ASN1,
                &key.bytes,
            )
            .verify(msg, sig)
            .map_err(|_| MspError::new("The signature is invalid"))
        }
        other => Err(undetermined(&format!("unsupported key type {other:?}"))),
    }
}

struct Pools<'a> {
    roots: &'a [Arc<Certificate>],
    intermediates: &'a [Arc<Certificate>],
}

const MAX_SIG_CHECKS: usize = 100;

fn time_ok(c: &Certificate, now: i64) -> Result<(), String> {
    if now < c.not_before() || now > c.not_after() {
        return Err(format!(
            "x509: certificate has expired or is not yet valid: current time {now} is outside [{}, {}] of {}",
            c.not_before(),
            c.not_after(),
            c.subject()
        ));
    }
    Ok(())
}

impl Pools<'_> {
    /// Go's `x509.Certificate.Verify` with Fabric's options: roots and
    /// intermediates from the MSP, `CurrentTime = NotBefore + 1s` of the
    /// certificate, default key usage (server auth). Returns the single
    /// chain `[issuer, ..., root]` (empty when `cert` is itself a root).
    fn unique_chain(&self, cert: &Certificate) -> Result<Vec<Arc<Certificate>>, MspError> {
        let now = cert.not_before().saturating_add(1);
        let wrap = |e: String| MspError::new(format!("the supplied identity is not valid: {e}"));
        if cert.unhandled_critical {
            return Err(wrap("x509: unhandled critical extension".into()));
        }
        time_ok(cert, now).map_err(wrap)?;
        let mut chains: Vec<Vec<Arc<Certificate>>> = Vec::new();
        if self.roots.iter().any(|r| r.der() == cert.der()) {
            chains.push(Vec::new());
        } else {
            let mut sig_checks = 0;
            let mut last_err = None;
            let mut current = Vec::new();
            self.build(
                cert,
                cert,
                &mut current,
                now,
                &mut chains,
                &mut sig_checks,
                &mut last_err,
            )
            .map_err(wrap)?;
            if chains.is_empty() {
                return Err(wrap(last_err.unwrap_or_else(|| {
                    "x509: certificate signed by unknown authority".to_string()
                })));
            }
        }
        // Go's default ExtKeyUsageServerAuth requirement (Fabric sets no
        // KeyUsages): every certificate of the chain that lists extended
        // key usages must allow server auth or any.
        let eku_ok = |c: &Certificate| match &c.eku {
            None => true,
            Some(e) => e.entries == 0 || e.any || e.server_auth,
        };
        let total = chains.len();
        chains.retain(|ch| eku_ok(cert) && ch.iter().all(|c| eku_ok(c)));
        if chains.is_empty() && total > 0 {
            return Err(wrap(
                "x509: certificate specifies an incompatible key usage".into(),
            ));
        }
        if chains.len() != 1 {
            return Err(MspError::new(format!(
                "this MSP only supports a single validation chain, got {}",
                chains.len()
            )));
        }
        let chain = chains.pop().unwrap_or_default();
        // Go 1.14's name-constraint rule kept by Fabric.
        if !chain.is_empty()
            && !cert.has_san
            && valid_hostname(cert.common_name())
            && chain.iter().any(|c| c.has_name_constraints)
        {
            return Err(wrap(
                "x509: issuer has name constraints but leaf doesn't have a SAN extension".into(),
            ));
        }
        Ok(chain)
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        &self,
        leaf: &Certificate,
        cert: &Certificate,
        current: &mut Vec<Arc<Certificate>>,
        now: i64,
        chains: &mut Vec<Vec<Arc<Certificate>>>,
        sig_checks: &mut usize,
        last_err: &mut Option<String>,
    ) -> Result<(), String> {
        for (is_root, pool) in [(true, self.roots), (false, self.intermediates)] {
            for cand in pool.iter().filter(|c| c.subject_raw() == cert.issuer_raw()) {
                let in_chain = |c: &Certificate| {
                    c.subject_raw() == cand.subject_raw() && c.public_key() == cand.public_key()
                };
                if in_chain(leaf) || current.iter().any(|c| in_chain(c)) {
                    continue;
                }
                *sig_checks += 1;
                if *sig_checks > MAX_SIG_CHECKS {
                    return Err("x509: signature check attempts limit reached while verifying certificate chain".into());
                }
                if !cand.may_sign_certificates() {
                    *last_err = Some(format!(
                        "x509: certificate signed by unknown authority (possibly because of \"x509: invalid signature: parent certificate cannot sign this kind of certificate\" while trying to verify candidate authority certificate \"{}\")",
                        cand.subject()
                    ));
                    continue;
                }
                if let Err(e) = cand.verify_child(cert) {
                    *last_err = Some(format!(
                        "x509: certificate signed by unknown authority (possibly because of \"{e}\" while trying to verify candidate authority certificate \"{}\")",
                        cand.subject()
                    ));
                    continue;
                }
                // isValid for the candidate.
                let valid = (|| {
                    if cand.unhandled_critical {
                        return Err("x509: unhandled critical extension".to_string());
                    }
                    time_ok(cand, now)?;
                    if !is_root && (!cand.bc_valid || !cand.is_ca) {
                        return Err(format!(
                            "x509: certificate is not authorized to sign other certificates ({})",
                            cand.subject()
                        ));
                    }
                    if let (true, Some(max)) = (cand.bc_valid, cand.path_len) {
                        if current.len() > max as usize {
                            return Err("x509: too many intermediates for path length constraint"
                                .to_string());
                        }
                    }
                    Ok(())
                })();
                if let Err(e) = valid {
                    *last_err = Some(e);
                    continue;
                }
                current.push(cand.clone());
                if is_root {
                    chains.push(current.clone());
                } else {
                    self.build(leaf, cand, current, now, chains, sig_checks, last_err)?;
                }
                current.pop();
            }
        }
        Ok(())
    }
}

/// Go's `validHostname` (RFC 6125 with Go's leniency).
fn valid_hostname(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() {
        return false;
    }
    for (i, part) in host.split('.').enumerate() {
        if part.is_empty() {
            return false;
        }
        if i == 0 && part == "*" {
            continue;
        }
        for (j, c) in part.chars().enumerate() {
            let ok = c.is_ascii_alphanumeric() || (c == '-' && j != 0) || c == '_' || c == ':';
            if !ok {
                return false;
            }
        }
    }
    true
}

fn pem_cert(bytes: &[u8]) -> Result<Certificate, MspError> {
    let der = first_pem_block(bytes)
        .ok_or_else(|| MspError::new("getCertFromPem error: could not decode pem bytes"))?;
    Certificate::from_der(&der).map_err(|e| {
        MspError::new(format!(
            "getCertFromPem error: failed to parse x509 cert: {e}"
        ))
    })
}

fn role_name(role: i32) -> String {
    MspRoleType::try_from(role)
        .map(|r| r.as_str_name().to_string())
        .unwrap_or_else(|_| role.to_string())
}

impl Msp {
    /// Sets up an MSP from an `MSPConfig` of type FABRIC with the newest
    /// behaviour ([`MspVersion::V1_4_3`]).
    pub fn from_config(conf: &MspConfig) -> Result<Self, MspError> {
        Self::from_config_versioned(conf, MspVersion::V1_4_3)
    }

    /// Sets up an MSP with the behaviour of `version`.
    pub fn from_config_versioned(conf: &MspConfig, version: MspVersion) -> Result<Self, MspError> {
        if conf.r#type != MSP_TYPE_FABRIC {
            return Err(MspError::new(format!(
                "Setup error: unsupported msp type {}",
                conf.r#type
            )));
        }
        let fc = FabricMspConfig::decode(conf.config.as_slice())
            .map_err(|e| MspError::new(format!("failed unmarshalling fabric msp config: {e}")))?;
        Self::from_fabric_config(&fc, version)
    }

    /// Sets up an MSP from a decoded `FabricMSPConfig`.
    pub fn from_fabric_config(
        conf: &FabricMspConfig,
        version: MspVersion,
    ) -> Result<Self, MspError> {
        let mut msp = Msp {
            uid: NEXT_MSP_UID.fetch_add(1, Ordering::Relaxed),
            name: conf.name.clone(),
            version,
            id_hash: IdHash::Sha256,
            roots: Vec::new(),
            intermediates: Vec::new(),
            internal_nodes: HashSet::new(),
            admins: Vec::new(),
            crls: Vec::new(),
            ou_identifiers: HashMap::new(),
            ou_enforcement: false,
            node_ous: [None, None, None, None],
            tls_root_certs: Vec::new(),
            tls_intermediate_certs: Vec::new(),
        };
        msp.setup_crypto(conf)?;
        msp.setup_cas(conf)?;
        if version < MspVersion::V1_4_3 {
            msp.setup_admin_certs(conf)?;
        }
        msp.setup_crls(conf)?;
        msp.finalize_cas()?;
        msp.setup_tls_cas(conf)?;
        msp.setup_ous(conf)?;
        match version {
            MspVersion::V1_0 => msp.post_setup_v1()?,
            MspVersion::V1_1 | MspVersion::V1_3 => {
                msp.setup_node_ous_v11(conf)?;
                if msp.ou_enforcement {
                    let principal = MspPrincipal {
                        principal_classification: Classification::Role as i32,
                        principal: MspRole {
                            msp_identifier: msp.name.clone(),
                            role: MspRoleType::Client as i32,
                        }
                        .encode_to_vec(),
                    };
                    for (i, admin) in msp.admins.iter().enumerate() {
                        let id = msp.identity_from_cert(admin.clone());
                        msp.satisfies_principal(&id, &principal)
                            .map_err(|e| e.context(&format!("admin {i} is invalid")))?;
                    }
                } else {
                    msp.post_setup_v1()?;
                }
            }
            MspVersion::V1_4_3 => {
                msp.setup_node_ous_v142(conf)?;
                msp.setup_admin_certs(conf)?;
                if msp.admins.is_empty() && (!msp.ou_enforcement || msp.node_ous[ADMIN].is_none()) {
                    return Err(MspError::new(
                        "administrators must be declared when no admin ou classification is set",
                    ));
                }
                if msp.ou_enforcement {
                    for (i, admin) in msp.admins.iter().enumerate() {
                        let id = msp.identity_from_cert(admin.clone());
                        let e1 = msp.has_ou_role(&id, MspRoleType::Client as i32);
                        let e2 = msp.has_ou_role(&id, MspRoleType::Admin as i32);
                        if let (Err(e1), Err(e2)) = (e1, e2) {
                            return Err(MspError::new(format!("admin {i} is invalid [{e1},{e2}]")));
                        }
                    }
                } else {
                    msp.post_setup_v1()?;
                }
            }
        }
        Ok(msp)
    }

    fn post_setup_v1(&self) -> Result<(), MspError> {
        for (i, admin) in self.admins.iter().enumerate() {
            let id = self.identity_from_cert(admin.clone());
            self.validate(&id)
                .map_err(|e| e.context(&format!("admin {i} is invalid")))?;
        }
        Ok(())
    }

    fn setup_crypto(&mut self, conf: &FabricMspConfig) -> Result<(), MspError> {
        if let Some(cc) = &conf.crypto_config {
            match cc.signature_hash_family.as_str() {
                "" | "SHA2" => {}
                other => {
                    return Err(MspError::new(format!(
                        "signature hash family {other} is not supported by this MSP implementation"
                    )))
                }
            }
            self.id_hash = match cc.identity_identifier_hash_function.as_str() {
                "" | "SHA256" => IdHash::Sha256,
                "SHA384" => IdHash::Sha384,
                other => {
                    return Err(MspError::new(format!(
                    "failed getting hash function options: hash function {other} is not supported"
                )))
                }
            };
        }
        Ok(())
    }

    fn pools(&self) -> Pools<'_> {
        Pools {
            roots: &self.roots,
            intermediates: &self.intermediates,
        }
    }

    /// Fabric's `sanitizeCert`: self-signed CAs against themselves, other
    /// certificates against the parent of their (unique) chain.
    fn sanitize(&self, cert: Certificate) -> Result<Certificate, MspError> {
        let self_signed = cert.is_ca() && cert.verify_child(&cert).is_ok();
        if self_signed {
            let key = cert.public_key().clone();
            return cert
                .sanitized(&key)
                .map_err(|e| MspError::new(e.to_string()));
        }
        let chain = self.pools().unique_chain(&cert)?;
        let parent = chain.first().ok_or_else(|| {
            MspError::new(format!(
                "failed to traverse certificate verification chain for leaf or intermediate certificate, with subject {}",
                cert.subject()
            ))
        })?;
        let key = parent.public_key().clone();
        cert.sanitized(&key)
            .map_err(|e| MspError::new(e.to_string()))
    }

    fn setup_cas(&mut self, conf: &FabricMspConfig) -> Result<(), MspError> {
        if conf.root_certs.is_empty() {
            return Err(MspError::new("expected at least one CA certificate"));
        }
        let mut roots = Vec::new();
        for pem in &conf.root_certs {
            roots.push(Arc::new(pem_cert(pem)?));
        }
        let mut inters = Vec::new();
        for pem in &conf.intermediate_certs {
            inters.push(Arc::new(pem_cert(pem)?));
        }
        self.roots = roots.clone();
        self.intermediates = inters.clone();
        let mut s_roots = Vec::new();
        for r in roots {
            let c = self.sanitize((*r).clone())?;
            if !s_roots
                .iter()
                .any(|x: &Arc<Certificate>| x.der() == c.der())
            {
                s_roots.push(Arc::new(c));
            }
        }
        let mut s_inters = Vec::new();
        for i in inters {
            let c = self.sanitize((*i).clone())?;
            if !s_inters
                .iter()
                .any(|x: &Arc<Certificate>| x.der() == c.der())
            {
                s_inters.push(Arc::new(c));
            }
        }
        self.roots = s_roots;
        self.intermediates = s_inters;
        Ok(())
    }

    fn setup_admin_certs(&mut self, conf: &FabricMspConfig) -> Result<(), MspError> {
        let mut admins = Vec::new();
        for pem in &conf.admins {
            admins.push(self.sanitize(pem_cert(pem)?)?);
        }
        self.admins = admins;
        Ok(())
    }

    fn setup_crls(&mut self, conf: &FabricMspConfig) -> Result<(), MspError> {
        for bytes in &conf.revocation_list {
            let crl = Crl::parse(bytes).map_err(|e| MspError::new(e.to_string()))?;
            self.crls.push(crl);
        }
        Ok(())
    }

    fn finalize_cas(&mut self) -> Result<(), MspError> {
        let all: Vec<Arc<Certificate>> = self
            .roots
            .iter()
            .chain(self.intermediates.iter())
            .cloned()
            .collect();
        for ca in &all {
            let sn = hex::encode(ca.serial());
            if !ca.is_ca() {
                return Err(MspError::new(format!(
                    "CA Certificate did not have the CA attribute, (SN: {sn})"
                )));
            }
            if ca.subject_key_id().is_none() {
                return Err(MspError::new(format!(
                    "CA Certificate problem with Subject Key Identifier extension, (SN: {sn}): subjectKeyIdentifier not found in certificate"
                )));
            }
            let chain = self
                .pools()
                .unique_chain(ca)
                .map_err(|e| e.context("could not obtain certification chain"))
                .map_err(|e| e.context(&format!("CA Certificate is not valid, (SN: {sn})")))?;
            if !chain.is_empty() {
                self.check_revocation(ca, &chain)
                    .map_err(|e| e.context(&format!("CA Certificate is not valid, (SN: {sn})")))?;
            }
        }
        let mut internal = HashSet::new();
        for inter in &self.intermediates {
            let chain = self.pools().unique_chain(inter).map_err(|e| {
                e.context(&format!(
                    "failed getting validation chain, (SN: {})",
                    hex::encode(inter.serial())
                ))
            })?;
            for c in chain {
                internal.insert(c.der().to_vec());
            }
        }
        self.internal_nodes = internal;
        Ok(())
    }

    fn setup_tls_cas(&mut self, conf: &FabricMspConfig) -> Result<(), MspError> {
        let roots: Vec<Arc<Certificate>> = conf
            .tls_root_certs
            .iter()
            .map(|p| pem_cert(p).map(Arc::new))
            .collect::<Result<_, _>>()?;
        let inters: Vec<Arc<Certificate>> = conf
            .tls_intermediate_certs
            .iter()
            .map(|p| pem_cert(p).map(Arc::new))
            .collect::<Result<_, _>>()?;
        let pools = Pools {
            roots: &roots,
            intermediates: &inters,
        };
        for c in roots.iter().chain(inters.iter()) {
            let sn = hex::encode(c.serial());
            if !c.is_ca() {
                return Err(MspError::new(format!(
                    "CA Certificate did not have the CA attribute, (SN: {sn})"
                )));
            }
            if c.subject_key_id().is_none() {
                return Err(MspError::new(format!(
                    "CA Certificate problem with Subject Key Identifier extension, (SN: {sn}): subjectKeyIdentifier not found in certificate"
                )));
            }
            let chain = pools
                .unique_chain(c)
                .map_err(|e| e.context("could not obtain certification chain"))
                .map_err(|e| e.context(&format!("CA Certificate is not valid, (SN: {sn})")))?;
            if !chain.is_empty() {
                self.check_revocation(c, &chain)
                    .map_err(|e| e.context(&format!("CA Certificate is not valid, (SN: {sn})")))?;
            }
        }
        self.tls_root_certs = conf.tls_root_certs.clone();
        self.tls_intermediate_certs = conf.tls_intermediate_certs.clone();
        Ok(())
    }

    /// Fabric's `getCertifiersIdentifier` for an OU / NodeOU certificate.
    fn certifiers_identifier(&self, pem: &[u8]) -> Result<Vec<u8>, MspError> {
        let cert = pem_cert(pem).map_err(|e| {
            MspError::new(format!(
                "Failed getting certificate for [{}]: [{e}]",
                String::from_utf8_lossy(pem)
            ))
        })?;
        let cert = self
            .sanitize(cert)
            .map_err(|e| MspError::new(format!("sanitizeCert failed {e}")))?;
        if let Some(root) = self.roots.iter().find(|r| r.der() == cert.der()) {
            return Ok(self.id_hash.digest(&[root.der()]));
        }
        if !self.intermediates.iter().any(|r| r.der() == cert.der()) {
            return Err(MspError::new(format!(
                "Failed adding OU. Certificate [{}] not in root or intermediate certs.",
                cert.subject()
            )));
        }
        let chain = self.pools().unique_chain(&cert).map_err(|e| {
            MspError::new(format!(
                "Failed computing validation chain for [{}]. [failed getting validation chain: {e}]",
                cert.subject()
            ))
        })?;
        if self.internal_nodes.contains(cert.der()) {
            return Err(MspError::new(format!(
                "Failed computing validation chain for [{}]. [invalid validation chain. Parent certificate should be a leaf of the certification tree]",
                cert.subject()
            )));
        }
        let mut parts: Vec<&[u8]> = vec![cert.der()];
        parts.extend(chain.iter().map(|c| c.der()));
        Ok(self.id_hash.digest(&parts))
    }

    fn setup_ous(&mut self, conf: &FabricMspConfig) -> Result<(), MspError> {
        for ou in &conf.organizational_unit_identifiers {
            let ci = self
                .certifiers_identifier(&ou.certificate)
                .map_err(|e| e.context("failed getting certificate for OU"))?;
            let list = self
                .ou_identifiers
                .entry(ou.organizational_unit_identifier.clone())
                .or_default();
            if !list.contains(&ci) {
                list.push(ci);
            }
        }
        Ok(())
    }

    fn node_ou(&self, id: &Option<FabricOuIdentifier>) -> Result<Option<OuIdentifier>, MspError> {
        let Some(id) = id else { return Ok(None) };
        let certifiers_identifier = if id.certificate.is_empty() {
            Vec::new()
        } else {
            self.certifiers_identifier(&id.certificate)?
        };
        Ok(Some(OuIdentifier {
            organizational_unit_identifier: id.organizational_unit_identifier.clone(),
            certifiers_identifier,
        }))
    }

    fn setup_node_ous_v11(&mut self, conf: &FabricMspConfig) -> Result<(), MspError> {
        let Some(n) = &conf.fabric_node_ous else {
            return Ok(());
        };
        self.ou_enforcement = n.enable;
        let empty = |o: &Option<FabricOuIdentifier>| {
            o.as_ref()
                .is_none_or(|o| o.organizational_unit_identifier.is_empty())
        };
        if empty(&n.client_ou_identifier) {
            return Err(MspError::new(
                "Failed setting up NodeOUs. ClientOU must be different from nil.",
            ));
        }
        if empty(&n.peer_ou_identifier) {
            return Err(MspError::new(
                "Failed setting up NodeOUs. PeerOU must be different from nil.",
            ));
        }
        self.node_ous[CLIENT] = self.node_ou(&n.client_ou_identifier)?;
        self.node_ous[PEER] = self.node_ou(&n.peer_ou_identifier)?;
        Ok(())
    }

    fn setup_node_ous_v142(&mut self, conf: &FabricMspConfig) -> Result<(), MspError> {
        let Some(n) = &conf.fabric_node_ous else {
            return Ok(());
        };
        self.ou_enforcement = n.enable;
        self.node_ous[CLIENT] = self.node_ou(&n.client_ou_identifier)?;
        self.node_ous[PEER] = self.node_ou(&n.peer_ou_identifier)?;
        self.node_ous[ADMIN] = self.node_ou(&n.admin_ou_identifier)?;
        self.node_ous[ORDERER] = self.node_ou(&n.orderer_ou_identifier)?;
        if self.node_ous.iter().all(Option::is_none) {
            self.ou_enforcement = false;
        }
        Ok(())
    }

    /// The MSP ID.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The behaviour version.
    pub fn version(&self) -> MspVersion {
        self.version
    }
    /// Whether NodeOU classification is enforced.
    pub fn node_ous_enabled(&self) -> bool {
        self.ou_enforcement
    }
    /// Root CA certificates (sanitised).
    pub fn root_certs(&self) -> &[Arc<Certificate>] {
        &self.roots
    }
    /// Intermediate CA certificates (sanitised).
    pub fn intermediate_certs(&self) -> &[Arc<Certificate>] {
        &self.intermediates
    }
    /// TLS root CA certificates (PEM, as configured).
    pub fn tls_root_certs(&self) -> &[Vec<u8>] {
        &self.tls_root_certs
    }
    /// TLS intermediate CA certificates (PEM, as configured).
    pub fn tls_intermediate_certs(&self) -> &[Vec<u8>] {
        &self.tls_intermediate_certs
    }

    /// Deserializes a marshaled `SerializedIdentity` whose `mspid` must be
    /// this MSP's name.
    pub fn deserialize_identity(&self, serialized: &[u8]) -> Result<Identity, MspError> {
        let sid = SerializedIdentity::decode(serialized).map_err(|e| {
            MspError::new(format!("could not deserialize a SerializedIdentity: {e}"))
        })?;
        if sid.mspid != self.name {
            return Err(MspError::new(format!(
                "expected MSP ID {}, received {}",
                self.name, sid.mspid
            )));
        }
        self.deserialize_id_bytes(&sid.id_bytes)
    }

    /// Deserializes the `id_bytes` (PEM certificate) of a serialized identity.
    pub fn deserialize_id_bytes(&self, id_bytes: &[u8]) -> Result<Identity, MspError> {
        let der = first_pem_block(id_bytes)
            .ok_or_else(|| MspError::new("could not decode the PEM structure"))?;
        let cert = Certificate::from_der(&der)
            .map_err(|e| MspError::new(format!("parseCertificate failed: {e}")))?;
        match cert.public_key().key_type {
            KeyType::EcdsaP256 | KeyType::EcdsaP384 => {}
            _ => {
                return Err(MspError::new(
                    "failed to import certificate's public key: only ECDSA P-256/P-384 keys are supported",
                ))
            }
        }
        Ok(self.identity_from_cert(cert))
    }

    /// Builds the identity: sanitises the certificate when its chain is
    /// known, computes the identifier, the chain and the OUs.
    fn identity_from_cert(&self, cert: Certificate) -> Identity {
        // The chain of the unsanitised certificate is the chain of the
        // sanitised one (only the signature encoding can change), so one
        // chain search serves both.
        let chain = self.certification_chain(&cert);
        let cert = match &chain {
            Ok(ch) => match ch.first() {
                Some(parent) => cert.clone().sanitized(parent.public_key()).unwrap_or(cert),
                None => cert,
            },
            Err(_) => self.sanitize(cert.clone()).unwrap_or(cert),
        };
        let ous = match &chain {
            Ok(ch) => {
                let parts: Vec<&[u8]> = ch.iter().map(|c| c.der()).collect();
                let cid = self.id_hash.digest(&parts);
                cert.organizational_units()
                    .iter()
                    .map(|ou| OuIdentifier {
                        organizational_unit_identifier: ou.clone(),
                        certifiers_identifier: cid.clone(),
                    })
                    .collect()
            }
            Err(_) => Vec::new(),
        };
        Identity {
            mspid: self.name.clone(),
            id: hex::encode(self.id_hash.digest(&[cert.der()])),
            cert,
            ous,
            chain,
            msp_uid: self.uid,
            validation: OnceLock::new(),
        }
    }

    /// `getCertificationChainForBCCSPIdentity`: `[issuer, ..., root]`.
    fn certification_chain(&self, cert: &Certificate) -> Result<Vec<Arc<Certificate>>, MspError> {
        if cert.is_ca() {
            return Err(MspError::new(
                "An X509 certificate with Basic Constraint: Certificate Authority equals true cannot be used as an identity",
            ));
        }
        let chain = self
            .pools()
            .unique_chain(cert)
            .map_err(|e| e.context("failed getting validation chain"))?;
        let Some(parent) = chain.first() else {
            return Err(MspError::new(
                "expected a chain of length at least 2, got 1",
            ));
        };
        if self.internal_nodes.contains(parent.der()) {
            return Err(MspError::new(
                "invalid validation chain. Parent certificate should be a leaf of the certification tree",
            ));
        }
        Ok(chain)
    }

    /// Fabric's CRL check: a CRL whose AKI equals the issuer's SKI lists
    /// the serial and is signed by the issuer.
    fn check_revocation(
        &self,
        cert: &Certificate,
        chain: &[Arc<Certificate>],
    ) -> Result<(), MspError> {
        let Some(issuer) = chain.first() else {
            return Ok(());
        };
        let ski = issuer.subject_key_id().ok_or_else(|| {
            MspError::new(
                "could not obtain Subject Key Identifier for signer cert: subjectKeyIdentifier not found in certificate",
            )
        })?;
        for crl in &self.crls {
            let aki = crl.aki.as_deref().ok_or_else(|| {
                MspError::new(
                    "could not obtain Authority Key Identifier for crl: authorityKeyIdentifier not found in certificate",
                )
            })?;
            if aki != ski {
                continue;
            }
            for serial in &crl.revoked {
                if der::cmp_mag(serial, cert.serial()) == std::cmp::Ordering::Equal
                    && crl.verify_by(issuer).is_ok()
                {
                    return Err(MspError::new("The certificate has been revoked"));
                }
            }
        }
        Ok(())
    }

    /// Validates an identity: chain to a root (intermediates allowed, time
    /// taken as NotBefore + 1s so expiry is not checked here), not a CA,
    /// not revoked, OU rules. The result is memoised in the identity.
    pub fn validate(&self, id: &Identity) -> Result<(), MspError> {
        if id.msp_uid != self.uid {
            let fresh = self.identity_from_cert(id.cert.clone());
            return self.validate_uncached(&fresh);
        }
        id.validation
            .get_or_init(|| self.validate_uncached(id))
            .clone()
    }

    fn validate_uncached(&self, id: &Identity) -> Result<(), MspError> {
        let chain = id
            .chain
            .as_ref()
            .map_err(|e| e.clone().context("could not obtain certification chain"))?;
        self.check_revocation(&id.cert, chain)
            .map_err(|e| e.context("could not validate identity against certification chain"))?;
        self.validate_ous(id)
            .map_err(|e| e.context("could not validate identity's OUs"))
    }

    fn validate_ous(&self, id: &Identity) -> Result<(), MspError> {
        if !self.ou_identifiers.is_empty() {
            let found = id.ous.iter().any(|ou| {
                self.ou_identifiers
                    .get(&ou.organizational_unit_identifier)
                    .is_some_and(|l| l.contains(&ou.certifiers_identifier))
            });
            if !found {
                if id.ous.is_empty() {
                    return Err(MspError::new(
                        "the identity certificate does not contain an Organizational Unit (OU)",
                    ));
                }
                return Err(MspError::new(format!(
                    "none of the identity's organizational units {} are in MSP {}",
                    ouids(&id.ous),
                    self.name
                )));
            }
        }
        if self.version == MspVersion::V1_0 || !self.ou_enforcement {
            return Ok(());
        }
        let roles: &[usize] = if self.version == MspVersion::V1_4_3 {
            &[CLIENT, PEER, ADMIN, ORDERER]
        } else {
            &[CLIENT, PEER]
        };
        let mut counter = 0;
        for ou in &id.ous {
            // First configured role whose OU string matches, like Go's map/switch.
            // V1.4.3 keys a map by OU string (the last role wins); V1.1 uses
            // a switch (the first role wins).
            let matches = |r: &&usize| {
                self.node_ous[**r].as_ref().is_some_and(|n| {
                    n.organizational_unit_identifier == ou.organizational_unit_identifier
                })
            };
            let role = if self.version == MspVersion::V1_4_3 {
                roles.iter().rev().find(matches)
            } else {
                roles.iter().find(matches)
            };
            let Some(node) = role.and_then(|r| self.node_ous[*r].as_ref()) else {
                continue;
            };
            if !node.certifiers_identifier.is_empty()
                && node.certifiers_identifier != ou.certifiers_identifier
            {
                return Err(MspError::new(format!(
                    "certifiersIdentifier does not match: {}, MSP: [{}]",
                    ouids(&id.ous),
                    self.name
                )));
            }
            counter += 1;
            if counter > 1 {
                break;
            }
        }
        let v142 = self.version == MspVersion::V1_4_3;
        if counter == 0 {
            return Err(MspError::new(if v142 {
                format!("the identity does not have an OU that resolves to client, peer, orderer, or admin role. OUs: {}, MSP: [{}]", ouids(&id.ous), self.name)
            } else {
                format!("the identity does not have an OU that resolves to client or peer. OUs: {}, MSP: [{}]", ouids(&id.ous), self.name)
            }));
        }
        if counter > 1 {
            return Err(MspError::new(if v142 {
                format!("the identity must have a client, a peer, an orderer, or an admin OU role to be valid, not a combination of them. OUs: {}, MSP: [{}]", ouids(&id.ous), self.name)
            } else {
                format!("the identity must be a client or a peer identity to be valid, not a combination of them. OUs: {}, MSP: [{}]", ouids(&id.ous), self.name)
            }));
        }
        Ok(())
    }

    fn has_ou_role(&self, id: &Identity, role: i32) -> Result<(), MspError> {
        if !self.ou_enforcement {
            return Err(MspError::new(
                "NodeOUs not activated. Cannot tell apart identities.",
            ));
        }
        let idx = match MspRoleType::try_from(role) {
            Ok(MspRoleType::Client) => CLIENT,
            Ok(MspRoleType::Peer) => PEER,
            Ok(MspRoleType::Admin) => ADMIN,
            Ok(MspRoleType::Orderer) => ORDERER,
            _ => {
                return Err(MspError::new(
                    "Invalid MSPRoleType. It must be CLIENT, PEER, ADMIN or ORDERER",
                ))
            }
        };
        let Some(node) = &self.node_ous[idx] else {
            return Err(MspError::new(format!(
                "cannot test for classification, node ou for type [{}], not defined, msp: [{}]",
                role_name(role),
                self.name
            )));
        };
        if id
            .ous
            .iter()
            .any(|ou| ou.organizational_unit_identifier == node.organizational_unit_identifier)
        {
            return Ok(());
        }
        Err(MspError::new(format!(
            "The identity does not contain OU [{}], MSP: [{}]",
            role_name(role),
            self.name
        )))
    }

    fn is_in_admins(&self, id: &Identity) -> bool {
        self.admins.iter().any(|a| a.der() == id.cert.der())
    }

    /// Whether `id` satisfies `principal` (all sub-principals for COMBINED).
    pub fn satisfies_principal(
        &self,
        id: &Identity,
        principal: &MspPrincipal,
    ) -> Result<(), MspError> {
        let mut list = Vec::new();
        self.collect_principals(principal, &mut list, 0)?;
        for p in &list {
            self.satisfies_one(id, p)?;
        }
        Ok(())
    }

    fn collect_principals(
        &self,
        principal: &MspPrincipal,
        out: &mut Vec<MspPrincipal>,
        depth: usize,
    ) -> Result<(), MspError> {
        if principal.principal_classification != Classification::Combined as i32 {
            out.push(principal.clone());
            return Ok(());
        }
        if self.version <= MspVersion::V1_1 {
            return Err(MspError::new(format!(
                "invalid principal type {}",
                principal.principal_classification
            )));
        }
        if depth > 64 {
            return Err(MspError::new("CombinedPrincipal nested too deeply"));
        }
        let cp = CombinedPrincipal::decode(principal.principal.as_slice()).map_err(|e| {
            MspError::new(format!(
                "could not unmarshal CombinedPrincipal from principal: {e}"
            ))
        })?;
        if cp.principals.is_empty() {
            return Err(MspError::new("No principals in CombinedPrincipal"));
        }
        for p in &cp.principals {
            self.collect_principals(p, out, depth + 1)?;
        }
        Ok(())
    }

    fn decode_role(&self, principal: &MspPrincipal, id: &Identity) -> Result<MspRole, MspError> {
        let role = MspRole::decode(principal.principal.as_slice()).map_err(|e| {
            MspError::new(format!("could not unmarshal MSPRole from principal: {e}"))
        })?;
        if role.msp_identifier != self.name {
            return Err(MspError::new(format!(
                "the identity is a member of a different MSP (expected {}, got {})",
                role.msp_identifier, id.mspid
            )));
        }
        Ok(role)
    }

    fn satisfies_one(&self, id: &Identity, principal: &MspPrincipal) -> Result<(), MspError> {
        let class = principal.principal_classification;
        // v1.4.3: admins by NodeOU, orderers.
        if self.version >= MspVersion::V1_4_3
            && class == Classification::Role as i32
            && self.ou_enforcement
        {
            let role = self.decode_role(principal, id)?;
            if role.role == MspRoleType::Admin as i32 {
                if self.is_in_admins(id) {
                    return Ok(());
                }
                self.validate(id).map_err(|e| {
                    e.context(&format!(
                        "The identity is not valid under this MSP [{}]",
                        self.name
                    ))
                })?;
                return self.has_ou_role(id, role.role).map_err(|e| {
                    e.context(&format!(
                        "The identity is not an admin under this MSP [{}]",
                        self.name
                    ))
                });
            }
            if role.role == MspRoleType::Orderer as i32 {
                self.validate(id).map_err(|e| {
                    e.context(&format!(
                        "The identity is not valid under this MSP [{}]",
                        self.name
                    ))
                })?;
                return self.has_ou_role(id, role.role).map_err(|e| {
                    e.context(&format!(
                        "The identity is not a [ORDERER] under this MSP [{}]",
                        self.name
                    ))
                });
            }
        }
        // v1.3: combined / anonymity.
        if self.version >= MspVersion::V1_3 {
            if class == Classification::Combined as i32 {
                return Err(MspError::new(
                    "SatisfiesPrincipalInternal shall not be called with a CombinedPrincipal",
                ));
            }
            if class == Classification::Anonymity as i32 {
                let anon =
                    MspIdentityAnonymity::decode(principal.principal.as_slice()).map_err(|e| {
                        MspError::new(format!(
                            "could not unmarshal MSPIdentityAnonymity from principal: {e}"
                        ))
                    })?;
                return match MspIdentityAnonymityType::try_from(anon.anonymity_type) {
                    Ok(MspIdentityAnonymityType::Anonymous) => Err(MspError::new(
                        "Principal is anonymous, but X.509 MSP does not support anonymous identities",
                    )),
                    Ok(MspIdentityAnonymityType::Nominal) => Ok(()),
                    Err(_) => Err(MspError::new(format!(
                        "Unknown principal anonymity type: {}",
                        anon.anonymity_type
                    ))),
                };
            }
        }
        match Classification::try_from(class) {
            Ok(Classification::Role) => {
                let role = self.decode_role(principal, id)?;
                match MspRoleType::try_from(role.role) {
                    Ok(MspRoleType::Member) => self.validate(id),
                    Ok(MspRoleType::Admin) => {
                        if self.is_in_admins(id) {
                            Ok(())
                        } else {
                            Err(MspError::new("This identity is not an admin"))
                        }
                    }
                    Ok(MspRoleType::Client) | Ok(MspRoleType::Peer) => {
                        self.validate(id).map_err(|e| {
                            e.context(&format!(
                                "The identity is not valid under this MSP [{}]",
                                self.name
                            ))
                        })?;
                        self.has_ou_role(id, role.role).map_err(|e| {
                            e.context(&format!(
                                "The identity is not a [{}] under this MSP [{}]",
                                role_name(role.role),
                                self.name
                            ))
                        })
                    }
                    _ => Err(MspError::new(format!(
                        "invalid MSP role type {}",
                        role.role
                    ))),
                }
            }
            Ok(Classification::Identity) => {
                let pid = self
                    .deserialize_identity(&principal.principal)
                    .map_err(|e| e.context("invalid identity principal, not a certificate"))?;
                if pid.cert.der() == id.cert.der() {
                    return self.validate(&pid);
                }
                Err(MspError::new("The identities do not match"))
            }
            Ok(Classification::OrganizationUnit) => {
                let ou = OrganizationUnit::decode(principal.principal.as_slice()).map_err(|e| {
                    MspError::new(format!(
                        "could not unmarshal OrganizationUnit from principal: {e}"
                    ))
                })?;
                if ou.msp_identifier != self.name {
                    return Err(MspError::new(format!(
                        "the identity is a member of a different MSP (expected {}, got {})",
                        ou.msp_identifier, id.mspid
                    )));
                }
                self.validate(id)?;
                if id.ous.iter().any(|x| {
                    x.organizational_unit_identifier == ou.organizational_unit_identifier
                        && x.certifiers_identifier == ou.certifiers_identifier
                }) {
                    return Ok(());
                }
                Err(MspError::new("The identities do not match"))
            }
            _ => Err(MspError::new(format!("invalid principal type {class}"))),
        }
    }
}
