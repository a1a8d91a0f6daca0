#!/usr/bin/env bash
# Interop run: the Fabric Node SDK (fabric-client 1.4.20, from npm) against OUR orderer.
#
#   interop/node/run.sh [WORKDIR]          # default WORKDIR: a fresh mktemp dir
#
# 1. Installs the SDK with `npm ci` from interop/node/package-lock.json into a cache OUTSIDE the
#    repository: $FABRIC_INTEROP_CACHE/node/<hash of package files + node ABI> (default
#    ~/.cache/fabric-orderer-interop/node). Its native `grpc` module is compiled from source by
#    node-gyp when no prebuilt binary can be downloaded (first run: several minutes; later runs: 0 s).
# 2. Builds our binaries (`cargo build --workspace --bins`, debug) unless OUR_BIN names a folder
#    that has orderer and configtxgen.
# 3. Starts our orderer on the embedded development network (solo, crypto + genesis made by the
#    orderer itself under WORKDIR/dev), makes a channel-creation tx and an anchor-peer update with OUR
#    configtxgen (interop/node/configtx.yaml, profile SdkChannel), and runs sdk-check.js: plaintext
#    first, then again over mutual TLS (openssl-made certificates; TLS=0 skips that phase).
# 4. Reference (REFERENCE=auto|1|0, default auto: when interop/fabric-tools.sh has built Fabric's orderer
#    into the cache): the same checks against Fabric v2.5's orderer booted from the same genesis block,
#    so that every expectation in sdk-check.js is also shown to hold for Fabric itself.
# Prints PASS/FAIL per check and, last, "node-sdk-interop: N passed, N failed"; exits 1 if anything failed.
#
# Env: OUR_BIN, PORT (default: a free port), TXS (default 30), TLS (default 1), REFERENCE, FABRIC_INTEROP_CACHE,
#      NPM_INSTALL_TIMEOUT (seconds, default 1800), JOBS (parallel native compile jobs, default nproc).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${FABRIC_INTEROP_CACHE:-$HOME/.cache/fabric-orderer-interop}/node
W=${1:-$(mktemp -d /tmp/fabric-node-sdk.XXXXXX)}
mkdir -p "$W"; W=$(cd "$W" && pwd)
TXS=${TXS:-30}
TLS=${TLS:-1}
PASSED=0; FAILED=0

pass() { echo "PASS $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $*"; FAILED=$((FAILED + 1)); }
die() { echo "FAIL $*"; FAILED=$((FAILED + 1)); summary; exit 1; }
summary() { echo "node-sdk-interop: $PASSED passed, $FAILED failed"; }
free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

for t in node npm openssl; do command -v $t >/dev/null || die "setup: $t is not installed"; done
echo "workdir $W, node $(node --version), npm $(npm --version)"

# ---------- 1. the SDK, cached outside the repository ----------
ABI=$(node -p 'process.versions.modules + "-" + process.platform + "-" + process.arch')
KEY=$(cat "$HERE/package.json" "$HERE/package-lock.json" | sha256sum | cut -c1-16)-node$ABI
DEST=$CACHE/$KEY
sdk_ok() { NODE_PATH=$DEST/node_modules node -e 'require("grpc"); require("fabric-client")' >/dev/null 2>&1; }
if [[ -f $DEST/.complete ]] && sdk_ok; then
    pass "setup: fabric-client from the cache $DEST"
else
    echo "installing fabric-client into $DEST (npm ci; grpc's native module may be compiled: minutes)"
    rm -rf "$DEST" "$DEST.tmp"; mkdir -p "$DEST.tmp"
    cp "$HERE/package.json" "$HERE/package-lock.json" "$DEST.tmp/"
    t0=$(date +%s)
    # node-gyp needs Node's headers to compile grpc; use the installed ones instead of downloading them
    if [[ -z ${npm_config_nodedir:-} && -f /usr/include/node/node.h ]]; then export npm_config_nodedir=/usr; fi
    if (cd "$DEST.tmp" && JOBS=${JOBS:-$(nproc)} timeout "${NPM_INSTALL_TIMEOUT:-1800}" \
            npm ci --no-audit --no-fund --foreground-scripts) >"$W/npm-install.log" 2>&1 \
       && mv "$DEST.tmp" "$DEST" && sdk_ok; then
        touch "$DEST/.complete"
        pass "setup: npm ci fabric-client in $(( $(date +%s) - t0 )) s"
    else
        tail -30 "$W/npm-install.log"
        rm -rf "$DEST.tmp"
        die "setup: npm ci failed (log: $W/npm-install.log)"
    fi
fi
export NODE_PATH=$DEST/node_modules

# ---------- 2. our binaries ----------
if [[ -z ${OUR_BIN:-} ]]; then
    (cd "$REPO" && cargo build --workspace --bins) >"$W/cargo-build.log" 2>&1 \
        || { tail -30 "$W/cargo-build.log"; die "setup: cargo build --workspace --bins"; }
    OUR_BIN=${CARGO_TARGET_DIR:-$REPO/target}/debug
