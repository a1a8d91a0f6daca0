#!/usr/bin/env bash
# Load and memory check (not a test): one solo orderer on this machine, then
# `orderer-client load` holds BROADCAST_STREAMS Broadcast streams (sending
# RATE signed envelopes/s in total) and FOLLOWERS Deliver followers open for
# DURATION seconds, sampling the orderer's RSS every SAMPLE seconds, and
# prints min/max RSS, throughput, statuses and errors.
#
#   scripts/load.sh [DURATION=600] [BROADCAST_STREAMS=1000] [FOLLOWERS=200] [RATE=500]
#
# Environment: SLOW_FOLLOWERS (0) and SLOW_DELAY_MS (1000): followers that
# read one block per SLOW_DELAY_MS; SAMPLE (5); SIZE (256); PORT (17150);
# STREAMS_PER_CONNECTION (1); NO_BUILD=1 skips `cargo build --release`;
# BIN (target/release): where the binaries are;
# JSON=1 for the JSON report. The exit status is 0 when every envelope got
# SUCCESS and no stream failed.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-600}
BROADCAST_STREAMS=${2:-1000}
FOLLOWERS=${3:-200}
RATE=${4:-500}
PORT=${PORT:-17150}

BIN=${BIN:-target/release}
[ -n "${NO_BUILD:-}" ] || cargo build --release --bins -q
WORK=$(mktemp -d)
export FABRIC_ORDERER_DEV_DIR="$WORK/dev"
ORDERER_PID=
cleanup() { [ -n "$ORDERER_PID" ] && kill "$ORDERER_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

ORDERER_GENERAL_LISTENPORT=$PORT ORDERER_FILELEDGER_LOCATION="$WORK/ledger" FABRIC_LOGGING_SPEC=warning \
    "$BIN/orderer" start >"$WORK/orderer.log" 2>&1 &
ORDERER_PID=$!
for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done
ulimit -n 65536 2>/dev/null || true
echo "machine: $(nproc) cores; orderer pid $ORDERER_PID on 127.0.0.1:$PORT"
set +e
"$BIN/orderer-client" --server "127.0.0.1:$PORT" load \
    --broadcast-streams "$BROADCAST_STREAMS" --followers "$FOLLOWERS" \
    --slow-followers "${SLOW_FOLLOWERS:-0}" --slow-delay-ms "${SLOW_DELAY_MS:-1000}" \
    --rate "$RATE" --size "${SIZE:-256}" --duration "$DURATION" --sample-secs "${SAMPLE:-5}" \
    --streams-per-connection "${STREAMS_PER_CONNECTION:-1}" \
    --orderer-pid "$ORDERER_PID" ${JSON:+--json}
rc=$?
echo "orderer peak RSS (VmHWM): $(awk '/VmHWM/ {print $2, $3}' "/proc/$ORDERER_PID/status")"
grep -E 'ERROR|WARN' "$WORK/orderer.log" | head -5
exit $rc
