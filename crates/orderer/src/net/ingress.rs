//! Client bytes received and not yet answered, bounded in bytes per
//! stream, per connection and in total (issue #16).
//!
//! Every Broadcast and Deliver request body passes through [`BudgetBody`],
//! which reads the gRPC framing (a 5-byte header: compression flag and
//! length) as the bytes go by. When a message's header arrives, its length
//! is taken from three budgets at once, in a fixed order: the stream's
//! ([`ReceiveLimits::stream_bytes`]), its connection's and the node's. No
//! byte of the message is handed on to tonic before that: while a budget is
//! spent the body is not read, so h2's flow control stops the client
//! (back-pressure, never a refusal). A message larger than a budget takes
//! all of it (it is then the only one at that level), so whatever the
//! limits, any message tonic accepts (`General.MaxRecvMsgSize`) gets
//! through; at each level the bytes held are at most the budget or one
//! message.
//!
//! The budget of a whole message goes into the request's [`Received`]
//! queue before tonic can decode it; the handler takes it with the decoded
//! message, in the same order: Deliver lets it go at once, Broadcast keeps
//! it until the envelope is answered. So an envelope's bytes count from
//! their header until its answer is sent, whatever holds them meanwhile
//! (tonic's buffer, validation, the chain's queue, Kafka's producer).
//!
//! A message that holds budget must arrive: within
//! [`MESSAGE_RECEIVE_TIMEOUT`] plus one second per
//! [`MESSAGE_RECEIVE_MIN_RATE`] bytes of its length, or the stream ends
//! with `RESOURCE_EXHAUSTED`, so a client that announces a large message
//! and stalls cannot keep others waiting.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;
use tonic::codegen::Service;
use tracing::warn;

use super::connmap::{PerConn, Registry};
use super::ratelog::RateLog;
use crate::limits::{MESSAGE_RECEIVE_MIN_RATE, MESSAGE_RECEIVE_TIMEOUT};

const BUDGETED_PATHS: [&str; 2] = [
    "/orderer.AtomicBroadcast/Broadcast",
    "/orderer.AtomicBroadcast/Deliver",
];

static WAIT_LOG: RateLog = RateLog::new();
static TIMEOUT_LOG: RateLog = RateLog::new();

/// Bytes held by all streams (`orderer_received_bytes_held`).
static HELD_TOTAL: AtomicU64 = AtomicU64::new(0);

/// Client bytes received and not yet answered, all streams.
pub fn bytes_held_total() -> u64 {
    HELD_TOTAL.load(Ordering::Relaxed)
}

/// The byte budgets (`General.Limits.MaxStreamBytes`, `MaxConnectionBytes`,
/// `MaxReceivedBytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveLimits {
    /// Per stream.
    pub stream_bytes: u64,
    /// All the streams of one connection.
    pub connection_bytes: u64,
    /// All streams of all connections.
    pub total_bytes: u64,
}

impl Default for ReceiveLimits {
    fn default() -> Self {
        Self {
            stream_bytes: crate::limits::RECEIVE_STREAM_BYTES,
            connection_bytes: crate::limits::RECEIVE_CONNECTION_BYTES,
            total_bytes: crate::limits::RECEIVE_TOTAL_BYTES,
        }
    }
}

/// The three budgets, in the order they are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Stream,
    Connection,
    Total,
}

impl Level {
    const ALL: [Level; 3] = [Level::Stream, Level::Connection, Level::Total];

    fn name(self) -> &'static str {
        match self {
            Level::Stream => "stream",
            Level::Connection => "connection",
            Level::Total => "total",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Level::Stream => "General.Limits.MaxStreamBytes",
            Level::Connection => "General.Limits.MaxConnectionBytes",
            Level::Total => "General.Limits.MaxReceivedBytes",
        }
    }
}

