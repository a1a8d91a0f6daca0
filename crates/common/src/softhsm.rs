//! Test fixture: a SoftHSM2 token in a folder of its own (Debian's
//! `softhsm2`), with MSP keys imported the way an operator would
//! (`softhsm2-util --import`). Used by the PKCS#11 tests of this crate and
//! the orderer's end-to-end test.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian installs the module.
const LIBRARIES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
];

/// A token initialised in `dir`. Processes that use it need
/// `SOFTHSM2_CONF` = [`SoftHsm::conf`].
#[derive(Debug, Clone)]
pub struct SoftHsm {
    /// The module to give as `BCCSP.PKCS11.Library`.
    pub library: PathBuf,
    /// The SoftHSM2 configuration file (value of `SOFTHSM2_CONF`).
    pub conf: PathBuf,
    /// Token label.
    pub label: String,
    /// User PIN.
    pub pin: String,
}

/// Why the fixture could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SoftHsmError {
    /// softhsm2 is not installed.
    #[error(
        "SoftHSM2 is not installed (Debian package softhsm2: libsofthsm2.so and softhsm2-util)"
    )]
    Missing,
    /// A command failed.
    #[error("{0}")]
    Command(String),
}

impl SoftHsm {
    /// The installed module, if any.
    pub fn library() -> Option<PathBuf> {
        LIBRARIES.iter().map(PathBuf::from).find(|p| p.is_file())
    }

    /// Initialises a token labelled `label` with user PIN `pin` in `dir`.
    pub fn create(dir: &Path, label: &str, pin: &str) -> Result<SoftHsm, SoftHsmError> {
        let library = Self::library().ok_or(SoftHsmError::Missing)?;
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).map_err(|e| SoftHsmError::Command(e.to_string()))?;
        let conf = dir.join("softhsm2.conf");
        let text = format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        );
        std::fs::write(&conf, text).map_err(|e| SoftHsmError::Command(e.to_string()))?;
        let hsm = SoftHsm {
            library,
            conf,
            label: label.into(),
            pin: pin.into(),
        };
        hsm.util(&[
            "--init-token",
            "--free",
            "--label",
            label,
            "--so-pin",
            "so-secret",
            "--pin",
            pin,
        ])?;
        Ok(hsm)
    }

    /// Imports a PKCS#8 PEM private key (and its public key) with `CKA_ID`
    /// = `id` and `CKA_LABEL` = `object_label`.
    pub fn import_key(
        &self,
        key_pem: &Path,
        id: &[u8],
        object_label: &str,
    ) -> Result<(), SoftHsmError> {
        let key = key_pem.display().to_string();
        self.util(&[
            "--import",
            &key,
            "--token",
            &self.label,
            "--pin",
            &self.pin,
            "--id",
            &hex::encode(id),
            "--label",
            object_label,
        ])
    }

    fn util(&self, args: &[&str]) -> Result<(), SoftHsmError> {
        let out = Command::new("softhsm2-util")
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .output()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => SoftHsmError::Missing,
                _ => SoftHsmError::Command(format!("softhsm2-util: {e}")),
            })?;
        if !out.status.success() {
            return Err(SoftHsmError::Command(format!(
                "softhsm2-util {}: {}{}",
                args.first().unwrap_or(&""),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }
}

/// The single PKCS#8 key file in an MSP folder's `keystore/`.
pub fn msp_key_file(msp_dir: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(msp_dir.join("keystore"))
        .expect("keystore/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert_eq!(files.len(), 1, "one key in {}", msp_dir.display());
    files.pop().unwrap()
}

/// The uncompressed public point of an MSP folder's signing certificate.
pub fn msp_public_point(msp_dir: &Path) -> Vec<u8> {
    let dir = msp_dir.join("signcerts");
    let cert = std::fs::read_dir(&dir)
        .expect("signcerts/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .next()
        .expect("a signing certificate");
    crate::msp::pem_cert_public_key(&std::fs::read(cert).unwrap()).unwrap()
}

/// `Some(token)`, or `None` with a note when SoftHSM2 is not installed and
/// `CI` is not `true`; under `CI=true` a missing SoftHSM2 fails the test.
pub fn token_or_skip(dir: &Path, label: &str, pin: &str) -> Option<SoftHsm> {
    match SoftHsm::create(dir, label, pin) {
        Ok(h) => Some(h),
        Err(SoftHsmError::Missing) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!(
                "SKIPPED: {} (CI=true makes this a failure)",
                SoftHsmError::Missing
            );
            None
        }
        Err(e) => panic!("SoftHSM2 token: {e}"),
    }
}