fi
for t in orderer configtxgen; do
    [[ -x $OUR_BIN/$t ]] || die "setup: missing $OUR_BIN/$t"
done
echo "our binaries: $OUR_BIN"

# ---------- 3. certificates made with openssl: TLS CA, server and client; an outsider identity ----------
T=$W/tls; OUTSIDER_MSP=$W/outsider/msp
mkdir -p "$T" "$OUTSIDER_MSP/signcerts" "$OUTSIDER_MSP/keystore"
if ! (
    set -e
    cd "$T"
    gen() { openssl ecparam -name prime256v1 -genkey -noout -out "$1.ec"; openssl pkcs8 -topk8 -nocrypt -in "$1.ec" -out "$1.key"; }
    gen ca
    openssl req -x509 -new -key ca.key -subj "/O=example.com/CN=tlsca.example.com" -days 2 -out ca.pem \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    gen server
    openssl req -new -key server.key -subj "/O=example.com/CN=orderer.example.com" -out server.csr
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out server.pem
    gen client
    openssl req -new -key client.key -subj "/O=example.com/CN=Admin@example.com" -out client.csr
    printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n' >client.ext
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile client.ext -out client.pem
    # an identity whose self-signed certificate no channel MSP trusts
    gen outsider
    openssl req -x509 -new -key outsider.key -subj "/O=elsewhere.org/OU=client/CN=outsider" -days 2 -out outsider.pem
    cp outsider.pem "$OUTSIDER_MSP/signcerts/cert.pem"; cp outsider.key "$OUTSIDER_MSP/keystore/key_sk"
) >"$W/openssl.log" 2>&1; then
    cat "$W/openssl.log"; die "setup: openssl certificate generation"
fi

