//! The local MSP's private key in a PKCS#11 token (`General.BCCSP.Default:
//! PKCS11`), through the `cryptoki` binding.
//!
//! Fabric's conventions, which a token prepared for a Fabric orderer follows:
//! - the token is the one whose label is `BCCSP.PKCS11.Label`, logged into as
//!   the normal user with `Pin`;
//! - the private key is the `CKO_PRIVATE_KEY` object whose `CKA_ID` is the
//!   key's subject key identifier, SHA-256 of the uncompressed public point
//!   of the certificate in `signcerts/`; `KeyIds` maps an SKI (hex) to
//!   another `CKA_ID` (taken as bytes of the given string), and `AltID`
//!   replaces the `CKA_ID` of every other key;
//! - the signature is `CKM_ECDSA` over the SHA-256 digest of the message,
//!   returned as `r || s`, then normalised to low-S and DER-encoded.
//!
//! Verification stays in software (as Fabric v2 does for the public keys of
//! certificates), so `SoftwareVerify` changes nothing here; `Immutable` only
//! concerns keys that Fabric generates on the token, which the orderer never
//! does.
//!
//! The decisions (key ID, signature encoding) are pure functions below; the
//! token is reached only through [`TokenKey`].

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use sha2::{Digest, Sha256};

use crate::crypto;

/// `General.BCCSP.PKCS11`, validated by the configuration loader.
#[derive(Clone, PartialEq, Eq)]
pub struct Pkcs11Settings {
    /// `Library`: the PKCS#11 module (`.so`).
    pub library: PathBuf,
    /// `Label`: the token's label.
    pub label: String,
    /// `Pin`: the user PIN.
    pub pin: String,
    /// `AltID`: the `CKA_ID` of keys not named in `key_ids`.
    pub alt_id: Option<String>,
    /// `KeyIds`: SKI (lower-case hex) to `CKA_ID`.
    pub key_ids: HashMap<String, String>,
}

impl fmt::Debug for Pkcs11Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Settings")
            .field("library", &self.library)
            .field("label", &self.label)
            .field("pin", &"<redacted>")
            .field("alt_id", &self.alt_id)
            .field("key_ids", &self.key_ids)
            .finish()
    }
}

/// Why the token cannot sign.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The module could not be loaded or initialised.
    #[error("PKCS#11 library {library}: {source}")]
    Library {
        /// `BCCSP.PKCS11.Library`.
        library: PathBuf,
        /// The cause.
        source: cryptoki::error::Error,
    },
    /// No slot holds a token with the configured label.
    #[error("no PKCS#11 token with label {0:?} (BCCSP.PKCS11.Label)")]
    NoToken(String),
    /// Opening a session or logging in failed.
    #[error("PKCS#11 token {label:?}: {step}: {source}")]
    Session {
        /// The token label.
        label: String,
        /// What was being done.
        step: &'static str,
        /// The cause.
        source: cryptoki::error::Error,
    },
    /// No private key with the expected `CKA_ID`.
    #[error("PKCS#11 token {label:?} has no private key with CKA_ID {id} (SKI {ski})")]
    NoKey {
        /// The token label.
        label: String,
        /// The `CKA_ID` looked for, hex.
        id: String,
        /// The certificate's SKI, hex.
        ski: String,
    },
    /// The token's key does not sign for the certificate's public key.
    #[error("PKCS#11 token {label:?}: the key with CKA_ID {id} does not match the signing certificate ({reason})")]
    Mismatch {
        /// The token label.
        label: String,
        /// The `CKA_ID`, hex.
        id: String,
        /// How it was found out.
        reason: String,
    },
    /// The token refused or botched a signature.
    #[error("PKCS#11 sign: {0}")]
    Sign(String),
}

/// Fabric's subject key identifier of an EC public key: SHA-256 of the
/// uncompressed point (`04 || x || y`).
pub fn ski(public_point: &[u8]) -> [u8; 32] {
    Sha256::digest(public_point).into()
}

