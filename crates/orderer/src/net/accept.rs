//! The gRPC port's accept loop. Before a connection reaches the HTTP/2
//! server it holds one of `max_connections` slots (none free: closed at
//! once), and its TLS handshake runs in a task of its own; the handshake
//! and the 24-byte HTTP/2 client preface must both be done within
//! `General.ConnectionTimeout` of the accept (with the header of the
//! client's first SETTINGS frame), as grpc-go's
//! `ConnectionTimeout` does for Fabric. A connection that misses either is
//! closed; failed handshakes are logged with the remote address
//! (rate-limited, [`super::ratelog`]). Running out of descriptors makes the
//! loop pause instead of spinning.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::keepalive::PingGuard;
use super::ratelog::RateLog;

/// What a client must send within the deadline: the HTTP/2 connection
/// preface (24 bytes, RFC 9113 §3.4) and the header of the SETTINGS frame
/// that must follow it (9 bytes), as grpc-go reads both within its
/// `ConnectionTimeout` (h2 checks what they say).
pub const PREFACE_LEN: usize = 24 + 9;
/// How long the loop pauses when `accept` fails for lack of descriptors.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

static LIMIT_LOG: RateLog = RateLog::new();
static HANDSHAKE_LOG: RateLog = RateLog::new();
static PREFACE_LOG: RateLog = RateLog::new();
static ACCEPT_LOG: RateLog = RateLog::new();

/// Turns an accepted TCP connection into the server's IO (TLS or not).
pub trait Handshake: Clone + Send + Sync + 'static {
    /// The connection after the handshake.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Runs the handshake.
    fn handshake(&self, tcp: TcpStream) -> impl Future<Output = io::Result<Self::Io>> + Send;
}

/// No TLS.
#[derive(Debug, Clone, Copy)]
pub struct Plain;

impl Handshake for Plain {
    type Io = TcpStream;
    async fn handshake(&self, tcp: TcpStream) -> io::Result<TcpStream> {
        Ok(tcp)
    }
}

/// TLS with rustls, with the config in force at the handshake
/// ([`super::tls::ServerTls`]).
#[derive(Clone)]
pub struct Tls(pub std::sync::Arc<super::tls::ServerTls>);

impl Handshake for Tls {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    async fn handshake(&self, tcp: TcpStream) -> io::Result<Self::Io> {
        tokio_rustls::TlsAcceptor::from(self.0.config())
            .accept(tcp)
            .await
    }
}

/// A connection handed to the HTTP/2 server: it holds its connection slot
/// until dropped, and fails reads once the preface deadline passes with
/// fewer than [`PREFACE_LEN`] bytes received.
pub struct Conn<S> {
    inner: PingGuard<S>,
    remote: SocketAddr,
    received: usize,
    deadline: Option<Pin<Box<Sleep>>>,
    _slot: OwnedSemaphorePermit,
}

impl<S> Drop for Conn<S> {
    fn drop(&mut self) {
        crate::metrics::conn_closed();
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Conn<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        let Some(deadline) = this.deadline.as_mut() else {
            return r;
        };
        match r {
            Poll::Ready(Ok(())) => {
                this.received += buf.filled().len() - before;
                if this.received >= PREFACE_LEN {
                    this.deadline = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if deadline.as_mut().poll(cx).is_ready() {
                    crate::metrics::refused("preface_timeout");
                    if let Some(skipped) = PREFACE_LOG.allow() {
                        warn!(remote = %this.remote, received = this.received, skipped,
                              "closing a connection that did not send the HTTP/2 preface within General.ConnectionTimeout");
                    }
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no HTTP/2 preface within General.ConnectionTimeout",
                    )));
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: tonic::transport::server::Connected> tonic::transport::server::Connected for Conn<S> {
    type ConnectInfo = S::ConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.get_ref().connect_info()
    }
}

/// Whether an accept error means the process is out of descriptors or
/// memory (pause), rather than one connection failing (go on).
fn resource_exhausted(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// What [`incoming`] enforces on each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptLimits {
    /// `General.ConnectionTimeout`: TLS handshake and HTTP/2 preface.
    pub connection_timeout: Duration,
    /// `General.Limits.MaxConnections` (already fitted to the descriptor limit).
    pub max_connections: usize,
    /// `General.Keepalive.ServerMinInterval` ([`super::keepalive`]).
    pub min_ping_interval: Duration,
}

/// Accepts on `listener` until `shutdown`, and yields connections whose
/// handshake (`hs`) completed within `limits.connection_timeout`, at most
/// `limits.max_connections` open or handshaking at once, each with the
/// ping policy of [`super::keepalive`].
pub fn incoming<H: Handshake>(
    listener: TcpListener,
    hs: H,
    limits: AcceptLimits,
    shutdown: CancellationToken,
) -> ReceiverStream<Conn<H::Io>> {
    let AcceptLimits {
        connection_timeout: timeout,
        max_connections,
        min_ping_interval,
    } = limits;
    let (tx, rx) = mpsc::channel::<Conn<H::Io>>(64);
    let slots = Arc::new(Semaphore::new(max_connections));
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = listener.accept() => r,
            };
            let (tcp, remote) = match accepted {
                Ok(x) => x,
                Err(e) if resource_exhausted(&e) => {
                    crate::metrics::refused("accept_error");
                    if let Some(skipped) = ACCEPT_LOG.allow() {
                        warn!(error = %e, skipped, "gRPC accept failed; pausing");
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
                Err(e) => {
                    debug!(error = %e, "gRPC accept failed");
                    continue;
                }
            };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                crate::metrics::refused("connection_limit");
                if let Some(skipped) = LIMIT_LOG.allow() {
                    warn!(%remote, max_connections, skipped,
                          "closing a new gRPC connection: General.Limits.MaxConnections reached");
                }
                drop(tcp);
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let hs = hs.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let deadline = started + timeout;
                let io = match tokio::time::timeout_at(deadline, hs.handshake(tcp)).await {
                    Ok(Ok(io)) => io,
                    Ok(Err(e)) => {
                        crate::metrics::refused("handshake_failed");
                        if let Some(skipped) = HANDSHAKE_LOG.allow() {
                            warn!(%remote, skipped, "Server TLS handshake failed in {:?} with error {e}",
                                  started.elapsed());
                        }
                        return;
                    }
                    Err(_) => {
                        crate::metrics::refused("handshake_timeout");
                        if let Some(skipped) = HANDSHAKE_LOG.allow() {
                            warn!(%remote, skipped, "Server TLS handshake failed: not completed within General.ConnectionTimeout ({timeout:?})");
                        }
                        return;
                    }
                };
                crate::metrics::conn_opened();
                let conn = Conn {
                    inner: PingGuard::new(io, remote, min_ping_interval),
                    remote,
                    received: 0,
                    deadline: Some(Box::pin(tokio::time::sleep_until(deadline))),
                    _slot: slot,
                };
                let _ = tx.send(conn).await;
            });
        }
    });
    ReceiverStream::new(rx)
}
