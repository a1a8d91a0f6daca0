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
#   .stamp-<rev>   written once every tool is built
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
# FABRIC_VERSION=v1.4.12 (any v1.4.x tag) selects the method CI uses: the proxy serves
# Fabric's v1.4.x tags. Their module zips have no go.mod and no vendor/, only dep's Gopkg.lock, so the
# script writes a go.mod for a throw-away build module (in the cache) that requires
# github.com/hyperledger/fabric@v1.4.x plus every Gopkg.lock project at its locked revision, lets
# `go mod download` resolve those revisions through the proxy, and `go install`s the tools from the
# module cache. Default cache for it: $HOME/.cache/fabric-orderer-interop-v1.4.x. Measured: 3 min 20 s
# cold on 2 shared cores (download 50 s), 0.04 s when cached.
set -euo pipefail

FABRIC_VERSION=${FABRIC_VERSION:-v2.5.16}
REV=${FABRIC_REV:-f871cf92a026aba7b12e6f06d71ded3e6e659d71}   # v2.5.16
case $FABRIC_VERSION in
    v2.5.16) CACHE=${FABRIC_INTEROP_CACHE:-$HOME/.cache/fabric-orderer-interop} ;;
    v1.4.*)  REV=$FABRIC_VERSION; FABRIC_METHOD=proxy-v14
             CACHE=${FABRIC_INTEROP_CACHE:-$HOME/.cache/fabric-orderer-interop-$FABRIC_VERSION}
             TOOLS_V14=(common/tools/configtxgen common/tools/configtxlator common/tools/cryptogen peer orderer
                        orderer/sample_clients/broadcast_msg orderer/sample_clients/deliver_stdout
                        orderer/sample_clients/broadcast_config) ;;
    *) echo "fabric-tools.sh: FABRIC_VERSION must be v2.5.16 or v1.4.x" >&2; exit 2 ;;
esac
BIN=$CACHE/bin
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
    [[ -f $CACHE/.stamp-$REV && -f $CACHE/sampleconfig/core.yaml ]]
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
    export GOFLAGS="-buildvcs=false -mod=mod" GONOSUMDB=
    echo "fabric-tools.sh: Fabric $REV from the module proxy (go.mod written from its Gopkg.lock)" >&2
    DIR=$(go mod download -json "github.com/hyperledger/fabric@$REV" \
          | python3 -c 'import sys,json;print(json.load(sys.stdin)["Dir"])')
    MOD=$CACHE/mod
    mkdir -p "$MOD"
    # One require per Gopkg.lock project at its locked revision (the go command turns revisions into
    # pseudo-versions). This proxy refuses the bare-revision lookup of goleveldb's commit 64b5b1c7,
    # so it is given as that same commit's pseudo-version. golang.org/x/{tools,lint} (linters only)
    # are not needed by the tools and are left out.
    python3 - "$DIR/Gopkg.lock" "$REV" >"$MOD/go.mod" <<'PY'
import sys, tomllib
lock = tomllib.load(open(sys.argv[1], 'rb'))
pinned = {('github.com/syndtr/goleveldb', '64b5b1c739545ed311fb9d9924d19d188fabdc83'):
          'v1.0.1-0.20210305035536-64b5b1c73954'}
print('module fabricinteropbuild\n\ngo 1.12\n\nrequire (')
print('\tgithub.com/hyperledger/fabric', sys.argv[2])
for p in lock['projects']:
    if p['name'] in ('golang.org/x/tools', 'golang.org/x/lint'):
        continue
    print('\t%s %s' % (p['name'], pinned.get((p['name'], p['revision']), p['revision'])))
print(')')
PY
    ( cd "$MOD" && nice -n 10 go mod download )
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

touch "$CACHE/.stamp-$REV"
echo "fabric-tools.sh: installed by method '$method' in $(( $(date +%s) - start )) s" >&2
"$BIN/configtxgen" -version >&2 || true
echo "$BIN"