/// A semaphore of bytes (permits are `u32`, so budgets stop at 4 GiB).
fn byte_semaphore(bytes: u64) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(bytes.min(u64::from(u32::MAX)) as usize))
}

/// The budget shared by the streams of one connection (made by its first
/// budgeted stream, gone with the last thing holding it).
type ConnBytes = PerConn<Arc<Semaphore>>;

static CONNS: Registry<Arc<Semaphore>> = Registry::new();

fn conn_bytes(addr: Option<SocketAddr>, bytes: u64) -> Arc<ConnBytes> {
    CONNS.of(addr, || byte_semaphore(bytes))
}

/// One message's bytes, taken from the three budgets; given back when
/// dropped.
#[derive(Debug)]
pub struct Held {
    bytes: u64,
    _permits: Vec<OwnedSemaphorePermit>,
    _conn: Option<Arc<ConnBytes>>,
}

impl Held {
    fn new(bytes: u64, permits: Vec<OwnedSemaphorePermit>, conn: Option<Arc<ConnBytes>>) -> Self {
        HELD_TOTAL.fetch_add(bytes, Ordering::Relaxed);
        Self {
            bytes,
            _permits: permits,
            _conn: conn,
        }
    }

    /// The message length it counts.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        HELD_TOTAL.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// The budgets of a request's messages received in full and not yet taken
/// by its handler, oldest first (in the request's extensions).
#[derive(Debug, Clone, Default)]
pub struct Received(Arc<Mutex<VecDeque<Held>>>);

impl Received {
    /// The budget of the oldest message not yet taken: call once per
    /// message the handler receives.
    pub fn take(&self) -> Option<Held> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
    }

    fn push(&self, held: Held) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(held);
    }

    /// The budget of the request, if it was received through [`ReceiveBudgetLayer`].
    pub fn of<T>(req: &tonic::Request<T>) -> Self {
        req.extensions()
            .get::<Received>()
            .cloned()
            .unwrap_or_default()
    }
}

/// The budgets one stream takes from.
#[derive(Debug)]
struct StreamBudget {
    limits: ReceiveLimits,
    stream: Arc<Semaphore>,
    conn: Arc<ConnBytes>,
    total: Arc<Semaphore>,
    remote: Option<SocketAddr>,
}

impl StreamBudget {
    fn semaphore(&self, level: Level) -> (&Arc<Semaphore>, u64) {
        match level {
            Level::Stream => (&self.stream, self.limits.stream_bytes),
            Level::Connection => (&**self.conn, self.limits.connection_bytes),
            Level::Total => (&self.total, self.limits.total_bytes),
        }
    }

    /// What a message of `len` bytes takes at `level`: its length, or the
    /// whole budget when it is larger.
    fn amount(&self, level: Level, len: u64) -> u32 {
        let (_, cap) = self.semaphore(level);
        len.min(cap).min(u64::from(u32::MAX)) as u32
    }

    /// All three at once, or the first level that has not enough.
    fn try_take(&self, len: u64) -> Result<Held, Level> {
        let mut permits = Vec::with_capacity(3);
        for level in Level::ALL {
            let (sem, _) = self.semaphore(level);
            match Arc::clone(sem).try_acquire_many_owned(self.amount(level, len)) {
                Ok(p) => permits.push(p),
                Err(_) => return Err(level),
            }
        }
        Ok(Held::new(len, permits, Some(Arc::clone(&self.conn))))
    }

    /// Waits for the three in order (so two messages never wait for each
    /// other's share).
    async fn take(self: Arc<Self>, len: u64) -> Held {
        let mut permits = Vec::with_capacity(3);
        for level in Level::ALL {
            let (sem, _) = self.semaphore(level);
            // The semaphores are never closed.
            if let Ok(p) = Arc::clone(sem)
                .acquire_many_owned(self.amount(level, len))
                .await
            {
                permits.push(p);
            }
        }
        Held::new(len, permits, Some(Arc::clone(&self.conn)))
    }
}

