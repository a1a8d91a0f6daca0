#!/usr/bin/env bash
# CPU profile of our orderer under bench-compare's load (one case), with
# Linux perf: a flat table of where the orderer's CPU goes and, when
# inferno (`cargo install inferno`) is on PATH, a flame graph SVG.
#
#   scripts/profile.sh [-c CASE] [-d SECONDS] [-o OUT_PREFIX] [BIN]
#
# CASE as bench-compare.sh (default kafka:1024:128:1:1), SECONDS of load
# (default 30; perf samples 15 s of it, 12 s after the load starts), BIN the
# orderer binary (default target/release/orderer, built by bench-compare
# unless NO_BUILD=1). Writes OUT_PREFIX.data (perf), OUT_PREFIX.txt (the
# table) and OUT_PREFIX.svg. Needs `perf` (Debian: linux-perf) and root or
# kernel.perf_event_paranoid <= 1.
set -euo pipefail
cd "$(dirname "$0")/.."
CASE=kafka:1024:128:1:1
DURATION=30
OUT=/tmp/orderer-profile
while [ $# -gt 0 ]; do
    case "$1" in
        -c) CASE=$2; shift 2 ;;
        -d) DURATION=$2; shift 2 ;;
        -o) OUT=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        *) BIN=$1; shift ;;
    esac
done
BIN=$(realpath "${BIN:-target/release/orderer}")
command -v perf >/dev/null || { echo "perf not found (apt-get install linux-perf)" >&2; exit 1; }

OURS_BIN=$BIN scripts/bench-compare.sh --ours-only -c "$CASE" -d "$DURATION" \
    -o "$OUT.bench.md" -j "$OUT.bench.json" >"$OUT.bench.log" 2>&1 &
BENCH=$!
# The bench's orderer (not the short-lived development network one) is the
# one started with a bench genesis block.
PID=
for _ in $(seq 1200); do
    for p in $(pgrep -f "^$BIN start" || true); do
        if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -q '^ORDERER_GENERAL_BOOTSTRAPFILE='; then PID=$p; fi
    done
    [ -n "$PID" ] && break
    sleep 0.25
done
[ -n "$PID" ] || { echo "the bench orderer did not start (see $OUT.bench.log)" >&2; wait $BENCH; exit 1; }
sleep 12
perf record -F 499 --call-graph dwarf,16384 -p "$PID" -o "$OUT.data" -- sleep 15 2>/dev/null
wait $BENCH
grep -E '^\| (solo|kafka)' "$OUT.bench.md" | head -1

{
    echo "# perf: orderer self time by function ($CASE, 15 s under load)"
    perf report -i "$OUT.data" --no-children --sort sym --stdio -g none 2>/dev/null \
        | grep -E '^ +[0-9]' | head -40 || true
} >"$OUT.txt"
cat "$OUT.txt"
if command -v inferno-collapse-perf >/dev/null && command -v inferno-flamegraph >/dev/null; then
    perf script -i "$OUT.data" 2>/dev/null | inferno-collapse-perf >"$OUT.folded"
    inferno-flamegraph --title "orderer CPU, $CASE" <"$OUT.folded" >"$OUT.svg"
    echo "flame graph: $OUT.svg"
else
    echo "(no inferno on PATH: cargo install inferno for the SVG)"
fi
