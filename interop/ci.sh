#!/usr/bin/env bash
# The interop checks CI runs (called by scripts/test.sh after the cargo tests, while its Kafka cluster is
# up): Fabric v1.4.12's own tools, installed from the Go module proxy into ~/.cache (interop/fabric-tools.sh,
# about 3.5 min the first time, 0.04 s once cached), against our debug binaries:
#   interop/run.sh    peer CLI, configtxgen/configtxlator, broadcast_msg/deliver_stdout, a real
#                     `peer node start`, and Fabric's v1.4.12 orderer as reference (solo)
#   interop/mixed.sh  Fabric's v1.4.12 Kafka orderer and ours as OSNs of one ordering service
#   interop/ledger-migration.sh  Fabric's v1.4.12 orderer and ours take turns on one ledger folder
#   interop/chaincode.sh  a v1.4.12 peer in chaincode dev mode commits N endorsed transactions (our
#                     interop/chaincode/counter) through our orderer, solo and Kafka; all VALID
# It fails (never skips) when Go, the tools, Kafka or our binaries are missing.
#
#   KAFKA_BROKERS=... interop/ci.sh           OUR_BIN defaults to target/debug; FABRIC_VERSION to v1.4.12
set -euo pipefail
cd "$(dirname "$0")/.."

export FABRIC_VERSION=${FABRIC_VERSION:-v1.4.12}
export OUR_BIN=${OUR_BIN:-$PWD/target/debug}
[[ -n ${KAFKA_BROKERS:-} ]] || { echo "interop/ci.sh: KAFKA_BROKERS is not set" >&2; exit 1; }
command -v go >/dev/null || { echo "interop/ci.sh: go is not on PATH: cannot install Fabric's tools" >&2; exit 1; }
for t in jq bc; do   # the checks' JSON and arithmetic helpers, from Debian's packages
    command -v $t >/dev/null || { apt-get update -qq && apt-get install -y -qq $t >/dev/null; } \
        || { echo "interop/ci.sh: $t is missing and could not be installed" >&2; exit 1; }
done

start=$(date +%s)
echo "== interop: Fabric $FABRIC_VERSION tools (interop/fabric-tools.sh)"
interop/fabric-tools.sh >/dev/null
# chaincode.sh always uses v1.4.12's peer (dev mode and the v1.x chaincode lifecycle)
[[ $FABRIC_VERSION == v1.4.12 ]] || FABRIC_VERSION=v1.4.12 interop/fabric-tools.sh >/dev/null
W=$(mktemp -d /tmp/fabric-interop-ci.XXXXXX)
rc=0
echo "== interop: run.sh (workdir $W/run)"
interop/run.sh "$W/run" || rc=1
echo "== interop: mixed.sh (workdir $W/mixed)"
interop/mixed.sh "$W/mixed" || rc=1
echo "== interop: ledger-migration.sh (workdir $W/ledger)"
interop/ledger-migration.sh "$W/ledger" || rc=1
echo "== interop: chaincode.sh (workdir $W/chaincode)"
interop/chaincode.sh "$W/chaincode" || rc=1
echo "== interop: $(( $(date +%s) - start )) s, $( ((rc == 0)) && echo 'all checks passed' || echo 'FAILED')"
((rc == 0)) && rm -rf "$W"
exit $rc