/// What the next bytes of a request body are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A message header ended: the message is this long.
    Started(u64),
    /// The last byte of the message's body went by.
    Completed,
}

/// The gRPC length-prefixed framing of a request body, followed byte by
/// byte (pure: no I/O).
#[derive(Debug, Default, Clone)]
pub struct Framing {
    header: [u8; 5],
    have: usize,
    /// Body bytes of the current message not yet seen; `None` in a header.
    left: Option<u64>,
}

impl Framing {
    /// Reads `data` up to the next event: how many bytes it consumed, and
    /// the event they end with, if any. A zero-length message completes on
    /// the call after its `Started`, consuming nothing.
    pub fn advance(&mut self, data: &[u8]) -> (usize, Option<Event>) {
        if let Some(left) = self.left {
            let take = left.min(data.len() as u64);
            let left = left - take;
            if left == 0 {
                self.left = None;
                return (take as usize, Some(Event::Completed));
            }
            self.left = Some(left);
            return (take as usize, None);
        }
        let take = (5 - self.have).min(data.len());
        self.header[self.have..self.have + take].copy_from_slice(&data[..take]);
        self.have += take;
        if self.have < 5 {
            return (take, None);
        }
        self.have = 0;
        let len = u64::from(u32::from_be_bytes([
            self.header[1],
            self.header[2],
            self.header[3],
            self.header[4],
        ]));
        self.left = Some(len);
        (take, Some(Event::Started(len)))
    }

    /// Whether a message's body is being read.
    pub fn in_message(&self) -> bool {
        self.left.is_some()
    }
}

type HeldFuture = Pin<Box<dyn Future<Output = Held> + Send>>;

/// A request body that hands tonic no byte of a message before the
/// message's budget is held (see the module documentation).
pub struct BudgetBody {
    inner: Body,
    budget: Arc<StreamBudget>,
    received: Received,
    max_message: u64,
    framing: Framing,
    /// A data frame read from h2 and not yet handed on, and how far it has
    /// been accounted for.
    frame: Option<(Bytes, usize)>,
    /// The budget of the message being received.
    current: Option<Held>,
    taking: Option<(u64, HeldFuture)>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// How long a message of `len` bytes may take to arrive once its budget is
/// held.
pub fn receive_deadline(len: u64) -> Duration {
    MESSAGE_RECEIVE_TIMEOUT + Duration::from_secs(len / MESSAGE_RECEIVE_MIN_RATE)
}

impl BudgetBody {
    /// The budget of a message of `len` bytes is held.
    fn started(&mut self, held: Held) {
        let len = held.bytes();
        self.current = Some(held);
        self.deadline = Some(Box::pin(tokio::time::sleep(receive_deadline(len))));
    }

    fn completed(&mut self) {
        self.deadline = None;
        if let Some(held) = self.current.take() {
            self.received.push(held);
        }
    }

    /// A header announced `len` bytes: holds their budget, or starts
    /// waiting for it.
    fn announce(&mut self, len: u64) {
        if len > self.max_message {
            // tonic refuses it (RESOURCE_EXHAUSTED) without reading it.
            return;
        }
        match self.budget.try_take(len) {
            Ok(held) => self.started(held),
            Err(level) => {
                crate::metrics::receive_budget_wait(level.name());
                if let Some(skipped) = WAIT_LOG.allow() {
                    let (_, limit) = self.budget.semaphore(level);
                    warn!(remote = ?self.budget.remote, level = level.name(), limit, key = level.key(),
                          message_bytes = len, skipped,
                          "receive budget spent: not reading this stream until the client data held is answered");
                }
                let fut = Arc::clone(&self.budget).take(len);
                self.taking = Some((len, Box::pin(fut)));
            }
        }
    }

