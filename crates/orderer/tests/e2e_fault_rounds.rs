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

use std::process::Command;

use support::faults::{repo, FaultRun};

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

/// The summary (last) line of a run.
fn summary(out: &str) -> &str {
    out.lines().last().unwrap_or_default()
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
    // The channel with the exactly-once window on: no tx ID twice.
    let on = FaultRun {
        rounds: 3,
        kinds: "broker-kill,broker-pause,osn-kill",
        extra: &[],
    }
    .run();
    assert!(summary(&on).contains("exactly-once on,"), "{on}");
    // As Fabric's (window off): a tx ID twice only where a client re-sent it.
    let off = FaultRun {
        rounds: 2,
        kinds: "osn-kill,broker-kill",
        extra: &["--no-exactly-once"],
    }
    .run();
    assert!(summary(&off).contains("exactly-once off,"), "{off}");
    // An OSN stopped while the partition is pruned past its position
    // (issue #15): it catches up from another OSN.
    let pruned = FaultRun {
        rounds: 1,
        kinds: "osn-past-retention",
        extra: &[],
    }
    .run();
    assert!(summary(&pruned).contains("rounds 1,"), "{pruned}");
}