# ---------- 4. orderer (embedded development network) ----------
PORT=${PORT:-$(free_port)}
DEV=$W/dev
mkdir -p "$W/empty"
ORDERER_PID=""
start_orderer() {   # $1 log, then extra VAR=value settings
    local log=$1; shift
    (cd "$W/empty" && exec env FABRIC_CFG_PATH="$W/empty" FABRIC_ORDERER_DEV_DIR="$DEV" \
        ORDERER_GENERAL_LISTENADDRESS=127.0.0.1 ORDERER_GENERAL_LISTENPORT="$PORT" \
        ORDERER_OPERATIONS_LISTENADDRESS=127.0.0.1:0 "$@" "$OUR_BIN/orderer" start) >"$log" 2>&1 &
    ORDERER_PID=$!
    for _ in $(seq 1 300); do
        grep -q "Beginning to serve requests" "$log" 2>/dev/null && return 0
        kill -0 "$ORDERER_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
stop_orderer() {
    if [[ -n $ORDERER_PID ]]; then
        kill "$ORDERER_PID" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$ORDERER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$ORDERER_PID" 2>/dev/null
        wait "$ORDERER_PID" 2>/dev/null
        ORDERER_PID=""
    fi
}
trap stop_orderer EXIT

if start_orderer "$W/orderer.log"; then
    pass "setup: our orderer on 127.0.0.1:$PORT (development network in $DEV)"
else
    tail -20 "$W/orderer.log"; die "setup: our orderer did not start"
fi
ORG=$DEV/crypto/ordererOrganizations/example.com
ADMIN_MSP=$ORG/users/Admin@example.com/msp

# interop/node/configtx.yaml with the development org's MSP as `msp`
mkdir -p "$W/cfg"
cp "$HERE/configtx.yaml" "$W/cfg/configtx.yaml"
rm -rf "$W/cfg/msp"; cp -r "$ORG/msp" "$W/cfg/msp"
ctg() { "$OUR_BIN/configtxgen" -configPath "$W/cfg" "$@"; }

run_check() {   # $1 phase name, $2 channel, then extra sdk-check arguments
    local phase=$1 ch=$2; shift 2
    ctg -profile SdkChannel -channelID "$ch" -outputCreateChannelTx "$W/$ch.tx" >"$W/$ch-ctg.log" 2>&1 \
        || { cat "$W/$ch-ctg.log"; fail "$phase: configtxgen -outputCreateChannelTx"; return; }
    ctg -profile SdkChannel -channelID "$ch" -asOrg SampleOrg -outputAnchorPeersUpdate "$W/$ch-anchors.tx" \
        >>"$W/$ch-ctg.log" 2>&1 || { cat "$W/$ch-ctg.log"; fail "$phase: configtxgen -outputAnchorPeersUpdate"; return; }
    local out=$W/sdk-check-$phase.log
    HFC_LOGGING="{\"error\":\"$W/sdk-$phase-errors.log\"}" timeout 300 node "$HERE/sdk-check.js" --mspdir "$ADMIN_MSP" --mspid SampleOrg \
        --system-channel system-channel --channel "$ch" --channel-tx "$W/$ch.tx" \
        --anchor-tx "$W/$ch-anchors.tx" --genesis-file "$DEV/genesis.block" --outsider-mspdir "$OUTSIDER_MSP" \
        --txs "$TXS" "$@" 2>"$W/sdk-check-$phase.err" \
        | tee "$out" | sed "s/^\(PASS\|FAIL\) /\1 $phase /"
    local p f
    p=$(grep -c '^PASS' "$out"); f=$(grep -c '^FAIL' "$out")
    PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
    if ! grep -q "^sdk-check: $p passed, 0 failed" "$out" || [[ $f -ne 0 || $p -eq 0 ]]; then
        # a crash or a timeout leaves no summary line: count it
        grep -q '^sdk-check: ' "$out" || fail "$phase: sdk-check.js ended without a summary (see $W/sdk-check-$phase.err)"
        tail -5 "$W/sdk-check-$phase.err"
    fi
}

# ---------- 5. plaintext ----------
t0=$(date +%s%N)
run_check plain sdkch --orderer "grpc://127.0.0.1:$PORT"
echo "plaintext phase: $(( ($(date +%s%N) - t0) / 1000000 )) ms"

# ---------- 6. mutual TLS (same ledger, restarted orderer, new channel) ----------
if [[ $TLS == 1 ]]; then
    stop_orderer
    if start_orderer "$W/orderer-tls.log" ORDERER_GENERAL_TLS_ENABLED=true \
            ORDERER_GENERAL_TLS_CERTIFICATE="$T/server.pem" ORDERER_GENERAL_TLS_PRIVATEKEY="$T/server.key" \
            ORDERER_GENERAL_TLS_ROOTCAS="[$T/ca.pem]" ORDERER_GENERAL_TLS_CLIENTAUTHREQUIRED=true \
            ORDERER_GENERAL_TLS_CLIENTROOTCAS="[$T/ca.pem]"; then
        pass "tls: our orderer restarted with mutual TLS on the same ledger"
        t0=$(date +%s%N)
        run_check tls sdktls --orderer "grpcs://localhost:$PORT" --tls-ca "$T/ca.pem" \
            --tls-client-cert "$T/client.pem" --tls-client-key "$T/client.key"
        echo "mutual TLS phase: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
    else
        tail -20 "$W/orderer-tls.log"; fail "tls: our orderer did not start with TLS"
    fi
fi

stop_orderer

# ---------- 7. reference: the same checks against Fabric's own orderer (when interop/fabric-tools.sh built it) ----------
FABRIC_HOME=${FABRIC_INTEROP_CACHE:-$HOME/.cache/fabric-orderer-interop}
REFERENCE=${REFERENCE:-auto}
if [[ $REFERENCE != 0 && -x $FABRIC_HOME/bin/orderer && -d $FABRIC_HOME/sampleconfig ]]; then
    # booted from the same genesis block (made by our orderer's development network), own ledger
    (cd "$W/empty" && exec env FABRIC_CFG_PATH="$FABRIC_HOME/sampleconfig" ORDERER_GENERAL_BOOTSTRAPMETHOD=file \
        ORDERER_GENERAL_BOOTSTRAPFILE="$DEV/genesis.block" ORDERER_GENERAL_LOCALMSPDIR="$ORG/orderers/orderer.example.com/msp" \
        ORDERER_GENERAL_LOCALMSPID=SampleOrg ORDERER_FILELEDGER_LOCATION="$W/fabric-ledger" \
        ORDERER_GENERAL_LISTENADDRESS=127.0.0.1 ORDERER_GENERAL_LISTENPORT="$PORT" \
        ORDERER_OPERATIONS_LISTENADDRESS=127.0.0.1:0 ORDERER_ADMIN_LISTENADDRESS=127.0.0.1:0 \
        "$FABRIC_HOME/bin/orderer") >"$W/fabric-orderer.log" 2>&1 &
    ORDERER_PID=$!
    up=0
    for _ in $(seq 1 300); do
        grep -q "Beginning to serve requests" "$W/fabric-orderer.log" 2>/dev/null && { up=1; break; }
        kill -0 "$ORDERER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [[ $up == 1 ]]; then
        pass "reference: Fabric's orderer ($("$FABRIC_HOME/bin/orderer" version 2>/dev/null | awk '/Version:/{print $2}')) boots from the same genesis block"
        run_check reference sdkch --orderer "grpc://127.0.0.1:$PORT"
    else
        tail -20 "$W/fabric-orderer.log"; fail "reference: Fabric's orderer did not start"
    fi
    stop_orderer
elif [[ $REFERENCE == 1 ]]; then
    fail "reference: REFERENCE=1 but no Fabric orderer in $FABRIC_HOME (run interop/fabric-tools.sh)"
elif [[ $REFERENCE != 0 ]]; then
    echo "reference phase not run: no Fabric orderer in $FABRIC_HOME (interop/fabric-tools.sh builds it; REFERENCE=0 silences this)"
fi

echo "files and logs: $W"
summary
[[ $FAILED -eq 0 && $PASSED -gt 0 ]]
