//! The gRPC port's rustls server config (`General.TLS`): TLS 1.2 and 1.3,
//! ALPN `h2`, the server certificate and key, and with
//! `ClientAuthRequired` a client certificate that chains to
//! `ClientRootCAs` or a channel organization's TLS CA. The handshake runs
//! in [`super::accept`], within `General.ConnectionTimeout`.

use std::path::Path;
use std::sync::Arc;

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
