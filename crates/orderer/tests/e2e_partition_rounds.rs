//! A short run of the network-partition and clock fault kinds of
//! `scripts/faults/faults.py --netns` (the long form is
//! `scripts/faults.sh ROUNDS --netns rsf --kinds ...`): every ZooKeeper node,
//! broker, OSN and client in its own network namespace (scripts/netfault),
//! links cut with nftables inside the test's own hub namespace, and one OSN's
//! wall clock stepped by minutes. Each kind runs once; after every round the
//! independent checker must find nothing lost, duplicated or divergent, and
//! every OSN must have caught up after the heal.
//!
//! The cluster is its own (started and removed by faults.py in
//! /tmp/fabric-kafka-rsfci), so the shared test cluster is never cut.
//! Needs root, iproute2, nftables and a C compiler: it fails, never skips,
//! when one is missing.

mod support;

use std::process::Command;

use support::faults::{repo, FaultRun};

const NET_KINDS: &str =
    "leader-isolated,osn-leader-cut,osn-brokers-cut,brokers-split,link-flap,clock-step";

#[test]
fn partition_and_clock_rounds_lose_and_duplicate_nothing() {
    for tool in ["ip", "nft", "cc"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            found,
            "{tool} is required (Debian: iproute2, nftables, gcc)"
        );
    }
    // The partition tool's own tests on real namespaces (~20 s).
    let t = Command::new("python3")
        .arg(repo().join("scripts/netfault/test_netfault.py"))
        .output()
        .expect("running python3 (required)");
    assert!(
        t.status.success(),
        "netfault tests failed: {}",
        String::from_utf8_lossy(&t.stderr)
    );
    let out = FaultRun {
        rounds: 6,
        kinds: NET_KINDS,
        extra: &["--netns", "rsfci", "--schedule", "cycle"],
    }
    .run();
    for kind in NET_KINDS.split(',') {
        let line = out
            .lines()
            .find(|l| l.contains(&format!("] {kind:<16} worst catch-up")))
            .unwrap_or_else(|| panic!("no summary for {kind}:\n{out}"));
        assert!(!line.contains("never"), "an OSN never caught up: {line}");
    }
}
