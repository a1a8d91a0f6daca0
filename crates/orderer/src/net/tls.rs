//! The gRPC port's rustls server config (`General.TLS`): TLS 1.2 and 1.3,
//! ALPN `h2`, the server certificate and key, and with
//! `ClientAuthRequired` a client certificate that chains to
//! `ClientRootCAs` or a channel organization's TLS CA. The handshake runs
//! in [`super::accept`], within `General.ConnectionTimeout`.
//!
//! [`ServerTls`] keeps that config current, as Fabric's orderer does: the
//! client roots are rebuilt when a config block commits (an organization
//! added by a config update can connect at once), and the certificate and
//! key are read again when their files change (checked at most once a
//! second, on a handshake). A rebuild that fails keeps the config in force
//! and says why.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime};

use anyhow::{bail, Context, Result};
use tokio_rustls::rustls::crypto::ring as provider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

use crate::server::TlsSettings;

fn read(key: &str, p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("{key}: reading {}", p.display()))
}

/// The server config for `tls`, `None` when TLS is off. With mutual TLS
/// the client roots are `ClientRootCAs` plus `channel_roots` (PEM); with
/// `channel_roots` `None` only the files are checked (start-up, before
/// the channels are known) and client certificates are not asked for.
pub fn server_config(
    tls: &TlsSettings,
    channel_roots: Option<&[Vec<u8>]>,
) -> Result<Option<Arc<ServerConfig>>> {
    if !tls.enabled {
        return Ok(None);
    }
    let cert_pem = read("General.TLS.Certificate", &tls.certificate)?;
    let key_pem = read("General.TLS.PrivateKey", &tls.private_key)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .with_context(|| {
            format!(
                "General.TLS.Certificate: {} is not PEM",
                tls.certificate.display()
            )
        })?;
    if certs.is_empty() {
        bail!(
            "General.TLS.Certificate: no certificate in {}",
            tls.certificate.display()
        );
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .with_context(|| {
            format!(
                "General.TLS.PrivateKey: no private key in {}",
                tls.private_key.display()
            )
        })?;
    let provider = Arc::new(provider::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[
            &tokio_rustls::rustls::version::TLS12,
            &tokio_rustls::rustls::version::TLS13,
        ])
        .context("TLS protocol versions")?;
    let builder = match (tls.client_auth_required, channel_roots) {
        (true, Some(channel_roots)) => {
            let mut roots = RootCertStore::empty();
            let mut pems: Vec<Vec<u8>> = Vec::new();
            for p in &tls.client_root_cas {
                pems.push(read("General.TLS.ClientRootCAs", p)?);
            }
            pems.extend(channel_roots.iter().cloned());
            for pem in &pems {
                let parsed: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
                    .filter_map(|c| c.ok())
                    .collect();
                roots.add_parsable_certificates(parsed);
            }
            if roots.is_empty() {
                bail!("General.TLS.ClientAuthRequired is true but neither General.TLS.ClientRootCAs nor the channels' MSPs name a TLS CA: no client certificate could be verified");
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .context("General.TLS.ClientRootCAs")?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .context("General.TLS: server certificate or key")?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Some(Arc::new(cfg)))
}

/// The modification times of the certificate and key files.
fn files_stamp(tls: &TlsSettings) -> (Option<SystemTime>, Option<SystemTime>) {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (m(&tls.certificate), m(&tls.private_key))
}

type Stamp = (Option<SystemTime>, Option<SystemTime>);

/// The gRPC port's TLS config, kept current (see the module's text).
pub struct ServerTls {
    settings: TlsSettings,
    current: RwLock<Arc<ServerConfig>>,
    /// The channel roots in force, the files' stamp and when it was taken.
    state: Mutex<(Vec<Vec<u8>>, Stamp, Instant)>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// `None` when TLS is off.
    pub fn new(tls: &TlsSettings, channel_roots: Vec<Vec<u8>>) -> Result<Option<Arc<Self>>> {
        let stamp = files_stamp(tls);
        let roots = tls.mutual().then_some(channel_roots.as_slice());
        let Some(cfg) = server_config(tls, roots)? else {
            return Ok(None);
        };
        Ok(Some(Arc::new(Self {
            settings: tls.clone(),
            current: RwLock::new(cfg),
            state: Mutex::new((channel_roots, stamp, Instant::now())),
        })))
    }

    /// The config for the next handshake (re-read first if the files changed).
    pub fn config(&self) -> Arc<ServerConfig> {
        self.reload_if_files_changed();
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn reload_if_files_changed(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.2.elapsed() < std::time::Duration::from_secs(1) {
            return;
        }
        st.2 = Instant::now();
        let stamp = files_stamp(&self.settings);
        if stamp == st.1 {
            return;
        }
        st.1 = stamp;
        let roots = st.0.clone();
        drop(st);
        if self.rebuild(&roots) {
            tracing::info!(
                certificate = %self.settings.certificate.display(),
                "General.TLS certificate or key changed: serving the new one"
            );
        }
    }

    /// With mutual TLS, makes `channel_roots` the channels' part of the
    /// client roots (a config block committed); no-op when they are the same.
    pub fn set_channel_roots(&self, channel_roots: Vec<Vec<u8>>) {
        if !self.settings.mutual() {
            return;
        }
        {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.0 == channel_roots {
                return;
            }
            st.0 = channel_roots.clone();
        }
        if self.rebuild(&channel_roots) {
            tracing::info!(
                channel_tls_cas = channel_roots.len(),
                "mutual TLS: client root CAs rebuilt from the channels' MSPs"
            );
        }
    }

    fn rebuild(&self, channel_roots: &[Vec<u8>]) -> bool {
        let roots = self.settings.mutual().then_some(channel_roots);
        match server_config(&self.settings, roots) {
            Ok(Some(cfg)) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = cfg;
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "General.TLS: keeping the TLS config in force");
                false
            }
        }
    }
}