/// The `CKA_ID` under which the key of `ski` is looked for: its `KeyIds`
/// entry, else `AltID`, else the SKI itself (Fabric's key mapper).
pub fn key_id_for(settings: &Pkcs11Settings, ski: &[u8]) -> Vec<u8> {
    if let Some(id) = settings.key_ids.get(&hex::encode(ski)) {
        return id.as_bytes().to_vec();
    }
    match &settings.alt_id {
        Some(alt) => alt.as_bytes().to_vec(),
        None => ski.to_vec(),
    }
}

/// A raw `r || s` P-256 signature from `CKM_ECDSA` as low-S DER.
pub fn raw_signature_to_der(raw: &[u8]) -> Result<Vec<u8>, TokenError> {
    if raw.len() != 64 {
        return Err(TokenError::Sign(format!(
            "expected a 64-byte r||s P-256 signature, the token returned {} bytes",
            raw.len()
        )));
    }
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&raw[..32]);
    s.copy_from_slice(&raw[32..]);
    crypto::to_low_s(&crypto::encode_der(&r, &s)).map_err(|e| TokenError::Sign(e.to_string()))
}

/// An open, logged-in session and the private key handle it signs with.
struct Open {
    session: Session,
    key: ObjectHandle,
}

/// The private key of one certificate, held in a token.
pub struct TokenKey {
    settings: Pkcs11Settings,
    ctx: Pkcs11,
    slot: Slot,
    id: Vec<u8>,
    ski: [u8; 32],
    /// One session, re-opened when the token reports it gone. Signing is
    /// short and synchronous; the lock is never held across an await.
    open: Mutex<Option<Open>>,
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKey")
            .field("label", &self.settings.label)
            .field("id", &hex::encode(&self.id))
            .finish_non_exhaustive()
    }
}

impl TokenKey {
    /// Loads the module, finds the token by label, logs in and finds the
    /// private key of `public_point` (the certificate's uncompressed point).
    /// A test signature is verified against `public_point`, so a wrong key
    /// is refused at start rather than at the first block.
    pub fn open(settings: &Pkcs11Settings, public_point: &[u8]) -> Result<Self, TokenError> {
        let lib_err = |source| TokenError::Library {
            library: settings.library.clone(),
            source,
        };
        let ctx = Pkcs11::new(&settings.library).map_err(lib_err)?;
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(())
            | Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::CryptokiAlreadyInitialized,
                _,
            )) => {}
            Err(e) => return Err(lib_err(e)),
        }
        let slot = find_slot(&ctx, &settings.label)?
            .ok_or_else(|| TokenError::NoToken(settings.label.clone()))?;
        let ski = ski(public_point);
        let key = TokenKey {
            id: key_id_for(settings, &ski),
            settings: settings.clone(),
            ctx,
            slot,
            ski,
            open: Mutex::new(None),
        };
        let probe = b"fabric orderer PKCS#11 key check";
        let sig = key.sign(probe)?;
        crypto::verify_p256(public_point, probe, &sig).map_err(|e| TokenError::Mismatch {
            label: settings.label.clone(),
            id: hex::encode(&key.id),
            reason: format!("test signature: {e}"),
        })?;
        Ok(key)
    }

    /// The `CKA_ID` of the key, hex.
    pub fn id_hex(&self) -> String {
        hex::encode(&self.id)
    }

    /// ECDSA P-256 over SHA-256(`msg`) in the token; DER, low-S.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, TokenError> {
        let digest = Sha256::digest(msg);
        let mut guard = self.open.lock().unwrap_or_else(|p| p.into_inner());
        // A session the token dropped (restart, network HSM failover) is
        // re-opened once, as Fabric does for invalid-session errors.
        for attempt in 0..2 {
            if guard.is_none() {
                *guard = Some(self.open_session()?);
            }
            let open = guard.as_ref().expect("just opened");
            match open.session.sign(&Mechanism::Ecdsa, open.key, &digest) {
                Ok(raw) => return raw_signature_to_der(&raw),
                Err(e) if attempt == 0 => {
                    tracing::warn!(error = %e, "PKCS#11 sign failed; re-opening the session");
                    *guard = None;
                }
                Err(e) => return Err(TokenError::Sign(e.to_string())),
            }
        }
        unreachable!("the loop returns")
    }

    fn open_session(&self) -> Result<Open, TokenError> {
        let err = |step, source| TokenError::Session {
            label: self.settings.label.clone(),
            step,
            source,
        };
        let session = self
            .ctx
            .open_rw_session(self.slot)
            .map_err(|e| err("open session", e))?;
        match session.login(
            UserType::User,
            Some(&AuthPin::new(self.settings.pin.clone().into())),
        ) {
            Ok(())
            | Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::UserAlreadyLoggedIn,
                _,
            )) => {}
            Err(e) => return Err(err("login (BCCSP.PKCS11.Pin)", e)),
        }
        let found = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Id(self.id.clone()),
            ])
            .map_err(|e| err("find private key", e))?;
        let key = *found.first().ok_or_else(|| TokenError::NoKey {
            label: self.settings.label.clone(),
            id: hex::encode(&self.id),
            ski: hex::encode(self.ski),
        })?;
        Ok(Open { session, key })
    }
}

