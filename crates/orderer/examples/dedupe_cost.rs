//! What the exactly-once window costs when a channel's config switches it
//! on (`crates/orderer/src/dedupe.rs`): heap bytes per remembered envelope,
//! and time per envelope of `EnvelopeWindow::admit` on a full window (one
//! SHA-256 of the envelope bytes, look the digest up, remember it, forget
//! the oldest), plus rebuilding the window from blocks at start-up. Off (the
//! default) it costs nothing.
//!
//!   cargo run --release -p orderer --example dedupe_cost [WINDOW=100000]
//!
//! Envelopes are shaped like the load generator's signed ones: a 64-hex tx
//! ID, an ~800-byte creator (an X.509 certificate in PEM), a 24-byte nonce, a
//! 100-byte payload and a 72-byte signature.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use fabric_protos::common::{Block, ChannelHeader, Envelope, Header, Payload, SignatureHeader};
use orderer::dedupe::{EnvelopeWindow, WindowLimits};
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
        .unwrap_or(WindowLimits::DEFAULT.entries);
    let limits = WindowLimits { entries: window };
    let n = window as u64;
    println!(
        "window: {window} envelopes; envelope: {} bytes",
        envelope(0).len()
    );

    // Memory: live heap of a full window.
    let envs: Vec<Vec<u8>> = (0..n).map(envelope).collect();
    let before = LIVE.load(Ordering::Relaxed);
    let mut w = EnvelopeWindow::off(limits);
    w.set_on(true);
    for e in &envs {
        assert!(w.admit(e));
    }
    let full = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "memory: {:.1} MB for {} envelopes = {:.0} bytes per remembered envelope \
         (bound: {:.1} MB)",
        full as f64 / 1e6,
        w.len(),
        full as f64 / w.len() as f64,
        limits.max_heap_bytes() as f64 / 1e6
    );

    // Time per envelope on a full window: new envelopes (each evicts the
    // oldest), then duplicates (re-sent envelopes still in the window), then
    // the SHA-256 alone.
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
            k += orderer::dedupe::digest(e)[0] as usize + 1;
        }
    }));
    assert!(k > 0);
    println!("admit on a full window, µs per envelope (CPU time; wall time in brackets):");
    println!("  new envelope:           {:.2} ({:.2})", new.1, new.0);
    println!("  duplicate (dropped):    {:.2} ({:.2})", dup.1, dup.0);
    println!("  SHA-256 alone:          {:.2} ({:.2})", dec.1, dec.0);

    // Start-up: rebuild the window from blocks of 500 envelopes, newest first.
    let blocks: Vec<Block> = fresh
        .chunks(500)
        .map(|c| {
            // LAST_CONFIG 0 (the seed asks whether that config is on: yes).
            let mut b = fabric_common::block::new_block(0, vec![], c.to_vec());
            if let Some(md) = b.metadata.as_mut() {
                md.metadata[fabric_common::block::LAST_CONFIG] = fabric_protos::common::Metadata {
                    value: fabric_protos::common::LastConfig { index: 0 }.encode_to_vec(),
                    signatures: vec![],
                }
                .encode_to_vec();
            }
            b
        })
        .collect();
    let mut seeded = EnvelopeWindow::off(limits);
    let (wall, cpu) =
        timed(|| seeded = EnvelopeWindow::seed(limits, true, blocks.into_iter().rev(), |_| true));
    println!(
        "rebuild at start-up from {} envelopes in memory: {:.0} ms CPU ({:.0} ms wall; reading \
         the blocks from the ledger not included)",
        seeded.len(),
        cpu * 1e3,
        wall * 1e3
    );
}
