//! `General.Keepalive.ServerMinInterval`: clients that ping too often are
//! sent a GOAWAY (`ENHANCE_YOUR_CALM`, debug data `too_many_pings`) and
//! disconnected, as grpc-go's keepalive enforcement policy does for Fabric.
//!
//! grpc-go's rule (`http2Server.handlePing`), with Fabric's policy
//! (`PermitWithoutStream: true`, `MinTime` = `ServerMinInterval`, 1 min when
//! unset): every PING the client sends (not an ACK) is timed; one that comes
//! less than `MinTime` after the previous one is a strike, unless the server
//! has sent HEADERS or DATA since that previous ping, which clears the
//! strikes; the third strike closes the connection. The first ping is
//! never a strike. ACKs of the server's own pings (`ServerInterval`) do not
//! count.
//!
//! h2 has no such policy, so [`PingGuard`] sits between the TLS stream and
//! hyper and reads only the 9-byte HTTP/2 frame headers as the bytes go by
//! ([`FrameScanner`], pure): on the read side for the client's PINGs (and
//! the highest stream it opened, the GOAWAY's last stream ID), on the write
//! side for the server's HEADERS and DATA and for frame boundaries. On a
//! violation it lets h2 finish the frame it is writing, writes the GOAWAY
//! itself, flushes, shuts the connection down and reads what the client
//! still sends for a moment (so the close is a FIN, not a reset that could
//! drop the GOAWAY), then fails h2's I/O, which ends the connection. All of
//! that within [`CLOSE_GRACE`], or the connection is simply closed.
//! Counted in `orderer_refused_total{reason="too_many_pings"}`, logged
//! (rate-limited).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tracing::warn;

use super::ratelog::RateLog;

/// Strikes allowed before the connection is closed (grpc-go's `maxPingStrikes`).
pub const MAX_PING_STRIKES: u8 = 2;
/// How long a connection that broke the policy may take to be sent its
/// GOAWAY and closed cleanly before it is closed anyway.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// HTTP/2 `ENHANCE_YOUR_CALM` (RFC 9113 §7).
pub const ENHANCE_YOUR_CALM: u32 = 0xb;
/// The GOAWAY's debug data, as grpc-go's.
pub const TOO_MANY_PINGS: &[u8] = b"too_many_pings";

const FRAME_HEADER_LEN: usize = 9;
const CLIENT_PREFACE_LEN: u64 = 24;
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const ACK: u8 = 0x1;

static PING_LOG: RateLog = RateLog::new();

/// The header of one HTTP/2 frame (RFC 9113 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    /// Payload length.
    pub len: u32,
    /// Frame type.
    pub kind: u8,
    /// Flags.
    pub flags: u8,
    /// Stream identifier (reserved bit cleared).
    pub stream: u32,
}

impl FrameHead {
    fn parse(h: &[u8; FRAME_HEADER_LEN]) -> Self {
        Self {
            len: u32::from_be_bytes([0, h[0], h[1], h[2]]),
            kind: h[3],
            flags: h[4],
            stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
        }
    }

    /// A PING sent by the peer (not the ACK of one of ours).
    pub fn is_ping(&self) -> bool {
        self.kind == PING && self.flags & ACK == 0
    }
}

/// Follows one direction of an HTTP/2 connection frame by frame, reading
/// only frame headers (pure: no I/O).
#[derive(Debug, Clone)]
pub struct FrameScanner {
    /// Bytes to pass over before the next frame header (the client preface,
    /// or the rest of a payload).
    skip: u64,
    header: [u8; FRAME_HEADER_LEN],
    have: usize,
}

impl FrameScanner {
    /// What the client sends: the 24-byte preface, then frames.
    pub fn client_side() -> Self {
        Self {
            skip: CLIENT_PREFACE_LEN,
            header: [0; FRAME_HEADER_LEN],
            have: 0,
        }
    }