    /// Accounts for the current frame as far as it can; `true` when all of
    /// it has been.
    fn account(&mut self) -> bool {
        loop {
            let zero_length_pending = self.framing.left == Some(0);
            let Some((bytes, pos)) = &mut self.frame else {
                return true;
            };
            if *pos == bytes.len() && !zero_length_pending {
                return true;
            }
            let (n, event) = self.framing.advance(&bytes[*pos..]);
            *pos += n;
            match event {
                Some(Event::Started(len)) => {
                    self.announce(len);
                    if self.taking.is_some() {
                        return false;
                    }
                }
                Some(Event::Completed) => self.completed(),
                None => {}
            }
        }
    }

    fn timed_out(&mut self) -> tonic::Status {
        let len = self.current.as_ref().map_or(0, Held::bytes);
        crate::metrics::refused("receive_timeout");
        if let Some(skipped) = TIMEOUT_LOG.allow() {
            warn!(remote = ?self.budget.remote, message_bytes = len, skipped,
                  "ending a stream whose message did not arrive in time");
        }
        self.current = None;
        self.deadline = None;
        tonic::Status::resource_exhausted(format!(
            "a message of {len} bytes was not received within {:?}",
            receive_deadline(len)
        ))
    }
}

impl HttpBody for BudgetBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        loop {
            if let Some((_, fut)) = &mut this.taking {
                let held = std::task::ready!(fut.as_mut().poll(cx));
                this.taking = None;
                this.started(held);
            }
            if this.frame.is_some() {
                if !this.account() {
                    continue;
                }
                if let Some((bytes, _)) = this.frame.take() {
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(bytes) => this.frame = Some((bytes, 0)),
                    Err(other) => return Poll::Ready(Some(Ok(other))),
                },
                Poll::Pending => {
                    if let Some(d) = &mut this.deadline {
                        if d.as_mut().poll(cx).is_ready() {
                            return Poll::Ready(Some(Err(this.timed_out())));
                        }
                    }
                    return Poll::Pending;
                }
                other => return other,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frame.is_none() && self.inner.is_end_stream()
    }
}

/// The layer: one per server, holding the node's budget.
#[derive(Debug, Clone)]
pub struct ReceiveBudgetLayer {
    limits: ReceiveLimits,
    total: Arc<Semaphore>,
    max_message: u64,
}

impl ReceiveBudgetLayer {
    /// Budgets of `limits`; messages over `max_message`
    /// (`General.MaxRecvMsgSize`) are left to tonic to refuse.
    pub fn new(limits: ReceiveLimits, max_message: usize) -> Self {
        Self {
            limits,
            total: byte_semaphore(limits.total_bytes),
            max_message: max_message as u64,
        }
    }
}

impl<S> tower_layer::Layer<S> for ReceiveBudgetLayer {
    type Service = ReceiveBudget<S>;
    fn layer(&self, inner: S) -> ReceiveBudget<S> {
        ReceiveBudget {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`ReceiveBudgetLayer`] makes.
#[derive(Debug, Clone)]
pub struct ReceiveBudget<S> {
    inner: S,
    layer: ReceiveBudgetLayer,
}

impl<S> Service<http::Request<Body>> for ReceiveBudget<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        if !BUDGETED_PATHS.contains(&req.uri().path()) {
            return self.inner.call(req);
        }
        let layer = &self.layer;
        let remote = super::streams::remote_addr(&req);
        let budget = Arc::new(StreamBudget {
            limits: layer.limits,
            stream: byte_semaphore(layer.limits.stream_bytes),
            conn: conn_bytes(remote, layer.limits.connection_bytes),
            total: Arc::clone(&layer.total),
            remote,
        });
        let received = Received::default();
        let (mut parts, inner) = req.into_parts();
        parts.extensions.insert(received.clone());
        let body = BudgetBody {
            inner,
            budget,
            received,
            max_message: layer.max_message,
            framing: Framing::default(),
            frame: None,
            current: None,
            taking: None,
            deadline: None,
        };
        self.inner
            .call(http::Request::from_parts(parts, Body::new(body)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn framed(msgs: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in msgs {
            out.push(0);
            out.extend_from_slice(&(m.len() as u32).to_be_bytes());
            out.extend_from_slice(m);
        }
        out
    }

    /// The events of `data` fed in chunks of the given sizes (cycled).
    fn events(data: &[u8], chunks: &[usize]) -> Vec<Event> {
        let mut f = Framing::default();
        let mut out = Vec::new();
        let mut rest = data;
        for &size in chunks.iter().cycle() {
            let (mut chunk, next) = rest.split_at(size.clamp(1, rest.len().max(1)).min(rest.len()));
            rest = next;
            while !chunk.is_empty() || f.left == Some(0) {
                let (used, ev) = f.advance(chunk);
                chunk = &chunk[used..];
                out.extend(ev);
            }
            if rest.is_empty() {
                break;
            }
        }
        out
    }

    #[test]
    fn framing_reports_each_message_once() {
        let data = framed(&[b"abc".to_vec(), vec![], vec![7; 10]]);
        assert_eq!(
            events(&data, &[data.len()]),
            vec![
                Event::Started(3),
                Event::Completed,
                Event::Started(0),
                Event::Completed,
                Event::Started(10),
                Event::Completed
            ]
        );
    }

    proptest! {
        #[test]
        fn framing_does_not_depend_on_how_bytes_are_split(
            lens in proptest::collection::vec(0usize..300, 0..8),
            chunks in proptest::collection::vec(1usize..64, 1..8),
        ) {
            let msgs: Vec<Vec<u8>> = lens.iter().map(|&n| vec![0xAB; n]).collect();
            let data = framed(&msgs);
            let expected: Vec<Event> = lens
                .iter()
                .flat_map(|&n| [Event::Started(n as u64), Event::Completed])
                .collect();
            prop_assert_eq!(events(&data, &chunks), expected);
        }
    }

    fn budget(limits: ReceiveLimits) -> Arc<StreamBudget> {
        Arc::new(StreamBudget {
            limits,
            stream: byte_semaphore(limits.stream_bytes),
            conn: conn_bytes(None, limits.connection_bytes),
            total: byte_semaphore(limits.total_bytes),
            remote: None,
        })
    }

    #[tokio::test]
    async fn a_message_larger_than_a_budget_takes_all_of_it() {
        let b = budget(ReceiveLimits {
            stream_bytes: 100,
            connection_bytes: 1000,
            total_bytes: 1000,
        });
        let big = b.try_take(5000).expect("the whole budget is free");
        assert_eq!(b.try_take(1).unwrap_err(), Level::Stream);
        drop(big);
        let a = b.try_take(60).unwrap();
        assert_eq!(b.try_take(50).unwrap_err(), Level::Stream);
        let waiting = tokio::spawn(Arc::clone(&b).take(50));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        drop(a);
        let held = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("given back")
            .unwrap();
        assert_eq!(held.bytes(), 50);
    }

    #[tokio::test]
    async fn streams_share_the_connection_and_total_budgets() {
        let limits = ReceiveLimits {
            stream_bytes: 100,
            connection_bytes: 150,
            total_bytes: 1000,
        };
        let total = byte_semaphore(limits.total_bytes);
        let conn = conn_bytes(None, limits.connection_bytes);
        let stream = |total: &Arc<Semaphore>| StreamBudget {
            limits,
            stream: byte_semaphore(limits.stream_bytes),
            conn: Arc::clone(&conn),
            total: Arc::clone(total),
            remote: None,
        };
        let (s1, s2) = (stream(&total), stream(&total));
        let _a = s1.try_take(100).unwrap();
        assert_eq!(s2.try_take(60).unwrap_err(), Level::Connection);
        let _b = s2.try_take(50).unwrap();
        assert_eq!(total.available_permits(), 850);
    }
}
