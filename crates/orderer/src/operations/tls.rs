//! `Operations.TLS` as Fabric's `fabhttp` does it: TLS 1.2+ with the server
//! certificate and key; with `ClientAuthRequired` every client must present
//! a certificate that chains to `ClientRootCAs` (handshake refused
//! otherwise), without it a certificate is verified if given. `/metrics`
//! and `/logspec` then answer 401 to a client without a verified
//! certificate; `/healthz` and `/version` stay open.
//!
//! The certificate and key files are re-read when they change (size or
//! modification time, looked at on each handshake), so a renewed
//! certificate is served without a restart. A pair that does not load
//! keeps the previous one in use and logs why.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls::crypto::ring as provider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How long a client may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once (more wait in the accept backlog).
pub const MAX_HANDSHAKES: usize = 64;

static HANDSHAKE_LOG: crate::net::ratelog::RateLog = crate::net::ratelog::RateLog::new();

/// `Operations.TLS` (file paths).
#[derive(Debug, Clone, Default)]
pub struct OperationsTls {
    /// `Operations.TLS.Certificate`.
    pub certificate: PathBuf,
    /// `Operations.TLS.PrivateKey`.
    pub private_key: PathBuf,
    /// `Operations.TLS.ClientAuthRequired`.
    pub client_auth_required: bool,
    /// `Operations.TLS.ClientRootCAs`.
    pub client_root_cas: Vec<PathBuf>,
}

type Stamp = Vec<(u64, Option<SystemTime>)>;

fn stamp(paths: &[&Path]) -> Stamp {
    paths
        .iter()
        .map(|p| match std::fs::metadata(p) {
            Ok(m) => (m.len(), m.modified().ok()),
            Err(_) => (0, None),
        })
        .collect()
}

fn load_pair(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("Operations.TLS.Certificate: reading {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("Operations.TLS.Certificate: {} is not PEM", cert.display()))?;
    if certs.is_empty() {
        bail!(
            "Operations.TLS.Certificate: no certificate in {}",
            cert.display()
        );
    }
    let key_der = PrivateKeyDer::from_pem_file(key).with_context(|| {
        format!(
            "Operations.TLS.PrivateKey: no private key in {}",
            key.display()
        )
    })?;
    let signing = provider::sign::any_supported_type(&key_der).with_context(|| {
        format!(
            "Operations.TLS.PrivateKey: unsupported key in {}",
            key.display()
        )
    })?;
    let ck = CertifiedKey::new(certs, signing);
    ck.keys_match()
        .context("Operations.TLS: the private key does not match the certificate")?;
    Ok(Arc::new(ck))
}

/// Serves the certificate in the files, re-read when they change.
#[derive(Debug)]
struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    current: Mutex<(Stamp, Arc<CertifiedKey>)>,
}

impl ReloadingCert {
    fn new(cert: PathBuf, key: PathBuf) -> Result<Self> {
        let s = stamp(&[&cert, &key]);
        let ck = load_pair(&cert, &key)?;
        Ok(Self {
            cert,
            key,
            current: Mutex::new((s, ck)),
        })
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let now = stamp(&[&self.cert, &self.key]);
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if now != cur.0 {
            match load_pair(&self.cert, &self.key) {
                Ok(ck) => {
                    info!(certificate = %self.cert.display(), "Operations.TLS: certificate files changed; serving the new certificate");
                    *cur = (now, ck);
                }
                Err(e) => {
                    // Keep the old pair; try again when the files change again.
                    warn!(error = %format!("{e:#}"), "Operations.TLS: certificate files changed but do not load; still serving the previous certificate");
                    cur.0 = now;
                }
            }
        }
        Some(Arc::clone(&cur.1))
    }
}

/// The rustls server config for `Operations.TLS`.
pub fn server_config(t: &OperationsTls) -> Result<Arc<ServerConfig>> {
    let resolver = ReloadingCert::new(t.certificate.clone(), t.private_key.clone())?;
    let mut roots = RootCertStore::empty();
    for p in &t.client_root_cas {
        for c in CertificateDer::pem_file_iter(p)
            .with_context(|| format!("Operations.TLS.ClientRootCAs: reading {}", p.display()))?
        {
            let c = c.with_context(|| {
                format!("Operations.TLS.ClientRootCAs: {} is not PEM", p.display())
            })?;
            roots.add(c).with_context(|| {
                format!(
                    "Operations.TLS.ClientRootCAs: bad certificate in {}",
                    p.display()
                )
            })?;
        }
    }
    let provider = Arc::new(provider::default_provider());
    let verifier = if roots.is_empty() {
        if t.client_auth_required {
            bail!("Operations.TLS.ClientAuthRequired is true but Operations.TLS.ClientRootCAs names no CA certificate");
        }
        WebPkiClientVerifier::no_client_auth()
    } else {
        let b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
        let b = if t.client_auth_required {
            b
        } else {
            b.allow_unauthenticated()
        };
        b.build().context("Operations.TLS.ClientRootCAs")?
    };
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(resolver));
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// What a handler learns about a TLS connection.
#[derive(Debug, Clone, Copy)]
pub struct OpsPeer {
    /// The client's address.
    pub addr: SocketAddr,
    /// Whether the client presented a certificate that verified.
    pub verified_client: bool,
}

/// Accepts TCP connections and hands on those whose TLS handshake
/// completed; handshakes run concurrently (at most [`MAX_HANDSHAKES`]),
/// each within [`HANDSHAKE_TIMEOUT`].
pub struct TlsListener {
    local: SocketAddr,
    rx: mpsc::Receiver<(TlsStream<TcpStream>, OpsPeer)>,
}

impl TlsListener {
    /// Starts accepting on `listener` until `shutdown`.
    pub fn new(
        listener: TcpListener,
        cfg: Arc<ServerConfig>,
        shutdown: CancellationToken,
    ) -> Result<Self> {
        let local = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(MAX_HANDSHAKES);
        let acceptor = TlsAcceptor::from(cfg);
        let permits = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let permit = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    p = Arc::clone(&permits).acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                };
                let (tcp, addr) = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = listener.accept() => match r {
                        Ok(x) => x,
                        Err(e) => {
                            warn!(error = %e, "operations endpoint: accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let verified_client = tls
                                .get_ref()
                                .1
                                .peer_certificates()
                                .is_some_and(|c| !c.is_empty());
                            let _ = tx
                                .send((
                                    tls,
                                    OpsPeer {
                                        addr,
                                        verified_client,
                                    },
                                ))
                                .await;
                        }
                        Ok(Err(e)) => {
                            crate::metrics::refused("ops_handshake_failed");
                            if let Some(skipped) = HANDSHAKE_LOG.allow() {
                                warn!(%addr, error = %e, skipped, "operations endpoint: TLS handshake failed");
                            }
                        }
                        Err(_) => {
                            crate::metrics::refused("ops_handshake_timeout");
                            if let Some(skipped) = HANDSHAKE_LOG.allow() {
                                warn!(%addr, skipped, "operations endpoint: TLS handshake not completed within {HANDSHAKE_TIMEOUT:?}");
                            }
                        }
                    }
                });
            }
        });
        Ok(Self { local, rx })
    }
}

impl TlsListener {
    /// The completed handshakes, for [`super::serve::serve`].
    pub fn into_receiver(self) -> mpsc::Receiver<(TlsStream<TcpStream>, OpsPeer)> {
        self.rx
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = OpsPeer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(x) => x,
            // The acceptor stopped (shutdown): wait for the server to stop too.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(OpsPeer {
            addr: self.local,
            verified_client: false,
        })
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for OpsPeer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        *stream.remote_addr()
    }
}