    /// What the server sends: frames from the first byte.
    pub fn server_side() -> Self {
        Self {
            skip: 0,
            header: [0; FRAME_HEADER_LEN],
            have: 0,
        }
    }

    /// Feeds the next bytes of the direction; `on_frame` gets each frame
    /// header completed by them.
    pub fn feed(&mut self, mut data: &[u8], mut on_frame: impl FnMut(FrameHead)) {
        loop {
            if self.skip > 0 {
                let n = self.skip.min(data.len() as u64);
                self.skip -= n;
                data = &data[n as usize..];
                if self.skip > 0 {
                    return;
                }
            }
            if data.is_empty() {
                return;
            }
            let n = (FRAME_HEADER_LEN - self.have).min(data.len());
            self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have < FRAME_HEADER_LEN {
                return;
            }
            self.have = 0;
            let head = FrameHead::parse(&self.header);
            self.skip = u64::from(head.len);
            on_frame(head);
        }
    }

    /// Whether the bytes fed so far end exactly where a frame does.
    pub fn at_boundary(&self) -> bool {
        self.skip == 0 && self.have == 0
    }

    /// How many bytes may be fed before the scanner next learns something
    /// (the end of a header or of a payload): writing at most this much at
    /// a time reaches the next frame boundary without passing it.
    pub fn until_next_step(&self) -> usize {
        if self.have > 0 || self.skip == 0 {
            FRAME_HEADER_LEN - self.have
        } else {
            usize::try_from(self.skip).unwrap_or(usize::MAX)
        }
    }
}

/// grpc-go's ping policy (see the module documentation), pure.
#[derive(Debug, Clone)]
pub struct PingPolicy {
    min_interval: Duration,
    last_ping: Option<Instant>,
    strikes: u8,
    reset: bool,
}

impl PingPolicy {
    /// Pings closer together than `min_interval` are strikes.
    pub fn new(min_interval: Duration) -> Self {
        Self {
            min_interval,
            last_ping: None,
            strikes: 0,
            reset: false,
        }
    }

    /// The server sent HEADERS or DATA: the next ping clears the strikes.
    pub fn server_sent_data(&mut self) {
        self.reset = true;
    }

    /// The client sent a PING at `now`: `true` when that was one too many.
    pub fn ping(&mut self, now: Instant) -> bool {
        let last = self.last_ping.replace(now);
        if std::mem::take(&mut self.reset) {
            self.strikes = 0;
            return false;
        }
        if last.is_some_and(|l| now < l + self.min_interval) {
            self.strikes = self.strikes.saturating_add(1);
        }
        self.strikes > MAX_PING_STRIKES
    }
}

/// A GOAWAY frame: no stream after `last_stream` was processed.
pub fn goaway_frame(last_stream: u32, code: u32, debug: &[u8]) -> Vec<u8> {
    let len = 8 + debug.len() as u32;
    let mut f = Vec::with_capacity(FRAME_HEADER_LEN + len as usize);
    f.extend_from_slice(&len.to_be_bytes()[1..]);
    f.extend_from_slice(&[GOAWAY, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&(last_stream & 0x7fff_ffff).to_be_bytes());
    f.extend_from_slice(&code.to_be_bytes());
    f.extend_from_slice(debug);
    f
}

/// Where a connection that broke the policy is in being closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// h2 is writing a frame: let it finish.
    AwaitBoundary,
    Write,
    Flush,
    Shutdown,
    /// Reading and dropping what the client still sends, until EOF.
    Drain,
    Done,
}

struct Closing {
    stage: Stage,
    goaway: Vec<u8>,
    written: usize,
    deadline: Pin<Box<Sleep>>,
}

/// A server connection's IO with the ping policy enforced (see the module
/// documentation). Reads and writes pass through unchanged until the
/// client breaks the policy.
pub struct PingGuard<S> {
    inner: S,
    remote: SocketAddr,
    policy: PingPolicy,
    read: FrameScanner,
    write: FrameScanner,
    /// The highest stream the client opened.
    last_stream: u32,
    closing: Option<Closing>,
}

