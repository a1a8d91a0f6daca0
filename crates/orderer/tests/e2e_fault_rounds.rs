//! A short run of the fault-injection command (`scripts/faults/faults.py`,
//! the long form is `scripts/faults.sh ROUNDS`) against the test cluster:
//! three OSNs (the real `orderer` binary) under load from the re-sending
//! load generator, one fault per round (a broker killed, a broker frozen,
//! an OSN killed), and after every round the independent checker
//! (`scripts/faults/check_chains.py`: its own protobuf decoding, DER header
//! hashing and hash chain) over every OSN's chain and every ack log. Fails on
//! any lost, duplicated or divergent transaction or block, or an OSN that
//! died without being killed. Three rounds on a channel with the exactly-once
//! window on (no tx ID twice), then two on a channel as Fabric's (window off:
//! a tx ID twice only where its client re-sent it, byte-identical), then one
//! where an OSN is stopped while the partition is pruned past its position.
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

/// Runs `faults.py ROUNDS` with `extra` options; returns its summary line.
fn fault_rounds(rounds: u32, kinds: &str, extra: &[&str]) -> String {
    let bin_dir = bin("orderer").parent().unwrap().to_path_buf();
    let out = Command::new("python3")
        .arg(repo().join("scripts/faults/faults.py"))
        .arg(rounds.to_string())
        .args(["--seed", "7"])
        .args(["--kinds", kinds])
        .args(["--pause-min", "8", "--pause-max", "10"])
        .args(["--pre", "2", "--post", "3", "--rate", "100"])
        .arg("--bin-dir")
        .arg(&bin_dir)
        .args(extra)
        .output()
        .expect("running python3 scripts/faults/faults.py (python3 is required)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "fault rounds failed:\n{stdout}");
    let last = stdout.lines().last().unwrap_or_default().to_string();
    assert!(
        last.contains(&format!("rounds {rounds},"))
            && last.contains("lost 0,")
            && last.contains("duplicated 0,")
            && last.contains("divergent blocks 0,"),
        "{last}"
    );
    // Load actually flowed: the summary names a non-zero acknowledged count.
    let acked: u64 = last
        .split("acknowledged ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        acked > 100 * u64::from(rounds),
        "too little load acknowledged: {last}"
    );
    last
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
    bin("orderer-client");
    bin("configtxgen");
    // The channel with the exactly-once window on: no tx ID twice.
    let on = fault_rounds(3, "broker-kill,broker-pause,osn-kill", &[]);
    assert!(on.contains("exactly-once on,"), "{on}");
    // As Fabric's (window off): a tx ID twice only where a client re-sent it.
    let off = fault_rounds(2, "osn-kill,broker-kill", &["--no-exactly-once"]);
    assert!(off.contains("exactly-once off,"), "{off}");
    // An OSN stopped while the partition is pruned past its position
    // (issue #15): it catches up from another OSN.
    let pruned = fault_rounds(1, "osn-past-retention", &[]);
    assert!(pruned.contains("rounds 1,"), "{pruned}");
}
