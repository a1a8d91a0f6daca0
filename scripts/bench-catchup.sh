#!/usr/bin/env bash
# Benchmark (not a test): catch-up speed of a new OSN, pulling verified blocks from another OSN
# (Kafka.CatchUp) against replaying the channel's Kafka partition (issue #15).
#
#   scripts/bench-catchup.sh [--tx 20000] [--size 1024] [--batch 100] [--streams 4] [--json]
#
# Uses the cluster of scripts/kafka/kafka.sh named by the KAFKA_* environment (it must be running),
# builds the release binaries unless BENCH_BIN_DIR names others. scripts/bench-catchup.py --help.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BENCH_BIN_DIR:-}" ]; then
    cargo build --release -q --bin orderer --bin orderer-client --bin configtxgen
    BENCH_BIN_DIR="${CARGO_TARGET_DIR:-target}/release"
fi
scripts/kafka/kafka.sh wait --timeout 10 >/dev/null || { echo "no Kafka cluster answers (scripts/kafka/kafka.sh start --wait)" >&2; exit 2; }
exec python3 scripts/bench-catchup.py --bin-dir "$BENCH_BIN_DIR" "$@"
