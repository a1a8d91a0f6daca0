#!/usr/bin/env bash
# Installs Hyperledger Fabric v2.5.16's own tools into a cache OUTSIDE the repository.
#
#   interop/fabric-tools.sh            # install (idempotent) and print the bin dir on stdout
#   interop/fabric-tools.sh --env      # print `export FABRIC_BIN=... FABRIC_SAMPLECONFIG=...`
#
# Cache: $FABRIC_INTEROP_CACHE (default $HOME/.cache/fabric-orderer-interop)
#   bin/           configtxgen configtxlator cryptogen peer orderer broadcast_msg deliver_stdout broadcast_config
#   sampleconfig/  Fabric's sampleconfig (core.yaml, orderer.yaml, configtx.yaml, msp/)
#   gopath/ gocache/   Go caches, kept so that re-runs are fast
#   .stamp-<rev>[-<manifest hash>]   written once every tool is built
#
# Methods (both use only the Go module proxy):
#  v2.5.16: `go install github.com/hyperledger/fabric/cmd/...@<commit>`. Fabric's go.mod says
#     `module github.com/hyperledger/fabric` (no /v2), so `@v2.5.16` is refused by Go and the commit is
#     used (pseudo-version v1.4.0-rc1.0.20260617221605-f871cf92a026).
#     NOTE (2026-11): the proxy reachable from our sandbox answers `403 Forbidden / This module version
#     is not available.` for every Fabric pseudo-version (only v1.4.x, v2.0.0+incompatible and
#     v2.1.1+incompatible are served), so this method fails there; use FABRIC_VERSION=v1.4.12. If the
#     cache already holds the v2.5.16 tools (installed elsewhere by other means), they are used as is.
#
# Nothing from Fabric is ever written into the repository.
#
# FABRIC_VERSION=v1.4.12 selects the method CI uses: the proxy serves Fabric's v1.4.x tags, but their
# module zips have no go.mod (only dep's Gopkg.lock), and the proxy no longer resolves the bare commit
# hashes that Gopkg.lock pins (`403 ... This module version is not available.`). The build module is
# therefore committed: interop/fabric-v1.4.12/go.mod names every dependency by a version the proxy serves
# (a tag, or the canonical pseudo-version of the very commit Gopkg.lock pins; see interop/README.md for the
# few that moved) and forces each with a `replace`, so that Go's minimal version selection cannot lift any
# of them; interop/fabric-v1.4.12/go.sum is checked on every download (-mod=readonly, sum.golang.org on).
# Default cache for it: $HOME/.cache/fabric-orderer-interop-v1.4.12. Measured: about 2 min cold on 2
# shared cores (download 25 s), 0.04 s when cached.
set -euo pipefail

FABRIC_VERSION=${FABRIC_VERSION:-v2.5.16}
REV=${FABRIC_REV:-f871cf92a026aba7b12e6f06d71ded3e6e659d71}   # v2.5.16
case $FABRIC_VERSION in
    v2.5.16) CACHE=${FABRIC_INTEROP_CACHE:-$HOME/.cache/fabric-orderer-interop} ;;
    v1.4.12) REV=$FABRIC_VERSION; FABRIC_METHOD=proxy-v14
             CACHE=${FABRIC_INTEROP_CACHE:-$HOME/.cache/fabric-orderer-interop-$FABRIC_VERSION}
             TOOLS_V14=(common/tools/configtxgen common/tools/configtxlator common/tools/cryptogen peer orderer
                        orderer/sample_clients/broadcast_msg orderer/sample_clients/deliver_stdout
                        orderer/sample_clients/broadcast_config) ;;
    *) echo "fabric-tools.sh: FABRIC_VERSION must be v2.5.16 or v1.4.12" >&2; exit 2 ;;
esac
BIN=$CACHE/bin
MANIFEST=$(cd "$(dirname "$0")" && pwd)/fabric-$FABRIC_VERSION
STAMP=$REV
if [[ ${FABRIC_METHOD:-} == proxy-v14 ]]; then   # a changed manifest means a rebuild
    STAMP=$REV-$(cat "$MANIFEST/go.mod" "$MANIFEST/go.sum" | sha256sum | cut -c1-12)
fi
TOOLS=(cmd/configtxgen cmd/configtxlator cmd/cryptogen cmd/peer cmd/orderer
       orderer/sample_clients/broadcast_msg orderer/sample_clients/deliver_stdout
       orderer/sample_clients/broadcast_config)
