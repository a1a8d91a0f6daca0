//! Append + fsync throughput of the ledger, one block per `append`.
//!
//! ```text
//! cargo run --release -p fabric-ledger --example append_bench -- [blocks] [envelopes] [envelope_bytes] [dir]
//! ```
//!
//! Defaults: 2000 blocks of 10 envelopes of 1000 bytes each, in a fresh
//! temporary directory under `dir` (default: the system temp dir). Prints
//! blocks per second and microseconds per block. Only the public API is
//! used, so the same file measures any version of the crate.

use std::time::Instant;

use fabric_common::block::{header_hash, new_block};
use fabric_ledger::{Ledger, LedgerConfig};

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .map(|s| s.parse().expect("a number"))
        .unwrap_or(default)
}

fn main() {
    let blocks = arg(1, 2000) as u64;
    let envelopes = arg(2, 10);
    let envelope_len = arg(3, 1000);
    let base = std::env::args()
        .nth(4)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let root = tempfile::tempdir_in(base).expect("temp dir");
    let mut ledger =
        Ledger::open_with_config(root.path(), "bench", LedgerConfig::DEFAULT).expect("open");

    // Build every block first so that only append + fsync is timed.
    let mut previous = Vec::new();
    let chain: Vec<_> = (0..blocks)
        .map(|number| {
            let data = (0..envelopes)
                .map(|i| vec![(number as usize + i) as u8; envelope_len])
                .collect();
            let block = new_block(number, std::mem::take(&mut previous), data);
            previous = header_hash(block.header.as_ref().expect("header"));
            block
        })
        .collect();

    let start = Instant::now();
    for block in &chain {
        ledger.append(block).expect("append");
    }
    let elapsed = start.elapsed();
    let per_block_us = elapsed.as_secs_f64() * 1e6 / blocks as f64;
    println!(
        "{blocks} blocks x {envelopes} envelopes x {envelope_len} B: {:.3} s, {:.0} blocks/s, {per_block_us:.1} us/block",
        elapsed.as_secs_f64(),
        blocks as f64 / elapsed.as_secs_f64(),
    );
}
