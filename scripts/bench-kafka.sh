#!/usr/bin/env bash
# Benchmark (not a test): signed envelopes of SIZE bytes over STREAMS Broadcast
# streams through ONE orderer using the Kafka consenter, with the Kafka
# cluster (3 ZooKeeper + 4 brokers, scripts/kafka/kafka.sh) on this same
# machine, client included. The baseline, run in the same script, is the
# same load against the solo backend; figures are printed as ratios to it.
#
#   scripts/bench-kafka.sh [DURATION=60] [STREAMS=8] [SIZE=1024]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-60}
STREAMS=${2:-8}
SIZE=${3:-1024}
PORT=${PORT:-17150}

cargo build --release --bins -q
WORK=$(mktemp -d)
PIDS=()
STARTED_KAFKA=
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "$STARTED_KAFKA" ] && scripts/kafka/kafka.sh down >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ -z "${KAFKA_BROKERS:-}" ]; then
    scripts/kafka/kafka.sh fetch >/dev/null
    if ! scripts/kafka/kafka.sh wait --timeout 5 >/dev/null 2>&1; then
        scripts/kafka/kafka.sh down >/dev/null 2>&1 || true
        STARTED_KAFKA=1
        scripts/kafka/kafka.sh start --wait >/dev/null
    fi
    KAFKA_BROKERS=$(scripts/kafka/kafka.sh brokers)
fi

wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# 1. Crypto material: the embedded development network makes it (solo baseline node).
export FABRIC_ORDERER_DEV_DIR="$WORK/dev"
ORDERER_GENERAL_LISTENPORT=$PORT FABRIC_LOGGING_SPEC=warning ./target/release/orderer start >"$WORK/solo.log" 2>&1 &
PIDS+=($!); SOLO_PID=$!
wait_port "$PORT"
ORG="$WORK/dev/crypto/ordererOrganizations/example.com"

# 2. A Kafka genesis block from a configtx.yaml, with our configtxgen.
CHANNEL="bench-$(date +%s)"
BROKER_LIST=$(echo "$KAFKA_BROKERS" | sed 's/,/\n/g' | sed 's/^/                    - /')
cat >"$WORK/configtx.yaml" <<YAML
Organizations:
    - &SampleOrg
        Name: SampleOrg
        ID: SampleOrg
        MSPDir: $ORG/msp
        Policies:
            Readers: { Type: Signature, Rule: "OR('SampleOrg.member')" }
            Writers: { Type: Signature, Rule: "OR('SampleOrg.member')" }
            Admins: { Type: Signature, Rule: "OR('SampleOrg.admin')" }
Profiles:
    BenchKafka:
        Policies:
            Readers: { Type: ImplicitMeta, Rule: "ANY Readers" }
            Writers: { Type: ImplicitMeta, Rule: "ANY Writers" }
            Admins: { Type: ImplicitMeta, Rule: "MAJORITY Admins" }
        Capabilities: { V1_4_3: true }
        Orderer:
            OrdererType: kafka
            Addresses: [127.0.0.1:$((PORT + 1))]
            BatchTimeout: 2s
            BatchSize: { MaxMessageCount: 500, AbsoluteMaxBytes: 10 MB, PreferredMaxBytes: 2 MB }
            Kafka:
                Brokers:
$BROKER_LIST
            Organizations: [*SampleOrg]
            Policies:
                Readers: { Type: ImplicitMeta, Rule: "ANY Readers" }
                Writers: { Type: ImplicitMeta, Rule: "ANY Writers" }
                Admins: { Type: ImplicitMeta, Rule: "MAJORITY Admins" }
                BlockValidation: { Type: ImplicitMeta, Rule: "ANY Writers" }
            Capabilities: { V1_4_2: true }
        Consortiums:
            SampleConsortium:
                Organizations: [*SampleOrg]
YAML
./target/release/configtxgen -configPath "$WORK" -profile BenchKafka -channelID "$CHANNEL" \
    -outputBlock "$WORK/kafka.block"
mkdir -p "$WORK/cfg"
FABRIC_CFG_PATH="$WORK/cfg" ORDERER_GENERAL_LISTENPORT=$((PORT + 1)) \
ORDERER_GENERAL_BOOTSTRAPFILE="$WORK/kafka.block" ORDERER_GENERAL_LOCALMSPID=SampleOrg \
ORDERER_GENERAL_LOCALMSPDIR="$ORG/orderers/orderer.example.com/msp" \
ORDERER_FILELEDGER_LOCATION="$WORK/kafka-ledger" FABRIC_LOGGING_SPEC=warning \
    ./target/release/orderer start >"$WORK/kafka.log" 2>&1 &
PIDS+=($!); KAFKA_PID=$!
wait_port $((PORT + 1))
for _ in $(seq 120); do
    ./target/release/orderer-client --server 127.0.0.1:$((PORT + 1)) --channel "$CHANNEL" channel-info \
        >/dev/null 2>&1 && break
    sleep 0.5
done

run() { # server channel → JSON report
    ./target/release/orderer-client --server "$1" --channel "$2" \
        broadcast --size "$SIZE" --streams "$STREAMS" --duration "$DURATION" --json
}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); Kafka $KAFKA_BROKERS"
echo "baseline: solo, ${STREAMS} streams, ${DURATION}s, ${SIZE} B signed envelopes"
BASE=$(run 127.0.0.1:$PORT system-channel)
kill "$SOLO_PID"
echo "run:      kafka, ${STREAMS} streams, ${DURATION}s, ${SIZE} B signed envelopes"
MAIN=$(run 127.0.0.1:$((PORT + 1)) "$CHANNEL")
RSS_KB=$(awk '/VmHWM/ {print $2}' "/proc/$KAFKA_PID/status")
CPU_TICKS=$(awk '{print $14+$15}' "/proc/$KAFKA_PID/stat")
python3 - "$BASE" "$MAIN" "$RSS_KB" "$CPU_TICKS" "$(getconf CLK_TCK)" <<'PY'
import json, sys
base, main = json.loads(sys.argv[1]), json.loads(sys.argv[2])
rss_kb, ticks, hz = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def f(r):
    l = r['delivered_latency']
    return (f"{r['acked_tx_per_sec']:.0f} tx/s acked, {r['delivered_tx_per_sec']:.0f} tx/s delivered, "
            f"broadcast->delivered p50 {l['p50_ms']:.1f} ms p99 {l['p99_ms']:.1f} ms p99.9 {l['p999_ms']:.1f} ms, "
            f"failures {r['failures']}, delivered {r['delivered']}/{r['success']}, duplicates {r['duplicates']}")
print("baseline (solo):", f(base))
print("run (kafka):    ", f(main))
print(f"ratio kafka/solo throughput: {main['acked_tx_per_sec']/base['acked_tx_per_sec']:.2f}x, "
      f"p50 latency: {main['delivered_latency']['p50_ms']/max(base['delivered_latency']['p50_ms'],1e-9):.2f}x")
print(f"kafka orderer: peak RSS {rss_kb/1024:.0f} MiB, CPU {ticks/hz:.1f} s for {main['success']} tx "
      f"= {1e6*ticks/hz/max(main['success'],1):.0f} us/tx")
PY
