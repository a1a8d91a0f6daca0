//! Serving the operations endpoint's HTTP/1.1 connections with Fabric's
//! `fabhttp` bounds: a request (head and body) must arrive within
//! [`OPS_READ_TIMEOUT`] (10 s), a response be written within
//! [`OPS_WRITE_TIMEOUT`] (2 min), and a keep-alive connection idle for
//! [`OPS_IDLE_TIMEOUT`] is closed; at most [`OPS_MAX_CONNECTIONS`] are open
//! (more are closed at once, logged rate-limited and counted in
//! `orderer_refused_total{reason="ops_connection_limit"}`).
//!
//! The read and write bounds are kept by [`Deadlines`] around the socket (a
//! read that waits longer than the idle timeout, a write that waits longer
//! than the write timeout, fails), and by hyper's header read timeout.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::tls::OpsPeer;
use crate::limits::{OPS_IDLE_TIMEOUT, OPS_MAX_CONNECTIONS, OPS_READ_TIMEOUT, OPS_WRITE_TIMEOUT};
use crate::net::ratelog::RateLog;

static LIMIT_LOG: RateLog = RateLog::new();

/// An IO whose reads fail after `read_idle` without data, and whose writes
/// fail after `write_stall` without progress.
pub struct Deadlines<S> {
    inner: S,
    read_idle: Duration,
    write_stall: Duration,
    read_timer: Pin<Box<Sleep>>,
    write_timer: Pin<Box<Sleep>>,
    write_waiting: bool,
}

impl<S> Deadlines<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, read_idle: Duration, write_stall: Duration) -> Self {
        let now = Instant::now();
        Self {
            inner,
            read_idle,
            write_stall,
            read_timer: Box::pin(tokio::time::sleep_until(now + read_idle)),
            write_timer: Box::pin(tokio::time::sleep_until(now + write_stall)),
            write_waiting: false,
        }
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_string())
}

impl<S: AsyncRead + Unpin> AsyncRead for Deadlines<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                let at = Instant::now() + this.read_idle;
                this.read_timer.as_mut().reset(at);
                Poll::Ready(r)
            }
            Poll::Pending => {
                if this.read_timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(timed_out("operations connection idle")));
                }
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> Deadlines<S> {
    fn track<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(r) => {
                self.write_waiting = false;
                Poll::Ready(r)
            }
            Poll::Pending => {
                if !self.write_waiting {
                    self.write_waiting = true;
                    let at = Instant::now() + self.write_stall;
                    self.write_timer.as_mut().reset(at);
                }
                if self.write_timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(timed_out("operations response not read")));
                }
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deadlines<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.track(cx, r)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.track(cx, r)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.track(cx, r)
    }
}

/// Accepts plain TCP connections on `listener` until `shutdown`.
pub fn plain_incoming(
    listener: TcpListener,
    shutdown: CancellationToken,
) -> mpsc::Receiver<(tokio::net::TcpStream, OpsPeer)> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let r = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = listener.accept() => r,
            };
            match r {
                Ok((tcp, addr)) => {
                    let peer = OpsPeer {
                        addr,
                        verified_client: false,
                    };
                    if tx.send((tcp, peer)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    debug!(error = %e, "operations endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    rx
}

/// Serves the connections from `incoming` with `app` until `shutdown`
/// (then each connection finishes its request in flight and closes).
pub async fn serve<IO>(
    mut incoming: mpsc::Receiver<(IO, OpsPeer)>,
    app: Router,
    shutdown: CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(OPS_MAX_CONNECTIONS));
    let tracker = tokio_util::task::TaskTracker::new();
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => break,
            n = incoming.recv() => n,
        };
        let Some((io, peer)) = next else { break };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            crate::metrics::refused("ops_connection_limit");
            if let Some(skipped) = LIMIT_LOG.allow() {
                warn!(remote = %peer.addr, max = OPS_MAX_CONNECTIONS, skipped,
                      "operations endpoint: too many connections; closing a new one");
            }
            continue;
        };
        let svc = WithPeer {
            inner: app.clone(),
            peer,
        };
        let stop = shutdown.clone();
        tracker.spawn(async move {
            let _slot = slot;
            let io = TokioIo::new(Deadlines::new(io, OPS_IDLE_TIMEOUT, OPS_WRITE_TIMEOUT));
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(OPS_READ_TIMEOUT)
                .max_buf_size(64 * 1024);
            let conn =
                builder.serve_connection(io, hyper_util::service::TowerToHyperService::new(svc));
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        debug!(remote = %peer.addr, error = %e, "operations connection ended");
                    }
                }
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
        });
    }
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
}

/// The router with the connection's [`OpsPeer`] (and its address) in every
/// request's extensions, as axum's `ConnectInfo` would put them.
#[derive(Clone)]
struct WithPeer {
    inner: Router,
    peer: OpsPeer,
}

impl tower_service::Service<http::Request<hyper::body::Incoming>> for WithPeer {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: http::Request<hyper::body::Incoming>) -> Self::Future {
        req.extensions_mut().insert(ConnectInfo(self.peer));
        req.extensions_mut()
            .insert(ConnectInfo::<SocketAddr>(self.peer.addr));
        let mut router = self.inner.clone();
        Box::pin(async move { router.call(req.map(axum::body::Body::new)).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reads_fail_after_idle_and_writes_after_a_stall() {
        let ms = Duration::from_millis;
        // Data keeps a connection alive; silence longer than the idle
        // timeout ends it.
        let (mut client, server) = tokio::io::duplex(64);
        let mut server = Deadlines::new(server, ms(150), ms(150));
        let mut buf = [0u8; 8];
        for _ in 0..3 {
            tokio::time::sleep(ms(100)).await;
            client.write_all(b"x").await.unwrap();
            assert_eq!(server.read(&mut buf).await.unwrap(), 1);
        }
        let t = std::time::Instant::now();
        let e = server.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(t.elapsed() >= ms(140), "{:?}", t.elapsed());

        // A peer that does not read: the write fails after the stall limit.
        let (_client, server) = tokio::io::duplex(64);
        let mut server = Deadlines::new(server, ms(10_000), ms(150));
        let t = std::time::Instant::now();
        let e = server.write_all(&[0u8; 1024]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(t.elapsed() >= ms(140), "{:?}", t.elapsed());
    }
}
