//! Around every gRPC stream: the total number of open streams
//! (`General.Limits.MaxStreams`; beyond it `RESOURCE_EXHAUSTED`), and for
//! Deliver the blocks buffered per stream.
//!
//! A Deliver stream's blocks are counted from the moment the stream is
//! about to read one from the ledger ([`reserve_block`], called by
//! `deliver`) until h2 has written the last byte of its encoded message to
//! the socket: the response body hands h2 each data frame as a `Bytes`
//! whose owner tells the stream's [`DeliverFlow`] how many bytes were
//! released when h2 drops it. tonic encodes message `i` as `5 + len(i)`
//! bytes and frames hold whole messages, so the released byte count says
//! exactly which messages are gone. Without this, a client that never
//! reads (HTTP/2 window 0) pinned about five blocks per stream: two in the
//! response channel, one waiting to enter it, one held by hyper waiting for
//! send capacity and one in h2's send buffer.
//!
//! The Deliver streams of one connection share a budget too
//! ([`DELIVER_CONNECTION_BUFFER`] blocks, [`ConnBudget`], keyed by the
//! connection's remote address): many streams on one connection that
//! never read pin at most that many blocks, not eight per stream. Beyond it
//! the connection's streams wait; other connections are not affected.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use fabric_protos::orderer::{deliver_response, DeliverResponse};
use http_body::{Body as HttpBody, Frame};
use prost::Message;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;
use tonic::codegen::Service;
use tracing::warn;

use super::connmap::{PerConn, Registry};
use super::ratelog::RateLog;
use crate::limits::{
    DELIVER_BUFFER_BYTES, DELIVER_CONNECTION_BUFFER, DELIVER_CONNECTION_BUFFER_BYTES,
};

const DELIVER_PATH: &str = "/orderer.AtomicBroadcast/Deliver";
/// tonic's gRPC message header: compression flag and length.
const GRPC_HEADER_LEN: u64 = 5;

static STREAM_LIMIT_LOG: RateLog = RateLog::new();

#[derive(Debug, Default)]
struct FlowState {
    /// Blocks reserved by the handler and not yet seen by the response stream.
    reserved: usize,
    /// Messages handed to tonic and not yet released: (end offset, and if
    /// it is a block: its bytes, and those charged to the node's budget).
    queued: VecDeque<(u64, Option<(u64, u64)>)>,
    /// Bytes charged to the node's budget for reserved blocks read from the
    /// ledger and not yet handed to tonic, oldest first.
    read: VecDeque<u64>,
    /// Bytes charged to the node's budget for the blocks among `queued`.
    charged_out: u64,
    /// The node's read slot, from a reservation until its block is read.
    reading: Option<OwnedSemaphorePermit>,
    /// Blocks among `queued`.
    blocks_out: usize,
    /// Their bytes.
    bytes_out: u64,
    /// Bytes of encoded messages handed to tonic so far.
    encoded: u64,
    /// Bytes h2 has released so far.
    released: u64,
}

/// Blocks of unknown size (reserved, not yet encoded) a connection may
/// have on top of its small ones.
const MAX_UNKNOWN: usize = 2;

/// What the streams of one connection hold.
#[derive(Debug, Default)]
struct ConnState {
    /// Blocks reserved or handed to tonic and not yet released.
    held: usize,
    /// Of those, reserved and not yet handed (size unknown).
    reserved: usize,
    /// Bytes of the handed ones.
    bytes: u64,
}

/// The Deliver blocks held by all streams of one connection: at most
/// `max_blocks`, or more while they are small (under `max_bytes` in all,
/// with at most two blocks of unknown size).
#[derive(Debug)]
pub struct ConnBudget {
    max_blocks: usize,
    max_bytes: u64,
    state: Mutex<ConnState>,
    changed: Notify,
}

/// Deliver blocks held by all streams of all connections.
static HELD_TOTAL: AtomicUsize = AtomicUsize::new(0);

/// Deliver blocks held between the ledger and the socket, all streams
/// (`orderer_deliver_blocks_buffered`).
pub fn blocks_held_total() -> usize {
    HELD_TOTAL.load(Ordering::Relaxed)
}

static CONNS: Registry<ConnBudget> = Registry::new();

