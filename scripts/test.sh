#!/usr/bin/env bash
# The project's test command: unit tests beside the code, end-to-end tests
# that start the real `orderer` binary on free ports, and the Kafka tests,
# which run against a real Kafka cluster (3 ZooKeeper + 4 brokers on
# 127.0.0.1) that this script fetches from Maven Central and starts.
# Set KAFKA_BROKERS to use a cluster that is already running.
set -euo pipefail
cd "$(dirname "$0")/.."

STARTED_KAFKA=
cleanup() {
    if [ -n "$STARTED_KAFKA" ]; then
        scripts/kafka/kafka.sh down >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

if [ -z "${KAFKA_BROKERS:-}" ]; then
    scripts/kafka/kafka.sh fetch
    if ! scripts/kafka/kafka.sh wait --timeout 5 >/dev/null 2>&1; then
        scripts/kafka/kafka.sh down >/dev/null 2>&1 || true
        STARTED_KAFKA=1
        scripts/kafka/kafka.sh start --wait
    fi
    KAFKA_BROKERS=$(scripts/kafka/kafka.sh brokers)
    export KAFKA_BROKERS
fi
echo "Kafka: $KAFKA_BROKERS"

cargo build --workspace --bins
cargo test --workspace --no-fail-fast "$@"
