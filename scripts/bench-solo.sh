#!/usr/bin/env bash
# Benchmark (not a test): signed envelopes of SIZE bytes over STREAMS Broadcast
# streams against the solo orderer on this machine, client included, for
# DURATION seconds. A one-stream run in the same script is the baseline; the
# figures are printed as ratios against it and against the 5,000 tx/s target.
#
#   scripts/bench-solo.sh [DURATION=60] [STREAMS=8] [SIZE=1024]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-60}
STREAMS=${2:-8}
SIZE=${3:-1024}
BASE_DURATION=${BASE_DURATION:-20}
PORT=${PORT:-17050}

cargo build --release --bins -q
WORK=$(mktemp -d)
export FABRIC_ORDERER_DEV_DIR="$WORK/dev"
ORDERER_PID=
cleanup() { [ -n "$ORDERER_PID" ] && kill "$ORDERER_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

ORDERER_GENERAL_LISTENPORT=$PORT FABRIC_LOGGING_SPEC=warning ./target/release/orderer start >"$WORK/orderer.log" 2>&1 &
ORDERER_PID=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done

run() { # streams duration → JSON report
    ./target/release/orderer-client broadcast --size "$SIZE" --streams "$1" --duration "$2" --json
}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "baseline: 1 stream, ${BASE_DURATION}s, ${SIZE} B signed envelopes"
BASE=$(run 1 "$BASE_DURATION")
echo "run:      ${STREAMS} streams, ${DURATION}s, ${SIZE} B signed envelopes"
MAIN=$(run "$STREAMS" "$DURATION")
RSS_KB=$(awk '/VmHWM/ {print $2}' "/proc/$ORDERER_PID/status")
CPU_TICKS=$(awk '{print $14+$15}' "/proc/$ORDERER_PID/stat")
python3 - "$BASE" "$MAIN" "$RSS_KB" "$CPU_TICKS" "$(getconf CLK_TCK)" <<'PY'
import json, sys
base, main = json.loads(sys.argv[1]), json.loads(sys.argv[2])
rss_kb, ticks, hz = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def f(r):
    return (f"{r['acked_tx_per_sec']:.0f} tx/s acked, {r['delivered_tx_per_sec']:.0f} tx/s delivered, "
            f"broadcast->delivered p50 {r['delivered_latency']['p50_ms']:.1f} ms "
            f"p99 {r['delivered_latency']['p99_ms']:.1f} ms, failures {r['failures']}, "
            f"delivered {r['delivered']}/{r['success']}, duplicates {r['duplicates']}")
print("baseline:", f(base))
print("run:     ", f(main))
print(f"ratio run/baseline: {main['acked_tx_per_sec']/base['acked_tx_per_sec']:.2f}x; "
      f"run/5000 tx/s target: {main['acked_tx_per_sec']/5000:.2f}x")
total = base['success'] + main['success']
print(f"orderer: peak RSS {rss_kb/1024:.0f} MiB, CPU {ticks/hz:.1f} s for {total} tx "
      f"= {1e6*ticks/hz/total:.0f} us/tx")
PY
