//! The cost of ONE ECDSA P-256 verification (ring, SHA-256 of the message
//! included, through `fabric_common::crypto::verify_p256` as the orderer
//! calls it), on one thread: the yardstick `scripts/bench-compare.sh`
//! divides the orderer's CPU per transaction by.
//!
//!   cargo run --release -p fabric-common --example p256_verify -- [SIZE=1024] [N=4000]
//!
//! Prints one JSON line: message size, verifications, thread CPU µs and wall
//! µs per verification (the median of 5 rounds).

use std::time::Instant;

use fabric_common::crypto::{to_low_s, verify_p256_ring};
use fabric_common::p256_tables::KeyTable;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

/// CPU seconds used so far by the calling thread (Linux `/proc/thread-self/stat`).
fn thread_cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    // schedstat: "<ns on cpu> <ns waiting> <timeslices>"
    stat.split_whitespace()
        .next()
        .and_then(|v| v.parse::<f64>().ok())
        .map(|ns| ns / 1e9)
        .unwrap_or(f64::NAN)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1024);
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(4000);
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let msg = vec![0x5a_u8; size];
    let sig = to_low_s(key.sign(&rng, &msg).unwrap().as_ref()).unwrap();
    let pk = key.public_key().as_ref().to_vec();
    verify_p256_ring(&pk, &msg, &sig).expect("the signature verifies");

    let mut cpu = Vec::new();
    let mut wall = Vec::new();
    for _ in 0..5 {
        let (c0, w0) = (thread_cpu_s(), Instant::now());
        for _ in 0..n {
            verify_p256_ring(&pk, std::hint::black_box(&msg), &sig).unwrap();
        }
        cpu.push((thread_cpu_s() - c0) * 1e6 / f64::from(n));
        wall.push(w0.elapsed().as_secs_f64() * 1e6 / f64::from(n));
    }
    cpu.sort_by(f64::total_cmp);
    wall.sort_by(f64::total_cmp);
    // The same with this key's precomputed table (what a hot key costs).
    let c0 = thread_cpu_s();
    let table = KeyTable::new(&pk).expect("a valid key");
    let build_ms = (thread_cpu_s() - c0) * 1e3;
    let mut tcpu = Vec::new();
    for _ in 0..5 {
        let c0 = thread_cpu_s();
        for _ in 0..4 * n {
            assert_eq!(table.verify(std::hint::black_box(&msg), &sig), Some(true));
        }
        tcpu.push((thread_cpu_s() - c0) * 1e6 / f64::from(4 * n));
    }
    tcpu.sort_by(f64::total_cmp);
    if std::env::var_os("P256_OPS").is_some() {
        let [mul, sq, madd, inv] = fabric_common::p256_tables::op_costs_ns(200_000);
        eprintln!("field mul {mul:.1} ns, square {sq:.1} ns, mixed add {madd:.1} ns, scalar inverse {inv:.0} ns");
    }
    println!(
        "{{\"size\":{size},\"verifications\":{},\"verify_cpu_us\":{:.2},\"verify_wall_us\":{:.2},\"table_verify_cpu_us\":{:.2},\"table_build_ms\":{:.2}}}",
        n * 5,
        cpu[2],
        wall[2],
        tcpu[2],
        build_ms
    );
}
