//! A short run of the fault-injection command (`scripts/faults/faults.py`,
//! the long form is `scripts/faults.sh ROUNDS`) against the test cluster:
//! three OSNs (the real `orderer` binary) under load from the re-sending
//! load generator, one fault per round (a broker killed, a broker frozen,
//! an OSN killed), and after every round the independent checker
//! (`scripts/faults/check_chains.py`: its own protobuf decoding, DER header
//! hashing and hash chain) over every OSN's chain and every ack log. Fails on
//! any lost, duplicated or divergent transaction or block, or an OSN that
//! died without being killed.
//!
//! This is the only test in its binary (cargo runs test binaries one after
//! another), so stopping brokers cannot disturb other Kafka tests; the script
//! restarts every node it stopped before each check, and a guard restarts
//! the cluster if the test ends early.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::bin;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Resumes paused brokers and restarts stopped nodes when the test ends,
/// also by panic.
struct RestoreOnDrop;

impl Drop for RestoreOnDrop {
    fn drop(&mut self) {
        let script = repo().join("scripts/kafka/kafka.sh");
        for b in 1..=4 {
            let _ = Command::new(&script)
                .args(["resume-broker", &b.to_string()])
                .output();
        }
        let _ = Command::new(&script).args(["start", "--wait"]).output();
    }
}

#[test]
fn three_fault_rounds_lose_and_duplicate_nothing() {
    // Kafka is required (never skipped).
    let brokers = support::kafka::brokers();
    assert!(!brokers.is_empty());
    // The checker must catch what it claims to (its own tests, ~3 s).
    let t = Command::new("python3")
        .arg(repo().join("scripts/faults/test_check_chains.py"))
        .output()
        .expect("running python3 (required)");
    assert!(
        t.status.success(),
        "checker tests failed: {}",
        String::from_utf8_lossy(&t.stderr)
    );
    let _restore = RestoreOnDrop;
    let bin_dir = bin("orderer").parent().unwrap().to_path_buf();
    bin("orderer-client");
    bin("configtxgen");
    let out = Command::new("python3")
        .arg(repo().join("scripts/faults/faults.py"))
        .arg("3")
        .args(["--seed", "7"])
        .args(["--kinds", "broker-kill,broker-pause,osn-kill"])
        .args(["--pause-min", "8", "--pause-max", "10"])
        .args(["--pre", "2", "--post", "3", "--rate", "100"])
        .arg("--bin-dir")
        .arg(&bin_dir)
        .output()
        .expect("running python3 scripts/faults/faults.py (python3 is required)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "fault rounds failed:\n{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.contains("rounds 3,") && last.contains("lost 0,") && last.contains("duplicated 0,"),
        "{last}"
    );
    // Load actually flowed: the summary names a non-zero acknowledged count.
    let acked: u64 = last
        .split("acknowledged ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    assert!(acked > 300, "too little load acknowledged: {last}");
}
