//! What the exactly-once window costs (`crates/orderer/src/dedupe.rs`):
//! heap bytes per remembered tx ID, and time per envelope of
//! `TxWindow::admit` on a full window (decode the channel header, look the
//! ID up, remember it, forget the oldest), plus rebuilding the window from
//! blocks at start-up.
//!
//!   cargo run --release -p orderer --example dedupe_cost [WINDOW=100000]
//!
//! Envelopes are shaped like the load generator's signed ones: a 64-hex tx
//! ID, an ~800-byte creator (an X.509 certificate in PEM), a 24-byte nonce, a
//! 100-byte payload and a 72-byte signature.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use fabric_protos::common::{
    Block, BlockData, ChannelHeader, Envelope, Header, Payload, SignatureHeader,
};
use orderer::dedupe::{TxWindow, WINDOW_TXIDS};
use prost::Message;
use sha2::{Digest, Sha256};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static A: Counting = Counting;

/// CPU seconds used by this process (user + system), from /proc/self/stat:
/// robust to other processes competing for the cores, unlike wall time.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|u| u.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    ticks / 100.0 // USER_HZ
}

/// Wall and CPU seconds of `f`.
fn timed(f: impl FnOnce()) -> (f64, f64) {
    let (w, c) = (Instant::now(), cpu_seconds());
    f();
    (w.elapsed().as_secs_f64(), cpu_seconds() - c)
}

fn envelope(i: u64) -> Vec<u8> {
    let nonce = Sha256::digest(i.to_be_bytes())[..24].to_vec();
    let creator = vec![b'C'; 800];
    let tx_id = hex::encode(Sha256::digest([nonce.as_slice(), &creator].concat()));
    let ch = ChannelHeader {
        r#type: 0,
        channel_id: "faults-channel".into(),
        tx_id,
        ..Default::default()
    };
    let sh = SignatureHeader { creator, nonce };
    let payload = Payload {
        header: Some(Header {
            channel_header: ch.encode_to_vec(),
            signature_header: sh.encode_to_vec(),
        }),
        data: vec![7; 100],
    };
    Envelope {
        payload: payload.encode_to_vec(),
        signature: vec![9; 72],
    }
    .encode_to_vec()
}

fn main() {
    let window: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("WINDOW is a number"))
        .unwrap_or(WINDOW_TXIDS);
    let n = window as u64;
    println!(
        "window: {window} tx IDs; envelope: {} bytes",
        envelope(0).len()
    );

    // Memory: live heap of a full window.
    let envs: Vec<Vec<u8>> = (0..n).map(envelope).collect();
    let before = LIVE.load(Ordering::Relaxed);
    let mut w = TxWindow::new(window);
    for e in &envs {
        assert!(w.admit(e));
    }
    let full = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "memory: {:.1} MB for {} IDs = {:.0} bytes per remembered tx ID",
        full as f64 / 1e6,
        w.len(),
        full as f64 / w.len() as f64
    );

    // Time per envelope on a full window: new IDs (each evicts the oldest),
    // then duplicates (re-sent envelopes still in the window), then the
    // channel-header decode alone.
    let fresh: Vec<Vec<u8>> = (n..2 * n).map(envelope).collect();
    let per = |(w, c): (f64, f64)| (w / n as f64 * 1e6, c / n as f64 * 1e6);
    let new = per(timed(|| {
        for e in &fresh {
            assert!(w.admit(e));
        }
    }));
    let dup = per(timed(|| {
        for e in &fresh {
            assert!(!w.admit(e));
        }
    }));
    let mut k = 0usize;
    let dec = per(timed(|| {
        for e in &fresh {
            k += orderer::dedupe::txid_of(e).map_or(0, |s| s.len());
        }
    }));
    assert!(k > 0);
    println!("admit on a full window, µs per envelope (CPU time; wall time in brackets):");
    println!("  new tx ID:              {:.2} ({:.2})", new.1, new.0);
    println!("  duplicate (dropped):    {:.2} ({:.2})", dup.1, dup.0);
    println!("  channel-header decode:  {:.2} ({:.2})", dec.1, dec.0);

    // Start-up: rebuild the window from blocks of 500 envelopes, newest first.
    let blocks: Vec<Block> = fresh
        .chunks(500)
        .map(|c| Block {
            data: Some(BlockData { data: c.to_vec() }),
            ..Default::default()
        })
        .collect();
    let mut seeded = TxWindow::new(0);
    let (wall, cpu) = timed(|| seeded = TxWindow::seed(window, blocks.into_iter().rev()));
    println!(
        "rebuild at start-up from {} envelopes in memory: {:.0} ms CPU ({:.0} ms wall; reading \
         the blocks from the ledger not included)",
        seeded.len(),
        cpu * 1e3,
        wall * 1e3
    );
}
