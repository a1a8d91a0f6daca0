#!/usr/bin/env bash
# Fault injection under load on the real Kafka cluster (not a test; see README "Reliability under faults").
#
#   scripts/faults.sh ROUNDS [--seed N] [--osns 3] [--kinds broker-kill,broker-pause,zk-kill,osn-kill,kafka-down] ...
#   (also osn-past-retention: an OSN stopped while the partition is pruned past it, issue #15)
#
# Uses the cluster of scripts/kafka/kafka.sh named by the KAFKA_* environment (starts one if none answers,
# and takes it down at the end), builds the release binaries unless FAULTS_BIN_DIR names others, runs
# ROUNDS rounds and prints, per round and in total: transactions acknowledged, lost, duplicated, divergent
# blocks, OSN deaths. Exits 1 on any violation. The channel has the exactly-once window on (orderer
# capability RS_EXACTLY_ONCE); --no-exactly-once runs it as Fabric's, where a tx ID may be in the chain
# twice only if its client re-sent it. scripts/faults/faults.py --help lists every option.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n '2,12p' "$0"; exit 2; }
if [ -z "${FAULTS_BIN_DIR:-}" ]; then
    cargo build --release -q --bin orderer --bin orderer-client --bin configtxgen
    FAULTS_BIN_DIR="${CARGO_TARGET_DIR:-target}/release"
fi
exec python3 scripts/faults/faults.py --bin-dir "$FAULTS_BIN_DIR" "$@"
