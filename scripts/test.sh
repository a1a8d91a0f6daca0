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
    # the same cluster's SSL and SASL_SSL listeners and their test CA (e2e_ops_security)
    if [ -z "${KAFKA_TLS_DIR:-}" ] && KAFKA_TLS_DIR=$(scripts/kafka/kafka.sh tls-dir 2>/dev/null); then
        KAFKA_SSL_BROKERS=$(scripts/kafka/kafka.sh brokers --ssl)
        KAFKA_SASL_SSL_BROKERS=$(scripts/kafka/kafka.sh brokers --sasl-ssl)
        export KAFKA_TLS_DIR KAFKA_SSL_BROKERS KAFKA_SASL_SSL_BROKERS
    fi
fi
echo "Kafka: $KAFKA_BROKERS"

cargo build --workspace --bins
cargo test --workspace --no-fail-fast "$@"

# Interop with Fabric's own tools (interop/ci.sh): Fabric v1.4.12 installed from the Go module proxy
# into ~/.cache (about 3.5 min the first time), then interop/run.sh, mixed.sh, ledger-migration.sh and
# chaincode.sh (a v1.4.12 peer commits endorsed transactions through ours) against the debug binaries
# built above, on the Kafka cluster above. It fails, never skips, when the tools cannot
# be installed. INTEROP=0 leaves it out (local runs only).
if [ "${INTEROP:-1}" != 0 ]; then
    interop/ci.sh
fi