/// A connection's [`ConnBudget`], shared by its Deliver streams.
pub type SharedConnBudget = Arc<PerConn<ConnBudget>>;

impl ConnBudget {
    fn make(max_blocks: usize, max_bytes: u64) -> Self {
        Self {
            max_blocks: max_blocks.max(1),
            max_bytes,
            state: Mutex::new(ConnState::default()),
            changed: Notify::new(),
        }
    }

    /// A budget not shared with anyone.
    pub fn new(max_blocks: usize, max_bytes: u64) -> SharedConnBudget {
        PerConn::unshared(Self::make(max_blocks, max_bytes))
    }

    /// The budget of the connection from `addr` (made on first use, gone
    /// when its last stream is).
    pub fn of_connection(addr: SocketAddr, max_blocks: usize, max_bytes: u64) -> SharedConnBudget {
        CONNS.of(Some(addr), || Self::make(max_blocks, max_bytes))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn try_take(&self) -> bool {
        let mut c = self.lock();
        if c.held < self.max_blocks || (c.reserved < MAX_UNKNOWN && c.bytes < self.max_bytes) {
            c.held += 1;
            c.reserved += 1;
            HELD_TOTAL.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// A reserved block of `bytes` was handed to tonic.
    fn handed(&self, bytes: u64) {
        {
            let mut c = self.lock();
            c.reserved = c.reserved.saturating_sub(1);
            c.bytes += bytes;
        }
        // A stream waiting for its block of unknown size may go on.
        self.changed.notify_waiters();
    }

    /// `blocks` blocks (`reserved` of them never handed) of `bytes` in all
    /// are gone.
    fn give_back(&self, blocks: usize, reserved: usize, bytes: u64) {
        if blocks == 0 {
            return;
        }
        {
            let mut c = self.lock();
            c.held -= blocks;
            c.reserved -= reserved;
            c.bytes -= bytes;
        }
        HELD_TOTAL.fetch_sub(blocks, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// Blocks held by the connection's streams.
    pub fn held(&self) -> usize {
        self.lock().held
    }
}

/// Deliver bytes held by all streams of all connections (a block counts
/// from its ledger read until h2 has written its last byte).
static BYTES_TOTAL: AtomicU64 = AtomicU64::new(0);

/// Deliver block bytes held between the ledger and the socket, all
/// streams (`orderer_deliver_bytes_buffered`).
pub fn bytes_held_total() -> u64 {
    BYTES_TOTAL.load(Ordering::Relaxed)
}

/// The node's budget of Deliver block bytes, all connections together
/// (`General.Limits.MaxDeliverBufferedBytes`): a stream reads its next
/// block from the ledger only while the bytes held by all streams are
/// under it. Checked before each read, so it may be passed by the blocks
/// being read at that moment ([`DELIVER_READ_SLOTS`] at most), never by
/// blocks that clients do not take.
#[derive(Debug)]
pub struct DeliverTotal {
    max_bytes: u64,
    bytes: AtomicU64,
    changed: Notify,
    /// Ledger reads between a reservation and its block's size being
    /// counted ([`DELIVER_READ_SLOTS`]).
    reads: Arc<Semaphore>,
}

/// Deliver blocks being read from the ledger at once, their size not yet
/// counted: the node's byte budget is passed by at most this many blocks.
pub const DELIVER_READ_SLOTS: usize = 4;

impl DeliverTotal {
    /// A budget of `max_bytes`.
    pub fn new(max_bytes: u64) -> Arc<Self> {
        Arc::new(Self {
            max_bytes,
            bytes: AtomicU64::new(0),
            changed: Notify::new(),
            reads: Arc::new(Semaphore::new(DELIVER_READ_SLOTS)),
        })
    }

    /// No limit.
    pub fn unbounded() -> Arc<Self> {
        Self::new(u64::MAX)
    }

    /// Bytes held under this budget.
    pub fn held(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn has_room(&self) -> bool {
        self.held() < self.max_bytes
    }

    fn add(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        BYTES_TOTAL.fetch_add(n, Ordering::Relaxed);
    }

    fn sub(&self, n: u64) {
        if n == 0 {
            return;
        }
        self.bytes.fetch_sub(n, Ordering::Relaxed);
        BYTES_TOTAL.fetch_sub(n, Ordering::Relaxed);
        self.changed.notify_waiters();
    }
}

/// The blocks a Deliver stream holds between the ledger and the socket: at
/// most `max_blocks`, or more while they are small (under `max_bytes` in
/// all, with at most `max_blocks` of unknown size: read, not yet encoded),
/// so that small blocks keep being sent many at a time.
#[derive(Debug)]
pub struct DeliverFlow {
    max_blocks: usize,
    max_bytes: u64,
    conn: SharedConnBudget,
    total: Arc<DeliverTotal>,
    state: Mutex<FlowState>,
    changed: Notify,
    /// The response stream is gone (client left): nothing will be released
    /// any more, so [`Self::reserve`] stops waiting.
    closed: std::sync::atomic::AtomicBool,
}

/// Closes its flow when dropped: held by the response stream, so that a
/// handler waiting for room learns that the client is gone.
#[derive(Debug)]
pub struct ResponseGuard(Arc<DeliverFlow>);

impl ResponseGuard {
    /// A guard for `flow`.
    pub fn new(flow: Arc<DeliverFlow>) -> Self {
        Self(flow)
    }
}

impl Drop for ResponseGuard {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.changed.notify_waiters();
    }
}

impl Drop for DeliverFlow {
    fn drop(&mut self) {
        let s = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        self.conn
            .give_back(s.reserved + s.blocks_out, s.reserved, s.bytes_out);
        self.total.sub(s.read.iter().sum::<u64>() + s.charged_out);
    }
}

impl DeliverFlow {
    /// A stream that may hold `max_blocks` blocks (at least 1), or more
    /// under `max_bytes`, on a connection of its own.
    pub fn new(max_blocks: usize, max_bytes: u64) -> Self {
        Self::on_connection(max_blocks, max_bytes, ConnBudget::new(usize::MAX, u64::MAX))
    }

    /// As [`Self::new`], within its connection's budget.
    pub fn on_connection(max_blocks: usize, max_bytes: u64, conn: SharedConnBudget) -> Self {
        Self::within(max_blocks, max_bytes, conn, DeliverTotal::unbounded())
    }

    /// As [`Self::on_connection`], within the node's byte budget `total`.
    pub fn within(
        max_blocks: usize,
        max_bytes: u64,
        conn: SharedConnBudget,
        total: Arc<DeliverTotal>,
    ) -> Self {
        Self {
            max_blocks: max_blocks.max(1),
            max_bytes,
            conn,
            total,
            state: Mutex::new(FlowState::default()),
            changed: Notify::new(),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FlowState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks reserved or buffered.
    pub fn blocks_held(&self) -> usize {
        let s = self.lock();
        s.reserved + s.blocks_out
    }

    /// Waits until the stream holds fewer than `max_blocks` blocks and its
    /// connection fewer than its budget, and reserves one; returns at once
    /// without reserving once the response stream is gone (the handler's
    /// next send fails and it ends).
    pub async fn reserve(&self) {
        loop {
            let mine = self.changed.notified();
            let conn = self.conn.changed.notified();
            let total = self.total.changed.notified();
            tokio::pin!(mine, conn, total);
            mine.as_mut().enable();
            conn.as_mut().enable();
            total.as_mut().enable();
            if self.closed.load(Ordering::Acquire) {
                return;
            }
            let mine_ok = {
                let s = self.lock();
                s.reserved + s.blocks_out < self.max_blocks
                    || (s.reserved < self.max_blocks && s.bytes_out < self.max_bytes)
            };
            if mine_ok && self.total.has_room() {
                // The node's room is checked again holding a read slot,
                // kept until the block read is counted (`block_read`):
                // at most DELIVER_READ_SLOTS blocks are read past one check.
                // (Only this stream's handler reserves: `mine_ok` holds.)
                let slot = Arc::clone(&self.total.reads).acquire_owned().await.ok();
                if self.total.has_room() && self.conn.try_take() {
                    let mut s = self.lock();
                    s.reserved += 1;
                    s.reading = slot;
                    return;
                }
            }
            tokio::select! {
                _ = mine => {}
                _ = conn => {}
                _ = total => {}
            }
        }
    }

    /// A message of `encoded_len` bytes (without the gRPC header) is being
    /// handed to tonic.
    pub fn handed(&self, encoded_len: usize, is_block: bool) {
        let len = GRPC_HEADER_LEN + encoded_len as u64;
        let mut s = self.lock();
        s.encoded += len;
        let end = s.encoded;
        s.queued.push_back((end, is_block.then_some((len, 0))));
        if is_block && s.reserved > 0 {
            let charged = s.read.pop_front().unwrap_or(0);
            s.queued.back_mut().expect("just pushed").1 = Some((len, charged));
            s.charged_out += charged;
            s.reserved -= 1;
            s.blocks_out += 1;
            s.bytes_out += len;
            drop(s);
            self.conn.handed(len);
            // Its size is known now: the handler may reserve the next.
            self.changed.notify_waiters();
        } else if is_block {
            // Not reserved (no budget in force when it was read): bytes
            // only, so that the release is accounted for.
            s.queued.back_mut().expect("just pushed").1 = None;
        }
    }

    /// h2 dropped `n` bytes of the response body.
    pub fn released(&self, n: usize) {
        let (mut freed, mut freed_bytes, mut freed_charged) = (0, 0, 0);
        {
            let mut s = self.lock();
            s.released += n as u64;
            while let Some(&(end, block)) = s.queued.front() {
                if end > s.released {
                    break;
                }
                s.queued.pop_front();
                if let Some((len, charged)) = block {
                    s.blocks_out -= 1;
                    s.bytes_out -= len;
                    s.charged_out -= charged;
                    freed += 1;
                    freed_bytes += len;
                    freed_charged += charged;
                }
            }
        }
        self.total.sub(freed_charged);
        if freed > 0 {
            self.conn.give_back(freed, 0, freed_bytes);
            self.changed.notify_waiters();
        }
    }

    /// A reserved block of `bytes` was read from the ledger: it counts
    /// against the node's budget from now on.
    pub fn block_read(&self, bytes: u64) {
        let slot = {
            let mut s = self.lock();
            s.read.push_back(bytes);
            s.reading.take()
        };
        self.total.add(bytes);
        drop(slot);
    }

    /// The stream's handler is done: no block is being read.
    fn done_reading(&self) {
        let slot = self.lock().reading.take();
        drop(slot);
    }

    /// Records a response on its way to tonic (see [`Self::handed`]).
    pub fn observe(&self, resp: &DeliverResponse) {
        let is_block = matches!(resp.r#type, Some(deliver_response::Type::Block(_)));
        self.handed(resp.encoded_len(), is_block);
    }
}

tokio::task_local! {
    static FLOW: Arc<DeliverFlow>;
}

/// Runs `fut` (a Deliver stream's handler) with `flow` as its budget.
pub async fn scope<F: Future>(flow: Arc<DeliverFlow>, fut: F) -> F::Output {
    let out = FLOW.scope(Arc::clone(&flow), fut).await;
    // A reservation whose read failed gives its read slot back.
    flow.done_reading();
    out
}

/// Waits for room for one more block in this Deliver stream's buffer
/// (none: returns at once, e.g. outside a gRPC stream).
pub async fn reserve_block() {
    if let Ok(flow) = FLOW.try_with(Arc::clone) {
        flow.reserve().await;
    }
}

/// This Deliver stream's reserved block, of `bytes`, was read from the
/// ledger (outside a gRPC stream: nothing).
pub fn block_read(bytes: u64) {
    let _ = FLOW.try_with(|flow| flow.block_read(bytes));
}

/// The data of one response-body frame; tells its flow when h2 drops it.
struct Tracked {
    bytes: Bytes,
    flow: Arc<DeliverFlow>,
}

impl AsRef<[u8]> for Tracked {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.flow.released(self.bytes.len());
    }
}

/// A response body that holds its stream's slot, and for Deliver reports
/// each frame's release to the stream's flow.
struct GuardedBody {
    inner: Body,
    flow: Option<Arc<DeliverFlow>>,
    _slot: OwnedSemaphorePermit,
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let frame = match (&this.flow, frame.into_data()) {
                    (Some(flow), Ok(bytes)) => Frame::data(Bytes::from_owner(Tracked {
                        bytes,
                        flow: Arc::clone(flow),
                    })),
                    (_, Ok(bytes)) => Frame::data(bytes),
                    (_, Err(frame)) => frame,
                };
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The layer: one per server.
#[derive(Debug, Clone)]
pub struct StreamLimitLayer {
    slots: Arc<Semaphore>,
    max_streams: usize,
    deliver_blocks: usize,
    deliver_total: Arc<DeliverTotal>,
}

impl StreamLimitLayer {
    /// At most `max_streams` streams open; Deliver streams hold at most
    /// `deliver_blocks` blocks each, and all of them together read no more
    /// blocks while they hold `deliver_total_bytes`.
    pub fn new(max_streams: usize, deliver_blocks: usize, deliver_total_bytes: u64) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_streams)),
            max_streams,
            deliver_blocks,
            deliver_total: DeliverTotal::new(deliver_total_bytes),
        }
    }
}

impl<S> tower_layer::Layer<S> for StreamLimitLayer {
    type Service = StreamLimit<S>;
    fn layer(&self, inner: S) -> StreamLimit<S> {
        StreamLimit {
            inner,
            limits: self.clone(),
        }
    }
}

/// The service [`StreamLimitLayer`] makes.
#[derive(Debug, Clone)]
pub struct StreamLimit<S> {
    inner: S,
    limits: StreamLimitLayer,
}

/// The client's address, from what tonic put in the request.
pub(super) fn remote_addr(req: &http::Request<Body>) -> Option<SocketAddr> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    let ext = req.extensions();
    ext.get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            ext.get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|i| i.get_ref().remote_addr())
        })
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S> Service<http::Request<Body>> for StreamLimit<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        let Ok(slot) = Arc::clone(&self.limits.slots).try_acquire_owned() else {
            crate::metrics::refused("stream_limit");
            let max = self.limits.max_streams;
            if let Some(skipped) = STREAM_LIMIT_LOG.allow() {
                warn!(path = %req.uri().path(), max_streams = max, skipped,
                      "refusing a gRPC stream: General.Limits.MaxStreams reached");
            }
            let st = crate::status::stream_limit_status(max);
            return Box::pin(async move { Ok(st.into_http()) });
        };
        let flow = (req.uri().path() == DELIVER_PATH).then(|| {
            let (blocks, bytes) = (DELIVER_CONNECTION_BUFFER, DELIVER_CONNECTION_BUFFER_BYTES);
            let conn = match remote_addr(&req) {
                Some(addr) => ConnBudget::of_connection(addr, blocks, bytes),
                None => ConnBudget::new(blocks, bytes),
            };
            let flow = Arc::new(DeliverFlow::within(
                self.limits.deliver_blocks,
                DELIVER_BUFFER_BYTES,
                conn,
                Arc::clone(&self.limits.deliver_total),
            ));
            req.extensions_mut().insert(Arc::clone(&flow));
            flow
        });
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            Ok(resp.map(|inner| {
                Body::new(GuardedBody {
                    inner,
                    flow,
                    _slot: slot,
                })
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn blocks_count_until_their_bytes_are_released() {
        let flow = Arc::new(DeliverFlow::new(2, 0));
        flow.reserve().await;
        flow.handed(100, true);
        flow.reserve().await;
        assert_eq!(flow.blocks_held(), 2);
        // A third block waits.
        let f = Arc::clone(&flow);
        let third = tokio::spawn(async move { f.reserve().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!third.is_finished());
        flow.handed(50, true);
        // Part of the first message released: still held.
        flow.released(60);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!third.is_finished());
        // The rest of it: the third block may be read.
        flow.released(45);
        tokio::time::timeout(Duration::from_secs(1), third)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(flow.blocks_held(), 2);
        // A status message counts as bytes, not as a block.
        flow.handed(2, false);
        flow.released(55 + 7);
        assert_eq!(flow.blocks_held(), 1);
    }

    #[tokio::test]
    async fn streams_of_one_connection_share_its_budget() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let conn = ConnBudget::of_connection(addr, 3, 0);
        assert!(Arc::ptr_eq(&conn, &ConnBudget::of_connection(addr, 3, 0)));
        let a = Arc::new(DeliverFlow::on_connection(2, 0, Arc::clone(&conn)));
        let b = Arc::new(DeliverFlow::on_connection(2, 0, Arc::clone(&conn)));
        a.reserve().await;
        a.handed(10, true);
        a.reserve().await;
        b.reserve().await;
        assert_eq!(conn.held(), 3);
        // b may hold two, but the connection is full.
        let b2 = Arc::clone(&b);
        let waiting = tokio::spawn(async move { b2.reserve().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        // a's first block is written: b gets its second.
        a.released(15);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(conn.held(), 3);
        // A stream that ends gives back what it held.
        drop(a);
        assert_eq!(conn.held(), 2);
        drop(b);
        assert_eq!(conn.held(), 0);
        drop(conn);
        assert!(!CONNS.contains(&addr));
    }

    #[tokio::test]
    async fn a_waiting_stream_stops_waiting_when_its_client_is_gone() {
        let flow = Arc::new(DeliverFlow::new(1, 0));
        let guard = ResponseGuard::new(Arc::clone(&flow));
        flow.reserve().await;
        let f = Arc::clone(&flow);
        let waiting = tokio::spawn(async move { f.reserve().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        drop(guard);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .unwrap()
            .unwrap();
        // Nothing more was reserved.
        assert_eq!(flow.blocks_held(), 1);
    }

    #[tokio::test]
    async fn small_blocks_may_be_more_than_the_block_count() {
        let conn = ConnBudget::new(3, 2000);
        let flow = Arc::new(DeliverFlow::on_connection(2, 1000, Arc::clone(&conn)));
        // Ten blocks of 95 + 5 bytes: under 1000 bytes, so not held to 2.
        for _ in 0..10 {
            tokio::time::timeout(Duration::from_secs(1), flow.reserve())
                .await
                .expect("a small block waited");
            flow.handed(95, true);
        }
        assert_eq!(flow.blocks_held(), 10);
        // 1000 bytes held now: the next waits for the count (2) instead.
        let f = Arc::clone(&flow);
        let waiting = tokio::spawn(async move { f.reserve().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        // Writing nine of them frees both the byte and the count limit.
        flow.released(900);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(flow.blocks_held(), 2);
        assert_eq!(conn.held(), 2);
        // A big block takes the byte allowance at once: one unknown at a time.
        flow.handed(5000, true);
        let f = Arc::clone(&flow);
        let waiting = tokio::spawn(async move { f.reserve().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "3 blocks over 1000 bytes");
        waiting.abort();
        let _ = waiting.await;
        drop(flow);
        assert_eq!(conn.held(), 0);
    }

    #[tokio::test]
    async fn streams_of_all_connections_share_the_node_byte_budget() {
        let total = DeliverTotal::new(1000);
        let flow = |total: &Arc<DeliverTotal>| {
            Arc::new(DeliverFlow::within(
                8,
                0,
                ConnBudget::new(16, 0),
                Arc::clone(total),
            ))
        };
        let (a, b) = (flow(&total), flow(&total));
        a.reserve().await;
        a.block_read(600);
        b.reserve().await;
        b.block_read(500);
        assert_eq!(total.held(), 1100);
        // Over the budget: no stream reads another block.
        let b2 = Arc::clone(&b);
        let waiting = tokio::spawn(async move { b2.reserve().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        // a's block goes to tonic, then to the socket: room again.
        a.handed(600, true);
        assert_eq!(total.held(), 1100);
        a.released(605);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(total.held(), 500);
        // A stream that ends gives back what it read, handed or not.
        b.handed(500, true);
        drop(b);
        assert_eq!(total.held(), 0);
        drop(a);
        assert_eq!(total.held(), 0);
    }

    #[tokio::test]
    async fn frames_merging_several_messages_release_them_all() {
        let flow = DeliverFlow::new(3, 0);
        for len in [10, 20, 30] {
            flow.reserve().await;
            flow.handed(len, true);
        }
        assert_eq!(flow.blocks_held(), 3);
        flow.released(15 + 25);
        assert_eq!(flow.blocks_held(), 1);
        flow.released(35);
        assert_eq!(flow.blocks_held(), 0);
    }
}