JOBS=${FABRIC_BUILD_JOBS:-2}

if [[ "${1:-}" == "--env" ]]; then
    echo "export FABRIC_BIN=$BIN"
    echo "export FABRIC_SAMPLECONFIG=$CACHE/sampleconfig"
    exit 0
fi

command -v go >/dev/null || { echo "fabric-tools.sh: go is not on PATH (need Go >= 1.26.4)" >&2; exit 1; }

mkdir -p "$BIN"
have_all() {
    for t in "${TOOLS[@]}"; do [[ -x $BIN/$(basename "$t") ]] || return 1; done
    [[ -f $CACHE/.stamp-$STAMP && -f $CACHE/sampleconfig/core.yaml ]]
}
if have_all; then
    echo "fabric-tools.sh: Fabric tools at $REV already in $BIN" >&2
    echo "$BIN"; exit 0
fi

export GOBIN=$BIN
export GOPATH=$CACHE/gopath
export GOMODCACHE=$CACHE/gopath/pkg/mod
export GOCACHE=$CACHE/gocache
export GOFLAGS=-buildvcs=false
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
export GONOSUMDB=${GONOSUMDB:-github.com/hyperledger/*}

start=$(date +%s)
method=""
if [[ ${FABRIC_METHOD:-proxy} == proxy-v14 ]]; then
    # -mod=readonly: the committed go.mod and go.sum are used as they are, every download is checked
    # against go.sum, and a missing or different hash is an error rather than a silent update.
    export GOFLAGS="-buildvcs=false -mod=readonly" GONOSUMDB= GOPRIVATE= GONOSUMCHECK= GOSUMDB=${GOSUMDB:-sum.golang.org}
    echo "fabric-tools.sh: Fabric $REV from the module proxy (pinned build module $MANIFEST)" >&2
    MOD=$CACHE/mod
    rm -rf "$MOD"; mkdir -p "$MOD"
    cp "$MANIFEST/go.mod" "$MANIFEST/go.sum" "$MOD/"
    ( cd "$MOD" && nice -n 10 go mod download ) || {
        echo "fabric-tools.sh: downloading the modules pinned in $MANIFEST/go.mod failed (see above)" >&2; exit 1; }
    ( cd "$MOD" && go mod verify >&2 ) || {
        echo "fabric-tools.sh: go mod verify failed: the module cache does not match $MANIFEST/go.sum" >&2; exit 1; }
    DIR=$(cd "$MOD" && go list -m -f '{{.Dir}}' github.com/hyperledger/fabric)
    pkgs=(); for t in "${TOOLS_V14[@]}"; do pkgs+=("github.com/hyperledger/fabric/$t"); done
    ( cd "$MOD" && nice -n 10 go install -p "$JOBS" \
        -ldflags "-X github.com/hyperledger/fabric/common/metadata.Version=${REV#v}" "${pkgs[@]}" )
    rm -rf "$CACHE/sampleconfig"; cp -r "$DIR/sampleconfig" "$CACHE/sampleconfig"
    chmod -R u+w "$CACHE/sampleconfig" "$GOMODCACHE" 2>/dev/null || true
    method=proxy-v14
else
    pkgs=()
    for t in "${TOOLS[@]}"; do pkgs+=("github.com/hyperledger/fabric/$t@$REV"); done
    echo "fabric-tools.sh: go install ${#pkgs[@]} Fabric tools at $REV from the module proxy" >&2
    if nice -n 10 go install -p "$JOBS" "${pkgs[@]}"; then
        DIR=$(go mod download -json "github.com/hyperledger/fabric@$REV" \
              | python3 -c 'import sys,json;print(json.load(sys.stdin)["Dir"])')
        rm -rf "$CACHE/sampleconfig"; cp -r "$DIR/sampleconfig" "$CACHE/sampleconfig"
        chmod -R u+w "$CACHE/sampleconfig" "$GOMODCACHE" 2>/dev/null || true
        method=proxy
    else
        echo "fabric-tools.sh: module proxy install of Fabric $REV failed (see above); FABRIC_VERSION=v1.4.12 installs v1.4.12 from the proxy" >&2
        exit 1
    fi
fi

touch "$CACHE/.stamp-$STAMP"
echo "fabric-tools.sh: installed by method '$method' in $(( $(date +%s) - start )) s" >&2
"$BIN/configtxgen" -version >&2 || true
echo "$BIN"
