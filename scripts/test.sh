#!/usr/bin/env bash
# The project's test command: unit tests beside the code and end-to-end
# tests that start the real `orderer` binary on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --bins
cargo test --workspace --no-fail-fast "$@"
