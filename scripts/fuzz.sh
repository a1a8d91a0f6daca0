#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 60) and reports
# executions and crashes. Needs a nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz`).
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo +nightly fuzz build -O || exit 1
fail=0
for t in $(cargo +nightly fuzz list); do
    log=$(mktemp)
    cargo +nightly fuzz run -O "$t" -- -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 >"$log" 2>&1
    rc=$?
    runs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    if [ $rc -ne 0 ] && grep -qE 'ERROR: libFuzzer|panicked|deadly signal' "$log"; then
        echo "$t: CRASH after ${runs:-?} runs (log: $log)"; fail=1
    else
        echo "$t: ${runs:-?} runs in ${SECONDS_EACH}s, no crash"; rm -f "$log"
    fi
done
exit $fail
