//! Cost of deserializing + validating a creator, cold (no cache) versus
//! through the identity cache, on a DevOrg identity.
//!
//! `cargo run --release -p fabric-msp --example identity_cache`

use std::time::Instant;

use fabric_common::devcrypto::{DevOrg, NodeOu};
use fabric_common::msp::LocalSigner;
use fabric_msp::{Msp, MspManager};

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let org = DevOrg::create(&dir.path().join("org1"), "Org1MSP", "org1.example.com").unwrap();
    let signer =
        LocalSigner::load(&org.issue("User1@org1", NodeOu::Client).unwrap(), "Org1MSP").unwrap();
    let conf =
        fabric_configtx::msp::verifying_msp_config(&org.msp_dir(), "Org1MSP", "bccsp").unwrap();
    let mgr = MspManager::new([Msp::from_config(&conf).unwrap()]);
    let creator = signer.creator().to_vec();

    let n = 2_000;
    let t = Instant::now();
    for _ in 0..n {
        let id = mgr.deserialize_identity_uncached(&creator).unwrap();
        mgr.validate(&id).unwrap();
    }
    let cold = t.elapsed() / n;

    mgr.deserialize_and_validate(&creator).unwrap();
    let m = 200_000;
    let t = Instant::now();
    for _ in 0..m {
        std::hint::black_box(mgr.deserialize_and_validate(&creator).unwrap());
    }
    let cached = t.elapsed() / m;

    let msg = vec![7u8; 1024];
    let sig = signer.sign(&msg);
    let id = mgr.deserialize_and_validate(&creator).unwrap();
    let k = 2_000;
    let t = Instant::now();
    for _ in 0..k {
        id.verify(&msg, &sig).unwrap();
    }
    let verify = t.elapsed() / k;

    println!("creator bytes: {}", creator.len());
    println!("deserialize+validate, cold:   {cold:?} per identity ({n} runs)");
    println!("deserialize+validate, cached: {cached:?} per identity ({m} runs)");
    println!("signature verify (1 KiB msg): {verify:?}");
    println!(
        "speed-up: {:.0}x; cache {:?}",
        cold.as_secs_f64() / cached.as_secs_f64(),
        mgr.cache_stats()
    );
}