/// The first slot whose token has `label` (labels are blank-padded).
fn find_slot(ctx: &Pkcs11, label: &str) -> Result<Option<Slot>, TokenError> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| TokenError::Session {
            label: label.into(),
            step: "list slots",
            source: e,
        })?;
    Ok(slots.into_iter().find(|s| {
        ctx.get_token_info(*s)
            .map(|i| i.label().trim_end() == label)
            .unwrap_or(false)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(alt: Option<&str>, ids: &[(&str, &str)]) -> Pkcs11Settings {
        Pkcs11Settings {
            library: "/nonexistent.so".into(),
            label: "L".into(),
            pin: "1234".into(),
            alt_id: alt.map(String::from),
            key_ids: ids
                .iter()
                .map(|(s, i)| (s.to_string(), i.to_string()))
                .collect(),
        }
    }

    #[test]
    fn ski_is_sha256_of_the_point() {
        let point = [4u8; 65];
        assert_eq!(ski(&point).to_vec(), Sha256::digest(point).to_vec());
    }

    #[test]
    fn key_id_follows_fabrics_mapper() {
        let a = [0xabu8; 32];
        let b = [0x01u8; 32];
        // No mapping: the SKI itself.
        assert_eq!(key_id_for(&settings(None, &[]), &a), a.to_vec());
        // AltID for every key.
        assert_eq!(key_id_for(&settings(Some("alt"), &[]), &a), b"alt".to_vec());
        // KeyIds wins over AltID; unmapped keys fall back to AltID / SKI.
        let m = settings(Some("alt"), &[(&hex::encode(a), "orderer-key")]);
        assert_eq!(key_id_for(&m, &a), b"orderer-key".to_vec());
        assert_eq!(key_id_for(&m, &b), b"alt".to_vec());
        let m = settings(None, &[(&hex::encode(a), "orderer-key")]);
        assert_eq!(key_id_for(&m, &b), b.to_vec());
    }

    #[test]
    fn raw_signature_becomes_low_s_der() {
        use ring::rand::SystemRandom;
        use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let k = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let mut high_seen = false;
        for i in 0..64u32 {
            let msg = i.to_be_bytes();
            let raw = k.sign(&rng, &msg).unwrap();
            high_seen |= raw.as_ref()[32] >= 0x80;
            let der = raw_signature_to_der(raw.as_ref()).unwrap();
            assert!(crypto::is_low_s(&der).unwrap());
            crypto::verify_p256(k.public_key().as_ref(), &msg, &der).unwrap();
        }
        assert!(high_seen, "64 signatures without one high s");
        assert!(raw_signature_to_der(&[1u8; 63]).is_err());
    }

    #[test]
    fn a_missing_library_is_named() {
        let e = TokenKey::open(&settings(None, &[]), &[4u8; 65]).unwrap_err();
        assert!(e.to_string().contains("/nonexistent.so"), "{e}");
    }
}
