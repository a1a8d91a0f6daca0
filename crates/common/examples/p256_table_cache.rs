//! The table path's verification cost when its lookups miss the cache, as
//! they do under load: DISTINCT signatures (each touches other table entries)
//! verified in turn, optionally while a second thread streams through a
//! buffer of THRASH_MIB MiB (evicting the shared caches).
//!
//!   cargo run --release -p fabric-common --example p256_table_cache -- [SIGS=512] [ROUNDS=20] [THRASH_MIB=0]
//!
//! Prints one JSON line with the median thread-CPU µs per verification of 5
//! passes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use fabric_common::crypto::to_low_s;
use fabric_common::p256_tables::KeyTable;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

fn thread_cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    stat.split_whitespace()
        .next()
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns / 1e9)
}

/// Writes through `mib` MiB, one byte per cache line, until `stop`.
fn thrash(mib: usize, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; mib << 20];
        let mut sum = 0u64;
        while !stop.load(Ordering::Relaxed) {
            for i in (0..buf.len()).step_by(64) {
                buf[i] = buf[i].wrapping_add(1);
                sum = sum.wrapping_add(u64::from(buf[i]));
            }
        }
        sum
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let sigs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(512);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let thrash_mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let table = KeyTable::new(key.public_key().as_ref()).expect("a valid key");
    let signed: Vec<(Vec<u8>, Vec<u8>)> = (0..sigs)
        .map(|i| {
            let msg = format!("message {i:08} {}", "x".repeat(1000)).into_bytes();
            let sig = to_low_s(key.sign(&rng, &msg).unwrap().as_ref()).unwrap();
            (msg, sig)
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let thrasher = (thrash_mib > 0).then(|| thrash(thrash_mib, stop.clone()));
    let mut per = Vec::new();
    for _ in 0..5 {
        let c0 = thread_cpu_s();
        for _ in 0..rounds {
            for (msg, sig) in &signed {
                assert_eq!(table.verify(std::hint::black_box(msg), sig), Some(true));
            }
        }
        per.push((thread_cpu_s() - c0) * 1e6 / (rounds * sigs) as f64);
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(t) = thrasher {
        std::hint::black_box(t.join().unwrap());
    }
    per.sort_by(f64::total_cmp);
    println!(
        "{{\"signatures\":{sigs},\"rounds\":{rounds},\"thrash_mib\":{thrash_mib},\"table_verify_cpu_us\":{:.2},\"min\":{:.2},\"max\":{:.2}}}",
        per[2], per[0], per[4]
    );
}