impl<S> PingGuard<S> {
    /// `inner`, from `remote`, whose client must not ping more often than
    /// `min_interval`.
    pub fn new(inner: S, remote: SocketAddr, min_interval: Duration) -> Self {
        Self {
            inner,
            remote,
            policy: PingPolicy::new(min_interval),
            read: FrameScanner::client_side(),
            write: FrameScanner::server_side(),
            last_stream: 0,
            closing: None,
        }
    }

    /// The wrapped IO.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    fn violated(&mut self) {
        if self.closing.is_some() {
            return;
        }
        crate::metrics::refused("too_many_pings");
        if let Some(skipped) = PING_LOG.allow() {
            warn!(remote = %self.remote, min_interval = ?self.policy.min_interval, skipped,
                  "closing a connection whose client pings more often than General.Keepalive.ServerMinInterval (GOAWAY ENHANCE_YOUR_CALM too_many_pings)");
        }
        self.closing = Some(Closing {
            stage: Stage::AwaitBoundary,
            goaway: goaway_frame(self.last_stream, ENHANCE_YOUR_CALM, TOO_MANY_PINGS),
            written: 0,
            deadline: Box::pin(tokio::time::sleep(CLOSE_GRACE)),
        });
    }

    fn closed_error() -> io::Error {
        io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "too many pings: closed after GOAWAY ENHANCE_YOUR_CALM",
        )
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> PingGuard<S> {
    /// Moves the close on as far as it goes: `Ready` once the connection
    /// is done with.
    fn drive_close(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Self {
            inner,
            write,
            closing,
            ..
        } = self;
        let Some(c) = closing.as_mut() else {
            return Poll::Ready(());
        };
        if c.deadline.as_mut().poll(cx).is_ready() {
            c.stage = Stage::Done;
        }
        let mut inner = Pin::new(inner);
        loop {
            c.stage = match c.stage {
                Stage::AwaitBoundary if write.at_boundary() => Stage::Write,
                // h2 goes on writing the frame (see `poll_write`).
                Stage::AwaitBoundary => return Poll::Pending,
                Stage::Write => {
                    while c.written < c.goaway.len() {
                        match inner.as_mut().poll_write(cx, &c.goaway[c.written..]) {
                            Poll::Ready(Ok(n)) if n > 0 => c.written += n,
                            Poll::Ready(_) => {
                                c.stage = Stage::Done;
                                return Poll::Ready(());
                            }
                            Poll::Pending => return Poll::Pending,
                        }
                    }
                    Stage::Flush
                }
                Stage::Flush => match inner.as_mut().poll_flush(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(_) => Stage::Shutdown,
                },
                Stage::Shutdown => match inner.as_mut().poll_shutdown(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(_) => Stage::Drain,
                },
                Stage::Drain => {
                    let mut scratch = [0u8; 4096];
                    loop {
                        let mut buf = ReadBuf::new(&mut scratch);
                        match inner.as_mut().poll_read(cx, &mut buf) {
                            Poll::Ready(Ok(())) if !buf.filled().is_empty() => continue,
                            Poll::Ready(_) => break,
                            Poll::Pending => return Poll::Pending,
                        }
                    }
                    Stage::Done
                }
                Stage::Done => return Poll::Ready(()),
            };
        }
    }

    /// Bytes h2 wrote: notes the server's HEADERS and DATA.
    fn wrote(&mut self, data: &[u8]) {
        let policy = &mut self.policy;
        self.write.feed(data, |f| {
            if f.kind == HEADERS || f.kind == DATA {
                policy.server_sent_data();
            }
        });
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for PingGuard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.closing.is_some() {
            std::task::ready!(this.drive_close(cx));
            return Poll::Ready(Err(Self::closed_error()));
        }
        let before = buf.filled().len();
        std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let (policy, last_stream) = (&mut this.policy, &mut this.last_stream);
        let mut too_many = false;
        this.read.feed(&buf.filled()[before..], |f| {
            if f.is_ping() {
                too_many |= policy.ping(Instant::now());
            } else if f.kind == HEADERS {
                *last_stream = (*last_stream).max(f.stream);
            }
        });
        if too_many {
            this.violated();
            // h2 reads again at once, and closing starts there.
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for PingGuard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let limit = match &this.closing {
            None => buf.len(),
            Some(_) if this.write.at_boundary() => {
                std::task::ready!(this.drive_close(cx));
                return Poll::Ready(Err(Self::closed_error()));
            }
            // Only the rest of the frame being written.
            Some(_) => this.write.until_next_step().min(buf.len()),
        };
        let n = std::task::ready!(Pin::new(&mut this.inner).poll_write(cx, &buf[..limit]))?;
        this.wrote(&buf[..n]);
        if this.closing.is_some() && this.write.at_boundary() {
            // The GOAWAY may go now: be polled again.
            cx.waker().wake_by_ref();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.closing.is_some() {
            let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
            return self.poll_write(cx, first);
        }
        let this = &mut *self;
        let n = std::task::ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, bufs))?;
        let mut left = n;
        for b in bufs {
            if left == 0 {
                break;
            }
            let take = left.min(b.len());
            this.wrote(&b[..take]);
            left -= take;
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.closing.is_some() && this.write.at_boundary() {
            std::task::ready!(this.drive_close(cx));
            return Poll::Ready(Err(Self::closed_error()));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        f.extend_from_slice(&[kind, flags]);
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn ping() -> Vec<u8> {
        frame(PING, 0, 0, &[0; 8])
    }

    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    /// The frame headers of `data` fed in chunks of the given sizes (cycled).
    fn heads(mut s: FrameScanner, data: &[u8], chunks: &[usize]) -> Vec<FrameHead> {
        let mut out = Vec::new();
        let mut rest = data;
        for &size in chunks.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, next) = rest.split_at(size.clamp(1, rest.len()));
            s.feed(chunk, |h| out.push(h));
            rest = next;
        }
        assert!(s.at_boundary());
        out
    }

    proptest! {
        #[test]
        fn frame_headers_do_not_depend_on_how_bytes_are_split(
            frames in proptest::collection::vec((0u8..10, any::<u8>(), 0u32..1000, 0usize..100), 0..10),
            chunks in proptest::collection::vec(1usize..40, 1..6),
        ) {
            let mut data = PREFACE.to_vec();
            let mut expected = Vec::new();
            for &(kind, flags, stream, len) in &frames {
                data.extend(frame(kind, flags, stream, &vec![0xAA; len]));
                expected.push(FrameHead { len: len as u32, kind, flags, stream });
            }
            prop_assert_eq!(heads(FrameScanner::client_side(), &data, &chunks), expected);
        }

        #[test]
        fn writing_up_to_the_next_step_stops_at_each_boundary(
            lens in proptest::collection::vec(0usize..50, 1..6),
        ) {
            let data: Vec<u8> = lens.iter().flat_map(|&l| frame(DATA, 0, 1, &vec![1; l])).collect();
            let mut s = FrameScanner::server_side();
            let mut pos = 0;
            let mut boundaries = 0;
            while pos < data.len() {
                let n = s.until_next_step().min(data.len() - pos);
                prop_assert!(n > 0);
                s.feed(&data[pos..pos + n], |_| {});
                pos += n;
                if s.at_boundary() {
                    boundaries += 1;
                }
            }
            prop_assert_eq!(boundaries, lens.len());
        }
    }

    #[test]
    fn the_third_strike_is_one_too_many() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut p = PingPolicy::new(Duration::from_secs(10));
        assert!(!p.ping(t0)); // the first is never a strike
        assert!(!p.ping(t0 + s)); // 1
        assert!(!p.ping(t0 + 2 * s)); // 2
        assert!(p.ping(t0 + 3 * s)); // 3 > MAX_PING_STRIKES
    }

    #[test]
    fn pings_at_the_minimum_interval_are_not_strikes() {
        let t0 = Instant::now();
        let min = Duration::from_secs(10);
        let mut p = PingPolicy::new(min);
        for i in 0..100 {
            assert!(!p.ping(t0 + min * i));
        }
    }

    #[test]
    fn server_data_between_pings_clears_the_strikes() {
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        let mut p = PingPolicy::new(Duration::from_secs(10));
        for i in 0..50 {
            assert!(!p.ping(t0 + ms * (3 * i)));
            assert!(!p.ping(t0 + ms * (3 * i + 1)));
            p.server_sent_data();
        }
        // Without data in between, the strikes add up again.
        assert!(!p.ping(t0 + ms * 200)); // cleared
        assert!(!p.ping(t0 + ms * 201));
        assert!(!p.ping(t0 + ms * 202));
        assert!(p.ping(t0 + ms * 203));
    }

    #[test]
    fn goaway_frame_layout() {
        let f = goaway_frame(7, ENHANCE_YOUR_CALM, TOO_MANY_PINGS);
        let mut heads = Vec::new();
        FrameScanner::server_side().feed(&f, |h| heads.push(h));
        assert_eq!(
            heads,
            vec![FrameHead {
                len: 8 + 14,
                kind: GOAWAY,
                flags: 0,
                stream: 0
            }]
        );
        assert_eq!(&f[9..13], &7u32.to_be_bytes());
        assert_eq!(&f[13..17], &ENHANCE_YOUR_CALM.to_be_bytes());
        assert_eq!(&f[17..], TOO_MANY_PINGS);
    }

    /// A client that pings four times in a row gets the GOAWAY after the
    /// frame the server was writing, then EOF.
    #[tokio::test]
    async fn a_ping_flood_gets_goaway_after_the_frame_being_written() {
        let (server_io, mut client) = tokio::io::duplex(1 << 16);
        let remote: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut guard = PingGuard::new(server_io, remote, Duration::from_secs(60));
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(HEADERS, 0x4, 5, &[0; 3]));
        for _ in 0..4 {
            hello.extend(ping());
        }
        client.write_all(&hello).await.unwrap();
        // The server is in the middle of a DATA frame when it reads them.
        let data = frame(DATA, 0, 5, &[7; 100]);
        guard.write_all(&data[..50]).await.unwrap();
        let mut buf = vec![0u8; hello.len()];
        guard.read_exact(&mut buf).await.unwrap();
        assert!(guard.closing.is_some(), "four pings in a row");
        // Its write of the rest (and more) is cut at the frame's end.
        let err = guard
            .write_all(&[data[50..].to_vec(), ping()].concat())
            .await;
        assert!(err.is_err());
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(&got[..100 + 9], &data[..]);
        assert_eq!(
            &got[109..],
            &goaway_frame(5, ENHANCE_YOUR_CALM, TOO_MANY_PINGS)[..]
        );
    }

    /// The same clients, pinging once in a while, are left alone.
    #[tokio::test]
    async fn spaced_pings_pass_through() {
        let (server_io, mut client) = tokio::io::duplex(1 << 16);
        let remote: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut guard = PingGuard::new(server_io, remote, Duration::from_millis(20));
        client.write_all(PREFACE).await.unwrap();
        let mut buf = vec![0u8; PREFACE.len()];
        guard.read_exact(&mut buf).await.unwrap();
        for _ in 0..6 {
            client.write_all(&ping()).await.unwrap();
            let mut buf = [0u8; 17];
            guard.read_exact(&mut buf).await.unwrap();
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(guard.closing.is_none());
        guard.write_all(&ping()).await.unwrap();
    }
}
